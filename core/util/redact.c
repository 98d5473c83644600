/* redact.c: the secret redactor: the set of secrets and their encoded forms,
 * the byte-mask matcher, and the header / URL rules (see redact.h). */
#include "util/redact.h"

#include <jansson.h>

#include "util/alloc.h"
#include "util/error.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MARK_LEN (sizeof(CR_REDACT_MARK) - 1)
#define FAILED_TEXT "[redaction failed]"
#define MAX_FORMS 12

/* One byte string: a secret or one encoded form of it. */
struct pat {
  char *s;
  size_t len;
};

struct cr_redactor {
  pthread_rwlock_t lock;
  struct pat *secrets; /* as added, short ones included */
  size_t nsecrets, capsecrets;
  struct pat *pats; /* every matched form, longest first */
  size_t npats, cappats;
};

/* The forms of one secret under construction. */
struct forms {
  struct pat f[MAX_FORMS];
  size_t n;
};

/* A growable output string. */
struct sbuf {
  char *p;
  size_t len, cap;
  int nomem;
};

static void wipe(void *p, size_t n) {
  volatile unsigned char *v = p;
  while (n-- > 0)
    *v++ = 0;
}

static void pat_free(struct pat *p) {
  if (p->s != NULL)
    wipe(p->s, p->len);
  cr__free(p->s);
  p->s = NULL;
  p->len = 0;
}

static void rd_lock(const cr_redactor *r) {
  pthread_rwlock_rdlock((pthread_rwlock_t *)&r->lock);
}

static void rw_unlock(const cr_redactor *r) {
  pthread_rwlock_unlock((pthread_rwlock_t *)&r->lock);
}

/* ---- Building the forms of a secret ----------------------------------------
 */

static int is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-encodes s (n bytes). lower: lower-case hex; plus: ' ' as '+'. */
static char *url_encode(const char *s, size_t n, int lower, int plus,
                        size_t *outlen) {
  const char *hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
  char *o = cr__malloc(n * 3 + 1);
  if (o == NULL)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_unreserved(c)) {
      o[k++] = (char)c;
    } else if (plus && c == ' ') {
      o[k++] = '+';
    } else {
      o[k++] = '%';
      o[k++] = hex[c >> 4];
      o[k++] = hex[c & 15];
    }
  }
  o[k] = '\0';
  *outlen = k;
  return o;
}

/* Escapes s (n bytes) the way a JSON encoder writes it inside a string. */
static char *json_escape(const char *s, size_t n, size_t *outlen) {
  static const char hex[] = "0123456789abcdef";
  char *o = cr__malloc(n * 6 + 1);
  if (o == NULL)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    switch (c) {
    case '"':
      esc = "\\\"";
      break;
    case '\\':
      esc = "\\\\";
      break;
    case '\n':
      esc = "\\n";
      break;
    case '\r':
      esc = "\\r";
      break;
    case '\t':
      esc = "\\t";
      break;
    case '\b':
      esc = "\\b";
      break;
    case '\f':
      esc = "\\f";
      break;
    default:
      break;
    }
    if (esc != NULL) {
      o[k++] = esc[0];
      o[k++] = esc[1];
    } else if (c < 0x20) {
      memcpy(o + k, "\\u00", 4);
      k += 4;
      o[k++] = hex[c >> 4];
      o[k++] = hex[c & 15];
    } else {
      o[k++] = (char)c;
    }
  }
  o[k] = '\0';
  *outlen = k;
  return o;
}

/* Standard base64 of in (n bytes) into out (4 * ((n + 2) / 3) + 1 bytes),
 * with '=' padding when pad. Returns the length written. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out,
                         int pad) {
  static const char tbl[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t k = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[k++] = tbl[v >> 18];
    out[k++] = tbl[(v >> 12) & 63];
    out[k++] = tbl[(v >> 6) & 63];
    out[k++] = tbl[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    out[k++] = tbl[v >> 18];
    out[k++] = tbl[(v >> 12) & 63];
    if (i + 1 < n)
      out[k++] = tbl[(v >> 6) & 63];
    else if (pad)
      out[k++] = '=';
    if (pad)
      out[k++] = '=';
  }
  out[k] = '\0';
  return k;
}

/* The whole padded base64 of s. */
static char *b64_full(const char *s, size_t n, size_t *outlen) {
  char *o = cr__malloc(4 * ((n + 2) / 3) + 1);
  if (o != NULL)
    *outlen = b64_encode((const unsigned char *)s, n, o, 1);
  return o;
}

