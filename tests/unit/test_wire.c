/* test_wire.c: the parent<->worker wire protocol (core/plugin/wire.c): round
 * trips, split feeding, malformed frames, a real pipe between processes (with a
 * throughput figure), a deterministic mini-fuzz loop over the libFuzzer
 * target and allocation-failure loops. */
#include "testutil.h"

#include "plugin/wire.h"
#include "util/alloc.h"
#include "util/error.h"

#include "../fuzz/fuzz_wire.c"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static cr_wire_str sv(const char *p, size_t n) {
  cr_wire_str s = {p, n};
  return s;
}

static void assert_str_eq(cr_wire_str a, cr_wire_str b) {
  assert_int_equal(a.len, b.len);
  if (a.len)
    assert_memory_equal(a.ptr, b.ptr, a.len);
}

/* Field-by-field comparison, independent of the encoder. */
static void assert_msg_eq(const struct cr_wire_msg *a,
                          const struct cr_wire_msg *b) {
  assert_int_equal(a->type, b->type);
  switch (a->type) {
  case CR_WIRE_HELLO:
    assert_int_equal(a->u.hello.version, b->u.hello.version);
    assert_int_equal(a->u.hello.pid, b->u.hello.pid);
    assert_str_eq(a->u.hello.plugin, b->u.hello.plugin);
    break;
  case CR_WIRE_JOB:
    assert_str_eq(a->u.job.execution_id, b->u.job.execution_id);
    assert_true(a->u.job.epoch == b->u.job.epoch);
    assert_str_eq(a->u.job.work_id, b->u.job.work_id);
    assert_str_eq(a->u.job.authorization_id, b->u.job.authorization_id);
    assert_str_eq(a->u.job.auth_method, b->u.job.auth_method);
    assert_str_eq(a->u.job.provider, b->u.job.provider);
    assert_str_eq(a->u.job.plugin_path, b->u.job.plugin_path);
    assert_str_eq(a->u.job.plugin_id, b->u.job.plugin_id);
    assert_str_eq(a->u.job.dest_dir, b->u.job.dest_dir);
    assert_str_eq(a->u.job.credentials_json, b->u.job.credentials_json);
    assert_str_eq(a->u.job.config_json, b->u.job.config_json);
    assert_str_eq(a->u.job.state_json, b->u.job.state_json);
    assert_true(a->u.job.timeout_ms == b->u.job.timeout_ms);
    assert_true(a->u.job.memory_limit_mb == b->u.job.memory_limit_mb);
    break;
  case CR_WIRE_RECORD:
    assert_str_eq(a->u.record.stream, b->u.record.stream);
    assert_str_eq(a->u.record.json, b->u.record.json);
    break;
  case CR_WIRE_CHECKPOINT:
    assert_str_eq(a->u.checkpoint.state_json, b->u.checkpoint.state_json);
    assert_true(a->u.checkpoint.records_since_last ==
                b->u.checkpoint.records_since_last);
    break;
  case CR_WIRE_LOG:
    assert_int_equal(a->u.log.level, b->u.log.level);
    assert_str_eq(a->u.log.text, b->u.log.text);
    break;
  case CR_WIRE_PROGRESS:
    assert_str_eq(a->u.progress.stream, b->u.progress.stream);
    assert_true(a->u.progress.done == b->u.progress.done);
    assert_true(a->u.progress.total == b->u.progress.total);
    break;
  case CR_WIRE_METRICS:
    assert_true(a->u.metrics.requests == b->u.metrics.requests);
    assert_true(a->u.metrics.errors == b->u.metrics.errors);
    assert_true(a->u.metrics.bytes == b->u.metrics.bytes);
    break;
  case CR_WIRE_CREDENTIALS:
    assert_str_eq(a->u.credentials.json, b->u.credentials.json);
    break;
  case CR_WIRE_RESULT:
    assert_int_equal(a->u.result.code, b->u.result.code);
    assert_str_eq(a->u.result.error_class, b->u.result.error_class);
    assert_str_eq(a->u.result.message, b->u.result.message);
    assert_true(a->u.result.retry_after_ms == b->u.result.retry_after_ms);
    assert_true(a->u.result.records == b->u.result.records);
    break;
  case CR_WIRE_ACK:
    assert_true(a->u.ack.seq == b->u.ack.seq);
    break;
  case CR_WIRE_WROTE:
    assert_str_eq(a->u.wrote.stream, b->u.wrote.stream);
    assert_true(a->u.wrote.count == b->u.wrote.count);
    break;
  case CR_WIRE_DEST_ERROR:
    assert_str_eq(a->u.dest_error.stream, b->u.dest_error.stream);
    assert_int_equal(a->u.dest_error.code, b->u.dest_error.code);
    assert_str_eq(a->u.dest_error.message, b->u.dest_error.message);
    break;
  case CR_WIRE_RECORDS:
    assert_str_eq(a->u.records.stream, b->u.records.stream);
    assert_true(a->u.records.count == b->u.records.count);
    assert_str_eq(a->u.records.lines, b->u.records.lines);
    break;
  default:
    break;
  }
}

