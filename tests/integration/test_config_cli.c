/* test_config_cli.c: `connrun config check` through the real binary: exit
 * codes 0/1/2/3, the output lines, --json, secrets never printed, refused
 * plugins as warnings. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SECRET "not-a-key-CLI-Distinctive-Secret-77aa"

static char *g_dir;

static int setup(void **state) {
  (void)state;
  g_dir = cr_test_mkdtemp("config-cli");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cr_test_rmtree(g_dir);
  free(g_dir);
  return 0;
}

/* Copies the cfgtest plugin into g_dir/plugins (mode 0755). */
static void install_cfgtest(void) {
  char dir[1024], dst[2048];
  snprintf(dir, sizeof dir, "%s/plugins", g_dir);
  mkdir(dir, 0755);
  snprintf(dst, sizeof dst, "%s/cfgtest.so", dir);
  FILE *in = fopen(CR_TEST_PLUGIN_DIR "/cfgtest.so", "rb");
  FILE *out = fopen(dst, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
  chmod(dst, 0755);
}

/* Runs connrun with args (NULL-terminated), stdout+stderr into *out. */
static int run(char **out, char *const env[], const char *a1, const char *a2,
               const char *a3, const char *a4, const char *a5) {
  char *argv[] = {CR_CONNRUN_BIN, (char *)a1, (char *)a2, (char *)a3,
                  (char *)a4,     (char *)a5, NULL};
  return cr_test_run(argv, env, out);
}

/* Runs connrun ... with stderr discarded (stdout only). */
static int run_stdout(char **out, const char *args) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", CR_CONNRUN_BIN, args);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  return cr_test_run(argv, NULL, out);
}

static char *write_config(const char *text) {
  return cr_test_write_file(g_dir, "main.yaml", text);
}

#define VALID                                                                  \
  "host:\n"                                                                    \
  "  plugin_dirs: [plugins]\n"                                                 \
  "authorizations:\n"                                                          \
  "  - id: a1\n"                                                               \
  "    provider: cfgtest\n"                                                    \
  "    method: api_key\n"                                                      \
  "    credentials: {api_key: SG.abcdefgh}\n"                                  \
  "works:\n"                                                                   \
  "  - id: w1\n"                                                               \
  "    provider: cfgtest\n"                                                    \
  "    authorization: a1\n"                                                    \
  "    schedule: {every: 1h}\n"                                                \
  "    config: {streams: [contacts]}\n"

static void test_valid_exit_0(void **state) {
  (void)state;
  install_cfgtest();
  char *path = write_config(VALID);
  char *out = NULL, want[8192];
  int rc = run(&out, NULL, "config", "check", path, NULL, NULL);
  snprintf(want, sizeof want,
           "%s: ok (1 authorization, 1 work, 0 subscriptions)\n", path);
  if (rc != 0)
    fprintf(stderr, "%s", out);
  assert_int_equal(rc, 0);
  assert_string_equal(out, want);
  free(out);
  free(path);
}

static void test_invalid_exit_1(void **state) {
  (void)state;
  install_cfgtest();
  char *path = write_config("host:\n"
                            "  plugin_dirs: [plugins]\n"
                            "authorizations:\n"
                            "  - id: a1\n"
                            "    provider: cfgtset\n"
                            "    method: api_key\n"
                            "works:\n"
                            "  - id: w1\n"
                            "    provider: cfgtest\n"
                            "    authorization: a1\n"
                            "    schedul: {every: 1h}\n"
                            "    config: {streams: [lists]}\n");
  char *out = NULL, want[8192];
  int rc = run(&out, NULL, "config", "check", path, NULL, NULL);
  assert_int_equal(rc, 1);
  /* Sorted by position, then the summary. */
  snprintf(want, sizeof want,
           "%s:5:15: error: unknown provider 'cfgtset' (did you mean "
           "'cfgtest'?); loaded providers: cfgtest\n"
           "%s:9:15: error: work 'w1' has provider 'cfgtest' but its "
           "authorization 'a1' is for provider 'cfgtset'\n"
           "%s:11:5: error: unknown key 'schedul' in work 'w1' (did you mean "
           "'schedule'?)\n"
           "%s: 3 errors, 0 warnings\n",
           path, path, path, path);
  assert_string_equal(out, want);
  free(out);
  free(path);
}

static void test_usage_exit_2(void **state) {
  (void)state;
  char *out = NULL;
  assert_int_equal(run(&out, NULL, "config", NULL, NULL, NULL, NULL), 2);
  free(out);
  assert_int_equal(run(&out, NULL, "config", "check", NULL, NULL, NULL), 2);
  assert_non_null(strstr(out, "missing FILE"));
  free(out);
  assert_int_equal(
      run(&out, NULL, "config", "check", "a.yaml", "--bogus", NULL), 2);
  assert_non_null(strstr(out, "unknown option '--bogus'"));
  free(out);
  assert_int_equal(run(&out, NULL, "config", "check", "a.yaml", "b.yaml", NULL),
                   2);
  free(out);
  assert_int_equal(
      run(&out, NULL, "config", "check", "a.yaml", "--plugin-dir", NULL), 2);
  free(out);
  assert_int_equal(run(&out, NULL, "config", "lint", "a.yaml", NULL, NULL), 2);
  free(out);
  assert_int_equal(run(&out, NULL, "config", "check", "--help", NULL, NULL), 0);
  assert_non_null(strstr(out, "usage: connrun config check FILE"));
  assert_non_null(strstr(out, "examples:"));
  free(out);
}

