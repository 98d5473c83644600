/* store_sqlite.c: the SQLite store backend: the schema and its migrations,
 * opening (WAL, synchronous=NORMAL, foreign keys, busy timeout), nested
 * transactions, cached prepared statements, the shared statement helpers
 * and the store operations other than executions, sync state and the
 * outbox. With store_sqlite_exec.c and store_sqlite_outbox.c (shared
 * internals: store_sqlite_int.h), the only files that know SQL or SQLite.
 *
 * Schema versions live in the table schema_migrations (one row per applied
 * migration with the time it was applied); the version is its largest
 * value. Each migration runs in its own BEGIN IMMEDIATE transaction and
 * re-reads the version inside it, so two processes opening one database at
 * once apply each migration exactly once. Migrations are append-only: never
 * edit a released one, add a new version.
 *
 * Statements are prepared on first use and cached for the life of the store
 * (event queries: a small cache keyed by the filter's shape). Every statement
 * is reset and its bindings cleared before an operation returns. The ops table
 * is at the end. */
#include "store/store_sql.h"

#include "events/sub_filter.h"
#include "exec/execution.h"
#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const stmt_sql[ST_COUNT] = {
#define X(name, sql) sql,
    STATEMENTS(X)
#undef X
};

const char *cr__sq_stmt_sql(const struct sq_store *q, enum stmt_id id) {
  if (q->db->drv->dialect == CR_SQL_PG && cr__sq_pg_sql[id] != NULL)
    return cr__sq_pg_sql[id];
  return stmt_sql[id];
}

/* ---- Errors -------------------------------------------------------------- */

/* The writer lock follows SQLite's transaction: taken before BEGIN
 * IMMEDIATE, let go as soon as the connection is back in autocommit (a
 * commit, a rollback, or a transaction SQLite ended on its own). */
static void wl_sync(struct sq_store *q) {
  if (q->wl_held && !cr__sql_in_txn(q->db)) {
    q->wl_held = 0;
    cr__wlock_drop(q->wl);
  }
}

/* Maps the connection's last SQLite error to a CR_E* code, records its
 * message and notices a transaction SQLite rolled back on its own. */
int cr__sq_fail(struct sq_store *q, int rc) {
  cr__store_set_error(&q->base, "%s", cr__sql_errmsg(q->db));
  if (q->depth > 0 && !cr__sql_in_txn(q->db))
    q->doomed = 1;
  wl_sync(q);
  return rc < 0 ? rc : CR_ESTORE;
}

int cr__sq_nomem(struct sq_store *q) {
  cr__store_set_error(&q->base, "out of memory");
  return CR_ENOMEM;
}

int cr__sq_not_found(struct sq_store *q, const char *what, const char *id) {
  cr__store_set_error(&q->base, "%s '%s' not found", what, id);
  return CR_ENOENT;
}

/* Writes are refused while the transaction is doomed. */
int cr__sq_doomed(struct sq_store *q) {
  if (!q->doomed)
    return 0;
  cr__store_set_error(&q->base, "the transaction was rolled back; end it "
                                "with cr_store_commit or cr_store_rollback");
  return CR_ECANCELED;
}

/* ---- Statement helpers --------------------------------------------------- */

static void end_read(struct sq_store *q);

int cr__sq_prep(struct sq_store *q, enum stmt_id id, cr_sql_stmt **out) {
  if (q->stmt[id] == NULL) {
    int rc = cr__sql_prepare(q->db, cr__sq_stmt_sql(q, id), 1, &q->stmt[id]);
    if (rc != 0)
      return cr__sq_fail(q, rc);
  }
  *out = q->stmt[id];
  /* A write never runs in a kept snapshot (sq_read_keep): it would stay
   * uncommitted in it. */
  if (q->kept && !cr__sql_sqlite_readonly(*out))
    end_read(q);
  return 0;
}

void cr__sq_done(cr_sql_stmt *st) { cr__sql_reset(st); }

void cr__sq_bind_str(cr_sql_stmt *st, int i, const char *v) {
  cr__sql_bind_text(st, i, v); /* NULL binds NULL */
}

/* Binds a time where 0 means NULL. */
void cr__sq_bind_time(cr_sql_stmt *st, int i, int64_t v) {
  if (v == 0)
    cr__sql_bind_null(st, i);
  else
    cr__sql_bind_i64(st, i, v);
}

/* Steps a statement that returns no rows, then resets it. */
int cr__sq_step_done(struct sq_store *q, cr_sql_stmt *st) {
  int rc = cr__sql_step(st);
  int err = rc == CR_SQL_DONE ? 0 : cr__sq_fail(q, rc);
  cr__sq_done(st);
  return err;
}

/* Runs a cached statement without parameters. quiet keeps the last error
 * (used when undoing after an earlier failure). */
static int run(struct sq_store *q, enum stmt_id id, int quiet) {
  cr_sql_stmt *st = NULL;
  char saved[CR_STORE_ERRLEN];
  if (quiet)
    memcpy(saved, q->base.last_error, sizeof saved);
  if ((id == ST_BEGIN || id == ST_BEGIN_ROWS) && q->wl != NULL && !q->wl_held)
    q->wl_held = cr__wlock_take(q->wl, CR_STORE_BUSY_TIMEOUT_MS);
  int rc = cr__sq_prep(q, id, &st);
  if (rc == 0)
    rc = cr__sq_step_done(q, st);
  wl_sync(q);
  if (quiet)
    memcpy(q->base.last_error, saved, sizeof saved);
  return rc;
}

