/* claim_signal.c: the process's watchers of claimable executions (see
 * claim_signal.h): a fixed table under a mutex, skipped by an atomic count
 * when empty (the local runner's hot path signals on every completion). */
#include "store/claim_signal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "util/error.h"

#define MAX_WATCHERS 8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  cr_claim_signal_fn fn;
  void *ud;
} watchers[MAX_WATCHERS];
static atomic_int n_watching;

int cr_claim_signal_watch(cr_claim_signal_fn fn, void *ud) {
  if (fn == NULL)
    return CR_EINVAL;
  int rc = CR_ELIMIT;
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_WATCHERS && rc != 0; i++)
    if (watchers[i].fn == NULL) {
      watchers[i].fn = fn;
      watchers[i].ud = ud;
      atomic_fetch_add(&n_watching, 1);
      rc = 0;
    }
  pthread_mutex_unlock(&mu);
  return rc;
}

void cr_claim_signal_unwatch(cr_claim_signal_fn fn, void *ud) {
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_WATCHERS; i++)
    if (watchers[i].fn == fn && watchers[i].ud == ud) {
      watchers[i].fn = NULL;
      watchers[i].ud = NULL;
      atomic_fetch_sub(&n_watching, 1);
    }
  pthread_mutex_unlock(&mu);
}

void cr_claim_signal(void) {
  if (atomic_load(&n_watching) == 0)
    return;
  pthread_mutex_lock(&mu);
  for (int i = 0; i < MAX_WATCHERS; i++)
    if (watchers[i].fn != NULL)
      watchers[i].fn(watchers[i].ud);
  pthread_mutex_unlock(&mu);
}
