/* test_remote_runners.c: remote runners end to end with real processes: a
 * `connrun serve` child and `connrun runner` children (each with its own
 * pool of `connrun worker` processes running the "behave" test plugin), all
 * on 127.0.0.1, driven and checked through the REST API with libcurl.
 *   - kill -9 of a runner mid-sync: its workers die with it, the lease
 *     expires, another runner finishes attempt 2 from the last committed
 *     checkpoint, no record is missing;
 *   - a runner stopped (SIGSTOP) past its lease: another runner finishes,
 *     the resumed runner's reports are fenced off and it stops;
 *   - a runner behind a fault-injecting proxy (dropped connections, answers
 *     cut after the server applied the request): every execution completes,
 *     every checkpoint is committed once, the versions are contiguous;
 *   - two runners racing for the same executions: each completes once and
 *     is never held by two runners; routing by labels (an unlabelled runner
 *     never takes a labelled work, an unlabelled work the server serves runs
 *     on "local"); a revoked runner is refused and exits 1;
 *   - a revoked runner's waiting long poll does not claim again what its
 *     revocation released;
 *   - the server restarted under a running remote execution: the runner
 *     retries its reports and the execution completes;
 *   - SIGTERM on a runner past its grace period: the execution goes back as
 *     a new attempt, the runner exits 0, another runner finishes it;
 *   - an error-rate alert on a work that only remote runners run: its
 *     failures raise one `alerted` event and one notification.
 * Every wait polls with a bound; nothing asserts on durations. */
#define _GNU_SOURCE
#include "api_fixture.h"
#include "fake_http.h"
#include "fault_proxy.h"
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

#define OPS "ops-token-123456789"
#define REG_EDGE "reg-token-1234567890"
#define REG_PLAIN "reg-token-plain-0987654321"
#define MAX_PROCS 6

struct env {
  char *dir, *plug, *cfg;
  int port, starts; /* the server's port and how often it started */
  struct cr_test_proc srv;
  cr_fault_proxy *proxy;
  struct cr_api_fixture api; /* only base is used: the server's URL */
  struct cr_test_proc procs[MAX_PROCS];
  char *data[MAX_PROCS]; /* each runner's --data-dir */
  int nprocs;
};

/* ---- Server and runners ------------------------------------------------- */

/* Writes the server's configuration: runner lease and the works (YAML list
 * items, borrowed). */
static void write_config(struct env *e, const char *lease, const char *works) {
  char text[8192];
  snprintf(text, sizeof text,
           "host:\n"
           "  data_dir: %s/srv\n"
           "  listen: 127.0.0.1:%d\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  health_check_interval: 1h\n"
           "  runner: { lease: %s, offline_after: 20s }\n"
           "  api_tokens: [{name: ops, token: \"" OPS "\", "
           "scopes: [read, write, admin]}]\n"
           "  runner_registration_tokens:\n"
           "    - { name: edge, token: \"" REG_EDGE "\", labels: [edge] }\n"
           "    - { name: plain, token: \"" REG_PLAIN "\" }\n"
           "authorizations:\n"
           "  - { id: none, provider: behave, method: none }\n"
           "works:\n%s",
           e->dir, e->port, e->plug, lease, works);
  free(e->cfg);
  e->cfg = cr_test_write_file(e->dir, "server.yaml", text);
}

/* Prints the end of a child's log (a failure's context). */
static void dump_log(const char *path) {
  char *log = path ? cr_test_read_file(path) : NULL;
  size_t n = log ? strlen(log) : 0;
  print_message("--- %s:\n%s\n", path ? path : "?",
                n > 3000 ? log + n - 3000
                : log    ? log
                         : "");
  free(log);
}

/* Prints the end of the server's and every runner's log (a runner's is
 * its data dir's path plus ".log": DIR/NAME.log). */
static void dump_logs(const struct env *e) {
  char path[4200];
  snprintf(path, sizeof path, "%s/serve.log", e->dir);
  dump_log(path);
  for (int i = 0; i < e->nprocs; i++) {
    snprintf(path, sizeof path, "%s.log", e->data[i]);
    dump_log(path);
  }
}

/* Starts the server and waits until it listens (its log is appended to:
 * the starts-th "listening" line). */
static void serve(struct env *e) {
  e->srv = cr_test_serve(e->dir, e->cfg, NULL, NULL);
  if (!cr_test_wait_log(&e->srv, "api: listening on ", ++e->starts)) {
    dump_log(e->srv.log_path);
    fail_msg("connrun serve did not start");
  }
  if (!cr_test_can_connect(e->port)) {
    dump_log(e->srv.log_path);
    fail_msg("connrun serve does not accept connections");
  }
  assert_int_equal(cr_test_serve_port(&e->srv), e->port);
}

