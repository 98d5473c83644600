/* fuzz_api.c: libFuzzer target for the REST API's request router and JSON
 * body checks (core/api/api_routes.c, core/api/api_http.c). Build e.g.:
 *   clang -fsanitize=fuzzer,address -Icore -DCR_FUZZ_MAIN ... (link crcore)
 * The first input byte chooses the target:
 *   even: the router: the rest is "METHOD PATH"; properties: a match names
 *         a route of that method whose pattern matches, parameters are
 *         NUL-terminated inside the request's buffer and contain no '/';
 *         no match with a non-empty Allow only when the path exists;
 *   odd:  the body checks with Content-Type application/json; properties:
 *         success gives an object that re-encodes and re-parses to an equal
 *         value; failure gives a 4xx status with a code and a message.
 * tests/unit/test_api_fuzz.c includes this file and drives it with a
 * deterministic mini-fuzz loop in every test build (normal and ASan). */
#include "api/api_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_router(const uint8_t *data, size_t size) {
  char line[600];
  size_t n = size < sizeof line - 1 ? size : sizeof line - 1;
  memcpy(line, data, n);
  line[n] = '\0';
  char *sp = strchr(line, ' ');
  if (sp == NULL)
    return;
  *sp = '\0';
  struct cr__api_req r;
  memset(&r, 0, sizeof r);
  r.method = line;
  char allow[64];
  int i = cr__api_match(&r, sp + 1, allow, sizeof allow);
  if (i >= 0) {
    if ((size_t)i >= cr__api_n_routes)
      abort();
    const char *m = cr__api_routes[i].method;
    if (strcmp(m, line) != 0 &&
        !(strcmp(line, "HEAD") == 0 && strcmp(m, "GET") == 0))
      abort();
    for (size_t k = 0; k < CR_API_MAX_PARAMS && r.params[k]; k++) {
      if (r.params[k] < r.param_buf ||
          r.params[k] >= r.param_buf + sizeof r.param_buf ||
          strchr(r.params[k], '/') != NULL || r.params[k][0] == '\0')
        abort();
    }
  }
}

static void fuzz_body(const uint8_t *data, size_t size) {
  json_t *v = NULL;
  const char *code = NULL;
  char msg[512];
  int st = cr__api_parse_body("application/json", (const char *)data, size, &v,
                              &code, msg, sizeof msg);
  if (st == 0) {
    if (!json_is_object(v))
      abort();
    char *text = json_dumps(v, JSON_COMPACT);
    json_t *back = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (text != NULL && (back == NULL || !json_equal(v, back)))
      abort();
    json_decref(back);
    free(text);
    json_decref(v);
    return;
  }
  if (v != NULL || code == NULL || msg[0] == '\0' ||
      (st != 400 && st != 415 && st != 422 && st != 503))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  if (data[0] % 2 == 0)
    fuzz_router(data + 1, size - 1);
  else
    fuzz_body(data + 1, size - 1);
  return 0;
}
