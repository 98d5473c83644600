/* test_sendgrid.c: the sendgrid plugin, loaded from build/plugins through
 * the plugin host, against a fake SendGrid v3 API on loopback that follows
 * the documented shapes (GET /v3/scopes, GET /v3/marketing/contacts, the
 * {"errors":[{"field":null,"message":...}]} error body, 429 with
 * X-RateLimit-* headers), run through the health-check runner and a read
 * with collecting sinks. The API key must never reach a reason or a log
 * line. Also the runner's edge cases, with a misbehaving plugin compiled at
 * run time and two test plugins. */
#include "testutil.h"

#include "dest/dest.h"
#include "fake_http.h"
#include "plugin/health.h"
#include "plugin/host_api.h"
#include "plugin/plugin_host.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#include <connrun/plugin_util.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GOOD_KEY                                                               \
  "SG.fakeKeyId0123456789ab.fakeSecretPart_0123456789abcdefghijklm"
#define BAD_KEY "SG.wrongKeyId987654321xy.wrongSecretPart_zyxwvutsrqponmlkjihgf"

/* ---- The fake SendGrid
 * ------------------------------------------------------- */

enum sg_mode { M_NORMAL, M_NO_SCOPE, M_403, M_429, M_503, M_ECHO_KEY };

struct fake_sg {
  enum sg_mode mode;
  char reset_header[64];
  /* write: the jobs' final status ("completed", "errored"), polls that
   * answer "pending" before it, and what was asked so far */
  const char *job_end;
  int pending_polls, polls, puts;
  size_t contacts_put;
  /* the contacts SendGrid holds (an email starting with "bad" is refused
   * by the job: the job ends "errored" unless job_end says otherwise), the
   * refusals of the last PUT and the emails searched so far */
  char held[160][64];
  int nheld, refused, searched;
  /* lists: names and ids (two pre-existing), served two per page; the
   * fake's own URL for the "next" links; lists created so far */
  char list_name[8][128], list_id[8][40];
  int nlists, lists_created, list_pages;
  char url[64];
};

static const char ERR_401[] =
    "{\"errors\":[{\"field\":null,\"message\":\"authorization required\"}]}";
static const char CONTACTS[] =
    "{\"result\":["
    "{\"id\":\"8a2a6a0e-1b8c-4d36-9f6a-1a2b3c4d5e6f\",\"email\":"
    "\"ada@example.com\",\"first_name\":\"Ada\",\"last_name\":\"Lovelace\","
    "\"list_ids\":[\"ca7a3796-e8a8-4029-9ccb-df8937940562\"],"
    "\"custom_fields\":{},\"created_at\":\"2021-03-02T15:25:47Z\","
    "\"updated_at\":\"2021-03-30T15:26:16Z\"},"
    "{\"id\":\"9b3b7b1f-2c9d-4e47-8a7b-2b3c4d5e6f70\",\"email\":"
    "\"grace@example.com\",\"first_name\":\"Grace \\\"Amazing\\\"\","
    "\"last_name\":\"Hopper\",\"list_ids\":[],\"custom_fields\":"
    "{\"w1_T\":\"x]}\"},\"created_at\":\"2021-04-02T10:00:00Z\","
    "\"updated_at\":\"2021-04-03T10:00:00Z\"},"
    "{\"id\":\"ac4c8c20-3dae-4f58-9b8c-3c4d5e6f7081\",\"email\":"
    "\"linus@example.com\",\"first_name\":\"Linus\",\"last_name\":"
    "\"T\\u00f6rvalds\",\"created_at\":\"2021-05-02T10:00:00Z\","
    "\"updated_at\":\"2021-05-02T10:00:00Z\"}"
    "],\"contact_count\":3,\"_metadata\":{\"self\":"
    "\"https://api.sendgrid.com/v3/marketing/contacts\"}}";

