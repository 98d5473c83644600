/* test_schedule.c: "every" and cron parsing with exact error messages,
 * descriptions, next-run computation (anchors, month and year ends, leap
 * days, the Vixie day rule, steps, names, macros), the DST policy in
 * Europe/Paris, America/New_York and Australia/Lord_Howe, catch-up, no-match
 * expressions, a brute-force minute-by-minute oracle around DST changes, and
 * allocation failures. */
#include "testutil.h"

#include "util/error.h"
#include "exec/schedule.h"
#include "exec/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

/* UTC milliseconds of a civil UTC time (timegm: independent of the code). */
static int64_t ms(int y, int mo, int d, int h, int mi) {
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return (int64_t)timegm(&tm) * 1000;
}

static void require_tzdata(void) {
  if (access("/usr/share/zoneinfo/Europe/Paris", R_OK) != 0)
    fail_msg("tzdata is missing: /usr/share/zoneinfo/Europe/Paris not "
             "found; install the Debian package tzdata (scripts/deps.sh)");
}

static cr_schedule *cron(const char *expr, const char *tz) {
  char err[256] = "";
  cr_schedule *s = NULL;
  int rc = cr_schedule_parse_cron(expr, tz, &s, err, sizeof err);
  if (rc != 0)
    fail_msg("parse_cron(%s, %s): %s: %s", expr, tz ? tz : "NULL",
             cr_err_name(rc), err);
  return s;
}

static cr_schedule *every(const char *text) {
  char err[256] = "";
  cr_schedule *s = NULL;
  int rc = cr_schedule_parse_every(text, &s, err, sizeof err);
  if (rc != 0)
    fail_msg("parse_every(%s): %s: %s", text, cr_err_name(rc), err);
  return s;
}

static int64_t next_of(const cr_schedule *s, int64_t after) {
  int64_t n = 0;
  int rc = cr_schedule_next(s, 0, after, &n);
  if (rc != 0)
    fail_msg("cr_schedule_next after %lld: %s", (long long)after,
             cr_err_name(rc));
  return n;
}

static void fmt_ms(int64_t t, char *buf, size_t len) {
  time_t tt = (time_t)(t / 1000);
  struct tm tm;
  gmtime_r(&tt, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)(t % 1000));
}

/* Asserts the runs after `after` are exactly want[0..n). */
static void assert_runs(const cr_schedule *s, int64_t after,
                        const int64_t *want, size_t n) {
  int64_t t = after;
  for (size_t i = 0; i < n; i++) {
    int64_t got = next_of(s, t);
    if (got != want[i]) {
      char g[80], w[80], a[80];
      fmt_ms(got, g, sizeof g);
      fmt_ms(want[i], w, sizeof w);
      fmt_ms(t, a, sizeof a);
      fail_msg("run %zu after %s: got %s, want %s", i, a, g, w);
    }
    t = got;
  }
}

/* ---- every ------------------------------------------------------------- */

static void test_every_parse(void **state) {
  (void)state;
  static const struct {
    const char *in;
    int64_t secs;
    const char *desc;
  } ok[] = {
      {"30s", 30, "every 30s"},
      {"15m", 900, "every 15m"},
      {"1h", 3600, "every 1h"},
      {"1h30m", 5400, "every 1h30m"},
      {"90m", 5400, "every 1h30m"},
      {"2d", 172800, "every 2d"},
      {"1d2h3m4s", 93784, "every 1d2h3m4s"},
      {"366d", 366 * 86400, "every 366d"},
      {"0h1s", 1, "every 1s"},
      {"3600s", 3600, "every 1h"},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    cr_schedule *s = every(ok[i].in);
    char d[64];
    assert_int_equal(cr_schedule_describe(s, d, sizeof d), 0);
    assert_string_equal(d, ok[i].desc);
    /* Anchored at 0: the first run after 0 is one interval later. */
    assert_int_equal(next_of(s, 0), ok[i].secs * 1000);
    cr_schedule_free(s);
  }
}

