/* test_store.c: the store interface on its SQLite backend, on real files:
 * opening and migrations (fresh, re-open, upgrade from version 1, refusal of
 * a newer schema), WAL and pragmas, upsert/get/list/delete semantics,
 * events (ids, per-subject seq, filters, paging, limits, pruning against the
 * outbox), transactions (rollback, nesting, failures inside), metrics
 * aggregation, health history, subscriptions, counts, URLs, errors and
 * allocation failures; schema version 3: upgrades from versions 1 and 2,
 * versioned sync state, execution retries (not_before) and runner release,
 * open executions of a work, a work's first run, rotated credentials;
 * schema version 4: the webhook outbox (enqueue through subscription
 * filters, cursors, due rows, attempts, failing streaks, disable and
 * re-enable, replay, stats, pruning against cursors, upgrade from 3). */
#include "pgserver.h"
#include "testutil.h"

#include <pthread.h>
#include <time.h>

#include "config/config.h"
#include "events/events.h"
#include "events/sub_filter.h"
#include "exec/execution.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "store/store_copy.h"
#include "store/store_runners.h"
#include "store/store_sql.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const ALL_TABLES[] = {"schema_migrations",
                                         "authorizations",
                                         "auth_health",
                                         "works",
                                         "executions",
                                         "execution_transitions",
                                         "events",
                                         "event_subjects",
                                         "runners",
                                         "sync_state",
                                         "metrics",
                                         "subscriptions",
                                         "outbox",
                                         "delivery_attempts",
                                         "auth_credentials"};
static const char *const V2_TABLES[] = {"metrics", "subscriptions", "outbox",
                                        "delivery_attempts"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Helpers ------------------------------------------------------------- */

/* --pg: the same tests against a private PostgreSQL server (the store's
 * contract holds on both backends); the SQLite-only ones (file format,
 * migrations from old versions, pragmas) are left out there. */
static int g_use_pg;
static struct cr_pgserver g_pg;

struct fixture {
  char *dir;
  char db[4096];
  char where[4096]; /* the data directory, or the PostgreSQL URL */
  cr_store *s;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof *f);
  f->dir = cr_test_mkdtemp("store");
  snprintf(f->db, sizeof f->db, "%s/%s", f->dir, CR_STORE_DB_NAME);
  snprintf(f->where, sizeof f->where, "%s", f->dir);
  if (g_use_pg) { /* a new database per test */
    static int n;
    char name[32];
    snprintf(name, sizeof name, "t%d", ++n);
    if (cr_pgserver_createdb(&g_pg, name, f->where, sizeof f->where) != 0)
      fail_msg("createdb: %s", g_pg.error);
  }
  char err[256] = "";
  int rc = cr_store_open(f->where, &f->s, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  cr_store_close(f->s);
  cr__clock_set_fake(0);
  cr_test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static int64_t qint(cr_store *s, const char *sql) {
  int64_t v = -1;
  assert_int_equal(cr__store_sqlite_query_int(s, sql, &v), 0);
  return v;
}

static int table_exists(cr_store *s, const char *name) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
           "name = '%s'",
           name);
  return qint(s, sql) == 1;
}

/* A work written as an old schema holds it (today's statements name columns
 * later versions added). */
static void put_old_work(cr_store *s, const char *id, const char *auth) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO works (id, name, provider, authorization_id, "
           "config_hash, enabled, error_email_notifications, max_attempts, "
           "created_at, updated_at) VALUES ('%s', '%s', 'wh', '%s', 'h', 1, "
           "0, 3, 1, 1)",
           id, id, auth);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
}

static int version_of(cr_store *s) {
  int v = -1;
  assert_int_equal(cr_store_schema_version(s, &v), 0);
  return v;
}

static struct cr_auth_rec auth(const char *id, const char *name,
                               const char *hash) {
  struct cr_auth_rec r = {0};
  r.id = (char *)id;
  r.name = (char *)name;
  r.description = "test authorization";
  r.provider = "stripe";
  r.method = "api_key";
  r.owner = "ops@example.com";
  r.config_hash = (char *)hash;
  return r;
}

static void put_auth(cr_store *s, const char *id) {
  struct cr_auth_rec a = auth(id, id, "h");
  assert_int_equal(cr_store_auth_upsert(s, &a, NULL), 0);
}

static struct cr_work_rec work(const char *id, const char *auth_id,
                               const char *hash) {
  struct cr_work_rec w = {0};
  w.id = (char *)id;
  w.name = "nightly";
  w.provider = "stripe";
  w.authorization_id = (char *)auth_id;
  w.schedule_json = "{\"cron\":\"0 2 * * *\"}";
  w.destination_json = "{\"type\":\"file\"}";
  w.config_json = "{}";
  w.config_hash = (char *)hash;
  w.enabled = 1;
  w.max_attempts = 3;
  return w;
}

static int64_t append(cr_store *s, const char *type, const char *id,
                      const char *verb, int64_t at) {
  struct cr_event_rec e = {0};
  e.at = at;
  e.subject_type = (char *)type;
  e.subject_id = (char *)id;
  e.verb = (char *)verb;
  e.actor = "system";
  e.data_json = "{\"k\":1}";
  int64_t eid = 0;
  assert_int_equal(cr_store_event_append(s, &e, &eid), 0);
  assert_true(eid > 0);
  return eid;
}

static size_t count_events(cr_store *s) {
  struct cr_event_filter f = {0};
  f.limit = CR_EVENT_QUERY_MAX_LIMIT;
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  cr_event_rec_free_list(ev, n);
  return n;
}

/* Whole file contents with length (test-owned). */
static char *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  long sz = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  char *buf = malloc((size_t)sz + 1);
  assert_int_equal(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
  fclose(fp);
  *len = (size_t)sz;
  return buf;
}

/* Milliseconds of a UTC date and time, via libc (independent of the store). */
static int64_t utc_ms(int y, int mon, int d, int h, int min) {
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = min;
  return (int64_t)timegm(&tm) * 1000;
}

/* ---- Opening and migrations ---------------------------------------------- */

static void test_fresh_database_is_latest(void **state) {
  (void)state;
  char *root = cr_test_mkdtemp("store-fresh");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/a/b/data", root);
  cr_store *s = NULL;
  char err[256] = "";
  assert_int_equal(cr_store_open(dir, &s, err, sizeof err), 0);
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  assert_true(cr__store_sqlite_latest_version() >= 3);
  for (size_t i = 0; i < NELEM(ALL_TABLES); i++)
    assert_true(table_exists(s, ALL_TABLES[i]));
  assert_int_equal(qint(s, "SELECT count(*) FROM schema_migrations"),
                   cr__store_sqlite_latest_version());
  assert_true(qint(s, "SELECT min(applied_at) FROM schema_migrations") > 0);
  cr_store_close(s);
  cr_test_rmtree(root);
  free(root);
}

static void test_reopen_applies_nothing_and_keeps_data(void **state) {
  struct fixture *f = *state;
  put_auth(f->s, "a1");
  char before[512], after[512];
  const char *hist = "SELECT group_concat(version || ':' || applied_at) FROM "
                     "(SELECT * FROM schema_migrations ORDER BY version)";
  assert_int_equal(
      cr__store_sqlite_query_text(f->s, hist, before, sizeof before), 0);
  cr_store_close(f->s);
  cr__clock_set_fake(INT64_C(4000000000000)); /* a later "now" */
  char err[256] = "";
  assert_int_equal(cr_store_open(f->where, &f->s, err, sizeof err), 0);
  assert_int_equal(cr__store_sqlite_query_text(f->s, hist, after, sizeof after),
                   0);
  assert_string_equal(before, after);
  struct cr_auth_rec *a = NULL;
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), 0);
  assert_string_equal(a->provider, "stripe");
  cr_auth_rec_free(a);
}

/* Version 3 is in place and the data of an older version reads through the
 * version 3 calls: sync state row of w1 (version 1, execution e), execution
 * e of w1. */
static void check_v3_over_old_data(cr_store *s, int64_t e) {
  assert_true(table_exists(s, "auth_credentials"));
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE type = "
                           "'index' AND name = 'executions_by_runner'"),
                   1);
  struct cr_sync_state_rec r;
  assert_int_equal(cr_store_sync_state_latest(s, "w1", &r), 0);
  assert_int_equal(r.version, 1);
  assert_string_equal(r.state_json, "{\"cursor\":\"old\"}");
  assert_int_equal(r.records, 12);
  assert_int_equal(r.execution_id, e);
  assert_null(r.note);
  cr_sync_state_rec_clear(&r);
  int64_t v = 0;
  assert_int_equal(
      cr_store_sync_state_commit(s, "w1", "{}", 3, e, "after upgrade", &v), 0);
  assert_int_equal(v, 2);
  int64_t total = 0;
  assert_int_equal(cr_store_sync_state_exec_records(s, e, &total), 0);
  assert_int_equal(total, 15);
  struct cr_exec_rec x;
  assert_int_equal(cr_store_exec_get(s, e, &x), 0);
  assert_string_equal(x.state, "created");
  assert_int_equal(x.not_before, 0);
  cr_exec_rec_clear(&x);
  int open = 0, first = 0;
  assert_int_equal(cr_store_exec_work_open(s, "w1", &open), 0);
  assert_int_equal(open, 1);
  assert_int_equal(cr_store_work_mark_started(s, "w1", &first), 0);
  assert_int_equal(first, 1);
  assert_int_equal(cr_store_auth_credentials_set(s, "a1", "h", "{}"), 0);
}

/* Writes the old data check_v3_over_old_data expects (work w1 exists);
 * returns the execution id. */
static int64_t put_old_exec_and_state(cr_store *s) {
  int64_t e = 0;
  assert_int_equal(cr_store_exec_create(s, "w1", &e), 0);
  char sql[256];
  snprintf(sql, sizeof sql,
           "INSERT INTO sync_state (work_id, version, state_json, records, "
           "committed_at, execution_id) VALUES ('w1', 1, "
           "'{\"cursor\":\"old\"}', 12, 5, %lld)",
           (long long)e);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
  /* Version 3 calls fail cleanly before the upgrade. */
  struct cr_sync_state_rec r;
  assert_int_equal(cr_store_sync_state_latest(s, "w1", &r), CR_ESTORE);
  return e;
}

/* A store in f's directory (name.db, its path in path) created at schema
 * version, for upgrade tests. */
static cr_store *open_old(struct fixture *f, const char *name, int version,
                          char *path, size_t len) {
  snprintf(path, len, "%s/%s.db", f->dir, name);
  cr_store *s = NULL;
  char err[256] = "";
  assert_int_equal(
      cr__store_sqlite_open_at_version(path, version, &s, err, sizeof err), 0);
  return s;
}

static void test_upgrade_from_version_2(void **state) {
  struct fixture *f = *state;
  char path[4096], err[256] = "";
  cr_store *s = open_old(f, "v2", 2, path, sizeof path);
  assert_int_equal(version_of(s), 2);
  assert_false(table_exists(s, "auth_credentials"));
  put_auth(s, "a1");
  put_old_work(s, "w1", "a1");
  int64_t e = put_old_exec_and_state(s);
  assert_int_equal(cr_store_metrics_add(s, "a1", 1000, 4, 1), 0);
  cr_store_close(s);
  assert_int_equal(cr__store_sqlite_open(path, &s, err, sizeof err), 0);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  assert_int_equal(qint(s, "SELECT count(*) FROM schema_migrations"),
                   cr__store_sqlite_latest_version());
  check_v3_over_old_data(s, e);
  assert_int_equal(qint(s, "SELECT requests FROM metrics"), 4);
  cr_store_close(s);
}

static void test_upgrade_from_version_1(void **state) {
  struct fixture *f = *state;
  char path[4096], err[256] = "";
  cr_store *s = open_old(f, "old", 1, path, sizeof path);
  assert_int_equal(version_of(s), 1);
  for (size_t i = 0; i < NELEM(V2_TABLES); i++)
    assert_false(table_exists(s, V2_TABLES[i]));
  put_auth(s, "a1");
  put_old_work(s, "w1", "a1");
  int64_t e1 = append(s, "authorization", "a1", "created", 1000);
  int64_t ex = put_old_exec_and_state(s);
  /* Version 2 tables are missing: a clean store error. */
  assert_int_equal(cr_store_metrics_add(s, "a1", 1000, 1, 0), CR_ESTORE);
  assert_non_null(strstr(cr_store_last_error(s), "no such table"));
  cr_store_close(s);

  char url[4200];
  snprintf(url, sizeof url, "sqlite:%s", path);
  assert_int_equal(cr_store_open_url(url, &s, err, sizeof err), 0);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  for (size_t i = 0; i < NELEM(V2_TABLES); i++)
    assert_true(table_exists(s, V2_TABLES[i]));
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE type = "
                           "'index' AND name = 'events_by_at'"),
                   1);
  struct cr_work_rec *got = NULL;
  assert_int_equal(cr_store_work_get(s, "w1", &got), 0);
  assert_string_equal(got->authorization_id, "a1");
  cr_work_rec_free(got);
  struct cr_event_filter q = {0};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &q, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ev[0].id, e1);
  cr_event_rec_free_list(ev, n);
  /* The new tables work and the old data is reachable from them. */
  assert_int_equal(cr_store_metrics_add(s, "a1", 1000, 1, 0), 0);
  int64_t e2 = append(s, "authorization", "a1", "updated", 2000);
  assert_true(e2 > e1);
  check_v3_over_old_data(s, ex);
  cr_store_close(s);
}

static void test_newer_schema_is_refused_untouched(void **state) {
  struct fixture *f = *state;
  assert_int_equal(cr__store_sqlite_exec(f->s, "INSERT INTO schema_migrations "
                                               "VALUES (99, 1)"),
                   0);
  cr_store_close(f->s);
  f->s = NULL;
  size_t len0 = 0, len1 = 0;
  char *before = slurp(f->db, &len0);
  char err[256] = "";
  cr_store *s = (cr_store *)1;
  assert_int_equal(cr_store_open(f->where, &s, err, sizeof err), CR_ESCHEMAVER);
  assert_null(s);
  char want[256];
  snprintf(want, sizeof want,
           "connrun.db schema version 99 is newer than this build (%d); "
           "upgrade connrun",
           cr__store_sqlite_latest_version());
  assert_string_equal(err, want);
  char *after = slurp(f->db, &len1);
  assert_int_equal(len0, len1);
  assert_memory_equal(before, after, len0);
  free(before);
  free(after);
  /* The test hook refuses it too, whatever version it is asked for. */
  assert_int_equal(
      cr__store_sqlite_open_at_version(f->db, 1, &s, err, sizeof err),
      CR_ESCHEMAVER);
}

static void test_foreign_files_are_refused(void **state) {
  struct fixture *f = *state;
  char err[256] = "";
  cr_store *s = NULL;
  char *junk = cr_test_write_file(f->dir, "junk.db",
                                  "this is not an SQLite database at all, "
                                  "just text that is long enough to matter\n");
  assert_int_equal(cr__store_sqlite_open(junk, &s, err, sizeof err), CR_ESTORE);
  assert_null(s);
  assert_true(strlen(err) > 0);
  free(junk);

  char other[4096];
  snprintf(other, sizeof other, "%s/other.db", f->dir);
  assert_int_equal(
      cr__store_sqlite_open_at_version(other, 0, &s, err, sizeof err), 0);
  assert_int_equal(version_of(s), 0);
  assert_int_equal(cr__store_sqlite_exec(s, "CREATE TABLE t (x)"), 0);
  cr_store_close(s);
  assert_int_equal(cr__store_sqlite_open(other, &s, err, sizeof err),
                   CR_ESTORE);
  assert_non_null(strstr(err, "not a connrun database"));
}

static void test_wal_and_pragmas(void **state) {
  struct fixture *f = *state;
  char mode[32];
  assert_int_equal(cr__store_sqlite_query_text(f->s, "PRAGMA journal_mode",
                                               mode, sizeof mode),
                   0);
  assert_string_equal(mode, "wal");
  assert_int_equal(qint(f->s, "PRAGMA synchronous"), 1); /* NORMAL */
  assert_int_equal(qint(f->s, "PRAGMA foreign_keys"), 1);
  put_auth(f->s, "a1");
  char wal[4200];
  snprintf(wal, sizeof wal, "%s-wal", f->db);
  assert_int_equal(access(wal, F_OK), 0);
}

