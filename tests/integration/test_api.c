/* test_api.c: the REST API of a real `connrun serve` (example, filedrop and
 * the test "collect" plugins loaded by dlopen) over loopback with libcurl:
 * tokens and scopes, every error status with its JSON body, the resources
 * (authorizations with paging, summary, metrics, health and check; works,
 * schedules, runs, executions and cancel; events and their SSE stream with
 * Last-Event-ID; subscriptions against a loopback receiver; alerts, plugins,
 * runners, health probes, /metrics checked by promtool), the connection
 * limits against slow clients, the refusal of plain HTTP off loopback, TLS,
 * and no secret in any response or in the server's log. */
#define _GNU_SOURCE
#include "fake_http.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_TOKEN "rd-tok-Hq83kZ1pVxR2"
#define WRITE_TOKEN "wr-tok-Lm29xQ7bNeT5"
#define BAD_KEY "rejected-key-Ux72PqW9"
/* The example secret of the Standard Webhooks specification. */
#define WH_KEY "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define HDR_SECRET "hdr-secret-Zr55WqK8"
#define ALERT_HDR "alert-secret-Pk31VnJ4"
#define N_EXTRA 30
#define N_AUTHS (4 + N_EXTRA)
#define N_WORKS 7

static const char *const secrets[] = {READ_TOKEN, WRITE_TOKEN, BAD_KEY, WH_KEY,
                                      HDR_SECRET, ALERT_HDR,   NULL};

static char *const serve_env[] = {"CR_TEST_KEY=good",
                                  "CR_API_READ=" READ_TOKEN,
                                  "CR_API_WRITE=" WRITE_TOKEN,
                                  "CR_WH_SECRET=whsec_" WH_KEY,
                                  "CR_HDR=" HDR_SECRET,
                                  "CR_ALERT_HDR=" ALERT_HDR,
                                  NULL};

/* The server all resource tests share. */
static struct {
  char *dir, *cfg, *log_path;
  struct cr_test_proc proc;
  cr_fake_http *hook;
  int port;
  size_t responses; /* responses checked for secrets */
  int ok_line, items_line;
} S;

/* ---- HTTP client -------------------------------------------------------- */

struct buf {
  char *p;
  size_t len;
};

static size_t buf_add(char *data, size_t size, size_t n, void *ud) {
  struct buf *b = ud;
  char *grown = realloc(b->p, b->len + size * n + 1);
  assert_non_null(grown);
  memcpy(grown + b->len, data, size * n);
  b->p = grown;
  b->len += size * n;
  b->p[b->len] = '\0';
  return size * n;
}

struct resp {
  long status; /* 0: the transfer failed */
  struct buf body, head;
  json_t *json;
};

struct req {
  const char *method, *path, *token, *ctype, *body;
  size_t len;      /* 0: strlen(body) */
  int chunked;     /* send the body with Transfer-Encoding: chunked */
  const char *hdr; /* one extra header line */
  int port;        /* 0: the shared server */
  const char *scheme, *cainfo;
};

struct upload {
  const char *p;
  size_t left;
};

static size_t upload_read(char *out, size_t size, size_t n, void *ud) {
  struct upload *u = ud;
  size_t k = size * n < u->left ? size * n : u->left;
  if (k > 700)
    k = 700; /* several chunks */
  memcpy(out, u->p, k);
  u->p += k;
  u->left -= k;
  return k;
}

static void check_no_secret(const char *text, size_t len, const char *what) {
  for (size_t i = 0; secrets[i] != NULL && text != NULL; i++)
    if (memmem(text, len, secrets[i], strlen(secrets[i])) != NULL)
      fail_msg("a secret (#%zu) appears in %s", i, what);
}

static struct resp call_req(const struct req *q) {
  struct resp r = {0};
  char url[512], auth[128];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s",
           q->scheme ? q->scheme : "http", q->port ? q->port : S.port, q->path);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  struct curl_slist *h = NULL;
  if (q->token != NULL) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", q->token);
    h = curl_slist_append(h, auth);
  }
  char ct[128];
  if (q->ctype != NULL) {
    snprintf(ct, sizeof ct, "Content-Type: %s", q->ctype);
    h = curl_slist_append(h, ct);
  }
  if (q->hdr != NULL)
    h = curl_slist_append(h, q->hdr);
  h = curl_slist_append(h, "Expect:");
  struct upload up = {q->body,
                      q->body ? (q->len ? q->len : strlen(q->body)) : 0};
  if (q->body != NULL && q->chunked) {
    h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
  } else if (q->body != NULL) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)up.left);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buf_add);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, buf_add);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.head);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (q->cainfo != NULL)
    curl_easy_setopt(c, CURLOPT_CAINFO, q->cainfo);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(c);
  curl_slist_free_all(h);
  check_no_secret(r.head.p, r.head.len, q->path);
  check_no_secret(r.body.p, r.body.len, q->path);
  S.responses++;
  if (r.body.p != NULL && r.head.p != NULL &&
      strcasestr(r.head.p, "content-type: application/json") != NULL)
    r.json = json_loadb(r.body.p, r.body.len, 0, NULL);
  return r;
}

static struct resp call(const char *method, const char *path, const char *token,
                        const char *body) {
  struct req q = {.method = method,
                  .path = path,
                  .token = token,
                  .body = body,
                  .ctype = body ? "application/json" : NULL};
  return call_req(&q);
}

static void resp_free(struct resp *r) {
  free(r->body.p);
  free(r->head.p);
  json_decref(r->json);
  memset(r, 0, sizeof *r);
}

/* The value of response header name (first one), copied into out. */
static const char *header(const struct resp *r, const char *name, char *out,
                          size_t len) {
  size_t n = strlen(name);
  for (const char *l = r->head.p; l != NULL && *l; l = strchr(l, '\n')) {
    if (*l == '\n')
      l++;
    if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
      const char *v = l + n + 1;
      while (*v == ' ')
        v++;
      size_t k = strcspn(v, "\r\n");
      snprintf(out, len, "%.*s", (int)(k < len ? k : len - 1), v);
      return out;
    }
    if ((l = strchr(l, '\n')) == NULL)
      break;
  }
  return NULL;
}

static const char *jstr(const json_t *v, const char *key) {
  return json_string_value(json_object_get(v, key));
}

/* Asserts an error answer: status, JSON body with code and a message. */
static const char *expect_error(const struct resp *r, long status,
                                const char *code) {
  if (r->status != status)
    fail_msg("expected %ld, got %ld: %s", status, r->status,
             r->body.p ? r->body.p : "");
  assert_non_null(r->json);
  const json_t *e = json_object_get(r->json, "error");
  assert_non_null(e);
  assert_string_equal(jstr(e, "code"), code);
  assert_non_null(jstr(e, "message"));
  return jstr(e, "message");
}

