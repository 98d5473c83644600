/* daemon_api.c: the daemon's REST API: starting and stopping the server
 * (api/api.h) and the hooks it calls from its own threads: the current
 * configuration and the plugins (references taken under cfg_mu), a kick
 * of the runner, a plugin rescan, a reload, the loop's liveness and the local
 * runner's slots. */
#include "daemon/daemon_int.h"

#include "api/api.h"
#include "util/clock.h"
#include "util/error.h"

static const cr_config *cfg_acquire(void *ud, void **handle) {
  cr_daemon *d = ud;
  uv_mutex_lock(&d->cfg_mu);
  struct cr__cfg_ref *r = d->cfg;
  cr__cfg_ref_get(r);
  uv_mutex_unlock(&d->cfg_mu);
  *handle = r;
  return r->cfg;
}

static void cfg_release(void *ud, void *handle) {
  (void)ud;
  cr__cfg_ref_put(handle);
}

static cr_plugin_host *plugins_acquire(void *ud) {
  cr_daemon *d = ud;
  uv_mutex_lock(&d->cfg_mu);
  cr_plugin_host *h = cr_plugin_host_retain(d->plugins);
  uv_mutex_unlock(&d->cfg_mu);
  return h;
}

static void plugins_rescan(void *ud) {
  cr_daemon *d = ud;
  atomic_store(&d->rescan_requested, 1);
  if (atomic_load(&d->running))
    uv_async_send(&d->wakeup);
}

static void kick(void *ud) {
  cr_daemon *d = ud;
  atomic_store(&d->kick_requested, 1);
  if (atomic_load(&d->running))
    uv_async_send(&d->wakeup);
}

/* The API changed an object: asks the loop to reload and waits (10 s at
 * most) until a configuration read after the change is swapped in, so that
 * a client's next request sees what it just wrote (read-your-writes). Runs
 * on an API thread, never on the loop. */
static void reload(void *ud) {
  cr_daemon *d = ud;
  uv_mutex_lock(&d->cfg_mu);
  uint64_t ticket = ++d->reloads_asked;
  uv_mutex_unlock(&d->cfg_mu);
  atomic_store(&d->api_reload_requested, 1);
  if (!atomic_load(&d->running))
    return;
  uv_async_send(&d->wakeup);
  uint64_t deadline = uv_hrtime() + UINT64_C(10000000000);
  uv_mutex_lock(&d->cfg_mu);
  while (d->reloads_done < ticket && !d->reload_waits_off) {
    uint64_t now = uv_hrtime();
    if (now >= deadline ||
        uv_cond_timedwait(&d->reload_cond, &d->cfg_mu, deadline - now) != 0)
      break;
  }
  uv_mutex_unlock(&d->cfg_mu);
}

static int loop_alive(void *ud) {
  cr_daemon *d = ud;
  return atomic_load(&d->running) && !atomic_load(&d->stop_requested) &&
         cr__now_ms() - atomic_load(&d->last_tick_ms) < 5000;
}

static uint64_t loop_stall_us(void *ud) {
  cr_daemon *d = ud;
  return (uint64_t)atomic_exchange(&d->loop_stall_ns, 0) / 1000u;
}

static void runner_slots(void *ud, int *total, int *busy) {
  cr_daemon *d = ud;
  *total = atomic_load(&d->slots_total);
  *busy = atomic_load(&d->slots_busy);
}

int cr__daemon_api_start(cr_daemon *d) {
  const cr_config *cfg = d->cfg->cfg;
  const char *listen = d->api_listen ? d->api_listen : cfg->host.listen;
  struct cr_api_options o = {
      .listen = listen,
      .data_dir = cr_config_store_at(cfg),
      .plugins = d->plugins,
      .runner_id = d->runner.runner_id,
      .hooks = {.ud = d,
                .config_acquire = cfg_acquire,
                .config_release = cfg_release,
                .plugins_acquire = plugins_acquire,
                .plugins_rescan = plugins_rescan,
                .kick = kick,
                .reload = reload,
                .loop_alive = loop_alive,
                .runner_slots = runner_slots,
                .loop_stall_us = loop_stall_us},
      .log = d->log,
      .log_ud = d->log_ud,
      .log_min_level = d->log_min_level,
  };
  char err[512] = "";
  atomic_store(&d->last_tick_ms, cr__now_ms());
  int rc = cr_api_start(&o, cfg, &d->api, err, sizeof err);
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR, "api: %s", err[0] ? err : cr_strerror(rc));
    return rc;
  }
  atomic_store(&d->api_port, cr_api_port(d->api));
  cr__daemon_logf(d, CR_LOG_INFO, "api: listening on %s://%s (port %d)",
                  cfg->host.api.tls_cert ? "https" : "http", listen,
                  cr_api_port(d->api));
  return 0;
}

void cr__daemon_api_stop(cr_daemon *d) {
  cr_api *a = d->api;
  d->api = NULL;
  atomic_store(&d->api_port, 0);
  cr_api_free(a);
}

int cr_daemon_api_port(const cr_daemon *d) {
  return d ? atomic_load(&((cr_daemon *)d)->api_port) : 0;
}
