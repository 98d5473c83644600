/* test_remote_host.c: the runner host (core/remote/remote_host) end to end
 * against a loopback fake of the server's runner routes, with the real
 * "behave" test plugin in `connrun worker` processes: registration and the
 * 0600 identity file, check-in with the providers, long-poll claims, a
 * claimed execution run to completion (records in the runner's data dir,
 * the claim's state honoured, reports numbered 1..n under the claim's
 * epoch), restart with the saved identity, re-registration after a 401, a
 * claim whose configuration lacks its work (failed, class config), and
 * SIGTERM-style stop with a grace period (retry "runner stopped; retried").
 * The fake follows docs/design.md "Remote runners" (the wire protocol). */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_http.h"
#include "plugin/plugin_host.h"
#include "remote/remote_host.h"
#include "util/error.h"

#define REG "reg-token-0123456789"
#define TOK1 "runner-secret-aaaaaaaa"
#define TOK2 "runner-secret-bbbbbbbb"

struct srv {
  pthread_mutex_t mu;
  int registrations;
  int refuse_token1; /* 401 to TOK1 (revoked identity) */
  json_t *claims;    /* claims still to hand out (array) */
  json_t *register_body, *checkin_body, *claim_body;
  json_t *reports; /* every report received, in order */
  int64_t epochs_bad;
  int64_t version;
  int checkins, claim_calls;
  int bad_auth;
};

static int authorized(struct srv *s, const struct cr_fake_http_request *req) {
  const char *a = cr_fake_http_header(req, "Authorization");
  if (a == NULL)
    return 0;
  if (s->registrations > 1 || (s->registrations == 1 && !s->refuse_token1))
    return strcmp(a, s->registrations > 1 ? "Bearer " TOK2 : "Bearer " TOK1) ==
           0;
  return !s->refuse_token1 && strcmp(a, "Bearer " TOK1) == 0;
}

static void keep(json_t **slot, json_t *body) {
  json_decref(*slot);
  *slot = json_incref(body);
}

static void on_register(struct srv *s, json_t *body,
                        struct cr_fake_http_response *resp) {
  keep(&s->register_body, body);
  const char *t =
      json_string_value(json_object_get(body, "registration_token"));
  if (t == NULL || strcmp(t, REG) != 0) {
    resp->status = 401;
    resp->body = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad "
                 "registration token\"}}";
    return;
  }
  s->registrations++;
  resp->status = 201;
  cr_fake_http_set_body(
      resp,
      "{\"runner_id\":\"r-1\",\"token\":\"%s\",\"labels\":[\"dmz\"],"
      "\"lease_ms\":60000}",
      s->registrations > 1 ? TOK2 : TOK1);
}

static void on_reports(struct srv *s, json_t *body,
                       struct cr_fake_http_response *resp) {
  if (json_integer_value(json_object_get(body, "epoch")) != 3)
    s->epochs_bad++;
  json_t *results = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(body, "reports"), i, r) {
    json_array_append(s->reports, r);
    if (strcmp(json_string_value(json_object_get(r, "type")), "checkpoint") ==
        0)
      s->version++;
    json_array_append_new(
        results, json_pack("{s:O, s:I}", "seq", json_object_get(r, "seq"),
                           "version", (json_int_t)s->version));
  }
  char *t = json_dumps(results, JSON_COMPACT);
  cr_fake_http_set_body(resp, "{\"results\":%s}", t);
  free(t);
  json_decref(results);
}

static void on_claims(struct srv *s, json_t *body,
                      struct cr_fake_http_response *resp) {
  keep(&s->claim_body, body);
  s->claim_calls++;
  json_t *out = json_array();
  if (json_array_size(s->claims) > 0) {
    json_array_append(out, json_array_get(s->claims, 0));
    json_array_remove(s->claims, 0);
  } else {
    resp->delay_ms = 50; /* a short long poll */
  }
  char *t = json_dumps(out, JSON_COMPACT);
  cr_fake_http_set_body(resp, "{\"claims\":%s}", t);
  free(t);
  json_decref(out);
}

