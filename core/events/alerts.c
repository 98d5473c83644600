/* alerts.c: alert rules and notifications (see alerts.h): the breach state
 * of the error-rate rules, the alerted / recovered events, the notes'
 * texts, the event-rule matching and the sending (e-mail or webhook). */
#include "events/alerts.h"

#include "events/event_tpl.h"
#include "events/events.h"
#include "events/mail.h"
#include "events/sub_filter.h"
#include "util/alloc.h"
#include "util/error.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAST_ERRORS 3
#define WEBHOOK_TIMEOUT_MS 15000L
#define MS_PER_S INT64_C(1000)

/* One (alert, work) pair known to be in breach. */
struct breach {
  char *alert_id, *work_id;
};

struct cr_alerts {
  struct breach *b;
  size_t n;
};

/* What one evaluation counted. */
struct tally {
  int64_t ended, failed, config_failures;
  const struct cr_exec_rec *last[MAX_LAST_ERRORS];
  size_t n_last;
};

/* ---- State ----------------------------------------------------------------
 */

int cr_alerts_new(cr_alerts **out) {
  if (out == NULL)
    return CR_EINVAL;
  *out = cr__calloc(1, sizeof **out);
  return *out ? 0 : CR_ENOMEM;
}

static void clear_state(cr_alerts *a) {
  for (size_t i = 0; i < a->n; i++) {
    cr__free(a->b[i].alert_id);
    cr__free(a->b[i].work_id);
  }
  cr__free(a->b);
  a->b = NULL;
  a->n = 0;
}

void cr_alerts_free(cr_alerts *a) {
  if (a == NULL)
    return;
  clear_state(a);
  cr__free(a);
}

static struct breach *find_breach(const cr_alerts *a, const char *alert_id,
                                  const char *work_id) {
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->b[i].alert_id, alert_id) == 0 &&
        strcmp(a->b[i].work_id, work_id) == 0)
      return &a->b[i];
  return NULL;
}

size_t cr_alerts_breach_count(const cr_alerts *a) { return a ? a->n : 0; }

int cr_alerts_breach_at(const cr_alerts *a, size_t i, const char **alert_id,
                        const char **work_id) {
  if (a == NULL || i >= a->n)
    return CR_ERANGE;
  *alert_id = a->b[i].alert_id;
  *work_id = a->b[i].work_id;
  return 0;
}

/* Sets (in_breach 1) or clears the pair. */
static int set_breach(cr_alerts *a, const char *alert_id, const char *work_id,
                      int in_breach) {
  struct breach *b = find_breach(a, alert_id, work_id);
  if (!in_breach) {
    if (b == NULL)
      return 0;
    cr__free(b->alert_id);
    cr__free(b->work_id);
    *b = a->b[--a->n];
    return 0;
  }
  if (b != NULL)
    return 0;
  struct breach *nb = cr__realloc(a->b, (a->n + 1) * sizeof *nb);
  if (nb == NULL)
    return CR_ENOMEM;
  a->b = nb;
  char *ai = cr__strdup(alert_id), *wi = cr__strdup(work_id);
  if (ai == NULL || wi == NULL) {
    cr__free(ai);
    cr__free(wi);
    return CR_ENOMEM;
  }
  a->b[a->n].alert_id = ai;
  a->b[a->n++].work_id = wi;
  return 0;
}

static int apply_stored(cr_alerts *a, const struct cr_event_rec *e) {
  json_t *d = e->data_json ? json_loads(e->data_json, 0, NULL) : NULL;
  const char *alert_id = json_string_value(json_object_get(d, "alert"));
  int rc = 0;
  if (alert_id != NULL)
    rc =
        set_breach(a, alert_id, e->subject_id, strcmp(e->verb, "alerted") == 0);
  json_decref(d);
  return rc;
}

