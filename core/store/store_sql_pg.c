/* store_sql_pg.c: what the SQL store says differently to PostgreSQL: the
 * schema at the latest version (a new database gets it in one step) and
 * the text of the statements whose SQLite text PostgreSQL does not accept
 * or runs differently (JSON arrays, month arithmetic, the last event id,
 * boolean sums, claims with FOR UPDATE SKIP LOCKED, and the write lock).
 *
 * Write transactions take one transaction-scoped advisory lock
 * (CR__SQ_PG_WRITE_LOCK), as SQLite's BEGIN IMMEDIATE takes its file's
 * write lock: writers are serialized across every connection of every
 * instance, so event ids commit in increasing order (a delivery cursor never
 * passes an event that commits later) and each operation keeps the meaning
 * it has on SQLite. Reads run on their own MVCC snapshots without the lock.
 * docs/design.md ("PostgreSQL") explains the choice. */
#include "store/store_sql_int.h"

#include <stddef.h>

// clang-format off
#define I "BIGINT"
#define JSON_OK(col) " CHECK (" col " IS NULL OR " col "::jsonb IS NOT NULL)"
#define STATES \
  "('created','pending','executing','completed','failed','cancelled')"

/* Version 14: the API objects' generation (cr_store_api_generation). */
#define PG_MIGRATION_14 \
  "CREATE TABLE api_generation (one " I " PRIMARY KEY CHECK (one = 1)," \
  "  value " I " NOT NULL);" \
  "INSERT INTO api_generation VALUES (1, 0);"

/* Version 15: named cursors (cr_store_cursor_get). */
#define PG_MIGRATION_15 \
  "CREATE TABLE cursors (name TEXT PRIMARY KEY, value " I " NOT NULL);"

/* Version 16: the works the local runner may run (store_sql_open.c). */
#define PG_MIGRATION_16 CR__SQ_WORKS_LOCAL_INDEX

