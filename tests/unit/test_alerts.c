/* test_alerts.c: the `alerts:` config section (valid example and located
 * errors), the error-rate rule against a real temporary store (minimum
 * executions, one alert per breach, recovery, restart via load_state,
 * window, config-class failures, default alert), event rules, webhook
 * sending to a fake HTTP server, and allocation failures. */
#include "testutil.h"

#include "config/config.h"
#include "events/alerts.h"
#include "events/mail.h"
#include "fake_http.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1700000000000)
#define MIN_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)

static char *g_dir;

static int setup(void **state) {
  (void)state;
  g_dir = cr_test_mkdtemp("alerts");
  setenv("CR_ALERT_PW", "smtp-secret-pw-123", 1);
  setenv("CR_ALERT_TOKEN", "hook-token-456", 1);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cr__clock_set_fake(0);
  cr_test_rmtree(g_dir);
  free(g_dir);
  return 0;
}

/* ---- Config helpers --------------------------------------------------------
 */

struct loaded {
  char *path;
  cr_config *cfg;
  cr_diags d;
  int rc;
};

static void load(struct loaded *l, const char *text) {
  memset(l, 0, sizeof *l);
  l->path = cr_test_write_file(g_dir, "main.yaml", text);
  cr_diags_init(&l->d);
  l->rc = cr_config_load(l->path, &l->cfg, &l->d);
}

static void unload(struct loaded *l) {
  cr_config_free(l->cfg);
  cr_diags_free(&l->d);
  free(l->path);
}

static void dump(const cr_diags *d) {
  char line[2048];
  for (size_t i = 0; i < d->count; i++) {
    cr_diag_format(&d->items[i], line, sizeof line);
    fprintf(stderr, "  diag: %s\n", line);
  }
}

/* Loads text and expects an error containing msg at the nth needle. */
static void expect_error(const char *text, const char *needle, int nth,
                         const char *msg) {
  struct loaded l;
  int line, col, found = 0;
  load(&l, text);
  cr_test_text_pos(text, needle, nth, &line, &col);
  for (size_t i = 0; i < l.d.count; i++)
    if (l.d.items[i].severity == CR_DIAG_ERROR &&
        strstr(l.d.items[i].message, msg) != NULL &&
        l.d.items[i].line == line && l.d.items[i].column == col)
      found = 1;
  if (!found) {
    fprintf(stderr, "wanted %d:%d: %s\n", line, col, msg);
    dump(&l.d);
  }
  assert_true(found);
  assert_int_equal(l.rc, CR_ECONFIG);
  unload(&l);
}

#define AUTH_WORKS                                                             \
  "authorizations:\n"                                                          \
  "  - {id: a1, provider: cfgtest, method: api_key, credentials: {k: v}}\n"    \
  "works:\n"                                                                   \
  "  - {id: w1, name: Nightly CRM, provider: cfgtest, authorization: a1,\n"    \
  "     error_email_notifications: true}\n"                                    \
  "  - {id: w2, provider: cfgtest, authorization: a1}\n"

#define EMAIL_CH                                                               \
  "    channel:\n"                                                             \
  "      email: {url: \"smtp://127.0.0.1:1\", from: a@example.com, to: "       \
  "[o@example.com]}\n"

/* ---- Config -----------------------------------------------------------------
 */