static void test_every_errors(void **state) {
  (void)state;
  static const struct {
    const char *in, *msg;
  } bad[] = {
      {"1x", "bad duration \"1x\": unknown unit 'x' (use s, m, h, d)"},
      {"", "bad duration \"\": empty"},
      {"10", "bad duration \"10\": missing unit after 10 (use s, m, h, d)"},
      {"h", "bad duration \"h\": expected a number at 'h'"},
      {"1h 30m", "bad duration \"1h 30m\": expected a number at ' '"},
      {"-5m", "bad duration \"-5m\": expected a number at '-'"},
      {"1H", "bad duration \"1H\": unknown unit 'H' (use s, m, h, d)"},
      {"0s", "bad duration \"0s\": must be greater than 0"},
      {"0d0h", "bad duration \"0d0h\": must be greater than 0"},
      {"367d", "bad duration \"367d\": longer than 366d"},
      {"366d1s", "bad duration \"366d1s\": longer than 366d"},
      {"99999999999999999999s",
       "bad duration \"99999999999999999999s\": longer than 366d"},
      {"30m1h", "bad duration \"30m1h\": unit 'h' repeated or out of order "
                "(write d, h, m, s in that order)"},
      {"1h1h", "bad duration \"1h1h\": unit 'h' repeated or out of order "
               "(write d, h, m, s in that order)"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[256] = "";
    cr_schedule *s = (cr_schedule *)err;
    assert_int_equal(cr_schedule_parse_every(bad[i].in, &s, err, sizeof err),
                     CR_EINVAL);
    assert_null(s);
    assert_string_equal(err, bad[i].msg);
  }
  cr_schedule *s;
  assert_int_equal(cr_schedule_parse_every("1x", &s, NULL, 0), CR_EINVAL);
  assert_int_equal(cr_schedule_parse_every(NULL, &s, NULL, 0), CR_EINVAL);
}

static void test_every_anchor(void **state) {
  (void)state;
  cr_schedule *s = every("1h");
  int64_t anchor = ms(2026, 5, 1, 10, 17) + 123, n;
  struct {
    int64_t after, want;
  } cases[] = {
      {anchor, anchor + HOUR_MS},
      {anchor - 1, anchor},
      {anchor + HOUR_MS - 1, anchor + HOUR_MS},
      {anchor + HOUR_MS, anchor + 2 * HOUR_MS},
      {anchor + 5 * HOUR_MS + 1, anchor + 6 * HOUR_MS},
      {anchor - 2 * HOUR_MS - 5, anchor - 2 * HOUR_MS},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(cr_schedule_next(s, anchor, cases[i].after, &n), 0);
    assert_int_equal(n, cases[i].want);
  }
  /* Intervals are UTC: across a DST change still exactly 1h apart. */
  int64_t t = ms(2026, 3, 29, 0, 0);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(cr_schedule_next(s, anchor, t, &n), 0);
    assert_true(n > t && n - t <= HOUR_MS);
    assert_int_equal((n - anchor) % HOUR_MS, 0);
    t = n;
  }
  assert_int_equal(cr_schedule_next(s, INT64_MIN, 0, &n), CR_ERANGE);
  assert_int_equal(cr_schedule_next(NULL, 0, 0, &n), CR_EINVAL);
  cr_schedule_free(s);
}

/* ---- cron parsing ------------------------------------------------------ */

