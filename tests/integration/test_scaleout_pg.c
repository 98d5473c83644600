/* test_scaleout_pg.c: several `connrun serve` instances on one private
 * PostgreSQL server (tests/util/pgserver.h) with remote runners, all real
 * processes on 127.0.0.1.
 *   - chaos: 3 instances and 4 `connrun runner` hosts (runner i talks to
 *     instance i % 3) while works sync and events flow to a loopback
 *     receiver; in a bounded loop, an instance or a runner is killed with
 *     SIGKILL and started again. Afterwards: every execution ends
 *     Completed exactly once with legal transitions and never two runners
 *     at once; each work's checkpoints never go backwards; every record
 *     below the last checkpoint is in some runner's destination; every
 *     event reached the receiver at least once, first seen in per-subject
 *     order; each duty's claims have increasing epochs.
 *   - the database restarted under load: the instances and runners carry
 *     on, every execution completes, and no event acknowledged before the
 *     restart is lost.
 * Every wait is bounded; nothing asserts on durations. */
#define _GNU_SOURCE
#include "api_fixture.h"
#include "fake_http.h"
#include "pgserver.h"
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <setjmp.h>
#include <stddef.h>

#include "store/store.h"
#include "store/store_sql.h"

#define OPS "ops-token-scaleout-123456"
#define REG "reg-token-scaleout-654321"
#define N_INST 3
#define N_RUN 4
#define N_WORKS 6
#define N_SCHEDULED 4 /* works with a schedule, never started by hand */
#define COUNT 120     /* records per execution */
#define EVERY 20      /* a checkpoint every EVERY records */

static struct cr_pgserver g_pg;

struct env {
  char *dir, *plug, *cfg, url[400];
  int port[N_INST], starts[N_INST], alive[N_INST];
  struct cr_test_proc inst[N_INST];
  struct cr_api_fixture api[N_INST];
  struct cr_test_proc run[N_RUN];
  char *data[N_RUN];
  int run_alive[N_RUN];
  cr_fake_http *rx;
  char path[64]; /* the subscription's path: this run's requests only */
};

static struct env *g_env; /* for the teardown of a failed test */

static void accept_all(void *ud, const struct cr_fake_http_request *req,
                       struct cr_fake_http_response *resp) {
  (void)ud;
  (void)req;
  resp->status = 204;
}

static void write_config(struct env *e) {
  char works[4096] = "";
  size_t off = 0;
  for (int w = 0; w < N_WORKS; w++)
    off += (size_t)snprintf(
        works + off, sizeof works - off,
        "  - id: w%d\n    provider: behave\n    authorization: none\n"
        "    runner: { labels: [edge] }\n"
        "    config: { mode: emit, count: %d, checkpoint_every: %d, "
        "delay_us: 3000 }\n",
        w, COUNT, EVERY);
  for (int w = 0; w < N_SCHEDULED; w++) /* the scheduler's: once an hour */
    off += (size_t)snprintf(
        works + off, sizeof works - off,
        "  - id: s%d\n    provider: behave\n    authorization: none\n"
        "    runner: { labels: [edge] }\n    schedule: { every: 1h }\n"
        "    config: { mode: emit, count: 10 }\n",
        w);
  char text[8192];
  snprintf(
      text, sizeof text,
      "host:\n  data_dir: %s/srv\n  store: \"%s\"\n"
      "  plugin_dirs: [\"%s\"]\n  health_check_interval: 1h\n"
      "  runner: { lease: 4s, offline_after: 20s }\n"
      "  api_tokens: [{name: ops, token: \"" OPS "\", "
      "scopes: [read, write, admin]}]\n"
      "  runner_registration_tokens:\n"
      "    - { name: edge, token: \"" REG "\", labels: [edge] }\n"
      "authorizations:\n  - { id: none, provider: behave, method: none }\n"
      "subscriptions:\n  - id: audit\n    workflow: webhook_system_events\n"
      "    config: { webhook_url: \"%s%s\" }\n"
      "    delivery: { max_in_flight: 1 }\n"
      "works:\n%s",
      e->dir, e->url, e->plug, cr_fake_http_url(e->rx), e->path, works);
  e->cfg = cr_test_write_file(e->dir, "connrun.yaml", text);
}

