/* test_api_limits.c: the REST API's rate limit (host.api.rate_limit) and
 * DELETE /v1/authorizations/{id}?force=true, over loopback HTTP against a
 * real daemon: a token's burst then 429 rate_limited with Retry-After and
 * the refused change not applied, another token not affected, the bucket
 * refilled (polled, bounded), requests without a valid token limited by
 * address while the probes are not, the refusals in /metrics, bad
 * rate_limit values reported at FILE:LINE:COLUMN; and a forced delete that
 * disables the works using the authorization, with its events, or writes
 * nothing when a work of the configuration file uses it; and
 * read-your-writes: the request right after a create, rename or delete
 * answers with the change, no polling. */
#include "testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_fixture.h"
#include "config/config.h"
#include "util/error.h"

#define OPS "ops-token-Rk29Vb71"
#define OTHER "other-token-Hq55Zx02"
#define BURST 4

static char *config_text(const char *api, const char *extra_works) {
  static char buf[4096];
  snprintf(buf, sizeof buf,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  health_check_interval: 1h\n"
           "  runner: { isolation: inline }\n"
           "  api_tokens:\n"
           "    - {name: ops, token: \"" OPS "\", scopes: [read, write]}\n"
           "    - {name: other, token: \"" OTHER "\", scopes: [read]}\n"
           "%s"
           "authorizations:\n"
           "  - { id: files, provider: filedrop, method: none }\n"
           "%s",
           CR_PLUGIN_DIR, api, extra_works);
  return buf;
}

static int setup_limited(void **state) {
  struct cr_api_fixture *f = calloc(1, sizeof *f);
  char api[128];
  snprintf(api, sizeof api,
           "  api:\n"
           "    rate_limit: { requests_per_second: 1, burst: %d }\n",
           BURST);
  cr_api_fixture_start(f, config_text(api, ""));
  *state = f;
  return 0;
}

static int setup_plain(void **state) {
  struct cr_api_fixture *f = calloc(1, sizeof *f);
  cr_api_fixture_start(f, config_text("", ""));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  cr_api_fixture_stop(*state);
  free(*state);
  return 0;
}

static long get(struct cr_api_fixture *f, const char *token, const char *path,
                json_t **out) {
  return cr_api_call(f, token, "GET", path, NULL, NULL, out, NULL);
}

/* Polls GET path (bounded) until it answers want; returns the last body. */
static json_t *poll_status(struct cr_api_fixture *f, const char *token,
                           const char *path, long want) {
  json_t *out = NULL;
  long st = 0;
  for (int i = 0; i < 400 && st != want; i++) {
    json_decref(out);
    out = NULL;
    st = get(f, token, path, &out);
    if (st != want)
      usleep(25 * 1000);
  }
  if (st != want)
    fail_msg("GET %s: %ld, wanted %ld", path, st, want);
  return out;
}

static const char *err_code(const json_t *body) {
  return json_string_value(
      json_object_get(json_object_get(body, "error"), "code"));
}

static const char *err_message(const json_t *body) {
  return json_string_value(
      json_object_get(json_object_get(body, "error"), "message"));
}

/* The value of header name in head (the response's header lines). */
static void header_value(const char *head, const char *name, char *out,
                         size_t len) {
  out[0] = '\0';
  size_t n = strlen(name);
  for (const char *l = head; l != NULL && *l; l = strchr(l, '\n')) {
    if (*l == '\n')
      l++;
    if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
      const char *v = l + n + 1 + strspn(l + n + 1, " ");
      snprintf(out, len, "%.*s", (int)strcspn(v, "\r\n"), v);
      return;
    }
  }
}

/* Repeats a request until it is refused (bounded); returns how many were
 * answered before, with the refusal's status, body and headers. */
static int until_refused(struct cr_api_fixture *f, const char *token,
                         const char *method, const char *body_fmt,
                         const char *path, long *status, json_t **err,
                         char **head) {
  int ok = 0;
  for (int i = 0; i < 200; i++) {
    char body[256];
    if (body_fmt != NULL)
      snprintf(body, sizeof body, body_fmt, i);
    json_t *out = NULL;
    char *h = NULL;
    *status = cr_api_call_head(f, token, method, path, body_fmt ? body : NULL,
                               NULL, &out, NULL, &h);
    if (*status == 429) {
      *err = out;
      *head = h;
      return ok;
    }
    json_decref(out);
    free(h);
    ok++;
  }
  fail_msg("never refused after 200 requests");
  return ok;
}

