// auths.js: the Authorizations list (health badges, filters, paging through
// any number with the API's cursors) and the Authorization Summary as the
// product document lays it out: health, id, provider, method, owner,
// created, updated at the top; edit (name and description only) and delete
// at the top right; check now; the activity metrics chart with its date
// window and hourly / daily / weekly / monthly toggle; the associated jobs
// and exports, sortable by name, type, status and creation date.
import { h, clear, badge, dl, table, timeEl, confirmDialog, errorBox, announce, debounce } from './dom.js';
import { call, get, can, qs } from './api.js';
import { subscribe, liveRefresh } from './live.js';
import { barChart, fillBuckets } from './chart.js';

const PAGE = 50;

export async function authList(main, { query }) {
  const provider = h('input', { id: 'f-provider', value: query.provider ?? '', size: 14 });
  const health = h('select', { id: 'f-health' }, ['', 'Healthy', 'Unhealthy', 'Unknown'].map((v) =>
    h('option', { value: v }, v || 'Any')));
  health.value = query.health ?? '';
  const filter = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter authorizations' },
    h('label', { for: 'f-provider' }, 'Provider'), provider,
    h('label', { for: 'f-health' }, 'Health'), health,
    h('button', { type: 'submit' }, 'Filter'));
  filter.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#/authorizations${qs({ provider: provider.value.trim(), health: health.value })}`;
  });
  const body = h('div', { id: 'auth-table' });
  clear(main, h('h1', {}, 'Authorizations'), filter, body);
  // Cursors of the pages seen, so that Previous goes back.
  const trail = query.trail ? query.trail.split(',') : [];
  const load = async () => {
    const limit = Math.min(Math.max(Number(query.limit) || PAGE, 1), 1000);
    const page = await get(`/v1/authorizations${qs({ limit, after: query.after, provider: query.provider, health: query.health })}`);
    const rows = page.items;
    const nav = (after, tr) => `#/authorizations${qs({ provider: query.provider, health: query.health, limit: query.limit, after, trail: tr.join(',') })}`;
    // The trail holds the cursors of the pages before; '~' (no id has it)
    // stands for the first page.
    const back = trail[trail.length - 1];
    const prev = trail.length ? nav(back === '~' ? undefined : back, trail.slice(0, -1)) : null;
    const next = page.cursor && page.next ? nav(page.cursor, [...trail, query.after ?? '~']) : null;
    clear(body, table({
      caption: `Authorizations${query.after ? ' (continued)' : ''}`,
      columns: [
        { key: 'health', label: 'Health', cell: (a) => badge(a.health.status) },
        { key: 'name', label: 'Name', cell: (a) => h('a', { href: `#/authorizations/${encodeURIComponent(a.id)}` }, a.name || a.id) },
        { key: 'id', label: 'Authorization ID', cell: (a) => h('code', {}, a.id) },
        { key: 'provider', label: 'Provider', cell: (a) => a.provider.display_name ?? a.provider.id },
        { key: 'method', label: 'Method' },
        { key: 'owner', label: 'Owner' },
        { key: 'created', label: 'Created', cell: (a) => timeEl(a.created_at) },
        { key: 'updated', label: 'Updated', cell: (a) => timeEl(a.updated_at) },
      ],
      rows, empty: 'No authorization matches.', rowAttrs: (a) => ({ 'data-id': a.id }),
    }), h('nav', { class: 'pager', 'aria-label': 'Pages' },
      prev !== null ? h('a', { href: prev, rel: 'prev' }, '← Previous') : null,
      h('span', {}, `${rows.length} shown`),
      next ? h('a', { href: next, rel: 'next' }, 'Next →') : null));
  };
  await load();
  return liveRefresh(load, (ev) => ev.subject_type === 'auth');
}

