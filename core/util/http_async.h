/* http_async.h: asynchronous HTTP POSTs on a libuv loop (libcurl multi_socket
 * driven by uv_poll_t per socket and one uv_timer_t).
 *
 * The transport of webhook delivery. Everything here runs on the thread that
 * runs the loop; a cr_http_async is not thread-safe. Only http and https URLs
 * are allowed, redirects are never followed, keep-alive connections are
 * reused across requests, request headers never appear in errors. */
#ifndef CR_HTTP_ASYNC_H
#define CR_HTTP_ASYNC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct cr_http_async cr_http_async;

struct cr_http_async_opts {
  long max_connections;      /* CURLMOPT_MAX_TOTAL_CONNECTIONS; 0 = 16 */
  long max_host_connections; /* 0 = same as max_connections */
  long default_timeout_ms;   /* 0 = 15000 */
};

struct cr_http_result {
  long status;            /* HTTP status; 0 = no response (error says why) */
  char error[256];        /* libcurl error text when status == 0; "" else */
  int64_t latency_ms;     /* from cr_http_async_post to completion */
  int64_t retry_after_ms; /* from Retry-After (seconds or HTTP-date), -1 if
                             absent; a date in the past gives 0 */
  const char *body; /* response body (first 4 KiB at most), borrowed during
                       the callback; never NULL */
  size_t body_len;
};

/* Called on the loop thread when a request completes (also on error or
 * cancel), exactly once per accepted request. r is borrowed for the call.
 * The callback may call cr_http_async_post and cr_http_async_close, not
 * cr_http_async_free. */
typedef void (*cr_http_done_fn)(void *ud, const struct cr_http_result *r);

/* Creates a client on loop (borrowed; must outlive the client). o may be NULL
 * (defaults) and is copied. Returns 0 and *out (close with
 * cr_http_async_close, then cr_http_async_free), or CR_EINVAL, CR_ENOMEM,
 * CR_EHTTP (libcurl could not be initialised). */
int cr_http_async_new(uv_loop_t *loop, const struct cr_http_async_opts *o,
                      cr_http_async **out);

/* Starts a POST of body (len bytes, copied; may be NULL when len is 0) to url
 * (copied) with headers ("Name: value" strings, n_headers of them, copied;
 * CR or LF inside one gives CR_EINVAL), timeout_ms (0 = default; covers the
 * whole request, queueing included). done is called exactly once, later,
 * never from inside this call; ud is borrowed and passed to it. Returns 0, or
 * CR_EINVAL (bad argument, or the client is closing), CR_ENOMEM, CR_EHTTP
 * (libcurl refused the request); on error done is never called. */
int cr_http_async_post(cr_http_async *h, const char *url,
                       const char *const *headers, size_t n_headers,
                       const char *body, size_t len, long timeout_ms,
                       cr_http_done_fn done, void *ud);

/* Number of requests accepted whose done has not been called yet. */
size_t cr_http_async_in_flight(const cr_http_async *h);

/* Aborts every request in flight (each done is called now with status 0 and
 * error "cancelled"), releases libcurl and starts closing the uv handles;
 * later posts fail with CR_EINVAL. Run the loop afterwards so the handles
 * finish closing. Idempotent; NULL is a no-op. */
void cr_http_async_close(cr_http_async *h);

/* Frees h (closing it first if needed). If uv handles are still closing, the
 * memory is released by the last close callback, so the loop must still be
 * run once more; normally call it after uv_run drained the loop. NULL is a
 * no-op. */
void cr_http_async_free(cr_http_async *h);

#endif
