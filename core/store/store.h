/* store.h: connrun's persistent state: authorizations and their health and
 * rotated credentials, works, executions, sync state, events, activity
 * metrics, subscriptions and their webhook outbox.
 *
 * cr_store is an interface: a small object with a table of functions
 * (store_int.h). The embedded SQLite backend (store_sqlite.c, WAL mode) is the
 * default; a PostgreSQL backend for multi-host deployments implements the same
 * table later. Nothing in this header is specific to a backend.
 *
 * Conventions:
 *   - Every function returns 0 or a negative CR_E* code (error.h). Backend
 *     failures give CR_ESTORE (CR_EBUSY when the database stayed locked past
 *     the busy timeout, CR_ENOMEM when the backend ran out of memory), with
 *     the backend's message in cr_store_last_error(). A constraint violation
 *     gives CR_EEXIST (duplicate key) or CR_EINVAL (missing field, unknown
 *     reference, value out of its allowed set).
 *   - Times are int64_t milliseconds since the Unix epoch, UTC. 0 means "not
 *     set" where a column is nullable; an input time of 0 means "now".
 *   - Input records are borrowed: the store copies what it keeps.
 *   - Output records are allocated by the store and owned by the caller, who
 *     frees them with the matching cr_*_rec_free / cr_*_rec_free_list.
 *   - A cr_store is used by one thread at a time (open one per thread, or
 *     lock around it). Several processes may open the same database.
 *   - Every write works inside or outside an explicit transaction
 *     (cr_store_begin). Outside one, each call is atomic on its own.
 *
 * Executions are claimed with a lease and fenced by an epoch: see
 * cr_store_exec_claim.
 *
 * Durability (SQLite): WAL with synchronous=NORMAL. A committed transaction
 * survives a crash of the process (kill -9); a power loss or OS crash may lose
 * the last few commits, never corrupt the database.
 */
#ifndef CR_STORE_H
#define CR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "events/vocab.h" /* enum cr_health_status */

typedef struct cr_store cr_store;

/* The database file cr_store_open() uses inside the data directory. */
#define CR_STORE_DB_NAME "connrun.db"

/* Busy timeout: how long a call waits for another connection's lock. */
#define CR_STORE_BUSY_TIMEOUT_MS 5000

/* Event query limits: 0 asks for the default; larger values are clamped. */
#define CR_EVENT_QUERY_DEFAULT_LIMIT 100
#define CR_EVENT_QUERY_MAX_LIMIT 10000
/* Most verbs one event filter may list. */
#define CR_EVENT_FILTER_MAX_VERBS 64

/* Execution list limits (same rules as the event query limit). */
#define CR_EXEC_LIST_DEFAULT_LIMIT 100
#define CR_EXEC_LIST_MAX_LIMIT 10000
/* Most providers one claim may list. */
#define CR_EXEC_CLAIM_MAX_PROVIDERS 256
/* cr_store_exec_transition epoch that matches any epoch: only for a move to
 * "cancelled" (an operator cancelling without holding the lease). */
#define CR_EXEC_EPOCH_ANY INT64_C(-1)

/* Sync state history limits (same rules as the event query limit). */
#define CR_SYNC_STATE_HISTORY_DEFAULT_LIMIT 100
#define CR_SYNC_STATE_HISTORY_MAX_LIMIT 10000

/* Health history limits (same rules as the event query limit). */
#define CR_HEALTH_HISTORY_DEFAULT_LIMIT 100
#define CR_HEALTH_HISTORY_MAX_LIMIT 10000

/* Result of an upsert, in *changed. */
enum cr_store_change {
  CR_STORE_UNCHANGED = 0, /* same config_hash: nothing written */
  CR_STORE_CREATED = 1,   /* new, or re-created after a delete */
  CR_STORE_UPDATED = 2,   /* existed with another config_hash */
};

/* Metrics aggregation period. Days, weeks and months are UTC; weeks are ISO
 * weeks (starting Monday 00:00 UTC); months are calendar months. */
enum cr_granularity {
  CR_GRAN_HOUR = 0,
  CR_GRAN_DAY = 1,
  CR_GRAN_WEEK = 2,
  CR_GRAN_MONTH = 3,
};

/* ---- Records -------------------------------------------------------------
 * Strings are NUL-terminated and owned by the record; NULL where the value is
 * absent. id, provider and config_hash are required on input. */

/* An authorization (credentials for one provider account). */
struct cr_auth_rec {
  char *id, *name, *description, *provider, *method, *owner, *config_hash;
  int64_t created_at, updated_at; /* set by the store; ignored on input */
};

/* A work (an integration: what to sync, when, where to). The *_json fields
 * are JSON texts (or NULL). max_attempts must be >= 1. enabled and
 * error_email_notifications are booleans. next_run_at 0 = not scheduled. */
struct cr_work_rec {
  char *id, *name, *provider, *authorization_id, *schedule_json,
      *destination_json, *config_json, *config_hash;
  char *runner_labels_json; /* JSON array of runner labels, NULL = none */
  int enabled, error_email_notifications, max_attempts;
  int64_t next_run_at, created_at, updated_at;
};

/* A system event. id is assigned by the store, strictly increasing (never
 * reused, even after pruning), so it sorts events and pages through them.
 * seq counts 1, 2, 3... per (subject_type, subject_id) and keeps counting
 * after pruning, so a receiver can order a subject's events and see gaps.
 * subject_type, subject_id and verb are required; data_json is a JSON text
 * or NULL. */
struct cr_event_rec {
  int64_t id, at, seq;
  char *subject_type, *subject_id, *verb, *actor, *data_json;
};

/* An event subscription (a webhook workflow). filter_json is the canonical
 * filter (sub_filter.h; NULL = every event). cursor_event_id (the last event
 * id considered for the outbox) and failing_since (the first failure of the
 * current failing streak, 0 when healthy) are kept by the store: ignored on
 * input. */
struct cr_sub_rec {
  char *id, *workflow, *config_hash;
  int enabled;
  char *disabled_reason;
  int64_t created_at, updated_at;
  char *filter_json;
  int64_t cursor_event_id;
  int64_t failing_since;
  int batched; /* delivered in batches (store_batches.h): no outbox rows */
};

