/* worker_pool.h: the parent side of process isolation: a thread-safe pool of
 * reusable `connrun worker` child processes, and the per-worker job driver
 * (send JOB, read the job's messages, enforce the deadline and the memory
 * limit, cancel, kill, reap).
 *
 * A worker is spawned with posix_spawn (never fork) from a pool-owned
 * spawner thread, so PR_SET_PDEATHSIG in the child (which fires when the
 * spawning *thread* exits) only fires when the whole process goes away.
 * Workers are reaped with wait4(pid) on their own pid only. */
#ifndef CR_WORKER_POOL_H
#define CR_WORKER_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "plugin/wire.h"

typedef struct cr_worker_pool cr_worker_pool;
typedef struct cr_worker cr_worker;

struct cr_worker_pool_opts {
  const char *exe;   /* path of the connrun binary (copied) */
  unsigned max_uses; /* jobs per worker before it is replaced; 0 = 1000 */
  unsigned max_idle; /* idle workers kept; 0 = 8 */
};

struct cr_worker_pool_stats {
  uint64_t spawned; /* workers started (HELLO received) */
  uint64_t reused;  /* acquisitions served by an idle worker */
  uint64_t retired; /* healthy workers ended (max_uses, idle full, free) */
  uint64_t died;    /* workers that died or were killed (crash, timeout...) */
};

/* Creates a pool. o and o->exe are borrowed (exe is copied). Starts the
 * spawner thread. *out is transferred to the caller, freed with
 * cr_worker_pool_free. Errors: CR_EINVAL (NULL argument or exe),
 * CR_ENOMEM, CR_EIO (thread creation failed). */
int cr_worker_pool_new(const struct cr_worker_pool_opts *o,
                       cr_worker_pool **out);

/* Sends BYE to idle workers, waits up to 1 s each, then SIGKILL; reaps
 * all. Workers still acquired are the caller's bug: they are killed and
 * freed too. p is consumed; NULL is a no-op. */
void cr_worker_pool_free(cr_worker_pool *p);

/* Thread-safe. Hands out an idle worker (checked alive), or spawns a new
 * one and waits up to 10 s for its HELLO. *out is transferred to the caller
 * until cr_worker_pool_release. errbuf (errlen bytes, may be NULL/0) is
 * borrowed and receives a message on error. Errors: CR_EINVAL, CR_EIO
 * (spawn failed / no HELLO), CR_ENOMEM. */
int cr_worker_pool_acquire(cr_worker_pool *p, cr_worker **out, char *errbuf,
                           size_t errlen);

/* Thread-safe. Gives w back: it becomes idle when its last job ended with
 * RESULT (or it never ran one), it is alive, it ran fewer than max_uses jobs
 * and fewer than max_idle workers are idle; otherwise it is ended (BYE if
 * healthy, else SIGKILL), reaped and freed. w is consumed; NULL is a no-op. */
void cr_worker_pool_release(cr_worker_pool *p, cr_worker *w);

/* Thread-safe. Ends the idle workers now (BYE, up to 1 s each) and marks
 * the busy ones to end when released instead of going idle: workers
 * spawned afterwards load plugin files afresh (after a plugin upgrade),
 * while jobs running keep the worker, and plugin version, they have. */
void cr_worker_pool_retire_idle(cr_worker_pool *p);

/* Spawns workers until n are idle (bounded by max_idle). Errors as
 * cr_worker_pool_acquire (workers spawned before the error stay idle). */
int cr_worker_pool_prespawn(cr_worker_pool *p, unsigned n);

/* Copies the counters into *out (borrowed). Thread-safe. */
void cr_worker_pool_get_stats(cr_worker_pool *p,
                              struct cr_worker_pool_stats *out);

/* Sends JOB (job->type == CR_WIRE_JOB; job borrowed for the call). Arms the
 * deadline now + job.timeout_ms (0 = none) and the RSS limit
 * job.memory_limit_mb (0 = none). Errors: CR_EINVAL (not a JOB, a job
 * already running, or the worker is dead), CR_ENOMEM, CR_EIO (the worker
 * is gone: it is reaped, see cr_worker_reason). */
int cr_worker_start(cr_worker *w, const struct cr_wire_msg *job);

/* Waits up to wait_ms (-1 = until something happens) for the next message
 * of the running job. Returns:
 *  1  a message in *msg (views borrowed from w, valid until the next call on
 *     w). After a RESULT the job is over.
 *  0  nothing within wait_ms.
 *  CR_ETIMEDOUT  the deadline passed: the worker was SIGKILLed and reaped;
 *                reason "timed out after 300 s" (ms when < 1 s).
 *  CR_ELIMIT     RSS passed the memory limit (sampled every 25 ms), or the
 *                worker died abnormally with a peak RSS >= 50% of the limit:
 *                reason "memory limit 512 MiB exceeded".
 *  CR_EIO        the worker died or the stream broke: reaped; reason
 *                "killed by SIGSEGV", "exited with status 3", "exited with
 *                status 0 during the job", "protocol error: <detail>".
 *  CR_ENOMEM     no memory to buffer the worker's output: killed, reaped.
 *  CR_EINVAL     no job running (NULL argument, or never started).
 * Once the worker is gone every later call returns the same code. */
int cr_worker_next(cr_worker *w, struct cr_wire_msg *msg, int wait_ms);

/* Bytes of the worker's output already read but not yet returned by
 * cr_worker_next (0: the next call reads from the pipe, and may wait). w is
 * borrowed; 0 for NULL. */
size_t cr_worker_buffered(const cr_worker *w);

/* Sends CANCEL (the worker asks the plugin to stop; a RESULT still
 * follows). Errors: CR_EINVAL (no job running), CR_EIO (worker gone). */
int cr_worker_cancel(cr_worker *w);

/* SIGKILLs and reaps the worker now (no-op if already gone), recording
 * reason (borrowed, copied; NULL keeps the current one). Later
 * cr_worker_next calls return CR_EIO. */
void cr_worker_kill(cr_worker *w, const char *reason);

/* Why the worker ended ("" when it has not). Borrowed from w, valid until
 * it is released. */
const char *cr_worker_reason(const cr_worker *w);

/* The worker's process id (still valid after it was reaped, for logs). */
int cr_worker_pid(const cr_worker *w);

#endif
