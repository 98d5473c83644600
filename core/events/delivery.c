/* delivery.c: the webhook export engine (see delivery.h), loop side: the
 * subscriptions' run-time state and in-flight windows, rendering, signing,
 * POSTing and classifying. The store work (recording, enqueueing, due rows)
 * runs on the engine's store thread (delivery_worker.h). */
#include "events/delivery.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "events/delivery_worker.h"
#include "events/event_tpl.h"
#include "events/events.h"
#include "events/stdwebhooks.h"
#include "events/sub_filter.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/http_async.h"
#include "util/jsonbuf.h"

#define MAX_WINDOW 256
#define MAX_HEADERS 64
/* Rows read beyond the free request slots: sent as requests complete,
 * before the store thread's next read arrives. They must last a store
 * round (record, enqueue, read), which on PostgreSQL waits for its commits'
 * WAL flushes: 48 left the engine idle between reads there (10,500 events/s
 * on one instance), 400 do not (12,600-13,800/s); 1,000 made each read
 * slower than it saved. */
#define SPARE_ROWS 400

static const int64_t default_schedule[] = {
    0,        5000,     300000,   1800000,  7200000,
    18000000, 36000000, 50400000, 72000000, 86400000};

struct sub_rt {
  /* Owned copies: a removed subscription's requests and results may
   * outlive the configuration it came from. */
  char *id, *url;
  int has_tpl;            /* a json_template was given */
  int64_t *schedule_copy; /* the retry schedule, when not the default */
  cr_event_tpl *tpl;      /* NULL: the event as JSON */
  char tpl_error[256];    /* template that did not compile */
  cr_swh_signer *signer;  /* NULL: unsigned */
  char **headers;
  size_t n_headers;
  const int64_t *schedule;
  size_t n_schedule;
  long timeout_ms;
  int max_in_flight;
  int64_t disable_after_ms;
  int64_t in_flight[MAX_WINDOW]; /* sent or decided, not yet recorded */
  int n_in_flight;
  int requests;       /* of those, HTTP requests not answered yet */
  int refs;           /* requests and results pointing here */
  int64_t blocked_on; /* event id that failed: nothing newer until it ends */
  int removed;        /* gone from the config; freed when idle */
  uv_mutex_t tpl_mu;  /* one render at a time per renderer */
  struct sub_rt *next;
};

struct cr_delivery {
  struct cr_delivery_opts o;
  cr_http_async *http;
  cr__dworker *w;   /* the store thread */
  uv_async_t ready; /* the store thread has a batch */
  uv_async_t flush; /* results to hand over (coalesces completions) */
  uv_timer_t timer; /* housekeeping every poll_ms */
  int closing;
  const char *account_id;
  struct sub_rt *subs;
  struct cr__dw_result *results, **results_tail; /* for the store thread */
  /* Spare due rows from the store thread's reads, sent as capacity frees;
   * a sent one gets event_id 0. Replaced by a full read, appended to by a
   * read after the positions. */
  struct cr_outbox_rec *spare;
  size_t n_spare, spare_left, spare_first; /* first not done */
  int reread; /* rows were let go: the next read is full */
  /* Until that full read arrives, rows of reads after the positions are
   * let go too: sent now, they would pass the rows let go before them. */
  int await_full;
  int dry; /* the last read brought nothing new: do not ask again until
              a kick, a poll or a result (an idle engine must not spin) */
  int total_in_flight;
  struct cr_delivery_stats stats;
};

struct req {
  cr_delivery *d;
  struct sub_rt *rt;
  int64_t event_id;
  int attempts; /* before this one */
  /* Templated bodies render on the thread pool (a Jsonnet evaluation costs
   * tens of milliseconds): */
  uv_work_t work;
  json_t *event; /* the binding, rendered by the pool thread */
  char *body;
  int rc;
  char err[256];
};