/* GET path with the read token; asserts 200 and returns the JSON (owned). */
static json_t *get_json(const char *path) {
  struct resp r = call("GET", path, READ_TOKEN, NULL);
  if (r.status != 200)
    fail_msg("GET %s: %ld %s", path, r.status, r.body.p ? r.body.p : "");
  json_t *v = json_incref(r.json);
  assert_non_null(v);
  resp_free(&r);
  return v;
}

/* ---- The shared server -------------------------------------------------- */

static int line_of(const char *text, const char *needle) {
  const char *at = strstr(text, needle);
  assert_non_null(at);
  int line = 1;
  for (const char *p = text; p < at; p++)
    line += *p == '\n';
  return line;
}

static char *main_config(const char *dir, const char *hook_url) {
  size_t cap = 16384;
  char *t = malloc(cap);
  assert_non_null(t);
  int n = snprintf(
      t, cap,
      "host:\n"
      "  data_dir: ./data\n"
      "  plugin_dirs: [\"%s\", \"%s/plugins\"]\n"
      "  health_check_interval: 1h\n"
      "  api_tokens:\n"
      "    - { name: reader, token: \"${CR_API_READ}\", scopes: [read] }\n"
      "    - { name: writer, token: \"${CR_API_WRITE}\", "
      "scopes: [read, write] }\n"
      "  api: { max_body_bytes: 2048 }\n"
      "authorizations:\n"
      "  - id: ok\n"
      "    name: OK key\n"
      "    provider: example\n"
      "    method: api_key\n"
      "    credentials: { api_key: \"${CR_TEST_KEY}\" }\n"
      "  - id: bad\n"
      "    provider: example\n"
      "    method: api_key\n"
      "    credentials: { api_key: \"" BAD_KEY "\" }\n"
      "  - id: drop\n"
      "    provider: filedrop\n"
      "    method: none\n"
      "  - id: sink\n"
      "    provider: collect\n"
      "    method: none\n",
      CR_PLUGIN_DIR, dir);
  for (int i = 0; i < N_EXTRA; i++)
    n += snprintf(t + n, cap - (size_t)n,
                  "  - { id: x%02d, provider: example, method: none }\n", i);
  snprintf(
      t + n, cap - (size_t)n,
      "works:\n"
      "  - id: items\n"
      "    name: Hourly items\n"
      "    provider: example\n"
      "    authorization: ok\n"
      "    schedule: { every: 1h }\n"
      "    config: { streams: [items] }\n"
      "  - { id: manual, name: Manual, provider: example, authorization: ok,"
      " config: { streams: [items], count: 5 } }\n"
      "  - { id: big, name: Big, provider: example, authorization: ok,"
      " config: { streams: [items], count: 1000000 } }\n"
      "  - { id: off, name: Off, provider: example, authorization: ok,"
      " enabled: false }\n"
      "  - id: broken\n"
      "    provider: filedrop\n"
      "    authorization: drop\n"
      "    config: { directory: \"%s/drop\", streams: [{ name: users,"
      " pattern: \"*.csv\" }] }\n"
      "  - { id: exp-a, name: Z export, provider: example, authorization: ok,"
      " config: { streams: [items] }, destination: { type: plugin,"
      " provider: collect, authorization: sink } }\n"
      "  - { id: exp-b, name: A export, provider: example, authorization: ok,"
      " config: { streams: [items] }, destination: { type: plugin,"
      " provider: collect, authorization: sink } }\n"
      "subscriptions:\n"
      "  - id: hook\n"
      "    workflow: webhook_system_events\n"
      "    config:\n"
      "      system_event_multiple_types: [created, updated, started,"
      " completed, failed, healthy, unhealthy]\n"
      "      webhook_url: \"%s/hook\"\n"
      "      headers: { X-Token: \"${CR_HDR}\" }\n"
      "      secret: \"${CR_WH_SECRET}\"\n"
      "alerts:\n"
      "  - id: chat\n"
      "    channel:\n"
      "      webhook:\n"
      "        url: \"%s/alerts\"\n"
      "        headers: { X-Alert: \"${CR_ALERT_HDR}\" }\n"
      "    error_rate: { threshold: 50, window: 6h }\n",
      dir, hook_url, hook_url);
  return t;
}

static const struct cr_fake_http_route hook_routes[] = {
    {NULL, "/hook", 200, "{}", {NULL}},
    {NULL, "/alerts", 200, "{}", {NULL}},
    {NULL, NULL, 0, NULL, {NULL}},
};

static void make_dir(const char *dir, const char *name) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  assert_int_equal(mkdir(p, 0755), 0);
}

static int group_setup(void **state) {
  (void)state;
  S.dir = cr_test_mkdtemp("api");
  make_dir(S.dir, "drop");
  make_dir(S.dir, "plugins");
  char p[4096];
  snprintf(p, sizeof p, "%s/plugins/collect.so", S.dir);
  assert_int_equal(symlink(CR_TEST_PLUGIN_DIR "/collect.so", p), 0);
  /* A row with more fields than the header: a configuration error. */
  snprintf(p, sizeof p, "%s/drop", S.dir);
  free(cr_test_write_file(p, "users.csv", "id,name\n1,ann,extra\n"));
  assert_int_equal(
      cr_fake_http_start(cr_fake_http_routes, (void *)hook_routes, &S.hook), 0);
  char *text = main_config(S.dir, cr_fake_http_url(S.hook));
  S.ok_line = line_of(text, "  - id: ok\n");
  S.items_line = line_of(text, "  - id: items\n");
  S.cfg = cr_test_write_file(S.dir, "c.yaml", text);
  free(text);
  char *extra[] = {"--listen", "127.0.0.1:0", NULL};
  S.proc = cr_test_serve(S.dir, S.cfg, extra, serve_env);
  S.log_path = strdup(S.proc.log_path);
  S.port = cr_test_serve_port(&S.proc);
  assert_true(S.port > 0);
  assert_true(cr_test_wait_log(&S.proc, "auth ok (example): Healthy", 1));
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  if (S.proc.pid > 0)
    cr_test_proc_stop(&S.proc);
  free(S.proc.log_path);
  cr_fake_http_stop(S.hook);
  cr_test_rmtree(S.dir);
  free(S.dir);
  free(S.cfg);
  free(S.log_path);
  return 0;
}

/* ---- Tokens and scopes -------------------------------------------------- */

