/* ctl_objects.c: objects created through the REST API (see ctl_objects.h):
 * secrets split from the definitions and sealed, the API root the loader
 * reads, and create / update / delete checked by a load of the changed
 * configuration and written with their events in one transaction. */
#include "control/ctl_objects.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/apply.h"
#include "control/ctl_int.h"
#include "events/events.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/seal.h"

void cr_ctl_key_path(const cr_config *cfg, char *buf, size_t len) {
  if (cfg->host.api.secret_key_file != NULL)
    snprintf(buf, len, "%s", cfg->host.api.secret_key_file);
  else
    snprintf(buf, len, "%s/secret.key", cfg->host.data_dir);
}

static const char *list_key(const char *kind) {
  return !strcmp(kind, "authorization") ? "authorizations"
         : !strcmp(kind, "work")        ? "works"
                                        : "subscriptions";
}

/* Moves the secrets of def (a deep copy the caller owns) into a new object:
 * {"credentials": {...}} of an authorization, {"headers": {...}, "secret":
 * "..."} of a subscription's config. NULL when there are none. */
static json_t *split_secrets(const char *kind, json_t *def) {
  json_t *sec = json_object();
  if (!strcmp(kind, "authorization")) {
    json_t *cr = json_object_get(def, "credentials");
    if (cr != NULL) {
      json_object_set(sec, "credentials", cr);
      json_object_del(def, "credentials");
    }
  } else if (!strcmp(kind, "subscription")) {
    json_t *cfg = json_object_get(def, "config");
    const char *keys[] = {"headers", "secret"};
    for (size_t i = 0; json_is_object(cfg) && i < 2; i++) {
      json_t *v = json_object_get(cfg, keys[i]);
      if (v != NULL) {
        json_object_set(sec, keys[i], v);
        json_object_del(cfg, keys[i]);
      }
    }
  }
  if (json_object_size(sec) == 0) {
    json_decref(sec);
    return NULL;
  }
  return sec;
}

/* Puts the secrets back into def (inverse of split_secrets). */
static void merge_secrets(const char *kind, json_t *def, const json_t *sec) {
  if (!strcmp(kind, "authorization")) {
    json_t *cr = json_object_get(sec, "credentials");
    if (cr != NULL)
      json_object_set(def, "credentials", cr);
    return;
  }
  json_t *cfg = json_object_get(def, "config");
  const char *k;
  json_t *v;
  if (json_is_object(cfg))
    json_object_foreach((json_t *)sec, k, v) json_object_set(cfg, k, v);
}

static int unseal_into(const struct cr_seal_key *key,
                       const struct cr_api_object_rec *o, json_t *def,
                       char *errbuf, size_t errlen) {
  if (o->sealed == NULL)
    return 0;
  char *plain = NULL;
  size_t n = 0;
  int rc = cr_unseal(key, o->sealed, o->sealed_len, &plain, &n);
  if (rc != 0) {
    snprintf(errbuf, errlen,
             "the secrets of %s '%s' do not open with key %s (sealed with "
             "key %s): was host.secret_key_file replaced?",
             o->kind, o->id, key->id, o->key_id ? o->key_id : "?");
    return rc;
  }
  json_t *sec = json_loadb(plain, n, 0, NULL);
  cr__secret_wipe_free(plain, n);
  if (sec == NULL)
    return CR_EINVAL;
  merge_secrets(o->kind, def, sec);
  json_decref(sec);
  return 0;
}

int cr_ctl_api_root(cr_store *s, const char *key_path, json_t **root,
                    char *errbuf, size_t errlen) {
  struct cr_api_object_rec *o = NULL;
  size_t n = 0;
  *root = NULL;
  int rc = cr_store_api_object_list(s, &o, &n);
  if (rc != 0)
    return rc;
  json_t *r = json_pack("{s:[], s:[], s:[]}", "authorizations", "works",
                        "subscriptions");
  struct cr_seal_key key;
  int have_key = 0;
  for (size_t i = 0; rc == 0 && r != NULL && i < n; i++) {
    json_t *def = json_loads(o[i].def_json, 0, NULL);
    if (def == NULL) {
      rc = CR_EINVAL;
      break;
    }
    if (o[i].sealed != NULL && !have_key) {
      rc = cr_seal_key_load(key_path, &key, errbuf, errlen);
      have_key = rc == 0;
    }
    if (rc == 0)
      rc = unseal_into(&key, &o[i], def, errbuf, errlen);
    json_array_append_new(json_object_get(r, list_key(o[i].kind)), def);
  }
  if (have_key)
    cr_seal_key_wipe(&key);
  cr_api_object_rec_free_list(o, n);
  if (rc == 0 && r == NULL)
    rc = CR_ENOMEM;
  if (rc != 0) {
    json_decref(r);
    return rc;
  }
  *root = r;
  return 0;
}

