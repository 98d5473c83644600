/* ctl_health.c: one authorization health check's inputs, run and record
 * (see ctl_health.h). */
#include "control/ctl_health.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "util/alloc.h"
#include "util/error.h"

const char *cr_ctl_health_name(int status) {
  switch (status) {
  case CR_PLUGIN_HEALTH_HEALTHY:
    return "Healthy";
  case CR_PLUGIN_HEALTH_UNHEALTHY:
    return "Unhealthy";
  default:
    return "Unknown";
  }
}

int cr_ctl_health_prepare(cr_store *s, const cr_config *cfg,
                          const struct cr_config_auth *a,
                          struct cr_ctl_health_input *in) {
  memset(in, 0, sizeof *in);
  char hash[17], *stored = NULL;
  snprintf(hash, sizeof hash, "%016" PRIx64, a->config_hash);
  if (cr_store_auth_credentials_get(s, a->id, hash, &stored) == 0) {
    in->credentials = strdup(stored);
    cr__secret_wipe_free(stored, strlen(stored));
  } else {
    in->credentials = cr_config_auth_credentials_text(a);
  }
  in->settings = cr_config_settings_json(a);
  const struct cr_config_work *w = cr_config_first_work_of(cfg, a->id);
  if (w != NULL) {
    in->config = cr_config_work_config_text(w);
    in->work_id = w->id;
  }
  if (in->credentials == NULL || in->settings == NULL ||
      (w != NULL && in->config == NULL)) {
    cr_ctl_health_input_clear(in);
    return CR_ENOMEM;
  }
  return 0;
}

void cr_ctl_health_input_clear(struct cr_ctl_health_input *in) {
  if (in->credentials != NULL) {
    memset(in->credentials, 0, strlen(in->credentials));
    free(in->credentials); /* from json_dumps / strdup */
  }
  free(in->config);
  free(in->settings);
  if (in->rotated != NULL)
    cr__secret_wipe_free(in->rotated, strlen(in->rotated));
  memset(in, 0, sizeof *in);
}

/* The plugin rotated its credentials: kept (a copy) to be recorded. */
static int keep_rotated(void *ud, const char *json) {
  struct cr_ctl_health_input *in = ud;
  char *copy = cr__strdup(json);
  if (copy == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (in->rotated != NULL)
    cr__secret_wipe_free(in->rotated, strlen(in->rotated));
  in->rotated = copy;
  return CR_PLUGIN_OK;
}

int cr_ctl_health_exec(const cr_config *cfg, const cr_plugin *p,
                       const struct cr_config_auth *a,
                       struct cr_ctl_health_input *in,
                       const struct cr_health_options *opts,
                       struct cr_health_outcome *out) {
  struct cr_plugin_params params = {
      .struct_size = sizeof params,
      .authorization_id = a->id,
      .auth_method = a->method,
      .credentials_json = in->credentials,
      .config_json = in->config,
      .work_id = in->work_id,
      .settings_json = in->settings,
  };
  struct cr_health_options o = {0};
  if (opts != NULL)
    o = *opts;
  o.credentials_update = keep_rotated;
  o.credentials_ud = in;
  return cr_health_check_ex(p, &params, cr_config_redactor(cfg), &o, out);
}

/* Stores rotated credentials with an event that says only that they
 * changed. */
static int record_rotated(cr_store *s, const struct cr_config_auth *a,
                          const char *json) {
  char hash[17];
  snprintf(hash, sizeof hash, "%016" PRIx64, a->config_hash);
  int rc = cr_store_auth_credentials_set(s, a->id, hash, json);
  json_t *d = rc == 0 ? json_pack("{s:s, s:s}", "change", "credentials",
                                  "source", "plugin (health check)")
                      : NULL;
  if (rc == 0)
    rc =
        d ? cr_event_emit(s, "auth", a->id, "updated", CR_ACTOR_SYSTEM, d, NULL)
          : CR_ENOMEM;
  json_decref(d);
  return rc;
}

int cr_ctl_health_record(cr_store *s, const struct cr_config_auth *a,
                         const struct cr_health_outcome *o, const char *actor,
                         const struct cr_ctl_health_input *in) {
  struct cr_health_rec prev = {0};
  int had_prev = cr_store_auth_health_latest(s, a->id, &prev) == 0;
  json_t *data = json_pack(
      "{s:s, s:s, s:s, s:s, s:I, s:I}", "status", cr_ctl_health_name(o->status),
      "reason", o->reason, "provider", a->provider, "previous",
      had_prev ? cr_ctl_health_name(prev.status) : "none", "requests",
      (json_int_t)o->requests, "duration_ms", (json_int_t)o->duration_ms);
  cr_health_rec_clear(&prev);
  if (data == NULL)
    return CR_ENOMEM;
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_store_auth_health_record(s, a->id, o->checked_at_ms, o->status,
                                     o->reason);
  if (rc == 0)
    rc = cr_event_emit(s, "auth", a->id, cr_health_status_word(o->status),
                       actor, data, NULL);
  if (rc == 0 && o->requests > 0)
    rc = cr_store_metrics_add(s, a->id, o->checked_at_ms, (int64_t)o->requests,
                              (int64_t)o->errors);
  if (rc == 0 && in != NULL && in->rotated != NULL)
    rc = record_rotated(s, a, in->rotated);
  rc = rc == 0 ? cr_store_commit(s) : (cr_store_rollback(s), rc);
  json_decref(data);
  return rc;
}
