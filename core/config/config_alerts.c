/* config_alerts.c: the alerts: section of the configuration loader (see
 * config_int.h): each alert's channel (email with its resolved password, or
 * webhook), its rules (error_rate, events, default), the cross-references
 * checked once every file is applied (at most one default, known works) and
 * freeing what an alert owns. */
#include "config/config.h"
#include "config/config_int.h"

#include "events/event_tpl.h"
#include "events/mail.h"
#include "events/vocab.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Replaces, in the copy, every string under a "password" key by its
 * resolved value. */
static void resolve_passwords(struct ld *L, const json_t *def, json_t *copy) {
  const char *k;
  json_t *v;
  if (json_is_array(def)) {
    for (size_t i = 0; i < json_array_size(def); i++)
      resolve_passwords(L, json_array_get(def, i), json_array_get(copy, i));
    return;
  }
  json_object_foreach((json_t *)def, k, v) {
    json_t *cv = json_object_get(copy, k);
    if (strcmp(k, "password") == 0 && json_is_string(v)) {
      struct where w;
      cr__cfg_where_set(&w, "alert");
      char *r = cr__cfg_resolve_one(L, &w, def, k, v, 1);
      if (r != NULL && json_object_set_new(copy, k, json_string(r)) != 0)
        L->nomem = 1;
      cr__cfg_free_secret(r);
    } else {
      resolve_passwords(L, v, cv);
    }
  }
}

static const char *const starttls_names[] = {"auto", "require", "never", NULL};

static void set_alert_email_url(struct ld *L, const struct where *w,
                                const json_t *obj, const struct field *f,
                                const json_t *v, void *t) {
  alert_t *a = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  const char *u = json_string_value(v);
  const char *rest = strncmp(u, "smtps://", 8) == 0  ? u + 8
                     : strncmp(u, "smtp://", 7) == 0 ? u + 7
                                                     : NULL;
  if (rest == NULL || *rest == '\0' || *rest == '/')
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'url' %s must be an smtp:// or smtps:// URL with a host",
                   w->in);
  else
    a->email_url = u;
}

/* The password was resolved into a->resolved (resolve_passwords): point at
 * the resolved value. */
static void set_alert_password(struct ld *L, const struct where *w,
                               const json_t *obj, const struct field *f,
                               const json_t *v, void *t) {
  alert_t *a = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  const json_t *ch = json_object_get(a->resolved, "channel");
  const json_t *p = json_object_get(json_object_get(ch, "email"), "password");
  if (json_is_string(p))
    a->email_password = json_string_value(p);
}

static void set_alert_to(struct ld *L, const struct where *w, const json_t *obj,
                         const struct field *f, const json_t *v, void *t) {
  alert_t *a = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_ARRAY))
    return;
  size_t n = json_array_size(v);
  if (n < 1 || n > CR_ALERT_MAX_TO) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'to' %s needs 1 to %d addresses, got %zu", w->in,
                   CR_ALERT_MAX_TO, n);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (!cr__cfg_want_item(L, w, f->key, v, i, JSON_STRING))
      continue;
    const char *addr = json_string_value(json_array_get(v, i));
    if (strchr(addr, '@') == NULL || strpbrk(addr, "<> \t\r\n") != NULL) {
      cr__cfg_err_at(L, cr__cfg_mk_item(L, v, i),
                     "'to' item %zu %s is not an e-mail address", i + 1, w->in);
      continue;
    }
    const char **slot =
        cr__cfg_grow(L, (void **)&a->email_to, &a->n_email_to, sizeof *slot);
    if (slot == NULL)
      return;
    *slot = addr;
  }
}

static const struct field alert_email_fields[] = {
    {"url", FT_CUSTOM, 1, 0, 0, 0, NULL, set_alert_email_url},
    {"username", FT_STR, 0, offsetof(alert_t, email_username), 0, 0, NULL,
     NULL},
    {"password", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_password},
    {"from", FT_NONEMPTY, 1, offsetof(alert_t, email_from), 0, 0, NULL, NULL},
    {"to", FT_CUSTOM, 1, 0, 0, 0, NULL, set_alert_to},
    {"starttls", FT_ENUM, 0, offsetof(alert_t, email_starttls), 0, 0,
     starttls_names, NULL},
};

static void set_alert_webhook_url(struct ld *L, const struct where *w,
                                  const json_t *obj, const struct field *f,
                                  const json_t *v, void *t) {
  alert_t *a = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  const char *u = json_string_value(v);
  const char *rest = strncmp(u, "https://", 8) == 0  ? u + 8
                     : strncmp(u, "http://", 7) == 0 ? u + 7
                                                     : NULL;
  /* The URL is not echoed: webhook URLs often embed a token. */
  if (rest == NULL || *rest == '\0' || *rest == '/')
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'url' %s must be an http:// or https:// URL with a host",
                   w->in);
  else
    a->webhook_url = u;
}

