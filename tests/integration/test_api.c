/* test_api.c: the REST API through real HTTP on loopback against a real
 * daemon: tokens and scopes, the error statuses and their JSON bodies,
 * body limits (Content-Length and chunked), paging to the end, the event
 * stream (a new event within a second, resumed with Last-Event-ID), slow
 * clients that hold every connection slot, refusal of plain HTTP on a
 * non-loopback address, TLS, and /metrics checked by promtool. */
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_fixture.h"
#include "util/error.h"

#define READER "api-test-reader-1f"
#define WRITER "api-test-writer-2e"

static char *config(const char *extra_host, int n_auths) {
  static char buf[16384];
  int k = snprintf(buf, sizeof buf,
                   "host:\n  data_dir: ./data\n  plugin_dirs: [\"%s\"]\n"
                   "  health_check_interval: 1h\n"
                   "  runner: { isolation: inline }\n"
                   "  api_tokens:\n"
                   "    - {name: reader, token: " READER "}\n"
                   "    - {name: writer, token: " WRITER
                   ", scopes: [read, write]}\n%s"
                   "authorizations:\n",
                   CR_PLUGIN_DIR, extra_host);
  for (int i = 0; i < n_auths; i++)
    k += snprintf(buf + k, sizeof buf - (size_t)k,
                  "  - {id: a%02d, provider: example, method: api_key, "
                  "credentials: {api_key: \"%s\"}}\n",
                  i, i % 2 ? "revoked-key" : "test-api-key-0001");
  snprintf(buf + k, sizeof buf - (size_t)k,
           "works:\n  - {id: items, provider: example, authorization: a00, "
           "config: {streams: [items], count: 3}}\n");
  return buf;
}

static const char *code_of(const json_t *body) {
  return json_string_value(
      json_object_get(json_object_get(body, "error"), "code"));
}

static void expect(const struct cr_api_fixture *f, const char *token,
                   const char *method, const char *path, const char *body,
                   long status, const char *code) {
  json_t *out = NULL;
  long st = cr_api_call(f, token, method, path, body, NULL, &out, NULL);
  if (st != status || (code && (!code_of(out) || strcmp(code_of(out), code))))
    fail_msg("%s %s: %ld %s, want %ld %s", method, path, st,
             out ? json_dumps(out, JSON_COMPACT) : "(no JSON)", status,
             code ? code : "");
  json_decref(out);
}

static void test_tokens_and_errors(void **state) {
  (void)state;
  struct cr_api_fixture f;
  cr_api_fixture_start(&f, config("", 2));
  expect(&f, NULL, "GET", "/v1/works", NULL, 401, "unauthorized");
  expect(&f, "wrong-token", "GET", "/v1/works", NULL, 401, "unauthorized");
  expect(&f, READER, "POST", "/v1/works/items/runs", NULL, 403, "forbidden");
  expect(&f, READER, "GET", "/v1/works/items", NULL, 200, NULL);
  expect(&f, NULL, "GET", "/healthz", NULL, 200, NULL);
  expect(&f, READER, "GET", "/v1/nope", NULL, 404, "not_found");
  expect(&f, READER, "GET", "/v1/works/nope", NULL, 404, "not_found");
  expect(&f, READER, "PUT", "/v1/works/items", "{}", 405, "method_not_allowed");
  expect(&f, WRITER, "PATCH", "/v1/authorizations/a00", "{\"name\":", 400,
         "malformed_json");
  expect(&f, WRITER, "PATCH", "/v1/authorizations/a00",
         "{\"name\":\"x\",\"name\":\"y\"}", 400, "duplicate_key");
  expect(&f, WRITER, "PATCH", "/v1/authorizations/a00",
         "{\"name\":\"\xc3\x28\"}", 400, "invalid_utf8");
  char deep[300];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  deep[200] = '\0';
  char body[400];
  snprintf(body, sizeof body, "{\"name\":%s}", deep);
  expect(&f, WRITER, "PATCH", "/v1/authorizations/a00", body, 400, "too_deep");
  expect(&f, WRITER, "PATCH", "/v1/authorizations/a00", "{\"method\":\"x\"}",
         422, "not_editable");
  expect(&f, WRITER, "PATCH", "/v1/works/items", "{\"colour\":1}", 422,
         "unknown_field");
  /* A config-managed object names where it is declared. */
  json_t *out = NULL;
  assert_int_equal(cr_api_call(&f, WRITER, "PATCH", "/v1/authorizations/a00",
                               "{\"name\":\"x\"}", NULL, &out, NULL),
                   409);
  assert_non_null(strstr(json_string_value(json_object_get(
                             json_object_get(out, "error"), "message")),
                         "c.yaml:"));
  json_decref(out);
  /* 415: not JSON. */
  const char *form[] = {"Content-Type: text/plain", NULL};
  assert_int_equal(cr_api_call(&f, WRITER, "PATCH", "/v1/works/items", NULL,
                               form, &out, NULL),
                   415);
  json_decref(out);
  cr_api_fixture_stop(&f);
}

