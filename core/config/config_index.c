/* config_index.c: the works of each authorization, indexed once per loaded
 * configuration (see config.h cr_config_first_work_of): a health check of
 * every one of 10,000 authorizations must not scan 10,000 works each. */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static int cmp_by_auth(const void *a, const void *b) {
  const struct cr_config_work *x = *(const struct cr_config_work *const *)a;
  const struct cr_config_work *y = *(const struct cr_config_work *const *)b;
  int r = strcmp(x->authorization, y->authorization);
  return r != 0 ? r : (x < y ? -1 : x > y); /* file order within one */
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