static void start_inst(struct env *e, int i) {
  char listen[64], log[32];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", e->port[i]);
  snprintf(log, sizeof log, "serve%d.log", i);
  char *argv[] = {CR_CONNRUN_BIN, "serve", "-c", e->cfg,
                  "--listen",     listen,  NULL};
  free(e->inst[i].log_path);
  e->inst[i] = cr_test_spawn(e->dir, log, argv, NULL);
  if (!cr_test_wait_log(&e->inst[i], "api: listening on ", ++e->starts[i]))
    fail_msg("instance %d did not start", i);
  e->alive[i] = 1;
}

static void start_runner(struct env *e, int i) {
  char log[32], name[16];
  snprintf(name, sizeof name, "r%d", i);
  snprintf(log, sizeof log, "r%d.log", i);
  if (e->data[i] == NULL)
    e->data[i] = cr_test_join(e->dir, name);
  char *argv[] = {CR_CONNRUN_BIN,
                  "runner",
                  "--server",
                  e->api[i % N_INST].base,
                  "--registration-token",
                  REG,
                  "--name",
                  name,
                  "--slots",
                  "2",
                  "--plugin-dir",
                  e->plug,
                  "--data-dir",
                  e->data[i],
                  NULL};
  free(e->run[i].log_path);
  e->run[i] = cr_test_spawn(e->dir, log, argv, NULL);
  e->run_alive[i] = 1;
}

static struct env *env_new(const char *db) {
  struct env *e = calloc(1, sizeof *e);
  assert_non_null(e);
  e->dir = cr_test_mkdtemp("scaleout");
  e->plug = cr_test_join(e->dir, "plug");
  assert_int_equal(mkdir(e->plug, 0755), 0);
  char *so = cr_test_join(e->plug, "behave.so");
  cr_test_copy_file(CR_TEST_PLUGIN_DIR "/behave.so", so);
  free(so);
  assert_int_equal(cr_pgserver_createdb(&g_pg, db, e->url, sizeof e->url), 0);
  assert_int_equal(cr_fake_http_start(accept_all, NULL, &e->rx), 0);
  static int n;
  snprintf(e->path, sizeof e->path, "/audit-%d-%d", (int)getpid(), ++n);
  g_env = e;
  for (int i = 0; i < N_INST; i++) {
    e->port[i] = cr_test_free_port();
    snprintf(e->api[i].base, sizeof e->api[i].base, "http://127.0.0.1:%d",
             e->port[i]);
  }
  write_config(e);
  for (int i = 0; i < N_INST; i++)
    start_inst(e, i);
  for (int i = 0; i < N_RUN; i++)
    start_runner(e, i);
  return e;
}

static void env_free(struct env *e) {
  int bad = 0;
  g_env = NULL;
  for (int i = 0; i < N_RUN; i++) {
    if (e->run_alive[i] && cr_test_proc_stop(&e->run[i]) != 0)
      bad++;
    free(e->data[i]);
  }
  for (int i = 0; i < N_INST; i++)
    if (e->alive[i] && cr_test_proc_stop(&e->inst[i]) != 0)
      bad++;
  cr_fake_http_stop(e->rx);
  if (bad == 0 && getenv("CR_TEST_KEEP") == NULL)
    cr_test_rmtree(e->dir);
  else
    print_message("kept %s\n", e->dir);
  free(e->dir);
  free(e->plug);
  free(e->cfg);
  free(e);
  assert_int_equal(bad, 0); /* each stops cleanly (and leaks nothing) */
}

/* A call through a live instance (rotating), retried on the next one when
 * an instance does not answer. */
static long api(struct env *e, const char *method, const char *path,
                const char *body, json_t **out) {
  static int next;
  for (int k = 0; k < 2 * N_INST; k++) {
    int i = next++ % N_INST;
    if (!e->alive[i])
      continue;
    long st = cr_api_call(&e->api[i], OPS, method, path, body, NULL, out, NULL);
    if (st > 0)
      return st;
  }
  return 0;
}

/* Starts an execution of work w; its id, or 0 (already open, or no answer:
 * the instance just died). */
