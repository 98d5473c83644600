/* test_yamljson.c: YAML -> JSON conversion: scalar typing, marks of values
 * and keys, duplicate keys, syntax error locations, aliases, refusals. */
#include "testutil.h"

#include "config/yamljson.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parsed {
  cr_marks *m;
  json_t *root;
  struct cr_yaml_error err;
  int rc;
};

static void parse(struct parsed *p, const char *text) {
  memset(p, 0, sizeof *p);
  assert_int_equal(cr_marks_new(&p->m), 0);
  p->rc = cr_yaml_parse_string(text, strlen(text), "t.yaml", p->m, &p->root,
                               &p->err);
}

static void done(struct parsed *p) {
  json_decref(p->root);
  cr_marks_free(p->m);
}

static void assert_mark(const struct cr_mark *mk, int line, int col) {
  assert_non_null(mk);
  assert_string_equal(mk->file, "t.yaml");
  assert_int_equal(mk->line, line);
  assert_int_equal(mk->column, col);
}

static void test_scalar_typing(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "n1: null\nn2: ~\nn3:\nn4: Null\n"
            "b1: true\nb2: False\nb3: TRUE\nyes: yes\n"
            "i1: 42\ni2: -7\ni3: 0o17\ni4: 0x1F\ni5: +3\n"
            "f1: 1.5\nf2: -2e3\nf3: .5\n"
            "s1: '42'\ns2: \"true\"\ns3: 1h\ns4: 1_000\ns5: !!str 12\n"
            "s6: |\n  block\n");
  assert_int_equal(p.rc, 0);
  json_t *r = p.root;
  assert_true(json_is_object(r));
  assert_true(json_is_null(json_object_get(r, "n1")));
  assert_true(json_is_null(json_object_get(r, "n2")));
  assert_true(json_is_null(json_object_get(r, "n3")));
  assert_true(json_is_null(json_object_get(r, "n4")));
  assert_true(json_is_true(json_object_get(r, "b1")));
  assert_true(json_is_false(json_object_get(r, "b2")));
  assert_true(json_is_true(json_object_get(r, "b3")));
  /* YAML 1.2: yes is a string. */
  assert_string_equal(json_string_value(json_object_get(r, "yes")), "yes");
  assert_int_equal(json_integer_value(json_object_get(r, "i1")), 42);
  assert_int_equal(json_integer_value(json_object_get(r, "i2")), -7);
  assert_int_equal(json_integer_value(json_object_get(r, "i3")), 15);
  assert_int_equal(json_integer_value(json_object_get(r, "i4")), 31);
  assert_int_equal(json_integer_value(json_object_get(r, "i5")), 3);
  assert_true(json_is_real(json_object_get(r, "f1")));
  assert_true(json_real_value(json_object_get(r, "f1")) == 1.5);
  assert_true(json_real_value(json_object_get(r, "f2")) == -2000.0);
  assert_true(json_real_value(json_object_get(r, "f3")) == 0.5);
  assert_string_equal(json_string_value(json_object_get(r, "s1")), "42");
  assert_string_equal(json_string_value(json_object_get(r, "s2")), "true");
  assert_string_equal(json_string_value(json_object_get(r, "s3")), "1h");
  assert_string_equal(json_string_value(json_object_get(r, "s4")), "1_000");
  assert_string_equal(json_string_value(json_object_get(r, "s5")), "12");
  assert_string_equal(json_string_value(json_object_get(r, "s6")), "block\n");
  done(&p);
}

/* Dropping the positions forgets every node but keeps the file names
 * (objects keep pointers to them), and the table still takes new marks. */
static void test_marks_drop_positions(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "host:\n  listen: 127.0.0.1:1\nworks: [{id: a}]\n");
  assert_int_equal(p.rc, 0);
  json_t *host = json_object_get(p.root, "host");
  const struct cr_mark *mk = cr_marks_get(p.m, host);
  assert_mark(mk, 2, 3);
  const char *file = mk->file;
  cr_marks_drop_positions(p.m);
  assert_null(cr_marks_get(p.m, host));
  assert_null(cr_marks_member(p.m, p.root, "host"));
  assert_null(cr_marks_key(p.m, host, "listen"));
  assert_null(cr_marks_item(p.m, json_object_get(p.root, "works"), 0));
  assert_ptr_equal(cr_marks_file(p.m, "t.yaml"), file); /* still interned */
  struct cr_mark again = {file, 7, 9};
  assert_int_equal(cr_marks_set(p.m, host, NULL, NULL, 0, &again, NULL), 0);
  assert_mark(cr_marks_get(p.m, host), 7, 9);
  done(&p);
}

