/* wire.c: encoder, streaming decoder and blocking pipe helpers for the
 * parent<->worker protocol (layout documented in wire.h). Both directions are
 * driven by one field table per message type, so encode, size and decode
 * cannot disagree. */
#include "plugin/wire.h"

#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

enum field_kind { F_U32, F_I32, F_U64, F_I64, F_STR };

struct field {
  uint8_t kind;
  uint16_t off; /* offset in struct cr_wire_msg */
};

#define FLD(kind, member)                                                      \
  { kind, (uint16_t)offsetof(struct cr_wire_msg, u.member) }

static const struct field hello_f[] = {
    FLD(F_U32, hello.version), FLD(F_I32, hello.pid), FLD(F_STR, hello.plugin)};
static const struct field job_f[] = {
    FLD(F_STR, job.execution_id),  FLD(F_U64, job.epoch),
    FLD(F_STR, job.work_id),       FLD(F_STR, job.authorization_id),
    FLD(F_STR, job.auth_method),   FLD(F_STR, job.provider),
    FLD(F_STR, job.plugin_path),   FLD(F_STR, job.credentials_json),
    FLD(F_STR, job.config_json),   FLD(F_STR, job.state_json),
    FLD(F_U64, job.timeout_ms),    FLD(F_U64, job.memory_limit_mb),
    FLD(F_STR, job.settings_json), FLD(F_STR, job.plugin_id),
    FLD(F_STR, job.dest_dir)};
static const struct field record_f[] = {FLD(F_STR, record.stream),
                                        FLD(F_STR, record.json)};
static const struct field checkpoint_f[] = {
    FLD(F_STR, checkpoint.state_json),
    FLD(F_U64, checkpoint.records_since_last)};
static const struct field log_f[] = {FLD(F_I32, log.level),
                                     FLD(F_STR, log.text)};
static const struct field progress_f[] = {FLD(F_STR, progress.stream),
                                          FLD(F_U64, progress.done),
                                          FLD(F_U64, progress.total)};
static const struct field metrics_f[] = {FLD(F_U64, metrics.requests),
                                         FLD(F_U64, metrics.errors),
                                         FLD(F_U64, metrics.bytes)};
static const struct field credentials_f[] = {FLD(F_STR, credentials.json)};
static const struct field result_f[] = {
    FLD(F_I32, result.code), FLD(F_STR, result.error_class),
    FLD(F_STR, result.message), FLD(F_I64, result.retry_after_ms),
    FLD(F_U64, result.records)};
static const struct field ack_f[] = {FLD(F_U64, ack.seq)};
static const struct field records_f[] = {FLD(F_STR, records.stream),
                                         FLD(F_U64, records.count),
                                         FLD(F_STR, records.lines)};
static const struct field wrote_f[] = {FLD(F_STR, wrote.stream),
                                       FLD(F_U64, wrote.count)};
static const struct field dest_error_f[] = {FLD(F_STR, dest_error.stream),
                                            FLD(F_I32, dest_error.code),
                                            FLD(F_STR, dest_error.message)};

struct msg_def {
  const char *name;
  const struct field *fields;
  size_t n;
};

#define DEF(name, arr)                                                         \
  { name, arr, sizeof arr / sizeof arr[0] }

static const struct msg_def defs[] = {
    [CR_WIRE_HELLO] = DEF("HELLO", hello_f),
    [CR_WIRE_JOB] = DEF("JOB", job_f),
    [CR_WIRE_RECORD] = DEF("RECORD", record_f),
    [CR_WIRE_CHECKPOINT] = DEF("CHECKPOINT", checkpoint_f),
    [CR_WIRE_LOG] = DEF("LOG", log_f),
    [CR_WIRE_PROGRESS] = DEF("PROGRESS", progress_f),
    [CR_WIRE_METRICS] = DEF("METRICS", metrics_f),
    [CR_WIRE_CREDENTIALS] = DEF("CREDENTIALS", credentials_f),
    [CR_WIRE_RESULT] = DEF("RESULT", result_f),
    [CR_WIRE_CANCEL] = {"CANCEL", NULL, 0},
    [CR_WIRE_ACK] = DEF("ACK", ack_f),
    [CR_WIRE_BYE] = {"BYE", NULL, 0},
    [CR_WIRE_RECORDS] = DEF("RECORDS", records_f),
    [CR_WIRE_WROTE] = DEF("WROTE", wrote_f),
    [CR_WIRE_DEST_ERROR] = DEF("DEST_ERROR", dest_error_f),
};