/* Copies text column i into *dst (NULL for SQL NULL). */
int cr__sq_col_str(cr_sql_stmt *st, int i, char **dst) {
  *dst = NULL;
  if (cr__sql_col_null(st, i))
    return 0;
  const char *t = (const char *)cr__sql_col_text(st, i);
  if (t == NULL)
    return CR_ENOMEM;
  *dst = cr__strdup(t);
  return *dst == NULL ? CR_ENOMEM : 0;
}

/* Copies n text columns starting at first into the fields. */
int cr__sq_col_strs(cr_sql_stmt *st, int first, char **const *fields,
                    size_t n) {
  for (size_t i = 0; i < n; i++)
    if (cr__sq_col_str(st, first + (int)i, fields[i]) != 0)
      return CR_ENOMEM;
  return 0;
}

/* ---- Row readers and the generic collector ------------------------------- */

static int read_auth(cr_sql_stmt *st, void *p) {
  struct cr_auth_rec *r = p;
  char **const f[] = {&r->id,     &r->name,  &r->description, &r->provider,
                      &r->method, &r->owner, &r->config_hash};
  r->created_at = cr__sql_col_i64(st, 7);
  r->updated_at = cr__sql_col_i64(st, 8);
  return cr__sq_col_strs(st, 0, f, sizeof f / sizeof f[0]);
}

static int read_work(cr_sql_stmt *st, void *p) {
  struct cr_work_rec *r = p;
  char **const f[] = {&r->id,
                      &r->name,
                      &r->provider,
                      &r->authorization_id,
                      &r->schedule_json,
                      &r->destination_json,
                      &r->config_json,
                      &r->config_hash};
  r->enabled = (int)cr__sql_col_i64(st, 8);
  r->error_email_notifications = (int)cr__sql_col_i64(st, 9);
  r->max_attempts = (int)cr__sql_col_i64(st, 10);
  r->next_run_at = cr__sql_col_i64(st, 11);
  r->created_at = cr__sql_col_i64(st, 12);
  r->updated_at = cr__sql_col_i64(st, 13);
  int rc = cr__sq_col_strs(st, 0, f, sizeof f / sizeof f[0]);
  return rc == 0 ? cr__sq_col_str(st, 14, &r->runner_labels_json) : rc;
}

static int read_event(cr_sql_stmt *st, void *p) {
  struct cr_event_rec *r = p;
  char **const f[] = {&r->subject_type, &r->subject_id, &r->verb, &r->actor,
                      &r->data_json};
  r->id = cr__sql_col_i64(st, 0);
  r->at = cr__sql_col_i64(st, 1);
  r->seq = cr__sql_col_i64(st, 2);
  return cr__sq_col_strs(st, 3, f, sizeof f / sizeof f[0]);
}

static int read_sub(cr_sql_stmt *st, void *p) {
  struct cr_sub_rec *r = p;
  char **const f[] = {&r->id, &r->workflow, &r->config_hash};
  r->enabled = (int)cr__sql_col_i64(st, 3);
  r->created_at = cr__sql_col_i64(st, 5);
  r->updated_at = cr__sql_col_i64(st, 6);
  r->cursor_event_id = cr__sql_col_i64(st, 8);
  r->failing_since = cr__sql_col_i64(st, 9);
  r->batched = (int)cr__sql_col_i64(st, 10);
  if (cr__sq_col_str(st, 4, &r->disabled_reason) != 0 ||
      cr__sq_col_str(st, 7, &r->filter_json) != 0)
    return CR_ENOMEM;
  return cr__sq_col_strs(st, 0, f, sizeof f / sizeof f[0]);
}

static const char *const health_names[] = {"unknown", "healthy", "unhealthy"};

static int read_health(cr_sql_stmt *st, void *p) {
  struct cr_health_rec *r = p;
  const char *status = (const char *)cr__sql_col_text(st, 1);
  r->at = cr__sql_col_i64(st, 0);
  r->status = CR_HEALTH_UNKNOWN;
  for (int i = 0; status != NULL && i <= CR_HEALTH_UNHEALTHY; i++)
    if (strcmp(status, health_names[i]) == 0)
      r->status = i;
  return cr__sq_col_str(st, 2, &r->reason);
}

static int read_point(cr_sql_stmt *st, void *p) {
  struct cr_metric_point *r = p;
  r->bucket_start = cr__sql_col_i64(st, 0);
  r->requests = cr__sql_col_i64(st, 1);
  r->errors = cr__sql_col_i64(st, 2);
  return 0;
}

static void clear_auth(void *p) { cr_auth_rec_clear(p); }
static void clear_work(void *p) { cr_work_rec_clear(p); }
static void clear_event(void *p) { cr_event_rec_clear(p); }
static void clear_sub(void *p) { cr_sub_rec_clear(p); }
static void clear_health(void *p) { cr_health_rec_clear(p); }
static void clear_none(void *p) { (void)p; }

static const struct row_type AUTH_ROW = {sizeof(struct cr_auth_rec), read_auth,
                                         clear_auth};
static const struct row_type WORK_ROW = {sizeof(struct cr_work_rec), read_work,
                                         clear_work};
static const struct row_type EVENT_ROW = {sizeof(struct cr_event_rec),
                                          read_event, clear_event};
static const struct row_type SUB_ROW = {sizeof(struct cr_sub_rec), read_sub,
                                        clear_sub};
static const struct row_type HEALTH_ROW = {sizeof(struct cr_health_rec),
                                           read_health, clear_health};
static const struct row_type POINT_ROW = {sizeof(struct cr_metric_point),
                                          read_point, clear_none};

