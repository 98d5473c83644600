/* http_async.c: asynchronous HTTP POSTs on a libuv loop (see http_async.h).
 *
 * libcurl's multi_socket API tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket, kept in a struct
 * sock_ctx assigned to the socket with curl_multi_assign) and when to call it
 * back (CURLMOPT_TIMERFUNCTION: one uv_timer_t). Completed transfers are
 * collected with curl_multi_info_read after every curl_multi_socket_action.
 * A sock_ctx is stopped synchronously on CURL_POLL_REMOVE (before curl closes
 * the fd) and freed only in its uv_close callback, so no callback ever sees
 * freed memory; uv_poll_start is only called when the watched events change.
 * On CURL_POLL_REMOVE of a still-open fd (a connection going idle into
 * curl's cache) the sock_ctx is parked, still watching what it watched, and
 * reused when curl announces the same fd again: a request on a kept-alive
 * connection then costs no epoll_ctl at all (it cost three: stop, start,
 * and a second stop). A parked socket that becomes readable (the server
 * closed it) stops watching at once. This needs to know when an fd stops
 * being that connection: curl closes its sockets through our
 * CURLOPT_CLOSESOCKETFUNCTION, which closes the sock_ctx first (after
 * curl's CURL_POLL_REMOVE), and opens them through our
 * CURLOPT_OPENSOCKETFUNCTION, which drops any sock_ctx left on a reused fd
 * number (a close we were not told about).
 *
 * Per-request cost: a finished request (its struct req, CURL easy handle and
 * body/header buffers) goes back to a free list of up to max_connections
 * entries. An easy handle gets its constant options once when it is created;
 * a reused one only gets the per-request options (URL, body, headers,
 * timeout). Request headers are laid out as a curl_slist inside one reused
 * buffer (wiped when the request finishes). Connections themselves live in
 * the multi handle's connection cache, independent of easy handles. */
#include "util/http_async.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"
#include "plugin/host_api.h"

#define DEFAULT_MAX_CONN 16L
#define DEFAULT_TIMEOUT_MS 15000L
#define MAX_BODY 4096

struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  int events; /* UV_READABLE|UV_WRITABLE being watched; 0 = stopped */
  int parked; /* curl dropped the fd (CURL_POLL_REMOVE); stopped, kept */
  struct cr_http_async *h;
  struct sock_ctx *prev, *next;
};

struct req {
  struct cr_http_async *h;
  CURL *easy;              /* constant options set once (easy_new) */
  struct curl_slist *hdrs; /* hdr_cap nodes, pointing into hdr_buf */
  size_t hdr_cap;          /* nodes allocated in hdrs */
  char *hdr_buf;           /* "Expect:\0Name: v\0..." */
  size_t hdr_buf_cap, hdr_buf_len;
  CURLU *url;    /* the last URL, parsed (curl only reads it) */
  char *url_str; /* its text, to tell whether the next one is the same */
  char *body;    /* request body (copy), body_cap bytes allocated */
  size_t body_len, body_cap;
  uint64_t start_ns;
  int64_t retry_after_ms;
  cr_http_done_fn done;
  void *ud;
  struct req *prev, *next;
  size_t resp_len;
  int oom; /* a socket of this transfer could not be watched */
  char errbuf[CURL_ERROR_SIZE];
  char resp[MAX_BODY + 1];
};

struct cr_http_async {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct req *reqs;
  struct req *pool; /* idle requests (linked by next), n_pool of them */
  size_t n_pool, pool_max;
  struct sock_ctx *socks; /* watched and parked ones */
  size_t n_parked;
  size_t in_flight;
  size_t open_handles;
  long timeout_ms;
  int closing;
  int free_pending;
  int oom_pending; /* some req has oom set */
};

/* ---- Lists ---------------------------------------------------------------
 */

static void req_link(struct cr_http_async *h, struct req *r) {
  r->prev = NULL;
  r->next = h->reqs;
  if (h->reqs != NULL)
    h->reqs->prev = r;
  h->reqs = r;
  h->in_flight++;
}

static void req_unlink(struct cr_http_async *h, struct req *r) {
  if (r->prev != NULL)
    r->prev->next = r->next;
  else
    h->reqs = r->next;
  if (r->next != NULL)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
  h->in_flight--;
}

