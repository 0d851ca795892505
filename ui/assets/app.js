// vllm-proxy dashboard: polls the dashboard's /ui/api/* endpoints and the proxy's own
// /v1/batches and /v1/files, and redraws. Cancel and delete call the same /v1 API.
import { h, meter, pct, num, bytes, ago, clock, shortURL, replaceRows, td } from './dom.js';
import { barChart } from './charts.js';

const $ = id => document.getElementById(id);
const ACTIVE = new Set(['validating', 'in_progress', 'finalizing']);
const CANCELLABLE = new Set(['validating', 'in_progress']);
const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
const STATUS_CLASS = {
  validating: 'info', in_progress: 'info', finalizing: 'info', completed: 'ok',
  failed: 'bad', expired: 'warn', cancelling: 'warn', cancelled: 'warn',
};
const KEY_STORE = 'vllm-proxy-ui-api-key';

let cfg = { poll_interval_ms: 2000, api_base: '', bucket_seconds: 900, window_seconds: 86400 };
let paused = false;
let timer = null;
let busy = new Set(); // ids with an action in progress
let lastBatches = [];
let lastFiles = [];
let moreBatches = false; // the API has older ones than the page lists
let moreFiles = false;

function apiKey() { try { return localStorage.getItem(KEY_STORE) || ''; } catch { return ''; } }

async function getJSON(url, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  const key = apiKey();
  // The key goes with every call (all same-origin), so the page works when API keys
  // guard /v1 and, if the operator chooses, /ui/api too.
  if (key) headers.Authorization = 'Bearer ' + key;
  const resp = await fetch(url, { ...opts, headers, cache: 'no-store' });
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!resp.ok) {
    const msg = body && body.error && body.error.message ? body.error.message : `${resp.status} ${resp.statusText}`;
    throw new Error(`${opts.method || 'GET'} ${url}: ${msg}`);
  }
  return body;
}

function showError(err) {
  const el = $('error');
  if (!err) { el.hidden = true; el.textContent = ''; return; }
  el.hidden = false;
  el.textContent = String(err.message || err);
}

// ---- backends ----

function renderBackends(data) {
  $('policy').textContent = data.policy;
  const n = data.backends.length;
  const health = $('health');
  health.textContent = `${data.healthy}/${n} healthy`;
  health.className = 'pill ' + (n > 0 && data.healthy === n ? 'ok' : data.healthy > 0 ? 'warn' : 'bad');
  $('backends-count').textContent = `${n} backend${n === 1 ? '' : 's'}`;
  const rows = data.backends.map(b => {
    const cls = b.in_flight_by_class || {};
    const classes = Object.keys(cls).sort().map(k => `${k} ${cls[k]}`).join(' · ');
    const pred = b.predicted_prefix_cache_hit_rate ?? null;
    const stale = b.metrics_stale;
    return h('tr', { 'data-backend': b.url, class: !b.healthy ? 'down' : stale ? 'stale' : '' },
      td('Backend', h('span', { class: 'mono', text: shortURL(b.url) })),
      td('Health', h('span', { class: 'pill ' + (b.healthy ? 'ok' : 'bad'), 'data-field': 'health', text: b.healthy ? 'healthy' : 'ejected' })),
      td('Load', meter(b.load, `${pct(b.load)} of ${b.capacity}`, { hot: true })),
      td('Running / waiting', h('span', { 'data-field': 'running', text: `${num(b.running)} / ${num(b.waiting)}` })),
      td('In flight', h('span', {}, h('b', { text: String(b.in_flight) }), h('div', { class: 'meter-label', text: classes }))),
      td('KV cache', meter(b.kv_cache_usage, pct(b.kv_cache_usage), { hot: true })),
      td('Prefix hit rate', h('span', { 'data-field': 'hit', text: `${pred === null ? '–' : pct(pred)} / ${pct(b.prefix_cache_hit_rate)}` })),
      td('Metrics', stale
        ? h('span', { class: 'pill warn', 'data-field': 'stale', text: 'stale' })
        : h('span', { class: 'muted', 'data-field': 'stale', text: b.metrics_age_ms < 0 ? 'none yet' : `${(b.metrics_age_ms / 1000).toFixed(1)}s old` })),
      td('Models', h('span', { class: 'small', text: (b.models || []).join(', ') || '–' })),
    );
  });
  replaceRows($('backends').tBodies[0], rows, 'No backends configured.', 9);
}

