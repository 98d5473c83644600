/* exec_fixture.h: what the execution runner's tests share (test_exec.c,
 * test_exec_group.c): a daemon on a temporary directory with the "behave"
 * test plugin, a worker pool, running a work once, and reading back what the
 * store and the destination hold (records, checkpoints, events,
 * transitions). Header-only: static inline helpers. */
#ifndef CR_TEST_EXEC_FIXTURE_H
#define CR_TEST_EXEC_FIXTURE_H

#include "testutil.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config/diag.h"
#include "daemon/daemon.h"
#include "exec/exec_group.h"
#include "exec/exec_run.h"
#include "exec/execution.h"
#include "exec/scheduler.h"
#include "plugin/worker_pool.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#define SECRET "s3cr3t-token-XYZ"

struct fx {
  char *dir;
  cr_daemon *d;
  cr_worker_pool *pool;
  struct cr_exec_env env;
  char *logs; /* everything the runner logged (malloc) */
  size_t logs_len;
};

static inline void collect_log(void *ud, int level, const char *line) {
  (void)level;
  struct fx *f = ud;
  size_t n = strlen(line);
  char *p = realloc(f->logs, f->logs_len + n + 2);
  assert_non_null(p);
  memcpy(p + f->logs_len, line, n);
  p[f->logs_len + n] = '\n';
  p[f->logs_len + n + 1] = '\0';
  f->logs = p;
  f->logs_len += n + 1;
}

/* One work of provider behave into buf: id, isolation, max_attempts, the
 * plugin config (flow mapping body) and extra YAML lines (indented 4). */
static inline void work_yaml(char *buf, size_t len, const char *dir,
                             const char *id, const char *isolation,
                             int max_attempts, const char *config,
                             const char *extra) {
  snprintf(buf, len,
           "  - id: %s\n"
           "    provider: behave\n"
           "    authorization: key\n"
           "    isolation: %s\n"
           "    max_attempts: %d\n"
           "    destination: { type: jsonl, path: \"%s/out/%s\" }\n"
           "    config: { %s }\n"
           "%s",
           id, isolation, max_attempts, dir, id, config, extra ? extra : "");
}

/* Creates the fixture's directory. */
static inline void fx_init(struct fx *f, const char *tag) {
  memset(f, 0, sizeof *f);
  f->dir = cr_test_mkdtemp(tag);
}

/* Writes the config with works (YAML list items) in f->dir and opens the
 * daemon (config, plugins, store, applied) and a worker pool. */
static inline void fx_start(struct fx *f, const char *works) {
  char *cfg = malloc(32768);
  assert_non_null(cfg);
  snprintf(cfg, 32768,
           "host:\n"
           "  data_dir: \"%s/data\"\n"
           "  plugin_dirs: [\"%s\"]\n"
           "authorizations:\n"
           "  - id: key\n"
           "    provider: behave\n"
           "    method: api_key\n"
           "    credentials: { api_key: \"" SECRET "\" }\n"
           "  - id: sink\n"
           "    provider: collect\n"
           "    method: none\n"
           "works:\n%s",
           f->dir, CR_TEST_PLUGIN_DIR, works);
  cr_test_exec_env(f->dir, cfg, &f->d, &f->pool, &f->env);
  free(cfg);
  f->env.log = collect_log;
  f->env.log_ud = f;
  f->env.log_min_level = CR_LOG_DEBUG;
}

/* One work "w" with the given settings. */
static inline void fx_open(struct fx *f, const char *tag, const char *isolation,
                           int max_attempts, const char *config,
                           const char *extra) {
  fx_init(f, tag);
  char works[4096];
  work_yaml(works, sizeof works, f->dir, "w", isolation, max_attempts, config,
            extra);
  fx_start(f, works);
}

static cr_store *st(struct fx *f) { return f->env.store; }

static inline void fx_close(struct fx *f) {
  if (f->logs != NULL)
    assert_null(strstr(f->logs, SECRET));
  cr_worker_pool_free(f->pool);
  cr_daemon_free(f->d);
  cr_test_rmtree(f->dir);
  free(f->dir);
  free(f->logs);
}

/* Creates an execution of work, claims it and runs it once. */
static inline int64_t run_once(struct fx *f, const char *work,
                               struct cr_exec_outcome *out) {
  int64_t id = 0;
  assert_int_equal(cr_store_exec_create(st(f), work, &id), 0);
  struct cr_exec_claim c;
  memset(&c, 0, sizeof c);
  assert_int_equal(cr_store_exec_claim_one(st(f), id, "test", 60000, &c), 0);
  assert_int_equal(cr_exec_run(&f->env, &c, out), 0);
  cr__free(c.work_id);
  return id;
}

/* The JSON lines of the work's items stream must carry ids first..first+n-1
 * in order; returns the line count. */
