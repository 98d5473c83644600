/* daemon_cluster.c: `connrun serve` as one of several instances sharing a
 * store (store_cluster.h). Each second the instance records a heartbeat
 * and acquires or renews its duties, leases of DUTY_TTL_MS, all in one
 * transaction:
 *   - work that must happen once (scheduling, lease expiry, remote
 *     runners' offline scan, alerts, retention, scheduled health checks)
 *     is done only by the instance holding its duty; the first instance
 *     takes them all;
 *   - subscriptions (webhook delivery, table exports) are spread: each is
 *     a duty "subscription:<id>", preferred by the online instance whose
 *     rank (by id) is the subscription id's hash modulo the online count.
 *     An instance gives up a subscription whose preferred instance is
 *     online, takes its preferred ones when free, and takes any other only
 *     once its lease has been over for ORPHAN_GRACE_MS (its holder died and
 *     the preferred one did not take it).
 * When a holder dies its leases run out and the others take them over
 * within DUTY_TTL_MS plus a tick or two, with an `instance claimed` event
 * naming the duties and whom they came from. A clean stop releases them. */
#include "daemon/daemon_int.h"
#include "events/batch_delivery.h"
#include "events/delivery.h"
#include "events/events.h"
#include "export/export_engine.h"
#include "store/claim_signal.h"
#include "store/store_cluster.h"
#include "store/store_listen.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DUTY_TTL_MS INT64_C(5000)
#define ONLINE_MS INT64_C(3000) /* in the ranking: three missed beats */
#define ORPHAN_GRACE_MS INT64_C(2000)
#define SUB_PREFIX "subscription:"

static const char *const duty_names[CR__N_DUTIES] = {
    "scheduler", "lease_expiry", "runner_offline",
    "alerts",    "retention",    "health_checks"};

/* What one tick found and decided (loop thread, within the tick). */
struct tick {
  int held[CR__N_DUTIES];
  char **subs; /* subscriptions held after the tick */
  size_t n_subs;
  json_t *gained; /* [{duty, from}] */
  struct cr_duty_rec *duties;
  size_t n_duties;
  size_t rank, n_online; /* this instance among the online ones */
  char **online;         /* their ids, sorted */
};

int cr__daemon_duty(const cr_daemon *d, enum cr__duty duty) {
  return d->cluster.held[duty];
}

int cr__daemon_duty_fence(cr_daemon *d, enum cr__duty duty) {
  int held = 0;
  int rc = cr_store_duty_acquire(d->store, duty_names[duty], d->cluster.id,
                                 DUTY_TTL_MS, &held, NULL);
  if (rc == 0 && !held && d->cluster.held[duty]) {
    d->cluster.held[duty] = 0;
    cr__daemon_logf(d, CR_LOG_WARN,
                    "cluster: lost duty %s (another instance holds it)",
                    duty_names[duty]);
  }
  return rc == 0 && held;
}

static void free_ids(char **v, size_t n) {
  for (size_t i = 0; v != NULL && i < n; i++)
    cr__free(v[i]);
  cr__free(v);
}

static int has_id(char *const *v, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], id) == 0)
      return 1;
  return 0;
}