// ---- models and routing ----

function renderModels(data) {
  const rows = data.models.map(m => h('tr', { 'data-model': m.id },
    td('Model', h('span', { class: 'mono', text: m.id }), m.parent ? h('div', { class: 'meter-label', text: `LoRA of ${m.parent}` }) : null),
    td('Backends', `${m.healthy}/${m.backends.length} healthy`),
    td('Requests', num(m.requests)),
  ));
  replaceRows($('models').tBodies[0], rows, 'No models discovered yet.', 3);
}

function bars(el, list, empty) {
  if (list.length === 0) { el.replaceChildren(h('div', { class: 'muted small', text: empty })); return; }
  el.replaceChildren(...list.map(s => h('div', { class: 'row', 'data-name': s.name },
    h('span', { class: 'name mono', title: s.name, text: shortURL(s.name) }),
    meter(s.share),
    h('span', { class: 'num', text: `${num(s.count)} · ${pct(s.share)}` }),
  )));
}

function renderRouting(data) {
  bars($('decisions'), data.decisions, `The ${data.policy} policy exports no decision counters.`);
  bars($('route-backends'), data.backends, 'No requests routed yet.');
}

// ---- series and stats ----

// On a narrow screen the charts show the last 8 hours, so bars and labels stay legible.
function visibleBuckets(buckets, el) {
  return el.clientWidth > 0 && el.clientWidth < 500 ? buckets.slice(-32) : buckets;
}

function renderSeries(data) {
  barChart($('chart-throughput'), visibleBuckets(data.buckets, $('chart-throughput')), {
    stacks: [{ key: 'requests', cls: 'b-int', label: 'interactive' }, { key: 'batch_requests', cls: 'b-batch', label: 'batch' }],
    line: { key: 'errors', cls: 'l-err', label: 'errors' }, fmt: num,
  });
  barChart($('chart-uploads'), visibleBuckets(data.buckets, $('chart-uploads')), {
    stacks: [{ key: 'upload_bytes', cls: 'b-up', label: 'uploaded' }], fmt: bytes,
    extra: b => `files: ${b.uploads}`,
  });
}

function plural(n, word) { return `${num(n)} ${word}${n === 1 ? '' : 's'}`; }

function tile(k, v, sub) {
  return h('div', { class: 'tile', 'data-stat': k }, h('div', { class: 'v', text: v }), h('div', { class: 'k', text: sub }));
}

function renderStats(stats) {
  const w = stats.window, p = stats.peak;
  const since = stats.since ? ` · counting since ${new Date(stats.since).toLocaleString()}` : '';
  $('stats-since').textContent = `per ${Math.round(stats.bucket_seconds / 60)} min buckets${since}`;
  const day = Date.now() / 1000 - stats.window_seconds;
  const recent = lastBatches.filter(b => b.created_at >= day);
  const count = st => recent.filter(b => b.status === st).length;
  const active = lastBatches.filter(b => ACTIVE.has(b.status) || b.status === 'cancelling').length;
  // Without a files-uploaded counter, count the batch input files still listed.
  const uploadedFiles = lastFiles.filter(f => f.purpose === 'batch' && f.created_at >= day).length;
  const errRate = w.requests + w.batch_requests > 0 ? w.errors / (w.requests + w.batch_requests) : 0;
  $('tiles').replaceChildren(
    tile('requests', num(w.requests), 'interactive requests'),
    tile('batch_requests', num(w.batch_requests), 'batch requests'),
    tile('errors', num(w.errors), `errors (${pct(errRate)})`),
    tile('peak', num(p.requests + p.batch_requests), 'peak requests / 15 min'),
    tile('lines', num(w.lines_completed), `lines done, ${num(w.lines_failed)} failed`),
    tile('uploads', bytes(w.upload_bytes), `uploaded, ${plural(w.uploads || uploadedFiles, 'file')}`),
    tile('batches', num(recent.length), `${recent.length === 1 ? 'batch' : 'batches'} created, ${active} active`),
    tile('finished', `${count('completed')} / ${count('failed')} / ${count('cancelled')}`, 'completed / failed / cancelled'),
  );
}

