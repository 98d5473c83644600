/* test_seal.c: secrets at rest (core/util/seal.c): the key file (created
 * 0600, refused when readable by others or of the wrong size), round trips,
 * and refusals of tampered blobs and of another key. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/seal.h"

static int contains(const unsigned char *b, size_t n, const char *s) {
  size_t k = strlen(s);
  for (size_t i = 0; i + k <= n; i++)
    if (memcmp(b + i, s, k) == 0)
      return 1;
  return 0;
}

static void test_key_created_0600_and_reused(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("seal");
  char path[4096], err[256];
  snprintf(path, sizeof path, "%s/secret.key", dir);
  struct cr_seal_key a, b;
  assert_int_equal(cr_seal_key_load(path, &a, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, CR_SEAL_KEY_BYTES);
  assert_int_equal(cr_seal_key_load(path, &b, err, sizeof err), 0);
  assert_memory_equal(a.key, b.key, CR_SEAL_KEY_BYTES);
  assert_string_equal(a.id, b.id);
  chmod(path, 0644);
  assert_int_equal(cr_seal_key_load(path, &b, err, sizeof err), CR_EPERM);
  assert_non_null(strstr(err, "chmod 600"));
  free(cr_test_write_file(dir, "short.key", "abc"));
  snprintf(path, sizeof path, "%s/short.key", dir);
  chmod(path, 0600);
  assert_int_equal(cr_seal_key_load(path, &b, err, sizeof err), CR_EINVAL);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_round_trip_and_refusals(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("seal");
  char p1[4096], p2[4096];
  snprintf(p1, sizeof p1, "%s/a.key", dir);
  snprintf(p2, sizeof p2, "%s/b.key", dir);
  struct cr_seal_key a, b;
  assert_int_equal(cr_seal_key_load(p1, &a, NULL, 0), 0);
  assert_int_equal(cr_seal_key_load(p2, &b, NULL, 0), 0);
  const char *plain = "{\"api_key\":\"SG.very-secret\"}";
  unsigned char *blob = NULL, *blob2 = NULL;
  size_t n = 0, n2 = 0;
  assert_int_equal(cr_seal(&a, plain, strlen(plain), &blob, &n), 0);
  assert_int_equal(n, strlen(plain) + CR_SEAL_OVERHEAD);
  assert_false(contains(blob, n, "very-secret"));
  assert_int_equal(cr_seal(&a, plain, strlen(plain), &blob2, &n2), 0);
  assert_memory_not_equal(blob, blob2, n); /* a fresh nonce each time */
  char *out = NULL;
  size_t m = 0;
  assert_int_equal(cr_unseal(&a, blob, n, &out, &m), 0);
  assert_int_equal(m, strlen(plain));
  assert_string_equal(out, plain);
  cr__free(out);
  assert_int_equal(cr_unseal(&b, blob, n, &out, &m), CR_EINVAL);
  assert_null(out);
  blob[n / 2] ^= 1;
  assert_int_equal(cr_unseal(&a, blob, n, &out, &m), CR_EINVAL);
  assert_int_equal(cr_unseal(&a, blob, 5, &out, &m), CR_EINVAL);
  cr__free(blob);
  cr__free(blob2);
  cr_seal_key_wipe(&a);
  cr_seal_key_wipe(&b);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_created_0600_and_reused),
      cmocka_unit_test(test_round_trip_and_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
