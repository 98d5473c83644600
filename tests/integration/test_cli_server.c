/* test_cli_server.c: the CLI against a real `connrun serve`, both as child
 * processes over loopback. `connrun auth delete ID --force --server URL`
 * disables the works using the authorization (refused, naming them,
 * without --force). `connrun events --follow --server URL` reads the
 * Server-Sent Events stream: events made through the API appear in its
 * output in order, once each; the server is stopped and started again on
 * the same port, and the follower reconnects and resumes after the last
 * event it printed (Last-Event-ID): an event stored while the server was
 * away comes first, then new ones; a SIGTERM ends it cleanly. */
#include "testutil.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_fixture.h"
#include "events/events.h"
#include "store/store.h"

#define TOKEN "follow-token-Pw71Kd38"

static char *config_text(int port) {
  static char buf[2048];
  snprintf(buf, sizeof buf,
           "host:\n"
           "  data_dir: ./data\n"
           "  plugin_dirs: [\"%s\"]\n"
           "  listen: 127.0.0.1:%d\n"
           "  health_check_interval: 1h\n"
           "  api_tokens: [{name: ops, token: \"" TOKEN "\", "
           "scopes: [read, write]}]\n"
           "authorizations:\n"
           "  - { id: files, provider: filedrop, method: none }\n",
           CR_PLUGIN_DIR, port);
  return buf;
}

static void create_auth(const struct cr_api_fixture *api, const char *id) {
  char body[256];
  snprintf(body, sizeof body,
           "{\"id\": \"%s\", \"provider\": \"filedrop\", \"method\": "
           "\"none\"}",
           id);
  assert_int_equal(cr_api_call(api, TOKEN, "POST", "/v1/authorizations", body,
                               NULL, NULL, NULL),
                   201);
}

/* Where the follower printed the event of authorization id (its JSON
 * line), checking it printed it exactly once. */
static long printed_at(const char *log, const char *id) {
  char want[128];
  snprintf(want, sizeof want, "\"subject_id\":\"%s\"", id);
  const char *at = strstr(log, want);
  if (at == NULL)
    fail_msg("the follower did not print %s:\n%s", id, log);
  if (strstr(at + 1, want) != NULL)
    fail_msg("the follower printed %s twice:\n%s", id, log);
  return at - log;
}

/* An event stored while no server runs: only a stream resumed from the
 * last event printed (Last-Event-ID) has it; a new stream starts after the
 * newest event. */
static void store_event_while_away(const char *dir) {
  char *data = cr_test_join(dir, "data"), err[256];
  cr_store *s = NULL;
  assert_int_equal(cr_store_open(data, &s, err, sizeof err), 0);
  assert_int_equal(
      cr_event_emit(s, "auth", "fa-away", "created", "test", NULL, NULL), 0);
  cr_store_close(s);
  free(data);
}

/* A `connrun serve` on a port of its own in a new directory. */
struct server {
  char *dir, *cfg;
  int port;
  struct cr_test_proc proc;
  struct cr_api_fixture api; /* its address, for cr_api_call */
};

static void server_start(struct server *sv) {
  sv->dir = cr_test_mkdtemp("cli-server");
  sv->port = cr_test_free_port();
  sv->cfg = cr_test_write_file(sv->dir, "c.yaml", config_text(sv->port));
  sv->proc = cr_test_serve(sv->dir, sv->cfg, NULL, NULL);
  assert_int_equal(cr_test_serve_port(&sv->proc), sv->port);
  sv->api.port = sv->port;
  snprintf(sv->api.base, sizeof sv->api.base, "http://127.0.0.1:%d", sv->port);
}

static void server_stop(struct server *sv) {
  assert_int_equal(cr_test_proc_stop(&sv->proc), 0);
  cr_test_rmtree(sv->dir);
  free(sv->cfg);
  free(sv->dir);
}