static void test_unreadable_exit_3(void **state) {
  (void)state;
  char path[1024], want[8192];
  char *out = NULL;
  snprintf(path, sizeof path, "%s/nope.yaml", g_dir);
  assert_int_equal(run(&out, NULL, "config", "check", path, NULL, NULL), 3);
  snprintf(want, sizeof want,
           "%s: error: cannot read %s: No such file or directory\n"
           "%s: 1 error, 0 warnings\n",
           path, path, path);
  assert_string_equal(out, want);
  free(out);
}

static void test_json(void **state) {
  (void)state;
  install_cfgtest();
  char *path = write_config("host:\n  plugin_dirs: [plugins]\n"
                            "works:\n  - id: w\n");
  char *out = NULL, args[4096];
  snprintf(args, sizeof args, "config check '%s' --json", path);
  assert_int_equal(run_stdout(&out, args), 1);
  json_error_t jerr;
  json_t *j = json_loads(out, 0, &jerr);
  if (j == NULL)
    fail_msg("not JSON: %s (%s)", jerr.text, out);
  assert_true(json_is_false(json_object_get(j, "valid")));
  json_t *diags = json_object_get(j, "diagnostics");
  assert_int_equal(json_array_size(diags), 2);
  json_t *d0 = json_array_get(diags, 0);
  assert_string_equal(json_string_value(json_object_get(d0, "file")), path);
  assert_int_equal(json_integer_value(json_object_get(d0, "line")), 4);
  assert_int_equal(json_integer_value(json_object_get(d0, "column")), 5);
  assert_string_equal(json_string_value(json_object_get(d0, "severity")),
                      "error");
  const char *m0 = json_string_value(json_object_get(d0, "message"));
  const char *m1 =
      json_string_value(json_object_get(json_array_get(diags, 1), "message"));
  assert_string_equal(m0, "work 'w' is missing required field 'provider'");
  assert_string_equal(m1, "work 'w' is missing required field 'authorization'");
  json_decref(j);
  free(out);
  free(path);

  path = write_config(VALID);
  snprintf(args, sizeof args, "config check '%s' --json", path);
  assert_int_equal(run_stdout(&out, args), 0);
  j = json_loads(out, 0, &jerr);
  assert_non_null(j);
  assert_true(json_is_true(json_object_get(j, "valid")));
  assert_int_equal(json_array_size(json_object_get(j, "diagnostics")), 0);
  json_decref(j);
  free(out);
  free(path);
}

static void test_secrets_never_printed(void **state) {
  (void)state;
  install_cfgtest();
  char *path = write_config(
      "host:\n  plugin_dirs: [plugins]\n"
      "  api_tokens: [{name: ci, token: {v: \"${CR_CLI_SECRET}\"}}]\n"
      "authorizations:\n"
      "  - id: a1\n"
      "    provider: cfgtest\n"
      "    method: api_key\n"
      "    credentials: {api_key: \"${CR_CLI_SECRET}\"}\n"
      "subscriptions:\n"
      "  - id: s\n"
      "    workflow: webhook_system_events\n"
      "    config:\n"
      "      webhook_url: \"${CR_CLI_SECRET}\"\n"
      "      secret: \"${CR_CLI_SECRET}\"\n");
  char *env[] = {"CR_CLI_SECRET=" SECRET, NULL};
  char *out = NULL;
  assert_int_equal(run(&out, env, "config", "check", path, NULL, NULL), 1);
  /* The credentials fail the plugin's pattern and the secret fails whsec_;
   * neither message shows it. */
  assert_non_null(strstr(out, "credentials of authorization 'a1'"));
  assert_non_null(strstr(out, "must start with 'whsec_'"));
  assert_null(strstr(out, SECRET));
  assert_null(strstr(out, "CLI-Distinctive"));
  free(out);
  char args[4096];
  snprintf(args, sizeof args, "config check '%s' --json", path);
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "CR_CLI_SECRET='%s' '%s' %s", SECRET,
           CR_CONNRUN_BIN, args);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  assert_int_equal(cr_test_run(argv, NULL, &out), 1);
  assert_null(strstr(out, "CLI-Distinctive"));
  free(out);
  free(path);
}

static void test_refused_plugin_is_a_warning(void **state) {
  (void)state;
  install_cfgtest();
  char *junk = cr_test_write_file(g_dir, "plugins/junk.so", "not an ELF\n");
  chmod(junk, 0755);
  char *path = write_config(VALID);
  char *out = NULL, want[8192];
  assert_int_equal(run(&out, NULL, "config", "check", path, NULL, NULL), 0);
  snprintf(want, sizeof want, "%s: warning: plugin not loaded: ", junk);
  assert_non_null(strstr(out, want));
  snprintf(want, sizeof want,
           "%s: ok (1 authorization, 1 work, 0 subscriptions)\n", path);
  assert_non_null(strstr(out, want));
  free(out);
  free(path);
  free(junk);
}

static void test_plugin_dir_option(void **state) {
  (void)state;
  install_cfgtest();
  /* No plugin_dirs in the file: --plugin-dir provides the provider. */
  char *path = write_config("authorizations:\n"
                            "  - {id: a, provider: cfgtest, method: api_key, "
                            "credentials: {api_key: SG.abcdefgh}}\n");
  char *out = NULL, dir[4096];
  snprintf(dir, sizeof dir, "%s/plugins", g_dir);
  assert_int_equal(run(&out, NULL, "config", "check", path, NULL, NULL), 1);
  assert_non_null(strstr(out, "loaded providers: none"));
  free(out);
  assert_int_equal(
      run(&out, NULL, "config", "check", path, "--plugin-dir", dir), 0);
  free(out);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_valid_exit_0, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_exit_1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_usage_exit_2, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unreadable_exit_3, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_secrets_never_printed, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refused_plugin_is_a_warning, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_plugin_dir_option, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
