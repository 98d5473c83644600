/* worker.c: the `connrun worker` child loop: a reader thread owning the
 * parent->worker pipe (JOB/BYE queued to the main thread, CANCEL applied at
 * once) and the main thread running one plugin job at a time, streaming its
 * output to the parent as wire frames (see worker.h, wire.h). */
#include "plugin/worker.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dest/dest.h"
#include "plugin/host_api.h"
#include "plugin/plugin_host.h"
#include "plugin/wire.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#if defined(__SANITIZE_ADDRESS__)
#define CR_WORKER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CR_WORKER_ASAN 1
#endif
#endif

/* Exit statuses of cr_worker_main. */
enum { EXIT_GONE = 1, EXIT_PROTOCOL = 2, EXIT_START = 3 };

/* One JOB, copied out of the decoder (every string owned, NUL-terminated). */
struct job {
  struct job *next;
  atomic_int cancelled; /* CANCEL arrived before the job started */
  char *work_id, *authorization_id, *auth_method, *provider, *plugin_path;
  char *plugin_id; /* the file the parent loaded ("" : not checked) */
  char *credentials_json, *config_json, *state_json, *settings_json;
  char *dest_dir; /* "" : the records go to the parent */
  uint64_t timeout_ms, memory_limit_mb;
};

/* State shared by the reader thread and the main thread (under mu). */
struct shared {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  struct job *head, *tail;
  int done;            /* reader finished: BYE/EOF (0) or bad input (2) */
  int done_status;     /* exit status the main thread returns */
  cr_plugin_ctx *ctx;  /* the running job's ctx, NULL between jobs */
  struct job *running; /* the running job */
  int in_fd;
};

/* Per-job output state (the sinks' ud). */
struct run {
  struct shared *s;
  int out_fd;
  cr_wire_buf buf;
  cr_plugin_ctx *ctx;
  const struct job *job;
  uint64_t records, since_ckpt;
  /* The open RECORDS frame at the end of buf and its stream: consecutive
   * records of one stream travel in one frame (ended before any other
   * frame is encoded, and by every flush). */
  cr_wire_batch batch;
  char batch_stream[129];
  /* JOB dest_dir: the jsonl destination this worker writes itself, and the
   * records of wrote_stream written since the last WROTE frame (sent
   * before any other frame, like a batch). */
  cr_dest *dest;
  int dest_failed;
  char wrote_stream[129];
  uint64_t wrote_count;
  /* The latest PROGRESS, sent just before the next write to the parent
   * (a plugin may report after every record; one frame per flush is
   * enough). */
  int prog_pending;
  char prog_stream[129];
  uint64_t prog_done, prog_total;
};

/* ---- jobs ------------------------------------------------------------- */

static char *dup_view(cr_wire_str v) {
  return cr__strndup(v.ptr != NULL ? v.ptr : "", v.len);
}

static void job_free(struct job *j) {
  if (j == NULL)
    return;
  cr__free(j->work_id);
  cr__free(j->authorization_id);
  cr__free(j->auth_method);
  cr__free(j->provider);
  cr__free(j->plugin_path);
  cr__free(j->plugin_id);
  cr__free(j->credentials_json);
  cr__free(j->config_json);
  cr__free(j->state_json);
  cr__free(j->settings_json);
  cr__free(j->dest_dir);
  cr__free(j);
}

static struct job *job_copy(const struct cr_wire_msg *m) {
  struct job *j = cr__calloc(1, sizeof *j);
  if (j == NULL)
    return NULL;
  atomic_init(&j->cancelled, 0);
  j->work_id = dup_view(m->u.job.work_id);
  j->authorization_id = dup_view(m->u.job.authorization_id);
  j->auth_method = dup_view(m->u.job.auth_method);
  j->provider = dup_view(m->u.job.provider);
  j->plugin_path = dup_view(m->u.job.plugin_path);
  j->plugin_id = dup_view(m->u.job.plugin_id);
  j->credentials_json = dup_view(m->u.job.credentials_json);
  j->config_json = dup_view(m->u.job.config_json);
  j->state_json = dup_view(m->u.job.state_json);
  j->settings_json = dup_view(m->u.job.settings_json);
  j->dest_dir = dup_view(m->u.job.dest_dir);
  j->timeout_ms = m->u.job.timeout_ms;
  j->memory_limit_mb = m->u.job.memory_limit_mb;
  if (!j->work_id || !j->authorization_id || !j->auth_method || !j->provider ||
      !j->plugin_path || !j->plugin_id || !j->credentials_json ||
      !j->config_json || !j->state_json || !j->settings_json || !j->dest_dir) {
    job_free(j);
    return NULL;
  }
  return j;
}