static void test_auth_delete_force(void **state) {
  (void)state;
  struct server sv;
  server_start(&sv);
  create_auth(&sv.api, "gone");
  assert_int_equal(
      cr_api_call(&sv.api, TOKEN, "POST", "/v1/works",
                  "{\"id\": \"wg\", \"provider\": \"filedrop\", "
                  "\"authorization\": \"gone\", \"config\": {\"directory\": "
                  "\"/nonexistent/connrun-cli\", \"streams\": [{\"name\": "
                  "\"x\", \"pattern\": \"*.csv\"}]}}",
                  NULL, NULL, NULL),
      201);
  /* The server has reloaded with the work (the API answers first). */
  long seen = 0;
  for (int i = 0; i < 400 && seen != 200; i++) {
    seen = cr_api_call(&sv.api, TOKEN, "GET", "/v1/works/wg", NULL, NULL, NULL,
                       NULL);
    if (seen != 200)
      usleep(25 * 1000);
  }
  assert_int_equal(seen, 200);
  char *argv[] = {CR_CONNRUN_BIN, "auth",      "delete", "gone",
                  "--server",     sv.api.base, NULL,     NULL};
  char *env[] = {"CONNRUN_TOKEN=" TOKEN, NULL};
  char *out = NULL;
  assert_int_equal(cr_test_run(argv, env, &out), 1);
  assert_non_null(strstr(out, "is used by works wg"));
  free(out);
  argv[6] = "--force";
  assert_int_equal(cr_test_run(argv, env, &out), 0);
  assert_non_null(strstr(out, "authorization gone: deleted"));
  free(out);
  int disabled = 0;
  for (int i = 0; i < 400 && !disabled; i++) {
    json_t *w = NULL;
    assert_int_equal(cr_api_call(&sv.api, TOKEN, "GET", "/v1/works/wg", NULL,
                                 NULL, &w, NULL),
                     200);
    const char *st = json_string_value(json_object_get(w, "status"));
    disabled = st != NULL && !strcmp(st, "Disabled");
    json_decref(w);
    if (!disabled)
      usleep(25 * 1000);
  }
  assert_true(disabled);
  server_stop(&sv);
}

static void test_follow_stream(void **state) {
  (void)state;
  struct server sv;
  server_start(&sv);
  char *dir = sv.dir, *cfg = sv.cfg;
  int port = sv.port;
  struct cr_api_fixture api = sv.api;
  char *argv[] = {CR_CONNRUN_BIN, "events",         "--follow", "--server",
                  api.base,       "--subject-type", "auth",     "--verb",
                  "created",      "--json",         NULL};
  char *env[] = {"CONNRUN_TOKEN=" TOKEN, NULL};
  struct cr_test_proc follow = cr_test_spawn(dir, "follow.log", argv, env);
  /* Its first page has the configuration's authorization; then events
   * made while it follows. */
  assert_true(cr_test_wait_log(&follow, "\"subject_id\":\"files\"", 1));
  create_auth(&api, "fa-1");
  create_auth(&api, "fa-2");
  create_auth(&api, "fa-3");
  assert_true(cr_test_wait_log(&follow, "\"subject_id\":\"fa-3\"", 1));
  /* The server goes away and comes back on the same port; an event made
   * as soon as it is back reaches the follower once it reconnects. */
  assert_int_equal(cr_test_proc_stop(&sv.proc), 0);
  assert_true(cr_test_wait_log(&follow, "reconnecting in", 2));
  store_event_while_away(dir);
  char *again[] = {CR_CONNRUN_BIN, "serve", "-c", cfg, NULL};
  sv.proc = cr_test_spawn(dir, "serve-again.log", again, NULL);
  assert_int_equal(cr_test_serve_port(&sv.proc), port);
  create_auth(&api, "fa-4");
  assert_true(cr_test_wait_log(&follow, "\"subject_id\":\"fa-4\"", 1));
  char *log = cr_test_read_file(follow.log_path);
  long p0 = printed_at(log, "files"), p1 = printed_at(log, "fa-1"),
       p2 = printed_at(log, "fa-2"), p3 = printed_at(log, "fa-3"),
       away = printed_at(log, "fa-away"), p4 = printed_at(log, "fa-4");
  assert_true(p0 < p1 && p1 < p2 && p2 < p3 && p3 < away && away < p4);
  assert_non_null(strstr(log, "\"verb\":\"created\",\"actor\":\"ops\""));
  free(log);
  assert_int_equal(cr_test_proc_stop(&follow), 0);
  server_stop(&sv);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_auth_delete_force),
      cmocka_unit_test(test_follow_stream),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
