/* test_runner.c: the local runner of the real `connrun serve` process and
 * the foreground commands `connrun sync` and `connrun state`, end to end
 * with the "behave" test plugin: crashing, aborting, exiting, out-of-memory
 * and hanging works fail alone while the daemon survives; kill -9 mid-sync
 * takes the worker child down and a restart resumes from a committed
 * checkpoint (at-least-once, legal transitions only); SIGTERM waits for the
 * grace period, then puts the execution back; sync and state show, roll
 * back and resume a work's cursor. Set CR_TEST_RUNNER_KEEP_LOG to print
 * each daemon's log when it stops. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec/execution.h"
#include "store/store.h"

struct daemon_proc {
  pid_t pid;
  char log_path[1024];
};

/* The daemon a test has running, killed by the teardown when the test
 * failed before stopping it (0: none). */
static pid_t live_daemon;

/* ---- Helpers ------------------------------------------------------------ */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* Appends one work of provider behave to buf. */
static void add_work(char *buf, size_t len, const char *dir, const char *id,
                     const char *extra, const char *config) {
  size_t used = strlen(buf);
  snprintf(buf + used, len - used,
           "  - id: %s\n"
           "    provider: behave\n"
           "    authorization: b\n"
           "    schedule: { every: 1h }\n"
           "%s"
           "    destination: { type: jsonl, path: \"%s/out/%s\" }\n"
           "    config: %s\n",
           id, extra, dir, id, config);
}

static void config_head(char *buf, size_t len, const char *dir) {
  snprintf(buf, len,
           "host:\n"
           "  data_dir: \"%s/data\"\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  listen: 127.0.0.1:0\n"
           "  health_check_interval: 1h\n"
           "  runner: { concurrency: 4 }\n"
           "authorizations:\n"
           "  - id: b\n"
           "    provider: behave\n"
           "    method: none\n"
           "works:\n",
           dir, CR_TEST_PLUGIN_DIR);
}

/* Starts `connrun serve -c cfg [--grace grace]` with stderr to a log. */
static struct daemon_proc start(const char *dir, const char *cfg,
                                const char *grace) {
  struct daemon_proc d = {0};
  snprintf(d.log_path, sizeof d.log_path, "%s/serve.log", dir);
  d.pid = fork();
  assert_true(d.pid >= 0);
  if (d.pid == 0) {
    FILE *f = freopen(d.log_path, "a", stderr);
    FILE *o = freopen("/dev/null", "w", stdout);
    (void)f;
    (void)o;
    if (grace != NULL)
      execl(CR_CONNRUN_BIN, CR_CONNRUN_BIN, "serve", "-c", cfg, "--grace",
            grace, (char *)NULL);
    else
      execl(CR_CONNRUN_BIN, CR_CONNRUN_BIN, "serve", "-c", cfg, (char *)NULL);
    _exit(127);
  }
  live_daemon = d.pid;
  return d;
}

static int wait_status(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (pid == live_daemon)
    live_daemon = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Fails the test when text holds a sanitizer report. */
static void assert_no_sanitizer_report(const char *what, const char *text) {
  static const char *const marks[] = {"ERROR: AddressSanitizer",
                                      "ERROR: LeakSanitizer", "runtime error:"};
  for (size_t i = 0; text != NULL && i < sizeof marks / sizeof marks[0]; i++)
    if (strstr(text, marks[i]) != NULL)
      fail_msg("%s: sanitizer report:\n%s", what, text);
}

/* SIGTERM, then the exit status; the log must hold no sanitizer report. */
static int stop(struct daemon_proc *d) {
  kill(d->pid, SIGTERM);
  int rc = wait_status(d->pid);
  char *log = cr_test_read_file(d->log_path);
  if (getenv("CR_TEST_RUNNER_KEEP_LOG") != NULL)
    fprintf(stderr, "---- %s\n%s", d->log_path, log ? log : "");
  assert_no_sanitizer_report(d->log_path, log);
  free(log);
  return rc;
}

static cr_store *open_store(const char *dir) {
  char data[1200];
  snprintf(data, sizeof data, "%s/data", dir);
  char db[1300];
  snprintf(db, sizeof db, "%s/%s", data, CR_STORE_DB_NAME);
  for (int i = 0; i < 200 && access(db, F_OK) != 0; i++)
    sleep_ms(50); /* let the daemon create it */
  sleep_ms(200);
  cr_store *s = NULL;
  char err[256] = "";
  int rc = cr_store_open(data, &s, err, sizeof err);
  if (rc != 0)
    fail_msg("cannot open store %s: %s", data, err);
  return s;
}

/* The newest execution of work into *out (caller clears); 0 or CR_ENOENT. */
static int latest_exec(cr_store *s, const char *work, struct cr_exec_rec *out) {
  struct cr_exec_rec *list = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_list(s, work, 1, &list, &n), 0);
  if (n == 0)
    return -1;
  *out = list[0];
  memset(&list[0], 0, sizeof list[0]);
  cr_exec_rec_free_list(list, n);
  return 0;
}