int cr_alerts_load_state(cr_alerts *a, cr_store *s) {
  static const char *const verbs[] = {"alerted", "recovered"};
  if (a == NULL || s == NULL)
    return CR_EINVAL;
  clear_state(a);
  struct cr_event_filter f = {.subject_type = "work",
                              .verbs = verbs,
                              .nverbs = 2,
                              .limit = CR_EVENT_QUERY_MAX_LIMIT};
  for (;;) {
    struct cr_event_rec *ev = NULL;
    size_t n = 0;
    int rc = cr_store_event_query(s, &f, &ev, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
      rc = apply_stored(a, &ev[i]);
    if (n > 0)
      f.after_id = ev[n - 1].id;
    cr_event_rec_free_list(ev, n);
    if (rc != 0 || n == 0)
      return rc;
  }
}

/* ---- Notes ----------------------------------------------------------------
 */

void cr_alert_note_free_list(struct cr_alert_note *notes, size_t n) {
  for (size_t i = 0; notes != NULL && i < n; i++) {
    cr__free(notes[i].subject);
    cr__free(notes[i].body);
    json_decref(notes[i].event);
  }
  cr__free(notes);
}

/* Appends a note taking subject, body and event (freed on failure too). */
static int push_note(struct cr_alert_note **notes, size_t *n,
                     const struct cr_config_alert *al, char *subject,
                     char *body, json_t *event) {
  struct cr_alert_note *p = subject && body && event
                                ? cr__realloc(*notes, (*n + 1) * sizeof *p)
                                : NULL;
  if (p == NULL) {
    cr__free(subject);
    cr__free(body);
    json_decref(event);
    return CR_ENOMEM;
  }
  *notes = p;
  p[*n] = (struct cr_alert_note){al, subject, body, event};
  (*n)++;
  return 0;
}

/* printf into a new cr__malloc'd string (NULL on ENOMEM). */
__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  int len = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  char *s = len >= 0 ? cr__malloc((size_t)len + 1) : NULL;
  if (s == NULL)
    return NULL;
  va_start(ap, f);
  vsnprintf(s, (size_t)len + 1, f, ap);
  va_end(ap);
  return s;
}

/* Appends to a growing string; *s becomes NULL on ENOMEM (and stays). */
__attribute__((format(printf, 2, 3))) static void cat(char **s, const char *f,
                                                      ...) {
  if (*s == NULL)
    return;
  va_list ap;
  va_start(ap, f);
  int len = vsnprintf(NULL, 0, f, ap);
  va_end(ap);
  size_t old = strlen(*s);
  char *p = len >= 0 ? cr__realloc(*s, old + (size_t)len + 1) : NULL;
  if (p == NULL) {
    cr__free(*s);
    *s = NULL;
    return;
  }
  va_start(ap, f);
  vsnprintf(p + old, (size_t)len + 1, f, ap);
  va_end(ap);
  *s = p;
}

/* "24h", "90m", "45s", "2d" into buf. */
static const char *fmt_window(int64_t ms, char *buf, size_t len) {
  int64_t s = ms / MS_PER_S;
  if (s > 0 && s % 86400 == 0 && s / 86400 != 1)
    snprintf(buf, len, "%lldd", (long long)(s / 86400));
  else if (s > 0 && s % 3600 == 0)
    snprintf(buf, len, "%lldh", (long long)(s / 3600));
  else if (s > 0 && s % 60 == 0)
    snprintf(buf, len, "%lldm", (long long)(s / 60));
  else
    snprintf(buf, len, "%llds", (long long)s);
  return buf;
}

/* Per mille, rounded. */
static int64_t rate_pm(const struct tally *t) {
  return t->ended > 0 ? (t->failed * 1000 + t->ended / 2) / t->ended : 0;
}

