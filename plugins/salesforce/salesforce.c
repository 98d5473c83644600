/* salesforce.c: the "salesforce" provider plugin, for the Salesforce REST
 * API, following its documented shapes. See README.md next to this file for
 * the configuration and the decisions (streams, cursors, write failures).
 *
 * Authorization (token endpoint POST {login_url}/services/oauth2/token,
 * form-encoded; the JSON answer is {"access_token","instance_url","id",
 * "token_type":"Bearer","issued_at","signature"[,"refresh_token"]}, errors
 * {"error":"invalid_grant","error_description":"..."}):
 *   - "oauth2_refresh_token": grant_type=refresh_token with client_id,
 *     client_secret, refresh_token. With refresh token rotation on, the
 *     answer carries a new refresh_token and the old one is invalidated: it
 *     is handed to the host with credentials_update at once.
 *     https://help.salesforce.com/s/articleView?id=remoteaccess_oauth_refresh_token_flow.htm
 *     https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm
 *   - "oauth2_jwt_bearer": grant_type=urn:ietf:params:oauth:grant-type:
 *     jwt-bearer, assertion = an RS256 JWT {"alg":"RS256"} . {"iss":
 *     client_id, "sub": username, "aud": login_url, "exp": now + 180 s},
 *     signed with the private key (PEM) through libcrypto.
 *     https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm
 * The token answer's instance_url is the base of every API call.
 *
 * API calls (Authorization: Bearer <access token>):
 *   health: GET /services/data/vXX.X/limits ({"DailyApiRequests":{"Max":N,
 *     "Remaining":M},...})
 * https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
 *   read: GET /services/data/vXX.X/query?q=SOQL (queryAll with deleted
 *     records), then the nextRecordsUrl of each page: {"totalSize":N,
 *     "done":false,"nextRecordsUrl":"/services/data/vXX.X/query/01g...-2000",
 *     "records":[{"attributes":{"type":"Account","url":"..."},...}]}
 *     https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html
 *   write: PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExtIdField}
 *     {"allOrNone":false,"records":[{"attributes":{"type":"Account"},...}]}
 *     (at most 200), answered 200 with one UpsertResult per record, in
 *     order: {"id":..,"success":true,"errors":[],"created":true} or
 *     {"success":false,"errors":[{"statusCode":"..","message":"..",
 *     "fields":[..]}]}
 *     https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html
 *   errors: [{"message":"...","errorCode":"..."}]: 401 INVALID_SESSION_ID
 *     ("Session expired or invalid": the token is refreshed once and the
 *     call repeated), 403 REQUEST_LIMIT_EXCEEDED ("TotalRequests Limit
 *     exceeded."): rate limited.
 *     https://developer.salesforce.com/docs/platform/api-rest/guide/errorcodes.html
 *
 * Every request goes through api->http. No token, secret or key is ever
 * formatted into a log line, an error or a record.
 */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SF_DEFAULT_LOGIN_URL "https://login.salesforce.com"
#define SF_DEFAULT_API_VERSION "59.0"
#define SF_MAX_OBJECTS 32
#define SF_FIELDS_MAX 2048
#define SF_URL_MAX 8192
#define SF_BATCH 200          /* sObject Collections limit */
#define SF_MAX_PAGES 10000000 /* bound of the page loop of one object */
#define SF_PEM_MAX 8192
#define SF_MSG_MAX 320
/* Default of config.checkpoint_every: a checkpoint (a durable flush of the
 * destination and a store commit, about a millisecond) every 5 pages of
 * 2,000 rather than every page; a crash re-reads at most that many. */
#define SF_CHECKPOINT_EVERY 10000

/* ---- Schemas and streams ---------------------------------------------------
 */

static const char sf_credentials_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"client_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255},"
    "\"client_secret\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255},"
    "\"refresh_token\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":511},"
    "\"username\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255},"
    "\"private_key\":{\"type\":\"string\",\"minLength\":1,"
    "\"maxLength\":8191}},"
    "\"required\":[\"client_id\"],\"additionalProperties\":false}";

static const char sf_config_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"login_url\":{\"type\":\"string\",\"pattern\":\"^https?://\","
    "\"maxLength\":200},"
    "\"api_version\":{\"type\":\"string\",\"pattern\":\"^[0-9]+\\\\.[0-9]$\"},"
    "\"include_deleted\":{\"type\":\"boolean\"},"
    "\"checkpoint_every\":{\"type\":\"integer\",\"minimum\":1,"
    "\"maximum\":1000000},"
    "\"external_id_field\":{\"type\":\"string\","
    "\"pattern\":\"^[A-Za-z][A-Za-z0-9_]*$\",\"maxLength\":63},"
    "\"objects\":{\"type\":\"array\",\"maxItems\":32,\"items\":{"
    "\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z][A-Za-z0-9_]*$\","
    "\"maxLength\":63},"
    "\"fields\":{\"type\":\"array\",\"minItems\":1,\"items\":{"
    "\"type\":\"string\",\"pattern\":\"^[A-Za-z][A-Za-z0-9_.]*$\","
    "\"maxLength\":120}}},"
    "\"required\":[\"name\",\"fields\"],\"additionalProperties\":false}}},"
    "\"additionalProperties\":false}";

#define SF_STREAM(n)                                                           \
  "{\"name\":\"" n "\",\"primary_key\":[\"Id\"],\"default_schedule\":\"1h\"}"
static const char sf_streams[] =
    "[" SF_STREAM("Account") "," SF_STREAM("Contact") "," SF_STREAM("Lead") "," SF_STREAM("Opportunity") "," SF_STREAM(
        "Case") "," SF_STREAM("User") "," SF_STREAM("Campaign") "," SF_STREAM("Task") "," SF_STREAM("Event") "]";

/* ---- The instance ----------------------------------------------------------
 */

enum sf_method { SF_REFRESH, SF_JWT };

struct sf_object {
  char name[64];
  char fields[SF_FIELDS_MAX]; /* "Id,Name,SystemModstamp" */
  char cursor[40];            /* last SystemModstamp seen, "" for none */
};

struct salesforce {
  const struct cr_host_api *api;
  int method;
  char client_id[256], client_secret[256], refresh_token[512], username[256];
  char private_key[SF_PEM_MAX];
  char login_url[256], api_version[16], external_id[64];
  int include_deleted;
  long long checkpoint_every; /* records between checkpoints (at least) */
  struct sf_object objects[SF_MAX_OBJECTS];
  size_t nobjects;
  char instance_url[256];
  char auth_header[1200]; /* "Authorization: Bearer <access token>" */
  int have_token;
  /* The error of the last failed step: its class, wait and message. */
  int err_result;
  int64_t err_retry_ms;
  char err[SF_MSG_MAX];
};

