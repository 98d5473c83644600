/* dest.c: the destination interface: argument checks, dispatch through the
 * variant's function table, record counting, the factory from config, and
 * helpers the variants share (stream-name rule, error text, mkdir -p). */
#include "dest/dest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest/dest_int.h"
#include "util/alloc.h"
#include "util/error.h"

#define CR_DEST_NAME_MAX 128

int cr__dest_name_ok(const char *name) {
  if (!name || !name[0] || name[0] == '.')
    return 0;
  size_t n = 0;
  for (const char *p = name; *p; p++, n++) {
    char c = *p;
    int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok || n >= CR_DEST_NAME_MAX)
      return 0;
  }
  return 1;
}

int cr__dest_errf(cr_dest *d, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof d->err, fmt, ap);
  va_end(ap);
  return rc;
}

int cr__dest_buf_errf(char *buf, size_t len, int rc, const char *fmt, ...) {
  if (!buf || len == 0)
    return rc;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  return rc;
}

int cr__dest_fsync_parent(const char *path) {
  char parent[4096];
  size_t n = strlen(path);
  if (n >= sizeof parent)
    return -1;
  memcpy(parent, path, n + 1);
  char *slash = strrchr(parent, '/');
  if (!slash)
    strcpy(parent, ".");
  else if (slash == parent)
    parent[1] = '\0';
  else
    *slash = '\0';
  int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

static int mkdir_one(const char *path, char *errbuf, size_t errlen) {
  if (mkdir(path, 0755) == 0) {
    if (cr__dest_fsync_parent(path) != 0)
      return cr__dest_buf_errf(errbuf, errlen, CR_EIO, "fsync parent of %s: %s",
                               path, strerror(errno));
    return 0;
  }
  struct stat st;
  if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return 0;
  return cr__dest_buf_errf(errbuf, errlen, CR_EIO, "mkdir %s: %s", path,
                           strerror(errno == EEXIST ? ENOTDIR : errno));
}

int cr__dest_mkdirs(const char *path, char *errbuf, size_t errlen) {
  char buf[4096];
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return 0; /* the common case: one stat, not one mkdir per component */
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf)
    return cr__dest_buf_errf(errbuf, errlen, CR_EINVAL, "bad path length");
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    int rc = mkdir_one(buf, errbuf, errlen);
    *p = '/';
    if (rc != 0)
      return rc;
  }
  return mkdir_one(buf, errbuf, errlen);
}

/* ---- Dispatch ------------------------------------------------------------ */

int cr_dest_declare_stream(cr_dest *d, const struct cr_dest_stream *s) {
  if (!d || !s)
    return CR_EINVAL;
  if (!cr__dest_name_ok(s->name))
    return cr__dest_errf(d, CR_EINVAL, "invalid stream name \"%.140s\"",
                         s->name ? s->name : "(null)");
  if (s->n_primary_key > 0 && !s->primary_key)
    return cr__dest_errf(d, CR_EINVAL, "primary key list is NULL");
  for (size_t i = 0; i < s->n_primary_key; i++)
    if (!s->primary_key[i] || !s->primary_key[i][0])
      return cr__dest_errf(d, CR_EINVAL, "stream %s: empty primary key field",
                           s->name);
  if (d->failed)
    return d->failed; /* keep the message of the original failure */
  return d->ops->declare_stream(d, s);
}

int cr_dest_write(cr_dest *d, const char *stream, const char *json,
                  size_t len) {
  if (!d || !stream || (!json && len))
    return CR_EINVAL;
  if (d->failed)
    return d->failed; /* keep the message of the original failure */
  if (len == 0)
    return cr__dest_errf(d, CR_EINVAL, "stream %.140s: empty record", stream);
  if (memchr(json, '\n', len))
    return cr__dest_errf(
        d, CR_EINVAL, "stream %.140s: record contains a raw newline", stream);
  int rc = d->ops->write(d, stream, json, len);
  if (rc == 0)
    d->records++;
  else if (rc == CR_EIO || rc == CR_ESTORE)
    d->failed = rc;
  return rc;
}

/* The lines of a batch one cr_dest_write at a time: variants that look at
 * each record (sqlite's keys, a plugin's batches). */
