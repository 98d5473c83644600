/* test_store_exec.c: the store interface's schema version 3 on SQLite and
 * (--pg) on PostgreSQL: versioned sync state, execution retries
 * (not_before) and runner release, open executions of a work, a work's
 * first run, rotated credentials, and allocation failures at version 3.
 * The fixture is store_fixture.h; the rest of the store is test_store.c
 * and test_store_outbox.c. */
#include "store_fixture.h"

/* ---- Version 3: sync state, retries, first runs, credentials -------------
 */

#define T0 INT64_C(1700000000000)

/* Claims up to slots "stripe" executions for runner; returns the count and
 * the claims in *out (freed by the caller) when out is given. */
static size_t claim_for(cr_store *s, const char *runner, size_t slots,
                        struct cr_exec_claim **out) {
  const char *provs[] = {"stripe"};
  struct cr_exec_claim *c = NULL;
  size_t n = 99;
  assert_int_equal(
      cr_store_exec_claim(s, runner, provs, 1, slots, 30000, &c, &n), 0);
  assert_true(n <= slots);
  if (out != NULL)
    *out = c;
  else
    cr_exec_claim_free_list(c, n);
  return n;
}

/* Every stored transition of execution id is legal, chains from the
 * previous one, and the last one ends in the current state. Returns how
 * many there are. */
static size_t check_transitions(cr_store *s, int64_t id) {
  struct cr_exec_transition_rec *t = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_transitions(s, id, &t, &n), 0);
  assert_true(n >= 1);
  assert_null(t[0].from_state);
  assert_string_equal(t[0].to_state, "created");
  for (size_t i = 1; i < n; i++) {
    assert_string_equal(t[i].from_state, t[i - 1].to_state);
    assert_true(cr_exec_transition_allowed(t[i].from_state, t[i].to_state));
  }
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(s, id, &r), 0);
  assert_string_equal(r.state, t[n - 1].to_state);
  cr_exec_rec_clear(&r);
  cr_exec_transition_free_list(t, n);
  return n;
}

