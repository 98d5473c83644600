/* jsonschema.c: compiling and checking the JSON Schema subset described in
 * jsonschema.h: the compiled schema tree, the ECMA-262 to POSIX regex
 * translation, JSON Schema equality and error reporting with JSON
 * pointers. */
#include "util/jsonschema.h"

#include "util/alloc.h"
#include "util/error.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_TRUE, S_FALSE, S_OBJECT };

/* Type bits, in the order of type_names. */
enum {
  T_NULL = 1u << 0,
  T_BOOLEAN = 1u << 1,
  T_OBJECT = 1u << 2,
  T_ARRAY = 1u << 3,
  T_NUMBER = 1u << 4,
  T_INTEGER = 1u << 5,
  T_STRING = 1u << 6,
};

static const char *const type_names[] = {"null",   "boolean", "object", "array",
                                         "number", "integer", "string"};
#define NTYPES (sizeof type_names / sizeof type_names[0])

struct prop {
  char *name;
  cr_schema *schema;
};

struct cr_schema {
  int kind;       /* S_TRUE, S_FALSE or S_OBJECT */
  unsigned types; /* T_* bits; 0 when there is no "type" */
  struct prop *props;
  size_t nprops;
  char **required;
  size_t nrequired;
  cr_schema *additional; /* NULL: additional properties are not checked */
  json_t *enum_values;   /* own reference or NULL */
  json_t *const_value;   /* own reference or NULL */
  cr_schema *items;      /* schema for every item, or NULL */
  cr_schema **tuple;     /* positional item schemas */
  size_t ntuple;
  long long min_items, max_items, min_length, max_length; /* -1: absent */
  json_t *minimum, *maximum; /* own references or NULL */
  char *pattern;             /* source text, for messages */
  regex_t *regex;
};

/* ---- growable string ---------------------------------------------------- */

struct buf {
  char *p;
  size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = cr__realloc(b->p, cap);
    if (p == NULL)
      return CR_ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int buf_str(struct buf *b, const char *s) {
  return buf_add(b, s, strlen(s));
}

static int buf_chr(struct buf *b, char c) { return buf_add(b, &c, 1); }

static const char *buf_cstr(const struct buf *b) { return b->p ? b->p : ""; }

static void buf_truncate(struct buf *b, size_t len) {
  b->len = len;
  if (b->p != NULL)
    b->p[len] = '\0';
}

/* Appends "/key" with JSON pointer escaping (~ is ~0, / is ~1). */
static int path_push_key(struct buf *b, const char *key) {
  int rc = buf_chr(b, '/');
  for (const char *k = key; rc == 0 && *k != '\0'; k++) {
    if (*k == '~')
      rc = buf_str(b, "~0");
    else if (*k == '/')
      rc = buf_str(b, "~1");
    else
      rc = buf_chr(b, *k);
  }
  return rc;
}

static int path_push_index(struct buf *b, size_t i) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "/%zu", i);
  return buf_str(b, tmp);
}

/* ---- numbers and equality ----------------------------------------------- */

/* Compares an integer with a real exactly (no rounding of either). */
static int int_real_cmp(json_int_t i, double d) {
  if (d >= 9223372036854775808.0)
    return -1;
  if (d < -9223372036854775808.0)
    return 1;
  double t = trunc(d);
  json_int_t ti = (json_int_t)t;
  if (i != ti)
    return i < ti ? -1 : 1;
  double frac = d - t;
  return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

/* Compares two json numbers by value: -1, 0 or 1. */
static int num_cmp(const json_t *a, const json_t *b) {
  if (json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b);
    return (x > y) - (x < y);
  }
  if (json_is_real(a) && json_is_real(b)) {
    double x = json_real_value(a), y = json_real_value(b);
    return (x > y) - (x < y);
  }
  if (json_is_integer(a))
    return int_real_cmp(json_integer_value(a), json_real_value(b));
  return -int_real_cmp(json_integer_value(b), json_real_value(a));
}

/* JSON Schema equality: numbers by value, containers deeply. */
static int schema_equal(const json_t *a, const json_t *b) {
  if (json_is_number(a) && json_is_number(b))
    return num_cmp(a, b) == 0;
  if (json_typeof(a) != json_typeof(b))
    return 0;
  if (json_is_array(a)) {
    if (json_array_size(a) != json_array_size(b))
      return 0;
    for (size_t i = 0; i < json_array_size(a); i++)
      if (!schema_equal(json_array_get(a, i), json_array_get(b, i)))
        return 0;
    return 1;
  }
  if (json_is_object(a)) {
    if (json_object_size(a) != json_object_size(b))
      return 0;
    const char *key;
    json_t *av;
    json_object_foreach((json_t *)a, key, av) {
      const json_t *bv = json_object_get(b, key);
      if (bv == NULL || !schema_equal(av, bv))
        return 0;
    }
    return 1;
  }
  return json_equal((json_t *)a, (json_t *)b);
}

