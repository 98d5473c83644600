/* api_prom.c: /metrics in the Prometheus text exposition format (version
 * 0.0.4), and the API's own request counters and latency histograms it
 * includes. Labels are bounded: routes are the route table's patterns (never
 * a raw URL), ids are configured authorizations, subscriptions and providers,
 * never executions. */
#include "api/api_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "control/control.h"
#include "util/alloc.h"
#include "util/error.h"

#define N_LAT 10
static const double lat_bounds[N_LAT] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,  0.1,    0.5,   1.0};
/* Status codes counted per route: an index per class of code we answer. */
static const int codes[] = {200, 201, 204, 400, 401, 403, 404, 405,
                            409, 412, 413, 415, 422, 429, 500, 503};
#define N_CODES (sizeof codes / sizeof codes[0])

struct route_stats {
  uint64_t by_code[N_CODES + 1]; /* last: any other code */
  uint64_t lat[N_LAT];           /* cumulative at exposition time */
  uint64_t count;
  double sum;
};

struct cr__api_stats {
  uv_mutex_t mu;
  struct route_stats *routes; /* cr__api_n_routes + 1 (unmatched) */
};

int cr__api_stats_new(struct cr__api_stats **out) {
  struct cr__api_stats *s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return CR_ENOMEM;
  s->routes = cr__calloc(cr__api_n_routes + 1, sizeof *s->routes);
  if (s->routes == NULL || uv_mutex_init(&s->mu) != 0) {
    cr__free(s->routes);
    cr__free(s);
    return CR_ENOMEM;
  }
  *out = s;
  return 0;
}

void cr__api_stats_free(struct cr__api_stats *s) {
  if (s == NULL)
    return;
  uv_mutex_destroy(&s->mu);
  cr__free(s->routes);
  cr__free(s);
}

void cr__api_stats_add(struct cr__api_stats *s, int route, int status,
                       int64_t latency_ns) {
  size_t ri = route < 0 ? cr__api_n_routes : (size_t)route;
  size_t ci = 0;
  while (ci < N_CODES && codes[ci] != status)
    ci++;
  double secs = (double)latency_ns / 1e9;
  uv_mutex_lock(&s->mu);
  struct route_stats *r = &s->routes[ri];
  r->by_code[ci]++;
  for (size_t i = 0; i < N_LAT; i++)
    if (secs <= lat_bounds[i]) {
      r->lat[i]++;
      break;
    }
  r->count++;
  r->sum += secs;
  uv_mutex_unlock(&s->mu);
}

/* ---- The text ---- */

struct out {
  char *buf;
  size_t len, cap;
  int nomem;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf ? o->buf + o->len : NULL,
                      o->buf ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0 || o->nomem)
      return;
    if (o->buf != NULL && o->len + (size_t)n < o->cap) {
      o->len += (size_t)n;
      return;
    }
    size_t cap = (o->cap ? o->cap * 2 : 65536) + (size_t)n;
    char *g = cr__realloc(o->buf, cap);
    if (g == NULL) {
      o->nomem = 1;
      return;
    }
    o->buf = g;
    o->cap = cap;
  }
}

/* A label value escaped for the exposition format into buf (256). */
static const char *esc(const char *v, char *buf) {
  size_t k = 0;
  for (const char *p = v ? v : ""; *p && k < 250; p++) {
    if (*p == '\\' || *p == '"') {
      buf[k++] = '\\';
      buf[k++] = *p;
    } else if (*p == '\n') {
      buf[k++] = '\\';
      buf[k++] = 'n';
    } else {
      buf[k++] = *p;
    }
  }
  buf[k] = '\0';
  return buf;
}

static void help(struct out *o, const char *name, const char *type,
                 const char *text) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static int rows(cr_store *s, int which, struct cr_stat_row **r, size_t *n) {
  return cr_store_stats(s, which, r, n);
}

static int two_label(struct out *o, cr_store *s, int which, const char *name,
                     const char *type, const char *text, const char *l1,
                     const char *l2) {
  struct cr_stat_row *r = NULL;
  size_t n = 0;
  int rc = rows(s, which, &r, &n);
  if (rc != 0)
    return rc;
  help(o, name, type, text);
  char a[256], b[256];
  for (size_t i = 0; i < n; i++)
    put(o, "%s{%s=\"%s\",%s=\"%s\"} %" PRId64 "\n", name, l1,
        esc(r[i].label[0], a), l2, esc(r[i].label[1], b), r[i].v[0]);
  cr_stat_row_free_list(r, n);
  return 0;
}

