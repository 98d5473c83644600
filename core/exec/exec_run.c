/* exec_run.c: one claimed execution from start to its written outcome: the
 * destination, the plugin (inline or in a pooled worker), checkpoints
 * committed after the destination flushed, events, retries. */
#include "exec/exec_run.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dest/dest.h"
#include "events/events.h"
#include "exec/exec_ckpt.h"
#include "exec/exec_run_int.h"
#include "exec/execution.h"
#include "plugin/host_api.h"
#include "plugin/wire.h"
#include "plugin/worker_pool.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/redact.h"

#define MAX_STREAMS 64
/* Descriptors a pipelined checkpoint may fsync (jsonl: a file per stream
 * and the directory); more falls back to cr_dest_flush. */
#define MAX_SYNC_FDS (MAX_STREAMS + 1)
/* Checkpoints that may wait for the helper's fsync before the plugin is
 * held up. */
#define MAX_WAITING 64

struct stream_count {
  char name[129];
  int64_t records;
};

struct run {
  const struct cr_exec_env *env;
  const struct cr_exec_claim *claim;
  const struct cr_config_work *work;
  const cr_plugin *plugin;
  cr_dest *dest;
  char *state_json;  /* the state committed when the run began (what
                        api->state() answers), owned; NULL = none */
  char *credentials; /* JSON text, owned, secret: wiped on free */
  int executing;     /* the executing transition was written */
  int ran;           /* the plugin ran and returned a result */
  int lost;          /* the lease is no longer ours */
  int failed;        /* a host-side failure decided the attempt */
  int direct;        /* the worker writes the jsonl files itself */
  int fail_class;
  char fail_msg[512];
  int64_t since_ckpt, records, checkpoints;
  int64_t started_ms, last_renew_ms, last_progress_ms, deadline_ms;
  struct stream_count streams[MAX_STREAMS];
  size_t nstreams;
  /* Pipelined checkpoints (exec_ckpt.h): those whose records the helper
   * is making durable, and those made since, oldest first. Owned. */
  cr__ckpt_sync *sync;
  struct ckpt *fly, *wait, **wait_tail;
  size_t n_wait;
};

/* A checkpoint waiting for its records to be durable. */
struct ckpt {
  struct ckpt *next;
  int64_t records; /* records since the one before */
  size_t len;
  char state[]; /* NUL-terminated */
};

static int64_t lease_ms(const struct run *r) {
  return r->env->lease_ms > 0 ? r->env->lease_ms : CR_EXEC_LEASE_MS;
}

static void vlog(cr_log_fn log, void *ud, int min_level, const char *work_id,
                 int64_t execution_id, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));
static void vlog(cr_log_fn log, void *ud, int min_level, const char *work_id,
                 int64_t execution_id, int level, const char *fmt, va_list ap) {
  if (log == NULL || level < min_level)
    return;
  char msg[1024], line[1200];
  vsnprintf(msg, sizeof msg, fmt, ap);
  snprintf(line, sizeof line, "work %s execution %" PRId64 ": %s", work_id,
           execution_id, msg);
  log(ud, level, line);
}

void cr__exec_log(cr_log_fn log, void *ud, int min_level, const char *work_id,
                  int64_t execution_id, int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(log, ud, min_level, work_id, execution_id, level, fmt, ap);
  va_end(ap);
}

