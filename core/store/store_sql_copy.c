/* store_sql_copy.c: cr_store_copy (store_copy.h) for the SQL stores: every
 * table read from the source's snapshot and written into the target in one
 * transaction of the target, in an order that satisfies the foreign keys,
 * then verified inside that transaction (row counts, and a digest of every
 * event subject's events and last sequence), so a copy that does not match
 * leaves the target as it was. */
#include "store/store_copy.h"

#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

/* Each table with its columns and their kinds: i integer, t text, b blob. */
struct table {
  const char *name, *cols, *kinds;
  int serial; /* has a generated id the target's sequence must pass */
};

// clang-format off
static const struct table tables[] = {
  {"authorizations", "id, name, description, provider, method, owner, "
   "config_hash, created_at, updated_at, deleted_at", "tttttttiii", 0},
  {"auth_health", "id, auth_id, checked_at, status, reason", "ititt", 1},
  {"works", "id, name, provider, authorization_id, schedule_json, "
   "destination_json, config_json, enabled, error_email_notifications, "
   "max_attempts, config_hash, next_run_at, created_at, updated_at, "
   "deleted_at, first_run_at, runner_labels_json", "tttttttiiitiiiiit", 0},
  {"executions", "id, work_id, state, attempt, runner_id, lease_epoch, "
   "lease_expires_at, error_class, error, created_at, updated_at, "
   "not_before, report_epoch, report_seq, report_result",
   "ittitiittiiiiit", 1},
  {"execution_transitions", "id, execution_id, from_state, to_state, at, "
   "reason", "iittit", 1},
  {"events", "id, at, subject_type, subject_id, verb, actor, seq, data_json",
   "iittttit", 1},
  {"event_subjects", "subject_type, subject_id, last_seq", "tti", 0},
  {"runners", "id, name, providers_json, slots, last_seen_at, token_hash, "
   "labels_json, version, slots_free, registered_at, revoked_at, online, "
   "registration, last_claim_id, last_claim_json", "tttiitttiiiittt", 0},
  {"sync_state", "work_id, version, state_json, records, committed_at, "
   "execution_id, note", "titiiit", 0},
  {"metrics", "auth_id, bucket_start, requests, errors", "tiii", 0},
  {"subscriptions", "id, workflow, config_hash, enabled, disabled_reason, "
   "created_at, updated_at, filter_json, cursor_event_id, max_in_flight, "
   "failing_since, batched", "tttitiitiiii", 0},
  {"outbox", "subscription_id, event_id, status, attempts, next_attempt_at, "
   "last_status, last_error, first_attempt_at", "titiiiti", 0},
  {"auth_credentials", "auth_id, config_hash, scheme, key_id, blob, "
   "updated_at", "ttttbi", 0},
  {"delivery_attempts", "id, subscription_id, event_id, at, http_status, "
   "latency_ms, error, last_event_id, event_count, batch_status",
   "itiiiitiit", 1},
  {"api_objects", "kind, id, def_json, sealed, key_id, created_by, "
   "created_at, updated_at", "tttbttii", 0},
  {"api_idempotency", "token, key, route, body_hash, status, response_json, "
   "created_at", "ttttiti", 0},
  {"execution_logs", "id, execution_id, at, level, text", "iiiit", 1},
  {"webhook_batches", "subscription_id, first_id, last_id, count, attempts, "
   "next_attempt_at, first_attempt_at", "tiiiiii", 0},
  {"cursors", "name, value", "ti", 0},
};
// clang-format on
#define N_TABLES (sizeof tables / sizeof tables[0])

static int fail(char *errbuf, size_t errlen, int rc, const char *fmt,
                const char *a, const char *b) {
  snprintf(errbuf, errlen, fmt, a, b);
  return rc;
}

/* Runs a one-integer query on q. */
static int one_int(struct sq_store *q, const char *sql, int64_t *out) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sql_prepare(q->db, sql, 0, &st);
  if (rc != 0)
    return cr__sq_fail(q, rc);
  int src = cr__sql_step(st);
  *out = src == CR_SQL_ROW ? cr__sql_col_i64(st, 0) : 0;
  rc = src == CR_SQL_ROW || src == CR_SQL_DONE ? 0 : cr__sq_fail(q, src);
  cr__sql_finalize(st);
  return rc;
}

/* Copies the current row of src into ins by the columns' kinds. */
static void bind_row(cr_sql_stmt *src, cr_sql_stmt *ins, const char *kinds) {
  for (int i = 0; kinds[i]; i++) {
    if (cr__sql_col_null(src, i)) {
      cr__sql_bind_null(ins, i + 1);
    } else if (kinds[i] == 'i') {
      cr__sql_bind_i64(ins, i + 1, cr__sql_col_i64(src, i));
    } else if (kinds[i] == 'b') {
      size_t n = 0;
      const void *b = cr__sql_col_blob(src, i, &n);
      cr__sql_bind_blob(ins, i + 1, b, n);
    } else {
      cr__sql_bind_text(ins, i + 1, cr__sql_col_text(src, i));
    }
  }
}

