/* export_table.c: opening an export table by its destination URL (the
 * backend is chosen by the scheme), and what the backends share: error
 * messages, URLs without passwords, event times as RFC 3339 text. */
#include "export/export_int.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void cr__export_err(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

static int is_ident(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > 63 || (n[0] >= '0' && n[0] <= '9'))
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
          (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
      return 0;
  return 1;
}

int cr_export_table_open(const char *url, const char *table,
                         cr_export_table **out, char *errbuf, size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (url == NULL || table == NULL || out == NULL)
    return CR_EINVAL;
  if (!is_ident(table)) {
    cr__export_err(errbuf, errlen, "table name '%.64s' is not a plain name",
                   table);
    return CR_EINVAL;
  }
  if (strncmp(url, "postgresql://", 13) == 0 ||
      strncmp(url, "postgres://", 11) == 0)
    return cr__export_pg_open(url, table, out, errbuf, errlen);
  if (strncmp(url, "sqlite:", 7) == 0) {
    const char *path = url + 7;
    if (strncmp(path, "//", 2) == 0)
      path += 2;
    if (*path == '\0') {
      cr__export_err(errbuf, errlen, "export destination '%s' has no path",
                     url);
      return CR_EINVAL;
    }
    return cr__export_sqlite_open(path, table, out, errbuf, errlen);
  }
  char safe[256];
  cr_export_url_redact(url, safe, sizeof safe);
  cr__export_err(errbuf, errlen,
                 "unknown export destination '%s' (expected sqlite:/path.db "
                 "or postgresql://...)",
                 safe);
  return CR_EINVAL;
}

int cr_export_table_write(cr_export_table *t, const struct cr_event_rec *ev,
                          size_t n, size_t *inserted, char *errbuf,
                          size_t errlen) {
  if (inserted != NULL)
    *inserted = 0;
  if (t == NULL || (ev == NULL && n > 0))
    return CR_EINVAL;
  if (n == 0)
    return 0;
  return t->ops->write(t, ev, n, inserted, errbuf, errlen);
}

const char *cr_export_table_kind(const cr_export_table *t) {
  return t != NULL ? t->ops->kind : "";
}

void cr_export_table_close(cr_export_table *t) {
  if (t != NULL)
    t->ops->close(t);
}

void cr_export_url_redact(const char *url, char *buf, size_t len) {
  const char *scheme = strstr(url, "://");
  const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
  const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
  if (at != NULL && (slash == NULL || at < slash)) {
    const char *colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3));
    if (colon != NULL) {
      snprintf(buf, len, "%.*s:***%s", (int)(colon - url), url, at);
      return;
    }
  }
  /* A password may also be a query parameter (?password=...). */
  const char *q = strchr(url, '?');
  if (q != NULL && strstr(q, "password") != NULL) {
    snprintf(buf, len, "%.*s?***", (int)(q - url), url);
    return;
  }
  snprintf(buf, len, "%s", url);
}

void cr_export_format_time(int64_t ms, char *buf, size_t len) {
  time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           (int)((ms % 1000 + 1000) % 1000));
}
