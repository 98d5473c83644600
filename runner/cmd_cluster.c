/* cmd_cluster.c: `connrun cluster`: the `connrun serve` instances sharing
 * a store and the duties each holds (control/ctl_cluster.h), from the
 * store (-c FILE) or a running server (--server URL, GET /v1/cluster). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "cli_common.h"
#include "control/control.h"
#include "control/ctl_cluster.h"
#include "store/store.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun cluster (-c FILE | --server URL) [--json]\n\n"
        "The connrun serve instances sharing the store (online while their\n"
        "heartbeat is under 10 s old) and the duties each holds: work that\n"
        "must happen once (scheduler, lease_expiry, runner_offline, alerts,\n"
        "retention, health_checks, webhook_delivery, table_exports), held by\n"
        "one instance at a time and taken over within seconds when it dies.\n\n"
        "examples:\n"
        "  connrun cluster -c configs/demo.yaml\n"
        "  CONNRUN_TOKEN=... connrun cluster --server http://127.0.0.1:8470\n\n"
        "exit codes: 0 ok, 2 usage error, 3 store or server error\n",
        out);
}

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "-";
}

static void print(const json_t *v) {
  size_t i, k;
  const json_t *x, *y;
  printf("%-36s %-7s %-24s %-24s %s\n", "INSTANCE", "ONLINE", "STARTED",
         "LAST SEEN", "DUTIES");
  json_array_foreach(json_object_get(v, "instances"), i, x) {
    char duties[512] = "";
    size_t off = 0;
    json_array_foreach(json_object_get(x, "duties"), k, y) {
      int n = snprintf(duties + off, sizeof duties - off, "%s%s", k ? "," : "",
                       json_string_value(y));
      if (n < 0 || (size_t)n >= sizeof duties - off)
        break;
      off += (size_t)n;
    }
    printf("%-36s %-7s %-24s %-24s %s\n", jstr(x, "id"),
           json_is_true(json_object_get(x, "online")) ? "yes" : "no",
           jstr(x, "started_at"), jstr(x, "last_seen_at"), off ? duties : "-");
  }
  printf("\n%-18s %-36s %-24s %5s  %s\n", "DUTY", "HOLDER", "SINCE", "EPOCH",
         "HELD");
  json_array_foreach(json_object_get(v, "duties"), i, x)
      printf("%-18s %-36s %-24s %5lld  %s\n", jstr(x, "name"),
             jstr(x, "holder"), jstr(x, "since"),
             (long long)json_integer_value(json_object_get(x, "epoch")),
             json_is_true(json_object_get(x, "held")) ? "yes" : "expired");
}

static int show(json_t *v, int as_json) {
  if (as_json) {
    char *t = json_dumps(v, JSON_INDENT(2));
    if (t != NULL)
      puts(t);
    free(t);
  } else {
    print(v);
  }
  return CR_EXIT_OK;
}

static int remote(const char *server, int as_json) {
  json_t *out = NULL;
  long status = 0;
  if (cr_cli_call("cluster", server, "GET", "/v1/cluster", NULL, &status, &out))
    return CR_EXIT_RUNTIME;
  int ex = status == 200 ? show(out, as_json)
                         : cr_cli_api_error("cluster", status, out);
  json_decref(out);
  return ex;
}

static int local(const char *file, int as_json) {
  cr_store *s = NULL;
  cr_config *cfg = NULL;
  int ex = cr_cli_store_open("cluster", file, &s, &cfg);
  if (ex != CR_EXIT_OK)
    return ex;
  struct cr_ctl c = {.store = s, .cfg = cfg, .actor = "cli"};
  json_t *v = NULL;
  int rc = cr_ctl_cluster_view(&c, &v);
  if (rc == 0)
    show(v, as_json);
  else
    cr_cli_errorf("cluster: %s (%s)", cr_strerror(rc), cr_store_last_error(s));
  json_decref(v);
  cr_store_close(s);
  cr_config_free(cfg);
  return rc == 0 ? CR_EXIT_OK : CR_EXIT_RUNTIME;
}

int cr_cmd_cluster(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  const char *file = NULL, *server = NULL;
  int as_json = 0;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) &&
        i + 1 < argc)
      file = argv[++i];
    else if (!strcmp(argv[i], "--server") && i + 1 < argc)
      server = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else {
      cr_cli_errorf("cluster: unexpected argument '%s' (see --help)", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  server = cr_cli_server(server);
  if (file == NULL && server != NULL)
    return remote(server, as_json);
  if (file == NULL) {
    cr_cli_errorf("cluster: need -c FILE or --server URL (see --help)");
    return CR_EXIT_USAGE;
  }
  return local(file, as_json);
}
