/* cli.h: the connrun tool's subcommands and shared CLI conventions.
 *
 * Each subcommand is `int cr_cmd_<name>(int argc, char **argv)` with argv[0]
 * being the subcommand's own name (e.g. "config"), and returns the process
 * exit status. Messages for people go to stderr; data (tables, JSON) to
 * stdout. The tool is a thin user of core/: it parses arguments, calls the
 * library and prints what it returns.
 */
#ifndef CR_CLI_H
#define CR_CLI_H

#include <stdio.h>

/* Documented exit codes (README "Exit codes"). */
enum {
  CR_EXIT_OK = 0, /* success */
  CR_EXIT_INVALID =
      1,             /* the input was checked and is invalid / the job failed */
  CR_EXIT_USAGE = 2, /* bad command line */
  CR_EXIT_RUNTIME = 3, /* could not run: unreadable file, store error, ... */
};

int cr_cmd_serve(int argc, char **argv);
int cr_cmd_config(int argc, char **argv);
int cr_cmd_plugins(int argc, char **argv);
int cr_cmd_sync(int argc, char **argv);
int cr_cmd_state(int argc, char **argv);
int cr_cmd_events(int argc, char **argv);
int cr_cmd_subscriptions(int argc, char **argv);
int cr_cmd_runners(int argc, char **argv);
int cr_cmd_cluster(int argc, char **argv);
int cr_cmd_store(int argc, char **argv);
int cr_cmd_works(int argc, char **argv);
int cr_cmd_cancel(int argc, char **argv);
int cr_cmd_auth(int argc, char **argv);
int cr_cmd_runner(int argc, char **argv);
/* `plugins new` and `plugins test`; argv[0] is "new" / "test". */
int cr_cmd_plugins_new(int argc, char **argv);
int cr_cmd_plugins_test(int argc, char **argv);
/* Internal: the worker child process (core/plugin/worker.h); not in the help.
 */
int cr_cmd_worker(int argc, char **argv);

/* Prints "connrun: <msg>\n" to stderr, printf-style. */
void cr_cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes the absolute path of the running connrun binary into buf (len
 * bytes): what `connrun worker` children are spawned from. Returns 0 or -1. */
int cr_cli_self_exe(char *buf, size_t len);

/* True when argv[i] is "-h" or "--help" for any i >= 1. */
int cr_cli_wants_help(int argc, char **argv);

#endif
