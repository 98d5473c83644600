/* test_worker_pool.c: the worker pool against the real `connrun worker`
 * binary and the `behave` test plugin: end-to-end jobs, reuse and
 * replacement, crashes, timeouts, memory limit, large streams, cancel,
 * concurrency, clean shutdown without zombies. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "plugin/worker_pool.h"
#include "util/error.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static cr_worker_pool *new_pool(unsigned max_uses, unsigned max_idle) {
  struct cr_worker_pool_opts o = {CR_CONNRUN_BIN, max_uses, max_idle};
  cr_worker_pool *p = NULL;
  assert_int_equal(cr_worker_pool_new(&o, &p), 0);
  assert_non_null(p);
  return p;
}

static struct cr_wire_msg make_job(const char *config, uint64_t timeout_ms,
                                   uint64_t limit_mb) {
  struct cr_wire_msg m;
  memset(&m, 0, sizeof m);
  m.type = CR_WIRE_JOB;
  m.u.job.execution_id = cr_wire_cstr("1");
  m.u.job.epoch = 1;
  m.u.job.work_id = cr_wire_cstr("w");
  m.u.job.authorization_id = cr_wire_cstr("a");
  m.u.job.auth_method = cr_wire_cstr("none");
  m.u.job.provider = cr_wire_cstr("behave");
  m.u.job.plugin_path = cr_wire_cstr(CR_TEST_PLUGIN_DIR "/behave.so");
  m.u.job.credentials_json = cr_wire_cstr("{}");
  m.u.job.config_json = cr_wire_cstr(config);
  m.u.job.state_json = cr_wire_cstr("");
  m.u.job.timeout_ms = timeout_ms;
  m.u.job.memory_limit_mb = limit_mb;
  return m;
}

/* What a finished job produced. */
struct outcome {
  int rc; /* 1 after RESULT, else the terminal cr_worker_next code */
  int32_t code;
  char error_class[32];
  uint64_t records, result_records, checkpoints, metrics;
  char reason[256];
};

/* Runs config on w until RESULT or the worker is gone. */
static struct outcome run_job(cr_worker *w, const char *config,
                              uint64_t timeout_ms, uint64_t limit_mb) {
  struct outcome o;
  memset(&o, 0, sizeof o);
  struct cr_wire_msg job = make_job(config, timeout_ms, limit_mb);
  assert_int_equal(cr_worker_start(w, &job), 0);
  for (;;) {
    struct cr_wire_msg m;
    int rc = cr_worker_next(w, &m, -1);
    if (rc != 1) {
      o.rc = rc;
      break;
    }
    if (m.type == CR_WIRE_RECORD || m.type == CR_WIRE_RECORDS)
      o.records += m.type == CR_WIRE_RECORD ? 1 : m.u.records.count;
    else if (m.type == CR_WIRE_CHECKPOINT)
      o.checkpoints++;
    else if (m.type == CR_WIRE_METRICS)
      o.metrics++;
    else if (m.type == CR_WIRE_RESULT) {
      o.rc = 1;
      o.code = m.u.result.code;
      o.result_records = m.u.result.records;
      snprintf(o.error_class, sizeof o.error_class, "%.*s",
               (int)m.u.result.error_class.len, m.u.result.error_class.ptr);
      break;
    }
  }
  snprintf(o.reason, sizeof o.reason, "%s", cr_worker_reason(w));
  return o;
}

/* Acquire, run, release. */
static struct outcome pool_job(cr_worker_pool *p, const char *config,
                               uint64_t timeout_ms, uint64_t limit_mb) {
  cr_worker *w = NULL;
  char err[256] = "";
  int rc = cr_worker_pool_acquire(p, &w, err, sizeof err);
  if (rc != 0)
    fail_msg("acquire: %s (%s)", cr_strerror(rc), err);
  struct outcome o = run_job(w, config, timeout_ms, limit_mb);
  cr_worker_pool_release(p, w);
  return o;
}

