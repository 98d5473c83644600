/* test_export.c: table exports of system events (export/export_table.h,
 * export/export_engine.h) into a SQLite file and into a real, private
 * PostgreSQL server (tests/util/pgserver.h):
 *   - continuous export with filters and from: start, rows equal to the
 *     stored events, the cursor kept in the store;
 *   - a batch written twice, or half of it, adds each row once (both
 *     backends; PostgreSQL's staged path);
 *   - a table with other columns: a clear error naming the column, as a
 *     `subscription failed` event and from the CLI;
 *   - PostgreSQL stopped during an export, then started again: every event
 *     arrives, none twice;
 *   - kill -9 of `connrun serve` during a continuous export, then a
 *     restart: every event is in the table exactly once;
 *   - `connrun events export --to` of a range, run twice, with no password
 *     in its output;
 *   - configuration errors with FILE:LINE:COLUMN. */
#include "testutil.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/diag.h"
#include "control/apply.h"
#include "events/events.h"
#include "export/export_engine.h"
#include "export/export_table.h"
#include "pgserver.h"
#include "store/store.h"
#include "util/error.h"

static struct cr_pgserver pg;
static int n_db;

static int group_setup(void **state) {
  (void)state;
  if (cr_pgserver_start(&pg, 1) != 0) {
    print_error("postgresql: %s\n", pg.error);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  cr_pgserver_stop(&pg);
  return 0;
}

/* A fresh database of the private server; its URL into url. */
static void new_db(char *url, size_t len) {
  char name[32];
  snprintf(name, sizeof name, "export%d", ++n_db);
  assert_int_equal(cr_pgserver_createdb(&pg, name, url, len), 0);
}

static long long pg_scalar(const char *url, const char *sql) {
  PGconn *c = PQconnectdb(url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  long long v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
    v = PQgetisnull(r, 0, 0) ? 0 : atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return v;
}

static void pg_exec(const char *url, const char *sql) {
  PGconn *c = PQconnectdb(url);
  assert_int_equal(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    print_error("%s: %s\n", sql, PQerrorMessage(c));
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(c);
}

static long long sq_scalar(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* ---- An in-process engine on a store of its own ------------------------- */

struct env {
  char *dir, data[512];
  cr_config *cfg;
  cr_store *store;
  cr_export_engine *eng;
  char log[8192];
};

static void on_log(void *ud, int level, const char *msg) {
  struct env *e = ud;
  (void)level;
  size_t n = strlen(e->log);
  snprintf(e->log + n, sizeof e->log - n, "%s\n", msg);
}

static cr_config *load(struct env *e, const char *subs_yaml) {
  char yaml[4096];
  snprintf(yaml, sizeof yaml, "host:\n  data_dir: %s\nsubscriptions:\n%s",
           e->data, subs_yaml);
  char *path = cr_test_write_file(e->dir, "connrun.yaml", yaml);
  cr_config *cfg = NULL;
  cr_diags dg = CR_DIAGS_INIT;
  int rc = cr_config_load(path, &cfg, &dg);
  for (size_t i = 0; rc != 0 && i < dg.count; i++)
    print_error("config: %s\n", dg.items[i].message);
  assert_int_equal(rc, 0);
  cr_diags_free(&dg);
  free(path);
  return cfg;
}

static void emit_n(cr_store *s, int n, int64_t *first, int64_t *last) {
  static const char *verbs[] = {"completed", "failed", "synced", "started"};
  for (int i = 0; i < n; i++) {
    if (i % 500 == 0)
      assert_int_equal(cr_store_begin(s), 0);
    char sid[32];
    snprintf(sid, sizeof sid, "w%d", i % 7);
    /* Tabs, newlines, backslashes and quotes in the data: COPY's escapes. */
    json_t *data = json_pack("{s:i, s:s}", "i", i, "note", "a\tb\\n\"q\"\nc");
    int64_t id = 0;
    assert_int_equal(
        cr_event_emit(s, "work", sid, verbs[i % 4], "test", data, &id), 0);
    json_decref(data);
    if (first != NULL && i == 0)
      *first = id;
    if (last != NULL)
      *last = id;
    if (i % 500 == 499 || i == n - 1)
      assert_int_equal(cr_store_commit(s), 0);
  }
}

static void env_start(struct env *e, const char *subs_yaml, int pre_events) {
  memset(e, 0, sizeof *e);
  e->dir = cr_test_mkdtemp("export");
  snprintf(e->data, sizeof e->data, "%s/data", e->dir);
  char err[256] = "";
  assert_int_equal(cr_store_open(e->data, &e->store, err, sizeof err), 0);
  emit_n(e->store, pre_events, NULL, NULL);
  e->cfg = load(e, subs_yaml);
  assert_int_equal(
      cr_apply_config(e->store, e->cfg, "config", NULL, err, sizeof err), 0);
  struct cr_export_opts o = {
      .data_dir = e->data, .log = on_log, .log_ud = e, .poll_ms = 20};
  assert_int_equal(cr_export_engine_new(&o, &e->eng), 0);
  assert_int_equal(cr_export_engine_configure(e->eng, e->cfg), 0);
}

static void env_finish(struct env *e) {
  cr_export_engine_free(e->eng);
  cr_store_close(e->store);
  cr_config_free(e->cfg);
  cr_test_rmtree(e->dir);
  free(e->dir);
}

static int64_t count_events(cr_store *s, const char *verb) {
  struct cr_event_filter f = {.limit = CR_EVENT_QUERY_MAX_LIMIT};
  const char *verbs[1] = {verb};
  if (verb != NULL) {
    f.verbs = verbs;
    f.nverbs = 1;
  }
  int64_t total = 0;
  for (;;) {
    struct cr_event_rec *ev = NULL;
    size_t n = 0;
    assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
    total += (int64_t)n;
    if (n > 0)
      f.after_id = ev[n - 1].id;
    cr_event_rec_free_list(ev, n);
    if (n < f.limit)
      return total;
  }
}

/* Waits (bounded: 30 s) until counter(ud) returns want. */
static int wait_count(long long (*counter)(const char *, const char *),
                      const char *where, const char *sql, long long want) {
  long long v = -1;
  for (int i = 0; i < 1500 && (v = counter(where, sql)) != want; i++)
    usleep(20 * 1000);
  if (v != want)
    print_error("%s: %lld, want %lld\n", sql, v, want);
  return v == want;
}

/* ---- Tests --------------------------------------------------------------- */

static void test_sqlite_continuous(void **state) {
  (void)state;
  struct env e;
  char subs[2048], all[600], fails[600];
  char *dir = cr_test_mkdtemp("exportdst");
  snprintf(all, sizeof all, "%s/all.db", dir);
  snprintf(fails, sizeof fails, "%s/fails.db", dir);
  snprintf(subs, sizeof subs,
           "  - id: all\n    workflow: table_system_events\n"
           "    config: { destination: \"sqlite:%s\", from: start, "
           "batch_size: 700 }\n"
           "  - id: fails\n    workflow: table_system_events\n"
           "    config: { destination: \"sqlite:%s\", table: audit,\n"
           "              system_event_multiple_types: [failed] }\n",
           all, fails);
  env_start(&e, subs, 10); /* from: start takes these 10 too */
  int64_t first = 0, last = 0;
  emit_n(e.store, 2500, &first, &last);
  cr_export_engine_kick(e.eng);
  long long total = count_events(e.store, NULL);
  long long failed = 625; /* every fourth of the 2,500 */
  assert_true(
      wait_count(sq_scalar, all, "SELECT count(*) FROM system_events", total));
  assert_true(
      wait_count(sq_scalar, fails, "SELECT count(*) FROM audit", failed));
  assert_int_equal(
      sq_scalar(fails, "SELECT count(*) FROM audit WHERE verb <> 'failed'"), 0);
  /* Rows are the events: one checked column by column. */
  struct cr_event_filter f = {.after_id = first + 4, .limit = 1};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(e.store, &f, &ev, &n), 0);
  assert_int_equal(n, 1);
  char sql[512], at[40];
  cr_export_format_time(ev[0].at, at, sizeof at);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM system_events WHERE id = %lld AND at = '%s' "
           "AND subject_type = 'work' AND subject_id = '%s' AND verb = '%s' "
           "AND actor = 'test' AND seq = %lld AND json_extract(data, '$.i') = "
           "5 AND json_extract(data, '$.note') = 'a' || char(9) || 'b\\n\"q\"' "
           "|| char(10) || 'c'",
           (long long)ev[0].id, at, ev[0].subject_id, ev[0].verb,
           (long long)ev[0].seq);
  assert_int_equal(sq_scalar(all, sql), 1);
  cr_event_rec_free_list(ev, n);
  /* The cursor is in the store, at the last event. */
  struct cr_sub_rec *rec = NULL;
  assert_int_equal(cr_store_sub_get(e.store, "all", &rec), 0);
  assert_true(rec->cursor_event_id >= last);
  cr_sub_rec_free(rec);
  env_finish(&e);
  cr_test_rmtree(dir);
  free(dir);
}

/* Two batches of 6 events: the second repeats the first 3 and adds 3. */
static void twice(const char *url) {
  char err[512] = "";
  cr_export_table *t = NULL;
  int rc = cr_export_table_open(url, "ev", &t, err, sizeof err);
  if (rc != 0)
    print_error("%s\n", err);
  assert_int_equal(rc, 0);
  struct cr_event_rec ev[6];
  for (int i = 0; i < 6; i++)
    ev[i] = (struct cr_event_rec){.id = 100 + i,
                                  .at = 1764900000123 + i,
                                  .seq = i + 1,
                                  .subject_type = "work",
                                  .subject_id = "w",
                                  .verb = "failed",
                                  .actor = i % 2 ? NULL : "a",
                                  .data_json = "{\"k\": \"v\\tw\"}"};
  size_t ins = 99;
  assert_int_equal(cr_export_table_write(t, ev, 3, &ins, err, sizeof err), 0);
  assert_int_equal(ins, 3);
  assert_int_equal(cr_export_table_write(t, ev, 3, &ins, err, sizeof err), 0);
  assert_int_equal(ins, 0);
  assert_int_equal(cr_export_table_write(t, ev, 6, &ins, err, sizeof err), 0);
  assert_int_equal(ins, 3);
  cr_export_table_close(t);
}

static void test_idempotent_batches(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("exportidem");
  char url[700], path[600];
  snprintf(path, sizeof path, "%s/t.db", dir);
  snprintf(url, sizeof url, "sqlite:%s", path);
  twice(url);
  assert_int_equal(sq_scalar(path, "SELECT count(*) FROM ev"), 6);
  assert_int_equal(sq_scalar(path, "SELECT count(*) FROM ev WHERE actor IS "
                                   "NULL"),
                   3);
  char pgurl[400];
  new_db(pgurl, sizeof pgurl);
  twice(pgurl);
  assert_int_equal(pg_scalar(pgurl, "SELECT count(*) FROM ev"), 6);
  assert_int_equal(pg_scalar(pgurl,
                             "SELECT count(*) FROM ev WHERE data->>'k' = "
                             "E'v\\tw' AND at = '2025-12-05T02:00:00.125Z'"),
                   1);
  cr_test_rmtree(dir);
  free(dir);
}

static int has_failed_event(cr_store *s, const char *sub, const char *needle) {
  struct cr_event_filter f = {
      .subject_type = "subscription", .subject_id = sub, .limit = 100};
  const char *verbs[1] = {"failed"};
  f.verbs = verbs;
  f.nverbs = 1;
  for (int i = 0; i < 500; i++) {
    struct cr_event_rec *ev = NULL;
    size_t n = 0;
    assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
    int found = 0;
    for (size_t k = 0; k < n; k++)
      found |= strstr(ev[k].data_json, needle) != NULL;
    cr_event_rec_free_list(ev, n);
    if (found)
      return 1;
    usleep(20 * 1000);
  }
  return 0;
}

static void test_schema_mismatch(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("exportbad");
  char path[600], pgurl[400], subs[1400];
  snprintf(path, sizeof path, "%s/bad.db", dir);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "CREATE TABLE system_events (id INTEGER PRIMARY KEY, at "
                   "INTEGER, subject_type TEXT, subject_id TEXT, verb TEXT, "
                   "actor TEXT, seq INTEGER, data TEXT)",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  new_db(pgurl, sizeof pgurl);
  pg_exec(pgurl, "CREATE TABLE system_events (id bigint PRIMARY KEY, at "
                 "timestamptz, subject_type text, subject_id text, verb text, "
                 "actor text, seq bigint)");
  snprintf(subs, sizeof subs,
           "  - id: sq\n    workflow: table_system_events\n"
           "    config: { destination: \"sqlite:%s\" }\n"
           "  - id: pg\n    workflow: table_system_events\n"
           "    config: { destination: \"%s\" }\n",
           path, pgurl);
  struct env e;
  env_start(&e, subs, 0);
  emit_n(e.store, 3, NULL, NULL);
  assert_true(has_failed_event(e.store, "sq",
                               "column 'at' has type INTEGER, expected TEXT"));
  assert_true(has_failed_event(e.store, "pg", "column 'data' is missing"));
  /* Nothing was written, nothing was lost: the cursor has not moved. */
  struct cr_sub_rec *rec = NULL;
  assert_int_equal(cr_store_sub_get(e.store, "pg", &rec), 0);
  int64_t cursor = rec->cursor_event_id;
  cr_sub_rec_free(rec);
  assert_true(cursor < count_events(e.store, NULL));
  /* The CLI says the same. */
  char *cfg = cr_test_join(e.dir, "connrun.yaml"), *out = NULL;
  char *argv[] = {CR_CONNRUN_BIN, "events", "export", "-c", cfg,
                  "--to",         pgurl,    NULL};
  assert_int_not_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "column 'data' is missing"));
  free(out);
  free(cfg);
  env_finish(&e);
  cr_test_rmtree(dir);
  free(dir);
}

