/* stdwebhooks.h: Standard Webhooks (https://www.standardwebhooks.com)
 * signing and verification, scheme "v1" (HMAC-SHA256).
 *
 * The signed content is "<msg_id>.<timestamp>.<body>", the timestamp in Unix
 * seconds as a decimal integer. The signature header value is
 * "v1,<base64(HMAC-SHA256(key, content))>"; a header may carry several
 * space-separated signatures (key rotation), any one matching is enough.
 * Senders also set "webhook-id: <msg_id>" and "webhook-timestamp: <ts>".
 * A secret is written "whsec_" + base64(key bytes); 24..64 key bytes are
 * recommended. All functions are thread-safe and never print. */
#ifndef CR_STDWEBHOOKS_H
#define CR_STDWEBHOOKS_H

#include <stddef.h>
#include <stdint.h>

/* Bytes for one "v1,<base64>" value including the NUL. */
#define CR_SWH_SIG_MAX 128
/* Longest key (bytes) accepted by every function here. */
#define CR_SWH_KEY_MAX 128
/* The secret prefix. */
#define CR_SWH_SECRET_PREFIX "whsec_"

/* Parses secret "whsec_<base64>" (the prefix is optional; standard base64
 * alphabet with padding) into key (caller's buffer of CR_SWH_KEY_MAX bytes)
 * and *keylen. secret is borrowed; key/keylen are written only on success.
 * Returns 0, or CR_EINVAL for a NULL argument, bad base64, an empty key or a
 * key longer than CR_SWH_KEY_MAX. The secret is never copied anywhere else. */
int cr_swh_key_parse(const char *secret, unsigned char *key, size_t *keylen);

/* Writes "v1,<base64 HMAC-SHA256(key, msg_id.timestamp.body)>" (NUL-
 * terminated) into out. key (keylen 1..CR_SWH_KEY_MAX bytes), msg_id and
 * body (body_len bytes, may contain NULs; NULL only when body_len is 0) are
 * borrowed. Returns 0, CR_EINVAL (NULL/empty argument, key too long),
 * CR_ERANGE (outlen < CR_SWH_SIG_MAX) or CR_ENOMEM (OpenSSL failure). */
int cr_swh_sign(const unsigned char *key, size_t keylen, const char *msg_id,
                int64_t timestamp_s, const char *body, size_t body_len,
                char *out, size_t outlen);

/* A signer for one key: it keeps the HMAC keyed, so each signature costs a
 * re-initialisation (0.4 us here) instead of fetching HMAC and SHA-256 and
 * keying again (2 us). Use from one thread at a time. */
typedef struct cr_swh_signer cr_swh_signer;

/* Creates a signer for key (keylen 1..CR_SWH_KEY_MAX bytes; borrowed: the
 * signer keeps only OpenSSL's keyed state, wiped when freed). Returns 0,
 * CR_EINVAL or CR_ENOMEM. Free with cr_swh_signer_free. */
int cr_swh_signer_new(const unsigned char *key, size_t keylen,
                      cr_swh_signer **out);

/* cr_swh_sign with s's key. s is used (not thread-safe); the rest as
 * cr_swh_sign. */
int cr_swh_signer_sign(cr_swh_signer *s, const char *msg_id,
                       int64_t timestamp_s, const char *body, size_t body_len,
                       char *out, size_t outlen);

/* Frees s (NULL is a no-op). */
void cr_swh_signer_free(cr_swh_signer *s);

/* Verifies a webhook-signature header value (space-separated list of
 * "<version>,<sig>"; entries of versions other than "v1" are ignored) for the
 * message. All pointers are borrowed. tolerance_s: allowed |now_s -
 * timestamp_s| in seconds (0 = skip the check). Signatures are compared in
 * constant time. Returns 0 when a v1 signature matches and the timestamp is
 * within tolerance; CR_EPERM for no match or an expired/future timestamp;
 * CR_EINVAL for NULL arguments or a malformed header (empty, an entry without
 * a comma, a v1 value that is not base64 of 32 bytes) with no matching
 * entry; CR_ENOMEM for an OpenSSL failure. */
int cr_swh_verify(const unsigned char *key, size_t keylen, const char *msg_id,
                  int64_t timestamp_s, const char *body, size_t body_len,
                  const char *header, int64_t now_s, int64_t tolerance_s);

#endif
