/* exec_ckpt.h: the fsync()s of a run's checkpoints on a helper thread, so
 * that the plugin's records keep flowing into the destination while the
 * disk makes the earlier ones durable. One job at a time; exec_run.c
 * commits a checkpoint only once the job covering its records finished.
 * Internal to the execution engine. */
#ifndef CR_EXEC_CKPT_H
#define CR_EXEC_CKPT_H

#include <stddef.h>

typedef struct cr__ckpt_sync cr__ckpt_sync;

/* Starts the helper thread. *out is the caller's, freed with
 * cr__ckpt_sync_free. Returns 0 or CR_ENOMEM. */
int cr__ckpt_sync_new(cr__ckpt_sync **out);

/* Hands fds[0..n) (borrowed: each is dup()ed first, so the caller may go
 * on writing to and even close its own) to the thread to fsync(). Only
 * when idle (no job, or the last one collected). Returns 0, CR_EBUSY,
 * CR_EIO (a dup failed: nothing was started). */
int cr__ckpt_sync_start(cr__ckpt_sync *s, const int *fds, size_t n);

/* Collects the job: 1 when it finished (*err: 0, or the errno of the
 * first failed fsync), 0 while it runs (wait = 0) or when there is none.
 * wait != 0 blocks until it finished. */
int cr__ckpt_sync_collect(cr__ckpt_sync *s, int wait, int *err);

/* Waits for a job still running, stops and joins the thread. NULL ok. */
void cr__ckpt_sync_free(cr__ckpt_sync *s);

#endif
