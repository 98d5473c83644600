/* test_remote_client.c: the runner host's HTTP client (core/remote/
 * remote_client) against the loopback fake server: the bearer token,
 * retries of 503 with backoff until 200, 409 stale_epoch, 401, other 4xx
 * with the server's message, transport errors bounded by a deadline, the
 * stop flag, keep-alive on one handle, and the token kept out of errors.
 * The answers follow the server's error shape {"error":{"code","message"}}
 * (docs/openapi.yaml, Error). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_http.h"
#include "remote/remote_client.h"
#include "util/error.h"

#define TOKEN "tok-0123456789abcdef"

/* Paths: /flaky answers 503 while fails > 0 (counting down), then 200;
 * /stale 409 stale_epoch; /revoked 401; /bad 400 with a message; /busy 409
 * another code; anything else 200 {"ok":true,"path":...}. */
struct srv {
  int fails;
};

static void handler(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  struct srv *s = ud;
  if (strcmp(req->path, "/flaky") == 0 && s->fails > 0) {
    s->fails--;
    resp->status = 503;
    resp->body = "{\"error\":{\"code\":\"unavailable\",\"message\":\"busy\"}}";
  } else if (strcmp(req->path, "/stale") == 0) {
    resp->status = 409;
    resp->body = "{\"error\":{\"code\":\"stale_epoch\",\"message\":\"the "
                 "lease is no longer yours\"}}";
  } else if (strcmp(req->path, "/revoked") == 0) {
    resp->status = 401;
    resp->body = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"unknown "
                 "runner or token\"}}";
  } else if (strcmp(req->path, "/bad") == 0) {
    resp->status = 400;
    resp->body = "{\"error\":{\"code\":\"invalid\",\"message\":\"reports[0]."
                 "type is unknown\"}}";
  } else if (strcmp(req->path, "/busy") == 0) {
    resp->status = 409;
    resp->body = "{\"error\":{\"code\":\"conflict\",\"message\":\"no\"}}";
  } else {
    cr_fake_http_set_body(resp, "{\"ok\":true,\"path\":\"%s\",\"len\":%zu}",
                          req->path, req->body_len);
  }
}

struct fx {
  struct srv srv;
  cr_fake_http *http;
  cr_remote_client *c;
  atomic_int cancel;
};

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  assert_int_equal(cr_fake_http_start(handler, &f->srv, &f->http), 0);
  struct cr_remote_client_opts o = {.server = cr_fake_http_url(f->http),
                                    .token = TOKEN,
                                    .cancel = &f->cancel};
  assert_int_equal(cr_remote_client_new(&o, &f->c), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  cr_remote_client_free(f->c);
  cr_fake_http_stop(f->http);
  free(f);
  return 0;
}

/* Fast backoff for tests: the policy is the same, only the scale. */
static const struct cr_remote_retry fast = {.base_ms = 1, .max_ms = 4};

struct retries {
  int n, last_attempt;
  int64_t max_delay;
  char why[256];
};

static void count_retry(void *ud, int attempt, int64_t delay_ms,
                        const char *why) {
  struct retries *r = ud;
  r->n++;
  r->last_attempt = attempt;
  if (delay_ms > r->max_delay)
    r->max_delay = delay_ms;
  snprintf(r->why, sizeof r->why, "%s", why);
}

static void test_retries_503_then_200(void **state) {
  struct fx *f = *state;
  f->srv.fails = 2;
  json_t *body = json_pack("{s:i}", "slots", 3);
  struct cr_remote_answer a = {0};
  char err[256] = "";
  struct retries seen = {0};
  struct cr_remote_retry pol = fast;
  pol.on_retry = count_retry;
  pol.on_retry_ud = &seen;
  assert_int_equal(cr_remote_call_retry(f->c, &pol, "POST", "/flaky", body, &a,
                                        err, sizeof err),
                   0);
  assert_int_equal(seen.n, 2);
  assert_int_equal(seen.last_attempt, 2);
  assert_true(seen.max_delay <= 2); /* full jitter below base * 2^(n-1) */
  assert_string_equal(seen.why, "busy (HTTP 503)");
  assert_int_equal(a.status, 200);
  assert_true(json_is_true(json_object_get(a.body, "ok")));
  assert_int_equal(cr_fake_http_count(f->http), 3);
  assert_int_equal(cr_remote_client_requests(f->c), 3);
  for (size_t i = 0; i < 3; i++) {
    const struct cr_fake_http_request *r = cr_fake_http_request_at(f->http, i);
    assert_string_equal(r->method, "POST");
    assert_string_equal(cr_fake_http_header(r, "Authorization"),
                        "Bearer " TOKEN);
    assert_string_equal(cr_fake_http_header(r, "Content-Type"),
                        "application/json");
    assert_string_equal(r->body, "{\"slots\":3}");
  }
  cr_remote_answer_clear(&a);
  json_decref(body);
}

static void test_stale_epoch(void **state) {
  struct fx *f = *state;
  struct cr_remote_answer a = {0};
  char err[256] = "";
  assert_int_equal(cr_remote_call_retry(f->c, &fast, "POST", "/stale", NULL, &a,
                                        err, sizeof err),
                   CR_ESTALE);
  assert_int_equal(a.status, 409);
  assert_non_null(strstr(err, "no longer yours"));
  assert_int_equal(cr_fake_http_count(f->http), 1); /* not retried */
  cr_remote_answer_clear(&a);
}