static void test_token_bucket(void **state) {
  struct cr_api_fixture *f = *state;
  long st = 0;
  json_t *err = NULL;
  char *head = NULL, ra[16], path[64];
  /* Changes until the token's bucket is empty: at least the burst goes
   * through, then a 429 with its JSON error and Retry-After. */
  int made = until_refused(
      f, OPS, "POST",
      "{\"id\": \"rl-%d\", \"provider\": \"filedrop\", \"method\": \"none\"}",
      "/v1/authorizations", &st, &err, &head);
  assert_true(made >= BURST);
  assert_string_equal(err_code(err), "rate_limited");
  assert_non_null(strstr(err_message(err), "token 'ops'"));
  header_value(head, "Retry-After", ra, sizeof ra);
  assert_string_equal(ra, "1"); /* at most 1/rate, rounded up */
  header_value(head, "Content-Type", path, sizeof path);
  assert_string_equal(path, "application/json");
  json_decref(err);
  free(head);
  /* Another token is not affected: its first request goes through. The
   * last change answered was applied (polled: the daemon reloads after
   * the answer), the refused one was not. */
  snprintf(path, sizeof path, "/v1/authorizations/rl-%d", made - 1);
  long first = get(f, OTHER, path, NULL);
  assert_true(first == 200 || first == 404);
  json_decref(poll_status(f, OTHER, path, 200));
  snprintf(path, sizeof path, "/v1/authorizations/rl-%d", made);
  json_decref(poll_status(f, OTHER, path, 404));
  /* After the refill the token is answered again (polled, bounded). */
  json_decref(poll_status(f, OPS, "/v1/authorizations/files", 200));
  /* The refusals are counted. */
  char *text = NULL;
  for (int i = 0; i < 300 && st != 200; i++) {
    free(text);
    text = NULL;
    st = cr_api_call(f, OTHER, "GET", "/metrics", NULL, NULL, NULL, &text);
    if (st != 200)
      usleep(50 * 1000);
  }
  assert_int_equal(st, 200);
  const char *line =
      strstr(text, "connrun_api_rate_limited_total{by=\"token\"} ");
  assert_non_null(line);
  assert_true(atoi(line + strlen("connrun_api_rate_limited_total{by=\"token"
                                 "\"} ")) >= 1);
  free(text);
}

static void test_by_address(void **state) {
  struct cr_api_fixture *f = *state;
  long st = 0;
  json_t *err = NULL;
  char *head = NULL;
  /* A token that is not valid is not a bucket of its own: the address is. */
  int answered = until_refused(f, "not-a-token", "GET", NULL,
                               "/v1/authorizations", &st, &err, &head);
  assert_true(answered >= BURST);
  assert_string_equal(err_code(err), "rate_limited");
  assert_non_null(strstr(err_message(err), "this client address"));
  json_decref(err);
  free(head);
  /* The same address without a token is refused too... */
  assert_int_equal(get(f, NULL, "/v1/openapi.json", NULL), 429);
  /* ...but never the probes, nor a valid token. */
  assert_int_equal(get(f, NULL, "/healthz", NULL), 200);
  assert_int_equal(get(f, NULL, "/readyz", NULL), 200);
  assert_int_equal(get(f, OTHER, "/v1/authorizations/files", NULL), 200);
}

/* Every error of loading text, formatted, joined by newlines. */
static char *load_errors(const char *text) {
  char *dir = cr_test_mkdtemp("rl-config");
  char *path = cr_test_write_file(dir, "c.yaml", text);
  cr_config *cfg = NULL;
  cr_diags d;
  cr_diags_init(&d);
  assert_int_equal(cr_config_load(path, &cfg, &d), CR_ECONFIG);
  char *all = calloc(1, 8192);
  for (size_t i = 0; i < d.count; i++) {
    char line[1024];
    cr_diag_format(&d.items[i], line, sizeof line);
    strncat(all, line, 8192 - strlen(all) - 2);
    strcat(all, "\n");
  }
  cr_diags_free(&d);
  cr_config_free(cfg);
  cr_test_rmtree(dir);
  free(dir);
  free(path);
  return all;
}

static void assert_has(const char *text, const char *want) {
  if (strstr(text, want) == NULL)
    fail_msg("expected '%s' in:\n%s", want, text);
}

