// events.js: the audit log: filters by subject type, subject id and verb
// (the documents' vocabulary), pages of events, a live tail over the event
// stream with the same filters, and a one-time export as JSON lines or CSV.
import { h, clear, table, timeEl, errorBox, announce } from './dom.js';
import { get, qs, stream } from './api.js';

// The product document's subject types and verbs (and connrun's own).
const TYPES = ['account', 'auth', 'user', 'campaign', 'data', 'entity', 'experience', 'journey', 'program',
  'provider', 'query', 'report', 'rollup', 'schema', 'schematable', 'scoring', 'segment', 'segmentcollection',
  'segmentml', 'stream', 'subscription', 'topic-document', 'variation', 'work', 'workflow'];
const VERBS = ['synccomplete', 'updated', 'created', 'deleted', 'synced', 'completed', 'started', 'failed',
  'syncing', 'healthy', 'unhealthy'];
const EXPORT_MAX = 10000; // events one export reads at most
const COLS = [
  { key: 'id', label: 'ID' },
  { key: 'at', label: 'When', cell: (e) => timeEl(e.at) },
  { key: 'subject_type', label: 'Subject type' },
  { key: 'subject_id', label: 'Subject ID' },
  { key: 'verb', label: 'Verb' },
  { key: 'actor', label: 'Actor' },
  { key: 'data', label: 'Data', cell: (e) => h('code', { class: 'json' }, JSON.stringify(e.data)) },
];

const select = (id, values, value, any) => {
  const s = h('select', { id }, [h('option', { value: '' }, any), ...values.map((v) => h('option', { value: v }, v))]);
  s.value = value ?? '';
  return s;
};

function csvCell(v) {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function eventsPage(main, { query }) {
  const f = { subject_type: query.subject_type, subject_id: query.subject_id, verb: query.verb, since: query.since ?? '24h' };
  const type = select('f-type', TYPES, f.subject_type, 'Any');
  const sid = h('input', { id: 'f-id', value: f.subject_id ?? '', size: 16 });
  const verb = select('f-verb', VERBS, f.verb, 'Any');
  const since = select('f-since', ['1h', '24h', '7d', '30d'], f.since, 'All time');
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter events' },
    h('label', { for: 'f-type' }, 'Subject type'), type, h('label', { for: 'f-id' }, 'Subject ID'), sid,
    h('label', { for: 'f-verb' }, 'Verb'), verb, h('label', { for: 'f-since' }, 'Since'), since,
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = `#/events${qs({ subject_type: type.value, subject_id: sid.value.trim(), verb: verb.value, since: since.value || 'all' })}`;
  });
  const sinceParam = f.since === 'all' ? undefined : f.since;
  const params = { subject_type: f.subject_type, subject_id: f.subject_id, verb: f.verb };
  const rows = [];
  const box = h('div', { id: 'events' });
  const draw = () => clear(box, table({ caption: 'Events, oldest first', columns: COLS, rows, empty: 'No event matches.',
    rowAttrs: (e) => ({ 'data-id': e.id, 'data-verb': e.verb }) }));
  let next = null;
  const more = h('button', { type: 'button', id: 'more', onclick: () => loadPage().catch((x) => clear(msg, errorBox(x))) }, 'Load more');
  const msg = h('div');
  const loadPage = async () => {
    const page = await get(next ?? `/v1/events${qs({ ...params, since: sinceParam, limit: 200 })}`);
    rows.push(...page.items);
    next = page.next;
    more.hidden = !next;
    draw();
  };
  // Live tail: the stream from the newest event on, with the same filters.
  let tail = null;
  const tailBtn = h('button', { type: 'button', id: 'tail', 'aria-pressed': 'false' }, 'Start live tail');
  tailBtn.addEventListener('click', () => {
    if (tail) {
      tail.abort();
      tail = null;
      tailBtn.textContent = 'Start live tail';
      tailBtn.setAttribute('aria-pressed', 'false');
      return;
    }
    tail = new AbortController();
    tailBtn.textContent = 'Stop live tail';
    tailBtn.setAttribute('aria-pressed', 'true');
    const after = rows.length ? rows[rows.length - 1].id : undefined;
    // Without a cursor the stream starts at the newest event; with one it
    // resumes after the last row shown (the pages may still be catching up).
    stream({ ...params, after: next ? undefined : after }, (ev) => {
      if (rows.some((r) => r.id === ev.id)) return;
      rows.push(ev);
      draw();
      announce(`New event: ${ev.subject_type} ${ev.subject_id} ${ev.verb}`);
    }, tail.signal).catch((x) => { if (tail) clear(msg, errorBox(x)); });
  });
  // Export: every matching event (at most EXPORT_MAX) as a file.
  const fmt = select('f-format', ['jsonl', 'csv'], 'jsonl', 'Format');
  fmt.querySelector('option[value=""]').remove();
  const exportBtn = h('button', { type: 'button', id: 'export', onclick: async () => {
    try {
      const all = [];
      let url = `/v1/events${qs({ ...params, since: sinceParam, limit: 1000 })}`;
      while (url && all.length < EXPORT_MAX) {
        const page = await get(url);
        all.push(...page.items);
        url = page.next;
      }
      const keys = ['id', 'at', 'subject_type', 'subject_id', 'verb', 'actor', 'seq', 'data'];
      const text = fmt.value === 'csv'
        ? [keys.join(','), ...all.map((e) => keys.map((k) => csvCell(e[k])).join(','))].join('\r\n') + '\r\n'
        : all.map((e) => JSON.stringify(e)).join('\n') + (all.length ? '\n' : '');
      download(`connrun-events.${fmt.value}`, fmt.value === 'csv' ? 'text/csv' : 'application/x-ndjson', text);
      announce(`Exported ${all.length} events.`);
    } catch (x) {
      clear(msg, errorBox(x));
    }
  } }, 'Export');
  clear(main, h('h1', {}, 'Events'), form,
    h('div', { class: 'toolbar' }, tailBtn, h('label', { for: 'f-format' }, 'Export as'), fmt, exportBtn), msg, box, more);
  await loadPage();
  return () => tail?.abort();
}
