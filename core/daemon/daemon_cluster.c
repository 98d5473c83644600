/* daemon_cluster.c: `connrun serve` as one of several instances sharing a
 * store (store_cluster.h). Each second the instance records a heartbeat
 * and acquires or renews its duties, leases of DUTY_TTL_MS: work that must
 * happen once (scheduling, lease expiry, remote runners' offline scan,
 * alerts, retention, scheduled health checks, webhook delivery, table
 * exports) is done only by the instance holding its duty. When the holder
 * dies its leases run out and the next instance to tick takes them over,
 * within DUTY_TTL_MS plus a tick, with an `instance claimed` event naming
 * the duties and whom they came from. A clean stop releases them at once.
 * Alone on a store an instance holds every duty from its first tick. */
#include "daemon/daemon_int.h"
#include "events/delivery.h"
#include "events/events.h"
#include "export/export_engine.h"
#include "store/store_cluster.h"
#include "util/clock.h"
#include "util/error.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DUTY_TTL_MS INT64_C(5000)

static const char *const duty_names[CR__N_DUTIES] = {
    "scheduler", "lease_expiry",  "runner_offline",   "alerts",
    "retention", "health_checks", "webhook_delivery", "table_exports"};

/* With no subscription: what an engine is configured with while this
 * instance does not hold its duty. */
static const cr_config no_subscriptions;

int cr__daemon_duty(const cr_daemon *d, enum cr__duty duty) {
  return d->cluster.held[duty];
}

const cr_config *cr__daemon_duty_cfg(const cr_daemon *d, enum cr__duty duty) {
  return d->cluster.held[duty] ? d->cfg->cfg : &no_subscriptions;
}

static int beat(cr_daemon *d) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  json_t *info =
      json_pack("{s:s, s:i, s:s, s:i}", "host", host, "pid", (int)getpid(),
                "version", CR_VERSION, "api_port", atomic_load(&d->api_port));
  char *text = info ? json_dumps(info, JSON_COMPACT) : NULL;
  int rc = text ? cr_store_instance_beat(d->store, d->cluster.id, text,
                                         d->cluster.started_at)
                : CR_ENOMEM;
  free(text);
  json_decref(info);
  return rc;
}

/* Records the duties gained in this tick as one event (in the tick's
 * transaction). */
static int emit_claimed(cr_daemon *d, json_t *gained) {
  json_t *data = json_pack("{s:O}", "duties", gained);
  int rc = data ? cr_event_emit(d->store, "instance", d->cluster.id, "claimed",
                                CR_ACTOR_SYSTEM, data, NULL)
                : CR_ENOMEM;
  json_decref(data);
  return rc;
}

/* Switches delivery and exports on or off after their duty changed. */
static void engines_follow(cr_daemon *d, enum cr__duty duty) {
  if (duty == CR__DUTY_DELIVERY && d->delivery != NULL)
    cr_delivery_configure(d->delivery, cr__daemon_duty_cfg(d, duty));
  if (duty == CR__DUTY_EXPORTS && d->exports != NULL)
    cr_export_engine_configure(d->exports, cr__daemon_duty_cfg(d, duty));
}

/* Acquires or renews one duty into held[i]; a duty gained is added to
 * gained ({duty, from}). */
static int acquire(cr_daemon *d, enum cr__duty i, int *held, json_t *gained) {
  struct cr_duty_rec prev;
  int rc = cr_store_duty_acquire(d->store, duty_names[i], d->cluster.id,
                                 DUTY_TTL_MS, &held[i], &prev);
  if (rc == 0 && held[i] && !d->cluster.held[i]) {
    const char *from =
        prev.holder && strcmp(prev.holder, d->cluster.id) ? prev.holder : NULL;
    json_array_append_new(
        gained, json_pack("{s:s, s:s?}", "duty", duty_names[i], "from", from));
  }
  cr_duty_rec_clear(&prev);
  return rc;
}

/* Takes the tick's outcome for duty i: a loss is logged; delivery,
 * exports and health checks follow a change. */
static void settle(cr_daemon *d, enum cr__duty i, int held) {
  if (!held && d->cluster.held[i])
    cr__daemon_logf(d, CR_LOG_WARN, "cluster: lost duty %s", duty_names[i]);
  int changed = held != d->cluster.held[i];
  d->cluster.held[i] = held;
  if (changed && d->cluster.ticked)
    engines_follow(d, i);
  if (changed && held && i == CR__DUTY_HEALTH && d->cluster.ticked)
    cr__daemon_health_cycle(d); /* taken over: check now, then on schedule */
}

/* One transaction: the heartbeat, every duty, and the event of those
 * gained. When it fails nothing is held until the next tick. */
static int tick_tx(cr_daemon *d, int *held, json_t *gained) {
  int rc = cr_store_begin(d->store);
  if (rc != 0)
    return rc;
  rc = beat(d);
  for (int i = 0; rc == 0 && i < CR__N_DUTIES; i++)
    rc = acquire(d, (enum cr__duty)i, held, gained);
  if (rc == 0 && json_array_size(gained) > 0)
    rc = emit_claimed(d, gained);
  if (rc == 0)
    return cr_store_commit(d->store);
  cr_store_rollback(d->store);
  return rc;
}

void cr__daemon_cluster_tick(cr_daemon *d) {
  if (d->stopping)
    return;
  int held[CR__N_DUTIES] = {0};
  json_t *gained = json_array();
  int rc = gained ? tick_tx(d, held, gained) : CR_ENOMEM;
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_WARN, "cluster: tick failed: %s (%s)",
                    cr_strerror(rc), cr_store_last_error(d->store));
    memset(held, 0, sizeof held);
    json_array_clear(gained);
  }
  for (int i = 0; i < CR__N_DUTIES; i++)
    settle(d, (enum cr__duty)i, held[i]);
  d->cluster.ticked = 1;
  if (json_array_size(gained) > 0) {
    char *text = json_dumps(gained, JSON_COMPACT);
    cr__daemon_logf(d, CR_LOG_INFO, "cluster: %s took %s", d->cluster.id,
                    text ? text : "duties");
    free(text);
  }
  json_decref(gained);
}

void cr__daemon_cluster_start(cr_daemon *d) {
  char host[64] = "localhost";
  gethostname(host, sizeof host - 1);
  unsigned r = 0;
  RAND_bytes((unsigned char *)&r, sizeof r);
  snprintf(d->cluster.id, sizeof d->cluster.id, "%s-%d-%04x", host,
           (int)getpid(), r & 0xffff);
  d->cluster.started_at = cr__now_ms();
  cr__daemon_cluster_tick(d);
}

void cr__daemon_cluster_stop(cr_daemon *d) {
  for (int i = 0; i < CR__N_DUTIES; i++)
    if (d->cluster.held[i]) {
      cr_store_duty_release(d->store, duty_names[i], d->cluster.id);
      d->cluster.held[i] = 0;
    }
}