const char cr__sq_pg_schema[] =
  "CREATE TABLE schema_migrations (version " I " PRIMARY KEY,"
  "  applied_at " I " NOT NULL);"
  "CREATE TABLE authorizations (id TEXT PRIMARY KEY NOT NULL, name TEXT,"
  "  description TEXT, provider TEXT NOT NULL, method TEXT, owner TEXT,"
  "  config_hash TEXT NOT NULL, created_at " I " NOT NULL,"
  "  updated_at " I " NOT NULL, deleted_at " I ");"
  "CREATE TABLE auth_health (id BIGSERIAL PRIMARY KEY,"
  "  auth_id TEXT NOT NULL REFERENCES authorizations(id) ON DELETE CASCADE,"
  "  checked_at " I " NOT NULL, status TEXT NOT NULL"
  "  CHECK (status IN ('healthy','unhealthy','unknown')), reason TEXT);"
  "CREATE TABLE works (id TEXT PRIMARY KEY NOT NULL, name TEXT,"
  "  provider TEXT NOT NULL,"
  "  authorization_id TEXT REFERENCES authorizations(id),"
  "  schedule_json TEXT" JSON_OK("schedule_json") ","
  "  destination_json TEXT" JSON_OK("destination_json") ","
  "  config_json TEXT" JSON_OK("config_json") ","
  "  enabled " I " NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),"
  "  error_email_notifications " I " NOT NULL DEFAULT 0"
  "    CHECK (error_email_notifications IN (0,1)),"
  "  max_attempts " I " NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),"
  "  config_hash TEXT NOT NULL, next_run_at " I ","
  "  created_at " I " NOT NULL, updated_at " I " NOT NULL,"
  "  deleted_at " I ", first_run_at " I ","
  "  runner_labels_json TEXT" JSON_OK("runner_labels_json") ");"
  "CREATE TABLE executions (id BIGSERIAL PRIMARY KEY,"
  "  work_id TEXT NOT NULL REFERENCES works(id),"
  "  state TEXT NOT NULL CHECK (state IN " STATES "),"
  "  attempt " I " NOT NULL DEFAULT 1 CHECK (attempt >= 1), runner_id TEXT,"
  "  lease_epoch " I " NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0),"
  "  lease_expires_at " I ", error_class TEXT, error TEXT,"
  "  created_at " I " NOT NULL, updated_at " I " NOT NULL,"
  "  not_before " I ", report_epoch " I " NOT NULL DEFAULT 0,"
  "  report_seq " I " NOT NULL DEFAULT 0, report_result TEXT);"
  "CREATE TABLE execution_transitions (id BIGSERIAL PRIMARY KEY,"
  "  execution_id " I " NOT NULL REFERENCES executions(id) ON DELETE CASCADE,"
  "  from_state TEXT CHECK (from_state IS NULL OR from_state IN " STATES "),"
  "  to_state TEXT NOT NULL CHECK (to_state IN " STATES "),"
  "  at " I " NOT NULL, reason TEXT);"
  "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, at " I " NOT NULL,"
  "  subject_type TEXT NOT NULL, subject_id TEXT NOT NULL,"
  "  verb TEXT NOT NULL, actor TEXT, seq " I " NOT NULL CHECK (seq >= 1),"
  "  data_json TEXT" JSON_OK("data_json") ","
  "  UNIQUE (subject_type, subject_id, seq));"
  "CREATE TABLE event_subjects (subject_type TEXT NOT NULL,"
  "  subject_id TEXT NOT NULL, last_seq " I " NOT NULL,"
  "  PRIMARY KEY (subject_type, subject_id));"
  "CREATE FUNCTION events_subject_seq() RETURNS trigger LANGUAGE plpgsql AS"
  "  $f$ BEGIN INSERT INTO event_subjects (subject_type, subject_id,"
  "  last_seq) VALUES (NEW.subject_type, NEW.subject_id, NEW.seq)"
  "  ON CONFLICT (subject_type, subject_id) DO UPDATE"
  "  SET last_seq = excluded.last_seq; RETURN NULL; END $f$;"
  "CREATE TRIGGER events_subject_seq AFTER INSERT ON events FOR EACH ROW"
  "  EXECUTE FUNCTION events_subject_seq();"
  "CREATE TABLE runners (id TEXT PRIMARY KEY NOT NULL, name TEXT,"
  "  providers_json TEXT" JSON_OK("providers_json") ","
  "  slots " I " NOT NULL DEFAULT 1 CHECK (slots >= 0),"
  "  last_seen_at " I ", token_hash TEXT,"
  "  labels_json TEXT" JSON_OK("labels_json") ", version TEXT,"
  "  slots_free " I " NOT NULL DEFAULT 0, registered_at " I ","
  "  revoked_at " I ", online " I " NOT NULL DEFAULT 0, registration TEXT,"
  "  last_claim_id TEXT,"
  "  last_claim_json TEXT" JSON_OK("last_claim_json") ");"
  "CREATE TABLE sync_state (work_id TEXT NOT NULL REFERENCES works(id),"
  "  version " I " NOT NULL CHECK (version >= 1),"
  "  state_json TEXT" JSON_OK("state_json") ","
  "  records " I " NOT NULL DEFAULT 0 CHECK (records >= 0),"
  "  committed_at " I " NOT NULL,"
  "  execution_id " I " REFERENCES executions(id) ON DELETE SET NULL,"
  "  note TEXT, PRIMARY KEY (work_id, version));"
  "CREATE TABLE metrics ("
  "  auth_id TEXT NOT NULL REFERENCES authorizations(id) ON DELETE CASCADE,"
  "  bucket_start " I " NOT NULL"
  "    CHECK (bucket_start >= 0 AND bucket_start % 3600000 = 0),"
  "  requests " I " NOT NULL DEFAULT 0 CHECK (requests >= 0),"
  "  errors " I " NOT NULL DEFAULT 0 CHECK (errors >= 0),"
  "  PRIMARY KEY (auth_id, bucket_start));"
  "CREATE INDEX metrics_by_bucket ON metrics(bucket_start);"
  "CREATE TABLE subscriptions (id TEXT PRIMARY KEY NOT NULL,"
  "  workflow TEXT NOT NULL, config_hash TEXT NOT NULL,"
  "  enabled " I " NOT NULL DEFAULT 1 CHECK (enabled IN (0,1)),"
  "  disabled_reason TEXT, created_at " I " NOT NULL,"
  "  updated_at " I " NOT NULL, filter_json TEXT" JSON_OK("filter_json") ","
  "  cursor_event_id " I " NOT NULL DEFAULT 0, max_in_flight " I
  "    CHECK (max_in_flight IS NULL OR max_in_flight >= 1),"
  "  failing_since " I ", batched " I " NOT NULL DEFAULT 0);"
  "CREATE TABLE outbox (subscription_id TEXT NOT NULL"
  "    REFERENCES subscriptions(id) ON DELETE CASCADE,"
  "  event_id " I " NOT NULL REFERENCES events(id) ON DELETE CASCADE,"
  "  status TEXT NOT NULL DEFAULT 'pending'"
  "    CHECK (status IN ('pending','delivered','failed','dead')),"
  "  attempts " I " NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
  "  next_attempt_at " I ", last_status " I ", last_error TEXT,"
  "  first_attempt_at " I ", PRIMARY KEY (subscription_id, event_id));"
  "CREATE INDEX auth_health_by_auth ON auth_health(auth_id, checked_at);"
  "CREATE INDEX works_by_auth ON works(authorization_id);"
  "CREATE INDEX works_due ON works(next_run_at)"
  "  WHERE deleted_at IS NULL AND enabled = 1;"
  "CREATE INDEX executions_by_work ON executions(work_id, id);"
  "CREATE INDEX execution_transitions_by_execution"
  "  ON execution_transitions(execution_id, id);"
  "CREATE INDEX events_by_at ON events(at);"
  "CREATE INDEX sync_state_by_execution ON sync_state(execution_id);"
  "CREATE TABLE auth_credentials (auth_id TEXT PRIMARY KEY NOT NULL"
  "    REFERENCES authorizations(id) ON DELETE CASCADE,"
  "  config_hash TEXT NOT NULL, scheme TEXT NOT NULL, key_id TEXT,"
  "  blob BYTEA NOT NULL, updated_at " I " NOT NULL);"
  "CREATE INDEX executions_by_runner ON executions(runner_id)"
  "  WHERE runner_id IS NOT NULL;"
  "CREATE INDEX outbox_undelivered"
  "  ON outbox(subscription_id, event_id, next_attempt_at)"
  "  WHERE status IN ('pending','failed');"
  "CREATE INDEX executions_leased_by_work ON executions(work_id)"
  "  WHERE state IN ('pending','executing');"
  "CREATE INDEX executions_created ON executions(created_at, id)"
  "  WHERE state = 'created';"
  "CREATE INDEX outbox_by_event_id ON outbox(event_id);"
  "CREATE INDEX executions_lease_expiry ON executions(lease_expires_at)"
  "  WHERE state IN ('pending','executing');"
  "CREATE TABLE delivery_attempts (id BIGSERIAL PRIMARY KEY,"
  "  subscription_id TEXT NOT NULL, event_id " I " NOT NULL,"
  "  at " I " NOT NULL, http_status " I ","
  "  latency_ms " I " CHECK (latency_ms IS NULL OR latency_ms >= 0),"
  "  error TEXT, last_event_id " I ", event_count " I ", batch_status TEXT);"
  "CREATE INDEX delivery_attempts_by_sub_at"
  "  ON delivery_attempts(subscription_id, at);"
  "CREATE FUNCTION delivery_attempts_of_subscription() RETURNS trigger"
  "  LANGUAGE plpgsql AS $f$ BEGIN DELETE FROM delivery_attempts"
  "  WHERE subscription_id = OLD.id; RETURN NULL; END $f$;"
  "CREATE TRIGGER delivery_attempts_of_subscription AFTER DELETE ON"
  "  subscriptions FOR EACH ROW"
  "  EXECUTE FUNCTION delivery_attempts_of_subscription();"
  "CREATE TABLE api_objects (kind TEXT NOT NULL CHECK (kind IN"
  "  ('authorization', 'work', 'subscription')), id TEXT NOT NULL,"
  "  def_json TEXT NOT NULL CHECK (def_json::jsonb IS NOT NULL),"
  "  sealed BYTEA, key_id TEXT, created_by TEXT,"
  "  created_at " I " NOT NULL, updated_at " I " NOT NULL,"
  "  PRIMARY KEY (kind, id));"
  "CREATE TABLE api_idempotency (token TEXT NOT NULL, key TEXT NOT NULL,"
  "  route TEXT NOT NULL, body_hash TEXT NOT NULL, status " I " NOT NULL,"
  "  response_json TEXT, created_at " I " NOT NULL,"
  "  PRIMARY KEY (token, key));"
  "CREATE INDEX api_idempotency_by_age ON api_idempotency(created_at);"
  "CREATE TABLE execution_logs (id BIGSERIAL PRIMARY KEY,"
  "  execution_id " I " NOT NULL, at " I " NOT NULL,"
  "  level " I " NOT NULL, text TEXT NOT NULL);"
  "CREATE INDEX execution_logs_by_execution"
  "  ON execution_logs(execution_id, id);"
  "CREATE TABLE instances (id TEXT PRIMARY KEY,"
  "  info_json TEXT NOT NULL CHECK (info_json::jsonb IS NOT NULL),"
  "  started_at " I " NOT NULL, last_seen_at " I " NOT NULL);"
  "CREATE TABLE duties (name TEXT PRIMARY KEY, holder TEXT NOT NULL,"
  "  since " I " NOT NULL, expires_at " I " NOT NULL, epoch " I " NOT NULL);"
  "CREATE TABLE webhook_batches (subscription_id TEXT PRIMARY KEY"
  "    REFERENCES subscriptions(id) ON DELETE CASCADE,"
  "  first_id " I " NOT NULL,"
  "  last_id " I " NOT NULL CHECK (last_id >= first_id),"
  "  count " I " NOT NULL CHECK (count > 0),"
  "  attempts " I " NOT NULL DEFAULT 0, next_attempt_at " I " NOT NULL,"
  "  first_attempt_at " I ");"
  PG_MIGRATION_14 PG_MIGRATION_15 PG_MIGRATION_16;

