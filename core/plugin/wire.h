/* wire.h: the framed, versioned protocol between the connrun parent and a
 * `connrun worker` child process (one plugin execution), carried over a pipe.
 *
 * Frame layout (all integers fixed-width little-endian):
 *
 *   u32 len                 length of the payload that follows (no magic)
 *   payload[len]:
 *     u8  version           CR_WIRE_VERSION (1); anything else is CR_EPARSE
 *     u8  type              enum cr_wire_type; unknown is CR_EPARSE
 *     ... type fields       in the order listed below
 *
 * Field kinds: u32/i32/u64/i64 are 4/8 bytes little-endian (signed values in
 * two's complement); str is u32 byte length + bytes, no NUL terminator, may
 * contain NULs. A payload must be consumed exactly: missing bytes or trailing
 * bytes are CR_EPARSE, so every valid frame has exactly one encoding
 * (decode(x) re-encodes to x). len > CR_WIRE_MAX_FRAME is CR_ERANGE.
 *
 *   HELLO       w->p  u32 version, i32 pid, str plugin
 *   JOB         p->w  str execution_id, u64 epoch, str work_id,
 *                     str authorization_id, str auth_method, str provider,
 *                     str plugin_path, str credentials_json, str config_json,
 *                     str state_json (empty: no state), u64 timeout_ms,
 *                     u64 memory_limit_mb, str settings_json (v2),
 *                     str plugin_id (v3), str dest_dir (v4)
 *   RECORD      w->p  str stream, str json
 *   CHECKPOINT  w->p  str state_json, u64 records_since_last
 *   LOG         w->p  i32 level (cr_plugin_log_level), str text
 *   PROGRESS    w->p  str stream, u64 done, u64 total
 *   METRICS     w->p  u64 requests, u64 errors, u64 bytes
 *   CREDENTIALS w->p  str json
 *   RESULT      w->p  i32 code, str error_class, str message,
 *                     i64 retry_after_ms, u64 records
 *   RECORDS     w->p  str stream, u64 count, str lines (v4): count records
 *                     of one stream, each followed by '\n' (jsonl-ready);
 *                     built by the worker (cr_wire_batch_*) from records
 *                     that are not empty and hold no raw newline
 *   WROTE       w->p  str stream, u64 count (v4): count records of stream
 *                     taken by the worker's own destination (JOB dest_dir)
 *   DEST_ERROR  w->p  str stream, i32 code, str message (v4): the worker's
 *                     destination refused a record of stream, or (stream
 *                     empty) failed to write its buffers (a cr_err code and
 *                     its reason); the job stops
 *   CANCEL      p->w  (no fields)
 *   ACK         p->w  u64 seq (checkpoint sequence acknowledged)
 *   BYE         both  (no fields)
 *
 * Decoding is streaming and zero-copy: string fields of a decoded message
 * point into the decoder's buffer. Encoding appends to a reusable growable
 * buffer; neither side allocates per message once buffers have grown. */
#ifndef CR_WIRE_H
#define CR_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CR_WIRE_VERSION 4
/* Largest payload (bytes after the u32 length) accepted or produced. */
#define CR_WIRE_MAX_FRAME (16u * 1024u * 1024u)
/* Bytes of the length prefix. */
#define CR_WIRE_HEADER 4u

enum cr_wire_type {
  CR_WIRE_HELLO = 1,
  CR_WIRE_JOB = 2,
  CR_WIRE_RECORD = 3,
  CR_WIRE_CHECKPOINT = 4,
  CR_WIRE_LOG = 5,
  CR_WIRE_PROGRESS = 6,
  CR_WIRE_METRICS = 7,
  CR_WIRE_CREDENTIALS = 8,
  CR_WIRE_RESULT = 9,
  CR_WIRE_CANCEL = 10,
  CR_WIRE_ACK = 11,
  CR_WIRE_BYE = 12,
  CR_WIRE_RECORDS = 13,
  CR_WIRE_WROTE = 14,
  CR_WIRE_DEST_ERROR = 15,
};

/* A string view: len bytes at ptr (not NUL-terminated; may hold NULs).
 * ptr may be NULL only when len is 0. */
typedef struct {
  const char *ptr;
  size_t len;
} cr_wire_str;

