/* tz.c: owns struct cr_tz: TZif file parsing, POSIX TZ footer rules,
 * UTC <-> local civil time conversion, and the civil calendar helpers. */
#include "exec/tz.h"

#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_DIR_MAX 4000
#define TZ_NAME_MAX 255
#define TZ_FILE_MAX (1024 * 1024)
/* |UTC offset| accepted from a file (RFC 9636 allows -25h..+26h). */
#define TZ_OFFSET_MAX (26 * 3600)
/* |transition time| accepted from a file (zic's "big bang" is -2^59). */
#define TZ_TRANS_MAX (INT64_C(1) << 60)
/* Local time L has its UTC instants within L -+ this many seconds. */
#define TZ_WINDOW (TZ_OFFSET_MAX + 3600)
#define TZ_MAX_SEGMENTS 8

struct tz_type {
  int32_t off;
  int isdst;
};

/* A POSIX TZ rule date: Jn (1-365, February 29 never counted), n (0-365) or
 * Mm.w.d (day d of week w of month m, w = 5 meaning the last), plus the
 * local time of day of the change (may be negative or exceed 24h). */
enum { DATE_JULIAN1, DATE_JULIAN0, DATE_MONTH };

struct tz_date {
  int kind;
  int n, month, week, wday;
  int32_t time;
};

/* A POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"), offsets east of UTC. */
struct tz_rule {
  int32_t std_off, dst_off;
  int has_dst;
  struct tz_date start, end;
};

struct cr_tz {
  char *name;
  size_t ntrans;
  int64_t *trans; /* ntrans transition instants, strictly ascending */
  uint8_t *idx;   /* ntrans indexes into types */
  size_t ntypes;  /* >= 1 */
  struct tz_type *types;
  int has_rule; /* rule applies from the last transition on */
  struct tz_rule rule;
};

static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static char dir_override[TZ_DIR_MAX + 1];

/* ---- calendar ---------------------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0)))
    q--;
  return q;
}

int64_t cr__days_from_civil(int64_t year, int month, int day) {
  int64_t y = year - (month <= 2);
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t mp = month > 2 ? month - 3 : month + 9;
  int64_t doy = (153 * mp + 2) / 5 + day - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void cr__civil_from_days(int64_t days, int64_t *year, int *month, int *day) {
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *day = (int)(doy - (153 * mp + 2) / 5 + 1);
  *month = m;
  *year = yoe + era * 400 + (m <= 2);
}

int cr__weekday_from_days(int64_t days) {
  return (int)(days >= -4 ? (days + 4) % 7 : (days + 5) % 7 + 6);
}

static int is_leap(int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int cr__days_in_month(int64_t year, int month) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12)
    return 0;
  return dim[month - 1] + (month == 2 && is_leap(year));
}

/* ---- messages ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static void
set_err(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

/* ---- POSIX TZ rules ------------------------------------------------------ */

static int is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads 1 to maxdigits digits into *out. */
static int parse_num(const char **s, int maxdigits, int *out) {
  const char *p = *s;
  int v = 0, n = 0;
  while (is_digit(*p) && n < maxdigits) {
    v = v * 10 + (*p++ - '0');
    n++;
  }
  if (n == 0 || is_digit(*p))
    return -1;
  *s = p;
  *out = v;
  return 0;
}

