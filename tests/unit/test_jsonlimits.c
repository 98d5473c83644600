/* test_jsonlimits.c: JSON text under limits: good inputs, each refusal with
 * its code and position, no input echoed in messages, allocation failures
 * (jansson routed through the failing allocator). */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/jsonlimits.h"

#include <stdlib.h>
#include <string.h>

struct res {
  int rc;
  json_t *v;
  struct cr_json_error err;
};

static void run(struct res *r, const char *text, size_t len, size_t max_size,
                int max_depth) {
  memset(r, 0, sizeof *r);
  r->rc = cr_json_parse_limited(text, len, max_size, max_depth, &r->v, &r->err);
  if (r->rc != 0)
    assert_null(r->v);
  else
    assert_non_null(r->v);
}

/* Asserts a refusal with rc, code and position. */
static void refused(const char *text, size_t len, size_t max_size,
                    int max_depth, int rc, const char *code, int line,
                    int column, size_t offset) {
  struct res r;
  run(&r, text, len, max_size, max_depth);
  if (r.rc != rc || strcmp(r.err.code, code) != 0)
    fail_msg("got %d %s (%s), want %d %s", r.rc, r.err.code, r.err.message, rc,
             code);
  assert_int_equal(r.err.line, line);
  assert_int_equal(r.err.column, column);
  assert_int_equal(r.err.offset, offset);
}

/* n '[' then n ']' (caller frees). */
static char *nested(size_t n) {
  char *s = malloc(2 * n + 1);
  memset(s, '[', n);
  memset(s + n, ']', n);
  s[2 * n] = '\0';
  return s;
}

static void test_good_inputs(void **state) {
  (void)state;
  struct res r;
  const char *obj = "{\"a\": [1, 2.5, \"x\"], \"b\": {\"c\": null}}";
  run(&r, obj, strlen(obj), 0, 0);
  assert_int_equal(r.rc, 0);
  assert_string_equal(r.err.code, "");
  assert_int_equal(
      json_integer_value(json_array_get(json_object_get(r.v, "a"), 0)), 1);
  json_decref(r.v);
  /* Any value; the text need not be NUL-terminated. */
  run(&r, "42, trailing", 2, 0, 0);
  assert_int_equal(r.rc, 0);
  assert_int_equal(json_integer_value(r.v), 42);
  json_decref(r.v);
  /* Brackets and escaped quotes inside strings do not count. */
  const char *s = "[\"[[[{{\\\"[[[\\\\\", {\"k\\\"[\": [1]}]";
  run(&r, s, strlen(s), 0, 3);
  assert_int_equal(r.rc, 0);
  assert_string_equal(json_string_value(json_array_get(r.v, 0)),
                      "[[[{{\"[[[\\");
  json_decref(r.v);
  /* Exactly the default depth and exactly the size are allowed. */
  char *deep = nested(CR_JSON_MAX_DEPTH);
  run(&r, deep, strlen(deep), strlen(deep), 0);
  assert_int_equal(r.rc, 0);
  json_decref(r.v);
  free(deep);
  /* UTF-8 is kept. */
  const char *u = "{\"name\": \"caf\xc3\xa9 \xe2\x82\xac\"}";
  run(&r, u, strlen(u), 0, 0);
  assert_int_equal(r.rc, 0);
  assert_string_equal(json_string_value(json_object_get(r.v, "name")),
                      "caf\xc3\xa9 \xe2\x82\xac");
  json_decref(r.v);
}

static void test_too_large(void **state) {
  (void)state;
  const char *t = "[1,2,3,4,5]"; /* 11 bytes */
  refused(t, strlen(t), 10, 0, CR_ELIMIT, "too_large", 0, 0, 10);
  struct res r;
  run(&r, t, strlen(t), 10, 0);
  assert_string_equal(r.err.message, "JSON text larger than 10 bytes");
  /* The default limit. */
  size_t n = CR_JSON_MAX_SIZE + 1;
  char *big = malloc(n);
  memset(big, ' ', n);
  big[0] = '1';
  refused(big, n, 0, 0, CR_ELIMIT, "too_large", 0, 0, CR_JSON_MAX_SIZE);
  free(big);
}

static void test_too_deep(void **state) {
  (void)state;
  char *deep = nested(CR_JSON_MAX_DEPTH + 1);
  refused(deep, strlen(deep), 0, 0, CR_ELIMIT, "too_deep", 1,
          CR_JSON_MAX_DEPTH + 1, CR_JSON_MAX_DEPTH);
  struct res r;
  run(&r, deep, strlen(deep), 0, 0);
  assert_string_equal(r.err.message,
                      "JSON nested deeper than 64 levels at line 1, column 65 "
                      "(byte 64)");
  free(deep);
  /* Columns count characters, lines restart them; objects count. */
  const char *t = "{\"a\":\n [\"\xc3\xa9\xc3\xa9\", {\"b\": {}}]}";
  refused(t, strlen(t), 0, 3, CR_ELIMIT, "too_deep", 2, 15, 22);
  /* 40,000 levels: refused by the scan, jansson never sees them. */
  deep = nested(40000);
  refused(deep, strlen(deep), 0, 0, CR_ELIMIT, "too_deep", 1, 65, 64);
  /* Beyond jansson's own limit (2048): still too_deep. */
  refused(deep, strlen(deep), 0, 50000, CR_ELIMIT, "too_deep", 1, 2049, 2048);
  free(deep);
}