static int write_each_line(cr_dest *d, const char *stream, const char *lines,
                           size_t len, uint64_t count) {
  const char *p = lines, *end = lines + len;
  uint64_t n = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    int rc = cr_dest_write(d, stream, p, (size_t)(nl - p));
    if (rc != 0)
      return rc;
    n++;
    p = nl + 1;
  }
  if (n != count)
    return cr__dest_errf(
        d, CR_EINVAL, "stream %.140s: a batch of %llu records held %llu",
        stream, (unsigned long long)count, (unsigned long long)n);
  return 0;
}

int cr_dest_write_lines(cr_dest *d, const char *stream, const char *lines,
                        size_t len, uint64_t count) {
  if (!d || !stream || !lines)
    return CR_EINVAL;
  if (d->failed)
    return d->failed;
  if (len == 0 || count == 0 || lines[len - 1] != '\n')
    return cr__dest_errf(d, CR_EINVAL,
                         "stream %.140s: a batch of records must be lines",
                         stream);
  if (d->ops->write_lines == NULL)
    return write_each_line(d, stream, lines, len, count);
  int rc = d->ops->write_lines(d, stream, lines, len);
  if (rc == 0)
    d->records += (int64_t)count;
  else if (rc == CR_EIO || rc == CR_ESTORE)
    d->failed = rc;
  return rc;
}

int cr_dest_written(cr_dest *d, const char *stream, uint64_t count) {
  if (!d || !stream || count > INT64_MAX)
    return CR_EINVAL;
  if (d->failed)
    return d->failed;
  if (d->ops->written == NULL)
    return cr__dest_errf(d, CR_ENOTSUP, "records are written here, not noted");
  int rc = d->ops->written(d, stream);
  if (rc == 0)
    d->records += (int64_t)count;
  else if (rc == CR_EIO)
    d->failed = rc;
  return rc;
}

int cr_dest_flush(cr_dest *d) {
  if (!d)
    return CR_EINVAL;
  if (d->failed)
    return d->failed;
  int rc = d->ops->flush(d);
  if (rc == CR_EIO || rc == CR_ESTORE)
    d->failed = rc;
  return rc;
}

int cr_dest_drain_fds(cr_dest *d, int *fds, size_t max, size_t *n) {
  if (!d || !fds || !n)
    return CR_EINVAL;
  *n = 0;
  if (d->failed)
    return d->failed;
  if (d->ops->drain_fds == NULL)
    return CR_ENOTSUP;
  int rc = d->ops->drain_fds(d, fds, max, n);
  if (rc == CR_EIO)
    d->failed = rc;
  return rc;
}

int64_t cr_dest_records(const cr_dest *d) { return d ? d->records : 0; }

int64_t cr_dest_records_failed(const cr_dest *d) {
  return d ? d->records_failed : 0;
}

void cr_dest_set_log(cr_dest *d, cr_log_fn fn, void *ud) {
  if (d == NULL)
    return;
  d->log = fn;
  d->log_ud = ud;
}

const char *cr_dest_last_error(const cr_dest *d) { return d ? d->err : ""; }

void cr_dest_close(cr_dest *d) {
  if (d)
    d->ops->close(d);
}

/* ---- Factory ------------------------------------------------------------- */

int cr_dest_open(const struct cr_config_destination *cfg, cr_dest **out,
                 char *errbuf, size_t errlen) {
  if (!cfg || !out)
    return CR_EINVAL;
  *out = NULL;
  if (cfg->type == CR_DEST_PLUGIN)
    return cr__dest_buf_errf(errbuf, errlen, CR_ENOTSUP,
                             "plugin destinations are opened by the plugin "
                             "host, not cr_dest_open");
  if (cfg->type != CR_DEST_JSONL && cfg->type != CR_DEST_SQLITE)
    return cr__dest_buf_errf(errbuf, errlen, CR_EINVAL,
                             "unknown destination type %d", cfg->type);
  if (!cfg->path || !cfg->path[0])
    return cr__dest_buf_errf(errbuf, errlen, CR_EINVAL,
                             "destination has no path");
  if (cfg->type == CR_DEST_JSONL)
    return cr_dest_open_jsonl(cfg->path, out, errbuf, errlen);
  return cr_dest_open_sqlite(cfg->path, out, errbuf, errlen);
}
