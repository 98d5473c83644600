/* bench_api.c: the REST API's figures, each printed next to its target and
 * the ceiling measured in the same run:
 *
 *   1. GET /v1/works/{id} at 16 connections with wrk against a real
 *      `connrun serve`, next to a bare libmicrohttpd handler started here
 *      (same mode: internal thread pool of 2 epoll loops) answering the same
 *      bytes: requests/s of both and the ratio (target >= 50%), in three
 *      interleaved pairs of 3 s runs, the median pair printed with all three
 *      ratios;
 *   2. a daemon with 10,000 authorizations (the sendgrid plugin, its
 *      base_url a loopback fake provider started here that answers
 *      GET /v3/scopes) and 10,000 works (disabled, so nothing runs):
 *        - the start-up health checks of all 10,000 against the fake: time
 *          from exec until the store holds 10,000 checks (target <= 1 s);
 *        - GET /v1/authorizations?limit=100 (a page with health) from a
 *          keep-alive libcurl client, 300 pages at random offsets: p50, p99
 *          (target p99 < 20 ms);
 *        - the daemon's idle RSS afterwards (target <= 40 MiB);
 *   3. serving the API must not slow the engine: bench_exec's inline no-op
 *      executions and bench_delivery's throughput, quiet and then while wrk
 *      hammers GET /v1/works/{id} of the daemon of figure 2 (16
 *      connections): on this 2-core machine that is CPU taken by the API's
 *      threads and wrk, the interference an API client really causes (the
 *      benchmarks use stores of their own, so no lock is shared);
 *   4. a daemon with 50 plugins (bench/many_plugin.c built 50 times with the
 *      system compiler) and an empty configuration: time from exec until
 *      GET /readyz answers 200 (target <= 100 ms).
 *
 * Loopback only; every loop is bounded. wrk comes from Debian (`apt-get
 * install wrk`); without it figure 1 says so and is skipped. Exits 0 unless
 * something fails outright. Usage: bench_api [N_AUTHS] (default 10000).
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include "store/store.h"

#define TOKEN "bench-api-token-7d1e"
#define SCOPES_BODY "{\"scopes\":[\"marketing.read\",\"mail.send\"]}"

/* ---- A bare libmicrohttpd server answering fixed bytes ---- */

struct fixed {
  const char *body;
  size_t len;
};

static enum MHD_Result on_fixed(void *cls, struct MHD_Connection *c,
                                const char *url, const char *method,
                                const char *version, const char *up,
                                size_t *up_size, void **con_cls) {
  (void)url, (void)method, (void)version, (void)up, (void)up_size;
  if (*con_cls == NULL) {
    *con_cls = (void *)1;
    return MHD_YES;
  }
  const struct fixed *f = cls;
  struct MHD_Response *r = MHD_create_response_from_buffer(
      f->len, (void *)f->body, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r);
  return ok;
}

static struct MHD_Daemon *fixed_server(struct fixed *f, int threads,
                                       int *port) {
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_fixed,
      f, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
      MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_END);
  const union MHD_DaemonInfo *i =
      d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  *port = i ? i->port : 0;
  return d;
}

/* ---- The daemon under test ---- */

static char *write_config(const char *dir, int n, int fake_port) {
  char path[4096];
  snprintf(path, sizeof path, "%s/c.yaml", dir);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "host:\n  data_dir: ./data\n  plugin_dirs: [\"%s/plugins\"]\n"
          "  listen: 127.0.0.1:0\n  health_check_interval: 1d\n"
          "  api_tokens: [{name: bench, token: %s, scopes: [read]}]\n"
          "authorizations:\n",
          CR_BINARY_DIR, TOKEN);
  for (int i = 0; i < n; i++)
    fprintf(f,
            "  - {id: a%05d, provider: sendgrid, method: api_key, owner: "
            "ops, credentials: {api_key: SG.bench-key, base_url: "
            "\"http://127.0.0.1:%d\"}}\n",
            i, fake_port);
  fprintf(f, "works:\n");
  for (int i = 0; i < n; i++)
    fprintf(f,
            "  - {id: w%05d, provider: sendgrid, authorization: a%05d, "
            "enabled: false, config: {streams: [contacts]}}\n",
            i, i);
  fclose(f);
  return strdup(path);
}

