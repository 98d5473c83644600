/* exec_run_int.h: internals of cr_exec_run shared by exec_run.c (setup,
 * handlers, outcome), exec_inline.c (the plugin on this thread) and
 * exec_process.c (the plugin in a pooled worker process). */
#ifndef CR_EXEC_RUN_INT_H
#define CR_EXEC_RUN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "dest/dest.h"
#include "exec/exec_group.h"
#include "exec/exec_run.h"

struct run;

/* Handlers: what the plugin side produced, in order. Strings borrowed.
 * Non-zero return: the attempt failed host-side (the reason is recorded)
 * or the lease was lost; the plugin should be cancelled. */
int cr__exec_on_record(struct run *r, const char *stream, size_t stream_len,
                       const char *json, size_t len);
/* count records of one stream as JSON lines (a worker's RECORDS frame). */
int cr__exec_on_records(struct run *r, const char *stream, size_t stream_len,
                        const char *lines, size_t len, uint64_t count);
/* count records of stream the worker wrote to the destination itself
 * (WROTE; only when cr__exec_dest_dir gave it the directory). */
int cr__exec_on_written(struct run *r, const char *stream, size_t stream_len,
                        uint64_t count);
/* The worker's destination refused a record of stream, or (stream "")
 * could not hand its buffers to the kernel (DEST_ERROR): the run fails as
 * the parent's own destination would have made it fail. */
int cr__exec_on_dest_error(struct run *r, const char *stream, size_t stream_len,
                           int code, const char *msg, size_t len);
int cr__exec_on_checkpoint(struct run *r, const char *state, size_t len);
int cr__exec_on_credentials(struct run *r, const char *json, size_t len);
void cr__exec_on_metrics(struct run *r, uint64_t requests, uint64_t errors);
void cr__exec_on_log(struct run *r, int level, const char *text, size_t len);
/* Housekeeping between messages: lease renewal. Returns non-zero when the
 * run must stop (host-side failure, lost lease, runner stopping). */
int cr__exec_tick(struct run *r);

/* Accessors the isolation modes need (borrowed from the run). */
const struct cr_exec_env *cr__exec_env(const struct run *r);
/* The jsonl directory the worker writes itself, or NULL (borrowed). */
const char *cr__exec_dest_dir(const struct run *r);
const struct cr_config_work *cr__exec_work(const struct run *r);
const cr_plugin *cr__exec_plugin(const struct run *r);
const struct cr_exec_claim *cr__exec_claim(const struct run *r);
const char *cr__exec_state(const struct run *r);       /* NULL = none */
const char *cr__exec_credentials(const struct run *r); /* JSON text */
/* Records that the plugin ran to its own result (success or not). */
void cr__exec_mark_ran(struct run *r);
/* Records a failure decided by the runner (timeout, crash...). */
void cr__exec_fail(struct run *r, int cls, const char *msg);

/* Runs the plugin on this thread / in a worker. Return the plugin's result
 * code (cr_plugin_result; 0 = success) and its message (redacted later) in
 * msg, and the provider's requested wait in *after_ms. */
int cr__exec_inline(struct run *r, char *msg, size_t msglen, int64_t *after_ms);
int cr__exec_process(struct run *r, char *msg, size_t msglen,
                     int64_t *after_ms);

/* Logs "work W execution N: text" through log (may be NULL) when level >=
 * min_level. */
void cr__exec_log(cr_log_fn log, void *ud, int min_level, const char *work_id,
                  int64_t execution_id, int level, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Adds the completion f (copied) to group g with the logger of env and the
 * caller's out (borrowed until the group commits or is freed). CR_ENOMEM. */
int cr__exec_group_add(cr_exec_group *g, const struct cr_exec_final *f,
                       const struct cr_exec_env *env,
                       struct cr_exec_outcome *out);

/* Declares the plugin's streams (streams_json, with primary keys) on d. */
int cr__exec_declare_streams(const cr_plugin *p, cr_dest *d);

#endif
