/* stdwebhooks.c: Standard Webhooks v1 signatures (HMAC-SHA256 via OpenSSL
 * EVP_MAC, strict base64 via EVP_EncodeBlock/EVP_DecodeBlock). */
#include "events/stdwebhooks.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/jsonbuf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define MAC_LEN 32 /* SHA-256 output */
/* Base64 of the longest key, padded. */
#define KEY_B64_MAX (4 * ((CR_SWH_KEY_MAX + 2) / 3))

static int b64_char_ok(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Strict standard base64 check of len bytes: a multiple of 4, alphabet
 * characters, then at most two '=' at the very end. Sets *pad. */
static int b64_valid(const char *s, size_t len, size_t *pad) {
  if (len == 0 || len % 4 != 0)
    return 0;
  size_t p = 0;
  if (s[len - 1] == '=')
    p = s[len - 2] == '=' ? 2 : 1;
  for (size_t i = 0; i < len - p; i++)
    if (!b64_char_ok((unsigned char)s[i]))
      return 0;
  *pad = p;
  return 1;
}

/* Decodes len bytes of strict base64 into out (capacity cap). Returns the
 * decoded length, or -1 when invalid or too long. */
static long b64_decode(const char *s, size_t len, unsigned char *out,
                       size_t cap) {
  size_t pad = 0;
  if (!b64_valid(s, len, &pad) || len / 4 * 3 - pad > cap)
    return -1;
  unsigned char tmp[KEY_B64_MAX / 4 * 3];
  if (len > KEY_B64_MAX)
    return -1;
  int n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
  if (n < 0 || (size_t)n != len / 4 * 3) {
    cr__secret_wipe(tmp, sizeof tmp);
    return -1;
  }
  size_t outlen = (size_t)n - pad;
  memcpy(out, tmp, outlen);
  cr__secret_wipe(tmp, sizeof tmp);
  return (long)outlen;
}

int cr_swh_key_parse(const char *secret, unsigned char *key, size_t *keylen) {
  if (secret == NULL || key == NULL || keylen == NULL)
    return CR_EINVAL;
  size_t plen = strlen(CR_SWH_SECRET_PREFIX);
  if (strncmp(secret, CR_SWH_SECRET_PREFIX, plen) == 0)
    secret += plen;
  long n = b64_decode(secret, strlen(secret), key, CR_SWH_KEY_MAX);
  if (n <= 0)
    return CR_EINVAL;
  *keylen = (size_t)n;
  return 0;
}

struct cr_swh_signer {
  EVP_MAC_CTX *ctx; /* keyed HMAC-SHA256 */
};

int cr_swh_signer_new(const unsigned char *key, size_t keylen,
                      cr_swh_signer **out) {
  if (key == NULL || keylen == 0 || keylen > CR_SWH_KEY_MAX || out == NULL)
    return CR_EINVAL;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  cr_swh_signer *s = cr__calloc(1, sizeof *s);
  EVP_MAC *algo = s != NULL ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
  if (algo != NULL)
    s->ctx = EVP_MAC_CTX_new(algo);
  EVP_MAC_free(algo); /* the context keeps its own reference */
  if (s == NULL || s->ctx == NULL ||
      EVP_MAC_init(s->ctx, key, keylen, params) != 1) {
    cr_swh_signer_free(s);
    return CR_ENOMEM;
  }
  *out = s;
  return 0;
}

void cr_swh_signer_free(cr_swh_signer *s) {
  if (s == NULL)
    return;
  EVP_MAC_CTX_free(s->ctx);
  cr__free(s);
}

/* HMAC-SHA256(s's key, msg_id "." ts "." body) into mac (MAC_LEN bytes):
 * EVP_MAC_init without a key starts over with the same key. */
static int compute_mac(cr_swh_signer *s, const char *msg_id, int64_t ts,
                       const char *body, size_t body_len, unsigned char *mac) {
  char tsbuf[CR__DEC_MAX + 2] = ".";
  size_t tn = 1 + cr__dec_i64(ts, tsbuf + 1);
  tsbuf[tn++] = '.';
  size_t maclen = 0;
  int ok =
      EVP_MAC_init(s->ctx, NULL, 0, NULL) == 1 &&
      EVP_MAC_update(s->ctx, (const unsigned char *)msg_id, strlen(msg_id)) ==
          1 &&
      EVP_MAC_update(s->ctx, (const unsigned char *)tsbuf, tn) == 1 &&
      (body_len == 0 ||
       EVP_MAC_update(s->ctx, (const unsigned char *)body, body_len) == 1) &&
      EVP_MAC_final(s->ctx, mac, &maclen, MAC_LEN) == 1 && maclen == MAC_LEN;
  return ok ? 0 : CR_ENOMEM;
}

static int args_ok(const unsigned char *key, size_t keylen, const char *msg_id,
                   const char *body, size_t body_len) {
  return key != NULL && keylen > 0 && keylen <= CR_SWH_KEY_MAX &&
         msg_id != NULL && msg_id[0] != '\0' && (body != NULL || body_len == 0);
}

/* compute_mac with a signer made for this one message. */
static int mac_once(const unsigned char *key, size_t keylen, const char *msg_id,
                    int64_t ts, const char *body, size_t body_len,
                    unsigned char *mac) {
  cr_swh_signer *s = NULL;
  int rc = cr_swh_signer_new(key, keylen, &s);
  if (rc == 0)
    rc = compute_mac(s, msg_id, ts, body, body_len, mac);
  cr_swh_signer_free(s);
  return rc;
}

int cr_swh_signer_sign(cr_swh_signer *s, const char *msg_id,
                       int64_t timestamp_s, const char *body, size_t body_len,
                       char *out, size_t outlen) {
  if (s == NULL || msg_id == NULL || msg_id[0] == '\0' ||
      (body == NULL && body_len > 0) || out == NULL)
    return CR_EINVAL;
  if (outlen < CR_SWH_SIG_MAX)
    return CR_ERANGE;
  unsigned char mac[MAC_LEN];
  int rc = compute_mac(s, msg_id, timestamp_s, body, body_len, mac);
  if (rc != 0)
    return rc;
  memcpy(out, "v1,", 3);
  EVP_EncodeBlock((unsigned char *)out + 3, mac, MAC_LEN);
  return 0;
}

int cr_swh_sign(const unsigned char *key, size_t keylen, const char *msg_id,
                int64_t timestamp_s, const char *body, size_t body_len,
                char *out, size_t outlen) {
  if (!args_ok(key, keylen, msg_id, body, body_len) || out == NULL)
    return CR_EINVAL;
  cr_swh_signer *s = NULL;
  int rc = cr_swh_signer_new(key, keylen, &s);
  if (rc == 0)
    rc =
        cr_swh_signer_sign(s, msg_id, timestamp_s, body, body_len, out, outlen);
  cr_swh_signer_free(s);
  return rc;
}

/* Outcome of scanning the header against mac. */
enum { SCAN_MATCH, SCAN_NOMATCH, SCAN_MALFORMED };

/* Checks one "<version>,<sig>" entry of len bytes. */
static int scan_entry(const char *e, size_t len, const unsigned char *mac) {
  const char *comma = memchr(e, ',', len);
  if (comma == NULL || comma == e)
    return SCAN_MALFORMED;
  size_t vlen = (size_t)(comma - e);
  if (vlen != 2 || memcmp(e, "v1", 2) != 0)
    return SCAN_NOMATCH; /* another scheme: ignored (forward compatible) */
  unsigned char got[MAC_LEN + 3];
  long n = b64_decode(comma + 1, len - vlen - 1, got, sizeof got);
  if (n != MAC_LEN)
    return SCAN_MALFORMED;
  return CRYPTO_memcmp(got, mac, MAC_LEN) == 0 ? SCAN_MATCH : SCAN_NOMATCH;
}

static int scan_header(const char *h, const unsigned char *mac) {
  int seen = 0, malformed = 0;
  while (*h != '\0') {
    if (*h == ' ') {
      h++;
      continue;
    }
    size_t len = strcspn(h, " ");
    int r = scan_entry(h, len, mac);
    if (r == SCAN_MATCH)
      return SCAN_MATCH;
    malformed |= r == SCAN_MALFORMED;
    seen = 1;
    h += len;
  }
  return (!seen || malformed) ? SCAN_MALFORMED : SCAN_NOMATCH;
}

static int within(int64_t now, int64_t ts, int64_t tolerance) {
  if (tolerance <= 0)
    return 1;
  uint64_t diff =
      now >= ts ? (uint64_t)now - (uint64_t)ts : (uint64_t)ts - (uint64_t)now;
  return diff <= (uint64_t)tolerance;
}

int cr_swh_verify(const unsigned char *key, size_t keylen, const char *msg_id,
                  int64_t timestamp_s, const char *body, size_t body_len,
                  const char *header, int64_t now_s, int64_t tolerance_s) {
  if (!args_ok(key, keylen, msg_id, body, body_len) || header == NULL)
    return CR_EINVAL;
  unsigned char mac[MAC_LEN];
  int rc = mac_once(key, keylen, msg_id, timestamp_s, body, body_len, mac);
  if (rc != 0)
    return rc;
  int scan = scan_header(header, mac);
  if (scan == SCAN_MALFORMED)
    return CR_EINVAL;
  if (!within(now_s, timestamp_s, tolerance_s))
    return CR_EPERM;
  return scan == SCAN_MATCH ? 0 : CR_EPERM;
}
