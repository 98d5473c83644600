/* cmd_plugins.c: `connrun plugins list|inspect` (new and test live in
 * plugins_new.c and plugins_test.c): what plugins the host finds,
 * what they declare, and why a refused one was refused. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "plugin/plugin_host.h"
#include "plugin_dirs.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun plugins list [--json] [--plugin-dir DIR]... [-c FILE]\n"
        "       connrun plugins list --server URL [--json]\n"
        "       connrun plugins rescan --server URL\n"
        "       connrun plugins inspect NAME [--json] [--plugin-dir DIR]... "
        "[-c FILE]\n"
        "       connrun plugins new NAME [--dir DIR]\n"
        "       connrun plugins test PATH.so [--credentials FILE] "
        "[--config FILE] [--json]\n\n"
        "Loads every .so in the plugin directories (from --plugin-dir, "
        "repeatable,\nand/or host.plugin_dirs of the configuration given "
        "with -c) and shows\nwhat each declares. Refused plugins are listed "
        "with the reason (on stderr,\nin the table and in --json with "
        "\"refused\": true); inspect shows a refused\nplugin's reason. Without "
        "--plugin-dir and -c, the\n"
        "installed plugin directory is used.\n\n"
        "  list      name, version, ABI, capabilities, auth methods, path;\n"
        "            with --server, what a running daemon has loaded now and\n"
        "            since when (token from CONNRUN_TOKEN)\n"
        "  rescan    ask a running daemon to rescan its plugin directories\n"
        "            (it also does when a file is renamed in, and on SIGHUP)\n"
        "  inspect   one plugin's details and JSON Schemas\n"
        "  new       write a plugin project (NAME.c, Makefile using\n"
        "            pkg-config connrun-plugin) into DIR (default .);\n"
        "            NAME is [a-z][a-z0-9_]{0,63}; never overwrites\n"
        "  test      the conformance kit: load PATH.so as the host does and\n"
        "            check the plugin contract (PASS/FAIL/SKIP per check)\n\n"
        "examples:\n"
        "  connrun plugins list --plugin-dir build/plugins\n"
        "  connrun plugins list -c configs/demo.yaml --json\n"
        "  CONNRUN_TOKEN=... connrun plugins list --server "
        "http://127.0.0.1:8470\n"
        "  connrun plugins inspect sendgrid -c configs/demo.yaml\n"
        "  connrun plugins new acme --dir acme && make -C acme\n"
        "  connrun plugins test acme/acme.so --credentials creds.json\n\n"
        "exit codes: 0 ok, 1 plugin not found, a plugin was refused, a\n"
        "            file exists (new) or a check failed (test),\n"
        "            2 usage error, 3 no readable plugin directory or the\n"
        "            plugin could not be run\n",
        out);
}

/* The plugins the host refused, with their reasons. */
struct refusals {
  int n;
  json_t *list; /* [{path, refused: true, reason}] */
};

static void refused(void *ud, const char *path, const char *reason) {
  struct refusals *r = ud;
  r->n++;
  fprintf(stderr, "connrun: refused %s: %s\n", path, reason);
  json_array_append_new(r->list, json_pack("{s:s, s:b, s:s}", "path", path,
                                           "refused", 1, "reason", reason));
}

/* The refusal of the file named NAME.so (or NAME), or NULL. */
static const json_t *refusal_of(const struct refusals *r, const char *name) {
  size_t i;
  const json_t *x;
  json_array_foreach(r->list, i, x) {
    const char *path = json_string_value(json_object_get(x, "path"));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(name);
    if (!strncmp(base, name, n) && (!strcmp(base + n, ".so") || !base[n]))
      return x;
  }
  return NULL;
}

static char *methods_string(const struct cr_plugin_descriptor *d) {
  static char buf[256];
  buf[0] = '\0';
  for (size_t i = 0; d->auth_methods && d->auth_methods[i]; i++) {
    if (i > 0)
      strncat(buf, ",", sizeof buf - strlen(buf) - 1);
    strncat(buf, d->auth_methods[i], sizeof buf - strlen(buf) - 1);
  }
  return buf;
}

