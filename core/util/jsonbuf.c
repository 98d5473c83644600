/* jsonbuf.c: JSON text straight into a growing buffer (see jsonbuf.h). */
#include "util/jsonbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/error.h"

/* Room for n more bytes and the NUL. */
static int reserve(struct cr__jsonbuf *b, size_t n) {
  if (b->err != 0)
    return b->err;
  if (n > SIZE_MAX / 2 - b->len) {
    b->err = CR_ENOMEM;
    return b->err;
  }
  if (b->len + n + 1 <= b->cap)
    return 0;
  size_t cap = b->cap > 0 ? b->cap : 256;
  while (cap < b->len + n + 1)
    cap *= 2;
  char *p = cr__realloc(b->p, cap);
  if (p == NULL) {
    b->err = CR_ENOMEM;
    return b->err;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void cr__jb_raw(struct cr__jsonbuf *b, const char *s, size_t n) {
  if (reserve(b, n) != 0)
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void cr__jb_lit(struct cr__jsonbuf *b, const char *s) {
  cr__jb_raw(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (lead byte c >= 0x80), 0 when
 * it is not one (overlong, surrogate, above U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *s) {
  unsigned char c = s[0];
  size_t n = c >= 0xC2 && c <= 0xDF   ? 2
             : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4
                                      : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) ||
      (c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
    return 0;
  return n;
}

/* The escape of control or special byte c into out (NUL-terminated). */
static void escape(unsigned char c, char out[8]) {
  static const char named[] = "\"\"\\\\\bb\ff\nn\rr\tt";
  for (size_t i = 0; i + 1 < sizeof named; i += 2)
    if ((unsigned char)named[i] == c) {
      out[0] = '\\';
      out[1] = named[i + 1];
      out[2] = '\0';
      return;
    }
  snprintf(out, 8, "\\u%04X", c); /* as jansson writes it */
}

void cr__jb_str(struct cr__jsonbuf *b, const char *s) {
  if (s == NULL) {
    cr__jb_raw(b, "null", 4);
    return;
  }
  const unsigned char *p = (const unsigned char *)s, *run = p;
  cr__jb_raw(b, "\"", 1);
  while (*p != '\0' && b->err == 0) {
    size_t n = 1;
    if (*p >= 0x80 && (n = utf8_len(p)) == 0) {
      b->err = CR_EINVAL;
      return;
    }
    if (*p >= 0x20 && *p != '"' && *p != '\\') {
      p += n;
      continue;
    }
    char esc[8];
    escape(*p, esc);
    cr__jb_raw(b, (const char *)run, (size_t)(p - run));
    cr__jb_lit(b, esc);
    run = ++p;
  }
  cr__jb_raw(b, (const char *)run, (size_t)(p - run));
  cr__jb_raw(b, "\"", 1);
}

size_t cr__dec_i64(int64_t v, char out[CR__DEC_MAX]) {
  char rev[CR__DEC_MAX];
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  size_t n = 0, len = 0;
  do {
    rev[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u > 0);
  if (v < 0)
    out[len++] = '-';
  while (n > 0)
    out[len++] = rev[--n];
  out[len] = '\0';
  return len;
}

void cr__jb_int(struct cr__jsonbuf *b, int64_t v) {
  char num[CR__DEC_MAX];
  cr__jb_raw(b, num, cr__dec_i64(v, num));
}

char *cr__jb_take(struct cr__jsonbuf *b) {
  char *p = NULL;
  if (reserve(b, 0) == 0) { /* nothing appended: "" */
    p = b->p;
    p[b->len] = '\0';
  } else {
    cr__free(b->p);
  }
  *b = (struct cr__jsonbuf){NULL, 0, 0, b->err};
  return p;
}

void cr__jb_clear(struct cr__jsonbuf *b) {
  cr__free(b->p);
  *b = (struct cr__jsonbuf){NULL, 0, 0, 0};
}