/* One webhook delivery (outbox row) of an event to a subscription. status is
 * "pending" (waiting for its first or next attempt), "failed" (the last
 * attempt failed; retried at next_attempt_at), "delivered" or "dead"
 * (retries exhausted). first_attempt_at is 0 before the first attempt;
 * last_status is the HTTP status of the last attempt (0: none or no
 * response). event is the event itself, owned by the record. */
struct cr_outbox_rec {
  char *subscription_id;
  int64_t event_id;
  char *status;
  int attempts;
  int64_t next_attempt_at, first_attempt_at;
  int last_status;
  char *last_error;
  struct cr_event_rec event;
};

/* Delivery statistics of one subscription (cr_store_sub_stats). backlog
 * counts pending + failed rows (a batched subscription: the events after
 * its cursor, before filtering; delivered and dead then count the events
 * of its delivered and dead batches); attempts_24h and ok_24h (HTTP 2xx) count
 * delivery attempts of the last 24 hours; last_* describe the newest attempt
 * (0 / NULL when none). */
struct cr_sub_stats {
  int64_t backlog, delivered, dead, attempts_24h, ok_24h, last_attempt_at;
  int last_status;
  char *last_error;
};

/* Outbox query limits (same rules as the event query limit). */
#define CR_OUTBOX_DUE_DEFAULT_LIMIT 100
#define CR_OUTBOX_DUE_MAX_LIMIT 10000
/* Events scanned per subscription by one cr_store_outbox_enqueue when
 * max_events is 0; larger values are clamped to the MAX. */
#define CR_OUTBOX_ENQUEUE_DEFAULT 1000
#define CR_OUTBOX_ENQUEUE_MAX 100000

/* One health check result. status is an enum cr_health_status. */
struct cr_health_rec {
  int64_t at;
  int status;
  char *reason;
};

/* One metrics period: its start (ms, UTC) and the sums inside it. */
struct cr_metric_point {
  int64_t bucket_start;
  int64_t requests, errors;
};

/* Event query filter. Unset fields (NULL / 0) match everything. Results are
 * events with id > after_id, ordered by id ascending, at most limit of them
 * (0 = CR_EVENT_QUERY_DEFAULT_LIMIT, clamped to CR_EVENT_QUERY_MAX_LIMIT).
 * Page by passing the last id seen as after_id. */
struct cr_event_filter {
  const char *subject_type; /* exact match, or NULL */
  const char *subject_id;   /* exact match, or NULL */
  const char *const *verbs; /* any of these verbs; nverbs == 0: any verb */
  size_t nverbs;            /* at most CR_EVENT_FILTER_MAX_VERBS */
  int64_t since_ms;         /* at >= since_ms; 0: any time */
  int64_t after_id;         /* id > after_id; 0: from the start */
  size_t limit;
};

/* An execution (one run of a work). state is a state name (execution.h);
 * error_class a failure class name or NULL. lease_epoch counts the claims of
 * the execution (0 = never claimed); lease_expires_at is 0 when no lease is
 * held. not_before is the earliest time a claim may take it (0 = at once;
 * set by cr_store_exec_retry). */
struct cr_exec_rec {
  int64_t id;
  char *work_id, *state, *runner_id, *error_class, *error;
  int attempt;
  int64_t lease_epoch, lease_expires_at, created_at, updated_at;
  int64_t not_before;
};

/* One committed version of a work's sync state (the history is kept: one
 * record per version). */
struct cr_sync_state_rec {
  char *work_id;
  int64_t version;      /* 1, 2, 3... per work */
  char *state_json;     /* NULL = "no state" (e.g. a reset) */
  int64_t records;      /* records covered by this checkpoint (since the
                           previous one) */
  int64_t committed_at; /* set by the store */
  int64_t execution_id; /* 0 when set by a person */
  char *note;           /* NULL, or e.g. "set by operator: rollback to
                           version 3" */
};

/* One execution won by cr_store_exec_claim. epoch is the fencing token the
 * runner passes to cr_store_exec_transition / cr_store_exec_renew. */
struct cr_exec_claim {
  int64_t execution_id;
  char *work_id;
  int attempt;
  int64_t epoch, lease_expires_at;
};

/* One stored state change of an execution. from_state is NULL for the
 * creation. */
struct cr_exec_transition_rec {
  int64_t id, at;
  char *from_state, *to_state, *reason;
};

/* Row counts of the main tables. authorizations and works count the live
 * (not deleted) ones; outbox_pending counts undelivered outbox rows
 * (status pending or failed). */
struct cr_store_counts {
  int64_t authorizations, auth_health, works, executions, events, runners,
      sync_states, metrics_buckets, subscriptions, outbox, outbox_pending,
      delivery_attempts;
};

/* ---- Opening --------------------------------------------------------------
 */

/* Opens (creating if needed) the SQLite store in data_dir (borrowed; created
 * with mode 0700, parents included, when missing), or, when data_dir is a
 * store URL (cr_store_is_url), the store that URL names, as
 * cr_store_open_url does. The SQLite store is data_dir/connrun.db in WAL
 * mode, schema migrated to the latest version, each migration in its own
 * transaction. On success *out is a new store the caller frees with
 * cr_store_close. Errors: CR_EINVAL, CR_EIO (data_dir cannot be created),
 * CR_ENOMEM, CR_ESTORE (cannot open, not a connrun database, migration
 * failed), CR_EBUSY, CR_ESCHEMAVER (the database was written by a newer
 * connrun; it is left untouched). errbuf (caller owned, errlen bytes, may be
 * NULL) receives a one-line message on failure. */
int cr_store_open(const char *data_dir, cr_store **out, char *errbuf,
                  size_t errlen);

/* Like cr_store_open, from a URL (borrowed): "sqlite:/path/to/file.db" (also
 * "sqlite:///abs/path.db", and "sqlite::memory:" for a private in-memory
 * database) opens that file; its directory must exist. "postgres:" and
 * "postgresql:" URLs are libpq connection URLs: the PostgreSQL store, its
 * schema created or migrated (CR_ESTORE when the server cannot be reached;
 * the password never appears in errbuf). Anything else CR_EINVAL. */
int cr_store_open_url(const char *url, cr_store **out, char *errbuf,
                      size_t errlen);

/* 1 when where (may be NULL) is a store URL (sqlite:, postgres:,
 * postgresql:) rather than a data directory. */
int cr_store_is_url(const char *where);

/* Closes the store and frees it (an open transaction is rolled back). NULL
 * is a no-op. */
