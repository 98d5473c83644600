/* host_api.c: the default host services table (struct cr_host_api) and the
 * cr_plugin_ctx it works on: logging with redaction, record/checkpoint/state
 * sinks, cancellation, error capture and HTTP through libcurl (see
 * host_api.h for the rules and defaults). */
#include "plugin/host_api.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifndef CR_VERSION
#define CR_VERSION "0"
#endif

#define MAX_HEADER_BLOCK ((size_t)1024 * 1024)
#define MAX_REQUEST_HEADERS 256
#define MAX_REDIRECTS 5L
/* Size of the ABI 1.0 request: everything up to and including timeout_ms. */
#define REQ_V1_0_SIZE                                                          \
  (offsetof(struct cr_http_request, timeout_ms) + sizeof(long))

/* ---- libcurl global init ----------------------------------------------------
 */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

/* One connection (and DNS) cache for every plugin context of the process:
 * a context lives for one check or one sync, and 10,000 health checks
 * against one provider would otherwise open 10,000 connections. Requests
 * carry their credentials in their own headers; a kept-alive connection
 * holds none. */
static CURLSH *g_share;
static pthread_mutex_t g_share_mu[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u) {
  (void)h, (void)a, (void)u;
  pthread_mutex_lock(&g_share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u) {
  (void)h, (void)u;
  pthread_mutex_unlock(&g_share_mu[d]);
}

static void curl_init_once(void) {
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (curl_init_result != CURLE_OK)
    return;
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&g_share_mu[i], NULL);
  g_share = curl_share_init();
  if (g_share != NULL &&
      (curl_share_setopt(g_share, CURLSHOPT_LOCKFUNC, share_lock) != 0 ||
       curl_share_setopt(g_share, CURLSHOPT_UNLOCKFUNC, share_unlock) != 0 ||
       curl_share_setopt(g_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) !=
           0 ||
       curl_share_setopt(g_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != 0)) {
    curl_share_cleanup(g_share);
    g_share = NULL; /* each context keeps its own connections */
  }
}

int cr_host_http_global_init(void) {
  pthread_once(&curl_once, curl_init_once);
  return curl_init_result == CURLE_OK ? 0 : CR_EHTTP;
}

/* ---- Context ------------------------------------------------------------- */

int cr_plugin_ctx_init(cr_plugin_ctx *ctx, const char *authorization_id,
                       const cr_redactor *redactor) {
  if (ctx == NULL)
    return CR_EINVAL;
  memset(ctx, 0, sizeof *ctx);
  ctx->authorization_id = authorization_id;
  ctx->redactor = redactor;
  ctx->log_min_level = CR_PLUGIN_LOG_DEBUG;
  atomic_init(&ctx->cancel, 0);
  ctx->http.timeout_ms = CR_HOST_HTTP_TIMEOUT_MS;
  ctx->http.connect_timeout_ms = CR_HOST_HTTP_CONNECT_TIMEOUT_MS;
  ctx->http.max_body = CR_HOST_HTTP_MAX_BODY;
  return 0;
}

void cr_plugin_ctx_cleanup(cr_plugin_ctx *ctx) {
  if (ctx == NULL)
    return;
  if (ctx->curl != NULL)
    curl_easy_cleanup(ctx->curl);
  ctx->curl = NULL;
}

void cr_plugin_ctx_set_log(cr_plugin_ctx *ctx, cr_plugin_log_sink fn,
                           void *ud) {
  if (ctx == NULL)
    return;
  ctx->log = fn;
  ctx->log_ud = ud;
}

void cr_plugin_ctx_set_sinks(cr_plugin_ctx *ctx,
                             const struct cr_plugin_sinks *s) {
  if (ctx == NULL)
    return;
  if (s != NULL)
    ctx->sinks = *s;
  else
    memset(&ctx->sinks, 0, sizeof ctx->sinks);
}

void cr_plugin_ctx_cancel(cr_plugin_ctx *ctx) {
  if (ctx != NULL)
    atomic_store(&ctx->cancel, 1);
}

/* ---- Logging
 * ----------------------------------------------------------------- */

static int clamp_level(int level) {
  if (level < CR_PLUGIN_LOG_DEBUG)
    return CR_PLUGIN_LOG_DEBUG;
  return level > CR_PLUGIN_LOG_ERROR ? CR_PLUGIN_LOG_ERROR : level;
}

static int wants_log(const cr_plugin_ctx *ctx, int level) {
  return ctx != NULL && ctx->log != NULL && level >= ctx->log_min_level;
}

/* Hands an already redacted line to the sink, control characters (which
 * could forge extra log lines) replaced by spaces. msg is modified. */
static void sink_line(cr_plugin_ctx *ctx, int level, char *msg) {
  for (char *p = msg; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 && *p != '\t')
      *p = ' ';
  ctx->log(ctx->log_ud, level, msg);
}

static void host_log(cr_plugin_ctx *ctx, int level, const char *msg) {
  level = clamp_level(level);
  if (!wants_log(ctx, level) || msg == NULL)
    return;
  char *red = NULL;
  if (cr_redact(ctx->redactor, msg, &red) != 0) {
    char notice[] = "(log message dropped: out of memory while redacting)";
    sink_line(ctx, level, notice);
    return;
  }
  sink_line(ctx, level, red);
  cr__free(red);
}

/* Logs a line built only from redacted parts (truncation is harmless). */
static void log_redacted(cr_plugin_ctx *ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void log_redacted(cr_plugin_ctx *ctx, int level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  sink_line(ctx, level, line);
}

/* ---- Errors, records, state -------------------------------------------------
 */

static void host_set_error(cr_plugin_ctx *ctx, int result, const char *message,
                           int64_t retry_after_ms) {
  if (ctx == NULL)
    return;
  struct cr_plugin_last_error *e = &ctx->last_error;
  e->result = result;
  e->retry_after_ms = retry_after_ms > 0 ? retry_after_ms : 0;
  cr_redact_into(ctx->redactor, message != NULL ? message : "", 0, e->message,
                 sizeof e->message);
  if (result == CR_PLUGIN_OK) {
    e->message[0] = '\0';
    e->retry_after_ms = 0;
  }
}

/* Records a host-side refusal as the ctx's error and returns result. */
static int refuse(cr_plugin_ctx *ctx, int result, const char *message) {
  host_set_error(ctx, result, message, 0);
  return result;
}

static int host_cancelled(cr_plugin_ctx *ctx) {
  if (ctx == NULL)
    return 0;
  if (ctx->cancel_also != NULL && atomic_load(ctx->cancel_also) != 0)
    return 1;
  return atomic_load(&ctx->cancel) != 0;
}

static int host_emit(cr_plugin_ctx *ctx, const char *stream, const char *json,
                     size_t len) {
  if (ctx == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (host_cancelled(ctx))
    return CR_PLUGIN_ERR_CANCELLED;
  if (stream == NULL || json == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "emit: stream and record must not be NULL");
  if (ctx->sinks.emit == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "this context does not take records");
  return ctx->sinks.emit(ctx->sinks.ud, stream, json, len);
}

static int host_checkpoint(cr_plugin_ctx *ctx, const char *state_json) {
  if (ctx == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (state_json == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "checkpoint: state must not be NULL");
  if (ctx->sinks.checkpoint == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "this context does not take checkpoints");
  return ctx->sinks.checkpoint(ctx->sinks.ud, state_json);
}

static const char *host_state(cr_plugin_ctx *ctx) {
  if (ctx == NULL || ctx->sinks.state == NULL)
    return NULL;
  return ctx->sinks.state(ctx->sinks.ud);
}

static void host_progress(cr_plugin_ctx *ctx, const char *stream, uint64_t done,
                          uint64_t total) {
  if (ctx != NULL && stream != NULL && ctx->sinks.progress != NULL)
    ctx->sinks.progress(ctx->sinks.ud, stream, done, total);
}

static int host_credentials_update(cr_plugin_ctx *ctx,
                                   const char *credentials_json) {
  if (ctx == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (credentials_json == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "credentials_update: credentials must not be NULL");
  if (ctx->sinks.credentials_update == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "this context cannot store credentials");
  return ctx->sinks.credentials_update(ctx->sinks.ud, credentials_json);
}

/* Copies in (NULL: "") redacted into out, control characters as spaces. */
static void clean_into(const cr_plugin_ctx *ctx, const char *in, char *out,
                       size_t len) {
  cr_redact_into(ctx->redactor, in != NULL ? in : "", 0, out, len);
  for (char *p = out; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20)
      *p = ' ';
}

static int host_record_failed(cr_plugin_ctx *ctx, size_t index, const char *key,
                              const char *message) {
  if (ctx == NULL || ctx->sinks.record_failed == NULL)
    return CR_PLUGIN_ERR_SYSTEM; /* not in write(): nothing to report to */
  char k[128], m[512];
  clean_into(ctx, key, k, sizeof k);
  clean_into(ctx, message, m, sizeof m);
  return ctx->sinks.record_failed(ctx->sinks.ud, index, k, m);
}

/* ---- HTTP -------------------------------------------------------------------
 */

struct growbuf {
  char *data;
  size_t len, cap;
};

/* One transfer's state, shared with the libcurl callbacks. */
struct xfer {
  cr_plugin_ctx *ctx;
  CURL *curl;
  struct growbuf body, head;
  size_t max_body;
  int too_big, nomem;
};

/* libcurl's receive buffer for a transfer: 4 times its default, and below
 * glibc's mmap threshold (128 KiB): a buffer at that size was mmap()ed and
 * unmapped for every request, which made 10,000 health checks 2 times
 * slower (bench_api). */
#define HTTP_BUFFER (64L * 1024L)

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int grow_append(struct growbuf *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 1024;
    while (ncap < b->len + n + 1)
      ncap *= 2;
    char *d = cr__realloc(b->data, ncap);
    if (d == NULL)
      return CR_ENOMEM;
    b->data = d;
    b->cap = ncap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  struct xfer *x = ud;
  size_t n = size * nmemb;
  if (n > x->max_body - x->body.len) {
    x->too_big = 1;
    return 0;
  }
  curl_off_t cl = -1;
  if (x->body.cap == 0 && x->curl != NULL &&
      curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
          CURLE_OK &&
      cl > (curl_off_t)n && (uint64_t)cl < (uint64_t)x->max_body) {
    /* The announced length (the bytes on the wire: a compressed body may
     * still grow) at once, not doubling through a large page. */
    char *d = cr__malloc((size_t)cl + 1);
    if (d != NULL) {
      x->body.data = d;
      x->body.cap = (size_t)cl + 1;
    }
  }
  if (grow_append(&x->body, p, n) != 0) {
    x->nomem = 1;
    return 0;
  }
  return n;
}

/* Keeps the header block of the last response only (a 100 Continue or a
 * followed redirect starts a new block with its status line). */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  struct xfer *x = ud;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    x->head.len = 0;
    if (x->head.data != NULL)
      x->head.data[0] = '\0';
  }
  if (n > MAX_HEADER_BLOCK - x->head.len) {
    x->too_big = 1;
    return 0;
  }
  if (grow_append(&x->head, p, n) != 0) {
    x->nomem = 1;
    return 0;
  }
  return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow) {
  struct xfer *x = ud;
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  return host_cancelled(x->ctx) ? 1 : 0;
}

static void resp_error(cr_plugin_ctx *ctx, struct cr_http_response *resp,
                       const char *msg, unsigned flags) {
  cr_redact_into(ctx->redactor, msg, flags, resp->error, sizeof resp->error);
}

/* Zeroes the ABI 1.0 fields the host fills (struct_size left alone). */
static void resp_reset(struct cr_http_response *resp) {
  resp->status = 0;
  resp->body = NULL;
  resp->body_len = 0;
  resp->headers = NULL;
  memset(resp->error, 0, sizeof resp->error);
}

static int valid_method(const char *m) {
  size_t n = strlen(m);
  if (n == 0 || n > 16)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((m[i] >= 'A' && m[i] <= 'Z') || (m[i] >= 'a' && m[i] <= 'z')))
      return 0;
  return 1;
}

/* Builds the libcurl header list. Returns a cr_plugin_result; the message
 * goes to resp->error. */
static int build_headers(cr_plugin_ctx *ctx, const char *const *h,
                         struct curl_slist **out,
                         struct cr_http_response *resp) {
  struct curl_slist *l = NULL, *n;
  for (size_t i = 0; h != NULL && h[i] != NULL; i++) {
    if (i == MAX_REQUEST_HEADERS || strpbrk(h[i], "\r\n") != NULL ||
        strchr(h[i], ':') == NULL || h[i][0] == ':') {
      curl_slist_free_all(l);
      char msg[96];
      snprintf(msg, sizeof msg,
               "request header %zu is not one \"Name: value\" line (or "
               "too many headers)",
               i);
      resp_error(ctx, resp, msg, 0);
      return CR_PLUGIN_ERR_SYSTEM;
    }
    if ((n = curl_slist_append(l, h[i])) == NULL)
      goto nomem;
    l = n;
  }
  if ((n = curl_slist_append(l, "Expect:")) == NULL)
    goto nomem;
  *out = n;
  return CR_PLUGIN_OK;
nomem:
  curl_slist_free_all(l);
  resp_error(ctx, resp, "out of memory", 0);
  return CR_PLUGIN_ERR_SYSTEM;
}

static void set_method(CURL *c, const struct cr_http_request *rq) {
  const char *m = rq->method != NULL ? rq->method : "GET";
  int bodyless = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
                 strcmp(m, "DELETE") == 0 || strcmp(m, "OPTIONS") == 0;
  if (strcmp(m, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    return;
  }
  if (rq->body != NULL || !bodyless) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(rq->body != NULL ? rq->body_len : 0));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "");
  }
  if (strcmp(m, "POST") != 0 && strcmp(m, "GET") != 0)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
  else if (strcmp(m, "GET") == 0 && rq->body != NULL)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
}

