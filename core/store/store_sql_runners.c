/* store_sqlite_runners.c: the SQLite store backend's remote runners
 * (registration, check-in, revocation, online state), the last report
 * applied per execution and the executions' log lines (store_runners.h). */
#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/alloc.h"
#include "util/error.h"

#include <string.h>

static int read_runner(cr_sql_stmt *st, void *p) {
  struct cr_runner_rec *r = p;
  char **const f[] = {&r->id,          &r->name,           &r->version,
                      &r->labels_json, &r->providers_json, &r->registration,
                      &r->token_hash};
  char **const g[] = {&r->last_claim_id, &r->last_claim_json};
  r->slots = cr__sql_col_i64(st, 7);
  r->slots_free = cr__sql_col_i64(st, 8);
  r->registered_at = cr__sql_col_i64(st, 9);
  r->last_seen_at = cr__sql_col_i64(st, 10);
  r->revoked_at = cr__sql_col_i64(st, 11);
  r->online = (int)cr__sql_col_i64(st, 12);
  if (cr__sql_ncols(st) > 15) {
    r->running = cr__sql_col_i64(st, 15);
    r->completed = cr__sql_col_i64(st, 16);
    r->failed = cr__sql_col_i64(st, 17);
  }
  int rc = cr__sq_col_strs(st, 0, f, sizeof f / sizeof f[0]);
  return rc == 0 ? cr__sq_col_strs(st, 13, g, 2) : rc;
}

static void clear_runner(void *p) { cr_runner_rec_clear(p); }

static const struct row_type RUNNER_ROW = {sizeof(struct cr_runner_rec),
                                           read_runner, clear_runner};

int cr__sq_runner_add(cr_store *s, const struct cr_runner_rec *rec,
                      int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_RUNNER_ADD, &st);
  if (rc != 0)
    return rc;
  const char *v[] = {rec->id,          rec->name,           rec->version,
                     rec->labels_json, rec->providers_json, rec->registration,
                     rec->token_hash};
  for (int i = 0; i < 7; i++)
    cr__sq_bind_str(st, i + 1, v[i]);
  cr__sql_bind_i64(st, 8, rec->slots);
  cr__sql_bind_i64(st, 9, rec->slots_free);
  cr__sql_bind_i64(st, 10, now);
  return cr__sq_step_done(q, st);
}

int cr__sq_runner_get(cr_store *s, const char *id, int with_counts,
                      struct cr_runner_rec *out) {
  struct cr_runner_rec *row = NULL;
  int rc =
      cr__sq_get_by(sqs(s), with_counts ? ST_RUNNER_GET_COUNTS : ST_RUNNER_GET,
                    id, &RUNNER_ROW, (void **)&row, "runner");
  if (rc == 0) {
    *out = *row;
    cr__free(row);
  }
  return rc;
}

int cr__sq_runner_list(cr_store *s, struct cr_runner_rec **out, size_t *n) {
  return cr__sq_list_by(sqs(s), ST_RUNNER_LIST, NULL, &RUNNER_ROW, (void **)out,
                        n);
}

/* Reads (online, revoked) of runner id; CR_ENOENT when unknown. */
static int runner_state(struct sq_store *q, const char *id, int *online,
                        int *revoked) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_RUNNER_STATE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, id);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    *online = (int)cr__sql_col_i64(st, 0);
    *revoked = (int)cr__sql_col_i64(st, 1);
  }
  rc = src == CR_SQL_ROW    ? 0
       : src == CR_SQL_DONE ? cr__sq_not_found(q, "runner", id)
                            : cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

static int checkin_update(struct sq_store *q, const struct cr_runner_rec *rec,
                          int64_t now) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_RUNNER_CHECKIN, &st);
  if (rc != 0)
    return rc;
  const char *v[] = {rec->id, rec->name, rec->version, rec->labels_json,
                     rec->providers_json};
  for (int i = 0; i < 5; i++)
    cr__sq_bind_str(st, i + 1, v[i]);
  cr__sql_bind_i64(st, 6, rec->slots);
  cr__sql_bind_i64(st, 7, rec->slots_free);
  cr__sql_bind_i64(st, 8, now);
  return cr__sq_step_done(q, st);
}

int cr__sq_runner_checkin(cr_store *s, const struct cr_runner_rec *rec,
                          int64_t now, int *was_online) {
  struct sq_store *q = sqs(s);
  int online = 0, revoked = 0;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = runner_state(q, rec->id, &online, &revoked);
  if (rc == 0 && revoked) {
    cr__store_set_error(s, "runner %s was revoked", rec->id);
    rc = CR_EPERM;
  }
  if (rc == 0)
    rc = checkin_update(q, rec, now);
  rc = cr__sq_op_end(q, rc);
  if (rc == 0 && was_online != NULL)
    *was_online = online;
  return rc;
}