static void set_alert_headers(struct ld *L, const struct where *w,
                              const json_t *obj, const struct field *f,
                              const json_t *v, void *t) {
  alert_t *a = t;
  json_t *r = cr__cfg_headers(L, w, obj, f->key, v, 1);
  if (r != NULL) {
    json_decref(a->webhook_headers);
    a->webhook_headers = r;
  }
}

static void set_alert_template(struct ld *L, const struct where *w,
                               const json_t *obj, const struct field *f,
                               const json_t *v, void *t) {
  alert_t *a = t;
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
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key), "json_template %s: %s",
                   w->in, err);
    return;
  }
  a->json_template = json_string_value(v);
}

static const struct field alert_webhook_fields[] = {
    {"url", FT_CUSTOM, 1, 0, 0, 0, NULL, set_alert_webhook_url},
    {"headers", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_headers},
    {"json_template", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_template},
};

static void set_alert_email(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  alert_t *a = t;
  struct where ew;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  a->channel = CR_ALERT_CHANNEL_EMAIL;
  cr__cfg_where_set(&ew, "email %s", w->noun);
  cr__cfg_apply(L, &ew, v, alert_email_fields, N_OF(alert_email_fields), a);
  static const int tls[] = {CR_MAIL_STARTTLS_AUTO, CR_MAIL_STARTTLS_REQUIRE,
                            CR_MAIL_STARTTLS_NEVER};
  a->email_starttls = tls[a->email_starttls];
}

static void set_alert_webhook(struct ld *L, const struct where *w,
                              const json_t *obj, const struct field *f,
                              const json_t *v, void *t) {
  alert_t *a = t;
  struct where hw;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  a->channel = CR_ALERT_CHANNEL_WEBHOOK;
  cr__cfg_where_set(&hw, "webhook %s", w->noun);
  cr__cfg_apply(L, &hw, v, alert_webhook_fields, N_OF(alert_webhook_fields), a);
  cr__cfg_default_object(L, &a->webhook_headers, &a->mark);
}

static const struct field alert_channel_fields[] = {
    {"email", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_email},
    {"webhook", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_webhook},
};

/* channel: exactly one of email / webhook. */
static void set_alert_channel(struct ld *L, const struct where *w,
                              const json_t *obj, const struct field *f,
                              const json_t *v, void *t) {
  struct where cw;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  const json_t *e = json_object_get(v, "email"),
               *h = json_object_get(v, "webhook");
  int ne = e != NULL && !json_is_null(e), nh = h != NULL && !json_is_null(h);
  cr__cfg_where_set(&cw, "channel of %s", w->noun);
  if (ne && nh) {
    cr__cfg_err_at(L, cr__cfg_mk_key(L, v, "webhook"),
                   "%s has both 'email' and 'webhook': give exactly one",
                   cw.noun);
    return;
  }
  if (!ne && !nh)
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "%s needs one of 'email' or 'webhook'", cw.noun);
  cr__cfg_apply(L, &cw, v, alert_channel_fields, N_OF(alert_channel_fields), t);
}

static void set_alert_works(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  alert_t *a = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_ARRAY))
    return;
  for (size_t i = 0; i < json_array_size(v); i++) {
    if (!cr__cfg_want_item(L, w, f->key, v, i, JSON_STRING))
      continue;
    const char **slot =
        cr__cfg_grow(L, (void **)&a->works, &a->n_works, sizeof *slot);
    if (slot == NULL)
      return;
    *slot = json_string_value(json_array_get(v, i));
  }
}

static const struct field alert_rate_fields[] = {
    {"threshold", FT_INT, 0, offsetof(alert_t, threshold_pct), 1, 100, NULL,
     NULL},
    {"window", FT_DURATION, 0, offsetof(alert_t, window_ms), 60 * MS_PER_S,
     30 * MS_PER_DAY, NULL, NULL},
    {"min_executions", FT_INT, 0, offsetof(alert_t, min_executions), 1, 1000000,
     NULL, NULL},
    {"works", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_works},
};

static void set_alert_rate(struct ld *L, const struct where *w,
                           const json_t *obj, const struct field *f,
                           const json_t *v, void *t) {
  alert_t *a = t;
  struct where rw;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  a->has_error_rate = 1;
  cr__cfg_where_set(&rw, "error_rate of %s", w->noun);
  cr__cfg_apply(L, &rw, v, alert_rate_fields, N_OF(alert_rate_fields), a);
}

static void set_alert_sources(struct ld *L, const struct where *w,
                              const json_t *obj, const struct field *f,
                              const json_t *v, void *t) {
  alert_t *a = t;
  if (cr__cfg_check_sources(L, w, obj, f->key, v))
    a->event_sources = v;
}

static const struct field alert_events_fields[] = {
    {"system_event_type", FT_CUSTOM, 0, offsetof(alert_t, event_types), 0, 0,
     NULL, cr__cfg_set_event_type},
    {"system_event_multiple_types", FT_CUSTOM, 0,
     offsetof(alert_t, event_types), 0, 0, NULL, cr__cfg_set_event_types},
    {"system_event_sources", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_sources},
};

