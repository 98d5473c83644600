/* daemon_health.c: the daemon's scheduled authorization health checks. A
 * check runs on the libuv thread pool (plugins may block on HTTP); its
 * result, its event and its activity metrics are written on the loop thread
 * in one store transaction. */
#include "daemon/daemon_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "control/ctl_health.h"
#include "events/delivery.h"
#include "events/events.h"
#include "plugin/health.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

struct health_job {
  uv_work_t req;
  struct health_job *next; /* on d->health_done */
  cr_daemon *d;
  struct cr__cfg_ref *cfg; /* held while the job lives */
  const struct cr_config_auth *auth;
  cr_plugin_host *plugins; /* held while the job lives: owns plugin */
  const cr_plugin *plugin;
  struct cr_ctl_health_input in; /* credentials wiped before free */
  struct cr_health_outcome out;
  int rc;
};

static void plugin_log(void *ud, int level, const char *msg) {
  struct health_job *job = ud;
  cr__daemon_logf(job->d, level, "auth %s: %s", job->auth->id, msg);
}

static void health_work(uv_work_t *req) {
  struct health_job *job = req->data;
  struct cr_health_options opts = {
      .log = plugin_log,
      .log_ud = job,
      .log_min_level = job->d->log_min_level,
      .cancel = &job->d->cancel,
  };
  if (job->auth->unavailable != NULL) {
    /* its provider is not loaded, or no longer accepts it: not called */
    job->out.status = CR_PLUGIN_HEALTH_UNHEALTHY;
    job->out.checked_at_ms = cr__now_ms();
    snprintf(job->out.reason, sizeof job->out.reason, "%s",
             job->auth->unavailable);
    job->rc = 0;
    return;
  }
  job->rc = cr_ctl_health_exec(job->cfg->cfg, job->plugin, job->auth, &job->in,
                               &opts, &job->out);
}

/* The authorizations with a check in flight, a hash set: 10,000 checks
 * queued at start-up must not each scan the others (a list was 27% of the
 * start-up's CPU). */
#define BUSY_BUCKETS 4096u

struct cr__busy {
  struct cr__busy *next;
  char id[];
};

static unsigned busy_hash(const char *id) {
  unsigned h = 2166136261u; /* FNV-1a */
  for (; *id; id++)
    h = (h ^ (unsigned char)*id) * 16777619u;
  return h & (BUSY_BUCKETS - 1);
}

static struct cr__busy **busy_slot(cr_daemon *d, const char *id) {
  struct cr__busy **p = &d->busy[busy_hash(id)];
  while (*p != NULL && strcmp((*p)->id, id) != 0)
    p = &(*p)->next;
  return p;
}

static int busy_has(cr_daemon *d, const char *id) {
  return d->busy != NULL && *busy_slot(d, id) != NULL;
}

static void busy_remove(cr_daemon *d, const char *id) {
  if (d->busy == NULL)
    return;
  struct cr__busy **p = busy_slot(d, id), *b = *p;
  if (b != NULL) {
    *p = b->next;
    cr__free(b);
  }
}

static int busy_add(cr_daemon *d, const char *id) {
  if (d->busy == NULL &&
      (d->busy = cr__calloc(BUSY_BUCKETS, sizeof *d->busy)) == NULL)
    return CR_ENOMEM;
  size_t n = strlen(id) + 1;
  struct cr__busy *b = cr__malloc(sizeof *b + n);
  if (b == NULL)
    return CR_ENOMEM;
  memcpy(b->id, id, n);
  struct cr__busy **p = &d->busy[busy_hash(id)];
  b->next = *p;
  *p = b;
  return 0;
}

void cr__daemon_busy_free(cr_daemon *d) {
  for (unsigned i = 0; d->busy != NULL && i < BUSY_BUCKETS; i++)
    while (d->busy[i] != NULL) {
      struct cr__busy *b = d->busy[i];
      d->busy[i] = b->next;
      cr__free(b);
    }
  cr__free(d->busy);
  d->busy = NULL;
}

static void job_free(struct health_job *job) {
  cr_ctl_health_input_clear(&job->in);
  cr__cfg_ref_put(job->cfg);
  cr_plugin_host_free(job->plugins);
  cr__free(job);
}

static void record_one(cr_daemon *d, struct health_job *job) {
  int rc = cr_store_savepoint(d->store);
  if (rc == 0)
    rc = cr_store_savepoint_end(
        d->store, cr_ctl_health_record(d->store, job->auth, &job->out,
                                       CR_ACTOR_SYSTEM, &job->in));
  if (rc != 0)
    cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: cannot record health: %s (%s)",
                    job->auth->id, cr_strerror(rc),
                    cr_store_last_error(d->store));
  else
    cr__daemon_logf(d, CR_LOG_INFO, "auth %s (%s): %s: %s", job->auth->id,
                    job->auth->provider, cr_ctl_health_name(job->out.status),
                    job->out.reason);
}

/* Records every ended check waiting, in one transaction with a savepoint
 * each (a failing one undoes only itself): at start-up 10,000 checks end
 * within a second or two, and one commit each was what bounded them. */
