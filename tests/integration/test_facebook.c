/* test_facebook.c: the facebook plugin, loaded from build/plugins through the
 * plugin host, against a fake Graph / Marketing API on loopback that follows
 * Meta's published shapes:
 *   - GET /{ver}/me/permissions -> {"data":[{"permission","status"}]}
 *     (https://developers.facebook.com/docs/graph-api/reference/user/permissions/)
 *   - errors {"error":{"message","type","code","error_subcode",
 *     "fbtrace_id"}}
 * (https://developers.facebook.com/docs/graph-api/guides/error-handling)
 *   - rate limiting: code 17 / 80000 with X-Business-Use-Case-Usage
 *     {"<business id>":[{"type","call_count","total_cputime","total_time",
 *     "estimated_time_to_regain_access"}]} (minutes) and X-Ad-Account-Usage
 *     {"acc_id_util_pct","reset_time_duration","ads_api_access_tier"}
 *     (https://developers.facebook.com/docs/graph-api/overview/rate-limiting)
 *   - GET /{ver}/act_{id}/insights with level, fields, time_range, limit,
 *     after -> {"data":[...],"paging":{"cursors":{"before","after"},
 *     "next"}} (https://developers.facebook.com/docs/marketing-api/insights/,
 *     https://developers.facebook.com/docs/graph-api/results)
 *   - POST /{ver}/{audience_id}/users, form field payload={"schema":[...],
 *     "data":[[...]]} -> {"audience_id","session_id","num_received",
 *     "num_invalid_entries","invalid_entry_samples"}
 *     (https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users/)
 * Health, reads (multi-page, incremental, resumed after the worker was
 * killed), rate limits with their wait, uploads with invalid entries, and
 * the normalised SHA-256 identifiers against known vectors. The token must
 * never reach a URL, a reason, a log line or the store. */
#include "testutil.h"

#include "config/diag.h"
#include "daemon/daemon.h"
#include "dest/dest.h"
#include "exec/exec_run.h"
#include "fake_http.h"
#include "plugin/health.h"
#include "plugin/host_api.h"
#include "plugin/plugin_host.h"
#include "plugin/worker_pool.h"
#include "store/store.h"
#include "util/redact.h"

#include <connrun/plugin_util.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "EAAGfakeSystemUserToken0123456789abcdefZZ"
#define BAD_TOKEN "EAAGrevokedToken9876543210zyxwvutsrqpQQ"
#define VER "v21.0"
#define ACCOUNT "111222333"
#define AUDIENCE "23850000000000001"
#define ROWS_PER_DAY 5
#define PAGE 2

/* ---- The fake Graph API ---------------------------------------------- */

enum fb_mode { M_NORMAL, M_NO_PERM, M_503, M_RATE, M_RATE_ACCOUNT };

struct fake_fb {
  enum fb_mode mode;
  pthread_mutex_t mu;
  char hang_at[32]; /* the insights page "DAY/after" hangs once */
  unsigned hang_ms;
  unsigned perm_delay_ms; /* delay of every /me/permissions answer */
  char bad_hash[65];      /* the fake reports this email hash invalid */
  int batches;
  int batch_rows[8];
  char first_row[8][200]; /* the first data row of each batch, as JSON */
};

static const char ERR_190[] =
    "{\"error\":{\"message\":\"Error validating access token: The session "
    "has been invalidated because the user changed their password or "
    "Facebook has changed the session for security reasons.\",\"type\":"
    "\"OAuthException\",\"code\":190,\"error_subcode\":460,\"fbtrace_id\":"
    "\"AbCdEfGh123\"}}";

/* Percent-decodes [s, s + n) into out (a '+' is a space). */
static void url_decode(const char *s, size_t n, char *out, size_t outlen) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < outlen; i++) {
    if (s[i] == '%' && i + 2 < n) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      out[k++] = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      out[k++] = s[i] == '+' ? ' ' : s[i];
    }
  }
  out[k] = '\0';
}

/* The decoded value of parameter name in a query/form text, or "". */
static void param(const char *q, const char *name, char *out, size_t outlen) {
  size_t nl = strlen(name);
  out[0] = '\0';
  for (const char *p = q; p != NULL && *p;) {
    size_t l = strcspn(p, "&");
    if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
      url_decode(p + nl + 1, l - nl - 1, out, outlen);
      return;
    }
    p += l + (p[l] == '&');
  }
}

static void rate_limited(struct fake_fb *f,
                         struct cr_fake_http_response *resp) {
  resp->status = 400;
  if (f->mode == M_RATE) {
    resp->headers[0] =
        "X-Business-Use-Case-Usage: {\"" ACCOUNT "\":[{\"type\":"
        "\"ads_insights\",\"call_count\":100,\"total_cputime\":25,"
        "\"total_time\":25,\"estimated_time_to_regain_access\":5}]}";
    resp->body = "{\"error\":{\"message\":\"(#17) User request limit "
                 "reached\",\"type\":\"OAuthException\",\"code\":17,"
                 "\"error_subcode\":2446079,\"fbtrace_id\":\"Rl1\"}}";
  } else {
    resp->headers[0] = "X-Ad-Account-Usage: {\"acc_id_util_pct\":100,"
                       "\"reset_time_duration\":120,\"ads_api_access_tier\":"
                       "\"development_access\"}";
    resp->body = "{\"error\":{\"message\":\"(#80000) There have been too "
                 "many calls from this ad-account.\",\"type\":"
                 "\"OAuthException\",\"code\":80000,\"fbtrace_id\":\"Rl2\"}}";
  }
}

