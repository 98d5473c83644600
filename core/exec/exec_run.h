/* exec_run.h: runs one claimed execution of a work to its end.
 *
 * cr_exec_run() opens the work's destination, hands the plugin the work's
 * last committed state, runs the plugin inline (on the calling thread) or in
 * a pooled `connrun worker` process (worker_pool.h), writes every record to
 * the destination, and commits each checkpoint only after the destination
 * flushed the records emitted before it. It then finishes the execution:
 * completed, failed, or back to created as a new attempt (retryable class
 * with attempts left, or the runner stopping).
 *
 * Every state change is written in one store transaction with its events
 * (work: started on the first run ever, syncing, synced per checkpoint,
 * synccomplete, completed for a one-time work, failed; auth: updated when a
 * plugin rotates its credentials), fenced by the claim's lease epoch: when
 * the lease was lost (expired and claimed again) nothing more is written and
 * the run stops. With env->group, the completion of a quick run is written
 * later together with others' (exec_group.h).
 *
 * Threads: one cr_exec_run per thread at a time per env->store connection;
 * everything else in the env may be shared. */
#ifndef CR_EXEC_RUN_H
#define CR_EXEC_RUN_H

#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"
#include "exec/exec_writes.h"
#include "plugin/plugin_host.h"
#include "store/store.h"
#include "util/log.h"

typedef struct cr_worker_pool cr_worker_pool;
typedef struct cr_exec_group cr_exec_group;

/* Default lease of a claim and its renewal period (a third of it). */
#define CR_EXEC_LEASE_MS INT64_C(60000)
/* Default retry backoff: base and ceiling (see cr_exec_backoff_ms). */
#define CR_EXEC_RETRY_BASE_MS INT64_C(2000)
#define CR_EXEC_RETRY_MAX_MS INT64_C(600000)
/* How long a cancelled worker may take to stop before it is killed. */
#define CR_EXEC_CANCEL_GRACE_MS 5000

/* A progress snapshot (all pointers borrowed for the call). */
struct cr_exec_progress {
  int64_t execution_id;
  const char *stream;     /* stream of the last record, NULL at a checkpoint */
  int64_t stream_records; /* records of that stream this attempt */
  int64_t records;        /* all records this attempt */
  int64_t checkpoints;    /* checkpoints committed this attempt */
  int64_t elapsed_ms;
};

/* Where a run's writes go instead of a store: a remote runner sends them to
 * its server (remote/remote_port.h), which applies them with exec_writes.h.
 * f describes the attempt as of the call (borrowed). Every op but log
 * returns 0, CR_ESTALE / CR_ESTATE when the lease was lost (the run stops
 * at once and writes nothing more), or another error. Ops are called on the
 * run's thread only. */
struct cr_exec_port {
  void *ud;
  /* The work's last committed state (*state NULL when none) and the
   * credentials to run with (*credentials, JSON text); both cr__malloc'ed,
   * owned by the run (credentials wiped on free). */
  int (*load)(void *ud, const struct cr_exec_claim *c, char **state,
              char **credentials);
  int (*executing)(void *ud, const struct cr_exec_final *f);
  int (*renew)(void *ud, const struct cr_exec_final *f, int64_t lease_ms);
  /* Called only after the destination flushed the records it covers. */
  int (*checkpoint)(void *ud, const struct cr_exec_final *f, int64_t lease_ms,
                    const char *state, size_t len, int64_t records,
                    int64_t *version);
  int (*credentials)(void *ud, const struct cr_exec_final *f, int64_t lease_ms,
                     const char *json, size_t len);
  int (*metrics)(void *ud, const struct cr_exec_final *f, uint64_t requests,
                 uint64_t errors);
  void (*log)(void *ud, const struct cr_exec_final *f, int level,
              const char *text); /* may be NULL */
  int (*completed)(void *ud, const struct cr_exec_final *f);
  int (*failed)(void *ud, const struct cr_exec_final *f, const char *cls,
                const char *msg);
  int (*retry)(void *ud, const struct cr_exec_final *f, int64_t at,
               const char *cls, const char *msg, const char *reason);
};

