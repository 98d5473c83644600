/* plugin_scan.c: rescanning plugin directories into a new set of plugins
 * and listing what changed (see plugin_scan.h). */
#include "plugin/plugin_scan.h"

#include <stdio.h>
#include <string.h>

#include "plugin/plugin_host_internal.h"
#include "util/alloc.h"
#include "util/error.h"

#define REASON_LEN 2048

struct scan {
  const cr_plugin_host *old;
  const struct cr_plugin_scan_opts *o;
  cr_plugin_host *h;
};

static const cr_plugin *old_at_path(const cr_plugin_host *old,
                                    const char *path) {
  for (size_t i = 0; i < cr_plugin_host_count(old); i++)
    if (strcmp(cr_plugin_path(cr_plugin_host_at(old, i)), path) == 0)
      return cr_plugin_host_at(old, i);
  return NULL;
}

static const struct cr__plugin_refusal *refusal_at_path(const cr_plugin_host *h,
                                                        const char *path) {
  size_t n = 0;
  const struct cr__plugin_refusal *r = cr__plugin_host_refusals(h, &n);
  for (size_t i = 0; i < n; i++)
    if (strcmp(r[i].path, path) == 0)
      return &r[i];
  return NULL;
}

/* Carries p (a plugin of the old set) into the new one, unless an earlier
 * file already gave its provider name: then p's file is refused as a
 * duplicate, as the loader would. */
static int carry(struct scan *sc, const cr_plugin *p) {
  const char *name = cr_plugin_desc(p)->name;
  const cr_plugin *won = cr_plugin_host_find(sc->h, name);
  if (won == NULL)
    return cr__plugin_host_adopt(sc->h, p);
  char reason[REASON_LEN];
  snprintf(reason, sizeof reason,
           "duplicate provider '%s' (already loaded from %s)", name,
           cr_plugin_path(won));
  return cr__plugin_host_add_refusal(sc->h, cr_plugin_path(p),
                                     cr_plugin_file(p), CR_EEXIST, reason);
}

/* Loads a new or changed file; a refused one is recorded, and the version
 * loaded from the same path before (if any) stays. */
static int load_changed(struct scan *sc, const char *path,
                        const struct cr_plugin_file_id *id,
                        const cr_plugin *before) {
  char reason[REASON_LEN];
  int rc = cr_plugin_host_load_file(sc->h, path, reason, sizeof reason);
  if (rc == 0 || rc == CR_ENOMEM)
    return rc;
  rc = cr__plugin_host_add_refusal(sc->h, path, id, rc, reason);
  if (rc == 0 && before != NULL)
    rc = carry(sc, before);
  return rc;
}

static int scan_file(struct scan *sc, const char *path) {
  struct cr_plugin_file_id id;
  if (cr_plugin_file_id_get(path, &id) != 0)
    return 0; /* gone, or not a regular file: skipped like the loader */
  const cr_plugin *before = old_at_path(sc->old, path);
  if (sc->o->busy != NULL && sc->o->busy(sc->o->ud, path))
    return before != NULL ? carry(sc, before) : 0;
  if (before != NULL && cr_plugin_file_id_eq(cr_plugin_file(before), &id))
    return carry(sc, before);
  const struct cr__plugin_refusal *r = refusal_at_path(sc->old, path);
  if (r != NULL && r->rc != CR_EEXIST && cr_plugin_file_id_eq(&r->id, &id)) {
    int rc = cr__plugin_host_add_refusal(sc->h, path, &id, r->rc, r->reason);
    return rc == 0 && before != NULL ? carry(sc, before) : rc;
  }
  return load_changed(sc, path, &id, before);
}

static int scan_dir(struct scan *sc, const char *dir) {
  char **names = NULL, reason[REASON_LEN];
  size_t n = 0;
  int rc = cr__plugin_dir_list(dir, &names, &n, reason, sizeof reason);
  if (rc != 0) {
    if (rc != CR_ENOMEM && sc->o->dir_error != NULL)
      sc->o->dir_error(sc->o->ud, dir, reason);
    return rc == CR_ENOMEM ? rc : 0;
  }
  for (size_t i = 0; rc == 0 && i < n; i++) {
    size_t len = strlen(dir) + strlen(names[i]) + 2;
    char *path = cr__malloc(len);
    if (path == NULL) {
      rc = CR_ENOMEM;
      break;
    }
    snprintf(path, len, "%s/%s", dir, names[i]);
    rc = scan_file(sc, path);
    cr__free(path);
  }
  cr__plugin_names_free(names, n);
  return rc;
}

/* ---- Changes ---- */

struct list {
  struct cr_plugin_change *c;
  size_t n, cap;
  int nomem;
};

static char *dup_or_null(struct list *l, const char *s) {
  char *d = s != NULL ? cr__strdup(s) : NULL;
  if (s != NULL && d == NULL)
    l->nomem = 1;
  return d;
}