static int64_t run_now(struct env *e, int w) {
  char path[64];
  snprintf(path, sizeof path, "/v1/works/w%d/runs", w);
  json_t *out = NULL;
  long st = api(e, "POST", path, "{}", &out);
  json_t *x = json_object_get(out, "execution_id");
  int64_t id = st >= 200 && st < 300
                   ? json_integer_value(x ? x : json_object_get(out, "id"))
                   : 0;
  if (id == 0 && getenv("CR_TEST_VERBOSE") != NULL) {
    char *t = out ? json_dumps(out, 0) : NULL;
    print_message("run w%d: %ld %s\n", w, st, t ? t : "");
    free(t);
  }
  json_decref(out);
  return id;
}

static const char *str_of(const json_t *j, const char *key) {
  const char *s = json_string_value(json_object_get(j, key));
  return s ? s : "";
}

/* Polls (bounded) until execution id is final; its view (caller decrefs). */
static json_t *wait_final(struct env *e, int64_t id, int max_s) {
  char path[64];
  snprintf(path, sizeof path, "/v1/executions/%lld", (long long)id);
  for (int i = 0; i < max_s * 5; i++) {
    json_t *v = NULL;
    if (api(e, "GET", path, NULL, &v) == 200) {
      const char *st = str_of(v, "state");
      if (!strcmp(st, "Completed") || !strcmp(st, "Failed"))
        return v;
    }
    json_decref(v);
    usleep(200 * 1000);
  }
  fail_msg("execution %lld did not end", (long long)id);
  return NULL;
}

/* Legal transitions only, one runner at a time, completed exactly once. */
static void check_transitions(const json_t *view) {
  static const char *const ok[][2] = {
      {"", "Created"},          {"Created", "Pending"},
      {"Pending", "Executing"}, {"Executing", "Completed"},
      {"Pending", "Created"},   {"Executing", "Created"}};
  int held = 0, completed = 0;
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(view, "transitions"), i, x) {
    const char *from = str_of(x, "from"), *to = str_of(x, "to");
    int legal = 0;
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
      legal |= !strcmp(ok[k][0], from) && !strcmp(ok[k][1], to);
    if (!legal)
      fail_msg("execution %lld: %s -> %s (%s)",
               (long long)json_integer_value(json_object_get(view, "id")), from,
               to, str_of(x, "reason"));
    if (!strcmp(to, "Pending")) {
      assert_false(held);
      held = 1;
    }
    if (!strcmp(to, "Created") || !strcmp(to, "Completed"))
      held = 0;
    completed += !strcmp(to, "Completed");
  }
  assert_int_equal(completed, 1);
}

/* The work's committed checkpoints, oldest first, never go backwards;
 * returns the last one's "next" (records 0..next-1 are synced). */
