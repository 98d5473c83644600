/* worker.h: the child side of the worker protocol (core/wire.h): the loop
 * run by `connrun worker`, which loads plugins and runs JOBs sent by the
 * parent (core/worker_pool.c), streaming records, checkpoints, logs and a
 * RESULT back over a pipe. One worker process runs many jobs, one at a time.
 *
 * Protocol summary (frames: core/wire.h):
 * the worker sends HELLO, then waits for JOB (run it), BYE or EOF (exit 0);
 * any other message exits 2. While a job runs, CANCEL cancels it and EOF
 * means the parent is gone (_exit(1)). After each job: METRICS then RESULT.
 */
#ifndef CR_WORKER_H
#define CR_WORKER_H

/* Output buffer size at which RECORD frames are flushed to the parent. */
#define CR_WORKER_FLUSH_BYTES (256u * 1024u)

/* Runs the worker protocol reading the parent's messages from in_fd and
 * writing to out_fd (both borrowed; not closed). Ignores SIGPIPE, sets
 * PR_SET_PDEATHSIG and returns when the parent says BYE or closes in_fd.
 * Returns the process exit status: 0 after BYE/EOF, 1 when the parent is
 * already gone or a write to it fails, 2 on a protocol violation (unexpected
 * or undecodable message), 3 when the worker cannot start (out of memory,
 * thread creation). May call _exit(1) itself when the parent vanishes while
 * a plugin runs. Call at most once per process. */
int cr_worker_main(int in_fd, int out_fd);

#endif
