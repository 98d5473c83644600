/* delivery_worker.c: the delivery engine's store thread (see
 * delivery_worker.h): records results, enqueues events and fetches due rows
 * (full reads, or after the positions of the rows the loop took) on its own
 * store connection, one batch at a time. */
#include "events/delivery_worker.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#define ENQUEUE_MAX 10000

/* The newest event id the loop took of a subscription since the last full
 * read. */
struct pos {
  char *sub_id; /* owned */
  int64_t after;
};

/* Rows the loop is done with. */
struct junk {
  struct cr_outbox_rec *rows;
  size_t n;
};

struct cr__dworker {
  cr_store *store; /* the thread's */
  uv_async_t *ready;
  int64_t poll_ms;
  uv_thread_t thread;
  uv_mutex_t mu; /* guards everything below */
  uv_cond_t cv;
  struct cr__dw_result *in, **in_tail; /* submitted, not yet recorded */
  struct cr__dw_want want;             /* what the next read takes */
  int fetch;  /* the loop needs rows or results left the due set */
  int full;   /* the next read is a full one */
  int kicked; /* new events: enqueue */
  int quit;
  int has_out; /* a batch waits for the loop */
  struct cr__dw_batch out;
  struct cr__dw_result **out_tail;
  struct junk *junk; /* rows to free (cr__dw_dispose) */
  size_t n_junk, cap_junk;
  /* Changed by cr__dw_take only while a batch waits, read by the thread
   * only while none does: never at the same time. */
  struct pos *pos;
  size_t n_pos;
};

static void free_junk(struct junk *j, size_t n) {
  for (size_t i = 0; i < n; i++)
    cr_outbox_rec_free_list(j[i].rows, j[i].n);
}

/* Takes the junk list (lock held); the caller frees it unlocked. */
static struct junk *take_junk(cr__dworker *w, size_t *n) {
  struct junk *j = w->junk;
  *n = w->n_junk;
  w->junk = NULL;
  w->n_junk = w->cap_junk = 0;
  return j;
}

static void free_results(struct cr__dw_result *r) {
  while (r != NULL) {
    struct cr__dw_result *next = r->next;
    cr__free(r);
    r = next;
  }
}

/* Writes results in one transaction (cr_store_outbox_record_many); a row
 * that is gone (its subscription was deleted) is skipped. Returns the
 * error (message in err). */
static int record(cr_store *s, const struct cr__dw_result *list, char *err,
                  size_t errlen) {
  size_t n = 0;
  for (const struct cr__dw_result *r = list; r != NULL; r = r->next)
    n++;
  if (n == 0)
    return 0;
  struct cr_outbox_attempt *a = cr__calloc(n, sizeof *a);
  if (a == NULL) {
    snprintf(err, errlen, "out of memory");
    return CR_ENOMEM;
  }
  size_t i = 0;
  for (const struct cr__dw_result *r = list; r != NULL; r = r->next, i++)
    a[i] = (struct cr_outbox_attempt){r->sub_id,  r->event_id,
                                      r->status,  r->http,
                                      r->latency, r->error[0] ? r->error : NULL,
                                      r->next_at};
  int rc = cr_store_outbox_record_many(s, a, n, NULL);
  if (rc != 0)
    snprintf(err, errlen, "%s", cr_store_last_error(s));
  cr__free(a);
  return rc;
}

/* What one round takes from the shared state. */
struct round {
  struct cr__dw_result *in;
  long want;
  int fetch, full, kicked, quit;
};

static void drop_rows(struct cr__dw_batch *b) {
  cr_outbox_rec_free_list(b->rows, b->n_rows);
  b->rows = NULL;
  b->n_rows = 0;
  b->fetched = 0;
}

/* Rows the next read may take (0: none), poll: it is a poll. */
static long read_size(const cr__dworker *w, int poll) {
  if (w->has_out)
    return 0;
  return w->full || poll ? w->want.full : w->want.more;
}

/* Waits for work: results, a kick, capacity to fill, or the poll time
 * while there is capacity. A poll enqueues and reads in full (retries come
 * due, replays), kicks or not. Called and returns with the lock held. */
static void wait_work(cr__dworker *w, int64_t *next_poll, struct round *rd) {
  for (;;) {
    int64_t now = cr__now_ms();
    int can_poll = w->want.full > 0 && !w->has_out;
    int poll = can_poll && now >= *next_poll;
    if (w->quit)
      break;
    /* One batch at a time: the next is read after the loop took it. */
    if (!w->has_out && (w->in != NULL || w->kicked || poll ||
                        (w->fetch && read_size(w, 0) > 0)))
      break;
    if (can_poll)
      uv_cond_timedwait(&w->cv, &w->mu,
                        (uint64_t)(*next_poll - now) * 1000000u);
    else
      uv_cond_wait(&w->cv, &w->mu);
  }
  int64_t now = cr__now_ms();
  int poll = !w->has_out && now >= *next_poll;
  rd->in = w->in;
  w->in = NULL;
  w->in_tail = &w->in;
  rd->full = w->full || poll;
  rd->want = read_size(w, poll);
  rd->kicked = w->kicked || poll;
  rd->fetch = rd->want > 0 && (w->fetch || rd->kicked);
  if (rd->fetch) {
    w->fetch = 0;
    w->full = 0;
    if (rd->full)
      *next_poll = now + w->poll_ms;
  }
  w->kicked = 0;
  rd->quit = w->quit;
}

