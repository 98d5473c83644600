/* test_worker.c: the `connrun worker` child process, driven over its real
 * fd 3 / fd 4 pipes with the wire protocol, running the "behave" test
 * plugin: records and checkpoints, state continuation, reuse, crashes,
 * exits, error classes, cancel, redaction and credentials updates, BYE and
 * EOF. */
#include "plugin/plugin_host.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "plugin/wire.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

extern char **environ;

#define BEHAVE CR_TEST_PLUGIN_DIR "/behave.so"

struct wk {
  pid_t pid;
  int to;   /* parent -> worker */
  int from; /* worker -> parent */
  cr_wire_decoder d;
};

/* Moves fd to a number >= 10 (close-on-exec) so dup2 onto 3/4 never is a
 * no-op that keeps O_CLOEXEC. */
static int high_fd(int fd) {
  int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  assert_true(h >= 10);
  close(fd);
  return h;
}

static void wk_start(struct wk *w) {
  int in[2], out[2];
  assert_int_equal(pipe(in), 0);
  assert_int_equal(pipe(out), 0);
  for (int i = 0; i < 2; i++) {
    in[i] = high_fd(in[i]);
    out[i] = high_fd(out[i]);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, 2, 1);
  posix_spawn_file_actions_adddup2(&fa, in[0], 3);
  posix_spawn_file_actions_adddup2(&fa, out[1], 4);
  char *argv[] = {(char *)CR_CONNRUN_BIN, (char *)"worker", NULL};
  int rc = posix_spawn(&w->pid, CR_CONNRUN_BIN, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  assert_int_equal(rc, 0);
  close(in[0]);
  close(out[1]);
  w->to = in[1];
  w->from = out[0];
  cr_wire_decoder_init(&w->d);
}

/* Closes the pipes, waits for the child and returns its wait status. */
static int wk_finish(struct wk *w) {
  if (w->to >= 0)
    close(w->to);
  close(w->from);
  cr_wire_decoder_free(&w->d);
  int st = 0;
  assert_int_equal(waitpid(w->pid, &st, 0), w->pid);
  return st;
}

static void wk_send(struct wk *w, const struct cr_wire_msg *m) {
  cr_wire_buf b;
  cr_wire_buf_init(&b);
  assert_int_equal(cr_wire_encode(&b, m), 0);
  assert_int_equal(cr_wire_write_all(w->to, &b), 0);
  cr_wire_buf_free(&b);
}

/* Next message (views borrowed from w->d). Returns 1, or 0 at EOF. Fails
 * the test after 30 s without a complete message. */
static int wk_recv(struct wk *w, struct cr_wire_msg *m) {
  int rc = cr_wire_next(&w->d, m);
  while (rc == 0) {
    struct pollfd p = {.fd = w->from, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 30000), 1);
    char buf[65536];
    ssize_t n = read(w->from, buf, sizeof buf);
    assert_true(n >= 0);
    if (n == 0) {
      assert_int_equal(cr_wire_decoder_pending(&w->d), 0);
      return 0;
    }
    assert_int_equal(cr_wire_feed(&w->d, buf, (size_t)n), 0);
    rc = cr_wire_next(&w->d, m);
  }
  assert_int_equal(rc, 1);
  return 1;
}

static void expect_hello(struct wk *w) {
  struct cr_wire_msg m;
  assert_int_equal(wk_recv(w, &m), 1);
  assert_int_equal(m.type, CR_WIRE_HELLO);
  assert_int_equal(m.u.hello.version, CR_WIRE_VERSION);
  assert_int_equal(m.u.hello.pid, w->pid);
}

/* The JOB's dest_dir (NULL: the records go to the parent). */
static const char *g_dest_dir;

static void send_job_mem(struct wk *w, const char *creds, const char *config,
                         const char *state, uint64_t memory_limit_mb) {
  struct cr_wire_msg m = {.type = CR_WIRE_JOB};
  m.u.job.execution_id = cr_wire_cstr("exec-1");
  m.u.job.epoch = 1;
  m.u.job.work_id = cr_wire_cstr("work-1");
  m.u.job.authorization_id = cr_wire_cstr("auth-1");
  m.u.job.auth_method = cr_wire_cstr("api_key");
  m.u.job.provider = cr_wire_cstr("behave");
  m.u.job.plugin_path = cr_wire_cstr(BEHAVE);
  m.u.job.credentials_json = cr_wire_cstr(creds ? creds : "{}");
  m.u.job.config_json = cr_wire_cstr(config);
  m.u.job.state_json = cr_wire_cstr(state ? state : "");
  m.u.job.timeout_ms = 60000;
  m.u.job.memory_limit_mb = memory_limit_mb;
  m.u.job.dest_dir = cr_wire_cstr(g_dest_dir);
  wk_send(w, &m);
}