static void test_marks_values_and_keys(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "host:\n"
            "  listen: 127.0.0.1:1\n"
            "  flag:   true\n"
            "works:\n"
            "  - id: a\n"
            "    n: [1, null, \"x\"]\n"
            "  - {id: b}\n");
  assert_int_equal(p.rc, 0);
  json_t *host = json_object_get(p.root, "host");
  assert_mark(cr_marks_key(p.m, p.root, "host"), 1, 1);
  assert_mark(cr_marks_get(p.m, host), 2, 3);
  assert_mark(cr_marks_member(p.m, p.root, "host"), 2, 3);
  assert_mark(cr_marks_key(p.m, host, "listen"), 2, 3);
  assert_mark(cr_marks_get(p.m, json_object_get(host, "listen")), 2, 11);
  /* Singletons: found through their container. */
  assert_null(cr_marks_get(p.m, json_object_get(host, "flag")));
  assert_mark(cr_marks_member(p.m, host, "flag"), 3, 11);
  assert_mark(cr_marks_key(p.m, host, "flag"), 3, 3);
  json_t *works = json_object_get(p.root, "works");
  assert_mark(cr_marks_get(p.m, works), 5, 3);
  json_t *w0 = json_array_get(works, 0);
  assert_mark(cr_marks_get(p.m, w0), 5, 5);
  assert_mark(cr_marks_item(p.m, works, 0), 5, 5);
  json_t *n = json_object_get(w0, "n");
  assert_mark(cr_marks_get(p.m, n), 6, 8);
  assert_mark(cr_marks_item(p.m, n, 0), 6, 9);
  assert_mark(cr_marks_item(p.m, n, 1), 6, 12);
  assert_mark(cr_marks_get(p.m, json_array_get(n, 2)), 6, 18);
  json_t *w1 = json_array_get(works, 1);
  assert_mark(cr_marks_get(p.m, w1), 7, 5);
  assert_mark(cr_marks_key(p.m, w1, "id"), 7, 6);
  assert_mark(cr_marks_member(p.m, w1, "id"), 7, 10);
  assert_null(cr_marks_key(p.m, w1, "nope"));
  assert_null(cr_marks_item(p.m, n, 3));
  done(&p);
}

static void test_duplicate_key(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_null(p.root);
  assert_int_equal(p.err.line, 5);
  assert_int_equal(p.err.column, 3);
  assert_string_equal(p.err.message, "duplicate key 'x' (first at line 3)");
  char buf[256];
  cr_yaml_error_format(&p.err, "t.yaml", buf, sizeof buf);
  assert_string_equal(buf, "t.yaml:5:3: duplicate key 'x' (first at line 3)");
  done(&p);
}

