/* dest_int.h: what the destination variants (dest_jsonl.c, dest_sqlite.c)
 * share with the dispatch in dest.c: the function table, the common header
 * every variant embeds first, and small helpers. Not for other modules. */
#ifndef CR_DEST_INT_H
#define CR_DEST_INT_H

#include <stdarg.h>

#include "dest/dest.h"
#include "util/log.h"

struct cr__dest_ops {
  const char *name; /* "jsonl", "sqlite" */
  int (*declare_stream)(cr_dest *d, const struct cr_dest_stream *s);
  int (*write)(cr_dest *d, const char *stream, const char *json, size_t len);
  /* Optional (NULL: cr_dest_write_lines writes the lines one by one):
   * count records, each ending in '\n', checked by dest.c. */
  int (*write_lines)(cr_dest *d, const char *stream, const char *lines,
                     size_t len);
  /* Optional (NULL: cr_dest_written answers CR_ENOTSUP). */
  int (*written)(cr_dest *d, const char *stream);
  int (*flush)(cr_dest *d);
  /* Optional (NULL: cr_dest_drain_fds answers CR_ENOTSUP). */
  int (*drain_fds)(cr_dest *d, int *fds, size_t max, size_t *n);
  void (*close)(cr_dest *d); /* frees d, without flushing */
};

/* The common part; each variant's struct starts with it. */
struct cr_dest {
  const struct cr__dest_ops *ops;
  int64_t records;
  int64_t records_failed; /* plugin: records the provider rejected */
  cr_log_fn log;          /* cr_dest_set_log; NULL: no log */
  void *log_ud;
  int failed; /* sticky CR_EIO/CR_ESTORE code, 0 if healthy */
  char err[512];
};

/* 1 if name is a safe stream name (see dest.h), else 0. */
int cr__dest_name_ok(const char *name);

/* Formats into d->err and returns rc (convenience for error returns). */
int cr__dest_errf(cr_dest *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats into buf (may be NULL) and returns rc. */
int cr__dest_buf_errf(char *buf, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* mkdir -p path with mode 0755, fsync()ing the parent of every directory it
 * creates. Returns 0 or CR_EIO (message in errbuf). */
int cr__dest_mkdirs(const char *path, char *errbuf, size_t errlen);

/* fsync()s the directory containing path. 0 or -1 (errno set). */
int cr__dest_fsync_parent(const char *path);

#endif
