/* batch_delivery.h: batched webhook delivery: the subscriptions with
 * `delivery.batch`, whose events are POSTed many per request (a JSON array,
 * or NDJSON), on a thread of its own with its own store connection.
 *
 * A batched subscription has a cursor (the last event id delivered or given
 * up) and at most one open batch (store/store_batches.h). A pass opens a
 * batch of the next events its filter matches, up to max_events and
 * max_bytes of rendered body; a partial batch waits until its oldest event
 * is max_wait old. The batch's range is stored before its first POST, so
 * retries and a restart send the same events with the same webhook-id
 * ("bat_<first id>_<last id>"). Each POST is one recorded attempt covering
 * the range. 2xx: delivered, the cursor moves to the batch's last id.
 * 408, 429, 5xx and network errors: retried whole on the subscription's
 * retry schedule (Retry-After honoured when longer); after the last, dead.
 * 413: the batch is halved and sent again at once, down to one event (then
 * dead). 410: dead, and the subscription is disabled. Other 4xx: dead. An
 * event whose json_template fails is left out of its batch and recorded
 * dead on its own. Order per subscription holds batch by batch: the next
 * batch opens only when the previous one is delivered or dead. Replay
 * (cr_store_outbox_replay) rewinds the cursor and drops the open batch.
 *
 * Each request carries Content-Type (application/json or
 * application/x-ndjson), webhook-id, webhook-timestamp, webhook-signature
 * (Standard Webhooks over the whole body, when the subscription has a
 * secret), connrun-batch-first-id, connrun-batch-last-id,
 * connrun-batch-count, and the subscription's headers. */
#ifndef CR_BATCH_DELIVERY_H
#define CR_BATCH_DELIVERY_H

#include <stdint.h>

#include "config/config.h"
#include "util/log.h"

typedef struct cr_batch_engine cr_batch_engine;

struct cr_batch_opts {
  const char *data_dir; /* borrowed: the store's directory or URL
                           (cr_store_open; required) */
  cr_log_fn log;        /* may be NULL; called from the engine's thread */
  void *log_ud;
  int log_min_level;
  int64_t poll_ms; /* look for new events at least this often; 0 = 100 */
};

struct cr_batch_stats {
  uint64_t posts, batches_delivered, events_delivered, retried, dead;
};

/* Opens the engine's store connection and starts its thread. o borrowed.
 * Returns 0, CR_EINVAL (no data_dir), CR_ENOMEM, CR_EHTTP, or the store's
 * open error. */
int cr_batch_engine_new(const struct cr_batch_opts *o, cr_batch_engine **out);

/* Takes the batched subscriptions of cfg (borrowed; copied). Returns 0 or
 * CR_ENOMEM. Any thread. */
int cr_batch_engine_configure(cr_batch_engine *e, const cr_config *cfg);

/* Asks for a pass soon (new events were committed). Any thread. */
void cr_batch_engine_kick(cr_batch_engine *e);

/* Counters since start. Any thread. */
void cr_batch_engine_get_stats(cr_batch_engine *e, struct cr_batch_stats *out);

/* Stops the thread (a POST in progress finishes or times out), closes the
 * store connection, frees e (NULL is fine). */
void cr_batch_engine_free(cr_batch_engine *e);

#endif
