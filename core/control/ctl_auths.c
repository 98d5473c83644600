/* ctl_auths.c: the Authorization Summary and the actions on an
 * authorization (see control.h): views with health and associations,
 * paging, rename, activity metrics, health history, and a health check run
 * now and recorded as the scheduled ones are. */
#include "control/control.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/ctl_health.h"
#include "control/ctl_int.h"
#include "control/ctl_objects.h"
#include "events/events.h"
#include "plugin/health.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

static const char *health_name(int status) {
  const char *n = cr_vocab_health_name(status);
  return n ? n : "Unknown";
}

static json_t *health_json(const struct cr_ctl *c, const char *id) {
  struct cr_health_rec h = {0};
  int have = cr_store_auth_health_latest(c->store, id, &h) == 0;
  int64_t every = c->cfg->host.health_check_interval_ms;
  int64_t now = cr__ctl_now(c);
  json_t *j =
      json_pack("{s:s, s:s?, s:o, s:o}", "status",
                have ? health_name(h.status) : "Unknown", "reason",
                have ? h.reason : "not checked yet", "checked_at",
                cr_ctl_jtime(have ? h.at : 0), "next_check_at",
                cr_ctl_jtime(have && h.at + every > now ? h.at + every : now));
  cr_health_rec_clear(&h);
  return j;
}

static json_t *provider_json(const struct cr_ctl *c, const char *name) {
  const cr_plugin *p = cr_plugin_host_find(c->plugins, name);
  const struct cr_plugin_descriptor *d = p ? cr_plugin_desc(p) : NULL;
  return json_pack("{s:s, s:s?, s:b}", "id", name, "display_name",
                   d ? d->display_name : NULL, "loaded", p != NULL);
}

/* One associated work: {id, name, type, status, created_at}. */
static json_t *assoc_json(const struct cr_ctl *c,
                          const struct cr_config_work *w) {
  struct cr_work_rec *rec = NULL;
  struct cr_exec_rec *last = NULL;
  size_t n = 0;
  cr_store_work_get(c->store, w->id, &rec);
  cr_store_exec_list(c->store, w->id, 1, &last, &n);
  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:s, s:o}", "id", w->id, "name", w->name, "type",
      w->destination.type == CR_DEST_PLUGIN ? "export" : "import", "status",
      cr_ctl_work_status(w, w->enabled, n ? last : NULL), "created_at",
      cr_ctl_jtime(rec ? rec->created_at : 0));
  cr_exec_rec_free_list(last, n);
  cr_work_rec_free(rec);
  return j;
}

/* qsort has no context argument in C11: the key travels per thread. */
static _Thread_local const char *sort_key;
static _Thread_local int sort_desc;

static int cmp_assoc(const void *a, const void *b) {
  const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
  const char *k = sort_key;
  const char *sx = json_string_value(json_object_get(x, k));
  const char *sy = json_string_value(json_object_get(y, k));
  int r = strcmp(sx ? sx : "", sy ? sy : "");
  if (r == 0)
    r = strcmp(json_string_value(json_object_get(x, "id")),
               json_string_value(json_object_get(y, "id")));
  return sort_desc ? -r : r;
}

/* Sorts arr by key (a string member; times sort as RFC 3339 text). */
static int sort_assoc(json_t *arr, const char *sort, int desc) {
  const char *key = sort == NULL || !strcmp(sort, "name") ? "name"
                    : !strcmp(sort, "type")               ? "type"
                    : !strcmp(sort, "status")             ? "status"
                    : !strcmp(sort, "created")            ? "created_at"
                                                          : NULL;
  if (key == NULL)
    return CR_EINVAL;
  size_t n = json_array_size(arr);
  json_t **items = cr__calloc(n ? n : 1, sizeof *items);
  if (items == NULL)
    return CR_ENOMEM;
  for (size_t i = 0; i < n; i++)
    items[i] = json_incref(json_array_get(arr, i));
  sort_key = key;
  sort_desc = desc;
  qsort(items, n, sizeof *items, cmp_assoc);
  json_array_clear(arr);
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, items[i]);
  cr__free(items);
  return 0;
}

static int add_assoc(const struct cr_ctl *c, const char *id, json_t *view,
                     const char *sort, int desc) {
  json_t *jobs = json_array(), *exports = json_array();
  for (size_t i = 0; i < c->cfg->n_works; i++) {
    const struct cr_config_work *w = &c->cfg->works[i];
    if (w->authorization && !strcmp(w->authorization, id))
      json_array_append_new(jobs, assoc_json(c, w));
    if (w->destination.type == CR_DEST_PLUGIN && w->destination.authorization &&
        !strcmp(w->destination.authorization, id))
      json_array_append_new(exports, assoc_json(c, w));
  }
  int rc = sort_assoc(jobs, sort, desc);
  if (rc == 0)
    rc = sort_assoc(exports, sort, desc);
  json_object_set_new(view, "jobs", jobs);
  json_object_set_new(view, "exports", exports);
  return rc;
}