static int push_id(char ***v, size_t *n, const char *id) {
  char **g = cr__realloc(*v, (*n + 1) * sizeof **v);
  if (g == NULL)
    return CR_ENOMEM;
  *v = g;
  if ((g[*n] = cr__strdup(id)) == NULL)
    return CR_ENOMEM;
  (*n)++;
  return 0;
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

/* The online instances (this one included) and this one's rank. */
static int read_online(cr_daemon *d, struct tick *t) {
  struct cr_instance_rec *in = NULL;
  size_t n = 0;
  int64_t now = cr__now_ms();
  int rc = cr_store_instance_list(d->store, &in, &n); /* sorted by id */
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (now - in[i].last_seen_at < ONLINE_MS ||
        strcmp(in[i].id, d->cluster.id) == 0) {
      if (strcmp(in[i].id, d->cluster.id) == 0)
        t->rank = t->n_online;
      rc = push_id(&t->online, &t->n_online, in[i].id);
    }
  cr_instance_rec_free_list(in, n);
  return rc;
}

static const struct cr_duty_rec *find_duty(const struct tick *t,
                                           const char *name) {
  for (size_t i = 0; i < t->n_duties; i++)
    if (strcmp(t->duties[i].name, name) == 0)
      return &t->duties[i];
  return NULL;
}

/* Acquires or renews duty name; when gained, adds it to t->gained. */
static int acquire(cr_daemon *d, struct tick *t, const char *name, int *held) {
  struct cr_duty_rec prev;
  int rc = cr_store_duty_acquire(d->store, name, d->cluster.id, DUTY_TTL_MS,
                                 held, &prev);
  int had = prev.holder != NULL && strcmp(prev.holder, d->cluster.id) == 0 &&
            prev.expires_at > cr__now_ms() - 1000;
  if (rc == 0 && *held && !had)
    json_array_append_new(
        t->gained, json_pack("{s:s, s:s?}", "duty", name, "from",
                             prev.holder && strcmp(prev.holder, d->cluster.id)
                                 ? prev.holder
                                 : NULL));
  cr_duty_rec_clear(&prev);
  return rc;
}

static uint32_t hash_id(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* One subscription: keep, give up, take or leave it. */
static int tick_sub(cr_daemon *d, struct tick *t, const char *sub) {
  char name[300];
  snprintf(name, sizeof name, SUB_PREFIX "%s", sub);
  size_t pref = t->n_online ? hash_id(sub) % t->n_online : 0;
  int preferred = pref == t->rank;
  int mine = has_id(d->cluster.subs, d->cluster.n_subs, sub);
  const struct cr_duty_rec *cur = find_duty(t, name);
  int64_t now = cr__now_ms();
  int free_now = cur == NULL || cur->expires_at <= now;
  int orphan = cur == NULL || cur->expires_at + ORPHAN_GRACE_MS <= now;
  if (mine && !preferred) /* its preferred instance is online: hand over */
    return cr_store_duty_release(d->store, name, d->cluster.id);
  if (!(mine || (preferred && free_now) || orphan))
    return 0;
  int held = 0;
  int rc = acquire(d, t, name, &held);
  if (rc == 0 && held)
    rc = push_id(&t->subs, &t->n_subs, sub);
  return rc;
}

/* One transaction: the heartbeat, every duty, and the event of those
 * gained. When it fails nothing is held until the next tick. */
static int tick_tx(cr_daemon *d, struct tick *t) {
  int rc = cr_store_begin(d->store);
  if (rc != 0)
    return rc;
  rc = beat(d);
  if (rc == 0)
    rc = read_online(d, t);
  if (rc == 0)
    rc = cr_store_duty_list(d->store, &t->duties, &t->n_duties);
  for (int i = 0; rc == 0 && i < CR__N_DUTIES; i++)
    rc = acquire(d, t, duty_names[i], &t->held[i]);
  const cr_config *cfg = d->cfg->cfg;
  for (size_t i = 0; rc == 0 && i < cfg->n_subscriptions; i++)
    if (cfg->subscriptions[i].enabled)
      rc = tick_sub(d, t, cfg->subscriptions[i].id);
  if (rc == 0 && json_array_size(t->gained) > 0) {
    json_t *data = json_pack("{s:O}", "duties", t->gained);
    rc = data ? cr_event_emit(d->store, "instance", d->cluster.id, "claimed",
                              CR_ACTOR_SYSTEM, data, NULL)
              : CR_ENOMEM;
    json_decref(data);
  }
  if (rc == 0)
    return cr_store_commit(d->store);
  cr_store_rollback(d->store);
  return rc;
}

/* Takes the tick's outcome for duty i: a loss is logged; health checks
 * start on a duty taken over. */
static void settle(cr_daemon *d, enum cr__duty i, int held) {
  if (!held && d->cluster.held[i])
    cr__daemon_logf(d, CR_LOG_WARN, "cluster: lost duty %s", duty_names[i]);
  int gained = held && !d->cluster.held[i];
  d->cluster.held[i] = held;
  if (gained && i == CR__DUTY_HEALTH && d->cluster.ticked)
    cr__daemon_health_cycle(d); /* taken over: check now, then on schedule */
  if (gained && i == CR__DUTY_ALERTS && d->alerts_stale == 0)
    d->alerts_stale = 1; /* resume from the last holder's cursor */
}

/* 1 when the two sets of subscription ids differ. */
static int subs_changed(const cr_daemon *d, const struct tick *t) {
  if (t->n_subs != d->cluster.n_subs)
    return 1;
  for (size_t i = 0; i < t->n_subs; i++)
    if (!has_id(d->cluster.subs, d->cluster.n_subs, t->subs[i]))
      return 1;
  return 0;
}

static void tick_free(struct tick *t) {
  free_ids(t->subs, t->n_subs);
  free_ids(t->online, t->n_online);
  cr_duty_rec_free_list(t->duties, t->n_duties);
  json_decref(t->gained);
}

void cr__daemon_cluster_tick(cr_daemon *d) {
  if (d->stopping)
    return;
  struct tick t;
  memset(&t, 0, sizeof t);
  t.gained = json_array();
  int rc = t.gained ? tick_tx(d, &t) : CR_ENOMEM;
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_WARN, "cluster: tick failed: %s (%s)",
                    cr_strerror(rc), cr_store_last_error(d->store));
    memset(t.held, 0, sizeof t.held);
    free_ids(t.subs, t.n_subs);
    t.subs = NULL;
    t.n_subs = 0;
    json_array_clear(t.gained);
  }
  for (int i = 0; i < CR__N_DUTIES; i++)
    settle(d, (enum cr__duty)i, t.held[i]);
  if (subs_changed(d, &t)) {
    free_ids(d->cluster.subs, d->cluster.n_subs);
    d->cluster.subs = t.subs;
    d->cluster.n_subs = t.n_subs;
    t.subs = NULL;
    t.n_subs = 0;
    if (d->cluster.ticked)
      cr__daemon_cluster_engines(d);
  }
  d->cluster.ticked = 1;
  if (json_array_size(t.gained) > 0) {
    char *text = json_dumps(t.gained, JSON_COMPACT);
    cr__daemon_logf(d, CR_LOG_INFO, "cluster: %s took %s", d->cluster.id,
                    text ? text : "duties");
    free(text);
  }
  tick_free(&t);
}

