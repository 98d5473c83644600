/* cmd_works.c: `connrun works -c FILE [WORK_ID]`: the works with their
 * status (Active / Error / Disabled), last execution and next run (the
 * "upcoming collection"); with WORK_ID, its executions and every state
 * transition with its time and reason. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_client.h"
#include "cli_common.h"
#include "config/config.h"
#include "store/store.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun works (-c FILE | --server URL) [WORK_ID] [--limit "
        "N]\n\n"
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

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "-";
}

/* `works --server`: the same tables from the REST API. */
static int remote_works(const char *server, const char *work, size_t limit) {
  json_t *items = NULL;
  char path[600];
  if (work == NULL) {
    int ex = cr_cli_get_all("works", server, "/v1/works?limit=1000", &items);
    if (ex != CR_EXIT_OK)
      return ex;
    printf("%-20s %-10s %-9s %-10s %-24s %s\n", "WORK", "PROVIDER", "STATUS",
           "LAST", "LAST AT", "NEXT RUN");
    size_t i;
    const json_t *w;
    json_array_foreach(items, i, w) {
      const json_t *e = json_object_get(w, "last_execution");
      printf("%-20s %-10s %-9s %-10s %-24s %s\n", jstr(w, "id"),
             jstr(w, "provider"), jstr(w, "status"), jstr(e, "state"),
             jstr(e, "updated_at"), jstr(w, "next_run_at"));
    }
    json_decref(items);
    return CR_EXIT_OK;
  }
  snprintf(path, sizeof path, "/v1/works/%s/executions?limit=%zu", work, limit);
  long status = 0;
  json_t *page = NULL;
  if (cr_cli_call("works", server, "GET", path, NULL, &status, &page) != 0)
    return CR_EXIT_RUNTIME;
  if (status != 200) {
    int ex = cr_cli_api_error("works", status, page);
    json_decref(page);
    return ex;
  }
  size_t i;
  const json_t *e;
  json_array_foreach(json_object_get(page, "items"), i, e) {
    printf("execution %lld  %s  attempt %lld%s%s%s%s\n",
           (long long)json_integer_value(json_object_get(e, "id")),
           jstr(e, "state"),
           (long long)json_integer_value(json_object_get(e, "attempt")),
           json_is_string(json_object_get(e, "error")) ? "  " : "",
           json_is_string(json_object_get(e, "error_class"))
               ? jstr(e, "error_class")
               : "",
           json_is_string(json_object_get(e, "error")) ? ": " : "",
           json_is_string(json_object_get(e, "error")) ? jstr(e, "error") : "");
    json_t *full = NULL;
    snprintf(path, sizeof path, "/v1/executions/%lld",
             (long long)json_integer_value(json_object_get(e, "id")));
    if (cr_cli_call("works", server, "GET", path, NULL, &status, &full) != 0)
      break;
    size_t j;
    const json_t *t;
    json_array_foreach(json_object_get(full, "transitions"), j, t) printf(
        "  %s  %-9s -> %-9s %s\n", jstr(t, "at"),
        json_is_string(json_object_get(t, "from")) ? jstr(t, "from") : "",
        jstr(t, "to"), jstr(t, "reason"));
    json_decref(full);
  }
  if (json_array_size(json_object_get(page, "items")) == 0)
    printf("work %s has no executions yet\n", work);
  json_decref(page);
  return CR_EXIT_OK;
}

int cr_cmd_works(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  const char *file = NULL, *work = NULL, *server = NULL;
  size_t limit = 10;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--server") && i + 1 < argc)
      server = argv[++i];
    else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
      limit = (size_t)atoi(argv[++i]);
    else if (argv[i][0] != '-' && work == NULL)
      work = argv[i];
    else {
      cr_cli_errorf("works: unexpected argument '%s'", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  if ((server = cr_cli_server(server)) != NULL && file == NULL)
    return remote_works(server, work, limit);
  if (file == NULL) {
    cr_cli_errorf("works: -c FILE or --server URL is required (see 'connrun "
                  "works --help')");
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
  const char *file = NULL, *server = NULL;
  long long id = 0;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--server") && i + 1 < argc)
      server = argv[++i];
    else if (argv[i][0] != '-' && id == 0 && atoll(argv[i]) > 0)
      id = atoll(argv[i]);
    else {
      cr_cli_errorf("cancel: unexpected argument '%s'", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  server = cr_cli_server(server);
  if ((file == NULL && server == NULL) || id == 0) {
    cr_cli_errorf("cancel: need -c FILE (or --server URL) and EXECUTION_ID");
    return CR_EXIT_USAGE;
  }
  if (file == NULL) {
    char path[64];
    snprintf(path, sizeof path, "/v1/executions/%lld/cancel", id);
    long status = 0;
    json_t *out = NULL;
    if (cr_cli_call("cancel", server, "POST", path, NULL, &status, &out) != 0)
      return CR_EXIT_RUNTIME;
    int ex =
        status == 200 ? CR_EXIT_OK : cr_cli_api_error("cancel", status, out);
    if (ex == CR_EXIT_OK)
      printf("execution %lld cancelled\n", id);
    json_decref(out);
    return ex;
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
