/* bench_export.c: continuous export of system events into a table
 * (export/export_engine.h), into a SQLite file and into PostgreSQL (a
 * private server, tests/util/pgserver.h, fsync on), each next to the bare
 * rate of the same rows in the same run: a prepared INSERT per row in
 * transactions of the same size (SQLite) and COPY (PostgreSQL). The engine
 * reads the events from the store, filters them, writes them and moves its
 * cursor; the bare rates only write rows prepared beforehand. Target: >= 50%
 * of the bare rate. */
#include <jansson.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "config/config.h"
#include "config/diag.h"
#include "control/apply.h"
#include "events/events.h"
#include "export/export_engine.h"
#include "export/export_table.h"
#include "pgserver.h"
#include "store/store.h"

#define N_EVENTS 200000
#define BATCH 5000

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_export: %s: %s\n", what, why);
  exit(1);
}

/* N_EVENTS events in the store at dir/data. */
static void fill(cr_store *s) {
  static const char *verbs[] = {"completed", "failed", "synced", "started"};
  for (int i = 0; i < N_EVENTS; i++) {
    if (i % BATCH == 0)
      cr_store_begin(s);
    char sid[16];
    snprintf(sid, sizeof sid, "w%d", i % 50);
    json_t *data = json_pack("{s:i, s:s, s:i}", "records", i, "stream",
                             "contacts", "attempt", 1);
    if (cr_event_emit(s, "work", sid, verbs[i % 4], "system", data, NULL) != 0)
      die("emit", cr_store_last_error(s));
    json_decref(data);
    if (i % BATCH == BATCH - 1)
      cr_store_commit(s);
  }
}

/* Every stored event (the rows the bare runs write). */
static struct cr_event_rec *read_all(cr_store *s, size_t *n_out) {
  struct cr_event_rec *all = malloc(sizeof *all * (N_EVENTS + 16));
  size_t n = 0;
  struct cr_event_filter f = {.limit = CR_EVENT_QUERY_MAX_LIMIT};
  for (;;) {
    struct cr_event_rec *ev = NULL;
    size_t k = 0;
    cr_store_event_query(s, &f, &ev, &k);
    for (size_t i = 0; i < k && n < N_EVENTS + 16; i++) {
      all[n] = ev[i];
      memset(&ev[i], 0, sizeof ev[i]);
      n++;
    }
    if (k > 0)
      f.after_id = all[n - 1].id;
    cr_event_rec_free_list(ev, k);
    if (k < f.limit)
      break;
  }
  *n_out = n;
  return all;
}

static double bare_sqlite(const char *path, const struct cr_event_rec *ev,
                          size_t n) {
  sqlite3 *db;
  sqlite3_stmt *st;
  char(*at)[40] = malloc(n * sizeof *at);
  for (size_t i = 0; i < n; i++)
    cr_export_format_time(ev[i].at, at[i], sizeof at[i]);
  sqlite3_open(path, &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT NOT NULL, "
               "subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, verb "
               "TEXT NOT NULL, actor TEXT, seq INTEGER NOT NULL, data TEXT "
               "NOT NULL)",
               NULL, NULL, NULL);
  sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1,
                     &st, NULL);
  double t0 = bench_now_s();
  for (size_t i = 0; i < n; i += BATCH) {
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (size_t j = i; j < i + BATCH && j < n; j++) {
      sqlite3_bind_int64(st, 1, ev[j].id);
      sqlite3_bind_text(st, 2, at[j], -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 3, ev[j].subject_type, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 4, ev[j].subject_id, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 5, ev[j].verb, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 6, ev[j].actor, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 7, ev[j].seq);
      sqlite3_bind_text(st, 8, ev[j].data_json, -1, SQLITE_STATIC);
      sqlite3_step(st);
      sqlite3_reset(st);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  }
  double rate = (double)n / (bench_now_s() - t0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  free(at);
  return rate;
}

static void pg_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    die(sql, PQerrorMessage(c));
  PQclear(r);
}

/* COPY text of rows [i, i + BATCH) (no escapes needed: the bench's data has
 * no tab, newline or backslash). */
static size_t copy_text(const struct cr_event_rec *ev, size_t i, size_t n,
                        char *buf, size_t cap) {
  size_t len = 0;
  for (size_t j = i; j < i + BATCH && j < n; j++) {
    char at[40];
    cr_export_format_time(ev[j].at, at, sizeof at);
    len += (size_t)snprintf(
        buf + len, cap - len, "%lld\t%s\t%s\t%s\t%s\t%s\t%lld\t%s\n",
        (long long)ev[j].id, at, ev[j].subject_type, ev[j].subject_id,
        ev[j].verb, ev[j].actor ? ev[j].actor : "\\N", (long long)ev[j].seq,
        ev[j].data_json);
  }
  return len;
}

