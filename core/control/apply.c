/* apply.c: bringing the store's authorizations, works and subscriptions in
 * line with a configuration, each change with its event (see apply.h). */
#include "control/apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/events.h"
#include "events/sub_filter.h"
#include "util/alloc.h"
#include "util/error.h"

static const char *verb_of(int changed) {
  return changed == CR_STORE_CREATED ? "created" : "updated";
}

static void count(struct cr_apply_stats *st, int changed) {
  if (changed == CR_STORE_CREATED)
    st->created++;
  else if (changed == CR_STORE_UPDATED)
    st->updated++;
  else
    st->unchanged++;
}

static void hash_text(uint64_t h, char buf[17]) {
  snprintf(buf, 17, "%016" PRIx64, h);
}

static char *dump(const json_t *v) {
  return v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
           : NULL;
}

/* Ends a transaction: commit on success, roll back otherwise. */
static int finish(cr_store *s, int rc) {
  if (rc == 0)
    return cr_store_commit(s);
  cr_store_rollback(s);
  return rc;
}

static int apply_auth(cr_store *s, const struct cr_config_auth *a,
                      const char *actor, struct cr_apply_stats *st) {
  char hash[17];
  hash_text(a->config_hash, hash);
  struct cr_auth_rec rec = {
      .id = (char *)a->id,
      .name = (char *)a->name,
      .description = (char *)a->description,
      .provider = (char *)a->provider,
      .method = (char *)a->method,
      .owner = (char *)a->owner,
      .config_hash = hash,
  };
  int changed = CR_STORE_UNCHANGED;
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_store_auth_upsert(s, &rec, &changed);
  if (rc == 0 && changed != CR_STORE_UNCHANGED) {
    /* Descriptive fields only: credentials never reach an event. */
    json_t *data =
        json_pack("{s:s?, s:s, s:s?, s:s?}", "name", a->name, "provider",
                  a->provider, "method", a->method, "owner", a->owner);
    rc = data ? cr_event_emit(s, "auth", a->id, verb_of(changed), actor, data,
                              NULL)
              : CR_ENOMEM;
    json_decref(data);
  }
  rc = finish(s, rc);
  if (rc == 0)
    count(st, changed);
  return rc;
}

static int apply_work(cr_store *s, const struct cr_config_work *w,
                      const char *actor, struct cr_apply_stats *st) {
  char hash[17];
  hash_text(w->config_hash, hash);
  /* A compacted configuration keeps the definition as text only. */
  json_t *own = w->def == NULL ? cr_config_work_def(w) : NULL;
  const json_t *def = w->def != NULL ? w->def : own;
  const json_t *cv = w->config ? w->config : json_object_get(def, "config");
  char *sched =
           dump(w->def ? w->schedule.def : json_object_get(def, "schedule")),
       *dest = dump(w->def ? w->destination.def
                           : json_object_get(def, "destination")),
       *conf = cv ? dump(cv) : strdup("{}"), *labels = NULL;
  json_decref(own);
  if (w->runner_labels != NULL) {
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < w->n_runner_labels; i++)
      json_array_append_new(arr, json_string(w->runner_labels[i]));
    labels = dump(arr);
    json_decref(arr);
  }
  struct cr_work_rec rec = {
      .id = (char *)w->id,
      .name = (char *)w->name,
      .provider = (char *)w->provider,
      .authorization_id = (char *)w->authorization,
      .schedule_json = sched,
      .destination_json = dest,
      .config_json = conf,
      .config_hash = hash,
      .enabled = w->enabled,
      .error_email_notifications = w->error_email_notifications,
      .max_attempts = w->max_attempts,
      .runner_labels_json = labels,
  };
  int changed = CR_STORE_UNCHANGED;
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_store_work_upsert(s, &rec, &changed);
  if (rc == 0 && changed != CR_STORE_UNCHANGED) {
    json_t *data = json_pack("{s:s?, s:s, s:s, s:b}", "name", w->name,
                             "provider", w->provider, "authorization",
                             w->authorization, "enabled", w->enabled);
    rc = data ? cr_event_emit(s, "work", w->id, verb_of(changed), actor, data,
                              NULL)
              : CR_ENOMEM;
    json_decref(data);
  }
  rc = finish(s, rc);
  free(sched);
  free(dest);
  free(conf);
  free(labels);
  if (rc == 0)
    count(st, changed);
  return rc;
}

static int apply_sub(cr_store *s, const struct cr_config_subscription *sub,
                     const char *actor, struct cr_apply_stats *st) {
  char hash[17];
  hash_text(sub->config_hash, hash);
  /* The filter goes to the store: the outbox matches events with it. */
  cr_sub_filter *f = NULL;
  char *filter = NULL;
  if (cr_sub_filter_from_config(sub, &f) != 0 ||
      (filter = cr_sub_filter_to_json(f)) == NULL) {
    cr_sub_filter_free(f);
    return CR_ENOMEM;
  }
  cr_sub_filter_free(f);
  struct cr_sub_rec rec = {
      .id = (char *)sub->id,
      .workflow = (char *)sub->workflow,
      .config_hash = hash,
      .enabled = sub->enabled,
      .filter_json = filter,
      .batched = sub->batch,
  };
  int changed = CR_STORE_UNCHANGED;
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_store_sub_upsert(s, &rec, &changed);
  /* A new table export with from: start exports the retained trail. */
  if (rc == 0 && changed == CR_STORE_CREATED && sub->export_from_start)
    rc = cr_store_sub_set_cursor(s, sub->id, 0, 0);
  if (rc == 0 && changed != CR_STORE_UNCHANGED) {
    json_t *data = json_pack("{s:s, s:b}", "workflow", sub->workflow, "enabled",
                             sub->enabled);
    rc = data ? cr_event_emit(s, "subscription", sub->id, verb_of(changed),
                              actor, data, NULL)
              : CR_ENOMEM;
    json_decref(data);
  }
  cr__free(filter);
  rc = finish(s, rc);
  if (rc == 0)
    count(st, changed);
  return rc;
}

