/* test_delivery.c: integration tests of the webhook delivery engine
 * (core/events/delivery) on a real libuv loop against the loopback fake receiver:
 * a receiver restart (at-least-once, order, same webhook-id), Standard
 * Webhooks signatures checked with the openssl CLI, custom headers, status
 * handling (5xx retried, 404 dead, 429 Retry-After, 410 disables), Jsonnet
 * templates (the documents' Slack one, a run-time error), the documents'
 * filters, replay, and close with requests in flight (aborted requests
 * stay pending: not an attempt, never dead). */
#include "testutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "util/alloc.h"
#include "control/apply.h"
#include "config/config.h"
#include "events/delivery.h"
#include "config/diag.h"
#include "util/error.h"
#include "events/events.h"
#include "fake_http.h"
#include "store/store.h"
#include "store/store_sql.h"

#define MAX_HITS 4096
#define FAST_DELIVERY                                                          \
  "retry_schedule: [0s, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms, 200ms], "    \
  "timeout: 2s"

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Receiver ------------------------------------------------------------
 * Records every request (copied: survives a server restart) and answers by
 * path: /flaky 500 twice then 200, /404, /410, /429 (first request: 429 with
 * Retry-After: 1, then 200), /slow (200 after 3 s, at once when fast is
 * set), anything else 200. */

struct hit {
  char path[64];
  char wid[64], ts[32], sig[192], xsource[64], xtoken[64];
  char *body; /* malloc'd, NUL-terminated */
  size_t body_len;
  int64_t at_ms;
  int status;
};

struct rcv {
  pthread_mutex_t mu;
  struct hit hits[MAX_HITS];
  size_t n;
  int fast; /* /slow answers at once */
};

static void copy_hdr(char *dst, size_t len,
                     const struct cr_fake_http_request *req, const char *name) {
  const char *v = cr_fake_http_header(req, name);
  snprintf(dst, len, "%s", v ? v : "");
}

static size_t count_path_locked(struct rcv *r, const char *path) {
  size_t n = 0;
  for (size_t i = 0; i < r->n; i++)
    if (strcmp(r->hits[i].path, path) == 0)
      n++;
  return n;
}

static void handler(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  struct rcv *r = ud;
  pthread_mutex_lock(&r->mu);
  size_t before = count_path_locked(r, req->path);
  int status = 200;
  if (strcmp(req->path, "/flaky") == 0)
    status = before < 2 ? 500 : 200;
  else if (strcmp(req->path, "/404") == 0)
    status = 404;
  else if (strcmp(req->path, "/410") == 0)
    status = 410;
  else if (strcmp(req->path, "/429") == 0 && before == 0) {
    status = 429;
    resp->headers[0] = "Retry-After: 1";
  } else if (strcmp(req->path, "/slow") == 0 && !r->fast)
    resp->delay_ms = 3000;
  else if (strcmp(req->path, "/delay") == 0)
    resp->delay_ms = 300;
  if (r->n < MAX_HITS) {
    struct hit *h = &r->hits[r->n++];
    snprintf(h->path, sizeof h->path, "%s", req->path);
    copy_hdr(h->wid, sizeof h->wid, req, "webhook-id");
    copy_hdr(h->ts, sizeof h->ts, req, "webhook-timestamp");
    copy_hdr(h->sig, sizeof h->sig, req, "webhook-signature");
    copy_hdr(h->xsource, sizeof h->xsource, req, "X-Source");
    copy_hdr(h->xtoken, sizeof h->xtoken, req, "X-Token");
    h->body = malloc(req->body_len + 1);
    if (h->body != NULL) {
      memcpy(h->body, req->body, req->body_len);
      h->body[req->body_len] = '\0';
      h->body_len = req->body_len;
    }
    h->at_ms = mono_ms();
    h->status = status;
  }
  pthread_mutex_unlock(&r->mu);
  resp->status = status;
  resp->body = "{}";
}

static size_t count_path(struct rcv *r, const char *path) {
  pthread_mutex_lock(&r->mu);
  size_t n = count_path_locked(r, path);
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* The event id of a hit, from its body's "id" (the event JSON body). */
static int64_t body_event_id(const struct hit *h) {
  json_t *j = json_loads(h->body ? h->body : "", 0, NULL);
  json_t *id = json_object_get(j, "id");
  int64_t v = json_is_integer(id) ? (int64_t)json_integer_value(id) : -1;
  json_decref(j);
  return v;
}

/* ---- Environment ---------------------------------------------------------
 */

struct env {
  char *dir;
  cr_config *cfg;
  cr_store *store;
  uv_loop_t loop;
  cr_delivery *d;
  cr_fake_http *srv;
  struct rcv *rcv;
};

/* Replaces every "URL" in tpl by url. malloc'd. */
static char *subst_url(const char *tpl, const char *url) {
  size_t n = 0;
  for (const char *p = strstr(tpl, "URL"); p; p = strstr(p + 3, "URL"))
    n++;
  char *out = malloc(strlen(tpl) + n * strlen(url) + 1), *o = out;
  assert_non_null(out);
  const char *p = tpl, *q;
  while ((q = strstr(p, "URL")) != NULL) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, url, strlen(url));
    o += strlen(url);
    p = q + 3;
  }
  strcpy(o, p);
  return out;
}

