/* daemon_int.h: the daemon's private state, shared by daemon.c (lifecycle,
 * loop, signals, reload) and daemon_health.c (scheduled health checks). */
#ifndef CR_DAEMON_INT_H
#define CR_DAEMON_INT_H

#include <stdatomic.h>
#include <uv.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "plugin/plugin_host.h"

typedef struct cr_scheduler cr_scheduler;
typedef struct cr_worker_pool cr_worker_pool;
typedef struct cr_delivery cr_delivery;
typedef struct cr_alerts cr_alerts;
struct cr__run_job;
struct health_job;
struct cr__plugwatch;

/* The local runner (daemon_runner.c). Loop-thread fields unless noted. */
struct cr__runner {
  char runner_id[64]; /* "local" unless set */
  char *data_dir;     /* the store the threads open (copied at start) */
  char *worker_exe;   /* connrun binary for process isolation, or NULL */
  unsigned concurrency, running;
  int64_t lease_ms, retry_base_ms, grace_ms;
  int64_t last_prune_ms;        /* retention pass (hourly) */
  int64_t last_offline_scan_ms; /* remote runners' offline scan */
  int64_t last_expire_ms;       /* expired leases' pass (4 a second) */
  int64_t sched_due_ms;         /* next scheduler pass (0: at the next cycle) */
  cr_scheduler *sched;
  cr_worker_pool *pool; /* thread-safe */
  uv_thread_t *threads;
  unsigned n_threads;
  uv_mutex_t mu; /* guards queue, done, quit */
  uv_cond_t cv;
  struct cr__run_job *queue, *queue_tail, *done;
  int quit;
  atomic_int stop_runs; /* any thread: cancels running executions */
  uv_async_t done_async;
  uv_timer_t tick, grace_timer;
  int sync_inited, handles, started, closed;
};

/* A configuration shared by the loop and in-flight jobs: freed when the last
 * holder lets go (a reload may retire it while checks still use it). */
struct cr__cfg_ref {
  cr_config *cfg;
  atomic_int refs; /* the loop, jobs and API requests hold references */
};

/* Work that must happen once across the instances sharing a store
 * (daemon_cluster.c): each is a duty one instance holds at a time. */
enum cr__duty {
  CR__DUTY_SCHEDULER, /* creating executions of due works */
  CR__DUTY_LEASES,    /* putting back executions whose lease expired */
  CR__DUTY_RUNNERS,   /* remote runners going offline; retries coming due */
  CR__DUTY_ALERTS,    /* evaluating alert rules */
  CR__DUTY_RETENTION, /* pruning old events */
  CR__DUTY_HEALTH,    /* the scheduled health checks */
  CR__N_DUTIES
};

struct cr__cluster {
  char id[128]; /* this instance: host-pid-random */
  int64_t started_at;
  int held[CR__N_DUTIES]; /* as of the last tick */
  int ticked;             /* a tick has run */
  /* Subscriptions (webhook delivery and table exports) are spread over
   * the instances, one duty each: the ids held (cr__malloc'ed), and the
   * configuration the engines run (the running one with only those). */
  char **subs;
  size_t n_subs;
  cr_config sub_cfg;
  struct cr_config_subscription *sub_arr;
  /* On PostgreSQL: news from the other instances (store_listen.h). */
  struct cr_store_listener *listener;
};

struct cr_daemon {
  char *config_path;
  cr_log_fn log;
  void *log_ud;
  int log_min_level;
  int handle_signals;

  struct cr__cfg_ref *cfg; /* current configuration */
  /* The plugins loaded now (a held reference). A rescan swaps it under
   * cfg_mu (loop thread); executions and checks hold the set they started
   * with (daemon_plugins.c). */
  cr_plugin_host *plugins;
  cr_plugin_host *plugins_next;    /* during a reload that installs a set */
  struct cr__plugwatch *plugwatch; /* watch and rescans, loop thread */
  atomic_int rescan_requested;     /* POST /v1/plugins/rescan */
  cr_store *store;

