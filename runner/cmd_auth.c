/* cmd_auth.c: `connrun auth list|show|check|rename|describe|delete
 * [--force]`: the Authorization Summary in a terminal, locally (-c FILE: the
 * same control calls the REST API makes) or against a running server
 * (--server URL or CONNRUN_SERVER, token from CONNRUN_TOKEN). Both print the
 * same tables from the same JSON views; --json prints the views themselves. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli_common.h"
#include "control/control.h"
#include "control/ctl_objects.h"
#include "plugin/plugin_host.h"
#include "util/clock.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun auth list [-c FILE | --server URL] [--json]\n"
        "       connrun auth show ID [-c FILE | --server URL] [--json]\n"
        "       connrun auth check ID [-c FILE | --server URL]\n"
        "       connrun auth rename ID NAME [-c FILE | --server URL]\n"
        "       connrun auth describe ID TEXT [-c FILE | --server URL]\n"
        "       connrun auth delete ID [--force] [-c FILE | --server URL]\n\n"
        "The authorizations with their health (Healthy, Unhealthy, Unknown)\n"
        "and reason; `show` prints one's summary: provider, method, owner,\n"
        "dates, the last 24 hours of provider requests as a sparkline, and\n"
        "the works that use it. `check` runs a health check now. `rename`,\n"
        "`describe` and `delete` change authorizations created through the\n"
        "API; one declared in a configuration file is changed there.\n"
        "`delete` refuses an authorization works still use, naming them;\n"
        "--force disables those works (API-created ones only) and deletes\n"
        "it, in one transaction.\n\n"
        "With --server URL (or CONNRUN_SERVER) the command talks to a\n"
        "running `connrun serve`, with the token in CONNRUN_TOKEN.\n\n"
        "examples:\n"
        "  connrun auth list -c configs/demo.yaml\n"
        "  CONNRUN_TOKEN=... connrun auth show example-good --server "
        "http://127.0.0.1:8470\n\n"
        "exit codes: 0 ok, 1 unknown or refused, 2 usage error, 3 could not "
        "run\n",
        out);
}

/* ---- Printing (the same for local and remote) ---- */

static const char *str(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "-";
}

static void print_list(const json_t *items) {
  printf("%-24s %-12s %-10s %-10s %-24s %s\n", "AUTHORIZATION", "PROVIDER",
         "METHOD", "HEALTH", "UPDATED", "REASON");
  size_t i;
  const json_t *a;
  json_array_foreach(items, i, a) {
    const json_t *h = json_object_get(a, "health");
    printf("%-24s %-12s %-10s %-10s %-24s %s\n", str(a, "id"),
           str(json_object_get(a, "provider"), "id"), str(a, "method"),
           str(h, "status"), str(a, "updated_at"), str(h, "reason"));
  }
}

/* ▁▂▃▄▅▆▇█ of the requests per hour over the last 24 hours. */
static void sparkline(const json_t *metrics, int64_t now) {
  static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  int64_t v[24] = {0}, max = 0, total = 0, errors = 0;
  int64_t start = (now / 3600000 - 23) * 3600000;
  size_t i;
  const json_t *p;
  json_array_foreach(json_object_get(metrics, "points"), i, p) {
    const char *at = str(p, "start");
    int64_t t = 0;
    if (cr_cli_parse_since(at, &t) != 0 || t < start)
      continue;
    int64_t k = (t - start) / 3600000;
    if (k < 0 || k > 23)
      continue;
    v[k] += json_integer_value(json_object_get(p, "requests"));
    total += json_integer_value(json_object_get(p, "requests"));
    errors += json_integer_value(json_object_get(p, "errors"));
  }
  for (int k = 0; k < 24; k++)
    max = v[k] > max ? v[k] : max;
  printf("activity (24h): ");
  for (int k = 0; k < 24; k++)
    fputs(bars[max ? (v[k] * 7 + max - 1) / max : 0], stdout);
  printf("  %lld requests, %lld errors\n", (long long)total, (long long)errors);
}

static void print_jobs(const char *title, const json_t *jobs) {
  printf("%s:%s\n", title, json_array_size(jobs) ? "" : " none");
  size_t i;
  const json_t *j;
  json_array_foreach(jobs, i, j)
      printf("  %-24s %-7s %-9s %s\n", str(j, "id"), str(j, "type"),
             str(j, "status"), str(j, "name"));
}