static void fake_sendgrid(void *ud, const struct cr_fake_http_request *req,
                          struct cr_fake_http_response *resp) {
  struct fake_sg *f = ud;
  const char *auth = cr_fake_http_header(req, "Authorization");
  if (f->mode == M_429) {
    snprintf(f->reset_header, sizeof f->reset_header, "X-RateLimit-Reset: %lld",
             (long long)time(NULL) + 30);
    resp->status = 429;
    resp->headers[0] = "X-RateLimit-Limit: 150";
    resp->headers[1] = "X-RateLimit-Remaining: 0";
    resp->headers[2] = f->reset_header;
    resp->body =
        "{\"errors\":[{\"field\":null,\"message\":\"too many requests\"}]}";
    return;
  }
  if (f->mode == M_503) {
    resp->status = 503;
    resp->body =
        "{\"errors\":[{\"field\":null,\"message\":\"service unavailable\"}]}";
    return;
  }
  if (auth == NULL || strcmp(auth, "Bearer " GOOD_KEY) != 0) {
    resp->status = 401;
    resp->body = ERR_401;
    if (f->mode == M_ECHO_KEY && auth != NULL && strlen(auth) > 7)
      cr_fake_http_set_body(resp,
                            "{\"errors\":[{\"field\":null,\"message\":"
                            "\"invalid key %s\"}]}",
                            auth + 7);
    return;
  }
  if (f->mode == M_403) {
    resp->status = 403;
    resp->body =
        "{\"errors\":[{\"message\":\"access forbidden\",\"field\":\"null\"}]}";
    return;
  }
  if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/v3/scopes") == 0) {
    resp->body = f->mode == M_NO_SCOPE
                     ? "{\"scopes\":[\"mail.send\",\"alerts.read\"]}"
                     : "{\"scopes\":[\"mail.send\",\"alerts.read\","
                       "\"marketing.read\"]}";
    return;
  }
  if (strcmp(req->method, "GET") == 0 &&
      strcmp(req->path, "/v3/marketing/contacts") == 0) {
    resp->body = CONTACTS;
    return;
  }
  /* Add or Update a Contact: 202 {"job_id"}; the job's status after
   * pending_polls answers of "pending". */
  if (strcmp(req->method, "PUT") == 0 &&
      strcmp(req->path, "/v3/marketing/contacts") == 0) {
    struct cr_json_array_iter it;
    const char *e;
    size_t n;
    f->puts++;
    f->refused = 0;
    if (cr_json_array_begin_n(&it, req->body, req->body_len, "contacts") == 0)
      while (cr_json_array_next(&it, &e, &n) == 1) {
        char email[64] = "";
        f->contacts_put++;
        cr_json_get_string_n(e, n, "email", email, sizeof email);
        for (char *p = email; *p != '\0'; p++) /* stored in lower case */
          if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        if (strncmp(email, "bad", 3) == 0)
          f->refused++;
        else if (f->nheld < 160)
          snprintf(f->held[f->nheld++], sizeof f->held[0], "%s", email);
      }
    resp->status = 202;
    cr_fake_http_set_body(resp,
                          "{\"job_id\":\"job-%d\",\"_metadata\":{\"self\":"
                          "\"https://api.sendgrid.com/v3/marketing/contacts/"
                          "imports/job-%d\"}}",
                          f->puts, f->puts);
    return;
  }
  if (strcmp(req->method, "GET") == 0 &&
      strncmp(req->path, "/v3/marketing/contacts/imports/", 31) == 0) {
    const char *st = f->polls++ < f->pending_polls ? "pending"
                     : f->job_end                  ? f->job_end
                     : f->refused > 0              ? "errored"
                                                   : "completed";
    int errored = f->job_end ? (strcmp(st, "errored") ? 0 : 2) : f->refused;
    cr_fake_http_set_body(
        resp,
        "{\"id\":\"%s\",\"status\":\"%s\",\"job_type\":\"upsert\","
        "\"results\":{\"requested_count\":%zu,\"created_count\":1,"
        "\"updated_count\":0,\"deleted_count\":0,\"errored_count\":%d,"
        "\"errors_url\":\"https://example.invalid/errors.csv\"},"
        "\"started_at\":\"2026-12-04T10:00:00Z\"}",
        req->path + 31, st, f->contacts_put, errored);
    return;
  }
  /* Get All Lists: {"result":[...],"_metadata":{"self","next"?}}, two per
   * page here (page_size is the most SendGrid returns), the next page by
   * page_token. */
  if (strcmp(req->method, "GET") == 0 &&
      strcmp(req->path, "/v3/marketing/lists") == 0) {
    const char *tok = req->query ? strstr(req->query, "page_token=") : NULL;
    int from = tok ? atoi(tok + 11) : 0, k = 0;
    char items[1024] = "", next[160] = "";
    f->list_pages++;
    for (int i = from; i < f->nlists && i < from + 2; i++)
      k += snprintf(items + k, sizeof items - (size_t)k,
                    "%s{\"id\":\"%s\",\"name\":\"%s\",\"contact_count\":0,"
                    "\"_metadata\":{\"self\":\"%s/v3/marketing/lists/%s\"}}",
                    i > from ? "," : "", f->list_id[i], f->list_name[i], f->url,
                    f->list_id[i]);
    if (from + 2 < f->nlists)
      snprintf(next, sizeof next,
               ",\"next\":\"%s/v3/marketing/lists?page_size=1000&"
               "page_token=%d\"",
               f->url, from + 2);
    cr_fake_http_set_body(resp,
                          "{\"result\":[%s],\"_metadata\":{\"self\":\"%s/v3/"
                          "marketing/lists\"%s,\"count\":%d}}",
                          items, f->url, next, f->nlists);
    return;
  }
  /* Create List: {"name"} (1 to 100 characters) -> 201 with the list. */
  if (strcmp(req->method, "POST") == 0 &&
      strcmp(req->path, "/v3/marketing/lists") == 0) {
    char name[128] = "";
    if (cr_json_get_string_n(req->body, req->body_len, "name", name,
                             sizeof name) != 0 ||
        name[0] == '\0' || strlen(name) > 100 || f->nlists == 8) {
      resp->status = 400;
      resp->body = "{\"errors\":[{\"field\":\"name\",\"message\":"
                   "\"invalid list name\"}]}";
      return;
    }
    snprintf(f->list_name[f->nlists], sizeof f->list_name[0], "%s", name);
    snprintf(f->list_id[f->nlists], sizeof f->list_id[0],
             "2f0bc1f0-0000-4000-8000-%012d", ++f->lists_created);
    resp->status = 201;
    cr_fake_http_set_body(resp,
                          "{\"id\":\"%s\",\"name\":\"%s\",\"contact_count\":0,"
                          "\"_metadata\":{\"self\":\"%s/v3/marketing/lists/"
                          "%s\"}}",
                          f->list_id[f->nlists], name, f->url,
                          f->list_id[f->nlists]);
    f->nlists++;
    return;
  }
  /* Get Contacts by Emails: each searched email with its contact, or
   * "contact not found"; 404 when none is found. */
  if (strcmp(req->method, "POST") == 0 &&
      strcmp(req->path, "/v3/marketing/contacts/search/emails") == 0) {
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL), *v;
    json_t *result = json_object();
    size_t i;
    int found = 0;
    json_array_foreach(json_object_get(body, "emails"), i, v) {
      const char *email = json_string_value(v);
      int have = 0;
      f->searched++;
      for (int k = 0; email != NULL && k < f->nheld; k++)
        have |= strcmp(f->held[k], email) == 0;
      found += have;
      json_object_set_new(
          result, email,
          have ? json_pack("{s:{s:s,s:s}}", "contact", "email", email, "id",
                           "8a2a6a0e-1b8c-4d36-9f6a-1a2b3c4d5e6f")
               : json_pack("{s:s}", "error", "contact not found"));
    }
    json_t *out = json_pack("{s:o}", "result", result);
    char *txt = json_dumps(out, JSON_COMPACT);
    if (found == 0) {
      resp->status = 404;
      resp->body = "{\"errors\":[{\"field\":null,\"message\":\"contacts "
                   "not found\"}]}";
    } else {
      cr_fake_http_set_body(resp, "%s", txt);
    }
    free(txt);
    json_decref(out);
    json_decref(body);
    return;
  }
  resp->status = 404;
  resp->body = "{\"errors\":[{\"field\":null,\"message\":\"not found\"}]}";
}