/* Writes e->dir/name: a config whose subscriptions are subs_yaml ("URL" =
 * the receiver), and loads it. */
static cr_config *load_subs(struct env *e, const char *name,
                            const char *subs_yaml) {
  char *subs = subst_url(subs_yaml, cr_fake_http_url(e->srv));
  size_t len = strlen(subs) + strlen(e->dir) + 256;
  char *yaml = malloc(len);
  assert_non_null(yaml);
  snprintf(yaml, len,
           "host:\n  data_dir: %s/data\n  account_id: acme-test\n"
           "subscriptions:\n%s",
           e->dir, subs);
  char *path = cr_test_write_file(e->dir, name, yaml);
  free(subs);
  free(yaml);
  cr_config *cfg = NULL;
  cr_diags dg = CR_DIAGS_INIT;
  int rc = cr_config_load(path, &cfg, &dg);
  for (size_t i = 0; rc != 0 && i < dg.count; i++)
    print_error("config: %s\n", dg.items[i].message);
  assert_int_equal(rc, 0);
  cr_diags_free(&dg);
  free(path);
  return cfg;
}

/* Starts the receiver, loads a config whose subscriptions are subs_yaml
 * ("URL" = the receiver), applies it to a new store and starts the engine. */
static void env_start(struct env *e, const char *subs_yaml) {
  memset(e, 0, sizeof *e);
  e->rcv = calloc(1, sizeof *e->rcv);
  assert_non_null(e->rcv);
  pthread_mutex_init(&e->rcv->mu, NULL);
  assert_int_equal(cr_fake_http_start(handler, e->rcv, &e->srv), 0);
  e->dir = cr_test_mkdtemp("deliv");
  e->cfg = load_subs(e, "connrun.yaml", subs_yaml);
  char err[256] = "", data[1024];
  snprintf(data, sizeof data, "%s/data", e->dir);
  assert_int_equal(cr_store_open(data, &e->store, err, sizeof err), 0);
  assert_int_equal(
      cr_apply_config(e->store, e->cfg, "config", NULL, err, sizeof err), 0);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  struct cr_delivery_opts o = {
      .loop = &e->loop, .store = e->store, .data_dir = data, .poll_ms = 20};
  assert_int_equal(cr_delivery_new(&o, &e->d), 0);
  assert_int_equal(cr_delivery_configure(e->d, e->cfg), 0);
}

/* Closes the engine and drains the loop (no handle may stay open). */
static void env_close_engine(struct env *e) {
  if (e->d == NULL)
    return;
  cr_delivery_close(e->d);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  cr_delivery_free(e->d);
  e->d = NULL;
}

static void env_finish(struct env *e) {
  env_close_engine(e);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  cr_fake_http_stop(e->srv);
  cr_store_close(e->store);
  cr_config_free(e->cfg);
  for (size_t i = 0; i < e->rcv->n; i++)
    free(e->rcv->hits[i].body);
  pthread_mutex_destroy(&e->rcv->mu);
  free(e->rcv);
  cr_test_rmtree(e->dir);
  free(e->dir);
}

static int64_t emit(struct env *e, const char *verb, const char *subject_type,
                    const char *subject_id, const char *data_json) {
  json_t *data = data_json ? json_loads(data_json, 0, NULL) : json_object();
  assert_non_null(data);
  int64_t id = 0;
  assert_int_equal(cr_event_emit(e->store, subject_type, subject_id, verb,
                                 "test", data, &id),
                   0);
  json_decref(data);
  if (e->d != NULL)
    cr_delivery_kick(e->d);
  return id;
}

typedef int (*pred_fn)(struct env *e, void *ud);

/* Runs the loop until pred holds or timeout_ms passed. Returns pred. */
static int run_until(struct env *e, pred_fn pred, void *ud,
                     int64_t timeout_ms) {
  int64_t deadline = mono_ms() + timeout_ms;
  while (!pred(e, ud) && mono_ms() < deadline)
    uv_run(&e->loop, UV_RUN_ONCE); /* the engine's poll timer ticks */
  return pred(e, ud);
}

/* Runs the loop for ms milliseconds. */
static int never(struct env *e, void *ud) {
  (void)e;
  (void)ud;
  return 0;
}
static void run_for(struct env *e, int64_t ms) {
  run_until(e, never, NULL, ms);
}

