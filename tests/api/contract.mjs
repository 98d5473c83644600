// contract.mjs: the REST API's contract test (CTest: api_contract).
//
//   node contract.mjs --bin BUILD/bin/connrun --plugins BUILD/plugins
//                     --routes SRC/core/api/api_routes.c
//
// (a) Every route of the C route table (method, path, scope, operationId) is
//     in the OpenAPI document the server serves at /v1/openapi.json (the
//     embedded docs/openapi.yaml) with the same method and operationId, the
//     scope in x-scope and `security: []` exactly for the routes without a
//     scope; the document has no operation the server lacks.
// (b) A real `connrun serve` (127.0.0.1, port 0, a temporary config with API
//     tokens and the example and filedrop plugins) answers every GET route
//     and the error cases (no token, bad token, missing scope, unknown
//     route, wrong method, unknown ids, config-managed PATCH/DELETE, unknown
//     fields, bodies that are not JSON or not declared as JSON, bad query
//     parameters); each answer's status must be one the document lists for
//     the operation, and its body must validate (ajv, JSON Schema 2020-12)
//     against the document's schema for that status.
// Prints every mismatch, then "N passed, N failed"; exits 1 on any failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, stopServer } from '../util/serve.mjs';

const args = {};
for (let i = 2; i + 1 < process.argv.length; i += 2)
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['bin', 'plugins', 'routes'])
  if (!args[k]) {
    console.error(`usage: contract.mjs --bin CONNRUN --plugins DIR --routes api_routes.c (missing --${k})`);
    process.exit(2);
  }

let passed = 0;
let failed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed++;
    return true;
  }
  failed++;
  console.log(`FAIL ${what}${detail ? `\n     ${detail}` : ''}`);
  return false;
}

// ---- The route table ----------------------------------------------------

const SCOPES = { 0: 'none', R: 'read', W: 'write', A: 'admin' };

function parseRoutes(file) {
  const text = fs.readFileSync(file, 'utf8');
  const table = text.slice(text.indexOf('cr__api_routes[] = {'));
  // {"GET", "/v1/works", R, handler, "listWorks", MODE}: MODE is 0 or a
  // CR_API_* name (inline, slow, batch).
  const re = /\{\s*"([A-Z]+)",\s*"([^"]+)",\s*(\w+),\s*\w+,\s*"(\w+)"(?:,\s*\w+)?\s*\}/g;
  const routes = [];
  for (const m of table.slice(0, table.indexOf('};')).matchAll(re))
    routes.push({ method: m[1].toLowerCase(), path: m[2], scope: SCOPES[m[3]] ?? m[3], opId: m[4] });
  return routes;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function checkTable(routes, doc) {
  check(routes.length > 0, 'the route table parses', `no route found in ${args.routes}`);
  const seen = new Set();
  for (const r of routes) {
    const op = doc.paths?.[r.path]?.[r.method];
    const id = `${r.method.toUpperCase()} ${r.path}`;
    seen.add(`${r.method} ${r.path}`);
    if (!check(op !== undefined, `${id} is in the document`)) continue;
    check(op.operationId === r.opId, `${id} operationId`, `document: ${op.operationId}, table: ${r.opId}`);
    check(op['x-scope'] === r.scope, `${id} x-scope`, `document: ${op['x-scope']}, table: ${r.scope}`);
    // A remote runner's own calls: no API token, the runner's token instead.
    const runnerOwn = Array.isArray(op.security) && op.security.length === 1 &&
      op.security[0].runnerToken !== undefined;
    const open = (Array.isArray(op.security) && op.security.length === 0) || runnerOwn;
    check(open === (r.scope === 'none'), `${id} security`,
      r.scope === 'none' ? 'a route without scope must have security: []' : 'a route with a scope must not have security: []');
  }
  for (const [p, item] of Object.entries(doc.paths ?? {}))
    for (const m of METHODS)
      if (item[m] !== undefined)
        check(seen.has(`${m} ${p}`), `${m.toUpperCase()} ${p} (document) is a route of the server`);
}