/* View of a NUL-terminated string (NULL gives the empty view). s borrowed. */
static inline cr_wire_str cr_wire_cstr(const char *s) {
  cr_wire_str v = {s, s ? strlen(s) : 0};
  return v;
}

/* One message. type selects the union member. When filled by the decoder,
 * every cr_wire_str points into the decoder's buffer (borrowed, see
 * cr_wire_next). When passed to cr_wire_encode, all views are borrowed for
 * the duration of the call. */
struct cr_wire_msg {
  int type; /* enum cr_wire_type */
  union {
    struct {
      uint32_t version;
      int32_t pid;
      cr_wire_str plugin;
    } hello;
    struct {
      cr_wire_str execution_id;
      uint64_t epoch;
      cr_wire_str work_id, authorization_id, auth_method, provider;
      cr_wire_str plugin_path, credentials_json, config_json, state_json;
      uint64_t timeout_ms, memory_limit_mb;
      cr_wire_str settings_json; /* version 2 */
      /* version 3: the identity of the plugin file the parent loaded
       * ("dev:ino:size:mtime_ns"; empty: not checked). A worker that finds
       * another file at plugin_path (a plugin upgraded in between) fails
       * the job as transient instead of running another version. */
      cr_wire_str plugin_id;
      /* version 4: a jsonl directory the worker writes the records to
       * itself (empty: records travel to the parent), reporting WROTE
       * counts; the parent makes them durable (fsync) and commits. */
      cr_wire_str dest_dir;
    } job;
    struct {
      cr_wire_str stream, json;
    } record;
    struct {
      cr_wire_str state_json;
      uint64_t records_since_last;
    } checkpoint;
    struct {
      int32_t level;
      cr_wire_str text;
    } log;
    struct {
      cr_wire_str stream;
      uint64_t done, total;
    } progress;
    struct {
      uint64_t requests, errors, bytes;
    } metrics;
    struct {
      cr_wire_str json;
    } credentials;
    struct {
      int32_t code;
      cr_wire_str error_class, message;
      int64_t retry_after_ms;
      uint64_t records;
    } result;
    struct {
      uint64_t seq;
    } ack;
    struct {
      cr_wire_str stream;
      uint64_t count;
      cr_wire_str lines; /* count records, each ending in '\n' */
    } records;
    struct {
      cr_wire_str stream;
      uint64_t count;
    } wrote;
    struct {
      cr_wire_str stream;
      int32_t code; /* a cr_err */
      cr_wire_str message;
    } dest_error;
  } u;
};

/* Name of a message type ("RECORD"); "UNKNOWN" otherwise. Static string. */
const char *cr_wire_type_name(int type);

/* ---- Encoder ------------------------------------------------------------ */

/* Growable output buffer: len bytes of encoded frames at data. */
typedef struct {
  uint8_t *data;
  size_t len, cap;
} cr_wire_buf;

/* Initialises an empty buffer (no allocation). b is borrowed. */
void cr_wire_buf_init(cr_wire_buf *b);
/* Releases the buffer memory and leaves it empty. NULL is a no-op. */
void cr_wire_buf_free(cr_wire_buf *b);
/* Forgets the contents but keeps the memory for reuse. */
void cr_wire_buf_reset(cr_wire_buf *b);

/* Appends one framed message to b. msg and its strings are borrowed (copied
 * into b). On error b is unchanged. Errors: CR_EINVAL (NULL argument,
 * unknown type, NULL view with len > 0), CR_ERANGE (a string longer than
 * UINT32_MAX or payload above CR_WIRE_MAX_FRAME), CR_ENOMEM. */
int cr_wire_encode(cr_wire_buf *b, const struct cr_wire_msg *msg);

/* Shorthand for the hot path: appends RECORD(stream, json); stream is a
 * NUL-terminated string, json is len bytes. Both borrowed. Errors as
 * cr_wire_encode. */
int cr_wire_encode_record(cr_wire_buf *b, const char *stream, const char *json,
                          size_t len);

/* A RECORDS frame being filled at the end of a cr_wire_buf: the worker's
 * batch of consecutive records of one stream, so that neither side spends
 * a frame per record. Public for stack allocation only. While a batch is
 * open nothing else may be appended to the buffer. */
typedef struct {
  size_t start;    /* offset of the frame in the buffer */
  size_t lines_at; /* offset of the first byte of lines */
  uint64_t count;
  int open;
} cr_wire_batch;