static void sf_wipe(void *p, size_t n) {
  volatile unsigned char *v = p;
  while (n-- > 0)
    *v++ = 0;
}

/* Records the error of a step and returns result. */
static int sf_fail(struct salesforce *sf, int result, int64_t retry_ms,
                   const char *fmt, ...) CR_PLUGIN_PRINTF(4, 5);
static int sf_fail(struct salesforce *sf, int result, int64_t retry_ms,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sf->err, sizeof sf->err, fmt, ap);
  va_end(ap);
  sf->err_result = result;
  sf->err_retry_ms = retry_ms;
  return result;
}

/* Hands the recorded error to the host; returns its class. */
static int sf_report(struct salesforce *sf, cr_plugin_ctx *ctx, int rc) {
  if (rc != CR_PLUGIN_OK && rc != CR_PLUGIN_ERR_CANCELLED && sf->err[0])
    sf->api->set_error(ctx, rc, sf->err, sf->err_retry_ms);
  return rc;
}

/* Replaces everything outside printable ASCII (provider text in messages). */
static void sf_printable(char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
      *s = '?';
}

/* ---- create ----------------------------------------------------------------
 */

/* Copies the optional string member key of json into out (default dflt). */
static int sf_opt_string(const char *json, const char *key, char *out,
                         size_t len, const char *dflt) {
  const char *raw;
  size_t rawlen;
  snprintf(out, len, "%s", dflt);
  if (json == NULL || cr_json_get_raw(json, key, &raw, &rawlen) != 0)
    return 0;
  return cr_json_get_string(json, key, out, len);
}

static int sf_parse_credentials(struct salesforce *sf, const char *method,
                                const char *json, char *errbuf, size_t errlen) {
  if (method != NULL && strcmp(method, "oauth2_jwt_bearer") == 0)
    sf->method = SF_JWT;
  else if (method != NULL && strcmp(method, "oauth2_refresh_token") == 0)
    sf->method = SF_REFRESH;
  else
    return snprintf(errbuf, errlen, "unknown authorization method"),
           CR_PLUGIN_ERR_CONFIG;
  if (json == NULL ||
      cr_json_get_string(json, "client_id", sf->client_id,
                         sizeof sf->client_id) != 0 ||
      sf->client_id[0] == '\0')
    return snprintf(errbuf, errlen, "credentials need a client_id string"),
           CR_PLUGIN_ERR_CONFIG;
  if (sf->method == SF_REFRESH &&
      (cr_json_get_string(json, "refresh_token", sf->refresh_token,
                          sizeof sf->refresh_token) != 0 ||
       sf_opt_string(json, "client_secret", sf->client_secret,
                     sizeof sf->client_secret, "") != 0))
    return snprintf(errbuf, errlen,
                    "oauth2_refresh_token needs client_id, client_secret "
                    "and refresh_token strings"),
           CR_PLUGIN_ERR_CONFIG;
  if (sf->method == SF_JWT &&
      (cr_json_get_string(json, "username", sf->username,
                          sizeof sf->username) != 0 ||
       cr_json_get_string(json, "private_key", sf->private_key,
                          sizeof sf->private_key) != 0))
    return snprintf(errbuf, errlen,
                    "oauth2_jwt_bearer needs client_id, username and "
                    "private_key (PEM) strings"),
           CR_PLUGIN_ERR_CONFIG;
  return CR_PLUGIN_OK;
}