void cr_store_close(cr_store *s);

/* 1 when s is a store that several processes share as peers (PostgreSQL:
 * every write transaction of every instance takes one lock there, so a
 * long transaction holds up the other instances' writes); 0 for an SQLite
 * file, whose writers are this process's. NULL gives 0. */
int cr_store_shared(const cr_store *s);

/* Stores the schema version of the open database in *out. */
int cr_store_schema_version(cr_store *s, int *out);

/* Message of the last failed call on s ("" if none): borrowed, valid until
 * the next call on s. */
const char *cr_store_last_error(cr_store *s);

/* ---- Transactions ----------------------------------------------------------
 * Group a change and the event reporting it: begin, writes, commit. Calls
 * nest with a depth counter: only the outermost begin/commit touch the
 * database. A rollback at any depth dooms the whole transaction: it is rolled
 * back at once if outermost, otherwise when the outermost commit comes, which
 * then returns CR_ECANCELED. A failed call inside a transaction undoes its own
 * partial work only; the transaction stays usable.
 * Errors: cr_store_commit/cr_store_rollback outside a transaction give
 * CR_ESTATE; backend failures as above (a failed commit is rolled back). */
int cr_store_begin(cr_store *s);
int cr_store_commit(cr_store *s);
int cr_store_rollback(cr_store *s);

/* cr_store_begin for a transaction that writes no event and whose writes
 * the rows they change serialize: each of those rows has one writer at a
 * time (the scheduler's creations: its duty's row, which the fence locks).
 * It need not queue with every other writer: on PostgreSQL it does not
 * take the store's write lock, which events need (their ids commit in
 * order); on SQLite it is cr_store_begin. Appending an event in it fails
 * with CR_ESTATE. Inside an open transaction it is a level of that one, as
 * cr_store_begin is. Ends with cr_store_commit, _rollback or _end. */
int cr_store_begin_rows(cr_store *s);

/* A read snapshot: the reads until cr_store_read_end see one state of the
 * store and share one read transaction (a view that reads three times pays
 * for the locks once). A write inside ends the snapshot first; inside a
 * cr_store_begin transaction both are no-ops. Backends without snapshots
 * return 0 and do nothing. */
int cr_store_read_begin(cr_store *s);
int cr_store_read_end(cr_store *s);

/* Ends the read snapshot as cr_store_read_end does, except that the backend
 * may keep it for the next cr_store_read_begin of s, which then reuses it
 * if no connection of this process has committed since it was taken and it
 * is at most max_age_ms old (SQLite: the commits are counted by a WAL hook;
 * other backends end it). A reader that keeps snapshots sees every write of
 * its own process at once, and those of other processes at most
 * max_age_ms late. Statements run on s while a kept snapshot is open read
 * it: end it with cr_store_read_end before using s for anything else than
 * the next read_begin. Every write ends it first. */
int cr_store_read_keep(cr_store *s, int64_t max_age_ms);

/* Ends the transaction begun with cr_store_begin: commits when rc is 0 (a
 * failed commit is rolled back), rolls back otherwise. Returns rc, or the
 * commit's error. */
int cr_store_end(cr_store *s, int rc);

/* Savepoints: several independent changes in one transaction (one commit),
 * each of which may fail on its own. cr_store_savepoint opens a savepoint
 * inside the open transaction; cr_store_savepoint_end(s, rc) ends it: rc == 0
 * keeps what ran since (released into the transaction), otherwise it is
 * undone and the transaction stays usable, not doomed (an inner rollback
 * since the savepoint is undone with it). They do not nest among themselves.
 * Errors: cr_store_savepoint gives CR_ESTATE outside a transaction or while
 * one is open, backend failures; cr_store_savepoint_end returns rc (rc != 0)
 * or the release's error, CR_ESTATE when none is open or the transaction
 * depth changed since (an unbalanced begin/commit inside), and a backend
 * failure when the whole transaction was lost (then doomed: roll it back).
 * A rollback inside the savepoint (an inner cr_store_begin level that was
 * rolled back) already undid its work: cr_store_savepoint_end(s, 0) then
 * returns CR_ECANCELED and the transaction goes on as the savepoint found
 * it. With rc != 0 cr_store_last_error keeps the failed call's message. */
int cr_store_savepoint(cr_store *s);
int cr_store_savepoint_end(cr_store *s, int rc);

/* ---- Authorizations -------------------------------------------------------
 */

/* Inserts or updates rec (borrowed). *changed (may be NULL) gets
 * CR_STORE_UNCHANGED when the stored config_hash equals rec->config_hash
 * (nothing is written), CR_STORE_CREATED for a new or previously deleted id
 * (created_at = updated_at = now), CR_STORE_UPDATED otherwise (every field
 * rewritten, updated_at = now, created_at kept). Errors: CR_EINVAL (missing
 * id, provider or config_hash), backend errors. */
int cr_store_auth_upsert(cr_store *s, const struct cr_auth_rec *rec,
                         int *changed);

/* Gets authorization id (borrowed) into *out (caller frees with
 * cr_auth_rec_free). CR_ENOENT if missing or deleted. */
int cr_store_auth_get(cr_store *s, const char *id, struct cr_auth_rec **out);

/* Lists live authorizations ordered by id: *out is an array of *n records
 * (NULL when *n is 0) freed with cr_auth_rec_free_list. */
int cr_store_auth_list(cr_store *s, struct cr_auth_rec **out, size_t *n);

/* Soft-deletes authorization id (borrowed): it disappears from get and list;
 * its history (health, metrics) stays. CR_ENOENT if missing or deleted. */
int cr_store_auth_delete(cr_store *s, const char *id);

/* Records a health check of auth_id (borrowed) at at_ms (0 = now) with
 * status (enum cr_health_status) and reason (borrowed, may be NULL).
 * Errors: CR_EINVAL (bad status, unknown auth_id), backend errors. */
int cr_store_auth_health_record(cr_store *s, const char *auth_id, int64_t at_ms,
                                int status, const char *reason);

/* Fills *out (caller owned struct; out->reason is allocated, release with
 * cr_health_rec_clear) with the newest health check of auth_id (borrowed).
 * CR_ENOENT when none was recorded (callers treat that as Unknown). */
int cr_store_auth_health_latest(cr_store *s, const char *auth_id,
                                struct cr_health_rec *out);