/* PostgreSQL stopped while events keep coming, then started again. */
static void test_pg_restart(void **state) {
  (void)state;
  char pgurl[400], subs[800];
  new_db(pgurl, sizeof pgurl);
  snprintf(subs, sizeof subs,
           "  - id: wh\n    workflow: table_system_events\n"
           "    config: { destination: \"%s\", table: audit, batch_size: 400,\n"
           "              system_event_sources: { work: [] } }\n",
           pgurl);
  struct env e;
  env_start(&e, subs, 0);
  emit_n(e.store, 1500, NULL, NULL);
  cr_export_engine_kick(e.eng);
  assert_true(wait_count(pg_scalar, pgurl, "SELECT count(*) FROM audit", 1500));
  cr_pgserver_halt(&pg);
  emit_n(e.store, 1200, NULL, NULL);
  cr_export_engine_kick(e.eng);
  assert_true(has_failed_event(e.store, "wh", "postgresql://"));
  assert_int_equal(cr_pgserver_restart(&pg), 0);
  assert_true(wait_count(pg_scalar, pgurl, "SELECT count(*) FROM audit", 2700));
  assert_int_equal(pg_scalar(pgurl, "SELECT count(DISTINCT id) FROM audit"),
                   2700);
  assert_non_null(strstr(e.log, "writing again"));
  env_finish(&e);
}

