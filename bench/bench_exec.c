/* bench_exec.c: execution throughput. (1) End-to-end no-op executions,
 * created -> completed with every transition and event stored, inline and in
 * pooled worker processes (1 and 2 runner threads), completions written by
 * group commit (exec_group.h) as the daemon's runner does, against a bare
 * SQLite 1-row WAL commit and a bare posix_spawn+waitpid measured in the same
 * run. (2) The sync data path: behave emitting 300-byte records through a
 * worker into jsonl (which the worker writes itself, exec_run.c), records/s
 * and parent/worker peak RSS at 2M and 10M records, against the jsonl
 * destination alone; the rate of the worker's RECORDS batches through a
 * pipe (the path of the other destinations) is printed beside it. (3)
 * Worker pool stats. Prints figure, value, target, ratio vs ceiling.
 *
 * Usage: bench_exec [connrun-binary [test-plugin-dir]]; by default both are
 * found next to this executable (../bin/connrun, ../test-plugins). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "dest/dest.h"
#include "exec/exec_group.h"
#include "exec/exec_run.h"
#include "plugin/wire.h"
#include "plugin/worker_pool.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"

#define NOOP_WORKS 200
#define BATCH 100
#define N_INLINE 2000 /* per chunk; INLINE_CHUNKS chunks on the same works */
#define INLINE_CHUNKS 3
#define N_PROCESS 3000
#define EMIT_SMALL 2000000LL
#define EMIT_BIG 10000000LL
#define EMIT_FALLBACK 4000000LL
#define EMIT_BIG_MAX_S 45.0
#define RECORD_BYTES 300
#define SAMPLE_US 50000

extern char **environ;

static const char *const g_providers[] = {"behave"};

struct bench {
  char dir[PATH_MAX];
  char exe[PATH_MAX];
  char plugdir[PATH_MAX];
  cr_daemon *d;
  struct cr_exec_env env; /* store = the daemon's connection */
  int failed;
};

/* snprintf into a path buffer; -1 when it did not fit. */
static int pathf(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pathf(char *dst, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(dst, n, fmt, ap);
  va_end(ap);
  return k < 0 || (size_t)k >= n ? -1 : 0;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double g_t0;

/* A phase line on stderr, so a slow phase shows while the bench runs. */
static void phase(const char *what) {
  fprintf(stderr, "bench_exec: %6.1f s  %s\n", now_s() - g_t0, what);
}

/* ---- Table ------------------------------------------------------------- */

static void header(void) {
  printf("%-52s %16s  %-12s %s\n", "figure", "value", "target",
         "ratio vs ceiling");
}

static void row(const char *figure, double value, const char *unit,
                const char *target, double ceiling) {
  char ratio[32] = "-";
  if (ceiling > 0)
    snprintf(ratio, sizeof ratio, "%.2f", value / ceiling);
  printf("%-52s %12.0f%-4s  %-12s %s\n", figure, value, unit, target, ratio);
}

static void fail(struct bench *b, const char *what, int rc, const char *msg) {
  fprintf(stderr, "bench_exec: %s: %s%s%s\n", what, cr_strerror(rc),
          msg && *msg ? ": " : "", msg ? msg : "");
  b->failed = 1;
}

/* ---- Setup ------------------------------------------------------------- */

static int find_paths(struct bench *b, int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return -1;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL)
    return -1;
  *slash = '\0';
  if (pathf(b->exe, sizeof b->exe, "%s/../bin/connrun", self) != 0 ||
      pathf(b->plugdir, sizeof b->plugdir, "%s/../test-plugins", self) != 0)
    return -1;
  if (argc > 1)
    snprintf(b->exe, sizeof b->exe, "%s", argv[1]);
  if (argc > 2)
    snprintf(b->plugdir, sizeof b->plugdir, "%s", argv[2]);
  char p[PATH_MAX + 16];
  snprintf(p, sizeof p, "%s/behave.so", b->plugdir);
  if (access(b->exe, X_OK) != 0 || access(p, R_OK) != 0) {
    fprintf(stderr, "bench_exec: need %s and %s\n", b->exe, p);
    return -1;
  }
  return 0;
}

static void work_yaml(FILE *f, const char *id, const char *iso, const char *out,
                      const char *config) {
  fprintf(f,
          "  - { id: %s, provider: behave, authorization: a, isolation: %s,"
          " destination: { type: jsonl, path: %s }, config: %s }\n",
          id, iso, out, config);
}

static int write_config(const struct bench *b, const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL)
    return -1;
  fprintf(f,
          "host:\n  data_dir: %s/data\n  plugin_dirs: [%s]\n"
          "authorizations:\n  - { id: a, provider: behave, method: none }\n"
          "works:\n",
          b->dir, b->plugdir);
  char id[32], out[PATH_MAX + 32], cfg[160];
  snprintf(out, sizeof out, "%s/out/noop", b->dir);
  for (int i = 0; i < NOOP_WORKS; i++) {
    snprintf(id, sizeof id, "ni%d", i);
    work_yaml(f, id, "inline", out, "{ mode: noop }");
    snprintf(id, sizeof id, "np%d", i);
    work_yaml(f, id, "process", out, "{ mode: noop }");
    snprintf(id, sizeof id, "nq%d", i);
    work_yaml(f, id, "process", out, "{ mode: noop }");
  }
  const long long counts[] = {EMIT_SMALL, EMIT_BIG, EMIT_FALLBACK};
  for (int i = 0; i < 3; i++) {
    snprintf(id, sizeof id, "em%lld", counts[i]);
    pathf(out, sizeof out, "%s/out/%s", b->dir, id);
    snprintf(cfg, sizeof cfg,
             "{ mode: emit, count: %lld, record_bytes: %d,"
             " checkpoint_every: 100000 }",
             counts[i], RECORD_BYTES);
    work_yaml(f, id, "process", out, cfg);
  }
  return fclose(f) == 0 ? 0 : -1;
}

