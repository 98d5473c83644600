/* test_delivery_batch.c: batched webhook delivery (events/batch_delivery.h)
 * to a loopback receiver:
 *   - the receiver stopped and restarted during a stream: every event
 *     arrives at least once, batches arrive in order, a retried batch has
 *     the same webhook-id and body, the count header matches, and
 *     signatures verify with an independent implementation (python3's
 *     hmac);
 *   - 413 halves a batch down to what the receiver takes, and down to one
 *     event (then dead), each attempt recorded;
 *   - a json_template failing on one event: that event is recorded dead,
 *     the others delivered (NDJSON);
 *   - configuration errors with FILE:LINE:COLUMN. */
#include "testutil.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/diag.h"
#include "control/apply.h"
#include "events/batch_delivery.h"
#include "events/events.h"
#include "fake_http.h"
#include "store/store.h"
#include "util/error.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/* What the receiver does: 0 accept, > 0 answer 413 above max_items, < 0
 * answer 413 to everything. */
struct rx {
  int max_items;
  int fail_first; /* answer 503 to this many requests first */
};

static size_t items_in(const struct cr_fake_http_request *r) {
  if (strcmp(cr_fake_http_header(r, "content-type")
                 ? cr_fake_http_header(r, "content-type")
                 : "",
             "application/x-ndjson") == 0) {
    size_t n = 0;
    for (size_t i = 0; i < r->body_len; i++)
      n += r->body[i] == '\n';
    return n;
  }
  json_t *a = json_loadb(r->body, r->body_len, 0, NULL);
  size_t n = json_array_size(a);
  json_decref(a);
  return n;
}

static void handler(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  struct rx *x = ud;
  if (x->fail_first > 0) {
    x->fail_first--;
    resp->status = 503;
    return;
  }
  resp->status = x->max_items < 0 || (x->max_items > 0 &&
                                      items_in(req) > (size_t)x->max_items)
                     ? 413
                     : 204;
}

struct env {
  char *dir, data[512];
  cr_config *cfg;
  cr_store *store;
  cr_batch_engine *eng;
};

static void env_start(struct env *e, const char *subs_yaml) {
  memset(e, 0, sizeof *e);
  e->dir = cr_test_mkdtemp("batch");
  snprintf(e->data, sizeof e->data, "%s/data", e->dir);
  char yaml[4096], err[256] = "";
  snprintf(yaml, sizeof yaml,
           "host:\n  data_dir: %s\n  account_id: acme\nsubscriptions:\n%s",
           e->data, subs_yaml);
  char *path = cr_test_write_file(e->dir, "connrun.yaml", yaml);
  cr_diags dg = CR_DIAGS_INIT;
  int rc = cr_config_load(path, &e->cfg, &dg);
  for (size_t i = 0; rc != 0 && i < dg.count; i++)
    print_error("config: %s\n", dg.items[i].message);
  assert_int_equal(rc, 0);
  cr_diags_free(&dg);
  free(path);
  assert_int_equal(cr_store_open(e->data, &e->store, err, sizeof err), 0);
  assert_int_equal(
      cr_apply_config(e->store, e->cfg, "config", NULL, err, sizeof err), 0);
  struct cr_batch_opts o = {.data_dir = e->data, .poll_ms = 20};
  assert_int_equal(cr_batch_engine_new(&o, &e->eng), 0);
  assert_int_equal(cr_batch_engine_configure(e->eng, e->cfg), 0);
}

static void env_finish(struct env *e) {
  cr_batch_engine_free(e->eng);
  cr_store_close(e->store);
  cr_config_free(e->cfg);
  cr_test_rmtree(e->dir);
  free(e->dir);
}

/* Starts the receiver (x) and an engine with one batched subscription id
 * (a synced-only webhook to the receiver) whose delivery is delivery_yaml. */