/* Steps the bound statement st to the end, reading every row into a growing
 * array (first allocation: cap0 records). Resets st. On success *out is the
 * array (NULL when no row) and *n its length; on failure nothing is kept. */
int cr__sq_collect(struct sq_store *q, cr_sql_stmt *st,
                   const struct row_type *t, size_t cap0, void **out,
                   size_t *n) {
  char *arr = NULL;
  size_t cnt = 0, cap = 0;
  int rc = 0, src;
  while ((src = cr__sql_step(st)) == CR_SQL_ROW) {
    if (cnt == cap) {
      size_t ncap = cap == 0 ? cap0 : cap * 2;
      char *grown = cr__realloc(arr, ncap * t->size);
      if (grown == NULL) {
        rc = cr__sq_nomem(q);
        break;
      }
      arr = grown;
      cap = ncap;
    }
    void *rec = arr + cnt * t->size;
    memset(rec, 0, t->size);
    if (t->read(st, rec) != 0) {
      t->clear(rec);
      rc = cr__sq_nomem(q);
      break;
    }
    cnt++;
  }
  if (rc == 0 && src != CR_SQL_DONE)
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  if (rc != 0) {
    for (size_t i = 0; i < cnt; i++)
      t->clear(arr + i * t->size);
    cr__free(arr);
    return rc;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

/* Reads the one row st (bound) returns into a new record; CR_ENOENT (with a
 * message naming what and id) when there is none. */
static int get_one(struct sq_store *q, cr_sql_stmt *st,
                   const struct row_type *t, void **out, const char *what,
                   const char *id) {
  size_t n = 0;
  int rc = cr__sq_collect(q, st, t, 1, out, &n);
  if (rc == 0 && n == 0)
    return cr__sq_not_found(q, what, id);
  return rc;
}

/* ---- Transactions ---------------------------------------------------------
 * Operations made of several statements run in op_begin/op_end: their own
 * BEGIN IMMEDIATE transaction outside a caller's transaction, a savepoint
 * inside one (so a failure undoes the operation only). */

/* A write ends the read snapshot first (its BEGIN IMMEDIATE cannot nest). */
static void end_read(struct sq_store *q) {
  q->kept = 0;
  if (q->reading) {
    q->reading = 0;
    run(q, ST_COMMIT, 1);
  }
}

int cr__sq_op_begin(struct sq_store *q) {
  if (q->depth == 0)
    end_read(q);
  return run(q, q->depth == 0 ? ST_BEGIN : ST_SAVEPOINT, 0);
}

static int sq_read_begin(cr_store *s) {
  struct sq_store *q = sqs(s);
  if (q->kept) { /* still current: no commit in this process since */
    q->kept = 0;
    if (q->read_gen == cr__sql_sqlite_commits() &&
        cr__now_ms() - q->read_at_ms <= q->keep_ms)
      return 0;
    end_read(q);
  }
  if (q->depth > 0 || q->reading || !!cr__sql_in_txn(q->db))
    return 0;
  q->read_gen = cr__sql_sqlite_commits(); /* before: a later commit shows */
  q->read_at_ms = cr__now_ms();
  int rc = run(q, ST_BEGIN_READ, 0);
  q->reading = rc == 0;
  return rc;
}

static int sq_read_end(cr_store *s) {
  end_read(sqs(s));
  return 0;
}

static int sq_read_keep(cr_store *s, int64_t max_age_ms) {
  struct sq_store *q = sqs(s);
  /* Not a snapshot that wrote (a write inside one upgraded it): its
   * writes are committed now. */
  if (!q->reading || !q->counted || max_age_ms <= 0 ||
      cr__sql_sqlite_wrote(q->db))
    return sq_read_end(s);
  q->kept = 1;
  q->keep_ms = max_age_ms;
  return 0;
}

int cr__sq_plan(struct sq_store *q, enum stmt_id id) {
  cr_sql_stmt *st = NULL;
  if (q->db->drv->dialect != CR_SQL_PG)
    return 0;
  int rc = cr__sq_prep(q, id, &st);
  return rc == 0 ? cr__sq_step_done(q, st) : rc;
}

int cr__sq_op_end(struct sq_store *q, int rc) {
  int outer = q->depth == 0;
  if (rc == 0)
    rc = run(q, outer ? ST_COMMIT : ST_RELEASE, 0);
  if (rc == 0 || !cr__sql_in_txn(q->db))
    return rc;
  if (outer) {
    run(q, ST_ROLLBACK, 1);
  } else {
    run(q, ST_ROLLBACK_TO, 1);
    run(q, ST_RELEASE, 1);
  }
  return rc;
}

/* begin: ST_BEGIN, or ST_BEGIN_ROWS (inside a transaction: a level of it). */
static int begin_as(cr_store *s, enum stmt_id begin) {
  struct sq_store *q = sqs(s);
  if (q->depth == 0)
    end_read(q);
  if (q->depth == 0) {
    int rc = run(q, begin, 0);
    if (rc != 0)
      return rc;
    q->doomed = 0;
    q->rows_only = begin == ST_BEGIN_ROWS;
  }
  q->depth++;
  return 0;
}

static int sq_begin(cr_store *s) { return begin_as(s, ST_BEGIN); }

static int sq_begin_rows(cr_store *s) { return begin_as(s, ST_BEGIN_ROWS); }

static int no_transaction(struct sq_store *q) {
  cr__store_set_error(&q->base, "no transaction is open");
  return CR_ESTATE;
}

static int commit(struct sq_store *q) {
  if (q->depth == 0)
    return no_transaction(q);
  if (--q->depth > 0)
    return 0;
  q->base.sp_open = 0;
  q->rows_only = 0;
  if (q->doomed) {
    q->doomed = 0;
    if (!!cr__sql_in_txn(q->db))
      run(q, ST_ROLLBACK, 1);
    cr__store_set_error(&q->base, "the transaction was rolled back");
    return CR_ECANCELED;
  }
  int rc = run(q, ST_COMMIT, 0);
  if (rc != 0 && !!cr__sql_in_txn(q->db))
    run(q, ST_ROLLBACK, 1);
  return rc;
}

static int rollback(struct sq_store *q) {
  if (q->depth == 0)
    return no_transaction(q);
  q->depth--;
  int rc = 0;
  if (q->base.sp_open && q->depth >= q->base.sp_depth) {
    /* inside a caller's savepoint: undo to it; its end may revive us */
    if (!!cr__sql_in_txn(q->db))
      rc = run(q, ST_ROLLBACK_TO, 0);
    q->doomed = 1;
    return rc;
  }
  if (!!cr__sql_in_txn(q->db))
    rc = run(q, ST_ROLLBACK, 0);
  q->doomed = q->depth > 0;
  if (q->depth == 0)
    q->base.sp_open = q->rows_only = 0;
  return rc;
}

static int sq_commit(cr_store *s) {
  struct sq_store *q = sqs(s);
  int rc = commit(q);
  wl_sync(q);
  return rc;
}

static int sq_rollback(cr_store *s) {
  struct sq_store *q = sqs(s);
  int rc = rollback(q);
  wl_sync(q);
  return rc;
}

/* A savepoint of the caller (cr_store_savepoint): SAVEPOINT cr_op like the
 * operations' own, which are always released before it ends, so RELEASE and
 * ROLLBACK TO reach it. */
static int sq_savepoint(cr_store *s) {
  struct sq_store *q = sqs(s);
  if (q->depth == 0)
    return no_transaction(q);
  if (s->sp_open) {
    cr__store_set_error(s, "a savepoint is already open");
    return CR_ESTATE;
  }
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = run(q, ST_SAVEPOINT, 0);
  if (rc != 0)
    return rc;
  s->sp_open = 1;
  s->sp_depth = q->depth;
  s->sp_doomed = q->doomed;
  return 0;
}

static int sq_savepoint_end(cr_store *s, int rc) {
  struct sq_store *q = sqs(s);
  if (!s->sp_open) {
    cr__store_set_error(s, "no savepoint is open");
    return CR_ESTATE;
  }
  s->sp_open = 0;
  if (q->depth != s->sp_depth) {
    q->doomed = q->depth > 0;
    cr__store_set_error(s, "unbalanced begin/commit inside a savepoint");
    return CR_ESTATE;
  }
  if (!cr__sql_in_txn(q->db)) { /* SQLite dropped the transaction */
    q->doomed = 1;
    if (rc == 0)
      cr__store_set_error(s, "the transaction was rolled back");
    return rc != 0 ? rc : CR_ECANCELED;
  }
  if (rc == 0 && q->doomed && !s->sp_doomed) {
    /* a rollback inside undid the savepoint's work: say so, and revive
     * the transaction as the savepoint found it */
    cr__store_set_error(s, "a rollback inside the savepoint undid it");
    rc = CR_ECANCELED;
  }
  if (rc == 0 && (rc = run(q, ST_RELEASE, 0)) == 0)
    return 0;
  if (!cr__sql_in_txn(q->db) || run(q, ST_ROLLBACK_TO, 1) != 0 ||
      run(q, ST_RELEASE, 1) != 0)
    q->doomed = 1;
  else
    q->doomed = s->sp_doomed;
  return rc;
}

/* ---- Upserts --------------------------------------------------------------
 * The state statement (?1 id, ?2 hash) returns: hash equal, deleted,
 * created_at. Decides *changed and the created_at to write. */

static int upsert_state(struct sq_store *q, enum stmt_id id, const char *key,
                        const char *hash, int64_t now, int *changed,
                        int64_t *created) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, key);
  cr__sq_bind_str(st, 2, hash);
  int src = cr__sql_step(st);
  *changed = CR_STORE_CREATED;
  *created = now;
  if (src == CR_SQL_ROW && (int)cr__sql_col_i64(st, 1) == 0) {
    *changed =
        (int)cr__sql_col_i64(st, 0) ? CR_STORE_UNCHANGED : CR_STORE_UPDATED;
    *created = cr__sql_col_i64(st, 2);
  } else if (src != CR_SQL_ROW && src != CR_SQL_DONE) {
    rc = cr__sq_fail(q, src);
  }
  cr__sq_done(st);
  return rc;
}

