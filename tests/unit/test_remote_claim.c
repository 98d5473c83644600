/* test_remote_claim.c: what a runner host keeps of a claim and of itself
 * (core/remote/remote_claim, remote_identity): claim parsing (fields,
 * state as a JSON text or null, missing or bad fields), the claim's
 * configuration loaded on the host's base file (the work, its
 * credentials, destinations under the runner's data dir, invalid
 * configurations), the 0600 identity file (round trip, refused when
 * others may read it, not an identity), and allocation failures. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "remote/remote_claim.h"
#include "remote/remote_identity.h"
#include "util/alloc.h"
#include "util/error.h"

#define CLAIM                                                                  \
  "{\"execution_id\":12,\"attempt\":2,\"work_id\":\"w1\",\"epoch\":9,"         \
  "\"lease_ms\":60000,\"lease_expires_at\":1700000000000,"                     \
  "\"state\":\"{\\\"next\\\":4}\",\"config\":{\"authorizations\":[{\"id\":"    \
  "\"a1\",\"provider\":\"behave\",\"method\":\"api_key\",\"credentials\":"     \
  "{\"api_key\":\"k-123\"}}],\"works\":[{\"id\":\"w1\",\"provider\":"          \
  "\"behave\",\"authorization\":\"a1\",\"config\":{\"count\":3}}]}}"

static json_t *claim_json(void) {
  json_t *j = json_loads(CLAIM, 0, NULL);
  assert_non_null(j);
  return j;
}

static void test_parse(void **state) {
  (void)state;
  json_t *j = claim_json();
  struct cr_remote_claim c;
  char err[256] = "";
  assert_int_equal(cr_remote_claim_parse(j, 555, &c, err, sizeof err), 0);
  assert_int_equal(c.execution_id, 12);
  assert_int_equal(c.attempt, 2);
  assert_int_equal(c.epoch, 9);
  assert_int_equal(c.lease_ms, 60000);
  assert_int_equal(c.lease_expires_at, 1700000000000LL);
  assert_int_equal(c.received_ms, 555);
  assert_string_equal(c.work_id, "w1");
  assert_string_equal(c.state, "{\"next\":4}");
  assert_true(json_is_object(c.config));
  cr_remote_claim_clear(&c);
  json_object_set_new(j, "state", json_null());
  assert_int_equal(cr_remote_claim_parse(j, 1, &c, err, sizeof err), 0);
  assert_null(c.state);
  cr_remote_claim_clear(&c);
  json_object_set_new(j, "state", json_pack("{s:i}", "next", 7));
  assert_int_equal(cr_remote_claim_parse(j, 1, &c, err, sizeof err), 0);
  assert_string_equal(c.state, "{\"next\":7}");
  cr_remote_claim_clear(&c);
  json_decref(j);
}

static void test_parse_refuses(void **state) {
  (void)state;
  const char *fields[] = {"execution_id", "epoch",   "attempt",
                          "lease_ms",     "work_id", "config"};
  for (size_t i = 0; i < 6; i++) {
    json_t *j = claim_json();
    json_object_del(j, fields[i]);
    struct cr_remote_claim c;
    char err[256] = "";
    assert_int_equal(cr_remote_claim_parse(j, 1, &c, err, sizeof err),
                     CR_EINVAL);
    assert_non_null(strstr(err, fields[i]));
    assert_null(c.work_id);
    json_decref(j);
  }
  json_t *j = claim_json();
  json_object_set_new(j, "attempt", json_integer(0));
  struct cr_remote_claim c;
  char err[256] = "";
  assert_int_equal(cr_remote_claim_parse(j, 1, &c, err, sizeof err), CR_EINVAL);
  json_object_set_new(j, "attempt", json_string("2"));
  assert_int_equal(cr_remote_claim_parse(j, 1, &c, err, sizeof err), CR_EINVAL);
  json_decref(j);
}

/* The host's base file in a new directory (returned, test-owned). */
static char *base_file(char **dir) {
  *dir = cr_test_mkdtemp("rclaim");
  char text[1200];
  snprintf(text, sizeof text, "host:\n  data_dir: \"%s\"\n", *dir);
  return cr_test_write_file(*dir, "runner-base.yaml", text);
}

