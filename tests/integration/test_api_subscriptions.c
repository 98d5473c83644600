/* test_api_subscriptions.c: every JSON example of the audit-log document
 * ("Exporting Audit Logs or Alert Jobs", shared/seeds) POSTed verbatim to
 * /v1/subscriptions of a real daemon over loopback HTTP (its
 * YOUR_WEBHOOK_ENDPOINT placeholders pointed at a loopback receiver, and the
 * third example's "work-id-1" at a work that exists), then events made
 * through the API itself, and what the receiver gets checked against what
 * the document says each example does. */
#include "testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_fixture.h"
#include "fake_http.h"

#define TOKEN "subs-test-token-5e1c0a"
#define ADMIN "subs-admin-token-77d2e1"

/* The document's examples, with only the endpoint placeholders (and the
 * third's first work id) replaced; %s is the receiver URL. */
static const char *const examples[] = {
    "{\"config\": {\"system_event_multiple_types\": [\"updated\", "
    "\"created\", \"failed\"], \"webhook_url\": \"%s/basic\", \"headers\": "
    "{\"custom-header\": \"header-value\"}}, \"workflow\": "
    "\"webhook_system_events\"}",
    "{\"config\": {\"system_event_type\": \"failed\", \"webhook_url\": "
    "\"%s/slack\", \"json_template\": \"local note = if "
    "std.objectHas(event.data, \\\"notes\\\") then event.data.notes else "
    "\\\"A work failed\\\"; {\\\"text\\\": \\\"Alert notification: \\\" + "
    "note + \\\". For more info go to: "
    "https://activate.getlytics.com/data/integrations/work/%%s?aid=%%s\\\" "
    "%% [event.data.subject_id, event.data.aid] }\"}, \"workflow\": "
    "\"webhook_system_events\"}",
    "{\"config\": {\"system_event_multiple_types\": [\"updated\", "
    "\"created\", \"failed\"], \"system_event_sources\": {\"work\": "
    "[\"broken\", \"work-id-2\"]}, \"webhook_url\": \"%s/by-id\", "
    "\"headers\": {\"custom-header\": \"header-value\"}}, \"workflow\": "
    "\"webhook_system_events\"}",
    "{\"config\": {\"system_event_multiple_types\": [\"updated\", "
    "\"created\", \"failed\"], \"system_event_sources\": {\"work\": []}, "
    "\"webhook_url\": \"%s/all-works\", \"headers\": {\"custom-header\": "
    "\"header-value\"}}, \"workflow\": \"webhook_system_events\"}",
};

struct fixture {
  struct cr_api_fixture api;
  cr_fake_http *rx;
};

/* The receiver takes every delivery (204). */
static void accept_all(void *ud, const struct cr_fake_http_request *req,
                       struct cr_fake_http_response *resp) {
  (void)ud;
  (void)req;
  resp->status = 204;
}

static long call(struct fixture *f, const char *method, const char *path,
                 const char *body, json_t **out) {
  return cr_api_call(&f->api, TOKEN, method, path, body, NULL, out, NULL);
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  assert_int_equal(cr_fake_http_start(accept_all, NULL, &f->rx), 0);
  char cfg[4096];
  snprintf(cfg, sizeof cfg,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  account_id: acme\n"
           "  health_check_interval: 1h\n"
           "  runner: { isolation: inline }\n"
           "  api_tokens: [{name: ops, token: \"" TOKEN "\", "
           "scopes: [read, write]}, {name: root, token: \"" ADMIN "\", "
           "scopes: [read, write, admin]}]\n"
           "authorizations:\n"
           "  - { id: files, provider: filedrop, method: none }\n"
           "works:\n"
           "  - id: broken\n"
           "    provider: filedrop\n"
           "    authorization: files\n"
           "    config: { directory: /nonexistent/connrun-missing, streams: "
           "[{name: x, pattern: \"*.csv\"}] }\n",
           CR_PLUGIN_DIR);
  cr_api_fixture_start(&f->api, cfg);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  cr_api_fixture_stop(&f->api);
  cr_fake_http_stop(f->rx);
  free(f);
  return 0;
}

/* The bodies the receiver got on path, as parsed JSON (a new array). */
static json_t *received(struct fixture *f, const char *path) {
  json_t *arr = json_array();
  for (size_t i = 0; i < cr_fake_http_count(f->rx); i++) {
    const struct cr_fake_http_request *r = cr_fake_http_request_at(f->rx, i);
    if (strcmp(r->path, path) != 0)
      continue;
    json_t *b = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(b);
    json_array_append_new(arr, b);
    if (strcmp(path, "/slack") != 0)
      assert_string_equal(cr_fake_http_header(r, "custom-header"),
                          "header-value");
  }
  return arr;
}

