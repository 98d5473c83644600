/* store_sqlite.c: the SQLite store backend: the schema and its migrations,
 * opening (WAL, synchronous=NORMAL, foreign keys, busy timeout), nested
 * transactions, cached prepared statements, the shared statement helpers
 * and the store operations other than executions, sync state and the
 * outbox. With store_sqlite_exec.c and store_sqlite_outbox.c (shared
 * internals: store_sqlite_int.h), the only files that know SQL or SQLite.
 *
 * Schema versions live in the table schema_migrations (one row per applied
 * migration with the time it was applied); the version is its largest
 * value. Each migration runs in its own BEGIN IMMEDIATE transaction and
 * re-reads the version inside it, so two processes opening one database at
 * once apply each migration exactly once. Migrations are append-only: never
 * edit a released one, add a new version.
 *
 * Statements are prepared on first use and cached for the life of the store
 * (event queries: a small cache keyed by the filter's shape). Every statement
 * is reset and its bindings cleared before an operation returns. The ops table
 * is at the end. */
#include "store/store_sqlite.h"

#include "events/sub_filter.h"
#include "exec/execution.h"
#include "store/store_int.h"
#include "store/store_sqlite_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- Schema ---------------------------------------------------------------
 * Migrations, in order: migrations[i] takes the schema from version i to
 * i + 1. */

// clang-format off
#define EXEC_STATES \
  "('created','pending','executing','completed','failed','cancelled')"

/* Version 1: core tables. */
static const char MIGRATION_1[] =
  "CREATE TABLE schema_migrations ("
  "  version INTEGER PRIMARY KEY,"
  "  applied_at INTEGER NOT NULL);"

  "CREATE TABLE authorizations ("
  "  id TEXT PRIMARY KEY NOT NULL,"
  "  name TEXT,"
  "  description TEXT,"
  "  provider TEXT NOT NULL,"
  "  method TEXT,"
  "  owner TEXT,"
  "  config_hash TEXT NOT NULL,"
  "  created_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL,"
  "  deleted_at INTEGER);"

  "CREATE TABLE auth_health ("
  "  id INTEGER PRIMARY KEY,"
  "  auth_id TEXT NOT NULL REFERENCES authorizations(id) ON DELETE CASCADE,"
  "  checked_at INTEGER NOT NULL,"
  "  status TEXT NOT NULL"
  "    CHECK (status IN ('healthy','unhealthy','unknown')),"
  "  reason TEXT);"

  "CREATE TABLE works ("
  "  id TEXT PRIMARY KEY NOT NULL,"
  "  name TEXT,"
  "  provider TEXT NOT NULL,"
  "  authorization_id TEXT REFERENCES authorizations(id),"
  "  schedule_json TEXT"
  "    CHECK (schedule_json IS NULL OR json_valid(schedule_json)),"
  "  destination_json TEXT"
  "    CHECK (destination_json IS NULL OR json_valid(destination_json)),"
  "  config_json TEXT"
  "    CHECK (config_json IS NULL OR json_valid(config_json)),"
  "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),"
  "  error_email_notifications INTEGER NOT NULL DEFAULT 0"
  "    CHECK (error_email_notifications IN (0,1)),"
  "  max_attempts INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),"
  "  config_hash TEXT NOT NULL,"
  "  next_run_at INTEGER,"
  "  created_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL,"
  "  deleted_at INTEGER);"

  "CREATE TABLE executions ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  work_id TEXT NOT NULL REFERENCES works(id),"
  "  state TEXT NOT NULL CHECK (state IN " EXEC_STATES "),"
  "  attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),"
  "  runner_id TEXT,"
  "  lease_epoch INTEGER NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0),"
  "  lease_expires_at INTEGER,"
  "  error_class TEXT,"
  "  error TEXT,"
  "  created_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL);"

  "CREATE TABLE execution_transitions ("
  "  id INTEGER PRIMARY KEY,"
  "  execution_id INTEGER NOT NULL"
  "    REFERENCES executions(id) ON DELETE CASCADE,"
  "  from_state TEXT"
  "    CHECK (from_state IS NULL OR from_state IN " EXEC_STATES "),"
  "  to_state TEXT NOT NULL CHECK (to_state IN " EXEC_STATES "),"
  "  at INTEGER NOT NULL,"
  "  reason TEXT);"

  /* AUTOINCREMENT: ids are never reused, even after pruning the newest. */
  "CREATE TABLE events ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  at INTEGER NOT NULL,"
  "  subject_type TEXT NOT NULL,"
  "  subject_id TEXT NOT NULL,"
  "  verb TEXT NOT NULL,"
  "  actor TEXT,"
  "  seq INTEGER NOT NULL CHECK (seq >= 1),"
  "  data_json TEXT CHECK (data_json IS NULL OR json_valid(data_json)),"
  "  UNIQUE (subject_type, subject_id, seq));"

  /* The last seq given per subject: survives pruning of the events. */
  "CREATE TABLE event_subjects ("
  "  subject_type TEXT NOT NULL,"
  "  subject_id TEXT NOT NULL,"
  "  last_seq INTEGER NOT NULL,"
  "  PRIMARY KEY (subject_type, subject_id)) WITHOUT ROWID;"
  "CREATE TRIGGER events_subject_seq AFTER INSERT ON events BEGIN"
  "  INSERT OR REPLACE INTO event_subjects (subject_type, subject_id,"
  "    last_seq) VALUES (NEW.subject_type, NEW.subject_id, NEW.seq);"
  "END;"

  "CREATE TABLE runners ("
  "  id TEXT PRIMARY KEY NOT NULL,"
  "  name TEXT,"
  "  providers_json TEXT"
  "    CHECK (providers_json IS NULL OR json_valid(providers_json)),"
  "  slots INTEGER NOT NULL DEFAULT 1 CHECK (slots >= 0),"
  "  last_seen_at INTEGER);"

  /* One row per committed state version: the history is kept. */
  "CREATE TABLE sync_state ("
  "  work_id TEXT NOT NULL REFERENCES works(id),"
  "  version INTEGER NOT NULL CHECK (version >= 1),"
  "  state_json TEXT CHECK (state_json IS NULL OR json_valid(state_json)),"
  "  records INTEGER NOT NULL DEFAULT 0 CHECK (records >= 0),"
  "  committed_at INTEGER NOT NULL,"
  "  execution_id INTEGER REFERENCES executions(id) ON DELETE SET NULL,"
  "  PRIMARY KEY (work_id, version));";

/* Version 2: metrics, subscriptions, delivery outbox and attempts, and the
 * secondary indexes of the version 1 tables. */
static const char MIGRATION_2[] =
  "CREATE TABLE metrics ("
  "  auth_id TEXT NOT NULL REFERENCES authorizations(id) ON DELETE CASCADE,"
  "  bucket_start INTEGER NOT NULL"
  "    CHECK (bucket_start >= 0 AND bucket_start % 3600000 = 0),"
  "  requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),"
  "  errors INTEGER NOT NULL DEFAULT 0 CHECK (errors >= 0),"
  "  PRIMARY KEY (auth_id, bucket_start)) WITHOUT ROWID;"
  "CREATE INDEX metrics_by_bucket ON metrics(bucket_start);"

  "CREATE TABLE subscriptions ("
  "  id TEXT PRIMARY KEY NOT NULL,"
  "  workflow TEXT NOT NULL,"
  "  config_hash TEXT NOT NULL,"
  "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),"
  "  disabled_reason TEXT,"
  "  created_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL);"

  /* pending: waiting for its first or next attempt; failed: the last
   * attempt failed, retried at next_attempt_at; delivered and dead
   * (retries exhausted) are final. */
  "CREATE TABLE outbox ("
  "  subscription_id TEXT NOT NULL"
  "    REFERENCES subscriptions(id) ON DELETE CASCADE,"
  "  event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
  "  status TEXT NOT NULL DEFAULT 'pending'"
  "    CHECK (status IN ('pending','delivered','failed','dead')),"
  "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
  "  next_attempt_at INTEGER,"
  "  last_status INTEGER,"
  "  last_error TEXT,"
  "  PRIMARY KEY (subscription_id, event_id)) WITHOUT ROWID;"
  "CREATE INDEX outbox_by_event ON outbox(event_id, status);"
  "CREATE INDEX outbox_due ON outbox(status, next_attempt_at);"

  "CREATE TABLE delivery_attempts ("
  "  id INTEGER PRIMARY KEY,"
  "  subscription_id TEXT NOT NULL,"
  "  event_id INTEGER NOT NULL,"
  "  at INTEGER NOT NULL,"
  "  http_status INTEGER,"
  "  latency_ms INTEGER CHECK (latency_ms IS NULL OR latency_ms >= 0),"
  "  error TEXT,"
  "  FOREIGN KEY (subscription_id, event_id)"
  "    REFERENCES outbox(subscription_id, event_id) ON DELETE CASCADE);"
  "CREATE INDEX delivery_attempts_by_outbox"
  "  ON delivery_attempts(subscription_id, event_id, at);"

  "CREATE INDEX auth_health_by_auth ON auth_health(auth_id, checked_at);"
  "CREATE INDEX works_by_auth ON works(authorization_id);"
  "CREATE INDEX works_due ON works(next_run_at)"
  "  WHERE deleted_at IS NULL AND enabled = 1;"
  "CREATE INDEX executions_by_work ON executions(work_id, id);"
  "CREATE INDEX executions_by_state ON executions(state, lease_expires_at);"
  "CREATE INDEX execution_transitions_by_execution"
  "  ON execution_transitions(execution_id, id);"
  "CREATE INDEX events_by_at ON events(at);"
  "CREATE INDEX sync_state_by_execution ON sync_state(execution_id);";