/* A work item for write_config: id, labelled or not, behave's emit config. */
static void work_yaml(char *buf, size_t len, const char *id, int labelled,
                      int count, int every, int delay_us) {
  snprintf(buf, len,
           "  - id: %s\n"
           "    provider: behave\n"
           "    authorization: none\n"
           "%s"
           "    config: { mode: emit, count: %d, checkpoint_every: %d, "
           "delay_us: %d }\n",
           id, labelled ? "    runner: { labels: [edge] }\n" : "", count, every,
           delay_us);
}

/* Starts the server with the works (YAML text, borrowed). */
static struct env *env_new(const char *lease, const char *works) {
  struct env *e = calloc(1, sizeof *e);
  assert_non_null(e);
  e->dir = cr_test_mkdtemp("remote-runners");
  e->plug = cr_test_join(e->dir, "splug");
  assert_int_equal(mkdir(e->plug, 0755), 0);
  char *so = cr_test_join(e->plug, "behave.so");
  cr_test_copy_file(CR_TEST_PLUGIN_DIR "/behave.so", so);
  assert_int_equal(chmod(so, 0755), 0);
  free(so);
  e->port = cr_test_free_port();
  snprintf(e->api.base, sizeof e->api.base, "http://127.0.0.1:%d", e->port);
  write_config(e, lease, works);
  serve(e);
  return e;
}

/* Stops what still runs (SIGTERM: each must exit 0, which under the
 * sanitizers also means no leak) and removes the directory. Returns how
 * many did not exit 0. */
static int env_free(struct env *e) {
  int bad = 0;
  for (int i = 0; i < e->nprocs; i++) {
    if (e->procs[i].pid > 0)
      kill(e->procs[i].pid, SIGCONT);
    const char *log = e->procs[i].log_path;
    if (log != NULL && e->procs[i].pid > 0 &&
        cr_test_proc_stop(&e->procs[i]) != 0) {
      print_message("runner %d did not stop cleanly\n", i);
      bad++;
    }
    free(e->procs[i].log_path);
    free(e->data[i]);
  }
  cr_fault_proxy_stop(e->proxy);
  if (e->srv.log_path != NULL && cr_test_proc_stop(&e->srv) != 0) {
    print_message("connrun serve did not stop cleanly\n");
    bad++;
  }
  if (getenv("CR_TEST_KEEP") == NULL && bad == 0) /* kept to read the logs */
    cr_test_rmtree(e->dir);
  else
    print_message("kept %s\n", e->dir);
  free(e->dir);
  free(e->plug);
  free(e->cfg);
  free(e);
  return bad;
}

static int teardown(void **state) {
  int bad = *state != NULL ? env_free(*state) : 0;
  *state = NULL;
  return bad ? -1 : 0;
}

/* Starts `connrun runner` named name (its log NAME.log, data dir
 * DIR/NAME) against url (NULL: the server), registered with reg. Returns
 * its index in e->procs. */
static int runner_at(struct env *e, const char *name, const char *url,
                     const char *reg, int slots) {
  assert_true(e->nprocs < MAX_PROCS);
  int i = e->nprocs++;
  char log[64], nslots[16];
  snprintf(log, sizeof log, "%s.log", name);
  snprintf(nslots, sizeof nslots, "%d", slots);
  e->data[i] = cr_test_join(e->dir, name);
  char *const argv[] = {CR_CONNRUN_BIN,
                        "runner",
                        "--server",
                        (char *)(url ? url : e->api.base),
                        "--registration-token",
                        (char *)reg,
                        "--name",
                        (char *)name,
                        "--slots",
                        nslots,
                        "--plugin-dir",
                        e->plug,
                        "--data-dir",
                        e->data[i],
                        "--grace",
                        "2s",
                        NULL};
  e->procs[i] = cr_test_spawn(e->dir, log, argv, NULL);
  assert_true(cr_test_wait_log(&e->procs[i], "serving", 1));
  return i;
}

static int runner(struct env *e, const char *name, int slots) {
  return runner_at(e, name, NULL, REG_EDGE, slots);
}

/* The runner id of runner i (from its runner.json) into buf. */
static void runner_id(const struct env *e, int i, char *buf, size_t len) {
  char *path = cr_test_join(e->data[i], "runner.json");
  json_t *j = json_load_file(path, 0, NULL);
  free(path);
  assert_non_null(j);
  snprintf(buf, len, "%s", json_string_value(json_object_get(j, "runner_id")));
  json_decref(j);
  assert_true(buf[0] != '\0');
}

/* ---- API ---------------------------------------------------------------- */

static long api(struct env *e, const char *method, const char *path,
                const char *body, json_t **out) {
  return cr_api_call(&e->api, OPS, method, path, body, NULL, out, NULL);
}

