/* api_http.c: the REST API's request and response helpers (see api_int.h):
 * JSON answers and error bodies, query parameters, times, paging links, and
 * JSON request bodies with their checks. */
#include "api/api_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/control.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/jsonlimits.h"

/* Deepest nesting a request body may have. */
#define BODY_MAX_DEPTH 64

void cr__api_json(struct cr__api_res *res, int status, json_t *body) {
  json_decref(res->body);
  res->status = status;
  res->body = body;
  if (body == NULL && status != 204) {
    res->status = 500;
    res->body = json_pack("{s:{s:s,s:s}}", "error", "code", "internal",
                          "message", "out of memory");
  }
}

void cr__api_error(struct cr__api_res *res, int status, const char *code,
                   const char *field, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
  if (err != NULL && field != NULL)
    json_object_set_new(err, "field", json_string(field));
  cr__api_json(res, status, err ? json_pack("{s:o}", "error", err) : NULL);
}

void cr__api_error_rc(struct cr__api_res *res, int rc, const char *what) {
  switch (rc) {
  case CR_ENOENT:
    cr__api_error(res, 404, "not_found", NULL, "%s not found", what);
    break;
  case CR_EEXIST:
    cr__api_error(res, 409, "conflict", NULL, "%s already exists", what);
    break;
  case CR_ESTATE:
    cr__api_error(res, 409, "conflict", NULL, "%s: %s", what, cr_strerror(rc));
    break;
  case CR_EBUSY:
    res->retry_after = 1;
    cr__api_error(res, 503, "busy", NULL, "%s: the store is busy, try again",
                  what);
    break;
  default:
    cr__api_error(res, 500, "internal", NULL, "%s: %s", what, cr_strerror(rc));
  }
}

const char *cr__api_query(struct cr__api_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int cr__api_query_int(struct cr__api_req *r, struct cr__api_res *res,
                      const char *name, int64_t min, int64_t max, int64_t def,
                      int64_t *out) {
  const char *v = cr__api_query(r, name);
  *out = def;
  if (v == NULL)
    return 0;
  char *end = NULL;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (*v == '\0' || *end != '\0' || errno != 0 || n < min || n > max) {
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "query parameter '%s' must be an integer from %lld to %lld",
                  name, (long long)min, (long long)max);
    return -1;
  }
  *out = n;
  return 0;
}

/* ms of an RFC 3339 UTC time ("2026-12-04", "2026-12-04T10:00:00Z",
 * fractions allowed), or -1. */
static int64_t parse_time(const char *s) {
  int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
  if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
    return -1;
  const char *p = s + n;
  if (*p == 'T' || *p == ' ') {
    if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3)
      return -1;
    p += 1 + n;
    if (*p == '.')
      for (p++; *p >= '0' && *p <= '9'; p++)
        ;
    if (*p == 'Z')
      p++;
  }
  if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
      sec > 60)
    return -1;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = mo - 1,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = sec};
  return (int64_t)timegm(&tm) * 1000;
}

int cr__api_query_time(struct cr__api_req *r, struct cr__api_res *res,
                       const char *name, int64_t def, int64_t *out) {
  const char *v = cr__api_query(r, name);
  *out = def;
  if (v == NULL)
    return 0;
  char *end = NULL;
  long long n = strtoll(v, &end, 10);
  int64_t t = (*v != '\0' && *end == '\0' && n >= 0) ? n : parse_time(v);
  if (t < 0) {
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "query parameter '%s' must be an RFC 3339 time "
                  "(2026-12-04T10:00:00Z) or milliseconds since the epoch",
                  name);
    return -1;
  }
  *out = t;
  return 0;
}

/* The filters a next link carries over (every list's query parameters but
 * the cursor itself). */
static const char *const page_keep[] = {
    "limit", "sort",   "order",    "subject_type", "subject_id", "verb",
    "since", "status", "provider", "health",       NULL};

struct page_url {
  char *buf;
  size_t len, cap;
};

/* Appends "&key=value" to u with value percent-encoded (RFC 3986: all but
 * the unreserved characters), so a value with '&', '#' or spaces cannot
 * break the link. Stops silently when the buffer is full. */
static void page_append(struct page_url *u, const char *key, const char *v) {
  static const char hex[] = "0123456789ABCDEF";
  int w = snprintf(u->buf + u->len, u->cap - u->len, "&%s=", key);
  if (w < 0 || (size_t)w >= u->cap - u->len)
    return;
  u->len += (size_t)w;
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;
    if (u->len + (plain ? 1 : 3) >= u->cap)
      return;
    if (plain) {
      u->buf[u->len++] = (char)*p;
    } else {
      u->buf[u->len++] = '%';
      u->buf[u->len++] = hex[*p >> 4];
      u->buf[u->len++] = hex[*p & 15];
    }
  }
  u->buf[u->len] = '\0';
}