static void handler(void *ud, const struct cr_fake_http_request *req,
                    struct cr_fake_http_response *resp) {
  struct srv *s = ud;
  pthread_mutex_lock(&s->mu);
  json_t *body = json_loads(req->body, 0, NULL);
  if (strcmp(req->path, "/v1/runners/register") == 0) {
    on_register(s, body, resp);
  } else if (!authorized(s, req)) {
    s->bad_auth++;
    resp->status = 401;
    resp->body = "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no\"}}";
  } else if (strcmp(req->path, "/v1/runners/r-1/checkin") == 0) {
    keep(&s->checkin_body, body);
    s->checkins++;
    resp->body = "{\"offline_after_ms\":90000}";
  } else if (strcmp(req->path, "/v1/runners/r-1/claims") == 0) {
    on_claims(s, body, resp);
  } else if (strncmp(req->path, "/v1/runners/r-1/executions/", 27) == 0) {
    on_reports(s, body, resp);
  } else {
    resp->status = 404;
  }
  json_decref(body);
  pthread_mutex_unlock(&s->mu);
}

/* ---- Fixture ------------------------------------------------------------ */

struct fx {
  struct srv srv;
  cr_fake_http *http;
  cr_plugin_host *plugins;
  char *dir;
  char logs[32768];
  pthread_mutex_t log_mu;
  cr_remote_host *h;
  pthread_t thread;
  int rc;
};

static void collect(void *ud, int level, const char *msg) {
  struct fx *f = ud;
  (void)level;
  pthread_mutex_lock(&f->log_mu);
  size_t n = strlen(f->logs);
  snprintf(f->logs + n, sizeof f->logs - n, "%s\n", msg);
  pthread_mutex_unlock(&f->log_mu);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->srv.mu, NULL);
  pthread_mutex_init(&f->log_mu, NULL);
  f->srv.claims = json_array();
  f->srv.reports = json_array();
  assert_int_equal(cr_fake_http_start(handler, &f->srv, &f->http), 0);
  assert_int_equal(cr_plugin_host_new(NULL, &f->plugins), 0);
  char err[512] = "";
  char so[1024];
  snprintf(so, sizeof so, "%s/behave.so", CR_TEST_PLUGIN_DIR);
  assert_int_equal(cr_plugin_host_load_file(f->plugins, so, err, sizeof err),
                   0);
  f->dir = cr_test_mkdtemp("rhost");
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  cr_fake_http_stop(f->http);
  cr_plugin_host_free(f->plugins);
  json_decref(f->srv.claims);
  json_decref(f->srv.reports);
  json_decref(f->srv.register_body);
  json_decref(f->srv.checkin_body);
  json_decref(f->srv.claim_body);
  assert_null(strstr(f->logs, TOK1));
  assert_null(strstr(f->logs, TOK2));
  assert_null(strstr(f->logs, REG));
  assert_null(strstr(f->logs, "k-secret"));
  cr_test_rmtree(f->dir);
  free(f->dir);
  pthread_mutex_destroy(&f->srv.mu);
  pthread_mutex_destroy(&f->log_mu);
  free(f);
  return 0;
}

static void *host_main(void *arg) {
  struct fx *f = arg;
  f->rc = cr_remote_host_run(f->h);
  return NULL;
}

static void start_host(struct fx *f, const char *reg, int64_t grace_ms) {
  const char *labels[] = {"dmz"};
  char data[1100];
  snprintf(data, sizeof data, "%s/data", f->dir);
  struct cr_remote_host_opts o = {.server = cr_fake_http_url(f->http),
                                  .registration_token = reg,
                                  .name = "test-runner",
                                  .labels = labels,
                                  .n_labels = 1,
                                  .slots = 2,
                                  .plugins = f->plugins,
                                  .worker_exe = CR_CONNRUN_BIN,
                                  .data_dir = data,
                                  .grace_ms = grace_ms,
                                  .wait_ms = 200,
                                  .log = collect,
                                  .log_ud = f,
                                  .log_min_level = CR_LOG_DEBUG};
  assert_int_equal(cr_remote_host_new(&o, &f->h), 0);
  assert_int_equal(pthread_create(&f->thread, NULL, host_main, f), 0);
}

static int stop_host(struct fx *f) {
  cr_remote_host_stop(f->h);
  pthread_join(f->thread, NULL);
  cr_remote_host_free(f->h);
  f->h = NULL;
  return f->rc;
}