static int64_t run_now(struct env *e, const char *work) {
  char path[128];
  snprintf(path, sizeof path, "/v1/works/%s/runs", work);
  json_t *out = NULL;
  long st = api(e, "POST", path, "{}", &out);
  assert_true(st == 200 || st == 201 || st == 202);
  json_t *id = json_object_get(out, "execution_id");
  int64_t eid = json_integer_value(id ? id : json_object_get(out, "id"));
  json_decref(out);
  assert_true(eid > 0);
  return eid;
}

/* GET /v1/executions/eid, or NULL when the server does not answer. */
static json_t *exec_view(struct env *e, int64_t eid) {
  char path[64];
  snprintf(path, sizeof path, "/v1/executions/%lld", (long long)eid);
  json_t *v = NULL;
  if (!cr_test_can_connect(e->port)) {
    dump_log(e->srv.log_path);
    fail_msg("the server is not reachable");
  }
  if (api(e, "GET", path, NULL, &v) != 200) {
    json_decref(v);
    return NULL;
  }
  return v;
}

static const char *str_of(const json_t *j, const char *key) {
  const char *s = json_string_value(json_object_get(j, key));
  return s ? s : "";
}

static int is_final(const char *state) {
  return strcmp(state, "Completed") == 0 || strcmp(state, "Failed") == 0 ||
         strcmp(state, "Cancelled") == 0;
}

/* Polls (bounded: about max_s seconds) until execution eid is final;
 * returns its view (caller decrefs). Fails the test otherwise. */
static json_t *wait_final(struct env *e, int64_t eid, int max_s) {
  for (int i = 0; i < max_s * 10; i++) {
    json_t *v = exec_view(e, eid);
    if (v != NULL && is_final(str_of(v, "state")))
      return v;
    json_decref(v);
    usleep(100 * 1000);
  }
  dump_logs(e);
  json_t *v = exec_view(e, eid);
  char *text = v ? json_dumps(v, JSON_INDENT(1)) : NULL;
  print_message("execution %lld: %s\n", (long long)eid, text ? text : "?");
  free(text);
  json_decref(v);
  fail_msg("execution %lld did not end", (long long)eid);
  return NULL;
}

/* Every event of the work (all pages), oldest first (caller decrefs). */
static json_t *work_events(struct env *e, const char *work) {
  json_t *all = json_array();
  long long after = 0;
  for (int page = 0; page < 100; page++) {
    char path[200];
    snprintf(path, sizeof path,
             "/v1/events?subject_type=work&subject_id=%s&limit=1000&after=%lld",
             work, after);
    json_t *out = NULL;
    assert_int_equal(api(e, "GET", path, NULL, &out), 200);
    json_t *items = json_object_get(out, "items");
    size_t n = json_array_size(items);
    for (size_t i = 0; i < n; i++) {
      json_t *ev = json_array_get(items, i);
      after = json_integer_value(json_object_get(ev, "id"));
      json_array_append(all, ev);
    }
    json_decref(out);
    if (n < 1000)
      return all;
  }
  fail_msg("too many events");
  return all;
}

/* The `synced` events of execution eid (eid 0: every one), with event id
 * above after_id (new references in a new array). */
static json_t *synced_of(json_t *events, int64_t eid, int64_t after_id) {
  json_t *out = json_array();
  size_t i;
  json_t *ev;
  json_array_foreach(events, i, ev) {
    json_t *d = json_object_get(ev, "data");
    if (strcmp(str_of(ev, "verb"), "synced") != 0 ||
        json_integer_value(json_object_get(ev, "id")) <= after_id)
      continue;
    if (eid == 0 ||
        json_integer_value(json_object_get(d, "execution_id")) == eid)
      json_array_append(out, ev);
  }
  return out;
}

static int64_t data_int(const json_t *ev, const char *key) {
  return json_integer_value(json_object_get(json_object_get(ev, "data"), key));
}

/* Polls (bounded) until execution eid has at least one `synced` event. */
static void wait_synced(struct env *e, const char *work, int64_t eid) {
  for (int i = 0; i < 300; i++) {
    json_t *ev = work_events(e, work);
    json_t *s = synced_of(ev, eid, 0);
    size_t n = json_array_size(s);
    json_decref(s);
    json_decref(ev);
    if (n > 0)
      return;
    usleep(100 * 1000);
  }
  fail_msg("execution %lld never committed a checkpoint", (long long)eid);
}

static int64_t max_event_id(struct env *e, const char *work) {
  json_t *ev = work_events(e, work);
  size_t n = json_array_size(ev);
  int64_t id =
      n ? json_integer_value(json_object_get(json_array_get(ev, n - 1), "id"))
        : 0;
  json_decref(ev);
  return id;
}