static void permissions(struct fake_fb *f, struct cr_fake_http_response *resp) {
  resp->delay_ms = f->perm_delay_ms;
  resp->body = f->mode == M_NO_PERM
                   ? "{\"data\":[{\"permission\":\"public_profile\","
                     "\"status\":\"granted\"},{\"permission\":\"ads_read\","
                     "\"status\":\"declined\"}]}"
                   : "{\"data\":[{\"permission\":\"ads_read\",\"status\":"
                     "\"granted\"},{\"permission\":\"ads_management\","
                     "\"status\":\"granted\"},{\"permission\":"
                     "\"public_profile\",\"status\":\"granted\"}]}";
}

/* One page of ROWS_PER_DAY rows a day, PAGE a page; cursors "cN". */
static void insights(struct fake_fb *f, const struct cr_fake_http_request *req,
                     struct cr_fake_http_response *resp) {
  char range[128], after[64], day[16] = "", rows[2048] = "";
  param(req->query, "time_range", range, sizeof range);
  param(req->query, "after", after, sizeof after);
  json_t *tr = json_loads(range, 0, NULL);
  const char *since = json_string_value(json_object_get(tr, "since"));
  const char *until = json_string_value(json_object_get(tr, "until"));
  if (since != NULL && until != NULL && strcmp(since, until) == 0)
    snprintf(day, sizeof day, "%s", since);
  json_decref(tr);
  if (day[0] == '\0') {
    resp->status = 400;
    resp->body = "{\"error\":{\"message\":\"(#100) time_range\",\"type\":"
                 "\"OAuthException\",\"code\":100,\"fbtrace_id\":\"X\"}}";
    return;
  }
  pthread_mutex_lock(&f->mu);
  char at[96];
  snprintf(at, sizeof at, "%s/%s", day, after);
  if (f->hang_at[0] && strcmp(at, f->hang_at) == 0) {
    resp->delay_ms = f->hang_ms;
    f->hang_at[0] = '\0';
  }
  pthread_mutex_unlock(&f->mu);
  int from = after[0] ? atoi(after + 1) : 0;
  int to = from + PAGE < ROWS_PER_DAY ? from + PAGE : ROWS_PER_DAY;
  for (int i = from; i < to; i++) {
    size_t u = strlen(rows);
    snprintf(rows + u, sizeof rows - u,
             "%s{\"account_id\":\"" ACCOUNT "\",\"ad_id\":\"6000%d\","
             "\"impressions\":\"%d\",\"spend\":\"1.5\",\"date_start\":\"%s\","
             "\"date_stop\":\"%s\"}",
             i > from ? "," : "", i, 100 + i, day, day);
  }
  if (to < ROWS_PER_DAY)
    cr_fake_http_set_body(
        resp,
        "{\"data\":[%s],\"paging\":{\"cursors\":{\"before\":\"c%d\","
        "\"after\":\"c%d\"},\"next\":\"https://graph.facebook.com/" VER
        "/act_" ACCOUNT "/insights?access_token=x&after=c%d\"}}",
        rows, from, to, to);
  else
    cr_fake_http_set_body(resp,
                          "{\"data\":[%s],\"paging\":{\"cursors\":{"
                          "\"before\":\"c%d\",\"after\":\"c%d\"}}}",
                          rows, from, to);
}

static void users(struct fake_fb *f, const struct cr_fake_http_request *req,
                  struct cr_fake_http_response *resp) {
  char *payload = malloc(req->body_len + 1);
  param(req->body, "payload", payload, req->body_len + 1);
  json_t *j = json_loads(payload, 0, NULL);
  free(payload);
  json_t *data = json_object_get(j, "data");
  size_t n = json_array_size(data), invalid = 0;
  char sample[200] = "";
  for (size_t i = 0; i < n; i++) {
    const char *h =
        json_string_value(json_array_get(json_array_get(data, i), 0));
    if (h != NULL && strcmp(h, f->bad_hash) == 0) {
      invalid++;
      snprintf(sample, sizeof sample, "\"%s\":\"Invalid email\"", h);
    }
  }
  pthread_mutex_lock(&f->mu);
  if (f->batches < 8) {
    char *row = json_dumps(json_array_get(data, 0), JSON_COMPACT);
    f->batch_rows[f->batches] = (int)n;
    snprintf(f->first_row[f->batches], sizeof f->first_row[0], "%s",
             row ? row : "");
    free(row);
  }
  f->batches++;
  pthread_mutex_unlock(&f->mu);
  json_decref(j);
  cr_fake_http_set_body(resp,
                        "{\"audience_id\":\"" AUDIENCE "\",\"session_id\":"
                        "\"9778993\",\"num_received\":%zu,"
                        "\"num_invalid_entries\":%zu,"
                        "\"invalid_entry_samples\":{%s}}",
                        n, invalid, sample);
}

