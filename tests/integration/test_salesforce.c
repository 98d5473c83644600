/* test_salesforce.c: the salesforce plugin, loaded from build/plugins,
 * against a fake Salesforce on loopback (one server plays the login URL
 * and the instance_url it hands out) that follows the published shapes:
 *   token endpoint POST /services/oauth2/token (refresh_token and JWT bearer
 *     grants; {"access_token","instance_url","id","token_type","issued_at",
 *     "signature"[,"refresh_token" when rotating]}; errors {"error":
 *     "invalid_grant","error_description":"expired access/refresh token"})
 *     help.salesforce.com remoteaccess_oauth_refresh_token_flow.htm and
 *     xcloud.remoteaccess_oauth_jwt_flow.htm;
 *   GET /services/data/v59.0/limits ({"DailyApiRequests":{"Max","Remaining"}})
 *     developer.salesforce.com .../resources_limits.htm;
 *   GET .../query?q=SOQL and the nextRecordsUrl pages ({"totalSize","done",
 *     "nextRecordsUrl","records":[{"attributes":{"type","url"},...}]})
 *     developer.salesforce.com/docs/platform/api-rest/guide/resources-query;
 *   PATCH .../composite/sobjects/Account/Ext_Id__c (allOrNone false, one
 *     UpsertResult {"id","success","errors":[{"statusCode","message",
 *     "fields"}],"created"} per record, at most 200 records)
 *     .../resources-composite-sobjects-collections-upsert.html;
 *   errors [{"message","errorCode"}]: 401 INVALID_SESSION_ID, 403
 *     REQUEST_LIMIT_EXCEEDED ("TotalRequests Limit exceeded.")
 *     .../api-rest/guide/errorcodes.html.
 * Health through the health runner, read and write through the plugin's
 * callbacks with collecting sinks, and a process-isolated execution with
 * the store: a rotated refresh token is stored and used by the next run,
 * and a worker killed in the middle of a multi-page read resumes from its
 * last checkpoint. No token, secret or key may reach a reason or a log. */
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
#include "util/alloc.h"
#include "util/redact.h"

#include <connrun/plugin_util.h>

#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_ID "3MVG9fakeConsumerKey0123456789"
#define CLIENT_SECRET "fakeConsumerSecret-A1B2C3D4E5"
#define REFRESH0 "5Aep861fakeRefreshToken-000"
#define USERNAME "integration@example.com"
#define API "/services/data/v59.0"

/* ---- The fake Salesforce -------------------------------------------------
 */

enum mode {
  M_NORMAL,
  M_REVOKED,
  M_401,
  M_503,
  M_SLOW,
  M_LIMIT,
  M_EXPIRE,
  M_ODD /* one page of records laid out unusually */
};

struct fake_sf {
  pthread_mutex_t mu;
  enum mode mode;
  int rotate;         /* issue a new refresh token on every refresh */
  int issued;         /* access tokens issued */
  char refresh[64];   /* the refresh token currently valid */
  char access[64];    /* the access token currently valid */
  int nrecords, page; /* Account records, page size */
  int kill_pid;       /* SIGKILLed when the page at kill_offset is asked */
  int kill_offset;
  unsigned kill_delay_ms; /* ... that long after it was asked */
  int expire_after; /* M_EXPIRE: API calls answered before the token dies */
  int api_calls;
  EVP_PKEY *jwt_key; /* public key the JWT assertions must verify with */
  int batches[8];    /* records per upsert request */
  int nbatches;
  const char *url;
};

static const char INVALID_SESSION[] =
    "[{\"message\":\"Session expired or invalid\","
    "\"errorCode\":\"INVALID_SESSION_ID\"}]";

