/* exec_process.c: `isolation: process` (the default): the plugin runs in a
 * pooled `connrun worker` child (worker_pool.h) and its output arrives as
 * wire messages (wire.h) that feed the run's handlers. A crash, an abort, an
 * exit, a hang past the work's timeout or a memory limit fails only this
 * execution, with the reason the pool reports. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "exec/exec_run_int.h"
#include "exec/execution.h"
#include "plugin/plugin_host.h"
#include "plugin/wire.h"
#include "plugin/worker_pool.h"
#include "util/clock.h"
#include "util/error.h"

/* How long the loop waits for a message before housekeeping. */
#define TICK_MS 500
/* Messages handled between two housekeeping ticks while the worker streams. */
#define TICK_EVERY 256u

static int start_job(struct run *r, cr_worker *wk) {
  const struct cr_config_work *w = cr__exec_work(r);
  const struct cr_exec_claim *c = cr__exec_claim(r);
  char *config = cr_config_work_config_text(w);
  if (config == NULL)
    return CR_ENOMEM;
  char exec_id[32];
  snprintf(exec_id, sizeof exec_id, "%" PRId64, c->execution_id);
  struct cr_wire_msg m = {.type = CR_WIRE_JOB};
  m.u.job.execution_id = cr_wire_cstr(exec_id);
  m.u.job.epoch = (uint64_t)c->epoch;
  m.u.job.work_id = cr_wire_cstr(w->id);
  m.u.job.authorization_id = cr_wire_cstr(w->auth ? w->auth->id : "");
  m.u.job.auth_method =
      cr_wire_cstr(w->auth && w->auth->method ? w->auth->method : "none");
  m.u.job.provider = cr_wire_cstr(w->provider);
  m.u.job.plugin_path = cr_wire_cstr(cr_plugin_path(cr__exec_plugin(r)));
  char plugin_id[96];
  m.u.job.plugin_id = cr_wire_cstr(cr_plugin_file_id_format(
      cr_plugin_file(cr__exec_plugin(r)), plugin_id, sizeof plugin_id));
  m.u.job.credentials_json = cr_wire_cstr(cr__exec_credentials(r));
  m.u.job.config_json = cr_wire_cstr(config);
  m.u.job.state_json = cr_wire_cstr(cr__exec_state(r));
  m.u.job.dest_dir = cr_wire_cstr(cr__exec_dest_dir(r));
  char *settings = cr_config_settings_json(w->auth);
  m.u.job.settings_json = cr_wire_cstr(settings ? settings : "{}");
  m.u.job.timeout_ms = w->timeout_ms > 0 ? (uint64_t)w->timeout_ms : 0;
  m.u.job.memory_limit_mb =
      w->memory_limit_mb > 0 ? (uint64_t)w->memory_limit_mb : 0;
  int rc = cr_worker_start(wk, &m);
  free(config);
  free(settings);
  return rc;
}

static void copy_str(char *dst, size_t len, cr_wire_str s) {
  size_t n = s.len < len - 1 ? s.len : len - 1;
  memcpy(dst, s.ptr ? s.ptr : "", n);
  dst[n] = '\0';
}

/* Feeds one message to the handlers. Returns 1 on RESULT (filled in),
 * 0 to go on, < 0 when the run must stop (the reason is recorded). */