/* 1 when s is a SOQL identifier (dots allowed when dots). */
static int sf_ident(const char *s, int dots) {
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
    return 0;
  for (; *s != '\0'; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9') || *s == '_' || (dots && *s == '.')))
      return 0;
  return 1;
}

/* Appends ",name" (or "name") to fields unless it is already there. */
static int sf_add_field(char *fields, size_t len, const char *name) {
  size_t n = strlen(name);
  for (const char *p = fields; *p != '\0';) {
    size_t k = strcspn(p, ",");
    if (k == n && strncmp(p, name, n) == 0)
      return 0;
    p += k + (p[k] == ',');
  }
  size_t used = strlen(fields);
  if (used + n + 2 > len)
    return -1;
  snprintf(fields + used, len - used, "%s%s", used ? "," : "", name);
  return 0;
}

static int sf_parse_object(struct salesforce *sf, const char *e, size_t n,
                           char *errbuf, size_t errlen) {
  struct sf_object *o = &sf->objects[sf->nobjects];
  struct cr_json_array_iter it;
  const char *f;
  size_t fl;
  int r;
  memset(o, 0, sizeof *o);
  if (cr_json_get_string_n(e, n, "name", o->name, sizeof o->name) != 0 ||
      !sf_ident(o->name, 0) || cr_json_array_begin_n(&it, e, n, "fields") != 0)
    return snprintf(errbuf, errlen,
                    "config.objects[%zu] needs a name and a fields list",
                    sf->nobjects),
           CR_PLUGIN_ERR_CONFIG;
  while ((r = cr_json_array_next(&it, &f, &fl)) == 1) {
    char field[128];
    if (cr_json_string_decode(f, fl, field, sizeof field) != 0 ||
        !sf_ident(field, 1) ||
        sf_add_field(o->fields, sizeof o->fields, field) != 0)
      return snprintf(errbuf, errlen, "config.objects[%zu]: bad field list",
                      sf->nobjects),
             CR_PLUGIN_ERR_CONFIG;
  }
  if (r < 0 || sf_add_field(o->fields, sizeof o->fields, "Id") != 0 ||
      sf_add_field(o->fields, sizeof o->fields, "SystemModstamp") != 0 ||
      (sf->include_deleted &&
       sf_add_field(o->fields, sizeof o->fields, "IsDeleted") != 0))
    return snprintf(errbuf, errlen, "config.objects[%zu]: bad field list",
                    sf->nobjects),
           CR_PLUGIN_ERR_CONFIG;
  sf->nobjects++;
  return CR_PLUGIN_OK;
}

static int sf_parse_config(struct salesforce *sf, const char *json,
                           char *errbuf, size_t errlen) {
  const char *raw;
  size_t rawlen;
  if (sf_opt_string(json, "login_url", sf->login_url, sizeof sf->login_url,
                    SF_DEFAULT_LOGIN_URL) != 0 ||
      (strncmp(sf->login_url, "https://", 8) != 0 &&
       strncmp(sf->login_url, "http://", 7) != 0))
    return snprintf(errbuf, errlen, "login_url must be an http(s) URL"),
           CR_PLUGIN_ERR_CONFIG;
  size_t n = strlen(sf->login_url);
  while (n > 0 && sf->login_url[n - 1] == '/')
    sf->login_url[--n] = '\0';
  if (sf_opt_string(json, "api_version", sf->api_version,
                    sizeof sf->api_version, SF_DEFAULT_API_VERSION) != 0 ||
      sf_opt_string(json, "external_id_field", sf->external_id,
                    sizeof sf->external_id, "") != 0 ||
      (sf->external_id[0] && !sf_ident(sf->external_id, 0)))
    return snprintf(errbuf, errlen, "bad api_version or external_id_field"),
           CR_PLUGIN_ERR_CONFIG;
  sf->checkpoint_every = SF_CHECKPOINT_EVERY;
  if (json != NULL &&
      cr_json_get_raw(json, "checkpoint_every", &raw, &rawlen) == 0 &&
      (cr_json_get_int(json, "checkpoint_every", &sf->checkpoint_every) != 0 ||
       sf->checkpoint_every < 1))
    return snprintf(errbuf, errlen, "checkpoint_every must be an integer >= 1"),
           CR_PLUGIN_ERR_CONFIG;
  sf->include_deleted =
      json != NULL &&
      cr_json_get_raw(json, "include_deleted", &raw, &rawlen) == 0 &&
      rawlen == 4 && memcmp(raw, "true", 4) == 0;
  struct cr_json_array_iter it;
  const char *e;
  int r;
  if (json == NULL || cr_json_get_raw(json, "objects", &raw, &rawlen) != 0)
    return CR_PLUGIN_OK;
  if (cr_json_array_begin(&it, json, "objects") != 0)
    return snprintf(errbuf, errlen, "config.objects must be an array"),
           CR_PLUGIN_ERR_CONFIG;
  while ((r = cr_json_array_next(&it, &e, &n)) == 1) {
    if (sf->nobjects == SF_MAX_OBJECTS)
      return snprintf(errbuf, errlen, "at most %d objects", SF_MAX_OBJECTS),
             CR_PLUGIN_ERR_CONFIG;
    int rc = sf_parse_object(sf, e, n, errbuf, errlen);
    if (rc != CR_PLUGIN_OK)
      return rc;
  }
  return r < 0 ? (snprintf(errbuf, errlen, "config.objects is malformed"),
                  CR_PLUGIN_ERR_CONFIG)
               : CR_PLUGIN_OK;
}

static void sf_destroy(void *instance) {
  struct salesforce *sf = instance;
  if (sf == NULL)
    return;
  const struct cr_host_api *api = sf->api;
  sf_wipe(sf, sizeof *sf);
  api->free(sf);
}

static int sf_create(const struct cr_host_api *api,
                     const struct cr_plugin_params *params, void **instance_out,
                     char *errbuf, size_t errlen) {
  struct salesforce *sf = api->alloc(sizeof *sf);
  if (sf == NULL)
    return snprintf(errbuf, errlen, "out of memory"), CR_PLUGIN_ERR_SYSTEM;
  memset(sf, 0, sizeof *sf);
  sf->api = api;
  int rc = sf_parse_credentials(sf, params->auth_method,
                                params->credentials_json, errbuf, errlen);
  if (rc == CR_PLUGIN_OK)
    rc = sf_parse_config(sf, params->config_json, errbuf, errlen);
  if (rc != CR_PLUGIN_OK) {
    sf_destroy(sf);
    return rc;
  }
  *instance_out = sf;
  return CR_PLUGIN_OK;
}

/* ---- Growing buffers and encodings ---------------------------------------
 */

struct sf_buf {
  const struct cr_host_api *api;
  char *p;
  size_t n, cap;
  int oom;
};

static void sf_buf_add(struct sf_buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = b->api->alloc(cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    if (b->p != NULL)
      memcpy(p, b->p, b->n);
    b->api->free(b->p);
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sf_buf_str(struct sf_buf *b, const char *s) {
  sf_buf_add(b, s, strlen(s));
}

/* Frees b, wiping it first (it may hold secrets). */
static void sf_buf_free(struct sf_buf *b) {
  if (b->p != NULL) {
    sf_wipe(b->p, b->cap);
    b->api->free(b->p);
  }
  b->p = NULL;
  b->n = b->cap = 0;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept). */
static void sf_buf_pct(struct sf_buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
    if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
        (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
        *p == '~')
      sf_buf_add(b, (const char *)p, 1);
    else
      sf_buf_add(b, e, 3);
  }
}

/* Appends "key":"escaped value" (with a leading comma unless first). */
static void sf_buf_jstr(struct sf_buf *b, const char *key, const char *val,
                        int first) {
  char esc[SF_PEM_MAX * 2];
  if (cr_json_escape(val, esc, sizeof esc) < 0) {
    b->oom = 1;
    return;
  }
  sf_buf_str(b, first ? "\"" : ",\"");
  sf_buf_str(b, key);
  sf_buf_str(b, "\":\"");
  sf_buf_str(b, esc);
  sf_buf_str(b, "\"");
  sf_wipe(esc, sizeof esc);
}

/* base64url without padding (RFC 7515) of n bytes into b. */
static void sf_buf_b64url(struct sf_buf *b, const unsigned char *in, size_t n) {
  static const char t[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < n)
      v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    char out[4] = {t[v >> 18 & 63], t[v >> 12 & 63], t[v >> 6 & 63], t[v & 63]};
    sf_buf_add(b, out, n - i >= 3 ? 4 : n - i + 1);
  }
}

/* ---- HTTP ------------------------------------------------------------------
 */

/* One request through the host. resp must be freed by the caller. */
static int sf_http(struct salesforce *sf, cr_plugin_ctx *ctx,
                   const char *method, const char *url, const char *auth,
                   const char *ctype, const struct sf_buf *body,
                   struct cr_http_response *resp) {
  const char *headers[4] = {"Accept: application/json", NULL, NULL, NULL};
  size_t h = 1;
  if (auth != NULL)
    headers[h++] = auth;
  if (ctype != NULL)
    headers[h++] = ctype;
  struct cr_http_request req;
  cr_http_request_init(&req);
  req.method = method;
  req.url = url;
  req.headers = headers;
  if (body != NULL) {
    req.body = body->p;
    req.body_len = body->n;
  }
  return sf->api->http(ctx, &req, resp);
}

/* The first message / errorCode of a REST error body [{"message","errorCode"}]
 * (or a token error {"error","error_description"}), printable. */
static void sf_error_text(const struct cr_http_response *resp, char *code,
                          size_t clen, char *msg, size_t mlen) {
  struct cr_json_array_iter it;
  const char *e = NULL;
  size_t n = 0;
  code[0] = msg[0] = '\0';
  if (resp->body != NULL &&
      cr_json_array_begin_n(&it, resp->body, resp->body_len, NULL) == 0 &&
      cr_json_array_next(&it, &e, &n) == 1) {
    cr_json_get_string_n(e, n, "errorCode", code, clen);
    cr_json_get_string_n(e, n, "message", msg, mlen);
  } else if (resp->body != NULL) {
    cr_json_get_string_n(resp->body, resp->body_len, "error", code, clen);
    cr_json_get_string_n(resp->body, resp->body_len, "error_description", msg,
                         mlen);
  }
  if (msg[0] == '\0')
    snprintf(msg, mlen, "no details");
  sf_printable(code);
  sf_printable(msg);
}

/* Maps a non-2xx REST API answer to an error class and message. */
static int sf_api_error(struct salesforce *sf,
                        const struct cr_http_response *resp, const char *what) {
  char code[64], msg[200];
  long st = resp->status;
  sf_error_text(resp, code, sizeof code, msg, sizeof msg);
  if (strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0 || st == 429) {
    int64_t wait = cr_http_retry_after_ms(resp);
    return sf_fail(sf, CR_PLUGIN_ERR_RATE_LIMITED, wait > 0 ? wait : 0,
                   "Salesforce API request limit exceeded during %s (%ld "
                   "%s: %s)",
                   what, st, code, msg);
  }
  if (st >= 500)
    return sf_fail(sf, CR_PLUGIN_ERR_TRANSIENT, 0,
                   "Salesforce server error during %s (%ld: %s)", what, st,
                   msg);
  if (st == 401)
    return sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                   "access token rejected by Salesforce during %s (401 %s: "
                   "%s)",
                   what, code[0] ? code : "-", msg);
  return sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                 "Salesforce refused %s (%ld %s: %s)", what, st,
                 code[0] ? code : "-", msg);
}

