/* test_cluster.c: several `connrun serve` instances on one store (here two
 * real processes on one SQLite file): each duty is held by one instance
 * (the first), the other holds none; kill -9 of the holder hands every
 * duty to the other within seconds, with an `instance claimed` event
 * naming whom they came from; a clean stop releases the duties at once;
 * `connrun cluster` shows it all from the store and from a server.
 * Subscriptions are spread over the instances (three each of six), every
 * event reaches every subscription in order, and after a kill -9 the
 * survivor delivers the dead one's subscriptions too. An event alert sends
 * one notification per event across a kill -9 of the alerts duty's holder
 * (the next holder resumes at the stored cursor). An object created
 * or deleted through one instance's API is seen at once there and within a
 * tick or two through the other's. */
#include "testutil.h"

#include "fake_http.h"
#include "pgserver.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_fixture.h"
#include "events/events.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "util/clock.h"

#define TOKEN "cluster-test-token-1f0a"
#define WTOKEN "cluster-write-token-8c3d"
#define N_DUTIES 6

/* --pg: the same on a private PostgreSQL server (host.store). */
static int g_use_pg;
static struct cr_pgserver g_pg;

struct env {
  char *dir, *cfg, data[600];
  char store[600]; /* what cr_store_open opens: data, or the URL */
};

/* Writes the configuration with extra (YAML appended, may be "") into
 * e->cfg (replacing it). */
static void env_config(struct env *e, const char *extra) {
  char store_yaml[700] = "";
  if (g_use_pg)
    snprintf(store_yaml, sizeof store_yaml, "  store: \"%s\"\n", e->store);
  char yaml[4096];
  snprintf(yaml, sizeof yaml,
           "host:\n  data_dir: %s\n%s  listen: 127.0.0.1:0\n"
           "  health_check_interval: 1h\n"
           "  api_tokens: [{name: ops, token: \"" TOKEN "\", scopes: [read]},\n"
           "    {name: dev, token: \"" WTOKEN "\", scopes: [read, write]}]\n"
           "%s",
           e->data, store_yaml, extra);
  free(e->cfg);
  e->cfg = cr_test_write_file(e->dir, "connrun.yaml", yaml);
}

/* extra: YAML appended to the configuration (may be ""). */
static void env_init(struct env *e, const char *extra) {
  e->dir = cr_test_mkdtemp("cluster");
  snprintf(e->data, sizeof e->data, "%s/data", e->dir);
  snprintf(e->store, sizeof e->store, "%s", e->data);
  if (g_use_pg) {
    static int n;
    char name[32];
    snprintf(name, sizeof name, "c%d", ++n);
    assert_int_equal(
        cr_pgserver_createdb(&g_pg, name, e->store, sizeof e->store), 0);
  }
  e->cfg = NULL;
  env_config(e, extra);
}

static void env_free(struct env *e) {
  cr_test_rmtree(e->dir);
  free(e->dir);
  free(e->cfg);
}

static struct cr_test_proc start(struct env *e, const char *log) {
  char *argv[] = {CR_CONNRUN_BIN, "serve", "-c", e->cfg, NULL};
  struct cr_test_proc p = cr_test_spawn(e->dir, log, argv, NULL);
  assert_true(cr_test_serve_port(&p) > 0);
  return p;
}

/* `connrun cluster --json` against the server on port, parsed. */
static json_t *cluster_remote(int port) {
  char url[64], *out = NULL;
  snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
  char *argv[] = {CR_CONNRUN_BIN, "cluster", "--server", url, "--json", NULL};
  char *env[] = {"CONNRUN_TOKEN=" TOKEN, NULL};
  assert_int_equal(cr_test_run(argv, env, &out), 0);
  json_t *v = json_loads(out, 0, NULL);
  if (v == NULL)
    print_error("%s\n", out);
  free(out);
  assert_non_null(v);
  return v;
}

/* The instance whose duties list has n entries, or NULL. */
static const json_t *instance_with(const json_t *v, size_t n) {
  size_t i;
  const json_t *x;
  json_array_foreach(json_object_get(v, "instances"), i, x) {
    if (json_array_size(json_object_get(x, "duties")) == n)
      return x;
  }
  return NULL;
}

static int pid_of(const json_t *inst) {
  return (int)json_integer_value(json_object_get(inst, "pid"));
}

