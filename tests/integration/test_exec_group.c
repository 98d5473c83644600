/* test_exec_group.c: group commit (exec_group.h) at library level: the
 * completions of a runner thread's batch in one transaction, one savepoint
 * each; lease fencing inside a group, what must not wait for the group, and
 * allocation failures; then the daemon's runner committing in groups. The
 * fixture is exec_fixture.h. */
#include "exec_fixture.h"

/* ---- Group commit (exec_group.h) ---------------------------------------- */

#define GROUP_N 4

/* Works <prefix>0..<prefix>GROUP_N-1, inline, max_attempts 1, config. */
static void group_works(char *buf, size_t len, const char *dir,
                        const char *prefix, const char *config) {
  size_t used = strlen(buf);
  for (int i = 0; i < GROUP_N; i++) {
    char id[32];
    snprintf(id, sizeof id, "%s%d", prefix, i);
    work_yaml(buf + used, len - used, dir, id, "inline", 1, config, NULL);
    used = strlen(buf);
  }
}

/* Creates and claims an execution of work (lease ms) into *c. */
static int64_t claim_new(struct fx *f, const char *work, int64_t lease,
                         struct cr_exec_claim *c) {
  int64_t id = 0;
  assert_int_equal(cr_store_exec_create(st(f), work, &id), 0);
  memset(c, 0, sizeof *c);
  assert_int_equal(cr_store_exec_claim_one(st(f), id, "test", lease, c), 0);
  return id;
}

static const char *exec_state(struct fx *f, int64_t id, char *buf, size_t len) {
  struct cr_exec_rec r;
  get_exec(f, id, &r);
  snprintf(buf, len, "%s", r.state);
  cr_exec_rec_clear(&r);
  return buf;
}

/* Occurrences of needle in the logs. */
static int log_count(struct fx *f, const char *needle) {
  int n = 0;
  for (const char *p = f->logs; p != NULL && (p = strstr(p, needle)) != NULL;
       p++)
    n++;
  return n;
}

/* One round: an execution of each grouped work (<g>i) deferred, then
 * committed, and of each reference work (<r>i) without a group. Checks the
 * outcomes, states, transitions and that every grouped work has exactly the
 * events of its reference work. */
static void group_round(struct fx *f, cr_exec_group *g, const char *expect) {
  struct cr_exec_claim c[GROUP_N];
  struct cr_exec_outcome o[GROUP_N], ro;
  int64_t id[GROUP_N], mark = last_event_id(f);
  char buf[4096], ref[4096], work[32];
  int done_before = log_count(f, "completed: 0 records, 0 checkpoints");
  f->env.group = g;
  for (int i = 0; i < GROUP_N; i++) {
    snprintf(work, sizeof work, "g%d", i);
    id[i] = claim_new(f, work, 60000, &c[i]);
    assert_int_equal(cr_exec_run(&f->env, &c[i], &o[i]), 0);
    assert_int_equal(o[i].deferred, 1);
    assert_int_equal(o[i].state, -1);
    assert_string_equal(exec_state(f, id[i], buf, sizeof buf), "pending");
  }
  assert_int_equal(cr_exec_group_size(g), GROUP_N);
  assert_true(cr_exec_group_age_ms(g) >= 0);
  for (int i = 0; i < GROUP_N; i++) { /* nothing written yet */
    snprintf(work, sizeof work, "g%d", i);
    work_verbs(f, work, mark, buf, sizeof buf);
    assert_string_equal(buf, "");
  }
  assert_int_equal(log_count(f, "completed: 0 records, 0 checkpoints"),
                   done_before);
  assert_int_equal(cr_exec_group_commit(g, st(f)), 0);
  assert_int_equal(cr_exec_group_size(g), 0);
  assert_int_equal(cr_exec_group_age_ms(g), 0);
  assert_int_equal(log_count(f, "completed: 0 records, 0 checkpoints"),
                   done_before + GROUP_N);
  f->env.group = NULL;
  for (int i = 0; i < GROUP_N; i++) {
    assert_int_equal(o[i].state, CR_EXEC_COMPLETED);
    assert_string_equal(exec_state(f, id[i], buf, sizeof buf), "completed");
    transitions(f, id[i], buf, sizeof buf);
    assert_string_equal(buf, "->created created>pending pending>executing "
                             "executing>completed");
    cr__free(c[i].work_id);
    snprintf(work, sizeof work, "r%d", i);
    int64_t rid = run_once(f, work, &ro);
    assert_int_equal(ro.deferred, 0);
    assert_int_equal(ro.state, CR_EXEC_COMPLETED);
    transitions(f, rid, ref, sizeof ref);
    assert_string_equal(buf, ref);
    work_verbs(f, work, mark, ref, sizeof ref);
    snprintf(work, sizeof work, "g%d", i);
    work_verbs(f, work, mark, buf, sizeof buf);
    assert_string_equal(buf, ref);
    assert_string_equal(buf, expect);
  }
}

