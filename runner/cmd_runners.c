/* cmd_runners.c: `connrun runners`: the remote runners a server knows
 * (online / offline / revoked, last check-in, labels, providers, slots,
 * running, completed and failed executions), from the store (-c FILE) or
 * a running server (--server URL, as GET /v1/runners, with the local
 * runner first); and `connrun runners revoke ID`. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli_common.h"
#include "control/control.h"
#include "control/ctl_runners.h"
#include "store/store.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun runners (-c FILE | --server URL) [--json]\n"
        "       connrun runners revoke RUNNER_ID (-c FILE | --server URL)\n"
        "\n"
        "Without a command: every runner with its status (online, offline\n"
        "when it did not check in within host.runner.offline_after, or\n"
        "revoked), last check-in, labels, providers, slots and its running,\n"
        "completed and failed executions. With --server the local runner of\n"
        "the server comes first (token from CONNRUN_TOKEN).\n\n"
        "revoke: the runner's next call is refused (401) and its pending and\n"
        "executing executions go back to Created as new attempts.\n\n"
        "examples:\n"
        "  connrun runners -c configs/demo.yaml\n"
        "  CONNRUN_TOKEN=... connrun runners --server http://127.0.0.1:8470\n"
        "  connrun runners revoke r-0ca325d65aa03865 -c configs/demo.yaml\n\n"
        "exit codes: 0 ok, 1 unknown runner or refused, 2 usage error, 3 "
        "store or server error\n",
        out);
}

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "-";
}

/* "a,b" of an array of strings or of {name} objects, into buf. */
static const char *joined(const json_t *arr, char *buf, size_t len) {
  size_t off = 0, i;
  const json_t *v;
  buf[0] = '\0';
  json_array_foreach(arr, i, v) {
    const char *s = json_is_string(v) ? json_string_value(v) : jstr(v, "name");
    int k = snprintf(buf + off, len - off, "%s%s", i ? "," : "", s);
    if (k < 0 || (size_t)k >= len - off)
      break;
    off += (size_t)k;
  }
  return off ? buf : "-";
}

static void print_table(const json_t *items) {
  printf("%-20s %-14s %-7s %-8s %-14s %-22s %5s %7s %9s %6s  %s\n", "RUNNER",
         "NAME", "KIND", "STATUS", "LABELS", "PROVIDERS", "SLOTS", "RUNNING",
         "COMPLETED", "FAILED", "LAST CHECK-IN");
  size_t i;
  const json_t *x;
  json_array_foreach(items, i, x) {
    char labels[200], provs[300];
    printf("%-20s %-14s %-7s %-8s %-14s %-22s %5lld %7lld %9lld %6lld  %s\n",
           jstr(x, "id"), jstr(x, "name"), jstr(x, "kind"), jstr(x, "status"),
           joined(json_object_get(x, "labels"), labels, sizeof labels),
           joined(json_object_get(x, "providers"), provs, sizeof provs),
           (long long)json_integer_value(json_object_get(x, "slots")),
           (long long)json_integer_value(json_object_get(x, "running")),
           (long long)json_integer_value(json_object_get(x, "completed")),
           (long long)json_integer_value(json_object_get(x, "failed")),
           jstr(x, "last_check_in"));
  }
}

static int show(const json_t *items, int as_json) {
  if (as_json) {
    char *t = json_dumps(items, JSON_INDENT(2));
    if (t != NULL)
      puts(t);
    free(t);
  } else {
    print_table(items);
  }
  return CR_EXIT_OK;
}

static int remote(const char *server, const char *revoke, int as_json) {
  if (revoke != NULL) {
    char path[300];
    snprintf(path, sizeof path, "/v1/runners/%s", revoke);
    json_t *out = NULL;
    long status = 0;
    if (cr_cli_call("runners", server, "DELETE", path, NULL, &status, &out))
      return CR_EXIT_RUNTIME;
    int ex =
        status == 200 ? CR_EXIT_OK : cr_cli_api_error("runners", status, out);
    if (ex == CR_EXIT_OK)
      printf("runner %s revoked; %lld execution(s) put back\n", revoke,
             (long long)json_integer_value(json_object_get(out, "released")));
    json_decref(out);
    return ex;
  }
  json_t *items = NULL;
  int ex = cr_cli_get_all("runners", server, "/v1/runners", &items);
  if (ex == CR_EXIT_OK)
    ex = show(items, as_json);
  json_decref(items);
  return ex;
}

static int local(const char *file, const char *revoke, int as_json) {
  cr_store *s = NULL;
  cr_config *cfg = NULL;
  int ex = cr_cli_store_open("runners", file, &s, &cfg);
  if (ex != CR_EXIT_OK)
    return ex;
  struct cr_ctl c = {.store = s, .cfg = cfg, .actor = "cli"};
  int rc;
  if (revoke != NULL) {
    size_t n = 0;
    rc = cr_ctl_runner_revoke(&c, revoke, &n);
    if (rc == 0)
      printf("runner %s revoked; %zu execution(s) put back\n", revoke, n);
    else if (rc == CR_ENOENT)
      cr_cli_errorf("runners revoke: no runner '%s' (or already revoked)",
                    revoke);
  } else {
    json_t *items = NULL;
    rc = cr_ctl_runner_list(&c, &items);
    if (rc == 0)
      show(items, as_json);
    json_decref(items);
  }
  if (rc != 0 && rc != CR_ENOENT)
    cr_cli_errorf("runners: %s (%s)", cr_strerror(rc), cr_store_last_error(s));
  cr_store_close(s);
  cr_config_free(cfg);
  return rc == 0           ? CR_EXIT_OK
         : rc == CR_ENOENT ? CR_EXIT_INVALID
                           : CR_EXIT_RUNTIME;
}

int cr_cmd_runners(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  const char *file = NULL, *server = NULL, *revoke = NULL;
  int as_json = 0;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--server") && i + 1 < argc)
      server = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else if (!strcmp(argv[i], "revoke") && revoke == NULL && i + 1 < argc)
      revoke = argv[++i];
    else {
      cr_cli_errorf("runners: unexpected argument '%s' (see --help)", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  server = cr_cli_server(server);
  if (file == NULL && server != NULL)
    return remote(server, revoke, as_json);
  if (file == NULL) {
    cr_cli_errorf("runners: need -c FILE or --server URL (see --help)");
    return CR_EXIT_USAGE;
  }
  return local(file, revoke, as_json);
}