static void test_config_valid(void **state) {
  (void)state;
  const char *text =
      AUTH_WORKS "alerts:\n"
                 "  - id: mail\n"
                 "    name: Ops mail\n"
                 "    channel:\n"
                 "      email:\n"
                 "        url: smtps://smtp.example.com:465\n"
                 "        username: alerts@example.com\n"
                 "        password: \"${CR_ALERT_PW}\"\n"
                 "        from: alerts@example.com\n"
                 "        to: [ops@example.com, b@example.org]\n"
                 "        starttls: never\n"
                 "    default: true\n"
                 "  - id: hook\n"
                 "    channel:\n"
                 "      webhook:\n"
                 "        url: https://hooks.example.com/x\n"
                 "        headers: {X-Token: \"${CR_ALERT_TOKEN}\"}\n"
                 "        json_template: '{\"text\": event.verb}'\n"
                 "    error_rate: {threshold: 50, window: 6h, min_executions: "
                 "2, works: [w2]}\n"
                 "    events:\n"
                 "      system_event_type: failed\n"
                 "      system_event_multiple_types: [failed, unhealthy]\n"
                 "      system_event_sources: {work: [w1], auth: []}\n";
  struct loaded l;
  load(&l, text);
  if (l.rc != 0)
    dump(&l.d);
  assert_int_equal(l.rc, 0);
  assert_int_equal(l.cfg->n_alerts, 2);
  const struct cr_config_alert *m = &l.cfg->alerts[0], *h = &l.cfg->alerts[1];
  assert_string_equal(m->name, "Ops mail");
  assert_int_equal(m->channel, CR_ALERT_CHANNEL_EMAIL);
  assert_string_equal(m->email_url, "smtps://smtp.example.com:465");
  assert_string_equal(m->email_username, "alerts@example.com");
  assert_string_equal(m->email_password, "smtp-secret-pw-123");
  assert_int_equal(m->n_email_to, 2);
  assert_string_equal(m->email_to[1], "b@example.org");
  assert_int_equal(m->email_starttls, CR_MAIL_STARTTLS_NEVER);
  assert_true(m->is_default);
  assert_true(m->has_error_rate); /* implied by default: true */
  assert_false(m->has_events);
  assert_int_equal(m->threshold_pct, 30);
  assert_int_equal(m->window_ms, 24 * HOUR_MS);
  assert_int_equal(m->min_executions, 5);
  assert_string_equal(h->name, "hook");
  assert_int_equal(h->channel, CR_ALERT_CHANNEL_WEBHOOK);
  assert_string_equal(h->webhook_url, "https://hooks.example.com/x");
  assert_string_equal(
      json_string_value(json_object_get(h->webhook_headers, "X-Token")),
      "hook-token-456");
  assert_string_equal(h->json_template, "{\"text\": event.verb}");
  assert_int_equal(h->threshold_pct, 50);
  assert_int_equal(h->window_ms, 6 * HOUR_MS);
  assert_int_equal(h->min_executions, 2);
  assert_int_equal(h->n_works, 1);
  assert_string_equal(h->works[0], "w2");
  assert_true(h->has_events);
  assert_int_equal(h->n_event_types, 2); /* de-duplicated */
  assert_non_null(json_object_get(h->event_sources, "auth"));
  unload(&l);

  /* The shipped example is valid too. */
  setenv("CONNRUN_API_TOKEN", "example-token-123", 1);
  setenv("EXAMPLE_API_KEY", "example-key-123", 1);
  setenv("WEBHOOK_SECRET", "whsec_example123", 1);
  setenv("SMTP_PASSWORD", "smtp-password-123", 1);
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = NULL;
  int rc = cr_config_load(CR_SOURCE_DIR "/configs/example.yaml", &cfg, &d);
  if (rc != 0)
    dump(&d);
  assert_int_equal(rc, 0);
  assert_true(cfg->n_alerts >= 2);
  cr_config_free(cfg);
  cr_diags_free(&d);
}

