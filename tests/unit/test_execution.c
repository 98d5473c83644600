/* test_execution.c: the execution state machine (execution.h) and the
 * store's execution interface (cr_store_exec_*) on real SQLite files:
 * transitions and their history, claims, leases, fencing, expiry and two
 * processes racing to claim. */
#include "pgserver.h"
#include "testutil.h"

#include "exec/execution.h"
#include "store/store.h"
#include "store/store_runners.h"
#include "store/store_sql.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define T0 INT64_C(1700000000000)

/* ---- Helpers ------------------------------------------------------------- */

/* --pg: the same tests against a private PostgreSQL server (the execution
 * contract holds on both stores), less the allocation-failure one. */
static int g_use_pg;
static struct cr_pgserver g_pg;

struct fixture {
  char *dir;
  char where[4096]; /* the data directory, or the PostgreSQL URL */
  cr_store *s;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  f->dir = cr_test_mkdtemp("execution");
  snprintf(f->where, sizeof f->where, "%s", f->dir);
  if (g_use_pg) {
    static int n;
    char name[32];
    snprintf(name, sizeof name, "e%d", ++n);
    if (cr_pgserver_createdb(&g_pg, name, f->where, sizeof f->where) != 0)
      fail_msg("createdb: %s", g_pg.error);
  }
  char err[256] = "";
  int rc = cr_store_open(f->where, &f->s, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, 0);
  cr__clock_set_fake(T0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  cr_store_close(f->s);
  cr__clock_set_fake(0);
  cr_test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static int64_t qint(cr_store *s, const char *sql) {
  int64_t v = -1;
  assert_int_equal(cr__store_sqlite_query_int(s, sql, &v), 0);
  return v;
}

static void put_work(cr_store *s, const char *id, const char *provider) {
  struct cr_work_rec w = {0};
  w.id = (char *)id;
  w.provider = (char *)provider;
  w.config_hash = (char *)"h";
  w.enabled = 1;
  w.max_attempts = 3;
  assert_int_equal(cr_store_work_upsert(s, &w, NULL), 0);
}

static int64_t new_exec(cr_store *s, const char *work_id) {
  int64_t id = 0;
  assert_int_equal(cr_store_exec_create(s, work_id, &id), 0);
  assert_true(id > 0);
  return id;
}

static int64_t count_transitions(cr_store *s, int64_t id) {
  char sql[128];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM execution_transitions WHERE execution_id = "
           "%lld",
           (long long)id);
  return qint(s, sql);
}

static void assert_state(cr_store *s, int64_t id, const char *state,
                         int attempt, int64_t epoch) {
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(s, id, &r), 0);
  assert_string_equal(r.state, state);
  assert_int_equal(r.attempt, attempt);
  assert_int_equal(r.lease_epoch, epoch);
  cr_exec_rec_clear(&r);
}

/* Claims with one provider; returns the count and frees the claims unless
 * out is given. */
