/* test_tz.c: TZif loading (system zones and synthetic v1/v2/slim files),
 * known offsets and DST switch instants, the POSIX footer for future dates,
 * gap/overlap resolution, name checks, the calendar helpers, and agreement
 * with glibc's localtime_r over many instants and zones. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "exec/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ZONEINFO "/usr/share/zoneinfo"

/* UTC seconds of a civil UTC time, via timegm (the independent oracle). */
static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return (int64_t)timegm(&tm);
}

static void require_tzdata(void) {
  if (access(ZONEINFO "/Europe/Paris", R_OK) != 0)
    fail_msg("tzdata is missing: " ZONEINFO "/Europe/Paris not found; "
             "install the Debian package tzdata (scripts/deps.sh)");
}

static cr_tz *load(const char *name) {
  char err[256] = "";
  cr_tz *tz = NULL;
  int rc = cr_tz_load(name, &tz, err, sizeof err);
  if (rc != 0)
    fail_msg("cr_tz_load(%s): %s (%s)", name, cr_err_name(rc), err);
  return tz;
}

static struct cr_civil local_of(const cr_tz *tz, int64_t t) {
  struct cr_civil c;
  assert_int_equal(cr_tz_to_local(tz, t, &c), 0);
  return c;
}

static void assert_offset(const cr_tz *tz, int64_t t, int32_t off, int dst) {
  struct cr_civil c = local_of(tz, t);
  if (c.utc_offset != off || c.isdst != dst)
    fail_msg("%s at %lld: offset %d dst %d, want %d dst %d", cr_tz_name(tz),
             (long long)t, (int)c.utc_offset, c.isdst, (int)off, dst);
}

/* The zone switches from off_before to off_after exactly at instant t, and
 * cr_tz_next_transition finds t from a day before. */
static void assert_switch(const cr_tz *tz, int64_t t, int32_t before,
                          int32_t after) {
  assert_offset(tz, t - 1, before, before > after);
  assert_offset(tz, t, after, after > before);
  int64_t next = 0;
  assert_int_equal(cr_tz_next_transition(tz, t - 86400, &next), 0);
  assert_int_equal(next, t);
}

static void test_utc(void **state) {
  (void)state;
  const char *names[] = {NULL, "UTC"};
  for (int i = 0; i < 2; i++) {
    cr_tz *tz = load(names[i]);
    assert_string_equal(cr_tz_name(tz), "UTC");
    struct cr_civil c = local_of(tz, utc(2026, 7, 14, 12, 34, 56));
    assert_int_equal(c.year, 2026);
    assert_int_equal(c.month, 7);
    assert_int_equal(c.day, 14);
    assert_int_equal(c.hour, 12);
    assert_int_equal(c.minute, 34);
    assert_int_equal(c.second, 56);
    assert_int_equal(c.wday, 2); /* a Tuesday */
    assert_int_equal(c.utc_offset, 0);
    int64_t next;
    assert_int_equal(cr_tz_next_transition(tz, 0, &next), CR_ENOENT);
    cr_tz_free(tz);
  }
}

