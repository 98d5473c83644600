/* main.c: the connrun tool's entry point: global options and dispatch to the
 * subcommands declared in cli.h. */
#include "cli.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "plugin_dirs.h"
#include "util/error.h"
#include <connrun/plugin.h>

struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
};

static const struct command commands[] = {
    {"serve", cr_cmd_serve, "run the daemon (scheduler, runners, API)"},
    {"config", cr_cmd_config, "validate a configuration file"},
    {"plugins", cr_cmd_plugins, "list and inspect provider plugins"},
    {"sync", cr_cmd_sync, "run one execution of a work in the foreground"},
    {"works", cr_cmd_works, "works, their status, executions and next run"},
    {"auth", cr_cmd_auth, "authorizations: health, summary, check now"},
    {"cancel", cr_cmd_cancel, "cancel an execution"},
    {"subscriptions", cr_cmd_subscriptions,
     "webhook subscriptions: backlog, success rate, replay"},
    {"events", cr_cmd_events, "list, follow and export system events"},
    {"state", cr_cmd_state, "show, list or roll back a work's sync state"},
    {"runners", cr_cmd_runners,
     "remote runners: status, labels, executions; revoke"},
    {"cluster", cr_cmd_cluster,
     "serve instances sharing the store and the duties each holds"},
    {"store", cr_cmd_store,
     "copy a SQLite installation into PostgreSQL (store migrate)"},
    {"runner", cr_cmd_runner,
     "run a remote runner host that claims executions from a server"},
};

static const size_t n_commands = sizeof commands / sizeof commands[0];

void cr_cli_errorf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("connrun: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int cr_cli_self_exe(char *buf, size_t len) {
  ssize_t n = readlink("/proc/self/exe", buf, len - 1);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  return 0;
}

int cr_cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return 1;
  return 0;
}

static void usage(FILE *out) {
  fprintf(out, "usage: connrun <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < n_commands; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "  %-10s %s\n", "help", "show help for a command");
  fprintf(out, "\noptions:\n  --version  print the version\n  -h, --help show "
               "this help\n\nexamples:\n"
               "  connrun config check configs/demo.yaml\n"
               "  connrun plugins list --plugin-dir build/plugins\n"
               "  connrun serve -c configs/demo.yaml\n"
               "  connrun sync -c configs/demo.yaml files-import\n"
               "  connrun runner --server https://connrun.example.com "
               "--labels dmz\n"
               "\nexit codes: 0 ok, 1 invalid input or failed job, 2 usage "
               "error, 3 runtime error\n");
}

static const struct command *find(const char *name) {
  for (size_t i = 0; i < n_commands; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return CR_EXIT_USAGE;
  }
  const char *name = argv[1];
  if (cr_config_set_default_plugin_dir(cr_cli_default_plugin_dir()) != 0) {
    cr_cli_errorf("%s", cr_strerror(CR_ENOMEM));
    return CR_EXIT_RUNTIME;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
    printf("connrun %s (plugin ABI %d.%d)\n", CR_VERSION, CR_PLUGIN_ABI_MAJOR,
           CR_PLUGIN_ABI_MINOR);
    return CR_EXIT_OK;
  }
  if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
    usage(stdout);
    return CR_EXIT_OK;
  }
  if (strcmp(name, "help") == 0) {
    if (argc < 3) {
      usage(stdout);
      return CR_EXIT_OK;
    }
    const struct command *c = find(argv[2]);
    if (c == NULL) {
      cr_cli_errorf("unknown command '%s'", argv[2]);
      return CR_EXIT_USAGE;
    }
    char *hargv[] = {argv[2], "--help", NULL};
    return c->run(2, hargv);
  }
  if (strcmp(name, "worker") == 0) /* internal, hidden from the help */
    return cr_cmd_worker(argc - 1, argv + 1);
  const struct command *c = find(name);
  if (c == NULL) {
    cr_cli_errorf("unknown command '%s' (see 'connrun help')", name);
    return CR_EXIT_USAGE;
  }
  return c->run(argc - 1, argv + 1);
}
