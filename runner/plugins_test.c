/* plugins_test.c: `connrun plugins test PATH.so`, the plugin conformance
 * kit. It loads the plugin as the host does and runs one check after the
 * other, printing "PASS name", "FAIL name: reason" or "SKIP name: reason"
 * (or one JSON document with --json). Decisions are in docs/design.md
 * ("The conformance kit"). */
#include "cli.h"

#include <elf.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/yamljson.h"
#include "plugin/health.h"
#include "plugin/host_api.h"
#include "plugin/plugin_host.h"
#include "util/error.h"
#include "util/jsonschema.h"

#define CANCEL_BOUND_S 5

struct kit {
  const char *path, *cred_file, *config_file;
  int json, failed;
  json_t *report; /* array of {name, result, reason} */
  const cr_plugin *p;
  const struct cr_plugin_descriptor *d;
  json_t *streams;      /* declared stream names */
  char *creds, *config; /* JSON texts to run with, NULL: not runnable */
};

static void result(struct kit *k, const char *res, const char *name,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void result(struct kit *k, const char *res, const char *name,
                   const char *fmt, ...) {
  char reason[1024] = "";
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
  }
  k->failed |= strcmp(res, "FAIL") == 0;
  json_array_append_new(k->report, json_pack("{s:s, s:s, s:s}", "name", name,
                                             "result", res, "reason", reason));
  if (k->json)
    return;
  printf(reason[0] ? "%s %s: %s\n" : "%s %s\n", res, name, reason);
  fflush(stdout);
}

/* ---- Imports: HTTP goes through the host ------------------------------- */

static int forbidden_import(const char *s) {
  static const char *const names[] = {
      "socket",         "connect",    "getaddrinfo", "gethostbyname",
      "gethostbyname2", "sendto",     "recvfrom",    "sendmsg",
      "recvmsg",        "socketpair", NULL};
  for (size_t i = 0; names[i] != NULL; i++)
    if (strcmp(s, names[i]) == 0)
      return 1;
  return strncmp(s, "curl_", 5) == 0 || strncmp(s, "SSL_", 4) == 0;
}

/* Lists the undefined dynamic symbols of a 64-bit ELF file that a plugin
 * must not import into found (comma-separated). -1 when not readable ELF. */
static int scan_imports(const char *path, char *found, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 ||
      (size_t)st.st_size < sizeof(Elf64_Ehdr)) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  size_t size = (size_t)st.st_size;
  unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED)
    return -1;
  const Elf64_Ehdr *eh = (const void *)m;
  int rc = -1;
  found[0] = '\0';
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size)
    goto done;
  const Elf64_Shdr *sh = (const void *)(m + eh->e_shoff);
  for (size_t i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
      continue;
    const Elf64_Shdr *str = &sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > size ||
        str->sh_offset + str->sh_size > size)
      goto done;
    const Elf64_Sym *sym = (const void *)(m + sh[i].sh_offset);
    size_t n = sh[i].sh_size / sizeof *sym;
    for (size_t j = 0; j < n; j++) {
      if (sym[j].st_shndx != SHN_UNDEF || sym[j].st_name >= str->sh_size)
        continue;
      const char *name = (const char *)m + str->sh_offset + sym[j].st_name;
      if (memchr(name, '\0', str->sh_size - sym[j].st_name) == NULL ||
          !forbidden_import(name))
        continue;
      if (found[0] != '\0')
        strncat(found, ", ", len - strlen(found) - 1);
      strncat(found, name, len - strlen(found) - 1);
    }
  }
  rc = 0;
done:
  munmap(m, size);
  return rc;
}

/* ---- Inputs -------------------------------------------------------------- */

/* Reads a JSON or YAML file into *out (JSON text, caller frees). */
static int read_input(const char *path, char **out) {
  cr_marks *marks = NULL;
  json_t *v = NULL;
  struct cr_yaml_error err = {0};
  if (cr_marks_new(&marks) != 0)
    return -1;
  int rc = cr_yaml_parse_file(path, marks, &v, &err);
  cr_marks_free(marks);
  if (rc != 0 || !json_is_object(v)) {
    char msg[1024];
    if (rc != 0)
      cr_yaml_error_format(&err, path, msg, sizeof msg);
    else
      snprintf(msg, sizeof msg, "%s: not a mapping", path);
    cr_cli_errorf("plugins test: %s", msg);
    json_decref(v);
    return -1;
  }
  *out = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  return *out ? 0 : -1;
}

static void on_violation(void *ud, const json_t *node, const char *path,
                         const char *message) {
  (void)node;
  char *buf = ud;
  if (buf[0] == '\0')
    snprintf(buf, 512, "%s: %s", path[0] ? path : "/", message);
}

