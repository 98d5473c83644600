// works.js: the Integrations page: a tile per work with its configuration
// status (Active / Error / Disabled) at the bottom left, and the panel of
// the selected work with its tabs: Configuration (settings, the error
// e-mail notifications toggle, enable and run now for writers) and Logs
// (upcoming collection times, executions with their states, times, records
// and errors, and each execution's transitions and log lines) and State
// history (the plugin's committed cursors, with a rollback for writers).
import { h, clear, badge, dl, table, timeEl, errorBox, announce, confirmDialog } from './dom.js';
import { call, get, can, qs } from './api.js';
import { liveRefresh } from './live.js';
import { recentEvents } from './auths.js';

const PAGE = 60;

function tile(w, selected) {
  return h('li', { class: `tile${selected ? ' selected' : ''}`, 'data-id': w.id },
    h('a', { href: `#/integrations/${encodeURIComponent(w.id)}`, 'aria-current': selected ? 'true' : undefined },
      h('span', { class: 'tile-name' }, w.name || w.id)),
    h('span', { class: 'muted' }, `${w.provider} · ${w.type}${w.schedule ? ` · ${w.schedule}` : ''}`),
    h('span', { class: 'tile-status' }, badge(w.status)));
}

function configTab(w, reload) {
  const out = h('div');
  const managed = w.managed_by === 'config';
  const mayChange = can('write') && !managed;
  const toggle = (key, label, id) => {
    const box = h('input', { type: 'checkbox', role: 'switch', id, checked: w[key], disabled: !mayChange,
      onchange: async () => {
        try {
          await call(`/v1/works/${encodeURIComponent(w.id)}`, { method: 'PATCH', body: { [key]: box.checked } });
          announce(`${label}: ${box.checked ? 'on' : 'off'}`);
          reload();
        } catch (x) {
          box.checked = !box.checked;
          clear(out, errorBox(x));
        }
      } });
    return h('div', { class: 'switch' }, box, h('label', { for: id }, label));
  };
  const run = can('write') ? h('button', { type: 'button', id: 'run-now', disabled: !w.enabled, onclick: async () => {
    try {
      const r = await call(`/v1/works/${encodeURIComponent(w.id)}/runs`, { method: 'POST' });
      announce(`Execution ${r.body.id} created.`);
      reload();
    } catch (x) {
      clear(out, errorBox(x));
    }
  } }, 'Run now') : null;
  return h('div', {},
    dl([
      ['Work ID', h('code', {}, w.id)], ['Provider', w.provider],
      ['Authorization', w.authorization ? h('a', { href: `#/authorizations/${encodeURIComponent(w.authorization)}` }, w.authorization) : '—'],
      ['Type', w.type], ['Schedule', w.schedule ?? 'only when triggered'],
      ['Status', h('span', {}, badge(w.status), w.status_reason ? ` ${w.status_reason}` : '')],
      ['Next run', timeEl(w.next_run_at)], ['Created', timeEl(w.created_at)], ['Updated', timeEl(w.updated_at)],
      ['Managed by', managed ? `configuration (${w.declared_at ?? 'file'})` : 'API'],
    ]),
    h('h3', {}, 'General'),
    toggle('error_email_notifications', 'Error e-mail notifications', 'email-toggle'),
    h('p', { class: 'muted' }, 'When on, an e-mail is sent when this work has a 30 % or higher error rate in 24 hours.'),
    toggle('enabled', 'Enabled', 'enabled-toggle'),
    managed && can('write') ? h('p', { class: 'muted' }, 'Declared in the configuration file: change these settings there.') : null,
    run, out);
}