struct lock_holder {
  cr_store *s;
  int hold_ms;
};

static void *hold_write_lock(void *arg) {
  struct lock_holder *h = arg;
  struct timespec ts = {0, (long)h->hold_ms * 1000000L};
  nanosleep(&ts, NULL);
  cr_store_commit(h->s);
  return NULL;
}

/* The busy handler: a writer waits for another connection's transaction
 * (here 150 ms) instead of failing. */
static void test_busy_wait(void **state) {
  struct fixture *f = *state;
  cr_store *s2 = NULL;
  char err[256] = "";
  assert_int_equal(cr_store_open(f->where, &s2, err, sizeof err), 0);
  assert_int_equal(cr_store_begin(s2), 0); /* BEGIN IMMEDIATE: write lock */
  put_auth(s2, "held");
  struct lock_holder h = {s2, 150};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, hold_write_lock, &h), 0);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  put_auth(f->s, "waiter"); /* asserts success inside */
  clock_gettime(CLOCK_MONOTONIC, &b);
  pthread_join(t, NULL);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  assert_true(ms >= 100);
  cr_store_close(s2);
}

static void test_open_url(void **state) {
  struct fixture *f = *state;
  char err[256] = "";
  cr_store *s = (cr_store *)1;
  /* Nothing listens on port 1: a clear error without the password. */
  assert_int_equal(cr_store_open_url("postgres://u:hunter2@127.0.0.1:1/c", &s,
                                     err, sizeof err),
                   CR_ESTORE);
  assert_null(s);
  assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
  assert_null(strstr(err, "hunter2"));
  assert_true(cr_store_is_url("postgresql://x"));
  assert_true(cr_store_is_url("sqlite:/x.db"));
  assert_false(cr_store_is_url("/var/lib/connrun"));
  assert_int_equal(cr_store_open_url("mysql://x", &s, err, sizeof err),
                   CR_EINVAL);
  assert_int_equal(cr_store_open_url("sqlite:", &s, err, sizeof err),
                   CR_EINVAL);
  assert_int_equal(cr_store_open_url(NULL, &s, err, sizeof err), CR_EINVAL);

  char url[4200];
  snprintf(url, sizeof url, "sqlite://%s/url.db", f->dir); /* "sqlite:///" */
  assert_int_equal(cr_store_open_url(url, &s, err, sizeof err), 0);
  put_auth(s, "a1");
  cr_store_close(s);
  char path[4200];
  snprintf(path, sizeof path, "%s/url.db", f->dir);
  assert_int_equal(access(path, F_OK), 0);

  assert_int_equal(cr_store_open_url("sqlite::memory:", &s, err, sizeof err),
                   0);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  put_auth(s, "a1");
  struct cr_auth_rec *a = NULL;
  assert_int_equal(cr_store_auth_get(s, "a1", &a), 0);
  cr_auth_rec_free(a);
  cr_store_close(s);

  /* A data directory that is a file cannot be used. */
  char *file = cr_test_write_file(f->dir, "plain", "x");
  assert_int_equal(cr_store_open(file, &s, err, sizeof err), CR_EIO);
  free(file);
  assert_int_equal(cr_store_open(NULL, &s, err, sizeof err), CR_EINVAL);
}

/* ---- Authorizations, works, subscriptions -------------------------------- */

static void test_auth_upsert_changed_and_delete(void **state) {
  struct fixture *f = *state;
  int changed = -1;
  cr__clock_set_fake(1000);
  struct cr_auth_rec in = auth("a1", "Stripe prod", "h1");
  assert_int_equal(cr_store_auth_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_CREATED);

  cr__clock_set_fake(2000);
  assert_int_equal(cr_store_auth_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_UNCHANGED);
  struct cr_auth_rec *a = NULL;
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), 0);
  assert_int_equal(a->created_at, 1000);
  assert_int_equal(a->updated_at, 1000);
  cr_auth_rec_free(a);

  cr__clock_set_fake(3000);
  in = auth("a1", "Stripe production", "h2");
  in.owner = NULL;
  assert_int_equal(cr_store_auth_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_UPDATED);
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), 0);
  assert_string_equal(a->id, "a1");
  assert_string_equal(a->name, "Stripe production");
  assert_string_equal(a->description, "test authorization");
  assert_string_equal(a->provider, "stripe");
  assert_string_equal(a->method, "api_key");
  assert_null(a->owner);
  assert_string_equal(a->config_hash, "h2");
  assert_int_equal(a->created_at, 1000);
  assert_int_equal(a->updated_at, 3000);
  cr_auth_rec_free(a);

  put_auth(f->s, "a0");
  struct cr_auth_rec *list = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_auth_list(f->s, &list, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(list[0].id, "a0");
  assert_string_equal(list[1].id, "a1");
  cr_auth_rec_free_list(list, n);

  cr__clock_set_fake(4000);
  assert_int_equal(cr_store_auth_delete(f->s, "a1"), 0);
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), CR_ENOENT);
  assert_null(a);
  assert_non_null(strstr(cr_store_last_error(f->s), "a1"));
  assert_int_equal(cr_store_auth_delete(f->s, "a1"), CR_ENOENT);
  assert_int_equal(cr_store_auth_delete(f->s, "nope"), CR_ENOENT);
  assert_int_equal(cr_store_auth_list(f->s, &list, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(list[0].id, "a0");
  cr_auth_rec_free_list(list, n);

  /* Declared again (same hash): created anew. */
  cr__clock_set_fake(5000);
  assert_int_equal(cr_store_auth_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_CREATED);
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), 0);
  assert_int_equal(a->created_at, 5000);
  assert_int_equal(a->updated_at, 5000);
  cr_auth_rec_free(a);

  /* Required fields. */
  in.config_hash = NULL;
  assert_int_equal(cr_store_auth_upsert(f->s, &in, &changed), CR_EINVAL);
  assert_int_equal(changed, CR_STORE_UNCHANGED);
  in = auth("", "x", "h");
  assert_int_equal(cr_store_auth_upsert(f->s, &in, NULL), CR_EINVAL);
  assert_int_equal(cr_store_auth_upsert(f->s, NULL, NULL), CR_EINVAL);
}

static void test_work_upsert_get_delete(void **state) {
  struct fixture *f = *state;
  put_auth(f->s, "a1");
  int changed = -1;
  struct cr_work_rec in = work("w1", "a1", "h1");
  cr__clock_set_fake(1000);
  assert_int_equal(cr_store_work_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_CREATED);
  struct cr_work_rec *w = NULL;
  assert_int_equal(cr_store_work_get(f->s, "w1", &w), 0);
  assert_string_equal(w->name, "nightly");
  assert_string_equal(w->schedule_json, "{\"cron\":\"0 2 * * *\"}");
  assert_string_equal(w->destination_json, "{\"type\":\"file\"}");
  assert_string_equal(w->config_json, "{}");
  assert_int_equal(w->enabled, 1);
  assert_int_equal(w->error_email_notifications, 0);
  assert_int_equal(w->max_attempts, 3);
  assert_int_equal(w->next_run_at, 0);
  assert_int_equal(w->created_at, 1000);
  cr_work_rec_free(w);

  assert_int_equal(cr_store_work_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_UNCHANGED);

  /* next_run_at: set alone, kept by an update that gives 0. */
  assert_int_equal(cr_store_work_set_next_run(f->s, "w1", 777), 0);
  cr__clock_set_fake(2000);
  in.config_hash = "h2";
  in.enabled = 0;
  in.error_email_notifications = 5; /* any non-zero is true */
  assert_int_equal(cr_store_work_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_UPDATED);
  assert_int_equal(cr_store_work_get(f->s, "w1", &w), 0);
  assert_int_equal(w->next_run_at, 777);
  assert_int_equal(w->enabled, 0);
  assert_int_equal(w->error_email_notifications, 1);
  assert_int_equal(w->created_at, 1000);
  assert_int_equal(w->updated_at, 2000);
  cr_work_rec_free(w);
  in.config_hash = "h3";
  in.next_run_at = 888;
  assert_int_equal(cr_store_work_upsert(f->s, &in, &changed), 0);
  assert_int_equal(cr_store_work_get(f->s, "w1", &w), 0);
  assert_int_equal(w->next_run_at, 888);
  cr_work_rec_free(w);
  assert_int_equal(cr_store_work_set_next_run(f->s, "w1", 0), 0);
  assert_int_equal(cr_store_work_get(f->s, "w1", &w), 0);
  assert_int_equal(w->next_run_at, 0);
  assert_int_equal(w->updated_at, 2000); /* runtime state, not config */
  cr_work_rec_free(w);

  /* Constraints. */
  struct cr_work_rec bad = work("w2", "missing-auth", "h");
  assert_int_equal(cr_store_work_upsert(f->s, &bad, &changed), CR_EINVAL);
  assert_int_equal(changed, CR_STORE_UNCHANGED);
  assert_true(strlen(cr_store_last_error(f->s)) > 0);
  bad = work("w2", "a1", "h");
  bad.config_json = "{not json";
  assert_int_equal(cr_store_work_upsert(f->s, &bad, NULL), CR_EINVAL);
  bad = work("w2", "a1", "h");
  bad.max_attempts = 0;
  assert_int_equal(cr_store_work_upsert(f->s, &bad, NULL), CR_EINVAL);
  assert_int_equal(cr_store_work_get(f->s, "w2", &w), CR_ENOENT);
  bad = work("w2", NULL, "h"); /* no authorization is fine */
  assert_int_equal(cr_store_work_upsert(f->s, &bad, NULL), 0);

  struct cr_work_rec *list = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_work_list(f->s, &list, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(list[0].id, "w1");
  assert_null(list[1].authorization_id);
  cr_work_rec_free_list(list, n);

  assert_int_equal(cr_store_work_delete(f->s, "w1"), 0);
  assert_int_equal(cr_store_work_get(f->s, "w1", &w), CR_ENOENT);
  assert_int_equal(cr_store_work_delete(f->s, "w1"), CR_ENOENT);
  assert_int_equal(cr_store_work_set_next_run(f->s, "w1", 5), CR_ENOENT);
  assert_int_equal(cr_store_work_set_next_run(f->s, "nope", 5), CR_ENOENT);
  assert_int_equal(cr_store_work_list(f->s, &list, &n), 0);
  assert_int_equal(n, 1);
  cr_work_rec_free_list(list, n);
}

static void test_subscriptions(void **state) {
  struct fixture *f = *state;
  struct cr_sub_rec in = {0};
  in.id = "s2";
  in.workflow = "notify-slack";
  in.config_hash = "h1";
  in.enabled = 1;
  int changed = -1;
  assert_int_equal(cr_store_sub_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_CREATED);
  assert_int_equal(cr_store_sub_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_UNCHANGED);
  in.config_hash = "h2";
  in.enabled = 0;
  in.disabled_reason = "too many failures";
  assert_int_equal(cr_store_sub_upsert(f->s, &in, &changed), 0);
  assert_int_equal(changed, CR_STORE_UPDATED);
  struct cr_sub_rec *g = NULL;
  assert_int_equal(cr_store_sub_get(f->s, "s2", &g), 0);
  assert_string_equal(g->workflow, "notify-slack");
  assert_int_equal(g->enabled, 0);
  assert_string_equal(g->disabled_reason, "too many failures");
  cr_sub_rec_free(g);
  in.id = "s1";
  in.disabled_reason = NULL;
  assert_int_equal(cr_store_sub_upsert(f->s, &in, &changed), 0);
  struct cr_sub_rec *list = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_sub_list(f->s, &list, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(list[0].id, "s1");
  assert_null(list[0].disabled_reason);
  assert_string_equal(list[1].id, "s2");
  cr_sub_rec_free_list(list, n);
  assert_int_equal(cr_store_sub_delete(f->s, "s2"), 0);
  assert_int_equal(cr_store_sub_get(f->s, "s2", &g), CR_ENOENT);
  assert_int_equal(cr_store_sub_delete(f->s, "s2"), CR_ENOENT);
  in.workflow = NULL;
  assert_int_equal(cr_store_sub_upsert(f->s, &in, &changed), CR_EINVAL);
}

/* ---- Events -------------------------------------------------------------- */

static void test_event_ids_and_seq(void **state) {
  struct fixture *f = *state;
  struct {
    const char *type, *id;
    int64_t want_seq;
  } seq[] = {{"authorization", "a", 1}, {"authorization", "b", 1},
             {"authorization", "a", 2}, {"work", "a", 1},
             {"authorization", "a", 3}, {"authorization", "b", 2},
             {"work", "a", 2}};
  int64_t last = 0;
  for (size_t i = 0; i < NELEM(seq); i++) {
    int64_t id = append(f->s, seq[i].type, seq[i].id, "updated", 0);
    assert_true(id > last);
    last = id;
  }
  struct cr_event_filter q = {0};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(f->s, &q, &ev, &n), 0);
  assert_int_equal(n, NELEM(seq));
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(ev[i].subject_type, seq[i].type);
    assert_string_equal(ev[i].subject_id, seq[i].id);
    assert_int_equal(ev[i].seq, seq[i].want_seq);
    assert_string_equal(ev[i].actor, "system");
    assert_string_equal(ev[i].data_json, "{\"k\":1}");
    assert_true(ev[i].at > 0); /* 0 on input means now */
  }
  cr_event_rec_free_list(ev, n);

  /* Pruning everything keeps both counters going. */
  int64_t deleted = 0;
  assert_int_equal(cr_store_event_prune(f->s, INT64_MAX, &deleted), 0);
  assert_int_equal(deleted, (int64_t)NELEM(seq));
  int64_t id = append(f->s, "authorization", "a", "updated", 0);
  assert_true(id > last);
  assert_int_equal(cr_store_event_query(f->s, &q, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ev[0].seq, 4);
  cr_event_rec_free_list(ev, n);

  /* Required fields; optional ones stay NULL. */
  struct cr_event_rec e = {0};
  e.subject_type = "work";
  e.subject_id = "w";
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), CR_EINVAL);
  e.verb = "created";
  e.data_json = "[broken";
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), CR_EINVAL);
  e.data_json = NULL;
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  q.subject_type = "work";
  assert_int_equal(cr_store_event_query(f->s, &q, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_null(ev[0].actor);
  assert_null(ev[0].data_json);
  cr_event_rec_free_list(ev, n);
}

/* Two connections appending to one subject share one counter. */
static void test_event_seq_across_connections(void **state) {
  struct fixture *f = *state;
  cr_store *s2 = NULL;
  char err[256];
  assert_int_equal(cr_store_open(f->where, &s2, err, sizeof err), 0);
  for (int i = 0; i < 20; i++)
    append(i % 2 ? s2 : f->s, "work", "w", "updated", 0);
  struct cr_event_filter q = {0};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s2, &q, &ev, &n), 0);
  assert_int_equal(n, 20);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(ev[i].seq, (int64_t)i + 1);
  cr_event_rec_free_list(ev, n);
  cr_store_close(s2);
}

#define NEV 60
struct ev_ref {
  int64_t id, at;
  const char *type, *sid, *verb;
};

/* The reference filter: what cr_store_event_query should return. */
static int matches(const struct ev_ref *e, const struct cr_event_filter *f) {
  if (f->subject_type && strcmp(e->type, f->subject_type) != 0)
    return 0;
  if (f->subject_id && strcmp(e->sid, f->subject_id) != 0)
    return 0;
  if (f->since_ms > 0 && e->at < f->since_ms)
    return 0;
  if (e->id <= f->after_id)
    return 0;
  if (f->nverbs == 0)
    return 1;
  for (size_t i = 0; i < f->nverbs; i++)
    if (strcmp(e->verb, f->verbs[i]) == 0)
      return 1;
  return 0;
}

static void check_query(cr_store *s, const struct ev_ref *ref,
                        const struct cr_event_filter *f) {
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, f, &ev, &n), 0);
  size_t want = 0;
  size_t limit = f->limit == 0 ? CR_EVENT_QUERY_DEFAULT_LIMIT : f->limit;
  for (size_t i = 0; i < NEV && want < limit; i++) {
    if (!matches(&ref[i], f))
      continue;
    assert_true(want < n);
    assert_int_equal(ev[want].id, ref[i].id);
    assert_string_equal(ev[want].verb, ref[i].verb);
    want++;
  }
  assert_int_equal(n, want);
  cr_event_rec_free_list(ev, n);
}

