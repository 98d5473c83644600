/* config_api.c: the REST API keys of the host: section (see config_int.h):
 * api_tokens with their scopes, api: (the server's limits and its
 * rate_limit), tls: (the certificate and key files), and the defaults of
 * struct cr_config_api. */
#include "config/config_int.h"

#include <string.h>

#include "util/alloc.h"
#include "util/error.h"

typedef struct cr_config_api_token token_t;
typedef struct cr_config_api api_t;

static const char *const scope_names[] = {"read", "write", "admin", "runner",
                                          NULL};

void cr__cfg_api_defaults(struct cr_config_api *a) {
  a->threads = 2;
  a->max_connections = 1024;
  a->max_per_ip = 0;
  a->timeout_ms = 30 * MS_PER_S;
  a->max_body_bytes = 1 << 20;
}

static void set_token_value(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  token_t *tok = t;
  char *s = cr__cfg_resolve_one(L, w, obj, f->key, v, 1);
  if (s != NULL && s[0] == '\0') {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key), "'%s' %s is empty",
                   f->key, w->in);
    cr__cfg_free_secret(s);
    return;
  }
  cr__cfg_free_secret(tok->token);
  tok->token = s;
}

static int scope_bit(const char *name) {
  for (int i = 0; scope_names[i] != NULL; i++)
    if (strcmp(scope_names[i], name) == 0)
      return 1 << i;
  return 0;
}

static void set_scopes(struct ld *L, const struct where *w, const json_t *obj,
                       const struct field *f, const json_t *v, void *t) {
  token_t *tok = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_ARRAY))
    return;
  tok->scopes = 0;
  for (size_t i = 0; i < json_array_size(v); i++) {
    if (!cr__cfg_want_item(L, w, f->key, v, i, JSON_STRING))
      continue;
    const char *name = json_string_value(json_array_get(v, i));
    int bit = scope_bit(name);
    if (bit == 0)
      cr__cfg_err_at(L, cr__cfg_mk_item(L, v, i),
                     "unknown scope '%.64s' %s (expected read, write, admin "
                     "or runner)",
                     name, w->in);
    tok->scopes |= bit;
  }
}

static const struct field token_fields[] = {
    {"name", FT_ID, 1, offsetof(token_t, name), 0, 0, NULL, NULL},
    {"token", FT_CUSTOM, 1, 0, 0, 0, NULL, set_token_value},
    {"scopes", FT_CUSTOM, 0, 0, 0, 0, NULL, set_scopes},
};

/* The name of entry e of a named list (its first member). */
static const char *entry_name(const void *e) { return *(const char *const *)e; }

void cr__cfg_named_list(struct ld *L, const struct where *w, const json_t *obj,
                        const char *key, const json_t *v,
                        const struct cr__cfg_list *spec, void **arr,
                        size_t *n) {
  if (!cr__cfg_want(L, w, obj, key, v, JSON_ARRAY))
    return;
  for (size_t i = 0; i < json_array_size(v); i++) {
    const json_t *item = json_array_get(v, i);
    struct where iw;
    if (!cr__cfg_want_item(L, w, key, v, i, JSON_OBJECT))
      continue;
    const json_t *name = json_object_get(item, "name");
    if (json_is_string(name))
      cr__cfg_where_set(&iw, "%s '%.64s'", spec->noun, json_string_value(name));
    else
      cr__cfg_where_set(&iw, "%s #%zu", spec->noun, i + 1);
    void *e = cr__cfg_grow(L, arr, n, spec->size);
    if (e == NULL)
      return;
    if (spec->init != NULL)
      spec->init(e);
    cr__cfg_apply(L, &iw, item, spec->fields, spec->n_fields, e);
    for (size_t j = 0; entry_name(e) != NULL && j + 1 < *n; j++) {
      const char *other = entry_name((const char *)*arr + j * spec->size);
      if (other != NULL && strcmp(other, entry_name(e)) == 0)
        cr__cfg_err_at(L, cr__cfg_mk_val(L, item, "name"),
                       "duplicate %s name '%s'", spec->noun, entry_name(e));
    }
  }
}

static void token_init(void *e) { ((token_t *)e)->scopes = CR_SCOPE_READ; }

