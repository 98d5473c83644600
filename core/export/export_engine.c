/* export_engine.c: the continuous table export engine (export_engine.h):
 * its jobs (copies of the table_system_events subscriptions) on a
 * background thread (util/bgthread.h)
 * and one batch of events from the store into a table. */
#include "export/export_engine.h"
#include "events/events.h"
#include "util/alloc.h"
#include "util/bgthread.h"
#include "util/clock.h"
#include "util/error.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

/* A job: what configure copied, and what the thread keeps between passes
 * (the open table, the backoff). */
struct job {
  struct job *next;
  char *id, *to, *table;
  int batch;
  cr_sub_filter *filter;
  /* thread only */
  cr_export_table *t;
  int64_t retry_at, backoff_ms;
  int failing;
};

struct cr_export_engine {
  struct cr__bg bg;             /* the thread and the job set */
  struct cr_export_stats stats; /* under bg's lock */
  /* thread only */
  cr_store *store;
  cr_log_fn log;
  void *log_ud;
  int log_min_level;
};

#define LOGF(e, level, ...)                                                    \
  do {                                                                         \
    if ((level) >= (e)->log_min_level)                                         \
      cr__logf((e)->log, (e)->log_ud, (level), __VA_ARGS__);                   \
  } while (0)

static void job_free(void *list) {
  struct job *j = list;
  while (j != NULL) {
    struct job *next = j->next;
    cr_export_table_close(j->t);
    cr_sub_filter_free(j->filter);
    cr__free(j->id);
    if (j->to != NULL)
      memset(j->to, 0, strlen(j->to)); /* may hold a password */
    cr__free(j->to);
    cr__free(j->table);
    cr__free(j);
    j = next;
  }
}

/* ---- One batch ----------------------------------------------------------- */

/* Keeps the events f matches (all when f is NULL) at the front of ev,
 * freeing the others' strings; returns how many were kept. */
static size_t keep_matching(struct cr_event_rec *ev, size_t n,
                            const cr_sub_filter *f) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (f == NULL || cr_sub_filter_match(f, ev[i].subject_type,
                                         ev[i].subject_id, ev[i].verb)) {
      if (k != i) {
        struct cr_event_rec tmp = ev[k];
        ev[k] = ev[i];
        ev[i] = tmp;
      }
      k++;
    }
  }
  return k;
}

int cr_export_batch(cr_store *s, const struct cr_event_filter *q,
                    const cr_sub_filter *f, int64_t until_ms,
                    cr_export_table *t, int64_t *cursor, size_t *read,
                    size_t *written, char *errbuf, size_t errlen) {
  struct cr_event_filter qq = *q;
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  *read = 0;
  if (written != NULL)
    *written = 0;
  qq.after_id = *cursor;
  int rc = cr_store_event_query(s, &qq, &ev, &n);
  if (rc != 0) {
    snprintf(errbuf, errlen, "reading events: %s", cr_store_last_error(s));
    return rc;
  }
  size_t m = 0;
  while (m < n && (until_ms <= 0 || ev[m].at <= until_ms))
    m++;
  int64_t last = m > 0 ? ev[m - 1].id : *cursor;
  size_t k = keep_matching(ev, m, f);
  rc = cr_export_table_write(t, ev, k, written, errbuf, errlen);
  cr_event_rec_free_list(ev, n);
  if (rc == 0) {
    *cursor = last;
    *read = m;
  }
  return rc;
}

/* ---- The thread ---------------------------------------------------------- */

static void emit_failed(cr_export_engine *e, const struct job *j,
                        const char *why) {
  json_t *data =
      json_pack("{s:s, s:s}", "workflow", "table_system_events", "error", why);
  int rc = data ? cr_store_begin(e->store) : CR_ENOMEM;
  if (rc == 0) {
    rc = cr_event_emit(e->store, "subscription", j->id, "failed",
                       CR_ACTOR_SYSTEM, data, NULL);
    rc =
        rc == 0 ? cr_store_commit(e->store) : (cr_store_rollback(e->store), rc);
  }
  json_decref(data);
  if (rc != 0)
    LOGF(e, CR_LOG_WARN, "export %s: cannot record its failure: %s", j->id,
         cr_strerror(rc));
}

static void job_failed(cr_export_engine *e, struct job *j, int rc,
                       const char *why) {
  int64_t now = cr__now_ms();
  j->backoff_ms = j->failing ? j->backoff_ms * 2 : BACKOFF_MIN_MS;
  if (j->backoff_ms > BACKOFF_MAX_MS)
    j->backoff_ms = BACKOFF_MAX_MS;
  j->retry_at = now + j->backoff_ms;
  cr__bg_lock(&e->bg);
  e->stats.failures++;
  cr__bg_unlock(&e->bg);
  LOGF(e, CR_LOG_WARN, "export %s: %s (%s); retrying in %lld ms", j->id, why,
       cr_strerror(rc), (long long)j->backoff_ms);
  if (!j->failing)
    emit_failed(e, j, why);
  j->failing = 1;
  if (rc != CR_ENOMEM) { /* open again next time: the table may be fixed */
    cr_export_table_close(j->t);
    j->t = NULL;
  }
}

