/* filedrop.c: the "filedrop" provider plugin, the "file service" pattern:
 * files dropped into a local directory are read, once each, as records.
 *
 * Config: {"directory": "/srv/drop", "streams": [{"name": "users",
 * "pattern": "users*.csv", "format": "csv", "primary_key": ["id"]}]}.
 * format defaults from the pattern's extension (.csv -> csv, .jsonl and
 * .ndjson -> jsonl). primary_key is for the host; the plugin ignores it.
 * settle_seconds (default 0) leaves files modified less than that long ago
 * for a later run, so a file still being written is not read half-way
 * (writers that write to a hidden ".name" and rename() into place need no
 * settle time: hidden files are never listed).
 * The "none" credentials may carry {"directory": ...} so that a health check
 * of the authorization alone (no work config) has a directory to look at;
 * config.directory overrides it.
 *
 * health_check: Healthy "directory D is readable (N files)" when opendir()
 * succeeds; Unhealthy with the reason otherwise; Unknown when no directory
 * is configured at all.
 *
 * read: lists the regular, non-hidden files of the directory, gives each to
 * the FIRST stream whose pattern matches it (fnmatch), sorts them by
 * (mtime, name) and reads those after the cursor {"mtime_ns":N,"name":"f"}
 * (state from the host), proposing the cursor of each file as a checkpoint
 * after its records (files whose names are not UTF-8 are skipped with a
 * warning: the cursor is JSON). Each file is therefore read once; a file
 * dropped later with an OLDER mtime than the cursor (cp -p, rsync -t) is
 * never read.
 *   - CSV: RFC 4180 (quoted fields, "" escapes, separators and line breaks
 *     inside quotes, CRLF / LF / CR line ends). The header row gives the
 *     keys; every value is emitted as a JSON string. Blank lines are
 *     skipped; a row whose field count differs from the header's, a stray
 *     character after a closing quote, an unterminated quote, a NUL byte or
 *     invalid UTF-8 fails the read with CR_PLUGIN_ERR_CONFIG naming
 *     file:line. A leading UTF-8 BOM is dropped.
 *   - JSONL: each non-blank line (trimmed) must start with '{' and end with
 *     '}' and be valid UTF-8; it is passed through as is. Otherwise
 *     CR_PLUGIN_ERR_CONFIG naming file:line.
 * Memory per file is constant apart from the longest record: files are read
 * in FILEDROP_CHUNK blocks and a record may not exceed FILEDROP_MAX_RECORD
 * bytes. api->cancelled is polled every FILEDROP_CANCEL_EVERY records. */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define FILEDROP_MAX_STREAMS 64
#define FILEDROP_NAME_MAX 128
#define FILEDROP_PATTERN_MAX 256
#define FILEDROP_DIR_MAX 4096
#define FILEDROP_CHUNK 65536
#define FILEDROP_MAX_RECORD ((size_t)16 * 1024 * 1024)
#define FILEDROP_CANCEL_EVERY 1024

static const char filedrop_credentials_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{\"directory\":{\"type\":\"string\",\"minLength\":1}}}";

static const char filedrop_config_schema[] =
    "{\"type\":\"object\",\"required\":[\"directory\",\"streams\"],"
    "\"properties\":{"
    "\"directory\":{\"type\":\"string\",\"minLength\":1},"
    "\"streams\":{\"type\":\"array\",\"minItems\":1,\"items\":{"
    "\"type\":\"object\",\"required\":[\"name\",\"pattern\"],"
    "\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":127},"
    "\"pattern\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":255},"
    "\"format\":{\"type\":\"string\",\"enum\":[\"csv\",\"jsonl\"]},"
    "\"primary_key\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
    "\"additionalProperties\":false}},"
    "\"settle_seconds\":{\"type\":\"integer\",\"minimum\":0,"
    "\"maximum\":86400}},"
    "\"additionalProperties\":false}";

enum filedrop_format { FD_CSV, FD_JSONL };

struct filedrop_stream {
  char name[FILEDROP_NAME_MAX];
  char pattern[FILEDROP_PATTERN_MAX];
  enum filedrop_format format;
  uint64_t total, done; /* files of this run, for progress */
};

struct filedrop {
  const struct cr_host_api *api;
  char directory[FILEDROP_DIR_MAX]; /* "" when none configured */
  struct filedrop_stream streams[FILEDROP_MAX_STREAMS];
  size_t nstreams;
  long long settle_ns; /* files younger than this wait for a later run */
};