/* The base64 characters that depend on s alone when s starts at byte offset
 * `align` (0..2) of a 3-byte group inside a longer encoded value. */
static char *b64_fragment(const char *s, size_t n, size_t align,
                          size_t *outlen) {
  size_t total = align + n, enc_size = 4 * ((total + 2) / 3) + 1;
  unsigned char *tmp = cr__calloc(total, 1);
  char *enc = cr__malloc(enc_size);
  char *o = NULL;
  if (tmp == NULL || enc == NULL)
    goto done;
  memcpy(tmp + align, s, n);
  b64_encode(tmp, total, enc, 0);
  size_t start = (8 * align + 5) / 6, end = (8 * total) / 6;
  o = cr__malloc(end - start + 1);
  if (o == NULL)
    goto done;
  memcpy(o, enc + start, end - start);
  o[end - start] = '\0';
  *outlen = end - start;
done:
  if (tmp != NULL)
    wipe(tmp, total);
  if (enc != NULL)
    wipe(enc, enc_size);
  cr__free(tmp);
  cr__free(enc);
  return o;
}

/* Takes ownership of s (len bytes); drops it when too short or a duplicate.
 * Returns CR_ENOMEM when s is NULL (its builder failed). */
static int forms_take(struct forms *fs, char *s, size_t len) {
  if (s == NULL)
    return CR_ENOMEM;
  struct pat p = {s, len};
  if (len < CR_REDACT_MIN_LEN || fs->n == MAX_FORMS) {
    pat_free(&p);
    return 0;
  }
  for (size_t i = 0; i < fs->n; i++) {
    if (fs->f[i].len == len && memcmp(fs->f[i].s, s, len) == 0) {
      pat_free(&p);
      return 0;
    }
  }
  fs->f[fs->n++] = p;
  return 0;
}

static void forms_free(struct forms *fs) {
  for (size_t i = 0; i < fs->n; i++)
    pat_free(&fs->f[i]);
  fs->n = 0;
}

/* Which form forms_build makes at step i (NULL past the last one). */
static char *make_form(size_t i, const char *s, size_t n, size_t *len) {
  switch (i) {
  case 0: {
    char *plain = cr__malloc(n + 1);
    if (plain != NULL) {
      memcpy(plain, s, n);
      plain[n] = '\0';
      *len = n;
    }
    return plain;
  }
  case 1:
    return url_encode(s, n, 0, 0, len);
  case 2:
    return url_encode(s, n, 1, 0, len);
  case 3:
    return url_encode(s, n, 0, 1, len);
  case 4:
    return json_escape(s, n, len);
  case 5:
    return b64_full(s, n, len);
  default:
    return b64_fragment(s, n, i - 6, len);
  }
}

#define FORM_STEPS 9

static int forms_build(const char *s, size_t n, struct forms *fs) {
  for (size_t i = 0; i < FORM_STEPS; i++) {
    size_t len = 0;
    char *form = make_form(i, s, n, &len);
    int rc = forms_take(fs, form, len);
    if (rc != 0) {
      forms_free(fs);
      return rc;
    }
  }
  return 0;
}

/* ---- The redactor ----------------------------------------------------------
 */

int cr_redactor_new(cr_redactor **out) {
  if (out == NULL)
    return CR_EINVAL;
  *out = NULL;
  cr_redactor *r = cr__calloc(1, sizeof *r);
  if (r == NULL)
    return CR_ENOMEM;
  if (pthread_rwlock_init(&r->lock, NULL) != 0) {
    cr__free(r);
    return CR_ENOMEM;
  }
  *out = r;
  return 0;
}

void cr_redactor_free(cr_redactor *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; i < r->nsecrets; i++)
    pat_free(&r->secrets[i]);
  for (size_t i = 0; i < r->npats; i++)
    pat_free(&r->pats[i]);
  cr__free(r->secrets);
  cr__free(r->pats);
  pthread_rwlock_destroy(&r->lock);
  cr__free(r);
}

static int reserve(struct pat **arr, size_t *cap, size_t need) {
  if (need <= *cap)
    return 0;
  size_t ncap = *cap ? *cap * 2 : 8;
  while (ncap < need)
    ncap *= 2;
  struct pat *n = cr__realloc(*arr, ncap * sizeof *n);
  if (n == NULL)
    return CR_ENOMEM;
  *arr = n;
  *cap = ncap;
  return 0;
}

