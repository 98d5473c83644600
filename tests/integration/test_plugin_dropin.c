/* test_plugin_dropin.c: plugins dropped into, upgraded in and removed from
 * a running daemon (real daemon with its REST API on loopback, real plugin
 * files renamed or copied into a watched directory, real dlopen and worker
 * processes). The "dropin" test plugin is built in several versions
 * (tests/plugins/dropin). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_fixture.h"
#include "testutil.h"

#include <cmocka.h>

#define TOKEN "dropin-admin-token-0123456789abcdef"
#define DROPIN_DIR CR_TEST_PLUGIN_DIR "/dropin"

struct env {
  struct cr_api_fixture f;
  char *pdir; /* the watched plugin directory */
  char *tmp;  /* outputs and hold files */
};

/* ---- Files ---- */

/* Installs the dropin build `version` (v1, v2, v3strict, badabi) as
 * pdir/dropin.so the safe way: copied next to it, then renamed. */
static void install(const struct env *e, const char *version) {
  char src[1024], tmp[1024], dst[1024];
  snprintf(src, sizeof src, "%s/dropin_%s.so", DROPIN_DIR, version);
  snprintf(tmp, sizeof tmp, "%s/.dropin.so.part", e->pdir);
  snprintf(dst, sizeof dst, "%s/dropin.so", e->pdir);
  cr_test_copy_file(src, tmp);
  assert_int_equal(chmod(tmp, 0755), 0);
  assert_int_equal(rename(tmp, dst), 0);
}

static char *hold_path(const struct env *e) {
  return cr_test_join(e->tmp, "hold");
}

/* ---- API ---- */

static json_t *get(const struct env *e, const char *path) {
  json_t *v = NULL;
  long st = cr_api_call(&e->f, TOKEN, "GET", path, NULL, NULL, &v, NULL);
  if (st != 200)
    fail_msg("GET %s: %ld", path, st);
  return v;
}

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

/* The version of provider dropin loaded now, or "" when none. */
static char *loaded_version(const struct env *e) {
  json_t *v = get(e, "/v1/plugins");
  json_t *items = json_object_get(v, "items"), *p;
  size_t i;
  char *out = strdup("");
  json_array_foreach(items, i, p) if (!strcmp(jstr(p, "name"), "dropin")) {
    free(out);
    out = strdup(jstr(p, "version"));
  }
  json_decref(v);
  return out;
}

/* Waits (bounded: 10 s) until dropin's loaded version is want ("" none). */
static void wait_version(const struct env *e, const char *want) {
  char *got = NULL;
  for (int i = 0; i < 500; i++) {
    free(got);
    got = loaded_version(e);
    if (!strcmp(got, want)) {
      free(got);
      return;
    }
    usleep(20 * 1000);
  }
  fail_msg("dropin version '%s', expected '%s'", got, want);
}

/* The provider events of dropin with verb (a new reference, an array). */
static json_t *provider_events(const struct env *e, const char *verb) {
  char path[256];
  snprintf(path, sizeof path,
           "/v1/events?subject_type=provider&subject_id=dropin%s%s",
           verb ? "&verb=" : "", verb ? verb : "");
  json_t *v = get(e, path);
  json_t *items = json_incref(json_object_get(v, "items"));
  json_decref(v);
  return items;
}

static size_t count_events(const struct env *e, const char *verb) {
  json_t *a = provider_events(e, verb);
  size_t n = json_array_size(a);
  json_decref(a);
  return n;
}

static int64_t run_work(const struct env *e, const char *work) {
  char path[128];
  snprintf(path, sizeof path, "/v1/works/%s/runs", work);
  json_t *v = NULL;
  long st = cr_api_call(&e->f, TOKEN, "POST", path, NULL, NULL, &v, NULL);
  if (st != 201)
    fail_msg("POST %s: %ld", path, st);
  int64_t id = json_integer_value(json_object_get(v, "id"));
  json_decref(v);
  return id;
}

/* Polls execution id until its state is `want` (bounded: 30 s). */
static void wait_state(const struct env *e, int64_t id, const char *want) {
  char path[64];
  snprintf(path, sizeof path, "/v1/executions/%lld", (long long)id);
  for (int i = 0; i < 1500; i++) {
    json_t *v = get(e, path);
    int done = !strcmp(jstr(v, "state"), want);
    if (!done && (!strcmp(jstr(v, "state"), "Failed") ||
                  !strcmp(jstr(v, "state"), "Completed")))
      fail_msg("execution %lld ended %s (%s), expected %s", (long long)id,
               jstr(v, "state"), jstr(v, "error"), want);
    json_decref(v);
    if (done)
      return;
    usleep(20 * 1000);
  }
  json_t *v = get(e, path);
  fail_msg("execution %lld never reached %s: %s (%s)", (long long)id, want,
           jstr(v, "state"), jstr(v, "error"));
}