static void test_event_query_filters(void **state) {
  struct fixture *f = *state;
  static const char *const types[] = {"authorization", "work"};
  static const char *const sids[] = {"x", "y", "z"};
  static const char *const verbs[] = {"created", "updated", "deleted",
                                      "health_changed"};
  struct ev_ref ref[NEV];
  for (int i = 0; i < NEV; i++) {
    ref[i].type = types[i % 2];
    ref[i].sid = sids[i % 3];
    ref[i].verb = verbs[i % 4];
    ref[i].at = 100000 + i * 10;
    ref[i].id = append(f->s, ref[i].type, ref[i].sid, ref[i].verb, ref[i].at);
  }
  const char *v2[] = {"created", "deleted"};
  const char *v1[] = {"health_changed"};
  const char *vnone[] = {"no_such_verb"};
  struct cr_event_filter cases[] = {
      {0},
      {.subject_type = "work"},
      {.subject_id = "y"},
      {.subject_type = "authorization", .subject_id = "z"},
      {.verbs = v2, .nverbs = 2},
      {.verbs = v1, .nverbs = 1, .subject_type = "work"},
      {.verbs = vnone, .nverbs = 1},
      {.since_ms = 100000 + 300},
      {.since_ms = 100000 + 300, .subject_id = "x", .verbs = v2, .nverbs = 2},
      {.after_id = ref[NEV / 2].id},
      {.after_id = ref[10].id, .subject_type = "work", .limit = 5},
      {.limit = 7},
      {.subject_type = "nothing"},
  };
  for (size_t i = 0; i < NELEM(cases); i++)
    check_query(f->s, ref, &cases[i]);
  /* Run them again: the statements now come from the cache. */
  for (size_t i = 0; i < NELEM(cases); i++)
    check_query(f->s, ref, &cases[i]);

  /* Paging with after_id visits every match once, in order. */
  struct cr_event_filter page = {
      .subject_type = "authorization", .verbs = v2, .nverbs = 2, .limit = 4};
  size_t seen = 0, pages = 0;
  int64_t last = 0;
  for (;;) {
    struct cr_event_rec *ev = NULL;
    size_t n = 0;
    page.after_id = last;
    assert_int_equal(cr_store_event_query(f->s, &page, &ev, &n), 0);
    for (size_t i = 0; i < n; i++) {
      assert_true(ev[i].id > last);
      last = ev[i].id;
    }
    seen += n;
    pages++;
    cr_event_rec_free_list(ev, n);
    if (n < page.limit)
      break;
  }
  size_t want = 0;
  page.after_id = 0;
  for (int i = 0; i < NEV; i++)
    want += (size_t)matches(&ref[i], &page);
  assert_int_equal(seen, want);
  assert_true(pages > 1);

  /* Bad filters. */
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  struct cr_event_filter bad = {.nverbs = CR_EVENT_FILTER_MAX_VERBS + 1};
  const char *many[CR_EVENT_FILTER_MAX_VERBS + 1];
  for (size_t i = 0; i < NELEM(many); i++)
    many[i] = "created";
  bad.verbs = many;
  assert_int_equal(cr_store_event_query(f->s, &bad, &ev, &n), CR_EINVAL);
  bad.nverbs = CR_EVENT_FILTER_MAX_VERBS; /* the maximum is fine */
  assert_int_equal(cr_store_event_query(f->s, &bad, &ev, &n), 0);
  cr_event_rec_free_list(ev, n);
  bad.verbs = NULL;
  assert_int_equal(cr_store_event_query(f->s, &bad, &ev, &n), CR_EINVAL);
  /* A NULL filter means everything (default limit). */
  assert_int_equal(cr_store_event_query(f->s, NULL, &ev, &n), 0);
  assert_int_equal(n, NEV);
  cr_event_rec_free_list(ev, n);
}

static void test_event_query_limits(void **state) {
  struct fixture *f = *state;
  size_t total = CR_EVENT_QUERY_MAX_LIMIT + 50;
  assert_int_equal(cr_store_begin(f->s), 0);
  for (size_t i = 0; i < total; i++)
    append(f->s, "work", i % 2 ? "a" : "b", "updated", 1000);
  assert_int_equal(cr_store_commit(f->s), 0);
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  struct cr_event_filter q = {0};
  assert_int_equal(cr_store_event_query(f->s, &q, &ev, &n), 0);
  assert_int_equal(n, CR_EVENT_QUERY_DEFAULT_LIMIT);
  cr_event_rec_free_list(ev, n);
  q.limit = 5 * CR_EVENT_QUERY_MAX_LIMIT;
  assert_int_equal(cr_store_event_query(f->s, &q, &ev, &n), 0);
  assert_int_equal(n, CR_EVENT_QUERY_MAX_LIMIT);
  cr_event_rec_free_list(ev, n);
  struct cr_store_counts c;
  assert_int_equal(cr_store_counts(f->s, &c), 0);
  assert_int_equal(c.events, (int64_t)total);
}

static void test_prune_keeps_undelivered(void **state) {
  struct fixture *f = *state;
  struct cr_sub_rec sub = {
      .id = "sub1", .workflow = "wf", .config_hash = "h", .enabled = 1};
  assert_int_equal(cr_store_sub_upsert(f->s, &sub, NULL), 0);
  int64_t e1 = append(f->s, "work", "w", "created", 100);
  int64_t e2 = append(f->s, "work", "w", "updated", 200);
  int64_t e3 = append(f->s, "work", "w", "updated", 300);
  int64_t e4 = append(f->s, "work", "w", "updated", 400);
  int64_t e5 = append(f->s, "work", "w", "updated", 5000);
  char sql[1024];
  snprintf(sql, sizeof sql,
           "INSERT INTO outbox (subscription_id, event_id, status) VALUES "
           "('sub1', %lld, 'pending'), ('sub1', %lld, 'delivered'), "
           "('sub1', %lld, 'failed'), ('sub1', %lld, 'dead');"
           "INSERT INTO delivery_attempts (subscription_id, event_id, at, "
           "http_status, latency_ms) VALUES ('sub1', %lld, 250, 200, 12);",
           (long long)e1, (long long)e2, (long long)e3, (long long)e4,
           (long long)e2);
  assert_int_equal(cr__store_sqlite_exec(f->s, sql), 0);
  struct cr_store_counts c;
  assert_int_equal(cr_store_counts(f->s, &c), 0);
  assert_int_equal(c.outbox, 4);
  assert_int_equal(c.outbox_pending, 2);
  assert_int_equal(c.delivery_attempts, 1);

  /* The enabled subscription has not considered any event yet (cursor 0):
   * nothing goes, not even delivered/dead outbox rows' events. */
  int64_t deleted = -1;
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 0);
  assert_int_equal(count_events(f->s), 5);
  snprintf(sql, sizeof sql,
           "UPDATE subscriptions SET cursor_event_id = %lld WHERE id = "
           "'sub1'",
           (long long)e5);
  assert_int_equal(cr__store_sqlite_exec(f->s, sql), 0);
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 2); /* e2 (delivered) and e4 (dead) */
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  struct cr_event_filter q = {0};
  assert_int_equal(cr_store_event_query(f->s, &q, &ev, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(ev[0].id, e1);
  assert_int_equal(ev[1].id, e3);
  assert_int_equal(ev[2].id, e5);
  cr_event_rec_free_list(ev, n);
  assert_int_equal(cr_store_counts(f->s, &c), 0);
  assert_int_equal(c.outbox, 2);
  assert_int_equal(c.delivery_attempts, 0);

  /* Once delivered, the event can go. */
  snprintf(sql, sizeof sql,
           "UPDATE outbox SET status = 'delivered' WHERE event_id = %lld",
           (long long)e1);
  assert_int_equal(cr__store_sqlite_exec(f->s, sql), 0);
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 1);
  assert_int_equal(count_events(f->s), 2);
  assert_int_equal(cr_store_event_prune(f->s, 1000, NULL), 0);
  assert_int_equal(count_events(f->s), 2);

  /* Deleting the subscription takes its outbox rows along. */
  assert_int_equal(cr_store_sub_delete(f->s, "sub1"), 0);
  assert_int_equal(cr_store_counts(f->s, &c), 0);
  assert_int_equal(c.outbox, 0);
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 1);
}

/* ---- Transactions -------------------------------------------------------- */

static void test_transactions(void **state) {
  struct fixture *f = *state;
  struct cr_auth_rec *a = NULL;
  struct cr_auth_rec in = auth("a1", "x", "h");
  struct cr_event_rec e = {
      .subject_type = "authorization", .subject_id = "a1", .verb = "created"};

  /* Rollback leaves neither the change nor its event. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &in, NULL), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), 0); /* visible inside */
  cr_auth_rec_free(a);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), CR_ENOENT);
  assert_int_equal(count_events(f->s), 0);

  /* An inner rollback dooms the whole transaction. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &in, NULL), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), CR_ECANCELED);
  assert_int_equal(cr_store_commit(f->s), CR_ECANCELED);
  assert_int_equal(cr_store_auth_get(f->s, "a1", &a), CR_ENOENT);
  assert_int_equal(count_events(f->s), 0);
  assert_int_equal(cr_store_commit(f->s), CR_ESTATE);
  assert_int_equal(cr_store_rollback(f->s), CR_ESTATE);

  /* A failed call inside a transaction leaves the transaction usable. */
  struct cr_work_rec bad = work("w1", "no-such-auth", "h");
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_work_upsert(f->s, &bad, NULL), CR_EINVAL);
  assert_int_equal(cr_store_auth_upsert(f->s, &in, NULL), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0); /* inner: nothing yet */
  cr_store *s2 = NULL;
  char err[256];
  assert_int_equal(cr_store_open(f->where, &s2, err, sizeof err), 0);
  assert_int_equal(cr_store_auth_get(s2, "a1", &a), CR_ENOENT);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(cr_store_auth_get(s2, "a1", &a), 0);
  cr_auth_rec_free(a);
  assert_int_equal(count_events(s2), 1);
  cr_store_close(s2);
  struct cr_work_rec *w = NULL;
  assert_int_equal(cr_store_work_get(f->s, "w1", &w), CR_ENOENT);
}

/* ---- Metrics --------------------------------------------------------------
 */

struct madd {
  const char *auth;
  int64_t at, req, err;
};

/* Start of the period containing ms, with libc's calendar. */
static int64_t period(int64_t ms, int gran) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  tm.tm_min = tm.tm_sec = 0;
  if (gran != CR_GRAN_HOUR)
    tm.tm_hour = 0;
  if (gran == CR_GRAN_WEEK)
    tm.tm_mday -= (tm.tm_wday + 6) % 7; /* back to Monday */
  if (gran == CR_GRAN_MONTH)
    tm.tm_mday = 1;
  return (int64_t)timegm(&tm) * 1000;
}

static void check_metrics(cr_store *s, const struct madd *adds, size_t nadds,
                          const char *auth_id, int gran, int64_t from,
                          int64_t to) {
  struct cr_metric_point want[32];
  size_t nwant = 0;
  for (size_t i = 0; i < nadds; i++) {
    int64_t hour = adds[i].at - adds[i].at % 3600000;
    if ((auth_id && strcmp(auth_id, adds[i].auth) != 0) || hour < from ||
        (to != 0 && hour >= to))
      continue;
    int64_t p = period(adds[i].at, gran);
    size_t j = 0;
    while (j < nwant && want[j].bucket_start != p)
      j++;
    if (j == nwant)
      want[nwant++] = (struct cr_metric_point){p, 0, 0};
    want[j].requests += adds[i].req;
    want[j].errors += adds[i].err;
  }
  struct cr_metric_point *got = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_metrics_query(s, auth_id, gran, from, to, &got, &n),
                   0);
  assert_int_equal(n, nwant);
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      assert_true(got[i].bucket_start > got[i - 1].bucket_start);
    size_t j = 0;
    while (j < nwant && want[j].bucket_start != got[i].bucket_start)
      j++;
    assert_true(j < nwant);
    assert_int_equal(got[i].requests, want[j].requests);
    assert_int_equal(got[i].errors, want[j].errors);
  }
  cr_metric_point_free_list(got, n);
}

