/* test_config_files.c: the configuration loader across files and sizes:
 * includes and their errors, an unreadable top file, YAML syntax errors, the
 * nesting depth limit (hostile input included), and the limits on one file's
 * and all files' sizes. The fixture is config_fixture.h. */
#include "config_fixture.h"

/* ---- Includes ------------------------------------------------------------ */

static void test_includes(void **state) {
  (void)state;
  mkdir_in("conf.d");
  write_in("auths.yaml", AUTH);
  write_in("conf.d/b.yml", "works:\n  - {id: wb, provider: cfgtest, "
                           "authorization: a1}\n");
  write_in("conf.d/a.yaml", "works:\n  - {id: wa, provider: cfgtest, "
                            "authorization: a1}\n");
  write_in("conf.d/ignored.txt", "not: yaml: at: all:\n");
  struct loaded l;
  load(&l, "include: [auths.yaml, conf.d/]\n"
           "works:\n  - {id: w0, provider: cfgtest, authorization: a1}\n");
  if (l.rc != 0)
    dump(&l.d);
  assert_int_equal(l.rc, 0);
  assert_int_equal(l.cfg->n_works, 3);
  /* The file's own entries, then includes in order, directories sorted. */
  assert_string_equal(l.cfg->works[0].id, "w0");
  assert_string_equal(l.cfg->works[1].id, "wa");
  assert_string_equal(l.cfg->works[2].id, "wb");
  assert_ptr_equal(l.cfg->works[2].auth, &l.cfg->auths[0]);
  assert_int_equal(l.cfg->n_files, 4);
  unload(&l);

  /* Errors in included files point into them. */
  write_in("bad.yaml", "works:\n  - id: wz\n    provider: cfgtest\n"
                       "    authorizaton: a1\n");
  load(&l, "include: bad.yaml\n");
  expect_diag_at(&l.d, "/bad.yaml", 4, 5, CR_DIAG_ERROR,
                 "unknown key 'authorizaton' in work 'wz' (did you mean "
                 "'authorization'?)");
  expect_diag_at(&l.d, "/bad.yaml", 2, 5, CR_DIAG_ERROR,
                 "work 'wz' is missing required field 'authorization'");
  assert_int_equal(n_errors(&l), 2);
  unload(&l);

  /* Syntax error in an include: located there; the rest still checked. */
  write_in("syntax.yaml", "works:\n  - id: a\n   bad: [\n");
  const char *t = "include: [syntax.yaml]\nhots: {}\n";
  load(&l, t);
  assert_int_equal(n_errors(&l), 2);
  expect_err(&l, t, "hots", 0,
             "unknown key 'hots' at the top level (did you "
             "mean 'host'?)");
  int found = 0;
  for (size_t i = 0; i < l.d.count; i++)
    found |= strstr(l.d.items[i].file, "syntax.yaml") != NULL &&
             l.d.items[i].line == 3;
  assert_true(found);
  unload(&l);
}

static void test_include_errors(void **state) {
  (void)state;
  const char *t = "include: [missing.yaml]\n";
  one_error(t, "missing", 0,
            "cannot include 'missing.yaml': No such file or directory");
  t = "include: [missing.d/]\n";
  one_error(t, "missing", 0,
            "cannot include 'missing.d/': No such file or directory");

  /* Cycle: main -> c1 -> c2 -> main. */
  write_in("c1.yaml", "include: c2.yaml\n");
  write_in("c2.yaml", "\n\ninclude: [main.yaml]\n");
  struct loaded l;
  load(&l, "include: c1.yaml\n");
  assert_int_equal(n_errors(&l), 1);
  expect_diag_at(&l.d, "/c2.yaml", 3, 11, CR_DIAG_ERROR, "include cycle: *");
  assert_non_null(strstr(l.d.items[0].message, "c1.yaml -> "));
  assert_non_null(strstr(l.d.items[0].message, "c2.yaml -> "));
  unload(&l);

  /* host defined twice. */
  write_in("h.yaml", "# a comment\nhost:\n  listen: 127.0.0.1:1\n");
  t = "host: {account_id: a}\ninclude: h.yaml\n";
  load(&l, t);
  assert_int_equal(n_errors(&l), 1);
  expect_diag_at(&l.d, "/h.yaml", 2, 1, CR_DIAG_ERROR,
                 "'host' is defined twice (first at *");
  assert_non_null(strstr(l.d.items[0].message, "main.yaml:1)"));
  unload(&l);

  /* The same file twice: a warning, not duplicate ids. */
  write_in("once.yaml", AUTH);
  t = "include: [once.yaml, once.yaml]\n";
  load(&l, t);
  assert_int_equal(l.rc, 0);
  assert_int_equal(l.cfg->n_auths, 1);
  int line, col;
  cr_test_text_pos(t, "once", 1, &line, &col);
  expect_diag_at(&l.d, "main.yaml", line, col, CR_DIAG_WARNING,
                 "'once.yaml' is already included; ignored");
  unload(&l);

  one_error("include: {a: b}\n", "{a", 0,
            "'include' at the top level: expected a list, got a mapping");
}

