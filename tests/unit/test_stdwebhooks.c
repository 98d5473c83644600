/* test_stdwebhooks.c: Standard Webhooks v1 signing: the published reference
 * vector, cross-checks against the openssl CLI on random keys and bodies,
 * secret parsing, and verify() accepting/rejecting. */
#include "testutil.h"

#include "util/error.h"
#include "events/stdwebhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* The Standard Webhooks / Svix reference libraries' test vector. */
#define REF_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define REF_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define REF_TS 1614265330
#define REF_BODY "{\"test\": 2432232314}"
#define REF_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void ref_key(unsigned char *key, size_t *keylen) {
  assert_int_equal(cr_swh_key_parse(REF_SECRET, key, keylen), 0);
}

static void test_reference_vector(void **state) {
  (void)state;
  unsigned char key[CR_SWH_KEY_MAX];
  size_t keylen = 0;
  ref_key(key, &keylen);
  assert_int_equal(keylen, 24);
  char sig[CR_SWH_SIG_MAX];
  assert_int_equal(cr_swh_sign(key, keylen, REF_ID, REF_TS, REF_BODY,
                               strlen(REF_BODY), sig, sizeof sig),
                   0);
  assert_string_equal(sig, REF_SIG);
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, REF_BODY,
                                 strlen(REF_BODY), REF_SIG, REF_TS, 300),
                   0);
  /* Several signatures, one of them valid, plus a future scheme. */
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, REF_BODY,
                                 strlen(REF_BODY),
                                 "v1,bm9wZQ== v1a,abc " REF_SIG, REF_TS, 0),
                   0);
}

static void test_key_parse(void **state) {
  (void)state;
  unsigned char a[CR_SWH_KEY_MAX], b[CR_SWH_KEY_MAX];
  size_t alen = 0, blen = 0;
  ref_key(a, &alen);
  /* Prefix optional. */
  assert_int_equal(cr_swh_key_parse(REF_SECRET + 6, b, &blen), 0);
  assert_int_equal(alen, blen);
  assert_memory_equal(a, b, alen);
  assert_int_equal(cr_swh_key_parse("whsec_AAEC", b, &blen), 0);
  assert_int_equal(blen, 3);
  assert_int_equal(b[0], 0);
  assert_int_equal(b[1], 1);
  assert_int_equal(b[2], 2);
  assert_int_equal(cr_swh_key_parse("whsec_AAE=", b, &blen), 0);
  assert_int_equal(blen, 2);
  const char *bad[] = {"whsec_",     "",           "whsec_AAE",
                       "whsec_A=AA", "whsec_AA*A", "whsec_AAEC ",
                       "whsec_====", "whsec_A==="};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(cr_swh_key_parse(bad[i], b, &blen), CR_EINVAL);
  /* Longest accepted key, then one byte too many. */
  unsigned char raw[CR_SWH_KEY_MAX + 1];
  assert_int_equal(RAND_bytes(raw, sizeof raw), 1);
  char sec[300] = "whsec_";
  EVP_EncodeBlock((unsigned char *)sec + 6, raw, CR_SWH_KEY_MAX);
  assert_int_equal(cr_swh_key_parse(sec, b, &blen), 0);
  assert_int_equal(blen, CR_SWH_KEY_MAX);
  assert_memory_equal(b, raw, CR_SWH_KEY_MAX);
  EVP_EncodeBlock((unsigned char *)sec + 6, raw, CR_SWH_KEY_MAX + 1);
  assert_int_equal(cr_swh_key_parse(sec, b, &blen), CR_EINVAL);
  assert_int_equal(cr_swh_key_parse(NULL, b, &blen), CR_EINVAL);
}

static void hex(const unsigned char *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", b[i]);
}

/* Signs content (written to a file, so any bytes work) with the openssl CLI
 * and returns "v1,<base64>" in out. */
static void openssl_sign(const char *dir, const unsigned char *key,
                         size_t keylen, const char *content, size_t len,
                         char *out, size_t outlen) {
  char path[512];
  snprintf(path, sizeof path, "%s/content", dir);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(content, 1, len, f), len);
  fclose(f);
  char hk[2 * CR_SWH_KEY_MAX + 1];
  hex(key, keylen, hk);
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "openssl dgst -sha256 -mac HMAC -macopt hexkey:%s -binary < '%s'"
           " | base64 -w0",
           hk, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  strcpy(out, "v1,");
  size_t n = fread(out + 3, 1, outlen - 4, p);
  out[3 + n] = '\0';
  assert_int_equal(pclose(p), 0);
  out[strcspn(out, "\r\n")] = '\0';
  assert_int_equal(strlen(out), 47);
}