static void test_failover(void **state) {
  (void)state;
  struct env e;
  env_init(&e, "");
  struct cr_test_proc a = start(&e, "a.log");
  struct cr_test_proc b = start(&e, "b.log");
  int port_b = cr_test_serve_port(&b);
  /* a came first: it holds every duty, b none. */
  json_t *v = NULL;
  for (int i = 0; i < 100; i++) { /* until b's first heartbeat shows */
    json_decref(v);
    v = cluster_remote(port_b);
    if (json_array_size(json_object_get(v, "instances")) == 2)
      break;
    usleep(100 * 1000);
  }
  assert_int_equal(json_array_size(json_object_get(v, "instances")), 2);
  assert_int_equal(json_array_size(json_object_get(v, "duties")), N_DUTIES);
  assert_non_null(instance_with(v, N_DUTIES));
  assert_int_equal(pid_of(instance_with(v, N_DUTIES)), a.pid);
  assert_int_equal(pid_of(instance_with(v, 0)), b.pid);
  char a_id[128];
  snprintf(
      a_id, sizeof a_id, "%s",
      json_string_value(json_object_get(instance_with(v, N_DUTIES), "id")));
  json_decref(v);

  /* kill -9 a: b takes every duty over once a's leases ran out. */
  int64_t t0 = cr__now_ms();
  kill(a.pid, SIGKILL);
  assert_true(cr_test_proc_wait(&a, 10000) >= 0);
  free(a.log_path);
  const json_t *holder = NULL;
  v = NULL;
  for (int i = 0; i < 150 && holder == NULL; i++) { /* 15 s at most */
    json_decref(v);
    v = cluster_remote(port_b);
    holder = instance_with(v, N_DUTIES);
    if (holder != NULL && pid_of(holder) != b.pid)
      holder = NULL; /* a's leases have not run out yet */
    if (holder == NULL)
      usleep(100 * 1000);
  }
  assert_non_null(holder);
  assert_int_equal(pid_of(holder), b.pid);
  int64_t took = cr__now_ms() - t0;
  print_message("failover: every duty with the other instance %lld ms after "
                "kill -9\n",
                (long long)took);
  assert_true(took < 10000);
  json_decref(v);
  assert_true(cr_test_wait_log(&b, "took [", 1));

  /* The takeover is an event naming where each duty came from. */
  cr_store *s = NULL;
  char err[256];
  assert_int_equal(cr_store_open(e.store, &s, err, sizeof err), 0);
  struct cr_event_filter f = {.subject_type = "instance", .limit = 100};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  int from_a = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(ev[i].verb, "claimed") == 0 && strstr(ev[i].data_json, a_id))
      from_a++;
  cr_event_rec_free_list(ev, n);
  assert_int_equal(from_a, 1); /* one event for the eight duties */

  /* A clean stop releases the duties: their leases end at once. */
  assert_int_equal(cr_test_proc_stop(&b), 0);
  struct cr_duty_rec *d = NULL;
  assert_int_equal(cr_store_duty_list(s, &d, &n), 0);
  assert_int_equal(n, N_DUTIES);
  for (size_t i = 0; i < n; i++)
    assert_true(d[i].expires_at <= cr__now_ms());
  cr_duty_rec_free_list(d, n);
  cr_store_close(s);

  /* From the store: no instance holds anything now. */
  char *out = NULL;
  char *argv[] = {CR_CONNRUN_BIN, "cluster", "-c", e.cfg, NULL};
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "scheduler"));
  assert_non_null(strstr(out, "expired"));
  free(out);
  env_free(&e);
}

/* ---- Subscriptions spread over the instances ----------------------------- */

#define N_SUBS 6
#define N_EVENTS 60
static const char *const subs[N_SUBS] = {"hook-a", "hook-b", "hook-c",
                                         "hook-d", "hook-e", "hook-f"};

/* The subscription duties instance x holds. */
static size_t sub_duties(const json_t *x) {
  size_t i, n = 0;
  const json_t *v;
  json_array_foreach(json_object_get(x, "duties"), i, v) {
    n += strncmp(json_string_value(v), "subscription:", 13) == 0;
  }
  return n;
}

/* 1 when each of the two instances holds N_SUBS / 2 subscriptions. */
static int spread(int port) {
  json_t *v = cluster_remote(port);
  const json_t *inst = json_object_get(v, "instances");
  int ok = json_array_size(inst) == 2 &&
           sub_duties(json_array_get(inst, 0)) == N_SUBS / 2 &&
           sub_duties(json_array_get(inst, 1)) == N_SUBS / 2;
  json_decref(v);
  return ok;
}

/* 1 when every path got events first..last at least once; fails the test
 * when one was first seen out of id order. */
static int all_arrived(cr_fake_http *rx, int64_t first, int64_t last) {
  for (int k = 0; k < N_SUBS; k++) {
    char path[32];
    snprintf(path, sizeof path, "/%s", subs[k]);
    int64_t next = first; /* the next id expected first-time */
    for (size_t i = 0; i < cr_fake_http_count(rx); i++) {
      const struct cr_fake_http_request *r = cr_fake_http_request_at(rx, i);
      const char *wid = cr_fake_http_header(r, "webhook-id");
      if (strcmp(r->path, path) != 0 || wid == NULL)
        continue;
      int64_t id = strtoll(wid + 4, NULL, 10); /* evt_<id> */
      if (id == next)
        next++;
      else if (id > next) {
        print_error("%s: event %lld before %lld\n", path, (long long)id,
                    (long long)next);
        fail();
      }
    }
    if (next <= last)
      return 0;
  }
  return 1;
}