static json_t *plugin_json(const cr_plugin *p, int with_schemas) {
  const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
  char caps[128];
  json_t *methods = json_array();
  for (size_t i = 0; d->auth_methods && d->auth_methods[i]; i++)
    json_array_append_new(methods, json_string(d->auth_methods[i]));
  json_t *o =
      json_pack("{s:s, s:s, s:s, s:s?, s:s, s:o, s:s}", "name", d->name,
                "display_name", d->display_name ? d->display_name : d->name,
                "version", d->version, "description", d->description,
                "capabilities", cr_plugin_caps_string(p, caps, sizeof caps),
                "auth_methods", methods, "path", cr_plugin_path(p));
  if (o == NULL)
    return NULL;
  char abi[32];
  snprintf(abi, sizeof abi, "%u.%u", d->abi_major, d->abi_minor);
  json_object_set_new(o, "abi", json_string(abi));
  if (!with_schemas)
    return o;
  const char *texts[] = {d->credentials_schema, d->config_schema,
                         d->streams_json};
  const char *keys[] = {"credentials_schema", "config_schema", "streams"};
  for (size_t i = 0; i < 3; i++) {
    json_t *v = texts[i] ? json_loads(texts[i], 0, NULL) : json_null();
    json_object_set_new(o, keys[i], v ? v : json_null());
  }
  return o;
}

static int list_plugins(cr_plugin_host *h, const struct refusals *r,
                        int as_json) {
  size_t n = cr_plugin_host_count(h);
  if (as_json) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(arr, plugin_json(cr_plugin_host_at(h, i), 0));
    json_array_extend(arr, r->list);
    json_dumpf(arr, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(arr);
    return CR_EXIT_OK;
  }
  int wname = 4, wver = 7, wcaps = 12, wmeth = 12;
  char caps[128];
  for (size_t i = 0; i < n; i++) {
    const cr_plugin *p = cr_plugin_host_at(h, i);
    const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
    int l;
    if ((l = (int)strlen(d->name)) > wname)
      wname = l;
    if ((l = (int)strlen(d->version)) > wver)
      wver = l;
    if ((l = (int)strlen(cr_plugin_caps_string(p, caps, sizeof caps))) > wcaps)
      wcaps = l;
    if ((l = (int)strlen(methods_string(d))) > wmeth)
      wmeth = l;
  }
  printf("%-*s  %-*s  %-5s  %-*s  %-*s  %s\n", wname, "NAME", wver, "VERSION",
         "ABI", wcaps, "CAPABILITIES", wmeth, "AUTH METHODS", "PATH");
  for (size_t i = 0; i < n; i++) {
    const cr_plugin *p = cr_plugin_host_at(h, i);
    const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
    char abi[16];
    snprintf(abi, sizeof abi, "%u.%u", d->abi_major, d->abi_minor);
    printf("%-*s  %-*s  %-5s  %-*s  %-*s  %s\n", wname, d->name, wver,
           d->version, abi, wcaps, cr_plugin_caps_string(p, caps, sizeof caps),
           wmeth, methods_string(d), cr_plugin_path(p));
  }
  size_t i;
  const json_t *x;
  json_array_foreach(r->list, i, x)
      printf("REFUSED  %s: %s\n", json_string_value(json_object_get(x, "path")),
             json_string_value(json_object_get(x, "reason")));
  return CR_EXIT_OK;
}

static void print_schema(const char *title, const char *text) {
  printf("\n%s:\n", title);
  if (text == NULL) {
    printf("  (none: any object)\n");
    return;
  }
  json_t *v = json_loads(text, 0, NULL);
  char *s = v ? json_dumps(v, JSON_INDENT(2)) : NULL;
  printf("%s\n", s ? s : text);
  free(s);
  json_decref(v);
}

