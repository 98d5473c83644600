/* test_config.c: the configuration loader: every error kind at its exact
 * line and column, all errors in one run, secrets (never echoed),
 * did-you-mean, plugin checks against tests/plugins/cfgtest.so, config_hash,
 * defaults and typed values, allocation failures. Includes and size limits
 * are in test_config_files.c; the fixture is config_fixture.h. */
#include "config_fixture.h"

#include "control/ctl_health.h"

#include "config/secret.h"
#include "events/vocab.h"
#include "exec/schedule.h"
#include "plugin/plugin_host.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Valid configurations ------------------------------------------------ */

static void test_full_valid_config(void **state) {
  (void)state;
  setenv("CR_TEST_TOKEN", "tok-1234567890", 1);
  setenv("CR_TEST_KEY", SECRET, 1);
  mkdir_in("plugins");
  const char *text =
      "host:\n"
      "  data_dir: ./var/data\n"
      "  plugin_dirs: [plugins, /opt/x/../plugins]\n"
      "  listen: 0.0.0.0:9000\n"
      "  account_id: acme\n"
      "  api_tokens: [{name: ci, token: \"${CR_TEST_TOKEN}\"}]\n"
      "  runner: {concurrency: 8, isolation: inline}\n"
      "  health_check_interval: 12h\n"
      "  event_retention_days: 30\n"
      "authorizations:\n"
      "  - id: a1\n"
      "    name: Main\n"
      "    description: the main one\n"
      "    provider: cfgtest\n"
      "    method: api_key\n"
      "    owner: ops@example.com\n"
      "    credentials: {api_key: \"${CR_TEST_KEY}\"}\n"
      "works:\n"
      "  - id: w1\n"
      "    provider: cfgtest\n"
      "    authorization: a1\n"
      "    schedule: {every: 1h}\n"
      "    config: {streams: [contacts]}\n"
      "    enabled: false\n"
      "    error_email_notifications: true\n"
      "    max_attempts: 5\n"
      "    timeout: 1m30s\n"
      "    memory_limit_mb: 256\n"
      "  - id: w2\n"
      "    provider: cfgtest\n"
      "    authorization: a1\n"
      "    schedule: {cron: \"0 3 * * *\", tz: Europe/Paris}\n"
      "    destination: {type: sqlite, path: out.db}\n"
      "    isolation: process\n"
      "subscriptions:\n"
      "  - id: s1\n"
      "    workflow: webhook_system_events\n"
      "    config:\n"
      "      system_event_type: failed\n"
      "      system_event_multiple_types: [created, failed, synccomplete]\n"
      "      system_event_sources: {work: [w1], auth: []}\n"
      "      webhook_url: https://hooks.example.com/x\n"
      "      headers: {X-Key: \"${CR_TEST_KEY}\", X-Plain: plain}\n"
      "      json_template: '{\"text\": event.verb}'\n"
      "      secret: whsec_abcdef123456\n"
      "alerts:\n"
      "  - id: al1\n"
      "    channel:\n"
      "      email: {url: \"smtp://127.0.0.1:25\", from: a@example.com,\n"
      "              to: [o@example.com], password: \"${CR_TEST_TOKEN}\"}\n"
      "    default: true\n";
  struct loaded l;
  load(&l, text);
  if (l.rc != 0)
    dump(&l.d);
  assert_int_equal(l.rc, 0);
  assert_int_equal(l.d.count, 0);
  const cr_config *c = l.cfg;
  char *expect = path_in("var/data");
  assert_string_equal(c->host.data_dir, expect);
  free(expect);
  assert_int_equal(c->host.n_plugin_dirs, 2);
  expect = path_in("plugins");
  assert_string_equal(c->host.plugin_dirs[0], expect);
  free(expect);
  assert_string_equal(c->host.plugin_dirs[1], "/opt/plugins");
  assert_string_equal(c->host.listen, "0.0.0.0:9000");
  assert_string_equal(c->host.account_id, "acme");
  assert_int_equal(c->host.n_api_tokens, 1);
  assert_string_equal(c->host.api_tokens[0].name, "ci");
  assert_string_equal(c->host.api_tokens[0].token, "tok-1234567890");
  assert_int_equal(c->host.runner_concurrency, 8);
  assert_int_equal(c->host.runner_isolation, CR_ISOLATION_INLINE);
  assert_int_equal(c->host.health_check_interval_ms, 12 * 3600 * 1000LL);
  assert_int_equal(c->host.event_retention_days, 30);

  assert_int_equal(c->n_auths, 1);
  const struct cr_config_auth *a = cr_config_find_auth(c, "a1");
  assert_non_null(a);
  assert_string_equal(a->name, "Main");
  assert_string_equal(a->description, "the main one");
  assert_string_equal(a->owner, "ops@example.com");
  assert_string_equal(
      json_string_value(json_object_get(a->credentials, "api_key")), SECRET);
  /* As written: the reference, not the value. */
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(a->def, "credentials"), "api_key")),
                      "${CR_TEST_KEY}");

  assert_int_equal(c->n_works, 2);
  const struct cr_config_work *w1 = cr_config_find_work(c, "w1");
  assert_ptr_equal(w1->auth, a);
  assert_string_equal(w1->name, "w1");
  assert_int_equal(w1->schedule.kind, CR_SCHED_EVERY);
  assert_non_null(w1->schedule.sched);
  assert_string_equal(w1->schedule.every, "1h");
  assert_int_equal(w1->destination.type, CR_DEST_JSONL);
  expect = path_in("var/data/out/w1");
  assert_string_equal(w1->destination.path, expect);
  free(expect);
  assert_int_equal(w1->enabled, 0);
  assert_int_equal(w1->error_email_notifications, 1);
  assert_int_equal(w1->max_attempts, 5);
  assert_int_equal(w1->timeout_ms, 90000);
  assert_int_equal(w1->memory_limit_mb, 256);
  assert_int_equal(w1->isolation, CR_ISOLATION_INLINE); /* host's */
  assert_int_equal(json_array_size(json_object_get(w1->config, "streams")), 1);
  const struct cr_config_work *w2 = cr_config_find_work(c, "w2");
  assert_int_equal(w2->schedule.kind, CR_SCHED_CRON);
  assert_string_equal(w2->schedule.tz, "Europe/Paris");
  assert_int_equal(w2->destination.type, CR_DEST_SQLITE);
  expect = path_in("out.db");
  assert_string_equal(w2->destination.path, expect);
  free(expect);
  assert_int_equal(w2->isolation, CR_ISOLATION_PROCESS);
  assert_int_equal(w2->enabled, 1);
  assert_int_equal(w2->max_attempts, 3);
  assert_int_equal(w2->timeout_ms, 3600000);

  const struct cr_config_subscription *s = cr_config_find_subscription(c, "s1");
  assert_non_null(s);
  assert_int_equal(s->n_event_types, 3); /* failed, created, synccomplete */
  assert_string_equal(s->event_types[0], "failed");
  assert_string_equal(s->event_types[2], "synccomplete");
  assert_int_equal(json_array_size(json_object_get(s->sources, "auth")), 0);
  assert_string_equal(s->webhook_url, "https://hooks.example.com/x");
  assert_string_equal(json_string_value(json_object_get(s->headers, "X-Key")),
                      SECRET);
  assert_string_equal(json_string_value(json_object_get(s->headers, "X-Plain")),
                      "plain");
  assert_string_equal(s->secret, "whsec_abcdef123456");
  assert_string_equal(s->json_template, "{\"text\": event.verb}");

  assert_int_equal(c->n_alerts, 1);
  assert_string_equal(c->alerts[0].id, "al1");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(c->alerts[0].resolved, "channel"),
                          "email"),
          "password")),
      "tok-1234567890");
  assert_string_equal(c->alerts[0].email_password, "tok-1234567890");

  /* Every resolved secret is known to the redactor. */
  char *red = NULL;
  assert_int_equal(
      cr_redact(cr_config_redactor(c),
                "k=" SECRET " t=tok-1234567890 w=whsec_abcdef123456", &red),
      0);
  assert_null(strstr(red, SECRET));
  assert_null(strstr(red, "tok-1234567890"));
  assert_null(strstr(red, "whsec_abcdef123456"));
  cr__free(red);
  assert_int_equal(c->n_files, 1);
  unload(&l);
}