#define NSAMPLES 20

/* One or more messages of every type with edge values. */
static size_t make_samples(struct cr_wire_msg *m) {
  static const char nul[] = "a\0b\0";
  size_t n = 0;
  memset(m, 0, NSAMPLES * sizeof *m);
  m[n].type = CR_WIRE_HELLO;
  m[n].u.hello.version = CR_WIRE_VERSION;
  m[n].u.hello.pid = 4242;
  m[n++].u.hello.plugin = cr_wire_cstr("sendgrid");
  m[n].type = CR_WIRE_HELLO;
  m[n].u.hello.version = UINT32_MAX;
  m[n++].u.hello.pid = INT32_MIN;
  m[n].type = CR_WIRE_JOB;
  m[n].u.job.execution_id = cr_wire_cstr("ex-1");
  m[n].u.job.epoch = UINT64_MAX;
  m[n].u.job.work_id = cr_wire_cstr("w");
  m[n].u.job.authorization_id = cr_wire_cstr("auth-9");
  m[n].u.job.auth_method = cr_wire_cstr("api_key");
  m[n].u.job.provider = cr_wire_cstr("sendgrid");
  m[n].u.job.plugin_path = cr_wire_cstr("/x/y.so");
  m[n].u.job.plugin_id = cr_wire_cstr("2049:131:16384:1733356800000000000");
  m[n].u.job.dest_dir = cr_wire_cstr("/var/lib/connrun/out");
  m[n].u.job.credentials_json = sv(nul, sizeof nul);
  m[n].u.job.config_json = cr_wire_cstr("{}");
  m[n].u.job.timeout_ms = 0;
  m[n++].u.job.memory_limit_mb = 512;
  m[n].type = CR_WIRE_RECORD;
  m[n].u.record.stream = cr_wire_cstr("contacts");
  m[n++].u.record.json = cr_wire_cstr("{\"id\":1}");
  m[n++].type = CR_WIRE_RECORD; /* both strings empty */
  m[n].type = CR_WIRE_CHECKPOINT;
  m[n].u.checkpoint.state_json = cr_wire_cstr("{\"c\":\"z\"}");
  m[n++].u.checkpoint.records_since_last = UINT64_MAX;
  m[n].type = CR_WIRE_LOG;
  m[n].u.log.level = -1;
  m[n++].u.log.text = sv(nul, 3);
  m[n].type = CR_WIRE_PROGRESS;
  m[n].u.progress.stream = cr_wire_cstr("s");
  m[n].u.progress.done = 1;
  m[n++].u.progress.total = UINT64_MAX;
  m[n].type = CR_WIRE_METRICS;
  m[n].u.metrics.requests = UINT64_MAX;
  m[n].u.metrics.errors = 0;
  m[n++].u.metrics.bytes = 1ull << 40;
  m[n].type = CR_WIRE_CREDENTIALS;
  m[n++].u.credentials.json = cr_wire_cstr("{\"token\":\"t\"}");
  m[n].type = CR_WIRE_RESULT;
  m[n].u.result.code = INT32_MIN;
  m[n].u.result.error_class = cr_wire_cstr("rate_limited");
  m[n].u.result.message = sv(nul, 2);
  m[n].u.result.retry_after_ms = INT64_MIN;
  m[n++].u.result.records = UINT64_MAX;
  m[n].type = CR_WIRE_RESULT;
  m[n++].u.result.retry_after_ms = -1;
  m[n++].type = CR_WIRE_CANCEL;
  m[n].type = CR_WIRE_ACK;
  m[n++].u.ack.seq = UINT64_MAX;
  m[n++].type = CR_WIRE_BYE;
  m[n].type = CR_WIRE_RECORDS;
  m[n].u.records.stream = cr_wire_cstr("accounts");
  m[n].u.records.count = 2;
  m[n++].u.records.lines = cr_wire_cstr("{\"a\":1}\n{}\n");
  m[n].type = CR_WIRE_WROTE;
  m[n].u.wrote.stream = cr_wire_cstr("Account");
  m[n++].u.wrote.count = UINT64_MAX;
  m[n].type = CR_WIRE_DEST_ERROR;
  m[n].u.dest_error.stream = cr_wire_cstr("s");
  m[n].u.dest_error.code = INT32_MIN;
  m[n++].u.dest_error.message = cr_wire_cstr("write: No space left on device");
  assert_true(n <= NSAMPLES);
  return n;
}