static void fake_facebook(void *ud, const struct cr_fake_http_request *req,
                          struct cr_fake_http_response *resp) {
  struct fake_fb *f = ud;
  const char *auth = cr_fake_http_header(req, "Authorization");
  if (f->mode == M_503) {
    resp->status = 503;
    resp->body = "{\"error\":{\"message\":\"Service temporarily "
                 "unavailable\",\"type\":\"FacebookApiException\",\"code\":2,"
                 "\"fbtrace_id\":\"S1\"}}";
    return;
  }
  if (auth == NULL || strcmp(auth, "Bearer " TOKEN) != 0) {
    resp->status = 400;
    resp->body = ERR_190;
    return;
  }
  if (f->mode == M_RATE || f->mode == M_RATE_ACCOUNT) {
    rate_limited(f, resp);
    return;
  }
  if (strcmp(req->path, "/" VER "/me/permissions") == 0)
    permissions(f, resp);
  else if (strcmp(req->path, "/" VER "/act_" ACCOUNT "/insights") == 0)
    insights(f, req, resp);
  else if (strcmp(req->method, "POST") == 0 &&
           strcmp(req->path, "/" VER "/" AUDIENCE "/users") == 0)
    users(f, req, resp);
  else {
    resp->status = 404;
    resp->body = "{\"error\":{\"message\":\"Unknown path components\","
                 "\"type\":\"OAuthException\",\"code\":2500,"
                 "\"fbtrace_id\":\"N\"}}";
  }
}

/* ---- Fixture ------------------------------------------------------------ */

struct lines {
  char *text[128];
  int n;
};

static void capture(void *ud, int level, const char *msg) {
  struct lines *l = ud;
  (void)level;
  if (l->n < 128)
    l->text[l->n++] = strdup(msg);
}

struct fx {
  cr_plugin_host *host;
  const cr_plugin *fb;
  struct fake_fb fake;
  cr_fake_http *srv;
  cr_redactor *red;
  struct lines log;
  char creds[256];
  char config[1024];
};

static struct fx *G;

static int group_setup(void **state) {
  (void)state;
  G = calloc(1, sizeof *G);
  if (G == NULL)
    return -1;
  G->fb = cr_test_load_bundled("facebook", &G->host);
  return G->fb != NULL ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  cr_plugin_host_free(G->host);
  free(G);
  return 0;
}

static int setup(void **state) {
  (void)state;
  memset(&G->fake, 0, sizeof G->fake);
  pthread_mutex_init(&G->fake.mu, NULL);
  G->log.n = 0;
  if (cr_fake_http_start(fake_facebook, &G->fake, &G->srv) != 0)
    return -1;
  if (cr_redactor_new(&G->red) != 0 || cr_redactor_add(G->red, TOKEN) ||
      cr_redactor_add(G->red, BAD_TOKEN))
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cr_fake_http_stop(G->srv);
  pthread_mutex_destroy(&G->fake.mu);
  cr_redactor_free(G->red);
  for (int i = 0; i < G->log.n; i++)
    free(G->log.text[i]);
  G->log.n = 0;
  return 0;
}

/* No log line, no text and no request URL holds a token. */
static void assert_no_token(const char *text) {
  const char *pieces[] = {TOKEN, BAD_TOKEN, "fakeSystemUser", "revokedToken"};
  for (size_t p = 0; p < 4; p++) {
    if (text != NULL)
      assert_null(strstr(text, pieces[p]));
    for (int i = 0; i < G->log.n; i++)
      assert_null(strstr(G->log.text[i], pieces[p]));
    for (size_t i = 0; i < cr_fake_http_count(G->srv); i++) {
      const struct cr_fake_http_request *r = cr_fake_http_request_at(G->srv, i);
      assert_true(r->query == NULL || strstr(r->query, pieces[p]) == NULL);
      assert_null(strstr(r->path, pieces[p]));
    }
  }
}

static const char *creds(const char *token) {
  snprintf(G->creds, sizeof G->creds, "{\"access_token\":\"%s\"}", token);
  return G->creds;
}

/* The work config: base_url of the fake (or url) plus extra members. */
static const char *config(const char *url, const char *extra) {
  snprintf(G->config, sizeof G->config,
           "{\"base_url\":\"%s/\",\"api_version\":\"" VER "\"%s%s}",
           url ? url : cr_fake_http_url(G->srv), extra ? "," : "",
           extra ? extra : "");
  return G->config;
}

static void params_for(struct cr_plugin_params *p, const char *cr,
                       const char *cfg) {
  memset(p, 0, sizeof *p);
  p->struct_size = sizeof *p;
  p->authorization_id = "meta-ads";
  p->auth_method = "token";
  p->credentials_json = cr;
  p->config_json = cfg;
  p->work_id = "insights";
}

static void check(const char *cr, const char *cfg, long timeout_ms,
                  struct cr_health_outcome *out) {
  struct cr_plugin_params params;
  params_for(&params, cr, cfg);
  struct cr_health_options opts;
  memset(&opts, 0, sizeof opts);
  opts.log = capture;
  opts.log_ud = &G->log;
  opts.timeout_ms = timeout_ms;
  assert_int_equal(cr_health_check_ex(G->fb, &params, G->red, &opts, out), 0);
  assert_true(out->reason[0] != '\0');
  assert_no_token(out->reason);
}