static void test_cron_errors(void **state) {
  (void)state;
  require_tzdata();
  static const struct {
    const char *expr, *tz;
    int rc;
    const char *msg;
  } bad[] = {
      {"0 24 * * *", NULL, CR_EINVAL,
       "cron field 2 (hour): 24 is out of range 0-23"},
      {"0 0 * jnu *", NULL, CR_EINVAL,
       "cron field 4 (month): unknown month name \"jnu\""},
      {"0 0 * *", NULL, CR_EINVAL, "expected 5 fields, got 4"},
      {"0 0 * * * *", NULL, CR_EINVAL, "expected 5 fields, got 6"},
      {"", NULL, CR_EINVAL, "expected 5 fields, got 0"},
      {"60 * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): 60 is out of range 0-59"},
      {"* * 0 * *", NULL, CR_EINVAL,
       "cron field 3 (day-of-month): 0 is out of range 1-31"},
      {"* * 32 * *", NULL, CR_EINVAL,
       "cron field 3 (day-of-month): 32 is out of range 1-31"},
      {"* * * 13 *", NULL, CR_EINVAL,
       "cron field 4 (month): 13 is out of range 1-12"},
      {"* * * * 8", NULL, CR_EINVAL,
       "cron field 5 (day-of-week): 8 is out of range 0-7"},
      {"* * * * mun", NULL, CR_EINVAL,
       "cron field 5 (day-of-week): unknown weekday name \"mun\""},
      {"* * * * monday", NULL, CR_EINVAL,
       "cron field 5 (day-of-week): unknown weekday name \"monday\""},
      {"* mon * * *", NULL, CR_EINVAL,
       "cron field 2 (hour): \"mon\" is not a number"},
      {"5x * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): \"5x\" is not a number"},
      {"10-5 * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): range 10-5 has its start after its end"},
      {"*/0 * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): step 0 is out of range 1-59"},
      {"*/60 * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): step 60 is out of range 1-59"},
      {"*/ * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): expected a number after '/'"},
      {"1,,2 * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): empty list item"},
      {"1, * * * *", NULL, CR_EINVAL, "cron field 1 (minute): empty list item"},
      {"1- * * * *", NULL, CR_EINVAL,
       "cron field 1 (minute): missing value at end of item"},
      {"*-5 * * * *", NULL, CR_EINVAL, "cron field 1 (minute): unexpected '-'"},
      {"? * * * *", NULL, CR_EINVAL, "cron field 1 (minute): unexpected '?'"},
      {"@fortnightly", NULL, CR_EINVAL, "unknown cron macro \"@fortnightly\""},
      {"@reboot", NULL, CR_EINVAL, "cron macro \"@reboot\" is not supported"},
      {"@daily 5", NULL, CR_EINVAL,
       "cron macro \"@daily\" takes no other fields"},
      {"0 3 * * *", "Europe/Pariss", CR_ENOENT,
       "unknown time zone \"Europe/Pariss\""},
      {"0 3 * * *", "../../etc/passwd", CR_EINVAL,
       "invalid time zone name \"../../etc/passwd\": must be a relative name "
       "without \"..\""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[256] = "";
    cr_schedule *s = (cr_schedule *)err;
    int rc =
        cr_schedule_parse_cron(bad[i].expr, bad[i].tz, &s, err, sizeof err);
    if (rc != bad[i].rc || strcmp(err, bad[i].msg) != 0)
      fail_msg("\"%s\": got %s \"%s\", want %s \"%s\"", bad[i].expr,
               cr_err_name(rc), err, cr_err_name(bad[i].rc), bad[i].msg);
    assert_null(s);
  }
}

static void test_cron_describe(void **state) {
  (void)state;
  require_tzdata();
  char d[128];
  cr_schedule *s = cron("0 3 * * *", "Europe/Paris");
  assert_int_equal(cr_schedule_describe(s, d, sizeof d), 0);
  assert_string_equal(d, "cron 0 3 * * * (Europe/Paris)");
  /* Truncation is reported and the buffer stays terminated. */
  assert_int_equal(cr_schedule_describe(s, d, 10), CR_ERANGE);
  assert_string_equal(d, "cron 0 3 ");
  cr_schedule_free(s);
  s = cron("  */15\t9-17  * *   mon-fri ", NULL);
  assert_int_equal(cr_schedule_describe(s, d, sizeof d), 0);
  assert_string_equal(d, "cron */15 9-17 * * mon-fri (UTC)");
  cr_schedule_free(s);
  s = cron("@daily", "UTC");
  assert_int_equal(cr_schedule_describe(s, d, sizeof d), 0);
  assert_string_equal(d, "cron @daily (UTC)");
  cr_schedule_free(s);
}

/* ---- cron next (UTC) ----------------------------------------------------- */

static void test_month_ends_and_leap_day(void **state) {
  (void)state;
  cr_schedule *s = cron("0 0 31 * *", NULL);
  const int64_t m31[] = {ms(2026, 3, 31, 0, 0),  ms(2026, 5, 31, 0, 0),
                         ms(2026, 7, 31, 0, 0),  ms(2026, 8, 31, 0, 0),
                         ms(2026, 10, 31, 0, 0), ms(2026, 12, 31, 0, 0),
                         ms(2027, 1, 31, 0, 0)};
  assert_runs(s, ms(2026, 1, 31, 0, 0), m31, 7);
  cr_schedule_free(s);

  s = cron("0 12 29 2 *", NULL);
  const int64_t feb29[] = {ms(2028, 2, 29, 12, 0), ms(2032, 2, 29, 12, 0)};
  assert_runs(s, ms(2026, 1, 1, 0, 0), feb29, 2);
  cr_schedule_free(s);

  s = cron("59 23 31 12 *", NULL);
  const int64_t nye[] = {ms(2026, 12, 31, 23, 59), ms(2027, 12, 31, 23, 59)};
  assert_runs(s, ms(2026, 6, 1, 0, 0), nye, 2);
  cr_schedule_free(s);

  s = cron("@yearly", NULL);
  const int64_t ny[] = {ms(2027, 1, 1, 0, 0), ms(2028, 1, 1, 0, 0)};
  assert_runs(s, ms(2026, 12, 31, 23, 59), ny, 2);
  cr_schedule_free(s);

  s = cron("30 * * * *", NULL); /* hour, day, month and year roll over */
  const int64_t roll[] = {ms(2027, 1, 1, 0, 30), ms(2027, 1, 1, 1, 30)};
  assert_runs(s, ms(2026, 12, 31, 23, 31), roll, 2);
  cr_schedule_free(s);
}

static void test_strictly_after(void **state) {
  (void)state;
  cr_schedule *s = cron("*/15 * * * *", NULL);
  int64_t t = ms(2026, 5, 5, 10, 15);
  assert_int_equal(next_of(s, t - 1), t);
  assert_int_equal(next_of(s, t), t + 15 * MIN_MS);
  assert_int_equal(next_of(s, t + 1), t + 15 * MIN_MS);
  assert_int_equal(next_of(s, t - 15 * MIN_MS + 999), t);
  /* Before 1970 works too. */
  assert_int_equal(next_of(s, ms(1969, 12, 31, 23, 50)), 0);
  cr_schedule_free(s);
}

static void test_day_rule(void **state) {
  (void)state;
  /* Both restricted: the 13th OR a Friday. */
  cr_schedule *s = cron("0 0 13 * 5", NULL);
  const int64_t either[] = {
      ms(2026, 2, 6, 0, 0),  ms(2026, 2, 13, 0, 0), ms(2026, 2, 20, 0, 0),
      ms(2026, 2, 27, 0, 0), ms(2026, 3, 6, 0, 0),  ms(2026, 3, 13, 0, 0),
      ms(2026, 3, 20, 0, 0), ms(2026, 3, 27, 0, 0), ms(2026, 4, 3, 0, 0),
      ms(2026, 4, 10, 0, 0), ms(2026, 4, 13, 0, 0), ms(2026, 4, 17, 0, 0)};
  assert_runs(s, ms(2026, 2, 1, 0, 0), either, 12);
  cr_schedule_free(s);
  /* Day-of-month starts with '*': both must match (Vixie): odd Mondays. */
  s = cron("0 0 */2 * 1", NULL);
  const int64_t both[] = {ms(2026, 1, 5, 0, 0), ms(2026, 1, 19, 0, 0),
                          ms(2026, 2, 9, 0, 0), ms(2026, 2, 23, 0, 0),
                          ms(2026, 3, 9, 0, 0), ms(2026, 3, 23, 0, 0)};
  assert_runs(s, ms(2025, 12, 31, 0, 0), both, 6);
  cr_schedule_free(s);
  /* Only day-of-week restricted: every Sunday; 7 and sun mean Sunday. */
  const char *sundays[] = {"0 0 * * 0",   "0 0 * * 7", "0 0 * * SUN",
                           "0 0 * * Sun", "@weekly",   "0 0 * * 0/7"};
  const int64_t sun[] = {ms(2026, 2, 8, 0, 0), ms(2026, 2, 15, 0, 0),
                         ms(2026, 2, 22, 0, 0)};
  for (size_t i = 0; i < sizeof sundays / sizeof sundays[0]; i++) {
    s = cron(sundays[i], NULL);
    assert_runs(s, ms(2026, 2, 1, 0, 0), sun, 3);
    cr_schedule_free(s);
  }
}

static void test_steps_ranges_names(void **state) {
  (void)state;
  cr_schedule *s = cron("1-10/3,58 9-17/4 * * *", NULL);
  const int64_t a[] = {
      ms(2026, 6, 1, 9, 1),   ms(2026, 6, 1, 9, 4),  ms(2026, 6, 1, 9, 7),
      ms(2026, 6, 1, 9, 10),  ms(2026, 6, 1, 9, 58), ms(2026, 6, 1, 13, 1),
      ms(2026, 6, 1, 13, 4),  ms(2026, 6, 1, 13, 7), ms(2026, 6, 1, 13, 10),
      ms(2026, 6, 1, 13, 58), ms(2026, 6, 1, 17, 1)};
  assert_runs(s, ms(2026, 6, 1, 0, 0), a, 11);
  cr_schedule_free(s);
  /* "N/step" runs from N to the field's end. */
  s = cron("50/5 0 * * *", NULL);
  const int64_t b[] = {ms(2026, 6, 1, 0, 50), ms(2026, 6, 1, 0, 55),
                       ms(2026, 6, 2, 0, 50)};
  assert_runs(s, ms(2026, 6, 1, 0, 0), b, 3);
  cr_schedule_free(s);
  /* Month and weekday names, ranges of names, mixed case. */
  s = cron("0 8 * JUN-aug,Dec Mon-fri", NULL);
  const int64_t c[] = {ms(2026, 8, 31, 8, 0), ms(2026, 12, 1, 8, 0),
                       ms(2026, 12, 2, 8, 0)};
  assert_runs(s, ms(2026, 8, 29, 0, 0), c, 3);
  cr_schedule_free(s);
  /* Macros. */
  s = cron("@hourly", NULL);
  assert_int_equal(next_of(s, ms(2026, 6, 1, 10, 0)), ms(2026, 6, 1, 11, 0));
  cr_schedule_free(s);
  s = cron("@MONTHLY", NULL);
  assert_int_equal(next_of(s, ms(2026, 6, 1, 10, 0)), ms(2026, 7, 1, 0, 0));
  cr_schedule_free(s);
  s = cron("@midnight", NULL);
  assert_int_equal(next_of(s, ms(2026, 6, 1, 10, 0)), ms(2026, 6, 2, 0, 0));
  cr_schedule_free(s);
  s = cron("@annually", NULL);
  assert_int_equal(next_of(s, ms(2026, 6, 1, 10, 0)), ms(2027, 1, 1, 0, 0));
  cr_schedule_free(s);
}

static void test_no_match(void **state) {
  (void)state;
  const char *never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 *"};
  for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
    cr_schedule *s = cron(never[i], "Europe/Paris");
    int64_t n = -1;
    assert_int_equal(cr_schedule_next(s, 0, ms(2026, 1, 1, 0, 0), &n),
                     CR_ENOENT);
    assert_int_equal(n, -1);
    int due = -1;
    assert_int_equal(cr_schedule_due(s, 0, ms(2025, 1, 1, 0, 0),
                                     ms(2026, 1, 1, 0, 0), &due, &n),
                     CR_ENOENT);
    assert_int_equal(due, 0);
    cr_schedule_free(s);
  }
  /* Feb 29 is 8 years apart around 2100: beyond the 5-year horizon. */
  cr_schedule *s = cron("0 0 29 2 *", NULL);
  int64_t n;
  assert_int_equal(cr_schedule_next(s, 0, ms(2097, 1, 1, 0, 0), &n), CR_ENOENT);
  assert_int_equal(next_of(s, ms(2099, 6, 1, 0, 0)), ms(2104, 2, 29, 0, 0));
  cr_schedule_free(s);
}

