/* batch_send.c: one pass of one batched subscription (batch_int.h): open
 * a batch of the next matching events, send the open batch (render, sign,
 * POST with libcurl), and record what happened (store_batches.h). */
#include "events/batch_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/jsonbuf.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Standard Webhooks' schedule: the first attempt at once, then retries. */
static const int64_t default_schedule[] = {
    0,        5000,     300000,   1800000,  7200000,
    18000000, 36000000, 50400000, 72000000, 86400000};
#define N_DEFAULT (sizeof default_schedule / sizeof default_schedule[0])

#define LOGF(e, level, ...)                                                    \
  do {                                                                         \
    if ((level) >= (e)->log_min_level)                                         \
      cr__logf((e)->log, (e)->log_ud, (level), __VA_ARGS__);                   \
  } while (0)

/* Events matching a job's filter, owned. */
struct evs {
  struct cr_event_rec *v;
  size_t n, cap, bytes; /* bytes: an estimate of the rendered body */
};

static void evs_free(struct evs *x) {
  cr_event_rec_free_list(x->v, x->n);
  memset(x, 0, sizeof *x);
}

static int evs_take(struct evs *x, struct cr_event_rec *r) {
  if (x->n == x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 256;
    struct cr_event_rec *g = cr__realloc(x->v, cap * sizeof *g);
    if (g == NULL)
      return CR_ENOMEM;
    x->v = g;
    x->cap = cap;
  }
  x->v[x->n++] = *r;
  x->bytes += 200 + (r->data_json ? strlen(r->data_json) : 2);
  memset(r, 0, sizeof *r); /* its strings moved */
  return 0;
}

/* Reads events after *cursor (up to last_id when > 0) that j's filter
 * matches into x, until max matched or max_bytes; *cursor becomes the
 * last id read. */
static int collect(cr_store *s, const struct cr__bjob *j, int64_t *cursor,
                   int64_t last_id, size_t max, struct evs *x) {
  struct cr_event_filter q = {.limit = 1000};
  for (;;) {
    struct cr_event_rec *ev = NULL;
    size_t n = 0, i = 0;
    q.after_id = *cursor;
    int rc = cr_store_event_query(s, &q, &ev, &n);
    for (; rc == 0 && i < n; i++) {
      if ((last_id > 0 && ev[i].id > last_id) || x->n >= max ||
          (last_id == 0 && x->bytes >= j->max_bytes))
        break;
      *cursor = ev[i].id;
      if (cr_sub_filter_match(j->filter, ev[i].subject_type, ev[i].subject_id,
                              ev[i].verb))
        rc = evs_take(x, &ev[i]);
    }
    int done = rc != 0 || i < n || n < q.limit;
    cr_event_rec_free_list(ev, n);
    if (done)
      return rc;
  }
}

/* Opens the next batch of j, or sets j->retry_at (a partial batch waits
 * for max_wait). Returns 0 with *opened, or an error. */
static int open_batch(cr_batch_engine *e, struct cr__bjob *j, int *opened) {
  struct cr_sub_rec *sub = NULL;
  struct evs x = {0};
  *opened = 0;
  int rc = cr_store_sub_get(e->store, j->id, &sub);
  if (rc != 0 || !sub->enabled || !sub->batched) { /* not applied yet */
    cr_sub_rec_free(sub);
    j->retry_at = cr__now_ms() + e->poll_ms;
    return rc == CR_ENOENT ? 0 : rc;
  }
  int64_t cursor = sub->cursor_event_id, start = cursor;
  cr_sub_rec_free(sub);
  rc = collect(e->store, j, &cursor, 0, (size_t)j->max_events, &x);
  int64_t now = cr__now_ms();
  if (rc == 0 && x.n == 0 && cursor > start) /* none matched: skip them */
    rc = cr_store_sub_set_cursor(e->store, j->id, cursor, 1);
  else if (rc == 0 && x.n > 0 && x.n < (size_t)j->max_events &&
           x.bytes < j->max_bytes && now - x.v[0].at < j->max_wait_ms)
    j->retry_at = x.v[0].at + j->max_wait_ms; /* a partial batch waits */
  else if (rc == 0 && x.n > 0) {
    rc = cr_store_batch_open(e->store, j->id, x.v[0].id, x.v[x.n - 1].id,
                             (int64_t)x.n);
    *opened = rc == 0;
  }
  evs_free(&x);
  return rc;
}

/* ---- The body ------------------------------------------------------------ */

/* One event's text (its template's, or the event as JSON); a template
 * failure is recorded as that event's death and leaves *text NULL. */