/* The newest health checks of auth_id (borrowed), newest first, at most
 * limit (0 = CR_HEALTH_HISTORY_DEFAULT_LIMIT, clamped to
 * CR_HEALTH_HISTORY_MAX_LIMIT). *out is an array of *n (NULL when 0) freed
 * with cr_health_rec_free_list. */
int cr_store_auth_health_history(cr_store *s, const char *auth_id, size_t limit,
                                 struct cr_health_rec **out, size_t *n);

/* ---- Works ----------------------------------------------------------------
 */

/* Inserts or updates rec (borrowed) with the changed semantics of
 * cr_store_auth_upsert. rec->next_run_at is written when non-zero; 0 keeps the
 * stored value (none for a new work). Errors: CR_EINVAL (missing id, provider
 * or config_hash; max_attempts < 1; invalid JSON; authorization_id not
 * stored), backend errors. */
int cr_store_work_upsert(cr_store *s, const struct cr_work_rec *rec,
                         int *changed);

/* Gets work id (borrowed) into *out (freed with cr_work_rec_free).
 * CR_ENOENT if missing or deleted. */
int cr_store_work_get(cr_store *s, const char *id, struct cr_work_rec **out);

/* Lists live works ordered by id into *out / *n (freed with
 * cr_work_rec_free_list; NULL when *n is 0). */
int cr_store_work_list(cr_store *s, struct cr_work_rec **out, size_t *n);

/* Soft-deletes work id (borrowed). CR_ENOENT if missing or deleted. */
int cr_store_work_delete(cr_store *s, const char *id);

/* Sets the next run time of work id (borrowed); at_ms 0 clears it. Does not
 * change updated_at. CR_ENOENT if missing or deleted. */
int cr_store_work_set_next_run(cr_store *s, const char *id, int64_t at_ms);

/* Records that work id (borrowed) started an execution: sets its
 * first_run_at to now if it was not set yet. *first (may be NULL) gets 1 when
 * this call set it (the first run ever), else 0. Does not change updated_at.
 * Errors: CR_EINVAL, CR_ENOENT (missing or deleted), backend errors. */
int cr_store_work_mark_started(cr_store *s, const char *id, int *first);

/* ---- Sync state -----------------------------------------------------------
 * A work's sync state (the plugin's checkpoint) is versioned: every commit
 * adds a version, so the history can be shown and an operator can roll
 * back by committing an old state again. */

/* Commits a new version (max(version) + 1, 1 for the first) of the sync
 * state of work_id (borrowed; a stored work, live or deleted). state_json
 * (borrowed) is NULL ("no state", e.g. a reset) or a JSON text; records
 * (>= 0) counts the records this checkpoint covers; execution_id 0 = none
 * (set by a person), else a stored execution; note (borrowed) may be NULL.
 * committed_at = now. The new version goes to *version_out (may be NULL).
 * Works inside the caller's transaction. Errors: CR_EINVAL (invalid JSON,
 * negative records, unknown work or execution), backend errors. */
int cr_store_sync_state_commit(cr_store *s, const char *work_id,
                               const char *state_json, int64_t records,
                               int64_t execution_id, const char *note,
                               int64_t *version_out);

/* Fills *out (caller owned struct; its strings are allocated, release with
 * cr_sync_state_rec_clear) with the latest version of work_id's (borrowed)
 * sync state. CR_ENOENT when no version was committed. */
int cr_store_sync_state_latest(cr_store *s, const char *work_id,
                               struct cr_sync_state_rec *out);

/* Fills *out (as cr_store_sync_state_latest) with version of work_id's
 * (borrowed) sync state. CR_ENOENT when that version does not exist. */
int cr_store_sync_state_get(cr_store *s, const char *work_id, int64_t version,
                            struct cr_sync_state_rec *out);

/* The versions of work_id's (borrowed) sync state, newest first, at most
 * limit (0 = CR_SYNC_STATE_HISTORY_DEFAULT_LIMIT, clamped to
 * CR_SYNC_STATE_HISTORY_MAX_LIMIT). *out is an array of *n (NULL when 0)
 * freed with cr_sync_state_rec_free_list. */
int cr_store_sync_state_history(cr_store *s, const char *work_id, size_t limit,
                                struct cr_sync_state_rec **out, size_t *n);

/* Stores in *records the total records of the sync state versions committed
 * by execution exec_id (0 when none), for an execution's summary. */
int cr_store_sync_state_exec_records(cr_store *s, int64_t exec_id,
                                     int64_t *records);

/* ---- Rotated credentials ---------------------------------------------------
 * Credentials a plugin handed back (e.g. a rotated OAuth refresh token),
 * kept per authorization with the authorization's config_hash at that time.
 * They are stored with a scheme ('plain' today) and a key id so that an
 * encrypting codec can be added later without a schema change. */

/* Stores (replacing any previous) credentials_json (borrowed; a JSON object
 * text) for auth_id (borrowed; a stored authorization), tagged with
 * config_hash (borrowed). Errors: CR_EINVAL (missing argument, not a JSON
 * object, unknown authorization), backend errors. */
int cr_store_auth_credentials_set(cr_store *s, const char *auth_id,
                                  const char *config_hash,
                                  const char *credentials_json);

/* *json_out gets the credentials stored for auth_id (borrowed) ONLY when
 * they were stored with config_hash (borrowed): an edited configuration
 * wins over rotated credentials. *json_out is allocated (cr__malloc); the
 * caller frees it with cr__free. Errors: CR_EINVAL, CR_ENOENT (none stored,
 * or stored under another config_hash), CR_ENOTSUP (stored with a scheme
 * this build cannot decode), backend errors. */
int cr_store_auth_credentials_get(cr_store *s, const char *auth_id,
                                  const char *config_hash, char **json_out);

/* ---- Events ---------------------------------------------------------------
 */

/* Appends an event (in is borrowed; in->id and in->seq are ignored, in->at 0
 * means now), assigning its id (stored in *id_out, which may be NULL) and
 * its per-subject seq atomically, inside the caller's transaction if one is
 * open. Errors: CR_EINVAL (missing subject_type, subject_id or verb;
 * data_json not JSON), backend errors. */
int cr_store_event_append(cr_store *s, const struct cr_event_rec *in,
                          int64_t *id_out);