static void test_defaults(void **state) {
  (void)state;
  struct loaded l;
  load(&l, AUTH "works:\n  - {id: w, provider: cfgtest, authorization: a1}\n");
  assert_int_equal(l.rc, 0);
  const cr_config *c = l.cfg;
  char *expect = path_in("data");
  assert_string_equal(c->host.data_dir, expect);
  free(expect);
  assert_string_equal(c->host.listen, "127.0.0.1:8470");
  assert_string_equal(c->host.account_id, "default");
  assert_int_equal(c->host.runner_concurrency, 4);
  assert_int_equal(c->host.runner_isolation, CR_ISOLATION_PROCESS);
  assert_int_equal(c->host.health_check_interval_ms, 86400000LL);
  assert_int_equal(c->host.event_retention_days, 90);
  assert_int_equal(c->host.n_plugin_dirs, 0);
  assert_int_equal(c->works[0].schedule.kind, CR_SCHED_NONE);
  assert_null(c->works[0].schedule.sched);
  assert_true(json_is_object(c->works[0].config));
  assert_string_equal(c->auths[0].name, "a1");
  unload(&l);

  load(&l, "");
  assert_int_equal(l.rc, 0);
  assert_int_equal(l.cfg->n_works, 0);
  unload(&l);

  /* Relative paths resolve next to the file as named (a symbolic link is
   * not followed for that). */
  mkdir_in("sub");
  write_in("sub/real.yaml", "host: {data_dir: d}\n");
  char *target = path_in("sub/real.yaml"), *link = path_in("link.yaml");
  assert_int_equal(symlink(target, link), 0);
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = NULL;
  assert_int_equal(cr_config_load(link, &cfg, &d), 0);
  expect = path_in("d");
  assert_string_equal(cfg->host.data_dir, expect);
  free(expect);
  cr_config_free(cfg);
  cr_diags_free(&d);
  free(target);
  free(link);
}

/* ---- Every error kind, at its line and column ---------------------------- */

static void test_unknown_keys(void **state) {
  (void)state;
  const char *t1 = AUTH "works:\n"
                        "  - id: sg-contacts\n"
                        "    provider: cfgtest\n"
                        "    authorization: a1\n"
                        "    schedul: {every: 1h}\n";
  one_error(t1, "schedul", 0,
            "unknown key 'schedul' in work 'sg-contacts' (did you mean "
            "'schedule'?)");
  one_error("wroks: []\n", "wroks", 0,
            "unknown key 'wroks' at the top level (did you mean 'works'?)");
  one_error("host:\n  runner: {isolaton: inline}\n", "isolaton", 0,
            "unknown key 'isolaton' in host.runner (did you mean "
            "'isolation'?)");
  one_error("host:\n  zzzzzz: 1\n", "zzzzzz", 0,
            "unknown key 'zzzzzz' in host");
  const char *t2 = "subscriptions:\n"
                   "  - id: s\n"
                   "    workflow: webhook_system_events\n"
                   "    config: {webhook_url: 'http://h', header: {}}\n";
  one_error(t2, "header", 0,
            "unknown key 'header' in config of subscription 's' (did you "
            "mean 'headers'?)");
}

static void test_wrong_types(void **state) {
  (void)state;
  one_error("host:\n  plugin_dirs: ./plugins\n", "./plugins", 0,
            "'plugin_dirs' in host: expected a list, got a string");
  one_error("host:\n  plugin_dirs: [a, {b: c}]\n", "{b", 0,
            "'plugin_dirs' item 2 in host: expected a string, got a mapping");
  one_error("works: {id: x}\n", "{id", 0,
            "'works' at the top level: expected a list, got a mapping");
  one_error("works:\n  - just-a-string\n", "just", 0,
            "work #1: expected a mapping, got a string");
  const char *t = AUTH "works:\n"
                       "  - id: w\n"
                       "    provider: cfgtest\n"
                       "    authorization: a1\n"
                       "    max_attempts: three\n"
                       "    enabled: yes\n";
  struct loaded l;
  load(&l, t);
  expect_err(&l, t, "three", 0,
             "'max_attempts' in work 'w': expected an integer, got a string");
  expect_err(&l, t, "yes", 0,
             "'enabled' in work 'w': expected a boolean, got a string");
  assert_int_equal(n_errors(&l), 2);
  unload(&l);
  one_error("host:\n  event_retention_days: 0\n", "0", 0,
            "'event_retention_days' in host must be between 1 and 36500, "
            "got 0");
  one_error("host:\n  health_check_interval: 10 minutes\n", "10 min", 0,
            "invalid duration for 'health_check_interval' in host (expected "
            "e.g. 30s, 5m, 1h30m, 24h)");
  one_error("host:\n  runner: {isolation: sandbox}\n", "sandbox", 0,
            "invalid isolation 'sandbox' in host.runner; expected process or "
            "inline");
  one_error("host:\n  listen: localhost\n", "localhost", 0,
            "invalid listen address 'localhost' in host (expected HOST:PORT, "
            "e.g. 127.0.0.1:8470; port 0 picks a free port)");
  one_error("- a\n- b\n", "- a", 0,
            "expected a mapping at the top level, got a list");
}

static void test_missing_required(void **state) {
  (void)state;
  const char *t = AUTH "works:\n"
                       "  - id: x\n"
                       "    provider: cfgtest\n";
  one_error(t, "id: x", 0,
            "work 'x' is missing required field 'authorization'");
  one_error("authorizations:\n  - provider: p\n    method: m\n", "provider", 0,
            "authorization #1 is missing required field 'id'");
  one_error("host:\n  api_tokens:\n    - name: ci\n", "name", 0,
            "api token 'ci' is missing required field 'token'");
  one_error("subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
            "    config:\n      secret: whsec_x\n",
            "secret", 0,
            "config of subscription 's' is missing required field "
            "'webhook_url'");
  one_error("alerts:\n  - name: x\n    events: {}\n"
            "    channel: {webhook: {url: \"https://h.e.com/\"}}\n",
            "name", 0, "alert #1 is missing required field 'id'");
  /* null is "not set". */
  one_error(AUTH "works:\n  - id: x\n    provider: cfgtest\n"
                 "    authorization: ~\n",
            "id: x", 0, "work 'x' is missing required field 'authorization'");
}