/* Checks text (or "{}" when NULL) against s. Returns 1 valid, 0 not, with
 * the first violation in why (512 bytes). Values are not printed: they may
 * be secrets. */
static int validates(const cr_schema *s, const char *text, char *why) {
  why[0] = '\0';
  if (s == NULL)
    return 1;
  json_t *v = json_loads(text ? text : "{}", 0, NULL);
  int ok = v != NULL && cr_schema_validate(s, v, on_violation, why) == 0;
  json_decref(v);
  return ok;
}

/* The "credentials" / "config" check: given input validates; without one,
 * "{}" is used when it validates, else later checks are skipped. */
static void check_input(struct kit *k, const char *name, const cr_schema *s,
                        const char *file, char **text) {
  char why[512];
  if (file != NULL) {
    if (validates(s, *text, why)) {
      result(k, "PASS", name, NULL);
    } else {
      result(k, "FAIL", name, "%s does not match the %s schema: %s", file, name,
             why);
      free(*text);
      *text = NULL;
    }
    return;
  }
  if (validates(s, NULL, why)) {
    *text = strdup("{}");
    result(k, "SKIP", name, "no --%s given; running with {}", name);
  } else {
    result(k, "SKIP", name, "no --%s given and {} does not validate (%s)", name,
           why);
  }
}

/* ---- Running callbacks ------------------------------------------------- */

