/* test_sub_filter.c: subscription event filters: the product documents'
 * examples (several types, a single type "failed", sources with ids, sources
 * with [] for every work), canonical JSON (sorted, de-duplicated, round
 * trip), rejected JSON, and allocation failures. */
#include "testutil.h"

#include "util/alloc.h"
#include "config/config.h"
#include "util/error.h"
#include "events/sub_filter.h"

#include <stdlib.h>
#include <string.h>

/* A filter from a config with verbs and sources (JSON text or NULL). */
static cr_sub_filter *from_config(const char *const *verbs, size_t n,
                                  const char *sources) {
  struct cr_config_subscription c = {0};
  c.id = "s";
  c.event_types = (const char **)verbs;
  c.n_event_types = n;
  json_t *src = sources != NULL ? json_loads(sources, 0, NULL) : NULL;
  if (sources != NULL)
    assert_non_null(src);
  c.sources = src;
  cr_sub_filter *f = NULL;
  assert_int_equal(cr_sub_filter_from_config(&c, &f), 0);
  assert_non_null(f);
  json_decref(src);
  return f;
}

static int m(const cr_sub_filter *f, const char *type, const char *id,
             const char *verb) {
  return cr_sub_filter_match(f, type, id, verb);
}

static void test_multiple_types(void **state) {
  (void)state;
  const char *verbs[] = {"created", "failed", "synccomplete"};
  cr_sub_filter *f = from_config(verbs, 3, NULL);
  assert_true(m(f, "work", "w1", "created"));
  assert_true(m(f, "work", "w2", "failed"));
  assert_true(m(f, "auth", "a1", "synccomplete"));
  assert_false(m(f, "work", "w1", "updated"));
  assert_false(m(f, "work", "w1", "failedx"));
  assert_false(m(f, "work", "w1", ""));
  cr_sub_filter_free(f);
}

static void test_single_type_failed(void **state) {
  (void)state;
  const char *verbs[] = {"failed"};
  cr_sub_filter *f = from_config(verbs, 1, NULL);
  assert_true(m(f, "work", "nightly", "failed"));
  assert_true(m(f, "auth", "stripe-prod", "failed"));
  assert_false(m(f, "work", "nightly", "completed"));
  assert_false(m(f, "work", "nightly", "unhealthy"));
  cr_sub_filter_free(f);
}

static void test_sources_with_ids(void **state) {
  (void)state;
  const char *verbs[] = {"failed", "unhealthy"};
  cr_sub_filter *f =
      from_config(verbs, 2, "{\"work\":[\"w1\",\"w2\"],\"auth\":[]}");
  assert_true(m(f, "work", "w1", "failed"));
  assert_true(m(f, "work", "w2", "failed"));
  assert_false(m(f, "work", "w3", "failed"));
  assert_false(m(f, "work", "w1", "completed"));
  assert_true(m(f, "auth", "anything", "unhealthy")); /* [] = every auth */
  assert_false(m(f, "user", "w1", "failed"));         /* type not listed */
  cr_sub_filter_free(f);
}

static void test_sources_all_works(void **state) {
  (void)state;
  cr_sub_filter *f = from_config(NULL, 0, "{\"work\":[]}");
  assert_true(m(f, "work", "w1", "created"));
  assert_true(m(f, "work", "other", "deleted"));
  assert_false(m(f, "auth", "a1", "created"));
  cr_sub_filter_free(f);
  /* No verbs and no sources: everything. */
  f = from_config(NULL, 0, NULL);
  assert_true(m(f, "auth", "a1", "healthy"));
  assert_true(m(f, "work", "w9", "synced"));
  assert_false(m(f, NULL, "w9", "synced"));
  cr_sub_filter_free(f);
  /* An empty sources object: nothing. */
  f = from_config(NULL, 0, "{}");
  assert_false(m(f, "work", "w1", "created"));
  cr_sub_filter_free(f);
}