static void print_summary(const json_t *a, const json_t *metrics) {
  const json_t *h = json_object_get(a, "health");
  printf("%s (%s)\n", str(a, "name"), str(a, "id"));
  printf("health:      %s: %s\n", str(h, "status"), str(h, "reason"));
  printf("checked:     %s (next %s)\n", str(h, "checked_at"),
         str(h, "next_check_at"));
  const json_t *p = json_object_get(a, "provider");
  printf("provider:    %s (%s)\n", str(p, "display_name"), str(p, "id"));
  printf("method:      %s\nowner:       %s\n", str(a, "method"),
         str(a, "owner"));
  printf("created:     %s\nupdated:     %s\n", str(a, "created_at"),
         str(a, "updated_at"));
  printf("managed by:  %s%s%s\n", str(a, "managed_by"),
         json_is_string(json_object_get(a, "declared_at")) ? " at " : "",
         json_is_string(json_object_get(a, "declared_at"))
             ? str(a, "declared_at")
             : "");
  if (json_is_string(json_object_get(a, "description")))
    printf("description: %s\n", str(a, "description"));
  sparkline(metrics, cr__now_ms());
  print_jobs("associated jobs", json_object_get(a, "jobs"));
  print_jobs("associated exports", json_object_get(a, "exports"));
}

/* ---- Local: the control calls ---- */

struct local {
  cr_store *store;
  cr_config *cfg;
  cr_plugin_host *plugins;
  struct cr_ctl ctl;
};

static void refused(void *ud, const char *path, const char *reason) {
  (void)ud;
  (void)path;
  (void)reason;
}

static int local_open(const char *file, struct local *l) {
  memset(l, 0, sizeof *l);
  cr_config *plain = NULL;
  int ex = cr_cli_store_open("auth", file, &l->store, &plain);
  if (ex != CR_EXIT_OK)
    return ex;
  cr_plugin_host_new(NULL, &l->plugins);
  for (size_t i = 0; l->plugins && i < plain->host.n_plugin_dirs; i++)
    cr_plugin_host_load_dir(l->plugins, plain->host.plugin_dirs[i], refused,
                            NULL);
  cr_diags d;
  cr_diags_init(&d);
  int rc = cr_ctl_config_load(l->store, file, l->plugins, 0, &l->cfg, &d);
  cr_diags_free(&d);
  cr_config_free(plain);
  if (rc != 0) {
    cr_cli_errorf("auth: %s: %s (see 'connrun config check')", file,
                  cr_strerror(rc));
    return CR_EXIT_INVALID;
  }
  l->ctl = (struct cr_ctl){
      .store = l->store, .cfg = l->cfg, .plugins = l->plugins, .actor = "cli"};
  return CR_EXIT_OK;
}

static void local_close(struct local *l) {
  cr_config_free(l->cfg);
  cr_store_close(l->store);
  cr_plugin_host_free(l->plugins);
}

static int local_error(int rc, const char *id, const char *msg) {
  if (rc == CR_ENOENT)
    cr_cli_errorf("auth: no authorization '%s'", id);
  else if (rc == CR_EPERM)
    cr_cli_errorf("auth: '%s' is declared in %s: change it there", id, msg);
  else if (rc == CR_EBUSY)
    cr_cli_errorf("auth: '%s' is used by works %s (--force disables them)", id,
                  msg);
  else if (rc == CR_ESTATE)
    cr_cli_errorf("auth: '%s' is used by %s: change it there first", id, msg);
  else
    cr_cli_errorf("auth: %s%s%s", cr_strerror(rc), msg[0] ? ": " : "", msg);
  return rc == CR_ENOENT || rc == CR_EPERM || rc == CR_EBUSY ||
                 rc == CR_ECONFIG || rc == CR_ESTATE
             ? CR_EXIT_INVALID
             : CR_EXIT_RUNTIME;
}

/* Runs one action locally into *out (a view, or NULL). arg: the value of
 * rename / describe, or non-NULL for delete --force. */
static int local_run(const char *file, const char *action, const char *id,
                     const char *arg, json_t **out, json_t **metrics) {
  struct local l;
  int ex = local_open(file, &l);
  if (ex != CR_EXIT_OK)
    return ex;
  char msg[1024] = "";
  int rc = 0;
  if (!strcmp(action, "list"))
    rc = cr_ctl_auth_list(&l.ctl, NULL, 100000, NULL, NULL, out, NULL);
  else if (!strcmp(action, "show")) {
    rc = cr_ctl_auth_view(&l.ctl, id, 1, NULL, 0, out);
    if (rc == 0)
      rc = cr_ctl_auth_metrics(
          &l.ctl, id, "hour", cr__now_ms() - INT64_C(24) * 3600000, 0, metrics);
  } else if (!strcmp(action, "check"))
    rc = cr_ctl_auth_check(&l.ctl, id, NULL, out);
  else if (!strcmp(action, "delete")) {
    char blocker[130];
    rc = cr_ctl_auth_remove(&l.ctl, id, arg != NULL, msg, sizeof msg, blocker);
    if (rc == CR_EPERM && blocker[0]) { /* a work of the file uses it */
      char where[300];
      snprintf(where, sizeof where, "%.299s", msg);
      snprintf(msg, sizeof msg, "work '%s', declared in %s", blocker, where);
      rc = CR_ESTATE;
    }
  } else
    rc =
        cr_ctl_auth_rename(&l.ctl, id, !strcmp(action, "rename") ? arg : NULL,
                           !strcmp(action, "describe") ? arg : NULL, NULL, msg);
  local_close(&l);
  return rc == 0 ? CR_EXIT_OK : local_error(rc, id ? id : "", msg);
}

