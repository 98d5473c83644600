/* export_sqlite.c: the SQLite export table backend (export_table.h): a file
 * of its own in WAL mode, rows inserted with one prepared statement per
 * batch transaction, ON CONFLICT (id) DO NOTHING. */
#include "export/export_int.h"
#include "util/alloc.h"
#include "util/error.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct sq_table {
  struct cr_export_table base;
  sqlite3 *db;
  sqlite3_stmt *ins;
  char path[512];
};

/* The columns in order, with their SQLite types. */
static const char *const cols[][2] = {
    {"id", "INTEGER"},      {"at", "TEXT"},   {"subject_type", "TEXT"},
    {"subject_id", "TEXT"}, {"verb", "TEXT"}, {"actor", "TEXT"},
    {"seq", "INTEGER"},     {"data", "TEXT"},
};
#define N_COLS (sizeof cols / sizeof cols[0])

static int fail(struct sq_table *t, char *errbuf, size_t errlen,
                const char *what) {
  cr__export_err(errbuf, errlen, "%s: %s (%s)", t->path, what,
                 t->db ? sqlite3_errmsg(t->db) : "cannot open");
  return CR_EIO;
}

/* Checks an existing table's columns (PRAGMA table_info): each expected
 * column present with its type. *exists = 0 when there is no table. */
static int check_table(struct sq_table *t, const char *table, int *exists,
                       char *errbuf, size_t errlen) {
  char sql[128];
  sqlite3_stmt *st = NULL;
  int found[N_COLS] = {0}, ncols = 0, rc = 0;
  snprintf(sql, sizeof sql, "PRAGMA table_info(\"%s\")", table);
  if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK)
    return fail(t, errbuf, errlen, "cannot read the table's columns");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *type = (const char *)sqlite3_column_text(st, 2);
    ncols++;
    for (size_t i = 0; i < N_COLS; i++)
      if (name && strcasecmp(name, cols[i][0]) == 0) {
        found[i] = 1;
        if (type == NULL || strcasecmp(type, cols[i][1]) != 0) {
          cr__export_err(errbuf, errlen,
                         "table '%s' in %s does not match: column '%s' has "
                         "type %s, expected %s",
                         table, t->path, cols[i][0], type ? type : "(none)",
                         cols[i][1]);
          rc = CR_ECONFIG;
        }
      }
  }
  sqlite3_finalize(st);
  *exists = ncols > 0;
  for (size_t i = 0; rc == 0 && ncols > 0 && i < N_COLS; i++)
    if (!found[i]) {
      cr__export_err(errbuf, errlen,
                     "table '%s' in %s does not match: column '%s' is missing",
                     table, t->path, cols[i][0]);
      rc = CR_ECONFIG;
    }
  return rc;
}

static int create_table(struct sq_table *t, const char *table, char *errbuf,
                        size_t errlen) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "CREATE TABLE IF NOT EXISTS \"%s\" (id INTEGER PRIMARY KEY, at "
           "TEXT NOT NULL, subject_type TEXT NOT NULL, subject_id TEXT NOT "
           "NULL, verb TEXT NOT NULL, actor TEXT, seq INTEGER NOT NULL, data "
           "TEXT NOT NULL)",
           table);
  if (sqlite3_exec(t->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return fail(t, errbuf, errlen, "cannot create the table");
  return 0;
}

static int sq_write(cr_export_table *base, const struct cr_event_rec *ev,
                    size_t n, size_t *inserted, char *errbuf, size_t errlen) {
  struct sq_table *t = (struct sq_table *)base;
  size_t added = 0;
  if (sqlite3_exec(t->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return fail(t, errbuf, errlen, "cannot begin a transaction");
  for (size_t i = 0; i < n; i++) {
    char at[40];
    cr_export_format_time(ev[i].at, at, sizeof at);
    sqlite3_bind_int64(t->ins, 1, ev[i].id);
    sqlite3_bind_text(t->ins, 2, at, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(t->ins, 3, ev[i].subject_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(t->ins, 4, ev[i].subject_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(t->ins, 5, ev[i].verb, -1, SQLITE_STATIC);
    sqlite3_bind_text(t->ins, 6, ev[i].actor, -1, SQLITE_STATIC);
    sqlite3_bind_int64(t->ins, 7, ev[i].seq);
    sqlite3_bind_text(t->ins, 8, ev[i].data_json ? ev[i].data_json : "{}", -1,
                      SQLITE_STATIC);
    int rc = sqlite3_step(t->ins);
    sqlite3_reset(t->ins);
    if (rc != SQLITE_DONE) {
      fail(t, errbuf, errlen, "cannot insert");
      sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
      return CR_EIO;
    }
    added += (size_t)sqlite3_changes(t->db);
  }
  sqlite3_clear_bindings(t->ins);
  if (sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    fail(t, errbuf, errlen, "cannot commit");
    sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
    return CR_EIO;
  }
  if (inserted != NULL)
    *inserted = added;
  return 0;
}

static void sq_close(cr_export_table *base) {
  struct sq_table *t = (struct sq_table *)base;
  sqlite3_finalize(t->ins);
  sqlite3_close(t->db);
  cr__free(t);
}

static const struct cr_export_table_ops sq_ops = {"sqlite", sq_write, sq_close};

static int prepare(struct sq_table *t, const char *table, char *errbuf,
                   size_t errlen) {
  char sql[256];
  int exists = 0;
  if (sqlite3_open_v2(t->path, &t->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK)
    return fail(t, errbuf, errlen, "cannot open");
  sqlite3_busy_timeout(t->db, 5000);
  /* WAL + NORMAL: a commit survives the daemon being killed (the table is
   * then re-filled from the store's cursor on a power loss at worst). */
  if (sqlite3_exec(t->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                   NULL, NULL, NULL) != SQLITE_OK)
    return fail(t, errbuf, errlen, "cannot set WAL mode");
  int rc = check_table(t, table, &exists, errbuf, errlen);
  if (rc == 0 && !exists)
    rc = create_table(t, table, errbuf, errlen);
  if (rc != 0)
    return rc;
  snprintf(sql, sizeof sql,
           "INSERT INTO \"%s\" (id, at, subject_type, subject_id, verb, "
           "actor, seq, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON "
           "CONFLICT (id) DO NOTHING",
           table);
  if (sqlite3_prepare_v3(t->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &t->ins,
                         NULL) != SQLITE_OK)
    return fail(t, errbuf, errlen, "cannot prepare the insert");
  return 0;
}

int cr__export_sqlite_open(const char *path, const char *table,
                           cr_export_table **out, char *errbuf, size_t errlen) {
  struct sq_table *t = cr__calloc(1, sizeof *t);
  if (t == NULL)
    return CR_ENOMEM;
  t->base.ops = &sq_ops;
  snprintf(t->path, sizeof t->path, "%s", path);
  int rc = prepare(t, table, errbuf, errlen);
  if (rc != 0) {
    sq_close(&t->base);
    return rc;
  }
  *out = &t->base;
  return 0;
}
