/* plugin_dirs.c: shared plugin options of the tool (see plugin_dirs.h). */
#include "plugin_dirs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "config/config.h"
#include "util/error.h"

static int add_dir(struct cr_cli_plugin_opts *o, const char *dir) {
  for (size_t i = 0; i < o->n_dirs; i++)
    if (strcmp(o->dirs[i], dir) == 0)
      return 0;
  char **grown = realloc(o->dirs, (o->n_dirs + 1) * sizeof *grown);
  if (grown == NULL)
    return -1;
  o->dirs = grown;
  if ((o->dirs[o->n_dirs] = strdup(dir)) == NULL)
    return -1;
  o->n_dirs++;
  return 0;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cr_cli_default_plugin_dir(void) {
  static char dir[4096];
  char exe[4096];
  if (cr_cli_self_exe(exe, sizeof exe) == 0) {
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
      *slash = '\0';
    int n = snprintf(dir, sizeof dir, "%s/%s", exe, CR_PLUGINDIR_FROM_BIN);
    char *real = n > 0 && (size_t)n < sizeof dir ? realpath(dir, NULL) : NULL;
    int ok = real != NULL && is_dir(real) &&
             (size_t)snprintf(dir, sizeof dir, "%s", real) < sizeof dir;
    free(real);
    if (ok)
      return dir;
  }
  return is_dir(CR_INSTALL_PLUGINDIR) ? CR_INSTALL_PLUGINDIR : NULL;
}

int cr_cli_plugin_opts_parse(struct cr_cli_plugin_opts *o, int argc,
                             char **argv, int need_arg) {
  memset(o, 0, sizeof *o);
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--json") == 0) {
      o->json = 1;
    } else if (strcmp(a, "--plugin-dir") == 0 && i + 1 < argc) {
      if (add_dir(o, argv[++i]) != 0) {
        cr_cli_plugin_opts_free(o);
        return CR_EXIT_RUNTIME;
      }
    } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) &&
               i + 1 < argc) {
      o->config = argv[++i];
    } else if (a[0] != '-' && need_arg && o->positional == NULL) {
      o->positional = a;
    } else {
      cr_cli_errorf("plugins: unexpected argument '%s' (see 'connrun plugins "
                    "--help')",
                    a);
      cr_cli_plugin_opts_free(o);
      return CR_EXIT_USAGE;
    }
  }
  const char *def = cr_cli_default_plugin_dir();
  if (o->n_dirs == 0 && o->config == NULL && def != NULL &&
      add_dir(o, def) != 0) {
    cr_cli_plugin_opts_free(o);
    return CR_EXIT_RUNTIME;
  }
  if ((need_arg && o->positional == NULL) ||
      (o->n_dirs == 0 && o->config == NULL)) {
    cr_cli_errorf(need_arg && o->positional == NULL
                      ? "plugins: missing plugin NAME"
                      : "plugins: give --plugin-dir DIR or -c FILE (no "
                        "installed plugin directory " CR_INSTALL_PLUGINDIR ")");
    cr_cli_plugin_opts_free(o);
    return CR_EXIT_USAGE;
  }
  return CR_EXIT_OK;
}

void cr_cli_plugin_opts_free(struct cr_cli_plugin_opts *o) {
  for (size_t i = 0; i < o->n_dirs; i++)
    free(o->dirs[i]);
  free(o->dirs);
  o->dirs = NULL;
  o->n_dirs = 0;
}

/* Adds the configuration's host.plugin_dirs. A configuration with errors
 * still names its directories; only an unreadable file is fatal. */
static int add_config_dirs(struct cr_cli_plugin_opts *o) {
  cr_diags diags;
  cr_diags_init(&diags);
  cr_config *cfg = NULL;
  int rc = cr_config_load(o->config, &cfg, &diags);
  cr_diags_free(&diags);
  if (cfg == NULL) {
    cr_cli_errorf("cannot load %s: %s", o->config, cr_strerror(rc));
    return CR_EXIT_RUNTIME;
  }
  int ok = 1;
  for (size_t i = 0; ok && i < cfg->host.n_plugin_dirs; i++)
    ok = add_dir(o, cfg->host.plugin_dirs[i]) == 0;
  cr_config_free(cfg);
  return ok ? CR_EXIT_OK : CR_EXIT_RUNTIME;
}

int cr_cli_plugin_host_open(const struct cr_cli_plugin_opts *o,
                            cr_plugin_refused_cb cb, void *ud,
                            cr_plugin_host **out) {
  struct cr_cli_plugin_opts all = *o;
  all.dirs = NULL;
  all.n_dirs = 0;
  int rc = CR_EXIT_OK;
  for (size_t i = 0; rc == CR_EXIT_OK && i < o->n_dirs; i++)
    rc = add_dir(&all, o->dirs[i]) == 0 ? CR_EXIT_OK : CR_EXIT_RUNTIME;
  if (rc == CR_EXIT_OK && o->config != NULL)
    rc = add_config_dirs(&all);
  cr_plugin_host *h = NULL;
  if (rc == CR_EXIT_OK && cr_plugin_host_new(NULL, &h) != 0)
    rc = CR_EXIT_RUNTIME;
  size_t readable = 0;
  for (size_t i = 0; rc == CR_EXIT_OK && i < all.n_dirs; i++) {
    int r = cr_plugin_host_load_dir(h, all.dirs[i], cb, ud);
    if (r == CR_ENOMEM)
      rc = CR_EXIT_RUNTIME;
    else if (r == 0)
      readable++;
  }
  if (rc == CR_EXIT_OK && readable == 0) {
    cr_cli_errorf("plugins: no readable plugin directory");
    rc = CR_EXIT_RUNTIME;
  }
  cr_cli_plugin_opts_free(&all);
  if (rc != CR_EXIT_OK) {
    cr_plugin_host_free(h);
    return rc;
  }
  *out = h;
  return CR_EXIT_OK;
}