struct run {
  struct kit *k;
  cr_plugin_ctx ctx;
  const char *state_in; /* what api->state returns; borrowed */
  int state_asked;
  size_t records, checkpoints, after_last_cp;
  char bad[512]; /* first contract violation */
  char *last_cp; /* owned */
  int cancel_at_first_emit;
  int rc;
  int done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static int declared(const struct kit *k, const char *stream) {
  size_t i;
  json_t *s;
  json_array_foreach(k->streams, i,
                     s) if (strcmp(json_string_value(s), stream) == 0) return 1;
  return 0;
}

static int sink_emit(void *ud, const char *stream, const char *json,
                     size_t len) {
  struct run *r = ud;
  json_t *v = json_loadb(json, len, 0, NULL);
  if (r->bad[0] == '\0' && !declared(r->k, stream))
    snprintf(r->bad, sizeof r->bad, "record on undeclared stream '%s'", stream);
  else if (r->bad[0] == '\0' && !json_is_object(v))
    snprintf(r->bad, sizeof r->bad, "record on '%s' is not a JSON object",
             stream);
  json_decref(v);
  r->records++;
  r->after_last_cp++;
  if (r->cancel_at_first_emit && r->records == 1)
    cr_plugin_ctx_cancel(&r->ctx);
  return 0;
}

static int sink_checkpoint(void *ud, const char *state) {
  struct run *r = ud;
  json_t *v = json_loads(state, 0, NULL);
  if (v == NULL && r->bad[0] == '\0')
    snprintf(r->bad, sizeof r->bad, "checkpoint is not JSON");
  json_decref(v);
  free(r->last_cp);
  r->last_cp = strdup(state);
  r->checkpoints++;
  r->after_last_cp = 0;
  return 0;
}

static const char *sink_state(void *ud) {
  struct run *r = ud;
  r->state_asked = 1;
  return r->state_in;
}

/* create + read + destroy on the calling thread; result in r->rc. */
static void read_once(struct run *r) {
  const struct cr_plugin_descriptor *d = r->k->d;
  struct cr_plugin_params params = {.struct_size = sizeof params,
                                    .authorization_id = "conformance",
                                    .auth_method = d->auth_methods[0],
                                    .credentials_json = r->k->creds,
                                    .config_json = r->k->config,
                                    .work_id = "conformance"};
  struct cr_plugin_sinks sinks = {.ud = r,
                                  .emit = sink_emit,
                                  .checkpoint = sink_checkpoint,
                                  .state = sink_state};
  cr_plugin_ctx_set_sinks(&r->ctx, &sinks);
  void *inst = NULL;
  char err[400] = "";
  r->rc = d->create(cr_host_api_default(), &params, &inst, err, sizeof err);
  if (r->rc == 0) {
    r->rc = d->read(inst, &r->ctx);
    d->destroy(inst);
  } else {
    snprintf(r->bad, sizeof r->bad, "create failed (%d): %s", r->rc, err);
  }
}

static void run_init(struct run *r, struct kit *k, const char *state) {
  memset(r, 0, sizeof *r);
  r->k = k;
  r->state_in = state;
  cr_plugin_ctx_init(&r->ctx, "conformance", NULL);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
}

static void run_cleanup(struct run *r) {
  cr_plugin_ctx_cleanup(&r->ctx);
  free(r->last_cp);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

static const char *read_failure(const struct run *r, char *buf, size_t len) {
  if (r->bad[0] != '\0')
    return r->bad;
  if (r->rc != 0) {
    snprintf(buf, len, "read returned %d%s%s", r->rc,
             r->ctx.last_error.message[0] ? ": " : "",
             r->ctx.last_error.message);
    return buf;
  }
  if (r->records > 0 && r->checkpoints == 0)
    return "records were emitted but no checkpoint was proposed";
  return NULL;
}

static void check_health(struct kit *k) {
  const struct cr_plugin_descriptor *d = k->d;
  if (!(d->capabilities & CR_PLUGIN_CAP_HEALTH_CHECK))
    return result(k, "SKIP", "health_check", "not a capability");
  if (k->creds == NULL)
    return result(k, "SKIP", "health_check", "no usable credentials");
  struct cr_plugin_params params = {.struct_size = sizeof params,
                                    .authorization_id = "conformance",
                                    .auth_method = d->auth_methods[0],
                                    .credentials_json = k->creds,
                                    .config_json = k->config};
  cr_plugin_ctx ctx;
  cr_plugin_ctx_init(&ctx, "conformance", NULL);
  void *inst = NULL;
  char err[512] = "", reason[512] = "";
  struct cr_plugin_health_result res = {.struct_size = sizeof res,
                                        .status = -1,
                                        .reason = reason,
                                        .reason_len = sizeof reason};
  int rc = d->create(cr_host_api_default(), &params, &inst, err, sizeof err);
  if (rc == 0) {
    rc = d->health_check(inst, &ctx, &res);
    d->destroy(inst);
  }
  cr_plugin_ctx_cleanup(&ctx);
  if (rc != 0)
    result(k, "FAIL", "health_check", "returned %d %s", rc, err);
  else if (res.status != CR_PLUGIN_HEALTH_HEALTHY &&
           res.status != CR_PLUGIN_HEALTH_UNHEALTHY &&
           res.status != CR_PLUGIN_HEALTH_UNKNOWN)
    result(k, "FAIL", "health_check", "status %d is not one of the three",
           res.status);
  else if (reason[0] == '\0')
    result(k, "FAIL", "health_check", "empty reason");
  else
    result(k, "PASS", "health_check", NULL);
}

static void check_reads(struct kit *k) {
  char buf[600];
  if (!(k->d->capabilities & CR_PLUGIN_CAP_READ) || k->creds == NULL ||
      k->config == NULL) {
    const char *why = !(k->d->capabilities & CR_PLUGIN_CAP_READ)
                          ? "not a capability"
                          : "no usable credentials or config";
    result(k, "SKIP", "read", "%s", why);
    result(k, "SKIP", "resume", "%s", why);
    return;
  }
  struct run first, second;
  run_init(&first, k, NULL);
  read_once(&first);
  const char *why = read_failure(&first, buf, sizeof buf);
  if (why != NULL)
    result(k, "FAIL", "read", "%s", why);
  else
    result(k, "PASS", "read", NULL);
  if (why != NULL || first.last_cp == NULL) {
    result(k, "SKIP", "resume", "%s",
           why ? "read failed" : "the first read proposed no checkpoint");
    run_cleanup(&first);
    return;
  }
  run_init(&second, k, first.last_cp);
  read_once(&second);
  why = read_failure(&second, buf, sizeof buf);
  if (why != NULL)
    result(k, "FAIL", "resume", "second read: %s", why);
  else
    result(k, "PASS", "resume", "%s",
           second.state_asked ? "" : "note: the plugin never reads its state");
  run_cleanup(&second);
  run_cleanup(&first);
}

/* ---- memory: repeated runs in a child process ---- */

#define MEM_RUNS 200
#define MEM_WARMUP 20
#define MEM_LIMIT_KIB 2048 /* growth over the measured runs */

static long vm_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      kib = atol(line + 6);
  if (f != NULL)
    fclose(f);
  return kib;
}

/* In the child: MEM_RUNS reads (or health checks), RSS after the warm-up
 * and at the end written to fd. */
static void memory_child(struct kit *k, int fd, int use_read) {
  long before = -1, after;
  for (int i = 0; i < MEM_RUNS; i++) {
    if (i == MEM_WARMUP)
      before = vm_rss_kib();
    if (use_read) {
      struct run r;
      run_init(&r, k, NULL);
      read_once(&r);
      run_cleanup(&r);
    } else {
      struct cr_plugin_params params = {.struct_size = sizeof params,
                                        .authorization_id = "conformance",
                                        .auth_method = k->d->auth_methods[0],
                                        .credentials_json = k->creds};
      struct cr_health_outcome o;
      cr_health_check(k->p, &params, NULL, &o);
    }
  }
  after = vm_rss_kib();
  char msg[64];
  int n = snprintf(msg, sizeof msg, "%ld %ld\n", before, after);
  if (write(fd, msg, (size_t)n) != n)
    _exit(2);
  _exit(0);
}

/* The plugin runs MEM_RUNS times in a child process (as a worker would run
 * it, so a crash stays there); its resident memory after the first
 * MEM_WARMUP runs and at the end is reported, and growth past
 * MEM_LIMIT_KIB is a leak. */
static void check_memory(struct kit *k) {
#if defined(__SANITIZE_ADDRESS__)
  result(k, "SKIP", "memory",
         "not measurable under AddressSanitizer (its quarantine keeps freed "
         "memory resident)");
  return;
#endif
  int use_read = (k->d->capabilities & CR_PLUGIN_CAP_READ) &&
                 k->creds != NULL && k->config != NULL;
  int use_health =
      (k->d->capabilities & CR_PLUGIN_CAP_HEALTH_CHECK) && k->creds != NULL;
  if (!use_read && !use_health) {
    result(k, "SKIP", "memory", "nothing to run without credentials");
    return;
  }
  int fds[2];
  if (pipe(fds) != 0) {
    result(k, "SKIP", "memory", "no pipe");
    return;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    memory_child(k, fds[1], use_read);
  }
  close(fds[1]);
  char buf[64] = "";
  ssize_t n = pid > 0 ? read(fds[0], buf, sizeof buf - 1) : -1;
  close(fds[0]);
  int st = 0;
  if (pid > 0)
    waitpid(pid, &st, 0);
  long before = -1, after = -1;
  if (n <= 0 || sscanf(buf, "%ld %ld", &before, &after) != 2 ||
      !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    result(k, "FAIL", "memory", "the child running %d %s died (status %d)",
           MEM_RUNS, use_read ? "reads" : "health checks", st);
    return;
  }
  long grew = after - before;
  if (grew > MEM_LIMIT_KIB)
    result(k, "FAIL", "memory",
           "resident memory grew %ld KiB over %d %s (%ld -> %ld KiB): a leak",
           grew, MEM_RUNS - MEM_WARMUP, use_read ? "reads" : "health checks",
           before, after);
  else
    result(k, "PASS", "memory", "%ld -> %ld KiB over %d %s", before, after,
           MEM_RUNS - MEM_WARMUP, use_read ? "reads" : "health checks");
}

static void *cancel_thread(void *arg) {
  struct run *r = arg;
  read_once(r);
  pthread_mutex_lock(&r->mu);
  r->done = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

/* Cancels a read at its first record; it must return within the bound.
 * Returns 1 when the read is stuck (its thread still runs the plugin). */
static int check_cancel(struct kit *k) {
  if (!(k->d->capabilities & CR_PLUGIN_CAP_READ) || k->creds == NULL ||
      k->config == NULL) {
    result(k, "SKIP", "cancel", "no read to cancel");
    return 0;
  }
  static struct run r; /* outlives a stuck thread */
  run_init(&r, k, NULL);
  r.cancel_at_first_emit = 1;
  pthread_t t;
  if (pthread_create(&t, NULL, cancel_thread, &r) != 0) {
    result(k, "FAIL", "cancel", "cannot start a thread");
    return 0;
  }
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += CANCEL_BOUND_S;
  pthread_mutex_lock(&r.mu);
  while (!r.done && pthread_cond_timedwait(&r.cv, &r.mu, &until) == 0)
    ;
  int done = r.done;
  pthread_mutex_unlock(&r.mu);
  if (!done) {
    result(k, "FAIL", "cancel", "read still running %d s after cancel",
           CANCEL_BOUND_S);
    return 1;
  }
  pthread_join(t, NULL);
  if (r.records == 0)
    result(k, "SKIP", "cancel", "the read emitted no record to cancel at");
  else if (r.rc != CR_PLUGIN_ERR_CANCELLED && r.rc != 0)
    result(k, "FAIL", "cancel", "cancelled read returned %d", r.rc);
  else
    result(k, "PASS", "cancel", NULL);
  run_cleanup(&r);
  return 0;
}

/* ---- The command ------------------------------------------------------- */

static void check_descriptor(struct kit *k) {
  k->streams = json_array();
  json_t *s = k->d->streams_json ? json_loads(k->d->streams_json, 0, NULL)
                                 : json_array();
  size_t i;
  json_t *e;
  json_array_foreach(s, i, e) {
    const char *n = json_string_value(json_object_get(e, "name"));
    if (n != NULL)
      json_array_append_new(k->streams, json_string(n));
  }
  json_decref(s);
  result(k, "PASS", "descriptor", NULL);
}

/* A plugin that declares no streams takes them from its config's
 * "streams" (names, or objects with a name), as filedrop does. */
static void config_streams(struct kit *k) {
  if (json_array_size(k->streams) > 0 || k->config == NULL)
    return;
  json_t *c = json_loads(k->config, 0, NULL);
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(c, "streams"), i, e) {
    json_t *n = json_is_string(e) ? e : json_object_get(e, "name");
    if (json_is_string(n))
      json_array_append(k->streams, n);
  }
  json_decref(c);
}

static void check_schemas(struct kit *k) {
  char names[512] = "";
  snprintf(names, sizeof names, "%s%s",
           cr_plugin_credentials_schema(k->p) ? "credentials" : "",
           cr_plugin_config_schema(k->p) ? " config" : "");
  result(k, "PASS", "schemas", "%s", names[0] ? "" : "none declared");
}

static int parse(int argc, char **argv, struct kit *k) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      k->json = 1;
    else if (strcmp(argv[i], "--credentials") == 0 && i + 1 < argc)
      k->cred_file = argv[++i];
    else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
      k->config_file = argv[++i];
    else if (argv[i][0] != '-' && k->path == NULL)
      k->path = argv[i];
    else {
      cr_cli_errorf("plugins test: unexpected argument '%s'", argv[i]);
      return -1;
    }
  }
  if (k->path == NULL)
    cr_cli_errorf("plugins test: missing PATH.so");
  return k->path ? 0 : -1;
}

