/* connrun/plugin_util.h: header-only helpers for plugin authors.
 *
 * Everything here is static inline C11 on top of <connrun/plugin.h> and the
 * C standard library: including it adds no link dependency, so a plugin
 * still links nothing of connrun. It compiles cleanly with
 * -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes.
 *
 * What is here
 *   - cr_http_request_init: a zeroed request with struct_size set.
 *   - cr_plugin_logf / cr_plugin_errorf: printf-style api->log / set_error.
 *   - cr_http_header_value / cr_http_retry_after_ms: response headers.
 *   - A small, careful JSON READER for the common case "pick a few members
 *     out of a provider's response" without linking a JSON library:
 *       cr_json_get_string / cr_json_get_int / cr_json_get_raw: a TOP-LEVEL
 *         member of an object (nested members: get the raw span of the
 *         parent with cr_json_get_raw, then look inside it with the _n
 *         variants);
 *       cr_json_array_begin / cr_json_array_next: walk the elements of a
 *         top-level array member (or of a top-level array), each element
 *         returned as its raw JSON text span (e.g. one record to emit);
 *         cr_json_array_next_first also gives where the element's first
 *         nested value ends (a leading metadata member to cut off), found
 *         in the same pass;
 *       cr_json_string_decode: decode a JSON string literal span.
 *     It checks the structure of what it reads (strings, escapes, bracket
 *     nesting up to CR_JSON_MAX_DEPTH) but is not a validating parser: a
 *     nested value it merely skips is only checked for balanced brackets.
 *     Duplicate keys: the first one wins. Keys longer than
 *     CR_JSON_MAX_KEY - 1 bytes never match.
 *   - cr_json_escape: escape text for inclusion inside a JSON string.
 *
 * All functions take borrowed pointers and never allocate, except
 * cr_plugin_logf / cr_plugin_errorf for messages longer than their stack
 * buffer (through api->alloc, released before returning).
 */
#ifndef CONNRUN_PLUGIN_UTIL_H
#define CONNRUN_PLUGIN_UTIL_H

#include <connrun/plugin.h>

#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#define CR__JSON_SIMD 1 /* cr__json_skip_container's 64-byte blocks */
#include <emmintrin.h>
#if defined(__x86_64__)
/* the same blocks with AVX2 or AVX-512BW where the CPU has it */
#define CR__JSON_AVX2 1
#include <immintrin.h>
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a printf-style function (format argument f, first vararg a) so the
 * compiler checks its calls. */
#if defined(__GNUC__) || defined(__clang__)
#define CR_PLUGIN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CR_PLUGIN_PRINTF(f, a)
#endif

/* Stack buffer of cr_plugin_logf / cr_plugin_errorf; longer messages go
 * through api->alloc. */
#define CR_PLUGIN_LOGF_STACK 512
/* Deepest array/object nesting the JSON helpers walk through. */
#define CR_JSON_MAX_DEPTH 64
/* Longest member name (with its NUL) the JSON helpers compare. */
#define CR_JSON_MAX_KEY 256

/* ---- Requests -------------------------------------------------------------
 */

/* Zeroes *req and sets its struct_size (the host refuses a request whose
 * struct_size is too small). method NULL means GET, timeout_ms 0 the host
 * default. */
static inline void cr_http_request_init(struct cr_http_request *req) {
  memset(req, 0, sizeof *req);
  req->struct_size = (uint32_t)sizeof *req;
}

/* ---- Logging and errors ----------------------------------------------------
 */

/* Internal: vsnprintf into stack (stack_len bytes), or into *heap from
 * api->alloc when longer (caller frees). Returns the length or -1. */
static inline int cr__util_vformat(const struct cr_host_api *api, char *stack,
                                   size_t stack_len, char **heap,
                                   const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(stack, stack_len, fmt, ap);
  *heap = NULL;
  if (n >= 0 && (size_t)n >= stack_len && api->alloc != NULL) {
    *heap = (char *)api->alloc((size_t)n + 1);
    if (*heap != NULL)
      vsnprintf(*heap, (size_t)n + 1, fmt, ap2);
    else
      n = -1;
  }
  va_end(ap2);
  return n;
}

/* Formats a message printf-style and logs it through api->log at level
 * (enum cr_plugin_log_level). The host redacts known secrets, but never
 * format a secret into a message anyway. A message longer than
 * CR_PLUGIN_LOGF_STACK bytes is formatted into api->alloc memory (freed
 * before returning) so it is never cut in the middle of a secret; if that
 * allocation fails a fixed notice is logged instead. */
static inline void cr_plugin_logf(const struct cr_host_api *api,
                                  cr_plugin_ctx *ctx, int level,
                                  const char *fmt, ...) CR_PLUGIN_PRINTF(4, 5);
