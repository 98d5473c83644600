/* test_http_async.c: asynchronous POSTs (core/util/http_async) on a real libuv
 * loop against the loopback fake server: bulk delivery with bodies and
 * headers, statuses, Retry-After, timeouts, refused connections, a receiver
 * restart, connection reuse, cancel on close, bad arguments, allocation
 * failures, reuse of pooled requests (no stale headers, body or timeout;
 * more in flight than the pool; allocation failures while a pooled request
 * grows), and a throughput print. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "util/error.h"
#include "fake_http.h"
#include "util/http_async.h"

/* ---- Fake receiver -------------------------------------------------------
 * Paths: /ok (200, body "ok:" + request body), /status/N, /retry/N (429 with
 * Retry-After: N), /retrydate (503, Retry-After 120 s from now as an
 * HTTP-date), /slow (answers after 1500 ms), /big (10000 bytes). */

struct srv {
  char date_hdr[128];
};

static void handler(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  struct srv *sv = ud;
  if (strcmp(req->path, "/ok") == 0) {
    cr_fake_http_set_body(resp, "ok:%s", req->body);
  } else if (strncmp(req->path, "/status/", 8) == 0) {
    resp->status = atoi(req->path + 8);
    cr_fake_http_set_body(resp, "status %d", resp->status);
  } else if (strncmp(req->path, "/retry/", 7) == 0) {
    resp->status = 429;
    snprintf(sv->date_hdr, sizeof sv->date_hdr, "Retry-After: %s",
             req->path + 7);
    resp->headers[0] = sv->date_hdr;
  } else if (strcmp(req->path, "/retrydate") == 0) {
    time_t t = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(sv->date_hdr, sizeof sv->date_hdr,
             "Retry-After: %a, %d %b %Y %H:%M:%S GMT", &tm);
    resp->status = 503;
    resp->headers[0] = sv->date_hdr;
  } else if (strcmp(req->path, "/redirect") == 0) {
    resp->status = 302;
    resp->headers[0] = "Location: /ok";
  } else if (strcmp(req->path, "/slow") == 0) {
    resp->delay_ms = 1500;
  } else if (strcmp(req->path, "/big") == 0) {
    static char big[10001];
    memset(big, 'b', sizeof big - 1);
    resp->body = big;
  } else {
    resp->status = 404;
  }
}

/* ---- Driver: keeps `window` requests in flight until `total` are done ---- */

struct slot {
  struct drv *d;
  int calls;
  long status;
  int64_t retry_after_ms;
  int64_t latency_ms;
  size_t body_len;
  char body[64];
  char error[256];
};

struct drv {
  uv_loop_t loop;
  cr_http_async *h;
  char url[256];
  size_t total, started, completed, window;
  long timeout_ms;
  int in_post;
  int close_on_first; /* close h from the first done callback */
  /* Receiver restart: stopped after stop_at completions, started again on
   * the same port after restart_at; started counts at those moments. */
  cr_fake_http *srv;
  struct srv *sv;
  uint16_t port;
  size_t stop_at, restart_at, started_at_stop, started_at_restart;
  struct slot *slots;
};

static void on_done(void *ud, const struct cr_http_result *r);

static int post_one(struct drv *d, size_t i) {
  char body[64], seq[64], sig[64];
  snprintf(body, sizeof body, "payload-%zu", i);
  snprintf(seq, sizeof seq, "X-Seq: %zu", i);
  snprintf(sig, sizeof sig, "X-Signature: sig-%zu", i);
  const char *hdrs[] = {seq, sig, "Content-Type: application/json"};
  d->slots[i].d = d;
  d->in_post = 1;
  int rc = cr_http_async_post(d->h, d->url, hdrs, 3, body, strlen(body),
                              d->timeout_ms, on_done, &d->slots[i]);
  d->in_post = 0;
  return rc;
}

static void start_more(struct drv *d) {
  while (d->started < d->total && d->started - d->completed < d->window) {
    assert_int_equal(post_one(d, d->started), 0);
    d->started++;
  }
}

