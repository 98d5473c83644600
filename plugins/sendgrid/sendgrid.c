/* sendgrid.c: the "sendgrid" provider plugin, for the Twilio SendGrid v3
 * Web API (https://api.sendgrid.com), following its documented shapes.
 *
 * Authorization: method "api_key"; credentials {"api_key": "SG....",
 * "base_url": "https://api.sendgrid.com"} (base_url optional: the EU region
 * https://api.eu.sendgrid.com, or a loopback fake in tests). Every request
 * carries "Authorization: Bearer <api_key>".
 *
 * health_check: GET /v3/scopes, which returns the scopes of the key itself:
 *   200 {"scopes":[...]}  with marketing.read -> Healthy "API key valid (N
 *                         scopes)"; without it -> Unhealthy "API key lacks
 *                         scope marketing.read (N scopes granted)", since
 *                         the contacts stream needs it
 *   401 {"errors":[{"field":null,"message":"authorization required"}]}
 *                      -> Unhealthy "API key rejected by SendGrid (401:
 *                         authorization required)"
 *   403                -> Unhealthy "API key lacks permission ... (403: ...)"
 *   429                -> Unknown; returns CR_PLUGIN_ERR_RATE_LIMITED with
 *                         the wait from Retry-After or X-RateLimit-Reset
 *                         (a Unix time, SendGrid's documented header)
 *   5xx, transport     -> Unknown; CR_PLUGIN_ERR_TRANSIENT ("cannot reach
 *                         SendGrid: ..." for transport errors)
 *
 * read: stream "contacts" from GET /v3/marketing/contacts
 * ({"result":[{"id":..,"email":..,...}],"contact_count":N,"_metadata":{}}):
 * each element of "result" is emitted as one record, then a checkpoint
 * {"synced_at":"<UTC ISO 8601>"} is proposed. SendGrid documents that this
 * endpoint returns at most the 50 most recent contacts (pagination is
 * deprecated); a full sync needs the asynchronous export API
 * (POST /v3/marketing/contacts/exports), which this version does not use.
 *
 * write: stream "contacts" upserted into Marketing Contacts (PUT
 * /v3/marketing/contacts with config.list_ids, plus the list named
 * config.list_name, found or created once), each batch's asynchronous
 * job followed until it completes (config.job_poll_ms, job_timeout_s). On a
 * host with ABI 1.2 an "errored" job's refused contacts are found by email
 * and reported per record (see sg_itemise); a "failed" job, or an errored
 * one on an older host, is a config error naming the refused count.
 *
 * The plugin depends on the SDK headers only (plugin.h + plugin_util.h for
 * logging and JSON reading); it links nothing but libc.
 */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SG_DEFAULT_BASE_URL "https://api.sendgrid.com"
#define SG_STREAM "contacts"
#define SG_REQUIRED_SCOPE "marketing.read"
#define SG_KEY_MAX 256
#define SG_URL_MAX 512
#define SG_MSG_MAX 160

/* ---- Schemas and streams
 * ------------------------------------------------------ */

static const char sg_credentials_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
    "\"api_key\":{\"type\":\"string\",\"pattern\":\"^SG\\\\.\","
    "\"minLength\":4,\"maxLength\":255},"
    "\"base_url\":{\"type\":\"string\",\"pattern\":\"^https?://\","
    "\"maxLength\":400}},"
    "\"required\":[\"api_key\"],"
    "\"additionalProperties\":false}";

static const char sg_config_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{\"streams\":{\"type\":\"array\","
    "\"items\":{\"type\":\"string\",\"enum\":[\"contacts\"]}},"
    "\"list_ids\":{\"type\":\"array\",\"maxItems\":100,"
    "\"items\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":64}},"
    "\"list_name\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":100},"
    "\"job_poll_ms\":{\"type\":\"integer\",\"minimum\":1,"
    "\"maximum\":60000},"
    "\"job_timeout_s\":{\"type\":\"integer\",\"minimum\":1,"
    "\"maximum\":86400}},"
    "\"additionalProperties\":false}";

static const char sg_streams[] = "[{\"name\":\"contacts\",\"primary_key\":"
                                 "[\"id\"],\"default_schedule\":\"1h\"}]";

/* ---- The instance
 * ------------------------------------------------------------ */

struct sendgrid {
  const struct cr_host_api *api;
  char base_url[SG_URL_MAX];         /* without a trailing '/' */
  char auth_header[SG_KEY_MAX + 32]; /* "Authorization: Bearer <key>" */
  int wants_contacts;
  char list_ids[2048];     /* write: the JSON array text, "[]" by default */
  char list_name[128];     /* write: a list found or created by name, "" */
  int list_resolved;       /* list_name's id was added to list_ids */
  long long job_poll_ms;   /* write: between polls of an upsert job */
  long long job_timeout_s; /* write: how long a job may stay pending */
};

static void sg_wipe(void *p, size_t n) {
  volatile unsigned char *v = p;
  while (n-- > 0)
    *v++ = 0;
}

static int sg_key_chars_ok(const char *key) {
  for (const unsigned char *p = (const unsigned char *)key; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f)
      return 0;
  return 1;
}