static inline void cr_plugin_logf(const struct cr_host_api *api,
                                  cr_plugin_ctx *ctx, int level,
                                  const char *fmt, ...) {
  if (api == NULL || api->log == NULL || fmt == NULL)
    return;
  char stack[CR_PLUGIN_LOGF_STACK];
  char *heap = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = cr__util_vformat(api, stack, sizeof stack, &heap, fmt, ap);
  va_end(ap);
  if (n < 0)
    api->log(ctx, level, "(log message dropped: formatting failed)");
  else
    api->log(ctx, level, heap != NULL ? heap : stack);
  if (heap != NULL)
    api->free(heap);
}

/* Formats a message and records it with api->set_error(ctx, result, msg,
 * retry_after_ms). Returns result, so a callback can end with
 *   return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_CONFIG, 0, "...", ...);
 */
static inline int cr_plugin_errorf(const struct cr_host_api *api,
                                   cr_plugin_ctx *ctx, int result,
                                   int64_t retry_after_ms, const char *fmt, ...)
    CR_PLUGIN_PRINTF(5, 6);
static inline int cr_plugin_errorf(const struct cr_host_api *api,
                                   cr_plugin_ctx *ctx, int result,
                                   int64_t retry_after_ms, const char *fmt,
                                   ...) {
  if (api == NULL || api->set_error == NULL || fmt == NULL)
    return result;
  char stack[CR_PLUGIN_LOGF_STACK];
  char *heap = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = cr__util_vformat(api, stack, sizeof stack, &heap, fmt, ap);
  va_end(ap);
  const char *msg = n < 0          ? "(error message lost: formatting failed)"
                    : heap != NULL ? heap
                                   : stack;
  api->set_error(ctx, result, msg, retry_after_ms);
  if (heap != NULL)
    api->free(heap);
  return result;
}

/* ---- Response headers ------------------------------------------------------
 */

/* Internal: ASCII lower case of c. */
static inline int cr__util_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ASCII case-insensitive comparison of n bytes. */
static inline int cr__util_ncaseeq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (cr__util_lower((unsigned char)a[i]) !=
        cr__util_lower((unsigned char)b[i]))
      return 0;
  return 1;
}

/* Copies the value of the first response header called name
 * (case-insensitive), without surrounding blanks, into buf (len bytes).
 * Returns 0 when found, -1 when absent (buf = ""), -2 when found but longer
 * than len - 1 (buf holds the truncated value). */
static inline int cr_http_header_value(const struct cr_http_response *resp,
                                       const char *name, char *buf,
                                       size_t len) {
  if (buf == NULL || len == 0)
    return -1;
  buf[0] = '\0';
  if (resp == NULL || resp->headers == NULL || name == NULL)
    return -1;
  size_t nl = strlen(name);
  const char *p = resp->headers;
  while (*p != '\0') {
    const char *eol = p + strcspn(p, "\r\n");
    if ((size_t)(eol - p) > nl && p[nl] == ':' &&
        cr__util_ncaseeq(p, name, nl)) {
      const char *v = p + nl + 1, *e = eol;
      while (v < e && (*v == ' ' || *v == '\t'))
        v++;
      while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
      size_t vl = (size_t)(e - v);
      int rc = 0;
      if (vl >= len) {
        vl = len - 1;
        rc = -2;
      }
      memcpy(buf, v, vl);
      buf[vl] = '\0';
      return rc;
    }
    p = eol;
    while (*p == '\r' || *p == '\n')
      p++;
  }
  return -1;
}

/* The wait a Retry-After header asks for, in milliseconds, when it holds
 * delta-seconds ("120"); -1 when absent or in the HTTP-date form. */
static inline int64_t
cr_http_retry_after_ms(const struct cr_http_response *resp) {
  char v[32];
  if (cr_http_header_value(resp, "Retry-After", v, sizeof v) != 0 ||
      v[0] == '\0')
    return -1;
  int64_t s = 0;
  for (const char *p = v; *p != '\0'; p++) {
    if (*p < '0' || *p > '9' || s > INT64_MAX / 10000)
      return -1;
    s = s * 10 + (*p - '0');
  }
  return s * 1000;
}

/* ---- JSON reading ----------------------------------------------------------
 */

/* Internal: the first non-blank position in [p, end). */
static inline const char *cr__json_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* The end of the string literal starting at p ('"'), or NULL. */
static inline const char *cr__json_skip_string(const char *p, const char *end) {
  if (p >= end || *p != '"')
    return NULL;
  for (p++; p < end; p++) {
    /* Plain bytes (not '"', '\\' nor a control character), 8 at a time:
     * the record scan of a large page spends its time here. */
    while (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
      uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
      uint64_t special =
          ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w);
      if ((special & high) != 0)
        break;
      p += 8;
    }
    if (p >= end)
      break;
    unsigned char c = (unsigned char)*p;
    if (c == '"')
      return p + 1;
    if (c == '\\') {
      if (++p >= end)
        return NULL;
    } else if (c < 0x20) {
      return NULL;
    }
  }
  return NULL;
}