/* ---- Descriptor -----------------------------------------------------------
 */

static void test_descriptor(void **state) {
  (void)state;
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->fb);
  assert_string_equal(d->name, "facebook");
  assert_int_equal(d->capabilities, CR_PLUGIN_CAP_HEALTH_CHECK |
                                        CR_PLUGIN_CAP_READ |
                                        CR_PLUGIN_CAP_WRITE);
  assert_true(cr_plugin_accepts_method(G->fb, "token"));
  json_t *s = json_loads(d->streams_json, 0, NULL);
  assert_int_equal(json_array_size(s), 1);
  json_t *st = json_array_get(s, 0);
  assert_string_equal(json_string_value(json_object_get(st, "name")),
                      "ads_insights");
  json_t *pk = json_object_get(st, "primary_key");
  assert_int_equal(json_array_size(pk), 3);
  assert_string_equal(json_string_value(json_array_get(pk, 2)), "level_id");
  assert_non_null(json_object_get(st, "default_schedule"));
  json_decref(s);
  json_t *cs = json_loads(d->config_schema, 0, NULL);
  assert_non_null(cs);
  json_decref(cs);
}

/* ---- Health ----------------------------------------------------------------
 */

/* A check with token and extra config must give status and a reason
 * holding part. */
static void check_status(const char *token, const char *extra, int status,
                         const char *part) {
  struct cr_health_outcome out;
  check(creds(token), config(NULL, extra), 5000, &out);
  assert_int_equal(out.status, status);
  assert_int_equal(out.result, CR_PLUGIN_OK);
  assert_non_null(strstr(out.reason, part));
  assert_int_equal(out.requests, 1);
}

static void test_health_healthy(void **state) {
  (void)state;
  check_status(TOKEN, "\"ad_account_ids\":[\"act_" ACCOUNT "\"]",
               CR_PLUGIN_HEALTH_HEALTHY,
               "access token valid (granted: ads_read, ads_management, "
               "public_profile)");
  const struct cr_fake_http_request *r = cr_fake_http_request_at(G->srv, 0);
  assert_string_equal(r->path, "/" VER "/me/permissions");
  assert_null(r->query);
  assert_string_equal(cr_fake_http_header(r, "Authorization"), "Bearer " TOKEN);
}

static void test_health_revoked(void **state) {
  (void)state;
  check_status(BAD_TOKEN, NULL, CR_PLUGIN_HEALTH_UNHEALTHY,
               "Facebook error 190/460 (OAuthException, HTTP 400): Error "
               "validating access token: The session has been invalidated");
}

static void test_health_missing_permission(void **state) {
  (void)state;
  G->fake.mode = M_NO_PERM;
  check_status(TOKEN, "\"ad_account_ids\":[\"" ACCOUNT "\"]",
               CR_PLUGIN_HEALTH_UNHEALTHY,
               "access token lacks permission ads_read (granted: "
               "public_profile)");
  /* An export work needs ads_management. */
  check_status(TOKEN, "\"audience_id\":\"" AUDIENCE "\"",
               CR_PLUGIN_HEALTH_UNHEALTHY, "lacks permission ads_management");
}

/* A check against url (NULL: the fake) must give Unknown with result and a
 * reason holding part. Returns the wait asked for. */
static int64_t check_unknown(const char *url, long timeout_ms, int result,
                             const char *part) {
  struct cr_health_outcome out;
  check(creds(TOKEN), config(url, NULL), timeout_ms, &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_int_equal(out.result, result);
  assert_non_null(strstr(out.reason, part));
  return out.retry_after_ms;
}

static void test_health_unknown(void **state) {
  (void)state;
  G->fake.mode = M_503;
  check_unknown(NULL, 5000, CR_PLUGIN_ERR_TRANSIENT, "HTTP 503");
  /* Nobody listening. */
  char dead[64];
  assert_int_equal(cr_fake_http_dead_url(dead, sizeof dead), 0);
  check_unknown(dead, 5000, CR_PLUGIN_ERR_TRANSIENT, "cannot reach Facebook: ");
  /* An answer slower than the request timeout. */
  G->fake.mode = M_NORMAL;
  G->fake.perm_delay_ms = 3000;
  check_unknown(NULL, 300, CR_PLUGIN_ERR_TRANSIENT, "cannot reach Facebook: ");
}

static void test_health_rate_limited(void **state) {
  (void)state;
  G->fake.mode = M_RATE;
  /* estimated_time_to_regain_access is 5 minutes. */
  assert_int_equal(check_unknown(NULL, 5000, CR_PLUGIN_ERR_RATE_LIMITED,
                                 "rate limited by Facebook (code 17/2446079, "
                                 "HTTP 400), retry in 300 s"),
                   5 * 60 * 1000);
}

/* ---- Read -------------------------------------------------------------------
 */

struct collect {
  int n;
  char *record[64];
  int ncp;
  char checkpoint[32][512];
  const char *state;
};

static int c_emit(void *ud, const char *stream, const char *json, size_t len) {
  struct collect *c = ud;
  assert_string_equal(stream, "ads_insights");
  if (c->n == 64)
    return CR_PLUGIN_ERR_SYSTEM;
  c->record[c->n++] = strndup(json, len);
  return 0;
}

static int c_checkpoint(void *ud, const char *state_json) {
  struct collect *c = ud;
  if (c->ncp < 32)
    snprintf(c->checkpoint[c->ncp++], sizeof c->checkpoint[0], "%s",
             state_json);
  return 0;
}

static const char *c_state(void *ud) { return ((struct collect *)ud)->state; }

static void collect_free(struct collect *c) {
  for (int i = 0; i < c->n; i++)
    free(c->record[i]);
}

/* Runs create -> read (or write when records) -> destroy in-process. */
static int run(const char *cfg, const char *prior_state, struct collect *c,
               cr_plugin_ctx *ctx, const char *const *records, size_t n) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->fb);
  struct cr_plugin_params params;
  params_for(&params, creds(TOKEN), cfg);
  memset(c, 0, sizeof *c);
  c->state = prior_state;
  cr_plugin_ctx_init(ctx, params.authorization_id, G->red);
  cr_plugin_ctx_set_log(ctx, capture, &G->log);
  struct cr_plugin_sinks sinks = {
      .ud = c, .emit = c_emit, .checkpoint = c_checkpoint, .state = c_state};
  cr_plugin_ctx_set_sinks(ctx, &sinks);
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(
      d->create(cr_host_api_default(), &params, &inst, err, sizeof err), 0);
  int rc = records != NULL ? d->write(inst, ctx, "audience_users", records, n)
                           : d->read(inst, ctx);
  d->destroy(inst);
  cr_plugin_ctx_cleanup(ctx);
  return rc;
}