static void test_against_openssl_cli(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("swh");
  for (int round = 0; round < 12; round++) {
    unsigned char key[CR_SWH_KEY_MAX], r[4];
    assert_int_equal(RAND_bytes(r, sizeof r), 1);
    size_t keylen = 1 + r[0] % CR_SWH_KEY_MAX;
    size_t body_len = (size_t)r[1] * 7 + r[2] % 13; /* 0..1797 */
    char *body = malloc(body_len + 1);
    assert_non_null(body);
    assert_int_equal(RAND_bytes(key, (int)keylen), 1);
    if (body_len > 0)
      assert_int_equal(RAND_bytes((unsigned char *)body, (int)body_len), 1);
    char msg_id[40];
    snprintf(msg_id, sizeof msg_id, "msg_%02x%02x%d", r[2], r[3], round);
    int64_t ts = 1700000000 + (int64_t)r[3] * 1000 + round;

    char content[2048 + 80];
    int hn =
        snprintf(content, sizeof content, "%s.%lld.", msg_id, (long long)ts);
    memcpy(content + hn, body, body_len);
    char want[CR_SWH_SIG_MAX], got[CR_SWH_SIG_MAX];
    openssl_sign(dir, key, keylen, content, (size_t)hn + body_len, want,
                 sizeof want);
    assert_int_equal(cr_swh_sign(key, keylen, msg_id, ts,
                                 body_len ? body : NULL, body_len, got,
                                 sizeof got),
                     0);
    assert_string_equal(got, want);
    assert_int_equal(cr_swh_verify(key, keylen, msg_id, ts,
                                   body_len ? body : NULL, body_len, want, ts,
                                   300),
                     0);
    free(body);
  }
  cr_test_rmtree(dir);
  free(dir);
}

static void test_verify_rejects(void **state) {
  (void)state;
  unsigned char key[CR_SWH_KEY_MAX];
  size_t keylen = 0;
  ref_key(key, &keylen);
  const char *body = REF_BODY;
  size_t bl = strlen(body);
  char sig[CR_SWH_SIG_MAX];
  assert_int_equal(
      cr_swh_sign(key, keylen, REF_ID, REF_TS, body, bl, sig, sizeof sig), 0);
  assert_int_equal(
      cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, sig, REF_TS, 300),
      0);
  /* Flipped body byte. */
  char body2[64];
  strcpy(body2, body);
  body2[3] ^= 1;
  assert_int_equal(
      cr_swh_verify(key, keylen, REF_ID, REF_TS, body2, bl, sig, REF_TS, 300),
      CR_EPERM);
  /* Flipped signature character (still valid base64). */
  char sig2[CR_SWH_SIG_MAX];
  strcpy(sig2, sig);
  sig2[5] = sig2[5] == 'A' ? 'B' : 'A';
  assert_int_equal(
      cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, sig2, REF_TS, 300),
      CR_EPERM);
  /* Wrong id, wrong timestamp, wrong key. */
  assert_int_equal(cr_swh_verify(key, keylen, "msg_other", REF_TS, body, bl,
                                 sig, REF_TS, 300),
                   CR_EPERM);
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS + 1, body, bl, sig,
                                 REF_TS, 300),
                   CR_EPERM);
  unsigned char key2[CR_SWH_KEY_MAX];
  memcpy(key2, key, keylen);
  key2[0] ^= 0x80;
  assert_int_equal(
      cr_swh_verify(key2, keylen, REF_ID, REF_TS, body, bl, sig, REF_TS, 300),
      CR_EPERM);
  /* Expired and future timestamps; tolerance 0 skips the check. */
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, sig,
                                 REF_TS + 301, 300),
                   CR_EPERM);
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, sig,
                                 REF_TS + 300, 300),
                   0);
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, sig,
                                 REF_TS - 301, 300),
                   CR_EPERM);
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, sig,
                                 REF_TS + 100000, 0),
                   0);
  assert_int_equal(
      cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, sig, INT64_MAX, 300),
      CR_EPERM);
  /* Malformed headers. */
  const char *bad[] = {"",    "   ",     "v1",          sig + 3,
                       "v1,", "v1,!!!!", "v1,bm9wZQ==", "v1,bm9wZQ== v2"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl,
                                   bad[i], REF_TS, 300),
                     CR_EINVAL);
  /* Only other schemes: a clean mismatch. */
  assert_int_equal(cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl,
                                 "v1a,abcd v2,xyz", REF_TS, 300),
                   CR_EPERM);
  assert_int_equal(
      cr_swh_verify(key, keylen, REF_ID, REF_TS, body, bl, NULL, REF_TS, 300),
      CR_EINVAL);
}

