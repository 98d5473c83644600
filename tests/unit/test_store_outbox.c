/* test_store_outbox.c: the store interface's webhook outbox and what came
 * after it, on SQLite and (--pg) on PostgreSQL, on real files and a real
 * server: schema version 4 (enqueue through subscription filters, cursors,
 * due rows, attempts, failing streaks, disable and re-enable, replay,
 * stats, pruning against cursors, upgrades from 3 and to 8), allocation
 * failures, savepoints, cluster duties, transactions without the write
 * lock, migration from SQLite and PostgreSQL's connection loss and round
 * trips. The fixture is store_fixture.h; the rest of the store is
 * test_store.c and test_store_exec.c. */
#include "store_fixture.h"

/* ---- Version 4: the webhook outbox ----------------------------------------
 * Filters are the product documents' examples, built through sub_filter. */

#define T4 INT64_C(1800000000000)
#define DAY_MS INT64_C(86400000)

/* The canonical filter JSON of verbs / sources (JSON text or NULL),
 * cr__malloc'd. */
static char *filter_of(const char *const *verbs, size_t n,
                       const char *sources) {
  struct cr_config_subscription c = {0};
  c.event_types = (const char **)verbs;
  c.n_event_types = n;
  json_t *src = sources != NULL ? json_loads(sources, 0, NULL) : NULL;
  c.sources = src;
  cr_sub_filter *f = NULL;
  assert_int_equal(cr_sub_filter_from_config(&c, &f), 0);
  char *j = cr_sub_filter_to_json(f);
  assert_non_null(j);
  cr_sub_filter_free(f);
  json_decref(src);
  return j;
}

/* Creates or updates subscription id with filter (NULL = every event). */
static void put_sub(cr_store *s, const char *id, const char *filter,
                    const char *hash) {
  struct cr_sub_rec r = {0};
  r.id = (char *)id;
  r.workflow = "webhook_system_events";
  r.config_hash = (char *)hash;
  r.enabled = 1;
  r.filter_json = (char *)filter;
  assert_int_equal(cr_store_sub_upsert(s, &r, NULL), 0);
}

/* The three documents' subscriptions: "all" (no filter), "fail" (single
 * type failed), "works" (types created and failed, sources work: [w1]),
 * "anywork" (sources work: [] = every work). */
static void put_doc_subs(cr_store *s) {
  const char *fail[] = {"failed"};
  const char *multi[] = {"created", "failed"};
  char *jf = filter_of(fail, 1, NULL);
  char *jw = filter_of(multi, 2, "{\"work\":[\"w1\"]}");
  char *ja = filter_of(NULL, 0, "{\"work\":[]}");
  put_sub(s, "all", NULL, "h");
  put_sub(s, "fail", jf, "h");
  put_sub(s, "works", jw, "h");
  put_sub(s, "anywork", ja, "h");
  cr__free(jf);
  cr__free(jw);
  cr__free(ja);
}

static int64_t outbox_rows(cr_store *s, const char *sub) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM outbox WHERE subscription_id = '%s'", sub);
  return qint(s, sql);
}

static int64_t sub_cursor(cr_store *s, const char *id) {
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(s, id, &r), 0);
  int64_t c = r->cursor_event_id;
  cr_sub_rec_free(r);
  return c;
}

static void test_outbox_enqueue_filters(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T4);
  put_doc_subs(f->s);
  int64_t e1 = append(f->s, "work", "w1", "created", 0);
  int64_t e2 = append(f->s, "work", "w2", "failed", 0);
  append(f->s, "auth", "a1", "unhealthy", 0);
  int64_t e4 = append(f->s, "work", "w1", "failed", 0);
  size_t n = 99;
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  /* all: 4; fail: e2, e4; works: e1, e4; anywork: e1, e2, e4. */
  assert_int_equal(n, 4 + 2 + 2 + 3);
  assert_int_equal(outbox_rows(f->s, "all"), 4);
  assert_int_equal(outbox_rows(f->s, "fail"), 2);
  assert_int_equal(outbox_rows(f->s, "works"), 2);
  assert_int_equal(outbox_rows(f->s, "anywork"), 3);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM outbox WHERE "
                              "subscription_id = 'works' AND event_id IN "
                              "(SELECT id FROM events WHERE subject_id = "
                              "'w2' OR verb = 'unhealthy')"),
                   0);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM outbox WHERE status = 'pending' AND "
           "attempts = 0 AND next_attempt_at = %lld AND first_attempt_at IS "
           "NULL",
           (long long)T4);
  assert_int_equal(qint(f->s, sql), 11);
  /* Cursors moved to the last event; nothing is enqueued twice. */
  assert_int_equal(sub_cursor(f->s, "fail"), e4);
  assert_int_equal(sub_cursor(f->s, "works"), e4);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 0);
  int64_t e5 = append(f->s, "work", "w1", "created", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  assert_int_equal(outbox_rows(f->s, "works"), 3);
  assert_int_equal(outbox_rows(f->s, "fail"), 2);
  assert_int_equal(sub_cursor(f->s, "fail"), e5);
  /* max_events bounds the scan per subscription. */
  int64_t e6 = append(f->s, "work", "w2", "failed", 0);
  int64_t e7 = append(f->s, "work", "w2", "failed", 0);
  append(f->s, "work", "w2", "failed", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 2, &n), 0);
  assert_int_equal(n, 2 + 2 + 0 + 2); /* all, fail, works, anywork */
  assert_int_equal(sub_cursor(f->s, "works"), e7);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 2, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 2, &n), 0);
  assert_int_equal(n, 0);
  (void)e1;
  (void)e2;
  (void)e6;
  /* A filter that is not a filter is refused. */
  struct cr_sub_rec bad = {.id = "bad",
                           .workflow = "w",
                           .config_hash = "h",
                           .enabled = 1,
                           .filter_json = "{\"verbs\":\"failed\"}"};
  assert_int_equal(cr_store_sub_upsert(f->s, &bad, NULL), CR_EINVAL);
}