static void test_tokens_and_scopes(void **state) {
  (void)state;
  struct resp r = call("GET", "/v1/works", NULL, NULL);
  expect_error(&r, 401, "unauthorized");
  char h[256];
  assert_non_null(header(&r, "WWW-Authenticate", h, sizeof h));
  assert_non_null(strstr(h, "Bearer"));
  resp_free(&r);

  r = call("GET", "/v1/works", "not-a-token", NULL);
  expect_error(&r, 401, "unauthorized");
  assert_non_null(header(&r, "WWW-Authenticate", h, sizeof h));
  resp_free(&r);

  r = call("PATCH", "/v1/works/items", READ_TOKEN, "{\"enabled\":false}");
  assert_non_null(strstr(expect_error(&r, 403, "forbidden"), "write"));
  resp_free(&r);
  r = call("POST", "/v1/works/manual/runs", READ_TOKEN, NULL);
  expect_error(&r, 403, "forbidden");
  resp_free(&r);

  json_t *v = get_json("/v1/works");
  assert_int_equal(json_array_size(json_object_get(v, "items")), N_WORKS);
  json_decref(v);
  r = call("GET", "/v1/works", WRITE_TOKEN, NULL);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  /* The probes need no token. */
  r = call("GET", "/healthz", NULL, NULL);
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

/* ---- Error statuses ----------------------------------------------------- */

static void test_not_found_and_method(void **state) {
  (void)state;
  struct resp r = call("GET", "/v1/nothing-here", READ_TOKEN, NULL);
  expect_error(&r, 404, "not_found");
  resp_free(&r);
  r = call("GET", "/v1/works/no-such-work", READ_TOKEN, NULL);
  expect_error(&r, 404, "not_found");
  resp_free(&r);
  r = call("GET", "/v1/authorizations/nope", READ_TOKEN, NULL);
  expect_error(&r, 404, "not_found");
  resp_free(&r);
  r = call("GET", "/v1/executions/999999", READ_TOKEN, NULL);
  expect_error(&r, 404, "not_found");
  resp_free(&r);

  char allow[128];
  r = call("PUT", "/v1/works/items", WRITE_TOKEN, "{}");
  expect_error(&r, 405, "method_not_allowed");
  assert_non_null(header(&r, "Allow", allow, sizeof allow));
  assert_string_equal(allow, "GET, PATCH, DELETE");
  resp_free(&r);
  r = call("GET", "/v1/works/items/runs", READ_TOKEN, NULL);
  expect_error(&r, 405, "method_not_allowed");
  assert_non_null(header(&r, "Allow", allow, sizeof allow));
  assert_string_equal(allow, "POST");
  resp_free(&r);
}

/* A 409 managed_by_config whose message names c.yaml:line. */
static void expect_managed(const char *method, const char *path,
                           const char *body, int line) {
  struct resp r = call(method, path, WRITE_TOKEN, body);
  const char *msg = expect_error(&r, 409, "managed_by_config");
  char where[64];
  snprintf(where, sizeof where, "c.yaml:%d", line);
  if (strstr(msg, where) == NULL)
    fail_msg("'%s' does not name %s", msg, where);
  resp_free(&r);
}

static void test_conflicts(void **state) {
  (void)state;
  expect_managed("PATCH", "/v1/authorizations/ok", "{\"name\":\"x\"}",
                 S.ok_line);
  expect_managed("DELETE", "/v1/authorizations/ok", NULL, S.ok_line);
  expect_managed("PATCH", "/v1/works/items", "{\"enabled\":false}",
                 S.items_line);
  expect_managed("DELETE", "/v1/works/items", NULL, S.items_line);
}

static void test_body_too_large(void **state) {
  (void)state;
  size_t n = 5000; /* host.api.max_body_bytes is 2048 */
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  memcpy(big, "{\"since\":0", 10);
  big[n - 1] = '}';
  big[n] = '\0';
  struct req q = {.method = "POST",
                  .path = "/v1/subscriptions/hook/replay",
                  .token = WRITE_TOKEN,
                  .ctype = "application/json",
                  .body = big};
  struct resp r = call_req(&q);
  expect_error(&r, 413, "body_too_large");
  resp_free(&r);
  q.chunked = 1;
  r = call_req(&q);
  expect_error(&r, 413, "body_too_large");
  resp_free(&r);
  free(big);
  /* The same request under the limit is accepted. */
  r = call("POST", "/v1/subscriptions/hook/replay", WRITE_TOKEN,
           "{\"since\": 4102444800000}");
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

static void test_bad_bodies(void **state) {
  (void)state;
  struct req q = {.method = "PATCH",
                  .path = "/v1/works/items",
                  .token = WRITE_TOKEN,
                  .ctype = "text/plain",
                  .body = "{\"enabled\":true}"};
  struct resp r = call_req(&q);
  expect_error(&r, 415, "unsupported_media_type");
  resp_free(&r);

  static const struct {
    const char *body, *code;
  } bad[] = {
      {"{\"enabled\":", "malformed_json"},
      {"{\"enabled\":\"\xff\xfe\"}", "invalid_utf8"},
      {"{\"enabled\":true,\"enabled\":false}", "duplicate_key"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = call("PATCH", "/v1/works/items", WRITE_TOKEN, bad[i].body);
    expect_error(&r, 400, bad[i].code);
    resp_free(&r);
  }
  char deep[300];
  memset(deep, '[', 200);
  memset(deep + 200, ']', 99);
  deep[299] = '\0';
  r = call("PATCH", "/v1/works/items", WRITE_TOKEN, deep);
  expect_error(&r, 400, "too_deep");
  resp_free(&r);

  r = call("PATCH", "/v1/works/items", WRITE_TOKEN, "{\"colour\":1}");
  expect_error(&r, 422, "unknown_field");
  assert_string_equal(jstr(json_object_get(r.json, "error"), "field"),
                      "/colour");
  resp_free(&r);
  r = call("PATCH", "/v1/authorizations/ok", WRITE_TOKEN,
           "{\"provider\":\"other\"}");
  const char *msg = expect_error(&r, 422, "not_editable");
  assert_non_null(strstr(msg, "cannot be changed"));
  assert_string_equal(jstr(json_object_get(r.json, "error"), "field"),
                      "/provider");
  resp_free(&r);
}

/* ---- Authorizations ----------------------------------------------------- */

/* Follows the next links from path (bounded), calling fn on every item;
 * asserts each page holds at most per_page items. Returns the item count
 * and the number of pages in *pages (may be NULL). */
typedef void (*item_fn)(const json_t *item, void *ud);

static size_t walk_pages(const char *path, size_t per_page, item_fn fn,
                         void *ud, size_t *pages) {
  size_t n = 0, np = 0;
  char *next = strdup(path);
  while (next != NULL && np++ < 100) {
    json_t *v = get_json(next);
    free(next);
    json_t *items = json_object_get(v, "items");
    assert_true(json_array_size(items) <= per_page);
    for (size_t i = 0; i < json_array_size(items); i++, n++)
      if (fn != NULL)
        fn(json_array_get(items, i), ud);
    const char *nx = jstr(v, "next");
    next = nx ? strdup(nx) : NULL;
    json_decref(v);
  }
  assert_null(next);
  if (pages != NULL)
    *pages = np;
  return n;
}

struct seen_ids {
  char id[N_AUTHS][16];
  size_t n;
};

static void add_seen(const json_t *item, void *ud) {
  struct seen_ids *s = ud;
  const char *id = jstr(item, "id");
  for (size_t k = 0; k < s->n; k++)
    assert_string_not_equal(s->id[k], id);
  assert_true(s->n < N_AUTHS);
  snprintf(s->id[s->n++], sizeof s->id[0], "%s", id);
}

static void test_auth_paging(void **state) {
  (void)state;
  struct seen_ids seen = {0};
  size_t pages = 0;
  size_t n =
      walk_pages("/v1/authorizations?limit=7", 7, add_seen, &seen, &pages);
  assert_int_equal(n, N_AUTHS);
  assert_int_equal(pages, (N_AUTHS + 6) / 7);
  /* None missing: every configured id came once. */
  static const char *const named[] = {"ok", "bad", "drop", "sink"};
  for (int i = 0; i < N_EXTRA + 4; i++) {
    char id[16];
    snprintf(id, sizeof id, "x%02d", i);
    const char *want = i < N_EXTRA ? id : named[i - N_EXTRA];
    size_t k = 0;
    while (k < n && strcmp(seen.id[k], want) != 0)
      k++;
    assert_true(k < n);
  }
}

/* Asserts that the list's key values are sorted (asc or desc). */
static void assert_sorted(const json_t *arr, const char *key, int desc) {
  for (size_t i = 1; i < json_array_size(arr); i++) {
    const char *a = jstr(json_array_get(arr, i - 1), key);
    const char *b = jstr(json_array_get(arr, i), key);
    int c = strcmp(a ? a : "", b ? b : "");
    assert_true(desc ? c >= 0 : c <= 0);
  }
}

static void test_auth_summary(void **state) {
  (void)state;
  json_t *v = get_json("/v1/authorizations/ok");
  assert_string_equal(jstr(v, "name"), "OK key");
  json_t *h = json_object_get(v, "health");
  assert_string_equal(jstr(h, "status"), "Healthy");
  assert_string_equal(jstr(h, "reason"), "api key accepted");
  assert_non_null(jstr(h, "checked_at"));
  assert_non_null(jstr(h, "next_check_at"));
  assert_true(strcmp(jstr(h, "next_check_at"), jstr(h, "checked_at")) > 0);
  json_t *p = json_object_get(v, "provider");
  assert_string_equal(jstr(p, "id"), "example");
  assert_string_equal(jstr(p, "display_name"), "Example provider");
  assert_int_equal(json_array_size(json_object_get(v, "jobs")), 6);
  assert_int_equal(json_array_size(json_object_get(v, "exports")), 0);
  json_decref(v);

  v = get_json("/v1/authorizations/bad");
  h = json_object_get(v, "health");
  assert_string_equal(jstr(h, "status"), "Unhealthy");
  assert_string_equal(jstr(h, "reason"), "api key rejected");
  json_decref(v);

  static const char *const sorts[][2] = {{"name", "name"},
                                         {"type", "type"},
                                         {"status", "status"},
                                         {"created", "created_at"}};
  for (size_t i = 0; i < 4; i++)
    for (int desc = 0; desc < 2; desc++) {
      char path[128];
      snprintf(path, sizeof path, "/v1/authorizations/%s?sort=%s&order=%s",
               "ok", sorts[i][0], desc ? "desc" : "asc");
      v = get_json(path);
      assert_sorted(json_object_get(v, "jobs"), sorts[i][1], desc);
      json_decref(v);
      snprintf(path, sizeof path, "/v1/authorizations/%s?sort=%s&order=%s",
               "sink", sorts[i][0], desc ? "desc" : "asc");
      v = get_json(path);
      json_t *ex = json_object_get(v, "exports");
      assert_int_equal(json_array_size(ex), 2);
      assert_sorted(ex, sorts[i][1], desc);
      assert_string_equal(jstr(json_array_get(ex, 0), "type"), "export");
      json_decref(v);
    }
  v = get_json("/v1/authorizations/sink?sort=name&order=asc");
  json_t *ex = json_object_get(v, "exports");
  assert_string_equal(jstr(json_array_get(ex, 0), "name"), "A export");
  json_decref(v);
  struct resp r =
      call("GET", "/v1/authorizations/ok?sort=colour", READ_TOKEN, NULL);
  expect_error(&r, 400, "invalid_parameter");
  resp_free(&r);
}

static void keep_id(const json_t *item, void *ud) {
  *(int64_t *)ud = json_integer_value(json_object_get(item, "id"));
}

static int64_t newest_event_id(void) {
  int64_t last = 0;
  walk_pages("/v1/events?limit=1000", 1000, keep_id, &last, NULL);
  return last;
}

static void test_auth_metrics_health_check(void **state) {
  (void)state;
  static const char *const gran[] = {"hour", "day", "week", "month"};
  for (size_t i = 0; i < 4; i++) {
    char path[128];
    snprintf(path, sizeof path,
             "/v1/authorizations/ok/metrics?granularity=%s&from=2020-01-01",
             gran[i]);
    json_t *v = get_json(path);
    assert_string_equal(jstr(v, "granularity"), gran[i]);
    assert_string_equal(jstr(v, "from"), "2020-01-01T00:00:00.000Z");
    json_t *pts = json_object_get(v, "points");
    assert_true(json_is_array(pts));
    for (size_t k = 0; k < json_array_size(pts); k++) {
      json_t *pt = json_array_get(pts, k);
      assert_non_null(jstr(pt, "start"));
      assert_true(json_is_integer(json_object_get(pt, "requests")));
      assert_true(json_is_integer(json_object_get(pt, "errors")));
    }
    json_decref(v);
  }
  struct resp r = call("GET", "/v1/authorizations/ok/metrics?granularity=year",
                       READ_TOKEN, NULL);
  expect_error(&r, 400, "invalid_parameter");
  resp_free(&r);

  json_t *v = get_json("/v1/authorizations/bad/health");
  json_t *items = json_object_get(v, "items");
  assert_true(json_array_size(items) >= 1);
  assert_string_equal(jstr(json_array_get(items, 0), "status"), "Unhealthy");
  assert_string_equal(jstr(json_array_get(items, 0), "reason"),
                      "api key rejected");
  size_t before_checks = json_array_size(items);
  json_decref(v);

  int64_t last = newest_event_id();
  r = call("POST", "/v1/authorizations/bad/check", WRITE_TOKEN, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(jstr(r.json, "status"), "Unhealthy");
  assert_string_equal(jstr(r.json, "reason"), "api key rejected");
  assert_non_null(jstr(r.json, "checked_at"));
  resp_free(&r);
  char path[128];
  snprintf(path, sizeof path, "/v1/events?subject_type=auth&after=%lld",
           (long long)last);
  v = get_json(path);
  items = json_object_get(v, "items");
  assert_int_equal(json_array_size(items), 1);
  json_t *ev = json_array_get(items, 0);
  assert_string_equal(jstr(ev, "subject_id"), "bad");
  assert_string_equal(jstr(ev, "verb"), "unhealthy");
  assert_string_equal(jstr(ev, "actor"), "writer");
  json_decref(v);
  v = get_json("/v1/authorizations/bad/health");
  assert_int_equal(json_array_size(json_object_get(v, "items")),
                   before_checks + 1);
  json_decref(v);
}

/* ---- Works and executions ----------------------------------------------- */

/* Polls an execution until its state is final (bounded); returns it. */
static json_t *wait_exec_final(int64_t id) {
  char path[64];
  snprintf(path, sizeof path, "/v1/executions/%lld", (long long)id);
  for (int i = 0; i < 600; i++) {
    json_t *v = get_json(path);
    const char *st = jstr(v, "state");
    if (!strcmp(st, "Completed") || !strcmp(st, "Failed") ||
        !strcmp(st, "Cancelled"))
      return v;
    json_decref(v);
    usleep(100 * 1000);
  }
  fail_msg("execution %lld never ended", (long long)id);
  return NULL;
}

/* POST /v1/works/{work}/runs: asserts 201 + Location; returns the id. */
static int64_t run_work(const char *work) {
  char path[128], loc[128], want[128];
  snprintf(path, sizeof path, "/v1/works/%s/runs", work);
  struct resp r = call("POST", path, WRITE_TOKEN, NULL);
  if (r.status != 201)
    fail_msg("POST %s: %ld %s", path, r.status, r.body.p ? r.body.p : "");
  int64_t id = json_integer_value(json_object_get(r.json, "id"));
  assert_true(id > 0);
  assert_string_equal(jstr(r.json, "work"), work);
  snprintf(want, sizeof want, "/v1/executions/%lld", (long long)id);
  assert_non_null(header(&r, "Location", loc, sizeof loc));
  assert_string_equal(loc, want);
  resp_free(&r);
  return id;
}

static void test_run_and_executions(void **state) {
  (void)state;
  int64_t id = run_work("manual");
  json_t *e = wait_exec_final(id);
  assert_string_equal(jstr(e, "state"), "Completed");
  assert_int_equal(json_integer_value(json_object_get(e, "records")), 5);
  json_t *tr = json_object_get(e, "transitions");
  assert_true(json_array_size(tr) >= 2);
  assert_true(json_is_null(json_object_get(json_array_get(tr, 0), "from")));
  assert_string_equal(jstr(json_array_get(tr, json_array_size(tr) - 1), "to"),
                      "Completed");
  for (size_t i = 1; i < json_array_size(tr); i++)
    assert_string_equal(jstr(json_array_get(tr, i), "from"),
                        jstr(json_array_get(tr, i - 1), "to"));
  json_decref(e);

  json_t *v = get_json("/v1/works/manual/executions");
  json_t *items = json_object_get(v, "items");
  assert_true(json_array_size(items) >= 1);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(items, 0), "id")), id);
  json_decref(v);
  v = get_json("/v1/works/manual");
  assert_string_equal(jstr(v, "status"), "Active");
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(v, "last_execution"), "id")),
                   id);
  json_decref(v);

  char path[128];
  snprintf(path, sizeof path, "/v1/executions/%lld/cancel", (long long)id);
  struct resp r = call("POST", path, WRITE_TOKEN, NULL);
  expect_error(&r, 409, "already_final");
  resp_free(&r);
}