static json_t *auth_json(const struct cr_ctl *c, const struct cr_config_auth *a,
                         const struct cr_auth_rec *rec) {
  char where[300];
  json_t *j = json_pack(
      "{s:s, s:s, s:s?, s:o, s:s, s:s?, s:o, s:o, s:o, s:o, s:o}", "id", a->id,
      "name", rec && rec->name ? rec->name : a->name, "description",
      rec && rec->description ? rec->description : a->description, "provider",
      provider_json(c, a->provider), "method", a->method ? a->method : "",
      "owner", a->owner, "created_at", cr_ctl_jtime(rec ? rec->created_at : 0),
      "updated_at", cr_ctl_jtime(rec ? rec->updated_at : 0), "managed_by",
      cr__ctl_managed_by(&a->mark), "declared_at",
      cr__ctl_declared_at(&a->mark, where), "health", health_json(c, a->id));
  return j;
}

int cr_ctl_auth_view(const struct cr_ctl *c, const char *id, int with_assoc,
                     const char *sort, int desc, json_t **out) {
  const struct cr_config_auth *a = cr_config_find_auth(c->cfg, id);
  if (a == NULL)
    return CR_ENOENT;
  struct cr_auth_rec *rec = NULL;
  cr_store_auth_get(c->store, id, &rec);
  json_t *j = auth_json(c, a, rec);
  cr_auth_rec_free(rec);
  if (j == NULL)
    return CR_ENOMEM;
  int rc = with_assoc ? add_assoc(c, id, j, sort, desc) : 0;
  if (rc != 0) {
    json_decref(j);
    return rc;
  }
  *out = j;
  return 0;
}

static int cmp_auth_id(const void *a, const void *b) {
  return strcmp((*(const struct cr_config_auth *const *)a)->id,
                (*(const struct cr_config_auth *const *)b)->id);
}