static void submit(cr_delivery *d);
static void logf_d(cr_delivery *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_d(cr_delivery *d, int level, const char *fmt, ...) {
  if (d->o.log == NULL || level < d->o.log_min_level)
    return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  d->o.log(d->o.log_ud, level, buf);
}

/* ---- Subscriptions at run time ----------------------------------------- */

static void rt_free(struct sub_rt *rt) {
  cr_event_tpl_free(rt->tpl);
  uv_mutex_destroy(&rt->tpl_mu);
  for (size_t i = 0; i < rt->n_headers; i++)
    cr__secret_wipe_free(rt->headers[i], strlen(rt->headers[i]));
  cr__free(rt->headers);
  cr_swh_signer_free(rt->signer);
  cr__free(rt->id);
  if (rt->url != NULL) /* may embed a token */
    cr__secret_wipe_free(rt->url, strlen(rt->url));
  cr__free(rt->schedule_copy);
  cr__free(rt);
}

static int rt_headers(struct sub_rt *rt, const json_t *headers) {
  size_t n = json_object_size(headers);
  if (n > MAX_HEADERS)
    n = MAX_HEADERS;
  rt->headers = n ? cr__calloc(n, sizeof *rt->headers) : NULL;
  if (n && rt->headers == NULL)
    return CR_ENOMEM;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)headers, k, v) {
    if (rt->n_headers == n)
      break;
    const char *val = json_string_value(v);
    size_t len = strlen(k) + 2 + (val ? strlen(val) : 0) + 1;
    char *h = cr__malloc(len);
    if (h == NULL)
      return CR_ENOMEM;
    snprintf(h, len, "%s: %s", k, val ? val : "");
    rt->headers[rt->n_headers++] = h;
  }
  return 0;
}

/* rt's signer for c's secret (a bad secret is logged: unsigned). Returns 0
 * or CR_ENOMEM. */
static int rt_signer(cr_delivery *d, struct sub_rt *rt,
                     const struct cr_config_subscription *c) {
  unsigned char key[CR_SWH_KEY_MAX];
  size_t keylen = 0;
  if (cr_swh_key_parse(c->secret, key, &keylen) != 0) {
    logf_d(d, CR_LOG_ERROR,
           "subscription %s: secret is not a whsec_ base64 key; deliveries "
           "are not signed",
           c->id);
    return 0;
  }
  int rc = cr_swh_signer_new(key, keylen, &rt->signer);
  cr__secret_wipe(key, sizeof key);
  return rc;
}

static struct sub_rt *rt_new(cr_delivery *d,
                             const struct cr_config_subscription *c) {
  struct sub_rt *rt = cr__calloc(1, sizeof *rt);
  if (rt == NULL)
    return NULL;
  if (uv_mutex_init(&rt->tpl_mu) != 0) {
    cr__free(rt);
    return NULL;
  }
  if ((rt->id = cr__strdup(c->id)) == NULL || rt_headers(rt, c->headers) != 0) {
    rt_free(rt);
    return NULL;
  }
  rt->url = cr__strdup(c->webhook_url);
  rt->has_tpl = c->json_template != NULL;
  if (c->retry_schedule_ms != NULL &&
      (rt->schedule_copy =
           cr__calloc(c->n_retry_schedule, sizeof *rt->schedule_copy)) != NULL)
    memcpy(rt->schedule_copy, c->retry_schedule_ms,
           c->n_retry_schedule * sizeof *rt->schedule_copy);
  if (rt->url == NULL ||
      (c->retry_schedule_ms != NULL && rt->schedule_copy == NULL)) {
    rt_free(rt);
    return NULL;
  }
  rt->schedule = c->retry_schedule_ms ? rt->schedule_copy : default_schedule;
  rt->n_schedule = c->retry_schedule_ms
                       ? c->n_retry_schedule
                       : sizeof default_schedule / sizeof default_schedule[0];
  rt->timeout_ms = c->timeout_ms > 0 ? (long)c->timeout_ms : 15000;
  rt->max_in_flight = c->max_in_flight > 0 ? c->max_in_flight : 16;
  if (rt->max_in_flight > MAX_WINDOW)
    rt->max_in_flight = MAX_WINDOW;
  rt->disable_after_ms =
      c->disable_after_ms > 0 ? c->disable_after_ms : INT64_C(5) * 86400000;
  if (c->json_template != NULL &&
      cr_event_tpl_new(c->json_template, &rt->tpl, rt->tpl_error,
                       sizeof rt->tpl_error) != 0) {
    rt->tpl = NULL;
    logf_d(d, CR_LOG_ERROR, "subscription %s: json_template: %s", c->id,
           rt->tpl_error);
  }
  if (c->secret != NULL && rt_signer(d, rt, c) != 0) {
    rt_free(rt); /* out of memory: never send unsigned for that */
    return NULL;
  }
  return rt;
}

