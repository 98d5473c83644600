/* remote_port.c: a run's writes as sequenced reports to the server (see
 * remote_port.h). */
#include "remote/remote_port.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

struct cr_remote_port {
  struct cr_exec_port ops;
  cr_remote_client *client;
  const struct cr_remote_claim *claim;
  char *path;        /* .../executions/{eid}/reports */
  char *credentials; /* secret */
  const atomic_int *abort;
  atomic_int *revoked;
  int64_t renew_wait_ms, base_ms, max_ms;
  int64_t next_seq;
  json_t *pending;      /* unanswered reports, oldest first */
  int pending_renews;   /* a pending report renews the lease */
  int64_t lease_end_ms; /* local: when the lease surely ended */
  int lost;
  cr_log_fn log;
  void *log_ud;
};

/* Logs the first failed attempt of a report and every tenth after it. */
static void on_retry(void *ud, int attempt, int64_t delay_ms, const char *why) {
  cr_remote_port *p = ud;
  if (attempt == 1 || attempt % 10 == 0)
    cr__logf(p->log, p->log_ud, CR_LOG_WARN,
             "execution %" PRId64 ": report not delivered (%s): retrying in "
             "%" PRId64 " ms",
             p->claim->execution_id, why, delay_ms);
}

/* ---- Sending ------------------------------------------------------------ */

/* The version the answer gives the report seq: results[i].version of the
 * result whose seq matches, else a top-level "version". */
static int64_t version_of(const json_t *body, int64_t seq) {
  const json_t *res = json_object_get(body, "results"), *r;
  size_t i;
  json_array_foreach(res, i, r) {
    if (json_integer_value(json_object_get(r, "seq")) == seq)
      return json_integer_value(json_object_get(r, "version"));
  }
  return json_integer_value(json_object_get(body, "version"));
}

static void drop_pending(cr_remote_port *p) {
  json_array_clear(p->pending);
  p->pending_renews = 0;
}

static int lose(cr_remote_port *p) {
  p->lost = 1;
  drop_pending(p);
  return CR_ESTALE;
}

/* Sends every pending report. must: wait for an answer until the lease
 * ends; else (a renewal) at most renew_wait_ms. *ans (may be NULL) gets the
 * 2xx answer. */
static int send_pending(cr_remote_port *p, int must,
                        struct cr_remote_answer *ans) {
  if (p->lost)
    return CR_ESTALE;
  if (json_array_size(p->pending) == 0)
    return 0;
  json_t *body = json_pack("{s:I, s:O}", "epoch", (json_int_t)p->claim->epoch,
                           "reports", p->pending);
  if (body == NULL)
    return CR_ENOMEM;
  int64_t sent = cr__now_ms();
  int64_t deadline = p->lease_end_ms;
  if (!must && sent + p->renew_wait_ms < deadline)
    deadline = sent + p->renew_wait_ms;
  struct cr_remote_retry r = {.deadline_ms = deadline,
                              .stop = p->abort,
                              .base_ms = p->base_ms,
                              .max_ms = p->max_ms,
                              .on_retry = p->log ? on_retry : NULL,
                              .on_retry_ud = p};
  struct cr_remote_answer a = {0};
  char err[256] = "";
  int rc = cr_remote_call_retry(p->client, &r, "POST", p->path, body, &a, err,
                                sizeof err);
  json_decref(body);
  if (rc == 0) {
    if (p->pending_renews)
      p->lease_end_ms = sent + p->claim->lease_ms;
    drop_pending(p);
    if (ans != NULL)
      *ans = a;
    else
      cr_remote_answer_clear(&a);
    return 0;
  }
  cr_remote_answer_clear(&a);
  if (rc == CR_EPERM && p->revoked != NULL)
    atomic_store(p->revoked, 1);
  if (rc == CR_ESTALE || rc == CR_EPERM || rc == CR_ECANCELED)
    return lose(p);
  if (rc == CR_ETIMEDOUT)
    return must || cr__now_ms() >= p->lease_end_ms ? lose(p) : 0;
  if (rc == CR_EINVAL)
    drop_pending(p);
  return rc;
}

