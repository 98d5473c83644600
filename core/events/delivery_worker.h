/* delivery_worker.h: the webhook delivery engine's store thread (internal to
 * delivery.c). It owns a store connection of its own and does all of the
 * outbox's store work off the libuv loop: it records attempt results (one
 * transaction per batch), enqueues new events for the subscriptions and
 * fetches due rows. The loop only renders, signs, POSTs and classifies.
 *
 * Exchange: the loop submits results (cr__dw_submit); the worker records
 * them, reads the due rows (never while the loop has not taken its
 * previous batch) and hands back one batch: the recorded results
 * (acknowledged, in submission order) and, when it read them, the rows. A
 * batch's rows were read after its acknowledged results were written (rows
 * read earlier are dropped from a batch that results join).
 *
 * Two kinds of read. A full read returns every due row from the start,
 * the loop's in-flight ones too: the loop replaces the rows it holds with
 * them. A read after the positions returns, per subscription, only rows
 * newer than every row the loop has taken since the last full read: the
 * loop appends them. The worker keeps the positions itself, updated in
 * cr__dw_take, so a batch that was dropped never moves them (a full read
 * cut by its limit leaves each subscription where its rows stopped). Full
 * reads happen at the start, every poll_ms (retries that came due,
 * replays) and when the loop asks (it let go of rows it held). So a loop that
 * keeps a delivery in its in-flight window until its result is acknowledged,
 * skips rows in that window, and replaces or appends as told, never sends a
 * delivery twice. */
#ifndef CR_DELIVERY_WORKER_H
#define CR_DELIVERY_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/store.h"

/* One attempt's outcome, owned by whoever holds it (the loop, then the
 * worker from cr__dw_submit until the batch that acknowledges it). */
struct cr__dw_result {
  struct cr__dw_result *next;
  void *tag;          /* the loop's, untouched */
  const char *sub_id; /* borrowed: must outlive the acknowledgement */
  int64_t event_id;
  const char *status; /* static string: pending, failed, delivered, dead */
  int http;
  int64_t latency, next_at;
  char error[256];
};

/* What the worker hands back (loop thread, from cr__dw_take). */
struct cr__dw_batch {
  struct cr__dw_result *acked; /* recorded (or not: record_rc), in order */
  int record_rc;               /* first recording error, 0 = all written */
  char record_error[256];      /* its store message */
  int enqueue_rc;              /* last enqueue error, 0 = none */
  int fetched;                 /* rows were read this time (maybe none) */
  int full;                    /* a full read (else after the positions) */
  struct cr_outbox_rec *rows;  /* due rows, oldest first per subscription */
  size_t n_rows;
};

typedef struct cr__dworker cr__dworker;

/* Starts the thread with a store connection to data_dir (borrowed). Each
 * batch is announced with uv_async_send(ready) (borrowed; initialised on
 * the loop by the caller). poll_ms: look for new and due rows at least this
 * often while the loop has capacity. Returns 0, CR_ENOMEM, CR_EIO (thread)
 * or the store's open error (message in err). */
int cr__dw_start(const char *data_dir, uv_async_t *ready, int64_t poll_ms,
                 cr__dworker **out, char *err, size_t errlen);

/* What the loop asks for along with its results. */
struct cr__dw_want {
  long full;  /* rows a full read takes (in-flight ones included) */
  long more;  /* rows a read after the positions takes; 0: none wanted */
  int need;   /* the loop has no rows left to send: read soon */
  int reread; /* the loop let go of rows it held: the next read is full */
};

/* Loop thread: hands results (a list, transferred; may be NULL) over for
 * recording, with what the next read takes (*want, copied). Results also
 * cause a read. */
void cr__dw_submit(cr__dworker *w, struct cr__dw_result *results,
                   const struct cr__dw_want *want);

/* Loop thread: rows (n, transferred; may be NULL) the loop is done with,
 * freed by the store thread at its next round (or at once here when the
 * list cannot grow). */
void cr__dw_dispose(cr__dworker *w, struct cr_outbox_rec *rows, size_t n);

/* Any thread: new events were stored; enqueue and look for due rows soon. */
void cr__dw_kick(cr__dworker *w);

/* Loop thread: takes the pending batch into *b (its lists transferred; free
 * the rows with cr_outbox_rec_free_list and the results with free()); its
 * rows move the positions. Returns 0 when there was none. */
int cr__dw_take(cr__dworker *w, struct cr__dw_batch *b);

/* Records what was submitted, stops the thread and frees the worker; an
 * untaken batch is freed with it. NULL is a no-op. */
void cr__dw_stop(cr__dworker *w);

#endif