static int is_integral(double d) { return isfinite(d) && d == trunc(d); }

/* ---- regex translation (ECMA-262 subset -> POSIX ERE) ------------------- */

struct rx {
  const char *p; /* read position in the ECMA source */
  struct buf out;
  char msg[96]; /* why translation failed */
};

__attribute__((format(printf, 3, 4))) static int rx_fail(struct rx *r, int rc,
                                                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  return rc;
}

/* Decodes the escape whose backslash was just consumed. Returns 0 with *cp
 * set for a character, the letter (d D w W s S) for a class escape, or a
 * negative error with r->msg set. */
static int rx_escape(struct rx *r, int in_class, unsigned long *cp) {
  unsigned char e = (unsigned char)*r->p;
  if (e == '\0')
    return rx_fail(r, CR_EINVAL, "trailing backslash");
  r->p++;
  const char *ctl = strchr("ntrfv", e);
  if (strchr("dDwWsS", e) != NULL)
    return e;
  if (ctl != NULL || (e == 'b' && in_class)) {
    *cp = (unsigned char)(ctl ? "\n\t\r\f\v"[ctl - "ntrfv"] : '\b');
    return 0;
  }
  if (e == 'x' || e == 'u') {
    char hex[5] = "";
    size_t n = e == 'x' ? 2 : 4;
    for (size_t i = 0; i < n; i++)
      if (!isxdigit((unsigned char)r->p[i]))
        return rx_fail(r, CR_ENOTSUP, "malformed escape \\%c", e);
    memcpy(hex, r->p, n);
    r->p += n;
    *cp = strtoul(hex, NULL, 16);
    if (*cp == 0 || (*cp >= 0xd800 && *cp <= 0xdfff))
      return rx_fail(r, CR_ENOTSUP, "unsupported NUL or surrogate \\%c", e);
    return 0;
  }
  if (isalnum(e) || e >= 0x80) /* \b outside a class, \1, \p, \c, ... */
    return rx_fail(r, CR_ENOTSUP, "unsupported escape \\%c", e);
  *cp = e;
  return 0;
}

/* Appends one character as a literal outside a bracket expression. A
 * multi-byte character is grouped so a quantifier applies to all of it. */
static int rx_literal(struct buf *b, unsigned long cp) {
  if (cp < 0x80) {
    if (strchr(".[()*+?{|^$\\", (int)cp) != NULL && buf_chr(b, '\\') != 0)
      return CR_ENOMEM;
    return buf_chr(b, (char)cp);
  }
  char u[6] = {'('};
  size_t n;
  if (cp < 0x800) {
    u[1] = (char)(0xc0 | (cp >> 6));
    n = 2;
  } else if (cp < 0x10000) {
    u[1] = (char)(0xe0 | (cp >> 12));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    n = 3;
  } else {
    return CR_EINVAL; /* \xHH and \uXXXX stay below 0x10000 */
  }
  u[n] = (char)(0x80 | (cp & 0x3f));
  u[n + 1] = ')';
  return buf_add(b, u, n + 2);
}

/* The bracket expression for a class escape, used alone (outside) or
 * inside a class (NULL: it cannot be). */
static const char *class_outside(int k) {
  const char *p = strchr("dDwWsS", k);
  static const char *const v[] = {"[0-9]",        "[^0-9]",
                                  "[0-9A-Za-z_]", "[^0-9A-Za-z_]",
                                  "[[:space:]]",  "[^[:space:]]"};
  return v[p - "dDwWsS"];
}

static const char *class_inside(int k) {
  return k == 'd'   ? "0-9"
         : k == 'w' ? "0-9A-Za-z_"
         : k == 's' ? "[:space:]"
                    : NULL;
}

/* One atom of a character class: 0 with *cp for a character, a class
 * letter, or a negative error. */
