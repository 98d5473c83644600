/* exec_group.h: group commit of executions' final writes.
 *
 * A quick successful run (the plugin wrote nothing of its own: no record, no
 * checkpoint) ends with one store transaction: executing transition, events,
 * completed transition. Its commit costs more than the run. With
 * env->group set (exec_run.h) cr_exec_run does not write that completion: it
 * copies what the write needs into the group and returns with
 * out->deferred = 1. cr_exec_group_commit then writes every pending
 * completion in ONE transaction, each in its own savepoint, so a lost lease
 * (fencing) undoes only that execution's writes.
 *
 * Durability: a completion is durable when its group commits. A crash before
 * loses only the completion; the lease expires and the execution is retried
 * (at-least-once, as before). Callers bound the wait: commit when the group
 * holds CR_EXEC_GROUP_MAX entries, is CR_EXEC_GROUP_MAX_AGE_MS old, or no
 * more work is at hand. A run of its own (records, checkpoints) commits a
 * group that got that old at its next housekeeping tick.
 *
 * Threads: a group is used by one thread at a time, with one store
 * connection (the env->store of the runs added to it). */
#ifndef CR_EXEC_GROUP_H
#define CR_EXEC_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Bounds the runners use: entries, and age of the oldest pending entry. */
#define CR_EXEC_GROUP_MAX 64
#define CR_EXEC_GROUP_MAX_AGE_MS INT64_C(20)

typedef struct cr_exec_group cr_exec_group;

/* Creates an empty group into *out (freed with cr_exec_group_free).
 * CR_EINVAL, CR_ENOMEM. */
int cr_exec_group_new(cr_exec_group **out);

/* Frees g (NULL is a no-op). Pending completions are dropped without being
 * written: their outcomes get state -1 (the leases expire and the
 * executions are retried). */
void cr_exec_group_free(cr_exec_group *g);

/* Pending completions in g (0 for NULL). */
size_t cr_exec_group_size(const cr_exec_group *g);

/* Milliseconds since the oldest pending completion was added; 0 when g is
 * empty or NULL. */
int64_t cr_exec_group_age_ms(const cr_exec_group *g);

/* Writes every pending completion of g in one transaction on s (borrowed;
 * the connection the runs used, no transaction open), each in its own
 * savepoint, and empties g in all cases. Each pending outcome (borrowed
 * from cr_exec_run's caller) gets its state: CR_EXEC_COMPLETED, or -1 when
 * its lease was lost (that execution's writes are undone, the others
 * commit). Logs like cr_exec_run, through each run's env->log. Returns 0;
 * CR_EINVAL; or a store error: then nothing was written, every pending
 * outcome gets state -1 and the leases expire so the executions come back
 * as new attempts (cr_exec_run's contract on a store error). */
int cr_exec_group_commit(cr_exec_group *g, cr_store *s);

#endif
