/* api.c: the REST API server (see api.h): libmicrohttpd set-up (thread
 * pool, epoll, limits, TLS), the store connection pool, the life of one
 * request (body collection with its limit, routing, the rate limit, bearer
 * authentication with scopes, the handler, the response) and the request
 * metrics. */
#include "api/api_int.h"
#include "api/api_web.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

void cr__api_logf(cr_api *a, int level, const char *fmt, ...) {
  if (a->o.log == NULL || level < a->o.log_min_level)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  a->o.log(a->o.log_ud, level, line);
}

int64_t cr__api_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- Store pool ---------------------------------------------------------- */

static int pool_open(cr_api *a, size_t n, char *errbuf, size_t errlen) {
  struct cr__store_pool *p = &a->pool;
  if (uv_mutex_init(&p->mu) != 0)
    return CR_ENOMEM;
  if (uv_cond_init(&p->cv) != 0) {
    uv_mutex_destroy(&p->mu);
    return CR_ENOMEM;
  }
  p->all = cr__calloc(n, sizeof *p->all);
  p->free = cr__calloc(n, sizeof *p->free);
  if (p->all == NULL || p->free == NULL)
    return CR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int rc = cr_store_open(a->data_dir, &p->all[i], errbuf, errlen);
    if (rc != 0)
      return rc;
    p->free[p->n_free++] = p->all[i];
    p->n_all++;
  }
  return 0;
}

static void pool_close(cr_api *a) {
  struct cr__store_pool *p = &a->pool;
  if (p->all == NULL && p->free == NULL)
    return;
  for (size_t i = 0; i < p->n_all; i++)
    cr_store_close(p->all[i]);
  cr__free(p->all);
  cr__free(p->free);
  uv_cond_destroy(&p->cv);
  uv_mutex_destroy(&p->mu);
}

const cr_plugin_host *cr__api_plugins_acquire(cr_api *a,
                                              cr_plugin_host **held) {
  *held = a->o.hooks.plugins_acquire ? a->o.hooks.plugins_acquire(a->o.hooks.ud)
                                     : NULL;
  return *held != NULL ? *held : a->o.plugins;
}

/* A connection of the pool, with the read snapshot a GET kept on it (see
 * dispatch) when `kept`, else with none. */
static cr_store *store_get(cr_api *a, int kept) {
  struct cr__store_pool *p = &a->pool;
  uv_mutex_lock(&p->mu);
  while (p->n_free == 0)
    uv_cond_wait(&p->cv, &p->mu);
  cr_store *s = p->free[--p->n_free];
  uv_mutex_unlock(&p->mu);
  if (!kept)
    cr_store_read_end(s);
  return s;
}

cr_store *cr__api_store_get(cr_api *a) { return store_get(a, 0); }

void cr__api_store_put(cr_api *a, cr_store *s) {
  struct cr__store_pool *p = &a->pool;
  uv_mutex_lock(&p->mu);
  p->free[p->n_free++] = s;
  uv_cond_signal(&p->cv);
  uv_mutex_unlock(&p->mu);
}

void cr__api_store_sweep(cr_api *a) {
  struct cr__store_pool *p = &a->pool;
  uv_mutex_lock(&p->mu);
  for (size_t i = 0; i < p->n_free; i++)
    cr_store_read_end(p->free[i]);
  uv_mutex_unlock(&p->mu);
}

/* ---- Authentication ------------------------------------------------------ */

/* SHA-256, fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up
 * under a read-write lock at every digest, which every API thread then
 * takes for every request. */
static EVP_MD *g_sha256;
static void fetch_sha256(void) {
  g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static void sha256(const char *s, size_t n, unsigned char out[32]) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, fetch_sha256);
  unsigned int len = 32;
  const EVP_MD *md = g_sha256 != NULL ? g_sha256 : EVP_sha256();
  if (EVP_Digest(s, n, out, &len, md, NULL) != 1)
    memset(out, 0, 32);
}

