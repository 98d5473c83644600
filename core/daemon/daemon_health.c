/* daemon_health.c: the daemon's scheduled authorization health checks. A
 * check runs on the libuv thread pool (plugins may block on HTTP); its
 * result, its event and its activity metrics are written on the loop thread
 * in one store transaction. */
#include "daemon/daemon_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "events/delivery.h"
#include "util/error.h"
#include "events/events.h"
#include "plugin/health.h"

struct health_job {
  uv_work_t req;
  cr_daemon *d;
  struct cr__cfg_ref *cfg; /* held while the job lives */
  const struct cr_config_auth *auth;
  const cr_plugin *plugin;
  char *credentials; /* JSON text with secrets: wiped before free */
  char *config;      /* config of a work using the authorization, or NULL */
  const char *work_id;
  struct cr_health_outcome out;
  int rc;
};

static const char *status_name(int status) {
  switch (status) {
  case CR_PLUGIN_HEALTH_HEALTHY:
    return "Healthy";
  case CR_PLUGIN_HEALTH_UNHEALTHY:
    return "Unhealthy";
  default:
    return "Unknown";
  }
}

static const char *status_verb(int status) {
  switch (status) {
  case CR_PLUGIN_HEALTH_HEALTHY:
    return "healthy";
  case CR_PLUGIN_HEALTH_UNHEALTHY:
    return "unhealthy";
  default:
    return "unknown";
  }
}

static void plugin_log(void *ud, int level, const char *msg) {
  struct health_job *job = ud;
  cr__daemon_logf(job->d, level, "auth %s: %s", job->auth->id, msg);
}

static void health_work(uv_work_t *req) {
  struct health_job *job = req->data;
  struct cr_plugin_params params = {
      .struct_size = sizeof params,
      .authorization_id = job->auth->id,
      .auth_method = job->auth->method,
      .credentials_json = job->credentials,
      .config_json = job->config,
      .work_id = job->work_id,
  };
  struct cr_health_options opts = {
      .log = plugin_log,
      .log_ud = job,
      .log_min_level = job->d->log_min_level,
      .cancel = &job->d->cancel,
  };
  job->rc =
      cr_health_check_ex(job->plugin, &params,
                         cr_config_redactor(job->cfg->cfg), &opts, &job->out);
}

static int busy_index(cr_daemon *d, const char *id) {
  for (size_t i = 0; i < d->n_busy; i++)
    if (strcmp(d->busy[i], id) == 0)
      return (int)i;
  return -1;
}

static void busy_remove(cr_daemon *d, const char *id) {
  int i = busy_index(d, id);
  if (i < 0)
    return;
  cr__free(d->busy[i]);
  d->busy[i] = d->busy[--d->n_busy];
}

static int busy_add(cr_daemon *d, const char *id) {
  char **grown = cr__realloc(d->busy, (d->n_busy + 1) * sizeof *grown);
  if (grown == NULL)
    return CR_ENOMEM;
  d->busy = grown;
  if ((d->busy[d->n_busy] = cr__strdup(id)) == NULL)
    return CR_ENOMEM;
  d->n_busy++;
  return 0;
}

/* Health record, event and metrics of one check, in one transaction. */
static int record(cr_daemon *d, struct health_job *job) {
  const struct cr_health_outcome *o = &job->out;
  struct cr_health_rec prev = {0};
  int had_prev =
      cr_store_auth_health_latest(d->store, job->auth->id, &prev) == 0;
  json_t *data = json_pack(
      "{s:s, s:s, s:s, s:s, s:I, s:I}", "status", status_name(o->status),
      "reason", o->reason, "provider", job->auth->provider, "previous",
      had_prev ? status_name(prev.status) : "none", "requests",
      (json_int_t)o->requests, "duration_ms", (json_int_t)o->duration_ms);
  cr_health_rec_clear(&prev);
  if (data == NULL)
    return CR_ENOMEM;
  int rc = cr_store_begin(d->store);
  if (rc == 0)
    rc = cr_store_auth_health_record(d->store, job->auth->id, o->checked_at_ms,
                                     o->status, o->reason);
  if (rc == 0)
    rc = cr_event_emit(d->store, "auth", job->auth->id, status_verb(o->status),
                       CR_ACTOR_SYSTEM, data, NULL);
  if (rc == 0 && o->requests > 0)
    rc = cr_store_metrics_add(d->store, job->auth->id, o->checked_at_ms,
                              (int64_t)o->requests, (int64_t)o->errors);
  rc = rc == 0 ? cr_store_commit(d->store) : (cr_store_rollback(d->store), rc);
  json_decref(data);
  return rc;
}

