/* test_jsonbuf.c: JSON text written directly: decimal integers (against
 * printf, extremes included), escapes (against jansson), UTF-8 checks,
 * raw text, an empty buffer, and allocation failures. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/jsonbuf.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_decimal(void **state) {
  (void)state;
  const int64_t v[] = {0,         1,         -1,           9,          10,
                       -10,       99,        100,          1700000000, -42,
                       INT64_MAX, INT64_MIN, INT64_MIN + 1};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char got[CR__DEC_MAX], want[32];
    snprintf(want, sizeof want, "%" PRId64, v[i]);
    assert_int_equal(cr__dec_i64(v[i], got), strlen(want));
    assert_string_equal(got, want);
  }
  unsigned seed = 7;
  for (int i = 0; i < 10000; i++) {
    uint64_t u = ((uint64_t)rand_r(&seed) << 33) ^
                 ((uint64_t)rand_r(&seed) << 2) ^ (uint64_t)rand_r(&seed);
    int64_t x;
    memcpy(&x, &u, sizeof x); /* any bit pattern, negative ones too */
    char got[CR__DEC_MAX], want[32];
    snprintf(want, sizeof want, "%" PRId64, x);
    cr__dec_i64(x, got);
    assert_string_equal(got, want);
  }
}

static void test_strings(void **state) {
  (void)state;
  const char *const s[] = {"",
                           "plain",
                           "q\"b\\s/",
                           "\b\f\n\r\t",
                           "\x01\x1f\x7f",
                           "\xc3\xa9\xe2\x82\xac",
                           "\xf0\x9f\x98\x80"};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    struct cr__jsonbuf b = {0};
    cr__jb_str(&b, s[i]);
    char *got = cr__jb_take(&b);
    json_t *js = json_string(s[i]);
    char *want = json_dumps(js, JSON_ENCODE_ANY);
    assert_string_equal(got, want);
    free(want);
    json_decref(js);
    cr__free(got);
  }
  const char *const bad[] = {"\x80",         "a\xc3",        "\xc0\xaf",
                             "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                             "\xf8"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct cr__jsonbuf b = {0};
    cr__jb_lit(&b, "[");
    cr__jb_str(&b, bad[i]);
    cr__jb_lit(&b, "]"); /* a no-op after the error */
    assert_int_equal(b.err, CR_EINVAL);
    assert_null(cr__jb_take(&b));
    assert_int_equal(b.err, CR_EINVAL);
  }
  struct cr__jsonbuf b = {0};
  cr__jb_str(&b, NULL);
  cr__jb_raw(&b, ",", 1);
  cr__jb_int(&b, -5);
  char *got = cr__jb_take(&b);
  assert_string_equal(got, "null,-5");
  cr__free(got);
  got = cr__jb_take(&b); /* nothing appended: "" */
  assert_string_equal(got, "");
  cr__free(got);
  cr__jb_lit(&b, "x");
  cr__jb_clear(&b);
  assert_null(b.p);
}

static void test_growth_and_alloc_failures(void **state) {
  (void)state;
  char big[5000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  cr_test_alloc_install();
  int ok = 0;
  for (long n = 0; n < 100 && !ok; n++) {
    struct cr__jsonbuf b = {0};
    cr_test_alloc_fail_after(n);
    cr__jb_str(&b, big);
    cr__jb_int(&b, 1);
    char *got = cr__jb_take(&b);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (got == NULL) {
      assert_true(failed);
      assert_int_equal(b.err, CR_ENOMEM);
      continue;
    }
    assert_int_equal(strlen(got), sizeof big - 1 + 3);
    assert_int_equal(got[0], '"');
    assert_string_equal(got + sizeof big, "\"1");
    cr__free(got);
    ok = !failed;
  }
  assert_true(ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decimal),
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_growth_and_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
