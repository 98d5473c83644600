/* test_host_api.c: the default host table and cr_plugin_ctx: HTTP against
 * the loopback fake server (methods, headers, bodies, statuses, timeouts,
 * cancellation, limits, redirects, counters), log and error redaction, the
 * sinks, allocation failures, and the SDK helpers of
 * <connrun/plugin_util.h>. */
#include "testutil.h"

#include "fake_http.h"
#include "plugin/host_api.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#include <connrun/plugin_util.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECRET "SG.supersecretkey123"

/* ---- Fixtures
 * ----------------------------------------------------------------- */

static void handler(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  (void)ud;
  if (strcmp(req->path, "/hello") == 0) {
    resp->body = "hello";
    resp->content_type = "text/plain";
    resp->headers[0] = "X-Test: yes";
    resp->headers[1] = "Retry-After:  120 ";
  } else if (strcmp(req->path, "/echo") == 0) {
    cr_fake_http_set_body(resp, "%s %.*s", req->method, (int)req->body_len,
                          req->body);
  } else if (strncmp(req->path, "/status/", 8) == 0) {
    resp->status = atoi(req->path + 8);
    resp->body = "{}";
  } else if (strcmp(req->path, "/slow") == 0) {
    resp->delay_ms = 3000;
    resp->body = "late";
  } else if (strcmp(req->path, "/big") == 0) {
    static char big[5001];
    memset(big, 'b', 5000);
    resp->body = big;
  } else if (strcmp(req->path, "/large") == 0) {
    static char large[300001];
    for (size_t i = 0; i < 300000; i++)
      large[i] = (char)('a' + i % 26);
    resp->body = large;
  } else if (strcmp(req->path, "/gzip") == 0) {
    /* 20,000 'a' gzip-compressed: the body outgrows its Content-Length. */
    static const unsigned char gz[] = {
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xed,
        0xc1, 0x31, 0x01, 0x00, 0x00, 0x00, 0xc2, 0xa0, 0xac, 0xeb, 0x5f,
        0xc2, 0x1a, 0x1e, 0x40, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xf0, 0x60, 0x31, 0x87, 0xbd, 0xca, 0x20, 0x4e, 0x00, 0x00};
    resp->body = (const char *)gz;
    resp->body_len = sizeof gz;
    resp->headers[0] = "Content-Encoding: gzip";
  } else if (strcmp(req->path, "/redir") == 0) {
    resp->status = 302;
    resp->headers[0] = "Location: /hello";
  } else {
    resp->status = 404;
  }
}

struct lines {
  char *text[64];
  int level[64];
  int n;
};

static void capture(void *ud, int level, const char *msg) {
  struct lines *l = ud;
  if (l->n < 64) {
    l->level[l->n] = level;
    l->text[l->n++] = strdup(msg);
  }
}

static void lines_free(struct lines *l) {
  for (int i = 0; i < l->n; i++)
    free(l->text[i]);
  l->n = 0;
}

static int lines_contain(const struct lines *l, const char *needle) {
  for (int i = 0; i < l->n; i++)
    if (strstr(l->text[i], needle) != NULL)
      return 1;
  return 0;
}

struct fx {
  cr_fake_http *srv;
  cr_redactor *red;
  cr_plugin_ctx ctx;
  struct lines log;
  const struct cr_host_api *api;
  char url[256];
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  if (f == NULL || cr_fake_http_start(handler, NULL, &f->srv) != 0)
    return -1;
  if (cr_redactor_new(&f->red) != 0 || cr_redactor_add(f->red, SECRET) != 0)
    return -1;
  cr_plugin_ctx_init(&f->ctx, "auth-1", f->red);
  cr_plugin_ctx_set_log(&f->ctx, capture, &f->log);
  f->api = cr_host_api_default();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  cr_plugin_ctx_cleanup(&f->ctx);
  cr_fake_http_stop(f->srv);
  cr_redactor_free(f->red);
  lines_free(&f->log);
  free(f);
  return 0;
}

static const char *url(struct fx *f, const char *path) {
  snprintf(f->url, sizeof f->url, "%s%s", cr_fake_http_url(f->srv), path);
  return f->url;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The table -------------------------------------------------------------
 */

static void test_default_table(void **state) {
  (void)state;
  const struct cr_host_api *api = cr_host_api_default();
  assert_ptr_equal(api, cr_host_api_default());
  assert_int_equal(api->struct_size, sizeof(struct cr_host_api));
  assert_int_equal(api->abi_major, CR_PLUGIN_ABI_MAJOR);
  assert_int_equal(api->abi_minor, CR_PLUGIN_ABI_MINOR);
  assert_true(CR_HOST_HAS(api, alloc) && CR_HOST_HAS(api, free) &&
              CR_HOST_HAS(api, log) && CR_HOST_HAS(api, emit) &&
              CR_HOST_HAS(api, checkpoint) && CR_HOST_HAS(api, state) &&
              CR_HOST_HAS(api, progress) && CR_HOST_HAS(api, cancelled) &&
              CR_HOST_HAS(api, http) && CR_HOST_HAS(api, http_response_free) &&
              CR_HOST_HAS(api, set_error) &&
              CR_HOST_HAS(api, credentials_update) &&
              CR_HOST_HAS(api, record_failed) && CR_HOST_HAS(api, http_start) &&
              CR_HOST_HAS(api, http_finish));
  /* A minor-1 host's table ends before record_failed: a minor-2 plugin sees
   * it absent and falls back. Outside write() (no sink) it is refused. */
  struct cr_host_api old = *api;
  old.struct_size = (uint32_t)offsetof(struct cr_host_api, record_failed);
  assert_false(CR_HOST_HAS(&old, record_failed));
  cr_plugin_ctx ctx;
  assert_int_equal(cr_plugin_ctx_init(&ctx, "a", NULL), 0);
  assert_int_equal(api->record_failed(&ctx, 0, "k", "m"), CR_PLUGIN_ERR_SYSTEM);
  assert_int_equal(api->record_failed(NULL, 0, "k", "m"), CR_PLUGIN_ERR_SYSTEM);
  cr_plugin_ctx_cleanup(&ctx);
  char *p = api->alloc(16);
  assert_non_null(p);
  memset(p, 1, 16);
  api->free(p);
  api->free(NULL);
  assert_int_equal(cr_plugin_ctx_init(NULL, NULL, NULL), CR_EINVAL);
  cr_plugin_ctx_cleanup(NULL);
}

/* ---- HTTP ------------------------------------------------------------------
 */

static void test_http_get(void **state) {
  struct fx *f = *state;
  const char *hdrs[] = {"X-Custom: 42", "Authorization: Bearer " SECRET, NULL};
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/hello?x=1&y=two");
  req.headers = hdrs;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.status, 200);
  assert_int_equal(resp.body_len, 5);
  assert_string_equal(resp.body, "hello");
  char v[16];
  assert_int_equal(cr_http_header_value(&resp, "x-test", v, sizeof v), 0);
  assert_string_equal(v, "yes");
  assert_int_equal(cr_http_header_value(&resp, "Content-Type", v, sizeof v), 0);
  assert_string_equal(v, "text/plain");
  f->api->http_response_free(&f->ctx, &resp);
  assert_null(resp.body);

  assert_int_equal(cr_fake_http_count(f->srv), 1);
  const struct cr_fake_http_request *seen = cr_fake_http_request_at(f->srv, 0);
  assert_string_equal(seen->method, "GET");
  assert_string_equal(seen->path, "/hello");
  assert_string_equal(seen->query, "x=1&y=two");
  assert_string_equal(cr_fake_http_header(seen, "X-Custom"), "42");
  assert_string_equal(cr_fake_http_header(seen, "authorization"),
                      "Bearer " SECRET);
  assert_non_null(strstr(cr_fake_http_header(seen, "User-Agent"), "connrun/"));
  assert_int_equal(f->ctx.counters.requests, 1);
  assert_int_equal(f->ctx.counters.errors, 0);
  assert_true(f->ctx.counters.bytes_received > 5);
}