static void test_config_errors(void **state) {
  (void)state;
  const char *t;
  t = AUTH_WORKS
      "alerts:\n  - id: x\n    events: {system_event_type: failed}\n";
  expect_error(t, "id: x", 0, "missing required field 'channel'");
  t = AUTH_WORKS "alerts:\n  - id: x\n    channel: {}\n    default: true\n";
  expect_error(t, "{}", 0, "needs one of 'email' or 'webhook'");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH
                 "      webhook: {url: \"https://h.example.com/\"}\n"
                 "    default: true\n";
  expect_error(t, "webhook:", 0, "has both 'email' and 'webhook'");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH
                 "    error_rate: {threshold: 0}\n";
  expect_error(t, "0}", 0,
               "'threshold' in error_rate of alert 'x' must be "
               "between 1 and 100");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH
                 "    error_rate: {threshold: 101}\n";
  expect_error(t, "101", 0, "must be between 1 and 100");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH
                 "    error_rate: {works: [w1, wl2]}\n";
  expect_error(t, "wl2", 0,
               "alert 'x' references unknown work 'wl2' (did you mean 'w2'?)");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH "    default: true\n"
                 "  - id: y\n" EMAIL_CH "    default: true\n";
  expect_error(t, "true", 2, "at most one alert may be the default");
  t = AUTH_WORKS "alerts:\n  - id: x\n"
                 "    channel:\n"
                 "      webhook:\n"
                 "        url: https://h.example.com/x\n"
                 "        json_template: '{\"a\": }'\n"
                 "    events: {}\n";
  expect_error(t, "'{\"a\"", 0, "json_template in webhook");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH;
  expect_error(t, "id: x", 0, "alert 'x' has no rule");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH
                 "    error_rate: {thresold: 10}\n";
  expect_error(t, "thresold", 0, "did you mean 'threshold'?");
  t = AUTH_WORKS "alerts:\n  - id: x\n"
                 "    channel: {webhook: {url: \"https://h.example.com/\"}}\n"
                 "    default: true\n";
  expect_error(t, "true", 1, "needs an email channel");
  t = AUTH_WORKS "alerts:\n  - id: x\n"
                 "    channel: {email: {url: \"http://x\", from: a@b.c, to: "
                 "[o@example.com]}}\n"
                 "    default: true\n";
  expect_error(t, "\"http://x\"", 0, "smtp:// or smtps://");
  t = AUTH_WORKS "alerts:\n  - id: x\n"
                 "    channel: {email: {url: \"smtp://h\", from: a@b.c, to: "
                 "[]}}\n"
                 "    default: true\n";
  expect_error(t, "[]", 0, "needs 1 to 50 addresses");
  t = AUTH_WORKS "alerts:\n  - id: x\n" EMAIL_CH
                 "    events: {system_event_type: faild}\n";
  expect_error(t, "faild", 0, "did you mean 'failed'?");
}

/* ---- Store helpers
 * ------------------------------------------------------------ */

static cr_store *open_store(void) {
  char dir[600], err[256];
  cr_store *s = NULL;
  snprintf(dir, sizeof dir, "%s/data", g_dir);
  assert_int_equal(cr_store_open(dir, &s, err, sizeof err), 0);
  struct cr_auth_rec a = {0};
  a.id = "a1";
  a.provider = "cfgtest";
  a.config_hash = "h";
  assert_int_equal(cr_store_auth_upsert(s, &a, NULL), 0);
  const char *ids[] = {"w1", "w2"};
  for (size_t i = 0; i < 2; i++) {
    struct cr_work_rec w = {0};
    w.id = (char *)ids[i];
    w.name = (char *)ids[i];
    w.provider = "cfgtest";
    w.authorization_id = "a1";
    w.config_hash = "h";
    w.enabled = 1;
    w.max_attempts = 3;
    assert_int_equal(cr_store_work_upsert(s, &w, NULL), 0);
  }
  return s;
}

/* Runs one execution of work ending at `at` (failed when cls != NULL). */
static void run_exec(cr_store *s, const char *work, int64_t at, const char *cls,
                     const char *err) {
  int64_t id = 0;
  struct cr_exec_claim c = {0};
  cr__clock_set_fake(at);
  assert_int_equal(cr_store_exec_create(s, work, &id), 0);
  assert_int_equal(cr_store_exec_claim_one(s, id, "r1", MIN_MS, &c), 0);
  assert_int_equal(
      cr_store_exec_transition(s, id, c.epoch, "executing", NULL, NULL, NULL),
      0);
  assert_int_equal(cr_store_exec_transition(s, id, c.epoch,
                                            cls ? "failed" : "completed", NULL,
                                            cls, err),
                   0);
  cr__free(c.work_id);
}

static int count_events(cr_store *s, const char *verb) {
  const char *verbs[] = {verb};
  struct cr_event_filter f = {
      .subject_type = "work", .verbs = verbs, .nverbs = 1, .limit = 1000};
  struct cr_event_rec *ev = NULL;
  size_t n = 0;
  assert_int_equal(cr_store_event_query(s, &f, &ev, &n), 0);
  cr_event_rec_free_list(ev, n);
  return (int)n;
}

/* Evaluates w at `at` and returns the number of notes (kept in *notes). */
static size_t eval(cr_alerts *a, cr_store *s, const cr_config *cfg,
                   const char *w, int64_t at, struct cr_alert_note **notes) {
  size_t n = 0;
  *notes = NULL;
  assert_int_equal(cr_alerts_on_execution_end(a, s, cfg, w, at, notes, &n), 0);
  return n;
}

static const char *RATE_CFG =
    AUTH_WORKS "host: {account_id: acme}\n"
               "alerts:\n  - id: rate\n" EMAIL_CH
               "    error_rate: {threshold: 30, window: 24h}\n";