static void assert_no_children(void) {
  errno = 0;
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
}

/* Our open fds, counted here: a child listing /proc/$PPID/fd could run
 * before cr_test_run had closed its copy of the pipe's write end, and
 * counted one more (seen once under a parallel ctest). */
static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own */
}

static void test_noop(void **state) {
  (void)state;
  int fds_before = count_fds();
  cr_worker_pool *p = new_pool(0, 0);
  cr_worker *w = NULL;
  char err[256] = "";
  assert_int_equal(cr_worker_pool_acquire(p, &w, err, sizeof err), 0);
  assert_true(cr_worker_pid(w) > 0);
  assert_string_equal(cr_worker_reason(w), "");
  /* The worker holds exactly stdin, stdout, stderr and the two pipes. */
  char cmd[128], *ls = NULL;
  snprintf(cmd, sizeof cmd, "ls /proc/%d/fd | sort -n | tr '\\n' ' '",
           cr_worker_pid(w));
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  assert_int_equal(cr_test_run(argv, NULL, &ls), 0);
  assert_string_equal(ls, "0 1 2 3 4 ");
  free(ls);
  struct outcome o = run_job(w, "{\"mode\":\"noop\"}", 10000, 0);
  assert_int_equal(o.rc, 1);
  assert_int_equal(o.code, 0);
  assert_string_equal(o.error_class, "");
  assert_int_equal(o.records, 0);
  assert_int_equal(o.metrics, 1);
  /* The job is over: next refuses, the worker is reusable. */
  struct cr_wire_msg m;
  assert_int_equal(cr_worker_next(w, &m, 0), CR_EINVAL);
  cr_worker_pool_release(p, w);
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 1);
  assert_int_equal(st.died, 0);
  cr_worker_pool_free(p);
  assert_no_children();
  assert_int_equal(count_fds(), fds_before);
}

static void test_reuse_and_replace(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(50, 0);
  int pids[4] = {0};
  for (int i = 0; i < 200; i++) {
    cr_worker *w = NULL;
    assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
    if (i % 50 == 0)
      pids[i / 50] = cr_worker_pid(w);
    else
      assert_int_equal(cr_worker_pid(w), pids[i / 50]);
    struct outcome o = run_job(w, "{\"mode\":\"noop\"}", 10000, 0);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.code, 0);
    cr_worker_pool_release(p, w);
  }
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 4);
  assert_int_equal(st.reused, 196);
  assert_int_equal(st.retired, 4);
  assert_int_equal(st.died, 0);
  for (int i = 1; i < 4; i++)
    assert_int_not_equal(pids[i], pids[i - 1]);
  cr_worker_pool_free(p);
  assert_no_children();
}

/* A failing mode gives code, reason; the pool then serves a good job on a
 * fresh worker. */
static void check_death(const char *config, int want_rc, const char *reason) {
  cr_worker_pool *p = new_pool(0, 0);
  struct outcome o = pool_job(p, config, 0, 0);
  assert_int_equal(o.rc, want_rc);
  assert_string_equal(o.reason, reason);
  o = pool_job(p, "{\"mode\":\"emit\",\"count\":3}", 10000, 0);
  assert_int_equal(o.rc, 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 3);
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 2);
  assert_int_equal(st.died, 1);
  cr_worker_pool_free(p);
  assert_no_children();
}

static void test_crash(void **state) {
  (void)state;
  check_death("{\"mode\":\"crash\"}", CR_EIO, "killed by SIGSEGV");
}

/* The 50% rule only applies to a worker near its limit. */
static void test_crash_under_limit(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  struct outcome o = pool_job(p, "{\"mode\":\"crash\"}", 0, 4096);
  assert_int_equal(o.rc, CR_EIO);
  assert_string_equal(o.reason, "killed by SIGSEGV");
  cr_worker_pool_free(p);
}