static cr_fake_http *start_case(struct env *e, struct rx *x, const char *id,
                                const char *delivery_yaml) {
  cr_fake_http *srv = NULL;
  assert_int_equal(cr_fake_http_start(handler, x, &srv), 0);
  char subs[1024];
  snprintf(subs, sizeof subs,
           "  - id: %s\n    workflow: webhook_system_events\n"
           "    config: { system_event_type: synced, webhook_url: \"%s/%s\" }\n"
           "    delivery: %s\n",
           id, cr_fake_http_url(srv), id, delivery_yaml);
  env_start(e, subs);
  return srv;
}

static void emit(struct env *e, int n, int64_t *first, int64_t *last) {
  assert_int_equal(cr_store_begin(e->store), 0);
  for (int i = 0; i < n; i++) {
    json_t *d = json_pack("{s:i}", "i", i);
    int64_t id = 0;
    assert_int_equal(
        cr_event_emit(e->store, "work", "w1", "synced", "test", d, &id), 0);
    json_decref(d);
    if (first && i == 0)
      *first = id;
    if (last)
      *last = id;
  }
  assert_int_equal(cr_store_commit(e->store), 0);
  cr_batch_engine_kick(e->eng);
}

/* Ids of the events in a request's body (JSON array or NDJSON), in order,
 * into ids (up to max). */
static size_t body_ids(const struct cr_fake_http_request *r, int64_t *ids,
                       size_t max) {
  size_t n = 0;
  json_t *a = json_loadb(r->body, r->body_len, 0, NULL);
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) {
    if (n < max)
      ids[n++] = json_integer_value(json_object_get(v, "id"));
  }
  json_decref(a);
  return n;
}

/* 1 when events first..last all arrived at least once. */
static int all_arrived(cr_fake_http *srv, int64_t first, int64_t last) {
  size_t want = (size_t)(last - first + 1);
  char *seen = calloc(want, 1);
  int64_t *ids = malloc(sizeof *ids * 20000);
  for (size_t i = 0; i < cr_fake_http_count(srv); i++) {
    size_t n = body_ids(cr_fake_http_request_at(srv, i), ids, 20000);
    for (size_t k = 0; k < n; k++)
      if (ids[k] >= first && ids[k] <= last)
        seen[ids[k] - first] = 1;
  }
  size_t got = 0;
  for (size_t i = 0; i < want; i++)
    got += seen[i];
  free(seen);
  free(ids);
  return got == want;
}

static int wait_all(cr_fake_http **srv, int64_t first, int64_t last) {
  for (int i = 0; i < 300; i++) { /* 30 s */
    if (all_arrived(*srv, first, last))
      return 1;
    usleep(100 * 1000);
  }
  return 0;
}

