/* plugins_new.c: `connrun plugins new NAME [--dir DIR]`: writes a minimal
 * plugin project (NAME.c, Makefile) from runner/plugin_template.c. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_template.h"

#define MAX_NAME 64

/* [a-z][a-z0-9_]{0,63}: a provider name that is also a C identifier. */
static int valid_name(const char *n) {
  size_t len = strlen(n);
  if (len == 0 || len > MAX_NAME || n[0] < 'a' || n[0] > 'z')
    return 0;
  for (size_t i = 1; i < len; i++)
    if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') ||
          n[i] == '_'))
      return 0;
  return 1;
}

/* Writes tpl with every "@NAME@" replaced by name to fd. 0 or -1. */
static int write_template(int fd, const char *tpl, const char *name) {
  static const char mark[] = "@NAME@";
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    close(fd);
    return -1;
  }
  const char *p = tpl, *hit;
  while ((hit = strstr(p, mark)) != NULL) {
    fwrite(p, 1, (size_t)(hit - p), f);
    fputs(name, f);
    p = hit + sizeof mark - 1;
  }
  fputs(p, f);
  int bad = ferror(f);
  return (fclose(f) != 0 || bad) ? -1 : 0;
}

struct file {
  char path[4096];
  const char *tpl;
};

/* Creates every file, refusing to overwrite any (checked before writing). */
static int write_project(struct file *files, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (access(files[i].path, F_OK) == 0) {
      cr_cli_errorf("plugins new: %s already exists; not overwriting it",
                    files[i].path);
      return CR_EXIT_INVALID;
    }
  for (size_t i = 0; i < n; i++) {
    int fd = open(files[i].path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || write_template(fd, files[i].tpl, name) != 0) {
      cr_cli_errorf("plugins new: cannot write %s: %s", files[i].path,
                    strerror(errno));
      return errno == EEXIST ? CR_EXIT_INVALID : CR_EXIT_RUNTIME;
    }
    printf("wrote %s\n", files[i].path);
  }
  return CR_EXIT_OK;
}

static int parse(int argc, char **argv, const char **name, const char **dir) {
  *name = NULL;
  *dir = ".";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
      *dir = argv[++i];
    else if (argv[i][0] != '-' && *name == NULL)
      *name = argv[i];
    else {
      cr_cli_errorf("plugins new: unexpected argument '%s'", argv[i]);
      return -1;
    }
  }
  if (*name == NULL) {
    cr_cli_errorf("plugins new: missing plugin NAME");
    return -1;
  }
  if (!valid_name(*name)) {
    cr_cli_errorf("plugins new: invalid NAME '%s': use [a-z][a-z0-9_]{0,63}",
                  *name);
    return -1;
  }
  return 0;
}

int cr_cmd_plugins_new(int argc, char **argv) {
  const char *name, *dir;
  if (parse(argc, argv, &name, &dir) != 0)
    return CR_EXIT_USAGE;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    cr_cli_errorf("plugins new: cannot create %s: %s", dir, strerror(errno));
    return CR_EXIT_RUNTIME;
  }
  struct file files[] = {{.tpl = cr__plugin_template_c},
                         {.tpl = cr__plugin_template_makefile}};
  snprintf(files[0].path, sizeof files[0].path, "%s/%s.c", dir, name);
  snprintf(files[1].path, sizeof files[1].path, "%s/Makefile", dir);
  return write_project(files, 2, name);
}