/* One file to read. */
struct fd_file {
  long long mtime_ns;
  char *name; /* api->alloc */
  size_t stream;
};

struct fd_list {
  struct fd_file *v;
  size_t n, cap;
};

/* A growable byte buffer in api->alloc memory, capped at
 * FILEDROP_MAX_RECORD. */
struct fd_buf {
  char *p;
  size_t len, cap;
};

/* ---- Small helpers ------------------------------------------------------- */

/* Ensures room for extra more bytes. 0, -1 (no memory), -2 (over the cap). */
static int buf_reserve(const struct cr_host_api *api, struct fd_buf *b,
                       size_t extra) {
  if (b->len + extra <= b->cap)
    return 0;
  if (b->len + extra > FILEDROP_MAX_RECORD * 7 + 64)
    return -2;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra)
    cap *= 2;
  char *p = api->alloc(cap);
  if (p == NULL)
    return -1;
  if (b->len > 0)
    memcpy(p, b->p, b->len);
  api->free(b->p);
  b->p = p;
  b->cap = cap;
  return 0;
}

static int buf_putc(const struct cr_host_api *api, struct fd_buf *b, char c) {
  if (b->len < b->cap) {
    b->p[b->len++] = c;
    return 0;
  }
  int rc = buf_reserve(api, b, 1);
  if (rc == 0)
    b->p[b->len++] = c;
  return rc;
}

static int buf_put(const struct cr_host_api *api, struct fd_buf *b,
                   const char *s, size_t n) {
  int rc = buf_reserve(api, b, n);
  if (rc == 0 && n > 0) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
  }
  return rc;
}

/* Appends the JSON string literal of s (NUL-terminated, n bytes). */
static int buf_put_jstring(const struct cr_host_api *api, struct fd_buf *b,
                           const char *s, size_t n) {
  int rc = buf_reserve(api, b, 6 * n + 3);
  if (rc != 0)
    return rc;
  b->p[b->len++] = '"';
  int w = cr_json_escape(s, b->p + b->len, b->cap - b->len);
  if (w < 0)
    return -1;
  b->len += (size_t)w;
  b->p[b->len++] = '"';
  return 0;
}

/* Non-zero when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t k;
    unsigned cp, min;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      k = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      k = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      k = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (n - i <= k)
      return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xC0) != 0x80)
        return 0;
      cp = cp << 6 | (s[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += k + 1;
  }
  return 1;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- create / destroy ------------------------------------------------------
 */

/* Reads one element of config.streams into st. 0 or -1 with errbuf set. */
static int parse_stream(const char *elem, size_t len,
                        struct filedrop_stream *st, char *errbuf,
                        size_t errlen) {
  char format[16];
  memset(st, 0, sizeof *st);
  if (cr_json_get_string_n(elem, len, "name", st->name, sizeof st->name) != 0 ||
      st->name[0] == '\0') {
    snprintf(errbuf, errlen, "every stream needs a name (string)");
    return -1;
  }
  if (cr_json_get_string_n(elem, len, "pattern", st->pattern,
                           sizeof st->pattern) != 0 ||
      st->pattern[0] == '\0') {
    snprintf(errbuf, errlen, "stream %s needs a pattern (string)", st->name);
    return -1;
  }
  if (cr_json_get_string_n(elem, len, "format", format, sizeof format) == 0) {
    if (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0) {
      snprintf(errbuf, errlen, "stream %s: format must be csv or jsonl",
               st->name);
      return -1;
    }
    st->format = format[0] == 'c' ? FD_CSV : FD_JSONL;
    return 0;
  }
  if (ends_with(st->pattern, ".csv")) {
    st->format = FD_CSV;
  } else if (ends_with(st->pattern, ".jsonl") ||
             ends_with(st->pattern, ".ndjson")) {
    st->format = FD_JSONL;
  } else {
    snprintf(errbuf, errlen,
             "stream %s: cannot tell the format from pattern %s; set format",
             st->name, st->pattern);
    return -1;
  }
  return 0;
}