static struct cr_plugin_change *add(struct list *l,
                                    enum cr_plugin_change_kind k,
                                    const char *name, const char *path) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    struct cr_plugin_change *g = cr__realloc(l->c, cap * sizeof *g);
    if (g == NULL) {
      l->nomem = 1;
      return NULL;
    }
    l->c = g;
    l->cap = cap;
  }
  struct cr_plugin_change *c = &l->c[l->n++];
  memset(c, 0, sizeof *c);
  c->kind = k;
  c->name = dup_or_null(l, name);
  c->path = dup_or_null(l, path);
  return c;
}

static void add_plugin(struct list *l, enum cr_plugin_change_kind k,
                       const cr_plugin *now, const cr_plugin *before) {
  const cr_plugin *p = now != NULL ? now : before;
  const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
  struct cr_plugin_change *c = add(l, k, d->name, cr_plugin_path(p));
  if (c == NULL)
    return;
  if (now != NULL) {
    c->version = dup_or_null(l, d->version);
    c->abi_major = d->abi_major;
    c->abi_minor = d->abi_minor;
  }
  if (before != NULL)
    c->old_version = dup_or_null(l, cr_plugin_desc(before)->version);
}

static int same_refusal(const cr_plugin_host *old,
                        const struct cr__plugin_refusal *r) {
  const struct cr__plugin_refusal *o = refusal_at_path(old, r->path);
  return o != NULL && cr_plugin_file_id_eq(&o->id, &r->id) &&
         strcmp(o->reason, r->reason) == 0;
}

/* A refused file is named after the provider it would have replaced, when
 * the old set loaded one from its path, else after the file. */
static void add_refusal(struct list *l, const cr_plugin_host *old,
                        const struct cr__plugin_refusal *r) {
  const cr_plugin *was = old_at_path(old, r->path);
  const char *base = strrchr(r->path, '/');
  const char *name =
      was ? cr_plugin_desc(was)->name : (base ? base + 1 : r->path);
  struct cr_plugin_change *c = add(l, CR_PLUGIN_FAILED, name, r->path);
  if (c != NULL)
    c->reason = dup_or_null(l, r->reason);
}

static int diff(const cr_plugin_host *old, const cr_plugin_host *h,
                struct list *l) {
  for (size_t i = 0; i < cr_plugin_host_count(h); i++) {
    const cr_plugin *p = cr_plugin_host_at(h, i);
    const cr_plugin *o = cr_plugin_host_find(old, cr_plugin_desc(p)->name);
    if (o != p)
      add_plugin(l, o ? CR_PLUGIN_UPDATED : CR_PLUGIN_CREATED, p, o);
  }
  for (size_t i = 0; i < cr_plugin_host_count(old); i++) {
    const cr_plugin *o = cr_plugin_host_at(old, i);
    if (cr_plugin_host_find(h, cr_plugin_desc(o)->name) == NULL)
      add_plugin(l, CR_PLUGIN_DELETED, NULL, o);
  }
  size_t n = 0;
  const struct cr__plugin_refusal *r = cr__plugin_host_refusals(h, &n);
  for (size_t i = 0; i < n; i++)
    if (!same_refusal(old, &r[i]))
      add_refusal(l, old, &r[i]);
  return l->nomem ? CR_ENOMEM : 0;
}

int cr_plugin_host_rescan(const cr_plugin_host *old,
                          const struct cr_plugin_scan_opts *o,
                          cr_plugin_host **out,
                          struct cr_plugin_change **changes,
                          size_t *n_changes) {
  if (old == NULL || o == NULL || out == NULL || changes == NULL ||
      n_changes == NULL)
    return CR_EINVAL;
  *out = NULL;
  *changes = NULL;
  *n_changes = 0;
  struct scan sc = {.old = old, .o = o};
  int rc = cr_plugin_host_new(cr__plugin_host_api(old), &sc.h);
  for (size_t i = 0; rc == 0 && i < o->n_dirs; i++)
    rc = scan_dir(&sc, o->dirs[i]);
  struct list l = {0};
  if (rc == 0)
    rc = diff(old, sc.h, &l);
  if (rc != 0) {
    cr_plugin_changes_free(l.c, l.n);
    cr_plugin_host_free(sc.h);
    return rc;
  }
  *out = sc.h;
  *changes = l.c;
  *n_changes = l.n;
  return 0;
}

void cr_plugin_changes_free(struct cr_plugin_change *c, size_t n) {
  for (size_t i = 0; c != NULL && i < n; i++) {
    cr__free(c[i].name);
    cr__free(c[i].path);
    cr__free(c[i].version);
    cr__free(c[i].old_version);
    cr__free(c[i].reason);
  }
  cr__free(c);
}

const char *cr_plugin_change_verb(enum cr_plugin_change_kind k) {
  switch (k) {
  case CR_PLUGIN_CREATED:
    return "created";
  case CR_PLUGIN_UPDATED:
    return "updated";
  case CR_PLUGIN_DELETED:
    return "deleted";
  default:
    return "failed";
  }
}
