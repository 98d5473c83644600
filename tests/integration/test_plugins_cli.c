/* test_plugins_cli.c: `connrun plugins list|inspect` and the top-level
 * help/version, through the real binary. */
#include "testutil.h"

#include <connrun/plugin.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_list_table_and_json(void **state) {
  (void)state;
  char *argv[] = {CR_CONNRUN_BIN, "plugins",     "list",
                  "--plugin-dir", CR_PLUGIN_DIR, NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "NAME"));
  assert_non_null(strstr(out, "sendgrid"));
  assert_non_null(strstr(out, "health_check,read"));
  free(out);

  char *jargv[] = {CR_CONNRUN_BIN, "plugins",     "list", "--json",
                   "--plugin-dir", CR_PLUGIN_DIR, NULL};
  assert_int_equal(cr_test_run(jargv, NULL, &out), 0);
  json_error_t e;
  json_t *arr = json_loads(out, 0, &e);
  assert_non_null(arr);
  int found = 0;
  size_t i;
  json_t *p;
  json_array_foreach(arr, i, p) {
    if (strcmp(json_string_value(json_object_get(p, "name")), "sendgrid") ==
        0) {
      found = 1;
      char abi[16];
      snprintf(abi, sizeof abi, "%d.%d", CR_PLUGIN_ABI_MAJOR,
               CR_PLUGIN_ABI_MINOR);
      assert_string_equal(json_string_value(json_object_get(p, "abi")), abi);
      assert_string_equal(json_string_value(json_array_get(
                              json_object_get(p, "auth_methods"), 0)),
                          "api_key");
    }
  }
  assert_true(found);
  json_decref(arr);
  free(out);
}

static void test_list_reports_refused_plugins(void **state) {
  (void)state;
  char *argv[] = {CR_CONNRUN_BIN, "plugins",          "list",
                  "--plugin-dir", CR_TEST_PLUGIN_DIR, NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 1);
  assert_non_null(strstr(out, "wrong_magic.so: wrong magic"));
  assert_non_null(
      strstr(out, "REFUSED  " CR_TEST_PLUGIN_DIR "/wrong_magic.so"));
  assert_non_null(strstr(out, "beta"));
  free(out);
  /* --json lists them too, with "refused": true and the reason. */
  char *json[] = {"/bin/sh", "-c",
                  CR_CONNRUN_BIN
                  " plugins list --json --plugin-dir " CR_TEST_PLUGIN_DIR
                  " 2>/dev/null",
                  NULL};
  assert_int_equal(cr_test_run(json, NULL, &out), 1);
  json_t *arr = json_loads(out, 0, NULL);
  assert_non_null(arr);
  int found = 0;
  size_t i;
  json_t *p;
  json_array_foreach(arr, i, p) {
    const char *path = json_string_value(json_object_get(p, "path"));
    if (path && strstr(path, "/wrong_magic.so")) {
      assert_true(json_is_true(json_object_get(p, "refused")));
      assert_non_null(strstr(json_string_value(json_object_get(p, "reason")),
                             "wrong magic"));
      found = 1;
    }
  }
  assert_true(found);
  json_decref(arr);
  free(out);
  /* inspect of a refused plugin shows why, and exits 1. */
  char *insp[] = {CR_CONNRUN_BIN, "plugins",          "inspect", "wrong_magic",
                  "--plugin-dir", CR_TEST_PLUGIN_DIR, NULL};
  assert_int_equal(cr_test_run(insp, NULL, &out), 1);
  assert_non_null(strstr(out, "refused:       wrong magic"));
  free(out);
}

static void test_inspect(void **state) {
  (void)state;
  char *argv[] = {CR_CONNRUN_BIN, "plugins",     "inspect", "sendgrid",
                  "--plugin-dir", CR_PLUGIN_DIR, NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "credentials schema:"));
  assert_non_null(strstr(out, "\"api_key\""));
  free(out);
  char *missing[] = {CR_CONNRUN_BIN, "plugins",     "inspect", "nope",
                     "--plugin-dir", CR_PLUGIN_DIR, NULL};
  assert_int_equal(cr_test_run(missing, NULL, &out), 1);
  assert_non_null(strstr(out, "no plugin provides 'nope'"));
  free(out);
  char *usage[] = {CR_CONNRUN_BIN, "plugins", "inspect", NULL};
  assert_int_equal(cr_test_run(usage, NULL, NULL), 2);
  char *nodir[] = {CR_CONNRUN_BIN,         "plugins", "list", "--plugin-dir",
                   "/nonexistent-connrun", NULL};
  assert_int_equal(cr_test_run(nodir, NULL, NULL), 3);
}

static void test_help_and_version(void **state) {
  (void)state;
  const char *cmds[] = {"serve", "config", "plugins"};
  for (size_t i = 0; i < 3; i++) {
    char *argv[] = {CR_CONNRUN_BIN, "help", (char *)cmds[i], NULL};
    char *out = NULL;
    assert_int_equal(cr_test_run(argv, NULL, &out), 0);
    assert_non_null(strstr(out, "usage: connrun"));
    assert_non_null(strstr(out, "examples:"));
    free(out);
  }
  char *v[] = {CR_CONNRUN_BIN, "--version", NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(v, NULL, &out), 0);
  char abi[32];
  snprintf(abi, sizeof abi, "plugin ABI %d.%d", CR_PLUGIN_ABI_MAJOR,
           CR_PLUGIN_ABI_MINOR);
  assert_non_null(strstr(out, abi));
  free(out);
  char *bad[] = {CR_CONNRUN_BIN, "frobnicate", NULL};
  assert_int_equal(cr_test_run(bad, NULL, NULL), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_list_table_and_json),
      cmocka_unit_test(test_list_reports_refused_plugins),
      cmocka_unit_test(test_inspect),
      cmocka_unit_test(test_help_and_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