async function execDetail(id, box) {
  try {
    const e = await get(`/v1/executions/${id}`);
    clear(box,
      table({ caption: `Transitions of execution ${id}`, columns: [
        { key: 'at', label: 'At', cell: (t) => timeEl(t.at) }, { key: 'from', label: 'From' },
        { key: 'to', label: 'To', cell: (t) => badge(t.to) }, { key: 'reason', label: 'Reason' }], rows: e.transitions }),
      e.waiting_reason ? h('p', { class: 'muted' }, e.waiting_reason) : null,
      h('h4', {}, 'Log'),
      e.log.length ? h('pre', { class: 'log' }, e.log.map((l) => `${l.at ?? ''} [${l.level}] ${l.text}\n`).join(''))
        : h('p', { class: 'muted' }, 'No log line (lines come from remote runners).'),
      e.error ? h('p', { class: 'error' }, `${e.error_class ?? 'error'}: ${e.error}`) : null);
  } catch (x) {
    clear(box, errorBox(x));
  }
}

async function logsTab(w) {
  const enc = encodeURIComponent(w.id);
  const [sched, execs] = await Promise.all([
    get(`/v1/works/${enc}/schedule?next=5`).catch(() => null),
    get(`/v1/works/${enc}/executions?limit=50`),
  ]);
  const upcoming = sched?.next ?? [];
  const detail = h('div', { id: 'exec-detail', 'aria-live': 'polite' });
  return h('div', {},
    h('h3', {}, 'Upcoming collection times'),
    upcoming.length ? h('ul', { id: 'upcoming' }, upcoming.map((t) => h('li', {}, timeEl(t))))
      : h('p', { class: 'muted' }, 'None scheduled.'),
    h('h3', {}, 'Executions'),
    table({ caption: `Executions of ${w.id}`, rows: execs.items, empty: 'No execution yet.',
      rowAttrs: (e) => ({ 'data-state': e.state, 'data-id': e.id }),
      columns: [
        { key: 'id', label: 'Execution', cell: (e) => h('button', { type: 'button', class: 'link',
          onclick: () => execDetail(e.id, detail) }, `#${e.id}`) },
        { key: 'state', label: 'State', cell: (e) => badge(e.state) },
        { key: 'created_at', label: 'Created', cell: (e) => timeEl(e.created_at) },
        { key: 'updated_at', label: 'Updated', cell: (e) => timeEl(e.updated_at) },
        { key: 'records', label: 'Records' },
        { key: 'runner', label: 'Runner' },
        { key: 'error', label: 'Error', cell: (e) => e.error ?? '' },
      ] }),
    detail, await recentEvents('work', w.id));
}

// The State tab: the versions of the work's sync state (its plugin's
// cursors), and for writers a rollback to an older one (confirmed first).
async function stateTab(w, reload) {
  const enc = encodeURIComponent(w.id);
  const page = await get(`/v1/works/${enc}/states?limit=50`);
  const msg = h('div');
  const newest = page.items[0]?.version;
  const rollback = async (v) => {
    const ok = await confirmDialog(`Roll ${w.name || w.id} back to version ${v}?`,
      `Its next execution resumes from version ${v}'s state; the versions after it stay in the history.`, 'Roll back');
    if (!ok) return;
    try {
      const r = await call(`/v1/works/${enc}/states`, { method: 'POST', body: { rollback_to: v } });
      announce(`State version ${r.body.version} committed.`);
      reload();
    } catch (x) {
      clear(msg, errorBox(x));
    }
  };
  const cols = [
    { key: 'version', label: 'Version' },
    { key: 'committed_at', label: 'Committed', cell: (v) => timeEl(v.committed_at) },
    { key: 'records', label: 'Records' },
    { key: 'execution_id', label: 'Set by', cell: (v) => (v.execution_id ? `execution #${v.execution_id}` : (v.note ?? 'a person')) },
    { key: 'state', label: 'State', cell: (v) => h('code', { class: 'json' }, JSON.stringify(v.state)) },
  ];
  if (can('write'))
    cols.push({ key: 'action', label: 'Action', cell: (v) => (v.version === newest ? 'current'
      : h('button', { type: 'button', class: 'rollback', dataset: { version: v.version }, onclick: () => rollback(v.version) },
        `Roll back to ${v.version}`)) });
  return h('div', {}, msg, table({ caption: `State history of ${w.id}, newest first`, columns: cols, rows: page.items,
    empty: 'No state committed yet.', rowAttrs: (v) => ({ 'data-version': v.version }) }));
}

