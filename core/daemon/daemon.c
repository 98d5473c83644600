/* daemon.c: the daemon's lifecycle: loading configuration and plugins,
 * opening the store, applying the configuration, the libuv loop, signals
 * (SIGINT/SIGTERM stop, SIGHUP reloads) and the health-check timer. */
#include "daemon/daemon_int.h"

#include "events/batch_delivery.h"
#include "export/export_engine.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "control/apply.h"
#include "control/ctl_objects.h"
#include "events/delivery.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

void cr__daemon_logf(cr_daemon *d, int level, const char *fmt, ...) {
  if (d->log == NULL || level < d->log_min_level)
    return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  d->log(d->log_ud, level, buf);
}

struct cr__cfg_ref *cr__cfg_ref_new(cr_config *cfg) {
  struct cr__cfg_ref *r = cr__calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  r->cfg = cfg;
  atomic_init(&r->refs, 1);
  return r;
}

void cr__cfg_ref_get(struct cr__cfg_ref *r) { atomic_fetch_add(&r->refs, 1); }

void cr__cfg_ref_put(struct cr__cfg_ref *r) {
  if (r == NULL || atomic_fetch_sub(&r->refs, 1) > 1)
    return;
  cr_config_free(r->cfg);
  cr__free(r);
}

static void refused_plugin(void *ud, const char *path, const char *reason) {
  cr__daemon_logf(ud, CR_LOG_WARN, "refused plugin %s: %s", path, reason);
}

/* Loads and checks a configuration against the loaded plugins, with the
 * objects created through the API once the store is open. */
static int load_config(cr_daemon *d, cr_config **out, cr_diags *diags) {
  cr_config *cfg = NULL;
  const cr_plugin_host *plugins =
      d->plugins_next != NULL ? d->plugins_next : d->plugins;
  if (d->store != NULL && plugins != NULL) {
    cr_store_api_generation(d->store, &d->api_gen); /* before the objects */
    /* Strict at start; once running, an object whose provider went away
     * or changed its schemas is marked, not the whole reload refused. */
    int rc = cr_ctl_config_load(d->store, d->config_path, plugins,
                                d->ran ? CR_CHECK_DEGRADE : 0, &cfg, diags);
    if (rc != 0) {
      cr_config_free(cfg);
      return rc;
    }
    /* Loaded and checked: its positions and trees are 3/4 of its size. */
    if ((rc = cr_config_compact(cfg)) != 0) {
      cr_config_free(cfg);
      return rc;
    }
    *out = cfg;
    return 0;
  }
  int rc = cr_config_load(d->config_path, &cfg, diags);
  if (rc == 0 && d->plugins != NULL)
    rc = cr_config_check_plugins(cfg, d->plugins, diags);
  if (rc != 0) {
    cr_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

/* Once the store is open: when it holds objects created through the API,
 * the configuration is loaded again with them. */
static int add_api_objects(cr_daemon *d, cr_diags *diags) {
  struct cr_api_object_rec *o = NULL;
  size_t n = 0;
  cr_store_api_generation(d->store, &d->api_gen);
  int rc = cr_store_api_object_list(d->store, &o, &n);
  cr_api_object_rec_free_list(o, n);
  if (rc != 0 || n == 0)
    return rc;
  cr_config *cfg = NULL;
  if ((rc = load_config(d, &cfg, diags)) != 0)
    return rc;
  struct cr__cfg_ref *ref = cr__cfg_ref_new(cfg);
  if (ref == NULL) {
    cr_config_free(cfg);
    return CR_ENOMEM;
  }
  cr__cfg_ref_put(d->cfg);
  d->cfg = ref;
  d->trim_pending = 1;
  return 0;
}

static int load_plugins(cr_daemon *d, const cr_config *cfg) {
  int rc = cr_plugin_host_new(NULL, &d->plugins);
  for (size_t i = 0; rc == 0 && i < cfg->host.n_plugin_dirs; i++) {
    int r = cr_plugin_host_load_dir(d->plugins, cfg->host.plugin_dirs[i],
                                    refused_plugin, d);
    if (r == CR_ENOMEM)
      rc = r;
  }
  return rc;
}

static int apply(cr_daemon *d, const cr_config *cfg, const char *actor) {
  struct cr_apply_stats st;
  char err[256] = "";
  int rc = cr_apply_config(d->store, cfg, actor, &st, err, sizeof err);
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR, "cannot apply configuration: %s", err);
    return rc;
  }
  cr__daemon_logf(d, CR_LOG_INFO,
                  "configuration applied: %d created, %d updated, %d "
                  "deleted, %d unchanged",
                  st.created, st.updated, st.deleted, st.unchanged);
  return 0;
}