/* Decodes %XX and '+' of src[0..n) into a malloc'd string. */
static char *pct_decode(const char *src, size_t n) {
  char *out = malloc(n + 1), *o = out;
  for (size_t i = 0; i < n; i++) {
    if (src[i] == '%' && i + 2 < n) {
      char hex[3] = {src[i + 1], src[i + 2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      *o++ = src[i] == '+' ? ' ' : src[i];
    }
  }
  *o = '\0';
  return out;
}

/* The decoded value of form/query parameter name in s, or NULL (free). */
static char *param(const char *s, const char *name) {
  size_t nl = strlen(name);
  for (const char *p = s; p != NULL && *p;
       p = strchr(p, '&'), p = p ? p + 1 : p)
    if (strncmp(p, name, nl) == 0 && p[nl] == '=')
      return pct_decode(p + nl + 1, strcspn(p + nl + 1, "&"));
  return NULL;
}

/* Record i's fields: what the plugin emits. */
static void fields_json(char *buf, size_t len, int i) {
  snprintf(buf, len,
           "{\"Id\":\"001Dn00000Fake%03dAAA\",\"Name\":\"Account \\\"%d\\\"\","
           "\"SystemModstamp\":\"2024-01-01T00:00:%02d.000+0000\"}",
           i, i, i);
}

/* Record i as the query answers it: attributes first, then its fields. */
static void record_json(char *buf, size_t len, int i) {
  char fields[400];
  fields_json(fields, sizeof fields, i);
  snprintf(buf, len,
           "{\"attributes\":{\"type\":\"Account\",\"url\":\"" API
           "/sobjects/Account/001Dn00000Fake%03dAAA\"},%s",
           i, fields + 1);
}

/* One page of the query whose records start at second `from`, from index
 * offset on. */
static void query_page(struct fake_sf *f, struct cr_fake_http_response *resp,
                       int from, int offset) {
  int total = f->nrecords - from > 0 ? f->nrecords - from : 0;
  int end = offset + f->page < total ? offset + f->page : total;
  char *body = malloc(65536), next[160] = "";
  size_t n = 0;
  if (end < total)
    snprintf(next, sizeof next,
             ",\"nextRecordsUrl\":\"" API "/query/01gFAKE%02d-%d\"", from, end);
  n += (size_t)snprintf(body + n, 65536 - n,
                        "{\"totalSize\":%d,\"done\":%s%s,\"records\":[", total,
                        end < total ? "false" : "true", next);
  for (int i = offset; i < end; i++) {
    char rec[512];
    record_json(rec, sizeof rec, from + i);
    n += (size_t)snprintf(body + n, 65536 - n, "%s%s", i > offset ? "," : "",
                          rec);
  }
  snprintf(body + n, 65536 - n, "]}");
  cr_fake_http_set_body(resp, "%s", body);
  free(body);
}

/* GET /query?q=SELECT ... [WHERE SystemModstamp >= 2024-01-01T00:00:SSZ]
 * ORDER BY SystemModstamp ASC. */
/* Whitespace around attributes, a record of nothing but attributes, and
 * one whose attributes are not its first member (left as it is). */
#define ODD_PAGE                                                               \
  "{\"totalSize\":5,\"done\":true,\"records\":[{ \"attributes\" : "            \
  "{\"type\":\"Account\"} , "                                                  \
  "\"Id\":\"a\",\"SystemModstamp\":\"2024-01-01T00:00:"                        \
  "01.000+0000\"},{\"attributes\":{\"type\":\"Account\"}},{\"Id\":\"b\","      \
  "\"attributes\":{\"type\":\"Account\"},\"SystemModstamp\":\"2024-01-01T00:"  \
  "00:"                                                                        \
  "02.000+0000\"},{\"attributes\":{\"url\":\"/x\\\"}{\",\"n\":{\"k\":[1]}},"   \
  "\"Id\":\"c\",\"SystemModstamp\":\"2024-01-01T00:00:03.000+0000\"},"         \
  "{\"attributes\":null,\"Id\":\"d\",\"SystemModstamp\":"                      \
  "\"2024-01-01T00:00:04.000+0000\"}]}"

static void fake_query(struct fake_sf *f,
                       const struct cr_fake_http_request *req,
                       struct cr_fake_http_response *resp) {
  if (f->mode == M_ODD) {
    resp->body = ODD_PAGE;
    return;
  }
  char *q = req->query ? param(req->query, "q") : NULL;
  const char *w = q ? strstr(q, "SystemModstamp >= 2024-01-01T00:00:") : NULL;
  int from = w ? atoi(w + strlen("SystemModstamp >= 2024-01-01T00:00:")) : 0;
  if (q == NULL || strncmp(q, "SELECT ", 7) != 0 ||
      strstr(q, " FROM Account") == NULL ||
      strstr(q, "ORDER BY SystemModstamp ASC") == NULL) {
    resp->status = 400;
    resp->body = "[{\"message\":\"unexpected query\",\"errorCode\":"
                 "\"MALFORMED_QUERY\"}]";
    free(q);
    return;
  }
  free(q);
  query_page(f, resp, from, 0);
}

static int jwt_ok(struct fake_sf *f, const char *assertion) {
  const char *d1 = strchr(assertion, '.');
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (d2 == NULL || f->jwt_key == NULL)
    return 0;
  /* base64url -> base64 for EVP_DecodeBlock. */
  size_t sl = strlen(d2 + 1), cl = (size_t)(d2 - d1 - 1);
  char *b = calloc(1, sl + cl + 8);
  unsigned char *raw = calloc(1, sl + cl + 8);
  int ok = 0;
  for (int part = 0; part < 2; part++) {
    const char *s = part == 0 ? d2 + 1 : d1 + 1;
    size_t n = part == 0 ? sl : cl, k;
    for (k = 0; k < n; k++)
      b[k] = s[k] == '-' ? '+' : s[k] == '_' ? '/' : s[k];
    while (k % 4)
      b[k++] = '=';
    b[k] = '\0';
    int len = EVP_DecodeBlock(raw, (unsigned char *)b, (int)k);
    int pad = (int)(k - n);
    if (len < 0)
      break;
    len -= pad;
    if (part == 0) {
      EVP_MD_CTX *md = EVP_MD_CTX_new();
      ok =
          EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, f->jwt_key) == 1 &&
          EVP_DigestVerify(md, raw, (size_t)len,
                           (const unsigned char *)assertion,
                           (size_t)(d2 - assertion)) == 1;
      EVP_MD_CTX_free(md);
    } else if (ok) {
      json_t *c = json_loadb((const char *)raw, (size_t)len, 0, NULL);
      const char *iss = json_string_value(json_object_get(c, "iss"));
      const char *sub = json_string_value(json_object_get(c, "sub"));
      const char *aud = json_string_value(json_object_get(c, "aud"));
      json_int_t exp = json_integer_value(json_object_get(c, "exp"));
      ok = iss && sub && aud && strcmp(iss, CLIENT_ID) == 0 &&
           strcmp(sub, USERNAME) == 0 && strcmp(aud, f->url) == 0 &&
           exp > (json_int_t)time(NULL) && exp <= (json_int_t)time(NULL) + 300;
      json_decref(c);
    }
  }
  free(b);
  free(raw);
  return ok;
}

static void fake_token(struct fake_sf *f,
                       const struct cr_fake_http_request *req,
                       struct cr_fake_http_response *resp) {
  char *grant = param(req->body, "grant_type");
  int ok = 0, rotated = 0;
  if (grant && strcmp(grant, "refresh_token") == 0) {
    char *id = param(req->body, "client_id");
    char *sec = param(req->body, "client_secret");
    char *rt = param(req->body, "refresh_token");
    ok = f->mode != M_REVOKED && id && sec && rt &&
         strcmp(id, CLIENT_ID) == 0 && strcmp(sec, CLIENT_SECRET) == 0 &&
         strcmp(rt, f->refresh) == 0;
    if (ok && f->rotate) {
      snprintf(f->refresh, sizeof f->refresh, "5Aep861fakeRotated-%03d",
               f->issued + 1);
      rotated = 1;
    }
    free(id);
    free(sec);
    free(rt);
  } else if (grant &&
             strcmp(grant, "urn:ietf:params:oauth:grant-type:jwt-bearer") ==
                 0) {
    char *a = param(req->body, "assertion");
    ok = a && jwt_ok(f, a);
    free(a);
  }
  free(grant);
  if (!ok) {
    resp->status = 400;
    resp->body = "{\"error\":\"invalid_grant\",\"error_description\":"
                 "\"expired access/refresh token\"}";
    return;
  }
  f->issued++;
  snprintf(f->access, sizeof f->access, "00DFAKE!AQ4AQfakeAccess.%03d",
           f->issued);
  char extra[128] = "";
  if (rotated)
    snprintf(extra, sizeof extra, ",\"refresh_token\":\"%s\"", f->refresh);
  cr_fake_http_set_body(
      resp,
      "{\"access_token\":\"%s\",\"signature\":\"fakeSig=\",\"scope\":"
      "\"refresh_token api\",\"instance_url\":\"%s\",\"id\":"
      "\"%s/id/00DFAKE/005FAKE\",\"token_type\":\"Bearer\",\"issued_at\":"
      "\"1700000000000\"%s}",
      f->access, f->url, f->url, extra);
}

/* PATCH composite/sobjects/Account/Ext_Id__c: a record named "BAD..."
 * fails, the others are created. */
static void fake_upsert(struct fake_sf *f,
                        const struct cr_fake_http_request *req,
                        struct cr_fake_http_response *resp) {
  json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
  json_t *recs = json_object_get(body, "records");
  size_t n = json_array_size(recs), i;
  json_t *r;
  if (!json_is_false(json_object_get(body, "allOrNone")) || n == 0 || n > 200) {
    resp->status = 400;
    resp->body = "[{\"message\":\"bad collection\",\"errorCode\":"
                 "\"INVALID_FIELD\"}]";
    json_decref(body);
    return;
  }
  if (f->nbatches < 8)
    f->batches[f->nbatches++] = (int)n;
  json_t *out = json_array();
  json_array_foreach(recs, i, r) {
    const char *type = json_string_value(
        json_object_get(json_object_get(r, "attributes"), "type"));
    const char *name = json_string_value(json_object_get(r, "Name"));
    int bad = type == NULL || strcmp(type, "Account") != 0 ||
              json_object_get(r, "Id") != NULL ||
              json_object_get(r, "Ext_Id__c") == NULL || name == NULL ||
              strncmp(name, "BAD", 3) == 0;
    if (bad)
      json_array_append_new(
          out, json_pack("{s:b,s:[{s:s,s:s,s:[s]}]}", "success", 0, "errors",
                         "statusCode", "REQUIRED_FIELD_MISSING", "message",
                         "Required fields are missing: [LastName]", "fields",
                         "LastName"));
    else
      json_array_append_new(out, json_pack("{s:s,s:b,s:[],s:b}", "id",
                                           "001Dn00000Upsert", "success", 1,
                                           "errors", "created", 1));
  }
  char *txt = json_dumps(out, JSON_COMPACT);
  cr_fake_http_set_body(resp, "%s", txt);
  free(txt);
  json_decref(out);
  json_decref(body);
}

static void fake_api(struct fake_sf *f, const struct cr_fake_http_request *req,
                     struct cr_fake_http_response *resp) {
  const char *auth = cr_fake_http_header(req, "Authorization");
  char want[96];
  snprintf(want, sizeof want, "Bearer %s", f->access);
  f->api_calls++;
  if (f->mode == M_EXPIRE && f->api_calls == f->expire_after + 1)
    f->access[0] = '\0'; /* the session ends (e.g. timeout, logout) */
  if (auth == NULL || f->access[0] == '\0' || strcmp(auth, want) != 0 ||
      f->mode == M_401) {
    resp->status = 401;
    resp->body = INVALID_SESSION;
    return;
  }
  if (f->mode == M_LIMIT) {
    resp->status = 403;
    resp->body = "[{\"message\":\"TotalRequests Limit exceeded.\","
                 "\"errorCode\":\"REQUEST_LIMIT_EXCEEDED\"}]";
    return;
  }
  if (strcmp(req->path, API "/limits") == 0) {
    if (f->mode == M_SLOW)
      resp->delay_ms = 3000;
    resp->body = "{\"DailyApiRequests\":{\"Max\":15000,\"Remaining\":14998},"
                 "\"DailyBulkApiBatches\":{\"Max\":15000,\"Remaining\":"
                 "15000}}";
  } else if (strcmp(req->path, API "/query") == 0 &&
             strcmp(req->method, "GET") == 0) {
    fake_query(f, req, resp);
  } else if (strncmp(req->path, API "/query/01gFAKE",
                     strlen(API "/query/01gFAKE")) == 0) {
    int from = atoi(req->path + strlen(API "/query/01gFAKE"));
    const char *dash = strrchr(req->path, '-');
    int offset = dash ? atoi(dash + 1) : 0;
    if (f->kill_pid > 0 && offset == f->kill_offset) {
      usleep(f->kill_delay_ms * 1000u);
      kill(f->kill_pid, SIGKILL);
      f->kill_pid = 0;
    }
    query_page(f, resp, from, offset);
  } else if (strcmp(req->method, "PATCH") == 0 &&
             strcmp(req->path, API "/composite/sobjects/Account/Ext_Id__c") ==
                 0) {
    fake_upsert(f, req, resp);
  } else {
    resp->status = 404;
    resp->body = "[{\"errorCode\":\"NOT_FOUND\",\"message\":\"The requested "
                 "resource does not exist\"}]";
  }
}

static void fake_salesforce(void *ud, const struct cr_fake_http_request *req,
                            struct cr_fake_http_response *resp) {
  struct fake_sf *f = ud;
  pthread_mutex_lock(&f->mu);
  if (f->mode == M_503) {
    resp->status = 503;
    resp->body = "[{\"message\":\"Service Unavailable\",\"errorCode\":"
                 "\"SERVER_UNAVAILABLE\"}]";
  } else if (strcmp(req->path, "/services/oauth2/token") == 0 &&
             strcmp(req->method, "POST") == 0) {
    fake_token(f, req, resp);
  } else {
    fake_api(f, req, resp);
  }
  pthread_mutex_unlock(&f->mu);
}

/* ---- Fixture ----------------------------------------------------------------
 */

struct lines {
  char *text[256];
  int n;
};

static void capture(void *ud, int level, const char *msg) {
  struct lines *l = ud;
  (void)level;
  if (l->n < 256)
    l->text[l->n++] = strdup(msg);
}

static struct {
  cr_plugin_host *host;
  const cr_plugin *sf;
  struct fake_sf fake;
  cr_fake_http *srv;
  cr_redactor *red;
  struct lines log;
  char creds[12288];
  char config[1024];
} * G;

static int group_setup(void **state) {
  (void)state;
  G = calloc(1, sizeof *G);
  if (G == NULL)
    return -1;
  G->sf = cr_test_load_bundled("salesforce", &G->host);
  return G->sf != NULL ? 0 : -1;
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
  snprintf(G->fake.refresh, sizeof G->fake.refresh, "%s", REFRESH0);
  G->fake.nrecords = 10;
  G->fake.page = 4;
  G->log.n = 0;
  if (cr_fake_http_start(fake_salesforce, &G->fake, &G->srv) != 0)
    return -1;
  G->fake.url = cr_fake_http_url(G->srv);
  if (cr_redactor_new(&G->red) != 0 || cr_redactor_add(G->red, CLIENT_SECRET) ||
      cr_redactor_add(G->red, REFRESH0))
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cr_fake_http_stop(G->srv);
  cr_redactor_free(G->red);
  EVP_PKEY_free(G->fake.jwt_key);
  pthread_mutex_destroy(&G->fake.mu);
  for (int i = 0; i < G->log.n; i++)
    free(G->log.text[i]);
  G->log.n = 0;
  return 0;
}

/* No captured line and no text holds a secret or a token (even the
 * unredacted rotated and access tokens). */
static void assert_no_secret(const char *text) {
  const char *pieces[] = {
      CLIENT_SECRET, "fakeConsumerSecret", REFRESH0,     "fakeRefreshToken",
      "fakeRotated", "fakeAccess",         "PRIVATE KEY"};
  for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
    if (text != NULL)
      assert_null(strstr(text, pieces[p]));
    for (int i = 0; i < G->log.n; i++)
      assert_null(strstr(G->log.text[i], pieces[p]));
  }
}

