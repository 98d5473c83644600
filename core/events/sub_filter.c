/* sub_filter.c: a subscription's event filter (sub_filter.h): built from the
 * config or the canonical JSON, kept as sorted unique string lists so that
 * matching is a binary search and the JSON form is canonical. */
#include "events/sub_filter.h"

#include "util/alloc.h"
#include "config/config.h"
#include "util/error.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A sorted list of unique strings. */
struct strset {
  char **v;
  size_t n;
};

/* One subject type of the sources; ids.n == 0 means every id. */
struct source {
  char *type;
  struct strset ids;
};

struct cr_sub_filter {
  struct strset verbs; /* n == 0: every verb */
  int has_sources;     /* 0: every subject of every type */
  struct source *src;  /* sorted by type */
  size_t nsrc;
};

static void strset_clear(struct strset *s) {
  for (size_t i = 0; i < s->n; i++)
    cr__free(s->v[i]);
  cr__free(s->v);
  s->v = NULL;
  s->n = 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the n strings of s and drops duplicates. */
static void strset_normalize(struct strset *s) {
  if (s->n < 2)
    return;
  qsort(s->v, s->n, sizeof *s->v, cmp_str);
  size_t k = 1;
  for (size_t i = 1; i < s->n; i++) {
    if (strcmp(s->v[i], s->v[k - 1]) == 0)
      cr__free(s->v[i]);
    else
      s->v[k++] = s->v[i];
  }
  s->n = k;
}

/* Copies the n strings of items (borrowed) into s (empty on entry). */
static int strset_copy(struct strset *s, const char *const *items, size_t n) {
  if (n == 0)
    return 0;
  s->v = cr__calloc(n, sizeof *s->v);
  if (s->v == NULL)
    return CR_ENOMEM;
  for (; s->n < n; s->n++) {
    s->v[s->n] = cr__strdup(items[s->n]);
    if (s->v[s->n] == NULL)
      return CR_ENOMEM;
  }
  strset_normalize(s);
  return 0;
}

/* Copies a JSON array of strings (borrowed) into s. CR_EINVAL when arr is
 * not an array of strings. */
static int strset_from_json(struct strset *s, const json_t *arr) {
  if (!json_is_array(arr))
    return CR_EINVAL;
  size_t n = json_array_size(arr);
  if (n == 0)
    return 0;
  s->v = cr__calloc(n, sizeof *s->v);
  if (s->v == NULL)
    return CR_ENOMEM;
  for (; s->n < n; s->n++) {
    const char *t = json_string_value(json_array_get(arr, s->n));
    if (t == NULL)
      return CR_EINVAL;
    s->v[s->n] = cr__strdup(t);
    if (s->v[s->n] == NULL)
      return CR_ENOMEM;
  }
  strset_normalize(s);
  return 0;
}

static int strset_has(const struct strset *s, const char *v) {
  return s->n > 0 && bsearch(&v, s->v, s->n, sizeof *s->v, cmp_str) != NULL;
}

static int cmp_source(const void *a, const void *b) {
  return strcmp(((const struct source *)a)->type,
                ((const struct source *)b)->type);
}

/* Copies sources (borrowed; NULL = every subject) into f. */
static int sources_from_json(struct cr_sub_filter *f, const json_t *sources) {
  if (sources == NULL || json_is_null(sources))
    return 0;
  if (!json_is_object(sources))
    return CR_EINVAL;
  f->has_sources = 1;
  size_t n = json_object_size(sources);
  if (n == 0)
    return 0;
  f->src = cr__calloc(n, sizeof *f->src);
  if (f->src == NULL)
    return CR_ENOMEM;
  const char *k;
  json_t *ids;
  json_object_foreach((json_t *)sources, k, ids) {
    struct source *s = &f->src[f->nsrc++];
    s->type = cr__strdup(k);
    if (s->type == NULL)
      return CR_ENOMEM;
    int rc = strset_from_json(&s->ids, ids);
    if (rc != 0)
      return rc;
  }
  qsort(f->src, f->nsrc, sizeof *f->src, cmp_source);
  return 0;
}

void cr_sub_filter_free(cr_sub_filter *f) {
  if (f == NULL)
    return;
  strset_clear(&f->verbs);
  for (size_t i = 0; i < f->nsrc; i++) {
    cr__free(f->src[i].type);
    strset_clear(&f->src[i].ids);
  }
  cr__free(f->src);
  cr__free(f);
}

int cr_sub_filter_from_config(const struct cr_config_subscription *c,
                              cr_sub_filter **out) {
  if (out != NULL)
    *out = NULL;
  if (c == NULL || out == NULL || (c->n_event_types > 0 && !c->event_types))
    return CR_EINVAL;
  struct cr_sub_filter *f = cr__calloc(1, sizeof *f);
  if (f == NULL)
    return CR_ENOMEM;
  int rc = strset_copy(&f->verbs, c->event_types, c->n_event_types);
  if (rc == 0)
    rc = sources_from_json(f, c->sources);
  if (rc != 0) {
    cr_sub_filter_free(f);
    return rc;
  }
  *out = f;
  return 0;
}

/* Only "verbs" and "sources" are allowed. */
static int known_keys(const json_t *root) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)root, k, v) {
    if (strcmp(k, "verbs") != 0 && strcmp(k, "sources") != 0)
      return 0;
  }
  return 1;
}

