/* cmd_runner.c: `connrun runner`: a remote runner host (core/remote/
 * remote_host.h) in the foreground: options from the command line and an
 * optional YAML file, plugins loaded, SIGINT/SIGTERM stop it cleanly. */
#include "cli.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"
#include "config/config.h"
#include "config/secret.h"
#include "config/yamljson.h"
#include "plugin_dirs.h"
#include "remote/remote_host.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun runner --server URL [--registration-token TOKEN]\n"
        "                      [--name NAME] [--labels a,b] [--slots N]\n"
        "                      [--plugin-dir DIR]... [--data-dir DIR]\n"
        "                      [--grace DURATION] [--config FILE]\n"
        "                      [--ca-file PEM] [--log-level LEVEL]\n\n"
        "Runs a remote runner host: registers with a connrun server (once;\n"
        "the identity is kept in DATA_DIR/runner.json, mode 0600), claims\n"
        "executions of the providers its plugins read and runs them here,\n"
        "each in a `connrun worker` process unless the work says isolation:\n"
        "inline. Records go to the works' destinations on this machine\n"
        "(relative paths and the default out/<work id> under DATA_DIR);\n"
        "states, transitions and events go to the server. Credentials are\n"
        "kept in memory only. Logs go to stderr.\n\n"
        "options:\n"
        "  --server URL          the server (https://, or http:// to a "
        "loopback\n"
        "                        address)\n"
        "  --registration-token TOKEN  one of the server's\n"
        "                        host.runner_registration_tokens (or\n"
        "                        $CONNRUN_REGISTRATION_TOKEN); needed only to\n"
        "                        register\n"
        "  --name NAME           shown by the server (default: the host name)\n"
        "  --labels a,b          labels works can ask for (runner: {labels})\n"
        "  --slots N             executions at once (default 4)\n"
        "  --plugin-dir DIR      where the provider plugins are (repeatable;\n"
        "                        default: the installed directory)\n"
        "  --data-dir DIR        identity, base configuration, destinations\n"
        "                        (default ./runner-data)\n"
        "  --grace DURATION      on stop, how long running executions may go "
        "on\n"
        "                        before they are put back for a retry "
        "(default 30s)\n"
        "  --config FILE         a YAML file with the same keys: server,\n"
        "                        registration_token (may be ${ENV}), name,\n"
        "                        labels, slots, plugin_dirs, data_dir, grace,\n"
        "                        ca_file; the command line wins\n"
        "  --ca-file PEM         verify the server with these CAs\n"
        "  --log-level LEVEL     debug, info (default), warn or error\n\n"
        "signals: SIGINT/SIGTERM stop claiming, let executions finish within "
        "the\ngrace period, put the rest back as new attempts, and exit 0.\n\n"
        "examples:\n"
        "  CONNRUN_REGISTRATION_TOKEN=... connrun runner --server "
        "https://connrun.example.com \\\n"
        "      --labels dmz --plugin-dir /opt/connrun/plugins --data-dir "
        "/var/lib/connrun-runner\n"
        "  connrun runner --config /etc/connrun/runner.yaml\n\n"
        "exit codes: 0 stopped cleanly, 1 refused by the server (bad "
        "registration\ntoken, revoked) or no identity, 2 usage error, 3 "
        "runtime error\n",
        out);
}

/* Everything the options and the file give (strings borrowed from argv or
 * from file, except the owned ones). */
struct args {
  const char *server, *token, *name, *labels, *data_dir, *grace, *ca_file;
  const char *config;
  long slots;
  int log_level;
  char **dirs; /* owned (argv ones first) */
  size_t n_dirs;
  json_t *file;          /* the --config file, owned */
  char *token_file;      /* resolved from the file, owned, secret */
  char *dir_abs;         /* data_dir made absolute, owned */
  char labels_buf[1024]; /* the file's labels, joined */
};

static cr_remote_host *volatile g_host;

static void on_signal(int sig) {
  (void)sig;
  cr_remote_host_stop(g_host);
}