/* Queries events matching f (borrowed; see struct cr_event_filter). *out is
 * an array of *n events (NULL when 0) freed with cr_event_rec_free_list.
 * Errors: CR_EINVAL (too many verbs, NULL verbs with nverbs > 0). */
int cr_store_event_query(cr_store *s, const struct cr_event_filter *f,
                         struct cr_event_rec **out, size_t *n);

/* Deletes events older than before_ms (at < before_ms) except those an
 * undelivered outbox row (pending or failed) still refers to and those an
 * enabled subscription has not considered yet (id > its cursor); delivered
 * and dead outbox rows of events older than before_ms go too, and outbox
 * rows and delivery attempts of deleted events go with them. *deleted (may
 * be NULL) gets the number of events deleted. Per-subject seq keeps
 * counting. */
int cr_store_event_prune(cr_store *s, int64_t before_ms, int64_t *deleted);

/* ---- Metrics --------------------------------------------------------------
 */

/* Adds requests and errors (>= 0) into auth_id's (borrowed) hour bucket
 * containing at_ms (>= 0; 0 means now). Errors: CR_EINVAL (negative values,
 * unknown auth_id), backend errors. */
int cr_store_metrics_add(cr_store *s, const char *auth_id, int64_t at_ms,
                         int64_t requests, int64_t errors);

/* Sums the hour buckets of auth_id (borrowed; NULL = all authorizations)
 * whose start is in [from_ms, to_ms) (to_ms 0 = no upper bound) into periods
 * of granularity (enum cr_granularity), ordered by period start; a period
 * the range covers partly sums only the covered hours. Periods without data
 * are omitted. *out is an array of *n points (NULL when 0) freed with
 * cr_metric_point_free_list. Errors: CR_EINVAL (bad granularity, from_ms < 0).
 */
int cr_store_metrics_query(cr_store *s, const char *auth_id, int granularity,
                           int64_t from_ms, int64_t to_ms,
                           struct cr_metric_point **out, size_t *n);

/* ---- Subscriptions --------------------------------------------------------
 */

/* Inserts or updates rec (borrowed) with the changed semantics of
 * cr_store_auth_upsert (compared on config_hash), writing rec->filter_json
 * (canonical filter or NULL). A new subscription's cursor starts at the
 * newest event id: it does not receive the past (replay is explicit). An
 * update (changed definition) takes rec->enabled and rec->disabled_reason
 * and clears failing_since: that is how a subscription disabled by
 * cr_store_sub_disable comes back. Errors: CR_EINVAL (missing id, workflow
 * or config_hash; filter_json not a filter), backend errors. */
int cr_store_sub_upsert(cr_store *s, const struct cr_sub_rec *rec,
                        int *changed);

/* Gets subscription id (borrowed) into *out (freed with cr_sub_rec_free).
 * CR_ENOENT if missing. */
int cr_store_sub_get(cr_store *s, const char *id, struct cr_sub_rec **out);

/* Lists subscriptions ordered by id into *out / *n (freed with
 * cr_sub_rec_free_list; NULL when *n is 0). */
int cr_store_sub_list(cr_store *s, struct cr_sub_rec **out, size_t *n);

/* Deletes subscription id (borrowed) with its outbox rows and delivery
 * attempts. CR_ENOENT if missing. */
int cr_store_sub_delete(cr_store *s, const char *id);

/* Sets the cursor (the last event id considered) of subscription id
 * (borrowed). forward_only: only moves it forward (a table export records
 * what it wrote; an older value is ignored, and a missing subscription is
 * not an error); else sets it (CR_ENOENT if missing). Webhook subscriptions
 * are moved by cr_store_outbox_enqueue; table exports
 * (export/export_engine.h) by this. Errors: CR_EINVAL (cursor < 0), backend
 * errors. */
int cr_store_sub_set_cursor(cr_store *s, const char *id, int64_t cursor,
                            int forward_only);

/* Disables subscription id (borrowed) with reason (borrowed, may be NULL),
 * e.g. "410 Gone from https://...": its outbox rows stay but are not due
 * while it is disabled. Errors: CR_EINVAL, CR_ENOENT, backend errors. */
int cr_store_sub_disable(cr_store *s, const char *id, const char *reason);

/* Fills *out (caller owned; out->last_error allocated, release with
 * cr_sub_stats_clear) with the delivery statistics of subscription sub_id
 * (borrowed). Errors: CR_EINVAL, CR_ENOENT (no such subscription), backend
 * errors. */
int cr_store_sub_stats(cr_store *s, const char *sub_id,
                       struct cr_sub_stats *out);

/* ---- Webhook outbox --------------------------------------------------------
 * Events reach subscriptions through the outbox, at least once: enqueue
 * turns new events into outbox rows, the delivery engine fetches due rows,
 * sends them and records each attempt. */

/* For every enabled subscription (but table exports, workflow
 * table_system_events, which keep their cursor themselves): scans the events
 * with id > its cursor (oldest first, at most max_events per subscription; 0 =
 * CR_OUTBOX_ENQUEUE_DEFAULT, clamped to CR_OUTBOX_ENQUEUE_MAX), inserts a
 * pending outbox row (next_attempt_at = now) for each event its filter
 * matches, and advances the cursor to the last scanned id, all in one
 * transaction. *enqueued (may be NULL) gets the number of rows inserted.
 * Errors: CR_EINVAL (a stored filter does not parse), backend errors. */
int cr_store_outbox_enqueue(cr_store *s, size_t max_events, size_t *enqueued);

/* Up to limit (0 = CR_OUTBOX_DUE_DEFAULT_LIMIT, clamped to
 * CR_OUTBOX_DUE_MAX_LIMIT) deliveries due at now (0 = the current time):
 * pending or failed rows with next_attempt_at <= now of enabled
 * subscriptions, ordered by subscription id then event id, with their
 * events. *out is an array of *n (NULL when 0) freed with
 * cr_outbox_rec_free_list. */
int cr_store_outbox_due(cr_store *s, int64_t now, size_t limit,
                        struct cr_outbox_rec **out, size_t *n);

/* A subscription's read position for cr_store_outbox_due_after: its rows
 * with event_id <= after are left out. sub_id borrowed. */
struct cr_outbox_pos {
  const char *sub_id;
  int64_t after;
};

