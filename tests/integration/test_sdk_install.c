/* test_sdk_install.c: `cmake --install` of this build tree into a temporary
 * prefix gives a working SDK. A plugin (oot_plugin/hello.c) is built outside
 * the source and build trees with `pkg-config --cflags connrun-plugin` alone
 * and -Wl,--no-undefined, then loaded by the installed connrun; the
 * installed connrun finds the installed plugins and passes the installed
 * default configuration without being told where the plugins are. */
#include "testutil.h"

#include <dirent.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct inst {
  char *tmp;       /* everything below lives here */
  char *prefix;    /* tmp/prefix: the install prefix */
  char *connrun;   /* prefix/bin/connrun */
  char *pc_env;    /* PKG_CONFIG_PATH=prefix/share/pkgconfig */
  char *pkgconfig; /* pkg-config on $PATH */
};

static char *prefixed(const struct inst *in, const char *rel) {
  return cr_test_join(in->prefix, rel);
}

static int setup_install(void **state) {
  struct inst *in = calloc(1, sizeof *in);
  assert_non_null(in);
  in->tmp = cr_test_mkdtemp("sdk-install");
  /* Outside the source and build trees: nothing there can leak in. */
  assert_true(strncmp(in->tmp, CR_BINARY_DIR, strlen(CR_BINARY_DIR)) != 0);
  assert_true(strncmp(in->tmp, CR_SOURCE_DIR, strlen(CR_SOURCE_DIR)) != 0);
  in->prefix = cr_test_join(in->tmp, "prefix");
  char *argv[] = {CR_CMAKE_COMMAND, "--install", CR_BINARY_DIR,
                  "--prefix",       in->prefix,  NULL};
  char *out = NULL;
  int rc = cr_test_run(argv, NULL, &out);
  if (rc != 0)
    fail_msg("cmake --install failed (%d):\n%s", rc, out);
  free(out);
  in->connrun = prefixed(in, "bin/connrun");
  char *pcdir = prefixed(in, "share/pkgconfig");
  size_t n = strlen(pcdir) + sizeof "PKG_CONFIG_PATH=";
  in->pc_env = malloc(n);
  assert_non_null(in->pc_env);
  snprintf(in->pc_env, n, "PKG_CONFIG_PATH=%s", pcdir);
  free(pcdir);
  in->pkgconfig = cr_test_which("pkg-config");
  assert_non_null(in->pkgconfig);
  *state = in;
  return 0;
}

static int teardown_install(void **state) {
  struct inst *in = *state;
  cr_test_rmtree(in->tmp);
  free(in->tmp);
  free(in->prefix);
  free(in->connrun);
  free(in->pc_env);
  free(in->pkgconfig);
  free(in);
  return 0;
}

static int exists(const struct inst *in, const char *rel) {
  char *p = prefixed(in, rel);
  struct stat st;
  int ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
  free(p);
  return ok;
}

static void test_installed_files(void **state) {
  struct inst *in = *state;
  static const char *const files[] = {"bin/connrun",
                                      "lib/connrun/plugins/example.so",
                                      "lib/connrun/plugins/filedrop.so",
                                      "lib/connrun/plugins/sendgrid.so",
                                      "include/connrun/plugin.h",
                                      "include/connrun/plugin_util.h",
                                      "share/pkgconfig/connrun-plugin.pc",
                                      "share/man/man1/connrun.1",
                                      "share/doc/connrun/connrun.service",
                                      "etc/connrun/connrun.yaml",
                                      NULL};
  for (size_t i = 0; files[i] != NULL; i++)
    if (!exists(in, files[i]))
      fail_msg("not installed: %s", files[i]);
  /* Test plugins stay in the build tree. */
  assert_false(exists(in, "lib/connrun/plugins/good_alpha.so"));
  assert_false(exists(in, "lib/connrun/plugins/wrong_magic.so"));
  /* Templates carry the install prefix. */
  char *unit = prefixed(in, "share/doc/connrun/connrun.service");
  char *text = cr_test_read_file(unit);
  assert_non_null(strstr(text, in->connrun));
  assert_null(strstr(text, "@CR_"));
  free(text);
  free(unit);
}

/* `pkg-config --cflags connrun-plugin` against the prefix; caller frees. */
static char *sdk_cflags(const struct inst *in) {
  char *argv[] = {in->pkgconfig, "--cflags", "connrun-plugin", NULL};
  char *env[] = {in->pc_env, NULL};
  char *out = NULL;
  int rc = cr_test_run(argv, env, &out);
  if (rc != 0)
    fail_msg("pkg-config failed (%d): %s", rc, out);
  char *want = prefixed(in, "include");
  assert_non_null(strstr(out, want));
  free(want);
  return out;
}

/* Runs the installed `connrun plugins inspect NAME --plugin-dir DIR --json`
 * and returns the parsed object (caller decrefs). */