/* A fake worker (shell script): a valid HELLO, then after the JOB arrives
 * the frame given by tail (octal bytes). */
static char *fake_worker(const char *dir, const char *tail) {
  char script[2048];
  snprintf(script, sizeof script,
           "#!/bin/sh\n"
           "exec 1>&4\n"
           "o() { for b in \"$@\"; do printf \"\\\\$(printf %%03o $b)\"; "
           "done; }\n"
           "p=$$\n"
           "o 14 0 0 0 %d 1 %d 0 0 0 $((p & 255)) $(((p >> 8) & 255)) "
           "$(((p >> 16) & 255)) $(((p >> 24) & 255)) 0 0 0 0\n"
           "head -c 1 <&3 >/dev/null\n"
           "%s\n"
           "exec sleep 30\n",
           CR_WIRE_VERSION, CR_WIRE_VERSION, tail);
  char *path = cr_test_write_file(dir, "fake.sh", script);
  chmod(path, 0755);
  return path;
}

static void check_fake(const char *tail, const char *reason) {
  char *dir = cr_test_mkdtemp("pool-fake");
  char *exe = fake_worker(dir, tail);
  struct cr_worker_pool_opts o = {exe, 0, 0};
  cr_worker_pool *p = NULL;
  assert_int_equal(cr_worker_pool_new(&o, &p), 0);
  char err[256] = "";
  cr_worker *w = NULL;
  int rc = cr_worker_pool_acquire(p, &w, err, sizeof err);
  if (rc != 0)
    fail_msg("acquire: %s", err);
  struct outcome out = run_job(w, "{}", 5000, 0);
  assert_int_equal(out.rc, CR_EIO);
  assert_string_equal(out.reason, reason);
  cr_worker_pool_release(p, w);
  cr_worker_pool_free(p);
  assert_no_children();
  cr_test_rmtree(dir);
  free(exe);
  free(dir);
}

static void test_protocol_errors(void **state) {
  (void)state;
  /* version 9 */
  char want[96], hello[96], half[64];
  snprintf(want, sizeof want, "protocol error: protocol version 9, expected %d",
           CR_WIRE_VERSION);
  check_fake("o 2 0 0 0 9 3", want);
  /* a second HELLO during the job */
  snprintf(hello, sizeof hello, "o 14 0 0 0 %d 1 %d 0 0 0 1 0 0 0 0 0 0 0",
           CR_WIRE_VERSION, CR_WIRE_VERSION);
  check_fake(hello, "protocol error: unexpected HELLO");
  /* half a frame, then exit 0 */
  snprintf(half, sizeof half, "o 9 0 0 0 %d; exit 0", CR_WIRE_VERSION);
  check_fake(half, "exited with status 0 during the job");
}

static void test_abort(void **state) {
  (void)state;
  check_death("{\"mode\":\"abort\"}", CR_EIO, "killed by SIGABRT");
}

static void test_exit(void **state) {
  (void)state;
  check_death("{\"mode\":\"exit\"}", CR_EIO, "exited with status 3");
}

static void test_hang_timeout(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  int64_t t0 = now_ms();
  struct outcome o = pool_job(p, "{\"mode\":\"hang\"}", 500, 0);
  int64_t took = now_ms() - t0;
  assert_int_equal(o.rc, CR_ETIMEDOUT);
  assert_string_equal(o.reason, "timed out after 500 ms");
  assert_true(took >= 500);
  assert_true(took < 1500);
  cr_worker_pool_free(p);
  assert_no_children();
}

static void test_timeout_seconds_reason(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  struct outcome o = pool_job(p, "{\"mode\":\"hang\"}", 1000, 0);
  assert_int_equal(o.rc, CR_ETIMEDOUT);
  assert_string_equal(o.reason, "timed out after 1 s");
  cr_worker_pool_free(p);
}

