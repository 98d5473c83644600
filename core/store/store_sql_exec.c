/* store_sqlite_exec.c: the SQLite store backend's executions (create,
 * claim, transition, renew, expire, retry, release, list, transitions, work
 * open and first start) and sync state (commit, get, history, records per
 * execution). Shared helpers and statements: store_sqlite_int.h. */
#include "exec/execution.h"
#include "store/store_int.h"
#include "store/store_sql_int.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/jsonbuf.h"

#include <stdio.h>
#include <string.h>

/* ---- Executions ----------------------------------------------------------
 * State changes run in op_begin/op_end with their transition row, so both
 * are written or neither. Claims take the write lock (BEGIN IMMEDIATE, or
 * the caller's transaction, itself BEGIN IMMEDIATE) before reading the
 * candidates: two connections can never both see an execution as created. */

static int read_exec(cr_sql_stmt *st, void *p) {
  struct cr_exec_rec *r = p;
  r->id = cr__sql_col_i64(st, 0);
  r->attempt = (int)cr__sql_col_i64(st, 3);
  r->lease_epoch = cr__sql_col_i64(st, 5);
  r->lease_expires_at = cr__sql_col_i64(st, 6);
  r->created_at = cr__sql_col_i64(st, 9);
  r->updated_at = cr__sql_col_i64(st, 10);
  r->not_before = cr__sql_col_i64(st, 11);
  if (cr__sq_col_str(st, 1, &r->work_id) != 0 ||
      cr__sq_col_str(st, 2, &r->state) != 0 ||
      cr__sq_col_str(st, 4, &r->runner_id) != 0 ||
      cr__sq_col_str(st, 7, &r->error_class) != 0)
    return CR_ENOMEM;
  return cr__sq_col_str(st, 8, &r->error);
}

static int read_transition(cr_sql_stmt *st, void *p) {
  struct cr_exec_transition_rec *r = p;
  char **const f[] = {&r->from_state, &r->to_state, &r->reason};
  r->id = cr__sql_col_i64(st, 0);
  r->at = cr__sql_col_i64(st, 1);
  return cr__sq_col_strs(st, 2, f, sizeof f / sizeof f[0]);
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
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_LOG, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sq_bind_str(st, 2, from);
  cr__sq_bind_str(st, 3, to);
  cr__sql_bind_i64(st, 4, at);
  cr__sq_bind_str(st, 5, reason);
  return cr__sq_step_done(q, st);
}

static int exec_not_found(struct sq_store *q, int64_t id) {
  cr__store_set_error(&q->base, "execution %lld not found", (long long)id);
  return CR_ENOENT;
}

int cr__sq_exec_create(cr_store *s, const char *work_id, int64_t now,
                       int64_t *id_out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  int64_t id = 0;
  rc = cr__sq_prep(q, ST_EXEC_CREATE, &st);
  if (rc == 0) {
    cr__sq_bind_str(st, 1, work_id);
    cr__sql_bind_i64(st, 2, now);
    int found = 0;
    rc = cr__sq_step_int(q, st, &id, &found);
    if (rc == 0 && !found)
      rc = cr__sq_not_found(q, "work", work_id);
  }
  if (rc == 0)
    rc = exec_log(q, id, NULL, "created", now, "created");
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *id_out = id;
  return rc;
}

int cr__sq_exec_get(cr_store *s, int64_t id, struct cr_exec_rec *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_GET, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  struct cr_exec_rec *rows = NULL;
  size_t n = 0;
  rc = cr__sq_collect(q, st, &EXEC_ROW, 1, (void **)&rows, &n);
  if (rc != 0)
    return rc;
  if (n == 0)
    return exec_not_found(q, id);
  *out = rows[0];
  cr__free(rows);
  return 0;
}

/* The providers as a JSON array of strings (for json_each), in *out (freed
 * with cr__free). CR_EINVAL: a name is not UTF-8. */