/* Waits (up to ms) until work's newest execution is in a final state; then
 * fills *out. Returns 1 when it got there. */
static int wait_final(cr_store *s, const char *work, int ms,
                      struct cr_exec_rec *out) {
  int64_t end = now_ms() + ms;
  do {
    memset(out, 0, sizeof *out);
    if (latest_exec(s, work, out) == 0) {
      if (cr_exec_state_final(cr_exec_state_from_name(out->state)))
        return 1;
      cr_exec_rec_clear(out);
    }
    sleep_ms(50);
  } while (now_ms() < end);
  return 0;
}

/* Waits (up to ms) until work's newest execution is in state. */
static int wait_state(cr_store *s, const char *work, const char *state,
                      int ms) {
  int64_t end = now_ms() + ms;
  do {
    struct cr_exec_rec e = {0};
    int ok = latest_exec(s, work, &e) == 0 && strcmp(e.state, state) == 0;
    cr_exec_rec_clear(&e);
    if (ok)
      return 1;
    sleep_ms(20);
  } while (now_ms() < end);
  return 0;
}

static size_t state_versions(cr_store *s, const char *work) {
  struct cr_sync_state_rec *h = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_sync_state_history(s, work, 0, &h, &n), 0);
  cr_sync_state_rec_free_list(h, n);
  return n;
}

/* Waits (up to ms) until work has at least want state versions. */
static int wait_versions(cr_store *s, const char *work, size_t want, int ms) {
  int64_t end = now_ms() + ms;
  do {
    if (state_versions(s, work) >= want)
      return 1;
    sleep_ms(10);
  } while (now_ms() < end);
  return 0;
}

/* The "next" cursor of work's latest state (-1 when none). */
static long long latest_next(cr_store *s, const char *work) {
  struct cr_sync_state_rec r = {0};
  if (cr_store_sync_state_latest(s, work, &r) != 0)
    return -1;
  const char *p = r.state_json ? strstr(r.state_json, "\"next\":") : NULL;
  long long v = p ? strtoll(p + 7, NULL, 10) : -1;
  cr_sync_state_rec_clear(&r);
  return v;
}

/* The ids of the complete lines of dir/out/work/items.jsonl, in file order
 * (caller frees); *n gets how many. */
static long long *read_ids(const char *dir, const char *work, size_t *n) {
  char path[1200];
  snprintf(path, sizeof path, "%s/out/%s/items.jsonl", dir, work);
  *n = 0;
  char *text = cr_test_read_file(path);
  if (text == NULL)
    return NULL;
  size_t cap = 1024;
  long long *ids = malloc(cap * sizeof *ids);
  assert_non_null(ids);
  for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL;
       line = nl + 1) {
    *nl = '\0';
    const char *p = strstr(line, "{\"id\":");
    assert_non_null(p);
    if (*n == cap) {
      cap *= 2;
      ids = realloc(ids, cap * sizeof *ids);
      assert_non_null(ids);
    }
    ids[(*n)++] = strtoll(p + 6, NULL, 10);
  }
  free(text);
  return ids;
}

