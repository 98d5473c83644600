/* store.c: the store interface: opening (data directory, URL), argument
 * checks, dispatch through the backend's function table, last-error text,
 * and the record free functions (see store.h and store_int.h). */
#include "store/store.h"

#include "events/sub_filter.h"
#include "exec/execution.h"
#include "store/claim_signal.h"
#include "store/sql/sql.h"
#include "store/store_int.h"
#include "store/store_sql.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ---- Messages ------------------------------------------------------------ */

void cr__store_set_error(cr_store *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->last_error, sizeof s->last_error, fmt, ap);
  va_end(ap);
}

void cr__store_errbuf(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

const char *cr_store_last_error(cr_store *s) {
  return s == NULL ? "" : s->last_error;
}

/* ---- Opening ------------------------------------------------------------- */

/* mkdir -p path with mode 0700 for every directory it creates. */
static int make_dirs(const char *path, char *errbuf, size_t errlen) {
  char *p = cr__strdup(path);
  if (p == NULL)
    return CR_ENOMEM;
  int rc = 0;
  for (char *c = p + 1;; c++) {
    if (*c != '/' && *c != '\0')
      continue;
    char saved = *c;
    *c = '\0';
    struct stat st;
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
      cr__store_errbuf(errbuf, errlen, "cannot create %s: %s", p,
                       strerror(errno));
      rc = CR_EIO;
    } else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
      cr__store_errbuf(errbuf, errlen, "%s is not a directory", p);
      rc = CR_EIO;
    }
    *c = saved;
    if (rc != 0 || saved == '\0')
      break;
  }
  cr__free(p);
  return rc;
}

static int has_scheme(const char *url, const char *scheme) {
  size_t n = strlen(scheme);
  return strncmp(url, scheme, n) == 0 && url[n] == ':';
}

int cr_store_is_url(const char *where) {
  return where != NULL &&
         (has_scheme(where, "postgres") || has_scheme(where, "postgresql") ||
          has_scheme(where, "sqlite"));
}

int cr_store_open(const char *data_dir, cr_store **out, char *errbuf,
                  size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (data_dir == NULL || *data_dir == '\0' || out == NULL) {
    cr__store_errbuf(errbuf, errlen, "no data directory given");
    return CR_EINVAL;
  }
  if (cr_store_is_url(data_dir))
    return cr_store_open_url(data_dir, out, errbuf, errlen);
  int rc = make_dirs(data_dir, errbuf, errlen);
  if (rc != 0)
    return rc;
  size_t len = strlen(data_dir) + sizeof "/" CR_STORE_DB_NAME;
  char *path = cr__malloc(len);
  if (path == NULL) {
    cr__store_errbuf(errbuf, errlen, "out of memory");
    return CR_ENOMEM;
  }
  snprintf(path, len, "%s/%s", data_dir, CR_STORE_DB_NAME);
  rc = cr__store_sqlite_open(path, out, errbuf, errlen);
  cr__free(path);
  return rc;
}

int cr_store_open_url(const char *url, cr_store **out, char *errbuf,
                      size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (url == NULL || out == NULL) {
    cr__store_errbuf(errbuf, errlen, "no store URL given");
    return CR_EINVAL;
  }
  if (has_scheme(url, "postgres") || has_scheme(url, "postgresql"))
    return cr__store_pg_open(url, out, errbuf, errlen);
  if (!has_scheme(url, "sqlite")) {
    cr__store_errbuf(
        errbuf, errlen,
        "unknown store URL '%s' (expected sqlite:/path/to/file.db)", url);
    return CR_EINVAL;
  }
  const char *path = url + strlen("sqlite:");
  if (strncmp(path, "//", 2) == 0)
    path += 2;
  if (*path == '\0') {
    cr__store_errbuf(errbuf, errlen, "store URL '%s' has no path", url);
    return CR_EINVAL;
  }
  return cr__store_sqlite_open(path, out, errbuf, errlen);
}

void cr_store_close(cr_store *s) {
  if (s != NULL)
    s->ops->close(s);
}

/* ---- Dispatch -------------------------------------------------------------
 * CALL(s, op, args...): checks s, clears the last error and calls the op
 * (CR_ENOTSUP when the backend lacks it). */

static int ready(cr_store *s) {
  if (s == NULL)
    return 0;
  s->last_error[0] = '\0';
  return 1;
}

#define CALL(s, op, ...)                                                       \
  (s->ops->op == NULL ? CR_ENOTSUP : s->ops->op(s, __VA_ARGS__))

static int invalid(cr_store *s, const char *what) {
  cr__store_set_error(s, "%s", what);
  return CR_EINVAL;
}

static int bad_str(const char *v) { return v == NULL || *v == '\0'; }

static size_t clamp_limit(size_t limit, size_t dflt, size_t max) {
  if (limit == 0)
    return dflt;
  return limit > max ? max : limit;
}

static int64_t or_now(int64_t at) { return at == 0 ? cr__now_ms() : at; }

int cr_store_shared(const cr_store *s) { return s != NULL && s->shared; }

int cr_store_schema_version(cr_store *s, int *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  *out = 0;
  return CALL(s, schema_version, out);
}

/* Claimable executions are announced (claim_signal.h) once the change is
 * committed: at once outside a transaction, else when the outermost one
 * commits. */
/* Other processes learn of news through the backend (store_listen.h):
 * once per transaction. A failure only costs them their wake-up (they also
 * look on their own every few seconds), so it is not the caller's error. */
static void announce(cr_store *s, int news) {
  if (s->ops->notify == NULL || (s->txn_depth > 0 && (s->announced & news)))
    return;
  char saved[CR_STORE_ERRLEN];
  memcpy(saved, s->last_error, sizeof saved);
  if (s->ops->notify(s, news) == 0 && s->txn_depth > 0)
    s->announced |= news;
  memcpy(s->last_error, saved, sizeof saved);
}

static int claimable(cr_store *s, int rc) {
  if (rc != 0)
    return rc;
  announce(s, CR_STORE_NEWS_CLAIMS);
  if (s->txn_depth > 0)
    s->signal_pending = 1;
  else
    cr_claim_signal();
  return rc;
}

int cr_store_begin(cr_store *s) {
  if (!ready(s))
    return CR_EINVAL;
  int rc = s->ops->begin(s);
  if (rc == 0)
    s->txn_depth++;
  return rc;
}

