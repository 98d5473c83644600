/* test_remote_port.c: a run's writes as sequenced reports (core/remote/
 * remote_port) against a loopback fake of the server's report route
 * (docs/design.md "Reports, fencing and sequence numbers"): numbering from
 * 1, log and metrics carried by the next report, a report retried after a
 * lost answer keeping its number (the fake applies it once), 409
 * stale_epoch and 401 stopping the run, a renewal that does not block the
 * run while the server is away, the lease bound, and other 4xx. */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_http.h"
#include "remote/remote_port.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#define PATH "/v1/runners/r1/executions/42/reports"

enum mode {
  OK,
  FAIL_AFTER_APPLY,
  DELAY_AFTER_APPLY,
  STALE,
  REVOKED,
  DOWN,
  BAD
};

/* The fake server: applies each report whose seq is above the last applied
 * one (recording its type), answers {"results":[{"seq","version"}]}. */
struct srv {
  pthread_mutex_t mu;
  enum mode mode;
  int times; /* requests the mode lasts; then OK */
  int64_t seen[64], applied[64];
  char types[64][16];
  size_t n_seen, n_applied, n_requests;
  int64_t last_seq, version, epoch;
  json_t *last_body;
};

static void apply(struct srv *s, const json_t *reports, json_t *results) {
  size_t i;
  const json_t *r;
  json_array_foreach(reports, i, r) {
    int64_t seq = json_integer_value(json_object_get(r, "seq"));
    const char *type = json_string_value(json_object_get(r, "type"));
    if (s->n_seen < 64)
      s->seen[s->n_seen++] = seq;
    if (seq > s->last_seq && s->n_applied < 64) {
      s->last_seq = seq;
      if (strcmp(type, "checkpoint") == 0)
        s->version++;
      snprintf(s->types[s->n_applied], 16, "%s", type);
      s->applied[s->n_applied++] = seq;
    }
    json_array_append_new(
        results, json_pack("{s:I, s:I}", "seq", seq, "version", s->version));
  }
}

static void handler(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  struct srv *s = ud;
  pthread_mutex_lock(&s->mu);
  s->n_requests++;
  enum mode m = s->times > 0 ? s->mode : OK;
  if (s->times > 0)
    s->times--;
  json_t *body = json_loads(req->body, 0, NULL);
  json_decref(s->last_body);
  s->last_body = body;
  s->epoch = json_integer_value(json_object_get(body, "epoch"));
  if (strcmp(req->path, PATH) != 0 || strcmp(req->method, "POST") != 0) {
    resp->status = 404;
  } else if (m == STALE || m == REVOKED || m == DOWN || m == BAD) {
    resp->status = m == STALE     ? 409
                   : m == REVOKED ? 401
                   : m == DOWN    ? 503
                                  : 400;
    resp->body = m == STALE ? "{\"error\":{\"code\":\"stale_epoch\","
                              "\"message\":\"stale\"}}"
                            : "{\"error\":{\"code\":\"x\",\"message\":\"x\"}}";
  } else {
    json_t *results = json_array();
    apply(s, json_object_get(body, "reports"), results);
    char *t = json_dumps(results, JSON_COMPACT);
    cr_fake_http_set_body(resp, "{\"results\":%s}", t);
    free(t);
    json_decref(results);
    if (m == FAIL_AFTER_APPLY)
      resp->status = 503; /* applied, but the runner does not learn it */
    if (m == DELAY_AFTER_APPLY)
      resp->delay_ms = 700; /* past the client's timeout: answer lost */
  }
  pthread_mutex_unlock(&s->mu);
}

struct fx {
  struct srv srv;
  cr_fake_http *http;
  cr_remote_client *c;
  struct cr_remote_claim claim;
  cr_remote_port *p;
  const struct cr_exec_port *ops;
  atomic_int revoked;
};