static void encode_samples(cr_wire_buf *b, struct cr_wire_msg *m, size_t *n) {
  *n = make_samples(m);
  cr_wire_buf_init(b);
  for (size_t i = 0; i < *n; i++)
    assert_int_equal(cr_wire_encode(b, &m[i]), 0);
}

static void test_roundtrip_every_type(void **state) {
  (void)state;
  struct cr_wire_msg m[NSAMPLES], out;
  size_t n;
  cr_wire_buf b;
  encode_samples(&b, m, &n);
  cr_wire_decoder d;
  cr_wire_decoder_init(&d);
  assert_int_equal(cr_wire_feed(&d, b.data, b.len), 0);
  int seen[CR_WIRE_DEST_ERROR + 1] = {0};
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(cr_wire_next(&d, &out), 1);
    assert_msg_eq(&m[i], &out);
    seen[out.type] = 1;
  }
  assert_int_equal(cr_wire_next(&d, &out), 0);
  assert_int_equal(cr_wire_decoder_pending(&d), 0);
  for (int t = CR_WIRE_HELLO; t <= CR_WIRE_DEST_ERROR; t++) {
    assert_true(seen[t]);
    assert_string_not_equal(cr_wire_type_name(t), "UNKNOWN");
  }
  assert_string_equal(cr_wire_type_name(99), "UNKNOWN");
  /* Exact bytes of one frame: ACK(seq=0x0102030405060708). */
  cr_wire_buf_reset(&b);
  struct cr_wire_msg ack = {.type = CR_WIRE_ACK};
  ack.u.ack.seq = 0x0102030405060708ull;
  assert_int_equal(cr_wire_encode(&b, &ack), 0);
  static const uint8_t want[] = {
      10, 0, 0, 0, CR_WIRE_VERSION, CR_WIRE_ACK, 8, 7, 6, 5, 4, 3, 2, 1};
  assert_int_equal(b.len, sizeof want);
  assert_memory_equal(b.data, want, sizeof want);
  cr_wire_decoder_free(&d);
  cr_wire_buf_free(&b);
}

static void test_encode_invalid(void **state) {
  (void)state;
  cr_wire_buf b;
  cr_wire_buf_init(&b);
  struct cr_wire_msg m = {.type = 0};
  assert_int_equal(cr_wire_encode(&b, &m), CR_EINVAL);
  m.type = CR_WIRE_DEST_ERROR + 1;
  assert_int_equal(cr_wire_encode(&b, &m), CR_EINVAL);
  m.type = CR_WIRE_RECORD;
  m.u.record.json = sv(NULL, 3);
  assert_int_equal(cr_wire_encode(&b, &m), CR_EINVAL);
  assert_int_equal(cr_wire_encode(NULL, &m), CR_EINVAL);
  /* Over the frame limit: rejected before any byte is read. */
  static const char small[4] = "abc";
  m.u.record.json = sv(small, CR_WIRE_MAX_FRAME);
  assert_int_equal(cr_wire_encode(&b, &m), CR_ERANGE);
  m.u.record.json = sv(small, (size_t)CR_WIRE_MAX_FRAME - 8);
  m.u.record.stream = sv(small, 3);
  assert_int_equal(cr_wire_encode(&b, &m), CR_ERANGE);
  assert_int_equal(b.len, 0);
  cr_wire_buf_free(&b);
}