#define NDEFS (sizeof defs / sizeof defs[0])

static const struct msg_def *def_of(int type) {
  if (type <= 0 || (size_t)type >= NDEFS || defs[type].name == NULL)
    return NULL;
  return &defs[type];
}

const char *cr_wire_type_name(int type) {
  const struct msg_def *d = def_of(type);
  return d ? d->name : "UNKNOWN";
}

/* ---- little-endian helpers ---------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)v);
  put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static size_t kind_size(int kind) {
  return (kind == F_U32 || kind == F_I32 || kind == F_STR) ? 4 : 8;
}

/* ---- encoder ------------------------------------------------------------ */

void cr_wire_buf_init(cr_wire_buf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
}

void cr_wire_buf_free(cr_wire_buf *b) {
  if (b == NULL)
    return;
  cr__free(b->data);
  cr_wire_buf_init(b);
}

void cr_wire_buf_reset(cr_wire_buf *b) { b->len = 0; }

static int buf_reserve(cr_wire_buf *b, size_t extra) {
  if (extra <= b->cap - b->len)
    return 0;
  if (extra > SIZE_MAX / 2 - b->len)
    return CR_ENOMEM;
  size_t want = b->cap ? b->cap : 256;
  while (want < b->len + extra)
    want *= 2;
  uint8_t *p = cr__realloc(b->data, want);
  if (p == NULL)
    return CR_ENOMEM;
  b->data = p;
  b->cap = want;
  return 0;
}

/* Payload size of msg per its table; CR_EINVAL/CR_ERANGE on bad views. */
static int payload_size(const struct msg_def *def, const struct cr_wire_msg *m,
                        size_t *out) {
  size_t n = 2;
  for (size_t i = 0; i < def->n; i++) {
    n += kind_size(def->fields[i].kind);
    if (def->fields[i].kind != F_STR)
      continue;
    const cr_wire_str *s =
        (const cr_wire_str *)((const char *)m + def->fields[i].off);
    if (s->ptr == NULL && s->len > 0)
      return CR_EINVAL;
    if (s->len > CR_WIRE_MAX_FRAME)
      return CR_ERANGE;
    n += s->len;
  }
  if (n > CR_WIRE_MAX_FRAME)
    return CR_ERANGE;
  *out = n;
  return 0;
}

static uint8_t *put_field(uint8_t *p, const struct field *f,
                          const struct cr_wire_msg *m) {
  const char *src = (const char *)m + f->off;
  uint32_t v32;
  uint64_t v64;
  switch (f->kind) {
  case F_U32:
  case F_I32:
    memcpy(&v32, src, 4);
    put_u32(p, v32);
    return p + 4;
  case F_U64:
  case F_I64:
    memcpy(&v64, src, 8);
    put_u64(p, v64);
    return p + 8;
  default: {
    const cr_wire_str *s = (const cr_wire_str *)src;
    put_u32(p, (uint32_t)s->len);
    if (s->len)
      memcpy(p + 4, s->ptr, s->len);
    return p + 4 + s->len;
  }
  }
}

int cr_wire_encode(cr_wire_buf *b, const struct cr_wire_msg *msg) {
  if (b == NULL || msg == NULL)
    return CR_EINVAL;
  const struct msg_def *def = def_of(msg->type);
  if (def == NULL)
    return CR_EINVAL;
  size_t plen;
  int rc = payload_size(def, msg, &plen);
  if (rc == 0)
    rc = buf_reserve(b, CR_WIRE_HEADER + plen);
  if (rc < 0)
    return rc;
  uint8_t *p = b->data + b->len;
  put_u32(p, (uint32_t)plen);
  p[4] = CR_WIRE_VERSION;
  p[5] = (uint8_t)msg->type;
  p += 6;
  for (size_t i = 0; i < def->n; i++)
    p = put_field(p, &def->fields[i], msg);
  b->len += CR_WIRE_HEADER + plen;
  return 0;
}

int cr_wire_encode_record(cr_wire_buf *b, const char *stream, const char *json,
                          size_t len) {
  struct cr_wire_msg m = {.type = CR_WIRE_RECORD};
  m.u.record.stream = cr_wire_cstr(stream);
  m.u.record.json.ptr = json;
  m.u.record.json.len = len;
  return cr_wire_encode(b, &m);
}

/* ---- RECORDS batches ------------------------------------------------------
 * Layout: u32 len | u8 version | u8 type | u32 slen | stream | u64 count |
 * u32 lines_len | lines. The lengths and the count are written by end. */

