/* test_config_compact.c: cr_config_compact (config.h): after it the trees of
 * authorizations and works are gone, every string and every accessor gives
 * what it gave before (credentials resolved, settings, work configs,
 * definitions), lookups by id still work, compacting twice is a no-op, and
 * an allocation failure part-way leaves a configuration that still reads the
 * same and frees without a leak. */
#include "testutil.h"

#include "config/config.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "SG.compact-Distinctive-Secret-77c1"

static const char *const TEXT =
    "authorizations:\n"
    "  - id: a1\n"
    "    name: Main SendGrid\n"
    "    description: the marketing account\n"
    "    provider: sendgrid\n"
    "    method: api_key\n"
    "    owner: ops\n"
    "    settings: {instance_url: \"https://x.example\", ratio: 1.5, "
    "tags: [a, b]}\n"
    "    credentials: {api_key: \"${CR_TEST_COMPACT_SECRET}\", region: eu}\n"
    "  - {id: a2, provider: sendgrid, method: api_key}\n"
    "works:\n"
    "  - id: w1\n"
    "    name: Contacts\n"
    "    description: nightly\n"
    "    provider: sendgrid\n"
    "    authorization: a1\n"
    "    schedule: {cron: \"0 3 * * *\", tz: Europe/Paris}\n"
    "    destination: {type: plugin, provider: sendgrid, authorization: a2}\n"
    "    runner: {labels: [dmz, eu]}\n"
    "    config: {streams: [contacts], nested: {a: [1, 2.5, \"x\"], "
    "\"uni\\u00e9\": null}}\n"
    "  - {id: w2, provider: sendgrid, authorization: a2, schedule: {every: "
    "1h}}\n";

/* Everything a running daemon reads of a configuration, as text. */
struct seen {
  char *strs[64];
  size_t n;
};

static void add(struct seen *s, const char *v, char *owned) {
  assert_true(s->n < 64);
  s->strs[s->n++] = owned ? owned : strdup(v ? v : "(null)");
}

static char *sorted(json_t *v) {
  char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(v);
  return t;
}

static void observe(const cr_config *cfg, struct seen *s) {
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < cfg->n_auths; i++) {
    const struct cr_config_auth *a = &cfg->auths[i];
    const char *f[] = {a->id,       a->name,   a->description,
                       a->provider, a->method, a->owner};
    for (size_t k = 0; k < sizeof f / sizeof *f; k++)
      add(s, f[k], NULL);
    add(s, NULL, cr_config_auth_credentials_text(a));
    add(s, NULL, sorted(cr_config_auth_credentials(a)));
    add(s, NULL, cr_config_settings_json(a));
    json_t *st = cr_config_auth_settings(a);
    add(s, NULL, st ? sorted(st) : strdup("none"));
  }
  for (size_t i = 0; i < cfg->n_works; i++) {
    const struct cr_config_work *w = &cfg->works[i];
    const char *f[] = {w->id,
                       w->name,
                       w->description,
                       w->provider,
                       w->authorization,
                       w->auth ? w->auth->id : NULL,
                       w->schedule.every,
                       w->schedule.cron,
                       w->schedule.tz,
                       w->destination.provider,
                       w->destination.authorization};
    for (size_t k = 0; k < sizeof f / sizeof *f; k++)
      add(s, f[k], NULL);
    for (size_t k = 0; k < w->n_runner_labels; k++)
      add(s, w->runner_labels[k], NULL);
    add(s, NULL, cr_config_work_config_text(w));
    add(s, NULL, sorted(cr_config_work_def(w)));
  }
}

static void same(const struct seen *a, const struct seen *b) {
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++)
    assert_string_equal(a->strs[i], b->strs[i]);
}

static void forget(struct seen *s) {
  for (size_t i = 0; i < s->n; i++) {
    memset(s->strs[i], 0, strlen(s->strs[i])); /* may hold the secret */
    free(s->strs[i]);
  }
  s->n = 0;
}

