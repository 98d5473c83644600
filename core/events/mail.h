/* mail.h: sending one plain-text e-mail over SMTP/SMTPS with libcurl.
 *
 * The message is built here (RFC 5322 headers, UTF-8 text/plain body in
 * quoted-printable) and handed to libcurl's SMTP client. Security defaults:
 *   - only smtp:// and smtps:// URLs; TLS peer and host name verification
 *     stay on (libcurl defaults);
 *   - smtps:// is implicit TLS; for smtp:// see the starttls field: by
 *     default STARTTLS is tried, and REQUIRED as soon as a username is set,
 *     so a password never travels in clear text unless the caller opts out
 *     explicitly with CR_MAIL_STARTTLS_NEVER;
 *   - the password never appears in errbuf (cr_redactor; a password shorter
 *     than CR_REDACT_MIN_LEN makes the libcurl detail be dropped if it
 *     contains it).
 * Body lines are normalised to CRLF and quoted-printable encoded, which also
 * keeps lines under 76 characters and encodes a leading "." (=2E) and a
 * leading "From " (=46rom), so neither SMTP dot-stuffing (libcurl does it
 * anyway) nor mbox "From " escaping can alter the text. */
#ifndef CR_MAIL_H
#define CR_MAIL_H

#include <stddef.h>

/* Values of cr_mail.starttls (smtp:// URLs; ignored for smtps://). */
/* Default: try STARTTLS, continue in clear text if the server does not offer
 * it, EXCEPT when a username is set: then TLS is required. */
#define CR_MAIL_STARTTLS_AUTO 0
/* Require STARTTLS (CURLUSESSL_ALL): fail if the server does not offer it. */
#define CR_MAIL_STARTTLS_REQUIRE 1
/* Never use TLS (CURLUSESSL_NONE), even with a login: loopback relays and
 * tests only. */
#define CR_MAIL_STARTTLS_NEVER (-1)

/* Default total timeout. */
#define CR_MAIL_TIMEOUT_MS 30000L

/* One message. Every pointer is borrowed for the duration of the call. */
struct cr_mail {
  const char *url;       /* "smtp://host:port" or "smtps://host:port" */
  const char *username;  /* NULL or "": no login */
  const char *password;  /* secret: never in errors; NULL = "" */
  const char *from;      /* bare address "alerts@example.com" */
  const char *const *to; /* n_to bare addresses (n_to >= 1) */
  size_t n_to;
  const char *subject; /* one line, UTF-8 (CR/LF refused: CR_EINVAL) */
  const char *body;    /* UTF-8 text, any line endings; NULL = "" */
  long timeout_ms;     /* total; 0 = CR_MAIL_TIMEOUT_MS */
  int starttls;        /* CR_MAIL_STARTTLS_*, see above */
};

/* Sends one message (blocking; libcurl easy: call it off the event loop).
 * Builds the headers Date (UTC), From, To, Subject (RFC 2047 "B" encoded
 * when not plain printable ASCII), Message-ID (random, @ the sender's
 * domain), MIME-Version, Content-Type text/plain; charset=utf-8 and
 * Content-Transfer-Encoding quoted-printable. m and everything it points to
 * are borrowed. errbuf (errlen bytes, may be NULL/0) receives a message on
 * failure, never the password. Returns 0; CR_EINVAL (bad URL scheme, missing
 * from/to/subject, CR/LF or control characters or <> in an address,
 * CR/LF in the subject or username, unknown starttls value); CR_ENOMEM;
 * CR_EHTTP (connection, TLS, authentication or server refusal, timeout: the
 * libcurl/server error is in errbuf). */
int cr_mail_send(const struct cr_mail *m, char *errbuf, size_t errlen);

#endif
