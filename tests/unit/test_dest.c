/* test_dest.c: destinations on real files. jsonl: per-stream files, order,
 * buffering until flush, the directory made by the first record, draining
 * to the kernel with the descriptors to fsync, reopen appends, torn-tail
 * repair, records larger than the buffer, refusal of bad stream names /
 * newlines / empty records, SIGKILL after a flush keeps exactly the flushed
 * records. sqlite: upsert by (composite) primary key, missing key fields,
 * append without a key, flush is the commit point (seen from another
 * connection), close rolls back, table shape mismatches, SIGKILL after a flush.
 * The factory, throughput (printed, not asserted) and allocation failures. */
#include "testutil.h"

#include "dest/dest.h"
#include "util/alloc.h"
#include "util/error.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- Helpers ------------------------------------------------------------- */

static int wr(cr_dest *d, const char *stream, const char *json) {
  return cr_dest_write(d, stream, json, strlen(json));
}

static char *path_in(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static char *read_in(const char *dir, const char *name) {
  char *p = path_in(dir, name);
  char *text = cr_test_read_file(p);
  free(p);
  return text;
}

static cr_dest *open_jsonl(const char *dir) {
  cr_dest *d = NULL;
  char err[256] = "";
  int rc = cr_dest_open_jsonl(dir, &d, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "open jsonl: %s\n", err);
  assert_int_equal(rc, 0);
  return d;
}

static cr_dest *open_sqlite(const char *path) {
  cr_dest *d = NULL;
  char err[256] = "";
  int rc = cr_dest_open_sqlite(path, &d, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "open sqlite: %s\n", err);
  assert_int_equal(rc, 0);
  return d;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one SQL query returning a single integer on a separate connection;
 * -1 if the query fails (e.g. no such table). */
static long long query_int(const char *db, const char *sql) {
  sqlite3 *c = NULL;
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(c);
  return v;
}

/* Text result of a query on a separate connection; caller frees. */
static char *query_text(const char *db, const char *sql) {
  sqlite3 *c = NULL;
  sqlite3_stmt *st = NULL;
  char *v = NULL;
  if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    v = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(c);
  return v;
}

static size_t count_lines(const char *text) {
  size_t n = 0;
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  return n;
}

/* ---- jsonl --------------------------------------------------------------- */

/* The directory is made by the first record: an execution that writes
 * nothing leaves nothing behind, even after a flush. A file where the
 * directory should be is refused by the first record too, when it appeared
 * after the open. */
static void jsonl_directory_made_by_first_record(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  char *dir = path_in(tmp, "x/y/out");
  struct stat st;
  cr_dest *d = open_jsonl(dir);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  char *x = path_in(tmp, "x");
  assert_int_equal(stat(x, &st), -1); /* not even the first level */
  d = open_jsonl(dir);
  assert_int_equal(wr(d, "users", "{\"id\":1}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  assert_int_equal(stat(dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  char *text = read_in(dir, "users.jsonl");
  assert_string_equal(text, "{\"id\":1}\n");
  free(text);
  /* A file put in the way between the open and the first record. */
  char *late = path_in(tmp, "late");
  d = open_jsonl(late);
  free(cr_test_write_file(tmp, "late", "x"));
  assert_int_equal(wr(d, "users", "{\"id\":1}"), CR_EIO);
  assert_non_null(strstr(cr_dest_last_error(d), "late"));
  cr_dest_close(d);
  free(late);
  free(x);
  free(dir);
  cr_test_rmtree(tmp);
  free(tmp);
}

/* cr_dest_drain_fds: the records reach the file (readable, not yet
 * fsync()ed) and the descriptors to fsync are the file written and the
 * directory that got a file; nothing new, nothing listed; a list too short
 * and a variant without it are refused without a change. */
static void jsonl_drain_fds(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  char *dir = path_in(tmp, "out");
  cr_dest *d = open_jsonl(dir);
  int fds[4] = {-1, -1, -1, -1};
  size_t n = 9;
  assert_int_equal(cr_dest_drain_fds(d, fds, 4, &n), 0);
  assert_int_equal(n, 0); /* nothing written yet */
  assert_int_equal(wr(d, "users", "{\"id\":1}"), 0);
  assert_int_equal(wr(d, "orders", "{\"o\":1}"), 0);
  assert_int_equal(cr_dest_drain_fds(d, fds, 2, &n), CR_ENOTSUP);
  char *text = read_in(dir, "users.jsonl");
  assert_string_equal(text, ""); /* refused: still buffered */
  free(text);
  assert_int_equal(cr_dest_drain_fds(d, fds, 4, &n), 0);
  assert_int_equal(n, 3); /* two files and the directory */
  for (size_t i = 0; i < n; i++)
    assert_int_equal(fsync(fds[i]), 0);
  text = read_in(dir, "users.jsonl");
  assert_string_equal(text, "{\"id\":1}\n");
  free(text);
  assert_int_equal(cr_dest_drain_fds(d, fds, 4, &n), 0);
  assert_int_equal(n, 0); /* counted as flushed */
  assert_int_equal(wr(d, "users", "{\"id\":2}"), 0);
  assert_int_equal(cr_dest_drain_fds(d, fds, 4, &n), 0);
  assert_int_equal(n, 1); /* only the file written since */
  cr_dest_close(d);
  char *db = path_in(tmp, "d.db");
  d = open_sqlite(db);
  assert_int_equal(cr_dest_drain_fds(d, fds, 4, &n), CR_ENOTSUP);
  assert_int_equal(cr_dest_drain_fds(NULL, fds, 4, &n), CR_EINVAL);
  cr_dest_close(d);
  free(db);
  free(dir);
  cr_test_rmtree(tmp);
  free(tmp);
}

static void jsonl_streams_order_and_flush(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  char *dir = path_in(tmp, "a/b/out"); /* mkdir -p */
  cr_dest *d = open_jsonl(dir);
  assert_int_equal(wr(d, "users", "{\"id\":1}"), 0);
  assert_int_equal(wr(d, "orders", "{\"o\":1}"), 0);
  assert_int_equal(wr(d, "users", "{\"id\":2}"), 0);
  assert_int_equal(cr_dest_records(d), 3);
  char *text = read_in(dir, "users.jsonl");
  assert_non_null(text);
  assert_string_equal(text, ""); /* buffered: nothing before flush */
  free(text);
  assert_int_equal(cr_dest_flush(d), 0);
  text = read_in(dir, "users.jsonl");
  assert_string_equal(text, "{\"id\":1}\n{\"id\":2}\n");
  free(text);
  text = read_in(dir, "orders.jsonl");
  assert_string_equal(text, "{\"o\":1}\n");
  free(text);
  assert_int_equal(cr_dest_flush(d), 0); /* nothing to do */
  assert_string_equal(cr_dest_last_error(d), "");
  cr_dest_close(d);
  free(dir);
  cr_test_rmtree(tmp);
  free(tmp);
}

static void jsonl_refusals(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  cr_dest *d = open_jsonl(tmp);
  static const char *const bad[] = {"",     ".hidden", "a/b", "a b",
                                    "../x", "..",      "x\n", "é"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(wr(d, bad[i], "{}"), CR_EINVAL);
  char longname[200];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(wr(d, longname, "{}"), CR_EINVAL);
  struct cr_dest_stream st = {.name = ".x"};
  assert_int_equal(cr_dest_declare_stream(d, &st), CR_EINVAL);
  assert_int_equal(wr(d, "ok", "{\"a\":\n1}"), CR_EINVAL);
  assert_non_null(strstr(cr_dest_last_error(d), "newline"));
  assert_int_equal(cr_dest_write(d, "ok", "", 0), CR_EINVAL);
  assert_int_equal(cr_dest_records(d), 0);
  /* A refused record does not poison the destination. */
  assert_int_equal(wr(d, "ok-1.v2", "{}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  char *text = read_in(tmp, "ok-1.v2.jsonl");
  assert_string_equal(text, "{}\n");
  free(text);
  text = read_in(tmp, "ok.jsonl"); /* refused records created nothing */
  assert_null(text);
  cr_dest_close(d);
  /* A regular file where the directory should be. */
  char *file = cr_test_write_file(tmp, "plain", "x");
  cr_dest *d2 = NULL;
  char err[256] = "";
  assert_int_equal(cr_dest_open_jsonl(file, &d2, err, sizeof err), CR_EIO);
  assert_null(d2);
  assert_true(err[0] != '\0');
  assert_int_equal(cr_dest_open_jsonl("", &d2, NULL, 0), CR_EINVAL);
  free(file);
  cr_test_rmtree(tmp);
  free(tmp);
}

static void jsonl_reopen_appends_close_drops(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  cr_dest *d = open_jsonl(tmp);
  assert_int_equal(wr(d, "s", "1"), 0);
  assert_int_equal(wr(d, "s", "2"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(wr(d, "s", "lost"), 0); /* never flushed */
  cr_dest_close(d);
  d = open_jsonl(tmp);
  assert_int_equal(wr(d, "s", "3"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  char *text = read_in(tmp, "s.jsonl");
  assert_string_equal(text, "1\n2\n3\n");
  free(text);
  cr_test_rmtree(tmp);
  free(tmp);
}

static void jsonl_torn_tail_repaired(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  free(cr_test_write_file(tmp, "s.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\":"));
  free(cr_test_write_file(tmp, "t.jsonl", "no newline at all"));
  cr_dest *d = open_jsonl(tmp);
  assert_int_equal(wr(d, "s", "{\"a\":3}"), 0);
  assert_int_equal(wr(d, "t", "{\"t\":1}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  char *text = read_in(tmp, "s.jsonl");
  assert_string_equal(text, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
  free(text);
  text = read_in(tmp, "t.jsonl");
  assert_string_equal(text, "{\"t\":1}\n");
  free(text);
  cr_test_rmtree(tmp);
  free(tmp);
}

static void jsonl_big_records_keep_order(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  size_t big = 600 * 1024; /* larger than the 256 KiB buffer */
  char *rec = malloc(big + 1);
  memset(rec, 'x', big);
  rec[0] = '"';
  rec[big - 1] = '"';
  rec[big] = '\0';
  cr_dest *d = open_jsonl(tmp);
  assert_int_equal(wr(d, "s", "1"), 0);
  assert_int_equal(wr(d, "s", rec), 0);
  assert_int_equal(wr(d, "s", "2"), 0);
  for (int i = 0; i < 5000; i++) /* fills the buffer several times */
    assert_int_equal(wr(d, "s",
                        "0123456789012345678901234567890123456789"
                        "0123456789012345678901234567890123456789"),
                     0);
  assert_int_equal(wr(d, "s", "3"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  char *text = read_in(tmp, "s.jsonl");
  assert_non_null(text);
  assert_int_equal(strlen(text), 2 + big + 1 + 2 + 5000 * 81 + 2);
  assert_memory_equal(text, "1\n\"", 3);
  assert_memory_equal(text + 2 + big - 1, "\"\n2\n0123", 7);
  assert_string_equal(text + strlen(text) - 2, "3\n");
  assert_int_equal(count_lines(text), 5004);
  free(text);
  free(rec);
  cr_test_rmtree(tmp);
  free(tmp);
}

/* Batches of lines (the worker's RECORDS): buffered with the single
 * records around them, in order; a block bigger than the buffer goes
 * straight through; malformed batches are refused and change nothing. */
static void jsonl_write_lines(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  cr_dest *d = open_jsonl(tmp);
  assert_int_equal(wr(d, "s", "1"), 0);
  assert_int_equal(cr_dest_write_lines(d, "s", "2\n3\n", 4, 2), 0);
  assert_int_equal(cr_dest_records(d), 3);
  assert_int_equal(cr_dest_write_lines(d, "s", "4", 1, 1), CR_EINVAL);
  assert_int_equal(cr_dest_write_lines(d, "s", "4\n", 2, 0), CR_EINVAL);
  assert_int_equal(cr_dest_write_lines(d, "s", "", 0, 1), CR_EINVAL);
  assert_int_equal(cr_dest_write_lines(d, "../x", "4\n", 2, 1), CR_EINVAL);
  assert_int_equal(cr_dest_records(d), 3);
  size_t big = 700 * 1024, lines = big / 10;
  char *blk = malloc(big);
  for (size_t i = 0; i < lines; i++)
    memcpy(blk + i * 10, "{\"k\":123}\n", 10);
  assert_int_equal(cr_dest_write_lines(d, "s", blk, lines * 10, lines), 0);
  assert_int_equal(wr(d, "s", "5"), 0);
  assert_int_equal(cr_dest_records(d), 4 + (int64_t)lines);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  char *text = read_in(tmp, "s.jsonl");
  assert_non_null(text);
  assert_int_equal(strlen(text), 6 + lines * 10 + 2);
  assert_memory_equal(text, "1\n2\n3\n{\"k\"", 10);
  assert_string_equal(text + strlen(text) - 12, "{\"k\":123}\n5\n");
  assert_int_equal(count_lines(text), lines + 4);
  free(text);
  free(blk);
  cr_test_rmtree(tmp);
  free(tmp);
}

/* A jsonl destination written by another process (a worker): this side
 * refuses records, opens a stream's file by its first note without
 * creating or repairing it, counts the records and hands the file (and the
 * directory) to the next drain or flush. */
static void jsonl_synced(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  cr_dest *w = open_jsonl(tmp), *d = NULL, *d2 = NULL;
  char err[256] = "";
  assert_int_equal(cr_dest_open_jsonl_synced(tmp, &d, err, sizeof err), 0);
  assert_int_equal(wr(d, "s", "{}"), CR_ENOTSUP);
  assert_int_equal(cr_dest_write_lines(d, "s", "{}\n", 3, 1), CR_ENOTSUP);
  assert_int_equal(cr_dest_written(w, "s", 1), CR_ENOTSUP);
  assert_int_equal(wr(w, "s", "{\"a\":1}"), 0);
  assert_int_equal(wr(w, "s", "{\"a\":2}"), 0);
  int fds[4];
  size_t n = 0;
  assert_int_equal(cr_dest_drain_fds(w, fds, 4, &n), 0); /* to the kernel */
  assert_int_equal(cr_dest_written(d, "s", 2), 0);
  assert_int_equal(cr_dest_written(d, "../x", 1), CR_EINVAL);
  assert_int_equal(cr_dest_records(d), 2);
  assert_int_equal(cr_dest_drain_fds(d, fds, 4, &n), 0);
  assert_int_equal(n, 2); /* the file, and the directory it may be new in */
  assert_int_equal(cr_dest_drain_fds(d, fds, 4, &n), 0);
  assert_int_equal(n, 0); /* nothing noted since */
  assert_int_equal(cr_dest_written(d, "s", 1), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  /* A torn tail is the writer's business: left as it is. */
  free(cr_test_write_file(tmp, "u.jsonl", "{\"a\":1}\n{\"torn"));
  assert_int_equal(cr_dest_written(d, "u", 1), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  char *text = read_in(tmp, "u.jsonl");
  assert_string_equal(text, "{\"a\":1}\n{\"torn");
  free(text);
  text = read_in(tmp, "s.jsonl");
  assert_string_equal(text, "{\"a\":1}\n{\"a\":2}\n");
  free(text);
  /* A stream the writer never made: refused, and the destination failed. */
  assert_int_equal(cr_dest_open_jsonl_synced(tmp, &d2, err, sizeof err), 0);
  assert_int_equal(cr_dest_written(d2, "none", 1), CR_EIO);
  assert_non_null(strstr(cr_dest_last_error(d2), "none.jsonl"));
  assert_int_equal(cr_dest_flush(d2), CR_EIO);
  assert_null(read_in(tmp, "none.jsonl"));
  cr_dest_close(d2);
  cr_dest_close(d);
  cr_dest_close(w);
  cr_test_rmtree(tmp);
  free(tmp);
}

/* Child: writes+flushes n records, writes `extra` more without flushing,
 * tells the parent through fd and waits to be killed. */
static void child_write_then_wait(int sqlite, const char *where, int n,
                                  int extra, int fd) {
  cr_dest *d = NULL;
  int rc = sqlite ? cr_dest_open_sqlite(where, &d, NULL, 0)
                  : cr_dest_open_jsonl(where, &d, NULL, 0);
  if (rc != 0)
    _exit(2);
  char rec[128];
  for (int i = 0; i < n + extra; i++) {
    if (i == n && cr_dest_flush(d) != 0)
      _exit(3);
    snprintf(rec, sizeof rec, "{\"i\":%d,\"pad\":\"%060d\"}", i, i);
    if (wr(d, "s", rec) != 0)
      _exit(4);
  }
  if (write(fd, "k", 1) != 1)
    _exit(5);
  for (;;)
    pause();
}

static void kill_after_flush(int sqlite, const char *where, int n, int extra) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    child_write_then_wait(sqlite, where, n, extra, fds[1]);
  }
  close(fds[1]);
  char c = 0;
  assert_int_equal(read(fds[0], &c, 1), 1);
  close(fds[0]);
  assert_int_equal(kill(pid, SIGKILL), 0);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void jsonl_kill9_keeps_flushed(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  const int n = 1000;
  kill_after_flush(0, tmp, n, 500); /* 500 unflushed fit in the buffer */
  char *text = read_in(tmp, "s.jsonl");
  assert_non_null(text);
  assert_int_equal(count_lines(text), (size_t)n);
  assert_true(text[strlen(text) - 1] == '\n'); /* whole lines only */
  char rec[128];
  const char *p = text;
  for (int i = 0; i < n; i++) {
    int len = snprintf(rec, sizeof rec, "{\"i\":%d,\"pad\":\"%060d\"}\n", i, i);
    assert_memory_equal(p, rec, (size_t)len);
    p += len;
  }
  assert_int_equal(*p, '\0');
  free(text);
  cr_test_rmtree(tmp);
  free(tmp);
}

/* Child: a file size limit makes write() fail (EFBIG); the destination
 * must report CR_EIO and stay failed. Exit code 0 = as expected. */
static int child_io_error(const char *dir) {
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl = {.rlim_cur = 4096, .rlim_max = 4096};
  if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
    return 10;
  cr_dest *d = NULL;
  if (cr_dest_open_jsonl(dir, &d, NULL, 0) != 0)
    return 11;
  char rec[1000];
  memset(rec, 'x', sizeof rec - 1);
  rec[sizeof rec - 1] = '\0';
  for (int i = 0; i < 10; i++)
    if (wr(d, "s", rec) != 0)
      return 12;
  int rc = cr_dest_flush(d);
  const char *err = cr_dest_last_error(d);
  int ok = rc == CR_EIO && strstr(err, "s.jsonl") != NULL &&
           wr(d, "s", "{}") == CR_EIO && cr_dest_flush(d) == CR_EIO &&
           cr_dest_records(d) == 10;
  cr_dest_close(d);
  return ok ? 0 : 13;
}

static void jsonl_io_error_is_sticky(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(child_io_error(tmp));
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  /* Reopening cuts the torn tail the failed write left behind. */
  cr_dest *d = open_jsonl(tmp);
  assert_int_equal(wr(d, "s", "{}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  char *text = read_in(tmp, "s.jsonl");
  assert_non_null(text);
  /* 4096 bytes got through: 4 whole 1000-byte lines and a torn 5th. */
  assert_int_equal(strlen(text), 4 * 1000 + 3);
  assert_int_equal(count_lines(text), 5);
  assert_string_equal(text + 4000, "{}\n");
  free(text);
  cr_test_rmtree(tmp);
  free(tmp);
}

static void jsonl_throughput(void **state) {
  (void)state;
  char *tmp = cr_test_mkdtemp("dest");
  char rec[400];
  int len = snprintf(rec, sizeof rec,
                     "{\"id\":%d,\"name\":\"%0100d\",\"body\":\"%0150d\","
                     "\"ok\":true}",
                     123456, 0, 0);
  const long total = 1000000;
  cr_dest *d = open_jsonl(tmp);
  double t0 = now_s();
  for (long i = 0; i < total; i++) {
    assert_int_equal(cr_dest_write(d, "perf", rec, (size_t)len), 0);
    if ((i + 1) % 100000 == 0)
      assert_int_equal(cr_dest_flush(d), 0);
  }
  assert_int_equal(cr_dest_flush(d), 0);
  double dt = now_s() - t0;
  printf("jsonl: %ld records of %d bytes in %.3fs: %.0f records/s\n", total,
         len, dt, (double)total / dt);
  cr_dest_close(d);
  char *p = path_in(tmp, "perf.jsonl");
  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_size, total * (len + 1));
  free(p);
  cr_test_rmtree(tmp);
  free(tmp);
}

/* ---- sqlite -------------------------------------------------------------- */

struct sfix {
  char *tmp;
  char *db;
};

static int sql_setup(void **state) {
  struct sfix *f = calloc(1, sizeof *f);
  f->tmp = cr_test_mkdtemp("dest");
  f->db = path_in(f->tmp, "sub/out.sqlite");
  *state = f;
  return 0;
}

static int sql_teardown(void **state) {
  struct sfix *f = *state;
  cr_test_rmtree(f->tmp);
  free(f->tmp);
  free(f->db);
  free(f);
  return 0;
}

static void sqlite_upsert(void **state) {
  struct sfix *f = *state;
  cr_dest *d = open_sqlite(f->db);
  static const char *const key[] = {"id"};
  struct cr_dest_stream st = {"users", key, 1};
  assert_int_equal(cr_dest_declare_stream(d, &st), 0);
  assert_int_equal(cr_dest_declare_stream(d, &st), 0); /* same: fine */
  assert_int_equal(wr(d, "users", "{\"id\":1,\"v\":\"a\"}"), 0);
  assert_int_equal(wr(d, "users", "{\"id\":2,\"v\":\"x\"}"), 0);
  assert_int_equal(wr(d, "users", "{\"v\":\"b\", \"id\":1}"), 0);
  assert_int_equal(cr_dest_records(d), 3);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_users"), 2);
  char *data =
      query_text(f->db, "SELECT data FROM stream_users WHERE pk = '[1]'");
  assert_string_equal(data, "{\"v\":\"b\", \"id\":1}"); /* text as given */
  free(data);
  assert_true(query_int(f->db, "SELECT min(updated_at) FROM stream_users") >
              1600000000000LL);
  /* Another key for the same stream is a state error. */
  static const char *const key2[] = {"other"};
  struct cr_dest_stream st2 = {"users", key2, 1};
  assert_int_equal(cr_dest_declare_stream(d, &st2), CR_ESTATE);
  cr_dest_close(d);
  /* Reopened, undeclared: the existing keyed table cannot take appends. */
  d = open_sqlite(f->db);
  assert_int_equal(wr(d, "users", "{\"id\":3}"), CR_ESCHEMA);
  assert_non_null(strstr(cr_dest_last_error(d), "stream_users"));
  assert_int_equal(cr_dest_declare_stream(d, &st), 0); /* declared: fine */
  assert_int_equal(wr(d, "users", "{\"id\":3}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_users"), 3);
  cr_dest_close(d);
}

/* sqlite takes a batch record by record: keys upserted, and a count that
 * does not match the lines is refused. */
static void sqlite_write_lines(void **state) {
  struct sfix *f = *state;
  cr_dest *d = open_sqlite(f->db);
  static const char *const key[] = {"id"};
  struct cr_dest_stream st = {"users", key, 1};
  assert_int_equal(cr_dest_declare_stream(d, &st), 0);
  static const char blk[] = "{\"id\":1,\"v\":1}\n{\"id\":2}\n{\"id\":1}\n";
  assert_int_equal(cr_dest_write_lines(d, "users", blk, sizeof blk - 1, 3), 0);
  assert_int_equal(cr_dest_records(d), 3);
  assert_int_equal(cr_dest_write_lines(d, "users", "{\"id\":3}\n", 9, 2),
                   CR_EINVAL);
  assert_non_null(strstr(cr_dest_last_error(d), "batch"));
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_users"), 3);
  char *data =
      query_text(f->db, "SELECT data FROM stream_users WHERE pk = '[1]'");
  assert_string_equal(data, "{\"id\":1}");
  free(data);
  cr_dest_close(d);
}

static void sqlite_composite_key(void **state) {
  struct sfix *f = *state;
  cr_dest *d = open_sqlite(f->db);
  static const char *const key[] = {"org", "id"};
  struct cr_dest_stream st = {"m", key, 2};
  assert_int_equal(cr_dest_declare_stream(d, &st), 0);
  assert_int_equal(wr(d, "m", "{\"org\":\"x\",\"id\":1}"), 0);
  assert_int_equal(wr(d, "m", "{\"org\":\"y\",\"id\":1}"), 0);
  assert_int_equal(wr(d, "m", "{\"org\":\"x\",\"id\":2}"), 0);
  assert_int_equal(wr(d, "m", "{\"id\":1,\"org\":\"x\",\"n\":2}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_m"), 3);
  char *data =
      query_text(f->db, "SELECT data FROM stream_m WHERE pk = '[\"x\",1]'");
  assert_string_equal(data, "{\"id\":1,\"org\":\"x\",\"n\":2}");
  free(data);
  cr_dest_close(d);
}

static void sqlite_missing_key(void **state) {
  struct sfix *f = *state;
  cr_dest *d = open_sqlite(f->db);
  static const char *const key[] = {"id", "tenant"};
  struct cr_dest_stream st = {"k", key, 2};
  assert_int_equal(cr_dest_declare_stream(d, &st), 0);
  assert_int_equal(wr(d, "k", "{\"id\":1}"), CR_EINVAL);
  assert_non_null(strstr(cr_dest_last_error(d), "\"tenant\""));
  assert_int_equal(wr(d, "k", "{\"id\":null,\"tenant\":1}"), CR_EINVAL);
  assert_non_null(strstr(cr_dest_last_error(d), "\"id\""));
  assert_int_equal(wr(d, "k", "[1,2]"), CR_EINVAL);
  assert_int_equal(wr(d, "k", "{not json"), CR_EINVAL);
  assert_int_equal(cr_dest_records(d), 0);
  cr_dest *d2 = open_sqlite(f->db); /* a fresh one has no error text */
  assert_string_equal(cr_dest_last_error(d2), "");
  assert_int_equal(cr_dest_declare_stream(d2, &st), 0);
  assert_int_equal(wr(d2, "k", "{\"id\":9,\"tenant\":\"t\"}"), 0);
  assert_string_equal(cr_dest_last_error(d2), "");
  cr_dest_close(d2); /* unflushed: rolled back */
  assert_int_equal(wr(d, "k", "{\"id\":1,\"tenant\":\"t\"}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_k"), 1);
  assert_int_equal(wr(d, "bad name", "{}"), CR_EINVAL);
  assert_int_equal(wr(d, "K", "{}"), CR_EINVAL); /* same table as "k" */
  assert_non_null(strstr(cr_dest_last_error(d), "case-insensitive"));
  cr_dest_close(d);
}

static void sqlite_no_key_appends(void **state) {
  struct sfix *f = *state;
  cr_dest *d = open_sqlite(f->db);
  for (int i = 0; i < 3; i++)
    assert_int_equal(wr(d, "events", "{\"same\":true}"), 0);
  assert_int_equal(wr(d, "events", "not even json"), 0); /* stored as is */
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_events"), 4);
  char *data =
      query_text(f->db, "SELECT data FROM stream_events ORDER BY id DESC");
  assert_string_equal(data, "not even json");
  free(data);
  cr_dest_close(d);
  /* Reopen and declare with a key: the table has the other shape. */
  d = open_sqlite(f->db);
  static const char *const key[] = {"id"};
  struct cr_dest_stream st = {"events", key, 1};
  assert_int_equal(cr_dest_declare_stream(d, &st), CR_ESCHEMA);
  assert_int_equal(wr(d, "events", "{}"), 0); /* undeclared: appends */
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_events"), 5);
  cr_dest_close(d);
}

static void sqlite_flush_is_commit(void **state) {
  struct sfix *f = *state;
  cr_dest *d = open_sqlite(f->db);
  for (int i = 0; i < 5; i++)
    assert_int_equal(wr(d, "s", "{}"), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_s"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_s"), 5);
  for (int i = 0; i < 3; i++)
    assert_int_equal(wr(d, "s", "{}"), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_s"), 5);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_s"), 8);
  assert_int_equal(wr(d, "s", "{}"), 0);
  cr_dest_close(d); /* no implicit flush */
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_s"), 8);
  char *mode = query_text(f->db, "PRAGMA journal_mode");
  assert_string_equal(mode, "wal");
  free(mode);
}

static void sqlite_kill9_keeps_flushed(void **state) {
  struct sfix *f = *state;
  const int n = 500;
  kill_after_flush(1, f->db, n, 200);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_s"), n);
  assert_int_equal(query_int(f->db, "SELECT max(id) FROM stream_s"), n);
}

static void sqlite_throughput(void **state) {
  struct sfix *f = *state;
  cr_dest *d = open_sqlite(f->db);
  static const char *const key[] = {"id"};
  struct cr_dest_stream st = {"perf", key, 1};
  assert_int_equal(cr_dest_declare_stream(d, &st), 0);
  const int total = 100000;
  char rec[400];
  double t0 = now_s();
  for (int i = 0; i < total; i++) {
    int len = snprintf(rec, sizeof rec,
                       "{\"id\":%d,\"name\":\"%0100d\",\"body\":\"%0150d\"}",
                       i % 90000, i, i);
    assert_int_equal(cr_dest_write(d, "perf", rec, (size_t)len), 0);
    if ((i + 1) % 10000 == 0)
      assert_int_equal(cr_dest_flush(d), 0);
  }
  assert_int_equal(cr_dest_flush(d), 0);
  double dt = now_s() - t0;
  printf("sqlite: %d upserts in %.3fs: %.0f records/s\n", total, dt,
         (double)total / dt);
  cr_dest_close(d);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_perf"), 90000);
}

/* ---- Factory and allocation failures ------------------------------------- */

static void factory(void **state) {
  struct sfix *f = *state;
  char *dir = path_in(f->tmp, "j");
  struct cr_config_destination cfg = {.type = CR_DEST_JSONL, .path = dir};
  cr_dest *d = NULL;
  char err[256] = "";
  assert_int_equal(cr_dest_open(&cfg, &d, err, sizeof err), 0);
  assert_int_equal(wr(d, "s", "{}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  char *text = read_in(dir, "s.jsonl");
  assert_string_equal(text, "{}\n");
  free(text);
  cfg.type = CR_DEST_SQLITE;
  cfg.path = f->db;
  assert_int_equal(cr_dest_open(&cfg, &d, err, sizeof err), 0);
  assert_int_equal(wr(d, "s", "{}"), 0);
  assert_int_equal(cr_dest_flush(d), 0);
  cr_dest_close(d);
  assert_int_equal(query_int(f->db, "SELECT count(*) FROM stream_s"), 1);
  cfg.type = CR_DEST_PLUGIN;
  assert_int_equal(cr_dest_open(&cfg, &d, err, sizeof err), CR_ENOTSUP);
  assert_null(d);
  cfg.type = CR_DEST_JSONL;
  cfg.path = NULL;
  assert_int_equal(cr_dest_open(&cfg, &d, err, sizeof err), CR_EINVAL);
  cfg.type = 42;
  cfg.path = dir;
  assert_int_equal(cr_dest_open(&cfg, &d, err, sizeof err), CR_EINVAL);
  free(dir);
}

static int alloc_cycle(int sqlite, const char *where) {
  cr_dest *d = NULL;
  int rc = sqlite ? cr_dest_open_sqlite(where, &d, NULL, 0)
                  : cr_dest_open_jsonl(where, &d, NULL, 0);
  if (rc != 0)
    return rc;
  static const char *const key[] = {"id", "k"};
  struct cr_dest_stream st = {"a", key, 2};
  if ((rc = cr_dest_declare_stream(d, &st)) == 0 &&
      (rc = wr(d, "a", "{\"id\":1,\"k\":2}")) == 0 &&
      (rc = wr(d, "b", "{\"x\":1}")) == 0 && (rc = wr(d, "c", "{}")) == 0 &&
      (rc = wr(d, "d", "{}")) == 0 && (rc = wr(d, "e", "{}")) == 0)
    rc = cr_dest_flush(d);
  cr_dest_close(d);
  return rc;
}

static void alloc_failures(void **state) {
  struct sfix *f = *state;
  char *dir = path_in(f->tmp, "j");
  cr_test_alloc_install();
  for (int sqlite = 0; sqlite <= 1; sqlite++) {
    int done = 0, fails = 0;
    for (long n = 0; n < 1000 && !done; n++) {
      cr_test_alloc_fail_after(n);
      int rc = alloc_cycle(sqlite, sqlite ? f->db : dir);
      int failed = cr_test_alloc_failed();
      cr_test_alloc_fail_after(-1);
      fails += failed;
      if (failed)
        assert_int_equal(rc, CR_ENOMEM);
      else {
        assert_int_equal(rc, 0);
        done = 1;
      }
    }
    assert_true(done);
    assert_true(fails > 3); /* the loop really injected failures */
  }
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(jsonl_streams_order_and_flush),
      cmocka_unit_test(jsonl_directory_made_by_first_record),
      cmocka_unit_test(jsonl_drain_fds),
      cmocka_unit_test(jsonl_refusals),
      cmocka_unit_test(jsonl_reopen_appends_close_drops),
      cmocka_unit_test(jsonl_torn_tail_repaired),
      cmocka_unit_test(jsonl_big_records_keep_order),
      cmocka_unit_test(jsonl_write_lines),
      cmocka_unit_test(jsonl_synced),
      cmocka_unit_test(jsonl_kill9_keeps_flushed),
      cmocka_unit_test(jsonl_io_error_is_sticky),
      cmocka_unit_test(jsonl_throughput),
      cmocka_unit_test_setup_teardown(sqlite_upsert, sql_setup, sql_teardown),
      cmocka_unit_test_setup_teardown(sqlite_write_lines, sql_setup,
                                      sql_teardown),
      cmocka_unit_test_setup_teardown(sqlite_composite_key, sql_setup,
                                      sql_teardown),
      cmocka_unit_test_setup_teardown(sqlite_missing_key, sql_setup,
                                      sql_teardown),
      cmocka_unit_test_setup_teardown(sqlite_no_key_appends, sql_setup,
                                      sql_teardown),
      cmocka_unit_test_setup_teardown(sqlite_flush_is_commit, sql_setup,
                                      sql_teardown),
      cmocka_unit_test_setup_teardown(sqlite_kill9_keeps_flushed, sql_setup,
                                      sql_teardown),
      cmocka_unit_test_setup_teardown(sqlite_throughput, sql_setup,
                                      sql_teardown),
      cmocka_unit_test_setup_teardown(factory, sql_setup, sql_teardown),
      cmocka_unit_test_setup_teardown(alloc_failures, sql_setup, sql_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