int cr_sub_filter_from_json(const char *filter_json, cr_sub_filter **out) {
  if (out != NULL)
    *out = NULL;
  if (filter_json == NULL || out == NULL)
    return CR_EINVAL;
  json_error_t jerr;
  json_t *root = json_loads(filter_json, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL)
    return json_error_code(&jerr) == json_error_out_of_memory ? CR_ENOMEM
                                                              : CR_EINVAL;
  struct cr_sub_filter *f = NULL;
  int rc = json_is_object(root) && known_keys(root) ? 0 : CR_EINVAL;
  if (rc == 0 && (f = cr__calloc(1, sizeof *f)) == NULL)
    rc = CR_ENOMEM;
  const json_t *verbs = json_object_get(root, "verbs");
  if (rc == 0 && verbs != NULL)
    rc = strset_from_json(&f->verbs, verbs);
  if (rc == 0)
    rc = sources_from_json(f, json_object_get(root, "sources"));
  json_decref(root);
  if (rc != 0) {
    cr_sub_filter_free(f);
    return rc;
  }
  *out = f;
  return 0;
}

static json_t *strset_json(const struct strset *s) {
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < s->n; i++)
    if (json_array_append_new(arr, json_string(s->v[i])) != 0) {
      json_decref(arr);
      return NULL;
    }
  return arr;
}

static json_t *filter_json(const struct cr_sub_filter *f) {
  json_t *root = json_object();
  json_t *sources = f->has_sources ? json_object() : json_null();
  if (root == NULL || sources == NULL ||
      json_object_set_new(root, "verbs", strset_json(&f->verbs)) != 0)
    goto fail;
  for (size_t i = 0; i < f->nsrc; i++)
    if (json_object_set_new(sources, f->src[i].type,
                            strset_json(&f->src[i].ids)) != 0)
      goto fail;
  if (json_object_set_new(root, "sources", sources) != 0) {
    sources = NULL; /* stolen even on failure */
    goto fail;
  }
  return root;
fail:
  json_decref(sources);
  json_decref(root);
  return NULL;
}

char *cr_sub_filter_to_json(const cr_sub_filter *f) {
  if (f == NULL)
    return NULL;
  json_t *root = filter_json(f);
  if (root == NULL)
    return NULL;
  char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(root);
  if (text == NULL)
    return NULL;
  char *copy = cr__strdup(text);
  free(text); /* jansson allocates with malloc */
  return copy;
}

int cr_sub_filter_match(const cr_sub_filter *f, const char *subject_type,
                        const char *subject_id, const char *verb) {
  if (f == NULL || subject_type == NULL || subject_id == NULL || verb == NULL)
    return 0;
  if (f->verbs.n > 0 && !strset_has(&f->verbs, verb))
    return 0;
  if (!f->has_sources)
    return 1;
  struct source key = {.type = (char *)subject_type};
  const struct source *s =
      f->nsrc == 0 ? NULL
                   : bsearch(&key, f->src, f->nsrc, sizeof *f->src, cmp_source);
  if (s == NULL)
    return 0;
  return s->ids.n == 0 || strset_has(&s->ids, subject_id);
}
