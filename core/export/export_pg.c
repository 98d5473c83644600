/* export_pg.c: the PostgreSQL export table backend (export_table.h) on
 * libpq. A batch is one transaction that COPYs its rows into the table:
 * the fast path, as fast as a bare COPY. When some of the rows are already
 * there (a batch written again after a crash: COPY stops at the unique
 * violation and the transaction is rolled back), the batch is COPYed into a
 * temporary staging table and moved with INSERT ... ON CONFLICT (id) DO
 * NOTHING, so no row is written twice. A lost connection is reset on the
 * next write. */
#include "export/export_int.h"
#include "util/alloc.h"
#include "util/error.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_table {
  struct cr_export_table base;
  PGconn *c;
  int staged; /* the session has its staging table */
  char table[64];
  char safe[256]; /* the URL without its password */
  char *buf;      /* COPY data of the batch */
  size_t len, cap;
};

static const char *const cols[][2] = {
    {"id", "bigint"},         {"at", "timestamp with time zone"},
    {"subject_type", "text"}, {"subject_id", "text"},
    {"verb", "text"},         {"actor", "text"},
    {"seq", "bigint"},        {"data", "jsonb"},
};
#define N_COLS (sizeof cols / sizeof cols[0])
#define COL_LIST "(id, at, subject_type, subject_id, verb, actor, seq, data)"

/* errbuf gets what, then libpq's message without its trailing newline. */
static int fail(struct pg_table *t, char *errbuf, size_t errlen,
                const char *what, const char *pgmsg) {
  const char *m = pgmsg ? pgmsg : PQerrorMessage(t->c);
  size_t n = strlen(m);
  while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
    n--;
  cr__export_err(errbuf, errlen, "%s: %s: %.*s", t->safe, what, (int)n, m);
  return CR_EIO;
}

/* Runs sql (no parameters) expecting no rows. */
static int exec_ok(struct pg_table *t, const char *sql, char *errbuf,
                   size_t errlen) {
  PGresult *r = PQexec(t->c, sql);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    rc = fail(t, errbuf, errlen, sql, PQresultErrorMessage(r));
  PQclear(r);
  return rc;
}

/* Compares the existing columns with cols. *exists = 0 when none. */
static int check_columns(struct pg_table *t, int *exists, char *errbuf,
                         size_t errlen) {
  const char *p[1] = {t->table};
  PGresult *r = PQexecParams(
      t->c,
      "SELECT column_name::text, data_type::text FROM "
      "information_schema.columns WHERE table_schema = current_schema() AND "
      "table_name = $1",
      1, NULL, p, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    int rc = fail(t, errbuf, errlen, "cannot read the table's columns",
                  PQresultErrorMessage(r));
    PQclear(r);
    return rc;
  }
  int rc = 0, nrows = PQntuples(r);
  *exists = nrows > 0;
  for (size_t i = 0; rc == 0 && nrows > 0 && i < N_COLS; i++) {
    int found = -1;
    for (int row = 0; row < nrows && found < 0; row++)
      if (strcmp(PQgetvalue(r, row, 0), cols[i][0]) == 0)
        found = row;
    if (found < 0) {
      cr__export_err(errbuf, errlen,
                     "table '%s' in %s does not match: column '%s' is missing",
                     t->table, t->safe, cols[i][0]);
      rc = CR_ECONFIG;
    } else if (strcmp(PQgetvalue(r, found, 1), cols[i][1]) != 0) {
      cr__export_err(errbuf, errlen,
                     "table '%s' in %s does not match: column '%s' has type "
                     "%s, expected %s",
                     t->table, t->safe, cols[i][0], PQgetvalue(r, found, 1),
                     cols[i][1]);
      rc = CR_ECONFIG;
    }
  }
  PQclear(r);
  return rc;
}

/* The id column must be unique on its own (primary key or unique), or
 * idempotent writes are impossible. */