static void on_done(void *ud, const struct cr_http_result *r) {
  struct slot *s = ud;
  struct drv *d = s->d;
  assert_false(d->in_post); /* never from inside cr_http_async_post */
  s->calls++;
  s->status = r->status;
  s->retry_after_ms = r->retry_after_ms;
  s->latency_ms = r->latency_ms;
  s->body_len = r->body_len;
  assert_non_null(r->body);
  snprintf(s->body, sizeof s->body, "%.*s", (int)r->body_len, r->body);
  snprintf(s->error, sizeof s->error, "%s", r->error);
  assert_true(r->status == 0 ? r->error[0] != '\0' : r->error[0] == '\0');
  d->completed++;
  if (d->stop_at > 0 && d->completed == d->stop_at) {
    cr_fake_http_stop(d->srv);
    d->srv = NULL;
    d->started_at_stop = d->started;
  }
  if (d->restart_at > 0 && d->completed == d->restart_at) {
    assert_int_equal(cr_fake_http_start_port(handler, d->sv, d->port, &d->srv),
                     0);
    d->started_at_restart = d->started;
  }
  if (d->close_on_first) {
    d->close_on_first = 0;
    cr_http_async_close(d->h);
    return;
  }
  start_more(d);
}

static void drv_init(struct drv *d, size_t total, size_t window,
                     const struct cr_http_async_opts *o) {
  memset(d, 0, sizeof *d);
  assert_int_equal(uv_loop_init(&d->loop), 0);
  assert_int_equal(cr_http_async_new(&d->loop, o, &d->h), 0);
  d->slots = calloc(total > 0 ? total : 1, sizeof *d->slots);
  assert_non_null(d->slots);
  d->total = total;
  d->window = window;
}

/* Posts slots [from, to) (to <= total) and runs the loop until they are
 * done. */
static void drv_run(struct drv *d, const char *url, size_t to) {
  snprintf(d->url, sizeof d->url, "%s", url);
  size_t saved = d->total;
  d->total = to;
  start_more(d);
  while (d->completed < to && cr_http_async_in_flight(d->h) > 0)
    uv_run(&d->loop, UV_RUN_ONCE);
  d->total = saved;
  assert_int_equal(d->completed, to);
}

static void drv_finish(struct drv *d) {
  cr_http_async_close(d->h);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  cr_http_async_free(d->h);
  assert_int_equal(uv_loop_close(&d->loop), 0);
  for (size_t i = 0; i < d->started; i++)
    assert_int_equal(d->slots[i].calls, 1);
  free(d->slots);
}

static cr_fake_http *start_srv(struct srv *sv) {
  cr_fake_http *s = NULL;
  memset(sv, 0, sizeof *sv);
  assert_int_equal(cr_fake_http_start(handler, sv, &s), 0);
  return s;
}

static char *url_of(char *buf, size_t n, cr_fake_http *s, const char *path) {
  snprintf(buf, n, "%s%s", cr_fake_http_url(s), path);
  return buf;
}

/* ---- Tests ---------------------------------------------------------------
 */

