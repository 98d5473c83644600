/* host_api.h: the host services table handed to plugins (struct
 * cr_host_api) and the per-call context behind the SDK's opaque
 * cr_plugin_ctx.
 *
 * One cr_plugin_ctx accompanies one plugin callback (a health check, a read,
 * a write). It carries who the call is for (authorization id), the redactor
 * that keeps that authorization's secrets out of every output, where logs
 * and records go (sinks, filled by whoever runs the callback), the HTTP
 * settings and counters, the cancel flag and the last error the plugin
 * reported. The default host table's functions read and update it.
 *
 * Threads: the host calls a plugin callback with one ctx on one thread, and
 * the table's functions are called from that thread. Only cr_plugin_ctx_cancel
 * (and the cancelled query) may be used from any thread at any time.
 *
 * HTTP (api->http) uses the libcurl easy interface and BLOCKS the calling
 * thread: plugins run on a worker thread or in a worker process, never on
 * the event loop. libcurl's global init runs once per process
 * (pthread_once) on the first request or cr_host_http_global_init(); it is
 * never cleaned up (process lifetime). HTTP defaults:
 *   - total timeout CR_HOST_HTTP_TIMEOUT_MS (req->timeout_ms overrides it),
 *     connect timeout CR_HOST_HTTP_CONNECT_TIMEOUT_MS;
 *   - responses bodies larger than CR_HOST_HTTP_MAX_BODY bytes are refused
 *     (CR_PLUGIN_ERR_SYSTEM);
 *   - redirects are NOT followed (the plugin sees the 3xx and its Location
 *     header); set http.follow_redirects to follow up to 5, same scheme
 *     family (http/https) only;
 *   - only http:// and https:// URLs; TLS peer and host verification on;
 *   - User-Agent "connrun/<version>" unless the plugin sends its own;
 *   - one easy handle per ctx, so consecutive requests of one callback
 *     reuse connections (keep-alive).
 * api->http_start runs one request at a time in the background, on a
 * thread of the ctx's own (made by the first call, joined by
 * cr_plugin_ctx_cleanup) with a second easy handle: only the transfer runs
 * there; the checks, the error mapping, the counting and the log line
 * happen on the callback's thread, in http_start and http_finish.
 * Counters: every attempted transfer counts one request; errors are
 * transport failures (incl. timeouts and refused/oversized responses) and
 * HTTP 429 and 5xx responses. Other 4xx are the client's problem: they are
 * requests, not errors. A cancelled request counts as a request only.
 * Every request is logged at DEBUG as
 *   "GET https://api.sendgrid.com/v3/scopes -> 200 (12 ms)"
 * with the URL passed through cr_redact_url (query values with sensitive
 * names, userinfo and known secrets hidden).
 */
#ifndef CR_HOST_API_H
#define CR_HOST_API_H

#include <connrun/plugin.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "util/redact.h"

#define CR_HOST_HTTP_TIMEOUT_MS 30000L
#define CR_HOST_HTTP_CONNECT_TIMEOUT_MS 10000L
#define CR_HOST_HTTP_MAX_BODY ((size_t)64 * 1024 * 1024)

/* Receives every log line of a plugin, already redacted (msg is borrowed,
 * valid during the call; control characters replaced by spaces). */
typedef void (*cr_plugin_log_sink)(void *ud, int level,
                                   const char *redacted_msg);

/* Where a callback's output goes. Every entry may be NULL: emit,
 * checkpoint and credentials_update then fail with CR_PLUGIN_ERR_SYSTEM
 * ("this context does not take records" ...), state returns NULL and
 * progress is dropped. Strings passed to the sinks are borrowed (valid
 * during the call). The sink's return values follow the cr_host_api
 * contract (0 or a cr_plugin_result). */
struct cr_plugin_sinks {
  void *ud;
  int (*emit)(void *ud, const char *stream, const char *json, size_t len);
  int (*checkpoint)(void *ud, const char *state_json);
  const char *(*state)(void *ud);
  void (*progress)(void *ud, const char *stream, uint64_t done, uint64_t total);
  int (*credentials_update)(void *ud, const char *credentials_json);
  /* api->record_failed, key and message already redacted (NULL key: "");
   * returns 0 or CR_PLUGIN_ERR_SYSTEM (index out of range). */
  int (*record_failed)(void *ud, size_t index, const char *key,
                       const char *message);
};

