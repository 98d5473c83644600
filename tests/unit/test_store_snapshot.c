/* test_store_snapshot.c: cr_store_read_keep (store.h) on SQLite. A kept read
 * snapshot is reused by the next read_begin only while no connection of
 * this process committed and it is young enough: a commit of this process
 * shows at once, one of another process (a forked child) at most max_age
 * late; a write on the connection and cr_store_read_end end it, and a
 * snapshot that wrote is committed rather than kept. */
#include "testutil.h"

#include "events/events.h"
#include "store/store.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static cr_store *open_in(const char *dir) {
  char err[256] = "";
  cr_store *s = NULL;
  int rc = cr_store_open(dir, &s, err, sizeof err);
  if (rc != 0)
    fail_msg("cannot open the store in %s: %s", dir, err);
  return s;
}

static void emit(cr_store *s) {
  assert_int_equal(
      cr_event_emit(s, "work", "w1", "created", "test", NULL, NULL), 0);
}

static int64_t last_id(cr_store *s) {
  int64_t id = -1;
  assert_int_equal(cr_store_event_last_id(s, &id), 0);
  return id;
}

/* A read of reader in a kept snapshot: begin, read, keep (max_age_ms). */
static int64_t kept_read(cr_store *reader, int64_t max_age_ms) {
  assert_int_equal(cr_store_read_begin(reader), 0);
  int64_t id = last_id(reader);
  assert_int_equal(cr_store_read_keep(reader, max_age_ms), 0);
  return id;
}

/* Another process appends one event (its commits are not this process's). */
static void emit_elsewhere(const char *dir) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char err[256];
    cr_store *s = NULL;
    int ok =
        cr_store_open(dir, &s, err, sizeof err) == 0 &&
        cr_event_emit(s, "work", "w1", "updated", "child", NULL, NULL) == 0;
    cr_store_close(s);
    _exit(ok ? 0 : 1);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_kept_snapshot(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("snapshot");
  cr_store *reader = open_in(dir), *writer = open_in(dir);
  emit(writer);
  int64_t first = kept_read(reader, 60000);
  assert_true(first > 0);

  /* A commit of this process: the next read sees it. */
  emit(writer);
  assert_int_equal(kept_read(reader, 60000), first + 1);

  /* A commit of another process: not seen while the snapshot is young... */
  emit_elsewhere(dir);
  assert_int_equal(kept_read(reader, 20), first + 1);
  /* ...and seen once it is older than the max_age it was kept with. */
  usleep(30 * 1000);
  assert_int_equal(kept_read(reader, 60000), first + 2);

  /* cr_store_read_end ends a kept snapshot. */
  emit_elsewhere(dir);
  assert_int_equal(kept_read(reader, 60000), first + 2);
  assert_int_equal(cr_store_read_end(reader), 0);
  assert_int_equal(kept_read(reader, 60000), first + 3);

  /* A write on the connection ends it first and commits. */
  emit(reader);
  assert_int_equal(last_id(writer), first + 4);
  assert_int_equal(kept_read(reader, 60000), first + 4);

  /* A write inside a snapshot is committed when it would be kept. */
  assert_int_equal(cr_store_read_begin(reader), 0);
  emit(reader);
  assert_int_equal(cr_store_read_keep(reader, 60000), 0);
  assert_int_equal(last_id(writer), first + 5);
  assert_int_equal(cr_store_read_end(reader), 0);

  cr_store_close(reader);
  cr_store_close(writer);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kept_snapshot),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