static json_t *inspect(const struct inst *in, const char *name,
                       const char *dir) {
  char *argv[] = {in->connrun,    "plugins",   "inspect", (char *)name,
                  "--plugin-dir", (char *)dir, "--json",  NULL};
  char *out = NULL;
  int rc = cr_test_run(argv, NULL, &out);
  if (rc != 0)
    fail_msg("plugins inspect %s failed (%d):\n%s", name, rc, out);
  json_t *o = json_loads(out, 0, NULL);
  if (o == NULL)
    fail_msg("not JSON:\n%s", out);
  free(out);
  return o;
}

static void test_build_plugin_with_pkg_config(void **state) {
  struct inst *in = *state;
  char *cflags = sdk_cflags(in);
  char *dir = cr_test_join(in->tmp, "hello-plugin");
  assert_int_equal(mkdir(dir, 0755), 0);
  char *src = cr_test_join(dir, "hello.c");
  cr_test_copy_file(CR_SOURCE_DIR "/tests/integration/oot_plugin/hello.c", src);
  char *so = cr_test_join(dir, "hello.so");
  cr_test_build_plugin(src, so, cflags);

  json_t *o = inspect(in, "hello", dir);
  assert_string_equal(json_string_value(json_object_get(o, "name")), "hello");
  assert_string_equal(json_string_value(json_object_get(o, "version")),
                      "0.0.1");
  assert_string_equal(json_string_value(json_object_get(o, "capabilities")),
                      "health_check");
  assert_string_equal(json_string_value(json_object_get(o, "path")), so);
  json_decref(o);
  free(so);
  free(src);
  free(dir);
  free(cflags);
}

/* A plugin may be written in C++: the installed headers compile as C++11
 * with every warning an error (build-essential, which scripts/deps.sh
 * installs, brings c++). */
static void test_headers_compile_as_cpp(void **state) {
  struct inst *in = *state;
  char *cflags = sdk_cflags(in);
  char *cxx = cr_test_which("c++");
  assert_non_null(cxx);
  char *src = cr_test_join(in->tmp, "headers.cc");
  FILE *f = fopen(src, "w");
  assert_non_null(f);
  fputs("#include <connrun/plugin.h>\n#include <connrun/plugin_util.h>\n"
        "int main() {\n  struct cr_json_array_iter it;\n"
        "  const char *e, *first;\n  size_t n;\n"
        "  if (cr_json_array_begin(&it, \"[{\\\"a\\\":{}}]\", NULL) != 0)\n"
        "    return 1;\n"
        "  return cr_json_array_next_first(&it, &e, &n, &first) == 1 ? 0 : 1;\n"
        "}\n",
        f);
  assert_int_equal(fclose(f), 0);
  char *exe = cr_test_join(in->tmp, "headers-cpp");
  const char *const pre[] = {cxx,       "-std=c++11", "-Wall", "-Wextra",
                             "-Werror", "-pedantic",  NULL};
  cr_test_compile(pre, cflags, exe, src,
                  "compiling the headers as C++ (headers.cc)");
  char *out = NULL;
  char *run[] = {exe, NULL};
  assert_int_equal(cr_test_run(run, NULL, &out), 0);
  free(out);
  free(exe);
  free(src);
  free(cxx);
  free(cflags);
}

/* The bundled plugins the build made (every one is installed). */
static size_t count_built_plugins(void) {
  DIR *d = opendir(CR_PLUGIN_DIR);
  size_t n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    n += len > 3 && strcmp(e->d_name + len - 3, ".so") == 0;
  }
  if (d != NULL)
    closedir(d);
  return n;
}

/* No --plugin-dir, no plugin_dirs: the installed binary uses the installed
 * plugin directory, for `plugins list` and for the default configuration. */
static void test_default_plugin_dir(void **state) {
  struct inst *in = *state;
  char *argv[] = {in->connrun, "plugins", "list", "--json", NULL};
  char *out = NULL;
  int rc = cr_test_run(argv, NULL, &out);
  if (rc != 0)
    fail_msg("plugins list failed (%d):\n%s", rc, out);
  json_t *arr = json_loads(out, 0, NULL);
  assert_non_null(arr);
  assert_int_equal(json_array_size(arr), count_built_plugins());
  char *plugins = prefixed(in, "lib/connrun/plugins/");
  size_t i;
  json_t *p;
  json_array_foreach(arr, i, p) {
    const char *path = json_string_value(json_object_get(p, "path"));
    assert_int_equal(strncmp(path, plugins, strlen(plugins)), 0);
  }
  json_decref(arr);
  free(plugins);
  free(out);

  char *yaml = prefixed(in, "etc/connrun/connrun.yaml");
  char *check[] = {in->connrun, "config", "check", yaml, NULL};
  rc = cr_test_run(check, NULL, &out);
  if (rc != 0)
    fail_msg("config check of the default configuration (%d):\n%s", rc, out);
  assert_non_null(strstr(out, "ok (1 authorization, 1 work"));
  free(out);
  free(yaml);
}