/* ---- DST ----------------------------------------------------------------- */

static void test_dst_paris_daily(void **state) {
  (void)state;
  require_tzdata();
  cr_schedule *s = cron("30 2 * * *", "Europe/Paris");
  /* Spring forward on 2026-03-29 (02:00 CET -> 03:00 CEST at 01:00Z):
   * 02:30 runs once, at 03:00 CEST. */
  const int64_t spring[] = {ms(2026, 3, 28, 1, 30), ms(2026, 3, 29, 1, 0),
                            ms(2026, 3, 30, 0, 30)};
  assert_runs(s, ms(2026, 3, 27, 12, 0), spring, 3);
  /* Fall back on 2026-10-25 (03:00 CEST -> 02:00 CET at 01:00Z): once, at
   * the first 02:30 (CEST). */
  const int64_t fall[] = {ms(2026, 10, 24, 0, 30), ms(2026, 10, 25, 0, 30),
                          ms(2026, 10, 26, 1, 30)};
  assert_runs(s, ms(2026, 10, 23, 12, 0), fall, 3);
  /* Asked from inside the repeated hour (after the first 02:30). */
  assert_int_equal(next_of(s, ms(2026, 10, 25, 1, 10)),
                   ms(2026, 10, 26, 1, 30));
  cr_schedule_free(s);

  /* Every matching time inside the gap collapses into one run. */
  s = cron("*/15 2 * * *", "Europe/Paris");
  const int64_t gap[] = {ms(2026, 3, 28, 1, 45), ms(2026, 3, 29, 1, 0),
                         ms(2026, 3, 30, 0, 0)};
  assert_runs(s, ms(2026, 3, 28, 1, 40), gap, 3);
  cr_schedule_free(s);
  /* 02:00-02:59 and 03:00 all map to 03:00 CEST: still one run. */
  s = cron("0,30 2,3 * * *", "Europe/Paris");
  const int64_t g2[] = {ms(2026, 3, 29, 1, 0), ms(2026, 3, 29, 1, 30),
                        ms(2026, 3, 30, 0, 0)};
  assert_runs(s, ms(2026, 3, 28, 23, 0), g2, 3);
  cr_schedule_free(s);
}