static long long check_checkpoints(struct env *e, int w) {
  char work[16];
  snprintf(work, sizeof work, "w%d", w);
  char *argv[] = {CR_CONNRUN_BIN, "state",  "history", work,   "-c",
                  e->cfg,         "--json", "--limit", "1000", NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  long long prev = -1, newest_version = 0, last = 0;
  /* newest first: each line's next is at most the one before it */
  for (char *line = out, *end; line != NULL && *line; line = end) {
    end = strchr(line, '\n');
    if (end != NULL)
      *end++ = '\0';
    json_t *v = json_loads(line, 0, NULL);
    if (!json_is_object(v)) {
      json_decref(v);
      continue;
    }
    long long next = json_integer_value(
        json_object_get(json_object_get(v, "state"), "next"));
    long long ver = json_integer_value(json_object_get(v, "version"));
    if (newest_version == 0) {
      newest_version = ver;
      last = next;
    }
    if (prev >= 0 && next > prev)
      fail_msg("w%d: checkpoint version %lld (next %lld) is ahead of a "
               "later one (next %lld)",
               w, ver, next, prev);
    prev = next;
    json_decref(v);
  }
  free(out);
  return last;
}

/* Every record id below n of work w is in some runner's destination. */
static void check_records(struct env *e, int w, long long n) {
  unsigned char *seen = calloc((size_t)n + 1, 1);
  char rel[64];
  snprintf(rel, sizeof rel, "out/w%d/items.jsonl", w);
  for (int i = 0; i < N_RUN; i++) {
    char *path = cr_test_join(e->data[i], rel);
    char *text = cr_test_read_file(path);
    free(path);
    for (char *line = text, *end; line != NULL && *line; line = end) {
      end = strchr(line, '\n');
      if (end != NULL)
        *end++ = '\0';
      json_t *r = json_loads(line, 0, NULL);
      long long id = json_integer_value(json_object_get(r, "id"));
      json_decref(r);
      if (id >= 0 && id < n)
        seen[id] = 1;
    }
    free(text);
  }
  for (long long id = 0; id < n; id++)
    if (!seen[id])
      fail_msg("w%d: record %lld is in no destination", w, id);
  free(seen);
}

/* What the store says about the deliveries of events a..b (a failure's
 * context). */
static void diagnose(struct env *e, int64_t a, int64_t b,
                     const int64_t *first_pos) {
  cr_store *s = NULL;
  char err[256], sql[600], out[4000];
  if (cr_store_open(e->url, &s, err, sizeof err) != 0)
    return;
  snprintf(sql, sizeof sql,
           "SELECT string_agg(event_id || ':' || status || ':' || attempts || "
           "':' || COALESCE(next_attempt_at, 0) || ':' || "
           "COALESCE(last_error, ''), ' | ' ORDER BY event_id) FROM outbox "
           "WHERE event_id BETWEEN %lld AND %lld",
           (long long)a - 1, (long long)b + 1);
  if (cr__store_sqlite_query_text(s, sql, out, sizeof out) == 0)
    print_message("outbox: %s\n", out);
  snprintf(sql, sizeof sql,
           "SELECT string_agg(event_id || '@' || at || ':' || "
           "COALESCE(http_status, 0) || ':' || COALESCE(error, ''), ' | ' "
           "ORDER BY id) FROM delivery_attempts WHERE event_id BETWEEN %lld "
           "AND %lld",
           (long long)a - 1, (long long)b + 1);
  if (cr__store_sqlite_query_text(s, sql, out, sizeof out) == 0)
    print_message("attempts: %s\n", out);
  snprintf(sql, sizeof sql,
           "SELECT string_agg(id || '@' || at || ':' || subject_type || ' ' || "
           "subject_id || ' ' || verb || ' ' || seq, ' | ' ORDER BY id) FROM "
           "events WHERE id BETWEEN %lld AND %lld",
           (long long)a - 1, (long long)b + 1);
  if (cr__store_sqlite_query_text(s, sql, out, sizeof out) == 0)
    print_message("events: %s\n", out);
  cr_store_close(s);
  for (int64_t id = a - 1; id <= b + 1; id++)
    print_message("event %lld first at request %lld\n", (long long)id,
                  (long long)first_pos[id]);
}

/* Every event in the store reached the receiver (when must; else returns 0
 * while one has not yet), first seen per subject in id order. Returns how
 * many events. */
static size_t check_events(struct env *e, int must, int64_t *upto) {
  cr_store *s = NULL;
  char err[256];
  assert_int_equal(cr_store_open(e->url, &s, err, sizeof err), 0);
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  struct cr_event_filter f = {.after_id = 0, .limit = 100000};
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  cr_store_close(s);
  assert_true(n > 0);
  /* The final check looks at the events the waiting saw (later ones, such
   * as a health check's, may still be on their way). */
  while (must && *upto > 0 && n > 0 && ev[n - 1].id > *upto)
    cr_event_rec_clear(&ev[--n]);
  *upto = ev[n - 1].id;
  int64_t max = ev[n - 1].id;
  int64_t *first_pos = calloc((size_t)max + 1, sizeof *first_pos);
  size_t nreq = cr_fake_http_count(e->rx);
  for (size_t i = 0; i < nreq; i++) {
    const struct cr_fake_http_request *r = cr_fake_http_request_at(e->rx, i);
    if (strcmp(r->path, e->path) != 0)
      continue;
    const char *wid = cr_fake_http_header(r, "webhook-id");
    int64_t id = wid != NULL ? strtoll(wid + 4, NULL, 10) : 0; /* evt_<id> */
    if (id > 0 && id <= max && first_pos[id] == 0)
      first_pos[id] = (int64_t)i + 1;
  }
  /* The subscription starts after the events before its own creation. */
  size_t start = 0;
  while (start < n && !(strcmp(ev[start].subject_type, "subscription") == 0 &&
                        strcmp(ev[start].subject_id, "audit") == 0))
    start++;
  assert_true(start < n);
  int missing = 0;
  for (size_t i = start + 1; i < n && !missing; i++) {
    if (first_pos[ev[i].id] == 0 && !must) {
      missing = 1;
      break;
    }
    if (first_pos[ev[i].id] == 0)
      fail_msg("event %lld (%s %s %s) never reached the receiver",
               (long long)ev[i].id, ev[i].subject_type, ev[i].subject_id,
               ev[i].verb);
    for (size_t j = i + 1; j < n; j++) /* the subject's next event */
      if (!strcmp(ev[j].subject_type, ev[i].subject_type) &&
          !strcmp(ev[j].subject_id, ev[i].subject_id)) {
        /* One not arrived yet is no order failure: the wait goes on, and
         * the final check fails it as never delivered. */
        if (first_pos[ev[j].id] != 0 &&
            first_pos[ev[j].id] < first_pos[ev[i].id]) {
          diagnose(e, ev[i].id, ev[j].id, first_pos);
          fail_msg("%s %s: event %lld first arrived before %lld",
                   ev[i].subject_type, ev[i].subject_id, (long long)ev[j].id,
                   (long long)ev[i].id);
        }
        break;
      }
  }
  free(first_pos);
  cr_event_rec_free_list(ev, n);
  return missing ? 0 : n - start - 1;
}

/* Each duty's `instance claimed` events name it with increasing epochs
 * (one holder at a time), read from GET /v1/cluster at the end: every duty
 * held by exactly one online instance. */
static void check_duties(struct env *e) {
  json_t *v = NULL;
  assert_int_equal(api(e, "GET", "/v1/cluster", NULL, &v), 200);
  size_t i;
  json_t *d;
  size_t held = 0;
  json_array_foreach(json_object_get(v, "duties"), i, d) {
    held += json_is_true(json_object_get(d, "held"));
    assert_true(json_integer_value(json_object_get(d, "epoch")) >= 1);
  }
  assert_true(held >= 6);
  json_decref(v);
}

static void wait_all(struct env *e, int64_t *ids, size_t n) {
  for (size_t k = 0; k < n; k++) {
    json_t *v = wait_final(e, ids[k], 120);
    if (strcmp(str_of(v, "state"), "Completed") != 0)
      fail_msg("execution %lld ended %s", (long long)ids[k],
               str_of(v, "state"));
    check_transitions(v);
    json_decref(v);
  }
}

/* Each scheduled work ran exactly once (its first slot), Completed: the
 * scheduler duty moved with the instances killed, and no two instances
 * scheduled it. */
static void check_scheduled(struct env *e) {
  cr_store *s = NULL;
  char err[256], sql[160];
  assert_int_equal(cr_store_open(e->url, &s, err, sizeof err), 0);
  for (int w = 0; w < N_SCHEDULED; w++) {
    int64_t n = -1, done = -1;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM executions WHERE work_id = 's%d'", w);
    assert_int_equal(cr__store_sqlite_query_int(s, sql, &n), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM executions WHERE work_id = 's%d' AND "
             "state = 'completed'",
             w);
    for (int i = 0; i < 300 && done != 1; i++) { /* bounded: 30 s */
      assert_int_equal(cr__store_sqlite_query_int(s, sql, &done), 0);
      if (done != 1)
        usleep(100 * 1000);
    }
    if (n != 1 || done != 1)
      fail_msg("s%d: %lld executions, %lld completed (want 1 and 1)", w,
               (long long)n, (long long)done);
  }
  cr_store_close(s);
}

static void check_all(struct env *e) {
  check_scheduled(e);
  for (int w = 0; w < N_WORKS; w++) {
    long long n = check_checkpoints(e, w);
    check_records(e, w, n);
  }
  int64_t upto = 0;
  for (int i = 0; i < 60 && check_events(e, 0, &upto) == 0; i++)
    usleep(500 * 1000); /* the last events' delivery */
  print_message("%zu events delivered\n", check_events(e, 1, &upto));
  check_duties(e);
}

/* ---- Chaos -------------------------------------------------------------- */

#define MAX_EXECS 400

static void test_chaos(void **state) {
  (void)state;
  struct env *e = env_new("chaos");
  int64_t ids[MAX_EXECS];
  size_t n = 0;
  srand(20261205);
  int kills_inst = 0, kills_run = 0;
  for (int round = 0; round < 60 && n < MAX_EXECS - N_WORKS; round++) {
    for (int w = 0; w < N_WORKS; w++) {
      int64_t id = run_now(e, w);
      if (id > 0)
        ids[n++] = id;
    }
    usleep(300 * 1000);
    if (round % 4 != 3)
      continue;
    int victim = rand() % (N_INST + N_RUN);
    if (victim < N_INST) { /* an instance; the others carry on */
      kill(e->inst[victim].pid, SIGKILL);
      cr_test_proc_wait(&e->inst[victim], 10000);
      e->alive[victim] = 0;
      kills_inst++;
      usleep(700 * 1000);
      start_inst(e, victim);
    } else {
      int r = victim - N_INST;
      kill(e->run[r].pid, SIGKILL);
      cr_test_proc_wait(&e->run[r], 10000);
      kills_run++;
      usleep(300 * 1000);
      start_runner(e, r);
    }
  }
  print_message("%zu executions, %d instances and %d runners killed\n", n,
                kills_inst, kills_run);
  assert_true(n >= N_WORKS);
  assert_true(kills_inst + kills_run >= 10);
  wait_all(e, ids, n);
  check_all(e);
  env_free(e);
}

/* ---- The database restarted under load ---------------------------------- */

static void test_db_restart(void **state) {
  (void)state;
  struct env *e = env_new("restart");
  int64_t ids[64];
  size_t n = 0;
  for (int w = 0; w < N_WORKS; w++)
    if ((ids[n] = run_now(e, w)) > 0)
      n++;
  usleep(800 * 1000);
  /* What the API acknowledged before the restart. */
  json_t *before = NULL;
  assert_int_equal(api(e, "GET", "/v1/events?limit=1000", NULL, &before), 200);
  size_t acked = json_array_size(json_object_get(before, "items"));
  assert_true(acked > 0);
  cr_pgserver_halt(&g_pg);
  sleep(2);
  assert_int_equal(cr_pgserver_restart(&g_pg), 0);
  for (int round = 0; round < 10; round++) { /* and more load after it */
    for (int w = 0; w < N_WORKS && n < 64; w++) {
      int64_t id = run_now(e, w);
      if (id > 0)
        ids[n++] = id;
    }
    usleep(500 * 1000);
  }
  wait_all(e, ids, n);
  size_t i;
  json_t *x;
  cr_store *s = NULL;
  char err[256];
  assert_int_equal(cr_store_open(e->url, &s, err, sizeof err), 0);
  json_array_foreach(json_object_get(before, "items"), i, x) {
    struct cr_event_rec *ev = NULL;
    size_t k = 0;
    int64_t id = json_integer_value(json_object_get(x, "id"));
    struct cr_event_filter f = {.after_id = id - 1, .limit = 1};
    assert_int_equal(cr_store_event_query(s, &f, &ev, &k), 0);
    if (k != 1 || ev[0].id != id)
      fail_msg("event %lld acknowledged before the restart is gone",
               (long long)id);
    cr_event_rec_free_list(ev, k);
  }
  cr_store_close(s);
  json_decref(before);
  check_all(e);
  env_free(e);
}

/* After a failed test: no process of it outlives it. */
static int teardown(void **state) {
  (void)state;
  struct env *e = g_env;
  if (e == NULL)
    return 0;
  for (int i = 0; i < N_RUN; i++)
    if (e->run_alive[i] && e->run[i].pid > 0)
      kill(e->run[i].pid, SIGKILL);
  for (int i = 0; i < N_INST; i++)
    if (e->alive[i] && e->inst[i].pid > 0)
      kill(e->inst[i].pid, SIGKILL);
  print_message("kept %s\n", e->dir);
  cr_fake_http_stop(e->rx);
  g_env = NULL;
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_db_restart, teardown),
      cmocka_unit_test_teardown(test_chaos, teardown)};
  if (cr_pgserver_start(&g_pg, 0) != 0) {
    fprintf(stderr, "PostgreSQL: %s\n", g_pg.error);
    return 1;
  }
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  cr_pgserver_stop(&g_pg);
  return rc;
}
