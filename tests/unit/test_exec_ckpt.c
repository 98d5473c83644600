/* test_exec_ckpt.c: the checkpoint fsync helper (exec/exec_ckpt.h): a job
 * fsyncs dup()s of the descriptors given (the caller may close its own at
 * once), one job at a time until collected, the errno of a descriptor that
 * cannot be fsync()ed, a descriptor that cannot be dup()ed, and freeing
 * with a job still queued. */
#include "testutil.h"

#include "exec/exec_ckpt.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int open_file(const char *dir, const char *name) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "x\n", 2), 2);
  return fd;
}

static void test_sync_and_collect(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("ckpt");
  cr__ckpt_sync *s = NULL;
  assert_int_equal(cr__ckpt_sync_new(&s), 0);
  int err = -1;
  assert_int_equal(cr__ckpt_sync_collect(s, 0, &err), 0); /* no job */
  assert_int_equal(cr__ckpt_sync_collect(s, 1, &err), 0);
  int fds[2] = {open_file(dir, "a"), open_file(dir, "b")};
  assert_int_equal(cr__ckpt_sync_start(s, fds, 2), 0);
  close(fds[0]); /* the helper has its own */
  close(fds[1]);
  /* One job at a time: busy until collected, even once finished. */
  assert_int_equal(cr__ckpt_sync_start(s, fds, 0), CR_EBUSY);
  assert_int_equal(cr__ckpt_sync_collect(s, 1, &err), 1);
  assert_int_equal(err, 0);
  assert_int_equal(cr__ckpt_sync_collect(s, 1, &err), 0); /* collected */
  /* A pipe cannot be fsync()ed: its errno comes back. */
  int p[2];
  assert_int_equal(pipe(p), 0);
  int bad[2] = {open_file(dir, "c"), p[0]};
  assert_int_equal(cr__ckpt_sync_start(s, bad, 2), 0);
  assert_int_equal(cr__ckpt_sync_collect(s, 1, &err), 1);
  assert_int_equal(err, EINVAL);
  close(bad[0]);
  close(p[0]);
  close(p[1]);
  /* A descriptor that cannot be dup()ed: nothing starts. */
  int none[2] = {open_file(dir, "d"), -1};
  assert_int_equal(cr__ckpt_sync_start(s, none, 2), CR_EIO);
  assert_int_equal(cr__ckpt_sync_collect(s, 0, &err), 0);
  /* Freed with a job queued: it is finished first, nothing leaks. */
  assert_int_equal(cr__ckpt_sync_start(s, none, 1), 0);
  close(none[0]);
  cr__ckpt_sync_free(s);
  cr__ckpt_sync_free(NULL);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sync_and_collect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
