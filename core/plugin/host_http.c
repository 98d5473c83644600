/* host_http.c: HTTP for plugins through libcurl (api->http, and
 * api->http_start / api->http_finish, which run one request per context on
 * a background thread while the plugin goes on): request checks, the
 * transfer, error mapping, counting and logging (rules and defaults in
 * host_api.h). */
#include "plugin/host_api_int.h"

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
  const atomic_int *abort; /* background request: set to abandon it */
};

/* libcurl's receive buffer for a transfer: 4 times its default, and below
 * glibc's mmap threshold (128 KiB): a buffer at that size was mmap()ed and
 * unmapped for every request, which made 10,000 health checks 2 times
 * slower (bench_api). */
#define HTTP_BUFFER (64L * 1024L)
/* A background request (api->http_start) is a page of a sync: 120 KiB, still
 * below the mmap threshold, halves its recv and poll calls. Salesforce
 * benchmark, 12 interleaved pairs: median 4.7M -> 5.0M records/s; 512 KiB
 * (mmap()ed for every request) was slower. */
#define HTTP_BUFFER_AHEAD (120L * 1024L)

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
  if (x->abort != NULL && atomic_load(x->abort) != 0)
    return 1;
  return cr__host_cancelled(x->ctx) ? 1 : 0;
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
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE,
                   x->abort != NULL ? HTTP_BUFFER_AHEAD : HTTP_BUFFER);
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
  if (!cr__host_wants_log(ctx, CR_PLUGIN_LOG_DEBUG))
    return;
  char *url = NULL;
  int have_url = cr_redact_url(ctx->redactor, rq->url, &url) == 0;
  const char *u = have_url ? url : "(URL hidden: out of memory)";
  const char *m = rq->method != NULL ? rq->method : "GET";
  if (rc == CR_PLUGIN_OK)
    cr__host_log_redacted(ctx, CR_PLUGIN_LOG_DEBUG, "%s %s -> %ld (%lld ms)", m,
                          u, status, (long long)ms);
  else
    cr__host_log_redacted(ctx, CR_PLUGIN_LOG_DEBUG,
                          "%s %s -> failed: %s (%lld ms)", m, u, resp->error,
                          (long long)ms);
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
/* An easy handle (*slot, created on first use and reset between requests)
 * on the process's shared connection cache. */
static CURL *easy_handle(void **slot) {
  if (*slot != NULL) {
    curl_easy_reset(*slot);
  } else {
    if (cr_host_http_global_init() != 0)
      return NULL;
    *slot = curl_easy_init();
  }
  if (*slot != NULL && g_share != NULL)
    curl_easy_setopt(*slot, CURLOPT_SHARE, g_share);
  return *slot;
}

/* One request on one easy handle: set up and finished on the plugin's
 * thread, performed on it (api->http) or on the background thread. */
struct call {
  struct cr_http_request rq; /* checked; views borrowed for the call */
  struct curl_slist *hdrs;
  struct xfer x;
  char errbuf[CURL_ERROR_SIZE];
  CURLcode cc;
  int64_t ms;
};

/* Sets c up for k->rq; abort (NULL for api->http) abandons the transfer
 * when set. Returns OK or the refusal (resp->error). */
static int call_setup(cr_plugin_ctx *ctx, CURL *c, struct call *k,
                      const atomic_int *abort, struct cr_http_response *resp) {
  if (c == NULL) {
    resp_error(ctx, resp, "cannot initialise libcurl", 0);
    return CR_PLUGIN_ERR_SYSTEM;
  }
  k->hdrs = NULL;
  int rc = build_headers(ctx, k->rq.headers, &k->hdrs, resp);
  if (rc != CR_PLUGIN_OK)
    return rc;
  memset(&k->x, 0, sizeof k->x);
  k->x.ctx = ctx;
  k->x.max_body = ctx->http.max_body;
  k->x.abort = abort;
  k->errbuf[0] = '\0';
  set_options(c, ctx, &k->rq, k->hdrs, &k->x, k->errbuf);
  return CR_PLUGIN_OK;
}

static void call_perform(CURL *c, struct call *k) {
  int64_t t0 = mono_ms();
  k->cc = curl_easy_perform(c);
  k->ms = mono_ms() - t0;
}

/* Maps the outcome, counts and logs the request and fills resp. */
static int call_finish(cr_plugin_ctx *ctx, CURL *c, struct call *k,
                       struct cr_http_response *resp) {
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
  curl_slist_free_all(k->hdrs);
  k->hdrs = NULL;
  int rc = classify(ctx, k->cc, &k->x, k->errbuf, resp);
  count_and_log(ctx, &k->rq, &k->x, rc, rc == CR_PLUGIN_OK ? status : 0, k->ms,
                resp);
  return finish_response(ctx, rc, status, &k->x, resp);
}