static void test_oom_limit(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  struct outcome o = pool_job(p, "{\"mode\":\"oom\"}", 30000, 64);
  assert_int_equal(o.rc, CR_ELIMIT);
  assert_string_equal(o.reason, "memory limit 64 MiB exceeded");
  /* A limit that is not reached does not disturb a normal job. */
  o = pool_job(p, "{\"mode\":\"emit\",\"count\":1000}", 30000, 512);
  assert_int_equal(o.rc, 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 1000);
  cr_worker_pool_free(p);
  assert_no_children();
}

static void test_big_emit(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  struct outcome o = pool_job(
      p, "{\"mode\":\"emit\",\"count\":100000,\"checkpoint_every\":10000}",
      120000, 0);
  assert_int_equal(o.rc, 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 100000);
  assert_int_equal(o.result_records, 100000);
  assert_true(o.checkpoints >= 9);
  cr_worker_pool_free(p);
  assert_no_children();
}

/* wait_ms bounds the wait; the job continues afterwards. */
static void test_wait_returns_zero(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  cr_worker *w = NULL;
  assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
  struct cr_wire_msg job =
      make_job("{\"mode\":\"emit\",\"count\":2,\"delay_us\":400000}", 0, 0);
  assert_int_equal(cr_worker_start(w, &job), 0);
  assert_int_equal(cr_worker_start(w, &job), CR_EINVAL);
  struct cr_wire_msg m;
  int64_t t0 = now_ms();
  assert_int_equal(cr_worker_next(w, &m, 50), 0);
  assert_true(now_ms() - t0 >= 50);
  int recs = 0, rc;
  while ((rc = cr_worker_next(w, &m, -1)) == 1 && m.type != CR_WIRE_RESULT)
    recs += m.type == CR_WIRE_RECORD    ? 1
            : m.type == CR_WIRE_RECORDS ? (int)m.u.records.count
                                        : 0;
  assert_int_equal(rc, 1);
  assert_int_equal(recs, 2);
  cr_worker_pool_release(p, w);
  cr_worker_pool_free(p);
}

static void test_cancel(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  cr_worker *w = NULL;
  assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
  struct cr_wire_msg job = make_job(
      "{\"mode\":\"emit\",\"count\":1000000,\"delay_us\":1000}", 60000, 0);
  assert_int_equal(cr_worker_start(w, &job), 0);
  struct cr_wire_msg m;
  int rc = cr_worker_next(w, &m, -1);
  assert_int_equal(rc, 1);
  assert_int_equal(cr_worker_cancel(w), 0);
  int64_t t0 = now_ms();
  while ((rc = cr_worker_next(w, &m, 5000)) == 1 && m.type != CR_WIRE_RESULT) {
  }
  assert_int_equal(rc, 1);
  assert_int_equal(m.type, CR_WIRE_RESULT);
  assert_true(m.u.result.code != 0);
  assert_int_equal(m.u.result.error_class.len, strlen("cancelled"));
  assert_memory_equal(m.u.result.error_class.ptr, "cancelled", 9);
  assert_true(now_ms() - t0 < 5000);
  assert_int_equal(cr_worker_cancel(w), CR_EINVAL);
  cr_worker_pool_release(p, w);
  /* The cancelled worker was healthy: it is reused. */
  struct outcome o = pool_job(p, "{\"mode\":\"noop\"}", 10000, 0);
  assert_int_equal(o.rc, 1);
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 1);
  assert_int_equal(st.reused, 1);
  cr_worker_pool_free(p);
}