static int open_all(cr_daemon *d, cr_diags *diags) {
  cr_config *cfg = NULL;
  int rc = cr_config_load(d->config_path, &cfg, diags);
  if (rc != 0) {
    cr_config_free(cfg);
    return rc;
  }
  if ((d->cfg = cr__cfg_ref_new(cfg)) == NULL) {
    cr_config_free(cfg);
    return CR_ENOMEM;
  }
  if ((rc = load_plugins(d, cfg)) != 0)
    return rc;
  if ((rc = cr_config_check_plugins(cfg, d->plugins, diags)) != 0 ||
      (rc = cr_config_compact(cfg)) != 0)
    return rc;
  char err[512] = "";
  rc = cr_store_open(cr_config_store_at(cfg), &d->store, err, sizeof err);
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR, "cannot open store in %s: %s",
                    cr_config_store_label(cfg), err);
    return rc;
  }
  if ((rc = add_api_objects(d, diags)) != 0)
    return rc;
  /* At start the whole configuration is applied in one transaction (each
   * object keeps its own savepoint): 20,000 objects are one commit, not
   * 20,000. */
  if ((rc = cr_store_begin(d->store)) != 0)
    return rc;
  rc = apply(d, d->cfg->cfg, "config");
  return rc == 0 ? cr_store_commit(d->store)
                 : (cr_store_rollback(d->store), rc);
}

int cr_daemon_new(const struct cr_daemon_options *o, cr_daemon **out,
                  cr_diags *diags) {
  if (o == NULL || o->config_path == NULL || out == NULL || diags == NULL)
    return CR_EINVAL;
  cr__alloc_tune_process();
  cr_daemon *d = cr__calloc(1, sizeof *d);
  if (d == NULL)
    return CR_ENOMEM;
  d->log = o->log;
  d->log_ud = o->log_ud;
  d->log_min_level = o->log_min_level;
  d->handle_signals = o->handle_signals;
  struct cr__runner *rn = &d->runner;
  snprintf(rn->runner_id, sizeof rn->runner_id, "%s",
           o->runner_id ? o->runner_id : "local");
  rn->grace_ms =
      o->shutdown_grace_ms > 0 ? o->shutdown_grace_ms : CR_DAEMON_GRACE_MS;
  rn->retry_base_ms = o->retry_base_ms;
  rn->lease_ms = o->lease_ms > 0 ? o->lease_ms : INT64_C(60000);
  if (o->worker_exe != NULL &&
      (rn->worker_exe = cr__strdup(o->worker_exe)) == NULL) {
    cr__free(d);
    return CR_ENOMEM;
  }
  int rc = (d->config_path = cr__strdup(o->config_path)) ? 0 : CR_ENOMEM;
  d->serve_api = o->serve_api;
  if (rc == 0 && o->api_listen != NULL &&
      (d->api_listen = cr__strdup(o->api_listen)) == NULL)
    rc = CR_ENOMEM;
  if (rc == 0)
    rc = uv_mutex_init(&d->cfg_mu) == 0 ? 0 : CR_ENOMEM;
  d->cfg_mu_inited = rc == 0;
  if (rc == 0)
    rc = uv_cond_init(&d->reload_cond) == 0 ? 0 : CR_ENOMEM;
  d->reload_cond_inited = rc == 0;
  if (rc == 0)
    rc = open_all(d, diags);
  if (rc == 0)
    rc = uv_loop_init(&d->loop) == 0 ? 0 : CR_EIO;
  if (rc == 0) /* the loop stall figure of /metrics */
    uv_loop_configure(&d->loop, UV_METRICS_IDLE_TIME);
  if (rc != 0) {
    cr_daemon_free(d);
    return rc;
  }
  d->loop_inited = 1;
  *out = d;
  return 0;
}