static void emit_events(const char *data, int64_t *first, int64_t *last) {
  cr_store *s = NULL;
  char err[256];
  assert_int_equal(cr_store_open(data, &s, err, sizeof err), 0);
  assert_int_equal(cr_store_begin(s), 0);
  for (int i = 0; i < N_EVENTS; i++) {
    json_t *d = json_pack("{s:i}", "i", i);
    int64_t id = 0;
    assert_int_equal(cr_event_emit(s, "work", "w", "synced", "test", d, &id),
                     0);
    json_decref(d);
    if (i == 0)
      *first = id;
    *last = id;
  }
  assert_int_equal(cr_store_commit(s), 0);
  cr_store_close(s);
}

static int wait_arrived(cr_fake_http *rx, int64_t first, int64_t last) {
  for (int i = 0; i < 200; i++) { /* 20 s */
    if (all_arrived(rx, first, last))
      return 1;
    usleep(100 * 1000);
  }
  return 0;
}

static void test_subscriptions_spread(void **state) {
  (void)state;
  cr_fake_http *rx = NULL;
  assert_int_equal(cr_fake_http_start(cr_fake_http_no_content, NULL, &rx), 0);
  char extra[2048];
  size_t off = (size_t)snprintf(extra, sizeof extra, "subscriptions:\n");
  for (int k = 0; k < N_SUBS; k++)
    off += (size_t)snprintf(
        extra + off, sizeof extra - off,
        "  - id: %s\n    workflow: webhook_system_events\n"
        "    config: { system_event_type: synced, webhook_url: \"%s/%s\" }\n"
        "    delivery: { max_in_flight: 1 }\n",
        subs[k], cr_fake_http_url(rx), subs[k]);
  struct env e;
  env_init(&e, extra);
  struct cr_test_proc a = start(&e, "a.log");
  struct cr_test_proc b = start(&e, "b.log");
  int port_b = cr_test_serve_port(&b);
  int ok = 0;
  for (int i = 0; i < 150 && !ok; i++) /* hand-overs take a tick or two */
    if (!(ok = spread(port_b)))
      usleep(100 * 1000);
  assert_true(ok);
  int64_t first = 0, last = 0, first2 = 0, last2 = 0;
  emit_events(e.store, &first, &last);
  assert_true(wait_arrived(rx, first, last));

  kill(a.pid, SIGKILL); /* its three subscriptions go to b */
  assert_true(cr_test_proc_wait(&a, 10000) >= 0);
  free(a.log_path);
  emit_events(e.store, &first2, &last2);
  assert_true(wait_arrived(rx, first, last2));
  assert_int_equal(cr_test_proc_stop(&b), 0);
  cr_fake_http_stop(rx);
  env_free(&e);
}

/* ---- Alerts across a failover ------------------------------------------- */

/* The requests rx got on path. */
static size_t count_path(cr_fake_http *rx, const char *path) {
  size_t k = 0;
  for (size_t i = 0; i < cr_fake_http_count(rx); i++)
    k += strcmp(cr_fake_http_request_at(rx, i)->path, path) == 0;
  return k;
}

/* Waits (20 s at most) until rx got want requests on path; then 1.5 s more
 * for any extra one; returns the count. */
static size_t settle_count(cr_fake_http *rx, const char *path, size_t want) {
  for (int i = 0; i < 200 && count_path(rx, path) < want; i++)
    usleep(100 * 1000);
  usleep(1500 * 1000);
  return count_path(rx, path);
}

/* An alert posting every `synced` event to rx's /alert, as YAML. */
static void synced_alert(char *buf, size_t len, cr_fake_http *rx) {
  snprintf(buf, len,
           "alerts:\n"
           "  - id: synced-hook\n"
           "    channel: { webhook: { url: \"%s/alert\" } }\n"
           "    events: { system_event_type: synced }\n",
           cr_fake_http_url(rx));
}

