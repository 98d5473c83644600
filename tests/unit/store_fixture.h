/* store_fixture.h: what test_store.c and test_store_outbox.c share (each
 * includes it once and is an executable of its own): the fixture (a store
 * in a temporary directory, on SQLite or, with --pg, on a private
 * PostgreSQL server), the helpers that write authorizations, works, events
 * and executions, and run_store_group, which runs a test list on either
 * backend. */
#ifndef CR_TEST_STORE_FIXTURE_H
#define CR_TEST_STORE_FIXTURE_H

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

static inline int setup(void **state) {
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

static inline int teardown(void **state) {
  struct fixture *f = *state;
  cr_store_close(f->s);
  cr__clock_set_fake(0);
  cr_test_rmtree(f->dir);
  free(f->dir);
  free(f);
  return 0;
}

static inline int64_t qint(cr_store *s, const char *sql) {
  int64_t v = -1;
  assert_int_equal(cr__store_sqlite_query_int(s, sql, &v), 0);
  return v;
}

static inline int version_of(cr_store *s) {
  int v = -1;
  assert_int_equal(cr_store_schema_version(s, &v), 0);
  return v;
}

static inline struct cr_auth_rec auth(const char *id, const char *name,
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

static inline void put_auth(cr_store *s, const char *id) {
  struct cr_auth_rec a = auth(id, id, "h");
  assert_int_equal(cr_store_auth_upsert(s, &a, NULL), 0);
}

static inline struct cr_work_rec work(const char *id, const char *auth_id,
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

static inline int64_t append(cr_store *s, const char *type, const char *id,
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

static inline size_t count_events(cr_store *s) {
  struct cr_event_filter f = {0};
  f.limit = CR_EVENT_QUERY_MAX_LIMIT;
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  cr_event_rec_free_list(ev, n);
  return n;
}

/* A store in f's directory (name.db, its path in path) created at schema
 * version, for upgrade tests. */
static inline cr_store *open_old(struct fixture *f, const char *name,
                                 int version, char *path, size_t len) {
  snprintf(path, len, "%s/%s.db", f->dir, name);
  cr_store *s = NULL;
  char err[256] = "";
  assert_int_equal(
      cr__store_sqlite_open_at_version(path, version, &s, err, sizeof err), 0);
  return s;
}

/* A live work w (with authorization a) to hang sync state and executions
 * on. */
static inline void put_work(cr_store *s, const char *auth_id, const char *id) {
  struct cr_auth_rec *a = NULL;
  if (cr_store_auth_get(s, auth_id, &a) != 0)
    put_auth(s, auth_id);
  cr_auth_rec_free(a);
  struct cr_work_rec w = work(id, auth_id, "wh");
  assert_int_equal(cr_store_work_upsert(s, &w, NULL), 0);
}

static inline int64_t new_exec(cr_store *s, const char *work_id) {
  int64_t id = 0;
  assert_int_equal(cr_store_exec_create(s, work_id, &id), 0);
  assert_true(id > 0);
  return id;
}

static inline int setup_lite(void **state) { return setup(state); }
static inline int setup_pg(void **state) {
  return setup(state);
} /* --pg only */
static inline int lite_alone(void **state) {
  (void)state;
  return 0;
}

/* Runs tests as the group "name" on SQLite, or as "name_pg" on the private
 * PostgreSQL server with --pg (started here): on SQLite without the
 * PostgreSQL-only tests (setup_pg), on PostgreSQL without the SQLite-only
 * ones (setup_lite, lite_alone). */
static inline int run_store_group(int argc, char **argv, const char *name,
                                  const char *name_pg, struct CMUnitTest *tests,
                                  size_t n) {
  g_use_pg = argc > 1 && strcmp(argv[1], "--pg") == 0;
  if (g_use_pg && cr_pgserver_start(&g_pg, 1) != 0) {
    fprintf(stderr, "PostgreSQL: %s\n", g_pg.error);
    return 1;
  }
  size_t k = 0;
  if (!g_use_pg) {
    for (size_t i = 0; i < n; i++)
      if (tests[i].setup_func != setup_pg)
        tests[k++] = tests[i];
    return _cmocka_run_group_tests(name, tests, k, NULL, NULL);
  }
  for (size_t i = 0; i < n; i++)
    if (tests[i].setup_func != setup_lite && tests[i].setup_func != lite_alone)
      tests[k++] = tests[i];
  int rc = _cmocka_run_group_tests(name_pg, tests, k, NULL, NULL);
  cr_pgserver_stop(&g_pg);
  return rc;
}

#endif
