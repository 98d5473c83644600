/* test_store.c: the store interface on SQLite and (--pg) on PostgreSQL,
 * on real files and a real server: opening and migrations (fresh, re-open,
 * upgrades from versions 1 and 2, refusal of a newer schema), WAL and
 * pragmas, upsert/get/list/delete semantics, events (ids, per-subject seq,
 * filters, paging, limits, pruning against the outbox), transactions
 * (rollback, nesting, failures inside), metrics aggregation, health
 * history, subscriptions, counts, URLs, errors and allocation failures.
 * The fixture is store_fixture.h; schema version 3 (sync state,
 * executions) is test_store_exec.c, the outbox and later
 * test_store_outbox.c. */
#include "store_fixture.h"

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

/* alloc_round in a new directory under base each time. */
struct fresh_rounds {
  const char *base;
  long count;
};

static int fresh_alloc_round(void *arg) {
  struct fresh_rounds *r = arg;
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/round%ld", r->base, r->count++);
  return alloc_round(dir);
}

static void test_allocation_failures(void **state) {
  struct fixture *f = *state;
  struct fresh_rounds r = {f->dir, 0};
  long n = cr_test_alloc_rounds(fresh_alloc_round, &r, 1000);
  assert_true(n > 10); /* the loop did reach into the store */
  assert_true(n < 1000);
}

int main(int argc, char **argv) {
  struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define S(name) cmocka_unit_test_setup_teardown(name, setup_lite, teardown)
#define P(name) cmocka_unit_test_setup_teardown(name, setup_pg, teardown)
      cmocka_unit_test_setup_teardown(test_fresh_database_is_latest, lite_alone,
                                      NULL),
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
#undef T
#undef S
#undef P
  };
  return run_store_group(argc, argv, "test_store", "test_store_pg", tests,
                         sizeof tests / sizeof tests[0]);
}