/* kill -9 of a real `connrun serve` while it exports; then a restart. */
static void test_kill9_serve(void **state) {
  (void)state;
  char pgurl[400], yaml[2048], data[600];
  new_db(pgurl, sizeof pgurl);
  char *dir = cr_test_mkdtemp("exportk9");
  snprintf(data, sizeof data, "%s/data", dir);
  /* The password is made up (trust authentication ignores it): it must
   * not show anywhere. */
  char url_pw[460];
  snprintf(url_pw, sizeof url_pw, "postgresql://connrun:pw-Xq81zz@%s",
           strstr(pgurl, "@") + 1);
  snprintf(yaml, sizeof yaml,
           "host:\n  data_dir: %s\n"
           "subscriptions:\n"
           "  - id: wh\n    workflow: table_system_events\n"
           "    config: { destination: \"${CR_TEST_PGURL}\", batch_size: 300,\n"
           "              system_event_multiple_types: [completed, failed] }\n",
           data);
  char *cfg = cr_test_write_file(dir, "connrun.yaml", yaml);
  char envv[600];
  snprintf(envv, sizeof envv, "CR_TEST_PGURL=%s", url_pw);
  char *env[] = {envv, NULL};
  struct cr_test_proc d = cr_test_serve(dir, cfg, NULL, env);
  assert_true(cr_test_wait_log(&d, "serving:", 1));
  cr_store *s = NULL;
  char err[256];
  for (int i = 0; i < 200 && s == NULL; i++) {
    if (cr_store_open(data, &s, err, sizeof err) != 0)
      usleep(50 * 1000);
  }
  assert_non_null(s);
  for (int round = 0; round < 10; round++) {
    emit_n(s, 1000, NULL, NULL);
    if (round == 4) { /* mid-stream, once some rows are in */
      for (int i = 0;
           i < 500 &&
           pg_scalar(pgurl, "SELECT count(*) FROM system_events") < 100;
           i++)
        usleep(10 * 1000);
      kill(d.pid, SIGKILL);
      cr_test_proc_wait(&d, 10000);
      free(d.log_path);
      d = cr_test_serve(dir, cfg, NULL, env);
      assert_true(cr_test_wait_log(&d, "serving:", 2));
    }
  }
  long long want = count_events(s, "completed") + count_events(s, "failed");
  assert_int_equal(want, 5000);
  assert_true(
      wait_count(pg_scalar, pgurl, "SELECT count(*) FROM system_events", want));
  /* Exactly the events the filter matches, by id. */
  struct cr_event_filter f = {.limit = CR_EVENT_QUERY_MAX_LIMIT};
  const char *verbs[2] = {"completed", "failed"};
  f.verbs = verbs;
  f.nverbs = 2;
  long long sum = 0;
  for (;;) {
    struct cr_event_rec *ev = NULL;
    size_t n = 0;
    assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
    for (size_t i = 0; i < n; i++)
      sum += ev[i].id;
    if (n > 0)
      f.after_id = ev[n - 1].id;
    cr_event_rec_free_list(ev, n);
    if (n < f.limit)
      break;
  }
  assert_int_equal(pg_scalar(pgurl, "SELECT sum(id) FROM system_events"), sum);
  assert_int_equal(pg_scalar(pgurl, "SELECT count(*) FROM system_events "
                                    "WHERE verb NOT IN ('completed', "
                                    "'failed')"),
                   0);
  cr_store_close(s);
  assert_int_equal(cr_test_proc_stop(&d), 0);
  char *serve_log = cr_test_join(dir, "serve.log");
  char *log = cr_test_read_file(serve_log);
  assert_null(strstr(log, "pw-Xq81zz"));
  free(log);
  free(serve_log);
  free(cfg);
  cr_test_rmtree(dir);
  free(dir);
}

