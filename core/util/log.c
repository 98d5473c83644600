/* log.c: formatting helper for the library's log sink (see log.h). */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

void cr__logf(cr_log_fn fn, void *ud, int level, const char *fmt, ...) {
  if (fn == NULL)
    return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fn(ud, level, buf);
}

const char *cr_log_level_name(int level) {
  switch (level) {
  case CR_LOG_DEBUG:
    return "debug";
  case CR_LOG_INFO:
    return "info";
  case CR_LOG_WARN:
    return "warn";
  default:
    return "error";
  }
}