// The chart section: date window + granularity, redrawn on change.
function metricsSection(id) {
  const day = 86400000;
  const iso = (t) => new Date(t).toISOString().slice(0, 10);
  const from = h('input', { type: 'date', id: 'm-from', value: iso(Date.now() - 7 * day) });
  const to = h('input', { type: 'date', id: 'm-to', value: iso(Date.now() + day) });
  const grans = [['hour', 'Hourly'], ['day', 'Daily'], ['week', 'Weekly'], ['month', 'Monthly']];
  let gran = 'day';
  const radios = h('fieldset', { class: 'toggle' }, h('legend', {}, 'Granularity'),
    grans.map(([v, l]) => h('label', {}, h('input', { type: 'radio', name: 'gran', value: v, checked: v === gran,
      onchange: () => { gran = v; draw(); } }), l)));
  const out = h('div', { class: 'chart-box' });
  const draw = async () => {
    try {
      const m = await get(`/v1/authorizations/${encodeURIComponent(id)}/metrics${qs({ granularity: gran, from: from.value, to: to.value })}`);
      const points = fillBuckets(m.points, gran, Date.parse(from.value), Date.parse(to.value));
      const total = points.reduce((a, p) => a + p.requests, 0);
      clear(out, barChart({ granularity: gran, points }), h('p', { class: 'muted', id: 'm-summary' },
        `${points.length} buckets, ${total} requests`));
    } catch (e) {
      clear(out, errorBox(e));
    }
  };
  from.addEventListener('change', draw);
  to.addEventListener('change', draw);
  draw();
  return h('section', { 'aria-labelledby': 'metrics-title' }, h('h2', { id: 'metrics-title' }, 'Activity metrics'),
    h('div', { class: 'filters' }, h('label', { for: 'm-from' }, 'From'), from, h('label', { for: 'm-to' }, 'To'), to, radios), out);
}

const WORK_COLS = [
  { key: 'name', label: 'Name', sort: true, cell: (w) => h('a', { href: `#/integrations/${encodeURIComponent(w.id)}` }, w.name || w.id) },
  { key: 'type', label: 'Type', sort: true },
  { key: 'status', label: 'Status', sort: true, cell: (w) => badge(w.status) },
  { key: 'created', label: 'Created', sort: true, value: (w) => w.created_at ?? '', cell: (w) => timeEl(w.created_at) },
];

function worksTable(id, title, rows) {
  const box = h('div', { id });
  let sort = { key: 'name', dir: 'asc' };
  const draw = () => clear(box, table({ caption: title, columns: WORK_COLS, rows, sort,
    onSort: (s) => { sort = s; draw(); box.querySelector(`button[data-key="${s.key}"]`)?.focus(); },
    empty: 'None.', rowAttrs: (w) => ({ 'data-id': w.id }) }));
  draw();
  return h('section', {}, h('h2', {}, title), box);
}

function editForm(a, etag, done) {
  const name = h('input', { id: 'e-name', value: a.name, required: true });
  const desc = h('textarea', { id: 'e-desc', rows: 3 }, a.description ?? '');
  const err = h('div');
  const form = h('form', { class: 'edit', 'aria-label': 'Edit authorization' },
    h('p', { class: 'muted' }, 'Only the name and description can change; for another configuration create a new authorization.'),
    h('label', { for: 'e-name' }, 'Name'), name, h('label', { for: 'e-desc' }, 'Description'), desc,
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => done(false) }, 'Cancel'),
      h('button', { type: 'submit' }, 'Save')), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await call(`/v1/authorizations/${encodeURIComponent(a.id)}`, { method: 'PATCH',
        body: { name: name.value, description: desc.value }, headers: etag ? { 'If-Match': etag } : {} });
      announce('Saved.');
      done(true);
    } catch (x) {
      clear(err, errorBox(x.status === 412 ? new Error('Someone changed it meanwhile: reload and try again.') : x));
    }
  });
  setTimeout(() => name.focus());
  return form;
}

