/* bgthread.c: a background thread running passes over a job set (see
 * bgthread.h). */
#include "util/bgthread.h"
#include "util/error.h"

static void thread_main(void *arg) {
  struct cr__bg *bg = arg;
  uv_mutex_lock(&bg->mu);
  while (!bg->stop) {
    if (bg->have_pending) {
      if (bg->take != NULL)
        bg->take(bg->owner, bg->jobs, bg->pending);
      bg->free_jobs(bg->jobs);
      bg->jobs = bg->pending;
      bg->pending = NULL;
      bg->have_pending = 0;
    }
    bg->kicked = 0;
    uv_mutex_unlock(&bg->mu);
    int64_t wait = bg->poll_ms;
    int more = bg->pass(bg->owner, bg->jobs, &wait);
    uv_mutex_lock(&bg->mu);
    if (!more && !bg->kicked && !bg->stop && !bg->have_pending && wait > 0)
      uv_cond_timedwait(&bg->cv, &bg->mu, (uint64_t)wait * 1000000u);
  }
  uv_mutex_unlock(&bg->mu);
}

int cr__bg_start(struct cr__bg *bg, void *owner, cr__bg_pass_fn pass,
                 cr__bg_free_fn free_jobs, cr__bg_take_fn take,
                 int64_t poll_ms) {
  bg->owner = owner;
  bg->pass = pass;
  bg->free_jobs = free_jobs;
  bg->take = take;
  bg->poll_ms = poll_ms > 0 ? poll_ms : 100;
  if (uv_mutex_init(&bg->mu) != 0)
    return CR_ENOMEM;
  if (uv_cond_init(&bg->cv) != 0) {
    uv_mutex_destroy(&bg->mu);
    return CR_ENOMEM;
  }
  if (uv_thread_create(&bg->thread, thread_main, bg) != 0) {
    uv_cond_destroy(&bg->cv);
    uv_mutex_destroy(&bg->mu);
    return CR_ENOMEM;
  }
  bg->started = 1;
  return 0;
}

void cr__bg_offer(struct cr__bg *bg, void *jobs) {
  uv_mutex_lock(&bg->mu);
  bg->free_jobs(bg->pending);
  bg->pending = jobs;
  bg->have_pending = 1;
  uv_cond_signal(&bg->cv);
  uv_mutex_unlock(&bg->mu);
}

void cr__bg_kick(struct cr__bg *bg) {
  if (bg == NULL || !bg->started)
    return;
  uv_mutex_lock(&bg->mu);
  bg->kicked = 1;
  uv_cond_signal(&bg->cv);
  uv_mutex_unlock(&bg->mu);
}

void cr__bg_stop(struct cr__bg *bg) {
  if (!bg->started)
    return;
  uv_mutex_lock(&bg->mu);
  bg->stop = 1;
  uv_cond_signal(&bg->cv);
  uv_mutex_unlock(&bg->mu);
  uv_thread_join(&bg->thread);
  bg->free_jobs(bg->pending);
  bg->free_jobs(bg->jobs);
  bg->pending = bg->jobs = NULL;
  uv_cond_destroy(&bg->cv);
  uv_mutex_destroy(&bg->mu);
  bg->started = 0;
}

void cr__bg_lock(struct cr__bg *bg) { uv_mutex_lock(&bg->mu); }

void cr__bg_unlock(struct cr__bg *bg) { uv_mutex_unlock(&bg->mu); }