static int rx_class_atom(struct rx *r, unsigned long *cp) {
  unsigned char c = (unsigned char)*r->p++;
  int k = 0;
  if (c == '\\')
    k = rx_escape(r, 1, cp);
  else
    *cp = c;
  if (k == 0 && *cp >= 0x80)
    return rx_fail(r, CR_ENOTSUP, "non-ASCII character in a character class");
  return k;
}

/* A parsed character class. ] ^ [ and - are kept apart: POSIX brackets
 * have no escapes, so they must be placed where they are literal. */
struct cls {
  struct buf items; /* plain characters, ranges and [:class:] names */
  int neg, rbr, hyph, caret, lbr;
};

static int rx_class_emit(struct rx *r, const struct cls *k) {
  int others = k->items.len > 0 || k->rbr || k->lbr;
  if (!others && !k->hyph && !k->caret)
    return rx_fail(r, CR_ENOTSUP, "unsupported empty class %s",
                   k->neg ? "[^]" : "[]");
  if (!k->neg && k->caret && !others)
    return buf_str(&r->out, k->hyph ? "[-^]" : "\\^");
  struct buf *b = &r->out;
  int rc = buf_str(b, k->neg ? "[^" : "[");
  if (rc == 0 && k->rbr)
    rc = buf_chr(b, ']');
  if (rc == 0 && k->items.len > 0)
    rc = buf_str(b, k->items.p);
  if (rc == 0 && k->lbr)
    rc = buf_chr(b, '[');
  if (rc == 0 && k->caret)
    rc = buf_chr(b, '^');
  if (rc == 0 && k->hyph)
    rc = buf_chr(b, '-');
  return rc ? rc : buf_chr(b, ']');
}

/* Parses one class member (a character, a range or a class escape). */
static int rx_class_member(struct rx *r, struct cls *k) {
  unsigned long lo, hi;
  int e = rx_class_atom(r, &lo);
  if (e < 0)
    return e;
  if (e > 0) {
    const char *in = class_inside(e);
    if (in == NULL)
      return rx_fail(r, CR_ENOTSUP, "unsupported \\%c inside a class", e);
    return buf_str(&k->items, in);
  }
  if (r->p[0] == '-' && r->p[1] != ']' && r->p[1] != '\0') {
    r->p++;
    e = rx_class_atom(r, &hi);
    if (e != 0)
      return e < 0 ? e : rx_fail(r, CR_ENOTSUP, "class escape as a range end");
    if (strchr("[]-^", (int)lo) || strchr("[]-^", (int)hi))
      return rx_fail(r, CR_ENOTSUP, "unsupported range end in a class");
    if (hi < lo)
      return rx_fail(r, CR_EINVAL, "range out of order in a class");
    char range[3] = {(char)lo, '-', (char)hi};
    return buf_add(&k->items, range, 3);
  }
  k->rbr |= lo == ']';
  k->hyph |= lo == '-';
  k->caret |= lo == '^';
  k->lbr |= lo == '[';
  if (strchr("[]-^", (int)lo) != NULL)
    return 0;
  return buf_chr(&k->items, (char)lo);
}

/* Translates a class; r->p is just past '['. */
static int rx_class(struct rx *r) {
  struct cls k = {.neg = *r->p == '^'};
  r->p += k.neg;
  int rc = 0;
  while (rc == 0 && *r->p != ']') {
    if (*r->p == '\0')
      rc = rx_fail(r, CR_EINVAL, "unterminated character class");
    else
      rc = rx_class_member(r, &k);
  }
  if (rc == 0) {
    r->p++;
    rc = rx_class_emit(r, &k);
  }
  cr__free(k.items.p);
  return rc;
}

/* Length of an ECMA {n}, {n,} or {n,m} quantifier at p, or 0. */
static size_t rx_brace_len(const char *p) {
  size_t i = 1, digits = 0;
  while (p[i] >= '0' && p[i] <= '9')
    i++, digits++;
  if (digits == 0)
    return 0;
  if (p[i] == ',')
    for (i++; p[i] >= '0' && p[i] <= '9'; i++)
      ;
  return p[i] == '}' ? i + 1 : 0;
}

/* Copies a UTF-8 sequence starting at r->p as one grouped literal. */
static int rx_utf8(struct rx *r) {
  const char *s = r->p++;
  while (((unsigned char)*r->p & 0xc0) == 0x80)
    r->p++;
  int rc = buf_chr(&r->out, '(');
  if (rc == 0)
    rc = buf_add(&r->out, s, (size_t)(r->p - s));
  return rc ? rc : buf_chr(&r->out, ')');
}

