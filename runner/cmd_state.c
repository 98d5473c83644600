/* cmd_state.c: `connrun state show|history|set WORK_ID -c FILE`: a work's
 * committed incremental state (the plugin's cursor), its history with
 * record counts, and rolling it back or setting it by hand. */
#include "cli.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_common.h"
#include "config/config.h"
#include "control/control.h"
#include "store/store.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun state show    WORK_ID -c FILE [--json]\n"
        "       connrun state history WORK_ID -c FILE [--limit N] [--json]\n"
        "       connrun state set     WORK_ID -c FILE (--version N | "
        "--json-state "
        "TEXT | --reset)\n\n"
        "A work's incremental state is the cursor its plugin checkpointed,\n"
        "committed only after the destination durably took the records before\n"
        "it. Every commit is a new version; the history is kept.\n\n"
        "  show     the current (latest) version\n"
        "  history  versions newest first: time, records covered, execution\n"
        "  set      commit a new version: a copy of an earlier version\n"
        "           (--version N, a rollback), the given JSON (--json-state),\n"
        "           or no state at all (--reset: the next run starts over).\n"
        "           The change is recorded as a 'work updated' event.\n\n"
        "examples:\n"
        "  connrun state history files-import -c configs/demo.yaml\n"
        "  connrun state set files-import -c configs/demo.yaml --version 2\n\n"
        "exit codes: 0 ok, 1 no such work or version, 2 usage error, 3 store "
        "error\n",
        out);
}

struct opts {
  const char *verb, *work, *config, *json_state;
  int64_t version;
  size_t limit;
  int json, reset;
};

static int parse(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && has)
      o->config = argv[++i];
    else if (!strcmp(a, "--json"))
      o->json = 1;
    else if (!strcmp(a, "--reset"))
      o->reset = 1;
    else if (!strcmp(a, "--version") && has)
      o->version = strtoll(argv[++i], NULL, 10);
    else if (!strcmp(a, "--limit") && has)
      o->limit = (size_t)strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--json-state") && has)
      o->json_state = argv[++i];
    else if (a[0] == '-')
      return cr_cli_errorf("state: unknown option '%s'", a), -1;
    else if (o->verb == NULL)
      o->verb = a;
    else if (o->work == NULL)
      o->work = a;
    else
      return cr_cli_errorf("state: unexpected argument '%s'", a), -1;
  }
  if (o->verb == NULL || o->work == NULL || o->config == NULL)
    return cr_cli_errorf("state: need a command, WORK_ID and -c FILE (see "
                         "'connrun state --help')"),
           -1;
  if (strcmp(o->verb, "set") == 0 &&
      (o->version > 0) + (o->json_state != NULL) + o->reset != 1)
    return cr_cli_errorf("state set: give exactly one of --version N, "
                         "--json-state TEXT, --reset"),
           -1;
  return 0;
}

static json_t *rec_json(const struct cr_sync_state_rec *r) {
  char at[32];
  cr_cli_fmt_time(r->committed_at, at, sizeof at);
  json_t *state = r->state_json ? json_loads(r->state_json, 0, NULL) : NULL;
  return json_pack("{s:s, s:I, s:o, s:I, s:s, s:I, s:s?}", "work_id",
                   r->work_id, "version", (json_int_t)r->version, "state",
                   state ? state : json_null(), "records",
                   (json_int_t)r->records, "committed_at", at, "execution_id",
                   (json_int_t)r->execution_id, "note", r->note);
}

static void print_rec(const struct cr_sync_state_rec *r, int json) {
  if (json) {
    json_t *j = rec_json(r);
    json_dumpf(j, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(j);
    return;
  }
  char at[32];
  cr_cli_fmt_time(r->committed_at, at, sizeof at);
  printf("version %" PRId64 "  %s  %" PRId64 " records  execution %s%" PRId64
         "%s%s\n  %s\n",
         r->version, at, r->records, r->execution_id ? "" : "-",
         r->execution_id, r->note ? "  " : "", r->note ? r->note : "",
         r->state_json ? r->state_json : "(no state)");
}

static int show(const struct cr_ctl *c, const struct opts *o) {
  cr_store *s = c->store;
  struct cr_sync_state_rec r;
  memset(&r, 0, sizeof r);
  int rc = cr_store_sync_state_latest(s, o->work, &r);
  if (rc == CR_ENOENT) {
    fprintf(stderr, "work %s has no committed state yet\n", o->work);
    return CR_EXIT_OK;
  }
  if (rc != 0)
    return rc;
  print_rec(&r, o->json);
  cr_sync_state_rec_clear(&r);
  return 0;
}

static int history(const struct cr_ctl *c, const struct opts *o) {
  cr_store *s = c->store;
  struct cr_sync_state_rec *list = NULL;
  size_t n = 0;
  int rc = cr_store_sync_state_history(s, o->work, o->limit, &list, &n);
  for (size_t i = 0; rc == 0 && i < n; i++)
    print_rec(&list[i], o->json);
  if (rc == 0 && n == 0 && !o->json)
    fprintf(stderr, "work %s has no committed state yet\n", o->work);
  cr_sync_state_rec_free_list(list, n);
  return rc;
}

static int set(const struct cr_ctl *c, const struct opts *o) {
  struct cr_ctl_state_change ch = {.version = o->version > 0 ? o->version : 0,
                                   .state_json = o->json_state,
                                   .reset = o->reset};
  int64_t version = 0;
  int rc = cr_ctl_state_set(c, o->work, &ch, &version);
  if (rc == 0 && ch.version > 0)
    printf("work %s: state version %" PRId64
           " committed (set by operator: rollback to version %" PRId64 ")\n",
           o->work, version, ch.version);
  else if (rc == 0)
    printf("work %s: state version %" PRId64
           " committed (set by operator: %s)\n",
           o->work, version, o->reset ? "reset" : "given state");
  else if (rc == CR_ENOENT)
    cr_cli_errorf("state set: work %s has no version %" PRId64, o->work,
                  o->version);
  else if (rc == CR_EINVAL)
    cr_cli_errorf("state set: not valid JSON, or no such work");
  return rc;
}

int cr_cmd_state(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  struct opts o;
  if (parse(argc, argv, &o) != 0)
    return CR_EXIT_USAGE;
  int (*fn)(const struct cr_ctl *, const struct opts *) =
      !strcmp(o.verb, "show")      ? show
      : !strcmp(o.verb, "history") ? history
      : !strcmp(o.verb, "set")     ? set
                                   : NULL;
  if (fn == NULL) {
    cr_cli_errorf("state: unknown command '%s' (show, history, set)", o.verb);
    return CR_EXIT_USAGE;
  }
  cr_store *s = NULL;
  cr_config *cfg = NULL;
  int rc = cr_cli_store_open("state", o.config, &s, &cfg);
  if (rc != CR_EXIT_OK)
    return rc;
  if (cr_config_find_work(cfg, o.work) == NULL) {
    cr_cli_errorf("state: no work '%s' in %s", o.work, o.config);
    cr_config_free(cfg);
    cr_store_close(s);
    return CR_EXIT_INVALID;
  }
  struct cr_ctl c = {.store = s, .cfg = cfg, .actor = "cli"};
  rc = fn(&c, &o);
  cr_config_free(cfg);
  cr_store_close(s);
  if (rc == 0)
    return CR_EXIT_OK;
  if (rc == CR_ENOENT || rc == CR_EINVAL)
    return CR_EXIT_INVALID;
  cr_cli_errorf("state: %s", cr_strerror(rc));
  return CR_EXIT_RUNTIME;
}