static const char *refresh_creds(void) {
  snprintf(G->creds, sizeof G->creds,
           "{\"client_id\":\"" CLIENT_ID "\",\"client_secret\":\"" CLIENT_SECRET
           "\",\"refresh_token\":\"" REFRESH0 "\"}");
  return G->creds;
}

static const char *config_for(const char *login_url, const char *extra) {
  snprintf(G->config, sizeof G->config,
           "{\"login_url\":\"%s/\",\"objects\":[{\"name\":\"Account\","
           "\"fields\":[\"Id\",\"Name\",\"SystemModstamp\"]}]%s}",
           login_url ? login_url : cr_fake_http_url(G->srv),
           extra ? extra : "");
  return G->config;
}

static void params_for(struct cr_plugin_params *p, const char *method,
                       const char *creds, const char *config) {
  memset(p, 0, sizeof *p);
  p->struct_size = sizeof *p;
  p->authorization_id = "sf-main";
  p->auth_method = method;
  p->credentials_json = creds;
  p->config_json = config;
}

static void check(const char *method, const char *creds, const char *config,
                  long timeout_ms, struct cr_health_outcome *out) {
  struct cr_plugin_params params;
  params_for(&params, method, creds, config);
  struct cr_health_options opts;
  memset(&opts, 0, sizeof opts);
  opts.log = capture;
  opts.log_ud = &G->log;
  opts.timeout_ms = timeout_ms;
  assert_int_equal(cr_health_check_ex(G->sf, &params, G->red, &opts, out), 0);
  assert_true(out->reason[0] != '\0');
  assert_no_secret(out->reason);
}