static int64_t qint(struct env *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int64_t qint(struct env *e, const char *fmt, ...) {
  char sql[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  int64_t v = -1;
  assert_int_equal(cr__store_sqlite_query_int(e->store, sql, &v), 0);
  return v;
}

struct path_n {
  const char *path;
  size_t n;
};
static int has_hits(struct env *e, void *ud) {
  const struct path_n *p = ud;
  return count_path(e->rcv, p->path) >= p->n;
}

/* ---- 1. Receiver restart -------------------------------------------------
 */

struct restart {
  struct env *e;
  uv_timer_t emitter;
  int64_t ids[300];
  int n_ids;
  int stopped, restarted;
  int64_t down_at;
  uint16_t port;
};

static void emit_tick(uv_timer_t *t) {
  struct restart *r = t->data;
  for (int i = 0; i < 10 && r->n_ids < 300; i++) {
    char data[64];
    snprintf(data, sizeof data, "{\"n\": %d}", r->n_ids);
    r->ids[r->n_ids++] = emit(r->e, "failed", "work", "w1", data);
  }
  if (r->n_ids == 300)
    uv_timer_stop(t);
}

static size_t distinct_ids(struct rcv *rv, const char *path) {
  static unsigned char seen[100000];
  size_t n = 0;
  memset(seen, 0, sizeof seen);
  pthread_mutex_lock(&rv->mu);
  for (size_t i = 0; i < rv->n; i++) {
    if (strcmp(rv->hits[i].path, path) != 0 || rv->hits[i].status != 200)
      continue;
    int64_t id = body_event_id(&rv->hits[i]);
    if (id > 0 && id < (int64_t)sizeof seen && !seen[id]) {
      seen[id] = 1;
      n++;
    }
  }
  pthread_mutex_unlock(&rv->mu);
  return n;
}

static int restart_step(struct env *e, void *ud) {
  struct restart *r = ud;
  if (!r->stopped && count_path(e->rcv, "/ok") >= 100) {
    cr_fake_http_stop(e->srv);
    e->srv = NULL;
    r->stopped = 1;
    r->down_at = mono_ms();
  }
  if (r->stopped && !r->restarted && mono_ms() - r->down_at >= 500) {
    assert_int_equal(cr_fake_http_start_port(handler, e->rcv, r->port, &e->srv),
                     0);
    r->restarted = 1;
  }
  return r->restarted && r->n_ids == 300 && distinct_ids(e->rcv, "/ok") >= 300;
}

static void test_receiver_restart(void **state) {
  (void)state;
  struct env e;
  env_start(&e, "  - id: seq\n    workflow: webhook_system_events\n"
                "    config:\n      system_event_type: failed\n"
                "      webhook_url: \"URL/ok\"\n"
                "    delivery: {" FAST_DELIVERY ", max_in_flight: 1}\n");
  struct restart r = {.e = &e, .port = cr_fake_http_port(e.srv)};
  uv_timer_init(&e.loop, &r.emitter);
  r.emitter.data = &r;
  uv_timer_start(&r.emitter, emit_tick, 10, 10);
  assert_true(run_until(&e, restart_step, &r, 30000));
  uv_close((uv_handle_t *)&r.emitter, NULL);
  run_for(&e, 200); /* the last results are recorded */

  /* Every event arrived at least once; a duplicate carries the same
   * webhook-id; first arrivals come in id order. */
  int64_t last_first = 0;
  static unsigned char seen[100000];
  memset(seen, 0, sizeof seen);
  size_t ok = 0;
  for (size_t i = 0; i < e.rcv->n; i++) {
    struct hit *h = &e.rcv->hits[i];
    int64_t id = body_event_id(h);
    assert_true(id > 0 && id < (int64_t)sizeof seen);
    char want[64];
    snprintf(want, sizeof want, "evt_%lld", (long long)id);
    assert_string_equal(h->wid, want);
    if (h->status != 200 || seen[id])
      continue;
    seen[id] = 1;
    ok++;
    assert_true(id > last_first);
    last_first = id;
  }
  assert_int_equal(ok, 300);
  for (int i = 0; i < 300; i++)
    assert_true(seen[r.ids[i]]);
  /* The outage was seen: attempts without a response were recorded. */
  assert_true(qint(&e, "SELECT count(*) FROM delivery_attempts WHERE "
                       "subscription_id = 'seq' AND (http_status IS NULL OR "
                       "http_status = 0)") >= 1);
  struct cr_sub_stats st = {0};
  assert_int_equal(cr_store_sub_stats(e.store, "seq", &st), 0);
  assert_int_equal(st.backlog, 0);
  assert_int_equal(st.delivered, 300);
  assert_int_equal(st.dead, 0);
  cr_sub_stats_clear(&st);
  env_finish(&e);
}

/* ---- 2. Signatures checked with the openssl CLI ----------------------- */

static void b64(const unsigned char *in, size_t n, char *out) {
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < n)
      v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out[o++] = a[(v >> 18) & 63];
    out[o++] = a[(v >> 12) & 63];
    out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
    out[o++] = i + 2 < n ? a[v & 63] : '=';
  }
  out[o] = '\0';
}