#define READ_CFG(extra)                                                        \
  "\"ad_account_ids\":[\"act_" ACCOUNT "\"],\"fields\":[\"impressions\","      \
  "\"spend\"],\"level\":\"ad\",\"start_date\":\"2024-03-01\","                 \
  "\"end_date\":\"2024-03-02\",\"page_size\":2" extra

static void test_read_pages_and_increment(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  int rc = run(config(NULL, READ_CFG(",\"lookback_days\":1")), NULL, &c, &ctx,
               NULL, 0);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(c.n, 2 * ROWS_PER_DAY);
  /* Rows carry level and level_id first, then the row as Facebook sent it. */
  json_t *r = json_loads(c.record[6], 0, NULL);
  assert_string_equal(json_string_value(json_object_get(r, "level")), "ad");
  assert_string_equal(json_string_value(json_object_get(r, "level_id")),
                      "60001");
  assert_string_equal(json_string_value(json_object_get(r, "account_id")),
                      ACCOUNT);
  assert_string_equal(json_string_value(json_object_get(r, "date_start")),
                      "2024-03-02");
  json_decref(r);
  /* 3 pages a day, a checkpoint after each. */
  assert_int_equal(cr_fake_http_count(G->srv), 6);
  assert_int_equal(c.ncp, 6);
  assert_string_equal(c.checkpoint[0],
                      "{\"accounts\":{\"" ACCOUNT "\":{\"complete\":\"\","
                      "\"day\":\"2024-03-01\",\"after\":\"c2\"}}}");
  assert_string_equal(c.checkpoint[5],
                      "{\"accounts\":{\"" ACCOUNT "\":{\"complete\":"
                      "\"2024-03-02\",\"day\":\"\",\"after\":\"\"}}}");
  const struct cr_fake_http_request *q = cr_fake_http_request_at(G->srv, 1);
  char v[256];
  param(q->query, "level", v, sizeof v);
  assert_string_equal(v, "ad");
  param(q->query, "fields", v, sizeof v);
  assert_string_equal(v, "account_id,date_start,date_stop,ad_id,impressions,"
                         "spend");
  param(q->query, "after", v, sizeof v);
  assert_string_equal(v, "c2");
  param(q->query, "time_range", v, sizeof v);
  assert_string_equal(v, "{\"since\":\"2024-03-01\",\"until\":\"2024-03-01\"}");
  char last[512];
  snprintf(last, sizeof last, "%s", c.checkpoint[5]);
  collect_free(&c);

  /* The next run re-reads the lookback window (1 day) only. */
  rc = run(config(NULL, READ_CFG(",\"lookback_days\":1")), last, &c, &ctx, NULL,
           0);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(c.n, ROWS_PER_DAY);
  assert_int_equal(cr_fake_http_count(G->srv), 9);
  q = cr_fake_http_request_at(G->srv, 6);
  param(q->query, "time_range", v, sizeof v);
  assert_string_equal(v, "{\"since\":\"2024-03-02\",\"until\":\"2024-03-02\"}");
  collect_free(&c);
  assert_no_token(NULL);
}

static void test_read_resumes_mid_day(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  const char *st = "{\"accounts\":{\"" ACCOUNT "\":{\"complete\":"
                   "\"2024-03-01\",\"day\":\"2024-03-02\",\"after\":\"c4\"}}}";
  int rc = run(config(NULL, READ_CFG(",\"lookback_days\":5")), st, &c, &ctx,
               NULL, 0);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(c.n, 1);
  assert_int_equal(cr_fake_http_count(G->srv), 1);
  char v[64];
  param(cr_fake_http_request_at(G->srv, 0)->query, "after", v, sizeof v);
  assert_string_equal(v, "c4");
  collect_free(&c);
}