/* From version 13 (the first on PostgreSQL) on. */
const char *const cr__sq_pg_migrations[] = {PG_MIGRATION_14, PG_MIGRATION_15,
                                             PG_MIGRATION_16, NULL};

/* The last event id ever given (events may have been pruned since). */
#define PG_EVENTS_SEQ \
  "(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM " \
  "events_id_seq)"
#define PG_MQ_MONTH \
  "(extract(epoch FROM date_trunc('month', to_timestamp(bucket_start / " \
  "1000) AT TIME ZONE 'UTC'))::bigint * 1000)"
/* A JSON array of strings as rows. */
#define ARR(p) "(SELECT jsonb_array_elements_text(" p "::jsonb))"
#define CLAIMABLE(route) \
  "SELECT e.id FROM executions e JOIN works w ON w.id = e.work_id " \
  "WHERE e.state = 'created' AND w.deleted_at IS NULL " \
  "AND w.provider IN " ARR("?1") " " \
  "AND (e.not_before IS NULL OR e.not_before <= ?2) " route \
  "AND NOT EXISTS (SELECT 1 FROM executions o WHERE o.work_id = e.work_id " \
  "AND o.state IN ('pending','executing')) "
/* The probe asks whether any execution is claimable, not which is oldest:
 * without the ORDER BY, even the bitmap scan a burst of new executions gets
 * (below) stops at the first match instead of sorting every created one.
 * It runs outside a transaction, where SET LOCAL cannot reach it; with the
 * sort it took 3.8 ms at the start of bench_scaleout's 1,000 works. */