/* `connrun plugins ARGS... --server` against the fixture: its output
 * (malloc'd) and exit status. */
static char *cli(const struct env *e, const char *sub, const char *flag,
                 int *status) {
  char *argv[] = {CR_CONNRUN_BIN,    "plugins",    (char *)sub, "--server",
                  (char *)e->f.base, (char *)flag, NULL};
  char *env[] = {"CONNRUN_TOKEN=" TOKEN, NULL};
  char *out = NULL;
  *status = cr_test_run(argv, env, &out);
  return out;
}

/* Asserts that execution id's transition to Executing names version v. */
static void assert_ran_version(const struct env *e, int64_t id, const char *v) {
  char path[64], want[64];
  snprintf(path, sizeof path, "/v1/executions/%lld", (long long)id);
  snprintf(want, sizeof want, "plugin %s started", v);
  json_t *x = get(e, path), *t;
  size_t i;
  int seen = 0;
  json_array_foreach(json_object_get(x, "transitions"), i,
                     t) if (!strcmp(jstr(t, "to"), "Executing")) seen =
      !strcmp(jstr(t, "reason"), want);
  json_decref(x);
  if (!seen)
    fail_msg("execution %lld did not report '%s'", (long long)id, want);
}

static json_t *work_view(const struct env *e, const char *id) {
  char path[128];
  snprintf(path, sizeof path, "/v1/works/%s", id);
  return get(e, path);
}

/* ---- Set-up ---- */

static void env_stop(struct env *e) {
  cr_api_fixture_stop(&e->f);
  cr_test_rmtree(e->pdir);
  cr_test_rmtree(e->tmp);
  free(e->pdir);
  free(e->tmp);
}

/* The authorization and work "w" on dropin (isolation given), writing to
 * tmp/out-w/items.jsonl, holding while tmp/hold exists. */
static void dropin_works(const struct env *e, const char *isolation, char *buf,
                         size_t len) {
  snprintf(buf, len,
           "authorizations:\n"
           "  - { id: a, provider: dropin, method: none }\n"
           "works:\n"
           "  - id: w\n"
           "    authorization: a\n"
           "    provider: dropin\n"
           "    isolation: %s\n"
           "    destination: { type: jsonl, path: \"%s/out-w\" }\n"
           "    config: { hold_file: \"%s/hold\" }\n",
           isolation, e->tmp, e->tmp);
}

/* The configuration: the watched directory, an admin token and, when
 * isolation is not NULL, the dropin works (dropin_works). */
static void write_config(const struct env *e, const char *isolation, char *buf,
                         size_t len) {
  char works[2048] = "";
  if (isolation != NULL)
    dropin_works(e, isolation, works, sizeof works);
  snprintf(buf, len,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  api_tokens: [{ name: admin, token: \"%s\", scopes: [read, "
           "write, admin] }]\n%s",
           e->pdir, TOKEN, works);
}

/* Starts a daemon watching a new plugin directory holding the dropin build
 * `initial` (NULL: empty), with the dropin works when isolation is set. */
static void env_start(struct env *e, const char *initial,
                      const char *isolation) {
  memset(e, 0, sizeof *e);
  e->pdir = cr_test_mkdtemp("dropin-plugins");
  e->tmp = cr_test_mkdtemp("dropin-tmp");
  if (initial != NULL)
    install(e, initial);
  char cfg[4096];
  write_config(e, isolation, cfg, sizeof cfg);
  cr_api_fixture_start(&e->f, cfg);
}

/* The number of records in tmp/out-w/items.jsonl that carry version v. */
static int records_of(const struct env *e, const char *v) {
  char *path = cr_test_join(e->tmp, "out-w/items.jsonl");
  char *text = cr_test_read_file(path);
  char needle[64];
  snprintf(needle, sizeof needle, "\"version\":\"%s\"", v);
  int n = 0;
  for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p++)
    n++;
  free(text);
  free(path);
  return n;
}

/* Lines of /proc/pid/maps naming a deleted dropin file (an old version
 * still mapped). */
static int deleted_mappings(int pid) {
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0; /* gone */
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "dropin") && strstr(line, "(deleted)"))
      n++;
  fclose(f);
  return n;
}

/* ---- Tests ---- */