static void test_ids(void **state) {
  (void)state;
  const char *t = AUTH "works:\n"
                       "  - id: w\n"
                       "    provider: cfgtest\n"
                       "    authorization: a1\n"
                       "  - id: w\n"
                       "    provider: cfgtest\n"
                       "    authorization: a1\n";
  one_error(t, "w\n", 1, "duplicate work id 'w' (first defined at line 7)");
  one_error("authorizations:\n  - id: 'has space'\n    provider: p\n"
            "    method: m\n",
            "'has", 0,
            "invalid id 'has space' in authorization #1: ids are 1 to 128 "
            "characters among A-Z a-z 0-9 _ . -");
  one_error("host:\n  api_tokens:\n    - {name: ci, token: abcdefgh}\n"
            "    - {name: ci, token: ijklmnop}\n",
            "ci", 1, "duplicate api token name 'ci'");
  one_error("alerts:\n"
            "  - id: x\n    events: {}\n"
            "    channel: {webhook: {url: \"https://h.e.com/\"}}\n"
            "  - id: x\n    events: {}\n"
            "    channel: {webhook: {url: \"https://h.e.com/\"}}\n",
            "x", 1, "duplicate alert id 'x' (first defined at line 2)");
}

static void test_references(void **state) {
  (void)state;
  const char *t = AUTH "works:\n"
                       "  - id: w\n"
                       "    provider: cfgtest\n"
                       "    authorization: a2\n";
  one_error(t, "a2", 0,
            "work 'w' references unknown authorization 'a2' (did you mean "
            "'a1'?)");
  const char *t2 = AUTH "works:\n"
                        "  - id: w\n"
                        "    provider: other\n"
                        "    authorization: a1\n";
  one_error(t2, "other", 0,
            "work 'w' has provider 'other' but its authorization 'a1' is for "
            "provider 'cfgtest'");
  const char *t3 = AUTH "works:\n"
                        "  - id: w\n"
                        "    provider: cfgtest\n"
                        "    authorization: zzzzzzzz\n";
  one_error(t3, "zzzzzzzz", 0,
            "work 'w' references unknown authorization 'zzzzzzzz'");
  const char *t4 = AUTH "works:\n"
                        "  - id: w\n"
                        "    provider: cfgtest\n"
                        "    authorization: a1\n"
                        "    destination: {type: plugin, provider: cfgtest, "
                        "authorization: nope}\n";
  one_error(t4, "nope", 0,
            "destination of work 'w' references unknown authorization "
            "'nope'");
}

static void test_schedules(void **state) {
  (void)state;
  const char *head = AUTH "works:\n  - id: w\n    provider: cfgtest\n"
                          "    authorization: a1\n";
  char t[1024];
  snprintf(t, sizeof t, "%s    schedule: {every: 1x}\n", head);
  /* The message after the colon is cr_schedule_parse_every's. */
  one_error(t, "1x", 0, "invalid schedule of work 'w': *");
  snprintf(t, sizeof t, "%s    schedule: {cron: \"61 * * * *\"}\n", head);
  one_error(t, "\"61", 0, "invalid schedule of work 'w': *");
  snprintf(t, sizeof t,
           "%s    schedule: {cron: \"0 3 * * *\", tz: Mars/Olympus}\n", head);
  one_error(t, "Mars", 0, "invalid schedule of work 'w': *time zone*");
  snprintf(t, sizeof t, "%s    schedule:\n      every: 1h\n      cron: x\n",
           head);
  one_error(t, "every", 0,
            "schedule of work 'w' has both 'every' and 'cron'; use one");
  snprintf(t, sizeof t, "%s    schedule: {}\n", head);
  one_error(t, "{}", 0, "schedule of work 'w' needs 'every' or 'cron'");
  snprintf(t, sizeof t, "%s    schedule: {every: 1h, tz: UTC}\n", head);
  one_error(t, "tz", 0, "'tz' in schedule of work 'w' only applies to 'cron'");
  snprintf(t, sizeof t, "%s    schedule: 1h\n", head);
  one_error(t, "1h", 0,
            "'schedule' in work 'w': expected a mapping, got a string");
  snprintf(t, sizeof t, "%s    timeout: 0s\n", head);
  one_error(t, "0s", 0, "'timeout' in work 'w' must be between 1s and 604800s");
}

static void test_destinations(void **state) {
  (void)state;
  const char *head = AUTH "works:\n  - id: w\n    provider: cfgtest\n"
                          "    authorization: a1\n";
  char t[1024];
  snprintf(t, sizeof t, "%s    destination: {type: jsnl}\n", head);
  one_error(t, "jsnl", 0,
            "invalid type 'jsnl' in destination of work 'w' (did you mean "
            "'jsonl'?); expected jsonl, sqlite or plugin");
  snprintf(t, sizeof t, "%s    destination: {type: plugin, provider: x}\n",
           head);
  one_error(t, "{type", 0,
            "destination of work 'w' (type plugin) is missing required field "
            "'authorization'");
  snprintf(t, sizeof t,
           "%s    destination: {type: plugin, provider: cfgtest, "
           "authorization: a1, path: /x}\n",
           head);
  one_error(t, "path", 0,
            "'path' in destination of work 'w' is not used by plugin "
            "destinations");
  snprintf(t, sizeof t, "%s    destination: {provider: cfgtest}\n", head);
  one_error(t, "provider: cfgtest}", 0,
            "'provider' in destination of work 'w' is only used by plugin "
            "destinations");
}

static void test_subscriptions(void **state) {
  (void)state;
  const char *t = "subscriptions:\n"
                  "  - id: s\n"
                  "    workflow: webhook_system_events\n"
                  "    config:\n"
                  "      system_event_type: faild\n"
                  "      system_event_multiple_types: [created, synccompleet]\n"
                  "      system_event_sources: {wrok: [], work: [a]}\n"
                  "      webhook_url: ftp://example.com/\n"
                  "      secret: not-a-webhook-secret\n";
  struct loaded l;
  load(&l, t);
  expect_err(&l, t, "faild", 0,
             "unknown event type 'faild' in config of subscription 's' (did "
             "you mean 'failed'?)");
  expect_err(&l, t, "synccompleet", 0,
             "unknown event type 'synccompleet' in config of subscription "
             "'s' (did you mean 'synccomplete'?)");
  expect_err(&l, t, "wrok", 0,
             "unknown subject type 'wrok' in config of subscription 's' (did "
             "you mean 'work'?)");
  expect_err(&l, t, "ftp:", 0,
             "'webhook_url' in config of subscription 's' must be an http:// "
             "or https:// URL with a host");
  expect_err(&l, t, "not-a-webhook", 0,
             "'secret' in config of subscription 's' must start with "
             "'whsec_'");
  assert_int_equal(n_errors(&l), 5);
  assert_true(no_diag_contains(&l.d, "not-a-webhook-secret"));
  assert_true(no_diag_contains(&l.d, "ftp://example.com"));
  unload(&l);

  one_error("subscriptions:\n  - id: s\n    workflow: webhook_system_event\n"
            "    config: {webhook_url: 'http://h'}\n",
            "webhook_system_event\n", 0,
            "unknown workflow 'webhook_system_event' in subscription 's' (did "
            "you mean 'webhook_system_events'?); expected "
            "webhook_system_events or table_system_events");
  one_error("subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
            "    config:\n      webhook_url: 'http://h'\n"
            "      headers: {X-A: [1]}\n",
            "[1]", 0,
            "header 'X-A' in config of subscription 's': expected a string, "
            "got a list");
}