/* ---- Remote: the REST API ---- */

static int remote_run(const char *server, const char *action, const char *id,
                      const char *arg, json_t **out, json_t **metrics) {
  if (!strcmp(action, "list"))
    return cr_cli_get_all("auth", server, "/v1/authorizations?limit=1000", out);
  char path[600];
  const char *method = "GET";
  json_t *body = NULL;
  snprintf(path, sizeof path, "/v1/authorizations/%s", id);
  if (!strcmp(action, "check")) {
    method = "POST";
    strcat(path, "/check");
  } else if (!strcmp(action, "delete")) {
    method = "DELETE";
    if (arg != NULL)
      strcat(path, "?force=true");
  } else if (strcmp(action, "show") != 0) {
    method = "PATCH";
    body = json_pack("{s:s}",
                     !strcmp(action, "rename") ? "name" : "description", arg);
  }
  long status = 0;
  int rc = cr_cli_call("auth", server, method, path, body, &status, out);
  json_decref(body);
  if (rc != 0)
    return CR_EXIT_RUNTIME;
  if (status >= 300) {
    int ex = cr_cli_api_error("auth", status, *out);
    json_decref(*out);
    *out = NULL;
    return ex;
  }
  if (!strcmp(action, "show")) {
    char mp[700], since[40];
    int64_t from = cr__now_ms() - INT64_C(24) * 3600000;
    snprintf(since, sizeof since, "%lld", (long long)from);
    snprintf(mp, sizeof mp, "%s/metrics?granularity=hour&from=%s", path, since);
    if (cr_cli_call("auth", server, "GET", mp, NULL, &status, metrics) != 0)
      return CR_EXIT_RUNTIME;
  }
  return CR_EXIT_OK;
}

static int wants_arg(const char *action) {
  return !strcmp(action, "rename") || !strcmp(action, "describe");
}

int cr_cmd_auth(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv) || argc < 2) {
    help(argc < 2 ? stderr : stdout);
    return argc < 2 ? CR_EXIT_USAGE : CR_EXIT_OK;
  }
  const char *action = argv[1], *file = NULL, *server_flag = NULL,
             *force = NULL;
  const char *pos[2] = {NULL, NULL};
  int json = 0, npos = 0;
  static const char *const actions[] = {"list",     "show",   "check", "rename",
                                        "describe", "delete", NULL};
  size_t k = 0;
  while (actions[k] && strcmp(actions[k], action))
    k++;
  if (actions[k] == NULL) {
    cr_cli_errorf("auth: unknown action '%s' (see 'connrun auth --help')",
                  action);
    return CR_EXIT_USAGE;
  }
  for (int i = 2; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--server") && i + 1 < argc)
      server_flag = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--force") && !strcmp(action, "delete"))
      force = "force";
    else if (argv[i][0] != '-' && npos < 2)
      pos[npos++] = argv[i];
    else {
      cr_cli_errorf("auth: unexpected argument '%s'", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  int need = !strcmp(action, "list") ? 0 : wants_arg(action) ? 2 : 1;
  const char *server = cr_cli_server(server_flag);
  if (npos != need || (file == NULL && server == NULL)) {
    cr_cli_errorf("auth %s: needs %s and -c FILE or --server URL", action,
                  need == 0   ? "no argument"
                  : need == 1 ? "ID"
                              : "ID and a value");
    return CR_EXIT_USAGE;
  }
  json_t *out = NULL, *metrics = NULL;
  const char *arg = force ? force : pos[1];
  int ex = server ? remote_run(server, action, pos[0], arg, &out, &metrics)
                  : local_run(file, action, pos[0], arg, &out, &metrics);
  if (ex == CR_EXIT_OK) {
    if (json && out != NULL) {
      json_dumpf(out, stdout, JSON_INDENT(2));
      putchar('\n');
    } else if (!strcmp(action, "list"))
      print_list(out);
    else if (!strcmp(action, "show"))
      print_summary(out, metrics);
    else if (!strcmp(action, "check"))
      printf("%s: %s: %s\n", pos[0], str(out, "status"), str(out, "reason"));
    else
      printf("authorization %s: %s\n", pos[0],
             !strcmp(action, "delete") ? "deleted" : "updated");
  }
  json_decref(out);
  json_decref(metrics);
  return ex;
}
