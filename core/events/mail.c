/* mail.c: building an RFC 5322 plain-text message and sending it over
 * SMTP/SMTPS with the libcurl easy interface. */
#include "events/mail.h"

#include "util/alloc.h"
#include "util/error.h"
#include "plugin/host_api.h"
#include "util/redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* ---- growable string ------------------------------------------------------
 */

struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *np = cr__realloc(b->p, cap);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static void sb_addc(struct sbuf *b, char c) { sb_addn(b, &c, 1); }

static void sb_hex(struct sbuf *b, unsigned char c) {
  static const char hx[] = "0123456789ABCDEF";
  char e[3] = {'=', hx[c >> 4], hx[c & 15]};
  sb_addn(b, e, 3);
}

/* ---- validation -----------------------------------------------------------
 */

static void seterr(char *errbuf, size_t errlen, const char *fmt, ...) {
  if (errbuf == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

/* A bare address: non-empty, no controls, spaces, '<', '>', ',' or '"'. */
static int addr_ok(const char *a) {
  if (a == NULL || a[0] == '\0')
    return 0;
  for (const unsigned char *p = (const unsigned char *)a; *p; p++)
    if (*p <= 0x20 || *p == 0x7f || strchr("<>,\"", *p) != NULL)
      return 0;
  return 1;
}

static int has_crlf(const char *s) {
  return s != NULL && strpbrk(s, "\r\n") != NULL;
}

/* "scheme://user:pass@host": credentials belong in username/password, where
 * they are kept out of errors. */
static int url_has_userinfo(const char *url) {
  const char *auth = strstr(url, "://") + 3;
  size_t n = strcspn(auth, "/?#");
  return memchr(auth, '@', n) != NULL;
}

static const char *check(const struct cr_mail *m) {
  if (m->url == NULL || (strncasecmp(m->url, "smtp://", 7) != 0 &&
                         strncasecmp(m->url, "smtps://", 8) != 0))
    return "url must start with smtp:// or smtps://";
  if (url_has_userinfo(m->url))
    return "url must not carry credentials (use username/password)";
  if (!addr_ok(m->from))
    return "invalid from address";
  if (m->to == NULL || m->n_to == 0)
    return "no recipients";
  for (size_t i = 0; i < m->n_to; i++)
    if (!addr_ok(m->to[i]))
      return "invalid to address";
  if (m->subject == NULL)
    return "missing subject";
  if (has_crlf(m->subject))
    return "subject contains CR or LF";
  if (has_crlf(m->username))
    return "username contains CR or LF";
  if (m->starttls < CR_MAIL_STARTTLS_NEVER ||
      m->starttls > CR_MAIL_STARTTLS_REQUIRE)
    return "invalid starttls value";
  return NULL;
}

/* ---- message --------------------------------------------------------------
 */

static void add_date(struct sbuf *b) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};
  static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char d[64];
  snprintf(d, sizeof d, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
           days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
           tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  sb_add(b, d);
}

static void add_message_id(struct sbuf *b, const char *from) {
  unsigned char rnd[16];
  if (RAND_bytes(rnd, sizeof rnd) != 1) {
    b->oom = 1;
    return;
  }
  char hex[2 * sizeof rnd + 1];
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  const char *at = strrchr(from, '@');
  sb_add(b, "Message-ID: <");
  sb_add(b, hex);
  sb_add(b, "@");
  sb_add(b, at != NULL && at[1] != '\0' ? at + 1 : "connrun.invalid");
  sb_add(b, ">\r\n");
}

static int subject_plain(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p > 0x7e)
      return 0;
  return strstr(s, "=?") == NULL;
}

/* RFC 2047: "=?UTF-8?B?...?=" words of at most 36 input bytes (60
 * characters, so "Subject: " + word fits in 78), never splitting a UTF-8
 * sequence, folded with CRLF SPACE. */