/* The token presented in "Authorization: Bearer X" among cfg's tokens: every
 * configured token is compared (constant time over digests, no early exit),
 * so the time taken says nothing about which one matched. */
static const struct cr_config_api_token *find_token(const cr_config *cfg,
                                                    const char *header) {
  if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
    return NULL;
  const char *tok = header + 7;
  while (*tok == ' ')
    tok++;
  if (*tok == '\0')
    return NULL;
  unsigned char given[32], want[32];
  sha256(tok, strlen(tok), given);
  const struct cr_config_api_token *found = NULL;
  for (size_t i = 0; i < cfg->host.n_api_tokens; i++) {
    const struct cr_config_api_token *t = &cfg->host.api_tokens[i];
    if (t->token == NULL)
      continue;
    sha256(t->token, strlen(t->token), want);
    if (CRYPTO_memcmp(given, want, 32) == 0)
      found = t;
  }
  OPENSSL_cleanse(given, sizeof given);
  return found;
}

static const char *scope_name(int scope) {
  switch (scope) {
  case CR_SCOPE_WRITE:
    return "write";
  case CR_SCOPE_ADMIN:
    return "admin";
  case CR_SCOPE_RUNNER:
    return "runner";
  default:
    return "read";
  }
}

/* 0 when the request with header h (its token t, NULL when not valid) may
 * go on; otherwise res holds the 401 / 403. */
static int authenticate(struct cr__api_req *r, int scope, const char *h,
                        const struct cr_config_api_token *t,
                        struct cr__api_res *res) {
  if (t == NULL) {
    cr__api_error(res, 401, "unauthorized", NULL,
                  h == NULL ? "this call needs an API token "
                              "(Authorization: Bearer TOKEN)"
                            : "the API token is not valid");
    return -1;
  }
  r->actor = t->name;
  r->scopes = t->scopes;
  if ((t->scopes & scope) == 0) {
    cr__api_error(res, 403, "forbidden", NULL,
                  "token '%s' lacks the '%s' scope this call needs", t->name,
                  scope_name(scope));
    return -1;
  }
  return 0;
}

/* ---- Responses ----------------------------------------------------------- */

/* body as compact JSON (malloc'd, *n bytes and a NUL). Most bodies fit the
 * stack buffer and cost one allocation of their size: json_dumps grows a
 * buffer by doubling, and the 1 KiB step sends glibc's malloc through its
 * large-chunk path (malloc_consolidate) on every request. */
static char *dump_body(const json_t *body, size_t *n) {
  const size_t flags = JSON_COMPACT | JSON_ENSURE_ASCII;
  char buf[8192];
  size_t need = json_dumpb(body, buf, sizeof buf, flags);
  if (need == 0 || need > sizeof buf) {
    char *text = json_dumps(body, flags);
    *n = text ? strlen(text) : 0;
    return text;
  }
  char *text = malloc(need + 1);
  if (text != NULL) {
    memcpy(text, buf, need);
    text[need] = '\0';
  }
  *n = need;
  return text;
}