static void fx_port(struct fx *f, int64_t renew_wait_ms) {
  struct cr_remote_port_opts o = {.client = f->c,
                                  .runner_id = "r1",
                                  .claim = &f->claim,
                                  .credentials = "{\"api_key\":\"k-secret\"}",
                                  .revoked = &f->revoked,
                                  .renew_wait_ms = renew_wait_ms,
                                  .retry_base_ms = 1,
                                  .retry_max_ms = 4};
  assert_int_equal(cr_remote_port_new(&o, &f->p), 0);
  f->ops = cr_remote_port_ops(f->p);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->srv.mu, NULL);
  assert_int_equal(cr_fake_http_start(handler, &f->srv, &f->http), 0);
  struct cr_remote_client_opts o = {.server = cr_fake_http_url(f->http),
                                    .token = "runner-token-xyz",
                                    .timeout_ms = 300};
  assert_int_equal(cr_remote_client_new(&o, &f->c), 0);
  f->claim = (struct cr_remote_claim){.execution_id = 42,
                                      .epoch = 7,
                                      .attempt = 2,
                                      .work_id = "w1",
                                      .lease_ms = 60000,
                                      .received_ms = cr__now_ms(),
                                      .state = "{\"cursor\":3}"};
  fx_port(f, 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  cr_remote_port_free(f->p);
  cr_remote_client_free(f->c);
  cr_fake_http_stop(f->http);
  json_decref(f->srv.last_body);
  pthread_mutex_destroy(&f->srv.mu);
  free(f);
  return 0;
}

static struct cr_exec_final final(int64_t records, int64_t checkpoints) {
  struct cr_exec_final fin = {.execution_id = 42,
                              .epoch = 7,
                              .work_id = "w1",
                              .attempt = 2,
                              .needs_executing = 0,
                              .one_time = 1,
                              .records = records,
                              .checkpoints = checkpoints,
                              .duration_ms = 15};
  return fin;
}

static void set_mode(struct fx *f, enum mode m, int times) {
  pthread_mutex_lock(&f->srv.mu);
  f->srv.mode = m;
  f->srv.times = times;
  pthread_mutex_unlock(&f->srv.mu);
}

static void test_load(void **state) {
  struct fx *f = *state;
  char *st = NULL, *cred = NULL;
  assert_int_equal(f->ops->load(f->ops->ud, NULL, &st, &cred), 0);
  assert_string_equal(st, "{\"cursor\":3}");
  assert_string_equal(cred, "{\"api_key\":\"k-secret\"}");
  cr__free(st);
  cr__secret_wipe_free(cred, strlen(cred));
  assert_int_equal(f->srv.n_requests, 0);
}