static int providers_json(const char *const *p, size_t n, char **out) {
  struct cr__jsonbuf b = {0};
  cr__jb_raw(&b, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      cr__jb_raw(&b, ",", 1);
    cr__jb_str(&b, p[i]);
  }
  cr__jb_raw(&b, "]", 1);
  *out = cr__jb_take(&b);
  return *out != NULL ? 0 : b.err == CR_EINVAL ? CR_EINVAL : CR_ENOMEM;
}

/* providers_json, its errors recorded on q. */
static int claim_providers(struct sq_store *q, const char *const *p, size_t n,
                           char **out) {
  int rc = providers_json(p, n, out);
  if (rc == CR_ENOMEM)
    return cr__sq_nomem(q);
  if (rc != 0)
    cr__store_set_error(&q->base, "a provider name is not UTF-8");
  return rc;
}

/* The oldest claimable execution (not_before reached) into *id; CR_ENOENT when
 * none. probe: without locking it (PostgreSQL). */
static int claim_candidate(struct sq_store *q, const char *provs,
                           const char *const route[2], int64_t now, int probe,
                           int64_t *id) {
  cr_sql_stmt *st = NULL;
  /* The local runner (no labels, nothing left to it): labelled works are
   * not its own, and no per-row label test is paid. */
  int routed = route[0] != NULL || route[1] != NULL;
  enum stmt_id sid =
      probe ? (routed ? ST_EXEC_PROBE_ROUTED : ST_EXEC_PROBE)
            : (routed ? ST_EXEC_CANDIDATE_ROUTED : ST_EXEC_CANDIDATE);
  int rc = cr__sq_prep(q, sid, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, provs);
  cr__sql_bind_i64(st, 2, now);
  if (routed) {
    cr__sq_bind_str(st, 3, route[0]);
    cr__sq_bind_str(st, 4, route[1]);
  }
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW)
    *id = cr__sql_col_i64(st, 0);
  rc = src == CR_SQL_ROW    ? 0
       : src == CR_SQL_DONE ? CR_ENOENT
                            : cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

/* Moves execution id to pending for runner, filling *c. */
static int claim_take(struct sq_store *q, int64_t id, const char *runner,
                      int64_t now, int64_t lease_ms, struct cr_exec_claim *c) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_TAKE, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sq_bind_str(st, 2, runner);
  cr__sql_bind_i64(st, 3, now + lease_ms);
  cr__sql_bind_i64(st, 4, now);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    c->execution_id = id;
    c->attempt = (int)cr__sql_col_i64(st, 1);
    c->epoch = cr__sql_col_i64(st, 2);
    c->lease_expires_at = now + lease_ms;
    rc = cr__sq_col_str(st, 0, &c->work_id) != 0 ? cr__sq_nomem(q) : 0;
    if (rc == 0)
      src = cr__sql_step(st);
  }
  if (rc == 0 && c->work_id == NULL) {
    cr__store_set_error(&q->base, "execution %lld changed under the lock",
                        (long long)id);
    rc = CR_ESTORE;
  } else if (rc == 0 && src != CR_SQL_DONE) {
    rc = src == CR_SQL_ROW ? CR_ESTORE : cr__sq_fail(q, src);
  }
  cr__sq_done(st);
  return rc;
}

/* PostgreSQL: keeps the candidate query on its index order for the rest of
 * the transaction (ST_PLAN_NO_BITMAP in store_sql_pg.c says why). */
static int claim_plan(struct sq_store *q) {
  return cr__sq_plan(q, ST_PLAN_NO_BITMAP);
}

/* The claim loop inside the operation's transaction: one candidate at a
 * time, so a work claimed in this round is excluded from the next. */