/* Waits (bounded) until a report of type arrived; returns its index. */
static size_t wait_report(struct fx *f, const char *type) {
  for (int i = 0; i < 6000; i++) {
    pthread_mutex_lock(&f->srv.mu);
    size_t n = json_array_size(f->srv.reports);
    for (size_t k = 0; k < n; k++) {
      const char *t = json_string_value(
          json_object_get(json_array_get(f->srv.reports, k), "type"));
      if (strcmp(t, type) == 0) {
        pthread_mutex_unlock(&f->srv.mu);
        return k;
      }
    }
    pthread_mutex_unlock(&f->srv.mu);
    usleep(10000);
  }
  fail_msg("no %s report; log:\n%s", type, f->logs);
  return 0;
}

/* Waits (bounded) until the host checked in n times. */
static void wait_checkins(struct fx *f, int n) {
  for (int i = 0; i < 3000; i++) {
    pthread_mutex_lock(&f->srv.mu);
    int c = f->srv.checkins + f->srv.claim_calls;
    pthread_mutex_unlock(&f->srv.mu);
    if (c >= n)
      return;
    usleep(10000);
  }
  fail_msg("no check-in; log:\n%s", f->logs);
}

static void add_claim(struct fx *f, const char *work_in_config,
                      const char *work_config) {
  char cfg[1024];
  snprintf(cfg, sizeof cfg,
           "{\"authorizations\":[{\"id\":\"b\",\"provider\":\"behave\","
           "\"method\":\"none\",\"credentials\":{\"api_key\":\"k-secret\"}}],"
           "\"works\":[{\"id\":\"%s\",\"provider\":\"behave\","
           "\"authorization\":\"b\",\"config\":%s}]}",
           work_in_config, work_config);
  json_t *c =
      json_pack("{s:i, s:i, s:s, s:i, s:i, s:I, s:s, s:o}", "execution_id", 5,
                "attempt", 1, "work_id", "w1", "epoch", 3, "lease_ms", 60000,
                "lease_expires_at", (json_int_t)0, "state", "{\"next\":100}",
                "config", json_loads(cfg, 0, NULL));
  assert_non_null(c);
  pthread_mutex_lock(&f->srv.mu);
  json_array_append_new(f->srv.claims, c);
  pthread_mutex_unlock(&f->srv.mu);
}

static const char *rtype(struct fx *f, size_t i) {
  return json_string_value(
      json_object_get(json_array_get(f->srv.reports, i), "type"));
}

/* ---- Tests -------------------------------------------------------------- */

