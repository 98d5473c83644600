/* yamljson.c: libyaml event stream -> jansson tree, and the mark table that
 * remembers where every node came from (see yamljson.h). */
#include "config/yamljson.h"

#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_NODES 1000000u

/* ---- The mark table ------------------------------------------------------ */

struct entry {
  const json_t *node;
  const json_t *parent; /* NULL for a root */
  char *key;            /* member key, or NULL for an array item */
  size_t index;
  struct cr_mark val;
  struct cr_mark keym; /* line 0 when there is no key */
};

struct cr_marks {
  struct entry *e;
  size_t n, cap;
  uint32_t *by_node; /* open addressing, entry index + 1, 0 = empty */
  uint32_t *by_slot;
  size_t tcap; /* size of both tables, a power of two */
  char **files;
  size_t nfiles;
};

static int is_singleton(const json_t *v) {
  return v == NULL || json_is_true(v) || json_is_false(v) || json_is_null(v);
}

static size_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

static size_t hash_slot(const json_t *parent, const char *key, size_t index) {
  uint64_t h = 1469598103934665603ULL ^ hash_ptr(parent);
  if (key == NULL)
    return (size_t)((h ^ index) * 1099511628211ULL);
  for (const unsigned char *s = (const unsigned char *)key; *s; s++)
    h = (h ^ *s) * 1099511628211ULL;
  return (size_t)h;
}

static int slot_eq(const struct entry *e, const json_t *parent, const char *key,
                   size_t index) {
  if (e->parent != parent)
    return 0;
  if (key == NULL || e->key == NULL)
    return key == NULL && e->key == NULL && e->index == index;
  return strcmp(e->key, key) == 0;
}

static void index_entry(cr_marks *m, uint32_t i) {
  struct entry *e = &m->e[i];
  size_t mask = m->tcap - 1;
  if (!is_singleton(e->node)) {
    size_t h = hash_ptr(e->node) & mask;
    while (m->by_node[h] && m->e[m->by_node[h] - 1].node != e->node)
      h = (h + 1) & mask;
    m->by_node[h] = i + 1;
  }
  if (e->parent != NULL) {
    size_t h = hash_slot(e->parent, e->key, e->index) & mask;
    while (m->by_slot[h] &&
           !slot_eq(&m->e[m->by_slot[h] - 1], e->parent, e->key, e->index))
      h = (h + 1) & mask;
    m->by_slot[h] = i + 1;
  }
}

static int rehash(cr_marks *m, size_t tcap) {
  uint32_t *a = cr__calloc(tcap, sizeof *a);
  uint32_t *b = cr__calloc(tcap, sizeof *b);
  if (a == NULL || b == NULL) {
    cr__free(a);
    cr__free(b);
    return CR_ENOMEM;
  }
  cr__free(m->by_node);
  cr__free(m->by_slot);
  m->by_node = a;
  m->by_slot = b;
  m->tcap = tcap;
  for (size_t i = 0; i < m->n; i++)
    index_entry(m, (uint32_t)i);
  return 0;
}

int cr_marks_new(cr_marks **out) {
  cr_marks *m = cr__calloc(1, sizeof *m);
  if (m == NULL || rehash(m, 64) != 0) {
    cr__free(m);
    return CR_ENOMEM;
  }
  *out = m;
  return 0;
}

void cr_marks_free(cr_marks *m) {
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->n; i++)
    cr__free(m->e[i].key);
  for (size_t i = 0; i < m->nfiles; i++)
    cr__free(m->files[i]);
  cr__free(m->files);
  cr__free(m->e);
  cr__free(m->by_node);
  cr__free(m->by_slot);
  cr__free(m);
}

void cr_marks_drop_positions(cr_marks *m) {
  if (m == NULL || (m->n == 0 && m->e == NULL))
    return; /* nothing to drop (dropped before) */
  for (size_t i = 0; i < m->n; i++)
    cr__free(m->e[i].key);
  cr__free(m->e);
  m->e = NULL;
  m->n = m->cap = 0;
  rehash(m, 64); /* empty tables: every lookup finds nothing (on ENOMEM
                    the old tables stay, with no entry to point at) */
}

