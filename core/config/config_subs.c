/* config_subs.c: the subscriptions: section of the configuration loader
 * (see config_int.h): each subscription's keys, its workflow and that
 * workflow's config (webhook_system_events: event types and sources,
 * webhook_url, headers, json_template, secret; table_system_events: event
 * types and sources, destination, table, batch_size, from), and the delivery
 * settings (timeout, retry_schedule, max_in_flight, disable_after). Duplicate
 * ids are checked with the other sections in config.c. */
#include "config/config.h"
#include "config/config_int.h"

#include "events/event_tpl.h"
#include "events/vocab.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Adds verb v (a string node at mk) to an event-type list unless it is
 * there; an unknown verb is an error with a "did you mean". Shared with the
 * alerts' event rules (config_alerts.c). */
void cr__cfg_add_verb(struct ld *L, const struct where *w, const json_t *v,
                      const struct cr_mark *mk, const char ***types,
                      size_t *n) {
  const char *verb = json_string_value(v);
  if (!cr_vocab_is_verb(verb)) {
    const char *sug = cr_vocab_suggest_verb(verb);
    char dym[160] = "";
    if (sug != NULL)
      snprintf(dym, sizeof dym, " (did you mean '%s'?)", sug);
    cr__cfg_err_at(L, mk, "unknown event type '%.64s' %s%s", verb, w->in, dym);
    return;
  }
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*types)[i], verb) == 0)
      return;
  const char **slot = cr__cfg_grow(L, (void **)types, n, sizeof **types);
  if (slot != NULL)
    *slot = verb;
}

/* The verb list of a field's target: f->off is the offset of the
 * event_types member, and n_event_types follows it (asserted in
 * config_int.h for every struct that uses these setters). */
static void add_verb_at(struct ld *L, const struct where *w, const json_t *v,
                        const struct cr_mark *mk, const struct field *f,
                        void *t) {
  const char ***types = (const char ***)((char *)t + f->off);
  size_t *n = (size_t *)((char *)t + f->off + sizeof(const char **));
  cr__cfg_add_verb(L, w, v, mk, types, n);
}

void cr__cfg_set_event_type(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  if (cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    add_verb_at(L, w, v, cr__cfg_mk_val(L, obj, f->key), f, t);
}

void cr__cfg_set_event_types(struct ld *L, const struct where *w,
                             const json_t *obj, const struct field *f,
                             const json_t *v, void *t) {
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_ARRAY))
    return;
  for (size_t i = 0; i < json_array_size(v); i++)
    if (cr__cfg_want_item(L, w, f->key, v, i, JSON_STRING))
      add_verb_at(L, w, json_array_get(v, i), cr__cfg_mk_item(L, v, i), f, t);
}

/* Checks a system_event_sources mapping (subject type -> list of ids).
 * Returns 1 when it is valid. Shared with config_alerts.c. */
int cr__cfg_check_sources(struct ld *L, const struct where *w,
                          const json_t *obj, const char *key, const json_t *v) {
  const char *k;
  json_t *ids;
  int ok = 1;
  if (!cr__cfg_want(L, w, obj, key, v, JSON_OBJECT))
    return 0;
  json_object_foreach((json_t *)v, k, ids) {
    if (!cr_vocab_is_subject_type(k)) {
      const char *sug = cr_vocab_suggest_subject_type(k);
      char dym[160] = "";
      if (sug != NULL)
        snprintf(dym, sizeof dym, " (did you mean '%s'?)", sug);
      cr__cfg_err_at(L, cr__cfg_mk_key(L, v, k),
                     "unknown subject type '%.64s' %s%s", k, w->in, dym);
      ok = 0;
      continue;
    }
    if (!cr__cfg_want(L, w, v, k, ids, JSON_ARRAY)) {
      ok = 0;
      continue;
    }
    for (size_t i = 0; i < json_array_size(ids); i++)
      ok &= cr__cfg_want_item(L, w, k, ids, i, JSON_STRING);
  }
  return ok;
}

static void set_sources(struct ld *L, const struct where *w, const json_t *obj,
                        const struct field *f, const json_t *v, void *t) {
  sub_t *s = t;
  cr__cfg_check_sources(L, w, obj, f->key, v);
  if (json_is_object(v))
    s->sources = v;
}

static void set_webhook_url(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  sub_t *s = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  const char *u = json_string_value(v);
  const char *rest = strncmp(u, "https://", 8) == 0  ? u + 8
                     : strncmp(u, "http://", 7) == 0 ? u + 7
                                                     : NULL;
  /* The URL is not echoed: webhook URLs often embed a token. */
  if (rest == NULL || *rest == '\0' || *rest == '/')
    cr__cfg_err_at(
        L, cr__cfg_mk_val(L, obj, f->key),
        "'webhook_url' %s must be an http:// or https:// URL with a host",
        w->in);
  else
    s->webhook_url = u;
}