int cr_wire_batch_begin(cr_wire_buf *b, cr_wire_batch *t, const char *stream) {
  if (b == NULL || t == NULL || stream == NULL || t->open)
    return CR_EINVAL;
  size_t slen = strlen(stream);
  if (slen > CR_WIRE_MAX_FRAME / 2)
    return CR_ERANGE;
  size_t head = CR_WIRE_HEADER + 2 + 4 + slen + 8 + 4;
  int rc = buf_reserve(b, head);
  if (rc < 0)
    return rc;
  uint8_t *p = b->data + b->len;
  p[4] = CR_WIRE_VERSION;
  p[5] = CR_WIRE_RECORDS;
  put_u32(p + 6, (uint32_t)slen);
  memcpy(p + 10, stream, slen);
  t->start = b->len;
  t->lines_at = b->len + head;
  t->count = 0;
  t->open = 1;
  b->len += head;
  return 0;
}

int cr_wire_batch_add(cr_wire_buf *b, cr_wire_batch *t, const char *json,
                      size_t len) {
  if (b == NULL || t == NULL || !t->open || (json == NULL && len > 0))
    return CR_EINVAL;
  if (len + 1 > CR_WIRE_MAX_FRAME - (b->len - t->start - CR_WIRE_HEADER))
    return CR_ERANGE;
  int rc = buf_reserve(b, len + 1);
  if (rc < 0)
    return rc;
  memcpy(b->data + b->len, json, len);
  b->data[b->len + len] = '\n';
  b->len += len + 1;
  t->count++;
  return 0;
}

void cr_wire_batch_end(cr_wire_buf *b, cr_wire_batch *t) {
  if (b == NULL || t == NULL || !t->open)
    return;
  t->open = 0;
  if (t->count == 0) {
    b->len = t->start;
    return;
  }
  uint8_t *p = b->data + t->start;
  put_u32(p, (uint32_t)(b->len - t->start - CR_WIRE_HEADER));
  put_u64(b->data + t->lines_at - 12, t->count);
  put_u32(b->data + t->lines_at - 4, (uint32_t)(b->len - t->lines_at));
}

/* ---- decoder ------------------------------------------------------------ */

void cr_wire_decoder_init(cr_wire_decoder *d) { memset(d, 0, sizeof *d); }

void cr_wire_decoder_free(cr_wire_decoder *d) {
  if (d == NULL)
    return;
  cr__free(d->data);
  cr_wire_decoder_init(d);
}

const char *cr_wire_decoder_error(const cr_wire_decoder *d) {
  return d->errmsg;
}

size_t cr_wire_decoder_pending(const cr_wire_decoder *d) {
  return d->wr - d->rd;
}

/* Makes room for extra bytes at data[wr..]: first slides unread bytes to the
 * front (lazy compaction, only when the tail is too short), then grows. */
static int dec_reserve(cr_wire_decoder *d, size_t extra) {
  if (d->rd == d->wr)
    d->rd = d->wr = 0;
  if (extra <= d->cap - d->wr)
    return 0;
  size_t unread = d->wr - d->rd;
  if (d->rd > 0) {
    memmove(d->data, d->data + d->rd, unread);
    d->rd = 0;
    d->wr = unread;
    if (extra <= d->cap - d->wr)
      return 0;
  }
  if (extra > SIZE_MAX / 2 - unread)
    return CR_ENOMEM;
  size_t want = d->cap ? d->cap : 4096;
  while (want < unread + extra)
    want *= 2;
  uint8_t *p = cr__realloc(d->data, want);
  if (p == NULL)
    return CR_ENOMEM;
  d->data = p;
  d->cap = want;
  return 0;
}

int cr_wire_feed(cr_wire_decoder *d, const void *data, size_t len) {
  if (d == NULL || (data == NULL && len > 0))
    return CR_EINVAL;
  if (len == 0)
    return 0;
  int rc = dec_reserve(d, len);
  if (rc < 0)
    return rc;
  memcpy(d->data + d->wr, data, len);
  d->wr += len;
  return 0;
}

__attribute__((format(printf, 3, 4))) static int
dec_fail(cr_wire_decoder *d, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->errmsg, sizeof d->errmsg, fmt, ap);
  va_end(ap);
  d->err = err;
  return err;
}