/* The end of a transaction level (committed or not). */
static void txn_end(cr_store *s, int committed) {
  if (s->txn_depth > 0)
    s->txn_depth--;
  if (s->txn_depth == 0) {
    if (committed && s->signal_pending)
      cr_claim_signal();
    s->signal_pending = 0;
    s->announced = 0;
  }
}

int cr_store_begin_rows(cr_store *s) {
  if (!ready(s))
    return CR_EINVAL;
  int rc =
      s->ops->begin_rows != NULL ? s->ops->begin_rows(s) : s->ops->begin(s);
  if (rc == 0)
    s->txn_depth++;
  return rc;
}

int cr_store_commit(cr_store *s) {
  if (!ready(s))
    return CR_EINVAL;
  int rc = s->ops->commit(s);
  txn_end(s, rc == 0);
  return rc;
}

int cr_store_rollback(cr_store *s) {
  if (!ready(s))
    return CR_EINVAL;
  int rc = s->ops->rollback(s);
  if (rc == 0) /* else no transaction was open (the backend's depth) */
    txn_end(s, 0);
  return rc;
}

int cr_store_read_begin(cr_store *s) {
  if (!ready(s))
    return CR_EINVAL;
  return s->ops->read_begin ? s->ops->read_begin(s) : 0;
}

int cr_store_read_end(cr_store *s) {
  if (!ready(s))
    return CR_EINVAL;
  return s->ops->read_end ? s->ops->read_end(s) : 0;
}

int cr_store_read_keep(cr_store *s, int64_t max_age_ms) {
  if (!ready(s))
    return CR_EINVAL;
  if (s->ops->read_keep != NULL)
    return s->ops->read_keep(s, max_age_ms);
  return s->ops->read_end ? s->ops->read_end(s) : 0;
}

int cr_store_end(cr_store *s, int rc) {
  if (rc == 0)
    rc = cr_store_commit(s);
  if (rc != 0)
    cr_store_rollback(s);
  return rc;
}

int cr_store_savepoint(cr_store *s) {
  if (!ready(s))
    return CR_EINVAL;
  return s->ops->savepoint == NULL ? CR_ENOTSUP : s->ops->savepoint(s);
}

int cr_store_savepoint_end(cr_store *s, int rc) {
  if (s == NULL)
    return CR_EINVAL;
  if (rc == 0) /* keep the failed call's message */
    s->last_error[0] = '\0';
  return s->ops->savepoint_end == NULL ? CR_ENOTSUP
                                       : s->ops->savepoint_end(s, rc);
}

/* ---- Authorizations ------------------------------------------------------ */

int cr_store_auth_upsert(cr_store *s, const struct cr_auth_rec *rec,
                         int *changed) {
  if (!ready(s))
    return CR_EINVAL;
  if (changed != NULL)
    *changed = CR_STORE_UNCHANGED;
  if (rec == NULL || bad_str(rec->id) || bad_str(rec->provider) ||
      bad_str(rec->config_hash))
    return invalid(s, "authorization needs an id, a provider and a hash");
  int dummy;
  return CALL(s, auth_upsert, rec, cr__now_ms(),
              changed != NULL ? changed : &dummy);
}

int cr_store_auth_get(cr_store *s, const char *id, struct cr_auth_rec **out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (id == NULL)
    return invalid(s, "no authorization id given");
  return CALL(s, auth_get, id, out);
}

int cr_store_auth_list(cr_store *s, struct cr_auth_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, auth_list, out, n);
}

int cr_store_auth_delete(cr_store *s, const char *id) {
  if (!ready(s))
    return CR_EINVAL;
  if (id == NULL)
    return invalid(s, "no authorization id given");
  return CALL(s, auth_delete, id, cr__now_ms());
}

int cr_store_auth_health_record(cr_store *s, const char *auth_id, int64_t at_ms,
                                int status, const char *reason) {
  if (!ready(s))
    return CR_EINVAL;
  if (auth_id == NULL || at_ms < 0)
    return invalid(s, "health check needs an authorization id and a time");
  if (status < CR_HEALTH_UNKNOWN || status > CR_HEALTH_UNHEALTHY)
    return invalid(s, "unknown health status");
  return CALL(s, auth_health_record, auth_id, or_now(at_ms), status, reason);
}

int cr_store_auth_health_latest(cr_store *s, const char *auth_id,
                                struct cr_health_rec *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  if (auth_id == NULL)
    return invalid(s, "no authorization id given");
  return CALL(s, auth_health_latest, auth_id, out);
}

int cr_store_auth_health_history(cr_store *s, const char *auth_id, size_t limit,
                                 struct cr_health_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  if (auth_id == NULL)
    return invalid(s, "no authorization id given");
  limit = clamp_limit(limit, CR_HEALTH_HISTORY_DEFAULT_LIMIT,
                      CR_HEALTH_HISTORY_MAX_LIMIT);
  return CALL(s, auth_health_history, auth_id, limit, out, n);
}

/* ---- Works --------------------------------------------------------------- */

int cr_store_work_upsert(cr_store *s, const struct cr_work_rec *rec,
                         int *changed) {
  if (!ready(s))
    return CR_EINVAL;
  if (changed != NULL)
    *changed = CR_STORE_UNCHANGED;
  if (rec == NULL || bad_str(rec->id) || bad_str(rec->provider) ||
      bad_str(rec->config_hash))
    return invalid(s, "work needs an id, a provider and a hash");
  if (rec->max_attempts < 1 || rec->next_run_at < 0)
    return invalid(s, "work max_attempts must be >= 1, next_run_at >= 0");
  int dummy;
  return CALL(s, work_upsert, rec, cr__now_ms(),
              changed != NULL ? changed : &dummy);
}

int cr_store_work_get(cr_store *s, const char *id, struct cr_work_rec **out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (id == NULL)
    return invalid(s, "no work id given");
  return CALL(s, work_get, id, out);
}

int cr_store_work_list(cr_store *s, struct cr_work_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, work_list, out, n);
}

int cr_store_work_delete(cr_store *s, const char *id) {
  if (!ready(s))
    return CR_EINVAL;
  if (id == NULL)
    return invalid(s, "no work id given");
  return CALL(s, work_delete, id, cr__now_ms());
}

