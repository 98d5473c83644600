/* bgthread.h: a background thread that runs passes over a set of jobs and
 * sleeps between them: what the table export engine and the batched
 * webhook engine share. The owner's pass function runs on the thread; a
 * new job set (configure) is handed over under the lock and taken by the
 * thread before its next pass; a kick wakes it at once.
 *
 * Thread-safe: cr__bg_kick, cr__bg_offer and cr__bg_lock/unlock from any
 * thread; the pass function on the background thread only. */
#ifndef CR_BGTHREAD_H
#define CR_BGTHREAD_H

#include <stdint.h>
#include <uv.h>

/* One pass: takes the job set the thread holds (jobs, as last offered);
 * returns 1 when there is more to do at once, else fills *wait_ms (how long
 * to sleep at most; already set to the poll interval). */
typedef int (*cr__bg_pass_fn)(void *owner, void *jobs, int64_t *wait_ms);
/* Frees a job set (offered but replaced, or held at stop). */
typedef void (*cr__bg_free_fn)(void *jobs);
/* On the thread, when it takes a new job set: what the old one holds that
 * the new one keeps (open connections) may move over before the old one is
 * freed. */
typedef void (*cr__bg_take_fn)(void *owner, void *old_jobs, void *new_jobs);

struct cr__bg {
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cv;
  int stop, kicked, have_pending, started;
  void *pending; /* offered, not taken yet */
  void *jobs;    /* the thread's */
  int64_t poll_ms;
  cr__bg_pass_fn pass;
  cr__bg_free_fn free_jobs;
  cr__bg_take_fn take; /* may be NULL */
  void *owner;
};

/* Starts the thread with an empty job set. bg is owned by the caller,
 * zeroed, and must stay put until cr__bg_stop; take may be NULL. Returns 0
 * or CR_ENOMEM. */
int cr__bg_start(struct cr__bg *bg, void *owner, cr__bg_pass_fn pass,
                 cr__bg_free_fn free_jobs, cr__bg_take_fn take,
                 int64_t poll_ms);

/* Hands over a new job set (transferred; NULL: none); an older one not
 * taken yet is freed. Wakes the thread. */
void cr__bg_offer(struct cr__bg *bg, void *jobs);

/* Wakes the thread for a pass now. NULL is fine. */
void cr__bg_kick(struct cr__bg *bg);

/* Stops the thread (a pass in progress finishes), frees the job sets. */
void cr__bg_stop(struct cr__bg *bg);

/* The lock, for state the owner shares with other threads (counters). */
void cr__bg_lock(struct cr__bg *bg);
void cr__bg_unlock(struct cr__bg *bg);

#endif
