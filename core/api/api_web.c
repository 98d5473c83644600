/* api_web.c: the web dashboard (web/, embedded at build time) served by the
 * REST server at / and /assets/... without a token (the page signs in with
 * one and calls /v1 with it), and GET /v1/whoami, the scopes of a token.
 * Assets answer with a strict Content-Security-Policy (scripts, styles and
 * connections from this origin only, no inline script, no framing), their
 * Content-Type, an ETag for revalidation (Cache-Control: no-cache, 304 on
 * If-None-Match) and their gzip'd bytes when the client accepts gzip. */
#include "api/api_web.h"

#include <string.h>

#include "api/api_int.h"

#define CSP                                                                    \
  "default-src 'none'; script-src 'self'; style-src 'self'; "                  \
  "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "                \
  "form-action 'none'; frame-ancestors 'none'"

const struct cr__web_asset *cr__web_find(const char *path) {
  for (size_t i = 0; i < cr__web_n_assets; i++)
    if (strcmp(cr__web_assets[i].path, path) == 0)
      return &cr__web_assets[i];
  return NULL;
}

static const char *header(struct cr__api_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* 1 when the Accept-Encoding header v lists gzip, unless with q=0. */
static int accepts_gzip(const char *v) {
  const char *p = v ? strstr(v, "gzip") : NULL;
  if (p == NULL)
    return 0;
  p += 4 + strspn(p + 4, " ");
  if (strncmp(p, ";q=0", 4) != 0)
    return 1;
  p += 4;
  if (*p == '.')
    p += 1 + strspn(p + 1, "0");
  return *p != '\0' && *p != ',' && *p != ' ';
}

/* 1 when the If-None-Match header v names etag (or is "*"). */
static int not_modified(const char *v, const char *etag) {
  return v != NULL && (strcmp(v, "*") == 0 || strstr(v, etag) != NULL);
}

static void add_headers(struct MHD_Response *m, const struct cr__web_asset *a) {
  MHD_add_response_header(m, "Content-Type", a->type);
  MHD_add_response_header(m, "ETag", a->etag);
  MHD_add_response_header(m, "Cache-Control", "no-cache");
  MHD_add_response_header(m, "Vary", "Accept-Encoding");
  MHD_add_response_header(m, "Content-Security-Policy", CSP);
  MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(m, "X-Frame-Options", "DENY");
  MHD_add_response_header(m, "Referrer-Policy", "no-referrer");
}

int cr__api_web_serve(struct cr__api_req *r, struct cr__api_res *res) {
  if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
    return 0;
  if (strcmp(r->url, "/") != 0 && strncmp(r->url, "/assets/", 8) != 0)
    return 0;
  const struct cr__web_asset *a = cr__web_find(r->url);
  if (a == NULL) {
    cr__api_error(res, 404, "not_found", NULL, "no such asset: %s", r->url);
    return 1;
  }
  int fresh = not_modified(header(r, "If-None-Match"), a->etag);
  int gz = !fresh && accepts_gzip(header(r, "Accept-Encoding"));
  const unsigned char *data = fresh ? (const unsigned char *)"" : a->raw;
  size_t n = fresh ? 0 : a->raw_len;
  if (gz) {
    data = a->gz;
    n = a->gz_len;
  }
  struct MHD_Response *m =
      MHD_create_response_from_buffer(n, (void *)data, MHD_RESPMEM_PERSISTENT);
  if (m == NULL) {
    cr__api_error(res, 500, "internal", NULL, "out of memory");
    return 1;
  }
  add_headers(m, a);
  if (gz)
    MHD_add_response_header(m, "Content-Encoding", "gzip");
  res->raw = m;
  res->status = fresh ? 304 : 200;
  return 1;
}

void cr__api_whoami(struct cr__api_req *r, struct cr__api_res *res) {
  static const struct {
    int bit;
    const char *name;
  } names[] = {{CR_SCOPE_READ, "read"},
               {CR_SCOPE_WRITE, "write"},
               {CR_SCOPE_ADMIN, "admin"},
               {CR_SCOPE_RUNNER, "runner"}};
  json_t *scopes = json_array();
  for (size_t i = 0; scopes != NULL && i < sizeof names / sizeof names[0]; i++)
    if (r->scopes & names[i].bit)
      json_array_append_new(scopes, json_string(names[i].name));
  cr__api_json(res, 200,
               scopes ? json_pack("{s:s, s:o}", "name",
                                  r->actor ? r->actor : "", "scopes", scopes)
                      : NULL);
}
