/* sql_pg.c: the PostgreSQL driver of the store's SQL interface (sql.h), on
 * libpq. Statements arrive in SQLite's dialect and are rewritten once when
 * prepared (?n and ? become $n, INDEXED BY hints go); long-lived ones are
 * prepared on the server at their first run (again after a reconnection),
 * with the types of that run's integers and blobs (text and NULL let the
 * server infer). Results are read whole; values are text, booleans read as
 * 0 and 1, bytea is decoded from hex.
 *
 * A write run outside a transaction is wrapped in the store's write
 * transaction (begin_write, see store_sql_pg.c), so it is serialized with
 * every other writer. A transaction begun with SQL_BEGIN_ROWS (the store's
 * cr_store_begin_rows: READ COMMITTED) writes without that lock.
 *
 * Commands whose answer the store does not wait on travel with the next
 * statement in one pipeline (one round trip instead of one each): a
 * transaction's BEGIN and its write lock, SAVEPOINT and RELEASE of the
 * store's operations, a SET LOCAL, and a NOTIFY inside a transaction
 * (delivered at COMMIT anyway, which takes it along). COMMIT or ROLLBACK
 * drops the SAVEPOINTs, RELEASEs and SET LOCALs still waiting (a
 * transaction that never sent anything never reaches the server), and a
 * SAVEPOINT released before anything ran in it is dropped with its
 * RELEASE. A pipeline that opens its transaction (without its COMMIT) is
 * retried like a BEGIN.
 *
 * A connection found dropped is reset before the next
 * statement outside a transaction; a statement that fails because the
 * connection dropped is retried once on a new connection only when that
 * is safe: a read, or a transaction's BEGIN, outside a transaction. Never
 * silently otherwise: the error says the connection was lost. Either way
 * it is counted (cr__sql_pg_counters: /metrics, and the daemon's log). */
#include "store/sql/sql.h"

#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INT8OID 20
#define BYTEAOID 17
#define TEXTOID 25
#define CR__PG_MAXP 256 /* parameters the store's statements use, at most */
#define CR__PG_PEND 64  /* commands waiting for the next statement, at most */

/* The commands that wait for the next statement (the store's texts). */
static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_BEGIN_READ[] = "BEGIN ISOLATION LEVEL REPEATABLE READ";
static const char SQL_BEGIN_ROWS[] = "BEGIN ISOLATION LEVEL READ COMMITTED";
static const char SQL_SAVEPOINT[] = "SAVEPOINT cr_op";
static const char SQL_RELEASE[] = "RELEASE cr_op";
static const char SQL_NOTIFY[] = "SELECT pg_notify('connrun', $1)";

/* What a statement is to the deferral (pg_stmt.ctl). */
enum ctl {
  CTL_NONE,
  CTL_BEGIN_WRITE, /* the store's begin_write: BEGIN; then the lock */
  CTL_BEGIN_READ,
  CTL_BEGIN_ROWS, /* a write transaction under row locks alone */
  CTL_SAVEPOINT,
  CTL_RELEASE,
  CTL_NOTIFY,    /* the store's NOTIFY: delivered at COMMIT, answers nothing */
  CTL_SET_LOCAL, /* SET LOCAL: a setting until the transaction ends */
  CTL_END        /* COMMIT or ROLLBACK */
};

/* What happened to this process's connections (cr__sql_pg_counters). */
static atomic_ullong n_reconnects, n_retries, n_lost, n_trips, n_deferred;

/* PQexec counted as a round trip. */
static PGresult *exec1(PGconn *k, const char *sql) {
  atomic_fetch_add_explicit(&n_trips, 1, memory_order_relaxed);
  return PQexec(k, sql);
}

struct pg {
  struct cr_sql base;
  PGconn *conn;
  const char *begin_write;       /* static SQL: BEGIN; then the lock */
  const char *lock;              /* the lock alone (inside begin_write) */
  int locked;                    /* the open transaction holds the lock */
  int rows;                      /* ... writes without it (SQL_BEGIN_ROWS) */
  const char *pend[CR__PG_PEND]; /* texts waiting to be sent */
  char owned[CR__PG_PEND];       /* pend[i] is ours to free (a NOTIFY) */
  int npend;
  int pend_begin; /* pend[0] opens a transaction the server has not seen */
  int64_t changes;
  unsigned gen;   /* connection generation (prepared statements die) */
  unsigned names; /* server-side statement names given */
  char err[512];
};

