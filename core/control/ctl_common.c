/* ctl_common.c: helpers shared by the control files (see ctl_int.h). */
#include "control/ctl_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"

int64_t cr__ctl_now(const struct cr_ctl *c) {
  return c->now_ms > 0 ? c->now_ms : cr__now_ms();
}

json_t *cr_ctl_jtime(int64_t ms) {
  if (ms <= 0)
    return json_null();
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  char buf[64];
  gmtime_r(&s, &tm);
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, (int)(ms % 1000 + 1000) % 1000);
  return json_string(buf);
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