static size_t claim(cr_store *s, const char *runner, const char *provider,
                    size_t slots, struct cr_exec_claim **out) {
  const char *provs[] = {provider};
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

/* ---- Pure rules ---------------------------------------------------------- */

static void test_transition_table(void **state) {
  (void)state;
  static const char *const names[] = {"created",   "pending", "executing",
                                      "completed", "failed",  "cancelled"};
  static const char *const legal[][2] = {
      {"created", "pending"},   {"created", "cancelled"},
      {"pending", "executing"}, {"pending", "cancelled"},
      {"pending", "created"},   {"executing", "completed"},
      {"executing", "failed"},  {"executing", "cancelled"},
      {"executing", "created"},
  };
  int nlegal = 0;
  for (size_t i = 0; i < NELEM(names); i++) {
    assert_int_equal(cr_exec_state_from_name(names[i]), (int)i);
    assert_string_equal(cr_exec_state_name((int)i), names[i]);
    for (size_t j = 0; j < NELEM(names); j++) {
      int want = 0;
      for (size_t k = 0; k < NELEM(legal); k++)
        if (strcmp(legal[k][0], names[i]) == 0 &&
            strcmp(legal[k][1], names[j]) == 0)
          want = 1;
      nlegal += want;
      assert_int_equal(cr_exec_transition_allowed(names[i], names[j]), want);
    }
  }
  assert_int_equal(nlegal, (int)NELEM(legal));
  assert_int_equal(cr_exec_transition_allowed(NULL, "pending"), 0);
  assert_int_equal(cr_exec_transition_allowed("created", NULL), 0);
  assert_int_equal(cr_exec_transition_allowed("Created", "pending"), 0);
  assert_int_equal(cr_exec_state_from_name("running"), -1);
  assert_null(cr_exec_state_name(6));
  assert_null(cr_exec_state_name(-1));
  assert_true(cr_exec_state_final(CR_EXEC_COMPLETED));
  assert_true(cr_exec_state_final(CR_EXEC_FAILED));
  assert_true(cr_exec_state_final(CR_EXEC_CANCELLED));
  assert_false(cr_exec_state_final(CR_EXEC_EXECUTING));
  assert_false(cr_exec_state_final(42));
}

static void test_failure_classes(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int retry;
  } cls[] = {
      {"config", 0}, {"transient", 1}, {"rate_limited", 1}, {"system", 0}};
  for (size_t i = 0; i < NELEM(cls); i++) {
    int c = cr_exec_class_from_name(cls[i].name);
    assert_true(c >= 0);
    assert_string_equal(cr_exec_class_name(c), cls[i].name);
    assert_int_equal(cr_exec_class_retryable(c), cls[i].retry);
  }
  assert_int_equal(cr_exec_class_from_name("network"), -1);
  assert_int_equal(cr_exec_class_from_name(NULL), -1);
  assert_null(cr_exec_class_name(CR_EXEC_NCLASSES));
  assert_int_equal(cr_exec_class_retryable(-1), 0);
}

static void test_backoff(void **state) {
  (void)state;
  /* Without jitter: the ceiling doubles per attempt up to max. */
  int64_t prev = 0;
  for (int a = 1; a <= 12; a++) {
    int64_t c = cr_exec_backoff_ms(a, 100, 60000, NULL);
    int64_t want = 100 * (INT64_C(1) << (a - 1));
    assert_int_equal(c, want < 60000 ? want : 60000);
    assert_true(c >= prev);
    prev = c;
  }
  assert_int_equal(cr_exec_backoff_ms(0, 100, 60000, NULL), 100);
  assert_int_equal(cr_exec_backoff_ms(-5, 100, 60000, NULL), 100);
  assert_int_equal(cr_exec_backoff_ms(1, 500, 200, NULL), 200);
  assert_int_equal(cr_exec_backoff_ms(1000000, INT64_MAX / 3, INT64_MAX, NULL),
                   INT64_MAX);
  assert_int_equal(cr_exec_backoff_ms(3, 0, 1000, NULL), 0);
  assert_int_equal(cr_exec_backoff_ms(3, 100, 0, NULL), 0);

  /* Full jitter: uniform in [0, ceiling]. */
  uint64_t rng = 0;
  for (int a = 1; a <= 8; a++) {
    int64_t ceiling = cr_exec_backoff_ms(a, 100, 10000, NULL);
    int64_t lo = INT64_MAX, hi = -1;
    double sum = 0;
    const int N = 4000;
    for (int i = 0; i < N; i++) {
      int64_t d = cr_exec_backoff_ms(a, 100, 10000, &rng);
      assert_true(d >= 0 && d <= ceiling);
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
      sum += (double)d;
    }
    double mean = sum / N;
    assert_true(mean > ceiling * 0.45 && mean < ceiling * 0.55);
    assert_true(lo < ceiling / 10);
    assert_true(hi > ceiling - ceiling / 10);
  }
  assert_true(rng != 0);
}

/* ---- Store: lifecycle ---------------------------------------------------- */