/* 1 if every id in 0..max-1 occurs in ids. */
static int covers(const long long *ids, size_t n, long long max) {
  unsigned char *seen = calloc((size_t)max, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < n; i++)
    if (ids[i] >= 0 && ids[i] < max)
      seen[ids[i]] = 1;
  int all = 1;
  for (long long i = 0; i < max && all; i++)
    all = seen[i];
  free(seen);
  return all;
}

/* Every stored transition of execution id is legal (the first one may
 * come from nothing to created). */
static void assert_transitions_legal(cr_store *s, int64_t id) {
  struct cr_exec_transition_rec *t = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_transitions(s, id, &t, &n), 0);
  assert_true(n > 0);
  for (size_t i = 0; i < n; i++) {
    if (i == 0 && t[i].from_state == NULL) {
      assert_string_equal(t[i].to_state, "created");
      continue;
    }
    if (!cr_exec_transition_allowed(t[i].from_state, t[i].to_state))
      fail_msg("illegal transition %s -> %s (%s)", t[i].from_state,
               t[i].to_state, t[i].reason ? t[i].reason : "");
  }
  cr_exec_transition_free_list(t, n);
}

/* 1 if execution id has a transition to to_state whose reason contains
 * reason. */
static int has_transition(cr_store *s, int64_t id, const char *to_state,
                          const char *reason) {
  struct cr_exec_transition_rec *t = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_transitions(s, id, &t, &n), 0);
  int found = 0;
  for (size_t i = 0; i < n && !found; i++)
    found = strcmp(t[i].to_state, to_state) == 0 && t[i].reason != NULL &&
            strstr(t[i].reason, reason) != NULL;
  cr_exec_transition_free_list(t, n);
  return found;
}

/* Runs argv with stdout and stderr captured separately (caller frees). */
static int run_split(char *const argv[], const char *dir, char **out,
                     char **err) {
  char op[1200], ep[1200];
  snprintf(op, sizeof op, "%s/run.out", dir);
  snprintf(ep, sizeof ep, "%s/run.err", dir);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int nul = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || nul < 0)
      _exit(126);
    dup2(nul, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  int rc = wait_status(pid);
  *out = cr_test_read_file(op);
  *err = cr_test_read_file(ep);
  assert_non_null(*out);
  assert_non_null(*err);
  assert_no_sanitizer_report(argv[1], *err);
  return rc;
}

static void cleanup(char *dir, char *cfg) {
  free(cfg);
  cr_test_rmtree(dir);
  free(dir);
}

/* ---- 1. The daemon survives its works ----------------------------------- */