  uv_loop_t loop;
  uv_signal_t sig_int, sig_term, sig_hup;
  uv_timer_t health_timer;
  uv_async_t wakeup;
  atomic_int stop_requested;
  atomic_int reload_requested;
  atomic_int cancel; /* set on stop: in-flight checks give up */
  int stopping;
  int ran; /* cr_daemon_run was called */
  int loop_inited;
  atomic_int running; /* the loop is running: wakeup may be signalled */
  int in_flight;      /* health jobs queued or running */
  /* ids of authorizations with a check in flight: a hash set of
   * CR__BUSY_BUCKETS chains (daemon_health.c), NULL until the first */
  struct cr__busy **busy;
  struct cr__runner runner;
  struct cr__cluster cluster;
  cr_delivery *delivery;            /* webhook exports (loop thread) */
  struct cr_export_engine *exports; /* table exports (a thread of its own) */
  struct cr_batch_engine *batches;  /* batched webhooks (a thread of its own) */
  cr_alerts *alerts;                /* alert rules' state (loop thread) */
  /* The REST API (api/api.h), when api_listen was given. The API's threads
   * take the configuration through cfg_mu (d->cfg is swapped under it). */
  int serve_api;
  char *api_listen; /* override of host.listen, or NULL */
  struct cr_api *api;
  atomic_int api_port;
  uv_mutex_t cfg_mu;
  int cfg_mu_inited;
  /* Read-your-writes for the API (daemon_api.c): a change asks for reload
   * number ++reloads_asked and waits on reload_cond until reloads_done
   * reaches it, or reload_waits_off is set when the daemon stops. All
   * three under cfg_mu. */
  uv_cond_t reload_cond;
  int reload_cond_inited;
  uint64_t reloads_asked, reloads_done;
  int reload_waits_off;
  uv_timer_t tick; /* 1 s: loop liveness for /readyz */
  /* Loop stall: at each prepare (just before the loop waits), the time
   * since the previous one minus the time spent waiting in between
   * (uv_metrics_idle_time) is one iteration's work; the longest since the
   * last read is kept for /metrics. */
  uv_prepare_t stall_prepare;
  uint64_t stall_last_ns, stall_last_idle_ns;
  atomic_ullong loop_stall_ns;
  atomic_llong last_tick_ms;
  atomic_int slots_total, slots_busy;
  atomic_int kick_requested;
  atomic_int api_reload_requested; /* reload without a full health cycle */
  /* Health checks that ended, recorded together in one transaction when
   * the loop is next idle (daemon_health.c). */
  struct health_job *health_done;
  uv_idle_t health_flush;
  int health_flush_inited;
  int64_t alert_cursor;       /* last event id the alert rules evaluated */
  int64_t alerts_followed_ms; /* without rules: the cursor last moved */
  int alerts_stale; /* 1: breach state and cursor to be read from the store;
                     2: the same, the cursor moved to the end (no rules) */
  /* The API objects' generation (cr_store_api_generation) read before the
   * last load: a tick that reads another reloads, so an object created
   * through another instance's API (or the CLI) is applied here too. */
  int64_t api_gen;
  /* The store's connection counters as last logged (on_tick). */
  struct cr_store_conn_counters conn_seen;
  int alerts_in_flight; /* notification jobs on the thread pool */
  int trim_pending;     /* a (re)load happened: trim the heap once idle */
};

/* Reloads the configuration (with the API's objects) against plugins (a
 * new set from a rescan, transferred; NULL: the plugins loaded now). The
 * new set and the new configuration are swapped in together under cfg_mu,
 * so an API request never sees one without the other; a configuration
 * that does not load leaves the running one, with the new set. all_checks:
 * health checks of every authorization after, else only of new ones. On a
 * running daemon objects whose provider cannot serve them are marked
 * unavailable rather than failing the reload (CR_CHECK_DEGRADE). Loop
 * thread. */
void cr__daemon_reload(cr_daemon *d, int all_checks, cr_plugin_host *plugins);

/* Cluster duties (daemon_cluster.c). Takes this instance's id and runs a
 * first tick, so the duties are settled before anything acts on them.
 * Loop thread, before the runner and health checks start. */
void cr__daemon_cluster_start(cr_daemon *d);
/* Heartbeat, and acquires or renews every duty (each second): a duty
 * gained is logged and recorded as an `instance claimed` event; a change
 * of the subscriptions held reconfigures delivery and exports. Loop
 * thread. */
void cr__daemon_cluster_tick(cr_daemon *d);
/* 1 when this instance holds duty now. */
int cr__daemon_duty(const cr_daemon *d, enum cr__duty duty);

/* Fencing: renews duty inside the caller's open store transaction and
 * returns 1 when this instance still holds it, so what the caller writes in
 * that transaction is written only by the holder (another instance may
 * have taken the duty over while this one stalled between ticks: it then
 * stops acting at once). 0 when lost or on a store error. */
