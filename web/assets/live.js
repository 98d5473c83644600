// live.js: one event stream for the whole dashboard while signed in
// (api.stream from the newest event on); pages subscribe to it and update
// without reloading. It reconnects after a second when the stream ends,
// resuming after the last event it saw.
import { stream } from './api.js';

const subs = new Set();
let ctl = null;
let last = -1;

export function subscribe(fn) {
  subs.add(fn);
  return () => subs.delete(fn);
}

// Calls load (a debounced refresh, ms after the last matching event) for
// every event when(event) accepts; returns the page's cleanup, which also
// drops a refresh still pending. refresh() (the returned .refresh) asks
// for one by hand.
export function liveRefresh(load, when, ms = 300) {
  let t = null;
  const refresh = () => {
    clearTimeout(t);
    t = setTimeout(() => load().catch(() => {}), ms);
  };
  const unsub = subscribe((ev) => { if (when(ev)) refresh(); });
  const cleanup = () => {
    unsub();
    clearTimeout(t);
  };
  cleanup.refresh = refresh;
  return cleanup;
}

export function startLive() {
  if (ctl) return;
  ctl = new AbortController();
  const signal = ctl.signal;
  const run = async () => {
    while (!signal.aborted) {
      try {
        await stream(last >= 0 ? { after: last } : {}, (ev) => {
          last = Math.max(last, ev.id);
          for (const fn of subs) fn(ev);
        }, signal);
      } catch (e) {
        if (signal.aborted || e.status === 401 || e.status === 403) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  run();
}

export function stopLive() {
  ctl?.abort();
  ctl = null;
  subs.clear();
}