static void test_outbox_new_sub_gets_no_past(void **state) {
  struct fixture *f = *state;
  append(f->s, "work", "w1", "failed", 0);
  int64_t e2 = append(f->s, "work", "w1", "failed", 0);
  put_sub(f->s, "late", NULL, "h");
  assert_int_equal(sub_cursor(f->s, "late"), e2);
  size_t n = 9;
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 0);
  int64_t e3 = append(f->s, "work", "w1", "failed", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 1);
  /* An update does not move the cursor back or forward. */
  append(f->s, "work", "w1", "failed", 0);
  put_sub(f->s, "late", NULL, "h2");
  assert_int_equal(sub_cursor(f->s, "late"), e3);
  /* Deleted and re-created: starts at the newest event again. */
  assert_int_equal(cr_store_sub_delete(f->s, "late"), 0);
  put_sub(f->s, "late", NULL, "h2");
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 0);
}

/* Sets up subs "a" and "b" (every event) and 3 events at T4; returns the
 * first id (ids are consecutive). */
static int64_t two_subs_three_events(cr_store *s) {
  cr__clock_set_fake(T4);
  put_sub(s, "b", NULL, "h");
  put_sub(s, "a", NULL, "h");
  int64_t e1 = append(s, "work", "w1", "created", 0);
  assert_int_equal(append(s, "work", "w1", "failed", 0), e1 + 1);
  assert_int_equal(append(s, "auth", "a1", "healthy", 0), e1 + 2);
  assert_int_equal(cr_store_outbox_enqueue(s, 0, NULL), 0);
  return e1;
}

static int64_t failing_since(cr_store *s, const char *id) {
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(s, id, &r), 0);
  int64_t v = r->failing_since;
  cr_sub_rec_free(r);
  return v;
}

/* The event ids of rows, as "sub:offset" from e1, joined by spaces. */
static void due_ids(const struct cr_outbox_rec *d, size_t n, int64_t e1,
                    char *buf, size_t len) {
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s:%d", i ? " " : "",
             d[i].subscription_id, (int)(d[i].event_id - e1));
  }
}

static void test_outbox_due_after(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  put_sub(f->s, "c", NULL, "h"); /* enabled, nothing for it yet */
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  char ids[256];
  /* a after e1, b after e1 + 1: the rest, in subscription then id order. */
  struct cr_outbox_pos pos[] = {{"b", e1 + 1}, {"a", e1}, {"zz", 1}};
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos, 3, 0, &d, &n), 0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:1 a:2 b:2");
  cr_outbox_rec_free_list(d, n);
  /* The limit is shared; a subscription not in pos starts at its first. */
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos + 1, 1, 2, &d, &n),
                   0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:1 a:2");
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos + 1, 1, 4, &d, &n),
                   0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:1 a:2 b:0 b:1");
  cr_outbox_rec_free_list(d, n);
  /* Not due yet, delivered and disabled rows stay out, as in a full read. */
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1 + 1, "delivered", 200, 1, NULL, 0),
      0);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1 + 2, "failed", 503, 1,
                                          "HTTP 503", T4 + 5000),
                   0);
  assert_int_equal(cr_store_sub_disable(f->s, "b", "test"), 0);
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos, 3, 0, &d, &n), 0);
  assert_int_equal(n, 0);
  assert_null(d);
  assert_int_equal(
      cr_store_outbox_due_after(f->s, T4 + 5000, pos, 3, 0, &d, &n), 0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:2");
  assert_string_equal(d[0].status, "failed");
  cr_outbox_rec_free_list(d, n);
  /* No positions: the full read. */
  struct cr_outbox_rec *full = NULL;
  size_t nf = 0;
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, NULL, 0, 0, &d, &n), 0);
  assert_int_equal(cr_store_outbox_due(f->s, 0, 0, &full, &nf), 0);
  assert_int_equal(n, nf);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(d[i].event_id, full[i].event_id);
  cr_outbox_rec_free_list(d, n);
  cr_outbox_rec_free_list(full, nf);
  /* Bad arguments. */
  struct cr_outbox_pos bad = {NULL, 0};
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, &bad, 1, 0, &d, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, NULL, 1, 0, &d, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_outbox_due_after(f->s, -1, pos, 1, 0, &d, &n),
                   CR_EINVAL);
}

static void test_outbox_due_and_record(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_outbox_due(f->s, T4 - 1, 0, &d, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(cr_store_outbox_due(f->s, 0, 0, &d, &n), 0);
  assert_int_equal(n, 6);
  const char *subs[] = {"a", "a", "a", "b", "b", "b"};
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(d[i].subscription_id, subs[i]);
    assert_int_equal(d[i].event_id, e1 + (int64_t)(i % 3));
    assert_int_equal(d[i].event.id, d[i].event_id);
    assert_string_equal(d[i].status, "pending");
    assert_int_equal(d[i].first_attempt_at, 0);
    assert_int_equal(d[i].last_status, 0);
    assert_null(d[i].last_error);
  }
  assert_string_equal(d[1].event.verb, "failed");
  assert_string_equal(d[1].event.subject_id, "w1");
  assert_string_equal(d[1].event.data_json, "{\"k\":1}");
  assert_int_equal(d[2].event.seq, 1);
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(cr_store_outbox_due(f->s, T4, 2, &d, &n), 0);
  assert_int_equal(n, 2);
  cr_outbox_rec_free_list(d, n);
  int64_t at = -1;
  assert_int_equal(cr_store_outbox_next_due(f->s, &at), 0);
  assert_int_equal(at, T4);

  /* A failure: retried later, failing streak starts. */
  cr__clock_set_fake(T4 + 10);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1, "failed", 503, 40,
                                          "HTTP 503", T4 + 5000),
                   0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 10);
  cr__clock_set_fake(T4 + 20);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1, "failed", 0, 3000,
                                          "timed out", T4 + 9000),
                   0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 10); /* streak kept */
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 100, 0, &d, &n), 0);
  assert_int_equal(n, 5); /* a/e1 waits */
  assert_int_equal(d[0].event_id, e1 + 1);
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 9000, 1, &d, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(d[0].event_id, e1);
  assert_string_equal(d[0].status, "failed");
  assert_int_equal(d[0].attempts, 2);
  assert_int_equal(d[0].first_attempt_at, T4 + 10);
  assert_int_equal(d[0].next_attempt_at, T4 + 9000);
  assert_int_equal(d[0].last_status, 0);
  assert_string_equal(d[0].last_error, "timed out");
  cr_outbox_rec_free_list(d, n);
  /* Delivered: final, streak over. */
  cr__clock_set_fake(T4 + 9000);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "delivered", 200, 12, NULL, 0), 0);
  assert_int_equal(failing_since(f->s, "a"), 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts WHERE "
                              "subscription_id = 'a'"),
                   3);
  assert_int_equal(qint(f->s, "SELECT http_status IS NULL FROM "
                              "delivery_attempts WHERE latency_ms = 3000"),
                   1);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT status = 'delivered' AND attempts = 3 AND last_status = "
           "200 AND last_error IS NULL AND next_attempt_at IS NULL AND "
           "first_attempt_at = %lld FROM outbox WHERE subscription_id = 'a' "
           "AND event_id = %lld",
           (long long)(T4 + 10), (long long)e1);
  assert_int_equal(qint(f->s, sql), 1);
  /* Dead: final, starts a streak. */
  assert_int_equal(
      cr_store_outbox_record(f->s, "b", e1, "dead", 500, 1, "HTTP 500", 0), 0);
  assert_int_equal(failing_since(f->s, "b"), T4 + 9000);
  assert_int_equal(cr_store_outbox_due(f->s, INT64_C(0), 0, &d, &n), 0);
  assert_int_equal(n, 4);
  cr_outbox_rec_free_list(d, n);
  /* Errors. */
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1 + 99, "failed", 500, 1, NULL, 0),
      CR_ENOENT);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "gone", 500, 1, NULL, 0),
      CR_EINVAL);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "failed", 500, -1, NULL, 0),
      CR_EINVAL);
  assert_int_equal(cr_store_outbox_due(f->s, -1, 0, &d, &n), CR_EINVAL);
  /* Everything delivered: no timer. */
  assert_int_equal(
      cr__store_sqlite_exec(f->s, "UPDATE outbox SET status = 'delivered'"), 0);
  assert_int_equal(cr_store_outbox_next_due(f->s, &at), 0);
  assert_int_equal(at, 0);
}