/* ---- Fixture
 * ----------------------------------------------------------------- */

struct lines {
  char *text[64];
  int n;
};

static void capture(void *ud, int level, const char *msg) {
  struct lines *l = ud;
  (void)level;
  if (l->n < 64)
    l->text[l->n++] = strdup(msg);
}

struct fx {
  cr_plugin_host *host;
  const cr_plugin *sg;
  struct fake_sg fake;
  cr_fake_http *srv;
  cr_redactor *red;
  struct lines log;
  char creds[512];
  char tmpdir[512];
};

static struct fx *G;

static int group_setup(void **state) {
  (void)state;
  G = calloc(1, sizeof *G);
  if (G == NULL)
    return -1;
  G->sg = cr_test_load_bundled("sendgrid", &G->host);
  return G->sg != NULL ? 0 : -1;
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
  G->log.n = 0;
  if (cr_fake_http_start(fake_sendgrid, &G->fake, &G->srv) != 0)
    return -1;
  snprintf(G->fake.url, sizeof G->fake.url, "%s", cr_fake_http_url(G->srv));
  static const char *const names[] = {"Newsletter", "Customers", "VIP"};
  static const char *const ids[] = {"ca7a3796-e8a8-4029-9ccb-df8937940562",
                                    "199abb98-0af3-4a8d-b371-6811ff85d062",
                                    "abc12312-0000-4000-8000-123456789abc"};
  for (int i = 0; i < 3; i++) {
    snprintf(G->fake.list_name[i], sizeof G->fake.list_name[0], "%s", names[i]);
    snprintf(G->fake.list_id[i], sizeof G->fake.list_id[0], "%s", ids[i]);
  }
  G->fake.nlists = 3;
  if (cr_redactor_new(&G->red) != 0 || cr_redactor_add(G->red, GOOD_KEY) ||
      cr_redactor_add(G->red, BAD_KEY))
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cr_fake_http_stop(G->srv);
  cr_redactor_free(G->red);
  for (int i = 0; i < G->log.n; i++)
    free(G->log.text[i]);
  G->log.n = 0;
  return 0;
}

/* Asserts that no captured log line and no text holds a key (or a large
 * piece of one). */
static void assert_no_key(const char *text) {
  const char *pieces[] = {GOOD_KEY,          BAD_KEY,     "fakeSecretPart",
                          "wrongSecretPart", "fakeKeyId", "wrongKeyId"};
  for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
    if (text != NULL)
      assert_null(strstr(text, pieces[p]));
    for (int i = 0; i < G->log.n; i++)
      assert_null(strstr(G->log.text[i], pieces[p]));
  }
}

static const char *credentials(const char *key, const char *base_url) {
  if (base_url == NULL)
    base_url = cr_fake_http_url(G->srv);
  snprintf(G->creds, sizeof G->creds,
           "{\"api_key\":\"%s\",\"base_url\":\"%s/\"}", key, base_url);
  return G->creds;
}

static void params_for(struct cr_plugin_params *p, const char *creds,
                       const char *config) {
  memset(p, 0, sizeof *p);
  p->struct_size = sizeof *p;
  p->authorization_id = "sendgrid-main";
  p->auth_method = "api_key";
  p->credentials_json = creds;
  p->config_json = config;
  p->work_id = config != NULL ? "contacts-sync" : NULL;
}

static void check(const cr_plugin *plugin, const char *creds,
                  struct cr_health_outcome *out) {
  struct cr_plugin_params params;
  params_for(&params, creds, NULL);
  struct cr_health_options opts;
  memset(&opts, 0, sizeof opts);
  opts.log = capture;
  opts.log_ud = &G->log;
  opts.timeout_ms = 5000;
  assert_int_equal(cr_health_check_ex(plugin, &params, G->red, &opts, out), 0);
  assert_true(out->checked_at_ms > 1600000000000LL);
  assert_true(out->duration_ms >= 0);
  assert_true(out->reason[0] != '\0');
  assert_no_key(out->reason);
}

/* ---- Descriptor
 * ---------------------------------------------------------------- */

static void test_descriptor(void **state) {
  (void)state;
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->sg);
  assert_string_equal(d->name, "sendgrid");
  assert_string_equal(d->display_name, "SendGrid");
  assert_string_equal(d->version, "0.1.0");
  assert_int_equal(d->capabilities, CR_PLUGIN_CAP_HEALTH_CHECK |
                                        CR_PLUGIN_CAP_READ |
                                        CR_PLUGIN_CAP_WRITE);
  assert_true(cr_plugin_accepts_method(G->sg, "api_key"));
  assert_false(cr_plugin_accepts_method(G->sg, "oauth2"));
  assert_non_null(cr_plugin_credentials_schema(G->sg));
  assert_non_null(cr_plugin_config_schema(G->sg));
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  char name[32], sched[8];
  assert_int_equal(cr_json_array_begin(&it, d->streams_json, NULL), 0);
  assert_int_equal(cr_json_array_next(&it, &e, &n), 1);
  assert_int_equal(cr_json_get_string_n(e, n, "name", name, sizeof name), 0);
  assert_string_equal(name, "contacts");
  assert_int_equal(
      cr_json_get_string_n(e, n, "default_schedule", sched, sizeof sched), 0);
  assert_string_equal(sched, "1h");
  assert_int_equal(cr_json_array_next(&it, &e, &n), 0);
}