static struct sub_rt *rt_find(cr_delivery *d, const char *id) {
  for (struct sub_rt *rt = d->subs; rt != NULL; rt = rt->next)
    if (!rt->removed && strcmp(rt->id, id) == 0)
      return rt;
  return NULL;
}

/* The live run-time state of rt's subscription: rt itself, or the one that
 * replaced it at a reload (its window moved there). */
static struct sub_rt *rt_live(cr_delivery *d, struct sub_rt *rt) {
  struct sub_rt *now = rt->removed ? rt_find(d, rt->id) : NULL;
  return now != NULL ? now : rt;
}

/* Frees removed subscriptions nothing points to any more. */
static void rt_collect(cr_delivery *d) {
  struct sub_rt **pp = &d->subs;
  while (*pp != NULL) {
    struct sub_rt *rt = *pp;
    if (rt->removed && rt->refs == 0) {
      *pp = rt->next;
      rt_free(rt);
    } else {
      pp = &rt->next;
    }
  }
}

/* The store thread's positions are past rows the loop let go (they stay
 * undelivered in the store): the next read is a full one, and rows read
 * after the positions until then are let go as well. */
static void want_full(cr_delivery *d) {
  d->reread = 1;
  d->await_full = 1;
}

int cr_delivery_configure(cr_delivery *d, const cr_config *cfg) {
  for (struct sub_rt *rt = d->subs; rt != NULL; rt = rt->next)
    rt->removed = 1;
  d->account_id = cfg->host.account_id;
  int rc = 0;
  for (size_t i = 0; i < cfg->n_subscriptions && rc == 0; i++) {
    const struct cr_config_subscription *c = &cfg->subscriptions[i];
    if (!c->enabled || c->webhook_url == NULL || c->batch)
      continue; /* batched: events/batch_delivery.h */
    struct sub_rt *rt = rt_new(d, c);
    if (rt == NULL) {
      rc = CR_ENOMEM;
      break;
    }
    struct sub_rt *old = NULL;
    for (struct sub_rt *o = d->subs; o != NULL; o = o->next)
      if (o->removed && strcmp(o->id, c->id) == 0 && old == NULL)
        old = o;
    if (old != NULL) { /* keep the window of in-flight requests */
      memcpy(rt->in_flight, old->in_flight, sizeof rt->in_flight);
      rt->n_in_flight = old->n_in_flight;
      rt->requests = old->requests;
      old->requests = 0;
      rt->blocked_on = old->blocked_on;
      old->n_in_flight = 0;
    }
    rt->next = d->subs;
    d->subs = rt;
  }
  /* The store thread's positions may be past rows the loop let go: rows of
   * a subscription it did not have yet (one created through the API before
   * this reload, or one this instance just took over), or of one it
   * dropped and now has again while requests of the old one are still in
   * flight. Read everything again, or such a subscription would skip them
   * and send newer events first. */
  want_full(d);
  rt_collect(d);
  if (!d->closing)
    submit(d); /* the capacity to fill */
  cr_delivery_kick(d);
  return rc;
}

/* ---- Results (recorded by the store thread) ----------------------------- */

static void window_remove(struct sub_rt *rt, int64_t event_id) {
  for (int i = 0; i < rt->n_in_flight; i++)
    if (rt->in_flight[i] == event_id) {
      rt->in_flight[i] = rt->in_flight[--rt->n_in_flight];
      return;
    }
}