/* The signature of request r, checked by python3's hmac (not ours). */
static void verify_with_python(const char *dir,
                               const struct cr_fake_http_request *r) {
  char *body = cr_test_write_file(dir, "body.bin", r->body);
  const char *id = cr_fake_http_header(r, "webhook-id");
  const char *ts = cr_fake_http_header(r, "webhook-timestamp");
  const char *sig = cr_fake_http_header(r, "webhook-signature");
  assert_non_null(id);
  assert_non_null(ts);
  assert_non_null(sig);
  char prog[1024];
  snprintf(prog, sizeof prog,
           "import base64,hashlib,hmac,sys\n"
           "key=base64.b64decode('%s'[6:])\n"
           "body=open(sys.argv[1],'rb').read()\n"
           "msg=b'%s.%s.'+body\n"
           "print('v1,'+base64.b64encode(hmac.new(key,msg,hashlib.sha256)"
           ".digest()).decode())\n",
           SECRET, id, ts);
  char *argv[] = {"/usr/bin/python3", "-c", prog, body, NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  out[strcspn(out, "\n")] = '\0';
  assert_string_equal(out, sig);
  free(out);
  free(body);
}

static void test_restart_order_signatures(void **state) {
  (void)state;
  struct rx x = {0};
  cr_fake_http *srv = NULL;
  assert_int_equal(cr_fake_http_start(handler, &x, &srv), 0);
  uint16_t port = cr_fake_http_port(srv);
  char subs[1024];
  snprintf(subs, sizeof subs,
           "  - id: bulk\n    workflow: webhook_system_events\n"
           "    config: { system_event_type: synced, webhook_url: "
           "\"%s/in\", secret: \"" SECRET "\" }\n"
           "    delivery:\n"
           "      retry_schedule: [0s, 300ms, 300ms, 300ms, 300ms, 300ms, "
           "300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms, 300ms]\n"
           "      batch: { max_events: 100, max_wait: 50ms }\n",
           cr_fake_http_url(srv));
  struct env e;
  env_start(&e, subs);
  int64_t first = 0, last = 0, f2 = 0, last2 = 0;
  emit(&e, 450, &first, &last);
  assert_true(wait_all(&srv, first, last));
  /* The receiver goes away; events keep coming; it comes back. */
  cr_fake_http_stop(srv);
  emit(&e, 450, &f2, &last2);
  usleep(800 * 1000); /* a few refused attempts */
  assert_int_equal(cr_fake_http_start_port(handler, &x, port, &srv), 0);
  assert_true(wait_all(&srv, f2, last2));
  /* In order batch by batch; a batch sent again has the same webhook-id
   * and body; the count header matches. */
  int64_t prev_last = 0;
  int64_t ids[200];
  for (size_t i = 0; i < cr_fake_http_count(srv); i++) {
    const struct cr_fake_http_request *r = cr_fake_http_request_at(srv, i);
    size_t n = body_ids(r, ids, 200);
    assert_true(n > 0 && n <= 100);
    assert_int_equal(atol(cr_fake_http_header(r, "connrun-batch-count")), n);
    assert_int_equal(atoll(cr_fake_http_header(r, "connrun-batch-first-id")),
                     ids[0]);
    char want_id[80];
    snprintf(want_id, sizeof want_id, "bat_%lld_%lld", (long long)ids[0],
             (long long)ids[n - 1]);
    assert_string_equal(cr_fake_http_header(r, "webhook-id"), want_id);
    assert_true(ids[0] > prev_last); /* after the previous batch */
    for (size_t k = 1; k < n; k++)
      assert_true(ids[k] > ids[k - 1]);
    prev_last = ids[n - 1];
  }
  /* A 503: the same batch again, same webhook-id, same body. */
  size_t before = cr_fake_http_count(srv);
  x.fail_first = 1;
  int64_t f3 = 0, last3 = 0;
  emit(&e, 5, &f3, &last3);
  for (int i = 0; i < 100 && cr_fake_http_count(srv) < before + 2; i++)
    usleep(50 * 1000); /* the 503, then its retry 300 ms later */
  assert_true(cr_fake_http_count(srv) >= before + 2);
  const struct cr_fake_http_request *r1 = cr_fake_http_request_at(srv, before),
                                    *r2 = cr_fake_http_request_at(srv,
                                                                  before + 1);
  assert_string_equal(cr_fake_http_header(r1, "webhook-id"),
                      cr_fake_http_header(r2, "webhook-id"));
  assert_int_equal(r1->body_len, r2->body_len);
  assert_memory_equal(r1->body, r2->body, r1->body_len);
  /* The subscription's stats count the batches' events. */
  struct cr_sub_stats ss;
  memset(&ss, 0, sizeof ss);
  for (int i = 0; i < 100; i++) {
    cr_sub_stats_clear(&ss);
    assert_int_equal(cr_store_sub_stats(e.store, "bulk", &ss), 0);
    if (ss.delivered == 905)
      break;
    usleep(50 * 1000);
  }
  assert_int_equal(ss.delivered, 905); /* 450 + 450 + 5 */
  assert_int_equal(ss.dead, 0);
  assert_int_equal(ss.backlog, 0);
  cr_sub_stats_clear(&ss);
  verify_with_python(e.dir, cr_fake_http_request_at(srv, 0));
  verify_with_python(e.dir,
                     cr_fake_http_request_at(srv, cr_fake_http_count(srv) - 1));
  /* Each POST of the first server's life was one recorded attempt; the
   * refused ones too. */
  char sql[256], path[600];
  snprintf(path, sizeof path, "%s/connrun.db", e.data);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM delivery_attempts WHERE subscription_id = "
           "'bulk' AND http_status IS NULL AND last_event_id IS NOT NULL");
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_true(sqlite3_column_int(st, 0) >= 1); /* refused while down */
  sqlite3_finalize(st);
  sqlite3_close(db);
  env_finish(&e);
  cr_fake_http_stop(srv);
}