/* A batch built record by record decodes as the RECORDS message
 * cr_wire_encode makes of the same fields, byte for byte; an empty batch
 * leaves nothing; a batch stops at the frame limit. */
static void test_batch_records(void **state) {
  (void)state;
  cr_wire_buf b, want;
  cr_wire_buf_init(&b);
  cr_wire_buf_init(&want);
  cr_wire_batch t = {0};
  assert_int_equal(cr_wire_batch_add(&b, &t, "{}", 2), CR_EINVAL);
  assert_int_equal(cr_wire_batch_begin(&b, &t, "empty"), 0);
  assert_int_equal(cr_wire_batch_begin(&b, &t, "twice"), CR_EINVAL);
  cr_wire_batch_end(&b, &t);
  assert_int_equal(b.len, 0);
  struct cr_wire_msg ack = {.type = CR_WIRE_ACK};
  assert_int_equal(cr_wire_encode(&b, &ack), 0);
  assert_int_equal(cr_wire_encode(&want, &ack), 0);
  assert_int_equal(cr_wire_batch_begin(&b, &t, "Account"), 0);
  assert_int_equal(cr_wire_batch_add(&b, &t, "{\"Id\":\"1\"}", 10), 0);
  assert_int_equal(cr_wire_batch_add(&b, &t, "{\"Id\":\"22\"}xyz", 11), 0);
  cr_wire_batch_end(&b, &t);
  cr_wire_batch_end(&b, &t); /* closed: no-op */
  struct cr_wire_msg m = {.type = CR_WIRE_RECORDS};
  m.u.records.stream = cr_wire_cstr("Account");
  m.u.records.count = 2;
  m.u.records.lines = cr_wire_cstr("{\"Id\":\"1\"}\n{\"Id\":\"22\"}\n");
  assert_int_equal(cr_wire_encode(&want, &m), 0);
  assert_int_equal(b.len, want.len);
  assert_memory_equal(b.data, want.data, want.len);
  cr_wire_decoder d;
  cr_wire_decoder_init(&d);
  struct cr_wire_msg out;
  assert_int_equal(cr_wire_feed(&d, b.data, b.len), 0);
  assert_int_equal(cr_wire_next(&d, &out), 1);
  assert_int_equal(out.type, CR_WIRE_ACK);
  assert_int_equal(cr_wire_next(&d, &out), 1);
  assert_msg_eq(&m, &out);
  /* The frame limit: the record that would pass it is refused, the frame
   * keeps what it had and still decodes. */
  size_t big = CR_WIRE_MAX_FRAME / 2, cap = big + 64;
  char *rec = malloc(cap);
  assert_non_null(rec);
  memset(rec, 'x', cap);
  cr_wire_buf_reset(&b);
  assert_int_equal(cr_wire_batch_begin(&b, &t, "s"), 0);
  assert_int_equal(cr_wire_batch_add(&b, &t, rec, big - 64), 0);
  size_t before = b.len;
  assert_int_equal(cr_wire_batch_add(&b, &t, rec, big + 64), CR_ERANGE);
  assert_int_equal(b.len, before);
  cr_wire_batch_end(&b, &t);
  assert_int_equal(cr_wire_feed(&d, b.data, b.len), 0);
  assert_int_equal(cr_wire_next(&d, &out), 1);
  assert_int_equal(out.type, CR_WIRE_RECORDS);
  assert_true(out.u.records.count == 1);
  assert_int_equal(out.u.records.lines.len, big - 63);
  free(rec);
  cr_wire_decoder_free(&d);
  cr_wire_buf_free(&b);
  cr_wire_buf_free(&want);
}

/* Feeds s split at pos (and byte-by-byte when pos is SIZE_MAX), checking the
 * decoded sequence against m[0..n). */
static void feed_split(const cr_wire_buf *s, size_t pos,
                       const struct cr_wire_msg *m, size_t n) {
  cr_wire_decoder d;
  struct cr_wire_msg out;
  size_t got = 0, at = 0;
  cr_wire_decoder_init(&d);
  while (at < s->len) {
    size_t len = pos == SIZE_MAX ? 1 : (at < pos ? pos : s->len - at);
    assert_int_equal(cr_wire_feed(&d, s->data + at, len), 0);
    at += len;
    int rc;
    while ((rc = cr_wire_next(&d, &out)) == 1) {
      assert_true(got < n);
      assert_msg_eq(&m[got++], &out);
    }
    assert_int_equal(rc, 0);
  }
  assert_int_equal(got, n);
  assert_int_equal(cr_wire_decoder_pending(&d), 0);
  cr_wire_decoder_free(&d);
}