static int add_dir(struct args *a, const char *d) {
  char **g = realloc(a->dirs, (a->n_dirs + 1) * sizeof *g);
  if (g == NULL)
    return -1;
  a->dirs = g;
  return (a->dirs[a->n_dirs++] = strdup(d)) ? 0 : -1;
}

static void args_free(struct args *a) {
  for (size_t i = 0; i < a->n_dirs; i++)
    free(a->dirs[i]);
  free(a->dirs);
  json_decref(a->file);
  if (a->token_file != NULL) {
    memset(a->token_file, 0, strlen(a->token_file));
    free(a->token_file);
  }
  free(a->dir_abs);
}

/* One option with a value; returns 1 when argv[*i] was it. */
static int opt(int argc, char **argv, int *i, const char *name,
               const char **out) {
  if (strcmp(argv[*i], name) != 0 || *i + 1 >= argc)
    return 0;
  *out = argv[++*i];
  return 1;
}

static int parse_argv(struct args *a, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    if (opt(argc, argv, &i, "--server", &a->server) ||
        opt(argc, argv, &i, "--registration-token", &a->token) ||
        opt(argc, argv, &i, "--name", &a->name) ||
        opt(argc, argv, &i, "--labels", &a->labels) ||
        opt(argc, argv, &i, "--data-dir", &a->data_dir) ||
        opt(argc, argv, &i, "--grace", &a->grace) ||
        opt(argc, argv, &i, "--ca-file", &a->ca_file) ||
        opt(argc, argv, &i, "--config", &a->config))
      continue;
    if (opt(argc, argv, &i, "--plugin-dir", &v)) {
      if (add_dir(a, v) != 0)
        return CR_EXIT_RUNTIME;
    } else if (opt(argc, argv, &i, "--slots", &v) &&
               (a->slots = strtol(v, NULL, 10)) > 0 &&
               a->slots <= (long)CR_REMOTE_HOST_MAX_SLOTS) {
    } else if (i + 1 < argc && strcmp(argv[i], "--log-level") == 0 &&
               cr_cli_log_level(argv[i + 1]) >= 0) {
      a->log_level = cr_cli_log_level(argv[++i]);
    } else {
      cr_cli_errorf("runner: unexpected or invalid argument '%s' (see "
                    "'connrun runner --help')",
                    argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  return CR_EXIT_OK;
}

/* ---- The --config file ------------------------------------------------- */

static const char *const file_keys[] = {
    "server",      "registration_token", "name",  "labels",  "slots",
    "plugin_dirs", "data_dir",           "grace", "ca_file", NULL};

static int check_keys(const char *path, const json_t *root) {
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)root, k, v) {
    int known = 0;
    for (size_t i = 0; file_keys[i] != NULL; i++)
      known |= strcmp(file_keys[i], k) == 0;
    if (!known) {
      cr_cli_errorf("runner: %s: unknown key '%s'", path, k);
      return CR_EXIT_INVALID;
    }
  }
  return CR_EXIT_OK;
}

/* A relative path of the file resolved against the file's directory
 * (kept in the file's JSON so the borrowed pointer stays valid). */
static const char *file_path(struct args *a, const char *key) {
  const char *v = json_string_value(json_object_get(a->file, key));
  if (v == NULL || v[0] == '/')
    return v;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", a->config);
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    return v;
  *slash = '\0';
  char full[PATH_MAX * 2];
  snprintf(full, sizeof full, "%s/%s", dir, v);
  json_object_set_new(a->file, key, json_string(full));
  return json_string_value(json_object_get(a->file, key));
}

static int file_token(struct args *a) {
  const char *v =
      json_string_value(json_object_get(a->file, "registration_token"));
  if (v == NULL || a->token != NULL)
    return CR_EXIT_OK;
  char err[512] = "", *res = NULL;
  if (cr_secret_resolve(v, NULL, &res, NULL, err, sizeof err) != 0) {
    cr_cli_errorf("runner: %s: registration_token: %s", a->config, err);
    return CR_EXIT_INVALID;
  }
  a->token_file = strdup(res);
  memset(res, 0, strlen(res));
  free(res); /* cr__malloc'ed: the default allocator is libc */
  a->token = a->token_file;
  return a->token ? CR_EXIT_OK : CR_EXIT_RUNTIME;
}

