/* store_sql_open.c: opening the SQL store on SQLite or PostgreSQL: the
 * SQLite schema and its migrations (PostgreSQL's schema is in
 * store_sql_pg.c), schema versions, SQLite's connection settings (WAL,
 * synchronous=NORMAL, foreign keys), closing, and the test hooks that run
 * raw SQL.
 *
 * Schema versions live in the table schema_migrations (one row per applied
 * migration with the time it was applied); the version is its largest
 * value. Each migration runs in its own write transaction (BEGIN IMMEDIATE;
 * on PostgreSQL under the store's write lock) and re-reads the version
 * inside it, so two processes opening one database at once apply each
 * migration exactly once. Migrations are append-only: never edit a released
 * one, add a new version. A new PostgreSQL database gets the latest schema
 * at once; later versions add a migration to both lists. */
#include "store/store_sql.h"

#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* Version 14: the API objects' generation (cr_store_api_generation), one
 * row that every change to api_objects raises. */
static const char MIGRATION_14[] =
  "CREATE TABLE api_generation ("
  "  one INTEGER PRIMARY KEY CHECK (one = 1),"
  "  value INTEGER NOT NULL);"
  "INSERT INTO api_generation VALUES (1, 0);";

/* Version 15: named cursors (cr_store_cursor_get), such as the alert
 * rules' last evaluated event, kept for the next holder of their duty. */
static const char MIGRATION_15[] =
  "CREATE TABLE cursors ("
  "  name TEXT PRIMARY KEY,"
  "  value INTEGER NOT NULL) WITHOUT ROWID;";

/* Version 16: the works the daemon's own runner may run, so its probe of
 * them is an index probe (nearly empty where remote runners do the work). */
static const char MIGRATION_16[] = CR__SQ_WORKS_LOCAL_INDEX;

static const char *const migrations[] = {
    MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4, MIGRATION_5,
    MIGRATION_6, MIGRATION_7, MIGRATION_8, MIGRATION_9, MIGRATION_10,
    MIGRATION_11, MIGRATION_12, MIGRATION_13, MIGRATION_14, MIGRATION_15,
    MIGRATION_16};
#define LATEST_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
// clang-format on

/* ---- Opening, versions, closing ------------------------------------------ */

static int is_pg(const struct sq_store *q) {
  return q->db->drv->dialect == CR_SQL_PG;
}

/* Runs sql on a new statement and stores the first column of the first row;
 * CR_ENOENT when there is no row. */
static int query_int(struct sq_store *q, const char *sql, int64_t *out) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sql_prepare(q->db, sql, 0, &st);
  if (rc != 0)
    return cr__sq_fail(q, rc);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW)
    *out = cr__sql_col_i64(st, 0);
  rc = src == CR_SQL_ROW    ? 0
       : src == CR_SQL_DONE ? CR_ENOENT
                            : cr__sq_fail(q, src);
  cr__sql_finalize(st);
  return rc;
}

static int exec(struct sq_store *q, const char *sql) {
  int rc = cr__sql_exec(q->db, sql);
  return rc == 0 ? 0 : cr__sq_fail(q, rc);
}

/* The schema version (0 for an empty database). CR_ESTORE when the database
 * has tables but no migration table: not a connrun database. */
