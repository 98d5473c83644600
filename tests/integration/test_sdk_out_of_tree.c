/* test_sdk_out_of_tree.c: the SDK is self-contained. A plugin source
 * (tests/integration/oot_plugin/hello.c) is compiled outside the build tree
 * against a copy of sdk/include alone, with no connrun library, then loaded
 * by the plugin host and health-checked; it exports exactly one symbol. */
#include "testutil.h"

#include "util/error.h"
#include "plugin/host_api.h"
#include "plugin/plugin_host.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static void copy_file(const char *src, const char *dst) {
  FILE *in = fopen(src, "rb");
  if (in == NULL)
    fail_msg("cannot open %s", src);
  FILE *out = fopen(dst, "wb");
  assert_non_null(out);
  char buf[8192];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, in)) > 0)
    assert_int_equal(fwrite(buf, 1, got, out), got);
  fclose(in);
  fclose(out);
}

/* Copies the tree src (directories and regular files) into dst. */
static void copy_tree(const char *src, const char *dst) {
  assert_int_equal(mkdir(dst, 0755), 0);
  DIR *d = opendir(src);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    char *s = join(src, de->d_name);
    char *t = join(dst, de->d_name);
    struct stat st;
    assert_int_equal(stat(s, &st), 0);
    if (S_ISDIR(st.st_mode))
      copy_tree(s, t);
    else if (S_ISREG(st.st_mode))
      copy_file(s, t);
    free(s);
    free(t);
  }
  closedir(d);
}

/* The first executable `name` on $PATH, or NULL. Caller frees. */
static char *which(const char *name) {
  const char *path = getenv("PATH");
  char *copy = strdup(path ? path : "/usr/bin:/bin");
  char *save = NULL;
  char *found = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir && !found;
       dir = strtok_r(NULL, ":", &save)) {
    char *cand = join(dir, name);
    if (access(cand, X_OK) == 0)
      found = cand;
    else
      free(cand);
  }
  free(copy);
  return found;
}

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

  char *inc = join(o->tmp, "include");
  copy_tree(CR_SOURCE_DIR "/sdk/include", inc);
  char *src = join(o->tmp, "hello.c");
  copy_file(CR_SOURCE_DIR "/tests/integration/oot_plugin/hello.c", src);
  o->so = join(o->tmp, "hello.so");

  size_t n = strlen(inc) + 3;
  char *iflag = malloc(n);
  assert_non_null(iflag);
  snprintf(iflag, n, "-I%s", inc);
  char *argv[] = {CR_C_COMPILER,
                  "-std=c11",
                  "-Wall",
                  "-Wextra",
                  "-Werror",
                  "-fPIC",
                  "-shared",
                  "-fvisibility=hidden",
                  "-Wl,--no-undefined",
                  iflag,
                  "-o",
                  o->so,
                  src,
                  NULL};
  char *out = NULL;
  int rc = cr_test_run(argv, NULL, &out);
  if (rc != 0)
    fail_msg("compiling hello.c failed (%d):\n%s", rc, out);
  free(out);
  /* The .so mode follows the umask; the host refuses group/other-writable
   * files, so make it explicit. */
  assert_int_equal(chmod(o->so, 0755), 0);
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
  char *nm = which("nm");
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