static int sf_transport_error(struct salesforce *sf, int rc,
                              const struct cr_http_response *resp,
                              const char *what) {
  if (rc == CR_PLUGIN_ERR_CANCELLED)
    return sf_fail(sf, rc, 0, "cancelled");
  return sf_fail(sf, rc == CR_PLUGIN_ERR_CONFIG ? rc : CR_PLUGIN_ERR_TRANSIENT,
                 0, "cannot reach Salesforce (%s): %s", what, resp->error);
}

/* ---- Tokens ----------------------------------------------------------------
 */

/* Signs data with RS256 (RSA PKCS#1 v1.5 + SHA-256) and appends the
 * base64url signature to b. Returns 0 or -1 (bad key). */
static int sf_rs256(const char *pem, const char *data, size_t n,
                    struct sf_buf *b) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char sig[1024];
  size_t siglen = 0;
  int rc = -1;
  if (key != NULL && md != NULL && EVP_PKEY_base_id(key) == EVP_PKEY_RSA &&
      EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
      EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)data, n) == 1 &&
      siglen <= sizeof sig &&
      EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data, n) == 1) {
    sf_buf_b64url(b, sig, siglen);
    rc = 0;
  }
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  BIO_free(bio);
  return rc;
}

/* The JWT bearer assertion (header.claims.signature) into b. */
static int sf_jwt(struct salesforce *sf, struct sf_buf *b) {
  struct sf_buf claims = {.api = sf->api};
  char exp[32];
  snprintf(exp, sizeof exp, "%lld", (long long)time(NULL) + 180);
  sf_buf_str(&claims, "{");
  sf_buf_jstr(&claims, "iss", sf->client_id, 1);
  sf_buf_jstr(&claims, "sub", sf->username, 0);
  sf_buf_jstr(&claims, "aud", sf->login_url, 0);
  sf_buf_str(&claims, ",\"exp\":");
  sf_buf_str(&claims, exp);
  sf_buf_str(&claims, "}");
  static const char header[] = "{\"alg\":\"RS256\"}";
  sf_buf_b64url(b, (const unsigned char *)header, sizeof header - 1);
  sf_buf_str(b, ".");
  sf_buf_b64url(b, (const unsigned char *)claims.p, claims.n);
  int rc = claims.oom || b->oom ? -1 : 0;
  sf_buf_free(&claims);
  if (rc == 0) {
    size_t signed_len = b->n;
    sf_buf_str(b, ".");
    rc = sf_rs256(sf->private_key, b->p, signed_len, b);
  }
  return rc == 0 && !b->oom ? 0 : -1;
}

/* The form body of the token request of the authorization's method. */
static int sf_token_body(struct salesforce *sf, struct sf_buf *body) {
  if (sf->method == SF_JWT) {
    struct sf_buf jwt = {.api = sf->api};
    int rc = sf_jwt(sf, &jwt);
    if (rc == 0) {
      sf_buf_str(body, "grant_type=");
      sf_buf_pct(body, "urn:ietf:params:oauth:grant-type:jwt-bearer");
      sf_buf_str(body, "&assertion=");
      sf_buf_str(body, jwt.p);
    }
    sf_buf_free(&jwt);
    if (rc != 0)
      return sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                     "cannot sign the JWT assertion: private_key is not an "
                     "RSA private key in PEM form");
  } else {
    sf_buf_str(body, "grant_type=refresh_token&client_id=");
    sf_buf_pct(body, sf->client_id);
    if (sf->client_secret[0]) {
      sf_buf_str(body, "&client_secret=");
      sf_buf_pct(body, sf->client_secret);
    }
    sf_buf_str(body, "&refresh_token=");
    sf_buf_pct(body, sf->refresh_token);
  }
  return body->oom ? sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0, "out of memory")
                   : CR_PLUGIN_OK;
}

/* Hands a rotated refresh token to the host (it replaces the old one). */
static int sf_store_rotated(struct salesforce *sf, cr_plugin_ctx *ctx) {
  struct sf_buf b = {.api = sf->api};
  sf_buf_str(&b, "{");
  sf_buf_jstr(&b, "client_id", sf->client_id, 1);
  if (sf->client_secret[0])
    sf_buf_jstr(&b, "client_secret", sf->client_secret, 0);
  sf_buf_jstr(&b, "refresh_token", sf->refresh_token, 0);
  sf_buf_str(&b, "}");
  int rc = b.oom ? CR_PLUGIN_ERR_SYSTEM : sf->api->credentials_update(ctx, b.p);
  sf_buf_free(&b);
  if (rc != CR_PLUGIN_OK)
    return sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0,
                   "Salesforce rotated the refresh token but the host could "
                   "not store it");
  sf->api->log(ctx, CR_PLUGIN_LOG_INFO,
               "Salesforce rotated the refresh token; stored");
  return CR_PLUGIN_OK;
}

