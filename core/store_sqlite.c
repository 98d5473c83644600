/* store_sqlite.c: the SQLite store backend: the schema and its migrations,
 * opening (WAL, synchronous=NORMAL, foreign keys, busy timeout), nested
 * transactions, cached prepared statements and every store operation. The
 * only file that knows SQL or SQLite.
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
 * is reset and its bindings cleared before an operation returns. */
#include "store_sqlite.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "execution.h"
#include "store_int.h"
#include "sub_filter.h"

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

static const char *const migrations[] = {MIGRATION_1, MIGRATION_2,
                                         MIGRATION_3, MIGRATION_4, MIGRATION_5,
                                         MIGRATION_6, MIGRATION_7};
#define LATEST_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ---- Statements ---------------------------------------------------------- */

#define AUTH_COLS \
  "id, name, description, provider, method, owner, config_hash, " \
  "created_at, updated_at"
#define WORK_COLS \
  "id, name, provider, authorization_id, schedule_json, destination_json, " \
  "config_json, config_hash, enabled, error_email_notifications, " \
  "max_attempts, next_run_at, created_at, updated_at"
#define EVENT_COLS \
  "id, at, seq, subject_type, subject_id, verb, actor, data_json"
#define EXEC_COLS \
  "id, work_id, state, attempt, runner_id, lease_epoch, lease_expires_at, " \
  "error_class, error, created_at, updated_at, not_before"
#define EXEC_LEASED "('pending','executing')"
#define EXEC_OPEN "('created','pending','executing')"
#define SYNC_COLS \
  "work_id, version, state_json, records, committed_at, execution_id, note"
#define SUB_COLS \
  "id, workflow, config_hash, enabled, disabled_reason, created_at, " \
  "updated_at, filter_json, cursor_event_id, failing_since"
#define UNDELIVERED "status IN ('pending','failed')"
#define OUTBOX_COLS \
  "o.subscription_id, o.event_id, o.status, o.attempts, o.next_attempt_at, " \
  "o.first_attempt_at, o.last_status, o.last_error, e.id, e.at, e.seq, " \
  "e.subject_type, e.subject_id, e.verb, e.actor, e.data_json"
#define EVENTS_SEQ \
  "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)"

/* Metrics periods from hour buckets. 1970-01-01 was a Thursday: the Monday
 * of day d is d - (d + 3) % 7. */
#define MQ_DAY "(bucket_start / 86400000) * 86400000"
#define MQ_WEEK \
  "((bucket_start / 86400000) - ((bucket_start / 86400000) + 3) % 7)" \
  " * 86400000"
#define MQ_MONTH \
  "CAST(strftime('%s', bucket_start / 1000, 'unixepoch', 'start of month')" \
  " AS INTEGER) * 1000"
#define MQ(expr, where) \
  "SELECT " expr " AS b, SUM(requests), SUM(errors) FROM metrics WHERE " \
  where "bucket_start >= ?2 AND bucket_start < ?3 GROUP BY b ORDER BY b"
#define MQ_AUTH "auth_id = ?1 AND "

