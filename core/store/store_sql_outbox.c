/* store_sql_outbox.c: the SQL store's webhook outbox: enqueueing events
 * for subscriptions, due rows, delivery attempts and their outcome,
 * disabling a subscription, replay and per-subscription stats. On
 * PostgreSQL, where every statement is a round trip, enqueueing and
 * recording a batch are one statement each (set-based, a JSON array of
 * rows) rather than one per row. Shared helpers and statements:
 * store_sql_int.h. */
#include "events/sub_filter.h"
#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/alloc.h"
#include "util/error.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int is_pg(const struct sq_store *q) {
  return q->db->drv->dialect == CR_SQL_PG;
}

/* Runs the set-based statement id with the JSON text json (borrowed; NULL
 * is out of memory) at ?json_at, text at ?1 when not NULL and the integer i
 * at ?i_at. *changed (may be NULL) gets the rows it changed. */
static int run_set(struct sq_store *q, enum stmt_id id, const char *json,
                   int json_at, const char *text, int i_at, int64_t i,
                   size_t *changed) {
  cr_sql_stmt *st = NULL;
  int rc = json == NULL ? cr__sq_nomem(q) : cr__sq_prep(q, id, &st);
  if (rc == 0) {
    if (text != NULL)
      cr__sq_bind_str(st, 1, text);
    cr__sq_bind_str(st, json_at, json);
    cr__sql_bind_i64(st, i_at, i);
    rc = cr__sq_step_done(q, st);
  }
  if (rc == 0 && changed != NULL)
    *changed = (size_t)cr__sql_changes(q->db);
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

static int read_enq_sub(cr_sql_stmt *st, void *p) {
  struct enq_sub *r = p;
  r->cursor = cr__sql_col_i64(st, 2);
  if (cr__sq_col_str(st, 0, &r->id) != 0)
    return CR_ENOMEM;
  return cr__sq_col_str(st, 1, &r->filter_json);
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
    return cr__sq_nomem(q);
  if (rc != 0)
    cr__store_set_error(&q->base, "subscription '%s' has an invalid filter",
                        sub->id);
  return rc;
}

/* Steps scan (bound; columns id, subject_type, subject_id, verb) to the
 * end; for each event f matches (NULL: all) runs ins (?1 sub id, ?2 event
 * id, ?3 now). *count gets the rows ins changed, *last the last scanned id.
 * Resets scan. */
static int scan_events(struct sq_store *q, cr_sql_stmt *scan,
                       const cr_sub_filter *f, const char *sub_id,
                       enum stmt_id ins_id, int64_t now, size_t *count,
                       int64_t *last) {
  cr_sql_stmt *ins = NULL;
  json_t *ids = is_pg(q) && ins_id == ST_OUTBOX_INSERT ? json_array() : NULL;
  int rc = ids != NULL ? 0 : cr__sq_prep(q, ins_id, &ins), src = CR_SQL_DONE;
  while (rc == 0 && (src = cr__sql_step(scan)) == CR_SQL_ROW) {
    int64_t id = cr__sql_col_i64(scan, 0);
    *last = id;
    if (f != NULL &&
        !cr_sub_filter_match(f, (const char *)cr__sql_col_text(scan, 1),
                             (const char *)cr__sql_col_text(scan, 2),
                             (const char *)cr__sql_col_text(scan, 3)))
      continue;
    if (ids != NULL) { /* inserted together below */
      if (json_array_append_new(ids, json_integer(id)) != 0)
        rc = cr__sq_nomem(q);
      continue;
    }
    cr__sq_bind_str(ins, 1, sub_id);
    cr__sql_bind_i64(ins, 2, id);
    cr__sql_bind_i64(ins, 3, now);
    int irc = cr__sql_step(ins);
    cr__sql_reset(ins);
    if (irc != CR_SQL_DONE)
      rc = cr__sq_fail(q, irc);
    else
      *count += (size_t)cr__sql_changes(q->db);
  }
  if (rc == 0 && src != CR_SQL_DONE)
    rc = cr__sq_fail(q, src);
  cr__sq_done(scan);
  if (ins != NULL)
    cr__sq_done(ins);
  size_t added = 0;
  if (rc == 0 && json_array_size(ids) > 0) {
    char *json = json_dumps(ids, JSON_COMPACT);
    rc = run_set(q, ST_OUTBOX_INSERT_SET, json, 2, sub_id, 3, now, &added);
    free(json); /* jansson's allocator: the C library's */
  }
  *count += added;
  json_decref(ids);
  return rc;
}

/* Enqueues the new events of one subscription and moves its cursor. */
static int enqueue_sub(struct sq_store *q, const struct enq_sub *sub,
                       size_t max_events, int64_t now, size_t *count) {
  cr_sub_filter *f = NULL;
  cr_sql_stmt *scan = NULL;
  int rc = sub_filter_of(q, sub, &f);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EVENT_SCAN, &scan);
  int64_t last = sub->cursor;
  if (rc == 0) {
    cr__sql_bind_i64(scan, 1, sub->cursor);
    cr__sql_bind_i64(scan, 2, (int64_t)max_events);
    rc = scan_events(q, scan, f, sub->id, ST_OUTBOX_INSERT, now, count, &last);
  }
  cr_sub_filter_free(f);
  cr_sql_stmt *cur = NULL;
  if (rc == 0 && last > sub->cursor)
    rc = cr__sq_prep(q, ST_SUB_CURSOR, &cur);
  if (cur != NULL) {
    cr__sq_bind_str(cur, 1, sub->id);
    cr__sql_bind_i64(cur, 2, last);
    rc = cr__sq_step_done(q, cur);
  }
  return rc;
}

