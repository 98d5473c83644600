// dashboard.mjs: the web dashboard in a real browser (CTest: dashboard_browser).
//
//   node dashboard.mjs --bin BUILD/bin/connrun --plugins BUILD/plugins --out BUILD/browser
//
// Starts a real `connrun serve` on 127.0.0.1 with seeded data (authorizations
// and works from the configuration and made through the API, executions, a
// failing work, a subscription and an alert), then drives Debian's chromium
// headless with playwright-core through every page: the values shown equal
// the API's; editing a name shows it and an `updated` event; deleting asks
// first; the chart's toggle changes the buckets; the associated jobs sort;
// the e-mail toggle persists; a failing work's tile turns Error and its log
// shows the failure; the state history rolls back; the live tail shows a new event; a token without
// `write` sees no edit or delete and the API refuses it (403); axe-core
// finds no serious or critical violation on any page; Tab reaches every
// action; the Content-Security-Policy is sent and nothing breaks it.
// Screenshots of each page go to --out. Prints every failed check, then
// "N passed, N failed"; exits 1 on a failure, 77 (skipped) only when
// chromium cannot start.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as L from './lib.mjs';

const args = L.parseArgs(['bin', 'plugins', 'out']);
const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let passed = 0;
let failed = 0;
function check(ok, what, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.log(`FAIL ${what}${detail !== undefined ? `\n     ${String(detail).slice(0, 600)}` : ''}`);
  }
  return ok;
}

// ---- Seed -----------------------------------------------------------------

function writeConfig(dir) {
  const cfg = `${L.hostYaml(dir, args.plugins)}authorizations:
  - { id: example-good, name: Example, description: A valid key, provider: example,
      method: api_key, owner: ops@example.com, credentials: { api_key: good } }
  - { id: files, name: Dropped files, provider: filedrop, method: none }
works:
  - id: example-items
    name: Example items
    provider: example
    authorization: example-good
    schedule: { every: 1h }
    config: { streams: [items], count: 3 }
  - id: broken-import
    name: Broken import
    provider: filedrop
    authorization: files
    max_attempts: 1
    config: { directory: ${dir}/no-such-dir, streams: [{ name: users, pattern: "users*.csv", primary_key: [id] }] }
subscriptions:
  - id: hook
    workflow: webhook_system_events
    config:
      system_event_multiple_types: [created, updated, failed]
      webhook_url: "http://127.0.0.1:9/hook"
alerts:
  - id: chat
    channel: { webhook: { url: "http://127.0.0.1:9/alerts" } }
    error_rate: { threshold: 50, window: 6h }
`;
  const file = path.join(dir, 'connrun.yaml');
  fs.writeFileSync(file, cfg);
  return file;
}

