/* test_sdk_out_of_tree.c: the SDK is self-contained. A plugin source
 * (tests/integration/oot_plugin/hello.c) is compiled outside the build tree
 * against a copy of sdk/include alone, with no connrun library, then loaded
 * by the plugin host and health-checked; it exports exactly one symbol. */
#include "testutil.h"

#include "plugin/host_api.h"
#include "plugin/plugin_host.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct oot {
  char *tmp;
  char *so;
};

static int setup_build(void **state) {
  struct oot *o = calloc(1, sizeof *o);
  assert_non_null(o);
  o->tmp = cr_test_mkdtemp("oot-sdk");
  /* Outside the source and build trees: nothing there can leak in. */
  assert_true(strncmp(o->tmp, CR_BINARY_DIR, strlen(CR_BINARY_DIR)) != 0);
  assert_true(strncmp(o->tmp, CR_SOURCE_DIR, strlen(CR_SOURCE_DIR)) != 0);

  char *inc = cr_test_join(o->tmp, "include");
  cr_test_copy_tree(CR_SOURCE_DIR "/sdk/include", inc);
  char *src = cr_test_join(o->tmp, "hello.c");
  cr_test_copy_file(CR_SOURCE_DIR "/tests/integration/oot_plugin/hello.c", src);
  o->so = cr_test_join(o->tmp, "hello.so");

  size_t n = strlen(inc) + 3;
  char *iflag = malloc(n);
  assert_non_null(iflag);
  snprintf(iflag, n, "-I%s", inc);
  cr_test_build_plugin(src, o->so, iflag);
  free(iflag);
  free(src);
  free(inc);
  *state = o;
  return 0;
}

static int teardown_build(void **state) {
  struct oot *o = *state;
  cr_test_rmtree(o->tmp);
  free(o->tmp);
  free(o->so);
  free(o);
  return 0;
}

static int health(const struct cr_plugin_descriptor *d, const char *creds,
                  char *reason, size_t len) {
  const struct cr_host_api *api = cr_host_api_default();
  struct cr_plugin_params params = {.struct_size = sizeof params,
                                    .authorization_id = "auth-oot",
                                    .auth_method = "token",
                                    .credentials_json = creds};
  void *inst = NULL;
  char err[256] = "";
  assert_int_equal(d->create(api, &params, &inst, err, sizeof err), 0);
  assert_non_null(inst);
  memset(reason, 0, len);
  struct cr_plugin_health_result res = {
      .struct_size = sizeof res, .reason = reason, .reason_len = len};
  assert_int_equal(d->health_check(inst, NULL, &res), 0);
  d->destroy(inst);
  return res.status;
}

static void test_load_and_health_check(void **state) {
  struct oot *o = *state;
  cr_plugin_host *h = NULL;
  assert_int_equal(cr_plugin_host_new(NULL, &h), 0);
  char err[1024] = "";
  int rc = cr_plugin_host_load_file(h, o->so, err, sizeof err);
  if (rc != 0)
    fail_msg("hello.so refused: %s", err);
  const cr_plugin *p = cr_plugin_host_find(h, "hello");
  assert_non_null(p);
  const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
  assert_string_equal(d->version, "0.0.1");
  assert_true(cr_plugin_accepts_method(p, "token"));
  assert_non_null(cr_plugin_credentials_schema(p));
  char caps[32];
  assert_string_equal(cr_plugin_caps_string(p, caps, sizeof caps),
                      "health_check");

  char reason[64];
  assert_int_equal(health(d, "{\"token\":\"world\"}", reason, sizeof reason),
                   CR_PLUGIN_HEALTH_HEALTHY);
  assert_string_equal(reason, "hello world");
  assert_int_equal(health(d, "{\"token\":\"x\"}", reason, sizeof reason),
                   CR_PLUGIN_HEALTH_UNHEALTHY);
  assert_string_equal(reason, "hello stranger");
  cr_plugin_host_free(h);
}

/* Only connrun_plugin_entry is exported (besides linker-provided symbols). */
static void test_exports_one_symbol(void **state) {
  struct oot *o = *state;
  static const char *const standard[] = {"_init", "_fini",       "_edata",
                                         "_end",  "__bss_start", NULL};
  char *nm = cr_test_which("nm");
  if (nm == NULL)
    fail_msg("nm not found on PATH");
  char *argv[] = {nm, "-D", "--defined-only", o->so, NULL};
  char *out = NULL;
  int rc = cr_test_run(argv, NULL, &out);
  if (rc != 0)
    fail_msg("nm failed (%d): %s", rc, out);
  int entry = 0;
  char *save = NULL;
  for (char *line = strtok_r(out, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    const char *sym = strrchr(line, ' ');
    sym = sym ? sym + 1 : line;
    int ok = 0;
    for (size_t i = 0; standard[i] != NULL; i++)
      ok |= strcmp(sym, standard[i]) == 0;
    if (strcmp(sym, CR_PLUGIN_ENTRY_SYMBOL) == 0) {
      entry++;
      ok = 1;
    }
    if (!ok)
      fail_msg("unexpected exported symbol: %s", line);
  }
  assert_int_equal(entry, 1);
  free(out);
  free(nm);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_and_health_check),
      cmocka_unit_test(test_exports_one_symbol),
  };
  return cmocka_run_group_tests(tests, setup_build, teardown_build);
}