static void test_alerts_failover(void **state) {
  (void)state;
  cr_fake_http *rx = NULL;
  assert_int_equal(cr_fake_http_start(cr_fake_http_no_content, NULL, &rx), 0);
  char extra[1024];
  synced_alert(extra, sizeof extra, rx);
  struct env e;
  env_init(&e, extra);
  struct cr_test_proc a = start(&e, "a.log");
  struct cr_test_proc b = start(&e, "b.log");
  int64_t first = 0, last = 0;
  emit_events(e.store, &first, &last);
  assert_int_equal(settle_count(rx, "/alert", N_EVENTS), N_EVENTS);
  kill(a.pid, SIGKILL); /* b takes the alerts duty over */
  assert_true(cr_test_proc_wait(&a, 10000) >= 0);
  free(a.log_path);
  emit_events(e.store, &first, &last);
  /* Each event once: b resumes at a's cursor, not at its own start. */
  assert_int_equal(settle_count(rx, "/alert", 2 * N_EVENTS), 2 * N_EVENTS);
  assert_int_equal(cr_test_proc_stop(&b), 0);
  cr_fake_http_stop(rx);
  env_free(&e);
}

/* Rules added to a running store fire on the events from then on, not on
 * those stored while there were none. */
static void test_alerts_added_later(void **state) {
  (void)state;
  cr_fake_http *rx = NULL;
  assert_int_equal(cr_fake_http_start(cr_fake_http_no_content, NULL, &rx), 0);
  struct env e;
  env_init(&e, "");
  struct cr_test_proc a = start(&e, "a.log");
  int64_t first = 0, last = 0;
  emit_events(e.store, &first, &last); /* no rules yet */
  usleep(2500 * 1000); /* without rules the cursor follows within 1 s */
  assert_int_equal(cr_test_proc_stop(&a), 0);
  char extra[1024];
  synced_alert(extra, sizeof extra, rx);
  env_config(&e, extra);
  a = start(&e, "a2.log");
  emit_events(e.store, &first, &last);
  assert_int_equal(settle_count(rx, "/alert", N_EVENTS), N_EVENTS);
  assert_int_equal(cr_test_proc_stop(&a), 0);
  cr_fake_http_stop(rx);
  env_free(&e);
}

/* ---- Objects created through the API reach every instance -------------- */

static long call_at(int port, const char *method, const char *path,
                    const char *body) {
  struct cr_api_fixture f;
  memset(&f, 0, sizeof f);
  snprintf(f.base, sizeof f.base, "http://127.0.0.1:%d", port);
  return cr_api_call(&f, WTOKEN, method, path, body, NULL, NULL, NULL);
}

/* Polls GET path on port (10 s at most) until it answers want; the
 * milliseconds it took, or -1. */
static int64_t await_status(int port, const char *path, long want) {
  int64_t t0 = cr__now_ms();
  for (int i = 0; i < 200; i++) {
    if (call_at(port, "GET", path, NULL) == want)
      return cr__now_ms() - t0;
    usleep(50 * 1000);
  }
  return -1;
}

static void test_api_objects_everywhere(void **state) {
  (void)state;
  struct env e;
  env_init(&e, "");
  struct cr_test_proc a = start(&e, "a.log");
  struct cr_test_proc b = start(&e, "b.log");
  int port_a = cr_test_serve_port(&a), port_b = cr_test_serve_port(&b);
  const char *path = "/v1/subscriptions/from-a";
  assert_int_equal(call_at(port_b, "GET", path, NULL), 404);
  assert_int_equal(
      call_at(port_a, "POST", "/v1/subscriptions",
              "{\"id\": \"from-a\", \"workflow\": \"webhook_system_events\", "
              "\"config\": {\"system_event_type\": \"synced\", "
              "\"webhook_url\": \"http://127.0.0.1:9/x\"}}"),
      201);
  assert_int_equal(call_at(port_a, "GET", path, NULL), 200); /* at once */
  int64_t seen = await_status(port_b, path, 200);
  print_message("created through one instance, seen through the other after "
                "%lld ms\n",
                (long long)seen);
  assert_true(seen >= 0 && seen < 5000);
  assert_int_equal(call_at(port_b, "DELETE", path, NULL), 204);
  assert_int_equal(call_at(port_b, "GET", path, NULL), 404); /* at once */
  int64_t gone = await_status(port_a, path, 404);
  assert_true(gone >= 0 && gone < 5000);
  assert_int_equal(cr_test_proc_stop(&a), 0);
  assert_int_equal(cr_test_proc_stop(&b), 0);
  env_free(&e);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_failover),
      cmocka_unit_test(test_subscriptions_spread),
      cmocka_unit_test(test_api_objects_everywhere),
      cmocka_unit_test(test_alerts_failover),
      cmocka_unit_test(test_alerts_added_later)};
  g_use_pg = argc > 1 && strcmp(argv[1], "--pg") == 0;
  if (g_use_pg && cr_pgserver_start(&g_pg, 0) != 0) {
    fprintf(stderr, "PostgreSQL: %s\n", g_pg.error);
    return 1;
  }
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  if (g_use_pg)
    cr_pgserver_stop(&g_pg);
  return rc;
}
