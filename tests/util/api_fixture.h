/* api_fixture.h: a real daemon with its REST API on 127.0.0.1:0, run
 * in-process on a thread of its own, and a libcurl client for it. For the
 * API's integration tests. Memory is plain malloc/free. */
#ifndef CR_API_FIXTURE_H
#define CR_API_FIXTURE_H

#include <jansson.h>
#include <pthread.h>

#include "daemon/daemon.h"

struct cr_api_fixture {
  char *dir;
  cr_daemon *d;
  pthread_t loop;
  char base[64]; /* "http://127.0.0.1:PORT" */
  int port;
};

/* Writes config (the YAML text, borrowed) into a new temporary directory
 * and starts a daemon with the API on it. Fails the test on error. */
void cr_api_fixture_start(struct cr_api_fixture *f, const char *config);

/* Stops the daemon and removes the directory. */
void cr_api_fixture_stop(struct cr_api_fixture *f);

/* A new fixture (malloc'd) started with config (borrowed), for a cmocka
 * setup; cr_api_fixture_teardown (a cmocka teardown) stops and frees the
 * one in *state. */
struct cr_api_fixture *cr_api_fixture_new(const char *config);
int cr_api_fixture_teardown(void **state);

/* One request: method, path (borrowed), body (borrowed, may be NULL), with
 * "Authorization: Bearer token" when token is not NULL and extra headers
 * (NULL-terminated list, may be NULL). Returns the status; *out (may be
 * NULL) gets the parsed JSON body (a new reference, NULL when not JSON) and
 * *raw (may be NULL) the raw body (malloc'd). */
long cr_api_call(const struct cr_api_fixture *f, const char *token,
                 const char *method, const char *path, const char *body,
                 const char *const *headers, json_t **out, char **raw);

/* As cr_api_call; *head (may be NULL) also gets the response's header
 * lines (malloc'd). */
long cr_api_call_head(const struct cr_api_fixture *f, const char *token,
                      const char *method, const char *path, const char *body,
                      const char *const *headers, json_t **out, char **raw,
                      char **head);

#endif