static void send_job(struct wk *w, const char *creds, const char *config,
                     const char *state) {
  send_job_mem(w, creds, config, state, 256);
}

/* What one job produced, up to and including its RESULT. */
struct outcome {
  int got_result, got_metrics;
  uint64_t records, first_id, last_id, ids_in_order;
  int checkpoints;
  char ckpt[16][64]; /* first 16 checkpoint states */
  uint64_t ckpt_since_total;
  char logs[1024];
  char creds[256];
  int32_t code;
  char eclass[32];
  char message[256];
  int64_t retry_after_ms;
  uint64_t result_records;
  uint64_t wrote;    /* WROTE counts */
  int ckpt_behind;   /* a CHECKPOINT before its records were in the file */
  int32_t dest_code; /* DEST_ERROR */
  char dest_message[256];
};

static void copy_view(char *dst, size_t cap, cr_wire_str v) {
  size_t n = v.len < cap - 1 ? v.len : cap - 1;
  memcpy(dst, v.ptr, n);
  dst[n] = '\0';
}

static uint64_t record_id(cr_wire_str json) {
  char tmp[64];
  copy_view(tmp, sizeof tmp, json);
  const char *p = strstr(tmp, "\"id\":");
  assert_non_null(p);
  return strtoull(p + 5, NULL, 10);
}

/* Lines in dir/items.jsonl (0 when there is none). */
static uint64_t file_lines(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/items.jsonl", dir);
  FILE *f = fopen(path, "r");
  uint64_t n = 0;
  int c;
  while (f != NULL && (c = getc(f)) != EOF)
    n += c == '\n';
  if (f != NULL)
    fclose(f);
  return n;
}

/* One record, in order of ids. */
static void take_record(struct outcome *o, cr_wire_str json) {
  uint64_t id = record_id(json);
  if (o->records == 0)
    o->first_id = id;
  else if (id != o->last_id + 1)
    o->ids_in_order = 0;
  o->last_id = id;
  o->records++;
}

/* Reads messages until RESULT (returns 1) or EOF (returns 0). */
static int collect(struct wk *w, struct outcome *o) {
  memset(o, 0, sizeof *o);
  o->ids_in_order = 1;
  struct cr_wire_msg m;
  while (wk_recv(w, &m)) {
    switch (m.type) {
    case CR_WIRE_RECORD:
      assert_int_equal(m.u.record.stream.len, 5);
      assert_memory_equal(m.u.record.stream.ptr, "items", 5);
      take_record(o, m.u.record.json);
      break;
    case CR_WIRE_RECORDS: { /* a batch: each line one record */
      assert_int_equal(m.u.records.stream.len, 5);
      assert_memory_equal(m.u.records.stream.ptr, "items", 5);
      const char *p = m.u.records.lines.ptr;
      const char *end = p + m.u.records.lines.len;
      uint64_t n = 0;
      while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        cr_wire_str one = {p, (size_t)(nl - p)};
        take_record(o, one);
        n++;
        p = nl + 1;
      }
      assert_true(n == m.u.records.count);
      break;
    }
    case CR_WIRE_WROTE:
      assert_int_equal(m.u.wrote.stream.len, 5);
      assert_memory_equal(m.u.wrote.stream.ptr, "items", 5);
      o->wrote += m.u.wrote.count;
      break;
    case CR_WIRE_DEST_ERROR:
      o->dest_code = m.u.dest_error.code;
      copy_view(o->dest_message, sizeof o->dest_message,
                m.u.dest_error.message);
      break;
    case CR_WIRE_CHECKPOINT:
      if (g_dest_dir != NULL && file_lines(g_dest_dir) < o->wrote)
        o->ckpt_behind = 1;
      if (o->checkpoints < 16)
        copy_view(o->ckpt[o->checkpoints], sizeof o->ckpt[0],
                  m.u.checkpoint.state_json);
      o->checkpoints++;
      o->ckpt_since_total += m.u.checkpoint.records_since_last;
      break;
    case CR_WIRE_LOG: {
      size_t l = strlen(o->logs);
      copy_view(o->logs + l, sizeof o->logs - l, m.u.log.text);
      break;
    }
    case CR_WIRE_CREDENTIALS:
      copy_view(o->creds, sizeof o->creds, m.u.credentials.json);
      break;
    case CR_WIRE_METRICS:
      o->got_metrics = 1;
      break;
    case CR_WIRE_PROGRESS:
      break;
    case CR_WIRE_RESULT:
      o->got_result = 1;
      o->code = m.u.result.code;
      copy_view(o->eclass, sizeof o->eclass, m.u.result.error_class);
      copy_view(o->message, sizeof o->message, m.u.result.message);
      o->retry_after_ms = m.u.result.retry_after_ms;
      o->result_records = m.u.result.records;
      return 1;
    default:
      fail_msg("unexpected message %s", cr_wire_type_name(m.type));
    }
  }
  return 0;
}