static void test_lifecycle(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "github");
  int64_t id = new_exec(f->s, "w1");
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_int_equal(r.id, id);
  assert_string_equal(r.work_id, "w1");
  assert_string_equal(r.state, "created");
  assert_int_equal(r.attempt, 1);
  assert_int_equal(r.lease_epoch, 0);
  assert_int_equal(r.lease_expires_at, 0);
  assert_null(r.runner_id);
  assert_int_equal(r.created_at, T0);
  cr_exec_rec_clear(&r);

  cr__clock_set_fake(T0 + 10);
  struct cr_exec_claim *c = NULL;
  assert_int_equal(claim(f->s, "runner-a", "github", 4, &c), 1);
  assert_int_equal(c[0].execution_id, id);
  assert_string_equal(c[0].work_id, "w1");
  assert_int_equal(c[0].attempt, 1);
  assert_int_equal(c[0].epoch, 1);
  assert_int_equal(c[0].lease_expires_at, T0 + 10 + 30000);
  int64_t epoch = c[0].epoch;
  cr_exec_claim_free_list(c, 1);

  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_string_equal(r.state, "pending");
  assert_string_equal(r.runner_id, "runner-a");
  assert_int_equal(r.lease_expires_at, T0 + 10 + 30000);
  cr_exec_rec_clear(&r);

  cr__clock_set_fake(T0 + 20);
  assert_int_equal(cr_store_exec_transition(f->s, id, epoch, "executing",
                                            "started", NULL, NULL),
                   0);
  cr__clock_set_fake(T0 + 25);
  assert_int_equal(cr_store_exec_renew(f->s, id, epoch, 5000), 0);
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_int_equal(r.lease_expires_at, T0 + 25 + 5000);
  cr_exec_rec_clear(&r);
  cr__clock_set_fake(T0 + 30);
  assert_int_equal(cr_store_exec_transition(f->s, id, epoch, "completed",
                                            "done", NULL, NULL),
                   0);

  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_string_equal(r.state, "completed");
  assert_int_equal(r.lease_expires_at, 0);
  assert_int_equal(r.updated_at, T0 + 30);
  cr_exec_rec_clear(&r);

  struct cr_exec_transition_rec *t = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_transitions(f->s, id, &t, &n), 0);
  assert_int_equal(n, 4);
  static const char *const from[] = {NULL, "created", "pending", "executing"};
  static const char *const to[] = {"created", "pending", "executing",
                                   "completed"};
  static const int64_t at[] = {T0, T0 + 10, T0 + 20, T0 + 30};
  for (size_t i = 0; i < n; i++) {
    if (from[i] == NULL)
      assert_null(t[i].from_state);
    else
      assert_string_equal(t[i].from_state, from[i]);
    assert_string_equal(t[i].to_state, to[i]);
    assert_int_equal(t[i].at, at[i]);
    assert_non_null(t[i].reason);
    if (i > 0)
      assert_true(t[i].id > t[i - 1].id);
  }
  assert_string_equal(t[1].reason, "claimed by runner runner-a");
  assert_string_equal(t[3].reason, "done");
  cr_exec_transition_free_list(t, n);

  /* Final: nothing more, renew refused. */
  assert_int_equal(cr_store_exec_renew(f->s, id, epoch, 5000), CR_ESTATE);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, epoch, "cancelled", NULL, NULL, NULL),
      CR_ESTATE);
  assert_int_equal(count_transitions(f->s, id), 4);
}

static void test_create_errors(void **state) {
  struct fixture *f = *state;
  int64_t id = 7;
  assert_int_equal(cr_store_exec_create(f->s, "nope", &id), CR_ENOENT);
  assert_int_equal(id, 0);
  assert_int_equal(cr_store_exec_create(f->s, "", &id), CR_EINVAL);
  assert_int_equal(cr_store_exec_create(f->s, NULL, NULL), CR_EINVAL);
  put_work(f->s, "w1", "p");
  assert_int_equal(cr_store_work_delete(f->s, "w1"), 0);
  assert_int_equal(cr_store_exec_create(f->s, "w1", NULL), CR_ENOENT);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM executions"), 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM execution_transitions"), 0);
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, 12345, &r), CR_ENOENT);
  assert_null(r.state);
}