/* ---- reader thread ------------------------------------------------------ */

/* Ends the reader with exit status st. After BYE (bye set) queued and running
 * jobs finish first. Otherwise a job in flight means the parent is gone (or
 * the protocol broken) while a plugin runs: nothing useful can follow. */
static void reader_finish(struct shared *s, int st, int bye) {
  pthread_mutex_lock(&s->mu);
  if (!bye && (s->running != NULL || s->head != NULL))
    _exit(st == 0 ? EXIT_GONE : st);
  s->done = 1;
  s->done_status = st;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->mu);
}

static void reader_cancel(struct shared *s) {
  pthread_mutex_lock(&s->mu);
  if (s->ctx != NULL)
    cr_plugin_ctx_cancel(s->ctx);
  else if (s->running != NULL) /* loading, create(): set when read() starts */
    atomic_store(&s->running->cancelled, 1);
  else if (s->head != NULL)
    atomic_store(&s->head->cancelled, 1);
  pthread_mutex_unlock(&s->mu);
}

static void reader_enqueue(struct shared *s, struct job *j) {
  pthread_mutex_lock(&s->mu);
  if (s->tail != NULL)
    s->tail->next = j;
  else
    s->head = j;
  s->tail = j;
  pthread_cond_signal(&s->cond);
  pthread_mutex_unlock(&s->mu);
}

static void *reader_main(void *arg) {
  struct shared *s = arg;
  cr_wire_decoder d;
  cr_wire_decoder_init(&d);
  int st = 0, bye = 0;
  for (;;) {
    struct cr_wire_msg m;
    int rc = cr_wire_read_msg(s->in_fd, &d, &m);
    if (rc == 0) {
      st = 0;
      break;
    }
    if (rc < 0) {
      st = rc == CR_EIO ? EXIT_GONE : EXIT_PROTOCOL;
      break;
    }
    if (m.type == CR_WIRE_CANCEL) {
      reader_cancel(s);
      continue;
    }
    if (m.type == CR_WIRE_ACK)
      continue; /* tolerated: the parent never needs to send it */
    if (m.type == CR_WIRE_BYE) {
      bye = 1;
      break;
    }
    if (m.type != CR_WIRE_JOB) {
      st = EXIT_PROTOCOL;
      break;
    }
    struct job *j = job_copy(&m);
    if (j == NULL) {
      st = EXIT_START;
      break;
    }
    reader_enqueue(s, j);
  }
  cr_wire_decoder_free(&d);
  reader_finish(s, st, bye);
  return NULL;
}

/* ---- output ---------------------------------------------------------------
 */

/* Encodes the pending WROTE count. */
static int wrote_end(struct run *r) {
  if (r->wrote_count == 0)
    return 0;
  struct cr_wire_msg m = {.type = CR_WIRE_WROTE};
  m.u.wrote.stream = cr_wire_cstr(r->wrote_stream);
  m.u.wrote.count = r->wrote_count;
  r->wrote_count = 0;
  return cr_wire_encode(&r->buf, &m);
}

/* Ends what is pending at the end of buf (a batch, a WROTE count) before
 * another frame. */
static void pending_end(struct run *r) {
  cr_wire_batch_end(&r->buf, &r->batch);
  if (wrote_end(r) != 0)
    r->dest_failed = 1; /* out of memory: stop rather than miscount */
}