/* Reads the work config. 0 or CR_PLUGIN_ERR_CONFIG with errbuf set. */
static int parse_config(struct filedrop *fd, const char *json, char *errbuf,
                        size_t errlen) {
  size_t len = strlen(json);
  const char *raw;
  size_t raw_len;
  if (cr_json_get_raw_n(json, len, "directory", &raw, &raw_len) == 0 &&
      cr_json_get_string_n(json, len, "directory", fd->directory,
                           sizeof fd->directory) != 0) {
    snprintf(errbuf, errlen, "config.directory must be a string");
    return CR_PLUGIN_ERR_CONFIG;
  }
  struct cr_json_array_iter it;
  const char *elem;
  size_t elen;
  int rc;
  if (cr_json_array_begin_n(&it, json, len, "streams") != 0) {
    snprintf(errbuf, errlen, "config.streams must be an array");
    return CR_PLUGIN_ERR_CONFIG;
  }
  while ((rc = cr_json_array_next(&it, &elem, &elen)) == 1) {
    if (fd->nstreams == FILEDROP_MAX_STREAMS) {
      snprintf(errbuf, errlen, "at most %d streams", FILEDROP_MAX_STREAMS);
      return CR_PLUGIN_ERR_CONFIG;
    }
    struct filedrop_stream *st = &fd->streams[fd->nstreams];
    if (parse_stream(elem, elen, st, errbuf, errlen) != 0)
      return CR_PLUGIN_ERR_CONFIG;
    for (size_t i = 0; i < fd->nstreams; i++) {
      if (strcmp(fd->streams[i].name, st->name) == 0) {
        snprintf(errbuf, errlen, "stream %s is declared twice", st->name);
        return CR_PLUGIN_ERR_CONFIG;
      }
    }
    fd->nstreams++;
  }
  if (rc < 0 || fd->nstreams == 0) {
    snprintf(errbuf, errlen, "config.streams must be a non-empty array");
    return CR_PLUGIN_ERR_CONFIG;
  }
  long long settle = 0;
  if (cr_json_get_raw_n(json, len, "settle_seconds", &raw, &raw_len) == 0 &&
      (cr_json_get_int_n(json, len, "settle_seconds", &settle) != 0 ||
       settle < 0 || settle > 86400)) {
    snprintf(errbuf, errlen, "config.settle_seconds must be 0..86400");
    return CR_PLUGIN_ERR_CONFIG;
  }
  fd->settle_ns = settle * 1000000000LL;
  if (fd->directory[0] == '\0') {
    snprintf(errbuf, errlen, "config.directory is required");
    return CR_PLUGIN_ERR_CONFIG;
  }
  return CR_PLUGIN_OK;
}

static int filedrop_create(const struct cr_host_api *api,
                           const struct cr_plugin_params *params,
                           void **instance_out, char *errbuf, size_t errlen) {
  struct filedrop *fd = api->alloc(sizeof *fd);
  if (fd == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  memset(fd, 0, sizeof *fd);
  fd->api = api;
  if (params->credentials_json != NULL)
    (void)cr_json_get_string(params->credentials_json, "directory",
                             fd->directory, sizeof fd->directory);
  if (params->config_json != NULL) {
    int rc = parse_config(fd, params->config_json, errbuf, errlen);
    if (rc != CR_PLUGIN_OK) {
      api->free(fd);
      return rc;
    }
  }
  *instance_out = fd;
  return CR_PLUGIN_OK;
}

static void filedrop_destroy(void *instance) {
  struct filedrop *fd = instance;
  if (fd != NULL)
    fd->api->free(fd);
}

/* ---- health_check ----------------------------------------------------------
 */

/* Regular, non-hidden files of an open directory. */
static size_t count_files(DIR *d, const char *dir) {
  size_t n = 0;
  struct dirent *e;
  char path[FILEDROP_DIR_MAX + 300];
  struct stat st;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
      n++;
  }
  return n;
}

static int filedrop_health_check(void *instance, cr_plugin_ctx *ctx,
                                 struct cr_plugin_health_result *out) {
  struct filedrop *fd = instance;
  (void)ctx;
  if (fd->directory[0] == '\0') {
    out->status = CR_PLUGIN_HEALTH_UNKNOWN;
    snprintf(out->reason, out->reason_len, "no directory configured");
    return CR_PLUGIN_OK;
  }
  DIR *d = opendir(fd->directory);
  if (d == NULL) {
    int err = errno;
    out->status = CR_PLUGIN_HEALTH_UNHEALTHY;
    if (err == ENOENT)
      snprintf(out->reason, out->reason_len, "directory %s does not exist",
               fd->directory);
    else if (err == ENOTDIR)
      snprintf(out->reason, out->reason_len, "%s is not a directory",
               fd->directory);
    else
      snprintf(out->reason, out->reason_len, "directory %s is not readable: %s",
               fd->directory, strerror(err));
    return CR_PLUGIN_OK;
  }
  size_t n = count_files(d, fd->directory);
  closedir(d);
  out->status = CR_PLUGIN_HEALTH_HEALTHY;
  snprintf(out->reason, out->reason_len, "directory %s is readable (%zu %s)",
           fd->directory, n, n == 1 ? "file" : "files");
  return CR_PLUGIN_OK;
}

