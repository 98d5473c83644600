/* ctl_misc.c: views of events, subscriptions, alerts and plugins (see
 * control.h). */
#include "control/control.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "control/ctl_int.h"
#include "events/alerts.h"
#include "export/export_table.h"
#include "util/alloc.h"
#include "util/error.h"

json_t *cr_ctl_event_json(const struct cr_event_rec *e) {
  json_t *data = e->data_json ? json_loads(e->data_json, 0, NULL) : NULL;
  return json_pack("{s:I, s:o, s:s, s:s, s:s, s:s?, s:I, s:o}", "id",
                   (json_int_t)e->id, "at", cr_ctl_jtime(e->at), "subject_type",
                   e->subject_type, "subject_id", e->subject_id, "verb",
                   e->verb, "actor", e->actor, "seq", (json_int_t)e->seq,
                   "data", data ? data : json_object());
}

/* The subscription's config in the documents' keys, secrets hidden. */
static json_t *sub_config(const struct cr_config_subscription *s) {
  json_t *cfg = json_deep_copy(s->config);
  if (cfg == NULL)
    return json_object();
  json_t *h = json_object_get(cfg, "headers");
  const char *k;
  json_t *v;
  json_object_foreach(h, k, v) json_object_set_new(h, k, json_string("***"));
  if (json_object_get(cfg, "secret"))
    json_object_set_new(cfg, "secret", json_string("***"));
  if (s->export_to != NULL) { /* the resolved URL, without its password */
    char safe[512];
    cr_export_url_redact(s->export_to, safe, sizeof safe);
    json_object_set_new(cfg, "destination", json_string(safe));
  }
  return cfg;
}

/* A table export's position: its table and the last event id it wrote
 * (the events after it are still to come). */
static json_t *export_json(const struct cr_config_subscription *s,
                           const struct cr_sub_rec *rec) {
  return json_pack("{s:s, s:I}", "table", s->export_table, "cursor_event_id",
                   (json_int_t)(rec ? rec->cursor_event_id : 0));
}

static json_t *sub_json(const struct cr_ctl *c,
                        const struct cr_config_subscription *s) {
  struct cr_sub_rec *rec = NULL;
  struct cr_sub_stats st;
  memset(&st, 0, sizeof st);
  char where[300];
  cr_store_sub_get(c->store, s->id, &rec);
  int have = cr_store_sub_stats(c->store, s->id, &st) == 0;
  json_t *rate = have && st.attempts_24h > 0
                     ? json_real((double)st.ok_24h / (double)st.attempts_24h)
                     : json_null();
  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:b, s:s?, s:o, s:I, s:I, s:I, s:o, s:o, s:o, s:o, "
      "s:o, s:o, s:i}",
      "id", s->id, "name", s->name, "workflow", s->workflow, "enabled",
      rec ? rec->enabled : s->enabled, "disabled_reason",
      rec ? rec->disabled_reason : NULL, "config", sub_config(s), "backlog",
      (json_int_t)st.backlog, "delivered", (json_int_t)st.delivered, "dead",
      (json_int_t)st.dead, "success_rate_24h", rate, "last_attempt_at",
      cr_ctl_jtime(st.last_attempt_at), "created_at",
      cr_ctl_jtime(rec ? rec->created_at : 0), "managed_by",
      cr__ctl_managed_by(&s->mark), "declared_at",
      cr__ctl_declared_at(&s->mark, where), "last_error",
      st.last_error ? json_string(st.last_error) : json_null(), "last_status",
      st.last_status);
  if (j != NULL && s->export_to != NULL)
    json_object_set_new(j, "export", export_json(s, rec));
  cr_sub_stats_clear(&st);
  cr_sub_rec_free(rec);
  return j;
}

int cr_ctl_sub_view(const struct cr_ctl *c, const char *id, json_t **out) {
  const struct cr_config_subscription *s =
      cr_config_find_subscription(c->cfg, id);
  if (s == NULL)
    return CR_ENOENT;
  *out = sub_json(c, s);
  return *out ? 0 : CR_ENOMEM;
}

int cr_ctl_sub_list(const struct cr_ctl *c, json_t **out) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < c->cfg->n_subscriptions; i++)
    json_array_append_new(arr, sub_json(c, &c->cfg->subscriptions[i]));
  *out = arr;
  return arr ? 0 : CR_ENOMEM;
}