#define STATEMENTS(X) \
  X(BEGIN, "BEGIN IMMEDIATE") \
  X(COMMIT, "COMMIT") \
  X(ROLLBACK, "ROLLBACK") \
  X(SAVEPOINT, "SAVEPOINT cr_op") \
  X(RELEASE, "RELEASE cr_op") \
  X(ROLLBACK_TO, "ROLLBACK TO cr_op") \
  X(AUTH_STATE, \
    "SELECT config_hash = ?2, deleted_at IS NOT NULL, created_at " \
    "FROM authorizations WHERE id = ?1") \
  X(AUTH_WRITE, \
    "INSERT INTO authorizations (" AUTH_COLS ", deleted_at) " \
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL) " \
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, " \
    "description = excluded.description, provider = excluded.provider, " \
    "method = excluded.method, owner = excluded.owner, " \
    "config_hash = excluded.config_hash, created_at = excluded.created_at, " \
    "updated_at = excluded.updated_at, deleted_at = NULL") \
  X(AUTH_GET, \
    "SELECT " AUTH_COLS " FROM authorizations " \
    "WHERE id = ?1 AND deleted_at IS NULL") \
  X(AUTH_LIST, \
    "SELECT " AUTH_COLS " FROM authorizations " \
    "WHERE deleted_at IS NULL ORDER BY id") \
  X(AUTH_DELETE, \
    "UPDATE authorizations SET deleted_at = ?2, updated_at = ?2 " \
    "WHERE id = ?1 AND deleted_at IS NULL") \
  X(HEALTH_INSERT, \
    "INSERT INTO auth_health (auth_id, checked_at, status, reason) " \
    "VALUES (?1, ?2, ?3, ?4)") \
  X(HEALTH_HISTORY, \
    "SELECT checked_at, status, reason FROM auth_health WHERE auth_id = ?1 " \
    "ORDER BY checked_at DESC, id DESC LIMIT ?2") \
  X(WORK_STATE, \
    "SELECT config_hash = ?2, deleted_at IS NOT NULL, created_at " \
    "FROM works WHERE id = ?1") \
  X(WORK_WRITE, \
    "INSERT INTO works (" WORK_COLS ", deleted_at) VALUES (?1, ?2, ?3, ?4, " \
    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, NULL) " \
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, " \
    "provider = excluded.provider, " \
    "authorization_id = excluded.authorization_id, " \
    "schedule_json = excluded.schedule_json, " \
    "destination_json = excluded.destination_json, " \
    "config_json = excluded.config_json, " \
    "config_hash = excluded.config_hash, enabled = excluded.enabled, " \
    "error_email_notifications = excluded.error_email_notifications, " \
    "max_attempts = excluded.max_attempts, " \
    "next_run_at = CASE WHEN deleted_at IS NOT NULL " \
    "THEN excluded.next_run_at " \
    "ELSE COALESCE(excluded.next_run_at, next_run_at) END, " \
    "created_at = excluded.created_at, updated_at = excluded.updated_at, " \
    "deleted_at = NULL") \
  X(WORK_GET, \
    "SELECT " WORK_COLS " FROM works WHERE id = ?1 AND deleted_at IS NULL") \
  X(WORK_LIST, \
    "SELECT " WORK_COLS " FROM works WHERE deleted_at IS NULL ORDER BY id") \
  X(WORK_DELETE, \
    "UPDATE works SET deleted_at = ?2, updated_at = ?2 " \
    "WHERE id = ?1 AND deleted_at IS NULL") \
  X(WORK_NEXT_RUN, \
    "UPDATE works SET next_run_at = ?2 WHERE id = ?1 AND deleted_at IS NULL") \
  X(EVENT_APPEND, \
    "INSERT INTO events (at, subject_type, subject_id, verb, actor, seq, " \
    "data_json) VALUES (?1, ?2, ?3, ?4, ?5, COALESCE((SELECT last_seq FROM " \
    "event_subjects WHERE subject_type = ?2 AND subject_id = ?3), 0) + 1, " \
    "?6)") \
  X(EVENT_PRUNE, \
    "DELETE FROM events WHERE at < ?1 AND id NOT IN (SELECT event_id " \
    "FROM outbox WHERE status IN ('pending','failed')) AND id <= (SELECT " \
    "COALESCE(MIN(cursor_event_id), 9223372036854775807) FROM " \
    "subscriptions WHERE enabled = 1)") \
  X(OUTBOX_PRUNE, \
    "DELETE FROM outbox WHERE status IN ('delivered','dead') AND event_id " \
    "IN (SELECT id FROM events WHERE at < ?1)") \
  X(METRICS_ADD, \
    "INSERT INTO metrics (auth_id, bucket_start, requests, errors) " \
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (auth_id, bucket_start) DO UPDATE " \
    "SET requests = requests + excluded.requests, " \
    "errors = errors + excluded.errors") \
  X(MQ_HOUR_AUTH, MQ("bucket_start", MQ_AUTH)) \
  X(MQ_HOUR_ALL, MQ("bucket_start", "")) \
  X(MQ_DAY_AUTH, MQ(MQ_DAY, MQ_AUTH)) \
  X(MQ_DAY_ALL, MQ(MQ_DAY, "")) \
  X(MQ_WEEK_AUTH, MQ(MQ_WEEK, MQ_AUTH)) \
  X(MQ_WEEK_ALL, MQ(MQ_WEEK, "")) \
  X(MQ_MONTH_AUTH, MQ(MQ_MONTH, MQ_AUTH)) \
  X(MQ_MONTH_ALL, MQ(MQ_MONTH, "")) \
  X(SUB_STATE, \
    "SELECT config_hash = ?2, 0, created_at FROM subscriptions " \
    "WHERE id = ?1") \
  X(SUB_WRITE, \
    "INSERT INTO subscriptions (id, workflow, config_hash, enabled, " \
    "disabled_reason, created_at, updated_at, filter_json, " \
    "cursor_event_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, " EVENTS_SEQ \
    ") ON CONFLICT (id) DO UPDATE SET workflow = excluded.workflow, " \
    "config_hash = excluded.config_hash, enabled = excluded.enabled, " \
    "disabled_reason = excluded.disabled_reason, " \
    "created_at = excluded.created_at, updated_at = excluded.updated_at, " \
    "filter_json = excluded.filter_json, failing_since = NULL") \
  X(SUB_DISABLE, \
    "UPDATE subscriptions SET enabled = 0, disabled_reason = ?3, " \
    "updated_at = ?2 WHERE id = ?1") \
  X(SUB_ENABLED, \
    "SELECT id, filter_json, cursor_event_id FROM subscriptions " \
    "WHERE enabled = 1 ORDER BY id") \
  X(SUB_FILTER, \
    "SELECT id, filter_json, cursor_event_id FROM subscriptions " \
    "WHERE id = ?1") \
  X(SUB_CURSOR, \
    "UPDATE subscriptions SET cursor_event_id = ?2 WHERE id = ?1 " \
    "AND cursor_event_id < ?2") \
  X(SUB_FAILING, \
    "UPDATE subscriptions SET failing_since = CASE " \
    "WHEN ?2 IN ('failed','dead') THEN COALESCE(failing_since, ?3) " \
    "WHEN ?2 = 'delivered' THEN NULL ELSE failing_since END WHERE id = ?1 " \
    "AND ((?2 IN ('failed','dead') AND failing_since IS NULL) OR " \
    "(?2 = 'delivered' AND failing_since IS NOT NULL))") \
  X(SUB_STATS, \
    "SELECT (SELECT count(*) FROM outbox WHERE subscription_id = ?1 AND " \
    UNDELIVERED "), (SELECT count(*) FROM outbox WHERE " \
    "subscription_id = ?1 AND status = 'delivered'), (SELECT count(*) " \
    "FROM outbox WHERE subscription_id = ?1 AND status = 'dead'), " \
    "(SELECT count(*) FROM delivery_attempts WHERE subscription_id = ?1 " \
    "AND at >= ?2), (SELECT count(*) FROM delivery_attempts WHERE " \
    "subscription_id = ?1 AND at >= ?2 AND http_status BETWEEN 200 AND " \
    "299), EXISTS (SELECT 1 FROM subscriptions WHERE id = ?1)") \
  X(SUB_LAST_ATTEMPT, \
    "SELECT at, http_status, error FROM delivery_attempts WHERE " \
    "subscription_id = ?1 ORDER BY at DESC, id DESC LIMIT 1") \
  X(EVENT_SCAN, \
    "SELECT id, subject_type, subject_id, verb FROM events WHERE id > ?1 " \
    "ORDER BY id LIMIT ?2") \
  X(EVENT_SCAN_SINCE, \
    "SELECT id, subject_type, subject_id, verb FROM events WHERE at >= ?1 " \
    "AND id <= ?2 ORDER BY id") \
  X(OUTBOX_INSERT, \
    "INSERT INTO outbox (subscription_id, event_id, status, attempts, " \
    "next_attempt_at) VALUES (?1, ?2, 'pending', 0, ?3) " \
    "ON CONFLICT DO NOTHING") \
  X(OUTBOX_REQUEUE, \
    "INSERT INTO outbox (subscription_id, event_id, status, attempts, " \
    "next_attempt_at) VALUES (?1, ?2, 'pending', 0, ?3) " \
    "ON CONFLICT (subscription_id, event_id) DO UPDATE SET " \
    "status = 'pending', attempts = 0, " \
    "next_attempt_at = excluded.next_attempt_at, first_attempt_at = NULL, " \
    "last_status = NULL, last_error = NULL") \
  X(OUTBOX_DUE, \
    "SELECT " OUTBOX_COLS " FROM outbox o INDEXED BY outbox_undelivered " \
    "JOIN subscriptions s " \
    "ON s.id = o.subscription_id JOIN events e ON e.id = o.event_id " \
    "WHERE o." UNDELIVERED " AND s.enabled = 1 " \
    "AND COALESCE(o.next_attempt_at, 0) <= ?1 " \
    "ORDER BY o.subscription_id, o.event_id LIMIT ?2") \
  X(OUTBOX_NEXT_DUE, \
    "SELECT MIN(COALESCE(o.next_attempt_at, 1)) FROM outbox o JOIN " \
    "subscriptions s ON s.id = o.subscription_id WHERE o." UNDELIVERED \
    " AND s.enabled = 1") \
  X(OUTBOX_SET, \
    "UPDATE outbox SET status = ?3, attempts = attempts + 1, " \
    "next_attempt_at = CASE WHEN ?3 IN ('pending','failed') THEN ?4 " \
    "ELSE NULL END, last_status = ?5, last_error = ?6, " \
    "first_attempt_at = COALESCE(first_attempt_at, ?7) " \
    "WHERE subscription_id = ?1 AND event_id = ?2") \
  X(ATTEMPT_INSERT, \
    "INSERT INTO delivery_attempts (subscription_id, event_id, at, " \
    "http_status, latency_ms, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)") \
  X(SUB_GET, "SELECT " SUB_COLS " FROM subscriptions WHERE id = ?1") \
  X(SUB_LIST, "SELECT " SUB_COLS " FROM subscriptions ORDER BY id") \
  X(SUB_DELETE, "DELETE FROM subscriptions WHERE id = ?1") \
  X(EXEC_CREATE, \
    "INSERT INTO executions (work_id, state, attempt, lease_epoch, " \
    "created_at, updated_at) SELECT id, 'created', 1, 0, ?2, ?2 FROM works " \
    "WHERE id = ?1 AND deleted_at IS NULL") \
  X(EXEC_LOG, \
    "INSERT INTO execution_transitions (execution_id, from_state, " \
    "to_state, at, reason) VALUES (?1, ?2, ?3, ?4, ?5)") \
  X(EXEC_GET, "SELECT " EXEC_COLS " FROM executions WHERE id = ?1") \
  X(EXEC_LIST_ALL, \
    "SELECT " EXEC_COLS " FROM executions ORDER BY id DESC LIMIT ?1") \
  X(EXEC_LIST_WORK, \
    "SELECT " EXEC_COLS " FROM executions WHERE work_id = ?1 " \
    "ORDER BY id DESC LIMIT ?2") \
  X(EXEC_TRANSITIONS, \
    "SELECT id, at, from_state, to_state, reason FROM execution_transitions " \
    "WHERE execution_id = ?1 ORDER BY id") \
  X(EXEC_CANDIDATE, \
    "SELECT e.id FROM executions e INDEXED BY executions_created " \
    "JOIN works w ON w.id = e.work_id " \
    "WHERE e.state = 'created' AND w.deleted_at IS NULL " \
    "AND w.provider IN (SELECT value FROM json_each(?1)) " \
    "AND (e.not_before IS NULL OR e.not_before <= ?2) " \
    "AND NOT EXISTS (SELECT 1 FROM executions o WHERE o.work_id = e.work_id " \
    "AND o.state IN " EXEC_LEASED ") ORDER BY e.created_at, e.id LIMIT 1") \
  X(EXEC_TAKE, \
    "UPDATE executions SET state = 'pending', runner_id = ?2, " \
    "lease_epoch = lease_epoch + 1, lease_expires_at = ?3, updated_at = ?4 " \
    "WHERE id = ?1 AND state = 'created' " \
    "RETURNING work_id, attempt, lease_epoch") \
  X(EXEC_STATE, "SELECT state, lease_epoch FROM executions WHERE id = ?1") \
  X(EXEC_WORK_LEASED, \
    "SELECT EXISTS (SELECT 1 FROM executions o JOIN executions e " \
    "ON o.work_id = e.work_id WHERE e.id = ?1 AND o.state IN " EXEC_LEASED \
    ")") \
  X(EXEC_SET_STATE, \
    "UPDATE executions SET state = ?2, " \
    "error_class = COALESCE(?3, error_class), error = COALESCE(?4, error), " \
    "lease_expires_at = CASE WHEN ?5 THEN NULL ELSE lease_expires_at END, " \
    "updated_at = ?6 WHERE id = ?1") \
  X(EXEC_RENEW, \
    "UPDATE executions SET lease_expires_at = ?3, updated_at = ?4 " \
    "WHERE id = ?1 AND lease_epoch = ?2 AND state IN " EXEC_LEASED) \
  X(EXEC_EXPIRE_LOG, \
    "INSERT INTO execution_transitions (execution_id, from_state, " \
    "to_state, at, reason) SELECT id, state, 'created', ?1, " \
    "'lease expired (runner ' || COALESCE(runner_id, 'unknown') || ')' " \
    "FROM executions WHERE state IN " EXEC_LEASED \
    " AND lease_expires_at <= ?1 ORDER BY id") \
  X(EXEC_EXPIRE, \
    "UPDATE executions SET state = 'created', attempt = attempt + 1, " \
    "runner_id = NULL, lease_expires_at = NULL, updated_at = ?1 " \
    "WHERE state IN " EXEC_LEASED " AND lease_expires_at <= ?1") \
  X(EXEC_RETRY, \
    "UPDATE executions SET state = 'created', attempt = attempt + 1, " \
    "runner_id = NULL, lease_expires_at = NULL, not_before = ?2, " \
    "error_class = COALESCE(?3, error_class), error = COALESCE(?4, error), " \
    "updated_at = ?5 WHERE id = ?1") \
  X(EXEC_RELEASE_LOG, \
    "INSERT INTO execution_transitions (execution_id, from_state, " \
    "to_state, at, reason) SELECT id, state, 'created', ?2, " \
    "COALESCE(?3, 'released by runner ' || runner_id) " \
    "FROM executions WHERE runner_id = ?1 AND state IN " EXEC_LEASED \
    " ORDER BY id") \
  X(EXEC_RELEASE, \
    "UPDATE executions SET state = 'created', attempt = attempt + 1, " \
    "runner_id = NULL, lease_expires_at = NULL, updated_at = ?2 " \
    "WHERE runner_id = ?1 AND state IN " EXEC_LEASED) \
  X(EXEC_WORK_OPEN, \
    "SELECT EXISTS (SELECT 1 FROM executions WHERE work_id = ?1 " \
    "AND state IN " EXEC_OPEN ")") \
  X(WORK_FIRST_RUN, \
    "UPDATE works SET first_run_at = ?2 WHERE id = ?1 " \
    "AND deleted_at IS NULL AND first_run_at IS NULL") \
  X(WORK_LIVE, "SELECT 1 FROM works WHERE id = ?1 AND deleted_at IS NULL") \
  X(SYNC_COMMIT, \
    "INSERT INTO sync_state (" SYNC_COLS ") SELECT id, COALESCE((SELECT " \
    "MAX(version) FROM sync_state WHERE work_id = ?1), 0) + 1, ?2, ?3, ?4, " \
    "?5, ?6 FROM works WHERE id = ?1 RETURNING version") \
  X(SYNC_LATEST, \
    "SELECT " SYNC_COLS " FROM sync_state WHERE work_id = ?1 " \
    "ORDER BY version DESC LIMIT ?2") \
  X(SYNC_GET, \
    "SELECT " SYNC_COLS " FROM sync_state WHERE work_id = ?1 " \
    "AND version = ?2") \
  X(SYNC_EXEC_RECORDS, \
    "SELECT COALESCE(SUM(records), 0) FROM sync_state " \
    "WHERE execution_id = ?1") \
  X(CRED_IS_OBJECT, \
    "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' " \
    "ELSE 0 END") \
  X(CRED_SET, \
    "INSERT INTO auth_credentials (auth_id, config_hash, scheme, key_id, " \
    "blob, updated_at) VALUES (?1, ?2, 'plain', NULL, ?3, ?4) " \
    "ON CONFLICT (auth_id) DO UPDATE SET config_hash = excluded.config_hash, " \
    "scheme = excluded.scheme, key_id = excluded.key_id, " \
    "blob = excluded.blob, updated_at = excluded.updated_at") \
  X(CRED_GET, \
    "SELECT scheme, blob FROM auth_credentials WHERE auth_id = ?1 " \
    "AND config_hash = ?2") \
  X(COUNTS, \
    "SELECT (SELECT count(*) FROM authorizations WHERE deleted_at IS NULL), " \
    "(SELECT count(*) FROM auth_health), " \
    "(SELECT count(*) FROM works WHERE deleted_at IS NULL), " \
    "(SELECT count(*) FROM executions), (SELECT count(*) FROM events), " \
    "(SELECT count(*) FROM runners), (SELECT count(*) FROM sync_state), " \
    "(SELECT count(*) FROM metrics), (SELECT count(*) FROM subscriptions), " \
    "(SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox " \
    "WHERE status IN ('pending','failed')), " \
    "(SELECT count(*) FROM delivery_attempts)")
// clang-format on

enum stmt_id {
#define X(name, sql) ST_##name,
  STATEMENTS(X)
#undef X
      ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
#define X(name, sql) sql,
    STATEMENTS(X)
#undef X
};

/* Event queries: statements cached by filter shape. */
#define EVQ_CACHE 16

struct sq_store {
  struct cr_store base;
  sqlite3 *db;
  sqlite3_stmt *stmt[ST_COUNT];
  struct {
    int key; /* 0: empty slot */
    sqlite3_stmt *stmt;
  } evq[EVQ_CACHE];
  unsigned evq_next;
  int depth;  /* cr_store_begin nesting */
  int doomed; /* an inner rollback or a lost transaction: refuse writes */
};

static const struct cr_store_ops sqlite_ops;

static struct sq_store *sqs(cr_store *s) { return (struct sq_store *)s; }

/* ---- Errors -------------------------------------------------------------- */

/* Maps the connection's last SQLite error to a CR_E* code, records its
 * message and notices a transaction SQLite rolled back on its own. */
static int sq_fail(struct sq_store *q, int rc) {
  int ext = sqlite3_extended_errcode(q->db);
  if (ext == SQLITE_OK || ext == SQLITE_ROW || ext == SQLITE_DONE)
    ext = rc;
  cr__store_set_error(&q->base, "%s", sqlite3_errmsg(q->db));
  if (q->depth > 0 && sqlite3_get_autocommit(q->db))
    q->doomed = 1;
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

static int nomem(struct sq_store *q) {
  cr__store_set_error(&q->base, "out of memory");
  return CR_ENOMEM;
}

static int not_found(struct sq_store *q, const char *what, const char *id) {
  cr__store_set_error(&q->base, "%s '%s' not found", what, id);
  return CR_ENOENT;
}

/* Writes are refused while the transaction is doomed. */
static int doomed(struct sq_store *q) {
  if (!q->doomed)
    return 0;
  cr__store_set_error(&q->base, "the transaction was rolled back; end it "
                                "with cr_store_commit or cr_store_rollback");
  return CR_ECANCELED;
}

/* ---- Statement helpers --------------------------------------------------- */

static int prep(struct sq_store *q, enum stmt_id id, sqlite3_stmt **out) {
  if (q->stmt[id] == NULL) {
    int rc = sqlite3_prepare_v3(q->db, stmt_sql[id], -1,
                                SQLITE_PREPARE_PERSISTENT, &q->stmt[id], NULL);
    if (rc != SQLITE_OK)
      return sq_fail(q, rc);
  }
  *out = q->stmt[id];
  return 0;
}

static void done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static void bind_str(sqlite3_stmt *st, int i, const char *v) {
  sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC); /* NULL binds NULL */
}

/* Binds a time where 0 means NULL. */
static void bind_time(sqlite3_stmt *st, int i, int64_t v) {
  if (v == 0)
    sqlite3_bind_null(st, i);
  else
    sqlite3_bind_int64(st, i, v);
}

/* Steps a statement that returns no rows, then resets it. */
static int step_done(struct sq_store *q, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  int err = rc == SQLITE_DONE ? 0 : sq_fail(q, rc);
  done(st);
  return err;
}

/* Runs a cached statement without parameters. quiet keeps the last error
 * (used when undoing after an earlier failure). */
static int run(struct sq_store *q, enum stmt_id id, int quiet) {
  sqlite3_stmt *st = NULL;
  char saved[CR_STORE_ERRLEN];
  if (quiet)
    memcpy(saved, q->base.last_error, sizeof saved);
  int rc = prep(q, id, &st);
  if (rc == 0)
    rc = step_done(q, st);
  if (quiet)
    memcpy(q->base.last_error, saved, sizeof saved);
  return rc;
}

/* Copies text column i into *dst (NULL for SQL NULL). */
static int col_str(sqlite3_stmt *st, int i, char **dst) {
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
static int col_strs(sqlite3_stmt *st, int first, char **const *fields,
                    size_t n) {
  for (size_t i = 0; i < n; i++)
    if (col_str(st, first + (int)i, fields[i]) != 0)
      return CR_ENOMEM;
  return 0;
}

/* ---- Row readers and the generic collector ------------------------------- */

typedef int (*row_fn)(sqlite3_stmt *st, void *rec);
typedef void (*clear_fn)(void *rec);

static int read_auth(sqlite3_stmt *st, void *p) {
  struct cr_auth_rec *r = p;
  char **const f[] = {&r->id,     &r->name,  &r->description, &r->provider,
                      &r->method, &r->owner, &r->config_hash};
  r->created_at = sqlite3_column_int64(st, 7);
  r->updated_at = sqlite3_column_int64(st, 8);
  return col_strs(st, 0, f, sizeof f / sizeof f[0]);
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
  return col_strs(st, 0, f, sizeof f / sizeof f[0]);
}

static int read_event(sqlite3_stmt *st, void *p) {
  struct cr_event_rec *r = p;
  char **const f[] = {&r->subject_type, &r->subject_id, &r->verb, &r->actor,
                      &r->data_json};
  r->id = sqlite3_column_int64(st, 0);
  r->at = sqlite3_column_int64(st, 1);
  r->seq = sqlite3_column_int64(st, 2);
  return col_strs(st, 3, f, sizeof f / sizeof f[0]);
}

static int read_sub(sqlite3_stmt *st, void *p) {
  struct cr_sub_rec *r = p;
  char **const f[] = {&r->id, &r->workflow, &r->config_hash};
  r->enabled = sqlite3_column_int(st, 3);
  r->created_at = sqlite3_column_int64(st, 5);
  r->updated_at = sqlite3_column_int64(st, 6);
  r->cursor_event_id = sqlite3_column_int64(st, 8);
  r->failing_since = sqlite3_column_int64(st, 9);
  if (col_str(st, 4, &r->disabled_reason) != 0 ||
      col_str(st, 7, &r->filter_json) != 0)
    return CR_ENOMEM;
  return col_strs(st, 0, f, sizeof f / sizeof f[0]);
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
  return col_str(st, 2, &r->reason);
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

struct row_type {
  size_t size;
  row_fn read;
  clear_fn clear;
};

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
static int collect(struct sq_store *q, sqlite3_stmt *st,
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
        rc = nomem(q);
        break;
      }
      arr = grown;
      cap = ncap;
    }
    void *rec = arr + cnt * t->size;
    memset(rec, 0, t->size);
    if (t->read(st, rec) != 0) {
      t->clear(rec);
      rc = nomem(q);
      break;
    }
    cnt++;
  }
  if (rc == 0 && src != SQLITE_DONE)
    rc = sq_fail(q, src);
  done(st);
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
  int rc = collect(q, st, t, 1, out, &n);
  if (rc == 0 && n == 0)
    return not_found(q, what, id);
  return rc;
}

