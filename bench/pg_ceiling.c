/* pg_ceiling.c: the PostgreSQL ceiling of bench_scaleout (pg_ceiling.h).
 * The tables copy the shapes and indexes of the store's executions,
 * execution_transitions and events (store_sql_pg.c); each state change is
 * one statement (data-modifying CTEs), so a round trip and a commit are all
 * it costs beyond its rows. Events take their per-subject seq from the
 * state (1 to 4): a real store reads it, so the ceiling is generous. */
#include "pg_ceiling.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char SCHEMA[] =
    "SET client_min_messages = warning;"
    "DROP TABLE IF EXISTS c_events, c_transitions, c_executions;"
    "CREATE TABLE c_executions (id BIGSERIAL PRIMARY KEY,"
    "  work_id TEXT NOT NULL, state TEXT NOT NULL, attempt BIGINT NOT NULL,"
    "  runner_id TEXT, lease_epoch BIGINT NOT NULL, lease_expires_at BIGINT,"
    "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE INDEX c_executions_created ON c_executions(created_at, id)"
    "  WHERE state = 'created';"
    "CREATE INDEX c_executions_by_work ON c_executions(work_id, id);"
    "CREATE TABLE c_transitions (id BIGSERIAL PRIMARY KEY,"
    "  execution_id BIGINT NOT NULL REFERENCES c_executions(id),"
    "  from_state TEXT, to_state TEXT NOT NULL, at BIGINT NOT NULL,"
    "  reason TEXT);"
    "CREATE INDEX c_transitions_by_execution"
    "  ON c_transitions(execution_id, id);"
    "CREATE TABLE c_events (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL,"
    "  subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,"
    "  verb TEXT NOT NULL, actor TEXT, seq BIGINT NOT NULL,"
    "  data_json TEXT, UNIQUE (subject_type, subject_id, seq));"
    "CREATE INDEX c_events_by_at ON c_events(at);";

/* $1 how many, $2 the time: new executions, their ids returned. */
static const char CREATE[] =
    "WITH e AS (INSERT INTO c_executions (work_id, state, attempt,"
    "  lease_epoch, created_at, updated_at) SELECT 'w' || g, 'created', 1,"
    "  0, $2::bigint, $2::bigint FROM generate_series(1, $1::int) g"
    "  RETURNING id),"
    " t AS (INSERT INTO c_transitions (execution_id, from_state, to_state,"
    "  at, reason) SELECT id, NULL, 'created', $2::bigint, 'due' FROM e),"
    " v AS (INSERT INTO c_events (at, subject_type, subject_id, verb, actor,"
    "  seq, data_json) SELECT $2::bigint, 'execution', id::text, 'created',"
    "  'scheduler', 1, '{\"state\":\"created\"}' FROM e)"
    " SELECT id FROM e";

/* $1 the ids, $2 the time, $3 from, $4 to, $5 seq: a state change. */
static const char MOVE[] =
    "WITH e AS (UPDATE c_executions SET state = $4, runner_id = 'r1',"
    "  lease_epoch = lease_epoch + 1, lease_expires_at = $2::bigint + 60000,"
    "  updated_at = $2::bigint WHERE id = ANY($1::bigint[]) AND state = $3"
    "  RETURNING id),"
    " t AS (INSERT INTO c_transitions (execution_id, from_state, to_state,"
    "  at, reason) SELECT id, $3, $4, $2::bigint, 'runner r1' FROM e)"
    " INSERT INTO c_events (at, subject_type, subject_id, verb, actor, seq,"
    "  data_json) SELECT $2::bigint, 'execution', id::text, $4, 'runner r1',"
    "  $5::bigint, '{\"runner\":\"r1\"}' FROM e";

struct worker {
  const char *url;
  int rounds, batch, failed;
  char err[256];
  pthread_t thread;
};

/* The start line: every worker connected and prepared, then all go. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_ready, g_go;

static void start_line(void) {
  pthread_mutex_lock(&g_mu);
  g_ready++;
  pthread_cond_broadcast(&g_cv);
  while (!g_go)
    pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
}

/* Waits until n workers stand at the start line (main thread). */
static void wait_ready(int n) {
  pthread_mutex_lock(&g_mu);
  while (g_ready < n)
    pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
}