/* Checks a headers mapping (name -> string value) and returns its copy
 * with every value resolved as a secret reference (redact: register the
 * values with the redactor), or NULL when invalid. Shared with the alerts'
 * webhook channel. */
json_t *cr__cfg_headers(struct ld *L, const struct where *w, const json_t *obj,
                        const char *key, const json_t *v, int redact) {
  const char *k;
  json_t *hv;
  int ok = 1;
  if (!cr__cfg_want(L, w, obj, key, v, JSON_OBJECT))
    return NULL;
  json_object_foreach((json_t *)v, k, hv) {
    if (!json_is_string(hv)) {
      cr__cfg_err_at(L, cr__cfg_mk_val(L, v, k),
                     "header '%.64s' %s: expected a string, got %s", k, w->in,
                     cr_json_type_noun(hv));
      ok = 0;
    } else if (k[0] == '\0' || strpbrk(k, ": \t\r\n") != NULL) {
      cr__cfg_err_at(L, cr__cfg_mk_key(L, v, k),
                     "invalid header name '%.64s' %s", k, w->in);
      ok = 0;
    }
  }
  return ok ? cr__cfg_resolve_tree(L, v, redact) : NULL;
}

static void set_headers(struct ld *L, const struct where *w, const json_t *obj,
                        const struct field *f, const json_t *v, void *t) {
  sub_t *s = t;
  json_t *r = cr__cfg_headers(L, w, obj, f->key, v, 0);
  if (r != NULL) {
    json_decref(s->headers);
    s->headers = r;
  }
}

static void set_sub_secret(struct ld *L, const struct where *w,
                           const json_t *obj, const struct field *f,
                           const json_t *v, void *t) {
  sub_t *s = t;
  char *r = cr__cfg_resolve_one(L, w, obj, f->key, v, 1);
  if (r != NULL && strncmp(r, "whsec_", 6) != 0) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'secret' %s must start with 'whsec_'", w->in);
    cr__cfg_free_secret(r);
    return;
  }
  cr__cfg_free_secret(s->secret);
  s->secret = r;
}

/* json_template: a string that must compile as Jsonnet (event_tpl.h). */
static void set_json_template(struct ld *L, const struct where *w,
                              const json_t *obj, const struct field *f,
                              const json_t *v, void *t) {
  sub_t *s = t;
  char err[512];
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  int rc =
      cr_event_tpl_check(json_string_value(v), NULL, NULL, err, sizeof err);
  if (rc == CR_ENOMEM) {
    L->nomem = 1;
    return;
  }
  if (rc != 0) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key), "json_template: %s", err);
    return;
  }
  s->json_template = json_string_value(v);
}

static const struct field webhook_fields[] = {
    {"system_event_type", FT_CUSTOM, 0, offsetof(sub_t, event_types), 0, 0,
     NULL, cr__cfg_set_event_type},
    {"system_event_multiple_types", FT_CUSTOM, 0, offsetof(sub_t, event_types),
     0, 0, NULL, cr__cfg_set_event_types},
    {"system_event_sources", FT_CUSTOM, 0, 0, 0, 0, NULL, set_sources},
    {"webhook_url", FT_CUSTOM, 1, 0, 0, 0, NULL, set_webhook_url},
    {"headers", FT_CUSTOM, 0, 0, 0, 0, NULL, set_headers},
    {"json_template", FT_CUSTOM, 0, 0, 0, 0, NULL, set_json_template},
    {"secret", FT_CUSTOM, 0, 0, 0, 0, NULL, set_sub_secret},
};

/* table_system_events: destination is a secret reference (a PostgreSQL URL
 * may hold a password), never echoed. */
static void set_export_to(struct ld *L, const struct where *w,
                          const json_t *obj, const struct field *f,
                          const json_t *v, void *t) {
  sub_t *s = t;
  char *r = cr__cfg_resolve_one(L, w, obj, f->key, v, 1);
  if (r == NULL)
    return;
  if (strncmp(r, "sqlite:", 7) != 0 && strncmp(r, "postgresql://", 13) != 0 &&
      strncmp(r, "postgres://", 11) != 0) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'destination' %s must be a sqlite:/path/file.db or "
                   "postgresql:// URL",
                   w->in);
    cr__cfg_free_secret(r);
    return;
  }
  /* A relative SQLite path is relative to this file, as other paths are. */
  if (strncmp(r, "sqlite:", 7) == 0 && r[7] != '/' && r[7] != '\0') {
    char *joined = cr__cfg_join_path(L->doc->dir, r + 7);
    size_t n = joined ? strlen(joined) + 8 : 0;
    char *abs = joined ? cr__malloc(n) : NULL;
    if (abs != NULL)
      snprintf(abs, n, "sqlite:%s", joined);
    cr__free(joined);
    cr__cfg_free_secret(r);
    if (abs == NULL) {
      L->nomem = 1;
      return;
    }
    r = abs;
  }
  cr__cfg_free_secret(s->export_to);
  s->export_to = r;
}

