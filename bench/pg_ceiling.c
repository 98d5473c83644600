/* pg_ceiling.c: the PostgreSQL ceilings of bench_scaleout (pg_ceiling.h).
 * The tables copy the shapes and indexes of the store's executions,
 * execution_transitions, events, outbox and delivery_attempts
 * (store_sql_pg.c), without their foreign keys and triggers. Each state
 * change is one statement (data-modifying CTEs), so a round trip and a
 * commit are all it costs beyond its rows; events take their per-subject
 * seq from the state (1 to 4) where the store reads it. Deliveries use the
 * store's own statements on an analyzed outbox. The ceilings are generous. */
#include "pg_ceiling.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
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
    "CREATE INDEX c_events_by_at ON c_events(at);"
    "DROP TABLE IF EXISTS c_outbox, c_attempts;"
    "CREATE TABLE c_outbox (subscription_id TEXT NOT NULL,"
    "  event_id BIGINT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',"
    "  attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at BIGINT,"
    "  last_status BIGINT, last_error TEXT, first_attempt_at BIGINT,"
    "  PRIMARY KEY (subscription_id, event_id));"
    "CREATE INDEX c_outbox_undelivered"
    "  ON c_outbox(subscription_id, event_id, next_attempt_at)"
    "  WHERE status IN ('pending','failed');"
    "CREATE INDEX c_outbox_by_event_id ON c_outbox(event_id);"
    "CREATE TABLE c_attempts (id BIGSERIAL PRIMARY KEY,"
    "  subscription_id TEXT NOT NULL, event_id BIGINT NOT NULL,"
    "  at BIGINT NOT NULL, http_status BIGINT, latency_ms BIGINT,"
    "  error TEXT, last_event_id BIGINT, event_count BIGINT,"
    "  batch_status TEXT);"
    "CREATE INDEX c_attempts_by_sub_at ON c_attempts(subscription_id, at);"
    /* a history the planner knows, as a store that has run a while */
    "INSERT INTO c_outbox (subscription_id, event_id, status, attempts)"
    "  SELECT 'old', g, 'delivered', 1 FROM generate_series(1, 30000) g;"
    "ANALYZE c_outbox;";

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

/* The store's outbox statements (store_sql_pg.c), on the c_ tables. $1 the
 * subscription, $2 the first event id, $3 how many, $4 the time. */
static const char ENQUEUE[] =
    "INSERT INTO c_outbox (subscription_id, event_id, status, attempts,"
    "  next_attempt_at) SELECT $1, x, 'pending', 0, $4::bigint FROM"
    "  generate_series($2::bigint, $2::bigint + $3::int - 1) x"
    "  ON CONFLICT DO NOTHING";
#define RECORDSET                                                              \
  "jsonb_to_recordset($1::jsonb) AS x(s text, e bigint, st text, nx bigint, "  \
  "hs bigint, lt bigint, er text)"
static const char SET_MANY[] =
    "UPDATE c_outbox o SET status = x.st, attempts = o.attempts + 1,"
    "  next_attempt_at = CASE WHEN x.st IN ('pending','failed') THEN x.nx"
    "  ELSE NULL END, last_status = x.hs, last_error = x.er,"
    "  first_attempt_at = COALESCE(o.first_attempt_at, $2::bigint) "
    "FROM " RECORDSET " WHERE o.subscription_id = x.s AND o.event_id = x.e";
static const char ATTEMPTS[] =
    "INSERT INTO c_attempts (subscription_id, event_id, at, http_status,"
    "  latency_ms, error) SELECT x.s, x.e, $2::bigint, x.hs, x.lt, x.er "
    "FROM " RECORDSET " WHERE EXISTS (SELECT 1 FROM c_outbox o WHERE"
    "  o.subscription_id = x.s AND o.event_id = x.e)";