static void set_alert_events(struct ld *L, const struct where *w,
                             const json_t *obj, const struct field *f,
                             const json_t *v, void *t) {
  alert_t *a = t;
  struct where ew;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  a->has_events = 1;
  cr__cfg_where_set(&ew, "events of %s", w->noun);
  cr__cfg_apply(L, &ew, v, alert_events_fields, N_OF(alert_events_fields), a);
}

static const struct field alert_fields[] = {
    {"id", FT_ID, 1, offsetof(alert_t, id), 0, 0, NULL, NULL},
    {"name", FT_STR, 0, offsetof(alert_t, name), 0, 0, NULL, NULL},
    {"channel", FT_CUSTOM, 1, 0, 0, 0, NULL, set_alert_channel},
    {"default", FT_BOOL, 0, offsetof(alert_t, is_default), 0, 0, NULL, NULL},
    {"error_rate", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_rate},
    {"events", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alert_events},
};

void cr__cfg_add_alert(struct ld *L, const json_t *item, size_t index) {
  struct where w;
  cr_config *cfg = L->cfg;
  cr__cfg_item_where(&w, "alert", item, index);
  if (!cr__cfg_want_map(L, &w, item, cr__cfg_mk_node(L, item)))
    return;
  alert_t *a =
      cr__cfg_grow(L, (void **)&cfg->alerts, &cfg->n_alerts, sizeof *a);
  if (a == NULL)
    return;
  a->def = item;
  a->mark = cr__cfg_mark_copy(L, item);
  a->config_hash = cr_config_hash_json(item);
  a->threshold_pct = CR_ALERT_DEFAULT_THRESHOLD;
  a->window_ms = CR_ALERT_DEFAULT_WINDOW_MS;
  a->min_executions = CR_ALERT_DEFAULT_MIN_EXECUTIONS;
  if ((a->resolved = json_deep_copy(item)) == NULL) {
    L->nomem = 1;
    return;
  }
  resolve_passwords(L, item, a->resolved);
  cr__cfg_apply(L, &w, item, alert_fields, N_OF(alert_fields), a);
  if (a->name == NULL)
    a->name = a->id;
  if (a->is_default && a->channel == CR_ALERT_CHANNEL_WEBHOOK)
    cr__cfg_err_at(L, cr__cfg_mk_val(L, item, "default"),
                   "%s: 'default: true' needs an email channel (it sends the "
                   "error e-mails of works with error_email_notifications)",
                   w.noun);
  if (a->is_default)
    a->has_error_rate = 1;
  if (!a->has_error_rate && !a->has_events)
    cr__cfg_err_at(L, cr__cfg_mk_node(L, item),
                   "%s has no rule: give 'error_rate', 'events' or "
                   "'default: true'",
                   w.noun);
}

/* Cross-references of the alerts: at most one default, known works. */
void cr__cfg_finish_alerts(struct ld *L) {
  cr_config *cfg = L->cfg;
  char first[300], dym[160];
  const alert_t *def = NULL;
  L->doc = NULL;
  for (size_t i = 0; i < cfg->n_alerts; i++) {
    alert_t *a = &cfg->alerts[i];
    if (a->is_default && def != NULL) {
      const struct cr_mark *here = cr__cfg_mk_val(L, a->def, "default");
      cr__cfg_err_at(L, here,
                     "alert '%s' says 'default: true' but alert '%s' already "
                     "does (at %s): at most one alert may be the default",
                     a->id ? a->id : "?", def->id ? def->id : "?",
                     cr__cfg_where_first(cr__cfg_mk_val(L, def->def, "default"),
                                         here, first, sizeof first));
    } else if (a->is_default) {
      def = a;
    }
    const json_t *works =
        json_object_get(json_object_get(a->def, "error_rate"), "works");
    for (size_t j = 0; j < a->n_works && json_is_array(works); j++) {
      if (cr_config_find_work(cfg, a->works[j]) != NULL)
        continue;
      const char **ids = cr__calloc(cfg->n_works + 1, sizeof *ids);
      if (ids == NULL) {
        L->nomem = 1;
        return;
      }
      for (size_t k = 0; k < cfg->n_works; k++)
        ids[k] = cfg->works[k].id;
      size_t pos = 0; /* the item of this id in the list */
      for (size_t k = 0; k < json_array_size(works); k++)
        if (json_array_get(works, k) != NULL &&
            json_is_string(json_array_get(works, k)) &&
            json_string_value(json_array_get(works, k)) == a->works[j])
          pos = k;
      cr__cfg_err_at(L, cr__cfg_mk_item(L, works, pos),
                     "alert '%s' references unknown work '%.128s'%s",
                     a->id ? a->id : "?", a->works[j],
                     cr__cfg_did_you_mean(a->works[j], ids, cfg->n_works, dym,
                                          sizeof dym));
      cr__free(ids);
    }
  }
}

void cr__cfg_free_alert(alert_t *a) {
  cr__free(a->email_to);
  cr__free(a->works);
  cr__free(a->event_types);
  json_decref(a->webhook_headers);
  json_decref(a->resolved);
}
