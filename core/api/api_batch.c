/* api_batch.c: group commit of the server's hot writes: a remote runner's
 * reports (routes marked CR_API_BATCH) and its long-poll claims
 * (api_runners.c). Each is a write transaction of its own; with many
 * runners at once SQLite's single writer spends its time beginning and
 * committing them, each commit appending the same few pages (the
 * executions', events' and indexes' last leaves) to the WAL again, and a
 * server thread that waits for the writer stalls every connection it
 * serves.
 *
 * Here the server thread suspends the connection and queues the item. The
 * batch thread takes every queued item (up to BATCH_MAX), runs them in ONE
 * transaction, each in a savepoint of its own, commits, and only then
 * answers them. No item waits for a timer: a batch is whatever arrived
 * while the previous one ran (classic group commit), so a lone request is
 * answered as soon as it would have been before.
 *
 * Answers: an item that failed on its own (a request answered >= 400) has
 * its savepoint undone and changes nothing, as before. One whose writes
 * were lost anyway (its savepoint could not be kept, or the batch did not
 * commit) is told so in done(): a request then answers 503 `busy` with
 * Retry-After; nothing of it was written, and a runner's reports carry
 * sequence numbers, so the retry applies them once. An answer is only sent
 * after the commit that made it true. */
#include <stddef.h>
#include <string.h>

#include "api/api_int.h"
#include "util/alloc.h"
#include "util/error.h"

#define BATCH_MAX 64

/* Runs n items in one transaction on s; sets each one's lost. */
static void run_batch(cr_store *s, struct cr__api_batch_item **its, size_t n) {
  int rc = cr_store_begin(s);
  for (size_t i = 0; i < n; i++) {
    struct cr__api_batch_item *it = its[i];
    it->own = 0;
    it->lost = rc == 0 ? cr_store_savepoint(s) : rc;
    if (it->lost != 0)
      continue;
    it->own = it->run(it, s);
    int sp = cr_store_savepoint_end(s, it->own != 0 ? CR_ECANCELED : 0);
    it->lost = it->own == 0 ? sp : 0;
  }
  if (rc == 0)
    rc = cr_store_commit(s);
  for (size_t i = 0; rc != 0 && i < n; i++)
    if (its[i]->lost == 0 && its[i]->own == 0)
      its[i]->lost = rc;
}

/* Takes up to BATCH_MAX queued items into its; waits while none is queued
 * and the batches go on. Returns how many (0: stopped). */
static size_t take(cr_api *a, struct cr__api_batch_item **its) {
  size_t n = 0;
  uv_mutex_lock(&a->batch_mu);
  while (a->batch_head == NULL && !a->batch_quit)
    uv_cond_wait(&a->batch_cv, &a->batch_mu);
  while (a->batch_head != NULL && n < BATCH_MAX) {
    its[n++] = a->batch_head;
    a->batch_head = a->batch_head->next;
  }
  if (a->batch_head == NULL)
    a->batch_tail = NULL;
  uv_mutex_unlock(&a->batch_mu);
  return n;
}

static void batch_thread(void *arg) {
  cr_api *a = arg;
  struct cr__api_batch_item *its[BATCH_MAX];
  size_t n;
  while ((n = take(a, its)) > 0) {
    cr_store *s = cr__api_store_get(a);
    run_batch(s, its, n);
    cr__api_store_put(a, s);
    for (size_t i = 0; i < n; i++)
      its[i]->done(its[i], its[i]->lost);
  }
}

int cr__api_batch_start(cr_api *a) {
  int rc = cr__api_thread_start(&a->batch_mu, &a->batch_cv, &a->batch_thread,
                                batch_thread, a);
  if (rc != 0)
    return rc;
  a->batch_started = 1;
  return 0;
}

int cr__api_batch_offer(cr_api *a, struct cr__api_batch_item *it,
                        struct MHD_Connection *conn) {
  int queued = 0;
  uv_mutex_lock(&a->batch_mu);
  if (!a->batch_quit) {
    MHD_suspend_connection(conn); /* before the batch thread may resume it */
    it->next = NULL;
    if (a->batch_tail != NULL)
      a->batch_tail->next = it;
    else
      a->batch_head = it;
    a->batch_tail = it;
    uv_cond_signal(&a->batch_cv);
    queued = 1;
  }
  uv_mutex_unlock(&a->batch_mu);
  return queued;
}

/* ---- A batched route's request ------------------------------------------- */

#define REQ_OF(it)                                                             \
  ((struct cr__api_req *)(void *)((char *)(it)-offsetof(struct cr__api_req,    \
                                                        batch)))

static int req_run(struct cr__api_batch_item *it, cr_store *s) {
  struct cr__api_req *r = REQ_OF(it);
  r->txn_store = s;
  cr__api_run_handler(r, r->batch_res);
  r->txn_store = NULL;
  return r->batch_res->status >= 400 ? CR_ECANCELED : 0;
}

static void req_done(struct cr__api_batch_item *it, int lost) {
  struct cr__api_req *r = REQ_OF(it);
  struct cr__api_res *res = r->batch_res;
  if (lost != 0) {
    json_decref(res->body);
    res->body = NULL;
    cr__api_error(res, 503, "busy", NULL,
                  "the change could not be committed (%s): nothing of it was "
                  "written; try again",
                  cr_strerror(lost));
    res->retry_after = 1;
  }
  cr__api_prepare_response(r, res);
  r->slow_started = 2;
  MHD_resume_connection(r->conn);
}

int cr__api_batch_request(struct cr__api_req *r) {
  if (r->batch_res == NULL &&
      (r->batch_res = cr__calloc(1, sizeof *r->batch_res)) == NULL)
    return 0; /* runs inline */
  r->batch_res->status = 200;
  r->batch.run = req_run;
  r->batch.done = req_done;
  r->slow_started = 1;
  if (cr__api_batch_offer(r->api, &r->batch, r->conn))
    return 1;
  r->slow_started = 0;
  return 0;
}

void cr__api_batch_stop(cr_api *a) {
  if (!a->batch_started)
    return;
  uv_mutex_lock(&a->batch_mu);
  a->batch_quit = 1; /* queued items are still run: take() drains */
  uv_cond_signal(&a->batch_cv);
  uv_mutex_unlock(&a->batch_mu);
  uv_thread_join(&a->batch_thread);
}

void cr__api_batch_end(cr_api *a) {
  if (!a->batch_started)
    return;
  uv_cond_destroy(&a->batch_cv);
  uv_mutex_destroy(&a->batch_mu);
  a->batch_started = 0;
}