/* The committed states of the work, newest first, from `connrun state
 * history --json` on the server's configuration: one JSON object a line
 * (caller decrefs the array). */
static json_t *state_history(struct env *e, const char *work) {
  char *const argv[] = {CR_CONNRUN_BIN, "state", "history", (char *)work,
                        "-c",           e->cfg,  "--json",  NULL};
  char *out = NULL;
  int st = cr_test_run(argv, NULL, &out);
  if (st != 0)
    fail_msg("connrun state history: %d %s", st, out ? out : "");
  json_t *all = json_array();
  for (char *line = out, *end; line != NULL && *line; line = end) {
    end = strchr(line, '\n');
    if (end != NULL)
      *end++ = '\0';
    json_t *v = json_loads(line, 0, NULL);
    if (json_is_object(v))
      json_array_append(all, v);
    json_decref(v);
  }
  free(out);
  return all;
}

/* ---- Checks ------------------------------------------------------------- */

/* Asserts each transition of the view is one a runner may cause, and that
 * every "claimed by runner X" ends (back to Created, or final) before the
 * next claim. Returns how many times it completed. */
static int check_transitions(const json_t *view) {
  static const char *const ok[][2] = {
      {"", "Created"},          {"Created", "Pending"},
      {"Pending", "Executing"}, {"Executing", "Completed"},
      {"Pending", "Created"},   {"Executing", "Created"}};
  json_t *t = json_object_get(view, "transitions");
  int held = 0, completed = 0;
  size_t i;
  json_t *x;
  json_array_foreach(t, i, x) {
    const char *from = str_of(x, "from"), *to = str_of(x, "to");
    int legal = 0;
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
      legal |= strcmp(ok[k][0], from) == 0 && strcmp(ok[k][1], to) == 0;
    if (!legal)
      fail_msg("transition %s -> %s (%s) of execution %lld", from, to,
               str_of(x, "reason"),
               (long long)json_integer_value(json_object_get(view, "id")));
    if (strcmp(to, "Pending") == 0) {
      assert_false(held); /* never two runners at once */
      held = 1;
    }
    if (strcmp(to, "Created") == 0 || is_final(to))
      held = 0;
    completed += strcmp(to, "Completed") == 0;
  }
  return completed;
}

/* How many transitions say "claimed by runner <id>" after the first one
 * whose reason contains since (NULL: from the start). */
static int claims_by(const json_t *view, const char *id, const char *since) {
  char want[128];
  snprintf(want, sizeof want, "claimed by runner %s", id);
  int seen = since == NULL, n = 0;
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(view, "transitions"), i, x) {
    const char *r = str_of(x, "reason");
    if (seen && strcmp(r, want) == 0)
      n++;
    if (since != NULL && strstr(r, since) != NULL)
      seen = 1;
  }
  return n;
}

/* Marks the ids of the records in runner i's out/WORK/items.jsonl in
 * seen[0..n) and returns the smallest id (-1 when the file is empty). */
static long long mark_ids(const struct env *e, int i, const char *work,
                          unsigned char *seen, long long n) {
  char rel[128];
  snprintf(rel, sizeof rel, "out/%s/items.jsonl", work);
  char *path = cr_test_join(e->data[i], rel);
  char *text = cr_test_read_file(path);
  free(path);
  long long min = -1;
  for (char *line = text, *end; line != NULL && *line; line = end) {
    end = strchr(line, '\n');
    if (end != NULL)
      *end++ = '\0';
    json_t *r = json_loads(line, 0, NULL);
    assert_non_null(r);
    long long id = json_integer_value(json_object_get(r, "id"));
    json_decref(r);
    if (id >= 0 && id < n)
      seen[id] = 1;
    if (min < 0 || id < min)
      min = id;
  }
  free(text);
  return min;
}

/* The "next" of the state committed as version (from state_history). */
static long long next_at(json_t *hist, int64_t version) {
  size_t i;
  json_t *v;
  json_array_foreach(hist, i, v) {
    if (json_integer_value(json_object_get(v, "version")) == version)
      return json_integer_value(
          json_object_get(json_object_get(v, "state"), "next"));
  }
  fail_msg("version %lld not in the state history", (long long)version);
  return -1;
}

/* Asserts the execution's view names runner id. */
static void assert_ran_on(const json_t *view, const char *id) {
  assert_string_equal(str_of(view, "runner"), id);
}

/* The highest version committed by attempt of execution eid (0: none). */
static int64_t last_version(json_t *events, int64_t eid, int attempt) {
  json_t *s = synced_of(events, eid, 0);
  int64_t v = 0;
  size_t i;
  json_t *ev;
  json_array_foreach(s, i, ev) {
    if (data_int(ev, "attempt") == attempt && data_int(ev, "version") > v)
      v = data_int(ev, "version");
  }
  json_decref(s);
  return v;
}