static void test_numbering_and_batching(void **state) {
  struct fx *f = *state;
  struct cr_exec_final fin = final(0, 0);
  assert_int_equal(cr_remote_port_next_seq(f->p), 1);
  fin.needs_executing = 1;
  assert_int_equal(f->ops->executing(f->ops->ud, &fin), 0);
  fin = final(10, 0);
  int64_t v = 0;
  const char *state_text = "{\"cursor\":13}";
  assert_int_equal(f->ops->checkpoint(f->ops->ud, &fin, 60000, state_text,
                                      strlen(state_text), 10, &v),
                   0);
  assert_int_equal(v, 1);
  const json_t *rep =
      json_array_get(json_object_get(f->srv.last_body, "reports"), 0);
  assert_string_equal(json_string_value(json_object_get(rep, "state")),
                      state_text);
  assert_int_equal(json_integer_value(json_object_get(rep, "records")), 10);
  f->ops->log(f->ops->ud, &fin, 1, "page 2 fetched");
  assert_int_equal(f->ops->metrics(f->ops->ud, &fin, 3, 1), 0);
  assert_int_equal(f->srv.n_requests, 2); /* queued, not sent */
  assert_int_equal(cr_remote_port_pending(f->p), 2);
  fin = final(10, 1);
  assert_int_equal(f->ops->completed(f->ops->ud, &fin), 0);
  assert_int_equal(f->srv.n_requests, 3);
  assert_int_equal(f->srv.n_applied, 5);
  const char *types[] = {"executing", "checkpoint", "log", "metrics",
                         "completed"};
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(f->srv.applied[i], (int64_t)i + 1);
    assert_string_equal(f->srv.types[i], types[i]);
  }
  assert_int_equal(f->srv.epoch, 7);
  const json_t *reps = json_object_get(f->srv.last_body, "reports");
  assert_int_equal(json_array_size(reps), 3);
  const json_t *log = json_array_get(reps, 0), *met = json_array_get(reps, 1),
               *done = json_array_get(reps, 2);
  assert_string_equal(json_string_value(json_object_get(log, "text")),
                      "page 2 fetched");
  assert_int_equal(json_integer_value(json_object_get(log, "level")), 1);
  assert_int_equal(json_integer_value(json_object_get(met, "requests")), 3);
  assert_int_equal(json_integer_value(json_object_get(met, "errors")), 1);
  assert_int_equal(json_integer_value(json_object_get(done, "checkpoints")), 1);
  assert_int_equal(json_integer_value(json_object_get(done, "duration_ms")),
                   15);
  assert_int_equal(json_integer_value(json_object_get(done, "attempt")), 2);
  assert_true(json_is_true(json_object_get(done, "one_time")));
  assert_true(json_is_false(json_object_get(done, "needs_executing")));
  assert_int_equal(cr_remote_port_pending(f->p), 0);
  assert_int_equal(cr_remote_port_next_seq(f->p), 6);
}

/* The first answer is lost (503 after applying, or too late): the retry
 * carries the same number and is applied once. */
static void check_retry_keeps_seq(struct fx *f, enum mode m) {
  set_mode(f, m, 1);
  struct cr_exec_final fin = final(4, 0);
  int64_t v = 0;
  assert_int_equal(f->ops->checkpoint(f->ops->ud, &fin, 60000, "{}", 2, 4, &v),
                   0);
  assert_int_equal(v, 1);
  assert_true(f->srv.n_seen >= 2);
  for (size_t i = 0; i < f->srv.n_seen; i++)
    assert_int_equal(f->srv.seen[i], 1);
  assert_int_equal(f->srv.n_applied, 1);
  assert_int_equal(f->ops->completed(f->ops->ud, &fin), 0);
  assert_int_equal(f->srv.n_applied, 2);
  assert_int_equal(f->srv.applied[1], 2);
}

static void test_retry_after_503_keeps_seq(void **state) {
  check_retry_keeps_seq(*state, FAIL_AFTER_APPLY);
}

static void test_lost_answer_keeps_seq(void **state) {
  check_retry_keeps_seq(*state, DELAY_AFTER_APPLY);
}

static void test_stale_epoch_stops(void **state) {
  struct fx *f = *state;
  set_mode(f, STALE, 1);
  struct cr_exec_final fin = final(0, 0);
  assert_int_equal(f->ops->executing(f->ops->ud, &fin), CR_ESTALE);
  assert_true(cr_remote_port_lost(f->p));
  assert_int_equal(f->ops->completed(f->ops->ud, &fin), CR_ESTALE);
  assert_int_equal(f->ops->metrics(f->ops->ud, &fin, 1, 0), CR_ESTALE);
  assert_int_equal(f->srv.n_requests, 1); /* nothing sent after */
  assert_int_equal(f->srv.n_applied, 0);
  assert_int_equal(atomic_load(&f->revoked), 0);
}

static void test_revoked_stops(void **state) {
  struct fx *f = *state;
  set_mode(f, REVOKED, 1);
  struct cr_exec_final fin = final(0, 0);
  assert_int_equal(f->ops->failed(f->ops->ud, &fin, "system", "boom"),
                   CR_ESTALE);
  assert_int_equal(atomic_load(&f->revoked), 1);
  assert_true(cr_remote_port_lost(f->p));
}