static void test_read_rate_limited(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  G->fake.mode = M_RATE_ACCOUNT;
  int rc = run(config(NULL, READ_CFG("")), NULL, &c, &ctx, NULL, 0);
  assert_int_equal(rc, CR_PLUGIN_ERR_RATE_LIMITED);
  /* X-Ad-Account-Usage reset_time_duration: 120 s. */
  assert_int_equal(ctx.last_error.retry_after_ms, 120000);
  assert_int_equal(c.n, 0);
  assert_int_equal(c.ncp, 0);
  G->fake.mode = M_RATE;
  rc = run(config(NULL, READ_CFG("")), NULL, &c, &ctx, NULL, 0);
  assert_int_equal(rc, CR_PLUGIN_ERR_RATE_LIMITED);
  assert_int_equal(ctx.last_error.retry_after_ms, 300000);
  G->fake.mode = M_503;
  rc = run(config(NULL, READ_CFG("")), NULL, &c, &ctx, NULL, 0);
  assert_int_equal(rc, CR_PLUGIN_ERR_TRANSIENT);
  assert_no_token(ctx.last_error.message);
}

/* ---- Read in a worker process, killed and resumed -------------------------
 */

struct run_fx {
  char *dir;
  cr_daemon *d;
  cr_worker_pool *pool;
  struct cr_exec_env env;
};

static void quiet(void *ud, int level, const char *line) {
  (void)level;
  capture(ud, 0, line);
}

static void run_fx_open(struct run_fx *f) {
  memset(f, 0, sizeof *f);
  f->dir = cr_test_mkdtemp("facebook");
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "host:\n"
           "  data_dir: \"%s/data\"\n"
           "  plugin_dirs: [\"%s\"]\n"
           "authorizations:\n"
           "  - id: meta\n"
           "    provider: facebook\n"
           "    method: token\n"
           "    credentials: { access_token: \"" TOKEN "\" }\n"
           "works:\n"
           "  - id: w\n"
           "    provider: facebook\n"
           "    authorization: meta\n"
           "    isolation: process\n"
           "    max_attempts: 1\n"
           "    timeout: 1s\n"
           "    destination: { type: jsonl, path: \"%s/out\" }\n"
           "    config: { base_url: \"%s\", api_version: \"" VER "\",\n"
           "      ad_account_ids: [\"act_" ACCOUNT "\"], level: ad,\n"
           "      start_date: \"2024-03-01\", end_date: \"2024-03-02\",\n"
           "      page_size: 2, lookback_days: 0 }\n",
           f->dir, CR_PLUGIN_DIR, f->dir, cr_fake_http_url(G->srv));
  cr_test_exec_env(f->dir, cfg, &f->d, &f->pool, &f->env);
  f->env.log = quiet;
  f->env.log_ud = &G->log;
}

static void run_fx_close(struct run_fx *f) {
  cr_worker_pool_free(f->pool);
  cr_daemon_free(f->d);
  cr_test_rmtree(f->dir);
  free(f->dir);
}

static void run_work(struct run_fx *f, struct cr_exec_outcome *out) {
  int64_t id = 0;
  assert_int_equal(cr_store_exec_create(f->env.store, "w", &id), 0);
  struct cr_exec_claim c;
  memset(&c, 0, sizeof c);
  assert_int_equal(cr_store_exec_claim_one(f->env.store, id, "t", 60000, &c),
                   0);
  assert_int_equal(cr_exec_run(&f->env, &c, out), 0);
  free(c.work_id);
}

/* The latest committed state of work w (malloc), or NULL. */
static char *latest_state(struct run_fx *f) {
  struct cr_sync_state_rec r;
  memset(&r, 0, sizeof r);
  if (cr_store_sync_state_latest(f->env.store, "w", &r) != 0)
    return NULL;
  char *s = strdup(r.state_json);
  cr_sync_state_rec_clear(&r);
  return s;
}

/* Counts the lines of the output and checks no (date, ad) pair is lost. */
static int output_rows(struct run_fx *f, int *distinct) {
  char path[4096];
  snprintf(path, sizeof path, "%s/out/ads_insights.jsonl", f->dir);
  char *txt = cr_test_read_file(path);
  int n = 0, seen[2][ROWS_PER_DAY] = {{0}};
  *distinct = 0;
  for (char *line = txt; line != NULL && *line;) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl);
    *nl = '\0';
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    const char *day = json_string_value(json_object_get(j, "date_start"));
    int ad = atoi(json_string_value(json_object_get(j, "level_id")) + 4);
    int di = strcmp(day, "2024-03-02") == 0;
    *distinct += !seen[di][ad];
    seen[di][ad] = 1;
    json_decref(j);
    n++;
    line = nl + 1;
  }
  free(txt);
  return n;
}