/* ---- Transactions ---------------------------------------------------------
 * Operations made of several statements run in op_begin/op_end: their own
 * BEGIN IMMEDIATE transaction outside a caller's transaction, a savepoint
 * inside one (so a failure undoes the operation only). */

static int op_begin(struct sq_store *q) {
  return run(q, q->depth == 0 ? ST_BEGIN : ST_SAVEPOINT, 0);
}

static int op_end(struct sq_store *q, int rc) {
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

static int sq_commit(cr_store *s) {
  struct sq_store *q = sqs(s);
  if (q->depth == 0)
    return no_transaction(q);
  if (--q->depth > 0)
    return 0;
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

static int sq_rollback(cr_store *s) {
  struct sq_store *q = sqs(s);
  if (q->depth == 0)
    return no_transaction(q);
  q->depth--;
  int rc = 0;
  if (!sqlite3_get_autocommit(q->db))
    rc = run(q, ST_ROLLBACK, 0);
  q->doomed = q->depth > 0;
  return rc;
}

/* ---- Upserts --------------------------------------------------------------
 * The state statement (?1 id, ?2 hash) returns: hash equal, deleted,
 * created_at. Decides *changed and the created_at to write. */

static int upsert_state(struct sq_store *q, enum stmt_id id, const char *key,
                        const char *hash, int64_t now, int *changed,
                        int64_t *created) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, id, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, key);
  bind_str(st, 2, hash);
  int src = sqlite3_step(st);
  *changed = CR_STORE_CREATED;
  *created = now;
  if (src == SQLITE_ROW && sqlite3_column_int(st, 1) == 0) {
    *changed =
        sqlite3_column_int(st, 0) ? CR_STORE_UNCHANGED : CR_STORE_UPDATED;
    *created = sqlite3_column_int64(st, 2);
  } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
    rc = sq_fail(q, src);
  }
  done(st);
  return rc;
}

