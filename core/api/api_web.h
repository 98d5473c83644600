/* api_web.h: the web dashboard's side of the REST server (api_web.c): the
 * assets embedded from web/ at build time (generated/web_assets.c, written
 * by tools/embed_web.cmake), their serving, and GET /v1/whoami. */
#ifndef CR_API_WEB_H
#define CR_API_WEB_H

#include <stddef.h>

struct cr__api_req;
struct cr__api_res;

/* One embedded file: its URL path ("/", "/assets/app.js"), Content-Type,
 * quoted ETag, bytes and gzip'd bytes (static, never freed). */
struct cr__web_asset {
  const char *path;
  const char *type;
  const char *etag;
  const unsigned char *raw;
  size_t raw_len;
  const unsigned char *gz;
  size_t gz_len;
};

/* generated/web_assets.c: the table and its size. */
extern const struct cr__web_asset cr__web_assets[];
extern const size_t cr__web_n_assets;

/* The embedded asset at path (exact match), or NULL. */
const struct cr__web_asset *cr__web_find(const char *path);

/* Serves r when it asks for the dashboard (GET or HEAD of "/" or of a path
 * under "/assets/"), without a token: the asset (gzip'd when the client
 * accepts it) with its type, ETag, Cache-Control: no-cache and a strict
 * Content-Security-Policy; 304 when If-None-Match names its ETag; 404 for
 * an unknown asset. Returns 1 when res holds the answer, 0 when r is not a
 * dashboard request (the REST routes take it). */
int cr__api_web_serve(struct cr__api_req *r, struct cr__api_res *res);

/* GET /v1/whoami: the calling token's name and scopes, so that a client
 * (the dashboard) offers only what the token may do. */
void cr__api_whoami(struct cr__api_req *r, struct cr__api_res *res);

#endif