static void go(void) {
  pthread_mutex_lock(&g_mu);
  g_go = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int fail(struct worker *w, PGconn *k, PGresult *r, const char *what) {
  snprintf(w->err, sizeof w->err, "%s: %s", what,
           r ? PQresultErrorMessage(r) : PQerrorMessage(k));
  PQclear(r);
  w->failed = 1;
  return -1;
}

/* The ids of a CREATE result as an array literal: {1,2,3}. */
static char *ids_of(PGresult *r) {
  int n = PQntuples(r);
  char *s = malloc((size_t)n * 21 + 3), *p = s;
  if (s == NULL)
    return NULL;
  *p++ = '{';
  for (int i = 0; i < n; i++)
    p += sprintf(p, "%s%s", i ? "," : "", PQgetvalue(r, i, 0));
  strcpy(p, "}");
  return s;
}

/* One round: batch executions through their four states. */
static int round_once(struct worker *w, PGconn *k) {
  static const char *const states[] = {"created", "pending", "executing",
                                       "completed"};
  char n[16], at[24], seq[8];
  snprintf(n, sizeof n, "%d", w->batch);
  snprintf(at, sizeof at, "%lld", (long long)now_ms());
  const char *cp[2] = {n, at};
  PGresult *r = PQexecPrepared(k, "create", 2, cp, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != w->batch)
    return fail(w, k, r, "create");
  char *ids = ids_of(r);
  PQclear(r);
  if (ids == NULL)
    return fail(w, k, NULL, "out of memory");
  for (int s = 1; s < 4; s++) {
    snprintf(seq, sizeof seq, "%d", s + 1);
    const char *mp[5] = {ids, at, states[s - 1], states[s], seq};
    r = PQexecPrepared(k, "move", 5, mp, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK ||
        atoi(PQcmdTuples(r)) != w->batch) {
      free(ids);
      return fail(w, k, r, "move");
    }
    PQclear(r);
  }
  free(ids);
  return 0;
}

static void *work(void *arg) {
  struct worker *w = arg;
  PGconn *k = PQconnectdb(w->url);
  PGresult *a = NULL, *b = NULL;
  if (PQstatus(k) != CONNECTION_OK)
    fail(w, k, NULL, "connect");
  else if (PQresultStatus(a = PQprepare(k, "create", CREATE, 0, NULL)) !=
               PGRES_COMMAND_OK ||
           PQresultStatus(b = PQprepare(k, "move", MOVE, 0, NULL)) !=
               PGRES_COMMAND_OK)
    fail(w, k, NULL, "prepare");
  PQclear(a);
  PQclear(b);
  start_line();
  for (int i = 0; !w->failed && i < w->rounds; i++)
    round_once(w, k);
  PQfinish(k);
  return NULL;
}

static int schema(const char *url, char *err, size_t errlen) {
  PGconn *k = PQconnectdb(url);
  PGresult *r = PQstatus(k) == CONNECTION_OK ? PQexec(k, SCHEMA) : NULL;
  int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    snprintf(err, errlen, "schema: %s",
             r ? PQresultErrorMessage(r) : PQerrorMessage(k));
  PQclear(r);
  PQfinish(k);
  return ok ? 0 : -1;
}

double cr_bench_pg_ceiling(const char *url, int conns, int rounds, int batch,
                           char *err, size_t errlen) {
  struct worker w[16];
  if (conns < 1 || conns > 16 || rounds < 1 || batch < 1) {
    snprintf(err, errlen, "bad arguments");
    return -1;
  }
  if (schema(url, err, errlen) != 0)
    return -1;
  g_ready = g_go = 0;
  int started = 0, failed = 0;
  for (; started < conns; started++) {
    w[started] = (struct worker){.url = url, .rounds = rounds, .batch = batch};
    if (pthread_create(&w[started].thread, NULL, work, &w[started]) != 0)
      break;
  }
  if (started < conns) {
    failed = 1;
    snprintf(err, errlen, "cannot start a thread");
    for (int i = 0; i < started; i++)
      w[i].rounds = 0; /* read after the start line: nothing runs */
  }
  wait_ready(started);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  go();
  for (int i = 0; i < started; i++) {
    pthread_join(w[i].thread, NULL);
    if (w[i].failed && !failed) {
      failed = 1;
      snprintf(err, errlen, "%s", w[i].err);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double dt =
      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return failed || dt <= 0 ? -1 : (double)conns * rounds * batch / dt;
}