static int auth_write(struct sq_store *q, const struct cr_auth_rec *r,
                      int64_t created, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_AUTH_WRITE, &st);
  if (rc != 0)
    return rc;
  const char *v[] = {r->id,     r->name,  r->description, r->provider,
                     r->method, r->owner, r->config_hash};
  for (int i = 0; i < 7; i++)
    bind_str(st, i + 1, v[i]);
  sqlite3_bind_int64(st, 8, created);
  sqlite3_bind_int64(st, 9, now);
  return step_done(q, st);
}

static int work_write(struct sq_store *q, const struct cr_work_rec *r,
                      int64_t created, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_WORK_WRITE, &st);
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
    bind_str(st, i + 1, v[i]);
  sqlite3_bind_int(st, 9, r->enabled != 0);
  sqlite3_bind_int(st, 10, r->error_email_notifications != 0);
  sqlite3_bind_int(st, 11, r->max_attempts);
  bind_time(st, 12, r->next_run_at);
  sqlite3_bind_int64(st, 13, created);
  sqlite3_bind_int64(st, 14, now);
  return step_done(q, st);
}

static int sub_write(struct sq_store *q, const struct cr_sub_rec *r,
                     int64_t created, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_SUB_WRITE, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, r->id);
  bind_str(st, 2, r->workflow);
  bind_str(st, 3, r->config_hash);
  sqlite3_bind_int(st, 4, r->enabled != 0);
  bind_str(st, 5, r->disabled_reason);
  sqlite3_bind_int64(st, 6, created);
  sqlite3_bind_int64(st, 7, now);
  bind_str(st, 8, r->filter_json);
  return step_done(q, st);
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
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  int64_t created = now;
  rc = upsert_state(q, state, id, hash, now, changed, &created);
  if (rc == 0 && *changed != CR_STORE_UNCHANGED)
    rc = write(q, rec, created, now);
  rc = op_end(q, rc);
  if (rc != 0)
    *changed = CR_STORE_UNCHANGED;
  return rc;
}

/* Runs an UPDATE/DELETE keyed by id (?1, with ?2 = t when has_t) that must
 * change one row; CR_ENOENT naming what otherwise. */
static int change_one(struct sq_store *q, enum stmt_id id, const char *key,
                      int has_t, int64_t t, const char *what) {
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, id, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, key);
  if (has_t)
    bind_time(st, 2, t);
  rc = step_done(q, st);
  if (rc == 0 && sqlite3_changes(q->db) == 0)
    return not_found(q, what, key);
  return rc;
}

/* Binds ?1 = key and collects the rows of a cached statement. */
static int list_by(struct sq_store *q, enum stmt_id id, const char *key,
                   const struct row_type *t, void **out, size_t *n) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, id, &st);
  if (rc != 0)
    return rc;
  if (key != NULL)
    bind_str(st, 1, key);
  return collect(q, st, t, 8, out, n);
}

static int get_by(struct sq_store *q, enum stmt_id id, const char *key,
                  const struct row_type *t, void **out, const char *what) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, id, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, key);
  return get_one(q, st, t, out, what, key);
}

/* ---- Authorizations ------------------------------------------------------ */

static int sq_auth_upsert(cr_store *s, const struct cr_auth_rec *rec,
                          int64_t now, int *changed) {
  return upsert(sqs(s), ST_AUTH_STATE, write_auth, rec, rec->id,
                rec->config_hash, now, changed);
}

static int sq_auth_get(cr_store *s, const char *id, struct cr_auth_rec **out) {
  return get_by(sqs(s), ST_AUTH_GET, id, &AUTH_ROW, (void **)out,
                "authorization");
}

static int sq_auth_list(cr_store *s, struct cr_auth_rec **out, size_t *n) {
  return list_by(sqs(s), ST_AUTH_LIST, NULL, &AUTH_ROW, (void **)out, n);
}

static int sq_auth_delete(cr_store *s, const char *id, int64_t now) {
  return change_one(sqs(s), ST_AUTH_DELETE, id, 1, now, "authorization");
}

static int sq_auth_health_record(cr_store *s, const char *auth_id,
                                 int64_t at_ms, int status,
                                 const char *reason) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_HEALTH_INSERT, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, at_ms);
  bind_str(st, 3, health_names[status]);
  bind_str(st, 4, reason);
  return step_done(q, st);
}

static int health_rows(struct sq_store *q, const char *auth_id, size_t limit,
                       struct cr_health_rec **out, size_t *n) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_HEALTH_HISTORY, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
  return collect(q, st, &HEALTH_ROW, limit < 16 ? limit : 16, (void **)out, n);
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
  return get_by(sqs(s), ST_WORK_GET, id, &WORK_ROW, (void **)out, "work");
}

static int sq_work_list(cr_store *s, struct cr_work_rec **out, size_t *n) {
  return list_by(sqs(s), ST_WORK_LIST, NULL, &WORK_ROW, (void **)out, n);
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
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_EVENT_APPEND, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, at);
  bind_str(st, 2, in->subject_type);
  bind_str(st, 3, in->subject_id);
  bind_str(st, 4, in->verb);
  bind_str(st, 5, in->actor);
  bind_str(st, 6, in->data_json);
  rc = step_done(q, st);
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
    return sq_fail(q, rc);
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
    bind_str(st, i++, f->subject_type);
  if (f->subject_id != NULL)
    bind_str(st, i++, f->subject_id);
  if (f->since_ms > 0)
    sqlite3_bind_int64(st, i++, f->since_ms);
  for (size_t v = 0; v < f->nverbs; v++)
    bind_str(st, i++, f->verbs[v]);
  sqlite3_bind_int64(st, i, (sqlite3_int64)f->limit);
  return collect(q, st, &EVENT_ROW, f->limit < 64 ? f->limit : 64, (void **)out,
                 n);
}

/* Runs a cached statement binding ?1 = v; *changes (may be NULL) gets the
 * number of rows it changed. */
static int run_int(struct sq_store *q, enum stmt_id id, int64_t v,
                   int64_t *changes) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, id, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, v);
  rc = step_done(q, st);
  if (rc == 0 && changes != NULL)
    *changes = sqlite3_changes64(q->db);
  return rc;
}

static int sq_event_prune(cr_store *s, int64_t before_ms, int64_t *deleted) {
  struct sq_store *q = sqs(s);
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  int64_t n = 0;
  rc = run_int(q, ST_OUTBOX_PRUNE, before_ms, NULL);
  if (rc == 0)
    rc = run_int(q, ST_EVENT_PRUNE, before_ms, &n);
  rc = op_end(q, rc);
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
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_METRICS_ADD, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, bucket_start);
  sqlite3_bind_int64(st, 3, requests);
  sqlite3_bind_int64(st, 4, errors);
  return step_done(q, st);
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
  int rc = prep(q, by_gran[granularity][auth_id == NULL], &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, auth_id);
  sqlite3_bind_int64(st, 2, from_ms);
  sqlite3_bind_int64(st, 3, to_ms);
  return collect(q, st, &POINT_ROW, 32, (void **)out, n);
}

/* ---- Subscriptions ------------------------------------------------------- */

static int sq_sub_upsert(cr_store *s, const struct cr_sub_rec *rec, int64_t now,
                         int *changed) {
  return upsert(sqs(s), ST_SUB_STATE, write_sub, rec, rec->id, rec->config_hash,
                now, changed);
}

static int sq_sub_get(cr_store *s, const char *id, struct cr_sub_rec **out) {
  return get_by(sqs(s), ST_SUB_GET, id, &SUB_ROW, (void **)out, "subscription");
}

static int sq_sub_list(cr_store *s, struct cr_sub_rec **out, size_t *n) {
  return list_by(sqs(s), ST_SUB_LIST, NULL, &SUB_ROW, (void **)out, n);
}

static int sq_sub_delete(cr_store *s, const char *id) {
  return change_one(sqs(s), ST_SUB_DELETE, id, 0, 0, "subscription");
}

static int sq_counts(cr_store *s, struct cr_store_counts *out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_COUNTS, &st);
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
    rc = sq_fail(q, src);
  done(st);
  return rc;
}

/* ---- Executions ----------------------------------------------------------
 * State changes run in op_begin/op_end with their transition row, so both
 * are written or neither. Claims take the write lock (BEGIN IMMEDIATE, or
 * the caller's transaction, itself BEGIN IMMEDIATE) before reading the
 * candidates: two connections can never both see an execution as created. */

