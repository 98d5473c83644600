/* execution.c: the execution state machine rules, failure classes and retry
 * backoff (see execution.h). Pure functions: no store, no I/O. */
#include "exec/execution.h"

#include <stddef.h>
#include <string.h>

static const char *const state_names[CR_EXEC_NSTATES] = {
    "created", "pending", "executing", "completed", "failed", "cancelled"};

static const char *const class_names[CR_EXEC_NCLASSES] = {
    "config", "transient", "rate_limited", "system"};

/* allowed[from][to]. */
static const unsigned char allowed[CR_EXEC_NSTATES][CR_EXEC_NSTATES] = {
    /*                 cre pen exe com fai can */
    [CR_EXEC_CREATED] = {0, 1, 0, 0, 0, 1},
    [CR_EXEC_PENDING] = {1, 0, 1, 0, 0, 1},
    [CR_EXEC_EXECUTING] = {1, 0, 0, 1, 1, 1},
    [CR_EXEC_COMPLETED] = {0, 0, 0, 0, 0, 0},
    [CR_EXEC_FAILED] = {0, 0, 0, 0, 0, 0},
    [CR_EXEC_CANCELLED] = {0, 0, 0, 0, 0, 0},
};

static int find(const char *const *names, int n, const char *name) {
  for (int i = 0; name != NULL && i < n; i++)
    if (strcmp(names[i], name) == 0)
      return i;
  return -1;
}

const char *cr_exec_state_name(int state) {
  return state >= 0 && state < CR_EXEC_NSTATES ? state_names[state] : NULL;
}

int cr_exec_state_from_name(const char *name) {
  return find(state_names, CR_EXEC_NSTATES, name);
}

int cr_exec_state_final(int state) {
  return state == CR_EXEC_COMPLETED || state == CR_EXEC_FAILED ||
         state == CR_EXEC_CANCELLED;
}

int cr_exec_transition_allowed(const char *from, const char *to) {
  int f = cr_exec_state_from_name(from), t = cr_exec_state_from_name(to);
  return f >= 0 && t >= 0 && allowed[f][t];
}

const char *cr_exec_class_name(int cls) {
  return cls >= 0 && cls < CR_EXEC_NCLASSES ? class_names[cls] : NULL;
}

int cr_exec_class_from_name(const char *name) {
  return find(class_names, CR_EXEC_NCLASSES, name);
}

int cr_exec_class_retryable(int cls) {
  return cls == CR_EXEC_CLASS_TRANSIENT || cls == CR_EXEC_CLASS_RATE_LIMITED;
}

/* xorshift64* (Vigna): small, good enough for jitter. */
static uint64_t next_rand(uint64_t *st) {
  uint64_t x = *st != 0 ? *st : UINT64_C(0x9E3779B97F4A7C15);
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *st = x;
  return x * UINT64_C(0x2545F4914F6CDD1D);
}

int64_t cr_exec_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms,
                           uint64_t *rng_state) {
  if (base_ms <= 0 || max_ms <= 0)
    return 0;
  int64_t ceiling = base_ms < max_ms ? base_ms : max_ms;
  for (int i = 1; i < attempt && ceiling < max_ms; i++)
    ceiling = ceiling > max_ms / 2 ? max_ms : ceiling * 2;
  if (rng_state == NULL)
    return ceiling;
  return (int64_t)(next_rand(rng_state) % ((uint64_t)ceiling + 1));
}