static void test_renew_does_not_block(void **state) {
  struct fx *f = *state;
  cr_remote_port_free(f->p);
  fx_port(f, 20);
  set_mode(f, DOWN, 1000000);
  struct cr_exec_final fin = final(0, 0);
  assert_int_equal(f->ops->renew(f->ops->ud, &fin, 60000), 0);
  assert_false(cr_remote_port_lost(f->p));
  assert_int_equal(cr_remote_port_pending(f->p), 1);
  assert_true(f->srv.n_requests >= 1);
  set_mode(f, OK, 0);
  assert_int_equal(
      f->ops->retry(f->ops->ud, &fin, 0, NULL, NULL, "runner stopped; retried"),
      0);
  assert_int_equal(f->srv.n_applied, 2);
  assert_string_equal(f->srv.types[0], "renew");
  assert_string_equal(f->srv.types[1], "retry");
  const json_t *r =
      json_array_get(json_object_get(f->srv.last_body, "reports"), 1);
  assert_int_equal(json_integer_value(json_object_get(r, "at")), 0);
  assert_true(json_is_null(json_object_get(r, "error_class")));
  assert_string_equal(json_string_value(json_object_get(r, "reason")),
                      "runner stopped; retried");
}

static void test_lease_bound(void **state) {
  struct fx *f = *state;
  cr_remote_port_free(f->p);
  f->claim.received_ms = cr__now_ms() - 2 * f->claim.lease_ms;
  fx_port(f, 0);
  set_mode(f, DOWN, 1000000);
  struct cr_exec_final fin = final(0, 0);
  assert_int_equal(f->ops->completed(f->ops->ud, &fin), CR_ESTALE);
  assert_int_equal(f->srv.n_requests, 1); /* tried once: the fence decides */
  assert_true(cr_remote_port_lost(f->p));
}

static void test_refused_report(void **state) {
  struct fx *f = *state;
  set_mode(f, BAD, 1);
  struct cr_exec_final fin = final(0, 0);
  int64_t v = 0;
  assert_int_equal(
      f->ops->checkpoint(f->ops->ud, &fin, 60000, "nope", 4, 0, &v), CR_EINVAL);
  assert_false(cr_remote_port_lost(f->p));
  assert_int_equal(cr_remote_port_pending(f->p), 0);
  assert_int_equal(f->ops->completed(f->ops->ud, &fin), 0);
  assert_int_equal(f->srv.applied[0], 2); /* numbers are not reused */
}

static void test_bad_args(void **state) {
  (void)state;
  cr_remote_port *p = NULL;
  struct cr_remote_port_opts o = {0};
  assert_int_equal(cr_remote_port_new(&o, &p), CR_EINVAL);
  assert_null(cr_remote_port_ops(NULL));
  cr_remote_port_free(NULL);
}

static void test_new_alloc_failures(void **state) {
  struct fx *f = *state;
  cr_test_alloc_install();
  int ok = 0;
  for (long n = 0; n < 50 && !ok; n++) {
    cr_remote_port *p = NULL;
    struct cr_remote_port_opts o = {
        .client = f->c, .runner_id = "r1", .claim = &f->claim};
    cr_test_alloc_fail_after(n);
    int rc = cr_remote_port_new(&o, &p);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    assert_true(rc == 0 || (rc == CR_ENOMEM && p == NULL));
    if (rc == 0)
      assert_int_equal(cr_remote_port_next_seq(p), 1);
    cr_remote_port_free(p);
    ok = rc == 0 && !failed;
  }
  assert_true(ok);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_load),
      T(test_numbering_and_batching),
      T(test_retry_after_503_keeps_seq),
      T(test_lost_answer_keeps_seq),
      T(test_stale_epoch_stops),
      T(test_revoked_stops),
      T(test_renew_does_not_block),
      T(test_lease_bound),
      T(test_refused_report),
      T(test_new_alloc_failures),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