static void test_canonical_json(void **state) {
  (void)state;
  const char *verbs[] = {"failed", "created", "failed"};
  cr_sub_filter *f =
      from_config(verbs, 3, "{\"work\":[\"w2\",\"w1\",\"w2\"],\"auth\":[]}");
  char *j = cr_sub_filter_to_json(f);
  assert_non_null(j);
  assert_string_equal(j, "{\"sources\":{\"auth\":[],\"work\":[\"w1\",\"w2\"]},"
                         "\"verbs\":[\"created\",\"failed\"]}");
  cr_sub_filter *g = NULL;
  assert_int_equal(cr_sub_filter_from_json(j, &g), 0);
  char *j2 = cr_sub_filter_to_json(g);
  assert_string_equal(j, j2);
  assert_true(m(g, "work", "w1", "created"));
  assert_false(m(g, "work", "w3", "created"));
  cr__free(j2);
  cr_sub_filter_free(g);
  cr__free(j);
  cr_sub_filter_free(f);

  f = from_config(NULL, 0, NULL);
  j = cr_sub_filter_to_json(f);
  assert_string_equal(j, "{\"sources\":null,\"verbs\":[]}");
  cr__free(j);
  cr_sub_filter_free(f);

  assert_int_equal(cr_sub_filter_from_json("{}", &g), 0);
  assert_true(m(g, "work", "x", "y"));
  cr_sub_filter_free(g);
}

static void test_bad_json(void **state) {
  (void)state;
  const char *bad[] = {
      "",
      "[]",
      "not json",
      "{\"verbs\":\"failed\"}",
      "{\"verbs\":[1]}",
      "{\"sources\":[]}",
      "{\"sources\":{\"work\":\"w1\"}}",
      "{\"sources\":{\"work\":[null]}}",
      "{\"verbs\":[],\"extra\":1}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_sub_filter *f = (cr_sub_filter *)1;
    assert_int_equal(cr_sub_filter_from_json(bad[i], &f), CR_EINVAL);
    assert_null(f);
  }
  assert_int_equal(cr_sub_filter_from_json(NULL, NULL), CR_EINVAL);
  assert_int_equal(cr_sub_filter_from_config(NULL, NULL), CR_EINVAL);
  assert_null(cr_sub_filter_to_json(NULL));
  assert_false(cr_sub_filter_match(NULL, "work", "w", "failed"));
  cr_sub_filter_free(NULL);
}

static void test_allocation_failures(void **state) {
  (void)state;
  cr_test_alloc_install();
  const char *verbs[] = {"failed", "created"};
  json_t *src = json_loads("{\"work\":[\"w1\",\"w2\"],\"auth\":[]}", 0, NULL);
  struct cr_config_subscription c = {0};
  c.event_types = verbs;
  c.n_event_types = 2;
  c.sources = src;
  int ok = 0;
  for (long n = 0; n < 200 && !ok; n++) {
    cr_test_alloc_fail_after(n);
    cr_sub_filter *f = NULL;
    int rc = cr_sub_filter_from_config(&c, &f);
    char *j = rc == 0 ? cr_sub_filter_to_json(f) : NULL;
    cr_sub_filter *g = NULL;
    int rc2 = j != NULL ? cr_sub_filter_from_json(j, &g) : CR_ENOMEM;
    cr_test_alloc_fail_after(-1);
    if (rc != 0) {
      assert_int_equal(rc, CR_ENOMEM);
      assert_null(f);
    }
    if (j != NULL && rc2 != 0)
      assert_int_equal(rc2, CR_ENOMEM);
    ok = rc == 0 && j != NULL && rc2 == 0;
    if (ok)
      assert_true(m(g, "work", "w2", "failed"));
    cr_sub_filter_free(g);
    cr__free(j);
    cr_sub_filter_free(f);
  }
  assert_true(ok);
  json_decref(src);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_multiple_types),
      cmocka_unit_test(test_single_type_failed),
      cmocka_unit_test(test_sources_with_ids),
      cmocka_unit_test(test_sources_all_works),
      cmocka_unit_test(test_canonical_json),
      cmocka_unit_test(test_bad_json),
      cmocka_unit_test(test_allocation_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
