/* test_dest_plugin.c: the plugin destination hands records to a real
 * write-capable plugin (collect.so, loaded with dlopen) in batches, at
 * flush, and turns a refused batch into a failed destination. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dest/dest.h"
#include "util/error.h"
#include "plugin/plugin_host.h"

struct fx {
  char *dir;
  char path[512];
  cr_plugin_host *host;
  const cr_plugin *collect, *behave;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  f->dir = cr_test_mkdtemp("dest_plugin");
  snprintf(f->path, sizeof f->path, "%s/collected.txt", f->dir);
  setenv("CR_COLLECT_PATH", f->path, 1);
  unsetenv("CR_COLLECT_FAIL");
  assert_int_equal(cr_plugin_host_new(NULL, &f->host), 0);
  char err[512];
  assert_int_equal(cr_plugin_host_load_file(f->host,
                                            CR_TEST_PLUGIN_DIR "/collect.so",
                                            err, sizeof err),
                   0);
  assert_int_equal(cr_plugin_host_load_file(f->host,
                                            CR_TEST_PLUGIN_DIR "/behave.so",
                                            err, sizeof err),
                   0);
  f->collect = cr_plugin_host_find(f->host, "collect");
  f->behave = cr_plugin_host_find(f->host, "behave");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  cr_plugin_host_free(f->host);
  cr_test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static size_t count_lines(const char *path) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL)
    return 0;
  size_t n = 0;
  int c;
  while ((c = fgetc(fp)) != EOF)
    n += c == '\n';
  fclose(fp);
  return n;
}

static const struct cr_plugin_params params = {
    .struct_size = sizeof params,
    .authorization_id = "sink",
    .auth_method = "none",
    .credentials_json = "{}",
    .config_json = "{}",
    .work_id = "w",
};

static void test_batches_and_flush(void **state) {
  struct fx *f = *state;
  cr_dest *d = NULL;
  char err[256];
  assert_int_equal(cr_dest_open_plugin(cr_plugin_desc(f->collect), &params,
                                       NULL, &d, err, sizeof err),
                   0);
  char rec[64];
  size_t total = CR_DEST_PLUGIN_BATCH * 2 + 17;
  for (size_t i = 0; i < total; i++) {
    snprintf(rec, sizeof rec, "{\"id\":%zu}", i);
    assert_int_equal(cr_dest_write(d, "items", rec, strlen(rec)), 0);
  }
  /* Two full batches went out; the rest waits for the flush. */
  assert_int_equal(count_lines(f->path), CR_DEST_PLUGIN_BATCH * 2);
  assert_int_equal(cr_dest_flush(d), 0);
  assert_int_equal(count_lines(f->path), total);
  assert_int_equal(cr_dest_flush(d), 0); /* nothing left: no duplicate */
  assert_int_equal(count_lines(f->path), total);
  assert_int_equal(cr_dest_records(d), (int64_t)total);
  cr_dest_close(d);
  char *txt = cr_test_read_file(f->path);
  assert_non_null(strstr(txt, "items\t{\"id\":0}\n"));
  assert_non_null(strstr(txt, "items\t{\"id\":1016}\n"));
  free(txt);
}

static void test_refused_batch_fails_destination(void **state) {
  struct fx *f = *state;
  cr_dest *d = NULL;
  char err[256];
  assert_int_equal(cr_dest_open_plugin(cr_plugin_desc(f->collect), &params,
                                       NULL, &d, err, sizeof err),
                   0);
  assert_int_equal(cr_dest_write(d, "items", "{\"id\":1}", 8), 0);
  setenv("CR_COLLECT_FAIL", "1", 1);
  assert_int_equal(cr_dest_flush(d), CR_EIO);
  assert_non_null(strstr(cr_dest_last_error(d), "provider refused the batch"));
  assert_int_equal(cr_dest_write(d, "items", "{\"id\":2}", 8), CR_EIO);
  unsetenv("CR_COLLECT_FAIL");
  cr_dest_close(d); /* unflushed records are dropped, nothing leaks */
  assert_int_equal(count_lines(f->path), 0);
}

static void test_needs_write_capability(void **state) {
  struct fx *f = *state;
  cr_dest *d = NULL;
  char err[256] = "";
  assert_int_equal(cr_dest_open_plugin(cr_plugin_desc(f->behave), &params, NULL,
                                       &d, err, sizeof err),
                   CR_EINVAL);
  assert_null(d);
  assert_non_null(strstr(err, "cannot write"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_batches_and_flush, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_batch_fails_destination,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_needs_write_capability, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
