/* test_docs.c: every public function declared in a public header (the headers
 * of core/'s folders except internal ones, the SDK headers) has a comment right
 * above it, or belongs to a group of declarations that has one. */
#include "testutil.h"

#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_internal(const char *name) {
  return strstr(name, "_int.h") != NULL || strstr(name, "_internal.h") != NULL;
}

static int blank(const char *l) {
  while (*l == ' ' || *l == '\t' || *l == '\n')
    l++;
  return *l == '\0';
}

static int ends_comment(const char *l) {
  size_t n = strlen(l);
  while (n > 0 && (l[n - 1] == '\n' || l[n - 1] == ' '))
    n--;
  return (n >= 2 && l[n - 2] == '*' && l[n - 1] == '/') ||
         strncmp(l, "//", 2) == 0;
}

/* Returns the number of undocumented declarations, printing each. */
static int check_header(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  regex_t proto;
  assert_int_equal(
      regcomp(&proto, "^[A-Za-z_][A-Za-z0-9_ \\*]*[ \\*](cr_[a-z0-9_]+)\\(",
              REG_EXTENDED),
      0);
  char line[1024];
  int documented = 0, in_decl = 0, missing = 0, lineno = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    lineno++;
    regmatch_t m[2];
    if (regexec(&proto, line, 2, m, 0) == 0 &&
        strncmp(line, "typedef", 7) != 0) {
      if (!documented) {
        fprintf(stderr, "%s:%d: undocumented: %.*s\n", path, lineno,
                (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
        missing++;
      }
      in_decl = 1;
      continue;
    }
    if (blank(line)) {
      documented = 0;
      in_decl = 0;
      continue;
    }
    if (ends_comment(line))
      documented = 1;
    else if (!in_decl && line[0] != ' ')
      documented = 0;
  }
  regfree(&proto);
  fclose(f);
  return missing;
}

static int check_dir(const char *dir, int *headers) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int missing = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 3 || strcmp(e->d_name + n - 2, ".h") != 0 || is_internal(e->d_name))
      continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    missing += check_header(path);
    (*headers)++;
  }
  closedir(d);
  return missing;
}

static void test_public_functions_are_documented(void **state) {
  (void)state;
  int headers = 0;
  int missing = 0;
  DIR *core = opendir(CR_SOURCE_DIR "/core");
  assert_non_null(core);
  struct dirent *e;
  while ((e = readdir(core)) != NULL) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/core/%s", CR_SOURCE_DIR, e->d_name);
    if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
      missing += check_dir(path, &headers);
  }
  closedir(core);
  missing += check_dir(CR_SOURCE_DIR "/sdk/include/connrun", &headers);
  assert_true(headers >= 3);
  assert_int_equal(missing, 0);
}

static void test_checker_catches_a_missing_comment(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("docs");
  char *bad = cr_test_write_file(dir, "bad.h",
                                 "/* file */\n\n/* documented */\n"
                                 "int cr_a(void);\nint cr_b(void);\n\n"
                                 "int cr_c(int x);\n");
  assert_int_equal(check_header(bad), 1);
  free(bad);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_public_functions_are_documented),
      cmocka_unit_test(test_checker_catches_a_missing_comment),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
