/* test_wlock.c: the in-process writer lock: one lock per file whatever the
 * path's spelling, references, waiting and handing over across threads,
 * the timeout, allocation failure; and two store connections of one
 * process whose write transactions wait for each other on it. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"
#include "events/events.h"
#include "store/store.h"
#include "store/wlock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_one_lock_per_file(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("wlock");
  char *a = cr_test_write_file(dir, "a.db", "");
  char *b = cr_test_write_file(dir, "b.db", "");
  char other[4200];
  snprintf(other, sizeof other, "%s/./a.db", dir);
  cr__wlock *la = NULL, *la2 = NULL, *lb = NULL, *none = (cr__wlock *)a;
  assert_int_equal(cr__wlock_get(a, &la), 0);
  assert_int_equal(cr__wlock_get(other, &la2), 0);
  assert_int_equal(cr__wlock_get(b, &lb), 0);
  assert_non_null(la);
  assert_ptr_equal(la, la2); /* same inode */
  assert_ptr_not_equal(la, lb);
  char missing[4200];
  snprintf(missing, sizeof missing, "%s/missing.db", dir);
  assert_int_equal(cr__wlock_get(missing, &none), 0);
  assert_null(none);
  /* Held through one reference, seen through the other. */
  assert_int_equal(cr__wlock_take(la, 1000), 1);
  assert_int_equal(cr__wlock_take(la2, 10), 0); /* times out */
  assert_int_equal(cr__wlock_take(lb, 10), 1);  /* another file */
  cr__wlock_drop(la);
  assert_int_equal(cr__wlock_take(la2, 10), 1);
  cr__wlock_drop(la2);
  cr__wlock_drop(lb);
  cr__wlock_put(la2);
  cr__wlock_put(la);
  cr__wlock_put(lb);
  cr__wlock_put(NULL);
  /* After the last reference, a new lock (and no leak: ASan). */
  assert_int_equal(cr__wlock_get(a, &la), 0);
  assert_int_equal(cr__wlock_take(la, 10), 1);
  cr__wlock_drop(la);
  cr__wlock_put(la);
  cr_test_rmtree(dir);
  free(a);
  free(b);
  free(dir);
}

static void test_alloc_failure(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("wlock");
  char *a = cr_test_write_file(dir, "a.db", "");
  cr_test_alloc_install();
  cr_test_alloc_fail_after(0);
  cr__wlock *l = (cr__wlock *)a;
  assert_int_equal(cr__wlock_get(a, &l), CR_ENOMEM);
  assert_null(l);
  cr_test_alloc_fail_after(-1);
  cr_test_rmtree(dir);
  free(a);
  free(dir);
}

struct waiter {
  cr__wlock *l;
  atomic_int released; /* set by the holder just before it drops */
  atomic_int taken;
  int saw_release;
};

static void *wait_take(void *arg) {
  struct waiter *w = arg;
  int ok = cr__wlock_take(w->l, 10000);
  w->saw_release = atomic_load(&w->released);
  atomic_store(&w->taken, ok);
  cr__wlock_drop(w->l); /* taken here, dropped by the same thread */
  return NULL;
}

static void test_waits_for_holder(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("wlock");
  char *a = cr_test_write_file(dir, "a.db", "");
  struct waiter w = {0};
  assert_int_equal(cr__wlock_get(a, &w.l), 0);
  assert_int_equal(cr__wlock_take(w.l, 1000), 1);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_take, &w), 0);
  cr__sleep_ms(30);
  assert_int_equal(atomic_load(&w.taken), 0); /* still waiting */
  atomic_store(&w.released, 1);
  cr__wlock_drop(w.l);
  pthread_join(th, NULL);
  assert_int_equal(atomic_load(&w.taken), 1);
  assert_true(w.saw_release);
  cr__wlock_put(w.l);
  cr_test_rmtree(dir);
  free(a);
  free(dir);
}

/* Two connections of one process to one store: the second's write
 * transaction starts only once the first's has committed, and both
 * commit. */
struct writer {
  const char *dir;
  atomic_int committed_first;
  int began_after_commit;
  int rc;
};

static void *second_writer(void *arg) {
  struct writer *w = arg;
  cr_store *s = NULL;
  char err[256];
  w->rc = cr_store_open(w->dir, &s, err, sizeof err);
  if (w->rc != 0)
    return NULL;
  w->rc = cr_store_begin(s);
  w->began_after_commit = atomic_load(&w->committed_first);
  if (w->rc == 0)
    w->rc = cr_event_emit(s, "work", "w2", "created", "system", NULL, NULL);
  if (w->rc == 0)
    w->rc = cr_store_commit(s);
  cr_store_close(s);
  return NULL;
}

static void test_store_writers_take_turns(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("wlock-store");
  cr_store *s = NULL;
  char err[256];
  assert_int_equal(cr_store_open(dir, &s, err, sizeof err), 0);
  assert_int_equal(cr_store_begin(s), 0);
  assert_int_equal(
      cr_event_emit(s, "work", "w1", "created", "system", NULL, NULL), 0);
  struct writer w = {.dir = dir};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, second_writer, &w), 0);
  cr__sleep_ms(50);
  atomic_store(&w.committed_first, 1);
  assert_int_equal(cr_store_commit(s), 0);
  pthread_join(th, NULL);
  assert_int_equal(w.rc, 0);
  assert_true(w.began_after_commit);
  struct cr_store_counts c;
  assert_int_equal(cr_store_counts(s, &c), 0);
  assert_int_equal(c.events, 2);
  cr_store_close(s);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_lock_per_file),
      cmocka_unit_test(test_alloc_failure),
      cmocka_unit_test(test_waits_for_holder),
      cmocka_unit_test(test_store_writers_take_turns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