static void test_signatures_openssl(void **state) {
  (void)state;
  unsigned char key[32];
  FILE *f = fopen("/dev/urandom", "rb");
  assert_non_null(f);
  assert_int_equal(fread(key, 1, sizeof key, f), sizeof key);
  fclose(f);
  char hex[65], kb64[64], secret[80];
  for (size_t i = 0; i < sizeof key; i++)
    snprintf(hex + 2 * i, 3, "%02x", key[i]);
  b64(key, sizeof key, kb64);
  snprintf(secret, sizeof secret, "whsec_%s", kb64);
  assert_int_equal(setenv("CR_TEST_DELIV_SECRET", secret, 1), 0);
  struct env e;
  env_start(&e, "  - id: signed\n    workflow: webhook_system_events\n"
                "    config:\n      system_event_type: failed\n"
                "      webhook_url: \"URL/ok\"\n"
                "      secret: \"${CR_TEST_DELIV_SECRET}\"\n"
                "      headers: {X-Source: connrun, X-Token: tok-123}\n"
                "    delivery: {" FAST_DELIVERY "}\n");
  for (int i = 0; i < 20; i++) {
    char data[64];
    snprintf(data, sizeof data, "{\"notes\": \"n\\u00e9 %d \\\"q\\\"\"}", i);
    emit(&e, "failed", "work", "w1", data);
  }
  struct path_n want = {"/ok", 20};
  assert_true(run_until(&e, has_hits, &want, 15000));
  env_close_engine(&e);
  char *msg = cr_test_write_file(e.dir, "msg", "");
  for (size_t i = 0; i < 20; i++) {
    struct hit *h = &e.rcv->hits[i];
    assert_string_equal(h->xsource, "connrun");
    assert_string_equal(h->xtoken, "tok-123");
    assert_true(strncmp(h->wid, "evt_", 4) == 0);
    assert_true(h->ts[0] != '\0');
    f = fopen(msg, "wb");
    assert_non_null(f);
    fprintf(f, "%s.%s.", h->wid, h->ts);
    assert_int_equal(fwrite(h->body, 1, h->body_len, f), h->body_len);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl dgst -sha256 -mac HMAC -macopt hexkey:%s -binary '%s' "
             "| base64 -w0",
             hex, msg);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL}, *out = NULL;
    assert_int_equal(cr_test_run(argv, NULL, &out), 0);
    char expect[192];
    snprintf(expect, sizeof expect, "v1,%s", out);
    expect[strcspn(expect, "\r\n")] = '\0';
    free(out);
    assert_string_equal(h->sig, expect);
  }
  free(msg);
  unsetenv("CR_TEST_DELIV_SECRET");
  env_finish(&e);
}

/* ---- 3. Status handling -------------------------------------------------
 */

static const char STATUS_SUBS[] =
    "  - id: flaky\n    workflow: webhook_system_events\n"
    "    config: {system_event_type: failed, webhook_url: \"URL/flaky\"}\n"
    "    delivery: {" FAST_DELIVERY ", max_in_flight: 1}\n"
    "  - id: nf\n    workflow: webhook_system_events\n"
    "    config: {system_event_type: failed, webhook_url: \"URL/404\"}\n"
    "    delivery: {" FAST_DELIVERY "}\n"
    "  - id: slowdown\n    workflow: webhook_system_events\n"
    "    config: {system_event_type: failed, webhook_url: \"URL/429\"}\n"
    "    delivery: {" FAST_DELIVERY ", max_in_flight: 1}\n"
    "  - id: gone\n    workflow: webhook_system_events\n"
    "    config: {system_event_type: failed, webhook_url: \"URL/410\"}\n"
    "    delivery: {" FAST_DELIVERY "}\n";

struct ev_status {
  int64_t ev;
};
/* All four subscriptions decided event ud->ev. */
static int first_settled(struct env *e, void *ud) {
  int64_t ev = ((struct ev_status *)ud)->ev;
  return qint(e,
              "SELECT count(*) FROM outbox WHERE event_id = %lld AND status "
              "IN ('delivered', 'dead')",
              (long long)ev) >= 3 &&
         qint(e, "SELECT enabled FROM subscriptions WHERE id = 'gone'") == 0;
}
static int second_settled(struct env *e, void *ud) {
  int64_t ev = ((struct ev_status *)ud)->ev;
  return qint(e,
              "SELECT count(*) FROM outbox WHERE event_id = %lld AND status "
              "IN ('delivered', 'dead') AND subscription_id IN "
              "('flaky', 'nf', 'slowdown')",
              (long long)ev) == 3;
}