/* Reads a 200 token answer: access token, instance_url, rotated refresh
 * token. */
static int sf_token_ok(struct salesforce *sf, cr_plugin_ctx *ctx,
                       const struct cr_http_response *resp) {
  char token[1024], rotated[512];
  int rc = CR_PLUGIN_OK;
  if (cr_json_get_string_n(resp->body, resp->body_len, "access_token", token,
                           sizeof token) != 0 ||
      token[0] == '\0' ||
      cr_json_get_string_n(resp->body, resp->body_len, "instance_url",
                           sf->instance_url, sizeof sf->instance_url) != 0 ||
      (strncmp(sf->instance_url, "https://", 8) != 0 &&
       strncmp(sf->instance_url, "http://", 7) != 0))
    rc = sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0,
                 "unexpected token answer from Salesforce (no access_token "
                 "or instance_url)");
  if (rc == CR_PLUGIN_OK) {
    size_t n = strlen(sf->instance_url);
    while (n > 0 && sf->instance_url[n - 1] == '/')
      sf->instance_url[--n] = '\0';
    snprintf(sf->auth_header, sizeof sf->auth_header,
             "Authorization: Bearer %s", token);
    sf->have_token = 1;
  }
  if (rc == CR_PLUGIN_OK && sf->method == SF_REFRESH &&
      cr_json_get_string_n(resp->body, resp->body_len, "refresh_token", rotated,
                           sizeof rotated) == 0 &&
      rotated[0] != '\0' && strcmp(rotated, sf->refresh_token) != 0) {
    snprintf(sf->refresh_token, sizeof sf->refresh_token, "%s", rotated);
    rc = sf_store_rotated(sf, ctx);
  }
  sf_wipe(token, sizeof token);
  sf_wipe(rotated, sizeof rotated);
  return rc;
}

/* Gets an access token from the login URL. */
static int sf_token(struct salesforce *sf, cr_plugin_ctx *ctx) {
  struct sf_buf body = {.api = sf->api};
  char url[400];
  struct cr_http_response resp;
  sf->have_token = 0;
  int rc = sf_token_body(sf, &body);
  if (rc != CR_PLUGIN_OK) {
    sf_buf_free(&body);
    return rc;
  }
  snprintf(url, sizeof url, "%s/services/oauth2/token", sf->login_url);
  rc = sf_http(sf, ctx, "POST", url, NULL,
               "Content-Type: application/x-www-form-urlencoded", &body, &resp);
  sf_buf_free(&body);
  if (rc != CR_PLUGIN_OK) {
    rc = sf_transport_error(sf, rc, &resp, "token request");
  } else if (resp.status == 200) {
    rc = sf_token_ok(sf, ctx, &resp);
  } else if (resp.status >= 500 || resp.status == 429) {
    rc = sf_api_error(sf, &resp, "the token request");
  } else {
    char code[64], msg[200];
    sf_error_text(&resp, code, sizeof code, msg, sizeof msg);
    rc = sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                 "Salesforce refused the token request (%ld %s: %s)",
                 resp.status, code[0] ? code : "-", msg);
  }
  sf->api->http_response_free(ctx, &resp);
  return rc;
}

/* An authenticated API request to url (absolute); a 401 gets one new token
 * and one retry. 200..299 returns OK with resp filled (caller frees);
 * otherwise the error is recorded (resp freed). */
static int sf_call_from(struct salesforce *sf, cr_plugin_ctx *ctx,
                        const char *method, const char *url,
                        const struct sf_buf *body,
                        struct cr_http_response *resp, const char *what,
                        int ahead) {
  int rc = sf->have_token || ahead ? CR_PLUGIN_OK : sf_token(sf, ctx);
  for (int attempt = 0; rc == CR_PLUGIN_OK && attempt < 2; attempt++) {
    if (attempt == 0 && ahead)
      rc = sf->api->http_finish(ctx, resp);
    else
      rc = sf_http(sf, ctx, method, url, sf->auth_header,
                   body ? "Content-Type: application/json" : NULL, body, resp);
    if (rc != CR_PLUGIN_OK) {
      rc = sf_transport_error(sf, rc, resp, what);
    } else if (resp->status >= 200 && resp->status < 300) {
      return CR_PLUGIN_OK;
    } else if (resp->status == 401 && attempt == 0) {
      sf->api->http_response_free(ctx, resp);
      rc = sf_token(sf, ctx);
      continue;
    } else {
      rc = sf_api_error(sf, resp, what);
    }
    break;
  }
  if (rc != CR_PLUGIN_OK)
    sf->api->http_response_free(ctx, resp);
  return rc;
}

static int sf_call(struct salesforce *sf, cr_plugin_ctx *ctx,
                   const char *method, const char *url,
                   const struct sf_buf *body, struct cr_http_response *resp,
                   const char *what) {
  return sf_call_from(sf, ctx, method, url, body, resp, what, 0);
}

/* Asks for the query page at url in the background (api->http_start, ABI
 * minor 3), so it downloads while the page before it is emitted; its answer
 * is taken by sf_call_from(..., ahead = 1), a 401 included. Returns 1 when
 * the request is on its way, 0 when the host cannot (then sf_call). */
static int sf_ask_ahead(struct salesforce *sf, cr_plugin_ctx *ctx,
                        const char *url) {
  if (!CR_HOST_HAS(sf->api, http_start) || !CR_HOST_HAS(sf->api, http_finish))
    return 0;
  const char *headers[] = {"Accept: application/json", sf->auth_header, NULL};
  struct cr_http_request req;
  cr_http_request_init(&req);
  req.method = "GET";
  req.url = url;
  req.headers = headers;
  return sf->api->http_start(ctx, &req) == CR_PLUGIN_OK;
}

/* instance_url + /services/data/vXX.X + rest into b. */
static void sf_data_url(struct salesforce *sf, struct sf_buf *b,
                        const char *rest) {
  sf_buf_str(b, sf->instance_url);
  sf_buf_str(b, "/services/data/v");
  sf_buf_str(b, sf->api_version);
  sf_buf_str(b, rest);
}

/* ---- health_check ----------------------------------------------------------
 */