/* A one-line copy of s for subjects (control characters become spaces). */
static void one_line(const char *s, char *buf, size_t len) {
  snprintf(buf, len, "%s", s ? s : "?");
  for (char *p = buf; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
}

static char *alert_subject(const struct cr_config_work *wk,
                           const struct tally *t, int64_t window_ms,
                           int alerted) {
  char name[160], win[32];
  int64_t pm = rate_pm(t);
  one_line(wk->name ? wk->name : wk->id, name, sizeof name);
  fmt_window(window_ms, win, sizeof win);
  if (alerted)
    return fmt("[connrun] Work '%s': error rate %lld.%lld%% in the last %s "
               "(%lld of %lld executions failed)",
               name, (long long)(pm / 10), (long long)(pm % 10), win,
               (long long)t->failed, (long long)t->ended);
  return fmt("[connrun] Work '%s' recovered: error rate %lld.%lld%% in the "
             "last %s",
             name, (long long)(pm / 10), (long long)(pm % 10), win);
}

static char *alert_body(const struct cr_config_alert *al,
                        const struct cr_config_work *wk, const struct tally *t,
                        int alerted) {
  char win[32];
  int64_t pm = rate_pm(t);
  fmt_window(al->window_ms, win, sizeof win);
  char *b = fmt("Work '%s' (id %s) %s.\n\n", wk->name ? wk->name : wk->id,
                wk->id, alerted ? "is failing" : "has recovered");
  cat(&b,
      "Error rate: %lld.%lld%% (%lld failed of %lld executions that ended "
      "in the last %s; alert '%s' threshold %d%%, at least %d executions).\n",
      (long long)(pm / 10), (long long)(pm % 10), (long long)t->failed,
      (long long)t->ended, win, al->id, al->threshold_pct, al->min_executions);
  if (t->n_last > 0)
    cat(&b, "\nLast errors:\n");
  for (size_t i = 0; i < t->n_last; i++)
    cat(&b, "  - execution %lld [%s]: %s\n", (long long)t->last[i]->id,
        t->last[i]->error_class ? t->last[i]->error_class : "unknown",
        t->last[i]->error ? t->last[i]->error : "(no message)");
  if (alerted && t->config_failures > 0)
    cat(&b,
        "\n%lld of the failures are configuration errors (not retried): fix "
        "the credentials or settings.\n",
        (long long)t->config_failures);
  return b;
}

/* ---- Error-rate rules -----------------------------------------------------
 */

static int watches(const struct cr_config_alert *al,
                   const struct cr_config_work *wk) {
  if (!al->has_error_rate || al->id == NULL || wk->id == NULL)
    return 0;
  if (al->n_works > 0) {
    for (size_t i = 0; i < al->n_works; i++)
      if (strcmp(al->works[i], wk->id) == 0)
        return 1;
    return 0;
  }
  return al->is_default ? wk->error_email_notifications : 1;
}

/* Counts the executions (newest first) that ended in (now - window, now]. */
static void count(const struct cr_exec_rec *ex, size_t n, int64_t now,
                  int64_t window_ms, struct tally *t) {
  memset(t, 0, sizeof *t);
  for (size_t i = 0; i < n; i++) {
    const struct cr_exec_rec *e = &ex[i];
    int failed = strcmp(e->state, "failed") == 0;
    if (!failed && strcmp(e->state, "completed") != 0)
      continue;
    if (e->updated_at <= now - window_ms || e->updated_at > now)
      continue;
    t->ended++;
    if (!failed)
      continue;
    t->failed++;
    if (e->error_class && strcmp(e->error_class, "config") == 0)
      t->config_failures++;
    if (t->n_last < MAX_LAST_ERRORS)
      t->last[t->n_last++] = e;
  }
}

static json_t *event_data(const struct cr_config_alert *al,
                          const struct tally *t) {
  json_t *errs = json_array();
  for (size_t i = 0; errs && i < t->n_last; i++) {
    const struct cr_exec_rec *e = t->last[i];
    if (json_array_append_new(errs, json_pack("{sI ss? ss?}", "execution_id",
                                              (json_int_t)e->id, "error_class",
                                              e->error_class, "error",
                                              e->error)) != 0) {
      json_decref(errs);
      errs = NULL;
    }
  }
  if (errs == NULL)
    return NULL;
  return json_pack("{ss sf sI sI sI si so sI}", "alert", al->id, "error_rate",
                   (double)rate_pm(t) / 10.0, "failed", (json_int_t)t->failed,
                   "executions", (json_int_t)t->ended, "window_s",
                   (json_int_t)(al->window_ms / MS_PER_S), "threshold",
                   al->threshold_pct, "last_errors", errs, "config_failures",
                   (json_int_t)t->config_failures);
}

/* Emits the event and changes the in-memory state as one unit: a new breach
 * is recorded (the only step that allocates) before the commit and undone
 * if the commit fails; a recovery is applied after the commit (clearing
 * never fails). Then reads the stored event back into *out. */
static int emit(cr_alerts *a, cr_store *s, const char *alert_id,
                const char *work_id, int alerted, const json_t *data,
                struct cr_event_rec **out, size_t *n) {
  int64_t id = 0;
  int rc = cr_store_begin(s);
  if (rc != 0)
    return rc;
  rc = cr_event_emit(s, "work", work_id, alerted ? "alerted" : "recovered",
                     CR_ACTOR_SYSTEM, data, &id);
  if (rc == 0 && alerted)
    rc = set_breach(a, alert_id, work_id, 1);
  if (rc != 0) {
    cr_store_rollback(s);
    return rc;
  }
  if ((rc = cr_store_commit(s)) != 0) {
    if (alerted)
      set_breach(a, alert_id, work_id, 0);
    return rc;
  }
  if (!alerted)
    set_breach(a, alert_id, work_id, 0);
  struct cr_event_filter f = {.subject_type = "work",
                              .subject_id = work_id,
                              .after_id = id - 1,
                              .limit = 1};
  rc = cr_store_event_query(s, &f, out, n);
  if (rc == 0 && *n == 0)
    rc = CR_ESTORE;
  return rc;
}

/* Writes the event and state, then appends the note. Once the event is
 * committed the breach state matches it, so a failure to build the note
 * (ENOMEM) loses that note but never causes a second one. */
static int fire(cr_alerts *a, cr_store *s, const cr_config *cfg,
                const struct cr_config_alert *al,
                const struct cr_config_work *wk, const struct tally *t,
                int alerted, struct cr_alert_note **notes, size_t *n) {
  struct cr_event_rec *ev = NULL;
  size_t nev = 0;
  json_t *data = event_data(al, t);
  if (data == NULL)
    return CR_ENOMEM;
  int rc = emit(a, s, al->id, wk->id, alerted, data, &ev, &nev);
  json_decref(data);
  if (rc == 0)
    rc = push_note(notes, n, al, alert_subject(wk, t, al->window_ms, alerted),
                   alert_body(al, wk, t, alerted),
                   cr_event_tpl_binding(&ev[0], cfg->host.account_id));
  cr_event_rec_free_list(ev, nev);
  return rc;
}

int cr_alerts_on_execution_end(cr_alerts *a, cr_store *s, const cr_config *cfg,
                               const char *work_id, int64_t now,
                               struct cr_alert_note **notes, size_t *n) {
  if (a == NULL || s == NULL || cfg == NULL || work_id == NULL ||
      notes == NULL || n == NULL)
    return CR_EINVAL;
  const struct cr_config_work *wk = cr_config_find_work(cfg, work_id);
  int any = 0;
  for (size_t i = 0; wk != NULL && i < cfg->n_alerts; i++)
    any |= watches(&cfg->alerts[i], wk);
  if (!any)
    return 0;
  struct cr_exec_rec *ex = NULL;
  size_t nex = 0;
  int rc = cr_store_exec_list(s, work_id, CR_EXEC_LIST_MAX_LIMIT, &ex, &nex);
  for (size_t i = 0; rc == 0 && i < cfg->n_alerts; i++) {
    const struct cr_config_alert *al = &cfg->alerts[i];
    struct tally t;
    if (!watches(al, wk))
      continue;
    count(ex, nex, now, al->window_ms, &t);
    int breach = find_breach(a, al->id, wk->id) != NULL;
    int over = t.failed * 100 >= (int64_t)al->threshold_pct * t.ended;
    if (!breach && t.ended > 0 && t.ended >= al->min_executions && over)
      rc = fire(a, s, cfg, al, wk, &t, 1, notes, n);
    else if (breach && !(t.ended > 0 && over))
      rc = fire(a, s, cfg, al, wk, &t, 0, notes, n);
  }
  cr_exec_rec_free_list(ex, nex);
  return rc;
}

/* ---- Event rules ----------------------------------------------------------
 */

static int event_matches(const struct cr_config_alert *al,
                         const struct cr_event_rec *e, int *match) {
  struct cr_config_subscription sub = {0};
  cr_sub_filter *f = NULL;
  sub.event_types = al->event_types;
  sub.n_event_types = al->n_event_types;
  sub.sources = al->event_sources;
  int rc = cr_sub_filter_from_config(&sub, &f);
  if (rc != 0)
    return rc;
  *match = cr_sub_filter_match(f, e->subject_type, e->subject_id, e->verb);
  cr_sub_filter_free(f);
  return 0;
}

static char *event_body(const json_t *ev) {
  char *js = json_dumps(ev, JSON_INDENT(2) | JSON_SORT_KEYS);
  char *b = js ? fmt("A system event matched this alert:\n\n%s\n", js) : NULL;
  free(js);
  return b;
}

int cr_alerts_on_event(cr_alerts *a, const cr_config *cfg,
                       const struct cr_event_rec *e,
                       struct cr_alert_note **notes, size_t *n) {
  if (a == NULL || cfg == NULL || e == NULL || e->verb == NULL ||
      e->subject_type == NULL || e->subject_id == NULL || notes == NULL ||
      n == NULL)
    return CR_EINVAL;
  (void)a; /* event rules keep no state */
  if (strcmp(e->verb, "alerted") == 0 || strcmp(e->verb, "recovered") == 0)
    return 0;
  for (size_t i = 0; i < cfg->n_alerts; i++) {
    const struct cr_config_alert *al = &cfg->alerts[i];
    int match = 0;
    if (!al->has_events)
      continue;
    int rc = event_matches(al, e, &match);
    if (rc != 0)
      return rc;
    if (!match)
      continue;
    char st[64], sid[160];
    one_line(e->subject_type, st, sizeof st);
    one_line(e->subject_id, sid, sizeof sid);
    json_t *ev = cr_event_tpl_binding(e, cfg->host.account_id);
    char *body = ev ? event_body(ev) : NULL;
    rc = push_note(notes, n, al, fmt("[connrun] %s %s '%s'", e->verb, st, sid),
                   body, ev);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ---- Sending --------------------------------------------------------------
 */

static int send_mail(const struct cr_alert_note *note, const char *account_id,
                     char *errbuf, size_t errlen) {
  const struct cr_config_alert *al = note->alert;
  char *body =
      fmt("%s\n-- \nconnrun alert '%s'%s%s\n", note->body, al->id,
          account_id ? ", account " : "", account_id ? account_id : "");
  if (body == NULL)
    return CR_ENOMEM;
  struct cr_mail m = {.url = al->email_url,
                      .username = al->email_username,
                      .password = al->email_password,
                      .from = al->email_from,
                      .to = al->email_to,
                      .n_to = al->n_email_to,
                      .subject = note->subject,
                      .body = body,
                      .starttls = al->email_starttls};
  int rc = cr_mail_send(&m, errbuf, errlen);
  cr__free(body);
  return rc;
}

static size_t discard(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

/* The POST body: the rendered template or the event JSON. */
static int webhook_body(const struct cr_alert_note *note, char **out,
                        char *errbuf, size_t errlen) {
  if (note->alert->json_template == NULL) {
    char *js = json_dumps(note->event, JSON_COMPACT | JSON_SORT_KEYS);
    *out = js ? cr__strdup(js) : NULL;
    free(js);
    return *out ? 0 : CR_ENOMEM;
  }
  cr_event_tpl *t = NULL;
  int rc = cr_event_tpl_new(note->alert->json_template, &t, errbuf, errlen);
  if (rc == 0)
    rc = cr_event_tpl_render(t, note->event, out, errbuf, errlen);
  cr_event_tpl_free(t);
  return rc;
}

static struct curl_slist *webhook_headers(const json_t *headers) {
  struct curl_slist *l =
      curl_slist_append(NULL, "Content-Type: application/json");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)headers, k, v) {
    char *line = l ? fmt("%s: %s", k, json_string_value(v)) : NULL;
    struct curl_slist *nl = line ? curl_slist_append(l, line) : NULL;
    if (line != NULL)
      memset(line, 0, strlen(line));
    cr__free(line);
    if (nl == NULL) {
      curl_slist_free_all(l);
      return NULL;
    }
    l = nl;
  }
  return l;
}

static void set_err(char *errbuf, size_t errlen, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *errbuf, size_t errlen, const char *f, ...) {
  if (errbuf == NULL || errlen == 0)
    return;
  va_list ap;
  va_start(ap, f);
  vsnprintf(errbuf, errlen, f, ap);
  va_end(ap);
}

static int send_webhook(const struct cr_alert_note *note, char *errbuf,
                        size_t errlen) {
  char *body = NULL;
  int rc = webhook_body(note, &body, errbuf, errlen);
  if (rc != 0)
    return rc;
  CURL *c = curl_easy_init();
  struct curl_slist *h = webhook_headers(note->alert->webhook_headers);
  if (c == NULL || h == NULL) {
    rc = CR_ENOMEM;
    goto done;
  }
  long status = 0;
  curl_easy_setopt(c, CURLOPT_URL, note->alert->webhook_url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, WEBHOOK_TIMEOUT_MS);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  CURLcode cc = curl_easy_perform(c);
  if (cc != CURLE_OK) {
    set_err(errbuf, errlen, "webhook of alert '%s': %s", note->alert->id,
            curl_easy_strerror(cc));
    rc = CR_EHTTP;
    goto done;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    set_err(errbuf, errlen, "webhook of alert '%s': HTTP status %ld",
            note->alert->id, status);
    rc = CR_EHTTP;
  }
done:
  curl_slist_free_all(h);
  if (c != NULL)
    curl_easy_cleanup(c);
  cr__free(body);
  return rc;
}

int cr_alert_send(const struct cr_alert_note *note, const char *account_id,
                  char *errbuf, size_t errlen) {
  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (note == NULL || note->alert == NULL || note->subject == NULL ||
      note->body == NULL)
    return CR_EINVAL;
  if (note->alert->channel == CR_ALERT_CHANNEL_EMAIL)
    return send_mail(note, account_id, errbuf, errlen);
  if (note->alert->channel == CR_ALERT_CHANNEL_WEBHOOK &&
      note->alert->webhook_url != NULL && note->event != NULL)
    return send_webhook(note, errbuf, errlen);
  return CR_EINVAL;
}