static int copy_table(struct sq_store *from, struct sq_store *to,
                      const struct table *t, int64_t *rows) {
  char sel[700], ins[1400], vals[200] = "";
  size_t n = strlen(t->kinds), off = 0;
  for (size_t i = 0; i < n; i++)
    off += (size_t)snprintf(vals + off, sizeof vals - off, "%s?%zu",
                            i ? ", " : "", i + 1);
  snprintf(sel, sizeof sel, "SELECT %s FROM %s", t->cols, t->name);
  snprintf(ins, sizeof ins, "INSERT INTO %s (%s) VALUES (%s)%s", t->name,
           t->cols, vals,
           strcmp(t->name, "event_subjects") == 0
               ? " ON CONFLICT (subject_type, subject_id) DO UPDATE SET "
                 "last_seq = excluded.last_seq"
               : "");
  cr_sql_stmt *s = NULL, *w = NULL;
  int rc = cr__sql_prepare(from->db, sel, 0, &s);
  if (rc != 0)
    return cr__sq_fail(from, rc);
  rc = cr__sql_prepare(to->db, ins, 1, &w);
  if (rc != 0) {
    cr__sql_finalize(s);
    return cr__sq_fail(to, rc);
  }
  int src;
  while (rc == 0 && (src = cr__sql_step(s)) == CR_SQL_ROW) {
    bind_row(s, w, t->kinds);
    int wrc = cr__sql_step(w);
    cr__sql_reset(w);
    if (wrc != CR_SQL_DONE)
      rc = cr__sq_fail(to, wrc);
    else
      (*rows)++;
  }
  if (rc == 0 && src != CR_SQL_DONE)
    rc = cr__sq_fail(from, src);
  cr__sql_finalize(s);
  cr__sql_finalize(w);
  return rc;
}

/* FNV-1a over a row's text columns and integers. */
static uint64_t mix(uint64_t h, const char *s) {
  for (; s != NULL && *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (h ^ 0xff) * 1099511628211ULL;
}

/* An order-free digest of the rows of sql (text, text, then integers). */
static int digest(struct sq_store *q, const char *sql, int ints, uint64_t *d,
                  int64_t *nrows) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sql_prepare(q->db, sql, 0, &st), src;
  if (rc != 0)
    return cr__sq_fail(q, rc);
  *d = 0;
  *nrows = 0;
  while ((src = cr__sql_step(st)) == CR_SQL_ROW) {
    uint64_t h = mix(mix(14695981039346656037ULL, cr__sql_col_text(st, 0)),
                     cr__sql_col_text(st, 1));
    for (int i = 0; i < ints; i++) {
      char num[24];
      snprintf(num, sizeof num, "%lld", (long long)cr__sql_col_i64(st, 2 + i));
      h = mix(h, num);
    }
    *d += h;
    (*nrows)++;
  }
  rc = src == CR_SQL_DONE ? 0 : cr__sq_fail(q, src);
  cr__sql_finalize(st);
  return rc;
}

static int verify(struct sq_store *from, struct sq_store *to,
                  struct cr_store_copy_report *r, char *errbuf, size_t errlen) {
  for (size_t i = 0; i < N_TABLES; i++) {
    char sql[128];
    int64_t a = 0, b = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", tables[i].name);
    int rc = one_int(from, sql, &a);
    if (rc == 0)
      rc = one_int(to, sql, &b);
    if (rc != 0)
      return rc;
    if (a != b) {
      snprintf(errbuf, errlen,
               "table %s has %lld rows in the source and %lld "
               "in the copy",
               tables[i].name, (long long)a, (long long)b);
      return CR_ESTORE;
    }
  }
  static const char *const checks[][2] = {
      {"SELECT subject_type, subject_id, count(*), max(seq), sum(seq) FROM "
       "events GROUP BY subject_type, subject_id",
       "events per subject (count, last and sum of sequence numbers)"},
      {"SELECT subject_type, subject_id, last_seq FROM event_subjects",
       "last sequence numbers of the event subjects"}};
  for (int k = 0; k < 2; k++) {
    uint64_t da = 0, db = 0;
    int64_t na = 0, nb = 0;
    int rc = digest(from, checks[k][0], k == 0 ? 3 : 1, &da, &na);
    if (rc == 0)
      rc = digest(to, checks[k][0], k == 0 ? 3 : 1, &db, &nb);
    if (rc != 0)
      return rc;
    if (da != db || na != nb)
      return fail(errbuf, errlen, CR_ESTORE, "the copy's %s differ%s",
                  checks[k][1], "");
    if (k == 0)
      r->subjects = na;
  }
  return 0;
}