static void test_metrics_aggregation(void **state) {
  struct fixture *f = *state;
  put_auth(f->s, "a1");
  put_auth(f->s, "a2");
  /* 2024-01-29 is a Monday; the data crosses the January/February
   * boundary inside one ISO week and ends on the next Monday. */
  const struct madd adds[] = {
      {"a1", utc_ms(2024, 1, 29, 10, 15), 1, 0},
      {"a1", utc_ms(2024, 1, 29, 10, 45), 2, 1}, /* same hour */
      {"a1", utc_ms(2024, 1, 31, 23, 59), 4, 0},
      {"a1", utc_ms(2024, 2, 1, 0, 0), 8, 2},
      {"a1", utc_ms(2024, 2, 4, 12, 0), 16, 0}, /* Sunday */
      {"a1", utc_ms(2024, 2, 5, 0, 30), 32, 4}, /* next Monday */
      {"a2", utc_ms(2024, 1, 31, 5, 0), 100, 50},
      {"a2", utc_ms(2023, 12, 31, 23, 0), 7, 7}, /* year boundary */
  };
  for (size_t i = 0; i < NELEM(adds); i++)
    assert_int_equal(cr_store_metrics_add(f->s, adds[i].auth, adds[i].at,
                                          adds[i].req, adds[i].err),
                     0);
  const char *auths[] = {"a1", "a2", NULL};
  for (size_t a = 0; a < NELEM(auths); a++)
    for (int g = CR_GRAN_HOUR; g <= CR_GRAN_MONTH; g++) {
      check_metrics(f->s, adds, NELEM(adds), auths[a], g, 0, 0);
      check_metrics(f->s, adds, NELEM(adds), auths[a], g,
                    utc_ms(2024, 2, 1, 0, 0), utc_ms(2024, 2, 5, 0, 0));
    }

  /* Spot checks against the calendar, independent of the reference. */
  struct cr_metric_point *p = NULL;
  size_t n = 0;
  assert_int_equal(
      cr_store_metrics_query(f->s, "a1", CR_GRAN_MONTH, 0, 0, &p, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(p[0].bucket_start, utc_ms(2024, 1, 1, 0, 0));
  assert_int_equal(p[0].requests, 1 + 2 + 4);
  assert_int_equal(p[1].bucket_start, utc_ms(2024, 2, 1, 0, 0));
  assert_int_equal(p[1].requests, 8 + 16 + 32);
  cr_metric_point_free_list(p, n);
  assert_int_equal(
      cr_store_metrics_query(f->s, "a1", CR_GRAN_WEEK, 0, 0, &p, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(p[0].bucket_start, utc_ms(2024, 1, 29, 0, 0));
  assert_int_equal(p[0].requests, 1 + 2 + 4 + 8 + 16);
  assert_int_equal(p[1].bucket_start, utc_ms(2024, 2, 5, 0, 0));
  cr_metric_point_free_list(p, n);
  assert_int_equal(
      cr_store_metrics_query(f->s, "a1", CR_GRAN_HOUR, 0, 0, &p, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(p[0].bucket_start, utc_ms(2024, 1, 29, 10, 0));
  assert_int_equal(p[0].requests, 3);
  assert_int_equal(p[0].errors, 1);
  cr_metric_point_free_list(p, n);

  /* Errors. */
  assert_int_equal(cr_store_metrics_add(f->s, "nope", 1000, 1, 0), CR_EINVAL);
  assert_int_equal(cr_store_metrics_add(f->s, "a1", 1000, -1, 0), CR_EINVAL);
  assert_int_equal(cr_store_metrics_query(f->s, "a1", 9, 0, 0, &p, &n),
                   CR_EINVAL);
  assert_null(p);
  assert_int_equal(
      cr_store_metrics_query(f->s, "zz", CR_GRAN_DAY, 0, 0, &p, &n), 0);
  assert_int_equal(n, 0);
  assert_null(p);
}

/* ---- Health ---------------------------------------------------------------
 */

static void test_health(void **state) {
  struct fixture *f = *state;
  put_auth(f->s, "a1");
  put_auth(f->s, "a2");
  struct cr_health_rec h = {0};
  assert_int_equal(cr_store_auth_health_latest(f->s, "a1", &h), CR_ENOENT);
  assert_int_equal(
      cr_store_auth_health_record(f->s, "a1", 100, CR_HEALTH_HEALTHY, "ok"), 0);
  assert_int_equal(
      cr_store_auth_health_record(f->s, "a1", 300, CR_HEALTH_UNHEALTHY, "401"),
      0);
  assert_int_equal(
      cr_store_auth_health_record(f->s, "a1", 200, CR_HEALTH_UNKNOWN, NULL), 0);
  assert_int_equal(
      cr_store_auth_health_record(f->s, "a2", 900, CR_HEALTH_HEALTHY, NULL), 0);
  assert_int_equal(cr_store_auth_health_latest(f->s, "a1", &h), 0);
  assert_int_equal(h.at, 300);
  assert_int_equal(h.status, CR_HEALTH_UNHEALTHY);
  assert_string_equal(h.reason, "401");
  cr_health_rec_clear(&h);
  assert_null(h.reason);

  struct cr_health_rec *hist = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_auth_health_history(f->s, "a1", 0, &hist, &n), 0);
  assert_int_equal(n, 3);
  const int64_t at[] = {300, 200, 100};
  const int st[] = {CR_HEALTH_UNHEALTHY, CR_HEALTH_UNKNOWN, CR_HEALTH_HEALTHY};
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(hist[i].at, at[i]);
    assert_int_equal(hist[i].status, st[i]);
  }
  assert_null(hist[1].reason);
  assert_string_equal(hist[2].reason, "ok");
  cr_health_rec_free_list(hist, n);
  assert_int_equal(cr_store_auth_health_history(f->s, "a1", 2, &hist, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(hist[1].at, 200);
  cr_health_rec_free_list(hist, n);

  assert_int_equal(cr_store_auth_health_record(f->s, "a1", 100, 7, NULL),
                   CR_EINVAL);
  assert_int_equal(
      cr_store_auth_health_record(f->s, "nope", 100, CR_HEALTH_HEALTHY, NULL),
      CR_EINVAL);
  /* A deleted authorization keeps its history. */
  assert_int_equal(cr_store_auth_delete(f->s, "a1"), 0);
  assert_int_equal(cr_store_auth_health_history(f->s, "a1", 0, &hist, &n), 0);
  assert_int_equal(n, 3);
  cr_health_rec_free_list(hist, n);
}

/* ---- Counts and errors -----------------------------------------------------
 */

static void test_counts(void **state) {
  struct fixture *f = *state;
  struct cr_store_counts c;
  assert_int_equal(cr_store_counts(f->s, &c), 0);
  assert_int_equal(c.authorizations + c.works + c.events + c.subscriptions +
                       c.metrics_buckets + c.auth_health,
                   0);
  put_auth(f->s, "a1");
  put_auth(f->s, "a2");
  assert_int_equal(cr_store_auth_delete(f->s, "a2"), 0);
  struct cr_work_rec w = work("w1", "a1", "h");
  assert_int_equal(cr_store_work_upsert(f->s, &w, NULL), 0);
  append(f->s, "work", "w1", "created", 0);
  assert_int_equal(cr_store_metrics_add(f->s, "a1", 0, 3, 1), 0);
  assert_int_equal(
      cr_store_auth_health_record(f->s, "a1", 0, CR_HEALTH_HEALTHY, NULL), 0);
  assert_int_equal(cr__store_sqlite_exec(
                       f->s, "INSERT INTO runners (id, name, providers_json, "
                             "slots) VALUES ('r1', 'local', '[\"stripe\"]', "
                             "4);"
                             "INSERT INTO executions (work_id, state, "
                             "created_at, updated_at) VALUES ('w1', "
                             "'pending', 1, 1);"
                             "INSERT INTO sync_state (work_id, version, "
                             "committed_at, execution_id) VALUES ('w1', 1, "
                             "1, 1)"),
                   0);
  assert_int_equal(cr_store_counts(f->s, &c), 0);
  assert_int_equal(c.authorizations, 1);
  assert_int_equal(c.works, 1);
  assert_int_equal(c.events, 1);
  assert_int_equal(c.metrics_buckets, 1);
  assert_int_equal(c.auth_health, 1);
  assert_int_equal(c.runners, 1);
  assert_int_equal(c.executions, 1);
  assert_int_equal(c.sync_states, 1);
  /* CHECK constraints on the tables that have no operations yet. */
  assert_int_equal(cr__store_sqlite_exec(f->s, "INSERT INTO executions "
                                               "(work_id, state, created_at, "
                                               "updated_at) VALUES ('w1', "
                                               "'Running', 1, 1)"),
                   CR_EINVAL);
  assert_int_equal(cr__store_sqlite_exec(f->s,
                                         "INSERT INTO runners (id) VALUES "
                                         "('r1')"),
                   CR_EEXIST);
  assert_non_null(
      strstr(cr_store_last_error(f->s), g_use_pg ? "unique" : "UNIQUE"));
  assert_int_equal(cr__store_sqlite_exec(f->s, "SELEC nonsense"), CR_ESTORE);
  assert_true(strlen(cr_store_last_error(f->s)) > 0);
  /* A successful call clears the last error. */
  assert_int_equal(cr_store_counts(f->s, &c), 0);
  assert_string_equal(cr_store_last_error(f->s), "");
  assert_int_equal(cr_store_counts(NULL, &c), CR_EINVAL);
  assert_string_equal(cr_store_last_error(NULL), "");
}

/* ---- Allocation failures ---------------------------------------------------
 */

/* One round of open + upsert + append + query + get + list. Returns 0 when
 * all succeeded, else the first error (everything released). */
static int alloc_round(const char *dir) {
  cr_store *s = NULL;
  char err[256];
  int rc = cr_store_open(dir, &s, err, sizeof err);
  if (rc != 0) {
    assert_null(s);
    return rc;
  }
  struct cr_auth_rec in = auth("a1", "name", "h");
  struct cr_event_rec e = {.subject_type = "authorization",
                           .subject_id = "a1",
                           .verb = "created",
                           .actor = "me",
                           .data_json = "{}"};
  struct cr_event_filter q = {0};
  struct cr_event_rec *ev = NULL;
  struct cr_auth_rec *a = NULL, *list = NULL;
  size_t n = 0, nl = 0;
  rc = cr_store_auth_upsert(s, &in, NULL);
  for (int i = 0; rc == 0 && i < 3; i++)
    rc = cr_store_event_append(s, &e, NULL);
  if (rc == 0) {
    rc = cr_store_event_query(s, &q, &ev, &n);
    assert_true(rc == 0 ? n == 3 : ev == NULL && n == 0);
  }
  if (rc == 0) {
    rc = cr_store_auth_get(s, "a1", &a);
    assert_true(rc == 0 ? a != NULL : a == NULL);
  }
  if (rc == 0) {
    rc = cr_store_auth_list(s, &list, &nl);
    assert_true(rc == 0 ? list != NULL : list == NULL && nl == 0);
  }
  cr_event_rec_free_list(ev, n);
  cr_auth_rec_free(a);
  cr_auth_rec_free_list(list, nl);
  cr_store_close(s);
  return rc;
}

static void test_allocation_failures(void **state) {
  struct fixture *f = *state;
  cr_test_alloc_install();
  long n;
  for (n = 0; n < 1000; n++) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/round%ld", f->dir, n);
    cr_test_alloc_fail_after(n);
    int rc = alloc_round(dir);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      break;
    }
    assert_int_equal(rc, CR_ENOMEM);
  }
  assert_true(n > 10); /* the loop did reach into the store */
  assert_true(n < 1000);
}

/* ---- Version 3: sync state, retries, first runs, credentials -------------
 */

#define T0 INT64_C(1700000000000)

/* A live work w (with authorization a) to hang sync state and executions
 * on. */
static void put_work(cr_store *s, const char *auth_id, const char *id) {
  struct cr_auth_rec *a = NULL;
  if (cr_store_auth_get(s, auth_id, &a) != 0)
    put_auth(s, auth_id);
  cr_auth_rec_free(a);
  struct cr_work_rec w = work(id, auth_id, "wh");
  assert_int_equal(cr_store_work_upsert(s, &w, NULL), 0);
}

static int64_t new_exec(cr_store *s, const char *work_id) {
  int64_t id = 0;
  assert_int_equal(cr_store_exec_create(s, work_id, &id), 0);
  assert_true(id > 0);
  return id;
}

/* Claims up to slots "stripe" executions for runner; returns the count and
 * the claims in *out (freed by the caller) when out is given. */
static size_t claim_for(cr_store *s, const char *runner, size_t slots,
                        struct cr_exec_claim **out) {
  const char *provs[] = {"stripe"};
  struct cr_exec_claim *c = NULL;
  size_t n = 99;
  assert_int_equal(
      cr_store_exec_claim(s, runner, provs, 1, slots, 30000, &c, &n), 0);
  assert_true(n <= slots);
  if (out != NULL)
    *out = c;
  else
    cr_exec_claim_free_list(c, n);
  return n;
}

/* Every stored transition of execution id is legal, chains from the
 * previous one, and the last one ends in the current state. Returns how
 * many there are. */
static size_t check_transitions(cr_store *s, int64_t id) {
  struct cr_exec_transition_rec *t = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_transitions(s, id, &t, &n), 0);
  assert_true(n >= 1);
  assert_null(t[0].from_state);
  assert_string_equal(t[0].to_state, "created");
  for (size_t i = 1; i < n; i++) {
    assert_string_equal(t[i].from_state, t[i - 1].to_state);
    assert_true(cr_exec_transition_allowed(t[i].from_state, t[i].to_state));
  }
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(s, id, &r), 0);
  assert_string_equal(r.state, t[n - 1].to_state);
  cr_exec_rec_clear(&r);
  cr_exec_transition_free_list(t, n);
  return n;
}

static void test_sync_state_versions(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  put_work(f->s, "a1", "w2");
  struct cr_sync_state_rec r;
  assert_int_equal(cr_store_sync_state_latest(f->s, "w1", &r), CR_ENOENT);
  int64_t e1 = new_exec(f->s, "w1");
  /* Versions count 1, 2, 3... per work. */
  const char *states[] = {"{\"cursor\":1}", "{\"cursor\":2}", NULL,
                          "{\"cursor\":4}"};
  const int64_t recs[] = {10, 5, 0, 7};
  for (int i = 0; i < 4; i++) {
    cr__clock_set_fake(T0 + i * 1000);
    int64_t v = 0;
    assert_int_equal(cr_store_sync_state_commit(
                         f->s, "w1", states[i], recs[i], i == 2 ? 0 : e1,
                         i == 2 ? "set by operator: reset" : NULL, &v),
                     0);
    assert_int_equal(v, i + 1);
  }
  int64_t v2 = 0;
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w2", "[]", 1, 0, NULL, &v2), 0);
  assert_int_equal(v2, 1);
  assert_int_equal(cr_store_sync_state_latest(f->s, "w1", &r), 0);
  assert_int_equal(r.version, 4);
  assert_string_equal(r.work_id, "w1");
  assert_string_equal(r.state_json, "{\"cursor\":4}");
  assert_int_equal(r.records, 7);
  assert_int_equal(r.committed_at, T0 + 3000);
  assert_int_equal(r.execution_id, e1);
  assert_null(r.note);
  cr_sync_state_rec_clear(&r);
  assert_null(r.work_id);
  assert_int_equal(cr_store_sync_state_get(f->s, "w1", 3, &r), 0);
  assert_null(r.state_json);
  assert_int_equal(r.execution_id, 0);
  assert_string_equal(r.note, "set by operator: reset");
  cr_sync_state_rec_clear(&r);
  assert_int_equal(cr_store_sync_state_get(f->s, "w1", 5, &r), CR_ENOENT);
  assert_int_equal(cr_store_sync_state_get(f->s, "w1", 0, &r), CR_ENOENT);
  assert_int_equal(cr_store_sync_state_get(f->s, "w2", 2, &r), CR_ENOENT);
  /* History: newest first, limited. */
  struct cr_sync_state_rec *h = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_sync_state_history(f->s, "w1", 0, &h, &n), 0);
  assert_int_equal(n, 4);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(h[i].version, 4 - (int64_t)i);
    assert_int_equal(h[i].records, recs[3 - i]);
    assert_int_equal(h[i].committed_at, T0 + (int64_t)(3 - i) * 1000);
  }
  cr_sync_state_rec_free_list(h, n);
  assert_int_equal(cr_store_sync_state_history(f->s, "w1", 2, &h, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(h[1].version, 3);
  cr_sync_state_rec_free_list(h, n);
  assert_int_equal(cr_store_sync_state_history(f->s, "nope", 0, &h, &n), 0);
  assert_int_equal(n, 0);
  assert_null(h);
  /* Records of an execution: the versions it committed only. */
  int64_t total = -1;
  assert_int_equal(cr_store_sync_state_exec_records(f->s, e1, &total), 0);
  assert_int_equal(total, 10 + 5 + 7);
  assert_int_equal(cr_store_sync_state_exec_records(f->s, e1 + 100, &total), 0);
  assert_int_equal(total, 0);
}

static void test_sync_state_validation(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  int64_t v = -1;
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{bad", 1, 0, NULL, &v),
      CR_EINVAL);
  assert_int_equal(v, 0);
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{}", -1, 0, NULL, &v), CR_EINVAL);
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "nope", "{}", 1, 0, NULL, &v),
      CR_EINVAL);
  assert_non_null(strstr(cr_store_last_error(f->s), "nope"));
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{}", 1, 999, NULL, &v),
      CR_EINVAL); /* unknown execution */
  assert_int_equal(cr_store_sync_state_commit(f->s, NULL, "{}", 1, 0, NULL, &v),
                   CR_EINVAL);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM sync_state"), 0);
  /* Inside a transaction: a rollback takes the version back. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_sync_state_commit(f->s, "w1", "{}", 1, 0, NULL, &v),
                   0);
  assert_int_equal(v, 1);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(
      cr_store_sync_state_commit(f->s, "w1", "{\"a\":1}", 1, 0, NULL, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  struct cr_sync_state_rec r;
  assert_int_equal(cr_store_sync_state_latest(f->s, "w1", &r), 0);
  assert_int_equal(r.version, 1);
  assert_string_equal(r.state_json, "{\"a\":1}");
  cr_sync_state_rec_clear(&r);
  /* A deleted work keeps its history and still accepts commits. */
  assert_int_equal(cr_store_work_delete(f->s, "w1"), 0);
  assert_int_equal(cr_store_sync_state_commit(f->s, "w1", "{}", 0, 0, NULL, &v),
                   0);
  assert_int_equal(v, 2);
}