static void encode_progress(struct run *r) {
  pending_end(r);
  struct cr_wire_msg m = {.type = CR_WIRE_PROGRESS};
  m.u.progress.stream = cr_wire_cstr(r->prog_stream);
  m.u.progress.done = r->prog_done;
  m.u.progress.total = r->prog_total;
  if (cr_wire_encode(&r->buf, &m) == 0)
    r->prog_pending = 0;
}

/* Writes the buffered frames (and the pending PROGRESS) to the parent. A
 * failed write means the parent is gone: nothing can be reported any more. */
static void run_flush(struct run *r) {
  pending_end(r);
  if (r->prog_pending)
    encode_progress(r);
  if (r->buf.len == 0)
    return;
  if (cr_wire_write_all(r->out_fd, &r->buf) != 0)
    _exit(EXIT_GONE);
  cr_wire_buf_reset(&r->buf);
}

static int run_send(struct run *r, const struct cr_wire_msg *m, int flush) {
  pending_end(r);
  int rc = cr_wire_encode(&r->buf, m);
  if (rc == 0 && (flush || r->buf.len >= CR_WORKER_FLUSH_BYTES))
    run_flush(r);
  return rc;
}

/* Appends a record to the open batch of its stream, opening one (a full
 * frame is ended and another begun). A record the parent refuses (empty,
 * a raw newline, a stream name too long) travels alone as RECORD, so the
 * parent refuses it with its own reason as for any record. */
static int batch_add(struct run *r, const char *stream, const char *json,
                     size_t len) {
  size_t sn = strlen(stream);
  if (len == 0 || sn >= sizeof r->batch_stream ||
      memchr(json, '\n', len) != NULL) {
    cr_wire_batch_end(&r->buf, &r->batch);
    return cr_wire_encode_record(&r->buf, stream, json, len);
  }
  if (r->batch.open && memcmp(r->batch_stream, stream, sn + 1) != 0)
    cr_wire_batch_end(&r->buf, &r->batch);
  int rc = CR_ERANGE;
  for (int fresh = 0; rc == CR_ERANGE && fresh < 2; fresh++) {
    if (!r->batch.open) {
      if ((rc = cr_wire_batch_begin(&r->buf, &r->batch, stream)) != 0)
        return rc;
      memcpy(r->batch_stream, stream, sn + 1);
    }
    rc = cr_wire_batch_add(&r->buf, &r->batch, json, len);
    if (rc == CR_ERANGE)
      cr_wire_batch_end(&r->buf, &r->batch);
  }
  return rc;
}

/* The worker's destination refused a record of stream (rc): DEST_ERROR
 * tells the parent, which fails the run as its own destination would; the
 * read is asked to stop. */
static int dest_refused(struct run *r, const char *stream, int rc) {
  struct cr_wire_msg m = {.type = CR_WIRE_DEST_ERROR};
  m.u.dest_error.stream = cr_wire_cstr(stream);
  m.u.dest_error.code = rc;
  m.u.dest_error.message = cr_wire_cstr(cr_dest_last_error(r->dest));
  r->dest_failed = 1;
  (void)run_send(r, &m, 1);
  return CR_PLUGIN_ERR_CANCELLED;
}

/* Hands what the destination buffers to the kernel (the parent fsyncs):
 * before a CHECKPOINT or the RESULT, so the records they cover are in the
 * files when the parent makes them durable. */
static int dest_drain(struct run *r) {
  int fds[64];
  size_t n = 0;
  if (r->dest == NULL || r->dest_failed)
    return r->dest_failed ? CR_PLUGIN_ERR_CANCELLED : 0;
  int rc = cr_dest_drain_fds(r->dest, fds, sizeof fds / sizeof fds[0], &n);
  if (rc == CR_ENOTSUP) /* more files than fds: flushed here instead */
    rc = cr_dest_flush(r->dest);
  return rc == 0 ? 0 : dest_refused(r, "", rc);
}

/* WROTE counts reach the parent at least every this many records. */
#define WROTE_EVERY 16384u