// ---- batches and files ----

async function act(id, fn) {
  busy.add(id);
  try { await fn(); showError(null); } catch (err) { showError(err); } finally { busy.delete(id); }
  await refreshLists();
}

function cancelBatch(b) {
  if (!confirm(`Cancel batch ${b.id}? Lines already done are kept.`)) return;
  act(b.id, async () => {
    const out = await getJSON(`${cfg.api_base}/v1/batches/${encodeURIComponent(b.id)}/cancel`, { method: 'POST' });
    const i = lastBatches.findIndex(x => x.id === b.id);
    if (out && i >= 0) { lastBatches[i] = out; renderBatches(); }
  });
}

// A batch's files are what the Batch API lets one delete (batch records stay, as in
// OpenAI's API); deleting them is what "delete a batch" means here.
function batchFiles(b) { return [b.input_file_id, b.output_file_id, b.error_file_id].filter(Boolean); }

function deleteBatch(b) {
  const ids = batchFiles(b).filter(id => lastFiles.some(f => f.id === id));
  if (!confirm(`Delete the files of batch ${b.id} (${ids.join(', ') || 'none left'})?`)) return;
  act(b.id, async () => {
    for (const id of ids) await getJSON(`${cfg.api_base}/v1/files/${encodeURIComponent(id)}`, { method: 'DELETE' });
  });
}

function deleteFile(f) {
  if (!confirm(`Delete file ${f.id} (${f.filename})?`)) return;
  act(f.id, () => getJSON(`${cfg.api_base}/v1/files/${encodeURIComponent(f.id)}`, { method: 'DELETE' }));
}

function renderBatches() {
  const n = lastBatches.length;
  $('batches-count').textContent = moreBatches ? `newest ${n} shown` : `${n} shown`;
  const fileIDs = new Set(lastFiles.map(f => f.id));
  const rows = lastBatches.map(b => {
    const c = b.request_counts || { total: 0, completed: 0, failed: 0 };
    const done = c.completed + c.failed;
    const frac = c.total > 0 ? c.completed / c.total : (b.status === 'completed' ? 1 : 0);
    const ffrac = c.total > 0 ? c.failed / c.total : 0;
    const filesLeft = batchFiles(b).some(id => fileIDs.has(id));
    const isBusy = busy.has(b.id);
    const actions = [];
    if (CANCELLABLE.has(b.status)) {
      actions.push(h('button', { type: 'button', 'data-action': 'cancel', disabled: isBusy, onclick: () => cancelBatch(b), text: 'Cancel' }));
    }
    if (TERMINAL.has(b.status)) {
      actions.push(h('button', { type: 'button', class: 'danger', 'data-action': 'delete', disabled: isBusy || !filesLeft,
        title: filesLeft ? 'Delete this batch\'s input, output and error files' : 'Its files are already deleted',
        onclick: () => deleteBatch(b), text: filesLeft ? 'Delete' : 'Deleted' }));
    }
    const errs = b.errors && b.errors.data ? b.errors.data.map(e => `${e.code}: ${e.message}`).join('\n') : '';
    return h('tr', { 'data-batch': b.id, 'data-status': b.status },
      td('Batch', h('span', { class: 'mono', text: b.id }), b.metadata && Object.keys(b.metadata).length
        ? h('div', { class: 'meter-label', text: Object.entries(b.metadata).map(([k, v]) => `${k}=${v}`).join(' ') }) : null),
      td('Status', h('span', { class: 'pill ' + (STATUS_CLASS[b.status] || ''), 'data-field': 'status', title: errs, text: b.status })),
      td('Progress', meter(frac, `${done} / ${c.total}`, { failed: ffrac, role: true })),
      td('Counts', h('span', { 'data-field': 'counts', text: `${c.completed} ok · ${c.failed} failed · ${c.total} total` })),
      td('Endpoint / model', h('span', { class: 'mono', text: b.endpoint }), h('div', { class: 'meter-label', text: b.model || '' })),
      td('Created', h('span', { title: new Date(b.created_at * 1000).toLocaleString(), text: ago(b.created_at) })),
      h('td', { class: 'actions', 'data-label': '' }, ...actions),
    );
  });
  replaceRows($('batches').tBodies[0], rows, 'No batches.', 7);
}

