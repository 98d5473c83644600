/* dest_sqlite.c: the SQLite destination: one table "stream_<name>" per
 * stream in one database file; records batched in one transaction between
 * flushes; flush is COMMIT.
 *
 * Tables: with a primary key, (pk TEXT PRIMARY KEY, data TEXT, updated_at
 * INTEGER) where pk is the compact JSON array of the key fields' values
 * (["a",1]) and a record upserts (INSERT ... ON CONFLICT(pk) DO UPDATE);
 * without one, (id INTEGER PRIMARY KEY AUTOINCREMENT, data, updated_at) and
 * records append. updated_at is ms since the epoch (cr__now_ms()).
 * Table names are case-insensitive in SQLite: two streams of one session
 * differing only by case are refused (CR_EINVAL); across sessions they would
 * share a table.
 *
 * Durability: journal_mode=WAL with synchronous=FULL. WAL+NORMAL survives a
 * process crash but may lose the last commits on power loss, and a flush is
 * what allows the caller to commit a plugin checkpoint: a lost commit after
 * a committed checkpoint would be a gap. FULL costs one WAL fsync per flush,
 * which flush batching makes cheap. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/alloc.h"
#include "util/clock.h"
#include "dest/dest_int.h"
#include "util/error.h"

struct sstream {
  char *name;
  char **pk;
  size_t npk;
  sqlite3_stmt *ins;
};

struct sdest {
  cr_dest base; /* first */
  sqlite3 *db;
  int in_txn;
  struct sstream *s;
  size_t n, cap;
  size_t last;
};

static int map_sqlite(int rc) {
  switch (rc & 0xff) {
  case SQLITE_NOMEM:
    return CR_ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return CR_EBUSY;
  case SQLITE_IOERR:
  case SQLITE_FULL:
    return CR_EIO;
  default:
    return CR_ESTORE;
  }
}

static int db_err(struct sdest *q, int rc, const char *what) {
  int err = map_sqlite(rc);
  cr__dest_errf(&q->base, err, "sqlite %s: %s", what, sqlite3_errmsg(q->db));
  /* A failure that silently rolled our batch back is fatal: the batch is
   * gone and a later COMMIT must not pretend otherwise. */
  if (q->in_txn && sqlite3_get_autocommit(q->db)) {
    q->in_txn = 0;
    q->base.failed = CR_ESTORE;
    return CR_ESTORE;
  }
  return err;
}

static int exec(struct sdest *q, const char *sql) {
  int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : db_err(q, rc, sql);
}

static void free_stream(struct sstream *s) {
  sqlite3_finalize(s->ins);
  for (size_t i = 0; i < s->npk; i++)
    cr__free(s->pk[i]);
  cr__free(s->pk);
  cr__free(s->name);
}

/* 1 if the stream's table has a pk column, 0 if not, <0 on error. */
static int table_has_pk(struct sdest *q, const char *table) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      q->db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'pk'", -1,
      &st, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    int has = sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    return has;
  }
  sqlite3_finalize(st);
  return db_err(q, rc, "table_info");
}

/* Creates the stream's table if needed, checks its shape, prepares the
 * insert statement. */
static int prepare_stream(struct sdest *q, struct sstream *s) {
  char table[160], sql[512];
  snprintf(table, sizeof table, "stream_%s", s->name);
  if (s->npk)
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS \"%s\" (pk TEXT PRIMARY KEY NOT NULL,"
             " data TEXT NOT NULL, updated_at INTEGER NOT NULL)",
             table);
  else
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS \"%s\" (id INTEGER PRIMARY KEY "
             "AUTOINCREMENT, data TEXT NOT NULL, updated_at INTEGER NOT NULL)",
             table);
  int rc = exec(q, sql);
  if (rc != 0)
    return rc;
  int has = table_has_pk(q, table);
  if (has < 0)
    return has;
  if (has != (s->npk > 0))
    return cr__dest_errf(&q->base, CR_ESCHEMA,
                         "table %s exists %s a primary key column; the stream "
                         "is declared %s one",
                         table, has ? "with" : "without",
                         s->npk ? "with" : "without");
  if (s->npk)
    snprintf(sql, sizeof sql,
             "INSERT INTO \"%s\"(pk, data, updated_at) VALUES (?1, ?2, ?3) "
             "ON CONFLICT(pk) DO UPDATE SET data = excluded.data, "
             "updated_at = excluded.updated_at",
             table);
  else
    snprintf(sql, sizeof sql,
             "INSERT INTO \"%s\"(data, updated_at) VALUES (?2, ?3)", table);
  rc = sqlite3_prepare_v2(q->db, sql, -1, &s->ins, NULL);
  return rc == SQLITE_OK ? 0 : db_err(q, rc, "prepare insert");
}