static void set_options(CURL *c, cr_plugin_ctx *ctx,
                        const struct cr_http_request *rq,
                        struct curl_slist *hdrs, struct xfer *x, char *errbuf) {
  long timeout = rq->timeout_ms > 0 ? rq->timeout_ms : ctx->http.timeout_ms;
  curl_easy_setopt(c, CURLOPT_URL, rq->url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                   (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS,
                   (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION,
                   ctx->http.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ctx->http.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "connrun/" CR_VERSION);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
  /* Large pages arrive in fewer reads and callbacks. */
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)HTTP_BUFFER);
  x->curl = c;
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  set_method(c, rq);
}

/* Maps a libcurl outcome to a cr_plugin_result and resp->error. */
static int classify(cr_plugin_ctx *ctx, CURLcode cc, const struct xfer *x,
                    const char *errbuf, struct cr_http_response *resp) {
  char msg[128];
  if (cc == CURLE_OK)
    return CR_PLUGIN_OK;
  if (cc == CURLE_ABORTED_BY_CALLBACK) {
    resp_error(ctx, resp, "request cancelled", 0);
    return CR_PLUGIN_ERR_CANCELLED;
  }
  if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
    snprintf(msg, sizeof msg, "response larger than the limit of %zu bytes",
             x->max_body);
    resp_error(ctx, resp, msg, 0);
    return CR_PLUGIN_ERR_SYSTEM;
  }
  if (x->nomem || cc == CURLE_OUT_OF_MEMORY) {
    resp_error(ctx, resp, "out of memory", 0);
    return CR_PLUGIN_ERR_SYSTEM;
  }
  const char *text = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);
  unsigned flags = strlen(errbuf) + 1 >= CURL_ERROR_SIZE ? CR_REDACT_TAIL : 0;
  resp_error(ctx, resp, text, flags);
  if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
    return CR_PLUGIN_ERR_CONFIG;
  return CR_PLUGIN_ERR_TRANSIENT;
}