/* PostgreSQL, outside a transaction: is there an event after the cursor of
 * some subscription enqueue serves? A read, without the write lock: every
 * instance's delivery engine enqueues on every `events` notification, and
 * all but the first find nothing, each in a write transaction every other
 * writer of every instance waited for. An event committed after this read
 * notifies again. 1 (look) on SQLite, inside a transaction, or on error. */
static int enqueue_worth(struct sq_store *q) {
  if (!is_pg(q) || q->depth > 0 || cr__sql_in_txn(q->db))
    return 1;
  cr_sql_stmt *st = NULL;
  int64_t any = 1;
  if (cr__sq_prep(q, ST_OUTBOX_ENQ_PROBE, &st) != 0 ||
      cr__sq_step_int(q, st, &any, NULL) != 0)
    return 1;
  return any != 0;
}

int cr__sq_outbox_enqueue(cr_store *s, size_t max_events, int64_t now,
                          size_t *enqueued) {
  struct sq_store *q = sqs(s);
  struct enq_sub *subs = NULL;
  size_t nsubs = 0, count = 0;
  int rc = cr__sq_doomed(q);
  if (rc == 0 && !enqueue_worth(q)) {
    *enqueued = 0;
    return 0;
  }
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = cr__sq_list_by(q, ST_SUB_ENABLED, NULL, &ENQ_SUB_ROW, (void **)&subs,
                      &nsubs);
  for (size_t i = 0; rc == 0 && i < nsubs; i++)
    rc = enqueue_sub(q, &subs[i], max_events, now, &count);
  free_enq_subs(subs, nsubs);
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *enqueued = count;
  return rc;
}

static int read_outbox(cr_sql_stmt *st, void *p) {
  struct cr_outbox_rec *r = p;
  struct cr_event_rec *e = &r->event;
  char **const f[] = {&e->subject_type, &e->subject_id, &e->verb, &e->actor,
                      &e->data_json};
  r->event_id = cr__sql_col_i64(st, 1);
  r->attempts = (int)cr__sql_col_i64(st, 3);
  r->next_attempt_at = cr__sql_col_i64(st, 4);
  r->first_attempt_at = cr__sql_col_i64(st, 5);
  r->last_status = (int)cr__sql_col_i64(st, 6);
  e->id = cr__sql_col_i64(st, 8);
  e->at = cr__sql_col_i64(st, 9);
  e->seq = cr__sql_col_i64(st, 10);
  if (cr__sq_col_str(st, 0, &r->subscription_id) != 0 ||
      cr__sq_col_str(st, 2, &r->status) != 0 ||
      cr__sq_col_str(st, 7, &r->last_error) != 0)
    return CR_ENOMEM;
  return cr__sq_col_strs(st, 11, f, sizeof f / sizeof f[0]);
}

static void clear_outbox(void *p) { cr_outbox_rec_clear(p); }

static const struct row_type OUTBOX_ROW = {sizeof(struct cr_outbox_rec),
                                           read_outbox, clear_outbox};

/* Where sub_id's rows start in pos (0: from the first). */
static int64_t pos_after(const struct cr_outbox_pos *pos, size_t n_pos,
                         const char *sub_id) {
  for (size_t i = 0; i < n_pos; i++)
    if (strcmp(pos[i].sub_id, sub_id) == 0)
      return pos[i].after;
  return 0;
}