static void test_serve_survives_failing_works(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("runner-survive");
  static char cfgtext[16384];
  config_head(cfgtext, sizeof cfgtext, dir);
  const char *one = "    max_attempts: 1\n";
  add_work(cfgtext, sizeof cfgtext, dir, "crash", one,
           "{ mode: crash, count: 5 }");
  add_work(cfgtext, sizeof cfgtext, dir, "abort", one,
           "{ mode: abort, count: 5 }");
  add_work(cfgtext, sizeof cfgtext, dir, "exit", one,
           "{ mode: exit, count: 5 }");
  add_work(cfgtext, sizeof cfgtext, dir, "oom",
           "    max_attempts: 1\n    memory_limit_mb: 64\n", "{ mode: oom }");
  add_work(cfgtext, sizeof cfgtext, dir, "hang",
           "    max_attempts: 1\n    timeout: 1s\n", "{ mode: hang }");
  add_work(cfgtext, sizeof cfgtext, dir, "emit", one,
           "{ mode: emit, count: 500, checkpoint_every: 100 }");
  char *cfg = cr_test_write_file(dir, "c.yaml", cfgtext);
  struct daemon_proc d = start(dir, cfg, NULL);
  cr_store *s = open_store(dir);

  static const struct {
    const char *work, *reason;
  } want[] = {
      {"crash", "killed by SIGSEGV"},   {"abort", "killed by SIGABRT"},
      {"exit", "exited with status 3"}, {"oom", "memory limit 64 MiB exceeded"},
      {"hang", "timed out after 1 s"},
  };
  int64_t deadline = now_ms() + 15000; /* all of them within ~15 s */
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    struct cr_exec_rec e = {0};
    if (!wait_final(s, want[i].work, (int)(deadline - now_ms()), &e))
      fail_msg("work %s did not end within 15 s", want[i].work);
    assert_string_equal(e.state, "failed");
    assert_int_equal(e.attempt, 1);
    if (e.error == NULL || strstr(e.error, want[i].reason) == NULL)
      fail_msg("work %s: reason '%s', want '%s'", want[i].work,
               e.error ? e.error : "(null)", want[i].reason);
    assert_transitions_legal(s, e.id);
    cr_exec_rec_clear(&e);
  }
  struct cr_exec_rec e = {0};
  assert_true(wait_final(s, "emit", (int)(deadline - now_ms()), &e));
  assert_string_equal(e.state, "completed");
  assert_transitions_legal(s, e.id);
  cr_exec_rec_clear(&e);
  size_t n = 0;
  long long *ids = read_ids(dir, "emit", &n);
  assert_int_equal(n, 500);
  assert_true(covers(ids, n, 500));
  free(ids);
  assert_int_equal(latest_next(s, "emit"), 500);
  cr_store_close(s);

  assert_int_equal(kill(d.pid, 0), 0);
  assert_int_equal(waitpid(d.pid, NULL, WNOHANG), 0); /* not a zombie */
  assert_int_equal(stop(&d), 0);
  cleanup(dir, cfg);
}

/* ---- 2. kill -9 mid-sync ------------------------------------------------ */

#define BIG 200000

static void test_kill9_mid_sync_resumes(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("runner-kill9");
  static char cfgtext[4096];
  config_head(cfgtext, sizeof cfgtext, dir);
  add_work(cfgtext, sizeof cfgtext, dir, "big", "",
           "{ mode: emit, count: 200000, checkpoint_every: 1000, "
           "delay_us: 20 }");
  char *cfg = cr_test_write_file(dir, "c.yaml", cfgtext);
  struct daemon_proc d = start(dir, cfg, NULL);
  cr_store *s = open_store(dir);
  assert_true(wait_versions(s, "big", 3, 20000));

  int kids[16];
  size_t nk = cr_test_children(d.pid, kids, 16);
  assert_true(nk >= 1); /* the worker running the plugin */
  assert_int_equal(kill(d.pid, SIGKILL), 0);
  assert_int_equal(wait_status(d.pid), 128 + SIGKILL);
  int64_t end = now_ms() + 2000;
  for (size_t i = 0; i < nk; i++) {
    while (!cr_test_proc_gone(kids[i]) && now_ms() < end)
      sleep_ms(10);
    if (!cr_test_proc_gone(kids[i]))
      fail_msg("worker %ld outlived its daemon by 2 s", (long)kids[i]);
  }

  /* Nothing writes now: what is on disk is the first attempt's. */
  struct cr_exec_rec e = {0};
  assert_int_equal(latest_exec(s, "big", &e), 0);
  int64_t id = e.id;
  assert_true(strcmp(e.state, "executing") == 0 ||
              strcmp(e.state, "pending") == 0);
  assert_int_equal(e.attempt, 1);
  cr_exec_rec_clear(&e);
  long long resume = latest_next(s, "big");
  assert_true(resume > 0);
  assert_int_equal(resume % 1000, 0);
  size_t n1 = 0;
  long long *ids1 = read_ids(dir, "big", &n1);
  assert_true((long long)n1 >= resume);
  free(ids1);

  d = start(dir, cfg, NULL);
  assert_true(wait_final(s, "big", 120000, &e));
  assert_int_equal(e.id, id); /* the same execution, not a new one */
  assert_string_equal(e.state, "completed");
  assert_int_equal(e.attempt, 2);
  cr_exec_rec_clear(&e);
  assert_true(has_transition(s, id, "created", "runner restarted"));
  assert_transitions_legal(s, id);
  assert_int_equal(stop(&d), 0);

  size_t n = 0;
  long long *ids = read_ids(dir, "big", &n);
  assert_true(n > n1);
  assert_true(covers(ids, n, BIG));
  /* The second attempt started at the committed checkpoint. */
  assert_int_equal(ids[n1], resume);
  assert_true(ids[n1] > 0 && ids[n1] % 1000 == 0);
  free(ids);
  cr_store_close(s);
  cleanup(dir, cfg);
}