/* The engine's batch: in order, one transaction, missing rows skipped, a bad
 * entry writes nothing; the failing streak follows the attempts in order. */
static void test_outbox_record_many(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  cr__clock_set_fake(T4 + 50);
  struct cr_outbox_attempt bad[] = {
      {"a", e1, "delivered", 200, 3, NULL, 0},
      {"a", e1 + 1, "lost", 200, 3, NULL, 0},
  };
  size_t rec = 99;
  assert_int_equal(cr_store_outbox_record_many(f->s, bad, 2, &rec), CR_EINVAL);
  assert_int_equal(rec, 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts"), 0);
  struct cr_outbox_attempt a[] = {
      {"a", e1, "delivered", 200, 3, NULL, 0},
      {"a", e1 + 99, "delivered", 200, 3, NULL, 0}, /* no such row */
      {"b", e1, "delivered", 200, 4, NULL, 0},
      {"b", e1 + 1, "failed", 503, 5, "HTTP 503", T4 + 5000},
      {"a", e1 + 1, "failed", 0, 6, "timed out", 0},
      {"a", e1 + 2, "delivered", 200, 7, NULL, 0},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, a, 6, &rec), 0);
  assert_int_equal(rec, 5);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts"), 5);
  assert_int_equal(failing_since(f->s, "a"), 0); /* delivered last */
  assert_int_equal(failing_since(f->s, "b"), T4 + 50);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT status = 'failed' AND next_attempt_at = %lld AND "
           "last_error = 'timed out' AND attempts = 1 FROM outbox WHERE "
           "subscription_id = 'a' AND event_id = %lld",
           (long long)(T4 + 50), (long long)(e1 + 1));
  assert_int_equal(qint(f->s, sql), 1); /* 0 = now */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM outbox WHERE status = 'delivered' AND "
           "event_id IN (%lld, %lld)",
           (long long)e1, (long long)(e1 + 2));
  assert_int_equal(qint(f->s, sql), 3);
  /* One row twice in a batch (PostgreSQL's set-based UPDATE would apply
   * one): both attempts count. */
  struct cr_outbox_attempt twice[] = {
      {"b", e1 + 2, "failed", 500, 1, "HTTP 500", T4 + 6000},
      {"b", e1 + 2, "delivered", 200, 1, NULL, 0},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, twice, 2, &rec), 0);
  assert_int_equal(rec, 2);
  snprintf(
      sql, sizeof sql,
      "SELECT attempts * 10 + CASE WHEN status = 'delivered' THEN 1 ELSE 0 "
      "END FROM outbox WHERE "
      "subscription_id = 'b' AND event_id = %lld",
      (long long)(e1 + 2));
  assert_int_equal(qint(f->s, sql), 21);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts"), 7);
  assert_int_equal(cr_store_outbox_record_many(f->s, NULL, 0, NULL), 0);
  assert_int_equal(cr_store_outbox_record_many(f->s, NULL, 1, NULL), CR_EINVAL);
}

/* A batch writes a subscription's failing streak only when its status
 * changes from the attempt before: the outcome is that of writing each. */
static void test_outbox_record_many_streaks(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  cr__clock_set_fake(T4 + 50);
  struct cr_outbox_attempt a[] = {
      {"a", e1, "failed", 503, 1, "HTTP 503", T4 + 5000},
      {"a", e1 + 1, "failed", 503, 1, "HTTP 503", T4 + 5000},
      {"a", e1 + 2, "delivered", 200, 1, NULL, 0},
      {"b", e1, "delivered", 200, 1, NULL, 0},
      {"b", e1 + 1, "dead", 400, 1, "HTTP 400", 0},
      {"b", e1 + 2, "dead", 400, 1, "HTTP 400", 0},
  };
  size_t rec = 0;
  assert_int_equal(cr_store_outbox_record_many(f->s, a, 6, &rec), 0);
  assert_int_equal(rec, 6);
  assert_int_equal(failing_since(f->s, "a"), 0);
  assert_int_equal(failing_since(f->s, "b"), T4 + 50);
  /* Interleaved: each subscription's own last status counts. */
  cr__clock_set_fake(T4 + 9000);
  struct cr_outbox_attempt b[] = {
      {"a", e1, "failed", 0, 1, "timed out", T4 + 20000},
      {"b", e1 + 1, "delivered", 200, 1, NULL, 0},
      {"a", e1 + 1, "failed", 0, 1, "timed out", T4 + 20000},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, b, 3, &rec), 0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 9000);
  assert_int_equal(failing_since(f->s, "b"), 0);
  /* The same status for another subscription is written for it too. */
  cr__clock_set_fake(T4 + 12000);
  struct cr_outbox_attempt c[] = {
      {"a", e1, "failed", 0, 1, "timed out", T4 + 30000},
      {"b", e1 + 2, "failed", 0, 1, "timed out", T4 + 30000},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, c, 2, &rec), 0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 9000);
  assert_int_equal(failing_since(f->s, "b"), T4 + 12000);
}

