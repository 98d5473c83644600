/* facebook.c: the "facebook" provider plugin, for Meta's Graph / Marketing
 * API (https://graph.facebook.com), following its documented shapes.
 *
 * Authorization: method "token"; credentials {"access_token": "..."} (a
 * system-user or long-lived user token). Every request carries
 * "Authorization: Bearer <token>" (never the access_token query parameter,
 * so the token is in no URL). base_url and api_version are work config keys
 * (credentials are all secrets): a loopback fake in tests.
 *
 * Errors
 * (https://developers.facebook.com/docs/graph-api/guides/error-handling): a
 * non-200 body {"error":{"message","type","code","error_subcode",
 * "fbtrace_id"}} is classified by its code, not its HTTP status:
 *   190, 102, type OAuthException       -> token invalid/expired (config)
 *   10, 200-299                          -> permission missing (config)
 *   4, 17, 32, 613, 80000-80014          -> rate limited: the wait is the
 *        largest estimated_time_to_regain_access (minutes) of the
 *        X-Business-Use-Case-Usage / X-Ad-Account-Usage headers, else
 *        reset_time_duration (seconds) of X-Ad-Account-Usage, else
 *        Retry-After; 0 (unknown) when none
 *        (https://developers.facebook.com/docs/graph-api/overview/rate-limiting,
 *        https://developers.facebook.com/docs/marketing-api/overview/rate-limiting)
 *   1, 2 or HTTP 5xx                     -> transient
 *
 * health_check: GET /{ver}/me/permissions, the token's own permissions
 * ({"data":[{"permission":"ads_read","status":"granted"},...]},
 * https://developers.facebook.com/docs/graph-api/reference/user/permissions/).
 * /debug_token would need the token in the input_token query parameter, so
 * it is not used. Healthy when the permissions the work needs are granted
 * (ads_read or ads_management for insights, ads_management for an
 * audience); Unhealthy naming the missing ones, or with the OAuthException
 * message; Unknown on 5xx, transport errors and rate limits.
 *
 * read: stream "ads_insights", GET /{ver}/act_{id}/insights with level,
 * fields, breakdowns, limit and time_range={"since":D,"until":D}, one day at
 * a time (https://developers.facebook.com/docs/marketing-api/insights/).
 * Paging is cursor based ({"data":[...],"paging":{"cursors":{"before",
 * "after"},"next":URL}},
 * https://developers.facebook.com/docs/graph-api/results): while a page has
 * paging.next the same request is repeated with after=paging.cursors.after (the
 * next URL itself carries the token as a query parameter, so it is not
 * requested as is). Each row is emitted as
 * {"level":L,"level_id":ID, ...the row} (the row always has account_id,
 * date_start, date_stop and the level's id field). A checkpoint follows
 * every page: {"accounts":{"<id>":{"complete":"YYYY-MM-DD","day":D,
 * "after":C}}}: complete is the last whole day read, day/after the page in
 * progress. A run starts each account at day/after when set, else at
 * complete + 1 - lookback_days (insights keep changing for days), else at
 * start_date (default: 30 days back); it ends at end_date (default:
 * yesterday, UTC).
 *
 * write: stream "audience_users" (or any stream) to POST
 * /{ver}/{audience_id}/users, form field payload={"schema":[...],
 * "data":[[...],...]} with every identifier normalised and SHA-256 hashed
 * (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash),
 * in batches of at most 10,000 users
 * (https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users/).
 * The answer {"audience_id","session_id","num_received",
 * "num_invalid_entries","invalid_entry_samples"} is checked: invalid
 * entries are logged as a warning (counts only, never the identifiers);
 * a batch whose every entry is invalid fails with a config error.
 *
 * SHA-256 comes from libcrypto (EVP), linked by this plugin alone.
 */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FB_DEFAULT_BASE_URL "https://graph.facebook.com"
#define FB_DEFAULT_VERSION "v21.0"
#define FB_STREAM "ads_insights"
#define FB_TOKEN_MAX 1024
#define FB_URL_MAX 512
#define FB_MAX_ACCOUNTS 50
#define FB_ID_MAX 40
#define FB_CURSOR_MAX 512
#define FB_LIST_MAX 1024
#define FB_MAX_KEYS 12
#define FB_MAX_BATCH 10000
#define FB_VALUE_MAX 512
#define FB_DEFAULT_HISTORY_DAYS 30

/* ---- Schemas and streams ---------------------------------------------- */

static const char fb_credentials_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{\"access_token\":{\"type\":\"string\","
    "\"minLength\":8,\"maxLength\":1000}},"
    "\"required\":[\"access_token\"],\"additionalProperties\":false}";

static const char fb_config_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"base_url\":{\"type\":\"string\",\"pattern\":\"^https?://\","
    "\"maxLength\":400},"
    "\"api_version\":{\"type\":\"string\",\"pattern\":\"^v[0-9]+\\\\.[0-9]+$\"}"
    ","
    "\"ad_account_ids\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":50,"
    "\"items\":{\"type\":\"string\",\"pattern\":\"^(act_)?[0-9]{1,30}$\"}},"
    "\"fields\":{\"type\":\"array\",\"maxItems\":64,\"items\":{\"type\":"
    "\"string\",\"pattern\":\"^[a-z0-9_]{1,64}$\"}},"
    "\"level\":{\"type\":\"string\",\"enum\":[\"account\",\"campaign\","
    "\"adset\",\"ad\"]},"
    "\"breakdowns\":{\"type\":\"array\",\"maxItems\":8,\"items\":{\"type\":"
    "\"string\",\"pattern\":\"^[a-z0-9_]{1,64}$\"}},"
    "\"start_date\":{\"type\":\"string\",\"pattern\":"
    "\"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"},"
    "\"end_date\":{\"type\":\"string\",\"pattern\":"
    "\"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"},"
    "\"lookback_days\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":90},"
    "\"page_size\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":5000},"
    "\"audience_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{1,30}$\"},"
    "\"audience_schema\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":12,"
    "\"items\":{\"type\":\"string\",\"enum\":[\"EMAIL\",\"PHONE\",\"FN\","
    "\"LN\",\"CT\",\"ST\",\"ZIP\",\"COUNTRY\",\"GEN\",\"DOBY\",\"DOBM\","
    "\"DOBD\",\"EXTERN_ID\"]}},"
    "\"batch_size\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10000}},"
    "\"additionalProperties\":false}";

static const char fb_streams[] =
    "[{\"name\":\"ads_insights\",\"primary_key\":[\"account_id\","
    "\"date_start\",\"level_id\"],\"default_schedule\":\"6h\"}]";

/* ---- The instance ------------------------------------------------------ */

/* One ad account and its cursor. Dates are "" when unset. */
struct fb_account {
  char id[FB_ID_MAX]; /* digits only, without "act_" */
  char complete[11];  /* last whole day read */
  char day[11];       /* day in progress */
  char after[FB_CURSOR_MAX];
};