/* ---- Error-rate rule
 * ---------------------------------------------------------- */

static void test_error_rate(void **state) {
  (void)state;
  struct loaded l;
  load(&l, RATE_CFG);
  if (l.rc != 0)
    dump(&l.d);
  assert_int_equal(l.rc, 0);
  cr_store *s = open_store();
  cr_alerts *a = NULL;
  assert_int_equal(cr_alerts_new(&a), 0);
  assert_int_equal(cr_alerts_load_state(a, s), 0);
  struct cr_alert_note *notes = NULL;
  int64_t t = T0;

  /* 4 failures of 4 executions: below min_executions, no alert. */
  for (int i = 0; i < 4; i++) {
    run_exec(s, "w2", t += MIN_MS, "transient", "HTTP 503");
    assert_int_equal(eval(a, s, l.cfg, "w2", t, &notes), 0);
  }
  assert_int_equal(count_events(s, "alerted"), 0);

  /* w1: ok, config fail, ok, config fail: 50% of 4 (< min) -> nothing. */
  const char *seq[] = {NULL, "config", NULL, "config"};
  for (int i = 0; i < 4; i++) {
    run_exec(s, "w1", t += MIN_MS, seq[i], seq[i] ? "401 bad api key" : NULL);
    assert_int_equal(eval(a, s, l.cfg, "w1", t, &notes), 0);
  }
  /* 5th (a success): 2 of 5 = 40% -> one alerted event and one note. */
  run_exec(s, "w1", t += MIN_MS, NULL, NULL);
  assert_int_equal(eval(a, s, l.cfg, "w1", t, &notes), 1);
  assert_int_equal(count_events(s, "alerted"), 1);
  assert_ptr_equal(notes[0].alert, &l.cfg->alerts[0]);
  assert_non_null(strstr(notes[0].subject, "Nightly CRM"));
  assert_non_null(strstr(notes[0].subject, "40.0%"));
  assert_non_null(strstr(notes[0].subject, "24h"));
  assert_non_null(strstr(notes[0].body, "2 failed of 5 executions"));
  assert_non_null(strstr(notes[0].body, "401 bad api key"));
  assert_non_null(strstr(notes[0].body,
                         "2 of the failures are configuration errors (not "
                         "retried): fix the credentials or settings"));
  json_t *ev = notes[0].event;
  assert_string_equal(json_string_value(json_object_get(ev, "verb")),
                      "alerted");
  assert_string_equal(json_string_value(json_object_get(ev, "subject_id")),
                      "w1");
  json_t *data = json_object_get(ev, "data");
  assert_string_equal(json_string_value(json_object_get(data, "aid")), "acme");
  assert_string_equal(json_string_value(json_object_get(data, "alert")),
                      "rate");
  assert_true(json_real_value(json_object_get(data, "error_rate")) == 40.0);
  assert_int_equal(json_integer_value(json_object_get(data, "failed")), 2);
  assert_int_equal(json_integer_value(json_object_get(data, "executions")), 5);
  assert_int_equal(json_integer_value(json_object_get(data, "window_s")),
                   86400);
  assert_int_equal(json_integer_value(json_object_get(data, "config_failures")),
                   2);
  json_t *le = json_object_get(data, "last_errors");
  assert_int_equal(json_array_size(le), 2);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(le, 0), "error_class")),
      "config");
  cr_alert_note_free_list(notes, 1);

  /* Another failure (3 of 6): still the same breach, no second note. */
  run_exec(s, "w1", t += MIN_MS, "transient", "timeout");
  assert_int_equal(eval(a, s, l.cfg, "w1", t, &notes), 0);
  assert_int_equal(count_events(s, "alerted"), 1);

  /* A restarted engine that loaded the state does not alert again; one
   * that did not would (the state matters). */
  cr_alerts *a2 = NULL, *fresh = NULL;
  assert_int_equal(cr_alerts_new(&a2), 0);
  assert_int_equal(cr_alerts_load_state(a2, s), 0);
  assert_int_equal(eval(a2, s, l.cfg, "w1", t, &notes), 0);
  assert_int_equal(cr_alerts_new(&fresh), 0);
  cr_store_begin(s); /* its event is rolled back: keep the store clean */
  assert_int_equal(eval(fresh, s, l.cfg, "w1", t, &notes), 1);
  cr_alert_note_free_list(notes, 1);
  cr_store_rollback(s);
  cr_alerts_free(fresh);

  /* Successes until the rate is below 30%: 3/7, 3/8, 3/9, 3/10 (= 30%,
   * still in breach), 3/11 -> recovered, exactly once. */
  for (int i = 0; i < 4; i++) {
    run_exec(s, "w1", t += MIN_MS, NULL, NULL);
    assert_int_equal(eval(a, s, l.cfg, "w1", t, &notes), 0);
  }
  run_exec(s, "w1", t += MIN_MS, NULL, NULL);
  assert_int_equal(eval(a, s, l.cfg, "w1", t, &notes), 1);
  assert_non_null(strstr(notes[0].subject, "recovered"));
  assert_non_null(strstr(notes[0].subject, "27.3%"));
  assert_non_null(strstr(notes[0].body, "has recovered"));
  cr_alert_note_free_list(notes, 1);
  assert_int_equal(eval(a, s, l.cfg, "w1", t, &notes), 0);
  assert_int_equal(count_events(s, "recovered"), 1);
  /* The restarted engine follows the stored recovery. */
  assert_int_equal(cr_alerts_load_state(a2, s), 0);
  assert_int_equal(eval(a2, s, l.cfg, "w1", t, &notes), 0);

  /* w2's 5th failure -> alerted; 25 h later nothing ended in the window:
   * recovered. */
  run_exec(s, "w2", t += MIN_MS, "system", "crash");
  assert_int_equal(eval(a, s, l.cfg, "w2", t, &notes), 1);
  assert_int_equal(
      json_integer_value(json_object_get(
          json_object_get(notes[0].event, "data"), "config_failures")),
      0);
  assert_null(strstr(notes[0].body, "configuration errors"));
  cr_alert_note_free_list(notes, 1);
  assert_int_equal(eval(a, s, l.cfg, "w2", t + 25 * HOUR_MS, &notes), 1);
  assert_non_null(strstr(notes[0].subject, "recovered"));
  cr_alert_note_free_list(notes, 1);
  assert_int_equal(count_events(s, "alerted"), 2);
  assert_int_equal(count_events(s, "recovered"), 2);

  /* Unknown work: nothing. */
  assert_int_equal(eval(a, s, l.cfg, "nope", t, &notes), 0);
  cr_alerts_free(a2);
  cr_alerts_free(a);
  cr_store_close(s);
  unload(&l);
}