static void test_illegal_refused(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  int64_t id = new_exec(f->s, "w1");
  /* created -> executing skips the claim. */
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 0, "executing", "x", NULL, NULL),
      CR_ESTATE);
  assert_string_not_equal(cr_store_last_error(f->s), "");
  assert_int_equal(claim(f->s, "r", "p", 1, NULL), 1);
  assert_int_equal(count_transitions(f->s, id), 2);
  /* pending -> completed skips executing; -> created / pending only by
   * expiry / claim; bad names are invalid. */
  const char *refused[] = {"completed", "failed", "created", "pending"};
  for (size_t i = 0; i < NELEM(refused); i++)
    assert_int_equal(
        cr_store_exec_transition(f->s, id, 1, refused[i], "x", NULL, NULL),
        CR_ESTATE);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "running", "x", NULL, NULL),
      CR_EINVAL);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "executing", "x", "network", NULL),
      CR_EINVAL);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, -1, "executing", "x", NULL, NULL),
      CR_EINVAL);
  assert_int_equal(
      cr_store_exec_transition(f->s, 999, 1, "executing", "x", NULL, NULL),
      CR_ENOENT);
  assert_state(f->s, id, "pending", 1, 1);
  assert_int_equal(count_transitions(f->s, id), 2);

  /* Inside a caller's transaction the failure undoes only itself. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "failed", "x", NULL, NULL),
      CR_ESTATE);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "executing", "go", NULL, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_state(f->s, id, "executing", 1, 1);

  /* failed keeps the class and message. */
  assert_int_equal(cr_store_exec_transition(f->s, id, 1, "failed", "boom",
                                            "rate_limited", "429 from API"),
                   0);
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_string_equal(r.state, "failed");
  assert_string_equal(r.error_class, "rate_limited");
  assert_string_equal(r.error, "429 from API");
  cr_exec_rec_clear(&r);
  assert_int_equal(count_transitions(f->s, id), 4);
}

static void test_cancel(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  put_work(f->s, "w2", "p");
  int64_t a = new_exec(f->s, "w1");
  int64_t b = new_exec(f->s, "w2");
  /* An operator cancels a created one without a lease. */
  assert_int_equal(cr_store_exec_transition(f->s, a, CR_EXEC_EPOCH_ANY,
                                            "cancelled", "by user", NULL, NULL),
                   0);
  assert_state(f->s, a, "cancelled", 1, 0);
  /* Any-epoch only cancels. */
  assert_int_equal(claim(f->s, "r", "p", 5, NULL), 1);
  assert_int_equal(cr_store_exec_transition(f->s, b, CR_EXEC_EPOCH_ANY,
                                            "executing", NULL, NULL, NULL),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_transition(f->s, b, CR_EXEC_EPOCH_ANY,
                                            "cancelled", NULL, NULL, NULL),
                   0);
  assert_state(f->s, b, "cancelled", 1, 1);
  assert_int_equal(claim(f->s, "r", "p", 5, NULL), 0);
}

/* ---- Store: leases and fencing ------------------------------------------- */

static void test_fencing(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  int64_t id = new_exec(f->s, "w1");
  const char *provs[] = {"p"};
  struct cr_exec_claim *c = NULL;
  size_t n = 0;
  assert_int_equal(
      cr_store_exec_claim(f->s, "runner-a", provs, 1, 1, 1000, &c, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].epoch, 1);
  cr_exec_claim_free_list(c, n);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "executing", NULL, NULL, NULL), 0);

  /* Not expired yet: nothing happens. */
  size_t expired = 99;
  assert_int_equal(cr_store_exec_expire(f->s, T0 + 999, &expired), 0);
  assert_int_equal(expired, 0);
  assert_state(f->s, id, "executing", 1, 1);

  /* Runner A goes silent: the lease expires (fake clock). */
  cr__clock_set_fake(T0 + 5000);
  assert_int_equal(cr_store_exec_expire(f->s, 0, &expired), 0);
  assert_int_equal(expired, 1);
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_string_equal(r.state, "created");
  assert_int_equal(r.attempt, 2);
  assert_int_equal(r.lease_epoch, 1);
  assert_null(r.runner_id);
  assert_int_equal(r.lease_expires_at, 0);
  cr_exec_rec_clear(&r);
  struct cr_exec_transition_rec *t = NULL;
  size_t nt = 0;
  assert_int_equal(cr_store_exec_transitions(f->s, id, &t, &nt), 0);
  assert_int_equal(nt, 4);
  assert_string_equal(t[3].from_state, "executing");
  assert_string_equal(t[3].to_state, "created");
  assert_string_equal(t[3].reason, "lease expired (runner runner-a)");
  assert_int_equal(t[3].at, T0 + 5000);
  cr_exec_transition_free_list(t, nt);

  /* A comes back before anyone re-claims: its lease is gone. */
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "completed", NULL, NULL, NULL),
      CR_ESTALE);
  assert_int_equal(cr_store_exec_renew(f->s, id, 1, 1000), CR_ESTALE);

  /* Runner B claims the new attempt with epoch 2. */
  assert_int_equal(
      cr_store_exec_claim(f->s, "runner-b", provs, 1, 1, 1000, &c, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].epoch, 2);
  assert_int_equal(c[0].attempt, 2);
  cr_exec_claim_free_list(c, n);

  /* A's late report and heartbeat are fenced off; nothing changes. */
  int64_t before = count_transitions(f->s, id);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "executing", NULL, NULL, NULL),
      CR_ESTALE);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 1, "cancelled", NULL, NULL, NULL),
      CR_ESTALE);
  assert_int_equal(cr_store_exec_renew(f->s, id, 1, 1000), CR_ESTALE);
  assert_int_equal(cr_store_exec_renew(f->s, id, 3, 1000), CR_ESTALE);
  assert_int_equal(count_transitions(f->s, id), before);
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_string_equal(r.state, "pending");
  assert_string_equal(r.runner_id, "runner-b");
  cr_exec_rec_clear(&r);

  /* B finishes. */
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 2, "executing", NULL, NULL, NULL), 0);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, 2, "completed", NULL, NULL, NULL), 0);
  assert_state(f->s, id, "completed", 2, 2);
  /* Expiry never touches final executions. */
  cr__clock_set_fake(T0 + 100000);
  assert_int_equal(cr_store_exec_expire(f->s, 0, &expired), 0);
  assert_int_equal(expired, 0);
}