int cr_store_work_set_next_run(cr_store *s, const char *id, int64_t at_ms) {
  if (!ready(s))
    return CR_EINVAL;
  if (id == NULL || at_ms < 0)
    return invalid(s, "next run needs a work id and a time >= 0");
  return CALL(s, work_set_next_run, id, at_ms);
}

/* ---- Events -------------------------------------------------------------- */

int cr_store_event_append(cr_store *s, const struct cr_event_rec *in,
                          int64_t *id_out) {
  if (!ready(s))
    return CR_EINVAL;
  if (id_out != NULL)
    *id_out = 0;
  if (in == NULL || bad_str(in->subject_type) || bad_str(in->subject_id) ||
      bad_str(in->verb) || in->at < 0)
    return invalid(s, "event needs a subject type, a subject id and a verb");
  int64_t dummy;
  int rc = CALL(s, event_append, in, or_now(in->at),
                id_out != NULL ? id_out : &dummy);
  if (rc == 0)
    announce(s, CR_STORE_NEWS_EVENTS);
  return rc;
}

int cr_store_event_query(cr_store *s, const struct cr_event_filter *f,
                         struct cr_event_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  struct cr_event_filter q = {0};
  if (f != NULL)
    q = *f;
  if (q.nverbs > CR_EVENT_FILTER_MAX_VERBS)
    return invalid(s, "too many verbs in an event filter");
  if (q.nverbs > 0 && q.verbs == NULL)
    return invalid(s, "event filter verbs missing");
  for (size_t i = 0; i < q.nverbs; i++)
    if (q.verbs[i] == NULL)
      return invalid(s, "event filter verb is NULL");
  if (q.since_ms < 0 || q.after_id < 0)
    return invalid(s, "event filter times and ids must be >= 0");
  q.limit = clamp_limit(q.limit, CR_EVENT_QUERY_DEFAULT_LIMIT,
                        CR_EVENT_QUERY_MAX_LIMIT);
  return CALL(s, event_query, &q, out, n);
}

int cr_store_event_prune(cr_store *s, int64_t before_ms, int64_t *deleted) {
  if (!ready(s))
    return CR_EINVAL;
  int64_t dummy;
  if (deleted == NULL)
    deleted = &dummy;
  *deleted = 0;
  return CALL(s, event_prune, before_ms, deleted);
}

/* ---- Metrics ------------------------------------------------------------- */

int cr_store_metrics_add(cr_store *s, const char *auth_id, int64_t at_ms,
                         int64_t requests, int64_t errors) {
  if (!ready(s))
    return CR_EINVAL;
  if (auth_id == NULL || at_ms < 0 || requests < 0 || errors < 0)
    return invalid(s, "metrics need an authorization id and values >= 0");
  at_ms = or_now(at_ms);
  int64_t bucket = at_ms - at_ms % CR_STORE_HOUR_MS;
  return CALL(s, metrics_add, auth_id, bucket, requests, errors);
}

int cr_store_metrics_query(cr_store *s, const char *auth_id, int granularity,
                           int64_t from_ms, int64_t to_ms,
                           struct cr_metric_point **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  if (granularity < CR_GRAN_HOUR || granularity > CR_GRAN_MONTH)
    return invalid(s, "unknown metrics granularity");
  if (from_ms < 0 || to_ms < 0)
    return invalid(s, "metrics range must be >= 0");
  if (to_ms == 0)
    to_ms = INT64_MAX;
  return CALL(s, metrics_query, auth_id, granularity, from_ms, to_ms, out, n);
}

/* ---- Subscriptions ------------------------------------------------------- */

int cr_store_sub_upsert(cr_store *s, const struct cr_sub_rec *rec,
                        int *changed) {
  if (!ready(s))
    return CR_EINVAL;
  if (changed != NULL)
    *changed = CR_STORE_UNCHANGED;
  if (rec == NULL || bad_str(rec->id) || bad_str(rec->workflow) ||
      bad_str(rec->config_hash))
    return invalid(s, "subscription needs an id, a workflow and a hash");
  if (rec->filter_json != NULL) {
    cr_sub_filter *f = NULL;
    int rc = cr_sub_filter_from_json(rec->filter_json, &f);
    cr_sub_filter_free(f);
    if (rc == CR_ENOMEM)
      return rc;
    if (rc != 0)
      return invalid(s, "subscription filter_json is not a filter");
  }
  int dummy;
  return CALL(s, sub_upsert, rec, cr__now_ms(),
              changed != NULL ? changed : &dummy);
}

int cr_store_sub_get(cr_store *s, const char *id, struct cr_sub_rec **out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (id == NULL)
    return invalid(s, "no subscription id given");
  return CALL(s, sub_get, id, out);
}

int cr_store_sub_list(cr_store *s, struct cr_sub_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, sub_list, out, n);
}

int cr_store_sub_delete(cr_store *s, const char *id) {
  if (!ready(s))
    return CR_EINVAL;
  if (id == NULL)
    return invalid(s, "no subscription id given");
  return CALL(s, sub_delete, id);
}

int cr_store_sub_set_cursor(cr_store *s, const char *id, int64_t cursor,
                            int forward_only) {
  if (!ready(s))
    return CR_EINVAL;
  if (id == NULL)
    return invalid(s, "no subscription id given");
  if (cursor < 0)
    return invalid(s, "a subscription cursor is an event id >= 0");
  return CALL(s, sub_set_cursor, id, cursor, forward_only);
}

int cr_store_sub_disable(cr_store *s, const char *id, const char *reason) {
  if (!ready(s))
    return CR_EINVAL;
  if (id == NULL)
    return invalid(s, "no subscription id given");
  return CALL(s, sub_disable, id, reason, cr__now_ms());
}

int cr_store_sub_stats(cr_store *s, const char *sub_id,
                       struct cr_sub_stats *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  if (sub_id == NULL)
    return invalid(s, "no subscription id given");
  return CALL(s, sub_stats, sub_id, cr__now_ms(), out);
}

/* ---- Webhook outbox ------------------------------------------------------ */

static int outbox_status_ok(const char *st) {
  static const char *const names[] = {"pending", "failed", "delivered", "dead"};
  for (size_t i = 0; st != NULL && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(st, names[i]) == 0)
      return 1;
  return 0;
}