/* A json_template that does not compile: the Jsonnet position inside the
 * template, reported at the YAML value. */
static void test_json_template_errors(void **state) {
  (void)state;
  one_error("subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
            "    config:\n      webhook_url: 'http://h'\n"
            "      json_template: '{\"text\": evnt.verb}'\n",
            "'{\"text\"", 0,
            "json_template: line 1, column 10: Unknown variable: evnt");
  one_error("subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
            "    config:\n      webhook_url: 'http://h'\n"
            "      json_template: |\n        {\n          \"a\": 1,\n"
            "          \"b\": ,\n        }\n",
            "|", 0,
            "json_template: line 3, column 8: unexpected: \",\" while parsing "
            "terminal");
}

static void test_subscription_delivery_settings(void **state) {
  (void)state;
  const char *ok =
      "subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
      "    config: {webhook_url: 'http://h'}\n"
      "    delivery: {timeout: 5s, max_in_flight: 1, disable_after: 2h,"
      " retry_schedule: [0s, 1s, 1m]}\n"
      "  - id: t\n    workflow: webhook_system_events\n"
      "    config: {webhook_url: 'http://h'}\n";
  struct loaded l;
  load(&l, ok);
  assert_int_equal(l.rc, 0);
  const struct cr_config_subscription *s =
      cr_config_find_subscription(l.cfg, "s");
  assert_int_equal(s->timeout_ms, 5000);
  assert_int_equal(s->max_in_flight, 1);
  assert_int_equal(s->disable_after_ms, 7200000);
  assert_int_equal(s->n_retry_schedule, 3);
  assert_int_equal(s->retry_schedule_ms[2], 60000);
  const struct cr_config_subscription *t =
      cr_config_find_subscription(l.cfg, "t");
  assert_int_equal(t->timeout_ms, 15000); /* defaults */
  assert_int_equal(t->max_in_flight, 16);
  assert_null(t->retry_schedule_ms);
  unload(&l);
  one_error("subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
            "    config: {webhook_url: 'http://h'}\n"
            "    delivery: {retry_schedule: [0s, soon]}\n",
            "soon", 0, "retry_schedule item 2 * is not a duration*");
  one_error("subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
            "    config: {webhook_url: 'http://h'}\n"
            "    delivery: {max_in_flight: 0}\n",
            "0}", 0, "'max_in_flight' * must be between 1 and 256, got 0");
}

/* ---- All in one run ------------------------------------------------------ */

static void test_all_errors_in_one_run(void **state) {
  (void)state;
  const char *t = "host:\n"
                  "  listen: nope\n"
                  "  plugin_dirs: x\n"
                  "authorizations:\n"
                  "  - id: a1\n"
                  "    provider: cfgtest\n"
                  "    method: api_key\n"
                  "  - id: a1\n"
                  "    provider: cfgtest\n"
                  "works:\n"
                  "  - id: w1\n"
                  "    provider: cfgtest\n"
                  "    authorization: a9\n"
                  "    schedul: {}\n"
                  "  - id: w2\n"
                  "    authorization: a1\n"
                  "    destination: {type: csv}\n"
                  "subscriptions:\n"
                  "  - id: s1\n"
                  "    workflow: webhook_system_events\n"
                  "    config: {webhook_url: x, system_event_type: boom}\n"
                  "bogus: 1\n";
  struct loaded l;
  load(&l, t);
  assert_int_equal(l.rc, CR_ECONFIG);
  expect_err(&l, t, "nope", 0, "invalid listen address 'nope' in host*");
  expect_err(&l, t, "x\n", 0, "'plugin_dirs' in host: expected a list*");
  expect_err(&l, t, "id: a1", 1,
             "authorization 'a1' is missing required field 'method'");
  expect_err(&l, t, "a1", 1,
             "duplicate authorization id 'a1' (first defined at line 5)");
  expect_err(&l, t, "a9", 0,
             "work 'w1' references unknown authorization 'a9' (did you mean "
             "'a1'?)");
  expect_err(&l, t, "schedul", 0, "unknown key 'schedul' in work 'w1'*");
  expect_err(&l, t, "id: w2", 0,
             "work 'w2' is missing required field 'provider'");
  expect_err(&l, t, "csv", 0, "invalid type 'csv' in destination of work*");
  expect_err(&l, t, "x, sys", 0, "'webhook_url' in config of subscription*");
  expect_err(&l, t, "boom", 0, "unknown event type 'boom'*");
  expect_err(&l, t, "bogus", 0, "unknown key 'bogus' at the top level");
  assert_int_equal(n_errors(&l), 11);
  /* Sorted output is by line then column. */
  cr_diags_sort(&l.d);
  for (size_t i = 1; i < l.d.count; i++)
    assert_true(l.d.items[i - 1].line < l.d.items[i].line ||
                (l.d.items[i - 1].line == l.d.items[i].line &&
                 l.d.items[i - 1].column <= l.d.items[i].column));
  unload(&l);
}

/* ---- Secrets ------------------------------------------------------------- */

static void test_secrets(void **state) {
  (void)state;
  setenv("CR_TEST_SECRET", SECRET, 1);
  unsetenv("CR_TEST_UNSET_VAR");
  write_in("key.txt", SECRET "\n");
  const char *t = "host:\n"
                  "  api_tokens:\n"
                  "    - {name: a, token: \"${CR_TEST_UNSET_VAR}\"}\n"
                  "    - {name: b, token: \"file:key.txt\"}\n"
                  "    - {name: c, token: \"file:nope.txt\"}\n"
                  "    - {name: d, token: \"Bearer ${CR_TEST_SECRET}\"}\n"
                  "    - {name: e, token: \"${1BAD}\"}\n"
                  "    - {name: f, token: {x: \"${CR_TEST_SECRET}\"}}\n";
  struct loaded l;
  load(&l, t);
  expect_err(&l, t, "\"${CR_TEST_UNSET", 0,
             "environment variable CR_TEST_UNSET_VAR is not set");
  char *nope = path_in("nope.txt"), msg[1024];
  snprintf(msg, sizeof msg,
           "cannot read secret file %s: No such file or directory", nope);
  free(nope);
  expect_err(&l, t, "\"file:nope", 0, msg);
  expect_err(&l, t, "\"${1BAD", 0, "invalid environment variable name '1BAD'");
  expect_err(&l, t, "{x:", 0,
             "'token' in api token 'f': expected a string, got a mapping");
  assert_int_equal(n_errors(&l), 4);
  assert_string_equal(l.cfg->host.api_tokens[1].token, SECRET);
  assert_string_equal(l.cfg->host.api_tokens[3].token, "Bearer " SECRET);
  assert_true(no_diag_contains(&l.d, SECRET));
  unload(&l);

  /* Credentials: missing env at the value; nothing echoed. */
  t = "authorizations:\n"
      "  - id: a\n"
      "    provider: cfgtest\n"
      "    method: api_key\n"
      "    credentials:\n"
      "      api_key: \"${CR_TEST_UNSET_VAR}\"\n"
      "      nested: {list: [\"${CR_TEST_SECRET}\", "
      "\"${CR_TEST_UNSET_VAR}\"]}\n";
  load(&l, t);
  expect_err(&l, t, "\"${CR_TEST_UNSET", 0,
             "environment variable CR_TEST_UNSET_VAR is not set");
  expect_err(&l, t, "\"${CR_TEST_UNSET", 1,
             "environment variable CR_TEST_UNSET_VAR is not set");
  assert_int_equal(n_errors(&l), 2);
  assert_true(no_diag_contains(&l.d, SECRET));
  unload(&l);

  /* $${ is a literal. */
  load(&l, "host:\n  api_tokens: [{name: a, token: \"x$${HOME}\"}]\n");
  assert_int_equal(l.rc, 0);
  assert_string_equal(l.cfg->host.api_tokens[0].token, "x${HOME}");
  unload(&l);
}

