/* jsonbuf.h: JSON text written straight into a growing buffer, for the hot
 * paths where building a jansson tree only to dump it costs more than the
 * text itself (webhook bodies, SQL parameters). Strings are escaped as
 * jansson's json_dumps does by default (", \, control characters; UTF-8
 * kept as is) and must be valid UTF-8.
 *
 * A failed append (out of memory, invalid UTF-8) sets b->err and makes
 * every later append a no-op, so a writer checks once at the end. */
#ifndef CR_JSONBUF_H
#define CR_JSONBUF_H

#include <stddef.h>
#include <stdint.h>

struct cr__jsonbuf {
  char *p;    /* NUL-terminated text (NULL until the first append); owned */
  size_t len; /* bytes before the NUL */
  size_t cap; /* bytes allocated */
  int err;    /* 0, CR_ENOMEM or CR_EINVAL (a string not UTF-8) */
};

/* Appends n raw bytes of s (already JSON). */
void cr__jb_raw(struct cr__jsonbuf *b, const char *s, size_t n);

/* Appends the NUL-terminated s raw (already JSON). */
void cr__jb_lit(struct cr__jsonbuf *b, const char *s);

/* Appends s as a JSON string, quoted and escaped; NULL gives null. */
void cr__jb_str(struct cr__jsonbuf *b, const char *s);

/* Bytes cr__dec_i64 may write: "-9223372036854775808" and a NUL. */
#define CR__DEC_MAX 21

/* Writes v in decimal into out (CR__DEC_MAX bytes) with a NUL; returns its
 * length. What printf's PRId64 gives, for the hot paths where printf's
 * format parsing costs more than the digits. */
size_t cr__dec_i64(int64_t v, char out[CR__DEC_MAX]);

/* Appends v as a JSON integer. */
void cr__jb_int(struct cr__jsonbuf *b, int64_t v);

/* The text (transferred: free with cr__free) or NULL with b->err set;
 * b is empty afterwards either way. */
char *cr__jb_take(struct cr__jsonbuf *b);

/* Frees what b holds; b is empty afterwards. */
void cr__jb_clear(struct cr__jsonbuf *b);

#endif