static void send_type(struct wk *w, int type) {
  struct cr_wire_msg m = {.type = type};
  wk_send(w, &m);
}

/* ---- tests ------------------------------------------------------------------
 */

static void test_hello_bye(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_type(&w, CR_WIRE_BYE);
  struct cr_wire_msg m;
  assert_int_equal(wk_recv(&w, &m), 0);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_eof_exits(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  close(w.to);
  w.to = -1;
  struct cr_wire_msg m;
  assert_int_equal(wk_recv(&w, &m), 0);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_unexpected_message_exits_2(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  struct cr_wire_msg m = {.type = CR_WIRE_METRICS};
  wk_send(&w, &m);
  assert_int_equal(wk_recv(&w, &m), 0);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 2);
}

static void test_emit_checkpoints(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_job(&w, NULL, "{\"count\":1000,\"checkpoint_every\":100}", NULL);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.records, 1000);
  assert_int_equal(o.first_id, 0);
  assert_int_equal(o.last_id, 999);
  assert_true(o.ids_in_order);
  assert_int_equal(o.checkpoints, 10);
  for (int i = 0; i < 10; i++) {
    char want[64];
    snprintf(want, sizeof want, "{\"next\":%d}", (i + 1) * 100);
    assert_string_equal(o.ckpt[i], want);
  }
  assert_int_equal(o.ckpt_since_total, 1000);
  assert_true(o.got_metrics);
  assert_int_equal(o.code, 0);
  assert_string_equal(o.eclass, "");
  assert_string_equal(o.message, "");
  assert_int_equal(o.result_records, 1000);
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* With dest_dir the worker writes the records into its own jsonl files
 * and reports their counts (WROTE); every CHECKPOINT comes once the
 * records before it are in the file; a record the destination refuses
 * stops the job with DEST_ERROR (the reason the parent's own destination
 * gives). */
static void test_own_destination(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("wkdest");
  g_dest_dir = dir;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  /* 0.2 ms a record: each CHECKPOINT is read while the worker has gone
   * only a few records further, and the 256 KiB buffer holds 2,600. */
  send_job(&w, NULL,
           "{\"count\":5000,\"checkpoint_every\":1000,\"delay_us\":200}", NULL);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 0); /* none crossed the pipe */
  assert_int_equal(o.wrote, 5000);
  assert_int_equal(o.checkpoints, 5);
  assert_int_equal(o.ckpt_since_total, 5000);
  assert_false(o.ckpt_behind);
  assert_int_equal(o.result_records, 5000);
  assert_int_equal(file_lines(dir), 5000);
  char path[512];
  snprintf(path, sizeof path, "%s/items.jsonl", dir);
  char *text = cr_test_read_file(path);
  assert_non_null(text);
  assert_memory_equal(text, "{\"id\":0,\"pad\":\"", 15);
  assert_non_null(strstr(text, "\n{\"id\":4999,\"pad\":\""));
  free(text);
  send_job(&w, NULL, "{\"mode\":\"newline\",\"count\":3}", NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.wrote, 3);
  assert_int_equal(o.dest_code, CR_EINVAL);
  assert_non_null(strstr(o.dest_message, "raw newline"));
  assert_int_equal(o.code, CR_PLUGIN_ERR_CANCELLED);
  assert_int_equal(file_lines(dir), 5003); /* drained: nothing torn */
  g_dest_dir = NULL;
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_state_and_reuse(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  struct outcome o;
  send_job(&w, NULL, "{\"count\":20,\"record_bytes\":5000}", "{\"next\":500}");
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 20);
  assert_int_equal(o.first_id, 500);
  assert_int_equal(o.last_id, 519);
  assert_int_equal(o.checkpoints, 1);
  assert_string_equal(o.ckpt[0], "{\"next\":520}");
  /* The same worker runs a second job; counters restart per job. */
  send_job(&w, NULL, "{\"count\":3}", NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 3);
  assert_int_equal(o.first_id, 0);
  assert_int_equal(o.result_records, 3);
  send_job(&w, NULL, "{\"mode\":\"noop\"}", NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.records, 0);
  assert_int_equal(o.checkpoints, 0);
  assert_int_equal(o.code, 0);
  close(w.to); /* EOF between jobs: a clean exit */
  w.to = -1;
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_crash(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_job(&w, NULL, "{\"mode\":\"crash\",\"count\":5}", NULL);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 0);
  assert_int_equal(o.records, 5);
  assert_int_equal(o.checkpoints, 1);
  int st = wk_finish(&w);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGSEGV);
}