static int window_has(const struct sub_rt *rt, int64_t event_id) {
  for (int i = 0; i < rt->n_in_flight; i++)
    if (rt->in_flight[i] == event_id)
      return 1;
  return 0;
}

/* Queues r (its sub_rt reference with it) for the store thread. */
static void push_result(cr_delivery *d, struct cr__dw_result *r) {
  struct sub_rt *rt = r->tag;
  r->sub_id = rt->id;
  r->next = NULL;
  *d->results_tail = r;
  d->results_tail = &r->next;
  if (!d->closing)
    uv_async_send(&d->flush);
}

/* A delivery that ends without a result (aborted, not sent): out of the
 * window, reference dropped; it stays pending in the store. */
static void drop_delivery(cr_delivery *d, struct sub_rt *rt, int64_t id) {
  struct sub_rt *live = rt_live(d, rt);
  want_full(d); /* the store thread's positions are past it */
  window_remove(live, id);
  live->requests--;
  d->total_in_flight--;
  rt->refs--;
}

static void disable_sub(cr_delivery *d, struct sub_rt *rt, const char *why) {
  cr_store *s = d->o.store;
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_store_sub_disable(s, rt->id, why);
  if (rc == 0) {
    json_t *data = json_pack("{s:b, s:s}", "enabled", 0, "reason", why);
    rc = cr_event_emit(s, "subscription", rt->id, "updated", CR_ACTOR_SYSTEM,
                       data, NULL);
    json_decref(data);
  }
  rc = rc == 0 ? cr_store_commit(s) : (cr_store_rollback(s), rc);
  logf_d(d, CR_LOG_WARN, "subscription %s disabled: %s", rt->id, why);
  rt->removed = 1;
}

/* Entries of every window: their rows come first in a read. */
static long window_total(const cr_delivery *d) {
  long n = 0;
  for (const struct sub_rt *rt = d->subs; rt != NULL; rt = rt->next)
    n += rt->n_in_flight;
  return n;
}

/* Hands the results over; asks for rows when no spare is left. A full read
 * returns the in-flight rows too (they come first and are skipped here:
 * leaving them out in SQL cost ten times more), then the free slots' worth
 * of new rows and SPARE_ROWS more, at hand as requests complete; a read
 * after the positions tops the spares up to that. */
static void submit(cr_delivery *d) {
  struct cr__dw_result *r = d->results;
  d->results = NULL;
  d->results_tail = &d->results;
  long free_slots = d->o.max_connections - d->total_in_flight;
  struct cr__dw_want want = {.full = window_total(d) + free_slots + SPARE_ROWS,
                             .more =
                                 free_slots + SPARE_ROWS - (long)d->spare_left,
                             .need = d->spare_left == 0 && !d->dry,
                             .reread = d->reread};
  d->reread = 0;
  cr__dw_submit(d->w, r, &want);
}

/* The old spares go to the store thread to be freed (their strings were
 * allocated there: freeing them here cost the loop a few percent). */
static void spare_set(cr_delivery *d, struct cr_outbox_rec *rows, size_t n) {
  if (d->w != NULL)
    cr__dw_dispose(d->w, d->spare, d->n_spare);
  else
    cr_outbox_rec_free_list(d->spare, d->n_spare);
  d->spare = rows;
  d->n_spare = d->spare_left = n;
  d->spare_first = 0;
}

/* The spares not done yet, then rows (n, transferred). */
static int spare_append(cr_delivery *d, struct cr_outbox_rec *rows, size_t n) {
  if (n == 0)
    return 0;
  struct cr_outbox_rec *all = cr__calloc(d->spare_left + n, sizeof *all);
  if (all == NULL) {
    cr_outbox_rec_free_list(rows, n);
    return CR_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = d->spare_first; i < d->n_spare; i++)
    if (d->spare[i].event_id != 0) {
      all[k++] = d->spare[i]; /* its strings move */
      memset(&d->spare[i], 0, sizeof d->spare[i]);
    }
  memcpy(all + k, rows, n * sizeof *rows);
  cr__free(rows);
  spare_set(d, all, k + n);
  return 0;
}