const char *cr_marks_file(cr_marks *m, const char *file) {
  for (size_t i = 0; i < m->nfiles; i++)
    if (strcmp(m->files[i], file) == 0)
      return m->files[i];
  char **files = cr__realloc(m->files, (m->nfiles + 1) * sizeof *files);
  if (files == NULL)
    return NULL;
  m->files = files;
  char *copy = cr__strdup(file);
  if (copy == NULL)
    return NULL;
  files[m->nfiles++] = copy;
  return copy;
}

int cr_marks_set(cr_marks *m, const json_t *node, const json_t *parent,
                 const char *key, size_t index, const struct cr_mark *mark,
                 const struct cr_mark *key_mark) {
  if ((m->n + 1) * 2 > m->tcap && rehash(m, m->tcap * 2) != 0)
    return CR_ENOMEM;
  if (m->n == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct entry *e = cr__realloc(m->e, cap * sizeof *e);
    if (e == NULL)
      return CR_ENOMEM;
    m->e = e;
    m->cap = cap;
  }
  struct entry *e = &m->e[m->n];
  memset(e, 0, sizeof *e);
  if (parent != NULL && key != NULL && (e->key = cr__strdup(key)) == NULL)
    return CR_ENOMEM;
  e->node = node;
  e->parent = parent;
  e->index = index;
  e->val = *mark;
  if (key_mark != NULL)
    e->keym = *key_mark;
  index_entry(m, (uint32_t)m->n++);
  return 0;
}

const struct cr_mark *cr_marks_get(const cr_marks *m, const json_t *node) {
  if (m == NULL || is_singleton(node))
    return NULL;
  size_t mask = m->tcap - 1, h = hash_ptr(node) & mask;
  for (; m->by_node[h]; h = (h + 1) & mask)
    if (m->e[m->by_node[h] - 1].node == node)
      return &m->e[m->by_node[h] - 1].val;
  return NULL;
}

static const struct entry *find_slot(const cr_marks *m, const json_t *parent,
                                     const char *key, size_t index) {
  if (m == NULL || parent == NULL)
    return NULL;
  size_t mask = m->tcap - 1, h = hash_slot(parent, key, index) & mask;
  for (; m->by_slot[h]; h = (h + 1) & mask)
    if (slot_eq(&m->e[m->by_slot[h] - 1], parent, key, index))
      return &m->e[m->by_slot[h] - 1];
  return NULL;
}

const struct cr_mark *cr_marks_member(const cr_marks *m, const json_t *obj,
                                      const char *key) {
  const struct entry *e = key ? find_slot(m, obj, key, 0) : NULL;
  return e ? &e->val : NULL;
}

const struct cr_mark *cr_marks_key(const cr_marks *m, const json_t *obj,
                                   const char *key) {
  const struct entry *e = key ? find_slot(m, obj, key, 0) : NULL;
  return e && e->keym.line > 0 ? &e->keym : NULL;
}

const struct cr_mark *cr_marks_item(const cr_marks *m, const json_t *arr,
                                    size_t index) {
  const struct entry *e = find_slot(m, arr, NULL, index);
  return e ? &e->val : NULL;
}

