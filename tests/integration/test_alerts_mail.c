/* test_alerts_mail.c: the error-rate alert end to end over SMTP: a real
 * server on loopback (python3 aiosmtpd with its Maildir handler) receives
 * exactly one e-mail per breach (5 executions with 2 failures: 40%), none
 * for further failures of the same breach, and one on recovery; the
 * messages are decoded with Python's email package. Server helpers are
 * copied from test_mail.c. */
#include "testutil.h"

#include "events/alerts.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "config/config.h"
#include "util/error.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PY "/usr/bin/python3"

struct srv {
  char *dir;
  char maildir[512];
  char url[64];
  pid_t pid;
};

/* Starts the SMTP server child (server output goes to <dir>/server.log). */
static int start_server(void **state) {
  if (!cr_test_have_python_module("aiosmtpd")) {
    *state = NULL;
    return 0;
  }
  struct srv *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->dir = cr_test_mkdtemp("mail");
  snprintf(s->maildir, sizeof s->maildir, "%s/mbox", s->dir);
  int port = cr_test_free_port();
  snprintf(s->url, sizeof s->url, "smtp://127.0.0.1:%d", port);
  char listen_arg[32], log[600];
  snprintf(listen_arg, sizeof listen_arg, "127.0.0.1:%d", port);
  snprintf(log, sizeof log, "%s/server.log", s->dir);
  s->pid = fork();
  assert_true(s->pid >= 0);
  if (s->pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    char *const plain[] = {
        PY,         "-m",       "aiosmtpd", "-n",
        "-l",       listen_arg, "-c",       "aiosmtpd.handlers.Mailbox",
        s->maildir, NULL};
    execv(PY, plain);
    _exit(127);
  }
  for (int i = 0; i < 200 && !cr_test_can_connect(port); i++) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  assert_true(cr_test_can_connect(port));
  *state = s;
  return 0;
}

static int setup(void **state) { return start_server(state); }

static int teardown(void **state) {
  struct srv *s = *state;
  if (s == NULL)
    return 0;
  kill(s->pid, SIGTERM);
  waitpid(s->pid, NULL, 0);
  cr_test_rmtree(s->dir);
  free(s->dir);
  free(s);
  return 0;
}