static void test_dst_new_york(void **state) {
  (void)state;
  require_tzdata();
  cr_schedule *s = cron("30 2 * * *", "America/New_York");
  /* 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00Z. */
  const int64_t spring[] = {ms(2026, 3, 7, 7, 30), ms(2026, 3, 8, 7, 0),
                            ms(2026, 3, 9, 6, 30)};
  assert_runs(s, ms(2026, 3, 7, 0, 0), spring, 3);
  /* 2026-11-01: 02:30 exists once (EST). */
  const int64_t fall[] = {ms(2026, 10, 31, 6, 30), ms(2026, 11, 1, 7, 30),
                          ms(2026, 11, 2, 7, 30)};
  assert_runs(s, ms(2026, 10, 31, 0, 0), fall, 3);
  cr_schedule_free(s);
  /* 01:30 is repeated on 2026-11-01 (02:00 EDT -> 01:00 EST at 06:00Z):
   * runs once, at 01:30 EDT. */
  s = cron("30 1 * * *", "America/New_York");
  const int64_t rep[] = {ms(2026, 10, 31, 5, 30), ms(2026, 11, 1, 5, 30),
                         ms(2026, 11, 2, 6, 30)};
  assert_runs(s, ms(2026, 10, 31, 0, 0), rep, 3);
  cr_schedule_free(s);
}

static void test_dst_lord_howe(void **state) {
  (void)state;
  require_tzdata();
  /* 30-minute DST. 2026-10-04 02:00 LHST (+10:30) -> 02:30 LHDT (+11) at
   * 2026-10-03 15:30Z: 02:15 runs at 02:30 LHDT. */
  cr_schedule *s = cron("15 2 * * *", "Australia/Lord_Howe");
  const int64_t spring[] = {ms(2026, 10, 2, 15, 45), ms(2026, 10, 3, 15, 30),
                            ms(2026, 10, 4, 15, 15)};
  assert_runs(s, ms(2026, 10, 2, 0, 0), spring, 3);
  cr_schedule_free(s);
  /* 2026-04-05 02:00 LHDT -> 01:30 LHST at 2026-04-04 15:00Z: 01:45 happens
   * twice, runs at the first. */
  s = cron("45 1 * * *", "Australia/Lord_Howe");
  const int64_t fall[] = {ms(2026, 4, 3, 14, 45), ms(2026, 4, 4, 14, 45),
                          ms(2026, 4, 5, 15, 15)};
  assert_runs(s, ms(2026, 4, 3, 0, 0), fall, 3);
  cr_schedule_free(s);
}