/* Appends a round's outcome to the waiting batch (or starts one). Rows of
 * a waiting batch were read before this round's results were written: they
 * are dropped when results join it (the loop then fetches again). Returns
 * 1 when a new batch was started. Nothing to tell: no batch. */
static int publish(cr__dworker *w, struct round *rd, int rec_rc,
                   const char *rec_err, int enq_rc, int fetched,
                   struct cr_outbox_rec *rows, size_t n) {
  if (rd->in == NULL && rec_rc == 0 && enq_rc == 0 && !fetched)
    return 0;
  struct cr__dw_batch *b = &w->out;
  int started = !w->has_out;
  if (!w->has_out) {
    memset(b, 0, sizeof *b);
    w->out_tail = &b->acked;
  }
  if (!started && rd->in != NULL && b->fetched) {
    w->full |= b->full; /* the loop never saw that full read */
    drop_rows(b);
    w->fetch = 1;
  }
  w->has_out = 1;
  *w->out_tail = rd->in;
  while (*w->out_tail != NULL)
    w->out_tail = &(*w->out_tail)->next;
  if (rec_rc != 0 && b->record_rc == 0) {
    b->record_rc = rec_rc;
    snprintf(b->record_error, sizeof b->record_error, "%s", rec_err);
  }
  if (enq_rc != 0)
    b->enqueue_rc = enq_rc;
  if (fetched) { /* only fetched when no batch was waiting */
    b->rows = rows;
    b->n_rows = n;
    b->fetched = 1;
    b->full = rd->full;
  }
  return started;
}

/* A full read, or one after the positions. */
static int read_due(cr__dworker *w, const struct round *rd,
                    struct cr_outbox_rec **rows, size_t *n) {
  if (rd->full)
    return cr_store_outbox_due(w->store, cr__now_ms(), (size_t)rd->want, rows,
                               n);
  struct cr_outbox_pos *pos = NULL;
  if (w->n_pos > 0 && (pos = cr__calloc(w->n_pos, sizeof *pos)) == NULL)
    return CR_ENOMEM;
  for (size_t i = 0; i < w->n_pos; i++)
    pos[i] = (struct cr_outbox_pos){w->pos[i].sub_id, w->pos[i].after};
  int rc = cr_store_outbox_due_after(w->store, cr__now_ms(), pos, w->n_pos,
                                     (size_t)rd->want, rows, n);
  cr__free(pos);
  return rc;
}

static void thread_main(void *arg) {
  cr__dworker *w = arg;
  prctl(PR_SET_NAME, "cr-delivery", 0, 0, 0); /* for top and perf */
  int64_t next_poll = 0;
  uv_mutex_lock(&w->mu);
  for (;;) {
    struct round rd;
    wait_work(w, &next_poll, &rd);
    if (rd.quit && rd.in == NULL)
      break;
    size_t n_junk = 0;
    struct junk *junk = take_junk(w, &n_junk);
    uv_mutex_unlock(&w->mu);
    free_junk(junk, n_junk);
    cr__free(junk);
    char rec_err[256] = "";
    int rec_rc = record(w->store, rd.in, rec_err, sizeof rec_err), enq_rc = 0;
    if (rd.kicked && !rd.quit)
      enq_rc = cr_store_outbox_enqueue(w->store, ENQUEUE_MAX, NULL);
    struct cr_outbox_rec *rows = NULL;
    size_t n = 0;
    int fetched = rd.fetch && !rd.quit && read_due(w, &rd, &rows, &n) == 0;
    uv_mutex_lock(&w->mu);
    if (publish(w, &rd, rec_rc, rec_err, enq_rc, fetched, rows, n))
      uv_async_send(w->ready);
  }
  uv_mutex_unlock(&w->mu);
}

int cr__dw_start(const char *data_dir, uv_async_t *ready, int64_t poll_ms,
                 cr__dworker **out, char *err, size_t errlen) {
  cr__dworker *w = cr__calloc(1, sizeof *w);
  if (w == NULL)
    return CR_ENOMEM;
  w->ready = ready;
  w->poll_ms = poll_ms > 0 ? poll_ms : 100;
  w->full = 1;
  w->in_tail = &w->in;
  int rc = cr_store_open(data_dir, &w->store, err, errlen);
  if (rc != 0) {
    cr__free(w);
    return rc;
  }
  if (uv_mutex_init(&w->mu) != 0)
    goto fail_store;
  if (uv_cond_init(&w->cv) != 0)
    goto fail_mu;
  if (uv_thread_create(&w->thread, thread_main, w) != 0)
    goto fail_cv;
  *out = w;
  return 0;
fail_cv:
  uv_cond_destroy(&w->cv);
fail_mu:
  uv_mutex_destroy(&w->mu);
fail_store:
  cr_store_close(w->store);
  cr__free(w);
  snprintf(err, errlen, "cannot start the delivery store thread");
  return CR_EIO;
}