/* The target's id sequences continue after the copied ids (events: after
 * the last id the source ever gave). */
static int set_sequences(struct sq_store *to, int64_t last_event) {
  for (size_t i = 0; i < N_TABLES; i++) {
    if (!tables[i].serial)
      continue;
    char sql[400];
    long long floor = strcmp(tables[i].name, "events") == 0 ? last_event : 0;
    snprintf(sql, sizeof sql,
             "SELECT setval(pg_get_serial_sequence('%s', 'id'), "
             "GREATEST(COALESCE(max(id), 0), %lld, 1), "
             "GREATEST(COALESCE(max(id), 0), %lld) > 0) FROM %s",
             tables[i].name, floor, floor, tables[i].name);
    int64_t v = 0;
    int rc = one_int(to, sql, &v);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int target_empty(struct sq_store *to, char *errbuf, size_t errlen) {
  int64_t n = 0;
  int rc = one_int(to,
                   "SELECT (SELECT count(*) FROM authorizations) + (SELECT "
                   "count(*) FROM works) + (SELECT count(*) FROM executions) "
                   "+ (SELECT count(*) FROM events) + (SELECT count(*) FROM "
                   "runners) + (SELECT count(*) FROM subscriptions)",
                   &n);
  if (rc == 0 && n > 0)
    return fail(errbuf, errlen, CR_EEXIST,
                "the target store is not empty (%s); migrate into a new "
                "database%s",
                "it has authorizations, works, executions, events, runners "
                "or subscriptions",
                "");
  return rc;
}

static int copy_all(struct sq_store *from, struct sq_store *to,
                    struct cr_store_copy_report *r, char *errbuf,
                    size_t errlen) {
  for (size_t i = 0; i < N_TABLES; i++) {
    int64_t rows = 0;
    int rc = copy_table(from, to, &tables[i], &rows);
    if (rc != 0) {
      char why[CR_STORE_ERRLEN];
      snprintf(why, sizeof why, "%s",
               to->base.last_error[0] ? to->base.last_error
                                      : from->base.last_error);
      return fail(errbuf, errlen, rc, "copying table %s: %s", tables[i].name,
                  why);
    }
    r->rows += rows;
    if (strcmp(tables[i].name, "events") == 0)
      r->events = rows;
    r->tables++;
  }
  int64_t last = 0;
  int rc = cr_store_event_last_id(&from->base, &last);
  if (rc == 0)
    rc = set_sequences(to, last);
  if (rc == 0)
    rc = verify(from, to, r, errbuf, errlen);
  return rc;
}

int cr_store_copy(cr_store *from, cr_store *to,
                  struct cr_store_copy_report *report, char *errbuf,
                  size_t errlen) {
  struct cr_store_copy_report r = {0};
  if (from == NULL || to == NULL || from == to || from->ops != &cr__sq_ops ||
      to->ops != &cr__sq_ops)
    return fail(errbuf, errlen, CR_EINVAL, "copy needs two SQL stores%s%s", "",
                "");
  struct sq_store *f = sqs(from), *t = sqs(to);
  if (t->db->drv->dialect != CR_SQL_PG)
    return fail(errbuf, errlen, CR_EINVAL,
                "the target must be a PostgreSQL store (postgresql://...)%s%s",
                "", "");
  int va = 0, vb = 0;
  int rc = cr_store_schema_version(from, &va);
  if (rc == 0)
    rc = cr_store_schema_version(to, &vb);
  if (rc == 0 && va != vb)
    rc = CR_ESTORE;
  if (rc != 0)
    return fail(errbuf, errlen, rc == CR_ESTORE ? rc : rc,
                "the stores' schema versions differ or cannot be read%s%s", "",
                "");
  rc = cr_store_read_begin(from);
  if (rc == 0)
    rc = cr_store_begin(to);
  if (rc != 0) {
    cr_store_read_end(from);
    return fail(errbuf, errlen, rc, "cannot start the copy: %s%s",
                cr_store_last_error(to), "");
  }
  errbuf[0] = '\0';
  rc = target_empty(t, errbuf, errlen);
  if (rc == 0)
    rc = copy_all(f, t, &r, errbuf, errlen);
  if (rc == 0) {
    rc = cr_store_commit(to);
    if (rc != 0)
      fail(errbuf, errlen, rc, "committing the copy: %s%s",
           cr_store_last_error(to), "");
  } else {
    if (errbuf[0] == '\0')
      fail(errbuf, errlen, rc, "%s%s", cr_store_last_error(to), "");
    cr_store_rollback(to);
  }
  cr_store_read_end(from);
  if (rc == 0 && report != NULL)
    *report = r;
  return rc;
}