static int setup(struct bench *b) {
  char cfg[PATH_MAX + 16];
  snprintf(cfg, sizeof cfg, "%s/bench.yaml", b->dir);
  if (write_config(b, cfg) != 0)
    return -1;
  cr_diags diags;
  cr_diags_init(&diags);
  struct cr_daemon_options o = {.config_path = cfg, .log_min_level = 99};
  int rc = cr_daemon_new(&o, &b->d, &diags);
  for (size_t i = 0; rc != 0 && i < diags.count; i++)
    fprintf(stderr, "bench_exec: config: %s\n", diags.items[i].message);
  cr_diags_free(&diags);
  if (rc != 0) {
    fail(b, "cr_daemon_new", rc, NULL);
    return -1;
  }
  memset(&b->env, 0, sizeof b->env);
  b->env.cfg = cr_daemon_config(b->d);
  b->env.plugins = cr_daemon_plugins(b->d);
  b->env.store = cr_daemon_store(b->d);
  b->env.log_min_level = 99;
  return 0;
}

/* ---- Ceilings: bare SQLite commit, bare spawn -------------------------- */

static double bare_sqlite_commit(const char *path, int n) {
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK)
    return -1;
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b TEXT);",
               NULL, NULL, NULL);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "INSERT INTO t(a, b) VALUES (?, ?)", -1, &st, NULL);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    sqlite3_bind_text(st, 1, "work", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, "{\"records\":0}", -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  double rate = n / (now_s() - t0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rate;
}

static double bare_spawn(int n) {
  char *const argv[] = {(char *)"/bin/true", NULL};
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    pid_t pid;
    int status;
    if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) != 0 ||
        waitpid(pid, &status, 0) != pid)
      return -1;
  }
  return n / (now_s() - t0);
}

/* ---- Figure 1: no-op executions ----------------------------------------
 * Each runner thread loops: create BATCH executions (one transaction) of its
 * own BATCH works, claim up to BATCH (slots = BATCH) and run what it got, so
 * the backlog of created executions stays near BATCH per thread. The claim
 * may take another thread's executions; the run ends when all n are done. */

struct noop_run {
  struct bench *b;
  cr_worker_pool *pool;
  const char *prefix;
  atomic_long created, done, failed;
  atomic_long groups, grouped; /* group commits, completions they wrote */
  long total;
  int nthreads;
  double t_create, t_claim, t_run; /* summed over threads */
  pthread_mutex_t mu;
  char first_error[600];
};