/* HTTP settings of a ctx (set by init to the defaults above). */
struct cr_plugin_http_settings {
  long timeout_ms;         /* total per-request timeout when req has none */
  long connect_timeout_ms; /* TCP + TLS connect timeout */
  size_t max_body;         /* largest accepted response body, bytes */
  int follow_redirects;    /* 0: return 3xx to the plugin */
};

/* Request counters of a ctx (see "Counters" above). */
struct cr_plugin_http_counters {
  uint64_t requests;
  uint64_t errors;
  uint64_t bytes_sent;     /* request bodies */
  uint64_t bytes_received; /* response bodies and headers */
};

/* The last error a plugin recorded with api->set_error. */
struct cr_plugin_last_error {
  int result;             /* cr_plugin_result; 0 when none */
  char message[512];      /* redacted copy */
  int64_t retry_after_ms; /* >= 0 */
};

/* The definition of the SDK's opaque type. Fields are public to the core:
 * set the log sink and sinks after cr_plugin_ctx_init and before the
 * callback; read counters and last_error after it returns. */
struct cr_plugin_ctx {
  const char *authorization_id; /* borrowed; may be NULL */
  const cr_redactor *redactor;  /* borrowed; NULL redacts nothing */
  cr_plugin_log_sink log;       /* NULL drops plugin logs */
  void *log_ud;
  int log_min_level; /* lines below it are dropped unformatted */
  struct cr_plugin_sinks sinks;
  atomic_int cancel;
  const atomic_int *cancel_also; /* borrowed, may be NULL: an outside flag
                                    (e.g. shutdown) that cancels too */
  struct cr_plugin_http_settings http;
  struct cr_plugin_http_counters counters;
  struct cr_plugin_last_error last_error;
  void *curl;                   /* private: the reused libcurl easy handle */
  struct cr__http_async *async; /* private: api->http_start's request */
};

/* The host table with the functions below (static storage, never freed):
 * struct_size = sizeof(struct cr_host_api), ABI major/minor of plugin.h,
 * alloc/free = cr__malloc/cr__free. */
const struct cr_host_api *cr_host_api_default(void);

/* Initialises a ctx: no sinks, log_min_level DEBUG, HTTP defaults, zero
 * counters, no error, not cancelled. authorization_id and redactor are
 * borrowed and must outlive the ctx. Allocates nothing. Returns 0 or
 * CR_EINVAL (ctx NULL). */
int cr_plugin_ctx_init(cr_plugin_ctx *ctx, const char *authorization_id,
                       const cr_redactor *redactor);

/* Releases what the ctx acquired (the HTTP handles and their connections;
 * a background request still in flight is abandoned, its thread joined).
 * The ctx may be initialised again afterwards. NULL is a no-op. */
void cr_plugin_ctx_cleanup(cr_plugin_ctx *ctx);

/* Sets the log sink (fn may be NULL to drop logs). ud is borrowed. */
void cr_plugin_ctx_set_log(cr_plugin_ctx *ctx, cr_plugin_log_sink fn, void *ud);

/* Copies the sink table (s may be NULL to clear it). s->ud is borrowed. */
void cr_plugin_ctx_set_sinks(cr_plugin_ctx *ctx,
                             const struct cr_plugin_sinks *s);

/* Asks the plugin to stop: api->cancelled turns true, a running HTTP
 * request is aborted within about a second (CR_PLUGIN_ERR_CANCELLED) and
 * emit returns CR_PLUGIN_ERR_CANCELLED. Safe from any thread. */
void cr_plugin_ctx_cancel(cr_plugin_ctx *ctx);

/* Initialises libcurl once for the process (also done lazily by the first
 * request). Returns 0 or CR_EHTTP. Safe from any thread. */
int cr_host_http_global_init(void);

#endif