static void test_config_and_credentials(void **state) {
  (void)state;
  char *dir = NULL, *base = base_file(&dir);
  json_t *j = claim_json();
  struct cr_remote_claim c;
  assert_int_equal(cr_remote_claim_parse(j, 1, &c, NULL, 0), 0);
  cr_config *cfg = NULL;
  char err[512] = "";
  assert_int_equal(cr_remote_claim_config(&c, base, &cfg, err, sizeof err), 0);
  const struct cr_config_work *w = cr_config_find_work(cfg, "w1");
  assert_non_null(w);
  assert_non_null(w->auth);
  char want[1200];
  snprintf(want, sizeof want, "%s/out/w1", dir);
  assert_string_equal(w->destination.path, want);
  char *cred = NULL;
  assert_int_equal(cr_remote_claim_credentials(&c, cfg, &cred), 0);
  assert_string_equal(cred, "{\"api_key\":\"k-123\"}");
  cr__secret_wipe_free(cred, strlen(cred));
  cr_config_free(cfg);
  cr__free(c.work_id);
  c.work_id = cr__strdup("elsewhere");
  assert_int_equal(cr_remote_claim_config(&c, base, &cfg, err, sizeof err), 0);
  assert_int_equal(cr_remote_claim_credentials(&c, cfg, &cred), CR_ENOENT);
  cr_config_free(cfg);
  cr_remote_claim_clear(&c);
  /* a work with a key this runner does not know */
  json_object_set_new(
      json_array_get(json_object_get(json_object_get(j, "config"), "works"), 0),
      "colour", json_string("blue"));
  assert_int_equal(cr_remote_claim_parse(j, 1, &c, NULL, 0), 0);
  assert_int_equal(cr_remote_claim_config(&c, base, &cfg, err, sizeof err),
                   CR_ECONFIG);
  assert_null(cfg);
  assert_non_null(strstr(err, "colour"));
  assert_null(strstr(err, "k-123"));
  cr_remote_claim_clear(&c);
  json_decref(j);
  cr_test_rmtree(dir);
  free(base);
  free(dir);
}

static void test_identity(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("rident");
  struct cr_remote_identity id = {0};
  char err[512] = "";
  assert_int_equal(cr_remote_identity_load(dir, &id, err, sizeof err),
                   CR_ENOENT);
  struct cr_remote_identity w = {.server = "https://s.example",
                                 .runner_id = "r-9",
                                 .token = "tok-secret-1"};
  assert_int_equal(cr_remote_identity_save(dir, &w, err, sizeof err), 0);
  char *path = cr_test_join(dir, "runner.json");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(cr_remote_identity_load(dir, &id, err, sizeof err), 0);
  assert_string_equal(id.server, "https://s.example");
  assert_string_equal(id.runner_id, "r-9");
  assert_string_equal(id.token, "tok-secret-1");
  cr_remote_identity_clear(&id);
  assert_null(id.token);
  chmod(path, 0644);
  assert_int_equal(cr_remote_identity_load(dir, &id, err, sizeof err),
                   CR_EPERM);
  assert_null(strstr(err, "tok-secret-1"));
  chmod(path, 0600);
  FILE *f = fopen(path, "w");
  fputs("{\"server\":\"x\"}", f);
  fclose(f);
  assert_int_equal(cr_remote_identity_load(dir, &id, err, sizeof err),
                   CR_EPARSE);
  assert_non_null(strstr(err, "not a runner identity"));
  w.token = NULL;
  assert_int_equal(cr_remote_identity_save(dir, &w, err, sizeof err),
                   CR_EINVAL);
  free(path);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_alloc_failures(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("ralloc");
  struct cr_remote_identity w = {
      .server = "https://s", .runner_id = "r", .token = "t"};
  assert_int_equal(cr_remote_identity_save(dir, &w, NULL, 0), 0);
  json_t *j = claim_json();
  cr_test_alloc_install();
  int ok = 0;
  for (long n = 0; n < 200 && !ok; n++) {
    struct cr_remote_claim c;
    struct cr_remote_identity id;
    cr_test_alloc_fail_after(n);
    int rc = cr_remote_claim_parse(j, 1, &c, NULL, 0);
    int rc2 = cr_remote_identity_load(dir, &id, NULL, 0);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    assert_true(rc == 0 || rc == CR_ENOMEM);
    assert_true(rc2 == 0 || rc2 == CR_ENOMEM);
    if (rc == 0)
      cr_remote_claim_clear(&c);
    if (rc2 == 0)
      cr_remote_identity_clear(&id);
    ok = !failed && rc == 0 && rc2 == 0;
  }
  assert_true(ok);
  json_decref(j);
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_parse_refuses),
      cmocka_unit_test(test_config_and_credentials),
      cmocka_unit_test(test_identity),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