struct noop_thread {
  struct noop_run *nr;
  int index;
  int rc;
  double tcreate, tclaim, trun;
};

static void note_failure(struct noop_run *nr, int rc,
                         const struct cr_exec_outcome *o) {
  atomic_fetch_add(&nr->failed, 1);
  pthread_mutex_lock(&nr->mu);
  if (nr->first_error[0] == '\0')
    snprintf(nr->first_error, sizeof nr->first_error, "rc %s, state %d: %s",
             cr_strerror(rc), o->state, o->error);
  pthread_mutex_unlock(&nr->mu);
}

/* Creates up to BATCH executions of this thread's works in one
 * transaction (fewer when the total is reached). */
static int create_batch(struct noop_thread *t, cr_store *s) {
  struct noop_run *nr = t->nr;
  long want = BATCH;
  long first = atomic_fetch_add(&nr->created, want);
  if (first >= nr->total)
    return 0;
  if (first + want > nr->total)
    want = nr->total - first;
  char id[32];
  int base = (t->index * BATCH) % NOOP_WORKS;
  int rc = cr_store_begin(s);
  for (long j = 0; rc == 0 && j < want; j++) {
    snprintf(id, sizeof id, "%s%d", nr->prefix, base + (int)j);
    rc = cr_store_exec_create(s, id, NULL);
  }
  if (rc == 0)
    rc = cr_store_commit(s);
  if (rc != 0)
    cr_store_rollback(s);
  return rc;
}

/* Writes the completions waiting in env->group (outcomes set by it). */
static void commit_group(struct noop_run *nr, const struct cr_exec_env *env) {
  size_t n = cr_exec_group_size(env->group);
  if (n == 0)
    return;
  atomic_fetch_add(&nr->groups, 1);
  atomic_fetch_add(&nr->grouped, (long)n);
  cr_exec_group_commit(env->group, env->store); /* errors: outcomes -1 */
}

/* Claims up to BATCH and runs them with group commit: a group is written
 * when it holds CR_EXEC_GROUP_MAX completions and at the end of the batch;
 * outcomes are counted after that. */
static int claim_and_run(struct noop_thread *t, struct cr_exec_env *env,
                         const char *runner) {
  struct noop_run *nr = t->nr;
  struct cr_exec_claim *c = NULL;
  size_t n = 0;
  double t0 = now_s();
  int rc = cr_store_exec_claim(env->store, runner, g_providers, 1, BATCH,
                               CR_EXEC_LEASE_MS, &c, &n);
  double t1 = now_s();
  t->tclaim += t1 - t0;
  if (rc != 0)
    return rc;
  struct cr_exec_outcome o[BATCH];
  int rcs[BATCH];
  for (size_t i = 0; i < n; i++) {
    rcs[i] = cr_exec_run(env, &c[i], &o[i]);
    if (cr_exec_group_size(env->group) >= CR_EXEC_GROUP_MAX)
      commit_group(nr, env);
  }
  commit_group(nr, env);
  for (size_t i = 0; i < n; i++) {
    if (rcs[i] != 0 || o[i].state != CR_EXEC_COMPLETED)
      note_failure(nr, rcs[i], &o[i]);
    atomic_fetch_add(&nr->done, 1);
  }
  t->trun += now_s() - t1;
  cr_exec_claim_free_list(c, n);
  if (n == 0)
    usleep(500); /* what is left belongs to works another thread runs */
  return 0;
}

static void *noop_thread_main(void *arg) {
  struct noop_thread *t = arg;
  struct noop_run *nr = t->nr;
  struct cr_exec_env env = nr->b->env;
  env.pool = nr->pool;
  char err[256] = "", runner[32];
  snprintf(runner, sizeof runner, "bench-%d", t->index);
  cr_store *own = NULL;
  t->rc = cr_exec_group_new(&env.group);
  if (t->rc != 0)
    return NULL;
  if (nr->nthreads > 1) {
    char data[PATH_MAX + 8];
    snprintf(data, sizeof data, "%s/data", nr->b->dir);
    t->rc = cr_store_open(data, &own, err, sizeof err);
    if (t->rc != 0) {
      cr_exec_group_free(env.group);
      return NULL;
    }
    env.store = own;
  }
  while (t->rc == 0 && atomic_load(&nr->done) < nr->total) {
    double t0 = now_s();
    t->rc = create_batch(t, env.store);
    t->tcreate += now_s() - t0;
    if (t->rc == 0)
      t->rc = claim_and_run(t, &env, runner);
  }
  cr_exec_group_free(env.group);
  cr_store_close(own);
  return NULL;
}

