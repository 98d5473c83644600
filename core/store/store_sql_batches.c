/* store_sqlite_batches.c: the SQLite store backend's batched webhook
 * delivery (store_batches.h): the open batch per subscription and the
 * attempts that cover a range of events. */
#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/error.h"

#include <string.h>

int cr__sq_batch_get(cr_store *s, const char *sub_id,
                     struct cr_batch_rec *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_BATCH_GET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    int64_t *const f[] = {&out->first_id,        &out->last_id,
                          &out->count,           &out->attempts,
                          &out->next_attempt_at, &out->first_attempt_at};
    for (int i = 0; i < 6; i++)
      *f[i] = cr__sql_col_i64(st, i);
  }
  cr__sq_done(st);
  if (src == CR_SQL_ROW)
    return 0;
  return src == CR_SQL_DONE ? cr__sq_not_found(q, "open batch of", sub_id)
                            : cr__sq_fail(q, src);
}

int cr__sq_batch_open(cr_store *s, const char *sub_id, int64_t first,
                      int64_t last, int64_t count, int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_BATCH_OPEN, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  cr__sql_bind_i64(st, 2, first);
  cr__sql_bind_i64(st, 3, last);
  cr__sql_bind_i64(st, 4, count);
  cr__sql_bind_i64(st, 5, now);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && cr__sql_changes(q->db) == 0) {
    cr__store_set_error(s,
                        "batch %lld..%lld of '%s' is not after its cursor "
                        "(or no such subscription)",
                        (long long)first, (long long)last, sub_id);
    return CR_EINVAL;
  }
  return rc;
}

static int attempt(struct sq_store *q, const char *sub_id,
                   const struct cr_batch_rec *b, int64_t now, int http,
                   int64_t latency, const char *error, const char *status) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_BATCH_ATTEMPT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  cr__sql_bind_i64(st, 2, b->first_id);
  cr__sql_bind_i64(st, 3, now);
  if (http > 0)
    cr__sql_bind_i64(st, 4, http);
  else
    cr__sql_bind_null(st, 4);
  cr__sql_bind_i64(st, 5, latency);
  cr__sq_bind_str(st, 6, error);
  cr__sql_bind_i64(st, 7, b->last_id);
  cr__sql_bind_i64(st, 8, b->count);
  cr__sq_bind_str(st, 9, status);
  return cr__sq_step_done(q, st);
}

/* After the attempt: closes the batch (moving the cursor) or sets it up
 * for its retry. */
static int move_on(struct sq_store *q, const char *sub_id,
                   const struct cr_batch_rec *b,
                   const struct cr_batch_result *r, int64_t now) {
  cr_sql_stmt *st = NULL;
  int done = !strcmp(r->status, "delivered") || !strcmp(r->status, "dead");
  int halved = !strcmp(r->status, "halved");
  int rc = cr__sq_prep(q, done ? ST_BATCH_CLOSE : ST_BATCH_RETRY, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  if (!done) {
    cr__sql_bind_i64(st, 2, halved ? now : r->next_attempt_at);
    cr__sql_bind_i64(st, 3, now);
    cr__sql_bind_i64(st, 4, halved ? r->new_last_id : b->last_id);
    cr__sql_bind_i64(st, 5, halved ? r->new_count : b->count);
  }
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && done)
    rc = cr__sq_sub_set_cursor(&q->base, sub_id, b->last_id, 1);
  return rc;
}

int cr__sq_batch_record(cr_store *s, const char *sub_id,
                        const struct cr_batch_result *r, int64_t now) {
  struct sq_store *q = sqs(s);
  struct cr_batch_rec b;
  memset(&b, 0, sizeof b);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = cr__sq_batch_get(s, sub_id, &b);
  if (rc == 0 && !strcmp(r->status, "halved") &&
      (r->new_count <= 0 || r->new_count >= b.count ||
       r->new_last_id < b.first_id || r->new_last_id >= b.last_id)) {
    cr__store_set_error(s, "a halved batch must be shorter");
    rc = CR_EINVAL;
  }
  if (rc == 0)
    rc = attempt(q, sub_id, &b, now, r->http_status, r->latency_ms, r->error,
                 r->status);
  if (rc == 0)
    rc = move_on(q, sub_id, &b, r, now);
  return cr__sq_op_end(q, rc);
}

int cr__sq_batch_note_dead(cr_store *s, const char *sub_id, int64_t event_id,
                           const char *error, int64_t now) {
  struct cr_batch_rec one = {
      .first_id = event_id, .last_id = event_id, .count = 1};
  return attempt(sqs(s), sub_id, &one, now, 0, 0, error, "dead");
}

/* Replay of a batched subscription: its cursor goes back to the last event
 * before since_ms (never forward), its open batch is dropped (its events
 * come again in the new batches, in order); *n gets the events now after
 * the cursor that were before it (before filtering). *batched = 0 (and
 * nothing done) for a per-event subscription. Inside the caller's
 * transaction. */
int cr__sq_batch_rewind(struct sq_store *q, const char *sub_id,
                        int64_t since_ms, int *batched, size_t *n) {
  cr_sql_stmt *st = NULL;
  int64_t v = 0, old = 0;
  int found = 0;
  int rc = cr__sq_prep(q, ST_BATCH_IS, &st);
  if (rc == 0) {
    cr__sq_bind_str(st, 1, sub_id);
    rc = cr__sq_step_int(q, st, &v, &found);
  }
  *batched = rc == 0 && found && v != 0;
  if (rc != 0 || !*batched)
    return rc;
  struct cr_sub_rec *sub = NULL;
  if ((rc = q->base.ops->sub_get(&q->base, sub_id, &sub)) != 0)
    return rc;
  old = sub->cursor_event_id;
  cr_sub_rec_free(sub);
  if ((rc = cr__sq_prep(q, ST_BATCH_CLOSE, &st)) == 0) {
    cr__sq_bind_str(st, 1, sub_id);
    rc = cr__sq_step_done(q, st);
  }
  if (rc == 0 && (rc = cr__sq_prep(q, ST_BATCH_REWIND, &st)) == 0) {
    cr__sq_bind_str(st, 1, sub_id);
    cr__sql_bind_i64(st, 2, since_ms);
    rc = cr__sq_step_done(q, st);
  }
  if (rc == 0 && (rc = cr__sq_prep(q, ST_BATCH_REPLAYED, &st)) == 0) {
    cr__sq_bind_str(st, 1, sub_id);
    cr__sql_bind_i64(st, 2, old);
    rc = cr__sq_step_int(q, st, &v, &found);
    *n = found ? (size_t)v : 0;
  }
  return rc;
}