static void test_paris(void **state) {
  (void)state;
  require_tzdata();
  cr_tz *tz = load("Europe/Paris");
  assert_string_equal(cr_tz_name(tz), "Europe/Paris");
  assert_offset(tz, utc(2026, 1, 15, 12, 0, 0), 3600, 0);
  assert_offset(tz, utc(2026, 7, 15, 12, 0, 0), 7200, 1);
  assert_switch(tz, utc(2026, 3, 29, 1, 0, 0), 3600, 7200);
  assert_switch(tz, utc(2026, 10, 25, 1, 0, 0), 7200, 3600);
  /* Transitions chain: the next one after the spring change is autumn's. */
  int64_t next;
  assert_int_equal(cr_tz_next_transition(tz, utc(2026, 3, 29, 1, 0, 0), &next),
                   0);
  assert_int_equal(next, utc(2026, 10, 25, 1, 0, 0));
  /* Local fields at the spring instant: 03:00 CEST. */
  struct cr_civil c = local_of(tz, utc(2026, 3, 29, 1, 0, 0));
  assert_int_equal(c.hour, 3);
  assert_int_equal(c.day, 29);
  assert_int_equal(c.wday, 0);
  /* Far future (after any table; footer rules): last Sundays of 2040. */
  assert_switch(tz, utc(2040, 3, 25, 1, 0, 0), 3600, 7200);
  assert_switch(tz, utc(2040, 10, 28, 1, 0, 0), 7200, 3600);
  assert_switch(tz, utc(2099, 3, 29, 1, 0, 0), 3600, 7200);
  /* Before standard time (1891): Paris mean time +0:09:21. */
  assert_offset(tz, utc(1880, 1, 1, 0, 0, 0), 561, 0);
  cr_tz_free(tz);
}

static void test_new_york(void **state) {
  (void)state;
  require_tzdata();
  cr_tz *tz = load("America/New_York");
  assert_offset(tz, utc(2026, 1, 15, 12, 0, 0), -18000, 0);
  assert_offset(tz, utc(2026, 7, 15, 12, 0, 0), -14400, 1);
  assert_switch(tz, utc(2026, 3, 8, 7, 0, 0), -18000, -14400);
  assert_switch(tz, utc(2026, 11, 1, 6, 0, 0), -14400, -18000);
  assert_switch(tz, utc(2040, 3, 11, 7, 0, 0), -18000, -14400);
  assert_switch(tz, utc(2040, 11, 4, 6, 0, 0), -14400, -18000);
  cr_tz_free(tz);
}

static void test_lord_howe(void **state) {
  (void)state;
  require_tzdata();
  cr_tz *tz = load("Australia/Lord_Howe");
  /* +10:30 standard, +11:00 daylight: a 30-minute DST. */
  assert_switch(tz, utc(2026, 4, 4, 15, 0, 0), 39600, 37800);
  assert_switch(tz, utc(2026, 10, 3, 15, 30, 0), 37800, 39600);
  assert_switch(tz, utc(2040, 3, 31, 15, 0, 0), 39600, 37800);
  assert_switch(tz, utc(2040, 10, 6, 15, 30, 0), 37800, 39600);
  struct cr_civil c = local_of(tz, utc(2026, 10, 3, 15, 30, 0));
  assert_int_equal(c.hour, 2);
  assert_int_equal(c.minute, 30);
  cr_tz_free(tz);
}

static void test_unknown_and_bad_names(void **state) {
  (void)state;
  require_tzdata();
  char err[256];
  cr_tz *tz = (cr_tz *)&err; /* must be reset to NULL */
  assert_int_equal(cr_tz_load("Europe/Pariss", &tz, err, sizeof err),
                   CR_ENOENT);
  assert_null(tz);
  assert_string_equal(err, "unknown time zone \"Europe/Pariss\"");
  /* A directory of zones is not a zone. */
  assert_int_equal(cr_tz_load("Europe", &tz, err, sizeof err), CR_ENOENT);
  assert_int_equal(cr_tz_load("Europe/Paris/x", &tz, err, sizeof err),
                   CR_ENOENT);
  const char *bad[] = {
      "../../../etc/passwd", "/etc/passwd",   "Europe/../UTC", "..", "",
      "Europe/Par is",       "Europe/Paris\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    assert_int_equal(cr_tz_load(bad[i], &tz, err, sizeof err), CR_EINVAL);
    assert_null(tz);
    assert_true(err[0] != '\0');
  }
  assert_int_equal(cr_tz_load("../etc/passwd", &tz, err, sizeof err),
                   CR_EINVAL);
  assert_string_equal(err, "invalid time zone name \"../etc/passwd\": must be "
                           "a relative name without \"..\"");
  /* A file of the zoneinfo directory that is not TZif. */
  if (access(ZONEINFO "/zone.tab", R_OK) == 0) {
    assert_int_equal(cr_tz_load("zone.tab", &tz, err, sizeof err), CR_EPARSE);
    assert_non_null(strstr(err, "not a TZif file"));
  }
  /* NULL errbuf is fine. */
  assert_int_equal(cr_tz_load("Nowhere/Zone", &tz, NULL, 0), CR_ENOENT);
  assert_int_equal(cr_tz_load("UTC", NULL, NULL, 0), CR_EINVAL);
}