/* Sends a body of n bytes (chunked when chunked) and returns the status. */
static long post_big(const struct cr_api_fixture *f, size_t n, int chunked) {
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  big[n] = '\0';
  CURL *c = curl_easy_init();
  char url[256];
  snprintf(url, sizeof url, "%s/v1/authorizations/a00", f->base);
  struct curl_slist *h =
      curl_slist_append(NULL, "Authorization: Bearer " WRITER);
  h = curl_slist_append(h, "Content-Type: application/json");
  if (chunked)
    h = curl_slist_append(h, "Transfer-Encoding: chunked");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, big);
  if (!chunked)
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)n);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
  long st = 0;
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  fclose(devnull);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  free(big);
  return st;
}

static void test_body_limit(void **state) {
  (void)state;
  struct cr_api_fixture f;
  cr_api_fixture_start(&f, config("  api: {max_body_bytes: 4096}\n", 1));
  assert_int_equal(post_big(&f, 5000, 0), 413);
  assert_int_equal(post_big(&f, 5000, 1), 413);
  /* Within the limit it gets to the handler (which refuses the change of a
   * config-managed authorization). */
  assert_int_equal(post_big(&f, 1000, 0), 409);
  cr_api_fixture_stop(&f);
}

static void test_paging_to_the_end(void **state) {
  (void)state;
  struct cr_api_fixture f;
  cr_api_fixture_start(&f, config("", 30));
  char path[512] = "/v1/authorizations?limit=7";
  int seen[30] = {0}, total = 0;
  for (int page = 0; page < 20 && path[0]; page++) {
    json_t *out = NULL;
    assert_int_equal(
        cr_api_call(&f, READER, "GET", path, NULL, NULL, &out, NULL), 200);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(out, "items"), i, a) {
      int n = atoi(json_string_value(json_object_get(a, "id")) + 1);
      assert_true(n >= 0 && n < 30);
      assert_int_equal(seen[n]++, 0); /* never twice */
      total++;
    }
    const char *next = json_string_value(json_object_get(out, "next"));
    snprintf(path, sizeof path, "%s", next ? next : "");
    json_decref(out);
  }
  assert_int_equal(total, 30);
  cr_api_fixture_stop(&f);
}

/* ---- The event stream ---- */

struct stream {
  char buf[65536];
  size_t n;
};

static size_t on_stream(char *d, size_t s, size_t n, void *ud) {
  struct stream *st = ud;
  size_t k = s * n;
  if (st->n + k >= sizeof st->buf)
    k = sizeof st->buf - st->n - 1;
  memcpy(st->buf + st->n, d, k);
  st->n += k;
  st->buf[st->n] = '\0';
  return s * n;
}

/* Reads the stream for ms milliseconds (from Last-Event-ID last when >0). */
static void read_stream(const struct cr_api_fixture *f, long last, long ms,
                        struct stream *st) {
  CURL *c = curl_easy_init();
  char url[256], lei[64];
  snprintf(url, sizeof url, "%s/v1/events/stream?subject_type=work", f->base);
  struct curl_slist *h =
      curl_slist_append(NULL, "Authorization: Bearer " READER);
  if (last > 0) {
    snprintf(lei, sizeof lei, "Last-Event-ID: %ld", last);
    h = curl_slist_append(h, lei);
  }
  memset(st, 0, sizeof *st);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, st);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_perform(c); /* ends by its timeout */
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
}

struct trigger {
  const struct cr_api_fixture *f;
};

static void *run_soon(void *arg) {
  const struct cr_api_fixture *f = arg;
  usleep(300 * 1000);
  cr_api_call(f, WRITER, "POST", "/v1/works/items/runs", NULL, NULL, NULL,
              NULL);
  return NULL;
}

static void test_event_stream(void **state) {
  (void)state;
  struct cr_api_fixture f;
  cr_api_fixture_start(&f, config("", 1));
  /* Let the start-up run end first, then stream while a run is asked for:
   * its events arrive within the second the stream is open. */
  usleep(500 * 1000);
  pthread_t t;
  pthread_create(&t, NULL, run_soon, &f);
  struct stream st;
  read_stream(&f, 0, 1300, &st);
  pthread_join(t, NULL);
  assert_non_null(strstr(st.buf, "event: updated"));
  const char *id = strstr(st.buf, "\nid: ");
  assert_non_null(id);
  long first = atol(id + 5);
  /* Resumed after the first event: it is not sent again, the later are. */
  struct stream again;
  read_stream(&f, first, 800, &again);
  char mark[40];
  snprintf(mark, sizeof mark, "id: %ld\n", first);
  assert_null(strstr(again.buf, mark));
  assert_non_null(strstr(again.buf, "id: "));
  cr_api_fixture_stop(&f);
}

