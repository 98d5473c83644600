/* config_runners.c: the keys of remote runners (see config_int.h):
 * host.runner_registration_tokens (secret tokens a runner exchanges for its
 * own, with fixed labels) and a work's runner: {labels: [...]}. */
#include "config/config_int.h"

#include <string.h>

#include "util/alloc.h"
#include "util/error.h"

typedef struct cr_config_runner_token rtok_t;

/* Reads v (an array of ids) into *out / *n (owned array, borrowed strings);
 * duplicates and bad ids are errors at the item. */
static void read_labels(struct ld *L, const struct where *w, const char *key,
                        const json_t *v, const char ***out, size_t *n) {
  if (!json_is_array(v)) {
    cr__cfg_err_at(L, cr__cfg_mk_node(L, v), "'%s' %s must be a list of labels",
                   key, w->in);
    return;
  }
  size_t cnt = json_array_size(v);
  const char **arr = cnt ? cr__calloc(cnt, sizeof *arr) : NULL;
  if (cnt && arr == NULL) {
    L->nomem = 1;
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < cnt; i++) {
    if (!cr__cfg_want_item(L, w, key, v, i, JSON_STRING))
      continue;
    const char *s = json_string_value(json_array_get(v, i));
    int dup = 0;
    for (size_t j = 0; j < k; j++)
      dup |= strcmp(arr[j], s) == 0;
    if (!cr_config_valid_id(s) || dup)
      cr__cfg_err_at(L, cr__cfg_mk_item(L, v, i),
                     dup ? "duplicate label '%.64s' %s"
                         : "invalid label '%.64s' %s (letters, digits, '_', "
                           "'-' and '.')",
                     s, w->in);
    else
      arr[k++] = s;
  }
  cr__free(*out);
  *out = arr;
  *n = k;
}

static void set_rtok_value(struct ld *L, const struct where *w,
                           const json_t *obj, const struct field *f,
                           const json_t *v, void *t) {
  rtok_t *tok = t;
  char *s = cr__cfg_resolve_one(L, w, obj, f->key, v, 1);
  if (s != NULL && strlen(s) < 16) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'%s' %s is shorter than 16 characters", f->key, w->in);
    cr__cfg_free_secret(s);
    return;
  }
  cr__cfg_free_secret(tok->token);
  tok->token = s;
}

static void set_rtok_labels(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  (void)obj;
  rtok_t *tok = t;
  read_labels(L, w, f->key, v, &tok->labels, &tok->n_labels);
}

static const struct field rtok_fields[] = {
    {"name", FT_ID, 1, offsetof(rtok_t, name), 0, 0, NULL, NULL},
    {"token", FT_CUSTOM, 1, 0, 0, 0, NULL, set_rtok_value},
    {"labels", FT_CUSTOM, 0, 0, 0, 0, NULL, set_rtok_labels},
};

void cr__cfg_set_runner_tokens(struct ld *L, const struct where *w,
                               const json_t *obj, const struct field *f,
                               const json_t *v, void *t) {
  static const struct cr__cfg_list spec = {"runner registration token",
                                           sizeof(rtok_t), rtok_fields,
                                           N_OF(rtok_fields), NULL};
  struct cr_config_host *h = t;
  cr__cfg_named_list(L, w, obj, f->key, v, &spec, (void **)&h->runner_tokens,
                     &h->n_runner_tokens);
}

static void set_runner_labels(struct ld *L, const struct where *w,
                              const json_t *obj, const struct field *f,
                              const json_t *v, void *t) {
  (void)obj;
  struct cr_config_work *wk = t;
  read_labels(L, w, f->key, v, &wk->runner_labels, &wk->n_runner_labels);
}

static const struct field work_runner_fields[] = {
    {"labels", FT_CUSTOM, 0, 0, 0, 0, NULL, set_runner_labels},
};

void cr__cfg_set_work_runner(struct ld *L, const struct where *w,
                             const json_t *obj, const struct field *f,
                             const json_t *v, void *t) {
  if (cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    cr__cfg_apply(L, w, v, work_runner_fields, N_OF(work_runner_fields), t);
}

void cr__cfg_free_runner_tokens(struct cr_config_host *h) {
  for (size_t i = 0; i < h->n_runner_tokens; i++) {
    cr__cfg_free_secret(h->runner_tokens[i].token);
    cr__free(h->runner_tokens[i].labels);
  }
  cr__free(h->runner_tokens);
  h->runner_tokens = NULL;
  h->n_runner_tokens = 0;
}