static enum MHD_Result page_arg(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value) {
  (void)kind;
  for (size_t i = 0; value != NULL && page_keep[i] != NULL; i++)
    if (strcmp(key, page_keep[i]) == 0)
      page_append(cls, key, value);
  return MHD_YES;
}

void cr__api_page(struct cr__api_req *r, json_t *body, const char *cursor) {
  if (cursor == NULL) {
    json_object_set_new(body, "next", json_null());
    return;
  }
  /* The next link keeps the request's filters, each occurrence of a
   * repeated one (verb=a&verb=b) too. */
  char url[2048];
  struct page_url u = {url, 0, sizeof url};
  int n = snprintf(url, sizeof url, "%s?after=%s", r->url, cursor);
  u.len = n > 0 && (size_t)n < sizeof url ? (size_t)n : 0;
  url[u.len] = '\0';
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, page_arg, &u);
  json_object_set_new(body, "next", json_string(url));
  json_object_set_new(body, "cursor", json_string(cursor));
}

static int is_json_type(const char *ct) {
  if (ct == NULL)
    return 0;
  size_t n = strcspn(ct, ";");
  while (n > 0 && ct[n - 1] == ' ')
    n--;
  return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
         (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

int cr__api_parse_body(const char *ct, const char *body, size_t n, json_t **out,
                       const char **code, char *msg, size_t msglen) {
  *out = NULL;
  *code = NULL;
  if (!is_json_type(ct)) {
    *code = "unsupported_media_type";
    snprintf(msg, msglen,
             "the body must be JSON (Content-Type: application/json)");
    return 415;
  }
  if (body == NULL || n == 0) {
    *code = "malformed_json";
    snprintf(msg, msglen, "the body is empty");
    return 400;
  }
  /* Size is bounded before (host.api.max_body_bytes); depth, NUL bytes,
   * UTF-8 and duplicate keys here, depth before jansson recurses. */
  struct cr_json_error e;
  json_t *v = NULL;
  int rc = cr_json_parse_limited(body, n, n, BODY_MAX_DEPTH, &v, &e);
  if (rc != 0) {
    *code = !strcmp(e.code, "nul_byte") || !strcmp(e.code, "no_memory")
                ? "malformed_json"
                : e.code;
    snprintf(msg, msglen, "%s", e.message);
    return rc == CR_ENOMEM ? 503 : 400;
  }
  if (!json_is_object(v)) {
    json_decref(v);
    *code = "invalid_type";
    snprintf(msg, msglen, "the body must be a JSON object");
    return 422;
  }
  *out = v;
  return 0;
}

json_t *cr__api_body_object(struct cr__api_req *r, struct cr__api_res *res) {
  const char *ct =
      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
  json_t *v = NULL;
  const char *code = NULL;
  char msg[512];
  int status =
      cr__api_parse_body(ct, r->body, r->body_len, &v, &code, msg, sizeof msg);
  if (status != 0)
    cr__api_error(res, status, code, status == 422 ? "" : NULL, "%s", msg);
  return v;
}

int cr__api_only_keys(struct cr__api_res *res, const json_t *obj,
                      const char *const *allowed) {
  const char *key;
  const json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    size_t i = 0;
    while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
      i++;
    if (allowed[i] == NULL) {
      char ptr[300];
      snprintf(ptr, sizeof ptr, "/%s", key);
      cr__api_error(res, 422, "unknown_field", ptr, "unknown field '%s'", key);
      return -1;
    }
  }
  return 0;
}

void cr__api_ctl(struct cr__api_req *r, struct cr_ctl *c) {
  memset(c, 0, sizeof *c);
  c->store = r->store;
  c->cfg = r->cfg;
  c->plugins = r->plugins;
  c->actor = r->actor ? r->actor : "api";
}

void cr__api_reply(struct cr__api_res *res, int rc, json_t *v,
                   const char *what) {
  if (rc == 0) {
    cr__api_json(res, 200, v);
    return;
  }
  json_decref(v);
  cr__api_error_rc(res, rc, what);
}

void cr__api_reply_page(struct cr__api_req *r, struct cr__api_res *res, int rc,
                        json_t *items, char *next, const char *what) {
  if (rc != 0) {
    json_decref(items);
    cr__free(next);
    cr__api_error_rc(res, rc, what);
    return;
  }
  json_t *body = json_pack("{s:o}", "items", items);
  cr__api_page(r, body, next);
  cr__free(next);
  cr__api_json(res, 200, body);
}