/* ---- 3. SIGTERM and the grace period ------------------------------------ */

static void test_sigterm_waits_for_running_work(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("runner-grace");
  static char cfgtext[4096];
  config_head(cfgtext, sizeof cfgtext, dir);
  /* About 2 s of work: 2000 records, 1 ms each. */
  add_work(cfgtext, sizeof cfgtext, dir, "slow", "",
           "{ mode: emit, count: 2000, checkpoint_every: 500, "
           "delay_us: 1000 }");
  char *cfg = cr_test_write_file(dir, "c.yaml", cfgtext);
  struct daemon_proc d = start(dir, cfg, NULL);
  cr_store *s = open_store(dir);
  assert_true(wait_state(s, "slow", "executing", 10000));
  int64_t t0 = now_ms();
  assert_int_equal(stop(&d), 0);
  assert_true(now_ms() - t0 < 25000); /* ended with the work, not the grace */
  struct cr_exec_rec e = {0};
  assert_int_equal(latest_exec(s, "slow", &e), 0);
  assert_string_equal(e.state, "completed");
  assert_int_equal(e.attempt, 1);
  cr_exec_rec_clear(&e);
  size_t n = 0;
  long long *ids = read_ids(dir, "slow", &n);
  assert_int_equal(n, 2000);
  assert_true(covers(ids, n, 2000));
  free(ids);
  cr_store_close(s);
  cleanup(dir, cfg);
}

static void test_sigterm_grace_over_retries(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("runner-grace1");
  static char cfgtext[4096];
  config_head(cfgtext, sizeof cfgtext, dir);
  /* About 60 s of work: 60000 records, 1 ms each. */
  add_work(cfgtext, sizeof cfgtext, dir, "long", "",
           "{ mode: emit, count: 60000, checkpoint_every: 200, "
           "delay_us: 1000 }");
  char *cfg = cr_test_write_file(dir, "c.yaml", cfgtext);
  struct daemon_proc d = start(dir, cfg, "1");
  cr_store *s = open_store(dir);
  assert_true(wait_versions(s, "long", 2, 20000));
  int64_t t0 = now_ms();
  assert_int_equal(stop(&d), 0);
  int64_t took = now_ms() - t0;
  /* The grace (1 s) plus the worker's cancel, not the remaining work. */
  assert_true(took >= 900);
  assert_true(took < 8000);

  struct cr_exec_rec e = {0};
  assert_int_equal(latest_exec(s, "long", &e), 0);
  int64_t id = e.id;
  assert_string_equal(e.state, "created");
  assert_int_equal(e.attempt, 2);
  cr_exec_rec_clear(&e);
  assert_true(has_transition(s, id, "created", "runner stopped; retried"));
  long long resume = latest_next(s, "long");
  assert_true(resume > 0);
  assert_int_equal(resume % 200, 0);
  size_t n1 = 0;
  long long *ids1 = read_ids(dir, "long", &n1);
  free(ids1);
  assert_true((long long)n1 >= resume);

  /* Restart (the work made fast so the test does not take a minute): the
   * same execution completes from the last checkpoint. */
  char *fast = strstr(cfgtext, "delay_us: 1000");
  assert_non_null(fast);
  memcpy(fast, "delay_us:    0", 14);
  free(cr_test_write_file(dir, "c.yaml", cfgtext));
  d = start(dir, cfg, "1");
  assert_true(wait_final(s, "long", 60000, &e));
  assert_int_equal(e.id, id);
  assert_string_equal(e.state, "completed");
  cr_exec_rec_clear(&e);
  assert_transitions_legal(s, id);
  assert_int_equal(stop(&d), 0);
  size_t n = 0;
  long long *ids = read_ids(dir, "long", &n);
  assert_true(n > n1);
  assert_int_equal(ids[n1], resume);
  assert_true(covers(ids, n, 60000));
  free(ids);
  cr_store_close(s);
  cleanup(dir, cfg);
}