static void test_outbox_disable_and_reenable(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1, "failed", 410, 5,
                                          "HTTP 410", T4 + 1),
                   0);
  assert_int_equal(
      cr_store_sub_disable(f->s, "a", "410 Gone from http://x/hook"), 0);
  assert_int_equal(cr_store_sub_disable(f->s, "zz", NULL), CR_ENOENT);
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(f->s, "a", &r), 0);
  assert_int_equal(r->enabled, 0);
  assert_string_equal(r->disabled_reason, "410 Gone from http://x/hook");
  cr_sub_rec_free(r);
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 10, 0, &d, &n), 0);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(d[i].subscription_id, "b");
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(outbox_rows(f->s, "a"), 3); /* rows stay */
  /* Not enqueued into while disabled. */
  append(f->s, "work", "w1", "failed", 0);
  size_t q = 0;
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &q), 0);
  assert_int_equal(q, 1);
  /* The same definition again: still disabled. */
  put_sub(f->s, "a", NULL, "h");
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 10, 0, &d, &n), 0);
  assert_int_equal(n, 4);
  cr_outbox_rec_free_list(d, n);
  /* A changed definition re-enables it and ends the streak. */
  put_sub(f->s, "a", NULL, "h2");
  assert_int_equal(cr_store_sub_get(f->s, "a", &r), 0);
  assert_int_equal(r->enabled, 1);
  assert_null(r->disabled_reason);
  assert_int_equal(r->failing_since, 0);
  cr_sub_rec_free(r);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &q), 0);
  assert_int_equal(q, 1); /* the event of the disabled period */
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 10, 0, &d, &n), 0);
  assert_int_equal(n, 8);
  cr_outbox_rec_free_list(d, n);
}

static void test_outbox_replay(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T4);
  const char *fail[] = {"failed"};
  char *jf = filter_of(fail, 1, NULL);
  put_sub(f->s, "r", jf, "h");
  cr__free(jf);
  int64_t e1 = append(f->s, "work", "w1", "failed", T4 - 3000);
  int64_t e2 = append(f->s, "work", "w1", "created", T4 - 2000);
  int64_t e3 = append(f->s, "work", "w2", "failed", T4 - 1000);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "r", e1, "delivered", 200, 1, NULL, 0), 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "r", e3, "dead", 500, 1, "HTTP 500", 0), 0);
  /* e3's row was lost (e.g. pruned): replay inserts it again. */
  char sql[256];
  snprintf(sql, sizeof sql, "DELETE FROM outbox WHERE event_id = %lld",
           (long long)e3);
  assert_int_equal(cr__store_sqlite_exec(f->s, sql), 0);
  /* Not considered yet (after the cursor): not replayed. */
  int64_t e4 = append(f->s, "work", "w3", "failed", T4);
  cr__clock_set_fake(T4 + 50);
  size_t n = 0;
  assert_int_equal(cr_store_outbox_replay(f->s, "r", T4 - 5000, &n), 0);
  assert_int_equal(n, 2);
  struct cr_outbox_rec *d = NULL;
  size_t nd = 0;
  assert_int_equal(cr_store_outbox_due(f->s, 0, 0, &d, &nd), 0);
  assert_int_equal(nd, 2);
  assert_int_equal(d[0].event_id, e1); /* same ids */
  assert_int_equal(d[1].event_id, e3);
  for (size_t i = 0; i < nd; i++) {
    assert_string_equal(d[i].status, "pending");
    assert_int_equal(d[i].attempts, 0);
    assert_int_equal(d[i].first_attempt_at, 0);
    assert_int_equal(d[i].next_attempt_at, T4 + 50);
    assert_int_equal(d[i].last_status, 0);
  }
  cr_outbox_rec_free_list(d, nd);
  /* since_ms bounds it. */
  assert_int_equal(cr_store_outbox_replay(f->s, "r", T4 - 1500, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(cr_store_outbox_replay(f->s, "nope", 0, &n), CR_ENOENT);
  assert_int_equal(cr_store_outbox_replay(f->s, "r", -1, &n), CR_EINVAL);
  (void)e2;
  (void)e4;
}

static void test_sub_stats(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  cr__clock_set_fake(T4 + 100);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "failed", 502, 5, "HTTP 502", 0),
      0);
  cr__clock_set_fake(T4 + DAY_MS + 200); /* the first attempt is > 24 h old */
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "delivered", 204, 5, NULL, 0), 0);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1 + 1, "dead", 0, 5,
                                          "connection refused", 0),
                   0);
  struct cr_sub_stats st;
  assert_int_equal(cr_store_sub_stats(f->s, "a", &st), 0);
  assert_int_equal(st.backlog, 1);
  assert_int_equal(st.delivered, 1);
  assert_int_equal(st.dead, 1);
  assert_int_equal(st.attempts_24h, 2);
  assert_int_equal(st.ok_24h, 1);
  assert_int_equal(st.last_attempt_at, T4 + DAY_MS + 200);
  assert_int_equal(st.last_status, 0);
  assert_string_equal(st.last_error, "connection refused");
  cr_sub_stats_clear(&st);
  assert_null(st.last_error);
  assert_int_equal(cr_store_sub_stats(f->s, "b", &st), 0);
  assert_int_equal(st.backlog, 3);
  assert_int_equal(st.attempts_24h, 0);
  assert_int_equal(st.last_attempt_at, 0);
  assert_null(st.last_error);
  cr_sub_stats_clear(&st);
  assert_int_equal(cr_store_sub_stats(f->s, "none", &st), CR_ENOENT);
  assert_int_equal(cr_store_sub_stats(f->s, NULL, &st), CR_EINVAL);
}