/* A file written slowly, in chunks with pauses and a rescan asked for in
 * the middle, is loaded once, complete: never a refusal of a half file. */
static void test_slow_copy_loaded_once(void **state) {
  (void)state;
  struct env e;
  env_start(&e, NULL, NULL);
  char *src = cr_test_read_file(DROPIN_DIR "/dropin_v1.so");
  struct stat st;
  assert_int_equal(stat(DROPIN_DIR "/dropin_v1.so", &st), 0);
  char *dst = cr_test_join(e.pdir, "dropin.so");
  int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  assert_true(fd >= 0);
  size_t total = (size_t)st.st_size, chunk = total / 8 + 1, off = 0;
  for (int i = 0; off < total; i++) {
    size_t n = total - off < chunk ? total - off : chunk;
    assert_int_equal(write(fd, src + off, n), (ssize_t)n);
    off += n;
    usleep(60 * 1000);
    if (i == 3) /* a rescan while the file is half written */
      assert_int_equal(cr_api_call(&e.f, TOKEN, "POST", "/v1/plugins/rescan",
                                   NULL, NULL, NULL, NULL),
                       202);
    usleep(60 * 1000);
    char *v = loaded_version(&e);
    assert_string_equal(v, ""); /* not loaded before it is complete */
    free(v);
  }
  assert_int_equal(close(fd), 0);
  wait_version(&e, "1.0.0");
  usleep(200 * 1000); /* let any late rescan happen */
  assert_int_equal(count_events(&e, "created"), 1);
  assert_int_equal(count_events(&e, "failed"), 0);
  json_t *ev = provider_events(&e, "created");
  json_t *data = json_object_get(json_array_get(ev, 0), "data");
  assert_string_equal(jstr(data, "version"), "1.0.0");
  assert_non_null(strstr(jstr(data, "path"), "dropin.so"));
  assert_true(strlen(jstr(data, "abi")) >= 3);
  json_decref(ev);
  free(dst);
  free(src);
  env_stop(&e);
}

/* A plugin dropped in while `connrun serve` runs a long sync, then a work
 * using it added to the configuration and SIGHUP: the work runs, the sync
 * in progress ends undisturbed (first attempt, every record), and the
 * daemon is the same process. */
static void test_sighup_drop_in(void **state) {
  (void)state;
  struct env e;
  memset(&e, 0, sizeof e);
  e.pdir = cr_test_mkdtemp("dropin-plugins");
  e.tmp = cr_test_mkdtemp("dropin-tmp");
  char *bdir = cr_test_mkdtemp("dropin-behave");
  char *bso = cr_test_join(bdir, "behave.so");
  cr_test_copy_file(CR_TEST_PLUGIN_DIR "/behave.so", bso);
  assert_int_equal(chmod(bso, 0755), 0);
  const char *head_fmt =
      "host:\n"
      "  data_dir: ./data\n"
      "  listen: \"127.0.0.1:0\"\n"
      "  plugin_dirs: [\"%s\", \"%s\"]\n"
      "  api_tokens: [{ name: admin, token: \"%s\", scopes: [read, "
      "write, admin] }]\n"
      "authorizations:\n"
      "  - { id: key, provider: behave, method: api_key, credentials: "
      "{ api_key: k } }\n"
      "%s"
      "works:\n"
      "  - { id: long, provider: behave, authorization: key, destination: "
      "{ type: jsonl, path: \"%s/out-long\" }, config: { count: 30, "
      "delay_us: 100000, checkpoint_every: 5 } }\n"
      "%s";
  char cfg[8192];
  snprintf(cfg, sizeof cfg, head_fmt, bdir, e.pdir, TOKEN, "", e.tmp, "");
  char *path = cr_test_write_file(e.tmp, "c.yaml", cfg);
  struct cr_test_proc p = cr_test_serve(e.tmp, path, NULL, NULL);
  e.f.port = cr_test_serve_port(&p);
  assert_true(e.f.port > 0);
  snprintf(e.f.base, sizeof e.f.base, "http://127.0.0.1:%d", e.f.port);
  int64_t long_id = run_work(&e, "long");
  wait_state(&e, long_id, "Executing");

  install(&e, "v1");
  wait_version(&e, "1.0.0");
  char works[2048];
  dropin_works(&e, "process", works, sizeof works);
  char *auth = strstr(works, "  - { id: a,"), *wk = strstr(works, "  - id: w");
  char *cut = strstr(works, "works:\n");
  assert_non_null(auth);
  assert_non_null(wk);
  assert_non_null(cut);
  *cut = '\0'; /* auth = the authorization line, wk = the work */
  snprintf(cfg, sizeof cfg, head_fmt, bdir, e.pdir, TOKEN, auth, e.tmp, wk);
  free(cr_test_write_file(e.tmp, "c.yaml", cfg));
  assert_int_equal(kill(p.pid, SIGHUP), 0);
  assert_true(cr_test_wait_log(&p, "SIGHUP", 1));
  json_t *w = NULL;
  for (int i = 0; i < 500; i++) {
    json_decref(w);
    w = NULL;
    if (cr_api_call(&e.f, TOKEN, "GET", "/v1/works/w", NULL, NULL, &w, NULL) ==
        200)
      break;
    usleep(20 * 1000);
  }
  assert_non_null(w);
  assert_string_equal(jstr(w, "status"), "Active");
  json_decref(w);
  int64_t id = run_work(&e, "w");
  wait_state(&e, id, "Completed");
  assert_int_equal(records_of(&e, "1.0.0"), 3);

  wait_state(&e, long_id, "Completed");
  char ep[64];
  snprintf(ep, sizeof ep, "/v1/executions/%lld", (long long)long_id);
  json_t *lv = get(&e, ep);
  assert_int_equal(json_integer_value(json_object_get(lv, "attempt")), 1);
  assert_int_equal(json_integer_value(json_object_get(lv, "records")), 30);
  json_decref(lv);
  assert_int_equal(kill(p.pid, 0), 0); /* the same daemon */
  assert_int_equal(cr_test_proc_stop(&p), 0);
  free(path);
  free(bso);
  cr_test_rmtree(bdir);
  free(bdir);
  cr_test_rmtree(e.pdir);
  cr_test_rmtree(e.tmp);
  free(e.pdir);
  free(e.tmp);
}