static int64_t health_checks(const char *dir) {
  char data[4096];
  snprintf(data, sizeof data, "%s/data", dir);
  cr_store *s = NULL;
  struct cr_store_counts c = {0};
  if (cr_store_open(data, &s, NULL, 0) == 0)
    cr_store_counts(s, &c);
  cr_store_close(s);
  return c.auth_health;
}

/* Seconds from the first health check recorded to the last (the store's
 * times): the checks themselves, without the daemon's start-up. */
static double health_span(const char *dir) {
  char path[4200];
  snprintf(path, sizeof path, "%s/data/connrun.db", dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  double s = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db,
                         "SELECT max(checked_at) - min(checked_at) FROM "
                         "auth_health",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    s = (double)sqlite3_column_int64(st, 0) / 1000;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return s;
}

/* ---- Clients ---- */

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  (void)p;
  size_t *total = ud;
  *total += s * n;
  return s * n;
}

static size_t keep(char *p, size_t s, size_t n, void *ud) {
  char **out = ud;
  size_t have = *out ? strlen(*out) : 0;
  char *g = realloc(*out, have + s * n + 1);
  memcpy(g + have, p, s * n);
  g[have + s * n] = '\0';
  *out = g;
  return s * n;
}

static char *get_body(int port, const char *path) {
  char url[256], *out = NULL;
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  CURL *c = curl_easy_init();
  struct curl_slist *h =
      curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  curl_easy_perform(c);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return out;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void page_latency(int port, int n_auths) {
  enum { N = 300 };
  double lat[N];
  CURL *c = curl_easy_init();
  struct curl_slist *h =
      curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
  size_t bytes = 0;
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &bytes);
  srand(42);
  for (int i = 0; i < N; i++) {
    char url[256];
    int after = rand() % (n_auths > 100 ? n_auths - 100 : 1);
    snprintf(url, sizeof url,
             "http://127.0.0.1:%d/v1/authorizations?limit=100&after=a%05d",
             port, after);
    curl_easy_setopt(c, CURLOPT_URL, url);
    double t0 = bench_now_s();
    curl_easy_perform(c);
    lat[i] = (bench_now_s() - t0) * 1000.0;
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  qsort(lat, N, sizeof lat[0], cmp_d);
  char note[64];
  snprintf(note, sizeof note, "%zu KiB/page", bytes / N / 1024);
  bench_row("page of 100 authorizations with health, p50", lat[N / 2], "ms", "",
            note);
  bench_row("page of 100 authorizations with health, p99", lat[N * 99 / 100],
            "ms", "< 20 ms", "");
}

/* wrk's requests/s, or -1 when wrk is missing or fails. */
static double wrk_rps(int port, const char *path, int with_token) {
  char cmd[512];
  snprintf(
      cmd, sizeof cmd, "wrk -t2 -c16 -d3s %s http://127.0.0.1:%d%s 2>/dev/null",
      with_token ? "-H 'Authorization: Bearer " TOKEN "'" : "", port, path);
  FILE *p = popen(cmd, "r");
  char line[512];
  double rps = -1;
  while (p != NULL && fgets(line, sizeof line, p) != NULL)
    if (strncmp(line, "Requests/sec:", 13) == 0)
      rps = atof(line + 13);
  if (p != NULL)
    pclose(p);
  return rps;
}

#define PAIRS 3

/* The index of the median of n (odd) values. */
static int median_of(const double *v, int n) {
  for (int i = 0; i < n; i++) {
    int below = 0, same = 0;
    for (int j = 0; j < n; j++) {
      below += v[j] < v[i];
      same += v[j] == v[i];
    }
    if (below <= n / 2 && below + same > n / 2)
      return i;
  }
  return 0;
}

static void wrk_figure(int port) {
  if (system("command -v wrk >/dev/null 2>&1") != 0) {
    printf("GET /v1/works/{id}: wrk is not installed (apt-get install "
           "wrk); skipped\n");
    return;
  }
  char *body = get_body(port, "/v1/works/w00001");
  struct fixed f = {body ? body : "{}", body ? strlen(body) : 2};
  int bare_port = 0;
  struct MHD_Daemon *bare = fixed_server(&f, 2, &bare_port);
  /* Three interleaved pairs (the API, then the bare server), so that a
   * slow moment of a shared machine lands on both sides of one pair; the
   * median pair is the figure, every pair is printed. */
  double api[PAIRS], ceil[PAIRS], ratio[PAIRS];
  for (int i = 0; i < PAIRS; i++) {
    api[i] = wrk_rps(port, "/v1/works/w00001", 1);
    ceil[i] = bare ? wrk_rps(bare_port, "/v1/works/w00001", 0) : -1;
    ratio[i] = ceil[i] > 0 ? api[i] / ceil[i] : 0;
  }
  int m = median_of(ratio, PAIRS);
  char c[160];
  snprintf(c, sizeof c, "bare MHD %.0f/s: %.2f (pairs: %.2f %.2f %.2f)",
           ceil[m], ratio[m], ratio[0], ratio[1], ratio[2]);
  bench_row("GET /v1/works/{id}, wrk 16 connections (median pair)", api[m],
            "req/s", ">= 0.5 of bare", c);
  if (bare)
    MHD_stop_daemon(bare);
  free(body);
}

/* Runs cmd and returns the first number after the text `line` in its
 * output (e.g. "1234/s"), or -1. */
static double run_figure(const char *cmd, const char *line) {
  FILE *p = popen(cmd, "r");
  char buf[1024];
  double v = -1;
  while (p != NULL && fgets(buf, sizeof buf, p) != NULL) {
    const char *at = strstr(buf, line);
    if (at != NULL && v < 0)
      v = atof(at + strlen(line));
  }
  if (p != NULL)
    pclose(p);
  return v;
}

static void hammered(int port) {
  static const struct {
    const char *label, *cmd, *line;
  } figs[] = {
      {"noop executions inline (bench_exec)",
       "BENCH_EXEC_INLINE_ONLY=1 " CR_BINARY_DIR
       "/bench/bench_exec 2>/dev/null",
       "inline "},
      {"events delivered signed (bench_delivery 50000)",
       "BENCH_DELIVERY_ONLY=tput " CR_BINARY_DIR
       "/bench/bench_delivery 50000 2>/dev/null",
       "emit->store->POST->recorded"},
  };
  if (system("command -v wrk >/dev/null 2>&1") != 0)
    return;
  for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
    double quiet = run_figure(figs[i].cmd, figs[i].line);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "wrk -t1 -c16 -d120s -H 'Authorization: Bearer " TOKEN
             "' http://127.0.0.1:%d/v1/works/w00001 >/dev/null 2>&1 & "
             "echo $!",
             port);
    FILE *p = popen(cmd, "r");
    int wrk_pid = 0;
    if (p == NULL || fscanf(p, "%d", &wrk_pid) != 1)
      wrk_pid = 0;
    if (p != NULL)
      pclose(p);
    usleep(300 * 1000);
    double busy = run_figure(figs[i].cmd, figs[i].line);
    if (wrk_pid > 0)
      kill(wrk_pid, SIGTERM);
    char note[96];
    snprintf(note, sizeof note, "quiet %.0f/s: %.2f", quiet,
             quiet > 0 ? busy / quiet : 0);
    char label[128];
    snprintf(label, sizeof label, "%s, API hammered", figs[i].label);
    bench_row(label, busy, "/s", "", note);
  }
}