// The example provider's own API (plugins/example/example.c: GET
// <base_url>/v1/me with the key as a bearer token, 2xx is Healthy), so that
// health checks make real requests the activity metrics count.
function fakeProvider() {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const ok = req.url === '/v1/me' && req.headers.authorization === 'Bearer good';
      res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
      res.end(ok ? '{"id":"me"}' : '{"error":"unauthorized"}');
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

async function seed(api, provider) {
  const want = async (what, p, code) => {
    const r = await p;
    if (!check(r.status === code, `seed: ${what}`, `${r.status} ${JSON.stringify(r.body)}`)) throw new Error(`seed failed: ${what}`);
    return r.body;
  };
  const auth = (id, name) => api('POST', '/v1/authorizations', { id, name, description: `${name}, made through the API`,
    provider: 'example', method: 'api_key', owner: 'browser@example.com', credentials: { api_key: 'good' },
    settings: { base_url: provider } });
  await want('api-auth', auth('api-auth', 'API made'), 201);
  await want('api-doomed', auth('api-doomed', 'Doomed'), 201);
  // Three jobs created in the order Charlie, Alpha, Bravo (names sort otherwise).
  for (const [id, name] of [['w-charlie', 'Charlie'], ['w-alpha', 'Alpha'], ['w-bravo', 'Bravo']]) {
    await want(id, api('POST', '/v1/works', { id, name, provider: 'example', authorization: 'api-auth',
      config: { streams: ['items'], count: 2 } }), 201);
    await new Promise((r) => setTimeout(r, 20));
  }
  for (let i = 0; i < 3; i++)
    await want('check api-auth', api('POST', '/v1/authorizations/api-auth/check'), 200);
  // w-alpha runs twice (two state versions to roll back between).
  for (let i = 0; i < 2; i++) {
    await want('run w-alpha', api('POST', '/v1/works/w-alpha/runs'), 201);
    check(await L.until(async () => (await api('GET', '/v1/works/w-alpha')).body?.last_execution?.state === 'Completed', 300),
      'seed: w-alpha completes');
  }
  await want('run broken-import', api('POST', '/v1/works/broken-import/runs'), 201);
  const failedRun = await L.until(async () => {
    const w = (await api('GET', '/v1/works/broken-import')).body;
    return w?.last_execution?.state === 'Failed' ? w : null;
  }, 300);
  check(failedRun !== null, 'seed: broken-import fails');
}

// ---- Page helpers -----------------------------------------------------------

const shot = (page, name) => page.screenshot({ path: path.join(args.out, `${name}.png`), fullPage: true });

async function axe(page, name) {
  await page.evaluate(AXE); // through the DevTools protocol: no inline script for the CSP to refuse
  const v = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .map((x) => ({ id: x.id, impact: x.impact, help: x.help, nodes: x.nodes.slice(0, 3).map((n) => n.target.join(' ')) })));
  const bad = v.filter((x) => x.impact === 'serious' || x.impact === 'critical');
  check(bad.length === 0, `${name}: axe-core finds no serious or critical violation`, JSON.stringify(bad));
}

// Tab from the top of the page (at most 400 presses) must focus every
// action: links, buttons, inputs, selects and text areas that are visible
// and enabled. Radios are a group (Tab reaches the checked one, arrows move
// in it) and tabs use a roving tabindex (arrows again): those with
// tabindex=-1 or an unchecked radio are reached with the arrows, not Tab.
async function keyboard(page, name) {
  const n = await page.evaluate(() => {
    const all = [...document.querySelectorAll('a[href], button, input, select, textarea')].filter((e) =>
      !e.disabled && e.getAttribute('tabindex') !== '-1' && e.getClientRects().length > 0 &&
      !(e.type === 'radio' && !e.checked));
    all.forEach((e, i) => { e.dataset.kb = String(i); });
    document.activeElement?.blur();
    return all.length;
  });
  const seen = new Set();
  for (let i = 0; i < 400 && seen.size < n; i++) {
    await page.keyboard.press('Tab');
    const k = await page.evaluate(() => document.activeElement?.dataset?.kb ?? null);
    if (k !== null) seen.add(k);
  }
  const missed = await page.evaluate((s) => [...document.querySelectorAll('[data-kb]')]
    .filter((e) => !s.includes(e.dataset.kb)).map((e) => `${e.tagName} ${e.id || e.textContent.trim().slice(0, 30)}`), [...seen]);
  check(n > 0 && missed.length === 0, `${name}: Tab reaches every action (${n})`, `missed: ${missed.join(', ')}`);
}

async function review(page, name) {
  await shot(page, name);
  await axe(page, name);
  await keyboard(page, name);
}

// Forgets that the page was ready, before an action that navigates: the
// hash changes before the router runs, so a wait for "new hash and ready"
// could otherwise see the new hash with the old page's ready flag.
async function unready(page) {
  await page.evaluate(() => { delete document.body.dataset.ready; });
}