static void test_http_methods_and_bodies(void **state) {
  struct fx *f = *state;
  const char *methods[] = {"POST", "PUT", "PATCH", "DELETE"};
  const char *body = "{\"a\":1,\"b\":\"two\"}";
  uint64_t sent = 0;
  for (size_t i = 0; i < 4; i++) {
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    struct cr_http_request req;
    struct cr_http_response resp;
    cr_http_request_init(&req);
    req.method = methods[i];
    req.url = url(f, "/echo");
    req.headers = hdrs;
    req.body = body;
    req.body_len = strlen(body);
    sent += req.body_len;
    assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
    assert_int_equal(resp.status, 200);
    char want[128];
    snprintf(want, sizeof want, "%s %s", methods[i], body);
    assert_string_equal(resp.body, want);
    const struct cr_fake_http_request *seen =
        cr_fake_http_request_at(f->srv, i);
    assert_string_equal(seen->method, methods[i]);
    assert_int_equal(seen->body_len, strlen(body));
    assert_memory_equal(seen->body, body, strlen(body));
    assert_string_equal(cr_fake_http_header(seen, "Content-Type"),
                        "application/json");
    assert_null(cr_fake_http_header(seen, "Expect"));
    f->api->http_response_free(&f->ctx, &resp);
  }
  /* POST without a body sends an empty one. */
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.method = "POST";
  req.url = url(f, "/echo");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  assert_string_equal(resp.body, "POST ");
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.requests, 5);
  assert_int_equal(f->ctx.counters.bytes_sent, sent);
}

static void test_http_status_counting(void **state) {
  struct fx *f = *state;
  const struct {
    const char *path;
    long status;
    uint64_t errors;
  } cases[] = {{"/status/404", 404, 0},
               {"/status/401", 401, 0},
               {"/status/429", 429, 1},
               {"/status/503", 503, 2},
               {"/status/204", 204, 2}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct cr_http_request req;
    struct cr_http_response resp;
    cr_http_request_init(&req);
    req.url = url(f, cases[i].path);
    assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
    assert_int_equal(resp.status, cases[i].status);
    assert_non_null(resp.body);
    assert_int_equal(f->ctx.counters.errors, cases[i].errors);
    f->api->http_response_free(&f->ctx, &resp);
  }
  assert_int_equal(f->ctx.counters.requests, 5);
}

static void test_http_timeout(void **state) {
  struct fx *f = *state;
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/slow");
  req.timeout_ms = 300;
  int64_t t0 = now_ms();
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_TRANSIENT);
  assert_true(now_ms() - t0 < 2500);
  assert_int_equal(resp.status, 0);
  assert_null(resp.body);
  assert_non_null(strstr(resp.error, "timed out"));
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.requests, 1);
  assert_int_equal(f->ctx.counters.errors, 1);
  assert_true(lines_contain(&f->log, "-> failed: "));
}

static void test_http_default_timeout_from_ctx(void **state) {
  struct fx *f = *state;
  f->ctx.http.timeout_ms = 300;
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/slow");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_TRANSIENT);
  assert_non_null(strstr(resp.error, "timed out"));
  f->api->http_response_free(&f->ctx, &resp);
}

static void test_http_connection_refused(void **state) {
  struct fx *f = *state;
  char dead[64];
  assert_int_equal(cr_fake_http_dead_url(dead, sizeof dead), 0);
  strcat(dead, "/x");
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = dead;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_TRANSIENT);
  assert_int_equal(resp.status, 0);
  assert_true(strlen(resp.error) > 0);
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.errors, 1);
}

struct canceller {
  cr_plugin_ctx *ctx;
  unsigned after_ms;
};

static void *cancel_later(void *arg) {
  struct canceller *c = arg;
  usleep(c->after_ms * 1000);
  cr_plugin_ctx_cancel(c->ctx);
  return NULL;
}

static void test_http_cancel(void **state) {
  struct fx *f = *state;
  struct canceller c = {&f->ctx, 200};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/slow");
  req.timeout_ms = 20000;
  int64_t t0 = now_ms();
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_CANCELLED);
  int64_t took = now_ms() - t0;
  pthread_join(t, NULL);
  assert_true(took >= 150 && took < 2500);
  assert_int_equal(resp.status, 0);
  f->api->http_response_free(&f->ctx, &resp);
  assert_true(f->api->cancelled(&f->ctx));
  assert_int_equal(f->ctx.counters.requests, 1);
  assert_int_equal(f->ctx.counters.errors, 0);
  /* Once cancelled, nothing new starts. */
  req.url = url(f, "/hello");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_CANCELLED);
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.requests, 1);
  assert_int_equal(f->api->emit(&f->ctx, "s", "{}", 2),
                   CR_PLUGIN_ERR_CANCELLED);
}