static int dispatch(struct run *r, const struct cr_wire_msg *m, int *code,
                    char *msg, size_t msglen, int64_t *after_ms) {
  switch (m->type) {
  case CR_WIRE_RECORD:
    return cr__exec_on_record(r, m->u.record.stream.ptr, m->u.record.stream.len,
                              m->u.record.json.ptr, m->u.record.json.len);
  case CR_WIRE_RECORDS:
    return cr__exec_on_records(r, m->u.records.stream.ptr,
                               m->u.records.stream.len, m->u.records.lines.ptr,
                               m->u.records.lines.len, m->u.records.count);
  case CR_WIRE_WROTE:
    return cr__exec_on_written(r, m->u.wrote.stream.ptr, m->u.wrote.stream.len,
                               m->u.wrote.count);
  case CR_WIRE_DEST_ERROR:
    return cr__exec_on_dest_error(
        r, m->u.dest_error.stream.ptr, m->u.dest_error.stream.len,
        m->u.dest_error.code, m->u.dest_error.message.ptr,
        m->u.dest_error.message.len);
  case CR_WIRE_CHECKPOINT:
    return cr__exec_on_checkpoint(r, m->u.checkpoint.state_json.ptr,
                                  m->u.checkpoint.state_json.len);
  case CR_WIRE_CREDENTIALS:
    cr__exec_on_credentials(r, m->u.credentials.json.ptr,
                            m->u.credentials.json.len);
    return 0;
  case CR_WIRE_METRICS:
    cr__exec_on_metrics(r, m->u.metrics.requests, m->u.metrics.errors);
    return 0;
  case CR_WIRE_LOG:
    cr__exec_on_log(r, m->u.log.level, m->u.log.text.ptr, m->u.log.text.len);
    return 0;
  case CR_WIRE_PROGRESS:
    return 0;
  case CR_WIRE_RESULT:
    cr__exec_mark_ran(r);
    *code = m->u.result.code;
    copy_str(msg, msglen, m->u.result.message);
    *after_ms = m->u.result.retry_after_ms;
    return 1;
  default:
    cr__exec_fail(r, CR_EXEC_CLASS_SYSTEM, "worker sent an unexpected message");
    return -1;
  }
}

/* Reads the job's messages until RESULT or the worker's end. The
 * housekeeping (lease, stop, cancel) runs before each read from the pipe
 * and every TICK_EVERY messages, not for every record. */
static int pump(struct run *r, cr_worker *wk, char *msg, size_t msglen,
                int64_t *after_ms) {
  int code = 0, cancelled = 0;
  int64_t cancel_at = 0;
  unsigned busy = 0;
  for (;;) {
    int due = cr_worker_buffered(wk) == 0 || ++busy % TICK_EVERY == 0;
    if (!cancelled && due && cr__exec_tick(r)) {
      cr_worker_cancel(wk);
      cancelled = 1;
      cancel_at = cr__now_ms();
    }
    if (cancelled && cr__now_ms() - cancel_at > CR_EXEC_CANCEL_GRACE_MS) {
      cr_worker_kill(wk, "did not stop when cancelled");
      return CR_PLUGIN_ERR_CANCELLED;
    }
    struct cr_wire_msg m;
    int rc = cr_worker_next(wk, &m, TICK_MS);
    if (rc == 0)
      continue;
    if (rc < 0) {
      cr__exec_fail(r,
                    rc == CR_ETIMEDOUT ? CR_EXEC_CLASS_TRANSIENT
                                       : CR_EXEC_CLASS_SYSTEM,
                    cr_worker_reason(wk));
      return CR_PLUGIN_ERR_SYSTEM;
    }
    rc = dispatch(r, &m, &code, msg, msglen, after_ms);
    if (rc == 1)
      return code;
    if (rc < 0 && !cancelled) {
      cr_worker_cancel(wk);
      cancelled = 1;
      cancel_at = cr__now_ms();
    }
  }
}

int cr__exec_process(struct run *r, char *msg, size_t msglen,
                     int64_t *after_ms) {
  cr_worker_pool *pool = cr__exec_env(r)->pool;
  if (pool == NULL) {
    cr__exec_fail(r, CR_EXEC_CLASS_CONFIG,
                  "process isolation is not available in this runner");
    return CR_PLUGIN_ERR_CONFIG;
  }
  cr_worker *wk = NULL;
  char err[256] = "";
  if (cr_worker_pool_acquire(pool, &wk, err, sizeof err) != 0) {
    char why[300];
    snprintf(why, sizeof why, "cannot start a worker: %s", err);
    cr__exec_fail(r, CR_EXEC_CLASS_TRANSIENT, why);
    return CR_PLUGIN_ERR_TRANSIENT;
  }
  int code;
  if (start_job(r, wk) != 0) {
    cr_worker_kill(wk, "could not send the job");
    cr__exec_fail(r, CR_EXEC_CLASS_TRANSIENT, "could not send the job");
    code = CR_PLUGIN_ERR_TRANSIENT;
  } else {
    code = pump(r, wk, msg, msglen, after_ms);
  }
  cr_worker_pool_release(pool, wk);
  return code;
}
