/* ctl_works.c: the integrations page and sync logs (see control.h): work
 * views with status and next run, paging, upcoming collection times, run
 * now, enable toggles, execution lists and views, cancel. */
#include "control/control.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl_int.h"
#include "control/ctl_objects.h"
#include "control/ctl_runners.h"
#include "events/events.h"
#include "exec/execution.h"
#include "exec/schedule.h"
#include "exec/scheduler.h"
#include "store/store_runners.h"
#include "util/alloc.h"
#include "util/error.h"

const char *cr_ctl_work_status(const struct cr_config_work *w, int enabled,
                               const struct cr_exec_rec *last) {
  if (!enabled)
    return "Disabled";
  if (w != NULL && w->unavailable != NULL)
    return "Error";
  if (last != NULL && strcmp(last->state, "failed") == 0)
    return "Error";
  return "Active";
}

/* The product name ("Completed") of a state as stored ("completed"). */
static const char *state_name(const char *state) {
  const char *n = cr_vocab_exec_state_name(cr_exec_state_from_name(state));
  return n ? n : state;
}

static json_t *exec_json(const struct cr_ctl *c, const struct cr_exec_rec *e) {
  int64_t records = 0;
  cr_store_sync_state_exec_records(c->store, e->id, &records);
  return json_pack("{s:I, s:s, s:s, s:i, s:s?, s:o, s:o, s:s?, s:s?, s:I}",
                   "id", (json_int_t)e->id, "work", e->work_id, "state",
                   state_name(e->state), "attempt", e->attempt, "runner",
                   e->runner_id, "created_at", cr_ctl_jtime(e->created_at),
                   "updated_at", cr_ctl_jtime(e->updated_at), "error_class",
                   e->error_class, "error", e->error, "records",
                   (json_int_t)records);
}

static json_t *schedule_text(const struct cr_config_work *w) {
  char buf[256];
  if (w->schedule.sched != NULL &&
      cr_schedule_describe(w->schedule.sched, buf, sizeof buf) == 0)
    return json_string(buf);
  return json_null();
}

static json_t *work_json(const struct cr_ctl *c,
                         const struct cr_config_work *w) {
  struct cr_work_rec *rec = NULL;
  struct cr_exec_rec *last = NULL;
  size_t n = 0;
  char where[300];
  cr_store_work_get(c->store, w->id, &rec);
  cr_store_exec_list(c->store, w->id, 1, &last, &n);
  int enabled = rec ? rec->enabled : w->enabled;
  const char *status = cr_ctl_work_status(w, enabled, n ? last : NULL);
  const char *reason = !enabled         ? "disabled"
                       : w->unavailable ? w->unavailable
                       : strcmp(status, "Error") == 0 && last->error
                           ? last->error
                           : NULL;
  json_t *j = json_pack(
      "{s:s, s:s, s:s?, s:s, s:s?, s:s, s:b, s:b, s:o, s:s, s:s?, s:o, "
      "s:o, s:o, s:o, s:o, s:o}",
      "id", w->id, "name", w->name, "description", w->description, "provider",
      w->provider, "authorization", w->authorization, "type",
      w->destination.type == CR_DEST_PLUGIN ? "export" : "import", "enabled",
      enabled, "error_email_notifications",
      rec ? rec->error_email_notifications : w->error_email_notifications,
      "schedule", schedule_text(w), "status", status, "status_reason", reason,
      "last_execution", n ? exec_json(c, last) : json_null(), "next_run_at",
      cr_ctl_jtime(rec && enabled ? rec->next_run_at : 0), "created_at",
      cr_ctl_jtime(rec ? rec->created_at : 0), "updated_at",
      cr_ctl_jtime(rec ? rec->updated_at : 0), "managed_by",
      cr__ctl_managed_by(&w->mark), "declared_at",
      cr__ctl_declared_at(&w->mark, where));
  cr_exec_rec_free_list(last, n);
  cr_work_rec_free(rec);
  return j;
}

int cr_ctl_work_view(const struct cr_ctl *c, const char *id, json_t **out) {
  const struct cr_config_work *w = cr_config_find_work(c->cfg, id);
  if (w == NULL)
    return CR_ENOENT;
  *out = work_json(c, w);
  return *out ? 0 : CR_ENOMEM;
}

static int cmp_work_id(const void *a, const void *b) {
  return strcmp((*(const struct cr_config_work *const *)a)->id,
                (*(const struct cr_config_work *const *)b)->id);
}

