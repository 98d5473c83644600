/* test_api_states.c: a work's sync state through the REST API over loopback
 * HTTP against a real daemon: GET /v1/works/{id}/states lists the versions
 * two executions committed (newest first, with their execution), POST
 * {"rollback_to": 1} commits version 1's state again as a new version noted
 * as a rollback with a `work updated` event by the token's name; the
 * refusals: unknown version or work (404), an open execution (409
 * execution_open, nothing committed), bad bodies (422), a token without
 * write (403). */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_fixture.h"

#define WRITER "writer-token-Tq39Bn21"
#define READER "reader-token-Mc74Hs08"

static int setup(void **state) {
  static char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  health_check_interval: 1h\n"
           "  runner: { isolation: inline }\n"
           "  api_tokens:\n"
           "    - {name: writer, token: \"" WRITER
           "\", scopes: [read, write]}\n"
           "    - {name: reader, token: \"" READER "\"}\n"
           "authorizations:\n"
           "  - { id: ex, provider: example, method: api_key, credentials: "
           "{ api_key: good } }\n"
           "works:\n"
           "  - { id: items, provider: example, authorization: ex, config: "
           "{ streams: [items], count: 4 } }\n"
           "  - { id: parked, provider: example, authorization: ex, runner: "
           "{ labels: [nowhere] }, config: { streams: [items] } }\n",
           CR_PLUGIN_DIR);
  *state = cr_api_fixture_new(cfg);
  return 0;
}

static long post(struct cr_api_fixture *f, const char *token, const char *path,
                 const char *body, json_t **out) {
  static const char *const h[] = {"Content-Type: application/json", NULL};
  return cr_api_call(f, token, "POST", path, body, h, out, NULL);
}

static const char *err_code(const json_t *body) {
  return json_string_value(
      json_object_get(json_object_get(body, "error"), "code"));
}

/* Runs work items now and waits (bounded) until that execution is final. */
static void run_items(struct cr_api_fixture *f) {
  json_t *out = NULL;
  assert_int_equal(post(f, WRITER, "/v1/works/items/runs", NULL, &out), 201);
  char path[96];
  snprintf(path, sizeof path, "/v1/executions/%lld",
           (long long)json_integer_value(json_object_get(out, "id")));
  json_decref(out);
  const char *st = NULL;
  for (int i = 0; i < 400; i++) {
    out = NULL;
    assert_int_equal(
        cr_api_call(f, WRITER, "GET", path, NULL, NULL, &out, NULL), 200);
    st = json_string_value(json_object_get(out, "state"));
    int final = st && (!strcmp(st, "Completed") || !strcmp(st, "Failed"));
    json_decref(out);
    if (final)
      break;
    usleep(25 * 1000);
  }
}

static json_t *states(struct cr_api_fixture *f, const char *work) {
  char path[96];
  snprintf(path, sizeof path, "/v1/works/%s/states", work);
  json_t *out = NULL;
  assert_int_equal(cr_api_call(f, READER, "GET", path, NULL, NULL, &out, NULL),
                   200);
  json_t *items = json_incref(json_object_get(out, "items"));
  json_decref(out);
  return items;
}

static void test_history_and_rollback(void **state) {
  struct cr_api_fixture *f = *state;
  run_items(f);
  run_items(f);
  json_t *items = states(f, "items");
  assert_int_equal(json_array_size(items), 2);
  json_t *v2 = json_array_get(items, 0);
  assert_int_equal(json_integer_value(json_object_get(v2, "version")), 2);
  assert_true(json_is_integer(json_object_get(v2, "execution_id")));
  assert_int_equal(json_integer_value(json_object_get(v2, "records")), 4);
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(v2, "state"), "last_id")),
                   4);
  json_decref(items);

  json_t *out = NULL;
  assert_int_equal(
      post(f, WRITER, "/v1/works/items/states", "{\"rollback_to\": 1}", &out),
      201);
  assert_int_equal(json_integer_value(json_object_get(out, "version")), 3);
  assert_true(json_is_null(json_object_get(out, "execution_id")));
  assert_string_equal(json_string_value(json_object_get(out, "note")),
                      "set by operator: rollback to version 1");
  json_decref(out);
  items = states(f, "items");
  assert_int_equal(json_array_size(items), 3);
  json_decref(items);

  /* The event, by the token's name. */
  out = NULL;
  assert_int_equal(
      cr_api_call(f, READER, "GET",
                  "/v1/events?subject_type=work&subject_id=items&verb=updated",
                  NULL, NULL, &out, NULL),
      200);
  json_t *ev = NULL, *it = json_object_get(out, "items");
  for (size_t i = 0; i < json_array_size(it); i++) {
    json_t *d = json_object_get(json_array_get(it, i), "data");
    if (json_object_get(d, "change") != NULL)
      ev = json_array_get(it, i);
  }
  assert_non_null(ev);
  assert_string_equal(json_string_value(json_object_get(ev, "actor")),
                      "writer");
  assert_int_equal(json_integer_value(
                       json_object_get(json_object_get(ev, "data"), "version")),
                   3);
  json_decref(out);
}

static void test_refusals(void **state) {
  struct cr_api_fixture *f = *state;
  json_t *out = NULL;
  assert_int_equal(
      post(f, WRITER, "/v1/works/items/states", "{\"rollback_to\": 9}", &out),
      404);
  assert_string_equal(err_code(out), "not_found");
  json_decref(out);
  out = NULL;
  assert_int_equal(
      post(f, WRITER, "/v1/works/nope/states", "{\"rollback_to\": 1}", &out),
      404);
  json_decref(out);
  out = NULL;
  assert_int_equal(post(f, WRITER, "/v1/works/items/states",
                        "{\"rollback_to\": \"1\"}", &out),
                   422);
  assert_string_equal(err_code(out), "invalid_type");
  json_decref(out);
  out = NULL;
  assert_int_equal(
      post(f, WRITER, "/v1/works/items/states", "{\"version\": 1}", &out), 422);
  assert_string_equal(err_code(out), "unknown_field");
  json_decref(out);
  assert_int_equal(
      post(f, READER, "/v1/works/items/states", "{\"rollback_to\": 1}", NULL),
      403);
  assert_int_equal(cr_api_call(f, READER, "GET", "/v1/works/nope/states", NULL,
                               NULL, NULL, NULL),
                   404);

  /* parked's execution waits for a runner labelled nowhere: open. */
  assert_int_equal(post(f, WRITER, "/v1/works/parked/runs", NULL, NULL), 201);
  out = NULL;
  assert_int_equal(
      post(f, WRITER, "/v1/works/parked/states", "{\"rollback_to\": 1}", &out),
      409);
  assert_string_equal(err_code(out), "execution_open");
  json_decref(out);
  json_t *items = states(f, "parked");
  assert_int_equal(json_array_size(items), 0);
  json_decref(items);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_history_and_rollback, setup,
                                      cr_api_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_refusals, setup,
                                      cr_api_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
