// Bar charts drawn as plain SVG, sized by viewBox so they scale with the card.
const NS = 'http://www.w3.org/2000/svg'; // an XML namespace name, never fetched
const W = 600, H = 180, PAD_L = 54, PAD_B = 18, PAD_T = 8;

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

function title(text) { const t = s('title'); t.textContent = text; return t; }

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}

// barChart draws stacked bars, one per bucket, and an optional line.
//   buckets: [{start, ...}], stacks: [{key, cls, label}], line: {key, cls, label} | null,
//   fmt: value formatter for the axis and tooltips, extra: bucket → extra tooltip text.
export function barChart(container, buckets, { stacks, line = null, fmt = String, extra = null }) {
  const n = Math.max(1, buckets.length);
  const plotW = W - PAD_L - 4, plotH = H - PAD_B - PAD_T;
  const totals = buckets.map(b => stacks.reduce((a, st) => a + (b[st.key] || 0), 0));
  const lineMax = line ? Math.max(0, ...buckets.map(b => b[line.key] || 0)) : 0;
  const top = niceMax(Math.max(0, ...totals, lineMax));
  const y = v => PAD_T + plotH - (v / top) * plotH;
  const bw = plotW / n;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none' });
  for (const f of [0, 0.5, 1]) {
    svg.append(s('line', { class: 'axis', x1: PAD_L, x2: W - 4, y1: y(top * f), y2: y(top * f) }));
    const t = s('text', { x: PAD_L - 4, y: y(top * f) + 3, 'text-anchor': 'end' });
    t.textContent = fmt(top * f);
    svg.append(t);
  }
  const every = Math.max(1, Math.round(n / 6));
  buckets.forEach((b, i) => {
    let acc = 0;
    const x = PAD_L + i * bw;
    const tip = [timeLabel(b.start)];
    for (const st of stacks) {
      const v = b[st.key] || 0;
      tip.push(`${st.label}: ${fmt(v)}`);
      if (v > 0) {
        svg.append(s('rect', { class: st.cls, x: x + bw * 0.1, width: Math.max(0.5, bw * 0.8), y: y(acc + v), height: Math.max(0.5, y(acc) - y(acc + v)) }));
      }
      acc += v;
    }
    if (line) tip.push(`${line.label}: ${fmt(b[line.key] || 0)}`);
    if (extra) tip.push(extra(b));
    // A full-height transparent target carries the tooltip for the whole bucket.
    svg.append(s('rect', { x, width: bw, y: PAD_T, height: plotH, fill: 'transparent' }, title(tip.join('\n'))));
    if (i % every === 0) {
      const t = s('text', { x: x + bw / 2, y: H - 4, 'text-anchor': 'middle' });
      t.textContent = timeLabel(b.start);
      svg.append(t);
    }
  });
  if (line && buckets.length > 0) {
    const pts = buckets.map((b, i) => `${(PAD_L + (i + 0.5) * bw).toFixed(1)},${y(b[line.key] || 0).toFixed(1)}`);
    svg.append(s('polyline', { class: line.cls, points: pts.join(' ') }));
  }
  container.replaceChildren(svg);
  return svg;
}