static void test_run_open_and_cancel(void **state) {
  (void)state;
  int64_t id = run_work("big");
  struct resp r = call("POST", "/v1/works/big/runs", WRITE_TOKEN, NULL);
  expect_error(&r, 409, "execution_open");
  resp_free(&r);
  char path[128];
  snprintf(path, sizeof path, "/v1/executions/%lld/cancel", (long long)id);
  r = call("POST", path, WRITE_TOKEN, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(jstr(r.json, "state"), "Cancelled");
  resp_free(&r);
  json_t *e = wait_exec_final(id);
  assert_string_equal(jstr(e, "state"), "Cancelled");
  json_decref(e);
  r = call("POST", path, WRITE_TOKEN, NULL);
  expect_error(&r, 409, "already_final");
  resp_free(&r);
  r = call("POST", "/v1/works/off/runs", WRITE_TOKEN, NULL);
  expect_error(&r, 409, "disabled");
  resp_free(&r);
}

/* The ids of a works list filtered by status, joined with ','. */
static void works_with_status(const char *status, char *out, size_t len) {
  char path[128];
  snprintf(path, sizeof path, "/v1/works?status=%s", status);
  json_t *v = get_json(path);
  json_t *items = json_object_get(v, "items");
  out[0] = '\0';
  for (size_t i = 0; i < json_array_size(items); i++) {
    assert_string_equal(jstr(json_array_get(items, i), "status"), status);
    snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "",
             jstr(json_array_get(items, i), "id"));
  }
  json_decref(v);
}