/* ---- synthetic TZif files ------------------------------------------------ */

struct buf {
  unsigned char b[4096];
  size_t n;
};

static void put(struct buf *b, const void *p, size_t n) {
  assert_true(b->n + n <= sizeof b->b);
  if (n > 0)
    memcpy(b->b + b->n, p, n);
  b->n += n;
}

static void put32(struct buf *b, uint32_t v) {
  unsigned char x[4] = {v >> 24, v >> 16, v >> 8, v};
  put(b, x, 4);
}

static void put64(struct buf *b, int64_t v) {
  put32(b, (uint32_t)((uint64_t)v >> 32));
  put32(b, (uint32_t)v);
}

struct ttype {
  int32_t off;
  int dst;
};

/* Header + data block with times of tsz bytes; designations "ZZZ\0". */
static void put_block(struct buf *b, char version, unsigned tsz, int ntrans,
                      const int64_t *trans, const unsigned char *idx,
                      int ntypes, const struct ttype *types) {
  put(b, "TZif", 4);
  put(b, &version, 1);
  static const char zero[15];
  put(b, zero, 15);
  uint32_t counts[6] = {0, 0, 0, (uint32_t)ntrans, (uint32_t)ntypes, 4};
  for (int i = 0; i < 6; i++)
    put32(b, counts[i]);
  for (int i = 0; i < ntrans; i++) {
    if (tsz == 4)
      put32(b, (uint32_t)(int32_t)trans[i]);
    else
      put64(b, trans[i]);
  }
  put(b, idx, (size_t)ntrans);
  for (int i = 0; i < ntypes; i++) {
    put32(b, (uint32_t)types[i].off);
    unsigned char x[2] = {(unsigned char)types[i].dst, 0};
    put(b, x, 2);
  }
  put(b, "ZZZ", 4);
}

static void write_bytes(const char *dir, const char *name,
                        const struct buf *b) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b->b, 1, b->n, f), b->n);
  fclose(f);
}

/* A v2 file: v1 block empty but valid, v2 block, footer. */
static void write_v2(const char *dir, const char *name, int ntrans,
                     const int64_t *trans, const unsigned char *idx, int ntypes,
                     const struct ttype *types, const char *footer) {
  struct buf b = {.n = 0};
  struct ttype t0 = {0, 0};
  put_block(&b, '2', 4, 0, NULL, NULL, 1, &t0);
  put_block(&b, '2', 8, ntrans, trans, idx, ntypes, types);
  put(&b, "\n", 1);
  put(&b, footer, strlen(footer));
  put(&b, "\n", 1);
  write_bytes(dir, name, &b);
}

