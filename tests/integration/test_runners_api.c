/* test_runners_api.c: the remote runners' wire protocol against a real
 * daemon with its REST API on loopback, the test acting as the runner with
 * libcurl: registration (bad and good tokens, fixed labels), the runner's
 * own token, check-in and the online view with its event, routing by labels
 * and providers (a labelled work waits with its reason and goes only to a
 * runner with the labels), long-poll claims woken by a new execution,
 * reports applied once per sequence number, the stale-epoch fence after a
 * lease expired, and revocation (401, executions released). */
#define _GNU_SOURCE
#include "api_fixture.h"
#include "testutil.h"

#include "store/claim_signal.h"
#include "store/sql/sql.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <setjmp.h>
#include <stddef.h>

#define TOKEN "ops-tok-Qp41zXw8Lm"
#define REG "reg-tok-Hh62Vb9sKq0aa"

struct fixture {
  struct cr_api_fixture api;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long ops(struct fixture *f, const char *method, const char *path,
                const char *body, json_t **out) {
  return cr_api_call(&f->api, TOKEN, method, path, body, NULL, out, NULL);
}

static long as_runner(struct fixture *f, const char *token, const char *method,
                      const char *path, const char *body, json_t **out) {
  return cr_api_call(&f->api, token, method, path, body, NULL, out, NULL);
}

#define N_MANY 16

/* The daemon with the work edge-sync and n_many more like it (many-00...). */
static int start(void **state, int n_many) {
  struct fixture *f = calloc(1, sizeof *f);
  char cfg[16384];
  int n =
      snprintf(cfg, sizeof cfg,
               "host:\n"
               "  data_dir: ./data\n"
               "  plugin_dirs: [\"%s\"]\n"
               "  health_check_interval: 1h\n"
               "  runner: { isolation: inline, lease: 1s, offline_after: 1h }\n"
               "  api_tokens: [{name: ops, token: \"" TOKEN "\", "
               "scopes: [read, write, admin]}]\n"
               "  runner_registration_tokens:\n"
               "    - { name: edge, token: \"" REG "\", labels: [dmz] }\n"
               "authorizations:\n"
               "  - { id: files, provider: filedrop, method: none }\n"
               "works:\n"
               "  - id: edge-sync\n"
               "    provider: filedrop\n"
               "    authorization: files\n"
               "    runner: { labels: [dmz, eu] }\n"
               "    config: { directory: /nonexistent/connrun-edge, streams: "
               "[{name: x, pattern: \"*.csv\"}] }\n",
               CR_PLUGIN_DIR);
  for (int i = 0; i < n_many; i++)
    n += snprintf(cfg + n, sizeof cfg - (size_t)n,
                  "  - { id: many-%02d, provider: filedrop, authorization: "
                  "files, runner: { labels: [dmz, eu] }, config: { directory: "
                  "/nonexistent/connrun-many, streams: [{name: x, pattern: "
                  "\"*.csv\"}] } }\n",
                  i);
  cr_api_fixture_start(&f->api, cfg);
  *state = f;
  return 0;
}

static int setup(void **state) { return start(state, 0); }
static int setup_many(void **state) { return start(state, N_MANY); }

static int teardown(void **state) {
  struct fixture *f = *state;
  cr_api_fixture_stop(&f->api);
  free(f);
  return 0;
}

/* Registers a runner with extra labels (JSON array text); fills id/token. */
static void reg(struct fixture *f, const char *labels, char id[64],
                char token[80]) {
  char body[256];
  snprintf(body, sizeof body,
           "{\"registration_token\": \"" REG "\", \"name\": \"edge-1\", "
           "\"labels\": %s, \"version\": \"1.0\"}",
           labels);
  json_t *out = NULL;
  assert_int_equal(
      as_runner(f, NULL, "POST", "/v1/runners/register", body, &out), 201);
  snprintf(id, 64, "%s", json_string_value(json_object_get(out, "runner_id")));
  snprintf(token, 80, "%s", json_string_value(json_object_get(out, "token")));
  assert_true(strlen(token) == 64);
  json_decref(out);
}

static void checkin(struct fixture *f, const char *id, const char *token) {
  char path[128];
  snprintf(path, sizeof path, "/v1/runners/%s/checkin", id);
  assert_int_equal(
      as_runner(f, token, "POST", path,
                "{\"providers\": [{\"name\": \"filedrop\", \"version\": "
                "\"1\"}], \"slots\": 2, \"slots_free\": 2}",
                NULL),
      200);
}

static int64_t run_now(struct fixture *f) {
  json_t *out = NULL;
  long st = ops(f, "POST", "/v1/works/edge-sync/runs", "{}", &out);
  assert_true(st == 200 || st == 201 || st == 202);
  json_t *id = json_object_get(out, "execution_id");
  if (id == NULL)
    id = json_object_get(out, "id");
  int64_t eid = json_integer_value(id);
  json_decref(out);
  assert_true(eid > 0);
  return eid;
}

static json_t *claim(struct fixture *f, const char *id, const char *token,
                     int wait_ms, long *status) {
  char path[128], body[160];
  snprintf(path, sizeof path, "/v1/runners/%s/claims", id);
  snprintf(body, sizeof body,
           "{\"providers\": [\"filedrop\"], \"slots\": 1, \"wait_ms\": %d}",
           wait_ms);
  json_t *out = NULL;
  *status = as_runner(f, token, "POST", path, body, &out);
  return out;
}

static long report(struct fixture *f, const char *id, const char *token,
                   int64_t eid, int64_t epoch, const char *reports,
                   json_t **out) {
  char path[160], body[2048];
  snprintf(path, sizeof path, "/v1/runners/%s/executions/%lld/reports", id,
           (long long)eid);
  snprintf(body, sizeof body, "{\"epoch\": %lld, \"reports\": [%s]}",
           (long long)epoch, reports);
  return as_runner(f, token, "POST", path, body, out);
}

static const char *exec_state(struct fixture *f, int64_t eid, json_t **view) {
  char path[64];
  snprintf(path, sizeof path, "/v1/executions/%lld", (long long)eid);
  assert_int_equal(ops(f, "GET", path, NULL, view), 200);
  return json_string_value(json_object_get(*view, "state"));
}

static void test_register_and_auth(void **state) {
  struct fixture *f = *state;
  json_t *out = NULL;
  assert_int_equal(as_runner(f, NULL, "POST", "/v1/runners/register",
                             "{\"registration_token\": \"nope-nope-nope-1\"}",
                             &out),
                   401);
  json_decref(out);
  char id[64], token[80];
  reg(f, "[\"eu\"]", id, token);
  char path[128];
  snprintf(path, sizeof path, "/v1/runners/%s/checkin", id);
  assert_int_equal(as_runner(f, TOKEN, "POST", path, "{}", NULL), 401);
  checkin(f, id, token);
  snprintf(path, sizeof path, "/v1/runners/%s", id);
  assert_int_equal(ops(f, "GET", path, NULL, &out), 200);
  assert_string_equal(json_string_value(json_object_get(out, "status")),
                      "online");
  json_t *labels = json_object_get(out, "labels");
  assert_int_equal(json_array_size(labels), 2); /* dmz (fixed) + eu */
  assert_null(json_object_get(out, "token"));
  json_decref(out);
  assert_int_equal(ops(f, "GET", "/v1/events?subject_type=runner", NULL, &out),
                   200);
  char *txt = json_dumps(out, 0);
  assert_non_null(strstr(txt, "checked_in"));
  assert_non_null(strstr(txt, "\"created\""));
  assert_null(strstr(txt, token));
  free(txt);
  json_decref(out);
}

struct poll_arg {
  struct fixture *f;
  char id[64], token[80];
  json_t *out;
  long status;
  int64_t took_ms;
};

static void *poll_thread(void *p) {
  struct poll_arg *a = p;
  int64_t t0 = now_ms();
  a->out = claim(a->f, a->id, a->token, 20000, &a->status);
  a->took_ms = now_ms() - t0;
  return NULL;
}

static void test_route_poll_report(void **state) {
  struct fixture *f = *state;
  char aid[64], atok[80], bid[64], btok[80];
  reg(f, "[\"eu\"]", aid, atok); /* labels dmz, eu */
  reg(f, "[]", bid, btok);       /* labels dmz only */
  checkin(f, bid, btok);
  int64_t eid = run_now(f);
  json_t *view = NULL;
  assert_string_equal(exec_state(f, eid, &view), "Created");
  const char *why = json_string_value(json_object_get(view, "waiting_reason"));
  assert_non_null(why);
  assert_non_null(strstr(why, "labels [dmz, eu] and provider filedrop"));
  json_decref(view);
  /* B lacks the label eu: nothing for it. */
  long st = 0;
  json_t *out = claim(f, bid, btok, 0, &st);
  assert_int_equal(st, 200);
  assert_int_equal(json_array_size(json_object_get(out, "claims")), 0);
  json_decref(out);
  /* A takes it at once. */
  checkin(f, aid, atok);
  out = claim(f, aid, atok, 0, &st);
  assert_int_equal(st, 200);
  json_t *c = json_array_get(json_object_get(out, "claims"), 0);
  assert_non_null(c);
  assert_int_equal(json_integer_value(json_object_get(c, "execution_id")), eid);
  int64_t epoch = json_integer_value(json_object_get(c, "epoch"));
  json_t *cfg = json_object_get(c, "config");
  assert_non_null(json_array_get(json_object_get(cfg, "works"), 0));
  assert_non_null(json_array_get(json_object_get(cfg, "authorizations"), 0));
  json_decref(out);
  /* Reports: executing, checkpoint; the checkpoint retried is applied once. */
  assert_int_equal(report(f, aid, atok, eid, epoch,
                          "{\"seq\": 1, \"type\": \"executing\"}, {\"seq\": 2, "
                          "\"type\": \"checkpoint\", \"state\": "
                          "\"{\\\"cursor\\\": 7}\", \"records\": 3}",
                          &out),
                   200);
  int64_t v1 = json_integer_value(json_object_get(
      json_array_get(json_object_get(out, "results"), 1), "version"));
  assert_true(v1 >= 1);
  json_decref(out);
  assert_int_equal(report(f, aid, atok, eid, epoch,
                          "{\"seq\": 2, \"type\": \"checkpoint\", \"state\": "
                          "\"{\\\"cursor\\\": 7}\", \"records\": 3}",
                          &out),
                   200);
  assert_int_equal(
      json_integer_value(json_object_get(
          json_array_get(json_object_get(out, "results"), 0), "version")),
      v1);
  json_decref(out);
  /* Another runner's token is refused; a wrong epoch is stale. */
  assert_int_equal(report(f, aid, btok, eid, epoch,
                          "{\"seq\": 3, \"type\": \"renew\"}", NULL),
                   401);
  assert_int_equal(report(f, aid, atok, eid, epoch + 1,
                          "{\"seq\": 3, \"type\": \"renew\"}", &out),
                   409);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(out, "error"), "code")),
      "stale_epoch");
  json_decref(out);
  assert_int_equal(report(f, aid, atok, eid, epoch,
                          "{\"seq\": 3, \"type\": \"log\", \"level\": 2, "
                          "\"text\": \"page 1 done\"}, {\"seq\": 4, \"type\": "
                          "\"completed\", \"records\": 3, \"checkpoints\": 1}",
                          NULL),
                   200);
  /* The completion retried after a lost answer: still 200, applied once. */
  assert_int_equal(report(f, aid, atok, eid, epoch,
                          "{\"seq\": 4, \"type\": \"completed\"}", NULL),
                   200);
  assert_string_equal(exec_state(f, eid, &view), "Completed");
  json_t *log = json_object_get(view, "log");
  assert_int_equal(json_array_size(log), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(log, 0), "text")),
      "page 1 done");
  json_decref(view);
  /* A long poll waiting is woken by a new execution. */
  struct poll_arg pa = {.f = f};
  snprintf(pa.id, sizeof pa.id, "%s", aid);
  snprintf(pa.token, sizeof pa.token, "%s", atok);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, poll_thread, &pa), 0);
  usleep(300 * 1000);
  int64_t eid2 = run_now(f);
  pthread_join(t, NULL);
  assert_int_equal(pa.status, 200);
  c = json_array_get(json_object_get(pa.out, "claims"), 0);
  assert_non_null(c);
  assert_int_equal(json_integer_value(json_object_get(c, "execution_id")),
                   eid2);
  assert_true(pa.took_ms < 15000); /* woken, not answered at its deadline */
  int64_t epoch2 = json_integer_value(json_object_get(c, "epoch"));
  json_decref(pa.out);
  /* The lease (1 s) runs out: the execution comes back as a new attempt and
   * the old epoch is fenced off. */
  const char *s = NULL;
  for (int i = 0; i < 100; i++) {
    s = exec_state(f, eid2, &view);
    if (strcmp(s, "Created") == 0)
      break;
    json_decref(view);
    view = NULL;
    usleep(100 * 1000);
  }
  assert_string_equal(s, "Created");
  assert_int_equal(json_integer_value(json_object_get(view, "attempt")), 2);
  json_decref(view);
  assert_int_equal(report(f, aid, atok, eid2, epoch2,
                          "{\"seq\": 1, \"type\": \"executing\"}", NULL),
                   409);
  /* Revocation: A claims again, is revoked, the execution goes back and A's
   * next call is refused. */
  out = claim(f, aid, atok, 0, &st);
  assert_int_equal(json_array_size(json_object_get(out, "claims")), 1);
  json_decref(out);
  char path[128];
  snprintf(path, sizeof path, "/v1/runners/%s", aid);
  assert_int_equal(ops(f, "DELETE", path, NULL, &out), 200);
  assert_int_equal(json_integer_value(json_object_get(out, "released")), 1);
  assert_string_equal(json_string_value(json_object_get(out, "status")),
                      "revoked");
  json_decref(out);
  assert_string_equal(exec_state(f, eid2, &view), "Created");
  json_decref(view);
  out = claim(f, aid, atok, 0, &st);
  assert_int_equal(st, 401);
  json_decref(out);
}