static void test_prune_keeps_owed_events(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T4);
  put_sub(f->s, "s", NULL, "h");
  int64_t e1 = append(f->s, "work", "w1", "failed", 100);
  append(f->s, "work", "w1", "failed", 200);
  int64_t deleted = -1;
  /* Not enqueued yet: kept. */
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  /* Enqueued, not delivered: kept. */
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "s", e1, "delivered", 200, 1, NULL, 0), 0);
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 1);
  assert_int_equal(count_events(f->s), 1);
  assert_int_equal(outbox_rows(f->s, "s"), 1);
  /* A disabled subscription holds nothing back. */
  append(f->s, "work", "w1", "failed", 300);
  assert_int_equal(cr_store_sub_disable(f->s, "s", "test"), 0);
  assert_int_equal(
      cr__store_sqlite_exec(f->s, "UPDATE outbox SET status = 'dead'"), 0);
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 2);
  assert_int_equal(outbox_rows(f->s, "s"), 0);
}

/* v8: attempts keep their rows, lose the foreign key and its index, and go
 * with their subscription and with age. */
static void test_upgrade_attempts_v8(void **state) {
  struct fixture *f = *state;
  char path[4096], err[256] = "";
  cr_store *s = open_old(f, "v7", 7, path, sizeof path);
  /* In v7's columns (today's statements write columns v7 lacks). */
  assert_int_equal(
      cr__store_sqlite_exec(
          s, "INSERT INTO subscriptions (id, workflow, config_hash, enabled, "
             "created_at, updated_at) VALUES ('a', 'webhook_system_events', "
             "'h', 1, 1, 1), ('b', 'webhook_system_events', 'h', 1, 1, 1);"),
      0);
  int64_t e1 = append(s, "work", "w1", "failed", 100);
  char sql[1024];
  snprintf(sql, sizeof sql,
           "INSERT INTO outbox (subscription_id, event_id, status) VALUES "
           "('a', %lld, 'delivered'), ('b', %lld, 'delivered');"
           "INSERT INTO delivery_attempts (subscription_id, event_id, at, "
           "http_status, latency_ms, error) VALUES ('a', %lld, 150, 503, 7, "
           "'HTTP 503'), ('a', %lld, 5000, 200, 3, NULL), "
           "('b', %lld, 160, 200, 2, NULL);",
           (long long)e1, (long long)e1, (long long)e1, (long long)e1,
           (long long)e1);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
  cr_store_close(s);
  assert_int_equal(cr__store_sqlite_open(path, &s, err, sizeof err), 0);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts WHERE "
                           "subscription_id = 'a' AND error = 'HTTP 503' "
                           "AND latency_ms = 7 AND at = 150"),
                   1);
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE name = "
                           "'delivery_attempts_by_outbox'"),
                   0);
  assert_int_equal(qint(s, "SELECT count(*) FROM pragma_foreign_key_list("
                           "'delivery_attempts')"),
                   0);
  /* Age: the prune's cutoff takes the old attempts, keeps the newer. */
  assert_int_equal(cr_store_event_prune(s, 1000, NULL), 0);
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts"), 1);
  /* The subscription: its attempts go with it. */
  snprintf(sql, sizeof sql,
           "INSERT INTO delivery_attempts (subscription_id, event_id, at) "
           "VALUES ('b', %lld, 6000)",
           (long long)e1);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
  assert_int_equal(cr_store_sub_delete(s, "a"), 0);
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts WHERE "
                           "subscription_id = 'a'"),
                   0);
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts WHERE "
                           "subscription_id = 'b'"),
                   1);
  cr_store_close(s);
}

static void test_upgrade_from_version_3(void **state) {
  struct fixture *f = *state;
  char path[4096], err[256] = "";
  cr_store *s = open_old(f, "v3", 3, path, sizeof path);
  int64_t e1 = append(s, "work", "w1", "failed", 100);
  int64_t e2 = append(s, "work", "w1", "failed", 200);
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO subscriptions (id, workflow, config_hash, enabled, "
           "created_at, updated_at) VALUES ('old', 'wf', 'h', 1, 1, 1);"
           "INSERT INTO outbox (subscription_id, event_id, status) VALUES "
           "('old', %lld, 'pending');",
           (long long)e1);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_outbox_due(s, 0, 0, &d, &n), CR_ESTORE);
  cr_store_close(s);
  assert_int_equal(cr__store_sqlite_open(path, &s, err, sizeof err), 0);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  /* v5: the claim's "no leased execution of this work" check reads a
   * partial index, not the work's whole history. */
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE type = "
                           "'index' AND name IN ('executions_leased_by_work',"
                           "'executions_created')"),
                   2);
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(s, "old", &r), 0);
  assert_string_equal(r->config_hash, "h");
  assert_null(r->filter_json);
  assert_int_equal(r->cursor_event_id, e2); /* no past deliveries */
  assert_int_equal(r->failing_since, 0);
  cr_sub_rec_free(r);
  assert_int_equal(cr_store_outbox_due(s, 0, 0, &d, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(d[0].event_id, e1);
  assert_int_equal(d[0].first_attempt_at, 0);
  cr_outbox_rec_free_list(d, n);
  int64_t e3 = append(s, "work", "w1", "failed", 300);
  size_t q = 0;
  assert_int_equal(cr_store_outbox_enqueue(s, 0, &q), 0);
  assert_int_equal(q, 1);
  assert_int_equal(sub_cursor(s, "old"), e3);
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE type = "
                           "'index' AND name = 'outbox_undelivered'"),
                   1);
  cr_store_close(s);
}

/* One round of outbox calls for the allocation failure loop. */
static int outbox_alloc_round(void *arg) {
  cr_store *s = arg;
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  struct cr_sub_stats st;
  int rc = cr_store_outbox_enqueue(s, 0, NULL);
  if (rc == 0)
    rc = cr_store_outbox_due(s, 0, 0, &d, &n);
  cr_outbox_rec_free_list(d, n);
  if (rc == 0)
    rc = cr_store_outbox_replay(s, "works", 0, NULL);
  if (rc == 0)
    rc = cr_store_sub_stats(s, "fail", &st);
  if (rc == 0)
    cr_sub_stats_clear(&st);
  return rc;
}