/* The default alert watches only works with error_email_notifications. */
static void test_default_alert_scope(void **state) {
  (void)state;
  struct loaded l;
  load(&l, AUTH_WORKS "alerts:\n  - id: d\n" EMAIL_CH "    default: true\n");
  assert_int_equal(l.rc, 0);
  cr_store *s = open_store();
  cr_alerts *a = NULL;
  assert_int_equal(cr_alerts_new(&a), 0);
  struct cr_alert_note *notes = NULL;
  int64_t t = T0;
  for (int i = 0; i < 5; i++) {
    run_exec(s, "w2", t += MIN_MS, "transient", "x");
    run_exec(s, "w1", t += MIN_MS, "transient", "x");
  }
  assert_int_equal(eval(a, s, l.cfg, "w2", t, &notes), 0);
  assert_int_equal(eval(a, s, l.cfg, "w1", t, &notes), 1);
  assert_non_null(strstr(notes[0].subject, "100.0%"));
  cr_alert_note_free_list(notes, 1);
  cr_alerts_free(a);
  cr_store_close(s);
  unload(&l);
}

/* ---- Event rules
 * ---------------------------------------------------------------- */

static const char *EVENTS_CFG =
    AUTH_WORKS "alerts:\n"
               "  - id: ev\n" EMAIL_CH "    events:\n"
               "      system_event_multiple_types: [failed, unhealthy]\n"
               "      system_event_sources: {work: [w1], auth: []}\n"
               "  - id: all\n" EMAIL_CH "    events: {}\n";

static size_t on_event(cr_alerts *a, const cr_config *cfg, const char *type,
                       const char *id, const char *verb,
                       struct cr_alert_note **notes) {
  struct cr_event_rec e = {
      7,          T0,           1,        (char *)type,
      (char *)id, (char *)verb, "system", "{\"why\":\"x\"}"};
  size_t n = 0;
  *notes = NULL;
  assert_int_equal(cr_alerts_on_event(a, cfg, &e, notes, &n), 0);
  return n;
}