/* The end of the number or literal (true/false/null) at p, or NULL. */
static inline const char *cr__json_skip_scalar(const char *p, const char *end) {
  static const char *const lits[] = {"true", "false", "null"};
  for (size_t i = 0; i < 3; i++) {
    size_t n = strlen(lits[i]);
    if ((size_t)(end - p) >= n && memcmp(p, lits[i], n) == 0)
      return p + n;
  }
  const char *s = p;
  if (p < end && *p == '-')
    p++;
  if (p >= end || *p < '0' || *p > '9')
    return NULL;
  while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' ||
                     *p == 'E' || *p == '+' || *p == '-'))
    p++;
  return p > s ? p : NULL;
}

/* Internal: where a skip of an object or array stands (cr__json_skip_value):
 * the closers still expected, and whether it is inside a string, right
 * after a backslash there. The skip ends at the closing bracket that brings
 * depth down to stop (0: the value's own; 1: also its first nested value's,
 * cr_json_array_next_first). */
struct cr__json_skip {
  char closers[CR_JSON_MAX_DEPTH];
  int depth, in_str, esc, stop;
};

/* Internal: a bracket or quote c outside strings: 1 when it closed the
 * value (or brought depth down to k->stop), -1 when malformed, else 0.
 * Other bytes are not checked. */
static inline int cr__json_skip_struct(struct cr__json_skip *k, char c) {
  if (c == '"') {
    k->in_str = 1;
  } else if (c == '{' || c == '[') {
    if (k->depth == CR_JSON_MAX_DEPTH)
      return -1;
    k->closers[k->depth++] = c == '{' ? '}' : ']';
  } else if (c == '}' || c == ']') {
    if (k->depth == 0 || k->closers[k->depth - 1] != c)
      return -1;
    if (--k->depth <= k->stop)
      return 1;
  }
  return 0;
}

/* Internal: the next byte c of the value, as cr__json_skip_struct. Inside
 * a string a backslash escapes the byte after it, and a control character
 * is malformed. */
static inline int cr__json_skip_byte(struct cr__json_skip *k, char c) {
  if (!k->in_str)
    return cr__json_skip_struct(k, c);
  if (k->esc)
    k->esc = 0;
  else if (c == '\\')
    k->esc = 1;
  else if (c == '"')
    k->in_str = 0;
  else if ((unsigned char)c < 0x20)
    return -1;
  return 0;
}

#ifdef CR__JSON_SIMD
/* Internal: one bit per byte of a 64-byte block: quotes, backslashes,
 * opening and closing brackets, control characters. */
struct cr__json_block {
  uint64_t quote, backslash, open, close, ctrl;
};

/* Internal: the 16 comparison results eq as bits at..at + 15. */
static inline uint64_t cr__json_bits(__m128i eq, int at) {
  return (uint64_t)(uint16_t)_mm_movemask_epi8(eq) << at;
}

/* Internal: the masks of the 64 bytes at p ('[' and '{' differ by 0x20
 * only, as do ']' and '}'). */
static inline void cr__json_block_at(const char *p, struct cr__json_block *b) {
  const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'),
                lower = _mm_set1_epi8(0x20), open = _mm_set1_epi8('{'),
                close = _mm_set1_epi8('}'), ctrl = _mm_set1_epi8(0x1f);
  b->quote = b->backslash = b->open = b->close = b->ctrl = 0;
  for (int i = 0; i < 4; i++) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
    __m128i folded = _mm_or_si128(x, lower);
    b->quote |= cr__json_bits(_mm_cmpeq_epi8(x, quote), 16 * i);
    b->backslash |= cr__json_bits(_mm_cmpeq_epi8(x, bs), 16 * i);
    b->open |= cr__json_bits(_mm_cmpeq_epi8(folded, open), 16 * i);
    b->close |= cr__json_bits(_mm_cmpeq_epi8(folded, close), 16 * i);
    b->ctrl |= cr__json_bits(_mm_cmpeq_epi8(_mm_min_epu8(x, ctrl), x), 16 * i);
  }
}

/* Internal: bit i = parity of the set bits 0..i of x. */
static inline uint64_t cr__json_prefix_xor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

/* Internal: one 64-byte block without a backslash, when no escape is
 * pending: strings from inside, the parity of its quotes (bit i: quotes
 * 0..i, cr__json_prefix_xor), then only its brackets outside strings
 * visited. Returns as cr__json_skip_struct; *at gets the offset of the
 * closing bracket. */