/* Asserts ids 0..n-1 are all in seen. */
static void assert_all_seen(const unsigned char *seen, long long n) {
  for (long long i = 0; i < n; i++)
    if (!seen[i])
      fail_msg("record %lld is missing", i);
}

#define LONG_COUNT 1000

/* The long work w1: labelled, 1000 records, a checkpoint every 100, 3 ms
 * each (a few seconds). */
static struct env *long_env(const char *lease) {
  char works[512];
  work_yaml(works, sizeof works, "w1", 1, LONG_COUNT, 100, 3000);
  return env_new(lease, works);
}

/* The long work w1 (lease given) and runner "ra" (one slot) running it,
 * with slots, once the execution committed a checkpoint (the env is *state):
 * runner index in *a, its id in aid, the execution in *eid. */
static struct env *long_running(void **state, const char *lease, int slots,
                                int *a, char aid[80], int64_t *eid) {
  struct env *e = *state = long_env(lease); /* torn down if this fails */
  *a = runner(e, "ra", slots);
  runner_id(e, *a, aid, 80);
  *eid = run_now(e, "w1");
  wait_synced(e, "w1", *eid);
  return e;
}

/* The execution's view once it is Executing (bounded). */
static void wait_executing(struct env *e, int64_t eid) {
  for (int i = 0; i < 300; i++) {
    json_t *v = exec_view(e, eid);
    int yes = v != NULL && strcmp(str_of(v, "state"), "Executing") == 0;
    json_decref(v);
    if (yes)
      return;
    usleep(100 * 1000);
  }
  fail_msg("execution %lld never ran", (long long)eid);
}

/* Starts runner name (one slot) to take execution eid over; waits until
 * the execution completed there (legal transitions, once). Its index in
 * *idx and id in id; returns the execution's view (caller decrefs). */
static json_t *finish_on(struct env *e, int64_t eid, const char *name, int *idx,
                         char id[80]) {
  *idx = runner(e, name, 1);
  runner_id(e, *idx, id, 80);
  json_t *v = wait_final(e, eid, 90);
  assert_string_equal(str_of(v, "state"), "Completed");
  assert_int_equal(check_transitions(v), 1);
  assert_ran_on(v, id);
  return v;
}

static void test_kill9_mid_sync(void **state) {
  int a;
  char aid[80], bid[80];
  int64_t eid;
  struct env *e = long_running(state, "3s", 1, &a, aid, &eid);
  int kids[16];
  size_t nk = cr_test_children(e->procs[a].pid, kids, 16);
  assert_true(nk >= 1); /* the worker running the execution */
  kill(e->procs[a].pid, SIGKILL);
  assert_int_equal(cr_test_proc_wait(&e->procs[a], 10000), 128 + SIGKILL);
  for (size_t k = 0; k < nk; k++) { /* the workers die with their runner */
    for (int i = 0; i < 100 && !cr_test_proc_gone(kids[k]); i++)
      usleep(100 * 1000);
    assert_true(cr_test_proc_gone(kids[k]));
  }
  int b;
  json_t *v = finish_on(e, eid, "rb", &b, bid);
  assert_int_equal(json_integer_value(json_object_get(v, "attempt")), 2);
  assert_int_equal(claims_by(v, aid, NULL), 1);
  assert_int_equal(claims_by(v, bid, NULL), 1);
  json_decref(v);
  /* B resumed from the last checkpoint attempt 1 committed. */
  json_t *ev = work_events(e, "w1");
  int64_t v1 = last_version(ev, eid, 1);
  json_decref(ev);
  assert_true(v1 >= 1);
  json_t *hist = state_history(e, "w1");
  long long next = next_at(hist, v1);
  json_decref(hist);
  unsigned char *seen = calloc(2 * LONG_COUNT, 1);
  assert_int_equal(mark_ids(e, a, "w1", seen, 2 * LONG_COUNT), 0);
  assert_all_seen(seen, next); /* A flushed them before committing */
  long long bmin = mark_ids(e, b, "w1", seen, 2 * LONG_COUNT);
  assert_true(bmin >= next);
  assert_all_seen(seen, LONG_COUNT);
  free(seen);
}

