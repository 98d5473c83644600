/* api_fixture.c: the REST API test fixture (see api_fixture.h). */
#include "api_fixture.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static void *run_daemon(void *arg) {
  cr_daemon_run(arg);
  return NULL;
}

void cr_api_fixture_start(struct cr_api_fixture *f, const char *config) {
  memset(f, 0, sizeof *f);
  f->dir = cr_test_mkdtemp("api");
  char *path = cr_test_write_file(f->dir, "c.yaml", config);
  cr_diags diags;
  cr_diags_init(&diags);
  struct cr_daemon_options o = {.config_path = path,
                                .serve_api = 1,
                                .api_listen = "127.0.0.1:0",
                                .worker_exe = CR_CONNRUN_BIN};
  int rc = cr_daemon_new(&o, &f->d, &diags);
  if (rc != 0) {
    for (size_t i = 0; i < diags.count; i++)
      fprintf(stderr, "%s\n", diags.items[i].message);
    fail_msg("cr_daemon_new: %d", rc);
  }
  cr_diags_free(&diags);
  free(path);
  assert_int_equal(pthread_create(&f->loop, NULL, run_daemon, f->d), 0);
  for (int i = 0; i < 500 && cr_daemon_api_port(f->d) == 0; i++)
    usleep(20 * 1000);
  f->port = cr_daemon_api_port(f->d);
  assert_true(f->port > 0);
  snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
}

void cr_api_fixture_stop(struct cr_api_fixture *f) {
  cr_daemon_stop(f->d);
  pthread_join(f->loop, NULL);
  cr_daemon_free(f->d);
  cr_test_rmtree(f->dir);
  free(f->dir);
  memset(f, 0, sizeof *f);
}

struct cr_api_fixture *cr_api_fixture_new(const char *config) {
  struct cr_api_fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  cr_api_fixture_start(f, config);
  return f;
}

int cr_api_fixture_teardown(void **state) {
  cr_api_fixture_stop(*state);
  free(*state);
  *state = NULL;
  return 0;
}

struct buf {
  char *p;
  size_t n;
};

static size_t on_data(char *d, size_t s, size_t n, void *ud) {
  struct buf *b = ud;
  char *g = realloc(b->p, b->n + s * n + 1);
  if (g == NULL)
    return 0;
  memcpy(g + b->n, d, s * n);
  b->p = g;
  b->n += s * n;
  b->p[b->n] = '\0';
  return s * n;
}

long cr_api_call(const struct cr_api_fixture *f, const char *token,
                 const char *method, const char *path, const char *body,
                 const char *const *headers, json_t **out, char **raw) {
  return cr_api_call_head(f, token, method, path, body, headers, out, raw,
                          NULL);
}

long cr_api_call_head(const struct cr_api_fixture *f, const char *token,
                      const char *method, const char *path, const char *body,
                      const char *const *headers, json_t **out, char **raw,
                      char **head) {
  CURL *c = curl_easy_init();
  char url[1024], auth[512];
  snprintf(url, sizeof url, "%s%s", f->base, path);
  struct curl_slist *h = NULL;
  if (token != NULL) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
  }
  if (body != NULL)
    h = curl_slist_append(h, "Content-Type: application/json");
  for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
    h = curl_slist_append(h, headers[i]);
  struct buf b = {0}, hb = {0};
  if (head != NULL) {
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  long status = 0;
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (out != NULL)
    *out = b.p ? json_loads(b.p, 0, NULL) : NULL;
  if (raw != NULL)
    *raw = b.p;
  else
    free(b.p);
  if (head != NULL)
    *head = hb.p;
  return status;
}
