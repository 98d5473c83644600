/* api_events.c: /v1/events (the CLI's filters, paged by event id) and
 * /v1/events/stream (Server-Sent Events, resumable with Last-Event-ID).
 *
 * A stream never holds a server thread while it waits: when it has nothing
 * to send, its content reader suspends the connection and puts the stream
 * on a waiting list; a watcher thread resumes every waiting stream when a
 * new event is stored (it looks every 250 ms, or at once when
 * cr_api_events_notify is called) and every 15 s for a keep-alive comment,
 * which is also how a stream whose client left is found and closed. */
#include "api/api_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control.h"
#include "events/vocab.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#define WATCH_MS 250
#define KEEPALIVE_MS 15000
#define STREAM_BATCH 200

struct filter {
  char *subject_type, *subject_id;
  char *verbs[CR_EVENT_FILTER_MAX_VERBS];
  size_t nverbs;
  int64_t since;
};

struct cr__sse {
  cr_api *api;
  struct MHD_Connection *conn;
  struct filter f;
  int64_t after;
  char *buf; /* text not sent yet */
  size_t len, off;
  int closed, waiting;
  int64_t last_send_ms;
  struct cr__sse *next; /* on the waiting list */
};

/* ---- Filters from the query ---- */

struct verb_ctx {
  struct filter *f;
  const char *bad;
};

static int add_verbs(struct filter *f, const char *list, const char **bad) {
  const char *p = list;
  while (*p) {
    size_t n = strcspn(p, ",");
    char v[64];
    if (n == 0 || n >= sizeof v) {
      *bad = list;
      return -1;
    }
    memcpy(v, p, n);
    v[n] = '\0';
    if (!cr_vocab_is_verb(v) || f->nverbs == CR_EVENT_FILTER_MAX_VERBS) {
      *bad = list;
      return -1;
    }
    f->verbs[f->nverbs++] = cr__strdup(v);
    p += n + (p[n] == ',');
  }
  return 0;
}

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value) {
  (void)kind;
  struct verb_ctx *vc = cls;
  if (strcmp(key, "verb") == 0 && value != NULL && vc->bad == NULL)
    add_verbs(vc->f, value, &vc->bad);
  return MHD_YES;
}

static void filter_clear(struct filter *f) {
  cr__free(f->subject_type);
  cr__free(f->subject_id);
  for (size_t i = 0; i < f->nverbs; i++)
    cr__free(f->verbs[i]);
  memset(f, 0, sizeof *f);
}

/* "24h", "90m", "7d" (a duration back from now), or an RFC 3339 time. */
static int parse_since(struct cr__api_req *r, struct cr__api_res *res,
                       int64_t *out) {
  const char *v = cr__api_query(r, "since");
  *out = 0;
  if (v == NULL)
    return 0;
  char *end = NULL;
  long long n = strtoll(v, &end, 10);
  int64_t unit = !strcmp(end, "s")   ? 1000
                 : !strcmp(end, "m") ? 60000
                 : !strcmp(end, "h") ? 3600000
                 : !strcmp(end, "d") ? 86400000
                                     : 0;
  if (end != v && unit > 0 && n >= 0) {
    *out = cr__now_ms() - n * unit;
    return 0;
  }
  return cr__api_query_time(r, res, "since", 0, out);
}

static int read_filter(struct cr__api_req *r, struct cr__api_res *res,
                       struct filter *f) {
  memset(f, 0, sizeof *f);
  const char *st = cr__api_query(r, "subject_type");
  if (st != NULL && !cr_vocab_is_subject_type(st)) {
    const char *s = cr_vocab_suggest_subject_type(st);
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "unknown subject_type '%s'%s%s%s", st,
                  s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    return -1;
  }
  struct verb_ctx vc = {.f = f};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, each_arg, &vc);
  if (vc.bad != NULL) {
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "unknown verb in '%s' (verbs: created, updated, deleted, "
                  "started, syncing, synced, synccomplete, completed, failed, "
                  "healthy, unhealthy, unknown, alerted, recovered)",
                  vc.bad);
    filter_clear(f);
    return -1;
  }
  const char *sid = cr__api_query(r, "subject_id");
  f->subject_type = st ? cr__strdup(st) : NULL;
  f->subject_id = sid ? cr__strdup(sid) : NULL;
  if (parse_since(r, res, &f->since) != 0) {
    filter_clear(f);
    return -1;
  }
  return 0;
}