static int readyz(int port) {
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", port);
  CURL *c = curl_easy_init();
  size_t bytes = 0;
  long st = 0;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &bytes);
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  curl_easy_cleanup(c);
  return st == 200;
}

static void start_with_50_plugins(const char *dir) {
  if (bench_build_plugins(dir, "plugins50", 50, CR_SOURCE_DIR) != 0) {
    printf("start with 50 plugins: cannot build them; skipped\n");
    return;
  }
  char cfg[4096], log[4096];
  snprintf(cfg, sizeof cfg, "%s/fifty.yaml", dir);
  FILE *f = fopen(cfg, "w");
  fprintf(f,
          "host:\n  data_dir: ./data50\n  plugin_dirs: [\"%s/plugins50\"]\n"
          "  listen: 127.0.0.1:0\n",
          dir);
  fclose(f);
  double t0 = bench_now_s();
  pid_t pid = bench_start_serve(CR_BINARY_DIR "/bin/connrun", dir, cfg, log,
                                "serve50.log");
  int port = 0;
  /* The port comes from the log line; then the first 200 of /readyz. */
  for (int i = 0; i < 5000 && port == 0; i++) {
    FILE *l = fopen(log, "r");
    char line[1024];
    while (l != NULL && fgets(line, sizeof line, l) != NULL) {
      const char *p = strstr(line, "(port ");
      if (strstr(line, "api: listening") && p != NULL)
        port = atoi(p + 6);
    }
    if (l != NULL)
      fclose(l);
    if (port == 0)
      usleep(1000);
  }
  for (int i = 0; i < 5000 && port > 0 && !readyz(port); i++)
    usleep(1000);
  double t = bench_now_s() - t0;
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  bench_row("start with 50 plugins: exec to /readyz 200", t * 1000.0, "ms",
            "<= 100 ms", "");
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char dir[] = "/tmp/bench-api-XXXXXX";
  if (mkdtemp(dir) == NULL)
    return 1;
  struct fixed scopes = {SCOPES_BODY, strlen(SCOPES_BODY)};
  int fake_port = 0;
  struct MHD_Daemon *fake = fixed_server(&scopes, 2, &fake_port);
  char *cfg = write_config(dir, n, fake_port);
  printf("%-52s %12s %-6s %-14s %s\n", "figure", "value", "", "target",
         "ceiling / note");
  char log[4096];
  double t0 = bench_now_s();
  pid_t pid = bench_start_serve(CR_BINARY_DIR "/bin/connrun", dir, cfg, log,
                                "serve.log");
  int port = bench_port_from_log(log);
  if (port == 0) {
    fprintf(stderr, "bench_api: the daemon did not start (see %s)\n", log);
    kill(pid, SIGKILL);
    return 1;
  }
  double t_api = bench_now_s() - t0;
  int64_t done = 0, before = health_checks(dir);
  for (int i = 0; i < 1200 && (done = health_checks(dir)) < n; i++)
    usleep(50 * 1000); /* at most 60 s */
  double t_health = bench_now_s() - t0;
  char note[128];
  snprintf(note, sizeof note, "%lld of %d done when the API answered",
           (long long)before, n);
  bench_row("daemon start to API answering (10k + 10k config)", t_api, "s", "",
            "");
  snprintf(note + strlen(note), sizeof note - strlen(note), "; all %lld",
           (long long)done);
  bench_row("start-up health checks, exec to the last recorded", t_health, "s",
            "", note);
  bench_row("health checks of every authorization, first to last",
            health_span(dir), "s", "<= 1 s",
            "the store's times of the first and last result");
  sleep(2);
  bench_row("idle daemon RSS", bench_rss_kib(pid) / 1024.0, "MiB", "<= 40 MiB",
            "");
  if (argc > 2 &&
      strcmp(argv[2], "health") == 0) { /* the start-up figures alone */
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return 0;
  }
  page_latency(port, n);
  wrk_figure(port);
  hammered(port);
  kill(pid, SIGTERM);
  int st;
  waitpid(pid, &st, 0);
  start_with_50_plugins(dir);
  if (fake)
    MHD_stop_daemon(fake);
  char rm[4200];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0)
    fprintf(stderr, "bench_api: cannot remove %s\n", dir);
  free(cfg);
  curl_global_cleanup();
  return 0;
}