static int read_version(struct sq_store *q, int *version) {
  int64_t has = 0, tables = 0, v = 0;
  int rc = query_int(q,
                     is_pg(q) ? "SELECT count(*) FROM pg_tables WHERE "
                                "schemaname = current_schema() AND "
                                "tablename = 'schema_migrations'"
                              : "SELECT count(*) FROM sqlite_master WHERE "
                                "type = 'table' AND name = "
                                "'schema_migrations'",
                     &has);
  if (rc == 0 && !has)
    rc = query_int(q,
                   is_pg(q) ? "SELECT count(*) FROM pg_tables WHERE "
                              "schemaname = current_schema()"
                            : "SELECT count(*) FROM sqlite_master",
                   &tables);
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

int cr__sq_schema_version(cr_store *s, int *out) {
  return read_version(sqs(s), out);
}

static int too_new(struct sq_store *q, const char *name, int version) {
  const char *base = strrchr(name, '/');
  cr__store_set_error(&q->base,
                      "%s schema version %d is newer than this build (%d); "
                      "upgrade connrun",
                      base != NULL ? base + 1 : name, version, LATEST_VERSION);
  return CR_ESCHEMAVER;
}

/* The SQL taking the schema from version cur, and the version it reaches. */
static const char *migration(const struct sq_store *q, int cur, int *next) {
  if (is_pg(q) && cur == 0) {
    *next = LATEST_VERSION;
    return cr__sq_pg_schema;
  }
  *next = cur + 1;
  return is_pg(q) ? cr__sq_pg_migrations[cur - CR__SQ_PG_FIRST_VERSION]
                  : migrations[cur];
}

/* Applies one migration unless another process did. */
static int migrate_step(struct sq_store *q, const char *name, int target,
                        int *reached) {
  int rc = exec(q, cr__sq_stmt_sql(q, ST_BEGIN));
  if (rc != 0)
    return rc;
  int cur = 0;
  rc = read_version(q, &cur);
  if (rc == 0 && cur > LATEST_VERSION)
    rc = too_new(q, name, cur);
  *reached = cur;
  if (rc == 0 && cur < target) {
    int next = 0;
    const char *sql = migration(q, cur, &next);
    char ins[128];
    snprintf(ins, sizeof ins,
             "INSERT INTO schema_migrations (version, applied_at) "
             "VALUES (%d, %lld)",
             next, (long long)cr__now_ms());
    rc = exec(q, sql);
    if (rc == 0)
      rc = exec(q, ins);
    if (rc != 0 && rc != CR_ENOMEM)
      cr__store_set_error(&q->base,
                          "migration to schema version %d failed: "
                          "%s",
                          next, cr__sql_errmsg(q->db));
    *reached = next;
  }
  if (rc == 0)
    rc = exec(q, "COMMIT");
  if (rc != 0 && cr__sql_in_txn(q->db))
    cr__sql_exec(q->db, "ROLLBACK");
  return rc;
}

/* Takes the write lock only when a migration is due, so opening an up to
 * date database never waits for another connection's transaction. */
static int migrate(struct sq_store *q, const char *name, int target) {
  for (;;) {
    int cur = 0, reached = 0;
    int rc = read_version(q, &cur);
    if (rc != 0 || cur >= target)
      return rc;
    rc = migrate_step(q, name, target, &reached);
    if (rc != 0 || reached >= target)
      return rc;
  }
}

/* journal_mode=WAL answers with the mode in effect. */
static int set_wal(struct sq_store *q) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sql_prepare(q->db, "PRAGMA journal_mode = WAL", 0, &st);
  if (rc != 0)
    return cr__sq_fail(q, rc);
  int src = cr__sql_step(st);
  const char *mode = src == CR_SQL_ROW ? cr__sql_col_text(st, 0) : NULL;
  rc = 0;
  if (src != CR_SQL_ROW)
    rc = cr__sq_fail(q, src);
  else if (mode == NULL || strcasecmp(mode, "wal") != 0) {
    cr__store_set_error(&q->base,
                        "cannot switch to WAL mode (journal mode "
                        "is %s)",
                        mode != NULL ? mode : "unknown");
    rc = CR_ESTORE;
  }
  cr__sql_finalize(st);
  return rc;
}

/* SQLite's settings: foreign keys, WAL, synchronous=NORMAL, temporary
 * storage in memory. */
static int configure_sqlite(struct sq_store *q, const char *path) {
  int rc = exec(q, "PRAGMA foreign_keys = ON");
  int version = 0;
  /* Check the version before anything writes to the file. */
  if (rc == 0)
    rc = read_version(q, &version);
  if (rc == 0 && version > LATEST_VERSION)
    return too_new(q, path, version);
  int wal = strcmp(path, ":memory:") != 0;
  if (rc == 0 && wal)
    rc = set_wal(q);
  if (rc == 0)
    rc = exec(q, "PRAGMA synchronous = NORMAL");
  /* Checkpoint every ~16 MiB of WAL instead of 4 MiB: the same pages are
   * copied, with a quarter of the fsyncs on the writers' path. */
  if (rc == 0)
    rc = exec(q, "PRAGMA wal_autocheckpoint = 4000");
  /* Savepoints (every operation inside a transaction has one) journal the
   * pages they change; past 64 KiB SQLite spills that journal to a temporary
   * file, a pwrite per page. In memory it costs the transaction's size. */
  if (rc == 0)
    rc = exec(q, "PRAGMA temp_store = MEMORY");
  /* A file's readers may keep snapshots (sq_read_keep): the process's
   * commits, counted by the driver, tell whether one is still current. */
  q->counted = rc == 0 && wal;
  return rc;
}

void cr__sq_close(cr_store *s) {
  struct sq_store *q = sqs(s);
  for (int i = 0; i < ST_COUNT; i++)
    cr__sql_finalize(q->stmt[i]);
  for (int i = 0; i < EVQ_CACHE; i++)
    cr__sql_finalize(q->evq[i].stmt);
  cr__sql_close(q->db); /* rolls back an open transaction */
  if (q->wl_held)
    cr__wlock_drop(q->wl);
  cr__wlock_put(q->wl);
  cr__free(q);
}