struct facebook {
  const struct cr_host_api *api;
  char auth_header[FB_TOKEN_MAX + 32]; /* "Authorization: Bearer <token>" */
  char base_url[FB_URL_MAX];           /* without a trailing '/' */
  char version[16];
  /* read */
  struct fb_account acc[FB_MAX_ACCOUNTS];
  size_t nacc;
  char fields[FB_LIST_MAX]; /* comma-separated */
  char breakdowns[FB_LIST_MAX];
  char level[16];
  char start_date[11], end_date[11];
  long long lookback_days, page_size;
  /* write */
  char audience_id[FB_ID_MAX];
  int keys[FB_MAX_KEYS]; /* indexes into fb_keys */
  size_t nkeys;
  long long batch_size;
};

static void fb_wipe(void *p, size_t n) {
  volatile unsigned char *v = p;
  while (n-- > 0)
    *v++ = 0;
}

/* ---- A growable buffer through api->alloc ------------------------------ */

struct fb_buf {
  const struct cr_host_api *api;
  char *p;
  size_t n, cap;
  int oom;
};

static void fb_buf_add(struct fb_buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = b->api->alloc(cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    if (b->n > 0)
      memcpy(p, b->p, b->n);
    b->api->free(b->p);
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void fb_buf_str(struct fb_buf *b, const char *s) {
  fb_buf_add(b, s, strlen(s));
}

/* Appends s as a JSON string literal (with its quotes). */
static void fb_buf_jstr(struct fb_buf *b, const char *s) {
  char esc[FB_VALUE_MAX * 6 + 1];
  if (cr_json_escape(s, esc, sizeof esc) < 0) {
    b->oom = 1;
    return;
  }
  fb_buf_str(b, "\"");
  fb_buf_str(b, esc);
  fb_buf_str(b, "\"");
}

static void fb_buf_free(struct fb_buf *b) {
  b->api->free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

/* Percent-encodes s (RFC 3986 unreserved characters kept) onto b. */
static void fb_buf_urlenc(struct fb_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char out[3];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~') {
      fb_buf_add(b, (const char *)&s[i], 1);
      continue;
    }
    out[0] = '%';
    out[1] = hex[c >> 4];
    out[2] = hex[c & 15];
    fb_buf_add(b, out, 3);
  }
}

/* ---- Dates (proleptic Gregorian, days since 1970-01-01) ---------------- */

/* H. Hinnant's days_from_civil. */
static long fb_days_from_civil(long y, long m, long d) {
  y -= m <= 2;
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void fb_civil_from_days(long z, char out[11]) {
  z += 719468;
  long era = (z >= 0 ? z : z - 146096) / 146097;
  long doe = z - era * 146097;
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long y = yoe + era * 400;
  long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long mp = (5 * doy + 2) / 153;
  long d = doy - (153 * mp + 2) / 5 + 1;
  long m = mp + (mp < 10 ? 3 : -9);
  snprintf(out, 11, "%04u-%02u-%02u", (unsigned)((y + (m <= 2)) % 10000),
           (unsigned)(m % 100), (unsigned)(d % 100));
}

/* Parses "YYYY-MM-DD" into days; -1 when malformed. */
static int fb_parse_date(const char *s, long *days) {
  long y, m, d;
  char check[11];
  if (strlen(s) != 10 || sscanf(s, "%4ld-%2ld-%2ld", &y, &m, &d) != 3 ||
      m < 1 || m > 12 || d < 1 || d > 31 || y < 2000 || y > 9999)
    return -1;
  *days = fb_days_from_civil(y, m, d);
  fb_civil_from_days(*days, check);
  return strcmp(check, s) == 0 ? 0 : -1;
}

/* ---- Config ------------------------------------------------------------ */

/* Calls each(fb, value, ud) for every string of the array member key
 * (absent: nothing). Returns 0, or -1 when not an array of short strings
 * or when each refuses a value. */
static int fb_each_string(struct facebook *fb, const char *json,
                          const char *key,
                          int (*each)(struct facebook *, const char *, void *),
                          void *ud) {
  struct cr_json_array_iter it;
  const char *e, *raw;
  size_t n, rawlen;
  int r;
  if (json == NULL || cr_json_get_raw(json, key, &raw, &rawlen) != 0)
    return 0;
  if (cr_json_array_begin(&it, json, key) != 0)
    return -1;
  while ((r = cr_json_array_next(&it, &e, &n)) == 1) {
    char v[128];
    if (cr_json_string_decode(e, n, v, sizeof v) != 0 || each(fb, v, ud) != 0)
      return -1;
  }
  return r < 0 ? -1 : 0;
}

static int fb_is_name(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

/* Appends a field name to a comma list (ud), once. */
static int fb_add_name(struct facebook *fb, const char *v, void *ud) {
  (void)fb;
  char *list = ud;
  size_t n = strlen(list), vl = strlen(v);
  if (!fb_is_name(v) || n + vl + 2 > FB_LIST_MAX)
    return -1;
  for (const char *p = list; *p;) {
    size_t l = strcspn(p, ",");
    if (l == vl && strncmp(p, v, vl) == 0)
      return 0;
    p += l + (p[l] == ',');
  }
  snprintf(list + n, FB_LIST_MAX - n, "%s%s", n ? "," : "", v);
  return 0;
}

static int fb_add_account(struct facebook *fb, const char *v, void *ud) {
  (void)ud;
  if (strncmp(v, "act_", 4) == 0)
    v += 4;
  size_t n = strlen(v);
  if (n == 0 || n >= FB_ID_MAX || strspn(v, "0123456789") != n ||
      fb->nacc == FB_MAX_ACCOUNTS)
    return -1;
  struct fb_account *a = &fb->acc[fb->nacc++];
  memset(a, 0, sizeof *a);
  memcpy(a->id, v, n + 1);
  return 0;
}

/* The identifier keys of a Custom Audience schema and how each is
 * normalised before hashing, per Meta's "Hashing and Normalizing Data"
 * table (custom-audiences guide, #hash). The record member is the key in
 * lower case ("email", "phone", "fn", ...). */
enum {
  N_TRIM = 1,     /* strip leading and trailing white space */
  N_LOWER = 2,    /* ASCII lower case */
  N_DIGITS = 4,   /* keep digits only */
  N_NOZERO = 8,   /* strip leading zeros */
  N_NOPUNCT = 16, /* drop ASCII punctuation */
  N_NOSPACE = 32, /* drop every white space */
  N_ZIP5 = 64,    /* "12345-6789" -> "12345" */
  N_FIRST = 128,  /* keep the first character only (GEN: m / f) */
  N_RAW = 256,    /* sent as is, not hashed (EXTERN_ID) */
};

static const struct {
  const char *key, *member;
  int rules;
} fb_keys[] = {
    {"EMAIL", "email", N_TRIM | N_LOWER},
    {"PHONE", "phone", N_DIGITS | N_NOZERO},
    {"FN", "fn", N_TRIM | N_LOWER | N_NOPUNCT},
    {"LN", "ln", N_TRIM | N_LOWER | N_NOPUNCT},
    {"CT", "ct", N_LOWER | N_NOPUNCT | N_NOSPACE},
    {"ST", "st", N_LOWER | N_NOPUNCT | N_NOSPACE},
    {"ZIP", "zip", N_LOWER | N_NOSPACE | N_ZIP5},
    {"COUNTRY", "country", N_LOWER | N_NOPUNCT | N_NOSPACE},
    {"GEN", "gen", N_TRIM | N_LOWER | N_FIRST},
    {"DOBY", "doby", N_DIGITS},
    {"DOBM", "dobm", N_DIGITS},
    {"DOBD", "dobd", N_DIGITS},
    {"EXTERN_ID", "extern_id", N_TRIM | N_RAW},
};
#define FB_NKEYS (sizeof fb_keys / sizeof fb_keys[0])

static int fb_add_key(struct facebook *fb, const char *v, void *ud) {
  (void)ud;
  for (size_t i = 0; i < FB_NKEYS; i++)
    if (strcmp(v, fb_keys[i].key) == 0 && fb->nkeys < FB_MAX_KEYS) {
      fb->keys[fb->nkeys++] = (int)i;
      return 0;
    }
  return -1;
}

/* Copies the string member key into out when present. -1 when present but
 * not a string that fits. */
static int fb_opt_string(const char *json, const char *key, char *out,
                         size_t outlen) {
  const char *raw;
  size_t rawlen;
  if (json == NULL || cr_json_get_raw(json, key, &raw, &rawlen) != 0)
    return 0;
  return cr_json_get_string(json, key, out, outlen);
}

static int fb_opt_int(const char *json, const char *key, long long lo,
                      long long hi, long long *out) {
  const char *raw;
  size_t rawlen;
  if (json == NULL || cr_json_get_raw(json, key, &raw, &rawlen) != 0)
    return 0;
  long long v;
  if (cr_json_get_int(json, key, &v) != 0 || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static int fb_parse_connection(struct facebook *fb, const char *json) {
  snprintf(fb->base_url, sizeof fb->base_url, "%s", FB_DEFAULT_BASE_URL);
  snprintf(fb->version, sizeof fb->version, "%s", FB_DEFAULT_VERSION);
  if (fb_opt_string(json, "base_url", fb->base_url, sizeof fb->base_url) ||
      (strncmp(fb->base_url, "https://", 8) != 0 &&
       strncmp(fb->base_url, "http://", 7) != 0))
    return -1;
  size_t n = strlen(fb->base_url);
  while (n > 0 && fb->base_url[n - 1] == '/')
    fb->base_url[--n] = '\0';
  if (fb_opt_string(json, "api_version", fb->version, sizeof fb->version) ||
      fb->version[0] != 'v')
    return -1;
  return 0;
}

/* Reads the work config. Returns 0 or writes errbuf and returns -1. */
static int fb_parse_config(struct facebook *fb, const char *json, char *errbuf,
                           size_t errlen) {
  const char *bad = NULL;
  long day;
  fb->lookback_days = 3;
  fb->page_size = 500;
  fb->batch_size = FB_MAX_BATCH;
  snprintf(fb->level, sizeof fb->level, "ad");
  if (fb_parse_connection(fb, json) != 0)
    bad = "base_url must be an http(s) URL and api_version like \"v21.0\"";
  else if (fb_each_string(fb, json, "ad_account_ids", fb_add_account, NULL))
    bad = "ad_account_ids must be up to 50 ids like \"act_123\"";
  else if (fb_each_string(fb, json, "fields", fb_add_name, fb->fields) ||
           fb_each_string(fb, json, "breakdowns", fb_add_name, fb->breakdowns))
    bad = "fields and breakdowns must be lists of field names";
  else if (fb_opt_string(json, "level", fb->level, sizeof fb->level) ||
           (strcmp(fb->level, "account") && strcmp(fb->level, "campaign") &&
            strcmp(fb->level, "adset") && strcmp(fb->level, "ad")))
    bad = "level must be account, campaign, adset or ad";
  else if (fb_opt_string(json, "start_date", fb->start_date, 11) ||
           fb_opt_string(json, "end_date", fb->end_date, 11) ||
           (fb->start_date[0] && fb_parse_date(fb->start_date, &day)) ||
           (fb->end_date[0] && fb_parse_date(fb->end_date, &day)))
    bad = "start_date and end_date must be dates YYYY-MM-DD";
  else if (fb_opt_int(json, "lookback_days", 0, 90, &fb->lookback_days) ||
           fb_opt_int(json, "page_size", 1, 5000, &fb->page_size) ||
           fb_opt_int(json, "batch_size", 1, FB_MAX_BATCH, &fb->batch_size))
    bad = "lookback_days (0-90), page_size (1-5000) or batch_size "
          "(1-10000) out of range";
  else if (fb_opt_string(json, "audience_id", fb->audience_id,
                         sizeof fb->audience_id) ||
           fb_each_string(fb, json, "audience_schema", fb_add_key, NULL))
    bad = "audience_id must be a numeric id and audience_schema a list of "
          "EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY, GEN, DOBY, DOBM, "
          "DOBD, EXTERN_ID";
  if (bad != NULL) {
    snprintf(errbuf, errlen, "%s", bad);
    return -1;
  }
  if (fb->nkeys == 0)
    fb->keys[fb->nkeys++] = 0; /* EMAIL */
  return 0;
}

static int fb_token_ok(const char *t) {
  for (const unsigned char *p = (const unsigned char *)t; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f)
      return 0;
  return t[0] != '\0';
}

static int fb_create(const struct cr_host_api *api,
                     const struct cr_plugin_params *params, void **instance_out,
                     char *errbuf, size_t errlen) {
  struct facebook *fb = api->alloc(sizeof *fb);
  char token[FB_TOKEN_MAX];
  int rc = CR_PLUGIN_ERR_CONFIG;
  if (fb == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  memset(fb, 0, sizeof *fb);
  fb->api = api;
  if (params->credentials_json == NULL ||
      cr_json_get_string(params->credentials_json, "access_token", token,
                         sizeof token) != 0 ||
      !fb_token_ok(token))
    snprintf(errbuf, errlen,
             "credentials need an access_token string of at most %d "
             "printable characters",
             FB_TOKEN_MAX - 1);
  else if (fb_parse_config(fb, params->config_json, errbuf, errlen) == 0)
    rc = CR_PLUGIN_OK;
  if (rc == CR_PLUGIN_OK)
    snprintf(fb->auth_header, sizeof fb->auth_header,
             "Authorization: Bearer %s", token);
  fb_wipe(token, sizeof token);
  if (rc != CR_PLUGIN_OK) {
    fb_wipe(fb, sizeof *fb);
    api->free(fb);
    return rc;
  }
  *instance_out = fb;
  return CR_PLUGIN_OK;
}

static void fb_destroy(void *instance) {
  struct facebook *fb = instance;
  if (fb == NULL)
    return;
  const struct cr_host_api *api = fb->api;
  fb_wipe(fb, sizeof *fb);
  api->free(fb);
}

/* ---- HTTP and errors --------------------------------------------------- */

/* Sends method to url (body form-encoded when not NULL). resp must be
 * freed by the caller. */
static int fb_http(struct facebook *fb, cr_plugin_ctx *ctx, const char *method,
                   const char *url, const struct fb_buf *body,
                   struct cr_http_response *resp) {
  const char *headers[] = {
      fb->auth_header, "Accept: application/json",
      body != NULL ? "Content-Type: application/x-www-form-urlencoded" : NULL,
      NULL};
  struct cr_http_request req;
  cr_http_request_init(&req);
  req.method = method;
  req.url = url;
  req.headers = headers;
  if (body != NULL) {
    req.body = body->p;
    req.body_len = body->n;
  }
  return fb->api->http(ctx, &req, resp);
}

/* The largest number following "key": in text, -1 when none. */
static double fb_scan_max(const char *text, const char *key) {
  char pat[64];
  double best = -1;
  snprintf(pat, sizeof pat, "\"%s\"", key);
  for (const char *p = strstr(text, pat); p != NULL; p = strstr(p + 1, pat)) {
    const char *v = p + strlen(pat);
    while (*v == ' ' || *v == ':')
      v++;
    char *end = NULL;
    double d = strtod(v, &end);
    if (end != v && d > best)
      best = d;
  }
  return best;
}

/* The wait the usage headers ask for, in ms (0 when unknown). */
static int64_t fb_rate_wait_ms(const struct cr_http_response *resp) {
  static const char *const hdrs[] = {"X-Business-Use-Case-Usage",
                                     "X-Ad-Account-Usage", "X-App-Usage"};
  char v[4096];
  double minutes = -1, seconds = -1;
  for (size_t i = 0; i < 3; i++) {
    if (cr_http_header_value(resp, hdrs[i], v, sizeof v) == -1)
      continue;
    double m = fb_scan_max(v, "estimated_time_to_regain_access");
    double s = fb_scan_max(v, "reset_time_duration");
    if (m > minutes)
      minutes = m;
    if (s > seconds)
      seconds = s;
  }
  if (minutes > 0 && minutes <= 24 * 60)
    return (int64_t)(minutes * 60000.0);
  if (seconds > 0 && seconds <= 86400)
    return (int64_t)(seconds * 1000.0);
  int64_t ra = cr_http_retry_after_ms(resp);
  return ra > 0 ? ra : 0;
}

/* A Graph error, parsed from a non-200 answer. */
struct fb_error {
  long status;
  long long code, subcode;
  char type[64];
  char message[200];
  int result;      /* cr_plugin_result class */
  int auth;        /* 1: token invalid, 2: permission missing */
  int64_t wait_ms; /* for CR_PLUGIN_ERR_RATE_LIMITED */
};

static int fb_is_rate_code(long long c) {
  return c == 4 || c == 17 || c == 32 || c == 613 || (c >= 80000 && c <= 80014);
}

static void fb_printable(char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
      *s = '?';
}

static void fb_error_parse(const struct cr_http_response *resp,
                           struct fb_error *e) {
  const char *obj;
  size_t n;
  memset(e, 0, sizeof e[0]);
  e->status = resp->status;
  e->code = e->subcode = -1;
  snprintf(e->message, sizeof e->message, "no details");
  if (resp->body != NULL &&
      cr_json_get_raw_n(resp->body, resp->body_len, "error", &obj, &n) == 0) {
    cr_json_get_int_n(obj, n, "code", &e->code);
    cr_json_get_int_n(obj, n, "error_subcode", &e->subcode);
    cr_json_get_string_n(obj, n, "type", e->type, sizeof e->type);
    if (cr_json_get_string_n(obj, n, "message", e->message,
                             sizeof e->message) != 0 ||
        e->message[0] == '\0')
      snprintf(e->message, sizeof e->message, "no details");
  }
  fb_printable(e->message);
  fb_printable(e->type);
  if (fb_is_rate_code(e->code) || e->status == 429) {
    e->result = CR_PLUGIN_ERR_RATE_LIMITED;
    e->wait_ms = fb_rate_wait_ms(resp);
  } else if (e->code == 190 || e->code == 102 ||
             (strcmp(e->type, "OAuthException") == 0 && e->code < 0)) {
    e->result = CR_PLUGIN_ERR_CONFIG;
    e->auth = 1;
  } else if (e->code == 10 || (e->code >= 200 && e->code <= 299)) {
    e->result = CR_PLUGIN_ERR_CONFIG;
    e->auth = 2;
  } else if (e->status >= 500 || e->code == 1 || e->code == 2) {
    e->result = CR_PLUGIN_ERR_TRANSIENT;
  } else if (e->status >= 400 && e->status < 500) {
    e->result = CR_PLUGIN_ERR_CONFIG;
  } else {
    e->result = CR_PLUGIN_ERR_SYSTEM;
  }
}

/* "Facebook error 190/460 (OAuthException, HTTP 400): msg" into out. */
static void fb_error_text(const struct fb_error *e, char *out, size_t len) {
  char sub[32] = "";
  if (e->subcode >= 0)
    snprintf(sub, sizeof sub, "/%lld", e->subcode);
  if (e->result == CR_PLUGIN_ERR_RATE_LIMITED)
    snprintf(out, len,
             "rate limited by Facebook (code %lld%s, HTTP %ld), retry in "
             "%lld s: %s",
             e->code, sub, e->status, (long long)((e->wait_ms + 999) / 1000),
             e->message);
  else
    snprintf(out, len, "Facebook error %lld%s (%s, HTTP %ld): %s", e->code, sub,
             e->type[0] ? e->type : "no type", e->status, e->message);
}

/* Records the error of a failed request (transport or API) and returns its
 * class. */
static int fb_fail(struct facebook *fb, cr_plugin_ctx *ctx, int rc,
                   const struct cr_http_response *resp) {
  if (rc == CR_PLUGIN_ERR_CANCELLED)
    return rc;
  if (rc != CR_PLUGIN_OK)
    return cr_plugin_errorf(fb->api, ctx, rc, 0, "cannot reach Facebook: %s",
                            resp->error);
  struct fb_error e;
  char msg[400];
  fb_error_parse(resp, &e);
  fb_error_text(&e, msg, sizeof msg);
  return cr_plugin_errorf(fb->api, ctx, e.result, e.wait_ms, "%s", msg);
}

/* ---- health_check ------------------------------------------------------ */

static int fb_verdict(struct facebook *fb, cr_plugin_ctx *ctx,
                      struct cr_plugin_health_result *out, int status,
                      int result, int64_t retry_ms, const char *msg) {
  out->status = status;
  if (out->reason != NULL && out->reason_len > 0)
    snprintf(out->reason, out->reason_len, "%s", msg);
  if (result != CR_PLUGIN_OK)
    fb->api->set_error(ctx, result, msg, retry_ms);
  return result;
}

/* 1 when permission perm has status "granted" in a /me/permissions body. */
static int fb_granted(const struct cr_http_response *resp, const char *perm,
                      char *all, size_t alllen) {
  struct cr_json_array_iter it;
  const char *e;
  size_t n;
  int found = 0;
  if (all != NULL)
    all[0] = '\0';
  if (cr_json_array_begin_n(&it, resp->body, resp->body_len, "data") != 0)
    return -1;
  while (cr_json_array_next(&it, &e, &n) == 1) {
    char p[64], st[32];
    if (cr_json_get_string_n(e, n, "permission", p, sizeof p) != 0 ||
        cr_json_get_string_n(e, n, "status", st, sizeof st) != 0 ||
        strcmp(st, "granted") != 0)
      continue;
    if (strcmp(p, perm) == 0)
      found = 1;
    if (all != NULL) {
      size_t used = strlen(all);
      snprintf(all + used, alllen - used, "%s%s", used ? ", " : "", p);
    }
  }
  return found;
}

/* The verdict on a 200 /me/permissions answer. */
static int fb_health_permissions(struct facebook *fb, cr_plugin_ctx *ctx,
                                 const struct cr_http_response *resp,
                                 struct cr_plugin_health_result *out) {
  char granted[300], msg[420], missing[32] = "";
  int rd = fb_granted(resp, "ads_read", granted, sizeof granted);
  int mg = fb_granted(resp, "ads_management", NULL, 0);
  if (rd < 0)
    return fb_verdict(fb, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN, CR_PLUGIN_OK, 0,
                      "unexpected answer from Facebook (200 without a "
                      "permissions list)");
  if (fb->audience_id[0] != '\0' && !mg)
    snprintf(missing, sizeof missing, "ads_management");
  else if (fb->nacc > 0 && !rd && !mg)
    snprintf(missing, sizeof missing, "ads_read");
  else if (!rd && !mg)
    snprintf(missing, sizeof missing, "ads_read or ads_management");
  if (missing[0] != '\0') {
    snprintf(msg, sizeof msg, "access token lacks permission %s (granted: %s)",
             missing, granted[0] ? granted : "none");
    return fb_verdict(fb, ctx, out, CR_PLUGIN_HEALTH_UNHEALTHY, CR_PLUGIN_OK, 0,
                      msg);
  }
  snprintf(msg, sizeof msg, "access token valid (granted: %s)", granted);
  return fb_verdict(fb, ctx, out, CR_PLUGIN_HEALTH_HEALTHY, CR_PLUGIN_OK, 0,
                    msg);
}

static int fb_health_error(struct facebook *fb, cr_plugin_ctx *ctx,
                           const struct cr_http_response *resp,
                           struct cr_plugin_health_result *out) {
  struct fb_error e;
  char msg[400];
  fb_error_parse(resp, &e);
  fb_error_text(&e, msg, sizeof msg);
  if (e.auth)
    return fb_verdict(fb, ctx, out, CR_PLUGIN_HEALTH_UNHEALTHY, CR_PLUGIN_OK, 0,
                      msg);
  return fb_verdict(fb, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN, e.result, e.wait_ms,
                    msg);
}

static int fb_health_check(void *instance, cr_plugin_ctx *ctx,
                           struct cr_plugin_health_result *out) {
  struct facebook *fb = instance;
  struct cr_http_response resp;
  char url[FB_URL_MAX + 64], msg[400];
  snprintf(url, sizeof url, "%s/%s/me/permissions", fb->base_url, fb->version);
  int rc = fb_http(fb, ctx, "GET", url, NULL, &resp);
  if (rc == CR_PLUGIN_OK && resp.status == 200) {
    rc = fb_health_permissions(fb, ctx, &resp, out);
  } else if (rc == CR_PLUGIN_OK) {
    rc = fb_health_error(fb, ctx, &resp, out);
  } else {
    snprintf(msg, sizeof msg, "cannot reach Facebook: %s", resp.error);
    rc = fb_verdict(fb, ctx, out, CR_PLUGIN_HEALTH_UNKNOWN, rc, 0, msg);
  }
  fb->api->http_response_free(ctx, &resp);
  return rc;
}

/* ---- read: state ------------------------------------------------------- */

/* Loads the committed cursor of each configured account. */
static void fb_load_state(struct facebook *fb, const char *state) {
  const char *accs, *a;
  size_t an, n;
  if (state == NULL || cr_json_get_raw(state, "accounts", &accs, &an) != 0 ||
      *accs != '{')
    return;
  for (size_t i = 0; i < fb->nacc; i++) {
    struct fb_account *ac = &fb->acc[i];
    long d;
    if (cr_json_get_raw_n(accs, an, ac->id, &a, &n) != 0)
      continue;
    cr_json_get_string_n(a, n, "complete", ac->complete, sizeof ac->complete);
    cr_json_get_string_n(a, n, "day", ac->day, sizeof ac->day);
    cr_json_get_string_n(a, n, "after", ac->after, sizeof ac->after);
    if (ac->complete[0] && fb_parse_date(ac->complete, &d) != 0)
      ac->complete[0] = '\0';
    if (ac->day[0] && fb_parse_date(ac->day, &d) != 0)
      ac->day[0] = ac->after[0] = '\0';
  }
}

static int fb_checkpoint(struct facebook *fb, cr_plugin_ctx *ctx) {
  struct fb_buf b = {.api = fb->api};
  fb_buf_str(&b, "{\"accounts\":{");
  for (size_t i = 0; i < fb->nacc; i++) {
    const struct fb_account *a = &fb->acc[i];
    fb_buf_str(&b, i ? ",\"" : "\"");
    fb_buf_str(&b, a->id);
    fb_buf_str(&b, "\":{\"complete\":");
    fb_buf_jstr(&b, a->complete);
    fb_buf_str(&b, ",\"day\":");
    fb_buf_jstr(&b, a->day);
    fb_buf_str(&b, ",\"after\":");
    fb_buf_jstr(&b, a->after);
    fb_buf_str(&b, "}");
  }
  fb_buf_str(&b, "}}");
  int rc = b.oom ? cr_plugin_errorf(fb->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                                    "out of memory for the checkpoint")
                 : fb->api->checkpoint(ctx, b.p);
  fb_buf_free(&b);
  return rc;
}

/* ---- read: insights pages ---------------------------------------------- */

/* The id field of the level ("ad" -> "ad_id"). */
static void fb_level_field(const struct facebook *fb, char *out, size_t len) {
  snprintf(out, len, "%s_id", fb->level);
}

/* The insights URL of one page of account a on day. */
static void fb_insights_url(const struct facebook *fb,
                            const struct fb_account *a, const char *day,
                            struct fb_buf *u) {
  char fields[FB_LIST_MAX + 64], idf[32], range[64], lim[32];
  fb_level_field(fb, idf, sizeof idf);
  fields[0] = '\0';
  fb_add_name(NULL, "account_id", fields);
  fb_add_name(NULL, "date_start", fields);
  fb_add_name(NULL, "date_stop", fields);
  fb_add_name(NULL, idf, fields);
  for (const char *p = fb->fields; *p;) {
    char one[80];
    size_t l = strcspn(p, ",");
    snprintf(one, sizeof one, "%.*s", (int)l, p);
    fb_add_name(NULL, one, fields);
    p += l + (p[l] == ',');
  }
  snprintf(range, sizeof range, "{\"since\":\"%s\",\"until\":\"%s\"}", day,
           day);
  snprintf(lim, sizeof lim, "%lld", fb->page_size);
  fb_buf_str(u, fb->base_url);
  fb_buf_str(u, "/");
  fb_buf_str(u, fb->version);
  fb_buf_str(u, "/act_");
  fb_buf_str(u, a->id);
  fb_buf_str(u, "/insights?level=");
  fb_buf_str(u, fb->level);
  fb_buf_str(u, "&fields=");
  fb_buf_urlenc(u, fields, strlen(fields));
  if (fb->breakdowns[0]) {
    fb_buf_str(u, "&breakdowns=");
    fb_buf_urlenc(u, fb->breakdowns, strlen(fb->breakdowns));
  }
  fb_buf_str(u, "&time_range=");
  fb_buf_urlenc(u, range, strlen(range));
  fb_buf_str(u, "&limit=");
  fb_buf_str(u, lim);
  if (a->after[0]) {
    fb_buf_str(u, "&after=");
    fb_buf_urlenc(u, a->after, strlen(a->after));
  }
}

/* Emits one insights row as {"level":..,"level_id":..,<row members>}. */
static int fb_emit_row(struct facebook *fb, cr_plugin_ctx *ctx, const char *e,
                       size_t n) {
  char idf[32], id[FB_ID_MAX * 2] = "";
  fb_level_field(fb, idf, sizeof idf);
  if (n < 2 || e[0] != '{' ||
      cr_json_get_string_n(e, n, idf, id, sizeof id) != 0)
    return cr_plugin_errorf(fb->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "unexpected insights row from Facebook (no %s)",
                            idf);
  struct fb_buf b = {.api = fb->api};
  fb_buf_str(&b, "{\"level\":");
  fb_buf_jstr(&b, fb->level);
  fb_buf_str(&b, ",\"level_id\":");
  fb_buf_jstr(&b, id);
  const char *rest = cr__json_ws(e + 1, e + n);
  if (*rest != '}')
    fb_buf_str(&b, ",");
  fb_buf_add(&b, rest, (size_t)(e + n - rest));
  int rc = b.oom ? cr_plugin_errorf(fb->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                                    "out of memory for an insights row")
                 : fb->api->emit(ctx, FB_STREAM, b.p, b.n);
  fb_buf_free(&b);
  return rc;
}

/* Emits the rows of a 200 page; sets *more and a->after from paging. */
static int fb_emit_page(struct facebook *fb, cr_plugin_ctx *ctx,
                        struct fb_account *a,
                        const struct cr_http_response *resp, uint64_t *done,
                        int *more) {
  struct cr_json_array_iter it;
  const char *e, *paging, *cursors, *next;
  size_t n, pn, cn, nn;
  int r;
  *more = 0;
  if (cr_json_array_begin_n(&it, resp->body, resp->body_len, "data") != 0)
    return cr_plugin_errorf(fb->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "unexpected insights answer from Facebook (no "
                            "data array)");
  while ((r = cr_json_array_next(&it, &e, &n)) == 1) {
    if (fb->api->cancelled(ctx))
      return CR_PLUGIN_ERR_CANCELLED;
    int rc = fb_emit_row(fb, ctx, e, n);
    if (rc != CR_PLUGIN_OK)
      return rc;
    fb->api->progress(ctx, FB_STREAM, ++*done, 0);
  }
  if (r < 0)
    return cr_plugin_errorf(fb->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "malformed insights answer from Facebook");
  /* More pages only while paging.next is present (Graph API "Paginated
   * Results": "If not included, this is the last page of data"). */
  if (cr_json_get_raw_n(resp->body, resp->body_len, "paging", &paging, &pn) ||
      cr_json_get_raw_n(paging, pn, "next", &next, &nn) || *next != '"')
    return CR_PLUGIN_OK;
  if (cr_json_get_raw_n(paging, pn, "cursors", &cursors, &cn) ||
      cr_json_get_string_n(cursors, cn, "after", a->after, sizeof a->after) ||
      a->after[0] == '\0')
    return cr_plugin_errorf(fb->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "insights page has paging.next but no usable "
                            "paging.cursors.after");
  *more = 1;
  return CR_PLUGIN_OK;
}

/* Reads every page of account a on day from a->after on, checkpointing
 * after each. */
static int fb_read_day(struct facebook *fb, cr_plugin_ctx *ctx,
                       struct fb_account *a, const char *day, uint64_t *done) {
  const struct cr_host_api *api = fb->api;
  snprintf(a->day, sizeof a->day, "%s", day);
  for (;;) {
    struct fb_buf url = {.api = api};
    struct cr_http_response resp;
    int more = 0, rc;
    if (api->cancelled(ctx))
      return CR_PLUGIN_ERR_CANCELLED;
    fb_insights_url(fb, a, day, &url);
    if (url.oom) {
      fb_buf_free(&url);
      return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                              "out of memory for a URL");
    }
    rc = fb_http(fb, ctx, "GET", url.p, NULL, &resp);
    fb_buf_free(&url);
    if (rc == CR_PLUGIN_OK && resp.status == 200)
      rc = fb_emit_page(fb, ctx, a, &resp, done, &more);
    else
      rc = fb_fail(fb, ctx, rc, &resp);
    api->http_response_free(ctx, &resp);
    if (rc != CR_PLUGIN_OK)
      return rc;
    if (!more) {
      if (strcmp(day, a->complete) > 0)
        snprintf(a->complete, sizeof a->complete, "%s", day);
      a->day[0] = a->after[0] = '\0';
    }
    rc = fb_checkpoint(fb, ctx);
    if (rc != CR_PLUGIN_OK || !more)
      return rc;
  }
}

/* The first day to read for account a, given the last day end. */
static long fb_first_day(const struct facebook *fb, const struct fb_account *a,
                         long end) {
  long d, start;
  if (a->day[0] && fb_parse_date(a->day, &d) == 0)
    return d;
  if (!fb->start_date[0] || fb_parse_date(fb->start_date, &start) != 0)
    start = end - FB_DEFAULT_HISTORY_DAYS + 1;
  if (a->complete[0] && fb_parse_date(a->complete, &d) == 0) {
    long from = d + 1 - (long)fb->lookback_days;
    return from > start ? from : start;
  }
  return start;
}

static int fb_read_account(struct facebook *fb, cr_plugin_ctx *ctx,
                           struct fb_account *a, long end, uint64_t *done) {
  long first = fb_first_day(fb, a, end);
  if (first > end)
    return CR_PLUGIN_OK;
  if (!a->day[0])
    a->after[0] = '\0';
  for (long d = first; d <= end; d++) {
    char day[11];
    fb_civil_from_days(d, day);
    int rc = fb_read_day(fb, ctx, a, day, done);
    if (rc != CR_PLUGIN_OK)
      return rc;
  }
  return CR_PLUGIN_OK;
}

static int fb_read(void *instance, cr_plugin_ctx *ctx) {
  struct facebook *fb = instance;
  const struct cr_host_api *api = fb->api;
  long end;
  uint64_t done = 0;
  if (fb->nacc == 0)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "config.ad_account_ids is required to read "
                            "insights");
  if (fb->end_date[0])
    fb_parse_date(fb->end_date, &end);
  else
    end = (long)(time(NULL) / 86400) - 1; /* yesterday, UTC */
  fb_load_state(fb, api->state(ctx));
  for (size_t i = 0; i < fb->nacc; i++) {
    int rc = fb_read_account(fb, ctx, &fb->acc[i], end, &done);
    if (rc != CR_PLUGIN_OK)
      return rc;
  }
  cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_INFO,
                 "read %llu insights rows of %zu ad accounts",
                 (unsigned long long)done, fb->nacc);
  return CR_PLUGIN_OK;
}

/* ---- write: normalise and hash ------------------------------------------- */

static int fb_is_sha256_hex(const char *s) {
  return strlen(s) == 64 && strspn(s, "0123456789abcdefABCDEF") == 64;
}

/* Normalises in per rules into out (outlen bytes). */
static void fb_normalise(const char *in, int rules, char *out, size_t outlen) {
  size_t k = 0;
  const char *s = in, *e = in + strlen(in);
  if (rules & N_TRIM) {
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
      s++;
    while (e > s &&
           (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
      e--;
  }
  for (; s < e && k + 1 < outlen; s++) {
    unsigned char c = (unsigned char)*s;
    int digit = c >= '0' && c <= '9';
    int space = c == ' ' || c == '\t' || c == '\r' || c == '\n';
    int punct = c < 0x80 && !digit && !space && !(c >= 'a' && c <= 'z') &&
                !(c >= 'A' && c <= 'Z');
    if ((rules & N_DIGITS) && !digit)
      continue;
    if ((rules & N_NOZERO) && k == 0 && c == '0')
      continue;
    if ((rules & N_NOSPACE) && space)
      continue;
    if ((rules & N_NOPUNCT) && punct && !((rules & N_ZIP5) && c == '-'))
      continue;
    if ((rules & N_LOWER) && c >= 'A' && c <= 'Z')
      c = (unsigned char)(c - 'A' + 'a');
    out[k++] = (char)c;
  }
  out[k] = '\0';
  if ((rules & N_ZIP5) && k == 10 && out[5] == '-' &&
      strspn(out, "0123456789") == 5)
    out[5] = '\0';
  if ((rules & N_FIRST) && k > 1)
    out[1] = '\0';
}

/* Lower-case hex SHA-256 of s into hex (65 bytes). -1 on failure. */
static int fb_sha256_hex(const char *s, char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 ||
      mdlen != 32)
    return -1;
  for (unsigned i = 0; i < 32; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[64] = '\0';
  return 0;
}

/* The value to send for key index ki of a record: normalised and hashed
 * ("" when absent or empty). Already hashed values pass lower-cased. */
static int fb_identifier(const char *rec, size_t len, int ki, char *out,
                         size_t outlen) {
  char raw[FB_VALUE_MAX], norm[FB_VALUE_MAX];
  int rules = fb_keys[ki].rules, rc = 0;
  out[0] = '\0';
  if (cr_json_get_string_n(rec, len, fb_keys[ki].member, raw, sizeof raw) != 0)
    return 0;
  if (fb_is_sha256_hex(raw) && !(rules & N_RAW))
    rules = N_LOWER | N_RAW;
  fb_normalise(raw, rules, norm, sizeof norm);
  if (norm[0] != '\0' && (rules & N_RAW))
    snprintf(out, outlen, "%s", norm);
  else if (norm[0] != '\0')
    rc = fb_sha256_hex(norm, out);
  fb_wipe(raw, sizeof raw);
  fb_wipe(norm, sizeof norm);
  return rc;
}

/* ---- write: batches ----------------------------------------------------- */

/* A row sent in a users upload: the record it came from and its first
 * identifier as sent (how invalid_entry_samples names it; "" when longer). */
struct fb_row {
  size_t rec;
  char first[65];
};

/* Appends one row of identifiers; returns 1 when it had any, 0 when all
 * were blank (row not added), -1 on a hashing failure. row->first gets the
 * row's first identifier. */
static int fb_add_row(struct facebook *fb, struct fb_buf *json, int first,
                      const char *rec, struct fb_row *row) {
  char vals[FB_MAX_KEYS][FB_VALUE_MAX];
  int any = 0;
  for (size_t i = 0; i < fb->nkeys; i++) {
    if (fb_identifier(rec, strlen(rec), fb->keys[i], vals[i], FB_VALUE_MAX))
      return -1;
    any |= vals[i][0] != '\0';
  }
  if (!any)
    return 0;
  size_t fl = strlen(vals[0]);
  fl = fl < sizeof row->first ? fl : 0; /* too long to be named: "" */
  memcpy(row->first, vals[0], fl);
  row->first[fl] = '\0';
  fb_buf_str(json, first ? "[" : ",[");
  for (size_t i = 0; i < fb->nkeys; i++) {
    if (i > 0)
      fb_buf_str(json, ",");
    fb_buf_jstr(json, vals[i]);
  }
  fb_buf_str(json, "]");
  fb_wipe(vals, sizeof vals);
  return 1;
}

/* Reports record index as rejected (ABI 1.2) with why; 1 when the host
 * took it, 0 when it cannot (older host, or outside a destination). */
static int fb_reject(struct facebook *fb, cr_plugin_ctx *ctx, size_t index,
                     const char *why) {
  return CR_HOST_HAS(fb->api, record_failed) &&
         fb->api->record_failed(ctx, index, NULL, why) == 0;
}

/* Builds the payload JSON of records [0, n) (record base + i of the write);
 * *sent gets the rows in it and rows[0..*sent) where they came from. Records
 * without any identifier are reported rejected; *skipped counts those the host
 * did not take. */
static int fb_payload(struct facebook *fb, cr_plugin_ctx *ctx,
                      const char *const *records, size_t n, size_t base,
                      struct fb_buf *json, struct fb_row *rows, size_t *sent,
                      size_t *skipped) {
  fb_buf_str(json, "{\"schema\":[");
  for (size_t i = 0; i < fb->nkeys; i++) {
    fb_buf_str(json, i ? ",\"" : "\"");
    fb_buf_str(json, fb_keys[fb->keys[i]].key);
    fb_buf_str(json, "\"");
  }
  fb_buf_str(json, "],\"data\":[");
  *sent = *skipped = 0;
  for (size_t r = 0; r < n; r++) {
    int rc = fb_add_row(fb, json, *sent == 0, records[r], &rows[*sent]);
    if (rc < 0)
      return -1;
    if (rc == 0 &&
        !fb_reject(fb, ctx, base + r, "no identifier of the audience schema"))
      ++*skipped;
    rows[*sent].rec = base + r;
    *sent += (size_t)rc;
  }
  fb_buf_str(json, "]}");
  return json->oom ? -1 : 0;
}

/* Reports the rows named in the answer's invalid_entry_samples (a map from
 * the first identifier as sent to Facebook's reason) as rejected records of
 * the write (ABI 1.2); returns how many the host took. Only a sample: the
 * other invalid entries cannot be told apart. Identifiers never reach a
 * message (only the row's record index and the reason). */
static long long fb_report_samples(struct facebook *fb, cr_plugin_ctx *ctx,
                                   const struct cr_http_response *resp,
                                   const struct fb_row *rows, size_t sent) {
  const char *smp;
  size_t sl;
  long long told = 0;
  if (!CR_HOST_HAS(fb->api, record_failed) ||
      cr_json_get_raw_n(resp->body, resp->body_len, "invalid_entry_samples",
                        &smp, &sl) != 0 ||
      *smp != '{')
    return 0;
  for (size_t i = 0; i < sent; i++) {
    char reason[160], why[200];
    if (rows[i].first[0] == '\0' ||
        cr_json_get_string_n(smp, sl, rows[i].first, reason, sizeof reason) !=
            0)
      continue;
    fb_printable(reason);
    snprintf(why, sizeof why, "Facebook: %s", reason[0] ? reason : "invalid");
    told += fb_reject(fb, ctx, rows[i].rec, why);
  }
  return told;
}

/* Checks a 200 answer to a users POST and reports invalid entries (those
 * Facebook itemised per record, the rest as a count). */
static int fb_users_answer(struct facebook *fb, cr_plugin_ctx *ctx,
                           const struct cr_http_response *resp,
                           const struct fb_row *rows, size_t sent) {
  const struct cr_host_api *api = fb->api;
  long long received = -1, invalid = 0;
  char session[64] = "";
  if (cr_json_get_int_n(resp->body, resp->body_len, "num_received",
                        &received) != 0)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "unexpected answer from Facebook to a users "
                            "upload (no num_received)");
  cr_json_get_int_n(resp->body, resp->body_len, "num_invalid_entries",
                    &invalid);
  cr_json_get_string_n(resp->body, resp->body_len, "session_id", session,
                       sizeof session);
  fb_printable(session);
  if (received != (long long)sent)
    cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_WARN,
                   "audience %s: sent %zu users, Facebook received %lld",
                   fb->audience_id, sent, received);
  if (invalid > 0 && invalid >= received)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "audience %s: all %lld entries invalid (session "
                            "%s); check audience_schema and the records",
                            fb->audience_id, invalid, session);
  long long told =
      invalid > 0 ? fb_report_samples(fb, ctx, resp, rows, sent) : 0;
  if (invalid > told)
    cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_WARN,
                   "audience %s: %lld of %lld entries invalid (session %s)%s",
                   fb->audience_id, invalid, received, session,
                   told > 0 ? "; the samples reported per record" : "");
  return CR_PLUGIN_OK;
}

/* Uploads one batch of at most batch_size records, records[0] being record
 * base of the write. */
static int fb_write_batch(struct facebook *fb, cr_plugin_ctx *ctx,
                          const char *const *records, size_t n, size_t base) {
  const struct cr_host_api *api = fb->api;
  struct fb_buf json = {.api = api}, body = {.api = api};
  struct cr_http_response resp;
  char url[FB_URL_MAX + 96];
  size_t sent = 0, skipped = 0;
  struct fb_row *rows = api->alloc((n + 1) * sizeof *rows);
  int rc;
  if (rows == NULL || fb_payload(fb, ctx, records, n, base, &json, rows, &sent,
                                 &skipped) != 0) {
    rc = cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                          "cannot build the users payload (out of memory "
                          "or hashing failed)");
    goto out;
  }
  if (skipped > 0)
    cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_WARN,
                   "audience %s: %zu of %zu records have no identifier of "
                   "the schema and were skipped",
                   fb->audience_id, skipped, n);
  rc = CR_PLUGIN_OK;
  if (sent == 0)
    goto out;
  fb_buf_str(&body, "payload=");
  fb_buf_urlenc(&body, json.p, json.n);
  snprintf(url, sizeof url, "%s/%s/%s/users", fb->base_url, fb->version,
           fb->audience_id);
  rc = body.oom ? CR_PLUGIN_ERR_SYSTEM
                : fb_http(fb, ctx, "POST", url, &body, &resp);
  if (body.oom) {
    cr_plugin_errorf(api, ctx, rc, 0, "out of memory for the users upload");
    goto out;
  }
  if (rc == CR_PLUGIN_OK && resp.status == 200)
    rc = fb_users_answer(fb, ctx, &resp, rows, sent);
  else
    rc = fb_fail(fb, ctx, rc, &resp);
  api->http_response_free(ctx, &resp);
