/* bench_remote.c: remote runners on loopback. (1) No-op executions end to
 * end through 8 `connrun runner` processes (claims by long poll, reports
 * over HTTP, every transition and event stored by the server), next to the
 * same executions run by the server's own local runner in the same run.
 * (2) Claim latency, Created -> Pending, with the runners waiting in long
 * polls: executions started one at a time through the API. (3) 1,000 idle
 * runners, each holding a long poll open: the server's RSS and CPU.
 *
 * Usage: bench_remote; the connrun binary and the behave test plugin are
 * found in the build tree. Prints figure, value, target, ceiling. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define TOKEN "bench-remote-ops-token"
#define REG "bench-remote-registration"
#define N_WORKS 4000
#define N_RUNNERS 8
#define N_LATENCY 200
#define N_IDLE 1000

static char g_dir[4096];

/* ---- Processes ----------------------------------------------------------- */

static pid_t spawn(const char *log, char *const argv[]) {
  return bench_spawn(g_dir, log, argv);
}

static void stop(pid_t pid) { bench_stop(pid); }

static int free_port(void) {
  /* Ports from a range seeded by the pid; the server refuses a busy one
   * and the bench says so. */
  return 20000 + (int)(getpid() % 10000); /* below the ephemeral range */
}

static void write_config(const char *name, int port, int labelled,
                         int n_works) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "w");
  fprintf(
      f,
      "host:\n  data_dir: ./data-%s-%d\n  plugin_dirs: [\"%s/test-plugins\"]\n"
      "  listen: 127.0.0.1:%d\n  health_check_interval: 1d\n"
      "  api: { max_connections: 4096, threads: 2 }\n"
      "  runner: { concurrency: %d, isolation: inline }\n"
      "  api_tokens: [{name: ops, token: %s, scopes: [read, write, "
      "admin]}]\n"
      "  runner_registration_tokens: [{name: bench, token: %s, labels: "
      "[bench]}]\n"
      "authorizations:\n  - {id: none, provider: behave, method: none}\n"
      "works:\n",
      labelled ? "remote" : "local", port, CR_BINARY_DIR, port,
      labelled ? 1 : 8, TOKEN, REG);
  for (int i = 0; i < n_works; i++)
    fprintf(f,
            "  - {id: w%04d, provider: behave, authorization: none, "
            "isolation: inline, schedule: {every: 1d}, %s"
            "config: {mode: noop}}\n",
            i, labelled ? "runner: {labels: [bench]}, " : "");
  fclose(f);
}

static pid_t serve(const char *cfg, const char *log) {
  char c[4200], l[4200];
  snprintf(c, sizeof c, "%s/%s", g_dir, cfg);
  snprintf(l, sizeof l, "%s/%s", g_dir, log);
  char *argv[] = {CR_BINARY_DIR "/bin/connrun", "serve", "-c", c, NULL};
  return spawn(l, argv);
}

static pid_t runner(int i, int port) {
  char suffix[16];
  snprintf(suffix, sizeof suffix, "%d", i);
  return bench_runner(CR_BINARY_DIR, g_dir, suffix, i, port, REG);
}

/* ---- HTTP ---------------------------------------------------------------- */

static long call(int port, const char *method, const char *path,
                 const char *token, const char *body, json_t **out) {
  char url[512], auth[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  CURL *c = curl_easy_init();
  struct curl_slist *h =
      curl_slist_append(NULL, "Content-Type: application/json");
  if (token != NULL) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
  }
  struct bench_body b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_body_keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  long st = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  if (out != NULL)
    *out = b.p ? json_loads(b.p, 0, NULL) : NULL;
  free(b.p);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return st;
}

static int wait_ready(int port, pid_t pid) {
  for (int i = 0; i < 600; i++) { /* 60 s */
    if (call(port, "GET", "/readyz", NULL, NULL, NULL) == 200)
      return 1;
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return 0;
    usleep(100 * 1000);
  }
  return 0;
}

/* ---- Store reads (the server's SQLite file, read-only) ------------------- */

static int g_port_of[2]; /* local, remote: their data directories */