static int add_stream(struct sdest *q, const struct cr_dest_stream *st,
                      size_t *idx) {
  if (!cr__dest_name_ok(st->name))
    return cr__dest_errf(&q->base, CR_EINVAL, "invalid stream name \"%.140s\"",
                         st->name);
  for (size_t i = 0; i < q->n; i++) /* SQLite names ignore case */
    if (strcasecmp(q->s[i].name, st->name) == 0)
      return cr__dest_errf(&q->base, CR_EINVAL,
                           "stream %s collides with stream %s (SQLite table "
                           "names are case-insensitive)",
                           st->name, q->s[i].name);
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 4;
    struct sstream *a = cr__realloc(q->s, cap * sizeof *a);
    if (!a)
      return cr__dest_errf(&q->base, CR_ENOMEM, "out of memory");
    q->s = a;
    q->cap = cap;
  }
  struct sstream s = {.name = cr__strdup(st->name)};
  int rc = CR_ENOMEM;
  if (!s.name)
    goto oom;
  if (st->n_primary_key) {
    s.pk = cr__calloc(st->n_primary_key, sizeof *s.pk);
    if (!s.pk)
      goto oom;
    for (; s.npk < st->n_primary_key; s.npk++)
      if (!(s.pk[s.npk] = cr__strdup(st->primary_key[s.npk])))
        goto oom;
  }
  rc = prepare_stream(q, &s);
  if (rc != 0)
    goto fail;
  q->s[q->n] = s;
  *idx = q->last = q->n++;
  return 0;
oom:
  cr__dest_errf(&q->base, rc, "out of memory");
fail:
  free_stream(&s);
  return rc;
}

static int find_stream(struct sdest *q, const char *name, size_t *idx) {
  if (q->last < q->n && strcmp(q->s[q->last].name, name) == 0) {
    *idx = q->last;
    return 0;
  }
  for (size_t i = 0; i < q->n; i++)
    if (strcmp(q->s[i].name, name) == 0) {
      *idx = q->last = i;
      return 0;
    }
  return CR_ENOENT;
}

static int same_key(const struct sstream *s, const struct cr_dest_stream *st) {
  if (s->npk != st->n_primary_key)
    return 0;
  for (size_t i = 0; i < s->npk; i++)
    if (strcmp(s->pk[i], st->primary_key[i]) != 0)
      return 0;
  return 1;
}

static int sqlite_declare(cr_dest *d, const struct cr_dest_stream *st) {
  struct sdest *q = (struct sdest *)d;
  size_t idx;
  if (find_stream(q, st->name, &idx) == 0)
    return same_key(&q->s[idx], st)
               ? 0
               : cr__dest_errf(d, CR_ESTATE,
                               "stream %s already in use with another "
                               "primary key",
                               st->name);
  return add_stream(q, st, &idx);
}

/* Builds the pk text (compact JSON array of the key values) of a record;
 * *key is buf or a cr__malloc'd buffer the caller frees. */
static int record_key(struct sdest *q, const struct sstream *s,
                      const char *json, size_t len, char *buf, size_t buflen,
                      char **key, size_t *keylen) {
  json_error_t jerr;
  json_t *rec = json_loadb(json, len, 0, &jerr);
  json_t *arr = NULL;
  int rc;
  if (!rec && json_error_code(&jerr) == json_error_out_of_memory)
    return cr__dest_errf(&q->base, CR_ENOMEM, "out of memory");
  if (!rec || !json_is_object(rec)) {
    rc = cr__dest_errf(&q->base, CR_EINVAL,
                       "stream %s: record is not a JSON object%s%s", s->name,
                       rec ? "" : ": ", rec ? "" : jerr.text);
    goto out;
  }
  rc = CR_ENOMEM;
  if (!(arr = json_array()))
    goto out;
  for (size_t i = 0; i < s->npk; i++) {
    json_t *v = json_object_get(rec, s->pk[i]);
    if (!v || json_is_null(v)) {
      rc = cr__dest_errf(&q->base, CR_EINVAL,
                         "stream %s: record has no primary key field \"%s\"",
                         s->name, s->pk[i]);
      goto out;
    }
    if (json_array_append(arr, v) != 0)
      goto out;
  }
  size_t need = json_dumpb(arr, NULL, 0, JSON_COMPACT);
  if (need == 0)
    goto out;
  *key = need <= buflen ? buf : cr__malloc(need);
  if (!*key)
    goto out;
  *keylen = json_dumpb(arr, *key, need, JSON_COMPACT);
  rc = 0;
out:
  if (rc == CR_ENOMEM)
    cr__dest_errf(&q->base, rc, "out of memory");
  json_decref(arr);
  json_decref(rec);
  return rc;
}