static void test_sigstop_past_lease(void **state) {
  int a;
  char aid[80], bid[80];
  int64_t eid;
  struct env *e = long_running(state, "3s", 1, &a, aid, &eid);
  int64_t mark = max_event_id(e, "w1");
  assert_int_equal(kill(e->procs[a].pid, SIGSTOP), 0);
  int b;
  json_t *v = finish_on(e, eid, "rb", &b, bid);
  assert_int_equal(json_integer_value(json_object_get(v, "attempt")), 2);
  size_t ntrans = json_array_size(json_object_get(v, "transitions"));
  json_decref(v);
  assert_int_equal(kill(e->procs[a].pid, SIGCONT), 0);
  /* A's next report for its old lease is refused and it stops the run. */
  assert_true(cr_test_wait_log(&e->procs[a], "lease lost", 1));
  json_t *ev = work_events(e, "w1");
  json_t *late = synced_of(ev, eid, mark);
  size_t i;
  json_t *x;
  json_array_foreach(late, i, x) assert_int_equal(data_int(x, "attempt"), 2);
  json_decref(late);
  json_decref(ev);
  v = exec_view(e, eid);
  assert_non_null(v);
  assert_string_equal(str_of(v, "state"), "Completed");
  assert_int_equal(json_array_size(json_object_get(v, "transitions")), ntrans);
  assert_int_equal(check_transitions(v), 1);
  assert_int_equal(claims_by(v, aid, NULL), 1);
  json_decref(v);
  unsigned char *seen = calloc(2 * LONG_COUNT, 1);
  mark_ids(e, a, "w1", seen, 2 * LONG_COUNT);
  mark_ids(e, b, "w1", seen, 2 * LONG_COUNT);
  assert_all_seen(seen, LONG_COUNT);
  free(seen);
  /* A is still a working runner: it goes on serving. */
  assert_int_equal(cr_test_proc_wait(&e->procs[a], 0), -1);
}

/* Asserts the work's committed versions are 1..n without a gap and that no
 * version was announced by two `synced` events. */
static void assert_versions_once(struct env *e, const char *work) {
  json_t *ev = work_events(e, work);
  json_t *s = synced_of(ev, 0, 0);
  json_t *hist = state_history(e, work);
  size_t n = json_array_size(hist);
  assert_true(n >= 1);
  unsigned char *seen = calloc(n + 1, 1);
  size_t i;
  json_t *x;
  json_array_foreach(s, i, x) {
    int64_t v = data_int(x, "version");
    assert_true(v >= 1 && (size_t)v <= n);
    if (seen[v])
      fail_msg("work %s: version %lld committed twice", work, (long long)v);
    seen[v] = 1;
  }
  assert_int_equal(json_array_size(s), n);
  json_array_foreach(hist, i, x) /* newest first: n, n-1, ..., 1 */
      assert_int_equal(json_integer_value(json_object_get(x, "version")),
                       (json_int_t)(n - i));
  free(seen);
  json_decref(hist);
  json_decref(s);
  json_decref(ev);
}

#define FAULT_ROUNDS 7

static void test_fault_proxy(void **state) {
  static const char *const works[] = {"f1", "f2", "f3"};
  char yaml[2048] = "", one[512];
  for (int k = 0; k < 3; k++) {
    work_yaml(one, sizeof one, works[k], 1, 30, 10, 0);
    strcat(yaml, one);
  }
  struct env *e = *state = env_new("1s", yaml);
  assert_int_equal(cr_fault_proxy_start(e->port, 7, &e->proxy), 0);
  cr_fault_proxy_set(e->proxy, 10, 20, 2);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d",
           cr_fault_proxy_port(e->proxy));
  runner_at(e, "ra", url, REG_EDGE, 3);
  int64_t eids[FAULT_ROUNDS * 3];
  for (int r = 0; r < FAULT_ROUNDS; r++) {
    for (int k = 0; k < 3; k++)
      eids[r * 3 + k] = run_now(e, works[k]);
    for (int k = 0; k < 3; k++) {
      json_t *v = wait_final(e, eids[r * 3 + k], 60);
      assert_string_equal(str_of(v, "state"), "Completed");
      assert_int_equal(check_transitions(v), 1);
      json_decref(v);
    }
  }
  for (int k = 0; k < 3; k++)
    assert_versions_once(e, works[k]);
  struct cr_fault_stats st = cr_fault_proxy_stats(e->proxy);
  print_message("proxy: %ld connections, %ld dropped, %ld cut\n",
                st.connections, st.dropped, st.cut);
  assert_true(st.cut > 0);
}

#define RACE_ROUNDS 5

/* Asserts a labelled execution completed once on A or B, never on C. */
static void check_race(const json_t *v, const char *aid, const char *bid,
                       const char *cid) {
  assert_string_equal(str_of(v, "state"), "Completed");
  assert_int_equal(check_transitions(v), 1);
  assert_int_equal(claims_by(v, cid, NULL), 0);
  const char *on = str_of(v, "runner");
  assert_true(strcmp(on, aid) == 0 || strcmp(on, bid) == 0);
}

#define RACE_WORKS 4