/* Opens a RECORDS frame for stream (NUL-terminated, borrowed: copied) at
 * the end of b. Errors: CR_EINVAL (NULL argument, t already open),
 * CR_ERANGE (stream too long), CR_ENOMEM (b unchanged). */
int cr_wire_batch_begin(cr_wire_buf *b, cr_wire_batch *t, const char *stream);

/* Appends one record (len > 0 bytes, no raw newline: the caller checks) and
 * its '\n' to the open frame. Errors: CR_EINVAL (t not open), CR_ERANGE
 * (the frame would pass CR_WIRE_MAX_FRAME: end it and begin another),
 * CR_ENOMEM; on error the frame is unchanged. json is borrowed. */
int cr_wire_batch_add(cr_wire_buf *b, cr_wire_batch *t, const char *json,
                      size_t len);

/* Closes the open frame: its lengths and count are written. A frame with no
 * record is removed from b. No-op when t is not open. */
void cr_wire_batch_end(cr_wire_buf *b, cr_wire_batch *t);

/* ---- Decoder ------------------------------------------------------------ */

/* Streaming decoder; the struct is public for stack allocation only, use the
 * functions. After an error it stays in error (the stream cannot be
 * resynchronised) and cr_wire_next keeps returning that error. */
typedef struct {
  uint8_t *data;
  size_t rd, wr, cap; /* unread bytes are data[rd..wr) */
  int err;
  char errmsg[128];
} cr_wire_decoder;

/* Initialises an empty decoder (no allocation). d is borrowed. */
void cr_wire_decoder_init(cr_wire_decoder *d);
/* Releases decoder memory. NULL is a no-op. */
void cr_wire_decoder_free(cr_wire_decoder *d);

/* Appends len bytes read from the peer (any split of the stream). data is
 * copied. Invalidates views of the last message. Errors: CR_EINVAL (NULL
 * with len > 0), CR_ENOMEM (d unchanged; feed again later). */
int cr_wire_feed(cr_wire_decoder *d, const void *data, size_t len);

/* Decodes the next complete message into *out. Returns 1 (a message: its
 * views are borrowed from d and valid until the next cr_wire_feed,
 * cr_wire_next, cr_wire_read_msg or cr_wire_decoder_free on d), 0 (need more
 * bytes), CR_ERANGE (frame length above CR_WIRE_MAX_FRAME), CR_EPARSE (bad
 * version, unknown type, truncated or over-long payload; see
 * cr_wire_decoder_error). Errors are sticky. */
int cr_wire_next(cr_wire_decoder *d, struct cr_wire_msg *out);

/* Text describing the decoder's error ("" when none). Borrowed from d. */
const char *cr_wire_decoder_error(const cr_wire_decoder *d);

/* Bytes fed but not yet returned as messages (a partial frame at EOF means
 * the peer died mid-message). */
size_t cr_wire_decoder_pending(const cr_wire_decoder *d);

/* ---- Blocking helpers (worker side) ------------------------------------- */

/* Writes all b->len bytes of b to fd, retrying on EINTR and partial writes
 * (b is borrowed and not modified). Errors: CR_EINVAL, CR_EIO (errno kept;
 * EPIPE when the peer is gone, SIGPIPE must be ignored by the caller). */
int cr_wire_write_all(int fd, const cr_wire_buf *b);

/* Reads once from fd (at most max bytes) straight into d's buffer, with no
 * intermediate copy; *got is the number of bytes read, 0 at EOF. Retries
 * EINTR. Errors: CR_EINVAL, CR_EBUSY (fd is non-blocking and has nothing),
 * CR_EIO (errno kept), CR_ENOMEM (d unchanged). Views of the last message
 * are invalidated. fd and d are borrowed. */
int cr_wire_fill(int fd, cr_wire_decoder *d, size_t max, size_t *got);

/* Reads from fd into d until one message is complete and decodes it into
 * *out (views borrowed from d as for cr_wire_next). Returns 1 (a message),
 * 0 (EOF at a frame boundary), CR_EIO (read error, or EOF inside a frame),
 * CR_ENOMEM, or a decode error from cr_wire_next. Retries EINTR. */
int cr_wire_read_msg(int fd, cr_wire_decoder *d, struct cr_wire_msg *out);

#endif