static int sg_parse_base_url(struct sendgrid *sg, const char *json,
                             char *errbuf, size_t errlen) {
  const char *raw;
  size_t rawlen;
  snprintf(sg->base_url, sizeof sg->base_url, "%s", SG_DEFAULT_BASE_URL);
  if (cr_json_get_raw(json, "base_url", &raw, &rawlen) != 0)
    return CR_PLUGIN_OK;
  if (cr_json_get_string(json, "base_url", sg->base_url, sizeof sg->base_url) !=
          0 ||
      (strncmp(sg->base_url, "https://", 8) != 0 &&
       strncmp(sg->base_url, "http://", 7) != 0)) {
    snprintf(errbuf, errlen, "base_url must be an http(s) URL");
    return CR_PLUGIN_ERR_CONFIG;
  }
  size_t n = strlen(sg->base_url);
  while (n > 0 && sg->base_url[n - 1] == '/')
    sg->base_url[--n] = '\0';
  return CR_PLUGIN_OK;
}

/* Reads api_key (into the Authorization header) and base_url. */
static int sg_parse_credentials(struct sendgrid *sg, const char *json,
                                char *errbuf, size_t errlen) {
  char key[SG_KEY_MAX];
  int rc = CR_PLUGIN_ERR_CONFIG;
  if (json == NULL || cr_json_get_string(json, "api_key", key, sizeof key) != 0)
    snprintf(errbuf, errlen,
             "credentials need an api_key string of at most %d bytes",
             SG_KEY_MAX - 1);
  else if (strncmp(key, "SG.", 3) != 0)
    snprintf(errbuf, errlen,
             "api_key must start with \"SG.\" (a SendGrid API key)");
  else if (!sg_key_chars_ok(key))
    snprintf(errbuf, errlen, "api_key contains invalid characters");
  else
    rc = CR_PLUGIN_OK;
  if (rc == CR_PLUGIN_OK) {
    snprintf(sg->auth_header, sizeof sg->auth_header,
             "Authorization: Bearer %s", key);
    rc = sg_parse_base_url(sg, json, errbuf, errlen);
  }
  sg_wipe(key, sizeof key);
  return rc;
}

/* Reads which streams the work wants (all when config or streams absent). */
static int sg_parse_config(struct sendgrid *sg, const char *json, char *errbuf,
                           size_t errlen) {
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  const char *raw;
  size_t rawlen;
  sg->wants_contacts = 1;
  snprintf(sg->list_ids, sizeof sg->list_ids, "[]");
  sg->job_poll_ms = 2000;
  sg->job_timeout_s = 600;
  if (json != NULL) {
    long long v;
    if (cr_json_get_raw(json, "list_ids", &raw, &rawlen) == 0 &&
        rawlen < sizeof sg->list_ids)
      snprintf(sg->list_ids, sizeof sg->list_ids, "%.*s", (int)rawlen, raw);
    if (cr_json_get_raw(json, "list_name", &raw, &rawlen) == 0 &&
        (cr_json_get_string(json, "list_name", sg->list_name,
                            sizeof sg->list_name) != 0 ||
         sg->list_name[0] == '\0' || strlen(sg->list_name) > 100)) {
      snprintf(errbuf, errlen, "config.list_name must be 1 to 100 characters");
      return CR_PLUGIN_ERR_CONFIG;
    }
    if (cr_json_get_int(json, "job_poll_ms", &v) == 0 && v > 0)
      sg->job_poll_ms = v;
    if (cr_json_get_int(json, "job_timeout_s", &v) == 0 && v > 0)
      sg->job_timeout_s = v;
  }
  if (json == NULL || cr_json_get_raw(json, "streams", &raw, &rawlen) != 0)
    return CR_PLUGIN_OK;
  if (cr_json_array_begin(&it, json, "streams") != 0) {
    snprintf(errbuf, errlen, "config.streams must be an array of names");
    return CR_PLUGIN_ERR_CONFIG;
  }
  sg->wants_contacts = 0;
  int r;
  while ((r = cr_json_array_next(&it, &e, &n)) == 1) {
    char name[64];
    if (cr_json_string_decode(e, n, name, sizeof name) == 0 &&
        strcmp(name, SG_STREAM) == 0)
      sg->wants_contacts = 1;
  }
  if (r < 0) {
    snprintf(errbuf, errlen, "config.streams is malformed");
    return CR_PLUGIN_ERR_CONFIG;
  }
  return CR_PLUGIN_OK;
}