static void test_race_routing_revoke(void **state) {
  static const char *const works[RACE_WORKS] = {"r1", "r2", "r3", "r4"};
  char yaml[4096] = "", one[512];
  for (int k = 0; k < RACE_WORKS; k++) {
    work_yaml(one, sizeof one, works[k], 1, 20, 5, 0);
    strcat(yaml, one);
  }
  work_yaml(one, sizeof one, "loc", 0, 20, 5, 0);
  strcat(yaml, one);
  struct env *e = *state = env_new("3s", yaml);
  int a = runner(e, "ra", 2), b = runner(e, "rb", 2);
  int c = runner_at(e, "rc", NULL, REG_PLAIN, 2);
  char aid[80], bid[80], cid[80];
  runner_id(e, a, aid, sizeof aid);
  runner_id(e, b, bid, sizeof bid);
  runner_id(e, c, cid, sizeof cid);
  int on_a = 0;
  for (int r = 0; r < RACE_ROUNDS; r++) {
    int64_t eids[RACE_WORKS + 1];
    for (int k = 0; k < RACE_WORKS; k++)
      eids[k] = run_now(e, works[k]);
    eids[RACE_WORKS] = run_now(e, "loc");
    for (int k = 0; k <= RACE_WORKS; k++) {
      json_t *v = wait_final(e, eids[k], 60);
      if (k < RACE_WORKS) {
        check_race(v, aid, bid, cid);
        on_a += strcmp(str_of(v, "runner"), aid) == 0;
      } else { /* the server's own runner has behave: it runs there */
        assert_string_equal(str_of(v, "state"), "Completed");
        assert_int_equal(check_transitions(v), 1);
        assert_ran_on(v, "local");
      }
      json_decref(v);
    }
  }
  print_message("%d of %d labelled executions ran on A\n", on_a,
                RACE_ROUNDS * RACE_WORKS);
  /* C (no label) was never handed anything. */
  char *log = cr_test_read_file(e->procs[c].log_path);
  assert_null(strstr(log, "claimed execution"));
  free(log);
  /* Revoked: C's next call is refused and it exits 1. */
  char path[128];
  snprintf(path, sizeof path, "/v1/runners/%s", cid);
  assert_int_equal(api(e, "DELETE", path, NULL, NULL), 200);
  assert_int_equal(cr_test_proc_wait(&e->procs[c], 60000), 1);
  assert_true(cr_test_wait_log(&e->procs[c], "revoked", 1));
  json_t *view = NULL;
  assert_int_equal(api(e, "GET", path, NULL, &view), 200);
  assert_string_equal(str_of(view, "status"), "revoked");
  json_decref(view);
}

/* A revoked runner waiting in a long poll for a free slot must not claim
 * the execution its own revocation just put back. */
static void test_revoked_poll_no_reclaim(void **state) {
  struct env *e = *state = long_env("3s");
  int x = runner(e, "rx", 2); /* one slot stays free: a claim waits */
  char xid[80];
  runner_id(e, x, xid, sizeof xid);
  int64_t eid = run_now(e, "w1");
  wait_executing(e, eid);
  char path[128], since[128];
  snprintf(path, sizeof path, "/v1/runners/%s", xid);
  json_t *out = NULL;
  assert_int_equal(api(e, "DELETE", path, NULL, &out), 200);
  assert_int_equal(json_integer_value(json_object_get(out, "released")), 1);
  json_decref(out);
  assert_int_equal(cr_test_proc_wait(&e->procs[x], 60000), 1);
  json_t *v = exec_view(e, eid);
  assert_non_null(v);
  snprintf(since, sizeof since, "runner %s revoked", xid);
  assert_int_equal(claims_by(v, xid, since), 0);
  assert_string_equal(str_of(v, "state"), "Created");
  json_decref(v);
  /* Another runner takes the new attempt and finishes it. */
  int y;
  char yid[80];
  json_decref(finish_on(e, eid, "ry", &y, yid));
}

static void test_server_restart(void **state) {
  int a;
  char aid[80];
  int64_t eid;
  struct env *e = long_running(state, "10s", 2, &a, aid, &eid);
  assert_int_equal(cr_test_proc_stop(&e->srv), 0);
  /* The runner's next report finds nobody: it retries with backoff. */
  assert_true(cr_test_wait_log(&e->procs[a], "report not delivered", 1));
  serve(e);
  json_t *v = wait_final(e, eid, 90);
  assert_string_equal(str_of(v, "state"), "Completed");
  assert_int_equal(json_integer_value(json_object_get(v, "attempt")), 1);
  assert_int_equal(check_transitions(v), 1);
  assert_ran_on(v, aid);
  json_decref(v);
  assert_versions_once(e, "w1");
  unsigned char *seen = calloc(LONG_COUNT, 1);
  mark_ids(e, a, "w1", seen, LONG_COUNT);
  assert_all_seen(seen, LONG_COUNT);
  free(seen);
}