static void test_exit_status(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_job(&w, NULL, "{\"mode\":\"exit\",\"count\":2}", NULL);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 0);
  assert_int_equal(o.records, 2);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 3);
}

static void test_abort(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_job(&w, NULL, "{\"mode\":\"abort\",\"count\":1}", NULL);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 0);
  assert_int_equal(o.records, 1);
  int st = wk_finish(&w);
  assert_true(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0));
#ifndef __SANITIZE_ADDRESS__
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGABRT);
#endif
}

/* The RLIMIT_AS backstop (not set in sanitized builds: ASan reserves far
 * more address space than it uses): a plugin allocating without end gets
 * NULL from malloc well before it eats the machine, and behave aborts. A
 * job with a limit that ends normally leaves the worker usable. */
static void test_memory_backstop(void **state) {
  (void)state;
#ifdef __SANITIZE_ADDRESS__
  skip();
#else
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  struct outcome o;
  send_job_mem(&w, NULL, "{\"count\":5}", NULL, 8);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  /* The previous job's limit (VmSize + 16 MiB) was restored: 12 MiB records
   * (plugin buffer + wire buffer, 24 MiB) still fit. */
  send_job_mem(&w, NULL, "{\"count\":2,\"record_bytes\":12000000}", NULL, 0);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 2);
  send_job_mem(&w, NULL, "{\"mode\":\"oom\"}", NULL, 32);
  assert_int_equal(collect(&w, &o), 0);
  int st = wk_finish(&w);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGABRT);
#endif
}