static void test_config_errors(void **state) {
  (void)state;
  char *e = load_errors("host:\n"
                        "  api:\n"
                        "    rate_limit:\n"
                        "      requests_per_second: 0\n"
                        "      burst: \"x\"\n"
                        "      brust: 3\n");
  assert_has(e, "c.yaml:4:28: error: ");
  assert_has(e, "between 1 and 1000000, got 0");
  assert_has(e, "c.yaml:5:14: error: ");
  assert_has(e, "c.yaml:6:7: error: ");
  assert_has(e, "brust");
  free(e);
  e = load_errors("host:\n  api:\n    rate_limit: 5\n");
  assert_has(e, "c.yaml:3:17: error: ");
  free(e);
  e = load_errors("host:\n  api:\n    rate_limit: { burst: 3 }\n");
  assert_has(e, "c.yaml:3:17: error: ");
  assert_has(e, "requests_per_second");
  free(e);
}

/* ---- DELETE /v1/authorizations/{id}?force=true ---- */

static const char work_fmt[] =
    "{\"id\": \"%s\", \"provider\": \"filedrop\", \"authorization\": \"%s\", "
    "\"config\": {\"directory\": \"/nonexistent/connrun-rl\", \"streams\": "
    "[{\"name\": \"x\", \"pattern\": \"*.csv\"}]}}";

static void create_work(struct cr_api_fixture *f, const char *id,
                        const char *auth) {
  char body[512];
  snprintf(body, sizeof body, work_fmt, id, auth);
  assert_int_equal(
      cr_api_call(f, OPS, "POST", "/v1/works", body, NULL, NULL, NULL), 201);
}

/* Polls work id (bounded) until its status is want; returns its view. */
static json_t *poll_work(struct cr_api_fixture *f, const char *id,
                         const char *want) {
  char path[128];
  snprintf(path, sizeof path, "/v1/works/%s", id);
  for (int i = 0; i < 400; i++) {
    json_t *w = poll_status(f, OPS, path, 200);
    const char *s = json_string_value(json_object_get(w, "status"));
    if (s != NULL && !strcmp(s, want))
      return w;
    json_decref(w);
    usleep(25 * 1000);
  }
  fail_msg("work %s never became %s", id, want);
  return NULL;
}

/* The events of a query (a new array). */
static json_t *events(struct cr_api_fixture *f, const char *query) {
  char path[256];
  snprintf(path, sizeof path, "/v1/events?limit=1000&%s", query);
  json_t *out = NULL;
  assert_int_equal(get(f, OPS, path, &out), 200);
  json_t *items = json_incref(json_object_get(out, "items"));
  json_decref(out);
  return items;
}

static void reload_with(struct cr_api_fixture *f, const char *works) {
  free(cr_test_write_file(f->dir, "c.yaml", config_text("", works)));
  cr_daemon_reload(f->d);
}

static void assert_nothing_written(struct cr_api_fixture *f) {
  json_decref(poll_status(f, OPS, "/v1/authorizations/shared", 200));
  json_t *w = poll_work(f, "w1", "Active");
  assert_true(json_is_true(json_object_get(w, "enabled")));
  json_decref(w);
  json_t *ev = events(f, "verb=disabled");
  assert_int_equal(json_array_size(ev), 0);
  json_decref(ev);
}