static struct MHD_Response *make_response(struct cr__api_res *res) {
  if (res->raw != NULL)
    return res->raw;
  struct MHD_Response *m;
  if (res->body != NULL) {
    size_t n = 0;
    char *text = dump_body(res->body, &n);
    if (text == NULL)
      return NULL;
    m = MHD_create_response_from_buffer_with_free_callback(n, text, free);
    if (m == NULL)
      free(text);
  } else if (res->text != NULL) {
    m = MHD_create_response_from_buffer_with_free_callback(res->text_len,
                                                           res->text, cr__free);
    if (m != NULL)
      res->text = NULL;
  } else {
    m = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if (m == NULL)
    return NULL;
  if (res->body != NULL || res->content_type != NULL)
    MHD_add_response_header(m, "Content-Type",
                            res->content_type ? res->content_type
                                              : "application/json");
  MHD_add_response_header(m, "Cache-Control", "no-store");
  MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
  if (res->etag[0])
    MHD_add_response_header(m, "ETag", res->etag);
  if (res->location[0])
    MHD_add_response_header(m, "Location", res->location);
  if (res->allow[0])
    MHD_add_response_header(m, "Allow", res->allow);
  if (res->status == 401)
    MHD_add_response_header(m, "WWW-Authenticate", "Bearer realm=\"connrun\"");
  if (res->retry_after > 0) {
    char ra[16];
    snprintf(ra, sizeof ra, "%d", res->retry_after);
    MHD_add_response_header(m, "Retry-After", ra);
  }
  return m;
}

static void res_clear(struct cr__api_res *res) {
  json_decref(res->body);
  cr__free(res->text);
}

int cr__api_thread_start(uv_mutex_t *mu, uv_cond_t *cv, uv_thread_t *t,
                         void (*fn)(void *), void *arg) {
  if (uv_mutex_init(mu) != 0)
    return CR_ENOMEM;
  if (uv_cond_init(cv) != 0) {
    uv_mutex_destroy(mu);
    return CR_ENOMEM;
  }
  if (uv_thread_create(t, fn, arg) != 0) {
    uv_cond_destroy(cv);
    uv_mutex_destroy(mu);
    return CR_ENOMEM;
  }
  return 0;
}

/* ---- One request --------------------------------------------------------- */

static void dispatch(struct cr__api_req *r, struct cr__api_res *res) {
  char allow[64] = "";
  const char *path = r->url;
  if (cr__api_web_serve(r, res)) /* the dashboard's assets: no token */
    return;
  r->route = cr__api_match(r, path, allow, sizeof allow);
  if (r->route < 0) {
    if (allow[0]) {
      snprintf(res->allow, sizeof res->allow, "%s", allow);
      cr__api_error(res, 405, "method_not_allowed", NULL,
                    "%s is not allowed on %s (allowed: %s)", r->method, path,
                    allow);
    } else {
      cr__api_error(res, 404, "not_found", NULL, "no such route: %s", path);
    }
    return;
  }
  if (r->too_large) {
    cr__api_error(res, 413, "body_too_large", NULL,
                  "the request body is larger than %lld bytes "
                  "(host.api.max_body_bytes)",
                  (long long)r->api->max_body);
    return;
  }
  const struct cr__api_route *rt = &cr__api_routes[r->route];
  cr_api *a = r->api;
  r->cfg = a->o.hooks.config_acquire(a->o.hooks.ud, &r->cfg_handle);
  r->plugins = cr__api_plugins_acquire(a, &r->plugins_held);
  const char *h =
      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
  const struct cr_config_api_token *t = h ? find_token(r->cfg, h) : NULL;
  if (cr__api_rate_limited(r, t ? t->name : NULL, res) ||
      (rt->scope != 0 && authenticate(r, rt->scope, h, t, res) != 0))
    return;
  if (r->txn_store != NULL) { /* a batch's transaction (api_batch.c) */
    r->store = r->txn_store;
    rt->fn(r, res);
    r->store = NULL;
    return;
  }
  /* A GET reads one snapshot, in one read transaction; while GETs follow
   * each other and nothing in this process commits, they share it for up
   * to CR_API_SNAPSHOT_MS (their locks are a fifth of a GET's cost). Writes
   * of other processes show at most that late. */
  int get = strcmp(rt->method, "GET") == 0;
  r->store = store_get(a, get);
  int snapshot = get && cr_store_read_begin(r->store) == 0;
  rt->fn(r, res);
  if (snapshot)
    cr_store_read_keep(r->store, CR_API_SNAPSHOT_MS);
  cr__api_store_put(a, r->store);
  r->store = NULL;
}

void cr__api_run_handler(struct cr__api_req *r, struct cr__api_res *res) {
  dispatch(r, res);
  if (r->cfg_handle != NULL) {
    r->api->o.hooks.config_release(r->api->o.hooks.ud, r->cfg_handle);
    r->cfg_handle = NULL;
    r->cfg = NULL;
  }
  cr_plugin_host_free(r->plugins_held);
  r->plugins_held = NULL;
}

void cr__api_prepare_response(struct cr__api_req *r, struct cr__api_res *res) {
  r->prepared = make_response(res);
  r->prepared_status = res->status;
  cr__api_stats_add(r->api->stats, r->route, res->status,
                    cr__api_mono_ns() - r->started_ns);
  res->raw = NULL;
  res_clear(res);
}

/* Runs the request and builds its response (NULL on ENOMEM). */
static struct MHD_Response *prepare(struct cr__api_req *r, int *status) {
  struct cr__api_res res = {.status = 200};
  cr__api_run_handler(r, &res);
  cr__api_prepare_response(r, &res);
  struct MHD_Response *m = r->prepared;
  r->prepared = NULL;
  *status = r->prepared_status;
  return m;
}

static enum MHD_Result queue(struct cr__api_req *r, struct MHD_Response *m,
                             int status) {
  r->answered = 1;
  if (m == NULL)
    return MHD_NO;
  enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, m);
  MHD_destroy_response(m);
  return ok;
}