static void test_error_classes(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  struct outcome o;
  send_job(&w, NULL, "{\"mode\":\"config_error\"}", NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, -1);
  assert_string_equal(o.eclass, "config");
  assert_string_equal(o.message, "bad settings");
  send_job(&w, NULL, "{\"mode\":\"ratelimit\"}", NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_string_equal(o.eclass, "rate_limited");
  assert_string_equal(o.message, "slow down");
  assert_int_equal(o.retry_after_ms, 1500);
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_flaky(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("worker");
  char cfg[1024];
  snprintf(cfg, sizeof cfg,
           "{\"mode\":\"flaky\",\"count\":4,\"counter_file\":\"%s/n\"}", dir);
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  struct outcome o;
  send_job(&w, NULL, cfg, NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_string_equal(o.eclass, "transient");
  assert_string_equal(o.message, "flaky: attempt 0 fails");
  assert_int_equal(o.records, 0);
  send_job(&w, NULL, cfg, NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 4);
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  cr_test_rmtree(dir);
  free(dir);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_cancel(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_job(&w, NULL, "{\"count\":100000,\"delay_us\":1000}", NULL);
  struct timespec ts = {0, 200 * 1000 * 1000};
  nanosleep(&ts, NULL);
  double t0 = now_s();
  send_type(&w, CR_WIRE_CANCEL);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 1);
  assert_true(now_s() - t0 < 5.0);
  assert_int_equal(o.code, -5);
  assert_string_equal(o.eclass, "cancelled");
  assert_true(o.records > 0);
  assert_true(o.records < 100000);
  assert_int_equal(o.result_records, o.records);
  /* The worker stays usable after a cancelled job. */
  send_job(&w, NULL, "{\"count\":2}", NULL);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  assert_int_equal(o.records, 2);
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A CANCEL sent right behind its JOB (queued, loading or in create()) still
 * cancels it. */
static void test_cancel_immediately(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  for (int i = 0; i < 3; i++) {
    send_job(&w, NULL, "{\"count\":100000,\"delay_us\":1000}", NULL);
    send_type(&w, CR_WIRE_CANCEL);
    struct outcome o;
    assert_int_equal(collect(&w, &o), 1);
    assert_string_equal(o.eclass, "cancelled");
    assert_true(o.records < 100000);
  }
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_eof_during_job(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_job(&w, NULL, "{\"mode\":\"hang\"}", NULL);
  close(w.to);
  w.to = -1;
  struct outcome o;
  assert_int_equal(collect(&w, &o), 0);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 1);
}

static void test_cred_redaction(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  send_job(&w,
           "{\"api_key\":\"sk-very-secret-123\",\"n\":{\"x\":\"nested-pw\"}}",
           "{\"mode\":\"cred\",\"count\":1}", NULL);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  assert_non_null(strstr(o.logs, "using key " CR_REDACT_MARK));
  assert_null(strstr(o.logs, "sk-very-secret-123"));
  assert_string_equal(o.creds, "{\"api_key\":\"rotated-1\"}");
  assert_int_equal(o.records, 1);
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_bad_plugin(void **state) {
  (void)state;
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  struct cr_wire_msg m = {.type = CR_WIRE_JOB};
  m.u.job.provider = cr_wire_cstr("alpha"); /* behave.so is not alpha */
  m.u.job.plugin_path = cr_wire_cstr(BEHAVE);
  m.u.job.credentials_json = cr_wire_cstr("{}");
  m.u.job.config_json = cr_wire_cstr("{}");
  wk_send(&w, &m);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 1);
  assert_string_equal(o.eclass, "system");
  assert_non_null(strstr(o.message, "behave"));
  m.u.job.plugin_path = cr_wire_cstr(CR_TEST_PLUGIN_DIR "/missing.so");
  wk_send(&w, &m);
  assert_int_equal(collect(&w, &o), 1);
  assert_string_equal(o.eclass, "system");
  assert_true(o.message[0] != '\0');
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A JOB naming a plugin file identity other than the file at its path (a
 * plugin upgraded between the parent's load and the job) fails as
 * transient, naming the path; the real identity runs. */
static void test_plugin_identity(void **state) {
  (void)state;
  struct cr_plugin_file_id id;
  assert_int_equal(cr_plugin_file_id_get(BEHAVE, &id), 0);
  char real[96], other[96];
  cr_plugin_file_id_format(&id, real, sizeof real);
  id.mtime_ns += 1;
  cr_plugin_file_id_format(&id, other, sizeof other);
  struct wk w;
  wk_start(&w);
  expect_hello(&w);
  struct cr_wire_msg m = {.type = CR_WIRE_JOB};
  m.u.job.provider = cr_wire_cstr("behave");
  m.u.job.plugin_path = cr_wire_cstr(BEHAVE);
  m.u.job.credentials_json = cr_wire_cstr("{}");
  m.u.job.config_json = cr_wire_cstr("{\"mode\":\"noop\"}");
  m.u.job.plugin_id = cr_wire_cstr(other);
  wk_send(&w, &m);
  struct outcome o;
  assert_int_equal(collect(&w, &o), 1);
  assert_string_equal(o.eclass, "transient");
  assert_non_null(strstr(o.message, "not the version the daemon loaded"));
  m.u.job.plugin_id = cr_wire_cstr(real);
  wk_send(&w, &m);
  assert_int_equal(collect(&w, &o), 1);
  assert_int_equal(o.code, 0);
  send_type(&w, CR_WIRE_BYE);
  int st = wk_finish(&w);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  alarm(240);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello_bye),
      cmocka_unit_test(test_eof_exits),
      cmocka_unit_test(test_unexpected_message_exits_2),
      cmocka_unit_test(test_emit_checkpoints),
      cmocka_unit_test(test_own_destination),
      cmocka_unit_test(test_state_and_reuse),
      cmocka_unit_test(test_crash),
      cmocka_unit_test(test_exit_status),
      cmocka_unit_test(test_abort),
      cmocka_unit_test(test_memory_backstop),
      cmocka_unit_test(test_error_classes),
      cmocka_unit_test(test_flaky),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_cancel_immediately),
      cmocka_unit_test(test_eof_during_job),
      cmocka_unit_test(test_cred_redaction),
      cmocka_unit_test(test_bad_plugin),
      cmocka_unit_test(test_plugin_identity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