/* Version 3: execution retries (not_before), a work's first run, notes on
 * sync state versions and rotated credentials. auth_credentials keeps a
 * scheme ('plain' today) and a key id so an encrypting codec can be added
 * without another migration. */
static const char MIGRATION_3[] =
  "ALTER TABLE executions ADD COLUMN not_before INTEGER;"
  "ALTER TABLE works ADD COLUMN first_run_at INTEGER;"
  "ALTER TABLE sync_state ADD COLUMN note TEXT;"
  "CREATE TABLE auth_credentials ("
  "  auth_id TEXT PRIMARY KEY NOT NULL"
  "    REFERENCES authorizations(id) ON DELETE CASCADE,"
  "  config_hash TEXT NOT NULL,"
  "  scheme TEXT NOT NULL,"
  "  key_id TEXT,"
  "  blob BLOB NOT NULL,"
  "  updated_at INTEGER NOT NULL);"
  "CREATE INDEX executions_by_runner ON executions(runner_id)"
  "  WHERE runner_id IS NOT NULL;";

/* Version 4: the webhook outbox: a subscription's canonical filter, its
 * enqueue cursor (the last event id considered; existing subscriptions start
 * at the newest event, they do not receive the past), a concurrency limit,
 * the start of its failing streak; an outbox row's first attempt time; the
 * indexes of due rows and of attempts per subscription and time. */
static const char MIGRATION_4[] =
  "ALTER TABLE subscriptions ADD COLUMN filter_json TEXT"
  "  CHECK (filter_json IS NULL OR json_valid(filter_json));"
  "ALTER TABLE subscriptions ADD COLUMN cursor_event_id INTEGER NOT NULL"
  "  DEFAULT 0;"
  "ALTER TABLE subscriptions ADD COLUMN max_in_flight INTEGER"
  "  CHECK (max_in_flight IS NULL OR max_in_flight >= 1);"
  "ALTER TABLE subscriptions ADD COLUMN failing_since INTEGER;"
  "ALTER TABLE outbox ADD COLUMN first_attempt_at INTEGER;"
  "UPDATE subscriptions SET cursor_event_id = COALESCE((SELECT seq FROM"
  "  sqlite_sequence WHERE name = 'events'), 0);"
  "CREATE INDEX outbox_undelivered"
  "  ON outbox(subscription_id, event_id, next_attempt_at)"
  "  WHERE status IN ('pending','failed');"
  "CREATE INDEX delivery_attempts_by_sub_at"
  "  ON delivery_attempts(subscription_id, at);";

/* Version 5: indexes that keep claims cheap however long a work's history
 * grows (the "no other leased execution of this work" check and the oldest
 * created execution). */
static const char MIGRATION_5[] =
  "CREATE INDEX executions_leased_by_work ON executions(work_id)"
  "  WHERE state IN ('pending','executing');"
  "CREATE INDEX executions_created ON executions(created_at, id)"
  "  WHERE state = 'created';";

/* Version 6: no outbox index includes the status any more, so marking a
 * row delivered rewrites no index entry (bench_delivery: the status UPDATE
 * was the largest store cost per event). The event_id index (foreign key
 * cascades from pruned events, the prune's "still owed" check) never
 * changes after insert; due rows are found through outbox_undelivered. */
static const char MIGRATION_6[] =
  "DROP INDEX outbox_by_event;"
  "DROP INDEX outbox_due;"
  "CREATE INDEX outbox_by_event_id ON outbox(event_id);";

/* Version 7: the lease-expiry scan reads a partial index of leased
 * executions; the (state, lease_expires_at) index every state change
 * rewrote is gone (claims use executions_created since v5). */
static const char MIGRATION_7[] =
  "DROP INDEX executions_by_state;"
  "CREATE INDEX executions_lease_expiry ON executions(lease_expires_at)"
  "  WHERE state IN ('pending','executing');";

/* Version 8: a delivery attempt is history, written once per attempt at
 * full delivery speed: it no longer has a foreign key to its outbox row
 * (whose check read the outbox on every insert) nor the (subscription,
 * event, at) index that only served that key's cascade. Attempts go with
 * their subscription (trigger) and with age (the event prune removes those
 * older than its cutoff, as it removes the events). */
static const char MIGRATION_8[] =
  "CREATE TABLE delivery_attempts_v8 ("
  "  id INTEGER PRIMARY KEY,"
  "  subscription_id TEXT NOT NULL,"
  "  event_id INTEGER NOT NULL,"
  "  at INTEGER NOT NULL,"
  "  http_status INTEGER,"
  "  latency_ms INTEGER CHECK (latency_ms IS NULL OR latency_ms >= 0),"
  "  error TEXT);"
  "INSERT INTO delivery_attempts_v8 SELECT id, subscription_id, event_id, at,"
  "  http_status, latency_ms, error FROM delivery_attempts;"
  "DROP TABLE delivery_attempts;"
  "ALTER TABLE delivery_attempts_v8 RENAME TO delivery_attempts;"
  "CREATE INDEX delivery_attempts_by_sub_at"
  "  ON delivery_attempts(subscription_id, at);"
  "CREATE TRIGGER delivery_attempts_of_subscription AFTER DELETE ON"
  "  subscriptions BEGIN"
  "  DELETE FROM delivery_attempts WHERE subscription_id = OLD.id;"
  "END;";

/* Version 9: objects created through the REST API (their definition in the
 * configuration's own keys, their secrets sealed apart), and the results of
 * POSTs made with an Idempotency-Key. */
static const char MIGRATION_9[] =
  "CREATE TABLE api_objects ("
  "  kind TEXT NOT NULL CHECK (kind IN ('authorization', 'work',"
  "    'subscription')),"
  "  id TEXT NOT NULL,"
  "  def_json TEXT NOT NULL CHECK (json_valid(def_json)),"
  "  sealed BLOB,"
  "  key_id TEXT,"
  "  created_by TEXT,"
  "  created_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL,"
  "  PRIMARY KEY (kind, id)) WITHOUT ROWID;"
  "CREATE TABLE api_idempotency ("
  "  token TEXT NOT NULL,"
  "  key TEXT NOT NULL,"
  "  route TEXT NOT NULL,"
  "  body_hash TEXT NOT NULL,"
  "  status INTEGER NOT NULL,"
  "  response_json TEXT,"
  "  created_at INTEGER NOT NULL,"
  "  PRIMARY KEY (token, key)) WITHOUT ROWID;"
  "CREATE INDEX api_idempotency_by_age ON api_idempotency(created_at);";

/* Version 10: remote runners (registration, token hash, labels, online
 * state, revocation), the runner labels a work asks for (claims route by
 * them), the last report applied per execution (a retried report is applied
 * once) and the executions' log lines (a remote runner's sync log). */
static const char MIGRATION_10[] =
  "ALTER TABLE works ADD COLUMN runner_labels_json TEXT"
  "  CHECK (runner_labels_json IS NULL OR json_valid(runner_labels_json));"
  "ALTER TABLE runners ADD COLUMN token_hash TEXT;"
  "ALTER TABLE runners ADD COLUMN labels_json TEXT"
  "  CHECK (labels_json IS NULL OR json_valid(labels_json));"
  "ALTER TABLE runners ADD COLUMN version TEXT;"
  "ALTER TABLE runners ADD COLUMN slots_free INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE runners ADD COLUMN registered_at INTEGER;"
  "ALTER TABLE runners ADD COLUMN revoked_at INTEGER;"
  "ALTER TABLE runners ADD COLUMN online INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE runners ADD COLUMN registration TEXT;"
  "ALTER TABLE executions ADD COLUMN report_epoch INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE executions ADD COLUMN report_seq INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE executions ADD COLUMN report_result TEXT;"
  "CREATE TABLE execution_logs ("
  "  id INTEGER PRIMARY KEY,"
  "  execution_id INTEGER NOT NULL"
  "    REFERENCES executions(id) ON DELETE CASCADE,"
  "  at INTEGER NOT NULL,"
  "  level INTEGER NOT NULL,"
  "  text TEXT NOT NULL);"
  "CREATE INDEX execution_logs_by_execution"
  "  ON execution_logs(execution_id, id);";