static void test_register_claim_run(void **state) {
  struct fx *f = *state;
  add_claim(f, "w1", "{\"mode\":\"emit\",\"count\":5,\"checkpoint_every\":2}");
  start_host(f, REG, 0);
  wait_report(f, "completed");
  assert_int_equal(stop_host(f), 0);

  /* registration and identity */
  const json_t *rb = f->srv.register_body;
  assert_string_equal(json_string_value(json_object_get(rb, "name")),
                      "test-runner");
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(rb, "labels"), 0)),
      "dmz");
  assert_non_null(json_string_value(json_object_get(rb, "version")));
  char *path = cr_test_join(f->dir, "data/runner.json");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  json_t *id = json_load_file(path, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(id, "runner_id")),
                      "r-1");
  assert_string_equal(json_string_value(json_object_get(id, "token")), TOK1);
  json_decref(id);
  free(path);

  /* check-in and claims */
  const json_t *cb = f->srv.checkin_body;
  const json_t *prov = json_array_get(json_object_get(cb, "providers"), 0);
  assert_string_equal(json_string_value(json_object_get(prov, "name")),
                      "behave");
  assert_non_null(json_string_value(json_object_get(prov, "version")));
  assert_int_equal(json_integer_value(json_object_get(cb, "slots")), 2);
  const json_t *clb = f->srv.claim_body;
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(clb, "providers"), 0)),
      "behave");
  assert_int_equal(json_integer_value(json_object_get(clb, "wait_ms")), 200);
  assert_true(json_integer_value(json_object_get(clb, "slots")) >= 1);

  /* reports: executing, checkpoints, completed, numbered 1..n */
  size_t n = json_array_size(f->srv.reports);
  assert_true(n >= 4);
  assert_string_equal(rtype(f, 0), "executing");
  assert_string_equal(rtype(f, n - 1), "completed");
  int ckpts = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *r = json_array_get(f->srv.reports, i);
    assert_int_equal(json_integer_value(json_object_get(r, "seq")),
                     (json_int_t)i + 1);
    assert_int_equal(json_integer_value(json_object_get(r, "attempt")), 1);
    ckpts += strcmp(rtype(f, i), "checkpoint") == 0;
  }
  assert_int_equal(ckpts, 3); /* after 2, 4 and at the end */
  const json_t *done = json_array_get(f->srv.reports, n - 1);
  assert_int_equal(json_integer_value(json_object_get(done, "records")), 5);
  assert_int_equal(json_integer_value(json_object_get(done, "checkpoints")), 3);
  assert_int_equal(f->srv.epochs_bad, 0);

  /* records stay on the runner, from the claim's state on */
  char *out = cr_test_join(f->dir, "data/out/w1/items.jsonl");
  char *text = cr_test_read_file(out);
  assert_non_null(text);
  assert_non_null(strstr(text, "{\"id\":100,"));
  assert_non_null(strstr(text, "{\"id\":104,"));
  assert_null(strstr(text, "{\"id\":105,"));
  free(text);
  free(out);

  /* a restart uses the saved identity: no registration, no token needed */
  start_host(f, NULL, 0);
  wait_checkins(f, f->srv.checkins + f->srv.claim_calls + 2);
  assert_int_equal(stop_host(f), 0);
  assert_int_equal(f->srv.registrations, 1);
  assert_int_equal(f->srv.bad_auth, 0);
}

static void test_revoked_identity(void **state) {
  struct fx *f = *state;
  start_host(f, REG, 0);
  wait_checkins(f, 1);
  assert_int_equal(stop_host(f), 0);
  f->srv.refuse_token1 = 1; /* the server forgot / revoked r-1 */
  start_host(f, NULL, 0);   /* no registration token: refused */
  pthread_join(f->thread, NULL);
  assert_int_equal(f->rc, CR_EPERM);
  cr_remote_host_free(f->h);
  assert_non_null(strstr(f->logs, "revoked"));
  int before = f->srv.checkins;
  start_host(f, REG, 0); /* with one: registers again */
  wait_checkins(f, before + 3);
  assert_int_equal(stop_host(f), 0);
  assert_int_equal(f->srv.registrations, 2);
  char *path = cr_test_join(f->dir, "data/runner.json");
  char *text = cr_test_read_file(path);
  assert_non_null(strstr(text, TOK2));
  free(text);
  free(path);
}

static void test_claim_without_its_work_fails(void **state) {
  struct fx *f = *state;
  add_claim(f, "other", "{}");
  start_host(f, REG, 0);
  size_t i = wait_report(f, "failed");
  assert_int_equal(stop_host(f), 0);
  const json_t *r = json_array_get(f->srv.reports, i);
  assert_string_equal(json_string_value(json_object_get(r, "error_class")),
                      "config");
  assert_non_null(strstr(json_string_value(json_object_get(r, "error")),
                         "not in the claim"));
  assert_int_equal(json_integer_value(json_object_get(r, "seq")), 1);
}

static void test_stop_after_grace_releases(void **state) {
  struct fx *f = *state;
  add_claim(f, "w1", "{\"mode\":\"emit\",\"count\":1000000,\"delay_us\":2000}");
  start_host(f, REG, 200);
  wait_report(f, "executing");
  assert_int_equal(stop_host(f), 0);
  size_t n = json_array_size(f->srv.reports);
  const json_t *last = json_array_get(f->srv.reports, n - 1);
  assert_string_equal(rtype(f, n - 1), "retry");
  assert_int_equal(json_integer_value(json_object_get(last, "at")), 0);
  assert_string_equal(json_string_value(json_object_get(last, "reason")),
                      "runner stopped; retried");
  assert_int_equal(json_integer_value(json_object_get(last, "seq")),
                   (json_int_t)n);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_register_claim_run),
      T(test_revoked_identity),
      T(test_claim_without_its_work_fails),
      T(test_stop_after_grace_releases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