/* A claim request retried with its claim_id (its answer was lost) gets the
 * same executions under the same epoch, and leases nothing more. */
static void test_claim_retry_replays(void **state) {
  struct fixture *f = *state;
  char id[64], token[80], path[128];
  reg(f, "[\"eu\"]", id, token);
  checkin(f, id, token);
  int64_t eid = run_now(f);
  snprintf(path, sizeof path, "/v1/runners/%s/claims", id);
  const char *body = "{\"providers\": [\"filedrop\"], \"slots\": 2, "
                     "\"claim_id\": \"c0ffee\"}";
  json_t *first = NULL, *again = NULL;
  assert_int_equal(as_runner(f, token, "POST", path, body, &first), 200);
  assert_int_equal(as_runner(f, token, "POST", path, body, &again), 200);
  json_t *c1 = json_array_get(json_object_get(first, "claims"), 0);
  json_t *c2 = json_array_get(json_object_get(again, "claims"), 0);
  assert_non_null(c1);
  assert_non_null(c2);
  assert_int_equal(json_integer_value(json_object_get(c2, "execution_id")),
                   eid);
  assert_int_equal(json_integer_value(json_object_get(c2, "epoch")),
                   json_integer_value(json_object_get(c1, "epoch")));
  assert_int_equal(json_array_size(json_object_get(again, "claims")), 1);
  json_decref(first);
  json_decref(again);
  /* One claim in the execution's history. */
  json_t *view = NULL;
  exec_state(f, eid, &view);
  size_t claims = 0, i;
  json_t *t;
  json_array_foreach(json_object_get(view, "transitions"), i, t) claims +=
      strcmp(json_string_value(json_object_get(t, "to")), "Pending") == 0;
  assert_int_equal(claims, 1);
  json_decref(view);
  /* A new request id claims anew: nothing is left. */
  assert_int_equal(as_runner(f, token, "POST", path,
                             "{\"providers\": [\"filedrop\"], \"slots\": 2, "
                             "\"claim_id\": \"beef\"}",
                             &again),
                   200);
  assert_int_equal(json_array_size(json_object_get(again, "claims")), 0);
  json_decref(again);
}

