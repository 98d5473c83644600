/* redact.h: keeping secrets out of every output (logs, error messages,
 * health reasons, HTTP traces).
 *
 * A cr_redactor holds a set of secret values (API keys, tokens, passwords).
 * cr_redact() replaces every occurrence of any of them with "[REDACTED]".
 * Each secret is matched in several encodings, because a secret rarely
 * travels in its plain form only:
 *   - plain;
 *   - URL-encoded (percent-encoding with upper- and lower-case hex, and the
 *     form-encoding variant with '+' for space);
 *   - JSON-string-escaped (quote, backslash and control characters);
 *   - base64 (standard alphabet): the whole padded encoding, plus the three
 *     "aligned" fragments that appear when the secret sits at any byte offset
 *     inside a larger encoded value, e.g. the password inside
 *     "Authorization: Basic base64(user:password)". The one or two base64
 *     characters at each edge of such a fragment also depend on the
 *     neighbouring bytes and may remain (they carry under 12 bits).
 *
 * Matching marks every byte covered by any occurrence of any form
 * (overlapping and nested secrets included) and replaces each maximal run of
 * marked bytes with one "[REDACTED]", so overlapping secrets never leave a
 * piece of either behind.
 *
 * Secrets shorter than CR_REDACT_MIN_LEN bytes are stored (counted, kept for
 * later) but never matched: redacting "ab" would mangle ordinary text while
 * hiding almost nothing. Do not use such short secrets.
 *
 * Header and URL rules (cr_redact_header_line, cr_redact_headers,
 * cr_redact_url) additionally hide values by NAME, whether or not the value is
 * a known secret: see cr_redact_name_is_sensitive.
 *
 * Threads: a redactor is protected by a read-write lock; any number of
 * threads may redact concurrently, also while another thread adds a secret
 * (e.g. a rotated OAuth token). cr_redactor_free needs exclusive access.
 */
#ifndef CR_REDACT_H
#define CR_REDACT_H

#include <stddef.h>

/* Shortest secret that is actually matched (bytes). */
#define CR_REDACT_MIN_LEN 4
/* The replacement text. */
#define CR_REDACT_MARK "[REDACTED]"

/* cr_redact_ex flags. */
/* The text may have been cut short (a full fixed-size buffer): a trailing
 * fragment of at least CR_REDACT_MIN_LEN bytes that is the beginning of a
 * secret form is redacted too. */
#define CR_REDACT_TAIL 1u

typedef struct cr_redactor cr_redactor;

/* Creates an empty redactor. Returns 0 or CR_ENOMEM / CR_EINVAL (out NULL).
 * *out is owned by the caller; free with cr_redactor_free. */
int cr_redactor_new(cr_redactor **out);

/* Frees the redactor and wipes the secrets it holds. NULL is a no-op. No
 * other thread may use r during or after the call. */
void cr_redactor_free(cr_redactor *r);

/* Adds a secret (copied). Adding a secret already present is a no-op. A
 * secret shorter than CR_REDACT_MIN_LEN is stored but not matched (see
 * above). Returns 0, CR_EINVAL (r or secret NULL, or secret empty) or
 * CR_ENOMEM (the redactor is then unchanged). */
int cr_redactor_add(cr_redactor *r, const char *secret);

/* Adds len bytes of secret (any bytes). Same rules and errors as
 * cr_redactor_add. */
int cr_redactor_add_n(cr_redactor *r, const char *secret, size_t len);

/* A new redactor (*out, freed with cr_redactor_free) holding every string
 * value, at any depth, of the JSON text json (borrowed; e.g. a credentials
 * object). Text that is not JSON adds nothing. Returns 0 or CR_ENOMEM. */
int cr_redactor_from_json(const char *json, cr_redactor **out);

/* Number of distinct secrets added (short ones included). r may be NULL. */
size_t cr_redactor_count(const cr_redactor *r);

/* Replaces every occurrence of every secret form in in (NUL-terminated,
 * borrowed) with CR_REDACT_MARK. r may be NULL (plain copy). On success *out
 * is a new NUL-terminated string, owned by the caller, freed with cr__free.
 * Returns 0, CR_EINVAL (in or out NULL) or CR_ENOMEM (*out NULL). */
int cr_redact(const cr_redactor *r, const char *in, char **out);

/* cr_redact on len bytes of in (need not be NUL-terminated; a NUL byte in it
 * is copied), with CR_REDACT_* flags. *out (caller frees with cr__free) is
 * NUL-terminated; its length without the NUL goes to *out_len if out_len is
 * not NULL. Errors as cr_redact. */
int cr_redact_ex(const cr_redactor *r, const char *in, size_t len,
                 unsigned flags, char **out, size_t *out_len);

/* Redacts in (borrowed, NUL-terminated) into the caller's buffer buf of
 * buflen bytes, truncated to fit (never cutting a UTF-8 sequence). Returns 0,
 * CR_EINVAL, or CR_ENOMEM, in which case buf holds "[redaction failed]" and
 * never the raw input. buf must not overlap in. */
int cr_redact_into(const cr_redactor *r, const char *in, unsigned flags,
                   char *buf, size_t buflen);

/* Non-zero when a header or query parameter called name (len bytes,
 * case-insensitive) carries credentials by its name: Authorization,
 * Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, Api-Key, "sig", "code",
 * or any name containing "token", "secret", "key", "password", "passwd",
 * "signature" or "session". Over-matching (e.g. "keyword") only hides a
 * harmless value. */
int cr_redact_name_is_sensitive(const char *name, size_t len);

/* Redacts one header line "Name: value" (optionally ending in "\r\n" or
 * "\n", kept): when the name is sensitive the whole value becomes
 * CR_REDACT_MARK, then known secrets are redacted everywhere in the line.
 * A line without a colon (e.g. "HTTP/1.1 200 OK") gets secret redaction
 * only. line is borrowed; *out as cr_redact. Errors as cr_redact. */
int cr_redact_header_line(const cr_redactor *r, const char *line, char **out);

/* cr_redact_header_line applied to every line of a header block ("\r\n" or
 * "\n" separated). block is borrowed; *out as cr_redact. Errors as
 * cr_redact. */
int cr_redact_headers(const cr_redactor *r, const char *block, char **out);

/* Redacts a URL for logging: userinfo ("user:pass@") becomes
 * "[REDACTED]@", the value of every query parameter with a sensitive name
 * becomes CR_REDACT_MARK, then known secrets are redacted anywhere (path
 * included). url is borrowed; *out as cr_redact. Errors as cr_redact. */
int cr_redact_url(const cr_redactor *r, const char *url, char **out);

#endif