async function panel(id, tabName, onTab, reload) {
  const w = await get(`/v1/works/${encodeURIComponent(id)}`);
  const tabs = [['config', 'Configuration'], ['logs', 'Logs'], ['state', 'State history']];
  const tablist = h('div', { role: 'tablist', 'aria-label': 'Work panel' }, tabs.map(([t, l]) =>
    h('button', { type: 'button', role: 'tab', id: `tab-${t}`, 'aria-selected': t === tabName ? 'true' : 'false',
      'aria-controls': 'tabpanel', tabindex: t === tabName ? '0' : '-1', onclick: () => onTab(t),
      onkeydown: (e) => {
        const i = tabs.findIndex(([x]) => x === t);
        if (e.key === 'ArrowRight') onTab(tabs[(i + 1) % tabs.length][0]);
        if (e.key === 'ArrowLeft') onTab(tabs[(i + tabs.length - 1) % tabs.length][0]);
      } }, l)));
  const body = tabName === 'logs' ? await logsTab(w) : tabName === 'state' ? await stateTab(w, reload) : configTab(w, reload);
  return h('aside', { class: 'panel', 'aria-labelledby': 'panel-title' },
    h('h2', { id: 'panel-title' }, w.name || w.id), tablist,
    h('div', { role: 'tabpanel', id: 'tabpanel', 'aria-labelledby': `tab-${tabName}`, tabindex: '0' }, body));
}

export async function integrations(main, { id, query }) {
  const status = h('select', { id: 'f-status' }, ['', 'Active', 'Error', 'Disabled'].map((v) => h('option', { value: v }, v || 'Any')));
  status.value = query.status ?? '';
  const filter = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter works' },
    h('label', { for: 'f-status' }, 'Status'), status, h('button', { type: 'submit' }, 'Filter'));
  filter.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#/integrations${qs({ status: status.value })}`;
  });
  const grid = h('div', { id: 'tiles' });
  const side = h('div', { id: 'panel' });
  let tab = ['logs', 'state'].includes(query.tab) ? query.tab : 'config';
  clear(main, h('h1', {}, 'Integrations'), filter, h('div', { class: 'split' }, grid, side));
  const tail = (s) => qs({ status: query.status, after: query.after, tab: s });
  const loadTiles = async () => {
    const page = await get(`/v1/works${qs({ limit: PAGE, after: query.after, status: query.status?.toLowerCase() })}`);
    clear(grid, h('h2', { class: 'sr-only' }, 'Configured'),
      h('ul', { class: 'tiles' }, page.items.map((w) => {
        const t = tile(w, w.id === id);
        t.querySelector('a').href = `#/integrations/${encodeURIComponent(w.id)}${tail(tab)}`;
        return t;
      })),
      page.next ? h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('a', { href: `#/integrations${qs({ status: query.status, after: page.cursor })}`, rel: 'next' }, 'Next →')) : null);
  };
  const loadPanel = async () => {
    if (!id) {
      clear(side, h('p', { class: 'muted' }, 'Select a work to see its configuration and logs.'));
      return;
    }
    try {
      clear(side, await panel(id, tab, (t) => {
        tab = t;
        history.replaceState(null, '', `#/integrations/${encodeURIComponent(id)}${tail(t)}`);
        loadPanel().then(() => document.getElementById(`tab-${t}`)?.focus());
      }, () => refresh()));
    } catch (x) {
      clear(side, errorBox(x));
    }
  };
  let refresh = () => {};
  await Promise.all([loadTiles(), loadPanel()]);
  const live = liveRefresh(() => Promise.all([loadTiles(), loadPanel()]), (ev) => ev.subject_type === 'work');
  refresh = live.refresh;
  return live;
}