/* ---- Health
 * ------------------------------------------------------------------ */

static void test_health_valid_key(void **state) {
  (void)state;
  struct cr_health_outcome out;
  check(G->sg, credentials(GOOD_KEY, NULL), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_HEALTHY);
  assert_string_equal(out.reason, "API key valid (3 scopes)");
  assert_int_equal(out.result, CR_PLUGIN_OK);
  assert_int_equal(out.requests, 1);
  assert_int_equal(out.errors, 0);
  assert_int_equal(cr_fake_http_count(G->srv), 1);
  const struct cr_fake_http_request *r = cr_fake_http_request_at(G->srv, 0);
  assert_string_equal(r->method, "GET");
  assert_string_equal(r->path, "/v3/scopes");
  assert_string_equal(cr_fake_http_header(r, "Authorization"),
                      "Bearer " GOOD_KEY);
  assert_string_equal(cr_fake_http_header(r, "Accept"), "application/json");
  /* The request was logged, without the key. */
  assert_true(G->log.n >= 1);
  assert_non_null(strstr(G->log.text[0], "/v3/scopes -> 200 ("));
}

static void test_health_missing_scope(void **state) {
  (void)state;
  G->fake.mode = M_NO_SCOPE;
  struct cr_health_outcome out;
  check(G->sg, credentials(GOOD_KEY, NULL), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(out.reason,
                      "API key lacks scope marketing.read (2 scopes granted)");
}

static void test_health_rejected_key(void **state) {
  (void)state;
  struct cr_health_outcome out;
  check(G->sg, credentials(BAD_KEY, NULL), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(
      out.reason, "API key rejected by SendGrid (401: authorization required)");
  assert_int_equal(out.requests, 1);
  assert_int_equal(out.errors, 0);
  const struct cr_fake_http_request *r = cr_fake_http_request_at(G->srv, 0);
  assert_string_equal(cr_fake_http_header(r, "Authorization"),
                      "Bearer " BAD_KEY);
}

/* A provider that echoes the key back in its error message: the reason
 * still never shows it. */
static void test_health_key_echoed_by_provider(void **state) {
  (void)state;
  G->fake.mode = M_ECHO_KEY;
  struct cr_health_outcome out;
  check(G->sg, credentials(BAD_KEY, NULL), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(out.reason,
                      "API key rejected by SendGrid (401: invalid key "
                      "[REDACTED])");
}

static void test_health_forbidden(void **state) {
  (void)state;
  G->fake.mode = M_403;
  struct cr_health_outcome out;
  check(G->sg, credentials(GOOD_KEY, NULL), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_non_null(strstr(out.reason, "permission"));
  assert_non_null(strstr(out.reason, "403: access forbidden"));
}

static void test_health_rate_limited(void **state) {
  (void)state;
  G->fake.mode = M_429;
  struct cr_health_outcome out;
  check(G->sg, credentials(GOOD_KEY, NULL), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_int_equal(out.result, CR_PLUGIN_ERR_RATE_LIMITED);
  assert_non_null(strstr(out.reason, "rate limited by SendGrid (429)"));
  /* X-RateLimit-Reset is 30 s ahead. */
  assert_true(out.retry_after_ms >= 28000 && out.retry_after_ms <= 31000);
  assert_int_equal(out.errors, 1);
}

static void test_health_server_error(void **state) {
  (void)state;
  G->fake.mode = M_503;
  struct cr_health_outcome out;
  check(G->sg, credentials(GOOD_KEY, NULL), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_int_equal(out.result, CR_PLUGIN_ERR_TRANSIENT);
  assert_string_equal(out.reason,
                      "SendGrid server error (503: service unavailable)");
}

static void test_health_server_down(void **state) {
  (void)state;
  char dead[64];
  assert_int_equal(cr_fake_http_dead_url(dead, sizeof dead), 0);
  struct cr_health_outcome out;
  check(G->sg, credentials(GOOD_KEY, dead), &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_int_equal(out.result, CR_PLUGIN_ERR_TRANSIENT);
  assert_int_equal(strncmp(out.reason, "cannot reach SendGrid: ", 23), 0);
  assert_true(strlen(out.reason) > 23);
  assert_int_equal(out.requests, 1);
  assert_int_equal(out.errors, 1);
}

static void test_health_bad_credentials(void **state) {
  (void)state;
  struct cr_health_outcome out;
  check(G->sg, "{\"base_url\":\"http://127.0.0.1:9\"}", &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_int_equal(out.result, CR_PLUGIN_ERR_CONFIG);
  assert_non_null(strstr(out.reason, "api_key"));
  check(G->sg, "{\"api_key\":\"sk_not_a_sendgrid_key_12345\"}", &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(out.reason,
                      "api_key must start with \"SG.\" (a SendGrid API key)");
  assert_null(strstr(out.reason, "sk_not"));
  check(G->sg, "{\"api_key\":\"" GOOD_KEY "\",\"base_url\":\"ftp://x\"}", &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_non_null(strstr(out.reason, "base_url"));
  assert_int_equal(cr_fake_http_count(G->srv), 0);
}

/* ---- Read ------------------------------------------------------------------
 */

struct collect {
  char *stream[8];
  char *record[8];
  int n;
  char checkpoint[128];
  uint64_t done, total;
};

static int c_emit(void *ud, const char *stream, const char *json, size_t len) {
  struct collect *c = ud;
  if (c->n == 8)
    return CR_PLUGIN_ERR_SYSTEM;
  c->stream[c->n] = strdup(stream);
  c->record[c->n] = strndup(json, len);
  c->n++;
  return 0;
}

static int c_checkpoint(void *ud, const char *state_json) {
  struct collect *c = ud;
  snprintf(c->checkpoint, sizeof c->checkpoint, "%s", state_json);
  return 0;
}

static void c_progress(void *ud, const char *stream, uint64_t done,
                       uint64_t total) {
  struct collect *c = ud;
  (void)stream;
  c->done = done;
  c->total = total;
}

static void collect_free(struct collect *c) {
  for (int i = 0; i < c->n; i++) {
    free(c->stream[i]);
    free(c->record[i]);
  }
}

/* Runs create -> read -> destroy with collecting sinks. */
static int run_read(const char *creds, const char *config, struct collect *c,
                    cr_plugin_ctx *ctx) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->sg);
  struct cr_plugin_params params;
  params_for(&params, creds, config);
  memset(c, 0, sizeof *c);
  cr_plugin_ctx_init(ctx, params.authorization_id, G->red);
  cr_plugin_ctx_set_log(ctx, capture, &G->log);
  struct cr_plugin_sinks sinks = {.ud = c,
                                  .emit = c_emit,
                                  .checkpoint = c_checkpoint,
                                  .progress = c_progress};
  cr_plugin_ctx_set_sinks(ctx, &sinks);
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(
      d->create(cr_host_api_default(), &params, &inst, err, sizeof err), 0);
  int rc = d->read(inst, ctx);
  d->destroy(inst);
  cr_plugin_ctx_cleanup(ctx);
  return rc;
}

static void test_read_contacts(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  int rc = run_read(credentials(GOOD_KEY, NULL), "{\"streams\":[\"contacts\"]}",
                    &c, &ctx);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(c.n, 3);
  const char *emails[] = {"ada@example.com", "grace@example.com",
                          "linus@example.com"};
  for (int i = 0; i < 3; i++) {
    char v[64];
    assert_string_equal(c.stream[i], "contacts");
    assert_int_equal(cr_json_get_string(c.record[i], "email", v, sizeof v), 0);
    assert_string_equal(v, emails[i]);
    assert_int_equal(cr_json_get_string(c.record[i], "id", v, sizeof v), 0);
    assert_int_equal(strlen(v), 36);
    assert_true(c.record[i][0] == '{' &&
                c.record[i][strlen(c.record[i]) - 1] == '}');
  }
  char v[64];
  assert_int_equal(cr_json_get_string(c.record[1], "first_name", v, sizeof v),
                   0);
  assert_string_equal(v, "Grace \"Amazing\"");
  assert_int_equal(cr_json_get_string(c.record[2], "last_name", v, sizeof v),
                   0);
  assert_string_equal(v, "T\xc3\xb6rvalds");
  /* The checkpoint carries the sync time, in UTC ISO 8601. */
  char when[40];
  assert_int_equal(
      cr_json_get_string(c.checkpoint, "synced_at", when, sizeof when), 0);
  assert_int_equal(strlen(when), 20);
  assert_true(when[4] == '-' && when[10] == 'T' && when[19] == 'Z');
  assert_int_equal(c.done, 3);
  assert_int_equal(c.total, 3);
  assert_int_equal(ctx.counters.requests, 1);
  const struct cr_fake_http_request *r = cr_fake_http_request_at(G->srv, 0);
  assert_string_equal(r->path, "/v3/marketing/contacts");
  assert_string_equal(cr_fake_http_header(r, "Authorization"),
                      "Bearer " GOOD_KEY);
  assert_no_key(NULL);
  collect_free(&c);
}

static void test_read_errors(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  int rc = run_read(credentials(BAD_KEY, NULL), NULL, &c, &ctx);
  assert_int_equal(rc, CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(ctx.last_error.message,
                      "API key rejected by SendGrid (401: authorization "
                      "required)");
  assert_int_equal(c.n, 0);
  assert_string_equal(c.checkpoint, "");

  G->fake.mode = M_429;
  rc = run_read(credentials(GOOD_KEY, NULL), NULL, &c, &ctx);
  assert_int_equal(rc, CR_PLUGIN_ERR_RATE_LIMITED);
  assert_true(ctx.last_error.retry_after_ms >= 28000);
  assert_int_equal(c.n, 0);

  G->fake.mode = M_503;
  rc = run_read(credentials(GOOD_KEY, NULL), NULL, &c, &ctx);
  assert_int_equal(rc, CR_PLUGIN_ERR_TRANSIENT);
  assert_int_equal(c.n, 0);
  assert_no_key(ctx.last_error.message);
}

static void test_read_stream_not_selected(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  int rc = run_read(credentials(GOOD_KEY, NULL), "{\"streams\":[]}", &c, &ctx);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(c.n, 0);
  assert_int_equal(ctx.counters.requests, 0);
  assert_int_equal(cr_fake_http_count(G->srv), 0);
}

/* ---- The runner's edge cases
 * --------------------------------------------------- */

/* ---- write: contacts upsert ---- */

static int run_write(const char *config, const char *const *records, size_t n,
                     char *err_out, size_t errlen) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->sg);
  struct cr_plugin_params params;
  params_for(&params, credentials(GOOD_KEY, NULL), config);
  cr_plugin_ctx ctx;
  cr_plugin_ctx_init(&ctx, params.authorization_id, G->red);
  cr_plugin_ctx_set_log(&ctx, capture, &G->log);
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(
      d->create(cr_host_api_default(), &params, &inst, err, sizeof err), 0);
  int rc = d->write(inst, &ctx, "contacts", records, n);
  snprintf(err_out, errlen, "%s", ctx.last_error.message);
  d->destroy(inst);
  cr_plugin_ctx_cleanup(&ctx);
  return rc;
}

static void test_write_contacts(void **state) {
  (void)state;
  const char *recs[] = {"{\"email\":\"ada@example.com\",\"first_name\":"
                        "\"Ada\"}",
                        "{\"email\":\"grace@example.com\"}",
                        "{\"email\":\"linus@example.com\"}"};
  char err[512];
  G->fake.pending_polls = 2;
  int rc = run_write("{\"list_ids\":[\"ca7a3796-e8a8-4029-9ccb-df8937940562\"],"
                     "\"job_poll_ms\":5}",
                     recs, 3, err, sizeof err);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(G->fake.puts, 1);
  assert_int_equal(G->fake.contacts_put, 3);
  assert_int_equal(G->fake.polls, 3); /* two pending, then completed */
  /* The PUT carried the list ids and the contacts as given. */
  const struct cr_fake_http_request *put = NULL;
  for (size_t i = 0; i < cr_fake_http_count(G->srv); i++)
    if (!strcmp(cr_fake_http_request_at(G->srv, i)->method, "PUT"))
      put = cr_fake_http_request_at(G->srv, i);
  assert_non_null(put);
  assert_non_null(strstr(put->body, "\"list_ids\":[\"ca7a3796"));
  assert_non_null(strstr(put->body, "\"first_name\":\"Ada\""));
  assert_string_equal(cr_fake_http_header(put, "Authorization"),
                      "Bearer " GOOD_KEY);
  /* A job that ends "errored" is a config failure naming the counts. */
  G->fake.job_end = "errored";
  G->fake.polls = 0;
  G->fake.pending_polls = 0;
  rc = run_write("{\"job_poll_ms\":5}", recs, 3, err, sizeof err);
  assert_int_equal(rc, CR_PLUGIN_ERR_CONFIG);
  assert_non_null(strstr(err, "errored, 2 of 3 contacts refused"));
  assert_no_key(err);
  /* Rate limited on the PUT: the class and the wait come back. */
  G->fake.mode = M_429;
  rc = run_write("{\"job_poll_ms\":5}", recs, 3, err, sizeof err);
  assert_int_equal(rc, CR_PLUGIN_ERR_RATE_LIMITED);
}

/* The last PUT's body (borrowed from the fake's record). */
static const char *last_put(void) {
  const char *body = NULL;
  for (size_t i = 0; i < cr_fake_http_count(G->srv); i++)
    if (!strcmp(cr_fake_http_request_at(G->srv, i)->method, "PUT"))
      body = cr_fake_http_request_at(G->srv, i)->body;
  return body;
}

/* One write of recs[0] with config.list_name name (and list_ids, may be
 * NULL): asserts it succeeded after reading pages pages of lists, that
 * created lists were made in all, and that the PUT carried list_ids want. */
static void list_write(const char *name, const char *list_ids, int pages,
                       int created, const char *want) {
  const char *recs[] = {"{\"email\":\"ada@example.com\"}"};
  char cfg[512], err[512], ids[300] = "";
  if (list_ids != NULL)
    snprintf(ids, sizeof ids, "\"list_ids\":%s,", list_ids);
  snprintf(cfg, sizeof cfg, "{\"list_name\":\"%s\",%s\"job_poll_ms\":5}", name,
           ids);
  G->fake.list_pages = 0;
  assert_int_equal(run_write(cfg, recs, 1, err, sizeof err), CR_PLUGIN_OK);
  assert_int_equal(G->fake.list_pages, pages);
  assert_int_equal(G->fake.lists_created, created);
  snprintf(ids, sizeof ids, "\"list_ids\":%s", want);
  assert_non_null(strstr(last_put(), ids));
}

/* config.list_name: a list missing at SendGrid is created once (every page
 * of lists read first) and the contacts go to it, with config.list_ids; a
 * later run finds it instead of creating a duplicate; an existing list on
 * the first page is found; a name SendGrid refuses fails as config. */
static void test_write_list_by_name(void **state) {
  (void)state;
  list_write("connrun export", "[\"ca7a3796-e8a8-4029-9ccb-df8937940562\"]", 2,
             1,
             "[\"ca7a3796-e8a8-4029-9ccb-df8937940562\",\"2f0bc1f0-0000-4000-"
             "8000-000000000001\"]");
  assert_string_equal(G->fake.list_name[3], "connrun export");
  /* The next run (another instance) finds it on the second page. */
  list_write("connrun export", NULL, 2, 1,
             "[\"2f0bc1f0-0000-4000-8000-000000000001\"]");
  /* An existing list: found on the first page, nothing created. */
  list_write("Customers", NULL, 1, 1,
             "[\"199abb98-0af3-4a8d-b371-6811ff85d062\"]");
  /* SendGrid refuses to create one more list (the fake holds 8): a config
   * error naming the reason, and no contacts sent. */
  const char *recs[] = {"{\"email\":\"ada@example.com\"}"};
  char err[512];
  G->fake.nlists = 8;
  int puts = G->fake.puts;
  assert_int_equal(run_write("{\"list_name\":\"one too many\","
                             "\"job_poll_ms\":5}",
                             recs, 1, err, sizeof err),
                   CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(err, "list creation: SendGrid answered 400: invalid "
                           "list name");
  assert_int_equal(G->fake.puts, puts);
}

/* Through the plugin destination (ABI 1.2, api->record_failed): the job
 * ends "errored" (2 refused); the records whose email SendGrid does not
 * have afterwards (searched by email, 100 at a time) are reported one by
 * one and the batch succeeds, the other 148 kept. */
static void test_write_failures_per_record(void **state) {
  (void)state;
  enum { N = 150 };
  struct cr_plugin_params params;
  params_for(&params, credentials(GOOD_KEY, NULL), "{\"job_poll_ms\":5}");
  cr_dest *d =
      cr_test_open_plugin_dest(G->sg, &params, G->red, capture, &G->log);
  for (int i = 0; i < N; i++) {
    char rec[96];
    snprintf(rec, sizeof rec, "{\"email\":\"%s%d@Example.com\"}",
             i == 3 || i == 120 ? "bad" : "user", i);
    assert_int_equal(cr_dest_write(d, "contacts", rec, strlen(rec)), 0);
  }
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(cr_dest_records_failed(d), 2);
  assert_int_equal(G->fake.puts, 1);
  assert_int_equal(G->fake.searched, N); /* two searches: 100 + 50 */
  assert_int_equal(cr_test_count_containing(
                       G->log.text, G->log.n,
                       "sendgrid rejected record 3 of a batch of 150 (stream "
                       "contacts): not in Marketing Contacts after upsert "
                       "job job-1 (errored)"),
                   1);
  assert_int_equal(cr_test_count_containing(G->log.text, G->log.n,
                                            "rejected record 120 of a batch "
                                            "of 150"),
                   1);
  assert_int_equal(cr_test_count_containing(G->log.text, G->log.n,
                                            "could not be told apart"),
                   0);
  for (int i = 0; i < G->log.n; i++)
    assert_no_key(G->log.text[i]);
  assert_int_equal(cr_dest_flush(d), 0); /* nothing sent again */
  assert_int_equal(G->fake.puts, 1);
  cr_dest_close(d);
}

static const char MISBEHAVE_SRC[] =
    "#include <connrun/plugin.h>\n"
    "#include <connrun/plugin_util.h>\n"
    "struct mb { const struct cr_host_api *api; char mode[32], key[64]; };\n"
    "static int mb_create(const struct cr_host_api *api,\n"
    "    const struct cr_plugin_params *p, void **out, char *eb, size_t el) {\n"
    "  char mode[32] = \"\", key[64] = \"\";\n"
    "  cr_json_get_string(p->credentials_json, \"mode\", mode, sizeof mode);\n"
    "  cr_json_get_string(p->credentials_json, \"key\", key, sizeof key);\n"
    "  if (!strcmp(mode, \"create_system\")) {\n"
    "    snprintf(eb, el, \"cannot start with key %s\", key);\n"
    "    return CR_PLUGIN_ERR_SYSTEM; }\n"
    "  if (!strcmp(mode, \"create_config\")) {\n"
    "    snprintf(eb, el, \"bad key %s\", key); return CR_PLUGIN_ERR_CONFIG; "
    "}\n"
    "  if (!strcmp(mode, \"create_silent\")) return CR_PLUGIN_ERR_TRANSIENT;\n"
    "  struct mb *m = api->alloc(sizeof *m);\n"
    "  if (m == NULL) return CR_PLUGIN_ERR_SYSTEM;\n"
    "  m->api = api;\n"
    "  snprintf(m->mode, sizeof m->mode, \"%s\", mode);\n"
    "  snprintf(m->key, sizeof m->key, \"%s\", key);\n"
    "  *out = m; return CR_PLUGIN_OK; }\n"
    "static void mb_destroy(void *i) {\n"
    "  struct mb *m = i; if (m) m->api->free(m); }\n"
    "static int mb_health(void *i, cr_plugin_ctx *ctx,\n"
    "    struct cr_plugin_health_result *out) {\n"
    "  struct mb *m = i;\n"
    "  if (!strcmp(m->mode, \"bad_status\")) { out->status = 7; return 0; }\n"
    "  if (!strcmp(m->mode, \"long_reason\")) {\n"
    "    size_t n = out->reason_len - 1;\n"
    "    memset(out->reason, 'x', n); memcpy(out->reason + n - 8, m->key, 8);\n"
    "    out->reason[n] = 0; out->status = CR_PLUGIN_HEALTH_HEALTHY;\n"
    "    return 0; }\n"
    "  if (!strcmp(m->mode, \"error_silent\")) return "
    "CR_PLUGIN_ERR_TRANSIENT;\n"
    "  if (!strcmp(m->mode, \"error_reason\")) {\n"
    "    snprintf(out->reason, out->reason_len, \"half done with %s\", "
    "m->key);\n"
    "    return CR_PLUGIN_ERR_SYSTEM; }\n"
    "  if (!strcmp(m->mode, \"config_error\"))\n"
    "    return cr_plugin_errorf(m->api, ctx, CR_PLUGIN_ERR_CONFIG, 0,\n"
    "                            \"key %s revoked\", m->key);\n"
    "  cr_plugin_logf(m->api, ctx, CR_PLUGIN_LOG_INFO, \"checking %s\", "
    "m->key);\n"
    "  out->status = CR_PLUGIN_HEALTH_HEALTHY;\n"
    "  snprintf(out->reason, out->reason_len, \"ok %s\", m->key);\n"
    "  return 0; }\n"
    "static const char *const mb_methods[] = {\"api_key\", NULL};\n"
    "static const struct cr_plugin_descriptor mb_desc = {\n"
    "  CR_PLUGIN_DESCRIPTOR_HEADER, .name = \"misbehave\",\n"
    "  .display_name = \"Misbehave\", .version = \"1.0.0\",\n"
    "  .auth_methods = mb_methods,\n"
    "  .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK,\n"
    "  .create = mb_create, .destroy = mb_destroy,\n"
    "  .health_check = mb_health };\n"
    "CR_PLUGIN_ENTRY(api) { (void)api; return &mb_desc; }\n";

#define MB_KEY "mbSecretKey-0123456789"

/* Compiles MISBEHAVE_SRC against the SDK alone and loads it. */
static const cr_plugin *load_misbehave(char **dir_out) {
  char *dir = cr_test_mkdtemp("health");
  char *src = cr_test_write_file(dir, "misbehave.c", MISBEHAVE_SRC);
  char so[1024], inc[1024];
  snprintf(so, sizeof so, "%s/misbehave.so", dir);
  snprintf(inc, sizeof inc, "-I%s/sdk/include", CR_SOURCE_DIR);
  char *argv[] = {CR_C_COMPILER, "-std=c11", "-D_XOPEN_SOURCE=700",
                  "-Wall",       "-Wextra",  "-Werror",
                  "-fPIC",       "-shared",  "-fvisibility=hidden",
                  inc,           "-o",       so,
                  src,           NULL};
  char *out = NULL;
  int rc = cr_test_run(argv, NULL, &out);
  if (rc != 0)
    fprintf(stderr, "compiling the test plugin failed:\n%s\n", out);
  assert_int_equal(rc, 0);
  free(out);
  free(src);
  char err[512] = "";
  if (cr_plugin_host_load_file(G->host, so, err, sizeof err) != 0 &&
      cr_plugin_host_find(G->host, "misbehave") == NULL)
    fprintf(stderr, "cannot load %s: %s\n", so, err);
  *dir_out = dir;
  return cr_plugin_host_find(G->host, "misbehave");
}

static void mb_check(const cr_plugin *p, const char *mode,
                     struct cr_health_outcome *out) {
  char creds[256];
  snprintf(creds, sizeof creds, "{\"mode\":\"%s\",\"key\":\"%s\"}", mode,
           MB_KEY);
  assert_int_equal(cr_redactor_add(G->red, MB_KEY), 0);
  check(p, creds, out);
  assert_null(strstr(out->reason, "mbSecret"));
  for (int i = 0; i < G->log.n; i++)
    assert_null(strstr(G->log.text[i], "mbSecret"));
}

static void test_runner_edge_cases(void **state) {
  (void)state;
  char *dir = NULL;
  const cr_plugin *p = load_misbehave(&dir);
  assert_non_null(p);
  struct cr_health_outcome out;
  const struct {
    const char *mode;
    int status;
    int result;
    const char *reason;
  } cases[] = {
      {"create_system", CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_ERR_SYSTEM,
       "cannot start with key [REDACTED]"},
      {"create_config", CR_PLUGIN_HEALTH_UNHEALTHY, CR_PLUGIN_ERR_CONFIG,
       "bad key [REDACTED]"},
      {"create_silent", CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_ERR_TRANSIENT,
       "provider plugin could not start (transient error)"},
      {"bad_status", CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_OK,
       "provider plugin returned an invalid health status (7)"},
      {"error_silent", CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_ERR_TRANSIENT,
       "health check failed (transient error)"},
      {"error_reason", CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_ERR_SYSTEM,
       "half done with [REDACTED]"},
      {"config_error", CR_PLUGIN_HEALTH_UNHEALTHY, CR_PLUGIN_ERR_CONFIG,
       "key [REDACTED] revoked"},
      {"logs", CR_PLUGIN_HEALTH_HEALTHY, CR_PLUGIN_OK, "ok [REDACTED]"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mb_check(p, cases[i].mode, &out);
    assert_int_equal(out.status, cases[i].status);
    assert_int_equal(out.result, cases[i].result);
    assert_string_equal(out.reason, cases[i].reason);
    assert_int_equal(out.requests, 0);
  }
  assert_non_null(G->log.n > 0 ? G->log.text[G->log.n - 1] : NULL);
  assert_string_equal(G->log.text[G->log.n - 1], "checking [REDACTED]");
  /* A full reason buffer ending in the start of the key: cut secret hidden. */
  mb_check(p, "long_reason", &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_HEALTHY);
  assert_int_equal(strlen(out.reason), sizeof out.reason - 1);
  assert_int_equal(strspn(out.reason, "x"), 503);
  assert_int_equal(strncmp(out.reason + 503, "[REDACTE", 8), 0);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_runner_test_plugins(void **state) {
  (void)state;
  char err[512] = "";
  cr_plugin_host_load_file(G->host, CR_TEST_PLUGIN_DIR "/good_beta.so", err,
                           sizeof err);
  cr_plugin_host_load_file(G->host, CR_TEST_PLUGIN_DIR "/cfgtest.so", err,
                           sizeof err);
  const cr_plugin *beta = cr_plugin_host_find(G->host, "beta");
  const cr_plugin *cfg = cr_plugin_host_find(G->host, "cfgtest");
  assert_non_null(beta);
  assert_non_null(cfg);
  struct cr_health_outcome out;
  check(beta, "{}", &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_string_equal(out.reason, "provider does not support health checks");
  /* Healthy without a reason gets a default one. */
  check(cfg, "{\"api_key\":\"SG.12345678\"}", &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_HEALTHY);
  assert_string_equal(out.reason, "healthy");
  struct cr_plugin_params params;
  params_for(&params, "{}", NULL);
  assert_int_equal(cr_health_check(NULL, &params, NULL, &out), CR_EINVAL);
  assert_int_equal(cr_health_check(cfg, NULL, NULL, &out), CR_EINVAL);
  assert_int_equal(cr_health_check(cfg, &params, NULL, NULL), CR_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor),
      cmocka_unit_test_setup_teardown(test_health_valid_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_missing_scope, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_rejected_key, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_key_echoed_by_provider, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_forbidden, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_rate_limited, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_server_error, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_health_server_down, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_bad_credentials, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_read_contacts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_stream_not_selected, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_contacts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_failures_per_record, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_list_by_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runner_edge_cases, setup, teardown),
      cmocka_unit_test_setup_teardown(test_runner_test_plugins, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