function renderFiles() {
  $('files-count').textContent = moreFiles ? `newest ${lastFiles.length} shown` : `${lastFiles.length} shown`;
  const rows = lastFiles.map(f => h('tr', { 'data-file': f.id },
    td('File', h('span', { class: 'mono', text: f.id })),
    td('Name', f.filename),
    td('Purpose', f.purpose),
    td('Size', bytes(f.bytes)),
    td('Created', h('span', { title: new Date(f.created_at * 1000).toLocaleString(), text: ago(f.created_at) })),
    td('Expires', f.expires_at ? new Date(f.expires_at * 1000).toLocaleDateString() : 'never'),
    h('td', { class: 'actions', 'data-label': '' },
      h('button', { type: 'button', class: 'danger', 'data-action': 'delete', disabled: busy.has(f.id), onclick: () => deleteFile(f), text: 'Delete' })),
  ));
  replaceRows($('files').tBodies[0], rows, 'No files.', 7);
}

async function refreshLists() {
  const [batches, files] = await Promise.all([
    getJSON(`${cfg.api_base}/v1/batches?limit=100`),
    getJSON(`${cfg.api_base}/v1/files?limit=200`),
  ]);
  lastBatches = batches.data || [];
  lastFiles = files.data || [];
  moreBatches = Boolean(batches.has_more);
  moreFiles = Boolean(files.has_more);
  renderBatches();
  renderFiles();
}

// ---- polling ----

async function poll() {
  const results = await Promise.allSettled([
    getJSON('api/backends').then(renderBackends),
    getJSON('api/models').then(renderModels),
    getJSON('api/routing').then(renderRouting),
    getJSON('api/series').then(renderSeries),
    refreshLists().then(() => getJSON('api/stats')).then(renderStats),
  ]);
  const failed = results.find(r => r.status === 'rejected');
  showError(failed ? failed.reason : null);
  $('updated').textContent = clock(Date.now());
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
}

function schedule() {
  clearTimeout(timer);
  if (paused) return;
  // A hidden tab stops polling; visibilitychange polls again when it is shown.
  timer = setTimeout(async () => { if (!document.hidden) await poll(); schedule(); }, cfg.poll_interval_ms);
}

async function start() {
  try {
    cfg = { ...cfg, ...(await getJSON('api/config')) };
  } catch (err) { showError(err); }
  $('title').textContent = cfg.title || 'vllm-proxy';
  document.title = `${cfg.title || 'vllm-proxy'} dashboard`;
  $('version').textContent = cfg.version || '';
  const key = $('apikey');
  key.value = apiKey();
  key.addEventListener('change', () => { try { localStorage.setItem(KEY_STORE, key.value.trim()); } catch { /* private mode */ } poll(); });
  $('pause').addEventListener('click', () => {
    paused = !paused;
    $('pause').textContent = paused ? 'Resume' : 'Pause';
    if (!paused) poll().then(schedule);
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden && !paused) poll().then(schedule); });
  await poll();
  schedule();
}

start();
