/* test_api_fuzz.c: a bounded, deterministic run of the REST API's fuzz
 * target (tests/fuzz/fuzz_api.c) in every test build: seeds (every route,
 * bodies good and bad) and seeded random mutations of them. */
#include "testutil.h"

#include "../fuzz/fuzz_api.c"

#include <stdio.h>

#define MUTATIONS 20000

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

static size_t seeds(char out[][256], size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < cr__api_n_routes && n < max; i++) {
    char path[200];
    snprintf(path, sizeof path, "%s", cr__api_routes[i].pattern);
    char *b;
    while ((b = strchr(path, '{')) != NULL) {
      char *e = strchr(b, '}');
      memmove(b + 3, e + 1, strlen(e + 1) + 1);
      memcpy(b, "x-1", 3);
    }
    snprintf(out[n++], 256, "%c%s %s", 0, cr__api_routes[i].method, path);
  }
  static const char *const bodies[] = {
      "{\"name\":\"a\"}",
      "{\"a\":{\"b\":[1,2,{\"c\":null}]}}",
      "{\"a\":1,\"a\":2}",
      "[1,2]",
      "{\"x\":\"\\u00e9\\ud83d\\ude00\"}",
      "{\"x\":\"\xc3\x28\"}",
      "{",
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]",
      "{\"config\":{\"webhook_url\":\"http://127.0.0.1/\"},\"workflow\":"
      "\"webhook_system_events\"}"};
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0] && n < max; i++)
    snprintf(out[n++], 256, "%c%s", 1, bodies[i]);
  return n;
}

static void test_seeds_and_mutations(void **state) {
  (void)state;
  static char s[128][256];
  size_t n = seeds(s, 128);
  assert_true(n > cr__api_n_routes);
  uint8_t buf[300];
  for (size_t i = 0; i < n; i++) {
    size_t len = 1 + strlen(s[i] + 1);
    LLVMFuzzerTestOneInput((const uint8_t *)s[i], len);
  }
  for (int m = 0; m < MUTATIONS; m++) {
    const char *seed = s[next() % n];
    size_t len = 1 + strlen(seed + 1);
    memcpy(buf, seed, len);
    int edits = 1 + (int)(next() % 4);
    for (int e = 0; e < edits; e++) {
      uint32_t r = next();
      size_t at = 1 + r % (len > 1 ? len - 1 : 1);
      switch (r >> 29) {
      case 0: /* flip a byte */
        buf[at] ^= (uint8_t)(1u << (next() % 8));
        break;
      case 1: /* insert a structural byte */
        if (len < sizeof buf - 1) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = (uint8_t) "{}[]\",:/\\ "[next() % 11];
          len++;
        }
        break;
      case 2: /* truncate */
        len = at;
        break;
      default: /* random byte */
        buf[at] = (uint8_t)next();
      }
    }
    LLVMFuzzerTestOneInput(buf, len);
  }
}

static void test_router_known_answers(void **state) {
  (void)state;
  struct cr__api_req r;
  char allow[64];
  memset(&r, 0, sizeof r);
  r.method = "GET";
  int i = cr__api_match(&r, "/v1/works/abc/schedule", allow, sizeof allow);
  assert_true(i >= 0);
  assert_string_equal(cr__api_routes[i].op_id, "getWorkSchedule");
  assert_string_equal(r.params[0], "abc");
  r.method = "PUT";
  assert_int_equal(cr__api_match(&r, "/v1/works/abc", allow, sizeof allow), -1);
  assert_non_null(strstr(allow, "GET"));
  assert_non_null(strstr(allow, "PATCH"));
  r.method = "GET";
  assert_int_equal(cr__api_match(&r, "/v1/nope", allow, sizeof allow), -1);
  assert_string_equal(allow, "");
  assert_int_equal(
      cr__api_match(&r, "/v1/works//schedule", allow, sizeof allow), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_router_known_answers),
      cmocka_unit_test(test_seeds_and_mutations),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