static int claim_rounds(struct sq_store *q, const char *runner,
                        const char *provs, const char *const route[2],
                        size_t slots, int64_t now, int64_t lease_ms,
                        struct cr_exec_claim **arr, size_t *cnt) {
  size_t cap = 0;
  size_t rlen = strlen(runner) + sizeof "claimed by runner ";
  char *reason = cr__malloc(rlen);
  if (reason == NULL)
    return cr__sq_nomem(q);
  snprintf(reason, rlen, "claimed by runner %s", runner);
  int rc = claim_plan(q);
  while (rc == 0 && *cnt < slots) {
    int64_t id = 0;
    rc = claim_candidate(q, provs, route, now, 0, &id);
    if (rc == CR_ENOENT) {
      rc = 0;
      break;
    }
    if (rc == 0 && *cnt == cap) {
      size_t ncap = cap == 0 ? (slots < 8 ? slots : 8) : cap * 2;
      struct cr_exec_claim *grown = cr__realloc(*arr, ncap * sizeof **arr);
      if (grown == NULL)
        rc = cr__sq_nomem(q);
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
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_STATE, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW) {
    const char *t = (const char *)cr__sql_col_text(st, 0);
    snprintf(buf, len, "%s", t != NULL ? t : "");
    *epoch = cr__sql_col_i64(st, 1);
  }
  rc = src == CR_SQL_ROW    ? 0
       : src == CR_SQL_DONE ? exec_not_found(q, id)
                            : cr__sq_fail(q, src);
  cr__sq_done(st);
  return rc;
}

/* 1 in *busy when a sibling of execution id (same work) holds a lease. */
static int work_leased(struct sq_store *q, int64_t id, int *busy) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_WORK_LEASED, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  int src = cr__sql_step(st);
  if (src == CR_SQL_ROW)
    *busy = (int)cr__sql_col_i64(st, 0);
  rc = src == CR_SQL_ROW ? 0 : cr__sq_fail(q, src);
  cr__sq_done(st);
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

int cr__sq_exec_claim_one(cr_store *s, int64_t id, const char *runner_id,
                          int64_t now, int64_t lease_ms,
                          struct cr_exec_claim *out) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = claim_one_locked(q, id, runner_id, now, lease_ms, out);
  rc = cr__sq_op_end(q, rc);
  if (rc != 0) {
    cr__free(out->work_id);
    memset(out, 0, sizeof *out);
  }
  return rc;
}

int cr__sq_exec_claim(cr_store *s, const char *runner_id,
                      const char *const *providers, size_t nproviders,
                      const char *labels_json, const char *exclude_json,
                      size_t slots, int64_t now, int64_t lease_ms,
                      struct cr_exec_claim **out, size_t *n) {
  struct sq_store *q = sqs(s);
  char *provs = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0 && (rc = claim_providers(q, providers, nproviders, &provs)) != 0)
    return rc;
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0) {
    cr__free(provs);
    return rc;
  }
  struct cr_exec_claim *arr = NULL;
  size_t cnt = 0;
  const char *const route[2] = {labels_json, exclude_json};
  rc = claim_rounds(q, runner_id, provs, route, slots, now, lease_ms, &arr,
                    &cnt);
  rc = cr__sq_op_end(q, rc);
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

int cr__sq_exec_claimable(cr_store *s, const char *const *providers,
                          size_t nproviders, const char *labels_json,
                          const char *exclude_json, int64_t now, int *any) {
  struct sq_store *q = sqs(s);
  char *provs = NULL;
  int rc = claim_providers(q, providers, nproviders, &provs);
  if (rc != 0)
    return rc;
  const char *const route[2] = {labels_json, exclude_json};
  int64_t id = 0;
  rc = claim_candidate(q, provs, route, now, 1, &id);
  cr__free(provs);
  *any = rc == 0;
  return rc == CR_ENOENT ? 0 : rc;
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
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_SET_STATE, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sq_bind_str(st, 2, to);
  cr__sq_bind_str(st, 3, error_class);
  cr__sq_bind_str(st, 4, error);
  cr__sql_bind_i64(st, 5, cr_exec_state_final(cr_exec_state_from_name(to)));
  cr__sql_bind_i64(st, 6, now);
  return cr__sq_step_done(q, st);
}

int cr__sq_exec_transition(cr_store *s, int64_t id, int64_t epoch,
                           const char *to_state, const char *reason,
                           const char *error_class, const char *error,
                           int64_t now) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
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
  return cr__sq_op_end(q, rc);
}

