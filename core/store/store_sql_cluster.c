/* store_sqlite_cluster.c: the SQLite store backend's cluster records
 * (store_cluster.h): instance heartbeats and duty leases. One SQLite file
 * may be shared by several `connrun serve` processes on one machine; the
 * leases are what PostgreSQL's several machines use too. */
#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/alloc.h"
#include "util/error.h"

#include <string.h>

#define FORGET_AFTER_MS (INT64_C(86400) * 1000)

static int read_instance(cr_sql_stmt *st, void *p) {
  struct cr_instance_rec *r = p;
  char **const f[] = {&r->id, &r->info_json};
  r->started_at = cr__sql_col_i64(st, 2);
  r->last_seen_at = cr__sql_col_i64(st, 3);
  return cr__sq_col_strs(st, 0, f, 2);
}

static void clear_instance(void *p) {
  struct cr_instance_rec *r = p;
  cr__free(r->id);
  cr__free(r->info_json);
  memset(r, 0, sizeof *r);
}

static const struct row_type INSTANCE_ROW = {sizeof(struct cr_instance_rec),
                                             read_instance, clear_instance};

static int read_duty(cr_sql_stmt *st, void *p) {
  struct cr_duty_rec *r = p;
  char **const f[] = {&r->name, &r->holder};
  r->since = cr__sql_col_i64(st, 2);
  r->expires_at = cr__sql_col_i64(st, 3);
  r->epoch = cr__sql_col_i64(st, 4);
  return cr__sq_col_strs(st, 0, f, 2);
}

static void clear_duty(void *p) { cr_duty_rec_clear(p); }

static const struct row_type DUTY_ROW = {sizeof(struct cr_duty_rec), read_duty,
                                         clear_duty};

int cr__sq_instance_beat(cr_store *s, const char *id, const char *info_json,
                         int64_t started_at, int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = cr__sq_prep(q, ST_INSTANCE_BEAT, &st);
  if (rc == 0) {
    cr__sq_bind_str(st, 1, id);
    cr__sq_bind_str(st, 2, info_json);
    cr__sql_bind_i64(st, 3, started_at);
    cr__sql_bind_i64(st, 4, now);
    rc = cr__sq_step_done(q, st);
  }
  if (rc == 0 && (rc = cr__sq_prep(q, ST_INSTANCE_FORGET, &st)) == 0) {
    cr__sql_bind_i64(st, 1, now - FORGET_AFTER_MS);
    rc = cr__sq_step_done(q, st);
  }
  return cr__sq_op_end(q, rc);
}

int cr__sq_instance_list(cr_store *s, struct cr_instance_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_INSTANCE_LIST, NULL, &INSTANCE_ROW,
                        (void **)out, n);
}

/* The duty as it is, into *prev (left empty when there is none). */
static int duty_get(struct sq_store *q, const char *duty,
                    struct cr_duty_rec *prev) {
  struct cr_duty_rec *row = NULL;
  int rc =
      cr__sq_get_by(q, ST_DUTY_GET, duty, &DUTY_ROW, (void **)&row, "duty");
  if (rc == CR_ENOENT)
    return 0;
  if (rc == 0) {
    *prev = *row;
    cr__free(row);
  }
  return rc;
}

int cr__sq_duty_acquire(cr_store *s, const char *duty, const char *holder,
                        int64_t ttl_ms, int64_t now, int *held,
                        struct cr_duty_rec *prev) {
  struct sq_store *q = sqs(s);
  struct cr_duty_rec before = {0};
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = duty_get(q, duty, &before);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_DUTY_ACQUIRE, &st);
  if (rc == 0) {
    cr__sq_bind_str(st, 1, duty);
    cr__sq_bind_str(st, 2, holder);
    cr__sql_bind_i64(st, 3, now);
    cr__sql_bind_i64(st, 4, ttl_ms);
    rc = cr__sq_step_done(q, st);
  }
  if (rc == 0)
    *held = cr__sql_changes(q->db) > 0;
  rc = cr__sq_op_end(q, rc);
  if (rc == 0 && prev != NULL)
    *prev = before;
  else
    cr_duty_rec_clear(&before);
  return rc;
}

int cr__sq_duty_release(cr_store *s, const char *duty, const char *holder,
                        int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_DUTY_RELEASE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, duty);
  cr__sq_bind_str(st, 2, holder);
  cr__sql_bind_i64(st, 3, now);
  return cr__sq_step_done(q, st);
}

int cr__sq_duty_list(cr_store *s, struct cr_duty_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_DUTY_LIST, NULL, &DUTY_ROW, (void **)out, n);
}
