/* test_error.c: cr_strerror/cr_err_name cover every code, and the allocator
 * hook really routes allocations. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"

#include <string.h>

static void test_every_code_has_name_and_message(void **state) {
  (void)state;
  int seen = 0;
#define XX(name, code, msg)                                                    \
  assert_string_equal(cr_err_name(code), "CR_" #name);                         \
  assert_string_equal(cr_strerror(code), msg);                                 \
  assert_true((code) < 0);                                                     \
  seen++;
  CR_ERRNO_MAP(XX)
#undef XX
  assert_true(seen > 10);
  assert_string_equal(cr_strerror(0), "success");
  assert_string_equal(cr_strerror(-9999), "unknown error");
  assert_string_equal(cr_err_name(-9999), "CR_EUNKNOWN");
}

static void test_codes_are_unique(void **state) {
  (void)state;
  int codes[] = {
#define XX(name, code, msg) code,
      CR_ERRNO_MAP(XX)
#undef XX
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      assert_int_not_equal(codes[i], codes[j]);
}

static void test_allocator_fail_nth(void **state) {
  (void)state;
  cr_test_alloc_install();
  cr_test_alloc_fail_after(1);
  char *a = cr__strdup("first");
  char *b = cr__strdup("second");
  char *c = cr__strdup("third");
  assert_non_null(a);
  assert_null(b);
  assert_non_null(c);
  assert_true(cr_test_alloc_failed());
  char *d = cr__strndup("abcdef", 3);
  assert_string_equal(d, "abc");
  cr__free(d);
  cr__free(a);
  cr__free(c);
  cr_test_alloc_fail_after(-1);
  assert_int_equal(cr_replace_allocator(NULL, NULL, NULL, NULL), CR_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_code_has_name_and_message),
      cmocka_unit_test(test_codes_are_unique),
      cmocka_unit_test(test_allocator_fail_nth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