/* cr_store_outbox_due, each subscription's rows starting after its position
 * in pos (n_pos entries, borrowed; a subscription not in pos starts at its
 * first row). Still ordered by subscription id then event id, limit shared.
 * A reader that keeps what it read asks for what came after, without
 * reading it all again. Errors: those of cr_store_outbox_due. */
int cr_store_outbox_due_after(cr_store *s, int64_t now,
                              const struct cr_outbox_pos *pos, size_t n_pos,
                              size_t limit, struct cr_outbox_rec **out,
                              size_t *n);

/* *at gets the earliest next_attempt_at among pending and failed rows of
 * enabled subscriptions (0 when none; it may be in the past). */
int cr_store_outbox_next_due(cr_store *s, int64_t *at);

/* Records one delivery attempt of event_id to sub_id (borrowed): a
 * delivery_attempts row (at = now, http_status (0 = no response),
 * latency_ms >= 0, error (borrowed, may be NULL; must not contain secrets))
 * and the outbox row's new status ("pending", "failed", "delivered" or
 * "dead"), attempts + 1, next_attempt_at (for pending/failed; 0 = now),
 * last_status, last_error and first_attempt_at if unset; the subscription's
 * failing_since is set to now (if unset) on failed/dead and cleared on
 * delivered. One transaction. Errors: CR_EINVAL (bad status or value),
 * CR_ENOENT (no such outbox row), backend errors. */
int cr_store_outbox_record(cr_store *s, const char *sub_id, int64_t event_id,
                           const char *status, int http_status,
                           int64_t latency_ms, const char *error,
                           int64_t next_attempt_at);

/* One attempt for cr_store_outbox_record_many: the arguments of
 * cr_store_outbox_record. Strings borrowed. */
struct cr_outbox_attempt {
  const char *sub_id;
  int64_t event_id;
  const char *status;
  int http_status;
  int64_t latency_ms;
  const char *error; /* may be NULL */
  int64_t next_attempt_at;
};

/* Records the n attempts of a (borrowed) in order, each as
 * cr_store_outbox_record does, all in one transaction (or one savepoint of
 * the caller's): the delivery engine's batch. An attempt whose outbox row
 * is gone (its subscription was deleted meanwhile) is skipped; *recorded
 * (may be NULL) gets the number written. Errors: CR_EINVAL (a bad entry:
 * nothing is written), backend errors (nothing is written). */
int cr_store_outbox_record_many(cr_store *s, const struct cr_outbox_attempt *a,
                                size_t n, size_t *recorded);

/* Replay: re-queues every event with at >= since_ms and id <= the cursor of
 * subscription sub_id (borrowed) that its filter matches: the outbox row
 * becomes pending again (attempts 0, next_attempt_at now, first attempt,
 * last status and error cleared; missing rows are inserted). Same event ids,
 * so the same webhook-id on the wire. *n (may be NULL) gets the number of
 * rows re-queued. Errors: CR_EINVAL, CR_ENOENT (no such subscription),
 * backend errors. */
int cr_store_outbox_replay(cr_store *s, const char *sub_id, int64_t since_ms,
                           size_t *n);

/* ---- Executions -----------------------------------------------------------
 * State rules: execution.h. Every change of state writes an
 * execution_transitions row (time, from, to, reason) in the same
 * transaction as the change. */

/* Creates an execution of work_id (borrowed; a live work) in state created,
 * attempt 1, epoch 0; its id goes to *id_out (may be NULL). Errors: CR_EINVAL,
 * CR_ENOENT (no such live work), backend errors. */
int cr_store_exec_create(cr_store *s, const char *work_id, int64_t *id_out);

/* Fills *out (caller owned struct; its strings are allocated, release with
 * cr_exec_rec_clear) with execution id. CR_ENOENT if missing. */
int cr_store_exec_get(cr_store *s, int64_t id, struct cr_exec_rec *out);

/* Atomically claims up to slots executions for runner_id (borrowed): those
 * in state created whose live work's provider is one of providers (borrowed
 * array of nproviders names, 1..CR_EXEC_CLAIM_MAX_PROVIDERS), oldest first,
 * skipping executions whose not_before is later than now
 * (cr_store_exec_retry) and works that already have a pending or executing
 * execution (a work never runs twice at once). Each is moved to pending
 * with runner_id, lease_epoch + 1 and lease_expires_at = now + lease_ms
 * (> 0). Runs under the database write lock (BEGIN IMMEDIATE), so
 * concurrent claimers in other connections or processes never win the same
 * execution. *out is an array of
 * *n claims (NULL when 0) freed with cr_exec_claim_free_list. slots 0 claims
 * nothing. Errors: CR_EINVAL, CR_EBUSY (lock not obtained within the busy
 * timeout), backend errors. */
int cr_store_exec_claim(cr_store *s, const char *runner_id,
                        const char *const *providers, size_t nproviders,
                        size_t slots, int64_t lease_ms,
                        struct cr_exec_claim **out, size_t *n);

/* Claims execution id itself for runner_id (borrowed) like
 * cr_store_exec_claim, ignoring its not_before (a person asked to run it
 * now, e.g. `connrun sync`). *out (caller owned; out->work_id allocated,
 * release with cr__free or cr_exec_claim_free_list semantics) is filled.
 * Errors: CR_ENOENT, CR_ESTATE (final), CR_EBUSY (it or another execution of
 * its work holds a lease), CR_EINVAL, backend errors. */
int cr_store_exec_claim_one(cr_store *s, int64_t id, const char *runner_id,
                            int64_t lease_ms, struct cr_exec_claim *out);

/* Moves execution id to to_state (a state name, borrowed), fenced by epoch:
 * the lease_epoch returned by the claim (CR_EXEC_EPOCH_ANY only for
 * "cancelled"). Only executing, completed, failed and cancelled can be
 * reached this way (pending: cr_store_exec_claim; created:
 * cr_store_exec_expire). reason, error_class (a class name, execution.h) and
 * error are borrowed and may be NULL; error_class and error are stored when
 * given. A final state releases the lease. A lease stays valid until
 * cr_store_exec_expire takes it back. Errors: CR_EINVAL (bad state or class
 * name), CR_ENOENT, CR_ESTALE (epoch is not the stored one, or the lease was
 * expired: the caller no longer owns the execution), CR_ESTATE (illegal
 * transition), backend errors. Nothing is written on error. */