static void test_work_status_and_schedule(void **state) {
  (void)state;
  int64_t id = run_work("broken");
  json_t *e = wait_exec_final(id);
  assert_string_equal(jstr(e, "state"), "Failed");
  char error[512];
  snprintf(error, sizeof error, "%s", jstr(e, "error"));
  assert_non_null(strstr(error, "users.csv"));
  json_decref(e);

  char ids[256];
  works_with_status("Error", ids, sizeof ids);
  assert_string_equal(ids, "broken");
  works_with_status("Disabled", ids, sizeof ids);
  assert_string_equal(ids, "off");
  works_with_status("Active", ids, sizeof ids);
  assert_non_null(strstr(ids, "items"));
  assert_null(strstr(ids, "broken"));
  json_t *v = get_json("/v1/works/broken");
  assert_string_equal(jstr(v, "status"), "Error");
  assert_string_equal(jstr(v, "status_reason"), error);
  json_decref(v);
  v = get_json("/v1/works/off");
  assert_string_equal(jstr(v, "status_reason"), "disabled");
  json_decref(v);

  v = get_json("/v1/works/items/schedule?next=3");
  json_t *next = json_object_get(v, "next");
  assert_int_equal(json_array_size(next), 3);
  for (size_t i = 1; i < 3; i++)
    assert_true(strcmp(json_string_value(json_array_get(next, i - 1)),
                       json_string_value(json_array_get(next, i))) < 0);
  json_decref(v);
  struct resp r =
      call("GET", "/v1/works/items/schedule?next=0", READ_TOKEN, NULL);
  expect_error(&r, 400, "invalid_parameter");
  resp_free(&r);
}

