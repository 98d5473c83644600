/* store_sql_int.h: the SQLite store backend's shared internals, used by
 * store_sql.c (schema, helpers, most operations), store_sql_exec.c
 * (executions, sync state) and store_sql_outbox.c (webhook outbox): the
 * prepared-statement list (SQL text), struct sq_store, the row collector's
 * types, the shared statement helpers and the operations the ops table in
 * store_sql.c points to. Internal to the backend; nothing else includes it.
 */
#ifndef CR_STORE_SQL_INT_H
#define CR_STORE_SQL_INT_H

#include "store/sql/sql.h"
#include "store/store_int.h"
#include "store/wlock.h"

#include <stddef.h>
#include <stdint.h>

/* ---- Statements ---------------------------------------------------------- */

// clang-format off
#define AUTH_COLS \
  "id, name, description, provider, method, owner, config_hash, " \
  "created_at, updated_at"
#define WORK_COLS \
  "id, name, provider, authorization_id, schedule_json, destination_json, " \
  "config_json, config_hash, enabled, error_email_notifications, " \
  "max_attempts, next_run_at, created_at, updated_at, runner_labels_json"
#define RUNNER_COLS \
  "id, name, version, labels_json, providers_json, registration, " \
  "token_hash, slots, slots_free, registered_at, last_seen_at, " \
  "COALESCE(revoked_at, 0), online, last_claim_id, last_claim_json"
/* With the executions' counts (views only: each count reads the runner's
 * executions). */
#define RUNNER_COLS_COUNTS \
  RUNNER_COLS ", " \
  "(SELECT count(*) FROM executions e WHERE e.runner_id = runners.id AND " \
  "e.state IN ('pending','executing')), " \
  "(SELECT count(*) FROM executions e WHERE e.runner_id = runners.id AND " \
  "e.state = 'completed'), " \
  "(SELECT count(*) FROM executions e WHERE e.runner_id = runners.id AND " \
  "e.state = 'failed')"
#define EVENT_COLS \
  "id, at, seq, subject_type, subject_id, verb, actor, data_json"
#define EXEC_COLS \
  "id, work_id, state, attempt, runner_id, lease_epoch, lease_expires_at, " \
  "error_class, error, created_at, updated_at, not_before"
#define EXEC_LEASED "('pending','executing')"
/* The oldest claimable execution (cr_store_exec_claim): for the local
 * runner (route LITE_LOCAL) or routed by labels (LITE_ROUTED). PostgreSQL's
 * claim locks the row it finds (store_sql_pg.c); its probe
 * (cr_store_exec_claimable) does not. */
#define LITE_CANDIDATE(route) \
  "SELECT e.id FROM executions e INDEXED BY executions_created " \
  "JOIN works w ON w.id = e.work_id " \
  "WHERE e.state = 'created' AND w.deleted_at IS NULL " \
  "AND w.provider IN (SELECT value FROM json_each(?1)) " \
  "AND (e.not_before IS NULL OR e.not_before <= ?2) " route \
  "AND NOT EXISTS (SELECT 1 FROM executions o WHERE o.work_id = e.work_id " \
  "AND o.state IN " EXEC_LEASED ") ORDER BY e.created_at, e.id LIMIT 1"
#define LITE_LOCAL "AND w.runner_labels_json IS NULL "
#define LITE_ROUTED \
  "AND (w.runner_labels_json IS NULL OR NOT EXISTS (SELECT 1 FROM " \
  "json_each(w.runner_labels_json) l WHERE l.value NOT IN (SELECT value " \
  "FROM json_each(COALESCE(?3, '[]'))))) " \
  "AND (w.runner_labels_json IS NOT NULL OR w.provider NOT IN (SELECT " \
  "value FROM json_each(COALESCE(?4, '[]')))) "
#define EXEC_OPEN "('created','pending','executing')"
#define SYNC_COLS \
  "work_id, version, state_json, records, committed_at, execution_id, note"
#define SUB_COLS \
  "id, workflow, config_hash, enabled, disabled_reason, created_at, " \
  "updated_at, filter_json, cursor_event_id, failing_since, batched"
#define UNDELIVERED "status IN ('pending','failed')"
#define OUTBOX_COLS \
  "o.subscription_id, o.event_id, o.status, o.attempts, o.next_attempt_at, " \
  "o.first_attempt_at, o.last_status, o.last_error, e.id, e.at, e.seq, " \
  "e.subject_type, e.subject_id, e.verb, e.actor, e.data_json"
#define EVENTS_SEQ \
  "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)"

