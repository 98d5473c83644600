/* daemon_alerts.c: the daemon's alerting, done by the holder of the alerts
 * duty: over each new stored event, event rules, and error-rate rules for a
 * work whose execution ended (wherever it ran: the local runner, a remote
 * one, another instance), with the cursor kept in the store for the next
 * holder; and the sending of notifications on the libuv thread pool (SMTP
 * and webhook calls block). The rules themselves live in alerts.c. */
#include "daemon/daemon_int.h"

#include <string.h>

#include "events/alerts.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

struct send_job {
  uv_work_t req;
  cr_daemon *d;
  struct cr__cfg_ref *cfg; /* the notes point into it */
  struct cr_alert_note *notes;
  size_t n;
  char *account_id;
};

static void send_work(uv_work_t *req) {
  struct send_job *j = req->data;
  for (size_t i = 0; i < j->n; i++) {
    char err[512] = "";
    const struct cr_alert_note *note = &j->notes[i];
    int rc = cr_alert_send(note, j->account_id, err, sizeof err);
    if (rc == 0)
      cr__daemon_logf(j->d, CR_LOG_INFO, "alert %s sent: %s", note->alert->id,
                      note->subject);
    else
      cr__daemon_logf(j->d, CR_LOG_WARN, "alert %s not sent: %s",
                      note->alert->id, err[0] ? err : cr_strerror(rc));
  }
}

static void send_after(uv_work_t *req, int status) {
  (void)status;
  struct send_job *j = req->data;
  cr_alert_note_free_list(j->notes, j->n);
  cr__cfg_ref_put(j->cfg);
  cr__free(j->account_id);
  j->d->alerts_in_flight--;
  cr__free(j);
}

/* Hands notes (taken over) to the thread pool. */
static void send_notes(cr_daemon *d, struct cr_alert_note *notes, size_t n) {
  if (n == 0)
    return;
  struct send_job *j = cr__calloc(1, sizeof *j);
  if (j == NULL ||
      (j->account_id = cr__strdup(d->cfg->cfg->host.account_id)) == NULL) {
    cr__free(j);
    cr_alert_note_free_list(notes, n);
    cr__daemon_logf(d, CR_LOG_ERROR, "alerts: out of memory, %zu lost", n);
    return;
  }
  j->d = d;
  j->cfg = d->cfg;
  cr__cfg_ref_get(j->cfg);
  j->notes = notes;
  j->n = n;
  j->req.data = j;
  d->alerts_in_flight++;
  if (uv_queue_work(&d->loop, &j->req, send_work, send_after) != 0)
    send_after(&j->req, -1);
}

/* The cursor of the events the rules evaluated (store.h named cursors). */
#define CURSOR "alerts"

int cr__daemon_alerts_start(cr_daemon *d) {
  int rc = cr_alerts_new(&d->alerts);
  d->alerts_stale = 1; /* state and cursor read by the duty's holder */
  /* Rules look at the events stored while there are rules: the cursor is
   * set at the end at the first start, and at every start without rules
   * (so rules added later do not fire on the past); otherwise it stays
   * where the last holder left it. */
  int64_t at = 0;
  if (rc == 0 && (rc = cr_store_begin(d->store)) == 0) {
    rc = d->cfg->cfg->n_alerts == 0
             ? CR_ENOENT
             : cr_store_cursor_get(d->store, CURSOR, &at);
    if (rc == CR_ENOENT && (rc = cr_store_event_last_id(d->store, &at)) == 0)
      rc = cr_store_cursor_set(d->store, CURSOR, at);
    rc =
        rc == 0 ? cr_store_commit(d->store) : (cr_store_rollback(d->store), rc);
  }
  return rc;
}

/* Moves the cursor to the last event (fenced by the duty): while there are
 * no rules, so that rules added later start there. */
static int follow_end(cr_daemon *d) {
  int64_t last = 0;
  int rc = cr_store_event_last_id(d->store, &last);
  if (rc != 0 || last == d->alert_cursor)
    return rc;
  if ((rc = cr_store_begin(d->store)) != 0)
    return rc;
  rc = cr__daemon_duty_fence(d, CR__DUTY_ALERTS) ? 0 : CR_ECANCELED;
  if (rc == 0)
    rc = cr_store_cursor_set(d->store, CURSOR, last);
  rc = rc == 0 ? cr_store_commit(d->store) : (cr_store_rollback(d->store), rc);
  if (rc == 0)
    d->alert_cursor = last;
  return rc;
}