static int sg_create(const struct cr_host_api *api,
                     const struct cr_plugin_params *params, void **instance_out,
                     char *errbuf, size_t errlen) {
  struct sendgrid *sg = api->alloc(sizeof *sg);
  if (sg == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  memset(sg, 0, sizeof *sg);
  sg->api = api;
  int rc = sg_parse_credentials(sg, params->credentials_json, errbuf, errlen);
  if (rc == CR_PLUGIN_OK)
    rc = sg_parse_config(sg, params->config_json, errbuf, errlen);
  if (rc != CR_PLUGIN_OK) {
    sg_wipe(sg, sizeof *sg);
    api->free(sg);
    return rc;
  }
  *instance_out = sg;
  return CR_PLUGIN_OK;
}

static void sg_destroy(void *instance) {
  struct sendgrid *sg = instance;
  if (sg == NULL)
    return;
  const struct cr_host_api *api = sg->api;
  sg_wipe(sg, sizeof *sg);
  api->free(sg);
}

/* ---- HTTP helpers
 * ------------------------------------------------------------ */

/* GET base_url + path with the key. resp must be freed by the caller. */
static int sg_get(struct sendgrid *sg, cr_plugin_ctx *ctx, const char *path,
                  struct cr_http_response *resp) {
  char url[SG_URL_MAX + 256];
  snprintf(url, sizeof url, "%s%s", sg->base_url, path);
  const char *headers[] = {sg->auth_header, "Accept: application/json", NULL};
  struct cr_http_request req;
  cr_http_request_init(&req);
  req.method = "GET";
  req.url = url;
  req.headers = headers;
  return sg->api->http(ctx, &req, resp);
}

/* The first errors[].message of a SendGrid error body, printable ASCII
 * only; "no details" when there is none. */
static void sg_error_message(const struct cr_http_response *resp, char *out,
                             size_t outlen) {
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  snprintf(out, outlen, "no details");
  if (resp->body == NULL ||
      cr_json_array_begin_n(&it, resp->body, resp->body_len, "errors") != 0 ||
      cr_json_array_next(&it, &e, &n) != 1 ||
      cr_json_get_string_n(e, n, "message", out, outlen) != 0 ||
      out[0] == '\0') {
    snprintf(out, outlen, "no details");
    return;
  }
  for (char *p = out; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
      *p = '?';
}

/* The wait a 429 asks for: Retry-After (seconds), else X-RateLimit-Reset
 * (a Unix time), else 0 (unknown). */
static int64_t sg_retry_after_ms(const struct cr_http_response *resp) {
  int64_t ms = cr_http_retry_after_ms(resp);
  if (ms >= 0)
    return ms;
  char v[32];
  if (cr_http_header_value(resp, "X-RateLimit-Reset", v, sizeof v) != 0)
    return 0;
  char *end = NULL;
  long long reset = strtoll(v, &end, 10);
  long long now = (long long)time(NULL);
  if (end == v || *end != '\0' || reset <= now || reset - now > 86400)
    return 0;
  return (int64_t)(reset - now) * 1000;
}

/* ---- health_check
 * ------------------------------------------------------------ */

/* Writes status + reason to out and, for an error result, the same text
 * through set_error. Returns result. */
static int sg_verdict(struct sendgrid *sg, cr_plugin_ctx *ctx,
                      struct cr_plugin_health_result *out, int status,
                      int result, int64_t retry_ms, const char *fmt, ...)
    CR_PLUGIN_PRINTF(7, 8);
static int sg_verdict(struct sendgrid *sg, cr_plugin_ctx *ctx,
                      struct cr_plugin_health_result *out, int status,
                      int result, int64_t retry_ms, const char *fmt, ...) {
  char msg[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  out->status = status;
  if (out->reason != NULL && out->reason_len > 0)
    snprintf(out->reason, out->reason_len, "%s", msg);
  if (result != CR_PLUGIN_OK)
    sg->api->set_error(ctx, result, msg, retry_ms);
  return result;
}

/* Counts the scopes of a 200 body and looks for the one read needs.
 * Returns -1 when the body has no scopes array. */
static long sg_count_scopes(const struct cr_http_response *resp,
                            int *has_required) {
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  long count = 0;
  int r;
  *has_required = 0;
  if (cr_json_array_begin_n(&it, resp->body, resp->body_len, "scopes") != 0)
    return -1;
  while ((r = cr_json_array_next(&it, &e, &n)) == 1) {
    char scope[128];
    count++;
    if (cr_json_string_decode(e, n, scope, sizeof scope) == 0 &&
        strcmp(scope, SG_REQUIRED_SCOPE) == 0)
      *has_required = 1;
  }
  return r < 0 ? -1 : count;
}

static int sg_health_from_status(struct sendgrid *sg, cr_plugin_ctx *ctx,
                                 const struct cr_http_response *resp,
                                 struct cr_plugin_health_result *out) {
  char why[SG_MSG_MAX];
  long st = resp->status;
  if (st == 200) {
    int has = 0;
    long n = sg_count_scopes(resp, &has);
    if (n < 0)
      return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_OK, 0,
                        "unexpected response from SendGrid (200 without "
                        "a scopes list)");
    if (!has)
      return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNHEALTHY, CR_PLUGIN_OK,
                        0, "API key lacks scope %s (%ld scopes granted)",
                        SG_REQUIRED_SCOPE, n);
    return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_HEALTHY, CR_PLUGIN_OK, 0,
                      "API key valid (%ld scopes)", n);
  }
  sg_error_message(resp, why, sizeof why);
  if (st == 401)
    return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNHEALTHY, CR_PLUGIN_OK, 0,
                      "API key rejected by SendGrid (401: %s)", why);
  if (st == 403)
    return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNHEALTHY, CR_PLUGIN_OK, 0,
                      "API key lacks permission to read its scopes (403: "
                      "%s)",
                      why);
  if (st == 429) {
    int64_t wait = sg_retry_after_ms(resp);
    return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN,
                      CR_PLUGIN_ERR_RATE_LIMITED, wait,
                      "rate limited by SendGrid (429), retry in %lld s",
                      (long long)((wait + 999) / 1000));
  }
  if (st >= 500)
    return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN,
                      CR_PLUGIN_ERR_TRANSIENT, 0,
                      "SendGrid server error (%ld: %s)", st, why);
  return sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_OK, 0,
                    "unexpected response from SendGrid (HTTP %ld: %s)", st,
                    why);
}