int cr__sq_open_on(cr_sql *db, const char *name, int target, cr_store **out,
                   char *errbuf, size_t errlen) {
  struct sq_store *q = cr__calloc(1, sizeof *q);
  if (q == NULL) {
    cr__sql_close(db);
    cr__store_errbuf(errbuf, errlen, "out of memory");
    return CR_ENOMEM;
  }
  q->base.ops = &cr__sq_ops;
  q->db = db;
  int rc = 0, lite = !is_pg(q);
  q->base.shared = !lite;
  if (lite)
    rc = configure_sqlite(q, name);
  if (rc == 0)
    rc = migrate(q, name, target);
  if (rc == 0 && lite && strcmp(name, ":memory:") != 0 &&
      (rc = cr__wlock_get(name, &q->wl)) != 0) /* NULL: SQLite's alone */
    cr__store_set_error(&q->base, "out of memory");
  if (rc != 0) {
    if (rc == CR_ESCHEMAVER || rc == CR_ENOMEM)
      cr__store_errbuf(errbuf, errlen, "%s", q->base.last_error);
    else
      cr__store_errbuf(errbuf, errlen, "%s: %s", name, q->base.last_error);
    cr__sq_close(&q->base);
    return rc;
  }
  *out = &q->base;
  return 0;
}

int cr__store_sqlite_open_at_version(const char *path, int version,
                                     cr_store **out, char *errbuf,
                                     size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (path == NULL || out == NULL || version < 0 || version > LATEST_VERSION) {
    cr__store_errbuf(errbuf, errlen, "invalid store path or version");
    return CR_EINVAL;
  }
  cr_sql *db = NULL;
  int rc = cr__sql_sqlite_open(path, &db, errbuf, errlen);
  if (rc != 0)
    return rc;
  return cr__sq_open_on(db, path, version, out, errbuf, errlen);
}

int cr__store_sqlite_open(const char *path, cr_store **out, char *errbuf,
                          size_t errlen) {
  return cr__store_sqlite_open_at_version(path, LATEST_VERSION, out, errbuf,
                                          errlen);
}

int cr__store_sqlite_latest_version(void) { return LATEST_VERSION; }

int cr__store_pg_open(const char *url, cr_store **out, char *errbuf,
                      size_t errlen) {
  if (out != NULL)
    *out = NULL;
  if (url == NULL || out == NULL) {
    cr__store_errbuf(errbuf, errlen, "no PostgreSQL URL given");
    return CR_EINVAL;
  }
  cr_sql *db = NULL;
  int rc = cr__sql_pg_open(url, cr__sq_pg_sql[ST_BEGIN], &db, errbuf, errlen);
  if (rc != 0)
    return rc;
  return cr__sq_open_on(db, "PostgreSQL", LATEST_VERSION, out, errbuf, errlen);
}

/* ---- Test hooks ---------------------------------------------------------- */

static struct sq_store *as_sql(cr_store *s) {
  return s != NULL && s->ops == &cr__sq_ops ? sqs(s) : NULL;
}

int cr__store_sqlite_exec(cr_store *s, const char *sql) {
  struct sq_store *q = as_sql(s);
  if (q == NULL || sql == NULL)
    return s == NULL || sql == NULL ? CR_EINVAL : CR_ENOTSUP;
  return exec(q, sql);
}

int cr__store_sqlite_query_int(cr_store *s, const char *sql, int64_t *out) {
  struct sq_store *q = as_sql(s);
  if (q == NULL || sql == NULL || out == NULL)
    return s == NULL || sql == NULL || out == NULL ? CR_EINVAL : CR_ENOTSUP;
  *out = 0;
  return query_int(q, sql, out);
}

int cr__store_sqlite_query_text(cr_store *s, const char *sql, char *buf,
                                size_t len) {
  struct sq_store *q = as_sql(s);
  if (q == NULL || sql == NULL || buf == NULL || len == 0)
    return q == NULL && s != NULL ? CR_ENOTSUP : CR_EINVAL;
  buf[0] = '\0';
  cr_sql_stmt *st = NULL;
  int rc = cr__sql_prepare(q->db, sql, 0, &st);
  if (rc != 0)
    return cr__sq_fail(q, rc);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    const char *t = cr__sql_col_text(st, 0);
    snprintf(buf, len, "%s", t != NULL ? t : "");
  }
  rc = src == CR_SQL_ROW    ? 0
       : src == CR_SQL_DONE ? CR_ENOENT
                            : cr__sq_fail(q, src);
  cr__sql_finalize(st);
  return rc;
}
