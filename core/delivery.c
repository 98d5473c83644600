/* delivery.c: the webhook export engine (see delivery.h): passes over the
 * store's outbox, rendering, signing, POSTing and recording in batches. */
#include "delivery.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "event_tpl.h"
#include "events.h"
#include "http_async.h"
#include "stdwebhooks.h"
#include "sub_filter.h"

#define MAX_WINDOW 256
#define MAX_HEADERS 64

static const int64_t default_schedule[] = {
    0,        5000,     300000,   1800000,  7200000,
    18000000, 36000000, 50400000, 72000000, 86400000};

struct sub_rt {
  const struct cr_config_subscription *cfg; /* borrowed from the config */
  char *id;                                 /* owned (outlives a reload) */
  cr_event_tpl *tpl;                        /* NULL: the event as JSON */
  char tpl_error[256];                      /* template that did not compile */
  unsigned char key[CR_SWH_KEY_MAX];
  size_t keylen; /* 0: unsigned */
  char **headers;
  size_t n_headers;
  const int64_t *schedule;
  size_t n_schedule;
  long timeout_ms;
  int max_in_flight;
  int64_t disable_after_ms;
  int64_t in_flight[MAX_WINDOW];
  int n_in_flight;
  int64_t blocked_on; /* event id that failed: nothing newer until it ends */
  int removed;        /* gone from the config; freed when idle */
  uv_mutex_t tpl_mu;  /* one render at a time per renderer */
  struct sub_rt *next;
};

struct result {
  struct sub_rt *rt;
  int64_t event_id;
  int attempts;
  const char *status;
  int http;
  int64_t latency, next_at;
  char error[256];
  struct result *next;
};

struct cr_delivery {
  struct cr_delivery_opts o;
  cr_http_async *http;
  uv_timer_t timer;
  uv_async_t kick;
  int closing;
  const char *account_id;
  struct sub_rt *subs;
  struct result *results, **results_tail;
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
  cr__secret_wipe(rt->key, sizeof rt->key);
  cr__free(rt->id);
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
  rt->cfg = c;
  rt->schedule = c->retry_schedule_ms ? c->retry_schedule_ms : default_schedule;
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
  if (c->secret != NULL &&
      cr_swh_key_parse(c->secret, rt->key, &rt->keylen) != 0) {
    rt->keylen = 0;
    logf_d(d, CR_LOG_ERROR,
           "subscription %s: secret is not a whsec_ base64 key; deliveries "
           "are not signed",
           c->id);
  }
  return rt;
}

static struct sub_rt *rt_find(cr_delivery *d, const char *id) {
  for (struct sub_rt *rt = d->subs; rt != NULL; rt = rt->next)
    if (!rt->removed && strcmp(rt->id, id) == 0)
      return rt;
  return NULL;
}

/* Frees removed subscriptions with nothing in flight. */
static void rt_collect(cr_delivery *d) {
  struct sub_rt **pp = &d->subs;
  while (*pp != NULL) {
    struct sub_rt *rt = *pp;
    if (rt->removed && rt->n_in_flight == 0) {
      *pp = rt->next;
      rt_free(rt);
    } else {
      pp = &rt->next;
    }
  }
}

int cr_delivery_configure(cr_delivery *d, const cr_config *cfg) {
  for (struct sub_rt *rt = d->subs; rt != NULL; rt = rt->next)
    rt->removed = 1;
  d->account_id = cfg->host.account_id;
  int rc = 0;
  for (size_t i = 0; i < cfg->n_subscriptions && rc == 0; i++) {
    const struct cr_config_subscription *c = &cfg->subscriptions[i];
    if (!c->enabled || c->webhook_url == NULL)
      continue;
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
      rt->blocked_on = old->blocked_on;
      old->n_in_flight = 0;
    }
    rt->next = d->subs;
    d->subs = rt;
  }
  rt_collect(d);
  cr_delivery_kick(d);
  return rc;
}

/* ---- Results (written in one transaction per pass) --------------------- */

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

