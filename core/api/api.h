/* api.h: the REST API server (the control plane's front door): libmicrohttpd
 * on threads of its own, bearer tokens with scopes, JSON bodies and errors,
 * the /v1 resources, /healthz, /readyz, /metrics (Prometheus) and
 * /v1/openapi.json.
 *
 * Threads: libmicrohttpd runs `host.api.threads` threads, each an epoll loop
 * over many connections, so a slow client (slowloris, a client that never
 * reads) holds a connection slot until host.api.timeout, never a thread. No
 * request touches the daemon's libuv loop: handlers use store connections of
 * the server's own and ask the daemon for what only it can do through the
 * hooks below (all thread-safe).
 *
 * Ownership: everything passed in cr_api_options is borrowed and must outlive
 * the server, except what the hooks return.
 */
#ifndef CR_API_H
#define CR_API_H

#include <stdint.h>

#include "config/config.h"
#include "plugin/plugin_host.h"
#include "util/log.h"

typedef struct cr_api cr_api;

/* What the server asks of its host (the daemon). Every hook is called from
 * server threads and must be thread-safe. */
struct cr_api_hooks {
  void *ud;
  /* The configuration in force: a held reference (*handle, released with
   * config_release) to a config that stays valid until released. */
  const cr_config *(*config_acquire)(void *ud, void **handle);
  void (*config_release)(void *ud, void *handle);
  /* The plugins loaded now (they change when plugins are dropped in): a
   * held reference, released with cr_plugin_host_free. NULL: the server
   * uses options.plugins throughout. */
  cr_plugin_host *(*plugins_acquire)(void *ud);
  /* Rescan the plugin directories now (POST /v1/plugins/rescan). NULL:
   * the route answers 501. */
  void (*plugins_rescan)(void *ud);
  /* Something changed that the runner should look at now (a new execution
   * was created, one was cancelled). */
  void (*kick)(void *ud);
  /* API-created objects changed: re-read them (as a reload does). */
  void (*reload)(void *ud);
  /* 1 when the loop turned within the last few seconds. */
  int (*loop_alive)(void *ud);
  /* The local runner's numbers for /v1/runners and /metrics. */
  void (*runner_slots)(void *ud, int *total, int *busy);
  /* The longest stretch (microseconds) the host's event loop spent on one
   * iteration's work, not waiting, since the previous call (which it
   * resets). NULL: not reported. */
  uint64_t (*loop_stall_us)(void *ud);
};

struct cr_api_options {
  const char *listen;   /* "HOST:PORT" (port 0: a free one); borrowed */
  const char *data_dir; /* the store the server opens (borrowed) */
  const cr_plugin_host *plugins; /* borrowed; without plugins_acquire */
  const char *runner_id;         /* the local runner's id (borrowed) */
  struct cr_api_hooks hooks;
  cr_log_fn log; /* may be NULL; must be thread-safe */
  void *log_ud;
  int log_min_level;
};

/* Starts a server with the limits, tokens and TLS settings of cfg's host
 * section (borrowed: read during the call only; tokens are re-read through
 * config_acquire on every request, so a reload changes them). Refuses a
 * non-loopback listen address without TLS unless host.allow_insecure_http.
 * Returns 0 and *out (free with cr_api_free), or CR_EINVAL (bad address,
 * insecure listen refused: message in errbuf), CR_EIO (cannot bind, TLS files
 * unreadable), CR_ENOMEM, or a store error. errbuf (caller-owned, may be
 * NULL) gets a one-line reason. */
int cr_api_start(const struct cr_api_options *o, const cr_config *cfg,
                 cr_api **out, char *errbuf, size_t errlen);

/* The TCP port the server listens on (useful with port 0). */
int cr_api_port(const cr_api *a);

/* Notes that new events may exist, waking Server-Sent Event streams.
 * Thread-safe; cheap when nobody streams. */
void cr_api_events_notify(cr_api *a);

/* Stops accepting, ends open connections and frees the server. NULL is a
 * no-op. */
void cr_api_free(cr_api *a);

#endif