static int auth_write(struct sq_store *q, const struct cr_auth_rec *r,
                      int64_t created, int64_t now) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_AUTH_WRITE, &st);
  if (rc != 0)
    return rc;
  const char *v[] = {r->id,     r->name,  r->description, r->provider,
                     r->method, r->owner, r->config_hash};
  for (int i = 0; i < 7; i++)
    cr__sq_bind_str(st, i + 1, v[i]);
  cr__sql_bind_i64(st, 8, created);
  cr__sql_bind_i64(st, 9, now);
  return cr__sq_step_done(q, st);
}

static int work_write(struct sq_store *q, const struct cr_work_rec *r,
                      int64_t created, int64_t now) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_WORK_WRITE, &st);
  if (rc != 0)
    return rc;
  const char *v[] = {r->id,
                     r->name,
                     r->provider,
                     r->authorization_id,
                     r->schedule_json,
                     r->destination_json,
                     r->config_json,
                     r->config_hash};
  for (int i = 0; i < 8; i++)
    cr__sq_bind_str(st, i + 1, v[i]);
  cr__sql_bind_i64(st, 9, r->enabled != 0);
  cr__sql_bind_i64(st, 10, r->error_email_notifications != 0);
  cr__sql_bind_i64(st, 11, r->max_attempts);
  cr__sq_bind_time(st, 12, r->next_run_at);
  cr__sql_bind_i64(st, 13, created);
  cr__sql_bind_i64(st, 14, now);
  cr__sq_bind_str(st, 15, r->runner_labels_json);
  return cr__sq_step_done(q, st);
}