static int check_unique_id(struct pg_table *t, char *errbuf, size_t errlen) {
  const char *p[1] = {t->table};
  PGresult *r = PQexecParams(
      t->c,
      "SELECT 1 FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = "
      "c.conrelid AND a.attnum = c.conkey[1] WHERE c.conrelid = "
      "to_regclass(quote_ident($1)) AND c.contype IN ('p', 'u') AND "
      "array_length(c.conkey, 1) = 1 AND a.attname = 'id'",
      1, NULL, p, NULL, NULL, 0);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    rc = fail(t, errbuf, errlen, "cannot read the table's constraints",
              PQresultErrorMessage(r));
  else if (PQntuples(r) == 0) {
    cr__export_err(errbuf, errlen,
                   "table '%s' in %s does not match: column 'id' is not a "
                   "primary key or unique",
                   t->table, t->safe);
    rc = CR_ECONFIG;
  }
  PQclear(r);
  return rc;
}

static int connect_and_check(struct pg_table *t, const char *url, char *errbuf,
                             size_t errlen) {
  char sql[512];
  int exists = 0;
  t->c = PQconnectdb(url);
  if (t->c == NULL)
    return CR_ENOMEM;
  if (PQstatus(t->c) != CONNECTION_OK)
    return fail(t, errbuf, errlen, "cannot connect", NULL);
  int rc = check_columns(t, &exists, errbuf, errlen);
  if (rc == 0 && !exists) {
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS \"%s\" (id bigint PRIMARY KEY, at "
             "timestamptz NOT NULL, subject_type text NOT NULL, subject_id "
             "text NOT NULL, verb text NOT NULL, actor text, seq bigint NOT "
             "NULL, data jsonb NOT NULL)",
             t->table);
    rc = exec_ok(t, sql, errbuf, errlen);
  }
  if (rc == 0)
    rc = check_unique_id(t, errbuf, errlen);
  return rc;
}

/* ---- COPY data ----------------------------------------------------------- */

static int grow(struct pg_table *t, size_t more) {
  if (t->len + more <= t->cap)
    return 0;
  size_t cap = t->cap ? t->cap : 65536;
  while (cap < t->len + more)
    cap *= 2;
  char *b = cr__realloc(t->buf, cap);
  if (b == NULL)
    return CR_ENOMEM;
  t->buf = b;
  t->cap = cap;
  return 0;
}

/* Appends s as a COPY text field (NULL as \N), then sep. */
static int put_field(struct pg_table *t, const char *s, char sep) {
  size_t n = s ? strlen(s) : 2;
  if (grow(t, 2 * n + 2) != 0)
    return CR_ENOMEM;
  char *o = t->buf + t->len;
  if (s == NULL) {
    memcpy(o, "\\N", 2);
    o += 2;
  } else {
    for (; *s; s++) {
      char c = *s;
      if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
        *o++ = '\\';
        c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
      }
      *o++ = c;
    }
  }
  *o++ = sep;
  t->len = (size_t)(o - t->buf);
  return 0;
}

static int put_row(struct pg_table *t, const struct cr_event_rec *e) {
  char id[24], seq[24], at[40];
  snprintf(id, sizeof id, "%lld", (long long)e->id);
  snprintf(seq, sizeof seq, "%lld", (long long)e->seq);
  cr_export_format_time(e->at, at, sizeof at);
  const char *f[N_COLS] = {id,
                           at,
                           e->subject_type,
                           e->subject_id,
                           e->verb,
                           e->actor,
                           seq,
                           e->data_json ? e->data_json : "{}"};
  for (size_t i = 0; i < N_COLS; i++)
    if (put_field(t, f[i], i + 1 < N_COLS ? '\t' : '\n') != 0)
      return CR_ENOMEM;
  return 0;
}

/* COPYs the batch's data into table; *unique_violation when it stopped at
 * an existing id. The transaction stays open. */