/* ---- Listing --------------------------------------------------------------
 */

static void list_free(const struct cr_host_api *api, struct fd_list *l) {
  for (size_t i = 0; i < l->n; i++)
    api->free(l->v[i].name);
  api->free(l->v);
  memset(l, 0, sizeof *l);
}

static int list_push(const struct cr_host_api *api, struct fd_list *l,
                     long long mtime_ns, const char *name, size_t stream) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct fd_file *v = api->alloc(cap * sizeof *v);
    if (v == NULL)
      return -1;
    if (l->n > 0)
      memcpy(v, l->v, l->n * sizeof *v);
    api->free(l->v);
    l->v = v;
    l->cap = cap;
  }
  size_t n = strlen(name) + 1;
  char *copy = api->alloc(n);
  if (copy == NULL)
    return -1;
  memcpy(copy, name, n);
  l->v[l->n++] = (struct fd_file){mtime_ns, copy, stream};
  return 0;
}

static int key_cmp(long long am, const char *an, long long bm, const char *bn) {
  if (am != bm)
    return am < bm ? -1 : 1;
  return strcmp(an, bn);
}

static int file_cmp(const void *a, const void *b) {
  const struct fd_file *x = a, *y = b;
  return key_cmp(x->mtime_ns, x->name, y->mtime_ns, y->name);
}

/* The stream a file name belongs to, or -1. */
static int match_stream(const struct filedrop *fd, const char *name) {
  for (size_t i = 0; i < fd->nstreams; i++)
    if (fnmatch(fd->streams[i].pattern, name, FNM_PERIOD) == 0)
      return (int)i;
  return -1;
}

/* Lists the files after the cursor (have_cursor, cm, cn), sorted. Returns
 * a cr_plugin_result (error recorded). */
static int list_files(struct filedrop *fd, cr_plugin_ctx *ctx, int have_cursor,
                      long long cm, const char *cn, struct fd_list *l) {
  const struct cr_host_api *api = fd->api;
  DIR *d = opendir(fd->directory);
  if (d == NULL) {
    int err = errno;
    return cr_plugin_errorf(api, ctx,
                            err == ENOENT || err == EACCES || err == ENOTDIR
                                ? CR_PLUGIN_ERR_CONFIG
                                : CR_PLUGIN_ERR_TRANSIENT,
                            0, "cannot open directory %s: %s", fd->directory,
                            strerror(err));
  }
  struct dirent *e;
  char path[FILEDROP_DIR_MAX + 300];
  struct stat st;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long long newest = (long long)now.tv_sec * 1000000000LL +
                     (long long)now.tv_nsec - fd->settle_ns;
  size_t settling = 0;
  int rc = CR_PLUGIN_OK;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    int s = match_stream(fd, e->d_name);
    if (s < 0)
      continue;
    if (!utf8_valid((const unsigned char *)e->d_name, strlen(e->d_name))) {
      cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_WARN,
                     "skipping a file whose name is not UTF-8");
      continue;
    }
    snprintf(path, sizeof path, "%s/%s", fd->directory, e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    long long m = (long long)st.st_mtim.tv_sec * 1000000000LL +
                  (long long)st.st_mtim.tv_nsec;
    if (have_cursor && key_cmp(m, e->d_name, cm, cn) <= 0)
      continue;
    if (fd->settle_ns > 0 && m > newest) {
      settling++;
      continue;
    }
    if (list_push(api, l, m, e->d_name, (size_t)s) != 0) {
      rc = cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "out of memory listing %s", fd->directory);
      break;
    }
  }
  closedir(d);
  if (settling > 0)
    cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_INFO,
                   "%zu files modified in the last %lld s left for later",
                   settling, fd->settle_ns / 1000000000LL);
  if (rc == CR_PLUGIN_OK && l->n > 1)
    qsort(l->v, l->n, sizeof *l->v, file_cmp);
  return rc;
}

