/* wlock.c: the in-process writer lock of a database file (see wlock.h). */
#include "store/wlock.h"

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "util/alloc.h"
#include "util/error.h"

struct cr__wlock {
  dev_t dev;
  ino_t ino;
  int refs; /* guarded by g_mu */
  int held; /* guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC */
  struct cr__wlock *next;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cr__wlock *g_locks; /* every lock with refs > 0 */

static struct cr__wlock *wlock_new(dev_t dev, ino_t ino) {
  struct cr__wlock *l = cr__calloc(1, sizeof *l);
  if (l == NULL)
    return NULL;
  pthread_condattr_t ca;
  int ok = pthread_condattr_init(&ca) == 0;
  ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
       pthread_cond_init(&l->cv, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!ok || pthread_mutex_init(&l->mu, NULL) != 0) {
    if (ok)
      pthread_cond_destroy(&l->cv);
    cr__free(l);
    return NULL;
  }
  l->dev = dev;
  l->ino = ino;
  return l;
}

int cr__wlock_get(const char *path, cr__wlock **out) {
  struct stat st;
  *out = NULL;
  if (path == NULL || stat(path, &st) != 0)
    return 0;
  pthread_mutex_lock(&g_mu);
  struct cr__wlock *l = g_locks;
  while (l != NULL && (l->dev != st.st_dev || l->ino != st.st_ino))
    l = l->next;
  if (l == NULL && (l = wlock_new(st.st_dev, st.st_ino)) != NULL) {
    l->next = g_locks;
    g_locks = l;
  }
  if (l != NULL)
    l->refs++;
  pthread_mutex_unlock(&g_mu);
  *out = l;
  return l != NULL ? 0 : CR_ENOMEM;
}

void cr__wlock_put(cr__wlock *l) {
  if (l == NULL)
    return;
  pthread_mutex_lock(&g_mu);
  int last = --l->refs == 0;
  if (last) {
    struct cr__wlock **pp = &g_locks;
    while (*pp != l)
      pp = &(*pp)->next;
    *pp = l->next;
  }
  pthread_mutex_unlock(&g_mu);
  if (last) {
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    cr__free(l);
  }
}

int cr__wlock_take(cr__wlock *l, int64_t timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += (time_t)(timeout_ms / 1000);
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&l->mu);
  int rc = 0;
  while (l->held && rc != ETIMEDOUT)
    rc = pthread_cond_timedwait(&l->cv, &l->mu, &until);
  int taken = !l->held;
  if (taken)
    l->held = 1;
  pthread_mutex_unlock(&l->mu);
  return taken;
}

void cr__wlock_drop(cr__wlock *l) {
  pthread_mutex_lock(&l->mu);
  l->held = 0;
  pthread_cond_signal(&l->cv);
  pthread_mutex_unlock(&l->mu);
}
