/* config_check.c: the configuration checks that need the loaded provider
 * plugins: providers, methods, capabilities, and credentials / work config
 * against the plugins' JSON Schemas, each error at the offending value. */
#include "config/config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin_host.h"
#include "util/alloc.h"
#include "util/error.h"

typedef struct cr_config_auth auth_t;
typedef struct cr_config_work work_t;
typedef struct cr_config_destination dest_t;

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Checks against the plugins ------------------------------------------ */

struct schema_ud {
  struct ld *L;
  const json_t *instance;
  const char *noun; /* "authorization 'x' credentials" */
};

/* Walks path (a JSON pointer "/a/0", or "a.b[0]" / "$.a.b" style) from root.
 * Sets *parent and the last key (keybuf) or index of the node; returns 0
 * when the whole path was found. */
static int walk_path(const json_t *root, const char *path,
                     const json_t **parent, char *keybuf, size_t keylen,
                     size_t *index) {
  const json_t *cur = root;
  const char *p = path;
  int pointer = p[0] == '/';
  if (p[0] == '$' || p[0] == '#')
    p++;
  *parent = NULL;
  while (*p) {
    while (*p == '/' || *p == '.' || *p == '[' || *p == ']')
      p++;
    if (*p == '\0')
      break;
    size_t n = 0;
    while (p[n] && p[n] != '/' &&
           (pointer || (p[n] != '.' && p[n] != '[' && p[n] != ']')))
      n++;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < keylen; i++) {
      if (pointer && p[i] == '~' && i + 1 < n &&
          (p[i + 1] == '0' || p[i + 1] == '1')) {
        keybuf[k++] = p[i + 1] == '0' ? '~' : '/';
        i++;
      } else {
        keybuf[k++] = p[i];
      }
    }
    keybuf[k] = '\0';
    p += n;
    *parent = cur;
    if (json_is_object(cur)) {
      cur = json_object_get(cur, keybuf);
    } else if (json_is_array(cur)) {
      char *end;
      *index = (size_t)strtoul(keybuf, &end, 10);
      cur = *end == '\0' ? json_array_get(cur, *index) : NULL;
      keybuf[0] = '\0';
    } else {
      cur = NULL;
    }
    if (cur == NULL)
      return -1;
  }
  return 0;
}

static const struct cr_mark *locate(const struct ld *L, const json_t *root,
                                    const json_t *node, const char *path) {
  const struct cr_mark *mk = cr_marks_get(L->cfg->marks, node);
  const json_t *parent = NULL;
  char key[256];
  size_t index = 0;
  if (mk != NULL || path == NULL)
    return mk ? mk : cr__cfg_mk_node(L, root);
  if (walk_path(root, path, &parent, key, sizeof key, &index) == 0 &&
      parent != NULL)
    mk = key[0] ? cr_marks_member(L->cfg->marks, parent, key)
                : cr_marks_item(L->cfg->marks, parent, index);
  return mk ? mk : cr__cfg_mk_node(L, root);
}

static void schema_error(void *ud, const json_t *node, const char *path,
                         const char *message) {
  struct schema_ud *s = ud;
  const cr_redactor *r = cr_config_redactor(s->L->cfg);
  char msg[768], where_path[256];
  cr_redact_into(r, message ? message : "invalid", 0, msg, sizeof msg);
  cr_redact_into(r, path ? path : "", 0, where_path, sizeof where_path);
  cr__cfg_err_at(s->L, locate(s->L, s->instance, node, path), "%s%s%s: %s",
                 s->noun, where_path[0] ? " at " : "", where_path, msg);
}

static void validate(struct ld *L, const cr_schema *schema,
                     const json_t *instance, const char *noun) {
  struct schema_ud ud = {L, instance, noun};
  if (schema == NULL || instance == NULL)
    return;
  if (cr_schema_validate(schema, instance, schema_error, &ud) == CR_ENOMEM)
    L->nomem = 1;
}

/* "a, b, c" of the loaded providers, or "none". */
static const char *provider_list(const cr_plugin_host *h, char *buf,
                                 size_t len) {
  size_t off = 0, n = cr_plugin_host_count(h);
  snprintf(buf, len, "none");
  for (size_t i = 0; i < n && off < len; i++) {
    const struct cr_plugin_descriptor *d =
        cr_plugin_desc(cr_plugin_host_at(h, i));
    int w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", d->name);
    off += w > 0 ? (size_t)w : 0;
  }
  return buf;
}

/* The plugin for provider (obj.key), or NULL after reporting it. */
static const cr_plugin *need_plugin(struct ld *L, const cr_plugin_host *h,
                                    const json_t *obj, const char *key,
                                    const char *provider) {
  char dym[160], list[1024];
  const char *names[256];
  size_t n = cr_plugin_host_count(h);
  if (provider == NULL)
    return NULL;
  const cr_plugin *p = cr_plugin_host_find(h, provider);
  if (p != NULL)
    return p;
  if (n > N_OF(names))
    n = N_OF(names);
  for (size_t i = 0; i < n; i++)
    names[i] = cr_plugin_desc(cr_plugin_host_at(h, i))->name;
  cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, key),
                 "unknown provider '%s'%s; loaded providers: %s", provider,
                 cr__cfg_did_you_mean(provider, names, n, dym, sizeof dym),
                 provider_list(h, list, sizeof list));
  return NULL;
}

static void need_cap(struct ld *L, const cr_plugin *p, uint32_t cap,
                     const json_t *obj, const char *key, const char *verb) {
  char caps[128];
  if (cr_plugin_desc(p)->capabilities & cap)
    return;
  cr_plugin_caps_string(p, caps, sizeof caps);
  cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, key),
                 "provider '%s' cannot %s (capabilities: %s)",
                 cr_plugin_desc(p)->name, verb, caps[0] ? caps : "none");
}