static void *slow_thread(void *arg) {
  struct cr__api_req *r = arg;
  cr_api *a = r->api;
  r->prepared = prepare(r, &r->prepared_status);
  r->slow_started = 2;
  MHD_resume_connection(r->conn);
  atomic_fetch_sub(&a->slow_running, 1);
  return NULL;
}

/* A slow route: the connection is suspended while a thread of its own
 * runs the handler, so no server thread waits on a provider. A batched
 * route: suspended until its batch commits. 1 when it was started. */
static int start_slow(struct cr__api_req *r) {
  char allow[64];
  int route = cr__api_match(r, r->url, allow, sizeof allow);
  if (route < 0 || r->too_large || cr__api_routes[route].mode == CR_API_INLINE)
    return 0;
  if (cr__api_routes[route].mode == CR_API_BATCH)
    return cr__api_batch_request(r);
  pthread_t t;
  pthread_attr_t at;
  atomic_fetch_add(&r->api->slow_running, 1);
  r->slow_started = 1;
  MHD_suspend_connection(r->conn);
  int ok = pthread_attr_init(&at) == 0 &&
           pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 &&
           pthread_create(&t, &at, slow_thread, r) == 0;
  pthread_attr_destroy(&at);
  if (!ok) {
    r->slow_started = 0;
    atomic_fetch_sub(&r->api->slow_running, 1);
    MHD_resume_connection(r->conn);
    return 0;
  }
  return 1;
}

static enum MHD_Result answer(struct cr__api_req *r) {
  if (r->slow_started == 2) {
    struct MHD_Response *m = r->prepared;
    r->prepared = NULL;
    return queue(r, m, r->prepared_status);
  }
  if (r->slow_started == 1 || start_slow(r))
    return MHD_YES;
  int status = 500;
  struct MHD_Response *m = prepare(r, &status);
  return queue(r, m, status);
}

