/* test_plugin_scan.c: rescans of plugin directories (plugin_scan.h): what
 * is carried over, loaded, refused and reported, on real files and real
 * dlopen()ed test plugins. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/plugin_scan.h"
#include "testutil.h"

#include <cmocka.h>

struct fx {
  char *dir;
  cr_plugin_host *set; /* the current set */
};

/* Copies test plugin `name`.so into the directory as `as` (by rename). */
static void put(struct fx *f, const char *name, const char *as) {
  char src[1024], tmp[1024], dst[1024];
  snprintf(src, sizeof src, "%s/%s.so", CR_TEST_PLUGIN_DIR, name);
  snprintf(tmp, sizeof tmp, "%s/.part", f->dir);
  snprintf(dst, sizeof dst, "%s/%s", f->dir, as);
  cr_test_copy_file(src, tmp);
  assert_int_equal(chmod(tmp, 0755), 0);
  assert_int_equal(rename(tmp, dst), 0);
}

static void del(struct fx *f, const char *as) {
  char *p = cr_test_join(f->dir, as);
  assert_int_equal(unlink(p), 0);
  free(p);
}

/* Rescans; the new set replaces f->set. Returns the changes. */
static struct cr_plugin_change *
rescan(struct fx *f, size_t *n, int (*busy)(void *, const char *), void *ud) {
  const char *dirs[] = {f->dir};
  struct cr_plugin_scan_opts o = {
      .dirs = dirs, .n_dirs = 1, .busy = busy, .ud = ud};
  cr_plugin_host *neu = NULL;
  struct cr_plugin_change *c = NULL;
  assert_int_equal(cr_plugin_host_rescan(f->set, &o, &neu, &c, n), 0);
  cr_plugin_host_free(f->set);
  f->set = neu;
  return c;
}

/* Rescans and drops the changes. */
static void rescan_quiet(struct fx *f) {
  size_t n = 0;
  struct cr_plugin_change *c = rescan(f, &n, NULL, NULL);
  cr_plugin_changes_free(c, n);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  f->dir = cr_test_mkdtemp("scan");
  assert_int_equal(cr_plugin_host_new(NULL, &f->set), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  cr_plugin_host_free(f->set);
  cr_test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static void test_created_carried_deleted(void **state) {
  struct fx *f = *state;
  put(f, "good_alpha", "a.so");
  size_t n = 0;
  struct cr_plugin_change *c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].kind, CR_PLUGIN_CREATED);
  assert_string_equal(c[0].name, "alpha");
  assert_non_null(c[0].version);
  assert_null(c[0].old_version);
  cr_plugin_changes_free(c, n);
  const cr_plugin *alpha = cr_plugin_host_find(f->set, "alpha");

  /* unchanged: the very same loaded plugin, no change */
  put(f, "good_beta", "b.so");
  c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].kind, CR_PLUGIN_CREATED);
  assert_string_equal(c[0].name, "beta");
  cr_plugin_changes_free(c, n);
  assert_ptr_equal(cr_plugin_host_find(f->set, "alpha"), alpha);

  del(f, "a.so");
  c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].kind, CR_PLUGIN_DELETED);
  assert_string_equal(c[0].name, "alpha");
  assert_null(c[0].version);
  assert_non_null(c[0].old_version);
  cr_plugin_changes_free(c, n);
  assert_null(cr_plugin_host_find(f->set, "alpha"));
  assert_non_null(cr_plugin_host_find(f->set, "beta"));
}

/* The old set stays usable after a rescan replaced a file: what holds it
 * keeps its plugin until it lets go. */
static void test_upgrade_keeps_old_set(void **state) {
  struct fx *f = *state;
  put(f, "dropin/dropin_v1", "dropin.so");
  size_t n = 0;
  rescan_quiet(f);
  cr_plugin_host *held = cr_plugin_host_retain(f->set);
  put(f, "dropin/dropin_v2", "dropin.so");
  struct cr_plugin_change *c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].kind, CR_PLUGIN_UPDATED);
  assert_string_equal(c[0].old_version, "1.0.0");
  assert_string_equal(c[0].version, "2.0.0");
  cr_plugin_changes_free(c, n);
  assert_string_equal(
      cr_plugin_desc(cr_plugin_host_find(held, "dropin"))->version, "1.0.0");
  assert_string_equal(
      cr_plugin_desc(cr_plugin_host_find(f->set, "dropin"))->version, "2.0.0");
  cr_plugin_host_free(held);
}