/* "0 * * * *" runs every real hour across both changes: in the repeated hour
 * it runs at 02:00 CEST and again at 02:00 CET. */
static void test_dst_hourly(void **state) {
  (void)state;
  require_tzdata();
  const char *zones[] = {"Europe/Paris", "America/New_York"};
  const int64_t starts[] = {ms(2026, 3, 28, 20, 0), ms(2026, 10, 24, 20, 0),
                            ms(2026, 3, 7, 20, 0), ms(2026, 10, 31, 20, 0)};
  for (int z = 0; z < 2; z++) {
    cr_schedule *s = cron("0 * * * *", zones[z]);
    cr_tz *tz = NULL;
    assert_int_equal(cr_tz_load(zones[z], &tz, NULL, 0), 0);
    for (int k = 0; k < 2; k++) {
      int64_t t = starts[z * 2 + k];
      int hours_seen[24] = {0};
      for (int i = 0; i < 24; i++) {
        int64_t n = next_of(s, t);
        assert_int_equal(n, t + HOUR_MS);
        struct cr_civil c;
        assert_int_equal(cr_tz_to_local(tz, n / 1000, &c), 0);
        assert_int_equal(c.minute, 0);
        hours_seen[c.hour]++;
        t = n;
      }
      /* Spring skips local 02:00; fall repeats 02:00 (Paris) or 01:00
       * (New York). */
      if (k == 0)
        assert_int_equal(hours_seen[2], 0);
      else
        assert_int_equal(hours_seen[z == 0 ? 2 : 1], 2);
    }
    cr_tz_free(tz);
    cr_schedule_free(s);
  }
  /* Paris fall back: the explicit sequence. */
  cr_schedule *s = cron("0 * * * *", "Europe/Paris");
  const int64_t seq[] = {ms(2026, 10, 24, 23, 0), ms(2026, 10, 25, 0, 0),
                         ms(2026, 10, 25, 1, 0), ms(2026, 10, 25, 2, 0)};
  assert_runs(s, ms(2026, 10, 24, 22, 0), seq, 4);
  cr_schedule_free(s);
  /* Half-hourly: the skipped 02:30 does not run (no extra run at 03:00). */
  s = cron("30 * * * *", "Europe/Paris");
  const int64_t half[] = {ms(2026, 3, 29, 0, 30), ms(2026, 3, 29, 1, 30)};
  assert_runs(s, ms(2026, 3, 29, 0, 0), half, 2);
  cr_schedule_free(s);
}

/* ---- catch-up --------------------------------------------------------------
 */

static void test_due(void **state) {
  (void)state;
  cr_schedule *s = cron("0 3 * * *", NULL);
  int64_t now = ms(2026, 5, 6, 10, 0), next = 0;
  int due = -1;
  /* Five missed days: exactly one run now, then the next slot. */
  assert_int_equal(
      cr_schedule_due(s, 0, ms(2026, 5, 1, 3, 0), now, &due, &next), 0);
  assert_int_equal(due, 1);
  assert_int_equal(next, ms(2026, 5, 7, 3, 0));
  /* The scheduler ran it at now: nothing more is due until next. */
  assert_int_equal(cr_schedule_due(s, 0, now, now, &due, &next), 0);
  assert_int_equal(due, 0);
  assert_int_equal(next, ms(2026, 5, 7, 3, 0));
  assert_int_equal(cr_schedule_due(s, 0, now, next - 1, &due, &next), 0);
  assert_int_equal(due, 0);
  assert_int_equal(cr_schedule_due(s, 0, now, next, &due, &next), 0);
  assert_int_equal(due, 1);
  assert_int_equal(next, ms(2026, 5, 8, 3, 0));
  /* Last run today at 03:00, now 10:00: not due. */
  assert_int_equal(
      cr_schedule_due(s, 0, ms(2026, 5, 6, 3, 0), now, &due, &next), 0);
  assert_int_equal(due, 0);
  /* Never ran: counted from the anchor (creation). */
  assert_int_equal(
      cr_schedule_due(s, ms(2026, 5, 6, 9, 0), 0, now, &due, &next), 0);
  assert_int_equal(due, 0);
  assert_int_equal(
      cr_schedule_due(s, ms(2026, 5, 6, 2, 0), 0, now, &due, &next), 0);
  assert_int_equal(due, 1);
  cr_schedule_free(s);
  /* A run more than the 5-year horizon after the last one is still seen. */
  s = cron("0 0 29 2 *", NULL);
  assert_int_equal(cr_schedule_due(s, 0, ms(2096, 2, 29, 0, 0),
                                   ms(2104, 3, 1, 0, 0), &due, &next),
                   0);
  assert_int_equal(due, 1);
  assert_int_equal(next, ms(2108, 2, 29, 0, 0));
  cr_schedule_free(s);
  /* Intervals: anchored slots. */
  s = every("1h");
  int64_t anchor = ms(2026, 5, 6, 0, 0);
  assert_int_equal(cr_schedule_due(s, anchor, anchor + 90 * MIN_MS,
                                   anchor + 10 * HOUR_MS + 1, &due, &next),
                   0);
  assert_int_equal(due, 1);
  assert_int_equal(next, anchor + 11 * HOUR_MS);
  assert_int_equal(cr_schedule_due(s, anchor, anchor + 90 * MIN_MS,
                                   anchor + 2 * HOUR_MS - 1, &due, &next),
                   0);
  assert_int_equal(due, 0);
  assert_int_equal(next, anchor + 2 * HOUR_MS);
  assert_int_equal(cr_schedule_due(NULL, 0, 0, 0, &due, &next), CR_EINVAL);
  cr_schedule_free(s);
}