#define PROBE(route) CLAIMABLE(route) "LIMIT 1"
#define CANDIDATE(route) \
  CLAIMABLE(route) "ORDER BY e.created_at, e.id LIMIT 1 FOR UPDATE OF e " \
  "SKIP LOCKED"
/* The local runner's: when no work it could run exists (every work routed
 * to labelled runners: a scale-out where remote runners do the work), the
 * uncorrelated EXISTS is a one-time filter and the query reads no
 * execution, instead of every created one (0.5 ms each with 1,000). */
#define PG_LOCAL \
  "AND w.runner_labels_json IS NULL AND EXISTS (SELECT 1 FROM works u " \
  "WHERE u.runner_labels_json IS NULL AND u.deleted_at IS NULL " \
  "AND u.provider IN " ARR("?1") ") "
#define PG_ROUTED \
  "AND (w.runner_labels_json IS NULL OR NOT EXISTS (SELECT 1 FROM " \
  "jsonb_array_elements_text(w.runner_labels_json::jsonb) l(value) " \
  "WHERE l.value NOT IN " ARR("COALESCE(?3::text, '[]')") ")) " \
  "AND (w.runner_labels_json IS NOT NULL OR w.provider NOT IN " \
  ARR("COALESCE(?4::text, '[]')") ") "
#define LE(n) "sum(CASE WHEN d <= " #n " THEN 1 ELSE 0 END), "