static sqlite3 *open_db(const char *which) {
  char path[4200];
  snprintf(path, sizeof path, "%s/data-%s-%d/connrun.db", g_dir, which,
           g_port_of[strcmp(which, "remote") == 0]);
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return NULL;
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

static long long qint(sqlite3 *db, const char *sql) {
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

static const char COUNT_DONE[] =
    "SELECT count(*) FROM executions WHERE state = 'completed'";

/* Waits (bounded: 120 s) until every execution completed, looking every
 * 100 ms (a count of 4,000 rows: more often it would take CPU from the
 * server it measures); returns the
 * seconds from the first completion to the last (the store's times), or -1.
 * Start-up (configuration, scheduling, registration) stays out of it. */
static double drain(const char *which) {
  sqlite3 *db = NULL;
  for (int i = 0; i < 1200; i++) {
    if (db == NULL)
      db = open_db(which);
    if (qint(db, COUNT_DONE) >= N_WORKS) {
      long long ms = qint(db, "SELECT max(updated_at) - min(updated_at) FROM "
                              "executions WHERE state = 'completed'");
      sqlite3_close(db);
      return ms > 0 ? (double)ms / 1000 : -1;
    }
    usleep(100 * 1000);
  }
  sqlite3_close(db);
  return -1;
}

/* ---- Figure 1 and 2 ------------------------------------------------------ */

static double local_rate(int port) {
  g_port_of[0] = port;
  write_config("local.yaml", port, 0, N_WORKS);
  pid_t s = serve("local.yaml", "serve-local.log");
  double took = wait_ready(port, s) ? drain("local") : -1;
  stop(s);
  return took > 0 ? N_WORKS / took : 0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Created -> Pending of executions started one at a time (ms). */
static void claim_latency(int port) {
  double *ms = calloc(N_LATENCY, sizeof *ms);
  size_t n = 0;
  for (int i = 0; i < N_LATENCY; i++) {
    char path[64];
    snprintf(path, sizeof path, "/v1/works/w%04d/runs", i);
    call(port, "POST", path, TOKEN, "{}", NULL);
    usleep(5 * 1000);
  }
  usleep(500 * 1000);
  sqlite3 *db = open_db("remote");
  sqlite3_stmt *st = NULL;
  const char *sql =
      "SELECT p.at - c.at FROM execution_transitions c JOIN "
      "execution_transitions p ON p.execution_id = c.execution_id AND "
      "p.from_state = 'created' AND p.to_state = 'pending' WHERE c.to_state "
      "= 'created' AND c.from_state IS NULL AND c.execution_id > ?1";
  if (db && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, N_WORKS);
    while (sqlite3_step(st) == SQLITE_ROW && n < N_LATENCY)
      ms[n++] = (double)sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (n == 0) {
    printf("claim latency: no sample\n");
    free(ms);
    return;
  }
  qsort(ms, n, sizeof *ms, cmp_d);
  bench_row("claim latency Created -> Pending, p50 (long polls)", ms[n / 2],
            "ms", "", "");
  bench_row("claim latency Created -> Pending, p99 (long polls)",
            ms[(size_t)((double)n * 0.99)], "ms", "< 50 ms", "");
  free(ms);
}

static void remote_figures(int port, double local) {
  g_port_of[1] = port;
  write_config("remote.yaml", port, 1, N_WORKS);
  pid_t s = serve("remote.yaml", "serve-remote.log");
  pid_t r[N_RUNNERS] = {0};
  if (!wait_ready(port, s)) {
    printf("bench_remote: the server did not start (port %d busy?)\n", port);
    stop(s);
    return;
  }
  for (int i = 0; i < N_RUNNERS; i++)
    r[i] = runner(i, port);
  double took = drain("remote");
  char ceiling[96];
  snprintf(ceiling, sizeof ceiling, "in-process (local runner) %.0f/s", local);
  bench_row("no-op executions through 8 remote runners",
            took > 0 ? N_WORKS / took : 0, "/s", ">= 2,000/s", ceiling);
  claim_latency(port);
  for (int i = 0; i < N_RUNNERS; i++)
    stop(r[i]);
  stop(s);
}

/* ---- Figure 3: idle runners --------------------------------------------- */

static double cpu_s(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  unsigned long ut = 0, st = 0;
  if (f != NULL) {
    int rc = fscanf(f,
                    "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                    "%lu %lu",
                    &ut, &st);
    (void)rc;
    fclose(f);
  }
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

struct idle {
  char url[160], auth[160];
  struct curl_slist *h;
  CURL *c;
  struct bench_body b;
};

static void idle_figure(int port) {
  write_config("idle.yaml", port, 1, 10);
  pid_t s = serve("idle.yaml", "serve-idle.log");
  if (!wait_ready(port, s)) {
    stop(s);
    return;
  }
  struct idle *ids = calloc(N_IDLE, sizeof *ids);
  CURLM *m = curl_multi_init();
  int registered = 0;
  for (int i = 0; i < N_IDLE; i++) {
    json_t *out = NULL;
    char body[160];
    snprintf(body, sizeof body,
             "{\"registration_token\": \"%s\", \"name\": \"idle-%d\"}", REG, i);
    if (call(port, "POST", "/v1/runners/register", NULL, body, &out) != 201) {
      json_decref(out);
      break;
    }
    struct idle *x = &ids[i];
    snprintf(x->url, sizeof x->url, "http://127.0.0.1:%d/v1/runners/%s/claims",
             port, json_string_value(json_object_get(out, "runner_id")));
    snprintf(x->auth, sizeof x->auth, "Authorization: Bearer %s",
             json_string_value(json_object_get(out, "token")));
    json_decref(out);
    x->h = curl_slist_append(NULL, "Content-Type: application/json");
    x->h = curl_slist_append(x->h, x->auth);
    x->c = curl_easy_init();
    curl_easy_setopt(x->c, CURLOPT_URL, x->url);
    curl_easy_setopt(x->c, CURLOPT_HTTPHEADER, x->h);
    curl_easy_setopt(x->c, CURLOPT_POSTFIELDS,
                     "{\"providers\": [\"behave\"], \"slots\": 1, "
                     "\"wait_ms\": 30000}");
    curl_easy_setopt(x->c, CURLOPT_WRITEFUNCTION, bench_body_keep);
    curl_easy_setopt(x->c, CURLOPT_WRITEDATA, &x->b);
    curl_multi_add_handle(m, x->c);
    registered++;
  }
  long rss0 = bench_rss_kib(s);
  int running = 0;
  double t0 = bench_now_s();
  while (bench_now_s() - t0 < 3) { /* every poll reaches the server and waits */
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double c0 = cpu_s(s), w0 = bench_now_s();
  while (bench_now_s() - w0 < 10) { /* the measured idle window */
    curl_multi_perform(m, &running);
    curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  double cpu = (cpu_s(s) - c0) / (bench_now_s() - w0) * 100;
  long rss = bench_rss_kib(s);
  char note[96];
  snprintf(note, sizeof note, "%d runners, %d polls open; RSS before %ld KiB",
           registered, running, rss0);
  bench_row("server RSS, 1,000 idle runners in long polls", (double)rss / 1024,
            "MiB", "< 64 MiB", note);
  bench_row("server CPU, 1,000 idle runners in long polls", cpu, "%",
            "< 5% of a core", "");
  for (int i = 0; i < registered; i++) {
    curl_multi_remove_handle(m, ids[i].c);
    curl_easy_cleanup(ids[i].c);
    curl_slist_free_all(ids[i].h);
    free(ids[i].b.p);
  }
  curl_multi_cleanup(m);
  free(ids);
  stop(s);
}

int main(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 8192) {
    rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  snprintf(g_dir, sizeof g_dir, "/tmp/connrun-bench-remote-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return 1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  printf("%-52s %12s %-6s %-14s %s\n", "figure", "value", "", "target",
         "ceiling / note");
  int port = free_port();
  double local = local_rate(port);
  bench_row("no-op executions, the server's local runner", local, "/s", "",
            "same works, inline, 8 slots");
  remote_figures(port + 1, local);
  idle_figure(port + 2);
  curl_global_cleanup();
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_remote: could not remove %s\n", g_dir);
  return 0;
}