/* A record into the worker's own destination, counted for the parent. */
static int dest_emit(struct run *r, const char *stream, const char *json,
                     size_t len) {
  if (r->dest_failed)
    return CR_PLUGIN_ERR_CANCELLED;
  int rc = cr_dest_write(r->dest, stream, json, len);
  if (rc != 0)
    return dest_refused(r, stream, rc);
  if (r->wrote_count > 0 && strcmp(r->wrote_stream, stream) != 0 &&
      wrote_end(r) != 0)
    return CR_PLUGIN_ERR_SYSTEM;
  if (r->wrote_count == 0) /* a name the destination took: <= 128 bytes */
    snprintf(r->wrote_stream, sizeof r->wrote_stream, "%s", stream);
  if (++r->wrote_count >= WROTE_EVERY)
    run_flush(r);
  r->records++;
  r->since_ckpt++;
  return 0;
}

static int sink_emit(void *ud, const char *stream, const char *json,
                     size_t len) {
  struct run *r = ud;
  if (atomic_load(&r->ctx->cancel) != 0)
    return CR_PLUGIN_ERR_CANCELLED;
  if (r->dest != NULL)
    return dest_emit(r, stream, json, len);
  if (batch_add(r, stream, json, len) != 0)
    return CR_PLUGIN_ERR_SYSTEM;
  r->records++;
  r->since_ckpt++;
  if (r->buf.len >= CR_WORKER_FLUSH_BYTES)
    run_flush(r);
  return 0;
}

static int sink_checkpoint(void *ud, const char *state_json) {
  struct run *r = ud;
  if (dest_drain(r) != 0)
    return CR_PLUGIN_ERR_CANCELLED;
  struct cr_wire_msg m = {.type = CR_WIRE_CHECKPOINT};
  m.u.checkpoint.state_json = cr_wire_cstr(state_json);
  m.u.checkpoint.records_since_last = r->since_ckpt;
  if (run_send(r, &m, 1) != 0)
    return CR_PLUGIN_ERR_SYSTEM;
  r->since_ckpt = 0;
  return 0;
}

static const char *sink_state(void *ud) {
  struct run *r = ud;
  return r->job->state_json[0] != '\0' ? r->job->state_json : NULL;
}

static void sink_progress(void *ud, const char *stream, uint64_t done,
                          uint64_t total) {
  struct run *r = ud;
  size_t n = strlen(stream);
  if (r->prog_pending &&
      (n >= sizeof r->prog_stream || strcmp(stream, r->prog_stream) != 0))
    encode_progress(r); /* another stream: keep its last figure */
  if (n >= sizeof r->prog_stream)
    return; /* the host refuses such stream names anyway */
  memcpy(r->prog_stream, stream, n + 1);
  r->prog_done = done;
  r->prog_total = total;
  r->prog_pending = 1;
}

static int sink_credentials(void *ud, const char *json) {
  struct run *r = ud;
  struct cr_wire_msg m = {.type = CR_WIRE_CREDENTIALS};
  m.u.credentials.json = cr_wire_cstr(json);
  return run_send(r, &m, 1) == 0 ? 0 : CR_PLUGIN_ERR_SYSTEM;
}

/* A line from INFO up goes to the parent at once; a DEBUG line (such as
 * the one of every HTTP request) with the next flush, in order: a
 * paging plugin would otherwise cost a write and a wake-up of the parent
 * per page. */
static void sink_log(void *ud, int level, const char *msg) {
  struct run *r = ud;
  struct cr_wire_msg m = {.type = CR_WIRE_LOG};
  m.u.log.level = level;
  m.u.log.text = cr_wire_cstr(msg);
  (void)run_send(r, &m, level > CR_PLUGIN_LOG_DEBUG);
}

/* ---- one job ----------------------------------------------------------------
 */

static const char *error_class(int code) {
  switch (code) {
  case CR_PLUGIN_OK:
    return "";
  case CR_PLUGIN_ERR_CONFIG:
    return "config";
  case CR_PLUGIN_ERR_TRANSIENT:
    return "transient";
  case CR_PLUGIN_ERR_RATE_LIMITED:
    return "rate_limited";
  case CR_PLUGIN_ERR_CANCELLED:
    return "cancelled";
  default:
    return "system";
  }
}