static void logf_run(struct run *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_run(struct run *r, int level, const char *fmt, ...) {
  const struct cr_exec_env *e = r->env;
  va_list ap;
  va_start(ap, fmt);
  vlog(e->log, e->log_ud, e->log_min_level, r->work->id, r->claim->execution_id,
       level, fmt, ap);
  va_end(ap);
}

/* Records the first host-side failure of the attempt. */
static void host_fail(struct run *r, int cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void host_fail(struct run *r, int cls, const char *fmt, ...) {
  if (r->failed)
    return;
  r->failed = 1;
  r->fail_class = cls;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->fail_msg, sizeof r->fail_msg, fmt, ap);
  va_end(ap);
}

static int stopping(const struct run *r) {
  return r->env->stop != NULL && atomic_load(r->env->stop) != 0;
}

/* ---- Writes: to the store, or through env->port (a remote runner) ------ */

/* What the completion of this run writes, as of now. */
static struct cr_exec_final final_of(const struct run *r) {
  struct cr_exec_final f = {
      .execution_id = r->claim->execution_id,
      .epoch = r->claim->epoch,
      .work_id = r->work->id,
      .attempt = r->claim->attempt,
      .needs_executing = !r->executing,
      .one_time = cr_exec_work_one_time(r->work, r->plugin),
      .records = r->records,
      .checkpoints = r->checkpoints,
      .duration_ms = cr__now_ms() - r->started_ms,
      .plugin_version = r->plugin ? cr_plugin_desc(r->plugin)->version : NULL,
  };
  return f;
}

static const struct cr_exec_port *port(const struct run *r) {
  return r->env->port;
}

/* Marks the lease lost when rc says so; returns rc. */
static int note_lost(struct run *r, int rc) {
  if (cr_exec_lost(rc)) {
    if (!r->lost)
      logf_run(r, CR_LOG_WARN, "lease lost: another attempt owns it now");
    r->lost = 1;
  }
  return rc;
}

static int ensure_executing(struct run *r) {
  if (r->executing || r->lost)
    return r->lost ? CR_ESTALE : 0;
  struct cr_exec_final f = final_of(r);
  int rc = port(r) ? port(r)->executing(port(r)->ud, &f)
                   : cr_exec_write_executing(r->env->store, &f);
  rc = note_lost(r, rc);
  if (rc == 0) {
    r->executing = 1;
    r->last_renew_ms = cr__now_ms();
  }
  return rc;
}

static void maybe_renew(struct run *r) {
  int64_t now = cr__now_ms();
  if (r->lost || now - r->last_renew_ms < lease_ms(r) / 3)
    return;
  struct cr_exec_final f = final_of(r);
  int rc = port(r) ? port(r)->renew(port(r)->ud, &f, lease_ms(r))
                   : cr_store_exec_renew(r->env->store, r->claim->execution_id,
                                         r->claim->epoch, lease_ms(r));
  if (note_lost(r, rc) == 0)
    r->last_renew_ms = now;
}

static void report_progress(struct run *r, const char *stream, int64_t n,
                            int force) {
  const struct cr_exec_env *e = r->env;
  if (e->progress == NULL)
    return;
  int64_t now = cr__now_ms();
  int64_t every = e->progress_every_ms > 0 ? e->progress_every_ms : 1000;
  if (!force && now - r->last_progress_ms < every)
    return;
  r->last_progress_ms = now;
  struct cr_exec_progress p = {
      .execution_id = r->claim->execution_id,
      .stream = stream,
      .stream_records = n,
      .records = r->records,
      .checkpoints = r->checkpoints,
      .elapsed_ms = now - r->started_ms,
  };
  e->progress(e->progress_ud, &p);
}

/* ---- Handlers shared by both isolation modes ---------------------------- */

static struct stream_count *stream_slot(struct run *r, const char *name) {
  for (size_t i = 0; i < r->nstreams; i++)
    if (strcmp(r->streams[i].name, name) == 0)
      return &r->streams[i];
  if (r->nstreams == MAX_STREAMS)
    return NULL;
  struct stream_count *c = &r->streams[r->nstreams++];
  snprintf(c->name, sizeof c->name, "%s", name);
  c->records = 0;
  return c;
}

/* The checks before records are taken: the run is live and executing, and
 * the stream name fits name (NUL-terminated copy). 0 or the failure. */
static int records_ok(struct run *r, const char *stream, size_t stream_len,
                      char name[129]) {
  if (r->failed || r->lost || (!r->executing && ensure_executing(r) != 0))
    return CR_ECANCELED;
  if (stream_len >= 129) {
    host_fail(r, CR_EXEC_CLASS_SYSTEM, "stream name too long");
    return CR_EINVAL;
  }
  memcpy(name, stream, stream_len);
  name[stream_len] = '\0';
  return 0;
}

/* Counts n records of stream name taken by the destination (rc 0), or
 * fails the run with the destination's reason. */
static int records_taken(struct run *r, const char *name, int rc, int64_t n) {
  if (rc != 0) {
    int cls = rc == CR_EINVAL || rc == CR_ESCHEMA || rc == CR_ERANGE
                  ? CR_EXEC_CLASS_SYSTEM
                  : CR_EXEC_CLASS_TRANSIENT;
    host_fail(r, cls, "destination refused a record of stream %s: %s", name,
              cr_dest_last_error(r->dest));
    return rc;
  }
  r->records += n;
  r->since_ckpt += n;
  struct stream_count *c = stream_slot(r, name);
  if (c != NULL)
    c->records += n;
  report_progress(r, name, c ? c->records : 0, 0);
  return 0;
}

int cr__exec_on_record(struct run *r, const char *stream, size_t stream_len,
                       const char *json, size_t len) {
  char name[129];
  int rc = records_ok(r, stream, stream_len, name);
  if (rc != 0)
    return rc;
  return records_taken(r, name, cr_dest_write(r->dest, name, json, len), 1);
}

int cr__exec_on_records(struct run *r, const char *stream, size_t stream_len,
                        const char *lines, size_t len, uint64_t count) {
  char name[129];
  int rc = records_ok(r, stream, stream_len, name);
  if (rc != 0)
    return rc;
  if (count > INT64_MAX) {
    host_fail(r, CR_EXEC_CLASS_SYSTEM, "a batch of records is too large");
    return CR_EINVAL;
  }
  rc = cr_dest_write_lines(r->dest, name, lines, len, count);
  return records_taken(r, name, rc, (int64_t)count);
}

int cr__exec_on_written(struct run *r, const char *stream, size_t stream_len,
                        uint64_t count) {
  char name[129];
  int rc = records_ok(r, stream, stream_len, name);
  if (rc != 0)
    return rc;
  rc = r->direct ? cr_dest_written(r->dest, name, count) : CR_ENOTSUP;
  return records_taken(r, name, rc, (int64_t)count);
}

int cr__exec_on_dest_error(struct run *r, const char *stream, size_t stream_len,
                           int code, const char *msg, size_t len) {
  char name[129];
  size_t n = stream_len < sizeof name - 1 ? stream_len : sizeof name - 1;
  memcpy(name, stream, n);
  name[n] = '\0';
  int cls = code == CR_EINVAL || code == CR_ESCHEMA || code == CR_ERANGE
                ? CR_EXEC_CLASS_SYSTEM
                : CR_EXEC_CLASS_TRANSIENT;
  int n_msg = (int)(len < 400 ? len : 400);
  if (name[0] != '\0')
    host_fail(r, cls, "destination refused a record of stream %s: %.*s", name,
              n_msg, msg);
  else /* the worker could not hand its buffers to the kernel */
    host_fail(r, cls, "destination flush failed: %.*s", n_msg, msg);
  return code < 0 ? code : CR_EIO;
}

const char *cr__exec_dest_dir(const struct run *r) {
  return r->direct ? r->work->destination.path : NULL;
}

/* Commits a checkpoint whose records are durable: the lease renewed, the
 * state stored with the count of records it covers. */
static int commit_checkpoint(struct run *r, const char *state, size_t len,
                             int64_t records) {
  struct cr_exec_final f = final_of(r);
  int64_t version = 0;
  int rc = port(r) ? port(r)->checkpoint(port(r)->ud, &f, lease_ms(r), state,
                                         len, records, &version)
                   : cr_exec_write_checkpoint(r->env->store, &f, lease_ms(r),
                                              state, len, records, &version);
  note_lost(r, rc);
  if (rc == 0) {
    r->checkpoints++;
    r->last_renew_ms = cr__now_ms();
    report_progress(r, NULL, 0, 1);
    return 0;
  }
  if (rc == CR_EINVAL)
    host_fail(r, CR_EXEC_CLASS_SYSTEM, "checkpoint refused: not JSON");
  else if (!r->lost)
    host_fail(r, CR_EXEC_CLASS_TRANSIENT, "cannot commit checkpoint: %s",
              cr_strerror(rc));
  return rc;
}

static void free_ckpts(struct ckpt *c) {
  while (c != NULL) {
    struct ckpt *next = c->next;
    cr__free(c);
    c = next;
  }
}

static void drop_pipelined(struct run *r) {
  free_ckpts(r->fly);
  free_ckpts(r->wait);
  r->fly = r->wait = NULL;
  r->wait_tail = &r->wait;
  r->n_wait = 0;
}

/* Commits the checkpoints of list (consumed), in order, until one fails.
 * Their records must be durable. */
static int commit_list(struct run *r, struct ckpt *list) {
  int rc = 0;
  /* Made before any failure that came since: their records are durable. */
  for (struct ckpt *c = list; c != NULL && rc == 0; c = c->next)
    rc = r->lost ? CR_ESTALE
                 : commit_checkpoint(r, c->state, c->len, c->records);
  free_ckpts(list);
  return rc;
}

/* Makes the records of the checkpoints of list (consumed) durable and
 * commits them: drains the destination and hands its descriptors to the
 * helper (committed by settle once it is done), or, for a destination that
 * cannot (not jsonl, or too many files), flushes it here and commits at
 * once. Returns 0 or the failure (recorded). */
static int start_sync(struct run *r, struct ckpt *list) {
  int fds[MAX_SYNC_FDS];
  size_t n = 0;
  int rc = cr_dest_drain_fds(r->dest, fds, MAX_SYNC_FDS, &n);
  if (rc == CR_ENOTSUP) {
    rc = cr_dest_flush(r->dest);
    if (rc == 0)
      return commit_list(r, list);
    free_ckpts(list);
    host_fail(r, CR_EXEC_CLASS_TRANSIENT, "destination flush failed: %s",
              cr_dest_last_error(r->dest));
    return rc;
  }
  if (rc == 0 && r->sync == NULL)
    rc = cr__ckpt_sync_new(&r->sync);
  if (rc == 0)
    rc = cr__ckpt_sync_start(r->sync, fds, n);
  if (rc != 0) {
    free_ckpts(list);
    host_fail(r, CR_EXEC_CLASS_TRANSIENT, "destination flush failed: %s",
              rc == CR_EIO && cr_dest_last_error(r->dest)[0]
                  ? cr_dest_last_error(r->dest)
                  : cr_strerror(rc));
    return rc;
  }
  r->fly = list;
  return 0;
}

/* Once the helper made their records durable, commits the checkpoints it
 * covered, in order, then hands it those made meanwhile (one fsync for
 * all of them). wait: blocks until everything is committed. Returns 0 or
 * the failure (recorded). */
static int settle(struct run *r, int wait) {
  while (r->fly != NULL) {
    int err = 0;
    if (!cr__ckpt_sync_collect(r->sync, wait, &err))
      return 0;
    if (err != 0) {
      drop_pipelined(r);
      host_fail(r, CR_EXEC_CLASS_TRANSIENT, "destination flush failed: %s",
                strerror(err));
      return CR_EIO;
    }
    struct ckpt *done = r->fly;
    r->fly = NULL;
    int rc = commit_list(r, done);
    if (rc != 0) {
      drop_pipelined(r);
      return rc;
    }
    if (r->wait != NULL) {
      struct ckpt *list = r->wait;
      r->wait = NULL;
      r->wait_tail = &r->wait;
      r->n_wait = 0;
      if ((rc = start_sync(r, list)) != 0)
        return rc;
    }
  }
  return 0;
}

/* A checkpoint: committed once the destination made the records before it
 * durable, every one in order. With a destination that can (jsonl), the
 * fsync()s run on a helper thread while the records go on (exec_ckpt.h);
 * checkpoints made meanwhile wait for the next fsync, which covers them
 * all (at most MAX_WAITING, then this blocks). The plugin learns of a
 * failed commit at its next checkpoint, or from the run's end. Otherwise
 * the destination is flushed and the checkpoint committed here. */
int cr__exec_on_checkpoint(struct run *r, const char *state, size_t len) {
  if (r->failed || r->lost)
    return CR_ECANCELED;
  if (ensure_executing(r) != 0)
    return CR_ESTALE;
  int rc = settle(r, r->n_wait >= MAX_WAITING);
  if (rc != 0)
    return rc;
  struct ckpt *c = cr__malloc(sizeof *c + len + 1);
  if (c == NULL) {
    host_fail(r, CR_EXEC_CLASS_SYSTEM, "out of memory");
    return CR_ENOMEM;
  }
  c->next = NULL;
  c->records = r->since_ckpt;
  c->len = len;
  memcpy(c->state, state, len);
  c->state[len] = '\0';
  r->since_ckpt = 0;
  if (r->fly == NULL)
    return start_sync(r, c);
  *r->wait_tail = c; /* the helper is busy: wait for the next fsync */
  r->wait_tail = &c->next;
  r->n_wait++;
  return 0;
}

int cr__exec_on_credentials(struct run *r, const char *json, size_t len) {
  const struct cr_config_auth *a = r->work->auth;
  if (a == NULL || r->lost)
    return CR_EINVAL;
  char hash[17];
  snprintf(hash, sizeof hash, "%016" PRIx64, a->config_hash);
  struct cr_exec_final f = final_of(r);
  int rc = port(r)
               ? port(r)->credentials(port(r)->ud, &f, lease_ms(r), json, len)
               : cr_exec_write_credentials(r->env->store, &f, lease_ms(r),
                                           a->id, hash, json, len);
  note_lost(r, rc);
  if (rc == 0)
    logf_run(r, CR_LOG_INFO, "authorization %s: credentials rotated", a->id);
  return rc;
}

void cr__exec_on_metrics(struct run *r, uint64_t requests, uint64_t errors) {
  const struct cr_config_auth *a = r->work->auth;
  if (a == NULL || requests == 0)
    return;
  struct cr_exec_final f = final_of(r);
  int rc = port(r) ? port(r)->metrics(port(r)->ud, &f, requests, errors)
                   : cr_store_metrics_add(r->env->store, a->id, 0,
                                          (int64_t)requests, (int64_t)errors);
  if (rc != 0)
    logf_run(r, CR_LOG_WARN, "cannot record request metrics: %s",
             cr_strerror(rc));
}

void cr__exec_on_log(struct run *r, int level, const char *text, size_t len) {
  int lv = level < CR_LOG_DEBUG   ? CR_LOG_DEBUG
           : level > CR_LOG_ERROR ? CR_LOG_ERROR
                                  : level;
  logf_run(r, lv, "%.*s", (int)(len > 900 ? 900 : len), text);
  if (port(r) != NULL && port(r)->log != NULL) {
    struct cr_exec_final f = final_of(r);
    char line[901];
    snprintf(line, sizeof line, "%.*s", (int)(len > 900 ? 900 : len), text);
    port(r)->log(port(r)->ud, &f, lv, line);
  }
}

/* ---- Outcome ------------------------------------------------------------ */

static int class_of_code(int code) {
  switch (code) {
  case CR_PLUGIN_ERR_CONFIG:
    return CR_EXEC_CLASS_CONFIG;
  case CR_PLUGIN_ERR_TRANSIENT:
    return CR_EXEC_CLASS_TRANSIENT;
  case CR_PLUGIN_ERR_RATE_LIMITED:
    return CR_EXEC_CLASS_RATE_LIMITED;
  default:
    return CR_EXEC_CLASS_SYSTEM;
  }
}

static void redact_into(const struct run *r, const char *in, char *out,
                        size_t outlen) {
  char *red = NULL;
  const cr_redactor *rd = cr_config_redactor(r->env->cfg);
  if (rd != NULL && cr_redact(rd, in, &red) == 0) {
    snprintf(out, outlen, "%s", red);
    cr__free(red);
  } else {
    snprintf(out, outlen, "%s", in);
  }
}

static int write_completed(struct run *r) {
  struct cr_exec_final f = final_of(r);
  return note_lost(r, port(r) ? port(r)->completed(port(r)->ud, &f)
                              : cr_exec_write_completed(r->env->store, &f));
}

/* Defers the completion of a quick run (no transaction of its own yet) to
 * env->group. Returns 1 when deferred. */
static int defer_completed(struct run *r, struct cr_exec_outcome *out) {
  if (r->env->group == NULL || r->executing)
    return 0;
  struct cr_exec_final f = final_of(r);
  if (cr__exec_group_add(r->env->group, &f, r->env, out) != 0)
    return 0; /* out of memory: written at once instead */
  out->deferred = 1;
  return 1;
}

static int write_failed(struct run *r, const char *cls, const char *msg) {
  struct cr_exec_final f = final_of(r);
  return note_lost(r, port(r)
                          ? port(r)->failed(port(r)->ud, &f, cls, msg)
                          : cr_exec_write_failed(r->env->store, &f, cls, msg));
}

static int write_retry(struct run *r, int64_t at, const char *cls,
                       const char *msg, const char *reason) {
  struct cr_exec_final f = final_of(r);
  f.needs_executing = !r->executing && r->ran; /* it ran: show it executed */
  return note_lost(
      r, port(r)
             ? port(r)->retry(port(r)->ud, &f, at, cls, msg, reason)
             : cr_exec_write_retry(r->env->store, &f, at, cls, msg, reason));
}

static int64_t retry_delay(const struct run *r, int cls, int64_t after_ms) {
  const struct cr_exec_env *e = r->env;
  int64_t base =
      e->retry_base_ms > 0 ? e->retry_base_ms : CR_EXEC_RETRY_BASE_MS;
  int64_t max = e->retry_max_ms > 0 ? e->retry_max_ms : CR_EXEC_RETRY_MAX_MS;
  uint64_t rng =
      (uint64_t)cr__now_ms() ^ ((uint64_t)r->claim->execution_id << 32);
  int64_t d = cr_exec_backoff_ms(r->claim->attempt, base, max, &rng);
  if (cls == CR_EXEC_CLASS_RATE_LIMITED && after_ms > d)
    d = after_ms;
  return d;
}

/* Writes the outcome of the attempt: code/cls_name/msg as the plugin side
 * reported them, unless a host-side failure came first. */
static int finish(struct run *r, int code, const char *msg, int64_t after_ms,
                  struct cr_exec_outcome *out) {
  if (r->fly != NULL)
    settle(r, 1); /* checkpoints made durable meanwhile are committed */
  if (!r->failed && !r->lost && r->dest != NULL) {
    int frc = cr_dest_flush(r->dest);
    if (frc != 0)
      host_fail(r, CR_EXEC_CLASS_TRANSIENT, "destination flush failed: %s",
                cr_dest_last_error(r->dest));
  }
  out->records = r->records;
  out->records_failed = cr_dest_records_failed(r->dest);
  out->checkpoints = r->checkpoints;
  if (r->lost) {
    out->state = -1;
    return 0;
  }
  if (!r->failed && code == 0) {
    if (defer_completed(r, out))
      return 0; /* out->state is set when the group commits */
    int rc = write_completed(r);
    out->state = rc == 0 ? CR_EXEC_COMPLETED : -1;
    return r->lost ? 0 : rc;
  }
  int cls = r->failed ? r->fail_class : class_of_code(code);
  char why[512];
  redact_into(r, r->failed ? r->fail_msg : (msg && *msg ? msg : "failed"), why,
              sizeof why);
  const char *cname = cr_exec_class_name(cls);
  snprintf(out->error_class, sizeof out->error_class, "%s", cname);
  snprintf(out->error, sizeof out->error, "%s", why);
  int rc;
  if (stopping(r) && (code == CR_PLUGIN_ERR_CANCELLED || r->failed)) {
    rc = write_retry(r, 0, NULL, NULL, "runner stopped; retried");
    out->state = CR_EXEC_CREATED;
    out->retry_at = 0;
    out->error_class[0] = '\0';
    snprintf(out->error, sizeof out->error, "runner stopped");
  } else if (cr_exec_class_retryable(cls) &&
             r->claim->attempt < r->work->max_attempts) {
    int64_t at = cr__now_ms() + retry_delay(r, cls, after_ms);
    char reason[700];
    snprintf(reason, sizeof reason, "attempt %d of %d failed (%s): %s",
             r->claim->attempt, r->work->max_attempts, cname, why);
    rc = write_retry(r, at, cname, why, reason);
    out->state = CR_EXEC_CREATED;
    out->retry_at = at;
  } else {
    rc = write_failed(r, cname, why);
    out->state = CR_EXEC_FAILED;
  }
  if (r->lost) {
    out->state = -1;
    return 0;
  }
  return rc;
}

/* ---- Setup -------------------------------------------------------------- */

/* A plugin destination: the destination's provider plugin, created with
 * its authorization's credentials (inline, in this process). */
static int open_plugin_dest(struct run *r, char *err, size_t errlen) {
  const struct cr_config_destination *dc = &r->work->destination;
  const cr_plugin *p = r->env->plugins
                           ? cr_plugin_host_find(r->env->plugins, dc->provider)
                           : NULL;
  if (p == NULL) {
    snprintf(err, errlen, "no plugin for destination provider %s",
             dc->provider ? dc->provider : "(none)");
    return CR_EINVAL;
  }
  char *settings = cr_config_settings_json(dc->auth);
  char *creds = dc->auth ? cr_config_auth_credentials_text(dc->auth) : NULL;
  struct cr_plugin_params params = {
      .struct_size = sizeof params,
      .authorization_id = dc->auth ? dc->auth->id : "",
      .auth_method = dc->auth && dc->auth->method ? dc->auth->method : "none",
      .credentials_json = creds ? creds : "{}",
      .config_json = "{}",
      .work_id = r->work->id,
      .settings_json = settings ? settings : "{}",
  };
  int rc = cr_dest_open_plugin(cr_plugin_desc(p), &params,
                               cr_config_redactor(r->env->cfg), &r->dest, err,
                               errlen);
  free(settings);
  if (creds != NULL) {
    cr__secret_wipe(creds, strlen(creds));
    free(creds);
  }
  return rc;
}

/* A destination's log line (a rejected record) as the execution's. */
static void dest_log(void *ud, int level, const char *msg) {
  logf_run(ud, level, "%s", msg);
}

/* A jsonl destination of a run in a worker process is written by the
 * worker itself: the records do not cross the pipe (two copies and the
 * parent's CPU per byte); this side counts them and makes them durable. */
static int open_dest(struct run *r) {
  char err[512] = "";
  const struct cr_config_destination *d = &r->work->destination;
  r->direct = d->type == CR_DEST_JSONL && d->path != NULL &&
              r->work->isolation != CR_ISOLATION_INLINE && r->env->pool != NULL;
  int rc = d->type == CR_DEST_PLUGIN ? open_plugin_dest(r, err, sizeof err)
           : r->direct
               ? cr_dest_open_jsonl_synced(d->path, &r->dest, err, sizeof err)
               : cr_dest_open(d, &r->dest, err, sizeof err);
  if (rc != 0) {
    host_fail(r,
              rc == CR_EINVAL || rc == CR_ENOTSUP || rc == CR_EPLUGIN
                  ? CR_EXEC_CLASS_CONFIG
                  : CR_EXEC_CLASS_TRANSIENT,
              "cannot open destination: %s", err[0] ? err : cr_strerror(rc));
    return rc;
  }
  cr_dest_set_log(r->dest, dest_log, r);
  rc = cr__exec_declare_streams(r->plugin, r->dest);
  if (rc != 0)
    host_fail(r, CR_EXEC_CLASS_CONFIG, "destination refused the streams: %s",
              cr_dest_last_error(r->dest));
  return rc;
}

static int load_state(struct run *r) {
  if (port(r) != NULL)
    return port(r)->load(port(r)->ud, r->claim, &r->state_json,
                         &r->credentials);
  struct cr_sync_state_rec st;
  memset(&st, 0, sizeof st);
  int rc = cr_store_sync_state_latest(r->env->store, r->work->id, &st);
  if (rc == CR_ENOENT)
    return 0;
  if (rc != 0)
    return rc;
  r->state_json = st.state_json;
  st.state_json = NULL;
  cr_sync_state_rec_clear(&st);
  return 0;
}

static int load_credentials(struct run *r) {
  const struct cr_config_auth *a = r->work->auth;
  if (port(r) != NULL) /* load_state took them from the port */
    return r->credentials != NULL ? 0 : CR_EINVAL;
  if (a == NULL) {
    r->credentials = cr__strdup("{}");
    return r->credentials ? 0 : CR_ENOMEM;
  }
  char hash[17];
  snprintf(hash, sizeof hash, "%016" PRIx64, a->config_hash);
  char *stored = NULL;
  int rc = cr_store_auth_credentials_get(r->env->store, a->id, hash, &stored);
  if (rc == 0) {
    r->credentials = stored;
    return 0;
  }
  if (rc != CR_ENOENT)
    return rc;
  char *txt = cr_config_auth_credentials_text(a);
  if (txt == NULL)
    return CR_ENOMEM;
  r->credentials = cr__strdup(txt);
  cr__secret_wipe(txt, strlen(txt));
  free(txt);
  return r->credentials ? 0 : CR_ENOMEM;
}

static void run_cleanup(struct run *r) {
  cr__ckpt_sync_free(r->sync); /* before the destination's descriptors go */
  drop_pipelined(r);
  cr_dest_close(r->dest);
  cr__free(r->state_json);
  if (r->credentials != NULL)
    cr__secret_wipe_free(r->credentials, strlen(r->credentials));
}

int cr_exec_run(const struct cr_exec_env *env,
                const struct cr_exec_claim *claim,
                struct cr_exec_outcome *out) {
  if (env == NULL || env->cfg == NULL ||
      (env->store == NULL && env->port == NULL) ||
      (env->port != NULL && env->group != NULL) || claim == NULL ||
      out == NULL || claim->work_id == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  out->state = -1;
  struct run r;
  memset(&r, 0, sizeof r);
  r.env = env;
  r.claim = claim;
  r.wait_tail = &r.wait;
  r.work = cr_config_find_work(env->cfg, claim->work_id);
  if (r.work == NULL)
    return CR_ENOENT;
  r.started_ms = cr__now_ms();
  r.last_renew_ms = r.started_ms;
  r.plugin =
      env->plugins ? cr_plugin_host_find(env->plugins, r.work->provider) : NULL;
  int code = 0;
  char msg[512] = "";
  int64_t after = 0;
  int rc = load_state(&r);
  if (rc == 0)
    rc = load_credentials(&r);
  if (rc != 0) {
    run_cleanup(&r);
    return rc;
  }
  if (r.plugin == NULL)
    host_fail(&r, CR_EXEC_CLASS_CONFIG, "no plugin for provider %s",
              r.work->provider);
  else if (r.work->unavailable != NULL)
    host_fail(&r, CR_EXEC_CLASS_CONFIG, "%s", r.work->unavailable);
  else if (open_dest(&r) == 0) {
    if (r.work->isolation == CR_ISOLATION_INLINE)
      code = cr__exec_inline(&r, msg, sizeof msg, &after);
    else
      code = cr__exec_process(&r, msg, sizeof msg, &after);
  }
  rc = finish(&r, code, msg, after, out);
  if (out->state == CR_EXEC_COMPLETED)
    logf_run(&r, CR_LOG_INFO,
             "completed: %" PRId64 " records, %" PRId64 " checkpoints",
             r.records, r.checkpoints);
  else if (out->state >= 0)
    logf_run(&r, CR_LOG_WARN, "%s: %s",
             out->state == CR_EXEC_FAILED ? "failed" : "will retry",
             out->error);
  run_cleanup(&r);
  return rc;
}

/* ---- Accessors and shared helpers for the isolation modes -------------- */

const struct cr_exec_env *cr__exec_env(const struct run *r) { return r->env; }
const struct cr_config_work *cr__exec_work(const struct run *r) {
  return r->work;
}
const cr_plugin *cr__exec_plugin(const struct run *r) { return r->plugin; }
const struct cr_exec_claim *cr__exec_claim(const struct run *r) {
  return r->claim;
}
const char *cr__exec_state(const struct run *r) { return r->state_json; }
const char *cr__exec_credentials(const struct run *r) { return r->credentials; }

void cr__exec_mark_ran(struct run *r) { r->ran = 1; }

void cr__exec_fail(struct run *r, int cls, const char *msg) {
  host_fail(r, cls, "%s", msg);
}

/* A run of its own does not hold up the completions of earlier quick runs
 * past the group's age bound (their leases are not renewed). Errors are
 * logged by the group. */
static void maybe_commit_group(struct run *r) {
  cr_exec_group *g = r->env->group;
  if (cr_exec_group_size(g) > 0 &&
      cr_exec_group_age_ms(g) >= CR_EXEC_GROUP_MAX_AGE_MS)
    cr_exec_group_commit(g, r->env->store);
}

int cr__exec_tick(struct run *r) {
  if (r->fly != NULL)
    settle(r, 0);
  maybe_renew(r);
  maybe_commit_group(r);
  if (!r->failed && r->work->timeout_ms > 0 &&
      r->work->isolation == CR_ISOLATION_INLINE &&
      cr__now_ms() - r->started_ms > r->work->timeout_ms)
    host_fail(r, CR_EXEC_CLASS_TRANSIENT, "timed out after %" PRId64 " s",
              r->work->timeout_ms / 1000);
  return r->failed || r->lost || stopping(r);
}

int cr__exec_declare_streams(const cr_plugin *p, cr_dest *d) {
  const char *txt = cr_plugin_desc(p)->streams_json;
  if (txt == NULL)
    return 0;
  json_t *arr = json_loads(txt, 0, NULL);
  size_t i;
  json_t *st;
  int rc = 0;
  json_array_foreach(arr, i, st) {
    const char *name = json_string_value(json_object_get(st, "name"));
    json_t *pk = json_object_get(st, "primary_key");
    const char *keys[16];
    size_t nk = 0;
    for (size_t k = 0; k < json_array_size(pk) && nk < 16; k++)
      if (json_is_string(json_array_get(pk, k)))
        keys[nk++] = json_string_value(json_array_get(pk, k));
    struct cr_dest_stream ds = {name, keys, nk};
    if (name != NULL && (rc = cr_dest_declare_stream(d, &ds)) != 0)
      break;
  }
  json_decref(arr);
  return rc;
}

int cr_exec_work_one_time(const struct cr_config_work *w, const cr_plugin *p) {
  if (w == NULL || w->schedule.kind != CR_SCHED_NONE)
    return 0;
  const char *txt = p ? cr_plugin_desc(p)->streams_json : NULL;
  return txt == NULL || strstr(txt, "\"default_schedule\"") == NULL;
}

int cr_exec_run_to_end(const struct cr_exec_env *env, int64_t id,
                       const char *runner_id, struct cr_exec_outcome *out) {
  if (env == NULL || env->store == NULL || runner_id == NULL || out == NULL)
    return CR_EINVAL;
  int64_t lease = env->lease_ms > 0 ? env->lease_ms : CR_EXEC_LEASE_MS;
  struct cr_exec_env own = *env;
  own.group = NULL; /* the outcome is written before this returns */
  for (;;) {
    struct cr_exec_claim c;
    memset(&c, 0, sizeof c);
    int rc = cr_store_exec_claim_one(env->store, id, runner_id, lease, &c);
    if (rc != 0)
      return rc;
    rc = cr_exec_run(&own, &c, out);
    cr__free(c.work_id);
    if (rc != 0 || out->state != CR_EXEC_CREATED)
      return rc;
    while (cr__now_ms() < out->retry_at &&
           !(env->stop != NULL && atomic_load(env->stop)))
      cr__sleep_ms(100);
    if (env->stop != NULL && atomic_load(env->stop))
      return 0;
  }
}
