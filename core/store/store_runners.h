/* store_runners.h: what the store keeps about remote runners (registration,
 * check-ins, online state, revocation), the reports they make on their
 * executions (the last applied sequence number per execution, so a retried
 * report is applied once) and the executions' log lines.
 *
 * Part of the store interface (store.h): the same conventions hold. Times
 * are ms since the Unix epoch; strings in records are cr__malloc'ed and
 * owned by the record (cr_runner_rec_clear / cr_runner_rec_free_list). */
#ifndef CR_STORE_RUNNERS_H
#define CR_STORE_RUNNERS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* One runner. labels_json and providers_json are JSON arrays (providers:
 * [{"name", "version"}]). token_hash is the hex SHA-256 of its token (the
 * token itself is never stored). revoked_at 0: not revoked. online: 1 from a
 * check-in until cr_store_runner_mark_offline. */
struct cr_runner_rec {
  char *id, *name, *version, *labels_json, *providers_json, *registration,
      *token_hash;
  char *last_claim_id, *last_claim_json; /* cr_store_runner_claim_note */
  int64_t slots, slots_free, registered_at, last_seen_at, revoked_at;
  int online;
  /* read only: its executions pending or executing, completed, failed */
  int64_t running, completed, failed;
};

/* A line an execution logged (a remote runner's sync log). */
struct cr_exec_log_rec {
  int64_t id, at;
  int level;
  char *text;
};

/* Adds runner rec (borrowed; id, token_hash required), registered and last
 * seen now, offline until its first check-in. Errors: CR_EINVAL, CR_EEXIST (the
 * id exists), backend errors. */
int cr_store_runner_add(cr_store *s, const struct cr_runner_rec *rec);

/* Fills *out (caller owned; release with cr_runner_rec_clear) with runner id
 * (borrowed), without the executions' counts (0): cheap, for every call a
 * runner makes. CR_ENOENT when unknown. */
int cr_store_runner_get(cr_store *s, const char *id, struct cr_runner_rec *out);

/* cr_store_runner_get with the counts of its executions (running,
 * completed, failed), for views. */
int cr_store_runner_view(cr_store *s, const char *id,
                         struct cr_runner_rec *out);

/* Every runner, ordered by id, in *out (caller owned; free with
 * cr_runner_rec_free_list; NULL when 0). */
int cr_store_runner_list(cr_store *s, struct cr_runner_rec **out, size_t *n);

/* A check-in of runner rec->id: name, version, labels_json, providers_json
 * (each NULL = unchanged), slots and slots_free (< 0 = unchanged); last seen
 * now and online. *was_online (may be NULL) gets the online flag before.
 * Errors: CR_ENOENT, CR_EPERM (revoked), backend errors. */
int cr_store_runner_checkin(cr_store *s, const struct cr_runner_rec *rec,
                            int *was_online);

/* Revokes runner id (borrowed): revoked now, offline. CR_ENOENT when unknown
 * or already revoked. The caller releases its executions
 * (cr_store_exec_release_runner) in the same transaction. */
int cr_store_runner_revoke(cr_store *s, const char *id);

/* Records the last claim of runner id: claim_id (the runner's, borrowed)
 * and claims_json (borrowed: [[execution id, epoch], ...]). */
int cr_store_runner_claim_note(cr_store *s, const char *id,
                               const char *claim_id, const char *claims_json);

/* Marks offline every online runner last seen at or before cutoff (ms);
 * their ids go to *ids (caller owned: cr__free each and the array; NULL
 * when 0). */
int cr_store_runner_mark_offline(cr_store *s, int64_t cutoff, char ***ids,
                                 size_t *n);

/* The last report applied to execution id: its epoch, sequence number and
 * result (JSON text or NULL, caller owned, cr__free). All 0 / NULL when none.
 * CR_ENOENT when the execution is unknown. */
int cr_store_exec_report_get(cr_store *s, int64_t id, int64_t *epoch,
                             int64_t *seq, char **result);

/* Records that report (epoch, seq) of execution id was applied, with its
 * result (JSON text, borrowed, may be NULL). Meant for the transaction that
 * applied it. */
int cr_store_exec_report_set(cr_store *s, int64_t id, int64_t epoch,
                             int64_t seq, const char *result);

/* Appends a log line (text borrowed, at most 4,000 bytes kept) at level to
 * execution id, timestamped now. */
int cr_store_exec_log_add(cr_store *s, int64_t id, int level, const char *text);

/* The first limit (0 = 200, at most 1000) log lines of execution id, oldest
 * first, in *out (caller owned; free with cr_exec_log_rec_free_list). */
int cr_store_exec_log_list(cr_store *s, int64_t id, size_t limit,
                           struct cr_exec_log_rec **out, size_t *n);

/* Claims like cr_store_exec_claim, routed: a work with runner labels goes
 * only to a runner holding all of them (labels_json, a JSON array of the
 * runner's labels, borrowed, NULL = none); a work without labels whose
 * provider is in exclude_json (a JSON array, borrowed, NULL = none: the
 * providers the local runner serves first) is left to that runner. */
int cr_store_exec_claim_routed(cr_store *s, const char *runner_id,
                               const char *const *providers, size_t nproviders,
                               const char *labels_json,
                               const char *exclude_json, size_t slots,
                               int64_t lease_ms, struct cr_exec_claim **out,
                               size_t *n);

/* 1 in *any when cr_store_exec_claim_routed with the same arguments could
 * claim an execution now, else 0. A read, outside any write transaction
 * (no write lock is taken): a long poll with nothing to claim finds out
 * without one. An execution that becomes claimable just after it is
 * announced as usual (claim_signal.h). Errors: CR_EINVAL, backend errors. */
int cr_store_exec_claimable(cr_store *s, const char *const *providers,
                            size_t nproviders, const char *labels_json,
                            const char *exclude_json, int *any);

/* 1 in *due when a Created execution's retry time (not_before) lies in
 * (after, until] (ms): it became claimable in that span without a write to
 * announce it (the daemon signals waiting claims then). */
int cr_store_exec_retry_due(cr_store *s, int64_t after, int64_t until,
                            int *due);

/* Frees the strings of *r and zeroes it (r itself is the caller's). */
void cr_runner_rec_clear(struct cr_runner_rec *r);
/* Frees n records of a list and the list. NULL is a no-op. */
void cr_runner_rec_free_list(struct cr_runner_rec *r, size_t n);
/* Frees n log lines and the list. NULL is a no-op. */
void cr_exec_log_rec_free_list(struct cr_exec_log_rec *r, size_t n);

#endif