static void test_event_rules(void **state) {
  (void)state;
  struct loaded l;
  load(&l, EVENTS_CFG);
  if (l.rc != 0)
    dump(&l.d);
  assert_int_equal(l.rc, 0);
  cr_alerts *a = NULL;
  assert_int_equal(cr_alerts_new(&a), 0);
  struct cr_alert_note *notes = NULL;
  assert_int_equal(on_event(a, l.cfg, "work", "w1", "failed", &notes), 2);
  assert_ptr_equal(notes[0].alert, &l.cfg->alerts[0]);
  assert_ptr_equal(notes[1].alert, &l.cfg->alerts[1]);
  assert_non_null(strstr(notes[0].subject, "failed work 'w1'"));
  assert_non_null(strstr(notes[0].body, "\"why\": \"x\""));
  assert_string_equal(
      json_string_value(json_object_get(notes[0].event, "verb")), "failed");
  cr_alert_note_free_list(notes, 2);
  /* Wrong subject id, wrong verb: only the catch-all alert. */
  assert_int_equal(on_event(a, l.cfg, "work", "w2", "failed", &notes), 1);
  assert_ptr_equal(notes[0].alert, &l.cfg->alerts[1]);
  cr_alert_note_free_list(notes, 1);
  assert_int_equal(on_event(a, l.cfg, "work", "w1", "completed", &notes), 1);
  cr_alert_note_free_list(notes, 1);
  /* Any auth id. */
  assert_int_equal(on_event(a, l.cfg, "auth", "zz", "unhealthy", &notes), 2);
  cr_alert_note_free_list(notes, 2);
  /* Never for the alerts' own events. */
  assert_int_equal(on_event(a, l.cfg, "work", "w1", "alerted", &notes), 0);
  assert_int_equal(on_event(a, l.cfg, "work", "w1", "recovered", &notes), 0);
  assert_null(notes);
  size_t n = 0;
  assert_int_equal(cr_alerts_on_event(a, l.cfg, NULL, &notes, &n), CR_EINVAL);
  cr_alerts_free(a);
  unload(&l);
}

/* ---- Webhook channel --------------------------------------------------------
 */

static void test_webhook_send(void **state) {
  (void)state;
  static const struct cr_fake_http_route routes[] = {
      {"POST", "/hook", 200, "{}", {NULL}},
      {"POST", "/bad", 500, "{}", {NULL}},
      {NULL, NULL, 0, NULL, {NULL}}};
  cr_fake_http *srv = NULL;
  assert_int_equal(
      cr_fake_http_start(cr_fake_http_routes, (void *)routes, &srv), 0);
  char text[4096];
  snprintf(text, sizeof text,
           AUTH_WORKS "alerts:\n"
                      "  - id: tpl\n"
                      "    channel:\n"
                      "      webhook:\n"
                      "        url: \"%s/hook\"\n"
                      "        headers: {X-Token: \"${CR_ALERT_TOKEN}\"}\n"
                      "        json_template: '{text: event.verb + \" \" + "
                      "event.subject_id}'\n"
                      "    events: {}\n"
                      "  - id: raw\n"
                      "    channel: {webhook: {url: \"%s/hook\"}}\n"
                      "    events: {}\n"
                      "  - id: bad\n"
                      "    channel: {webhook: {url: \"%s/bad\"}}\n"
                      "    events: {}\n",
           cr_fake_http_url(srv), cr_fake_http_url(srv), cr_fake_http_url(srv));
  struct loaded l;
  load(&l, text);
  if (l.rc != 0)
    dump(&l.d);
  assert_int_equal(l.rc, 0);
  cr_alerts *a = NULL;
  assert_int_equal(cr_alerts_new(&a), 0);
  struct cr_alert_note *notes = NULL;
  assert_int_equal(on_event(a, l.cfg, "work", "w1", "failed", &notes), 3);
  char err[256];
  assert_int_equal(cr_alert_send(&notes[0], "acme", err, sizeof err), 0);
  assert_int_equal(cr_alert_send(&notes[1], "acme", err, sizeof err), 0);
  assert_int_equal(cr_alert_send(&notes[2], "acme", err, sizeof err), CR_EHTTP);
  assert_non_null(strstr(err, "500"));
  assert_null(strstr(err, cr_fake_http_url(srv))); /* no URL */
  assert_int_equal(cr_fake_http_count(srv), 3);
  const struct cr_fake_http_request *r0 = cr_fake_http_request_at(srv, 0);
  json_t *b0 = json_loads(r0->body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(b0, "text")),
                      "failed w1");
  assert_string_equal(cr_fake_http_header(r0, "X-Token"), "hook-token-456");
  json_decref(b0);
  const struct cr_fake_http_request *r1 = cr_fake_http_request_at(srv, 1);
  json_t *b1 = json_loads(r1->body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(b1, "subject_id")),
                      "w1");
  assert_null(cr_fake_http_header(r1, "X-Token"));
  json_decref(b1);
  cr_alert_note_free_list(notes, 3);
  cr_alerts_free(a);
  cr_fake_http_stop(srv);
  unload(&l);
}