/* A reload that adds a plugin directory holding a new provider, with works
 * on it: they apply in that reload (not Error), and the new directory is
 * watched from then on. */
static void test_reload_adds_directory(void **state) {
  (void)state;
  struct env e;
  env_start(&e, NULL, NULL);
  char *second = cr_test_mkdtemp("dropin-plugins2");
  char *first = e.pdir;
  e.pdir = second;
  install(&e, "v1"); /* into the directory not configured yet */
  char works[2048], cfg[4096];
  dropin_works(&e, "inline", works, sizeof works);
  snprintf(cfg, sizeof cfg,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\", \"%s\"]\n"
           "  api_tokens: [{ name: admin, token: \"%s\", scopes: [read, "
           "write, admin] }]\n%s",
           first, second, TOKEN, works);
  free(cr_test_write_file(e.f.dir, "c.yaml", cfg));
  cr_daemon_reload(e.f.d);
  wait_version(&e, "1.0.0");
  json_t *w = NULL;
  for (int i = 0; i < 500; i++) {
    json_decref(w);
    w = NULL;
    if (cr_api_call(&e.f, TOKEN, "GET", "/v1/works/w", NULL, NULL, &w, NULL) ==
            200 &&
        !strcmp(jstr(w, "status"), "Active"))
      break;
    usleep(20 * 1000);
  }
  assert_string_equal(jstr(w, "status"), "Active");
  json_decref(w);
  install(&e, "v2"); /* watched now: no reload, no API call */
  wait_version(&e, "2.0.0");
  e.pdir = first;
  cr_test_rmtree(second);
  free(second);
  env_stop(&e);
}

/* v1 replaced by v2 while a v1 sync runs: it ends on v1, the next one runs
 * v2, and nothing of v1 stays mapped once it ended. */
static void upgrade_during_sync(const char *isolation) {
  struct env e;
  env_start(&e, "v1", isolation);
  char *hold = hold_path(&e);
  free(cr_test_write_file(e.tmp, "hold", "1"));
  int64_t first = run_work(&e, "w");
  wait_state(&e, first, "Executing");
  install(&e, "v2");
  wait_version(&e, "2.0.0");
  json_t *ev = provider_events(&e, "updated");
  assert_int_equal(json_array_size(ev), 1);
  json_t *data = json_object_get(json_array_get(ev, 0), "data");
  assert_string_equal(jstr(data, "old_version"), "1.0.0");
  assert_string_equal(jstr(data, "version"), "2.0.0");
  json_decref(ev);
  int st = 0;
  char *out = cli(&e, "list", NULL, &st); /* what is loaded now, since when */
  assert_int_equal(st, 0);
  assert_non_null(strstr(out, "dropin"));
  assert_non_null(strstr(out, "2.0.0"));
  assert_non_null(strstr(out, "LOADED"));
  assert_null(strstr(out, "1.0.0"));
  free(out);
  out = cli(&e, "rescan", NULL, &st);
  assert_int_equal(st, 0);
  free(out);
  assert_int_equal(unlink(hold), 0);
  wait_state(&e, first, "Completed");
  assert_int_equal(records_of(&e, "1.0.0"), 3);
  assert_int_equal(records_of(&e, "2.0.0"), 0);
  assert_ran_version(&e, first, "1.0.0");
  int64_t second = run_work(&e, "w");
  wait_state(&e, second, "Completed");
  assert_int_equal(records_of(&e, "2.0.0"), 3);
  assert_ran_version(&e, second, "2.0.0");
  /* nothing of v1 left: not in this process (inline), not in a worker */
  usleep(300 * 1000);
  assert_int_equal(deleted_mappings(getpid()), 0);
  int kids[64];
  size_t nk = cr_test_children(getpid(), kids, 64);
  for (size_t i = 0; i < nk; i++)
    assert_int_equal(deleted_mappings(kids[i]), 0);
  free(hold);
  env_stop(&e);
}