/* A new report of type with the attempt's fields; NULL on ENOMEM. */
static json_t *report(cr_remote_port *p, const char *type,
                      const struct cr_exec_final *f) {
  return json_pack("{s:I, s:s, s:I, s:I, s:I, s:b, s:b, s:i, s:s?}", "seq",
                   (json_int_t)p->next_seq, "type", type, "records",
                   (json_int_t)f->records, "checkpoints",
                   (json_int_t)f->checkpoints, "duration_ms",
                   (json_int_t)f->duration_ms, "needs_executing",
                   f->needs_executing != 0, "one_time", f->one_time != 0,
                   "attempt", f->attempt, "plugin_version", f->plugin_version);
}

/* Queues rep (consumed; NULL = out of memory) with the next number. */
static int queue(cr_remote_port *p, json_t *rep, int renews) {
  if (rep == NULL || json_array_append_new(p->pending, rep) != 0)
    return CR_ENOMEM;
  p->next_seq++;
  p->pending_renews |= renews;
  return 0;
}

/* Queues rep and sends it with what waits. */
static int post(cr_remote_port *p, json_t *rep, int renews, int must,
                struct cr_remote_answer *ans) {
  if (p->lost) {
    json_decref(rep);
    return CR_ESTALE;
  }
  int rc = queue(p, rep, renews);
  return rc == 0 ? send_pending(p, must, ans) : rc;
}

/* A JSON text as a string member; NULL text gives null. */
static void set_text(json_t *rep, const char *key, const char *s, size_t n) {
  if (rep != NULL)
    json_object_set_new(rep, key, s ? json_stringn(s, n) : json_null());
}

static void set_str(json_t *rep, const char *key, const char *s) {
  set_text(rep, key, s, s ? strlen(s) : 0);
}

/* ---- The ops ------------------------------------------------------------ */

static int op_load(void *ud, const struct cr_exec_claim *c, char **state,
                   char **credentials) {
  cr_remote_port *p = ud;
  (void)c;
  *state = p->claim->state ? cr__strdup(p->claim->state) : NULL;
  *credentials = cr__strdup(p->credentials);
  if ((p->claim->state && *state == NULL) || *credentials == NULL) {
    cr__free(*state);
    cr__free(*credentials);
    *state = *credentials = NULL;
    return CR_ENOMEM;
  }
  return 0;
}

static int op_executing(void *ud, const struct cr_exec_final *f) {
  cr_remote_port *p = ud;
  return post(p, report(p, "executing", f), 0, 1, NULL);
}

static int op_renew(void *ud, const struct cr_exec_final *f, int64_t lease_ms) {
  cr_remote_port *p = ud;
  (void)lease_ms; /* the server renews by its own lease */
  return post(p, report(p, "renew", f), 1, 0, NULL);
}

static int op_checkpoint(void *ud, const struct cr_exec_final *f,
                         int64_t lease_ms, const char *state, size_t len,
                         int64_t records, int64_t *version) {
  cr_remote_port *p = ud;
  (void)lease_ms;
  int64_t seq = p->next_seq;
  json_t *rep = report(p, "checkpoint", f);
  set_text(rep, "state", state, len);
  if (rep != NULL)
    json_object_set_new(rep, "records", json_integer(records));
  struct cr_remote_answer a = {0};
  int rc = post(p, rep, 1, 1, &a);
  if (rc == 0 && version != NULL)
    *version = version_of(a.body, seq);
  cr_remote_answer_clear(&a);
  return rc;
}

static int op_credentials(void *ud, const struct cr_exec_final *f,
                          int64_t lease_ms, const char *json, size_t len) {
  cr_remote_port *p = ud;
  (void)lease_ms;
  json_t *rep = report(p, "credentials", f);
  set_text(rep, "credentials", json, len);
  return post(p, rep, 1, 1, NULL);
}

/* Queues a log or metrics report; sends when too many wait. */
static int queue_quiet(cr_remote_port *p, json_t *rep) {
  if (p->lost) {
    json_decref(rep);
    return CR_ESTALE;
  }
  int rc = queue(p, rep, 0);
  if (rc == 0 && json_array_size(p->pending) >= CR_REMOTE_PORT_MAX_PENDING)
    rc = send_pending(p, 1, NULL);
  return rc;
}

static int op_metrics(void *ud, const struct cr_exec_final *f,
                      uint64_t requests, uint64_t errors) {
  cr_remote_port *p = ud;
  json_t *rep = report(p, "metrics", f);
  if (rep != NULL) {
    json_object_set_new(rep, "requests", json_integer((json_int_t)requests));
    json_object_set_new(rep, "errors", json_integer((json_int_t)errors));
  }
  return queue_quiet(p, rep);
}