void cr__cfg_set_api_tokens(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  static const struct cr__cfg_list spec = {"api token", sizeof(token_t),
                                           token_fields, N_OF(token_fields),
                                           token_init};
  struct cr_config_host *h = t;
  cr__cfg_named_list(L, w, obj, f->key, v, &spec, (void **)&h->api_tokens,
                     &h->n_api_tokens);
}

static const struct field rate_fields[] = {
    {"requests_per_second", FT_INT, 1, offsetof(api_t, rate_per_s), 1, 1000000,
     NULL, NULL},
    {"burst", FT_INT, 0, offsetof(api_t, rate_burst), 1, 1000000, NULL, NULL},
};

/* host.api.rate_limit: {requests_per_second, burst (default: the rate)}. */
static void set_rate_limit(struct ld *L, const struct where *w,
                           const json_t *obj, const struct field *f,
                           const json_t *v, void *t) {
  api_t *a = t;
  struct where rw;
  cr__cfg_where_set(&rw, "host.api.rate_limit");
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  cr__cfg_apply(L, &rw, v, rate_fields, N_OF(rate_fields), a);
  if (a->rate_burst == 0)
    a->rate_burst = a->rate_per_s;
}

static const struct field api_fields[] = {
    {"threads", FT_INT, 0, offsetof(api_t, threads), 1, 64, NULL, NULL},
    {"max_connections", FT_INT, 0, offsetof(api_t, max_connections), 1, 65536,
     NULL, NULL},
    {"max_connections_per_ip", FT_INT, 0, offsetof(api_t, max_per_ip), 0, 65536,
     NULL, NULL},
    {"timeout", FT_DURATION, 0, offsetof(api_t, timeout_ms), MS_PER_S,
     3600 * MS_PER_S, NULL, NULL},
    {"max_body_bytes", FT_INT, 0, offsetof(api_t, max_body_bytes), 1024,
     1 << 30, NULL, NULL},
    {"rate_limit", FT_CUSTOM, 0, 0, 0, 0, NULL, set_rate_limit},
};

void cr__cfg_set_api(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, void *t) {
  struct where aw;
  cr__cfg_where_set(&aw, "host.api");
  if (cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    cr__cfg_apply(L, &aw, v, api_fields, N_OF(api_fields),
                  &((struct cr_config_host *)t)->api);
}

static const struct field tls_fields[] = {
    {"cert", FT_PATH, 1, offsetof(api_t, tls_cert), 0, 0, NULL, NULL},
    {"key", FT_PATH, 1, offsetof(api_t, tls_key), 0, 0, NULL, NULL},
};

void cr__cfg_set_tls(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, void *t) {
  struct where tw;
  cr__cfg_where_set(&tw, "host.tls");
  if (cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    cr__cfg_apply(L, &tw, v, tls_fields, N_OF(tls_fields),
                  &((struct cr_config_host *)t)->api);
}

/* ---- Objects created through the API ---- */

int cr__cfg_add_api_doc(struct ld *L, const json_t *root) {
  struct cr__config_priv *p = L->cfg->priv;
  struct doc *doc = cr__cfg_grow(L, (void **)&p->docs, &p->n_docs, sizeof *doc);
  if (doc == NULL)
    return CR_ENOMEM;
  doc->file = cr_marks_file(L->cfg->marks, "api");
  doc->root = json_deep_copy(root);
  doc->canon = cr__strdup("api");
  doc->dir = cr__strdup(L->cfg->dir);
  doc->disp_dir = cr__strdup(".");
  doc->literal = 1;
  if (doc->file == NULL || doc->root == NULL || doc->canon == NULL ||
      doc->dir == NULL || doc->disp_dir == NULL)
    return CR_ENOMEM;
  return 0;
}

static void keep_all(struct ld *L, const json_t *v) {
  if (json_is_string(v)) {
    cr__cfg_keep_secret(L, json_string_value(v));
    return;
  }
  const char *k;
  const json_t *x;
  size_t i;
  if (json_is_object(v))
    json_object_foreach((json_t *)v, k, x) keep_all(L, x);
  else if (json_is_array(v))
    json_array_foreach(v, i, x) keep_all(L, x);
}

json_t *cr__cfg_literal_tree(struct ld *L, const json_t *in, int all) {
  json_t *out = json_deep_copy(in);
  if (out == NULL) {
    L->nomem = 1;
    return NULL;
  }
  if (all)
    keep_all(L, out);
  return out;
}