async function go(page, base, hash, ready) {
  await unready(page);
  await page.evaluate((hsh) => {
    if (location.hash === hsh) window.dispatchEvent(new HashChangeEvent('hashchange'));
    else location.hash = hsh;
  }, hash);
  await page.waitForSelector(`body[data-ready="${ready}"]`).catch(async (e) => {
    const st = await page.evaluate(() => [location.hash, document.body.dataset.ready, document.querySelector('main h1')?.textContent]);
    throw new Error(`${hash}: the page did not become ready (${JSON.stringify(st)}): ${e.message.split('\n')[0]}`);
  });
}

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

// ---- The pages --------------------------------------------------------------

async function authListPage(page, base, api) {
  const listed = (await api('GET', '/v1/authorizations?limit=50')).body.items;
  await go(page, base, '#/authorizations', 'authorizations');
  const rows = await page.$$eval('#auth-table tbody tr[data-id]', (trs) => trs.map((tr) =>
    [...tr.children].map((td) => td.textContent.trim())));
  check(rows.length === listed.length, 'authorizations: one row per authorization of the API', `${rows.length} vs ${listed.length}`);
  listed.forEach((a, i) => {
    const r = rows[i] ?? [];
    check(r[0] === a.health.status && r[1] === (a.name || a.id) && r[2] === a.id &&
      r[3] === (a.provider.display_name ?? a.provider.id) && r[4] === a.method && r[5] === (a.owner ?? '—'),
    `authorizations: row ${a.id} shows the API's health, name, id, provider, method and owner`, `${JSON.stringify(r)}`);
  });
  await page.selectOption('#f-health', 'Healthy');
  await unready(page);
  await page.click('form.filters button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('health=Healthy') && document.body.dataset.ready === 'authorizations');
  const healthy = (await api('GET', '/v1/authorizations?limit=50&health=Healthy')).body.items.map((a) => a.id);
  const shown = await page.$$eval('#auth-table tbody tr[data-id]', (trs) => trs.map((tr) => tr.dataset.id));
  check(JSON.stringify(shown) === JSON.stringify(healthy), 'authorizations: the health filter shows what the API filters', `${shown} vs ${healthy}`);
  // Paging with the API's cursors: Next, Next, then Previous back.
  const pageIds = async (q) => (await api('GET', `/v1/authorizations?limit=2${q}`)).body;
  const p1 = await pageIds('');
  const p2 = await pageIds(`&after=${p1.cursor}`);
  const shownIds = () => page.$$eval('#auth-table tbody tr[data-id]', (trs) => trs.map((tr) => tr.dataset.id).join(','));
  await go(page, base, '#/authorizations?limit=2', 'authorizations');
  check(await shownIds() === p1.items.map((a) => a.id).join(','), 'authorizations: the first page of 2', await shownIds());
  await unready(page);
  await page.click('a[rel=next]');
  await page.waitForFunction((c) => location.hash.includes(`after=${c}`) && document.body.dataset.ready === 'authorizations', p1.cursor);
  check(await shownIds() === p2.items.map((a) => a.id).join(','), 'authorizations: Next shows the API\'s next page', await shownIds());
  await unready(page);
  await page.click('a[rel=prev]');
  await page.waitForFunction(() => !location.hash.includes('after=') && document.body.dataset.ready === 'authorizations');
  check(await shownIds() === p1.items.map((a) => a.id).join(','), 'authorizations: Previous goes back', await shownIds());
  await go(page, base, '#/authorizations', 'authorizations');
  await review(page, 'authorizations');
}

async function summaryPage(page, base, api) {
  const a = (await api('GET', '/v1/authorizations/api-auth')).body;
  await go(page, base, '#/authorizations/api-auth', 'summary');
  const facts = Object.fromEntries(await page.$$eval('dl.summary > div', (ds) => ds.map((d) =>
    [d.querySelector('dt').textContent, d.querySelector('dd').textContent.trim()])));
  check(facts.Health.startsWith(a.health.status) && facts['Authorization ID'] === a.id && facts.Provider === (a.provider.display_name ?? a.provider.id) &&
    facts.Method === a.method && facts.Owner === a.owner && facts.Created !== '—' && facts.Updated !== '—',
  'summary: health, id, provider, method, owner, created, updated equal the API', JSON.stringify(facts));
  const order = [...document_order(await page.$$eval('main h1, main h2', (hs) => hs.map((x) => x.textContent)))];
  check(order.indexOf('Activity metrics') < order.indexOf('Associated jobs') && order.indexOf('Associated jobs') < order.indexOf('Associated exports'),
    'summary: the document\'s order (top facts, activity metrics, associated jobs, associated exports)', order.join(' | '));

  // Chart: the toggle changes the buckets; the total equals the API's.
  const from = await page.inputValue('#m-from');
  const to = await page.inputValue('#m-to');
  const bucketsOf = async (gran) => {
    await page.check(`input[name=gran][value=${gran}]`);
    await page.waitForFunction((g) => document.querySelector('svg.chart')?.getAttribute('aria-label')?.includes(` ${g} buckets`), gran);
    return Number(await page.getAttribute('svg.chart', 'data-buckets'));
  };
  const hours = await bucketsOf('hour');
  const days = await bucketsOf('day');
  const spanDays = (Date.parse(to) - Date.parse(from)) / 86400000;
  check(hours === spanDays * 24 && days === spanDays, 'summary: hourly shows an hour per bar, daily a day per bar',
    `${hours} hourly, ${days} daily bars over ${spanDays} days`);
  const weeks = await bucketsOf('week');
  const months = await bucketsOf('month');
  check(weeks < days && months <= weeks && months >= 1, 'summary: weekly and monthly have fewer buckets', `${weeks} weekly, ${months} monthly`);
  const m = (await api('GET', `/v1/authorizations/api-auth/metrics?granularity=day&from=${from}&to=${to}`)).body;
  await bucketsOf('day');
  const total = m.points.reduce((s, p) => s + p.requests, 0);
  check((await page.textContent('#m-summary')).endsWith(`, ${total} requests`) && total > 0,
    'summary: the chart\'s requests equal the API\'s metrics', `${await page.textContent('#m-summary')} vs ${total}`);

  // Associated jobs: sorted by name, then the other way, then by creation.
  const jobNames = () => texts(page, '#jobs tbody tr[data-id] td:first-child');
  check(JSON.stringify(await jobNames()) === '["Alpha","Bravo","Charlie"]', 'summary: associated jobs sorted by name', await jobNames());
  await page.click('#jobs button[data-key=name]');
  check(JSON.stringify(await jobNames()) === '["Charlie","Bravo","Alpha"]', 'summary: a second click sorts by name descending', await jobNames());
  check(await page.getAttribute('#jobs th:first-child', 'aria-sort') === 'descending', 'summary: aria-sort tells the order');
  await page.click('#jobs button[data-key=created]');
  check(JSON.stringify(await jobNames()) === '["Charlie","Alpha","Bravo"]', 'summary: associated jobs sorted by creation date', await jobNames());
  const jobLink = await page.getAttribute('#jobs tbody tr[data-id=w-alpha] a', 'href');
  check(jobLink === '#/integrations/w-alpha', 'summary: a job links to its work', jobLink);
  await review(page, 'summary');

  // Edit: the new name on the page, in the API, and an `updated` event.
  await page.click('#edit');
  await page.fill('#e-name', 'Renamed in the browser');
  await page.fill('#e-desc', 'Changed by the browser test');
  await page.click('form.edit button[type=submit]');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Renamed in the browser');
  check((await api('GET', '/v1/authorizations/api-auth')).body.name === 'Renamed in the browser', 'summary: the new name is the API\'s');
  const upd = await page.waitForSelector('main tr[data-verb=updated]', { timeout: 10000 }).catch(() => null);
  check(upd !== null, 'summary: an `updated` event is shown after the edit');
}

function* document_order(list) {
  yield* list;
}

async function deletion(page, base, api) {
  await go(page, base, '#/authorizations/api-doomed', 'summary');
  await page.click('#delete');
  const dlg = await page.waitForSelector('dialog[open]');
  check(dlg !== null && (await dlg.textContent()).includes('Delete'), 'delete: a confirmation is asked first');
  await shot(page, 'delete-confirmation');
  check((await api('GET', '/v1/authorizations/api-doomed')).status === 200, 'delete: nothing is deleted before confirming');
  await page.click('dialog[open] button[value=cancel]');
  check((await page.$('dialog[open]')) === null && (await api('GET', '/v1/authorizations/api-doomed')).status === 200,
    'delete: Cancel keeps the authorization');
  await page.click('#delete');
  await page.click('dialog[open] button[value=ok]');
  await page.waitForFunction(() => location.hash === '#/authorizations');
  const gone = await api('GET', '/v1/authorizations/api-doomed');
  check(gone.status === 404, 'delete: confirmed, the API no longer has it', `HTTP ${gone.status}`);
}

async function integrationsPage(page, base, api) {
  const works = (await api('GET', '/v1/works?limit=60')).body.items;
  await go(page, base, '#/integrations', 'integrations');
  const tiles = await page.$$eval('li.tile', (ls) => ls.map((l) => [l.dataset.id, l.querySelector('.tile-status').textContent.trim()]));
  check(JSON.stringify(tiles) === JSON.stringify(works.map((w) => [w.id, w.status])), 'integrations: a tile per work with the API\'s status',
    `${JSON.stringify(tiles)} vs ${JSON.stringify(works.map((w) => [w.id, w.status]))}`);
  check(tiles.find((t) => t[0] === 'broken-import')?.[1] === 'Error', 'integrations: the failing work\'s tile is Error');
  // Live: a change made elsewhere shows without reloading.
  await api('PATCH', '/v1/works/w-bravo', { enabled: false });
  const live = await page.waitForFunction(() => document.querySelector('li.tile[data-id=w-bravo] .tile-status')?.textContent.trim() === 'Disabled',
    null, { timeout: 10000 }).then(() => true).catch(() => false);
  check(live, 'integrations: a work disabled through the API turns Disabled without a reload');
  await api('PATCH', '/v1/works/w-bravo', { enabled: true });

  // The e-mail toggle persists (through the API and a reload).
  await go(page, base, '#/integrations/w-alpha', 'integrations');
  check(!(await page.isChecked('#email-toggle')), 'integrations: the e-mail toggle starts off');
  const patched = page.waitForResponse((r) => r.url().endsWith('/v1/works/w-alpha') && r.request().method() === 'PATCH');
  await page.click('#email-toggle');
  check((await patched).status() === 200, 'integrations: the toggle PATCHes the work');
  check((await api('GET', '/v1/works/w-alpha')).body.error_email_notifications === true, 'integrations: the API has the e-mail toggle on');
  await page.reload();
  await page.waitForSelector('body[data-ready="integrations"]');
  check(await page.isChecked('#email-toggle'), 'integrations: the e-mail toggle is still on after a reload');
  await review(page, 'integrations-configuration');

  // The failing work's Logs tab: its execution Failed, transitions, error.
  await go(page, base, '#/integrations/broken-import?tab=logs', 'integrations');
  const ex = (await api('GET', '/v1/works/broken-import/executions?limit=50')).body.items;
  const states = await page.$$eval('#tabpanel tbody tr[data-state]', (trs) => trs.map((t) => t.dataset.state));
  check(JSON.stringify(states) === JSON.stringify(ex.map((e) => e.state)) && states.includes('Failed'),
    'integrations: the Logs tab lists the API\'s executions with a Failed one', `${states} vs ${ex.map((e) => e.state)}`);
  const failedEx = ex.find((e) => e.state === 'Failed');
  const row = await page.textContent(`#tabpanel tbody tr[data-id="${failedEx.id}"]`);
  check(failedEx.error && row.includes(failedEx.error), 'integrations: the failed execution shows its error', row);
  await page.click(`#tabpanel tbody tr[data-id="${failedEx.id}"] button`);
  await page.waitForSelector('#exec-detail table');
  const tr = await texts(page, '#exec-detail tbody tr td:nth-child(3)');
  check(tr.includes('Failed') && tr[0] === 'Created', 'integrations: the execution\'s transitions end in Failed', tr.join(' → '));
  await review(page, 'integrations-logs');

  // State history: the API's versions, and a rollback (confirmed first).
  const versions = (await api('GET', '/v1/works/w-alpha/states')).body.items.map((v) => String(v.version));
  await go(page, base, '#/integrations/w-alpha?tab=state', 'integrations');
  const shownV = await page.$$eval('#tabpanel tbody tr[data-version]', (t) => t.map((x) => x.dataset.version));
  check(JSON.stringify(shownV) === JSON.stringify(versions) && versions.length === 2, 'integrations: the state history equals the API\'s', `${shownV} vs ${versions}`);
  await review(page, 'integrations-state');
  await page.click('#tabpanel button.rollback[data-version="1"]');
  await page.click('dialog[open] button[value=ok]');
  await page.waitForSelector('#tabpanel tbody tr[data-version="3"]');
  const v3 = (await api('GET', '/v1/works/w-alpha/states')).body.items[0];
  check(v3.version === 3 && v3.note === 'set by operator: rollback to version 1', 'integrations: the rollback is the API\'s new version', JSON.stringify(v3));
}

async function eventsPage(page, base, api) {
  await go(page, base, '#/events?subject_type=auth&since=all', 'events');
  const listed = (await api('GET', '/v1/events?subject_type=auth&limit=200')).body.items.map((e) => String(e.id));
  const shown = await page.$$eval('#events tbody tr[data-id]', (trs) => trs.map((t) => t.dataset.id));
  check(JSON.stringify(shown) === JSON.stringify(listed), 'events: the filtered rows equal the API\'s', `${shown.length} vs ${listed.length}`);
  const upd = await page.$$eval('#events tbody tr[data-verb=updated]', (t) => t.map((x) => x.textContent));
  check(upd.some((t) => t.includes('api-auth')), 'events: the edit\'s `updated` event of api-auth is listed');

  // Live tail: a new event shows up (the time taken is printed, not judged).
  await page.click('#tail');
  await page.waitForTimeout(300); // the stream opens
  const before = await page.$$eval('#events tbody tr[data-id]', (t) => t.length);
  const t0 = Date.now();
  await api('PATCH', '/v1/authorizations/api-auth', { description: 'Changed while tailing' });
  const got = await page.waitForFunction((n) => document.querySelectorAll('#events tbody tr[data-id]').length > n, before, { timeout: 10000 })
    .then(() => Date.now() - t0).catch(() => null);
  check(got !== null, 'events: the live tail shows a new event');
  if (got !== null) console.log(`live tail: the new event appeared after ${got} ms`);
  await page.click('#tail');

  // Export: a download with every matching event.
  const all = (await api('GET', '/v1/events?subject_type=auth&limit=1000')).body.items;
  for (const fmt of ['jsonl', 'csv']) {
    await page.selectOption('#f-format', fmt);
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    const text = fs.readFileSync(await dl.path(), 'utf8');
    const lines = text.split(/\r?\n/).filter(Boolean);
    if (fmt === 'jsonl')
      check(lines.length === all.length && JSON.parse(lines[0]).id === all[0].id, 'events: the jsonl export holds every matching event',
        `${lines.length} vs ${all.length}`);
    else
      check(lines[0] === 'id,at,subject_type,subject_id,verb,actor,seq,data' && lines.length === all.length + 1,
        'events: the csv export has a header and a line per event', `${lines.length} lines`);
    check(dl.suggestedFilename() === `connrun-events.${fmt}`, `events: the ${fmt} file name`, dl.suggestedFilename());
  }
  await review(page, 'events');
}

async function subsPage(page, base, api) {
  const subs = (await api('GET', '/v1/subscriptions')).body.items;
  const alerts = (await api('GET', '/v1/alerts')).body.items;
  await go(page, base, '#/subscriptions', 'subscriptions');
  const cards = await page.$$eval('article.card', (as) => as.map((a) => a.dataset.id));
  check(JSON.stringify(cards) === JSON.stringify(subs.map((s) => s.id)), 'subscriptions: a card per subscription of the API', cards.join(','));
  const hook = subs.find((s) => s.id === 'hook');
  const text = await page.textContent('article.card[data-id=hook]');
  check(text.includes('created, updated, failed') && text.includes(`Backlog${hook.backlog}`), 'subscriptions: filter and backlog as the API has them', text.slice(0, 300));
  const rows = await page.$$eval('#alerts tbody tr[data-id]', (t) => t.map((x) => x.dataset.id));
  check(JSON.stringify(rows) === JSON.stringify(alerts.map((a) => a.id)), 'subscriptions: a row per alert rule', rows.join(','));
  // Create one from the documents' JSON (the form is prefilled with it).
  const made = page.waitForResponse((r) => r.url().endsWith('/v1/subscriptions') && r.request().method() === 'POST');
  await page.click('form[aria-labelledby=create-title] button[type=submit]');
  check((await made).status() === 201, 'subscriptions: the documents\' JSON creates a subscription');
  await page.waitForFunction((n) => document.querySelectorAll('article.card').length > n, cards.length);
  await page.click('article.card[data-id=hook] >> text=Show recent attempts');
  await page.waitForSelector('article.card[data-id=hook] table');
  await review(page, 'subscriptions');
}

async function runnersPage(page, base, api) {
  const runners = (await api('GET', '/v1/runners')).body.items;
  await go(page, base, '#/runners', 'runners');
  const rows = await page.$$eval('#runners tbody tr[data-id]', (t) => t.map((x) => [x.dataset.id, x.children[2].textContent]));
  check(JSON.stringify(rows) === JSON.stringify(runners.map((r) => [r.id, r.status])), 'runners: a row per runner with its status', JSON.stringify(rows));
  await review(page, 'runners');
}

async function readerToken(browser, base, reader) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await L.signIn(page, base, 'reader');
  await go(page, base, '#/authorizations/api-auth', 'summary');
  check((await page.$('#edit')) === null && (await page.$('#delete')) === null && (await page.$('#check')) === null,
    'read-only token: no edit, delete or check now on the summary');
  await go(page, base, '#/integrations/w-alpha', 'integrations');
  check(await page.isDisabled('#email-toggle') && (await page.$('#run-now')) === null, 'read-only token: no toggle nor run on a work');
  await go(page, base, '#/integrations/w-alpha?tab=state', 'integrations');
  check((await page.$$('#tabpanel tbody tr[data-version]')).length === 3 && (await page.$('button.rollback')) === null,
    'read-only token: the state history without rollback');
  await go(page, base, '#/subscriptions', 'subscriptions');
  check((await page.$('#sub-json')) === null, 'read-only token: no subscription form');
  await shot(page, 'summary-read-only');
  for (const [m, u, b] of [['PATCH', '/v1/authorizations/api-auth', { name: 'x' }], ['DELETE', '/v1/authorizations/api-auth'],
    ['PATCH', '/v1/works/w-alpha', { error_email_notifications: false }], ['POST', '/v1/works/w-alpha/states', { rollback_to: 1 }]]) {
    const r = await reader(m, u, b);
    check(r.status === 403, `read-only token: the API refuses ${m} ${u} (403)`, r.status);
  }
  await ctx.close();
}