static int copy_children(cr_marks *m, const json_t *from, const json_t *to) {
  if (json_is_object(from) && json_is_object(to)) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)to, k, v) {
      const struct entry *src = find_slot(m, from, k, 0);
      if (src == NULL)
        continue;
      struct cr_mark val = src->val, keym = src->keym;
      int rc = cr_marks_set(m, v, to, k, 0, &val, keym.line ? &keym : NULL);
      if (rc == 0)
        rc = copy_children(m, json_object_get(from, k), v);
      if (rc != 0)
        return rc;
    }
  } else if (json_is_array(from) && json_is_array(to)) {
    for (size_t i = 0; i < json_array_size(to); i++) {
      const struct entry *src = find_slot(m, from, NULL, i);
      if (src == NULL)
        continue;
      struct cr_mark val = src->val;
      json_t *v = json_array_get(to, i);
      int rc = cr_marks_set(m, v, to, NULL, i, &val, NULL);
      if (rc == 0)
        rc = copy_children(m, json_array_get(from, i), v);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

int cr_marks_copy_tree(cr_marks *m, const json_t *from, const json_t *to) {
  const struct cr_mark *mk = cr_marks_get(m, from);
  if (mk != NULL) {
    struct cr_mark copy = *mk;
    int rc = cr_marks_set(m, to, NULL, NULL, 0, &copy, NULL);
    if (rc != 0)
      return rc;
  }
  return copy_children(m, from, to);
}

/* ---- Scalars ------------------------------------------------------------- */

const char *cr_json_type_noun(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return "a mapping";
  case JSON_ARRAY:
    return "a list";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
    return "an integer";
  case JSON_REAL:
    return "a number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "a boolean";
  default:
    return "null";
  }
}

static int all_in(const char *s, const char *set) {
  if (*s == '\0')
    return 0;
  return strspn(s, set) == strlen(s);
}

static int is_float_text(const char *s) {
  if (*s == '+' || *s == '-')
    s++;
  size_t a = strspn(s, "0123456789");
  s += a;
  size_t b = 0;
  if (*s == '.') {
    s++;
    b = strspn(s, "0123456789");
    s += b;
  }
  if (a == 0 && b == 0)
    return 0;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-')
      s++;
    size_t c = strspn(s, "0123456789");
    if (c == 0)
      return 0;
    s += c;
  }
  return *s == '\0';
}

static int is_one_of(const char *s, const char *const *words) {
  for (; *words; words++)
    if (strcmp(s, *words) == 0)
      return 1;
  return 0;
}

/* Resolves a plain scalar. Returns the value, or NULL with *why set to a
 * refusal message (or NULL for ENOMEM). */
static json_t *resolve_plain(const char *s, size_t len, const char **why) {
  static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
  static const char *const trues[] = {"true", "True", "TRUE", NULL};
  static const char *const falses[] = {"false", "False", "FALSE", NULL};
  static const char *const specials[] = {
      ".inf",  ".Inf",  ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
      "-.Inf", "-.INF", ".nan", ".NaN",  ".NAN",  NULL};
  *why = NULL;
  if (strlen(s) != len)
    return json_stringn_nocheck(s, len);
  if (is_one_of(s, nulls))
    return json_null();
  if (is_one_of(s, trues))
    return json_true();
  if (is_one_of(s, falses))
    return json_false();
  if (is_one_of(s, specials)) {
    *why = "infinite and NaN numbers are not supported";
    return NULL;
  }
  const char *digits = s + (*s == '+' || *s == '-');
  int base = 0;
  const char *num = NULL;
  if (all_in(digits, "0123456789"))
    base = 10, num = s;
  else if (strncmp(s, "0o", 2) == 0 && all_in(s + 2, "01234567"))
    base = 8, num = s + 2;
  else if (strncmp(s, "0x", 2) == 0 && all_in(s + 2, "0123456789abcdefABCDEF"))
    base = 16, num = s + 2;
  if (base != 0) {
    errno = 0;
    long long v = strtoll(num, NULL, base);
    if (errno == ERANGE) {
      *why = "integer out of range";
      return NULL;
    }
    return json_integer((json_int_t)v);
  }
  if (is_float_text(s)) {
    errno = 0;
    double d = strtod(s, NULL);
    if (errno == ERANGE && !isfinite(d)) {
      *why = "number out of range";
      return NULL;
    }
    return json_real(d);
  }
  return json_stringn_nocheck(s, len);
}