/* ---- Descriptor and health ------------------------------------------------
 */

static void test_descriptor(void **state) {
  (void)state;
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->sf);
  assert_string_equal(d->name, "salesforce");
  assert_int_equal(d->capabilities, CR_PLUGIN_CAP_HEALTH_CHECK |
                                        CR_PLUGIN_CAP_READ |
                                        CR_PLUGIN_CAP_WRITE);
  assert_true(cr_plugin_accepts_method(G->sf, "oauth2_refresh_token"));
  assert_true(cr_plugin_accepts_method(G->sf, "oauth2_jwt_bearer"));
  assert_false(cr_plugin_accepts_method(G->sf, "api_key"));
  assert_non_null(strstr(d->streams_json, "\"name\":\"Account\""));
}

static void test_health_healthy(void **state) {
  (void)state;
  struct cr_health_outcome out;
  check("oauth2_refresh_token", refresh_creds(), config_for(NULL, NULL), 5000,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_HEALTHY);
  assert_string_equal(out.reason,
                      "access token issued; 14998 of 15000 daily API "
                      "requests left");
  assert_int_equal(out.requests, 2);
  const struct cr_fake_http_request *t = cr_fake_http_request_at(G->srv, 0);
  assert_string_equal(t->method, "POST");
  assert_string_equal(t->path, "/services/oauth2/token");
  assert_string_equal(cr_fake_http_header(t, "Content-Type"),
                      "application/x-www-form-urlencoded");
  const struct cr_fake_http_request *l = cr_fake_http_request_at(G->srv, 1);
  assert_string_equal(l->path, API "/limits");
  assert_string_equal(cr_fake_http_header(l, "Authorization"),
                      "Bearer 00DFAKE!AQ4AQfakeAccess.001");
  assert_no_secret(NULL);
}