int cr_store_outbox_enqueue(cr_store *s, size_t max_events, size_t *enqueued) {
  if (!ready(s))
    return CR_EINVAL;
  size_t dummy;
  if (enqueued == NULL)
    enqueued = &dummy;
  *enqueued = 0;
  max_events =
      clamp_limit(max_events, CR_OUTBOX_ENQUEUE_DEFAULT, CR_OUTBOX_ENQUEUE_MAX);
  return CALL(s, outbox_enqueue, max_events, cr__now_ms(), enqueued);
}

int cr_store_outbox_due(cr_store *s, int64_t now, size_t limit,
                        struct cr_outbox_rec **out, size_t *n) {
  return cr_store_outbox_due_after(s, now, NULL, 0, limit, out, n);
}

int cr_store_outbox_due_after(cr_store *s, int64_t now,
                              const struct cr_outbox_pos *pos, size_t n_pos,
                              size_t limit, struct cr_outbox_rec **out,
                              size_t *n) {
  if (!ready(s) || out == NULL || n == NULL || (pos == NULL && n_pos > 0))
    return CR_EINVAL;
  for (size_t i = 0; i < n_pos; i++)
    if (pos[i].sub_id == NULL)
      return CR_EINVAL;
  *out = NULL;
  *n = 0;
  if (now < 0)
    return invalid(s, "due time must be >= 0");
  limit =
      clamp_limit(limit, CR_OUTBOX_DUE_DEFAULT_LIMIT, CR_OUTBOX_DUE_MAX_LIMIT);
  return CALL(s, outbox_due, or_now(now), n_pos > 0 ? pos : NULL, n_pos, limit,
              out, n);
}

int cr_store_outbox_next_due(cr_store *s, int64_t *at) {
  if (!ready(s) || at == NULL)
    return CR_EINVAL;
  *at = 0;
  return CALL(s, outbox_next_due, at);
}

int cr_store_outbox_record(cr_store *s, const char *sub_id, int64_t event_id,
                           const char *status, int http_status,
                           int64_t latency_ms, const char *error,
                           int64_t next_attempt_at) {
  if (!ready(s))
    return CR_EINVAL;
  if (bad_str(sub_id) || !outbox_status_ok(status))
    return invalid(s, "attempt needs a subscription id and a status "
                      "(pending, failed, delivered or dead)");
  if (http_status < 0 || latency_ms < 0 || next_attempt_at < 0)
    return invalid(s, "attempt status, latency and time must be >= 0");
  int64_t now = cr__now_ms();
  if (next_attempt_at == 0)
    next_attempt_at = now;
  return CALL(s, outbox_record, sub_id, event_id, status, http_status,
              latency_ms, error, next_attempt_at, now);
}

int cr_store_outbox_record_many(cr_store *s, const struct cr_outbox_attempt *a,
                                size_t n, size_t *recorded) {
  size_t dummy;
  if (recorded == NULL)
    recorded = &dummy;
  *recorded = 0;
  if (!ready(s) || (a == NULL && n > 0))
    return CR_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (bad_str(a[i].sub_id) || !outbox_status_ok(a[i].status))
      return invalid(s, "each attempt needs a subscription id and a status "
                        "(pending, failed, delivered or dead)");
    if (a[i].http_status < 0 || a[i].latency_ms < 0 || a[i].next_attempt_at < 0)
      return invalid(s, "attempt status, latency and time must be >= 0");
  }
  return n == 0 ? 0 : CALL(s, outbox_record_many, a, n, cr__now_ms(), recorded);
}

int cr_store_outbox_replay(cr_store *s, const char *sub_id, int64_t since_ms,
                           size_t *n) {
  if (!ready(s))
    return CR_EINVAL;
  size_t dummy;
  if (n == NULL)
    n = &dummy;
  *n = 0;
  if (bad_str(sub_id) || since_ms < 0)
    return invalid(s, "replay needs a subscription id and a time >= 0");
  return CALL(s, outbox_replay, sub_id, since_ms, cr__now_ms(), n);
}

/* ---- Executions ---------------------------------------------------------- */

int cr_store_exec_create(cr_store *s, const char *work_id, int64_t *id_out) {
  if (!ready(s))
    return CR_EINVAL;
  int64_t dummy;
  if (id_out == NULL)
    id_out = &dummy;
  *id_out = 0;
  if (bad_str(work_id))
    return invalid(s, "execution needs a work id");
  return claimable(s, CALL(s, exec_create, work_id, cr__now_ms(), id_out));
}

int cr_store_exec_get(cr_store *s, int64_t id, struct cr_exec_rec *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  return CALL(s, exec_get, id, out);
}

/* A claim's providers: 1..CR_EXEC_CLAIM_MAX_PROVIDERS names. */
static int check_providers(cr_store *s, const char *const *providers,
                           size_t nproviders) {
  if (providers == NULL || nproviders == 0 ||
      nproviders > CR_EXEC_CLAIM_MAX_PROVIDERS)
    return invalid(s, "claim needs 1 to CR_EXEC_CLAIM_MAX_PROVIDERS providers");
  for (size_t i = 0; i < nproviders; i++)
    if (bad_str(providers[i]))
      return invalid(s, "claim provider is empty");
  return 0;
}

int cr_store_exec_claim(cr_store *s, const char *runner_id,
                        const char *const *providers, size_t nproviders,
                        size_t slots, int64_t lease_ms,
                        struct cr_exec_claim **out, size_t *n) {
  return cr_store_exec_claim_routed(s, runner_id, providers, nproviders, NULL,
                                    NULL, slots, lease_ms, out, n);
}

int cr_store_exec_claim_routed(cr_store *s, const char *runner_id,
                               const char *const *providers, size_t nproviders,
                               const char *labels_json,
                               const char *exclude_json, size_t slots,
                               int64_t lease_ms, struct cr_exec_claim **out,
                               size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  if (bad_str(runner_id) || lease_ms <= 0)
    return invalid(s, "claim needs a runner id and a lease > 0");
  int rc = check_providers(s, providers, nproviders);
  if (rc != 0)
    return rc;
  if (slots == 0)
    return 0;
  return CALL(s, exec_claim, runner_id, providers, nproviders, labels_json,
              exclude_json, slots, cr__now_ms(), lease_ms, out, n);
}

