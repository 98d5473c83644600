/* schedule.c: owns struct cr_schedule: "every" intervals and cron
 * expressions (parsing, validation messages, description) and the next-run
 * search in a time zone with the DST policy documented in schedule.h. */
#include "exec/schedule.h"

#include "exec/tz.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How far cr_schedule_next looks before giving up (5 years). */
#define HORIZON_S (INT64_C(5) * 366 * 86400)
/* Instants accepted, in seconds: leaves room for the horizon. */
#define LIMIT_S (CR_TZ_MAX_SECONDS - 2 * HORIZON_S)
#define FIELD_TEXT_MAX 128

enum { KIND_EVERY, KIND_CRON };

struct cr_schedule {
  int kind;
  int64_t every_s;
  uint64_t minutes; /* bit n: minute n matches */
  uint32_t hours;
  uint32_t mdays;  /* bits 1-31 */
  uint32_t months; /* bits 1-12 */
  uint32_t wdays;  /* bits 0-6, 0 = Sunday */
  int dom_star, dow_star, all_hours;
  char *text; /* cron fields as written, single spaces */
  cr_tz *tz;
};

__attribute__((format(printf, 3, 4))) static void
set_err(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static char printable(char c) { return c >= 0x20 && c < 0x7f ? c : '?'; }

void cr_schedule_free(cr_schedule *s) {
  if (s == NULL)
    return;
  cr__free(s->text);
  cr_tz_free(s->tz);
  cr__free(s);
}

/* ---- every ----------------------------------------------------------- */

static int parse_duration(const char *text, int64_t *out, char *errbuf,
                          size_t errlen) {
  static const char units[] = "dhms";
  static const int64_t mult[] = {86400, 3600, 60, 1};
  const char *p = text;
  int64_t total = 0;
  int last = -1;
  if (*p == '\0') {
    set_err(errbuf, errlen, "bad duration \"\": empty");
    return CR_EINVAL;
  }
  while (*p != '\0') {
    if (!is_digit(*p)) {
      set_err(errbuf, errlen, "bad duration \"%s\": expected a number at '%c'",
              text, printable(*p));
      return CR_EINVAL;
    }
    int64_t n = 0;
    while (is_digit(*p)) {
      if (n < INT64_C(1000000000)) /* beyond: too long anyway */
        n = n * 10 + (*p - '0');
      p++;
    }
    const char *u = *p ? strchr(units, *p) : NULL;
    if (u == NULL) {
      if (*p == '\0')
        set_err(errbuf, errlen,
                "bad duration \"%s\": missing unit after %lld (use s, m, h, "
                "d)",
                text, (long long)n);
      else
        set_err(errbuf, errlen,
                "bad duration \"%s\": unknown unit '%c' (use s, m, h, d)", text,
                printable(*p));
      return CR_EINVAL;
    }
    int k = (int)(u - units);
    if (k <= last) {
      set_err(errbuf, errlen,
              "bad duration \"%s\": unit '%c' repeated or out of order (write "
              "d, h, m, s in that order)",
              text, *p);
      return CR_EINVAL;
    }
    last = k;
    total += n * mult[k];
    p++;
  }
  if (total == 0) {
    set_err(errbuf, errlen, "bad duration \"%s\": must be greater than 0",
            text);
    return CR_EINVAL;
  }
  if (total > CR_SCHEDULE_MAX_EVERY_S) {
    set_err(errbuf, errlen, "bad duration \"%s\": longer than 366d", text);
    return CR_EINVAL;
  }
  *out = total;
  return 0;
}

int cr_schedule_parse_every(const char *every, cr_schedule **out, char *errbuf,
                            size_t errlen) {
  if (every == NULL || out == NULL)
    return CR_EINVAL;
  *out = NULL;
  int64_t secs;
  int rc = parse_duration(every, &secs, errbuf, errlen);
  if (rc != 0)
    return rc;
  cr_schedule *s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return CR_ENOMEM;
  s->kind = KIND_EVERY;
  s->every_s = secs;
  *out = s;
  return 0;
}

/* ---- cron parsing ------------------------------------------------------ */

static const char *const month_names[] = {"jan", "feb", "mar", "apr",
                                          "may", "jun", "jul", "aug",
                                          "sep", "oct", "nov", "dec"};
static const char *const wday_names[] = {"sun", "mon", "tue", "wed",
                                         "thu", "fri", "sat"};

struct field_def {
  const char *name;
  int lo, hi;
  const char *const *names; /* value of names[i] is i + name_base */
  int name_count, name_base;
  const char *name_kind;
};

static const struct field_def field_defs[5] = {
    {"minute", 0, 59, NULL, 0, 0, NULL},
    {"hour", 0, 23, NULL, 0, 0, NULL},
    {"day-of-month", 1, 31, NULL, 0, 0, NULL},
    {"month", 1, 12, month_names, 12, 1, "month"},
    {"day-of-week", 0, 7, wday_names, 7, 0, "weekday"},
};

/* Context for messages about one field. */
struct field_ctx {
  const struct field_def *def;
  int index; /* 1-based */
  char *errbuf;
  size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int
field_err(const struct field_ctx *f, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  set_err(f->errbuf, f->errlen, "cron field %d (%s): %s", f->index,
          f->def->name, msg);
  return CR_EINVAL;
}

static int lookup_name(const struct field_def *d, const char *s, size_t n) {
  if (n != 3)
    return -1;
  for (int i = 0; i < d->name_count; i++)
    if (lower(s[0]) == d->names[i][0] && lower(s[1]) == d->names[i][1] &&
        lower(s[2]) == d->names[i][2])
      return i + d->name_base;
  return -1;
}

/* One value: a number in range or, for month and day-of-week, a name. */
static int parse_value(const struct field_ctx *f, const char **p, int *out) {
  const struct field_def *d = f->def;
  const char *s = *p, *e = s;
  while (is_digit(*e) || is_alpha(*e))
    e++;
  int n = (int)(e - s);
  if (n == 0) {
    if (*s == '\0' || *s == ',')
      return field_err(f, "missing value at end of item");
    return field_err(f, "unexpected '%c'", printable(*s));
  }
  int digits = 1;
  for (const char *q = s; q < e; q++)
    digits &= is_digit(*q);
  if (digits) {
    long v = 0;
    for (const char *q = s; q < e && v <= 1000000; q++)
      v = v * 10 + (*q - '0');
    if (v < d->lo || v > d->hi)
      return field_err(f, "%.*s is out of range %d-%d", n, s, d->lo, d->hi);
    *out = (int)v;
  } else if (d->names != NULL && !is_digit(*s)) {
    int v = lookup_name(d, s, (size_t)n);
    if (v < 0)
      return field_err(f, "unknown %s name \"%.*s\"", d->name_kind, n, s);
    *out = v;
  } else {
    return field_err(f, "\"%.*s\" is not a number", n, s);
  }
  *p = e;
  return 0;
}

static int parse_step(const struct field_ctx *f, const char **p, int *step) {
  const char *s = *p, *e = s;
  long v = 0;
  while (is_digit(*e)) {
    if (v <= 1000000)
      v = v * 10 + (*e - '0');
    e++;
  }
  if (e == s)
    return field_err(f, "expected a number after '/'");
  if (v < 1 || v > f->def->hi)
    return field_err(f, "step %.*s is out of range 1-%d", (int)(e - s), s,
                     f->def->hi);
  *step = (int)v;
  *p = e;
  return 0;
}

/* One list item: "*", "N", "N-M", each optionally "/STEP". */
static int parse_item(const struct field_ctx *f, const char **p,
                      uint64_t *bits) {
  const struct field_def *d = f->def;
  int lo = d->lo, hi = d->hi, step = 1, rc;
  if (**p == '*') {
    (*p)++;
  } else {
    if ((rc = parse_value(f, p, &lo)) != 0)
      return rc;
    hi = lo;
    if (**p == '-') {
      (*p)++;
      if ((rc = parse_value(f, p, &hi)) != 0)
        return rc;
      if (hi < lo)
        return field_err(f, "range %d-%d has its start after its end", lo, hi);
    } else if (**p == '/') {
      hi = d->hi;
    }
  }
  if (**p == '/') {
    (*p)++;
    if ((rc = parse_step(f, p, &step)) != 0)
      return rc;
  }
  if (**p != '\0' && **p != ',')
    return field_err(f, "unexpected '%c'", printable(**p));
  for (int v = lo; v <= hi; v += step)
    *bits |= UINT64_C(1) << v;
  return 0;
}

static int parse_field(const struct field_ctx *f, const char *text,
                       uint64_t *bits) {
  const char *p = text;
  *bits = 0;
  for (;;) {
    if (*p == ',' || *p == '\0')
      return field_err(f, "empty list item");
    int rc = parse_item(f, &p, bits);
    if (rc != 0)
      return rc;
    if (*p == '\0')
      return 0;
    p++; /* ',' */
  }
}

static const struct {
  const char *name, *fields;
} macros[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

static int same_lower(const char *a, const char *b) {
  while (*a && lower(*a) == *b)
    a++, b++;
  return *a == '\0' && *b == '\0';
}

/* Splits text into at most 6 whitespace-separated fields copied into
 * tok[i] (FIELD_TEXT_MAX each); returns the number of fields seen. */
static int split_fields(const char *text, char tok[6][FIELD_TEXT_MAX],
                        int *too_long) {
  int n = 0;
  *too_long = 0;
  const char *p = text;
  for (;;) {
    while (is_space(*p))
      p++;
    if (*p == '\0')
      return n;
    const char *start = p;
    while (*p && !is_space(*p))
      p++;
    size_t len = (size_t)(p - start);
    if (n < 6) {
      if (len >= FIELD_TEXT_MAX)
        *too_long = n + 1;
      else
        memcpy(tok[n], start, len), tok[n][len] = '\0';
    }
    n++;
  }
}

static int expand_macro(const char *word, const char **fields, char *errbuf,
                        size_t errlen) {
  for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
    if (same_lower(word, macros[i].name)) {
      *fields = macros[i].fields;
      return 0;
    }
  }
  if (same_lower(word, "@reboot"))
    set_err(errbuf, errlen, "cron macro \"%s\" is not supported", word);
  else
    set_err(errbuf, errlen, "unknown cron macro \"%s\"", word);
  return CR_EINVAL;
}

/* Parses the five fields of text into s. */
static int parse_fields(cr_schedule *s, const char *text, char *errbuf,
                        size_t errlen) {
  char tok[6][FIELD_TEXT_MAX];
  int too_long, n = split_fields(text, tok, &too_long);
  if (n >= 1 && tok[0][0] == '@' && !too_long) {
    const char *fields;
    if (n != 1) {
      set_err(errbuf, errlen, "cron macro \"%s\" takes no other fields",
              tok[0]);
      return CR_EINVAL;
    }
    int rc = expand_macro(tok[0], &fields, errbuf, errlen);
    if (rc != 0)
      return rc;
    return parse_fields(s, fields, errbuf, errlen);
  }
  if (n != 5) {
    set_err(errbuf, errlen, "expected 5 fields, got %d", n);
    return CR_EINVAL;
  }
  uint64_t bits[5];
  for (int i = 0; i < 5; i++) {
    struct field_ctx f = {&field_defs[i], i + 1, errbuf, errlen};
    if (too_long == i + 1)
      return field_err(&f, "too long");
    int rc = parse_field(&f, tok[i], &bits[i]);
    if (rc != 0)
      return rc;
  }
  s->minutes = bits[0];
  s->hours = (uint32_t)bits[1];
  s->mdays = (uint32_t)bits[2];
  s->months = (uint32_t)bits[3];
  s->wdays = (uint32_t)((bits[4] | bits[4] >> 7) & 0x7f); /* 7 = Sunday */
  s->dom_star = tok[2][0] == '*';
  s->dow_star = tok[4][0] == '*';
  s->all_hours = s->hours == 0xffffffu;
  return 0;
}

/* Copies text with runs of whitespace collapsed to one space, trimmed. */
static char *normalize(const char *text) {
  char *out = cr__malloc(strlen(text) + 1), *q = out;
  if (out == NULL)
    return NULL;
  for (const char *p = text; *p;) {
    if (is_space(*p)) {
      while (is_space(*p))
        p++;
      if (q != out && *p)
        *q++ = ' ';
      continue;
    }
    *q++ = *p++;
  }
  *q = '\0';
  return out;
}

int cr_schedule_parse_cron(const char *expr, const char *tz, cr_schedule **out,
                           char *errbuf, size_t errlen) {
  if (expr == NULL || out == NULL)
    return CR_EINVAL;
  *out = NULL;
  cr_schedule *s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return CR_ENOMEM;
  s->kind = KIND_CRON;
  int rc = parse_fields(s, expr, errbuf, errlen);
  if (rc != 0)
    goto fail;
  rc = CR_ENOMEM;
  if ((s->text = normalize(expr)) == NULL)
    goto fail;
  if ((rc = cr_tz_load(tz, &s->tz, errbuf, errlen)) != 0)
    goto fail;
  *out = s;
  return 0;
fail:
  cr_schedule_free(s);
  return rc;
}

/* ---- next run ---------------------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0)))
    q--;
  return q;
}

/* Smallest set bit >= from in mask, or -1. */
static int next_bit(uint64_t mask, int from) {
  if (from > 63)
    return -1;
  mask >>= from;
  if (mask == 0)
    return -1;
  return from + __builtin_ctzll(mask);
}

static int day_matches(const cr_schedule *s, int64_t y, int mo, int d) {
  int dom = (s->mdays >> d) & 1;
  int dow =
      (s->wdays >> cr__weekday_from_days(cr__days_from_civil(y, mo, d))) & 1;
  if (s->dom_star || s->dow_star)
    return dom && dow;
  return dom || dow;
}

/* A local civil minute being searched. */
struct cursor {
  int64_t y;
  int mo, d, h, mi;
};

static void next_day(struct cursor *c) {
  c->h = c->mi = 0;
  if (++c->d <= cr__days_in_month(c->y, c->mo))
    return;
  c->d = 1;
  if (++c->mo > 12) {
    c->mo = 1;
    c->y++;
  }
}

/* First local time (local seconds, see cr_tz_local_to_utc) >= from whose
 * minute matches the fields, into *match; 0 when none is < limit. Skips
 * whole months, days and hours that cannot match. */
static int find_local(const cr_schedule *s, int64_t from, int64_t limit,
                      int64_t *match) {
  int64_t mins = floordiv(from + 59, 60), days = floordiv(mins, 1440);
  int mod = (int)(mins - days * 1440);
  struct cursor c = {0, 0, 0, mod / 60, mod % 60};
  cr__civil_from_days(days, &c.y, &c.mo, &c.d);
  for (;;) {
    int64_t at =
        (cr__days_from_civil(c.y, c.mo, c.d) * 1440 + c.h * 60 + c.mi) * 60;
    if (at >= limit)
      return 0;
    if (!((s->months >> c.mo) & 1)) {
      int m = next_bit(s->months, c.mo + 1);
      c.y += m < 0;
      c.mo = m < 0 ? next_bit(s->months, 1) : m;
      c.d = 1, c.h = 0, c.mi = 0;
    } else if (!day_matches(s, c.y, c.mo, c.d)) {
      next_day(&c);
    } else if (!((s->hours >> c.h) & 1)) {
      int h = next_bit(s->hours, c.h + 1);
      if (h < 0)
        next_day(&c);
      else
        c.h = h, c.mi = 0;
    } else if (!((s->minutes >> c.mi) & 1)) {
      int m = next_bit(s->minutes, c.mi + 1);
      if (m >= 0)
        c.mi = m;
      else if (c.h < 23)
        c.h++, c.mi = 0;
      else
        next_day(&c);
    } else {
      *match = at;
      return 1;
    }
  }
}

static int32_t offset_at(const cr_tz *tz, int64_t t) {
  struct cr_civil c;
  if (cr_tz_to_local(tz, t, &c) != 0)
    return 0;
  return c.utc_offset;
}

/* True unless local time L (reached at instant u) already occurred earlier
 * (the second pass of a fall-back overlap). */
static int first_occurrence(const cr_tz *tz, int64_t L, int64_t u) {
  int64_t first;
  if (cr_tz_local_to_utc(tz, L, CR_TZ_FOLD_EARLIEST, &first, NULL) != 0)
    return 1;
  return first == u;
}

/* Cron: first run at or after UTC second u0. Walks the zone's offset
 * segments; within one, local time is UTC plus a constant offset. */
static int cron_next(const cr_schedule *s, int64_t u0, int64_t *out) {
  int64_t horizon = u0 + HORIZON_S, seg = u0, match, end;
  int32_t off = offset_at(s->tz, seg), prev = offset_at(s->tz, seg - 1);
  for (;;) {
    if (cr_tz_next_transition(s->tz, seg, &end) != 0 || end > horizon)
      end = horizon + 1;
    /* Spring forward at seg: the skipped local times run at seg, once. */
    if (!s->all_hours && off > prev &&
        find_local(s, seg + prev, seg + off, &match)) {
      *out = seg;
      return 0;
    }
    int64_t from = seg + off;
    while (find_local(s, from, end + off, &match)) {
      int64_t u = match - off;
      /* Fall back: a repeated time runs at its first occurrence only,
       * except for jobs that run every hour (every real hour). */
      if (s->all_hours || first_occurrence(s->tz, match, u)) {
        *out = u;
        return 0;
      }
      from = match + 60;
    }
    if (end > horizon)
      return CR_ENOENT;
    prev = off;
    seg = end;
    off = offset_at(s->tz, seg);
  }
}

static int every_next(const cr_schedule *s, int64_t anchor_ms, int64_t after_ms,
                      int64_t *next_ms) {
  int64_t step = s->every_s * 1000;
  *next_ms = anchor_ms + (floordiv(after_ms - anchor_ms, step) + 1) * step;
  return 0;
}

static int ms_in_range(int64_t ms) {
  return ms >= -LIMIT_S * 1000 && ms <= LIMIT_S * 1000;
}

int cr_schedule_next(const cr_schedule *s, int64_t anchor_ms, int64_t after_ms,
                     int64_t *next_ms) {
  if (s == NULL || next_ms == NULL)
    return CR_EINVAL;
  if (!ms_in_range(after_ms) || !ms_in_range(anchor_ms))
    return CR_ERANGE;
  if (s->kind == KIND_EVERY)
    return every_next(s, anchor_ms, after_ms, next_ms);
  int64_t u;
  int rc = cron_next(s, floordiv(after_ms, 1000) + 1, &u);
  if (rc == 0)
    *next_ms = u * 1000;
  return rc;
}

int cr_schedule_due(const cr_schedule *s, int64_t anchor_ms,
                    int64_t last_run_ms, int64_t now_ms, int *due,
                    int64_t *next_ms) {
  if (s == NULL || due == NULL || next_ms == NULL)
    return CR_EINVAL;
  int64_t since = last_run_ms != 0 ? last_run_ms : anchor_ms, first;
  *due = 0;
  /* A slot in (since, now]? Searched in horizon-long steps so a run that is
   * more than one horizon after since is still found. */
  while (since < now_ms) {
    int rc = cr_schedule_next(s, anchor_ms, since, &first);
    if (rc == 0) {
      *due = first <= now_ms;
      break;
    }
    if (rc != CR_ENOENT)
      return rc;
    since += HORIZON_S * 1000;
  }
  return cr_schedule_next(s, anchor_ms, now_ms, next_ms);
}

/* ---- description ------------------------------------------------------- */

static int describe_every(int64_t secs, char *buf, size_t len) {
  static const char units[] = "dhms";
  static const int64_t mult[] = {86400, 3600, 60, 1};
  int n = snprintf(buf, len, "every ");
  for (int i = 0; i < 4; i++) {
    int64_t v = secs / mult[i];
    secs %= mult[i];
    if (v == 0)
      continue;
    size_t used = (size_t)n < len ? (size_t)n : len;
    n += snprintf(buf + used, len - used, "%lld%c", (long long)v, units[i]);
  }
  return n;
}

int cr_schedule_describe(const cr_schedule *s, char *buf, size_t len) {
  if (s == NULL || buf == NULL)
    return CR_EINVAL;
  int n;
  if (s->kind == KIND_EVERY)
    n = describe_every(s->every_s, buf, len);
  else
    n = snprintf(buf, len, "cron %s (%s)", s->text, cr_tz_name(s->tz));
  return n < 0 || (size_t)n >= len ? CR_ERANGE : 0;
}