static int sf_health_check(void *instance, cr_plugin_ctx *ctx,
                           struct cr_plugin_health_result *out) {
  struct salesforce *sf = instance;
  struct sf_buf url = {.api = sf->api};
  struct cr_http_response resp;
  int rc = sf_token(sf, ctx);
  if (rc == CR_PLUGIN_OK) {
    sf_data_url(sf, &url, "/limits");
    rc = url.oom ? sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0, "out of memory")
                 : sf_call(sf, ctx, "GET", url.p, NULL, &resp,
                           "the limits request");
  }
  sf_buf_free(&url);
  if (rc == CR_PLUGIN_OK) {
    const char *v;
    size_t vl;
    long long max = -1, left = -1;
    if (cr_json_get_raw_n(resp.body, resp.body_len, "DailyApiRequests", &v,
                          &vl) == 0) {
      cr_json_get_int_n(v, vl, "Max", &max);
      cr_json_get_int_n(v, vl, "Remaining", &left);
    }
    sf->api->http_response_free(ctx, &resp);
    out->status = CR_PLUGIN_HEALTH_HEALTHY;
    snprintf(out->reason, out->reason_len,
             "access token issued; %lld of %lld daily API requests left", left,
             max);
    return CR_PLUGIN_OK;
  }
  out->status = rc == CR_PLUGIN_ERR_CONFIG ? CR_PLUGIN_HEALTH_UNHEALTHY
                                           : CR_PLUGIN_HEALTH_UNKNOWN;
  snprintf(out->reason, out->reason_len, "%s", sf->err);
  return rc == CR_PLUGIN_ERR_CONFIG ? CR_PLUGIN_OK : sf_report(sf, ctx, rc);
}

/* ---- read ------------------------------------------------------------------
 */

/* Loads the cursors of the configured objects from the committed state
 * {"cursors":{"Account":"2024-01-15T10:30:00.000+0000",...}}. */
static int sf_load_state(struct salesforce *sf, cr_plugin_ctx *ctx) {
  const char *state = sf->api->state(ctx);
  const char *cur;
  size_t n;
  if (state == NULL)
    return CR_PLUGIN_OK;
  if (cr_json_get_raw(state, "cursors", &cur, &n) != 0 || *cur != '{')
    return sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                   "stored state has no cursors object");
  for (size_t i = 0; i < sf->nobjects; i++) {
    struct sf_object *o = &sf->objects[i];
    const char *raw;
    size_t rl;
    if (cr_json_get_raw_n(cur, n, o->name, &raw, &rl) == 0 &&
        (cr_json_get_string_n(cur, n, o->name, o->cursor, sizeof o->cursor) !=
             0 ||
         strlen(o->cursor) < 19))
      return sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                     "stored cursor of %s is not a SystemModstamp", o->name);
  }
  return CR_PLUGIN_OK;
}

static int sf_checkpoint(struct salesforce *sf, cr_plugin_ctx *ctx) {
  struct sf_buf b = {.api = sf->api};
  int first = 1;
  sf_buf_str(&b, "{\"cursors\":{");
  for (size_t i = 0; i < sf->nobjects; i++)
    if (sf->objects[i].cursor[0]) {
      sf_buf_jstr(&b, sf->objects[i].name, sf->objects[i].cursor, first);
      first = 0;
    }
  sf_buf_str(&b, "}}");
  int rc = b.oom ? sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0, "out of memory")
                 : sf->api->checkpoint(ctx, b.p);
  sf_buf_free(&b);
  return rc;
}

/* The first query URL of object o: records changed at or after its cursor
 * (the cursor's second: at-least-once, see README), oldest first. */
static void sf_query_url(struct salesforce *sf, const struct sf_object *o,
                         struct sf_buf *url) {
  struct sf_buf q = {.api = sf->api};
  sf_buf_str(&q, "SELECT ");
  sf_buf_str(&q, o->fields);
  sf_buf_str(&q, " FROM ");
  sf_buf_str(&q, o->name);
  if (o->cursor[0]) {
    /* SOQL dateTime literal YYYY-MM-DDThh:mm:ssZ (cursors are UTC). */
    sf_buf_str(&q, " WHERE SystemModstamp >= ");
    sf_buf_add(&q, o->cursor, 19);
    sf_buf_str(&q, "Z");
  }
  sf_buf_str(&q, " ORDER BY SystemModstamp ASC");
  sf_data_url(sf, url, sf->include_deleted ? "/queryAll?q=" : "/query?q=");
  if (q.oom)
    url->oom = 1;
  else
    sf_buf_pct(url, q.p);
  sf_buf_free(&q);
}

/* Advances o's cursor to the SystemModstamp of record [e, e + n) if later. */
static void sf_advance_cursor(struct sf_object *o, const char *e, size_t n) {
  char stamp[40];
  if (cr_json_get_string_n(e, n, "SystemModstamp", stamp, sizeof stamp) == 0 &&
      strlen(stamp) >= 19 && strcmp(stamp, o->cursor) > 0)
    memcpy(o->cursor, stamp, sizeof stamp);
}

/* A record without the "attributes" member Salesforce puts first in every
 * query record ({"type":...,"url":...}: REST metadata, not data; the type is
 * the stream and the url follows from Id), as other connectors deliver it.
 * In place, without a copy: the comma after the member becomes the record's
 * opening brace, and [*e, *e + *n) then starts there. body is the response
 * body the record lies in (the plugin's until it frees it); first is where
 * the record's first nested value ends (cr_json_array_next_first), the
 * attributes object's end when that is the first member. A record whose
 * first member is something else is left as it is. */
static void sf_strip_attributes(char *body, const char **e, size_t *n,
                                const char *first) {
  const char *end = *e + *n, *p = cr__json_ws(*e + 1, end);
  static const char key[] = "\"attributes\"";
  if (**e != '{' || (size_t)(end - p) < sizeof key - 1 ||
      memcmp(p, key, sizeof key - 1) != 0)
    return;
  p = cr__json_ws(p + sizeof key - 1, end);
  if (p >= end || *p != ':')
    return;
  p = cr__json_ws(p + 1, end);
  if (p < end && *p == '{' && first != NULL)
    p = first; /* the object's end, found with the record's */
  else
    p = cr__json_skip_value(p, end);
  p = p != NULL ? cr__json_ws(p, end) : NULL;
  if (p == NULL || p >= end)
    return;
  if (*p == '}') { /* nothing but attributes */
    *e = "{}";
    *n = 2;
  } else if (*p == ',') {
    body[p - body] = '{';
    *n = (size_t)(end - p);
    *e = p;
  }
}

/* Emits the records of one page, advancing o's cursor. The query orders by
 * SystemModstamp, so the page's last record carries its latest stamp: one
 * field lookup per page, not per record. Progress once per page. */