int cr_store_exec_claimable(cr_store *s, const char *const *providers,
                            size_t nproviders, const char *labels_json,
                            const char *exclude_json, int *any) {
  if (!ready(s) || any == NULL)
    return CR_EINVAL;
  *any = 0;
  int rc = check_providers(s, providers, nproviders);
  if (rc != 0)
    return rc;
  return CALL(s, exec_claimable, providers, nproviders, labels_json,
              exclude_json, cr__now_ms(), any);
}

int cr_store_exec_claim_one(cr_store *s, int64_t id, const char *runner_id,
                            int64_t lease_ms, struct cr_exec_claim *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  if (bad_str(runner_id) || lease_ms <= 0)
    return invalid(s, "claim needs a runner id and a lease > 0");
  return CALL(s, exec_claim_one, id, runner_id, cr__now_ms(), lease_ms, out);
}

int cr_store_exec_transition(cr_store *s, int64_t id, int64_t epoch,
                             const char *to_state, const char *reason,
                             const char *error_class, const char *error) {
  if (!ready(s))
    return CR_EINVAL;
  int to = cr_exec_state_from_name(to_state);
  if (to < 0)
    return invalid(s, "unknown execution state");
  if (error_class != NULL && cr_exec_class_from_name(error_class) < 0)
    return invalid(s, "unknown execution failure class");
  if (epoch < 0 && !(epoch == CR_EXEC_EPOCH_ANY && to == CR_EXEC_CANCELLED))
    return invalid(s, "epoch must be >= 0 (any epoch: cancel only)");
  if (to == CR_EXEC_CREATED || to == CR_EXEC_PENDING) {
    cr__store_set_error(s, "an execution becomes %s only by claim or expiry",
                        to_state);
    return CR_ESTATE;
  }
  int rc = CALL(s, exec_transition, id, epoch, to_state, reason, error_class,
                error, cr__now_ms());
  /* an ended execution frees its work for the next one */
  return cr_exec_state_final(to) ? claimable(s, rc) : rc;
}

int cr_store_exec_renew(cr_store *s, int64_t id, int64_t epoch,
                        int64_t lease_ms) {
  if (!ready(s))
    return CR_EINVAL;
  if (epoch < 0 || lease_ms <= 0)
    return invalid(s, "renew needs an epoch >= 0 and a lease > 0");
  return CALL(s, exec_renew, id, epoch, cr__now_ms(), lease_ms);
}

int cr_store_exec_expire(cr_store *s, int64_t now, size_t *n_expired) {
  if (!ready(s))
    return CR_EINVAL;
  size_t dummy;
  if (n_expired == NULL)
    n_expired = &dummy;
  *n_expired = 0;
  if (now < 0)
    return invalid(s, "expiry time must be >= 0");
  int rc = CALL(s, exec_expire, or_now(now), n_expired);
  return *n_expired > 0 ? claimable(s, rc) : rc;
}

int cr_store_exec_list(cr_store *s, const char *work_id, size_t limit,
                       struct cr_exec_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  limit =
      clamp_limit(limit, CR_EXEC_LIST_DEFAULT_LIMIT, CR_EXEC_LIST_MAX_LIMIT);
  return CALL(s, exec_list, work_id, limit, out, n);
}

int cr_store_exec_transitions(cr_store *s, int64_t id,
                              struct cr_exec_transition_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, exec_transitions, id, out, n);
}

int cr_store_exec_retry(cr_store *s, int64_t id, int64_t epoch,
                        int64_t not_before_ms, const char *reason,
                        const char *error_class, const char *error) {
  if (!ready(s))
    return CR_EINVAL;
  if (error_class != NULL && cr_exec_class_from_name(error_class) < 0)
    return invalid(s, "unknown execution failure class");
  if (epoch < 0 || not_before_ms < 0)
    return invalid(s, "retry needs an epoch >= 0 and a time >= 0");
  int rc = CALL(s, exec_retry, id, epoch, not_before_ms, reason, error_class,
                error, cr__now_ms());
  return not_before_ms == 0 ? claimable(s, rc) : rc;
}

int cr_store_exec_release_runner(cr_store *s, const char *runner_id,
                                 const char *reason, size_t *n) {
  if (!ready(s))
    return CR_EINVAL;
  size_t dummy;
  if (n == NULL)
    n = &dummy;
  *n = 0;
  if (bad_str(runner_id))
    return invalid(s, "release needs a runner id");
  int rc = CALL(s, exec_release_runner, runner_id, reason, cr__now_ms(), n);
  return *n > 0 ? claimable(s, rc) : rc;
}

int cr_store_exec_work_open(cr_store *s, const char *work_id, int *open) {
  if (!ready(s) || open == NULL)
    return CR_EINVAL;
  *open = 0;
  if (work_id == NULL)
    return invalid(s, "no work id given");
  return CALL(s, exec_work_open, work_id, open);
}

/* ---- Works: runs --------------------------------------------------------- */

int cr_store_work_mark_started(cr_store *s, const char *id, int *first) {
  if (!ready(s))
    return CR_EINVAL;
  int dummy;
  if (first == NULL)
    first = &dummy;
  *first = 0;
  if (id == NULL)
    return invalid(s, "no work id given");
  return CALL(s, work_mark_started, id, cr__now_ms(), first);
}

/* ---- Sync state ---------------------------------------------------------- */

int cr_store_sync_state_commit(cr_store *s, const char *work_id,
                               const char *state_json, int64_t records,
                               int64_t execution_id, const char *note,
                               int64_t *version_out) {
  if (!ready(s))
    return CR_EINVAL;
  int64_t dummy;
  if (version_out == NULL)
    version_out = &dummy;
  *version_out = 0;
  if (bad_str(work_id))
    return invalid(s, "sync state needs a work id");
  if (records < 0 || execution_id < 0)
    return invalid(s, "sync state records and execution id must be >= 0");
  return CALL(s, sync_state_commit, work_id, state_json, records, execution_id,
              note, cr__now_ms(), version_out);
}

int cr_store_sync_state_latest(cr_store *s, const char *work_id,
                               struct cr_sync_state_rec *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  if (work_id == NULL)
    return invalid(s, "no work id given");
  return CALL(s, sync_state_get, work_id, 0, out);
}