/* ---- Parsing --------------------------------------------------------------
 */

/* Per-file reading state shared by both formats. */
struct fd_reader {
  struct filedrop *fd;
  cr_plugin_ctx *ctx;
  const char *file;   /* name, for messages */
  const char *stream; /* stream name */
  unsigned long line; /* current physical line, 1-based */
  unsigned long long records;
  struct fd_buf rec; /* JSON text of the record being built */
};

static int reader_fail(struct fd_reader *r, unsigned long line,
                       const char *what) {
  return cr_plugin_errorf(r->fd->api, r->ctx, CR_PLUGIN_ERR_CONFIG, 0,
                          "%s:%lu: %s", r->file, line, what);
}

static int reader_nomem(struct fd_reader *r, int brc, unsigned long line) {
  if (brc == -2)
    return reader_fail(r, line, "record too large");
  return cr_plugin_errorf(r->fd->api, r->ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                          "out of memory reading %s", r->file);
}

/* Emits r->rec and polls cancellation. */
static int reader_emit(struct fd_reader *r) {
  const struct cr_host_api *api = r->fd->api;
  int rc = api->emit(r->ctx, r->stream, r->rec.p, r->rec.len);
  if (rc != CR_PLUGIN_OK)
    return rc;
  r->records++;
  if (r->records % FILEDROP_CANCEL_EVERY == 0 && api->cancelled(r->ctx))
    return CR_PLUGIN_ERR_CANCELLED;
  return CR_PLUGIN_OK;
}

/* CSV state: the fields of the current row, NUL-separated in f, with
 * their start offsets in off; the header's keys as JSON literals. */
enum csv_state { CSV_START, CSV_UNQUOTED, CSV_QUOTED, CSV_QUOTE_END };

struct csv {
  enum csv_state state;
  struct fd_buf f;      /* field bytes, each field NUL-terminated */
  struct fd_buf off;    /* size_t offsets of field starts */
  struct fd_buf keys;   /* header: "key": texts back to back */
  struct fd_buf keyoff; /* size_t offsets into keys, plus the end */
  size_t nkeys;
  int have_header;
  int content;            /* the row has something (not a blank line) */
  int after_cr;           /* previous byte ended a line with CR */
  unsigned long row_line; /* line where the row started */
};

static size_t csv_nfields(const struct csv *c) {
  return c->off.len / sizeof(size_t);
}

/* Opens a new field at the end of c->f. */
static int csv_field_begin(const struct cr_host_api *api, struct csv *c) {
  size_t o = c->f.len;
  return buf_put(api, &c->off, (const char *)&o, sizeof o);
}

/* The i-th size_t stored in an offsets buffer. */
static size_t off_at(const struct fd_buf *b, size_t i) {
  size_t o;
  memcpy(&o, b->p + i * sizeof o, sizeof o);
  return o;
}

static size_t csv_field_off(const struct csv *c, size_t i) {
  return off_at(&c->off, i);
}

/* Takes the header row: duplicate keys are refused. */
static int csv_take_header(struct fd_reader *r, struct csv *c) {
  const struct cr_host_api *api = r->fd->api;
  size_t n = csv_nfields(c);
  for (size_t i = 0; i < n; i++) {
    const char *k = c->f.p + csv_field_off(c, i);
    for (size_t j = 0; j < i; j++)
      if (strcmp(k, c->f.p + csv_field_off(c, j)) == 0)
        return reader_fail(r, c->row_line, "duplicate column name in header");
    size_t o = c->keys.len;
    int brc = buf_put(api, &c->keyoff, (const char *)&o, sizeof o);
    if (brc == 0)
      brc = buf_put_jstring(api, &c->keys, k, strlen(k));
    if (brc == 0)
      brc = buf_putc(api, &c->keys, ':');
    if (brc != 0)
      return reader_nomem(r, brc, c->row_line);
  }
  c->nkeys = n;
  c->have_header = 1;
  return CR_PLUGIN_OK;
}