static int read_exec(sqlite3_stmt *st, void *p) {
  struct cr_exec_rec *r = p;
  r->id = sqlite3_column_int64(st, 0);
  r->attempt = sqlite3_column_int(st, 3);
  r->lease_epoch = sqlite3_column_int64(st, 5);
  r->lease_expires_at = sqlite3_column_int64(st, 6);
  r->created_at = sqlite3_column_int64(st, 9);
  r->updated_at = sqlite3_column_int64(st, 10);
  r->not_before = sqlite3_column_int64(st, 11);
  if (col_str(st, 1, &r->work_id) != 0 || col_str(st, 2, &r->state) != 0 ||
      col_str(st, 4, &r->runner_id) != 0 ||
      col_str(st, 7, &r->error_class) != 0)
    return CR_ENOMEM;
  return col_str(st, 8, &r->error);
}

static int read_transition(sqlite3_stmt *st, void *p) {
  struct cr_exec_transition_rec *r = p;
  char **const f[] = {&r->from_state, &r->to_state, &r->reason};
  r->id = sqlite3_column_int64(st, 0);
  r->at = sqlite3_column_int64(st, 1);
  return col_strs(st, 2, f, sizeof f / sizeof f[0]);
}

static void clear_exec(void *p) { cr_exec_rec_clear(p); }
static void clear_transition(void *p) {
  struct cr_exec_transition_rec *r = p;
  cr__free(r->from_state);
  cr__free(r->to_state);
  cr__free(r->reason);
  memset(r, 0, sizeof *r);
}

static const struct row_type EXEC_ROW = {sizeof(struct cr_exec_rec), read_exec,
                                         clear_exec};
static const struct row_type TRANSITION_ROW = {
    sizeof(struct cr_exec_transition_rec), read_transition, clear_transition};

/* Writes one execution_transitions row. */
static int exec_log(struct sq_store *q, int64_t id, const char *from,
                    const char *to, int64_t at, const char *reason) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_LOG, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  bind_str(st, 2, from);
  bind_str(st, 3, to);
  sqlite3_bind_int64(st, 4, at);
  bind_str(st, 5, reason);
  return step_done(q, st);
}

static int exec_not_found(struct sq_store *q, int64_t id) {
  cr__store_set_error(&q->base, "execution %lld not found", (long long)id);
  return CR_ENOENT;
}

static int sq_exec_create(cr_store *s, const char *work_id, int64_t now,
                          int64_t *id_out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  rc = prep(q, ST_EXEC_CREATE, &st);
  if (rc == 0) {
    bind_str(st, 1, work_id);
    sqlite3_bind_int64(st, 2, now);
    rc = step_done(q, st);
  }
  if (rc == 0 && sqlite3_changes(q->db) == 0)
    rc = not_found(q, "work", work_id);
  int64_t id = rc == 0 ? sqlite3_last_insert_rowid(q->db) : 0;
  if (rc == 0)
    rc = exec_log(q, id, NULL, "created", now, "created");
  rc = op_end(q, rc);
  if (rc == 0)
    *id_out = id;
  return rc;
}

static int sq_exec_get(cr_store *s, int64_t id, struct cr_exec_rec *out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_GET, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  struct cr_exec_rec *rows = NULL;
  size_t n = 0;
  rc = collect(q, st, &EXEC_ROW, 1, (void **)&rows, &n);
  if (rc != 0)
    return rc;
  if (n == 0)
    return exec_not_found(q, id);
  *out = rows[0];
  cr__free(rows);
  return 0;
}

/* Appends v to the growing buffer *buf (*len used, *cap allocated). */
static int buf_add(char **buf, size_t *len, size_t *cap, const char *v,
                   size_t n) {
  if (*len + n + 1 > *cap) {
    size_t ncap = (*cap == 0 ? 64 : *cap * 2) + n;
    char *grown = cr__realloc(*buf, ncap);
    if (grown == NULL)
      return CR_ENOMEM;
    *buf = grown;
    *cap = ncap;
  }
  memcpy(*buf + *len, v, n);
  *len += n;
  (*buf)[*len] = '\0';
  return 0;
}

/* The providers as a JSON array of strings (for json_each), in *out (freed
 * with cr__free). */
static int providers_json(const char *const *p, size_t n, char **out) {
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int rc = buf_add(&buf, &len, &cap, "[", 1);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = buf_add(&buf, &len, &cap, i == 0 ? "\"" : ",\"", i == 0 ? 1 : 2);
    for (const unsigned char *c = (const unsigned char *)p[i]; rc == 0 && *c;
         c++) {
      char esc[8];
      if (*c == '"' || *c == '\\') {
        snprintf(esc, sizeof esc, "\\%c", *c);
        rc = buf_add(&buf, &len, &cap, esc, 2);
      } else if (*c < 0x20) {
        snprintf(esc, sizeof esc, "\\u%04x", *c);
        rc = buf_add(&buf, &len, &cap, esc, 6);
      } else {
        rc = buf_add(&buf, &len, &cap, (const char *)c, 1);
      }
    }
    if (rc == 0)
      rc = buf_add(&buf, &len, &cap, "\"", 1);
  }
  if (rc == 0)
    rc = buf_add(&buf, &len, &cap, "]", 1);
  if (rc != 0) {
    cr__free(buf);
    return CR_ENOMEM;
  }
  *out = buf;
  return 0;
}

/* The oldest claimable execution (not_before reached) into *id; CR_ENOENT when
 * none. */
static int claim_candidate(struct sq_store *q, const char *provs, int64_t now,
                           int64_t *id) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_CANDIDATE, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, provs);
  sqlite3_bind_int64(st, 2, now);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    *id = sqlite3_column_int64(st, 0);
  rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? CR_ENOENT : sq_fail(q, src);
  done(st);
  return rc;
}

/* Moves execution id to pending for runner, filling *c. */
static int claim_take(struct sq_store *q, int64_t id, const char *runner,
                      int64_t now, int64_t lease_ms, struct cr_exec_claim *c) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_TAKE, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  bind_str(st, 2, runner);
  sqlite3_bind_int64(st, 3, now + lease_ms);
  sqlite3_bind_int64(st, 4, now);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    c->execution_id = id;
    c->attempt = sqlite3_column_int(st, 1);
    c->epoch = sqlite3_column_int64(st, 2);
    c->lease_expires_at = now + lease_ms;
    rc = col_str(st, 0, &c->work_id) != 0 ? nomem(q) : 0;
    if (rc == 0)
      src = sqlite3_step(st);
  }
  if (rc == 0 && c->work_id == NULL) {
    cr__store_set_error(&q->base, "execution %lld changed under the lock",
                        (long long)id);
    rc = CR_ESTORE;
  } else if (rc == 0 && src != SQLITE_DONE) {
    rc = src == SQLITE_ROW ? CR_ESTORE : sq_fail(q, src);
  }
  done(st);
  return rc;
}

/* The claim loop inside the operation's transaction: one candidate at a
 * time, so a work claimed in this round is excluded from the next. */
static int claim_rounds(struct sq_store *q, const char *runner,
                        const char *provs, size_t slots, int64_t now,
                        int64_t lease_ms, struct cr_exec_claim **arr,
                        size_t *cnt) {
  size_t cap = 0;
  size_t rlen = strlen(runner) + sizeof "claimed by runner ";
  char *reason = cr__malloc(rlen);
  if (reason == NULL)
    return nomem(q);
  snprintf(reason, rlen, "claimed by runner %s", runner);
  int rc = 0;
  while (rc == 0 && *cnt < slots) {
    int64_t id = 0;
    rc = claim_candidate(q, provs, now, &id);
    if (rc == CR_ENOENT) {
      rc = 0;
      break;
    }
    if (rc == 0 && *cnt == cap) {
      size_t ncap = cap == 0 ? (slots < 8 ? slots : 8) : cap * 2;
      struct cr_exec_claim *grown = cr__realloc(*arr, ncap * sizeof **arr);
      if (grown == NULL)
        rc = nomem(q);
      else {
        *arr = grown;
        cap = ncap;
      }
    }
    if (rc == 0) {
      memset(&(*arr)[*cnt], 0, sizeof **arr);
      rc = claim_take(q, id, runner, now, lease_ms, &(*arr)[*cnt]);
      if (rc == 0 || (*arr)[*cnt].work_id != NULL)
        (*cnt)++;
    }
    if (rc == 0)
      rc = exec_log(q, id, "created", "pending", now, reason);
  }
  cr__free(reason);
  return rc;
}

/* Reads the state (into buf) and lease epoch of execution id. */
static int exec_state(struct sq_store *q, int64_t id, char *buf, size_t len,
                      int64_t *epoch) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_STATE, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    snprintf(buf, len, "%s", t != NULL ? t : "");
    *epoch = sqlite3_column_int64(st, 1);
  }
  rc = src == SQLITE_ROW    ? 0
       : src == SQLITE_DONE ? exec_not_found(q, id)
                            : sq_fail(q, src);
  done(st);
  return rc;
}

/* 1 in *busy when a sibling of execution id (same work) holds a lease. */
static int work_leased(struct sq_store *q, int64_t id, int *busy) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_WORK_LEASED, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    *busy = sqlite3_column_int(st, 0);
  rc = src == SQLITE_ROW ? 0 : sq_fail(q, src);
  done(st);
  return rc;
}