static int inspect_plugin(cr_plugin_host *h, const struct refusals *r,
                          const char *name, int as_json) {
  const cr_plugin *p = cr_plugin_host_find(h, name);
  const json_t *why = p == NULL ? refusal_of(r, name) : NULL;
  if (why != NULL && as_json) {
    json_dumpf(why, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
  } else if (why != NULL) {
    printf("path:          %s\nrefused:       %s\n",
           json_string_value(json_object_get(why, "path")),
           json_string_value(json_object_get(why, "reason")));
  }
  if (p == NULL) {
    if (why == NULL)
      cr_cli_errorf("plugins inspect: no plugin provides '%s'", name);
    return CR_EXIT_INVALID;
  }
  if (as_json) {
    json_t *o = plugin_json(p, 1);
    json_dumpf(o, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(o);
    return CR_EXIT_OK;
  }
  const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
  char caps[128];
  printf("name:          %s\n", d->name);
  printf("display name:  %s\n", d->display_name ? d->display_name : d->name);
  printf("version:       %s\n", d->version);
  printf("description:   %s\n", d->description ? d->description : "");
  printf("ABI:           %u.%u\n", d->abi_major, d->abi_minor);
  printf("capabilities:  %s\n", cr_plugin_caps_string(p, caps, sizeof caps));
  printf("auth methods:  %s\n", methods_string(d));
  printf("path:          %s\n", cr_plugin_path(p));
  print_schema("credentials schema", d->credentials_schema);
  print_schema("config schema", d->config_schema);
  print_schema("streams", d->streams_json);
  return CR_EXIT_OK;
}

/* ---- --server: what a running daemon has loaded ---- */

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "-";
}

static void print_remote(const json_t *body) {
  const json_t *items = json_object_get(body, "items"), *p;
  size_t i;
  printf("%-20s  %-10s  %-5s  %-24s  %s\n", "NAME", "VERSION", "ABI", "LOADED",
         "PATH");
  json_array_foreach(items, i, p) printf(
      "%-20s  %-10s  %-5s  %-24s  %s\n", jstr(p, "name"), jstr(p, "version"),
      jstr(p, "abi"), jstr(p, "loaded_at"), jstr(p, "path"));
  json_array_foreach(json_object_get(body, "refused"), i, p)
      printf("REFUSED  %s: %s\n", jstr(p, "path"), jstr(p, "reason"));
}

/* plugins list|rescan --server URL [--json]. */
static int remote(int argc, char **argv, int is_list) {
  const char *server = NULL;
  int as_json = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--server") && i + 1 < argc)
      server = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else {
      cr_cli_errorf("plugins: unknown option '%s' with --server", argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  long status = 0;
  json_t *body = NULL;
  if (cr_cli_call("plugins", server, is_list ? "GET" : "POST",
                  is_list ? "/v1/plugins" : "/v1/plugins/rescan", NULL, &status,
                  &body) != 0)
    return CR_EXIT_RUNTIME;
  int ex = CR_EXIT_OK;
  if (status / 100 != 2)
    ex = cr_cli_api_error("plugins", status, body);
  else if (as_json) {
    json_dumpf(body, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
  } else if (is_list)
    print_remote(body);
  else
    printf("rescan asked for: the provider events and `connrun plugins "
           "list --server` show the result\n");
  json_decref(body);
  return ex;
}

static int has_server(int argc, char **argv) {
  for (int i = 2; i < argc; i++)
    if (!strcmp(argv[i], "--server"))
      return 1;
  return 0;
}

int cr_cmd_plugins(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv)) {
    help(stdout);
    return CR_EXIT_OK;
  }
  if (argc < 2) {
    help(stderr);
    return CR_EXIT_USAGE;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "new") == 0)
    return cr_cmd_plugins_new(argc - 1, argv + 1);
  if (strcmp(sub, "test") == 0)
    return cr_cmd_plugins_test(argc - 1, argv + 1);
  int is_list = strcmp(sub, "list") == 0,
      is_inspect = strcmp(sub, "inspect") == 0;
  if ((is_list || strcmp(sub, "rescan") == 0) && has_server(argc, argv))
    return remote(argc, argv, is_list);
  if (strcmp(sub, "rescan") == 0) {
    cr_cli_errorf("plugins rescan: needs --server URL (see --help)");
    return CR_EXIT_USAGE;
  }
  if (!is_list && !is_inspect) {
    cr_cli_errorf("plugins: unknown subcommand '%s' (list, inspect, rescan, "
                  "new, test)",
                  sub);
    return CR_EXIT_USAGE;
  }
  struct cr_cli_plugin_opts opts;
  int rc = cr_cli_plugin_opts_parse(&opts, argc - 2, argv + 2, is_inspect);
  if (rc != CR_EXIT_OK)
    return rc;
  struct refusals r = {0, json_array()};
  cr_plugin_host *h = NULL;
  rc = cr_cli_plugin_host_open(&opts, refused, &r, &h);
  if (rc == CR_EXIT_OK) {
    rc = is_list ? list_plugins(h, &r, opts.json)
                 : inspect_plugin(h, &r, opts.positional, opts.json);
    if (rc == CR_EXIT_OK && r.n > 0 && is_list)
      rc = CR_EXIT_INVALID;
  }
  json_decref(r.list);
  cr_plugin_host_free(h);
  cr_cli_plugin_opts_free(&opts);
  return rc;
}