static void test_top_file_unreadable(void **state) {
  (void)state;
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = (cr_config *)1;
  char *p = path_in("does-not-exist.yaml");
  assert_int_equal(cr_config_load(p, &cfg, &d), CR_ENOENT);
  assert_null(cfg);
  assert_int_equal(d.count, 1);
  assert_string_equal(d.items[0].file, p);
  assert_int_equal(d.items[0].line, 0);
  assert_non_null(strstr(d.items[0].message, "No such file or directory"));
  cr_diags_free(&d);
  free(p);
  assert_int_equal(cr_config_load(g_dir, &cfg, &d), CR_EIO);
  assert_null(cfg);
  assert_non_null(strstr(d.items[0].message, "Is a directory"));
  cr_diags_free(&d);
}

static void test_yaml_errors(void **state) {
  (void)state;
  struct loaded l;
  load(&l, "works:\n  - id: a\n    id: b\n");
  assert_int_equal(l.rc, CR_ECONFIG);
  expect_diag_at(&l.d, "main.yaml", 3, 5, CR_DIAG_ERROR,
                 "duplicate key 'id' (first at line 2)");
  unload(&l);
  load(&l, "a: [\n");
  assert_int_equal(l.rc, CR_ECONFIG);
  assert_int_equal(l.d.count, 1);
  assert_int_equal(l.d.items[0].line, 2);
  unload(&l);
}

/* ---- Limits -------------------------------------------------------------- */

/* AUTH, then "works:" with one work whose "config:" is followed by config
 * (its value is at level 4: root, works, the work). Caller frees. */
static char *work_with_config(const char *config) {
  const char *head = AUTH "works:\n  - id: w1\n    provider: cfgtest\n"
                          "    authorization: a1\n    config:";
  size_t n = strlen(head) + strlen(config) + 2;
  char *s = malloc(n);
  snprintf(s, n, "%s%s\n", head, config);
  return s;
}

/* n times "{k: ", "1", n times "}". */
static char *flow_maps(int n) {
  char *s = malloc(5 * (size_t)n + 8), *p = s;
  *p++ = ' ';
  for (int i = 0; i < n; i++)
    p += sprintf(p, "{k: ");
  *p++ = '1';
  for (int i = 0; i < n; i++)
    *p++ = '}';
  *p = '\0';
  return s;
}

#define TOO_DEEP                                                               \
  "lists and mappings nested deeper than 64 levels, the limit for one "        \
  "document"