static int claim_one_locked(struct sq_store *q, int64_t id, const char *runner,
                            int64_t now, int64_t lease_ms,
                            struct cr_exec_claim *out) {
  char state[16];
  int64_t epoch = 0;
  int busy = 0;
  int rc = exec_state(q, id, state, sizeof state, &epoch);
  if (rc == 0 && strcmp(state, "created") != 0) {
    cr__store_set_error(&q->base, "execution %lld is %s, not created",
                        (long long)id, state);
    rc = cr_exec_state_final(cr_exec_state_from_name(state)) ? CR_ESTATE
                                                             : CR_EBUSY;
  }
  if (rc == 0)
    rc = work_leased(q, id, &busy);
  if (rc == 0 && busy) {
    cr__store_set_error(&q->base, "another execution of the work is running");
    rc = CR_EBUSY;
  }
  if (rc == 0)
    rc = claim_take(q, id, runner, now, lease_ms, out);
  char reason[200];
  snprintf(reason, sizeof reason, "claimed by runner %s", runner);
  if (rc == 0)
    rc = exec_log(q, id, "created", "pending", now, reason);
  return rc;
}

static int sq_exec_claim_one(cr_store *s, int64_t id, const char *runner_id,
                             int64_t now, int64_t lease_ms,
                             struct cr_exec_claim *out) {
  struct sq_store *q = sqs(s);
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  rc = claim_one_locked(q, id, runner_id, now, lease_ms, out);
  rc = op_end(q, rc);
  if (rc != 0) {
    cr__free(out->work_id);
    memset(out, 0, sizeof *out);
  }
  return rc;
}

static int sq_exec_claim(cr_store *s, const char *runner_id,
                         const char *const *providers, size_t nproviders,
                         size_t slots, int64_t now, int64_t lease_ms,
                         struct cr_exec_claim **out, size_t *n) {
  struct sq_store *q = sqs(s);
  char *provs = NULL;
  int rc = doomed(q);
  if (rc == 0 && providers_json(providers, nproviders, &provs) != 0)
    rc = nomem(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0) {
    cr__free(provs);
    return rc;
  }
  struct cr_exec_claim *arr = NULL;
  size_t cnt = 0;
  rc = claim_rounds(q, runner_id, provs, slots, now, lease_ms, &arr, &cnt);
  rc = op_end(q, rc);
  cr__free(provs);
  if (rc != 0) {
    cr_exec_claim_free_list(arr, cnt);
    return rc;
  }
  if (cnt == 0) {
    cr__free(arr);
    arr = NULL;
  }
  *out = arr;
  *n = cnt;
  return 0;
}

/* Is a caller holding epoch allowed to act on an execution stored with
 * (state, stored)? CR_ESTALE when its lease is gone. */
static int fence(struct sq_store *q, int64_t id, const char *state,
                 int64_t stored, int64_t epoch, int needs_lease) {
  if (epoch == CR_EXEC_EPOCH_ANY)
    return 0;
  if (epoch != stored) {
    cr__store_set_error(&q->base,
                        "execution %lld: epoch %lld is stale (current %lld)",
                        (long long)id, (long long)epoch, (long long)stored);
    return CR_ESTALE;
  }
  if (needs_lease && strcmp(state, "created") == 0 && stored > 0) {
    cr__store_set_error(&q->base, "execution %lld: the lease expired",
                        (long long)id);
    return CR_ESTALE;
  }
  return 0;
}

static int set_state(struct sq_store *q, int64_t id, const char *to,
                     const char *error_class, const char *error, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_SET_STATE, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  bind_str(st, 2, to);
  bind_str(st, 3, error_class);
  bind_str(st, 4, error);
  sqlite3_bind_int(st, 5, cr_exec_state_final(cr_exec_state_from_name(to)));
  sqlite3_bind_int64(st, 6, now);
  return step_done(q, st);
}

static int sq_exec_transition(cr_store *s, int64_t id, int64_t epoch,
                              const char *to_state, const char *reason,
                              const char *error_class, const char *error,
                              int64_t now) {
  struct sq_store *q = sqs(s);
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  char from[32] = "";
  int64_t stored = 0;
  rc = exec_state(q, id, from, sizeof from, &stored);
  if (rc == 0)
    rc = fence(q, id, from, stored, epoch, strcmp(to_state, "cancelled") != 0);
  if (rc == 0 && !cr_exec_transition_allowed(from, to_state)) {
    cr__store_set_error(s, "execution %lld: %s -> %s is not allowed",
                        (long long)id, from, to_state);
    rc = CR_ESTATE;
  }
  if (rc == 0)
    rc = set_state(q, id, to_state, error_class, error, now);
  if (rc == 0)
    rc = exec_log(q, id, from, to_state, now, reason);
  return op_end(q, rc);
}

static int sq_exec_renew(cr_store *s, int64_t id, int64_t epoch, int64_t now,
                         int64_t lease_ms) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_EXEC_RENEW, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, epoch);
  sqlite3_bind_int64(st, 3, now + lease_ms);
  sqlite3_bind_int64(st, 4, now);
  rc = step_done(q, st);
  if (rc != 0 || sqlite3_changes(q->db) > 0)
    return rc;
  /* Nothing renewed: say why. */
  char state[32] = "";
  int64_t stored = 0;
  rc = exec_state(q, id, state, sizeof state, &stored);
  if (rc == 0)
    rc = fence(q, id, state, stored, epoch, 1);
  if (rc == 0) {
    cr__store_set_error(s, "execution %lld is %s: no lease to renew",
                        (long long)id, state);
    rc = CR_ESTATE;
  }
  return rc;
}

static int sq_exec_expire(cr_store *s, int64_t now, size_t *n_expired) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  rc = prep(q, ST_EXEC_EXPIRE_LOG, &st);
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, now);
    rc = step_done(q, st);
  }
  if (rc == 0)
    rc = prep(q, ST_EXEC_EXPIRE, &st);
  int64_t changed = 0;
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, now);
    rc = step_done(q, st);
    changed = sqlite3_changes64(q->db);
  }
  rc = op_end(q, rc);
  if (rc == 0)
    *n_expired = (size_t)changed;
  return rc;
}

static int sq_exec_list(cr_store *s, const char *work_id, size_t limit,
                        struct cr_exec_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, work_id != NULL ? ST_EXEC_LIST_WORK : ST_EXEC_LIST_ALL, &st);
  if (rc != 0)
    return rc;
  int i = 1;
  if (work_id != NULL)
    bind_str(st, i++, work_id);
  sqlite3_bind_int64(st, i, (sqlite3_int64)limit);
  return collect(q, st, &EXEC_ROW, limit < 16 ? limit : 16, (void **)out, n);
}

static int sq_exec_transitions(cr_store *s, int64_t id,
                               struct cr_exec_transition_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_TRANSITIONS, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  return collect(q, st, &TRANSITION_ROW, 8, (void **)out, n);
}

/* Back to created as a new attempt (fenced like sq_exec_transition). */
static int retry_write(struct sq_store *q, int64_t id, int64_t not_before,
                       const char *error_class, const char *error,
                       int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_RETRY, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  bind_time(st, 2, not_before);
  bind_str(st, 3, error_class);
  bind_str(st, 4, error);
  sqlite3_bind_int64(st, 5, now);
  return step_done(q, st);
}

static int sq_exec_retry(cr_store *s, int64_t id, int64_t epoch,
                         int64_t not_before_ms, const char *reason,
                         const char *error_class, const char *error,
                         int64_t now) {
  struct sq_store *q = sqs(s);
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  char from[32] = "";
  int64_t stored = 0;
  rc = exec_state(q, id, from, sizeof from, &stored);
  if (rc == 0)
    rc = fence(q, id, from, stored, epoch, 1);
  if (rc == 0 && !cr_exec_transition_allowed(from, "created")) {
    cr__store_set_error(s, "execution %lld is %s: it cannot be retried",
                        (long long)id, from);
    rc = CR_ESTATE;
  }
  if (rc == 0)
    rc = retry_write(q, id, not_before_ms, error_class, error, now);
  if (rc == 0)
    rc = exec_log(q, id, from, "created", now, reason);
  return op_end(q, rc);
}

/* Binds ?1 runner, ?2 now (and ?3 reason when given) and runs st. */
static int release_step(struct sq_store *q, enum stmt_id id, const char *runner,
                        int64_t now, int has_reason, const char *reason) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, id, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, runner);
  sqlite3_bind_int64(st, 2, now);
  if (has_reason)
    bind_str(st, 3, reason);
  return step_done(q, st);
}

static int sq_exec_release_runner(cr_store *s, const char *runner_id,
                                  const char *reason, int64_t now, size_t *n) {
  struct sq_store *q = sqs(s);
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  rc = release_step(q, ST_EXEC_RELEASE_LOG, runner_id, now, 1, reason);
  int64_t changed = 0;
  if (rc == 0)
    rc = release_step(q, ST_EXEC_RELEASE, runner_id, now, 0, NULL);
  if (rc == 0)
    changed = sqlite3_changes64(q->db);
  rc = op_end(q, rc);
  if (rc == 0)
    *n = (size_t)changed;
  return rc;
}

/* Runs st (bound) and stores the integer of its first row in *out (0 when
 * there is no row; *found tells which, and may be NULL). Resets st. */
static int step_int(struct sq_store *q, sqlite3_stmt *st, int64_t *out,
                    int *found) {
  int src = sqlite3_step(st);
  *out = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  if (found != NULL)
    *found = src == SQLITE_ROW;
  int rc = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : sq_fail(q, src);
  done(st);
  return rc;
}

static int sq_exec_work_open(cr_store *s, const char *work_id, int *open) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_EXEC_WORK_OPEN, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, work_id);
  int64_t v = 0;
  rc = step_int(q, st, &v, NULL);
  if (rc == 0)
    *open = v != 0;
  return rc;
}

static int sq_work_mark_started(cr_store *s, const char *id, int64_t now,
                                int *first) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_WORK_FIRST_RUN, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, id);
  sqlite3_bind_int64(st, 2, now);
  rc = step_done(q, st);
  if (rc != 0)
    return rc;
  if (sqlite3_changes(q->db) > 0) {
    *first = 1;
    return 0;
  }
  rc = prep(q, ST_WORK_LIVE, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, id);
  int64_t v = 0;
  int found = 0;
  rc = step_int(q, st, &v, &found);
  if (rc == 0 && !found)
    return not_found(q, "work", id);
  return rc;
}