static void file_str(struct args *a, const char *key, const char **slot) {
  if (*slot == NULL)
    *slot = json_string_value(json_object_get(a->file, key));
}

static int file_lists(struct args *a) {
  const json_t *labels = json_object_get(a->file, "labels");
  if (a->labels == NULL && json_is_array(labels)) {
    size_t i, len = 0;
    const json_t *l;
    json_array_foreach(labels, i, l) {
      const char *t = json_string_value(l);
      int n = t ? snprintf(a->labels_buf + len, sizeof a->labels_buf - len,
                           "%s%s", len ? "," : "", t)
                : 0;
      if (n < 0 || (size_t)n >= sizeof a->labels_buf - len)
        break;
      len += (size_t)n;
    }
    a->labels = a->labels_buf;
  }
  const json_t *dirs = json_object_get(a->file, "plugin_dirs");
  if (a->n_dirs == 0 && json_is_array(dirs)) {
    for (size_t i = 0; i < json_array_size(dirs); i++) {
      json_object_set(a->file, "_dir", json_array_get(dirs, i));
      const char *d = file_path(a, "_dir");
      if (d != NULL && add_dir(a, d) != 0)
        return CR_EXIT_RUNTIME;
    }
  }
  json_int_t slots = json_integer_value(json_object_get(a->file, "slots"));
  if (a->slots == 0 && slots > 0 && slots <= CR_REMOTE_HOST_MAX_SLOTS)
    a->slots = (long)slots;
  return CR_EXIT_OK;
}

static int read_file(struct args *a) {
  if (a->config == NULL)
    return CR_EXIT_OK;
  cr_marks *m = NULL;
  struct cr_yaml_error e = {0};
  int rc = cr_marks_new(&m);
  if (rc == 0)
    rc = cr_yaml_parse_file(a->config, m, &a->file, &e);
  cr_marks_free(m);
  if (rc != 0 || !json_is_object(a->file)) {
    char msg[700];
    cr_yaml_error_format(&e, a->config, msg, sizeof msg);
    cr_cli_errorf("runner: %s", rc ? msg : "the file is not a mapping");
    return rc == CR_ENOENT || rc == CR_EIO ? CR_EXIT_RUNTIME : CR_EXIT_INVALID;
  }
  if ((rc = check_keys(a->config, a->file)) != CR_EXIT_OK ||
      (rc = file_token(a)) != CR_EXIT_OK)
    return rc;
  file_str(a, "server", &a->server);
  file_str(a, "name", &a->name);
  file_str(a, "grace", &a->grace);
  if (a->data_dir == NULL)
    a->data_dir = file_path(a, "data_dir");
  if (a->ca_file == NULL)
    a->ca_file = file_path(a, "ca_file");
  const json_t *g = json_object_get(a->file, "grace");
  if (a->grace == NULL && json_is_integer(g)) {
    json_object_set_new(
        a->file, "grace",
        json_sprintf("%llds", (long long)json_integer_value(g)));
    a->grace = json_string_value(json_object_get(a->file, "grace"));
  }
  return file_lists(a);
}

/* ---- Run ---------------------------------------------------------------- */

/* Splits "a,b" into labels (pointers into buf). */
static size_t split_labels(char *buf, const char **out, size_t max) {
  size_t n = 0;
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < max;
       t = strtok_r(NULL, ",", &save))
    if (*t != '\0')
      out[n++] = t;
  return n;
}

static int absolute_data_dir(struct args *a) {
  const char *d = a->data_dir ? a->data_dir : "runner-data";
  if (d[0] == '/')
    return (a->dir_abs = strdup(d)) ? 0 : -1;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == NULL)
    return -1;
  size_t n = strlen(cwd) + strlen(d) + 2;
  if ((a->dir_abs = malloc(n)) == NULL)
    return -1;
  snprintf(a->dir_abs, n, "%s/%s", cwd, d);
  return 0;
}