static void push_result(cr_delivery *d, struct result *r) {
  r->next = NULL;
  *d->results_tail = r;
  d->results_tail = &r->next;
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

static void flush_results(cr_delivery *d) {
  if (d->results == NULL)
    return;
  cr_store *s = d->o.store;
  int rc = cr_store_begin(s);
  for (struct result *r = d->results; r != NULL && rc == 0; r = r->next) {
    rc = cr_store_outbox_record(s, r->rt->id, r->event_id, r->status, r->http,
                                r->latency, r->error[0] ? r->error : NULL,
                                r->next_at);
    if (rc == CR_ENOENT)
      rc = 0; /* the subscription was deleted meanwhile */
  }
  rc = rc == 0 ? cr_store_commit(s) : (cr_store_rollback(s), rc);
  if (rc != 0)
    logf_d(d, CR_LOG_ERROR,
           "delivery: cannot record results (%s): they will be sent again",
           cr_strerror(rc));
  while (d->results != NULL) {
    struct result *r = d->results;
    d->results = r->next;
    window_remove(r->rt, r->event_id);
    if (r->rt->blocked_on == r->event_id && strcmp(r->status, "failed") != 0)
      r->rt->blocked_on = 0;
    cr__free(r);
  }
  d->results_tail = &d->results;
}

/* Decides the outcome of an attempt. */
static void classify(struct req *q, const struct cr_http_result *h,
                     struct result *r) {
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
  d->total_in_flight--;
  if (d->closing) { /* aborted by close: not an attempt, stays pending */
    window_remove(q->rt, q->event_id);
    cr__free(q);
    return;
  }
  struct result *r = cr__calloc(1, sizeof *r);
  if (r == NULL) { /* stays pending in the store: sent again later */
    window_remove(q->rt, q->event_id);
    cr__free(q);
    return;
  }
  r->rt = q->rt;
  r->event_id = q->event_id;
  classify(q, h, r);
  if (strcmp(r->status, "delivered") == 0)
    d->stats.delivered++;
  else if (strcmp(r->status, "failed") == 0) {
    d->stats.retried++;
    if (q->rt->blocked_on == 0 || q->event_id < q->rt->blocked_on)
      q->rt->blocked_on = q->event_id;
  } else
    d->stats.dead++;
  if (h->status == 410 && !q->rt->removed) {
    char why[300];
    snprintf(why, sizeof why, "410 Gone from the receiver");
    disable_sub(d, q->rt, why);
  }
  push_result(d, r);
  cr__free(q);
  if (!d->closing)
    cr_delivery_kick(d);
}

/* ---- Sending ------------------------------------------------------------ */

/* A delivery decided without a request (template error): recorded dead. */
static int fail_now(cr_delivery *d, struct sub_rt *rt, int64_t event_id,
                    const char *why) {
  struct result *r = cr__calloc(1, sizeof *r);
  if (r == NULL)
    return CR_ENOMEM;
  r->rt = rt;
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
  char id[64], ts[64], sig[CR_SWH_SIG_MAX + 32];
  int64_t now_s = cr__now_ms() / 1000;
  snprintf(id, sizeof id, "webhook-id: evt_%" PRId64, q->event_id);
  snprintf(ts, sizeof ts, "webhook-timestamp: %" PRId64, now_s);
  const char *hdrs[MAX_HEADERS + 5];
  size_t nh = 0, len = strlen(q->body);
  hdrs[nh++] = "Content-Type: application/json";
  hdrs[nh++] = id;
  hdrs[nh++] = ts;
  char v[CR_SWH_SIG_MAX];
  if (rt->keylen > 0 &&
      cr_swh_sign(rt->key, rt->keylen, id + strlen("webhook-id: "), now_s,
                  q->body, len, v, sizeof v) == 0) {
    snprintf(sig, sizeof sig, "webhook-signature: %s", v);
    hdrs[nh++] = sig;
  }
  for (size_t i = 0; i < rt->n_headers; i++)
    hdrs[nh++] = rt->headers[i];
  int rc = cr_http_async_post(d->http, rt->cfg->webhook_url, hdrs, nh, q->body,
                              len, rt->timeout_ms, on_done, q);
  cr__free(q->body);
  q->body = NULL;
  if (rc != 0) {
    window_remove(rt, q->event_id);
    d->total_in_flight--;
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
    window_remove(q->rt, q->event_id);
    d->total_in_flight--;
    if (!d->closing && q->rc != 0)
      fail_now(d, q->rt, q->event_id, why);
    cr__free(q->body);
    cr__free(q);
    return;
  }
  post(d, q);
}

static int send_one(cr_delivery *d, struct sub_rt *rt,
                    const struct cr_outbox_rec *row) {
  if (rt->cfg->json_template != NULL && rt->tpl == NULL) {
    char why[300];
    snprintf(why, sizeof why, "json_template: %s", rt->tpl_error);
    return fail_now(d, rt, row->event_id, why);
  }
  struct req *q = cr__calloc(1, sizeof *q);
  json_t *ev = cr_event_tpl_binding(&row->event, d->account_id);
  if (q == NULL || ev == NULL) {
    cr__free(q);
    json_decref(ev);
    return CR_ENOMEM;
  }
  q->d = d;
  q->rt = rt;
  q->event_id = row->event_id;
  q->attempts = row->attempts;
  rt->in_flight[rt->n_in_flight++] = row->event_id;
  d->total_in_flight++;
  if (rt->tpl != NULL) {
    q->event = ev;
    q->work.data = q;
    if (uv_queue_work(d->o.loop, &q->work, render_work, render_done) == 0)
      return 0;
    json_decref(ev);
    window_remove(rt, q->event_id);
    d->total_in_flight--;
    cr__free(q);
    return CR_EIO;
  }
  char *txt = json_dumps(ev, JSON_COMPACT);
  json_decref(ev);
  q->body = txt ? cr__strdup(txt) : NULL;
  free(txt);
  if (q->body == NULL) {
    window_remove(rt, q->event_id);
    d->total_in_flight--;
    cr__free(q);
    return CR_ENOMEM;
  }
  return post(d, q);
}

static int may_send(const struct sub_rt *rt, const struct cr_outbox_rec *row) {
  if (rt == NULL || rt->removed || window_has(rt, row->event_id) ||
      rt->n_in_flight >= rt->max_in_flight)
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

static void pass(cr_delivery *d) {
  if (d->closing)
    return;
  flush_results(d);
  rt_collect(d);
  size_t n_enq = 0;
  if (cr_store_outbox_enqueue(d->o.store, 10000, &n_enq) != 0)
    logf_d(d, CR_LOG_WARN, "delivery: enqueue failed: %s",
           cr_store_last_error(d->o.store));
  long cap = d->o.max_connections - d->total_in_flight;
  if (cap <= 0 || d->subs == NULL)
    return;
  struct cr_outbox_rec *rows = NULL;
  size_t n = 0;
  if (cr_store_outbox_due(d->o.store, cr__now_ms(), (size_t)cap * 4, &rows,
                          &n) != 0)
    return;
  for (size_t i = 0; i < n && d->total_in_flight < d->o.max_connections; i++) {
    struct sub_rt *rt = rt_find(d, rows[i].subscription_id);
    if (rt == NULL)
      continue;
    check_failing(d, rt, &rows[i]);
    if (may_send(rt, &rows[i]) && send_one(d, rt, &rows[i]) != 0)
      break;
  }
  cr_outbox_rec_free_list(rows, n);
  flush_results(d); /* template errors decided in this pass */
}

static void on_timer(uv_timer_t *t) { pass(t->data); }
static void on_kick(uv_async_t *a) { pass(a->data); }

void cr_delivery_kick(cr_delivery *d) {
  if (d != NULL && !d->closing)
    uv_async_send(&d->kick);
}

int cr_delivery_new(const struct cr_delivery_opts *o, cr_delivery **out) {
  if (o == NULL || o->loop == NULL || o->store == NULL || out == NULL)
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
  struct cr_http_async_opts ho = {.max_connections = d->o.max_connections};
  int rc = cr_http_async_new(o->loop, &ho, &d->http);
  if (rc != 0) {
    cr__free(d);
    return rc;
  }
  uv_timer_init(o->loop, &d->timer);
  uv_async_init(o->loop, &d->kick, on_kick);
  d->timer.data = d->kick.data = d;
  uv_timer_start(&d->timer, on_timer, (uint64_t)d->o.poll_ms,
                 (uint64_t)d->o.poll_ms);
  *out = d;
  return 0;
}

void cr_delivery_get_stats(const cr_delivery *d,
                           struct cr_delivery_stats *out) {
  *out = d->stats;
}

static void close_cb(uv_handle_t *h) { (void)h; }

void cr_delivery_close(cr_delivery *d) {
  if (d == NULL || d->closing)
    return;
  flush_results(d);
  d->closing = 1;
  cr_http_async_close(d->http); /* aborted ones stay pending in the store */
  uv_close((uv_handle_t *)&d->timer, close_cb);
  uv_close((uv_handle_t *)&d->kick, close_cb);
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
  while (d->results != NULL) {
    struct result *r = d->results;
    d->results = r->next;
    cr__free(r);
  }
  cr__free(d);
}