/* ---- Sync state ---------------------------------------------------------- */

static int read_sync(sqlite3_stmt *st, void *p) {
  struct cr_sync_state_rec *r = p;
  r->version = sqlite3_column_int64(st, 1);
  r->records = sqlite3_column_int64(st, 3);
  r->committed_at = sqlite3_column_int64(st, 4);
  r->execution_id = sqlite3_column_int64(st, 5);
  if (col_str(st, 0, &r->work_id) != 0 || col_str(st, 2, &r->state_json) != 0)
    return CR_ENOMEM;
  return col_str(st, 6, &r->note);
}

static void clear_sync(void *p) { cr_sync_state_rec_clear(p); }

static const struct row_type SYNC_ROW = {sizeof(struct cr_sync_state_rec),
                                         read_sync, clear_sync};

static int sq_sync_state_commit(cr_store *s, const char *work_id,
                                const char *state_json, int64_t records,
                                int64_t execution_id, const char *note,
                                int64_t now, int64_t *version_out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_SYNC_COMMIT, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, work_id);
  bind_str(st, 2, state_json);
  sqlite3_bind_int64(st, 3, records);
  sqlite3_bind_int64(st, 4, now);
  bind_time(st, 5, execution_id);
  bind_str(st, 6, note);
  int src = sqlite3_step(st);
  int64_t version = 0;
  if (src == SQLITE_ROW) {
    version = sqlite3_column_int64(st, 0);
    src = sqlite3_step(st);
  }
  if (src != SQLITE_DONE)
    rc = sq_fail(q, src);
  else if (version == 0) {
    cr__store_set_error(s, "sync state of unknown work '%s'", work_id);
    rc = CR_EINVAL;
  }
  done(st);
  if (rc == 0)
    *version_out = version;
  return rc;
}

static int sq_sync_state_get(cr_store *s, const char *work_id, int64_t version,
                             struct cr_sync_state_rec *out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, version == 0 ? ST_SYNC_LATEST : ST_SYNC_GET, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, work_id);
  sqlite3_bind_int64(st, 2, version == 0 ? 1 : version);
  struct cr_sync_state_rec *rows = NULL;
  size_t n = 0;
  rc = collect(q, st, &SYNC_ROW, 1, (void **)&rows, &n);
  if (rc != 0)
    return rc;
  if (n == 0) {
    cr__store_set_error(s, "no sync state version %lld for work '%s'",
                        (long long)version, work_id);
    return CR_ENOENT;
  }
  *out = rows[0];
  cr__free(rows);
  return 0;
}

static int sq_sync_state_history(cr_store *s, const char *work_id, size_t limit,
                                 struct cr_sync_state_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_SYNC_LATEST, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, work_id);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
  return collect(q, st, &SYNC_ROW, limit < 16 ? limit : 16, (void **)out, n);
}

static int sq_sync_state_exec_records(cr_store *s, int64_t exec_id,
                                      int64_t *records) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_SYNC_EXEC_RECORDS, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, exec_id);
  return step_int(q, st, records, NULL);
}

/* ---- Rotated credentials --------------------------------------------------
 * Stored as scheme 'plain': the JSON text itself in blob. A codec that
 * encrypts would write another scheme and its key id. */

static int sq_auth_credentials_set(cr_store *s, const char *auth_id,
                                   const char *config_hash,
                                   const char *credentials_json, int64_t now) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_CRED_IS_OBJECT, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, credentials_json);
  int64_t ok = 0;
  rc = step_int(q, st, &ok, NULL);
  if (rc == 0 && !ok) {
    cr__store_set_error(s, "credentials of '%s' are not a JSON object",
                        auth_id);
    rc = CR_EINVAL;
  }
  if (rc == 0)
    rc = prep(q, ST_CRED_SET, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, auth_id);
  bind_str(st, 2, config_hash);
  sqlite3_bind_blob(st, 3, credentials_json, (int)strlen(credentials_json),
                    SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  return step_done(q, st);
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
    return nomem(q);
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
  int rc = prep(q, ST_CRED_GET, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, auth_id);
  bind_str(st, 2, config_hash);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    rc = cred_decode(q, st, json_out);
  else if (src == SQLITE_DONE)
    rc = not_found(q, "credentials for the current configuration of", auth_id);
  else
    rc = sq_fail(q, src);
  done(st);
  return rc;
}

/* ---- Webhook outbox -------------------------------------------------------
 * Enqueue and replay scan events in id order and match them in C against
 * each subscription's filter (parsed once per call), inserting outbox rows
 * with one cached statement, in one transaction. */

/* A subscription as enqueue and replay see it. */
struct enq_sub {
  char *id, *filter_json;
  int64_t cursor;
};

static int read_enq_sub(sqlite3_stmt *st, void *p) {
  struct enq_sub *r = p;
  r->cursor = sqlite3_column_int64(st, 2);
  if (col_str(st, 0, &r->id) != 0)
    return CR_ENOMEM;
  return col_str(st, 1, &r->filter_json);
}

static void clear_enq_sub(void *p) {
  struct enq_sub *r = p;
  cr__free(r->id);
  cr__free(r->filter_json);
  memset(r, 0, sizeof *r);
}

static const struct row_type ENQ_SUB_ROW = {sizeof(struct enq_sub),
                                            read_enq_sub, clear_enq_sub};

static void free_enq_subs(struct enq_sub *v, size_t n) {
  for (size_t i = 0; v != NULL && i < n; i++)
    clear_enq_sub(&v[i]);
  cr__free(v);
}

/* The filter of sub (NULL filter_json: *f stays NULL, every event). */
static int sub_filter_of(struct sq_store *q, const struct enq_sub *sub,
                         cr_sub_filter **f) {
  *f = NULL;
  if (sub->filter_json == NULL)
    return 0;
  int rc = cr_sub_filter_from_json(sub->filter_json, f);
  if (rc == CR_ENOMEM)
    return nomem(q);
  if (rc != 0)
    cr__store_set_error(&q->base, "subscription '%s' has an invalid filter",
                        sub->id);
  return rc;
}

/* Steps scan (bound; columns id, subject_type, subject_id, verb) to the
 * end; for each event f matches (NULL: all) runs ins (?1 sub id, ?2 event
 * id, ?3 now). *count gets the rows ins changed, *last the last scanned id.
 * Resets scan. */
static int scan_events(struct sq_store *q, sqlite3_stmt *scan,
                       const cr_sub_filter *f, const char *sub_id,
                       enum stmt_id ins_id, int64_t now, size_t *count,
                       int64_t *last) {
  sqlite3_stmt *ins = NULL;
  int rc = prep(q, ins_id, &ins), src = SQLITE_DONE;
  if (rc == 0) {
    bind_str(ins, 1, sub_id);
    sqlite3_bind_int64(ins, 3, now);
  }
  while (rc == 0 && (src = sqlite3_step(scan)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(scan, 0);
    *last = id;
    if (f != NULL &&
        !cr_sub_filter_match(f, (const char *)sqlite3_column_text(scan, 1),
                             (const char *)sqlite3_column_text(scan, 2),
                             (const char *)sqlite3_column_text(scan, 3)))
      continue;
    sqlite3_bind_int64(ins, 2, id);
    int irc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (irc != SQLITE_DONE)
      rc = sq_fail(q, irc);
    else
      *count += (size_t)sqlite3_changes(q->db);
  }
  if (rc == 0 && src != SQLITE_DONE)
    rc = sq_fail(q, src);
  done(scan);
  if (ins != NULL)
    done(ins);
  return rc;
}

/* Enqueues the new events of one subscription and moves its cursor. */
static int enqueue_sub(struct sq_store *q, const struct enq_sub *sub,
                       size_t max_events, int64_t now, size_t *count) {
  cr_sub_filter *f = NULL;
  sqlite3_stmt *scan = NULL;
  int rc = sub_filter_of(q, sub, &f);
  if (rc == 0)
    rc = prep(q, ST_EVENT_SCAN, &scan);
  int64_t last = sub->cursor;
  if (rc == 0) {
    sqlite3_bind_int64(scan, 1, sub->cursor);
    sqlite3_bind_int64(scan, 2, (sqlite3_int64)max_events);
    rc = scan_events(q, scan, f, sub->id, ST_OUTBOX_INSERT, now, count, &last);
  }
  cr_sub_filter_free(f);
  sqlite3_stmt *cur = NULL;
  if (rc == 0 && last > sub->cursor)
    rc = prep(q, ST_SUB_CURSOR, &cur);
  if (cur != NULL) {
    bind_str(cur, 1, sub->id);
    sqlite3_bind_int64(cur, 2, last);
    rc = step_done(q, cur);
  }
  return rc;
}

static int sq_outbox_enqueue(cr_store *s, size_t max_events, int64_t now,
                             size_t *enqueued) {
  struct sq_store *q = sqs(s);
  struct enq_sub *subs = NULL;
  size_t nsubs = 0, count = 0;
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  rc = list_by(q, ST_SUB_ENABLED, NULL, &ENQ_SUB_ROW, (void **)&subs, &nsubs);
  for (size_t i = 0; rc == 0 && i < nsubs; i++)
    rc = enqueue_sub(q, &subs[i], max_events, now, &count);
  free_enq_subs(subs, nsubs);
  rc = op_end(q, rc);
  if (rc == 0)
    *enqueued = count;
  return rc;
}

static int read_outbox(sqlite3_stmt *st, void *p) {
  struct cr_outbox_rec *r = p;
  struct cr_event_rec *e = &r->event;
  char **const f[] = {&e->subject_type, &e->subject_id, &e->verb, &e->actor,
                      &e->data_json};
  r->event_id = sqlite3_column_int64(st, 1);
  r->attempts = sqlite3_column_int(st, 3);
  r->next_attempt_at = sqlite3_column_int64(st, 4);
  r->first_attempt_at = sqlite3_column_int64(st, 5);
  r->last_status = sqlite3_column_int(st, 6);
  e->id = sqlite3_column_int64(st, 8);
  e->at = sqlite3_column_int64(st, 9);
  e->seq = sqlite3_column_int64(st, 10);
  if (col_str(st, 0, &r->subscription_id) != 0 ||
      col_str(st, 2, &r->status) != 0 || col_str(st, 7, &r->last_error) != 0)
    return CR_ENOMEM;
  return col_strs(st, 11, f, sizeof f / sizeof f[0]);
}

static void clear_outbox(void *p) { cr_outbox_rec_clear(p); }

static const struct row_type OUTBOX_ROW = {sizeof(struct cr_outbox_rec),
                                           read_outbox, clear_outbox};

static int sq_outbox_due(cr_store *s, int64_t now, size_t limit,
                         struct cr_outbox_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_OUTBOX_DUE, &st);
  if (rc != 0)
    return rc;
  sqlite3_bind_int64(st, 1, now);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
  return collect(q, st, &OUTBOX_ROW, limit < 64 ? limit : 64, (void **)out, n);
}