int cr_store_sync_state_get(cr_store *s, const char *work_id, int64_t version,
                            struct cr_sync_state_rec *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  if (work_id == NULL)
    return invalid(s, "no work id given");
  if (version < 1) {
    cr__store_set_error(s, "sync state version %lld not found",
                        (long long)version);
    return CR_ENOENT;
  }
  return CALL(s, sync_state_get, work_id, version, out);
}

int cr_store_sync_state_history(cr_store *s, const char *work_id, size_t limit,
                                struct cr_sync_state_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  if (work_id == NULL)
    return invalid(s, "no work id given");
  limit = clamp_limit(limit, CR_SYNC_STATE_HISTORY_DEFAULT_LIMIT,
                      CR_SYNC_STATE_HISTORY_MAX_LIMIT);
  return CALL(s, sync_state_history, work_id, limit, out, n);
}

int cr_store_sync_state_exec_records(cr_store *s, int64_t exec_id,
                                     int64_t *records) {
  if (!ready(s) || records == NULL)
    return CR_EINVAL;
  *records = 0;
  return CALL(s, sync_state_exec_records, exec_id, records);
}

/* ---- Rotated credentials ------------------------------------------------- */

int cr_store_auth_credentials_set(cr_store *s, const char *auth_id,
                                  const char *config_hash,
                                  const char *credentials_json) {
  if (!ready(s))
    return CR_EINVAL;
  if (bad_str(auth_id) || bad_str(config_hash) || credentials_json == NULL)
    return invalid(s, "credentials need an authorization id, a hash and "
                      "a JSON object");
  return CALL(s, auth_credentials_set, auth_id, config_hash, credentials_json,
              cr__now_ms());
}

int cr_store_auth_credentials_get(cr_store *s, const char *auth_id,
                                  const char *config_hash, char **json_out) {
  if (!ready(s) || json_out == NULL)
    return CR_EINVAL;
  *json_out = NULL;
  if (auth_id == NULL || config_hash == NULL)
    return invalid(s, "credentials need an authorization id and a hash");
  return CALL(s, auth_credentials_get, auth_id, config_hash, json_out);
}

int cr_store_sub_attempts(cr_store *s, const char *sub_id, int64_t before_id,
                          size_t limit, struct cr_delivery_attempt_rec **out,
                          size_t *n) {
  if (!ready(s) || sub_id == NULL || out == NULL || n == NULL || before_id < 0)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  if (limit == 0)
    limit = CR_ATTEMPT_LIST_DEFAULT_LIMIT;
  if (limit > CR_ATTEMPT_LIST_MAX_LIMIT)
    limit = CR_ATTEMPT_LIST_MAX_LIMIT;
  return CALL(s, sub_attempts, sub_id, before_id, limit, out, n);
}

int cr_store_event_last_id(cr_store *s, int64_t *id) {
  if (!ready(s) || id == NULL)
    return CR_EINVAL;
  *id = 0;
  return CALL(s, event_last_id, id);
}

const int64_t cr_store_stat_duration_bounds_ms[CR_STAT_DURATION_BUCKETS] = {
    100, 500, 1000, 5000, 30000, 60000, 300000, 1800000, 3600000, 21600000};

int cr_store_stats(cr_store *s, int which, struct cr_stat_row **out,
                   size_t *n) {
  if (!ready(s) || out == NULL || n == NULL || which < CR_STAT_EXEC_STATES ||
      which > CR_STAT_ATTEMPTS)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, stats, which, out, n);
}

void cr_stat_row_free_list(struct cr_stat_row *r, size_t n) {
  for (size_t i = 0; r != NULL && i < n; i++) {
    cr__free(r[i].label[0]);
    cr__free(r[i].label[1]);
  }
  cr__free(r);
}

static int valid_kind(const char *k) {
  return k != NULL && (!strcmp(k, "authorization") || !strcmp(k, "work") ||
                       !strcmp(k, "subscription"));
}

int cr_store_api_object_put(cr_store *s, const struct cr_api_object_rec *rec) {
  if (!ready(s) || rec == NULL)
    return CR_EINVAL;
  if (!valid_kind(rec->kind) || rec->id == NULL || rec->def_json == NULL)
    return invalid(s, "an API object needs a kind, an id and a definition");
  return CALL(s, api_object_put, rec, cr__now_ms());
}

int cr_store_api_object_list(cr_store *s, struct cr_api_object_rec **out,
                             size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, api_object_list, out, n);
}

int cr_store_api_object_delete(cr_store *s, const char *kind, const char *id) {
  if (!ready(s) || !valid_kind(kind) || id == NULL)
    return CR_EINVAL;
  return CALL(s, api_object_delete, kind, id);
}

int cr_store_api_generation(cr_store *s, int64_t *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  *out = 0;
  return CALL(s, api_generation, out);
}

int cr_store_cursor_get(cr_store *s, const char *name, int64_t *out) {
  if (!ready(s) || name == NULL || out == NULL)
    return CR_EINVAL;
  *out = 0;
  return CALL(s, cursor_get, name, out);
}

int cr_store_cursor_set(cr_store *s, const char *name, int64_t value) {
  if (!ready(s) || name == NULL)
    return CR_EINVAL;
  return CALL(s, cursor_set, name, value);
}

void cr_api_object_rec_free_list(struct cr_api_object_rec *r, size_t n) {
  for (size_t i = 0; r != NULL && i < n; i++) {
    cr__free(r[i].kind);
    cr__free(r[i].id);
    cr__free(r[i].def_json);
    if (r[i].sealed != NULL)
      cr__secret_wipe_free(r[i].sealed, r[i].sealed_len);
    cr__free(r[i].key_id);
    cr__free(r[i].created_by);
  }
  cr__free(r);
}

int cr_store_idem_get(cr_store *s, const char *token, const char *key,
                      struct cr_idem_rec *out) {
  if (!ready(s) || token == NULL || key == NULL || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  return CALL(s, idem_get, token, key, cr__now_ms(), out);
}

int cr_store_idem_put(cr_store *s, const char *token, const char *key,
                      const struct cr_idem_rec *rec) {
  if (!ready(s) || token == NULL || key == NULL || rec == NULL ||
      rec->route == NULL || rec->body_hash == NULL)
    return CR_EINVAL;
  return CALL(s, idem_put, token, key, rec, cr__now_ms());
}

void cr_idem_rec_clear(struct cr_idem_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->route);
  cr__free(r->body_hash);
  cr__free(r->response_json);
  memset(r, 0, sizeof *r);
}

