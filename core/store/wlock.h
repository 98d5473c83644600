/* wlock.h: the in-process writer lock of a database file. SQLite lets one
 * connection write at a time and tells the others only by failing with
 * SQLITE_BUSY, which its busy handler answers by sleeping and retrying: a
 * writer that waits wakes late, by up to its last sleep. Connections of
 * this process to the same file (the daemon's loop, the delivery store
 * thread, runner threads, an event emitter) take this lock around their
 * write transactions, so they wait for each other on a condition variable
 * and the next one starts the moment the previous one commits. Other
 * processes (the CLI) still meet at SQLite's own lock, which the lock only
 * ever adds to: it never replaces it.
 *
 * Files are told apart by device and inode. The lock is not tied to a
 * thread: a transaction may begin on one thread and end on another. */
#ifndef CR_WLOCK_H
#define CR_WLOCK_H

#include <stdint.h>

typedef struct cr__wlock cr__wlock;

/* *out gets the lock of the file at path, shared by every caller for that
 * file: one reference to release with cr__wlock_put. Returns 0 (*out NULL
 * when the file cannot be examined: the caller writes without a lock) or
 * CR_ENOMEM. */
int cr__wlock_get(const char *path, cr__wlock **out);

/* Releases a reference from cr__wlock_get; the last frees it. NULL is a
 * no-op. */
void cr__wlock_put(cr__wlock *l);

/* Waits up to timeout_ms for l. Returns 1 when taken, 0 when the time ran
 * out (the caller goes on without it: SQLite decides). */
int cr__wlock_take(cr__wlock *l, int64_t timeout_ms);

/* Lets the next waiter in. Only after a cr__wlock_take that returned 1. */
void cr__wlock_drop(cr__wlock *l);

#endif