/* Sends METRICS (when ctx is not NULL) and RESULT, then flushes. message is
 * redacted with red. */
static void send_result(struct run *r, const cr_redactor *red, int code,
                        const char *message, int64_t retry_after_ms) {
  if (r->prog_pending) /* before RESULT: nothing of the job may follow it */
    encode_progress(r);
  if (r->ctx != NULL) {
    struct cr_wire_msg mm = {.type = CR_WIRE_METRICS};
    mm.u.metrics.requests = r->ctx->counters.requests;
    mm.u.metrics.errors = r->ctx->counters.errors;
    mm.u.metrics.bytes =
        r->ctx->counters.bytes_sent + r->ctx->counters.bytes_received;
    (void)run_send(r, &mm, 0);
  }
  char text[1024] = "";
  if (code != 0)
    cr_redact_into(red, message != NULL ? message : "", 0, text, sizeof text);
  struct cr_wire_msg m = {.type = CR_WIRE_RESULT};
  m.u.result.code = code;
  m.u.result.error_class = cr_wire_cstr(error_class(code));
  m.u.result.message = cr_wire_cstr(text);
  m.u.result.retry_after_ms = code != 0 ? retry_after_ms : 0;
  m.u.result.records = r->records;
  /* From here on the parent may close the pipe: not an orphaned job. */
  pthread_mutex_lock(&r->s->mu);
  r->s->running = NULL;
  pthread_mutex_unlock(&r->s->mu);
  if (run_send(r, &m, 1) != 0) {
    /* The message could not be encoded (out of memory): a bare RESULT. */
    cr_wire_buf_reset(&r->buf);
    m.u.result.message = cr_wire_cstr("");
    if (run_send(r, &m, 1) != 0)
      _exit(EXIT_GONE);
  }
}

/* The plugin loaded from path into h, or NULL. */
static const cr_plugin *loaded(const cr_plugin_host *h, const char *path) {
  for (size_t i = 0; i < cr_plugin_host_count(h); i++) {
    const cr_plugin *p = cr_plugin_host_at(h, i);
    if (strcmp(cr_plugin_path(p), path) == 0)
      return p;
  }
  return NULL;
}

/* The plugin for job j, loaded once per path into h (kept until exit). A
 * file other than the one the parent loaded (j->plugin_id) is refused with
 * *transient set: the plugin is being upgraded, and a retry runs under the
 * parent's new set in a new worker. */
static const struct cr_plugin_descriptor *find_plugin(cr_plugin_host *h,
                                                      const struct job *j,
                                                      char *err, size_t errlen,
                                                      int *transient) {
  const cr_plugin *p = loaded(h, j->plugin_path);
  if (p == NULL &&
      cr_plugin_host_load_file(h, j->plugin_path, err, errlen) != 0)
    return NULL;
  if (p == NULL && (p = loaded(h, j->plugin_path)) == NULL) {
    snprintf(err, errlen, "plugin %s: loaded but not found", j->plugin_path);
    return NULL;
  }
  char id[96];
  cr_plugin_file_id_format(cr_plugin_file(p), id, sizeof id);
  if (j->plugin_id[0] != '\0' && strcmp(id, j->plugin_id) != 0) {
    snprintf(err, errlen,
             "plugin %s is not the version the daemon loaded (an upgrade in "
             "progress); retried",
             j->plugin_path);
    *transient = 1;
    return NULL;
  }
  return cr_plugin_desc(p);
}

#ifndef CR_WORKER_ASAN
/* The current size of the address space in bytes (0 when unknown). */
static rlim_t vm_size(void) {
  FILE *f = fopen("/proc/self/statm", "re");
  if (f == NULL)
    return 0;
  unsigned long pages = 0;
  int n = fscanf(f, "%lu", &pages);
  fclose(f);
  return n == 1 ? (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) : 0;
}
#endif