/* Version 11: the last claim a runner made (its id and the executions it
 * took), so a claim retried after its answer was lost returns the same
 * executions instead of leasing more; execution log lines lose their
 * foreign key. */
static const char MIGRATION_11[] =
  "ALTER TABLE runners ADD COLUMN last_claim_id TEXT;"
  "ALTER TABLE runners ADD COLUMN last_claim_json TEXT"
  "  CHECK (last_claim_json IS NULL OR json_valid(last_claim_json));"
  /* Execution log lines without a foreign key: executions are never
   * deleted, and the key's checks made every change of an execution pay
   * for it (bench_exec: claims 10x slower). */
  "CREATE TABLE execution_logs_v11 ("
  "  id INTEGER PRIMARY KEY,"
  "  execution_id INTEGER NOT NULL,"
  "  at INTEGER NOT NULL,"
  "  level INTEGER NOT NULL,"
  "  text TEXT NOT NULL);"
  "INSERT INTO execution_logs_v11 SELECT id, execution_id, at, level, text"
  "  FROM execution_logs;"
  "DROP TABLE execution_logs;"
  "ALTER TABLE execution_logs_v11 RENAME TO execution_logs;"
  "CREATE INDEX execution_logs_by_execution"
  "  ON execution_logs(execution_id, id);";

/* Version 12: the instances sharing the store and the duties they hold
 * (store_cluster.h). */
static const char MIGRATION_12[] =
  "CREATE TABLE instances ("
  "  id TEXT PRIMARY KEY,"
  "  info_json TEXT NOT NULL CHECK (json_valid(info_json)),"
  "  started_at INTEGER NOT NULL,"
  "  last_seen_at INTEGER NOT NULL);"
  "CREATE TABLE duties ("
  "  name TEXT PRIMARY KEY,"
  "  holder TEXT NOT NULL,"
  "  since INTEGER NOT NULL,"
  "  expires_at INTEGER NOT NULL,"
  "  epoch INTEGER NOT NULL);";

/* Version 13: batched webhook delivery (store_batches.h): a flag on the
 * subscription (no outbox rows for it), its open batch, and attempts that
 * cover a range of events. */
static const char MIGRATION_13[] =
  "ALTER TABLE subscriptions ADD COLUMN batched INTEGER NOT NULL DEFAULT 0;"
  "ALTER TABLE delivery_attempts ADD COLUMN last_event_id INTEGER;"
  "ALTER TABLE delivery_attempts ADD COLUMN event_count INTEGER;"
  "ALTER TABLE delivery_attempts ADD COLUMN batch_status TEXT;"
  "CREATE TABLE webhook_batches ("
  "  subscription_id TEXT PRIMARY KEY"
  "    REFERENCES subscriptions(id) ON DELETE CASCADE,"
  "  first_id INTEGER NOT NULL,"
  "  last_id INTEGER NOT NULL CHECK (last_id >= first_id),"
  "  count INTEGER NOT NULL CHECK (count > 0),"
  "  attempts INTEGER NOT NULL DEFAULT 0,"
  "  next_attempt_at INTEGER NOT NULL,"
  "  first_attempt_at INTEGER);";

static const char *const migrations[] = {
    MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4, MIGRATION_5,
    MIGRATION_6, MIGRATION_7, MIGRATION_8, MIGRATION_9, MIGRATION_10,
    MIGRATION_11, MIGRATION_12, MIGRATION_13};
#define LATEST_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
// clang-format on

static const char *const stmt_sql[ST_COUNT] = {
#define X(name, sql) sql,
    STATEMENTS(X)
#undef X
};

static const struct cr_store_ops sqlite_ops;

/* ---- Errors -------------------------------------------------------------- */

/* The writer lock follows SQLite's transaction: taken before BEGIN
 * IMMEDIATE, let go as soon as the connection is back in autocommit (a
 * commit, a rollback, or a transaction SQLite ended on its own). */
static void wl_sync(struct sq_store *q) {
  if (q->wl_held && sqlite3_get_autocommit(q->db)) {
    q->wl_held = 0;
    cr__wlock_drop(q->wl);
  }
}

/* Maps the connection's last SQLite error to a CR_E* code, records its
 * message and notices a transaction SQLite rolled back on its own. */
int cr__sq_fail(struct sq_store *q, int rc) {
  int ext = sqlite3_extended_errcode(q->db);
  if (ext == SQLITE_OK || ext == SQLITE_ROW || ext == SQLITE_DONE)
    ext = rc;
  cr__store_set_error(&q->base, "%s", sqlite3_errmsg(q->db));
  if (q->depth > 0 && sqlite3_get_autocommit(q->db))
    q->doomed = 1;
  wl_sync(q);
  switch (ext & 0xff) {
  case SQLITE_CONSTRAINT:
    return ext == SQLITE_CONSTRAINT_PRIMARYKEY ||
                   ext == SQLITE_CONSTRAINT_UNIQUE
               ? CR_EEXIST
               : CR_EINVAL;
  case SQLITE_NOMEM:
    return CR_ENOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return CR_EBUSY;
  default:
    return CR_ESTORE;
  }
}

int cr__sq_nomem(struct sq_store *q) {
  cr__store_set_error(&q->base, "out of memory");
  return CR_ENOMEM;
}

int cr__sq_not_found(struct sq_store *q, const char *what, const char *id) {
  cr__store_set_error(&q->base, "%s '%s' not found", what, id);
  return CR_ENOENT;
}

/* Writes are refused while the transaction is doomed. */
int cr__sq_doomed(struct sq_store *q) {
  if (!q->doomed)
    return 0;
  cr__store_set_error(&q->base, "the transaction was rolled back; end it "
                                "with cr_store_commit or cr_store_rollback");
  return CR_ECANCELED;
}

/* ---- Statement helpers --------------------------------------------------- */

int cr__sq_prep(struct sq_store *q, enum stmt_id id, sqlite3_stmt **out) {
  if (q->stmt[id] == NULL) {
    int rc = sqlite3_prepare_v3(q->db, stmt_sql[id], -1,
                                SQLITE_PREPARE_PERSISTENT, &q->stmt[id], NULL);
    if (rc != SQLITE_OK)
      return cr__sq_fail(q, rc);
  }
  *out = q->stmt[id];
  return 0;
}

void cr__sq_done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

void cr__sq_bind_str(sqlite3_stmt *st, int i, const char *v) {
  sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC); /* NULL binds NULL */
}

/* Binds a time where 0 means NULL. */
void cr__sq_bind_time(sqlite3_stmt *st, int i, int64_t v) {
  if (v == 0)
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_int64(st, i, v);
}

/* Steps a statement that returns no rows, then resets it. */
int cr__sq_step_done(struct sq_store *q, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  int err = rc == SQLITE_DONE ? 0 : cr__sq_fail(q, rc);
  cr__sq_done(st);
  return err;
}

/* Runs a cached statement without parameters. quiet keeps the last error
 * (used when undoing after an earlier failure). */
static int run(struct sq_store *q, enum stmt_id id, int quiet) {
  sqlite3_stmt *st = NULL;
  char saved[CR_STORE_ERRLEN];
  if (quiet)
    memcpy(saved, q->base.last_error, sizeof saved);
  if (id == ST_BEGIN && q->wl != NULL && !q->wl_held)
    q->wl_held = cr__wlock_take(q->wl, CR_STORE_BUSY_TIMEOUT_MS);
  int rc = cr__sq_prep(q, id, &st);
  if (rc == 0)
    rc = cr__sq_step_done(q, st);
  wl_sync(q);
  if (quiet)
    memcpy(q->base.last_error, saved, sizeof saved);
  return rc;
}

/* Copies text column i into *dst (NULL for SQL NULL). */
int cr__sq_col_str(sqlite3_stmt *st, int i, char **dst) {
  *dst = NULL;
  if (sqlite3_column_type(st, i) == SQLITE_NULL)
    return 0;
  const char *t = (const char *)sqlite3_column_text(st, i);
  if (t == NULL)
    return CR_ENOMEM;
  *dst = cr__strdup(t);
  return *dst == NULL ? CR_ENOMEM : 0;
}

/* Copies n text columns starting at first into the fields. */
int cr__sq_col_strs(sqlite3_stmt *st, int first, char **const *fields,
                    size_t n) {
  for (size_t i = 0; i < n; i++)
    if (cr__sq_col_str(st, first + (int)i, fields[i]) != 0)
      return CR_ENOMEM;
  return 0;
}

/* ---- Row readers and the generic collector ------------------------------- */