/* Moves the buffers into resp on success (never NULL), frees them otherwise. */
static int finish_response(cr_plugin_ctx *ctx, int rc, long status,
                           struct xfer *x, struct cr_http_response *resp) {
  if (rc == CR_PLUGIN_OK && (x->body.data == NULL || x->head.data == NULL)) {
    if ((x->body.data == NULL && grow_append(&x->body, "", 0) != 0) ||
        (x->head.data == NULL && grow_append(&x->head, "", 0) != 0)) {
      resp_error(ctx, resp, "out of memory", 0);
      rc = CR_PLUGIN_ERR_SYSTEM;
    }
  }
  if (rc != CR_PLUGIN_OK) {
    cr__free(x->body.data);
    cr__free(x->head.data);
    return rc;
  }
  resp->status = status;
  resp->body = x->body.data;
  resp->body_len = x->body.len;
  resp->headers = x->head.data;
  return rc;
}

static void count_and_log(cr_plugin_ctx *ctx, const struct cr_http_request *rq,
                          const struct xfer *x, int rc, long status, int64_t ms,
                          const struct cr_http_response *resp) {
  struct cr_plugin_http_counters *k = &ctx->counters;
  k->requests++;
  k->bytes_sent += rq->body != NULL ? rq->body_len : 0;
  k->bytes_received += x->body.len + x->head.len;
  if ((rc != CR_PLUGIN_OK && rc != CR_PLUGIN_ERR_CANCELLED) || status == 429 ||
      status >= 500)
    k->errors++;
  if (!wants_log(ctx, CR_PLUGIN_LOG_DEBUG))
    return;
  char *url = NULL;
  int have_url = cr_redact_url(ctx->redactor, rq->url, &url) == 0;
  const char *u = have_url ? url : "(URL hidden: out of memory)";
  const char *m = rq->method != NULL ? rq->method : "GET";
  if (rc == CR_PLUGIN_OK)
    log_redacted(ctx, CR_PLUGIN_LOG_DEBUG, "%s %s -> %ld (%lld ms)", m, u,
                 status, (long long)ms);
  else
    log_redacted(ctx, CR_PLUGIN_LOG_DEBUG, "%s %s -> failed: %s (%lld ms)", m,
                 u, resp->error, (long long)ms);
  cr__free(url);
}

