/* cmd_sync.c: `connrun sync -c FILE WORK_ID`: runs one execution of a work
 * in the foreground (claimed as runner "cli-<pid>", retried after the
 * backoff while attempts remain) and shows its progress: a live line on a
 * terminal, plain lines otherwise. */
#include "cli.h"

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "daemon/daemon.h"
#include "exec/exec_run.h"
#include "exec/scheduler.h"
#include "plugin/worker_pool.h"
#include "util/error.h"

static atomic_int stop_flag;

static void help(FILE *out) {
  fputs("usage: connrun sync -c FILE WORK_ID [--quiet]\n\n"
        "Runs one execution of WORK_ID now, in the foreground, exactly as\n"
        "the daemon would (same store, destination, checkpoints, events,\n"
        "isolation and retries), and shows records per stream and the rate.\n"
        "If the work already has an execution waiting (created), that one is\n"
        "run; if one is running elsewhere, sync refuses.\n\n"
        "SIGINT/SIGTERM stop the plugin; the execution goes back to created\n"
        "and is retried by the daemon from the last committed checkpoint.\n\n"
        "examples:\n"
        "  connrun sync -c configs/demo.yaml files-import\n\n"
        "exit codes: 0 completed, 1 failed (reason on stderr), 2 usage error,"
        "\n            3 could not run (config, store)\n",
        out);
}

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&stop_flag, 1);
}

static void log_stderr(void *ud, int level, const char *msg) {
  (void)ud;
  fprintf(stderr, "%-5s %s\n", cr_log_level_name(level), msg);
}

struct view {
  int tty;
  const char *work;
};

static void progress(void *ud, const struct cr_exec_progress *p) {
  struct view *v = ud;
  double secs = (double)p->elapsed_ms / 1000.0;
  double rate = secs > 0 ? (double)p->records / secs : 0;
  if (v->tty)
    fprintf(stderr,
            "\r%s: %" PRId64 " records (%s%s%" PRId64 "), %" PRId64
            " checkpoints, %.0f records/s   ",
            v->work, p->records, p->stream ? p->stream : "",
            p->stream ? " " : "", p->stream ? p->stream_records : 0,
            p->checkpoints, rate);
  else
    fprintf(stderr,
            "%s: %" PRId64 " records, %" PRId64
            " checkpoints, %.0f records/s\n",
            v->work, p->records, p->checkpoints, rate);
}

static int parse(int argc, char **argv, const char **cfg, const char **work,
                 int *quiet) {
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      *cfg = argv[++i];
    else if (!strcmp(argv[i], "--quiet"))
      *quiet = 1;
    else if (argv[i][0] != '-' && *work == NULL)
      *work = argv[i];
    else
      return cr_cli_errorf("sync: unexpected argument '%s'", argv[i]), -1;
  }
  if (*cfg == NULL || *work == NULL)
    return cr_cli_errorf("sync: need -c FILE and WORK_ID (see 'connrun sync "
                         "--help')"),
           -1;
  return 0;
}

static int run(cr_daemon *d, const char *work, int quiet) {
  char exe[PATH_MAX], runner[64];
  if (cr_cli_self_exe(exe, sizeof exe) != 0)
    return CR_EIO;
  snprintf(runner, sizeof runner, "cli-%ld", (long)getpid());
  cr_worker_pool *pool = NULL;
  struct cr_worker_pool_opts po = {.exe = exe, .max_idle = 1};
  int rc = cr_worker_pool_new(&po, &pool);
  if (rc != 0)
    return rc;
  struct view v = {isatty(2), work};
  struct cr_exec_env env = {
      .cfg = cr_daemon_config(d),
      .plugins = cr_daemon_plugins(d),
      .pool = pool,
      .store = cr_daemon_store(d),
      .log = log_stderr,
      .log_min_level = quiet ? CR_LOG_WARN : CR_LOG_INFO,
      .stop = &stop_flag,
      .progress = quiet ? NULL : progress,
      .progress_ud = &v,
  };
  int64_t id = 0;
  int existing = 0;
  rc = cr_scheduler_trigger(env.store, work, &id, &existing);
  struct cr_exec_outcome out;
  memset(&out, 0, sizeof out);
  if (rc == 0)
    rc = cr_exec_run_to_end(&env, id, runner, &out);
  if (v.tty && !quiet)
    fputc('\n', stderr);
  cr_worker_pool_free(pool);
  if (rc == CR_EBUSY) {
    cr_cli_errorf("sync: work %s has execution %" PRId64
                  " running elsewhere; try again when it ends",
                  work, id);
    return rc;
  }
  if (rc != 0)
    return rc;
  if (out.state == CR_EXEC_COMPLETED) {
    printf("execution %" PRId64 " of %s: Completed, %" PRId64
           " records, %" PRId64 " checkpoints\n",
           id, work, out.records, out.checkpoints);
    return 0;
  }
  printf("execution %" PRId64 " of %s: %s (%s): %s\n", id, work,
         out.state == CR_EXEC_FAILED ? "Failed" : "Stopped",
         out.error_class[0] ? out.error_class : "stopped", out.error);
  return CR_ECANCELED;
}

int cr_cmd_sync(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  const char *cfg = NULL, *work = NULL;
  int quiet = 0;
  if (parse(argc, argv, &cfg, &work, &quiet) != 0)
    return CR_EXIT_USAGE;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);
  struct cr_daemon_options o = {.config_path = cfg,
                                .log = log_stderr,
                                .log_min_level =
                                    quiet ? CR_LOG_WARN : CR_LOG_INFO};
  cr_daemon *d = NULL;
  int rc = cr_cli_daemon_open("sync", &o, &d);
  if (rc != CR_EXIT_OK)
    return rc;
  if (cr_config_find_work(cr_daemon_config(d), work) == NULL) {
    cr_cli_errorf("sync: no work '%s' in %s", work, cfg);
    cr_daemon_free(d);
    return CR_EXIT_INVALID;
  }
  rc = run(d, work, quiet);
  cr_daemon_free(d);
  if (rc == 0)
    return CR_EXIT_OK;
  if (rc == CR_ECANCELED || rc == CR_EBUSY)
    return CR_EXIT_INVALID;
  cr_cli_errorf("sync: %s", cr_strerror(rc));
  return CR_EXIT_RUNTIME;
}