static void op_log(void *ud, const struct cr_exec_final *f, int level,
                   const char *text) {
  cr_remote_port *p = ud;
  json_t *rep = report(p, "log", f);
  if (rep != NULL)
    json_object_set_new(rep, "level", json_integer(level));
  set_str(rep, "text", text);
  (void)queue_quiet(p, rep);
}

static int op_completed(void *ud, const struct cr_exec_final *f) {
  cr_remote_port *p = ud;
  return post(p, report(p, "completed", f), 0, 1, NULL);
}

static int op_failed(void *ud, const struct cr_exec_final *f, const char *cls,
                     const char *msg) {
  cr_remote_port *p = ud;
  json_t *rep = report(p, "failed", f);
  set_str(rep, "error_class", cls);
  set_str(rep, "error", msg);
  return post(p, rep, 0, 1, NULL);
}

static int op_retry(void *ud, const struct cr_exec_final *f, int64_t at,
                    const char *cls, const char *msg, const char *reason) {
  cr_remote_port *p = ud;
  json_t *rep = report(p, "retry", f);
  if (rep != NULL)
    json_object_set_new(rep, "at", json_integer(at));
  set_str(rep, "error_class", cls);
  set_str(rep, "error", msg);
  set_str(rep, "reason", reason);
  return post(p, rep, 0, 1, NULL);
}

/* ---- Lifecycle ---------------------------------------------------------- */

int cr_remote_port_new(const struct cr_remote_port_opts *o,
                       cr_remote_port **out) {
  if (o == NULL || out == NULL || o->client == NULL || o->runner_id == NULL ||
      o->claim == NULL)
    return CR_EINVAL;
  *out = NULL;
  cr_remote_port *p = cr__calloc(1, sizeof *p);
  if (p == NULL)
    return CR_ENOMEM;
  size_t n = strlen(o->runner_id) + 80;
  p->path = cr__malloc(n);
  p->credentials = cr__strdup(o->credentials ? o->credentials : "{}");
  p->pending = json_array();
  if (p->path == NULL || p->credentials == NULL || p->pending == NULL) {
    cr_remote_port_free(p);
    return CR_ENOMEM;
  }
  snprintf(p->path, n, "/v1/runners/%s/executions/%" PRId64 "/reports",
           o->runner_id, o->claim->execution_id);
  p->client = o->client;
  p->claim = o->claim;
  p->abort = o->abort;
  p->revoked = o->revoked;
  p->renew_wait_ms =
      o->renew_wait_ms > 0 ? o->renew_wait_ms : CR_REMOTE_PORT_RENEW_WAIT_MS;
  p->base_ms = o->retry_base_ms;
  p->max_ms = o->retry_max_ms;
  p->log = o->log;
  p->log_ud = o->log_ud;
  p->next_seq = 1;
  p->lease_end_ms = o->claim->received_ms + o->claim->lease_ms;
  p->ops = (struct cr_exec_port){
      .ud = p,
      .load = op_load,
      .executing = op_executing,
      .renew = op_renew,
      .checkpoint = op_checkpoint,
      .credentials = op_credentials,
      .metrics = op_metrics,
      .log = op_log,
      .completed = op_completed,
      .failed = op_failed,
      .retry = op_retry,
  };
  *out = p;
  return 0;
}

const struct cr_exec_port *cr_remote_port_ops(cr_remote_port *p) {
  return p ? &p->ops : NULL;
}

int64_t cr_remote_port_next_seq(const cr_remote_port *p) {
  return p ? p->next_seq : 0;
}

size_t cr_remote_port_pending(const cr_remote_port *p) {
  return p ? json_array_size(p->pending) : 0;
}

int cr_remote_port_lost(const cr_remote_port *p) { return p ? p->lost : 0; }

int cr_remote_port_flush(cr_remote_port *p) {
  return p ? send_pending(p, 1, NULL) : CR_EINVAL;
}

void cr_remote_port_free(cr_remote_port *p) {
  if (p == NULL)
    return;
  if (p->credentials != NULL)
    cr__secret_wipe_free(p->credentials, strlen(p->credentials));
  json_decref(p->pending);
  cr__free(p->path);
  cr__free(p);
}