static void test_status_handling(void **state) {
  (void)state;
  struct env e;
  env_start(&e, STATUS_SUBS);
  struct ev_status s1 = {emit(&e, "failed", "work", "w1", NULL)};
  assert_true(run_until(&e, first_settled, &s1, 15000));

  /* 500, 500, 200: delivered after 3 recorded attempts. */
  assert_int_equal(count_path(e.rcv, "/flaky"), 3);
  assert_int_equal(qint(&e,
                        "SELECT count(*) FROM outbox WHERE subscription_id = "
                        "'flaky' AND event_id = %lld AND status = 'delivered' "
                        "AND attempts = 3",
                        (long long)s1.ev),
                   1);
  assert_int_equal(qint(&e, "SELECT count(*) FROM delivery_attempts WHERE "
                            "subscription_id = 'flaky'"),
                   3);
  assert_int_equal(qint(&e, "SELECT count(*) FROM delivery_attempts WHERE "
                            "subscription_id = 'flaky' AND http_status = 500"),
                   2);
  /* 404: dead after one attempt. */
  assert_int_equal(qint(&e,
                        "SELECT count(*) FROM outbox WHERE subscription_id = "
                        "'nf' AND status = 'dead' AND attempts = 1 AND "
                        "last_status = 404"),
                   1);
  /* 429 + Retry-After: 1: the retry waits about a second. */
  struct path_n p429 = {"/429", 2};
  assert_true(run_until(&e, has_hits, &p429, 5000));
  int64_t t0 = -1, t1 = -1;
  for (size_t i = 0; i < e.rcv->n; i++)
    if (strcmp(e.rcv->hits[i].path, "/429") == 0) {
      if (t0 < 0)
        t0 = e.rcv->hits[i].at_ms;
      else if (t1 < 0)
        t1 = e.rcv->hits[i].at_ms;
    }
  assert_true(t1 - t0 >= 900);
  /* 410: the subscription is disabled with the reason and an event. */
  struct cr_sub_rec *sub = NULL;
  assert_int_equal(cr_store_sub_get(e.store, "gone", &sub), 0);
  assert_int_equal(sub->enabled, 0);
  assert_non_null(sub->disabled_reason);
  assert_non_null(strstr(sub->disabled_reason, "410"));
  cr_sub_rec_free(sub);
  assert_int_equal(qint(&e, "SELECT count(*) FROM events WHERE subject_type = "
                            "'subscription' AND subject_id = 'gone' AND verb "
                            "= 'updated'"),
                   1);
  assert_int_equal(count_path(e.rcv, "/410"), 1);

  /* A second event: the others get it; nothing more goes to /410. */
  struct ev_status s2 = {emit(&e, "failed", "work", "w1", NULL)};
  assert_true(run_until(&e, second_settled, &s2, 15000));
  run_for(&e, 500);
  assert_int_equal(count_path(e.rcv, "/410"), 1);
  assert_int_equal(count_path(e.rcv, "/404"), 2); /* one per event */
  assert_int_equal(count_path(e.rcv, "/flaky"), 4);
  assert_int_equal(qint(&e, "SELECT count(*) FROM delivery_attempts WHERE "
                            "subscription_id = 'gone'"),
                   1);
  env_finish(&e);
}

/* ---- 4. Templates -------------------------------------------------------
 */

static const char TPL_SUBS[] =
    "  - id: slack\n    workflow: webhook_system_events\n"
    "    config:\n      system_event_type: failed\n"
    "      webhook_url: \"URL/slack\"\n"
    "      json_template: |\n"
    "        local note = if std.objectHas(event.data, \"notes\") then "
    "event.data.notes else \"A work failed\";\n"
    "        {\"text\": \"Alert notification: \" + note + \". For more info "
    "go to: https://activate.getlytics.com/data/integrations/work/%s?aid=%s\" "
    "% [event.data.subject_id, event.data.aid]}\n"
    "    delivery: {" FAST_DELIVERY "}\n"
    "  - id: broken\n    workflow: webhook_system_events\n"
    "    config:\n      system_event_type: failed\n"
    "      webhook_url: \"URL/broken\"\n"
    "      json_template: '{\"a\": event.data.missing}'\n"
    "    delivery: {" FAST_DELIVERY "}\n"
    "  - id: plain\n    workflow: webhook_system_events\n"
    "    config:\n      system_event_type: failed\n"
    "      webhook_url: \"URL/plain\"\n"
    "    delivery: {" FAST_DELIVERY "}\n";

static int tpl_settled(struct env *e, void *ud) {
  int64_t ev = *(int64_t *)ud;
  return qint(e,
              "SELECT count(*) FROM outbox WHERE event_id = %lld AND status "
              "IN ('delivered', 'dead')",
              (long long)ev) == 3;
}