int cr__sq_exec_renew(cr_store *s, int64_t id, int64_t epoch, int64_t now,
                      int64_t lease_ms) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EXEC_RENEW, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sql_bind_i64(st, 2, epoch);
  cr__sql_bind_i64(st, 3, now + lease_ms);
  cr__sql_bind_i64(st, 4, now);
  rc = cr__sq_step_done(q, st);
  if (rc != 0 || cr__sql_changes(q->db) > 0)
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

int cr__sq_exec_expire(cr_store *s, int64_t now, size_t *n_expired) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = cr__sq_prep(q, ST_EXEC_EXPIRE_LOG, &st);
  if (rc == 0) {
    cr__sql_bind_i64(st, 1, now);
    rc = cr__sq_step_done(q, st);
  }
  if (rc == 0)
    rc = cr__sq_prep(q, ST_EXEC_EXPIRE, &st);
  int64_t changed = 0;
  if (rc == 0) {
    cr__sql_bind_i64(st, 1, now);
    rc = cr__sq_step_done(q, st);
    changed = cr__sql_changes(q->db);
  }
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *n_expired = (size_t)changed;
  return rc;
}

int cr__sq_exec_list(cr_store *s, const char *work_id, size_t limit,
                     struct cr_exec_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(
      q, work_id != NULL ? ST_EXEC_LIST_WORK : ST_EXEC_LIST_ALL, &st);
  if (rc != 0)
    return rc;
  int i = 1;
  if (work_id != NULL)
    cr__sq_bind_str(st, i++, work_id);
  cr__sql_bind_i64(st, i, (int64_t)limit);
  return cr__sq_collect(q, st, &EXEC_ROW, limit < 16 ? limit : 16, (void **)out,
                        n);
}

int cr__sq_exec_transitions(cr_store *s, int64_t id,
                            struct cr_exec_transition_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_TRANSITIONS, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  return cr__sq_collect(q, st, &TRANSITION_ROW, 8, (void **)out, n);
}

/* Back to created as a new attempt (fenced like cr__sq_exec_transition). */
static int retry_write(struct sq_store *q, int64_t id, int64_t not_before,
                       const char *error_class, const char *error,
                       int64_t now) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_RETRY, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, id);
  cr__sq_bind_time(st, 2, not_before);
  cr__sq_bind_str(st, 3, error_class);
  cr__sq_bind_str(st, 4, error);
  cr__sql_bind_i64(st, 5, now);
  return cr__sq_step_done(q, st);
}

int cr__sq_exec_retry(cr_store *s, int64_t id, int64_t epoch,
                      int64_t not_before_ms, const char *reason,
                      const char *error_class, const char *error, int64_t now) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
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
  return cr__sq_op_end(q, rc);
}

/* Binds ?1 runner, ?2 now (and ?3 reason when given) and runs st. */
static int release_step(struct sq_store *q, enum stmt_id id, const char *runner,
                        int64_t now, int has_reason, const char *reason) {
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, id, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, runner);
  cr__sql_bind_i64(st, 2, now);
  if (has_reason)
    cr__sq_bind_str(st, 3, reason);
  return cr__sq_step_done(q, st);
}

int cr__sq_exec_release_runner(cr_store *s, const char *runner_id,
                               const char *reason, int64_t now, size_t *n) {
  struct sq_store *q = sqs(s);
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_op_begin(q);
  if (rc != 0)
    return rc;
  rc = release_step(q, ST_EXEC_RELEASE_LOG, runner_id, now, 1, reason);
  int64_t changed = 0;
  if (rc == 0)
    rc = release_step(q, ST_EXEC_RELEASE, runner_id, now, 0, NULL);
  if (rc == 0)
    changed = cr__sql_changes(q->db);
  rc = cr__sq_op_end(q, rc);
  if (rc == 0)
    *n = (size_t)changed;
  return rc;
}

int cr__sq_exec_work_open(cr_store *s, const char *work_id, int *open) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_EXEC_WORK_OPEN, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, work_id);
  int64_t v = 0;
  rc = cr__sq_step_int(q, st, &v, NULL);
  if (rc == 0)
    *open = v != 0;
  return rc;
}

