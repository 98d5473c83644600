/* daemon_int.h: the daemon's private state, shared by daemon.c (lifecycle,
 * loop, signals, reload) and daemon_health.c (scheduled health checks). */
#ifndef CR_DAEMON_INT_H
#define CR_DAEMON_INT_H

#include <stdatomic.h>
#include <uv.h>

#include "config.h"
#include "daemon.h"
#include "plugin_host.h"

/* A configuration shared by the loop and in-flight jobs: freed when the last
 * holder lets go (a reload may retire it while checks still use it). */
struct cr__cfg_ref {
  cr_config *cfg;
  int refs;
};

struct cr_daemon {
  char *config_path;
  cr_log_fn log;
  void *log_ud;
  int log_min_level;
  int handle_signals;

  struct cr__cfg_ref *cfg; /* current configuration */
  cr_plugin_host *plugins;
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
  char **busy;        /* ids of authorizations with a check in flight */
  size_t n_busy;
};

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

#endif