/* Checks the request; copies the fields the plugin's struct_size covers. */
static int check_request(cr_plugin_ctx *ctx, const struct cr_http_request *req,
                         struct cr_http_request *rq,
                         struct cr_http_response *resp) {
  const char *why = NULL;
  memset(rq, 0, sizeof *rq);
  if (req == NULL)
    why = "no request";
  else if (req->struct_size < REQ_V1_0_SIZE)
    why = "struct cr_http_request.struct_size is too small (use "
          "sizeof(struct cr_http_request))";
  if (why == NULL) {
    size_t n = req->struct_size < sizeof *rq ? req->struct_size : sizeof *rq;
    memcpy(rq, req, n);
    if (rq->url == NULL)
      why = "request has no URL";
    else if (rq->method != NULL && !valid_method(rq->method))
      why = "request method is not an HTTP token";
    else if (rq->body == NULL && rq->body_len != 0)
      why = "request body_len without a body";
  }
  if (why == NULL)
    return CR_PLUGIN_OK;
  resp_error(ctx, resp, why, 0);
  return CR_PLUGIN_ERR_SYSTEM;
}

/* The ctx's easy handle, created on first use and reset between requests,
 * on the process's shared connection cache. */
static CURL *ctx_handle(cr_plugin_ctx *ctx) {
  if (ctx->curl != NULL) {
    curl_easy_reset(ctx->curl);
  } else {
    if (cr_host_http_global_init() != 0)
      return NULL;
    ctx->curl = curl_easy_init();
  }
  if (ctx->curl != NULL && g_share != NULL)
    curl_easy_setopt(ctx->curl, CURLOPT_SHARE, g_share);
  return ctx->curl;
}