static int render(cr_batch_engine *e, const struct cr__bjob *j,
                  const struct cr_event_rec *ev, char **text) {
  char err[300];
  *text = NULL;
  if (!j->has_tpl)
    return cr_event_tpl_body(ev, j->account_id, text);
  int rc = CR_EINVAL;
  snprintf(err, sizeof err, "json_template: %s", j->tpl_error);
  if (j->tpl != NULL) {
    json_t *binding = cr_event_tpl_binding(ev, j->account_id);
    char why[256] = "";
    rc = binding ? cr_event_tpl_render(j->tpl, binding, text, why, sizeof why)
                 : CR_ENOMEM;
    json_decref(binding);
    if (rc == CR_ENOMEM)
      return rc;
    snprintf(err, sizeof err, "json_template: %s", why);
  }
  if (rc == 0 && j->ndjson && strchr(*text, '\n') != NULL) {
    /* NDJSON: one line per event (Jsonnet writes its output indented). */
    json_t *v = json_loads(*text, JSON_DECODE_ANY, NULL);
    char *line = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    cr__free(*text);
    *text = line ? cr__strdup(line) : NULL;
    free(line);
    return *text ? 0 : CR_ENOMEM;
  }
  if (rc == 0)
    return 0;
  LOGF(e, CR_LOG_WARN, "subscription %s: event %" PRId64 " left out: %s", j->id,
       ev->id, err);
  return cr_store_batch_note_dead(e->store, j->id, ev->id, err);
}

/* The batch's body: a JSON array, or one event per line. */
static int build_body(cr_batch_engine *e, const struct cr__bjob *j,
                      const struct evs *x, struct cr__jsonbuf *b,
                      size_t *parts) {
  int rc = 0;
  *parts = 0;
  if (!j->ndjson)
    cr__jb_raw(b, "[", 1);
  for (size_t i = 0; rc == 0 && i < x->n; i++) {
    char *t = NULL;
    rc = render(e, j, &x->v[i], &t);
    if (rc == 0 && t != NULL) {
      if (*parts > 0 && !j->ndjson)
        cr__jb_raw(b, ",", 1);
      cr__jb_raw(b, t, strlen(t));
      if (j->ndjson)
        cr__jb_raw(b, "\n", 1);
      (*parts)++;
    }
    cr__free(t);
  }
  if (!j->ndjson)
    cr__jb_raw(b, "]", 1);
  return rc != 0 ? rc : b->err;
}

/* ---- The POST ------------------------------------------------------------ */

static size_t discard(char *p, size_t s, size_t n, void *ud) {
  (void)p, (void)ud;
  return s * n;
}

struct outcome {
  long http;
  int64_t latency_ms, retry_after_ms;
  char error[256];
};

static struct curl_slist *add(struct curl_slist *l, const char *line,
                              int *fail) {
  struct curl_slist *n = curl_slist_append(l, line);
  *fail |= n == NULL;
  return n ? n : l;
}

static int post(cr_batch_engine *e, const struct cr__bjob *j,
                const struct cr_batch_rec *b, const struct cr__jsonbuf *body,
                size_t parts, struct outcome *o) {
  char id[96], line[320], sig[256] = "";
  int64_t now_s = cr__now_ms() / 1000;
  int fail = 0;
  snprintf(id, sizeof id, "bat_%" PRId64 "_%" PRId64, b->first_id, b->last_id);
  struct curl_slist *h = NULL;
  h = add(h,
          j->ndjson ? "Content-Type: application/x-ndjson"
                    : "Content-Type: application/json",
          &fail);
  /* No "Expect: 100-continue" (libcurl adds it above 1 MiB): a receiver
   * that does not answer it would cost a second per batch. */
  h = add(h, "Expect:", &fail);
  snprintf(line, sizeof line, "webhook-id: %s", id);
  h = add(h, line, &fail);
  snprintf(line, sizeof line, "webhook-timestamp: %" PRId64, now_s);
  h = add(h, line, &fail);
  if (j->signer != NULL &&
      cr_swh_signer_sign(j->signer, id, now_s, body->p, body->len, sig,
                         sizeof sig) == 0) {
    snprintf(line, sizeof line, "webhook-signature: %s", sig);
    h = add(h, line, &fail);
  }
  snprintf(line, sizeof line, "connrun-batch-first-id: %" PRId64, b->first_id);
  h = add(h, line, &fail);
  snprintf(line, sizeof line, "connrun-batch-last-id: %" PRId64, b->last_id);
  h = add(h, line, &fail);
  snprintf(line, sizeof line, "connrun-batch-count: %zu", parts);
  h = add(h, line, &fail);
  for (const struct curl_slist *s = j->headers; s != NULL; s = s->next)
    h = add(h, s->data, &fail);
  if (fail) {
    curl_slist_free_all(h);
    return CR_ENOMEM;
  }
  CURL *c = e->curl;
  curl_easy_setopt(c, CURLOPT_URL, j->url);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->p);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, j->timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  int64_t t0 = cr__now_ms();
  CURLcode cc = curl_easy_perform(c);
  o->latency_ms = cr__now_ms() - t0;
  o->http = 0;
  o->retry_after_ms = 0;
  if (cc == CURLE_OK) {
    curl_off_t ra = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o->http);
    if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
      o->retry_after_ms = (int64_t)ra * 1000;
    snprintf(o->error, sizeof o->error, "HTTP %ld", o->http);
  } else {
    snprintf(o->error, sizeof o->error, "%s", curl_easy_strerror(cc));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(h);
  return 0;
}