/* ---- Slow clients ---- */

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void test_slow_clients(void **state) {
  (void)state;
  struct cr_api_fixture f;
  cr_api_fixture_start(&f,
                       config("  api: {max_connections: 8, timeout: 2s}\n", 1));
  int fds[8];
  for (int i = 0; i < 8; i++) { /* half a request each, then nothing */
    fds[i] = connect_port(f.port);
    assert_true(fds[i] >= 0);
    assert_true(write(fds[i], "GET /healthz HTTP/1.1\r\nHo", 25) == 25);
  }
  /* Every slot is held; after the idle timeout frees them a well-behaved
   * client is answered (bounded: at most ~10 s). */
  long st = 0;
  for (int i = 0; i < 50 && st != 200; i++) {
    usleep(200 * 1000);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", f.base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    if (curl_easy_perform(c) == CURLE_OK)
      curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    fclose(devnull);
    curl_easy_cleanup(c);
  }
  assert_int_equal(st, 200);
  for (int i = 0; i < 8; i++)
    close(fds[i]);
  cr_api_fixture_stop(&f);
}

/* ---- Addresses and TLS ---- */

static void test_insecure_listen_refused(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("api-insecure");
  char *path = cr_test_write_file(dir, "c.yaml", config("", 1));
  cr_diags d;
  cr_diags_init(&d);
  cr_daemon *dm = NULL;
  struct cr_daemon_options o = {.config_path = path,
                                .serve_api = 1,
                                .api_listen = "0.0.0.0:0",
                                .worker_exe = CR_CONNRUN_BIN};
  assert_int_equal(cr_daemon_new(&o, &dm, &d), 0);
  assert_int_equal(cr_daemon_run(dm), CR_EINVAL); /* refused, said in log */
  cr_daemon_free(dm);
  cr_diags_free(&d);
  free(path);
  /* With allow_insecure_http it listens. */
  struct cr_api_fixture f;
  cr_api_fixture_start(&f, config("  allow_insecure_http: true\n", 1));
  expect(&f, NULL, "GET", "/healthz", NULL, 200, NULL);
  cr_api_fixture_stop(&f);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_tls(void **state) {
  (void)state;
  char *dir = cr_test_mkdtemp("api-tls");
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
           "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "
           "%s/key.pem -out %s/cert.pem >/dev/null 2>&1",
           dir, dir);
  if (system(cmd) != 0)
    fail_msg("openssl could not make a certificate");
  char host[1024];
  snprintf(host, sizeof host,
           "  tls: {cert: \"%s/cert.pem\", key: \"%s/key.pem\"}\n", dir, dir);
  struct cr_api_fixture f;
  cr_api_fixture_start(&f, config(host, 1));
  CURL *c = curl_easy_init();
  char url[128], cafile[1100];
  snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", f.port);
  snprintf(cafile, sizeof cafile, "%s/cert.pem", dir);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
  FILE *devnull = fopen("/dev/null", "w");
  curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
  long st = 0;
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
  assert_int_equal(st, 200);
  fclose(devnull);
  curl_easy_cleanup(c);
  cr_api_fixture_stop(&f);
  cr_test_rmtree(dir);
  free(dir);
}

static void test_metrics_promtool(void **state) {
  (void)state;
  struct cr_api_fixture f;
  cr_api_fixture_start(&f, config("", 3));
  /* One execution, ended, so every family has a sample. */
  cr_api_call(&f, WRITER, "POST", "/v1/works/items/runs", NULL, NULL, NULL,
              NULL);
  for (int i = 0; i < 100; i++) { /* at most 10 s */
    json_t *w = NULL;
    cr_api_call(&f, READER, "GET", "/v1/works/items", NULL, NULL, &w, NULL);
    const char *st = json_string_value(
        json_object_get(json_object_get(w, "last_execution"), "state"));
    int ended = st && (!strcmp(st, "Completed") || !strcmp(st, "Failed"));
    json_decref(w);
    if (ended)
      break;
    usleep(100 * 1000);
  }
  char *text = NULL;
  assert_int_equal(
      cr_api_call(&f, READER, "GET", "/metrics", NULL, NULL, NULL, &text), 200);
  const char *families[] = {"connrun_executions{",
                            "connrun_authorization_health{",
                            "connrun_api_requests_total{",
                            "connrun_api_request_duration_seconds_bucket{",
                            "connrun_runner_slots{",
                            "connrun_events{"};
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
    if (strstr(text, families[i]) == NULL)
      fail_msg("/metrics lacks %s", families[i]);
  /* Bounded labels: no execution id, no raw URL of a request. */
  assert_null(strstr(text, "/v1/works/items"));
  char *path = cr_test_write_file(f.dir, "metrics.txt", text);
  char cmd[4400];
  snprintf(cmd, sizeof cmd,
           "command -v promtool >/dev/null && promtool "
           "check metrics < %s",
           path);
  int rc = system(cmd);
  if (rc != 0) /* promtool comes with Debian's prometheus (scripts/deps.sh) */
    fail_msg("promtool check metrics failed (%d)", rc);
  free(path);
  free(text);
  cr_api_fixture_stop(&f);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tokens_and_errors),
      cmocka_unit_test(test_body_limit),
      cmocka_unit_test(test_paging_to_the_end),
      cmocka_unit_test(test_event_stream),
      cmocka_unit_test(test_slow_clients),
      cmocka_unit_test(test_insecure_listen_refused),
      cmocka_unit_test(test_tls),
      cmocka_unit_test(test_metrics_promtool),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
