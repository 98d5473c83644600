/* config_fixture.h: what the configuration loader's tests share (test_config.c,
 * test_config_files.c): a temporary directory per test, loading a text as
 * main.yaml, and asserting a diagnostic at the line and column of a needle
 * in the text. Header-only: static inline helpers, one g_dir per test
 * program. */
#ifndef CR_TEST_CONFIG_FIXTURE_H
#define CR_TEST_CONFIG_FIXTURE_H

#include "testutil.h"

#include "config/config.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET "SG.zz-Very-Distinctive-Secret-4f9e8d"
#define BAD_SECRET "not-a-key-XYZZY-distinctive-0a1b2c"

static char *g_dir;

struct loaded {
  cr_config *cfg;
  cr_diags d;
  int rc;
  char *path;
};

static inline int setup(void **state) {
  (void)state;
  g_dir = cr_test_mkdtemp("config");
  return 0;
}

static inline int teardown(void **state) {
  (void)state;
  cr_test_rmtree(g_dir);
  free(g_dir);
  g_dir = NULL;
  return 0;
}

static char *path_in(const char *name) {
  size_t n = strlen(g_dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", g_dir, name);
  return p;
}

static inline void mkdir_in(const char *name) {
  char *p = path_in(name);
  mkdir(p, 0755);
  free(p);
}

static inline void write_in(const char *name, const char *text) {
  free(cr_test_write_file(g_dir, name, text));
}

static inline void load(struct loaded *l, const char *text) {
  memset(l, 0, sizeof *l);
  l->path = cr_test_write_file(g_dir, "main.yaml", text);
  cr_diags_init(&l->d);
  l->rc = cr_config_load(l->path, &l->cfg, &l->d);
}

static inline void unload(struct loaded *l) {
  cr_config_free(l->cfg);
  cr_diags_free(&l->d);
  free(l->path);
}

static inline void dump(const cr_diags *d) {
  char line[2048];
  for (size_t i = 0; i < d->count; i++) {
    cr_diag_format(&d->items[i], line, sizeof line);
    fprintf(stderr, "  diag: %s\n", line);
  }
}

/* Matches msg exactly; '*' in want matches any run of characters. */
static inline int msg_matches(const char *have, const char *want) {
  const char *star = strchr(want, '*');
  if (star == NULL)
    return strcmp(have, want) == 0;
  size_t n = (size_t)(star - want);
  if (strncmp(have, want, n) != 0)
    return 0;
  for (const char *p = have + n;; p++) {
    if (msg_matches(p, star + 1))
      return 1;
    if (*p == '\0')
      return 0;
  }
}

/* Asserts an error diagnostic in file (suffix) at line:col with msg. */
static inline void expect_diag_at(const cr_diags *d, const char *file, int line,
                                  int col, int sev, const char *msg) {
  for (size_t i = 0; i < d->count; i++) {
    const struct cr_diag *g = &d->items[i];
    size_t fl = g->file ? strlen(g->file) : 0, wl = strlen(file);
    if (g->line == line && g->column == col && g->severity == sev && fl >= wl &&
        strcmp(g->file + fl - wl, file) == 0 && msg_matches(g->message, msg))
      return;
  }
  dump(d);
  fail_msg("no diagnostic %s:%d:%d: %s", file, line, col, msg);
}

/* Same, with the position of needle (#nth) in text. */
static inline void expect_err(const struct loaded *l, const char *text,
                              const char *needle, int nth, const char *msg) {
  int line, col;
  cr_test_text_pos(text, needle, nth, &line, &col);
  expect_diag_at(&l->d, "main.yaml", line, col, CR_DIAG_ERROR, msg);
}

static inline size_t n_errors(const struct loaded *l) {
  return cr_diags_count(&l->d, CR_DIAG_ERROR);
}

/* Loads text expecting exactly one error, at needle, with msg. */
static inline void one_error(const char *text, const char *needle, int nth,
                             const char *msg) {
  struct loaded l;
  load(&l, text);
  expect_err(&l, text, needle, nth, msg);
  if (n_errors(&l) != 1)
    dump(&l.d);
  assert_int_equal(n_errors(&l), 1);
  assert_int_equal(l.rc, CR_ECONFIG);
  assert_non_null(l.cfg); /* best effort */
  unload(&l);
}

static inline int no_diag_contains(const cr_diags *d, const char *s) {
  for (size_t i = 0; i < d->count; i++)
    if (strstr(d->items[i].message, s) != NULL ||
        (d->items[i].file && strstr(d->items[i].file, s) != NULL))
      return 0;
  return 1;
}

#define AUTH                                                                   \
  "authorizations:\n"                                                          \
  "  - id: a1\n"                                                               \
  "    provider: cfgtest\n"                                                    \
  "    method: api_key\n"                                                      \
  "    credentials: {api_key: SG.literal-key}\n"

#endif