static void test_slim_file_uses_footer(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("tz");
  /* Slim: one transition in 1996, then only the footer. */
  int64_t trans[] = {utc(1996, 10, 27, 1, 0, 0)};
  unsigned char idx[] = {1};
  struct ttype types[] = {{7200, 1}, {3600, 0}};
  write_v2(dir, "Slim", 1, trans, idx, 2, types, "CET-1CEST,M3.5.0,M10.5.0/3");
  /* No transitions at all, southern-hemisphere rule with a 30-min DST,
   * quoted numeric abbreviations and minutes in the offsets. */
  struct ttype lh[] = {{37800, 0}};
  write_v2(dir, "Howe", 0, NULL, NULL, 1, lh,
           "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
  /* Fixed offset, footer without DST. */
  struct ttype fx[] = {{-10800, 0}};
  write_v2(dir, "Fixed", 0, NULL, NULL, 1, fx, "<-03>3");
  /* Year-round DST as RFC 8536 writes it. */
  struct ttype yr[] = {{-14400, 1}};
  write_v2(dir, "AllDst", 0, NULL, NULL, 1, yr, "EST5EDT,0/0,J365/25");
  /* Julian dates: DST from day 60 (Mar 1, also in leap years) to n=300. */
  struct ttype jd[] = {{0, 0}};
  write_v2(dir, "Julian", 0, NULL, NULL, 1, jd, "AAA0BBB,J60/0,300/0");
  assert_int_equal(cr_tz_set_dir(dir), 0);

  cr_tz *tz = load("Slim");
  assert_offset(tz, utc(1996, 10, 27, 0, 59, 59), 7200, 1);
  assert_offset(tz, utc(1996, 12, 1, 0, 0, 0), 3600, 0);
  assert_switch(tz, utc(2040, 3, 25, 1, 0, 0), 3600, 7200);
  assert_switch(tz, utc(2040, 10, 28, 1, 0, 0), 7200, 3600);
  assert_switch(tz, utc(2026, 3, 29, 1, 0, 0), 3600, 7200);
  cr_tz_free(tz);

  tz = load("Howe");
  assert_switch(tz, utc(2040, 3, 31, 15, 0, 0), 39600, 37800);
  assert_switch(tz, utc(2040, 10, 6, 15, 30, 0), 37800, 39600);
  cr_tz_free(tz);

  tz = load("Fixed");
  assert_offset(tz, utc(2050, 6, 1, 0, 0, 0), -10800, 0);
  int64_t next;
  assert_int_equal(cr_tz_next_transition(tz, 0, &next), CR_ENOENT);
  cr_tz_free(tz);

  tz = load("AllDst");
  for (int y = 2030; y < 2034; y++) {
    assert_offset(tz, utc(y, 1, 1, 4, 0, 0), -14400, 1);
    assert_offset(tz, utc(y, 1, 1, 5, 0, 0), -14400, 1);
    assert_offset(tz, utc(y, 12, 31, 23, 0, 0), -14400, 1);
  }
  cr_tz_free(tz);

  tz = load("Julian");
  /* BBB starts J60 = Mar 1 (leap or not) and ends day 300 (0-based). */
  assert_switch(tz, utc(2027, 3, 1, 0, 0, 0), 0, 3600);
  assert_switch(tz, utc(2028, 3, 1, 0, 0, 0), 0, 3600);
  assert_switch(tz, utc(2027, 10, 28, 0, 0, 0) - 3600, 3600, 0);
  assert_switch(tz, utc(2028, 10, 27, 0, 0, 0) - 3600, 3600, 0);
  cr_tz_free(tz);

  /* CONNRUN_ZONEINFO is used when no directory is set. */
  assert_int_equal(cr_tz_set_dir(NULL), 0);
  assert_int_equal(cr_tz_load("Slim", &tz, NULL, 0), CR_ENOENT);
  setenv("CONNRUN_ZONEINFO", dir, 1);
  tz = load("Slim");
  cr_tz_free(tz);
  unsetenv("CONNRUN_ZONEINFO");
  cr_test_rmtree(dir);
  free(dir);
}

static void test_v1_and_broken_files(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("tz");
  int64_t trans[] = {utc(2000, 3, 26, 1, 0, 0), utc(2000, 10, 29, 1, 0, 0)};
  unsigned char idx[] = {1, 0};
  struct ttype types[] = {{3600, 0}, {7200, 1}};
  struct buf b = {.n = 0};
  put_block(&b, 0, 4, 2, trans, idx, 2, types);
  write_bytes(dir, "V1", &b);
  /* Truncations of a valid v2 file at several points. */
  struct buf v2 = {.n = 0};
  put_block(&v2, '3', 4, 0, NULL, NULL, 1, types);
  put_block(&v2, '3', 8, 2, trans, idx, 2, types);
  put(&v2, "\nCET-1CEST,M3.5.0,M10.5.0/3\n", 28);
  size_t cuts[] = {0, 3, 30, 60, 100, v2.n - 20, v2.n - 1};
  char name[32];
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    struct buf t = v2;
    t.n = cuts[i];
    snprintf(name, sizeof name, "Cut%zu", i);
    write_bytes(dir, name, &t);
  }
  /* Bad index, descending times, bad footer. */
  unsigned char badidx[] = {1, 7};
  b.n = 0;
  put_block(&b, 0, 4, 2, trans, badidx, 2, types);
  write_bytes(dir, "BadIdx", &b);
  int64_t desc[] = {trans[1], trans[0]};
  b.n = 0;
  put_block(&b, 0, 4, 2, desc, idx, 2, types);
  write_bytes(dir, "Desc", &b);
  write_v2(dir, "BadFooter", 2, trans, idx, 2, types, "CET-1CEST,M13.5.0,x");
  assert_int_equal(cr_tz_set_dir(dir), 0);

  cr_tz *tz = load("V1");
  assert_switch(tz, trans[0], 3600, 7200);
  assert_switch(tz, trans[1], 7200, 3600);
  /* After the last transition with no footer: the last type stays. */
  assert_offset(tz, utc(2030, 7, 1, 0, 0, 0), 3600, 0);
  int64_t next;
  assert_int_equal(cr_tz_next_transition(tz, trans[1], &next), CR_ENOENT);
  cr_tz_free(tz);

  char err[512];
  const char *broken[] = {"Cut0", "Cut1", "Cut2",   "Cut3", "Cut4",
                          "Cut5", "Cut6", "BadIdx", "Desc", "BadFooter"};
  for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
    tz = NULL;
    err[0] = '\0';
    int rc = cr_tz_load(broken[i], &tz, err, sizeof err);
    if (rc != CR_EPARSE)
      fail_msg("%s: %s (%s)", broken[i], cr_err_name(rc), err);
    assert_null(tz);
    assert_non_null(strstr(err, "bad time zone file"));
  }
  assert_int_equal(cr_tz_set_dir(NULL), 0);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_from_local(void **state) {
  (void)state;
  require_tzdata();
  cr_tz *tz = load("Europe/Paris");
  struct cr_civil c = {
      .year = 2026, .month = 3, .day = 29, .hour = 2, .minute = 30};
  int64_t t;
  int kind = -1;
  /* Gap: 02:30 does not exist. */
  assert_int_equal(cr_tz_from_local(tz, &c, CR_TZ_GAP_NEXT, &t, &kind), 0);
  assert_int_equal(kind, CR_TZ_LOCAL_GAP);
  assert_int_equal(t, utc(2026, 3, 29, 1, 0, 0));
  assert_int_equal(cr_tz_from_local(tz, &c, CR_TZ_GAP_SHIFT, &t, &kind), 0);
  assert_int_equal(t, utc(2026, 3, 29, 1, 30, 0)); /* 03:30 CEST */
  /* Overlap: 02:30 happens twice. */
  c.month = 10;
  c.day = 25;
  assert_int_equal(cr_tz_from_local(tz, &c, CR_TZ_FOLD_EARLIEST, &t, &kind), 0);
  assert_int_equal(kind, CR_TZ_LOCAL_OVERLAP);
  assert_int_equal(t, utc(2026, 10, 25, 0, 30, 0));
  assert_int_equal(cr_tz_from_local(tz, &c, CR_TZ_FOLD_LATEST, &t, &kind), 0);
  assert_int_equal(t, utc(2026, 10, 25, 1, 30, 0));
  /* Ordinary time. */
  c.hour = 12;
  assert_int_equal(cr_tz_from_local(tz, &c, 0, &t, &kind), 0);
  assert_int_equal(kind, CR_TZ_LOCAL_UNIQUE);
  assert_int_equal(t, utc(2026, 10, 25, 11, 30, 0));
  /* Invalid fields. */
  struct cr_civil bad[] = {
      {.year = 2027, .month = 2, .day = 29},
      {.year = 2026, .month = 13, .day = 1},
      {.year = 2026, .month = 4, .day = 31},
      {.year = 2026, .month = 1, .day = 1, .hour = 24},
      {.year = 2026, .month = 1, .day = 1, .minute = 60},
      {.year = 2026, .month = 1, .day = 0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(cr_tz_from_local(tz, &bad[i], 0, &t, NULL), CR_EINVAL);
  struct cr_civil leap = {.year = 2028, .month = 2, .day = 29};
  assert_int_equal(cr_tz_from_local(tz, &leap, 0, &t, NULL), 0);
  assert_int_equal(t, utc(2028, 2, 28, 23, 0, 0));
  struct cr_civil far = {.year = 40000, .month = 1, .day = 1};
  assert_int_equal(cr_tz_from_local(tz, &far, 0, &t, NULL), CR_ERANGE);
  assert_int_equal(cr_tz_to_local(tz, INT64_MAX, &c), CR_ERANGE);
  cr_tz_free(tz);
}

/* Round trip: for many instants, local -> UTC gives the instant back (the
 * earliest or latest occurrence, whichever it is), and the kind agrees with
 * whether the local time exists once or twice. */
static void test_round_trip(void **state) {
  (void)state;
  require_tzdata();
  const char *zones[] = {"Europe/Paris",        "America/New_York",
                         "Australia/Lord_Howe", "Pacific/Chatham",
                         "America/Sao_Paulo",   "Europe/Dublin"};
  for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
    cr_tz *tz = load(zones[z]);
    for (int64_t t = utc(1990, 1, 1, 0, 0, 0); t < utc(2060, 1, 1, 0, 0, 0);
         t += 7919 * 60 + 13) {
      struct cr_civil c = local_of(tz, t);
      int64_t e, l;
      int ke, kl;
      assert_int_equal(cr_tz_from_local(tz, &c, CR_TZ_FOLD_EARLIEST, &e, &ke),
                       0);
      assert_int_equal(cr_tz_from_local(tz, &c, CR_TZ_FOLD_LATEST, &l, &kl), 0);
      assert_int_equal(ke, kl);
      assert_true(ke != CR_TZ_LOCAL_GAP);
      if (ke == CR_TZ_LOCAL_UNIQUE)
        assert_true(e == t && l == t);
      else
        assert_true(e < l && (e == t || l == t));
    }
    cr_tz_free(tz);
  }
}

/* Agreement with glibc, which reads the same files (and footers) itself. */
static void test_matches_glibc(void **state) {
  (void)state;
  require_tzdata();
  const char *zones[] = {
      "Europe/Paris",     "America/New_York",  "Australia/Lord_Howe",
      "Pacific/Chatham",  "America/Sao_Paulo", "Europe/Dublin",
      "Asia/Kolkata",     "Africa/Casablanca", "America/St_Johns",
      "Antarctica/Troll", "Pacific/Apia",      "America/Santiago"};
  char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
  for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
    char tzenv[128];
    snprintf(tzenv, sizeof tzenv, ":%s", zones[z]);
    setenv("TZ", tzenv, 1);
    tzset();
    cr_tz *tz = load(zones[z]);
    int64_t step = 86400 * 3 + 3600 * 5 + 17 * 60 + 11;
    for (int64_t t = utc(1850, 1, 1, 0, 0, 0); t < utc(2100, 1, 1, 0, 0, 0);
         t += step) {
      time_t tt = (time_t)t;
      struct tm tm;
      assert_non_null(localtime_r(&tt, &tm));
      struct cr_civil c = local_of(tz, t);
      if (c.utc_offset != tm.tm_gmtoff || c.isdst != (tm.tm_isdst > 0) ||
          c.year != tm.tm_year + 1900 || c.month != tm.tm_mon + 1 ||
          c.day != tm.tm_mday || c.hour != tm.tm_hour ||
          c.minute != tm.tm_min || c.second != tm.tm_sec ||
          c.wday != tm.tm_wday)
        fail_msg("%s at %lld: got %d-%02d-%02d %02d:%02d:%02d off %d dst %d, "
                 "glibc off %ld dst %d",
                 zones[z], (long long)t, c.year, c.month, c.day, c.hour,
                 c.minute, c.second, (int)c.utc_offset, c.isdst,
                 (long)tm.tm_gmtoff, tm.tm_isdst);
    }
    cr_tz_free(tz);
  }
  if (saved) {
    setenv("TZ", saved, 1);
    free(saved);
  } else {
    unsetenv("TZ");
  }
  tzset();
}

