// runners.js: the Runners page: the local runner and the remote ones,
// online / offline, labels, slots and running executions; updated from the
// event stream.
import { h, clear, badge, table, timeEl } from './dom.js';
import { get } from './api.js';
import { liveRefresh } from './live.js';

export async function runnersPage(main) {
  const box = h('div', { id: 'runners' });
  const load = async () => {
    const page = await get('/v1/runners');
    clear(box, table({ caption: 'Runners', rows: page.items, rowAttrs: (r) => ({ 'data-id': r.id }), columns: [
      { key: 'name', label: 'Name', cell: (r) => r.name || r.id },
      { key: 'kind', label: 'Kind' },
      { key: 'status', label: 'Status', cell: (r) => badge(r.status) },
      { key: 'labels', label: 'Labels', cell: (r) => (r.labels?.length ? r.labels.join(', ') : '—') },
      { key: 'slots', label: 'Slots', cell: (r) => `${r.slots_free ?? '?'} free of ${r.slots}` },
      { key: 'running', label: 'Running' },
      { key: 'version', label: 'Version' },
      { key: 'last_check_in', label: 'Last check-in', cell: (r) => timeEl(r.last_check_in) },
    ] }));
  };
  clear(main, h('h1', {}, 'Runners'), box);
  await load();
  return liveRefresh(load, (ev) => ev.subject_type === 'runner' || ev.subject_type === 'work', 500);
}