static void test_templates(void **state) {
  (void)state;
  struct env e;
  env_start(&e, TPL_SUBS);
  int64_t ev = emit(&e, "failed", "work", "w1", "{\"notes\":\"disk full\"}");
  assert_true(run_until(&e, tpl_settled, &ev, 15000));
  run_for(&e, 300);
  assert_int_equal(count_path(e.rcv, "/slack"), 1);
  assert_int_equal(count_path(e.rcv, "/plain"), 1);
  assert_int_equal(count_path(e.rcv, "/broken"), 0);
  for (size_t i = 0; i < e.rcv->n; i++) {
    struct hit *h = &e.rcv->hits[i];
    json_t *body = json_loads(h->body, 0, NULL);
    assert_non_null(body);
    if (strcmp(h->path, "/slack") == 0) {
      json_t *want =
          json_pack("{s:s}", "text",
                    "Alert notification: disk full. For more info go to: "
                    "https://activate.getlytics.com/data/integrations/work/"
                    "w1?aid=acme-test");
      assert_true(json_equal(body, want));
      json_decref(want);
    } else {
      assert_int_equal(json_integer_value(json_object_get(body, "id")), ev);
      assert_string_equal(json_string_value(json_object_get(body, "verb")),
                          "failed");
    }
    json_decref(body);
  }
  assert_int_equal(qint(&e,
                        "SELECT count(*) FROM outbox WHERE subscription_id = "
                        "'broken' AND status = 'dead' AND last_error LIKE "
                        "'%%json_template%%' AND last_error LIKE "
                        "'%%missing%%'"),
                   1);
  env_finish(&e);
}

/* ---- 5. Filters (the documents' examples) ------------------------------- */

static const char FILTER_SUBS[] =
    "  - id: multi\n    workflow: webhook_system_events\n"
    "    config:\n"
    "      system_event_multiple_types: [updated, created, failed]\n"
    "      system_event_sources: {work: [work-id-1, work-id-2]}\n"
    "      webhook_url: \"URL/multi\"\n"
    "    delivery: {" FAST_DELIVERY "}\n"
    "  - id: anywork\n    workflow: webhook_system_events\n"
    "    config:\n"
    "      system_event_sources: {work: []}\n"
    "      webhook_url: \"URL/anywork\"\n"
    "    delivery: {" FAST_DELIVERY "}\n";

static int ids_of(struct rcv *r, const char *path, int64_t *out, int max) {
  int n = 0;
  for (size_t i = 0; i < r->n && n < max; i++)
    if (strcmp(r->hits[i].path, path) == 0)
      out[n++] = body_event_id(&r->hits[i]);
  return n;
}

static int has_id(const int64_t *ids, int n, int64_t id) {
  for (int i = 0; i < n; i++)
    if (ids[i] == id)
      return 1;
  return 0;
}

static void test_filters(void **state) {
  (void)state;
  struct env e;
  env_start(&e, FILTER_SUBS);
  int64_t a = emit(&e, "failed", "work", "work-id-1", NULL);  /* both */
  int64_t b = emit(&e, "created", "work", "work-id-2", NULL); /* both */
  int64_t c = emit(&e, "started", "work", "work-id-1", NULL); /* anywork */
  int64_t d = emit(&e, "failed", "work", "work-id-3", NULL);  /* anywork */
  int64_t x = emit(&e, "updated", "auth", "work-id-1", NULL); /* neither */
  int64_t y = emit(&e, "updated", "work", "work-id-2", NULL); /* both */
  struct path_n pm = {"/multi", 3}, pa = {"/anywork", 5};
  assert_true(run_until(&e, has_hits, &pm, 10000));
  assert_true(run_until(&e, has_hits, &pa, 10000));
  run_for(&e, 400);
  int64_t m[16], w[16];
  int nm = ids_of(e.rcv, "/multi", m, 16),
      nw = ids_of(e.rcv, "/anywork", w, 16);
  assert_int_equal(nm, 3);
  assert_int_equal(nw, 5);
  assert_true(has_id(m, nm, a) && has_id(m, nm, b) && has_id(m, nm, y));
  assert_true(has_id(w, nw, a) && has_id(w, nw, b) && has_id(w, nw, c) &&
              has_id(w, nw, d) && has_id(w, nw, y));
  assert_false(has_id(m, nm, x) || has_id(w, nw, x));
  env_finish(&e);
}

/* ---- 6. Replay ----------------------------------------------------------
 */