static int copy_into(struct pg_table *t, const char *table,
                     int *unique_violation, char *errbuf, size_t errlen) {
  char sql[200];
  snprintf(sql, sizeof sql, "COPY \"%s\" " COL_LIST " FROM STDIN", table);
  PGresult *r = PQexec(t->c, sql);
  int st = PQresultStatus(r);
  PQclear(r);
  if (st != PGRES_COPY_IN)
    return fail(t, errbuf, errlen, "cannot start COPY", NULL);
  if (PQputCopyData(t->c, t->buf, (int)t->len) != 1 ||
      PQputCopyEnd(t->c, NULL) != 1)
    return fail(t, errbuf, errlen, "COPY failed", NULL);
  r = PQgetResult(t->c);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    *unique_violation = state != NULL && strcmp(state, "23505") == 0;
    rc = fail(t, errbuf, errlen, "COPY failed", PQresultErrorMessage(r));
  }
  PQclear(r);
  while ((r = PQgetResult(t->c)) != NULL)
    PQclear(r);
  return rc;
}

/* The slow path: COPY into the staging table, then insert what is new. */
static int write_staged(struct pg_table *t, size_t *inserted, char *errbuf,
                        size_t errlen) {
  char sql[400];
  int dup = 0, rc = 0;
  if (!t->staged) {
    snprintf(sql, sizeof sql,
             "CREATE TEMP TABLE IF NOT EXISTS cr_export_stage (LIKE \"%s\") "
             "ON COMMIT DELETE ROWS",
             t->table);
    rc = exec_ok(t, sql, errbuf, errlen);
    t->staged = rc == 0;
  }
  if (rc == 0)
    rc = exec_ok(t, "BEGIN", errbuf, errlen);
  if (rc == 0)
    rc = copy_into(t, "cr_export_stage", &dup, errbuf, errlen);
  if (rc == 0) {
    snprintf(sql, sizeof sql,
             "INSERT INTO \"%s\" " COL_LIST " SELECT id, at, subject_type, "
             "subject_id, verb, actor, seq, data FROM cr_export_stage ON "
             "CONFLICT (id) DO NOTHING",
             t->table);
    PGresult *r = PQexec(t->c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      rc = fail(t, errbuf, errlen, "cannot insert", PQresultErrorMessage(r));
    else
      *inserted = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
  }
  if (rc == 0)
    return exec_ok(t, "COMMIT", errbuf, errlen);
  PQclear(PQexec(t->c, "ROLLBACK"));
  return rc;
}

static int pg_write(cr_export_table *base, const struct cr_event_rec *ev,
                    size_t n, size_t *inserted, char *errbuf, size_t errlen) {
  struct pg_table *t = (struct pg_table *)base;
  if (PQstatus(t->c) != CONNECTION_OK) {
    PQreset(t->c);
    t->staged = 0;
    if (PQstatus(t->c) != CONNECTION_OK)
      return fail(t, errbuf, errlen, "cannot reconnect", NULL);
  }
  t->len = 0;
  for (size_t i = 0; i < n; i++)
    if (put_row(t, &ev[i]) != 0)
      return CR_ENOMEM;
  int dup = 0;
  int rc = exec_ok(t, "BEGIN", errbuf, errlen);
  if (rc == 0)
    rc = copy_into(t, t->table, &dup, errbuf, errlen);
  if (rc == 0 && (rc = exec_ok(t, "COMMIT", errbuf, errlen)) == 0) {
    *inserted = n;
    return 0;
  }
  PQclear(PQexec(t->c, "ROLLBACK"));
  if (!dup)
    return rc;
  return write_staged(t, inserted, errbuf, errlen);
}

static void pg_close(cr_export_table *base) {
  struct pg_table *t = (struct pg_table *)base;
  PQfinish(t->c);
  cr__free(t->buf);
  cr__free(t);
}

static const struct cr_export_table_ops pg_ops = {"postgresql", pg_write,
                                                  pg_close};

int cr__export_pg_open(const char *url, const char *table,
                       cr_export_table **out, char *errbuf, size_t errlen) {
  struct pg_table *t = cr__calloc(1, sizeof *t);
  if (t == NULL)
    return CR_ENOMEM;
  t->base.ops = &pg_ops;
  snprintf(t->table, sizeof t->table, "%s", table);
  cr_export_url_redact(url, t->safe, sizeof t->safe);
  int rc = connect_and_check(t, url, errbuf, errlen);
  if (rc != 0) {
    pg_close(&t->base);
    return rc;
  }
  *out = &t->base;
  return 0;
}