void cr__dw_submit(cr__dworker *w, struct cr__dw_result *results,
                   const struct cr__dw_want *want) {
  uv_mutex_lock(&w->mu);
  *w->in_tail = results;
  while (*w->in_tail != NULL)
    w->in_tail = &(*w->in_tail)->next;
  if (want->need || want->reread || results != NULL)
    w->fetch = 1;
  w->full |= want->reread;
  w->want = *want;
  if (w->want.full < 0)
    w->want.full = 0;
  if (w->want.more < 0)
    w->want.more = 0;
  uv_cond_signal(&w->cv);
  uv_mutex_unlock(&w->mu);
}

void cr__dw_dispose(cr__dworker *w, struct cr_outbox_rec *rows, size_t n) {
  if (rows == NULL)
    return;
  uv_mutex_lock(&w->mu);
  int kept = 0;
  if (w->n_junk == w->cap_junk) {
    size_t cap = w->cap_junk ? 2 * w->cap_junk : 16;
    struct junk *grown = cr__realloc(w->junk, cap * sizeof *grown);
    if (grown != NULL) {
      w->junk = grown;
      w->cap_junk = cap;
    }
  }
  if (w->n_junk < w->cap_junk) {
    w->junk[w->n_junk++] = (struct junk){rows, n};
    kept = 1;
  }
  uv_mutex_unlock(&w->mu);
  if (!kept)
    cr_outbox_rec_free_list(rows, n);
}

void cr__dw_kick(cr__dworker *w) {
  uv_mutex_lock(&w->mu);
  w->kicked = 1;
  uv_cond_signal(&w->cv);
  uv_mutex_unlock(&w->mu);
}

static void pos_clear(cr__dworker *w) {
  for (size_t i = 0; i < w->n_pos; i++)
    cr__free(w->pos[i].sub_id);
  cr__free(w->pos);
  w->pos = NULL;
  w->n_pos = 0;
}

/* sub_id's position (a new one at 0); NULL when out of memory. */
static struct pos *pos_of(cr__dworker *w, const char *sub_id) {
  for (size_t i = 0; i < w->n_pos; i++)
    if (strcmp(w->pos[i].sub_id, sub_id) == 0)
      return &w->pos[i];
  struct pos *grown = cr__realloc(w->pos, (w->n_pos + 1) * sizeof *grown);
  if (grown == NULL)
    return NULL;
  w->pos = grown;
  struct pos *p = &w->pos[w->n_pos];
  if ((p->sub_id = cr__strdup(sub_id)) == NULL)
    return NULL;
  p->after = 0;
  w->n_pos++;
  return p;
}

/* The loop takes b's rows: the positions move past them (a full read
 * starts them again). Out of memory: the next read is full. */
static void pos_take(cr__dworker *w, const struct cr__dw_batch *b) {
  if (b->full)
    pos_clear(w);
  struct pos *p = NULL;
  for (size_t i = 0; i < b->n_rows; i++) {
    const struct cr_outbox_rec *r = &b->rows[i];
    if (p == NULL || strcmp(p->sub_id, r->subscription_id) != 0)
      p = pos_of(w, r->subscription_id);
    if (p == NULL) {
      w->full = 1;
      return;
    }
    if (r->event_id > p->after)
      p->after = r->event_id;
  }
}

int cr__dw_take(cr__dworker *w, struct cr__dw_batch *b) {
  uv_mutex_lock(&w->mu);
  int had = w->has_out;
  if (had) {
    if (w->out.fetched)
      pos_take(w, &w->out);
    *b = w->out;
    memset(&w->out, 0, sizeof w->out);
    w->has_out = 0;
    uv_cond_signal(&w->cv); /* it may fetch again */
  }
  uv_mutex_unlock(&w->mu);
  return had;
}

void cr__dw_stop(cr__dworker *w) {
  if (w == NULL)
    return;
  uv_mutex_lock(&w->mu);
  w->quit = 1;
  uv_cond_signal(&w->cv);
  uv_mutex_unlock(&w->mu);
  uv_thread_join(&w->thread);
  free_results(w->in);
  if (w->has_out) {
    free_results(w->out.acked);
    drop_rows(&w->out);
  }
  size_t n_junk = 0;
  struct junk *junk = take_junk(w, &n_junk);
  free_junk(junk, n_junk);
  cr__free(junk);
  pos_clear(w);
  cr_store_close(w->store);
  uv_cond_destroy(&w->cv);
  uv_mutex_destroy(&w->mu);
  cr__free(w);
}