/* ---- brute-force oracle ----------------------------------------------------
 */

/* An independent matcher for numeric cron expressions. */
struct oracle {
  int min[60], hour[24], dom[32], mon[13], dow[8];
  int dom_star, dow_star, all_hours;
};

static void oracle_field(const char *f, int lo, int hi, int *set) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s", f);
  for (char *save = NULL, *it = strtok_r(buf, ",", &save); it;
       it = strtok_r(NULL, ",", &save)) {
    int a = lo, b = hi, step = 1;
    char *slash = strchr(it, '/');
    if (slash) {
      step = atoi(slash + 1);
      *slash = '\0';
    }
    if (strcmp(it, "*") != 0) {
      a = b = atoi(it);
      char *dash = strchr(it, '-');
      if (dash)
        b = atoi(dash + 1);
      else if (slash)
        b = hi;
    }
    for (int v = a; v <= b; v += step)
      set[v] = 1;
  }
}

static void oracle_parse(const char *expr, struct oracle *o) {
  char f[5][32];
  memset(o, 0, sizeof *o);
  assert_int_equal(
      sscanf(expr, "%31s %31s %31s %31s %31s", f[0], f[1], f[2], f[3], f[4]),
      5);
  oracle_field(f[0], 0, 59, o->min);
  oracle_field(f[1], 0, 23, o->hour);
  oracle_field(f[2], 1, 31, o->dom);
  oracle_field(f[3], 1, 12, o->mon);
  oracle_field(f[4], 0, 7, o->dow);
  o->dow[0] |= o->dow[7];
  o->dom_star = f[2][0] == '*';
  o->dow_star = f[4][0] == '*';
  o->all_hours = 1;
  for (int h = 0; h < 24; h++)
    o->all_hours &= o->hour[h];
}

static int oracle_match(const struct oracle *o, const struct cr_civil *c) {
  int d = o->dom[c->day], w = o->dow[c->wday];
  int day = (o->dom_star || o->dow_star) ? d && w : d || w;
  return o->min[c->minute] && o->hour[c->hour] && o->mon[c->month] && day;
}

static int same_wall(const struct cr_civil *a, const struct cr_civil *b) {
  return a->year == b->year && a->month == b->month && a->day == b->day &&
         a->hour == b->hour && a->minute == b->minute;
}

/* Runs in [from, to) (UTC seconds, minute aligned) by walking every minute:
 * local wall time matches, except repeated times after their first
 * occurrence and, for jobs not running every hour, skipped times mapped to
 * the end of their gap. Returns the count written to out. */
static size_t oracle_runs(const cr_tz *tz, const struct oracle *o, int64_t from,
                          int64_t to, int64_t *out, size_t cap) {
  size_t n = 0;
  struct cr_civil prev, c;
  assert_int_equal(cr_tz_to_local(tz, from - 60, &prev), 0);
  for (int64_t u = from; u < to; u += 60, prev = c) {
    assert_int_equal(cr_tz_to_local(tz, u, &c), 0);
    int run = 0;
    if (c.utc_offset > prev.utc_offset && !o->all_hours) {
      /* Skipped local minutes: [u + previous offset, u + offset). */
      int64_t L0 = (u - 60) + prev.utc_offset + 60, L1 = u + c.utc_offset;
      for (int64_t L = L0; L < L1 && !run; L += 60) {
        int64_t days = L >= 0 ? L / 86400 : -((-L + 86399) / 86400);
        int64_t sod = L - days * 86400, y;
        struct cr_civil w = {0};
        cr__civil_from_days(days, &y, &w.month, &w.day);
        w.year = (int)y;
        w.hour = (int)(sod / 3600);
        w.minute = (int)(sod / 60 % 60);
        w.wday = cr__weekday_from_days(days);
        run = oracle_match(o, &w);
      }
    }
    if (!run && oracle_match(o, &c)) {
      run = 1;
      if (!o->all_hours) {
        for (int k = 1; k <= 4 * 60 && run; k++) {
          struct cr_civil e;
          assert_int_equal(cr_tz_to_local(tz, u - 60 * k, &e), 0);
          if (same_wall(&e, &c))
            run = 0;
        }
      }
    }
    if (run) {
      assert_true(n < cap);
      out[n++] = u * 1000;
    }
  }
  return n;
}