/* ---- The builder --------------------------------------------------------- */

struct frame {
  json_t *node; /* borrowed: owned by its parent or the root */
  int is_map;
  char *key; /* pending member key (value not seen yet) */
  struct cr_mark keym;
  long anchor; /* index in anchors, or -1 */
  int height;  /* levels of collections below it so far */
};

struct anchor {
  char *name;
  json_t *node; /* borrowed */
  size_t start; /* node count when it started */
  size_t size;  /* nodes in it, once complete */
  int height;   /* levels of collections in it (0: a scalar), once complete */
  int complete;
};

struct builder {
  cr_marks *m;
  const char *file; /* interned */
  struct frame *st;
  size_t depth, scap;
  struct anchor *anchors;
  size_t nanchors, acap;
  json_t *root;
  size_t nodes;
  int docs;
  struct cr_yaml_error *err;
};

static struct cr_mark mark_of(const struct builder *b, yaml_mark_t ym) {
  struct cr_mark mk = {b->file, (int)ym.line + 1, (int)ym.column + 1};
  return mk;
}

__attribute__((format(printf, 3, 4))) static int
fail_at(struct builder *b, yaml_mark_t ym, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  b->err->line = (int)ym.line + 1;
  b->err->column = (int)ym.column + 1;
  vsnprintf(b->err->message, sizeof b->err->message, fmt, ap);
  va_end(ap);
  return CR_EPARSE;
}

static struct frame *top(struct builder *b) {
  return b->depth ? &b->st[b->depth - 1] : NULL;
}

/* Adds v (a new reference, always consumed) at the current position. */
static int attach(struct builder *b, json_t *v, yaml_mark_t ym) {
  struct cr_mark mk = mark_of(b, ym);
  struct frame *f = top(b);
  if (v == NULL)
    return CR_ENOMEM;
  b->nodes++;
  if (f == NULL) {
    json_decref(b->root);
    b->root = v;
    return cr_marks_set(b->m, v, NULL, NULL, 0, &mk, NULL);
  }
  if (f->is_map) {
    char *key = f->key;
    f->key = NULL;
    int rc = json_object_set_new_nocheck(f->node, key, v) ? CR_ENOMEM : 0;
    if (rc == 0)
      rc = cr_marks_set(b->m, v, f->node, key, 0, &mk, &f->keym);
    cr__free(key);
    return rc;
  }
  size_t i = json_array_size(f->node);
  if (json_array_append_new(f->node, v) != 0)
    return CR_ENOMEM;
  return cr_marks_set(b->m, v, f->node, NULL, i, &mk, NULL);
}

static int add_anchor(struct builder *b, const char *name, json_t *node,
                      long *index_out) {
  if (b->nanchors == b->acap) {
    size_t cap = b->acap ? b->acap * 2 : 8;
    struct anchor *a = cr__realloc(b->anchors, cap * sizeof *a);
    if (a == NULL)
      return CR_ENOMEM;
    b->anchors = a;
    b->acap = cap;
  }
  struct anchor *a = &b->anchors[b->nanchors];
  if ((a->name = cr__strdup(name)) == NULL)
    return CR_ENOMEM;
  a->node = node;
  a->start = b->nodes - 1;
  a->size = 1;
  a->height = 0;
  a->complete = 0;
  *index_out = (long)b->nanchors++;
  return 0;
}

static int push(struct builder *b, json_t *node, int is_map,
                const yaml_char_t *anchor) {
  if (b->depth == b->scap) {
    size_t cap = b->scap ? b->scap * 2 : 16;
    struct frame *st = cr__realloc(b->st, cap * sizeof *st);
    if (st == NULL)
      return CR_ENOMEM;
    b->st = st;
    b->scap = cap;
  }
  struct frame *f = &b->st[b->depth++];
  memset(f, 0, sizeof *f);
  f->node = node;
  f->is_map = is_map;
  f->anchor = -1;
  if (anchor != NULL)
    return add_anchor(b, (const char *)anchor, node, &f->anchor);
  return 0;
}

