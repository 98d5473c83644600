/* export_engine.h: continuous export of system events into tables: the
 * subscriptions with workflow table_system_events (export_table.h says
 * what the table holds).
 *
 * The engine runs on a thread of its own with its own store connection.
 * Each job keeps its cursor (the last event id it considered) in the store,
 * on its subscription row. A pass reads up to batch_size events after the
 * cursor, keeps those the subscription's filter matches, writes them to the
 * table in one destination transaction and only then moves the cursor. A
 * crash between the two writes the batch again on restart, which adds
 * nothing (writes are idempotent by event id): every event lands in the
 * table exactly once. A pass runs when kicked (events were committed) and
 * at least every poll_ms; a full batch is followed at once by the next.
 *
 * A failing destination is retried with a backoff from 1 s doubling to 60 s
 * (the events wait in the store); the first failure of a streak emits a
 * `subscription` `failed` event with the reason, and recovery is logged.
 * Messages never contain the destination's password. */
#ifndef CR_EXPORT_ENGINE_H
#define CR_EXPORT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "events/sub_filter.h"
#include "export/export_table.h"
#include "store/store.h"
#include "util/log.h"

typedef struct cr_export_engine cr_export_engine;

struct cr_export_opts {
  /* borrowed: the store's data directory or URL (cr_store_open); the
   * engine opens its own connection there (required) */
  const char *data_dir;
  cr_log_fn log; /* may be NULL; called from the engine's thread */
  void *log_ud;
  int log_min_level;
  int64_t poll_ms; /* look for new events at least this often; 0 = 100 */
};

/* Counters since start (all jobs). */
struct cr_export_stats {
  uint64_t batches, written, failures;
};

/* Opens the engine's store connection and starts its thread (idle until
 * configured). o borrowed. Returns 0, CR_EINVAL (no data_dir), CR_ENOMEM,
 * or the store's open error. */
int cr_export_engine_new(const struct cr_export_opts *o,
                         cr_export_engine **out);

/* Takes the table_system_events subscriptions of cfg (borrowed; copied:
 * cfg may go away after the call). Jobs whose destination and table are
 * unchanged keep their connection. Returns 0 or CR_ENOMEM. Any thread. */
int cr_export_engine_configure(cr_export_engine *e, const cr_config *cfg);

/* Asks for a pass soon (new events were committed). Any thread. */
void cr_export_engine_kick(cr_export_engine *e);

/* Counters since start. Any thread. */
void cr_export_engine_get_stats(cr_export_engine *e,
                                struct cr_export_stats *out);

/* Stops the thread (a pass in progress finishes its batch), closes the
 * tables and the store connection, frees e (NULL is fine). */
void cr_export_engine_free(cr_export_engine *e);

/* One batch, shared by the engine and `connrun events export`: reads up to
 * q->limit events matching q (borrowed; q->after_id is replaced by
 * *cursor) and, when f (may be NULL) is given, keeps those it matches;
 * stops before the first event later than until_ms (0: no bound); writes
 * them to t. *cursor becomes the last event id read (unchanged when none),
 * *read the number read, *written (may be NULL) the rows the table did not
 * have. Returns 0, a store error, or the table's (errbuf says why). */
int cr_export_batch(cr_store *s, const struct cr_event_filter *q,
                    const cr_sub_filter *f, int64_t until_ms,
                    cr_export_table *t, int64_t *cursor, size_t *read,
                    size_t *written, char *errbuf, size_t errlen);

#endif
