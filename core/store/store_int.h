/* store_int.h: the store backend interface (internal): struct cr_store_ops,
 * the table of functions a backend implements, and struct cr_store, the base
 * every backend's store object starts with.
 *
 * store.c validates arguments (NULL pointers, required fields, ranges, limit
 * defaults and clamping), clears the last error and then calls the backend,
 * so backends receive checked input: limits already resolved, times already
 * defaulted to now, status and granularity in range. Output pointers are
 * zeroed by store.c before the call. A backend fills s->last_error (with
 * cr__store_set_error) when it fails. */
#ifndef CR_STORE_INT_H
#define CR_STORE_INT_H

#include "store/store.h"
#include "store/store_batches.h"
#include "store/store_cluster.h"
#include "store/store_listen.h"
#include "store/store_runners.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CR_STORE_ERRLEN 512

struct cr_store_ops {
  const char *name; /* "sqlite" */
  void (*close)(cr_store *s);
  int (*schema_version)(cr_store *s, int *out);

  int (*begin)(cr_store *s);
  /* cr_store_begin_rows (store.h); NULL: the same as begin. */
  int (*begin_rows)(cr_store *s);
  int (*commit)(cr_store *s);
  int (*rollback)(cr_store *s);
  /* cr_store_savepoint / cr_store_savepoint_end (store.h). */
  int (*savepoint)(cr_store *s);
  int (*savepoint_end)(cr_store *s, int rc);

  int (*auth_upsert)(cr_store *s, const struct cr_auth_rec *rec, int64_t now,
                     int *changed);
  int (*auth_get)(cr_store *s, const char *id, struct cr_auth_rec **out);
  int (*auth_list)(cr_store *s, struct cr_auth_rec **out, size_t *n);
  int (*auth_delete)(cr_store *s, const char *id, int64_t now);
  int (*auth_health_record)(cr_store *s, const char *auth_id, int64_t at_ms,
                            int status, const char *reason);
  int (*auth_health_latest)(cr_store *s, const char *auth_id,
                            struct cr_health_rec *out);
  int (*auth_health_history)(cr_store *s, const char *auth_id, size_t limit,
                             struct cr_health_rec **out, size_t *n);

  int (*work_upsert)(cr_store *s, const struct cr_work_rec *rec, int64_t now,
                     int *changed);
  int (*work_get)(cr_store *s, const char *id, struct cr_work_rec **out);
  int (*work_list)(cr_store *s, struct cr_work_rec **out, size_t *n);
  int (*work_delete)(cr_store *s, const char *id, int64_t now);
  int (*work_set_next_run)(cr_store *s, const char *id, int64_t at_ms);

  int (*event_append)(cr_store *s, const struct cr_event_rec *in, int64_t at,
                      int64_t *id_out);
  int (*event_query)(cr_store *s, const struct cr_event_filter *f,
                     struct cr_event_rec **out, size_t *n);
  int (*event_prune)(cr_store *s, int64_t before_ms, int64_t *deleted);

  /* bucket_start is the hour-aligned start of the bucket. */
  int (*metrics_add)(cr_store *s, const char *auth_id, int64_t bucket_start,
                     int64_t requests, int64_t errors);
  /* to_ms is INT64_MAX when unbounded. */
  int (*metrics_query)(cr_store *s, const char *auth_id, int granularity,
                       int64_t from_ms, int64_t to_ms,
                       struct cr_metric_point **out, size_t *n);

  int (*sub_upsert)(cr_store *s, const struct cr_sub_rec *rec, int64_t now,
                    int *changed);
  int (*sub_get)(cr_store *s, const char *id, struct cr_sub_rec **out);
  int (*sub_list)(cr_store *s, struct cr_sub_rec **out, size_t *n);
  int (*sub_delete)(cr_store *s, const char *id);

  int (*counts)(cr_store *s, struct cr_store_counts *out);