/* ---- Status -------------------------------------------------------------- */

int cr_store_counts(cr_store *s, struct cr_store_counts *out) {
  if (!ready(s) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  return CALL(s, counts, out);
}

/* ---- Freeing records ----------------------------------------------------- */

/* Every record type T has T_clear (frees its strings); these generate
 * T_free (clear + free the struct) and T_free_list (clear n + free array). */
#define CR__REC_FREE(T)                                                        \
  void T##_free(struct T *r) {                                                 \
    T##_clear(r);                                                              \
    cr__free(r);                                                               \
  }
#define CR__REC_FREE_LIST(T)                                                   \
  void T##_free_list(struct T *r, size_t n) {                                  \
    for (size_t i = 0; r != NULL && i < n; i++)                                \
      T##_clear(&r[i]);                                                        \
    cr__free(r);                                                               \
  }

void cr_auth_rec_clear(struct cr_auth_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->id);
  cr__free(r->name);
  cr__free(r->description);
  cr__free(r->provider);
  cr__free(r->method);
  cr__free(r->owner);
  cr__free(r->config_hash);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE(cr_auth_rec)

CR__REC_FREE_LIST(cr_auth_rec)

void cr_work_rec_clear(struct cr_work_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->id);
  cr__free(r->name);
  cr__free(r->provider);
  cr__free(r->authorization_id);
  cr__free(r->schedule_json);
  cr__free(r->destination_json);
  cr__free(r->config_json);
  cr__free(r->config_hash);
  cr__free(r->runner_labels_json);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE(cr_work_rec)

CR__REC_FREE_LIST(cr_work_rec)

void cr_event_rec_clear(struct cr_event_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->subject_type);
  cr__free(r->subject_id);
  cr__free(r->verb);
  cr__free(r->actor);
  cr__free(r->data_json);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE(cr_event_rec)

CR__REC_FREE_LIST(cr_event_rec)

void cr_sub_rec_clear(struct cr_sub_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->id);
  cr__free(r->workflow);
  cr__free(r->config_hash);
  cr__free(r->disabled_reason);
  cr__free(r->filter_json);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE(cr_sub_rec)

CR__REC_FREE_LIST(cr_sub_rec)

void cr_health_rec_clear(struct cr_health_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->reason);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE_LIST(cr_health_rec)

void cr_metric_point_free_list(struct cr_metric_point *p, size_t n) {
  (void)n;
  cr__free(p);
}

void cr_exec_rec_clear(struct cr_exec_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->work_id);
  cr__free(r->state);
  cr__free(r->runner_id);
  cr__free(r->error_class);
  cr__free(r->error);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE_LIST(cr_exec_rec)

void cr_exec_claim_free_list(struct cr_exec_claim *c, size_t n) {
  for (size_t i = 0; c != NULL && i < n; i++)
    cr__free(c[i].work_id);
  cr__free(c);
}

void cr_sync_state_rec_clear(struct cr_sync_state_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->work_id);
  cr__free(r->state_json);
  cr__free(r->note);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE_LIST(cr_sync_state_rec)

void cr_exec_transition_free_list(struct cr_exec_transition_rec *t, size_t n) {
  for (size_t i = 0; t != NULL && i < n; i++) {
    cr__free(t[i].from_state);
    cr__free(t[i].to_state);
    cr__free(t[i].reason);
  }
  cr__free(t);
}

void cr_outbox_rec_clear(struct cr_outbox_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->subscription_id);
  cr__free(r->status);
  cr__free(r->last_error);
  cr_event_rec_clear(&r->event);
  memset(r, 0, sizeof *r);
}

CR__REC_FREE_LIST(cr_outbox_rec)

void cr_sub_stats_clear(struct cr_sub_stats *st) {
  if (st == NULL)
    return;
  cr__free(st->last_error);
  memset(st, 0, sizeof *st);
}

void cr_delivery_attempt_free_list(struct cr_delivery_attempt_rec *a,
                                   size_t n) {
  for (size_t i = 0; a != NULL && i < n; i++)
    cr__free(a[i].error);
  cr__free(a);
}

/* ---- Remote runners, reports, execution logs (store_runners.h) ---------- */

int cr_store_runner_add(cr_store *s, const struct cr_runner_rec *rec) {
  if (!ready(s) || rec == NULL)
    return CR_EINVAL;
  if (bad_str(rec->id) || bad_str(rec->token_hash))
    return invalid(s, "a runner needs an id and a token hash");
  return CALL(s, runner_add, rec, cr__now_ms());
}

int cr_store_runner_get(cr_store *s, const char *id,
                        struct cr_runner_rec *out) {
  if (!ready(s) || out == NULL || bad_str(id))
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  return CALL(s, runner_get, id, 0, out);
}

int cr_store_runner_view(cr_store *s, const char *id,
                         struct cr_runner_rec *out) {
  if (!ready(s) || out == NULL || bad_str(id))
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  return CALL(s, runner_get, id, 1, out);
}

int cr_store_runner_list(cr_store *s, struct cr_runner_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, runner_list, out, n);
}

int cr_store_runner_checkin(cr_store *s, const struct cr_runner_rec *rec,
                            int *was_online) {
  if (!ready(s) || rec == NULL || bad_str(rec->id))
    return CR_EINVAL;
  return CALL(s, runner_checkin, rec, cr__now_ms(), was_online);
}

int cr_store_runner_revoke(cr_store *s, const char *id) {
  if (!ready(s) || bad_str(id))
    return CR_EINVAL;
  return CALL(s, runner_revoke, id, cr__now_ms());
}

int cr_store_runner_claim_note(cr_store *s, const char *id,
                               const char *claim_id, const char *claims_json) {
  if (!ready(s) || bad_str(id))
    return CR_EINVAL;
  return CALL(s, runner_claim_note, id, claim_id, claims_json);
}

int cr_store_runner_mark_offline(cr_store *s, int64_t cutoff, char ***ids,
                                 size_t *n) {
  if (!ready(s) || ids == NULL || n == NULL)
    return CR_EINVAL;
  *ids = NULL;
  *n = 0;
  return CALL(s, runner_mark_offline, cutoff, ids, n);
}