static void on_refused(void *ud, const char *path, const char *reason) {
  (void)ud;
  cr_cli_errorf("runner: plugin %s refused: %s", path, reason);
}

static int load_plugins(struct args *a, cr_plugin_host **out) {
  const char *def = cr_cli_default_plugin_dir();
  if (a->n_dirs == 0 && def != NULL && add_dir(a, def) != 0)
    return CR_EXIT_RUNTIME;
  if (a->n_dirs == 0) {
    cr_cli_errorf("runner: give --plugin-dir DIR (no installed plugin "
                  "directory)");
    return CR_EXIT_USAGE;
  }
  struct cr_cli_plugin_opts po = {.dirs = a->dirs, .n_dirs = a->n_dirs};
  return cr_cli_plugin_host_open(&po, on_refused, NULL, out);
}

static int exit_of(int rc) {
  if (rc == 0)
    return CR_EXIT_OK;
  return rc == CR_EPERM || rc == CR_EINVAL ? CR_EXIT_INVALID : CR_EXIT_RUNTIME;
}

static int run_host(struct args *a, const cr_plugin_host *plugins,
                    int64_t grace_ms) {
  char exe[PATH_MAX];
  char labels_buf[1024];
  const char *labels[64];
  snprintf(labels_buf, sizeof labels_buf, "%s", a->labels ? a->labels : "");
  struct cr_remote_host_opts o = {
      .server = a->server,
      .registration_token = a->token,
      .name = a->name,
      .labels = labels,
      .n_labels = split_labels(labels_buf, labels, 64),
      .slots = (unsigned)a->slots,
      .plugins = plugins,
      .worker_exe = cr_cli_self_exe(exe, sizeof exe) == 0 ? exe : NULL,
      .data_dir = a->dir_abs,
      .grace_ms = grace_ms,
      .ca_file = a->ca_file,
      .log = cr_cli_log_stderr,
      .log_min_level = a->log_level};
  cr_remote_host *h = NULL;
  int rc = cr_remote_host_new(&o, &h);
  if (rc != 0) {
    cr_cli_errorf("runner: %s", cr_strerror(rc));
    return CR_EXIT_RUNTIME;
  }
  g_host = h;
  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  rc = cr_remote_host_run(h);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  g_host = NULL;
  cr_remote_host_free(h);
  return exit_of(rc);
}

int cr_cmd_runner(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  struct args a = {.log_level = CR_LOG_INFO};
  int rc = parse_argv(&a, argc, argv);
  if (rc == CR_EXIT_OK)
    rc = read_file(&a);
  const char *env = getenv("CONNRUN_REGISTRATION_TOKEN");
  if (a.token == NULL && env != NULL && env[0] != '\0')
    a.token = env;
  int64_t grace_ms = 0;
  if (rc == CR_EXIT_OK && a.grace != NULL &&
      cr_config_parse_duration(a.grace, &grace_ms) != 0) {
    cr_cli_errorf("runner: invalid --grace '%s' (e.g. 30s, 2m)", a.grace);
    rc = CR_EXIT_USAGE;
  }
  if (rc == CR_EXIT_OK && a.server == NULL) {
    cr_cli_errorf("runner: --server URL is required (see 'connrun runner "
                  "--help')");
    rc = CR_EXIT_USAGE;
  }
  if (rc == CR_EXIT_OK && absolute_data_dir(&a) != 0)
    rc = CR_EXIT_RUNTIME;
  cr_plugin_host *plugins = NULL;
  if (rc == CR_EXIT_OK)
    rc = load_plugins(&a, &plugins);
  if (rc == CR_EXIT_OK)
    rc = run_host(&a, plugins, grace_ms);
  cr_plugin_host_free(plugins);
  args_free(&a);
  return rc;
}