/* Expiry of a pending lease, attempts counting up over several expiries, and
 * a claim rolled back with the caller's transaction. */
static void test_expire_pending_and_rollback(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  int64_t id = new_exec(f->s, "w1");
  const char *provs[] = {"p"};
  for (int round = 1; round <= 3; round++) {
    struct cr_exec_claim *c = NULL;
    size_t n = 0;
    assert_int_equal(cr_store_exec_claim(f->s, "r", provs, 1, 1, 100, &c, &n),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].attempt, round);
    assert_int_equal(c[0].epoch, round);
    cr_exec_claim_free_list(c, n);
    size_t expired = 0;
    assert_int_equal(cr_store_exec_expire(f->s, T0 + 100 * round, &expired), 0);
    assert_int_equal(expired, 1);
    assert_state(f->s, id, "created", round + 1, round);
  }
  assert_int_equal(count_transitions(f->s, id), 1 + 3 * 2);

  /* A claim inside a transaction that is rolled back leaves nothing. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(claim(f->s, "r", "p", 1, NULL), 1);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_state(f->s, id, "created", 4, 3);
  assert_int_equal(count_transitions(f->s, id), 7);
  assert_int_equal(cr_store_exec_expire(f->s, -1, NULL), CR_EINVAL);
}

/* ---- Store: claiming ------------------------------------------------------
 */

static void test_one_per_work(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  int64_t a = new_exec(f->s, "w1");
  int64_t b = new_exec(f->s, "w1");
  struct cr_exec_claim *c = NULL;
  assert_int_equal(claim(f->s, "r1", "p", 5, &c), 1);
  assert_int_equal(c[0].execution_id, a);
  cr_exec_claim_free_list(c, 1);
  assert_int_equal(claim(f->s, "r2", "p", 5, NULL), 0);
  assert_int_equal(
      cr_store_exec_transition(f->s, a, 1, "executing", NULL, NULL, NULL), 0);
  assert_int_equal(claim(f->s, "r2", "p", 5, NULL), 0);
  assert_int_equal(cr_store_exec_transition(f->s, a, 1, "failed", NULL,
                                            "transient", "timeout"),
                   0);
  assert_int_equal(claim(f->s, "r2", "p", 5, &c), 1);
  assert_int_equal(c[0].execution_id, b);
  cr_exec_claim_free_list(c, 1);
  assert_state(f->s, b, "pending", 1, 1);
}

static int claimable(cr_store *s, const char *prov) {
  const char *provs[] = {prov};
  int any = -1;
  assert_int_equal(cr_store_exec_claimable(s, provs, 1, NULL, NULL, &any), 0);
  return any;
}

/* The read-only probe answers what a claim would: nothing before an
 * execution exists, for another provider, or while the work's other
 * execution holds a lease; something once it can be won again. */