static void req_free(struct req *r) {
  if (r == NULL)
    return;
  if (r->easy != NULL)
    curl_easy_cleanup(r->easy);
  /* Headers carry signatures and tokens: wipe them before release. */
  if (r->hdr_buf != NULL)
    cr__secret_wipe(r->hdr_buf, r->hdr_buf_len);
  cr__free(r->hdr_buf);
  cr__free(r->hdrs);
  cr__free(r->body);
  curl_url_cleanup(r->url);
  cr__free(r->url_str);
  cr__free(r);
}

/* Takes back a request that is not (or no longer) in the multi handle: keeps
 * it for reuse, or frees it when closing, when the pool is full or when its
 * transfer went wrong in a way that might leave the easy handle odd. */
static void req_release(struct cr_http_async *h, struct req *r) {
  if (h->closing || r->oom || r->easy == NULL || h->n_pool >= h->pool_max) {
    req_free(r);
    return;
  }
  cr__secret_wipe(r->hdr_buf, r->hdr_buf_len);
  r->hdr_buf_len = 0;
  r->done = NULL;
  r->ud = NULL;
  r->prev = NULL;
  r->next = h->pool;
  h->pool = r;
  h->n_pool++;
}

static void pool_drain(struct cr_http_async *h) {
  while (h->pool != NULL) {
    struct req *r = h->pool;
    h->pool = r->next;
    h->n_pool--;
    req_free(r);
  }
}

/* ---- uv handle lifetime --------------------------------------------------
 */

static void handle_closed(struct cr_http_async *h) {
  h->open_handles--;
  if (h->open_handles == 0 && h->free_pending)
    cr__free(h);
}

static void on_sock_closed(uv_handle_t *hd) {
  struct sock_ctx *s = hd->data;
  struct cr_http_async *h = s->h;
  cr__free(s);
  handle_closed(h);
}

static void on_timer_closed(uv_handle_t *hd) { handle_closed(hd->data); }

/* Stops watching s now and frees it once libuv is done with it. */
static void sock_close(struct cr_http_async *h, struct sock_ctx *s) {
  uv_poll_stop(&s->poll);
  if (s->parked)
    h->n_parked--;
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    h->socks = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ---- Completion ----------------------------------------------------------
 */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct req *r = ud;
  size_t len = size * n;
  size_t room = MAX_BODY - r->resp_len;
  size_t take = len < room ? len : room;
  memcpy(r->resp + r->resp_len, p, take);
  r->resp_len += take;
  r->resp[r->resp_len] = '\0';
  return len;
}

static int64_t parse_retry_after(const char *v) {
  while (*v == ' ' || *v == '\t')
    v++;
  if (*v >= '0' && *v <= '9') {
    int64_t s = 0;
    for (; *v >= '0' && *v <= '9'; v++)
      s = s < INT64_MAX / 10000 ? s * 10 + (*v - '0') : s;
    return s * 1000;
  }
  time_t t = curl_getdate(v, NULL);
  if (t == (time_t)-1)
    return -1;
  int64_t ms = (int64_t)t * 1000 - cr__now_ms();
  return ms > 0 ? ms : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  struct req *r = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
    r->retry_after_ms = -1; /* a new response (after 1xx) starts */
    return len;
  }
  if (len <= sizeof name - 1 || strncasecmp(p, name, sizeof name - 1) != 0)
    return len;
  char v[128];
  size_t vl = len - (sizeof name - 1);
  if (vl >= sizeof v)
    return len;
  memcpy(v, p + sizeof name - 1, vl);
  while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
    vl--;
  v[vl] = '\0';
  r->retry_after_ms = parse_retry_after(v);
  return len;
}