int cr__daemon_duty_fence(cr_daemon *d, enum cr__duty duty);
/* Configures the webhook delivery and table export engines with the
 * subscriptions this instance holds (after a reload, or a change of what
 * it holds). Loop thread. */
void cr__daemon_cluster_engines(cr_daemon *d);
/* Releases the duties held (a clean stop), so another instance takes them
 * at once. Loop thread. */
void cr__daemon_cluster_stop(cr_daemon *d);
/* Frees what the cluster state holds (after the engines are gone). */
void cr__daemon_cluster_free(cr_daemon *d);

/* On a PostgreSQL store, listens for the other instances' news: claimable
 * executions wake the local runner and the API's long polls, committed
 * events the delivery and export engines. Elsewhere a no-op. A listener
 * that cannot start is a warning: the instances then find the news on
 * their own ticks. cr__daemon_listen_stop before the engines are freed. */
void cr__daemon_listen_start(cr_daemon *d);
void cr__daemon_listen_stop(cr_daemon *d);

/* New events were committed: kicks the webhook delivery and the table
 * exports. Loop thread. */
void cr__daemon_events_written(cr_daemon *d);

/* After a new plugin set was swapped in (daemon_plugins.c): the scheduler
 * takes the providers' default schedules from it. Loop thread. */
void cr__daemon_plugins_installed(cr_daemon *d);

/* Drop-in plugins (daemon_plugins.c, loop thread): start watching the
 * plugin directories (a directory that cannot be watched is logged, not an
 * error; returns 0 or CR_ENOMEM / CR_EIO), ask for a rescan (reload: reload
 * the configuration after it even when nothing changed, as SIGHUP does;
 * rescans asked for while one runs are merged into one more), stop (close
 * the handles), free. */
int cr__daemon_plugins_start(cr_daemon *d);
void cr__daemon_plugins_rescan(cr_daemon *d, int reload);
void cr__daemon_plugins_stop(cr_daemon *d);
void cr__daemon_plugins_free(cr_daemon *d);

/* Queues a health check of the authorizations of the given providers
 * (names borrowed), e.g. after their plugin changed. Loop thread. */
void cr__daemon_health_cycle_providers(cr_daemon *d, const char *const *names,
                                       size_t n);

/* Frees the set of authorizations with a check in flight. */
void cr__daemon_busy_free(cr_daemon *d);

/* The REST API (daemon_api.c): start (from cr_daemon_run, loop thread;
 * logs and returns the error when it cannot listen), stop (idempotent). */
int cr__daemon_api_start(cr_daemon *d);
void cr__daemon_api_stop(cr_daemon *d);

/* Logs through the daemon's sink when level >= its minimum. */
void cr__daemon_logf(cr_daemon *d, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Takes / releases a reference to a configuration. */
struct cr__cfg_ref *cr__cfg_ref_new(cr_config *cfg);
void cr__cfg_ref_get(struct cr__cfg_ref *r);
void cr__cfg_ref_put(struct cr__cfg_ref *r);

/* Queues a health check of every authorization of the current
 * configuration that has none in flight. Loop thread only. */
void cr__daemon_health_cycle(cr_daemon *d);
/* The same for the authorizations never checked yet (new ones). */
void cr__daemon_health_cycle_new(cr_daemon *d);
/* Starts the recorder of ended checks (loop thread); flush records the
 * ones waiting now (also called on stop), free drops what is left. */
int cr__daemon_health_start(cr_daemon *d);
void cr__daemon_health_flush(cr_daemon *d);
void cr__daemon_health_free(cr_daemon *d);

/* Local runner: start (loop thread, from cr_daemon_run), one scheduling and
 * claiming cycle, stop (begin the graceful stop; the runner's handles close
 * once no execution runs), free (joins the threads). */
int cr__daemon_runner_start(cr_daemon *d);

/* Alerts (daemon_alerts.c, loop thread): start (the stored cursor, set at
 * the current end on the very first start), a scan of the new events by the
 * alerts duty's holder (event rules; error-rate rules of works whose
 * execution ended), free. Notifications go out on the thread pool. */
int cr__daemon_alerts_start(cr_daemon *d);
void cr__daemon_alerts_scan(cr_daemon *d);
void cr__daemon_alerts_free(cr_daemon *d);
void cr__daemon_runner_cycle(cr_daemon *d);
void cr__daemon_runner_stop(cr_daemon *d);
void cr__daemon_runner_free(cr_daemon *d);

#endif