/* Recorded results leave the window; a subscription blocked on one that is
 * no longer failing is free again. */
static void apply_acks(cr_delivery *d, struct cr__dw_result *r) {
  while (r != NULL) {
    struct cr__dw_result *next = r->next;
    struct sub_rt *rt = r->tag, *live = rt_live(d, rt);
    window_remove(live, r->event_id);
    if (live->blocked_on == r->event_id && strcmp(r->status, "failed") != 0)
      live->blocked_on = 0;
    rt->refs--;
    cr__free(r);
    r = next;
  }
}

/* Decides the outcome of an attempt. */
static void classify(struct req *q, const struct cr_http_result *h,
                     struct cr__dw_result *r) {
  struct sub_rt *rt = q->rt;
  long st = h->status;
  r->http = (int)st;
  r->latency = h->latency_ms;
  if (st >= 200 && st < 300) {
    r->status = "delivered";
    return;
  }
  int retry = st == 0 || st == 408 || st == 429 || st >= 500;
  if (st == 0)
    snprintf(r->error, sizeof r->error, "%s", h->error);
  else
    snprintf(r->error, sizeof r->error, "HTTP %ld", st);
  if (!retry || (size_t)q->attempts + 1 >= rt->n_schedule) {
    r->status = "dead";
    return;
  }
  int64_t wait = rt->schedule[q->attempts + 1];
  if (h->retry_after_ms > wait)
    wait = h->retry_after_ms;
  r->status = "failed";
  r->next_at = cr__now_ms() + wait;
}

static void on_done(void *ud, const struct cr_http_result *h) {
  struct req *q = ud;
  cr_delivery *d = q->d;
  struct cr__dw_result *r =
      d->closing ? NULL : cr__calloc(1, sizeof *r); /* closing: aborted */
  if (r == NULL) { /* not an attempt: stays pending, sent again later */
    drop_delivery(d, q->rt, q->event_id);
    cr__free(q);
    return;
  }
  d->total_in_flight--;
  struct sub_rt *live = rt_live(d, q->rt);
  live->requests--;
  r->tag = q->rt; /* the request's reference goes to the result */
  r->event_id = q->event_id;
  classify(q, h, r);
  if (strcmp(r->status, "delivered") == 0)
    d->stats.delivered++;
  else if (strcmp(r->status, "failed") == 0) {
    d->stats.retried++;
    if (live->blocked_on == 0 || q->event_id < live->blocked_on)
      live->blocked_on = q->event_id;
  } else
    d->stats.dead++;
  if (h->status == 410 && !live->removed)
    disable_sub(d, live, "410 Gone from the receiver");
  push_result(d, r);
  cr__free(q);
}

/* ---- Sending ------------------------------------------------------------ */

/* A delivery decided without a request (template error): recorded dead.
 * It stays in rt's window until recorded. */
static int fail_now(cr_delivery *d, struct sub_rt *rt, int64_t event_id,
                    const char *why) {
  struct cr__dw_result *r = cr__calloc(1, sizeof *r);
  if (r == NULL)
    return CR_ENOMEM;
  struct sub_rt *live = rt_live(d, rt);
  if (!window_has(live, event_id) && live->n_in_flight < MAX_WINDOW)
    live->in_flight[live->n_in_flight++] = event_id;
  rt->refs++;
  r->tag = rt;
  r->event_id = event_id;
  r->status = "dead";
  size_t len = strlen(why); /* cut, never overflow: a Jsonnet message */
  if (len >= sizeof r->error)
    len = sizeof r->error - 1;
  memcpy(r->error, why, len);
  r->error[len] = '\0';
  d->stats.template_errors++;
  d->stats.dead++;
  push_result(d, r);
  return 0;
}

