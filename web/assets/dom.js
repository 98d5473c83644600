// dom.js: building the page from API values, always as text: h() makes an
// element whose string children become text nodes (never HTML), plus the
// small widgets every page uses (badges, tables with sortable headers,
// definition lists, pagers, dialogs, times).

// h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child, [more])
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// One formatter for every time shown (toLocaleString builds one per call).
const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

// An ISO time as the reader's local date and time; '—' for null.
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : TIME.format(d);
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso }, fmtTime(iso)) : '—';
}

const TONE = {
  Healthy: 'ok', Active: 'ok', Completed: 'ok', online: 'ok',
  Unhealthy: 'bad', Error: 'bad', Failed: 'bad', offline: 'bad', revoked: 'bad',
  Executing: 'run', Pending: 'run', Created: 'wait',
};

export function badge(text) {
  return h('span', { class: `badge ${TONE[text] ?? 'neutral'}` }, text ?? 'Unknown');
}

// A definition list from [label, value] pairs (value: text or a node).
export function dl(pairs, cls = 'facts') {
  return h('dl', { class: cls }, pairs.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v ?? '—'))));
}

// A table. columns: [{key, label, sort: bool, cell: (row) => node|text}];
// sortable headers are buttons, aria-sort tells the order. The rows are
// sorted here (a stable sort on the cell's sort value).
export function table({ caption, columns, rows, sort, onSort, empty = 'Nothing yet.', rowAttrs }) {
  const head = h('tr', {}, columns.map((c) => {
    const active = sort && sort.key === c.key;
    const aria = active ? (sort.dir === 'asc' ? 'ascending' : 'descending') : undefined;
    const label = c.sort
      ? h('button', { type: 'button', class: 'sort', dataset: { key: c.key },
          onclick: () => onSort({ key: c.key, dir: active && sort.dir === 'asc' ? 'desc' : 'asc' }) },
        c.label, active ? (sort.dir === 'asc' ? ' ▲' : ' ▼') : '')
      : c.label;
    return h('th', { scope: 'col', 'aria-sort': aria }, label);
  }));
  let list = rows;
  if (sort) {
    const col = columns.find((c) => c.key === sort.key);
    const val = col?.value ?? ((r) => r[sort.key]);
    list = [...rows].sort((a, b) => {
      const x = val(a) ?? '';
      const y = val(b) ?? '';
      const c = x < y ? -1 : x > y ? 1 : 0;
      return sort.dir === 'asc' ? c : -c;
    });
  }
  const body = list.length === 0
    ? [h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty))]
    : list.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {},
      columns.map((c) => h('td', {}, c.cell ? c.cell(r) : (r[c.key] ?? '—')))));
  return h('table', {}, caption ? h('caption', {}, caption) : null, h('thead', {}, head), h('tbody', {}, body));
}

// A modal confirmation; resolves true when the action button is pressed.
export function confirmDialog(title, text, action) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: 'danger', value: 'ok' }, action);
    const cancel = h('button', { type: 'button', value: 'cancel' }, 'Cancel');
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title', class: 'confirm' },
      h('h2', { id: 'dlg-title' }, title), h('p', {}, text), h('div', { class: 'actions' }, cancel, ok));
    const done = (v) => { dlg.close(); dlg.remove(); resolve(v); };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

export function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err?.message ?? String(err));
}

// Announces a short message to screen readers (and tests).
export function announce(text) {
  const s = document.getElementById('status');
  if (s) s.textContent = text;
}

// Calls fn ms after the last call; .cancel() drops a pending call (a page
// being left cancels its refreshes).
export function debounce(fn, ms) {
  let t = null;
  const d = (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}