static int host_http(cr_plugin_ctx *ctx, const struct cr_http_request *req,
                     struct cr_http_response *resp) {
  struct cr_http_request rq;
  if (resp == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  resp_reset(resp);
  if (ctx == NULL) {
    snprintf(resp->error, sizeof resp->error, "no context");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  int rc = check_request(ctx, req, &rq, resp);
  if (rc != CR_PLUGIN_OK)
    return rc;
  if (host_cancelled(ctx)) {
    resp_error(ctx, resp, "request cancelled", 0);
    return CR_PLUGIN_ERR_CANCELLED;
  }
  CURL *c = ctx_handle(ctx);
  struct curl_slist *hdrs = NULL;
  if (c == NULL) {
    resp_error(ctx, resp, "cannot initialise libcurl", 0);
    return CR_PLUGIN_ERR_SYSTEM;
  }
  if ((rc = build_headers(ctx, rq.headers, &hdrs, resp)) != CR_PLUGIN_OK)
    return rc;
  struct xfer x = {.ctx = ctx, .max_body = ctx->http.max_body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  set_options(c, ctx, &rq, hdrs, &x, errbuf);
  int64_t t0 = mono_ms();
  CURLcode cc = curl_easy_perform(c);
  int64_t ms = mono_ms() - t0;
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(hdrs);
  rc = classify(ctx, cc, &x, errbuf, resp);
  count_and_log(ctx, &rq, &x, rc, rc == CR_PLUGIN_OK ? status : 0, ms, resp);
  return finish_response(ctx, rc, status, &x, resp);
}

static void host_http_response_free(cr_plugin_ctx *ctx,
                                    struct cr_http_response *resp) {
  (void)ctx;
  if (resp == NULL)
    return;
  cr__free(resp->body);
  cr__free(resp->headers);
  resp->body = NULL;
  resp->headers = NULL;
  resp->body_len = 0;
}

/* ---- The table
 * ---------------------------------------------------------------- */

static const struct cr_host_api default_api = {
    .struct_size = sizeof(struct cr_host_api),
    .abi_major = CR_PLUGIN_ABI_MAJOR,
    .abi_minor = CR_PLUGIN_ABI_MINOR,
    .alloc = cr__malloc,
    .free = cr__free,
    .log = host_log,
    .emit = host_emit,
    .checkpoint = host_checkpoint,
    .state = host_state,
    .progress = host_progress,
    .cancelled = host_cancelled,
    .http = host_http,
    .http_response_free = host_http_response_free,
    .set_error = host_set_error,
    .credentials_update = host_credentials_update,
    .record_failed = host_record_failed,
};

const struct cr_host_api *cr_host_api_default(void) { return &default_api; }
