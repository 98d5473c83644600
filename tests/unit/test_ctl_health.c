/* test_ctl_health.c: one health check through control/ctl_health.c with a
 * real plugin and store: the record, its event, and credentials the plugin
 * rotated during the check stored with an event that never carries them. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "control/apply.h"
#include "control/ctl_health.h"
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rotation_during_check),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