int cr_ctl_config_load(cr_store *s, const char *path, const cr_plugin_host *h,
                       int check_flags, cr_config **out, cr_diags *diags) {
  cr_config *plain = NULL;
  *out = NULL;
  int rc = cr_config_load(path, &plain, diags);
  if (rc != 0 && plain == NULL)
    return rc;
  char key_path[4096], err[512] = "";
  cr_ctl_key_path(plain, key_path, sizeof key_path);
  json_t *root = NULL;
  int rr = cr_ctl_api_root(s, key_path, &root, err, sizeof err);
  if (rr != 0) {
    cr_diags_addf(diags, "api", 0, 0, CR_DIAG_ERROR,
                  "cannot load the objects created through the API: %s",
                  err[0] ? err : cr_strerror(rr));
    cr_config_free(plain);
    return CR_ECONFIG;
  }
  size_t objects = json_array_size(json_object_get(root, "authorizations")) +
                   json_array_size(json_object_get(root, "works")) +
                   json_array_size(json_object_get(root, "subscriptions"));
  if (objects == 0) {
    json_decref(root);
    *out = plain;
    return rc != 0 ? rc
                   : cr_config_check_plugins_ex(plain, h, diags, check_flags);
  }
  cr_config_free(plain);
  cr_diags_free(diags);
  cr_diags_init(diags);
  rc = cr_config_load_ex(path, root, out, diags);
  json_decref(root);
  if (rc == 0)
    rc = cr_config_check_plugins_ex(*out, h, diags, check_flags);
  return rc;
}

/* ---- Changes ---- */

/* The first error: its message alone for the API's objects (they have no
 * file position), else with FILE:LINE:COLUMN (a problem of the file that
 * the change revealed). */
static int first_error(const cr_diags *d, char *msg, size_t msglen) {
  for (size_t i = 0; i < d->count; i++) {
    const struct cr_diag *g = &d->items[i];
    if (g->severity != CR_DIAG_ERROR)
      continue;
    if (g->line == 0)
      snprintf(msg, msglen, "%s", g->message);
    else
      cr_diag_format(g, msg, msglen);
    return 1;
  }
  return 0;
}

/* Loads the configuration with root and checks it; on success *out is the
 * candidate. */
static int candidate(const struct cr_ctl *c, const json_t *root,
                     cr_config **out, char *msg, size_t msglen) {
  cr_diags d;
  cr_diags_init(&d);
  int rc = cr_config_load_ex(c->cfg->path, root, out, &d);
  if (rc == 0 || rc == CR_ECONFIG) {
    int rc2 = cr_config_check_plugins(*out, c->plugins, &d);
    if (rc == 0)
      rc = rc2;
  }
  if (rc != 0 && !first_error(&d, msg, msglen))
    snprintf(msg, msglen, "%s", cr_strerror(rc));
  cr_diags_free(&d);
  if (rc != 0) {
    cr_config_free(*out);
    *out = NULL;
  }
  return rc == CR_ENOMEM ? rc : rc != 0 ? CR_ECONFIG : 0;
}

/* Writes (kind, def) as an API object (secrets sealed; def NULL deletes)
 * and applies cand to the store, in one transaction. */
