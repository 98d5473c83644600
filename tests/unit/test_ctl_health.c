/* test_ctl_health.c: one health check through control/ctl_health.c with a
 * real plugin and store: the record, its event, and credentials the plugin
 * rotated during the check stored with an event that never carries them. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "control/apply.h"
#include "control/ctl_health.h"
#include "fake_http.h"
#include "store/store.h"

static void test_rotation_during_check(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("ctl-health");
  char cfg_text[1024];
  snprintf(cfg_text, sizeof cfg_text,
           "host: {data_dir: ./data}\n"
           "authorizations:\n"
           "  - {id: a, provider: behave, method: api_key, credentials: "
           "{api_key: first-key-1234}}\n"
           "works:\n"
           "  - {id: w, provider: behave, authorization: a, config: {mode: "
           "cred}}\n");
  char *path = cr_test_write_file(dir, "c.yaml", cfg_text);
  cr_diags d;
  cr_diags_init(&d);
  cr_config *cfg = NULL;
  assert_int_equal(cr_config_load(path, &cfg, &d), 0);
  cr_plugin_host *h = NULL;
  char err[512];
  assert_int_equal(cr_plugin_host_new(NULL, &h), 0);
  assert_int_equal(cr_plugin_host_load_file(h, CR_TEST_PLUGIN_DIR "/behave.so",
                                            err, sizeof err),
                   0);
  cr_store *s = NULL;
  assert_int_equal(cr_store_open(cfg->host.data_dir, &s, err, sizeof err), 0);
  assert_int_equal(cr_apply_config(s, cfg, "config", NULL, err, sizeof err), 0);
  const struct cr_config_auth *a = cr_config_find_auth(cfg, "a");
  struct cr_ctl_health_input in;
  struct cr_health_outcome o;
  assert_int_equal(cr_ctl_health_prepare(s, cfg, a, &in), 0);
  assert_int_equal(cr_ctl_health_exec(cfg, cr_plugin_host_find(h, "behave"), a,
                                      &in, NULL, &o),
                   0);
  assert_string_equal(o.reason, "behave ok (rotation stored)");
  assert_non_null(in.rotated);
  assert_int_equal(cr_ctl_health_record(s, a, &o, "system", &in), 0);
  cr_ctl_health_input_clear(&in);
  /* The next check gets the rotated credentials. */
  assert_int_equal(cr_ctl_health_prepare(s, cfg, a, &in), 0);
  assert_non_null(strstr(in.credentials, "rotated-h"));
  cr_ctl_health_input_clear(&in);
  /* One `auth updated` event says so, without them. */
  const char *verbs[] = {"updated"};
  struct cr_event_filter f = {
      .subject_type = "auth", .subject_id = "a", .verbs = verbs, .nverbs = 1};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_non_null(strstr(ev[0].data_json, "health check"));
  assert_null(strstr(ev[0].data_json, "rotated-h"));
  cr_event_rec_free_list(ev, n);
  cr_store_close(s);
  cr_plugin_host_free(h);
  cr_config_free(cfg);
  cr_diags_free(&d);
  free(path);
  cr_test_rmtree(dir);
  free(dir);
}

/* The fake provider of the example plugin's HTTP check: 200 for the key
 * "good", 503 for "flaky", 401 otherwise. */
static void fake_me(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  (void)ud;
  const char *auth = cr_fake_http_header(req, "Authorization");
  if (strcmp(req->path, "/v1/me") != 0)
    resp->status = 404;
  else if (auth && !strcmp(auth, "Bearer good"))
    resp->body = "{\"id\":\"me\"}";
  else if (auth && !strcmp(auth, "Bearer flaky"))
    resp->status = 503;
  else
    resp->status = 401;
}

/* The template plugin's real check: settings.base_url (ABI 1.1) makes it
 * ask the provider through the host, counted, mapped to the three states. */
static void test_example_http_check(void **state) {
  (void)state;
  cr_fake_http *srv = NULL;
  assert_int_equal(cr_fake_http_start(fake_me, NULL, &srv), 0);
  char *dir = cr_test_mkdtemp("ctl-example");
  char cfg_text[2048];
  snprintf(cfg_text, sizeof cfg_text,
           "host: {data_dir: ./data}\n"
           "authorizations:\n"
           "  - {id: ok, provider: example, method: api_key, credentials: "
           "{api_key: good}, settings: {base_url: \"%s\"}}\n"
           "  - {id: bad, provider: example, method: api_key, credentials: "
           "{api_key: wrong-key}, settings: {base_url: \"%s\"}}\n"
           "  - {id: down, provider: example, method: api_key, credentials: "
           "{api_key: flaky}, settings: {base_url: \"%s\"}}\n",
           cr_fake_http_url(srv), cr_fake_http_url(srv), cr_fake_http_url(srv));
  char *path = cr_test_write_file(dir, "c.yaml", cfg_text);
  cr_diags d;
  cr_diags_init(&d);
  cr_config *cfg = NULL;
  assert_int_equal(cr_config_load(path, &cfg, &d), 0);
  cr_plugin_host *h = NULL;
  char err[512];
  assert_int_equal(cr_plugin_host_new(NULL, &h), 0);
  assert_int_equal(
      cr_plugin_host_load_file(h, CR_PLUGIN_DIR "/example.so", err, sizeof err),
      0);
  assert_int_equal(cr_config_check_plugins(cfg, h, &d), 0);
  const char *ids[] = {"ok", "bad", "down"};
  const int want[] = {CR_PLUGIN_HEALTH_HEALTHY, CR_PLUGIN_HEALTH_UNHEALTHY,
                      CR_PLUGIN_HEALTH_UNKNOWN};
  for (int i = 0; i < 3; i++) {
    const struct cr_config_auth *a = cr_config_find_auth(cfg, ids[i]);
    struct cr_ctl_health_input in;
    struct cr_health_outcome o;
    assert_int_equal(cr_ctl_health_prepare(NULL, cfg, a, &in), 0);
    assert_int_equal(cr_ctl_health_exec(cfg, cr_plugin_host_find(h, "example"),
                                        a, &in, NULL, &o),
                     0);
    cr_ctl_health_input_clear(&in);
    assert_int_equal(o.status, want[i]);
    assert_int_equal(o.requests, 1);
    assert_null(strstr(o.reason, "wrong-key"));
  }
  assert_int_equal(cr_fake_http_count(srv), 3);
  cr_plugin_host_free(h);
  cr_config_free(cfg);
  cr_diags_free(&d);
  free(path);
  cr_test_rmtree(dir);
  free(dir);
  cr_fake_http_stop(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rotation_during_check),
      cmocka_unit_test(test_example_http_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