static void test_oracle_around_transitions(void **state) {
  (void)state;
  require_tzdata();
  const char *zones[] = {"Europe/Paris",
                         "America/New_York",
                         "Australia/Lord_Howe",
                         "Antarctica/Troll",
                         "Pacific/Chatham",
                         "Europe/Dublin",
                         "UTC"};
  const char *exprs[] = {"0 * * * *",       "30 2 * * *", "*/15 1-3 * * *",
                         "0,30 0-4 * * 0",  "45 1 * * *", "0 2 * * *",
                         "*/7 * * * *",     "0 0 13 * 5", "0 3 */2 * 1",
                         "5 4 29 2 *",      "* 2 * * *",  "59 1,2 * * *",
                         "0 0-1,3-23 * * *"};
  static int64_t want[6000];
  for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
    cr_tz *tz = NULL;
    assert_int_equal(cr_tz_load(zones[z], &tz, NULL, 0), 0);
    /* Windows: 3 days around each change of 2026, and a quiet week. */
    int64_t win[6][2], t = ms(2026, 1, 1, 0, 0) / 1000, tr;
    size_t nw = 0;
    win[nw][0] = ms(2026, 1, 10, 0, 0) / 1000;
    win[nw][1] = win[nw][0] + 7 * 86400;
    nw++;
    while (nw < 6 && cr_tz_next_transition(tz, t, &tr) == 0 &&
           tr < ms(2027, 1, 1, 0, 0) / 1000) {
      win[nw][0] = tr - tr % 60 - 2 * 86400;
      win[nw][1] = tr - tr % 60 + 86400;
      nw++;
      t = tr;
    }
    for (size_t e = 0; e < sizeof exprs / sizeof exprs[0]; e++) {
      struct oracle o;
      oracle_parse(exprs[e], &o);
      cr_schedule *s = cron(exprs[e], zones[z]);
      for (size_t w = 0; w < nw; w++) {
        size_t n = oracle_runs(tz, &o, win[w][0], win[w][1], want, 6000);
        int64_t after = win[w][0] * 1000 - 1, got;
        size_t i = 0;
        for (;;) {
          int rc = cr_schedule_next(s, 0, after, &got);
          if (rc == CR_ENOENT)
            break;
          assert_int_equal(rc, 0);
          if (got >= win[w][1] * 1000)
            break;
          if (i >= n || got != want[i]) {
            char g[80], x[80] = "none";
            fmt_ms(got, g, sizeof g);
            if (i < n)
              fmt_ms(want[i], x, sizeof x);
            fail_msg("%s \"%s\" run %zu: got %s, oracle %s", zones[z], exprs[e],
                     i, g, x);
          }
          i++;
          after = got;
        }
        if (i != n)
          fail_msg("%s \"%s\": %zu runs, oracle %zu", zones[z], exprs[e], i, n);
      }
      cr_schedule_free(s);
    }
    cr_tz_free(tz);
  }
}

/* ---- allocation failures
 * ----------------------------------------------------- */

static void test_alloc_failures(void **state) {
  (void)state;
  require_tzdata();
  cr_test_alloc_install();
  const char *tzs[] = {"Europe/Paris", NULL};
  for (int k = 0; k < 3; k++) {
    int ok = 0;
    for (long n = 0; n < 200 && !ok; n++) {
      cr_test_alloc_fail_after(n);
      cr_schedule *s = NULL;
      char err[256];
      int rc = k < 2 ? cr_schedule_parse_cron("0 3 * * mon-fri", tzs[k], &s,
                                              err, sizeof err)
                     : cr_schedule_parse_every("1h30m", &s, err, sizeof err);
      if (rc == 0) {
        assert_false(cr_test_alloc_failed());
        int64_t next;
        assert_int_equal(cr_schedule_next(s, 0, ms(2026, 6, 1, 0, 0), &next),
                         0);
        assert_true(next > ms(2026, 6, 1, 0, 0));
        cr_schedule_free(s);
        ok = 1;
      } else {
        assert_int_equal(rc, CR_ENOMEM);
        assert_null(s);
      }
    }
    assert_true(ok);
  }
  cr_test_alloc_fail_after(-1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_parse),
      cmocka_unit_test(test_every_errors),
      cmocka_unit_test(test_every_anchor),
      cmocka_unit_test(test_cron_errors),
      cmocka_unit_test(test_cron_describe),
      cmocka_unit_test(test_month_ends_and_leap_day),
      cmocka_unit_test(test_strictly_after),
      cmocka_unit_test(test_day_rule),
      cmocka_unit_test(test_steps_ranges_names),
      cmocka_unit_test(test_no_match),
      cmocka_unit_test(test_dst_paris_daily),
      cmocka_unit_test(test_dst_new_york),
      cmocka_unit_test(test_dst_lord_howe),
      cmocka_unit_test(test_dst_hourly),
      cmocka_unit_test(test_due),
      cmocka_unit_test(test_oracle_around_transitions),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