/* Reads what the last holder of the alerts duty left: the breach state
 * (from the alerted/recovered events) and the cursor; after a time without
 * rules (alerts_stale 2), the cursor moves to the end instead. */
static int resume(cr_daemon *d) {
  int rc = cr_alerts_load_state(d->alerts, d->store);
  if (rc == 0)
    rc = d->alerts_stale == 2
             ? follow_end(d)
             : cr_store_cursor_get(d->store, CURSOR, &d->alert_cursor);
  if (rc == 0)
    d->alerts_stale = 0; /* else tried again at the next scan */
  return rc;
}

/* Adds id (borrowed) to the set v[0..*n) unless it is there. */
static int add_work(const char ***v, size_t *n, const char *id) {
  for (size_t i = 0; i < *n; i++)
    if (strcmp((*v)[i], id) == 0)
      return 0;
  const char **g = cr__realloc(*v, (*n + 1) * sizeof *g);
  if (g == NULL)
    return CR_ENOMEM;
  g[(*n)++] = id;
  *v = g;
  return 0;
}

/* The rules over events ev[0..n): event rules on each, error-rate rules on
 * each work with an execution that ended; the notes into *notes / *nn. */
static int evaluate(cr_daemon *d, const struct cr_event_rec *ev, size_t n,
                    struct cr_alert_note **notes, size_t *nn) {
  const cr_config *cfg = d->cfg->cfg;
  const char **ended = NULL;
  size_t nended = 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = cr_alerts_on_event(d->alerts, cfg, &ev[i], notes, nn);
    if (rc == 0 && strcmp(ev[i].subject_type, "work") == 0 &&
        (strcmp(ev[i].verb, "completed") == 0 ||
         strcmp(ev[i].verb, "failed") == 0))
      rc = add_work(&ended, &nended, ev[i].subject_id);
  }
  int64_t now = cr__now_ms();
  for (size_t i = 0; rc == 0 && i < nended; i++)
    rc = cr_alerts_on_execution_end(d->alerts, d->store, cfg, ended[i], now,
                                    notes, nn);
  cr__free(ended);
  return rc;
}

void cr__daemon_alerts_scan(cr_daemon *d) {
  if (d->alerts == NULL || !cr__daemon_duty(d, CR__DUTY_ALERTS))
    return;
  if (d->cfg->cfg->n_alerts == 0) { /* rules added later start at the end */
    int64_t now = cr__now_ms();
    d->alerts_stale = 2;
    if (now - d->alerts_followed_ms >= 1000) { /* one read a second */
      d->alerts_followed_ms = now;
      follow_end(d);
    }
    return;
  }
  if (d->alerts_stale && resume(d) != 0)
    return;
  struct cr_event_filter f = {.after_id = d->alert_cursor, .limit = 1000};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  if (cr_store_event_query(d->store, &f, &ev, &n) != 0 || n == 0) {
    cr_event_rec_free_list(ev, n);
    return;
  }
  /* One transaction, fenced by the duty: the alerted/recovered events and
   * the cursor move together, and only while this instance holds the duty,
   * so an instance that lost it meanwhile notifies nothing twice. */
  struct cr_alert_note *notes = NULL;
  size_t nn = 0;
  int rc = cr_store_begin(d->store);
  if (rc == 0) {
    rc = cr__daemon_duty_fence(d, CR__DUTY_ALERTS) ? 0 : CR_ECANCELED;
    if (rc == 0)
      rc = evaluate(d, ev, n, &notes, &nn);
    if (rc == 0)
      rc = cr_store_cursor_set(d->store, CURSOR, ev[n - 1].id);
    rc =
        rc == 0 ? cr_store_commit(d->store) : (cr_store_rollback(d->store), rc);
  }
  if (rc == 0) {
    d->alert_cursor = ev[n - 1].id;
    send_notes(d, notes, nn);
  } else {
    /* The breach state may hold what was rolled back: read it again. */
    d->alerts_stale = 1;
    cr_alert_note_free_list(notes, nn);
    if (rc != CR_ECANCELED)
      cr__daemon_logf(d, CR_LOG_WARN, "alerts: %s", cr_strerror(rc));
  }
  cr_event_rec_free_list(ev, n);
}

void cr__daemon_alerts_free(cr_daemon *d) { cr_alerts_free(d->alerts); }