static inline long check_items(struct fx *f, const char *work, long first) {
  char path[4096];
  snprintf(path, sizeof path, "%s/out/%s/items.jsonl", f->dir, work);
  char *txt = cr_test_read_file(path);
  if (txt == NULL)
    return 0;
  long n = 0;
  for (char *line = txt; *line != '\0';) {
    char *nl = strchr(line, '\n');
    assert_non_null(nl); /* every line is complete */
    *nl = '\0';
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), first + n);
    json_decref(j);
    n++;
    line = nl + 1;
  }
  free(txt);
  return n;
}

/* 1 when a line of the work's items stream has id. */
static inline int has_id(struct fx *f, const char *work, long long id) {
  char path[4096], pat[64];
  snprintf(path, sizeof path, "%s/out/%s/items.jsonl", f->dir, work);
  snprintf(pat, sizeof pat, "{\"id\":%lld,", id);
  char *txt = cr_test_read_file(path);
  int found = txt != NULL && strstr(txt, pat) != NULL;
  free(txt);
  return found;
}

/* The latest stored state's "next", or -1 when none. */
static inline long long state_next(struct fx *f, const char *work) {
  struct cr_sync_state_rec r;
  memset(&r, 0, sizeof r);
  int rc = cr_store_sync_state_latest(st(f), work, &r);
  if (rc == CR_ENOENT)
    return -1;
  assert_int_equal(rc, 0);
  json_t *j = json_loads(r.state_json, 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_object_size(j), 1);
  long long v = json_integer_value(json_object_get(j, "next"));
  json_decref(j);
  cr_sync_state_rec_clear(&r);
  return v;
}

/* Run-related events of work after event after_id, their verbs joined by
 * spaces into buf. Asserts the secret is in none of them. */
static inline void work_verbs(struct fx *f, const char *work, int64_t after_id,
                              char *buf, size_t len) {
  static const char *const verbs[] = {"started",      "syncing",   "synced",
                                      "synccomplete", "completed", "failed"};
  struct cr_event_filter flt = {.subject_type = "work",
                                .subject_id = work,
                                .verbs = verbs,
                                .nverbs = 6,
                                .after_id = after_id,
                                .limit = 10000};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(st(f), &flt, &ev, &n), 0);
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s", i ? " " : "", ev[i].verb);
    if (ev[i].data_json != NULL)
      assert_null(strstr(ev[i].data_json, SECRET));
  }
  cr_event_rec_free_list(ev, n);
}

static inline int64_t last_event_id(struct fx *f) {
  struct cr_event_filter flt = {.limit = 100000};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(st(f), &flt, &ev, &n), 0);
  int64_t id = n ? ev[n - 1].id : 0;
  cr_event_rec_free_list(ev, n);
  return id;
}

/* No event, execution error or transition reason holds the secret. */
static inline void assert_secret_never_stored(struct fx *f) {
  struct cr_event_filter flt = {.limit = 100000};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(st(f), &flt, &ev, &n), 0);
  for (size_t i = 0; i < n; i++)
    if (ev[i].data_json != NULL)
      assert_null(strstr(ev[i].data_json, SECRET));
  cr_event_rec_free_list(ev, n);
  struct cr_exec_rec *ex = NULL;
  assert_int_equal(cr_store_exec_list(st(f), NULL, 0, &ex, &n), 0);
  for (size_t i = 0; i < n; i++) {
    if (ex[i].error != NULL)
      assert_null(strstr(ex[i].error, SECRET));
    struct cr_exec_transition_rec *t = NULL;
    size_t nt = 0;
    assert_int_equal(cr_store_exec_transitions(st(f), ex[i].id, &t, &nt), 0);
    for (size_t k = 0; k < nt; k++)
      if (t[k].reason != NULL)
        assert_null(strstr(t[k].reason, SECRET));
    cr_exec_transition_free_list(t, nt);
  }
  cr_exec_rec_free_list(ex, n);
}

/* The transitions of execution id as "from>to" joined by spaces ("-" for
 * the creation); asserts each one is legal. */
static inline void transitions(struct fx *f, int64_t id, char *buf,
                               size_t len) {
  struct cr_exec_transition_rec *t = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_exec_transitions(st(f), id, &t, &n), 0);
  buf[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (t[i].from_state != NULL)
      assert_true(cr_exec_transition_allowed(t[i].from_state, t[i].to_state));
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%s>%s", i ? " " : "",
             t[i].from_state ? t[i].from_state : "-", t[i].to_state);
  }
  cr_exec_transition_free_list(t, n);
}

static inline void get_exec(struct fx *f, int64_t id, struct cr_exec_rec *r) {
  memset(r, 0, sizeof *r);
  assert_int_equal(cr_store_exec_get(st(f), id, r), 0);
}

/* Sync state history of work: versions, their records summed. */
static inline void history(struct fx *f, const char *work, size_t *n,
                           int64_t *records) {
  struct cr_sync_state_rec *h = NULL;
  assert_int_equal(cr_store_sync_state_history(st(f), work, 1000, &h, n), 0);
  *records = 0;
  for (size_t i = 0; i < *n; i++) {
    *records += h[i].records;
    /* newest first, versions 1..n */
    assert_int_equal(h[i].version, (int64_t)(*n - i));
  }
  cr_sync_state_rec_free_list(h, *n);
}

#endif