/* POSTs q->body (signed) and hands q to on_done. Frees q on error. */
static int post(cr_delivery *d, struct req *q) {
  struct sub_rt *rt = q->rt;
  static const char id_h[] = "webhook-id: evt_", ts_h[] = "webhook-timestamp: ",
                    sig_h[] = "webhook-signature: ";
  char id[sizeof id_h + CR__DEC_MAX], ts[sizeof ts_h + CR__DEC_MAX];
  char sig[sizeof sig_h + CR_SWH_SIG_MAX];
  int64_t now_s = cr__now_ms() / 1000;
  memcpy(id, id_h, sizeof id_h - 1); /* no printf: once per request */
  cr__dec_i64(q->event_id, id + sizeof id_h - 1);
  memcpy(ts, ts_h, sizeof ts_h - 1);
  cr__dec_i64(now_s, ts + sizeof ts_h - 1);
  const char *hdrs[MAX_HEADERS + 5];
  size_t nh = 0, len = strlen(q->body);
  hdrs[nh++] = "Content-Type: application/json";
  hdrs[nh++] = id;
  hdrs[nh++] = ts;
  memcpy(sig, sig_h, sizeof sig_h - 1);
  if (rt->signer != NULL &&
      cr_swh_signer_sign(rt->signer, id + strlen("webhook-id: "), now_s,
                         q->body, len, sig + sizeof sig_h - 1,
                         CR_SWH_SIG_MAX) == 0)
    hdrs[nh++] = sig;
  for (size_t i = 0; i < rt->n_headers; i++)
    hdrs[nh++] = rt->headers[i];
  int rc = cr_http_async_post(d->http, rt->url, hdrs, nh, q->body, len,
                              rt->timeout_ms, on_done, q);
  cr__free(q->body);
  q->body = NULL;
  if (rc != 0) {
    drop_delivery(d, rt, q->event_id);
    cr__free(q);
    return rc;
  }
  d->stats.sent++;
  return 0;
}

static void render_work(uv_work_t *w) {
  struct req *q = w->data;
  uv_mutex_lock(&q->rt->tpl_mu);
  q->rc = cr_event_tpl_render(q->rt->tpl, q->event, &q->body, q->err,
                              sizeof q->err);
  uv_mutex_unlock(&q->rt->tpl_mu);
}

static void render_done(uv_work_t *w, int status) {
  struct req *q = w->data;
  cr_delivery *d = q->d;
  json_decref(q->event);
  if (status != 0 || q->rc != 0 || d->closing) {
    char why[300];
    snprintf(why, sizeof why, "json_template: %s",
             q->rc != 0 ? q->err : "not rendered");
    drop_delivery(d, q->rt, q->event_id);
    if (!d->closing && q->rc != 0)
      fail_now(d, q->rt, q->event_id, why);
    cr__free(q->body);
    cr__free(q);
    return;
  }
  post(d, q);
}

/* What q needs to go out: the binding for the template (rendered on the
 * thread pool), else the body, written without building the binding. */
static int prepare(cr_delivery *d, const struct sub_rt *rt,
                   const struct cr_outbox_rec *row, struct req *q) {
  if (rt->tpl == NULL)
    return cr_event_tpl_body(&row->event, d->account_id, &q->body);
  q->event = cr_event_tpl_binding(&row->event, d->account_id);
  return q->event != NULL ? 0 : CR_ENOMEM;
}

static int send_one(cr_delivery *d, struct sub_rt *rt,
                    const struct cr_outbox_rec *row) {
  if (rt->has_tpl && rt->tpl == NULL) {
    char why[300];
    snprintf(why, sizeof why, "json_template: %s", rt->tpl_error);
    return fail_now(d, rt, row->event_id, why);
  }
  struct req *q = cr__calloc(1, sizeof *q);
  int rc = q != NULL ? prepare(d, rt, row, q) : CR_ENOMEM;
  if (rc != 0) {
    cr__free(q);
    return rc;
  }
  q->d = d;
  q->rt = rt;
  q->event_id = row->event_id;
  q->attempts = row->attempts;
  rt->in_flight[rt->n_in_flight++] = row->event_id;
  rt->requests++;
  rt->refs++;
  d->total_in_flight++;
  if (rt->tpl != NULL) {
    q->work.data = q;
    if (uv_queue_work(d->o.loop, &q->work, render_work, render_done) == 0)
      return 0;
    json_decref(q->event);
    drop_delivery(d, rt, q->event_id);
    cr__free(q);
    return CR_EIO;
  }
  return post(d, q);
}