static void test_force_delete(void **state) {
  struct cr_api_fixture *f = *state;
  assert_int_equal(cr_api_call(f, OPS, "POST", "/v1/authorizations",
                               "{\"id\": \"shared\", \"provider\": "
                               "\"filedrop\", \"method\": \"none\"}",
                               NULL, NULL, NULL),
                   201);
  create_work(f, "w1", "shared");
  create_work(f, "w2", "shared");
  create_work(f, "w0", "files");
  json_decref(poll_status(f, OPS, "/v1/works/w0", 200)); /* reloaded */
  json_t *err = NULL;
  /* Without force: 409 listing the works. A bad force: 400. */
  assert_int_equal(cr_api_call(f, OPS, "DELETE", "/v1/authorizations/shared",
                               NULL, NULL, &err, NULL),
                   409);
  assert_string_equal(err_code(err), "in_use");
  assert_non_null(strstr(err_message(err), "w1, w2"));
  json_decref(err);
  assert_int_equal(cr_api_call(f, OPS, "DELETE",
                               "/v1/authorizations/shared?force=yes", NULL,
                               NULL, NULL, NULL),
                   400);
  /* A work of the configuration file uses it: refused, naming the work
   * and where it is declared, and nothing written. */
  reload_with(f, "works:\n"
                 "  - id: wc\n"
                 "    provider: filedrop\n"
                 "    authorization: shared\n"
                 "    config: { directory: /nonexistent/connrun-rl, "
                 "streams: [{name: x, pattern: \"*.csv\"}] }\n");
  json_decref(poll_status(f, OPS, "/v1/works/wc", 200));
  assert_int_equal(cr_api_call(f, OPS, "DELETE",
                               "/v1/authorizations/shared?force=true", NULL,
                               NULL, &err, NULL),
                   409);
  assert_string_equal(err_code(err), "managed_by_config");
  assert_non_null(strstr(err_message(err), "work 'wc', declared in "));
  assert_non_null(strstr(err_message(err), "c.yaml:12"));
  json_decref(err);
  assert_nothing_written(f);
  /* Without it: the works are disabled, then the authorization deleted. */
  reload_with(f, "");
  json_decref(poll_status(f, OPS, "/v1/works/wc", 404));
  assert_int_equal(cr_api_call(f, OPS, "DELETE",
                               "/v1/authorizations/shared?force=true", NULL,
                               NULL, NULL, NULL),
                   204);
  json_decref(poll_status(f, OPS, "/v1/authorizations/shared", 404));
  const char *ids[] = {"w1", "w2"};
  for (int i = 0; i < 2; i++) {
    json_t *w = poll_work(f, ids[i], "Disabled");
    assert_true(json_is_false(json_object_get(w, "enabled")));
    json_decref(w);
  }
  json_t *w0 = poll_work(f, "w0", "Active");
  json_decref(w0);
  /* Their events, by the token, the works' before the authorization's. */
  json_t *dis = events(f, "subject_type=work&verb=disabled");
  json_t *del = events(f, "subject_type=auth&subject_id=shared&verb=deleted");
  assert_int_equal(json_array_size(dis), 2);
  assert_int_equal(json_array_size(del), 1);
  json_int_t del_id =
      json_integer_value(json_object_get(json_array_get(del, 0), "id"));
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(del, 0), "actor")),
      "ops");
  for (int i = 0; i < 2; i++) {
    const json_t *e = json_array_get(dis, (size_t)i);
    assert_string_equal(json_string_value(json_object_get(e, "subject_id")),
                        ids[i]);
    assert_string_equal(json_string_value(json_object_get(e, "actor")), "ops");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(e, "data"), "authorization")),
                        "shared");
    assert_true(json_integer_value(json_object_get(e, "id")) < del_id);
  }
  json_decref(dis);
  json_decref(del);
  /* A work whose authorization is gone cannot be enabled again. */
  assert_int_equal(cr_api_call(f, OPS, "PATCH", "/v1/works/w1",
                               "{\"enabled\": true}", NULL, &err, NULL),
                   422);
  assert_non_null(strstr(err_message(err), "shared"));
  json_decref(err);
}

/* ---- Read-your-writes ---- */

/* GET path right away, once, with no polling: its status (and name). */
static long get_once(struct cr_api_fixture *f, const char *path,
                     char name[64]) {
  json_t *v = NULL;
  long st = cr_api_call(f, OPS, "GET", path, NULL, NULL, &v, NULL);
  const char *n = json_string_value(json_object_get(v, "name"));
  snprintf(name, 64, "%s", n ? n : "");
  json_decref(v);
  return st;
}

static void test_read_your_writes(void **state) {
  struct cr_api_fixture *f = *state;
  char name[64];
  for (int i = 0; i < 20; i++) {
    char body[256], path[64], patch[128], want[64];
    snprintf(body, sizeof body,
             "{\"id\": \"ryw%d\", \"provider\": \"filedrop\", "
             "\"method\": \"none\"}",
             i);
    snprintf(path, sizeof path, "/v1/authorizations/ryw%d", i);
    assert_int_equal(cr_api_call(f, OPS, "POST", "/v1/authorizations", body,
                                 NULL, NULL, NULL),
                     201);
    assert_int_equal(get_once(f, path, name), 200);
    snprintf(want, sizeof want, "Renamed %d", i);
    snprintf(patch, sizeof patch, "{\"name\": \"%s\"}", want);
    assert_int_equal(
        cr_api_call(f, OPS, "PATCH", path, patch, NULL, NULL, NULL), 200);
    assert_int_equal(get_once(f, path, name), 200);
    assert_string_equal(name, want);
    assert_int_equal(
        cr_api_call(f, OPS, "DELETE", path, NULL, NULL, NULL, NULL), 204);
    assert_int_equal(get_once(f, path, name), 404);
  }
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_token_bucket, setup_limited,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_by_address, setup_limited, teardown),
      cmocka_unit_test(test_config_errors),
      cmocka_unit_test_setup_teardown(test_force_delete, setup_plain, teardown),
      cmocka_unit_test_setup_teardown(test_read_your_writes, setup_plain,
                                      teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