  /* Executions: names and classes already validated; now resolved. */
  int (*exec_create)(cr_store *s, const char *work_id, int64_t now,
                     int64_t *id_out);
  int (*exec_get)(cr_store *s, int64_t id, struct cr_exec_rec *out);
  /* labels_json / exclude_json: cr_store_exec_claim_routed (NULL = none) */
  int (*exec_claim)(cr_store *s, const char *runner_id,
                    const char *const *providers, size_t nproviders,
                    const char *labels_json, const char *exclude_json,
                    size_t slots, int64_t now, int64_t lease_ms,
                    struct cr_exec_claim **out, size_t *n);
  int (*exec_claimable)(cr_store *s, const char *const *providers,
                        size_t nproviders, const char *labels_json,
                        const char *exclude_json, int64_t now, int *any);
  int (*exec_claim_one)(cr_store *s, int64_t id, const char *runner_id,
                        int64_t now, int64_t lease_ms,
                        struct cr_exec_claim *out);
  int (*exec_transition)(cr_store *s, int64_t id, int64_t epoch,
                         const char *to_state, const char *reason,
                         const char *error_class, const char *error,
                         int64_t now);
  int (*exec_renew)(cr_store *s, int64_t id, int64_t epoch, int64_t now,
                    int64_t lease_ms);
  int (*exec_expire)(cr_store *s, int64_t now, size_t *n_expired);
  int (*exec_list)(cr_store *s, const char *work_id, size_t limit,
                   struct cr_exec_rec **out, size_t *n);
  int (*exec_transitions)(cr_store *s, int64_t id,
                          struct cr_exec_transition_rec **out, size_t *n);
  /* not_before_ms 0 = none. reason NULL: the backend's default. */
  int (*exec_retry)(cr_store *s, int64_t id, int64_t epoch,
                    int64_t not_before_ms, const char *reason,
                    const char *error_class, const char *error, int64_t now);
  int (*exec_release_runner)(cr_store *s, const char *runner_id,
                             const char *reason, int64_t now, size_t *n);
  int (*exec_work_open)(cr_store *s, const char *work_id, int *open);

  int (*work_mark_started)(cr_store *s, const char *id, int64_t now,
                           int *first);

  /* Sync state: execution_id 0 = none; limit resolved. */
  int (*sync_state_commit)(cr_store *s, const char *work_id,
                           const char *state_json, int64_t records,
                           int64_t execution_id, const char *note, int64_t now,
                           int64_t *version_out);
  int (*sync_state_get)(cr_store *s, const char *work_id, int64_t version,
                        struct cr_sync_state_rec *out); /* version 0: latest */
  int (*sync_state_history)(cr_store *s, const char *work_id, size_t limit,
                            struct cr_sync_state_rec **out, size_t *n);
  int (*sync_state_exec_records)(cr_store *s, int64_t exec_id,
                                 int64_t *records);

  /* Rotated credentials: credentials_json already checked non-NULL. */
  int (*auth_credentials_set)(cr_store *s, const char *auth_id,
                              const char *config_hash,
                              const char *credentials_json, int64_t now);
  int (*auth_credentials_get)(cr_store *s, const char *auth_id,
                              const char *config_hash, char **json_out);

  /* Webhook outbox: status validated, limits resolved, times defaulted. */
  /* cursor >= 0 checked */
  int (*sub_set_cursor)(cr_store *s, const char *id, int64_t cursor,
                        int forward_only);
  int (*sub_disable)(cr_store *s, const char *id, const char *reason,
                     int64_t now);
  int (*sub_stats)(cr_store *s, const char *sub_id, int64_t now,
                   struct cr_sub_stats *out);
  /* limit resolved; sub_id checked non-NULL. */
  int (*sub_attempts)(cr_store *s, const char *sub_id, int64_t before_id,
                      size_t limit, struct cr_delivery_attempt_rec **out,
                      size_t *n);
  int (*event_last_id)(cr_store *s, int64_t *id);
  int (*stats)(cr_store *s, int which, struct cr_stat_row **out, size_t *n);
  /* API objects and idempotency keys: arguments checked, now given. */
  int (*api_object_put)(cr_store *s, const struct cr_api_object_rec *rec,
                        int64_t now);
  int (*api_object_list)(cr_store *s, struct cr_api_object_rec **out,
                         size_t *n);
  int (*api_object_delete)(cr_store *s, const char *kind, const char *id);
  int (*api_generation)(cr_store *s, int64_t *out);
  int (*cursor_get)(cr_store *s, const char *name, int64_t *out);
  int (*cursor_set)(cr_store *s, const char *name, int64_t value);
  int (*idem_get)(cr_store *s, const char *token, const char *key, int64_t now,
                  struct cr_idem_rec *out);
  int (*idem_put)(cr_store *s, const char *token, const char *key,
                  const struct cr_idem_rec *rec, int64_t now);
  int (*outbox_enqueue)(cr_store *s, size_t max_events, int64_t now,
                        size_t *enqueued);
  /* pos NULL (n_pos 0): every subscription from its first row. */
  int (*outbox_due)(cr_store *s, int64_t now, const struct cr_outbox_pos *pos,
                    size_t n_pos, size_t limit, struct cr_outbox_rec **out,
                    size_t *n);
  int (*outbox_next_due)(cr_store *s, int64_t *at);
  int (*outbox_record_many)(cr_store *s, const struct cr_outbox_attempt *a,
                            size_t n, int64_t now, size_t *recorded);
  int (*outbox_record)(cr_store *s, const char *sub_id, int64_t event_id,
                       const char *status, int http_status, int64_t latency_ms,
                       const char *error, int64_t next_attempt_at, int64_t now);
  int (*outbox_replay)(cr_store *s, const char *sub_id, int64_t since_ms,
                       int64_t now, size_t *n);