/* Notes that a node of height levels of collections was added. */
static void grew(struct builder *b, int height) {
  struct frame *f = top(b);
  if (f != NULL && f->height < height)
    f->height = height;
}

static int pop(struct builder *b) {
  struct frame *f = top(b);
  int height = f->height + 1;
  if (f->anchor >= 0) {
    struct anchor *a = &b->anchors[f->anchor];
    a->complete = 1;
    a->size = b->nodes - a->start;
    a->height = height;
  }
  cr__free(f->key);
  b->depth--;
  grew(b, height);
  return 0;
}

/* Refuses a node of height levels at the current position when the tree
 * would nest deeper than CR_YAML_MAX_DEPTH. */
static int check_depth(struct builder *b, yaml_mark_t ym, int height) {
  if (b->depth + (size_t)height <= CR_YAML_MAX_DEPTH)
    return 0;
  fail_at(b, ym,
          "lists and mappings nested deeper than %d levels, the limit for "
          "one document",
          CR_YAML_MAX_DEPTH);
  return CR_ELIMIT;
}

static int key_expected(struct builder *b) {
  struct frame *f = top(b);
  return f != NULL && f->is_map && f->key == NULL;
}

static int on_key(struct builder *b, const yaml_event_t *ev) {
  const char *k = (const char *)ev->data.scalar.value;
  struct frame *f = top(b);
  if (strlen(k) != ev->data.scalar.length)
    return fail_at(b, ev->start_mark, "mapping key contains a NUL character");
  if (json_object_get(f->node, k) != NULL) {
    const struct cr_mark *first = cr_marks_key(b->m, f->node, k);
    return fail_at(b, ev->start_mark, "duplicate key '%s' (first at line %d)",
                   k, first ? first->line : 0);
  }
  if ((f->key = cr__strdup(k)) == NULL)
    return CR_ENOMEM;
  f->keym = mark_of(b, ev->start_mark);
  return 0;
}

static int scalar_is_string(const yaml_event_t *ev, int *bad_tag) {
  const char *tag = (const char *)ev->data.scalar.tag;
  *bad_tag = 0;
  if (tag != NULL) {
    if (strcmp(tag, "!") == 0 || strcmp(tag, YAML_STR_TAG) == 0)
      return 1;
    if (strcmp(tag, YAML_NULL_TAG) != 0 && strcmp(tag, YAML_BOOL_TAG) != 0 &&
        strcmp(tag, YAML_INT_TAG) != 0 && strcmp(tag, YAML_FLOAT_TAG) != 0) {
      *bad_tag = 1;
      return 0;
    }
    return 0;
  }
  return ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev) {
  const char *s = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  int bad_tag;
  if (key_expected(b))
    return on_key(b, ev);
  int str = scalar_is_string(ev, &bad_tag);
  if (bad_tag)
    return fail_at(b, ev->start_mark, "unsupported tag '%s'",
                   (const char *)ev->data.scalar.tag);
  const char *why = NULL;
  json_t *v = str ? json_stringn_nocheck(s, len) : resolve_plain(s, len, &why);
  if (v == NULL && why != NULL)
    return fail_at(b, ev->start_mark, "%s", why);
  json_t *keep = v;
  int rc = attach(b, v, ev->start_mark);
  long idx;
  if (rc == 0 && ev->data.scalar.anchor != NULL) {
    rc = add_anchor(b, (const char *)ev->data.scalar.anchor, keep, &idx);
    if (rc == 0)
      b->anchors[idx].complete = 1;
  }
  return rc;
}