static int read_auth(sqlite3_stmt *st, void *p) {
  struct cr_auth_rec *r = p;
  char **const f[] = {&r->id,     &r->name,  &r->description, &r->provider,
                      &r->method, &r->owner, &r->config_hash};
  r->created_at = sqlite3_column_int64(st, 7);
  r->updated_at = sqlite3_column_int64(st, 8);
  return cr__sq_col_strs(st, 0, f, sizeof f / sizeof f[0]);
}

static int read_work(sqlite3_stmt *st, void *p) {
  struct cr_work_rec *r = p;
  char **const f[] = {&r->id,
                      &r->name,
                      &r->provider,
                      &r->authorization_id,
                      &r->schedule_json,
                      &r->destination_json,
                      &r->config_json,
                      &r->config_hash};
  r->enabled = sqlite3_column_int(st, 8);
  r->error_email_notifications = sqlite3_column_int(st, 9);
  r->max_attempts = sqlite3_column_int(st, 10);
  r->next_run_at = sqlite3_column_int64(st, 11);
  r->created_at = sqlite3_column_int64(st, 12);
  r->updated_at = sqlite3_column_int64(st, 13);
  int rc = cr__sq_col_strs(st, 0, f, sizeof f / sizeof f[0]);
  return rc == 0 ? cr__sq_col_str(st, 14, &r->runner_labels_json) : rc;
}

static int read_event(sqlite3_stmt *st, void *p) {
  struct cr_event_rec *r = p;
  char **const f[] = {&r->subject_type, &r->subject_id, &r->verb, &r->actor,
                      &r->data_json};
  r->id = sqlite3_column_int64(st, 0);
  r->at = sqlite3_column_int64(st, 1);
  r->seq = sqlite3_column_int64(st, 2);
  return cr__sq_col_strs(st, 3, f, sizeof f / sizeof f[0]);
}

static int read_sub(sqlite3_stmt *st, void *p) {
  struct cr_sub_rec *r = p;
  char **const f[] = {&r->id, &r->workflow, &r->config_hash};
  r->enabled = sqlite3_column_int(st, 3);
  r->created_at = sqlite3_column_int64(st, 5);
  r->updated_at = sqlite3_column_int64(st, 6);
  r->cursor_event_id = sqlite3_column_int64(st, 8);
  r->failing_since = sqlite3_column_int64(st, 9);
  r->batched = sqlite3_column_int(st, 10);
  if (cr__sq_col_str(st, 4, &r->disabled_reason) != 0 ||
      cr__sq_col_str(st, 7, &r->filter_json) != 0)
    return CR_ENOMEM;
  return cr__sq_col_strs(st, 0, f, sizeof f / sizeof f[0]);
}

static const char *const health_names[] = {"unknown", "healthy", "unhealthy"};

static int read_health(sqlite3_stmt *st, void *p) {
  struct cr_health_rec *r = p;
  const char *status = (const char *)sqlite3_column_text(st, 1);
  r->at = sqlite3_column_int64(st, 0);
  r->status = CR_HEALTH_UNKNOWN;
  for (int i = 0; status != NULL && i <= CR_HEALTH_UNHEALTHY; i++)
    if (strcmp(status, health_names[i]) == 0)
      r->status = i;
  return cr__sq_col_str(st, 2, &r->reason);
}

static int read_point(sqlite3_stmt *st, void *p) {
  struct cr_metric_point *r = p;
  r->bucket_start = sqlite3_column_int64(st, 0);
  r->requests = sqlite3_column_int64(st, 1);
  r->errors = sqlite3_column_int64(st, 2);
  return 0;
}

static void clear_auth(void *p) { cr_auth_rec_clear(p); }
static void clear_work(void *p) { cr_work_rec_clear(p); }
static void clear_event(void *p) { cr_event_rec_clear(p); }
static void clear_sub(void *p) { cr_sub_rec_clear(p); }
static void clear_health(void *p) { cr_health_rec_clear(p); }
static void clear_none(void *p) { (void)p; }

static const struct row_type AUTH_ROW = {sizeof(struct cr_auth_rec), read_auth,
                                         clear_auth};
static const struct row_type WORK_ROW = {sizeof(struct cr_work_rec), read_work,
                                         clear_work};
static const struct row_type EVENT_ROW = {sizeof(struct cr_event_rec),
                                          read_event, clear_event};
static const struct row_type SUB_ROW = {sizeof(struct cr_sub_rec), read_sub,
                                        clear_sub};
static const struct row_type HEALTH_ROW = {sizeof(struct cr_health_rec),
                                           read_health, clear_health};
static const struct row_type POINT_ROW = {sizeof(struct cr_metric_point),
                                          read_point, clear_none};

/* Steps the bound statement st to the end, reading every row into a growing
 * array (first allocation: cap0 records). Resets st. On success *out is the
 * array (NULL when no row) and *n its length; on failure nothing is kept. */
int cr__sq_collect(struct sq_store *q, sqlite3_stmt *st,
                   const struct row_type *t, size_t cap0, void **out,
                   size_t *n) {
  char *arr = NULL;
  size_t cnt = 0, cap = 0;
  int rc = 0, src;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (cnt == cap) {
      size_t ncap = cap == 0 ? cap0 : cap * 2;
      char *grown = cr__realloc(arr, ncap * t->size);
      if (grown == NULL) {
        rc = cr__sq_nomem(q);
        break;
      }
      arr = grown;
      cap = ncap;
    }
    void *rec = arr + cnt * t->size;
    memset(rec, 0, t->size);
    if (t->read(st, rec) != 0) {
      t->clear(rec);
      rc = cr__sq_nomem(q);
      break;
    }
    cnt++;
  }
  if (rc == 0 && src != SQLITE_DONE)
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  if (rc != 0) {
    for (size_t i = 0; i < cnt; i++)
      t->clear(arr + i * t->size);
    cr__free(arr);
    return rc;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

/* Reads the one row st (bound) returns into a new record; CR_ENOENT (with a
 * message naming what and id) when there is none. */
static int get_one(struct sq_store *q, sqlite3_stmt *st,
                   const struct row_type *t, void **out, const char *what,
                   const char *id) {
  size_t n = 0;
  int rc = cr__sq_collect(q, st, t, 1, out, &n);
  if (rc == 0 && n == 0)
    return cr__sq_not_found(q, what, id);
  return rc;
}

/* ---- Transactions ---------------------------------------------------------
 * Operations made of several statements run in op_begin/op_end: their own
 * BEGIN IMMEDIATE transaction outside a caller's transaction, a savepoint
 * inside one (so a failure undoes the operation only). */

/* A write ends the read snapshot first (its BEGIN IMMEDIATE cannot nest). */
static void end_read(struct sq_store *q) {
  if (q->reading) {
    q->reading = 0;
    run(q, ST_COMMIT, 1);
  }
}

int cr__sq_op_begin(struct sq_store *q) {
  if (q->depth == 0)
    end_read(q);
  return run(q, q->depth == 0 ? ST_BEGIN : ST_SAVEPOINT, 0);
}

static int sq_read_begin(cr_store *s) {
  struct sq_store *q = sqs(s);
  if (q->depth > 0 || q->reading || !sqlite3_get_autocommit(q->db))
    return 0;
  int rc = run(q, ST_BEGIN_READ, 0);
  q->reading = rc == 0;
  return rc;
}

static int sq_read_end(cr_store *s) {
  end_read(sqs(s));
  return 0;
}

int cr__sq_op_end(struct sq_store *q, int rc) {
  int outer = q->depth == 0;
  if (rc == 0)
    rc = run(q, outer ? ST_COMMIT : ST_RELEASE, 0);
  if (rc == 0 || sqlite3_get_autocommit(q->db))
    return rc;
  if (outer) {
    run(q, ST_ROLLBACK, 1);
  } else {
    run(q, ST_ROLLBACK_TO, 1);
    run(q, ST_RELEASE, 1);
  }
  return rc;
}

static int sq_begin(cr_store *s) {
  struct sq_store *q = sqs(s);
  if (q->depth == 0)
    end_read(q);
  if (q->depth == 0) {
    int rc = run(q, ST_BEGIN, 0);
    if (rc != 0)
      return rc;
    q->doomed = 0;
  }
  q->depth++;
  return 0;
}

static int no_transaction(struct sq_store *q) {
  cr__store_set_error(&q->base, "no transaction is open");
  return CR_ESTATE;
}

static int commit(struct sq_store *q) {
  if (q->depth == 0)
    return no_transaction(q);
  if (--q->depth > 0)
    return 0;
  q->base.sp_open = 0;
  if (q->doomed) {
    q->doomed = 0;
    if (!sqlite3_get_autocommit(q->db))
      run(q, ST_ROLLBACK, 1);
    cr__store_set_error(&q->base, "the transaction was rolled back");
    return CR_ECANCELED;
  }
  int rc = run(q, ST_COMMIT, 0);
  if (rc != 0 && !sqlite3_get_autocommit(q->db))
    run(q, ST_ROLLBACK, 1);
  return rc;
}

static int rollback(struct sq_store *q) {
  if (q->depth == 0)
    return no_transaction(q);
  q->depth--;
  int rc = 0;
  if (q->base.sp_open && q->depth >= q->base.sp_depth) {
    /* inside a caller's savepoint: undo to it; its end may revive us */
    if (!sqlite3_get_autocommit(q->db))
      rc = run(q, ST_ROLLBACK_TO, 0);
    q->doomed = 1;
    return rc;
  }
  if (!sqlite3_get_autocommit(q->db))
    rc = run(q, ST_ROLLBACK, 0);
  q->doomed = q->depth > 0;
  if (q->depth == 0)
    q->base.sp_open = 0;
  return rc;
}

static int sq_commit(cr_store *s) {
  struct sq_store *q = sqs(s);
  int rc = commit(q);
  wl_sync(q);
  return rc;
}

static int sq_rollback(cr_store *s) {
  struct sq_store *q = sqs(s);
  int rc = rollback(q);
  wl_sync(q);
  return rc;
}

/* A savepoint of the caller (cr_store_savepoint): SAVEPOINT cr_op like the
 * operations' own, which are always released before it ends, so RELEASE and
 * ROLLBACK TO reach it. */
static int sq_savepoint(cr_store *s) {
  struct sq_store *q = sqs(s);
  if (q->depth == 0)
    return no_transaction(q);
  if (s->sp_open) {
    cr__store_set_error(s, "a savepoint is already open");
    return CR_ESTATE;
  }
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = run(q, ST_SAVEPOINT, 0);
  if (rc != 0)
    return rc;
  s->sp_open = 1;
  s->sp_depth = q->depth;
  s->sp_doomed = q->doomed;
  return 0;
}

static int sq_savepoint_end(cr_store *s, int rc) {
  struct sq_store *q = sqs(s);
  if (!s->sp_open) {
    cr__store_set_error(s, "no savepoint is open");
    return CR_ESTATE;
  }
  s->sp_open = 0;
  if (q->depth != s->sp_depth) {
    q->doomed = q->depth > 0;
    cr__store_set_error(s, "unbalanced begin/commit inside a savepoint");
    return CR_ESTATE;
  }
  if (sqlite3_get_autocommit(q->db)) { /* SQLite dropped the transaction */
    q->doomed = 1;
    if (rc == 0)
      cr__store_set_error(s, "the transaction was rolled back");
    return rc != 0 ? rc : CR_ECANCELED;
  }
  if (rc == 0 && (rc = run(q, ST_RELEASE, 0)) == 0)
    return 0;
  if (sqlite3_get_autocommit(q->db) || run(q, ST_ROLLBACK_TO, 1) != 0 ||
      run(q, ST_RELEASE, 1) != 0)
    q->doomed = 1;
  else
    q->doomed = s->sp_doomed;
  return rc;
}

/* ---- Upserts --------------------------------------------------------------
 * The state statement (?1 id, ?2 hash) returns: hash equal, deleted,
 * created_at. Decides *changed and the created_at to write. */

static int upsert_state(struct sq_store *q, enum stmt_id id, const char *key,
                        const char *hash, int64_t now, int *changed,
                        int64_t *created) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, key);
  cr__sq_bind_str(st, 2, hash);
  int src = sqlite3_step(st);
  *changed = CR_STORE_CREATED;
  *created = now;
  if (src == SQLITE_ROW && sqlite3_column_int(st, 1) == 0) {
    *changed =
        sqlite3_column_int(st, 0) ? CR_STORE_UNCHANGED : CR_STORE_UPDATED;
    *created = sqlite3_column_int64(st, 2);
  } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
    rc = cr__sq_fail(q, src);
  }
  cr__sq_done(st);
  return rc;
}