static void test_health_unhealthy(void **state) {
  (void)state;
  struct cr_health_outcome out;
  G->fake.mode = M_REVOKED;
  check("oauth2_refresh_token", refresh_creds(), config_for(NULL, NULL), 5000,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(out.reason, "Salesforce refused the token request (400 "
                                  "invalid_grant: expired access/refresh "
                                  "token)");
  assert_int_equal(out.requests, 1);
  /* A token that the API refuses: refreshed once, then Unhealthy. */
  G->fake.mode = M_401;
  check("oauth2_refresh_token", refresh_creds(), config_for(NULL, NULL), 5000,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(out.reason,
                      "access token rejected by Salesforce during the limits "
                      "request (401 INVALID_SESSION_ID: Session expired or "
                      "invalid)");
  assert_int_equal(out.requests, 4);
}

static void test_health_unknown(void **state) {
  (void)state;
  struct cr_health_outcome out;
  G->fake.mode = M_503;
  check("oauth2_refresh_token", refresh_creds(), config_for(NULL, NULL), 5000,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_int_equal(out.result, CR_PLUGIN_ERR_TRANSIENT);
  assert_non_null(strstr(out.reason, "Salesforce server error"));
  G->fake.mode = M_SLOW;
  check("oauth2_refresh_token", refresh_creds(), config_for(NULL, NULL), 300,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_int_equal(out.result, CR_PLUGIN_ERR_TRANSIENT);
  assert_non_null(strstr(out.reason, "cannot reach Salesforce (the limits "
                                     "request): "));
  char dead[64];
  assert_int_equal(cr_fake_http_dead_url(dead, sizeof dead), 0);
  check("oauth2_refresh_token", refresh_creds(), config_for(dead, NULL), 5000,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNKNOWN);
  assert_int_equal(out.result, CR_PLUGIN_ERR_TRANSIENT);
  assert_non_null(strstr(out.reason, "cannot reach Salesforce (token "
                                     "request): "));
}

/* A fresh RSA key as PEM (malloc) and its EVP_PKEY. */
static char *rsa_pem(EVP_PKEY **key_out) {
  EVP_PKEY *k = EVP_RSA_gen(2048);
  assert_non_null(k);
  BIO *b = BIO_new(BIO_s_mem());
  assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL),
                   1);
  char *data;
  long n = BIO_get_mem_data(b, &data);
  char *pem = strndup(data, (size_t)n);
  BIO_free(b);
  *key_out = k;
  return pem;
}

static const char *jwt_creds(const char *pem) {
  char esc[8192];
  assert_true(cr_json_escape(pem, esc, sizeof esc) > 0);
  snprintf(G->creds, sizeof G->creds,
           "{\"client_id\":\"" CLIENT_ID "\",\"username\":\"" USERNAME
           "\",\"private_key\":\"%s\"}",
           esc);
  return G->creds;
}

static void test_health_jwt(void **state) {
  (void)state;
  EVP_PKEY *other;
  char *pem = rsa_pem(&G->fake.jwt_key), *wrong = rsa_pem(&other);
  struct cr_health_outcome out;
  check("oauth2_jwt_bearer", jwt_creds(pem), config_for(NULL, NULL), 5000,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_HEALTHY);
  const struct cr_fake_http_request *t = cr_fake_http_request_at(G->srv, 0);
  assert_non_null(strstr(t->body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%"
                                  "3Agrant-type%3Ajwt-bearer&assertion=eyJ"));
  /* Signed with a key the connected app does not have. */
  check("oauth2_jwt_bearer", jwt_creds(wrong), config_for(NULL, NULL), 5000,
        &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_non_null(strstr(out.reason, "invalid_grant"));
  check("oauth2_jwt_bearer", jwt_creds("-----BEGIN NOTHING-----"),
        config_for(NULL, NULL), 5000, &out);
  assert_int_equal(out.status, CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_non_null(strstr(out.reason, "cannot sign the JWT assertion"));
  assert_int_equal(cr_fake_http_count(G->srv), 3);
  EVP_PKEY_free(other);
  free(pem);
  free(wrong);
}

/* ---- Read and write through the callbacks ----------------------------------
 */

struct collect {
  char *record[64];
  int n;
  char checkpoint[256];
  int checkpoints;
  char rotated[256];
  int ahead; /* the next page was asked for while the first was emitted */
};

/* When set, the first record's emit waits (at most 5 s) for the fake to see
 * a request after the query's: the next page, asked for before the first
 * page's records are taken (api->http_start). */
static int g_wait_ahead;

static int c_emit(void *ud, const char *stream, const char *json, size_t len) {
  struct collect *c = ud;
  if (c->n == 64 || strcmp(stream, "Account") != 0)
    return CR_PLUGIN_ERR_SYSTEM;
  for (int i = 0; g_wait_ahead && c->n == 0 && i < 500 && !c->ahead; i++) {
    c->ahead = cr_fake_http_count(G->srv) >= 3; /* token, query, next */
    if (!c->ahead)
      usleep(10000);
  }
  c->record[c->n++] = strndup(json, len);
  return 0;
}

static int c_checkpoint(void *ud, const char *state_json) {
  struct collect *c = ud;
  snprintf(c->checkpoint, sizeof c->checkpoint, "%s", state_json);
  c->checkpoints++;
  return 0;
}

static int c_creds(void *ud, const char *json) {
  struct collect *c = ud;
  snprintf(c->rotated, sizeof c->rotated, "%s", json);
  return 0;
}

static void collect_free(struct collect *c) {
  for (int i = 0; i < c->n; i++)
    free(c->record[i]);
  c->n = 0;
}

/* create, then read (records == NULL) or write n records, then destroy. */
static int run_cb(const char *config, struct collect *c, cr_plugin_ctx *ctx,
                  const char *const *records, size_t n) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->sf);
  struct cr_plugin_params params;
  params_for(&params, "oauth2_refresh_token", refresh_creds(), config);
  memset(c, 0, sizeof *c);
  cr_plugin_ctx_init(ctx, params.authorization_id, G->red);
  cr_plugin_ctx_set_log(ctx, capture, &G->log);
  struct cr_plugin_sinks sinks = {.ud = c,
                                  .emit = c_emit,
                                  .checkpoint = c_checkpoint,
                                  .credentials_update = c_creds};
  cr_plugin_ctx_set_sinks(ctx, &sinks);
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(
      d->create(cr_host_api_default(), &params, &inst, err, sizeof err), 0);
  int rc =
      records ? d->write(inst, ctx, "Account", records, n) : d->read(inst, ctx);
  d->destroy(inst);
  cr_plugin_ctx_cleanup(ctx);
  return rc;
}

static void test_read_pages(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  G->fake.mode = M_EXPIRE; /* the session dies after the first page */
  G->fake.expire_after = 1;
  g_wait_ahead = 1;
  int rc0 =
      run_cb(config_for(NULL, ",\"checkpoint_every\":5"), &c, &ctx, NULL, 0);
  g_wait_ahead = 0;
  assert_true(c.ahead);
  if (rc0 != 0)
    print_message("read: %s\n", ctx.last_error.message);
  assert_int_equal(rc0, 0);
  assert_int_equal(c.n, 10);
  for (int i = 0; i < 10; i++) {
    char want[512];
    fields_json(want, sizeof want, i);
    assert_string_equal(c.record[i], want);
  }
  /* Pages of 4, 4, 2: after 8 records (>= 5 since none), and at the end. */
  assert_int_equal(c.checkpoints, 2);
  assert_string_equal(c.checkpoint, "{\"cursors\":{\"Account\":"
                                    "\"2024-01-01T00:00:09.000+0000\"}}");
  /* token, query, 401 page, token, page again, last page */
  assert_int_equal(cr_fake_http_count(G->srv), 6);
  const struct cr_fake_http_request *q = cr_fake_http_request_at(G->srv, 1);
  char *soql = param(q->query, "q");
  assert_string_equal(soql, "SELECT Id,Name,SystemModstamp FROM Account "
                            "ORDER BY SystemModstamp ASC");
  free(soql);
  assert_string_equal(cr_fake_http_request_at(G->srv, 2)->path,
                      API "/query/01gFAKE00-4");
  assert_string_equal(cr_fake_http_request_at(G->srv, 3)->path,
                      "/services/oauth2/token");
  assert_string_equal(c.rotated, "");
  assert_no_secret(NULL);
  collect_free(&c);
}

/* Records are emitted without the attributes Salesforce puts first in each,
 * cut in place whatever the whitespace around them, and whatever the
 * attributes hold (brackets in strings, nested values, null). */
static void test_read_strips_attributes(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  G->fake.mode = M_ODD;
  assert_int_equal(run_cb(config_for(NULL, NULL), &c, &ctx, NULL, 0), 0);
  assert_int_equal(c.n, 5);
  assert_string_equal(c.record[0], "{ \"Id\":\"a\",\"SystemModstamp\":"
                                   "\"2024-01-01T00:00:01.000+0000\"}");
  assert_string_equal(c.record[1], "{}");
  assert_string_equal(c.record[2],
                      "{\"Id\":\"b\",\"attributes\":{\"type\":\"Account\"},"
                      "\"SystemModstamp\":\"2024-01-01T00:00:02.000+0000\"}");
  assert_string_equal(c.record[3], "{\"Id\":\"c\",\"SystemModstamp\":"
                                   "\"2024-01-01T00:00:03.000+0000\"}");
  assert_string_equal(c.record[4], "{\"Id\":\"d\",\"SystemModstamp\":"
                                   "\"2024-01-01T00:00:04.000+0000\"}");
  assert_string_equal(c.checkpoint, "{\"cursors\":{\"Account\":"
                                    "\"2024-01-01T00:00:04.000+0000\"}}");
  collect_free(&c);
}

/* By default a checkpoint every 10,000 records: the 10 records of the three
 * pages get one, after the last page, with the last record's cursor. A
 * checkpoint_every of 0 is refused. */
static void test_read_checkpoint_default(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  assert_int_equal(run_cb(config_for(NULL, NULL), &c, &ctx, NULL, 0), 0);
  assert_int_equal(c.n, 10);
  assert_int_equal(c.checkpoints, 1);
  assert_string_equal(c.checkpoint, "{\"cursors\":{\"Account\":"
                                    "\"2024-01-01T00:00:09.000+0000\"}}");
  collect_free(&c);
  const struct cr_plugin_descriptor *d = cr_plugin_desc(G->sf);
  struct cr_plugin_params params;
  params_for(&params, "oauth2_refresh_token", refresh_creds(),
             config_for(NULL, ",\"checkpoint_every\":0"));
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(
      d->create(cr_host_api_default(), &params, &inst, err, sizeof err),
      CR_PLUGIN_ERR_CONFIG);
  assert_string_equal(err, "checkpoint_every must be an integer >= 1");
}

static void test_read_rate_limited(void **state) {
  (void)state;
  struct collect c;
  cr_plugin_ctx ctx;
  G->fake.mode = M_LIMIT;
  assert_int_equal(run_cb(config_for(NULL, NULL), &c, &ctx, NULL, 0),
                   CR_PLUGIN_ERR_RATE_LIMITED);
  assert_int_equal(ctx.last_error.result, CR_PLUGIN_ERR_RATE_LIMITED);
  assert_string_equal(ctx.last_error.message,
                      "Salesforce API request limit exceeded during the query "
                      "(403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit "
                      "exceeded.)");
  assert_int_equal(c.n, 0);
  assert_int_equal(c.checkpoints, 0);
}

/* Through the plugin destination (ABI 1.2, api->record_failed): the two
 * rejected records are reported one by one with their index, external id and
 * the UpsertResult's error, counted, logged; the batch succeeds and the 448
 * others are delivered (not sent again by the next flush). */
static void test_write_failures_per_record(void **state) {
  (void)state;
  enum { N = 450 };
  struct cr_plugin_params params;
  params_for(&params, "oauth2_refresh_token", refresh_creds(),
             config_for(NULL, ",\"external_id_field\":\"Ext_Id__c\""));
  cr_dest *d =
      cr_test_open_plugin_dest(G->sf, &params, G->red, capture, &G->log);
  for (int i = 0; i < N; i++) {
    char buf[256];
    snprintf(buf, sizeof buf, "{\"Ext_Id__c\":\"ext-%d\",\"Name\":\"%s%d\"}", i,
             i == 5 || i == 420 ? "BAD " : "Company ", i);
    assert_int_equal(cr_dest_write(d, "Account", buf, strlen(buf)), 0);
  }
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(cr_dest_records_failed(d), 2);
  assert_int_equal(G->fake.nbatches, 3); /* 200 + 200 + 50, each once */
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(G->fake.nbatches, 3);
  assert_int_equal(
      cr_test_count_containing(G->log.text, G->log.n,
                               "salesforce rejected record 5 of a batch of "
                               "450 (stream Account, key ext-5): "
                               "REQUIRED_FIELD_MISSING: Required fields are "
                               "missing: [LastName]"),
      1);
  assert_int_equal(cr_test_count_containing(G->log.text, G->log.n,
                                            "rejected record 420 of a batch "
                                            "of 450 (stream Account, key "
                                            "ext-420)"),
                   1);
  cr_dest_close(d);
  assert_no_secret(NULL);
}

static void test_write_partial_failures(void **state) {
  (void)state;
  enum { N = 450 };
  char *recs[N];
  for (int i = 0; i < N; i++) {
    char buf[256];
    snprintf(buf, sizeof buf,
             "{\"Id\":\"001x\",\"Ext_Id__c\":\"ext-%d\",\"Name\":\"%s%d\","
             "\"attributes\":{\"type\":\"Account\"}}",
             i, i == 5 || i == 420 ? "BAD " : "Company ", i);
    recs[i] = strdup(buf);
  }
  struct collect c;
  cr_plugin_ctx ctx;
  int rc = run_cb(config_for(NULL, ",\"external_id_field\":\"Ext_Id__c\""), &c,
                  &ctx, (const char *const *)recs, N);
  if (rc != CR_PLUGIN_ERR_CONFIG)
    print_message("write: %s\n", ctx.last_error.message);
  assert_int_equal(rc, CR_PLUGIN_ERR_CONFIG);
  assert_int_equal(G->fake.nbatches, 3);
  assert_int_equal(G->fake.batches[0], 200);
  assert_int_equal(G->fake.batches[1], 200);
  assert_int_equal(G->fake.batches[2], 50);
  assert_string_equal(ctx.last_error.message,
                      "2 of 450 Account records rejected by Salesforce "
                      "(first: record 5 (Ext_Id__c=ext-5): "
                      "REQUIRED_FIELD_MISSING: Required fields are missing: "
                      "[LastName])");
  int seen5 = 0, seen420 = 0;
  for (int i = 0; i < G->log.n; i++) {
    seen5 += strcmp(G->log.text[i],
                    "Account record 5 (Ext_Id__c=ext-5) rejected: "
                    "REQUIRED_FIELD_MISSING: Required fields are missing: "
                    "[LastName]") == 0;
    seen420 += strstr(G->log.text[i], "Account record 420 (Ext_Id__c="
                                      "ext-420) rejected") != NULL;
  }
  assert_int_equal(seen5, 1);
  assert_int_equal(seen420, 1);
  /* All good: OK. */
  G->fake.nbatches = 0;
  rc = run_cb(config_for(NULL, ",\"external_id_field\":\"Ext_Id__c\""), &c,
              &ctx, (const char *const *)recs, 5);
  assert_int_equal(rc, CR_PLUGIN_OK);
  assert_int_equal(G->fake.nbatches, 1);
  assert_no_secret(NULL);
  for (int i = 0; i < N; i++)
    free(recs[i]);
}

/* ---- Executions in worker processes, with the store ------------------------
 */

struct fx {
  char *dir;
  cr_daemon *d;
  cr_worker_pool *pool;
  struct cr_exec_env env;
  char *logs;
  size_t logs_len;
};

static void collect_log(void *ud, int level, const char *line) {
  (void)level;
  struct fx *f = ud;
  size_t n = strlen(line);
  char *p = realloc(f->logs, f->logs_len + n + 2);
  assert_non_null(p);
  memcpy(p + f->logs_len, line, n + 1);
  p[f->logs_len + n] = '\n';
  p[f->logs_len + n + 1] = '\0';
  f->logs = p;
  f->logs_len += n + 1;
}

static void fx_start(struct fx *f) {
  memset(f, 0, sizeof *f);
  f->dir = cr_test_mkdtemp("salesforce");
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "host:\n"
           "  data_dir: \"%s/data\"\n"
           "  plugin_dirs: [\"%s\"]\n"
           "authorizations:\n"
           "  - id: sf\n"
           "    provider: salesforce\n"
           "    method: oauth2_refresh_token\n"
           "    credentials: { client_id: \"" CLIENT_ID
           "\", client_secret: \"" CLIENT_SECRET
           "\", refresh_token: \"" REFRESH0 "\" }\n"
           "works:\n"
           "  - id: w\n"
           "    provider: salesforce\n"
           "    authorization: sf\n"
           "    isolation: process\n"
           "    max_attempts: 1\n"
           "    destination: { type: jsonl, path: \"%s/out\" }\n"
           "    config: { login_url: \"%s\", checkpoint_every: 1, "
           "objects: [{ name: Account, fields: [Id, Name, SystemModstamp] "
           "}] }\n",
           f->dir, CR_PLUGIN_DIR, f->dir, cr_fake_http_url(G->srv));
  cr_test_exec_env(f->dir, cfg, &f->d, &f->pool, &f->env);
  f->env.log = collect_log;
  f->env.log_ud = f;
  f->env.log_min_level = CR_LOG_DEBUG;
}

static void fx_close(struct fx *f) {
  const char *pieces[] = {CLIENT_SECRET, REFRESH0, "fakeRotated", "fakeAccess"};
  for (size_t i = 0; f->logs != NULL && i < 4; i++)
    assert_null(strstr(f->logs, pieces[i]));
  cr_worker_pool_free(f->pool);
  cr_daemon_free(f->d);
  cr_test_rmtree(f->dir);
  free(f->dir);
  free(f->logs);
}

static void run_once(struct fx *f, struct cr_exec_outcome *out) {
  int64_t id = 0;
  assert_int_equal(cr_store_exec_create(f->env.store, "w", &id), 0);
  struct cr_exec_claim c;
  memset(&c, 0, sizeof c);
  assert_int_equal(cr_store_exec_claim_one(f->env.store, id, "test", 60000, &c),
                   0);
  assert_int_equal(cr_exec_run(&f->env, &c, out), 0);
  cr__free(c.work_id);
}

/* The stored refresh token of authorization sf into buf. */
static void stored_refresh(struct fx *f, char *buf, size_t len) {
  const struct cr_config_work *w = cr_config_find_work(f->env.cfg, "w");
  char hash[17], *creds = NULL;
  snprintf(hash, sizeof hash, "%016" PRIx64, w->auth->config_hash);
  assert_int_equal(
      cr_store_auth_credentials_get(f->env.store, "sf", hash, &creds), 0);
  assert_int_equal(cr_json_get_string(creds, "refresh_token", buf, len), 0);
  assert_null(strstr(creds, "access"));
  cr__free(creds);
}

static void stored_cursor(struct fx *f, char *buf, size_t len) {
  struct cr_sync_state_rec r;
  memset(&r, 0, sizeof r);
  assert_int_equal(cr_store_sync_state_latest(f->env.store, "w", &r), 0);
  const char *cur;
  size_t n;
  assert_int_equal(cr_json_get_raw(r.state_json, "cursors", &cur, &n), 0);
  assert_int_equal(cr_json_get_string_n(cur, n, "Account", buf, len), 0);
  cr_sync_state_rec_clear(&r);
}

/* The Names of the lines of out/Account.jsonl, joined by spaces. */
static void output_names(struct fx *f, char *buf, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/out/Account.jsonl", f->dir);
  char *txt = cr_test_read_file(path);
  assert_non_null(txt);
  buf[0] = '\0';
  for (char *line = txt, *nl; (nl = strchr(line, '\n')) != NULL;
       line = nl + 1) {
    *nl = '\0';
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    /* the record's fields, without Salesforce's attributes metadata */
    assert_null(json_object_get(j, "attributes"));
    assert_non_null(json_object_get(j, "Id"));
    assert_non_null(json_object_get(j, "SystemModstamp"));
    const char *name = json_string_value(json_object_get(j, "Name"));
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", used ? "|" : "", name + 8);
    json_decref(j);
  }
  free(txt);
}

static void test_exec_rotation_kill_resume(void **state) {
  (void)state;
  struct fx f;
  fx_start(&f);
  G->fake.rotate = 1;
  /* The worker the run will get, killed while it waits for the third page.
   * It asks for that page before it emits the second one (read-ahead), so
   * the kill comes 1 s later: the second page's 4 records and checkpoint
   * are then long sent (under ASan too), and the checkpoint is committed. */
  cr_worker *w = NULL;
  assert_int_equal(cr_worker_pool_acquire(f.pool, &w, NULL, 0), 0);
  G->fake.kill_pid = cr_worker_pid(w);
  G->fake.kill_offset = 8;
  G->fake.kill_delay_ms = 1000;
  cr_worker_pool_release(f.pool, w);
  struct cr_exec_outcome o;
  run_once(&f, &o);
  assert_int_equal(o.state, CR_EXEC_FAILED);
  assert_string_equal(o.error_class, "system");
  assert_non_null(strstr(o.error, "SIGKILL"));
  assert_int_equal(G->fake.kill_pid, 0);
  char buf[512];
  stored_cursor(&f, buf, sizeof buf);
  assert_string_equal(buf, "2024-01-01T00:00:07.000+0000");
  output_names(&f, buf, sizeof buf);
  assert_string_equal(buf, "\"0\"|\"1\"|\"2\"|\"3\"|\"4\"|\"5\"|\"6\"|"
                           "\"7\"");
  /* The rotated refresh token reached the store; the old one is dead. */
  stored_refresh(&f, buf, sizeof buf);
  assert_string_equal(buf, "5Aep861fakeRotated-001");
  assert_string_equal(G->fake.refresh, "5Aep861fakeRotated-001");

  /* The next run uses it and resumes at the cursor's second: record 7
   * again (at-least-once), then 8 and 9. */
  run_once(&f, &o);
  assert_int_equal(o.state, CR_EXEC_COMPLETED);
  assert_int_equal(o.records, 3);
  output_names(&f, buf, sizeof buf);
  assert_string_equal(buf, "\"0\"|\"1\"|\"2\"|\"3\"|\"4\"|\"5\"|\"6\"|"
                           "\"7\"|\"7\"|\"8\"|\"9\"");
  stored_cursor(&f, buf, sizeof buf);
  assert_string_equal(buf, "2024-01-01T00:00:09.000+0000");
  stored_refresh(&f, buf, sizeof buf);
  assert_string_equal(buf, "5Aep861fakeRotated-002");
  size_t n = cr_fake_http_count(G->srv);
  const struct cr_fake_http_request *q = NULL;
  for (size_t i = 0; i < n; i++) {
    const struct cr_fake_http_request *r = cr_fake_http_request_at(G->srv, i);
    if (strcmp(r->path, API "/query") == 0)
      q = r;
  }
  assert_non_null(q);
  char *soql = param(q->query, "q");
  assert_string_equal(soql, "SELECT Id,Name,SystemModstamp FROM Account WHERE "
                            "SystemModstamp >= 2024-01-01T00:00:07Z ORDER BY "
                            "SystemModstamp ASC");
  free(soql);
  fx_close(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor),
      cmocka_unit_test_setup_teardown(test_health_healthy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_unhealthy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_jwt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_rate_limited, setup, teardown),
      cmocka_unit_test_setup_teardown(test_read_strips_attributes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_read_checkpoint_default, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_failures_per_record, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_write_partial_failures, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_exec_rotation_kill_resume, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