struct pg_stmt {
  struct cr_sql_stmt base;
  char *sql;
  int nparams, simple, write, persistent;
  int ctl;                /* enum ctl */
  int deferred;           /* ran by waiting for the next statement: no result */
  char used[CR__PG_MAXP]; /* $n appears in the SQL */
  char name[24];
  unsigned prepared_gen; /* 0: not prepared */
  const char **vals;
  int *lens, *fmts;
  Oid *types;
  char (*num)[24];
  PGresult *res;
  int row, nrows;
  unsigned char *blob; /* the last decoded bytea */
};

static struct pg *PG(cr_sql *c) { return (struct pg *)c; }
static struct pg_stmt *PS(cr_sql_stmt *s) { return (struct pg_stmt *)s; }

/* Records res's error (or the connection's) and maps its SQLSTATE. */
static int pg_fail(struct pg *c, const PGresult *res) {
  const char *msg = res ? PQresultErrorMessage(res) : "";
  if (msg == NULL || *msg == '\0')
    msg = PQerrorMessage(c->conn);
  snprintf(c->err, sizeof c->err, "%s", msg && *msg ? msg : "unknown error");
  size_t n = strlen(c->err);
  while (n > 0 && isspace((unsigned char)c->err[n - 1]))
    c->err[--n] = '\0';
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  if (PQstatus(c->conn) != CONNECTION_OK) {
    snprintf(c->err, sizeof c->err, "the connection to PostgreSQL was lost");
    atomic_fetch_add(&n_lost, 1);
    return CR_ESTORE;
  }
  if (state == NULL)
    return CR_ESTORE;
  if (strcmp(state, "23505") == 0)
    return CR_EEXIST;
  if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
    return CR_EINVAL;
  if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
      strcmp(state, "55P03") == 0)
    return CR_EBUSY;
  if (strncmp(state, "53", 2) == 0)
    return CR_ENOMEM;
  return CR_ESTORE;
}