out:
  fb_buf_free(&json);
  fb_buf_free(&body);
  if (rows != NULL)
    fb_wipe(rows, (n + 1) * sizeof *rows);
  api->free(rows);
  return rc;
}

static int fb_write(void *instance, cr_plugin_ctx *ctx, const char *stream,
                    const char *const *records, size_t n) {
  struct facebook *fb = instance;
  (void)stream;
  if (fb->audience_id[0] == '\0')
    return cr_plugin_errorf(fb->api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "config.audience_id is required to upload "
                            "audience users");
  size_t step = (size_t)fb->batch_size;
  for (size_t i = 0; i < n; i += step) {
    if (fb->api->cancelled(ctx))
      return CR_PLUGIN_ERR_CANCELLED;
    int rc =
        fb_write_batch(fb, ctx, records + i, n - i < step ? n - i : step, i);
    if (rc != CR_PLUGIN_OK)
      return rc;
  }
  return CR_PLUGIN_OK;
}

/* ---- The descriptor ---------------------------------------------------- */

static const char *const fb_auth_methods[] = {"token", NULL};

static const struct cr_plugin_descriptor fb_descriptor = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "facebook",
    .display_name = "Facebook (Meta Marketing API)",
    .version = "0.1.0",
    .description = "Meta Marketing API: token health, ad insights, Custom "
                   "Audience users",
    .auth_methods = fb_auth_methods,
    .credentials_schema = fb_credentials_schema,
    .config_schema = fb_config_schema,
    .streams_json = fb_streams,
    .capabilities =
        CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ | CR_PLUGIN_CAP_WRITE,
    .create = fb_create,
    .destroy = fb_destroy,
    .health_check = fb_health_check,
    .read = fb_read,
    .write = fb_write,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &fb_descriptor;
}