static int find_pat(const struct pat *arr, size_t n, const char *s,
                    size_t len) {
  for (size_t i = 0; i < n; i++)
    if (arr[i].len == len && memcmp(arr[i].s, s, len) == 0)
      return 1;
  return 0;
}

static int cmp_longest_first(const void *a, const void *b) {
  const struct pat *x = a, *y = b;
  return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

/* Adds secret + forms to r; called with the write lock held. On failure r
 * keeps its content (only capacities may have grown). */
static int add_locked(cr_redactor *r, const char *secret, size_t len) {
  if (find_pat(r->secrets, r->nsecrets, secret, len))
    return 0;
  struct forms fs = {.n = 0};
  struct pat copy = {cr__malloc(len + 1), len};
  int rc = copy.s == NULL ? CR_ENOMEM : 0;
  if (rc == 0) {
    memcpy(copy.s, secret, len);
    copy.s[len] = '\0';
    if (len >= CR_REDACT_MIN_LEN)
      rc = forms_build(secret, len, &fs);
  }
  if (rc == 0)
    rc = reserve(&r->secrets, &r->capsecrets, r->nsecrets + 1);
  if (rc == 0)
    rc = reserve(&r->pats, &r->cappats, r->npats + fs.n);
  if (rc != 0) {
    pat_free(&copy);
    forms_free(&fs);
    return rc;
  }
  r->secrets[r->nsecrets++] = copy;
  for (size_t i = 0; i < fs.n; i++) {
    if (find_pat(r->pats, r->npats, fs.f[i].s, fs.f[i].len))
      pat_free(&fs.f[i]);
    else
      r->pats[r->npats++] = fs.f[i];
  }
  if (r->npats > 1)
    qsort(r->pats, r->npats, sizeof *r->pats, cmp_longest_first);
  return 0;
}

int cr_redactor_add_n(cr_redactor *r, const char *secret, size_t len) {
  if (r == NULL || secret == NULL || len == 0)
    return CR_EINVAL;
  pthread_rwlock_wrlock(&r->lock);
  int rc = add_locked(r, secret, len);
  pthread_rwlock_unlock(&r->lock);
  return rc;
}

int cr_redactor_add(cr_redactor *r, const char *secret) {
  if (secret == NULL)
    return CR_EINVAL;
  return cr_redactor_add_n(r, secret, strlen(secret));
}

size_t cr_redactor_count(const cr_redactor *r) {
  if (r == NULL)
    return 0;
  rd_lock(r);
  size_t n = r->nsecrets;
  rw_unlock(r);
  return n;
}

/* ---- Matching --------------------------------------------------------------
 */

/* Marks every occurrence of p in in (overlapping ones too). */
static void mark_all(const char *in, size_t len, const struct pat *p,
                     unsigned char *mask) {
  if (p->len > len)
    return;
  const char *s = in, *last = in + (len - p->len);
  while (s <= last) {
    const char *hit = memchr(s, p->s[0], (size_t)(last - s) + 1);
    if (hit == NULL)
      return;
    if (memcmp(hit, p->s, p->len) == 0)
      memset(mask + (hit - in), 1, p->len);
    s = hit + 1;
  }
}

/* Marks a trailing fragment of in that is the start of p (CR_REDACT_TAIL). */
static void mark_tail(const char *in, size_t len, const struct pat *p,
                      unsigned char *mask) {
  size_t k = p->len - 1 < len ? p->len - 1 : len;
  for (; k >= CR_REDACT_MIN_LEN; k--) {
    if (memcmp(in + len - k, p->s, k) == 0) {
      memset(mask + len - k, 1, k);
      return;
    }
  }
}

/* Writes in with every maximal marked run replaced by the mark. */
static char *apply_mask(const char *in, size_t len, const unsigned char *mask,
                        size_t *out_len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (mask == NULL || !mask[i])
      n++;
    else if (i == 0 || !mask[i - 1])
      n += MARK_LEN;
  }
  char *o = cr__malloc(n + 1);
  if (o == NULL)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < len; i++) {
    if (mask == NULL || !mask[i]) {
      o[k++] = in[i];
    } else if (i == 0 || !mask[i - 1]) {
      memcpy(o + k, CR_REDACT_MARK, MARK_LEN);
      k += MARK_LEN;
    }
  }
  o[k] = '\0';
  if (out_len != NULL)
    *out_len = k;
  return o;
}