static int durations(struct out *o, cr_store *s) {
  struct cr_stat_row *r = NULL;
  size_t n = 0;
  int rc = rows(s, CR_STAT_EXEC_DURATIONS, &r, &n);
  if (rc != 0)
    return rc;
  const char *name = "connrun_execution_duration_seconds";
  help(o, name, "histogram",
       "Time from creation to the end of ended executions.");
  char a[256];
  for (size_t i = 0; i < n; i++) {
    esc(r[i].label[0], a);
    for (int b = 0; b < CR_STAT_DURATION_BUCKETS; b++)
      put(o, "%s_bucket{provider=\"%s\",le=\"%g\"} %" PRId64 "\n", name, a,
          (double)cr_store_stat_duration_bounds_ms[b] / 1000.0, r[i].v[b]);
    put(o, "%s_bucket{provider=\"%s\",le=\"+Inf\"} %" PRId64 "\n", name, a,
        r[i].v[10]);
    put(o, "%s_sum{provider=\"%s\"} %.3f\n", name, a,
        (double)r[i].v[11] / 1000.0);
    put(o, "%s_count{provider=\"%s\"} %" PRId64 "\n", name, a, r[i].v[10]);
  }
  cr_stat_row_free_list(r, n);
  return 0;
}

static int requests(struct out *o, cr_store *s) {
  struct cr_stat_row *r = NULL;
  size_t n = 0;
  int rc = rows(s, CR_STAT_REQUESTS, &r, &n);
  if (rc != 0)
    return rc;
  const char *name = "connrun_provider_requests_total";
  help(o, name, "counter",
       "HTTP requests plugins made to providers, by authorization and "
       "outcome.");
  char a[256];
  for (size_t i = 0; i < n; i++) {
    esc(r[i].label[0], a);
    put(o, "%s{authorization=\"%s\",outcome=\"ok\"} %" PRId64 "\n", name, a,
        r[i].v[0] - r[i].v[1]);
    put(o, "%s{authorization=\"%s\",outcome=\"error\"} %" PRId64 "\n", name, a,
        r[i].v[1]);
  }
  cr_stat_row_free_list(r, n);
  return 0;
}

static void health(struct out *o, cr_store *s, const cr_config *cfg) {
  const char *name = "connrun_authorization_health";
  help(o, name, "gauge",
       "1 for the authorization's current health status (Healthy, "
       "Unhealthy, Unknown).");
  static const char *const st[] = {"Unknown", "Healthy", "Unhealthy"};
  char a[256], p[256];
  for (size_t i = 0; i < cfg->n_auths; i++) {
    struct cr_health_rec h = {0};
    int have = cr_store_auth_health_latest(s, cfg->auths[i].id, &h) == 0;
    int cur = have && h.status >= 0 && h.status <= 2 ? h.status : 0;
    esc(cfg->auths[i].id, a);
    esc(cfg->auths[i].provider, p);
    for (int k = 0; k < 3; k++)
      put(o, "%s{authorization=\"%s\",provider=\"%s\",status=\"%s\"} %d\n",
          name, a, p, st[k], k == cur);
    cr_health_rec_clear(&h);
  }
}

static int undelivered(const struct cr_stat_row *r) {
  return r->label[1] != NULL &&
         (!strcmp(r->label[1], "pending") || !strcmp(r->label[1], "failed"));
}

/* Rows come grouped by subscription: one backlog line per subscription. */
static void outbox(struct out *o, cr_store *s) {
  struct cr_stat_row *r = NULL;
  size_t n = 0;
  if (rows(s, CR_STAT_OUTBOX, &r, &n) != 0)
    return;
  help(o, "connrun_outbox_backlog", "gauge",
       "Events waiting for delivery (pending or failed), by subscription.");
  char a[256];
  int64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    sum += undelivered(&r[i]) ? r[i].v[0] : 0;
    if (i + 1 == n || strcmp(r[i + 1].label[0], r[i].label[0]) != 0) {
      put(o, "connrun_outbox_backlog{subscription=\"%s\"} %" PRId64 "\n",
          esc(r[i].label[0], a), sum);
      sum = 0;
    }
  }
  cr_stat_row_free_list(r, n);
}

static void api_requests(struct out *o, struct cr__api_stats *st) {
  help(o, "connrun_api_requests_total", "counter",
       "REST API requests by route and status code.");
  uv_mutex_lock(&st->mu);
  for (size_t ri = 0; ri <= cr__api_n_routes; ri++) {
    const char *route =
        ri < cr__api_n_routes ? cr__api_routes[ri].pattern : "unmatched";
    const char *method =
        ri < cr__api_n_routes ? cr__api_routes[ri].method : "any";
    for (size_t ci = 0; ci <= N_CODES; ci++)
      if (st->routes[ri].by_code[ci] > 0) {
        char code[8];
        snprintf(code, sizeof code, "%d", ci < N_CODES ? codes[ci] : 0);
        put(o,
            "connrun_api_requests_total{method=\"%s\",route=\"%s\","
            "code=\"%s\"} %" PRIu64 "\n",
            method, route, ci < N_CODES ? code : "other",
            st->routes[ri].by_code[ci]);
      }
  }
  help(o, "connrun_api_request_duration_seconds", "histogram",
       "REST API request latency by route.");
  for (size_t ri = 0; ri <= cr__api_n_routes; ri++) {
    const struct route_stats *r = &st->routes[ri];
    if (r->count == 0)
      continue;
    const char *route =
        ri < cr__api_n_routes ? cr__api_routes[ri].pattern : "unmatched";
    const char *method =
        ri < cr__api_n_routes ? cr__api_routes[ri].method : "any";
    uint64_t cum = 0;
    for (size_t i = 0; i < N_LAT; i++) {
      cum += r->lat[i];
      put(o,
          "connrun_api_request_duration_seconds_bucket{method=\"%s\","
          "route=\"%s\",le=\"%g\"} %" PRIu64 "\n",
          method, route, lat_bounds[i], cum);
    }
    put(o,
        "connrun_api_request_duration_seconds_bucket{method=\"%s\","
        "route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
        method, route, r->count);
    put(o,
        "connrun_api_request_duration_seconds_sum{method=\"%s\",route=\"%s\"}"
        " %.6f\n",
        method, route, r->sum);
    put(o,
        "connrun_api_request_duration_seconds_count{method=\"%s\",route=\"%"
        "s\"} %" PRIu64 "\n",
        method, route, r->count);
  }
  uv_mutex_unlock(&st->mu);
}