static void add_subject(struct sbuf *b, const char *s) {
  sb_add(b, "Subject: ");
  if (subject_plain(s)) {
    sb_add(b, s);
    sb_add(b, "\r\n");
    return;
  }
  size_t len = strlen(s), pos = 0;
  while (pos < len) {
    size_t n = len - pos < 36 ? len - pos : 36;
    while (n > 1 && pos + n < len && ((unsigned char)s[pos + n] & 0xc0) == 0x80)
      n--;
    unsigned char enc[64];
    EVP_EncodeBlock(enc, (const unsigned char *)s + pos, (int)n);
    sb_add(b, pos == 0 ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?");
    sb_add(b, (const char *)enc);
    sb_add(b, "?=");
    pos += n;
  }
  sb_add(b, "\r\n");
}

static void add_to(struct sbuf *b, const struct cr_mail *m) {
  sb_add(b, "To: ");
  for (size_t i = 0; i < m->n_to; i++) {
    if (i > 0)
      sb_add(b, ",\r\n ");
    sb_add(b, m->to[i]);
  }
  sb_add(b, "\r\n");
}

/* Quoted-printable (RFC 2045) of one line (no line break), soft-wrapped at
 * 76 characters; a "." starting any output line (soft breaks included) and
 * a leading "From " are encoded. */
static void qp_line(struct sbuf *b, const unsigned char *s, size_t n) {
  size_t col = 0;
  int from = n >= 5 && memcmp(s, "From ", 5) == 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    int last = i + 1 == n;
    int lit =
        (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
    if (i == 0 && from)
      lit = 0;
    if (col + (lit ? 1 : 3) > (last ? 76u : 75u)) {
      sb_add(b, "=\r\n");
      col = 0;
    }
    if (col == 0 && c == '.')
      lit = 0;
    if (lit)
      sb_addc(b, (char)c);
    else
      sb_hex(b, c);
    col += lit ? 1 : 3;
  }
  sb_add(b, "\r\n");
}

/* Body: any of CRLF, LF or CR ends a line. */
static void add_body(struct sbuf *b, const char *body) {
  const unsigned char *p = (const unsigned char *)body;
  while (*p != '\0') {
    size_t n = strcspn((const char *)p, "\r\n");
    qp_line(b, p, n);
    p += n;
    if (p[0] == '\r' && p[1] == '\n')
      p += 2;
    else if (*p != '\0')
      p++;
  }
}

static int build(const struct cr_mail *m, struct sbuf *b) {
  add_date(b);
  sb_add(b, "From: ");
  sb_add(b, m->from);
  sb_add(b, "\r\n");
  add_to(b, m);
  add_subject(b, m->subject);
  add_message_id(b, m->from);
  sb_add(b, "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
  add_body(b, m->body != NULL ? m->body : "");
  return b->oom ? CR_ENOMEM : 0;
}

/* ---- transfer -------------------------------------------------------------
 */

struct reader {
  const char *p;
  size_t left;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud) {
  struct reader *r = ud;
  size_t n = size * nitems < r->left ? size * nitems : r->left;
  memcpy(buf, r->p, n);
  r->p += n;
  r->left -= n;
  return n;
}

static long tls_mode(const struct cr_mail *m) {
  int login = m->username != NULL && m->username[0] != '\0';
  if (m->starttls == CR_MAIL_STARTTLS_NEVER)
    return (long)CURLUSESSL_NONE;
  if (m->starttls == CR_MAIL_STARTTLS_REQUIRE || login)
    return (long)CURLUSESSL_ALL;
  return (long)CURLUSESSL_TRY;
}

static void set_options(CURL *c, const struct cr_mail *m, const char *from,
                        struct curl_slist *rcpt, struct reader *r, char *cerr) {
  curl_easy_setopt(c, CURLOPT_URL, m->url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS,
                   (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
  curl_easy_setopt(c, CURLOPT_READDATA, r);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->left);
  curl_easy_setopt(c, CURLOPT_USE_SSL, tls_mode(m));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   m->timeout_ms > 0 ? m->timeout_ms : CR_MAIL_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  if (m->username != NULL && m->username[0] != '\0') {
    curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
    curl_easy_setopt(c, CURLOPT_PASSWORD,
                     m->password != NULL ? m->password : "");
  }
}

/* Copies msg into errbuf with the password redacted. A password too short
 * for the redactor (or a redactor failure) drops msg if it contains it.
 * Returns 0 or a negative code (errbuf then holds nothing useful). */
static int redacted_copy(const char *pw, const char *msg, char *errbuf,
                         size_t errlen) {
  if (pw == NULL || pw[0] == '\0')
    return cr_redact_into(NULL, msg, 0, errbuf, errlen);
  cr_redactor *red = NULL;
  int rc = CR_EPERM;
  if (strlen(pw) >= CR_REDACT_MIN_LEN && cr_redactor_new(&red) == 0 &&
      cr_redactor_add(red, pw) == 0)
    rc = cr_redact_into(red, msg, 0, errbuf, errlen);
  else if (strstr(msg, pw) == NULL)
    rc = cr_redact_into(NULL, msg, 0, errbuf, errlen);
  cr_redactor_free(red);
  return rc;
}

/* Formats a transfer failure into errbuf with the password redacted. */
static void transfer_error(const struct cr_mail *m, CURL *c, CURLcode rc,
                           const char *cerr, char *errbuf, size_t errlen) {
  if (errbuf == NULL || errlen == 0)
    return;
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  char reply[48] = "";
  if (code != 0)
    snprintf(reply, sizeof reply, " (server reply %ld)", code);
  char msg[CURL_ERROR_SIZE + 128];
  snprintf(msg, sizeof msg, "smtp: %s%s%s%s", curl_easy_strerror(rc),
           cerr[0] ? ": " : "", cerr, reply);
  if (redacted_copy(m->password, msg, errbuf, errlen) != 0)
    snprintf(errbuf, errlen, "smtp: %s%s", curl_easy_strerror(rc), reply);
}

static char *angle(const char *addr) {
  size_t n = strlen(addr) + 3;
  char *s = cr__malloc(n);
  if (s != NULL)
    snprintf(s, n, "<%s>", addr);
  return s;
}

static int transfer(const struct cr_mail *m, const struct sbuf *msg,
                    char *errbuf, size_t errlen) {
  int rc = CR_ENOMEM;
  CURL *c = NULL;
  struct curl_slist *rcpt = NULL;
  char *from = angle(m->from);
  if (from == NULL)
    goto fail;
  for (size_t i = 0; i < m->n_to; i++) {
    char *a = angle(m->to[i]);
    struct curl_slist *n = a != NULL ? curl_slist_append(rcpt, a) : NULL;
    cr__free(a);
    if (n == NULL)
      goto fail;
    rcpt = n;
  }
  c = curl_easy_init();
  if (c == NULL)
    goto fail;
  char cerr[CURL_ERROR_SIZE];
  cerr[0] = '\0';
  struct reader r = {msg->p, msg->len};
  set_options(c, m, from, rcpt, &r, cerr);
  CURLcode cc = curl_easy_perform(c);
  rc = 0;
  if (cc != CURLE_OK) {
    transfer_error(m, c, cc, cerr, errbuf, errlen);
    rc = CR_EHTTP;
  }
fail:
  if (rc == CR_ENOMEM)
    seterr(errbuf, errlen, "smtp: out of memory");
  curl_easy_cleanup(c);
  curl_slist_free_all(rcpt);
  cr__free(from);
  return rc;
}

int cr_mail_send(const struct cr_mail *m, char *errbuf, size_t errlen) {
  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (m == NULL) {
    seterr(errbuf, errlen, "mail: no message");
    return CR_EINVAL;
  }
  const char *bad = check(m);
  if (bad != NULL) {
    seterr(errbuf, errlen, "mail: %s", bad);
    return CR_EINVAL;
  }
  if (cr_host_http_global_init() != 0) {
    seterr(errbuf, errlen, "mail: libcurl initialisation failed");
    return CR_EHTTP;
  }
  struct sbuf msg = {0};
  int rc = build(m, &msg);
  if (rc != 0)
    seterr(errbuf, errlen, "mail: out of memory");
  else
    rc = transfer(m, &msg, errbuf, errlen);
  cr__free(msg.p);
  return rc;
}