static void test_read_resumes_after_worker_killed(void **state) {
  (void)state;
  struct run_fx f;
  run_fx_open(&f);
  /* Day 2's third page hangs past the work's 1 s timeout: the worker is
   * killed after the checkpoint of day 2's second page. */
  snprintf(G->fake.hang_at, sizeof G->fake.hang_at, "2024-03-02/c4");
  G->fake.hang_ms = 2500;
  struct cr_exec_outcome o;
  run_work(&f, &o);
  assert_int_equal(o.state, CR_EXEC_FAILED);
  assert_non_null(strstr(o.error, "timed out"));
  char *st = latest_state(&f);
  assert_non_null(st);
  assert_string_equal(st, "{\"accounts\":{\"" ACCOUNT "\":{\"complete\":"
                          "\"2024-03-01\",\"day\":\"2024-03-02\",\"after\":"
                          "\"c4\"}}}");
  free(st);
  int distinct = 0;
  assert_int_equal(output_rows(&f, &distinct), ROWS_PER_DAY + 4);
  /* The hanging answer still blocks the fake: restart it on its port. */
  uint16_t port = cr_fake_http_port(G->srv);
  cr_fake_http_stop(G->srv);
  assert_int_equal(
      cr_fake_http_start_port(fake_facebook, &G->fake, port, &G->srv), 0);
  size_t before = 0;

  /* The next run starts at that page and completes. */
  run_work(&f, &o);
  assert_int_equal(o.state, CR_EXEC_COMPLETED);
  assert_int_equal(o.records, 1);
  char v[64];
  const struct cr_fake_http_request *q =
      cr_fake_http_request_at(G->srv, before);
  param(q->query, "after", v, sizeof v);
  assert_string_equal(v, "c4");
  assert_int_equal(output_rows(&f, &distinct), 2 * ROWS_PER_DAY);
  assert_int_equal(distinct, 2 * ROWS_PER_DAY);
  st = latest_state(&f);
  assert_string_equal(st, "{\"accounts\":{\"" ACCOUNT "\":{\"complete\":"
                          "\"2024-03-02\",\"day\":\"\",\"after\":\"\"}}}");
  free(st);
  run_fx_close(&f);
  assert_no_token(NULL);
}

/* ---- Write
 * ------------------------------------------------------------------- */

/* SHA-256 of normalised identifiers, computed independently:
 *   printf '%s' 'john.doe@example.com' | sha256sum  (" John.Doe@Example.COM ")
 *   printf '%s' '16505551234' | sha256sum          ("+1 (650) 555-1234")
 * Each constant is checked against EVP below and against the plugin. */
struct vec {
  const char *raw, *key, *normalised;
};

static const struct vec VECS[] = {
    {" John.Doe@Example.COM ", "email", "john.doe@example.com"},
    {"+1 (650) 555-1234", "phone", "16505551234"},
    {"0044 20 7946 0958", "phone", "442079460958"},
};

static void sha_hex(const char *s, char out[65]) {
  char *argv[] = {"/bin/sh", "-c", "printf '%s' \"$0\" | sha256sum", (char *)s,
                  NULL};
  char *o = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &o), 0);
  assert_non_null(o);
  memcpy(out, o, 64);
  out[64] = '\0';
  free(o);
}

static void test_write_hashing_vectors(void **state) {
  (void)state;
  char recs[3][128];
  const char *records[3];
  for (int i = 0; i < 3; i++) {
    snprintf(recs[i], sizeof recs[i], "{\"%s\":\"%s\"}", VECS[i].key,
             VECS[i].raw);
    records[i] = recs[i];
  }
  struct collect c;
  cr_plugin_ctx ctx;
  /* One batch, schema EMAIL + PHONE: each row has one value, one blank. */
  int rc = run(config(NULL, "\"audience_id\":\"" AUDIENCE "\","
                            "\"audience_schema\":[\"EMAIL\",\"PHONE\"]"),
               NULL, &c, &ctx, records, 3);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(G->fake.batches, 1);
  assert_int_equal(G->fake.batch_rows[0], 3);
  char h[65], want[200];
  sha_hex(VECS[0].normalised, h);
  /* A well-known vector: sha256("john.doe@example.com"). */
  assert_string_equal(
      h, "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f");
  snprintf(want, sizeof want, "[\"%s\",\"\"]", h);
  assert_string_equal(G->fake.first_row[0], want);
  const struct cr_fake_http_request *q = cr_fake_http_request_at(G->srv, 0);
  assert_string_equal(q->method, "POST");
  assert_string_equal(cr_fake_http_header(q, "Content-Type"),
                      "application/x-www-form-urlencoded");
  char *payload = malloc(q->body_len + 1);
  param(q->body, "payload", payload, q->body_len + 1);
  json_t *j = json_loads(payload, 0, NULL);
  free(payload);
  assert_non_null(j);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(j, "schema"), 1)),
      "PHONE");
  for (int i = 1; i < 3; i++) {
    sha_hex(VECS[i].normalised, h);
    json_t *row = json_array_get(json_object_get(j, "data"), (size_t)i);
    assert_string_equal(json_string_value(json_array_get(row, 0)), "");
    assert_string_equal(json_string_value(json_array_get(row, 1)), h);
  }
  json_decref(j);
  /* No raw identifier left the plugin. */
  assert_null(strstr(q->body, "example"));
  assert_null(strstr(q->body, "555"));
}

