/* execution.h: the execution state machine as pure rules (no store): the
 * states and their names, which transitions are legal, the failure classes
 * and the retry backoff. The store (store.h, cr_store_exec_*) enforces these
 * rules when it changes an execution.
 *
 *   created --claim--> pending --start--> executing --> completed | failed
 *   created | pending | executing --> cancelled
 *   pending | executing --lease expiry--> created (a new attempt)
 *
 * completed, failed and cancelled are final. */
#ifndef CR_EXECUTION_H
#define CR_EXECUTION_H

#include <stdint.h>

#include "events/vocab.h" /* enum cr_exec_state */

/* States: enum cr_exec_state (vocab.h, product names "Created"...). Here
 * and in the store they are named in lower case ("created"...), as stored. */
#define CR_EXEC_NSTATES 6

/* Failure classes of a failed execution. */
enum cr_exec_class {
  CR_EXEC_CLASS_CONFIG = 0,       /* bad configuration: retrying won't help */
  CR_EXEC_CLASS_TRANSIENT = 1,    /* network blip, 5xx: retry */
  CR_EXEC_CLASS_RATE_LIMITED = 2, /* provider throttled us: retry later */
  CR_EXEC_CLASS_SYSTEM = 3,       /* connrun/plugin bug or crash: no retry */
};
#define CR_EXEC_NCLASSES 4

/* Name of a state ("created"...), or NULL for an unknown value. Static. */
const char *cr_exec_state_name(int state);

/* The state named name (borrowed, may be NULL), or -1 when unknown. */
int cr_exec_state_from_name(const char *name);

/* 1 if state (enum cr_exec_state) is final (completed, failed, cancelled),
 * else 0 (also for unknown values). */
int cr_exec_state_final(int state);

/* 1 if moving from state from to state to (names, borrowed, may be NULL) is
 * legal per the diagram above, else 0 (also for unknown names and from ==
 * to). */
int cr_exec_transition_allowed(const char *from, const char *to);

/* Name of a failure class ("config", "transient", "rate_limited",
 * "system"), or NULL for an unknown value. Static. */
const char *cr_exec_class_name(int cls);

/* The class named name (borrowed, may be NULL), or -1 when unknown. */
int cr_exec_class_from_name(const char *name);

/* 1 if a failure of class cls (enum cr_exec_class) is worth retrying
 * (transient, rate_limited), else 0. */
int cr_exec_class_retryable(int cls);

/* Delay before retry number attempt (>= 1; smaller counts as 1), in ms:
 * exponential backoff with full jitter. The ceiling is
 * min(max_ms, base_ms * 2^(attempt-1)) (no overflow) and the result is
 * uniform in [0, ceiling], so retries of many executions spread out instead
 * of hammering a provider together. base_ms <= 0 or max_ms <= 0 give 0.
 * *rng_state (caller owned) is the state of a xorshift64* generator, updated
 * on each call; 0 is replaced by a fixed seed. rng_state NULL: no jitter
 * (the ceiling itself is returned). */
int64_t cr_exec_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms,
                           uint64_t *rng_state);

#endif