/* Calls r->done. cancel (e.g. "cancelled") overrides the outcome. */
static void finish(struct req *r, CURLcode cc, const char *cancel) {
  struct cr_http_result res;
  memset(&res, 0, sizeof res);
  res.latency_ms = (int64_t)((uv_hrtime() - r->start_ns) / 1000000u);
  res.retry_after_ms = r->retry_after_ms;
  res.body = r->resp;
  res.body_len = r->resp_len;
  if (cancel != NULL) {
    snprintf(res.error, sizeof res.error, "%s", cancel);
    res.body_len = 0;
    res.retry_after_ms = -1;
  } else if (cc != CURLE_OK) {
    snprintf(res.error, sizeof res.error, "%s",
             r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
  } else {
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
    if (res.status == 0)
      snprintf(res.error, sizeof res.error, "no HTTP status");
  }
  if (res.status == 0)
    res.body_len = 0;
  r->resp[res.body_len] = '\0';
  r->done(r->ud, &res);
}

/* Fails the transfers whose socket could not be watched. */
static void sweep_oom(struct cr_http_async *h) {
  h->oom_pending = 0;
  struct req *r = h->reqs;
  while (r != NULL && !h->closing) {
    struct req *next = r->next;
    if (r->oom) {
      curl_multi_remove_handle(h->multi, r->easy);
      req_unlink(h, r);
      finish(r, CURLE_OK, cr_strerror(CR_ENOMEM));
      req_free(r);    /* not reused: oom */
      next = h->reqs; /* done may have changed the list: rescan */
    }
    r = next;
  }
}

/* Delivers every finished transfer. Stops if a callback closed h. */
static void check_multi_info(struct cr_http_async *h) {
  CURLMsg *m;
  int left;
  if (h->oom_pending && !h->closing)
    sweep_oom(h);
  while (!h->closing && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE)
      continue;
    char *priv = NULL;
    CURL *easy = m->easy_handle;
    CURLcode cc = m->data.result;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct req *r = (struct req *)(void *)priv;
    curl_multi_remove_handle(h->multi, easy);
    req_unlink(h, r);
    finish(r, cc, NULL);
    req_release(h, r);
  }
}

/* ---- curl <-> uv glue ----------------------------------------------------
 */

static void on_poll(uv_poll_t *p, int status, int events) {
  struct sock_ctx *s = p->data;
  struct cr_http_async *h = s->h;
  if (s->parked) { /* an idle connection: closed by the server, or junk */
    uv_poll_stop(&s->poll);
    s->events = 0;
    return; /* curl finds it dead when it next looks at it */
  }
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
    s->events = 0; /* libuv stopped the handle: the next start is real */
  }
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(h->multi, s->fd, flags, &running);
  check_multi_info(h);
}

static void on_timeout(uv_timer_t *t) {
  struct cr_http_async *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_multi_info(h);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud) {
  (void)multi;
  struct cr_http_async *h = ud;
  if (h->closing)
    return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&h->timer);
  else
    uv_timer_start(&h->timer, on_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* curl no longer needs fd (its connection went idle into the cache, or it
 * is about to be closed: then on_close_socket follows). s is kept (parked),
 * still watching, so the next transfer on the connection reuses it without
 * any epoll_ctl; on_poll stops it if the idle connection turns readable. */
static void sock_park(struct cr_http_async *h, struct sock_ctx *s) {
  if (h->closing || h->n_parked >= 2 * h->pool_max + 8) {
    sock_close(h, s);
    return;
  }
  s->parked = 1;
  h->n_parked++;
  uv_unref((uv_handle_t *)&s->poll); /* an idle connection keeps no loop */
}

static struct sock_ctx *sock_find(struct cr_http_async *h, curl_socket_t fd) {
  for (struct sock_ctx *s = h->socks; s != NULL; s = s->next)
    if (s->fd == fd)
      return s;
  return NULL;
}

/* CURLOPT_CLOSESOCKETFUNCTION: curl closes fd (after CURL_POLL_REMOVE).
 * Its sock_ctx goes first, while the fd is still open. */
static int on_close_socket(void *ud, curl_socket_t fd) {
  struct cr_http_async *h = ud;
  struct sock_ctx *s = sock_find(h, fd);
  if (s != NULL)
    sock_close(h, s);
  return close(fd);
}

/* CURLOPT_OPENSOCKETFUNCTION: a new socket. A sock_ctx still on its fd
 * number belongs to a socket closed without telling us: dropped. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose,
                                    struct curl_sockaddr *a) {
  struct cr_http_async *h = ud;
  (void)purpose;
  curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
  struct sock_ctx *s = fd != CURL_SOCKET_BAD ? sock_find(h, fd) : NULL;
  if (s != NULL)
    sock_close(h, s);
  return fd;
}

/* The parked context of fd, if any (at most one per fd number: a parked one
 * is always taken before a new one is opened). */
static struct sock_ctx *sock_unpark(struct cr_http_async *h, curl_socket_t fd) {
  if (h->n_parked == 0)
    return NULL;
  for (struct sock_ctx *s = h->socks; s != NULL; s = s->next) {
    if (s->parked && s->fd == fd) {
      s->parked = 0;
      h->n_parked--;
      uv_ref((uv_handle_t *)&s->poll);
      curl_multi_assign(h->multi, fd, s);
      return s;
    }
  }
  return NULL;
}

static struct sock_ctx *sock_open(struct cr_http_async *h, curl_socket_t fd) {
  struct sock_ctx *s = sock_unpark(h, fd);
  if (s != NULL)
    return s;
  s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
    cr__free(s);
    return NULL;
  }
  s->fd = fd;
  s->h = h;
  s->poll.data = s;
  s->next = h->socks;
  if (h->socks != NULL)
    h->socks->prev = s;
  h->socks = s;
  h->open_handles++;
  curl_multi_assign(h->multi, fd, s);
  return s;
}