static void test_sync_state_versions(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  put_work(f->s, "a1", "w2");
  struct cr_sync_state_rec r;
  assert_int_equal(cr_store_sync_state_latest(f->s, "w1", &r), CR_ENOENT);
  int64_t e1 = new_exec(f->s, "w1");
  /* Versions count 1, 2, 3... per work. */
  const char *states[] = {"{\"cursor\":1}", "{\"cursor\":2}", NULL,
                          "{\"cursor\":4}"};
  const int64_t recs[] = {10, 5, 0, 7};
  for (int i = 0; i < 4; i++) {
    cr__clock_set_fake(T0 + i * 1000);
    int64_t v = 0;
    assert_int_equal(cr_store_sync_state_commit(
                         f->s, "w1", states[i], recs[i], i == 2 ? 0 : e1,
                         i == 2 ? "set by operator: reset" : NULL, &v),
                     0);
    assert_int_equal(v, i + 1);
  }
  int64_t v2 = 0;
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w2", "[]", 1, 0, NULL, &v2), 0);
  assert_int_equal(v2, 1);
  assert_int_equal(cr_store_sync_state_latest(f->s, "w1", &r), 0);
  assert_int_equal(r.version, 4);
  assert_string_equal(r.work_id, "w1");
  assert_string_equal(r.state_json, "{\"cursor\":4}");
  assert_int_equal(r.records, 7);
  assert_int_equal(r.committed_at, T0 + 3000);
  assert_int_equal(r.execution_id, e1);
  assert_null(r.note);
  cr_sync_state_rec_clear(&r);
  assert_null(r.work_id);
  assert_int_equal(cr_store_sync_state_get(f->s, "w1", 3, &r), 0);
  assert_null(r.state_json);
  assert_int_equal(r.execution_id, 0);
  assert_string_equal(r.note, "set by operator: reset");
  cr_sync_state_rec_clear(&r);
  assert_int_equal(cr_store_sync_state_get(f->s, "w1", 5, &r), CR_ENOENT);
  assert_int_equal(cr_store_sync_state_get(f->s, "w1", 0, &r), CR_ENOENT);
  assert_int_equal(cr_store_sync_state_get(f->s, "w2", 2, &r), CR_ENOENT);
  /* History: newest first, limited. */
  struct cr_sync_state_rec *h = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_sync_state_history(f->s, "w1", 0, &h, &n), 0);
  assert_int_equal(n, 4);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(h[i].version, 4 - (int64_t)i);
    assert_int_equal(h[i].records, recs[3 - i]);
    assert_int_equal(h[i].committed_at, T0 + (int64_t)(3 - i) * 1000);
  }
  cr_sync_state_rec_free_list(h, n);
  assert_int_equal(cr_store_sync_state_history(f->s, "w1", 2, &h, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(h[1].version, 3);
  cr_sync_state_rec_free_list(h, n);
  assert_int_equal(cr_store_sync_state_history(f->s, "nope", 0, &h, &n), 0);
  assert_int_equal(n, 0);
  assert_null(h);
  /* Records of an execution: the versions it committed only. */
  int64_t total = -1;
  assert_int_equal(cr_store_sync_state_exec_records(f->s, e1, &total), 0);
  assert_int_equal(total, 10 + 5 + 7);
  assert_int_equal(cr_store_sync_state_exec_records(f->s, e1 + 100, &total), 0);
  assert_int_equal(total, 0);
}

static void test_sync_state_validation(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  int64_t v = -1;
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{bad", 1, 0, NULL, &v),
      CR_EINVAL);
  assert_int_equal(v, 0);
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{}", -1, 0, NULL, &v), CR_EINVAL);
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "nope", "{}", 1, 0, NULL, &v),
      CR_EINVAL);
  assert_non_null(strstr(cr_store_last_error(f->s), "nope"));
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{}", 1, 999, NULL, &v),
      CR_EINVAL); /* unknown execution */
  assert_int_equal(cr_store_sync_state_commit(f->s, NULL, "{}", 1, 0, NULL, &v),
                   CR_EINVAL);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM sync_state"), 0);
  /* Inside a transaction: a rollback takes the version back. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_sync_state_commit(f->s, "w1", "{}", 1, 0, NULL, &v),
                   0);
  assert_int_equal(v, 1);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{\"a\":1}", 1, 0, NULL, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  struct cr_sync_state_rec r;
  assert_int_equal(cr_store_sync_state_latest(f->s, "w1", &r), 0);
  assert_int_equal(r.version, 1);
  assert_string_equal(r.state_json, "{\"a\":1}");
  cr_sync_state_rec_clear(&r);
  /* A deleted work keeps its history and still accepts commits. */
  assert_int_equal(cr_store_work_delete(f->s, "w1"), 0);
  assert_int_equal(cr_store_sync_state_commit(f->s, "w1", "{}", 0, 0, NULL, &v),
                   0);
  assert_int_equal(v, 2);
}

