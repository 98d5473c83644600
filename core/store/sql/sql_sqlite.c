/* sql_sqlite.c: the SQLite driver of the store's SQL interface (sql.h): a
 * connection opened with extended result codes and a busy handler that
 * waits in short, growing steps; statements are sqlite3_stmt. */
#include "store/sql/sql.h"

#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct lite {
  struct cr_sql base;
  sqlite3 *db;
};
struct lite_stmt {
  struct cr_sql_stmt base;
  sqlite3_stmt *st;
};

static sqlite3 *DB(cr_sql *c) { return ((struct lite *)c)->db; }
static sqlite3_stmt *ST(cr_sql_stmt *s) { return ((struct lite_stmt *)s)->st; }

/* Maps an SQLite result code to a cr_err code. */
static int lite_err(cr_sql *c, int rc) {
  int ext = sqlite3_extended_errcode(DB(c));
  if (ext == SQLITE_OK || ext == SQLITE_ROW || ext == SQLITE_DONE)
    ext = rc;
  switch (ext & 0xff) {
  case SQLITE_CONSTRAINT:
    return ext == SQLITE_CONSTRAINT_PRIMARYKEY ||
                   ext == SQLITE_CONSTRAINT_UNIQUE
               ? CR_EEXIST
               : CR_EINVAL;
  case SQLITE_NOMEM:
    return CR_ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return CR_EBUSY;
  default:
    return CR_ESTORE;
  }
}

static int lite_prepare(cr_sql *c, const char *sql, int persistent,
                        cr_sql_stmt **out) {
  struct lite_stmt *s = cr__calloc(1, sizeof *s);
  if (s == NULL)
    return CR_ENOMEM;
  s->base.conn = c;
  int rc = sqlite3_prepare_v3(
      DB(c), sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s->st, NULL);
  if (rc != SQLITE_OK) {
    cr__free(s);
    return lite_err(c, rc);
  }
  *out = &s->base;
  return 0;
}

static void lite_finalize(cr_sql_stmt *st) {
  sqlite3_finalize(ST(st));
  cr__free(st);
}

static void lite_bind_i64(cr_sql_stmt *st, int i, int64_t v) {
  sqlite3_bind_int64(ST(st), i, v);
}

static void lite_bind_text(cr_sql_stmt *st, int i, const char *v) {
  sqlite3_bind_text(ST(st), i, v, -1, SQLITE_STATIC); /* NULL binds NULL */
}

static void lite_bind_blob(cr_sql_stmt *st, int i, const void *v, size_t n) {
  sqlite3_bind_blob64(ST(st), i, v, n, SQLITE_STATIC);
}

static void lite_bind_null(cr_sql_stmt *st, int i) {
  sqlite3_bind_null(ST(st), i);
}

/* Write transactions ended by this process's store connections (see
 * cr__sql_sqlite_commits), counted after the end: by lite_step and
 * lite_reset, which see every statement of the driver. */
static atomic_uint_fast64_t g_commits;

/* Whether a step or reset of s may end a write transaction: it writes, or
 * the connection's transaction has written (a COMMIT, a RELEASE). */
static int may_end_write(sqlite3_stmt *s) {
  return !sqlite3_stmt_readonly(s) ||
         sqlite3_txn_state(sqlite3_db_handle(s), NULL) == SQLITE_TXN_WRITE;
}

/* Counts a write transaction that ended (committed or rolled back: both
 * mean that what readers may see changed or may have). Counting a
 * statement still running in autocommit once more is harmless. */
static void count_end(sqlite3_stmt *s, int writing) {
  if (writing && sqlite3_get_autocommit(sqlite3_db_handle(s)))
    atomic_fetch_add(&g_commits, 1);
}

uint64_t cr__sql_sqlite_commits(void) { return atomic_load(&g_commits); }

int cr__sql_sqlite_readonly(cr_sql_stmt *st) {
  return sqlite3_stmt_readonly(ST(st));
}

int cr__sql_sqlite_wrote(cr_sql *c) {
  return sqlite3_txn_state(DB(c), NULL) == SQLITE_TXN_WRITE;
}

static int lite_step(cr_sql_stmt *st) {
  int writing = may_end_write(ST(st));
  int rc = sqlite3_step(ST(st));
  count_end(ST(st), writing);
  return rc == SQLITE_ROW    ? CR_SQL_ROW
         : rc == SQLITE_DONE ? CR_SQL_DONE
                             : lite_err(st->conn, rc);
}

static void lite_reset(cr_sql_stmt *st) {
  int writing = may_end_write(ST(st));
  sqlite3_reset(ST(st));
  count_end(ST(st), writing);
  sqlite3_clear_bindings(ST(st));
}

static int lite_ncols(cr_sql_stmt *st) { return sqlite3_column_count(ST(st)); }

static int lite_col_null(cr_sql_stmt *st, int i) {
  return sqlite3_column_type(ST(st), i) == SQLITE_NULL;
}

