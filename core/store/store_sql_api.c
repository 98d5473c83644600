/* store_sql_api.c: the SQL store's operations for the REST API beyond the
 * core tables' own: a subscription's delivery attempts, the newest event id
 * (for event streams), statistics, the objects created through the API and
 * their generation, idempotency keys, and named cursors. */
#include "store/store_sql_int.h"

#include <string.h>

#include "util/alloc.h"
#include "util/error.h"

static int sub_exists(struct sq_store *q, const char *sub_id) {
  cr_sql_stmt *st = NULL;
  int64_t one = 0;
  int found = 0;
  int rc = cr__sq_prep(q, ST_SUB_EXISTS, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, sub_id);
  rc = cr__sq_step_int(q, st, &one, &found);
  if (rc == 0 && !found)
    rc = cr__sq_not_found(q, "subscription", sub_id);
  return rc;
}

int cr__sq_sub_attempts(cr_store *s, const char *sub_id, int64_t before_id,
                        size_t limit, struct cr_delivery_attempt_rec **out,
                        size_t *n) {
  struct sq_store *q = sqs(s);
  int rc = sub_exists(q, sub_id);
  cr_sql_stmt *st = NULL;
  if (rc == 0)
    rc = cr__sq_prep(q, ST_SUB_ATTEMPTS, &st);
  if (rc != 0)
    return rc;
  struct cr_delivery_attempt_rec *a = cr__calloc(limit, sizeof *a);
  if (a == NULL) {
    cr__sq_done(st);
    return cr__sq_nomem(q);
  }
  cr__sq_bind_str(st, 1, sub_id);
  cr__sql_bind_i64(st, 2, before_id > 0 ? before_id : INT64_MAX);
  cr__sql_bind_i64(st, 3, (int64_t)limit);
  size_t k = 0;
  int src = CR_SQL_DONE;
  while (rc == 0 && k < limit && (src = cr__sql_step(st)) == CR_SQL_ROW) {
    a[k].id = cr__sql_col_i64(st, 0);
    a[k].event_id = cr__sql_col_i64(st, 1);
    a[k].at = cr__sql_col_i64(st, 2);
    a[k].http_status = (int)cr__sql_col_i64(st, 3);
    a[k].latency_ms = cr__sql_col_i64(st, 4);
    rc = cr__sq_col_str(st, 5, &a[k].error);
    k++;
  }
  if (rc == 0 && k < limit && src != CR_SQL_DONE)
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  if (rc != 0) {
    cr_delivery_attempt_free_list(a, k);
    return rc == CR_ENOMEM ? cr__sq_nomem(q) : rc;
  }
  *out = k ? a : NULL;
  *n = k;
  if (k == 0)
    cr__free(a);
  return 0;
}

int cr__sq_event_last_id(cr_store *s, int64_t *id) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int found = 0;
  int rc = cr__sq_prep(q, ST_EVENT_LAST_ID, &st);
  if (rc == 0)
    rc = cr__sq_step_int(q, st, id, &found);
  return rc;
}

static const enum stmt_id stat_stmts[] = {
    ST_STAT_EXEC_STATES, ST_STAT_EXEC_DURATIONS, ST_STAT_REQUESTS,
    ST_STAT_EVENTS,      ST_STAT_OUTBOX,         ST_STAT_ATTEMPTS};

/* Reads one aggregate row: two label columns (the second NULL when the
 * stat has one label), then the numbers. */
static int stat_row(cr_sql_stmt *st, void *p) {
  struct cr_stat_row *r = p;
  int cols = cr__sql_ncols(st);
  int rc = cr__sq_col_str(st, 0, &r->label[0]);
  if (rc == 0)
    rc = cr__sq_col_str(st, 1, &r->label[1]);
  for (int i = 2; i < cols && i - 2 < CR_STAT_VALUES; i++)
    r->v[i - 2] = cr__sql_col_i64(st, i);
  return rc;
}

static void stat_clear(void *p) {
  struct cr_stat_row *r = p;
  cr__free(r->label[0]);
  cr__free(r->label[1]);
}

static const struct row_type STAT_ROW = {sizeof(struct cr_stat_row), stat_row,
                                         stat_clear};

int cr__sq_stats(cr_store *s, int which, struct cr_stat_row **out, size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, stat_stmts[which], &st);
  return rc == 0 ? cr__sq_collect(q, st, &STAT_ROW, 16, (void **)out, n) : rc;
}

/* ---- API objects --------------------------------------------------------- */

/* Raises the objects' generation (cr_store_api_generation), in the write's
 * transaction. */
static int bump_generation(struct sq_store *q) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_API_GEN_BUMP, &st);
  return rc == 0 ? cr__sq_step_done(q, st) : rc;
}

