/* api_client.c: the CLI's HTTP client for `--server` (see api_client.h),
 * one request on a core/remote client each. */
#include "api_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "remote/remote_client.h"
#include "util/error.h"

const char *cr_cli_server(const char *server_flag) {
  if (server_flag != NULL)
    return server_flag;
  const char *env = getenv("CONNRUN_SERVER");
  return env != NULL && env[0] != '\0' ? env : NULL;
}

char *cr_cli_url(const char *server, const char *path) {
  size_t n = strlen(server);
  char *url = malloc(n + strlen(path) + 1);
  if (url == NULL)
    return NULL;
  memcpy(url, server, n);
  while (n > 0 && url[n - 1] == '/')
    n--;
  strcpy(url + n, path);
  return url;
}

struct curl_slist *cr_cli_auth_header(struct curl_slist *h, char **auth) {
  const char *tok = getenv("CONNRUN_TOKEN");
  *auth = NULL;
  if (tok == NULL || tok[0] == '\0')
    return h;
  *auth = malloc(strlen(tok) + 32);
  if (*auth == NULL)
    return h;
  sprintf(*auth, "Authorization: Bearer %s", tok);
  return curl_slist_append(h, *auth);
}

void cr_cli_auth_free(char *auth) {
  if (auth != NULL) {
    memset(auth, 0, strlen(auth));
    free(auth);
  }
}

int cr_cli_call(const char *cmd, const char *server, const char *method,
                const char *path, const json_t *body, long *status,
                json_t **out) {
  *out = NULL;
  *status = 0;
  const char *tok = getenv("CONNRUN_TOKEN");
  struct cr_remote_client_opts o = {.server = server,
                                    .token = tok && tok[0] ? tok : NULL,
                                    .timeout_ms = 120000};
  cr_remote_client *c = NULL;
  if (cr_remote_client_new(&o, &c) != 0) {
    cr_cli_errorf("%s: cannot start an HTTP client", cmd);
    return -1;
  }
  struct cr_remote_answer a = {0};
  char err[256] = "";
  int rc = cr_remote_call(c, method, path, body, 0, &a, err, sizeof err);
  cr_remote_client_free(c);
  if (rc != 0) {
    cr_cli_errorf("%s: cannot reach %s: %s", cmd, server,
                  err[0] ? err : cr_strerror(rc));
    return -1;
  }
  *status = a.status;
  *out = a.body;
  return 0;
}

int cr_cli_api_error(const char *cmd, long status, const json_t *body) {
  const json_t *e = json_object_get(body, "error");
  const char *msg = json_string_value(json_object_get(e, "message"));
  const char *code = json_string_value(json_object_get(e, "code"));
  if (msg != NULL)
    cr_cli_errorf("%s: %s (%s, HTTP %ld)", cmd, msg, code ? code : "error",
                  status);
  else
    cr_cli_errorf("%s: the server answered HTTP %ld", cmd, status);
  if (status == 401 && getenv("CONNRUN_TOKEN") == NULL)
    cr_cli_errorf("%s: set CONNRUN_TOKEN to an API token", cmd);
  return status >= 400 && status < 500 ? CR_EXIT_INVALID : CR_EXIT_RUNTIME;
}

int cr_cli_get_all(const char *cmd, const char *server, const char *path,
                   json_t **items) {
  *items = json_array();
  char *next = strdup(path);
  for (int page = 0; next != NULL && page < 10000; page++) {
    long status = 0;
    json_t *body = NULL;
    if (cr_cli_call(cmd, server, "GET", next, NULL, &status, &body) != 0) {
      free(next);
      return CR_EXIT_RUNTIME;
    }
    free(next);
    next = NULL;
    if (status != 200) {
      int ex = cr_cli_api_error(cmd, status, body);
      json_decref(body);
      return ex;
    }
    json_array_extend(*items, json_object_get(body, "items"));
    const char *n = json_string_value(json_object_get(body, "next"));
    if (n != NULL)
      next = strdup(n);
    json_decref(body);
  }
  free(next);
  return CR_EXIT_OK;
}
