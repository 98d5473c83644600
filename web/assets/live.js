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