static void test_split_feeding(void **state) {
  (void)state;
  struct cr_wire_msg m[NSAMPLES];
  size_t n;
  cr_wire_buf b;
  encode_samples(&b, m, &n);
  for (size_t pos = 0; pos <= b.len; pos++)
    feed_split(&b, pos, m, n);
  feed_split(&b, SIZE_MAX, m, n);
  cr_wire_buf_free(&b);
}

/* Decodes raw bytes; returns the first non-1 result of cr_wire_next. */
static int decode_raw(const uint8_t *p, size_t len, char *err, size_t errlen) {
  cr_wire_decoder d;
  struct cr_wire_msg out;
  int rc;
  cr_wire_decoder_init(&d);
  assert_int_equal(cr_wire_feed(&d, p, len), 0);
  while ((rc = cr_wire_next(&d, &out)) == 1)
    ;
  if (rc < 0) /* sticky */
    assert_int_equal(cr_wire_next(&d, &out), rc);
  snprintf(err, errlen, "%s", cr_wire_decoder_error(&d));
  cr_wire_decoder_free(&d);
  return rc;
}

static void test_malformed_frames(void **state) {
  (void)state;
  char err[128];
  /* Oversize: length CR_WIRE_MAX_FRAME + 1, detected from the header. */
  uint8_t big[4] = {0x01, 0x00, 0x00, 0x01};
  assert_int_equal(decode_raw(big, 4, err, sizeof err), CR_ERANGE);
  assert_non_null(strstr(err, "exceeds"));
  /* Exactly the limit is only "need more". */
  uint8_t lim[4] = {0x00, 0x00, 0x00, 0x01};
  assert_int_equal(decode_raw(lim, 4, err, sizeof err), 0);
  /* Length 10 but CHECKPOINT needs 2 + 4 + 8 = 14 even with an empty str. */
  uint8_t tr[14] = {10, 0, 0, 0, CR_WIRE_VERSION, CR_WIRE_CHECKPOINT};
  assert_int_equal(decode_raw(tr, sizeof tr, err, sizeof err), CR_EPARSE);
  assert_non_null(strstr(err, "truncated"));
  /* String length runs past the frame. */
  uint8_t so[] = {8, 0, 0,   0,  CR_WIRE_VERSION, CR_WIRE_CREDENTIALS, 3, 0,
                  0, 0, 'a', 'b'};
  assert_int_equal(decode_raw(so, sizeof so, err, sizeof err), CR_EPARSE);
  /* Trailing bytes after the last field. */
  uint8_t tb[] = {3, 0, 0, 0, CR_WIRE_VERSION, CR_WIRE_BYE, 0};
  assert_int_equal(decode_raw(tb, sizeof tb, err, sizeof err), CR_EPARSE);
  assert_non_null(strstr(err, "trailing"));
  /* Frame too short for version + type. */
  uint8_t sh[] = {1, 0, 0, 0, 1};
  assert_int_equal(decode_raw(sh, sizeof sh, err, sizeof err), CR_EPARSE);
  /* Unknown types and wrong versions. */
  uint8_t ty[] = {2, 0, 0, 0, CR_WIRE_VERSION, 0};
  static const uint8_t bad_types[] = {0, CR_WIRE_DEST_ERROR + 1, 200, 255};
  for (size_t i = 0; i < sizeof bad_types; i++) {
    ty[5] = bad_types[i];
    assert_int_equal(decode_raw(ty, sizeof ty, err, sizeof err), CR_EPARSE);
    assert_non_null(strstr(err, "unknown message type"));
  }
  uint8_t ve[] = {2, 0, 0, 0, 0, CR_WIRE_BYE};
  /* 1: before settings, 2: before plugin_id, 3: before RECORDS */
  static const uint8_t bad_versions[] = {0, 1, 2, 3, 5, 255};
  for (size_t i = 0; i < sizeof bad_versions; i++) {
    ve[4] = bad_versions[i];
    assert_int_equal(decode_raw(ve, sizeof ve, err, sizeof err), CR_EPARSE);
    assert_non_null(strstr(err, "version"));
  }
  /* A good frame before a bad one is still delivered. */
  uint8_t gb[] = {2, 0, 0, 0, CR_WIRE_VERSION, CR_WIRE_BYE,
                  2, 0, 0, 0, CR_WIRE_VERSION, 99};
  cr_wire_decoder d;
  struct cr_wire_msg out;
  cr_wire_decoder_init(&d);
  assert_int_equal(cr_wire_feed(&d, gb, sizeof gb), 0);
  assert_int_equal(cr_wire_next(&d, &out), 1);
  assert_int_equal(out.type, CR_WIRE_BYE);
  assert_int_equal(cr_wire_next(&d, &out), CR_EPARSE);
  cr_wire_decoder_free(&d);
}