static int lost(const struct pg *c) {
  return PQstatus(c->conn) != CONNECTION_OK;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Session settings of every (re)connection. */
static int setup(struct pg *c) {
  char sql[160];
  PQsetNoticeProcessor(c->conn, quiet, NULL);
  snprintf(sql, sizeof sql,
           "SET lock_timeout = %d; SET client_min_messages = warning; "
           "SET application_name = 'connrun'",
           CR_STORE_BUSY_TIMEOUT_MS);
  PGresult *r = exec1(c->conn, sql);
  int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_fail(c, r);
  PQclear(r);
  return rc;
}

/* Makes the connection again: prepared statements are gone (gen). */
static int reconnect(struct pg *c) {
  PQreset(c->conn);
  c->gen++;
  if (lost(c)) {
    snprintf(c->err, sizeof c->err, "cannot reconnect to PostgreSQL: %s",
             PQerrorMessage(c->conn));
    return CR_ESTORE;
  }
  atomic_fetch_add(&n_reconnects, 1);
  return setup(c);
}

/* A connection found dropped outside a transaction is made again. */
static int ensure(struct pg *c) { return lost(c) ? reconnect(c) : 0; }

void cr__sql_pg_counters(struct cr_store_conn_counters *out) {
  out->reconnects = atomic_load(&n_reconnects);
  out->retries = atomic_load(&n_retries);
  out->lost_statements = atomic_load(&n_lost);
  out->round_trips = atomic_load(&n_trips);
  out->deferred = atomic_load(&n_deferred);
}

/* ---- Statements ---------------------------------------------------------- */

static int starts(const char *s, const char *word) {
  while (isspace((unsigned char)*s))
    s++;
  return strncasecmp(s, word, strlen(word)) == 0;
}

/* SQLite's dialect to PostgreSQL's: parameters and INDEXED BY hints. */
static char *translate(const char *in, int *nparams, char *used) {
  size_t cap = strlen(in) * 2 + 16, o = 0;
  char *out = cr__malloc(cap);
  int anon = 0, quote = 0, maxp = 0;
  if (out == NULL)
    return NULL;
  for (const char *p = in; *p;) {
    if (*p == '\'')
      quote = !quote;
    if (!quote && *p == '?') {
      int n = 0;
      p++;
      if (isdigit((unsigned char)*p))
        n = (int)strtol(p, (char **)&p, 10);
      else
        n = ++anon;
      o += (size_t)snprintf(out + o, cap - o, "$%d", n);
      if (n > 0 && n <= CR__PG_MAXP)
        used[n - 1] = 1;
      maxp = n > maxp ? n : maxp;
      continue;
    }
    if (!quote && strncmp(p, "INDEXED BY ", 11) == 0) {
      p += 11;
      while (*p && !isspace((unsigned char)*p))
        p++;
      while (isspace((unsigned char)*p))
        p++;
      continue;
    }
    out[o++] = *p++;
  }
  out[o] = '\0';
  *nparams = maxp;
  return out;
}

static enum ctl classify(const struct pg *c, const char *sql) {
  if (c->begin_write != NULL && strcmp(sql, c->begin_write) == 0)
    return CTL_BEGIN_WRITE;
  if (strcmp(sql, SQL_BEGIN_READ) == 0)
    return CTL_BEGIN_READ;
  if (strcmp(sql, SQL_BEGIN_ROWS) == 0)
    return CTL_BEGIN_ROWS;
  if (strcmp(sql, SQL_SAVEPOINT) == 0)
    return CTL_SAVEPOINT;
  if (strcmp(sql, SQL_RELEASE) == 0)
    return CTL_RELEASE;
  if (strcmp(sql, SQL_NOTIFY) == 0)
    return CTL_NOTIFY;
  if (strcmp(sql, "COMMIT") == 0 || strcmp(sql, "ROLLBACK") == 0)
    return CTL_END;
  if (starts(sql, "SET LOCAL "))
    return CTL_SET_LOCAL;
  return CTL_NONE;
}

static int pg_prepare(cr_sql *conn, const char *sql, int persistent,
                      cr_sql_stmt **out) {
  struct pg *c = PG(conn);
  struct pg_stmt *s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return CR_ENOMEM;
  s->base.conn = conn;
  s->sql = translate(sql, &s->nparams, s->used);
  int n = s->nparams > 0 ? s->nparams : 1;
  s->vals = cr__calloc((size_t)n, sizeof *s->vals);
  s->lens = cr__calloc((size_t)n, sizeof *s->lens);
  s->fmts = cr__calloc((size_t)n, sizeof *s->fmts);
  s->types = cr__calloc((size_t)n, sizeof *s->types);
  s->num = cr__calloc((size_t)n, sizeof *s->num);
  if (!s->sql || !s->vals || !s->lens || !s->fmts || !s->types || !s->num) {
    conn->drv->finalize(&s->base);
    return CR_ENOMEM;
  }
  for (int k = 0; k < s->nparams; k++)
    s->types[k] = k < CR__PG_MAXP && s->used[k] ? 0 : TEXTOID;
  s->simple = s->nparams == 0 && strchr(s->sql, ';') != NULL;
  s->write = starts(s->sql, "INSERT") || starts(s->sql, "UPDATE") ||
             starts(s->sql, "DELETE") || starts(s->sql, "WITH");
  s->persistent = persistent && !s->simple;
  s->ctl = classify(c, s->sql);
  snprintf(s->name, sizeof s->name, "cr%u", ++c->names);
  s->row = -1;
  *out = &s->base;
  return 0;
}

static void clear_result(struct pg_stmt *s) {
  s->deferred = 0;
  PQclear(s->res);
  s->res = NULL;
  s->row = -1;
  s->nrows = 0;
  PQfreemem(s->blob);
  s->blob = NULL;
}

static void pg_finalize(cr_sql_stmt *st) {
  struct pg_stmt *s = PS(st);
  struct pg *c = PG(st->conn);
  clear_result(s);
  if (s->prepared_gen != 0 && s->prepared_gen == c->gen && !lost(c) &&
      PQtransactionStatus(c->conn) == PQTRANS_IDLE) {
    char sql[48];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
    PQclear(exec1(c->conn, sql));
  }
  cr__free(s->sql);
  cr__free(s->vals);
  cr__free(s->lens);
  cr__free(s->fmts);
  cr__free(s->types);
  cr__free(s->num);
  cr__free(s);
}

static int slot(struct pg_stmt *s, int i) {
  return i >= 1 && i <= s->nparams ? i - 1 : -1;
}

static void pg_bind_i64(cr_sql_stmt *st, int i, int64_t v) {
  struct pg_stmt *s = PS(st);
  int k = slot(s, i);
  if (k < 0)
    return;
  snprintf(s->num[k], sizeof s->num[k], "%lld", (long long)v);
  s->vals[k] = s->num[k];
  s->lens[k] = 0;
  s->fmts[k] = 0;
  s->types[k] = INT8OID;
}

/* Text lets the server infer the type; a parameter the statement leaves
 * out (bound all the same) must be given one. */
static void pg_bind_text(cr_sql_stmt *st, int i, const char *v) {
  struct pg_stmt *s = PS(st);
  int k = slot(s, i);
  if (k < 0)
    return;
  s->vals[k] = v;
  s->lens[k] = 0;
  s->fmts[k] = 0;
  s->types[k] = k < CR__PG_MAXP && s->used[k] ? 0 : TEXTOID;
}

static void pg_bind_blob(cr_sql_stmt *st, int i, const void *v, size_t n) {
  struct pg_stmt *s = PS(st);
  int k = slot(s, i);
  if (k < 0)
    return;
  s->vals[k] = v != NULL ? v : "";
  s->lens[k] = (int)n;
  s->fmts[k] = 1;
  s->types[k] = BYTEAOID;
}

static void pg_bind_null(cr_sql_stmt *st, int i) { pg_bind_text(st, i, NULL); }

/* Sends s once; NULL result on a failure to send. */
static PGresult *send_once(struct pg *c, struct pg_stmt *s) {
  atomic_fetch_add_explicit(&n_trips, 1, memory_order_relaxed);
  if (s->simple)
    return PQexec(c->conn, s->sql);
  if (s->persistent) {
    if (s->prepared_gen != c->gen || s->prepared_gen == 0) {
      atomic_fetch_add_explicit(&n_trips, 1, memory_order_relaxed);
      PGresult *p = PQprepare(c->conn, s->name, s->sql, s->nparams, s->types);
      if (PQresultStatus(p) != PGRES_COMMAND_OK)
        return p;
      PQclear(p);
      s->prepared_gen = c->gen;
    }
    return PQexecPrepared(c->conn, s->name, s->nparams, s->vals, s->lens,
                          s->fmts, 0);
  }
  return PQexecParams(c->conn, s->sql, s->nparams, s->types, s->vals, s->lens,
                      s->fmts, 0);
}

static int ok(const PGresult *r) {
  ExecStatusType t = PQresultStatus(r);
  return t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
}

/* ---- Commands that wait for the next statement ---------------------------
 */

/* Forgets what waits from position k on. */
static void drop_from(struct pg *c, int k) {
  for (int i = k; i < c->npend; i++)
    if (c->owned[i])
      cr__free((void *)c->pend[i]);
  c->npend = k;
}

/* Forgets what waits (sent, or its transaction is gone). */
static void forget(struct pg *c) {
  drop_from(c, 0);
  c->pend_begin = 0;
}

/* Sends what waits, and sql after it when not NULL, as one simple query (one
 * round trip; the texts take no parameters). */
static int flush_simple(struct pg *c, const char *sql) {
  size_t n = sql != NULL ? strlen(sql) + 1 : 1;
  for (int i = 0; i < c->npend; i++)
    n += strlen(c->pend[i]) + 1;
  char *text = cr__malloc(n);
  if (text == NULL)
    return CR_ENOMEM;
  size_t o = 0;
  for (int i = 0; i < c->npend; i++)
    o += (size_t)sprintf(text + o, "%s;", c->pend[i]);
  sprintf(text + o, "%s", sql != NULL ? sql : "");
  PGresult *r = exec1(c->conn, text);
  cr__free(text);
  int rc = ok(r) ? 0 : pg_fail(c, r);
  PQclear(r);
  forget(c);
  return rc;
}

/* Queues sql at position at: static, or owned (cr__malloc'd; freed when
 * forgotten, even when this fails). */
static int pend_at(struct pg *c, int at, const char *sql, int owned) {
  if (c->npend == CR__PG_PEND) {
    int rc = flush_simple(c, NULL);
    if (rc != 0) {
      if (owned)
        cr__free((void *)sql);
      return rc;
    }
    at = 0;
  }
  memmove(&c->pend[at + 1], &c->pend[at],
          (size_t)(c->npend - at) * sizeof c->pend[0]);
  memmove(&c->owned[at + 1], &c->owned[at], (size_t)(c->npend - at));
  c->pend[at] = sql;
  c->owned[at] = (char)owned;
  c->npend++;
  return 0;
}

/* The store's NOTIFY with its payload (bound as text) in the SQL. */
static int pend_notify(struct pg *c, const struct pg_stmt *s) {
  if (s->vals[0] == NULL || s->fmts[0] != 0)
    return CR_EINVAL;
  char *lit = PQescapeLiteral(c->conn, s->vals[0], strlen(s->vals[0]));
  if (lit == NULL)
    return CR_ENOMEM;
  size_t n = strlen(lit) + 40;
  char *sql = cr__malloc(n);
  if (sql == NULL) {
    PQfreemem(lit);
    return CR_ENOMEM;
  }
  snprintf(sql, n, "SELECT pg_notify('connrun', %s)", lit);
  PQfreemem(lit);
  return pend_at(c, c->npend, sql, 1);
}

/* COMMIT ends every savepoint: keeps only the BEGIN, its lock and the
 * NOTIFYs waiting. Returns whether a NOTIFY waits. */
static int keep_for_commit(struct pg *c) {
  int k = 0, notify = 0;
  for (int i = 0; i < c->npend; i++) {
    if (c->pend[i] == SQL_SAVEPOINT || c->pend[i] == SQL_RELEASE ||
        starts(c->pend[i], "SET LOCAL "))
      continue;
    notify |= c->owned[i];
    c->pend[k] = c->pend[i];
    c->owned[k++] = c->owned[i];
  }
  c->npend = k;
  return notify;
}

/* A transaction's BEGIN (ctl says which) and, for a serialized write, the
 * lock: sent with the next statement. A connection found dropped is made
 * again first. */
static int pend_begin(struct pg *c, enum ctl ctl) {
  int rc = ensure(c);
  if (rc != 0)
    return rc;
  forget(c);
  int write = ctl == CTL_BEGIN_WRITE;
  c->owned[0] = c->owned[1] = 0;
  c->pend[c->npend++] = write                   ? SQL_BEGIN
                        : ctl == CTL_BEGIN_ROWS ? SQL_BEGIN_ROWS
                                                : SQL_BEGIN_READ;
  if (write)
    c->pend[c->npend++] = c->lock;
  c->pend_begin = 1;
  c->locked = write;
  c->rows = ctl == CTL_BEGIN_ROWS;
  return 0;
}

/* A write inside a transaction that began without the write lock (a read
 * snapshot) takes it first, before any savepoint still waiting: no write
 * ever runs unserialized. */
static int lock_for_write(struct pg *c) {
  if (c->lock == NULL || c->locked || c->rows)
    return 0;
  c->locked = 1;
  return pend_at(c, c->pend_begin ? 1 : 0, c->lock, 0);
}

/* Runs s by making it wait for the next statement when it can: returns 1
 * (and *rc) when it did. idle: no transaction is open, or waits to open. */
static int defer(struct pg *c, struct pg_stmt *s, int idle, int *rc) {
  *rc = 0;
  switch (s->ctl) {
  case CTL_BEGIN_WRITE:
  case CTL_BEGIN_READ:
  case CTL_BEGIN_ROWS:
    if (!idle || (s->ctl == CTL_BEGIN_WRITE && c->lock == NULL))
      return 0;
    *rc = pend_begin(c, (enum ctl)s->ctl);
    break;
  case CTL_SAVEPOINT:
    if (idle)
      return 0;
    *rc = pend_at(c, c->npend, SQL_SAVEPOINT, 0);
    break;
  case CTL_RELEASE:
    if (idle)
      return 0;
    if (c->npend > 0 && c->pend[c->npend - 1] == SQL_SAVEPOINT)
      c->npend--; /* nothing ran in it */
    else
      *rc = pend_at(c, c->npend, SQL_RELEASE, 0);
    break;
  case CTL_NOTIFY:
    if (idle || pend_notify(c, s) != 0)
      return 0; /* sent now */
    break;
  case CTL_SET_LOCAL: /* s->sql lives as long as the store's statement */
    if (idle)
      return 0;
    *rc = pend_at(c, c->npend, s->sql, 0);
    break;
  case CTL_END:
    if (s->sql[0] == 'C' && keep_for_commit(c))
      return 0; /* the NOTIFYs go with the COMMIT */
    if (!c->pend_begin) {
      drop_from(c, 0); /* COMMIT or ROLLBACK ends every savepoint */
      return 0;
    }
    forget(c); /* the server never saw this transaction */
    c->locked = c->rows = 0;
    break;
  default:
    return 0;
  }
  if (*rc == 0) {
    s->deferred = 1;
    atomic_fetch_add_explicit(&n_deferred, 1, memory_order_relaxed);
  }
  return 1;
}

/* Sends what waits, then s, in one pipeline; returns s's result, or the
 * first failure's (NULL when the pipeline could not be sent). */
static PGresult *send_piped(struct pg *c, struct pg_stmt *s) {
  PGconn *k = c->conn;
  int prep = s->persistent && s->prepared_gen != c->gen;
  int cmds = c->npend + prep + 1, sent = PQenterPipelineMode(k) == 1;
  atomic_fetch_add_explicit(&n_trips, 1, memory_order_relaxed);
  for (int i = 0; sent && i < c->npend; i++)
    sent = PQsendQueryParams(k, c->pend[i], 0, NULL, NULL, NULL, NULL, 0);
  if (sent && prep)
    sent = PQsendPrepare(k, s->name, s->sql, s->nparams, s->types);
  if (sent && s->persistent)
    sent = PQsendQueryPrepared(k, s->name, s->nparams, s->vals, s->lens,
                               s->fmts, 0);
  else if (sent)
    sent = PQsendQueryParams(k, s->sql, s->nparams, s->types, s->vals, s->lens,
                             s->fmts, 0);
  sent = sent && PQpipelineSync(k) == 1;
  PGresult *bad = NULL, *mine = NULL;
  for (int i = 0; sent && i < cmds; i++) {
    PGresult *r = PQgetResult(k);
    if (r == NULL) {
      sent = 0;
      break;
    }
    PGresult *end = PQgetResult(k); /* NULL: the command's end */
    PQclear(end);
    if (prep && i == cmds - 2 && ok(r))
      s->prepared_gen = c->gen;
    if (i == cmds - 1 && bad == NULL)
      mine = r;
    else if (bad == NULL && !ok(r))
      bad = r;
    else
      PQclear(r);
  }
  if (sent) {
    PGresult *sync = PQgetResult(k);
    sent = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
  }
  if (PQexitPipelineMode(k) != 1 && !lost(c)) {
    /* out of step with the server: start again (the transaction is
     * gone, and so are the prepared statements) */
    (void)reconnect(c);
    sent = 0;
  }
  if (!sent || lost(c)) {
    PQclear(mine);
    if (bad == NULL && !lost(c))
      snprintf(c->err, sizeof c->err, "a pipeline to PostgreSQL failed");
    return bad;
  }
  return bad != NULL ? bad : mine;
}

/* Sends s with what waits; NULL result on a failure to send. */
static PGresult *send_all(struct pg *c, struct pg_stmt *s) {
  if (c->npend == 0)
    return send_once(c, s);
  if (!s->simple)
    return send_piped(c, s);
  if (flush_simple(c, NULL) != 0)
    return NULL;
  return send_once(c, s);
}

/* Runs s: wrapped in the write transaction when it writes outside one. */
static int run(struct pg *c, struct pg_stmt *s) {
  int rc = 0;
  int idle = !c->pend_begin &&
             (PQtransactionStatus(c->conn) == PQTRANS_IDLE || lost(c));
  if (idle) {
    c->locked = c->rows = 0;
    drop_from(c, 0);
  }
  if (defer(c, s, idle, &rc))
    return rc;
  if (!idle && s->write && (rc = lock_for_write(c)) != 0)
    return rc;
  int wrap = s->write && idle && c->begin_write != NULL;
  if (wrap && c->lock != NULL && (rc = pend_begin(c, CTL_BEGIN_WRITE)) != 0)
    return rc;
  /* retried after a lost connection: a read outside a transaction, or a
   * pipeline that opens its transaction (nothing it ran is committed) */
  int opens = c->pend_begin;
  int safe = (idle && !s->write) || (opens && s->ctl != CTL_END);
  for (int attempt = 0;; attempt++) {
    rc = idle || opens ? ensure(c) : 0;
    if (rc != 0) {
      forget(c);
      return rc;
    }
    if (wrap && c->lock == NULL) {
      PGresult *b = exec1(c->conn, c->begin_write);
      rc = ok(b) ? 0 : pg_fail(c, b);
      PQclear(b);
      if (rc != 0) {
        if (lost(c) && attempt == 0) {
          atomic_fetch_add(&n_retries, 1);
          continue;
        }
        return rc;
      }
    }
    PGresult *r = send_all(c, s);
    if (!ok(r)) {
      rc = pg_fail(c, r);
      PQclear(r);
      if (lost(c) && attempt == 0 && safe) {
        atomic_fetch_add(&n_retries, 1);
        continue;
      }
      forget(c);
      /* a wrapped write's failure (its lock's lock_timeout among them)
       * leaves no transaction */
      if ((wrap || (idle && starts(s->sql, "BEGIN"))) && !lost(c) &&
          PQtransactionStatus(c->conn) != PQTRANS_IDLE)
        PQclear(exec1(c->conn, "ROLLBACK"));
      return rc;
    }
    forget(c);
    if (s->simple && idle && c->begin_write != NULL &&
        strcmp(s->sql, c->begin_write) == 0)
      c->locked = 1;
    if (wrap) {
      PGresult *e = exec1(c->conn, "COMMIT");
      if (!ok(e)) {
        rc = pg_fail(c, e);
        PQclear(e);
        PQclear(r);
        return rc;
      }
      PQclear(e);
    }
    /* COMMIT of a transaction a failure aborted answers ROLLBACK. */
    if (strcmp(PQcmdStatus(r), "ROLLBACK") == 0 && starts(s->sql, "COMMIT")) {
      PQclear(r);
      snprintf(c->err, sizeof c->err,
               "the transaction was rolled back after an error");
      return CR_ECANCELED;
    }
    const char *tuples = PQcmdTuples(r);
    if (tuples != NULL && *tuples != '\0')
      c->changes = strtoll(tuples, NULL, 10);
    s->res = r;
    /* several statements (a BEGIN and its lock) return no rows */
    s->nrows =
        PQresultStatus(r) == PGRES_TUPLES_OK && !s->simple ? PQntuples(r) : 0;
    s->row = -1;
    return 0;
  }
}

static int pg_step(cr_sql_stmt *st) {
  struct pg_stmt *s = PS(st);
  if (s->res == NULL && !s->deferred) {
    int rc = run(PG(st->conn), s);
    if (rc != 0)
      return rc;
  }
  PQfreemem(s->blob);
  s->blob = NULL;
  if (s->row + 1 < s->nrows) {
    s->row++;
    return CR_SQL_ROW;
  }
  s->row = s->nrows;
  return CR_SQL_DONE;
}

static void pg_reset(cr_sql_stmt *st) {
  struct pg_stmt *s = PS(st);
  clear_result(s);
  for (int k = 0; k < s->nparams; k++) {
    s->vals[k] = NULL;
    s->types[k] = k < CR__PG_MAXP && s->used[k] ? 0 : TEXTOID;
    s->fmts[k] = 0;
    s->lens[k] = 0;
  }
}

static int pg_ncols(cr_sql_stmt *st) {
  return PS(st)->res ? PQnfields(PS(st)->res) : 0;
}

static int in_row(struct pg_stmt *s, int i) {
  return s->res != NULL && s->row >= 0 && s->row < s->nrows && i >= 0 &&
         i < PQnfields(s->res);
}

static int pg_col_null(cr_sql_stmt *st, int i) {
  struct pg_stmt *s = PS(st);
  return !in_row(s, i) || PQgetisnull(s->res, s->row, i);
}

static const char *pg_col_text(cr_sql_stmt *st, int i) {
  struct pg_stmt *s = PS(st);
  return pg_col_null(st, i) ? NULL : PQgetvalue(s->res, s->row, i);
}

static int64_t pg_col_i64(cr_sql_stmt *st, int i) {
  const char *t = pg_col_text(st, i);
  if (t == NULL)
    return 0;
  if (t[0] == 't' && t[1] == '\0')
    return 1;
  return strtoll(t, NULL, 10); /* "f" and non-numbers read 0 */
}

static const void *pg_col_blob(cr_sql_stmt *st, int i, size_t *n) {
  struct pg_stmt *s = PS(st);
  *n = 0;
  const char *t = pg_col_text(st, i);
  if (t == NULL)
    return NULL;
  PQfreemem(s->blob);
  s->blob = PQunescapeBytea((const unsigned char *)t, n);
  return s->blob;
}

static int64_t pg_changes(cr_sql *c) { return PG(c)->changes; }

static int pg_in_txn(cr_sql *conn) {
  if (PG(conn)->pend_begin)
    return 1;
  PGTransactionStatusType t = PQtransactionStatus(PG(conn)->conn);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static const char *pg_errmsg(cr_sql *c) { return PG(c)->err; }

static int pg_exec(cr_sql *conn, const char *sql) {
  struct pg *c = PG(conn);
  int idle = !c->pend_begin &&
             (PQtransactionStatus(c->conn) == PQTRANS_IDLE || lost(c));
  if (idle)
    forget(c);
  int rc = idle ? ensure(c) : 0;
  if (rc != 0)
    return rc;
  if (c->npend > 0)
    return flush_simple(c, sql);
  PGresult *r = exec1(c->conn, sql);
  rc = ok(r) ? 0 : pg_fail(c, r);
  PQclear(r);
  return rc;
}

static void pg_close(cr_sql *conn) {
  forget(PG(conn));
  PQfinish(PG(conn)->conn);
  cr__free(conn);
}

static const struct cr_sql_driver pg_driver = {
    .name = "postgresql",
    .dialect = CR_SQL_PG,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .bind_i64 = pg_bind_i64,
    .bind_text = pg_bind_text,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .reset = pg_reset,
    .ncols = pg_ncols,
    .col_null = pg_col_null,
    .col_i64 = pg_col_i64,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .changes = pg_changes,
    .in_txn = pg_in_txn,
    .errmsg = pg_errmsg,
    .exec = pg_exec,
    .close = pg_close,
};

int cr__sql_pg_open(const char *url, const char *begin_write, cr_sql **out,
                    char *errbuf, size_t errlen) {
  *out = NULL;
  struct pg *c = cr__calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return CR_ENOMEM;
  }
  c->base.drv = &pg_driver;
  c->begin_write = begin_write;
  const char *semi = begin_write != NULL ? strchr(begin_write, ';') : NULL;
  c->lock = semi != NULL ? semi + 1 : NULL;
  c->gen = 1;
  c->conn = PQconnectdb(url);
  if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
    const char *m = c->conn ? PQerrorMessage(c->conn) : "out of memory";
    snprintf(errbuf, errlen, "cannot connect to PostgreSQL: %s", m);
    size_t n = strlen(errbuf);
    while (n > 0 && isspace((unsigned char)errbuf[n - 1]))
      errbuf[--n] = '\0';
    PQfinish(c->conn);
    cr__free(c);
    return CR_ESTORE;
  }
  int rc = setup(c);
  if (rc != 0) {
    snprintf(errbuf, errlen, "%s", c->err);
    PQfinish(c->conn);
    cr__free(c);
    return rc;
  }
  *out = &c->base;
  return 0;
}