static int sf_emit_page(struct salesforce *sf, cr_plugin_ctx *ctx,
                        struct sf_object *o,
                        const struct cr_http_response *resp, uint64_t *done,
                        uint64_t total) {
  const struct cr_host_api *api = sf->api;
  struct cr_json_array_iter it;
  const char *e, *first, *last = NULL;
  size_t n, last_n = 0;
  int r;
  if (cr_json_array_begin_n(&it, resp->body, resp->body_len, "records") != 0)
    return sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0,
                   "unexpected query answer from Salesforce (no records)");
  while ((r = cr_json_array_next_first(&it, &e, &n, &first)) == 1) {
    sf_strip_attributes(resp->body, &e, &n, first);
    int rc = api->emit(ctx, o->name, e, n);
    if (rc != CR_PLUGIN_OK)
      return sf_fail(sf, rc, 0, "the host refused a record");
    last = e;
    last_n = n;
    ++*done;
  }
  if (r < 0)
    return sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0,
                   "malformed query answer from Salesforce");
  if (last != NULL)
    sf_advance_cursor(o, last, last_n);
  api->progress(ctx, o->name, *done, total);
  return CR_PLUGIN_OK;
}

/* Reads one object: the query, then every nextRecordsUrl, each asked for
 * before the page that names it is emitted (sf_ask_ahead); a checkpoint
 * after the page that brings the records since the last one to
 * checkpoint_every, and after the object's last page. */
static int sf_read_object(struct salesforce *sf, cr_plugin_ctx *ctx,
                          struct sf_object *o) {
  struct sf_buf url = {.api = sf->api};
  struct cr_http_response resp;
  uint64_t done = 0, checkpointed = 0;
  int rc = CR_PLUGIN_OK, ahead = 0;
  sf_query_url(sf, o, &url);
  for (long page = 0; rc == CR_PLUGIN_OK && page < SF_MAX_PAGES; page++) {
    if (url.oom) {
      rc = sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0, "out of memory");
      break;
    }
    if (sf->api->cancelled(ctx)) {
      rc = CR_PLUGIN_ERR_CANCELLED;
      break;
    }
    rc = sf_call_from(sf, ctx, "GET", url.p, NULL, &resp, "the query", ahead);
    ahead = 0;
    if (rc != CR_PLUGIN_OK)
      break;
    long long total = 0;
    char next[512] = "";
    cr_json_get_int_n(resp.body, resp.body_len, "totalSize", &total);
    cr_json_get_string_n(resp.body, resp.body_len, "nextRecordsUrl", next,
                         sizeof next);
    if (next[0] == '/') { /* the next page downloads while this one is read */
      url.n = 0;
      sf_buf_str(&url, sf->instance_url);
      sf_buf_str(&url, next);
      ahead = !url.oom && sf_ask_ahead(sf, ctx, url.p);
    }
    rc = sf_emit_page(sf, ctx, o, &resp, &done, (uint64_t)total);
    sf->api->http_response_free(ctx, &resp);
    if (rc == CR_PLUGIN_OK &&
        (next[0] != '/' ||
         done - checkpointed >= (uint64_t)sf->checkpoint_every)) {
      rc = sf_checkpoint(sf, ctx);
      checkpointed = done;
    }
    if (rc != CR_PLUGIN_OK || next[0] != '/')
      break;
  }
  if (ahead) { /* stopped with a page on its way: not wanted any more */
    sf->api->http_finish(ctx, &resp);
    sf->api->http_response_free(ctx, &resp);
  }
  sf_buf_free(&url);
  return rc;
}

static int sf_read(void *instance, cr_plugin_ctx *ctx) {
  struct salesforce *sf = instance;
  int rc = sf_load_state(sf, ctx);
  if (rc == CR_PLUGIN_OK && sf->nobjects == 0)
    sf->api->log(ctx, CR_PLUGIN_LOG_INFO, "no objects configured");
  else if (rc == CR_PLUGIN_OK)
    rc = sf_token(sf, ctx); /* the query URLs need the instance_url */
  for (size_t i = 0; rc == CR_PLUGIN_OK && i < sf->nobjects; i++)
    rc = sf_read_object(sf, ctx, &sf->objects[i]);
  return sf_report(sf, ctx, rc);
}

/* ---- write -----------------------------------------------------------------
 */

/* Appends the members of the record object [p, end) except "attributes"
 * and "Id" (collections upsert matches on the external id field) to b,
 * each preceded by a comma. Returns 0 or -1 when not an object. */
static int sf_copy_members(struct sf_buf *b, const char *p, const char *end) {
  p = cr__json_ws(p, end);
  if (p >= end || *p != '{')
    return -1;
  p = cr__json_ws(p + 1, end);
  while (p < end && *p != '}') {
    const char *k = p, *ke = cr__json_skip_string(p, end);
    if (ke == NULL)
      return -1;
    p = cr__json_ws(ke, end);
    if (p >= end || *p != ':')
      return -1;
    const char *v = cr__json_ws(p + 1, end), *ve = cr__json_skip_value(v, end);
    if (ve == NULL)
      return -1;
    size_t kl = (size_t)(ke - k);
    if (!(kl == 12 && memcmp(k, "\"attributes\"", 12) == 0) &&
        !(kl == 4 && memcmp(k, "\"Id\"", 4) == 0)) {
      sf_buf_str(b, ",");
      sf_buf_add(b, k, (size_t)(ve - k));
    }
    p = cr__json_ws(ve, end);
    if (p < end && *p == ',')
      p = cr__json_ws(p + 1, end);
  }
  return p < end ? 0 : -1;
}

/* The body of one collections upsert of records[0..n). */
static int sf_upsert_body(struct salesforce *sf, const char *object,
                          const char *const *records, size_t n,
                          size_t first_index, struct sf_buf *b) {
  sf_buf_str(b, "{\"allOrNone\":false,\"records\":[");
  for (size_t i = 0; i < n; i++) {
    sf_buf_str(b, i ? ",{\"attributes\":{\"type\":\""
                    : "{\"attributes\":"
                      "{\"type\":\"");
    sf_buf_str(b, object);
    sf_buf_str(b, "\"}");
    if (sf_copy_members(b, records[i], records[i] + strlen(records[i])) != 0)
      return sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                     "record %zu of stream %s is not a JSON object",
                     first_index + i, object);
    sf_buf_str(b, "}");
  }
  sf_buf_str(b, "]}");
  return b->oom ? sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0, "out of memory")
                : CR_PLUGIN_OK;
}

