/* plugin_dirs.h: the options subcommands share to find plugins
 * (--plugin-dir DIR, repeatable; -c FILE for host.plugin_dirs; --json) and
 * opening a plugin host over them. */
#ifndef CR_CLI_PLUGIN_DIRS_H
#define CR_CLI_PLUGIN_DIRS_H

#include <stddef.h>

#include "plugin/plugin_host.h"

struct cr_cli_plugin_opts {
  char **dirs; /* owned array of owned strings */
  size_t n_dirs;
  const char *config;     /* borrowed from argv, or NULL */
  const char *positional; /* borrowed from argv, or NULL */
  int json;
};

/* The installed plugin directory: CR_PLUGINDIR_FROM_BIN (e.g.
 * "../lib/connrun/plugins") next to the running binary when that is a
 * directory (a relocated `cmake --install --prefix P`), else the absolute
 * directory the build was configured to install to, when it exists; NULL
 * when neither does (e.g. a binary in the build tree). Static storage. */
const char *cr_cli_default_plugin_dir(void);

/* Parses args (argv[0] is the first option, not a command name). need_arg:
 * one positional argument is required. Without --plugin-dir and -c, the
 * default plugin directory is used (usage error when there is none). Returns a
 * CR_EXIT_* code; on CR_EXIT_OK release with cr_cli_plugin_opts_free. */
int cr_cli_plugin_opts_parse(struct cr_cli_plugin_opts *o, int argc,
                             char **argv, int need_arg);
void cr_cli_plugin_opts_free(struct cr_cli_plugin_opts *o);

/* Creates a host and loads every directory of o (plus the config's
 * host.plugin_dirs). Refused plugins go to cb. Returns a CR_EXIT_* code;
 * *out is set (free with cr_plugin_host_free) when CR_EXIT_OK. */
int cr_cli_plugin_host_open(const struct cr_cli_plugin_opts *o,
                            cr_plugin_refused_cb cb, void *ud,
                            cr_plugin_host **out);

#endif
