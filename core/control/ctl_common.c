/* ctl_common.c: helpers shared by the control files (see ctl_int.h). */
#include "control/ctl_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "exec/tz.h"
#include "util/clock.h"

int64_t cr__ctl_now(const struct cr_ctl *c) {
  return c->now_ms > 0 ? c->now_ms : cr__now_ms();
}

/* Writes v as n decimal digits (zero-padded) at p. */
static char *digits(char *p, int64_t v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10)
    p[i] = (char)('0' + v % 10);
  return p + n;
}

/* By arithmetic rather than gmtime_r: glibc's takes the time zone lock,
 * which every API thread would then contend for several times a request. */
json_t *cr_ctl_jtime(int64_t ms) {
  if (ms <= 0)
    return json_null();
  int64_t s = ms / 1000, sod = s % 86400, year;
  int month, day;
  cr__civil_from_days(s / 86400, &year, &month, &day);
  char buf[48], *p = buf;
  if (year > 9999) /* wider years, as the format gives them */
    p += snprintf(buf, 24, "%" PRId64, year);
  else
    p = digits(p, year, 4);
  *p++ = '-';
  p = digits(p, month, 2);
  *p++ = '-';
  p = digits(p, day, 2);
  *p++ = 'T';
  p = digits(p, sod / 3600, 2);
  *p++ = ':';
  p = digits(p, sod / 60 % 60, 2);
  *p++ = ':';
  p = digits(p, sod % 60, 2);
  *p++ = '.';
  p = digits(p, ms % 1000, 3);
  *p++ = 'Z';
  return json_stringn_nocheck(buf, (size_t)(p - buf));
}

int cr__ctl_is_api(const struct cr_mark *mk) {
  return mk->file != NULL && strcmp(mk->file, "api") == 0;
}

json_t *cr__ctl_managed_by(const struct cr_mark *mk) {
  return json_string(cr__ctl_is_api(mk) ? "api" : "config");
}

json_t *cr__ctl_declared_at(const struct cr_mark *mk, char *where) {
  where[0] = '\0';
  if (cr__ctl_is_api(mk) || mk->file == NULL)
    return json_null();
  snprintf(where, 300, "%s:%d", mk->file, mk->line);
  return json_string(where);
}
