/* test_ctl_jtime.c: cr_ctl_jtime (control.h), the API's times, computed by
 * arithmetic: the same text as gmtime_r for every kind of date (leap days,
 * century years, the ends of months and days), null for unset times. */
#include "testutil.h"

#include "control/control.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void expect_like_gmtime(int64_t ms) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  char want[64];
  assert_non_null(gmtime_r(&s, &tm));
  snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, (int)(ms % 1000));
  json_t *j = cr_ctl_jtime(ms);
  if (!json_is_string(j) || strcmp(json_string_value(j), want) != 0)
    fail_msg("%" PRId64 ": got %s, want %s", ms,
             json_is_string(j) ? json_string_value(j) : "(not a string)", want);
  json_decref(j);
}

static void test_jtime_matches_gmtime(void **state) {
  (void)state;
  const int64_t fixed[] = {
      1,                /* the first millisecond */
      951782400000 - 1, /* 2000-02-28T23:59:59.999 */
      951782400000,     /* 2000-02-29 (century leap year) */
      4107542400000,    /* 2100-03-01 (century, not leap) */
      1709164800123,    /* 2024-02-29 */
      1735689599999,    /* 2024-12-31T23:59:59.999 */
      253402300799999,  /* 9999-12-31T23:59:59.999 */
  };
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
    expect_like_gmtime(fixed[i]);
  uint64_t x = 0x9e3779b97f4a7c15ULL; /* xorshift: 200,000 times */
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    expect_like_gmtime((int64_t)(x % 253402300799999ULL) + 1);
  }
}

static void test_jtime_unset_is_null(void **state) {
  (void)state;
  json_t *j = cr_ctl_jtime(0);
  assert_true(json_is_null(j));
  j = cr_ctl_jtime(-5);
  assert_true(json_is_null(j));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jtime_matches_gmtime),
      cmocka_unit_test(test_jtime_unset_is_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
