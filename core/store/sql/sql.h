/* sql.h: the SQL driver interface of the store (internal): one connection
 * (cr_sql) and its prepared statements (cr_sql_stmt), behind a table of
 * functions each driver fills, as curl's lib/vtls/ does for TLS backends.
 * The store's operations (store_sql*.c) are written once against it; a
 * driver per database (sql_sqlite.c, sql_pg.c) maps it to the client
 * library.
 *
 * SQL is written in SQLite's dialect with numbered parameters (?1, ?2 ...)
 * or anonymous ones (?); the PostgreSQL driver rewrites the parameters to
 * $n and drops SQLite's INDEXED BY hints. What differs beyond that is given
 * per statement by the store (store_sql_pg.c).
 *
 * Ownership: a statement belongs to its connection and is finalized before
 * it closes; text and blobs bound are borrowed until the statement is reset;
 * column values are owned by the statement and valid until the next step or
 * reset. Not thread-safe: one connection per thread. */
#ifndef CR_SQL_DRIVER_H
#define CR_SQL_DRIVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct cr_sql cr_sql;
typedef struct cr_sql_stmt cr_sql_stmt;

/* cr__sql_step results; a failure is a negative cr_err code. */
#define CR_SQL_DONE 0
#define CR_SQL_ROW 1

enum cr_sql_dialect { CR_SQL_SQLITE, CR_SQL_PG };

struct cr_sql_driver {
  const char *name;
  enum cr_sql_dialect dialect;
  /* persistent: the statement lives long (a cache). */
  int (*prepare)(cr_sql *c, const char *sql, int persistent, cr_sql_stmt **out);
  void (*finalize)(cr_sql_stmt *st);
  void (*bind_i64)(cr_sql_stmt *st, int i, int64_t v);
  void (*bind_text)(cr_sql_stmt *st, int i, const char *v);
  void (*bind_blob)(cr_sql_stmt *st, int i, const void *v, size_t n);
  void (*bind_null)(cr_sql_stmt *st, int i);
  int (*step)(cr_sql_stmt *st);
  void (*reset)(cr_sql_stmt *st);
  int (*ncols)(cr_sql_stmt *st);
  int (*col_null)(cr_sql_stmt *st, int i);
  int64_t (*col_i64)(cr_sql_stmt *st, int i);
  const char *(*col_text)(cr_sql_stmt *st, int i);
  const void *(*col_blob)(cr_sql_stmt *st, int i, size_t *n);
  int64_t (*changes)(cr_sql *c);
  int (*in_txn)(cr_sql *c);
  const char *(*errmsg)(cr_sql *c);
  int (*exec)(cr_sql *c, const char *sql);
  void (*close)(cr_sql *c);
};

/* The base of every driver's connection and statement. */
struct cr_sql {
  const struct cr_sql_driver *drv;
};
struct cr_sql_stmt {
  cr_sql *conn;
};

/* Prepares sql (borrowed) on c into *out (owned by the caller until
 * cr__sql_finalize). A failure is a cr_err code with cr__sql_errmsg(c). */
static inline int cr__sql_prepare(cr_sql *c, const char *sql, int persistent,
                                  cr_sql_stmt **out) {
  return c->drv->prepare(c, sql, persistent, out);
}
/* Frees st (NULL is a no-op). */
static inline void cr__sql_finalize(cr_sql_stmt *st) {
  if (st != NULL)
    st->conn->drv->finalize(st);
}
/* Binds parameter i (from 1). Text NULL binds SQL NULL. */
static inline void cr__sql_bind_i64(cr_sql_stmt *st, int i, int64_t v) {
  st->conn->drv->bind_i64(st, i, v);
}
static inline void cr__sql_bind_text(cr_sql_stmt *st, int i, const char *v) {
  st->conn->drv->bind_text(st, i, v);
}
static inline void cr__sql_bind_blob(cr_sql_stmt *st, int i, const void *v,
                                     size_t n) {
  st->conn->drv->bind_blob(st, i, v, n);
}
static inline void cr__sql_bind_null(cr_sql_stmt *st, int i) {
  st->conn->drv->bind_null(st, i);
}
/* Runs st or moves to its next row: CR_SQL_ROW, CR_SQL_DONE or a negative
 * cr_err (CR_EEXIST for a unique violation, CR_EINVAL for another
 * constraint, CR_EBUSY when locked, CR_ENOMEM, CR_ESTORE otherwise). */
static inline int cr__sql_step(cr_sql_stmt *st) {
  return st->conn->drv->step(st);
}
/* Makes st ready to run again and clears its bindings. */
static inline void cr__sql_reset(cr_sql_stmt *st) { st->conn->drv->reset(st); }
/* Columns of the current row (from 0). Booleans read as 0 or 1. */
static inline int cr__sql_ncols(cr_sql_stmt *st) {
  return st->conn->drv->ncols(st);
}
static inline int cr__sql_col_null(cr_sql_stmt *st, int i) {
  return st->conn->drv->col_null(st, i);
}
static inline int64_t cr__sql_col_i64(cr_sql_stmt *st, int i) {
  return st->conn->drv->col_i64(st, i);
}
/* NULL for SQL NULL. */
static inline const char *cr__sql_col_text(cr_sql_stmt *st, int i) {
  return st->conn->drv->col_text(st, i);
}
static inline const void *cr__sql_col_blob(cr_sql_stmt *st, int i, size_t *n) {
  return st->conn->drv->col_blob(st, i, n);
}
/* Rows changed by the last INSERT, UPDATE or DELETE run on c. */
static inline int64_t cr__sql_changes(cr_sql *c) { return c->drv->changes(c); }
/* 1 while a transaction is open on c (also one that failed and waits for
 * its ROLLBACK). */
static inline int cr__sql_in_txn(cr_sql *c) { return c->drv->in_txn(c); }
/* The message of c's last failure (owned by c). */
static inline const char *cr__sql_errmsg(cr_sql *c) {
  return c->drv->errmsg(c);
}
/* Runs sql (borrowed; one or more statements, no parameters). */
static inline int cr__sql_exec(cr_sql *c, const char *sql) {
  return c->drv->exec(c, sql);
}
/* Closes c (NULL is a no-op); an open transaction is rolled back. */
static inline void cr__sql_close(cr_sql *c) {
  if (c != NULL)
    c->drv->close(c);
}

/* Opens the SQLite database file at path (":memory:" for a private one).
 * On failure *out may hold a connection to close and errbuf the reason. */
/* Write transactions ended so far by the SQLite connections of this
 * process, counted once they ended (their steps and resets run through this
 * driver): when it has not changed, no connection of this process wrote
 * since. */
uint64_t cr__sql_sqlite_commits(void);

/* Whether statement st (of a SQLite connection) never writes. */
int cr__sql_sqlite_readonly(cr_sql_stmt *st);

/* Whether the transaction open on SQLite connection c has written. */
int cr__sql_sqlite_wrote(cr_sql *c);

int cr__sql_sqlite_open(const char *path, cr_sql **out, char *errbuf,
                        size_t errlen);

/* Opens a PostgreSQL connection from a libpq URL (postgresql://...; its
 * password never reaches errbuf). begin_write (static, may be NULL) opens a
 * write transaction: a write run outside a transaction runs inside one. */
int cr__sql_pg_open(const char *url, const char *begin_write, cr_sql **out,
                    char *errbuf, size_t errlen);

struct cr_store_conn_counters;

/* This process's PostgreSQL connections since it started (store.h says
 * what each counter counts) into *out. */
void cr__sql_pg_counters(struct cr_store_conn_counters *out);

#endif
