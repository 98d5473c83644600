/* dest_jsonl.c: the JSON lines destination: <dir>/<stream>.jsonl per stream,
 * the directory made and each file opened (O_APPEND) by its first record,
 * one record per line, a 256 KiB user-space buffer per stream (a block of
 * 64 KiB or more, such as a worker's batch of records, goes straight to the
 * kernel instead of being copied into it), write()+fsync() of every touched
 * file on flush (and of the directory after a file was created).
 *
 * Crash safety: a crash can leave a torn last line (a record that was never
 * flushed). When a stream's file is opened, a last line without its '\n' is
 * cut off (ftruncate + fsync), so appends never glue onto garbage and
 * readers only ever see whole lines. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest/dest_int.h"
#include "util/alloc.h"
#include "util/error.h"

#define JSONL_BUF (256u * 1024u)

struct jstream {
  char *name;
  int fd;
  int dirty; /* bytes written to fd since the last fsync */
  char *buf;
  size_t len;
};

struct jdest {
  cr_dest base; /* first */
  char *dir;
  int dirfd;
  int dir_dirty; /* a file was created since the last directory fsync */
  struct jstream *s;
  size_t n, cap;
  size_t last; /* index of the last stream used (fast path) */
  int synced;  /* another process writes the files; this side fsyncs them */
};

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int drain(struct jdest *j, struct jstream *s) {
  if (s->len == 0)
    return 0;
  s->dirty = 1;
  if (write_all(s->fd, s->buf, s->len) != 0)
    return cr__dest_errf(&j->base, CR_EIO, "write %s/%s.jsonl: %s", j->dir,
                         s->name, strerror(errno));
  s->len = 0;
  return 0;
}

/* Cuts a torn last line (no trailing '\n') off fd. */
static int repair_tail(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return -1;
  off_t end = st.st_size;
  if (end == 0)
    return 0; /* empty: nothing torn, nothing to sync */
  char chunk[4096];
  while (end > 0) {
    off_t start = end > (off_t)sizeof chunk ? end - (off_t)sizeof chunk : 0;
    size_t want = (size_t)(end - start);
    if (pread(fd, chunk, want, start) != (ssize_t)want)
      return -1;
    if (end == st.st_size && chunk[want - 1] == '\n')
      return 0; /* intact */
    for (size_t i = want; i > 0; i--)
      if (chunk[i - 1] == '\n') {
        end = start + (off_t)i;
        goto cut;
      }
    end = start;
  }
cut:
  if (ftruncate(fd, end) != 0 || fsync(fd) != 0)
    return -1;
  return 0;
}

/* Makes the directory (mkdir -p, each new level made durable) and opens
 * it, once: before the first stream's file. */
static int open_dir(struct jdest *j) {
  if (j->dirfd >= 0)
    return 0;
  char err[256] = "";
  int rc = cr__dest_mkdirs(j->dir, err, sizeof err);
  if (rc != 0)
    return cr__dest_errf(&j->base, rc, "%s", err);
  j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j->dirfd < 0)
    return cr__dest_errf(&j->base, CR_EIO, "open %s: %s", j->dir,
                         strerror(errno));
  return 0;
}