/* `connrun events export --to` of a range, twice; the password never
 * printed. */
static void test_cli_one_time(void **state) {
  (void)state;
  char pgurl[400];
  new_db(pgurl, sizeof pgurl);
  struct env e;
  env_start(&e,
            "  - id: none\n    workflow: table_system_events\n"
            "    config: { destination: \"sqlite:/nonexistent/x.db\" }\n",
            0);
  emit_n(e.store, 12000, NULL, NULL);
  char url_pw[460];
  snprintf(url_pw, sizeof url_pw, "postgresql://connrun:pw-Cli77@%s",
           strstr(pgurl, "@") + 1);
  char *cfg = cr_test_join(e.dir, "connrun.yaml"), *out = NULL;
  char *argv[] = {
      CR_CONNRUN_BIN, "events", "export",  "-c",       cfg,
      "--to",         url_pw,   "--table", "failures", "--subject-type",
      "work",         "--verb", "failed",  NULL};
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  if (strstr(out, "3000 events exported, 3000 new rows") == NULL)
    print_error("%s\n", out);
  assert_non_null(strstr(out, "3000 events exported, 3000 new rows"));
  assert_null(strstr(out, "pw-Cli77"));
  free(out);
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "3000 events exported, 0 new rows"));
  free(out);
  assert_int_equal(pg_scalar(pgurl, "SELECT count(*) FROM failures"), 3000);
  /* --until bounds the range: nothing is later than now minus an hour. */
  char *argv2[] = {CR_CONNRUN_BIN, "events",  "export", "-c",      cfg,  "--to",
                   pgurl,          "--table", "old",    "--until", "1h", NULL};
  assert_int_equal(cr_test_run(argv2, NULL, &out), 0);
  assert_non_null(strstr(out, "0 events exported"));
  free(out);
  free(cfg);
  env_finish(&e);
}