/* Deletes one object and emits its "deleted" event in one transaction. */
static int delete_one(cr_store *s, const char *subject_type, const char *id,
                      int (*del)(cr_store *, const char *), const char *actor,
                      struct cr_apply_stats *st) {
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = del(s, id);
  if (rc == 0)
    rc = cr_event_emit(s, subject_type, id, "deleted", actor, NULL, NULL);
  rc = finish(s, rc);
  if (rc == 0)
    st->deleted++;
  return rc;
}

/* Deletes every stored id that cfg no longer defines. */
static int delete_missing(cr_store *s, const cr_config *cfg,
                          const char *subject_type, char **ids, size_t n,
                          const void *(*find)(const cr_config *, const char *),
                          int (*del)(cr_store *, const char *),
                          const char *actor, struct cr_apply_stats *st) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (find(cfg, ids[i]) == NULL)
      rc = delete_one(s, subject_type, ids[i], del, actor, st);
  return rc;
}

static const void *find_work(const cr_config *c, const char *id) {
  return cr_config_find_work(c, id);
}
static const void *find_auth(const cr_config *c, const char *id) {
  return cr_config_find_auth(c, id);
}
static const void *find_sub(const cr_config *c, const char *id) {
  return cr_config_find_subscription(c, id);
}

/* Collects the ids of a record array (borrowed pointers into it). */
#define COLLECT_IDS(recs, n, ids)                                              \
  do {                                                                         \
    ids = (n) > 0 ? cr__calloc((n), sizeof *ids) : NULL;                       \
    for (size_t k_ = 0; ids != NULL && k_ < (n); k_++)                         \
      ids[k_] = (recs)[k_].id;                                                 \
  } while (0)

/* Removes works, then subscriptions, then authorizations (works reference
 * authorizations) that cfg no longer defines. */
static int delete_removed(cr_store *s, const cr_config *cfg, const char *actor,
                          struct cr_apply_stats *st) {
  struct cr_work_rec *works = NULL;
  struct cr_sub_rec *subs = NULL;
  struct cr_auth_rec *auths = NULL;
  size_t nw = 0, ns = 0, na = 0;
  char **ids = NULL;
  int rc = cr_store_work_list(s, &works, &nw);
  if (rc == 0) {
    COLLECT_IDS(works, nw, ids);
    rc = nw > 0 && ids == NULL
             ? CR_ENOMEM
             : delete_missing(s, cfg, "work", ids, nw, find_work,
                              cr_store_work_delete, actor, st);
    cr__free(ids);
  }
  if (rc == 0 && (rc = cr_store_sub_list(s, &subs, &ns)) == 0) {
    COLLECT_IDS(subs, ns, ids);
    rc = ns > 0 && ids == NULL
             ? CR_ENOMEM
             : delete_missing(s, cfg, "subscription", ids, ns, find_sub,
                              cr_store_sub_delete, actor, st);
    cr__free(ids);
  }
  if (rc == 0 && (rc = cr_store_auth_list(s, &auths, &na)) == 0) {
    COLLECT_IDS(auths, na, ids);
    rc = na > 0 && ids == NULL
             ? CR_ENOMEM
             : delete_missing(s, cfg, "auth", ids, na, find_auth,
                              cr_store_auth_delete, actor, st);
    cr__free(ids);
  }
  cr_work_rec_free_list(works, nw);
  cr_sub_rec_free_list(subs, ns);
  cr_auth_rec_free_list(auths, na);
  return rc;
}

int cr_apply_config(cr_store *s, const cr_config *cfg, const char *actor,
                    struct cr_apply_stats *st, char *errbuf, size_t errlen) {
  struct cr_apply_stats local = {0};
  int rc = 0;
  /* Order matters: works reference authorizations. */
  for (size_t i = 0; rc == 0 && i < cfg->n_auths; i++)
    rc = apply_auth(s, &cfg->auths[i], actor, &local);
  for (size_t i = 0; rc == 0 && i < cfg->n_works; i++)
    rc = apply_work(s, &cfg->works[i], actor, &local);
  for (size_t i = 0; rc == 0 && i < cfg->n_subscriptions; i++)
    rc = apply_sub(s, &cfg->subscriptions[i], actor, &local);
  if (rc == 0)
    rc = delete_removed(s, cfg, actor, &local);
  if (rc != 0 && errbuf != NULL && errlen > 0)
    snprintf(errbuf, errlen, "%s (%s)", cr_strerror(rc),
             cr_store_last_error(s) ? cr_store_last_error(s) : "");
  if (st != NULL)
    *st = local;
  return rc;
}
