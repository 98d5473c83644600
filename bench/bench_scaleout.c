/* bench_scaleout.c: several `connrun serve` instances on one PostgreSQL
 * database, next to one instance on SQLite measured in the same run.
 *   (1) No-op executions end to end through 4 `connrun runner` processes
 *       (long-poll claims, reports over HTTP), 1 instance on SQLite, 1 on
 *       PostgreSQL, 3 on PostgreSQL with the runners spread over them.
 *   (2) Events delivered per second to a loopback receiver by 6 webhook
 *       subscriptions (spread over the instances), 1 SQLite instance, 1 and
 *       3 PostgreSQL instances; events written into the store directly.
 *   (3) Claim latency, Created -> Pending, executions started one at a time
 *       through one instance while the runners long-poll another (the
 *       wake-up crosses instances through LISTEN/NOTIFY), next to the same
 *       on one SQLite instance.
 *   (4) The ceilings: PostgreSQL alone, no connrun process running, doing
 *       the executions' writes from 3 connections (pg_ceiling.h), with a
 *       commit per state change, then with 50 executions per commit; and
 *       the deliveries' outbox writes, 100 events at a time.
 * PostgreSQL is a private server (tests/util/pgserver.h) with fsync on, as
 * SQLite syncs too. Everything on 127.0.0.1; every wait is bounded.
 *
 * Usage: bench_scaleout; the connrun binary and the behave test plugin are
 * found in the build tree. Prints figure, value, target, ceiling. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_cpu.h"
#include "bench_util.h"
#include "events/events.h"
#include "pg_ceiling.h"
#include "pgserver.h"
#include "store/store.h"
#include "store/store_sql.h"

#define TOKEN "bench-scaleout-ops-token"
#define REG "bench-scaleout-registration"
#define N_WORKS 1000
#define N_RUNNERS 4
#define N_LATENCY 100
#define N_SUBS 6
#define N_EVENTS 6000 /* each to every subscription */
#define MAX_INST 3

static char g_dir[4096];
static struct cr_pgserver g_pg;
static int g_port = 21000;

/* ---- Processes ----------------------------------------------------------- */

static pid_t spawn(const char *log, char *const argv[]) {
  return bench_spawn(g_dir, log, argv);
}

static void stop(pid_t pid) { bench_stop(pid); }

/* The configuration: the store (NULL: SQLite in its data directory), works
 * for the remote runners or subscriptions to the receiver at rx_port. */
static void write_config(const char *name, const char *store, int n_works,
                         int rx_port) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return;
  fprintf(f,
          "host:\n  data_dir: ./data-%s\n%s%s%s"
          "  plugin_dirs: [\"%s/test-plugins\"]\n"
          "  health_check_interval: 1d\n"
          "  api: { max_connections: 1024, threads: 2 }\n"
          "  runner: { concurrency: 1, isolation: inline }\n"
          "  api_tokens: [{name: ops, token: %s, scopes: [read, write, "
          "admin]}]\n"
          "  runner_registration_tokens: [{name: bench, token: %s, labels: "
          "[bench]}]\n"
          "authorizations:\n  - {id: none, provider: behave, method: none}\n",
          name, store ? "  store: \"" : "", store ? store : "",
          store ? "\"\n" : "", CR_BINARY_DIR, TOKEN, REG);
  if (n_works > 0)
    fprintf(f, "works:\n");
  for (int i = 0; i < n_works; i++)
    fprintf(f,
            "  - {id: w%04d, provider: behave, authorization: none, "
            "isolation: inline, schedule: {every: 1d}, "
            "runner: {labels: [bench]}, config: {mode: noop}}\n",
            i);
  if (rx_port > 0) {
    fprintf(f, "subscriptions:\n");
    for (int k = 0; k < N_SUBS; k++)
      fprintf(f,
              "  - id: hook-%d\n    workflow: webhook_system_events\n"
              "    config: { system_event_type: synced, webhook_url: "
              "\"http://127.0.0.1:%d/h%d\" }\n",
              k, rx_port, k);
  }
  fclose(f);
}

static pid_t serve(const char *cfg, int port, int idx) {
  char c[4200], l[4200], listen[64];
  snprintf(c, sizeof c, "%s/%s", g_dir, cfg);
  snprintf(l, sizeof l, "%s/%s-%d.log", g_dir, cfg, idx);
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  char *argv[] = {CR_BINARY_DIR "/bin/connrun",
                  "serve",
                  "-c",
                  c,
                  "--listen",
                  listen,
                  "--log-level",
                  "warn",
                  NULL};
  return spawn(l, argv);
}