static void test_upgrade_inline(void **state) {
  (void)state;
  upgrade_during_sync("inline");
}

static void test_upgrade_process(void **state) {
  (void)state;
  upgrade_during_sync("process");
}

/* A refused replacement leaves v1 serving; removal turns the work to Error
 * and the authorization Unhealthy; the return brings them back. */
static void test_refused_removed_returned(void **state) {
  (void)state;
  struct env e;
  env_start(&e, "v1", "inline");

  install(&e, "badabi");
  json_t *ev = NULL;
  for (int i = 0; i < 500 && json_array_size(ev) == 0; i++) {
    json_decref(ev);
    usleep(20 * 1000);
    ev = provider_events(&e, "failed");
  }
  assert_int_equal(json_array_size(ev), 1);
  json_t *data = json_object_get(json_array_get(ev, 0), "data");
  assert_non_null(strstr(jstr(data, "reason"), "built for ABI 2."));
  json_decref(ev);
  char *v = loaded_version(&e);
  assert_string_equal(v, "1.0.0"); /* v1 still serving */
  free(v);
  json_t *pl = get(&e, "/v1/plugins");
  assert_int_equal(json_array_size(json_object_get(pl, "refused")), 1);
  json_decref(pl);
  int64_t id = run_work(&e, "w");
  wait_state(&e, id, "Completed");
  assert_int_equal(records_of(&e, "1.0.0"), 3);

  char *so = cr_test_join(e.pdir, "dropin.so");
  assert_int_equal(unlink(so), 0);
  wait_version(&e, "");
  assert_int_equal(count_events(&e, "deleted"), 1);
  json_t *w = work_view(&e, "w");
  assert_string_equal(jstr(w, "status"), "Error");
  assert_string_equal(jstr(w, "status_reason"),
                      "provider 'dropin' is not loaded");
  json_decref(w);
  json_t *a = NULL;
  for (int i = 0; i < 500; i++) {
    json_decref(a);
    a = get(&e, "/v1/authorizations/a");
    if (!strcmp(jstr(json_object_get(a, "health"), "status"), "Unhealthy"))
      break;
    usleep(20 * 1000);
  }
  json_t *h = json_object_get(a, "health");
  assert_string_equal(jstr(h, "status"), "Unhealthy");
  assert_string_equal(jstr(h, "reason"), "provider 'dropin' is not loaded");
  json_decref(a);

  install(&e, "v1");
  wait_version(&e, "1.0.0");
  assert_int_equal(count_events(&e, "created"), 1);
  w = work_view(&e, "w");
  assert_string_equal(jstr(w, "status"), "Active");
  assert_true(json_is_null(json_object_get(w, "status_reason")));
  json_decref(w);
  id = run_work(&e, "w");
  wait_state(&e, id, "Completed");
  assert_int_equal(records_of(&e, "1.0.0"), 6);

  /* an upgrade whose schema no longer accepts the work's config */
  install(&e, "v3strict");
  wait_version(&e, "3.0.0");
  w = work_view(&e, "w");
  assert_string_equal(jstr(w, "status"), "Error");
  assert_non_null(strstr(jstr(w, "status_reason"), "region"));
  json_decref(w);
  free(so);
  env_stop(&e);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slow_copy_loaded_once),
      cmocka_unit_test(test_sighup_drop_in),
      cmocka_unit_test(test_reload_adds_directory),
      cmocka_unit_test(test_upgrade_inline),
      cmocka_unit_test(test_upgrade_process),
      cmocka_unit_test(test_refused_removed_returned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