int cr__sq_work_mark_started(cr_store *s, const char *id, int64_t now,
                             int *first) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_WORK_FIRST_RUN, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, id);
  cr__sql_bind_i64(st, 2, now);
  rc = cr__sq_step_done(q, st);
  if (rc != 0)
    return rc;
  if (cr__sql_changes(q->db) > 0) {
    *first = 1;
    return 0;
  }
  rc = cr__sq_prep(q, ST_WORK_LIVE, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, id);
  int64_t v = 0;
  int found = 0;
  rc = cr__sq_step_int(q, st, &v, &found);
  if (rc == 0 && !found)
    return cr__sq_not_found(q, "work", id);
  return rc;
}

/* ---- Sync state ---------------------------------------------------------- */

static int read_sync(cr_sql_stmt *st, void *p) {
  struct cr_sync_state_rec *r = p;
  r->version = cr__sql_col_i64(st, 1);
  r->records = cr__sql_col_i64(st, 3);
  r->committed_at = cr__sql_col_i64(st, 4);
  r->execution_id = cr__sql_col_i64(st, 5);
  if (cr__sq_col_str(st, 0, &r->work_id) != 0 ||
      cr__sq_col_str(st, 2, &r->state_json) != 0)
    return CR_ENOMEM;
  return cr__sq_col_str(st, 6, &r->note);
}

static void clear_sync(void *p) { cr_sync_state_rec_clear(p); }

static const struct row_type SYNC_ROW = {sizeof(struct cr_sync_state_rec),
                                         read_sync, clear_sync};

int cr__sq_sync_state_commit(cr_store *s, const char *work_id,
                             const char *state_json, int64_t records,
                             int64_t execution_id, const char *note,
                             int64_t now, int64_t *version_out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_doomed(q);
  if (rc == 0)
    rc = cr__sq_prep(q, ST_SYNC_COMMIT, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, work_id);
  cr__sq_bind_str(st, 2, state_json);
  cr__sql_bind_i64(st, 3, records);
  cr__sql_bind_i64(st, 4, now);
  cr__sq_bind_time(st, 5, execution_id);
  cr__sq_bind_str(st, 6, note);
  int src = cr__sql_step(st);
  int64_t version = 0;
  if (src == CR_SQL_ROW) {
    version = cr__sql_col_i64(st, 0);
    src = cr__sql_step(st);
  }
  if (src != CR_SQL_DONE)
    rc = cr__sq_fail(q, src);
  else if (version == 0) {
    cr__store_set_error(s, "sync state of unknown work '%s'", work_id);
    rc = CR_EINVAL;
  }
  cr__sq_done(st);
  if (rc == 0)
    *version_out = version;
  return rc;
}

int cr__sq_sync_state_get(cr_store *s, const char *work_id, int64_t version,
                          struct cr_sync_state_rec *out) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, version == 0 ? ST_SYNC_LATEST : ST_SYNC_GET, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, work_id);
  cr__sql_bind_i64(st, 2, version == 0 ? 1 : version);
  struct cr_sync_state_rec *rows = NULL;
  size_t n = 0;
  rc = cr__sq_collect(q, st, &SYNC_ROW, 1, (void **)&rows, &n);
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

int cr__sq_sync_state_history(cr_store *s, const char *work_id, size_t limit,
                              struct cr_sync_state_rec **out, size_t *n) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_SYNC_LATEST, &st);
  if (rc != 0)
    return rc;
  cr__sq_bind_str(st, 1, work_id);
  cr__sql_bind_i64(st, 2, (int64_t)limit);
  return cr__sq_collect(q, st, &SYNC_ROW, limit < 16 ? limit : 16, (void **)out,
                        n);
}

int cr__sq_sync_state_exec_records(cr_store *s, int64_t exec_id,
                                   int64_t *records) {
  struct sq_store *q = sqs(s);
  cr_sql_stmt *st = NULL;
  int rc = cr__sq_prep(q, ST_SYNC_EXEC_RECORDS, &st);
  if (rc != 0)
    return rc;
  cr__sql_bind_i64(st, 1, exec_id);
  return cr__sq_step_int(q, st, records, NULL);
}