/* The checks every request starts with: resp reset, a ctx, a valid request
 * (copied into rq), not cancelled. */
static int call_begin(cr_plugin_ctx *ctx, const struct cr_http_request *req,
                      struct cr_http_request *rq,
                      struct cr_http_response *resp) {
  resp_reset(resp);
  if (ctx == NULL) {
    snprintf(resp->error, sizeof resp->error, "no context");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  int rc = check_request(ctx, req, rq, resp);
  if (rc == CR_PLUGIN_OK && cr__host_cancelled(ctx)) {
    resp_error(ctx, resp, "request cancelled", 0);
    rc = CR_PLUGIN_ERR_CANCELLED;
  }
  return rc;
}

int cr__host_http(cr_plugin_ctx *ctx, const struct cr_http_request *req,
                  struct cr_http_response *resp) {
  if (resp == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  struct call k;
  int rc = call_begin(ctx, req, &k.rq, resp);
  if (rc != CR_PLUGIN_OK)
    return rc;
  CURL *c = easy_handle(&ctx->curl);
  if ((rc = call_setup(ctx, c, &k, NULL, resp)) != CR_PLUGIN_OK)
    return rc;
  call_perform(c, &k);
  return call_finish(ctx, c, &k, resp);
}

void cr__host_http_response_free(cr_plugin_ctx *ctx,
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

/* ---- In the background: api->http_start / api->http_finish ---------------
 * One request at a time per ctx, on a thread of the ctx's own (made by the
 * first http_start, joined by cr__host_http_cleanup) with an easy handle of
 * its own. The plugin's thread sets the request up and finishes it (maps,
 * counts, logs); the background thread only runs curl_easy_perform. */

enum { A_IDLE, A_QUEUED, A_DONE };

struct cr__http_async {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int started, quit;
  int state;       /* A_*, under mu */
  atomic_int stop; /* abandon the transfer (cleanup) */
  void *curl;
  struct call k;
  int early; /* a request refused by http_start: its result, reported by */
  char early_error[sizeof(((struct cr_http_response *)0)->error)]; /* finish */
  /* The request's strings, owned: k.rq points to them. */
  char *url, *method, *body, **headers;
};

static void *async_main(void *arg) {
  struct cr__http_async *a = arg;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    while (a->state != A_QUEUED && !a->quit)
      pthread_cond_wait(&a->cv, &a->mu);
    if (a->quit)
      break;
    pthread_mutex_unlock(&a->mu);
    call_perform(a->curl, &a->k);
    pthread_mutex_lock(&a->mu);
    a->state = A_DONE;
    pthread_cond_broadcast(&a->cv);
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

static void async_free_request(struct cr__http_async *a) {
  for (size_t i = 0; a->headers != NULL && a->headers[i] != NULL; i++)
    cr__free(a->headers[i]);
  cr__free(a->headers);
  cr__free(a->url);
  cr__free(a->method);
  cr__free(a->body);
  a->url = a->method = a->body = NULL;
  a->headers = NULL;
}

/* Copies the request's strings (k.rq then points to the copies). */
static int async_copy_request(struct cr__http_async *a) {
  struct cr_http_request *rq = &a->k.rq;
  size_t n = 0;
  while (rq->headers != NULL && rq->headers[n] != NULL)
    n++;
  a->url = cr__strdup(rq->url);
  a->method = rq->method != NULL ? cr__strdup(rq->method) : NULL;
  a->headers = cr__calloc(n + 1, sizeof *a->headers);
  a->body = rq->body != NULL ? cr__malloc(rq->body_len + 1) : NULL;
  int bad = a->url == NULL || (rq->method != NULL && a->method == NULL) ||
            a->headers == NULL || (rq->body != NULL && a->body == NULL);
  for (size_t i = 0; !bad && i < n; i++)
    bad = (a->headers[i] = cr__strdup(rq->headers[i])) == NULL;
  if (bad)
    return CR_PLUGIN_ERR_SYSTEM;
  if (a->body != NULL)
    memcpy(a->body, rq->body, rq->body_len);
  rq->url = a->url;
  rq->method = a->method;
  rq->headers = (const char *const *)a->headers;
  rq->body = a->body;
  return CR_PLUGIN_OK;
}

static struct cr__http_async *async_new(void) {
  struct cr__http_async *a = cr__calloc(1, sizeof *a);
  if (a == NULL)
    return NULL;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  atomic_init(&a->stop, 0);
  return a;
}

static int async_state(struct cr__http_async *a) {
  pthread_mutex_lock(&a->mu);
  int st = a->state;
  pthread_mutex_unlock(&a->mu);
  return st;
}

/* Sets up and queues the request; a refusal becomes the result finish
 * reports. */
static int async_queue(cr_plugin_ctx *ctx, struct cr__http_async *a,
                       const struct cr_http_request *req) {
  struct cr_http_response tmp;
  int rc = call_begin(ctx, req, &a->k.rq, &tmp);
  if (rc == CR_PLUGIN_OK && async_copy_request(a) != CR_PLUGIN_OK) {
    resp_error(ctx, &tmp, "out of memory", 0);
    rc = CR_PLUGIN_ERR_SYSTEM;
  }
  if (rc == CR_PLUGIN_OK)
    rc = call_setup(ctx, easy_handle(&a->curl), &a->k, &a->stop, &tmp);
  if (rc == CR_PLUGIN_OK && !a->started) {
    a->started = pthread_create(&a->thread, NULL, async_main, a) == 0;
    if (!a->started) {
      curl_slist_free_all(a->k.hdrs);
      a->k.hdrs = NULL;
      resp_error(ctx, &tmp, "cannot start the request's thread", 0);
      rc = CR_PLUGIN_ERR_SYSTEM;
    }
  }
  pthread_mutex_lock(&a->mu);
  a->early = rc;
  if (rc != CR_PLUGIN_OK)
    memcpy(a->early_error, tmp.error, sizeof tmp.error);
  a->state = rc == CR_PLUGIN_OK ? A_QUEUED : A_DONE;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
  return CR_PLUGIN_OK;
}

int cr__host_http_start(cr_plugin_ctx *ctx, const struct cr_http_request *req) {
  if (ctx == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (ctx->async == NULL && (ctx->async = async_new()) == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  struct cr__http_async *a = ctx->async;
  if (async_state(a) != A_IDLE)
    return CR_PLUGIN_ERR_SYSTEM; /* one in flight already */
  return async_queue(ctx, a, req);
}

int cr__host_http_finish(cr_plugin_ctx *ctx, struct cr_http_response *resp) {
  if (resp == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  resp_reset(resp);
  if (ctx == NULL) {
    snprintf(resp->error, sizeof resp->error, "no context");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  struct cr__http_async *a = ctx->async;
  if (a == NULL || async_state(a) == A_IDLE) {
    resp_error(ctx, resp, "no request in flight (http_start first)", 0);
    return CR_PLUGIN_ERR_SYSTEM;
  }
  pthread_mutex_lock(&a->mu);
  while (a->state == A_QUEUED)
    pthread_cond_wait(&a->cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  int rc = a->early;
  if (rc != CR_PLUGIN_OK)
    memcpy(resp->error, a->early_error, sizeof resp->error);
  else
    rc = call_finish(ctx, a->curl, &a->k, resp);
  async_free_request(a);
  a->early = 0;
  a->k.x.abort = NULL;
  pthread_mutex_lock(&a->mu);
  a->state = A_IDLE;
  pthread_mutex_unlock(&a->mu);
  return rc;
}

/* Abandons a request still in flight (never reported: it is not counted),
 * stops the thread and frees everything. */
static void async_free(struct cr__http_async *a) {
  atomic_store(&a->stop, 1);
  pthread_mutex_lock(&a->mu);
  while (a->state == A_QUEUED)
    pthread_cond_wait(&a->cv, &a->mu);
  int finished = a->state == A_DONE && a->early == CR_PLUGIN_OK;
  a->quit = 1;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
  if (a->started)
    pthread_join(a->thread, NULL);
  if (finished) {
    curl_slist_free_all(a->k.hdrs);
    cr__free(a->k.x.body.data);
    cr__free(a->k.x.head.data);
  }
  async_free_request(a);
  if (a->curl != NULL)
    curl_easy_cleanup(a->curl);
  pthread_cond_destroy(&a->cv);
  pthread_mutex_destroy(&a->mu);
  cr__free(a);
}

void cr__host_http_cleanup(cr_plugin_ctx *ctx) {
  if (ctx == NULL)
    return;
  if (ctx->async != NULL)
    async_free(ctx->async);
  ctx->async = NULL;
  if (ctx->curl != NULL)
    curl_easy_cleanup(ctx->curl);
  ctx->curl = NULL;
}
