/* cmd_works.c: `connrun works -c FILE [WORK_ID]`: the works with their
 * status (Active / Error / Disabled), last execution and next run (the
 * "upcoming collection"); with WORK_ID, its executions and every state
 * transition with its time and reason. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_common.h"
#include "config/config.h"
#include "store/store.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun works -c FILE [WORK_ID] [--limit N]\n\n"
        "Without WORK_ID: every work with its status (Active, Error when its\n"
        "last execution failed, Disabled), its last execution and its next\n"
        "scheduled run. With WORK_ID: its newest executions (default 10) and\n"
        "each one's state transitions (time, from, to, reason).\n\n"
        "examples:\n"
        "  connrun works -c configs/demo.yaml\n"
        "  connrun works -c configs/demo.yaml files-import\n\n"
        "exit codes: 0 ok, 1 invalid configuration or unknown work, 2 usage "
        "error, 3 store error\n",
        out);
}

static int list_works(cr_store *s) {
  struct cr_work_rec *w = NULL;
  size_t n = 0;
  int rc = cr_store_work_list(s, &w, &n);
  printf("%-20s %-10s %-9s %-10s %-21s %s\n", "WORK", "PROVIDER", "STATUS",
         "LAST", "LAST AT", "NEXT RUN");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    struct cr_exec_rec *e = NULL;
    size_t ne = 0;
    rc = cr_store_exec_list(s, w[i].id, 1, &e, &ne);
    const char *last = ne ? e[0].state : "-";
    const char *status = !w[i].enabled                             ? "Disabled"
                         : ne && strcmp(e[0].state, "failed") == 0 ? "Error"
                                                                   : "Active";
    char at[32], next[32];
    cr_cli_fmt_time(ne ? e[0].updated_at : 0, at, sizeof at);
    cr_cli_fmt_time(w[i].next_run_at, next, sizeof next);
    printf("%-20s %-10s %-9s %-10s %-21s %s\n", w[i].id, w[i].provider, status,
           last, at, next);
    cr_exec_rec_free_list(e, ne);
  }
  cr_work_rec_free_list(w, n);
  return rc;
}

static int show_work(cr_store *s, const char *id, size_t limit) {
  struct cr_exec_rec *e = NULL;
  size_t n = 0;
  int rc = cr_store_exec_list(s, id, limit, &e, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    printf("execution %" PRId64 "  %s  attempt %d%s%s%s%s\n", e[i].id,
           e[i].state, e[i].attempt, e[i].error ? "  " : "",
           e[i].error_class ? e[i].error_class : "", e[i].error ? ": " : "",
           e[i].error ? e[i].error : "");
    struct cr_exec_transition_rec *t = NULL;
    size_t nt = 0;
    rc = cr_store_exec_transitions(s, e[i].id, &t, &nt);
    for (size_t j = 0; rc == 0 && j < nt; j++) {
      char at[32];
      cr_cli_fmt_time(t[j].at, at, sizeof at);
      printf("  %s  %-9s -> %-9s %s\n", at,
             t[j].from_state ? t[j].from_state : "", t[j].to_state,
             t[j].reason ? t[j].reason : "");
    }
    cr_exec_transition_free_list(t, nt);
  }
  if (rc == 0 && n == 0)
    printf("work %s has no executions yet\n", id);
  cr_exec_rec_free_list(e, n);
  return rc;
}

int cr_cmd_works(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  const char *file = NULL, *work = NULL;
  size_t limit = 10;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
      limit = (size_t)atoi(argv[++i]);
    else if (argv[i][0] != '-' && work == NULL)
      work = argv[i];
    else {
      cr_cli_errorf("works: unexpected argument '%s'", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  if (file == NULL) {
    cr_cli_errorf("works: -c FILE is required (see 'connrun works --help')");
    return CR_EXIT_USAGE;
  }
  cr_store *s = NULL;
  cr_config *cfg = NULL;
  int rc = cr_cli_store_open("works", file, &s, &cfg);
  if (rc != CR_EXIT_OK)
    return rc;
  int known = work == NULL || cr_config_find_work(cfg, work) != NULL;
  cr_config_free(cfg);
  if (!known) {
    cr_cli_errorf("works: no work '%s' in %s", work, file);
    cr_store_close(s);
    return CR_EXIT_INVALID;
  }
  rc = work ? show_work(s, work, limit) : list_works(s);
  cr_store_close(s);
  if (rc != 0)
    cr_cli_errorf("works: %s", cr_strerror(rc));
  return rc == 0 ? CR_EXIT_OK : CR_EXIT_RUNTIME;
}

/* `connrun cancel -c FILE EXECUTION_ID`: a person cancels an execution.
 * A runner still running it loses its lease at its next report and stops
 * without writing anything more. */
int cr_cmd_cancel(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    fputs("usage: connrun cancel -c FILE EXECUTION_ID\n\n"
          "Cancels an execution that is not final yet (Created, Pending or\n"
          "Executing). A runner still running it stops at its next report\n"
          "without committing anything more.\n\n"
          "exit codes: 0 cancelled, 1 no such execution or already final, 2 "
          "usage error, 3 store error\n",
          stdout);
    return CR_EXIT_OK;
  }
  const char *file = NULL;
  long long id = 0;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (argv[i][0] != '-' && id == 0 && atoll(argv[i]) > 0)
      id = atoll(argv[i]);
    else {
      cr_cli_errorf("cancel: unexpected argument '%s'", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  if (file == NULL || id == 0) {
    cr_cli_errorf("cancel: need -c FILE and EXECUTION_ID");
    return CR_EXIT_USAGE;
  }
  cr_store *s = NULL;
  int rc = cr_cli_store_open("cancel", file, &s, NULL);
  if (rc != CR_EXIT_OK)
    return rc;
  rc = cr_store_exec_transition(s, id, CR_EXEC_EPOCH_ANY, "cancelled",
                                "cancelled by a person (connrun cancel)", NULL,
                                NULL);
  if (rc == 0)
    printf("execution %lld cancelled\n", id);
  else
    cr_cli_errorf("cancel: execution %lld: %s", id,
                  rc == CR_ESTATE ? "already final" : cr_strerror(rc));
  cr_store_close(s);
  return rc == 0                              ? CR_EXIT_OK
         : rc == CR_ENOENT || rc == CR_ESTATE ? CR_EXIT_INVALID
                                              : CR_EXIT_RUNTIME;
}