static int has_event(const json_t *arr, const char *type, const char *id,
                     const char *verb) {
  size_t i;
  const json_t *e;
  json_array_foreach(arr, i, e) {
    const char *t = json_string_value(json_object_get(e, "subject_type"));
    const char *s = json_string_value(json_object_get(e, "subject_id"));
    const char *v = json_string_value(json_object_get(e, "verb"));
    if (t && s && v && !strcmp(t, type) && !strcmp(s, id) && !strcmp(v, verb))
      return 1;
  }
  return 0;
}

static void test_document_examples(void **state) {
  struct fixture *f = *state;
  char body[2048];
  for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
    snprintf(body, sizeof body, examples[i], cr_fake_http_url(f->rx));
    json_t *out = NULL;
    long st = call(f, "POST", "/v1/subscriptions", body, &out);
    if (st != 201)
      fail_msg("example %zu: HTTP %ld: %s", i + 1, st,
               json_dumps(out, JSON_COMPACT));
    assert_string_equal(json_string_value(json_object_get(out, "managed_by")),
                        "api");
    assert_string_equal(json_string_value(json_object_get(out, "workflow")),
                        "webhook_system_events");
    json_decref(out);
  }
  /* Events after the subscriptions exist (a new one starts at the end):
   * an authorization created through the API, then a run of the work that
   * fails (its directory is missing). */
  assert_int_equal(call(f, "POST", "/v1/authorizations",
                        "{\"id\": \"more-files\", \"provider\": \"filedrop\", "
                        "\"method\": \"none\"}",
                        NULL),
                   201);
  assert_int_equal(call(f, "POST", "/v1/works/broken/runs", NULL, NULL), 201);
  json_t *slack = NULL, *basic = NULL, *by_id = NULL, *all = NULL;
  for (int i = 0; i < 600; i++) { /* at most 30 s (sanitizer builds) */
    json_decref(slack);
    json_decref(basic);
    json_decref(by_id);
    json_decref(all);
    slack = received(f, "/slack");
    basic = received(f, "/basic");
    by_id = received(f, "/by-id");
    all = received(f, "/all-works");
    if (json_array_size(slack) >= 1 &&
        has_event(basic, "work", "broken", "failed") &&
        has_event(by_id, "work", "broken", "failed") &&
        has_event(all, "work", "broken", "failed"))
      break;
    usleep(50 * 1000);
  }
  /* Basic: every subject, the three verbs. */
  assert_true(has_event(basic, "auth", "more-files", "created"));
  assert_true(has_event(basic, "work", "broken", "failed"));
  /* Slack: only failures, rendered by the template as the document shows. */
  assert_int_equal(json_array_size(slack), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(slack, 0), "text")),
      "Alert notification: A work failed. For more info go to: "
      "https://activate.getlytics.com/data/integrations/work/broken?aid=acme");
  /* By id and all works: work events only, never the authorization's. */
  assert_true(has_event(by_id, "work", "broken", "failed"));
  assert_false(has_event(by_id, "auth", "more-files", "created"));
  assert_true(has_event(all, "work", "broken", "failed"));
  assert_false(has_event(all, "auth", "more-files", "created"));
  size_t i;
  const json_t *e;
  json_array_foreach(all, i, e) assert_string_equal(
      json_string_value(json_object_get(e, "subject_type")), "work");
  json_decref(slack);
  json_decref(basic);
  json_decref(by_id);
  json_decref(all);
  /* The subscriptions show what they delivered. */
  json_t *list = NULL;
  assert_int_equal(call(f, "GET", "/v1/subscriptions", NULL, &list), 200);
  assert_int_equal(json_array_size(json_object_get(list, "items")), 4);
  json_decref(list);
}

/* A table export through the API: only with the admin scope; its view (the
 * answer to the POST) shows the destination without its password, the table and the cursor. */
static void test_table_export(void **state) {
  struct fixture *f = *state;
  const char *body =
      "{\"workflow\": \"table_system_events\", \"config\": "
      "{\"destination\": \"postgresql://u:pw-Api9x@127.0.0.1:1/db\", "
      "\"table\": \"audit\"}}";
  json_t *out = NULL;
  assert_int_equal(call(f, "POST", "/v1/subscriptions", body, &out), 403);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(out, "error"), "field")),
                      "/workflow");
  json_decref(out);
  assert_int_equal(cr_api_call(&f->api, ADMIN, "POST", "/v1/subscriptions",
                               body, NULL, &out, NULL),
                   201);
  char *text = json_dumps(out, 0);
  assert_null(strstr(text, "pw-Api9x"));
  free(text);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(out, "config"),
                                        "destination")),
      "postgresql://u:***@127.0.0.1:1/db");
  json_t *exp = json_object_get(out, "export");
  assert_string_equal(json_string_value(json_object_get(exp, "table")),
                      "audit");
  assert_true(json_integer_value(json_object_get(exp, "cursor_event_id")) >
              0);
  json_decref(out);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_document_examples, setup, teardown),
      cmocka_unit_test_setup_teardown(test_table_export, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
