/* scheduler.h: when executions are created. One pass over the configured
 * works (cr_scheduler_pass) creates an execution for every enabled work
 * whose stored next run time (works.next_run_at, the "upcoming collection")
 * has come, stores the next one, and tells the caller when to pass again.
 * The daemon calls it from a libuv timer; it keeps no state between passes
 * but the parsed provider default schedules, so a restart loses nothing.
 *
 * Rules:
 * - The effective schedule of a work is its own `schedule:`, else its
 *   provider's default: the most frequent `default_schedule` of the plugin's
 *   streams (an interval such as "1h", or a 5-field cron expression in UTC);
 *   a work with neither runs only when triggered (a one-time work).
 * - A work that has no next run stored (new, re-enabled, or its schedule
 *   became more frequent) gets one: now for an interval (a new interval
 *   work runs at once), the next cron time for cron.
 * - No overlap: while a work has an execution in created, pending or
 *   executing, its due run waits (next_run_at stays in the past) and is
 *   created when that execution ends.
 * - After downtime a work whose run time passed runs once, not once per
 *   missed slot; the stored next run is then the first slot after now.
 * - Disabled works have no next run. */
#ifndef CR_SCHEDULER_H
#define CR_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "plugin/plugin_host.h"
#include "store/store.h"

typedef struct cr_scheduler cr_scheduler;

/* Creates a scheduler for the plugins of h (borrowed; must outlive it):
 * parses their default schedules. Returns 0 or CR_ENOMEM. Free with
 * cr_scheduler_free. */
int cr_scheduler_new(const cr_plugin_host *h, cr_scheduler **out);
void cr_scheduler_free(cr_scheduler *sc);

/* The effective schedule of work w (borrowed): its own, the provider's
 * default, or NULL (one-time). Borrowed from w or sc. */
const cr_schedule *cr_scheduler_effective(const cr_scheduler *sc,
                                          const struct cr_config_work *w);

/* One pass at now (ms; 0 = the current time) over the works of cfg
 * (borrowed) stored in s. *created (may be NULL) gets the number of
 * executions created; *next_wake (may be NULL) the earliest future next run
 * (0 when none). The works are read outside any transaction; those that
 * change are written in transactions of up to 64 writes, each in a
 * savepoint of its own: a failing one is skipped (its writes undone) and
 * the first error returned after the pass. */
int cr_scheduler_pass(cr_scheduler *sc, cr_store *s, const cr_config *cfg,
                      int64_t now, size_t *created, int64_t *next_wake);

/* A fence (below): 1 when the caller may still schedule. */
typedef int (*cr_scheduler_fence_fn)(void *ud);

/* Fencing (several instances): fence(ud) is called first in each of the
 * pass's write transactions; executions are created only when it returns
 * 1, else the pass stops creating and returns CR_ECANCELED (the duty was
 * lost). fn NULL: no fence. Both borrowed until changed. */
void cr_scheduler_set_fence(cr_scheduler *sc, cr_scheduler_fence_fn fn,
                            void *ud);

/* Creates an execution of work id now, unless one is already open: *exec_id
 * gets the new id, or the open one's (*existing = 1). CR_ENOENT when the
 * work is not stored (or deleted). */
int cr_scheduler_trigger(cr_store *s, const char *work_id, int64_t *exec_id,
                         int *existing);

#endif