static pid_t runner(int i, int port, const char *tag) {
  char suffix[64];
  snprintf(suffix, sizeof suffix, "-%s-%d", tag, i);
  return bench_runner(CR_BINARY_DIR, g_dir, suffix, i, port, REG);
}

static long call(int port, const char *method, const char *path,
                 const char *body) {
  char url[512], auth[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", TOKEN);
  CURL *c = curl_easy_init();
  struct curl_slist *h =
      curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, auth);
  struct bench_body b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_body_keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  long st = 0;
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  free(b.p);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return st;
}

static int wait_ready(int port, pid_t pid) {
  for (int i = 0; i < 600; i++) { /* 60 s */
    if (call(port, "GET", "/readyz", NULL) == 200)
      return 1;
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return 0;
    usleep(100 * 1000);
  }
  return 0;
}

/* A setup: n instances on one store (where: data directory or URL). */
struct setup {
  const char *tag, *where;
  int n, port[MAX_INST];
  pid_t inst[MAX_INST], run[N_RUNNERS];
  double busy; /* the machine's CPUs busy while measured (0..1), or -1 */
};

static struct bench_cpu g_cpu;
static long g_ncpu = 1;

/* The next port from g_port that nothing on 127.0.0.1 holds now (at most
 * 100 tried). */
static int free_port(void) {
  for (int k = 0; k < 100; k++, g_port++) {
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    int ok = fd >= 0 &&
             setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
             bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
      close(fd);
    if (ok)
      return g_port++;
  }
  return g_port++;
}

static int start(struct setup *s, const char *cfg) {
  for (int i = 0; i < s->n; i++) {
    s->port[i] = free_port();
    s->inst[i] = serve(cfg, s->port[i], i);
    if (!wait_ready(s->port[i], s->inst[i])) {
      printf("bench_scaleout: %s instance %d did not start; its log:\n", s->tag,
             i);
      char log[4300], line[512];
      snprintf(log, sizeof log, "%s/%s-%d.log", g_dir, cfg, i);
      FILE *f = fopen(log, "r");
      for (int k = 0; f != NULL && k < 20 && fgets(line, sizeof line, f); k++)
        printf("  %s", line);
      if (f != NULL)
        fclose(f);
      return -1;
    }
  }
  return 0;
}

static void stop_all(struct setup *s) {
  for (int i = 0; i < N_RUNNERS; i++)
    stop(s->run[i]);
  for (int i = 0; i < s->n; i++)
    stop(s->inst[i]);
  memset(s->run, 0, sizeof s->run);
  memset(s->inst, 0, sizeof s->inst);
}

static long long qint(const char *where, const char *sql) {
  cr_store *st = NULL;
  char err[256];
  int64_t v = -1;
  if (cr_store_open(where, &st, err, sizeof err) != 0)
    return -1;
  if (cr__store_sqlite_query_int(st, sql, &v) != 0)
    v = -1;
  cr_store_close(st);
  return v;
}

/* With BENCH_PGSS set (and CR_PGSERVER_SETTING=shared_preload_libraries=
 * pg_stat_statements): resets pg_stat_statements of database `where`
 * (print 0), or prints its statements with the most time, per unit of n. */