static int query(cr_store *s, const struct filter *f, int64_t after,
                 size_t limit, struct cr_event_rec **out, size_t *n) {
  struct cr_event_filter q = {.subject_type = f->subject_type,
                              .subject_id = f->subject_id,
                              .verbs = (const char *const *)f->verbs,
                              .nverbs = f->nverbs,
                              .since_ms = f->since,
                              .after_id = after,
                              .limit = limit};
  return cr_store_event_query(s, &q, out, n);
}

void cr__api_event_list(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t limit, after;
  if (cr__api_query_int(r, res, "limit", 1, 1000, 100, &limit) ||
      cr__api_query_int(r, res, "after", 0, INT64_MAX, 0, &after))
    return;
  struct filter f;
  if (read_filter(r, res, &f) != 0)
    return;
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  int rc = query(r->store, &f, after, (size_t)limit + 1, &ev, &n);
  filter_clear(&f);
  if (rc != 0) {
    cr__api_error_rc(res, rc, "events");
    return;
  }
  json_t *items = json_array();
  size_t shown = n > (size_t)limit ? (size_t)limit : n;
  for (size_t i = 0; i < shown; i++)
    json_array_append_new(items, cr_ctl_event_json(&ev[i]));
  char cursor[24];
  if (n > shown)
    snprintf(cursor, sizeof cursor, "%" PRId64, ev[shown - 1].id);
  cr_event_rec_free_list(ev, n);
  json_t *body = json_pack("{s:o}", "items", items);
  cr__api_page(r, body, n > shown ? cursor : NULL);
  cr__api_json(res, 200, body);
}

/* ---- Streams ---- */

static int append(struct cr__sse *s, const char *text, size_t n) {
  char *grown = cr__realloc(s->buf, s->len + n);
  if (grown == NULL)
    return CR_ENOMEM;
  memcpy(grown + s->len, text, n);
  s->buf = grown;
  s->len += n;
  return 0;
}

/* Renders the next events of the stream into its buffer. */
static int fill(struct cr__sse *s) {
  cr_store *st = cr__api_store_get(s->api);
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  int rc = query(st, &s->f, s->after, STREAM_BATCH, &ev, &n);
  cr__api_store_put(s->api, st);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    json_t *j = cr_ctl_event_json(&ev[i]);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(j);
    char head[160];
    int hn =
        snprintf(head, sizeof head,
                 "id: %" PRId64 "\nevent: %s\ndata: ", ev[i].id, ev[i].verb);
    rc = text ? append(s, head, (size_t)hn) : CR_ENOMEM;
    if (rc == 0)
      rc = append(s, text, strlen(text));
    if (rc == 0)
      rc = append(s, "\n\n", 2);
    free(text);
    s->after = ev[i].id;
  }
  cr_event_rec_free_list(ev, n);
  return rc;
}

static ssize_t copy_out(struct cr__sse *s, char *out, size_t max) {
  size_t n = s->len - s->off < max ? s->len - s->off : max;
  memcpy(out, s->buf + s->off, n);
  s->off += n;
  if (s->off == s->len)
    s->off = s->len = 0;
  s->last_send_ms = cr__now_ms();
  return (ssize_t)n;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max) {
  (void)pos;
  struct cr__sse *s = cls;
  cr_api *a = s->api;
  if (s->closed)
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (s->len > s->off)
    return copy_out(s, out, max);
  if (fill(s) != 0)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  if (s->len == 0 && cr__now_ms() - s->last_send_ms >= KEEPALIVE_MS)
    append(s, ": keep-alive\n\n", 14);
  if (s->len > s->off)
    return copy_out(s, out, max);
  uv_mutex_lock(&a->sse_mu);
  if (a->sse_quit) {
    uv_mutex_unlock(&a->sse_mu);
    return MHD_CONTENT_READER_END_OF_STREAM;
  }
  s->waiting = 1;
  s->next = a->sse_waiting;
  a->sse_waiting = s;
  MHD_suspend_connection(s->conn);
  uv_mutex_unlock(&a->sse_mu);
  return 0;
}