/* Swaps in d->plugins_next (if any) with cfg (if not NULL) under cfg_mu:
 * an API request sees both or neither. */
static void swap_in(cr_daemon *d, struct cr__cfg_ref *ref) {
  cr_plugin_host *neu = d->plugins_next, *old_plugins = NULL;
  struct cr__cfg_ref *old = NULL;
  d->plugins_next = NULL;
  uv_mutex_lock(&d->cfg_mu);
  if (ref != NULL) {
    old = d->cfg;
    d->cfg = ref;
    d->trim_pending = 1;
    d->runner.sched_due_ms = 0; /* a new configuration: schedule at once */
  }
  if (neu != NULL) {
    old_plugins = d->plugins;
    d->plugins = neu;
  }
  uv_mutex_unlock(&d->cfg_mu);
  cr__cfg_ref_put(old);
  cr_plugin_host_free(old_plugins);
  if (neu != NULL)
    cr__daemon_plugins_installed(d);
}

void cr__daemon_reload(cr_daemon *d, int all_checks, cr_plugin_host *plugins) {
  d->plugins_next = plugins;
  cr_diags diags;
  cr_diags_init(&diags);
  cr_config *cfg = NULL;
  /* Reading the API's objects and applying them is one write transaction:
   * an object the API creates meanwhile waits, rather than being read
   * missing and then deleted from the store as "no longer configured". */
  int locked = cr_store_begin(d->store) == 0;
  int rc = load_config(d, &cfg, &diags);
  cr_diags_sort(&diags);
  for (size_t i = 0; i < diags.count; i++) {
    char line[1024];
    cr_diag_format(&diags.items[i], line, sizeof line);
    cr__daemon_logf(d,
                    diags.items[i].severity == CR_DIAG_ERROR ? CR_LOG_ERROR
                                                             : CR_LOG_WARN,
                    "%s", line);
  }
  cr_diags_free(&diags);
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR,
                    "reload: configuration %s is invalid (%s); keeping the "
                    "running one",
                    d->config_path, cr_strerror(rc));
    if (locked)
      cr_store_rollback(d->store);
    swap_in(d, NULL); /* new plugins, the running configuration */
    return;
  }
  struct cr__cfg_ref *ref = cr__cfg_ref_new(cfg);
  if (ref == NULL) {
    cr_config_free(cfg);
    if (locked)
      cr_store_rollback(d->store);
    swap_in(d, NULL);
    return;
  }
  /* Applied and committed before it is swapped in: an API request that
   * sees the new configuration finds its objects in the store. */
  rc = apply(d, cfg, "config");
  if (locked)
    rc =
        rc == 0 ? cr_store_commit(d->store) : (cr_store_rollback(d->store), rc);
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR,
                    "reload: keeping the running configuration");
    cr__cfg_ref_put(ref);
    swap_in(d, NULL);
    return;
  }
  swap_in(d, ref);
  cr__daemon_logf(d, CR_LOG_INFO, "reload: %s", d->config_path);
  cr__daemon_cluster_engines(d);
  if (all_checks)
    cr__daemon_health_cycle(d);
  else
    cr__daemon_health_cycle_new(d);
}

static void close_cb(uv_handle_t *h) { (void)h; }

/* Wakes the API requests waiting for reloads up to `asked` (daemon_api.c);
 * with off, all of them and any later one: the daemon is stopping. */
static void reloads_release(cr_daemon *d, int off) {
  uv_mutex_lock(&d->cfg_mu);
  d->reload_waits_off |= off;
  uv_cond_broadcast(&d->reload_cond);
  uv_mutex_unlock(&d->cfg_mu);
}