int cr_ctl_work_list(const struct cr_ctl *c, const char *after, size_t limit,
                     const char *status, const char *provider, json_t **out,
                     char **next) {
  size_t n = c->cfg->n_works;
  const struct cr_config_work **byid = cr__calloc(n ? n : 1, sizeof *byid);
  json_t *arr = json_array();
  if (byid == NULL || arr == NULL) {
    cr__free(byid);
    json_decref(arr);
    return CR_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    byid[i] = &c->cfg->works[i];
  qsort(byid, n, sizeof *byid, cmp_work_id);
  if (next)
    *next = NULL;
  for (size_t i = 0; i < n; i++) {
    const struct cr_config_work *w = byid[i];
    if ((after && strcmp(w->id, after) <= 0) ||
        (provider && strcmp(w->provider, provider) != 0))
      continue;
    if (json_array_size(arr) == limit) {
      if (next)
        *next = cr__strdup(json_string_value(
            json_object_get(json_array_get(arr, limit - 1), "id")));
      break;
    }
    json_t *j = work_json(c, w);
    const char *st = json_string_value(json_object_get(j, "status"));
    if (status && st && strcasecmp(st, status) != 0) {
      json_decref(j);
      continue;
    }
    json_array_append_new(arr, j);
  }
  cr__free(byid);
  *out = arr;
  return 0;
}

int cr_ctl_work_schedule(const struct cr_ctl *c, const char *id, size_t n,
                         json_t **out) {
  const struct cr_config_work *w = cr_config_find_work(c->cfg, id);
  if (w == NULL)
    return CR_ENOENT;
  struct cr_work_rec *rec = NULL;
  cr_scheduler *sc = NULL;
  int rc = cr_scheduler_new(c->plugins, &sc);
  json_t *arr = json_array();
  if (rc == 0)
    rc = arr ? 0 : CR_ENOMEM;
  cr_store_work_get(c->store, id, &rec);
  const cr_schedule *s = rc == 0 ? cr_scheduler_effective(sc, w) : NULL;
  int64_t anchor = rec ? rec->created_at : 0, at = cr__ctl_now(c);
  int enabled = rec ? rec->enabled : w->enabled;
  if (rec && rec->next_run_at > at && s != NULL && enabled) {
    json_array_append_new(arr, cr_ctl_jtime(rec->next_run_at));
    at = rec->next_run_at;
  }
  while (rc == 0 && s != NULL && enabled && json_array_size(arr) < n &&
         cr_schedule_next(s, anchor, at, &at) == 0)
    json_array_append_new(arr, cr_ctl_jtime(at));
  cr_work_rec_free(rec);
  cr_scheduler_free(sc);
  if (rc != 0) {
    json_decref(arr);
    return rc;
  }
  *out = arr;
  return 0;
}

int cr_ctl_work_run(const struct cr_ctl *c, const char *id, int64_t *exec_id) {
  const struct cr_config_work *w = cr_config_find_work(c->cfg, id);
  if (w == NULL)
    return CR_ENOENT;
  struct cr_work_rec *rec = NULL;
  int rc = cr_store_work_get(c->store, id, &rec);
  int enabled = rec && rec->enabled;
  cr_work_rec_free(rec);
  if (rc != 0)
    return rc;
  if (!enabled)
    return CR_EPERM;
  int existing = 0;
  if ((rc = cr_store_begin(c->store)) != 0)
    return rc;
  rc = cr_scheduler_trigger(c->store, id, exec_id, &existing);
  if (rc == 0 && existing)
    rc = CR_EEXIST;
  json_t *data = rc == 0 ? json_pack("{s:s, s:I}", "action", "run requested",
                                     "execution", (json_int_t)*exec_id)
                         : NULL;
  if (rc == 0)
    rc = data ? cr_event_emit(c->store, "work", id, "updated", c->actor, data,
                              NULL)
              : CR_ENOMEM;
  json_decref(data);
  return rc == 0 ? cr_store_commit(c->store)
                 : (cr_store_rollback(c->store), rc);
}

int cr_ctl_work_set(const struct cr_ctl *c, const char *id, int enabled,
                    int error_email_notifications, cr_config **cfg_out,
                    char *where) {
  const struct cr_config_work *w = cr_config_find_work(c->cfg, id);
  if (w == NULL)
    return CR_ENOENT;
  if (!cr__ctl_is_api(&w->mark)) {
    json_decref(cr__ctl_declared_at(&w->mark, where));
    return CR_EPERM;
  }
  json_t *ch = json_object();
  if (enabled >= 0)
    json_object_set_new(ch, "enabled", json_boolean(enabled));
  if (error_email_notifications >= 0)
    json_object_set_new(ch, "error_email_notifications",
                        json_boolean(error_email_notifications));
  int rc = cr_ctl_object_update(c, "work", id, ch, cfg_out, where, 300);
  json_decref(ch);
  return rc;
}

int cr_ctl_exec_list(const struct cr_ctl *c, const char *work_id,
                     int64_t before, size_t limit, json_t **out, char **next) {
  if (work_id && cr_config_find_work(c->cfg, work_id) == NULL)
    return CR_ENOENT;
  /* The store lists newest first from the newest: read enough to skip to
   * before (bounded by the store's own limit). */
  struct cr_exec_rec *e = NULL;
  size_t n = 0;
  size_t want = before > 0 ? CR_EXEC_LIST_MAX_LIMIT : limit + 1;
  int rc = cr_store_exec_list(c->store, work_id, want, &e, &n);
  if (rc != 0)
    return rc;
  json_t *arr = json_array();
  if (next)
    *next = NULL;
  for (size_t i = 0; i < n; i++) {
    if (before > 0 && e[i].id >= before)
      continue;
    if (json_array_size(arr) == limit) {
      char buf[24];
      snprintf(buf, sizeof buf, "%" PRId64, e[i - 1].id);
      if (next)
        *next = cr__strdup(buf);
      break;
    }
    json_array_append_new(arr, exec_json(c, &e[i]));
  }
  cr_exec_rec_free_list(e, n);
  *out = arr;
  return 0;
}

/* A Created execution's waiting reason (no runner can take it) and the
 * log lines a remote runner sent. */
static void add_runner_view(const struct cr_ctl *c, const struct cr_exec_rec *e,
                            json_t *j) {
  const struct cr_config_work *w = cr_config_find_work(c->cfg, e->work_id);
  const cr_plugin *p =
      w && c->plugins ? cr_plugin_host_find(c->plugins, w->provider) : NULL;
  int local =
      p != NULL && (cr_plugin_desc(p)->capabilities & CR_PLUGIN_CAP_READ);
  char *why = cr_ctl_exec_waiting_reason(c, e, local);
  if (why != NULL)
    json_object_set_new(j, "waiting_reason", json_string(why));
  cr__free(why);
  struct cr_exec_log_rec *l = NULL;
  size_t n = 0;
  json_t *arr = json_array();
  if (cr_store_exec_log_list(c->store, e->id, 0, &l, &n) == 0)
    for (size_t i = 0; i < n; i++)
      json_array_append_new(arr, json_pack("{s:o, s:i, s:s}", "at",
                                           cr_ctl_jtime(l[i].at), "level",
                                           l[i].level, "text", l[i].text));
  cr_exec_log_rec_free_list(l, n);
  json_object_set_new(j, "log", arr);
}

int cr_ctl_exec_view(const struct cr_ctl *c, int64_t id, json_t **out) {
  struct cr_exec_rec e = {0};
  int rc = cr_store_exec_get(c->store, id, &e);
  if (rc != 0)
    return rc;
  json_t *j = exec_json(c, &e);
  add_runner_view(c, &e, j);
  cr_exec_rec_clear(&e);
  struct cr_exec_transition_rec *t = NULL;
  size_t n = 0;
  rc = cr_store_exec_transitions(c->store, id, &t, &n);
  json_t *arr = json_array();
  for (size_t i = 0; rc == 0 && i < n; i++)
    json_array_append_new(
        arr,
        json_pack("{s:o, s:s?, s:s, s:s?}", "at", cr_ctl_jtime(t[i].at), "from",
                  t[i].from_state ? state_name(t[i].from_state) : NULL, "to",
                  state_name(t[i].to_state), "reason", t[i].reason));
  cr_exec_transition_free_list(t, n);
  json_object_set_new(j, "transitions", arr);
  *out = j;
  return rc;
}

int cr_ctl_exec_cancel(const struct cr_ctl *c, int64_t id) {
  struct cr_exec_rec e = {0};
  int rc = cr_store_exec_get(c->store, id, &e);
  if (rc != 0)
    return rc;
  char reason[200];
  snprintf(reason, sizeof reason, "cancelled by %s", c->actor);
  json_t *data = json_pack("{s:s, s:I}", "action", "execution cancelled",
                           "execution", (json_int_t)id);
  rc = data ? cr_store_begin(c->store) : CR_ENOMEM;
  if (rc == 0)
    rc = cr_store_exec_transition(c->store, id, CR_EXEC_EPOCH_ANY, "cancelled",
                                  reason, NULL, NULL);
  if (rc == 0)
    rc = cr_event_emit(c->store, "work", e.work_id, "updated", c->actor, data,
                       NULL);
  rc = rc == 0 ? cr_store_commit(c->store)
               : (data ? (cr_store_rollback(c->store), rc) : rc);
  json_decref(data);
  cr_exec_rec_clear(&e);
  return rc;
}