/* Appends sub_id's due rows after `after` (up to limit - *n) to *out. */
static int due_after_sub(struct sq_store *q, int64_t now, const char *sub_id,
                         int64_t after, size_t limit,
                         struct cr_outbox_rec **out, size_t *n) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_OUTBOX_DUE_AFTER, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  cr__sql_bind_i64(st, 2, after);
  cr__sql_bind_i64(st, 3, now);
  cr__sql_bind_i64(st, 4, (int64_t)(limit - *n));
  struct cr_outbox_rec *rows = NULL;
  size_t got = 0;
  rc = cr__sq_collect(q, st, &OUTBOX_ROW, 16, (void **)&rows, &got);
  if (rc != 0 || got == 0)
    return rc;
  struct cr_outbox_rec *all = *out;
  if (*n > 0 && (all = cr__realloc(*out, (*n + got) * sizeof *all)) == NULL) {
    cr_outbox_rec_free_list(rows, got);
    return cr__sq_nomem(q);
  }
  if (*n == 0)
    all = rows;
  else {
    memcpy(all + *n, rows, got * sizeof *rows); /* the strings move */
    cr__free(rows);
  }
  *out = all;
  *n += got;
  return 0;
}

/* Enabled subscriptions one by one, each from its position. */
static int due_by_pos(struct sq_store *q, int64_t now,
                      const struct cr_outbox_pos *pos, size_t n_pos,
                      size_t limit, struct cr_outbox_rec **out, size_t *n) {
  cr_sql_stmt *st = NULL;
  struct enq_sub *subs = NULL; /* only the ids are read */
  size_t nsubs = 0;
  int rc = cr__sq_prep(q, ST_SUB_ENABLED_IDS, &st);
  if (rc == 0)
    rc = cr__sq_collect(q, st, &ENQ_SUB_ROW, 4, (void **)&subs, &nsubs);
  for (size_t i = 0; rc == 0 && i < nsubs && *n < limit; i++)
    rc = due_after_sub(q, now, subs[i].id, pos_after(pos, n_pos, subs[i].id),
                       limit, out, n);
  free_enq_subs(subs, nsubs);
  if (rc != 0) {
    cr_outbox_rec_free_list(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return rc;
}

int cr__sq_outbox_due(cr_store *s, int64_t now, const struct cr_outbox_pos *pos,
                      size_t n_pos, size_t limit, struct cr_outbox_rec **out,
                      size_t *n) {
  struct sq_store *q = sqs(s);
  if (pos != NULL)
    return due_by_pos(q, now, pos, n_pos, limit, out, n);
  /* PostgreSQL: in a read transaction of its own (unless the caller has
   * one) whose plan walks outbox_undelivered in its order and stops at the
   * limit. A burst of deliveries outruns the outbox's statistics, and the
   * read then took a bitmap scan and a sort of every undelivered row of
   * every subscription: 7-9 ms a read with 36,000 rows queued. */
  int own = is_pg(q) && q->depth == 0 && !cr__sql_in_txn(q->db);
  int rc = own ? cr_store_read_begin(s) : 0;
  if (rc == 0)
    rc = cr__sq_plan(q, ST_PLAN_NO_BITMAP);
  if (rc == 0)
    rc = cr__sq_plan(q, ST_PLAN_NO_SEQSCAN);
  cr_sql_stmt *st = NULL;
  if (rc == 0)
    rc = cr__sq_prep(q, ST_OUTBOX_DUE, &st);
  if (rc == 0) {
    cr__sql_bind_i64(st, 1, now);
    cr__sql_bind_i64(st, 2, (int64_t)limit);
    rc = cr__sq_collect(q, st, &OUTBOX_ROW, limit < 64 ? limit : 64,
                        (void **)out, n);
  }
  if (own)
    cr_store_read_end(s);
  return rc;
}

int cr__sq_outbox_next_due(cr_store *s, int64_t *at) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_OUTBOX_NEXT_DUE, &st);
  if (rc != 0)
    return rc;
  return cr__sq_step_int(q, st, at, NULL);
}

/* The outbox row's new state (?1..?7 of OUTBOX_SET); CR_ENOENT when the row
 * is gone. */
static int outbox_set(struct sq_store *q, const char *sub_id, int64_t event_id,
                      const char *status, int http_status, const char *error,
                      int64_t next_attempt_at, int64_t now) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_OUTBOX_SET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  cr__sql_bind_i64(st, 2, event_id);
  cr__sq_bind_str(st, 3, status);
  cr__sql_bind_i64(st, 4, next_attempt_at);
  cr__sq_bind_time(st, 5, http_status);
  cr__sq_bind_str(st, 6, error);
  cr__sql_bind_i64(st, 7, now);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && cr__sql_changes(q->db) == 0) {
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
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_ATTEMPT_INSERT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  cr__sql_bind_i64(st, 2, event_id);
  cr__sql_bind_i64(st, 3, now);
  cr__sq_bind_time(st, 4, http_status);
  cr__sql_bind_i64(st, 5, latency);
  cr__sq_bind_str(st, 6, error);
  return cr__sq_step_done(q, st);
}