static void test_config_hash(void **state) {
  (void)state;
  setenv("CR_TEST_HASHKEY", "first-value-123", 1);
  struct loaded a, b, c, d;
  const char *v1 = AUTH "  - id: a2\n    provider: cfgtest\n    method: "
                        "api_key\n    credentials: {api_key: "
                        "\"${CR_TEST_HASHKEY}\"}\n"
                        "works:\n  - {id: w, provider: cfgtest, "
                        "authorization: a1, schedule: {every: 1h}, config: "
                        "{x: 1, y: [1, 2]}}\n";
  const char *v2 = AUTH "  - id: a2\n    credentials: {api_key: "
                        "\"${CR_TEST_HASHKEY}\"}\n    method: api_key\n"
                        "    provider: cfgtest\n"
                        "works:\n  - {config: {y: [1, 2], x: 1}, schedule: "
                        "{every: 1h}, authorization: a1, provider: cfgtest, "
                        "id: w}\n";
  const char *v3 = AUTH "  - id: a2\n    provider: cfgtest\n    method: "
                        "api_key\n    credentials: {api_key: "
                        "\"${CR_TEST_HASHKEY}\"}\n"
                        "works:\n  - {id: w, provider: cfgtest, "
                        "authorization: a1, schedule: {every: 2h}, config: "
                        "{x: 1, y: [1, 2]}}\n";
  load(&a, v1);
  load(&b, v2);
  assert_int_equal(a.rc, 0);
  assert_int_equal(b.rc, 0);
  /* Key order does not matter. */
  assert_true(a.cfg->works[0].config_hash == b.cfg->works[0].config_hash);
  assert_true(a.cfg->auths[1].config_hash == b.cfg->auths[1].config_hash);
  assert_true(a.cfg->auths[0].config_hash != a.cfg->auths[1].config_hash);
  uint64_t w_hash = a.cfg->works[0].config_hash;
  uint64_t a2_hash = a.cfg->auths[1].config_hash;
  unload(&a);
  unload(&b);
  /* A changed field changes it. */
  load(&c, v3);
  assert_true(c.cfg->works[0].config_hash != w_hash);
  assert_true(c.cfg->auths[1].config_hash == a2_hash);
  unload(&c);
  /* A changed secret value alone does not (hash of the text as written). */
  setenv("CR_TEST_HASHKEY", "second-value-456", 1);
  load(&d, v1);
  assert_string_equal(json_string_value(json_object_get(
                          d.cfg->auths[1].credentials, "api_key")),
                      "second-value-456");
  assert_true(d.cfg->auths[1].config_hash == a2_hash);
  assert_true(d.cfg->works[0].config_hash == w_hash);
  unload(&d);
  /* Stable: a known value for a fixed input. */
  json_t *j = json_pack("{s:i, s:s}", "b", 1, "a", "x");
  uint64_t h = 14695981039346656037ULL;
  for (const char *s = "{\"a\":\"x\",\"b\":1}"; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  assert_true(cr_config_hash_json(j) == h);
  json_decref(j);
}

static void test_durations_and_ids(void **state) {
  (void)state;
  int64_t ms;
  assert_int_equal(cr_config_parse_duration("300s", &ms), 0);
  assert_int_equal(ms, 300000);
  assert_int_equal(cr_config_parse_duration("1h30m", &ms), 0);
  assert_int_equal(ms, 5400000);
  assert_int_equal(cr_config_parse_duration("2d", &ms), 0);
  assert_int_equal(ms, 172800000);
  assert_int_equal(cr_config_parse_duration("250ms", &ms), 0);
  assert_int_equal(ms, 250);
  assert_int_equal(cr_config_parse_duration("1m1ms", &ms), 0);
  assert_int_equal(ms, 60001);
  assert_int_equal(cr_config_parse_duration("", &ms), CR_EINVAL);
  assert_int_equal(cr_config_parse_duration("5", &ms), CR_EINVAL);
  assert_int_equal(cr_config_parse_duration("-5s", &ms), CR_EINVAL);
  assert_int_equal(cr_config_parse_duration("5 s", &ms), CR_EINVAL);
  assert_int_equal(cr_config_parse_duration("99999999999999999999s", &ms),
                   CR_EINVAL);
  assert_int_equal(cr_config_parse_duration("9999999999999999d", &ms),
                   CR_EINVAL);
  assert_true(cr_config_valid_id("sg-main_1.x"));
  assert_false(cr_config_valid_id(""));
  assert_false(cr_config_valid_id("a b"));
  assert_false(cr_config_valid_id("é"));
  char long_id[130];
  memset(long_id, 'a', 129);
  long_id[129] = '\0';
  assert_false(cr_config_valid_id(long_id));
  long_id[128] = '\0';
  assert_true(cr_config_valid_id(long_id));
}

/* ---- Plugin checks ------------------------------------------------------- */

static cr_plugin_host *cfgtest_host(void) {
  cr_plugin_host *h = NULL;
  char err[512];
  assert_int_equal(cr_plugin_host_new(NULL, &h), 0);
  int rc = cr_plugin_host_load_file(h, CR_TEST_PLUGIN_DIR "/cfgtest.so", err,
                                    sizeof err);
  if (rc != 0)
    fail_msg("cannot load cfgtest.so: %s", err);
  return h;
}

static void check_plugins(struct loaded *l, cr_plugin_host *h, int want) {
  size_t before = n_errors(l);
  int rc = cr_config_check_plugins(l->cfg, h, &l->d);
  if (rc != want)
    dump(&l->d);
  assert_int_equal(rc, want);
  if (want == 0)
    assert_int_equal(n_errors(l), before);
}

static void test_plugin_providers_and_methods(void **state) {
  (void)state;
  cr_plugin_host *h = cfgtest_host();
  const char *t = "authorizations:\n"
                  "  - id: a1\n"
                  "    provider: cfgtset\n"
                  "    method: api_key\n"
                  "  - id: a2\n"
                  "    provider: cfgtest\n"
                  "    method: oauth2\n"
                  "    credentials: {api_key: SG.abcdefgh}\n"
                  "works:\n"
                  "  - id: w\n"
                  "    provider: cfgtest\n"
                  "    authorization: a2\n"
                  "    config: {streams: [contacts]}\n"
                  "    destination: {type: plugin, provider: cfgtest, "
                  "authorization: a2}\n";
  struct loaded l;
  load(&l, t);
  assert_int_equal(l.rc, 0);
  check_plugins(&l, h, CR_ECONFIG);
  expect_err(&l, t, "cfgtset", 0,
             "unknown provider 'cfgtset' (did you mean 'cfgtest'?); loaded "
             "providers: cfgtest");
  expect_err(&l, t, "oauth2", 0,
             "provider 'cfgtest' does not accept method 'oauth2' (accepts: "
             "api_key, basic)");
  expect_err(&l, t, "cfgtest, auth", 0,
             "provider 'cfgtest' cannot write (capabilities: *");
  /* The credentials of a1 are {} but its provider is unknown: no schema
   * check there. */
  assert_int_equal(n_errors(&l), 3);
  unload(&l);

  /* Without any plugin: reported at the authorization, not again at the
   * works using it. */
  cr_plugin_host *empty = NULL;
  assert_int_equal(cr_plugin_host_new(NULL, &empty), 0);
  t = "authorizations:\n  - {id: a, provider: zzz, method: m}\n"
      "works:\n  - {id: w, provider: zzz, authorization: a}\n";
  load(&l, t);
  check_plugins(&l, empty, CR_ECONFIG);
  expect_err(&l, t, "zzz", 0, "unknown provider 'zzz'; loaded providers: none");
  assert_int_equal(n_errors(&l), 1);
  unload(&l);
  cr_plugin_host_free(empty);
  cr_plugin_host_free(h);
}

/* An unset ${ENV} in credentials is the one error: no knock-on schema
 * errors for the empty value it left. */
static void test_unresolved_credentials_reported_once(void **state) {
  (void)state;
  unsetenv("CR_TEST_NEVER_SET");
  cr_plugin_host *h = cfgtest_host();
  const char *t = "authorizations:\n"
                  "  - id: a\n"
                  "    provider: cfgtest\n"
                  "    method: api_key\n"
                  "    credentials: {api_key: \"${CR_TEST_NEVER_SET}\"}\n";
  struct loaded l;
  load(&l, t);
  assert_int_equal(l.rc, CR_ECONFIG);
  cr_config_check_plugins(l.cfg, h, &l.d);
  expect_err(&l, t, "\"${CR_TEST_NEVER_SET}", 0,
             "environment variable CR_TEST_NEVER_SET is not set");
  assert_int_equal(n_errors(&l), 1);
  unload(&l);
  cr_plugin_host_free(h);
}

/* settings: (ABI minor 1): checked against the plugin's settings schema,
 * refused for a plugin without one, and handed to the plugin. */
static void test_settings(void **state) {
  (void)state;
  cr_plugin_host *h = cfgtest_host();
  char err[512];
  assert_int_equal(
      cr_plugin_host_load_file(h, CR_TEST_PLUGIN_DIR "/abi_old_minor_small.so",
                               err, sizeof err),
      0); /* a minor-0 plugin still loads */
  const char *t = "authorizations:\n"
                  "  - id: ok\n"
                  "    provider: cfgtest\n"
                  "    method: api_key\n"
                  "    credentials: {api_key: SG.abcdefgh}\n"
                  "    settings: {base_url: \"https://eu.example.com\"}\n"
                  "  - id: bad\n"
                  "    provider: cfgtest\n"
                  "    method: api_key\n"
                  "    credentials: {api_key: SG.abcdefgh}\n"
                  "    settings: {base_url: ftp-nope}\n"
                  "  - id: old\n"
                  "    provider: oldminor\n"
                  "    method: api_key\n"
                  "    settings: {region: eu}\n";
  struct loaded l;
  load(&l, t);
  assert_int_equal(l.rc, 0);
  check_plugins(&l, h, CR_ECONFIG);
  expect_err(&l, t, "ftp-nope", 0, "settings of authorization 'bad'*");
  expect_err(&l, t, "{region", 0,
             "provider 'oldminor' takes no settings (its plugin declares no "
             "settings schema)");
  assert_int_equal(n_errors(&l), 2);
  /* The plugin gets them (its health reason echoes them). */
  const struct cr_config_auth *a = cr_config_find_auth(l.cfg, "ok");
  struct cr_ctl_health_input in;
  struct cr_health_outcome o;
  assert_int_equal(cr_ctl_health_prepare(NULL, l.cfg, a, &in), 0);
  assert_int_equal(cr_ctl_health_exec(l.cfg, cr_plugin_host_find(h, "cfgtest"),
                                      a, &in, NULL, &o),
                   0);
  cr_ctl_health_input_clear(&in);
  assert_string_equal(o.reason,
                      "settings {\"base_url\":\"https://eu.example.com\"}");
  unload(&l);
  cr_plugin_host_free(h);
}

static void test_plugin_schemas(void **state) {
  (void)state;
  setenv("CR_TEST_BADKEY", BAD_SECRET, 1);
  setenv("CR_TEST_SECRET", SECRET, 1);
  cr_plugin_host *h = cfgtest_host();
  const char *t = "authorizations:\n"
                  "  - id: good\n"
                  "    provider: cfgtest\n"
                  "    method: api_key\n"
                  "    credentials: {api_key: \"${CR_TEST_SECRET}\"}\n"
                  "  - id: bad\n"
                  "    provider: cfgtest\n"
                  "    method: basic\n"
                  "    credentials:\n"
                  "      api_key: \"${CR_TEST_BADKEY}\"\n"
                  "      extra: true\n"
                  "  - id: none\n"
                  "    provider: cfgtest\n"
                  "    method: basic\n"
                  "    credentials: {other: x}\n"
                  "works:\n"
                  "  - id: w\n"
                  "    provider: cfgtest\n"
                  "    authorization: good\n"
                  "    config:\n"
                  "      streams: [contacts, lsts]\n"
                  "      page_size: 0\n"
                  "  - id: w2\n"
                  "    provider: cfgtest\n"
                  "    authorization: good\n";
  struct loaded l;
  load(&l, t);
  assert_int_equal(l.rc, 0);
  check_plugins(&l, h, CR_ECONFIG);
  /* Pattern failure at the value, never echoing it. */
  expect_err(&l, t, "\"${CR_TEST_BADKEY}", 0,
             "credentials of authorization 'bad'*");
  /* additionalProperties: at the offending member (a boolean singleton). */
  expect_err(&l, t, "true", 0, "credentials of authorization 'bad'*");
  /* Missing required property: at the object. */
  expect_err(&l, t, "{other", 0, "credentials of authorization 'none'*");
  expect_err(&l, t, "lsts", 0, "config of work 'w'*");
  expect_err(&l, t, "0\n", 0, "config of work 'w'*");
  /* w2 has no config: {} misses "streams", reported at the work. */
  expect_err(&l, t, "id: w2", 0, "config of work 'w2'*");
  assert_true(no_diag_contains(&l.d, BAD_SECRET));
  assert_true(no_diag_contains(&l.d, "XYZZY"));
  assert_true(no_diag_contains(&l.d, SECRET));
  unload(&l);

  /* A valid config passes. */
  load(&l, "authorizations:\n  - {id: a, provider: cfgtest, method: api_key, "
           "credentials: {api_key: SG.abcdefgh}}\n"
           "works:\n  - {id: w, provider: cfgtest, authorization: a, config: "
           "{streams: [lists], page_size: 10}}\n");
  assert_int_equal(l.rc, 0);
  check_plugins(&l, h, 0);
  unload(&l);
  cr_plugin_host_free(h);
}

/* ---- Examples shipped in configs/ ---------------------------------------- */

static void test_example_config_is_valid(void **state) {
  (void)state;
  setenv("CONNRUN_API_TOKEN", "example-token-123", 1);
  setenv("EXAMPLE_API_KEY", "example-key-123", 1);
  setenv("WEBHOOK_SECRET", "whsec_example123", 1);
  setenv("SMTP_PASSWORD", "smtp-password-123", 1);
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = NULL;
  int rc = cr_config_load(CR_SOURCE_DIR "/configs/example.yaml", &cfg, &d);
  if (rc != 0)
    dump(&d);
  assert_int_equal(rc, 0);
  assert_true(cfg->n_auths >= 1);
  assert_true(cfg->n_works >= 1);
  assert_true(cfg->n_subscriptions >= 1);
  assert_true(cfg->n_files >= 2); /* it shows include too */
  cr_config_free(cfg);
  cr_diags_free(&d);
}

/* ---- The building blocks: diagnostics, vocabulary, secret references ----- */

static void test_diags(void **state) {
  (void)state;
  cr_diags d = CR_DIAGS_INIT;
  assert_int_equal(cr_diags_addf(&d, "b.yaml", 3, 1, CR_DIAG_ERROR, "e%d", 1),
                   0);
  assert_int_equal(cr_diags_addf(&d, "a.yaml", 9, 2, CR_DIAG_WARNING, "w"), 0);
  assert_int_equal(cr_diags_addf(&d, "b.yaml", 1, 7, CR_DIAG_ERROR, "first"),
                   0);
  assert_int_equal(cr_diags_addf(&d, "b.yaml", 1, 7, CR_DIAG_ERROR, "second"),
                   0);
  assert_int_equal(cr_diags_addf(&d, NULL, 0, 0, CR_DIAG_ERROR, "global"), 0);
  for (int i = 0; i < 20; i++) /* grows past the first capacity */
    assert_int_equal(
        cr_diags_addf(&d, "z.yaml", 100 - i, 1, CR_DIAG_ERROR, "z%d", i), 0);
  assert_int_equal(cr_diags_count(&d, CR_DIAG_ERROR), 24);
  assert_int_equal(cr_diags_count(&d, CR_DIAG_WARNING), 1);
  cr_diags_sort(&d);
  assert_string_equal(d.items[0].message, "global");
  assert_string_equal(d.items[1].file, "a.yaml");
  assert_string_equal(d.items[2].message, "first"); /* stable */
  assert_string_equal(d.items[3].message, "second");
  assert_string_equal(d.items[4].message, "e1");
  assert_int_equal(d.items[5].line, 81);
  assert_int_equal(d.items[24].line, 100);
  char buf[128];
  assert_int_equal(cr_diag_format(&d.items[2], buf, sizeof buf),
                   (int)strlen("b.yaml:1:7: error: first"));
  assert_string_equal(buf, "b.yaml:1:7: error: first");
  cr_diag_format(&d.items[1], buf, sizeof buf);
  assert_string_equal(buf, "a.yaml:9:2: warning: w");
  cr_diag_format(&d.items[0], buf, sizeof buf);
  assert_string_equal(buf, "error: global");
  struct cr_diag nopos = {"f.yaml", 0, 0, CR_DIAG_ERROR, "whole file"};
  cr_diag_format(&nopos, buf, sizeof buf);
  assert_string_equal(buf, "f.yaml: error: whole file");
  assert_true(cr_diag_format(&nopos, buf, 4) > 4); /* truncated */
  assert_string_equal(buf, "f.y");
  cr_diags_free(&d);
  assert_int_equal(d.count, 0);
  cr_diags_free(&d); /* reusable, idempotent */

  /* Allocation failure: reported and flagged, nothing half-added. */
  cr_test_alloc_install();
  for (long n = 0; n < 3; n++) {
    cr_diags f = CR_DIAGS_INIT;
    cr_test_alloc_fail_after(n);
    int rc = cr_diags_addf(&f, "x.yaml", 1, 1, CR_DIAG_ERROR, "m");
    cr_test_alloc_fail_after(-1);
    assert_int_equal(rc, CR_ENOMEM);
    assert_int_equal(f.count, 0);
    assert_true(f.nomem);
    cr_diags_free(&f);
  }
}

static void test_vocab(void **state) {
  (void)state;
  static const char *const documented[] = {
      "created", "updated",      "deleted",   "started", "syncing",
      "synced",  "synccomplete", "completed", "failed"};
  for (size_t i = 0; i < 9; i++) {
    assert_string_equal(cr_vocab_verb_at(i)->name, documented[i]);
    assert_true(cr_vocab_is_verb(documented[i]));
  }
  assert_int_equal(cr_vocab_verb_count(), 21);
  assert_null(cr_vocab_verb_at(21));
  assert_true(cr_vocab_is_verb("alerted"));
  assert_true(cr_vocab_is_verb("recovered"));
  assert_true(cr_vocab_is_verb("delivered"));
  assert_false(cr_vocab_is_verb("update"));
  assert_false(cr_vocab_is_verb(NULL));
  assert_int_equal(cr_vocab_subject_type_count(), 27);
  assert_true(cr_vocab_is_subject_type("topic-document"));
  assert_true(cr_vocab_is_subject_type("runner"));
  assert_false(cr_vocab_is_subject_type("Work"));
  assert_string_equal(cr_vocab_subject_type_at(25)->name, "runner");
  assert_string_equal(cr_vocab_subject_type_at(26)->name, "instance");
  assert_string_equal(cr_vocab_suggest_verb("faild"), "failed");
  assert_string_equal(cr_vocab_suggest_verb("update"), "updated");
  assert_null(cr_vocab_suggest_verb("failed")); /* exact: nothing to say */
  assert_null(cr_vocab_suggest_verb("xyzzyplugh"));
  assert_string_equal(cr_vocab_suggest_subject_type("segmnt"), "segment");
  assert_int_equal(cr_vocab_distance("kitten", "sitting", 5), 3);
  assert_int_equal(cr_vocab_distance("kitten", "sitting", 2), 3); /* capped */
  assert_int_equal(cr_vocab_distance("", "abc", 5), 3);
  const char *cands[] = {"schedule", NULL, "scheduler"};
  assert_string_equal(cr_vocab_suggest("schedul", cands, 3, 2), "schedule");
  static const char *const health[] = {"Unknown", "Healthy", "Unhealthy"};
  for (int i = 0; i < 3; i++) {
    assert_string_equal(cr_vocab_health_name(i), health[i]);
    assert_int_equal(cr_vocab_health_parse(health[i]), i);
    assert_non_null(cr_vocab_health_description(i));
  }
  assert_int_equal(CR_HEALTH_HEALTHY, 1); /* matches the plugin ABI */
  static const char *const integ[] = {"Active", "Error", "Disabled"};
  for (int i = 0; i < 3; i++) {
    assert_string_equal(cr_vocab_integration_status_name(i), integ[i]);
    assert_int_equal(cr_vocab_integration_status_parse(integ[i]), i);
    assert_non_null(cr_vocab_integration_status_description(i));
  }
  static const char *const states[] = {"Created",   "Pending", "Executing",
                                       "Completed", "Failed",  "Cancelled"};
  for (int i = 0; i < 6; i++) {
    assert_string_equal(cr_vocab_exec_state_name(i), states[i]);
    assert_int_equal(cr_vocab_exec_state_parse(states[i]), i);
    assert_non_null(cr_vocab_exec_state_description(i));
  }
  assert_null(cr_vocab_exec_state_name(6));
  assert_null(cr_vocab_health_name(-1));
  assert_int_equal(cr_vocab_exec_state_parse("executing"), CR_EINVAL);
}

static void resolve_ok(const char *value, const char *want, int want_ref) {
  char err[256], *out = NULL;
  int ref = -1;
  int rc = cr_secret_resolve(value, g_dir, &out, &ref, err, sizeof err);
  if (rc != 0)
    fail_msg("'%s': %s", value, err);
  assert_string_equal(out, want);
  assert_int_equal(ref, want_ref);
  assert_int_equal(cr_secret_is_ref(value), want_ref);
  cr__free(out);
}

static void resolve_err(const char *value, int want_rc, const char *want_msg) {
  char err[512], *out = (char *)1;
  assert_int_equal(cr_secret_resolve(value, g_dir, &out, NULL, err, sizeof err),
                   want_rc);
  assert_null(out);
  assert_true(msg_matches(err, want_msg));
}

static void test_secret_references(void **state) {
  (void)state;
  setenv("CR_T_A", "alpha", 1);
  setenv("CR_T_B", "", 1);
  unsetenv("CR_T_UNSET");
  resolve_ok("plain value", "plain value", 0);
  resolve_ok("", "", 0);
  resolve_ok("${CR_T_A}", "alpha", 1);
  resolve_ok("x-${CR_T_A}-${CR_T_A}-${CR_T_B}.", "x-alpha-alpha-.", 1);
  resolve_ok("$${CR_T_A}", "${CR_T_A}", 0);
  resolve_ok("cost: $5 {x}", "cost: $5 {x}", 0);
  write_in("s1.txt", "line-secret\r\n");
  write_in("s2.txt", "two\n\n");
  write_in("s3.txt", "");
  resolve_ok("file:s1.txt", "line-secret", 1);
  resolve_ok("file:s2.txt", "two\n", 1); /* one newline only */
  resolve_ok("file:s3.txt", "", 1);
  char *abs = path_in("s1.txt"), ref[4200];
  snprintf(ref, sizeof ref, "file:%s", abs);
  resolve_ok(ref, "line-secret", 1);
  free(abs);
  resolve_ok("see file:s1.txt", "see file:s1.txt", 0); /* whole value only */

  resolve_err("${CR_T_UNSET}", CR_ENOENT,
              "environment variable CR_T_UNSET is not set");
  resolve_err("a${CR_T_A", CR_EINVAL, "unterminated '${' (missing '}')");
  resolve_err("${}", CR_EINVAL, "invalid environment variable name ''");
  resolve_err("${A-B}", CR_EINVAL, "invalid environment variable name 'A-B'");
  resolve_err("file:", CR_EINVAL, "empty file: reference");
  resolve_err("file:missing.txt", CR_EIO, "cannot read secret file *");
  resolve_err("file:.", CR_EIO, "cannot read secret file *: Is a directory");
  char *nul = path_in("nul.txt");
  FILE *f = fopen(nul, "wb");
  fwrite("ab\0cd", 1, 5, f);
  fclose(f);
  free(nul);
  resolve_err("file:nul.txt", CR_EIO,
              "cannot read secret file *: contains a NUL byte");
  char *big = path_in("big.txt");
  f = fopen(big, "wb");
  fseek(f, 1100 * 1024, SEEK_SET); /* sparse: 1.1 MiB */
  fputc('y', f);
  fclose(f);
  free(big);
  resolve_err("file:big.txt", CR_EIO,
              "cannot read secret file *: larger than 1 MiB");

  /* A tree: every string resolved, failures reported per node. */
  json_t *in = json_pack("{s:s, s:[s, i, s], s:{s:s}}", "a", "${CR_T_A}", "b",
                         "lit", 3, "${CR_T_UNSET}", "c", "d", "file:s3.txt");
  json_t *out = NULL;
  assert_int_equal(cr_secret_resolve_tree(in, g_dir, NULL, NULL, NULL, &out),
                   CR_ECONFIG);
  assert_string_equal(json_string_value(json_object_get(out, "a")), "alpha");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(out, "b"), 0)), "lit");
  assert_int_equal(
      json_integer_value(json_array_get(json_object_get(out, "b"), 1)), 3);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(out, "b"), 2)), "");
  json_decref(out);
  json_decref(in);
  assert_int_equal(cr_secret_resolve_tree(NULL, g_dir, NULL, NULL, NULL, &out),
                   CR_EINVAL);
}