static void test_revoked_is_eperm_without_token(void **state) {
  struct fx *f = *state;
  struct cr_remote_answer a = {0};
  char err[256] = "";
  assert_int_equal(cr_remote_call_retry(f->c, &fast, "POST", "/revoked", NULL,
                                        &a, err, sizeof err),
                   CR_EPERM);
  assert_int_equal(cr_fake_http_count(f->http), 1);
  assert_non_null(strstr(err, "unknown runner"));
  assert_null(strstr(err, TOKEN));
  cr_remote_answer_clear(&a);
}

static void test_other_4xx_is_einval(void **state) {
  struct fx *f = *state;
  struct cr_remote_answer a = {0};
  char err[256] = "";
  assert_int_equal(cr_remote_call_retry(f->c, &fast, "POST", "/bad", NULL, &a,
                                        err, sizeof err),
                   CR_EINVAL);
  assert_string_equal(err, "reports[0].type is unknown (HTTP 400)");
  cr_remote_answer_clear(&a);
  assert_int_equal(cr_remote_call_retry(f->c, &fast, "POST", "/busy", NULL, &a,
                                        err, sizeof err),
                   CR_EINVAL); /* 409 but not stale_epoch */
  assert_int_equal(cr_fake_http_count(f->http), 2);
  cr_remote_answer_clear(&a);
}

static void test_keep_alive_and_methods(void **state) {
  struct fx *f = *state;
  const char *methods[] = {"GET", "POST", "DELETE", "GET"};
  for (size_t i = 0; i < 4; i++) {
    struct cr_remote_answer a = {0};
    assert_int_equal(
        cr_remote_call(f->c, methods[i], "/x", NULL, 0, &a, NULL, 0), 0);
    assert_int_equal(a.status, 200);
    assert_int_equal(cr_remote_answer_rc(&a, NULL, 0), 0);
    cr_remote_answer_clear(&a);
    assert_string_equal(cr_fake_http_request_at(f->http, i)->method,
                        methods[i]);
  }
  assert_int_equal(cr_fake_http_connections(f->http), 1);
}

static void test_no_token_no_header(void **state) {
  struct fx *f = *state;
  assert_int_equal(cr_remote_client_set_token(f->c, NULL), 0);
  struct cr_remote_answer a = {0};
  assert_int_equal(cr_remote_call(f->c, "GET", "/x", NULL, 0, &a, NULL, 0), 0);
  cr_remote_answer_clear(&a);
  assert_int_equal(cr_remote_client_set_token(f->c, "other-token"), 0);
  assert_int_equal(cr_remote_call(f->c, "GET", "/y", NULL, 0, &a, NULL, 0), 0);
  cr_remote_answer_clear(&a);
  assert_null(cr_fake_http_header(cr_fake_http_request_at(f->http, 0),
                                  "Authorization"));
  assert_string_equal(
      cr_fake_http_header(cr_fake_http_request_at(f->http, 1), "Authorization"),
      "Bearer other-token");
}

static void test_transport_error_until_deadline(void **state) {
  (void)state;
  char url[64];
  assert_int_equal(cr_fake_http_dead_url(url, sizeof url), 0);
  struct cr_remote_client_opts o = {.server = url, .token = TOKEN};
  cr_remote_client *c = NULL;
  assert_int_equal(cr_remote_client_new(&o, &c), 0);
  struct cr_remote_retry r = fast;
  r.deadline_ms = 1; /* long past: one attempt, then no more */
  struct cr_remote_answer a = {0};
  char err[256] = "";
  assert_int_equal(
      cr_remote_call_retry(c, &r, "POST", "/x", NULL, &a, err, sizeof err),
      CR_ETIMEDOUT);
  assert_int_equal(cr_remote_client_requests(c), 1);
  assert_true(err[0] != '\0');
  assert_null(strstr(err, TOKEN));
  assert_int_equal(cr_remote_call(c, "GET", "/x", NULL, 0, &a, NULL, 0),
                   CR_EHTTP);
  cr_remote_client_free(c);
}

static void test_stop_flag(void **state) {
  struct fx *f = *state;
  atomic_int stop = 1;
  struct cr_remote_retry r = fast;
  r.stop = &stop;
  struct cr_remote_answer a = {0};
  assert_int_equal(
      cr_remote_call_retry(f->c, &r, "GET", "/x", NULL, &a, NULL, 0),
      CR_ECANCELED);
  assert_int_equal(cr_fake_http_count(f->http), 0);
  atomic_store(&f->cancel, 1); /* the client's own flag */
  assert_int_equal(cr_remote_call(f->c, "GET", "/x", NULL, 0, &a, NULL, 0),
                   CR_ECANCELED);
}

static void test_bad_args(void **state) {
  (void)state;
  cr_remote_client *c = NULL;
  struct cr_remote_client_opts o = {0};
  assert_int_equal(cr_remote_client_new(&o, &c), CR_EINVAL);
  assert_int_equal(cr_remote_client_new(NULL, &c), CR_EINVAL);
  cr_remote_client_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_retries_503_then_200, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_stale_epoch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_revoked_is_eperm_without_token,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_4xx_is_einval, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_keep_alive_and_methods, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_token_no_header, setup, teardown),
      cmocka_unit_test(test_transport_error_until_deadline),
      cmocka_unit_test_setup_teardown(test_stop_flag, setup, teardown),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
