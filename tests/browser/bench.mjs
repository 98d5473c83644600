// bench.mjs: the dashboard's figures (scripts/bench.sh runs it after the C
// benches). With 10,000 authorizations and 10,000 works in the
// configuration of a real `connrun serve` on 127.0.0.1, Debian's chromium
// (playwright-core) loads the authorizations list and a summary page five
// times each, fresh (the token already in sessionStorage), and the median
// first contentful paint and time to the data rendered (the
// `connrun:ready:*` performance mark the router sets once the page has its
// data) are printed next to the 300 ms target; then the embedded assets'
// total as served gzip'd, next to the 300 KB target.
//   node bench.mjs --bin BUILD/bin/connrun --plugins BUILD/plugins
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as L from './lib.mjs';

const args = L.parseArgs(['bin', 'plugins']);
const N = 10000;
const RUNS = 5;

function writeConfig(dir) {
  const lines = [L.hostYaml(dir, args.plugins).replace('health_check_interval: 1h', 'health_check_interval: 1d'), 'authorizations:'];
  for (let i = 0; i < N; i++)
    lines.push(`  - { id: a${String(i).padStart(5, '0')}, name: Authorization ${i}, provider: example, method: api_key, owner: ops@example.com, credentials: { api_key: ${i % 7 ? 'good' : 'bad'} } }`);
  lines.push('works:');
  for (let i = 0; i < N; i++)
    lines.push(`  - { id: w${String(i).padStart(5, '0')}, provider: example, authorization: a${String(i).padStart(5, '0')}, enabled: ${i % 5 !== 0}, config: { streams: [items] } }`);
  const file = path.join(dir, 'bench.yaml');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const row = (figure, value, unit, target, note = '') =>
  console.log(`${figure.padEnd(52)} ${value.toFixed(1).padStart(12)} ${unit.padEnd(6)} ${target.padEnd(14)} ${note}`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Loads hash fresh RUNS times; medians of FCP and of the ready mark.
async function measure(page, base, hash, ready) {
  const fcp = [];
  const done = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto('about:blank');
    await page.goto(`${base}/${hash}`);
    await page.waitForSelector(`body[data-ready="${ready}"]`, { timeout: 60000 });
    const [f, r] = await page.evaluate((name) => [
      performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
      performance.getEntriesByName(`connrun:ready:${name}`)[0]?.startTime ?? NaN], ready);
    fcp.push(f);
    done.push(r);
  }
  return { fcp: median(fcp), ready: median(done) };
}

// Bytes of url as served to a client accepting gzip (not decompressed).
function servedBytes(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; });
      res.on('end', () => resolve(n));
    }).on('error', reject);
  });
}

async function main() {
  const { browser, why } = await L.launch();
  if (!browser) {
    console.log(`bench_dashboard: skipped: ${why}`);
    return;
  }
  const dir = L.tempDir('connrun-bench-web-');
  let child = null;
  try {
    const t0 = Date.now();
    const s = await L.startServer(args.bin, writeConfig(dir), path.join(dir, 'serve.log'), { timeoutMs: 600000 });
    child = s.child;
    const api = L.client(s.base);
    const count = (await api('GET', '/v1/authorizations?limit=1&after=a09998')).body.items.length;
    console.log(`(seeded ${N} authorizations and ${N} works in ${((Date.now() - t0) / 1000).toFixed(1)} s; last page ok: ${count === 1})`);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    const assets = new Set();
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (u.pathname === '/' || u.pathname.startsWith('/assets/')) assets.add(u.pathname);
    });
    await L.signIn(page, s.base);
    const list = await measure(page, s.base, '#/authorizations', 'authorizations');
    const sum = await measure(page, s.base, '#/authorizations/a05000', 'summary');
    row('dashboard: authorizations list, first contentful paint', list.fcp, 'ms', '< 300 ms', `median of ${RUNS}`);
    row('dashboard: authorizations list, table rendered', list.ready, 'ms', '< 300 ms', `${N} authorizations`);
    row('dashboard: summary page, first contentful paint', sum.fcp, 'ms', '< 300 ms', `median of ${RUNS}`);
    row('dashboard: summary page, data rendered', sum.ready, 'ms', '< 300 ms', `${N} works`);
    let total = 0;
    for (const p of assets) total += await servedBytes(s.base + p);
    row('dashboard: embedded assets, gzip total', total / 1000, 'KB', '< 300 KB', `${assets.size} files as served`);
  } finally {
    await browser.close();
    if (child) await L.stopServer(child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench_dashboard: ${e.stack}`);
  process.exit(1);
});