static int open_file(struct jdest *j, const char *name, int *fdout) {
  char file[160];
  int rc = open_dir(j);
  if (rc != 0)
    return rc;
  snprintf(file, sizeof file, "%s.jsonl", name);
  if (j->synced) { /* the writer made it (and may be appending): as it is */
    int fd = openat(j->dirfd, file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return cr__dest_errf(&j->base, CR_EIO, "open %s/%s: %s", j->dir, file,
                           strerror(errno));
    j->dir_dirty = 1; /* it may have created the file */
    *fdout = fd;
    return 0;
  }
  for (;;) {
    int fd = openat(j->dirfd, file, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      fd = openat(j->dirfd, file,
                  O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && errno == EEXIST)
        continue;
      if (fd >= 0)
        j->dir_dirty = 1;
    }
    if (fd < 0)
      return cr__dest_errf(&j->base, CR_EIO, "open %s/%s: %s", j->dir, file,
                           strerror(errno));
    if (repair_tail(fd) != 0) {
      int e = errno;
      close(fd);
      return cr__dest_errf(&j->base, CR_EIO, "repair %s/%s: %s", j->dir, file,
                           strerror(e));
    }
    *fdout = fd;
    return 0;
  }
}

static int add_stream(struct jdest *j, const char *name, size_t *idx) {
  if (!cr__dest_name_ok(name))
    return cr__dest_errf(&j->base, CR_EINVAL, "invalid stream name \"%.140s\"",
                         name);
  if (j->n == j->cap) {
    size_t cap = j->cap ? j->cap * 2 : 4;
    struct jstream *s = cr__realloc(j->s, cap * sizeof *s);
    if (!s)
      return cr__dest_errf(&j->base, CR_ENOMEM, "out of memory");
    j->s = s;
    j->cap = cap;
  }
  struct jstream s = {.name = cr__strdup(name),
                      .buf = j->synced ? NULL : cr__malloc(JSONL_BUF)};
  int rc = CR_ENOMEM;
  if (!s.name || (!s.buf && !j->synced)) {
    cr__dest_errf(&j->base, rc, "out of memory");
    goto fail;
  }
  rc = open_file(j, name, &s.fd);
  if (rc != 0)
    goto fail;
  j->s[j->n] = s;
  *idx = j->n++;
  return 0;
fail:
  cr__free(s.name);
  cr__free(s.buf);
  return rc;
}

static int find_stream(struct jdest *j, const char *name, size_t *idx) {
  if (j->last < j->n && strcmp(j->s[j->last].name, name) == 0) {
    *idx = j->last;
    return 0;
  }
  for (size_t i = 0; i < j->n; i++)
    if (strcmp(j->s[i].name, name) == 0) {
      *idx = j->last = i;
      return 0;
    }
  int rc = add_stream(j, name, idx);
  if (rc == 0)
    j->last = *idx;
  return rc;
}

/* A declared stream's file is opened by its first record: an execution
 * that writes nothing touches no file and flushes nothing. */
static int jsonl_declare(cr_dest *d, const struct cr_dest_stream *st) {
  if (!cr__dest_name_ok(st->name))
    return cr__dest_errf(d, CR_EINVAL, "invalid stream name \"%.140s\"",
                         st->name);
  return 0;
}

/* Appends a (an bytes) then b (bn bytes: a single record's newline, or
 * none) to the stream's file: through its buffer, or, from a quarter of
 * the buffer up, straight through after what the buffer holds (a worker's
 * batch of records is not copied once more). */
static int put(cr_dest *d, const char *stream, const char *a, size_t an,
               const char *b, size_t bn) {
  struct jdest *j = (struct jdest *)d;
  size_t idx = 0, n = an + bn;
  int rc = find_stream(j, stream, &idx);
  if (rc != 0)
    return rc;
  struct jstream *s = &j->s[idx];
  int direct = n >= JSONL_BUF / 4;
  if ((direct || s->len + n > JSONL_BUF) && (rc = drain(j, s)) != 0)
    return rc;
  if (!direct) {
    memcpy(s->buf + s->len, a, an);
    if (bn > 0)
      memcpy(s->buf + s->len + an, b, bn);
    s->len += n;
    return 0;
  }
  s->dirty = 1;
  if (write_all(s->fd, a, an) != 0 || (bn > 0 && write_all(s->fd, b, bn) != 0))
    return cr__dest_errf(d, CR_EIO, "write %s/%s.jsonl: %s", j->dir, s->name,
                         strerror(errno));
  return 0;
}

static int jsonl_write(cr_dest *d, const char *stream, const char *json,
                       size_t len) {
  return put(d, stream, json, len, "\n", 1);
}

/* A block of lines ends in its newline already. */
static int jsonl_write_lines(cr_dest *d, const char *stream, const char *lines,
                             size_t len) {
  return put(d, stream, lines, len, NULL, 0);
}

static int jsonl_flush(cr_dest *d) {
  struct jdest *j = (struct jdest *)d;
  for (size_t i = 0; i < j->n; i++) {
    struct jstream *s = &j->s[i];
    int rc = drain(j, s);
    if (rc != 0)
      return rc;
    if (s->dirty && fsync(s->fd) != 0)
      return cr__dest_errf(d, CR_EIO, "fsync %s/%s.jsonl: %s", j->dir, s->name,
                           strerror(errno));
    s->dirty = 0;
  }
  if (j->dir_dirty && fsync(j->dirfd) != 0)
    return cr__dest_errf(d, CR_EIO, "fsync %s: %s", j->dir, strerror(errno));
  j->dir_dirty = 0;
  return 0;
}

static int jsonl_drain_fds(cr_dest *d, int *fds, size_t max, size_t *n) {
  struct jdest *j = (struct jdest *)d;
  size_t need = j->dir_dirty ? 1 : 0;
  for (size_t i = 0; i < j->n; i++)
    need += j->s[i].dirty || j->s[i].len > 0;
  if (need > max)
    return CR_ENOTSUP;
  for (size_t i = 0; i < j->n; i++) {
    struct jstream *s = &j->s[i];
    int rc = drain(j, s);
    if (rc != 0)
      return rc;
    if (s->dirty)
      fds[(*n)++] = s->fd;
    s->dirty = 0;
  }
  if (j->dir_dirty)
    fds[(*n)++] = j->dirfd;
  j->dir_dirty = 0;
  return 0;
}

static void jsonl_close(cr_dest *d) {
  struct jdest *j = (struct jdest *)d;
  for (size_t i = 0; i < j->n; i++) {
    close(j->s[i].fd);
    cr__free(j->s[i].name);
    cr__free(j->s[i].buf);
  }
  if (j->dirfd >= 0)
    close(j->dirfd);
  cr__free(j->s);
  cr__free(j->dir);
  cr__free(j);
}

static const struct cr__dest_ops JSONL_OPS = {
    .name = "jsonl",
    .declare_stream = jsonl_declare,
    .write = jsonl_write,
    .write_lines = jsonl_write_lines,
    .flush = jsonl_flush,
    .drain_fds = jsonl_drain_fds,
    .close = jsonl_close,
};

/* ---- Written by another process (cr_dest_open_jsonl_synced) ------------ */

static int synced_write(cr_dest *d, const char *stream, const char *json,
                        size_t len) {
  (void)json, (void)len;
  return cr__dest_errf(d, CR_ENOTSUP,
                       "stream %.140s: this destination's records are "
                       "written by the worker",
                       stream);
}

static int synced_write_lines(cr_dest *d, const char *stream, const char *lines,
                              size_t len) {
  return synced_write(d, stream, lines, len);
}

static int synced_written(cr_dest *d, const char *stream) {
  struct jdest *j = (struct jdest *)d;
  size_t idx = 0;
  int rc = find_stream(j, stream, &idx);
  if (rc == 0)
    j->s[idx].dirty = 1;
  return rc;
}

static const struct cr__dest_ops JSONL_SYNCED_OPS = {
    .name = "jsonl",
    .declare_stream = jsonl_declare,
    .write = synced_write,
    .write_lines = synced_write_lines,
    .written = synced_written,
    .flush = jsonl_flush,
    .drain_fds = jsonl_drain_fds,
    .close = jsonl_close,
};

static int open_jsonl(const char *dir, int synced, cr_dest **out, char *errbuf,
                      size_t errlen) {
  if (!out)
    return CR_EINVAL;
  *out = NULL;
  if (!dir || !dir[0])
    return cr__dest_buf_errf(errbuf, errlen, CR_EINVAL, "empty directory");
  /* The directory is made by the first record (open_dir): an execution
   * that writes nothing creates nothing. What can already be seen to be
   * wrong (a file in the way, no permission) is refused now. */
  struct stat st;
  int e = stat(dir, &st) == 0 ? (S_ISDIR(st.st_mode) ? 0 : ENOTDIR)
                              : (errno == ENOENT ? 0 : errno);
  if (e != 0)
    return cr__dest_buf_errf(errbuf, errlen, CR_EIO, "%s: %s", dir,
                             strerror(e));
  struct jdest *j = cr__calloc(1, sizeof *j);
  if (!j)
    return cr__dest_buf_errf(errbuf, errlen, CR_ENOMEM, "out of memory");
  j->base.ops = synced ? &JSONL_SYNCED_OPS : &JSONL_OPS;
  j->synced = synced;
  j->dirfd = -1;
  j->dir = cr__strdup(dir);
  if (!j->dir) {
    jsonl_close(&j->base);
    return cr__dest_buf_errf(errbuf, errlen, CR_ENOMEM, "out of memory");
  }
  *out = &j->base;
  return 0;
}

int cr_dest_open_jsonl(const char *dir, cr_dest **out, char *errbuf,
                       size_t errlen) {
  return open_jsonl(dir, 0, out, errbuf, errlen);
}

int cr_dest_open_jsonl_synced(const char *dir, cr_dest **out, char *errbuf,
                              size_t errlen) {
  return open_jsonl(dir, 1, out, errbuf, errlen);
}