/* ---- Events ------------------------------------------------------------- */

/* An auth created event, each newer than the one before. */
static void check_auth_created(const json_t *ev, void *ud) {
  int64_t *prev = ud, id = json_integer_value(json_object_get(ev, "id"));
  assert_string_equal(jstr(ev, "subject_type"), "auth");
  assert_string_equal(jstr(ev, "verb"), "created");
  assert_true(id > *prev);
  *prev = id;
}

static void test_events_list(void **state) {
  (void)state;
  int64_t prev = 0;
  assert_int_equal(walk_pages("/v1/events?subject_type=auth&verb=created&"
                              "limit=5",
                              5, check_auth_created, &prev, NULL),
                   N_AUTHS);

  /* Paging keeps every filter, repeated verb parameters included. */
  json_t *v = get_json("/v1/events?verb=created&verb=syncing&limit=1000");
  size_t all = json_array_size(json_object_get(v, "items"));
  json_decref(v);
  assert_true(all > N_AUTHS + N_WORKS);
  assert_int_equal(walk_pages("/v1/events?verb=created&verb=syncing&limit=4", 4,
                              NULL, NULL, NULL),
                   all);

  v = get_json("/v1/events?subject_type=work&verb=created,deleted");
  assert_int_equal(json_array_size(json_object_get(v, "items")), N_WORKS);
  json_decref(v);
  struct resp r = call("GET", "/v1/events?subject_type=wrok", READ_TOKEN, NULL);
  assert_non_null(
      strstr(expect_error(&r, 400, "invalid_parameter"), "did you mean"));
  resp_free(&r);
  r = call("GET", "/v1/events?verb=exploded", READ_TOKEN, NULL);
  expect_error(&r, 400, "invalid_parameter");
  resp_free(&r);
}

/* A raw HTTP/1.0 connection (so the stream is not chunked). */
static int open_stream(const char *extra) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)S.port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET /v1/events/stream HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                   "Authorization: Bearer %s\r\n%s\r\n",
                   READ_TOKEN, extra);
  assert_int_equal(send(fd, req, (size_t)n, 0), n);
  return fd;
}

/* Reads into b until it holds until (or max_ms pass); 1 when it does. */
static int read_until(int fd, struct buf *b, const char *until, int max_ms) {
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    if (b->p != NULL && strstr(b->p, until) != NULL)
      return 1;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int left = max_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 +
                              (t.tv_nsec - t0.tv_nsec) / 1000000);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&p, 1, left) <= 0)
      return 0;
    char chunk[4096];
    ssize_t r = recv(fd, chunk, sizeof chunk, 0);
    if (r <= 0)
      return 0;
    buf_add(chunk, 1, (size_t)r, b);
  }
}

/* The event ids in a stream's text, in order. */
static size_t stream_ids(const char *text, int64_t *ids, size_t max) {
  size_t n = 0;
  for (const char *p = text; p && (p = strstr(p, "\nid: ")) && n < max; p++)
    ids[n++] = strtoll(p + 5, NULL, 10);
  return n;
}

static void test_event_stream(void **state) {
  (void)state;
  int fd = open_stream("");
  struct buf b = {0};
  assert_true(read_until(fd, &b, ": connrun event stream", 10000));
  assert_non_null(strcasestr(b.p, "content-type: text/event-stream"));
  int64_t exec = run_work("manual");
  /* The run request's event arrives within a second. */
  assert_true(read_until(fd, &b, "\nid: ", 1000));
  json_t *e = wait_exec_final(exec);
  json_decref(e);
  if (!read_until(fd, &b, "event: synccomplete", 5000))
    fail_msg("no synccomplete event in the stream: %s", b.p);
  close(fd);
  int64_t ids[64];
  size_t n = stream_ids(b.p, ids, 64);
  assert_true(n >= 2);
  for (size_t i = 1; i < n; i++)
    assert_true(ids[i] > ids[i - 1]);
  free(b.p);

  /* Resume after the first one: the next stored event, no repeat. */
  char path[96];
  snprintf(path, sizeof path, "/v1/events?after=%lld&limit=1",
           (long long)ids[0]);
  json_t *v = get_json(path);
  int64_t want = json_integer_value(
      json_object_get(json_array_get(json_object_get(v, "items"), 0), "id"));
  json_decref(v);
  char hdr[64];
  snprintf(hdr, sizeof hdr, "Last-Event-ID: %lld\r\n", (long long)ids[0]);
  fd = open_stream(hdr);
  memset(&b, 0, sizeof b);
  char want_line[48];
  snprintf(want_line, sizeof want_line, "\nid: %lld\n", (long long)ids[n - 1]);
  assert_true(read_until(fd, &b, want_line, 5000));
  close(fd);
  int64_t again[64];
  size_t m = stream_ids(b.p, again, 64);
  free(b.p);
  assert_true(m >= 1);
  assert_int_equal(again[0], want);
  for (size_t i = 0; i < m; i++) {
    assert_true(again[i] > ids[0]);
    if (i > 0)
      assert_true(again[i] > again[i - 1]);
  }
}

/* ---- Subscriptions, alerts, plugins, runners, probes -------------------- */