static void test_replay(void **state) {
  (void)state;
  struct env e;
  env_start(&e, "  - id: rp\n    workflow: webhook_system_events\n"
                "    config:\n      system_event_type: failed\n"
                "      webhook_url: \"URL/ok\"\n"
                "    delivery: {" FAST_DELIVERY ", max_in_flight: 4}\n");
  int64_t ids[10];
  for (int i = 0; i < 10; i++)
    ids[i] = emit(&e, "failed", "work", "w1", NULL);
  struct path_n p10 = {"/ok", 10};
  assert_true(run_until(&e, has_hits, &p10, 10000));
  run_for(&e, 200);
  assert_int_equal(count_path(e.rcv, "/ok"), 10);
  size_t n = 0;
  assert_int_equal(cr_store_outbox_replay(e.store, "rp", 0, &n), 0);
  assert_int_equal(n, 10);
  cr_delivery_kick(e.d);
  struct path_n p20 = {"/ok", 20};
  assert_true(run_until(&e, has_hits, &p20, 10000));
  run_for(&e, 200);
  assert_int_equal(count_path(e.rcv, "/ok"), 20);
  for (int i = 0; i < 10; i++) {
    char wid[64];
    snprintf(wid, sizeof wid, "evt_%lld", (long long)ids[i]);
    int first = 0, second = 0;
    for (size_t k = 0; k < e.rcv->n; k++)
      if (strcmp(e.rcv->hits[k].wid, wid) == 0)
        *(k < 10 ? &first : &second) += 1;
    assert_int_equal(first, 1);
    assert_int_equal(second, 1);
  }
  struct cr_sub_stats st = {0};
  assert_int_equal(cr_store_sub_stats(e.store, "rp", &st), 0);
  assert_int_equal(st.backlog, 0);
  assert_int_equal(st.delivered, 10);
  cr_sub_stats_clear(&st);
  env_finish(&e);
}

/* ---- 7. Close with requests in flight -----------------------------------
 * /slow answers after 3 s: the engine is closed while requests wait. */

static void close_env_start(struct env *e, const char *schedule) {
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "  - id: slow\n    workflow: webhook_system_events\n"
           "    config:\n      system_event_type: failed\n"
           "      webhook_url: \"URL/slow\"\n"
           "    delivery: {retry_schedule: %s, timeout: 5s, "
           "max_in_flight: 4}\n",
           schedule);
  env_start(e, yaml);
  for (int i = 0; i < 4; i++)
    emit(e, "failed", "work", "w1", NULL);
  struct path_n p1 = {"/slow", 1};
  assert_true(run_until(e, has_hits, &p1, 5000));
  run_for(e, 100);
  struct cr_delivery_stats ds;
  cr_delivery_get_stats(e->d, &ds);
  assert_int_equal(ds.sent, 4);
  assert_int_equal(ds.delivered + ds.dead, 0);
  env_close_engine(e); /* no leak, no handle left (uv_loop_close checks) */
}

static void test_close_in_flight(void **state) {
  (void)state;
  struct env e;
  close_env_start(&e, "[0s, 200ms, 200ms]");
  assert_int_equal(qint(&e, "SELECT count(*) FROM outbox WHERE "
                            "subscription_id = 'slow'"),
                   4);
  assert_int_equal(qint(&e, "SELECT count(*) FROM outbox WHERE "
                            "subscription_id = 'slow' AND status IN "
                            "('delivered', 'dead')"),
                   0);
  struct cr_sub_stats st = {0};
  assert_int_equal(cr_store_sub_stats(e.store, "slow", &st), 0);
  assert_int_equal(st.backlog, 4);
  assert_int_equal(st.delivered, 0);
  cr_sub_stats_clear(&st);

  /* The next start sends them again with the same webhook-ids. */
  uint16_t port = cr_fake_http_port(e.srv);
  cr_fake_http_stop(e.srv); /* interrupts the 3 s answer */
  /* (the old server may still have read queued requests while stopping) */
  size_t before = count_path(e.rcv, "/slow");
  e.rcv->fast = 1;
  assert_int_equal(cr_fake_http_start_port(handler, e.rcv, port, &e.srv), 0);
  char data[1024];
  snprintf(data, sizeof data, "%s/data", e.dir);
  struct cr_delivery_opts o = {
      .loop = &e.loop, .store = e.store, .data_dir = data, .poll_ms = 20};
  assert_int_equal(cr_delivery_new(&o, &e.d), 0);
  assert_int_equal(cr_delivery_configure(e.d, e.cfg), 0);
  struct path_n again = {"/slow", before + 4};
  assert_true(run_until(&e, has_hits, &again, 10000));
  run_for(&e, 200);
  assert_int_equal(cr_store_sub_stats(e.store, "slow", &st), 0);
  assert_int_equal(st.backlog, 0);
  assert_int_equal(st.delivered, 4);
  cr_sub_stats_clear(&st);
  assert_int_equal(e.rcv->n, before + 4);
  for (size_t i = before; i < e.rcv->n; i++) {
    char want[64];
    snprintf(want, sizeof want, "evt_%lld",
             (long long)body_event_id(&e.rcv->hits[i]));
    assert_string_equal(e.rcv->hits[i].wid, want);
  }
  /* What the server saw before the close comes again, same webhook-id. */
  for (size_t k = 0; k < before; k++) {
    int again_n = 0;
    for (size_t i = before; i < e.rcv->n; i++)
      again_n += strcmp(e.rcv->hits[k].wid, e.rcv->hits[i].wid) == 0;
    assert_int_equal(again_n, 1);
  }
  env_finish(&e);
}