static int auth_write(struct sq_store *q, const struct cr_auth_rec *r,
                      int64_t created, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_AUTH_WRITE, &st);
  if (rc != 0)
    return rc;
  const char *v[] = {r->id,     r->name,  r->description, r->provider,
                     r->method, r->owner, r->config_hash};
  for (int i = 0; i < 7; i++)
    cr__sq_bind_str(st, i + 1, v[i]);
  sqlite3_bind_int64(st, 8, created);
  sqlite3_bind_int64(st, 9, now);
  return cr__sq_step_done(q, st);
}

static int work_write(struct sq_store *q, const struct cr_work_rec *r,
                      int64_t created, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_WORK_WRITE, &st);
  if (rc != 0)
    return rc;
  const char *v[] = {r->id,
                     r->name,
                     r->provider,
                     r->authorization_id,
                     r->schedule_json,
                     r->destination_json,
                     r->config_json,
                     r->config_hash};
  for (int i = 0; i < 8; i++)
    cr__sq_bind_str(st, i + 1, v[i]);
  sqlite3_bind_int(st, 9, r->enabled != 0);
  sqlite3_bind_int(st, 10, r->error_email_notifications != 0);
  sqlite3_bind_int(st, 11, r->max_attempts);
  cr__sq_bind_time(st, 12, r->next_run_at);
  sqlite3_bind_int64(st, 13, created);
  sqlite3_bind_int64(st, 14, now);
  cr__sq_bind_str(st, 15, r->runner_labels_json);
  return cr__sq_step_done(q, st);
}

static int sub_write(struct sq_store *q, const struct cr_sub_rec *r,
                     int64_t created, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_SUB_WRITE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, r->id);
  cr__sq_bind_str(st, 2, r->workflow);
  cr__sq_bind_str(st, 3, r->config_hash);
  sqlite3_bind_int(st, 4, r->enabled != 0);
  cr__sq_bind_str(st, 5, r->disabled_reason);
  sqlite3_bind_int64(st, 6, created);
  sqlite3_bind_int64(st, 7, now);
  cr__sq_bind_str(st, 8, r->filter_json);
  sqlite3_bind_int(st, 9, r->batched != 0);
  return cr__sq_step_done(q, st);
}

/* The writers above, behind one signature. */
typedef int (*write_fn)(struct sq_store *q, const void *rec, int64_t created,
                        int64_t now);
static int write_auth(struct sq_store *q, const void *r, int64_t c,
                      int64_t now) {
  return auth_write(q, r, c, now);
}
static int write_work(struct sq_store *q, const void *r, int64_t c,
                      int64_t now) {
  return work_write(q, r, c, now);
}
static int write_sub(struct sq_store *q, const void *r, int64_t c,
                     int64_t now) {
  return sub_write(q, r, c, now);
}

static int upsert(struct sq_store *q, enum stmt_id state, write_fn write,
                  const void *rec, const char *id, const char *hash,
                  int64_t now, int *changed) {
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  int64_t created = now;
  rc = upsert_state(q, state, id, hash, now, changed, &created);
  if (rc == 0 && *changed != CR_STORE_UNCHANGED)
    rc = write(q, rec, created, now);
  rc = cr__sq_op_end(q, rc);
  if (rc != 0)
    *changed = CR_STORE_UNCHANGED;
  return rc;
}

/* Runs an UPDATE/DELETE keyed by id (?1, with ?2 = t when has_t) that must
 * change one row; CR_ENOENT naming what otherwise. */
static int change_one(struct sq_store *q, enum stmt_id id, const char *key,
                      int has_t, int64_t t, const char *what) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, key);
  if (has_t)
    cr__sq_bind_time(st, 2, t);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && sqlite3_changes(q->db) == 0)
    return cr__sq_not_found(q, what, key);
  return rc;
}

/* Binds ?1 = key and collects the rows of a cached statement. */
int cr__sq_list_by(struct sq_store *q, enum stmt_id id, const char *key,
                   const struct row_type *t, void **out, size_t *n) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  if (key != NULL)
    cr__sq_bind_str(st, 1, key);
  return cr__sq_collect(q, st, t, 8, out, n);
}

int cr__sq_get_by(struct sq_store *q, enum stmt_id id, const char *key,
                  const struct row_type *t, void **out, const char *what) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, key);
  return get_one(q, st, t, out, what, key);
}

/* Runs st (bound) and stores the integer of its first row in *out (0 when
 * there is no row; *found tells which, and may be NULL). Resets st. */
int cr__sq_step_int(struct sq_store *q, sqlite3_stmt *st, int64_t *out,
                    int *found) {
  int src = sqlite3_step(st);
  *out = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  if (found != NULL)
    *found = src == SQLITE_ROW;
  int rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

/* ---- Authorizations ------------------------------------------------------ */

static int sq_auth_upsert(cr_store *s, const struct cr_auth_rec *rec,
                          int64_t now, int *changed) {
  return upsert(sqs(s), ST_AUTH_STATE, write_auth, rec, rec->id,
                rec->config_hash, now, changed);
}

static int sq_auth_get(cr_store *s, const char *id, struct cr_auth_rec **out) {
  return cr__sq_get_by(sqs(s), ST_AUTH_GET, id, &AUTH_ROW, (void **)out,
                       "authorization");
}

static int sq_auth_list(cr_store *s, struct cr_auth_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_AUTH_LIST, NULL, &AUTH_ROW, (void **)out, n);
}