/* A zone abbreviation: 3+ letters, or <...> of letters, digits, + and -. */
static int parse_abbr(const char **s) {
  const char *p = *s, *start;
  if (*p == '<') {
    start = ++p;
    while (is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-')
      p++;
    if (*p != '>' || p - start < 3)
      return -1;
    *s = p + 1;
    return 0;
  }
  start = p;
  while (is_alpha(*p))
    p++;
  if (p - start < 3)
    return -1;
  *s = p;
  return 0;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh, into signed seconds. */
static int parse_hms(const char **s, int maxh, int32_t *out) {
  const char *p = *s;
  int sign = 1, h, m = 0, sec = 0;
  if (*p == '+' || *p == '-')
    sign = *p++ == '-' ? -1 : 1;
  if (parse_num(&p, 3, &h) != 0 || h > maxh)
    return -1;
  if (*p == ':') {
    p++;
    if (parse_num(&p, 2, &m) != 0 || m > 59)
      return -1;
    if (*p == ':') {
      p++;
      if (parse_num(&p, 2, &sec) != 0 || sec > 59)
        return -1;
    }
  }
  *s = p;
  *out = sign * (h * 3600 + m * 60 + sec);
  return 0;
}

static int parse_date(const char **s, struct tz_date *d) {
  const char *p = *s;
  memset(d, 0, sizeof *d);
  if (*p == 'J') {
    p++;
    d->kind = DATE_JULIAN1;
    if (parse_num(&p, 3, &d->n) != 0 || d->n < 1 || d->n > 365)
      return -1;
  } else if (*p == 'M') {
    p++;
    d->kind = DATE_MONTH;
    if (parse_num(&p, 2, &d->month) != 0 || d->month < 1 || d->month > 12 ||
        *p++ != '.' || parse_num(&p, 1, &d->week) != 0 || d->week < 1 ||
        d->week > 5 || *p++ != '.' || parse_num(&p, 1, &d->wday) != 0 ||
        d->wday > 6)
      return -1;
  } else {
    d->kind = DATE_JULIAN0;
    if (parse_num(&p, 3, &d->n) != 0 || d->n > 365)
      return -1;
  }
  d->time = 7200;
  if (*p == '/') {
    p++;
    if (parse_hms(&p, 167, &d->time) != 0)
      return -1;
  }
  *s = p;
  return 0;
}

/* Parses a POSIX TZ string (TZif footer). Returns 0 or -1. */
static int parse_posix(const char *s, struct tz_rule *r) {
  int32_t v;
  memset(r, 0, sizeof *r);
  if (parse_abbr(&s) != 0 || parse_hms(&s, 24, &v) != 0)
    return -1;
  r->std_off = -v;
  if (*s == '\0')
    return 0;
  if (parse_abbr(&s) != 0)
    return -1;
  r->has_dst = 1;
  r->dst_off = r->std_off + 3600;
  if (*s != '\0' && *s != ',') {
    if (parse_hms(&s, 24, &v) != 0)
      return -1;
    r->dst_off = -v;
  }
  if (*s == '\0') /* no rule given: the usual US default */
    s = ",M3.2.0,M11.1.0";
  if (*s++ != ',' || parse_date(&s, &r->start) != 0 || *s++ != ',' ||
      parse_date(&s, &r->end) != 0 || *s != '\0')
    return -1;
  return 0;
}

static int64_t rule_date_day(const struct tz_date *d, int64_t year) {
  int64_t jan1 = cr__days_from_civil(year, 1, 1);
  if (d->kind == DATE_JULIAN1)
    return jan1 + d->n - 1 + (is_leap(year) && d->n >= 60);
  if (d->kind == DATE_JULIAN0)
    return jan1 + d->n;
  int64_t first = cr__days_from_civil(year, d->month, 1);
  int64_t day = first + (d->wday - cr__weekday_from_days(first) + 7) % 7 +
                (int64_t)(d->week - 1) * 7;
  while (day - first >= cr__days_in_month(year, d->month))
    day -= 7;
  return day;
}

/* The two changes of a year: [0] DST starts (given in standard time),
 * [1] DST ends (given in daylight time). */
static void rule_year(const struct tz_rule *r, int64_t year, int64_t at[2]) {
  at[0] = rule_date_day(&r->start, year) * 86400 + r->start.time - r->std_off;
  at[1] = rule_date_day(&r->end, year) * 86400 + r->end.time - r->dst_off;
}

static int64_t rule_base_year(const struct tz_rule *r, int64_t t) {
  int64_t y;
  int m, d;
  cr__civil_from_days(floordiv(t + r->std_off, 86400), &y, &m, &d);
  return y;
}

static struct tz_type rule_lookup(const struct tz_rule *r, int64_t t) {
  struct tz_type ty = {r->std_off, 0};
  if (!r->has_dst)
    return ty;
  int64_t y = rule_base_year(r, t), best = INT64_MIN;
  /* Latest change at or before t; on a tie the later year's change wins
   * (a year-round DST rule ends one year where it starts the next). */
  for (int64_t yy = y - 1; yy <= y + 1; yy++) {
    int64_t at[2];
    rule_year(r, yy, at);
    for (int k = 0; k < 2; k++) {
      if (at[k] <= t && at[k] >= best) {
        best = at[k];
        ty.isdst = k == 0;
      }
    }
  }
  ty.off = ty.isdst ? r->dst_off : r->std_off;
  return ty;
}

static int64_t rule_next(const struct tz_rule *r, int64_t t) {
  int64_t y = rule_base_year(r, t), best = INT64_MAX;
  for (int64_t yy = y - 1; yy <= y + 2; yy++) {
    int64_t at[2];
    rule_year(r, yy, at);
    for (int k = 0; k < 2; k++)
      if (at[k] > t && at[k] < best)
        best = at[k];
  }
  return best;
}

/* ---- lookups ------------------------------------------------------------- */

/* Index of the last transition <= t; requires trans[0] <= t. */
static size_t trans_floor(const cr_tz *tz, int64_t t) {
  size_t lo = 0, hi = tz->ntrans; /* trans[lo] <= t < trans[hi] */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (tz->trans[mid] <= t)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

static struct tz_type tz_lookup(const cr_tz *tz, int64_t t) {
  size_t n = tz->ntrans;
  if (n == 0 || t >= tz->trans[n - 1]) {
    if (tz->has_rule)
      return rule_lookup(&tz->rule, t);
    return tz->types[n == 0 ? 0 : tz->idx[n - 1]];
  }
  if (t < tz->trans[0])
    return tz->types[0];
  return tz->types[tz->idx[trans_floor(tz, t)]];
}

/* First change instant > t, or INT64_MAX. */
static int64_t tz_next(const cr_tz *tz, int64_t t) {
  size_t n = tz->ntrans;
  if (n > 0 && t < tz->trans[n - 1]) {
    if (t < tz->trans[0])
      return tz->trans[0];
    return tz->trans[trans_floor(tz, t) + 1];
  }
  if (tz->has_rule && tz->rule.has_dst)
    return rule_next(&tz->rule, t);
  return INT64_MAX;
}

static int in_range(int64_t s) {
  return s >= -CR_TZ_MAX_SECONDS && s <= CR_TZ_MAX_SECONDS;
}

int cr_tz_to_local(const cr_tz *tz, int64_t utc_s, struct cr_civil *out) {
  if (tz == NULL || out == NULL)
    return CR_EINVAL;
  if (!in_range(utc_s))
    return CR_ERANGE;
  struct tz_type ty = tz_lookup(tz, utc_s);
  int64_t lt = utc_s + ty.off, days = floordiv(lt, 86400), y;
  int64_t sod = lt - days * 86400;
  memset(out, 0, sizeof *out);
  cr__civil_from_days(days, &y, &out->month, &out->day);
  out->year = (int)y;
  out->hour = (int)(sod / 3600);
  out->minute = (int)(sod / 60 % 60);
  out->second = (int)(sod % 60);
  out->wday = cr__weekday_from_days(days);
  out->utc_offset = ty.off;
  out->isdst = ty.isdst;
  return 0;
}

int cr_tz_next_transition(const cr_tz *tz, int64_t utc_s, int64_t *next) {
  if (tz == NULL || next == NULL)
    return CR_EINVAL;
  if (!in_range(utc_s))
    return CR_ERANGE;
  int64_t t = tz_next(tz, utc_s);
  if (t == INT64_MAX)
    return CR_ENOENT;
  *next = t;
  return 0;
}

struct segment {
  int64_t start; /* UTC instant the offset starts (window start for [0]) */
  int32_t off;
};

/* Offsets in force over the UTC window around local time L. */
static size_t window_segments(const cr_tz *tz, int64_t L, struct segment *seg) {
  int64_t t = L - TZ_WINDOW, end = L + TZ_WINDOW;
  size_t n = 0;
  seg[n].start = t;
  seg[n++].off = tz_lookup(tz, t).off;
  while (n < TZ_MAX_SEGMENTS) {
    t = tz_next(tz, t);
    if (t > end)
      break;
    seg[n].start = t;
    seg[n++].off = tz_lookup(tz, t).off;
  }
  return n;
}

int cr_tz_local_to_utc(const cr_tz *tz, int64_t local_s, int policy,
                       int64_t *utc_s, int *kind) {
  if (tz == NULL || utc_s == NULL)
    return CR_EINVAL;
  if (!in_range(local_s))
    return CR_ERANGE;
  struct segment seg[TZ_MAX_SEGMENTS];
  size_t n = window_segments(tz, local_s, seg);
  int64_t first = 0, last = 0;
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t u = local_s - seg[i].off;
    if (u < seg[i].start || (i + 1 < n && u >= seg[i + 1].start))
      continue;
    if (!found)
      first = u;
    last = u;
    found++;
  }
  if (found > 0) {
    *utc_s = (policy & CR_TZ_FOLD_LATEST) ? last : first;
    if (kind != NULL)
      *kind = found > 1 ? CR_TZ_LOCAL_OVERLAP : CR_TZ_LOCAL_UNIQUE;
    return 0;
  }
  /* A gap: some change at T moved the offset from seg[i] to seg[i + 1]
   * past local_s (see the proof in the loop condition). */
  for (size_t i = 0; i + 1 < n; i++) {
    int64_t t = seg[i + 1].start;
    if (local_s - seg[i].off >= t && local_s - seg[i + 1].off < t) {
      *utc_s = (policy & CR_TZ_GAP_SHIFT) ? local_s - seg[i].off : t;
      if (kind != NULL)
        *kind = CR_TZ_LOCAL_GAP;
      return 0;
    }
  }
  return CR_ERANGE; /* unreachable unless > TZ_MAX_SEGMENTS changes */
}

int cr_tz_from_local(const cr_tz *tz, const struct cr_civil *local, int policy,
                     int64_t *utc_s, int *kind) {
  if (tz == NULL || local == NULL || utc_s == NULL)
    return CR_EINVAL;
  const struct cr_civil *c = local;
  if (c->year < -30000 || c->year > 30000)
    return CR_ERANGE;
  if (c->month < 1 || c->month > 12 || c->day < 1 ||
      c->day > cr__days_in_month(c->year, c->month) || c->hour < 0 ||
      c->hour > 23 || c->minute < 0 || c->minute > 59 || c->second < 0 ||
      c->second > 59)
    return CR_EINVAL;
  int64_t L = cr__days_from_civil(c->year, c->month, c->day) * 86400 +
              c->hour * 3600 + c->minute * 60 + c->second;
  return cr_tz_local_to_utc(tz, L, policy, utc_s, kind);
}

/* ---- TZif ---------------------------------------------------------------- */

struct reader {
  const uint8_t *p;
  size_t len, pos;
};

struct tzhead {
  int version;
  uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static int64_t be64(const uint8_t *p) {
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static const char *read_head(struct reader *r, struct tzhead *h) {
  if (r->len - r->pos < 44)
    return "truncated header";
  const uint8_t *p = r->p + r->pos;
  if (memcmp(p, "TZif", 4) != 0)
    return "not a TZif file";
  if (p[4] == 0)
    h->version = 1;
  else if (p[4] >= '2' && p[4] <= '9')
    h->version = p[4] - '0';
  else
    return "unknown TZif version";
  uint32_t *cnt[6] = {&h->isutcnt, &h->isstdcnt, &h->leapcnt,
                      &h->timecnt, &h->typecnt,  &h->charcnt};
  for (int i = 0; i < 6; i++)
    *cnt[i] = be32(p + 20 + 4 * i);
  r->pos += 44;
  return NULL;
}

static uint64_t block_size(const struct tzhead *h, unsigned tsz) {
  return (uint64_t)h->timecnt * tsz + h->timecnt + (uint64_t)h->typecnt * 6 +
         h->charcnt + (uint64_t)h->leapcnt * (tsz + 4) + h->isstdcnt +
         h->isutcnt;
}

/* Reads the data block after header h into tz (times are tsz bytes). */
static const char *read_block(struct reader *r, const struct tzhead *h,
                              unsigned tsz, cr_tz *tz, int *nomem) {
  if (block_size(h, tsz) > r->len - r->pos)
    return "truncated data";
  if (h->typecnt == 0 || h->typecnt > 256)
    return "bad type count";
  if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
      (h->isutcnt != 0 && h->isutcnt != h->typecnt))
    return "bad indicator count";
  const uint8_t *p = r->p + r->pos;
  tz->trans = cr__malloc(sizeof *tz->trans * (h->timecnt ? h->timecnt : 1));
  tz->idx = cr__malloc(h->timecnt ? h->timecnt : 1);
  tz->types = cr__malloc(sizeof *tz->types * h->typecnt);
  if (tz->trans == NULL || tz->idx == NULL || tz->types == NULL) {
    *nomem = 1;
    return "out of memory";
  }
  tz->ntrans = h->timecnt;
  tz->ntypes = h->typecnt;
  for (uint32_t i = 0; i < h->timecnt; i++, p += tsz) {
    int64_t t = tsz == 4 ? (int64_t)(int32_t)be32(p) : be64(p);
    if (t < -TZ_TRANS_MAX || t > TZ_TRANS_MAX)
      return "transition time out of range";
    if (i > 0 && t <= tz->trans[i - 1])
      return "transition times not ascending";
    tz->trans[i] = t;
  }
  for (uint32_t i = 0; i < h->timecnt; i++, p++) {
    if (*p >= h->typecnt)
      return "bad local time type index";
    tz->idx[i] = *p;
  }
  for (uint32_t i = 0; i < h->typecnt; i++, p += 6) {
    int32_t off = (int32_t)be32(p);
    if (off < -TZ_OFFSET_MAX || off > TZ_OFFSET_MAX || p[4] > 1 ||
        (h->charcnt > 0 && p[5] >= h->charcnt))
      return "bad local time type";
    tz->types[i].off = off;
    tz->types[i].isdst = p[4];
  }
  r->pos += block_size(h, tsz);
  return NULL;
}

/* Reads the "\nTZ string\n" footer of a version 2+ file, if any. */
static const char *read_footer(struct reader *r, cr_tz *tz) {
  if (r->pos >= r->len)
    return NULL; /* tolerated: behave like an empty footer */
  const char *s = (const char *)r->p + r->pos;
  size_t left = r->len - r->pos;
  if (s[0] != '\n')
    return "bad footer";
  const char *end = memchr(s + 1, '\n', left - 1);
  if (end == NULL || end - s - 1 > 255)
    return "bad footer";
  if (end == s + 1)
    return NULL;
  char buf[256];
  memcpy(buf, s + 1, (size_t)(end - s - 1));
  buf[end - s - 1] = '\0';
  if (parse_posix(buf, &tz->rule) != 0)
    return "bad POSIX TZ string in footer";
  tz->has_rule = 1;
  return NULL;
}

static const char *parse_tzif(const uint8_t *data, size_t len, cr_tz *tz,
                              int *nomem) {
  struct reader r = {data, len, 0};
  struct tzhead h;
  const char *why = read_head(&r, &h);
  if (why != NULL)
    return why;
  if (h.version == 1)
    return read_block(&r, &h, 4, tz, nomem);
  uint64_t skip = block_size(&h, 4);
  if (skip > r.len - r.pos)
    return "truncated data";
  r.pos += skip;
  if ((why = read_head(&r, &h)) != NULL)
    return why;
  if ((why = read_block(&r, &h, 8, tz, nomem)) != NULL)
    return why;
  return read_footer(&r, tz);
}

/* ---- loading ------------------------------------------------------------- */

int cr_tz_set_dir(const char *dir) {
  if (dir != NULL && strlen(dir) > TZ_DIR_MAX)
    return CR_ERANGE;
  pthread_mutex_lock(&dir_lock);
  snprintf(dir_override, sizeof dir_override, "%s", dir ? dir : "");
  pthread_mutex_unlock(&dir_lock);
  return 0;
}

static void zone_dir(char *buf, size_t len) {
  pthread_mutex_lock(&dir_lock);
  snprintf(buf, len, "%s", dir_override);
  pthread_mutex_unlock(&dir_lock);
  if (buf[0] != '\0')
    return;
  const char *env = getenv("CONNRUN_ZONEINFO");
  snprintf(buf, len, "%s", env && env[0] ? env : TZ_DEFAULT_DIR);
}

static int check_name(const char *name, char *errbuf, size_t errlen) {
  if (name[0] == '\0') {
    set_err(errbuf, errlen, "empty time zone name");
    return CR_EINVAL;
  }
  if (strlen(name) > TZ_NAME_MAX) {
    set_err(errbuf, errlen, "time zone name longer than %d bytes", TZ_NAME_MAX);
    return CR_EINVAL;
  }
  if (name[0] == '/' || strstr(name, "..") != NULL) {
    set_err(errbuf, errlen,
            "invalid time zone name \"%s\": must be a relative name without "
            "\"..\"",
            name);
    return CR_EINVAL;
  }
  for (const char *p = name; *p; p++) {
    if (is_alpha(*p) || is_digit(*p) || strchr("/_+-.", *p) != NULL)
      continue;
    set_err(errbuf, errlen,
            "invalid time zone name \"%s\": unexpected "
            "character '%c'",
            name, *p >= 0x20 && *p < 0x7f ? *p : '?');
    return CR_EINVAL;
  }
  return 0;
}

/* Reads a whole regular file into *out (cr__free). */
static int read_zone_file(const char *name, const char *path, uint8_t **out,
                          size_t *len, char *errbuf, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = errno;
    int unknown = fd >= 0 || e == ENOENT || e == ENOTDIR;
    if (fd >= 0)
      close(fd);
    if (unknown) {
      set_err(errbuf, errlen, "unknown time zone \"%s\"", name);
      return CR_ENOENT;
    }
    set_err(errbuf, errlen, "cannot open time zone file %s: %s", path,
            strerror(e));
    return CR_EIO;
  }
  if (st.st_size > TZ_FILE_MAX) {
    close(fd);
    set_err(errbuf, errlen, "time zone file %s is too large", path);
    return CR_EPARSE;
  }
  uint8_t *buf = cr__malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    close(fd);
    return CR_ENOMEM;
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  *out = buf;
  *len = got;
  return 0;
}

void cr_tz_free(cr_tz *tz) {
  if (tz == NULL)
    return;
  cr__free(tz->name);
  cr__free(tz->trans);
  cr__free(tz->idx);
  cr__free(tz->types);
  cr__free(tz);
}

static int make_utc(cr_tz **out) {
  cr_tz *tz = cr__calloc(1, sizeof *tz);
  if (tz == NULL)
    return CR_ENOMEM;
  tz->name = cr__strdup("UTC");
  tz->types = cr__calloc(1, sizeof *tz->types);
  if (tz->name == NULL || tz->types == NULL) {
    cr_tz_free(tz);
    return CR_ENOMEM;
  }
  tz->ntypes = 1;
  *out = tz;
  return 0;
}

int cr_tz_load(const char *name, cr_tz **out, char *errbuf, size_t errlen) {
  if (out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (name == NULL || strcmp(name, "UTC") == 0)
    return make_utc(out);
  int rc = check_name(name, errbuf, errlen);
  if (rc != 0)
    return rc;
  char dir[TZ_DIR_MAX + 1], path[TZ_DIR_MAX + TZ_NAME_MAX + 2];
  zone_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  uint8_t *data = NULL;
  size_t len = 0;
  if ((rc = read_zone_file(name, path, &data, &len, errbuf, errlen)) != 0)
    return rc;
  cr_tz *tz = cr__calloc(1, sizeof *tz);
  int nomem = tz == NULL;
  const char *why = tz ? parse_tzif(data, len, tz, &nomem) : NULL;
  cr__free(data);
  if (tz != NULL && !nomem && why == NULL &&
      (tz->name = cr__strdup(name)) == NULL)
    nomem = 1;
  if (nomem || why != NULL) {
    cr_tz_free(tz);
    if (nomem)
      return CR_ENOMEM;
    set_err(errbuf, errlen, "bad time zone file %s: %s", path, why);
    return CR_EPARSE;
  }
  *out = tz;
  return 0;
}

const char *cr_tz_name(const cr_tz *tz) { return tz ? tz->name : NULL; }