/* A claim request is a check-in, written in the claim's own transaction:
 * with nothing to claim, and with no free slot, the runner's last check-in
 * still moves. */
static void test_claim_checks_in(void **state) {
  struct fixture *f = *state;
  char id[64], token[80], path[128];
  reg(f, "[\"eu\"]", id, token);
  snprintf(path, sizeof path, "/v1/runners/%s", id);
  const char *bodies[] = {
      "{\"providers\": [\"filedrop\"], \"slots\": 1, \"wait_ms\": 0}",
      "{\"providers\": [\"filedrop\"], \"slots\": 0}"};
  for (size_t i = 0; i < 2; i++) {
    json_t *before = NULL, *after = NULL, *out = NULL;
    assert_int_equal(ops(f, "GET", path, NULL, &before), 200);
    char last[64];
    snprintf(last, sizeof last, "%s",
             json_string_value(json_object_get(before, "last_check_in")));
    usleep(30 * 1000);
    char cpath[160];
    snprintf(cpath, sizeof cpath, "%s/claims", path);
    assert_int_equal(as_runner(f, token, "POST", cpath, bodies[i], &out), 200);
    assert_int_equal(json_array_size(json_object_get(out, "claims")), 0);
    assert_int_equal(ops(f, "GET", path, NULL, &after), 200);
    const char *now =
        json_string_value(json_object_get(after, "last_check_in"));
    assert_non_null(now);
    assert_true(strcmp(now, last) > 0);
    assert_string_equal(json_string_value(json_object_get(after, "status")),
                        "online");
    json_decref(before);
    json_decref(after);
    json_decref(out);
  }
}

