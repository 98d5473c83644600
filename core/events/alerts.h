/* alerts.h: alert rules (config `alerts:`) and their notifications.
 *
 * Two kinds of rules:
 *   - error rate: after an execution of a work ended, the executions of the
 *     work that ended (completed or failed) inside the alert's window are
 *     counted; when failed / ended reaches the threshold (with at least
 *     min_executions ended) the work is "in breach": a work `alerted` event
 *     is stored and one notification produced; when the rate falls below
 *     the threshold again, a `recovered` event and one notification. Exactly
 *     once per breach and recovery: the breach state is kept in memory and
 *     rebuilt from the stored events (cr_alerts_load_state), so a restart
 *     does not send again. An alert watches: the works of error_rate.works
 *     when given; else, for the `default: true` alert, the works with
 *     error_email_notifications: true; else every work.
 *   - events: every stored event its filter (the subscriptions' keys)
 *     matches gives a notification (alerted / recovered events never do).
 *
 * Notifications are produced here and sent by cr_alert_send (blocking: call
 * it off the event loop). */
#ifndef CR_ALERTS_H
#define CR_ALERTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/store.h"

typedef struct cr_alerts cr_alerts;

/* A notification to send. subject, body and event are owned by the note
 * (freed by cr_alert_note_free_list); alert is borrowed from the config the
 * note was produced from and must outlive the note. */
struct cr_alert_note {
  const struct cr_config_alert *alert;
  char *subject; /* one line */
  char *body;    /* plain text */
  json_t *event; /* the triggering event as bound for templates
                    (cr_event_tpl_binding) */
};

/* Creates an empty alert engine (no work in breach) into *out (transferred;
 * free with cr_alerts_free). Returns 0, CR_EINVAL, CR_ENOMEM. */
int cr_alerts_new(cr_alerts **out);

/* Frees a (NULL is a no-op). */
void cr_alerts_free(cr_alerts *a);

/* Rebuilds the breach state from the store s (borrowed): the newest
 * alerted / recovered work event per (alert id, work) decides. Replaces the
 * in-memory state. Returns 0, CR_EINVAL, CR_ENOMEM or a store error. */
int cr_alerts_load_state(cr_alerts *a, cr_store *s);

/* The (alert, work) pairs in breach now: their count, and pair i (its ids
 * borrowed from a, valid until the next change of a). cr_alerts_breach_at
 * returns 0 or CR_ERANGE. */
size_t cr_alerts_breach_count(const cr_alerts *a);
int cr_alerts_breach_at(const cr_alerts *a, size_t i, const char **alert_id,
                        const char **work_id);

/* Evaluates every error-rate rule of cfg (borrowed) watching work_id
 * (borrowed; an unknown work gives nothing) at now (ms) after an execution
 * of it ended (see the top of this file). Each alerted / recovered event is
 * written in its own store transaction together with the in-memory state
 * change (undone if the commit fails), so the state matches the stored
 * events. Inside a caller's transaction that one is a savepoint and the
 * event commits with the caller's: after a rollback there, reload the state
 * with cr_alerts_load_state (the daemon does). Each notification
 * is appended to *notes (an array of *n, grown with cr__realloc; start with
 * NULL / 0; free with cr_alert_note_free_list). Event data: alert,
 * error_rate (percent, 1 decimal), failed, executions, window_s, threshold,
 * last_errors (up to 3 {execution_id, error_class, error}, newest first),
 * config_failures. Returns 0, CR_EINVAL, CR_ENOMEM or a store error (notes
 * already appended stay valid; after ENOMEM past the commit the note of
 * that event is lost, never sent twice). */
int cr_alerts_on_execution_end(cr_alerts *a, cr_store *s, const cr_config *cfg,
                               const char *work_id, int64_t now,
                               struct cr_alert_note **notes, size_t *n);

/* Event rules: appends to *notes / *n (as above) one note for every alert
 * of cfg (borrowed) whose `events` filter matches the stored event e
 * (borrowed). alerted and recovered events never match. Returns 0,
 * CR_EINVAL, CR_ENOMEM. */
int cr_alerts_on_event(cr_alerts *a, const cr_config *cfg,
                       const struct cr_event_rec *e,
                       struct cr_alert_note **notes, size_t *n);

/* Sends note (borrowed) through its alert's channel, blocking: e-mail via
 * cr_mail_send (subject and body), or an HTTP POST (libcurl easy, 15 s
 * timeout, no redirects) of the json_template rendered with the note's
 * event, or of the event JSON itself, with the configured headers; a
 * non-2xx status is a failure. account_id (borrowed, may be NULL) is named
 * in the e-mail footer. errbuf (caller owned, errlen bytes, may be NULL/0)
 * receives the reason on failure, never a secret nor the webhook URL.
 * Returns 0, CR_EINVAL, CR_ENOMEM, CR_EHTTP (delivery failed) or CR_EPARSE
 * (the template failed to render). */
int cr_alert_send(const struct cr_alert_note *note, const char *account_id,
                  char *errbuf, size_t errlen);

/* Frees n notes and the array (NULL is a no-op). */
void cr_alert_note_free_list(struct cr_alert_note *notes, size_t n);

#endif