/* api->http_start / http_finish (minor 3): the request runs while the
 * caller goes on (a blocking request on the same ctx meanwhile), the answer
 * is what api->http gives, counted and logged once; a second start is
 * refused, a finish without a start too; a refused request is reported by
 * finish. */
static void test_http_background(void **state) {
  struct fx *f = *state;
  struct cr_http_request req;
  struct cr_http_response resp, now;
  const char *hdrs[] = {"Authorization: Bearer " SECRET, NULL};
  char body[] = "payload";
  cr_http_request_init(&req);
  req.method = "POST";
  req.url = url(f, "/echo");
  req.headers = hdrs;
  req.body = body;
  req.body_len = strlen(body);
  assert_int_equal(f->api->http_finish(&f->ctx, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_non_null(strstr(resp.error, "http_start"));
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  memset(body, 'x', sizeof body - 1); /* the host copied the request */
  url(f, "/nowhere");
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_ERR_SYSTEM);
  cr_http_request_init(&req);
  req.url = url(f, "/hello");
  assert_int_equal(f->api->http(&f->ctx, &req, &now), CR_PLUGIN_OK);
  assert_string_equal(now.body, "hello");
  f->api->http_response_free(&f->ctx, &now);
  assert_int_equal(f->api->http_finish(&f->ctx, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.status, 200);
  assert_string_equal(resp.body, "POST payload");
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.requests, 2);
  assert_int_equal(cr_fake_http_count(f->srv), 2);
  assert_true(lines_contain(&f->log, "POST http://"));
  assert_false(lines_contain(&f->log, SECRET));
  /* Statuses and transport errors as api->http answers them. */
  req.url = url(f, "/status/503");
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  assert_int_equal(f->api->http_finish(&f->ctx, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.status, 503);
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.errors, 1);
  req.url = url(f, "/slow");
  req.timeout_ms = 200;
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  assert_int_equal(f->api->http_finish(&f->ctx, &resp),
                   CR_PLUGIN_ERR_TRANSIENT);
  assert_non_null(strstr(resp.error, "timed out"));
  f->api->http_response_free(&f->ctx, &resp);
  /* A request refused at the start is reported by finish. */
  req.url = NULL;
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  assert_int_equal(f->api->http_finish(&f->ctx, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_non_null(strstr(resp.error, "no URL"));
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.requests, 4);
  assert_int_equal(f->api->http_start(NULL, &req), CR_PLUGIN_ERR_SYSTEM);
  assert_int_equal(f->api->http_finish(&f->ctx, NULL), CR_PLUGIN_ERR_SYSTEM);
}

/* Cancelling the ctx stops a background request within the bound; one
 * still in flight when the ctx is cleaned up is abandoned (not counted),
 * and the ctx works again afterwards. */
static void test_http_background_cancel_and_abandon(void **state) {
  struct fx *f = *state;
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/slow");
  req.timeout_ms = 20000;
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  int64_t t0 = now_ms();
  cr_plugin_ctx_cleanup(&f->ctx); /* abandons it */
  assert_true(now_ms() - t0 < 2500);
  assert_int_equal(f->ctx.counters.requests, 0);
  assert_null(f->ctx.async);
  req.url = url(f, "/hello");
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  assert_int_equal(f->api->http_finish(&f->ctx, &resp), CR_PLUGIN_OK);
  assert_string_equal(resp.body, "hello");
  f->api->http_response_free(&f->ctx, &resp);
  struct canceller c = {&f->ctx, 200};
  pthread_t t;
  req.url = url(f, "/slow");
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
  t0 = now_ms();
  assert_int_equal(f->api->http_finish(&f->ctx, &resp),
                   CR_PLUGIN_ERR_CANCELLED);
  int64_t took = now_ms() - t0;
  pthread_join(t, NULL);
  assert_true(took >= 150 && took < 2500);
  f->api->http_response_free(&f->ctx, &resp);
  /* Once cancelled, a start is reported as cancelled by finish. */
  assert_int_equal(f->api->http_start(&f->ctx, &req), CR_PLUGIN_OK);
  assert_int_equal(f->api->http_finish(&f->ctx, &resp),
                   CR_PLUGIN_ERR_CANCELLED);
  f->api->http_response_free(&f->ctx, &resp);
}

static void test_http_bad_requests(void **state) {
  struct fx *f = *state;
  struct cr_http_request req;
  struct cr_http_response resp;

  memset(&req, 0, sizeof req);
  req.url = url(f, "/hello");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_non_null(strstr(resp.error, "struct_size"));
  f->api->http_response_free(&f->ctx, &resp);

  cr_http_request_init(&req);
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_non_null(strstr(resp.error, "URL"));
  assert_int_equal(f->api->http(&f->ctx, NULL, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_int_equal(f->api->http(&f->ctx, &req, NULL), CR_PLUGIN_ERR_SYSTEM);

  const char *inject[] = {"X-A: 1\r\nX-Injected: 2", NULL};
  req.url = url(f, "/hello");
  req.headers = inject;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_non_null(strstr(resp.error, "header 0"));
  const char *nocolon[] = {"X-A 1", NULL};
  req.headers = nocolon;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  req.headers = NULL;
  req.method = "GE T";
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  req.method = NULL;
  req.body_len = 3;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  req.body_len = 0;
  assert_int_equal(f->ctx.counters.requests, 0);

  req.url = "ftp://127.0.0.1/file";
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_CONFIG);
  assert_true(strlen(resp.error) > 0);
  f->api->http_response_free(&f->ctx, &resp);
  req.url = "http://";
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_CONFIG);
  f->api->http_response_free(&f->ctx, &resp);
}

static void test_http_max_body(void **state) {
  struct fx *f = *state;
  f->ctx.http.max_body = 1000;
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/big");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_int_equal(resp.status, 0);
  assert_null(resp.body);
  assert_non_null(strstr(resp.error, "limit of 1000 bytes"));
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->ctx.counters.errors, 1);
  f->ctx.http.max_body = 5000;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.body_len, 5000);
  f->api->http_response_free(&f->ctx, &resp);
}