/* A table name: a SQL identifier we quote ourselves, [A-Za-z_][A-Za-z0-9_]*
 * up to 63 bytes (PostgreSQL's limit). */
static void set_export_table(struct ld *L, const struct where *w,
                             const json_t *obj, const struct field *f,
                             const json_t *v, void *t) {
  sub_t *s = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  const char *n = json_string_value(v);
  size_t len = strlen(n),
         ok = len > 0 && len < 64 && !(n[0] >= '0' && n[0] <= '9');
  for (size_t i = 0; ok && i < len; i++)
    ok = (n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
         (n[i] >= '0' && n[i] <= '9') || n[i] == '_';
  if (!ok)
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'table' %s must be a name of letters, digits and _ (not "
                   "starting with a digit, at most 63 bytes)",
                   w->in);
  else
    s->export_table = n;
}

static const char *const from_names[] = {"now", "start", NULL};

static const struct field table_fields[] = {
    {"system_event_type", FT_CUSTOM, 0, offsetof(sub_t, event_types), 0, 0,
     NULL, cr__cfg_set_event_type},
    {"system_event_multiple_types", FT_CUSTOM, 0, offsetof(sub_t, event_types),
     0, 0, NULL, cr__cfg_set_event_types},
    {"system_event_sources", FT_CUSTOM, 0, 0, 0, 0, NULL, set_sources},
    {"destination", FT_CUSTOM, 1, 0, 0, 0, NULL, set_export_to},
    {"table", FT_CUSTOM, 0, 0, 0, 0, NULL, set_export_table},
    {"batch_size", FT_INT, 0, offsetof(sub_t, export_batch), 1, 10000, NULL,
     NULL},
    {"from", FT_ENUM, 0, offsetof(sub_t, export_from_start), 0, 0, from_names,
     NULL},
};

/* The workflows a subscription can use, each with its config keys. */
static const struct workflow {
  const char *name;
  const struct field *fields;
  size_t n_fields;
} workflows[] = {
    {"webhook_system_events", webhook_fields, N_OF(webhook_fields)},
    {"table_system_events", table_fields, N_OF(table_fields)},
};

static const struct workflow *find_workflow(const char *name) {
  for (size_t i = 0; name != NULL && i < N_OF(workflows); i++)
    if (strcmp(workflows[i].name, name) == 0)
      return &workflows[i];
  return NULL;
}

static void set_workflow(struct ld *L, const struct where *w, const json_t *obj,
                         const struct field *f, const json_t *v, void *t) {
  sub_t *s = t;
  const char *names[N_OF(workflows)];
  char dym[160], list[256];
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  if (find_workflow(json_string_value(v)) != NULL) {
    s->workflow = json_string_value(v);
    return;
  }
  for (size_t i = 0; i < N_OF(workflows); i++)
    names[i] = workflows[i].name;
  cr__cfg_err_at(
      L, cr__cfg_mk_val(L, obj, f->key),
      "unknown workflow '%.64s' %s%s; expected %s", json_string_value(v), w->in,
      cr__cfg_did_you_mean(json_string_value(v), names, N_OF(names), dym,
                           sizeof dym),
      cr__cfg_join_names(names, N_OF(names), " or ", list, sizeof list));
}

static void set_sub_config(struct ld *L, const struct where *w,
                           const json_t *obj, const struct field *f,
                           const json_t *v, void *t) {
  sub_t *s = t;
  if (cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    s->config = v;
}

/* delivery.retry_schedule: a list of 1..20 durations, the first attempt's
 * delay first (usually 0s). */
static void set_retry_schedule(struct ld *L, const struct where *w,
                               const json_t *obj, const struct field *f,
                               const json_t *v, void *t) {
  sub_t *s = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_ARRAY))
    return;
  size_t n = json_array_size(v);
  if (n < 1 || n > 20) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'retry_schedule' %s needs 1 to 20 delays, got %zu", w->in,
                   n);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *d = json_array_get(v, i);
    int64_t ms = 0;
    if (!json_is_string(d) ||
        cr_config_parse_duration(json_string_value(d), &ms) != 0) {
      cr__cfg_err_at(L, cr__cfg_mk_item(L, v, i),
                     "retry_schedule item %zu %s is not a duration (0s, 5s, "
                     "5m, 2h...)",
                     i + 1, w->in);
      return;
    }
    int64_t *slot = cr__cfg_grow(L, (void **)&s->retry_schedule_ms,
                                 &s->n_retry_schedule, sizeof *slot);
    if (slot == NULL)
      return;
    *slot = ms;
  }
}

