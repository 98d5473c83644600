/* ctl_runners.h: the server side of remote runners (docs/design.md, "Remote
 * runners"): registration with a registration token, authentication of a
 * runner's own token, check-ins and the online/offline scan, claims with the
 * configuration and state a runner needs, the reports a runner makes on its
 * executions (fenced by the lease epoch, applied once per sequence number),
 * revocation, and the runners' views. Shared by the REST API and the CLI.
 *
 * Every call takes a struct cr_ctl (control.h). JSON results are new
 * references owned by the caller. No view or event holds a token or a
 * credential; a claim holds the credentials the runner needs, and the API
 * sends it only over TLS or loopback. */
#ifndef CR_CTL_RUNNERS_H
#define CR_CTL_RUNNERS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "control/control.h"

/* Most executions one claim request may take. */
#define CR_CTL_CLAIM_MAX_SLOTS 64
/* Longest wait of a long-poll claim. */
#define CR_CTL_CLAIM_MAX_WAIT_MS 30000

/* Registers a runner from body {"registration_token", "name", "labels",
 * "version"} (borrowed): the token must match one of
 * host.runner_registration_tokens (constant time). *out gets {"runner_id",
 * "token", "labels", "lease_ms", "offline_after_ms"}: the token is shown
 * this once (the store keeps its SHA-256). Emits runner `created`. Errors:
 * CR_EPERM (no such registration token), CR_EINVAL (bad body; err says
 * which field), CR_ENOMEM, store errors. err (errlen bytes) is borrowed. */
int cr_ctl_runner_register(const struct cr_ctl *c, const json_t *body,
                           json_t **out, char *err, size_t errlen);

/* 0 when bearer (the text after "Bearer ", borrowed) is the token of runner
 * id (borrowed) and the runner is not revoked; CR_EPERM otherwise (unknown
 * id included: the caller answers 401 alike). */
int cr_ctl_runner_auth(const struct cr_ctl *c, const char *id,
                       const char *bearer);

/* A check-in of runner id from body (borrowed, may be NULL for a bare "seen
 * now": claims count as check-ins): {"name", "version", "labels",
 * "providers": [{"name", "version"}], "slots", "slots_free"}. Emits runner
 * `checked_in` when it comes online. Errors: CR_EINVAL, CR_EPERM (revoked),
 * store errors. */
int cr_ctl_runner_checkin(const struct cr_ctl *c, const char *id,
                          const json_t *body, char *err, size_t errlen);

/* Claims up to slots executions for runner id among providers (a JSON array
 * of names, borrowed), routed by the runner's labels; exclude_json
 * (borrowed, may be NULL) lists the providers the local runner serves first.
 * *out gets an array of claims {"execution_id", "attempt", "work_id",
 * "epoch", "lease_ms", "lease_expires_at", "state", "config"}: config holds
 * the work and its authorizations in the configuration's keys, credentials
 * in place. A claim of a work no longer configured is failed (class config)
 * and left out. claim_id (borrowed, may be NULL) names the request: the
 * same id as the runner's last claim request that took executions answers
 * those again (still pending under their epoch) instead of claiming more,
 * so a request retried after its answer was lost leases nothing twice.
 * check_in: the runner's check-in (cr_ctl_runner_checkin without a body)
 * is written in the claim's transaction, with the leases and the note of
 * claim_id: one commit for a claim request.
 * Errors: CR_EINVAL, CR_EPERM (the runner was revoked: a long poll that
 * began before), store errors. */
int cr_ctl_runner_claim(const struct cr_ctl *c, const char *id,
                        const json_t *providers, size_t slots,
                        const char *exclude_json, const char *claim_id,
                        int check_in, json_t **out);

/* 1 in *worth when cr_ctl_runner_claim (same arguments, check_in 0) could
 * answer anything but an empty list now: an execution is claimable for
 * runner id, claim_id is its last claim's (a retry to replay), the runner
 * is revoked (the attempt refuses), or what it needs could not be read
 * (the attempt reports the error, also returned here). Reads only, outside
 * any transaction: a long poll with nothing to claim waits without taking
 * the store's write lock. */
int cr_ctl_runner_claim_worth(const struct cr_ctl *c, const char *id,
                              const json_t *providers, size_t slots,
                              const char *exclude_json, const char *claim_id,
                              int *worth);

/* Applies body {"epoch", "reports": [{"seq", "type", ...}]} (borrowed) from
 * runner id to execution eid, in order, each report with its sequence
 * number recorded in its transaction; reports already applied are answered
 * from the record. *out gets {"results": [{"seq", ...}]}; *ended (may be
 * NULL) is set when a report ended the lease (completed, failed, retry).
 * Errors: CR_ESTALE (the epoch is not the execution's, it is not this
 * runner's, or the lease expired: nothing of the request after the point is
 * applied), CR_EINVAL (bad body; err says which), CR_ENOENT, store errors. */
int cr_ctl_runner_report(const struct cr_ctl *c, const char *id, int64_t eid,
                         const json_t *body, json_t **out, int *ended,
                         char *err, size_t errlen);

/* Revokes runner id: revoked, its pending and executing executions back to
 * Created as new attempts, runner `deleted` event with c->actor, one
 * transaction; then signals the long polls (claim_signal.h) so the runner's
 * waiting one ends refused. *released (may be NULL) gets how many went back.
 * Errors: CR_ENOENT (unknown or already revoked), store errors. */
int cr_ctl_runner_revoke(const struct cr_ctl *c, const char *id,
                         size_t *released);

/* Marks offline the runners not seen within offline_after_ms and emits
 * runner `disabled` for each; *n (may be NULL) gets how many. */
int cr_ctl_runner_offline_scan(const struct cr_ctl *c, int64_t offline_after_ms,
                               size_t *n);

/* The remote runners as an array of {"id", "name", "kind": "remote",
 * "status": online|offline|revoked, "version", "labels", "providers",
 * "slots", "slots_free", "last_check_in", "registered_at", "running",
 * "completed", "failed"}. */
int cr_ctl_runner_list(const struct cr_ctl *c, json_t **out);

/* One remote runner's view (as in the list). CR_ENOENT when unknown. */
int cr_ctl_runner_view(const struct cr_ctl *c, const char *id, json_t **out);

/* Why execution e (a Created one, borrowed) waits, when no online runner
 * can take it: "waiting for a runner with labels [dmz] and provider
 * salesforce"; NULL when some runner can (or it is not waiting). Caller
 * frees with cr__free. */
char *cr_ctl_exec_waiting_reason(const struct cr_ctl *c,
                                 const struct cr_exec_rec *e, int local_serves);

#endif