static void test_outbox_allocation_failures(void **state) {
  struct fixture *f = *state;
  put_doc_subs(f->s);
  int64_t e1 = append(f->s, "work", "w1", "failed", 0);
  append(f->s, "work", "w2", "created", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "fail", e1, "failed", 500, 1, "HTTP 500", 0),
      0);
  append(f->s, "work", "w1", "created", 0);
  long n = cr_test_alloc_rounds(outbox_alloc_round, f->s, 1000);
  assert_true(n > 5);
  assert_true(n < 1000);
  assert_int_equal(outbox_rows(f->s, "works"), 2);
}

/* ---- Savepoints ---------------------------------------------------------- */

/* 1 when authorization id is stored. */
static int has_auth(cr_store *s, const char *id) {
  struct cr_auth_rec *a = NULL;
  int rc = cr_store_auth_get(s, id, &a);
  assert_true(rc == 0 || rc == CR_ENOENT);
  cr_auth_rec_free(a);
  return rc == 0;
}

/* A failed savepoint undoes only its own writes; the outer commit keeps the
 * rest, also what later savepoints wrote. */
static void test_savepoint_undoes_only_its_writes(void **state) {
  struct fixture *f = *state;
  struct cr_auth_rec a1 = auth("a1", "x", "h"), a2 = auth("a2", "x", "h"),
                     a3 = auth("a3", "x", "h");
  struct cr_event_rec e = {
      .subject_type = "authorization", .subject_id = "a2", .verb = "created"};
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a1, NULL), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a2, NULL), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_true(has_auth(f->s, "a2")); /* visible inside */
  assert_int_equal(cr_store_savepoint_end(f->s, CR_EIO), CR_EIO);
  assert_false(has_auth(f->s, "a2"));
  assert_true(has_auth(f->s, "a1"));
  /* A failed call inside: its error and message come back. */
  struct cr_work_rec bad = work("w1", "no-such-auth", "h");
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a3, NULL), 0);
  int rc = cr_store_work_upsert(f->s, &bad, NULL);
  assert_int_equal(rc, CR_EINVAL);
  assert_int_equal(cr_store_savepoint_end(f->s, rc), CR_EINVAL);
  assert_string_not_equal(cr_store_last_error(f->s), "");
  assert_false(has_auth(f->s, "a3"));
  /* A kept one. */
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a3, NULL), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  /* Nothing is visible to another connection before the commit. */
  cr_store *s2 = NULL;
  char err[256];
  assert_int_equal(cr_store_open(f->where, &s2, err, sizeof err), 0);
  assert_false(has_auth(s2, "a1"));
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_true(has_auth(s2, "a1"));
  assert_false(has_auth(s2, "a2"));
  assert_true(has_auth(s2, "a3"));
  assert_int_equal(count_events(s2), 0);
  cr_store_close(s2);
}

/* An inner rollback inside a savepoint dooms the transaction only until the
 * savepoint is undone; the outer transaction then commits. */
static void test_savepoint_restores_doomed(void **state) {
  struct fixture *f = *state;
  struct cr_event_rec e = {
      .subject_type = "authorization", .subject_id = "a1", .verb = "created"};
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), CR_ECANCELED);
  assert_int_equal(cr_store_savepoint_end(f->s, CR_ECANCELED), CR_ECANCELED);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(count_events(f->s), 2);

  /* Ended as kept (rc 0) after a rollback inside: the savepoint's writes
   * are gone anyway, it says so, and the transaction commits the rest. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ECANCELED);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(count_events(f->s), 4);

  /* A doomed transaction stays doomed: no savepoint in it. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), CR_ECANCELED);
  assert_int_equal(cr_store_commit(f->s), CR_ECANCELED);
  assert_int_equal(count_events(f->s), 4);
}

/* Misuse: outside a transaction, twice, unbalanced, ended by the outer
 * transaction's end. */
static void test_savepoint_misuse(void **state) {
  struct fixture *f = *state;
  struct cr_auth_rec a1 = auth("a1", "x", "h");
  struct cr_event_rec e = {
      .subject_type = "authorization", .subject_id = "a1", .verb = "created"};
  assert_int_equal(cr_store_savepoint(NULL), CR_EINVAL);
  assert_int_equal(cr_store_savepoint_end(NULL, 0), CR_EINVAL);
  assert_int_equal(cr_store_savepoint(f->s), CR_ESTATE);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), CR_ESTATE); /* no nesting */
  assert_int_equal(cr_store_auth_upsert(f->s, &a1, NULL), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_true(has_auth(f->s, "a1"));

  /* The outer rollback ends an open savepoint with everything. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(count_events(f->s), 0);

  /* A begin left open inside: refused, and the transaction is doomed. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0); /* usable again */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_commit(f->s), 0); /* inner */
  assert_int_equal(cr_store_commit(f->s), CR_ECANCELED);
  assert_int_equal(count_events(f->s), 0);
}

/* Duties are leases: one holder at a time, renewed by it, taken over only
 * after they expire (or are released), epoch counting holders. */