/* Through the plugin destination (ABI 1.2, api->record_failed): the entry
 * Facebook names in invalid_entry_samples and the record without any
 * identifier are reported one by one with their index in the write and the
 * reason (never the identifier or its hash); the batch succeeds. */
static void test_write_failures_per_record(void **state) {
  (void)state;
  enum { N = 7 };
  sha_hex("bounce@example.com", G->fake.bad_hash);
  struct cr_plugin_params params;
  params_for(&params, creds(TOKEN),
             config(NULL, "\"audience_id\":\"" AUDIENCE "\","
                          "\"batch_size\":3"));
  cr_dest *d =
      cr_test_open_plugin_dest(G->fb, &params, G->red, capture, &G->log);
  for (int i = 0; i < N; i++) {
    char rec[96];
    if (i == 4)
      snprintf(rec, sizeof rec, "{\"email\":\"Bounce@Example.com\"}");
    else if (i == 6)
      snprintf(rec, sizeof rec, "{\"name\":\"no identifier\"}");
    else
      snprintf(rec, sizeof rec, "{\"email\":\"user%d@example.com\"}", i);
    assert_int_equal(cr_dest_write(d, "audience_users", rec, strlen(rec)), 0);
  }
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(cr_dest_records_failed(d), 2);
  assert_int_equal(G->fake.batches, 2); /* 3 + 3 rows; record 6 not sent */
  int seen4 = 0, seen6 = 0;
  for (int i = 0; i < G->log.n; i++) {
    seen4 += strstr(G->log.text[i],
                    "facebook rejected record 4 of a batch of 7 (stream "
                    "audience_users): Facebook: Invalid email") != NULL;
    seen6 +=
        strstr(G->log.text[i], "rejected record 6 of a batch of 7 (stream "
                               "audience_users): no identifier of the audience "
                               "schema") != NULL;
    assert_null(strstr(G->log.text[i], "ounce"));
    assert_null(strstr(G->log.text[i], G->fake.bad_hash));
    /* Itemised: no aggregate warning left over. */
    assert_null(strstr(G->log.text[i], "entries invalid"));
  }
  assert_int_equal(seen4, 1);
  assert_int_equal(seen6, 1);
  cr_dest_close(d);
}

static void test_write_batches_and_invalid(void **state) {
  (void)state;
  enum { N = 7 };
  char recs[N][96];
  const char *records[N];
  for (int i = 0; i < N; i++) {
    snprintf(recs[i], sizeof recs[i], "{\"email\":\"user%d@example.com\"}", i);
    records[i] = recs[i];
  }
  snprintf(recs[4], sizeof recs[4], "{\"email\":\"Bounce@Example.com\"}");
  snprintf(recs[6], sizeof recs[6], "{\"name\":\"no identifier\"}");
  sha_hex("bounce@example.com", G->fake.bad_hash);
  struct collect c;
  cr_plugin_ctx ctx;
  int rc = run(config(NULL, "\"audience_id\":\"" AUDIENCE "\","
                            "\"batch_size\":3"),
               NULL, &c, &ctx, records, N);
  assert_int_equal(rc, CR_PLUGIN_OK);
  /* 7 records in batches of 3: 3 + 3 (one invalid) + 0 sent (no id). */
  assert_int_equal(G->fake.batches, 2);
  assert_int_equal(G->fake.batch_rows[0], 3);
  assert_int_equal(G->fake.batch_rows[1], 3);
  int warned_invalid = 0, warned_skip = 0;
  for (int i = 0; i < G->log.n; i++) {
    if (strstr(G->log.text[i], "1 of 3 entries invalid (session 9778993)"))
      warned_invalid = 1;
    if (strstr(G->log.text[i], "1 of 1 records have no identifier"))
      warned_skip = 1;
    assert_null(strstr(G->log.text[i], "bounce"));
    assert_null(strstr(G->log.text[i], G->fake.bad_hash));
  }
  assert_true(warned_invalid);
  assert_true(warned_skip);

  /* A batch with nothing valid fails as a config error. */
  const char *only_bad[] = {"{\"email\":\"bounce@example.com\"}"};
  rc = run(config(NULL, "\"audience_id\":\"" AUDIENCE "\""), NULL, &c, &ctx,
           only_bad, 1);
  assert_int_equal(rc, CR_PLUGIN_ERR_CONFIG);
  assert_non_null(strstr(ctx.last_error.message, "all 1 entries invalid"));
  /* Rate limited uploads carry the wait. */
  G->fake.mode = M_RATE;
  rc = run(config(NULL, "\"audience_id\":\"" AUDIENCE "\""), NULL, &c, &ctx,
           records, 2);
  assert_int_equal(rc, CR_PLUGIN_ERR_RATE_LIMITED);
  assert_int_equal(ctx.last_error.retry_after_ms, 300000);
  assert_no_token(ctx.last_error.message);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor),
      cmocka_unit_test_setup_teardown(test_health_healthy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_revoked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_missing_permission, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_rate_limited, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_read_pages_and_increment, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_read_resumes_mid_day, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_read_rate_limited, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_resumes_after_worker_killed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_hashing_vectors, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_failures_per_record, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_batches_and_invalid, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