static int sq_outbox_next_due(cr_store *s, int64_t *at) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_OUTBOX_NEXT_DUE, &st);
  if (rc != 0)
    return rc;
  return step_int(q, st, at, NULL);
}

/* The outbox row's new state (?1..?7 of OUTBOX_SET); CR_ENOENT when the row
 * is gone. */
static int outbox_set(struct sq_store *q, const char *sub_id, int64_t event_id,
                      const char *status, int http_status, const char *error,
                      int64_t next_attempt_at, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_OUTBOX_SET, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, sub_id);
  sqlite3_bind_int64(st, 2, event_id);
  bind_str(st, 3, status);
  sqlite3_bind_int64(st, 4, next_attempt_at);
  bind_time(st, 5, http_status);
  bind_str(st, 6, error);
  sqlite3_bind_int64(st, 7, now);
  rc = step_done(q, st);
  if (rc == 0 && sqlite3_changes(q->db) == 0) {
    cr__store_set_error(&q->base,
                        "no outbox row for subscription '%s' and "
                        "event %lld",
                        sub_id, (long long)event_id);
    return CR_ENOENT;
  }
  return rc;
}

static int attempt_insert(struct sq_store *q, const char *sub_id,
                          int64_t event_id, int http_status, int64_t latency,
                          const char *error, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_ATTEMPT_INSERT, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, sub_id);
  sqlite3_bind_int64(st, 2, event_id);
  sqlite3_bind_int64(st, 3, now);
  bind_time(st, 4, http_status);
  sqlite3_bind_int64(st, 5, latency);
  bind_str(st, 6, error);
  return step_done(q, st);
}

static int sub_failing(struct sq_store *q, const char *sub_id,
                       const char *status, int64_t now) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_SUB_FAILING, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, sub_id);
  bind_str(st, 2, status);
  sqlite3_bind_int64(st, 3, now);
  return step_done(q, st);
}

static int sq_outbox_record(cr_store *s, const char *sub_id, int64_t event_id,
                            const char *status, int http_status,
                            int64_t latency_ms, const char *error,
                            int64_t next_attempt_at, int64_t now) {
  struct sq_store *q = sqs(s);
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  rc = outbox_set(q, sub_id, event_id, status, http_status, error,
                  next_attempt_at, now);
  if (rc == 0)
    rc = attempt_insert(q, sub_id, event_id, http_status, latency_ms, error,
                        now);
  if (rc == 0)
    rc = sub_failing(q, sub_id, status, now);
  return op_end(q, rc);
}

static int sq_sub_disable(cr_store *s, const char *id, const char *reason,
                          int64_t now) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = doomed(q);
  if (rc == 0)
    rc = prep(q, ST_SUB_DISABLE, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, id);
  sqlite3_bind_int64(st, 2, now);
  bind_str(st, 3, reason);
  rc = step_done(q, st);
  if (rc == 0 && sqlite3_changes(q->db) == 0)
    return not_found(q, "subscription", id);
  return rc;
}

static int replay_sub(struct sq_store *q, const struct enq_sub *sub,
                      int64_t since_ms, int64_t now, size_t *n) {
  cr_sub_filter *f = NULL;
  sqlite3_stmt *scan = NULL;
  int rc = sub_filter_of(q, sub, &f);
  if (rc == 0)
    rc = prep(q, ST_EVENT_SCAN_SINCE, &scan);
  if (rc == 0) {
    int64_t last = 0;
    sqlite3_bind_int64(scan, 1, since_ms);
    sqlite3_bind_int64(scan, 2, sub->cursor);
    rc = scan_events(q, scan, f, sub->id, ST_OUTBOX_REQUEUE, now, n, &last);
  }
  cr_sub_filter_free(f);
  return rc;
}

static int sq_outbox_replay(cr_store *s, const char *sub_id, int64_t since_ms,
                            int64_t now, size_t *n) {
  struct sq_store *q = sqs(s);
  struct enq_sub *sub = NULL;
  size_t count = 0;
  int rc = doomed(q);
  if (rc == 0)
    rc = op_begin(q);
  if (rc != 0)
    return rc;
  rc = get_by(q, ST_SUB_FILTER, sub_id, &ENQ_SUB_ROW, (void **)&sub,
              "subscription");
  if (rc == 0)
    rc = replay_sub(q, sub, since_ms, now, &count);
  free_enq_subs(sub, sub != NULL);
  rc = op_end(q, rc);
  if (rc == 0)
    *n = count;
  return rc;
}

static int sub_last_attempt(struct sq_store *q, const char *sub_id,
                            struct cr_sub_stats *out) {
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_SUB_LAST_ATTEMPT, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, sub_id);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    out->last_attempt_at = sqlite3_column_int64(st, 0);
    out->last_status = sqlite3_column_int(st, 1);
    if (col_str(st, 2, &out->last_error) != 0)
      rc = nomem(q);
  } else if (src != SQLITE_DONE) {
    rc = sq_fail(q, src);
  }
  done(st);
  return rc;
}

static int sq_sub_stats(cr_store *s, const char *sub_id, int64_t now,
                        struct cr_sub_stats *out) {
  struct sq_store *q = sqs(s);
  sqlite3_stmt *st = NULL;
  int rc = prep(q, ST_SUB_STATS, &st);
  if (rc != 0)
    return rc;
  bind_str(st, 1, sub_id);
  sqlite3_bind_int64(st, 2, now - INT64_C(86400000));
  int src = sqlite3_step(st), exists = 0;
  if (src == SQLITE_ROW) {
    int64_t *const f[] = {&out->backlog, &out->delivered, &out->dead,
                          &out->attempts_24h, &out->ok_24h};
    for (int i = 0; i < 5; i++)
      *f[i] = sqlite3_column_int64(st, i);
    exists = sqlite3_column_int(st, 5);
  } else {
    rc = sq_fail(q, src);
  }
  done(st);
  if (rc == 0 && !exists)
    rc = not_found(q, "subscription", sub_id);
  if (rc == 0)
    rc = sub_last_attempt(q, sub_id, out);
  if (rc != 0)
    cr_sub_stats_clear(out);
  return rc;
}

/* ---- Opening, versions, closing ------------------------------------------ */

/* Runs sql on a new statement and stores the first column of the first row;
 * CR_ENOENT when there is no row. */
static int query_int(struct sq_store *q, const char *sql, int64_t *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK)
    return sq_fail(q, rc);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? CR_ENOENT : sq_fail(q, src);
  sqlite3_finalize(st);
  return rc;
}

static int exec(struct sq_store *q, const char *sql) {
  int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sq_fail(q, rc);
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
    return sq_fail(q, rc);
  int src = sqlite3_step(st);
  const char *mode =
      src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
  rc = 0;
  if (src != SQLITE_ROW)
    rc = sq_fail(q, src);
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
  cr__free(q);
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
    return sq_fail(q, rc);
  int src = sqlite3_step(st);
  if (src == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    snprintf(buf, len, "%s", t != NULL ? t : "");
  }
  rc = src == SQLITE_ROW ? 0 : src == SQLITE_DONE ? CR_ENOENT : sq_fail(q, src);
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
    .exec_create = sq_exec_create,
    .exec_get = sq_exec_get,
    .exec_claim = sq_exec_claim,
    .exec_claim_one = sq_exec_claim_one,
    .exec_transition = sq_exec_transition,
    .exec_renew = sq_exec_renew,
    .exec_expire = sq_exec_expire,
    .exec_list = sq_exec_list,
    .exec_transitions = sq_exec_transitions,
    .exec_retry = sq_exec_retry,
    .exec_release_runner = sq_exec_release_runner,
    .exec_work_open = sq_exec_work_open,
    .work_mark_started = sq_work_mark_started,
    .sync_state_commit = sq_sync_state_commit,
    .sync_state_get = sq_sync_state_get,
    .sync_state_history = sq_sync_state_history,
    .sync_state_exec_records = sq_sync_state_exec_records,
    .auth_credentials_set = sq_auth_credentials_set,
    .auth_credentials_get = sq_auth_credentials_get,
    .sub_disable = sq_sub_disable,
    .sub_stats = sq_sub_stats,
    .outbox_enqueue = sq_outbox_enqueue,
    .outbox_due = sq_outbox_due,
    .outbox_next_due = sq_outbox_next_due,
    .outbox_record = sq_outbox_record,
    .outbox_replay = sq_outbox_replay,
};