/* Ends the current row: header, blank line, or a record to emit. */
static int csv_end_row(struct fd_reader *r, struct csv *c) {
  const struct cr_host_api *api = r->fd->api;
  size_t n = csv_nfields(c);
  int rc = CR_PLUGIN_OK;
  if (!c->content)
    goto done;
  for (size_t i = 0; i < n; i++) {
    size_t o = csv_field_off(c, i);
    size_t end = i + 1 < n ? csv_field_off(c, i + 1) - 1 : c->f.len - 1;
    if (!utf8_valid((const unsigned char *)c->f.p + o, end - o)) {
      rc = reader_fail(r, c->row_line, "invalid UTF-8");
      goto done;
    }
  }
  if (!c->have_header) {
    rc = csv_take_header(r, c);
    goto done;
  }
  if (n != c->nkeys) {
    char msg[96];
    snprintf(msg, sizeof msg, "row has %zu fields, header has %zu", n,
             c->nkeys);
    rc = reader_fail(r, c->row_line, msg);
    goto done;
  }
  r->rec.len = 0;
  int brc = buf_putc(api, &r->rec, '{');
  for (size_t i = 0; i < n && brc == 0; i++) {
    size_t ko = off_at(&c->keyoff, i);
    size_t ke = i + 1 < n ? off_at(&c->keyoff, i + 1) : c->keys.len;
    const char *v = c->f.p + csv_field_off(c, i);
    if (i > 0)
      brc = buf_putc(api, &r->rec, ',');
    if (brc == 0)
      brc = buf_put(api, &r->rec, c->keys.p + ko, ke - ko);
    if (brc == 0)
      brc = buf_put_jstring(api, &r->rec, v, strlen(v));
  }
  if (brc == 0)
    brc = buf_putc(api, &r->rec, '}');
  rc = brc != 0 ? reader_nomem(r, brc, c->row_line) : reader_emit(r);
done:
  c->f.len = 0;
  c->off.len = 0;
  c->content = 0;
  c->state = CSV_START;
  return rc;
}

/* Ends the current field (it was opened by csv_field_begin). */
static int csv_end_field(const struct cr_host_api *api, struct csv *c) {
  return buf_putc(api, &c->f, '\0');
}

/* Feeds one byte to the CSV state machine. */
static int csv_byte(struct fd_reader *r, struct csv *c, char ch) {
  const struct cr_host_api *api = r->fd->api;
  int brc = 0;
  int was_cr = c->after_cr;
  c->after_cr = 0;
  if (ch == '\0')
    return reader_fail(r, r->line, "NUL byte");
  if (c->state == CSV_QUOTED) {
    if (ch == '"') {
      c->state = CSV_QUOTE_END;
      return CR_PLUGIN_OK;
    }
    if (ch == '\n' || ch == '\r')
      r->line += (ch == '\n' && was_cr) ? 0 : 1;
    c->after_cr = ch == '\r';
    brc = buf_putc(api, &c->f, ch);
    return brc ? reader_nomem(r, brc, c->row_line) : CR_PLUGIN_OK;
  }
  if (ch == '\n' && was_cr)
    return CR_PLUGIN_OK; /* the LF of a CRLF that ended the row */
  if (c->state == CSV_START && csv_nfields(c) == 0 && !c->content)
    c->row_line = r->line;
  if (ch == '\r' || ch == '\n') {
    int rc = CR_PLUGIN_OK;
    if (c->content) {
      if (c->state == CSV_START)
        brc = csv_field_begin(api, c);
      if (brc == 0)
        brc = csv_end_field(api, c);
      rc = brc ? reader_nomem(r, brc, c->row_line) : csv_end_row(r, c);
    }
    c->state = CSV_START;
    c->after_cr = ch == '\r';
    r->line++;
    return rc;
  }
  c->content = 1;
  switch (c->state) {
  case CSV_START:
    brc = csv_field_begin(api, c);
    if (brc == 0 && ch == ',')
      brc = csv_end_field(api, c);
    else if (brc == 0 && ch == '"')
      c->state = CSV_QUOTED;
    else if (brc == 0) {
      brc = buf_putc(api, &c->f, ch);
      c->state = CSV_UNQUOTED;
    }
    break;
  case CSV_UNQUOTED:
    if (ch == ',') {
      brc = csv_end_field(api, c);
      c->state = CSV_START;
    } else {
      brc = buf_putc(api, &c->f, ch);
    }
    break;
  case CSV_QUOTE_END:
    if (ch == '"') {
      brc = buf_putc(api, &c->f, '"');
      c->state = CSV_QUOTED;
    } else if (ch == ',') {
      brc = csv_end_field(api, c);
      c->state = CSV_START;
    } else {
      return reader_fail(r, r->line, "unexpected character after a quote");
    }
    break;
  case CSV_QUOTED:
    break;
  }
  if (brc == 0 && c->f.len > FILEDROP_MAX_RECORD)
    brc = -2;
  return brc ? reader_nomem(r, brc, c->row_line) : CR_PLUGIN_OK;
}