static void reloads_finished(cr_daemon *d, uint64_t asked) {
  uv_mutex_lock(&d->cfg_mu);
  if (asked > d->reloads_done)
    d->reloads_done = asked;
  uv_mutex_unlock(&d->cfg_mu);
  reloads_release(d, 0);
}

static void begin_stop(cr_daemon *d) {
  if (d->stopping)
    return;
  d->stopping = 1;
  atomic_store(&d->cancel, 1);
  cr__daemon_logf(d, CR_LOG_INFO, "stopping (%d health checks in flight)",
                  d->in_flight);
  uv_close((uv_handle_t *)&d->health_timer, close_cb);
  uv_close((uv_handle_t *)&d->wakeup, close_cb);
  uv_close((uv_handle_t *)&d->tick, close_cb);
  uv_close((uv_handle_t *)&d->stall_prepare, close_cb);
  cr__daemon_health_flush(d);
  if (d->health_flush_inited)
    uv_close((uv_handle_t *)&d->health_flush, close_cb);
  reloads_release(d, 1);
  cr__daemon_api_stop(d);
  cr__daemon_plugins_stop(d);
  cr__daemon_runner_stop(d);
  cr__daemon_cluster_stop(d);
  cr_delivery_close(d->delivery);
  if (d->handle_signals) {
    uv_close((uv_handle_t *)&d->sig_int, close_cb);
    uv_close((uv_handle_t *)&d->sig_term, close_cb);
    uv_close((uv_handle_t *)&d->sig_hup, close_cb);
  }
}

static void on_wakeup(uv_async_t *a) {
  cr_daemon *d = a->data;
  if (atomic_exchange(&d->reload_requested, 0) && !d->stopping)
    cr__daemon_plugins_rescan(d, 1);
  if (atomic_exchange(&d->api_reload_requested, 0) && !d->stopping) {
    uv_mutex_lock(&d->cfg_mu);
    uint64_t asked = d->reloads_asked; /* all changes committed before */
    uv_mutex_unlock(&d->cfg_mu);
    cr__daemon_reload(d, 0, NULL);
    reloads_finished(d, asked);
  }
  if (atomic_exchange(&d->rescan_requested, 0) && !d->stopping)
    cr__daemon_plugins_rescan(d, 0);
  if (atomic_exchange(&d->kick_requested, 0) && !d->stopping)
    cr__daemon_runner_cycle(d);
  if (atomic_load(&d->stop_requested))
    begin_stop(d);
}

static void on_signal(uv_signal_t *s, int signum) {
  cr_daemon *d = s->data;
  if (signum == SIGHUP) {
    cr__daemon_logf(d, CR_LOG_INFO,
                    "SIGHUP: rescanning plugins, reloading the configuration");
    cr__daemon_plugins_rescan(d, 1);
    return;
  }
  cr__daemon_logf(d, CR_LOG_INFO, "%s received",
                  signum == SIGINT ? "SIGINT" : "SIGTERM");
  begin_stop(d);
}

static void on_health_timer(uv_timer_t *t) { cr__daemon_health_cycle(t->data); }

static int start_signal(cr_daemon *d, uv_signal_t *s, int signum) {
  int rc = uv_signal_init(&d->loop, s);
  s->data = d;
  return rc == 0 ? uv_signal_start(s, on_signal, signum) : rc;
}

static int start_delivery(cr_daemon *d) {
  struct cr_delivery_opts o = {.loop = &d->loop,
                               .store = d->store,
                               .data_dir = cr_config_store_at(d->cfg->cfg),
                               .log = d->log,
                               .log_ud = d->log_ud,
                               .log_min_level = d->log_min_level};
  int rc = cr_delivery_new(&o, &d->delivery);
  struct cr_export_opts eo = {.data_dir = cr_config_store_at(d->cfg->cfg),
                              .log = d->log,
                              .log_ud = d->log_ud,
                              .log_min_level = d->log_min_level};
  if (rc == 0)
    rc = cr_export_engine_new(&eo, &d->exports);
  struct cr_batch_opts bo = {.data_dir = cr_config_store_at(d->cfg->cfg),
                             .log = d->log,
                             .log_ud = d->log_ud,
                             .log_min_level = d->log_min_level};
  if (rc == 0)
    rc = cr_batch_engine_new(&bo, &d->batches);
  if (rc == 0)
    cr__daemon_cluster_engines(d); /* the subscriptions this instance holds */
  return rc;
}