static int run_checks(struct kit *k) {
  char imports[512];
  if (scan_imports(k->path, imports, sizeof imports) != 0)
    result(k, "FAIL", "imports", "not a readable 64-bit ELF file");
  else if (imports[0] != '\0')
    result(k, "FAIL", "imports",
           "imports %s: make HTTP calls through api->http", imports);
  else
    result(k, "PASS", "imports", NULL);
  cr_plugin_host *h = NULL;
  char err[1024] = "";
  if (cr_plugin_host_new(NULL, &h) != 0)
    return CR_EXIT_RUNTIME;
  if (cr_plugin_host_load_file(h, k->path, err, sizeof err) != 0) {
    result(k, "FAIL", "descriptor", "%s", err);
    cr_plugin_host_free(h);
    return CR_EXIT_INVALID;
  }
  k->p = cr_plugin_host_at(h, 0);
  k->d = cr_plugin_desc(k->p);
  check_descriptor(k);
  check_schemas(k);
  check_input(k, "credentials", cr_plugin_credentials_schema(k->p),
              k->cred_file, &k->creds);
  check_input(k, "config", cr_plugin_config_schema(k->p), k->config_file,
              &k->config);
  config_streams(k);
  check_health(k);
  check_reads(k);
  check_memory(k);
  if (check_cancel(k))
    return -1; /* a plugin thread is still running: do not unload it */
  cr_plugin_host_free(h);
  return k->failed ? CR_EXIT_INVALID : CR_EXIT_OK;
}

int cr_cmd_plugins_test(int argc, char **argv) {
  struct kit k = {0};
  if (parse(argc, argv, &k) != 0)
    return CR_EXIT_USAGE;
  if (access(k.path, R_OK) != 0) {
    cr_cli_errorf("plugins test: cannot read %s", k.path);
    return CR_EXIT_RUNTIME;
  }
  if ((k.cred_file && read_input(k.cred_file, &k.creds) != 0) ||
      (k.config_file && read_input(k.config_file, &k.config) != 0)) {
    free(k.creds);
    free(k.config);
    return CR_EXIT_RUNTIME;
  }
  k.report = json_array();
  int rc = run_checks(&k);
  int stuck = rc < 0;
  if (stuck)
    rc = CR_EXIT_INVALID;
  if (k.json) {
    json_t *o = json_pack("{s:s, s:b, s:O}", "plugin", k.path, "passed",
                          !k.failed, "checks", k.report);
    json_dumpf(o, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(o);
  }
  fflush(stdout);
  if (stuck)
    _exit(rc); /* the stuck read's thread still runs plugin code */
  json_decref(k.report);
  json_decref(k.streams);
  free(k.creds);
  free(k.config);
  return rc;
}