static inline int cr__json_skip_block(struct cr__json_skip *k, const char *p,
                                      const struct cr__json_block *b,
                                      uint64_t inside, int *at) {
  if (k->in_str)
    inside = ~inside;
  uint64_t bad = b->ctrl & inside; /* control characters inside strings */
  for (uint64_t s = (b->open | b->close) & ~inside; s != 0; s &= s - 1) {
    int i = __builtin_ctzll(s);
    if ((bad & ((UINT64_C(2) << i) - 1)) != 0)
      return -1; /* before this bracket: the value is malformed there */
    int r = cr__json_skip_struct(k, p[i]);
    if (r != 0) {
      *at = i;
      return r;
    }
  }
  if (bad != 0)
    return -1;
  k->in_str = (int)(inside >> 63);
  return 0;
}
#endif

#ifdef CR__JSON_AVX2
/* Internal: cr__json_block_at with two 32-byte AVX2 loads instead of four
 * 16-byte ones. Call only where the CPU has AVX2 (cr__json_avx2). */
__attribute__((target("avx2"))) static inline void
cr__json_block_at_avx2(const char *p, struct cr__json_block *b) {
  const __m256i quote = _mm256_set1_epi8('"'), bs = _mm256_set1_epi8('\\'),
                lower = _mm256_set1_epi8(0x20), open = _mm256_set1_epi8('{'),
                close = _mm256_set1_epi8('}'), ctrl = _mm256_set1_epi8(0x1f);
  b->quote = b->backslash = b->open = b->close = b->ctrl = 0;
  for (int i = 0; i < 2; i++) {
    __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * i));
    __m256i folded = _mm256_or_si256(x, lower);
#define CR__JSON_BITS32(v)                                                     \
  ((uint64_t)(uint32_t)_mm256_movemask_epi8(v) << (32 * i))
    b->quote |= CR__JSON_BITS32(_mm256_cmpeq_epi8(x, quote));
    b->backslash |= CR__JSON_BITS32(_mm256_cmpeq_epi8(x, bs));
    b->open |= CR__JSON_BITS32(_mm256_cmpeq_epi8(folded, open));
    b->close |= CR__JSON_BITS32(_mm256_cmpeq_epi8(folded, close));
    b->ctrl |= CR__JSON_BITS32(_mm256_cmpeq_epi8(_mm256_min_epu8(x, ctrl), x));
#undef CR__JSON_BITS32
  }
}

/* Internal: non-zero when the CPU running this has AVX2 and PCLMULQDQ
 * (every AVX2 CPU has both). */
static inline int cr__json_avx2(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul");
}

/* Internal: cr__json_block_at with one 64-byte AVX-512BW load, whose
 * comparisons give the masks without a movemask. Call only where the CPU
 * has AVX-512BW (cr__json_avx512): a hot 2,000-record page's records and
 * attributes took 77 us with AVX2 and the shifts, 55 us so. */
__attribute__((target("avx512bw"))) static inline void
cr__json_block_at_avx512(const char *p, struct cr__json_block *b) {
  __m512i x = _mm512_loadu_si512((const void *)p);
  __m512i folded = _mm512_or_si512(x, _mm512_set1_epi8(0x20));
  b->quote = _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('"'));
  b->backslash = _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('\\'));
  b->open = _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8('{'));
  b->close = _mm512_cmpeq_epi8_mask(folded, _mm512_set1_epi8('}'));
  b->ctrl = _mm512_cmple_epu8_mask(x, _mm512_set1_epi8(0x1f));
}

/* Internal: cr__json_prefix_xor with one carry-less multiply by all
 * ones. Call only where the CPU has PCLMULQDQ (cr__json_avx2 and
 * cr__json_avx512 check it). */
__attribute__((target("pclmul,sse2"))) static inline uint64_t
cr__json_prefix_xor_clmul(uint64_t x) {
  __m128i v = _mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)x),
                                   _mm_set1_epi8((char)0xff), 0);
  return (uint64_t)_mm_cvtsi128_si64(v);
}

/* Internal: non-zero when the CPU running this has AVX-512BW and
 * PCLMULQDQ. */
static inline int cr__json_avx512(void) {
  return __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("pclmul");
}
#endif

#ifdef CR__JSON_SIMD
/* Internal: the blocks of cr__json_skip_container from p while 64 bytes are
 * left, each classified by block_at (its strings found by prefix_xor):
 * returns 1 (*p at the closing bracket), -1 (malformed) or 0 (*p at the
 * last, shorter, stretch). Always inlined, so that each caller gets its own
 * block_at and prefix_xor inlined too. */