int cr_store_exec_transition(cr_store *s, int64_t id, int64_t epoch,
                             const char *to_state, const char *reason,
                             const char *error_class, const char *error);

/* Heartbeat: extends the lease of execution id to now + lease_ms (> 0).
 * Errors: CR_ENOENT, CR_ESTALE (epoch not the stored one, or the lease was
 * already expired by cr_store_exec_expire), CR_ESTATE (the execution is
 * final), backend errors. */
int cr_store_exec_renew(cr_store *s, int64_t id, int64_t epoch,
                        int64_t lease_ms);

/* Every pending or executing execution whose lease expired at now (0 = the
 * current time; expired when lease_expires_at <= now) goes back to created
 * as a new attempt (attempt + 1, runner and lease cleared, epoch kept: the
 * next claim increments it), with the transition reason "lease expired
 * (runner X)". *n_expired (may be NULL) gets how many. */
int cr_store_exec_expire(cr_store *s, int64_t now, size_t *n_expired);

/* Lists executions of work_id (borrowed; NULL = all works), newest first,
 * at most limit (0 = CR_EXEC_LIST_DEFAULT_LIMIT, clamped to
 * CR_EXEC_LIST_MAX_LIMIT). *out is an array of *n (NULL when 0) freed with
 * cr_exec_rec_free_list. */
int cr_store_exec_list(cr_store *s, const char *work_id, size_t limit,
                       struct cr_exec_rec **out, size_t *n);

/* Puts execution id back to created as a new attempt (a retry after a
 * failure): it must be pending or executing and epoch (>= 0) its stored
 * lease_epoch, as for cr_store_exec_transition. attempt + 1, runner and lease
 * cleared (epoch kept: the next claim increments it), not_before =
 * not_before_ms (>= 0; 0 = claimable at once; claims skip it until then),
 * error_class (a class name, execution.h) and error stored when given, and a
 * transition row with reason. reason, error_class and error are borrowed and
 * may be NULL. Errors: CR_EINVAL (bad class, negative epoch or time),
 * CR_ENOENT, CR_ESTALE (epoch is not the stored one, or the lease was
 * expired), CR_ESTATE (final, or created and never claimed), backend errors.
 * Nothing is written on error. */
int cr_store_exec_retry(cr_store *s, int64_t id, int64_t epoch,
                        int64_t not_before_ms, const char *reason,
                        const char *error_class, const char *error);

/* Every pending or executing execution held by runner_id (borrowed) goes
 * back to created as a new attempt (as with cr_store_exec_expire), with the
 * transition reason reason (borrowed; NULL gives "released by runner X").
 * Used when a runner restarts with the same id. *n (may be NULL) gets how
 * many. Errors: CR_EINVAL, backend errors. */
int cr_store_exec_release_runner(cr_store *s, const char *runner_id,
                                 const char *reason, size_t *n);

/* *open gets 1 when work_id (borrowed) has an execution in state created,
 * pending or executing, else 0. Errors: CR_EINVAL, backend errors. */
int cr_store_exec_work_open(cr_store *s, const char *work_id, int *open);

/* The transitions of execution id, oldest first. *out is an array of *n
 * (NULL when 0; an unknown id gives 0) freed with
 * cr_exec_transition_free_list. */
int cr_store_exec_transitions(cr_store *s, int64_t id,
                              struct cr_exec_transition_rec **out, size_t *n);

/* One recorded delivery attempt of a subscription (newest first in lists).
 * http_status 0: no response; error NULL when none. */
struct cr_delivery_attempt_rec {
  int64_t id, event_id, at, latency_ms;
  int http_status;
  char *error;
};

/* Delivery attempt list limits (same rules as the event query limit). */
#define CR_ATTEMPT_LIST_DEFAULT_LIMIT 100
#define CR_ATTEMPT_LIST_MAX_LIMIT 1000

/* The delivery attempts of subscription sub_id (borrowed) with id <
 * before_id (0: from the newest), newest first, at most limit. *out is an
 * array of *n (NULL when 0) freed with cr_delivery_attempt_free_list.
 * Errors: CR_EINVAL, CR_ENOENT (no such subscription), backend errors. */
int cr_store_sub_attempts(cr_store *s, const char *sub_id, int64_t before_id,
                          size_t limit, struct cr_delivery_attempt_rec **out,
                          size_t *n);

/* The newest event id ever assigned (0 when none), into *id. */
int cr_store_event_last_id(cr_store *s, int64_t *id);

/* Aggregates for the Prometheus exposition (cr_store_stats). Each row has
 * up to two labels and up to CR_STAT_VALUES numbers:
 *   CR_STAT_EXEC_STATES: provider, state; v[0] executions.
 *   CR_STAT_EXEC_DURATIONS: provider; v[0..CR_STAT_DURATION_BUCKETS-1] the
 *     cumulative counts of ended executions (completed or failed) lasting at
 *     most cr_store_stat_duration_bounds_ms[i], v[10] their count, v[11] the
 *     sum of their durations in ms.
 *   CR_STAT_REQUESTS: authorization; v[0] requests, v[1] errors.
 *   CR_STAT_EVENTS: subject type, verb; v[0] stored events.
 *   CR_STAT_OUTBOX: subscription, status; v[0] rows.
 *   CR_STAT_ATTEMPTS: subscription, outcome ("ok" 2xx, else "error");
 *     v[0] attempts. */
enum cr_store_stat {
  CR_STAT_EXEC_STATES = 0,
  CR_STAT_EXEC_DURATIONS = 1,
  CR_STAT_REQUESTS = 2,
  CR_STAT_EVENTS = 3,
  CR_STAT_OUTBOX = 4,
  CR_STAT_ATTEMPTS = 5,
};
#define CR_STAT_VALUES 12
#define CR_STAT_DURATION_BUCKETS 10

struct cr_stat_row {
  char *label[2]; /* NULL when the stat has fewer labels */
  int64_t v[CR_STAT_VALUES];
};

/* The upper bounds (ms) of the execution duration buckets. */
extern const int64_t cr_store_stat_duration_bounds_ms[CR_STAT_DURATION_BUCKETS];

/* Computes aggregate which (enum cr_store_stat) into *out / *n (freed with
 * cr_stat_row_free_list; NULL when 0). Errors: CR_EINVAL, backend errors. */
int cr_store_stats(cr_store *s, int which, struct cr_stat_row **out, size_t *n);
void cr_stat_row_free_list(struct cr_stat_row *r, size_t n);

