/* cmd_serve.c: `connrun serve -c FILE`: runs the daemon in the foreground,
 * logging to stderr, until SIGINT/SIGTERM (SIGHUP reloads). */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_common.h"
#include "daemon/daemon.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs(
      "usage: connrun serve -c FILE [--grace SECONDS] [--listen HOST:PORT]\n"
      "                     [--no-api] [--log-level debug|info|warn|error]\n\n"
      "Runs the connrun daemon in the foreground: loads and checks the\n"
      "configuration, loads the provider plugins, opens the store\n"
      "(host.store, a PostgreSQL URL, or SQLite under host.data_dir),\n"
      "applies the configuration (each change recorded as an event) and\n"
      "health-checks every authorization at start and every\n"
      "host.health_check_interval. Logs go to stderr.\n\n"
      "Several instances may share one store (see connrun cluster): each\n"
      "serves the API and claims executions; the work that must happen\n"
      "once is split into duties, one holder each.\n\n"
      "It also schedules the works and runs their executions with a\n"
      "local runner (runner.concurrency at once), each in a pooled\n"
      "`connrun worker` process unless the work says isolation: inline.\n\n"
      "It serves the REST API (/v1/..., /metrics, /healthz, /readyz) on\n"
      "host.listen (default 127.0.0.1:8470) with the tokens of\n"
      "host.api_tokens.\n\n"
      "options:\n"
      "  --listen HOST:PORT  serve the API there instead of host.listen\n"
      "                   (port 0: any free port, printed in the log)\n"
      "  --no-api         do not serve the API\n"
      "  --grace SECONDS  on stop, how long running executions may go on\n"
      "                   before they are stopped and put back for a retry\n"
      "                   (default 30)\n\n"
      "signals: SIGINT/SIGTERM stop cleanly; SIGHUP reloads the "
      "configuration\n(an invalid one is reported and the running one "
      "kept).\n\n"
      "examples:\n"
      "  connrun serve -c configs/demo.yaml\n"
      "  connrun serve -c /etc/connrun/connrun.yaml --log-level debug\n\n"
      "exit codes: 0 stopped cleanly, 1 invalid configuration, 2 usage "
      "error,\n            3 runtime error (store, loop)\n",
      out);
}

int cr_cmd_serve(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  struct cr_daemon_options o = {.log = cr_cli_log_stderr,
                                .log_min_level = CR_LOG_INFO,
                                .handle_signals = 1,
                                .serve_api = 1};
  for (int i = 1; i < argc; i++) {
    if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
        i + 1 < argc) {
      o.config_path = argv[++i];
    } else if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc &&
               atoll(argv[i + 1]) > 0) {
      o.shutdown_grace_ms = atoll(argv[++i]) * 1000;
    } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      o.api_listen = argv[++i];
    } else if (strcmp(argv[i], "--no-api") == 0) {
      o.serve_api = 0;
    } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc &&
               cr_cli_log_level(argv[i + 1]) >= 0) {
      o.log_min_level = cr_cli_log_level(argv[++i]);
    } else {
      cr_cli_errorf("serve: unexpected argument '%s' (see 'connrun serve "
                    "--help')",
                    argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  char exe[PATH_MAX];
  if (cr_cli_self_exe(exe, sizeof exe) == 0)
    o.worker_exe = exe;
  if (o.config_path == NULL) {
    cr_cli_errorf("serve: -c FILE is required (see 'connrun serve --help')");
    return CR_EXIT_USAGE;
  }
  cr_daemon *d = NULL;
  int rc = cr_cli_daemon_open("serve", &o, &d);
  if (rc != CR_EXIT_OK)
    return rc;
  rc = cr_daemon_run(d);
  cr_daemon_free(d);
  return rc == 0 ? CR_EXIT_OK : CR_EXIT_RUNTIME;
}