async function signInChecks(page, base) {
  await page.goto(`${base}/`);
  await page.waitForSelector('#token');
  await shot(page, 'sign-in');
  await axe(page, 'sign-in');
  await page.fill('#token', 'not-a-token');
  await page.click('form.signin button[type=submit]');
  check(await page.waitForSelector('.error', { timeout: 5000 }).then(() => true).catch(() => false), 'sign-in: a bad token is refused');
  const stored = await page.evaluate(() => [sessionStorage.getItem('connrun.token'), document.cookie]);
  check(stored[0] === null && stored[1] === '', 'sign-in: a refused token is not kept, and no cookie');
  await L.signIn(page, base, 'admin');
  const kept = await page.evaluate(() => [sessionStorage.getItem('connrun.token'), document.cookie]);
  check(kept[0] === L.TOKENS.admin && kept[1] === '', 'sign-in: the token is in sessionStorage, never a cookie');
}

async function headers(base) {
  const r = await fetch(`${base}/`, { headers: { 'Accept-Encoding': 'gzip' } });
  const csp = r.headers.get('content-security-policy') ?? '';
  check(r.status === 200 && /script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), 'assets: a strict Content-Security-Policy', csp);
  check(r.headers.get('content-type') === 'text/html; charset=utf-8' && r.headers.get('etag') && r.headers.get('cache-control') === 'no-cache',
    'assets: type, ETag and Cache-Control of /');
  const js = await fetch(`${base}/assets/app.js`, { headers: { 'If-None-Match': r.headers.get('etag') } });
  check(js.headers.get('content-type') === 'text/javascript; charset=utf-8', 'assets: JavaScript served as text/javascript');
  const again = await fetch(`${base}/assets/app.js`, { headers: { 'If-None-Match': js.headers.get('etag') } });
  check(again.status === 304, 'assets: 304 when If-None-Match names the ETag', again.status);
  check((await fetch(`${base}/assets/nope.js`)).status === 404, 'assets: 404 for an unknown asset');
  check((await fetch(`${base}/v1/works`)).status === 401, 'assets need no token but /v1 still does');
}