static int sg_health_check(void *instance, cr_plugin_ctx *ctx,
                           struct cr_plugin_health_result *out) {
  struct sendgrid *sg = instance;
  struct cr_http_response resp;
  int rc = sg_get(sg, ctx, "/v3/scopes", &resp);
  if (rc == CR_PLUGIN_OK)
    rc = sg_health_from_status(sg, ctx, &resp, out);
  else if (rc == CR_PLUGIN_ERR_TRANSIENT)
    rc = sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN, rc, 0,
                    "cannot reach SendGrid: %s", resp.error);
  else if (rc == CR_PLUGIN_ERR_CONFIG)
    rc = sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNHEALTHY, rc, 0,
                    "invalid SendGrid base_url: %s", resp.error);
  else
    rc = sg_verdict(sg, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN, rc, 0,
                    "health check request failed: %s", resp.error);
  sg->api->http_response_free(ctx, &resp);
  return rc;
}

/* ---- read
 * ---------------------------------------------------------------------- */

/* Maps a non-200 contacts response to an error result. */
static int sg_read_status_error(struct sendgrid *sg, cr_plugin_ctx *ctx,
                                const struct cr_http_response *resp) {
  const struct cr_host_api *api = sg->api;
  char why[SG_MSG_MAX];
  long st = resp->status;
  sg_error_message(resp, why, sizeof why);
  if (st == 401)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "API key rejected by SendGrid (401: %s)", why);
  if (st == 403)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "API key lacks scope %s (403: %s)",
                            SG_REQUIRED_SCOPE, why);
  if (st == 429) {
    int64_t wait = sg_retry_after_ms(resp);
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_RATE_LIMITED, wait,
                            "rate limited by SendGrid (429), retry in %lld s",
                            (long long)((wait + 999) / 1000));
  }
  if (st >= 500)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_TRANSIENT, 0,
                            "SendGrid server error (%ld: %s)", st, why);
  return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                          "unexpected response from SendGrid (HTTP %ld: %s)",
                          st, why);
}

/* Checks the "result" array of a 200 body and counts its contacts.
 * Returns -1 when the body is not what SendGrid documents. */
static long sg_count_contacts(const struct cr_http_response *resp) {
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  long count = 0;
  int r;
  if (cr_json_array_begin_n(&it, resp->body, resp->body_len, "result") != 0)
    return -1;
  while ((r = cr_json_array_next(&it, &e, &n)) == 1) {
    if (e[0] != '{')
      return -1;
    count++;
  }
  return r < 0 ? -1 : count;
}

static int sg_checkpoint(struct sendgrid *sg, cr_plugin_ctx *ctx) {
  char when[32], state[64];
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm) == NULL ||
      strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    return cr_plugin_errorf(sg->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "cannot format the current time");
  snprintf(state, sizeof state, "{\"synced_at\":\"%s\"}", when);
  return sg->api->checkpoint(ctx, state);
}

/* Emits every contact of a 200 body, then proposes the checkpoint. */
static int sg_emit_contacts(struct sendgrid *sg, cr_plugin_ctx *ctx,
                            const struct cr_http_response *resp) {
  const struct cr_host_api *api = sg->api;
  long total = sg_count_contacts(resp);
  if (total < 0)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "unexpected response from SendGrid (no valid "
                            "result array of contacts)");
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  uint64_t done = 0;
  cr_json_array_begin_n(&it, resp->body, resp->body_len, "result");
  while (cr_json_array_next(&it, &e, &n) == 1) {
    if (api->cancelled(ctx))
      return CR_PLUGIN_ERR_CANCELLED;
    int rc = api->emit(ctx, SG_STREAM, e, n);
    if (rc != CR_PLUGIN_OK)
      return rc;
    api->progress(ctx, SG_STREAM, ++done, (uint64_t)total);
  }
  long long count = -1;
  cr_json_get_int_n(resp->body, resp->body_len, "contact_count", &count);
  cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_INFO,
                 "read %llu contacts (SendGrid reports %lld in total; this "
                 "endpoint returns at most the 50 most recent)",
                 (unsigned long long)done, count);
  return sg_checkpoint(sg, ctx);
}