static void test_exec_retry(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T0);
  put_work(f->s, "a1", "w1");
  int64_t id = new_exec(f->s, "w1");
  /* Never claimed: nothing to retry. */
  assert_int_equal(cr_store_exec_retry(f->s, id, 0, 0, NULL, NULL, NULL),
                   CR_ESTATE);
  struct cr_exec_claim *c = NULL;
  assert_int_equal(claim_for(f->s, "r1", 1, &c), 1);
  int64_t epoch = c[0].epoch;
  cr_exec_claim_free_list(c, 1);
  assert_int_equal(cr_store_exec_transition(f->s, id, epoch, "executing",
                                            "started", NULL, NULL),
                   0);
  assert_int_equal(
      cr_store_exec_retry(f->s, id, epoch + 1, 0, NULL, NULL, NULL), CR_ESTALE);
  assert_int_equal(cr_store_exec_retry(f->s, id, epoch, 0, NULL, "bogus", NULL),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_retry(f->s, id, -1, 0, NULL, NULL, NULL),
                   CR_EINVAL);
  assert_int_equal(cr_store_exec_retry(f->s, id + 100, 1, 0, NULL, NULL, NULL),
                   CR_ENOENT);
  assert_int_equal(check_transitions(f->s, id), 3); /* nothing written */
  int64_t later = T0 + 60000;
  cr__clock_set_fake(T0 + 10);
  assert_int_equal(cr_store_exec_retry(f->s, id, epoch, later,
                                       "retry 2 of 3 (transient)", "transient",
                                       "HTTP 503"),
                   0);
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_string_equal(r.state, "created");
  assert_int_equal(r.attempt, 2);
  assert_int_equal(r.lease_epoch, epoch);
  assert_int_equal(r.lease_expires_at, 0);
  assert_null(r.runner_id);
  assert_int_equal(r.not_before, later);
  assert_string_equal(r.error_class, "transient");
  assert_string_equal(r.error, "HTTP 503");
  assert_int_equal(r.updated_at, T0 + 10);
  cr_exec_rec_clear(&r);
  /* Its retry time comes due in (T0 + 59 s, T0 + 60 s], not before. */
  int due = -1;
  assert_int_equal(cr_store_exec_retry_due(f->s, T0, later - 1, &due), 0);
  assert_int_equal(due, 0);
  assert_int_equal(cr_store_exec_retry_due(f->s, later - 1000, later, &due), 0);
  assert_int_equal(due, 1);
  assert_int_equal(cr_store_exec_retry_due(f->s, later, later + 1000, &due), 0);
  assert_int_equal(due, 0);
  int open = 0;
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 1);
  /* The old lease holder is fenced off. */
  assert_int_equal(
      cr_store_exec_transition(f->s, id, epoch, "completed", NULL, NULL, NULL),
      CR_ESTALE);
  /* not_before is respected by claims. */
  cr__clock_set_fake(later - 1);
  assert_int_equal(claim_for(f->s, "r1", 4, NULL), 0);
  cr__clock_set_fake(later);
  assert_int_equal(claim_for(f->s, "r1", 4, &c), 1);
  assert_int_equal(c[0].execution_id, id);
  assert_int_equal(c[0].attempt, 2);
  assert_int_equal(c[0].epoch, epoch + 1);
  cr_exec_claim_free_list(c, 1);
  /* Retry straight from pending, claimable at once. */
  assert_int_equal(
      cr_store_exec_retry(f->s, id, epoch + 1, 0, NULL, NULL, NULL), 0);
  assert_int_equal(cr_store_exec_get(f->s, id, &r), 0);
  assert_int_equal(r.attempt, 3);
  assert_int_equal(r.not_before, 0);
  assert_string_equal(r.error_class, "transient"); /* kept */
  cr_exec_rec_clear(&r);
  assert_int_equal(claim_for(f->s, "r1", 4, &c), 1);
  epoch = c[0].epoch;
  cr_exec_claim_free_list(c, 1);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, epoch, "executing", NULL, NULL, NULL),
      0);
  assert_int_equal(
      cr_store_exec_transition(f->s, id, epoch, "failed", NULL, "config", "x"),
      0);
  /* Final: no retry. */
  assert_int_equal(cr_store_exec_retry(f->s, id, epoch, 0, NULL, NULL, NULL),
                   CR_ESTATE);
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 0);
  /* created, pending, executing, created, pending, created, pending,
   * executing, failed. */
  assert_int_equal(check_transitions(f->s, id), 9);
  char reason[128];
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT reason FROM execution_transitions WHERE execution_id = %lld "
           "AND from_state = 'executing' AND to_state = 'created'",
           (long long)id);
  assert_int_equal(
      cr__store_sqlite_query_text(f->s, sql, reason, sizeof reason), 0);
  assert_string_equal(reason, "retry 2 of 3 (transient)");
}

static void test_exec_release_runner(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T0);
  put_work(f->s, "a1", "w1");
  put_work(f->s, "a1", "w2");
  put_work(f->s, "a1", "w3");
  put_work(f->s, "a1", "w4");
  int64_t e1 = new_exec(f->s, "w1"), e2 = new_exec(f->s, "w2");
  int64_t e3 = new_exec(f->s, "w3");
  assert_int_equal(claim_for(f->s, "r1", 2, NULL), 2); /* e1, e2 */
  assert_int_equal(claim_for(f->s, "r2", 2, NULL), 1); /* e3 */
  int64_t e4 = new_exec(f->s, "w4");                   /* created */
  struct cr_exec_rec r;
  assert_int_equal(cr_store_exec_get(f->s, e2, &r), 0);
  int64_t ep2 = r.lease_epoch;
  cr_exec_rec_clear(&r);
  assert_int_equal(
      cr_store_exec_transition(f->s, e2, ep2, "executing", NULL, NULL, NULL),
      0);
  size_t n = 99;
  assert_int_equal(
      cr_store_exec_release_runner(f->s, "r1", "runner local restarted", &n),
      0);
  assert_int_equal(n, 2);
  const int64_t released[] = {e1, e2};
  for (int i = 0; i < 2; i++) {
    assert_int_equal(cr_store_exec_get(f->s, released[i], &r), 0);
    assert_string_equal(r.state, "created");
    assert_int_equal(r.attempt, 2);
    assert_null(r.runner_id);
    assert_int_equal(r.lease_expires_at, 0);
    cr_exec_rec_clear(&r);
    check_transitions(f->s, released[i]);
  }
  assert_int_equal(qint(f->s, "SELECT count(*) FROM execution_transitions "
                              "WHERE reason = 'runner local restarted'"),
                   2);
  assert_int_equal(cr_store_exec_get(f->s, e3, &r), 0);
  assert_string_equal(r.state, "pending");
  assert_string_equal(r.runner_id, "r2");
  cr_exec_rec_clear(&r);
  assert_int_equal(cr_store_exec_get(f->s, e4, &r), 0);
  assert_int_equal(r.attempt, 1);
  cr_exec_rec_clear(&r);
  /* The released executions are claimable again; nothing left for r1. */
  assert_int_equal(cr_store_exec_release_runner(f->s, "r1", NULL, &n), 0);
  assert_int_equal(n, 0);
  /* NULL reason: a default naming the runner. */
  assert_int_equal(cr_store_exec_release_runner(f->s, "r2", NULL, NULL), 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM execution_transitions "
                              "WHERE reason = 'released by runner r2'"),
                   1);
  assert_int_equal(cr_store_exec_release_runner(f->s, "", NULL, &n), CR_EINVAL);
  assert_int_equal(claim_for(f->s, "r1", 10, NULL), 4);
}

static void test_work_open_and_first_run(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  int open = -1, first = -1;
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 0);
  int64_t id = new_exec(f->s, "w1");
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 1);
  assert_int_equal(cr_store_exec_work_open(f->s, "w2", &open), 0);
  assert_int_equal(open, 0);
  assert_int_equal(cr_store_exec_transition(f->s, id, CR_EXEC_EPOCH_ANY,
                                            "cancelled", NULL, NULL, NULL),
                   0);
  assert_int_equal(cr_store_exec_work_open(f->s, "w1", &open), 0);
  assert_int_equal(open, 0);
  assert_int_equal(cr_store_exec_work_open(f->s, NULL, &open), CR_EINVAL);

  cr__clock_set_fake(T0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM works WHERE id = 'w1' "
                              "AND first_run_at IS NULL"),
                   1);
  assert_int_equal(cr_store_work_mark_started(f->s, "w1", &first), 0);
  assert_int_equal(first, 1);
  cr__clock_set_fake(T0 + 5000);
  assert_int_equal(cr_store_work_mark_started(f->s, "w1", &first), 0);
  assert_int_equal(first, 0);
  assert_int_equal(cr_store_work_mark_started(f->s, "w1", NULL), 0);
  assert_int_equal(qint(f->s, "SELECT first_run_at FROM works WHERE id = "
                              "'w1'"),
                   T0);
  assert_int_equal(cr_store_work_mark_started(f->s, "nope", &first), CR_ENOENT);
  assert_int_equal(first, 0);
  put_work(f->s, "a1", "w2");
  assert_int_equal(cr_store_work_delete(f->s, "w2"), 0);
  assert_int_equal(cr_store_work_mark_started(f->s, "w2", &first), CR_ENOENT);
}

static void test_auth_credentials(void **state) {
  struct fixture *f = *state;
  char *json = (char *)1;
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h1", &json),
                   CR_ENOENT);
  assert_null(json);
  assert_int_equal(
      cr_store_auth_credentials_set(f->s, "a1", "h1", "{\"t\":\"x\"}"),
      CR_EINVAL); /* unknown authorization */
  put_auth(f->s, "a1");
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", "[1]"),
                   CR_EINVAL);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", "{bad"),
                   CR_EINVAL);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", NULL),
                   CR_EINVAL);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "", "{}"),
                   CR_EINVAL);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM auth_credentials"), 0);
  const char *c1 = "{\"refresh_token\":\"r-1\"}";
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h1", c1), 0);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h1", &json), 0);
  assert_string_equal(json, c1);
  cr__free(json);
  /* The configuration was edited since: the edited config wins. */
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h2", &json),
                   CR_ENOENT);
  assert_null(json);
  /* Replaced, under a new hash. */
  const char *c2 = "{\"refresh_token\":\"r-2\"}";
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h2", c2), 0);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h1", &json),
                   CR_ENOENT);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h2", &json), 0);
  assert_string_equal(json, c2);
  cr__free(json);
  assert_int_equal(qint(f->s, g_use_pg
                                  ? "SELECT count(*) FROM auth_credentials "
                                    "WHERE scheme = 'plain' AND key_id IS "
                                    "NULL AND pg_typeof(blob) = 'bytea'::"
                                    "regtype"
                                  : "SELECT count(*) FROM auth_credentials "
                                    "WHERE scheme = 'plain' AND key_id IS "
                                    "NULL AND typeof(blob) = 'blob'"),
                   1);
  /* A scheme this build cannot decode. */
  assert_int_equal(cr__store_sqlite_exec(f->s, "UPDATE auth_credentials SET "
                                               "scheme = 'aes-gcm-v1'"),
                   0);
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h2", &json),
                   CR_ENOTSUP);
  assert_null(json);
}

/* One round of sync state and credentials calls (allocating reads).
 * Returns 0 when all succeeded, else the first error. */
static int v3_alloc_round(cr_store *s) {
  struct cr_sync_state_rec r = {0}, *h = NULL;
  size_t n = 0;
  char *json = NULL;
  int rc = cr_store_sync_state_latest(s, "w1", &r);
  assert_true(rc == 0 ? r.note != NULL : r.work_id == NULL);
  if (rc == 0) {
    rc = cr_store_sync_state_history(s, "w1", 0, &h, &n);
    assert_true(rc == 0 ? n == 3 : h == NULL && n == 0);
  }
  if (rc == 0) {
    rc = cr_store_auth_credentials_get(s, "a1", "h", &json);
    assert_true(rc == 0 ? json != NULL : json == NULL);
  }
  if (rc == 0)
    assert_string_equal(json, "{\"k\":\"v\"}");
  cr_sync_state_rec_clear(&r);
  cr_sync_state_rec_free_list(h, n);
  cr__free(json);
  return rc;
}

static void test_v3_allocation_failures(void **state) {
  struct fixture *f = *state;
  put_work(f->s, "a1", "w1");
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        cr_store_sync_state_commit(f->s, "w1", "{\"c\":1}", 1, 0, "note", NULL),
        0);
  assert_int_equal(cr_store_auth_credentials_set(f->s, "a1", "h",
                                                 "{\"k\":"
                                                 "\"v\"}"),
                   0);
  cr_test_alloc_install();
  long n;
  for (n = 0; n < 200; n++) {
    cr_test_alloc_fail_after(n);
    int rc = v3_alloc_round(f->s);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      break;
    }
    assert_int_equal(rc, CR_ENOMEM);
  }
  assert_true(n > 3);
  assert_true(n < 200);
}

/* ---- Version 4: the webhook outbox ----------------------------------------
 * Filters are the product documents' examples, built through sub_filter. */

#define T4 INT64_C(1800000000000)
#define DAY_MS INT64_C(86400000)

/* The canonical filter JSON of verbs / sources (JSON text or NULL),
 * cr__malloc'd. */
static char *filter_of(const char *const *verbs, size_t n,
                       const char *sources) {
  struct cr_config_subscription c = {0};
  c.event_types = (const char **)verbs;
  c.n_event_types = n;
  json_t *src = sources != NULL ? json_loads(sources, 0, NULL) : NULL;
  c.sources = src;
  cr_sub_filter *f = NULL;
  assert_int_equal(cr_sub_filter_from_config(&c, &f), 0);
  char *j = cr_sub_filter_to_json(f);
  assert_non_null(j);
  cr_sub_filter_free(f);
  json_decref(src);
  return j;
}

/* Creates or updates subscription id with filter (NULL = every event). */
static void put_sub(cr_store *s, const char *id, const char *filter,
                    const char *hash) {
  struct cr_sub_rec r = {0};
  r.id = (char *)id;
  r.workflow = "webhook_system_events";
  r.config_hash = (char *)hash;
  r.enabled = 1;
  r.filter_json = (char *)filter;
  assert_int_equal(cr_store_sub_upsert(s, &r, NULL), 0);
}

/* The three documents' subscriptions: "all" (no filter), "fail" (single
 * type failed), "works" (types created and failed, sources work: [w1]),
 * "anywork" (sources work: [] = every work). */
static void put_doc_subs(cr_store *s) {
  const char *fail[] = {"failed"};
  const char *multi[] = {"created", "failed"};
  char *jf = filter_of(fail, 1, NULL);
  char *jw = filter_of(multi, 2, "{\"work\":[\"w1\"]}");
  char *ja = filter_of(NULL, 0, "{\"work\":[]}");
  put_sub(s, "all", NULL, "h");
  put_sub(s, "fail", jf, "h");
  put_sub(s, "works", jw, "h");
  put_sub(s, "anywork", ja, "h");
  cr__free(jf);
  cr__free(jw);
  cr__free(ja);
}

static int64_t outbox_rows(cr_store *s, const char *sub) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM outbox WHERE subscription_id = '%s'", sub);
  return qint(s, sql);
}

static int64_t sub_cursor(cr_store *s, const char *id) {
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(s, id, &r), 0);
  int64_t c = r->cursor_event_id;
  cr_sub_rec_free(r);
  return c;
}

static void test_outbox_enqueue_filters(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T4);
  put_doc_subs(f->s);
  int64_t e1 = append(f->s, "work", "w1", "created", 0);
  int64_t e2 = append(f->s, "work", "w2", "failed", 0);
  append(f->s, "auth", "a1", "unhealthy", 0);
  int64_t e4 = append(f->s, "work", "w1", "failed", 0);
  size_t n = 99;
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  /* all: 4; fail: e2, e4; works: e1, e4; anywork: e1, e2, e4. */
  assert_int_equal(n, 4 + 2 + 2 + 3);
  assert_int_equal(outbox_rows(f->s, "all"), 4);
  assert_int_equal(outbox_rows(f->s, "fail"), 2);
  assert_int_equal(outbox_rows(f->s, "works"), 2);
  assert_int_equal(outbox_rows(f->s, "anywork"), 3);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM outbox WHERE "
                              "subscription_id = 'works' AND event_id IN "
                              "(SELECT id FROM events WHERE subject_id = "
                              "'w2' OR verb = 'unhealthy')"),
                   0);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM outbox WHERE status = 'pending' AND "
           "attempts = 0 AND next_attempt_at = %lld AND first_attempt_at IS "
           "NULL",
           (long long)T4);
  assert_int_equal(qint(f->s, sql), 11);
  /* Cursors moved to the last event; nothing is enqueued twice. */
  assert_int_equal(sub_cursor(f->s, "fail"), e4);
  assert_int_equal(sub_cursor(f->s, "works"), e4);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 0);
  int64_t e5 = append(f->s, "work", "w1", "created", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  assert_int_equal(outbox_rows(f->s, "works"), 3);
  assert_int_equal(outbox_rows(f->s, "fail"), 2);
  assert_int_equal(sub_cursor(f->s, "fail"), e5);
  /* max_events bounds the scan per subscription. */
  int64_t e6 = append(f->s, "work", "w2", "failed", 0);
  int64_t e7 = append(f->s, "work", "w2", "failed", 0);
  append(f->s, "work", "w2", "failed", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 2, &n), 0);
  assert_int_equal(n, 2 + 2 + 0 + 2); /* all, fail, works, anywork */
  assert_int_equal(sub_cursor(f->s, "works"), e7);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 2, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 2, &n), 0);
  assert_int_equal(n, 0);
  (void)e1;
  (void)e2;
  (void)e6;
  /* A filter that is not a filter is refused. */
  struct cr_sub_rec bad = {.id = "bad",
                           .workflow = "w",
                           .config_hash = "h",
                           .enabled = 1,
                           .filter_json = "{\"verbs\":\"failed\"}"};
  assert_int_equal(cr_store_sub_upsert(f->s, &bad, NULL), CR_EINVAL);
}

