// Small DOM and formatting helpers. Everything is built with createElement and
// textContent: no server value is ever parsed as HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// meter is a bar filled to fraction (0..1); parts adds more coloured segments.
export function meter(fraction, label, opts = {}) {
  const f = clamp01(fraction);
  const bar = h('span');
  bar.style.width = (f * 100).toFixed(1) + '%';
  const m = h('div', { class: 'meter' + (opts.hot && f >= 0.75 ? (f >= 0.95 ? ' full' : ' hot') : '') }, bar);
  if (opts.failed) {
    const fb = h('span', { class: 'failed' });
    fb.style.left = (f * 100).toFixed(1) + '%';
    fb.style.width = (clamp01(opts.failed) * 100).toFixed(1) + '%';
    m.append(fb);
  }
  if (opts.role) {
    m.setAttribute('role', 'progressbar');
    m.setAttribute('aria-valuemin', '0');
    m.setAttribute('aria-valuemax', '100');
    m.setAttribute('aria-valuenow', String(Math.round((f + clamp01(opts.failed || 0)) * 100)));
  }
  return h('div', {}, m, label === undefined ? null : h('div', { class: 'meter-label', text: label }));
}

export function clamp01(v) { return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0; }

export function pct(v) { return Number.isFinite(v) ? (v * 100).toFixed(v >= 0.1 || v === 0 ? 0 : 1) + '%' : '–'; }

export function num(v) {
  if (!Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

export function bytes(v) {
  if (!Number.isFinite(v)) return '–';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (v >= 1000 && i < u.length - 1) { v /= 1000; i++; }
  return (i === 0 ? String(v) : v.toFixed(v >= 100 ? 0 : 1)) + ' ' + u[i];
}

// ago formats a past Unix-seconds time relative to now.
export function ago(unixSeconds) {
  if (!unixSeconds) return '–';
  const s = Math.max(0, Date.now() / 1000 - unixSeconds);
  if (s < 60) return Math.round(s) + 's ago';
  if (s < 3600) return Math.round(s / 60) + 'm ago';
  if (s < 86400) return (s / 3600).toFixed(1) + 'h ago';
  return Math.round(s / 86400) + 'd ago';
}

export function clock(unixMs) {
  const d = new Date(unixMs);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function shortURL(u) { return String(u).replace(/^[a-z]+:\/\//, ''); }

// replaceRows fills a table body; an empty list shows one muted row.
export function replaceRows(tbody, rows, emptyText, cols) {
  if (rows.length === 0) rows = [h('tr', { class: 'empty' }, h('td', { colspan: cols, text: emptyText }))];
  tbody.replaceChildren(...rows);
}

// td builds a cell with the column label the phone layout shows.
// The cell's content sits in one div so the phone layout's label/value grid has two items.
export function td(label, ...children) { return h('td', { 'data-label': label }, h('div', {}, ...children)); }