static int append_body(struct cr__api_req *r, const char *data, size_t n) {
  if (r->too_large || r->body_len + n > (size_t)r->api->max_body) {
    r->too_large = 1;
    return 0;
  }
  char *grown = cr__realloc(r->body, r->body_len + n + 1);
  if (grown == NULL)
    return CR_ENOMEM;
  memcpy(grown + r->body_len, data, n);
  r->body = grown;
  r->body_len += n;
  r->body[r->body_len] = '\0';
  return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  cr_api *a = cls;
  struct cr__api_req *r = *con_cls;
  if (r == NULL) {
    if ((r = cr__calloc(1, sizeof *r)) == NULL)
      return MHD_NO;
    r->api = a;
    r->conn = c;
    r->url = url;
    r->method = method;
    r->route = -1;
    r->started_ns = cr__api_mono_ns();
    *con_cls = r;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl != NULL && strtoll(cl, NULL, 10) > a->max_body) {
      r->too_large = 1;
      return answer(r); /* at once: the body is not read */
    }
    return MHD_YES;
  }
  if (*upload_size > 0) {
    int rc = r->answered ? 0 : append_body(r, upload, *upload_size);
    *upload_size = 0;
    return rc == 0 ? MHD_YES : MHD_NO;
  }
  if (r->answered)
    return MHD_YES;
  return answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  struct cr__api_req *r = *con_cls;
  if (r == NULL)
    return;
  if (r->cfg_handle != NULL)
    r->api->o.hooks.config_release(r->api->o.hooks.ud, r->cfg_handle);
  cr_plugin_host_free(r->plugins_held);
  if (r->prepared != NULL)
    MHD_destroy_response(r->prepared);
  cr__free(r->batch_res);
  cr__free(r->body);
  cr__free(r);
  *con_cls = NULL;
}

/* ---- Start and stop ------------------------------------------------------ */

static int is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return 0;
}

static int resolve_listen(const char *listen, struct sockaddr_storage *ss,
                          char *errbuf, size_t errlen) {
  char host[256];
  const char *colon = strrchr(listen, ':');
  if (colon == NULL || (size_t)(colon - listen) >= sizeof host) {
    snprintf(errbuf, errlen, "invalid listen address '%s'", listen);
    return CR_EINVAL;
  }
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  if (host[0] == '[' && host[strlen(host) - 1] == ']') {
    memmove(host, host + 1, strlen(host));
    host[strlen(host) - 1] = '\0';
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE},
                  *res = NULL;
  int rc = getaddrinfo(host, colon + 1, &hints, &res);
  if (rc != 0 || res == NULL) {
    snprintf(errbuf, errlen, "cannot resolve listen address '%s': %s", listen,
             gai_strerror(rc));
    return CR_EINVAL;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

static char *read_pem(const char *path, char *errbuf, size_t errlen) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t n = 0;
  if (f != NULL && (buf = cr__malloc(1 << 20)) != NULL) {
    n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
  }
  if (f != NULL)
    fclose(f);
  if (buf == NULL || n == 0) {
    snprintf(errbuf, errlen, "cannot read TLS file %s", path);
    cr__free(buf);
    return NULL;
  }
  return buf;
}

static void wipe_free(char *s) {
  if (s != NULL) {
    OPENSSL_cleanse(s, strlen(s));
    cr__free(s);
  }
}

static int start_mhd(cr_api *a, const struct cr_config_api *c,
                     const struct sockaddr_storage *ss, char *errbuf,
                     size_t errlen) {
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                   MHD_ALLOW_SUSPEND_RESUME;
  if (ss->ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (a->tls_cert != NULL)
    flags |= MHD_USE_TLS;
  struct MHD_OptionItem opts[] = {
      {MHD_OPTION_SOCK_ADDR, 0, (void *)ss},
      {MHD_OPTION_CONNECTION_LIMIT, c->max_connections, NULL},
      {MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_per_ip, NULL},
      {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)(c->timeout_ms / 1000), NULL},
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL},
      {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
      {c->threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
       c->threads, NULL},
      {MHD_OPTION_END, 0, NULL},
      {MHD_OPTION_END, 0, NULL},
      {MHD_OPTION_END, 0, NULL},
  };
  if (a->tls_cert != NULL) {
    size_t i = c->threads > 1 ? 7 : 6;
    opts[i] =
        (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert};
    opts[i + 1] =
        (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key};
  }
  a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, a,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (a->mhd == NULL) {
    snprintf(errbuf, errlen, "cannot listen on %s (address in use?)",
             a->o.listen);
    return CR_EIO;
  }
  const union MHD_DaemonInfo *info =
      MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
  a->port = info ? info->port : 0;
  return 0;
}

static int check_tls(cr_api *a, const struct cr_config_api *c,
                     const struct sockaddr_storage *ss, char *errbuf,
                     size_t errlen) {
  if (c->tls_cert != NULL) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      snprintf(errbuf, errlen, "host.tls: this libmicrohttpd has no TLS");
      return CR_ENOTSUP;
    }
    if ((a->tls_cert = read_pem(c->tls_cert, errbuf, errlen)) == NULL ||
        (a->tls_key = read_pem(c->tls_key, errbuf, errlen)) == NULL)
      return CR_EIO;
    return 0;
  }
  if (!is_loopback((const struct sockaddr *)ss) && !c->allow_insecure_http) {
    snprintf(errbuf, errlen,
             "refusing to serve the API over plain HTTP on %s, a non-loopback "
             "address: set host.tls {cert, key}, or host.allow_insecure_http: "
             "true if a proxy in front provides TLS",
             a->o.listen);
    return CR_EINVAL;
  }
  return 0;
}