__attribute__((always_inline)) static inline int
cr__json_skip_blocks(struct cr__json_skip *k, const char **pp, const char *end,
                     void (*block_at)(const char *, struct cr__json_block *),
                     uint64_t (*prefix_xor)(uint64_t)) {
  const char *p = *pp;
  int r;
  while (end - p >= 64) {
    struct cr__json_block b;
    int at = 0;
    block_at(p, &b);
    if (b.backslash == 0 && !k->esc) {
      r = cr__json_skip_block(k, p, &b, prefix_xor(b.quote), &at);
      if (r != 0) {
        *pp = p + at;
        return r;
      }
      p += 64;
      continue;
    }
    for (const char *e = p + 64; p < e; p++) /* escapes: byte by byte */
      if ((r = cr__json_skip_byte(k, *p)) != 0) {
        *pp = p;
        return r;
      }
  }
  *pp = p;
  return 0;
}
#endif

#ifdef CR__JSON_AVX2
/* Internal: cr__json_skip_blocks with AVX2 and the carry-less multiply. */
__attribute__((target("avx2,pclmul"))) static inline int
cr__json_skip_blocks_avx2(struct cr__json_skip *k, const char **pp,
                          const char *end) {
  return cr__json_skip_blocks(k, pp, end, cr__json_block_at_avx2,
                              cr__json_prefix_xor_clmul);
}

/* Internal: cr__json_skip_blocks with AVX-512BW and the carry-less
 * multiply. */
__attribute__((target("avx512bw,pclmul"))) static inline int
cr__json_skip_blocks_avx512(struct cr__json_skip *k, const char **pp,
                            const char *end) {
  return cr__json_skip_blocks(k, pp, end, cr__json_block_at_avx512,
                              cr__json_prefix_xor_clmul);
}
#endif

/* Internal: the end of the value after the blocks left p with r (as
 * cr__json_skip_blocks returns it; 0 also when no block ran): at the
 * closing bracket, malformed, or found by the byte loop from p on. */
static inline const char *cr__json_skip_rest(struct cr__json_skip *k,
                                             const char *p, const char *end,
                                             int r) {
  if (r != 0)
    return r > 0 ? p + 1 : NULL;
  for (; p < end; p++)
    if ((r = cr__json_skip_byte(k, *p)) != 0)
      return r > 0 ? p + 1 : NULL;
  return NULL;
}

/* Internal: goes on with the skip k from p (outside strings): the end of
 * the closing bracket that brings k's depth down to k->stop, or NULL when
 * malformed. 64 bytes at a time where SSE2 is there (AVX-512BW or AVX2
 * where the CPU has it): a record of a large page is mostly short strings,
 * which the byte loop took about 1 ns a byte for. */
static inline const char *cr__json_skip_run(struct cr__json_skip *k,
                                            const char *p, const char *end) {
  int r = 0;
#if defined(CR__JSON_AVX2)
  if (cr__json_avx512())
    r = cr__json_skip_blocks_avx512(k, &p, end);
  else if (cr__json_avx2())
    r = cr__json_skip_blocks_avx2(k, &p, end);
  else
    r = cr__json_skip_blocks(k, &p, end, cr__json_block_at,
                             cr__json_prefix_xor);
#elif defined(CR__JSON_SIMD)
  r = cr__json_skip_blocks(k, &p, end, cr__json_block_at, cr__json_prefix_xor);
#endif
  return cr__json_skip_rest(k, p, end, r);
}

/* Internal: the end of the object or array at p, or NULL when malformed. */
static inline const char *cr__json_skip_container(const char *p,
                                                  const char *end) {
  struct cr__json_skip k;
  k.depth = k.in_str = k.esc = k.stop = 0;
  return cr__json_skip_run(&k, p, end);
}

/* The end of the JSON value at p (after blanks), or NULL when malformed.
 * Objects and arrays are skipped by bracket matching (strings honoured). */
static inline const char *cr__json_skip_value(const char *p, const char *end) {
  p = cr__json_ws(p, end);
  if (p >= end)
    return NULL;
  if (*p == '"')
    return cr__json_skip_string(p, end);
  if (*p != '{' && *p != '[')
    return cr__json_skip_scalar(p, end);
  return cr__json_skip_container(p, end);
}