void cr__daemon_events_written(cr_daemon *d) {
  cr_delivery_kick(d->delivery);
  cr_export_engine_kick(d->exports);
  cr_batch_engine_kick(d->batches);
}

/* Gives the memory freed after a (re)load and its health checks back to
 * the system once they are over: loading 10,000 authorizations and works
 * leaves freed but unreturned heap behind (13 MiB of 91 MiB measured). */
static void trim_after_load(cr_daemon *d) {
#ifdef __GLIBC__
  if (d->trim_pending && d->in_flight == 0 && d->health_done == NULL) {
    d->trim_pending = 0;
    malloc_trim(0);
  }
#else
  (void)d;
#endif
}

/* Reloads when the API objects changed since the last load: through
 * another instance sharing the store, or the CLI writing it. */
static void api_objects_check(cr_daemon *d) {
  int64_t gen = 0;
  if (!d->stopping && cr_store_api_generation(d->store, &gen) == 0 &&
      gen != d->api_gen) {
    atomic_store(&d->api_reload_requested, 1);
    uv_async_send(&d->wakeup);
  }
}

/* Logs what happened to the store's connections since the last tick: a
 * retry is never silent. */
static void conn_report(cr_daemon *d) {
  struct cr_store_conn_counters now, *was = &d->conn_seen;
  cr_store_conn_counters(&now);
  if (now.reconnects != was->reconnects || now.retries != was->retries ||
      now.lost_statements != was->lost_statements)
    cr__daemon_logf(d, CR_LOG_WARN,
                    "store: %" PRIu64 " reconnection(s), %" PRIu64
                    " statement(s) retried, %" PRIu64
                    " failed on a lost connection since the last report",
                    now.reconnects - was->reconnects,
                    now.retries - was->retries,
                    now.lost_statements - was->lost_statements);
  *was = now;
}

static void on_tick(uv_timer_t *t) {
  cr_daemon *d = t->data;
  conn_report(d);
  if (d->cluster.ticked) /* the first tick ran at start */
    cr__daemon_cluster_tick(d);
  api_objects_check(d);
  trim_after_load(d);
  atomic_store(&d->last_tick_ms, cr__now_ms());
  atomic_store(&d->slots_total, (int)d->runner.concurrency);
  atomic_store(&d->slots_busy, (int)d->runner.running);
}

static void on_prepare(uv_prepare_t *p) {
  cr_daemon *d = p->data;
  uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(&d->loop);
  if (d->stall_last_ns != 0) {
    uint64_t busy = (now - d->stall_last_ns) - (idle - d->stall_last_idle_ns);
    if (busy > atomic_load(&d->loop_stall_ns))
      atomic_store(&d->loop_stall_ns, busy);
  }
  d->stall_last_ns = now;
  d->stall_last_idle_ns = idle;
}

