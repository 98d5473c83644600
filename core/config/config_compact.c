/* config_compact.c: a loaded configuration made small (cr_config_compact):
 * the JSON trees of its authorizations and works become compact JSON text,
 * and the strings that pointed into them are copied into one pool owned by
 * the configuration; and the accessors that read credentials, settings,
 * work configs and definitions in either form (config.h).
 *
 * Why: jansson spends about 1.2 KiB on the tree of a small authorization or
 * work (an object with its hash table, a pair per key, a string per value),
 * so 10,000 of each held a daemon at 63 MiB; as text they take about 150
 * bytes. The trees are needed while a configuration is loaded and checked
 * (diagnostics point into them); a running daemon only reads them when an
 * execution, a health check or a remote claim starts, and parses then. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_int.h"
#include "util/alloc.h"
#include "util/error.h"

/* ---- The pool: chunks that live as long as the configuration ---- */

#define POOL_CHUNK ((size_t)64 * 1024)

struct cr__cfg_pool {
  struct cr__cfg_pool *next;
  size_t used, cap;
  char data[];
};

/* A copy of the n bytes at s and a NUL, in cfg's pool; NULL on ENOMEM. */
static char *pool_copy(cr_config *cfg, const char *s, size_t n) {
  struct cr__cfg_pool **head = &cfg->priv->pool, *c = *head;
  if (c == NULL || c->cap - c->used < n + 1) {
    size_t cap = n + 1 > POOL_CHUNK ? n + 1 : POOL_CHUNK;
    if ((c = cr__malloc(sizeof *c + cap)) == NULL)
      return NULL;
    c->next = *head;
    c->used = 0;
    c->cap = cap;
    *head = c;
  }
  char *p = c->data + c->used;
  memcpy(p, s, n);
  p[n] = '\0';
  c->used += n + 1;
  return p;
}

/* Moves the string *slot (may be NULL) into the pool. */
static int pool_str(cr_config *cfg, const char **slot) {
  if (*slot == NULL)
    return 0;
  char *p = pool_copy(cfg, *slot, strlen(*slot));
  if (p == NULL)
    return CR_ENOMEM;
  *slot = p;
  return 0;
}

/* v as compact JSON in the pool (*out stays NULL when v is NULL). The text
 * jansson made is wiped: it may hold credentials. */
static int pool_json(cr_config *cfg, const json_t *v, char **out) {
  if (v == NULL)
    return 0;
  char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (t == NULL)
    return CR_ENOMEM;
  size_t n = strlen(t);
  *out = pool_copy(cfg, t, n);
  cr__secret_wipe(t, n);
  free(t);
  return *out != NULL ? 0 : CR_ENOMEM;
}

void cr__cfg_pool_free(struct cr__cfg_pool *c) {
  while (c != NULL) {
    struct cr__cfg_pool *next = c->next;
    cr__secret_wipe_free(c, sizeof *c + c->cap); /* credentials live here */
    c = next;
  }
}

/* ---- Compaction ---- */

/* Moves an object's id, its name (which may be the id itself) and the n
 * other strings at strs into the pool. */
static int pool_strs(cr_config *cfg, const char **id, const char **name,
                     const char **const *strs, size_t n) {
  int same_name = *name == *id;
  if (pool_str(cfg, id) != 0)
    return CR_ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (pool_str(cfg, strs[i]) != 0)
      return CR_ENOMEM;
  if (same_name)
    *name = *id;
  else if (pool_str(cfg, name) != 0)
    return CR_ENOMEM;
  return 0;
}

static int compact_auth(cr_config *cfg, struct cr_config_auth *a) {
  if (a->def == NULL) /* compacted before */
    return 0;
  const char **strs[] = {&a->description, &a->provider, &a->method, &a->owner};
  if (pool_strs(cfg, &a->id, &a->name, strs, sizeof strs / sizeof *strs) != 0)
    return CR_ENOMEM;
  if (pool_json(cfg, a->credentials, &a->credentials_json) != 0 ||
      pool_json(cfg, a->settings, &a->settings_json) != 0)
    return CR_ENOMEM;
  json_decref(a->credentials);
  a->credentials = NULL;
  a->settings = NULL;
  a->def = NULL;
  return 0;
}

static int compact_work(cr_config *cfg, struct cr_config_work *w) {
  if (w->def == NULL)
    return 0;
  const char **strs[] = {
      &w->description,          &w->provider,
      &w->authorization,        &w->schedule.every,
      &w->schedule.cron,        &w->schedule.tz,
      &w->destination.provider, &w->destination.authorization};
  if (pool_strs(cfg, &w->id, &w->name, strs, sizeof strs / sizeof *strs) != 0)
    return CR_ENOMEM;
  for (size_t i = 0; i < w->n_runner_labels; i++)
    if (pool_str(cfg, &w->runner_labels[i]) != 0)
      return CR_ENOMEM;
  if (pool_json(cfg, w->config, &w->config_json) != 0 ||
      pool_json(cfg, w->def, &w->def_json) != 0)
    return CR_ENOMEM;
  json_decref(w->config);
  w->config = NULL;
  w->def = w->schedule.def = w->destination.def = NULL;
  return 0;
}

int cr_config_compact(cr_config *cfg) {
  if (cfg == NULL)
    return CR_EINVAL;
  cr_config_drop_positions(cfg); /* the positions point at the trees */
  for (size_t i = 0; i < cfg->n_auths; i++)
    if (compact_auth(cfg, &cfg->auths[i]) != 0)
      return CR_ENOMEM;
  for (size_t i = 0; i < cfg->n_works; i++)
    if (compact_work(cfg, &cfg->works[i]) != 0)
      return CR_ENOMEM;
  /* Nothing points into these any more: free them. */
  for (size_t i = 0; i < cfg->priv->n_docs; i++) {
    json_t *root = cfg->priv->docs[i].root;
    if (json_is_object(root)) {
      json_object_del(root, "authorizations");
      json_object_del(root, "works");
    }
  }
  return 0;
}

/* ---- Accessors (both forms) ---- */

/* A malloc'd copy of text, or of v as compact JSON, or of "{}". */
static char *text_of(const char *text, const json_t *v) {
  if (text != NULL)
    return strdup(text);
  return v != NULL ? json_dumps(v, JSON_COMPACT) : strdup("{}");
}

/* A new object parsed from text, or a deep copy of v, or {}. */
static json_t *tree_of(const char *text, const json_t *v) {
  if (text != NULL)
    return json_loads(text, JSON_DECODE_ANY, NULL);
  return v != NULL ? json_deep_copy(v) : json_object();
}

char *cr_config_auth_credentials_text(const struct cr_config_auth *a) {
  return a != NULL ? text_of(a->credentials_json, a->credentials)
                   : strdup("{}");
}

json_t *cr_config_auth_credentials(const struct cr_config_auth *a) {
  return a != NULL ? tree_of(a->credentials_json, a->credentials)
                   : json_object();
}

char *cr_config_settings_json(const struct cr_config_auth *a) {
  return a != NULL ? text_of(a->settings_json, a->settings) : strdup("{}");
}

json_t *cr_config_auth_settings(const struct cr_config_auth *a) {
  if (a == NULL || (a->settings == NULL && a->settings_json == NULL))
    return NULL;
  return tree_of(a->settings_json, a->settings);
}

char *cr_config_work_config_text(const struct cr_config_work *w) {
  return w != NULL ? text_of(w->config_json, w->config) : strdup("{}");
}

json_t *cr_config_work_def(const struct cr_config_work *w) {
  return w != NULL ? tree_of(w->def_json, w->def) : json_object();
}