/* Internal: reads 4 hex digits at p (before end) into *out; 0 or -1. */
static inline int cr__json_hex4(const char *p, const char *end, unsigned *out) {
  unsigned v = 0;
  if (end - p < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (unsigned)(c - 'A' + 10);
    else
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

/* Appends the UTF-8 encoding of cp to out (room bytes left). Returns the
 * bytes written, 0 when it does not fit. */
static inline size_t cr__json_utf8(unsigned cp, char *out, size_t room) {
  unsigned char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (unsigned char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (unsigned char)(0xC0 | cp >> 6);
    b[1] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (unsigned char)(0xE0 | cp >> 12);
    b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (unsigned char)(0xF0 | cp >> 18);
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  if (n > room)
    return 0;
  memcpy(out, b, n);
  return n;
}

/* Decodes one escape sequence at p (just after the backslash) into out.
 * Returns the bytes of input consumed after the backslash, 0 on error
 * (malformed, \u0000, lone surrogate) and sets *wrote; *wrote = 0 with a
 * non-zero return means it did not fit (*full = 1). */
static inline size_t cr__json_unescape(const char *p, const char *end,
                                       char *out, size_t room, size_t *wrote,
                                       int *full) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  *wrote = 0;
  const char *hit = (const char *)memchr(from, *p, sizeof from - 1);
  if (hit != NULL) {
    if (room < 1) {
      *full = 1;
      return 1;
    }
    *out = to[hit - from];
    *wrote = 1;
    return 1;
  }
  unsigned cp, lo;
  if (*p != 'u' || cr__json_hex4(p + 1, end, &cp) != 0 || cp == 0)
    return 0;
  size_t used = 5;
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    return 0;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (end - (p + 5) < 6 || p[5] != '\\' || p[6] != 'u' ||
        cr__json_hex4(p + 7, end, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
      return 0;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    used = 11;
  }
  *wrote = cr__json_utf8(cp, out, room);
  if (*wrote == 0)
    *full = 1;
  return used;
}

/* Decodes the string literal [p, end) (p at '"') into out (outlen bytes,
 * NUL-terminated). Returns 0, -1 when malformed or unrepresentable (an
 * escaped NUL, a lone surrogate), -2 when it does not fit. */
static inline int cr__json_decode(const char *p, const char *end, char *out,
                                  size_t outlen) {
  const char *close = cr__json_skip_string(p, end);
  if (close == NULL || out == NULL || outlen == 0)
    return -1;
  size_t k = 0;
  int full = 0;
  for (p++; p < close - 1 && !full;) {
    if (*p != '\\') {
      if (k + 1 >= outlen) {
        full = 1;
        break;
      }
      out[k++] = *p++;
      continue;
    }
    size_t wrote = 0;
    size_t used = cr__json_unescape(p + 1, close - 1, out + k, outlen - 1 - k,
                                    &wrote, &full);
    if (used == 0) {
      out[0] = '\0';
      return -1;
    }
    k += wrote;
    p += 1 + used;
  }
  out[k] = '\0';
  return full ? -2 : 0;
}

/* Decodes a JSON string literal span (with its quotes, e.g. an array element
 * from cr_json_array_next) into out (outlen bytes, NUL-terminated). Escapes
 * (\uXXXX and surrogate pairs included) become UTF-8. Returns 0, or -1 when
 * the span is not a string, is malformed, holds an escaped NUL or a lone
 * surrogate, or does not fit (out then holds a truncated prefix). */
static inline int cr_json_string_decode(const char *span, size_t len, char *out,
                                        size_t outlen) {
  if (span == NULL)
    return -1;
  const char *end = cr__json_skip_string(span, span + len);
  if (end == NULL || cr__json_ws(end, span + len) != span + len)
    return -1;
  return cr__json_decode(span, end, out, outlen) == 0 ? 0 : -1;
}

/* The value of the top-level member key of the object text [json, end), or
 * NULL (absent, or the object is malformed before it). */
static inline const char *cr__json_member(const char *json, const char *end,
                                          const char *key) {
  const char *p = cr__json_ws(json, end);
  if (p >= end || *p != '{' || key == NULL)
    return NULL;
  p = cr__json_ws(p + 1, end);
  if (p < end && *p == '}')
    return NULL;
  for (;;) {
    char name[CR_JSON_MAX_KEY];
    const char *after = cr__json_skip_string(p, end);
    if (after == NULL)
      return NULL;
    int rc = cr__json_decode(p, after, name, sizeof name);
    if (rc == -1)
      return NULL;
    p = cr__json_ws(after, end);
    if (p >= end || *p != ':')
      return NULL;
    p = cr__json_ws(p + 1, end);
    if (rc == 0 && strcmp(name, key) == 0)
      return p < end ? p : NULL;
    p = cr__json_skip_value(p, end);
    if (p == NULL)
      return NULL;
    p = cr__json_ws(p, end);
    if (p >= end || *p != ',')
      return NULL;
    p = cr__json_ws(p + 1, end);
  }
}

/* Finds the top-level member key of the JSON object text json (len bytes)
 * and returns its raw value span in *val / *val_len (borrowed from json;
 * NULL / 0 on failure). Returns 0, or -1 when absent or malformed. */
static inline int cr_json_get_raw_n(const char *json, size_t len,
                                    const char *key, const char **val,
                                    size_t *val_len) {
  *val = NULL;
  *val_len = 0;
  if (json == NULL)
    return -1;
  const char *end = json + len;
  const char *v = cr__json_member(json, end, key);
  const char *e = v != NULL ? cr__json_skip_value(v, end) : NULL;
  if (e == NULL)
    return -1;
  *val = v;
  *val_len = (size_t)(e - v);
  return 0;
}

/* cr_json_get_raw_n on a NUL-terminated text. */
static inline int cr_json_get_raw(const char *json, const char *key,
                                  const char **val, size_t *val_len) {
  return cr_json_get_raw_n(json, json != NULL ? strlen(json) : 0, key, val,
                           val_len);
}

/* Copies the decoded value of the top-level string member key of the JSON
 * object text json (len bytes) into out (outlen bytes, NUL-terminated).
 * Only top-level members are read; nested objects are skipped. Returns 0, or
 * -1 when absent, not a string, malformed, or too long for out. */
static inline int cr_json_get_string_n(const char *json, size_t len,
                                       const char *key, char *out,
                                       size_t outlen) {
  const char *v;
  size_t vl;
  if (out != NULL && outlen > 0)
    out[0] = '\0';
  if (cr_json_get_raw_n(json, len, key, &v, &vl) != 0 || *v != '"')
    return -1;
  return cr_json_string_decode(v, vl, out, outlen);
}

/* cr_json_get_string_n on a NUL-terminated text. */
static inline int cr_json_get_string(const char *json, const char *key,
                                     char *out, size_t outlen) {
  if (json == NULL) {
    if (out != NULL && outlen > 0)
      out[0] = '\0';
    return -1;
  }
  return cr_json_get_string_n(json, strlen(json), key, out, outlen);
}

/* Reads the top-level integer member key (no fraction or exponent, fits in
 * long long) of the JSON object text json (len bytes). Returns 0 or -1. */
static inline int cr_json_get_int_n(const char *json, size_t len,
                                    const char *key, long long *out) {
  const char *v;
  size_t vl;
  if (cr_json_get_raw_n(json, len, key, &v, &vl) != 0)
    return -1;
  size_t i = 0;
  int neg = v[0] == '-';
  if (neg)
    i++;
  if (i >= vl)
    return -1;
  unsigned long long acc = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1
                                        : (unsigned long long)LLONG_MAX;
  for (; i < vl; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    unsigned d = (unsigned)(v[i] - '0');
    if (acc > (lim - d) / 10)
      return -1;
    acc = acc * 10 + d;
  }
  if (neg)
    *out =
        acc == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)acc;
  else
    *out = (long long)acc;
  return 0;
}

/* cr_json_get_int_n on a NUL-terminated text. */
static inline int cr_json_get_int(const char *json, const char *key,
                                  long long *out) {
  return json == NULL ? -1 : cr_json_get_int_n(json, strlen(json), key, out);
}

/* Iterator over the elements of a JSON array. Plain data: no cleanup. */
struct cr_json_array_iter {
  const char *p;   /* next position */
  const char *end; /* end of the text */
  int state;       /* 0 before the first element, 1 inside, 2 done, -1 bad */
};

/* Positions it on the array that is the top-level member key of the JSON
 * object text json (len bytes), or, when key is NULL, on json itself being
 * an array. Returns 0, or -1 when absent, not an array, or malformed. */
static inline int cr_json_array_begin_n(struct cr_json_array_iter *it,
                                        const char *json, size_t len,
                                        const char *key) {
  it->p = it->end = NULL;
  it->state = -1;
  if (json == NULL)
    return -1;
  const char *end = json + len;
  const char *v =
      key != NULL ? cr__json_member(json, end, key) : cr__json_ws(json, end);
  if (v == NULL || v >= end || *v != '[')
    return -1;
  it->p = v + 1;
  it->end = end;
  it->state = 0;
  return 0;
}

/* cr_json_array_begin_n on a NUL-terminated text. */
static inline int cr_json_array_begin(struct cr_json_array_iter *it,
                                      const char *json, const char *key) {
  if (json == NULL) {
    it->p = it->end = NULL;
    it->state = -1;
    return -1;
  }
  return cr_json_array_begin_n(it, json, strlen(json), key);
}

/* Internal: the start of the next element of it (past the comma), or NULL
 * with *r set: 0 at the end of the array, -1 when malformed. */
static inline const char *cr__json_array_step(struct cr_json_array_iter *it,
                                              int *r) {
  *r = it->state == 2 ? 0 : -1;
  if (it->state < 0 || it->state == 2)
    return NULL;
  const char *p = cr__json_ws(it->p, it->end);
  if (p < it->end && *p == ']') {
    it->state = 2;
    *r = 0;
    return NULL;
  }
  if (it->state == 1) {
    if (p >= it->end || *p != ',') {
      it->state = -1;
      return NULL;
    }
    p = cr__json_ws(p + 1, it->end);
  }
  return p;
}

/* Internal: the element [p, e) of it found (e NULL: malformed). Returns as
 * cr_json_array_next. */
static inline int cr__json_array_took(struct cr_json_array_iter *it,
                                      const char *p, const char *e,
                                      const char **elem, size_t *elem_len) {
  if (e == NULL) {
    it->state = -1;
    return -1;
  }
  *elem = p;
  *elem_len = (size_t)(e - p);
  it->p = e;
  it->state = 1;
  return 1;
}

/* Moves to the next element: *elem / *elem_len get its raw JSON text span
 * (borrowed from the text given to begin; e.g. a whole object to emit as a
 * record), or NULL / 0 when there is none. Returns 1 for an element, 0 at
 * the end of the array, -1 when the text is malformed (and from then on). */
static inline int cr_json_array_next(struct cr_json_array_iter *it,
                                     const char **elem, size_t *elem_len) {
  *elem = NULL;
  *elem_len = 0;
  int r;
  const char *p = cr__json_array_step(it, &r);
  if (p == NULL)
    return r;
  return cr__json_array_took(it, p, cr__json_skip_value(p, it->end), elem,
                             elem_len);
}

/* cr_json_array_next, and *first_end: the end of the first value nested in
 * the element that closes (an object or array element's first nested
 * object or array, in text order), or NULL when the element holds none.
 * When an element's first member is an object, as Salesforce's
 * "attributes", *first_end is the end of that member's value: one pass
 * over the element finds both, where cr_json_array_next and a skip of the
 * member would read its bytes twice. */
static inline int cr_json_array_next_first(struct cr_json_array_iter *it,
                                           const char **elem, size_t *elem_len,
                                           const char **first_end) {
  *elem = *first_end = NULL;
  *elem_len = 0;
  int r;
  const char *p = cr__json_array_step(it, &r), *e;
  if (p == NULL)
    return r;
  if (p >= it->end || (*p != '{' && *p != '['))
    return cr__json_array_took(it, p, cr__json_skip_value(p, it->end), elem,
                               elem_len);
  struct cr__json_skip k;
  k.depth = k.in_str = k.esc = 0;
  k.stop = 1;
  e = cr__json_skip_run(&k, p, it->end);
  if (e != NULL && k.depth == 1) { /* stopped at the first nested close */
    *first_end = e;
    k.stop = k.in_str = k.esc = 0; /* a bracket: outside strings */
    e = cr__json_skip_run(&k, e, it->end);
    if (e == NULL)
      *first_end = NULL;
  }
  return cr__json_array_took(it, p, e, elem, elem_len);
}

/* ---- JSON writing ----------------------------------------------------------
 */

/* Escapes in (NUL-terminated UTF-8) for use inside a JSON string literal
 * (the quotes are not written): '"', '\\' and control characters are
 * escaped, everything else is copied. Writes to out (outlen bytes,
 * NUL-terminated). Returns the length written, or -1 when it does not fit
 * (out is then "") or an argument is NULL. */
static inline int cr_json_escape(const char *in, char *out, size_t outlen) {
  static const char hex[] = "0123456789abcdef";
  if (in == NULL || out == NULL || outlen == 0 || outlen > INT_MAX)
    return -1;
  size_t k = 0;
  for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
    char esc[7] = {0};
    switch (*p) {
    case '"':
      memcpy(esc, "\\\"", 2);
      break;
    case '\\':
      memcpy(esc, "\\\\", 2);
      break;
    case '\n':
      memcpy(esc, "\\n", 2);
      break;
    case '\r':
      memcpy(esc, "\\r", 2);
      break;
    case '\t':
      memcpy(esc, "\\t", 2);
      break;
    case '\b':
      memcpy(esc, "\\b", 2);
      break;
    case '\f':
      memcpy(esc, "\\f", 2);
      break;
    default:
      if (*p < 0x20) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[*p >> 4];
        esc[5] = hex[*p & 15];
      } else {
        esc[0] = (char)*p;
      }
    }
    size_t n = strlen(esc);
    if (k + n >= outlen) {
      out[0] = '\0';
      return -1;
    }
    memcpy(out + k, esc, n);
    k += n;
  }
  out[k] = '\0';
  return (int)k;
}

#ifdef __cplusplus
}
#endif

#endif /* CONNRUN_PLUGIN_UTIL_H */