/* ---- real pipe ---------------------------------------------------------- */

#define PIPE_RECORDS 100000
#define RECORD_BYTES 300

/* Deterministic ~300-byte JSON record number i; returns its length. */
static size_t make_record(char *out, unsigned i) {
  int n = snprintf(out, RECORD_BYTES + 1,
                   "{\"id\":%u,\"email\":\"u%u@x.io\","
                   "\"pad\":\"",
                   i, i * 7919u);
  for (; n < RECORD_BYTES - 2; n++)
    out[n] = (char)('a' + (i + (unsigned)n) % 26);
  out[n++] = '"';
  out[n++] = '}';
  out[n] = '\0';
  return (size_t)n;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ c[i]) * 1099511628211ull;
  return h;
}

static void pipe_child(int fd) {
  cr_wire_buf b;
  char rec[RECORD_BYTES + 1];
  cr_wire_buf_init(&b);
  for (unsigned i = 0; i < PIPE_RECORDS; i++) {
    size_t len = make_record(rec, i);
    if (cr_wire_encode_record(&b, i % 3 ? "contacts" : "lists", rec, len))
      _exit(2);
    if (b.len >= 65536) {
      if (cr_wire_write_all(fd, &b))
        _exit(3);
      cr_wire_buf_reset(&b);
    }
  }
  struct cr_wire_msg bye = {.type = CR_WIRE_BYE};
  if (cr_wire_encode(&b, &bye) || cr_wire_write_all(fd, &b))
    _exit(4);
  cr_wire_buf_free(&b);
  close(fd);
  _exit(0);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_pipe_between_processes(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  double t0 = now_s();
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    pipe_child(fds[1]);
  }
  close(fds[1]);
  cr_wire_decoder d;
  struct cr_wire_msg m;
  char rec[RECORD_BYTES + 1];
  uint64_t want = 1469598103934665603ull, got = want, bytes = 0;
  unsigned count = 0;
  int rc;
  cr_wire_decoder_init(&d);
  cr_test_alloc_install();
  long allocs = cr_test_alloc_count();
  while ((rc = cr_wire_read_msg(fds[0], &d, &m)) == 1 &&
         m.type == CR_WIRE_RECORD) {
    size_t len = make_record(rec, count);
    want = fnv(want, rec, len);
    got = fnv(got, m.u.record.json.ptr, m.u.record.json.len);
    assert_str_eq(m.u.record.stream,
                  cr_wire_cstr(count % 3 ? "contacts" : "lists"));
    bytes += m.u.record.json.len;
    count++;
  }
  double dt = now_s() - t0;
  /* No per-record allocation: only a few buffer growths. */
  assert_in_range(cr_test_alloc_count() - allocs, 1, 15);
  assert_int_equal(rc, 1);
  assert_int_equal(m.type, CR_WIRE_BYE);
  assert_int_equal(cr_wire_read_msg(fds[0], &d, &m), 0); /* clean EOF */
  assert_int_equal(count, PIPE_RECORDS);
  assert_true(want == got);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  printf("wire pipe throughput: %u records of %d bytes in %.3f s = "
         "%.0f records/s, %.1f MB/s\n",
         count, RECORD_BYTES, dt, count / dt, (double)bytes / dt / 1e6);
  cr_wire_decoder_free(&d);
  close(fds[0]);
}