/* What a run needs. Everything is borrowed and must outlive the call. */
struct cr_exec_env {
  const cr_config *cfg;            /* the work, its authorization, redactor */
  const cr_plugin_host *plugins;   /* the work's provider plugin */
  cr_worker_pool *pool;            /* process isolation; NULL refuses it */
  cr_store *store;                 /* this thread's connection (or NULL
                                      with port) */
  const struct cr_exec_port *port; /* NULL: writes go to store; else to the
                                      port (group must be NULL) */
  cr_log_fn log;                   /* may be NULL */
  void *log_ud;
  int log_min_level;
  /* When non-zero the run is cancelled at once and the execution goes back
   * to created (a new attempt) so another runner or restart takes it. */
  const atomic_int *stop; /* may be NULL */
  int64_t lease_ms;       /* 0 = CR_EXEC_LEASE_MS */
  int64_t retry_base_ms;  /* 0 = CR_EXEC_RETRY_BASE_MS */
  int64_t retry_max_ms;   /* 0 = CR_EXEC_RETRY_MAX_MS */
  /* Called at most every progress_every_ms (0 = 1000) and at checkpoints.
   * May be NULL. */
  void (*progress)(void *ud, const struct cr_exec_progress *p);
  void *progress_ud;
  int64_t progress_every_ms;
  /* Group commit (exec_group.h): NULL = each run writes its own outcome.
   * Otherwise the completion of a quick successful run (no record, no
   * checkpoint) waits in the group (out->deferred), and a run of its own
   * commits the group once it is CR_EXEC_GROUP_MAX_AGE_MS old. Failures and
   * retries are written at once. Used only by this thread, on env->store. */
  cr_exec_group *group;
};

/* How a run ended. */
struct cr_exec_outcome {
  int state;        /* enum cr_exec_state written: COMPLETED, FAILED or
                       CREATED (retry at retry_at); -1 when the lease was
                       lost and nothing was written */
  int64_t retry_at; /* CREATED: not before this time (ms) */
  int64_t records;  /* records the destination took this attempt */
  /* Of them, those the provider rejected one by one (a plugin destination,
   * ABI 1.2 record_failed; each logged as a line of the execution). */
  int64_t records_failed;
  int64_t checkpoints;  /* checkpoints committed this attempt */
  char error_class[16]; /* failure class name; "" on success */
  char error[512];      /* redacted reason; "" on success */
  int deferred;         /* 1: the completion waits in env->group; state is
                           set by cr_exec_group_commit */
};

/* Runs the claimed execution claim (borrowed) of a work of env->cfg to its
 * end and fills *out (caller owned). Returns 0 when an outcome was written
 * (also a failure) or the lease was lost; CR_EINVAL for bad arguments;
 * CR_ENOENT when the work is not in env->cfg; a store error when the outcome
 * could not be written (the lease then expires and the execution comes back
 * as a new attempt). With env->group, a quick success returns 0 with
 * out->deferred = 1 and out->state -1: *out must then stay valid until
 * cr_exec_group_commit (or cr_exec_group_free) sets its state. */
int cr_exec_run(const struct cr_exec_env *env,
                const struct cr_exec_claim *claim, struct cr_exec_outcome *out);

/* Runs execution id (borrowed ids) to its end in the foreground: claims it
 * as runner_id (cr_store_exec_claim_one, ignoring its retry time), runs it
 * with cr_exec_run, and while it comes back as a retry, sleeps until the
 * retry time (woken early by env->stop) and runs it again. *out describes
 * the last attempt (written at once: env->group is not used). Returns 0
 * (see out->state), CR_EBUSY when the execution or another of its work runs
 * elsewhere, CR_ESTATE when it is already final, CR_ENOENT, or errors of
 * cr_exec_run. */
int cr_exec_run_to_end(const struct cr_exec_env *env, int64_t id,
                       const char *runner_id, struct cr_exec_outcome *out);

/* 1 when work w (borrowed) runs only when triggered: no schedule of its own
 * and no default schedule from its provider plugin p (borrowed, may be
 * NULL). Its final success emits `completed`. */
int cr_exec_work_one_time(const struct cr_config_work *w, const cr_plugin *p);

#endif