/* ---- Outcomes ------------------------------------------------------------ */

/* What o means for batch b of j (ids: the batch's events), into r. */
static void classify(const struct cr__bjob *j, const struct cr_batch_rec *b,
                     const struct evs *x, const struct outcome *o,
                     struct cr_batch_result *r, char *why, size_t len) {
  const int64_t *sched = j->schedule ? j->schedule : default_schedule;
  size_t n_sched = j->schedule ? j->n_schedule : N_DEFAULT;
  long h = o->http;
  r->http_status = (int)h;
  r->latency_ms = o->latency_ms;
  r->error = h >= 200 && h < 300 ? NULL : why;
  snprintf(why, len, "%s", o->error);
  if (h >= 200 && h < 300) {
    r->status = "delivered";
  } else if (h == 413 && x->n > 1) {
    r->status = "halved";
    r->new_count = (int64_t)x->n / 2;
    r->new_last_id = x->v[x->n / 2 - 1].id;
    snprintf(why, len, "413: batch halved to %" PRId64 " events", r->new_count);
  } else if (h == 0 || h == 408 || h == 429 || h >= 500) {
    size_t next = (size_t)b->attempts + 1; /* schedule[0] was the first */
    if (next >= n_sched) {
      r->status = "dead";
      snprintf(why, len, "%s; retries exhausted", o->error);
    } else {
      int64_t wait = sched[next];
      if (o->retry_after_ms > wait)
        wait = o->retry_after_ms;
      r->status = "failed";
      r->next_attempt_at = cr__now_ms() + wait;
    }
  } else {
    r->status = "dead"; /* 410, 413 of one event, other 4xx */
  }
}

static int record(cr_batch_engine *e, struct cr__bjob *j,
                  const struct cr_batch_result *r, size_t parts) {
  int rc = cr_store_batch_record(e->store, j->id, r);
  cr__bg_lock(&e->bg);
  e->stats.posts++;
  if (!strcmp(r->status, "delivered")) {
    e->stats.batches_delivered++;
    e->stats.events_delivered += parts;
  } else if (!strcmp(r->status, "dead")) {
    e->stats.dead++;
  } else {
    e->stats.retried++;
  }
  cr__bg_unlock(&e->bg);
  if (!strcmp(r->status, "failed"))
    j->retry_at = r->next_attempt_at;
  if (r->http_status == 410 && rc == 0)
    rc = cr_store_sub_disable(e->store, j->id, "410 Gone from the receiver");
  if (strcmp(r->status, "delivered") != 0)
    LOGF(e, CR_LOG_WARN, "subscription %s: batch %s (%s)", j->id, r->status,
         r->error ? r->error : "");
  return rc;
}

/* Sends the open batch b of j and records the outcome. */
static int send_batch(cr_batch_engine *e, struct cr__bjob *j,
                      const struct cr_batch_rec *b) {
  struct evs x = {0};
  struct cr__jsonbuf body = {0};
  struct outcome o;
  struct cr_batch_result r = {0};
  char why[300];
  size_t parts = 0;
  int64_t cursor = b->first_id - 1;
  int rc = collect(e->store, j, &cursor, b->last_id, (size_t)b->count, &x);
  if (rc == 0)
    rc = build_body(e, j, &x, &body, &parts);
  if (rc == 0 && parts == 0) { /* every event left out */
    r.status = "dead";
    r.error = "every event of the batch failed its json_template";
    rc = record(e, j, &r, 0);
  } else if (rc == 0 && (rc = post(e, j, b, &body, parts, &o)) == 0) {
    classify(j, b, &x, &o, &r, why, sizeof why);
    rc = record(e, j, &r, parts);
  }
  cr__jb_clear(&body);
  evs_free(&x);
  return rc;
}

int cr__batch_pass(cr_batch_engine *e, struct cr__bjob *j) {
  struct cr_batch_rec b;
  int opened = 0;
  int rc = cr_store_batch_get(e->store, j->id, &b);
  if (rc == CR_ENOENT) {
    rc = open_batch(e, j, &opened);
    if (rc == 0 && opened)
      rc = cr_store_batch_get(e->store, j->id, &b);
    else if (rc == 0)
      return 0; /* nothing to send yet */
  }
  if (rc == 0 && b.next_attempt_at > cr__now_ms()) {
    j->retry_at = b.next_attempt_at;
    return 0;
  }
  if (rc == 0)
    rc = send_batch(e, j, &b);
  if (rc != 0) {
    LOGF(e, CR_LOG_WARN, "subscription %s: batch delivery: %s (%s)", j->id,
         cr_strerror(rc), cr_store_last_error(e->store));
    j->retry_at = cr__now_ms() + 1000;
    return 0;
  }
  return j->retry_at <= cr__now_ms();
}
