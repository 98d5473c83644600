/* daemon_alerts.c: the daemon's alerting: error-rate rules evaluated when an
 * execution ends, event rules over each new stored event, and the sending of
 * notifications on the libuv thread pool (SMTP and webhook calls block). The
 * rules themselves live in alerts.c. */
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

int cr__daemon_alerts_start(cr_daemon *d) {
  int rc = cr_alerts_new(&d->alerts);
  if (rc == 0)
    rc = cr_alerts_load_state(d->alerts, d->store);
  /* Event rules look at events stored from now on. */
  struct cr_event_filter f = {.limit = 1};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  while (rc == 0) {
    f.after_id = d->alert_cursor;
    f.limit = CR_EVENT_QUERY_MAX_LIMIT;
    rc = cr_store_event_query(d->store, &f, &ev, &n);
    if (rc != 0 || n == 0)
      break;
    d->alert_cursor = ev[n - 1].id;
    cr_event_rec_free_list(ev, n);
    ev = NULL;
  }
  cr_event_rec_free_list(ev, n);
  return rc;
}

void cr__daemon_alerts_execution_end(cr_daemon *d, const char *work_id) {
  if (d->alerts == NULL)
    return;
  struct cr_alert_note *notes = NULL;
  size_t n = 0;
  int rc = cr_alerts_on_execution_end(d->alerts, d->store, d->cfg->cfg, work_id,
                                      cr__now_ms(), &notes, &n);
  if (rc != 0)
    cr__daemon_logf(d, CR_LOG_WARN, "alerts: work %s: %s", work_id,
                    cr_strerror(rc));
  send_notes(d, notes, n);
}

void cr__daemon_alerts_scan(cr_daemon *d) {
  if (d->alerts == NULL || d->cfg->cfg->n_alerts == 0)
    return;
  struct cr_event_filter f = {.after_id = d->alert_cursor, .limit = 1000};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  if (cr_store_event_query(d->store, &f, &ev, &n) != 0)
    return;
  for (size_t i = 0; i < n; i++) {
    struct cr_alert_note *notes = NULL;
    size_t nn = 0;
    if (cr_alerts_on_event(d->alerts, d->cfg->cfg, &ev[i], &notes, &nn) == 0)
      send_notes(d, notes, nn);
    d->alert_cursor = ev[i].id;
  }
  cr_event_rec_free_list(ev, n);
}

void cr__daemon_alerts_free(cr_daemon *d) { cr_alerts_free(d->alerts); }