/* Ends the file: the last row may lack its line break. */
static int csv_finish(struct fd_reader *r, struct csv *c) {
  if (c->state == CSV_QUOTED)
    return reader_fail(r, c->row_line, "unterminated quoted field");
  if (!c->content)
    return CR_PLUGIN_OK;
  int brc = 0;
  if (c->state == CSV_START)
    brc = csv_field_begin(r->fd->api, c);
  if (brc == 0)
    brc = csv_end_field(r->fd->api, c);
  return brc ? reader_nomem(r, brc, c->row_line) : csv_end_row(r, c);
}

static void csv_free(const struct cr_host_api *api, struct csv *c) {
  api->free(c->f.p);
  api->free(c->off.p);
  api->free(c->keys.p);
  api->free(c->keyoff.p);
}

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
         c == '\v';
}

/* Checks and emits one JSONL line held in r->rec. */
static int jsonl_line(struct fd_reader *r) {
  char *s = r->rec.p;
  size_t a = 0, b = r->rec.len;
  while (a < b && is_blank(s[a]))
    a++;
  while (b > a && is_blank(s[b - 1]))
    b--;
  if (a == b)
    return CR_PLUGIN_OK;
  if (s[a] != '{' || s[b - 1] != '}')
    return reader_fail(r, r->line, "not a JSON object");
  if (memchr(s + a, '\0', b - a) != NULL)
    return reader_fail(r, r->line, "NUL byte");
  if (!utf8_valid((const unsigned char *)s + a, b - a))
    return reader_fail(r, r->line, "invalid UTF-8");
  memmove(s, s + a, b - a);
  r->rec.len = b - a;
  return reader_emit(r);
}

/* Reads a whole open file through the format's parser. */
static int read_stream_file(struct fd_reader *r, FILE *f,
                            enum filedrop_format fmt, char *chunk) {
  const struct cr_host_api *api = r->fd->api;
  struct csv c;
  memset(&c, 0, sizeof c);
  int rc = CR_PLUGIN_OK, first = 1;
  size_t got;
  r->line = 1;
  r->rec.len = 0;
  while (rc == CR_PLUGIN_OK && (got = fread(chunk, 1, FILEDROP_CHUNK, f)) > 0) {
    size_t i = 0;
    if (first && got >= 3 && memcmp(chunk, "\xEF\xBB\xBF", 3) == 0)
      i = 3;
    first = 0;
    for (; i < got && rc == CR_PLUGIN_OK; i++) {
      if (fmt == FD_CSV) {
        rc = csv_byte(r, &c, chunk[i]);
        continue;
      }
      if (chunk[i] != '\n') {
        int brc = r->rec.len >= FILEDROP_MAX_RECORD
                      ? -2
                      : buf_putc(api, &r->rec, chunk[i]);
        if (brc != 0)
          rc = reader_nomem(r, brc, r->line);
        continue;
      }
      rc = jsonl_line(r);
      r->rec.len = 0;
      r->line++;
    }
  }
  if (rc == CR_PLUGIN_OK && ferror(f))
    rc = cr_plugin_errorf(api, r->ctx, CR_PLUGIN_ERR_TRANSIENT, 0,
                          "cannot read %s: %s", r->file, strerror(errno));
  if (rc == CR_PLUGIN_OK)
    rc = fmt == FD_CSV ? csv_finish(r, &c) : jsonl_line(r);
  csv_free(api, &c);
  return rc;
}

/* ---- read -----------------------------------------------------------------
 */