const char *const cr__sq_pg_sql[ST_COUNT] = {
  [ST_BEGIN] = "BEGIN; SELECT pg_advisory_xact_lock(" CR__SQ_PG_WRITE_LOCK ")",
  /* cr_store_begin_rows: no write lock; the driver knows this text */
  [ST_BEGIN_ROWS] = "BEGIN ISOLATION LEVEL READ COMMITTED",

  [ST_NOTIFY] = "SELECT pg_notify('connrun', ?1)",
  [ST_OUTBOX_INSERT_SET] =
      "INSERT INTO outbox (subscription_id, event_id, status, attempts, "
      "next_attempt_at) SELECT ?1, x::bigint, 'pending', 0, ?3 FROM "
      "jsonb_array_elements_text(?2::jsonb) AS t(x) ON CONFLICT DO NOTHING",
  [ST_OUTBOX_SET_MANY] =
      "UPDATE outbox o SET status = x.st, attempts = o.attempts + 1, "
      "next_attempt_at = CASE WHEN x.st IN ('pending','failed') THEN x.nx "
      "ELSE NULL END, last_status = x.hs, last_error = x.er, "
      "first_attempt_at = COALESCE(o.first_attempt_at, ?2) FROM "
      "jsonb_to_recordset(?1::jsonb) AS x(s text, e bigint, st text, "
      "nx bigint, hs bigint, lt bigint, er text) WHERE o.subscription_id = "
      "x.s AND o.event_id = x.e",
  [ST_ATTEMPT_INSERT_MANY] =
      "INSERT INTO delivery_attempts (subscription_id, event_id, at, "
      "http_status, latency_ms, error) SELECT x.s, x.e, ?2, x.hs, x.lt, "
      "x.er FROM jsonb_to_recordset(?1::jsonb) AS x(s text, e bigint, "
      "st text, nx bigint, hs bigint, lt bigint, er text) WHERE EXISTS "
      "(SELECT 1 FROM outbox o WHERE o.subscription_id = x.s AND "
      "o.event_id = x.e)",
  [ST_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ",
  [ST_SUB_WRITE] = SUB_WRITE_SQL(PG_EVENTS_SEQ),
  [ST_EVENT_LAST_ID] =
    "SELECT COALESCE(" PG_EVENTS_SEQ ", (SELECT max(id) FROM events), 0)",
  [ST_MQ_MONTH_AUTH] = MQ(PG_MQ_MONTH, MQ_AUTH),
  [ST_MQ_MONTH_ALL] = MQ(PG_MQ_MONTH, ""),
  /* A burst of new executions outruns the table's statistics, and the
   * candidate query then took a bitmap scan and a sort of every created
   * execution, for every claim, under the write lock (bench_scaleout with
   * BENCH_VERBOSE: 1,000 index entries a scan, against 1 to 200 along the
   * executions_created index). Sent with the claim's first statement. */
  [ST_PLAN_NO_BITMAP] = "SET LOCAL enable_bitmapscan = off",
  [ST_EXEC_CANDIDATE] = CANDIDATE(PG_LOCAL),
  /* The outbox fills faster than its statistics follow (6 subscriptions x
   * 6,000 events in seconds), and the batch's UPDATE ... FROM and INSERT ...
   * WHERE EXISTS over jsonb_to_recordset then took a hash join over a
   * sequential scan of the whole outbox: 4-6 ms a batch of 100, 55 us a
   * row. Each row of a batch is one primary-key lookup. */
  [ST_PLAN_NO_SEQSCAN] = "SET LOCAL enable_seqscan = off",
  [ST_EXEC_CANDIDATE_ROUTED] = CANDIDATE(PG_ROUTED),
  [ST_EXEC_PROBE] = PROBE(PG_LOCAL),
  [ST_EXEC_PROBE_ROUTED] = PROBE(PG_ROUTED),
  [ST_STAT_EXEC_DURATIONS] =
    "SELECT w.provider, NULL, " LE(100) LE(500) LE(1000) LE(5000) LE(30000)
    LE(60000) LE(300000) LE(1800000) LE(3600000) LE(21600000) "count(*), "
    "sum(d) FROM (SELECT work_id, updated_at - created_at AS d FROM "
    "executions WHERE state IN ('completed', 'failed')) e JOIN works w ON "
    "w.id = e.work_id GROUP BY w.provider",
  [ST_SYNC_COMMIT] =
    "INSERT INTO sync_state (" SYNC_COLS ") SELECT id, COALESCE((SELECT "
    "MAX(version) FROM sync_state WHERE work_id = ?1), 0) + 1, ?2::text, "
    "?3::bigint, ?4::bigint, ?5::bigint, ?6::text FROM works WHERE id = ?1 "
    "RETURNING version",
};
// clang-format on
