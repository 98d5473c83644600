// subs.js: Subscriptions and alerts: each subscription with its filter,
// backlog, success rate and recent delivery attempts (status, latency),
// replay and delete for writers, a subscription created from the
// documents' JSON; the alert rules with their breach state.
import { h, clear, badge, dl, table, timeEl, errorBox, announce } from './dom.js';
import { call, get, can } from './api.js';
import { liveRefresh } from './live.js';

// The audit-log document's "Basic Webhook Setup" example.
const EXAMPLE = {
  config: {
    system_event_multiple_types: ['updated', 'created', 'failed'],
    webhook_url: 'https://example.com/connrun-events',
    headers: { 'custom-header': 'header-value' },
  },
  workflow: 'webhook_system_events',
};

function filterText(c) {
  const verbs = c.system_event_multiple_types ?? (c.system_event_type ? [c.system_event_type] : []);
  const src = c.system_event_sources ? Object.entries(c.system_event_sources)
    .map(([t, ids]) => `${t}: ${ids.length ? ids.join(', ') : 'all'}`).join('; ') : 'every subject';
  return `${verbs.length ? verbs.join(', ') : 'every verb'} on ${src}`;
}

async function attempts(s, box) {
  try {
    const page = await get(`/v1/subscriptions/${encodeURIComponent(s.id)}/attempts?limit=20`);
    clear(box, table({ caption: `Recent attempts of ${s.id}`, rows: page.items, empty: 'No attempt yet.', columns: [
      { key: 'at', label: 'At', cell: (a) => timeEl(a.at) }, { key: 'event_id', label: 'Event' },
      { key: 'http_status', label: 'Status', cell: (a) => (a.http_status ? String(a.http_status) : 'no answer') },
      { key: 'latency_ms', label: 'Latency (ms)' }, { key: 'error', label: 'Error', cell: (a) => a.error ?? '' }] }));
  } catch (x) {
    clear(box, errorBox(x));
  }
}

function subCard(s, reload) {
  const enc = encodeURIComponent(s.id);
  const box = h('div');
  const msg = h('div');
  const since = h('input', { type: 'datetime-local', id: `replay-${s.id}` });
  const actions = can('write') ? h('div', { class: 'actions' },
    h('label', { for: `replay-${s.id}` }, 'Replay since'), since,
    h('button', { type: 'button', onclick: async () => {
      const t = since.value ? new Date(since.value).getTime() : Date.now() - 86400000;
      try {
        const r = await call(`/v1/subscriptions/${enc}/replay`, { method: 'POST', body: { since: t } });
        clear(msg, h('p', { role: 'status' }, `${r.body.queued} deliveries queued.`));
      } catch (x) {
        clear(msg, errorBox(x));
      }
    } }, 'Replay'),
    s.managed_by === 'api' ? h('button', { type: 'button', class: 'danger', onclick: async () => {
      try {
        await call(`/v1/subscriptions/${enc}`, { method: 'DELETE' });
        reload();
      } catch (x) {
        clear(msg, errorBox(x));
      }
    } }, 'Delete') : null) : null;
  const rate = s.success_rate_24h === null ? '—' : `${Math.round(s.success_rate_24h * 1000) / 10} %`;
  return h('article', { class: 'card', 'data-id': s.id }, h('h3', {}, s.name || s.id),
    dl([['ID', h('code', {}, s.id)], ['Workflow', s.workflow],
      ['State', s.enabled ? badge('Active') : h('span', {}, badge('Disabled'), ` ${s.disabled_reason ?? ''}`)],
      ['Filter', filterText(s.config)], ['Destination', s.config.webhook_url ?? '—'],
      ['Backlog', String(s.backlog)], ['Delivered', String(s.delivered)], ['Dead', String(s.dead)],
      ['Success rate (24 h)', rate], ['Last attempt', timeEl(s.last_attempt_at)],
      ['Last status', s.last_status ? String(s.last_status) : '—'], ['Last error', s.last_error ?? '—']]),
    h('button', { type: 'button', onclick: () => attempts(s, box) }, 'Show recent attempts'), actions, msg, box);
}

function createForm(reload) {
  const text = h('textarea', { id: 'sub-json', rows: 10, cols: 60, spellcheck: 'false' }, JSON.stringify(EXAMPLE, null, 2));
  const msg = h('div');
  const form = h('form', { 'aria-labelledby': 'create-title' }, h('h3', { id: 'create-title' }, 'Create a subscription'),
    h('label', { for: 'sub-json' }, 'Subscription (the documents’ JSON)'), text,
    h('button', { type: 'submit' }, 'Create'), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let body;
    try {
      body = JSON.parse(text.value);
    } catch (x) {
      clear(msg, errorBox(new Error(`Not JSON: ${x.message}`)));
      return;
    }
    try {
      const r = await call('/v1/subscriptions', { method: 'POST', body });
      announce(`Subscription ${r.body.id} created.`);
      clear(msg);
      reload();
    } catch (x) {
      clear(msg, errorBox(x));
    }
  });
  return form;
}

export async function subscriptionsPage(main) {
  const subsBox = h('div', { id: 'subs' });
  const alertsBox = h('div', { id: 'alerts' });
  const load = async () => {
    const [subs, alerts] = await Promise.all([get('/v1/subscriptions?limit=100'), get('/v1/alerts')]);
    clear(subsBox, subs.items.length ? subs.items.map((s) => subCard(s, load)) : h('p', { class: 'muted' }, 'No subscription.'));
    clear(alertsBox, table({ caption: 'Alert rules', rows: alerts.items, empty: 'No alert rule.',
      rowAttrs: (a) => ({ 'data-id': a.id }), columns: [
        { key: 'name', label: 'Name', cell: (a) => a.name || a.id }, { key: 'channel', label: 'Channel' },
        { key: 'rule', label: 'Rule', cell: (a) => [a.default ? 'error e-mails of works' : null,
          a.error_rate ? `error rate ≥ ${a.error_rate.threshold_pct} % over ${Math.round(a.error_rate.window_ms / 3600000)} h` : null,
          a.events ? 'events' : null].filter(Boolean).join('; ') || '—' },
        { key: 'works', label: 'Works', cell: (a) => (a.works.length ? a.works.join(', ') : 'every work') },
        { key: 'breach', label: 'Breach', cell: (a) => (a.in_breach.length ? h('span', {}, badge('Error'), ` ${a.in_breach.join(', ')}`) : badge('Active')) },
      ] }));
  };
  clear(main, h('h1', {}, 'Subscriptions and alerts'),
    h('section', { 'aria-labelledby': 'subs-title' }, h('h2', { id: 'subs-title' }, 'Subscriptions'), subsBox,
      can('write') ? createForm(() => load()) : null),
    h('section', { 'aria-labelledby': 'alerts-title' }, h('h2', { id: 'alerts-title' }, 'Alerts'), alertsBox));
  await load();
  return liveRefresh(load, (ev) => ev.subject_type === 'subscription' || ev.verb === 'failed', 500);
}
