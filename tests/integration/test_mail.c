/* test_mail.c: cr_mail_send against a real SMTP server on loopback (python3
 * aiosmtpd with its Maildir handler): delivery to two recipients checked by
 * parsing the stored message with Python's email package (headers, RFC 2047
 * subject, quoted-printable body with dot and "From " lines), refused
 * connection, timeout, TLS-required failures, argument checks and
 * allocation failures. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "events/mail.h"

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

/* A server with AUTH LOGIN/PLAIN required (without TLS: test only), via
 * aiosmtpd's Controller: argv: port maildir login password. */
static const char auth_server_py[] =
    "import signal, sys, time\n"
    "from aiosmtpd.controller import Controller\n"
    "from aiosmtpd.handlers import Mailbox\n"
    "from aiosmtpd.smtp import AuthResult, LoginPassword\n"
    "def auth(server, session, envelope, mechanism, data):\n"
    "    ok = (isinstance(data, LoginPassword)\n"
    "          and data.login == sys.argv[3].encode()\n"
    "          and data.password == sys.argv[4].encode())\n"
    "    return AuthResult(success=ok, handled=False)\n"
    "c = Controller(Mailbox(sys.argv[2]), hostname='127.0.0.1',\n"
    "               port=int(sys.argv[1]), authenticator=auth,\n"
    "               auth_required=True, auth_require_tls=False)\n"
    "c.start()\n"
    "signal.signal(signal.SIGTERM, lambda *a: (c.stop(), sys.exit(0)))\n"
    "while True:\n"
    "    time.sleep(1)\n";

#define AUTH_USER "mailer"
#define AUTH_PASS "hunter2-secret-pw"

/* Starts the SMTP server child (server output goes to <dir>/server.log). */
static int start_server(void **state, int with_auth) {
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
  char listen_arg[32], port_arg[16], log[600];
  snprintf(listen_arg, sizeof listen_arg, "127.0.0.1:%d", port);
  snprintf(port_arg, sizeof port_arg, "%d", port);
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
    char *const auth[] = {PY,        "-c",       (char *)auth_server_py,
                          port_arg,  s->maildir, AUTH_USER,
                          AUTH_PASS, NULL};
    execv(PY, with_auth ? auth : plain);
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

static int setup(void **state) { return start_server(state, 0); }

static int setup_auth(void **state) { return start_server(state, 1); }

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

/* Paths of the delivered messages (Maildir new/); returns the count and the
 * first one in *first (caller frees). */
static int delivered(const struct srv *s, char **first) {
  char path[600];
  snprintf(path, sizeof path, "%s/new", s->maildir);
  DIR *d = opendir(path);
  int n = 0;
  if (first)
    *first = NULL;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.')
      continue;
    if (n++ == 0 && first) {
      size_t len = strlen(path) + strlen(e->d_name) + 2;
      *first = malloc(len);
      snprintf(*first, len, "%s/%s", path, e->d_name);
    }
  }
  if (d)
    closedir(d);
  return n;
}

/* Parses a stored message with Python's email package (independent RFC
 * 2047 / quoted-printable decoder) and returns its summary (caller frees). */
static char *py_parse(const char *file) {
  static const char script[] =
      "import sys, email, email.policy\n"
      "m = email.message_from_binary_file(open(sys.argv[1], 'rb'),"
      " policy=email.policy.default)\n"
      "for h in ('From', 'To', 'Subject', 'X-MailFrom', 'X-RcptTo',"
      " 'MIME-Version', 'Content-Type'):\n"
      "    sys.stdout.write(h + ': ' + str(m[h]) + '\\n')\n"
      "sys.stdout.write('Has-Date: %s\\n' % (m['Date'].datetime is not None))\n"
      "sys.stdout.write('Msg-Id: %s\\n' % m['Message-ID'].endswith("
      "'@example.com>'))\n"
      "sys.stdout.write('BODY<' + m.get_content() + '>\\n')\n";
  char *const argv[] = {PY, "-c", (char *)script, (char *)file, NULL};
  char *const env[] = {"PYTHONIOENCODING=utf-8", NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, env, &out), 0);
  return out;
}

static struct cr_mail base_mail(const struct srv *s) {
  static const char *const to[] = {"ops@example.com", "oncall@example.org"};
  struct cr_mail m = {0};
  m.url = s != NULL ? s->url : "smtp://127.0.0.1:1";
  m.from = "alerts@example.com";
  m.to = to;
  m.n_to = 2;
  m.subject = "Plain subject";
  m.body = "hello\n";
  m.timeout_ms = 10000;
  return m;
}

