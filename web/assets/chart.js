// chart.js: the activity metrics chart, a small hand-written SVG bar chart
// (requests per bucket, errors drawn over them). The dashboard needs bars
// only, so ~100 lines of SVG weigh less than a charting library, need no
// vendored code, and stay readable by screen readers (a <title> per bar and
// a summary label).

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

const LABEL = {
  hour: (d) => d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit' }),
  day: (d) => d.toLocaleDateString([], { month: 'short', day: 'numeric' }),
  week: (d) => `week of ${d.toLocaleDateString([], { month: 'short', day: 'numeric' })}`,
  month: (d) => d.toLocaleDateString([], { year: 'numeric', month: 'short' }),
};

const STEP = { hour: 3600000, day: 86400000, week: 7 * 86400000 };

// The start of the bucket after t (UTC).
function nextStart(t, gran) {
  if (gran !== 'month') return t + STEP[gran];
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

function floorStart(t, gran) {
  const d = new Date(t);
  if (gran === 'month') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  if (gran === 'week') {
    const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return day - ((d.getUTCDay() + 6) % 7) * 86400000; // Monday
  }
  return t - (t % STEP[gran]);
}

// Every bucket of the window [from, to) with the API's points put into the
// bucket holding their start: a bucket without activity is a zero bar, so
// the time axis is continuous. At most 2,000 buckets.
export function fillBuckets(points, gran, from, to) {
  const out = [];
  for (let t = floorStart(from, gran); t < to && out.length < 2000; t = nextStart(t, gran))
    out.push({ start: new Date(t).toISOString(), t, requests: 0, errors: 0 });
  for (const p of points) {
    const t = Date.parse(p.start);
    let i = out.length - 1;
    while (i > 0 && out[i].t > t) i--;
    if (out.length === 0 || out[i].t > t || t >= to) continue;
    out[i].requests += p.requests;
    out[i].errors += p.errors;
  }
  return out;
}

// An <svg> of metrics ({granularity, points: [{start, requests, errors}]}).
export function barChart(metrics, { width = 720, height = 200 } = {}) {
  const pts = metrics.points ?? [];
  const max = Math.max(1, ...pts.map((p) => p.requests));
  const total = pts.reduce((a, p) => a + p.requests, 0);
  const errors = pts.reduce((a, p) => a + p.errors, 0);
  const label = LABEL[metrics.granularity] ?? LABEL.day;
  const pad = { l: 40, b: 22, t: 8, r: 8 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img',
    'aria-label': `${total} requests and ${errors} errors in ${pts.length} ${metrics.granularity} buckets`,
    'data-buckets': pts.length,
  });
  svg.append(s('line', { x1: pad.l, y1: pad.t + hgt, x2: pad.l + w, y2: pad.t + hgt, class: 'axis' }));
  svg.append(s('text', { x: pad.l - 4, y: pad.t + 10, 'text-anchor': 'end', class: 'tick' }, String(max)));
  svg.append(s('text', { x: pad.l - 4, y: pad.t + hgt, 'text-anchor': 'end', class: 'tick' }, '0'));
  const bw = pts.length ? w / pts.length : w;
  const every = Math.max(1, Math.ceil(pts.length / 8));
  pts.forEach((p, i) => {
    const x = pad.l + i * bw;
    const bh = (p.requests / max) * hgt;
    const eh = (p.errors / max) * hgt;
    const d = new Date(p.start);
    const g = s('g', { class: 'bucket' });
    g.append(s('title', {}, `${label(d)}: ${p.requests} requests, ${p.errors} errors`));
    g.append(s('rect', { x: x + bw * 0.1, y: pad.t + hgt - bh, width: Math.max(1, bw * 0.8), height: bh, class: 'req' }));
    if (p.errors > 0)
      g.append(s('rect', { x: x + bw * 0.1, y: pad.t + hgt - eh, width: Math.max(1, bw * 0.8), height: eh, class: 'err' }));
    svg.append(g);
    if (i % every === 0)
      svg.append(s('text', { x: x + bw / 2, y: height - 6, 'text-anchor': 'middle', class: 'tick' }, label(d)));
  });
  return svg;
}
