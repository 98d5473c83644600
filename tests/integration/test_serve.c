/* test_serve.c: the real `connrun serve` process: configuration applied to
 * the store with its events, health checks recorded, SIGHUP reload applying
 * created/updated/deleted, an invalid reload keeping the running
 * configuration, a clean stop on SIGTERM, and no secret in any output or
 * stored event. */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

#define SECRET "good"
#define REVOKED "revoked-Zq8x71"

static char *config_text(const char *extra_auth, const char *revoked_name) {
  static char buf[4096];
  snprintf(buf, sizeof buf,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  listen: 127.0.0.1:0\n"
           "  health_check_interval: 1h\n"
           "authorizations:\n"
           "  - id: ok\n"
           "    provider: example\n"
           "    method: api_key\n"
           "    credentials: { api_key: \"${CR_TEST_KEY}\" }\n"
           "  - id: revoked\n"
           "    name: %s\n"
           "    provider: example\n"
           "    method: api_key\n"
           "    credentials: { api_key: \"%s\" }\n"
           "%s"
           "works:\n"
           "  - id: items\n"
           "    provider: example\n"
           "    authorization: ok\n"
           "    schedule: { every: 1h }\n"
           "    config: { streams: [items] }\n",
           CR_PLUGIN_DIR, revoked_name, REVOKED, extra_auth);
  return buf;
}

static struct cr_test_proc start(const char *dir, const char *cfg) {
  static char *env[] = {"CR_TEST_KEY=" SECRET, NULL};
  return cr_test_serve(dir, cfg, NULL, env);
}

static int count_events(cr_store *s, const char *type, const char *id,
                        const char *verb) {
  struct cr_event_filter f = {.subject_type = type, .subject_id = id};
  const char *verbs[1] = {verb};
  f.verbs = verbs;
  f.nverbs = 1;
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  cr_event_rec_free_list(ev, n);
  return (int)n;
}

static void assert_no_secret_in_events(cr_store *s) {
  struct cr_event_filter f = {.limit = 10000};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  assert_true(n > 0);
  for (size_t i = 0; i < n; i++) {
    assert_null(strstr(ev[i].data_json, REVOKED));
    assert_null(strstr(ev[i].data_json, "api_key\":"));
  }
  cr_event_rec_free_list(ev, n);
}

static void test_serve_apply_health_reload_stop(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("serve");
  char *cfg = cr_test_write_file(dir, "c.yaml", config_text("", "Revoked"));
  struct cr_test_proc d = start(dir, cfg);
  assert_true(cr_test_wait_log(&d, "auth revoked (example): Unhealthy", 1));
  assert_true(cr_test_wait_log(&d, "auth ok (example): Healthy", 1));

  /* Reload: revoked renamed (updated), work removed (deleted), new auth. */
  char *text = strdup(config_text("  - id: extra\n    provider: example\n"
                                  "    method: none\n",
                                  "Revoked key"));
  char *works = strstr(text, "works:");
  *works = '\0';
  free(cr_test_write_file(dir, "c.yaml", text));
  free(text);
  kill(d.pid, SIGHUP);
  assert_true(
      cr_test_wait_log(&d, "1 created, 1 updated, 1 deleted, 1 unchanged", 1));
  assert_true(cr_test_wait_log(&d, "auth extra (example):", 1));

  /* An invalid configuration is reported and the running one kept. */
  free(cr_test_write_file(dir, "c.yaml", "host: [\n"));
  kill(d.pid, SIGHUP);
  assert_true(cr_test_wait_log(&d, "keeping the running one", 1));
  char *log_path = strdup(d.log_path);
  assert_int_equal(cr_test_proc_stop(&d), 0);

  char *log = cr_test_read_file(log_path);
  free(log_path);
  assert_non_null(strstr(log, "stopped"));
  assert_null(strstr(log, REVOKED));
  free(log);

  char data[4096];
  snprintf(data, sizeof data, "%s/data", dir);
  cr_store *s = NULL;
  char err[256];
  assert_int_equal(cr_store_open(data, &s, err, sizeof err), 0);
  assert_int_equal(count_events(s, "auth", "ok", "created"), 1);
  assert_int_equal(count_events(s, "auth", "revoked", "created"), 1);
  assert_int_equal(count_events(s, "auth", "revoked", "updated"), 1);
  assert_int_equal(count_events(s, "auth", "extra", "created"), 1);
  assert_int_equal(count_events(s, "work", "items", "created"), 1);
  assert_int_equal(count_events(s, "work", "items", "deleted"), 1);
  assert_true(count_events(s, "auth", "ok", "healthy") >= 1);
  assert_true(count_events(s, "auth", "revoked", "unhealthy") >= 1);
  struct cr_health_rec h = {0};
  assert_int_equal(cr_store_auth_health_latest(s, "revoked", &h), 0);
  assert_int_equal(h.status, CR_HEALTH_UNHEALTHY);
  assert_string_equal(h.reason, "api key rejected");
  cr_health_rec_clear(&h);
  assert_no_secret_in_events(s);
  cr_store_close(s);

  free(cfg);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_serve_refuses_invalid_config(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("serve-bad");
  char *cfg = cr_test_write_file(dir, "c.yaml",
                                 "host: { data_dir: ./data }\n"
                                 "authorizations:\n"
                                 "  - id: a\n    provider: nope\n"
                                 "    method: api_key\n");
  char *argv[] = {CR_CONNRUN_BIN, "serve", "-c", cfg, NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 1);
  assert_non_null(strstr(out, "c.yaml:4:15: error: unknown provider 'nope'"));
  free(out);
  char *usage[] = {CR_CONNRUN_BIN, "serve", NULL};
  assert_int_equal(cr_test_run(usage, NULL, NULL), 2);
  free(cfg);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serve_apply_health_reload_stop),
      cmocka_unit_test(test_serve_refuses_invalid_config),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