static cr_config *load(const char *dir) {
  char *path = cr_test_write_file(dir, "c.yaml", TEXT);
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = NULL;
  int rc = cr_config_load(path, &cfg, &d);
  if (rc != 0)
    for (size_t i = 0; i < d.count; i++)
      fprintf(stderr, "%s\n", d.items[i].message);
  assert_int_equal(rc, 0);
  cr_diags_free(&d);
  free(path);
  return cfg;
}

static void test_compact_reads_the_same(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("compact");
  setenv("CR_TEST_COMPACT_SECRET", SECRET, 1);
  cr_config *cfg = load(dir);
  struct seen before, after;
  observe(cfg, &before);
  /* The values themselves, not only their stability. */
  const struct cr_config_auth *a1 = &cfg->auths[0];
  char *creds = cr_config_auth_credentials_text(a1);
  assert_non_null(strstr(creds, SECRET)); /* resolved */
  free(creds);
  char *conf = cr_config_work_config_text(&cfg->works[1]);
  assert_string_equal(conf, "{}"); /* absent: an empty object */
  free(conf);
  assert_null(cr_config_auth_settings(&cfg->auths[1]));

  assert_int_equal(cr_config_compact(cfg), 0);
  for (size_t i = 0; i < cfg->n_auths; i++) {
    assert_null(cfg->auths[i].def);
    assert_null(cfg->auths[i].credentials);
    assert_null(cfg->auths[i].settings);
    assert_non_null(cfg->auths[i].credentials_json);
  }
  assert_non_null(cfg->auths[0].settings_json);
  assert_null(cfg->auths[1].settings_json);
  for (size_t i = 0; i < cfg->n_works; i++) {
    assert_null(cfg->works[i].def);
    assert_null(cfg->works[i].config);
    assert_null(cfg->works[i].schedule.def);
    assert_non_null(cfg->works[i].def_json);
  }
  assert_ptr_equal(cfg->works[1].name, cfg->works[1].id); /* defaulted */
  observe(cfg, &after);
  same(&before, &after);
  /* Lookups read the moved ids. */
  assert_ptr_equal(cr_config_find_work(cfg, "w2"), &cfg->works[1]);
  assert_ptr_equal(cr_config_find_auth(cfg, "a2"), &cfg->auths[1]);
  assert_ptr_equal(cr_config_first_work_of(cfg, "a1"), &cfg->works[0]);
  assert_ptr_equal(cfg->works[0].auth, &cfg->auths[0]);
  /* Twice: nothing changes. */
  forget(&after);
  assert_int_equal(cr_config_compact(cfg), 0);
  observe(cfg, &after);
  same(&before, &after);
  forget(&after);
  forget(&before);
  cr_config_free(cfg);
  unsetenv("CR_TEST_COMPACT_SECRET");
  cr_test_rmtree(dir);
  free(dir);
}

static void test_compact_alloc_failures(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("compact");
  setenv("CR_TEST_COMPACT_SECRET", SECRET, 1);
  struct seen before, after;
  cr_config *ref = load(dir);
  observe(ref, &before);
  cr_config_free(ref);
  cr_test_alloc_install();
  long n = 0;
  for (;; n++) {
    cr_config *cfg = load(dir);
    cr_config_drop_positions(cfg); /* best effort: its ENOMEM is silent */
    cr_test_alloc_fail_after(n);
    int rc = cr_config_compact(cfg);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    assert_int_equal(rc, failed ? CR_ENOMEM : 0);
    observe(cfg, &after); /* partly compacted still reads the same */
    same(&before, &after);
    forget(&after);
    if (failed) /* and a second try finishes the job */
      assert_int_equal(cr_config_compact(cfg), 0);
    cr_config_free(cfg);
    if (!failed)
      break;
  }
  assert_true(n >= 1);
  forget(&before);
  unsetenv("CR_TEST_COMPACT_SECRET");
  cr_test_rmtree(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compact_reads_the_same),
      cmocka_unit_test(test_compact_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
