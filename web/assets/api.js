// api.js: the dashboard's only way to the server: the public /v1 API with
// the signed-in token as a bearer header. The token lives in sessionStorage
// (never a cookie, so no CSRF); whoami() tells its scopes. stream() reads
// the Server-Sent Events of /v1/events/stream with fetch(), since an
// EventSource cannot send the Authorization header.

const KEY = 'connrun.token';
let me = null; // {name, scopes}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

export const token = () => sessionStorage.getItem(KEY);
export const can = (scope) => !!me && me.scopes.includes(scope);
export const whoami = () => me;

export function signOut() {
  sessionStorage.removeItem(KEY);
  me = null;
}

// Checks t with GET /v1/whoami and keeps it; throws ApiError when refused.
export async function signIn(t) {
  const res = await fetch('/v1/whoami', { headers: { Authorization: `Bearer ${t}` } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body);
  sessionStorage.setItem(KEY, t);
  me = body;
  return me;
}

// One call: resolves {status, body, etag}; throws ApiError on a 4xx/5xx.
export async function call(path, { method = 'GET', body, headers = {} } = {}) {
  const h = { Authorization: `Bearer ${token()}`, ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return { status: res.status, body: json, etag: res.headers.get('ETag') };
}

export const get = async (path) => (await call(path)).body;

// A query string from an object, without the empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') u.append(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
}

// Reads the event stream until signal aborts: onEvent(event) per `data:`
// frame. Resolves when the stream ends; rejects on a refused call.
export async function stream(params, onEvent, signal) {
  const res = await fetch(`/v1/events/stream${qs(params)}`, {
    headers: { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' }, signal,
  });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (!data) continue;
      try {
        onEvent(JSON.parse(data));
      } catch {
        /* a frame that is not JSON is skipped */
      }
    }
  }
}