static void test_cluster_duties(void **state) {
  struct fixture *f = *state;
  int held = -1;
  struct cr_duty_rec prev;
  cr__clock_set_fake(10000);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "a", 5000, &held, &prev), 0);
  assert_int_equal(held, 1);
  assert_null(prev.name);
  cr__clock_set_fake(12000);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "b", 5000, &held, &prev), 0);
  assert_int_equal(held, 0);
  assert_string_equal(prev.holder, "a");
  cr_duty_rec_clear(&prev);
  /* a renews: its lease moves on, since and epoch stay. */
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "a", 5000, &held, NULL), 0);
  assert_int_equal(held, 1);
  cr__clock_set_fake(16999);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "b", 5000, &held, NULL), 0);
  assert_int_equal(held, 0);
  cr__clock_set_fake(17000); /* a's lease (12000 + 5000) is over */
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "b", 5000, &held, &prev), 0);
  assert_int_equal(held, 1);
  assert_string_equal(prev.holder, "a");
  assert_int_equal(prev.since, 10000);
  assert_int_equal(prev.epoch, 1);
  cr_duty_rec_clear(&prev);
  /* Released: a takes it at once. */
  assert_int_equal(cr_store_duty_release(f->s, "scheduler", "a"),
                   0); /* no-op */
  assert_int_equal(cr_store_duty_release(f->s, "scheduler", "b"), 0);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "a", 5000, &held, NULL), 0);
  assert_int_equal(held, 1);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "alerts", "b", 5000, &held, NULL), 0);
  struct cr_duty_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_duty_list(f->s, &d, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(d[0].name, "alerts");
  assert_string_equal(d[1].holder, "a");
  assert_int_equal(d[1].since, 17000);
  assert_int_equal(d[1].epoch, 3);
  cr_duty_rec_free_list(d, n);
  assert_int_equal(cr_store_duty_acquire(f->s, "x", "a", 0, &held, NULL),
                   CR_EINVAL);
  /* Instances: heartbeats, and those unseen for a day forgotten. */
  assert_int_equal(cr_store_instance_beat(f->s, "a", "{\"pid\": 1}", 10000), 0);
  cr__clock_set_fake(17000 + INT64_C(86400) * 1000 + 1);
  assert_int_equal(cr_store_instance_beat(f->s, "b", "{}", 17000), 0);
  struct cr_instance_rec *in = NULL;
  assert_int_equal(cr_store_instance_list(f->s, &in, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(in[0].id, "b");
  assert_int_equal(in[0].started_at, 17000);
  cr_instance_rec_free_list(in, n);
  assert_int_equal(cr_store_instance_beat(f->s, "c", "not json", 1),
                   CR_EINVAL); /* a constraint */
  cr__clock_set_fake(0);
}

/* --pg: a SQLite installation copied into PostgreSQL with `connrun store
 * migrate` (the binary), verified; ids and per-subject sequences go on
 * after the copied ones; a second migrate into the now full target is
 * refused and changes nothing; the SQLite store is not a target. */
static void test_migrate_from_sqlite(void **state) {
  struct fixture *f = *state;
  char *dir = cr_test_mkdtemp("migrate"), err[256] = "";
  cr_store *lite = NULL;
  assert_int_equal(cr_store_open(dir, &lite, err, sizeof err), 0);
  put_work(lite, "a1", "w1");
  int64_t x = new_exec(lite, "w1");
  assert_int_equal(
      cr_store_exec_transition(lite, x, 0, "cancelled", "test", NULL, NULL), 0);
  put_sub(lite, "s1", NULL, "h");
  int64_t last = 0;
  for (int i = 0; i < 50; i++)
    last =
        append(lite, i % 2 ? "work" : "auth", i % 3 ? "w1" : "a1", "synced", 0);
  assert_int_equal(cr_store_outbox_enqueue(lite, 0, NULL), 0);
  assert_int_equal(
      cr_store_auth_credentials_set(lite, "a1", "h", "{\"token\":\"t\"}"), 0);
  assert_int_equal(cr_store_metrics_add(lite, "a1", 7200000, 5, 1), 0);
  int64_t ver = 0;
  assert_int_equal(
      cr_store_sync_state_commit(lite, "w1", "{\"c\":3}", 9, x, "n", &ver), 0);
  struct cr_store_counts before;
  assert_int_equal(cr_store_counts(lite, &before), 0);
  cr_store_close(lite);

  /* The fixture's PostgreSQL store is empty: migrate into it. */
  char db[4300];
  snprintf(db, sizeof db, "%s/%s", dir, CR_STORE_DB_NAME);
  char *argv[] = {CR_CONNRUN_BIN, "store",  "migrate", "--from", db,
                  "--to",         f->where, "--json",  NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "\"verified\": true"));
  free(out);
  struct cr_store_counts after;
  assert_int_equal(cr_store_counts(f->s, &after), 0);
  assert_int_equal(after.events, before.events);
  assert_int_equal(after.executions, before.executions);
  assert_int_equal(after.outbox, before.outbox);
  assert_int_equal(after.sync_states, before.sync_states);
  char *cred = NULL;
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h", &cred), 0);
  assert_string_equal(cred, "{\"token\":\"t\"}");
  cr__free(cred);
  /* Ids and sequences continue. */
  int64_t next = append(f->s, "work", "w1", "synced", 0);
  assert_int_equal(next, last + 1);
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  struct cr_event_filter flt = {.after_id = last, .limit = 10};
  assert_int_equal(cr_store_event_query(f->s, &flt, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ev[0].seq, 17 + 1); /* w1's work events: i odd, i%3 */
  cr_event_rec_free_list(ev, n);
  assert_true(new_exec(f->s, "w1") > x);

  /* Again: refused, nothing changed. */
  assert_int_not_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "not empty"));
  free(out);
  struct cr_store_counts again;
  assert_int_equal(cr_store_counts(f->s, &again), 0);
  assert_int_equal(again.events, after.events + 1);
  /* Only PostgreSQL is a target. */
  cr_store *l2 = NULL, *l3 = NULL;
  assert_int_equal(cr_store_open(dir, &l2, err, sizeof err), 0);
  assert_int_equal(cr_store_open_url("sqlite::memory:", &l3, err, sizeof err),
                   0);
  assert_int_equal(cr_store_copy(l2, l3, NULL, err, sizeof err), CR_EINVAL);
  cr_store_close(l2);
  cr_store_close(l3);
  cr_test_rmtree(dir);
  free(dir);
}

/* --pg: the server restarted under an open store. A read is run again on
 * a new connection; so is a transaction that had sent nothing yet; one
 * that lost its connection fails saying so; the next lone write works;
 * each is counted, never silent. */