static void expect_config_error(const char *sub_yaml, const char *needle,
                                int line) {
  char *dir = cr_test_mkdtemp("exportcfg");
  char yaml[1024];
  snprintf(yaml, sizeof yaml, "host:\n  data_dir: %s/data\nsubscriptions:\n%s",
           dir, sub_yaml);
  char *path = cr_test_write_file(dir, "c.yaml", yaml);
  cr_config *cfg = NULL;
  cr_diags dg = CR_DIAGS_INIT;
  assert_int_equal(cr_config_load(path, &cfg, &dg), CR_ECONFIG);
  cr_config_free(cfg);
  int found = 0;
  for (size_t i = 0; i < dg.count; i++)
    found |=
        strstr(dg.items[i].message, needle) != NULL && dg.items[i].line == line;
  if (!found)
    for (size_t i = 0; i < dg.count; i++)
      print_error("%d: %s\n", dg.items[i].line, dg.items[i].message);
  assert_true(found);
  cr_diags_free(&dg);
  free(path);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_config_errors(void **state) {
  (void)state;
  expect_config_error("  - id: a\n    workflow: table_system_events\n"
                      "    config:\n      destination: \"mysql://x/y\"\n",
                      "must be a sqlite:/path/file.db or postgresql:// URL", 7);
  expect_config_error("  - id: a\n    workflow: table_system_events\n"
                      "    config:\n      destination: \"sqlite:/tmp/x.db\"\n"
                      "      table: 1bad\n",
                      "'table'", 8);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_errors),
      cmocka_unit_test(test_sqlite_continuous),
      cmocka_unit_test(test_idempotent_batches),
      cmocka_unit_test(test_schema_mismatch),
      cmocka_unit_test(test_cli_one_time),
      cmocka_unit_test(test_pg_restart),
      cmocka_unit_test(test_kill9_serve),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