static int on_alias(struct builder *b, const yaml_event_t *ev) {
  const char *name = (const char *)ev->data.alias.anchor;
  if (key_expected(b))
    return fail_at(b, ev->start_mark,
                   "aliases as mapping keys are not "
                   "supported");
  for (size_t i = b->nanchors; i-- > 0;) {
    struct anchor *a = &b->anchors[i];
    if (strcmp(a->name, name) != 0)
      continue;
    if (!a->complete)
      return fail_at(b, ev->start_mark, "recursive alias '*%s'", name);
    if (b->nodes + a->size > MAX_NODES)
      return fail_at(b, ev->start_mark,
                     "document too large: more than %u nodes through aliases",
                     MAX_NODES);
    int rc = check_depth(b, ev->start_mark, a->height);
    if (rc != 0)
      return rc;
    json_t *copy = json_deep_copy(a->node);
    if (copy == NULL)
      return CR_ENOMEM;
    rc = attach(b, copy, ev->start_mark);
    b->nodes += a->size - 1;
    grew(b, a->height);
    return rc ? rc : copy_children(b->m, a->node, copy);
  }
  return fail_at(b, ev->start_mark, "unknown alias '*%s'", name);
}

static int on_start(struct builder *b, const yaml_event_t *ev, int is_map) {
  const yaml_char_t *anchor =
      is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
  const yaml_char_t *tag =
      is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
  const char *want = is_map ? YAML_MAP_TAG : YAML_SEQ_TAG;
  if (key_expected(b))
    return fail_at(b, ev->start_mark, "complex mapping keys are not supported");
  if (tag != NULL && strcmp((const char *)tag, want) != 0 &&
      strcmp((const char *)tag, "!") != 0)
    return fail_at(b, ev->start_mark, "unsupported tag '%s'",
                   (const char *)tag);
  int rc = check_depth(b, ev->start_mark, 1);
  if (rc != 0)
    return rc;
  json_t *v = is_map ? json_object() : json_array();
  json_t *keep = v;
  rc = attach(b, v, ev->start_mark);
  return rc ? rc : push(b, keep, is_map, anchor);
}

static int on_event(struct builder *b, const yaml_event_t *ev) {
  switch (ev->type) {
  case YAML_DOCUMENT_START_EVENT:
    if (b->docs++ > 0)
      return fail_at(b, ev->start_mark,
                     "multiple YAML documents in one file are not supported");
    return 0;
  case YAML_SCALAR_EVENT:
    return on_scalar(b, ev);
  case YAML_ALIAS_EVENT:
    return on_alias(b, ev);
  case YAML_MAPPING_START_EVENT:
    return on_start(b, ev, 1);
  case YAML_SEQUENCE_START_EVENT:
    return on_start(b, ev, 0);
  case YAML_MAPPING_END_EVENT:
  case YAML_SEQUENCE_END_EVENT:
    return pop(b);
  default:
    return 0;
  }
}

static int parser_failed(struct builder *b, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR)
    return CR_ENOMEM;
  if (p->error == YAML_READER_ERROR)
    return fail_at(b, p->mark, "%s (at byte %zu)",
                   p->problem ? p->problem : "cannot read the input",
                   p->problem_offset);
  const char *problem = p->problem ? p->problem : "syntax error";
  if (p->context != NULL)
    return fail_at(b, p->problem_mark, "%s (%s)", problem, p->context);
  return fail_at(b, p->problem_mark, "%s", problem);
}

static void builder_free(struct builder *b) {
  while (b->depth > 0)
    pop(b);
  for (size_t i = 0; i < b->nanchors; i++)
    cr__free(b->anchors[i].name);
  cr__free(b->anchors);
  cr__free(b->st);
  json_decref(b->root);
}