/* Sets the RLIMIT_AS backstop for a job; *saved gets the previous limits.
 * Returns 1 when a limit was set (restore it), else 0. */
static int limit_memory(uint64_t mb, struct rlimit *saved) {
#ifdef CR_WORKER_ASAN
  (void)mb;
  (void)saved;
  return 0;
#else
  if (mb == 0 || getrlimit(RLIMIT_AS, saved) != 0)
    return 0;
  rlim_t cur = vm_size();
  if (cur == 0)
    return 0;
  struct rlimit lim = *saved;
  lim.rlim_cur = cur + (rlim_t)(2 * mb) * 1024 * 1024;
  if (saved->rlim_max != RLIM_INFINITY && lim.rlim_cur > saved->rlim_max)
    lim.rlim_cur = saved->rlim_max;
  return setrlimit(RLIMIT_AS, &lim) == 0;
#endif
}

static void set_running(struct shared *s, struct job *j, cr_plugin_ctx *ctx) {
  pthread_mutex_lock(&s->mu);
  s->ctx = ctx;
  if (ctx != NULL && j != NULL && atomic_load(&j->cancelled))
    cr_plugin_ctx_cancel(ctx);
  pthread_mutex_unlock(&s->mu);
}

/* Creates the instance and runs read() with the sinks wired to r. */
static void run_plugin(struct shared *s, struct run *r,
                       const struct cr_plugin_descriptor *desc,
                       const cr_redactor *red) {
  struct job *j = (struct job *)r->job;
  struct cr_plugin_params params = {
      .struct_size = sizeof params,
      .authorization_id = j->authorization_id,
      .auth_method = j->auth_method,
      .credentials_json = j->credentials_json,
      .config_json = j->config_json,
      .work_id = j->work_id,
      .settings_json = j->settings_json[0] ? j->settings_json : "{}",
  };
  char errbuf[512] = "";
  void *inst = NULL;
  int code = desc->create(cr_host_api_default(), &params, &inst, errbuf,
                          sizeof errbuf);
  if (code != 0) {
    send_result(r, red, code, errbuf[0] ? errbuf : "plugin create failed", 0);
    return;
  }
  set_running(s, j, r->ctx);
  code = desc->read(inst, r->ctx);
  set_running(s, NULL, NULL);
  if (dest_drain(r) != 0 && code == CR_PLUGIN_OK)
    code = CR_PLUGIN_ERR_CANCELLED; /* DEST_ERROR said why */
  const struct cr_plugin_last_error *le = &r->ctx->last_error;
  char generic[64];
  snprintf(generic, sizeof generic, "plugin read failed (%d)", code);
  send_result(r, red, code, le->message[0] ? le->message : generic,
              le->retry_after_ms);
  desc->destroy(inst);
}

static void run_job(struct shared *s, cr_plugin_host *h, int out_fd,
                    struct job *j) {
  struct run r = {.s = s, .out_fd = out_fd, .job = j};
  cr_wire_buf_init(&r.buf);
  char err[512] = "";
  cr_redactor *red = NULL;
  if (cr_redactor_from_json(j->credentials_json, &red) != 0) {
    send_result(&r, red, CR_PLUGIN_ERR_SYSTEM, "out of memory", 0);
    goto done;
  }
  int transient = 0;
  const struct cr_plugin_descriptor *desc =
      find_plugin(h, j, err, sizeof err, &transient);
  if (desc == NULL) {
    send_result(&r, red,
                transient ? CR_PLUGIN_ERR_TRANSIENT : CR_PLUGIN_ERR_SYSTEM, err,
                0);
    goto done;
  }
  if (strcmp(desc->name, j->provider) != 0 || desc->read == NULL) {
    snprintf(err, sizeof err, "plugin %s provides '%s', not '%s' with read",
             j->plugin_path, desc->name, j->provider);
    send_result(&r, red, CR_PLUGIN_ERR_SYSTEM, err, 0);
    goto done;
  }
  cr_plugin_ctx ctx;
  cr_plugin_ctx_init(&ctx, j->authorization_id, red);
  r.ctx = &ctx;
  cr_plugin_ctx_set_log(&ctx, sink_log, &r);
  struct cr_plugin_sinks sinks = {
      .ud = &r,
      .emit = sink_emit,
      .checkpoint = sink_checkpoint,
      .state = sink_state,
      .progress = sink_progress,
      .credentials_update = sink_credentials,
  };
  cr_plugin_ctx_set_sinks(&ctx, &sinks);
  if (j->dest_dir[0] != '\0' &&
      cr_dest_open_jsonl(j->dest_dir, &r.dest, err, sizeof err) != 0) {
    char why[600];
    snprintf(why, sizeof why, "cannot open destination: %s", err);
    send_result(&r, red, CR_PLUGIN_ERR_TRANSIENT, why, 0);
    cr_plugin_ctx_cleanup(&ctx);
    goto done;
  }
  struct rlimit saved;
  int limited = limit_memory(j->memory_limit_mb, &saved);
  run_plugin(s, &r, desc, red);
  cr_dest_close(r.dest); /* drained by run_plugin; made durable by the parent */
  if (limited)
    setrlimit(RLIMIT_AS, &saved);
  cr_plugin_ctx_cleanup(&ctx);
done:
  cr_redactor_free(red);
  cr_wire_buf_free(&r.buf);
}