int cr_store_exec_report_get(cr_store *s, int64_t id, int64_t *epoch,
                             int64_t *seq, char **result) {
  if (!ready(s) || epoch == NULL || seq == NULL || result == NULL)
    return CR_EINVAL;
  *epoch = *seq = 0;
  *result = NULL;
  return CALL(s, exec_report_get, id, epoch, seq, result);
}

int cr_store_exec_report_set(cr_store *s, int64_t id, int64_t epoch,
                             int64_t seq, const char *result) {
  if (!ready(s) || epoch < 0 || seq < 0)
    return CR_EINVAL;
  return CALL(s, exec_report_set, id, epoch, seq, result);
}

int cr_store_exec_log_add(cr_store *s, int64_t id, int level,
                          const char *text) {
  if (!ready(s) || text == NULL)
    return CR_EINVAL;
  return CALL(s, exec_log_add, id, cr__now_ms(), level, text);
}

int cr_store_exec_log_list(cr_store *s, int64_t id, size_t limit,
                           struct cr_exec_log_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, exec_log_list, id, clamp_limit(limit, 200, 1000), out, n);
}

int cr_store_exec_retry_due(cr_store *s, int64_t after, int64_t until,
                            int *due) {
  if (!ready(s) || due == NULL)
    return CR_EINVAL;
  *due = 0;
  return until > after ? CALL(s, exec_retry_due, after, until, due) : 0;
}

void cr_runner_rec_clear(struct cr_runner_rec *r) {
  if (r == NULL)
    return;
  char *const f[] = {r->id,          r->name,           r->version,
                     r->labels_json, r->providers_json, r->registration,
                     r->token_hash,  r->last_claim_id,  r->last_claim_json};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    cr__free(f[i]);
  memset(r, 0, sizeof *r);
}

void cr_runner_rec_free_list(struct cr_runner_rec *r, size_t n) {
  for (size_t i = 0; r != NULL && i < n; i++)
    cr_runner_rec_clear(&r[i]);
  cr__free(r);
}

void cr_exec_log_rec_free_list(struct cr_exec_log_rec *r, size_t n) {
  for (size_t i = 0; r != NULL && i < n; i++)
    cr__free(r[i].text);
  cr__free(r);
}

/* ---- Cluster (store_cluster.h) ------------------------------------------- */

int cr_store_instance_beat(cr_store *s, const char *id, const char *info_json,
                           int64_t started_at) {
  if (!ready(s) || bad_str(id) || info_json == NULL)
    return CR_EINVAL;
  return CALL(s, instance_beat, id, info_json, started_at, cr__now_ms());
}

int cr_store_instance_list(cr_store *s, struct cr_instance_rec **out,
                           size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, instance_list, out, n);
}

int cr_store_duty_acquire(cr_store *s, const char *duty, const char *holder,
                          int64_t ttl_ms, int *held, struct cr_duty_rec *prev) {
  if (prev != NULL)
    memset(prev, 0, sizeof *prev);
  if (held != NULL)
    *held = 0;
  if (!ready(s) || bad_str(duty) || bad_str(holder) || held == NULL ||
      ttl_ms <= 0)
    return CR_EINVAL;
  return CALL(s, duty_acquire, duty, holder, ttl_ms, cr__now_ms(), held, prev);
}

int cr_store_duty_release(cr_store *s, const char *duty, const char *holder) {
  if (!ready(s) || bad_str(duty) || bad_str(holder))
    return CR_EINVAL;
  return CALL(s, duty_release, duty, holder, cr__now_ms());
}

int cr_store_duty_list(cr_store *s, struct cr_duty_rec **out, size_t *n) {
  if (!ready(s) || out == NULL || n == NULL)
    return CR_EINVAL;
  *out = NULL;
  *n = 0;
  return CALL(s, duty_list, out, n);
}

void cr_instance_rec_free_list(struct cr_instance_rec *r, size_t n) {
  for (size_t i = 0; r != NULL && i < n; i++) {
    cr__free(r[i].id);
    cr__free(r[i].info_json);
  }
  cr__free(r);
}

void cr_duty_rec_clear(struct cr_duty_rec *r) {
  if (r == NULL)
    return;
  cr__free(r->name);
  cr__free(r->holder);
  memset(r, 0, sizeof *r);
}

void cr_duty_rec_free_list(struct cr_duty_rec *r, size_t n) {
  for (size_t i = 0; r != NULL && i < n; i++)
    cr_duty_rec_clear(&r[i]);
  cr__free(r);
}

/* ---- Batched webhook delivery (store_batches.h) -------------------------- */

int cr_store_batch_get(cr_store *s, const char *sub_id,
                       struct cr_batch_rec *out) {
  if (!ready(s) || bad_str(sub_id) || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  return CALL(s, batch_get, sub_id, out);
}

int cr_store_batch_open(cr_store *s, const char *sub_id, int64_t first,
                        int64_t last, int64_t count) {
  if (!ready(s) || bad_str(sub_id))
    return CR_EINVAL;
  if (first <= 0 || last < first || count <= 0)
    return invalid(s, "a batch needs first <= last and a count");
  return CALL(s, batch_open, sub_id, first, last, count, cr__now_ms());
}

int cr_store_batch_record(cr_store *s, const char *sub_id,
                          const struct cr_batch_result *r) {
  if (!ready(s) || bad_str(sub_id) || r == NULL || r->status == NULL)
    return CR_EINVAL;
  if (strcmp(r->status, "delivered") && strcmp(r->status, "dead") &&
      strcmp(r->status, "failed") && strcmp(r->status, "halved")) {
    cr__store_set_error(s, "unknown batch status '%s'", r->status);
    return CR_EINVAL;
  }
  return CALL(s, batch_record, sub_id, r, cr__now_ms());
}

int cr_store_batch_note_dead(cr_store *s, const char *sub_id, int64_t event_id,
                             const char *error) {
  if (!ready(s) || bad_str(sub_id) || event_id <= 0)
    return CR_EINVAL;
  return CALL(s, batch_note_dead, sub_id, event_id, error, cr__now_ms());
}

void cr_store_conn_counters(struct cr_store_conn_counters *out) {
  cr__sql_pg_counters(out);
}