/* ---- Idle wake-ups -------------------------------------------------------
 * A long poll woken with nothing it could claim (another runner won, or the
 * signal was for other work) waits again without a write transaction: it
 * reads first (cr_ctl_runner_claim_worth). */

static void *idle_poll_thread(void *p) {
  struct poll_arg *a = p;
  a->out = claim(a->f, a->id, a->token, 2000, &a->status);
  return NULL;
}

static void test_idle_wakeups_write_nothing(void **state) {
  struct fixture *f = *state;
  struct poll_arg a = {.f = f};
  reg(f, "[\"eu\"]", a.id, a.token);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, idle_poll_thread, &a), 0);
  usleep(300 * 1000); /* checked in (a write), then waiting */
  /* what the daemon commits anyway over 20 x 20 ms (its own ticks), then
   * the same time with 20 wake-ups */
  uint64_t c0 = cr__sql_sqlite_commits();
  for (int i = 0; i < 20; i++)
    usleep(20 * 1000);
  uint64_t c1 = cr__sql_sqlite_commits();
  for (int i = 0; i < 20; i++) {
    cr_claim_signal(); /* wakes the poll: nothing is claimable */
    usleep(20 * 1000);
  }
  uint64_t c2 = cr__sql_sqlite_commits();
  pthread_join(t, NULL);
  assert_int_equal(a.status, 200);
  assert_int_equal(json_array_size(json_object_get(a.out, "claims")), 0);
  json_decref(a.out);
  /* Each poll attempt committing would add 20; the daemon's own runner,
   * woken by the same signals, tries a claim on some of them (5 here). */
  if (c2 - c1 >= c1 - c0 + 10)
    fail_msg("%llu write transactions for 20 idle wake-ups, %llu without",
             (unsigned long long)(c2 - c1), (unsigned long long)(c1 - c0));
}