static const char *const batch_format_names[] = {"json", "ndjson", NULL};

static const struct field batch_fields[] = {
    {"max_events", FT_INT, 0, offsetof(sub_t, batch_max_events), 1, 10000, NULL,
     NULL},
    {"max_bytes", FT_INT, 0, offsetof(sub_t, batch_max_bytes_i), 1024,
     16 * 1024 * 1024, NULL, NULL},
    {"max_wait", FT_DURATION, 0, offsetof(sub_t, batch_max_wait_ms), 0,
     MS_PER_S * 60, NULL, NULL},
    {"format", FT_ENUM, 0, offsetof(sub_t, batch_ndjson), 0, 0,
     batch_format_names, NULL},
};

/* delivery.batch: POST events in batches (events/batch_delivery.h). */
static void set_batch(struct ld *L, const struct where *w, const json_t *obj,
                      const struct field *f, const json_t *v, void *t) {
  sub_t *s = t;
  struct where bw;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  s->batch = 1;
  cr__cfg_where_set(&bw, "batch of %s", w->noun);
  cr__cfg_apply(L, &bw, v, batch_fields, N_OF(batch_fields), t);
  s->batch_max_bytes = s->batch_max_bytes_i;
}

static const struct field delivery_fields[] = {
    {"timeout", FT_DURATION, 0, offsetof(sub_t, timeout_ms), MS_PER_S,
     MS_PER_S * 300, NULL, NULL},
    {"retry_schedule", FT_CUSTOM, 0, 0, 0, 0, NULL, set_retry_schedule},
    {"max_in_flight", FT_INT, 0, offsetof(sub_t, max_in_flight), 1, 256, NULL,
     NULL},
    {"disable_after", FT_DURATION, 0, offsetof(sub_t, disable_after_ms),
     MS_PER_S * 60, MS_PER_S * 86400 * 365, NULL, NULL},
    {"batch", FT_CUSTOM, 0, 0, 0, 0, NULL, set_batch},
};

static void set_delivery(struct ld *L, const struct where *w, const json_t *obj,
                         const struct field *f, const json_t *v, void *t) {
  struct where dw;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  cr__cfg_where_set(&dw, "delivery of %s", w->noun);
  cr__cfg_apply(L, &dw, v, delivery_fields, N_OF(delivery_fields), t);
}

static const struct field sub_fields[] = {
    {"id", FT_ID, 1, offsetof(sub_t, id), 0, 0, NULL, NULL},
    {"name", FT_STR, 0, offsetof(sub_t, name), 0, 0, NULL, NULL},
    {"workflow", FT_CUSTOM, 1, 0, 0, 0, NULL, set_workflow},
    {"enabled", FT_BOOL, 0, offsetof(sub_t, enabled), 0, 0, NULL, NULL},
    {"config", FT_CUSTOM, 1, 0, 0, 0, NULL, set_sub_config},
    {"delivery", FT_CUSTOM, 0, 0, 0, 0, NULL, set_delivery},
};

void cr__cfg_add_subscription(struct ld *L, const json_t *item, size_t index) {
  struct where w, cw;
  cr_config *cfg = L->cfg;
  cr__cfg_item_where(&w, "subscription", item, index);
  if (!cr__cfg_want_map(L, &w, item, cr__cfg_mk_node(L, item)))
    return;
  sub_t *s = cr__cfg_grow(L, (void **)&cfg->subscriptions,
                          &cfg->n_subscriptions, sizeof *s);
  if (s == NULL)
    return;
  s->def = item;
  s->mark = cr__cfg_mark_copy(L, item);
  s->config_hash = cr_config_hash_json(item);
  s->enabled = 1;
  s->timeout_ms = 15 * MS_PER_S;
  s->max_in_flight = 16;
  s->disable_after_ms = INT64_C(5) * 86400 * MS_PER_S;
  s->batch_max_events = 1000;
  s->batch_max_bytes_i = 1024 * 1024;
  s->batch_max_bytes = s->batch_max_bytes_i;
  s->batch_max_wait_ms = MS_PER_S;
  s->export_table = "system_events";
  s->export_batch = 5000;
  cr__cfg_apply(L, &w, item, sub_fields, N_OF(sub_fields), s);
  if (s->name == NULL)
    s->name = s->id;
  const struct workflow *wf = find_workflow(s->workflow);
  cr__cfg_where_set(&cw, "config of %s", w.noun);
  if (wf != NULL && s->config != NULL)
    cr__cfg_apply(L, &cw, s->config, wf->fields, wf->n_fields, s);
  cr__cfg_default_object(L, &s->headers, &s->mark);
}