static void test_claimable(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  assert_int_equal(claimable(f->s, "p"), 0);
  int64_t a = new_exec(f->s, "w1");
  new_exec(f->s, "w1");
  assert_int_equal(claimable(f->s, "p"), 1);
  assert_int_equal(claimable(f->s, "other"), 0);
  assert_int_equal(claim(f->s, "r1", "p", 5, NULL), 1);
  assert_int_equal(claimable(f->s, "p"), 0);
  assert_int_equal(claim(f->s, "r2", "p", 5, NULL), 0);
  assert_int_equal(
      cr_store_exec_transition(f->s, a, 1, "executing", NULL, NULL, NULL), 0);
  assert_int_equal(claimable(f->s, "p"), 0);
  assert_int_equal(cr_store_exec_transition(f->s, a, 1, "failed", NULL,
                                            "transient", "timeout"),
                   0);
  assert_int_equal(claimable(f->s, "p"), 1);
  assert_int_equal(claim(f->s, "r2", "p", 5, NULL), 1);
  assert_int_equal(claimable(f->s, "p"), 0);
  int any = -1;
  const char *provs[] = {"p"};
  assert_int_equal(cr_store_exec_claimable(f->s, provs, 0, NULL, NULL, &any),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_claimable(f->s, NULL, 1, NULL, NULL, &any),
                   CR_EINVAL);
}

/* What the local runner (no labels) may run: works that name no runner
 * labels. With only labelled works (all routed to remote runners), its probe
 * and its claim find nothing, whatever is created; an unlabelled work of the
 * provider makes its execution claimable, and a deleted one does not. */
static void test_claimable_local(void **state) {
  struct fixture *f = *state;
  struct cr_work_rec w = {.id = (char *)"edge",
                          .provider = (char *)"p",
                          .config_hash = (char *)"h",
                          .enabled = 1,
                          .max_attempts = 3,
                          .runner_labels_json = (char *)"[\"edge\"]"};
  assert_int_equal(cr_store_work_upsert(f->s, &w, NULL), 0);
  new_exec(f->s, "edge");
  assert_int_equal(claimable(f->s, "p"), 0);
  assert_int_equal(claim(f->s, "local", "p", 5, NULL), 0);
  put_work(f->s, "mine", "p");
  assert_int_equal(claimable(f->s, "p"), 0); /* no execution of it yet */
  int64_t b = new_exec(f->s, "mine");
  assert_int_equal(claimable(f->s, "p"), 1);
  assert_int_equal(claimable(f->s, "other"), 0);
  struct cr_exec_claim *c = NULL;
  assert_int_equal(claim(f->s, "local", "p", 5, &c), 1);
  assert_int_equal(c[0].execution_id, b);
  cr_exec_claim_free_list(c, 1);
  put_work(f->s, "gone", "p");
  new_exec(f->s, "gone");
  assert_int_equal(cr_store_work_delete(f->s, "gone"), 0);
  assert_int_equal(claimable(f->s, "p"), 0);
}