static int write_object(const struct cr_ctl *c, const char *kind,
                        const char *id, const json_t *def,
                        const cr_config *cand, char *msg, size_t msglen) {
  struct cr_api_object_rec rec = {
      .kind = (char *)kind, .id = (char *)id, .created_by = (char *)c->actor};
  struct cr_seal_key key;
  int have_key = 0, rc = 0;
  json_t *plain = def ? json_deep_copy(def) : NULL;
  json_t *sec = plain ? split_secrets(kind, plain) : NULL;
  char *sec_text = sec ? json_dumps(sec, JSON_COMPACT) : NULL;
  json_decref(sec);
  if (sec_text != NULL) {
    char key_path[4096];
    cr_ctl_key_path(c->cfg, key_path, sizeof key_path);
    rc = cr_seal_key_load(key_path, &key, msg, msglen);
    have_key = rc == 0;
    if (rc == 0)
      rc = cr_seal(&key, sec_text, strlen(sec_text), &rec.sealed,
                   &rec.sealed_len);
    if (rc == 0)
      rec.key_id = key.id;
    cr__secret_wipe_free(sec_text, strlen(sec_text));
    sec_text = NULL;
  }
  if (rc == 0 && plain != NULL &&
      (rec.def_json = json_dumps(plain, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
    rc = CR_ENOMEM;
  if (rc == 0)
    rc = cr_store_begin(c->store);
  if (rc == 0) {
    rc = def ? cr_store_api_object_put(c->store, &rec)
             : cr_store_api_object_delete(c->store, kind, id);
    if (rc == 0)
      rc = cr_apply_config(c->store, cand, c->actor, NULL, msg, msglen);
    rc =
        rc == 0 ? cr_store_commit(c->store) : (cr_store_rollback(c->store), rc);
  }
  free(rec.def_json);
  cr__free(rec.sealed);
  if (have_key)
    cr_seal_key_wipe(&key);
  json_decref(plain);
  return rc;
}

static json_t *root_with(const struct cr_ctl *c, char *msg, size_t msglen,
                         int *rc) {
  char key_path[4096];
  cr_ctl_key_path(c->cfg, key_path, sizeof key_path);
  json_t *root = NULL;
  *rc = cr_ctl_api_root(c->store, key_path, &root, msg, msglen);
  return root;
}

static json_t *find_in(json_t *list, const char *id, size_t *at) {
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) {
    const char *vid = json_string_value(json_object_get(v, "id"));
    if (vid && !strcmp(vid, id)) {
      *at = i;
      return v;
    }
  }
  return NULL;
}

/* Hands the candidate to the caller (or frees it). */
static void give(cr_config *cand, cr_config **cfg_out, int rc) {
  if (cfg_out != NULL && rc == 0)
    *cfg_out = cand;
  else
    cr_config_free(cand);
}

static const struct cr_mark *mark_of(const cr_config *cfg, const char *kind,
                                     const char *id) {
  if (!strcmp(kind, "authorization")) {
    const struct cr_config_auth *a = cr_config_find_auth(cfg, id);
    return a ? &a->mark : NULL;
  }
  if (!strcmp(kind, "work")) {
    const struct cr_config_work *w = cr_config_find_work(cfg, id);
    return w ? &w->mark : NULL;
  }
  const struct cr_config_subscription *x = cr_config_find_subscription(cfg, id);
  return x ? &x->mark : NULL;
}

static int locked_create(const struct cr_ctl *c, const char *kind,
                         const json_t *def, char *id_out, cr_config **cfg_out,
                         char *msg, size_t msglen) {
  json_t *d = json_deep_copy(def);
  if (d == NULL)
    return CR_ENOMEM;
  const char *id = json_string_value(json_object_get(d, "id"));
  if (id == NULL && !strcmp(kind, "subscription")) {
    unsigned char r[6];
    char gen[32];
    RAND_bytes(r, sizeof r);
    snprintf(gen, sizeof gen, "sub-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4], r[5]);
    json_object_set_new(d, "id", json_string(gen));
    id = json_string_value(json_object_get(d, "id"));
  }
  if (id == NULL) {
    snprintf(msg, msglen, "'id' is required");
    json_decref(d);
    return CR_ECONFIG;
  }
  snprintf(id_out, 130, "%.129s", id);
  if (mark_of(c->cfg, kind, id) != NULL) {
    snprintf(msg, msglen, "%s '%s' already exists", kind, id);
    json_decref(d);
    return CR_EEXIST;
  }
  int rc = 0;
  json_t *root = root_with(c, msg, msglen, &rc);
  cr_config *cand = NULL;
  if (rc == 0) {
    json_array_append(json_object_get(root, list_key(kind)), d);
    rc = candidate(c, root, &cand, msg, msglen);
  }
  if (rc == 0)
    rc = write_object(c, kind, id, d, cand, msg, msglen);
  give(cand, cfg_out, rc);
  json_decref(root);
  json_decref(d);
  return rc;
}

static int locked_update(const struct cr_ctl *c, const char *kind,
                         const char *id, const json_t *changes,
                         cr_config **cfg_out, char *msg, size_t msglen) {
  int rc = 0;
  json_t *root = root_with(c, msg, msglen, &rc);
  size_t at = 0;
  json_t *cur =
      rc == 0 ? find_in(json_object_get(root, list_key(kind)), id, &at) : NULL;
  if (rc == 0 && cur == NULL)
    rc = CR_ENOENT;
  cr_config *cand = NULL;
  if (rc == 0) {
    json_object_update(cur, (json_t *)changes);
    rc = candidate(c, root, &cand, msg, msglen);
  }
  if (rc == 0)
    rc = write_object(c, kind, id, cur, cand, msg, msglen);
  give(cand, cfg_out, rc);
  json_decref(root);
  return rc;
}

static int locked_delete(const struct cr_ctl *c, const char *kind,
                         const char *id, char *msg, size_t msglen) {
  int rc = 0;
  json_t *root = root_with(c, msg, msglen, &rc);
  size_t at = 0;
  json_t *list = json_object_get(root, list_key(kind));
  if (rc == 0 && find_in(list, id, &at) == NULL)
    rc = CR_ENOENT;
  cr_config *cand = NULL;
  if (rc == 0) {
    json_array_remove(list, at);
    rc = candidate(c, root, &cand, msg, msglen);
  }
  if (rc == 0)
    rc = write_object(c, kind, id, NULL, cand, msg, msglen);
  cr_config_free(cand);
  json_decref(root);
  return rc;
}

/* 1 when work w reads or writes with authorization id. */
static int uses(const struct cr_config_work *w, const char *id) {
  return (w->authorization && !strcmp(w->authorization, id)) ||
         (w->destination.authorization &&
          !strcmp(w->destination.authorization, id));
}

/* The works of cfg that use authorization id, as "a, b" into buf. */
static size_t users_of(const cr_config *cfg, const char *id, char *buf,
                       size_t len) {
  size_t n = 0, k = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < cfg->n_works; i++) {
    const struct cr_config_work *w = &cfg->works[i];
    if (!uses(w, id))
      continue;
    int m = snprintf(buf + k, len - k, "%s%s", n ? ", " : "", w->id);
    if (m > 0 && (size_t)m < len - k)
      k += (size_t)m;
    n++;
  }
  return n;
}

int cr_ctl_is_api_object(const cr_config *cfg, const char *kind,
                         const char *id) {
  const struct cr_mark *mk = mark_of(cfg, kind, id);
  return mk != NULL && mk->file != NULL && !strcmp(mk->file, "api");
}

/* 0 when (kind, id) exists and was created through the API; else
 * CR_ENOENT, or CR_EPERM with "FILE:LINE" in msg. */
static int removable(const struct cr_ctl *c, const char *kind, const char *id,
                     char *msg, size_t msglen) {
  const struct cr_mark *mk = mark_of(c->cfg, kind, id);
  if (mk == NULL)
    return CR_ENOENT;
  if (!cr_ctl_is_api_object(c->cfg, kind, id)) {
    snprintf(msg, msglen, "%s:%d", mk->file ? mk->file : "?", mk->line);
    return CR_EPERM;
  }
  return 0;
}

int cr_ctl_object_remove(const struct cr_ctl *c, const char *kind,
                         const char *id, char *msg, size_t msglen) {
  int rc = removable(c, kind, id, msg, msglen);
  if (rc != 0)
    return rc;
  char users[1024];
  if (!strcmp(kind, "authorization") &&
      users_of(c->cfg, id, users, sizeof users) > 0) {
    snprintf(msg, msglen, "%s", users);
    return CR_EBUSY;
  }
  return cr_ctl_object_delete(c, kind, id, msg, msglen);
}

/* Each change reads the API's objects, checks and writes them under the
 * store's write lock, so two changes (or a change and the daemon's reload)
 * never each miss the other's object. */
static int end_locked(cr_store *s, int rc) {
  return rc == 0 ? cr_store_commit(s) : (cr_store_rollback(s), rc);
}

int cr_ctl_object_create(const struct cr_ctl *c, const char *kind,
                         const json_t *def, char *id_out, cr_config **cfg_out,
                         char *msg, size_t msglen) {
  int rc = cr_store_begin(c->store);
  if (rc != 0)
    return rc;
  rc = locked_create(c, kind, def, id_out, cfg_out, msg, msglen);
  return end_locked(c->store, rc);
}

int cr_ctl_object_update(const struct cr_ctl *c, const char *kind,
                         const char *id, const json_t *changes,
                         cr_config **cfg_out, char *msg, size_t msglen) {
  int rc = cr_store_begin(c->store);
  if (rc != 0)
    return rc;
  rc = locked_update(c, kind, id, changes, cfg_out, msg, msglen);
  return end_locked(c->store, rc);
}

int cr_ctl_object_delete(const struct cr_ctl *c, const char *kind,
                         const char *id, char *msg, size_t msglen) {
  int rc = cr_store_begin(c->store);
  if (rc != 0)
    return rc;
  rc = locked_delete(c, kind, id, msg, msglen);
  return end_locked(c->store, rc);
}

/* ---- Delete an authorization with ?force=true ---- */

/* Stores work def (no secrets: a work has none) as its API object. */
static int put_work(const struct cr_ctl *c, const char *id, const json_t *def) {
  struct cr_api_object_rec rec = {
      .kind = "work", .id = (char *)id, .created_by = (char *)c->actor};
  rec.def_json = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
  if (rec.def_json == NULL)
    return CR_ENOMEM;
  int rc = cr_store_api_object_put(c->store, &rec);
  free(rec.def_json);
  return rc;
}

/* Writes the disabled works (defs, each with its `disabled` event) and
 * deletes authorization id, then applies cand (the works' `updated` and the
 * authorization's `deleted` events). Inside the caller's transaction. */
static int write_force(const struct cr_ctl *c, const char *id,
                       const json_t *works, const cr_config *cand, char *msg,
                       size_t msglen) {
  size_t i;
  json_t *def;
  int rc = 0;
  json_t *data = json_pack("{s:s, s:s}", "reason", "authorization deleted",
                           "authorization", id);
  if (data == NULL)
    return CR_ENOMEM;
  json_array_foreach(works, i, def) {
    const char *wid = json_string_value(json_object_get(def, "id"));
    rc = put_work(c, wid, def);
    if (rc == 0)
      rc = cr_event_emit(c->store, "work", wid, "disabled", c->actor, data,
                         NULL);
    if (rc != 0)
      break;
  }
  json_decref(data);
  return rc == 0 ? write_object(c, "authorization", id, NULL, cand, msg, msglen)
                 : rc;
}

/* 1 when the work definition def (as the API stored it) reads or writes
 * with authorization id. */
static int def_uses(const json_t *def, const char *id) {
  const char *a = json_string_value(json_object_get(def, "authorization"));
  const char *d = json_string_value(
      json_object_get(json_object_get(def, "destination"), "authorization"));
  return (a && !strcmp(a, id)) || (d && !strcmp(d, id));
}

/* Disables the works of root (the API's objects, read under the lock, so a
 * work created a moment ago is among them) using id, and removes id from
 * root; changed gets the works that were enabled. */
static int disable_users(json_t *root, const char *id, json_t *changed) {
  size_t i, at;
  json_t *def;
  json_array_foreach(json_object_get(root, "works"), i, def) {
    if (!def_uses(def, id))
      continue;
    if (!json_is_false(json_object_get(def, "enabled")))
      json_array_append(changed, def);
    json_object_set_new(def, "enabled", json_false());
  }
  json_t *auths = json_object_get(root, "authorizations");
  if (find_in(auths, id, &at) == NULL)
    return CR_ENOENT;
  json_array_remove(auths, at);
  return 0;
}

static int locked_force(const struct cr_ctl *c, const char *id, char *msg,
                        size_t msglen) {
  int rc = 0;
  json_t *root = root_with(c, msg, msglen, &rc);
  json_t *changed = json_array();
  cr_config *cand = NULL;
  if (rc == 0)
    rc = changed ? disable_users(root, id, changed) : CR_ENOMEM;
  if (rc == 0)
    rc = candidate(c, root, &cand, msg, msglen);
  if (rc == 0)
    rc = write_force(c, id, changed, cand, msg, msglen);
  cr_config_free(cand);
  json_decref(changed);
  json_decref(root);
  return rc;
}

int cr_ctl_auth_remove(const struct cr_ctl *c, const char *id, int force,
                       char *msg, size_t msglen, char *blocker) {
  blocker[0] = '\0';
  if (!force)
    return cr_ctl_object_remove(c, "authorization", id, msg, msglen);
  int rc = removable(c, "authorization", id, msg, msglen);
  for (size_t i = 0; rc == 0 && i < c->cfg->n_works; i++) {
    const struct cr_config_work *w = &c->cfg->works[i];
    if (uses(w, id) && !cr__ctl_is_api(&w->mark)) {
      snprintf(blocker, 130, "%.129s", w->id);
      snprintf(msg, msglen, "%s:%d", w->mark.file ? w->mark.file : "?",
               w->mark.line);
      rc = CR_EPERM;
    }
  }
  if (rc == 0 && (rc = cr_store_begin(c->store)) == 0)
    rc = end_locked(c->store, locked_force(c, id, msg, msglen));
  return rc;
}