// ---- Main -------------------------------------------------------------------

async function main() {
  const { browser, why } = await L.launch();
  if (!browser) {
    console.log(`SKIP: ${why}`);
    process.exit(77);
  }
  fs.mkdirSync(args.out, { recursive: true });
  const dir = L.tempDir('connrun-browser-');
  const log = path.join(dir, 'serve.log');
  let child = null;
  let fake = null;
  const cspErrors = [];
  try {
    const s = await L.startServer(args.bin, writeConfig(dir), log);
    child = s.child;
    const api = L.client(s.base);
    fake = await fakeProvider();
    await seed(api, `http://127.0.0.1:${fake.address().port}`);
    await headers(s.base);
    const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) cspErrors.push(m.text()); });
    page.on('pageerror', (e) => check(false, 'no script error on the page', e.message));
    await signInChecks(page, s.base);
    for (const [name, fn] of [['authorizations', authListPage], ['summary', summaryPage], ['delete', deletion],
      ['integrations', integrationsPage], ['events', eventsPage], ['subscriptions', subsPage], ['runners', runnersPage]]) {
      try {
        await fn(page, s.base, api);
      } catch (e) {
        check(false, `${name}: ran to its end`, e.stack);
        await shot(page, `${name}-failure`).catch(() => {});
      }
    }
    await readerToken(browser, s.base, L.client(s.base, 'reader'));
    check(cspErrors.length === 0, 'no Content-Security-Policy violation', cspErrors.join('\n'));
  } catch (e) {
    check(false, 'the browser test ran to its end', e.stack);
  } finally {
    await browser.close();
    if (child) check(await L.stopServer(child) === 0, 'connrun serve stops cleanly on SIGTERM');
    fake?.close();
  }
  const logText = fs.readFileSync(log, 'utf8');
  for (const t of Object.values(L.TOKENS))
    check(!logText.includes(t), 'the server log never shows a token');
  if (failed > 0) console.log(`server log: ${log}`);
  else fs.rmSync(dir, { recursive: true, force: true });
  console.log(`screenshots: ${args.out}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

main();