static void test_exec_retry(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T0);
  put_work(f->s, "a1", "w1");
  int64_t id = new_exec(f->s, "w1");
  /* Never claimed: nothing to retry. */
  assert_int_equal(cr_store_exec_retry(f->s, id, 0, 0, NULL, NULL, NULL),
                   CR_ESTATE);
  struct cr_exec_claim *c = NULL;
  assert_int_equal(claim_for(f->s, "r1", 1, &c), 1);
  int64_t epoch = c[0].epoch;
  cr_exec_claim_free_list(c, 1);
  assert_int_equal(cr_store_exec_transition(f->s, id, epoch, "executing",
                                            "started", NULL, NULL),
                   0);
  assert_int_equal(
      cr_store_exec_retry(f->s, id, epoch + 1, 0, NULL, NULL, NULL), CR_ESTALE);
  assert_int_equal(cr_store_exec_retry(f->s, id, epoch, 0, NULL, "bogus", NULL),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_retry(f->s, id, -1, 0, NULL, NULL, NULL),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_retry(f->s, id + 100, 1, 0, NULL, NULL, NULL),
                   CR_ENOENT);
  assert_int_equal(check_transitions(f->s, id), 3); /* nothing written */
  int64_t later = T0 + 60000;
  cr__clock_set_fake(T0 + 10);
  assert_int_equal(cr_store_exec_retry(f->s, id, epoch, later,
                                       "retry 2 of 3 (transient)", "transient",
                                       "HTTP 503"),
                   0);
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_string_equal(r.state, "created");
  assert_int_equal(r.attempt, 2);
  assert_int_equal(r.lease_epoch, epoch);
  assert_int_equal(r.lease_expires_at, 0);
  assert_null(r.runner_id);
  assert_int_equal(r.not_before, later);
  assert_string_equal(r.error_class, "transient");
  assert_string_equal(r.error, "HTTP 503");
  assert_int_equal(r.updated_at, T0 + 10);
  cr_exec_rec_clear(&r);
  /* Its retry time comes due in (T0 + 59 s, T0 + 60 s], not before. */
  int due = -1;
  assert_int_equal(cr_store_exec_retry_due(f->s, T0, later - 1, &due), 0);
  assert_int_equal(due, 0);
  assert_int_equal(cr_store_exec_retry_due(f->s, later - 1000, later, &due), 0);
  assert_int_equal(due, 1);
  assert_int_equal(cr_store_exec_retry_due(f->s, later, later + 1000, &due), 0);
  assert_int_equal(due, 0);
  int open = 0;
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 1);
  /* The old lease holder is fenced off. */
  assert_int_equal(
      cr_store_exec_transition(f->s, id, epoch, "completed", NULL, NULL, NULL),
      CR_ESTALE);
  /* not_before is respected by claims. */
  cr__clock_set_fake(later - 1);
  assert_int_equal(claim_for(f->s, "r1", 4, NULL), 0);
  cr__clock_set_fake(later);
  assert_int_equal(claim_for(f->s, "r1", 4, &c), 1);
  assert_int_equal(c[0].execution_id, id);
  assert_int_equal(c[0].attempt, 2);
  assert_int_equal(c[0].epoch, epoch + 1);
  cr_exec_claim_free_list(c, 1);
  /* Retry straight from pending, claimable at once. */
  assert_int_equal(
      cr_store_exec_retry(f->s, id, epoch + 1, 0, NULL, NULL, NULL), 0);
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_int_equal(r.attempt, 3);
  assert_int_equal(r.not_before, 0);
  assert_string_equal(r.error_class, "transient"); /* kept */
  cr_exec_rec_clear(&r);
  assert_int_equal(claim_for(f->s, "r1", 4, &c), 1);
  epoch = c[0].epoch;
  cr_exec_claim_free_list(c, 1);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, epoch, "executing", NULL, NULL, NULL),
      0);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, epoch, "failed", NULL, "config", "x"),
      0);
  /* Final: no retry. */
  assert_int_equal(cr_store_exec_retry(f->s, id, epoch, 0, NULL, NULL, NULL),
                   CR_ESTATE);
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 0);
  /* created, pending, executing, created, pending, created, pending,
   * executing, failed. */
  assert_int_equal(check_transitions(f->s, id), 9);
  char reason[128];
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT reason FROM execution_transitions WHERE execution_id = %lld "
           "AND from_state = 'executing' AND to_state = 'created'",
           (long long)id);
  assert_int_equal(
      cr__store_sqlite_query_text(f->s, sql, reason, sizeof reason), 0);
  assert_string_equal(reason, "retry 2 of 3 (transient)");
}