/* ---- Group commit -------------------------------------------------------
 * Reports of many executions arrive at once and are committed in groups
 * (api_batch.c), each request in a savepoint of its own: a retried report
 * (nothing to write), a stale epoch (409, undone) and completions in the same
 * group each get their own answer, and every completion is applied once. */

struct rep_arg {
  struct fixture *f;
  const char *id, *token;
  int64_t eid, epoch;
  const char *reports;
  long status;
};

static void *rep_thread(void *p) {
  struct rep_arg *a = p;
  a->status = report(a->f, a->id, a->token, a->eid, a->epoch, a->reports, NULL);
  return NULL;
}

/* Sends the n reports of args at once (one thread each) and waits. */
static void send_all(struct rep_arg *args, size_t n) {
  pthread_t t[3 * N_MANY];
  assert_true(n <= 3 * N_MANY);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(pthread_create(&t[i], NULL, rep_thread, &args[i]), 0);
  for (size_t i = 0; i < n; i++)
    pthread_join(t[i], NULL);
}

static void test_reports_in_group_commits(void **state) {
  struct fixture *f = *state;
  char id[64], token[80], path[160];
  reg(f, "[\"eu\"]", id, token);
  checkin(f, id, token);
  for (int i = 0; i < N_MANY; i++) {
    snprintf(path, sizeof path, "/v1/works/many-%02d/runs", i);
    long st = ops(f, "POST", path, "{}", NULL);
    assert_true(st == 200 || st == 201 || st == 202);
  }
  char body[160];
  snprintf(body, sizeof body,
           "{\"providers\": [\"filedrop\"], \"slots\": %d, \"wait_ms\": 0}",
           N_MANY);
  snprintf(path, sizeof path, "/v1/runners/%s/claims", id);
  json_t *out = NULL;
  assert_int_equal(as_runner(f, token, "POST", path, body, &out), 200);
  json_t *claims = json_object_get(out, "claims");
  assert_int_equal(json_array_size(claims), N_MANY);
  struct rep_arg args[3 * N_MANY];
  for (int i = 0; i < N_MANY; i++) {
    json_t *c = json_array_get(claims, (size_t)i);
    args[i] = (struct rep_arg){
        .f = f,
        .id = id,
        .token = token,
        .eid = json_integer_value(json_object_get(c, "execution_id")),
        .epoch = json_integer_value(json_object_get(c, "epoch")),
        .reports = "{\"seq\": 1, \"type\": \"executing\"}"};
  }
  json_decref(out);
  send_all(args, N_MANY);
  for (int i = 0; i < N_MANY; i++)
    assert_int_equal(args[i].status, 200);
  /* At once: each execution's first report again (a retry), its
   * completion, and for half of them a report under a stale epoch. */
  size_t n = 0;
  for (int i = 0; i < N_MANY; i++) {
    struct rep_arg a = args[i];
    args[N_MANY + n++] = (struct rep_arg){
        .f = f,
        .id = id,
        .token = token,
        .eid = a.eid,
        .epoch = a.epoch,
        .reports = "{\"seq\": 2, \"type\": \"completed\", \"records\": 0, "
                   "\"checkpoints\": 0}"};
    if (i % 2 == 0)
      args[N_MANY + n++] =
          (struct rep_arg){.f = f,
                           .id = id,
                           .token = token,
                           .eid = a.eid,
                           .epoch = a.epoch + 1,
                           .reports = "{\"seq\": 9, \"type\": \"renew\"}"};
  }
  send_all(args, N_MANY + n);
  for (size_t i = 0; i < N_MANY + n; i++) {
    int stale = strstr(args[i].reports, "renew") != NULL;
    assert_int_equal(args[i].status, stale ? 409 : 200);
  }
  for (int i = 0; i < N_MANY; i++) {
    json_t *view = NULL;
    assert_string_equal(exec_state(f, args[i].eid, &view), "Completed");
    json_decref(view);
    /* applied once: the completion retried is a duplicate */
    assert_int_equal(report(f, id, token, args[i].eid, args[i].epoch,
                            "{\"seq\": 2, \"type\": \"completed\"}", &out),
                     200);
    json_t *r0 = json_array_get(json_object_get(out, "results"), 0);
    assert_true(json_is_true(json_object_get(r0, "ok")) ||
                json_is_true(json_object_get(r0, "duplicate")));
    json_decref(out);
  }
  json_t *events = NULL;
  assert_int_equal(ops(f, "GET",
                       "/v1/events?subject_type=work&verb=synccomplete&"
                       "limit=100",
                       NULL, &events),
                   200);
  assert_int_equal(json_array_size(json_object_get(events, "items")), N_MANY);
  json_decref(events);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_register_and_auth, setup, teardown),
      cmocka_unit_test_setup_teardown(test_route_poll_report, setup, teardown),
      cmocka_unit_test_setup_teardown(test_claim_checks_in, setup, teardown),
      cmocka_unit_test_setup_teardown(test_idle_wakeups_write_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_claim_retry_replays, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reports_in_group_commits, setup_many,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