static int sub_write(struct sq_store *q, const struct cr_sub_rec *r,
                     int64_t created, int64_t now) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_SUB_WRITE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, r->id);
  cr__sq_bind_str(st, 2, r->workflow);
  cr__sq_bind_str(st, 3, r->config_hash);
  cr__sql_bind_i64(st, 4, r->enabled != 0);
  cr__sq_bind_str(st, 5, r->disabled_reason);
  cr__sql_bind_i64(st, 6, created);
  cr__sql_bind_i64(st, 7, now);
  cr__sq_bind_str(st, 8, r->filter_json);
  cr__sql_bind_i64(st, 9, r->batched != 0);
  return cr__sq_step_done(q, st);
}

/* The writers above, behind one signature. */
typedef int (*write_fn)(struct sq_store *q, const void *rec, int64_t created,
                        int64_t now);
static int write_auth(struct sq_store *q, const void *r, int64_t c,
                      int64_t now) {
  return auth_write(q, r, c, now);
}
static int write_work(struct sq_store *q, const void *r, int64_t c,
                      int64_t now) {
  return work_write(q, r, c, now);
}
static int write_sub(struct sq_store *q, const void *r, int64_t c,
                     int64_t now) {
  return sub_write(q, r, c, now);
}

static int upsert(struct sq_store *q, enum stmt_id state, write_fn write,
                  const void *rec, const char *id, const char *hash,
                  int64_t now, int *changed) {
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  int64_t created = now;
  rc = upsert_state(q, state, id, hash, now, changed, &created);
  if (rc == 0 && *changed != CR_STORE_UNCHANGED)
    rc = write(q, rec, created, now);
  rc = cr__sq_op_end(q, rc);
  if (rc != 0)
    *changed = CR_STORE_UNCHANGED;
  return rc;
}

/* Runs an UPDATE/DELETE keyed by id (?1, with ?2 = t when has_t) that must
 * change one row; CR_ENOENT naming what otherwise. */
static int change_one(struct sq_store *q, enum stmt_id id, const char *key,
                      int has_t, int64_t t, const char *what) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, key);
  if (has_t)
    cr__sq_bind_time(st, 2, t);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && cr__sql_changes(q->db) == 0)
    return cr__sq_not_found(q, what, key);
  return rc;
}

/* Binds ?1 = key and collects the rows of a cached statement. */
int cr__sq_list_by(struct sq_store *q, enum stmt_id id, const char *key,
                   const struct row_type *t, void **out, size_t *n) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  if (key != NULL)
    cr__sq_bind_str(st, 1, key);
  return cr__sq_collect(q, st, t, 8, out, n);
}

int cr__sq_get_by(struct sq_store *q, enum stmt_id id, const char *key,
                  const struct row_type *t, void **out, const char *what) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, key);
  return get_one(q, st, t, out, what, key);
}

/* Runs st (bound) and stores the integer of its first row in *out (0 when
 * there is no row; *found tells which, and may be NULL). Resets st. */
int cr__sq_step_int(struct sq_store *q, cr_sql_stmt *st, int64_t *out,
                    int *found) {
  int src = cr__sql_step(st);
  *out = src == CR_SQL_ROW ? cr__sql_col_i64(st, 0) : 0;
  if (found != NULL)
    *found = src == CR_SQL_ROW;
  int rc = src == CR_SQL_ROW || src == CR_SQL_DONE ? 0 : cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

/* ---- Authorizations ------------------------------------------------------ */

static int sq_auth_upsert(cr_store *s, const struct cr_auth_rec *rec,
                          int64_t now, int *changed) {
  return upsert(sqs(s), ST_AUTH_STATE, write_auth, rec, rec->id,
                rec->config_hash, now, changed);
}

static int sq_auth_get(cr_store *s, const char *id, struct cr_auth_rec **out) {
  return cr__sq_get_by(sqs(s), ST_AUTH_GET, id, &AUTH_ROW, (void **)out,
                       "authorization");
}

static int sq_auth_list(cr_store *s, struct cr_auth_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_AUTH_LIST, NULL, &AUTH_ROW, (void **)out, n);
}

static int sq_auth_delete(cr_store *s, const char *id, int64_t now) {
  return change_one(sqs(s), ST_AUTH_DELETE, id, 1, now, "authorization");
}

static int sq_auth_health_record(cr_store *s, const char *auth_id,
                                 int64_t at_ms, int status,
                                 const char *reason) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_HEALTH_INSERT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sql_bind_i64(st, 2, at_ms);
  cr__sq_bind_str(st, 3, health_names[status]);
  cr__sq_bind_str(st, 4, reason);
  return cr__sq_step_done(q, st);
}

static int health_rows(struct sq_store *q, const char *auth_id, size_t limit,
                       struct cr_health_rec **out, size_t *n) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_HEALTH_HISTORY, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sql_bind_i64(st, 2, (int64_t)limit);
  return cr__sq_collect(q, st, &HEALTH_ROW, limit < 16 ? limit : 16,
                        (void **)out, n);
}