static int sg_read(void *instance, cr_plugin_ctx *ctx) {
  struct sendgrid *sg = instance;
  const struct cr_host_api *api = sg->api;
  if (!sg->wants_contacts) {
    api->log(ctx, CR_PLUGIN_LOG_INFO, "stream contacts not selected");
    return CR_PLUGIN_OK;
  }
  if (api->cancelled(ctx))
    return CR_PLUGIN_ERR_CANCELLED;
  struct cr_http_response resp;
  int rc = sg_get(sg, ctx, "/v3/marketing/contacts", &resp);
  if (rc == CR_PLUGIN_OK && resp.status == 200)
    rc = sg_emit_contacts(sg, ctx, &resp);
  else if (rc == CR_PLUGIN_OK)
    rc = sg_read_status_error(sg, ctx, &resp);
  else if (rc == CR_PLUGIN_ERR_TRANSIENT)
    cr_plugin_errorf(api, ctx, rc, 0, "cannot reach SendGrid: %s", resp.error);
  else if (rc != CR_PLUGIN_ERR_CANCELLED)
    cr_plugin_errorf(api, ctx, rc, 0, "request to SendGrid failed: %s",
                     resp.error);
  api->http_response_free(ctx, &resp);
  return rc;
}

/* ---- The descriptor
 * -------------------------------------------------------------- */

/* ---- write: Marketing Contacts upsert ------------------------------------
 * PUT /v3/marketing/contacts {"list_ids":[...],"contacts":[...]} answers
 * 202 {"job_id":"..."}; the job is followed with
 * GET /v3/marketing/contacts/imports/{id} until its status leaves "pending":
 * "completed" (no error), "errored" (some contacts failed: counts in
 * results, details in results.errors_url), "failed" (all failed).
 * https://www.twilio.com/docs/sendgrid/api-reference/contacts/add-or-update-a-contact
 * https://www.twilio.com/docs/sendgrid/api-reference/contacts/import-contacts-status
 * A request carries at most 30,000 contacts and 6 MB (SendGrid's limits);
 * batches here stay under both. */

#define SG_BATCH_MAX 30000
#define SG_BATCH_BYTES (5u << 20)

static int sg_send(struct sendgrid *sg, cr_plugin_ctx *ctx, const char *method,
                   const char *path, const char *body,
                   struct cr_http_response *resp) {
  char url[SG_URL_MAX + 96];
  snprintf(url, sizeof url, "%s%s", sg->base_url, path);
  const char *headers[] = {sg->auth_header, "Accept: application/json",
                           "Content-Type: application/json", NULL};
  struct cr_http_request req;
  cr_http_request_init(&req);
  req.method = method;
  req.url = url;
  req.headers = headers;
  req.body = body;
  req.body_len = body ? strlen(body) : 0;
  return sg->api->http(ctx, &req, resp);
}

/* The error class of a non-2xx answer, with set_error. */
static int sg_http_failure(struct sendgrid *sg, cr_plugin_ctx *ctx,
                           const struct cr_http_response *resp,
                           const char *what) {
  char detail[200];
  sg_error_message(resp, detail, sizeof detail);
  int result = resp->status == 429   ? CR_PLUGIN_ERR_RATE_LIMITED
               : resp->status >= 500 ? CR_PLUGIN_ERR_TRANSIENT
                                     : CR_PLUGIN_ERR_CONFIG;
  char msg[320];
  snprintf(msg, sizeof msg, "%s: SendGrid answered %ld: %s", what, resp->status,
           detail);
  sg->api->set_error(
      ctx, result, msg,
      result == CR_PLUGIN_ERR_RATE_LIMITED ? sg_retry_after_ms(resp) : 0);
  return result;
}