static void sse_free(void *cls) {
  struct cr__sse *s = cls;
  cr_api *a = s->api;
  uv_mutex_lock(&a->sse_mu);
  for (struct cr__sse **p = &a->sse_waiting; *p; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
  uv_mutex_unlock(&a->sse_mu);
  filter_clear(&s->f);
  cr__free(s->buf);
  cr__free(s);
}

void cr__api_event_stream(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t after;
  if (cr__api_query_int(r, res, "after", 0, INT64_MAX, -1, &after))
    return;
  const char *last =
      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
  if (last != NULL)
    after = strtoll(last, NULL, 10);
  struct cr__sse *s = cr__calloc(1, sizeof *s);
  if (s == NULL || read_filter(r, res, &s->f) != 0) {
    if (s == NULL)
      cr__api_error_rc(res, CR_ENOMEM, "stream");
    cr__free(s);
    return;
  }
  s->api = r->api;
  s->conn = r->conn;
  s->last_send_ms = cr__now_ms();
  /* Without a position the stream starts at the newest event. */
  if (after < 0) {
    int64_t newest = 0;
    cr_store_event_last_id(r->store, &newest);
    after = newest;
  }
  s->after = after;
  append(s, ": connrun event stream\n\n", 24);
  res->raw = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read,
                                               s, sse_free);
  if (res->raw == NULL) {
    sse_free(s);
    cr__api_error_rc(res, CR_ENOMEM, "stream");
    return;
  }
  MHD_add_response_header(res->raw, "Content-Type", "text/event-stream");
  MHD_add_response_header(res->raw, "Cache-Control", "no-store");
  MHD_add_response_header(res->raw, "X-Accel-Buffering", "no");
  res->status = 200;
}

/* ---- The watcher ---- */

static void resume_all(cr_api *a, int closing) {
  uv_mutex_lock(&a->sse_mu);
  struct cr__sse *s = a->sse_waiting;
  a->sse_waiting = NULL;
  while (s != NULL) {
    struct cr__sse *next = s->next;
    s->waiting = 0;
    s->next = NULL;
    if (closing)
      s->closed = 1;
    MHD_resume_connection(s->conn);
    s = next;
  }
  uv_mutex_unlock(&a->sse_mu);
}

static void watch(void *arg) {
  cr_api *a = arg;
  int64_t seen = 0, last_ping = cr__now_ms();
  cr_store *st = cr__api_store_get(a);
  cr_store_event_last_id(st, &seen);
  cr__api_store_put(a, st);
  uv_mutex_lock(&a->sse_mu);
  while (!a->sse_quit) {
    uv_cond_timedwait(&a->sse_cv, &a->sse_mu, (uint64_t)WATCH_MS * 1000000);
    cr__api_store_sweep(a); /* no idle connection keeps a snapshot */
    if (a->sse_quit || a->sse_waiting == NULL)
      continue;
    uv_mutex_unlock(&a->sse_mu);
    int64_t newest = seen;
    st = cr__api_store_get(a);
    cr_store_event_last_id(st, &newest);
    cr__api_store_put(a, st);
    int64_t now = cr__now_ms();
    if (newest != seen || now - last_ping >= KEEPALIVE_MS) {
      seen = newest;
      last_ping = now;
      resume_all(a, 0);
    }
    uv_mutex_lock(&a->sse_mu);
  }
  uv_mutex_unlock(&a->sse_mu);
}

int cr__api_sse_start(cr_api *a) {
  int rc =
      cr__api_thread_start(&a->sse_mu, &a->sse_cv, &a->sse_thread, watch, a);
  if (rc != 0)
    return rc;
  a->sse_started = 1;
  return 0;
}

void cr__api_sse_stop(cr_api *a) {
  if (!a->sse_started)
    return;
  uv_mutex_lock(&a->sse_mu);
  a->sse_quit = 1;
  uv_cond_signal(&a->sse_cv);
  uv_mutex_unlock(&a->sse_mu);
  uv_thread_join(&a->sse_thread);
  resume_all(a, 1);
}

void cr__api_sse_end(cr_api *a) {
  if (!a->sse_started)
    return;
  uv_cond_destroy(&a->sse_cv);
  uv_mutex_destroy(&a->sse_mu);
  a->sse_started = 0;
}

void cr_api_events_notify(cr_api *a) {
  if (a == NULL || !a->sse_started)
    return;
  uv_mutex_lock(&a->sse_mu);
  if (a->sse_waiting != NULL)
    uv_cond_signal(&a->sse_cv);
  uv_mutex_unlock(&a->sse_mu);
}