int cr__sq_api_object_put(cr_store *s, const struct cr_api_object_rec *rec,
                          int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_API_OBJECT_PUT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, rec->kind);
  cr__sq_bind_str(st, 2, rec->id);
  cr__sq_bind_str(st, 3, rec->def_json);
  if (rec->sealed != NULL)
    cr__sql_bind_blob(st, 4, rec->sealed, rec->sealed_len);
  cr__sq_bind_str(st, 5, rec->key_id);
  cr__sq_bind_str(st, 6, rec->created_by);
  cr__sql_bind_i64(st, 7, now);
  rc = cr__sq_step_done(q, st);
  return rc == 0 ? bump_generation(q) : rc;
}

static int object_row(cr_sql_stmt *st, void *p) {
  struct cr_api_object_rec *r = p;
  char **const f[] = {&r->kind, &r->id, &r->def_json};
  int rc = cr__sq_col_strs(st, 0, f, 3);
  size_t n = 0;
  const void *b = cr__sql_col_blob(st, 3, &n);
  if (rc == 0 && b != NULL && n > 0) {
    if ((r->sealed = cr__malloc((size_t)n)) == NULL)
      return CR_ENOMEM;
    memcpy(r->sealed, b, (size_t)n);
    r->sealed_len = (size_t)n;
  }
  if (rc == 0)
    rc = cr__sq_col_str(st, 4, &r->key_id);
  if (rc == 0)
    rc = cr__sq_col_str(st, 5, &r->created_by);
  r->created_at = cr__sql_col_i64(st, 6);
  r->updated_at = cr__sql_col_i64(st, 7);
  return rc;
}

/* Frees one record's fields (cr_api_object_rec_free_list's, one row). */
static void object_clear(void *p) {
  struct cr_api_object_rec *r = p;
  cr__free(r->kind);
  cr__free(r->id);
  cr__free(r->def_json);
  if (r->sealed != NULL)
    cr__secret_wipe_free(r->sealed, r->sealed_len);
  cr__free(r->key_id);
  cr__free(r->created_by);
}

static const struct row_type OBJECT_ROW = {sizeof(struct cr_api_object_rec),
                                           object_row, object_clear};

int cr__sq_api_object_list(cr_store *s, struct cr_api_object_rec **out,
                           size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_API_OBJECT_LIST, &st);
  return rc == 0 ? cr__sq_collect(q, st, &OBJECT_ROW, 16, (void **)out, n) : rc;
}

int cr__sq_api_object_delete(cr_store *s, const char *kind, const char *id) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_API_OBJECT_DELETE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, kind);
  cr__sq_bind_str(st, 2, id);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && cr__sql_changes(q->db) == 0)
    rc = cr__sq_not_found(q, kind, id);
  return rc == 0 ? bump_generation(q) : rc;
}

/* ---- Named cursors ------------------------------------------------------- */

int cr__sq_cursor_get(cr_store *s, const char *name, int64_t *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_CURSOR_GET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, name);
  int found = 0;
  rc = cr__sq_step_int(q, st, out, &found);
  return rc == 0 && !found ? CR_ENOENT : rc;
}

int cr__sq_cursor_set(cr_store *s, const char *name, int64_t value) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_CURSOR_SET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, name);
  cr__sql_bind_i64(st, 2, value);
  return cr__sq_step_done(q, st);
}

int cr__sq_api_generation(cr_store *s, int64_t *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_API_GEN_GET, &st);
  return rc == 0 ? cr__sq_step_int(q, st, out, NULL) : rc;
}

/* ---- Idempotency keys ---------------------------------------------------- */

int cr__sq_idem_get(cr_store *s, const char *token, const char *key,
                    int64_t now, struct cr_idem_rec *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_IDEM_GET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, token);
  cr__sq_bind_str(st, 2, key);
  cr__sql_bind_i64(st, 3, now - CR_IDEM_TTL_MS);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    char **const f[] = {&out->route, &out->body_hash, &out->response_json};
    rc = cr__sq_col_strs(st, 0, f, 3);
    out->status = (int)cr__sql_col_i64(st, 3);
    out->created_at = cr__sql_col_i64(st, 4);
  } else {
    rc = src == CR_SQL_DONE ? CR_ENOENT : cr__sq_fail(q, src);
  }
  cr__sq_done(st);
  if (rc != 0)
    cr_idem_rec_clear(out);
  return rc == CR_ENOMEM ? cr__sq_nomem(q) : rc;
}

int cr__sq_idem_put(cr_store *s, const char *token, const char *key,
                    const struct cr_idem_rec *rec, int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_IDEM_PRUNE, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, now - CR_IDEM_TTL_MS);
  rc = cr__sq_step_done(q, st);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_IDEM_PUT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, token);
  cr__sq_bind_str(st, 2, key);
  cr__sq_bind_str(st, 3, rec->route);
  cr__sq_bind_str(st, 4, rec->body_hash);
  cr__sql_bind_i64(st, 5, rec->status);
  cr__sq_bind_str(st, 6, rec->response_json);
  cr__sql_bind_i64(st, 7, now);
  return cr__sq_step_done(q, st);
}