static void test_subscriptions(void **state) {
  (void)state;
  json_t *v = get_json("/v1/subscriptions");
  json_t *items = json_object_get(v, "items");
  assert_int_equal(json_array_size(items), 1);
  assert_string_equal(jstr(json_array_get(items, 0), "id"), "hook");
  json_decref(v);
  v = get_json("/v1/subscriptions/hook");
  json_t *cfg = json_object_get(v, "config");
  assert_string_equal(jstr(cfg, "secret"), "***");
  assert_string_equal(jstr(json_object_get(cfg, "headers"), "X-Token"), "***");
  json_decref(v);

  /* The runs above produced events: wait (bounded) for their delivery. */
  json_t *att = NULL;
  for (int i = 0; i < 300; i++) {
    v = get_json("/v1/subscriptions/hook/attempts");
    if (json_array_size(json_object_get(v, "items")) > 0) {
      att = v;
      break;
    }
    json_decref(v);
    usleep(100 * 1000);
  }
  assert_non_null(att);
  json_t *a0 = json_array_get(json_object_get(att, "items"), 0);
  assert_int_equal(json_integer_value(json_object_get(a0, "http_status")), 200);
  assert_true(json_integer_value(json_object_get(a0, "event_id")) > 0);
  json_decref(att);
  assert_true(cr_fake_http_count(S.hook) >= 1);
  const struct cr_fake_http_request *got = cr_fake_http_request_at(S.hook, 0);
  assert_string_equal(cr_fake_http_header(got, "X-Token"), HDR_SECRET);
  assert_non_null(cr_fake_http_header(got, "webhook-signature"));

  struct resp r = call("POST", "/v1/subscriptions/hook/replay", WRITE_TOKEN,
                       "{\"since\":0}");
  assert_int_equal(r.status, 200);
  assert_true(json_integer_value(json_object_get(r.json, "queued")) > 0);
  resp_free(&r);
  r = call("POST", "/v1/subscriptions/hook/replay", WRITE_TOKEN, "{}");
  expect_error(&r, 422, "missing_field");
  resp_free(&r);
  r = call("GET", "/v1/subscriptions/none/attempts", READ_TOKEN, NULL);
  expect_error(&r, 404, "not_found");
  resp_free(&r);
}