static void test_nul_bytes(void **state) {
  (void)state;
  const char t[] = "{\"a\":\n \"x\0y\"}";
  refused(t, sizeof t - 1, 0, 0, CR_EPARSE, "nul_byte", 2, 4, 9);
  const char *esc = "[\"x\\u0000y\"]";
  struct res r;
  run(&r, esc, strlen(esc), 0, 0);
  assert_int_equal(r.rc, CR_EPARSE);
  assert_string_equal(r.err.code, "nul_byte");
  assert_int_equal(r.err.line, 1);
}

static void test_invalid_utf8(void **state) {
  (void)state;
  /* At the 0xff byte, the 9th character. */
  const char *t = "{\"a\": \"x\xff\"}";
  refused(t, strlen(t), 0, 0, CR_EPARSE, "invalid_utf8", 1, 9, 8);
  /* An overlong encoding of '/'. */
  refused("\"\xc0\xaf\"", 4, 0, 0, CR_EPARSE, "invalid_utf8", 1, 2, 1);
}

static void test_duplicate_key(void **state) {
  (void)state;
  /* Found once the second key is read: its closing quote. */
  const char *t = "{\"id\": 1,\n \"id\": 2}";
  refused(t, strlen(t), 0, 0, CR_EPARSE, "duplicate_key", 2, 5, 14);
  struct res r;
  run(&r, t, strlen(t), 0, 0);
  assert_string_equal(r.err.message,
                      "duplicate object key at line 2, column 5 (byte 14)");
}

static void test_malformed(void **state) {
  (void)state;
  struct res r;
  const char *cases[] = {"",        "{",   "{\"a\" 1}",  "[1,]",
                         "[1] [2]", "tru", "[1e999999]", "{'a': 1}"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    run(&r, cases[i], strlen(cases[i]), 0, 0);
    if (r.rc != CR_EPARSE || strcmp(r.err.code, "malformed_json") != 0)
      fail_msg("'%s': got %d %s", cases[i], r.rc, r.err.code);
    assert_true(r.err.line >= 1 && r.err.column >= 1);
  }
  /* Located: the unexpected '1' is the 6th byte of line 2. */
  run(&r, "{\n\"a\" 1}", 8, 0, 0);
  assert_int_equal(r.err.line, 2);
  assert_int_equal(r.err.column, 5);
  assert_int_equal(r.err.offset, 6);
}

/* A body may hold secrets: jansson's "near '...'" context is dropped. */
static void test_no_input_in_messages(void **state) {
  (void)state;
  const char *secret = "SG.tok3n";
  const char *cases[] = {"{\"k\": \"SG.tok3n", "{\"k\": SG.tok3n}",
                         "{\"SG.tok3n\": 1, \"SG.tok3n\": 2}"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct res r;
    run(&r, cases[i], strlen(cases[i]), 0, 0);
    assert_int_equal(r.rc, CR_EPARSE);
    if (strstr(r.err.message, secret) != NULL)
      fail_msg("input echoed: %s", r.err.message);
  }
}

static void test_bad_arguments(void **state) {
  (void)state;
  json_t *v;
  struct cr_json_error err;
  assert_int_equal(cr_json_parse_limited(NULL, 1, 0, 0, &v, &err), CR_EINVAL);
  assert_int_equal(cr_json_parse_limited("1", 1, 0, 0, NULL, &err), CR_EINVAL);
  assert_int_equal(cr_json_parse_limited("1", 1, 0, 0, &v, NULL), CR_EINVAL);
  /* NULL with 0 bytes is an empty text. */
  assert_int_equal(cr_json_parse_limited(NULL, 0, 0, 0, &v, &err), CR_EPARSE);
  assert_string_equal(err.code, "malformed_json");
}

/* jansson through the failing allocator: every failure is a refusal
 * without leaks; no_memory, except where jansson itself reports a failed
 * copy of a string token as a syntax error. */
static void test_alloc_failures(void **state) {
  (void)state;
  const char *t = "{\"a\": [1, \"two\", {\"b\": null}], \"c\": \"d\"}";
  int ok = 0, nomem = 0;
  for (long n = 0; n < 1000 && !ok; n++) {
    struct res r;
    cr_test_alloc_fail_after(n);
    run(&r, t, strlen(t), 0, 0);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (failed && r.rc == CR_ENOMEM) {
      assert_string_equal(r.err.code, "no_memory");
      assert_string_equal(r.err.message, "out of memory");
      nomem++;
    } else if (failed) {
      assert_int_equal(r.rc, CR_EPARSE);
      assert_string_equal(r.err.code, "malformed_json");
      assert_true(r.err.line == 1 && r.err.message[0] != ' ');
    } else {
      assert_int_equal(r.rc, 0);
      assert_string_equal(json_string_value(json_object_get(r.v, "c")), "d");
      json_decref(r.v);
    }
    ok = !failed;
  }
  assert_true(ok);
  assert_true(nomem > 0);
}

int main(void) {
  cr_test_alloc_install();
  /* Route jansson through cr__malloc so the failing allocator reaches it. */
  json_set_alloc_funcs(cr__malloc, cr__free);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_inputs),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_too_deep),
      cmocka_unit_test(test_nul_bytes),
      cmocka_unit_test(test_invalid_utf8),
      cmocka_unit_test(test_duplicate_key),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_no_input_in_messages),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