/* ---- Objects created through the API --------------------------------------
 * Authorizations, works and subscriptions made with POST live here, in the
 * configuration's own keys (def_json) with their secrets (credentials,
 * header values, webhook secrets) sealed apart (util/seal.h); the daemon
 * loads them next to the configuration file. */

struct cr_api_object_rec {
  char *kind; /* "authorization", "work" or "subscription" */
  char *id;
  char *def_json;        /* the definition without its secrets */
  unsigned char *sealed; /* sealed JSON object of the secrets, or NULL */
  size_t sealed_len;
  char *key_id;                   /* the sealing key's id, or NULL */
  char *created_by;               /* the token's name */
  int64_t created_at, updated_at; /* set by the store */
};

/* Inserts or replaces rec (borrowed; created_at is kept on replace). Errors:
 * CR_EINVAL (bad kind, missing id or def_json), backend errors. */
int cr_store_api_object_put(cr_store *s, const struct cr_api_object_rec *rec);

/* Every API object, ordered by kind then id, into *out / *n (freed with
 * cr_api_object_rec_free_list; NULL when 0). */
int cr_store_api_object_list(cr_store *s, struct cr_api_object_rec **out,
                             size_t *n);

/* Deletes one. CR_ENOENT when missing. */
int cr_store_api_object_delete(cr_store *s, const char *kind, const char *id);

/* The API objects' generation into *out: a counter that every put and
 * delete raises in its own transaction, so an instance sharing the store
 * knows with one read whether the objects changed since it loaded them. */
int cr_store_api_generation(cr_store *s, int64_t *out);

/* ---- Connections ----------------------------------------------------------
 * PostgreSQL connections are re-made when they drop, and a statement is run
 * again when that is safe; never silently: these count it, process-wide
 * (all 0 on SQLite). */
struct cr_store_conn_counters {
  uint64_t reconnects;      /* connections made again */
  uint64_t retries;         /* statements run again after a lost connection */
  uint64_t lost_statements; /* statements that failed on a lost connection */
  uint64_t round_trips;     /* requests sent, each waited for */
  uint64_t deferred;        /* statements (BEGIN, SAVEPOINT, RELEASE, COMMIT or
                               ROLLBACK) that took no round trip of their own:
                               sent with the next one, or never needed */
};

/* Fills *out. */
void cr_store_conn_counters(struct cr_store_conn_counters *out);

/* ---- Named cursors ---------------------------------------------------------
 * A position (an event id) that outlives the process holding it, so the
 * instance that takes a duty over resumes where the last holder stopped:
 * "alerts" is the last event the alert rules evaluated. */

/* The cursor name (borrowed) into *out. CR_ENOENT when it was never set. */
int cr_store_cursor_get(cr_store *s, const char *name, int64_t *out);

/* Sets cursor name (borrowed) to value, in the caller's transaction. */
int cr_store_cursor_set(cr_store *s, const char *name, int64_t value);
void cr_api_object_rec_free_list(struct cr_api_object_rec *r, size_t n);

/* The stored result of a POST made with an Idempotency-Key. */
struct cr_idem_rec {
  char *route, *body_hash, *response_json;
  int status;
  int64_t created_at;
};

/* How long an idempotency key is remembered. */
#define CR_IDEM_TTL_MS (INT64_C(24) * 3600 * 1000)

/* The result remembered for (token, key) (borrowed) into *out (caller
 * owned; release with cr_idem_rec_clear). CR_ENOENT when none (or
 * older than CR_IDEM_TTL_MS). */
int cr_store_idem_get(cr_store *s, const char *token, const char *key,
                      struct cr_idem_rec *out);

/* Remembers rec (borrowed) for (token, key); keys older than the TTL are
 * forgotten on the way. CR_EEXIST when the key is already taken. */
int cr_store_idem_put(cr_store *s, const char *token, const char *key,
                      const struct cr_idem_rec *rec);
void cr_idem_rec_clear(struct cr_idem_rec *r);

/* ---- Status ----------------------------------------------------------------
 */

/* Fills *out (caller owned) with row counts of the main tables. */
int cr_store_counts(cr_store *s, struct cr_store_counts *out);

/* ---- Freeing records -------------------------------------------------------
 * _clear frees a record's strings and zeroes it (for records the caller
 * owns, e.g. on the stack); _free clears and frees a record returned by a
 * get; _free_list frees n records of an array returned by a list/query and
 * the array. All accept NULL. */
void cr_auth_rec_clear(struct cr_auth_rec *r);
void cr_auth_rec_free(struct cr_auth_rec *r);
void cr_auth_rec_free_list(struct cr_auth_rec *r, size_t n);
void cr_work_rec_clear(struct cr_work_rec *r);
void cr_work_rec_free(struct cr_work_rec *r);
void cr_work_rec_free_list(struct cr_work_rec *r, size_t n);
void cr_event_rec_clear(struct cr_event_rec *r);
void cr_event_rec_free(struct cr_event_rec *r);
void cr_event_rec_free_list(struct cr_event_rec *r, size_t n);
void cr_sub_rec_clear(struct cr_sub_rec *r);
void cr_sub_rec_free(struct cr_sub_rec *r);
void cr_sub_rec_free_list(struct cr_sub_rec *r, size_t n);
void cr_health_rec_clear(struct cr_health_rec *r);
void cr_health_rec_free_list(struct cr_health_rec *r, size_t n);
void cr_metric_point_free_list(struct cr_metric_point *p, size_t n);
void cr_exec_rec_clear(struct cr_exec_rec *r);
void cr_exec_rec_free_list(struct cr_exec_rec *r, size_t n);
void cr_exec_claim_free_list(struct cr_exec_claim *c, size_t n);
void cr_exec_transition_free_list(struct cr_exec_transition_rec *t, size_t n);
void cr_sync_state_rec_clear(struct cr_sync_state_rec *r);
void cr_sync_state_rec_free_list(struct cr_sync_state_rec *r, size_t n);
void cr_outbox_rec_clear(struct cr_outbox_rec *r);
void cr_outbox_rec_free_list(struct cr_outbox_rec *r, size_t n);
void cr_sub_stats_clear(struct cr_sub_stats *st);
void cr_delivery_attempt_free_list(struct cr_delivery_attempt_rec *a, size_t n);

#endif