/* Decodes the fields of a payload body p[0..n) into out. */
static int dec_fields(cr_wire_decoder *d, const struct msg_def *def,
                      const uint8_t *p, size_t n, struct cr_wire_msg *out) {
  size_t at = 0;
  for (size_t i = 0; i < def->n; i++) {
    const struct field *f = &def->fields[i];
    char *dst = (char *)out + f->off;
    size_t k = kind_size(f->kind);
    if (n - at < k)
      return dec_fail(d, CR_EPARSE, "payload truncated at field %lu of %lu",
                      (unsigned long)i, (unsigned long)def->n);
    if (f->kind == F_STR) {
      uint32_t sl = get_u32(p + at);
      at += 4;
      if (n - at < sl)
        return dec_fail(d, CR_EPARSE,
                        "string of %lu bytes overruns frame "
                        "(field %lu)",
                        (unsigned long)sl, (unsigned long)i);
      cr_wire_str s = {(const char *)p + at, sl};
      memcpy(dst, &s, sizeof s);
      at += sl;
    } else if (k == 4) {
      uint32_t v = get_u32(p + at);
      memcpy(dst, &v, 4);
      at += 4;
    } else {
      uint64_t v = get_u64(p + at);
      memcpy(dst, &v, 8);
      at += 8;
    }
  }
  if (at != n)
    return dec_fail(d, CR_EPARSE, "%lu trailing bytes after field %lu",
                    (unsigned long)(n - at), (unsigned long)def->n);
  return 0;
}

int cr_wire_next(cr_wire_decoder *d, struct cr_wire_msg *out) {
  if (d == NULL || out == NULL)
    return CR_EINVAL;
  if (d->err)
    return d->err;
  size_t avail = d->wr - d->rd;
  if (avail < CR_WIRE_HEADER)
    return 0;
  const uint8_t *p = d->data + d->rd;
  uint32_t len = get_u32(p);
  if (len > CR_WIRE_MAX_FRAME)
    return dec_fail(d, CR_ERANGE, "frame of %lu bytes exceeds limit %lu",
                    (unsigned long)len, (unsigned long)CR_WIRE_MAX_FRAME);
  if (len < 2)
    return dec_fail(d, CR_EPARSE, "frame of %lu bytes has no header (%lu)",
                    (unsigned long)len, 2ul);
  if (avail - CR_WIRE_HEADER < len)
    return 0;
  if (p[4] != CR_WIRE_VERSION)
    return dec_fail(d, CR_EPARSE, "protocol version %lu, expected %lu",
                    (unsigned long)p[4], (unsigned long)CR_WIRE_VERSION);
  const struct msg_def *def = def_of(p[5]);
  if (def == NULL)
    return dec_fail(d, CR_EPARSE, "unknown message type %lu (version %lu)",
                    (unsigned long)p[5], (unsigned long)p[4]);
  memset(out, 0, sizeof *out);
  out->type = p[5];
  int rc = dec_fields(d, def, p + 6, len - 2, out);
  if (rc < 0)
    return rc;
  d->rd += CR_WIRE_HEADER + len;
  return 1;
}

/* ---- blocking helpers --------------------------------------------------- */

int cr_wire_write_all(int fd, const cr_wire_buf *b) {
  if (fd < 0 || b == NULL)
    return CR_EINVAL;
  size_t off = 0;
  while (off < b->len) {
    ssize_t n = write(fd, b->data + off, b->len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return CR_EIO;
    off += (size_t)n;
  }
  return 0;
}

#define READ_CHUNK 65536u

int cr_wire_fill(int fd, cr_wire_decoder *d, size_t max, size_t *got) {
  if (fd < 0 || d == NULL || got == NULL || max == 0)
    return CR_EINVAL;
  *got = 0;
  int rc = dec_reserve(d, max);
  if (rc < 0)
    return rc;
  for (;;) {
    ssize_t n = read(fd, d->data + d->wr, max);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK ? CR_EBUSY : CR_EIO;
    d->wr += (size_t)n;
    *got = (size_t)n;
    return 0;
  }
}

int cr_wire_read_msg(int fd, cr_wire_decoder *d, struct cr_wire_msg *out) {
  if (fd < 0 || d == NULL || out == NULL)
    return CR_EINVAL;
  for (;;) {
    int rc = cr_wire_next(d, out);
    if (rc != 0)
      return rc;
    size_t n;
    rc = cr_wire_fill(fd, d, READ_CHUNK, &n);
    if (rc < 0)
      return rc == CR_EBUSY ? CR_EIO : rc;
    if (n == 0)
      return d->rd == d->wr ? 0 : CR_EIO;
  }
}