static void test_thousand_posts(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 1000, 16, NULL);
  drv_run(&d, url_of(url, sizeof url, s, "/ok"), 1000);
  for (size_t i = 0; i < 1000; i++) {
    char want[64];
    snprintf(want, sizeof want, "ok:payload-%zu", i);
    assert_int_equal(d.slots[i].status, 200);
    assert_string_equal(d.slots[i].body, want);
    assert_int_equal(d.slots[i].retry_after_ms, -1);
    assert_true(d.slots[i].latency_ms >= 0);
  }
  assert_int_equal(cr_fake_http_count(s), 1000);
  char *seen = calloc(1000, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < 1000; i++) {
    const struct cr_fake_http_request *rq = cr_fake_http_request_at(s, i);
    assert_string_equal(rq->method, "POST");
    const char *seq = cr_fake_http_header(rq, "X-Seq");
    assert_non_null(seq);
    size_t n = (size_t)strtoul(seq, NULL, 10);
    assert_true(n < 1000);
    assert_false(seen[n]);
    seen[n] = 1;
    char want[64];
    snprintf(want, sizeof want, "payload-%zu", n);
    assert_string_equal(rq->body, want);
    snprintf(want, sizeof want, "sig-%zu", n);
    assert_string_equal(cr_fake_http_header(rq, "X-Signature"), want);
    assert_string_equal(cr_fake_http_header(rq, "Content-Type"),
                        "application/json");
    assert_null(cr_fake_http_header(rq, "Expect"));
  }
  free(seen);
  /* Keep-alive: never more connections than the pool allows. */
  size_t conns = cr_fake_http_connections(s);
  assert_true(conns >= 1 && conns <= 16);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_connection_reuse(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 50, 1, NULL);
  drv_run(&d, url_of(url, sizeof url, s, "/ok"), 50);
  for (size_t i = 0; i < 50; i++)
    assert_int_equal(d.slots[i].status, 200);
  assert_int_equal(cr_fake_http_connections(s), 1);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_statuses(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  static const long codes[] = {200, 404, 410, 500};
  struct drv d;
  drv_init(&d, 4, 1, NULL);
  for (size_t i = 0; i < 4; i++) {
    char path[32], url[256], want[32];
    snprintf(path, sizeof path, "/status/%ld", codes[i]);
    drv_run(&d, url_of(url, sizeof url, s, path), i + 1);
    assert_int_equal(d.slots[i].status, codes[i]);
    assert_string_equal(d.slots[i].error, "");
    snprintf(want, sizeof want, "status %ld", codes[i]);
    assert_string_equal(d.slots[i].body, want);
  }
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_big_body_truncated(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 1, 1, NULL);
  drv_run(&d, url_of(url, sizeof url, s, "/big"), 1);
  assert_int_equal(d.slots[0].status, 200);
  assert_int_equal(d.slots[0].body_len, 4096);
  assert_int_equal(strspn(d.slots[0].body, "b"), sizeof d.slots[0].body - 1);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_retry_after(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 3, 1, NULL);
  drv_run(&d, url_of(url, sizeof url, s, "/retry/3"), 1);
  assert_int_equal(d.slots[0].status, 429);
  assert_int_equal(d.slots[0].retry_after_ms, 3000);
  drv_run(&d, url_of(url, sizeof url, s, "/retrydate"), 2);
  assert_int_equal(d.slots[1].status, 503);
  assert_true(d.slots[1].retry_after_ms > 110000);
  assert_true(d.slots[1].retry_after_ms <= 121000);
  drv_run(&d, url_of(url, sizeof url, s, "/status/503"), 3);
  assert_int_equal(d.slots[2].status, 503);
  assert_int_equal(d.slots[2].retry_after_ms, -1);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_timeout(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 1, 1, NULL);
  d.timeout_ms = 200;
  drv_run(&d, url_of(url, sizeof url, s, "/slow"), 1);
  assert_int_equal(d.slots[0].status, 0);
  assert_non_null(strstr(d.slots[0].error, "timed out"));
  assert_true(d.slots[0].latency_ms >= 190);
  assert_true(d.slots[0].latency_ms < 1400);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_default_timeout(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  struct cr_http_async_opts o = {0, 0, 150};
  drv_init(&d, 1, 1, &o);
  drv_run(&d, url_of(url, sizeof url, s, "/slow"), 1);
  assert_int_equal(d.slots[0].status, 0);
  assert_non_null(strstr(d.slots[0].error, "timed out"));
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_refused(void **state) {
  (void)state;
  char url[128];
  assert_int_equal(cr_fake_http_dead_url(url, sizeof url), 0);
  strcat(url, "/ok");
  struct drv d;
  drv_init(&d, 4, 4, NULL);
  drv_run(&d, url, 4);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(d.slots[i].status, 0);
    assert_true(d.slots[i].error[0] != '\0');
    assert_int_equal(d.slots[i].body_len, 0);
  }
  drv_finish(&d);
}

static void test_restart(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  uint16_t port = cr_fake_http_port(s);
  char url[256];
  url_of(url, sizeof url, s, "/ok");
  struct drv d;
  drv_init(&d, 60, 8, NULL);
  drv_run(&d, url, 20);
  cr_fake_http_stop(s);
  drv_run(&d, url, 40);
  assert_int_equal(cr_fake_http_start_port(handler, &sv, port, &s), 0);
  drv_run(&d, url, 60);
  for (size_t i = 0; i < 60; i++) {
    if (i >= 20 && i < 40) {
      assert_int_equal(d.slots[i].status, 0);
      assert_true(d.slots[i].error[0] != '\0');
    } else {
      assert_int_equal(d.slots[i].status, 200);
    }
  }
  assert_int_equal(cr_fake_http_count(s), 20);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_restart_midstream(void **state) {
  (void)state;
  struct srv sv;
  struct drv d;
  drv_init(&d, 120, 8, NULL);
  d.sv = &sv;
  d.srv = start_srv(&sv);
  d.port = cr_fake_http_port(d.srv);
  d.stop_at = 30;
  d.restart_at = 70;
  char url[256];
  drv_run(&d, url_of(url, sizeof url, d.srv, "/ok"), 120);
  assert_true(d.started_at_stop >= 30 && d.started_at_stop < 70);
  assert_true(d.started_at_restart > d.started_at_stop);
  size_t ok_before = 0;
  for (size_t i = 0; i < d.started_at_stop; i++)
    ok_before += d.slots[i].status == 200;
  assert_true(ok_before >= 30); /* in flight at the stop: either outcome */
  for (size_t i = d.started_at_stop; i < d.started_at_restart; i++) {
    assert_int_equal(d.slots[i].status, 0);
    assert_true(d.slots[i].error[0] != '\0');
  }
  for (size_t i = d.started_at_restart; i < 120; i++)
    assert_int_equal(d.slots[i].status, 200);
  assert_int_equal(cr_fake_http_count(d.srv), 120 - d.started_at_restart);
  drv_finish(&d);
  cr_fake_http_stop(d.srv);
}

static void test_no_redirects(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 1, 1, NULL);
  drv_run(&d, url_of(url, sizeof url, s, "/redirect"), 1);
  assert_int_equal(d.slots[0].status, 302);
  assert_int_equal(cr_fake_http_count(s), 1);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_close_cancels(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 10, 10, NULL);
  url_of(d.url, sizeof d.url, s, "/slow");
  start_more(&d);
  assert_int_equal(cr_http_async_in_flight(d.h), 10);
  /* Let the requests reach the wire. */
  uint64_t until = uv_hrtime() + 200000000u;
  while (uv_hrtime() < until)
    uv_run(&d.loop, UV_RUN_NOWAIT);
  assert_int_equal(d.completed, 0);
  cr_http_async_close(d.h);
  assert_int_equal(cr_http_async_in_flight(d.h), 0);
  assert_int_equal(d.completed, 10);
  for (size_t i = 0; i < 10; i++) {
    assert_int_equal(d.slots[i].calls, 1);
    assert_int_equal(d.slots[i].status, 0);
    assert_string_equal(d.slots[i].error, "cancelled");
  }
  assert_int_equal(cr_http_async_post(d.h, url_of(url, sizeof url, s, "/ok"),
                                      NULL, 0, "x", 1, 0, on_done, &d.slots[0]),
                   CR_EINVAL);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void test_close_from_callback(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  struct drv d;
  drv_init(&d, 8, 8, NULL);
  url_of(d.url, sizeof d.url, s, "/status/200");
  d.close_on_first = 1;
  start_more(&d);
  while (d.completed < 8)
    uv_run(&d.loop, UV_RUN_ONCE);
  size_t cancelled = 0;
  for (size_t i = 0; i < 8; i++)
    cancelled += strcmp(d.slots[i].error, "cancelled") == 0;
  assert_int_equal(cancelled, 7);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

static void nop_done(void *ud, const struct cr_http_result *r) {
  (void)r;
  ++*(int *)ud;
}

static void test_bad_args(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  cr_http_async *h = NULL;
  assert_int_equal(cr_http_async_new(NULL, NULL, &h), CR_EINVAL);
  assert_int_equal(cr_http_async_new(&loop, NULL, NULL), CR_EINVAL);
  struct cr_http_async_opts neg = {-1, 0, 0};
  assert_int_equal(cr_http_async_new(&loop, &neg, &h), CR_EINVAL);
  assert_int_equal(cr_http_async_new(&loop, NULL, &h), 0);
  int calls = 0;
  const char *inject[] = {"X-A: 1\r\nX-B: 2"};
  const char *noname[] = {"novalue"};
  assert_int_equal(
      cr_http_async_post(h, NULL, NULL, 0, NULL, 0, 0, nop_done, &calls),
      CR_EINVAL);
  assert_int_equal(cr_http_async_post(h, "http://127.0.0.1:1/", NULL, 0, NULL,
                                      0, 0, NULL, &calls),
                   CR_EINVAL);
  assert_int_equal(cr_http_async_post(h, "http://127.0.0.1:1/", inject, 1, "",
                                      0, 0, nop_done, &calls),
                   CR_EINVAL);
  assert_int_equal(cr_http_async_post(h, "http://127.0.0.1:1/", noname, 1, "",
                                      0, 0, nop_done, &calls),
                   CR_EINVAL);
  assert_int_equal(cr_http_async_post(h, "http://127.0.0.1:1/", NULL, 0, NULL,
                                      5, 0, nop_done, &calls),
                   CR_EINVAL);
  assert_int_equal(cr_http_async_in_flight(h), 0);
  /* Other schemes are accepted but fail without a response. */
  assert_int_equal(cr_http_async_post(h, "file:///etc/passwd", NULL, 0, NULL, 0,
                                      0, nop_done, &calls),
                   0);
  assert_int_equal(calls, 0);
  while (calls == 0)
    uv_run(&loop, UV_RUN_ONCE);
  assert_int_equal(calls, 1);
  assert_int_equal(cr_http_async_in_flight(h), 0);
  cr_http_async_free(h); /* closes itself; memory goes in the close cb */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

struct outcome {
  int calls;
  long status;
  char error[256];
};

static void outcome_done(void *ud, const struct cr_http_result *r) {
  struct outcome *o = ud;
  o->calls++;
  o->status = r->status;
  snprintf(o->error, sizeof o->error, "%s", r->error);
}

static void test_alloc_failures(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  url_of(url, sizeof url, s, "/ok");
  cr_test_alloc_install();
  int clean = 0, sock_oom = 0;
  for (long n = 0; !clean && n < 100; n++) {
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    cr_test_alloc_fail_after(n);
    cr_http_async *h = NULL;
    struct outcome o = {0, -1, ""};
    int rc = cr_http_async_new(&loop, NULL, &h);
    if (rc == 0) {
      rc = cr_http_async_post(h, url, NULL, 0, "{}", 2, 0, outcome_done, &o);
      if (rc == 0)
        while (o.calls == 0)
          uv_run(&loop, UV_RUN_ONCE);
    }
    assert_true(rc == 0 || rc == CR_ENOMEM);
    assert_int_equal(o.calls, rc == 0 ? 1 : 0);
    clean = !cr_test_alloc_failed();
    if (clean)
      assert_int_equal(o.status, 200);
    if (rc == 0 && o.status == 0) {
      /* the uv_poll context of the socket could not be allocated */
      assert_string_equal(o.error, cr_strerror(CR_ENOMEM));
      sock_oom = 1;
    }
    cr_test_alloc_fail_after(-1);
    cr_http_async_close(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_http_async_free(h);
    assert_int_equal(uv_loop_close(&loop), 0);
  }
  assert_true(sock_oom);
  assert_true(clean);
  cr_fake_http_stop(s);
}

/* ---- Reused requests (pooled easy handles and buffers) ------------------ */

/* Posts once on h and runs loop until done; returns the post's rc. */
/* A loop and a client on it (o may be NULL). */
static cr_http_async *client_open(uv_loop_t *loop,
                                  const struct cr_http_async_opts *o) {
  assert_int_equal(uv_loop_init(loop), 0);
  cr_http_async *h = NULL;
  assert_int_equal(cr_http_async_new(loop, o, &h), 0);
  return h;
}

/* Closes h, lets the loop finish, frees both and stops the server s. */
static void client_close(uv_loop_t *loop, cr_http_async *h, cr_fake_http *s) {
  cr_http_async_close(h);
  uv_run(loop, UV_RUN_DEFAULT);
  cr_http_async_free(h);
  assert_int_equal(uv_loop_close(loop), 0);
  cr_fake_http_stop(s);
}

static int post_wait(uv_loop_t *loop, cr_http_async *h, const char *url,
                     const char *const *hdrs, size_t n, const char *body,
                     size_t len, long timeout_ms, struct outcome *o) {
  memset(o, 0, sizeof *o);
  o->status = -1;
  int rc = cr_http_async_post(h, url, hdrs, n, body, len, timeout_ms,
                              outcome_done, o);
  if (rc != 0)
    return rc;
  while (o->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  assert_int_equal(o->calls, 1);
  return 0;
}

/* A reused handle must carry nothing over: not headers of an earlier request
 * with more of them, not a longer body, not an earlier timeout or error. */
static void test_reuse_no_stale_state(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char ok[256], slow[256], dead[128];
  url_of(ok, sizeof ok, s, "/ok");
  url_of(slow, sizeof slow, s, "/slow");
  assert_int_equal(cr_fake_http_dead_url(dead, sizeof dead), 0);
  uv_loop_t loop;
  struct cr_http_async_opts opt = {1, 0, 0}; /* one pooled handle */
  cr_http_async *h = client_open(&loop, &opt);
  struct outcome o;
  /* 1: many headers and a large body. */
  size_t big_len = 200000;
  char *big = malloc(big_len + 1);
  assert_non_null(big);
  memset(big, 'x', big_len);
  big[big_len] = '\0';
  const char *many[] = {"X-A: 1", "X-B: 2", "X-C: 3", "X-Secret: s3cr3t"};
  assert_int_equal(post_wait(&loop, h, ok, many, 4, big, big_len, 0, &o), 0);
  assert_int_equal(o.status, 200);
  /* 2: fewer headers, short body, no headers at all then. */
  const char *few[] = {"X-B: two"};
  assert_int_equal(post_wait(&loop, h, ok, few, 1, "tiny", 4, 0, &o), 0);
  assert_int_equal(o.status, 200);
  assert_string_equal(o.error, "");
  assert_int_equal(post_wait(&loop, h, ok, NULL, 0, NULL, 0, 0, &o), 0);
  assert_int_equal(o.status, 200);
  /* 3: an error, then a timeout, then a request without a timeout: the
   * default (15 s) applies again and the slow answer arrives. */
  strcat(dead, "/ok");
  assert_int_equal(post_wait(&loop, h, dead, few, 1, "d", 1, 0, &o), 0);
  assert_int_equal(o.status, 0);
  assert_true(o.error[0] != '\0');
  assert_int_equal(post_wait(&loop, h, slow, few, 1, "s", 1, 200, &o), 0);
  assert_int_equal(o.status, 0);
  assert_non_null(strstr(o.error, "timed out"));
  assert_int_equal(post_wait(&loop, h, slow, NULL, 0, "s", 1, 0, &o), 0);
  assert_int_equal(o.status, 200);
  assert_string_equal(o.error, "");
  assert_int_equal(post_wait(&loop, h, ok, few, 1, "end", 3, 0, &o), 0);
  assert_int_equal(o.status, 200);
  /* What the server saw, request by request. */
  assert_int_equal(cr_fake_http_count(s), 6);
  const struct cr_fake_http_request *rq = cr_fake_http_request_at(s, 0);
  assert_int_equal(rq->body_len, big_len);
  assert_string_equal(cr_fake_http_header(rq, "X-Secret"), "s3cr3t");
  assert_null(cr_fake_http_header(rq, "Expect"));
  rq = cr_fake_http_request_at(s, 1);
  assert_int_equal(rq->body_len, 4);
  assert_string_equal(rq->body, "tiny");
  assert_string_equal(cr_fake_http_header(rq, "X-B"), "two");
  assert_null(cr_fake_http_header(rq, "X-A"));
  assert_null(cr_fake_http_header(rq, "X-Secret"));
  rq = cr_fake_http_request_at(s, 2);
  assert_int_equal(rq->body_len, 0);
  assert_null(cr_fake_http_header(rq, "X-B"));
  rq = cr_fake_http_request_at(s, 5);
  assert_string_equal(rq->body, "end");
  assert_string_equal(cr_fake_http_header(rq, "X-B"), "two");
  free(big);
  client_close(&loop, h, s);
}

/* More requests in flight than the pool keeps: the extra ones queue in the
 * multi handle, finish, and are released; all answers match their request. */
static void test_window_over_pool(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  struct cr_http_async_opts o = {2, 0, 0};
  drv_init(&d, 300, 12, &o);
  drv_run(&d, url_of(url, sizeof url, s, "/ok"), 300);
  for (size_t i = 0; i < 300; i++) {
    char want[64];
    snprintf(want, sizeof want, "ok:payload-%zu", i);
    assert_int_equal(d.slots[i].status, 200);
    assert_string_equal(d.slots[i].body, want);
  }
  size_t conns = cr_fake_http_connections(s);
  assert_true(conns >= 1 && conns <= 2);
  drv_finish(&d);
  cr_fake_http_stop(s);
}

/* Allocation failures while a pooled request grows its buffers (bigger body,
 * more headers): clean CR_ENOMEM, and the client (and its pool) keep working
 * afterwards. */
static void test_alloc_failures_reused(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  url_of(url, sizeof url, s, "/ok");
  char body[3000];
  memset(body, 'y', sizeof body);
  const char *hdrs[12];
  char hbuf[12][32];
  for (size_t i = 0; i < 12; i++) {
    snprintf(hbuf[i], sizeof hbuf[i], "X-H%zu: value-%zu", i, i);
    hdrs[i] = hbuf[i];
  }
  cr_test_alloc_install();
  int clean = 0, failed = 0;
  for (long n = 0; !clean && n < 100; n++) {
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    cr_http_async *h = NULL;
    struct outcome o;
    assert_int_equal(cr_http_async_new(&loop, NULL, &h), 0);
    assert_int_equal(post_wait(&loop, h, url, NULL, 0, "a", 1, 0, &o), 0);
    assert_int_equal(o.status, 200);
    cr_test_alloc_fail_after(n);
    int rc = post_wait(&loop, h, url, hdrs, 12, body, sizeof body, 0, &o);
    clean = !cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    assert_true(rc == 0 || rc == CR_ENOMEM);
    failed |= rc == CR_ENOMEM;
    if (clean)
      assert_int_equal(o.status, 200);
    assert_int_equal(cr_http_async_in_flight(h), 0);
    /* Still usable, with the grown request or a fresh one. */
    assert_int_equal(
        post_wait(&loop, h, url, hdrs, 12, body, sizeof body, 0, &o), 0);
    assert_int_equal(o.status, 200);
    cr_http_async_close(h);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_http_async_free(h);
    assert_int_equal(uv_loop_close(&loop), 0);
  }
  assert_true(failed);
  assert_true(clean);
  cr_fake_http_stop(s);
}

/* Idle connections (their sockets stay watched while parked) closed by the
 * peer, refused connects in between (their fds get reused), and again: every
 * request after a restart gets through on a fresh connection. */
static void test_idle_close_cycles(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  uint16_t port = cr_fake_http_port(s);
  char ok[256], dead[128];
  url_of(ok, sizeof ok, s, "/ok");
  assert_int_equal(cr_fake_http_dead_url(dead, sizeof dead), 0);
  strcat(dead, "/ok");
  uv_loop_t loop;
  cr_http_async *h = client_open(&loop, NULL);
  struct outcome o;
  for (int cycle = 0; cycle < 5; cycle++) {
    for (int i = 0; i < 3; i++) {
      assert_int_equal(post_wait(&loop, h, ok, NULL, 0, "a", 1, 2000, &o), 0);
      assert_int_equal(o.status, 200);
    }
    cr_fake_http_stop(s);
    /* Let the EOF of the idle connection reach the parked socket. */
    uint64_t until = uv_hrtime() + 50000000u;
    while (uv_hrtime() < until)
      uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(post_wait(&loop, h, dead, NULL, 0, "b", 1, 2000, &o), 0);
    assert_int_equal(o.status, 0);
    assert_int_equal(cr_fake_http_start_port(handler, &sv, port, &s), 0);
  }
  assert_int_equal(post_wait(&loop, h, ok, NULL, 0, "c", 1, 2000, &o), 0);
  assert_int_equal(o.status, 200);
  assert_int_equal(cr_fake_http_count(s), 1);
  client_close(&loop, h, s);
}

/* A pooled handle keeps the last URL parsed; one that does not parse still
 * fails its transfer (not the post), and the handle goes on with the next
 * URL, whichever it is. */
static void test_url_reuse_and_malformed(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char ok[256], st[256];
  url_of(ok, sizeof ok, s, "/ok");
  url_of(st, sizeof st, s, "/status/503");
  uv_loop_t loop;
  struct cr_http_async_opts opt = {1, 0, 0}; /* one pooled handle */
  cr_http_async *h = client_open(&loop, &opt);
  struct outcome o;
  const char *const seq[] = {ok, ok, "http://[::1", st, "no scheme here", ok};
  const long want[] = {200, 200, 0, 503, 0, 200};
  for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
    assert_int_equal(post_wait(&loop, h, seq[i], NULL, 0, "x", 1, 2000, &o), 0);
    assert_int_equal(o.status, want[i]);
    if (want[i] == 0)
      assert_true(o.error[0] != '\0');
  }
  client_close(&loop, h, s);
}

/* An idle kept-alive connection stays watched for the server closing it,
 * but keeps no loop running; the next request reuses it, and one the
 * server closed meanwhile is replaced. */
static void test_idle_connection_keeps_no_loop(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  uint16_t port = cr_fake_http_port(s);
  char ok[256];
  url_of(ok, sizeof ok, s, "/ok");
  uv_loop_t loop;
  cr_http_async *h = client_open(&loop, NULL);
  struct outcome o;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(post_wait(&loop, h, ok, NULL, 0, "a", 1, 2000, &o), 0);
    assert_int_equal(o.status, 200);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_alive(&loop), 0); /* nothing active */
  }
  assert_int_equal(cr_fake_http_connections(s), 1); /* kept alive */
  /* The server goes away with the connection idle, and comes back. */
  cr_fake_http_stop(s);
  uint64_t until = uv_hrtime() + 50000000u;
  while (uv_hrtime() < until)
    uv_run(&loop, UV_RUN_NOWAIT); /* the EOF reaches the idle socket */
  assert_int_equal(uv_loop_alive(&loop), 0);
  assert_int_equal(cr_fake_http_start_port(handler, &sv, port, &s), 0);
  assert_int_equal(post_wait(&loop, h, ok, NULL, 0, "b", 1, 2000, &o), 0);
  assert_int_equal(o.status, 200);
  assert_int_equal(cr_fake_http_connections(s), 1); /* a new one */
  client_close(&loop, h, s);
}

/* A host name instead of an address: the resolver's own sockets (not
 * connection sockets) come and go between transfers. */
static void test_hostname_url(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  snprintf(url, sizeof url, "http://localhost:%u/ok",
           (unsigned)cr_fake_http_port(s));
  struct drv d;
  drv_init(&d, 200, 4, NULL);
  d.timeout_ms = 5000;
  drv_run(&d, url, 100);
  uv_loop_t *loop = &d.loop;
  cr_http_async *h2 = NULL; /* a second client: its own DNS cache */
  assert_int_equal(cr_http_async_new(loop, NULL, &h2), 0);
  struct outcome o;
  assert_int_equal(post_wait(loop, h2, url, NULL, 0, "x", 1, 5000, &o), 0);
  assert_int_equal(o.status, 200);
  cr_http_async_close(h2);
  drv_run(&d, url, 200);
  for (size_t i = 0; i < 200; i++)
    assert_int_equal(d.slots[i].status, 200);
  assert_int_equal(cr_fake_http_count(s), 201);
  drv_finish(&d); /* runs the loop until h2's handles are closed too */
  cr_http_async_free(h2);
  cr_fake_http_stop(s);
}

static void test_throughput(void **state) {
  (void)state;
  struct srv sv;
  cr_fake_http *s = start_srv(&sv);
  char url[256];
  struct drv d;
  drv_init(&d, 20000, 16, NULL);
  uint64_t t0 = uv_hrtime();
  drv_run(&d, url_of(url, sizeof url, s, "/status/200"), 20000);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  size_t ok = 0;
  for (size_t i = 0; i < 20000; i++)
    ok += d.slots[i].status == 200;
  assert_int_equal(ok, 20000);
  printf("http_async throughput: 20000 POSTs, 16 in flight, %.2f s, %.0f "
         "req/s, %zu connections\n",
         secs, 20000.0 / secs, cr_fake_http_connections(s));
  drv_finish(&d);
  cr_fake_http_stop(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thousand_posts),
      cmocka_unit_test(test_connection_reuse),
      cmocka_unit_test(test_statuses),
      cmocka_unit_test(test_big_body_truncated),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_default_timeout),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_restart),
      cmocka_unit_test(test_restart_midstream),
      cmocka_unit_test(test_no_redirects),
      cmocka_unit_test(test_close_cancels),
      cmocka_unit_test(test_close_from_callback),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_reuse_no_stale_state),
      cmocka_unit_test(test_window_over_pool),
      cmocka_unit_test(test_alloc_failures_reused),
      cmocka_unit_test(test_idle_close_cycles),
      cmocka_unit_test(test_idle_connection_keeps_no_loop),
      cmocka_unit_test(test_url_reuse_and_malformed),
      cmocka_unit_test(test_hostname_url),
      cmocka_unit_test(test_throughput),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