static void test_depth_limit(void **state) {
  (void)state;
  /* 61 mappings inside config (level 4): 64 levels, allowed. */
  int allowed = CR_YAML_MAX_DEPTH - 3;
  char *maps = flow_maps(allowed), *t = work_with_config(maps);
  struct loaded l;
  load(&l, t);
  if (l.rc != 0)
    dump(&l.d);
  assert_int_equal(l.rc, 0);
  const json_t *v = l.cfg->works[0].config;
  for (int i = 1; i < allowed; i++)
    v = json_object_get(v, "k");
  assert_int_equal(json_integer_value(json_object_get(v, "k")), 1);
  unload(&l);
  free(maps);
  free(t);

  /* One more: refused at that '{'. */
  maps = flow_maps(allowed + 1);
  t = work_with_config(maps);
  one_error(t, "{k", allowed, TOO_DEEP);
  free(maps);
  free(t);

  /* Block nesting: key i is at level 4 + i; the 62nd is too deep. */
  char *block = malloc(8192), *p = block;
  for (int i = 0; i <= allowed; i++)
    p += sprintf(p, "\n%*slvl:", 6 + 2 * i, "");
  t = work_with_config(block);
  one_error(t, "lvl", allowed, TOO_DEEP);
  free(block);
  free(t);
}

/* 40,000 levels of '[' cost libyaml seconds when parsed to the end; the
 * loader stops at the 65th. */
static void test_depth_limit_hostile(void **state) {
  (void)state;
  size_t n = 40000, len = strlen("works: ");
  char *t = malloc(len + 2 * n + 2);
  memcpy(t, "works: ", len);
  memset(t + len, '[', n);
  memset(t + len + n, ']', n);
  memcpy(t + len + 2 * n, "\n", 2);
  /* works' list is level 2, so the 64th '[' is the 65th level. */
  one_error(t, "[", CR_YAML_MAX_DEPTH - 1, TOO_DEEP);
  free(t);
}

/* Makes name a file of size bytes (a hole: reads as NUL bytes). */
static void sized_file(const char *name, off_t size) {
  char *p = path_in(name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), size), 0);
  fclose(f);
  free(p);
}

static void test_file_size_limit(void **state) {
  (void)state;
  sized_file("big.yaml", (off_t)CR_YAML_MAX_FILE_SIZE + 1);
  struct loaded l;
  load(&l, "include: [big.yaml]\n");
  assert_int_equal(l.rc, CR_ECONFIG);
  assert_int_equal(n_errors(&l), 1);
  expect_diag_at(&l.d, "/big.yaml", 1, 1, CR_DIAG_ERROR,
                 "file is larger than 16 MiB, the limit for one file");
  unload(&l);

  /* The top file itself. */
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = NULL;
  char *p = path_in("big.yaml");
  assert_int_equal(cr_config_load(p, &cfg, &d), CR_ECONFIG);
  assert_int_equal(d.count, 1);
  expect_diag_at(&d, "/big.yaml", 1, 1, CR_DIAG_ERROR,
                 "file is larger than 16 MiB, the limit for one file");
  cr_config_free(cfg);
  cr_diags_free(&d);
  free(p);
}

/* A valid YAML file of size bytes: one comment line. */
static void comment_file(const char *name, size_t size) {
  char *text = malloc(size + 1);
  memset(text, 'x', size);
  memcpy(text, "# ", 2);
  memcpy(text + size - 1, "\n", 2);
  write_in(name, text);
  free(text);
}

static void test_total_size_limit(void **state) {
  (void)state;
  size_t part = (size_t)CR_CONFIG_MAX_TOTAL_SIZE * 3 / 8;
  comment_file("a.yaml", part);
  comment_file("b.yaml", part);
  comment_file("c.yaml", part); /* the top file + a + b fit; + c is over */
  write_in("d.yaml", AUTH);
  const char *t = "include:\n  - a.yaml\n  - b.yaml\n  - c.yaml\n  - d.yaml\n";
  struct loaded l;
  load(&l, t);
  expect_err(&l, t, "c.yaml", 0,
             "cannot include 'c.yaml': the configuration files would total "
             "more than 32 MiB, the limit for a file and its includes");
  assert_int_equal(n_errors(&l), 1);
  /* What fits is still read, before and after. */
  assert_int_equal(l.cfg->n_auths, 1);
  assert_int_equal(l.cfg->n_files, 4);
  unload(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_includes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_include_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_top_file_unreadable, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_depth_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_depth_limit_hostile, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_file_size_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_total_size_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