static void test_pipe_eof_inside_frame(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  cr_wire_buf b;
  cr_wire_buf_init(&b);
  assert_int_equal(cr_wire_encode_record(&b, "s", "{}", 2), 0);
  b.len -= 1; /* the peer dies one byte short */
  assert_int_equal(cr_wire_write_all(fds[1], &b), 0);
  close(fds[1]);
  cr_wire_decoder d;
  struct cr_wire_msg m;
  cr_wire_decoder_init(&d);
  assert_int_equal(cr_wire_read_msg(fds[0], &d, &m), CR_EIO);
  assert_int_equal(cr_wire_decoder_pending(&d), b.len);
  cr_wire_decoder_free(&d);
  cr_wire_buf_free(&b);
  close(fds[0]);
  /* Writing to a pipe without reader fails cleanly (SIGPIPE ignored). */
  assert_int_equal(pipe(fds), 0);
  close(fds[0]);
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  cr_wire_buf_init(&b);
  assert_int_equal(cr_wire_encode_record(&b, "s", "{}", 2), 0);
  assert_int_equal(cr_wire_write_all(fds[1], &b), CR_EIO);
  signal(SIGPIPE, old);
  assert_int_equal(cr_wire_write_all(-1, &b), CR_EINVAL);
  cr_wire_buf_free(&b);
  close(fds[1]);
}

/* cr_wire_fill reads straight into the decoder: what is there, CR_EBUSY on
 * an empty non-blocking pipe, 0 bytes at EOF. */
static void test_fill(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  cr_wire_decoder d;
  cr_wire_decoder_init(&d);
  size_t got = 99;
  assert_int_equal(cr_wire_fill(fds[0], &d, 4096, &got), CR_EBUSY);
  assert_int_equal(got, 0);
  cr_wire_buf b;
  cr_wire_buf_init(&b);
  assert_int_equal(cr_wire_encode_record(&b, "s", "{\"a\":1}", 7), 0);
  assert_int_equal(cr_wire_write_all(fds[1], &b), 0);
  assert_int_equal(cr_wire_fill(fds[0], &d, 3, &got), 0); /* at most max */
  assert_int_equal(got, 3);
  struct cr_wire_msg m;
  assert_int_equal(cr_wire_next(&d, &m), 0);
  assert_int_equal(cr_wire_fill(fds[0], &d, 4096, &got), 0);
  assert_int_equal(got, b.len - 3);
  assert_int_equal(cr_wire_next(&d, &m), 1);
  assert_memory_equal(m.u.record.json.ptr, "{\"a\":1}", 7);
  close(fds[1]);
  assert_int_equal(cr_wire_fill(fds[0], &d, 4096, &got), 0);
  assert_int_equal(got, 0);
  assert_int_equal(cr_wire_fill(-1, &d, 4096, &got), CR_EINVAL);
  cr_wire_buf_free(&b);
  cr_wire_decoder_free(&d);
  close(fds[0]);
}

static void test_encoder_steady_state_no_alloc(void **state) {
  (void)state;
  cr_wire_buf b;
  char rec[RECORD_BYTES + 1];
  cr_wire_buf_init(&b);
  cr_test_alloc_install();
  long allocs = cr_test_alloc_count();
  size_t total = 0;
  for (unsigned i = 0; i < 20000; i++) {
    size_t before = b.len, len = make_record(rec, i);
    assert_int_equal(cr_wire_encode_record(&b, "contacts", rec, len), 0);
    assert_int_equal(b.len - before, 4 + 2 + 4 + 8 + 4 + len);
    total += b.len - before;
    if (b.len >= 65536)
      cr_wire_buf_reset(&b);
  }
  assert_in_range(cr_test_alloc_count() - allocs, 1, 15);
  assert_true(total > 20000u * RECORD_BYTES);
  cr_wire_buf_free(&b);
}

/* ---- mini-fuzz ---------------------------------------------------------- */

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

#define FUZZ_ITERS 200000
#define FUZZ_MAX 512