/* Reports one failed UpsertResult (index, external id, first error) to the
 * host per record (ABI 1.2; returns 1) or, when the host does not take it,
 * logs it and keeps the first as the batch's error (returns 0). */
static int sf_log_failure(struct salesforce *sf, cr_plugin_ctx *ctx,
                          const char *object, size_t index, const char *record,
                          const char *result, size_t rlen) {
  struct cr_json_array_iter it;
  const char *e = NULL;
  size_t n = 0;
  char code[64] = "", msg[200] = "", ext[128] = "";
  if (cr_json_array_begin_n(&it, result, rlen, "errors") == 0 &&
      cr_json_array_next(&it, &e, &n) == 1) {
    cr_json_get_string_n(e, n, "statusCode", code, sizeof code);
    cr_json_get_string_n(e, n, "message", msg, sizeof msg);
  }
  cr_json_get_string(record, sf->external_id, ext, sizeof ext);
  sf_printable(code);
  sf_printable(msg);
  sf_printable(ext);
  if (CR_HOST_HAS(sf->api, record_failed)) { /* ABI 1.2: per record */
    char why[300];
    snprintf(why, sizeof why, "%s: %s", code[0] ? code : "-",
             msg[0] ? msg : "no details");
    if (sf->api->record_failed(ctx, index, ext[0] ? ext : NULL, why) == 0)
      return 1;
  }
  cr_plugin_logf(sf->api, ctx, CR_PLUGIN_LOG_WARN,
                 "%s record %zu (%s=%s) rejected: %s: %s", object, index,
                 sf->external_id, ext, code[0] ? code : "-",
                 msg[0] ? msg : "no details");
  if (sf->err[0] == '\0')
    sf_fail(sf, CR_PLUGIN_OK, 0, "first: record %zu (%s=%s): %s: %s", index,
            sf->external_id, ext, code[0] ? code : "-",
            msg[0] ? msg : "no details");
  return 0;
}

/* Walks the UpsertResult array of one batch; reports failures and counts
 * those the host did not take per record. */
static int sf_upsert_results(struct salesforce *sf, cr_plugin_ctx *ctx,
                             const char *object, const char *const *records,
                             size_t n, size_t first_index,
                             const struct cr_http_response *resp,
                             size_t *failed) {
  struct cr_json_array_iter it;
  const char *e;
  size_t el, i = 0;
  if (cr_json_array_begin_n(&it, resp->body, resp->body_len, NULL) != 0)
    return sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0,
                   "unexpected upsert answer from Salesforce (not an array)");
  while (i < n && cr_json_array_next(&it, &e, &el) == 1) {
    const char *v;
    size_t vl;
    if (cr_json_get_raw_n(e, el, "success", &v, &vl) != 0 || vl != 4 ||
        memcmp(v, "true", 4) != 0) {
      *failed +=
          !sf_log_failure(sf, ctx, object, first_index + i, records[i], e, el);
    }
    i++;
  }
  return i == n
             ? CR_PLUGIN_OK
             : sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0,
                       "Salesforce answered %zu results for %zu records", i, n);
}

/* Upserts records[0..n) (n <= SF_BATCH) of object. */
static int sf_upsert_batch(struct salesforce *sf, cr_plugin_ctx *ctx,
                           const char *object, const char *const *records,
                           size_t n, size_t first_index, size_t *failed) {
  struct sf_buf body = {.api = sf->api}, url = {.api = sf->api};
  struct cr_http_response resp;
  int rc = sf_upsert_body(sf, object, records, n, first_index, &body);
  sf_data_url(sf, &url, "/composite/sobjects/");
  sf_buf_str(&url, object);
  sf_buf_str(&url, "/");
  sf_buf_str(&url, sf->external_id);
  if (rc == CR_PLUGIN_OK && url.oom)
    rc = sf_fail(sf, CR_PLUGIN_ERR_SYSTEM, 0, "out of memory");
  if (rc == CR_PLUGIN_OK)
    rc = sf_call(sf, ctx, "PATCH", url.p, &body, &resp, "the upsert");
  if (rc == CR_PLUGIN_OK) {
    rc = sf_upsert_results(sf, ctx, object, records, n, first_index, &resp,
                           failed);
    sf->api->http_response_free(ctx, &resp);
  }
  sf_buf_free(&body);
  sf_buf_free(&url);
  return rc;
}

static int sf_write(void *instance, cr_plugin_ctx *ctx, const char *stream,
                    const char *const *records, size_t n) {
  struct salesforce *sf = instance;
  size_t failed = 0;
  int rc = CR_PLUGIN_OK;
  sf->err_result = CR_PLUGIN_OK;
  sf->err[0] = '\0';
  if (stream == NULL || !sf_ident(stream, 0) || strlen(stream) > 63)
    rc = sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                 "stream name is not an sObject name");
  else if (sf->external_id[0] == '\0')
    rc = sf_fail(sf, CR_PLUGIN_ERR_CONFIG, 0,
                 "config.external_id_field is needed to upsert");
  else if (!sf->have_token)
    rc = sf_token(sf, ctx);
  for (size_t i = 0; rc == CR_PLUGIN_OK && i < n; i += SF_BATCH)
    rc = sf_upsert_batch(sf, ctx, stream, records + i,
                         n - i < SF_BATCH ? n - i : SF_BATCH, i, &failed);
  if (rc != CR_PLUGIN_OK)
    return sf_report(sf, ctx, rc);
  if (failed == 0) /* none, or every one reported with record_failed */
    return CR_PLUGIN_OK;
  char first[SF_MSG_MAX];
  snprintf(first, sizeof first, "%s", sf->err);
  return cr_plugin_errorf(sf->api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                          "%zu of %zu %s records rejected by Salesforce (%s)",
                          failed, n, stream, first);
}

/* ---- The descriptor --------------------------------------------------------
 */

static const char *const sf_auth_methods[] = {"oauth2_refresh_token",
                                              "oauth2_jwt_bearer", NULL};

static const struct cr_plugin_descriptor sf_descriptor = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "salesforce",
    .display_name = "Salesforce",
    .version = "0.1.0",
    .description = "Salesforce REST API: OAuth health, incremental SOQL "
                   "reads, upserts by external id",
    .auth_methods = sf_auth_methods,
    .credentials_schema = sf_credentials_schema,
    .config_schema = sf_config_schema,
    .streams_json = sf_streams,
    .capabilities =
        CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ | CR_PLUGIN_CAP_WRITE,
    .create = sf_create,
    .destroy = sf_destroy,
    .health_check = sf_health_check,
    .read = sf_read,
    .write = sf_write,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &sf_descriptor;
}
