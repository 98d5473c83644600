/* exec_writes.h: what a run writes about its execution, in the store.
 *
 * Each function is one store transaction holding a state change and its
 * events, fenced by the claim's lease epoch. The local runner (exec_run.c)
 * calls them on its thread's connection; the server calls the same ones when
 * it applies a remote runner's reports (api/api_runners.c), so an execution
 * leaves the same trail wherever it ran.
 *
 * Lease lost: every function returns CR_ESTALE or CR_ESTATE when the epoch
 * is no longer the stored one (the lease expired and was claimed again, or
 * the execution was cancelled / revoked), and writes nothing. */
#ifndef CR_EXEC_WRITES_H
#define CR_EXEC_WRITES_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The attempt a write is about (plain data; work_id borrowed). */
struct cr_exec_final {
  int64_t execution_id, epoch;
  const char *work_id;
  int attempt;
  int needs_executing; /* the executing transition is not written yet */
  int one_time;        /* the work is one-time: emit `completed` too */
  int64_t records, checkpoints, duration_ms;
  /* The version of the plugin the run uses (borrowed; NULL: unknown): in
   * the executing transition's detail and the `syncing` event, so each
   * execution tells which version of a drop-in plugin ran it. */
  const char *plugin_version;
};

/* The executing transition ("plugin started"), `started` on the work's first
 * run ever and `syncing`. Errors: lease lost, store errors, CR_ENOMEM. */
int cr_exec_write_executing(cr_store *s, const struct cr_exec_final *f);

/* A checkpoint: renews the lease to now + lease_ms, commits state (JSON
 * text, borrowed, len bytes) as the work's next state version covering
 * records records, and emits `synced`. *version (may be NULL) gets the new
 * version. Errors: CR_EINVAL (state is not JSON), lease lost, store errors. */
int cr_exec_write_checkpoint(cr_store *s, const struct cr_exec_final *f,
                             int64_t lease_ms, const char *state, size_t len,
                             int64_t records, int64_t *version);

/* Rotated credentials (JSON text, borrowed, secret) of authorization auth_id
 * whose configuration hashes to auth_hash (16 hex digits), with an auth
 * `updated` event that never holds them; the lease is renewed to now +
 * lease_ms (the fence). Errors: CR_EINVAL, lease lost, store errors. */
int cr_exec_write_credentials(cr_store *s, const struct cr_exec_final *f,
                              int64_t lease_ms, const char *auth_id,
                              const char *auth_hash, const char *json,
                              size_t len);

/* The completion inside the caller's transaction on s: the executing steps
 * when f->needs_executing, the completed transition, `synccomplete` and, for
 * a one-time work, `completed` (used by group commit). */
int cr_exec_write_final_in_txn(cr_store *s, const struct cr_exec_final *f);

/* The completion in a transaction of its own. */
int cr_exec_write_completed(cr_store *s, const struct cr_exec_final *f);

/* The failed transition with class cls and reason msg (borrowed, redacted
 * by the caller) and the work `failed` event (records f->records). */
int cr_exec_write_failed(cr_store *s, const struct cr_exec_final *f,
                         const char *cls, const char *msg);

/* Back to created as a new attempt, not before at (ms, 0 = at once), with
 * reason (borrowed); cls and msg (may be NULL) record the failure. With
 * f->needs_executing the executing steps are written first (the plugin
 * ran). */
int cr_exec_write_retry(cr_store *s, const struct cr_exec_final *f, int64_t at,
                        const char *cls, const char *msg, const char *reason);

/* 1 when rc says the lease was lost (CR_ESTALE or CR_ESTATE). */
int cr_exec_lost(int rc);

#endif