static long long db_count(struct env *e, const char *where) {
  char sql[512], path[600];
  snprintf(path, sizeof path, "%s/connrun.db", e->data);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM delivery_attempts WHERE %s",
           where);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_open(path, &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static int wait_db(struct env *e, const char *where, long long want) {
  for (int i = 0; i < 300; i++) {
    if (db_count(e, where) >= want)
      return 1;
    usleep(100 * 1000);
  }
  return 0;
}

static void test_413_halving(void **state) {
  (void)state;
  struct rx x = {.max_items = 10};
  struct env e;
  cr_fake_http *srv = start_case(&e, &x, "small",
                                 "{ batch: { max_events: 80, max_wait: 0s } }");
  int64_t first = 0, last = 0;
  emit(&e, 80, &first, &last);
  assert_true(wait_all(&srv, first, last));
  /* The first batch: 80 -> 40 -> 20 -> 10, each halving recorded. */
  assert_int_equal(db_count(&e, "error = '413: batch halved to 40 events'"), 1);
  assert_true(db_count(&e, "error = '413: batch halved to 10 events'") >= 1);
  assert_true(db_count(&e, "http_status = 204") >= 8); /* 80 in tens */
  env_finish(&e);
  cr_fake_http_stop(srv);
}

/* A receiver that takes nothing: halved down to one event, then dead. */
static void test_413_down_to_one(void **state) {
  (void)state;
  struct rx x = {.max_items = -1};
  struct env e;
  cr_fake_http *srv =
      start_case(&e, &x, "one", "{ batch: { max_events: 4, max_wait: 0s } }");
  int64_t first = 0, last = 0;
  emit(&e, 4, &first, &last);
  assert_true(wait_db(&e, "error = 'HTTP 413' AND event_count = 1", 1));
  assert_true(db_count(&e, "error = '413: batch halved to 2 events'") >= 1);
  assert_true(db_count(&e, "error = '413: batch halved to 1 events'") >= 1);
  /* Dead: the cursor moved past it and the next batch starts after it. */
  struct cr_sub_rec *rec = NULL;
  for (int i = 0; i < 100; i++) {
    cr_sub_rec_free(rec);
    rec = NULL;
    assert_int_equal(cr_store_sub_get(e.store, "one", &rec), 0);
    if (rec->cursor_event_id >= first)
      break;
    usleep(50 * 1000);
  }
  assert_true(rec->cursor_event_id >= first);
  cr_sub_rec_free(rec);
  struct cr_sub_stats st;
  memset(&st, 0, sizeof st);
  assert_int_equal(cr_store_sub_stats(e.store, "one", &st), 0);
  assert_true(st.dead >= 1);
  assert_int_equal(st.delivered, 0);
  cr_sub_stats_clear(&st);
  env_finish(&e);
  cr_fake_http_stop(srv);
}

static void test_template_failure(void **state) {
  (void)state;
  struct rx x = {0};
  cr_fake_http *srv = NULL;
  assert_int_equal(cr_fake_http_start(handler, &x, &srv), 0);
  char subs[1024];
  snprintf(subs, sizeof subs,
           "  - id: tpl\n    workflow: webhook_system_events\n"
           "    config:\n      system_event_type: synced\n"
           "      webhook_url: \"%s/t\"\n"
           "      json_template: 'if event.data.i == 3 then error \"boom\" "
           "else {n: event.data.i}'\n"
           "    delivery: { batch: { max_events: 10, max_wait: 0s, format: "
           "ndjson } }\n",
           cr_fake_http_url(srv));
  struct env e;
  env_start(&e, subs);
  int64_t first = 0, last = 0;
  emit(&e, 10, &first, &last);
  for (int i = 0; i < 300 && cr_fake_http_count(srv) == 0; i++)
    usleep(100 * 1000);
  assert_int_equal(cr_fake_http_count(srv), 1);
  const struct cr_fake_http_request *r = cr_fake_http_request_at(srv, 0);
  assert_string_equal(cr_fake_http_header(r, "content-type"),
                      "application/x-ndjson");
  assert_int_equal(items_in(r), 9);
  assert_null(strstr(r->body, "{\"n\":3}"));
  assert_non_null(strstr(r->body, "{\"n\":9}"));
  assert_string_equal(cr_fake_http_header(r, "connrun-batch-count"), "9");
  char where[200];
  snprintf(where, sizeof where,
           "event_id = %lld AND error LIKE 'json_template:%%boom%%'",
           (long long)(first + 3));
  assert_true(wait_db(&e, where, 1));
  env_finish(&e);
  cr_fake_http_stop(srv);
}

/* Replay of a batched subscription sends the same batches again (same
 * ranges, same webhook-ids), in order. */
static void test_replay(void **state) {
  (void)state;
  struct rx x = {0};
  struct env e;
  cr_fake_http *srv =
      start_case(&e, &x, "rp", "{ batch: { max_events: 10, max_wait: 0s } }");
  int64_t first = 0, last = 0;
  emit(&e, 30, &first, &last);
  assert_true(wait_all(&srv, first, last));
  for (int i = 0; i < 50 && cr_fake_http_count(srv) < 3; i++)
    usleep(50 * 1000);
  assert_int_equal(cr_fake_http_count(srv), 3);
  size_t n = 0;
  assert_int_equal(cr_store_outbox_replay(e.store, "rp", 0, &n), 0);
  assert_true(n >= 30);
  cr_batch_engine_kick(e.eng);
  for (int i = 0; i < 300 && cr_fake_http_count(srv) < 6; i++)
    usleep(50 * 1000);
  assert_int_equal(cr_fake_http_count(srv), 6);
  for (size_t i = 0; i < 3; i++)
    assert_string_equal(
        cr_fake_http_header(cr_fake_http_request_at(srv, i), "webhook-id"),
        cr_fake_http_header(cr_fake_http_request_at(srv, i + 3), "webhook-id"));
  env_finish(&e);
  cr_fake_http_stop(srv);
}

static void expect_error(const char *batch_yaml, const char *needle, int line) {
  char *dir = cr_test_mkdtemp("batchcfg");
  char yaml[1024];
  snprintf(yaml, sizeof yaml,
           "subscriptions:\n  - id: a\n    workflow: webhook_system_events\n"
           "    config: { webhook_url: \"http://127.0.0.1:1/x\" }\n"
           "    delivery:\n      batch: %s\n",
           batch_yaml);
  char *path = cr_test_write_file(dir, "c.yaml", yaml);
  cr_config *cfg = NULL;
  cr_diags dg = CR_DIAGS_INIT;
  assert_int_equal(cr_config_load(path, &cfg, &dg), CR_ECONFIG);
  cr_config_free(cfg);
  int found = 0;
  for (size_t i = 0; i < dg.count; i++)
    found |=
        strstr(dg.items[i].message, needle) != NULL && dg.items[i].line == line;
  for (size_t i = 0; !found && i < dg.count; i++)
    print_error("%d: %s\n", dg.items[i].line, dg.items[i].message);
  assert_true(found);
  cr_diags_free(&dg);
  free(path);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_config_errors(void **state) {
  (void)state;
  expect_error("{ max_events: 0 }", "max_events", 6);
  expect_error("{ format: xml }", "format", 6);
  expect_error("[1]", "batch", 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_errors),
      cmocka_unit_test(test_restart_order_signatures),
      cmocka_unit_test(test_413_halving),
      cmocka_unit_test(test_413_down_to_one),
      cmocka_unit_test(test_template_failure),
      cmocka_unit_test(test_replay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