/* ---- Allocation failures ------------------------------------------------- */

static void alloc_loop(const char *text, int want_rc) {
  char *path = cr_test_write_file(g_dir, "main.yaml", text);
  cr_test_alloc_install();
  long n = 0;
  for (;; n++) {
    cr_diags d = CR_DIAGS_INIT;
    cr_config *cfg = NULL;
    cr_test_alloc_fail_after(n);
    int rc = cr_config_load(path, &cfg, &d);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (failed) {
      if (rc != CR_ENOMEM)
        fail_msg("allocation %ld failed but load returned %d", n, rc);
      assert_null(cfg);
    } else {
      assert_int_equal(rc, want_rc);
      assert_non_null(cfg);
    }
    cr_config_free(cfg);
    cr_diags_free(&d);
    if (!failed)
      break;
  }
  assert_true(n > 50);
  free(path);
}

static void test_alloc_failures(void **state) {
  (void)state;
  setenv("CR_TEST_SECRET", SECRET, 1);
  mkdir_in("inc.d");
  write_in("inc.d/subs.yaml",
           "subscriptions:\n  - id: s\n    workflow: webhook_system_events\n"
           "    config:\n      system_event_multiple_types: [failed, "
           "created]\n      system_event_sources: {work: [w1]}\n"
           "      webhook_url: https://h/x\n"
           "      headers: {A: \"${CR_TEST_SECRET}\"}\n"
           "      secret: whsec_1234567\n");
  const char *medium =
      "include: [inc.d/]\n"
      "host:\n  plugin_dirs: [a, b]\n  api_tokens: [{name: t, token: "
      "\"${CR_TEST_SECRET}\"}]\n  runner: {concurrency: 2}\n" AUTH "works:\n"
      "  - {id: w1, provider: cfgtest, authorization: a1, schedule: {every: "
      "1h}, config: {streams: [contacts]}}\n"
      "  - {id: w2, provider: cfgtest, authorization: a1, schedule: {cron: "
      "\"0 3 * * *\"}, destination: {type: sqlite}}\n"
      "alerts:\n  - {id: al, default: true, channel: {email: {url: "
      "\"smtp://h\", from: a@b.c, to: [x@b.c], password: "
      "\"${CR_TEST_SECRET}\"}}}\n";
  alloc_loop(medium, 0);
  /* With errors too: the diagnostics' allocations fail as well. */
  const char *bad = "host:\n  listen: x\nworks:\n  - {id: w, schedul: 1}\n"
                    "  - {id: w}\nbogus: 1\n";
  alloc_loop(bad, CR_ECONFIG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_full_valid_config, setup, teardown),
      cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_required, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_references, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schedules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_destinations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_subscriptions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_all_errors_in_one_run, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_secrets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_hash, setup, teardown),
      cmocka_unit_test(test_durations_and_ids),
      cmocka_unit_test(test_diags),
      cmocka_unit_test(test_vocab),
      cmocka_unit_test_setup_teardown(test_secret_references, setup, teardown),
      cmocka_unit_test_setup_teardown(test_plugin_providers_and_methods, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_plugin_schemas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unresolved_credentials_reported_once,
                                      setup, teardown),
      cmocka_unit_test(test_example_config_is_valid),
      cmocka_unit_test_setup_teardown(test_subscription_delivery_settings,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_template_errors, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