struct worker {
  const char *url;
  enum cr_bench_pg_load load;
  int index, rounds, batch, failed;
  int64_t next_event;
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

/* Runs sql (no parameters, no rows) on k. */
static int simple(struct worker *w, PGconn *k, const char *sql) {
  PGresult *r = PQexec(k, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    return fail(w, k, r, sql);
  PQclear(r);
  return 0;
}

/* The delivered attempts of events first .. first + n - 1 of sub, in the
 * store's JSON shape. */
static char *attempts_json(const char *sub, int64_t first, int n) {
  size_t cap = (size_t)n * 96 + 4, o = 0;
  char *s = malloc(cap);
  if (s == NULL)
    return NULL;
  s[o++] = '[';
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(s + o, cap - o,
                          "%s{\"s\":\"%s\",\"e\":%lld,\"st\":\"delivered\","
                          "\"hs\":204,\"lt\":1}",
                          i ? "," : "", sub, (long long)(first + i));
  snprintf(s + o, cap - o, "]");
  return s;
}

/* One round of deliveries: batch events enqueued, then recorded. */
static int deliver_once(struct worker *w, PGconn *k) {
  char sub[16], first[24], n[16], at[24];
  snprintf(sub, sizeof sub, "s%d", w->index);
  snprintf(first, sizeof first, "%lld", (long long)w->next_event);
  snprintf(n, sizeof n, "%d", w->batch);
  snprintf(at, sizeof at, "%lld", (long long)now_ms());
  const char *ep[4] = {sub, first, n, at};
  PGresult *r = PQexecPrepared(k, "enqueue", 4, ep, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK || atoi(PQcmdTuples(r)) != w->batch)
    return fail(w, k, r, "enqueue");
  PQclear(r);
  char *json = attempts_json(sub, w->next_event, w->batch);
  w->next_event += w->batch;
  if (json == NULL)
    return fail(w, k, NULL, "out of memory");
  const char *rp[2] = {json, at};
  int rc = simple(w, k, "BEGIN");
  for (int i = 0; rc == 0 && i < 2; i++) {
    r = PQexecPrepared(k, i == 0 ? "set_many" : "attempts", 2, rp, NULL, NULL,
                       0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK ||
        atoi(PQcmdTuples(r)) != w->batch)
      rc = fail(w, k, r, i == 0 ? "set_many" : "attempts");
    else
      PQclear(r);
  }
  free(json);
  return rc == 0 ? simple(w, k, "COMMIT") : rc;
}

/* Prepares the statements of w's load on k. */
static int prepare(struct worker *w, PGconn *k) {
  static const char *const names[2][3] = {{"create", "move", NULL},
                                          {"enqueue", "set_many", "attempts"}};
  static const char *const texts[2][3] = {{CREATE, MOVE, NULL},
                                          {ENQUEUE, SET_MANY, ATTEMPTS}};
  int d = w->load == CR_BENCH_PG_DELIVERIES;
  for (int i = 0; i < 3 && names[d][i] != NULL; i++) {
    PGresult *r = PQprepare(k, names[d][i], texts[d][i], 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      return fail(w, k, r, names[d][i]);
    PQclear(r);
  }
  return 0;
}

static void *work(void *arg) {
  struct worker *w = arg;
  PGconn *k = PQconnectdb(w->url);
  if (PQstatus(k) != CONNECTION_OK)
    fail(w, k, NULL, "connect");
  else
    prepare(w, k);
  start_line();
  for (int i = 0; !w->failed && i < w->rounds; i++) {
    if (w->load == CR_BENCH_PG_DELIVERIES)
      deliver_once(w, k);
    else
      round_once(w, k);
  }
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

double cr_bench_pg_ceiling(const char *url, enum cr_bench_pg_load load,
                           int conns, int rounds, int batch,
                           long long window_ms[2], char *err, size_t errlen) {
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
    w[started] = (struct worker){.url = url,
                                 .load = load,
                                 .index = started,
                                 .rounds = rounds,
                                 .batch = batch,
                                 .next_event = 1000000};
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
  if (window_ms != NULL)
    window_ms[0] = now_ms();
  go();
  for (int i = 0; i < started; i++) {
    pthread_join(w[i].thread, NULL);
    if (w[i].failed && !failed) {
      failed = 1;
      snprintf(err, errlen, "%s", w[i].err);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (window_ms != NULL)
    window_ms[1] = now_ms();
  double dt =
      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  return failed || dt <= 0 ? -1 : (double)conns * rounds * batch / dt;
}
