/* exec_ckpt.c: a run's checkpoint fsync()s on a helper thread (see
 * exec_ckpt.h). */
#include "exec/exec_ckpt.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

#define MAX_FDS 72

struct cr__ckpt_sync {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int fds[MAX_FDS]; /* the job's own dup()s */
  size_t n;
  int queued;  /* a job waits for the thread */
  int running; /* the thread works on it */
  int done;    /* finished, not collected */
  int err;
  int quit;
};

static void *sync_main(void *arg) {
  cr__ckpt_sync *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->queued && !s->quit)
      pthread_cond_wait(&s->cv, &s->mu);
    if (!s->queued)
      break; /* quit, nothing left to do */
    s->queued = 0;
    s->running = 1;
    pthread_mutex_unlock(&s->mu);
    int err = 0;
    for (size_t i = 0; i < s->n; i++) {
      if (fsync(s->fds[i]) != 0 && err == 0)
        err = errno;
      close(s->fds[i]);
    }
    pthread_mutex_lock(&s->mu);
    s->n = 0;
    s->err = err;
    s->running = 0;
    s->done = 1;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int cr__ckpt_sync_new(cr__ckpt_sync **out) {
  *out = NULL;
  cr__ckpt_sync *s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return CR_ENOMEM;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    cr__free(s);
    return CR_ENOMEM;
  }
  if (pthread_cond_init(&s->cv, NULL) != 0) {
    pthread_mutex_destroy(&s->mu);
    cr__free(s);
    return CR_ENOMEM;
  }
  if (pthread_create(&s->thread, NULL, sync_main, s) != 0) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    cr__free(s);
    return CR_ENOMEM;
  }
  *out = s;
  return 0;
}

int cr__ckpt_sync_start(cr__ckpt_sync *s, const int *fds, size_t n) {
  int own[MAX_FDS];
  if (n > MAX_FDS)
    return CR_EINVAL;
  for (size_t i = 0; i < n; i++)
    if ((own[i] = dup(fds[i])) < 0) {
      while (i > 0)
        close(own[--i]);
      return CR_EIO;
    }
  pthread_mutex_lock(&s->mu);
  int busy = s->queued || s->running || s->done;
  if (!busy) {
    for (size_t i = 0; i < n; i++)
      s->fds[i] = own[i];
    s->n = n;
    s->queued = 1;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  if (busy)
    for (size_t i = 0; i < n; i++)
      close(own[i]);
  return busy ? CR_EBUSY : 0;
}

int cr__ckpt_sync_collect(cr__ckpt_sync *s, int wait, int *err) {
  pthread_mutex_lock(&s->mu);
  while (wait && (s->queued || s->running))
    pthread_cond_wait(&s->cv, &s->mu);
  int done = s->done;
  if (done) {
    *err = s->err;
    s->done = 0;
    s->err = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return done;
}

void cr__ckpt_sync_free(cr__ckpt_sync *s) {
  if (s == NULL)
    return;
  pthread_mutex_lock(&s->mu);
  s->quit = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL); /* a queued job is finished first */
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  cr__free(s);
}
