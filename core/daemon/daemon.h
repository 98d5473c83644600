/* daemon.h: the connrun daemon: configuration, plugins, store and the libuv
 * loop that runs scheduled authorization health checks, reloads on SIGHUP
 * and stops cleanly on SIGINT/SIGTERM.
 *
 * Lifecycle: cr_daemon_new (load and check the configuration, load plugins,
 * open the store, apply the configuration), cr_daemon_run (blocks until
 * stopped), cr_daemon_free. Health checks run on the libuv thread pool; their
 * results, events and activity metrics are written on the loop thread.
 */
#ifndef CR_DAEMON_H
#define CR_DAEMON_H

#include "config/config.h"
#include "config/diag.h"
#include "plugin/plugin_host.h"
#include "store/store.h"
#include "util/log.h"

typedef struct cr_daemon cr_daemon;

struct cr_daemon_options {
  const char *config_path; /* borrowed; copied by cr_daemon_new */
  cr_log_fn log;           /* may be NULL; called from the loop thread and
                              from thread-pool threads: must be thread-safe */
  void *log_ud;
  int log_min_level;  /* enum cr_log_level; lines below are dropped */
  int handle_signals; /* non-zero: SIGINT/SIGTERM stop, SIGHUP reloads */
  /* The connrun binary that runs `connrun worker` for works with process
   * isolation (borrowed; copied). NULL: such works fail with a config
   * error. */
  const char *worker_exe;
  const char *runner_id;     /* claims as this runner; NULL = "local" */
  int64_t shutdown_grace_ms; /* running executions get this long to end
                                on stop; 0 = CR_DAEMON_GRACE_MS */
  int64_t retry_base_ms;     /* retry backoff base; 0 = the default */
  int64_t lease_ms;          /* claim lease; 0 = the default */
  /* Non-zero: serve the REST API, on api_listen ("HOST:PORT", borrowed;
   * copied) or, when that is NULL, on host.listen. Port 0 picks a free
   * port (see cr_daemon_api_port). */
  int serve_api;
  const char *api_listen;
};

/* Default grace period for running executions on stop. */
#define CR_DAEMON_GRACE_MS INT64_C(30000)

/* Loads and checks the configuration, loads its plugins (refused ones are
 * logged as warnings), opens the store (host.store, else SQLite under
 * host.data_dir) and applies the configuration (created/updated/deleted
 * events, actor "config").
 * Configuration problems are appended to diags (borrowed, caller-owned).
 * Returns 0, CR_ECONFIG (see diags), CR_ENOENT/CR_EIO (config unreadable),
 * CR_ENOMEM, or a store error. *out is set only on success; free with
 * cr_daemon_free. */
int cr_daemon_new(const struct cr_daemon_options *o, cr_daemon **out,
                  cr_diags *diags);

/* Runs the loop: a health check of every authorization at start and every
 * host.health_check_interval after, until cr_daemon_stop or a stop signal.
 * Returns 0 after a clean stop, or a negative error. Call once. */
int cr_daemon_run(cr_daemon *d);

/* Asks the loop to stop: no new checks start, running checks are cancelled
 * and waited for. Thread-safe and async-signal-safe; callable before run. */
void cr_daemon_stop(cr_daemon *d);

/* Asks the loop to reload the configuration (as SIGHUP does): an invalid new
 * configuration is logged and the running one kept. Thread-safe. */
void cr_daemon_reload(cr_daemon *d);

/* The daemon's store (borrowed; owned by the daemon). */
cr_store *cr_daemon_store(cr_daemon *d);

/* The configuration in use (borrowed; replaced by a reload on the loop
 * thread, so only use it from that thread or before cr_daemon_run). */
const cr_config *cr_daemon_config(const cr_daemon *d);

/* The loaded plugins (borrowed; valid until cr_daemon_free). */
const cr_plugin_host *cr_daemon_plugins(const cr_daemon *d);

/* The port the REST API listens on, once cr_daemon_run has started it
 * (0 before, or without an API). Thread-safe. */
int cr_daemon_api_port(const cr_daemon *d);

/* Frees the daemon. Must not be called while cr_daemon_run runs. NULL is a
 * no-op. */
void cr_daemon_free(cr_daemon *d);

#endif
