/* delivery.h: the webhook export engine: durable, at-least-once delivery of
 * system events to the configured subscriptions, on the daemon's libuv loop.
 *
 * The store is the queue (store.h outbox): each pass enqueues new matching
 * events per subscription (a cursor per subscription), takes the due
 * deliveries, renders each body (the event as JSON, or the subscription's
 * Jsonnet json_template), signs it (Standard Webhooks, when the subscription
 * has a secret) and POSTs it with libcurl's multi interface (http_async.h).
 * Every attempt is recorded. The store work (recording results in batches,
 * enqueueing, reading due rows) runs on a thread of the engine's own with
 * its own connection (delivery_worker.h); the loop renders, signs, POSTs.
 *
 * Outcomes: 2xx delivered; network errors, timeouts, 408, 429 and 5xx are
 * retried on the subscription's retry schedule (default the Standard
 * Webhooks one: 0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h),
 * honouring Retry-After when longer; after the last one the delivery is
 * dead. Other 4xx are recorded and not retried (dead). 410 Gone disables the
 * subscription. A subscription failing for longer than its disable_after is
 * disabled. Both emit a `subscription updated` event.
 *
 * Order: per subscription, events are sent in id order with at most
 * max_in_flight requests at once (default 16: receivers may see events of
 * one window complete out of order; use 1 for strict order). When a delivery
 * fails, nothing newer of that subscription is sent until it is delivered
 * or dead. Retries and replays keep the event's webhook-id ("evt_<id>").
 *
 * Loop thread only, except cr_delivery_kick. */
#ifndef CR_DELIVERY_H
#define CR_DELIVERY_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "store/store.h"
#include "util/log.h"

typedef struct cr_delivery cr_delivery;

struct cr_delivery_opts {
  uv_loop_t *loop; /* borrowed */
  cr_store *store; /* borrowed: the loop thread's connection */
  /* borrowed: the store's data directory or URL (cr_store_open); the
   * engine's store thread opens its own connection there (required) */
  const char *data_dir;
  cr_log_fn log; /* may be NULL */
  void *log_ud;
  int log_min_level;
  long max_connections; /* total concurrent requests; 0 = 64 */
  int64_t poll_ms;      /* look for new events at least this often; 0 = 100 */
};

struct cr_delivery_stats {
  uint64_t sent, delivered, retried, dead, template_errors;
};

/* Creates the engine (idle until configured) and starts its store thread.
 * o borrowed. Returns 0, CR_EINVAL (also: no data_dir), CR_ENOMEM, CR_EHTTP
 * or the store's open error (logged). Free with cr_delivery_free after
 * cr_delivery_close and the loop closed the handles. */
int cr_delivery_new(const struct cr_delivery_opts *o, cr_delivery **out);

/* Takes the subscriptions of cfg (borrowed: must stay valid until the next
 * configure or close): URL, headers, template, secret, filters, retry
 * settings. In-flight requests of removed subscriptions finish and are
 * recorded. Template errors are logged and that subscription's deliveries
 * fail with the Jsonnet error. Returns 0 or CR_ENOMEM. */
int cr_delivery_configure(cr_delivery *d, const cr_config *cfg);

/* Asks for a pass soon (new events were stored). Any thread. */
void cr_delivery_kick(cr_delivery *d);

/* Counters since start. */
void cr_delivery_get_stats(const cr_delivery *d, struct cr_delivery_stats *out);

/* Stops: no new requests; in-flight ones are aborted and stay pending in
 * the store (sent again at the next start, same webhook-id); results
 * already decided are recorded; stops the store thread; closes the uv
 * handles. */
void cr_delivery_close(cr_delivery *d);

/* Frees the engine (after close, once the loop ran the close callbacks).
 * NULL is a no-op. */
void cr_delivery_free(cr_delivery *d);

#endif
