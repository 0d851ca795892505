// Browser test of the vllm-proxy dashboard, run by ui/e2e_test.go against a live stack
// (simulators, router, proxy, batch workers, dashboard). Debian's chromium, driven by
// playwright-core. Every check throws on failure; the process exits non-zero.
//
// Environment:
//   UI_URL          the dashboard, e.g. http://127.0.0.1:PORT/ui/
//   BACKENDS        comma-separated backend URLs the backends table must list
//   BATCH_ID        a running batch to watch and cancel
//   SCREENSHOT_DIR  where the screenshots go
//   CHROMIUM        the browser binary (default /usr/bin/chromium)
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const env = name => {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set`);
  return v;
};
const UI_URL = env('UI_URL');
const BACKENDS = env('BACKENDS').split(',');
const BATCH_ID = env('BATCH_ID');
const SHOTS = env('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const origin = new URL(UI_URL).origin;

const log = (...a) => console.log('[e2e]', ...a);
function check(cond, msg) { if (!cond) throw new Error('check failed: ' + msg); }

// waitUntil polls fn until it returns a truthy value or the timeout passes.
async function waitUntil(what, fn, timeoutMs = 30000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise(r => setTimeout(r, everyMs));
  }
}

// watch records page errors and every request that leaves the proxy's origin.
function watch(page, problems) {
  page.on('pageerror', e => problems.push('page error: ' + e.message));
  page.on('console', m => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
  page.on('request', r => {
    const u = r.url();
    if (!u.startsWith(origin + '/') && !u.startsWith('data:')) problems.push('request outside the proxy: ' + u);
  });
  page.on('requestfailed', r => problems.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
}

// shot scrolls to the top first, so the sticky header sits where it belongs.
async function shot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
}

async function noHorizontalScroll(page, what) {
  const { sw, iw } = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, iw: window.innerWidth }));
  check(sw <= iw + 1, `${what}: page is ${sw}px wide in a ${iw}px viewport (horizontal scrolling)`);
}

const progress = page => page.evaluate(id => {
  const row = document.querySelector(`tr[data-batch="${id}"]`);
  const bar = row && row.querySelector('[role=progressbar]');
  return bar ? { value: Number(bar.getAttribute('aria-valuenow')), counts: row.querySelector('[data-field=counts]').textContent, status: row.dataset.status } : null;
}, BATCH_ID);

async function desktop(browser) {
  const problems = [];
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  watch(page, problems);
  await page.goto(UI_URL, { waitUntil: 'load' });

  // Backend rows: one per backend, healthy, with load and KV cells filled.
  await page.waitForSelector('tr[data-backend]');
  const rows = await waitUntil('every backend row', async () => {
    const r = await page.$$eval('tr[data-backend]', trs => trs.map(tr => ({
      url: tr.dataset.backend,
      health: tr.querySelector('[data-field=health]').textContent,
      stale: tr.querySelector('[data-field=stale]').textContent,
      cells: tr.children.length,
    })));
    return r.length === BACKENDS.length && r.every(x => x.health === 'healthy') ? r : null;
  });
  check(JSON.stringify(rows.map(r => r.url).sort()) === JSON.stringify([...BACKENDS].sort()), `backend rows ${rows.map(r => r.url)} != ${BACKENDS}`);
  check(rows.every(r => r.cells === 9 && r.stale !== 'stale'), 'backend rows have 9 cells and fresh metrics: ' + JSON.stringify(rows));
  check((await page.textContent('#health')) === `${BACKENDS.length}/${BACKENDS.length} healthy`, 'header health pill');
  check((await page.textContent('#policy')) !== '…', 'policy shown');
  await page.waitForSelector('tr[data-model="m1"]');
  check((await page.textContent('#policy')) === 'cache_aware', 'policy cache_aware');
  await waitUntil('an affinity decision in the routing mix', () => page.$('#decisions .row[data-name="affinity"]'));
  await waitUntil('a predicted hit rate in the backends table', async () =>
    (await page.$$eval('tr[data-backend] [data-field=hit]', els => els.map(e => e.textContent))).some(t => !t.startsWith('–')));
  log('backend rows ok:', rows.map(r => r.url).join(' '));

  // The batch's progress advances.
  const first = await waitUntil('the batch to show progress', async () => {
    const p = await progress(page);
    return p && p.value > 0 && p.status === 'in_progress' ? p : null;
  });
  const later = await waitUntil('the batch progress to advance', async () => {
    const p = await progress(page);
    return p && p.value > first.value ? p : null;
  });
  check(later.status === 'in_progress' && later.value < 100, 'batch still running when cancelling: ' + JSON.stringify(later));
  log(`progress advanced: ${first.value}% (${first.counts}) -> ${later.value}% (${later.counts})`);
  await shot(page, 'desktop-running.png');

  // Charts are drawn.
  await waitUntil('throughput bars', () => page.$$eval('#chart-throughput svg rect.b-int, #chart-throughput svg rect.b-batch', r => r.length > 0));
  await waitUntil('upload bars', () => page.$$eval('#chart-uploads svg rect.b-up', r => r.length > 0));

  // Record every status the batch row shows from now on, however briefly.
  await page.evaluate(id => {
    window.__statuses = [];
    const note = () => {
      const row = document.querySelector(`tr[data-batch="${id}"]`);
      const s = row && row.dataset.status;
      if (s && window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
    };
    note();
    new MutationObserver(note).observe(document.querySelector('#batches tbody'), { childList: true, subtree: true, attributes: true });
  }, BATCH_ID);

  // Cancel: confirm the dialog, then see cancelling and cancelled.
  page.once('dialog', d => d.accept());
  await page.click(`tr[data-batch="${BATCH_ID}"] button[data-action=cancel]`);
  await waitUntil('the batch to be cancelled', async () => (await progress(page))?.status === 'cancelled', 60000);
  const seen = await page.evaluate(() => window.__statuses);
  const ci = seen.indexOf('cancelling'), cd = seen.indexOf('cancelled');
  check(ci >= 0 && cd > ci, 'statuses seen after cancel: ' + seen.join(' -> '));
  const statusText = await page.textContent(`tr[data-batch="${BATCH_ID}"] [data-field=status]`);
  check(statusText === 'cancelled', 'status pill reads ' + statusText);
  log('statuses after cancel:', seen.join(' -> '));
  await shot(page, 'desktop-cancelled.png');
  await noHorizontalScroll(page, '1280x800');

  // Delete the cancelled batch's files: its input file leaves the files table.
  const input = await page.evaluate(async id => (await (await fetch(`/v1/batches/${id}`)).json()).input_file_id, BATCH_ID);
  check(await page.$(`tr[data-file="${input}"]`), 'the input file is listed before delete');
  page.once('dialog', d => d.accept());
  await page.click(`tr[data-batch="${BATCH_ID}"] button[data-action=delete]`);
  await waitUntil('the input file to leave the files table', async () => !(await page.$(`tr[data-file="${input}"]`)));
  await waitUntil('the batch delete button to read Deleted', async () =>
    (await page.textContent(`tr[data-batch="${BATCH_ID}"] button[data-action=delete]`)) === 'Deleted');
  log('batch files deleted');

  check(problems.length === 0, 'desktop problems:\n' + problems.join('\n'));
  await ctx.close();
}

async function phone(browser) {
  const problems = [];
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  watch(page, problems);
  await page.goto(UI_URL, { waitUntil: 'load' });
  await page.waitForSelector('tr[data-backend]');
  await waitUntil('the batch row', () => page.$(`tr[data-batch="${BATCH_ID}"]`));
  // The phone layout stacks table cells with their labels.
  const display = await page.$eval('#backends thead', el => getComputedStyle(el).display);
  check(display === 'none', 'table headers hidden at phone width, got display ' + display);
  await noHorizontalScroll(page, '390x844');
  await shot(page, 'phone.png');
  check(problems.length === 0, 'phone problems:\n' + problems.join('\n'));
  await ctx.close();
}

mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  await desktop(browser);
  await phone(browser);
  log('all checks passed');
} catch (err) {
  console.error('[e2e] FAIL:', err.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