void cr__daemon_health_flush(cr_daemon *d) {
  struct health_job *list = d->health_done;
  d->health_done = NULL;
  if (d->health_flush_inited)
    uv_idle_stop(&d->health_flush);
  if (list == NULL)
    return;
  d->trim_pending = 1; /* the heap is trimmed once the checks are over */
  int cancel = atomic_load(&d->cancel);
  int txn = !cancel && cr_store_begin(d->store) == 0;
  while (list != NULL) {
    struct health_job *job = list;
    list = job->next;
    if (txn)
      record_one(d, job);
    job_free(job);
  }
  if (txn && cr_store_commit(d->store) != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR, "cannot record health checks: %s",
                    cr_store_last_error(d->store));
    cr_store_rollback(d->store);
  }
  cr__daemon_events_written(d);
}

static void on_flush(uv_idle_t *h) { cr__daemon_health_flush(h->data); }

int cr__daemon_health_start(cr_daemon *d) {
  int rc = uv_idle_init(&d->loop, &d->health_flush);
  d->health_flush.data = d;
  d->health_flush_inited = rc == 0;
  return rc == 0 ? 0 : CR_EIO;
}

void cr__daemon_health_free(cr_daemon *d) {
  while (d->health_done != NULL) {
    struct health_job *job = d->health_done;
    d->health_done = job->next;
    job_free(job);
  }
}

static void health_after(uv_work_t *req, int status) {
  struct health_job *job = req->data;
  cr_daemon *d = job->d;
  d->in_flight--;
  busy_remove(d, job->auth->id);
  if (status == 0 && job->rc == 0 && !atomic_load(&d->cancel) &&
      d->health_flush_inited && !d->stopping) {
    job->next = d->health_done;
    d->health_done = job;
    uv_idle_start(&d->health_flush, on_flush);
    return;
  }
  if (status == 0 && job->rc != 0)
    cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: health check failed: %s",
                    job->auth->id, cr_strerror(job->rc));
  job_free(job);
}

static int queue_check(cr_daemon *d, const struct cr_config_auth *auth) {
  const cr_plugin *p = cr_plugin_host_find(d->plugins, auth->provider);
  if ((p == NULL && auth->unavailable == NULL) || busy_has(d, auth->id))
    return 0;
  struct health_job *job = cr__calloc(1, sizeof *job);
  if (job == NULL)
    return CR_ENOMEM;
  job->d = d;
  job->auth = auth;
  job->plugin = p;
  job->plugins = cr_plugin_host_retain(d->plugins);
  job->req.data = job;
  job->cfg = d->cfg;
  cr__cfg_ref_get(job->cfg);
  int rc = cr_ctl_health_prepare(d->store, d->cfg->cfg, auth, &job->in);
  if (rc == 0)
    rc = busy_add(d, auth->id);
  if (rc == 0)
    rc = uv_queue_work(&d->loop, &job->req, health_work, health_after);
  if (rc != 0) {
    busy_remove(d, auth->id);
    job_free(job);
    return rc == CR_ENOMEM ? rc : CR_EIO;
  }
  d->in_flight++;
  return 0;
}

void cr__daemon_health_cycle(cr_daemon *d) {
  const cr_config *cfg = d->cfg->cfg;
  if (!cr__daemon_duty(d, CR__DUTY_HEALTH))
    return; /* another instance checks on schedule */
  for (size_t i = 0; i < cfg->n_auths && !d->stopping; i++) {
    int rc = queue_check(d, &cfg->auths[i]);
    if (rc != 0)
      cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: cannot queue health check: %s",
                      cfg->auths[i].id, cr_strerror(rc));
  }
}

void cr__daemon_health_cycle_providers(cr_daemon *d, const char *const *names,
                                       size_t n) {
  const cr_config *cfg = d->cfg->cfg;
  for (size_t i = 0; i < cfg->n_auths && !d->stopping; i++) {
    const struct cr_config_auth *a = &cfg->auths[i];
    size_t k = 0;
    while (k < n && strcmp(names[k], a->provider) != 0)
      k++;
    int rc = k < n ? queue_check(d, a) : 0;
    if (rc != 0)
      cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: cannot queue health check: %s",
                      a->id, cr_strerror(rc));
  }
}

void cr__daemon_health_cycle_new(cr_daemon *d) {
  const cr_config *cfg = d->cfg->cfg;
  if (!cr__daemon_duty(d, CR__DUTY_HEALTH))
    return;
  for (size_t i = 0; i < cfg->n_auths && !d->stopping; i++) {
    struct cr_health_rec h = {0};
    if (cr_store_auth_health_latest(d->store, cfg->auths[i].id, &h) == 0) {
      cr_health_rec_clear(&h);
      continue;
    }
    int rc = queue_check(d, &cfg->auths[i]);
    if (rc != 0)
      cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: cannot queue health check: %s",
                      cfg->auths[i].id, cr_strerror(rc));
  }
}