/* Quick runs with a group: nothing is written until the commit, then
 * everything is as without a group (transitions, events in order, `started`
 * on the first run only). */
static void test_group_commit(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, "exec-group");
  char *works = calloc(1, 16384);
  assert_non_null(works);
  group_works(works, 16384, f.dir, "g", "mode: noop");
  group_works(works, 16384, f.dir, "r", "mode: noop");
  fx_start(&f, works);
  free(works);
  cr_exec_group *g = NULL;
  assert_int_equal(cr_exec_group_new(&g), 0);
  assert_int_equal(cr_exec_group_commit(g, st(&f)), 0); /* empty: no-op */
  group_round(&f, g, "started syncing synccomplete completed");
  group_round(&f, g, "syncing synccomplete completed");
  assert_int_equal(cr_exec_group_new(NULL), CR_EINVAL);
  assert_int_equal(cr_exec_group_commit(NULL, st(&f)), CR_EINVAL);
  assert_int_equal(cr_exec_group_commit(g, NULL), CR_EINVAL);
  assert_int_equal(cr_exec_group_size(NULL), 0);
  assert_int_equal(cr_exec_group_age_ms(NULL), 0);
  cr_exec_group_free(g);
  cr_exec_group_free(NULL);
  fx_close(&f);
}

/* A lease lost before the group commits: that execution writes nothing,
 * the others commit; the new owner runs it. */
static void test_group_lease_fencing(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, "exec-group-lease");
  char works[8192] = "";
  group_works(works, sizeof works, f.dir, "g", "mode: noop");
  fx_start(&f, works);
  cr_exec_group *g = NULL;
  assert_int_equal(cr_exec_group_new(&g), 0);
  f.env.group = g;
  struct cr_exec_claim c[GROUP_N], fresh;
  struct cr_exec_outcome o[GROUP_N];
  int64_t id[GROUP_N];
  char buf[4096], work[32];
  for (int i = 0; i < GROUP_N; i++) {
    snprintf(work, sizeof work, "g%d", i);
    id[i] = claim_new(&f, work, i == 1 ? 1000 : 60000, &c[i]);
    assert_int_equal(cr_exec_run(&f.env, &c[i], &o[i]), 0);
    assert_int_equal(o[i].deferred, 1);
  }
  size_t nexp = 0;
  assert_int_equal(cr_store_exec_expire(st(&f), cr__now_ms() + 5000, &nexp), 0);
  assert_int_equal(nexp, 1);
  memset(&fresh, 0, sizeof fresh);
  assert_int_equal(cr_store_exec_claim_one(st(&f), id[1], "new", 60000, &fresh),
                   0);
  assert_true(fresh.epoch > c[1].epoch);
  assert_int_equal(cr_exec_group_commit(g, st(&f)), 0);
  for (int i = 0; i < GROUP_N; i++) {
    snprintf(work, sizeof work, "g%d", i);
    work_verbs(&f, work, 0, buf, sizeof buf);
    if (i == 1) {
      assert_int_equal(o[i].state, -1);
      assert_string_equal(buf, "");
      transitions(&f, id[i], buf, sizeof buf);
      assert_null(strstr(buf, "executing"));
      assert_string_equal(exec_state(&f, id[i], buf, sizeof buf), "pending");
    } else {
      assert_int_equal(o[i].state, CR_EXEC_COMPLETED);
      assert_string_equal(buf, "started syncing synccomplete completed");
      assert_string_equal(exec_state(&f, id[i], buf, sizeof buf), "completed");
    }
    cr__free(c[i].work_id);
  }
  assert_int_equal(log_count(&f, "lease lost: another attempt owns it now"), 1);
  assert_non_null(strstr(f.logs, "work g1 execution"));
  /* The current owner runs it (also through the group). */
  struct cr_exec_outcome fo;
  assert_int_equal(cr_exec_run(&f.env, &fresh, &fo), 0);
  assert_int_equal(fo.deferred, 1);
  assert_int_equal(cr_exec_group_commit(g, st(&f)), 0);
  assert_int_equal(fo.state, CR_EXEC_COMPLETED);
  work_verbs(&f, "g1", 0, buf, sizeof buf);
  assert_string_equal(buf, "started syncing synccomplete completed");
  cr__free(fresh.work_id);
  cr_exec_group_free(g);
  fx_close(&f);
}