/* SIGTERM on a runner: the grace period (2 s) runs out before the
 * execution (400 records, 10 ms each) can end; the runner puts it back as a
 * new attempt and exits 0; another runner finishes it from the checkpoint. */
static void test_runner_sigterm_releases(void **state) {
  char works[512];
  work_yaml(works, sizeof works, "w1", 1, 400, 100, 10000);
  struct env *e = *state = env_new("3s", works);
  int a = runner(e, "ra", 1);
  int64_t eid = run_now(e, "w1");
  wait_synced(e, "w1", eid);
  assert_int_equal(cr_test_proc_stop(&e->procs[a]), 0);
  char *path = cr_test_join(e->dir, "ra.log");
  char *log = cr_test_read_file(path);
  free(path);
  assert_non_null(strstr(log, "grace period over"));
  free(log);
  json_t *v = exec_view(e, eid);
  assert_non_null(v);
  assert_string_equal(str_of(v, "state"), "Created");
  assert_int_equal(json_integer_value(json_object_get(v, "attempt")), 2);
  json_t *t = json_object_get(v, "transitions");
  const char *why = str_of(json_array_get(t, json_array_size(t) - 1), "reason");
  if (strstr(why, "runner stopped") == NULL) { /* else not before a delay */
    dump_logs(e);
    fail_msg("put back as: %s", why);
  }
  json_decref(v);
  int b;
  char bid[80];
  json_decref(finish_on(e, eid, "rb", &b, bid));
  unsigned char *seen = calloc(800, 1);
  mark_ids(e, a, "w1", seen, 800);
  mark_ids(e, b, "w1", seen, 800);
  assert_all_seen(seen, 400);
  free(seen);
}

/* An argument runs only the tests matching it (a cmocka filter pattern). */
/* ---- Alerts on remotely run works ---------------------------------------- */

/* The work's events with verb (a count). */
static size_t count_verb(struct env *e, const char *work, const char *verb) {
  json_t *all = work_events(e, work);
  size_t i, k = 0;
  const json_t *ev;
  json_array_foreach(all, i, ev) k += strcmp(str_of(ev, "verb"), verb) == 0;
  json_decref(all);
  return k;
}

static void test_error_rate_alert_remote(void **state) {
  cr_fake_http *rx = NULL;
  assert_int_equal(cr_fake_http_start(cr_fake_http_no_content, NULL, &rx), 0);
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "  - id: bad\n"
           "    provider: behave\n"
           "    authorization: none\n"
           "    runner: { labels: [edge] }\n"
           "    config: { mode: config_error }\n"
           "alerts:\n"
           "  - id: rate\n"
           "    channel: { webhook: { url: \"%s/alert\" } }\n"
           "    error_rate: { threshold: 30, window: 24h, min_executions: 2, "
           "works: [bad] }\n",
           cr_fake_http_url(rx));
  struct env *e = *state = env_new("3s", yaml);
  int a = runner(e, "ra", 1);
  char aid[80];
  runner_id(e, a, aid, sizeof aid);
  for (int k = 0; k < 3; k++) {
    json_t *v = wait_final(e, run_now(e, "bad"), 60);
    assert_string_equal(str_of(v, "state"), "Failed");
    assert_string_equal(str_of(v, "runner"), aid); /* not the server's */
    json_decref(v);
  }
  size_t alerted = 0;
  for (int i = 0; i < 100 && (alerted = count_verb(e, "bad", "alerted")) == 0;
       i++)
    usleep(100 * 1000); /* the alerts scan runs at least once a second */
  assert_int_equal(alerted, 1); /* once per breach, not per failure */
  size_t posts = 0;
  for (int i = 0; i < 100 && (posts = cr_fake_http_count(rx)) == 0; i++)
    usleep(100 * 1000);
  assert_int_equal(posts, 1);
  assert_string_equal(cr_fake_http_request_at(rx, 0)->path, "/alert");
  cr_fake_http_stop(rx);
}

int main(int argc, char **argv) {
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_kill9_mid_sync, teardown),
      cmocka_unit_test_teardown(test_sigstop_past_lease, teardown),
      cmocka_unit_test_teardown(test_fault_proxy, teardown),
      cmocka_unit_test_teardown(test_race_routing_revoke, teardown),
      cmocka_unit_test_teardown(test_revoked_poll_no_reclaim, teardown),
      cmocka_unit_test_teardown(test_server_restart, teardown),
      cmocka_unit_test_teardown(test_runner_sigterm_releases, teardown),
      cmocka_unit_test_teardown(test_error_rate_alert_remote, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