/* ---- main loop
 * ---------------------------------------------------------------- */

/* Next job (owned by the caller), or NULL when the reader is done. */
static struct job *next_job(struct shared *s) {
  pthread_mutex_lock(&s->mu);
  while (s->head == NULL && !s->done)
    pthread_cond_wait(&s->cond, &s->mu);
  struct job *j = s->head;
  if (j != NULL) {
    s->head = j->next;
    if (s->head == NULL)
      s->tail = NULL;
    j->next = NULL;
  }
  s->running = j;
  pthread_mutex_unlock(&s->mu);
  return j;
}

static int send_hello(int out_fd) {
  cr_wire_buf b;
  cr_wire_buf_init(&b);
  struct cr_wire_msg m = {.type = CR_WIRE_HELLO};
  m.u.hello.version = CR_WIRE_VERSION;
  m.u.hello.pid = (int32_t)getpid();
  m.u.hello.plugin = cr_wire_cstr("");
  int rc = cr_wire_encode(&b, &m);
  if (rc == 0)
    rc = cr_wire_write_all(out_fd, &b);
  cr_wire_buf_free(&b);
  return rc == 0 ? 0 : (rc == CR_EIO ? EXIT_GONE : EXIT_START);
}

static int serve(struct shared *s, int out_fd) {
  cr_plugin_host *h = NULL;
  if (cr_plugin_host_new(NULL, &h) != 0)
    return EXIT_START;
  struct job *j;
  while ((j = next_job(s)) != NULL) {
    run_job(s, h, out_fd, j); /* clears s->running when sending RESULT */
    job_free(j);
  }
  cr_plugin_host_free(h);
  return s->done_status;
}

int cr_worker_main(int in_fd, int out_fd) {
  signal(SIGPIPE, SIG_IGN);
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1 || getppid() != parent)
    return EXIT_GONE;
  /* libcurl's and TLS's global set-up (2-3 ms) before HELLO, not in the
   * first job: a pooled worker is ready when handed out. A failure is
   * reported by the first request. */
  (void)cr_host_http_global_init();
  int st = send_hello(out_fd);
  if (st != 0)
    return st;
  struct shared s = {.in_fd = in_fd};
  pthread_mutex_init(&s.mu, NULL);
  pthread_cond_init(&s.cond, NULL);
  pthread_t reader;
  if (pthread_create(&reader, NULL, reader_main, &s) != 0) {
    st = EXIT_START;
    goto out;
  }
  st = serve(&s, out_fd);
  if (st == EXIT_START && !s.done) /* host creation failed: reader still on */
    _exit(EXIT_START);
  pthread_join(reader, NULL);
out:
  pthread_cond_destroy(&s.cond);
  pthread_mutex_destroy(&s.mu);
  return st;
}
