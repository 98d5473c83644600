/* bench_store.c: store throughput: system events appended one per commit and
 * in batches of 100, against the bare SQLite ceiling measured in the same
 * run (one-row INSERT per commit, same pragmas). Prints figure, value,
 * target, ratio. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events/events.h"
#include "store/store.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double bare_sqlite(const char *path, int n, int batch) {
  sqlite3 *db;
  sqlite3_open(path, &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b TEXT);",
               NULL, NULL, NULL);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "INSERT INTO t(a, b) VALUES (?, ?)", -1, &st, NULL);
  double t0 = now_s();
  for (int i = 0; i < n; i += batch) {
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int j = 0; j < batch; j++) {
      sqlite3_bind_text(st, 1, "work", -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 2, "{\"records\":100}", -1, SQLITE_STATIC);
      sqlite3_step(st);
      sqlite3_reset(st);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  }
  double rate = n / (now_s() - t0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rate;
}

static double store_events(const char *dir, int n, int batch) {
  cr_store *s;
  char err[256];
  if (cr_store_open(dir, &s, err, sizeof err) != 0) {
    fprintf(stderr, "bench_store: %s\n", err);
    exit(1);
  }
  json_t *data = json_pack("{s:i}", "records", 100);
  double t0 = now_s();
  for (int i = 0; i < n; i += batch) {
    cr_store_begin(s);
    for (int j = 0; j < batch; j++)
      cr_event_emit(s, "work", "w1", "synced", "system", data, NULL);
    cr_store_commit(s);
  }
  double rate = n / (now_s() - t0);
  json_decref(data);
  cr_store_close(s);
  return rate;
}

static void row(const char *figure, double value, const char *target,
                double ceiling) {
  printf("%-40s %12.0f/s  %-12s ratio %.2f\n", figure, value, target,
         ceiling > 0 ? value / ceiling : 0);
}

int main(void) {
  char tmpl[] = "/tmp/connrun-bench-XXXXXX";
  char *dir = mkdtemp(tmpl);
  char path[512];
  const int n1 = 20000, n100 = 200000;
  snprintf(path, sizeof path, "%s/bare1.db", dir);
  double bare1 = bare_sqlite(path, n1, 1);
  snprintf(path, sizeof path, "%s/bare100.db", dir);
  double bare100 = bare_sqlite(path, n100, 100);
  snprintf(path, sizeof path, "%s/s1", dir);
  double ev1 = store_events(path, n1, 1);
  snprintf(path, sizeof path, "%s/s100", dir);
  double ev100 = store_events(path, n100, 100);
  printf("%-40s %14s  %-12s %s\n", "figure", "value", "target", "vs ceiling");
  row("ceiling: bare SQLite, 1 row/commit", bare1, "-", bare1);
  row("ceiling: bare SQLite, 100 rows/commit", bare100, "-", bare100);
  row("events appended, 1 per commit", ev1, "-", bare1);
  row("events appended, 100 per commit", ev100, ">= 25000", bare100);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}