static void test_outbox_new_sub_gets_no_past(void **state) {
  struct fixture *f = *state;
  append(f->s, "work", "w1", "failed", 0);
  int64_t e2 = append(f->s, "work", "w1", "failed", 0);
  put_sub(f->s, "late", NULL, "h");
  assert_int_equal(sub_cursor(f->s, "late"), e2);
  size_t n = 9;
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 0);
  int64_t e3 = append(f->s, "work", "w1", "failed", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 1);
  /* An update does not move the cursor back or forward. */
  append(f->s, "work", "w1", "failed", 0);
  put_sub(f->s, "late", NULL, "h2");
  assert_int_equal(sub_cursor(f->s, "late"), e3);
  /* Deleted and re-created: starts at the newest event again. */
  assert_int_equal(cr_store_sub_delete(f->s, "late"), 0);
  put_sub(f->s, "late", NULL, "h2");
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &n), 0);
  assert_int_equal(n, 0);
}

/* Sets up subs "a" and "b" (every event) and 3 events at T4; returns the
 * first id (ids are consecutive). */
static int64_t two_subs_three_events(cr_store *s) {
  cr__clock_set_fake(T4);
  put_sub(s, "b", NULL, "h");
  put_sub(s, "a", NULL, "h");
  int64_t e1 = append(s, "work", "w1", "created", 0);
  assert_int_equal(append(s, "work", "w1", "failed", 0), e1 + 1);
  assert_int_equal(append(s, "auth", "a1", "healthy", 0), e1 + 2);
  assert_int_equal(cr_store_outbox_enqueue(s, 0, NULL), 0);
  return e1;
}

static int64_t failing_since(cr_store *s, const char *id) {
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(s, id, &r), 0);
  int64_t v = r->failing_since;
  cr_sub_rec_free(r);
  return v;
}

/* The event ids of rows, as "sub:offset" from e1, joined by spaces. */
static void due_ids(const struct cr_outbox_rec *d, size_t n, int64_t e1,
                    char *buf, size_t len) {
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s:%d", i ? " " : "",
             d[i].subscription_id, (int)(d[i].event_id - e1));
  }
}

static void test_outbox_due_after(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  put_sub(f->s, "c", NULL, "h"); /* enabled, nothing for it yet */
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  char ids[256];
  /* a after e1, b after e1 + 1: the rest, in subscription then id order. */
  struct cr_outbox_pos pos[] = {{"b", e1 + 1}, {"a", e1}, {"zz", 1}};
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos, 3, 0, &d, &n), 0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:1 a:2 b:2");
  cr_outbox_rec_free_list(d, n);
  /* The limit is shared; a subscription not in pos starts at its first. */
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos + 1, 1, 2, &d, &n),
                   0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:1 a:2");
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos + 1, 1, 4, &d, &n),
                   0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:1 a:2 b:0 b:1");
  cr_outbox_rec_free_list(d, n);
  /* Not due yet, delivered and disabled rows stay out, as in a full read. */
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1 + 1, "delivered", 200, 1, NULL, 0),
      0);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1 + 2, "failed", 503, 1,
                                          "HTTP 503", T4 + 5000),
                   0);
  assert_int_equal(cr_store_sub_disable(f->s, "b", "test"), 0);
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, pos, 3, 0, &d, &n), 0);
  assert_int_equal(n, 0);
  assert_null(d);
  assert_int_equal(
      cr_store_outbox_due_after(f->s, T4 + 5000, pos, 3, 0, &d, &n), 0);
  due_ids(d, n, e1, ids, sizeof ids);
  assert_string_equal(ids, "a:2");
  assert_string_equal(d[0].status, "failed");
  cr_outbox_rec_free_list(d, n);
  /* No positions: the full read. */
  struct cr_outbox_rec *full = NULL;
  size_t nf = 0;
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, NULL, 0, 0, &d, &n), 0);
  assert_int_equal(cr_store_outbox_due(f->s, 0, 0, &full, &nf), 0);
  assert_int_equal(n, nf);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(d[i].event_id, full[i].event_id);
  cr_outbox_rec_free_list(d, n);
  cr_outbox_rec_free_list(full, nf);
  /* Bad arguments. */
  struct cr_outbox_pos bad = {NULL, 0};
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, &bad, 1, 0, &d, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_outbox_due_after(f->s, 0, NULL, 1, 0, &d, &n),
                   CR_EINVAL);
  assert_int_equal(cr_store_outbox_due_after(f->s, -1, pos, 1, 0, &d, &n),
                   CR_EINVAL);
}

static void test_outbox_due_and_record(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_outbox_due(f->s, T4 - 1, 0, &d, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(cr_store_outbox_due(f->s, 0, 0, &d, &n), 0);
  assert_int_equal(n, 6);
  const char *subs[] = {"a", "a", "a", "b", "b", "b"};
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(d[i].subscription_id, subs[i]);
    assert_int_equal(d[i].event_id, e1 + (int64_t)(i % 3));
    assert_int_equal(d[i].event.id, d[i].event_id);
    assert_string_equal(d[i].status, "pending");
    assert_int_equal(d[i].first_attempt_at, 0);
    assert_int_equal(d[i].last_status, 0);
    assert_null(d[i].last_error);
  }
  assert_string_equal(d[1].event.verb, "failed");
  assert_string_equal(d[1].event.subject_id, "w1");
  assert_string_equal(d[1].event.data_json, "{\"k\":1}");
  assert_int_equal(d[2].event.seq, 1);
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(cr_store_outbox_due(f->s, T4, 2, &d, &n), 0);
  assert_int_equal(n, 2);
  cr_outbox_rec_free_list(d, n);
  int64_t at = -1;
  assert_int_equal(cr_store_outbox_next_due(f->s, &at), 0);
  assert_int_equal(at, T4);

  /* A failure: retried later, failing streak starts. */
  cr__clock_set_fake(T4 + 10);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1, "failed", 503, 40,
                                          "HTTP 503", T4 + 5000),
                   0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 10);
  cr__clock_set_fake(T4 + 20);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1, "failed", 0, 3000,
                                          "timed out", T4 + 9000),
                   0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 10); /* streak kept */
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 100, 0, &d, &n), 0);
  assert_int_equal(n, 5); /* a/e1 waits */
  assert_int_equal(d[0].event_id, e1 + 1);
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 9000, 1, &d, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(d[0].event_id, e1);
  assert_string_equal(d[0].status, "failed");
  assert_int_equal(d[0].attempts, 2);
  assert_int_equal(d[0].first_attempt_at, T4 + 10);
  assert_int_equal(d[0].next_attempt_at, T4 + 9000);
  assert_int_equal(d[0].last_status, 0);
  assert_string_equal(d[0].last_error, "timed out");
  cr_outbox_rec_free_list(d, n);
  /* Delivered: final, streak over. */
  cr__clock_set_fake(T4 + 9000);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "delivered", 200, 12, NULL, 0), 0);
  assert_int_equal(failing_since(f->s, "a"), 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts WHERE "
                              "subscription_id = 'a'"),
                   3);
  assert_int_equal(qint(f->s, "SELECT http_status IS NULL FROM "
                              "delivery_attempts WHERE latency_ms = 3000"),
                   1);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT status = 'delivered' AND attempts = 3 AND last_status = "
           "200 AND last_error IS NULL AND next_attempt_at IS NULL AND "
           "first_attempt_at = %lld FROM outbox WHERE subscription_id = 'a' "
           "AND event_id = %lld",
           (long long)(T4 + 10), (long long)e1);
  assert_int_equal(qint(f->s, sql), 1);
  /* Dead: final, starts a streak. */
  assert_int_equal(
      cr_store_outbox_record(f->s, "b", e1, "dead", 500, 1, "HTTP 500", 0), 0);
  assert_int_equal(failing_since(f->s, "b"), T4 + 9000);
  assert_int_equal(cr_store_outbox_due(f->s, INT64_C(0), 0, &d, &n), 0);
  assert_int_equal(n, 4);
  cr_outbox_rec_free_list(d, n);
  /* Errors. */
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1 + 99, "failed", 500, 1, NULL, 0),
      CR_ENOENT);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "gone", 500, 1, NULL, 0),
      CR_EINVAL);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "failed", 500, -1, NULL, 0),
      CR_EINVAL);
  assert_int_equal(cr_store_outbox_due(f->s, -1, 0, &d, &n), CR_EINVAL);
  /* Everything delivered: no timer. */
  assert_int_equal(
      cr__store_sqlite_exec(f->s, "UPDATE outbox SET status = 'delivered'"), 0);
  assert_int_equal(cr_store_outbox_next_due(f->s, &at), 0);
  assert_int_equal(at, 0);
}

/* The engine's batch: in order, one transaction, missing rows skipped, a bad
 * entry writes nothing; the failing streak follows the attempts in order. */
static void test_outbox_record_many(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  cr__clock_set_fake(T4 + 50);
  struct cr_outbox_attempt bad[] = {
      {"a", e1, "delivered", 200, 3, NULL, 0},
      {"a", e1 + 1, "lost", 200, 3, NULL, 0},
  };
  size_t rec = 99;
  assert_int_equal(cr_store_outbox_record_many(f->s, bad, 2, &rec), CR_EINVAL);
  assert_int_equal(rec, 0);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts"), 0);
  struct cr_outbox_attempt a[] = {
      {"a", e1, "delivered", 200, 3, NULL, 0},
      {"a", e1 + 99, "delivered", 200, 3, NULL, 0}, /* no such row */
      {"b", e1, "delivered", 200, 4, NULL, 0},
      {"b", e1 + 1, "failed", 503, 5, "HTTP 503", T4 + 5000},
      {"a", e1 + 1, "failed", 0, 6, "timed out", 0},
      {"a", e1 + 2, "delivered", 200, 7, NULL, 0},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, a, 6, &rec), 0);
  assert_int_equal(rec, 5);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts"), 5);
  assert_int_equal(failing_since(f->s, "a"), 0); /* delivered last */
  assert_int_equal(failing_since(f->s, "b"), T4 + 50);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT status = 'failed' AND next_attempt_at = %lld AND "
           "last_error = 'timed out' AND attempts = 1 FROM outbox WHERE "
           "subscription_id = 'a' AND event_id = %lld",
           (long long)(T4 + 50), (long long)(e1 + 1));
  assert_int_equal(qint(f->s, sql), 1); /* 0 = now */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM outbox WHERE status = 'delivered' AND "
           "event_id IN (%lld, %lld)",
           (long long)e1, (long long)(e1 + 2));
  assert_int_equal(qint(f->s, sql), 3);
  /* One row twice in a batch (PostgreSQL's set-based UPDATE would apply
   * one): both attempts count. */
  struct cr_outbox_attempt twice[] = {
      {"b", e1 + 2, "failed", 500, 1, "HTTP 500", T4 + 6000},
      {"b", e1 + 2, "delivered", 200, 1, NULL, 0},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, twice, 2, &rec), 0);
  assert_int_equal(rec, 2);
  snprintf(
      sql, sizeof sql,
      "SELECT attempts * 10 + CASE WHEN status = 'delivered' THEN 1 ELSE 0 "
      "END FROM outbox WHERE "
      "subscription_id = 'b' AND event_id = %lld",
      (long long)(e1 + 2));
  assert_int_equal(qint(f->s, sql), 21);
  assert_int_equal(qint(f->s, "SELECT count(*) FROM delivery_attempts"), 7);
  assert_int_equal(cr_store_outbox_record_many(f->s, NULL, 0, NULL), 0);
  assert_int_equal(cr_store_outbox_record_many(f->s, NULL, 1, NULL), CR_EINVAL);
}

/* A batch writes a subscription's failing streak only when its status
 * changes from the attempt before: the outcome is that of writing each. */
static void test_outbox_record_many_streaks(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  cr__clock_set_fake(T4 + 50);
  struct cr_outbox_attempt a[] = {
      {"a", e1, "failed", 503, 1, "HTTP 503", T4 + 5000},
      {"a", e1 + 1, "failed", 503, 1, "HTTP 503", T4 + 5000},
      {"a", e1 + 2, "delivered", 200, 1, NULL, 0},
      {"b", e1, "delivered", 200, 1, NULL, 0},
      {"b", e1 + 1, "dead", 400, 1, "HTTP 400", 0},
      {"b", e1 + 2, "dead", 400, 1, "HTTP 400", 0},
  };
  size_t rec = 0;
  assert_int_equal(cr_store_outbox_record_many(f->s, a, 6, &rec), 0);
  assert_int_equal(rec, 6);
  assert_int_equal(failing_since(f->s, "a"), 0);
  assert_int_equal(failing_since(f->s, "b"), T4 + 50);
  /* Interleaved: each subscription's own last status counts. */
  cr__clock_set_fake(T4 + 9000);
  struct cr_outbox_attempt b[] = {
      {"a", e1, "failed", 0, 1, "timed out", T4 + 20000},
      {"b", e1 + 1, "delivered", 200, 1, NULL, 0},
      {"a", e1 + 1, "failed", 0, 1, "timed out", T4 + 20000},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, b, 3, &rec), 0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 9000);
  assert_int_equal(failing_since(f->s, "b"), 0);
  /* The same status for another subscription is written for it too. */
  cr__clock_set_fake(T4 + 12000);
  struct cr_outbox_attempt c[] = {
      {"a", e1, "failed", 0, 1, "timed out", T4 + 30000},
      {"b", e1 + 2, "failed", 0, 1, "timed out", T4 + 30000},
  };
  assert_int_equal(cr_store_outbox_record_many(f->s, c, 2, &rec), 0);
  assert_int_equal(failing_since(f->s, "a"), T4 + 9000);
  assert_int_equal(failing_since(f->s, "b"), T4 + 12000);
}

static void test_outbox_disable_and_reenable(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1, "failed", 410, 5,
                                          "HTTP 410", T4 + 1),
                   0);
  assert_int_equal(
      cr_store_sub_disable(f->s, "a", "410 Gone from http://x/hook"), 0);
  assert_int_equal(cr_store_sub_disable(f->s, "zz", NULL), CR_ENOENT);
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(f->s, "a", &r), 0);
  assert_int_equal(r->enabled, 0);
  assert_string_equal(r->disabled_reason, "410 Gone from http://x/hook");
  cr_sub_rec_free(r);
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 10, 0, &d, &n), 0);
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(d[i].subscription_id, "b");
  cr_outbox_rec_free_list(d, n);
  assert_int_equal(outbox_rows(f->s, "a"), 3); /* rows stay */
  /* Not enqueued into while disabled. */
  append(f->s, "work", "w1", "failed", 0);
  size_t q = 0;
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &q), 0);
  assert_int_equal(q, 1);
  /* The same definition again: still disabled. */
  put_sub(f->s, "a", NULL, "h");
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 10, 0, &d, &n), 0);
  assert_int_equal(n, 4);
  cr_outbox_rec_free_list(d, n);
  /* A changed definition re-enables it and ends the streak. */
  put_sub(f->s, "a", NULL, "h2");
  assert_int_equal(cr_store_sub_get(f->s, "a", &r), 0);
  assert_int_equal(r->enabled, 1);
  assert_null(r->disabled_reason);
  assert_int_equal(r->failing_since, 0);
  cr_sub_rec_free(r);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, &q), 0);
  assert_int_equal(q, 1); /* the event of the disabled period */
  assert_int_equal(cr_store_outbox_due(f->s, T4 + 10, 0, &d, &n), 0);
  assert_int_equal(n, 8);
  cr_outbox_rec_free_list(d, n);
}