static void test_man_page(void **state) {
  struct inst *in = *state;
  char *path = prefixed(in, "share/man/man1/connrun.1");
  char *text = cr_test_read_file(path);
  assert_non_null(text);
  static const char *const must[] = {
      ".TH CONNRUN 1", "serve",           "sync",
      "state",         "works",           "cancel",
      "events",        "subscriptions",   "config check",
      "plugins list",  "plugins inspect", "plugins new",
      "plugins test",  ".SH EXIT STATUS", NULL};
  for (size_t i = 0; must[i] != NULL; i++)
    if (strstr(text, must[i]) == NULL)
      fail_msg("connrun.1 does not mention '%s'", must[i]);
  free(text);
  char *groff = cr_test_which("groff");
  if (groff != NULL) { /* the roff is clean: no warnings */
    char *argv[] = {groff, "-man", "-ww", "-z", path, NULL};
    char *out = NULL;
    assert_int_equal(cr_test_run(argv, NULL, &out), 0);
    assert_string_equal(out, "");
    free(out);
  }
  free(groff);
  free(path);
}

/* `connrun plugins new NAME --dir DIR` from the installed binary. Returns
 * the exit status; *out (may be NULL) gets the output, caller frees. */
static int plugins_new(const struct inst *in, const char *name, const char *dir,
                       char **out) {
  char *argv[] = {in->connrun, "plugins",   "new", (char *)name,
                  "--dir",     (char *)dir, NULL};
  return cr_test_run(argv, NULL, out);
}

/* The generated project builds with its own Makefile against the installed
 * SDK and loads as it is. */
static void test_plugins_new_builds_and_loads(void **state) {
  struct inst *in = *state;
  char *dir = cr_test_join(in->tmp, "acme");
  char *out = NULL;
  int rc = plugins_new(in, "acme", dir, &out);
  if (rc != 0)
    fail_msg("plugins new failed (%d):\n%s", rc, out);
  free(out);
  char *make = cr_test_which("make");
  assert_non_null(make);
  char *argv[] = {make, "-C", dir, "CFLAGS=-O1 -Werror", NULL};
  char *env[] = {in->pc_env, NULL};
  rc = cr_test_run(argv, env, &out);
  if (rc != 0)
    fail_msg("make of the generated plugin failed (%d):\n%s", rc, out);
  free(out);

  json_t *o = inspect(in, "acme", dir);
  assert_string_equal(json_string_value(json_object_get(o, "capabilities")),
                      "health_check,read");
  json_t *streams = json_object_get(o, "streams");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(streams, 0), "name")),
      "items");
  assert_true(json_is_object(json_object_get(o, "credentials_schema")));
  json_decref(o);

  /* A second run refuses to overwrite and leaves the files alone. */
  char *c = cr_test_join(dir, "acme.c");
  char *before = cr_test_read_file(c);
  assert_int_equal(plugins_new(in, "acme", dir, &out), 1);
  assert_non_null(strstr(out, "already exists; not overwriting"));
  char *after = cr_test_read_file(c);
  assert_string_equal(before, after);
  free(before);
  free(after);
  free(out);
  free(c);
  free(make);
  free(dir);
}

static void test_plugins_new_rejects_bad_names(void **state) {
  struct inst *in = *state;
  static const char *const bad[] = {
      "Acme",
      "1acme",
      "ac-me",
      "_acme",
      "",
      "a2345678901234567890123456789012345678901234567890123456789012345",
      NULL};
  char *dir = cr_test_join(in->tmp, "bad-names");
  for (size_t i = 0; bad[i] != NULL; i++) {
    char *out = NULL;
    assert_int_equal(plugins_new(in, bad[i], dir, &out), 2);
    assert_non_null(strstr(out, "invalid NAME"));
    free(out);
  }
  /* 64 characters is the longest name. */
  assert_int_equal(
      plugins_new(
          in,
          "a234567890123456789012345678901234567890123456789012345678901234",
          dir, NULL),
      0);
  char *argv[] = {in->connrun, "plugins", "new", NULL};
  assert_int_equal(cr_test_run(argv, NULL, NULL), 2);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_installed_files),
      cmocka_unit_test(test_build_plugin_with_pkg_config),
      cmocka_unit_test(test_headers_compile_as_cpp),
      cmocka_unit_test(test_default_plugin_dir),
      cmocka_unit_test(test_man_page),
      cmocka_unit_test(test_plugins_new_builds_and_loads),
      cmocka_unit_test(test_plugins_new_rejects_bad_names),
  };
  return cmocka_run_group_tests(tests, setup_install, teardown_install);
}
