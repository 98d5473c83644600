/* config_index.c: the works of each authorization, and the works and
 * authorizations by id, indexed once per loaded configuration (see config.h
 * cr_config_first_work_of, cr_config_find_work): a health check of every one
 * of 10,000 authorizations must not scan 10,000 works each, nor a runner
 * finding the work of each of its executions. */
#include "config/config_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static int cmp_by_auth(const void *a, const void *b) {
  const struct cr_config_work *x = *(const struct cr_config_work *const *)a;
  const struct cr_config_work *y = *(const struct cr_config_work *const *)b;
  int r = strcmp(x->authorization, y->authorization);
  return r != 0 ? r : (x < y ? -1 : x > y); /* file order within one */
}

static const char *id_at(const void *entry, size_t off) {
  return *(const char *const *)((const char *)entry + off);
}

/* By id, then file order (qsort has no context argument: one comparator
 * per entry type, so loads on several threads never share state). */
static int cmp_ids(const char *ix, const char *iy, const void *x,
                   const void *y) {
  int r = strcmp(ix ? ix : "", iy ? iy : "");
  return r != 0 ? r : (x < y ? -1 : x > y);
}

static int cmp_work_ids(const void *a, const void *b) {
  const struct cr_config_work *x = *(const struct cr_config_work *const *)a;
  const struct cr_config_work *y = *(const struct cr_config_work *const *)b;
  return cmp_ids(x->id, y->id, x, y);
}

static int cmp_auth_ids(const void *a, const void *b) {
  const struct cr_config_auth *x = *(const struct cr_config_auth *const *)a;
  const struct cr_config_auth *y = *(const struct cr_config_auth *const *)b;
  return cmp_ids(x->id, y->id, x, y);
}

/* An array of pointers to the n entries (size bytes each) of base, sorted
 * with cmp. */
static const void **index_by_id(struct ld *L, const void *base, size_t n,
                                size_t size,
                                int (*cmp)(const void *, const void *)) {
  const void **idx = cr__calloc(n ? n : 1, sizeof *idx);
  if (idx == NULL) {
    L->nomem = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    idx[i] = (const char *)base + i * size;
  qsort(idx, n, sizeof *idx, cmp);
  return idx;
}

const void *cr__cfg_index_find(const void *const *idx, size_t n, size_t id_off,
                               const char *id) {
  size_t lo = 0, hi = n;
  while (lo < hi) { /* the first entry whose id >= id */
    size_t mid = lo + (hi - lo) / 2;
    const char *m = id_at(idx[mid], id_off);
    if (strcmp(m ? m : "", id) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  const char *got = lo < n ? id_at(idx[lo], id_off) : NULL;
  return got != NULL && strcmp(got, id) == 0 ? idx[lo] : NULL;
}

void cr__cfg_index_works(struct ld *L) {
  cr_config *cfg = L->cfg;
  struct cr__config_priv *p = cfg->priv;
  size_t n = 0;
  p->by_auth = cr__calloc(cfg->n_works ? cfg->n_works : 1, sizeof *p->by_auth);
  if (p->by_auth == NULL) {
    L->nomem = 1;
    return;
  }
  for (size_t i = 0; i < cfg->n_works; i++)
    if (cfg->works[i].enabled && cfg->works[i].authorization != NULL)
      p->by_auth[n++] = &cfg->works[i];
  qsort(p->by_auth, n, sizeof *p->by_auth, cmp_by_auth);
  p->n_by_auth = n;
  p->works_by_id = index_by_id(L, cfg->works, cfg->n_works, sizeof *cfg->works,
                               cmp_work_ids);
  p->n_works_by_id = p->works_by_id ? cfg->n_works : 0;
  p->auths_by_id = index_by_id(L, cfg->auths, cfg->n_auths, sizeof *cfg->auths,
                               cmp_auth_ids);
  p->n_auths_by_id = p->auths_by_id ? cfg->n_auths : 0;
}

const struct cr_config_work *cr_config_first_work_of(const cr_config *cfg,
                                                     const char *auth_id) {
  if (cfg == NULL || auth_id == NULL || cfg->priv->by_auth == NULL)
    return NULL;
  const struct cr__config_priv *p = cfg->priv;
  size_t lo = 0, hi = p->n_by_auth;
  while (lo < hi) { /* the first entry whose authorization >= auth_id */
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(p->by_auth[mid]->authorization, auth_id) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < p->n_by_auth && !strcmp(p->by_auth[lo]->authorization, auth_id)
             ? p->by_auth[lo]
             : NULL;
}