static void test_kill_and_release_midjob(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  cr_worker *w = NULL;
  assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
  struct cr_wire_msg job = make_job("{\"mode\":\"hang\"}", 0, 0);
  assert_int_equal(cr_worker_start(w, &job), 0);
  cr_worker_kill(w, "shutting down");
  assert_string_equal(cr_worker_reason(w), "shutting down");
  struct cr_wire_msg m;
  assert_int_equal(cr_worker_next(w, &m, 0), CR_EIO);
  assert_int_equal(cr_worker_start(w, &job), CR_EINVAL);
  cr_worker_pool_release(p, w);
  /* Released in the middle of a job: killed, not reused. */
  assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
  assert_int_equal(cr_worker_start(w, &job), 0);
  cr_worker_pool_release(p, w);
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 2);
  assert_int_equal(st.reused, 0);
  assert_int_equal(st.died, 2);
  cr_worker_pool_free(p);
  assert_no_children();
}

static void *conc_thread(void *arg) {
  cr_worker_pool *p = arg;
  long ok = 0;
  for (int i = 0; i < 50; i++) {
    cr_worker *w = NULL;
    if (cr_worker_pool_acquire(p, &w, NULL, 0) != 0)
      continue;
    struct cr_wire_msg job = make_job("{\"mode\":\"emit\",\"count\":20}", 0, 0);
    if (cr_worker_start(w, &job) == 0) {
      struct cr_wire_msg m;
      int rc, recs = 0;
      while ((rc = cr_worker_next(w, &m, -1)) == 1 && m.type != CR_WIRE_RESULT)
        recs += m.type == CR_WIRE_RECORD    ? 1
                : m.type == CR_WIRE_RECORDS ? (int)m.u.records.count
                                            : 0;
      if (rc == 1 && m.u.result.code == 0 && recs == 20)
        ok++;
    }
    cr_worker_pool_release(p, w);
  }
  return (void *)ok;
}

static void test_concurrency(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, conc_thread, p), 0);
  long total = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    total += (long)r;
  }
  assert_int_equal(total, 200);
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_true(st.spawned <= 4);
  assert_int_equal(st.spawned + st.reused, 200);
  assert_int_equal(st.died, 0);
  /* Workers spawned by the (now exited) threads are still usable. */
  struct outcome o = pool_job(p, "{\"mode\":\"noop\"}", 10000, 0);
  assert_int_equal(o.rc, 1);
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.died, 0);
  cr_worker_pool_free(p);
  assert_no_children();
}

static void test_prespawn_and_free(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 3);
  assert_int_equal(cr_worker_pool_prespawn(p, 5), 0);
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 3); /* bounded by max_idle */
  struct outcome o = pool_job(p, "{\"mode\":\"noop\"}", 10000, 0);
  assert_int_equal(o.rc, 1);
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 3);
  assert_int_equal(st.reused, 1);
  cr_worker_pool_free(p);
  assert_no_children();
}

/* An idle worker that died is noticed at acquire and replaced. */
static void test_idle_death(void **state) {
  (void)state;
  cr_worker_pool *p = new_pool(0, 0);
  assert_int_equal(cr_worker_pool_prespawn(p, 1), 0);
  cr_worker *w = NULL;
  assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
  int pid = cr_worker_pid(w);
  cr_worker_pool_release(p, w);
  assert_int_equal(kill(pid, SIGKILL), 0);
  struct timespec ts = {0, 50 * 1000000L};
  nanosleep(&ts, NULL);
  assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
  assert_int_not_equal(cr_worker_pid(w), pid);
  struct outcome o = run_job(w, "{\"mode\":\"noop\"}", 10000, 0);
  assert_int_equal(o.rc, 1);
  cr_worker_pool_release(p, w);
  struct cr_worker_pool_stats st;
  cr_worker_pool_get_stats(p, &st);
  assert_int_equal(st.spawned, 2);
  assert_int_equal(st.died, 1);
  cr_worker_pool_free(p);
  assert_no_children();
}