/* A subscription written; a new one starts after the last event id. */
#define SUB_WRITE_SQL(events_seq) \
    "INSERT INTO subscriptions (id, workflow, config_hash, enabled, " \
    "disabled_reason, created_at, updated_at, filter_json, " \
    "cursor_event_id, batched) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, " \
    events_seq ", ?9) ON CONFLICT (id) DO UPDATE SET " \
    "workflow = excluded.workflow, batched = excluded.batched, " \
    "config_hash = excluded.config_hash, enabled = excluded.enabled, " \
    "disabled_reason = excluded.disabled_reason, " \
    "created_at = excluded.created_at, updated_at = excluded.updated_at, " \
    "filter_json = excluded.filter_json, failing_since = NULL"

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
  X(BEGIN_ROWS, "BEGIN IMMEDIATE") \
  X(BEGIN_READ, "BEGIN DEFERRED") \
  X(COMMIT, "COMMIT") \
  X(NOTIFY, "SELECT ?1") /* PostgreSQL only: see store_sql_pg.c */ \
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
    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, NULL) " \
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, " \
    "provider = excluded.provider, " \
    "authorization_id = excluded.authorization_id, " \
    "schedule_json = excluded.schedule_json, " \
    "destination_json = excluded.destination_json, " \
    "config_json = excluded.config_json, " \
    "config_hash = excluded.config_hash, enabled = excluded.enabled, " \
    "error_email_notifications = excluded.error_email_notifications, " \
    "max_attempts = excluded.max_attempts, " \
    "runner_labels_json = excluded.runner_labels_json, " \
    "next_run_at = CASE WHEN works.deleted_at IS NOT NULL " \
    "THEN excluded.next_run_at " \
    "ELSE COALESCE(excluded.next_run_at, works.next_run_at) END, " \
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
    "?6) RETURNING id") \
  X(EVENT_PRUNE, \
    "DELETE FROM events WHERE at < ?1 AND id NOT IN (SELECT event_id " \
    "FROM outbox WHERE status IN ('pending','failed')) AND id <= (SELECT " \
    "COALESCE(MIN(cursor_event_id), 9223372036854775807) FROM " \
    "subscriptions WHERE enabled = 1)") \
  X(OUTBOX_PRUNE, \
    "DELETE FROM outbox WHERE status IN ('delivered','dead') AND event_id " \
    "IN (SELECT id FROM events WHERE at < ?1)") \
  X(ATTEMPT_PRUNE, \
    "DELETE FROM delivery_attempts WHERE subscription_id IN (SELECT id FROM " \
    "subscriptions) AND at < ?1") \
  X(METRICS_ADD, \
    "INSERT INTO metrics (auth_id, bucket_start, requests, errors) " \
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (auth_id, bucket_start) DO UPDATE " \
    "SET requests = metrics.requests + excluded.requests, " \
    "errors = metrics.errors + excluded.errors") \
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
  X(SUB_WRITE, SUB_WRITE_SQL(EVENTS_SEQ)) \
  X(SUB_DISABLE, \
    "UPDATE subscriptions SET enabled = 0, disabled_reason = ?3, " \
    "updated_at = ?2 WHERE id = ?1") \
  X(SUB_ENABLED, \
    "SELECT id, filter_json, cursor_event_id FROM subscriptions " \
    "WHERE enabled = 1 AND workflow <> 'table_system_events' AND " \
    "batched = 0 ORDER BY id") \
  /* max(id) is one index probe; "EXISTS (... FROM events WHERE id > min)" \
   * was a sequential scan of events on PostgreSQL, whose planner cannot \
   * know the subquery's value (and found no row when it was NULL). */ \
  X(OUTBOX_ENQ_PROBE, \
    "SELECT EXISTS (SELECT 1 WHERE (SELECT max(id) FROM events) > (SELECT " \
    "min(cursor_event_id) FROM subscriptions WHERE enabled = 1 AND " \
    "workflow <> 'table_system_events' AND batched = 0))") \
  X(SUB_FILTER, \
    "SELECT id, filter_json, cursor_event_id FROM subscriptions " \
    "WHERE id = ?1") \
  X(SUB_CURSOR, \
    "UPDATE subscriptions SET cursor_event_id = ?2 WHERE id = ?1 " \
    "AND cursor_event_id < ?2") \
  X(SUB_CURSOR_SET, \
    "UPDATE subscriptions SET cursor_event_id = ?2 WHERE id = ?1 " \
    "AND (?3 = 0 OR cursor_event_id < ?2)") \
  X(BATCH_GET, \
    "SELECT first_id, last_id, count, attempts, next_attempt_at, " \
    "COALESCE(first_attempt_at, 0) FROM webhook_batches " \
    "WHERE subscription_id = ?1") \
  X(BATCH_OPEN, \
    "INSERT INTO webhook_batches (subscription_id, first_id, last_id, " \
    "count, next_attempt_at) SELECT ?1, ?2, ?3, ?4, ?5 FROM subscriptions " \
    "WHERE id = ?1 AND cursor_event_id < ?2") \
  X(BATCH_ATTEMPT, \
    "INSERT INTO delivery_attempts (subscription_id, event_id, at, " \
    "http_status, latency_ms, error, last_event_id, event_count, " \
    "batch_status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)") \
  X(BATCH_CLOSE, "DELETE FROM webhook_batches WHERE subscription_id = ?1") \
  X(BATCH_IS, "SELECT batched FROM subscriptions WHERE id = ?1") \
  X(BATCH_REWIND, \
    "UPDATE subscriptions SET cursor_event_id = CASE WHEN " \
    "cursor_event_id < r THEN cursor_event_id ELSE r END FROM (SELECT " \
    "COALESCE((SELECT max(id) FROM events WHERE at < ?2), 0) AS r) " \
    "WHERE id = ?1") \
  X(BATCH_REPLAYED, \
    "SELECT count(*) FROM events WHERE id > (SELECT cursor_event_id FROM " \
    "subscriptions WHERE id = ?1) AND id <= ?2") \
  X(BATCH_RETRY, \
    "UPDATE webhook_batches SET attempts = attempts + 1, " \
    "next_attempt_at = ?2, first_attempt_at = COALESCE(first_attempt_at, " \
    "?3), last_id = ?4, count = ?5 WHERE subscription_id = ?1") \
  X(INSTANCE_BEAT, \
    "INSERT INTO instances (id, info_json, started_at, last_seen_at) " \
    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET " \
    "info_json = excluded.info_json, last_seen_at = excluded.last_seen_at") \
  X(INSTANCE_FORGET, "DELETE FROM instances WHERE last_seen_at < ?1") \
  X(INSTANCE_LIST, \
    "SELECT id, info_json, started_at, last_seen_at FROM instances " \
    "ORDER BY id") \
  X(DUTY_GET, \
    "SELECT name, holder, since, expires_at, epoch FROM duties " \
    "WHERE name = ?1") \
  X(DUTY_ACQUIRE, \
    "INSERT INTO duties (name, holder, since, expires_at, epoch) " \
    "VALUES (?1, ?2, ?3, ?3 + ?4, 1) ON CONFLICT (name) DO UPDATE SET " \
    "since = CASE WHEN duties.holder = excluded.holder THEN duties.since " \
    "ELSE excluded.since END, " \
    "epoch = CASE WHEN duties.holder = excluded.holder THEN duties.epoch " \
    "ELSE duties.epoch + 1 END, " \
    "holder = excluded.holder, expires_at = excluded.expires_at " \
    "WHERE duties.holder = excluded.holder OR duties.expires_at <= " \
    "excluded.since") \
  X(DUTY_RELEASE, \
    "UPDATE duties SET expires_at = ?3 WHERE name = ?1 AND holder = ?2") \
  X(DUTY_LIST, \
    "SELECT name, holder, since, expires_at, epoch FROM duties " \
    "ORDER BY name") \
  X(SUB_FAILING, \
    "UPDATE subscriptions SET failing_since = CASE " \
    "WHEN ?2 IN ('failed','dead') THEN COALESCE(failing_since, ?3) " \
    "WHEN ?2 = 'delivered' THEN NULL ELSE failing_since END WHERE id = ?1 " \
    "AND ((?2 IN ('failed','dead') AND failing_since IS NULL) OR " \
    "(?2 = 'delivered' AND failing_since IS NOT NULL))") \
  X(SUB_STATS, \
    "SELECT CASE WHEN b THEN (SELECT count(*) FROM events WHERE id > " \
    "(SELECT cursor_event_id FROM subscriptions WHERE id = ?1)) ELSE " \
    "(SELECT count(*) FROM outbox WHERE subscription_id = ?1 AND " \
    UNDELIVERED ") END, CASE WHEN b THEN (SELECT " \
    "COALESCE(sum(event_count), 0) FROM delivery_attempts WHERE " \
    "subscription_id = ?1 AND batch_status = 'delivered') ELSE (SELECT " \
    "count(*) FROM outbox WHERE subscription_id = ?1 AND status = " \
    "'delivered') END, CASE WHEN b THEN (SELECT COALESCE(sum(event_count), " \
    "0) FROM delivery_attempts WHERE subscription_id = ?1 AND batch_status " \
    "= 'dead') ELSE (SELECT count(*) FROM outbox WHERE subscription_id = " \
    "?1 AND status = 'dead') END, " \
    "(SELECT count(*) FROM delivery_attempts WHERE subscription_id = ?1 " \
    "AND at >= ?2), (SELECT count(*) FROM delivery_attempts WHERE " \
    "subscription_id = ?1 AND at >= ?2 AND http_status BETWEEN 200 AND " \
    "299), EXISTS (SELECT 1 FROM subscriptions WHERE id = ?1) FROM " \
    "(SELECT COALESCE((SELECT batched FROM subscriptions WHERE id = ?1), " \
    "0) = 1 AS b) AS kind") \
  X(SUB_ATTEMPTS, \
    "SELECT id, event_id, at, http_status, latency_ms, error FROM " \
    "delivery_attempts WHERE subscription_id = ?1 AND id < ?2 ORDER BY id " \
    "DESC LIMIT ?3") \
  X(SUB_EXISTS, "SELECT 1 FROM subscriptions WHERE id = ?1") \
  X(API_OBJECT_PUT, \
    "INSERT INTO api_objects (kind, id, def_json, sealed, key_id, " \
    "created_by, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, " \
    "?7, ?7) ON CONFLICT (kind, id) DO UPDATE SET def_json = ?3, sealed = " \
    "?4, key_id = ?5, updated_at = ?7") \
  X(API_OBJECT_LIST, \
    "SELECT kind, id, def_json, sealed, key_id, created_by, created_at, " \
    "updated_at FROM api_objects ORDER BY kind, id") \
  X(API_OBJECT_DELETE, "DELETE FROM api_objects WHERE kind = ?1 AND id = ?2") \
  X(API_GEN_BUMP, "UPDATE api_generation SET value = value + 1") \
  X(API_GEN_GET, "SELECT value FROM api_generation") \
  X(CURSOR_GET, "SELECT value FROM cursors WHERE name = ?1") \
  X(CURSOR_SET, \
    "INSERT INTO cursors (name, value) VALUES (?1, ?2) ON CONFLICT (name) " \
    "DO UPDATE SET value = ?2") \
  X(IDEM_GET, \
    "SELECT route, body_hash, response_json, status, created_at FROM " \
    "api_idempotency WHERE token = ?1 AND key = ?2 AND created_at >= ?3") \
  X(IDEM_PRUNE, "DELETE FROM api_idempotency WHERE created_at < ?1") \
  X(IDEM_PUT, \
    "INSERT INTO api_idempotency (token, key, route, body_hash, status, " \
    "response_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)") \
  X(STAT_EXEC_STATES, \
    "SELECT w.provider, e.state, count(*) FROM executions e JOIN works w " \
    "ON w.id = e.work_id GROUP BY w.provider, e.state") \
  X(STAT_EXEC_DURATIONS, \
    "SELECT w.provider, NULL, sum(d <= 100), sum(d <= 500), sum(d <= 1000), " \
    "sum(d <= 5000), sum(d <= 30000), sum(d <= 60000), sum(d <= 300000), " \
    "sum(d <= 1800000), sum(d <= 3600000), sum(d <= 21600000), count(*), " \
    "sum(d) FROM (SELECT work_id, updated_at - created_at AS d FROM " \
    "executions WHERE state IN ('completed', 'failed')) e JOIN works w ON " \
    "w.id = e.work_id GROUP BY w.provider") \
  X(STAT_REQUESTS, \
    "SELECT auth_id, NULL, sum(requests), sum(errors) FROM metrics GROUP " \
    "BY auth_id") \
  X(STAT_EVENTS, \
    "SELECT subject_type, verb, count(*) FROM events GROUP BY " \
    "subject_type, verb") \
  X(STAT_OUTBOX, \
    "SELECT subscription_id, status, count(*) FROM outbox GROUP BY " \
    "subscription_id, status") \
  X(STAT_ATTEMPTS, \
    "SELECT subscription_id, CASE WHEN http_status BETWEEN 200 AND 299 " \
    "THEN 'ok' ELSE 'error' END AS o, count(*) FROM delivery_attempts " \
    "GROUP BY subscription_id, o") \
  X(EVENT_LAST_ID, \
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = " \
    "'events'), (SELECT max(id) FROM events), 0)") \
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
  X(OUTBOX_DUE_AFTER, \
    "SELECT " OUTBOX_COLS " FROM outbox o INDEXED BY outbox_undelivered " \
    "JOIN events e ON e.id = o.event_id WHERE o.subscription_id = ?1 " \
    "AND o.event_id > ?2 AND o." UNDELIVERED " " \
    "AND COALESCE(o.next_attempt_at, 0) <= ?3 ORDER BY o.event_id LIMIT ?4") \
  X(SUB_ENABLED_IDS, \
    "SELECT id, NULL, 0 FROM subscriptions WHERE enabled = 1 ORDER BY id") \
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
  /* Set-based forms (PostgreSQL, store_sql_pg.c: one round trip for a \
   * batch): ?2 a JSON array of event ids; ?1 a JSON array of attempts \
   * {s, e, st, nx, hs, lt, er}, ?2 now. */ \
  X(OUTBOX_INSERT_SET, \
    "INSERT INTO outbox (subscription_id, event_id, status, attempts, " \
    "next_attempt_at) SELECT ?1, value, 'pending', 0, ?3 FROM json_each(?2) " \
    "WHERE true ON CONFLICT DO NOTHING") \
  X(PLAN_NO_SEQSCAN, "SELECT 1") /* PostgreSQL only (store_sql_pg.c) */ \
  X(OUTBOX_SET_MANY, \
    "UPDATE outbox SET status = x.st, attempts = attempts + 1, " \
    "next_attempt_at = CASE WHEN x.st IN ('pending','failed') THEN x.nx " \
    "ELSE NULL END, last_status = x.hs, last_error = x.er, " \
    "first_attempt_at = COALESCE(first_attempt_at, ?2) FROM (SELECT " \
    "value->>'s' AS s, value->>'e' AS e, value->>'st' AS st, value->>'nx' " \
    "AS nx, value->>'hs' AS hs, value->>'er' AS er FROM json_each(?1)) AS x " \
    "WHERE subscription_id = x.s AND event_id = x.e") \
  X(ATTEMPT_INSERT_MANY, \
    "INSERT INTO delivery_attempts (subscription_id, event_id, at, " \
    "http_status, latency_ms, error) SELECT value->>'s', value->>'e', ?2, " \
    "value->>'hs', value->>'lt', value->>'er' FROM json_each(?1) WHERE " \
    "EXISTS (SELECT 1 FROM outbox o WHERE o.subscription_id = value->>'s' " \
    "AND o.event_id = value->>'e')") \
  X(SUB_GET, "SELECT " SUB_COLS " FROM subscriptions WHERE id = ?1") \
  X(SUB_LIST, "SELECT " SUB_COLS " FROM subscriptions ORDER BY id") \
  X(SUB_DELETE, "DELETE FROM subscriptions WHERE id = ?1") \
  X(EXEC_CREATE, \
    "INSERT INTO executions (work_id, state, attempt, lease_epoch, " \
    "created_at, updated_at) SELECT id, 'created', 1, 0, ?2, ?2 FROM works " \
    "WHERE id = ?1 AND deleted_at IS NULL RETURNING id") \
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
  X(EXEC_CANDIDATE, LITE_CANDIDATE(LITE_LOCAL)) \
  X(EXEC_CANDIDATE_ROUTED, LITE_CANDIDATE(LITE_ROUTED)) \
  X(EXEC_PROBE, LITE_CANDIDATE(LITE_LOCAL)) \
  X(EXEC_PROBE_ROUTED, LITE_CANDIDATE(LITE_ROUTED)) \
  X(PLAN_NO_BITMAP, "SELECT 1") /* PostgreSQL only (store_sql_pg.c) */ \
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
    "lease_expires_at = CASE WHEN ?5 <> 0 THEN NULL ELSE lease_expires_at END, " \
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
  X(RUNNER_ADD, \
    "INSERT INTO runners (id, name, version, labels_json, providers_json, " \
    "registration, token_hash, slots, slots_free, registered_at, " \
    "last_seen_at, online) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, " \
    "?10, ?10, 0)") \
  X(RUNNER_GET, "SELECT " RUNNER_COLS " FROM runners WHERE id = ?1") \
  X(RUNNER_GET_COUNTS, \
    "SELECT " RUNNER_COLS_COUNTS " FROM runners WHERE id = ?1") \
  X(RUNNER_LIST, "SELECT " RUNNER_COLS_COUNTS " FROM runners ORDER BY id") \
  X(RUNNER_CHECKIN, \
    "UPDATE runners SET name = COALESCE(?2, name), " \
    "version = COALESCE(?3, version), " \
    "labels_json = COALESCE(?4, labels_json), " \
    "providers_json = COALESCE(?5, providers_json), " \
    "slots = CASE WHEN ?6 >= 0 THEN ?6 ELSE slots END, " \
    "slots_free = CASE WHEN ?7 >= 0 THEN ?7 ELSE slots_free END, " \
    "last_seen_at = ?8, online = 1 WHERE id = ?1 AND revoked_at IS NULL") \
  X(RUNNER_CLAIM_NOTE, \
    "UPDATE runners SET last_claim_id = ?2, last_claim_json = ?3 " \
    "WHERE id = ?1") \
  X(RUNNER_STATE, \
    "SELECT online, revoked_at IS NOT NULL FROM runners WHERE id = ?1") \
  X(RUNNER_REVOKE, \
    "UPDATE runners SET revoked_at = ?2, online = 0 " \
    "WHERE id = ?1 AND revoked_at IS NULL") \
  X(RUNNER_OFFLINE, \
    "UPDATE runners SET online = 0 WHERE online = 1 AND last_seen_at <= ?1 " \
    "RETURNING id") \
  X(EXEC_REPORT_GET, \
    "SELECT report_epoch, report_seq, report_result FROM executions " \
    "WHERE id = ?1") \
  X(EXEC_REPORT_SET, \
    "UPDATE executions SET report_epoch = ?2, report_seq = ?3, " \
    "report_result = ?4 WHERE id = ?1") \
  X(EXEC_LOG_ADD, \
    "INSERT INTO execution_logs (execution_id, at, level, text) " \
    "SELECT id, ?2, ?3, substr(?4, 1, 4000) FROM executions WHERE id = ?1") \
  X(EXEC_RETRY_DUE, \
    "SELECT EXISTS (SELECT 1 FROM executions INDEXED BY executions_created " \
    "WHERE state = 'created' AND not_before > ?1 AND not_before <= ?2)") \
  X(EXEC_LOG_LIST, \
    "SELECT id, at, level, text FROM execution_logs WHERE execution_id = ?1 " \
    "ORDER BY id LIMIT ?2") \
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

/* Event queries: statements cached by filter shape. */
#define EVQ_CACHE 16

struct sq_store {
  struct cr_store base;
  cr_sql *db;
  cr_sql_stmt *stmt[ST_COUNT];
  struct {
    int key; /* 0: empty slot */
    cr_sql_stmt *stmt;
  } evq[EVQ_CACHE];
  unsigned evq_next;
  int depth;   /* cr_store_begin nesting */
  int reading; /* a cr_store_read_begin snapshot is open (no write yet) */
  /* cr_store_read_keep: the open snapshot is kept for the next read_begin,
   * taken when the process had made read_gen commits, at read_at_ms */
  int kept;
  int counted; /* the process's commits are counted (a WAL file) */
  uint64_t read_gen;
  int64_t read_at_ms, keep_ms;
  int doomed;    /* an inner rollback or a lost transaction: refuse writes */
  cr__wlock *wl; /* the file's in-process writer lock (NULL: none) */
  int wl_held;   /* taken for the write transaction open now */
  int rows_only; /* the transaction began with cr_store_begin_rows */
};

/* The operations of both SQL stores (store_sql.c). */
extern const struct cr_store_ops cr__sq_ops;

/* PostgreSQL's text of the statements whose SQLite text does not serve it
 * as it is (store_sql_pg.c); NULL entries use the SQLite text. */
extern const char *const cr__sq_pg_sql[ST_COUNT];

/* PostgreSQL's schema at the latest version (store_sql_pg.c), and its
 * migrations from version CR__SQ_PG_FIRST_VERSION on (the first takes it to
 * the next version). */
#define CR__SQ_PG_FIRST_VERSION 13

/* Schema version 16 on both backends: the works the daemon's own runner may
 * run (no runner labels, not deleted), by provider. Its probe asks whether
 * any exists (ST_EXEC_PROBE); without the index PostgreSQL read every work
 * for that, at each daemon cycle of each instance. */
#define CR__SQ_WORKS_LOCAL_INDEX                                               \
  "CREATE INDEX works_local ON works(provider) WHERE runner_labels_json "      \
  "IS NULL AND deleted_at IS NULL;"

/* The key of PostgreSQL's write lock (pg_advisory_xact_lock), taken by
 * every write transaction of every connection (store_sql_pg.c). */
#define CR__SQ_PG_WRITE_LOCK "4627518003"
extern const char cr__sq_pg_schema[];
extern const char *const cr__sq_pg_migrations[];

/* store_sql_open.c: the ops of the same name. */
void cr__sq_close(cr_store *s);
int cr__sq_schema_version(cr_store *s, int *out);

/* The SQL of statement id for q's database. */
const char *cr__sq_stmt_sql(const struct sq_store *q, enum stmt_id id);

/* Opens the store on an open connection db (owned from here on), checking
 * and migrating the schema to version target; name is the database file
 * or URL (without password) for messages. store_sql_open.c. */
int cr__sq_open_on(cr_sql *db, const char *name, int target, cr_store **out,
                   char *errbuf, size_t errlen);

/* A row type for cr__sq_collect: record size, reader, clearer. */
typedef int (*row_fn)(cr_sql_stmt *st, void *rec);
typedef void (*clear_fn)(void *rec);

struct row_type {
  size_t size;
  row_fn read;
  clear_fn clear;
};

/* The SQLite store behind a cr_store created by this backend. */
static inline struct sq_store *sqs(cr_store *s) { return (struct sq_store *)s; }

/* ---- Shared helpers (store_sql.c) --------------------------------------
 * Each is documented at its definition. */

void cr__sq_bind_str(cr_sql_stmt *st, int i, const char *v);
void cr__sq_bind_time(cr_sql_stmt *st, int i, int64_t v);
int cr__sq_col_str(cr_sql_stmt *st, int i, char **dst);
int cr__sq_col_strs(cr_sql_stmt *st, int first, char **const *fields, size_t n);
int cr__sq_collect(struct sq_store *q, cr_sql_stmt *st,
                   const struct row_type *t, size_t cap0, void **out,
                   size_t *n);
void cr__sq_done(cr_sql_stmt *st);
int cr__sq_doomed(struct sq_store *q);
int cr__sq_get_by(struct sq_store *q, enum stmt_id id, const char *key,
                  const struct row_type *t, void **out, const char *what);
int cr__sq_list_by(struct sq_store *q, enum stmt_id id, const char *key,
                   const struct row_type *t, void **out, size_t *n);
int cr__sq_nomem(struct sq_store *q);
int cr__sq_not_found(struct sq_store *q, const char *what, const char *id);
int cr__sq_op_begin(struct sq_store *q);
int cr__sq_op_end(struct sq_store *q, int rc);
/* PostgreSQL: the planner setting id (ST_PLAN_*: a SET LOCAL, sent with the
 * next statement) for the rest of the transaction; nothing on SQLite. */
int cr__sq_plan(struct sq_store *q, enum stmt_id id);
int cr__sq_prep(struct sq_store *q, enum stmt_id id, cr_sql_stmt **out);
int cr__sq_fail(struct sq_store *q, int rc);
int cr__sq_step_done(struct sq_store *q, cr_sql_stmt *st);
int cr__sq_step_int(struct sq_store *q, cr_sql_stmt *st, int64_t *out,
                    int *found);

/* ---- Operations (store_sql_exec.c, store_sql_outbox.c) --------------
 * The cr_store_ops entries of the same name without cr__sq_; see store.h. */

int cr__sq_exec_claim(cr_store *s, const char *runner_id,
                      const char *const *providers, size_t nproviders,
                      const char *labels_json, const char *exclude_json,
                      size_t slots, int64_t now, int64_t lease_ms,
                      struct cr_exec_claim **out, size_t *n);
/* store_sql_runners.c: remote runners, reports and execution logs. */
int cr__sq_runner_add(cr_store *s, const struct cr_runner_rec *rec,
                      int64_t now);
int cr__sq_runner_get(cr_store *s, const char *id, int with_counts,
                      struct cr_runner_rec *out);
int cr__sq_runner_list(cr_store *s, struct cr_runner_rec **out, size_t *n);
int cr__sq_runner_checkin(cr_store *s, const struct cr_runner_rec *rec,
                          int64_t now, int *was_online);
int cr__sq_runner_revoke(cr_store *s, const char *id, int64_t now);
int cr__sq_runner_claim_note(cr_store *s, const char *id, const char *claim_id,
                             const char *claims_json);
int cr__sq_runner_mark_offline(cr_store *s, int64_t cutoff, char ***ids,
                               size_t *n);
int cr__sq_exec_report_get(cr_store *s, int64_t id, int64_t *epoch,
                           int64_t *seq, char **result);
int cr__sq_exec_report_set(cr_store *s, int64_t id, int64_t epoch, int64_t seq,
                           const char *result);
int cr__sq_exec_log_add(cr_store *s, int64_t id, int64_t at, int level,
                        const char *text);
int cr__sq_exec_log_list(cr_store *s, int64_t id, size_t limit,
                         struct cr_exec_log_rec **out, size_t *n);
int cr__sq_exec_retry_due(cr_store *s, int64_t after, int64_t until, int *due);
int cr__sq_exec_claimable(cr_store *s, const char *const *providers,
                          size_t nproviders, const char *labels_json,
                          const char *exclude_json, int64_t now, int *any);
int cr__sq_exec_claim_one(cr_store *s, int64_t id, const char *runner_id,
                          int64_t now, int64_t lease_ms,
                          struct cr_exec_claim *out);
int cr__sq_exec_create(cr_store *s, const char *work_id, int64_t now,
                       int64_t *id_out);
int cr__sq_exec_expire(cr_store *s, int64_t now, size_t *n_expired);
int cr__sq_exec_get(cr_store *s, int64_t id, struct cr_exec_rec *out);
int cr__sq_exec_list(cr_store *s, const char *work_id, size_t limit,
                     struct cr_exec_rec **out, size_t *n);
int cr__sq_exec_release_runner(cr_store *s, const char *runner_id,
                               const char *reason, int64_t now, size_t *n);
int cr__sq_exec_renew(cr_store *s, int64_t id, int64_t epoch, int64_t now,
                      int64_t lease_ms);
int cr__sq_exec_retry(cr_store *s, int64_t id, int64_t epoch,
                      int64_t not_before_ms, const char *reason,
                      const char *error_class, const char *error, int64_t now);
int cr__sq_exec_transition(cr_store *s, int64_t id, int64_t epoch,
                           const char *to_state, const char *reason,
                           const char *error_class, const char *error,
                           int64_t now);
int cr__sq_exec_transitions(cr_store *s, int64_t id,
                            struct cr_exec_transition_rec **out, size_t *n);
int cr__sq_exec_work_open(cr_store *s, const char *work_id, int *open);
int cr__sq_sync_state_commit(cr_store *s, const char *work_id,
                             const char *state_json, int64_t records,
                             int64_t execution_id, const char *note,
                             int64_t now, int64_t *version_out);
int cr__sq_sync_state_exec_records(cr_store *s, int64_t exec_id,
                                   int64_t *records);
int cr__sq_sync_state_get(cr_store *s, const char *work_id, int64_t version,
                          struct cr_sync_state_rec *out);
int cr__sq_sync_state_history(cr_store *s, const char *work_id, size_t limit,
                              struct cr_sync_state_rec **out, size_t *n);
int cr__sq_work_mark_started(cr_store *s, const char *id, int64_t now,
                             int *first);
int cr__sq_outbox_due(cr_store *s, int64_t now, const struct cr_outbox_pos *pos,
                      size_t n_pos, size_t limit, struct cr_outbox_rec **out,
                      size_t *n);
int cr__sq_outbox_enqueue(cr_store *s, size_t max_events, int64_t now,
                          size_t *enqueued);
int cr__sq_outbox_next_due(cr_store *s, int64_t *at);
/* store_sql_api.c: what the REST API reads beyond the core tables. */
int cr__sq_sub_attempts(cr_store *s, const char *sub_id, int64_t before_id,
                        size_t limit, struct cr_delivery_attempt_rec **out,
                        size_t *n);
int cr__sq_event_last_id(cr_store *s, int64_t *id);
int cr__sq_stats(cr_store *s, int which, struct cr_stat_row **out, size_t *n);
int cr__sq_api_object_put(cr_store *s, const struct cr_api_object_rec *rec,
                          int64_t now);
int cr__sq_api_object_list(cr_store *s, struct cr_api_object_rec **out,
                           size_t *n);
int cr__sq_api_object_delete(cr_store *s, const char *kind, const char *id);
int cr__sq_api_generation(cr_store *s, int64_t *out);
int cr__sq_cursor_get(cr_store *s, const char *name, int64_t *out);
int cr__sq_cursor_set(cr_store *s, const char *name, int64_t value);
int cr__sq_idem_get(cr_store *s, const char *token, const char *key,
                    int64_t now, struct cr_idem_rec *out);
int cr__sq_idem_put(cr_store *s, const char *token, const char *key,
                    const struct cr_idem_rec *rec, int64_t now);

int cr__sq_outbox_record_many(cr_store *s, const struct cr_outbox_attempt *a,
                              size_t n, int64_t now, size_t *recorded);
int cr__sq_outbox_record(cr_store *s, const char *sub_id, int64_t event_id,
                         const char *status, int http_status,
                         int64_t latency_ms, const char *error,
                         int64_t next_attempt_at, int64_t now);
int cr__sq_outbox_replay(cr_store *s, const char *sub_id, int64_t since_ms,
                         int64_t now, size_t *n);
int cr__sq_batch_get(cr_store *s, const char *sub_id, struct cr_batch_rec *out);
int cr__sq_batch_open(cr_store *s, const char *sub_id, int64_t first,
                      int64_t last, int64_t count, int64_t now);
int cr__sq_batch_record(cr_store *s, const char *sub_id,
                        const struct cr_batch_result *r, int64_t now);
int cr__sq_batch_note_dead(cr_store *s, const char *sub_id, int64_t event_id,
                           const char *error, int64_t now);
int cr__sq_batch_rewind(struct sq_store *q, const char *sub_id,
                        int64_t since_ms, int *batched, size_t *n);
int cr__sq_instance_beat(cr_store *s, const char *id, const char *info_json,
                         int64_t started_at, int64_t now);
int cr__sq_instance_list(cr_store *s, struct cr_instance_rec **out, size_t *n);
int cr__sq_duty_acquire(cr_store *s, const char *duty, const char *holder,
                        int64_t ttl_ms, int64_t now, int *held,
                        struct cr_duty_rec *prev);
int cr__sq_duty_release(cr_store *s, const char *duty, const char *holder,
                        int64_t now);
int cr__sq_duty_list(cr_store *s, struct cr_duty_rec **out, size_t *n);
int cr__sq_sub_set_cursor(cr_store *s, const char *id, int64_t cursor,
                          int forward_only);
int cr__sq_sub_disable(cr_store *s, const char *id, const char *reason,
                       int64_t now);
int cr__sq_sub_stats(cr_store *s, const char *sub_id, int64_t now,
                     struct cr_sub_stats *out);

#endif