static int may_send(const struct sub_rt *rt, const struct cr_outbox_rec *row) {
  if (rt == NULL || rt->removed || window_has(rt, row->event_id) ||
      rt->requests >= rt->max_in_flight || rt->n_in_flight >= MAX_WINDOW)
    return 0;
  return rt->blocked_on == 0 || rt->blocked_on == row->event_id;
}

static void check_failing(cr_delivery *d, struct sub_rt *rt,
                          const struct cr_outbox_rec *row) {
  if (row->first_attempt_at <= 0 || rt->removed)
    return;
  /* The oldest undelivered row of a failing subscription tells how long it
   * has been failing. */
  if (cr__now_ms() - row->first_attempt_at > rt->disable_after_ms &&
      row->attempts > 0) {
    char why[200];
    snprintf(why, sizeof why, "failing for more than %" PRId64 " s",
             rt->disable_after_ms / 1000);
    disable_sub(d, rt, why);
  }
}

/* Sends spare rows while there is capacity, in their order; rows that
 * cannot go yet (window full, subscription blocked) stay for later. */
static void fill(cr_delivery *d) {
  while (d->spare_first < d->n_spare && d->spare[d->spare_first].event_id == 0)
    d->spare_first++; /* the done prefix */
  for (size_t i = d->spare_first; i < d->n_spare && d->spare_left > 0 &&
                                  d->total_in_flight < d->o.max_connections;
       i++) {
    struct cr_outbox_rec *row = &d->spare[i];
    if (row->event_id == 0)
      continue;
    struct sub_rt *rt = rt_find(d, row->subscription_id);
    if (rt != NULL && !may_send(rt, row))
      continue;
    int rc = rt != NULL ? send_one(d, rt, row) : 0;
    row->event_id = 0; /* sent, decided, or its subscription is gone */
    d->spare_left--;
    if (rc != 0)
      break;
  }
}

/* Takes in a batch's rows: a full read replaces the spares, a read after
 * the positions is appended. Rows in a window or without a subscription
 * are done at once. */
static void take_rows(cr_delivery *d, struct cr__dw_batch *b) {
  if (!b->full && d->await_full) {
    cr__dw_dispose(d->w, b->rows, b->n_rows); /* the full read brings them */
    b->rows = NULL;
    b->n_rows = 0;
    return;
  }
  if (b->full)
    d->await_full = 0;
  size_t first = b->full ? 0 : d->spare_left; /* where the new rows go */
  if (b->full)
    spare_set(d, b->rows, b->n_rows);
  else if (spare_append(d, b->rows, b->n_rows) != 0) {
    want_full(d); /* out of memory: those rows are gone */
    return;
  }
  for (size_t i = first; i < d->n_spare; i++) {
    struct cr_outbox_rec *row = &d->spare[i];
    if (row->event_id == 0)
      continue; /* done already: counted out of spare_left once */
    struct sub_rt *rt = rt_find(d, row->subscription_id);
    if (rt == NULL || window_has(rt, row->event_id)) {
      row->event_id = 0; /* in flight already, or nowhere to send it */
      d->spare_left--;
    } else {
      check_failing(d, rt, row);
    }
  }
}

/* The store thread's batch: recorded results leave the window, then the
 * rows it read after writing them come in. */