/* Reads one listed file and checkpoints after it. */
static int read_one(struct filedrop *fd, cr_plugin_ctx *ctx,
                    const struct fd_file *file, char *chunk,
                    struct fd_buf *rec) {
  const struct cr_host_api *api = fd->api;
  struct filedrop_stream *st = &fd->streams[file->stream];
  char path[FILEDROP_DIR_MAX + 300];
  snprintf(path, sizeof path, "%s/%s", fd->directory, file->name);
  FILE *f = fopen(path, "rb");
  int rc = CR_PLUGIN_OK;
  if (f == NULL && errno == ENOENT) {
    cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_WARN, "%s vanished before reading",
                   file->name);
  } else if (f == NULL) {
    int err = errno;
    return cr_plugin_errorf(api, ctx,
                            err == EACCES ? CR_PLUGIN_ERR_CONFIG
                                          : CR_PLUGIN_ERR_TRANSIENT,
                            0, "cannot open %s: %s", file->name, strerror(err));
  } else {
    struct fd_reader r = {.fd = fd,
                          .ctx = ctx,
                          .file = file->name,
                          .stream = st->name,
                          .rec = *rec};
    rc = read_stream_file(&r, f, st->format, chunk);
    *rec = r.rec;
    fclose(f);
    if (rc != CR_PLUGIN_OK)
      return rc;
    cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_INFO, "%s: %llu records (stream %s)",
                   file->name, r.records, st->name);
  }
  st->done++;
  api->progress(ctx, st->name, st->done, st->total);
  char esc[FILEDROP_NAME_MAX * 2 + 256 * 6 + 8];
  char state[sizeof esc + 64];
  if (cr_json_escape(file->name, esc, sizeof esc) < 0)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "file name too long: %s", file->name);
  snprintf(state, sizeof state, "{\"mtime_ns\":%lld,\"name\":\"%s\"}",
           file->mtime_ns, esc);
  return api->checkpoint(ctx, state);
}

/* Reads the cursor from the committed state. 0 or CR_PLUGIN_ERR_CONFIG. */
static int read_cursor(struct filedrop *fd, cr_plugin_ctx *ctx, int *have,
                       long long *mtime, char *name, size_t namelen) {
  const char *state = fd->api->state(ctx);
  *have = 0;
  if (state == NULL || state[0] == '\0')
    return CR_PLUGIN_OK;
  if (cr_json_get_int(state, "mtime_ns", mtime) != 0 ||
      cr_json_get_string(state, "name", name, namelen) != 0)
    return cr_plugin_errorf(fd->api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "unreadable state (expected "
                            "{\"mtime_ns\":N,\"name\":\"file\"})");
  *have = 1;
  return CR_PLUGIN_OK;
}

static int filedrop_read(void *instance, cr_plugin_ctx *ctx) {
  struct filedrop *fd = instance;
  const struct cr_host_api *api = fd->api;
  if (fd->nstreams == 0)
    return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_CONFIG, 0,
                            "no streams configured");
  int have = 0;
  long long cm = 0;
  char cn[1024];
  int rc = read_cursor(fd, ctx, &have, &cm, cn, sizeof cn);
  if (rc != CR_PLUGIN_OK)
    return rc;
  struct fd_list l = {0};
  struct fd_buf rec = {0};
  char *chunk = NULL;
  rc = list_files(fd, ctx, have, cm, cn, &l);
  if (rc != CR_PLUGIN_OK)
    goto out;
  chunk = api->alloc(FILEDROP_CHUNK);
  if (chunk == NULL) {
    rc = cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_SYSTEM, 0, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < fd->nstreams; i++)
    fd->streams[i].total = fd->streams[i].done = 0;
  for (size_t i = 0; i < l.n; i++)
    fd->streams[l.v[i].stream].total++;
  cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_INFO, "%zu new files in %s", l.n,
                 fd->directory);
  for (size_t i = 0; i < l.n && rc == CR_PLUGIN_OK; i++) {
    if (api->cancelled(ctx)) {
      rc = CR_PLUGIN_ERR_CANCELLED;
      break;
    }
    rc = read_one(fd, ctx, &l.v[i], chunk, &rec);
  }
out:
  api->free(chunk);
  api->free(rec.p);
  list_free(api, &l);
  return rc;
}

/* ---- The descriptor ---------------------------------------------------------
 */

static const char *const filedrop_auth_methods[] = {"none", NULL};

static const struct cr_plugin_descriptor filedrop_descriptor = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "filedrop",
    .display_name = "File drop",
    .version = "0.1.0",
    .description = "CSV and JSONL files dropped into a local directory",
    .auth_methods = filedrop_auth_methods,
    .credentials_schema = filedrop_credentials_schema,
    .config_schema = filedrop_config_schema,
    .streams_json = NULL,
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ,
    .create = filedrop_create,
    .destroy = filedrop_destroy,
    .health_check = filedrop_health_check,
    .read = filedrop_read,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &filedrop_descriptor;
}