/* ---- Allocation failures
 * ------------------------------------------------------ */

static void test_alloc_failures(void **state) {
  (void)state;
  struct loaded l;
  load(&l, EVENTS_CFG);
  assert_int_equal(l.rc, 0);
  cr_test_alloc_install();
  int done = 0;
  for (long k = 0; !done && k < 10000; k++) {
    cr_alerts *a = NULL;
    struct cr_alert_note *notes = NULL;
    size_t n = 0;
    struct cr_event_rec e = {7, T0, 1, "work", "w1", "failed", "system", "{}"};
    cr_test_alloc_fail_after(k);
    int rc = cr_alerts_new(&a);
    if (rc == 0)
      rc = cr_alerts_on_event(a, l.cfg, &e, &notes, &n);
    cr_test_alloc_fail_after(-1);
    if (rc == 0) {
      assert_int_equal(n, 2);
      done = !cr_test_alloc_failed();
    } else {
      assert_int_equal(rc, CR_ENOMEM);
    }
    cr_alert_note_free_list(notes, n);
    cr_alerts_free(a);
  }
  assert_true(done);
  unload(&l);
}

/* Error-rate evaluation with every allocation failing in turn: a clean
 * error, never two alerts for one breach (each round ends by pruning the
 * events, so every round starts from the same store). */
static void test_alloc_failures_rate(void **state) {
  (void)state;
  struct loaded l;
  load(&l, RATE_CFG);
  assert_int_equal(l.rc, 0);
  cr_store *s = open_store();
  int64_t t = T0;
  const char *seq[] = {"config", NULL, "transient", NULL, NULL};
  for (int i = 0; i < 5; i++)
    run_exec(s, "w1", t += MIN_MS, seq[i], seq[i] ? "boom" : NULL);
  cr_test_alloc_install();
  int done = 0;
  long rounds = 0;
  for (long k = 0; !done && k < 100000; k++, rounds++) {
    cr_alerts *a = NULL;
    struct cr_alert_note *n1 = NULL, *n2 = NULL;
    size_t c1 = 0, c2 = 0;
    assert_int_equal(cr_alerts_new(&a), 0);
    cr_test_alloc_fail_after(k);
    int rc = cr_alerts_on_execution_end(a, s, l.cfg, "w1", t, &n1, &c1);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      assert_int_equal(c1, 1);
      done = 1;
    } else {
      assert_true(rc == CR_ENOMEM || rc == CR_ESTORE);
    }
    assert_int_equal(cr_alerts_on_execution_end(a, s, l.cfg, "w1", t, &n2, &c2),
                     0);
    assert_int_equal(count_events(s, "alerted"), 1);
    assert_true(c1 + c2 <= 1);
    assert_true(c1 + c2 == 1 || rc != 0);
    cr_alert_note_free_list(n1, c1);
    cr_alert_note_free_list(n2, c2);
    assert_int_equal(cr_store_event_prune(s, t + 1, NULL), 0);
    assert_int_equal(count_events(s, "alerted"), 0);
    cr_alerts_free(a);
  }
  assert_true(done);
  assert_true(rounds > 10); /* the evaluation does allocate */
  cr_store_close(s);
  unload(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_config_valid, setup, teardown),
      cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_rate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_default_alert_scope, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_event_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_webhook_send, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
      cmocka_unit_test_setup_teardown(test_alloc_failures_rate, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