static void pgss(const char *where, int print, double n) {
  if (getenv("BENCH_PGSS") == NULL || strncmp(where, "postgres", 8) != 0)
    return;
  PGconn *k = PQconnectdb(where);
  PGresult *r = PQexec(k, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  PQclear(r);
  r = PQexec(k, print ? "SELECT calls, total_exec_time, rows, "
                        "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) "
                        "FROM pg_stat_statements WHERE dbid = (SELECT oid "
                        "FROM pg_database WHERE datname = current_database()) "
                        "ORDER BY total_exec_time DESC LIMIT 25"
                      : "SELECT pg_stat_statements_reset()");
  double calls = 0, ms = 0;
  for (int i = 0; print && i < PQntuples(r); i++) {
    double c = atof(PQgetvalue(r, i, 0)), t = atof(PQgetvalue(r, i, 1));
    calls += c, ms += t;
    printf("  %7.2f calls %7.1f us %s\n", c / n, t * 1000 / n,
           PQgetvalue(r, i, 3));
  }
  if (print)
    printf("  top 25: %.1f calls, %.0f us per unit\n", calls / n,
           ms * 1000 / n);
  PQclear(r);
  PQfinish(k);
}

/* ---- (1) executions ------------------------------------------------------ */

/* Waits (bounded: 180 s) until every execution completed; the seconds from
 * the first completion to the last (the store's times), or -1. That window's
 * CPU use goes to s->busy. */
static double drain(struct setup *s) {
  const char *where = s->where;
  /* One connection for the whole wait: a new one every 100 ms would be a
   * PostgreSQL backend started (a fork and its catalog reads) 10 times a
   * second on the machine being measured. */
  cr_store *st = NULL;
  char err[256];
  double took = -1;
  if (cr_store_open(where, &st, err, sizeof err) != 0)
    return -1;
  for (int i = 0; i < 1800; i++) {
    int64_t done = -1, ms = -1, from = -1;
    if (cr__store_sqlite_query_int(st,
                                   "SELECT count(*) FROM executions WHERE "
                                   "state = 'completed'",
                                   &done) == 0 &&
        done >= N_WORKS) {
      if (cr__store_sqlite_query_int(st,
                                     "SELECT max(updated_at) - "
                                     "min(updated_at) FROM executions WHERE "
                                     "state = 'completed'",
                                     &ms) == 0 &&
          ms > 0 &&
          cr__store_sqlite_query_int(st,
                                     "SELECT min(updated_at) FROM executions "
                                     "WHERE state = 'completed'",
                                     &from) == 0) {
        took = (double)ms / 1000;
        usleep(50 * 1000); /* a sample after the window */
        s->busy = bench_cpu_busy(&g_cpu, from, from + ms);
      }
      break;
    }
    usleep(100 * 1000);
  }
  cr_store_close(st);
  return took;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Created -> Pending of executions started one at a time through instance
 * `via` (ms): p50 and p99 into out[0], out[1]. */
static void claim_latency(struct setup *s, int via, double out[2]) {
  out[0] = out[1] = -1;
  long long first = qint(s->where, "SELECT COALESCE(max(id), 0) FROM "
                                   "executions");
  for (int i = 0; i < N_LATENCY; i++) {
    char path[64];
    snprintf(path, sizeof path, "/v1/works/w%04d/runs", i);
    call(s->port[via], "POST", path, "{}");
    usleep(20 * 1000);
  }
  usleep(1000 * 1000);
  cr_store *st = NULL;
  char err[256], sql[512], text[65536];
  if (cr_store_open(s->where, &st, err, sizeof err) != 0)
    return;
  int pg = strncmp(s->where, "postgres", 8) == 0;
  snprintf(sql, sizeof sql,
           "SELECT %s FROM (SELECT p.at - c.at AS d FROM "
           "execution_transitions c JOIN execution_transitions p ON "
           "p.execution_id = c.execution_id AND p.from_state = 'created' AND "
           "p.to_state = 'pending' WHERE c.to_state = 'created' AND "
           "c.from_state IS NULL AND c.execution_id > %lld) x",
           pg ? "string_agg(d::text, ' ')" : "group_concat(d, ' ')", first);
  double *ms = calloc(N_LATENCY, sizeof *ms);
  size_t n = 0;
  if (cr__store_sqlite_query_text(st, sql, text, sizeof text) == 0)
    for (char *p = text, *end; *p && n < N_LATENCY; p = end) {
      ms[n++] = strtod(p, &end);
      if (end == p)
        break;
    }
  cr_store_close(st);
  if (n > 0) {
    qsort(ms, n, sizeof *ms, cmp_d);
    out[0] = ms[n / 2];
    out[1] = ms[(size_t)((double)n * 0.99)];
  }
  free(ms);
}

/* Executions/s through 4 runners (runner i on instance i % n), then the
 * claim latency with the runners on instance 0 and starts through the last
 * instance. */
static double executions(struct setup *s, double lat[2]) {
  char cfg[64];
  snprintf(cfg, sizeof cfg, "exec-%s.yaml", s->tag);
  write_config(cfg, strncmp(s->where, "postgres", 8) == 0 ? s->where : NULL,
               N_WORKS, 0);
  double rate = 0;
  if (start(s, cfg) == 0) {
    pgss(s->where, 0, 1);
    for (int i = 0; i < N_RUNNERS; i++)
      s->run[i] = runner(i, s->port[i % s->n], s->tag);
    double took = drain(s);
    rate = took > 0 ? N_WORKS / took : 0;
    pgss(s->where, 1, N_WORKS);
    for (int i = 0; i < N_RUNNERS; i++) /* all long-poll instance 0 now */
      stop(s->run[i]);
    for (int i = 0; i < N_RUNNERS; i++)
      s->run[i] = runner(i, s->port[0], s->tag);
    usleep(2000 * 1000);
    if (getenv("BENCH_VERBOSE") != NULL && s->where[0] == 'p')
      printf("%s: executions_created: %lld scans, %lld entries read, %lld "
             "rows fetched\n",
             s->tag,
             qint(s->where, "SELECT idx_scan FROM pg_stat_user_indexes WHERE "
                            "indexrelname = 'executions_created'"),
             qint(s->where, "SELECT idx_tup_read FROM pg_stat_user_indexes "
                            "WHERE indexrelname = 'executions_created'"),
             qint(s->where, "SELECT idx_tup_fetch FROM pg_stat_user_indexes "
                            "WHERE indexrelname = 'executions_created'"));
    if (getenv("BENCH_VERBOSE") != NULL)
      printf("%s: %lld executions, %lld not completed, before the latency "
             "phase\n",
             s->tag, qint(s->where, "SELECT count(*) FROM executions"),
             qint(s->where, "SELECT count(*) FROM executions WHERE state "
                            "<> 'completed'"));
    claim_latency(s, s->n - 1, lat);
  }
  stop_all(s);
  return rate;
}

/* ---- (2) delivery -------------------------------------------------------- */

static atomic_long g_received;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **ctx) {
  (void)cls, (void)url, (void)method, (void)version, (void)data;
  if (*ctx == NULL) {
    *ctx = con;
    return MHD_YES;
  }
  if (*size > 0) {
    *size = 0;
    return MHD_YES;
  }
  atomic_fetch_add(&g_received, 1);
  struct MHD_Response *r =
      MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ok = MHD_queue_response(con, 204, r);
  MHD_destroy_response(r);
  return ok;
}

/* Writes N_EVENTS `synced` events into the store in transactions of 100. */
static int emit(const char *where) {
  cr_store *st = NULL;
  char err[256];
  if (cr_store_open(where, &st, err, sizeof err) != 0)
    return -1;
  int rc = 0;
  for (int i = 0; i < N_EVENTS && rc == 0; i += 100) {
    rc = cr_store_begin(st);
    for (int k = 0; k < 100 && rc == 0; k++) {
      char id[32];
      snprintf(id, sizeof id, "w%d", (i + k) % 50);
      rc = cr_event_emit(st, "work", id, "synced", "bench", NULL, NULL);
    }
    rc = rc == 0 ? cr_store_commit(st) : rc;
  }
  cr_store_close(st);
  return rc;
}

/* Events delivered per second by n instances: from the first to the last
 * delivery attempt recorded (the store's times). */
static double delivery(struct setup *s, int rx_port) {
  char cfg[64];
  snprintf(cfg, sizeof cfg, "deliver-%s.yaml", s->tag);
  write_config(cfg, strncmp(s->where, "postgres", 8) == 0 ? s->where : NULL, 0,
               rx_port);
  double rate = 0;
  long long want = (long long)N_EVENTS * N_SUBS;
  if (start(s, cfg) == 0) {
    usleep(6000 * 1000); /* the subscriptions spread over the instances */
    atomic_store(&g_received, 0);
    if (emit(s->where) == 0) {
      for (int i = 0; i < 1800 && atomic_load(&g_received) < want; i++)
        usleep(100 * 1000);
      usleep(1500 * 1000); /* the last attempts recorded */
      long long ms = qint(s->where, "SELECT max(at) - min(at) FROM "
                                    "delivery_attempts");
      long long got = qint(s->where, "SELECT count(*) FROM "
                                     "delivery_attempts WHERE http_status = "
                                     "204");
      long long from = qint(s->where, "SELECT min(at) FROM delivery_attempts");
      if (ms > 0 && got >= want) {
        rate = (double)got / ((double)ms / 1000);
        s->busy = bench_cpu_busy(&g_cpu, from, from + ms);
      }
    }
  }
  stop_all(s);
  return rate;
}

/* ---- Main ---------------------------------------------------------------- */

static void row_vs(const char *figure, double v, const char *unit,
                   const char *target, double ref, const char *what);

/* PostgreSQL alone (pg_ceiling.h), 3 connections as 3 instances: the
 * executions' writes with a commit per state change of each execution, then
 * 50 executions per commit; the deliveries' writes 100 events at a time.
 * Next to the single SQLite instance's rates (ex, dl) of the same run. */
static void cpu_row(const char *figure, double busy, double rate,
                    const char *unit, double ref_rate);

static void ceilings(const char *url, double ex, double dl) {
  char err[256] = "";
  long long w[3][2] = {{0}};
  double one = cr_bench_pg_ceiling(url, CR_BENCH_PG_EXECUTIONS, MAX_INST, 400,
                                   1, w[0], err, sizeof err);
  double many = one > 0
                    ? cr_bench_pg_ceiling(url, CR_BENCH_PG_EXECUTIONS, MAX_INST,
                                          40, 50, w[1], err, sizeof err)
                    : -1;
  double del = many > 0
                   ? cr_bench_pg_ceiling(url, CR_BENCH_PG_DELIVERIES, MAX_INST,
                                         120, 100, w[2], err, sizeof err)
                   : -1;
  if (del <= 0) {
    printf("bench_scaleout: PostgreSQL ceiling: %s\n", err);
    return;
  }
  usleep(50 * 1000); /* a CPU sample after the last window */
  double busy[3];
  for (int i = 0; i < 3; i++)
    busy[i] = bench_cpu_busy(&g_cpu, w[i][0], w[i][1]);
  row_vs("PG alone, no connrun: a commit per state change", one, "/s",
         "ceiling", ex, "SQLite");
  row_vs("PG alone, no connrun: 50 executions per commit", many, "/s",
         "ceiling", ex, "SQLite");
  row_vs("PG alone, no connrun: deliveries' writes, 100 a time", del, "/s",
         "ceiling", dl, "SQLite");
  cpu_row("CPU busy: PG alone, a commit per state change", busy[0], one,
          "execution", ex);
  cpu_row("CPU busy: PG alone, 50 executions per commit", busy[1], many,
          "execution", ex);
  cpu_row("CPU busy: PG alone, deliveries' writes", busy[2], del, "event", dl);
}

/* The machine's CPU use (busy, 0..1) while something ran at `rate` per
 * second, and what the same CPU per unit would take at ref_rate (the SQLite
 * instance's rate): above 100%, nothing that costs as much CPU per unit
 * reaches that rate here. */
static void cpu_row(const char *figure, double busy, double rate,
                    const char *unit, double ref_rate) {
  char note[160];
  double per = busy > 0 && rate > 0 ? busy * (double)g_ncpu / rate : 0;
  snprintf(note, sizeof note,
           "of %ld CPUs; %.0f us CPU per %s, %.0f%% of them at SQLite's rate",
           g_ncpu, per * 1e6, unit, per * ref_rate / (double)g_ncpu * 100);
  bench_row(figure, busy > 0 ? busy * 100 : 0, "%", "", note);
}

static void row_vs(const char *figure, double v, const char *unit,
                   const char *target, double ref, const char *what) {
  char note[128];
  snprintf(note, sizeof note, "%s %.1f%s (x%.2f)", what, ref, unit,
           ref > 0 ? v / ref : 0);
  bench_row(figure, v, unit, target, note);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/connrun-bench-scaleout-XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return 1;
  /* Below the kernel's ephemeral range (32768 and up here), where a
   * client socket of this machine may hold any port. */
  g_port = 21000 + (int)(getpid() % 10000);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  g_ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (g_ncpu < 1 || bench_cpu_start(&g_cpu) != 0)
    g_ncpu = 1; /* rows of CPU use then say 0 */
  if (cr_pgserver_start(&g_pg, 0) != 0) {
    fprintf(stderr, "bench_scaleout: PostgreSQL: %s\n", g_pg.error);
    return 1;
  }
  char urls[5][400], lite[4200];
  const char *dbs[5] = {"exec1", "exec3", "deliver1", "deliver3", "ceiling"};
  for (int i = 0; i < 5; i++)
    if (cr_pgserver_createdb(&g_pg, dbs[i], urls[i], sizeof urls[i]) != 0) {
      fprintf(stderr, "bench_scaleout: %s\n", g_pg.error);
      return 1;
    } else if (getenv("BENCH_PG_ASYNC") != NULL) {
      size_t len = strlen(urls[i]);
      snprintf(urls[i] + len, sizeof urls[i] - len, "%s",
               "?options=-c%20synchronous_commit%3Doff");
    }
  printf("%-52s %12s %-6s %-14s %s\n", "figure", "value", "", "target",
         "ceiling / note");

  /* BENCH_SCALEOUT_ONLY=delivery skips the executions (for profiling). */
  const char *only = getenv("BENCH_SCALEOUT_ONLY");
  int execs = only == NULL || strcmp(only, "delivery") != 0;
  double lat_l[2] = {0}, lat_1[2] = {0}, lat_3[2] = {0};
  double ex_l = 0, ex_1 = 0, ex_3 = 0;
  snprintf(lite, sizeof lite, "%s/data-exec-sqlite.yaml", g_dir);
  struct setup a = {.tag = "sqlite", .where = lite, .n = 1, .busy = -1};
  struct setup b = {.tag = "pg1", .where = urls[0], .n = 1, .busy = -1};
  struct setup c = {.tag = "pg3", .where = urls[1], .n = 3, .busy = -1};
  if (execs) {
    ex_l = executions(&a, lat_l);
    ex_1 = executions(&b, lat_1);
    ex_3 = executions(&c, lat_3);
  }
  bench_row("no-op executions, 4 runners, 1 instance, SQLite", ex_l, "/s", "",
            "the reference");
  row_vs("no-op executions, 4 runners, 1 instance, PostgreSQL", ex_1, "/s", "",
         ex_l, "SQLite");
  row_vs("no-op executions, 4 runners, 3 instances, PostgreSQL", ex_3, "/s",
         ">= SQLite", ex_l, "SQLite");
  if (execs) {
    cpu_row("CPU busy: executions, 1 SQLite instance", a.busy, ex_l,
            "execution", ex_l);
    cpu_row("CPU busy: executions, 1 PG instance", b.busy, ex_1, "execution",
            ex_l);
    cpu_row("CPU busy: executions, 3 PG instances", c.busy, ex_3, "execution",
            ex_l);
  }
  row_vs("claim latency p50, 1 SQLite instance", lat_l[0], "ms", "", lat_l[0],
         "");
  row_vs("claim latency p99, 1 SQLite instance", lat_l[1], "ms", "< 50 ms",
         lat_l[1], "");
  row_vs("claim latency p50, 3 PG instances, across", lat_3[0], "ms", "",
         lat_l[0], "SQLite");
  row_vs("claim latency p99, 3 PG instances, across", lat_3[1], "ms", "< 50 ms",
         lat_l[1], "SQLite");

  double dl_l = 0;
  struct MHD_Daemon *rx = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY,
      (uint16_t)(g_port + 50), NULL, NULL, on_request, NULL,
      MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_CONNECTION_LIMIT, 512u,
      MHD_OPTION_END);
  if (rx == NULL) {
    printf("bench_scaleout: cannot start the receiver\n");
  } else {
    int rx_port = g_port + 50;
    g_port += 51;
    snprintf(lite, sizeof lite, "%s/data-deliver-sqlite.yaml", g_dir);
    struct setup d = {.tag = "sqlite", .where = lite, .n = 1, .busy = -1};
    dl_l = delivery(&d, rx_port);
    struct setup e = {.tag = "pg1", .where = urls[2], .n = 1, .busy = -1};
    double dl_1 = delivery(&e, rx_port);
    struct setup f = {.tag = "pg3", .where = urls[3], .n = 3, .busy = -1};
    double dl_3 = delivery(&f, rx_port);
    bench_row("events delivered, 6 subscriptions, 1 instance, SQLite", dl_l,
              "/s", "", "the reference");
    row_vs("events delivered, 6 subscriptions, 1 instance, PG", dl_1, "/s", "",
           dl_l, "SQLite");
    row_vs("events delivered, 6 subscriptions, 3 instances, PG", dl_3, "/s",
           ">= SQLite", dl_l, "SQLite");
    cpu_row("CPU busy: delivery, 1 SQLite instance", d.busy, dl_l, "event",
            dl_l);
    cpu_row("CPU busy: delivery, 1 PG instance", e.busy, dl_1, "event", dl_l);
    cpu_row("CPU busy: delivery, 3 PG instances", f.busy, dl_3, "event", dl_l);
    MHD_stop_daemon(rx);
  }
  /* last: their writes disturb no other figure */
  ceilings(urls[4], ex_l, dl_l);
  cr_pgserver_stop(&g_pg);
  bench_cpu_stop(&g_cpu);
  curl_global_cleanup();
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0)
    return 1;
  return 0;
}