/* Runs n no-op executions of the works prefix0..NOOP_WORKS-1 end to end with
 * nthreads (1 or 2) runner threads; returns executions/s (-1 on failure),
 * the thread-summed seconds spent creating, claiming and running, and the
 * average group commit size (secs[3]). */
static double noop_figure(struct bench *b, const char *prefix, long n,
                          int nthreads, cr_worker_pool *pool, double secs[4]) {
  struct noop_run nr;
  memset(&nr, 0, sizeof nr);
  nr.b = b;
  nr.pool = pool;
  nr.prefix = prefix;
  nr.total = n;
  nr.nthreads = nthreads;
  pthread_mutex_init(&nr.mu, NULL);
  struct noop_thread th[2];
  memset(th, 0, sizeof th);
  pthread_t tid[2];
  int started = 0;
  double t0 = now_s();
  for (int i = 0; i < 2; i++) {
    th[i].nr = &nr;
    th[i].index = i;
  }
  if (nthreads == 1) {
    noop_thread_main(&th[0]);
    started = 1;
  } else {
    for (; started < nthreads; started++)
      if (pthread_create(&tid[started], NULL, noop_thread_main, &th[started]) !=
          0)
        break;
    if (started < nthreads)
      atomic_store(&nr.done, n); /* stop the started ones */
    for (int i = 0; i < started; i++)
      pthread_join(tid[i], NULL);
  }
  double dt = now_s() - t0;
  pthread_mutex_destroy(&nr.mu);
  secs[0] = secs[1] = secs[2] = 0;
  secs[3] = nr.groups > 0 ? (double)nr.grouped / (double)nr.groups : 0;
  for (int i = 0; i < started; i++) {
    secs[0] += th[i].tcreate;
    secs[1] += th[i].tclaim;
    secs[2] += th[i].trun;
    if (th[i].rc != 0) {
      fail(b, "create/claim", th[i].rc, NULL);
      return -1;
    }
  }
  if (started != nthreads) {
    fail(b, "pthread_create", CR_EIO, NULL);
    return -1;
  }
  if (nr.failed > 0 || nr.done != n) {
    fprintf(stderr, "bench_exec: %s: %ld of %ld executions failed; first: %s\n",
            prefix, (long)nr.failed, n, nr.first_error);
    b->failed = 1;
    return -1;
  }
  return n / dt;
}

/* Cost of one claim of BATCH with a backlog of created executions: creates
 * backlog executions (inline works), times one claim, then cancels them
 * all. Returns the claim's seconds, -1 on failure. */
static double claim_backlog(struct bench *b, long backlog) {
  cr_store *s = b->env.store;
  char id[32];
  int rc = 0;
  int64_t first = 0, last = 0;
  for (long i = 0; rc == 0 && i < backlog; i += BATCH) {
    rc = cr_store_begin(s);
    for (long j = i; rc == 0 && j < i + BATCH && j < backlog; j++) {
      snprintf(id, sizeof id, "ni%ld", j % NOOP_WORKS);
      rc = cr_store_exec_create(s, id, &last);
      if (first == 0)
        first = last;
    }
    rc = rc == 0 ? cr_store_commit(s) : (cr_store_rollback(s), rc);
  }
  struct cr_exec_claim *c = NULL;
  size_t n = 0;
  double t0 = now_s();
  if (rc == 0)
    rc = cr_store_exec_claim(s, "probe", g_providers, 1, BATCH,
                             CR_EXEC_LEASE_MS, &c, &n);
  double dt = now_s() - t0;
  cr_exec_claim_free_list(c, n);
  for (int64_t e = first; rc == 0 && e <= last; e += BATCH) {
    rc = cr_store_begin(s);
    for (int64_t k = e; rc == 0 && k < e + BATCH && k <= last; k++)
      rc = cr_store_exec_transition(s, k, CR_EXEC_EPOCH_ANY, "cancelled",
                                    "bench probe", NULL, NULL);
    rc = rc == 0 ? cr_store_commit(s) : (cr_store_rollback(s), rc);
  }
  if (rc != 0) {
    fail(b, "claim backlog probe", rc, cr_store_last_error(s));
    return -1;
  }
  return n == BATCH ? dt : -1;
}