/* Fails easy's transfer once socket_action returns (a -1 from the socket
 * callback would abort every transfer of the multi handle). */
static void mark_failed(struct cr_http_async *h, CURL *easy) {
  char *priv = NULL;
  if (easy == NULL ||
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK ||
      priv == NULL)
    return;
  ((struct req *)(void *)priv)->oom = 1;
  h->oom_pending = 1;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *ud,
                          void *sockp) {
  struct cr_http_async *h = ud;
  struct sock_ctx *s = sockp;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      curl_multi_assign(h->multi, fd, NULL);
      sock_park(h, s);
    }
    return 0;
  }
  if (h->closing)
    return 0;
  if (s == NULL)
    s = sock_open(h, fd);
  if (s == NULL) {
    mark_failed(h, easy);
    return 0;
  }
  int ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    ev |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    ev |= UV_WRITABLE;
  if (ev == s->events)
    return 0; /* already watching exactly these: no epoll_ctl round trip */
  if (ev == 0) {
    uv_poll_stop(&s->poll);
    s->events = 0;
    return 0;
  }
  if (uv_poll_start(&s->poll, ev, on_poll) != 0) {
    s->events = 0;
    mark_failed(h, easy);
    return 0;
  }
  s->events = ev;
  return 0;
}

/* ---- Public API ----------------------------------------------------------
 */

int cr_http_async_new(uv_loop_t *loop, const struct cr_http_async_opts *o,
                      cr_http_async **out) {
  if (out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (loop == NULL)
    return CR_EINVAL;
  if (cr_host_http_global_init() != 0)
    return CR_EHTTP;
  struct cr_http_async_opts d = {0, 0, 0};
  if (o != NULL)
    d = *o;
  if (d.max_connections < 0 || d.max_host_connections < 0 ||
      d.default_timeout_ms < 0)
    return CR_EINVAL;
  long maxc = d.max_connections > 0 ? d.max_connections : DEFAULT_MAX_CONN;
  long maxh = d.max_host_connections > 0 ? d.max_host_connections : maxc;
  struct cr_http_async *h = cr__calloc(1, sizeof *h);
  if (h == NULL)
    return CR_ENOMEM;
  h->loop = loop;
  h->timeout_ms =
      d.default_timeout_ms > 0 ? d.default_timeout_ms : DEFAULT_TIMEOUT_MS;
  h->multi = curl_multi_init();
  if (h->multi == NULL) {
    cr__free(h);
    return CR_EHTTP;
  }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, maxc);
  curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, maxh);
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, maxc);
  h->pool_max = (size_t)maxc;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  h->open_handles = 1;
  *out = h;
  return 0;
}

/* Grows *p to at least need bytes (contents not kept). */
static int grow(void **p, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  size_t n = *cap > 0 ? *cap : 64;
  while (n < need)
    n = n > SIZE_MAX / 2 ? need : n * 2;
  void *q = cr__malloc(n);
  if (q == NULL)
    return CR_ENOMEM;
  cr__free(*p);
  *p = q;
  *cap = n;
  return 0;
}