static void on_ready(uv_async_t *a) {
  cr_delivery *d = a->data;
  struct cr__dw_batch b;
  if (d->closing || !cr__dw_take(d->w, &b))
    return;
  if (b.record_rc != 0)
    logf_d(d, CR_LOG_ERROR,
           "delivery: cannot record results (%s: %s): they will be sent again",
           cr_strerror(b.record_rc), b.record_error);
  if (b.enqueue_rc != 0)
    logf_d(d, CR_LOG_WARN, "delivery: enqueue failed: %s",
           cr_strerror(b.enqueue_rc));
  apply_acks(d, b.acked);
  if (b.fetched) {
    take_rows(d, &b);
    d->dry = d->spare_left == 0;
  }
  fill(d);
  rt_collect(d);
  submit(d);
}

static void on_flush(uv_async_t *a) {
  cr_delivery *d = a->data;
  if (d->closing)
    return;
  fill(d);
  submit(d);
}

static void on_timer(uv_timer_t *t) {
  cr_delivery *d = t->data;
  rt_collect(d);
  if (!d->closing)
    submit(d);
}

void cr_delivery_kick(cr_delivery *d) {
  if (d != NULL && d->w != NULL)
    cr__dw_kick(d->w);
}

static void close_cb(uv_handle_t *h) { (void)h; }

int cr_delivery_new(const struct cr_delivery_opts *o, cr_delivery **out) {
  if (o == NULL || o->loop == NULL || o->store == NULL || o->data_dir == NULL ||
      out == NULL)
    return CR_EINVAL;
  cr_delivery *d = cr__calloc(1, sizeof *d);
  if (d == NULL)
    return CR_ENOMEM;
  d->o = *o;
  if (d->o.max_connections <= 0)
    d->o.max_connections = 64;
  if (d->o.poll_ms <= 0)
    d->o.poll_ms = 100;
  d->results_tail = &d->results;
  char err[256] = "";
  int rc = cr__dw_start(o->data_dir, &d->ready, d->o.poll_ms, &d->w, err,
                        sizeof err);
  if (rc != 0) {
    logf_d(d, CR_LOG_ERROR, "delivery: %s", err);
    cr__free(d);
    return rc;
  }
  /* The thread waits for a submit or a kick: ready is set up before any. */
  struct cr_http_async_opts ho = {.max_connections = d->o.max_connections};
  rc = cr_http_async_new(o->loop, &ho, &d->http);
  if (rc != 0) {
    cr__dw_stop(d->w);
    cr__free(d);
    return rc;
  }
  uv_async_init(o->loop, &d->ready, on_ready);
  uv_async_init(o->loop, &d->flush, on_flush);
  uv_timer_init(o->loop, &d->timer);
  d->ready.data = d->flush.data = d->timer.data = d;
  uv_timer_start(&d->timer, on_timer, (uint64_t)d->o.poll_ms,
                 (uint64_t)d->o.poll_ms);
  *out = d;
  return 0;
}

void cr_delivery_get_stats(const cr_delivery *d,
                           struct cr_delivery_stats *out) {
  *out = d->stats;
}

void cr_delivery_close(cr_delivery *d) {
  if (d == NULL || d->closing)
    return;
  d->closing = 1;
  cr_http_async_close(d->http); /* aborted ones stay pending in the store */
  submit(d);                    /* what was decided is still recorded */
  cr__dw_stop(d->w);
  d->w = NULL;
  uv_close((uv_handle_t *)&d->ready, close_cb);
  uv_close((uv_handle_t *)&d->flush, close_cb);
  uv_close((uv_handle_t *)&d->timer, close_cb);
}

void cr_delivery_free(cr_delivery *d) {
  if (d == NULL)
    return;
  cr_http_async_free(d->http);
  while (d->subs != NULL) {
    struct sub_rt *rt = d->subs;
    d->subs = rt->next;
    rt_free(rt);
  }
  cr__dw_stop(d->w); /* not closed: nothing more is recorded */
  d->w = NULL;       /* the spares below are freed here */
  while (d->results != NULL) {
    struct cr__dw_result *r = d->results;
    d->results = r->next;
    cr__free(r);
  }
  spare_set(d, NULL, 0);
  cr__free(d);
}