static void sg_sleep_ms(long long ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- write: the list named by config.list_name --------------------------
 * GET /v3/marketing/lists?page_size=1000 answers {"result":[{"id","name",
 * "contact_count","_metadata"}],"_metadata":{"self","next"?,"count"}} (no
 * "next" on the last page); POST /v3/marketing/lists {"name":"..."} (1 to
 * 100 characters) answers 201 with the new list {"id","name",...}.
 * https://www.twilio.com/docs/sendgrid/api-reference/lists/get-all-lists
 * https://www.twilio.com/docs/sendgrid/api-reference/lists/create-list
 * The list is looked up first, so a second run reuses it instead of
 * creating a duplicate; its id joins config.list_ids in every PUT. */

#define SG_LIST_PAGES 100 /* bound of the list pages read */

/* Looks for the list named sg->list_name on one page of lists; id gets its
 * id when found, next the path of the next page ("" at the end). */
static void sg_find_list(struct sendgrid *sg,
                         const struct cr_http_response *resp, char *id,
                         size_t idlen, char *next, size_t nextlen) {
  struct cr_json_array_iter it;
  const char *e, *meta;
  size_t n, ml;
  char name[128], url[SG_URL_MAX + 256] = "";
  if (cr_json_array_begin_n(&it, resp->body, resp->body_len, "result") == 0)
    while (id[0] == '\0' && cr_json_array_next(&it, &e, &n) == 1)
      if (cr_json_get_string_n(e, n, "name", name, sizeof name) == 0 &&
          strcmp(name, sg->list_name) == 0)
        cr_json_get_string_n(e, n, "id", id, idlen);
  next[0] = '\0';
  size_t bl = strlen(sg->base_url);
  if (cr_json_get_raw_n(resp->body, resp->body_len, "_metadata", &meta, &ml) ==
          0 &&
      cr_json_get_string_n(meta, ml, "next", url, sizeof url) == 0 &&
      strncmp(url, sg->base_url, bl) == 0 && url[bl] == '/')
    snprintf(next, nextlen, "%s", url + bl); /* only on the same host */
}

/* Creates the list sg->list_name; id gets its id. */
static int sg_create_list(struct sendgrid *sg, cr_plugin_ctx *ctx, char *id,
                          size_t idlen) {
  char esc[6 * 128], body[6 * 128 + 16];
  struct cr_http_response resp;
  if (cr_json_escape(sg->list_name, esc, sizeof esc) < 0)
    return cr_plugin_errorf(sg->api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "config.list_name cannot be encoded");
  snprintf(body, sizeof body, "{\"name\":\"%s\"}", esc);
  int rc = sg_send(sg, ctx, "POST", "/v3/marketing/lists", body, &resp);
  if (rc == CR_PLUGIN_OK && resp.status != 201 && resp.status != 200)
    rc = sg_http_failure(sg, ctx, &resp, "list creation");
  else if (rc == CR_PLUGIN_OK && (cr_json_get_string_n(resp.body, resp.body_len,
                                                       "id", id, idlen) != 0 ||
                                  id[0] == '\0'))
    rc = cr_plugin_errorf(sg->api, ctx, CR_PLUGIN_ERR_TRANSIENT, 0,
                          "list creation: no id in SendGrid's answer");
  sg->api->http_response_free(ctx, &resp);
  if (rc == CR_PLUGIN_OK)
    cr_plugin_logf(sg->api, ctx, CR_PLUGIN_LOG_INFO,
                   "created SendGrid list \"%s\"", sg->list_name);
  return rc;
}

/* Adds list id to the JSON array text sg->list_ids. */
static int sg_add_list_id(struct sendgrid *sg, cr_plugin_ctx *ctx,
                          const char *id) {
  char esc[6 * 64 + 1];
  size_t used = strlen(sg->list_ids);
  int empty = strcmp(sg->list_ids, "[]") == 0;
  if (cr_json_escape(id, esc, sizeof esc) < 0 || used < 2 ||
      used + strlen(esc) + 4 > sizeof sg->list_ids)
    return cr_plugin_errorf(sg->api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "too many list ids");
  snprintf(sg->list_ids + used - 1, sizeof sg->list_ids - (used - 1),
           "%s\"%s\"]", empty ? "" : ",", esc);
  return CR_PLUGIN_OK;
}

/* Finds (or creates) the list sg->list_name once and adds its id to the
 * list ids of the PUTs. */
static int sg_resolve_list(struct sendgrid *sg, cr_plugin_ctx *ctx) {
  char id[64] = "", path[SG_URL_MAX + 256] = "/v3/marketing/lists?page_size="
                                             "1000";
  if (sg->list_name[0] == '\0' || sg->list_resolved)
    return CR_PLUGIN_OK;
  for (int page = 0; id[0] == '\0' && path[0] != '\0'; page++) {
    struct cr_http_response resp;
    if (page == SG_LIST_PAGES)
      return cr_plugin_errorf(sg->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                              "more than %d pages of lists", SG_LIST_PAGES);
    int rc = sg_get(sg, ctx, path, &resp);
    if (rc == CR_PLUGIN_OK && resp.status != 200)
      rc = sg_http_failure(sg, ctx, &resp, "list lookup");
    if (rc == CR_PLUGIN_OK)
      sg_find_list(sg, &resp, id, sizeof id, path, sizeof path);
    sg->api->http_response_free(ctx, &resp);
    if (rc != CR_PLUGIN_OK)
      return rc;
  }
  int rc =
      id[0] != '\0' ? CR_PLUGIN_OK : sg_create_list(sg, ctx, id, sizeof id);
  if (rc == CR_PLUGIN_OK)
    rc = sg_add_list_id(sg, ctx, id);
  sg->list_resolved = rc == CR_PLUGIN_OK;
  return rc;
}

/* ---- write: which contacts an "errored" job refused ---------------------
 * SendGrid's job status gives only counts (the per-contact detail is a file
 * at errors_url whose format is not published). What is published is
 * POST /v3/marketing/contacts/search/emails {"emails":[...]} (at most 100)
 * answering 200 {"result":{"<email, lower case>":{"contact":{...}} or
 * {"error":"contact not found"}}}, or 404 when none is found:
 * https://www.twilio.com/docs/sendgrid/api-reference/contacts/get-contacts-by-emails
 * After an errored job, a record whose email SendGrid does not have is one
 * it refused: reported per record (ABI 1.2). A refused update of a contact
 * that already existed cannot be told apart this way. */

#define SG_SEARCH_MAX 100

/* The email of record rec, lower-cased, into out; 0, or -1 when none. */
static int sg_record_email(const char *rec, char *out, size_t outlen) {
  if (cr_json_get_string(rec, "email", out, outlen) != 0 || out[0] == '\0')
    return -1;
  for (char *p = out; *p != '\0'; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  return 0;
}

/* Searches the emails of records[0..n) (n <= SG_SEARCH_MAX) and reports
 * those SendGrid does not have; *told counts the reports the host took. */
static int sg_search_chunk(struct sendgrid *sg, cr_plugin_ctx *ctx,
                           const char *const *records, size_t n, size_t base,
                           const char *job, long long *told) {
  struct cr_http_response resp;
  size_t cap = 32 + n * 6 * 256, k = 0;
  char *body = sg->api->alloc(cap), email[256], esc[6 * 256];
  if (body == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  k += (size_t)snprintf(body, cap, "{\"emails\":[");
  for (size_t i = 0; i < n; i++)
    if (sg_record_email(records[i], email, sizeof email) == 0 &&
        cr_json_escape(email, esc, sizeof esc) >= 0)
      k += (size_t)snprintf(body + k, cap - k, "%s\"%s\"",
                            body[k - 1] == '[' ? "" : ",", esc);
  if (body[k - 1] == '[') { /* no record with an email: nothing to tell */
    sg->api->free(body);
    return CR_PLUGIN_OK;
  }
  snprintf(body + k, cap - k, "]}");
  int rc = sg_send(sg, ctx, "POST", "/v3/marketing/contacts/search/emails",
                   body, &resp);
  sg->api->free(body);
  if (rc == CR_PLUGIN_OK && resp.status != 200 && resp.status != 404)
    rc = sg_http_failure(sg, ctx, &resp, "contacts search");
  const char *res = NULL;
  size_t rl = 0;
  if (rc == CR_PLUGIN_OK && resp.status == 200)
    cr_json_get_raw_n(resp.body, resp.body_len, "result", &res, &rl);
  for (size_t i = 0; rc == CR_PLUGIN_OK && i < n; i++) {
    const char *hit, *c;
    size_t hl, cl;
    if (sg_record_email(records[i], email, sizeof email) != 0 ||
        (res != NULL && cr_json_get_raw_n(res, rl, email, &hit, &hl) == 0 &&
         cr_json_get_raw_n(hit, hl, "contact", &c, &cl) == 0))
      continue; /* no email to check, or SendGrid has the contact */
    char why[200];
    snprintf(why, sizeof why,
             "not in Marketing Contacts after upsert job %s (errored)", job);
    *told += sg->api->record_failed(ctx, base + i, NULL, why) == 0;
  }
  sg->api->http_response_free(ctx, &resp);
  return rc;
}

/* Reports the records of records[0..n) an errored job refused; *told
 * counts them. */
static int sg_itemise(struct sendgrid *sg, cr_plugin_ctx *ctx,
                      const char *const *records, size_t n, size_t base,
                      const char *job, long long *told) {
  int rc = CR_PLUGIN_OK;
  *told = 0;
  for (size_t i = 0; rc == CR_PLUGIN_OK && i < n; i += SG_SEARCH_MAX)
    rc = sg_search_chunk(sg, ctx, records + i,
                         n - i < SG_SEARCH_MAX ? n - i : SG_SEARCH_MAX,
                         base + i, job, told);
  return rc;
}

/* An ended job that is not "completed": with ABI 1.2 an "errored" job's
 * refused contacts are reported per record and the batch succeeds; a
 * "failed" job, or an older host, is a config error naming the counts. */
static int sg_job_refused(struct sendgrid *sg, cr_plugin_ctx *ctx,
                          const char *id, const char *status, long long errored,
                          const char *const *records, size_t n, size_t base) {
  long long told = 0;
  if (strcmp(status, "errored") == 0 && CR_HOST_HAS(sg->api, record_failed)) {
    int rc = sg_itemise(sg, ctx, records, n, base, id, &told);
    if (rc != CR_PLUGIN_OK)
      return rc;
    if (told < errored)
      cr_plugin_logf(sg->api, ctx, CR_PLUGIN_LOG_WARN,
                     "SendGrid upsert job %s: %lld of %lld refused contacts "
                     "could not be told apart (see the job's errors_url)",
                     id, errored - told, errored);
    if (told > 0 || errored == 0)
      return CR_PLUGIN_OK;
  }
  char msg[256];
  snprintf(msg, sizeof msg,
           "SendGrid upsert job %s: %s, %lld of %zu contacts refused (see "
           "the job's errors_url)",
           id, status, errored, n);
  cr_plugin_logf(sg->api, ctx, CR_PLUGIN_LOG_WARN, "%s", msg);
  sg->api->set_error(ctx, CR_PLUGIN_ERR_CONFIG, msg, 0);
  return CR_PLUGIN_ERR_CONFIG;
}

/* Follows job id of the upsert of records[0..n) (record base of the
 * write) until it ends; reports errored / failed jobs. */
static int sg_follow_job(struct sendgrid *sg, cr_plugin_ctx *ctx,
                         const char *id, const char *const *records, size_t n,
                         size_t base) {
  char path[160], status[32] = "pending";
  snprintf(path, sizeof path, "/v3/marketing/contacts/imports/%s", id);
  long long waited = 0;
  while (!strcmp(status, "pending")) {
    if (sg->api->cancelled(ctx))
      return CR_PLUGIN_ERR_CANCELLED;
    if (waited / 1000 > sg->job_timeout_s) {
      sg->api->set_error(ctx, CR_PLUGIN_ERR_TRANSIENT,
                         "SendGrid upsert job still pending", 0);
      return CR_PLUGIN_ERR_TRANSIENT;
    }
    struct cr_http_response resp;
    int rc = sg_get(sg, ctx, path, &resp);
    if (rc == CR_PLUGIN_OK && resp.status != 200)
      rc = sg_http_failure(sg, ctx, &resp, "upsert job status");
    if (rc == CR_PLUGIN_OK &&
        cr_json_get_string_n(resp.body, resp.body_len, "status", status,
                             sizeof status) != 0)
      snprintf(status, sizeof status, "unknown");
    long long errored = 0;
    const char *res;
    size_t rlen;
    if (rc == CR_PLUGIN_OK && cr_json_get_raw_n(resp.body, resp.body_len,
                                                "results", &res, &rlen) == 0)
      cr_json_get_int_n(res, rlen, "errored_count", &errored);
    sg->api->http_response_free(ctx, &resp);
    if (rc != CR_PLUGIN_OK)
      return rc;
    if (!strcmp(status, "completed"))
      return CR_PLUGIN_OK;
    if (strcmp(status, "pending") != 0)
      return sg_job_refused(sg, ctx, id, status, errored, records, n, base);
    sg_sleep_ms(sg->job_poll_ms);
    waited += sg->job_poll_ms;
  }
  return CR_PLUGIN_OK;
}

/* One batch: records[0..n) (record base of the write) as contacts of one
 * PUT, then its job. */
static int sg_upsert(struct sendgrid *sg, cr_plugin_ctx *ctx,
                     const char *const *records, size_t n, size_t base,
                     size_t bytes) {
  size_t cap = bytes + n + strlen(sg->list_ids) + 64;
  char *body = sg->api->alloc(cap);
  if (body == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  size_t k = (size_t)snprintf(body, cap, "{\"list_ids\":%s,\"contacts\":[",
                              sg->list_ids);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(records[i]);
    if (i > 0)
      body[k++] = ',';
    memcpy(body + k, records[i], len);
    k += len;
  }
  memcpy(body + k, "]}", 3);
  struct cr_http_response resp;
  int rc = sg_send(sg, ctx, "PUT", "/v3/marketing/contacts", body, &resp);
  sg->api->free(body);
  char job[128] = "";
  if (rc == CR_PLUGIN_OK && resp.status != 202 && resp.status != 200)
    rc = sg_http_failure(sg, ctx, &resp, "contacts upsert");
  else if (rc == CR_PLUGIN_OK &&
           cr_json_get_string_n(resp.body, resp.body_len, "job_id", job,
                                sizeof job) != 0) {
    sg->api->set_error(ctx, CR_PLUGIN_ERR_TRANSIENT,
                       "contacts upsert: no job_id in SendGrid's answer", 0);
    rc = CR_PLUGIN_ERR_TRANSIENT;
  }
  sg->api->http_response_free(ctx, &resp);
  return rc == CR_PLUGIN_OK ? sg_follow_job(sg, ctx, job, records, n, base)
                            : rc;
}

static int sg_write(void *instance, cr_plugin_ctx *ctx, const char *stream,
                    const char *const *records, size_t n) {
  struct sendgrid *sg = instance;
  if (strcmp(stream, SG_STREAM) != 0) {
    sg->api->set_error(ctx, CR_PLUGIN_ERR_CONFIG,
                       "sendgrid writes only the contacts stream", 0);
    return CR_PLUGIN_ERR_CONFIG;
  }
  int lrc = sg_resolve_list(sg, ctx);
  if (lrc != CR_PLUGIN_OK)
    return lrc;
  size_t first = 0, bytes = 0;
  for (size_t i = 0; i <= n; i++) {
    size_t len = i < n ? strlen(records[i]) : 0;
    int full = i == n || i - first == SG_BATCH_MAX ||
               (i > first && bytes + len > SG_BATCH_BYTES);
    if (full && i > first) {
      int rc = sg_upsert(sg, ctx, records + first, i - first, first, bytes);
      if (rc != CR_PLUGIN_OK)
        return rc;
      first = i;
      bytes = 0;
    }
    bytes += len;
  }
  return CR_PLUGIN_OK;
}

static const char *const sg_auth_methods[] = {"api_key", NULL};

static const struct cr_plugin_descriptor sg_descriptor = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "sendgrid",
    .display_name = "SendGrid",
    .version = "0.1.0",
    .description = "Twilio SendGrid v3 API: API key health, marketing "
                   "contacts",
    .auth_methods = sg_auth_methods,
    .credentials_schema = sg_credentials_schema,
    .config_schema = sg_config_schema,
    .streams_json = sg_streams,
    .capabilities =
        CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ | CR_PLUGIN_CAP_WRITE,
    .create = sg_create,
    .destroy = sg_destroy,
    .health_check = sg_health_check,
    .read = sg_read,
    .write = sg_write,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &sg_descriptor;
}