/* settings: against the plugin's settings schema (ABI minor 1); a plugin
 * without one takes none. */
static void check_settings(struct ld *L, const cr_plugin *p, const auth_t *a) {
  if (a->settings == NULL)
    return;
  const cr_schema *s = cr_plugin_settings_schema(p);
  if (s == NULL) {
    if (json_object_size(a->settings) > 0)
      cr__cfg_err_at(L, cr__cfg_mk_val(L, a->def, "settings"),
                     "provider '%s' takes no settings (its plugin declares no "
                     "settings schema)",
                     a->provider);
    return;
  }
  char noun[256];
  snprintf(noun, sizeof noun, "settings of authorization '%s'",
           a->id ? a->id : "?");
  validate(L, s, a->settings, noun);
}

static void check_auth(struct ld *L, const cr_plugin_host *h, const auth_t *a) {
  char noun[256], list[512];
  const cr_plugin *p = need_plugin(L, h, a->def, "provider", a->provider);
  if (p == NULL)
    return;
  if (a->method != NULL && !cr_plugin_accepts_method(p, a->method)) {
    const char *const *m = cr_plugin_desc(p)->auth_methods;
    size_t n = 0;
    while (m != NULL && m[n] != NULL)
      n++;
    cr__cfg_err_at(L, cr__cfg_mk_val(L, a->def, "method"),
                   "provider '%s' does not accept method '%s' (accepts: %s)",
                   a->provider, a->method,
                   n ? cr__cfg_join_names(m, n, ", ", list, sizeof list)
                     : "none");
  }
  snprintf(noun, sizeof noun, "credentials of authorization '%s'",
           a->id ? a->id : "?");
  if (!a->unresolved)
    validate(L, cr_plugin_credentials_schema(p), a->credentials, noun);
  check_settings(L, p, a);
}

static void check_work(struct ld *L, const cr_plugin_host *h,
                       const work_t *wk) {
  char noun[256];
  const dest_t *d = &wk->destination;
  /* An unknown provider is reported once, at the authorization, unless the
   * work names another one. */
  int at_auth = wk->auth != NULL && wk->auth->provider != NULL &&
                wk->provider != NULL &&
                strcmp(wk->auth->provider, wk->provider) == 0;
  const cr_plugin *p =
      at_auth ? cr_plugin_host_find(h, wk->provider)
              : need_plugin(L, h, wk->def, "provider", wk->provider);
  if (p != NULL) {
    need_cap(L, p, CR_PLUGIN_CAP_READ, wk->def, "provider", "read");
    snprintf(noun, sizeof noun, "config of work '%s'", wk->id ? wk->id : "?");
    validate(L, cr_plugin_config_schema(p), wk->config, noun);
  }
  if (d->type != CR_DEST_PLUGIN || d->def == NULL)
    return;
  p = need_plugin(L, h, d->def, "provider", d->provider);
  if (p != NULL)
    need_cap(L, p, CR_PLUGIN_CAP_WRITE, d->def, "provider", "write");
}

/* Degraded mode, after one object was checked from diagnostic `from` on:
 * its errors become warnings, and *why (owned by the object) says why its
 * provider cannot serve it: "provider 'x' is not loaded" when it is gone,
 * else the first error's message. */
static void degrade(struct ld *L, const cr_plugin_host *h, size_t from,
                    size_t errors, const char *provider, char **why) {
  if (L->errors == errors)
    return;
  L->errors = errors;
  for (size_t i = from; i < L->diags->count; i++)
    L->diags->items[i].severity = CR_DIAG_WARNING;
  char buf[256];
  const char *msg = L->diags->count > from ? L->diags->items[from].message
                                           : "rejected by its provider";
  if (provider != NULL && cr_plugin_host_find(h, provider) == NULL) {
    snprintf(buf, sizeof buf, "provider '%s' is not loaded", provider);
    msg = buf;
  }
  if (*why == NULL && (*why = cr__strdup(msg)) == NULL)
    L->nomem = 1;
}

int cr_config_check_plugins_ex(const cr_config *cfg, const cr_plugin_host *h,
                               cr_diags *diags, int flags) {
  struct ld L;
  if (cfg == NULL || h == NULL || diags == NULL)
    return CR_EINVAL;
  memset(&L, 0, sizeof L);
  L.cfg = (cr_config *)cfg;
  L.diags = diags;
  int dg = (flags & CR_CHECK_DEGRADE) != 0;
  for (size_t i = 0; i < cfg->n_auths && !L.nomem; i++) {
    size_t from = diags->count, errors = L.errors;
    check_auth(&L, h, &cfg->auths[i]);
    if (dg)
      degrade(&L, h, from, errors, cfg->auths[i].provider,
              &L.cfg->auths[i].unavailable);
  }
  for (size_t i = 0; i < cfg->n_works && !L.nomem; i++) {
    const work_t *w = &cfg->works[i];
    size_t from = diags->count, errors = L.errors;
    check_work(&L, h, w);
    if (dg && w->auth != NULL && w->auth->unavailable != NULL &&
        L.cfg->works[i].unavailable == NULL &&
        (L.cfg->works[i].unavailable = cr__strdup(w->auth->unavailable)) ==
            NULL)
      L.nomem = 1;
    if (dg)
      degrade(&L, h, from, errors, w->provider, &L.cfg->works[i].unavailable);
  }
  if (L.nomem || diags->nomem)
    return CR_ENOMEM;
  return L.errors > 0 ? CR_ECONFIG : 0;
}

int cr_config_check_plugins(const cr_config *cfg, const cr_plugin_host *h,
                            cr_diags *diags) {
  return cr_config_check_plugins_ex(cfg, h, diags, 0);
}