static int sub_failing(struct sq_store *q, const char *sub_id,
                       const char *status, int64_t now) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_SUB_FAILING, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  cr__sq_bind_str(st, 2, status);
  cr__sql_bind_i64(st, 3, now);
  return cr__sq_step_done(q, st);
}

/* One attempt's writes (inside the caller's operation): the outbox row,
 * the attempt, and the subscription's failing streak unless prev (the
 * attempt recorded just before, same now; may be NULL) already set it. */
static int record_one(struct sq_store *q, const struct cr_outbox_attempt *a,
                      const struct cr_outbox_attempt *prev, int64_t now) {
  int64_t next = a->next_attempt_at ? a->next_attempt_at : now;
  int rc = outbox_set(q, a->sub_id, a->event_id, a->status, a->http_status,
                      a->error, next, now);
  if (rc == 0)
    rc = attempt_insert(q, a->sub_id, a->event_id, a->http_status,
                        a->latency_ms, a->error, now);
  if (rc == 0 && (prev == NULL || strcmp(prev->status, a->status) != 0 ||
                  strcmp(prev->sub_id, a->sub_id) != 0))
    rc = sub_failing(q, a->sub_id, a->status, now);
  return rc;
}

int cr__sq_outbox_record(cr_store *s, const char *sub_id, int64_t event_id,
                         const char *status, int http_status,
                         int64_t latency_ms, const char *error,
                         int64_t next_attempt_at, int64_t now) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  const struct cr_outbox_attempt a = {sub_id,         event_id,   status,
                                      http_status,    latency_ms, error,
                                      next_attempt_at};
  return cr__sq_op_end(q, record_one(q, &a, NULL, now));
}

/* The attempts a[0..n) as a JSON array for the set-based statements, or
 * NULL (out of memory, or one outbox row twice: an UPDATE ... FROM applies
 * one of them only, so that batch goes row by row). */
static char *attempts_json(const struct cr_outbox_attempt *a, size_t n,
                           int64_t now) {
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < n; i++) {
    for (size_t j = 0; j < i; j++)
      if (a[j].event_id == a[i].event_id && !strcmp(a[j].sub_id, a[i].sub_id))
        goto fail;
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:I, s:o, s:I, s:s?}", "s", a[i].sub_id, "e",
        (json_int_t)a[i].event_id, "st", a[i].status, "nx",
        (json_int_t)(a[i].next_attempt_at ? a[i].next_attempt_at : now), "hs",
        a[i].http_status ? json_integer(a[i].http_status) : json_null(), "lt",
        (json_int_t)a[i].latency_ms, "er", a[i].error);
    if (o == NULL || json_array_append_new(arr, o) != 0)
      goto fail;
  }
  char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
  json_decref(arr);
  return text;
fail:
  json_decref(arr);
  return NULL;
}

/* The batch in three statements (PostgreSQL): the outbox rows, the attempts
 * of the rows still there, the subscriptions' failing streaks; their plan
 * set first (ST_PLAN_NO_SEQSCAN, sent with the first of them). 1 when it
 * could not be expressed so (attempts_json) and nothing was written. */
static int record_set(struct sq_store *q, const struct cr_outbox_attempt *a,
                      size_t n, int64_t now, size_t *done) {
  char *json = attempts_json(a, n, now);
  if (json == NULL)
    return 1;
  int rc = cr__sq_plan(q, ST_PLAN_NO_SEQSCAN);
  if (rc == 0)
    rc = run_set(q, ST_OUTBOX_SET_MANY, json, 1, NULL, 2, now, done);
  if (rc == 0)
    rc = run_set(q, ST_ATTEMPT_INSERT_MANY, json, 1, NULL, 2, now, NULL);
  free(json); /* jansson's allocator: the C library's */
  for (size_t i = 0; rc == 0 && i < n; i++) /* a no-op for a deleted one */
    if (i == 0 || strcmp(a[i - 1].status, a[i].status) != 0 ||
        strcmp(a[i - 1].sub_id, a[i].sub_id) != 0)
      rc = sub_failing(q, a[i].sub_id, a[i].status, now);
  return rc;
}