static void test_alerts_plugins_runners(void **state) {
  (void)state;
  json_t *v = get_json("/v1/alerts");
  json_t *a = json_array_get(json_object_get(v, "items"), 0);
  assert_string_equal(jstr(a, "id"), "chat");
  assert_string_equal(jstr(a, "channel"), "webhook");
  json_decref(v);

  v = get_json("/v1/plugins");
  json_t *items = json_object_get(v, "items");
  static const char *const loaded[] = {"example", "filedrop", "collect"};
  for (size_t k = 0; k < 3; k++) {
    size_t i = 0;
    while (i < json_array_size(items) &&
           strcmp(jstr(json_array_get(items, i), "name"), loaded[k]) != 0)
      i++;
    assert_true(i < json_array_size(items));
  }
  json_decref(v);
  v = get_json("/v1/plugins/example");
  assert_string_equal(jstr(v, "display_name"), "Example provider");
  assert_true(json_is_object(json_object_get(v, "credentials_schema")));
  assert_true(json_is_object(json_object_get(v, "config_schema")));
  assert_true(json_is_array(json_object_get(v, "streams")));
  json_decref(v);
  struct resp r = call("GET", "/v1/plugins/nope", READ_TOKEN, NULL);
  expect_error(&r, 404, "not_found");
  resp_free(&r);

  v = get_json("/v1/runners");
  json_t *run = json_array_get(json_object_get(v, "items"), 0);
  assert_string_equal(jstr(run, "kind"), "local");
  assert_string_equal(jstr(run, "status"), "online");
  assert_true(json_integer_value(json_object_get(run, "slots")) > 0);
  json_decref(v);

  r = call("GET", "/healthz", NULL, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(jstr(r.json, "status"), "ok");
  resp_free(&r);
  r = call("GET", "/readyz", NULL, NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(jstr(r.json, "status"), "ready");
  resp_free(&r);
}

static void test_metrics(void **state) {
  (void)state;
  struct resp r = call("GET", "/metrics", READ_TOKEN, NULL);
  assert_int_equal(r.status, 200);
  static const char *const families[] = {
      "# TYPE connrun_executions gauge",
      "# TYPE connrun_api_requests_total counter",
      "# TYPE connrun_api_request_duration_seconds histogram",
      "# TYPE connrun_authorization_health gauge",
      "# TYPE connrun_runner_slots gauge",
      "connrun_executions{provider=\"example\",state=\"completed\"}",
      "connrun_store_reconnects_total 0\n", /* SQLite: never */
      "# TYPE connrun_store_retries_total counter",
      "# TYPE connrun_store_lost_statements_total counter",
      "connrun_store_round_trips_total 0\n",
      "connrun_store_deferred_statements_total 0\n",
      NULL};
  for (size_t i = 0; families[i] != NULL; i++)
    if (strstr(r.body.p, families[i]) == NULL)
      fail_msg("/metrics lacks %s", families[i]);
  if (access("/usr/bin/promtool", X_OK) == 0) {
    char *file = cr_test_write_file(S.dir, "metrics.txt", r.body.p);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "/usr/bin/promtool check metrics < '%s'", file);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char *out = NULL;
    int st = cr_test_run(argv, NULL, &out);
    if (st != 0)
      fail_msg("promtool check metrics: %s", out);
    free(out);
    free(file);
  }
  resp_free(&r);
  r = call("GET", "/metrics", NULL, NULL);
  expect_error(&r, 401, "unauthorized");
  resp_free(&r);
}

/* Last: the server stops and its whole log is checked. */
static void test_no_secret_anywhere(void **state) {
  (void)state;
  assert_true(S.responses > 100);
  int st = cr_test_proc_stop(&S.proc);
  char *log = cr_test_read_file(S.log_path);
  assert_non_null(log);
  if (st != 0) {
    size_t n = strlen(log);
    fprintf(stderr, "serve exited with %d; its log ends:\n%s\n", st,
            log + (n > 6000 ? n - 6000 : 0));
    free(log);
    fail_msg("serve exited with %d", st);
  }
  assert_non_null(strstr(log, "stopped"));
  check_no_secret(log, strlen(log), "the server log");
  free(log);
}

/* ---- Servers of their own ----------------------------------------------- */

/* Starts serve on cfg_text in a fresh dir; *dir and the port out. */
static struct cr_test_proc serve_own(const char *tag, const char *cfg_text,
                                     const char *listen, char **dir) {
  *dir = cr_test_mkdtemp(tag);
  char *cfg = cr_test_write_file(*dir, "c.yaml", cfg_text);
  char *extra[] = {"--listen", (char *)listen, NULL};
  struct cr_test_proc p = cr_test_serve(*dir, cfg, extra, serve_env);
  free(cfg);
  return p;
}

static int connect_loopback(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  if (rcvbuf > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* 1 when the server closed fd within max_ms. */
static int closed_by_server(int fd, int max_ms) {
  struct buf b = {0};
  int got = read_until(fd, &b, "\x01never\x02", max_ms);
  free(b.p);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char c;
  return !got && poll(&p, 1, 0) >= 0 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

static long healthz(int port) {
  struct req q = {.method = "GET", .path = "/healthz", .port = port};
  struct resp r = call_req(&q);
  long st = r.status;
  resp_free(&r);
  return st;
}

static void test_limits_slow_clients(void **state) {
  (void)state;
  char text[4096], *dir = NULL;
  snprintf(text, sizeof text,
           "host:\n  data_dir: ./data\n  plugin_dirs: [\"%s\"]\n"
           "  api_tokens: [{ name: reader, token: \"${CR_API_READ}\" }]\n"
           "  api: { max_connections: 8, timeout: 2s }\n"
           "authorizations:\n",
           CR_PLUGIN_DIR);
  for (int i = 0; i < 20; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text),
             "  - { id: a%02d, provider: example, method: none }\n", i);
  struct cr_test_proc p = serve_own("api-limits", text, "127.0.0.1:0", &dir);
  int port = cr_test_serve_port(&p);
  assert_true(port > 0);
  assert_int_equal(healthz(port), 200);

  int stalled[8];
  for (int i = 0; i < 8; i++) {
    stalled[i] = connect_loopback(port, 0);
    const char *half = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    assert_true(send(stalled[i], half, strlen(half), 0) > 0);
  }
  /* Once the 2 s timeout frees the slots, a new client is answered. */
  long st = 0;
  for (int i = 0; i < 100 && st != 200; i++) {
    st = healthz(port);
    if (st != 200)
      usleep(200 * 1000);
  }
  assert_int_equal(st, 200);
  for (int i = 0; i < 8; i++) {
    assert_true(closed_by_server(stalled[i], 10000));
    close(stalled[i]);
  }

  /* A client that asks for large responses and never reads them. */
  int slow = connect_loopback(port, 4096);
  char req[256];
  int n = snprintf(req, sizeof req,
                   "GET /v1/authorizations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: Bearer %s\r\n\r\n",
                   READ_TOKEN);
  for (int i = 0; i < 100; i++)
    if (send(slow, req, (size_t)n, MSG_DONTWAIT) != n)
      break;
  for (int i = 0; i < 5; i++) {
    struct req q = {.method = "GET",
                    .path = "/v1/authorizations",
                    .token = READ_TOKEN,
                    .port = port};
    struct resp r = call_req(&q);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 20);
    resp_free(&r);
  }
  close(slow);
  assert_int_equal(cr_test_proc_stop(&p), 0);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_plain_http_off_loopback(void **state) {
  (void)state;
  char text[512], *dir = NULL;
  snprintf(text, sizeof text,
           "host:\n  data_dir: ./data\n  plugin_dirs: [\"%s\"]\n",
           CR_PLUGIN_DIR);
  struct cr_test_proc p = serve_own("api-insecure", text, "0.0.0.0:0", &dir);
  int st = cr_test_proc_wait(&p, 30000);
  assert_true(st > 0);
  char *log = cr_test_read_file(p.log_path);
  assert_non_null(strstr(log, "refusing to serve the API over plain HTTP on "
                              "0.0.0.0:0, a non-loopback address"));
  free(log);
  cr_test_proc_stop(&p);
  cr_test_rmtree(dir);
  free(dir);

  snprintf(text, sizeof text,
           "host:\n  data_dir: ./data\n  plugin_dirs: [\"%s\"]\n"
           "  allow_insecure_http: true\n",
           CR_PLUGIN_DIR);
  p = serve_own("api-insecure-ok", text, "0.0.0.0:0", &dir);
  int port = cr_test_serve_port(&p);
  assert_true(port > 0);
  assert_int_equal(healthz(port), 200);
  assert_int_equal(cr_test_proc_stop(&p), 0);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_tls(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("api-tls");
  char cert[4096], key[4096];
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  char *argv[] = {"/usr/bin/openssl",
                  "req",
                  "-x509",
                  "-newkey",
                  "ec",
                  "-pkeyopt",
                  "ec_paramgen_curve:prime256v1",
                  "-nodes",
                  "-keyout",
                  key,
                  "-out",
                  cert,
                  "-days",
                  "2",
                  "-subj",
                  "/CN=127.0.0.1",
                  "-addext",
                  "subjectAltName=IP:127.0.0.1",
                  NULL};
  char *out = NULL;
  int st = cr_test_run(argv, NULL, &out);
  if (st != 0)
    fail_msg("openssl: %s", out);
  free(out);
  char text[1024];
  snprintf(text, sizeof text,
           "host:\n  data_dir: ./data\n  plugin_dirs: [\"%s\"]\n"
           "  tls: { cert: cert.pem, key: key.pem }\n",
           CR_PLUGIN_DIR);
  char *cfg = cr_test_write_file(dir, "c.yaml", text);
  char *extra[] = {"--listen", "127.0.0.1:0", NULL};
  struct cr_test_proc p = cr_test_serve(dir, cfg, extra, NULL);
  int port = cr_test_serve_port(&p);
  assert_true(port > 0);
  assert_true(cr_test_wait_log(&p, "api: listening on https://", 1));
  struct req q = {.method = "GET",
                  .path = "/healthz",
                  .port = port,
                  .scheme = "https",
                  .cainfo = cert};
  struct resp r = call_req(&q);
  assert_int_equal(r.status, 200);
  assert_string_equal(jstr(r.json, "status"), "ok");
  resp_free(&r);
  /* Without the certificate as trust anchor the client refuses it. */
  q.cainfo = "/dev/null";
  r = call_req(&q);
  assert_int_equal(r.status, 0);
  resp_free(&r);
  q.cainfo = NULL;
  q.scheme = "http";
  r = call_req(&q);
  assert_true(r.status != 200);
  resp_free(&r);
  assert_int_equal(cr_test_proc_stop(&p), 0);
  free(cfg);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_ALL);
  const struct CMUnitTest shared[] = {
      cmocka_unit_test(test_tokens_and_scopes),
      cmocka_unit_test(test_not_found_and_method),
      cmocka_unit_test(test_conflicts),
      cmocka_unit_test(test_body_too_large),
      cmocka_unit_test(test_bad_bodies),
      cmocka_unit_test(test_auth_paging),
      cmocka_unit_test(test_auth_summary),
      cmocka_unit_test(test_auth_metrics_health_check),
      cmocka_unit_test(test_run_and_executions),
      cmocka_unit_test(test_run_open_and_cancel),
      cmocka_unit_test(test_work_status_and_schedule),
      cmocka_unit_test(test_events_list),
      cmocka_unit_test(test_event_stream),
      cmocka_unit_test(test_subscriptions),
      cmocka_unit_test(test_alerts_plugins_runners),
      cmocka_unit_test(test_metrics),
      cmocka_unit_test(test_no_secret_anywhere),
  };
  const struct CMUnitTest own[] = {
      cmocka_unit_test(test_limits_slow_clients),
      cmocka_unit_test(test_plain_http_off_loopback),
      cmocka_unit_test(test_tls),
  };
  int failed =
      cmocka_run_group_tests_name("api", shared, group_setup, group_teardown);
  failed += cmocka_run_group_tests_name("api_servers", own, NULL, NULL);
  curl_global_cleanup();
  return failed;
}