/* ---- Memory sampling --------------------------------------------------- */

/* kB value of field (e.g. "VmHWM:") in /proc/<pid>/status, -1 if absent. */
static long status_kb(const char *pid, const char *field) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%s/status", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  long v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, fl) == 0) {
      v = strtol(line + fl, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

struct sampler {
  pthread_t tid;
  atomic_int stop;
  long worker_hwm_kb; /* max VmHWM of any child seen */
  long self_rss_kb;   /* max VmRSS of this process seen */
};

/* Children of every thread of this process (the pool spawns from its own
 * thread), their VmHWM. */
static void sample_children(struct sampler *s) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[300], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
      long kb = status_kb(tok, "VmHWM:");
      if (kb > s->worker_hwm_kb)
        s->worker_hwm_kb = kb;
    }
  }
  closedir(d);
}

static void *sampler_main(void *arg) {
  struct sampler *s = arg;
  while (!atomic_load(&s->stop)) {
    sample_children(s);
    long kb = status_kb("self", "VmRSS:");
    if (kb > s->self_rss_kb)
      s->self_rss_kb = kb;
    usleep(SAMPLE_US);
  }
  return NULL;
}

static long maxrss_kb(int who) {
  struct rusage ru;
  return getrusage(who, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* ---- Figure 2: emit through a worker into jsonl ------------------------ */

struct emit_result {
  double rate, seconds;
  long long records;
  long worker_hwm_kb, self_rss_kb, maxrss_before_kb, maxrss_after_kb;
  struct cr_worker_pool_stats stats;
};

static void remove_output(const struct bench *b, const char *work) {
  char p[PATH_MAX + 64];
  snprintf(p, sizeof p, "%s/out/%s/items.jsonl", b->dir, work);
  unlink(p);
}

static int emit_figure(struct bench *b, long long count,
                       struct emit_result *r) {
  char work[32], err[800] = "";
  snprintf(work, sizeof work, "em%lld", count);
  memset(r, 0, sizeof *r);
  cr_worker_pool *pool = NULL;
  struct cr_worker_pool_opts po = {.exe = b->exe};
  int rc = cr_worker_pool_new(&po, &pool);
  if (rc != 0) {
    fail(b, "cr_worker_pool_new", rc, NULL);
    return -1;
  }
  struct cr_exec_env env = b->env;
  env.pool = pool;
  int64_t id = 0;
  struct cr_exec_claim c;
  memset(&c, 0, sizeof c);
  rc = cr_store_exec_create(env.store, work, &id);
  if (rc == 0)
    rc = cr_store_exec_claim_one(env.store, id, "bench", CR_EXEC_LEASE_MS, &c);
  if (rc != 0) {
    fail(b, "create/claim", rc, cr_store_last_error(env.store));
    cr_worker_pool_free(pool);
    return -1;
  }
  struct sampler s;
  memset(&s, 0, sizeof s);
  r->maxrss_before_kb = maxrss_kb(RUSAGE_SELF);
  int sampling = pthread_create(&s.tid, NULL, sampler_main, &s) == 0;
  struct cr_exec_outcome o;
  double t0 = now_s();
  rc = cr_exec_run(&env, &c, &o);
  r->seconds = now_s() - t0;
  atomic_store(&s.stop, 1);
  if (sampling)
    pthread_join(s.tid, NULL);
  r->maxrss_after_kb = maxrss_kb(RUSAGE_SELF);
  cr_worker_pool_get_stats(pool, &r->stats);
  cr_worker_pool_free(pool);
  cr__free(c.work_id);
  remove_output(b, work);
  r->worker_hwm_kb = s.worker_hwm_kb;
  r->self_rss_kb = s.self_rss_kb;
  r->records = o.records;
  r->rate = o.records / r->seconds;
  if (rc != 0 || o.state != CR_EXEC_COMPLETED || o.records != count) {
    snprintf(err, sizeof err, "%s: state %d, %lld of %lld records: %s", work,
             o.state, (long long)o.records, count, o.error);
    fail(b, "emit run", rc, err);
    return -1;
  }
  return 0;
}

/* ---- Ceilings for figure 2: wire through a pipe, jsonl alone ------------ */

static size_t make_record(char *rec, long long id) {
  size_t pad = RECORD_BYTES - 20;
  int n = snprintf(rec, 64, "{\"id\":%lld,\"pad\":\"", id);
  memset(rec + n, 'x', pad);
  memcpy(rec + n + pad, "\"}", 3);
  return (size_t)n + pad + 2;
}

struct pipe_writer {
  int fd;
  long long n;
  int rc;
};

static void *pipe_writer_main(void *arg) {
  struct pipe_writer *w = arg;
  char rec[RECORD_BYTES + 64];
  cr_wire_buf buf;
  cr_wire_batch t = {0};
  cr_wire_buf_init(&buf);
  for (long long i = 0; i < w->n && w->rc == 0; i++) {
    if (!t.open)
      w->rc = cr_wire_batch_begin(&buf, &t, "items");
    if (w->rc == 0)
      w->rc = cr_wire_batch_add(&buf, &t, rec, make_record(rec, i));
    if (w->rc == 0 && (buf.len >= 256 * 1024 || i + 1 == w->n)) {
      cr_wire_batch_end(&buf, &t); /* the worker's framing and flush size */
      w->rc = cr_wire_write_all(w->fd, &buf);
      cr_wire_buf_reset(&buf);
    }
  }
  cr_wire_buf_free(&buf);
  close(w->fd);
  return NULL;
}

static double pipe_ceiling(long long n) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  struct pipe_writer w = {fds[1], n, 0};
  pthread_t tid;
  double t0 = now_s();
  if (pthread_create(&tid, NULL, pipe_writer_main, &w) != 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  cr_wire_decoder d;
  cr_wire_decoder_init(&d);
  static char buf[64 * 1024];
  long long got = 0;
  int rc = 0;
  for (;;) {
    ssize_t k = read(fds[0], buf, sizeof buf);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    rc = cr_wire_feed(&d, buf, (size_t)k);
    struct cr_wire_msg m;
    int more = rc == 0;
    while (more && (rc = cr_wire_next(&d, &m)) == 1)
      got += m.type == CR_WIRE_RECORDS ? (long long)m.u.records.count : 0;
    if (rc < 0)
      break;
    rc = 0;
  }
  pthread_join(tid, NULL);
  double dt = now_s() - t0;
  close(fds[0]);
  cr_wire_decoder_free(&d);
  return rc == 0 && w.rc == 0 && got == n ? n / dt : -1;
}

static double jsonl_ceiling(const char *dir, long long n) {
  cr_dest *d = NULL;
  char err[256], rec[RECORD_BYTES + 64], path[PATH_MAX + 32];
  if (cr_dest_open_jsonl(dir, &d, err, sizeof err) != 0)
    return -1;
  double t0 = now_s();
  int rc = 0;
  for (long long i = 0; i < n && rc == 0; i++)
    rc = cr_dest_write(d, "items", rec, make_record(rec, i));
  if (rc == 0)
    rc = cr_dest_flush(d);
  double dt = now_s() - t0;
  cr_dest_close(d);
  pathf(path, sizeof path, "%s/items.jsonl", dir);
  unlink(path);
  return rc == 0 ? n / dt : -1;
}

/* What each no-op execution pays for its destination: open the jsonl
 * directory, declare the plugin's stream (its file exists and is empty),
 * close. Returns opens per second, -1 on failure. */
static double jsonl_open_rate(const char *dir, int n) {
  static const char *const pk[] = {"id"};
  struct cr_dest_stream ds = {"items", pk, 1};
  char err[256];
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    cr_dest *d = NULL;
    if (cr_dest_open_jsonl(dir, &d, err, sizeof err) != 0)
      return -1;
    int rc = cr_dest_declare_stream(d, &ds);
    cr_dest_close(d);
    if (rc != 0)
      return -1;
  }
  return n / (now_s() - t0);
}

static int64_t events_count(cr_store *s) {
  struct cr_store_counts c;
  return cr_store_counts(s, &c) == 0 ? c.events : -1;
}

/* ---- Main -------------------------------------------------------------- */

static void print_emit(const char *label, const struct emit_result *r,
                       double ceiling) {
  char fig[96];
  snprintf(fig, sizeof fig, "emit %s records -> worker -> jsonl", label);
  row(fig, r->rate, "/s", ">= 250000", ceiling);
  snprintf(fig, sizeof fig, "  worker peak RSS (VmHWM), %s", label);
  row(fig, r->worker_hwm_kb / 1024.0, " MiB", "flat", 0);
  snprintf(fig, sizeof fig, "  parent peak VmRSS during run, %s", label);
  row(fig, r->self_rss_kb / 1024.0, " MiB", "flat", 0);
  snprintf(fig, sizeof fig, "  parent ru_maxrss before -> after, %s", label);
  printf("%-52s %6.0f -> %.0f MiB\n", fig, r->maxrss_before_kb / 1024.0,
         r->maxrss_after_kb / 1024.0);
}

int main(int argc, char **argv) {
  static struct bench b;
  char tmpl[] = "/tmp/connrun-benchx-XXXXXX";
  if (find_paths(&b, argc, argv) != 0 || mkdtemp(tmpl) == NULL)
    return 1;
  snprintf(b.dir, sizeof b.dir, "%s", tmpl);
  double tstart = now_s();
  g_t0 = tstart;
  if (setup(&b) != 0)
    goto done;

  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/bare.db", b.dir);
  phase("ceilings");
  double sql1 = bare_sqlite_commit(path, 20000);
  double spawn1 = bare_spawn(2000);

  double si[INLINE_CHUNKS][4], sp1[4], sp2[4], inl[INLINE_CHUNKS];
  b.env.pool = NULL;
  int64_t ev0 = events_count(b.env.store);
  for (int c = 0; c < INLINE_CHUNKS; c++) {
    phase("inline noop chunk");
    inl[c] = noop_figure(&b, "ni", N_INLINE, 1, NULL, si[c]);
  }
  int64_t ev1 = events_count(b.env.store);
  if (getenv("BENCH_EXEC_INLINE_ONLY") != NULL) { /* for profiling */
    for (int c = 0; c < INLINE_CHUNKS; c++)
      printf("inline %.0f/s (create %.2f claim %.2f run %.2f; group commit, "
             "avg group %.1f)\n",
             inl[c], si[c][0], si[c][1], si[c][2], si[c][3]);
    goto done;
  }
  phase("jsonl open probe");
  snprintf(path, sizeof path, "%s/out/open-probe", b.dir);
  double opens = jsonl_open_rate(path, 2000);
  phase("claim backlog probe");
  double probe_small = claim_backlog(&b, 200);
  double probe_big = claim_backlog(&b, 1000);
  struct cr_worker_pool_opts po = {.exe = b.exe};
  cr_worker_pool *pool = NULL;
  int rc = cr_worker_pool_new(&po, &pool);
  double p1 = -1, p2 = -1;
  struct cr_worker_pool_stats st1 = {0}, st2 = {0};
  if (rc == 0) {
    phase("process noop, 1 thread");
    p1 = noop_figure(&b, "np", N_PROCESS, 1, pool, sp1);
    cr_worker_pool_get_stats(pool, &st1);
    phase("process noop, 2 threads");
    p2 = noop_figure(&b, "nq", N_PROCESS, 2, pool, sp2);
    cr_worker_pool_get_stats(pool, &st2);
    cr_worker_pool_free(pool);
  } else {
    fail(&b, "cr_worker_pool_new", rc, NULL);
  }

  phase("pipe ceiling");
  double pipe = pipe_ceiling(EMIT_SMALL);
  snprintf(path, sizeof path, "%s/out/jsonl-ceiling", b.dir);
  phase("jsonl ceiling");
  double jsonl = jsonl_ceiling(path, EMIT_SMALL);
  double emit_ceiling = jsonl; /* the worker writes the files itself */
  struct emit_result e2, eb;
  phase("emit 2M");
  int ok2 = emit_figure(&b, EMIT_SMALL, &e2) == 0;
  long long big = EMIT_BIG;
  if (ok2 && (double)EMIT_BIG / e2.rate > EMIT_BIG_MAX_S)
    big = EMIT_FALLBACK; /* keep the whole bench near 90 s */
  phase("emit big");
  int okb = ok2 && emit_figure(&b, big, &eb) == 0;

  printf("\n");
  header();
  row("ceiling: bare SQLite, 1 row/commit (WAL, NORMAL)", sql1, "/s", "-",
      sql1);
  row("ceiling: posix_spawn /bin/true + waitpid", spawn1, "/s", "-", spawn1);
  for (int c = 0; c < INLINE_CHUNKS; c++) {
    char fig[96];
    int h = N_INLINE / NOOP_WORKS;
    if (inl[c] <= 0)
      continue;
    snprintf(fig, sizeof fig,
             "noop executions inline, 1 thread, history %d-%d/work", c * h,
             (c + 1) * h);
    row(fig, inl[c], "/s", c == 0 ? ">= 5000" : "(same)", sql1);
    printf("  %d executions: create %.2f s, claim %.2f s, run %.2f s\n",
           N_INLINE, si[c][0], si[c][1], si[c][2]);
    printf("  group commit (exec_group.h): avg %.1f completions per "
           "transaction (max %d)\n",
           si[c][3], CR_EXEC_GROUP_MAX);
  }
  printf("  events stored per inline execution: %.2f\n",
         (double)(ev1 - ev0) / (INLINE_CHUNKS * N_INLINE));
  row("  jsonl open + declare (empty file) + close", opens, "/s", "-", 0);
  printf("  one claim of %d at history %d/work, backlog 200 created: %.1f ms;"
         " backlog 1000: "
         "%.1f ms\n",
         BATCH, INLINE_CHUNKS * N_INLINE / NOOP_WORKS, probe_small * 1e3,
         probe_big * 1e3);
  if (p1 > 0) {
    row("noop executions process, 1 thread, hist 0-15", p1, "/s", ">= 2000",
        spawn1);
    printf("  %d executions: create %.2f s, claim %.2f s, run %.2f s; "
           "vs SQLite commit %.2f; avg group %.1f\n",
           N_PROCESS, sp1[0], sp1[1], sp1[2], p1 / sql1, sp1[3]);
  }
  if (p2 > 0) {
    row("noop executions process, 2 threads, hist 0-15", p2, "/s", ">= 2000",
        spawn1);
    printf("  %d executions, thread-summed: create %.2f s, claim %.2f s, "
           "run %.2f s; vs SQLite commit %.2f; avg group %.1f\n",
           N_PROCESS, sp2[0], sp2[1], sp2[2], p2 / sql1, sp2[3]);
  }
  printf("  worker pool (shared by both process runs): after 1 thread "
         "spawned %llu reused %llu retired %llu died %llu; after 2 threads "
         "spawned %llu reused %llu retired %llu died %llu\n",
         (unsigned long long)st1.spawned, (unsigned long long)st1.reused,
         (unsigned long long)st1.retired, (unsigned long long)st1.died,
         (unsigned long long)st2.spawned, (unsigned long long)st2.reused,
         (unsigned long long)st2.retired, (unsigned long long)st2.died);
  row("ref: wire RECORDS batches through a pipe", pipe, "/s", "-", 0);
  row("ceiling: jsonl destination alone (1 flush)", jsonl, "/s", "-", jsonl);
  if (ok2)
    print_emit("2M", &e2, emit_ceiling);
  if (okb) {
    char label[32];
    snprintf(label, sizeof label, "%lldM", big / 1000000);
    print_emit(label, &eb, emit_ceiling);
    printf("  emit pool: spawned %llu reused %llu (per run: fresh pool)\n",
           (unsigned long long)eb.stats.spawned,
           (unsigned long long)eb.stats.reused);
  }
  printf("total bench time %.1f s\n", now_s() - tstart);

done:
  cr_daemon_free(b.d);
  char cmd[PATH_MAX + 32];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", b.dir);
  if (system(cmd) != 0)
    b.failed = 1;
  return b.failed ? 1 : 0;
}