void cr__daemon_cluster_engines(cr_daemon *d) {
  const cr_config *cfg = d->cfg->cfg;
  struct cr_config_subscription *arr =
      cr__calloc(cfg->n_subscriptions ? cfg->n_subscriptions : 1, sizeof *arr);
  if (arr == NULL) {
    cr__daemon_logf(d, CR_LOG_ERROR, "cluster: out of memory");
    return;
  }
  size_t n = 0;
  for (size_t i = 0; i < cfg->n_subscriptions; i++)
    if (has_id(d->cluster.subs, d->cluster.n_subs, cfg->subscriptions[i].id))
      arr[n++] = cfg->subscriptions[i];
  d->cluster.sub_cfg = *cfg; /* a view: the engines only read it */
  d->cluster.sub_cfg.subscriptions = arr;
  d->cluster.sub_cfg.n_subscriptions = n;
  if (d->delivery != NULL)
    cr_delivery_configure(d->delivery, &d->cluster.sub_cfg);
  if (d->exports != NULL)
    cr_export_engine_configure(d->exports, &d->cluster.sub_cfg);
  if (d->batches != NULL)
    cr_batch_engine_configure(d->batches, &d->cluster.sub_cfg);
  cr__free(d->cluster.sub_arr); /* the engines no longer use it */
  d->cluster.sub_arr = arr;
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
  char name[300];
  for (int i = 0; i < CR__N_DUTIES; i++)
    if (d->cluster.held[i]) {
      cr_store_duty_release(d->store, duty_names[i], d->cluster.id);
      d->cluster.held[i] = 0;
    }
  for (size_t i = 0; i < d->cluster.n_subs; i++) {
    snprintf(name, sizeof name, SUB_PREFIX "%s", d->cluster.subs[i]);
    cr_store_duty_release(d->store, name, d->cluster.id);
  }
}

void cr__daemon_cluster_free(cr_daemon *d) {
  free_ids(d->cluster.subs, d->cluster.n_subs);
  d->cluster.subs = NULL;
  d->cluster.n_subs = 0;
  cr__free(d->cluster.sub_arr);
  d->cluster.sub_arr = NULL;
}

/* ---- News from the other instances (PostgreSQL) -------------------------- */

static void on_news(void *ud, int news) {
  cr_daemon *d = ud;
  if (news & CR_STORE_NEWS_CLAIMS) {
    cr_claim_signal();                   /* the API's long polls */
    atomic_store(&d->kick_requested, 1); /* the local runner */
    if (atomic_load(&d->running))
      uv_async_send(&d->wakeup);
  }
  if (news & CR_STORE_NEWS_EVENTS)
    cr__daemon_events_written(d);
}

void cr__daemon_listen_start(cr_daemon *d) {
  const char *at = cr_config_store_at(d->cfg->cfg);
  char err[256] = "";
  int rc =
      cr_store_listen(at, on_news, d, &d->cluster.listener, err, sizeof err);
  if (rc != 0 && rc != CR_ENOTSUP)
    cr__daemon_logf(d, CR_LOG_WARN,
                    "no notifications from the other instances (%s); "
                    "they are found on each tick instead",
                    err);
}

void cr__daemon_listen_stop(cr_daemon *d) {
  cr_store_listen_stop(d->cluster.listener);
  d->cluster.listener = NULL;
}