static void test_mini_fuzz(void **state) {
  (void)state;
  struct cr_wire_msg m[NSAMPLES];
  size_t n;
  cr_wire_buf seed;
  encode_samples(&seed, m, &n);
  uint8_t buf[FUZZ_MAX];
  size_t starts[NSAMPLES]; /* frame boundaries in seed */
  for (size_t i = 0, at = 0; i < n; i++) {
    starts[i] = at;
    at += 4 + (size_t)seed.data[at] + ((size_t)seed.data[at + 1] << 8);
  }
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  long decoded = 0, outcome[3] = {0, 0, 0}; /* need-more, EPARSE, ERANGE */
  for (long it = 0; it < FUZZ_ITERS; it++) {
    size_t len;
    uint64_t r = xorshift(&rng);
    if (r % 4 == 0) { /* pure random bytes, often with a small length */
      len = xorshift(&rng) % 64;
      for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)xorshift(&rng);
      if (len >= 6 && r % 8 == 0) { /* plausible header */
        buf[0] = (uint8_t)(len - 4 + (xorshift(&rng) % 3) - 1);
        buf[1] = buf[2] = buf[3] = 0;
        buf[4] = 1;
        buf[5] = (uint8_t)(1 + xorshift(&rng) % 12);
      }
    } else { /* a slice of the valid stream, mutated */
      size_t start =
          r % 8 == 1 ? xorshift(&rng) % seed.len : starts[xorshift(&rng) % n];
      len = xorshift(&rng) % FUZZ_MAX;
      if (len > seed.len - start)
        len = seed.len - start;
      memcpy(buf, seed.data + start, len);
      size_t flips = xorshift(&rng) % 4;
      for (size_t f = 0; f < flips && len > 0; f++)
        buf[xorshift(&rng) % len] ^= (uint8_t)(1u << (xorshift(&rng) % 8));
    }
    LLVMFuzzerTestOneInput(buf, len);
    int last;
    if (fuzz_wire_decode(buf, len, 0, &last) > 0)
      decoded++;
    outcome[last == 0 ? 0 : last == CR_EPARSE ? 1 : 2]++;
  }
  /* The corpus really exercises messages, clean ends and both errors. */
  assert_true(decoded > FUZZ_ITERS / 10);
  for (int i = 0; i < 3; i++)
    assert_true(outcome[i] > 100);
  /* The unmutated stream decodes completely. */
  int last;
  assert_int_equal(fuzz_wire_decode(seed.data, seed.len, 5, &last), n);
  assert_int_equal(last, 0);
  cr_wire_buf_free(&seed);
}

/* ---- allocation failures ------------------------------------------------ */

static void test_alloc_failures(void **state) {
  (void)state;
  struct cr_wire_msg m[NSAMPLES], out;
  size_t n = make_samples(m);
  static char big[20000];
  memset(big, 'x', sizeof big);
  cr_test_alloc_install();
  for (long fail = 0;; fail++) {
    cr_test_alloc_fail_after(fail);
    cr_wire_buf b;
    cr_wire_decoder d;
    cr_wire_buf_init(&b);
    cr_wire_decoder_init(&d);
    int rc = 0;
    for (int rep = 0; rep < 4 && rc == 0; rep++) {
      for (size_t i = 0; i < n && rc == 0; i++) {
        size_t before = b.len;
        rc = cr_wire_encode(&b, &m[i]);
        if (rc != 0)
          assert_int_equal(b.len, before); /* unchanged on failure */
      }
      if (rc == 0)
        rc = cr_wire_encode_record(&b, "big", big, sizeof big);
    }
    size_t got = 0;
    for (size_t at = 0; rc == 0 && at < b.len; at += 1000) {
      size_t len = b.len - at < 1000 ? b.len - at : 1000;
      rc = cr_wire_feed(&d, b.data + at, len);
      while (rc == 0 && cr_wire_next(&d, &out) == 1)
        got++;
    }
    cr_wire_buf_free(&b);
    cr_wire_decoder_free(&d);
    if (!cr_test_alloc_failed()) {
      assert_int_equal(rc, 0);
      assert_int_equal(got, 4 * (n + 1));
      break;
    }
    assert_int_equal(rc, CR_ENOMEM);
    assert_true(fail < 1000);
  }
  cr_test_alloc_fail_after(-1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_every_type),
      cmocka_unit_test(test_encode_invalid),
      cmocka_unit_test(test_batch_records),
      cmocka_unit_test(test_split_feeding),
      cmocka_unit_test(test_malformed_frames),
      cmocka_unit_test(test_pipe_between_processes),
      cmocka_unit_test(test_pipe_eof_inside_frame),
      cmocka_unit_test(test_fill),
      cmocka_unit_test(test_encoder_steady_state_no_alloc),
      cmocka_unit_test(test_mini_fuzz),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