static void test_exec_release_runner(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T0);
  put_work(f->s, "a1", "w1");
  put_work(f->s, "a1", "w2");
  put_work(f->s, "a1", "w3");
  put_work(f->s, "a1", "w4");
  int64_t e1 = new_exec(f->s, "w1"), e2 = new_exec(f->s, "w2");
  int64_t e3 = new_exec(f->s, "w3");
  assert_int_equal(claim_for(f->s, "r1", 2, NULL), 2); /* e1, e2 */
  assert_int_equal(claim_for(f->s, "r2", 2, NULL), 1); /* e3 */
  int64_t e4 = new_exec(f->s, "w4");                   /* created */
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, e2, &r), 0);
  int64_t ep2 = r.lease_epoch;
  cr_exec_rec_clear(&r);
  assert_int_equal(
      cr_store_exec_transition(f->s, e2, ep2, "executing", NULL, NULL, NULL),
      0);
  size_t n = 99;
  assert_int_equal(
      cr_store_exec_release_runner(f->s, "r1", "runner local restarted", &n),
      0);
  assert_int_equal(n, 2);
  const int64_t released[] = {e1, e2};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(cr_store_exec_get(f->s, released[i], &r), 0);
    assert_string_equal(r.state, "created");
    assert_int_equal(r.attempt, 2);
    assert_null(r.runner_id);
    assert_int_equal(r.lease_expires_at, 0);
    cr_exec_rec_clear(&r);
    check_transitions(f->s, released[i]);
  }
  assert_int_equal(qint(f->s, "SELECT count(*) FROM execution_transitions "
                              "WHERE reason = 'runner local restarted'"),
                   2);
  assert_int_equal(cr_store_exec_get(f->s, e3, &r), 0);
  assert_string_equal(r.state, "pending");
  assert_string_equal(r.runner_id, "r2");
  cr_exec_rec_clear(&r);
  assert_int_equal(cr_store_exec_get(f->s, e4, &r), 0);
  assert_int_equal(r.attempt, 1);
  cr_exec_rec_clear(&r);
  /* The released executions are claimable again; nothing left for r1. */
  assert_int_equal(cr_store_exec_release_runner(f->s, "r1", NULL, &n), 0);
  assert_int_equal(n, 0);
  /* NULL reason: a default naming the runner. */
  assert_int_equal(cr_store_exec_release_runner(f->s, "r2", NULL, NULL), 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM execution_transitions "
                              "WHERE reason = 'released by runner r2'"),
                   1);
  assert_int_equal(cr_store_exec_release_runner(f->s, "", NULL, &n), CR_EINVAL);
  assert_int_equal(claim_for(f->s, "r1", 10, NULL), 4);
}

static void test_work_open_and_first_run(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  int open = -1, first = -1;
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 0);
  int64_t id = new_exec(f->s, "w1");
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 1);
  assert_int_equal(cr_store_exec_work_open(f->s, "w2", &open), 0);
  assert_int_equal(open, 0);
  assert_int_equal(cr_store_exec_transition(f->s, id, CR_EXEC_EPOCH_ANY,
                                            "cancelled", NULL, NULL, NULL),
                   0);
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 0);
  assert_int_equal(cr_store_exec_work_open(f->s, NULL, &open), CR_EINVAL);

  cr__clock_set_fake(T0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM works WHERE id = 'w1' "
                              "AND first_run_at IS NULL"),
                   1);
  assert_int_equal(cr_store_work_mark_started(f->s, "w1", &first), 0);
  assert_int_equal(first, 1);
  cr__clock_set_fake(T0 + 5000);
  assert_int_equal(cr_store_work_mark_started(f->s, "w1", &first), 0);
  assert_int_equal(first, 0);
  assert_int_equal(cr_store_work_mark_started(f->s, "w1", NULL), 0);
  assert_int_equal(qint(f->s, "SELECT first_run_at FROM works WHERE id = "
                              "'w1'"),
                   T0);
  assert_int_equal(cr_store_work_mark_started(f->s, "nope", &first), CR_ENOENT);
  assert_int_equal(first, 0);
  put_work(f->s, "a1", "w2");
  assert_int_equal(cr_store_work_delete(f->s, "w2"), 0);
  assert_int_equal(cr_store_work_mark_started(f->s, "w2", &first), CR_ENOENT);
}

