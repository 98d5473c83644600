/* test_api_web.c: the web dashboard's side of the REST server over loopback
 * HTTP against a real daemon: every embedded asset of web/ served without a
 * token at its path with its Content-Type and exact bytes, a strict
 * Content-Security-Policy and no inline script in the page, ETag
 * revalidation (304), gzip only when accepted, 404 for an unknown asset and
 * /v1 still asking for a token; and GET /v1/whoami, the token's name and
 * scopes (401 without a token, 403 without read). */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_web.h"
#include "api_fixture.h"

#define WRITER "writer-token-Jd81Lq40"
#define ADMIN "admin-token-Pw62Xe19"

static int setup(void **state) {
  static char cfg[2048];
  snprintf(cfg, sizeof cfg,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  health_check_interval: 1h\n"
           "  api_tokens:\n"
           "    - {name: writer, token: \"" WRITER
           "\", scopes: [read, write]}\n"
           "    - {name: admin-only, token: \"" ADMIN "\", scopes: [admin]}\n"
           "authorizations:\n"
           "  - { id: files, provider: filedrop, method: none }\n",
           CR_PLUGIN_DIR);
  *state = cr_api_fixture_new(cfg);
  return 0;
}

/* The value of header name in the header lines head (a static copy), or
 * NULL. */
static const char *header(const char *head, const char *name) {
  static char v[512];
  size_t n = strlen(name);
  for (const char *p = head; p != NULL && *p; p = strchr(p, '\n')) {
    if (*p == '\n')
      p++;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *s = p + n + 1 + strspn(p + n + 1, " ");
      size_t len = strcspn(s, "\r\n");
      snprintf(v, sizeof v, "%.*s", (int)(len < sizeof v ? len : sizeof v - 1),
               s);
      return v;
    }
  }
  return NULL;
}

static void test_every_asset(void **state) {
  struct cr_api_fixture *f = *state;
  assert_true(cr__web_n_assets >= 3);
  assert_non_null(cr__web_find("/"));
  for (size_t i = 0; i < cr__web_n_assets; i++) {
    const struct cr__web_asset *a = &cr__web_assets[i];
    char *raw = NULL, *head = NULL;
    long st = cr_api_call_head(f, NULL, "GET", a->path, NULL, NULL, NULL, &raw,
                               &head);
    assert_int_equal(st, 200);
    assert_string_equal(header(head, "Content-Type"), a->type);
    assert_string_equal(header(head, "ETag"), a->etag);
    assert_string_equal(header(head, "Cache-Control"), "no-cache");
    assert_null(header(head, "Content-Encoding"));
    assert_int_equal(strlen(raw), a->raw_len);
    assert_memory_equal(raw, a->raw, a->raw_len);
    free(raw);
    free(head);
  }
}

static void test_page_policy(void **state) {
  struct cr_api_fixture *f = *state;
  char *raw = NULL, *head = NULL;
  assert_int_equal(
      cr_api_call_head(f, NULL, "GET", "/", NULL, NULL, NULL, &raw, &head),
      200);
  assert_string_equal(header(head, "Content-Type"), "text/html; charset=utf-8");
  const char *csp = header(head, "Content-Security-Policy");
  assert_non_null(csp);
  assert_non_null(strstr(csp, "default-src 'none'"));
  assert_non_null(strstr(csp, "script-src 'self'"));
  assert_non_null(strstr(csp, "frame-ancestors 'none'"));
  assert_null(strstr(csp, "unsafe"));
  assert_string_equal(header(head, "X-Content-Type-Options"), "nosniff");
  /* Every script of the page is a file of this origin: none inline. */
  int scripts = 0;
  for (const char *p = strstr(raw, "<script"); p;
       p = strstr(p + 1, "<script")) {
    const char *end = strchr(p, '>');
    assert_non_null(end);
    const char *src = strstr(p, " src=\"/assets/");
    assert_true(src != NULL && src < end);
    assert_memory_equal(end, "></script>", 10);
    scripts++;
  }
  assert_true(scripts >= 1);
  free(raw);
  free(head);
}

static void test_revalidation_and_gzip(void **state) {
  struct cr_api_fixture *f = *state;
  const struct cr__web_asset *a = cr__web_find("/assets/app.js");
  assert_non_null(a);
  char inm[80], *raw = NULL, *head = NULL;
  snprintf(inm, sizeof inm, "If-None-Match: %s", a->etag);
  const char *const cond[] = {inm, NULL};
  assert_int_equal(
      cr_api_call_head(f, NULL, "GET", a->path, NULL, cond, NULL, &raw, &head),
      304);
  assert_true(raw == NULL || raw[0] == '\0'); /* no body */
  assert_string_equal(header(head, "ETag"), a->etag);
  free(raw);
  free(head);
  const char *const gz[] = {"Accept-Encoding: br, gzip", NULL};
  assert_int_equal(
      cr_api_call_head(f, NULL, "GET", a->path, NULL, gz, NULL, &raw, &head),
      200);
  assert_string_equal(header(head, "Content-Encoding"), "gzip");
  assert_string_equal(header(head, "Vary"), "Accept-Encoding");
  assert_true((unsigned char)raw[0] == 0x1f && (unsigned char)raw[1] == 0x8b);
  assert_true(a->gz_len < a->raw_len);
  free(raw);
  free(head);
  const char *const nogz[] = {"Accept-Encoding: gzip;q=0, identity", NULL};
  assert_int_equal(
      cr_api_call_head(f, NULL, "GET", a->path, NULL, nogz, NULL, &raw, &head),
      200);
  assert_null(header(head, "Content-Encoding"));
  assert_int_equal(strlen(raw), a->raw_len);
  free(raw);
  free(head);
}

static void test_unknown_and_v1(void **state) {
  struct cr_api_fixture *f = *state;
  json_t *out = NULL;
  assert_int_equal(
      cr_api_call(f, NULL, "GET", "/assets/nope.js", NULL, NULL, &out, NULL),
      404);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(out, "error"), "code")),
      "not_found");
  json_decref(out);
  assert_int_equal(cr_api_call(f, NULL, "POST", "/", "{}", NULL, NULL, NULL),
                   404);
  assert_int_equal(
      cr_api_call(f, NULL, "GET", "/v1/works", NULL, NULL, NULL, NULL), 401);
}

static void test_whoami(void **state) {
  struct cr_api_fixture *f = *state;
  json_t *out = NULL;
  assert_int_equal(
      cr_api_call(f, WRITER, "GET", "/v1/whoami", NULL, NULL, &out, NULL), 200);
  char *text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(text,
                      "{\"name\":\"writer\",\"scopes\":[\"read\",\"write\"]}");
  free(text);
  json_decref(out);
  assert_int_equal(
      cr_api_call(f, NULL, "GET", "/v1/whoami", NULL, NULL, NULL, NULL), 401);
  assert_int_equal(
      cr_api_call(f, ADMIN, "GET", "/v1/whoami", NULL, NULL, NULL, NULL), 403);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_every_asset, setup,
                                      cr_api_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_page_policy, setup,
                                      cr_api_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_revalidation_and_gzip, setup,
                                      cr_api_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_unknown_and_v1, setup,
                                      cr_api_fixture_teardown),
      cmocka_unit_test_setup_teardown(test_whoami, setup,
                                      cr_api_fixture_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