// The latest events about one subject (at most 20, newest first).
export async function recentEvents(type, id) {
  const page = await get(`/v1/events${qs({ subject_type: type, subject_id: id, since: '30d', limit: 1000 })}`);
  const rows = page.items.slice(-20).reverse();
  return h('section', {}, h('h2', {}, 'Recent events'), table({
    caption: `Events about ${type} ${id}`, rowAttrs: (e) => ({ 'data-verb': e.verb }),
    columns: [
      { key: 'at', label: 'When', cell: (e) => timeEl(e.at) },
      { key: 'verb', label: 'Verb' },
      { key: 'actor', label: 'Actor' },
      { key: 'data', label: 'Data', cell: (e) => h('code', { class: 'json' }, JSON.stringify(e.data)) },
    ], rows, empty: 'No event in 30 days.' }));
}

export async function authSummary(main, { id }) {
  const path = `/v1/authorizations/${encodeURIComponent(id)}`;
  let res;
  const events = recentEvents('auth', id).catch((e) => errorBox(e)); // at the same time
  try {
    res = await call(path);
  } catch (e) {
    clear(main, h('h1', {}, 'Authorization'), errorBox(e), h('a', { href: '#/authorizations' }, 'All authorizations'));
    return null;
  }
  const a = res.body;
  const editable = can('write') && a.managed_by === 'api';
  const topActions = h('div', { class: 'top-actions' });
  const editBox = h('div');
  const msg = h('div', { id: 'auth-msg' });
  if (can('write')) {
    topActions.append(h('button', { type: 'button', id: 'check', onclick: async (e) => {
      e.target.disabled = true;
      try {
        const r = await call(`${path}/check`, { method: 'POST' });
        clear(msg, h('p', { role: 'status' }, `Check: ${r.body.status}${r.body.reason ? ` (${r.body.reason})` : ''}`));
        rerender();
      } catch (x) {
        clear(msg, errorBox(x));
      } finally {
        e.target.disabled = false;
      }
    } }, 'Check now'));
  }
  if (editable) {
    topActions.append(h('button', { type: 'button', id: 'edit', onclick: () =>
      clear(editBox, editForm(a, res.etag, (saved) => { clear(editBox); if (saved) rerender(); })) }, 'Edit'));
    topActions.append(h('button', { type: 'button', id: 'delete', class: 'danger', onclick: async () => {
      const uses = a.jobs.length + a.exports.length;
      const ok = await confirmDialog(`Delete ${a.name || a.id}?`,
        uses ? `${uses} work(s) use this authorization and will stop working. This cannot be undone.`
          : 'This cannot be undone.', 'Delete');
      if (!ok) return;
      try {
        await call(path, { method: 'DELETE' });
        location.hash = '#/authorizations';
      } catch (x) {
        clear(msg, errorBox(x));
      }
    } }, 'Delete'));
  } else if (can('write') && a.managed_by === 'config') {
    topActions.append(h('p', { class: 'muted' }, `Declared in the configuration (${a.declared_at ?? 'file'}): edit or delete it there.`));
  }
  clear(main,
    h('div', { class: 'title-row' }, h('h1', {}, a.name || a.id), topActions),
    a.description ? h('p', { id: 'auth-desc' }, a.description) : null, editBox, msg,
    dl([
      ['Health', h('span', {}, badge(a.health.status), a.health.reason ? ` ${a.health.reason}` : '')],
      ['Authorization ID', h('code', {}, a.id)],
      ['Provider', a.provider.display_name ?? a.provider.id],
      ['Method', a.method],
      ['Owner', a.owner],
      ['Created', timeEl(a.created_at)],
      ['Updated', timeEl(a.updated_at)],
    ], 'facts summary'),
    metricsSection(id),
    worksTable('jobs', 'Associated jobs', a.jobs),
    worksTable('exports', 'Associated exports', a.exports),
    await events);
  const rerender = debounce(async () => {
    if (!location.hash.startsWith(`#/authorizations/${encodeURIComponent(id)}`)) return;
    const un = unsub;
    const next = await authSummary(main, { id }).catch(() => null);
    un();
    unsub = next ?? (() => {});
  }, 200);
  let unsub = subscribe((ev) => {
    if (ev.subject_id === id || (ev.subject_type === 'work' && a.jobs.concat(a.exports).some((w) => w.id === ev.subject_id)))
      rerender();
  });
  return () => {
    unsub();
    rerender.cancel();
  };
}