static int sq_auth_delete(cr_store *s, const char *id, int64_t now) {
  return change_one(sqs(s), ST_AUTH_DELETE, id, 1, now, "authorization");
}

static int sq_auth_health_record(cr_store *s, const char *auth_id,
                                 int64_t at_ms, int status,
                                 const char *reason) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_HEALTH_INSERT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, at_ms);
  cr__sq_bind_str(st, 3, health_names[status]);
  cr__sq_bind_str(st, 4, reason);
  return cr__sq_step_done(q, st);
}

static int health_rows(struct sq_store *q, const char *auth_id, size_t limit,
                       struct cr_health_rec **out, size_t *n) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_HEALTH_HISTORY, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
  return cr__sq_collect(q, st, &HEALTH_ROW, limit < 16 ? limit : 16,
                        (void **)out, n);
}

static int sq_auth_health_latest(cr_store *s, const char *auth_id,
                                 struct cr_health_rec *out) {
  struct sq_store *q = sqs(s);
  struct cr_health_rec *rows = NULL;
  size_t n = 0;
  int rc = health_rows(q, auth_id, 1, &rows, &n);
  if (rc != 0)
    return rc;
  if (n == 0) {
    cr__store_set_error(s, "no health check recorded for '%s'", auth_id);
    return CR_ENOENT;
  }
  *out = rows[0];
  cr__free(rows);
  return 0;
}

static int sq_auth_health_history(cr_store *s, const char *auth_id,
                                  size_t limit, struct cr_health_rec **out,
                                  size_t *n) {
  return health_rows(sqs(s), auth_id, limit, out, n);
}

/* ---- Works --------------------------------------------------------------- */

static int sq_work_upsert(cr_store *s, const struct cr_work_rec *rec,
                          int64_t now, int *changed) {
  return upsert(sqs(s), ST_WORK_STATE, write_work, rec, rec->id,
                rec->config_hash, now, changed);
}

static int sq_work_get(cr_store *s, const char *id, struct cr_work_rec **out) {
  return cr__sq_get_by(sqs(s), ST_WORK_GET, id, &WORK_ROW, (void **)out,
                       "work");
}

static int sq_work_list(cr_store *s, struct cr_work_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_WORK_LIST, NULL, &WORK_ROW, (void **)out, n);
}

static int sq_work_delete(cr_store *s, const char *id, int64_t now) {
  return change_one(sqs(s), ST_WORK_DELETE, id, 1, now, "work");
}

static int sq_work_set_next_run(cr_store *s, const char *id, int64_t at_ms) {
  return change_one(sqs(s), ST_WORK_NEXT_RUN, id, 1, at_ms, "work");
}

/* ---- Events -------------------------------------------------------------- */

static int sq_event_append(cr_store *s, const struct cr_event_rec *in,
                           int64_t at, int64_t *id_out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EVENT_APPEND, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, at);
  cr__sq_bind_str(st, 2, in->subject_type);
  cr__sq_bind_str(st, 3, in->subject_id);
  cr__sq_bind_str(st, 4, in->verb);
  cr__sq_bind_str(st, 5, in->actor);
  cr__sq_bind_str(st, 6, in->data_json);
  rc = cr__sq_step_done(q, st);
  if (rc == 0)
    *id_out = sqlite3_last_insert_rowid(q->db);
  return rc;
}

/* The statement for a filter's shape: which of subject type, subject id and
 * since are set, and how many verbs. */
static int evq_stmt(struct sq_store *q, const struct cr_event_filter *f,
                    sqlite3_stmt **out) {
  int key = 1 | (f->subject_type != NULL) << 1 | (f->subject_id != NULL) << 2 |
            (f->since_ms > 0) << 3 | (int)f->nverbs << 4;
  for (int i = 0; i < EVQ_CACHE; i++)
    if (q->evq[i].key == key) {
      *out = q->evq[i].stmt;
      return 0;
    }
  char sql[512 + 2 * CR_EVENT_FILTER_MAX_VERBS];
  size_t len = (size_t)snprintf(sql, sizeof sql,
                                "SELECT " EVENT_COLS " FROM events WHERE id > ?"
                                "%s%s%s",
                                f->subject_type ? " AND subject_type = ?" : "",
                                f->subject_id ? " AND subject_id = ?" : "",
                                f->since_ms > 0 ? " AND at >= ?" : "");
  if (f->nverbs > 0) {
    len += (size_t)snprintf(sql + len, sizeof sql - len, " AND verb IN (?");
    for (size_t i = 1; i < f->nverbs; i++)
      len += (size_t)snprintf(sql + len, sizeof sql - len, ",?");
    len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
  }
  snprintf(sql + len, sizeof sql - len, " ORDER BY id LIMIT ?");
  sqlite3_stmt *st = NULL;
  int rc =
      sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
  if (rc != SQLITE_OK)
    return cr__sq_fail(q, rc);
  unsigned slot = q->evq_next++ % EVQ_CACHE;
  sqlite3_finalize(q->evq[slot].stmt);
  q->evq[slot].key = key;
  q->evq[slot].stmt = st;
  *out = st;
  return 0;
}

static int sq_event_query(cr_store *s, const struct cr_event_filter *f,
                          struct cr_event_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = evq_stmt(q, f, &st);
  if (rc != 0)
    return rc;
  int i = 1;
  sqlite3_bind_int64(st, i++, f->after_id);
  if (f->subject_type != NULL)
    cr__sq_bind_str(st, i++, f->subject_type);
  if (f->subject_id != NULL)
    cr__sq_bind_str(st, i++, f->subject_id);
  if (f->since_ms > 0)
    sqlite3_bind_int64(st, i++, f->since_ms);
  for (size_t v = 0; v < f->nverbs; v++)
    cr__sq_bind_str(st, i++, f->verbs[v]);
  sqlite3_bind_int64(st, i, (sqlite3_int64)f->limit);
  return cr__sq_collect(q, st, &EVENT_ROW, f->limit < 64 ? f->limit : 64,
                        (void **)out, n);
}

/* Runs a cached statement binding ?1 = v; *changes (may be NULL) gets the
 * number of rows it changed. */
static int run_int(struct sq_store *q, enum stmt_id id, int64_t v,
                   int64_t *changes) {
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, v);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && changes != NULL)
    *changes = sqlite3_changes64(q->db);
  return rc;
}

static int sq_event_prune(cr_store *s, int64_t before_ms, int64_t *deleted) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  int64_t n = 0;
  rc = run_int(q, ST_OUTBOX_PRUNE, before_ms, NULL);
  if (rc == 0)
    rc = run_int(q, ST_ATTEMPT_PRUNE, before_ms, NULL);
  if (rc == 0)
    rc = run_int(q, ST_EVENT_PRUNE, before_ms, &n);
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *deleted = n;
  return rc;
}

/* ---- Metrics ------------------------------------------------------------- */

static int sq_metrics_add(cr_store *s, const char *auth_id,
                          int64_t bucket_start, int64_t requests,
                          int64_t errors) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_METRICS_ADD, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, bucket_start);
  sqlite3_bind_int64(st, 3, requests);
  sqlite3_bind_int64(st, 4, errors);
  return cr__sq_step_done(q, st);
}

static int sq_metrics_query(cr_store *s, const char *auth_id, int granularity,
                            int64_t from_ms, int64_t to_ms,
                            struct cr_metric_point **out, size_t *n) {
  struct sq_store *q = sqs(s);
  static const enum stmt_id by_gran[][2] = {
      {ST_MQ_HOUR_AUTH, ST_MQ_HOUR_ALL},
      {ST_MQ_DAY_AUTH, ST_MQ_DAY_ALL},
      {ST_MQ_WEEK_AUTH, ST_MQ_WEEK_ALL},
      {ST_MQ_MONTH_AUTH, ST_MQ_MONTH_ALL},
  };
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, by_gran[granularity][auth_id == NULL], &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, from_ms);
  sqlite3_bind_int64(st, 3, to_ms);
  return cr__sq_collect(q, st, &POINT_ROW, 32, (void **)out, n);
}

/* ---- Subscriptions ------------------------------------------------------- */

static int sq_sub_upsert(cr_store *s, const struct cr_sub_rec *rec, int64_t now,
                         int *changed) {
  return upsert(sqs(s), ST_SUB_STATE, write_sub, rec, rec->id, rec->config_hash,
                now, changed);
}

static int sq_sub_get(cr_store *s, const char *id, struct cr_sub_rec **out) {
  return cr__sq_get_by(sqs(s), ST_SUB_GET, id, &SUB_ROW, (void **)out,
                       "subscription");
}

static int sq_sub_list(cr_store *s, struct cr_sub_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_SUB_LIST, NULL, &SUB_ROW, (void **)out, n);
}