void cr__api_metrics(struct cr__api_req *r, struct cr__api_res *res) {
  struct out o = {0};
  cr_store *s = r->store;
  int rc = two_label(&o, s, CR_STAT_EXEC_STATES, "connrun_executions", "gauge",
                     "Executions stored, by provider and state.", "provider",
                     "state");
  if (rc == 0)
    rc = durations(&o, s);
  if (rc == 0)
    rc = requests(&o, s);
  if (rc == 0)
    health(&o, s, r->cfg);
  if (rc == 0)
    rc = two_label(&o, s, CR_STAT_EVENTS, "connrun_events", "gauge",
                   "System events stored (within retention), by subject "
                   "type and verb.",
                   "subject_type", "verb");
  if (rc == 0)
    rc = two_label(&o, s, CR_STAT_ATTEMPTS, "connrun_webhook_deliveries_total",
                   "counter",
                   "Webhook delivery attempts, by subscription and outcome.",
                   "subscription", "outcome");
  if (rc == 0)
    outbox(&o, s);
  const struct cr_api_hooks *h = &r->api->o.hooks;
  int total = 0, busy = 0;
  if (h->runner_slots)
    h->runner_slots(h->ud, &total, &busy);
  help(&o, "connrun_runner_slots", "gauge",
       "Execution slots of the runners, by runner and use.");
  put(&o, "connrun_runner_slots{runner=\"%s\",use=\"busy\"} %d\n",
      r->api->runner_id, busy);
  put(&o, "connrun_runner_slots{runner=\"%s\",use=\"free\"} %d\n",
      r->api->runner_id, total - busy);
  if (h->loop_stall_us) {
    help(&o, "connrun_loop_stall_seconds_max", "gauge",
         "The longest time the daemon's event loop spent on one iteration's "
         "work (not waiting) since the previous scrape: how late any timer "
         "could have fired.");
    put(&o, "connrun_loop_stall_seconds_max %.6f\n",
        (double)h->loop_stall_us(h->ud) / 1e6);
  }
  struct cr_store_conn_counters cc;
  cr_store_conn_counters(&cc);
  help(&o, "connrun_store_reconnects_total", "counter",
       "PostgreSQL connections of this process made again after they "
       "dropped.");
  put(&o, "connrun_store_reconnects_total %" PRIu64 "\n", cc.reconnects);
  help(&o, "connrun_store_retries_total", "counter",
       "Store statements run again on a new connection after theirs was "
       "lost (reads and transaction starts only).");
  put(&o, "connrun_store_retries_total %" PRIu64 "\n", cc.retries);
  help(&o, "connrun_store_lost_statements_total", "counter",
       "Store statements that failed because their connection was lost, "
       "retried or not.");
  put(&o, "connrun_store_lost_statements_total %" PRIu64 "\n",
      cc.lost_statements);
  help(&o, "connrun_store_round_trips_total", "counter",
       "Requests this process sent to PostgreSQL and waited for.");
  put(&o, "connrun_store_round_trips_total %" PRIu64 "\n", cc.round_trips);
  help(&o, "connrun_store_deferred_statements_total", "counter",
       "Store statements (BEGIN, SAVEPOINT, RELEASE) that took no round "
       "trip of their own: sent with the next statement, or dropped by the "
       "COMMIT or ROLLBACK that made them moot.");
  put(&o, "connrun_store_deferred_statements_total %" PRIu64 "\n", cc.deferred);
  api_requests(&o, r->api->stats);
  uint64_t by_token = 0, by_address = 0;
  cr__api_limit_refused(r->api->limit, &by_token, &by_address);
  help(&o, "connrun_api_rate_limited_total", "counter",
       "REST API requests refused by host.api.rate_limit (429), by what "
       "was limited: a token or a client address.");
  put(&o, "connrun_api_rate_limited_total{by=\"token\"} %" PRIu64 "\n",
      by_token);
  put(&o, "connrun_api_rate_limited_total{by=\"address\"} %" PRIu64 "\n",
      by_address);
  if (rc != 0 || o.nomem) {
    cr__free(o.buf);
    cr__api_error_rc(res, rc ? rc : CR_ENOMEM, "metrics");
    return;
  }
  res->status = 200;
  res->text = o.buf;
  res->text_len = o.len;
  res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