int cr__sq_runner_revoke(cr_store *s, const char *id, int64_t now) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_RUNNER_REVOKE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, id);
  cr__sql_bind_i64(st, 2, now);
  rc = cr__sq_step_done(q, st);
  if (rc == 0 && cr__sql_changes(q->db) == 0)
    rc = cr__sq_not_found(q, "runner", id);
  return rc;
}

int cr__sq_runner_claim_note(cr_store *s, const char *id, const char *claim_id,
                             const char *claims_json) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_RUNNER_CLAIM_NOTE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, id);
  cr__sq_bind_str(st, 2, claim_id);
  cr__sq_bind_str(st, 3, claims_json);
  return cr__sq_step_done(q, st);
}

int cr__sq_runner_mark_offline(cr_store *s, int64_t cutoff, char ***ids,
                               size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_RUNNER_OFFLINE, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, cutoff);
  char **arr = NULL;
  size_t cnt = 0, cap = 0;
  int src;
  while (rc == 0 && (src = cr__sql_step(st)) == CR_SQL_ROW) {
    if (cnt == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      char **g = cr__realloc(arr, ncap * sizeof *g);
      if (g == NULL) {
        rc = cr__sq_nomem(q);
        break;
      }
      arr = g;
      cap = ncap;
    }
    if (cr__sq_col_str(st, 0, &arr[cnt]) != 0)
      rc = cr__sq_nomem(q);
    else
      cnt++;
  }
  if (rc == 0 && src != CR_SQL_DONE)
    rc = cr__sq_fail(q, src);
  cr__sq_done(st);
  if (rc != 0) {
    for (size_t i = 0; i < cnt; i++)
      cr__free(arr[i]);
    cr__free(arr);
    return rc;
  }
  *ids = arr;
  *n = cnt;
  return 0;
}

int cr__sq_exec_report_get(cr_store *s, int64_t id, int64_t *epoch,
                           int64_t *seq, char **result) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_REPORT_GET, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    *epoch = cr__sql_col_i64(st, 0);
    *seq = cr__sql_col_i64(st, 1);
    rc = cr__sq_col_str(st, 2, result) != 0 ? cr__sq_nomem(q) : 0;
  } else if (src == CR_SQL_DONE) {
    cr__store_set_error(s, "execution %lld not found", (long long)id);
    rc = CR_ENOENT;
  } else {
    rc = cr__sq_fail(q, src);
  }
  cr__sq_done(st);
  return rc;
}

int cr__sq_exec_report_set(cr_store *s, int64_t id, int64_t epoch, int64_t seq,
                           const char *result) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EXEC_REPORT_SET, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sql_bind_i64(st, 2, epoch);
  cr__sql_bind_i64(st, 3, seq);
  cr__sq_bind_str(st, 4, result);
  return cr__sq_step_done(q, st);
}

int cr__sq_exec_log_add(cr_store *s, int64_t id, int64_t at, int level,
                        const char *text) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EXEC_LOG_ADD, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sql_bind_i64(st, 2, at);
  cr__sql_bind_i64(st, 3, level);
  cr__sq_bind_str(st, 4, text);
  return cr__sq_step_done(q, st);
}

static int read_log(cr_sql_stmt *st, void *p) {
  struct cr_exec_log_rec *r = p;
  r->id = cr__sql_col_i64(st, 0);
  r->at = cr__sql_col_i64(st, 1);
  r->level = (int)cr__sql_col_i64(st, 2);
  return cr__sq_col_str(st, 3, &r->text);
}

static void clear_log(void *p) {
  struct cr_exec_log_rec *r = p;
  cr__free(r->text);
  memset(r, 0, sizeof *r);
}

static const struct row_type LOG_ROW = {sizeof(struct cr_exec_log_rec),
                                        read_log, clear_log};

int cr__sq_exec_log_list(cr_store *s, int64_t id, size_t limit,
                         struct cr_exec_log_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_LOG_LIST, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sql_bind_i64(st, 2, (int64_t)limit);
  return cr__sq_collect(q, st, &LOG_ROW, 16, (void **)out, n);
}

int cr__sq_exec_retry_due(cr_store *s, int64_t after, int64_t until, int *due) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_RETRY_DUE, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, after);
  cr__sql_bind_i64(st, 2, until);
  int64_t v = 0;
  rc = cr__sq_step_int(q, st, &v, NULL);
  *due = rc == 0 && v != 0;
  return rc;
}