static int sq_sub_delete(cr_store *s, const char *id) {
  return change_one(sqs(s), ST_SUB_DELETE, id, 0, 0, "subscription");
}

static int sq_counts(cr_store *s, struct cr_store_counts *out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_COUNTS, &st);
  if (rc != 0)
    return rc;
  int64_t *const f[] = {
      &out->authorizations, &out->auth_health,     &out->works,
      &out->executions,     &out->events,          &out->runners,
      &out->sync_states,    &out->metrics_buckets, &out->subscriptions,
      &out->outbox,         &out->outbox_pending,  &out->delivery_attempts};
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    for (int i = 0; i < (int)(sizeof f / sizeof f[0]); i++)
      *f[i] = sqlite3_column_int64(st, i);
  else
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}
/* ---- Rotated credentials --------------------------------------------------
 * Stored as scheme 'plain': the JSON text itself in blob. A codec that
 * encrypts would write another scheme and its key id. */

static int sq_auth_credentials_set(cr_store *s, const char *auth_id,
                                   const char *config_hash,
                                   const char *credentials_json, int64_t now) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_CRED_IS_OBJECT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, credentials_json);
  int64_t ok = 0;
  rc = cr__sq_step_int(q, st, &ok, NULL);
  if (rc == 0 && !ok) {
    cr__store_set_error(s, "credentials of '%s' are not a JSON object",
                        auth_id);
    rc = CR_EINVAL;
  }
  if (rc == 0)
    rc = cr__sq_prep(q, ST_CRED_SET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sq_bind_str(st, 2, config_hash);
  sqlite3_bind_blob(st, 3, credentials_json, (int)strlen(credentials_json),
                    SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  return cr__sq_step_done(q, st);
}

/* Copies the 'plain' blob of the current row of st into *out. */
static int cred_decode(struct sq_store *q, sqlite3_stmt *st, char **out) {
  const char *scheme = (const char *)sqlite3_column_text(st, 0);
  if (scheme == NULL || strcmp(scheme, "plain") != 0) {
    cr__store_set_error(&q->base,
                        "credentials stored with scheme '%s' cannot be "
                        "decoded by this build",
                        scheme != NULL ? scheme : "?");
    return CR_ENOTSUP;
  }
  const void *blob = sqlite3_column_blob(st, 1);
  int len = sqlite3_column_bytes(st, 1);
  char *copy = cr__malloc((size_t)len + 1);
  if (copy == NULL)
    return cr__sq_nomem(q);
  if (len > 0)
    memcpy(copy, blob, (size_t)len);
  copy[len] = '\0';
  *out = copy;
  return 0;
}

static int sq_auth_credentials_get(cr_store *s, const char *auth_id,
                                   const char *config_hash, char **json_out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_CRED_GET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, auth_id);
  cr__sq_bind_str(st, 2, config_hash);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    rc = cred_decode(q, st, json_out);
  else if (src == SQLITE_DONE)
    rc = cr__sq_not_found(q, "credentials for the current configuration of",
                          auth_id);
  else
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

/* ---- Opening, versions, closing ------------------------------------------ */

/* Runs sql on a new statement and stores the first column of the first row;
 * CR_ENOENT when there is no row. */
static int query_int(struct sq_store *q, const char *sql, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cr__sq_fail(q, rc);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  rc = src == SQLITE_ROW    ? 0
       : src == SQLITE_DONE ? CR_ENOENT
                            : cr__sq_fail(q, src);
  sqlite3_finalize(st);
  return rc;
}

static int exec(struct sq_store *q, const char *sql) {
  int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : cr__sq_fail(q, rc);
}

/* The schema version (0 for an empty database). CR_ESTORE when the database
 * has tables but no migration table: not a connrun database. */
static int read_version(struct sq_store *q, int *version) {
  int64_t has = 0, tables = 0, v = 0;
  int rc = query_int(q,
                     "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                     "AND name = 'schema_migrations'",
                     &has);
  if (rc == 0 && !has)
    rc = query_int(q, "SELECT count(*) FROM sqlite_master", &tables);
  if (rc == 0 && !has && tables > 0) {
    cr__store_set_error(&q->base, "not a connrun database (no "
                                  "schema_migrations table)");
    return CR_ESTORE;
  }
  if (rc == 0 && has)
    rc = query_int(q,
                   "SELECT COALESCE(MAX(version), 0) FROM "
                   "schema_migrations",
                   &v);
  *version = (int)v;
  return rc;
}

static int sq_schema_version(cr_store *s, int *out) {
  return read_version(sqs(s), out);
}

static int too_new(struct sq_store *q, const char *path, int version) {
  const char *base = strrchr(path, '/');
  cr__store_set_error(&q->base,
                      "%s schema version %d is newer than this build (%d); "
                      "upgrade connrun",
                      base != NULL ? base + 1 : path, version, LATEST_VERSION);
  return CR_ESCHEMAVER;
}

/* Applies one migration (to version cur + 1) unless another process did. */
static int migrate_step(struct sq_store *q, const char *path, int target,
                        int *reached) {
  int rc = exec(q, "BEGIN IMMEDIATE");
  if (rc != 0)
    return rc;
  int cur = 0;
  rc = read_version(q, &cur);
  if (rc == 0 && cur > LATEST_VERSION)
    rc = too_new(q, path, cur);
  *reached = cur;
  if (rc == 0 && cur < target) {
    char sql[128];
    snprintf(sql, sizeof sql,
             "INSERT INTO schema_migrations (version, applied_at) "
             "VALUES (%d, %lld)",
             cur + 1, (long long)cr__now_ms());
    rc = exec(q, migrations[cur]);
    if (rc == 0)
      rc = exec(q, sql);
    if (rc != 0 && rc != CR_ENOMEM)
      cr__store_set_error(&q->base,
                          "migration to schema version %d failed: "
                          "%s",
                          cur + 1, sqlite3_errmsg(q->db));
    *reached = cur + 1;
  }
  if (rc == 0)
    rc = exec(q, "COMMIT");
  if (rc != 0 && !sqlite3_get_autocommit(q->db))
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/* Takes the write lock only when a migration is due, so opening an up to
 * date database never waits for another connection's transaction. */
static int migrate(struct sq_store *q, const char *path, int target) {
  for (;;) {
    int cur = 0, reached = 0;
    int rc = read_version(q, &cur);
    if (rc != 0 || cur >= target)
      return rc;
    rc = migrate_step(q, path, target, &reached);
    if (rc != 0 || reached >= target)
      return rc;
  }
}

/* journal_mode=WAL answers with the mode in effect. */
static int set_wal(struct sq_store *q) {
  sqlite3_stmt *st = NULL;
  int rc =
      sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cr__sq_fail(q, rc);
  int src = sqlite3_step(st);
  const char *mode =
      src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
  rc = 0;
  if (src != SQLITE_ROW)
    rc = cr__sq_fail(q, src);
  else if (mode == NULL || sqlite3_stricmp(mode, "wal") != 0) {
    cr__store_set_error(&q->base,
                        "cannot switch to WAL mode (journal mode "
                        "is %s)",
                        mode != NULL ? mode : "unknown");
    rc = CR_ESTORE;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Busy handler: SQLite's own busy_timeout sleeps in steps of milliseconds,
 * which is most of a transaction's cost when the runner threads and the
 * loop take turns on the write lock. Wait in short, growing steps instead
 * (50 us doubling to 2 ms), up to CR_STORE_BUSY_TIMEOUT_MS in all. */
static int busy_wait(void *ud, int count) {
  (void)ud;
  static const long steps_us[] = {50, 100, 200, 400, 800, 1600, 2000};
  const int nsteps = (int)(sizeof steps_us / sizeof steps_us[0]);
  long us = steps_us[count < nsteps ? count : nsteps - 1];
  int64_t waited = 0;
  for (int i = 0; i < count && i < nsteps; i++)
    waited += steps_us[i];
  if (count >= nsteps)
    waited += (int64_t)(count - nsteps) * steps_us[nsteps - 1];
  if (waited / 1000 >= CR_STORE_BUSY_TIMEOUT_MS)
    return 0;
  struct timespec ts = {0, us * 1000L};
  nanosleep(&ts, NULL);
  return 1;
}

static int configure(struct sq_store *q, const char *path, int target) {
  sqlite3_extended_result_codes(q->db, 1);
  sqlite3_busy_handler(q->db, busy_wait, NULL);
  int rc = exec(q, "PRAGMA foreign_keys = ON");
  int version = 0;
  /* Check the version before anything writes to the file. */
  if (rc == 0)
    rc = read_version(q, &version);
  if (rc == 0 && version > LATEST_VERSION)
    return too_new(q, path, version);
  if (rc == 0 && strcmp(path, ":memory:") != 0)
    rc = set_wal(q);
  if (rc == 0)
    rc = exec(q, "PRAGMA synchronous = NORMAL");
  /* Checkpoint every ~16 MiB of WAL instead of 4 MiB: the same pages are
   * copied, with a quarter of the fsyncs on the writers' path. */
  if (rc == 0)
    rc = exec(q, "PRAGMA wal_autocheckpoint = 4000");
  if (rc == 0)
    rc = migrate(q, path, target);
  return rc;
}

static void sq_close(cr_store *s) {
  struct sq_store *q = sqs(s);
  for (int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(q->stmt[i]);
  for (int i = 0; i < EVQ_CACHE; i++)
    sqlite3_finalize(q->evq[i].stmt);
  sqlite3_close_v2(q->db); /* rolls back an open transaction */
  if (q->wl_held)
    cr__wlock_drop(q->wl);
  cr__wlock_put(q->wl);
  cr__free(q);
}

/* Before SQLite's first use in the process: no memory statistics (connrun
 * reads none, and keeping them takes a process-wide mutex on every SQLite
 * allocation, shared by all store threads). Refused (SQLITE_MISUSE, kept
 * as is) if the process already used SQLite. */
static void sqlite_setup(void) { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

int cr__store_sqlite_open_at_version(const char *path, int version,
                                     cr_store **out, char *errbuf,
                                     size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (path == NULL || out == NULL || version < 0 || version > LATEST_VERSION) {
    cr__store_errbuf(errbuf, errlen, "invalid store path or version");
    return CR_EINVAL;
  }
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, sqlite_setup);
  struct sq_store *q = cr__calloc(1, sizeof *q);
  if (q == NULL) {
    cr__store_errbuf(errbuf, errlen, "out of memory");
    return CR_ENOMEM;
  }
  q->base.ops = &sqlite_ops;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
              SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(path, &q->db, flags, NULL);
  if (rc != SQLITE_OK) {
    cr__store_errbuf(errbuf, errlen, "cannot open %s: %s", path,
                     q->db != NULL ? sqlite3_errmsg(q->db)
                                   : sqlite3_errstr(rc));
    rc = rc == SQLITE_NOMEM ? CR_ENOMEM : CR_ESTORE;
    goto fail;
  }
  rc = configure(q, path, version);
  if (rc == 0 && strcmp(path, ":memory:") != 0 &&
      (rc = cr__wlock_get(path, &q->wl)) != 0) /* NULL: SQLite's alone */
    cr__store_set_error(&q->base, "out of memory");
  if (rc != 0) {
    if (rc == CR_ESCHEMAVER || rc == CR_ENOMEM)
      cr__store_errbuf(errbuf, errlen, "%s", q->base.last_error);
    else
      cr__store_errbuf(errbuf, errlen, "%s: %s", path, q->base.last_error);
    goto fail;
  }
  *out = &q->base;
  return 0;
fail:
  sq_close(&q->base);
  return rc;
}

int cr__store_sqlite_open(const char *path, cr_store **out, char *errbuf,
                          size_t errlen) {
  return cr__store_sqlite_open_at_version(path, LATEST_VERSION, out, errbuf,
                                          errlen);
}

int cr__store_sqlite_latest_version(void) { return LATEST_VERSION; }

/* ---- Test hooks ---------------------------------------------------------- */

static struct sq_store *as_sqlite(cr_store *s) {
  return s != NULL && s->ops == &sqlite_ops ? sqs(s) : NULL;
}

int cr__store_sqlite_exec(cr_store *s, const char *sql) {
  struct sq_store *q = as_sqlite(s);
  if (q == NULL || sql == NULL)
    return s == NULL || sql == NULL ? CR_EINVAL : CR_ENOTSUP;
  return exec(q, sql);
}

int cr__store_sqlite_query_int(cr_store *s, const char *sql, int64_t *out) {
  struct sq_store *q = as_sqlite(s);
  if (q == NULL || sql == NULL || out == NULL)
    return s == NULL || sql == NULL || out == NULL ? CR_EINVAL : CR_ENOTSUP;
  *out = 0;
  return query_int(q, sql, out);
}

int cr__store_sqlite_query_text(cr_store *s, const char *sql, char *buf,
                                size_t len) {
  struct sq_store *q = as_sqlite(s);
  if (q == NULL || sql == NULL || buf == NULL || len == 0)
    return q == NULL && s != NULL ? CR_ENOTSUP : CR_EINVAL;
  buf[0] = '\0';
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return cr__sq_fail(q, rc);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    snprintf(buf, len, "%s", t != NULL ? t : "");
  }
  rc = src == SQLITE_ROW    ? 0
       : src == SQLITE_DONE ? CR_ENOENT
                            : cr__sq_fail(q, src);
  sqlite3_finalize(st);
  return rc;
}

/* ---- The function table -------------------------------------------------- */

static const struct cr_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .savepoint_end = sq_savepoint_end,
    .auth_upsert = sq_auth_upsert,
    .auth_get = sq_auth_get,
    .auth_list = sq_auth_list,
    .auth_delete = sq_auth_delete,
    .auth_health_record = sq_auth_health_record,
    .auth_health_latest = sq_auth_health_latest,
    .auth_health_history = sq_auth_health_history,
    .work_upsert = sq_work_upsert,
    .work_get = sq_work_get,
    .work_list = sq_work_list,
    .work_delete = sq_work_delete,
    .work_set_next_run = sq_work_set_next_run,
    .event_append = sq_event_append,
    .event_query = sq_event_query,
    .event_prune = sq_event_prune,
    .metrics_add = sq_metrics_add,
    .metrics_query = sq_metrics_query,
    .sub_upsert = sq_sub_upsert,
    .sub_get = sq_sub_get,
    .sub_list = sq_sub_list,
    .sub_delete = sq_sub_delete,
    .counts = sq_counts,
    .exec_create = cr__sq_exec_create,
    .exec_get = cr__sq_exec_get,
    .exec_claim = cr__sq_exec_claim,
    .exec_claim_one = cr__sq_exec_claim_one,
    .exec_transition = cr__sq_exec_transition,
    .exec_renew = cr__sq_exec_renew,
    .exec_expire = cr__sq_exec_expire,
    .exec_list = cr__sq_exec_list,
    .exec_transitions = cr__sq_exec_transitions,
    .exec_retry = cr__sq_exec_retry,
    .exec_release_runner = cr__sq_exec_release_runner,
    .exec_work_open = cr__sq_exec_work_open,
    .work_mark_started = cr__sq_work_mark_started,
    .sync_state_commit = cr__sq_sync_state_commit,
    .sync_state_get = cr__sq_sync_state_get,
    .sync_state_history = cr__sq_sync_state_history,
    .sync_state_exec_records = cr__sq_sync_state_exec_records,
    .auth_credentials_set = sq_auth_credentials_set,
    .auth_credentials_get = sq_auth_credentials_get,
    .sub_set_cursor = cr__sq_sub_set_cursor,
    .batch_get = cr__sq_batch_get,
    .batch_open = cr__sq_batch_open,
    .batch_record = cr__sq_batch_record,
    .batch_note_dead = cr__sq_batch_note_dead,
    .instance_beat = cr__sq_instance_beat,
    .instance_list = cr__sq_instance_list,
    .duty_acquire = cr__sq_duty_acquire,
    .duty_release = cr__sq_duty_release,
    .duty_list = cr__sq_duty_list,
    .sub_disable = cr__sq_sub_disable,
    .sub_stats = cr__sq_sub_stats,
    .sub_attempts = cr__sq_sub_attempts,
    .event_last_id = cr__sq_event_last_id,
    .stats = cr__sq_stats,
    .api_object_put = cr__sq_api_object_put,
    .api_object_list = cr__sq_api_object_list,
    .api_object_delete = cr__sq_api_object_delete,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .runner_add = cr__sq_runner_add,
    .runner_get = cr__sq_runner_get,
    .runner_list = cr__sq_runner_list,
    .runner_checkin = cr__sq_runner_checkin,
    .runner_revoke = cr__sq_runner_revoke,
    .runner_claim_note = cr__sq_runner_claim_note,
    .runner_mark_offline = cr__sq_runner_mark_offline,
    .exec_report_get = cr__sq_exec_report_get,
    .exec_report_set = cr__sq_exec_report_set,
    .exec_log_add = cr__sq_exec_log_add,
    .exec_log_list = cr__sq_exec_log_list,
    .exec_retry_due = cr__sq_exec_retry_due,
    .idem_get = cr__sq_idem_get,
    .idem_put = cr__sq_idem_put,
    .outbox_enqueue = cr__sq_outbox_enqueue,
    .outbox_due = cr__sq_outbox_due,
    .outbox_next_due = cr__sq_outbox_next_due,
    .outbox_record = cr__sq_outbox_record,
    .outbox_record_many = cr__sq_outbox_record_many,
    .outbox_replay = cr__sq_outbox_replay,
};