static int rx_step(struct rx *r) {
  char c = *r->p++;
  unsigned long cp;
  switch (c) {
  case '\\': {
    int k = rx_escape(r, 0, &cp);
    if (k < 0)
      return k;
    return k > 0 ? buf_str(&r->out, class_outside(k)) : rx_literal(&r->out, cp);
  }
  case '[':
    return rx_class(r);
  case '.':
    return buf_str(&r->out, "[^\n\r]");
  case '(':
    if (*r->p != '?')
      return buf_chr(&r->out, '(');
    if (r->p[1] != ':')
      return rx_fail(r, CR_ENOTSUP, "unsupported group \"(?%.1s\"", r->p + 1);
    r->p += 2;
    return buf_chr(&r->out, '(');
  case '*':
  case '+':
  case '?':
    if (*r->p == '?') /* lazy: same match/no-match answer as greedy */
      r->p++;
    return buf_chr(&r->out, c);
  case '{': {
    size_t n = rx_brace_len(r->p - 1);
    if (n == 0)
      return buf_str(&r->out, "\\{");
    int rc = buf_add(&r->out, r->p - 1, n);
    r->p += n - 1;
    if (*r->p == '?')
      r->p++;
    return rc;
  }
  default:
    if ((unsigned char)c >= 0x80) {
      r->p--;
      return rx_utf8(r);
    }
    return buf_chr(&r->out, c);
  }
}

/* Translates src into *out (caller frees with cr__free). On failure fills
 * msg and returns CR_ENOTSUP, CR_EINVAL or CR_ENOMEM. */
static int rx_translate(const char *src, char **out, char *msg, size_t len) {
  struct rx r = {.p = src};
  int rc = buf_str(&r.out, "");
  while (rc == 0 && *r.p != '\0')
    rc = rx_step(&r);
  if (rc != 0) {
    snprintf(msg, len, "%s", rc == CR_ENOMEM ? "out of memory" : r.msg);
    cr__free(r.out.p);
    return rc;
  }
  *out = r.out.p;
  return 0;
}

/* ---- compiling ---------------------------------------------------------- */

struct cctx {
  struct buf path; /* JSON pointer of the keyword being compiled */
  char *errbuf;
  size_t errlen;
};

/* Writes "message at /pointer" into the caller's errbuf; returns rc. */
__attribute__((format(printf, 3, 4))) static int cfail(struct cctx *c, int rc,
                                                       const char *fmt, ...) {
  if (c->errbuf == NULL || c->errlen == 0)
    return rc;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(c->errbuf, c->errlen, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < c->errlen)
    snprintf(c->errbuf + n, c->errlen - (size_t)n, " at %s",
             c->path.len > 0 ? c->path.p : "the schema root");
  return rc;
}

static int compile_node(struct cctx *c, const json_t *v, cr_schema **out);

/* Compiles v as the subschema at path + "/" + key. */
static int compile_sub(struct cctx *c, const char *key, size_t index,
                       const json_t *v, cr_schema **out) {
  size_t saved = c->path.len;
  int rc =
      key ? path_push_key(&c->path, key) : path_push_index(&c->path, index);
  if (rc == 0)
    rc = compile_node(c, v, out);
  else
    rc = cfail(c, CR_ENOMEM, "out of memory");
  buf_truncate(&c->path, saved);
  return rc;
}

static int kw_type_one(struct cctx *c, const json_t *v, unsigned *types) {
  const char *name = json_string_value(v);
  for (size_t i = 0; name != NULL && i < NTYPES; i++) {
    if (strcmp(name, type_names[i]) == 0) {
      *types |= 1u << i;
      return 0;
    }
  }
  return cfail(c, CR_EINVAL, "\"type\" must name a JSON Schema type");
}