static void test_outbox_replay(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T4);
  const char *fail[] = {"failed"};
  char *jf = filter_of(fail, 1, NULL);
  put_sub(f->s, "r", jf, "h");
  cr__free(jf);
  int64_t e1 = append(f->s, "work", "w1", "failed", T4 - 3000);
  int64_t e2 = append(f->s, "work", "w1", "created", T4 - 2000);
  int64_t e3 = append(f->s, "work", "w2", "failed", T4 - 1000);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "r", e1, "delivered", 200, 1, NULL, 0), 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "r", e3, "dead", 500, 1, "HTTP 500", 0), 0);
  /* e3's row was lost (e.g. pruned): replay inserts it again. */
  char sql[256];
  snprintf(sql, sizeof sql, "DELETE FROM outbox WHERE event_id = %lld",
           (long long)e3);
  assert_int_equal(cr__store_sqlite_exec(f->s, sql), 0);
  /* Not considered yet (after the cursor): not replayed. */
  int64_t e4 = append(f->s, "work", "w3", "failed", T4);
  cr__clock_set_fake(T4 + 50);
  size_t n = 0;
  assert_int_equal(cr_store_outbox_replay(f->s, "r", T4 - 5000, &n), 0);
  assert_int_equal(n, 2);
  struct cr_outbox_rec *d = NULL;
  size_t nd = 0;
  assert_int_equal(cr_store_outbox_due(f->s, 0, 0, &d, &nd), 0);
  assert_int_equal(nd, 2);
  assert_int_equal(d[0].event_id, e1); /* same ids */
  assert_int_equal(d[1].event_id, e3);
  for (size_t i = 0; i < nd; i++) {
    assert_string_equal(d[i].status, "pending");
    assert_int_equal(d[i].attempts, 0);
    assert_int_equal(d[i].first_attempt_at, 0);
    assert_int_equal(d[i].next_attempt_at, T4 + 50);
    assert_int_equal(d[i].last_status, 0);
  }
  cr_outbox_rec_free_list(d, nd);
  /* since_ms bounds it. */
  assert_int_equal(cr_store_outbox_replay(f->s, "r", T4 - 1500, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(cr_store_outbox_replay(f->s, "nope", 0, &n), CR_ENOENT);
  assert_int_equal(cr_store_outbox_replay(f->s, "r", -1, &n), CR_EINVAL);
  (void)e2;
  (void)e4;
}

static void test_sub_stats(void **state) {
  struct fixture *f = *state;
  int64_t e1 = two_subs_three_events(f->s);
  cr__clock_set_fake(T4 + 100);
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "failed", 502, 5, "HTTP 502", 0),
      0);
  cr__clock_set_fake(T4 + DAY_MS + 200); /* the first attempt is > 24 h old */
  assert_int_equal(
      cr_store_outbox_record(f->s, "a", e1, "delivered", 204, 5, NULL, 0), 0);
  assert_int_equal(cr_store_outbox_record(f->s, "a", e1 + 1, "dead", 0, 5,
                                          "connection refused", 0),
                   0);
  struct cr_sub_stats st;
  assert_int_equal(cr_store_sub_stats(f->s, "a", &st), 0);
  assert_int_equal(st.backlog, 1);
  assert_int_equal(st.delivered, 1);
  assert_int_equal(st.dead, 1);
  assert_int_equal(st.attempts_24h, 2);
  assert_int_equal(st.ok_24h, 1);
  assert_int_equal(st.last_attempt_at, T4 + DAY_MS + 200);
  assert_int_equal(st.last_status, 0);
  assert_string_equal(st.last_error, "connection refused");
  cr_sub_stats_clear(&st);
  assert_null(st.last_error);
  assert_int_equal(cr_store_sub_stats(f->s, "b", &st), 0);
  assert_int_equal(st.backlog, 3);
  assert_int_equal(st.attempts_24h, 0);
  assert_int_equal(st.last_attempt_at, 0);
  assert_null(st.last_error);
  cr_sub_stats_clear(&st);
  assert_int_equal(cr_store_sub_stats(f->s, "none", &st), CR_ENOENT);
  assert_int_equal(cr_store_sub_stats(f->s, NULL, &st), CR_EINVAL);
}

static void test_prune_keeps_owed_events(void **state) {
  struct fixture *f = *state;
  cr__clock_set_fake(T4);
  put_sub(f->s, "s", NULL, "h");
  int64_t e1 = append(f->s, "work", "w1", "failed", 100);
  append(f->s, "work", "w1", "failed", 200);
  int64_t deleted = -1;
  /* Not enqueued yet: kept. */
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  /* Enqueued, not delivered: kept. */
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "s", e1, "delivered", 200, 1, NULL, 0), 0);
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 1);
  assert_int_equal(count_events(f->s), 1);
  assert_int_equal(outbox_rows(f->s, "s"), 1);
  /* A disabled subscription holds nothing back. */
  append(f->s, "work", "w1", "failed", 300);
  assert_int_equal(cr_store_sub_disable(f->s, "s", "test"), 0);
  assert_int_equal(
      cr__store_sqlite_exec(f->s, "UPDATE outbox SET status = 'dead'"), 0);
  assert_int_equal(cr_store_event_prune(f->s, 1000, &deleted), 0);
  assert_int_equal(deleted, 2);
  assert_int_equal(outbox_rows(f->s, "s"), 0);
}

/* v8: attempts keep their rows, lose the foreign key and its index, and go
 * with their subscription and with age. */
static void test_upgrade_attempts_v8(void **state) {
  struct fixture *f = *state;
  char path[4096], err[256] = "";
  cr_store *s = open_old(f, "v7", 7, path, sizeof path);
  /* In v7's columns (today's statements write columns v7 lacks). */
  assert_int_equal(
      cr__store_sqlite_exec(
          s, "INSERT INTO subscriptions (id, workflow, config_hash, enabled, "
             "created_at, updated_at) VALUES ('a', 'webhook_system_events', "
             "'h', 1, 1, 1), ('b', 'webhook_system_events', 'h', 1, 1, 1);"),
      0);
  int64_t e1 = append(s, "work", "w1", "failed", 100);
  char sql[1024];
  snprintf(sql, sizeof sql,
           "INSERT INTO outbox (subscription_id, event_id, status) VALUES "
           "('a', %lld, 'delivered'), ('b', %lld, 'delivered');"
           "INSERT INTO delivery_attempts (subscription_id, event_id, at, "
           "http_status, latency_ms, error) VALUES ('a', %lld, 150, 503, 7, "
           "'HTTP 503'), ('a', %lld, 5000, 200, 3, NULL), "
           "('b', %lld, 160, 200, 2, NULL);",
           (long long)e1, (long long)e1, (long long)e1, (long long)e1,
           (long long)e1);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
  cr_store_close(s);
  assert_int_equal(cr__store_sqlite_open(path, &s, err, sizeof err), 0);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts WHERE "
                           "subscription_id = 'a' AND error = 'HTTP 503' "
                           "AND latency_ms = 7 AND at = 150"),
                   1);
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE name = "
                           "'delivery_attempts_by_outbox'"),
                   0);
  assert_int_equal(qint(s, "SELECT count(*) FROM pragma_foreign_key_list("
                           "'delivery_attempts')"),
                   0);
  /* Age: the prune's cutoff takes the old attempts, keeps the newer. */
  assert_int_equal(cr_store_event_prune(s, 1000, NULL), 0);
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts"), 1);
  /* The subscription: its attempts go with it. */
  snprintf(sql, sizeof sql,
           "INSERT INTO delivery_attempts (subscription_id, event_id, at) "
           "VALUES ('b', %lld, 6000)",
           (long long)e1);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
  assert_int_equal(cr_store_sub_delete(s, "a"), 0);
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts WHERE "
                           "subscription_id = 'a'"),
                   0);
  assert_int_equal(qint(s, "SELECT count(*) FROM delivery_attempts WHERE "
                           "subscription_id = 'b'"),
                   1);
  cr_store_close(s);
}

static void test_upgrade_from_version_3(void **state) {
  struct fixture *f = *state;
  char path[4096], err[256] = "";
  cr_store *s = open_old(f, "v3", 3, path, sizeof path);
  int64_t e1 = append(s, "work", "w1", "failed", 100);
  int64_t e2 = append(s, "work", "w1", "failed", 200);
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO subscriptions (id, workflow, config_hash, enabled, "
           "created_at, updated_at) VALUES ('old', 'wf', 'h', 1, 1, 1);"
           "INSERT INTO outbox (subscription_id, event_id, status) VALUES "
           "('old', %lld, 'pending');",
           (long long)e1);
  assert_int_equal(cr__store_sqlite_exec(s, sql), 0);
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_outbox_due(s, 0, 0, &d, &n), CR_ESTORE);
  cr_store_close(s);
  assert_int_equal(cr__store_sqlite_open(path, &s, err, sizeof err), 0);
  assert_int_equal(version_of(s), cr__store_sqlite_latest_version());
  /* v5: the claim's "no leased execution of this work" check reads a
   * partial index, not the work's whole history. */
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE type = "
                           "'index' AND name IN ('executions_leased_by_work',"
                           "'executions_created')"),
                   2);
  struct cr_sub_rec *r = NULL;
  assert_int_equal(cr_store_sub_get(s, "old", &r), 0);
  assert_string_equal(r->config_hash, "h");
  assert_null(r->filter_json);
  assert_int_equal(r->cursor_event_id, e2); /* no past deliveries */
  assert_int_equal(r->failing_since, 0);
  cr_sub_rec_free(r);
  assert_int_equal(cr_store_outbox_due(s, 0, 0, &d, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(d[0].event_id, e1);
  assert_int_equal(d[0].first_attempt_at, 0);
  cr_outbox_rec_free_list(d, n);
  int64_t e3 = append(s, "work", "w1", "failed", 300);
  size_t q = 0;
  assert_int_equal(cr_store_outbox_enqueue(s, 0, &q), 0);
  assert_int_equal(q, 1);
  assert_int_equal(sub_cursor(s, "old"), e3);
  assert_int_equal(qint(s, "SELECT count(*) FROM sqlite_master WHERE type = "
                           "'index' AND name = 'outbox_undelivered'"),
                   1);
  cr_store_close(s);
}

/* One round of outbox calls for the allocation failure loop. */
static int outbox_alloc_round(cr_store *s) {
  struct cr_outbox_rec *d = NULL;
  size_t n = 0;
  struct cr_sub_stats st;
  int rc = cr_store_outbox_enqueue(s, 0, NULL);
  if (rc == 0)
    rc = cr_store_outbox_due(s, 0, 0, &d, &n);
  cr_outbox_rec_free_list(d, n);
  if (rc == 0)
    rc = cr_store_outbox_replay(s, "works", 0, NULL);
  if (rc == 0)
    rc = cr_store_sub_stats(s, "fail", &st);
  if (rc == 0)
    cr_sub_stats_clear(&st);
  return rc;
}

static void test_outbox_allocation_failures(void **state) {
  struct fixture *f = *state;
  put_doc_subs(f->s);
  int64_t e1 = append(f->s, "work", "w1", "failed", 0);
  append(f->s, "work", "w2", "created", 0);
  assert_int_equal(cr_store_outbox_enqueue(f->s, 0, NULL), 0);
  assert_int_equal(
      cr_store_outbox_record(f->s, "fail", e1, "failed", 500, 1, "HTTP 500", 0),
      0);
  append(f->s, "work", "w1", "created", 0);
  cr_test_alloc_install();
  long n;
  for (n = 0; n < 1000; n++) {
    cr_test_alloc_fail_after(n);
    int rc = outbox_alloc_round(f->s);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      break;
    }
    assert_int_equal(rc, CR_ENOMEM);
  }
  assert_true(n > 5);
  assert_true(n < 1000);
  assert_int_equal(outbox_rows(f->s, "works"), 2);
}

/* ---- Savepoints ---------------------------------------------------------- */

/* 1 when authorization id is stored. */
static int has_auth(cr_store *s, const char *id) {
  struct cr_auth_rec *a = NULL;
  int rc = cr_store_auth_get(s, id, &a);
  assert_true(rc == 0 || rc == CR_ENOENT);
  cr_auth_rec_free(a);
  return rc == 0;
}

/* A failed savepoint undoes only its own writes; the outer commit keeps the
 * rest, also what later savepoints wrote. */
static void test_savepoint_undoes_only_its_writes(void **state) {
  struct fixture *f = *state;
  struct cr_auth_rec a1 = auth("a1", "x", "h"), a2 = auth("a2", "x", "h"),
                     a3 = auth("a3", "x", "h");
  struct cr_event_rec e = {
      .subject_type = "authorization", .subject_id = "a2", .verb = "created"};
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a1, NULL), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a2, NULL), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_true(has_auth(f->s, "a2")); /* visible inside */
  assert_int_equal(cr_store_savepoint_end(f->s, CR_EIO), CR_EIO);
  assert_false(has_auth(f->s, "a2"));
  assert_true(has_auth(f->s, "a1"));
  /* A failed call inside: its error and message come back. */
  struct cr_work_rec bad = work("w1", "no-such-auth", "h");
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a3, NULL), 0);
  int rc = cr_store_work_upsert(f->s, &bad, NULL);
  assert_int_equal(rc, CR_EINVAL);
  assert_int_equal(cr_store_savepoint_end(f->s, rc), CR_EINVAL);
  assert_string_not_equal(cr_store_last_error(f->s), "");
  assert_false(has_auth(f->s, "a3"));
  /* A kept one. */
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_auth_upsert(f->s, &a3, NULL), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  /* Nothing is visible to another connection before the commit. */
  cr_store *s2 = NULL;
  char err[256];
  assert_int_equal(cr_store_open(f->where, &s2, err, sizeof err), 0);
  assert_false(has_auth(s2, "a1"));
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_true(has_auth(s2, "a1"));
  assert_false(has_auth(s2, "a2"));
  assert_true(has_auth(s2, "a3"));
  assert_int_equal(count_events(s2), 0);
  cr_store_close(s2);
}

/* An inner rollback inside a savepoint dooms the transaction only until the
 * savepoint is undone; the outer transaction then commits. */
static void test_savepoint_restores_doomed(void **state) {
  struct fixture *f = *state;
  struct cr_event_rec e = {
      .subject_type = "authorization", .subject_id = "a1", .verb = "created"};
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), CR_ECANCELED);
  assert_int_equal(cr_store_savepoint_end(f->s, CR_ECANCELED), CR_ECANCELED);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(count_events(f->s), 2);

  /* Ended as kept (rc 0) after a rollback inside: the savepoint's writes
   * are gone anyway, it says so, and the transaction commits the rest. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ECANCELED);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(count_events(f->s), 4);

  /* A doomed transaction stays doomed: no savepoint in it. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), CR_ECANCELED);
  assert_int_equal(cr_store_commit(f->s), CR_ECANCELED);
  assert_int_equal(count_events(f->s), 4);
}

/* Misuse: outside a transaction, twice, unbalanced, ended by the outer
 * transaction's end. */
static void test_savepoint_misuse(void **state) {
  struct fixture *f = *state;
  struct cr_auth_rec a1 = auth("a1", "x", "h");
  struct cr_event_rec e = {
      .subject_type = "authorization", .subject_id = "a1", .verb = "created"};
  assert_int_equal(cr_store_savepoint(NULL), CR_EINVAL);
  assert_int_equal(cr_store_savepoint_end(NULL, 0), CR_EINVAL);
  assert_int_equal(cr_store_savepoint(f->s), CR_ESTATE);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), CR_ESTATE); /* no nesting */
  assert_int_equal(cr_store_auth_upsert(f->s, &a1, NULL), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_true(has_auth(f->s, "a1"));

  /* The outer rollback ends an open savepoint with everything. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(count_events(f->s), 0);

  /* A begin left open inside: refused, and the transaction is doomed. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0); /* usable again */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_append(f->s, &e, NULL), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), CR_ESTATE);
  assert_int_equal(cr_store_commit(f->s), 0); /* inner */
  assert_int_equal(cr_store_commit(f->s), CR_ECANCELED);
  assert_int_equal(count_events(f->s), 0);
}

/* Duties are leases: one holder at a time, renewed by it, taken over only
 * after they expire (or are released), epoch counting holders. */