/* ---- 4. connrun sync ---------------------------------------------------- */

static void test_sync_command(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("runner-sync");
  static char cfgtext[4096];
  config_head(cfgtext, sizeof cfgtext, dir);
  add_work(cfgtext, sizeof cfgtext, dir, "items", "",
           "{ mode: emit, count: 1234, checkpoint_every: 100 }");
  add_work(cfgtext, sizeof cfgtext, dir, "bad", "    max_attempts: 1\n",
           "{ mode: config_error }");
  char *cfg = cr_test_write_file(dir, "c.yaml", cfgtext);
  char *out = NULL, *err = NULL;

  char *ok[] = {CR_CONNRUN_BIN, "sync", "-c", cfg, "items", NULL};
  assert_int_equal(run_split(ok, dir, &out, &err), 0);
  if (strstr(out, "Completed") == NULL || strstr(out, "1234 records") == NULL)
    fail_msg("sync stdout: %s\nstderr: %s", out, err);
  assert_null(strchr(err, '\r')); /* not a terminal: no live line */
  assert_non_null(strstr(err, "items: "));
  assert_non_null(strstr(err, " records/s\n"));
  free(out);
  free(err);
  size_t n = 0;
  long long *ids = read_ids(dir, "items", &n);
  assert_int_equal(n, 1234);
  assert_true(covers(ids, n, 1234));
  free(ids);

  char *bad[] = {CR_CONNRUN_BIN, "sync", "-c", cfg, "bad", NULL};
  assert_int_equal(run_split(bad, dir, &out, &err), 1);
  if (strstr(out, "bad settings") == NULL &&
      strstr(err, "bad settings") == NULL)
    fail_msg("sync of a config_error work: %s\n%s", out, err);
  assert_non_null(strstr(out, "Failed"));
  free(out);
  free(err);

  char *unknown[] = {CR_CONNRUN_BIN, "sync", "-c", cfg, "nope", NULL};
  assert_int_equal(run_split(unknown, dir, &out, &err), 1);
  assert_non_null(strstr(err, "nope"));
  free(out);
  free(err);

  char *usage[] = {CR_CONNRUN_BIN, "sync", "items", NULL};
  assert_int_equal(run_split(usage, dir, &out, &err), 2);
  free(out);
  free(err);

  cr_store *s = open_store(dir);
  struct cr_exec_rec e = {0};
  assert_int_equal(latest_exec(s, "bad", &e), 0);
  assert_string_equal(e.state, "failed");
  assert_string_equal(e.error_class, "config");
  cr_exec_rec_clear(&e);
  assert_int_equal(latest_exec(s, "items", &e), 0);
  assert_string_equal(e.state, "completed");
  assert_transitions_legal(s, e.id);
  cr_exec_rec_clear(&e);
  cr_store_close(s);
  cleanup(dir, cfg);
}

/* ---- 5. connrun state --------------------------------------------------- */

static int count_updated(cr_store *s, const char *work) {
  struct cr_event_filter f = {.subject_type = "work", .subject_id = work};
  const char *verbs[1] = {"updated"};
  f.verbs = verbs;
  f.nverbs = 1;
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  cr_event_rec_free_list(ev, n);
  return (int)n;
}