static double bare_pg(const char *url, const struct cr_event_rec *ev,
                      size_t n) {
  PGconn *c = PQconnectdb(url);
  if (PQstatus(c) != CONNECTION_OK)
    die("connect", PQerrorMessage(c));
  pg_ok(c, "CREATE TABLE t (id bigint PRIMARY KEY, at timestamptz NOT NULL, "
           "subject_type text NOT NULL, subject_id text NOT NULL, verb text "
           "NOT NULL, actor text, seq bigint NOT NULL, data jsonb NOT NULL)");
  size_t nb = (n + BATCH - 1) / BATCH, cap = (size_t)BATCH * 512;
  char **bufs = malloc(nb * sizeof *bufs);
  size_t *lens = malloc(nb * sizeof *lens);
  for (size_t b = 0; b < nb; b++) {
    bufs[b] = malloc(cap);
    lens[b] = copy_text(ev, b * BATCH, n, bufs[b], cap);
  }
  double t0 = bench_now_s();
  for (size_t b = 0; b < nb; b++) {
    pg_ok(c, "BEGIN");
    PGresult *r = PQexec(c, "COPY t FROM STDIN");
    PQclear(r);
    PQputCopyData(c, bufs[b], (int)lens[b]);
    PQputCopyEnd(c, NULL);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      die("COPY", PQerrorMessage(c));
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
      PQclear(r);
    pg_ok(c, "COMMIT");
  }
  double rate = (double)n / (bench_now_s() - t0);
  for (size_t b = 0; b < nb; b++)
    free(bufs[b]);
  free(bufs);
  free(lens);
  PQfinish(c);
  return rate;
}

/* The engine exporting every stored event into dest (a table_system_events
 * subscription with from: start): events per second from configure to the
 * cursor at the last event. */
static double engine(const char *dir, const char *data, cr_store *s,
                     const char *id, const char *dest, int64_t last) {
  char yaml[2048], path[600], err[512];
  snprintf(yaml, sizeof yaml,
           "host:\n  data_dir: %s\nsubscriptions:\n  - id: %s\n"
           "    workflow: table_system_events\n"
           "    config: { destination: \"%s\", from: start, batch_size: %d }\n",
           data, id, dest, BATCH);
  snprintf(path, sizeof path, "%s/%s.yaml", dir, id);
  FILE *f = fopen(path, "w");
  fputs(yaml, f);
  fclose(f);
  cr_config *cfg = NULL;
  cr_diags dg = CR_DIAGS_INIT;
  if (cr_config_load(path, &cfg, &dg) != 0)
    die("config", dg.count ? dg.items[0].message : "?");
  cr_diags_free(&dg);
  if (cr_apply_config(s, cfg, "config", NULL, err, sizeof err) != 0)
    die("apply", err);
  cr_export_engine *e = NULL;
  struct cr_export_opts o = {.data_dir = data};
  if (cr_export_engine_new(&o, &e) != 0)
    die("engine", "cannot start");
  double t0 = bench_now_s();
  cr_export_engine_configure(e, cfg);
  int64_t cursor = 0;
  for (int i = 0; i < 60000 && cursor < last; i++) { /* at most 5 min */
    struct cr_sub_rec *rec = NULL;
    if (cr_store_sub_get(s, id, &rec) == 0)
      cursor = rec->cursor_event_id;
    cr_sub_rec_free(rec);
    if (cursor < last)
      usleep(5000);
  }
  double secs = bench_now_s() - t0;
  struct cr_export_stats st;
  cr_export_engine_get_stats(e, &st);
  cr_export_engine_free(e);
  cr_config_free(cfg);
  if (cursor < last)
    die(id, "the export did not finish within 5 minutes");
  return (double)st.written / secs;
}

int main(void) {
  struct cr_pgserver pg;
  char dir[] = "/tmp/bench_export.XXXXXX", data[600], path[600], err[256];
  char url[400], dest[700];
  if (mkdtemp(dir) == NULL)
    die("mkdtemp", "failed");
  if (cr_pgserver_start(&pg, 0) != 0)
    die("postgresql", pg.error);
  snprintf(data, sizeof data, "%s/data", dir);
  cr_store *s = NULL;
  if (cr_store_open(data, &s, err, sizeof err) != 0)
    die("store", err);
  fill(s);
  size_t n = 0;
  struct cr_event_rec *ev = read_all(s, &n);
  int64_t last = ev[n - 1].id;

  snprintf(path, sizeof path, "%s/bare.db", dir);
  double sq_bare = bare_sqlite(path, ev, n);
  snprintf(dest, sizeof dest, "sqlite:%s/export.db", dir);
  double sq = engine(dir, data, s, "to_sqlite", dest, last);
  cr_pgserver_createdb(&pg, "bare", url, sizeof url);
  double pg_bare = bare_pg(url, ev, n);
  cr_pgserver_createdb(&pg, "export", url, sizeof url);
  double pgr = engine(dir, data, s, "to_pg", url, last);

  char ceil[128];
  printf("%-52s %12s %-6s %-14s %s\n", "figure", "value", "unit", "target",
         "ceiling (same run)");
  snprintf(ceil, sizeof ceil, "bare INSERT %.0f/s, ratio %.2f", sq_bare,
           sq / sq_bare);
  bench_row("table export of 200,000 events into SQLite", sq, "ev/s",
            ">= 0.5 x bare", ceil);
  snprintf(ceil, sizeof ceil, "bare COPY %.0f/s, ratio %.2f", pg_bare,
           pgr / pg_bare);
  bench_row("table export of 200,000 events into PostgreSQL", pgr, "ev/s",
            ">= 0.5 x bare", ceil);

  for (size_t i = 0; i < n; i++) {
    free(ev[i].subject_type);
    free(ev[i].subject_id);
    free(ev[i].verb);
    free(ev[i].actor);
    free(ev[i].data_json);
  }
  free(ev);
  cr_store_close(s);
  cr_pgserver_stop(&pg);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