/* Bodies larger than libcurl's buffer arrive whole, sized from their
 * Content-Length; a compressed one grows past it and still arrives whole,
 * within max_body. */
static void test_http_large_and_compressed(void **state) {
  struct fx *f = *state;
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/large");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.body_len, 300000);
  for (size_t i = 0; i < 300000; i += 997)
    assert_int_equal(resp.body[i], 'a' + (int)(i % 26));
  assert_int_equal(resp.body[300000], '\0');
  f->api->http_response_free(&f->ctx, &resp);
  req.url = url(f, "/gzip");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.body_len, 20000);
  assert_int_equal(strspn(resp.body, "a"), 20000);
  f->api->http_response_free(&f->ctx, &resp);
  f->ctx.http.max_body = 10000;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_ERR_SYSTEM);
  assert_null(resp.body);
  f->api->http_response_free(&f->ctx, &resp);
}

static void test_http_redirects(void **state) {
  struct fx *f = *state;
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  req.url = url(f, "/redir");
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.status, 302);
  char loc[32];
  assert_int_equal(cr_http_header_value(&resp, "location", loc, sizeof loc), 0);
  assert_string_equal(loc, "/hello");
  f->api->http_response_free(&f->ctx, &resp);
  f->ctx.http.follow_redirects = 1;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  assert_int_equal(resp.status, 200);
  assert_string_equal(resp.body, "hello");
  /* Only the final response's headers are kept. */
  assert_null(strstr(resp.headers, "302"));
  f->api->http_response_free(&f->ctx, &resp);
}

static void test_http_log_line_redacts_url(void **state) {
  struct fx *f = *state;
  const char *hdrs[] = {"Authorization: Bearer " SECRET, NULL};
  struct cr_http_request req;
  struct cr_http_response resp;
  cr_http_request_init(&req);
  char u[256];
  snprintf(u, sizeof u, "%s/hello?api_key=%s&page=2&q=%s",
           cr_fake_http_url(f->srv), "othervalue", SECRET);
  req.url = u;
  req.headers = hdrs;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->log.n, 1);
  assert_int_equal(f->log.level[0], CR_PLUGIN_LOG_DEBUG);
  char want[256];
  snprintf(want, sizeof want,
           "GET %s/hello?api_key=[REDACTED]&page=2&q=[REDACTED] -> 200 (",
           cr_fake_http_url(f->srv));
  assert_int_equal(strncmp(f->log.text[0], want, strlen(want)), 0);
  const char *tail = f->log.text[0] + strlen(f->log.text[0]) - 4;
  assert_string_equal(tail, " ms)");
  assert_false(lines_contain(&f->log, SECRET));
  assert_false(lines_contain(&f->log, "othervalue"));
  /* Nothing is formatted when DEBUG is below the ctx's level. */
  f->ctx.log_min_level = CR_PLUGIN_LOG_INFO;
  assert_int_equal(f->api->http(&f->ctx, &req, &resp), CR_PLUGIN_OK);
  f->api->http_response_free(&f->ctx, &resp);
  assert_int_equal(f->log.n, 1);
}

/* Every injected allocation failure gives a clean error; no leak. */
static void test_http_alloc_failures(void **state) {
  struct fx *f = *state;
  cr_test_alloc_install();
  for (long n = 0;; n++) {
    struct cr_http_request req;
    struct cr_http_response resp;
    cr_http_request_init(&req);
    req.url = url(f, "/hello?token=abc");
    cr_test_alloc_fail_after(n);
    int rc = f->api->http(&f->ctx, &req, &resp);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, CR_PLUGIN_OK);
      assert_string_equal(resp.body, "hello");
      f->api->http_response_free(&f->ctx, &resp);
      break;
    }
    assert_true(rc == CR_PLUGIN_OK || rc == CR_PLUGIN_ERR_SYSTEM);
    if (rc == CR_PLUGIN_ERR_SYSTEM)
      assert_null(resp.body);
    f->api->http_response_free(&f->ctx, &resp);
    assert_true(n < 100);
  }
  assert_false(lines_contain(&f->log, "token=abc"));
}

/* ---- Logs, errors, sinks ----------------------------------------------------
 */