static void test_calendar(void **state) {
  (void)state;
  assert_int_equal(cr__days_from_civil(1970, 1, 1), 0);
  assert_int_equal(cr__weekday_from_days(0), 4); /* Thursday */
  for (int64_t d = -800000; d <= 800000; d += 97) {
    int64_t y;
    int m, day;
    cr__civil_from_days(d, &y, &m, &day);
    assert_int_equal(cr__days_from_civil(y, m, day), d);
    assert_true(m >= 1 && m <= 12 && day >= 1 &&
                day <= cr__days_in_month(y, m));
    int wd = cr__weekday_from_days(d);
    assert_int_equal(wd, ((d % 7) + 7 + 4) % 7);
    if (y >= 1900 && y < 2200)
      assert_int_equal(d * 86400, utc((int)y, m, day, 0, 0, 0));
  }
  assert_int_equal(cr__days_in_month(2028, 2), 29);
  assert_int_equal(cr__days_in_month(2100, 2), 28);
  assert_int_equal(cr__days_in_month(2000, 2), 29);
  assert_int_equal(cr__days_in_month(2026, 4), 30);
}

static void test_alloc_failures(void **state) {
  (void)state;
  require_tzdata();
  cr_test_alloc_install();
  const char *names[] = {"Europe/Paris", "UTC"};
  for (size_t z = 0; z < 2; z++) {
    int ok = 0;
    for (long n = 0; n < 100 && !ok; n++) {
      cr_test_alloc_fail_after(n);
      cr_tz *tz = NULL;
      int rc = cr_tz_load(names[z], &tz, NULL, 0);
      if (rc == 0) {
        assert_false(cr_test_alloc_failed());
        assert_offset(tz, utc(2026, 7, 1, 0, 0, 0), z == 0 ? 7200 : 0, z == 0);
        cr_tz_free(tz);
        ok = 1;
      } else {
        assert_int_equal(rc, CR_ENOMEM);
        assert_null(tz);
      }
    }
    assert_true(ok);
  }
  cr_test_alloc_fail_after(-1);
}

/* A failed test must not leave its zoneinfo directory behind. */
static int reset_dir(void **state) {
  (void)state;
  unsetenv("CONNRUN_ZONEINFO");
  return cr_tz_set_dir(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utc),
      cmocka_unit_test(test_paris),
      cmocka_unit_test(test_new_york),
      cmocka_unit_test(test_lord_howe),
      cmocka_unit_test(test_unknown_and_bad_names),
      cmocka_unit_test_teardown(test_slim_file_uses_footer, reset_dir),
      cmocka_unit_test_teardown(test_v1_and_broken_files, reset_dir),
      cmocka_unit_test(test_from_local),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_matches_glibc),
      cmocka_unit_test(test_calendar),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