/* Failures, retries and runs with records are written at once; a run of
 * its own commits a group that got old; free drops what is pending. */
static void test_group_not_deferred(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, "exec-group-now");
  char works[8192] = "";
  work_yaml(works, sizeof works, f.dir, "bad", "inline", 1,
            "mode: config_error", NULL);
  size_t used = strlen(works);
  work_yaml(works + used, sizeof works - used, f.dir, "emit", "inline", 1,
            "mode: emit, count: 3, checkpoint_every: 1", NULL);
  used = strlen(works);
  work_yaml(works + used, sizeof works - used, f.dir, "flaky", "inline", 3,
            "mode: ratelimit", NULL);
  used = strlen(works);
  work_yaml(works + used, sizeof works - used, f.dir, "q", "inline", 1,
            "mode: noop", NULL);
  fx_start(&f, works);
  cr_exec_group *g = NULL;
  assert_int_equal(cr_exec_group_new(&g), 0);
  f.env.group = g;
  char buf[4096];
  struct cr_exec_outcome o;
  int64_t id = run_once(&f, "bad", &o);
  assert_int_equal(o.deferred, 0);
  assert_int_equal(o.state, CR_EXEC_FAILED);
  assert_string_equal(exec_state(&f, id, buf, sizeof buf), "failed");
  id = run_once(&f, "flaky", &o);
  assert_int_equal(o.deferred, 0);
  assert_int_equal(o.state, CR_EXEC_CREATED);
  assert_string_equal(exec_state(&f, id, buf, sizeof buf), "created");
  assert_int_equal(cr_exec_group_size(g), 0);

  /* A quick one waits; a run with records, once the group is old enough,
   * commits it at its first tick and writes its own outcome at once. */
  struct cr_exec_outcome qo;
  int64_t qid = run_once(&f, "q", &qo);
  assert_int_equal(qo.deferred, 1);
  assert_int_equal(cr_exec_group_size(g), 1);
  cr__sleep_ms(CR_EXEC_GROUP_MAX_AGE_MS + 5);
  assert_true(cr_exec_group_age_ms(g) >= CR_EXEC_GROUP_MAX_AGE_MS);
  id = run_once(&f, "emit", &o);
  assert_int_equal(o.deferred, 0);
  assert_int_equal(o.state, CR_EXEC_COMPLETED);
  assert_string_equal(exec_state(&f, id, buf, sizeof buf), "completed");
  assert_int_equal(cr_exec_group_size(g), 0);
  assert_int_equal(qo.state, CR_EXEC_COMPLETED);
  assert_string_equal(exec_state(&f, qid, buf, sizeof buf), "completed");

  /* cr_exec_run_to_end writes at once even with a group in the env. */
  int64_t tid = 0;
  assert_int_equal(cr_store_exec_create(st(&f), "q", &tid), 0);
  assert_int_equal(cr_exec_run_to_end(&f.env, tid, "test", &o), 0);
  assert_int_equal(o.deferred, 0);
  assert_int_equal(o.state, CR_EXEC_COMPLETED);
  assert_string_equal(exec_state(&f, tid, buf, sizeof buf), "completed");
  assert_int_equal(cr_exec_group_size(g), 0);

  /* Freed with a pending completion: nothing written, state -1. */
  struct cr_exec_claim c;
  qid = claim_new(&f, "q", 60000, &c);
  assert_int_equal(cr_exec_run(&f.env, &c, &qo), 0);
  assert_int_equal(qo.deferred, 1);
  cr__free(c.work_id);
  cr_exec_group_free(g);
  f.env.group = NULL;
  assert_int_equal(qo.state, -1);
  assert_string_equal(exec_state(&f, qid, buf, sizeof buf), "pending");
  fx_close(&f);
}