static void job_free(struct health_job *job) {
  if (job->credentials != NULL) {
    memset(job->credentials, 0, strlen(job->credentials));
    free(job->credentials); /* from json_dumps */
  }
  free(job->config); /* from json_dumps */
  cr__cfg_ref_put(job->cfg);
  cr__free(job);
}

static void health_after(uv_work_t *req, int status) {
  cr_delivery_kick(((struct health_job *)req->data)->d->delivery);
  struct health_job *job = req->data;
  cr_daemon *d = job->d;
  d->in_flight--;
  busy_remove(d, job->auth->id);
  if (status == 0 && job->rc == 0 && !atomic_load(&d->cancel)) {
    int rc = record(d, job);
    if (rc != 0)
      cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: cannot record health: %s (%s)",
                      job->auth->id, cr_strerror(rc),
                      cr_store_last_error(d->store));
    else
      cr__daemon_logf(d, CR_LOG_INFO, "auth %s (%s): %s: %s", job->auth->id,
                      job->auth->provider, status_name(job->out.status),
                      job->out.reason);
  } else if (status == 0 && job->rc != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: health check failed: %s",
                    job->auth->id, cr_strerror(job->rc));
  }
  job_free(job);
}

/* The first enabled work that uses auth: its provider config lets plugins
 * whose settings live in work config (e.g. filedrop's directory) check the
 * authorization as it is used. NULL when no work uses it. */
static const struct cr_config_work *work_using(const cr_config *cfg,
                                               const char *auth_id) {
  for (size_t i = 0; i < cfg->n_works; i++)
    if (cfg->works[i].enabled && cfg->works[i].authorization != NULL &&
        strcmp(cfg->works[i].authorization, auth_id) == 0)
      return &cfg->works[i];
  return NULL;
}

/* The credentials a plugin rotated (while the definition is unchanged),
 * else the configured ones. JSON text from malloc (json_dumps style). */
static char *current_credentials(cr_daemon *d,
                                 const struct cr_config_auth *auth) {
  char hash[17], *stored = NULL;
  snprintf(hash, sizeof hash, "%016" PRIx64, auth->config_hash);
  if (cr_store_auth_credentials_get(d->store, auth->id, hash, &stored) == 0) {
    char *copy = strdup(stored);
    cr__secret_wipe_free(stored, strlen(stored));
    return copy;
  }
  return json_dumps(auth->credentials, JSON_COMPACT);
}

static int queue_check(cr_daemon *d, const struct cr_config_auth *auth) {
  const cr_plugin *p = cr_plugin_host_find(d->plugins, auth->provider);
  if (p == NULL || busy_index(d, auth->id) >= 0)
    return 0;
  struct health_job *job = cr__calloc(1, sizeof *job);
  if (job == NULL)
    return CR_ENOMEM;
  job->d = d;
  job->auth = auth;
  job->plugin = p;
  job->req.data = job;
  job->cfg = d->cfg;
  cr__cfg_ref_get(job->cfg);
  job->credentials = current_credentials(d, auth);
  const struct cr_config_work *w = work_using(d->cfg->cfg, auth->id);
  if (w != NULL) {
    job->config = json_dumps(w->config, JSON_COMPACT);
    job->work_id = w->id;
  }
  int rc = job->credentials == NULL || (w != NULL && job->config == NULL)
               ? CR_ENOMEM
               : busy_add(d, auth->id);
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
  for (size_t i = 0; i < cfg->n_auths && !d->stopping; i++) {
    int rc = queue_check(d, &cfg->auths[i]);
    if (rc != 0)
      cr__daemon_logf(d, CR_LOG_ERROR, "auth %s: cannot queue health check: %s",
                      cfg->auths[i].id, cr_strerror(rc));
  }
}