static void test_send_two_recipients(void **state) {
  NEED_SERVER(state);
  struct srv *s = *state;
  struct cr_mail m = base_mail(s);
  char err[256] = "";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), 0);
  assert_string_equal(err, "");
  char *file = NULL;
  assert_int_equal(delivered(s, &file), 1);
  char *raw = cr_test_read_file(file);
  assert_non_null(raw);
  assert_non_null(strstr(raw, "Subject: Plain subject"));
  assert_non_null(strstr(raw, "From: alerts@example.com"));
  char *out = py_parse(file);
  assert_non_null(strstr(out, "From: alerts@example.com\n"));
  assert_non_null(strstr(out, "To: ops@example.com, oncall@example.org\n"));
  assert_non_null(strstr(out, "Subject: Plain subject\n"));
  assert_non_null(strstr(out, "X-MailFrom: alerts@example.com\n"));
  assert_non_null(
      strstr(out, "X-RcptTo: ops@example.com, oncall@example.org\n"));
  assert_non_null(strstr(out, "MIME-Version: 1.0\n"));
  assert_non_null(strstr(out, "Content-Type: text/plain; charset=\"utf-8\"\n"));
  assert_non_null(strstr(out, "Has-Date: True\n"));
  assert_non_null(strstr(out, "Msg-Id: True\n"));
  assert_non_null(strstr(out, "BODY<hello\n>\n"));
  free(out);
  free(raw);
  free(file);
}

static void test_utf8_subject_and_tricky_body(void **state) {
  NEED_SERVER(state);
  struct srv *s = *state;
  struct cr_mail m = base_mail(s);
  const char *subject = "Alerte: disque plein à 95 % sur «db-01» — "
                        "ünïcödé ✓ and a fairly long tail to force folding";
  char longline[301];
  memset(longline, 'x', 300);
  longline[300] = '\0';
  longline[150] = '=';
  char body[1024];
  snprintf(body, sizeof body,
           "first\r\n.leading dot\n.\n..two dots\rFrom the start\n"
           "trailing space \ntab\there\nünïcödé ✓\n%s\n%.75s.after\n\nend",
           longline, longline);
  m.subject = subject;
  m.body = body;
  char err[256] = "";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), 0);
  char *file = NULL;
  assert_int_equal(delivered(s, &file), 1);
  /* No raw line longer than 78 characters, no raw non-ASCII byte. */
  char *raw = cr_test_read_file(file);
  assert_non_null(raw);
  size_t col = 0;
  for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
    assert_true(*p < 0x80);
    col = (*p == '\n') ? 0 : col + 1;
    if (col > 78)
      fprintf(stderr, "RAW:\n%s\n", raw);
    assert_true(col <= 78);
  }
  assert_null(strstr(raw, "\n.")); /* also after a soft line break */
  assert_null(strstr(raw, "\nFrom the"));
  free(raw);
  char *out = py_parse(file);
  char want[2048];
  snprintf(want, sizeof want, "Subject: %s\n", subject);
  assert_non_null(strstr(out, want));
  snprintf(want, sizeof want,
           "BODY<first\n.leading dot\n.\n..two dots\nFrom the start\n"
           "trailing space \ntab\there\nünïcödé ✓\n%s\n%.75s.after\n\nend\n>\n",
           longline, longline);
  assert_non_null(strstr(out, want));
  free(out);
  free(file);
}

static void test_connection_refused(void **state) {
  (void)state;
  char url[64];
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d", cr_test_free_port());
  struct cr_mail m = base_mail(NULL);
  m.url = url;
  m.username = "user";
  m.password = "hunter2-secret-pw";
  char err[256] = "";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_non_null(strstr(err, "smtp: "));
  assert_non_null(strstr(err, "onnect"));
  assert_null(strstr(err, "hunter2"));
  /* errbuf is optional. */
  assert_int_equal(cr_mail_send(&m, NULL, 0), CR_EHTTP);
}

/* The password inside libcurl's own error text (here: in the host name that
 * fails to resolve) is redacted; a password too short to redact safely
 * drops the detail instead. */
static void test_error_redacts_password(void **state) {
  (void)state;
  struct cr_mail m = base_mail(NULL);
  m.url = "smtp://hunter2-secret-pw.invalid:25";
  m.username = "user";
  m.password = "hunter2-secret-pw";
  m.timeout_ms = 5000;
  char err[256] = "";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_non_null(strstr(err, "smtp: "));
  assert_null(strstr(err, "hunter2"));
  assert_non_null(strstr(err, "[REDACTED]"));
  m.url = "smtp://qx.invalid:25";
  m.password = "qx";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_non_null(strstr(err, "smtp: "));
  assert_null(strstr(err, "qx"));
  /* Credentials in the URL are refused outright. */
  m.url = "smtp://user:hunter2-secret-pw@127.0.0.1:25";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  assert_null(strstr(err, "hunter2"));
}