static void test_state_command(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("runner-state");
  static char cfgtext[4096];
  config_head(cfgtext, sizeof cfgtext, dir);
  add_work(cfgtext, sizeof cfgtext, dir, "w", "",
           "{ mode: emit, count: 3000, checkpoint_every: 1000 }");
  char *cfg = cr_test_write_file(dir, "c.yaml", cfgtext);
  char *out = NULL, *err = NULL;
  char *sync[] = {CR_CONNRUN_BIN, "sync", "-c", cfg, "w", "--quiet", NULL};
  assert_int_equal(run_split(sync, dir, &out, &err), 0);
  free(out);
  free(err);

  cr_store *s = open_store(dir);
  size_t nv = state_versions(s, "w");
  assert_int_equal(nv, 3); /* next 1000, 2000, 3000 */
  struct cr_sync_state_rec v1 = {0};
  assert_int_equal(cr_store_sync_state_get(s, "w", 1, &v1), 0);
  assert_string_equal(v1.state_json, "{\"next\":1000}");

  /* history: newest first. */
  char *hist[] = {CR_CONNRUN_BIN, "state", "history", "w", "-c", cfg, NULL};
  assert_int_equal(run_split(hist, dir, &out, &err), 0);
  char *p3 = strstr(out, "version 3 "), *p2 = strstr(out, "version 2 "),
       *p1 = strstr(out, "version 1 ");
  if (!p3 || !p2 || !p1 || !(p3 < p2 && p2 < p1))
    fail_msg("state history not newest first:\n%s", out);
  assert_non_null(strstr(out, "{\"next\":3000}"));
  free(out);
  free(err);

  /* show --json: the latest version. */
  char *show[] = {CR_CONNRUN_BIN, "state", "show",   "w",
                  "-c",           cfg,     "--json", NULL};
  assert_int_equal(run_split(show, dir, &out, &err), 0);
  if (strstr(out, "\"version\":3") == NULL ||
      strstr(out, "\"state\":{\"next\":3000}") == NULL)
    fail_msg("state show --json: %s", out);
  free(out);
  free(err);

  /* set --version 1: a new version equal to version 1, and an event. */
  int before = count_updated(s, "w");
  char *set1[] = {CR_CONNRUN_BIN, "state", "set", "w", "-c", cfg,
                  "--version",    "1",     NULL};
  assert_int_equal(run_split(set1, dir, &out, &err), 0);
  free(out);
  free(err);
  assert_int_equal(state_versions(s, "w"), 4);
  struct cr_sync_state_rec v4 = {0};
  assert_int_equal(cr_store_sync_state_latest(s, "w", &v4), 0);
  assert_int_equal(v4.version, 4);
  assert_string_equal(v4.state_json, v1.state_json);
  cr_sync_state_rec_clear(&v4);
  assert_int_equal(count_updated(s, "w"), before + 1);

  char *set999[] = {CR_CONNRUN_BIN, "state", "set", "w", "-c", cfg,
                    "--version",    "999",   NULL};
  assert_int_equal(run_split(set999, dir, &out, &err), 1);
  free(out);
  free(err);
  assert_int_equal(state_versions(s, "w"), 4);

  /* The next sync resumes from version 1's cursor. */
  size_t n1 = 0;
  long long *ids1 = read_ids(dir, "w", &n1);
  free(ids1);
  assert_int_equal(n1, 3000);
  assert_int_equal(run_split(sync, dir, &out, &err), 0);
  free(out);
  free(err);
  size_t n = 0;
  long long *ids = read_ids(dir, "w", &n);
  assert_true(n > n1);
  assert_int_equal(ids[n1], 1000);
  free(ids);
  cr_sync_state_rec_clear(&v1);
  cr_store_close(s);
  cleanup(dir, cfg);
}

/* After a failed test: no daemon is left running. */
static int teardown(void **state) {
  (void)state;
  if (live_daemon > 0) {
    kill(live_daemon, SIGKILL);
    wait_status(live_daemon);
  }
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_serve_survives_failing_works, teardown),
      cmocka_unit_test_teardown(test_kill9_mid_sync_resumes, teardown),
      cmocka_unit_test_teardown(test_sigterm_waits_for_running_work, teardown),
      cmocka_unit_test_teardown(test_sigterm_grace_over_retries, teardown),
      cmocka_unit_test_teardown(test_sync_command, teardown),
      cmocka_unit_test_teardown(test_state_command, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