/* One pass of job j: *more when it read a full batch. */
static void job_pass(cr_export_engine *e, struct job *j, int *more) {
  char err[512] = "";
  struct cr_sub_rec *rec = NULL;
  int rc = cr_store_sub_get(e->store, j->id, &rec);
  if (rc != 0 || !rec->enabled) { /* not applied yet, or disabled */
    cr_sub_rec_free(rec);
    return;
  }
  int64_t cursor = rec->cursor_event_id, before = cursor;
  cr_sub_rec_free(rec);
  if (j->t == NULL && (rc = cr_export_table_open(j->to, j->table, &j->t, err,
                                                 sizeof err)) != 0) {
    job_failed(e, j, rc, err);
    return;
  }
  struct cr_event_filter q = {.limit = (size_t)j->batch};
  size_t read = 0, written = 0;
  rc = cr_export_batch(e->store, &q, j->filter, 0, j->t, &cursor, &read,
                       &written, err, sizeof err);
  if (rc == 0 && cursor > before)
    rc = cr_store_sub_set_cursor(e->store, j->id, cursor, 1);
  if (rc != 0) {
    if (err[0] == '\0')
      snprintf(err, sizeof err, "%s", cr_store_last_error(e->store));
    job_failed(e, j, rc, err);
    return;
  }
  if (j->failing)
    LOGF(e, CR_LOG_INFO, "export %s: writing again", j->id);
  j->failing = 0;
  j->retry_at = 0;
  cr__bg_lock(&e->bg);
  e->stats.batches += read > 0;
  e->stats.written += written;
  cr__bg_unlock(&e->bg);
  *more |= read == (size_t)j->batch;
}

/* A new job set: jobs with the same id, destination and table keep their
 * open table and backoff (cr__bg_take_fn). */
static void take_jobs(void *owner, void *old_list, void *new_list) {
  (void)owner;
  for (struct job *n = new_list; n != NULL; n = n->next)
    for (struct job *o = old_list; o != NULL; o = o->next)
      if (o->t != NULL && !strcmp(o->id, n->id) && !strcmp(o->to, n->to) &&
          !strcmp(o->table, n->table)) {
        n->t = o->t;
        n->failing = o->failing;
        n->backoff_ms = o->backoff_ms;
        n->retry_at = o->retry_at;
        o->t = NULL;
      }
}

/* One pass over every job (cr__bg_pass_fn). */
static int pass(void *owner, void *list, int64_t *wait) {
  cr_export_engine *e = owner;
  int more = 0;
  int64_t now = cr__now_ms();
  for (struct job *j = list; j != NULL; j = j->next) {
    if (j->retry_at > now) {
      if (j->retry_at - now < *wait)
        *wait = j->retry_at - now;
      continue;
    }
    job_pass(e, j, &more);
  }
  return more;
}

/* ---- Public -------------------------------------------------------------- */

int cr_export_engine_new(const struct cr_export_opts *o,
                         cr_export_engine **out) {
  char err[512];
  if (out != NULL)
    *out = NULL;
  if (o == NULL || o->data_dir == NULL || out == NULL)
    return CR_EINVAL;
  cr_export_engine *e = cr__calloc(1, sizeof *e);
  if (e == NULL)
    return CR_ENOMEM;
  e->log = o->log;
  e->log_ud = o->log_ud;
  e->log_min_level = o->log_min_level;
  int rc = cr_store_open(o->data_dir, &e->store, err, sizeof err);
  if (rc != 0) {
    LOGF(e, CR_LOG_ERROR, "export: %s", err);
    cr__free(e);
    return rc;
  }
  rc = cr__bg_start(&e->bg, e, pass, job_free, take_jobs, o->poll_ms);
  if (rc != 0) {
    cr_store_close(e->store);
    cr__free(e);
    return rc;
  }
  *out = e;
  return 0;
}

static struct job *job_new(const struct cr_config_subscription *c) {
  struct job *j = cr__calloc(1, sizeof *j);
  if (j == NULL)
    return NULL;
  j->id = cr__strdup(c->id);
  j->to = cr__strdup(c->export_to);
  j->table = cr__strdup(c->export_table);
  j->batch = c->export_batch > 0 ? c->export_batch : 5000;
  if (j->id == NULL || j->to == NULL || j->table == NULL ||
      cr_sub_filter_from_config(c, &j->filter) != 0) {
    job_free(j);
    return NULL;
  }
  return j;
}

int cr_export_engine_configure(cr_export_engine *e, const cr_config *cfg) {
  struct job *head = NULL, **tail = &head;
  for (size_t i = 0; i < cfg->n_subscriptions; i++) {
    const struct cr_config_subscription *c = &cfg->subscriptions[i];
    if (!c->enabled || c->export_to == NULL)
      continue;
    if ((*tail = job_new(c)) == NULL) {
      job_free(head);
      return CR_ENOMEM;
    }
    tail = &(*tail)->next;
  }
  cr__bg_offer(&e->bg, head);
  return 0;
}

void cr_export_engine_kick(cr_export_engine *e) {
  if (e != NULL)
    cr__bg_kick(&e->bg);
}

void cr_export_engine_get_stats(cr_export_engine *e,
                                struct cr_export_stats *out) {
  cr__bg_lock(&e->bg);
  *out = e->stats;
  cr__bg_unlock(&e->bg);
}

void cr_export_engine_free(cr_export_engine *e) {
  if (e == NULL)
    return;
  cr__bg_stop(&e->bg);
  cr_store_close(e->store);
  cr__free(e);
}