static int64_t lite_col_i64(cr_sql_stmt *st, int i) {
  return sqlite3_column_int64(ST(st), i);
}

static const char *lite_col_text(cr_sql_stmt *st, int i) {
  return (const char *)sqlite3_column_text(ST(st), i);
}

static const void *lite_col_blob(cr_sql_stmt *st, int i, size_t *n) {
  const void *b = sqlite3_column_blob(ST(st), i);
  *n = (size_t)sqlite3_column_bytes(ST(st), i);
  return b;
}

static int64_t lite_changes(cr_sql *c) { return sqlite3_changes64(DB(c)); }

static int lite_in_txn(cr_sql *c) { return !sqlite3_get_autocommit(DB(c)); }

static const char *lite_errmsg(cr_sql *c) { return sqlite3_errmsg(DB(c)); }

static int lite_exec(cr_sql *c, const char *sql) {
  int rc = sqlite3_exec(DB(c), sql, NULL, NULL, NULL);
  atomic_fetch_add(&g_commits, 1); /* a script may have written */
  return rc == SQLITE_OK ? 0 : lite_err(c, rc);
}

static void lite_close(cr_sql *c) {
  sqlite3_close_v2(DB(c)); /* rolls back an open transaction */
  cr__free(c);
}

static const struct cr_sql_driver lite_driver = {
    .name = "sqlite",
    .dialect = CR_SQL_SQLITE,
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .bind_i64 = lite_bind_i64,
    .bind_text = lite_bind_text,
    .bind_blob = lite_bind_blob,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .reset = lite_reset,
    .ncols = lite_ncols,
    .col_null = lite_col_null,
    .col_i64 = lite_col_i64,
    .col_text = lite_col_text,
    .col_blob = lite_col_blob,
    .changes = lite_changes,
    .in_txn = lite_in_txn,
    .errmsg = lite_errmsg,
    .exec = lite_exec,
    .close = lite_close,
};

/* Busy handler: SQLite's own busy_timeout sleeps in steps of milliseconds,
 * which is most of a transaction's cost when the runner threads and the
 * loop take turns on the write lock. Wait in short, growing steps instead
 * (50 us doubling to 2 ms), up to CR_STORE_BUSY_TIMEOUT_MS in all. */
static int busy_wait(void *ud, int count) {
  (void)ud;
  static const long steps_us[] = {50, 100, 200, 400, 800, 1600, 2000};
  const int nsteps = (int)(sizeof steps_us / sizeof steps_us[0]);
  long us = steps_us[count < nsteps ? count : nsteps - 1];
  int64_t waited = 0;
  for (int i = 0; i < count && i < nsteps; i++)
    waited += steps_us[i];
  if (count >= nsteps)
    waited += (int64_t)(count - nsteps) * steps_us[nsteps - 1];
  if (waited / 1000 >= CR_STORE_BUSY_TIMEOUT_MS)
    return 0;
  struct timespec ts = {0, us * 1000L};
  nanosleep(&ts, NULL);
  return 1;
}

/* Before SQLite's first use in the process: no memory statistics (connrun
 * reads none, and keeping them takes a process-wide mutex on every SQLite
 * allocation, shared by all store threads). Refused (SQLITE_MISUSE, kept
 * as is) if the process already used SQLite. */

static sqlite3_mutex_methods g_mutex;

/* SQLite's mutexes, entered after a short spin: the store threads (the API's
 * above all) take SQLite's process-wide WAL-index mutex at the start and
 * end of every read, for well under a microsecond; a plain pthread mutex
 * puts the loser of a race to sleep and wakes it through the kernel. */
static void spin_enter(sqlite3_mutex *m) {
  for (int i = 0; i < 64; i++) {
    if (g_mutex.xMutexTry(m) == SQLITE_OK)
      return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  g_mutex.xMutexEnter(m);
}

static void sqlite_setup(void) {
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  if (sqlite3_config(SQLITE_CONFIG_GETMUTEX, &g_mutex) == SQLITE_OK &&
      g_mutex.xMutexTry != NULL) {
    sqlite3_mutex_methods m = g_mutex;
    m.xMutexEnter = spin_enter;
    sqlite3_config(SQLITE_CONFIG_MUTEX, &m);
  }
}

int cr__sql_sqlite_open(const char *path, cr_sql **out, char *errbuf,
                        size_t errlen) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, sqlite_setup);
  *out = NULL;
  struct lite *c = cr__calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return CR_ENOMEM;
  }
  c->base.drv = &lite_driver;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
              SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
  if (rc != SQLITE_OK) {
    snprintf(errbuf, errlen, "cannot open %s: %s", path,
             c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    sqlite3_close_v2(c->db);
    cr__free(c);
    return rc == SQLITE_NOMEM ? CR_ENOMEM : CR_ESTORE;
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_handler(c->db, busy_wait, NULL);
  *out = &c->base;
  return 0;
}