static void test_timeout(void **state) {
  (void)state;
  int port = 0;
  int fd = cr_test_bind_any(&port, 1); /* accepts (backlog), never greets */
  char url[64];
  snprintf(url, sizeof url, "smtp://127.0.0.1:%d", port);
  struct cr_mail m = base_mail(NULL);
  m.url = url;
  m.timeout_ms = 300;
  char err[256] = "";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_non_null(strstr(err, "imeout"));
  assert_true(t1.tv_sec - t0.tv_sec < 5);
  close(fd);
}

static void test_tls_required(void **state) {
  NEED_SERVER(state);
  struct srv *s = *state;
  /* The server offers no STARTTLS: a login (default policy) or an explicit
   * requirement must fail before anything is sent. */
  struct cr_mail m = base_mail(s);
  m.username = "user";
  m.password = "hunter2-secret-pw";
  char err[256] = "";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_true(err[0] != '\0');
  assert_null(strstr(err, "hunter2"));
  m = base_mail(s);
  m.starttls = CR_MAIL_STARTTLS_REQUIRE;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_int_equal(delivered(s, NULL), 0);
  /* Explicit opt-out sends in clear text (the server offers no AUTH, so
   * libcurl skips the login). */
  m.starttls = CR_MAIL_STARTTLS_NEVER;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), 0);
  assert_int_equal(delivered(s, NULL), 1);
}

static void test_login(void **state) {
  NEED_SERVER(state);
  struct srv *s = *state;
  char err[256] = "";
  /* Without TLS a login needs the explicit opt-out: the default refuses to
   * send the password in clear text. */
  struct cr_mail m = base_mail(s);
  m.username = AUTH_USER;
  m.password = AUTH_PASS;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_null(strstr(err, "hunter2"));
  assert_int_equal(delivered(s, NULL), 0);
  m.starttls = CR_MAIL_STARTTLS_NEVER;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), 0);
  assert_int_equal(delivered(s, NULL), 1);
  /* Wrong password: login denied, the password is not in the error. */
  m.password = "hunter2-wrong-pw";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_non_null(strstr(err, "ogin denied"));
  assert_null(strstr(err, "hunter2"));
  /* No login at all: the server refuses MAIL with 530. */
  m = base_mail(s);
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EHTTP);
  assert_non_null(strstr(err, "530"));
  assert_int_equal(delivered(s, NULL), 1);
}

static void test_invalid(void **state) {
  (void)state;
  char err[256];
  struct cr_mail m = base_mail(NULL);
  m.subject = "hi\r\nBcc: victim@example.com";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  assert_non_null(strstr(err, "subject"));
  m.subject = "hi\nthere";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  m.subject = NULL;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);

  static const char *const bad_to[] = {"ok@example.com",
                                       "x@example.com>\r\nRCPT TO:<y@z"};
  m = base_mail(NULL);
  m.to = bad_to;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  m = base_mail(NULL);
  m.n_to = 0;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  m = base_mail(NULL);
  m.from = "a b@example.com";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  m = base_mail(NULL);
  m.url = "http://127.0.0.1:1";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  m = base_mail(NULL);
  m.starttls = 7;
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  m = base_mail(NULL);
  m.username = "u\r\nx";
  m.password = "hunter2-secret-pw";
  assert_int_equal(cr_mail_send(&m, err, sizeof err), CR_EINVAL);
  assert_null(strstr(err, "hunter2"));
  assert_int_equal(cr_mail_send(NULL, err, sizeof err), CR_EINVAL);
}

static void test_alloc_failures(void **state) {
  NEED_SERVER(state);
  struct srv *s = *state;
  struct cr_mail m = base_mail(s);
  m.subject = "ünïcödé subject";
  m.body = "body line\n.dot\n";
  cr_test_alloc_install();
  int done = 0;
  for (long n = 0; n < 1000 && !done; n++) {
    char err[256] = "";
    cr_test_alloc_fail_after(n);
    int rc = cr_mail_send(&m, err, sizeof err);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (failed) {
      assert_int_equal(rc, CR_ENOMEM);
      assert_true(err[0] != '\0');
      assert_int_equal(delivered(s, NULL), 0);
    } else {
      assert_int_equal(rc, 0);
      done = 1;
    }
  }
  assert_true(done);
  assert_int_equal(delivered(s, NULL), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_send_two_recipients, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_utf8_subject_and_tricky_body, setup,
                                      teardown),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_error_redacts_password),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test_setup_teardown(test_tls_required, setup, teardown),
      cmocka_unit_test_setup_teardown(test_login, setup_auth, teardown),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