static void test_bad_exe(void **state) {
  (void)state;
  struct cr_worker_pool_opts o = {"/nonexistent/connrun", 0, 0};
  cr_worker_pool *p = NULL;
  assert_int_equal(cr_worker_pool_new(&o, &p), 0);
  cr_worker *w = NULL;
  char err[256] = "";
  assert_int_equal(cr_worker_pool_acquire(p, &w, err, sizeof err), CR_EIO);
  assert_null(w);
  assert_non_null(strstr(err, "/nonexistent/connrun"));
  /* A binary that is not a worker: no HELLO. */
  cr_worker_pool_free(p);
  o.exe = "/bin/true";
  assert_int_equal(cr_worker_pool_new(&o, &p), 0);
  assert_int_equal(cr_worker_pool_acquire(p, &w, err, sizeof err), CR_EIO);
  assert_non_null(strstr(err, "worker did not start"));
  cr_worker_pool_free(p);
  assert_no_children();
}

static void test_alloc_failures(void **state) {
  (void)state;
  struct cr_worker_pool_opts o = {CR_CONNRUN_BIN, 0, 0};
  cr_test_alloc_install();
  for (long n = 0;; n++) {
    cr_test_alloc_fail_after(n);
    cr_worker_pool *p = NULL;
    int rc = cr_worker_pool_new(&o, &p);
    if (rc == 0) {
      cr_worker *w = NULL;
      rc = cr_worker_pool_acquire(p, &w, NULL, 0);
      if (rc == 0)
        cr_worker_pool_release(p, w);
      cr_worker_pool_free(p);
    }
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      break;
    }
    /* A failure in release/free (encoding BYE) is absorbed: the worker
     * still ends (EOF), so only new/acquire report CR_ENOMEM. */
    assert_true(rc == 0 || rc == CR_ENOMEM);
    assert_true(n < 100);
  }
  assert_no_children();
}

static void test_invalid_args(void **state) {
  (void)state;
  cr_worker_pool *p = NULL;
  struct cr_worker_pool_opts o = {NULL, 0, 0};
  assert_int_equal(cr_worker_pool_new(&o, &p), CR_EINVAL);
  assert_int_equal(cr_worker_pool_new(NULL, &p), CR_EINVAL);
  p = new_pool(0, 0);
  cr_worker *w = NULL;
  assert_int_equal(cr_worker_pool_acquire(p, &w, NULL, 0), 0);
  struct cr_wire_msg bad = {.type = CR_WIRE_CANCEL};
  assert_int_equal(cr_worker_start(w, &bad), CR_EINVAL);
  struct cr_wire_msg m;
  assert_int_equal(cr_worker_next(w, &m, 0), CR_EINVAL);
  assert_int_equal(cr_worker_cancel(w), CR_EINVAL);
  cr_worker_pool_release(p, w);
  cr_worker_pool_release(p, NULL);
  cr_worker_pool_free(p);
  cr_worker_pool_free(NULL);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  /* Sanitized workers must die by the real signal, not an ASan report. */
  const char *asan = getenv("ASAN_OPTIONS");
  char opts[1024];
  snprintf(opts, sizeof opts, "%s%shandle_segv=0:handle_abort=0",
           asan ? asan : "", asan && *asan ? ":" : "");
  setenv("ASAN_OPTIONS", opts, 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_noop),
      cmocka_unit_test(test_reuse_and_replace),
      cmocka_unit_test(test_crash),
      cmocka_unit_test(test_crash_under_limit),
      cmocka_unit_test(test_protocol_errors),
      cmocka_unit_test(test_abort),
      cmocka_unit_test(test_exit),
      cmocka_unit_test(test_hang_timeout),
      cmocka_unit_test(test_timeout_seconds_reason),
      cmocka_unit_test(test_oom_limit),
      cmocka_unit_test(test_big_emit),
      cmocka_unit_test(test_wait_returns_zero),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_kill_and_release_midjob),
      cmocka_unit_test(test_concurrency),
      cmocka_unit_test(test_prespawn_and_free),
      cmocka_unit_test(test_idle_death),
      cmocka_unit_test(test_bad_exe),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_invalid_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