static int kw_type(struct cctx *c, cr_schema *s, const json_t *v) {
  if (!json_is_array(v))
    return kw_type_one(c, v, &s->types);
  if (json_array_size(v) == 0)
    return cfail(c, CR_EINVAL, "\"type\" must not be an empty array");
  for (size_t i = 0; i < json_array_size(v); i++) {
    int rc = kw_type_one(c, json_array_get(v, i), &s->types);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int kw_properties(struct cctx *c, cr_schema *s, const json_t *v) {
  if (!json_is_object(v))
    return cfail(c, CR_EINVAL, "\"properties\" must be an object");
  s->props = cr__calloc(json_object_size(v) + 1, sizeof *s->props);
  if (s->props == NULL)
    return cfail(c, CR_ENOMEM, "out of memory");
  const char *key;
  json_t *sub;
  json_object_foreach((json_t *)v, key, sub) {
    struct prop *p = &s->props[s->nprops++];
    p->name = cr__strdup(key);
    if (p->name == NULL)
      return cfail(c, CR_ENOMEM, "out of memory");
    int rc = compile_sub(c, key, 0, sub, &p->schema);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int kw_required(struct cctx *c, cr_schema *s, const json_t *v) {
  if (!json_is_array(v))
    return cfail(c, CR_EINVAL, "\"required\" must be an array of strings");
  s->required = cr__calloc(json_array_size(v) + 1, sizeof *s->required);
  if (s->required == NULL)
    return cfail(c, CR_ENOMEM, "out of memory");
  for (size_t i = 0; i < json_array_size(v); i++) {
    const char *name = json_string_value(json_array_get(v, i));
    if (name == NULL)
      return cfail(c, CR_EINVAL, "\"required\" must be an array of strings");
    s->required[s->nrequired] = cr__strdup(name);
    if (s->required[s->nrequired] == NULL)
      return cfail(c, CR_ENOMEM, "out of memory");
    s->nrequired++;
  }
  return 0;
}

static int kw_additional(struct cctx *c, cr_schema *s, const json_t *v) {
  return compile_node(c, v, &s->additional);
}

static int kw_enum(struct cctx *c, cr_schema *s, const json_t *v) {
  if (!json_is_array(v))
    return cfail(c, CR_EINVAL, "\"enum\" must be an array");
  s->enum_values = json_incref((json_t *)v);
  return 0;
}

static int kw_const(struct cctx *c, cr_schema *s, const json_t *v) {
  s->const_value = json_incref((json_t *)v);
  return 0;
}

static int kw_items(struct cctx *c, cr_schema *s, const json_t *v) {
  if (!json_is_array(v))
    return compile_node(c, v, &s->items);
  s->tuple = cr__calloc(json_array_size(v) + 1, sizeof *s->tuple);
  if (s->tuple == NULL)
    return cfail(c, CR_ENOMEM, "out of memory");
  for (size_t i = 0; i < json_array_size(v); i++) {
    int rc = compile_sub(c, NULL, i, json_array_get(v, i), &s->tuple[i]);
    s->ntuple = i + 1;
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* A non-negative integer (1.0 counts; huge values saturate). */
static int get_count(struct cctx *c, const json_t *v, long long *out) {
  double d = json_is_real(v) ? json_real_value(v) : -1;
  if (json_is_integer(v) && json_integer_value(v) >= 0)
    *out = json_integer_value(v);
  else if (is_integral(d) && d >= 0)
    *out = d >= 9.2e18 ? LLONG_MAX : (long long)d;
  else
    return cfail(c, CR_EINVAL, "value must be a non-negative integer");
  return 0;
}

static int kw_min_items(struct cctx *c, cr_schema *s, const json_t *v) {
  return get_count(c, v, &s->min_items);
}

static int kw_max_items(struct cctx *c, cr_schema *s, const json_t *v) {
  return get_count(c, v, &s->max_items);
}

static int kw_min_length(struct cctx *c, cr_schema *s, const json_t *v) {
  return get_count(c, v, &s->min_length);
}

static int kw_max_length(struct cctx *c, cr_schema *s, const json_t *v) {
  return get_count(c, v, &s->max_length);
}

static int kw_minimum(struct cctx *c, cr_schema *s, const json_t *v) {
  if (!json_is_number(v))
    return cfail(c, CR_EINVAL, "\"minimum\" must be a number");
  s->minimum = json_incref((json_t *)v);
  return 0;
}

static int kw_maximum(struct cctx *c, cr_schema *s, const json_t *v) {
  if (!json_is_number(v))
    return cfail(c, CR_EINVAL, "\"maximum\" must be a number");
  s->maximum = json_incref((json_t *)v);
  return 0;
}

static int kw_pattern(struct cctx *c, cr_schema *s, const json_t *v) {
  const char *src = json_string_value(v);
  if (src == NULL)
    return cfail(c, CR_EINVAL, "\"pattern\" must be a string");
  char msg[128], *ere = NULL;
  int rc = rx_translate(src, &ere, msg, sizeof msg);
  if (rc != 0)
    return cfail(c, rc, "pattern \"%s\": %s", src, msg);
  s->pattern = cr__strdup(src);
  regex_t *re = cr__malloc(sizeof *re);
  if (s->pattern == NULL || re == NULL) {
    cr__free(re);
    cr__free(ere);
    return cfail(c, CR_ENOMEM, "out of memory");
  }
  int e = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
  cr__free(ere);
  if (e != 0) {
    regerror(e, re, msg, sizeof msg);
    cr__free(re);
    return cfail(c, CR_EINVAL, "pattern \"%s\": %s", src, msg);
  }
  s->regex = re; /* only a compiled regex is ever stored */
  return 0;
}

typedef int (*kw_fn)(struct cctx *c, cr_schema *s, const json_t *v);

static const struct {
  const char *name;
  kw_fn fn;
} keywords[] = {
    {"type", kw_type},
    {"properties", kw_properties},
    {"required", kw_required},
    {"additionalProperties", kw_additional},
    {"enum", kw_enum},
    {"const", kw_const},
    {"items", kw_items},
    {"minItems", kw_min_items},
    {"maxItems", kw_max_items},
    {"minLength", kw_min_length},
    {"maxLength", kw_max_length},
    {"minimum", kw_minimum},
    {"maximum", kw_maximum},
    {"pattern", kw_pattern},
};

/* Standard keywords (draft 7 and later) this validator does not implement.
 * Everything else that is not in keywords[] is an annotation or unknown. */
static const char *const unsupported[] = {
    "$ref",
    "$defs",
    "definitions",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "additionalItems",
    "prefixItems",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "multipleOf",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minProperties",
    "maxProperties",
    "uniqueItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
};

static int compile_keyword(struct cctx *c, cr_schema *s, const char *key,
                           const json_t *v) {
  size_t saved = c->path.len;
  if (path_push_key(&c->path, key) != 0) {
    buf_truncate(&c->path, saved);
    return cfail(c, CR_ENOMEM, "out of memory");
  }
  int rc = 0;
  for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
    if (strcmp(key, unsupported[i]) == 0)
      rc = cfail(c, CR_ENOTSUP, "unsupported keyword \"%s\"", key);
  for (size_t i = 0; rc == 0 && i < sizeof keywords / sizeof *keywords; i++)
    if (strcmp(key, keywords[i].name) == 0)
      rc = keywords[i].fn(c, s, v);
  buf_truncate(&c->path, saved);
  return rc;
}

static int compile_node(struct cctx *c, const json_t *v, cr_schema **out) {
  *out = NULL;
  if (!json_is_object(v) && !json_is_boolean(v))
    return cfail(c, CR_EINVAL, "a schema must be an object or a boolean");
  cr_schema *s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return cfail(c, CR_ENOMEM, "out of memory");
  s->min_items = s->max_items = s->min_length = s->max_length = -1;
  s->kind = json_is_object(v) ? S_OBJECT : json_is_true(v) ? S_TRUE : S_FALSE;
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)v, key, val) {
    int rc = compile_keyword(c, s, key, val);
    if (rc != 0) {
      cr_schema_free(s);
      return rc;
    }
  }
  *out = s;
  return 0;
}

int cr_schema_compile(const json_t *schema, cr_schema **out, char *errbuf,
                      size_t errlen) {
  struct cctx c = {.errbuf = errbuf, .errlen = errlen};
  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (out == NULL || schema == NULL) {
    if (out != NULL)
      *out = NULL;
    return cfail(&c, CR_EINVAL, "no schema");
  }
  int rc = compile_node(&c, schema, out);
  cr__free(c.path.p);
  return rc;
}

int cr_schema_compile_text(const char *text, cr_schema **out, char *errbuf,
                           size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (text == NULL || out == NULL)
    return cr_schema_compile(NULL, out, errbuf, errlen);
  json_error_t je;
  json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
  if (j == NULL) {
    if (errbuf != NULL && errlen > 0)
      snprintf(errbuf, errlen, "line %d, column %d: %s", je.line, je.column,
               je.text);
    return CR_EPARSE;
  }
  int rc = cr_schema_compile(j, out, errbuf, errlen);
  json_decref(j);
  return rc;
}

void cr_schema_free(cr_schema *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->nprops; i++) {
    cr__free(s->props[i].name);
    cr_schema_free(s->props[i].schema);
  }
  cr__free(s->props);
  for (size_t i = 0; i < s->nrequired; i++)
    cr__free(s->required[i]);
  cr__free(s->required);
  cr_schema_free(s->additional);
  cr_schema_free(s->items);
  for (size_t i = 0; i < s->ntuple; i++)
    cr_schema_free(s->tuple[i]);
  cr__free(s->tuple);
  json_decref(s->enum_values);
  json_decref(s->const_value);
  json_decref(s->minimum);
  json_decref(s->maximum);
  if (s->regex != NULL)
    regfree(s->regex);
  cr__free(s->regex);
  cr__free(s->pattern);
  cr__free(s);
}

/* ---- validating --------------------------------------------------------- */

struct vctx {
  struct buf path; /* JSON pointer of the value being checked */
  cr_schema_error_cb cb;
  void *ud;
  size_t errors;
  int oom;
};

__attribute__((format(printf, 3, 4))) static void
report(struct vctx *v, const json_t *node, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  v->errors++;
  if (v->cb != NULL)
    v->cb(v->ud, node, buf_cstr(&v->path), msg);
}

/* Writes x as compact JSON into out (len >= 5 bytes), ending in "..." when
 * it does not fit. Returns the length written. */
static size_t dump_value(const json_t *x, char *out, size_t len) {
  size_t n =
      json_dumpb(x, out, len - 1,
                 JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
  if (n == 0)
    return (size_t)snprintf(out, len, "?");
  if (n < len) {
    out[n] = '\0';
    return n;
  }
  memcpy(out + len - 4, "...", 4);
  return len - 1;
}

/* Type bit and name of each jansson type. */
static const struct {
  unsigned bit;
  const char *name;
} json_types[] = {[JSON_OBJECT] = {T_OBJECT, "object"},
                  [JSON_ARRAY] = {T_ARRAY, "array"},
                  [JSON_STRING] = {T_STRING, "string"},
                  [JSON_INTEGER] = {T_INTEGER, "integer"},
                  [JSON_REAL] = {T_NUMBER, "number"},
                  [JSON_TRUE] = {T_BOOLEAN, "boolean"},
                  [JSON_FALSE] = {T_BOOLEAN, "boolean"},
                  [JSON_NULL] = {T_NULL, "null"}};

static int type_matches(unsigned types, const json_t *x) {
  if (json_is_integer(x))
    return (types & (T_INTEGER | T_NUMBER)) != 0;
  if (json_is_real(x) && (types & T_INTEGER) && is_integral(json_real_value(x)))
    return 1;
  return (types & json_types[json_typeof(x)].bit) != 0;
}

/* "expected string, integer or null, got boolean" */
static void report_type(struct vctx *v, unsigned types, const json_t *x) {
  char want[96] = "";
  size_t n = 0;
  for (size_t i = 0; i < NTYPES; i++) {
    if (!(types & (1u << i)))
      continue;
    types &= ~(1u << i);
    const char *sep = n == 0 ? "" : types == 0 ? " or " : ", ";
    n +=
        (size_t)snprintf(want + n, sizeof want - n, "%s%s", sep, type_names[i]);
  }
  report(v, x, "expected %s, got %s", want, json_types[json_typeof(x)].name);
}

static void check_enum(struct vctx *v, const cr_schema *s, const json_t *x) {
  size_t n = json_array_size(s->enum_values);
  for (size_t i = 0; i < n; i++)
    if (schema_equal(json_array_get(s->enum_values, i), x))
      return;
  char list[384] = "", one[128];
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    size_t k = dump_value(json_array_get(s->enum_values, i), one, sizeof one);
    if (used + k + 8 > sizeof list) { /* keep room for ", ..." */
      snprintf(list + used, sizeof list - used, "%s...", i ? ", " : "");
      break;
    }
    used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                             i ? ", " : "", one);
  }
  report(v, x, "value must be one of %s", list);
}

static void check_const(struct vctx *v, const cr_schema *s, const json_t *x) {
  if (schema_equal(s->const_value, x))
    return;
  char want[256];
  dump_value(s->const_value, want, sizeof want);
  report(v, x, "value must be %s", want);
}

/* Number of code points in a UTF-8 string of n bytes. */
static size_t utf8_length(const char *p, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += ((unsigned char)p[i] & 0xc0) != 0x80;
  return count;
}

static void check_string(struct vctx *v, const cr_schema *s, const json_t *x) {
  long long len =
      (long long)utf8_length(json_string_value(x), json_string_length(x));
  if (s->min_length >= 0 && len < s->min_length)
    report(v, x, "string shorter than %lld character%s", s->min_length,
           s->min_length == 1 ? "" : "s");
  if (s->max_length >= 0 && len > s->max_length)
    report(v, x, "string longer than %lld character%s", s->max_length,
           s->max_length == 1 ? "" : "s");
  if (s->regex != NULL &&
      regexec(s->regex, json_string_value(x), 0, NULL, 0) != 0)
    report(v, x, "does not match pattern \"%s\"", s->pattern);
}

static void check_number(struct vctx *v, const cr_schema *s, const json_t *x) {
  char bound[64];
  if (s->minimum != NULL && num_cmp(x, s->minimum) < 0) {
    dump_value(s->minimum, bound, sizeof bound);
    report(v, x, "must be >= %s", bound);
  }
  if (s->maximum != NULL && num_cmp(x, s->maximum) > 0) {
    dump_value(s->maximum, bound, sizeof bound);
    report(v, x, "must be <= %s", bound);
  }
}

static void check(struct vctx *v, const cr_schema *s, const json_t *x);

/* Checks x, found at key (or index when key is NULL) below the current
 * path, against s. */
static void check_child(struct vctx *v, const cr_schema *s, const char *key,
                        size_t index, const json_t *x) {
  if (s->kind == S_TRUE)
    return;
  size_t saved = v->path.len;
  int rc =
      key ? path_push_key(&v->path, key) : path_push_index(&v->path, index);
  if (rc != 0)
    v->oom = 1;
  else
    check(v, s, x);
  buf_truncate(&v->path, saved);
}

static const cr_schema *find_prop(const cr_schema *s, const char *key) {
  for (size_t i = 0; i < s->nprops; i++)
    if (strcmp(s->props[i].name, key) == 0)
      return s->props[i].schema;
  return NULL;
}

static void check_object(struct vctx *v, const cr_schema *s, const json_t *x) {
  for (size_t i = 0; i < s->nrequired; i++)
    if (json_object_get(x, s->required[i]) == NULL)
      report(v, x, "missing required property \"%s\"", s->required[i]);
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)x, key, val) {
    const cr_schema *sub = find_prop(s, key);
    if (sub != NULL) {
      check_child(v, sub, key, 0, val);
    } else if (s->additional != NULL && s->additional->kind == S_FALSE) {
      size_t saved = v->path.len;
      if (path_push_key(&v->path, key) != 0)
        v->oom = 1;
      else
        report(v, val, "property \"%s\" is not allowed", key);
      buf_truncate(&v->path, saved);
    } else if (s->additional != NULL) {
      check_child(v, s->additional, key, 0, val);
    }
  }
}