static int sq_auth_health_latest(cr_store *s, const char *auth_id,
                                 struct cr_health_rec *out) {
  struct sq_store *q = sqs(s);
  struct cr_health_rec *rows = NULL;
  size_t n = 0;
  int rc = health_rows(q, auth_id, 1, &rows, &n);
  if (rc != 0)
    return rc;
  if (n == 0) {
    cr__store_set_error(s, "no health check recorded for '%s'", auth_id);
    return CR_ENOENT;
  }
  *out = rows[0];
  cr__free(rows);
  return 0;
}

static int sq_auth_health_history(cr_store *s, const char *auth_id,
                                  size_t limit, struct cr_health_rec **out,
                                  size_t *n) {
  return health_rows(sqs(s), auth_id, limit, out, n);
}

/* ---- Works --------------------------------------------------------------- */

static int sq_work_upsert(cr_store *s, const struct cr_work_rec *rec,
                          int64_t now, int *changed) {
  return upsert(sqs(s), ST_WORK_STATE, write_work, rec, rec->id,
                rec->config_hash, now, changed);
}

static int sq_work_get(cr_store *s, const char *id, struct cr_work_rec **out) {
  return cr__sq_get_by(sqs(s), ST_WORK_GET, id, &WORK_ROW, (void **)out,
                       "work");
}

static int sq_work_list(cr_store *s, struct cr_work_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_WORK_LIST, NULL, &WORK_ROW, (void **)out, n);
}

static int sq_work_delete(cr_store *s, const char *id, int64_t now) {
  return change_one(sqs(s), ST_WORK_DELETE, id, 1, now, "work");
}

static int sq_work_set_next_run(cr_store *s, const char *id, int64_t at_ms) {
  return change_one(sqs(s), ST_WORK_NEXT_RUN, id, 1, at_ms, "work");
}

/* ---- Events -------------------------------------------------------------- */

static int sq_event_append(cr_store *s, const struct cr_event_rec *in,
                           int64_t at, int64_t *id_out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  if (q->rows_only) { /* event ids commit in the order of the write lock */
    cr__store_set_error(s, "an event needs a cr_store_begin transaction, "
                           "not cr_store_begin_rows");
    return CR_ESTATE;
  }
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EVENT_APPEND, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, at);
  cr__sq_bind_str(st, 2, in->subject_type);
  cr__sq_bind_str(st, 3, in->subject_id);
  cr__sq_bind_str(st, 4, in->verb);
  cr__sq_bind_str(st, 5, in->actor);
  cr__sq_bind_str(st, 6, in->data_json);
  return cr__sq_step_int(q, st, id_out, NULL);
}

/* The statement for a filter's shape: which of subject type, subject id and
 * since are set, and how many verbs. */
static int evq_stmt(struct sq_store *q, const struct cr_event_filter *f,
                    cr_sql_stmt **out) {
  int key = 1 | (f->subject_type != NULL) << 1 | (f->subject_id != NULL) << 2 |
            (f->since_ms > 0) << 3 | (int)f->nverbs << 4;
  for (int i = 0; i < EVQ_CACHE; i++)
    if (q->evq[i].key == key) {
      *out = q->evq[i].stmt;
      return 0;
    }
  char sql[512 + 2 * CR_EVENT_FILTER_MAX_VERBS];
  size_t len = (size_t)snprintf(sql, sizeof sql,
                                "SELECT " EVENT_COLS " FROM events WHERE id > ?"
                                "%s%s%s",
                                f->subject_type ? " AND subject_type = ?" : "",
                                f->subject_id ? " AND subject_id = ?" : "",
                                f->since_ms > 0 ? " AND at >= ?" : "");
  if (f->nverbs > 0) {
    len += (size_t)snprintf(sql + len, sizeof sql - len, " AND verb IN (?");
    for (size_t i = 1; i < f->nverbs; i++)
      len += (size_t)snprintf(sql + len, sizeof sql - len, ",?");
    len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
  }
  snprintf(sql + len, sizeof sql - len, " ORDER BY id LIMIT ?");
  cr_sql_stmt *st = NULL;
  int rc = cr__sql_prepare(q->db, sql, 1, &st);
  if (rc != 0)
    return cr__sq_fail(q, rc);
  unsigned slot = q->evq_next++ % EVQ_CACHE;
  cr__sql_finalize(q->evq[slot].stmt);
  q->evq[slot].key = key;
  q->evq[slot].stmt = st;
  *out = st;
  return 0;
}

static int sq_event_query(cr_store *s, const struct cr_event_filter *f,
                          struct cr_event_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = evq_stmt(q, f, &st);
  if (rc != 0)
    return rc;
  int i = 1;
  cr__sql_bind_i64(st, i++, f->after_id);
  if (f->subject_type != NULL)
    cr__sq_bind_str(st, i++, f->subject_type);
  if (f->subject_id != NULL)
    cr__sq_bind_str(st, i++, f->subject_id);
  if (f->since_ms > 0)
    cr__sql_bind_i64(st, i++, f->since_ms);
  for (size_t v = 0; v < f->nverbs; v++)
    cr__sq_bind_str(st, i++, f->verbs[v]);
  cr__sql_bind_i64(st, i, (int64_t)f->limit);
  return cr__sq_collect(q, st, &EVENT_ROW, f->limit < 64 ? f->limit : 64,
                        (void **)out, n);
}

/* Runs a cached statement binding ?1 = v; *changes (may be NULL) gets the
 * number of rows it changed. */