static void test_syntax_error_location(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "a: 1\nb: [1, 2\nc: 3\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_int_equal(p.err.line, 3);
  assert_non_null(strstr(p.err.message, "(while parsing a flow sequence)"));
  done(&p);

  parse(&p, "a: 1\n  b: 2\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_int_equal(p.err.line, 2);
  assert_int_equal(p.err.column, 4);
  assert_string_equal(p.err.message,
                      "mapping values are not allowed in this context");
  char buf[256];
  cr_yaml_error_format(&p.err, "t.yaml", buf, sizeof buf);
  assert_string_equal(
      buf, "t.yaml:2:4: mapping values are not allowed in this context");
  done(&p);

  parse(&p, "a: \"unterminated\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_non_null(strstr(p.err.message, "while scanning a quoted scalar"));
  assert_int_equal(p.err.line, 2);
  done(&p);
}

static void test_aliases(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "base: &b\n  x: 1\n  on: true\nuse: *b\nlist: [*b, &s str, *s]\n");
  assert_int_equal(p.rc, 0);
  json_t *base = json_object_get(p.root, "base");
  json_t *use = json_object_get(p.root, "use");
  assert_true(json_equal(base, use));
  assert_ptr_not_equal(base, use);
  /* The copy points at the alias; its members at the anchor's members. */
  assert_mark(cr_marks_get(p.m, use), 4, 6);
  assert_mark(cr_marks_member(p.m, use, "x"), 2, 6);
  assert_mark(cr_marks_member(p.m, use, "on"), 3, 7);
  json_t *list = json_object_get(p.root, "list");
  assert_int_equal(json_array_size(list), 3);
  assert_string_equal(json_string_value(json_array_get(list, 2)), "str");
  done(&p);

  parse(&p, "a: *nope\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_string_equal(p.err.message, "unknown alias '*nope'");
  assert_int_equal(p.err.line, 1);
  assert_int_equal(p.err.column, 4);
  done(&p);

  parse(&p, "a: &r\n  b: *r\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_string_equal(p.err.message, "recursive alias '*r'");
  done(&p);
}

static void test_alias_bomb_refused(void **state) {
  (void)state;
  /* Each level multiplies by 10: 10^7 nodes if expanded. */
  const char *text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
  struct parsed p;
  parse(&p, text);
  assert_int_equal(p.rc, CR_EPARSE);
  assert_non_null(strstr(p.err.message, "document too large"));
  done(&p);
}

static void test_refusals(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "a: 1\n---\nb: 2\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_int_equal(p.err.line, 2);
  assert_non_null(strstr(p.err.message, "multiple YAML documents"));
  done(&p);

  parse(&p, "? [a, b]\n: 1\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_string_equal(p.err.message, "complex mapping keys are not supported");
  done(&p);

  parse(&p, "x: .inf\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_int_equal(p.err.column, 4);
  done(&p);

  parse(&p, "x: 99999999999999999999\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_string_equal(p.err.message, "integer out of range");
  done(&p);

  parse(&p, "x: !secret abc\n");
  assert_int_equal(p.rc, CR_EPARSE);
  assert_string_equal(p.err.message, "unsupported tag '!secret'");
  done(&p);
}

static void test_empty_and_scalar_roots(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "");
  assert_int_equal(p.rc, 0);
  assert_true(json_is_null(p.root));
  done(&p);
  parse(&p, "# only a comment\n");
  assert_int_equal(p.rc, 0);
  assert_true(json_is_null(p.root));
  done(&p);
  parse(&p, "--- [1, 2]\n");
  assert_int_equal(p.rc, 0);
  assert_int_equal(json_array_size(p.root), 2);
  done(&p);
}

static void test_parse_file(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("yamljson");
  char *path = cr_test_write_file(dir, "a.yaml", "k: v\n");
  cr_marks *m;
  json_t *root;
  struct cr_yaml_error err;
  assert_int_equal(cr_marks_new(&m), 0);
  assert_int_equal(cr_yaml_parse_file(path, m, &root, &err), 0);
  const struct cr_mark *mk = cr_marks_member(m, root, "k");
  assert_non_null(mk);
  assert_string_equal(mk->file, path);
  json_decref(root);

  char missing[4096];
  snprintf(missing, sizeof missing, "%s/missing.yaml", dir);
  assert_int_equal(cr_yaml_parse_file(missing, m, &root, &err), CR_ENOENT);
  assert_null(root);
  assert_non_null(strstr(err.message, "No such file or directory"));
  assert_int_equal(cr_yaml_parse_file(dir, m, &root, &err), CR_EIO);
  assert_non_null(strstr(err.message, "Is a directory"));
  cr_marks_free(m);
  free(path);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_copy_tree(void **state) {
  (void)state;
  struct parsed p;
  parse(&p, "a:\n  b: [1, true]\n");
  assert_int_equal(p.rc, 0);
  json_t *a = json_object_get(p.root, "a");
  json_t *copy = json_deep_copy(a);
  assert_int_equal(cr_marks_copy_tree(p.m, a, copy), 0);
  assert_mark(cr_marks_get(p.m, copy), 2, 3);
  json_t *b = json_object_get(copy, "b");
  assert_mark(cr_marks_get(p.m, b), 2, 6);
  assert_mark(cr_marks_item(p.m, b, 1), 2, 10);
  json_decref(copy);
  done(&p);
}

static void test_many_nodes_rehash(void **state) {
  (void)state;
  size_t n = 5000, cap = n * 16 + 16, len = 0;
  char *text = malloc(cap);
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(text + len, cap - len, "k%zu: %zu\n", i, i);
  struct parsed p;
  parse(&p, text);
  assert_int_equal(p.rc, 0);
  for (size_t i = 0; i < n; i += 499) {
    char k[32];
    snprintf(k, sizeof k, "k%zu", i);
    assert_mark(cr_marks_member(p.m, p.root, k), (int)i + 1,
                (int)strlen(k) + 3);
  }
  done(&p);
  free(text);
}

/* n times a then n times b, as a new string (free()). */
static char *repeat2(const char *a, size_t n, const char *mid, const char *b) {
  size_t la = strlen(a), lb = strlen(b), lm = strlen(mid);
  char *s = malloc(n * (la + lb) + lm + 1), *p = s;
  for (size_t i = 0; i < n; i++, p += la)
    memcpy(p, a, la);
  memcpy(p, mid, lm);
  p += lm;
  for (size_t i = 0; i < n; i++, p += lb)
    memcpy(p, b, lb);
  *p = '\0';
  return s;
}

static void expect_too_deep(const char *text, int line, int col) {
  struct parsed p;
  parse(&p, text);
  assert_int_equal(p.rc, CR_ELIMIT);
  assert_null(p.root);
  assert_int_equal(p.err.line, line);
  assert_int_equal(p.err.column, col);
  assert_string_equal(p.err.message,
                      "lists and mappings nested deeper than 64 levels, the "
                      "limit for one document");
  done(&p);
}

static void test_depth_limit_flow(void **state) {
  (void)state;
  char *text = repeat2("[", CR_YAML_MAX_DEPTH, "", "]");
  struct parsed p;
  parse(&p, text);
  assert_int_equal(p.rc, 0);
  json_t *v = p.root;
  for (int i = 1; i < CR_YAML_MAX_DEPTH; i++)
    v = json_array_get(v, 0);
  assert_true(json_is_array(v));
  assert_int_equal(json_array_size(v), 0);
  done(&p);
  free(text);
  /* One more: refused at the 65th '['. */
  text = repeat2("[", CR_YAML_MAX_DEPTH + 1, "", "]");
  expect_too_deep(text, 1, CR_YAML_MAX_DEPTH + 1);
  free(text);
  /* Mappings count too. */
  text = repeat2("{a: ", CR_YAML_MAX_DEPTH + 1, "1", "}");
  expect_too_deep(text, 1, 4 * CR_YAML_MAX_DEPTH + 1);
  free(text);
}

/* k0:\n  k1:\n    k2: ... n keys, each one level deeper. */
static char *block_keys(int n) {
  char *s = malloc((size_t)n * (2 * (size_t)n + 16) + 1), *p = s;
  for (int i = 0; i < n; i++)
    p += sprintf(p, "%*sk%d:\n", 2 * i, "", i);
  return s;
}

static void test_depth_limit_block(void **state) {
  (void)state;
  char *text = block_keys(CR_YAML_MAX_DEPTH);
  struct parsed p;
  parse(&p, text);
  assert_int_equal(p.rc, 0);
  done(&p);
  free(text);
  /* The 65th key is in the 65th mapping: line 65, column 129. */
  text = block_keys(CR_YAML_MAX_DEPTH + 1);
  expect_too_deep(text, CR_YAML_MAX_DEPTH + 1, 2 * CR_YAML_MAX_DEPTH + 1);
  free(text);
  /* Block sequences on one line. */
  char *seq = repeat2("- ", CR_YAML_MAX_DEPTH + 1, "x", "");
  expect_too_deep(seq, 1, 2 * CR_YAML_MAX_DEPTH + 1);
  free(seq);
}

static void test_depth_limit_alias(void **state) {
  (void)state;
  /* An anchor 61 levels high used in the 3rd level: 64, allowed. */
  char *deep = repeat2("[", 61, "", "]");
  char text[512];
  snprintf(text, sizeof text, "a: &x %s\nb: {c: {d: *x}}\n", deep);
  struct parsed p;
  parse(&p, text);
  assert_int_equal(p.rc, 0);
  done(&p);
  /* One level more: refused at the alias. */
  snprintf(text, sizeof text, "a: &x %s\nb: {c: {d: {e: *x}}}\n", deep);
  expect_too_deep(text, 2, 16);
  free(deep);
}

static void test_read_file_limit(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("yamljson");
  char *path = cr_test_write_file(dir, "a.yaml", "k: 123456\n"); /* 10 bytes */
  char *text;
  size_t len;
  struct cr_yaml_error err;
  assert_int_equal(cr_yaml_read_file(path, 10, &text, &len, &err), 0);
  assert_int_equal(len, 10);
  assert_memory_equal(text, "k: 123456\n", 10);
  cr__free(text);
  assert_int_equal(cr_yaml_read_file(path, 9, &text, &len, &err), CR_ELIMIT);
  assert_null(text);
  assert_int_equal(err.line, 1);
  assert_int_equal(err.column, 1);
  assert_string_equal(err.message,
                      "file is larger than 9 bytes, the limit for one file");
  /* A file whose size stat does not tell (/proc): read until the limit. */
  assert_int_equal(
      cr_yaml_read_file("/proc/self/maps", 1u << 20, &text, &len, &err), 0);
  assert_true(len > 0);
  assert_non_null(memchr(text, '\n', len));
  cr__free(text);
  assert_int_equal(cr_yaml_read_file("/proc/self/maps", 100, &text, &len, &err),
                   CR_ELIMIT);
  assert_string_equal(err.message,
                      "file is larger than 100 bytes, the limit for one file");
  free(path);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_alloc_failures(void **state) {
  (void)state;
  const char *text = "a: &x {b: [1, 2, {c: d}]}\nc: *x\ne: [true, null]\n";
  cr_test_alloc_install();
  for (long n = 0;; n++) {
    cr_test_alloc_fail_after(n);
    cr_marks *m = NULL;
    json_t *root = NULL;
    struct cr_yaml_error err;
    int rc = cr_marks_new(&m);
    if (rc == 0)
      rc = cr_yaml_parse_string(text, strlen(text), "t.yaml", m, &root, &err);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (failed) {
      assert_int_equal(rc, CR_ENOMEM);
      assert_null(root);
    } else {
      assert_int_equal(rc, 0);
      assert_non_null(cr_marks_member(m, json_object_get(root, "c"), "b"));
    }
    json_decref(root);
    cr_marks_free(m);
    if (!failed)
      break;
  }
}

/* /proc/self/maps has no size in stat: the buffer grows. */
static void test_read_file_alloc_failures(void **state) {
  (void)state;
  cr_test_alloc_install();
  for (long n = 0;; n++) {
    char *text = NULL;
    size_t len = 0;
    struct cr_yaml_error err;
    cr_test_alloc_fail_after(n);
    int rc = cr_yaml_read_file("/proc/self/maps", 1u << 20, &text, &len, &err);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    assert_int_equal(rc, failed ? CR_ENOMEM : 0);
    assert_true(failed ? text == NULL : len > 0);
    cr__free(text);
    if (!failed)
      break;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scalar_typing),
      cmocka_unit_test(test_marks_values_and_keys),
      cmocka_unit_test(test_marks_drop_positions),
      cmocka_unit_test(test_duplicate_key),
      cmocka_unit_test(test_syntax_error_location),
      cmocka_unit_test(test_aliases),
      cmocka_unit_test(test_alias_bomb_refused),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_empty_and_scalar_roots),
      cmocka_unit_test(test_parse_file),
      cmocka_unit_test(test_copy_tree),
      cmocka_unit_test(test_many_nodes_rehash),
      cmocka_unit_test(test_depth_limit_flow),
      cmocka_unit_test(test_depth_limit_block),
      cmocka_unit_test(test_depth_limit_alias),
      cmocka_unit_test(test_read_file_limit),
      cmocka_unit_test(test_alloc_failures),
      cmocka_unit_test(test_read_file_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