static void check_array(struct vctx *v, const cr_schema *s, const json_t *x) {
  long long n = (long long)json_array_size(x);
  if (s->min_items >= 0 && n < s->min_items)
    report(v, x, "array has fewer than %lld item%s", s->min_items,
           s->min_items == 1 ? "" : "s");
  if (s->max_items >= 0 && n > s->max_items)
    report(v, x, "array has more than %lld item%s", s->max_items,
           s->max_items == 1 ? "" : "s");
  for (size_t i = 0; i < json_array_size(x); i++) {
    const cr_schema *sub = i < s->ntuple ? s->tuple[i] : s->items;
    if (sub != NULL)
      check_child(v, sub, NULL, i, json_array_get(x, i));
  }
}

static void check(struct vctx *v, const cr_schema *s, const json_t *x) {
  if (s->kind == S_TRUE)
    return;
  if (s->kind == S_FALSE) {
    report(v, x, "no value is allowed here");
    return;
  }
  if (s->types != 0 && !type_matches(s->types, x))
    report_type(v, s->types, x);
  if (s->enum_values != NULL)
    check_enum(v, s, x);
  if (s->const_value != NULL)
    check_const(v, s, x);
  if (json_is_string(x))
    check_string(v, s, x);
  else if (json_is_number(x))
    check_number(v, s, x);
  else if (json_is_object(x))
    check_object(v, s, x);
  else if (json_is_array(x))
    check_array(v, s, x);
}

int cr_schema_validate(const cr_schema *s, const json_t *instance,
                       cr_schema_error_cb cb, void *ud) {
  if (s == NULL || instance == NULL)
    return CR_EINVAL;
  struct vctx v = {.cb = cb, .ud = ud};
  check(&v, s, instance);
  cr__free(v.path.p);
  if (v.oom)
    return CR_ENOMEM;
  return v.errors > 0 ? CR_ESCHEMA : 0;
}