static int run_int(struct sq_store *q, enum stmt_id id, int64_t v,
                   int64_t *changes) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, v);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && changes != NULL)
    *changes = cr__sql_changes(q->db);
  return rc;
}

static int sq_event_prune(cr_store *s, int64_t before_ms, int64_t *deleted) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  int64_t n = 0;
  rc = run_int(q, ST_OUTBOX_PRUNE, before_ms, NULL);
  if (rc == 0)
    rc = run_int(q, ST_ATTEMPT_PRUNE, before_ms, NULL);
  if (rc == 0)
    rc = run_int(q, ST_EVENT_PRUNE, before_ms, &n);
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *deleted = n;
  return rc;
}

/* ---- Metrics ------------------------------------------------------------- */

static int sq_metrics_add(cr_store *s, const char *auth_id,
                          int64_t bucket_start, int64_t requests,
                          int64_t errors) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_METRICS_ADD, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sql_bind_i64(st, 2, bucket_start);
  cr__sql_bind_i64(st, 3, requests);
  cr__sql_bind_i64(st, 4, errors);
  return cr__sq_step_done(q, st);
}

static int sq_metrics_query(cr_store *s, const char *auth_id, int granularity,
                            int64_t from_ms, int64_t to_ms,
                            struct cr_metric_point **out, size_t *n) {
  struct sq_store *q = sqs(s);
  static const enum stmt_id by_gran[][2] = {
      {ST_MQ_HOUR_AUTH, ST_MQ_HOUR_ALL},
      {ST_MQ_DAY_AUTH, ST_MQ_DAY_ALL},
      {ST_MQ_WEEK_AUTH, ST_MQ_WEEK_ALL},
      {ST_MQ_MONTH_AUTH, ST_MQ_MONTH_ALL},
  };
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, by_gran[granularity][auth_id == NULL], &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sql_bind_i64(st, 2, from_ms);
  cr__sql_bind_i64(st, 3, to_ms);
  return cr__sq_collect(q, st, &POINT_ROW, 32, (void **)out, n);
}

/* ---- Subscriptions ------------------------------------------------------- */

static int sq_sub_upsert(cr_store *s, const struct cr_sub_rec *rec, int64_t now,
                         int *changed) {
  return upsert(sqs(s), ST_SUB_STATE, write_sub, rec, rec->id, rec->config_hash,
                now, changed);
}

static int sq_sub_get(cr_store *s, const char *id, struct cr_sub_rec **out) {
  return cr__sq_get_by(sqs(s), ST_SUB_GET, id, &SUB_ROW, (void **)out,
                       "subscription");
}

static int sq_sub_list(cr_store *s, struct cr_sub_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_SUB_LIST, NULL, &SUB_ROW, (void **)out, n);
}

static int sq_sub_delete(cr_store *s, const char *id) {
  return change_one(sqs(s), ST_SUB_DELETE, id, 0, 0, "subscription");
}

static int sq_counts(cr_store *s, struct cr_store_counts *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_COUNTS, &st);
  if (rc != 0)
    return rc;
  int64_t *const f[] = {
      &out->authorizations, &out->auth_health,     &out->works,
      &out->executions,     &out->events,          &out->runners,
      &out->sync_states,    &out->metrics_buckets, &out->subscriptions,
      &out->outbox,         &out->outbox_pending,  &out->delivery_attempts};
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW)
    for (int i = 0; i < (int)(sizeof f / sizeof f[0]); i++)
      *f[i] = cr__sql_col_i64(st, i);
  else
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}
/* ---- Rotated credentials --------------------------------------------------
 * Stored as scheme 'plain': the JSON text itself in blob. A codec that
 * encrypts would write another scheme and its key id. */

static int sq_auth_credentials_set(cr_store *s, const char *auth_id,
                                   const char *config_hash,
                                   const char *credentials_json, int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc != 0)
    return rc;
  json_t *doc = json_loads(credentials_json, JSON_DECODE_ANY, NULL);
  int ok = json_is_object(doc);
  json_decref(doc);
  if (!ok) {
    cr__store_set_error(s, "credentials of '%s' are not a JSON object",
                        auth_id);
    rc = CR_EINVAL;
  }
  if (rc == 0)
    rc = cr__sq_prep(q, ST_CRED_SET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sq_bind_str(st, 2, config_hash);
  cr__sql_bind_blob(st, 3, credentials_json, strlen(credentials_json));
  cr__sql_bind_i64(st, 4, now);
  return cr__sq_step_done(q, st);
}

/* Copies the 'plain' blob of the current row of st into *out. */
static int cred_decode(struct sq_store *q, cr_sql_stmt *st, char **out) {
  const char *scheme = (const char *)cr__sql_col_text(st, 0);
  if (scheme == NULL || strcmp(scheme, "plain") != 0) {
    cr__store_set_error(&q->base,
                        "credentials stored with scheme '%s' cannot be "
                        "decoded by this build",
                        scheme != NULL ? scheme : "?");
    return CR_ENOTSUP;
  }
  size_t len = 0;
  const void *blob = cr__sql_col_blob(st, 1, &len);
  char *copy = cr__malloc(len + 1);
  if (copy == NULL)
    return cr__sq_nomem(q);
  if (len > 0)
    memcpy(copy, blob, len);
  copy[len] = '\0';
  *out = copy;
  return 0;
}