int cr_ctl_auth_list(const struct cr_ctl *c, const char *after, size_t limit,
                     const char *provider, const char *health, json_t **out,
                     char **next) {
  size_t n = c->cfg->n_auths;
  const struct cr_config_auth **byid = cr__calloc(n ? n : 1, sizeof *byid);
  json_t *arr = json_array();
  if (byid == NULL || arr == NULL) {
    cr__free(byid);
    json_decref(arr);
    return CR_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    byid[i] = &c->cfg->auths[i];
  qsort(byid, n, sizeof *byid, cmp_auth_id);
  if (next)
    *next = NULL;
  for (size_t i = 0; i < n; i++) {
    const struct cr_config_auth *a = byid[i];
    if ((after && strcmp(a->id, after) <= 0) ||
        (provider && strcmp(a->provider, provider) != 0))
      continue;
    if (json_array_size(arr) == limit) {
      if (next)
        *next = cr__strdup(json_string_value(
            json_object_get(json_array_get(arr, limit - 1), "id")));
      break;
    }
    struct cr_auth_rec *rec = NULL;
    cr_store_auth_get(c->store, a->id, &rec);
    json_t *j = auth_json(c, a, rec);
    cr_auth_rec_free(rec);
    const char *st = json_string_value(
        json_object_get(json_object_get(j, "health"), "status"));
    if (health && st && strcasecmp(st, health) != 0) {
      json_decref(j);
      continue;
    }
    json_array_append_new(arr, j);
  }
  cr__free(byid);
  *out = arr;
  return 0;
}

/* FNV-1a of n bytes of p into h. */
static uint64_t fnv(uint64_t h, const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

void cr_ctl_auth_etag(const json_t *view, char *buf) {
  /* Over what an edit changes, not over health or executions, so a
   * health check between GET and PATCH does not fail the If-Match. Each
   * value is hashed with its key and a type tag, without a JSON text. */
  static const char *const keys[] = {"id",
                                     "name",
                                     "description",
                                     "enabled",
                                     "error_email_notifications",
                                     "updated_at",
                                     NULL};
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; keys[i] != NULL; i++) {
    const json_t *v = json_object_get(view, keys[i]);
    char tag = v == NULL           ? '-'
               : json_is_string(v) ? 's'
               : json_is_true(v)   ? 't'
               : json_is_false(v)  ? 'f'
                                   : 'n';
    h = fnv(h, keys[i], strlen(keys[i]) + 1);
    h = fnv(h, &tag, 1);
    if (json_is_string(v))
      h = fnv(h, json_string_value(v), json_string_length(v) + 1);
  }
  snprintf(buf, 24, "\"%016" PRIx64 "\"", h);
}

int cr_ctl_auth_rename(const struct cr_ctl *c, const char *id, const char *name,
                       const char *description, cr_config **cfg_out,
                       char *where) {
  const struct cr_config_auth *a = cr_config_find_auth(c->cfg, id);
  if (a == NULL)
    return CR_ENOENT;
  if (!cr__ctl_is_api(&a->mark)) {
    json_decref(cr__ctl_declared_at(&a->mark, where));
    return CR_EPERM;
  }
  json_t *ch = json_object();
  if (name != NULL)
    json_object_set_new(ch, "name", json_string(name));
  if (description != NULL)
    json_object_set_new(ch, "description", json_string(description));
  int rc =
      cr_ctl_object_update(c, "authorization", id, ch, cfg_out, where, 300);
  json_decref(ch);
  return rc;
}

static int parse_gran(const char *g) {
  if (g == NULL || !strcmp(g, "hour"))
    return CR_GRAN_HOUR;
  if (!strcmp(g, "day"))
    return CR_GRAN_DAY;
  if (!strcmp(g, "week"))
    return CR_GRAN_WEEK;
  if (!strcmp(g, "month"))
    return CR_GRAN_MONTH;
  return -1;
}

int cr_ctl_auth_metrics(const struct cr_ctl *c, const char *id,
                        const char *granularity, int64_t from_ms, int64_t to_ms,
                        json_t **out) {
  int g = parse_gran(granularity);
  if (g < 0 || from_ms < 0 || (to_ms != 0 && to_ms <= from_ms))
    return CR_EINVAL;
  if (cr_config_find_auth(c->cfg, id) == NULL)
    return CR_ENOENT;
  struct cr_metric_point *p = NULL;
  size_t n = 0;
  int rc = cr_store_metrics_query(c->store, id, g, from_ms, to_ms, &p, &n);
  if (rc != 0)
    return rc;
  json_t *pts = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(pts, json_pack("{s:o, s:I, s:I}", "start",
                                         cr_ctl_jtime(p[i].bucket_start),
                                         "requests", (json_int_t)p[i].requests,
                                         "errors", (json_int_t)p[i].errors));
  cr_metric_point_free_list(p, n);
  *out = json_pack(
      "{s:s, s:o, s:o, s:o}", "granularity", granularity ? granularity : "hour",
      "from", cr_ctl_jtime(from_ms), "to", cr_ctl_jtime(to_ms), "points", pts);
  return *out ? 0 : CR_ENOMEM;
}

int cr_ctl_auth_health(const struct cr_ctl *c, const char *id, size_t limit,
                       json_t **out) {
  if (cr_config_find_auth(c->cfg, id) == NULL)
    return CR_ENOENT;
  struct cr_health_rec *h = NULL;
  size_t n = 0;
  int rc = cr_store_auth_health_history(c->store, id, limit, &h, &n);
  if (rc != 0)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, json_pack("{s:s, s:s?, s:o}", "status",
                                         health_name(h[i].status), "reason",
                                         h[i].reason, "checked_at",
                                         cr_ctl_jtime(h[i].at)));
  cr_health_rec_free_list(h, n);
  *out = arr;
  return 0;
}

int cr_ctl_auth_check(const struct cr_ctl *c, const char *id,
                      const atomic_int *cancel, json_t **out) {
  const struct cr_config_auth *a = cr_config_find_auth(c->cfg, id);
  if (a == NULL)
    return CR_ENOENT;
  const cr_plugin *p = cr_plugin_host_find(c->plugins, a->provider);
  if (p == NULL)
    return CR_ENOTSUP;
  struct cr_ctl_health_input in;
  struct cr_health_outcome o;
  struct cr_health_options opts = {.cancel = cancel};
  int rc = cr_ctl_health_prepare(c->store, c->cfg, a, &in);
  if (rc != 0)
    return rc;
  rc = cr_ctl_health_exec(c->cfg, p, a, &in, &opts, &o);
  if (rc == 0)
    rc = cr_ctl_health_record(c->store, a, &o, c->actor, &in);
  cr_ctl_health_input_clear(&in);
  if (rc != 0)
    return rc;
  *out =
      json_pack("{s:s, s:s, s:o, s:I, s:I}", "status",
                cr_ctl_health_name(o.status), "reason", o.reason, "checked_at",
                cr_ctl_jtime(o.checked_at_ms), "duration_ms",
                (json_int_t)o.duration_ms, "requests", (json_int_t)o.requests);
  return *out ? 0 : CR_ENOMEM;
}