  /* cr_store_read_begin / cr_store_read_end (store.h). */
  int (*read_begin)(cr_store *s);
  int (*read_end)(cr_store *s);
  int (*read_keep)(cr_store *s, int64_t max_age_ms); /* NULL: read_end */

  /* Batched webhook delivery (store_batches.h); now resolved. */
  int (*batch_get)(cr_store *s, const char *sub_id, struct cr_batch_rec *out);
  int (*batch_open)(cr_store *s, const char *sub_id, int64_t first,
                    int64_t last, int64_t count, int64_t now);
  int (*batch_record)(cr_store *s, const char *sub_id,
                      const struct cr_batch_result *r, int64_t now);
  int (*batch_note_dead)(cr_store *s, const char *sub_id, int64_t event_id,
                         const char *error, int64_t now);

  /* Cluster (store_cluster.h); now and ttl resolved. */
  int (*instance_beat)(cr_store *s, const char *id, const char *info_json,
                       int64_t started_at, int64_t now);
  int (*instance_list)(cr_store *s, struct cr_instance_rec **out, size_t *n);
  int (*duty_acquire)(cr_store *s, const char *duty, const char *holder,
                      int64_t ttl_ms, int64_t now, int *held,
                      struct cr_duty_rec *prev);
  int (*duty_release)(cr_store *s, const char *duty, const char *holder,
                      int64_t now);
  int (*duty_list)(cr_store *s, struct cr_duty_rec **out, size_t *n);

  /* Remote runners (store_runners.h). */
  int (*runner_add)(cr_store *s, const struct cr_runner_rec *rec, int64_t now);
  int (*runner_get)(cr_store *s, const char *id, int with_counts,
                    struct cr_runner_rec *out);
  int (*runner_list)(cr_store *s, struct cr_runner_rec **out, size_t *n);
  int (*runner_checkin)(cr_store *s, const struct cr_runner_rec *rec,
                        int64_t now, int *was_online);
  int (*runner_revoke)(cr_store *s, const char *id, int64_t now);
  int (*runner_claim_note)(cr_store *s, const char *id, const char *claim_id,
                           const char *claims_json);
  int (*runner_mark_offline)(cr_store *s, int64_t cutoff, char ***ids,
                             size_t *n);
  int (*exec_report_get)(cr_store *s, int64_t id, int64_t *epoch, int64_t *seq,
                         char **result);
  int (*exec_report_set)(cr_store *s, int64_t id, int64_t epoch, int64_t seq,
                         const char *result);
  int (*exec_log_add)(cr_store *s, int64_t id, int64_t at, int level,
                      const char *text);
  int (*exec_log_list)(cr_store *s, int64_t id, size_t limit,
                       struct cr_exec_log_rec **out, size_t *n);
  int (*exec_retry_due)(cr_store *s, int64_t after, int64_t until, int *due);

  /* Tells other processes' listeners (store_listen.h) about news (enum
   * cr_store_news) once the current transaction commits, or at once. A
   * no-op where the database has no channel. */
  int (*notify)(cr_store *s, int news);
};

/* The base of every backend's store object (its first member). */
struct cr_store {
  const struct cr_store_ops *ops;
  char last_error[CR_STORE_ERRLEN];
  /* cr_store_savepoint state, kept by the backend: one is open, and the
   * transaction depth and doomed flag when it was opened. */
  int sp_open, sp_depth, sp_doomed;
  /* cr_store_begin levels open (store.c), and a claimable execution waits
   * for the outermost commit to be announced (claim_signal.h). */
  int txn_depth, signal_pending;
  /* news already sent (notify) in the transaction open now */
  int announced;
  /* set by the backend at open: see cr_store_shared */
  int shared;
};

/* Formats the message cr_store_last_error() returns (printf-style,
 * truncated to CR_STORE_ERRLEN - 1 bytes). */
void cr__store_set_error(cr_store *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats a message into a caller's errbuf (errlen bytes; NULL or 0 is a
 * no-op). */
void cr__store_errbuf(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hour bucket containing at_ms (>= 0). */
#define CR_STORE_HOUR_MS INT64_C(3600000)

#endif