// ---- Schemas --------------------------------------------------------------

function makeAjv(doc) {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  ajv.addFormat('int64', { type: 'number', validate: Number.isSafeInteger });
  // The document's own members and extensions are not schema keywords.
  ajv.addVocabulary(['openapi', 'info', 'servers', 'security', 'tags', 'paths',
    'components', 'webhooks', 'externalDocs', 'jsonSchemaDialect', 'x-scope']);
  ajv.addSchema(doc, 'openapi');
  return ajv;
}

const ptr = (...parts) => parts.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

function deref(doc, obj) {
  while (obj && obj.$ref) {
    obj = obj.$ref.slice(2).split('/').reduce(
      (o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
  }
  return obj;
}

// The response object of an operation for a status, and its JSON pointer.
function responseOf(doc, tpl, method, status) {
  const base = ['paths', tpl, method, 'responses', String(status)];
  const res = doc.paths?.[tpl]?.[method]?.responses?.[String(status)];
  if (res === undefined) return null;
  if (res.$ref) return { res: deref(doc, res), at: res.$ref.slice(2).split('/').map((k) => k.replace(/~1/g, '/')) };
  return { res, at: base };
}

const validators = new Map();
function validate(ajv, at, body) {
  const key = ptr(...at, 'content', 'application/json', 'schema');
  if (!validators.has(key)) {
    try {
      validators.set(key, ajv.compile({ $ref: `openapi#/${key}` }));
    } catch (e) {
      validators.set(key, `the schema does not compile: ${e.message}`);
    }
  }
  const v = validators.get(key);
  if (typeof v === 'string') return v;
  return v(body) ? null : ajv.errorsText(v.errors, { separator: '\n     ' });
}

// ---- The server -----------------------------------------------------------

// Every response body, to look for secrets in at the end.
const seenBodies = [];
// Secrets of the run: tokens, credentials sent through the API, header
// values of subscriptions. None may come back in a response or the log.
const SECRETS = ['contract-secret-1234', 'header-value'];

const TOKENS = { reader: 'contract-reader-token', writer: 'contract-writer-token', admin: 'contract-admin-token' };

function writeConfig(dir) {
  const drop = path.join(dir, 'drop');
  fs.mkdirSync(drop);
  fs.writeFileSync(path.join(drop, 'users.csv'), 'id,name\n1,Ada\n2,Linus\n');
  const cfg = `
host:
  data_dir: ${dir}/data
  plugin_dirs: [${args.plugins}]
  listen: 127.0.0.1:0
  health_check_interval: 1h
  api_tokens:
    - { name: reader, token: ${TOKENS.reader} }
    - { name: writer, token: ${TOKENS.writer}, scopes: [read, write] }
    - { name: admin-only, token: ${TOKENS.admin}, scopes: [admin] }
authorizations:
  - { id: example-good, name: Example, description: A valid key, provider: example,
      method: api_key, owner: ops@example.com, credentials: { api_key: good } }
  - { id: files, provider: filedrop, method: none }
works:
  - id: example-items
    provider: example
    authorization: example-good
    schedule: { every: 1h }
    destination: { type: jsonl, path: ${dir}/data/out/example-items }
    config: { streams: [items], count: 3 }
    error_email_notifications: true
  - id: files-import
    provider: filedrop
    authorization: files
    enabled: false
    destination: { type: jsonl, path: ${dir}/data/out/files-import }
    config: { directory: ${drop}, streams: [{ name: users, pattern: "users*.csv", primary_key: [id] }] }
subscriptions:
  - id: hook
    workflow: webhook_system_events
    config:
      system_event_multiple_types: [created, updated, healthy, unhealthy, failed]
      webhook_url: "http://127.0.0.1:9/hook"
      headers: { X-Source: connrun }
alerts:
  - id: chat
    channel: { webhook: { url: "http://127.0.0.1:9/alerts" } }
    error_rate: { threshold: 50, window: 6h }
`;
  const file = path.join(dir, 'connrun.yaml');
  fs.writeFileSync(file, cfg);
  return file;
}

// ---- Requests -------------------------------------------------------------

let base = '';

async function request(method, url, { token = 'reader', body, type, headers: extra } = {}) {
  const headers = { ...(extra ?? {}) };
  if (token) headers.Authorization = `Bearer ${TOKENS[token] ?? token}`;
  if (body !== undefined) headers['Content-Type'] = type ?? 'application/json';
  const res = await fetch(base + url, { method, headers, body });
  const text = await res.text();
  seenBodies.push(text);
  return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, text };
}

// One call checked against the document: the status is `expect` (a number,
// or a list of acceptable ones) and a status the operation (method + path
// template `tpl`) lists, or `component` (a components/responses name) for
// answers that belong to no operation; the body validates. Returns the
// parsed body.
async function call(ajv, doc, method, tpl, url, opts = {}) {
  const r = await request(method.toUpperCase(), url, opts);
  const name = `${method.toUpperCase()} ${url}${opts.label ? ` (${opts.label})` : ''}`;
  const want = [].concat(opts.expect ?? 200);
  check(want.includes(r.status), `${name}: status`, `got ${r.status}, want ${want.join(' or ')}: ${r.text.slice(0, 300)}`);
  let found;
  if (opts.component) {
    found = { res: doc.components?.responses?.[opts.component], at: ['components', 'responses', opts.component] };
    if (!check(found.res !== undefined, `${name}: components/responses/${opts.component} is documented`)) return null;
  } else {
    found = responseOf(doc, tpl, method, r.status);
    if (!check(found !== null, `${name}: status ${r.status} is documented for ${method.toUpperCase()} ${tpl}`)) return null;
  }
  const media = Object.keys(found.res.content ?? {});
  if (media.length === 0) return check(r.text === '', `${name}: no body`, r.text.slice(0, 200)) ? null : null;
  const mt = r.type.split(';')[0].trim();
  if (!check(media.includes(mt), `${name}: Content-Type`, `got '${r.type}', documented: ${media.join(', ')}`)) return null;
  if (mt !== 'application/json') return r.text;
  let body;
  try {
    body = JSON.parse(r.text);
  } catch (e) {
    check(false, `${name}: body is JSON`, e.message);
    return null;
  }
  const errs = validate(ajv, found.at, body);
  check(errs === null, `${name}: body matches the schema of ${found.at.join(' ')}`, `${errs}\n     body: ${r.text.slice(0, 400)}`);
  if (opts.code)
    check(body?.error?.code === opts.code, `${name}: error code`, `got ${body?.error?.code}, want ${opts.code}`);
  if (opts.field)
    check(body?.error?.field === opts.field, `${name}: error field`, `got ${body?.error?.field}, want ${opts.field}`);
  return { status: r.status, body, headers: r.headers };
}

// The first bytes of the event stream: status, type and the opening comment.
async function checkStream(url) {
  const ctl = new AbortController();
  const res = await fetch(base + url, { headers: { Authorization: `Bearer ${TOKENS.reader}` }, signal: ctl.signal });
  check(res.status === 200, `GET ${url}: status`, `got ${res.status}`);
  check((res.headers.get('content-type') ?? '').startsWith('text/event-stream'), `GET ${url}: Content-Type`,
    `got ${res.headers.get('content-type')}`);
  const reader = res.body.getReader();
  let text = '';
  while (!text.includes('\n\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  check(text.startsWith(': connrun event stream\n\n'), `GET ${url}: opening comment`, JSON.stringify(text.slice(0, 100)));
  ctl.abort();
  await reader.cancel().catch(() => {});
}

async function exercise(ajv, doc) {
  const ok = new Set(); // operations answered with a 2xx that validated
  const get = async (tpl, url, opts = {}) => {
    const before = failed;
    const r = await call(ajv, doc, 'get', tpl, url, opts);
    if (r && failed === before && r.status < 300) ok.add(`get ${tpl}`);
    return r;
  };

  // Probes and the document.
  await get('/healthz', '/healthz', { token: null });
  await get('/readyz', '/readyz', { token: null });
  await get('/v1/openapi.json', '/v1/openapi.json', { token: null });
  const me = await get('/v1/whoami', '/v1/whoami', { token: 'writer' });
  check(JSON.stringify(me?.body) === '{"name":"writer","scopes":["read","write"]}',
    'GET /v1/whoami: the token\'s name and scopes', JSON.stringify(me?.body));
  const m = await request('GET', '/metrics');
  check(m.status === 200 && m.type.startsWith('text/plain') && /^# (HELP|TYPE) connrun_/m.test(m.text),
    'GET /metrics: 200 text/plain in the exposition format', `${m.status} ${m.type}: ${m.text.slice(0, 200)}`);
  if (m.status === 200) ok.add('get /metrics');

  // Runs and checks first, so that executions, health history and events exist.
  const run = await call(ajv, doc, 'post', '/v1/works/{id}/runs', '/v1/works/example-items/runs',
    { token: 'writer', expect: [201, 409] });
  await call(ajv, doc, 'post', '/v1/works/{id}/runs', '/v1/works/files-import/runs',
    { token: 'writer', expect: 409, code: 'disabled' });
  await call(ajv, doc, 'post', '/v1/authorizations/{id}/check', '/v1/authorizations/example-good/check',
    { token: 'writer' });
  await call(ajv, doc, 'post', '/v1/subscriptions/{id}/replay', '/v1/subscriptions/hook/replay',
    { token: 'writer', body: '{"since": 0}' });

  // Objects created through the API: create (the documents' subscription
  // body verbatim, an authorization with credentials), replay of an
  // Idempotency-Key, rename with If-Match, delete.
  const sub = await call(ajv, doc, 'post', '/v1/subscriptions', '/v1/subscriptions', {
    token: 'writer', expect: 201,
    body: JSON.stringify({ config: { system_event_multiple_types: ['updated', 'created', 'failed'],
      webhook_url: 'http://127.0.0.1:9/contract', headers: { 'custom-header': 'header-value' } },
      workflow: 'webhook_system_events' }) });
  const authBody = '{"id": "api-made", "provider": "example", "method": "api_key", "credentials": {"api_key": "contract-secret-1234"}}';
  await call(ajv, doc, 'post', '/v1/authorizations', '/v1/authorizations',
    { token: 'writer', expect: 201, body: authBody, headers: { 'Idempotency-Key': 'k-1' } });
  await call(ajv, doc, 'post', '/v1/authorizations', '/v1/authorizations',
    { token: 'writer', expect: 201, body: authBody, headers: { 'Idempotency-Key': 'k-1' }, label: 'replayed key' });
  await call(ajv, doc, 'post', '/v1/authorizations', '/v1/authorizations',
    { token: 'writer', expect: 409, code: 'conflict', body: authBody, label: 'taken id' });
  await call(ajv, doc, 'post', '/v1/authorizations', '/v1/authorizations',
    { token: 'writer', expect: 422, code: 'invalid', label: 'bad method',
      body: '{"id": "bad-one", "provider": "example", "method": "nope"}' });
  await call(ajv, doc, 'patch', '/v1/authorizations/{id}', '/v1/authorizations/api-made',
    { token: 'writer', expect: 412, code: 'precondition_failed', body: '{"name": "x"}',
      headers: { 'If-Match': '"0000000000000000"' } });
  await call(ajv, doc, 'patch', '/v1/authorizations/{id}', '/v1/authorizations/api-made',
    { token: 'writer', body: '{"name": "Made through the API"}' });
  await call(ajv, doc, 'delete', '/v1/authorizations/{id}', '/v1/authorizations/api-made',
    { token: 'writer', expect: 204 });
  if (sub && sub.id)
    await call(ajv, doc, 'delete', '/v1/subscriptions/{id}', `/v1/subscriptions/${sub.id}`,
      { token: 'writer', expect: 204 });

  // Every GET route.
  await get('/v1/authorizations', '/v1/authorizations');
  const page = await get('/v1/authorizations', '/v1/authorizations?limit=1&health=healthy', { label: 'paged' });
  await get('/v1/authorizations', '/v1/authorizations?provider=filedrop');
  await get('/v1/authorizations/{id}', '/v1/authorizations/example-good?sort=created&order=desc');
  await get('/v1/authorizations/{id}/metrics', '/v1/authorizations/example-good/metrics?granularity=day&from=2026-01-01');
  await get('/v1/authorizations/{id}/health', '/v1/authorizations/example-good/health?limit=5');
  await get('/v1/works', '/v1/works');
  const wpage = await get('/v1/works', '/v1/works?limit=1', { label: 'paged' });
  if (wpage?.body?.next) await get('/v1/works', wpage.body.next, { label: 'next page' });
  await get('/v1/works', '/v1/works?status=disabled&provider=filedrop');
  await get('/v1/works/{id}', '/v1/works/example-items');
  await get('/v1/works/{id}', '/v1/works/files-import');
  await get('/v1/works/{id}/schedule', '/v1/works/example-items/schedule?next=3');
  await get('/v1/works/{id}/states', '/v1/works/example-items/states?limit=5');
  await call(ajv, doc, 'post', '/v1/works/{id}/states', '/v1/works/example-items/states',
    { token: 'writer', body: '{"rollback_to": 1}', expect: [201, 404, 409] });
  await call(ajv, doc, 'post', '/v1/works/{id}/states', '/v1/works/example-items/states',
    { token: 'writer', body: '{"rollback_to": 0}', expect: 422, code: 'invalid_type', field: '/rollback_to' });
  const execs = await get('/v1/works/{id}/executions', '/v1/works/example-items/executions?limit=10');
  const execId = run?.status === 201 ? run.body.id : execs?.body?.items?.[0]?.id;
  check(Number.isInteger(execId), 'an execution of example-items exists', JSON.stringify(execs?.body ?? null).slice(0, 200));
  if (Number.isInteger(execId)) {
    await get('/v1/executions/{id}', `/v1/executions/${execId}`);
    await call(ajv, doc, 'post', '/v1/executions/{id}/cancel', `/v1/executions/${execId}/cancel`,
      { token: 'writer', expect: [200, 409] });
  }
  await get('/v1/events', '/v1/events');
  const epage = await get('/v1/events', '/v1/events?limit=2&verb=created&verb=healthy,updated&since=7d', { label: 'paged' });
  if (epage?.body?.next) await get('/v1/events', epage.body.next, { label: 'next page' });
  await get('/v1/events', '/v1/events?subject_type=work&subject_id=example-items&since=2026-01-01T00:00:00Z');
  await checkStream('/v1/events/stream?after=0&subject_type=auth');
  ok.add('get /v1/events/stream');
  await get('/v1/subscriptions', '/v1/subscriptions');
  await get('/v1/subscriptions/{id}', '/v1/subscriptions/hook');
  await get('/v1/subscriptions/{id}/attempts', '/v1/subscriptions/hook/attempts?limit=10');
  await get('/v1/alerts', '/v1/alerts');
  await get('/v1/plugins', '/v1/plugins');
  await get('/v1/plugins/{name}', '/v1/plugins/example');
  await get('/v1/runners', '/v1/runners');
  const cl = await get('/v1/cluster', '/v1/cluster');
  check(cl?.body?.instances?.length === 1 && cl.body.instances[0].online &&
        cl.body.instances[0].duties.includes('scheduler') &&
        cl.body.duties.every((d) => d.holder === cl.body.instances[0].id && d.held),
    'GET /v1/cluster: one instance online, holding every duty', JSON.stringify(cl?.body));
  await get('/v1/runners/{id}', '/v1/runners/local');
  check(page === null || page.body.items.length <= 1, 'limit=1 answers at most one item');

  // Authentication and scopes.
  await get('/v1/works', '/v1/works', { token: null, expect: 401, code: 'unauthorized', label: 'no token' });
  await get('/v1/works', '/v1/works', { token: 'not-a-token', expect: 401, code: 'unauthorized', label: 'bad token' });
  await get('/v1/works', '/v1/works', { token: 'admin', expect: 403, code: 'forbidden', label: 'no read scope' });
  await call(ajv, doc, 'post', '/v1/works/{id}/runs', '/v1/works/example-items/runs',
    { expect: 403, code: 'forbidden', label: 'read token' });

  // Routing.
  await call(ajv, doc, 'get', null, '/v1/nope', { expect: 404, component: 'NotFound', code: 'not_found' });
  const w = await call(ajv, doc, 'put', null, '/v1/works', { expect: 405, component: 'MethodNotAllowed', code: 'method_not_allowed' });
  check(w?.headers?.get('allow') === 'GET, POST', 'PUT /v1/works: Allow header', `got ${w?.headers?.get('allow')}`);

  // Unknown ids.
  for (const [tpl, url] of [
    ['/v1/authorizations/{id}', '/v1/authorizations/nope'],
    ['/v1/authorizations/{id}/metrics', '/v1/authorizations/nope/metrics'],
    ['/v1/authorizations/{id}/health', '/v1/authorizations/nope/health'],
    ['/v1/works/{id}', '/v1/works/nope'],
    ['/v1/works/{id}/schedule', '/v1/works/nope/schedule'],
    ['/v1/works/{id}/executions', '/v1/works/nope/executions'],
    ['/v1/works/{id}/states', '/v1/works/nope/states'],
    ['/v1/executions/{id}', '/v1/executions/999999'],
    ['/v1/executions/{id}', '/v1/executions/abc'],
    ['/v1/subscriptions/{id}', '/v1/subscriptions/nope'],
    ['/v1/subscriptions/{id}/attempts', '/v1/subscriptions/nope/attempts'],
    ['/v1/plugins/{name}', '/v1/plugins/nope'],
  ])
    await get(tpl, url, { expect: 404, code: 'not_found' });
  await call(ajv, doc, 'post', '/v1/executions/{id}/cancel', '/v1/executions/999999/cancel',
    { token: 'writer', expect: 404, code: 'not_found' });
  await call(ajv, doc, 'post', '/v1/authorizations/{id}/check', '/v1/authorizations/nope/check',
    { token: 'writer', expect: 404, code: 'not_found' });

  // Bad query parameters.
  for (const [tpl, url] of [
    ['/v1/works', '/v1/works?limit=0'],
    ['/v1/authorizations', '/v1/authorizations?limit=abc'],
    ['/v1/authorizations/{id}', '/v1/authorizations/example-good?sort=size'],
    ['/v1/authorizations/{id}', '/v1/authorizations/example-good?order=up'],
    ['/v1/authorizations/{id}/metrics', '/v1/authorizations/example-good/metrics?granularity=year'],
    ['/v1/authorizations/{id}/metrics', '/v1/authorizations/example-good/metrics?from=yesterday'],
    ['/v1/works/{id}/schedule', '/v1/works/example-items/schedule?next=101'],
    ['/v1/events', '/v1/events?verb=created,bogus'],
    ['/v1/events', '/v1/events?subject_type=wrk'],
    ['/v1/events', '/v1/events?since=soon'],
    ['/v1/subscriptions/{id}/attempts', '/v1/subscriptions/hook/attempts?after=-1'],
  ])
    await get(tpl, url, { expect: 400, code: 'invalid_parameter' });

  // Changes to config-managed objects, and bodies.
  const patch = (tpl, url, body, opts) => call(ajv, doc, 'patch', tpl, url, { token: 'writer', body, ...opts });
  await patch('/v1/authorizations/{id}', '/v1/authorizations/example-good', '{"name": "Renamed"}',
    { expect: 409, code: 'managed_by_config' });
  await patch('/v1/authorizations/{id}', '/v1/authorizations/example-good', '{"provider": "x"}',
    { expect: 422, code: 'not_editable', field: '/provider' });
  await patch('/v1/works/{id}', '/v1/works/example-items', '{"enabled": false}',
    { expect: 409, code: 'managed_by_config' });
  await patch('/v1/works/{id}', '/v1/works/example-items', '{"colour": "red"}',
    { expect: 422, code: 'unknown_field', field: '/colour' });
  await patch('/v1/works/{id}', '/v1/works/example-items', '{"enabled": "yes"}',
    { expect: 422, code: 'invalid_type', field: '/enabled' });
  await patch('/v1/works/{id}', '/v1/works/example-items', '[]', { expect: 422, code: 'invalid_type' });
  await patch('/v1/works/{id}', '/v1/works/example-items', '{"enabled": tru',
    { expect: 400, code: 'malformed_json' });
  await patch('/v1/works/{id}', '/v1/works/example-items', '{"enabled": true, "enabled": false}',
    { expect: 400, code: 'duplicate_key' });
  await patch('/v1/works/{id}', '/v1/works/example-items', 'enabled=false',
    { type: 'text/plain', expect: 415, code: 'unsupported_media_type' });
  await patch('/v1/works/{id}', '/v1/works/nope', '{"enabled": false}', { expect: 404, code: 'not_found' });
  await patch('/v1/authorizations/{id}', '/v1/authorizations/example-good', '{"name": "x"}',
    { token: 'reader', expect: 403, code: 'forbidden' });
  await call(ajv, doc, 'delete', '/v1/authorizations/{id}', '/v1/authorizations/example-good',
    { token: 'writer', expect: 409, code: 'managed_by_config' });
  await call(ajv, doc, 'delete', '/v1/works/{id}', '/v1/works/example-items',
    { token: 'writer', expect: 409, code: 'managed_by_config' });
  await call(ajv, doc, 'delete', '/v1/works/{id}', '/v1/works/nope', { token: 'writer', expect: 404, code: 'not_found' });
  await call(ajv, doc, 'post', '/v1/subscriptions/{id}/replay', '/v1/subscriptions/hook/replay',
    { token: 'writer', body: '{}', expect: 422, code: 'missing_field', field: '/since' });
  await call(ajv, doc, 'post', '/v1/subscriptions/{id}/replay', '/v1/subscriptions/hook/replay',
    { token: 'writer', body: '{"since": 0, "until": 1}', expect: 422, code: 'unknown_field' });
  await call(ajv, doc, 'post', '/v1/subscriptions/{id}/replay', '/v1/subscriptions/nope/replay',
    { token: 'writer', body: '{"since": 0}', expect: 404, code: 'not_found' });

  return ok;
}

// ---- Main -----------------------------------------------------------------

async function main() {
  const routes = parseRoutes(args.routes);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'connrun-contract-'));
  const log = path.join(dir, 'serve.log');
  let child = null;
  try {
    ({ child, base } = await startServer(args.bin, writeConfig(dir), log));
    const docRes = await request('GET', '/v1/openapi.json', { token: null });
    const doc = JSON.parse(docRes.text);
    checkTable(routes, doc);
    const ajv = makeAjv(doc);
    const ok = await exercise(ajv, doc);
    for (const r of routes.filter((x) => x.method === 'get'))
      check(ok.has(`get ${r.path}`), `GET ${r.path} answered a documented 2xx`);
  } catch (e) {
    check(false, 'the contract test ran to its end', e.stack);
  } finally {
    if (child) {
      const code = await stopServer(child);
      check(code === 0, 'connrun serve stops cleanly on SIGTERM', `exit: ${code}`);
    }
  }
  const logText = fs.readFileSync(log, 'utf8');
  for (const secret of [...SECRETS, ...Object.values(TOKENS)]) {
    check(!logText.includes(secret), `the server log never shows the secret '${secret.slice(0, 9)}...'`);
    check(!seenBodies.some((b) => b.includes(secret)),
      `no response shows the secret '${secret.slice(0, 9)}...'`);
  }
  if (failed > 0) console.log(`server log: ${log}`);
  else fs.rmSync(dir, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

main();