int cr_api_start(const struct cr_api_options *o, const cr_config *cfg,
                 cr_api **out, char *errbuf, size_t errlen) {
  char dummy[8];
  if (errbuf == NULL) {
    errbuf = dummy;
    errlen = sizeof dummy;
  }
  errbuf[0] = '\0';
  if (o == NULL || cfg == NULL || out == NULL || o->listen == NULL ||
      o->data_dir == NULL || o->hooks.config_acquire == NULL)
    return CR_EINVAL;
  const struct cr_config_api *c = &cfg->host.api;
  struct sockaddr_storage ss;
  int rc = resolve_listen(o->listen, &ss, errbuf, errlen);
  if (rc != 0)
    return rc;
  cr_api *a = cr__calloc(1, sizeof *a);
  if (a == NULL)
    return CR_ENOMEM;
  a->o = *o;
  a->max_body = c->max_body_bytes;
  a->data_dir = cr__strdup(o->data_dir);
  a->runner_id = cr__strdup(o->runner_id ? o->runner_id : "local");
  rc = a->data_dir && a->runner_id ? 0 : CR_ENOMEM;
  if (rc == 0)
    rc = check_tls(a, c, &ss, errbuf, errlen);
  if (rc == 0)
    rc = cr__api_stats_new(&a->stats);
  if (rc == 0)
    rc = cr__api_limit_new(&a->limit);
  if (rc == 0)
    rc = pool_open(a, (size_t)c->threads + 2, errbuf, errlen);
  if (rc == 0)
    rc = cr__api_batch_start(a);
  if (rc == 0)
    rc = cr__api_sse_start(a);
  if (rc == 0)
    rc = cr__api_claims_start(a);
  if (rc == 0)
    rc = start_mhd(a, c, &ss, errbuf, errlen);
  if (rc != 0) {
    cr_api_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

int cr_api_port(const cr_api *a) { return a ? a->port : 0; }

void cr_api_free(cr_api *a) {
  if (a == NULL)
    return;
  /* Slow handlers are told to give up (a health check stops at its next
   * request boundary) and waited for: they resume their connections. */
  atomic_store(&a->cancel, 1);
  for (int i = 0; i < 60000 && atomic_load(&a->slow_running) > 0; i++)
    usleep(1000);
  cr__api_batch_stop(a);
  cr__api_sse_stop(a);
  cr__api_claims_stop(a);
  if (a->mhd != NULL)
    MHD_stop_daemon(a->mhd);
  cr__api_sse_end(a);
  cr__api_claims_end(a);
  cr__api_batch_end(a);
  pool_close(a);
  cr__api_stats_free(a->stats);
  cr__api_limit_free(a->limit);
  wipe_free(a->tls_cert);
  wipe_free(a->tls_key);
  cr__free(a->data_dir);
  cr__free(a->runner_id);
  cr__free(a);
}