/* Allocation failures while adding to and committing a group: a clean
 * outcome (written at once, or by the commit, or -1 with an error), no
 * leak, and the store stays consistent (never half an execution). */
static void test_group_alloc_failures(void **state) {
  (void)state;
  struct fx f;
  fx_open(&f, "exec-group-alloc", "inline", 1, "mode: noop", NULL);
  cr_exec_group *g = NULL;
  assert_int_equal(cr_exec_group_new(&g), 0);
  f.env.group = g;
  int done = 0;
  long n = 0;
  cr_test_alloc_install();
  for (; n < 2000 && !done; n++) {
    struct cr_exec_claim c;
    int64_t id = claim_new(&f, "w", 60000, &c);
    struct cr_exec_outcome o;
    cr_test_alloc_fail_after(n);
    int rc = cr_exec_run(&f.env, &c, &o);
    int crc = rc == 0 ? cr_exec_group_commit(g, st(&f)) : 0;
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    cr__free(c.work_id);
    assert_int_equal(cr_exec_group_size(g), 0);
    assert_true(rc <= 0 && crc <= 0);
    char buf[64];
    exec_state(&f, id, buf, sizeof buf);
    if (!failed) {
      assert_int_equal(rc, 0);
      assert_int_equal(crc, 0);
      assert_int_equal(o.deferred, 1);
      assert_int_equal(o.state, CR_EXEC_COMPLETED);
      done = 1;
    }
    if (o.state == CR_EXEC_COMPLETED)
      assert_string_equal(buf, "completed");
    else if (o.state == -1) /* nothing written: still claimed */
      assert_string_equal(buf, "pending");
    /* Whatever stayed open goes back; cancel it so the next one runs. */
    assert_int_equal(cr_store_exec_expire(st(&f), cr__now_ms() + 120000, NULL),
                     0);
    exec_state(&f, id, buf, sizeof buf);
    if (!cr_exec_state_final(cr_exec_state_from_name(buf)))
      assert_int_equal(cr_store_exec_transition(st(&f), id, CR_EXEC_EPOCH_ANY,
                                                "cancelled", "test", NULL,
                                                NULL),
                       0);
  }
  assert_true(done);
  assert_true(n > 3);
  cr_exec_group_free(g);
  fx_close(&f);
}

/* ---- The daemon's runner with group commit ----------------------------- */

#define DAEMON_WORKS 12

struct daemon_log {
  uv_mutex_t mu; /* the daemon logs from several threads */
  int completed, errors;
};

static void daemon_log_fn(void *ud, int level, const char *line) {
  struct daemon_log *l = ud;
  uv_mutex_lock(&l->mu);
  if (strstr(line, ": completed: 0 records, 0 checkpoints") != NULL)
    l->completed++;
  if (level >= CR_LOG_ERROR)
    l->errors++;
  uv_mutex_unlock(&l->mu);
}

static void daemon_thread(void *arg) {
  assert_int_equal(cr_daemon_run(arg), 0);
}

/* Completed executions of work d<i> seen through s. */
static size_t completed_of(cr_store *s, int i) {
  char work[32];
  snprintf(work, sizeof work, "d%d", i);
  struct cr_exec_rec *ex = NULL;
  size_t n = 0, done = 0;
  assert_int_equal(cr_store_exec_list(s, work, 0, &ex, &n), 0);
  for (size_t k = 0; k < n; k++)
    done += strcmp(ex[k].state, "completed") == 0;
  cr_exec_rec_free_list(ex, n);
  return done;
}