static void test_provider_filter_and_slots(void **state) {
  struct fixture *f = *state;
  const char *works[][2] = {{"a1", "alpha"},     {"b1", "beta"},
                            {"a2", "alpha"},     {"a3", "alpha"},
                            {"q1", "we\"ird\\"}, {"d1", "alpha"}};
  int64_t ids[NELEM(works)];
  for (size_t i = 0; i < NELEM(works); i++) {
    put_work(f->s, works[i][0], works[i][1]);
    cr__clock_set_fake(T0 + (int64_t)i);
    ids[i] = new_exec(f->s, works[i][0]);
  }
  assert_int_equal(cr_store_work_delete(f->s, "d1"), 0);

  assert_int_equal(claim(f->s, "r", "gamma", 3, NULL), 0);
  struct cr_exec_claim *c = NULL;
  assert_int_equal(claim(f->s, "r", "beta", 3, &c), 1);
  assert_int_equal(c[0].execution_id, ids[1]);
  cr_exec_claim_free_list(c, 1);
  /* Two slots: the two oldest alpha executions. */
  assert_int_equal(claim(f->s, "r", "alpha", 2, &c), 2);
  assert_int_equal(c[0].execution_id, ids[0]);
  assert_int_equal(c[1].execution_id, ids[2]);
  cr_exec_claim_free_list(c, 2);
  /* Several providers, quotes in a name; deleted works are skipped. */
  const char *provs[] = {"gamma", "alpha", "we\"ird\\"};
  size_t n = 0;
  assert_int_equal(
      cr_store_exec_claim(f->s, "r", provs, NELEM(provs), 10, 100, &c, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(c[0].execution_id, ids[3]);
  assert_int_equal(c[1].execution_id, ids[4]);
  cr_exec_claim_free_list(c, n);
  assert_state(f->s, ids[5], "created", 1, 0);

  /* Argument checks. */
  assert_int_equal(cr_store_exec_claim(f->s, "r", provs, 0, 1, 100, &c, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_claim(f->s, "", provs, 1, 1, 100, &c, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_claim(f->s, "r", provs, 1, 1, 0, &c, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_claim(f->s, "r", NULL, 1, 1, 100, &c, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_claim(f->s, "r", provs, 1, 0, 100, &c, &n), 0);
  assert_int_equal(n, 0);
  assert_null(c);
}

static void test_list(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  put_work(f->s, "w2", "p");
  int64_t ids[5];
  for (int i = 0; i < 5; i++)
    ids[i] = new_exec(f->s, i % 2 == 0 ? "w1" : "w2");
  struct cr_exec_rec *r = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_list(f->s, NULL, 0, &r, &n), 0);
  assert_int_equal(n, 5);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(r[i].id, ids[4 - i]);
  cr_exec_rec_free_list(r, n);
  assert_int_equal(cr_store_exec_list(f->s, "w1", 2, &r, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(r[0].id, ids[4]);
  assert_int_equal(r[1].id, ids[2]);
  assert_string_equal(r[1].work_id, "w1");
  cr_exec_rec_free_list(r, n);
  assert_int_equal(cr_store_exec_list(f->s, "zz", 0, &r, &n), 0);
  assert_int_equal(n, 0);
  assert_null(r);
  struct cr_exec_transition_rec *t = NULL;
  assert_int_equal(cr_store_exec_transitions(f->s, 9999, &t, &n), 0);
  assert_int_equal(n, 0);
}

/* ---- Two processes racing ------------------------------------------------ */

#define RACE_N 200

/* Child: claims one at a time until nothing is left, writing the ids won to
 * fd. Exits 0 on success. */
static void race_child(const char *dir, const char *runner, int start_fd,
                       int fd) {
  char go;
  if (read(start_fd, &go, 1) != 1)
    _exit(2);
  cr_store *s = NULL;
  char err[256];
  if (cr_store_open(dir, &s, err, sizeof err) != 0)
    _exit(3);
  const char *provs[] = {"p"};
  for (;;) {
    struct cr_exec_claim *c = NULL;
    size_t n = 0;
    int rc = cr_store_exec_claim(s, runner, provs, 1, 1, 600000, &c, &n);
    if (rc == CR_EBUSY)
      continue;
    if (rc != 0)
      _exit(4);
    if (n == 0)
      break;
    int64_t id = c[0].execution_id;
    cr_exec_claim_free_list(c, n);
    if (write(fd, &id, sizeof id) != (ssize_t)sizeof id)
      _exit(5);
    usleep(200); /* "work" a little, so the claimers interleave */
  }
  cr_store_close(s);
  _exit(0);
}

static size_t read_ids(int fd, int64_t *ids, size_t max) {
  size_t n = 0;
  char *buf = (char *)ids;
  size_t got = 0;
  ssize_t r;
  while (got < max * sizeof *ids &&
         (r = read(fd, buf + got, max * sizeof *ids - got)) > 0)
    got += (size_t)r;
  n = got / sizeof *ids;
  assert_int_equal(got % sizeof *ids, 0);
  return n;
}

static void test_two_claimers_race(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(0);
  char id[32];
  assert_int_equal(cr_store_begin(f->s), 0);
  for (int i = 0; i < RACE_N; i++) {
    snprintf(id, sizeof id, "w%03d", i);
    put_work(f->s, id, "p");
    new_exec(f->s, id);
  }
  assert_int_equal(cr_store_commit(f->s), 0);
  cr_store_close(f->s);
  f->s = NULL;

  int start[2], out[2][2];
  assert_int_equal(pipe(start), 0);
  pid_t pid[2];
  static const char *const runners[] = {"runner-a", "runner-b"};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(pipe(out[k]), 0);
    pid[k] = fork();
    assert_true(pid[k] >= 0);
    if (pid[k] == 0) {
      close(start[1]);
      close(out[k][0]);
      race_child(f->where, runners[k], start[0], out[k][1]);
    }
    close(out[k][1]);
  }
  close(start[0]);
  assert_int_equal(write(start[1], "gg", 2), 2);
  close(start[1]);

  static int64_t won[2][RACE_N + 1];
  size_t n[2];
  for (int k = 0; k < 2; k++) {
    n[k] = read_ids(out[k][0], won[k], RACE_N + 1);
    close(out[k][0]);
  }
  for (int k = 0; k < 2; k++) {
    int status = 0;
    assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  assert_int_equal(n[0] + n[1], RACE_N);

  char err[256];
  assert_int_equal(cr_store_open(f->where, &f->s, err, sizeof err), 0);
  static int owner[RACE_N + 1];
  memset(owner, 0, sizeof owner);
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < n[k]; i++) {
      int64_t e = won[k][i];
      assert_true(e >= 1 && e <= RACE_N);
      assert_int_equal(owner[e], 0); /* claimed exactly once */
      owner[e] = k + 1;
      struct cr_exec_rec r;
      assert_int_equal(cr_store_exec_get(f->s, e, &r), 0);
      assert_string_equal(r.state, "pending");
      assert_string_equal(r.runner_id, runners[k]);
      assert_int_equal(r.lease_epoch, 1);
      cr_exec_rec_clear(&r);
    }
  for (int e = 1; e <= RACE_N; e++)
    assert_true(owner[e] != 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM execution_transitions "
                              "WHERE to_state = 'pending'"),
                   RACE_N);
  fprintf(stderr, "race: runner-a won %zu, runner-b won %zu\n", n[0], n[1]);
}

/* ---- Allocation failures ------------------------------------------------- */

static void test_allocation_failures(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "w1", "p");
  put_work(f->s, "w2", "p");
  new_exec(f->s, "w1");
  new_exec(f->s, "w2");
  cr_test_alloc_install();
  const char *provs[] = {"p", "q"};
  long i;
  for (i = 0; i < 200; i++) {
    struct cr_exec_claim *c = NULL;
    size_t n = 0;
    cr_test_alloc_fail_after(i);
    int rc = cr_store_exec_claim(f->s, "runner", provs, 2, 2, 1000, &c, &n);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      assert_int_equal(n, 2);
      cr_exec_claim_free_list(c, n);
      break;
    }
    assert_int_equal(rc, CR_ENOMEM);
    assert_null(c);
    /* Nothing was claimed. */
    assert_int_equal(
        qint(f->s, "SELECT count(*) FROM executions WHERE state='created'"), 2);
    assert_int_equal(qint(f->s, "SELECT count(*) FROM execution_transitions"),
                     2);
  }
  assert_true(i > 2 && i < 200);
  for (i = 0; i < 200; i++) {
    struct cr_exec_transition_rec *t = NULL;
    struct cr_exec_rec r;
    size_t n = 0;
    cr_test_alloc_fail_after(i);
    int rc = cr_store_exec_transitions(f->s, 1, &t, &n);
    if (rc == 0)
      rc = cr_store_exec_get(f->s, 1, &r);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    cr_exec_transition_free_list(t, n);
    if (!failed) {
      assert_int_equal(rc, 0);
      cr_exec_rec_clear(&r);
      break;
    }
    assert_int_equal(rc, CR_ENOMEM);
  }
  assert_true(i > 2 && i < 200);
}

static int setup_lite(void **state) { return setup(state); }

int main(int argc, char **argv) {
  g_use_pg = argc > 1 && strcmp(argv[1], "--pg") == 0;
  struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transition_table),
      cmocka_unit_test(test_failure_classes),
      cmocka_unit_test(test_backoff),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
      T(test_lifecycle),
      T(test_create_errors),
      T(test_illegal_refused),
      T(test_cancel),
      T(test_fencing),
      T(test_expire_pending_and_rollback),
      T(test_one_per_work),
      T(test_claimable),
      T(test_claimable_local),
      T(test_provider_filter_and_slots),
      T(test_list),
      T(test_two_claimers_race),
      cmocka_unit_test_setup_teardown(test_allocation_failures, setup_lite,
                                      teardown),
#undef T
  };
  size_t n = sizeof tests / sizeof tests[0];
  if (!g_use_pg)
    return _cmocka_run_group_tests("test_execution", tests, n, NULL, NULL);
  if (cr_pgserver_start(&g_pg, 1) != 0) {
    fprintf(stderr, "PostgreSQL: %s\n", g_pg.error);
    return 1;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (tests[i].setup_func != setup_lite)
      tests[k++] = tests[i];
  int rc = _cmocka_run_group_tests("test_execution_pg", tests, k, NULL, NULL);
  cr_pgserver_stop(&g_pg);
  return rc;
}