int cr_redact_ex(const cr_redactor *r, const char *in, size_t len,
                 unsigned flags, char **out, size_t *out_len) {
  if (out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (in == NULL)
    return CR_EINVAL;
  unsigned char *mask = NULL;
  if (r != NULL) {
    rd_lock(r);
    if (r->npats > 0 && len > 0) {
      mask = cr__calloc(len, 1);
      if (mask == NULL) {
        rw_unlock(r);
        return CR_ENOMEM;
      }
      for (size_t i = 0; i < r->npats; i++) {
        mark_all(in, len, &r->pats[i], mask);
        if (flags & CR_REDACT_TAIL)
          mark_tail(in, len, &r->pats[i], mask);
      }
    }
    rw_unlock(r);
  }
  *out = apply_mask(in, len, mask, out_len);
  cr__free(mask);
  return *out == NULL ? CR_ENOMEM : 0;
}

int cr_redact(const cr_redactor *r, const char *in, char **out) {
  if (in == NULL) {
    if (out != NULL)
      *out = NULL;
    return CR_EINVAL;
  }
  return cr_redact_ex(r, in, strlen(in), 0, out, NULL);
}

/* Copies src (n bytes) into buf, truncated on a UTF-8 boundary. */
static void copy_truncated(char *buf, size_t buflen, const char *src,
                           size_t n) {
  size_t cut = n < buflen - 1 ? n : buflen - 1;
  if (cut < n)
    while (cut > 0 && ((unsigned char)src[cut] & 0xC0) == 0x80)
      cut--;
  memcpy(buf, src, cut);
  buf[cut] = '\0';
}

int cr_redact_into(const cr_redactor *r, const char *in, unsigned flags,
                   char *buf, size_t buflen) {
  if (buf == NULL || buflen == 0)
    return CR_EINVAL;
  buf[0] = '\0';
  if (in == NULL)
    return CR_EINVAL;
  char *tmp = NULL;
  size_t n = 0;
  int rc = cr_redact_ex(r, in, strlen(in), flags, &tmp, &n);
  if (rc != 0) {
    copy_truncated(buf, buflen, FAILED_TEXT, sizeof(FAILED_TEXT) - 1);
    return rc;
  }
  copy_truncated(buf, buflen, tmp, n);
  cr__free(tmp);
  return 0;
}

/* ---- Names, header lines, URLs ---------------------------------------------
 */

static int ci_equal(const char *s, size_t n, const char *w) {
  return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

static int ci_contains(const char *s, size_t n, const char *w) {
  size_t wl = strlen(w);
  for (size_t i = 0; i + wl <= n; i++)
    if (strncasecmp(s + i, w, wl) == 0)
      return 1;
  return 0;
}

int cr_redact_name_is_sensitive(const char *name, size_t len) {
  static const char *const exact[] = {"authorization", "proxy-authorization",
                                      "cookie",        "set-cookie",
                                      "x-api-key",     "api-key",
                                      "sig",           "code"};
  static const char *const parts[] = {
      "token", "secret", "key", "password", "passwd", "signature", "session"};
  if (name == NULL)
    return 0;
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
    if (ci_equal(name, len, exact[i]))
      return 1;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (ci_contains(name, len, parts[i]))
      return 1;
  return 0;
}

static void sb_put(struct sbuf *b, const char *s, size_t n) {
  if (b->nomem)
    return;
  if (n > SIZE_MAX / 4 || b->len > SIZE_MAX / 4) { /* size overflow guard */
    b->nomem = 1;
    return;
  }
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < b->len + n + 1)
      ncap *= 2;
    char *p = cr__realloc(b->p, ncap);
    if (p == NULL) {
      b->nomem = 1;
      return;
    }
    b->p = p;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Runs secret redaction over the built text, then frees the builder. */
static int sb_finish(const cr_redactor *r, struct sbuf *b, char **out) {
  int rc = CR_ENOMEM;
  if (!b->nomem)
    rc = cr_redact_ex(r, b->p ? b->p : "", b->len, 0, out, NULL);
  if (b->p != NULL)
    wipe(b->p, b->len);
  cr__free(b->p);
  return rc;
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Appends one header line (n bytes, without its line ending). */
static void put_header_line(struct sbuf *b, const char *line, size_t n) {
  const char *colon = memchr(line, ':', n);
  if (colon == NULL) {
    sb_put(b, line, n);
    return;
  }
  size_t nl = (size_t)(colon - line);
  while (nl > 0 && is_space(line[nl - 1]))
    nl--;
  size_t start = 0;
  while (start < nl && is_space(line[start]))
    start++;
  if (!cr_redact_name_is_sensitive(line + start, nl - start)) {
    sb_put(b, line, n);
    return;
  }
  sb_put(b, line, (size_t)(colon - line) + 1);
  sb_puts(b, " " CR_REDACT_MARK);
}

/* Appends every line of text (header rules), keeping line endings. */
static void put_header_lines(struct sbuf *b, const char *text) {
  const char *p = text;
  while (*p != '\0') {
    size_t n = strcspn(p, "\n");
    size_t content = n;
    if (content > 0 && p[content - 1] == '\r')
      content--;
    put_header_line(b, p, content);
    sb_put(b, p + content, n - content);
    p += n;
    if (*p == '\n') {
      sb_put(b, "\n", 1);
      p++;
    }
  }
}

int cr_redact_header_line(const cr_redactor *r, const char *line, char **out) {
  if (out != NULL)
    *out = NULL;
  if (line == NULL || out == NULL)
    return CR_EINVAL;
  struct sbuf b = {NULL, 0, 0, 0};
  put_header_lines(&b, line);
  return sb_finish(r, &b, out);
}

int cr_redact_headers(const cr_redactor *r, const char *block, char **out) {
  return cr_redact_header_line(r, block, out);
}

/* Appends a query string (without '?' and fragment), hiding the values of
 * parameters with sensitive names. */
static void put_query(struct sbuf *b, const char *q, size_t n) {
  size_t i = 0;
  while (i <= n) {
    size_t plen = 0;
    while (i + plen < n && q[i + plen] != '&')
      plen++;
    const char *param = q + i;
    const char *eq = memchr(param, '=', plen);
    if (eq != NULL &&
        cr_redact_name_is_sensitive(param, (size_t)(eq - param))) {
      sb_put(b, param, (size_t)(eq - param) + 1);
      sb_puts(b, CR_REDACT_MARK);
    } else {
      sb_put(b, param, plen);
    }
    i += plen;
    if (i < n)
      sb_put(b, "&", 1);
    i++;
  }
}

int cr_redact_url(const cr_redactor *r, const char *url, char **out) {
  if (out != NULL)
    *out = NULL;
  if (url == NULL || out == NULL)
    return CR_EINVAL;
  struct sbuf b = {NULL, 0, 0, 0};
  const char *auth = url;
  const char *sep = strstr(url, "://");
  if (sep != NULL && (size_t)(sep - url) <= strcspn(url, "/?#"))
    auth = sep + 3;
  const char *auth_end = auth + strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *p = auth; p < auth_end; p++)
    if (*p == '@')
      at = p;
  sb_put(&b, url, (size_t)(auth - url));
  if (at != NULL) {
    sb_puts(&b, CR_REDACT_MARK);
    auth = at;
  }
  const char *q = auth_end + strcspn(auth_end, "?#");
  sb_put(&b, auth, (size_t)(q - auth));
  if (*q == '?') {
    size_t qn = strcspn(q + 1, "#");
    sb_put(&b, "?", 1);
    put_query(&b, q + 1, qn);
    q += 1 + qn;
  }
  sb_puts(&b, q);
  return sb_finish(r, &b, out);
}

static int add_json_strings(cr_redactor *red, const json_t *v) {
  if (json_is_string(v))
    return json_string_length(v) > 0
               ? cr_redactor_add_n(red, json_string_value(v),
                                   json_string_length(v))
               : 0;
  int rc = 0;
  if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
      if (rc == 0)
        rc = add_json_strings(red, x);
    }
  } else if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (rc == 0)
        rc = add_json_strings(red, x);
    }
  }
  return rc;
}

int cr_redactor_from_json(const char *json, cr_redactor **out) {
  int rc = cr_redactor_new(out);
  if (rc != 0)
    return rc;
  json_t *root = json ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
  if (root == NULL)
    return 0;
  rc = add_json_strings(*out, root);
  json_decref(root);
  if (rc != 0) {
    cr_redactor_free(*out);
    *out = NULL;
  }
  return rc;
}
