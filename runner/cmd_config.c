/* cmd_config.c: `connrun config check`: loads a configuration and its
 * plugins, runs every check and prints the diagnostics. */
#include "cli.h"

#include "config/config.h"
#include "config/diag.h"
#include "plugin/plugin_host.h"
#include "util/error.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define MAX_PLUGIN_DIRS 64

static void help(FILE *out) {
  fprintf(out,
          "usage: connrun config check FILE [--plugin-dir DIR]... [--json]\n"
          "\n"
          "Checks a configuration file and its includes: every key, type,\n"
          "id, reference, schedule, secret reference, and, with the provider\n"
          "plugins loaded from host.plugin_dirs and every --plugin-dir, the\n"
          "providers, methods, credentials and work configs. Every problem\n"
          "is printed as FILE:LINE:COLUMN: error: message.\n"
          "\n"
          "options:\n"
          "  --plugin-dir DIR  also load plugins from DIR (repeatable)\n"
          "  --json            print {\"valid\":..., \"diagnostics\":[...]}"
          " on stdout\n"
          "  -h, --help        show this help\n"
          "\n"
          "examples:\n"
          "  connrun config check configs/demo.yaml\n"
          "  connrun config check configs/example.yaml --plugin-dir "
          "build/plugins\n"
          "  connrun config check prod.yaml --json | jq .diagnostics\n"
          "\n"
          "exit codes: 0 valid, 1 invalid, 2 usage error, 3 cannot read the "
          "file\n");
}

struct opts {
  const char *file;
  const char *plugin_dirs[MAX_PLUGIN_DIRS];
  size_t n_plugin_dirs;
  int json;
};

static int parse_args(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  if (argc < 2 || strcmp(argv[1], "check") != 0) {
    cr_cli_errorf("config: expected 'check' (see 'connrun config --help')");
    return -1;
  }
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      o->json = 1;
    } else if (strcmp(argv[i], "--plugin-dir") == 0) {
      if (i + 1 >= argc || o->n_plugin_dirs == MAX_PLUGIN_DIRS) {
        cr_cli_errorf("config check: --plugin-dir needs a directory");
        return -1;
      }
      o->plugin_dirs[o->n_plugin_dirs++] = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      cr_cli_errorf("config check: unknown option '%s'", argv[i]);
      return -1;
    } else if (o->file != NULL) {
      cr_cli_errorf("config check: only one FILE is checked (got '%s' too)",
                    argv[i]);
      return -1;
    } else {
      o->file = argv[i];
    }
  }
  if (o->file == NULL) {
    cr_cli_errorf("config check: missing FILE");
    return -1;
  }
  return 0;
}

static void on_refused(void *ud, const char *path, const char *reason) {
  cr_diags_addf(ud, path, 0, 0, CR_DIAG_WARNING, "plugin not loaded: %s",
                reason);
}

/* Loads the plugins of every directory once; refusals become warnings. */
static int load_plugins(const struct opts *o, const cr_config *cfg,
                        cr_plugin_host *h, cr_diags *d) {
  const char *dirs[MAX_PLUGIN_DIRS * 2];
  size_t n = 0;
  for (size_t i = 0; i < o->n_plugin_dirs; i++)
    dirs[n++] = o->plugin_dirs[i];
  for (size_t i = 0; i < cfg->host.n_plugin_dirs && n < MAX_PLUGIN_DIRS * 2;
       i++)
    dirs[n++] = cfg->host.plugin_dirs[i];
  for (size_t i = 0; i < n; i++) {
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen = strcmp(dirs[i], dirs[j]) == 0;
    if (!seen &&
        cr_plugin_host_load_dir(h, dirs[i], on_refused, d) == CR_ENOMEM)
      return CR_ENOMEM;
  }
  return 0;
}

static void print_text(const char *file, const cr_config *cfg,
                       const cr_diags *d) {
  char line[2048];
  size_t errors = cr_diags_count(d, CR_DIAG_ERROR);
  size_t warnings = cr_diags_count(d, CR_DIAG_WARNING);
  for (size_t i = 0; i < d->count; i++) {
    cr_diag_format(&d->items[i], line, sizeof line);
    fprintf(stderr, "%s\n", line);
  }
  if (errors > 0 || cfg == NULL) {
    fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", file, errors,
            errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    return;
  }
  fprintf(stderr, "%s: ok (%zu authorization%s, %zu work%s, %zu subscription%s",
          file, cfg->n_auths, cfg->n_auths == 1 ? "" : "s", cfg->n_works,
          cfg->n_works == 1 ? "" : "s", cfg->n_subscriptions,
          cfg->n_subscriptions == 1 ? "" : "s");
  if (cfg->n_alerts > 0)
    fprintf(stderr, ", %zu alert%s", cfg->n_alerts,
            cfg->n_alerts == 1 ? "" : "s");
  fprintf(stderr, ")\n");
}

static int print_json(const cr_diags *d) {
  json_t *list = json_array();
  json_t *root =
      json_pack("{s:b, s:o}", "valid", cr_diags_count(d, CR_DIAG_ERROR) == 0,
                "diagnostics", list);
  for (size_t i = 0; root != NULL && i < d->count; i++) {
    const struct cr_diag *g = &d->items[i];
    json_t *o =
        json_pack("{s:s?, s:i, s:i, s:s, s:s}", "file", g->file, "line",
                  g->line, "column", g->column, "severity",
                  cr_diag_severity_name(g->severity), "message", g->message);
    if (o == NULL || json_array_append_new(list, o) != 0) {
      json_decref(root);
      root = NULL;
    }
  }
  if (root == NULL) {
    cr_cli_errorf("config check: %s", cr_strerror(CR_ENOMEM));
    return CR_ENOMEM;
  }
  json_dumpf(root, stdout, JSON_INDENT(2));
  fputc('\n', stdout);
  json_decref(root);
  return 0;
}

static int check(const struct opts *o) {
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = NULL;
  cr_plugin_host *h = NULL;
  int rc = cr_config_load(o->file, &cfg, &d);
  if (cfg != NULL && (rc = cr_plugin_host_new(NULL, &h)) == 0 &&
      (rc = load_plugins(o, cfg, h, &d)) == 0)
    rc = cr_config_check_plugins(cfg, h, &d);
  int status = cr_diags_count(&d, CR_DIAG_ERROR) ? CR_EXIT_INVALID : CR_EXIT_OK;
  if (rc == CR_ENOENT || rc == CR_EIO)
    status = CR_EXIT_RUNTIME;
  if (rc == CR_ENOMEM || d.nomem) {
    cr_cli_errorf("config check: %s", cr_strerror(CR_ENOMEM));
    status = CR_EXIT_RUNTIME;
  } else {
    cr_diags_sort(&d);
    if (o->json)
      status = print_json(&d) == 0 ? status : CR_EXIT_RUNTIME;
    else
      print_text(o->file, cfg, &d);
  }
  cr_config_free(cfg);
  cr_plugin_host_free(h);
  cr_diags_free(&d);
  return status;
}

int cr_cmd_config(int argc, char **argv) {
  struct opts o;
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  if (parse_args(argc, argv, &o) != 0)
    return CR_EXIT_USAGE;
  return check(&o);
}