static void test_cluster_duties(void **state) {
  struct fixture *f = *state;
  int held = -1;
  struct cr_duty_rec prev;
  cr__clock_set_fake(10000);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "a", 5000, &held, &prev), 0);
  assert_int_equal(held, 1);
  assert_null(prev.name);
  cr__clock_set_fake(12000);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "b", 5000, &held, &prev), 0);
  assert_int_equal(held, 0);
  assert_string_equal(prev.holder, "a");
  cr_duty_rec_clear(&prev);
  /* a renews: its lease moves on, since and epoch stay. */
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "a", 5000, &held, NULL), 0);
  assert_int_equal(held, 1);
  cr__clock_set_fake(16999);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "b", 5000, &held, NULL), 0);
  assert_int_equal(held, 0);
  cr__clock_set_fake(17000); /* a's lease (12000 + 5000) is over */
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "b", 5000, &held, &prev), 0);
  assert_int_equal(held, 1);
  assert_string_equal(prev.holder, "a");
  assert_int_equal(prev.since, 10000);
  assert_int_equal(prev.epoch, 1);
  cr_duty_rec_clear(&prev);
  /* Released: a takes it at once. */
  assert_int_equal(cr_store_duty_release(f->s, "scheduler", "a"),
                   0); /* no-op */
  assert_int_equal(cr_store_duty_release(f->s, "scheduler", "b"), 0);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "a", 5000, &held, NULL), 0);
  assert_int_equal(held, 1);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "alerts", "b", 5000, &held, NULL), 0);
  struct cr_duty_rec *d = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_duty_list(f->s, &d, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(d[0].name, "alerts");
  assert_string_equal(d[1].holder, "a");
  assert_int_equal(d[1].since, 17000);
  assert_int_equal(d[1].epoch, 3);
  cr_duty_rec_free_list(d, n);
  assert_int_equal(cr_store_duty_acquire(f->s, "x", "a", 0, &held, NULL),
                   CR_EINVAL);
  /* Instances: heartbeats, and those unseen for a day forgotten. */
  assert_int_equal(cr_store_instance_beat(f->s, "a", "{\"pid\": 1}", 10000), 0);
  cr__clock_set_fake(17000 + INT64_C(86400) * 1000 + 1);
  assert_int_equal(cr_store_instance_beat(f->s, "b", "{}", 17000), 0);
  struct cr_instance_rec *in = NULL;
  assert_int_equal(cr_store_instance_list(f->s, &in, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(in[0].id, "b");
  assert_int_equal(in[0].started_at, 17000);
  cr_instance_rec_free_list(in, n);
  assert_int_equal(cr_store_instance_beat(f->s, "c", "not json", 1),
                   CR_EINVAL); /* a constraint */
  cr__clock_set_fake(0);
}

/* --pg: a SQLite installation copied into PostgreSQL with `connrun store
 * migrate` (the binary), verified; ids and per-subject sequences go on
 * after the copied ones; a second migrate into the now full target is
 * refused and changes nothing; the SQLite store is not a target. */
static void test_migrate_from_sqlite(void **state) {
  struct fixture *f = *state;
  char *dir = cr_test_mkdtemp("migrate"), err[256] = "";
  cr_store *lite = NULL;
  assert_int_equal(cr_store_open(dir, &lite, err, sizeof err), 0);
  put_work(lite, "a1", "w1");
  int64_t x = new_exec(lite, "w1");
  assert_int_equal(
      cr_store_exec_transition(lite, x, 0, "cancelled", "test", NULL, NULL), 0);
  put_sub(lite, "s1", NULL, "h");
  int64_t last = 0;
  for (int i = 0; i < 50; i++)
    last =
        append(lite, i % 2 ? "work" : "auth", i % 3 ? "w1" : "a1", "synced", 0);
  assert_int_equal(cr_store_outbox_enqueue(lite, 0, NULL), 0);
  assert_int_equal(
      cr_store_auth_credentials_set(lite, "a1", "h", "{\"token\":\"t\"}"), 0);
  assert_int_equal(cr_store_metrics_add(lite, "a1", 7200000, 5, 1), 0);
  int64_t ver = 0;
  assert_int_equal(
      cr_store_sync_state_commit(lite, "w1", "{\"c\":3}", 9, x, "n", &ver), 0);
  struct cr_store_counts before;
  assert_int_equal(cr_store_counts(lite, &before), 0);
  cr_store_close(lite);

  /* The fixture's PostgreSQL store is empty: migrate into it. */
  char db[4300];
  snprintf(db, sizeof db, "%s/%s", dir, CR_STORE_DB_NAME);
  char *argv[] = {CR_CONNRUN_BIN, "store",  "migrate", "--from", db,
                  "--to",         f->where, "--json",  NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "\"verified\": true"));
  free(out);
  struct cr_store_counts after;
  assert_int_equal(cr_store_counts(f->s, &after), 0);
  assert_int_equal(after.events, before.events);
  assert_int_equal(after.executions, before.executions);
  assert_int_equal(after.outbox, before.outbox);
  assert_int_equal(after.sync_states, before.sync_states);
  char *cred = NULL;
  assert_int_equal(cr_store_auth_credentials_get(f->s, "a1", "h", &cred), 0);
  assert_string_equal(cred, "{\"token\":\"t\"}");
  cr__free(cred);
  /* Ids and sequences continue. */
  int64_t next = append(f->s, "work", "w1", "synced", 0);
  assert_int_equal(next, last + 1);
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  struct cr_event_filter flt = {.after_id = last, .limit = 10};
  assert_int_equal(cr_store_event_query(f->s, &flt, &ev, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(ev[0].seq, 17 + 1); /* w1's work events: i odd, i%3 */
  cr_event_rec_free_list(ev, n);
  assert_true(new_exec(f->s, "w1") > x);

  /* Again: refused, nothing changed. */
  assert_int_not_equal(cr_test_run(argv, NULL, &out), 0);
  assert_non_null(strstr(out, "not empty"));
  free(out);
  struct cr_store_counts again;
  assert_int_equal(cr_store_counts(f->s, &again), 0);
  assert_int_equal(again.events, after.events + 1);
  /* Only PostgreSQL is a target. */
  cr_store *l2 = NULL, *l3 = NULL;
  assert_int_equal(cr_store_open(dir, &l2, err, sizeof err), 0);
  assert_int_equal(cr_store_open_url("sqlite::memory:", &l3, err, sizeof err),
                   0);
  assert_int_equal(cr_store_copy(l2, l3, NULL, err, sizeof err), CR_EINVAL);
  cr_store_close(l2);
  cr_store_close(l3);
  cr_test_rmtree(dir);
  free(dir);
}

/* --pg: the server restarted under an open store. A read is run again on
 * a new connection; so is a transaction that had sent nothing yet; one
 * that lost its connection fails saying so; the next lone write works;
 * each is counted, never silent. */
static void test_pg_connection_lost(void **state) {
  struct fixture *f = *state;
  int64_t id = 0;
  struct cr_store_conn_counters c0, c1, c2;
  assert_int_equal(cr_store_event_last_id(f->s, &id), 0); /* connected */
  cr_store_conn_counters(&c0);
  cr_pgserver_halt(&g_pg);
  assert_int_equal(cr_pgserver_restart(&g_pg), 0);
  assert_int_equal(cr_store_event_last_id(f->s, &id), 0);
  cr_store_conn_counters(&c1);
  assert_true(c1.reconnects > c0.reconnects);
  assert_true(c1.retries > c0.retries);
  assert_true(c1.lost_statements > c0.lost_statements);

  /* A transaction that has sent nothing yet (its BEGIN waits for its
   * first statement) opens on a new connection. */
  json_t *data = json_object();
  int64_t before = 0;
  assert_int_equal(cr_store_event_last_id(f->s, &before), 0);
  assert_int_equal(cr_store_begin(f->s), 0);
  cr_pgserver_halt(&g_pg);
  assert_int_equal(cr_pgserver_restart(&g_pg), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", data, &id), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_true(id > before);
  cr_store_conn_counters(&c1);

  /* One that has reached the server fails saying so. */
  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_event_last_id(f->s, &before), 0);
  cr_pgserver_halt(&g_pg);
  assert_int_equal(cr_pgserver_restart(&g_pg), 0);
  int rc = cr_event_emit(f->s, "work", "w", "synced", "test", data, &id);
  if (rc == 0)
    rc = cr_store_commit(f->s);
  assert_int_not_equal(rc, 0);
  char why[512];
  snprintf(why, sizeof why, "%s", cr_store_last_error(f->s));
  cr_store_rollback(f->s); /* when the emit failed; harmless otherwise */
  if (strstr(why, "lost") == NULL)
    fail_msg("rc %d: %s", rc, why);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", data, &id), 0);
  json_decref(data);
  cr_store_conn_counters(&c2);
  assert_true(c2.lost_statements > c1.lost_statements);
  assert_true(c2.reconnects > c1.reconnects);
}

/* --pg: a transaction's BEGIN, SAVEPOINT, RELEASE and NOTIFY travel with
 * the next statement. A write inside a caller's transaction and savepoint
 * takes no more round trips than alone (the savepoint and release add
 * none), one
 * that ran nothing takes none, and what was written is committed. */
static void test_pg_round_trips(void **state) {
  struct fixture *f = *state;
  struct cr_store_conn_counters a, b, c, d;
  int64_t id1 = 0, id2 = 0, last = 0;
  assert_int_equal(cr_store_begin(f->s), 0); /* prepares the statements */
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id1), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id1), 0);
  cr_store_conn_counters(&a);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id1), 0);
  cr_store_conn_counters(&b);
  uint64_t alone = b.round_trips - a.round_trips;
  assert_true(alone >= 2); /* at least the statement and its COMMIT */

  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id2), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  cr_store_conn_counters(&c);
  /* the INSERT with the BEGIN, lock and SAVEPOINT before it; the COMMIT
   * with the NOTIFY (alone, the NOTIFY runs after the COMMIT) */
  assert_int_equal(c.round_trips - b.round_trips, 2);
  assert_true(c.round_trips - b.round_trips <= alone);
  assert_true(c.deferred - b.deferred >= 4); /* BEGIN, SAVEPOINT, RELEASE,
                                                NOTIFY */

  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_savepoint(f->s), 0);
  assert_int_equal(cr_store_savepoint_end(f->s, 0), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  cr_store_conn_counters(&d);
  assert_int_equal(d.round_trips, c.round_trips);

  assert_true(id2 > id1);
  assert_int_equal(cr_store_event_last_id(f->s, &last), 0);
  assert_int_equal(last, id2);
}

/* The holder of duty name, or "" (into buf). */
static const char *duty_holder(cr_store *s, const char *name, char *buf,
                               size_t len) {
  struct cr_duty_rec *d = NULL;
  size_t n = 0;
  buf[0] = '\0';
  assert_int_equal(cr_store_duty_list(s, &d, &n), 0);
  for (size_t i = 0; i < n; i++)
    if (strcmp(d[i].name, name) == 0)
      snprintf(buf, len, "%s", d[i].holder);
  cr_duty_rec_free_list(d, n);
  return buf;
}

/* cr_store_begin_rows: its writes commit, an event in it is refused (and
 * only that call fails), inside a cr_store_begin it is a level of that
 * transaction, and once it ends events are written again. */
static void test_begin_rows(void **state) {
  struct fixture *f = *state;
  char who[64];
  int held = 0;
  int64_t id = 0, last = -1;
  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "i1", 5000, &held, NULL), 0);
  assert_true(held);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id), CR_ESTATE);
  assert_non_null(strstr(cr_store_last_error(f->s), "cr_store_begin"));
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_string_equal(duty_holder(f->s, "scheduler", who, sizeof who), "i1");
  assert_int_equal(cr_store_event_last_id(f->s, &last), 0);
  assert_int_equal(last, 0);

  assert_int_equal(cr_store_begin(f->s), 0);
  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id), 0);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_int_equal(cr_store_commit(f->s), 0);

  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(cr_store_rollback(f->s), 0);
  assert_int_equal(
      cr_event_emit(f->s, "work", "w", "synced", "test", NULL, &id), 0);
  assert_int_equal(cr_store_event_last_id(f->s, &last), 0);
  assert_int_equal(last, id);
  assert_true(id > 0);
}

/* PostgreSQL: a cr_store_begin_rows transaction writes and commits while
 * another connection holds the store's write lock (taken by its event);
 * a cr_store_begin one would wait for it. */
static void test_pg_rows_without_write_lock(void **state) {
  struct fixture *f = *state;
  cr_store *other = NULL;
  char err[256], who[64];
  int held = 0;
  int64_t id = 0;
  assert_int_equal(cr_store_open(f->where, &other, err, sizeof err), 0);
  assert_int_equal(cr_store_begin(other), 0);
  assert_int_equal(
      cr_event_emit(other, "work", "w", "synced", "test", NULL, &id), 0);
  assert_int_equal(cr_store_begin_rows(f->s), 0);
  assert_int_equal(
      cr_store_duty_acquire(f->s, "scheduler", "i1", 5000, &held, NULL), 0);
  assert_true(held);
  assert_int_equal(cr_store_commit(f->s), 0);
  assert_string_equal(duty_holder(f->s, "scheduler", who, sizeof who), "i1");
  assert_int_equal(cr_store_commit(other), 0);
  cr_store_close(other);
}

/* Markers of the SQLite-only tests. */
static int setup_lite(void **state) { return setup(state); }
static int setup_pg(void **state) { return setup(state); } /* --pg only */
static int lite_alone(void **state) {
  (void)state;
  return 0;
}

int main(int argc, char **argv) {
  g_use_pg = argc > 1 && strcmp(argv[1], "--pg") == 0;
  struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_fresh_database_is_latest, lite_alone,
                                      NULL),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define S(name) cmocka_unit_test_setup_teardown(name, setup_lite, teardown)
#define P(name) cmocka_unit_test_setup_teardown(name, setup_pg, teardown)
      S(test_reopen_applies_nothing_and_keeps_data),
      S(test_upgrade_from_version_1),
      S(test_newer_schema_is_refused_untouched),
      S(test_foreign_files_are_refused),
      S(test_wal_and_pragmas),
      S(test_busy_wait),
      T(test_open_url),
      T(test_auth_upsert_changed_and_delete),
      T(test_work_upsert_get_delete),
      T(test_subscriptions),
      T(test_event_ids_and_seq),
      T(test_event_seq_across_connections),
      T(test_event_query_filters),
      T(test_event_query_limits),
      T(test_prune_keeps_undelivered),
      T(test_transactions),
      T(test_metrics_aggregation),
      T(test_health),
      T(test_counts),
      S(test_allocation_failures),
      S(test_upgrade_from_version_2),
      T(test_sync_state_versions),
      T(test_sync_state_validation),
      T(test_exec_retry),
      T(test_exec_release_runner),
      T(test_work_open_and_first_run),
      T(test_auth_credentials),
      S(test_v3_allocation_failures),
      T(test_outbox_enqueue_filters),
      T(test_outbox_new_sub_gets_no_past),
      T(test_outbox_due_and_record),
      T(test_outbox_due_after),
      S(test_upgrade_attempts_v8),
      T(test_outbox_record_many),
      T(test_outbox_record_many_streaks),
      T(test_outbox_disable_and_reenable),
      T(test_outbox_replay),
      T(test_sub_stats),
      T(test_prune_keeps_owed_events),
      S(test_upgrade_from_version_3),
      S(test_outbox_allocation_failures),
      T(test_savepoint_undoes_only_its_writes),
      T(test_savepoint_restores_doomed),
      T(test_savepoint_misuse),
      T(test_cluster_duties),
      T(test_begin_rows),
      P(test_migrate_from_sqlite),
      P(test_pg_connection_lost),
      P(test_pg_round_trips),
      P(test_pg_rows_without_write_lock),
#undef T
#undef S
#undef P
  };
  size_t n = sizeof tests / sizeof tests[0];
  if (g_use_pg && cr_pgserver_start(&g_pg, 1) != 0) {
    fprintf(stderr, "PostgreSQL: %s\n", g_pg.error);
    return 1;
  }
  size_t k = 0;
  if (!g_use_pg) {
    for (size_t i = 0; i < n; i++)
      if (tests[i].setup_func != setup_pg)
        tests[k++] = tests[i];
    return _cmocka_run_group_tests("test_store", tests, k, NULL, NULL);
  }
  for (size_t i = 0; i < n; i++)
    if (tests[i].setup_func != setup_lite && tests[i].setup_func != lite_alone)
      tests[k++] = tests[i];
  int rc = _cmocka_run_group_tests("test_store_pg", tests, k, NULL, NULL);
  cr_pgserver_stop(&g_pg);
  return rc;
}