int cr_yaml_parse_string(const char *text, size_t len, const char *file,
                         cr_marks *marks, json_t **out,
                         struct cr_yaml_error *err) {
  struct builder b;
  yaml_parser_t p;
  memset(&b, 0, sizeof b);
  memset(err, 0, sizeof *err);
  *out = NULL;
  b.m = marks;
  b.err = err;
  if ((b.file = cr_marks_file(marks, file)) == NULL)
    return CR_ENOMEM;
  if (!yaml_parser_initialize(&p))
    return CR_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  int rc = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) {
      rc = parser_failed(&b, &p);
      break;
    }
    rc = on_event(&b, &ev);
    int done = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (rc != 0 || done)
      break;
  }
  yaml_parser_delete(&p);
  if (rc == CR_ENOMEM)
    snprintf(err->message, sizeof err->message, "%s", cr_strerror(rc));
  if (rc == 0) {
    *out = b.root ? b.root : json_null();
    b.root = NULL;
  }
  builder_free(&b);
  return rc;
}

static int read_error(struct cr_yaml_error *err, const char *path, int e) {
  memset(err, 0, sizeof *err);
  snprintf(err->message, sizeof err->message, "cannot read %s: %s", path,
           strerror(e));
  return e == ENOENT ? CR_ENOENT : CR_EIO;
}

/* Reads all of f (hint: its expected size) into a new buffer; more than
 * max bytes is CR_ELIMIT. */
static int read_all(FILE *f, size_t hint, size_t max, char **out,
                    size_t *len_out) {
  size_t cap = (hint > 4095 ? hint : 4095), len = 0;
  cap = (cap < max ? cap : max) + 1;
  char *buf = cr__malloc(cap);
  if (buf == NULL)
    return CR_ENOMEM;
  while (len <= max) {
    if (len == cap) {
      size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
      char *nbuf = cr__realloc(buf, ncap);
      if (nbuf == NULL) {
        cr__free(buf);
        return CR_ENOMEM;
      }
      buf = nbuf;
      cap = ncap;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    if (got == 0)
      break;
    len += got;
  }
  int rc = ferror(f) ? CR_EIO : len > max ? CR_ELIMIT : 0;
  if (rc != 0) {
    cr__free(buf);
    return rc;
  }
  *out = buf;
  *len_out = len;
  return 0;
}

static void size_text(size_t n, char *buf, size_t len) {
  if (n % (1u << 20) == 0)
    snprintf(buf, len, "%zu MiB", n >> 20);
  else
    snprintf(buf, len, "%zu bytes", n);
}

int cr_yaml_read_file(const char *path, size_t max, char **text, size_t *len,
                      struct cr_yaml_error *err) {
  struct stat st;
  *text = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return read_error(err, path, errno);
  if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
    int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
    fclose(f);
    return read_error(err, path, e);
  }
  size_t hint = st.st_size > 0 ? (size_t)st.st_size : 0;
  int rc = S_ISREG(st.st_mode) && hint > max
               ? CR_ELIMIT
               : read_all(f, hint, max, text, len);
  fclose(f);
  memset(err, 0, sizeof *err);
  if (rc == CR_EIO)
    return read_error(err, path, EIO);
  if (rc == CR_ELIMIT) {
    char lim[64];
    size_text(max, lim, sizeof lim);
    err->line = err->column = 1;
    snprintf(err->message, sizeof err->message,
             "file is larger than %s, the limit for one file", lim);
  } else if (rc == CR_ENOMEM) {
    snprintf(err->message, sizeof err->message, "%s", cr_strerror(rc));
  }
  return rc;
}

int cr_yaml_parse_file(const char *path, cr_marks *marks, json_t **out,
                       struct cr_yaml_error *err) {
  char *text;
  size_t len;
  *out = NULL;
  int rc = cr_yaml_read_file(path, CR_YAML_MAX_FILE_SIZE, &text, &len, err);
  if (rc != 0)
    return rc;
  rc = cr_yaml_parse_string(text, len, path, marks, out, err);
  cr__free(text);
  return rc;
}

int cr_yaml_error_format(const struct cr_yaml_error *err, const char *file,
                         char *buf, size_t len) {
  if (err->line <= 0)
    return snprintf(buf, len, "%s: %s", file, err->message);
  return snprintf(buf, len, "%s:%d:%d: %s", file, err->line, err->column,
                  err->message);
}