#define NEED_SERVER(state)                                                     \
  do {                                                                         \
    if (*(state) == NULL) {                                                    \
      print_message("python3-aiosmtpd not installed: skipped\n");              \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* Decodes every delivered message (Subject + body) with Python's email
 * package, separated by "\n=====\n"; *n gets the count. Caller frees. */
static char *mailbox(const struct srv *s, int *n) {
  static const char script[] =
      "import sys, os, email, email.policy\n"
      "d = os.path.join(sys.argv[1], 'new')\n"
      "names = sorted(os.listdir(d)) if os.path.isdir(d) else []\n"
      "print(len(names))\n"
      "for f in names:\n"
      "    m = email.message_from_binary_file(open(os.path.join(d, f), 'rb'),"
      " policy=email.policy.default)\n"
      "    sys.stdout.write('Subject: ' + str(m['Subject']) + '\\n'"
      " + m.get_content() + '\\n=====\\n')\n";
  char *const argv[] = {PY, "-c", (char *)script, (char *)s->maildir, NULL};
  char *const env[] = {"PYTHONIOENCODING=utf-8", NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, env, &out), 0);
  *n = atoi(out);
  return out;
}

#define T0 INT64_C(1700000000000)
#define MIN_MS INT64_C(60000)

static cr_store *open_store(const char *dir) {
  char path[700], err[256];
  cr_store *st = NULL;
  snprintf(path, sizeof path, "%s/data", dir);
  assert_int_equal(cr_store_open(path, &st, err, sizeof err), 0);
  struct cr_auth_rec a = {0};
  a.id = "a1";
  a.provider = "cfgtest";
  a.config_hash = "h";
  assert_int_equal(cr_store_auth_upsert(st, &a, NULL), 0);
  struct cr_work_rec w = {0};
  w.id = "w1";
  w.provider = "cfgtest";
  w.authorization_id = "a1";
  w.config_hash = "h";
  w.enabled = 1;
  w.max_attempts = 3;
  assert_int_equal(cr_store_work_upsert(st, &w, NULL), 0);
  return st;
}

/* One execution of w1 ending at `at` (failed when cls != NULL), then the
 * evaluation and the sending of its notes, as the daemon does; returns the
 * number of notes sent. */
static size_t run_and_alert(cr_store *st, cr_alerts *a, const cr_config *cfg,
                            int64_t at, const char *cls) {
  int64_t id = 0;
  struct cr_exec_claim c = {0};
  cr__clock_set_fake(at);
  assert_int_equal(cr_store_exec_create(st, "w1", &id), 0);
  assert_int_equal(cr_store_exec_claim_one(st, id, "r1", MIN_MS, &c), 0);
  assert_int_equal(
      cr_store_exec_transition(st, id, c.epoch, "executing", NULL, NULL, NULL),
      0);
  assert_int_equal(
      cr_store_exec_transition(st, id, c.epoch, cls ? "failed" : "completed",
                               NULL, cls, cls ? "401 invalid key" : NULL),
      0);
  cr__free(c.work_id);
  struct cr_alert_note *notes = NULL;
  size_t n = 0;
  assert_int_equal(cr_alerts_on_execution_end(a, st, cfg, "w1", at, &notes, &n),
                   0);
  for (size_t i = 0; i < n; i++) {
    char err[256] = "";
    int rc = cr_alert_send(&notes[i], cfg->host.account_id, err, sizeof err);
    if (rc != 0)
      fail_msg("send: %s", err);
  }
  cr_alert_note_free_list(notes, n);
  return n;
}

static void test_error_rate_mail(void **state) {
  NEED_SERVER(state);
  struct srv *s = *state;
  char text[2048];
  snprintf(text, sizeof text,
           "authorizations:\n"
           "  - {id: a1, provider: cfgtest, method: api_key, credentials: "
           "{k: v}}\n"
           "works:\n"
           "  - {id: w1, name: Nightly CRM sync, provider: cfgtest,\n"
           "     authorization: a1, error_email_notifications: true}\n"
           "alerts:\n"
           "  - id: ops\n"
           "    channel:\n"
           "      email: {url: \"%s\", from: alerts@example.com,\n"
           "              to: [ops@example.com], starttls: never}\n"
           "    default: true\n",
           s->url);
  char *path = cr_test_write_file(s->dir, "main.yaml", text);
  cr_diags d = CR_DIAGS_INIT;
  cr_config *cfg = NULL;
  assert_int_equal(cr_config_load(path, &cfg, &d), 0);
  cr_store *st = open_store(s->dir);
  cr_alerts *a = NULL;
  assert_int_equal(cr_alerts_new(&a), 0);
  assert_int_equal(cr_alerts_load_state(a, st), 0);
  int64_t t = T0;
  int n = 0;

  /* 5 executions, 2 failures (configuration class): one e-mail at the
   * 5th. */
  const char *seq[] = {"config", NULL, "config", NULL, NULL};
  for (int i = 0; i < 5; i++)
    assert_int_equal(run_and_alert(st, a, cfg, t += MIN_MS, seq[i]),
                     i == 4 ? 1 : 0);
  char *box = mailbox(s, &n);
  assert_int_equal(n, 1);
  assert_non_null(strstr(box, "Nightly CRM sync"));
  assert_non_null(strstr(box, "40.0%"));
  assert_non_null(strstr(box, "2 failed of 5 executions"));
  assert_non_null(strstr(box, "24h"));
  assert_non_null(strstr(box, "401 invalid key"));
  assert_non_null(strstr(box, "2 of the failures are configuration errors"));
  free(box);

  /* More failures: the same breach, no new e-mail (even after a restart
   * that reloads the state). */
  assert_int_equal(run_and_alert(st, a, cfg, t += MIN_MS, "transient"), 0);
  cr_alerts *a2 = NULL;
  assert_int_equal(cr_alerts_new(&a2), 0);
  assert_int_equal(cr_alerts_load_state(a2, st), 0);
  assert_int_equal(run_and_alert(st, a2, cfg, t += MIN_MS, "transient"), 0);
  box = mailbox(s, &n);
  assert_int_equal(n, 1);
  free(box);

  /* 4 of 7 failed; successes until below 30%: 4/14 = 28.6% -> recovery. */
  size_t sent = 0;
  for (int i = 0; i < 7; i++)
    sent += run_and_alert(st, a2, cfg, t += MIN_MS, NULL);
  assert_int_equal(sent, 1);
  box = mailbox(s, &n);
  assert_int_equal(n, 2);
  assert_non_null(strstr(box, "recovered"));
  assert_non_null(strstr(box, "28.6%"));
  free(box);

  cr_alerts_free(a2);
  cr_alerts_free(a);
  cr_store_close(st);
  cr_config_free(cfg);
  cr_diags_free(&d);
  free(path);
  cr__clock_set_fake(0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_error_rate_mail, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