static void test_log_redaction(void **state) {
  struct fx *f = *state;
  f->api->log(&f->ctx, CR_PLUGIN_LOG_INFO,
              "using key " SECRET " now\nFAKE forged line");
  assert_int_equal(f->log.n, 1);
  assert_int_equal(f->log.level[0], CR_PLUGIN_LOG_INFO);
  assert_string_equal(f->log.text[0],
                      "using key [REDACTED] now FAKE forged line");
  /* URL-encoded inside a logged URL. */
  f->api->log(&f->ctx, CR_PLUGIN_LOG_WARN,
              "GET https://x/?k=SG.supersecretkey123");
  assert_false(lines_contain(&f->log, SECRET));
  /* Levels are clamped; below the minimum they are dropped. */
  f->api->log(&f->ctx, 99, "high");
  assert_int_equal(f->log.level[2], CR_PLUGIN_LOG_ERROR);
  f->ctx.log_min_level = CR_PLUGIN_LOG_WARN;
  f->api->log(&f->ctx, CR_PLUGIN_LOG_INFO, "dropped");
  assert_int_equal(f->log.n, 3);
  f->api->log(&f->ctx, CR_PLUGIN_LOG_WARN, NULL);
  assert_int_equal(f->log.n, 3);
  /* A long message through the SDK helper is not cut inside the secret. */
  f->ctx.log_min_level = CR_PLUGIN_LOG_DEBUG;
  char pad[600];
  memset(pad, 'p', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  cr_plugin_logf(f->api, &f->ctx, CR_PLUGIN_LOG_INFO, "%s key=%s!", pad,
                 SECRET);
  assert_int_equal(f->log.n, 4);
  assert_int_equal(strlen(f->log.text[3]), strlen(pad) + 16);
  assert_non_null(strstr(f->log.text[3], "key=[REDACTED]!"));
  /* No sink: dropped quietly. */
  cr_plugin_ctx_set_log(&f->ctx, NULL, NULL);
  f->api->log(&f->ctx, CR_PLUGIN_LOG_ERROR, "nobody hears this");
  assert_int_equal(f->log.n, 4);
  f->api->log(NULL, CR_PLUGIN_LOG_ERROR, "no ctx");
}

static void test_set_error(void **state) {
  struct fx *f = *state;
  f->api->set_error(&f->ctx, CR_PLUGIN_ERR_RATE_LIMITED,
                    "rate limited for key " SECRET, 1500);
  assert_int_equal(f->ctx.last_error.result, CR_PLUGIN_ERR_RATE_LIMITED);
  assert_string_equal(f->ctx.last_error.message,
                      "rate limited for key [REDACTED]");
  assert_int_equal(f->ctx.last_error.retry_after_ms, 1500);
  f->api->set_error(&f->ctx, CR_PLUGIN_ERR_TRANSIENT, NULL, -5);
  assert_int_equal(f->ctx.last_error.result, CR_PLUGIN_ERR_TRANSIENT);
  assert_string_equal(f->ctx.last_error.message, "");
  assert_int_equal(f->ctx.last_error.retry_after_ms, 0);
  assert_int_equal(cr_plugin_errorf(f->api, &f->ctx, CR_PLUGIN_ERR_CONFIG, 0,
                                    "bad %s (%d)", "key", 401),
                   CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(f->ctx.last_error.message, "bad key (401)");
  f->api->set_error(&f->ctx, CR_PLUGIN_OK, "ignored", 7);
  assert_int_equal(f->ctx.last_error.result, 0);
  assert_string_equal(f->ctx.last_error.message, "");
}

static void test_no_sinks(void **state) {
  struct fx *f = *state;
  assert_int_equal(f->api->emit(&f->ctx, "contacts", "{}", 2),
                   CR_PLUGIN_ERR_SYSTEM);
  assert_string_equal(f->ctx.last_error.message,
                      "this context does not take records");
  assert_int_equal(f->api->checkpoint(&f->ctx, "{}"), CR_PLUGIN_ERR_SYSTEM);
  assert_non_null(strstr(f->ctx.last_error.message, "checkpoints"));
  assert_int_equal(f->api->credentials_update(&f->ctx, "{}"),
                   CR_PLUGIN_ERR_SYSTEM);
  assert_non_null(strstr(f->ctx.last_error.message, "credentials"));
  assert_null(f->api->state(&f->ctx));
  f->api->progress(&f->ctx, "contacts", 1, 2);
  assert_false(f->api->cancelled(&f->ctx));
  assert_int_equal(f->api->emit(&f->ctx, NULL, "{}", 2), CR_PLUGIN_ERR_SYSTEM);
  assert_int_equal(f->api->emit(NULL, "s", "{}", 2), CR_PLUGIN_ERR_SYSTEM);
}

struct sink {
  char stream[32];
  char record[64];
  size_t len;
  char checkpoint[64];
  uint64_t done, total;
  int emit_rc;
  int emits;
};

static int s_emit(void *ud, const char *stream, const char *json, size_t len) {
  struct sink *s = ud;
  snprintf(s->stream, sizeof s->stream, "%s", stream);
  snprintf(s->record, sizeof s->record, "%.*s", (int)len, json);
  s->len = len;
  s->emits++;
  return s->emit_rc;
}
static int s_checkpoint(void *ud, const char *state_json) {
  struct sink *s = ud;
  snprintf(s->checkpoint, sizeof s->checkpoint, "%s", state_json);
  return 0;
}
static const char *s_state(void *ud) {
  (void)ud;
  return "{\"cursor\":7}";
}
static void s_progress(void *ud, const char *stream, uint64_t done,
                       uint64_t total) {
  struct sink *s = ud;
  (void)stream;
  s->done = done;
  s->total = total;
}

static void test_sinks(void **state) {
  struct fx *f = *state;
  struct sink s;
  memset(&s, 0, sizeof s);
  struct cr_plugin_sinks table = {.ud = &s,
                                  .emit = s_emit,
                                  .checkpoint = s_checkpoint,
                                  .state = s_state,
                                  .progress = s_progress};
  cr_plugin_ctx_set_sinks(&f->ctx, &table);
  assert_int_equal(f->api->emit(&f->ctx, "contacts", "{\"id\":1}xx", 8), 0);
  assert_string_equal(s.stream, "contacts");
  assert_string_equal(s.record, "{\"id\":1}");
  s.emit_rc = CR_PLUGIN_ERR_CANCELLED;
  assert_int_equal(f->api->emit(&f->ctx, "contacts", "{}", 2),
                   CR_PLUGIN_ERR_CANCELLED);
  assert_int_equal(f->api->checkpoint(&f->ctx, "{\"synced_at\":1}"), 0);
  assert_string_equal(s.checkpoint, "{\"synced_at\":1}");
  assert_string_equal(f->api->state(&f->ctx), "{\"cursor\":7}");
  f->api->progress(&f->ctx, "contacts", 3, 10);
  assert_int_equal(s.done, 3);
  assert_int_equal(s.total, 10);
  cr_plugin_ctx_set_sinks(&f->ctx, NULL);
  assert_int_equal(f->api->emit(&f->ctx, "contacts", "{}", 2),
                   CR_PLUGIN_ERR_SYSTEM);
  assert_int_equal(s.emits, 2);
}

/* ---- plugin_util.h
 * ------------------------------------------------------------ */

static void test_util_json_get_string(void **state) {
  (void)state;
  const char *j = " { \"nested\": {\"name\": \"inner\", \"a\": [1, {\"x\": "
                  "\"}\"}]}, \"name\" : \"caf\\u00e9 \\\"q\\\" \\\\ \\/ "
                  "\\n\\t\", \"emoji\": \"\\ud83d\\ude00\", \"num\": 12, "
                  "\"name\": \"second\", \"k\\u0065y\": \"esc key\" } ";
  char out[64];
  assert_int_equal(cr_json_get_string(j, "name", out, sizeof out), 0);
  assert_string_equal(out, "caf\xc3\xa9 \"q\" \\ / \n\t");
  assert_int_equal(cr_json_get_string(j, "emoji", out, sizeof out), 0);
  assert_string_equal(out, "\xf0\x9f\x98\x80");
  assert_int_equal(cr_json_get_string(j, "key", out, sizeof out), 0);
  assert_string_equal(out, "esc key");
  assert_int_equal(cr_json_get_string(j, "num", out, sizeof out), -1);
  assert_int_equal(cr_json_get_string(j, "nested", out, sizeof out), -1);
  assert_int_equal(cr_json_get_string(j, "x", out, sizeof out), -1);
  assert_int_equal(cr_json_get_string(j, "missing", out, sizeof out), -1);
  assert_string_equal(out, "");
  char tiny[4];
  assert_int_equal(cr_json_get_string(j, "name", tiny, sizeof tiny), -1);
  const char *bad[] = {"",
                       "[]",
                       "{",
                       "{\"a\":}",
                       "{\"a\" \"b\"}",
                       "{\"a\":\"x\\q\"}",
                       "{\"a\":\"\\u0000\"}",
                       "{\"a\":\"\\ud83d\"}",
                       "{\"a\":\"\\ude00x\"}",
                       "{\"b\":[1,2}, \"a\":\"x\"}",
                       "{\"a\":\"x\ny\"}",
                       "{\"b\":tru, \"a\":\"x\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(cr_json_get_string(bad[i], "a", out, sizeof out), -1);
  assert_int_equal(cr_json_get_string(NULL, "a", out, sizeof out), -1);
  /* Length-bounded variant stops at len. */
  const char *two = "{\"a\":\"1\"}{\"a\":\"2\"}";
  assert_int_equal(cr_json_get_string_n(two + 9, 9, "a", out, sizeof out), 0);
  assert_string_equal(out, "2");
  assert_int_equal(cr_json_get_string_n(two, 7, "a", out, sizeof out), -1);
}

static void test_util_json_ints_and_raw(void **state) {
  (void)state;
  const char *j = "{\"a\":42,\"b\":-7,\"c\":1.5,\"d\":\"9\",\"e\":"
                  "9223372036854775807,\"f\":9223372036854775808,"
                  "\"g\":-9223372036854775808,\"m\":{\"z\":[1,2]}}";
  long long v = 0;
  assert_int_equal(cr_json_get_int(j, "a", &v), 0);
  assert_int_equal(v, 42);
  assert_int_equal(cr_json_get_int(j, "b", &v), 0);
  assert_int_equal(v, -7);
  assert_int_equal(cr_json_get_int(j, "e", &v), 0);
  assert_true(v == 9223372036854775807LL);
  assert_int_equal(cr_json_get_int(j, "g", &v), 0);
  assert_true(v == -9223372036854775807LL - 1);
  assert_int_equal(cr_json_get_int(j, "c", &v), -1);
  assert_int_equal(cr_json_get_int(j, "d", &v), -1);
  assert_int_equal(cr_json_get_int(j, "f", &v), -1);
  assert_int_equal(cr_json_get_int(j, "zz", &v), -1);
  const char *raw;
  size_t n;
  assert_int_equal(cr_json_get_raw(j, "m", &raw, &n), 0);
  assert_int_equal(n, strlen("{\"z\":[1,2]}"));
  assert_memory_equal(raw, "{\"z\":[1,2]}", n);
}

/* The byte-at-a-time container skip cr__json_skip_value had before its
 * 64-byte blocks: the reference the blocks must agree with. *first (when
 * not NULL) gets the end of the first nested value closed, or NULL. */
static const char *ref_skip_first(const char *p, const char *end,
                                  const char **first) {
  char closers[CR_JSON_MAX_DEPTH];
  int depth = 0;
  if (first != NULL)
    *first = NULL;
  while (p < end) {
    char c = *p;
    if (c == '"') {
      p = cr__json_skip_string(p, end);
      if (p == NULL)
        return NULL;
      continue;
    }
    if (c == '{' || c == '[') {
      if (depth == CR_JSON_MAX_DEPTH)
        return NULL;
      closers[depth++] = c == '{' ? '}' : ']';
    } else if (c == '}' || c == ']') {
      if (depth == 0 || closers[depth - 1] != c)
        return NULL;
      if (--depth == 0)
        return p + 1;
      if (depth == 1 && first != NULL && *first == NULL)
        *first = p + 1;
    }
    p++;
  }
  return NULL;
}

/* ref_skip_first without the first nested value. */
static const char *ref_skip_container(const char *p, const char *end) {
  return ref_skip_first(p, end, NULL);
}

/* cr_json_array_next_first on the one-element array "[text]" (text: len
 * bytes of buf at offset 1, buf big enough for the brackets) agrees with
 * the reference: the element's end, and its first nested value's end. */
static void check_next_first(int round, char *buf, size_t len) {
  const char *first_want,
      *want = ref_skip_first(buf + 1, buf + 1 + len, &first_want);
  buf[0] = '[';
  buf[len + 1] = ']';
  struct cr_json_array_iter it;
  const char *e, *first;
  size_t n;
  assert_int_equal(cr_json_array_begin_n(&it, buf, len + 2, NULL), 0);
  int r = cr_json_array_next_first(&it, &e, &n, &first);
  if (want == NULL) {
    /* malformed, or ended by the array's own bracket ("[{]" is not) */
    if (r == 1 && e + n != buf + len + 2)
      fail_msg("round %d: an element where the reference found none", round);
    return;
  }
  if (r != 1 || e != buf + 1 || e + n != want)
    fail_msg("round %d: element end %td, reference %td", round,
             r == 1 ? e + n - buf : -1, want - buf);
  if (first != first_want)
    fail_msg("round %d: first nested end %td, reference %td", round,
             first ? first - buf : -1, first_want ? first_want - buf : -1);
}

/* cr__json_skip_container with its blocks classified by one variant: 0 the
 * byte loop only, 1 SSE2, 2 AVX2, 3 AVX-512BW with the carry-less multiply
 * (as chosen at run time by the CPU; here each is tried where the CPU has
 * it). */
static const char *skip_variant(int variant, const char *p, const char *end) {
  struct cr__json_skip k;
  k.depth = k.in_str = k.esc = k.stop = 0;
  int r = 0;
#ifdef CR__JSON_SIMD
  if (variant == 1)
    r = cr__json_skip_blocks(&k, &p, end, cr__json_block_at,
                             cr__json_prefix_xor);
#endif
#ifdef CR__JSON_AVX2
  if (variant == 2)
    r = cr__json_skip_blocks_avx2(&k, &p, end);
  if (variant == 3)
    r = cr__json_skip_blocks_avx512(&k, &p, end);
#endif
  return cr__json_skip_rest(&k, p, end, r);
}

/* The variants this build and CPU can run. */
static int skip_variants(void) {
#ifdef CR__JSON_AVX2
  if (cr__json_avx2() && cr__json_avx512())
    return 4;
  if (cr__json_avx2())
    return 3;
#endif
#ifdef CR__JSON_SIMD
  return 2;
#else
  return 1;
#endif
}

/* Random texts of JSON's structural bytes, strings, escapes, control and
 * non-ASCII bytes, 0 to 400 bytes (across several 64-byte blocks, with a
 * carry of strings and escapes between them), and deep nesting: the skip
 * ends where the reference does, or fails where it does. */
static void test_util_json_skip_blocks(void **state) {
  (void)state;
  /* backslashes in most 64-byte blocks (byte by byte), in none (the
   * blocks' own path), and in some (both, a string or an escape carried
   * from one to the other) */
  static const char *const alphabets[3] = {
      "{}[]\"\"\"\\\\aaaaaaaa ,:\n\x01\xc3\xa9",
      "{}[]\"\"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ,:\n\x01\xc3\xa9",
      "{}[]\"\"\"\\aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ,:\n\xc3\xa9"};
  uint64_t seed = 0x9e3779b97f4a7c15u;
  char buf[448], wrapped[448];
  size_t ended = 0, nested = 0;
  for (int round = 0; round < 300000; round++) {
    seed = seed * 6364136223846793005u + 1442695040888963407u;
    size_t len = 1 + (size_t)(seed >> 33) % 400;
    const char *alphabet = alphabets[round % 3];
    size_t na = strlen(alphabet);
    buf[0] = (seed >> 20) & 1 ? '{' : '[';
    for (size_t i = 1; i < len; i++) {
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      buf[i] = alphabet[(seed >> 33) % na];
    }
    const char *want = ref_skip_container(buf, buf + len);
    const char *got = cr__json_skip_value(buf, buf + len);
    if (got != want)
      fail_msg("round %d (%zu bytes): end %td, reference %td", round, len,
               got ? got - buf : -1, want ? want - buf : -1);
    for (int v = 0; v < skip_variants(); v++)
      if ((got = skip_variant(v, buf, buf + len)) != want)
        fail_msg("round %d, variant %d: end %td, reference %td", round, v,
                 got ? got - buf : -1, want ? want - buf : -1);
    ended += want != NULL;
    memcpy(wrapped + 1, buf, len);
    check_next_first(round, wrapped, len);
    const char *first = NULL;
    nested += ref_skip_first(buf, buf + len, &first) != NULL && first != NULL;
  }
  assert_true(ended > 1000); /* not only malformed texts */
  assert_true(nested > 100); /* some with a nested value */
  /* A record of a page, at every offset of a block; nesting past the
   * limit. */
  const char *rec = "{\"attributes\":{\"type\":\"Account\",\"url\":\"/x/001\"},"
                    "\"Id\":\"001\",\"Name\":\"A \\\"b\\\" [c]\",\"N\":[1,{}]}";
  size_t rl = strlen(rec);
  for (size_t off = 0; off < 64; off++) {
    memset(buf, ' ', sizeof buf);
    memcpy(buf + off, rec, rl);
    assert_ptr_equal(cr__json_skip_value(buf, buf + sizeof buf),
                     buf + off + rl);
  }
  memset(buf, '[', sizeof buf);
  assert_null(cr__json_skip_value(buf, buf + sizeof buf));
  assert_null(ref_skip_container(buf, buf + sizeof buf));
}

static void test_util_json_arrays(void **state) {
  (void)state;
  const char *j = "{\"meta\":{\"result\":[9]},\"result\":[ {\"id\":\"a\","
                  "\"tags\":[\"x]\"]} , \"str\", 3.5e2, [1,[2]], null ],"
                  "\"empty\":[]}";
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  assert_int_equal(cr_json_array_begin(&it, j, "result"), 0);
  const char *want[] = {"{\"id\":\"a\",\"tags\":[\"x]\"]}", "\"str\"", "3.5e2",
                        "[1,[2]]", "null"};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(cr_json_array_next(&it, &e, &n), 1);
    assert_int_equal(n, strlen(want[i]));
    assert_memory_equal(e, want[i], n);
    if (i == 1) {
      char s[8];
      assert_int_equal(cr_json_string_decode(e, n, s, sizeof s), 0);
      assert_string_equal(s, "str");
    }
  }
  assert_int_equal(cr_json_array_next(&it, &e, &n), 0);
  assert_int_equal(cr_json_array_next(&it, &e, &n), 0);
  assert_int_equal(cr_json_array_begin(&it, j, "empty"), 0);
  assert_int_equal(cr_json_array_next(&it, &e, &n), 0);
  assert_int_equal(cr_json_array_begin(&it, j, "meta"), -1);
  assert_int_equal(cr_json_array_begin(&it, j, "nope"), -1);
  assert_int_equal(cr_json_array_next(&it, &e, &n), -1);
  /* Top-level array, and malformed ones. */
  assert_int_equal(cr_json_array_begin(&it, " [1, 2]", NULL), 0);
  assert_int_equal(cr_json_array_next(&it, &e, &n), 1);
  assert_int_equal(cr_json_array_next(&it, &e, &n), 1);
  assert_memory_equal(e, "2", 1);
  assert_int_equal(cr_json_array_next(&it, &e, &n), 0);
  const char *bad[] = {"[1,]", "[1 2]", "[1,", "[{]", "[\"x]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(cr_json_array_begin(&it, bad[i], NULL), 0);
    int rc;
    while ((rc = cr_json_array_next(&it, &e, &n)) == 1)
      ;
    assert_int_equal(rc, -1);
  }
  /* Nesting deeper than CR_JSON_MAX_DEPTH is refused, not overflowed. */
  char deep[2 * CR_JSON_MAX_DEPTH + 8];
  size_t k = 0;
  deep[k++] = '[';
  for (int i = 0; i < CR_JSON_MAX_DEPTH + 1; i++)
    deep[k++] = '[';
  for (int i = 0; i < CR_JSON_MAX_DEPTH + 1; i++)
    deep[k++] = ']';
  deep[k++] = ']';
  deep[k] = '\0';
  assert_int_equal(cr_json_array_begin(&it, deep, NULL), 0);
  assert_int_equal(cr_json_array_next(&it, &e, &n), -1);
  /* cr_json_array_next_first: the same elements, and where the first
   * nested value closes. */
  const char *page =
      "[{\"attributes\":{\"url\":\"/a}\\\"{\"},\"Id\":\"1\",\"t\":[2]},"
      " {\"Id\":\"2\"}, 7, [[1],{}], {\"a\":[{}]}, {]";
  const char *firsts[] = {"{\"url\":\"/a}\\\"{\"}", NULL, NULL, "[1]", "[{}]"};
  const char *f;
  assert_int_equal(cr_json_array_begin(&it, page, NULL), 0);
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(cr_json_array_next_first(&it, &e, &n, &f), 1);
    const char *want_end = e + n;
    if (firsts[i] == NULL) {
      assert_null(f);
      continue;
    }
    const char *at = strstr(e, firsts[i]);
    assert_non_null(at);
    assert_ptr_equal(f, at + strlen(firsts[i]));
    assert_true(f <= want_end);
  }
  assert_int_equal(cr_json_array_next_first(&it, &e, &n, &f), -1);
  assert_null(e);
  assert_null(f);
}

/* The string scanner takes plain bytes 8 at a time: a '"', a '\\' or a
 * control character at every offset of a long string is still seen. */
static void test_util_json_string_scan(void **state) {
  (void)state;
  char s[64];
  for (size_t at = 1; at < 40; at++) {
    memset(s, 'a', sizeof s);
    s[0] = '"';
    s[at] = '"';
    assert_ptr_equal(cr__json_skip_string(s, s + sizeof s), s + at + 1);
    s[at] = '\\'; /* an escaped quote does not end it */
    s[at + 1] = '"';
    s[at + 4] = '"';
    assert_ptr_equal(cr__json_skip_string(s, s + sizeof s), s + at + 5);
    s[at] = '\x1f'; /* a raw control character is malformed */
    assert_null(cr__json_skip_string(s, s + sizeof s));
    s[at] = (char)0xc3; /* UTF-8 bytes are plain */
    s[at + 1] = (char)0xa9;
    assert_ptr_equal(cr__json_skip_string(s, s + sizeof s), s + at + 5);
  }
  memset(s, 'a', sizeof s);
  s[0] = '"';
  assert_null(cr__json_skip_string(s, s + sizeof s)); /* unterminated */
}

static void test_util_json_escape(void **state) {
  (void)state;
  char out[64], back[64];
  const char *in = "a\"b\\c\n\x01 caf\xc3\xa9";
  int n = cr_json_escape(in, out, sizeof out);
  assert_int_equal(n, (int)strlen(out));
  assert_string_equal(out, "a\\\"b\\\\c\\n\\u0001 caf\xc3\xa9");
  char lit[80];
  snprintf(lit, sizeof lit, "\"%s\"", out);
  assert_int_equal(cr_json_string_decode(lit, strlen(lit), back, sizeof back),
                   0);
  assert_string_equal(back, in);
  char tiny[5];
  assert_int_equal(cr_json_escape("abcd", tiny, sizeof tiny), 4);
  assert_int_equal(cr_json_escape("abcde", tiny, sizeof tiny), -1);
  assert_string_equal(tiny, "");
  assert_int_equal(cr_json_escape("\"", tiny, 2), -1);
  assert_int_equal(cr_json_escape(NULL, tiny, sizeof tiny), -1);
}

static void test_util_headers(void **state) {
  (void)state;
  char headers[] = "HTTP/1.1 429 Too Many Requests\r\n"
                   "X-RateLimit-Reset: 1392815263\r\n"
                   "retry-after:\t 30 \r\n"
                   "X-Long: 0123456789\r\n\r\n";
  struct cr_http_response resp;
  memset(&resp, 0, sizeof resp);
  resp.headers = headers;
  char v[8];
  assert_int_equal(cr_http_header_value(&resp, "Retry-After", v, sizeof v), 0);
  assert_string_equal(v, "30");
  assert_int_equal(cr_http_retry_after_ms(&resp), 30000);
  assert_int_equal(cr_http_header_value(&resp, "x-long", v, sizeof v), -2);
  assert_string_equal(v, "0123456");
  assert_int_equal(cr_http_header_value(&resp, "X-Missing", v, sizeof v), -1);
  assert_string_equal(v, "");
  assert_int_equal(cr_http_header_value(&resp, "X-RateLimit", v, sizeof v), -1);
  char h2[] = "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n";
  resp.headers = h2;
  assert_int_equal(cr_http_retry_after_ms(&resp), -1);
  resp.headers = NULL;
  assert_int_equal(cr_http_retry_after_ms(&resp), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_table),
      cmocka_unit_test_setup_teardown(test_http_get, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_methods_and_bodies, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_status_counting, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_default_timeout_from_ctx, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_connection_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_bad_requests, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_background, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_background_cancel_and_abandon,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_max_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_large_and_compressed, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_redirects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http_log_line_redacts_url, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_http_alloc_failures, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_log_redaction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_set_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_sinks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sinks, setup, teardown),
      cmocka_unit_test(test_util_json_get_string),
      cmocka_unit_test(test_util_json_ints_and_raw),
      cmocka_unit_test(test_util_json_arrays),
      cmocka_unit_test(test_util_json_skip_blocks),
      cmocka_unit_test(test_util_json_string_scan),
      cmocka_unit_test(test_util_json_escape),
      cmocka_unit_test(test_util_headers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