/* Lays out "Expect:" (body sizes over 1 MiB would otherwise wait for
 * 100-continue) and the headers as a curl_slist in r's reused buffers. */
static int build_headers(struct req *r, const char *const *headers, size_t n) {
  static const char expect[] = "Expect:";
  size_t bytes = sizeof expect;
  for (size_t i = 0; i < n; i++)
    bytes += strlen(headers[i]) + 1;
  if (n + 1 > SIZE_MAX / sizeof *r->hdrs)
    return CR_ENOMEM;
  void *nodes = r->hdrs;
  void *buf = r->hdr_buf;
  int rc = grow(&nodes, &r->hdr_cap, (n + 1) * sizeof *r->hdrs);
  r->hdrs = nodes;
  if (rc != 0)
    return rc;
  if (bytes > r->hdr_buf_cap && r->hdr_buf != NULL)
    cr__secret_wipe(r->hdr_buf, r->hdr_buf_len); /* about to be freed */
  r->hdr_buf_len = 0;
  rc = grow(&buf, &r->hdr_buf_cap, bytes);
  r->hdr_buf = buf;
  if (rc != 0)
    return rc;
  size_t off = 0;
  for (size_t i = 0; i <= n; i++) {
    const char *s = i == 0 ? expect : headers[i - 1];
    size_t l = strlen(s) + 1;
    memcpy(r->hdr_buf + off, s, l);
    r->hdrs[i].data = r->hdr_buf + off;
    r->hdrs[i].next = i < n ? &r->hdrs[i + 1] : NULL;
    off += l;
  }
  r->hdr_buf_len = off;
  return 0;
}

/* Options that never change for an easy handle (they point at r, which owns
 * the handle for its whole life). */
static int set_constant_options(struct req *r) {
  CURL *c = r->easy;
  int bad = 0;
  bad |= curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)r) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
  bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
#else
  bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                          (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK;
#endif
  bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
  bad |=
      curl_easy_setopt(c, CURLOPT_USERAGENT, "connrun/" CR_VERSION) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, r) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_HEADERDATA, r) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket) !=
         CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, r->h) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket) !=
         CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, r->h) != CURLE_OK;
  return bad ? CR_EHTTP : 0;
}

/* r->url parsed from url, kept from the last request when it is the same
 * text (a subscription's requests all go to one URL: curl parsed it again
 * for each). Returns 0, 1 when url does not parse as it is (the text goes
 * to curl, which fails the transfer as it always did) or CR_ENOMEM. */
static int set_url(struct req *r, const char *url) {
  if (r->url_str != NULL && strcmp(r->url_str, url) == 0)
    return 0;
  cr__free(r->url_str);
  r->url_str = NULL;
  if (r->url == NULL && (r->url = curl_url()) == NULL)
    return CR_ENOMEM;
  CURLUcode uc = curl_url_set(r->url, CURLUPART_URL, url, 0);
  if (uc != CURLUE_OK)
    return uc == CURLUE_OUT_OF_MEMORY ? CR_ENOMEM : 1;
  r->url_str = cr__strdup(url);
  return r->url_str != NULL ? 0 : CR_ENOMEM;
}

/* Options of this request; every one is set again on a reused handle. */
static int set_request_options(struct cr_http_async *h, struct req *r,
                               const char *url, long timeout_ms) {
  CURL *c = r->easy;
  int bad = 0;
  int parsed = set_url(r, url);
  if (parsed < 0)
    return parsed;
  /* A URL handle wins over CURLOPT_URL: set one, clear it for the other. */
  CURLcode cc = curl_easy_setopt(c, CURLOPT_CURLU, parsed == 0 ? r->url : NULL);
  if (cc == CURLE_OK && parsed == 1)
    cc = curl_easy_setopt(c, CURLOPT_URL, url);
  bad |= cc != CURLE_OK;
  bad |=
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                       timeout_ms > 0 ? timeout_ms : h->timeout_ms) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->hdrs) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                          (curl_off_t)r->body_len) != CURLE_OK;
  bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body) != CURLE_OK;
  return bad ? CR_EHTTP : 0;
}

