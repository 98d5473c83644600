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
 * every other writer. A connection found dropped is reset before the next
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

/* What happened to this process's connections (cr__sql_pg_counters). */
static atomic_ullong n_reconnects, n_retries, n_lost;

struct pg {
  struct cr_sql base;
  PGconn *conn;
  const char *begin_write; /* static SQL: BEGIN; then the lock */
  const char *lock;        /* the lock alone (inside begin_write) */
  int locked;              /* the open transaction holds the lock */
  int64_t changes;
  unsigned gen;   /* connection generation (prepared statements die) */
  unsigned names; /* server-side statement names given */
  char err[512];
};

struct pg_stmt {
  struct cr_sql_stmt base;
  char *sql;
  int nparams, simple, write, persistent;
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
  PGresult *r = PQexec(c->conn, sql);
  int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_fail(c, r);
  PQclear(r);
  return rc;
}

/* A connection found dropped outside a transaction is made again. */
static int ensure(struct pg *c) {
  if (!lost(c))
    return 0;
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

void cr__sql_pg_counters(uint64_t *reconnects, uint64_t *retries,
                         uint64_t *lost_statements) {
  *reconnects = atomic_load(&n_reconnects);
  *retries = atomic_load(&n_retries);
  *lost_statements = atomic_load(&n_lost);
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
  snprintf(s->name, sizeof s->name, "cr%u", ++c->names);
  s->row = -1;
  *out = &s->base;
  return 0;
}

static void clear_result(struct pg_stmt *s) {
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
    PQclear(PQexec(c->conn, sql));
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
  if (s->simple)
    return PQexec(c->conn, s->sql);
  if (s->persistent) {
    if (s->prepared_gen != c->gen || s->prepared_gen == 0) {
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

/* A write inside a transaction that began without the write lock (a read
 * snapshot) takes it first: no write ever runs unserialized. */
static int lock_for_write(struct pg *c) {
  if (c->lock == NULL || c->locked)
    return 0;
  PGresult *r = PQexec(c->conn, c->lock);
  int rc = ok(r) ? 0 : pg_fail(c, r);
  PQclear(r);
  c->locked = rc == 0;
  return rc;
}

/* Runs s: wrapped in the write transaction when it writes outside one. */
static int run(struct pg *c, struct pg_stmt *s) {
  int idle = PQtransactionStatus(c->conn) == PQTRANS_IDLE || lost(c);
  if (idle)
    c->locked = 0;
  if (!idle && s->write) {
    int rc = lock_for_write(c);
    if (rc != 0)
      return rc;
  }
  int wrap = s->write && idle && c->begin_write != NULL;
  int safe = idle && (!s->write || wrap); /* retry after a lost connection */
  for (int attempt = 0;; attempt++) {
    int rc = idle ? ensure(c) : 0;
    if (rc != 0)
      return rc;
    if (wrap) {
      PGresult *b = PQexec(c->conn, c->begin_write);
      if (!ok(b)) {
        rc = pg_fail(c, b);
        PQclear(b);
        if (lost(c) && attempt == 0) {
          atomic_fetch_add(&n_retries, 1);
          continue;
        }
        if (PQtransactionStatus(c->conn) != PQTRANS_IDLE)
          PQclear(PQexec(c->conn, "ROLLBACK"));
        return rc;
      }
      PQclear(b);
    }
    PGresult *r = send_once(c, s);
    if (!ok(r)) {
      rc = pg_fail(c, r);
      PQclear(r);
      if (lost(c) && attempt == 0 && safe && !wrap) {
        atomic_fetch_add(&n_retries, 1);
        continue;
      }
      /* a BEGIN whose lock failed (lock_timeout) leaves no transaction */
      if ((wrap || (idle && starts(s->sql, "BEGIN"))) && !lost(c))
        PQclear(PQexec(c->conn, "ROLLBACK"));
      return rc;
    }
    if (s->simple && idle && c->begin_write != NULL &&
        strcmp(s->sql, c->begin_write) == 0)
      c->locked = 1;
    if (wrap) {
      PGresult *e = PQexec(c->conn, "COMMIT");
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
  if (s->res == NULL) {
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
  PGTransactionStatusType t = PQtransactionStatus(PG(conn)->conn);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

static const char *pg_errmsg(cr_sql *c) { return PG(c)->err; }

static int pg_exec(cr_sql *conn, const char *sql) {
  struct pg *c = PG(conn);
  int idle = PQtransactionStatus(c->conn) == PQTRANS_IDLE || lost(c);
  int rc = idle ? ensure(c) : 0;
  if (rc != 0)
    return rc;
  PGresult *r = PQexec(c->conn, sql);
  rc = ok(r) ? 0 : pg_fail(c, r);
  PQclear(r);
  return rc;
}

static void pg_close(cr_sql *conn) {
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
