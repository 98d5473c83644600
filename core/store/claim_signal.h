/* claim_signal.h: tells whoever waits for claimable executions in this
 * process that one may have become claimable (created, retried at once,
 * released, lease expired, or a work freed by the end of its execution).
 *
 * The store's execution calls signal it (store.c); the REST API's long-poll
 * claims watch it, so a runner waiting in a long poll is answered at once
 * instead of polling. A signal may be spurious (the change was rolled back,
 * or the execution is not for the waiter): a watcher just tries to claim.
 * Thread-safe; watchers are called on the signalling thread and must be
 * quick (set a flag, signal a condition). At most 8 watchers. */
#ifndef CR_CLAIM_SIGNAL_H
#define CR_CLAIM_SIGNAL_H

typedef void (*cr_claim_signal_fn)(void *ud);

/* Adds watcher fn(ud) (both borrowed until unwatched). CR_ELIMIT when 8
 * watch already, CR_EINVAL for a NULL fn. */
int cr_claim_signal_watch(cr_claim_signal_fn fn, void *ud);

/* Removes watcher fn(ud); when this returns, fn is not running and will not
 * be called again. Unknown watchers are ignored. */
void cr_claim_signal_unwatch(cr_claim_signal_fn fn, void *ud);

/* Calls every watcher. Costs one atomic load when none watches. */
void cr_claim_signal(void);

#endif