/* One operation for the batch: no savepoint per attempt. */
int cr__sq_outbox_record_many(cr_store *s, const struct cr_outbox_attempt *a,
                              size_t n, int64_t now, size_t *recorded) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  size_t done = 0;
  const struct cr_outbox_attempt *prev = NULL; /* last one written */
  if (is_pg(q) && n > 1 && (rc = record_set(q, a, n, now, &done)) != 1)
    n = 0; /* done set-based (or failed) */
  else
    rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = record_one(q, &a[i], prev, now);
    if (rc == CR_ENOENT) /* its subscription was deleted meanwhile */
      rc = 0;
    else if (rc == 0) {
      done++;
      prev = &a[i];
    }
  }
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *recorded = done;
  return rc;
}

int cr__sq_sub_set_cursor(cr_store *s, const char *id, int64_t cursor,
                          int forward_only) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_SUB_CURSOR_SET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, id);
  cr__sql_bind_i64(st, 2, cursor);
  cr__sql_bind_i64(st, 3, forward_only != 0);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && cr__sql_changes(q->db) == 0 && !forward_only)
    return cr__sq_not_found(q, "subscription", id);
  return rc;
}

int cr__sq_sub_disable(cr_store *s, const char *id, const char *reason,
                       int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_SUB_DISABLE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, id);
  cr__sql_bind_i64(st, 2, now);
  cr__sq_bind_str(st, 3, reason);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && cr__sql_changes(q->db) == 0)
    return cr__sq_not_found(q, "subscription", id);
  return rc;
}

static int replay_sub(struct sq_store *q, const struct enq_sub *sub,
                      int64_t since_ms, int64_t now, size_t *n) {
  cr_sub_filter *f = NULL;
  cr_sql_stmt *scan = NULL;
  int rc = sub_filter_of(q, sub, &f);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EVENT_SCAN_SINCE, &scan);
  if (rc == 0) {
    int64_t last = 0;
    cr__sql_bind_i64(scan, 1, since_ms);
    cr__sql_bind_i64(scan, 2, sub->cursor);
    rc = scan_events(q, scan, f, sub->id, ST_OUTBOX_REQUEUE, now, n, &last);
  }
  cr_sub_filter_free(f);
  return rc;
}

int cr__sq_outbox_replay(cr_store *s, const char *sub_id, int64_t since_ms,
                         int64_t now, size_t *n) {
  struct sq_store *q = sqs(s);
  struct enq_sub *sub = NULL;
  size_t count = 0;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  int batched = 0;
  rc = cr__sq_get_by(q, ST_SUB_FILTER, sub_id, &ENQ_SUB_ROW, (void **)&sub,
                     "subscription");
  if (rc == 0) /* a batched subscription replays by rewinding its cursor */
    rc = cr__sq_batch_rewind(q, sub_id, since_ms, &batched, &count);
  if (rc == 0 && !batched)
    rc = replay_sub(q, sub, since_ms, now, &count);
  free_enq_subs(sub, sub != NULL);
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *n = count;
  return rc;
}

static int sub_last_attempt(struct sq_store *q, const char *sub_id,
                            struct cr_sub_stats *out) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_SUB_LAST_ATTEMPT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    out->last_attempt_at = cr__sql_col_i64(st, 0);
    out->last_status = (int)cr__sql_col_i64(st, 1);
    if (cr__sq_col_str(st, 2, &out->last_error) != 0)
      rc = cr__sq_nomem(q);
  } else if (src != CR_SQL_DONE) {
    rc = cr__sq_fail(q, src);
  }
  cr__sq_done(st);
  return rc;
}

int cr__sq_sub_stats(cr_store *s, const char *sub_id, int64_t now,
                     struct cr_sub_stats *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_SUB_STATS, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  cr__sql_bind_i64(st, 2, now - INT64_C(86400000));
  int src = cr__sql_step(st), exists = 0;
  if (src == CR_SQL_ROW) {
    int64_t *const f[] = {&out->backlog, &out->delivered, &out->dead,
                          &out->attempts_24h, &out->ok_24h};
    for (int i = 0; i < 5; i++)
      *f[i] = cr__sql_col_i64(st, i);
    exists = (int)cr__sql_col_i64(st, 5);
  } else {
    rc = cr__sq_fail(q, src);
  }
  cr__sq_done(st);
  if (rc == 0 && !exists)
    rc = cr__sq_not_found(q, "subscription", sub_id);
  if (rc == 0)
    rc = sub_last_attempt(q, sub_id, out);
  if (rc != 0)
    cr_sub_stats_clear(out);
  return rc;
}