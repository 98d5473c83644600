/* test_plugins_test.c: `connrun plugins test`, the conformance kit, through
 * the real binary: every bundled plugin passes, broken test plugins fail
 * with the check and reason that name what is wrong. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs `connrun plugins test so [extra...]`; returns the exit status and
 * the output in *out (caller frees). */
static int kit(const char *so, const char *opt, const char *val, char **out) {
  char *argv[] = {CR_CONNRUN_BIN, "plugins",   "test", (char *)so,
                  (char *)opt,    (char *)val, NULL};
  return cr_test_run(argv, NULL, out);
}

static void expect(const char *so, const char *opt, const char *val, int rc,
                   const char *line) {
  char *out = NULL;
  int got = kit(so, opt, val, &out);
  if (got != rc || strstr(out, line) == NULL)
    fail_msg("%s: exit %d (want %d), want '%s' in:\n%s", so, got, rc, line,
             out);
  free(out);
}

static void test_bundled_plugins_pass(void **state) {
  (void)state;
  expect(CR_PLUGIN_DIR "/example.so", NULL, NULL, 0, "PASS read");
  expect(CR_PLUGIN_DIR "/example.so", NULL, NULL, 0, "PASS cancel");
#if defined(__SANITIZE_ADDRESS__)
  expect(CR_PLUGIN_DIR "/example.so", NULL, NULL, 0, "SKIP memory");
#else
  expect(CR_PLUGIN_DIR "/example.so", NULL, NULL, 0, "PASS memory");
#endif
  /* sendgrid needs an API key: without one its calls are skipped. */
  expect(CR_PLUGIN_DIR "/sendgrid.so", NULL, NULL, 0,
         "SKIP health_check: no usable credentials");
  expect(CR_PLUGIN_DIR "/sendgrid.so", NULL, NULL, 0, "PASS imports");

  char *dir = cr_test_mkdtemp("kit-filedrop");
  free(cr_test_write_file(dir, "users.csv", "id,name\n1,ada\n2,bob\n"));
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "{\"directory\":\"%s\",\"streams\":[{\"name\":\"users\","
           "\"pattern\":\"users*.csv\",\"primary_key\":[\"id\"]}]}",
           dir);
  char *cfg_path = cr_test_write_file(dir, "config.json", cfg);
  expect(CR_PLUGIN_DIR "/filedrop.so", "--config", cfg_path, 0, "PASS resume");
  free(cfg_path);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_broken_plugins_fail(void **state) {
  (void)state;
  expect(CR_TEST_PLUGIN_DIR "/undeclared_stream.so", NULL, NULL, 1,
         "FAIL read: record on undeclared stream 'ghost'");
  expect(CR_TEST_PLUGIN_DIR "/socket_user.so", NULL, NULL, 1,
         "FAIL imports: imports connect, socket");
  expect(CR_TEST_PLUGIN_DIR "/socket_user.so", NULL, NULL, 1,
         "FAIL health_check: empty reason");
  expect(CR_TEST_PLUGIN_DIR "/wrong_magic.so", NULL, NULL, 1,
         "FAIL descriptor: wrong magic");
  expect(CR_TEST_PLUGIN_DIR "/bad_streams.so", NULL, NULL, 1,
         "FAIL descriptor: invalid streams_json");
  /* 64 KiB lost per read: the memory check sees it grow (it cannot under
   * AddressSanitizer, whose quarantine keeps freed memory resident). */
#if defined(__SANITIZE_ADDRESS__)
  /* (and LeakSanitizer would rightly report its leak at exit) */
  char *argv[] = {CR_CONNRUN_BIN, "plugins", "test",
                  CR_TEST_PLUGIN_DIR "/leaky.so", NULL};
  char *env[] = {"ASAN_OPTIONS=detect_leaks=0", NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, env, &out), 0);
  assert_non_null(strstr(out, "SKIP memory"));
  free(out);
#else
  expect(CR_TEST_PLUGIN_DIR "/leaky.so", NULL, NULL, 1, "FAIL memory");
#endif
}

static void test_inputs_and_usage(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("kit-inputs");
  char *bad = cr_test_write_file(dir, "creds.yaml", "api_key: 42\n");
  expect(CR_PLUGIN_DIR "/sendgrid.so", "--credentials", bad, 1,
         "FAIL credentials:");
  char *json = NULL;
  char *argv[] = {CR_CONNRUN_BIN, "plugins",
                  "test",         CR_PLUGIN_DIR "/example.so",
                  "--json",       NULL};
  assert_int_equal(cr_test_run(argv, NULL, &json), 0);
  assert_non_null(strstr(json, "\"passed\": true"));
  free(json);
  expect("/nonexistent/x.so", NULL, NULL, 3, "cannot read");
  expect(CR_PLUGIN_DIR "/example.so", "--credentials", "/nonexistent.yaml", 3,
         "nonexistent.yaml");
  expect(CR_PLUGIN_DIR "/example.so", "--bogus", NULL, 2,
         "unexpected argument");
  free(bad);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bundled_plugins_pass),
      cmocka_unit_test(test_broken_plugins_fail),
      cmocka_unit_test(test_inputs_and_usage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