static void test_sign_args(void **state) {
  (void)state;
  unsigned char key[4] = {1, 2, 3, 4};
  char out[CR_SWH_SIG_MAX];
  assert_int_equal(cr_swh_sign(key, 0, "id", 1, "", 0, out, sizeof out),
                   CR_EINVAL);
  assert_int_equal(cr_swh_sign(key, 4, "", 1, "", 0, out, sizeof out),
                   CR_EINVAL);
  assert_int_equal(cr_swh_sign(key, 4, "id", 1, NULL, 3, out, sizeof out),
                   CR_EINVAL);
  assert_int_equal(
      cr_swh_sign(key, CR_SWH_KEY_MAX + 1, "id", 1, "", 0, out, sizeof out),
      CR_EINVAL);
  assert_int_equal(cr_swh_sign(key, 4, "id", 1, "", 0, out, 64), CR_ERANGE);
  /* Empty body and negative timestamps are signed like any other. */
  assert_int_equal(cr_swh_sign(key, 4, "id", -5, NULL, 0, out, sizeof out), 0);
  assert_int_equal(strncmp(out, "v1,", 3), 0);
  assert_int_equal(strlen(out), 47);
  assert_int_equal(cr_swh_verify(key, 4, "id", -5, NULL, 0, out, -5, 10), 0);
}

/* A signer signs message after message like cr_swh_sign: each starts over
 * with the key (the reference vector again after another message). */
static void test_signer(void **state) {
  (void)state;
  unsigned char key[CR_SWH_KEY_MAX];
  size_t keylen = 0;
  ref_key(key, &keylen);
  cr_swh_signer *s = NULL;
  assert_int_equal(cr_swh_signer_new(key, keylen, &s), 0);
  char sig[CR_SWH_SIG_MAX], want[CR_SWH_SIG_MAX];
  for (int i = 0; i < 3; i++) {
    char id[32], body[64];
    snprintf(id, sizeof id, "msg_%d", i);
    snprintf(body, sizeof body, "{\"n\":%d}", i);
    assert_int_equal(cr_swh_signer_sign(s, id, REF_TS + i, body, strlen(body),
                                        sig, sizeof sig),
                     0);
    assert_int_equal(cr_swh_sign(key, keylen, id, REF_TS + i, body,
                                 strlen(body), want, sizeof want),
                     0);
    assert_string_equal(sig, want);
    assert_int_equal(cr_swh_signer_sign(s, REF_ID, REF_TS, REF_BODY,
                                        strlen(REF_BODY), sig, sizeof sig),
                     0);
    assert_string_equal(sig, REF_SIG);
  }
  assert_int_equal(cr_swh_signer_sign(s, REF_ID, REF_TS, "", 0, sig, 10),
                   CR_ERANGE);
  assert_int_equal(cr_swh_signer_sign(s, "", REF_TS, "", 0, sig, sizeof sig),
                   CR_EINVAL);
  assert_int_equal(
      cr_swh_signer_sign(NULL, REF_ID, REF_TS, "", 0, sig, sizeof sig),
      CR_EINVAL);
  cr_swh_signer_free(s);
  cr_swh_signer_free(NULL);
  assert_int_equal(cr_swh_signer_new(key, 0, &s), CR_EINVAL);
  assert_int_equal(cr_swh_signer_new(NULL, 8, &s), CR_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference_vector),
      cmocka_unit_test(test_key_parse),
      cmocka_unit_test(test_against_openssl_cli),
      cmocka_unit_test(test_verify_rejects),
      cmocka_unit_test(test_sign_args),
      cmocka_unit_test(test_signer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