static int insert(struct sdest *q, struct sstream *s, const char *key,
                  size_t keylen, const char *json, size_t len) {
  sqlite3_stmt *st = s->ins;
  int rc = SQLITE_OK;
  if (key)
    rc = sqlite3_bind_text(st, 1, key, (int)keylen, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(st, 2, json, (int)len, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(st, 3, cr__now_ms());
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? 0 : db_err(q, rc, "insert");
}

static int sqlite_write(cr_dest *d, const char *stream, const char *json,
                        size_t len) {
  struct sdest *q = (struct sdest *)d;
  if (len > (size_t)INT32_MAX)
    return cr__dest_errf(d, CR_ERANGE, "record too large");
  size_t idx;
  int rc = find_stream(q, stream, &idx);
  if (rc == CR_ENOENT) {
    struct cr_dest_stream st = {.name = stream};
    rc = add_stream(q, &st, &idx);
  }
  if (rc != 0)
    return rc;
  struct sstream *s = &q->s[idx];
  char buf[512], *key = NULL;
  size_t keylen = 0;
  if (s->npk &&
      (rc = record_key(q, s, json, len, buf, sizeof buf, &key, &keylen)) != 0)
    return rc;
  if (!q->in_txn) {
    rc = exec(q, "BEGIN");
    q->in_txn = rc == 0;
  }
  if (rc == 0)
    rc = insert(q, s, key, keylen, json, len);
  if (key != buf)
    cr__free(key);
  return rc;
}

static int sqlite_flush(cr_dest *d) {
  struct sdest *q = (struct sdest *)d;
  if (!q->in_txn)
    return 0;
  int rc = exec(q, "COMMIT");
  if (rc == 0 || sqlite3_get_autocommit(q->db))
    q->in_txn = 0;
  return rc;
}

static void sqlite_close(cr_dest *d) {
  struct sdest *q = (struct sdest *)d;
  for (size_t i = 0; i < q->n; i++)
    free_stream(&q->s[i]);
  cr__free(q->s);
  if (q->in_txn)
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(q->db);
  cr__free(q);
}

static const struct cr__dest_ops SQLITE_OPS = {
    .name = "sqlite",
    .declare_stream = sqlite_declare,
    .write = sqlite_write,
    .flush = sqlite_flush,
    .close = sqlite_close,
};

static int make_parent(const char *path, char *errbuf, size_t errlen) {
  const char *slash = strrchr(path, '/');
  if (!slash || slash == path)
    return 0;
  char dir[4096];
  size_t n = (size_t)(slash - path);
  if (n >= sizeof dir)
    return cr__dest_buf_errf(errbuf, errlen, CR_EINVAL, "path too long");
  memcpy(dir, path, n);
  dir[n] = '\0';
  return cr__dest_mkdirs(dir, errbuf, errlen);
}

static int setup_db(struct sdest *q, char *errbuf, size_t errlen) {
  static const char *const PRAGMAS[] = {"PRAGMA journal_mode = WAL",
                                        "PRAGMA synchronous = FULL",
                                        "PRAGMA busy_timeout = 5000"};
  for (size_t i = 0; i < sizeof PRAGMAS / sizeof PRAGMAS[0]; i++) {
    int rc = exec(q, PRAGMAS[i]);
    if (rc != 0)
      return cr__dest_buf_errf(errbuf, errlen, rc, "%s", q->base.err);
  }
  return 0;
}

int cr_dest_open_sqlite(const char *path, cr_dest **out, char *errbuf,
                        size_t errlen) {
  if (!out)
    return CR_EINVAL;
  *out = NULL;
  if (!path || !path[0])
    return cr__dest_buf_errf(errbuf, errlen, CR_EINVAL, "empty path");
  int rc = make_parent(path, errbuf, errlen);
  if (rc != 0)
    return rc;
  struct stat sb;
  int created = stat(path, &sb) != 0;
  struct sdest *q = cr__calloc(1, sizeof *q);
  if (!q)
    return cr__dest_buf_errf(errbuf, errlen, CR_ENOMEM, "out of memory");
  q->base.ops = &SQLITE_OPS;
  int src = sqlite3_open_v2(path, &q->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  if (src != SQLITE_OK) {
    rc = cr__dest_buf_errf(errbuf, errlen, map_sqlite(src), "open %s: %s", path,
                           q->db ? sqlite3_errmsg(q->db) : "no memory");
    goto fail;
  }
  rc = setup_db(q, errbuf, errlen);
  if (rc != 0)
    goto fail;
  if (created && cr__dest_fsync_parent(path) != 0) {
    rc = cr__dest_buf_errf(errbuf, errlen, CR_EIO, "fsync directory of %s: %s",
                           path, strerror(errno));
    goto fail;
  }
  q->base.err[0] = '\0';
  *out = &q->base;
  return 0;
fail:
  sqlite_close(&q->base);
  return rc;
}
