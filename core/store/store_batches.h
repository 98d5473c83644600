/* store_batches.h: batched webhook delivery's durable state (events/
 * batch_delivery.h): per batched subscription, the batch being delivered
 * (its range of event ids, fixed before its first POST so that retries and
 * a restart send the same events under the same webhook-id), and one
 * delivery attempt per POST covering the batch's range. A batched
 * subscription has no outbox rows: its cursor (the last event id
 * delivered or given up) is on its subscription row.
 *
 * Part of the store interface (store.h): the same conventions hold. */
#ifndef CR_STORE_BATCHES_H
#define CR_STORE_BATCHES_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The open batch of a subscription: events first_id..last_id (those its
 * filter matches, count of them). */
struct cr_batch_rec {
  int64_t first_id, last_id, count;
  int64_t attempts, next_attempt_at, first_attempt_at;
};

/* What one POST of a batch gave. status: "delivered" (the batch is done
 * and the cursor moves to its last id), "dead" (given up: the same, the
 * attempt says why), "failed" (retried at next_attempt_at) or "halved"
 * (413: the batch now ends at new_last_id with new_count events, retried
 * at once). */
struct cr_batch_result {
  const char *status;
  int http_status;
  int64_t latency_ms;
  const char *error; /* may be NULL */
  int64_t next_attempt_at;
  int64_t new_last_id, new_count;
};

/* Gets the open batch of sub_id (borrowed) into *out. CR_ENOENT when there
 * is none. */
int cr_store_batch_get(cr_store *s, const char *sub_id,
                       struct cr_batch_rec *out);

/* Opens a batch of sub_id covering first..last (count events), due now.
 * Errors: CR_EINVAL (a range that is empty or not after the cursor),
 * CR_EEXIST (a batch is open), backend errors. */
int cr_store_batch_open(cr_store *s, const char *sub_id, int64_t first,
                        int64_t last, int64_t count);

/* Records one attempt of sub_id's open batch (r borrowed) and moves the
 * batch on as r->status says, in one transaction. Errors: CR_EINVAL,
 * CR_ENOENT (no open batch), backend errors. */
int cr_store_batch_record(cr_store *s, const char *sub_id,
                          const struct cr_batch_result *r);

/* Records that event_id of sub_id's batch was left out of it (its
 * json_template failed: error, borrowed) as a dead attempt of that event
 * alone. Errors: CR_EINVAL, backend errors. */
int cr_store_batch_note_dead(cr_store *s, const char *sub_id, int64_t event_id,
                             const char *error);

#endif