/* A refused replacement keeps the old version; an unchanged refused file
 * is not reported again. */
static void test_refused_replacement(void **state) {
  struct fx *f = *state;
  put(f, "dropin/dropin_v1", "dropin.so");
  size_t n = 0;
  rescan_quiet(f);
  put(f, "dropin/dropin_badabi", "dropin.so");
  struct cr_plugin_change *c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].kind, CR_PLUGIN_FAILED);
  assert_string_equal(c[0].name, "dropin");
  assert_non_null(strstr(c[0].reason, "built for ABI 2."));
  cr_plugin_changes_free(c, n);
  assert_string_equal(
      cr_plugin_desc(cr_plugin_host_find(f->set, "dropin"))->version, "1.0.0");
  assert_int_equal(cr_plugin_host_refused_count(f->set), 1);
  c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 0);
  cr_plugin_changes_free(c, n);
  assert_int_equal(cr_plugin_host_refused_count(f->set), 1);
}

/* First by file name wins, across rescans; the loser says who won. */
static void test_duplicates_across_rescans(void **state) {
  struct fx *f = *state;
  put(f, "good_alpha", "m_alpha.so");
  size_t n = 0;
  rescan_quiet(f);
  put(f, "dup_alpha", "z_alpha.so"); /* later by name: refused */
  struct cr_plugin_change *c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 1);
  assert_int_equal(c[0].kind, CR_PLUGIN_FAILED);
  assert_non_null(strstr(c[0].reason, "duplicate provider 'alpha'"));
  assert_non_null(strstr(c[0].reason, "m_alpha.so"));
  cr_plugin_changes_free(c, n);
  put(f, "dup_alpha", "a_alpha.so"); /* earlier by name: it wins now */
  c = rescan(f, &n, NULL, NULL);
  const char *path = NULL, *reason = NULL;
  assert_string_equal(
      cr_plugin_desc(cr_plugin_host_find(f->set, "alpha"))->version,
      "9.9.9-dup");
  assert_int_equal(cr_plugin_host_refused_count(f->set), 2);
  cr_plugin_host_refused_at(f->set, 0, &path, &reason);
  assert_non_null(strstr(path, "m_alpha.so"));
  assert_non_null(strstr(reason, "a_alpha.so"));
  int updated = 0;
  for (size_t i = 0; i < n; i++)
    updated += c[i].kind == CR_PLUGIN_UPDATED;
  assert_int_equal(updated, 1);
  cr_plugin_changes_free(c, n);
  del(f, "a_alpha.so");
  del(f, "z_alpha.so");
  c = rescan(f, &n, NULL, NULL); /* the winner gone: m_alpha.so serves */
  cr_plugin_changes_free(c, n);
  assert_string_equal(cr_plugin_path(cr_plugin_host_find(f->set, "alpha")) +
                          strlen(f->dir),
                      "/m_alpha.so");
  assert_int_equal(cr_plugin_host_refused_count(f->set), 0);
}

static int busy_all(void *ud, const char *path) {
  (void)ud;
  (void)path;
  return 1;
}

/* A file still being written is not opened; the version before stays. */
static void test_busy_file_skipped(void **state) {
  struct fx *f = *state;
  put(f, "dropin/dropin_v1", "dropin.so");
  size_t n = 0;
  struct cr_plugin_change *c = rescan(f, &n, busy_all, NULL);
  assert_int_equal(n, 0);
  cr_plugin_changes_free(c, n);
  assert_int_equal(cr_plugin_host_count(f->set), 0);
  c = rescan(f, &n, NULL, NULL);
  assert_int_equal(n, 1);
  cr_plugin_changes_free(c, n);
  put(f, "dropin/dropin_v2", "dropin.so");
  c = rescan(f, &n, busy_all, NULL);
  assert_int_equal(n, 0);
  cr_plugin_changes_free(c, n);
  assert_string_equal(
      cr_plugin_desc(cr_plugin_host_find(f->set, "dropin"))->version, "1.0.0");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_created_carried_deleted, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_upgrade_keeps_old_set, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refused_replacement, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_duplicates_across_rescans, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_busy_file_skipped, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