static int sq_auth_credentials_get(cr_store *s, const char *auth_id,
                                   const char *config_hash, char **json_out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_CRED_GET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sq_bind_str(st, 2, config_hash);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW)
    rc = cred_decode(q, st, json_out);
  else if (src == CR_SQL_DONE)
    rc = cr__sq_not_found(q, "credentials for the current configuration of",
                          auth_id);
  else
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

/* ---- The function table -------------------------------------------------- */

/* News for the other processes' listeners (store_listen.h): a NOTIFY on
 * PostgreSQL, sent when the transaction commits; nothing on SQLite. */
static int sq_notify(cr_store *s, int news) {
  struct sq_store *q = sqs(s);
  if (q->db->drv->dialect != CR_SQL_PG)
    return 0;
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_NOTIFY, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1,
                  news == CR_STORE_NEWS_CLAIMS   ? "claims"
                  : news == CR_STORE_NEWS_EVENTS ? "events"
                                                 : "all");
  int src = cr__sql_step(st);
  rc = src == CR_SQL_ROW || src == CR_SQL_DONE ? 0 : cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

const struct cr_store_ops cr__sq_ops = {
    .notify = sq_notify,
    .name = "sql",
    .close = cr__sq_close,
    .schema_version = cr__sq_schema_version,
    .begin = sq_begin,
    .begin_rows = sq_begin_rows,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .savepoint_end = sq_savepoint_end,
    .auth_upsert = sq_auth_upsert,
    .auth_get = sq_auth_get,
    .auth_list = sq_auth_list,
    .auth_delete = sq_auth_delete,
    .auth_health_record = sq_auth_health_record,
    .auth_health_latest = sq_auth_health_latest,
    .auth_health_history = sq_auth_health_history,
    .work_upsert = sq_work_upsert,
    .work_get = sq_work_get,
    .work_list = sq_work_list,
    .work_delete = sq_work_delete,
    .work_set_next_run = sq_work_set_next_run,
    .event_append = sq_event_append,
    .event_query = sq_event_query,
    .event_prune = sq_event_prune,
    .metrics_add = sq_metrics_add,
    .metrics_query = sq_metrics_query,
    .sub_upsert = sq_sub_upsert,
    .sub_get = sq_sub_get,
    .sub_list = sq_sub_list,
    .sub_delete = sq_sub_delete,
    .counts = sq_counts,
    .exec_create = cr__sq_exec_create,
    .exec_get = cr__sq_exec_get,
    .exec_claim = cr__sq_exec_claim,
    .exec_claim_one = cr__sq_exec_claim_one,
    .exec_claimable = cr__sq_exec_claimable,
    .exec_transition = cr__sq_exec_transition,
    .exec_renew = cr__sq_exec_renew,
    .exec_expire = cr__sq_exec_expire,
    .exec_list = cr__sq_exec_list,
    .exec_transitions = cr__sq_exec_transitions,
    .exec_retry = cr__sq_exec_retry,
    .exec_release_runner = cr__sq_exec_release_runner,
    .exec_work_open = cr__sq_exec_work_open,
    .work_mark_started = cr__sq_work_mark_started,
    .sync_state_commit = cr__sq_sync_state_commit,
    .sync_state_get = cr__sq_sync_state_get,
    .sync_state_history = cr__sq_sync_state_history,
    .sync_state_exec_records = cr__sq_sync_state_exec_records,
    .auth_credentials_set = sq_auth_credentials_set,
    .auth_credentials_get = sq_auth_credentials_get,
    .sub_set_cursor = cr__sq_sub_set_cursor,
    .batch_get = cr__sq_batch_get,
    .batch_open = cr__sq_batch_open,
    .batch_record = cr__sq_batch_record,
    .batch_note_dead = cr__sq_batch_note_dead,
    .instance_beat = cr__sq_instance_beat,
    .instance_list = cr__sq_instance_list,
    .duty_acquire = cr__sq_duty_acquire,
    .duty_release = cr__sq_duty_release,
    .duty_list = cr__sq_duty_list,
    .sub_disable = cr__sq_sub_disable,
    .sub_stats = cr__sq_sub_stats,
    .sub_attempts = cr__sq_sub_attempts,
    .event_last_id = cr__sq_event_last_id,
    .stats = cr__sq_stats,
    .api_object_put = cr__sq_api_object_put,
    .api_object_list = cr__sq_api_object_list,
    .api_object_delete = cr__sq_api_object_delete,
    .api_generation = cr__sq_api_generation,
    .cursor_get = cr__sq_cursor_get,
    .cursor_set = cr__sq_cursor_set,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .read_keep = sq_read_keep,
    .runner_add = cr__sq_runner_add,
    .runner_get = cr__sq_runner_get,
    .runner_list = cr__sq_runner_list,
    .runner_checkin = cr__sq_runner_checkin,
    .runner_revoke = cr__sq_runner_revoke,
    .runner_claim_note = cr__sq_runner_claim_note,
    .runner_mark_offline = cr__sq_runner_mark_offline,
    .exec_report_get = cr__sq_exec_report_get,
    .exec_report_set = cr__sq_exec_report_set,
    .exec_log_add = cr__sq_exec_log_add,
    .exec_log_list = cr__sq_exec_log_list,
    .exec_retry_due = cr__sq_exec_retry_due,
    .idem_get = cr__sq_idem_get,
    .idem_put = cr__sq_idem_put,
    .outbox_enqueue = cr__sq_outbox_enqueue,
    .outbox_due = cr__sq_outbox_due,
    .outbox_next_due = cr__sq_outbox_next_due,
    .outbox_record = cr__sq_outbox_record,
    .outbox_record_many = cr__sq_outbox_record_many,
    .outbox_replay = cr__sq_outbox_replay,
};