static void test_pg_connection_lost(void **state) {
  struct fixture *f = *state;
  int64_t id = 0;
  struct cr_store_conn_counters c0, c1, c2;
  assert_int_equal(cr_store_event_last_id(f->s, &id), 0); /* connected */
  cr_store_conn_counters(&c0);
  cr_pgserver_halt(&g_pg);
  assert_int_equal(cr_pgserver_restart(&g_pg), 0);
  assert_int_equal(cr_store_event_last_id(f->s, &id), 0);
  cr_store_conn_counters(&c1);
  assert_true(c1.reconnects > c0.reconnects);
  assert_true(c1.retries > c0.retries);
  assert_true(c1.lost_statements > c0.lost_statements);

  /* A transaction that has sent nothing yet (its BEGIN waits for its
   * first statement) opens on a new connection. */
  json_t *data = json_object();
  int64_t before = 0;
  assert_int_equal(cr_store_event_last_id(f->s, &before), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  cr_pgserver_halt(&g_pg);
  assert_int_equal(cr_pgserver_restart(&g_pg), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", data, &id), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_true(id > before);
  cr_store_conn_counters(&c1);

  /* One that has reached the server fails saying so. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_last_id(f->s, &before), 0);
  cr_pgserver_halt(&g_pg);
  assert_int_equal(cr_pgserver_restart(&g_pg), 0);
  int rc = cr_event_emit(f->s, "work", "w", "synced", "test", data, &id);
  if (rc == 0)
    rc = cr_store_commit(f->s);
  assert_int_not_equal(rc, 0);
  char why[512];
  snprintf(why, sizeof why, "%s", cr_store_last_error(f->s));
  cr_store_rollback(f->s); /* when the emit failed; harmless otherwise */
  if (strstr(why, "lost") == NULL)
    fail_msg("rc %d: %s", rc, why);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", data, &id), 0);
  json_decref(data);
  cr_store_conn_counters(&c2);
  assert_true(c2.lost_statements > c1.lost_statements);
  assert_true(c2.reconnects > c1.reconnects);
}

/* --pg: a transaction's BEGIN, SAVEPOINT, RELEASE and NOTIFY travel with
 * the next statement. A write inside a caller's transaction and savepoint
 * takes no more round trips than alone (the savepoint and release add
 * none), one
 * that ran nothing takes none, and what was written is committed. */
static void test_pg_round_trips(void **state) {
  struct fixture *f = *state;
  struct cr_store_conn_counters a, b, c, d;
  int64_t id1 = 0, id2 = 0, last = 0;
  assert_int_equal(cr_store_begin(f->s), 0); /* prepares the statements */
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id1), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id1), 0);
  cr_store_conn_counters(&a);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id1), 0);
  cr_store_conn_counters(&b);
  uint64_t alone = b.round_trips - a.round_trips;
  assert_true(alone >= 2); /* at least the statement and its COMMIT */

  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id2), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  cr_store_conn_counters(&c);
  /* the INSERT with the BEGIN, lock and SAVEPOINT before it; the COMMIT
   * with the NOTIFY (alone, the NOTIFY runs after the COMMIT) */
  assert_int_equal(c.round_trips - b.round_trips, 2);
  assert_true(c.round_trips - b.round_trips <= alone);
  assert_true(c.deferred - b.deferred >= 4); /* BEGIN, SAVEPOINT, RELEASE,
                                                NOTIFY */

  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  cr_store_conn_counters(&d);
  assert_int_equal(d.round_trips, c.round_trips);

  assert_true(id2 > id1);
  assert_int_equal(cr_store_event_last_id(f->s, &last), 0);
  assert_int_equal(last, id2);
}

/* The holder of duty name, or "" (into buf). */
static const char *duty_holder(cr_store *s, const char *name, char *buf,
                               size_t len) {
  struct cr_duty_rec *d = NULL;
  size_t n = 0;
  buf[0] = '\0';
  assert_int_equal(cr_store_duty_list(s, &d, &n), 0);
  for (size_t i = 0; i < n; i++)
    if (strcmp(d[i].name, name) == 0)
      snprintf(buf, len, "%s", d[i].holder);
  cr_duty_rec_free_list(d, n);
  return buf;
}

/* cr_store_begin_rows: its writes commit, an event in it is refused (and
 * only that call fails), inside a cr_store_begin it is a level of that
 * transaction, and once it ends events are written again. */
static void test_begin_rows(void **state) {
  struct fixture *f = *state;
  char who[64];
  int held = 0;
  int64_t id = 0, last = -1;
  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "i1", 5000, &held, NULL), 0);
  assert_true(held);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id), CR_ESTATE);
  assert_non_null(strstr(cr_store_last_error(f->s), "cr_store_begin"));
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_string_equal(duty_holder(f->s, "scheduler", who, sizeof who), "i1");
  assert_int_equal(cr_store_event_last_id(f->s, &last), 0);
  assert_int_equal(last, 0);

  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(cr_store_commit(f->s), 0);

  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id), 0);
  assert_int_equal(cr_store_event_last_id(f->s, &last), 0);
  assert_int_equal(last, id);
  assert_true(id > 0);
}

/* PostgreSQL: a cr_store_begin_rows transaction writes and commits while
 * another connection holds the store's write lock (taken by its event);
 * a cr_store_begin one would wait for it. */
static void test_pg_rows_without_write_lock(void **state) {
  struct fixture *f = *state;
  cr_store *other = NULL;
  char err[256], who[64];
  int held = 0;
  int64_t id = 0;
  assert_int_equal(cr_store_open(f->where, &other, err, sizeof err), 0);
  assert_int_equal(cr_store_begin(other), 0);
  assert_int_equal(
      cr_event_emit(other, "work", "w", "synced", "test", NULL, &id), 0);
  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "i1", 5000, &held, NULL), 0);
  assert_true(held);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_string_equal(duty_holder(f->s, "scheduler", who, sizeof who), "i1");
  assert_int_equal(cr_store_commit(other), 0);
  cr_store_close(other);
}

/* Markers of the SQLite-only tests. */
int main(int argc, char **argv) {
  struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define S(name) cmocka_unit_test_setup_teardown(name, setup_lite, teardown)
#define P(name) cmocka_unit_test_setup_teardown(name, setup_pg, teardown)
      T(test_outbox_enqueue_filters),
      T(test_outbox_new_sub_gets_no_past),
      T(test_outbox_due_and_record),
      T(test_outbox_due_after),
      S(test_upgrade_attempts_v8),
      T(test_outbox_record_many),
      T(test_outbox_record_many_streaks),
      T(test_outbox_disable_and_reenable),
      T(test_outbox_replay),
      T(test_sub_stats),
      T(test_prune_keeps_owed_events),
      S(test_upgrade_from_version_3),
      S(test_outbox_allocation_failures),
      T(test_savepoint_undoes_only_its_writes),
      T(test_savepoint_restores_doomed),
      T(test_savepoint_misuse),
      T(test_cluster_duties),
      T(test_begin_rows),
      P(test_migrate_from_sqlite),
      P(test_pg_connection_lost),
      P(test_pg_round_trips),
      P(test_pg_rows_without_write_lock),
#undef T
#undef S
#undef P
  };
  return run_store_group(argc, argv, "test_store_outbox",
                         "test_store_outbox_pg", tests,
                         sizeof tests / sizeof tests[0]);
}