/* A pooled request, or a new one with a configured easy handle. */
static int req_get(struct cr_http_async *h, struct req **out) {
  struct req *r = h->pool;
  if (r != NULL) {
    h->pool = r->next;
    h->n_pool--;
    r->next = NULL;
    *out = r;
    return 0;
  }
  r = cr__calloc(1, sizeof *r);
  if (r == NULL)
    return CR_ENOMEM;
  r->h = h;
  int rc = CR_EHTTP;
  if ((r->easy = curl_easy_init()) == NULL)
    goto fail;
  if ((rc = set_constant_options(r)) != 0)
    goto fail;
  *out = r;
  return 0;
fail:
  req_free(r);
  return rc;
}

static int copy_body(struct req *r, const char *body, size_t len) {
  if (len == SIZE_MAX)
    return CR_ENOMEM;
  void *p = r->body;
  int rc = grow(&p, &r->body_cap, len + 1);
  r->body = p;
  if (rc != 0)
    return rc;
  if (len > 0)
    memcpy(r->body, body, len);
  r->body[len] = '\0';
  r->body_len = len;
  return 0;
}

static int valid_header(const char *s) {
  return s != NULL && strchr(s, ':') != NULL && strpbrk(s, "\r\n") == NULL;
}

static int post_args_ok(const cr_http_async *h, const char *url,
                        const char *const *headers, size_t n_headers,
                        const char *body, size_t len, long timeout_ms,
                        cr_http_done_fn done) {
  if (h == NULL || h->closing || url == NULL || done == NULL || timeout_ms < 0)
    return 0;
  if ((body == NULL && len > 0) || (headers == NULL && n_headers > 0))
    return 0;
  for (size_t i = 0; i < n_headers; i++)
    if (!valid_header(headers[i]))
      return 0;
  return 1;
}

int cr_http_async_post(cr_http_async *h, const char *url,
                       const char *const *headers, size_t n_headers,
                       const char *body, size_t len, long timeout_ms,
                       cr_http_done_fn done, void *ud) {
  if (!post_args_ok(h, url, headers, n_headers, body, len, timeout_ms, done))
    return CR_EINVAL;
  struct req *r = NULL;
  int rc = req_get(h, &r);
  if (rc != 0)
    return rc;
  r->done = done;
  r->ud = ud;
  r->retry_after_ms = -1;
  r->resp_len = 0;
  r->resp[0] = '\0';
  r->errbuf[0] = '\0';
  r->oom = 0;
  if ((rc = copy_body(r, body, len)) != 0)
    goto fail;
  if ((rc = build_headers(r, headers, n_headers)) != 0)
    goto fail;
  if ((rc = set_request_options(h, r, url, timeout_ms)) != 0)
    goto fail;
  r->start_ns = uv_hrtime();
  rc = CR_EHTTP;
  if (curl_multi_add_handle(h->multi, r->easy) != CURLM_OK) {
    req_free(r); /* curl refused the handle: do not reuse it */
    return rc;
  }
  req_link(h, r);
  return 0;
fail:
  req_release(h, r);
  return rc;
}

size_t cr_http_async_in_flight(const cr_http_async *h) {
  return h != NULL ? h->in_flight : 0;
}

void cr_http_async_close(cr_http_async *h) {
  if (h == NULL || h->closing)
    return;
  h->closing = 1;
  uv_timer_stop(&h->timer);
  while (h->reqs != NULL) {
    struct req *r = h->reqs;
    curl_multi_remove_handle(h->multi, r->easy);
    req_unlink(h, r);
    finish(r, CURLE_OK, "cancelled");
    req_free(r);
  }
  pool_drain(h);
  curl_multi_cleanup(h->multi); /* may report CURL_POLL_REMOVE: closes ctxs */
  h->multi = NULL;
  while (h->socks != NULL)
    sock_close(h, h->socks);
  uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

void cr_http_async_free(cr_http_async *h) {
  if (h == NULL)
    return;
  cr_http_async_close(h);
  if (h->open_handles > 0) {
    h->free_pending = 1;
    return;
  }
  cr__free(h);
}