static int start_handles(cr_daemon *d) {
  cr__daemon_cluster_start(d); /* duties settled before anything acts */
  int rc = uv_prepare_init(&d->loop, &d->stall_prepare);
  d->stall_prepare.data = d;
  if (rc == 0)
    rc = uv_prepare_start(&d->stall_prepare, on_prepare);
  if (rc == 0)
    rc = uv_async_init(&d->loop, &d->wakeup, on_wakeup);
  d->wakeup.data = d;
  if (rc == 0)
    rc = uv_timer_init(&d->loop, &d->tick);
  d->tick.data = d;
  if (rc == 0)
    rc = uv_timer_start(&d->tick, on_tick, 0, 1000);
  if (rc == 0)
    rc = cr__daemon_health_start(d);
  if (rc == 0)
    rc = uv_timer_init(&d->loop, &d->health_timer);
  d->health_timer.data = d;
  uint64_t every = (uint64_t)d->cfg->cfg->host.health_check_interval_ms;
  if (rc == 0)
    rc = uv_timer_start(&d->health_timer, on_health_timer, 0, every);
  if (rc == 0)
    rc = cr__daemon_runner_start(d);
  if (rc == 0)
    rc = start_delivery(d);
  if (rc == 0)
    cr__daemon_listen_start(d);
  if (rc == 0)
    rc = cr__daemon_alerts_start(d);
  if (rc == 0)
    rc = cr__daemon_plugins_start(d);
  if (rc == 0 && d->handle_signals) {
    rc = start_signal(d, &d->sig_int, SIGINT);
    if (rc == 0)
      rc = start_signal(d, &d->sig_term, SIGTERM);
    if (rc == 0)
      rc = start_signal(d, &d->sig_hup, SIGHUP);
  }
  return rc == 0 ? 0 : CR_EIO;
}

int cr_daemon_run(cr_daemon *d) {
  if (d == NULL || d->ran)
    return CR_EINVAL;
  d->ran = 1;
  int rc = start_handles(d);
  if (rc != 0)
    return rc;
  atomic_store(&d->running, 1);
  const cr_config *cfg = d->cfg->cfg;
  cr__daemon_logf(d, CR_LOG_INFO,
                  "serving: %zu authorizations, %zu works, %zu plugins; "
                  "store %s; health checks every %lld s",
                  cfg->n_auths, cfg->n_works, cr_plugin_host_count(d->plugins),
                  cr_config_store_label(cfg),
                  (long long)(cfg->host.health_check_interval_ms / 1000));
  if (rc == 0 && d->serve_api)
    rc = cr__daemon_api_start(d);
  if (rc != 0) {
    begin_stop(d);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    atomic_store(&d->running, 0);
    return rc;
  }
  if (atomic_load(&d->stop_requested))
    begin_stop(d);
  uv_run(&d->loop, UV_RUN_DEFAULT);
  atomic_store(&d->running, 0);
  cr__daemon_logf(d, CR_LOG_INFO, "stopped");
  return 0;
}

void cr_daemon_stop(cr_daemon *d) {
  atomic_store(&d->stop_requested, 1);
  if (atomic_load(&d->running))
    uv_async_send(&d->wakeup);
}

void cr_daemon_reload(cr_daemon *d) {
  atomic_store(&d->reload_requested, 1);
  if (atomic_load(&d->running))
    uv_async_send(&d->wakeup);
}

cr_store *cr_daemon_store(cr_daemon *d) { return d->store; }

const cr_config *cr_daemon_config(const cr_daemon *d) { return d->cfg->cfg; }

const cr_plugin_host *cr_daemon_plugins(const cr_daemon *d) {
  return d->plugins;
}

void cr_daemon_free(cr_daemon *d) {
  if (d == NULL)
    return;
  cr__daemon_listen_stop(d);
  cr__daemon_runner_free(d);
  cr_delivery_free(d->delivery);
  cr_export_engine_free(d->exports);
  cr_batch_engine_free(d->batches);
  cr__daemon_cluster_free(d);
  cr__daemon_alerts_free(d);
  if (d->loop_inited)
    uv_loop_close(&d->loop);
  cr_store_close(d->store);
  cr__daemon_api_stop(d);
  cr__daemon_health_free(d);
  cr__daemon_plugins_free(d);
  cr__cfg_ref_put(d->cfg);
  if (d->cfg_mu_inited)
    uv_mutex_destroy(&d->cfg_mu);
  if (d->reload_cond_inited)
    uv_cond_destroy(&d->reload_cond);
  cr__free(d->api_listen);
  cr_plugin_host_free(d->plugins);
  cr__daemon_busy_free(d);
  cr__free(d->config_path);
  cr__free(d);
}