static json_t *alert_json(const struct cr_config_alert *a,
                          const cr_alerts *state) {
  json_t *breach = json_array();
  for (size_t i = 0; i < cr_alerts_breach_count(state); i++) {
    const char *aid, *wid;
    if (cr_alerts_breach_at(state, i, &aid, &wid) == 0 && !strcmp(aid, a->id))
      json_array_append_new(breach, json_string(wid));
  }
  json_t *works = json_array();
  for (size_t i = 0; i < a->n_works; i++)
    json_array_append_new(works, json_string(a->works[i]));
  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:b, s:b, s:o, s:o}", "id", a->id, "name", a->name,
      "channel", a->channel == CR_ALERT_CHANNEL_EMAIL ? "email" : "webhook",
      "default", a->is_default, "events", a->has_events, "works", works,
      "in_breach", breach);
  if (a->has_error_rate)
    json_object_set_new(j, "error_rate",
                        json_pack("{s:i, s:I, s:i}", "threshold_pct",
                                  a->threshold_pct, "window_ms",
                                  (json_int_t)a->window_ms, "min_executions",
                                  a->min_executions));
  return j;
}

int cr_ctl_alert_list(const struct cr_ctl *c, json_t **out) {
  cr_alerts *state = NULL;
  int rc = cr_alerts_new(&state);
  if (rc == 0)
    rc = cr_alerts_load_state(state, c->store);
  json_t *arr = rc == 0 ? json_array() : NULL;
  for (size_t i = 0; arr && i < c->cfg->n_alerts; i++)
    json_array_append_new(arr, alert_json(&c->cfg->alerts[i], state));
  cr_alerts_free(state);
  if (rc == 0 && arr == NULL)
    rc = CR_ENOMEM;
  *out = arr;
  return rc;
}

static json_t *parse_or_null(const char *text) {
  json_t *v = text ? json_loads(text, 0, NULL) : NULL;
  return v ? v : json_null();
}

static json_t *plugin_json(const cr_plugin *p, int with_schemas) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
  json_t *methods = json_array();
  for (size_t i = 0; d->auth_methods && d->auth_methods[i]; i++)
    json_array_append_new(methods, json_string(d->auth_methods[i]));
  json_t *caps = json_array();
  if (d->capabilities & CR_PLUGIN_CAP_HEALTH_CHECK)
    json_array_append_new(caps, json_string("health_check"));
  if (d->capabilities & CR_PLUGIN_CAP_READ)
    json_array_append_new(caps, json_string("read"));
  if (d->capabilities & CR_PLUGIN_CAP_WRITE)
    json_array_append_new(caps, json_string("write"));
  char abi[32];
  snprintf(abi, sizeof abi, "%u.%u", (unsigned)d->abi_major,
           (unsigned)d->abi_minor);
  json_t *j = json_pack(
      "{s:s, s:s?, s:s?, s:s?, s:s, s:s, s:o, s:o, s:o}", "name", d->name,
      "display_name", d->display_name, "version", d->version, "description",
      d->description, "abi", abi, "path", cr_plugin_path(p), "methods", methods,
      "capabilities", caps, "streams", parse_or_null(d->streams_json));
  if (j != NULL)
    json_object_set_new(j, "loaded_at",
                        cr_ctl_jtime(cr_plugin_loaded_at_ms(p)));
  if (with_schemas && j) {
    json_object_set_new(j, "credentials_schema",
                        parse_or_null(d->credentials_schema));
    json_object_set_new(j, "config_schema", parse_or_null(d->config_schema));
  }
  return j;
}

int cr_ctl_plugin_list(const struct cr_ctl *c, int with_schemas, json_t **out) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < cr_plugin_host_count(c->plugins); i++)
    json_array_append_new(
        arr, plugin_json(cr_plugin_host_at(c->plugins, i), with_schemas));
  *out = arr;
  return arr ? 0 : CR_ENOMEM;
}

int cr_ctl_plugin_refused(const struct cr_ctl *c, json_t **out) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < cr_plugin_host_refused_count(c->plugins); i++) {
    const char *path = NULL, *reason = NULL;
    cr_plugin_host_refused_at(c->plugins, i, &path, &reason);
    json_array_append_new(
        arr, json_pack("{s:s, s:s}", "path", path, "reason", reason));
  }
  *out = arr;
  return arr ? 0 : CR_ENOMEM;
}

int cr_ctl_plugin_view(const struct cr_ctl *c, const char *name, json_t **out) {
  const cr_plugin *p = cr_plugin_host_find(c->plugins, name);
  if (p == NULL)
    return CR_ENOENT;
  *out = plugin_json(p, 1);
  return *out ? 0 : CR_ENOMEM;
}