/* delivery.h: on close "in-flight ones are aborted and stay pending in the
 * store": no attempt recorded, no retry budget spent on a shutdown
 * (regression: they were recorded as failed attempts). */
static void test_close_keeps_rows_pending(void **state) {
  (void)state;
  struct env e;
  close_env_start(&e, "[0s, 200ms, 200ms]");
  int64_t pending = qint(&e, "SELECT count(*) FROM outbox WHERE "
                             "subscription_id = 'slow' AND status = "
                             "'pending' AND attempts = 0");
  int64_t attempts = qint(&e, "SELECT count(*) FROM delivery_attempts");
  env_finish(&e); /* before asserting: no leak when it fails */
  assert_int_equal(pending, 4);
  assert_int_equal(attempts, 0);
}

/* With a one-attempt schedule a shutdown during the only attempt must not
 * make the delivery dead (regression: the event was never sent again). */
static void test_close_on_last_attempt_not_dead(void **state) {
  (void)state;
  struct env e;
  close_env_start(&e, "[0s]");
  int64_t dead = qint(&e, "SELECT count(*) FROM outbox WHERE "
                          "subscription_id = 'slow' AND status = 'dead'");
  struct cr_sub_stats st = {0};
  assert_int_equal(cr_store_sub_stats(e.store, "slow", &st), 0);
  int64_t backlog = st.backlog;
  cr_sub_stats_clear(&st);
  env_finish(&e);
  assert_int_equal(dead, 0);
  assert_int_equal(backlog, 4);
}

/* ---- Reload while requests are in flight ---------------------------------
 * The subscription is configured again (a header changes) while 4 requests
 * wait at the receiver (300 ms each): their results still find the
 * subscription's state (the old run-time state stays alive until they are
 * recorded; ASan checks), each event is delivered once, and later requests
 * carry the new header. */

static int delivered_n(struct env *e, void *ud) {
  struct cr_delivery_stats ds;
  cr_delivery_get_stats(e->d, &ds);
  return ds.delivered >= *(uint64_t *)ud;
}

#define RELOAD_SUB(extra)                                                      \
  "  - id: rl\n    workflow: webhook_system_events\n"                          \
  "    config:\n      system_event_type: failed\n"                             \
  "      webhook_url: \"URL/delay\"\n" extra "    delivery: {" FAST_DELIVERY   \
  ", max_in_flight: 4}\n"

static void test_reload_in_flight(void **state) {
  (void)state;
  struct env e;
  env_start(&e, RELOAD_SUB(""));
  for (int i = 0; i < 8; i++)
    emit(&e, "failed", "work", "w1", NULL);
  struct path_n first = {"/delay", 4};
  assert_true(run_until(&e, has_hits, &first, 10000));
  cr_config *cfg2 = load_subs(
      &e, "reload.yaml", RELOAD_SUB("      headers: {X-Source: reloaded}\n"));
  assert_int_equal(cr_delivery_configure(e.d, cfg2), 0);
  uint64_t want = 8;
  assert_true(run_until(&e, delivered_n, &want, 15000));
  run_for(&e, 300); /* recorded */
  env_close_engine(&e);
  assert_int_equal(qint(&e, "SELECT count(*) FROM outbox WHERE "
                            "subscription_id = 'rl' AND status = "
                            "'delivered'"),
                   8);
  assert_int_equal(qint(&e, "SELECT count(*) FROM delivery_attempts WHERE "
                            "subscription_id = 'rl'"),
                   8);
  assert_int_equal(count_path(e.rcv, "/delay"), 8);
  /* The receiver answers one request at a time, so some that were sent
   * before the reload arrive after it; the last one was sent after. */
  assert_string_equal(e.rcv->hits[0].xsource, "");
  assert_string_equal(e.rcv->hits[7].xsource, "reloaded");
  env_finish(&e);
  cr_config_free(cfg2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_receiver_restart),
      cmocka_unit_test(test_signatures_openssl),
      cmocka_unit_test(test_status_handling),
      cmocka_unit_test(test_templates),
      cmocka_unit_test(test_filters),
      cmocka_unit_test(test_replay),
      cmocka_unit_test(test_close_in_flight),
      cmocka_unit_test(test_close_keeps_rows_pending),
      cmocka_unit_test(test_close_on_last_attempt_not_dead),
      cmocka_unit_test(test_reload_in_flight),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