static void test_auth_credentials(void **state) {
  struct fixture *f = *state;
  char *json = (char *)1;
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h1", &json),
                   CR_ENOENT);
  assert_null(json);
  assert_int_equal(
      cr_store_auth_credentials_set(f->s, "a1", "h1", "{\"t\":\"x\"}"),
      CR_EINVAL); /* unknown authorization */
  put_auth(f->s, "a1");
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", "[1]"),
                   CR_EINVAL);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", "{bad"),
                   CR_EINVAL);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", NULL),
                   CR_EINVAL);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "", "{}"),
                   CR_EINVAL);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM auth_credentials"), 0);
  const char *c1 = "{\"refresh_token\":\"r-1\"}";
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", c1), 0);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h1", &json), 0);
  assert_string_equal(json, c1);
  cr__free(json);
  /* The configuration was edited since: the edited config wins. */
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h2", &json),
                   CR_ENOENT);
  assert_null(json);
  /* Replaced, under a new hash. */
  const char *c2 = "{\"refresh_token\":\"r-2\"}";
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h2", c2), 0);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h1", &json),
                   CR_ENOENT);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h2", &json), 0);
  assert_string_equal(json, c2);
  cr__free(json);
  assert_int_equal(qint(f->s, g_use_pg
                                  ? "SELECT count(*) FROM auth_credentials "
                                    "WHERE scheme = 'plain' AND key_id IS "
                                    "NULL AND pg_typeof(blob) = 'bytea'::"
                                    "regtype"
                                  : "SELECT count(*) FROM auth_credentials "
                                    "WHERE scheme = 'plain' AND key_id IS "
                                    "NULL AND typeof(blob) = 'blob'"),
                   1);
  /* A scheme this build cannot decode. */
  assert_int_equal(cr__store_sqlite_exec(f->s, "UPDATE auth_credentials SET "
                                               "scheme = 'aes-gcm-v1'"),
                   0);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h2", &json),
                   CR_ENOTSUP);
  assert_null(json);
}

/* One round of sync state and credentials calls (allocating reads).
 * Returns 0 when all succeeded, else the first error. */
static int v3_alloc_round(void *arg) {
  cr_store *s = arg;
  struct cr_sync_state_rec r = {0}, *h = NULL;
  size_t n = 0;
  char *json = NULL;
  int rc = cr_store_sync_state_latest(s, "w1", &r);
  assert_true(rc == 0 ? r.note != NULL : r.work_id == NULL);
  if (rc == 0) {
    rc = cr_store_sync_state_history(s, "w1", 0, &h, &n);
    assert_true(rc == 0 ? n == 3 : h == NULL && n == 0);
  }
  if (rc == 0) {
    rc = cr_store_auth_credentials_get(s, "a1", "h", &json);
    assert_true(rc == 0 ? json != NULL : json == NULL);
  }
  if (rc == 0)
    assert_string_equal(json, "{\"k\":\"v\"}");
  cr_sync_state_rec_clear(&r);
  cr_sync_state_rec_free_list(h, n);
  cr__free(json);
  return rc;
}

static void test_v3_allocation_failures(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        cr_store_sync_state_commit(f->s, "w1", "{\"c\":1}", 1, 0, "note", NULL),
        0);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h",
                                                 "{\"k\":"
                                                 "\"v\"}"),
                   0);
  long n = cr_test_alloc_rounds(v3_alloc_round, f->s, 200);
  assert_true(n > 3);
  assert_true(n < 200);
}

int main(int argc, char **argv) {
  struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define S(name) cmocka_unit_test_setup_teardown(name, setup_lite, teardown)
#define P(name) cmocka_unit_test_setup_teardown(name, setup_pg, teardown)
      T(test_sync_state_versions),
      T(test_sync_state_validation),
      T(test_exec_retry),
      T(test_exec_release_runner),
      T(test_work_open_and_first_run),
      T(test_auth_credentials),
      S(test_v3_allocation_failures),
#undef T
#undef S
#undef P
  };
  return run_store_group(argc, argv, "test_store_exec", "test_store_exec_pg",
                         tests, sizeof tests / sizeof tests[0]);
}