/* The daemon's runner threads defer quick completions to their groups: every
 * scheduled no-op work completes once, with its transitions and events, and
 * the runner logs each completion once. */
static void test_daemon_group_commit(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("exec-daemon-group");
  char *cfg = calloc(1, 32768);
  assert_non_null(cfg);
  snprintf(cfg, 32768,
           "host:\n"
           "  data_dir: \"%s/data\"\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  health_check_interval: 1h\n"
           "  runner: { concurrency: 4 }\n"
           "authorizations:\n"
           "  - id: key\n"
           "    provider: behave\n"
           "    method: api_key\n"
           "    credentials: { api_key: \"" SECRET "\" }\n"
           "works:\n",
           dir, CR_TEST_PLUGIN_DIR);
  for (int i = 0; i < DAEMON_WORKS; i++) {
    char id[32];
    size_t used = strlen(cfg);
    snprintf(id, sizeof id, "d%d", i);
    work_yaml(cfg + used, 32768 - used, dir, id, "inline", 1, "mode: noop",
              "    schedule: { every: 1h }\n");
  }
  char *path = cr_test_write_file(dir, "connrun.yaml", cfg);
  free(cfg);
  struct daemon_log lg = {0};
  assert_int_equal(uv_mutex_init(&lg.mu), 0);
  struct cr_daemon_options o = {.config_path = path,
                                .log = daemon_log_fn,
                                .log_ud = &lg,
                                .log_min_level = CR_LOG_INFO};
  cr_diags diags;
  cr_diags_init(&diags);
  cr_daemon *d = NULL;
  assert_int_equal(cr_daemon_new(&o, &d, &diags), 0);
  cr_diags_free(&diags);
  free(path);
  uv_thread_t tid;
  assert_int_equal(uv_thread_create(&tid, daemon_thread, d), 0);
  char data[4096], err[256];
  snprintf(data, sizeof data, "%s/data", dir);
  cr_store *s = NULL;
  assert_int_equal(cr_store_open(data, &s, err, sizeof err), 0);
  int all = 0;
  for (int64_t until = cr__now_ms() + 30000; !all && cr__now_ms() < until;) {
    all = 1;
    for (int i = 0; i < DAEMON_WORKS && all; i++)
      all = completed_of(s, i) == 1;
    if (!all)
      cr__sleep_ms(20);
  }
  cr_daemon_stop(d);
  uv_thread_join(&tid);
  assert_true(all);
  for (int i = 0; i < DAEMON_WORKS; i++) {
    char work[32], buf[4096];
    snprintf(work, sizeof work, "d%d", i);
    struct cr_exec_rec *ex = NULL;
    size_t n = 0;
    assert_int_equal(cr_store_exec_list(s, work, 0, &ex, &n), 0);
    assert_int_equal(n, 1);
    struct cr_exec_transition_rec *t = NULL;
    size_t nt = 0;
    assert_int_equal(cr_store_exec_transitions(s, ex[0].id, &t, &nt), 0);
    buf[0] = '\0';
    for (size_t k = 0; k < nt; k++) {
      size_t used = strlen(buf);
      snprintf(buf + used, sizeof buf - used, "%s%s", k ? " " : "",
               t[k].to_state);
    }
    assert_string_equal(buf, "created pending executing completed");
    cr_exec_transition_free_list(t, nt);
    cr_exec_rec_free_list(ex, n);
  }
  cr_store_close(s);
  cr_daemon_free(d);
  assert_int_equal(lg.completed, DAEMON_WORKS);
  assert_int_equal(lg.errors, 0);
  uv_mutex_destroy(&lg.mu);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_group_commit),
      cmocka_unit_test(test_group_lease_fencing),
      cmocka_unit_test(test_group_not_deferred),
      cmocka_unit_test(test_group_alloc_failures),
      cmocka_unit_test(test_daemon_group_commit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
