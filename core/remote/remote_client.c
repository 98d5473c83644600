/* remote_client.c: one thread's HTTP client to the server of a runner host
 * (see remote_client.h): a reused libcurl easy handle, JSON in and out, and
 * the retry policy of remote runners. */
#include "remote/remote_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "exec/execution.h"
#include "plugin/host_api.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

/* Largest answer body kept (a claim list with configurations). */
#define MAX_BODY (16u << 20)

struct cr_remote_client {
  CURL *curl;
  char *server; /* without trailing '/' */
  char *auth;   /* "Authorization: Bearer TOKEN" (secret) or NULL */
  char *ca_file;
  int insecure;
  int64_t timeout_ms;
  const atomic_int *cancel;
  uint64_t requests;
  uint64_t rng; /* jitter state */
};

struct body {
  char *p;
  size_t n;
  int too_big;
};

static size_t on_data(char *d, size_t size, size_t nmemb, void *ud) {
  struct body *b = ud;
  size_t add = size * nmemb;
  if (b->n + add > MAX_BODY) {
    b->too_big = 1;
    return 0;
  }
  char *g = cr__realloc(b->p, b->n + add + 1);
  if (g == NULL)
    return 0;
  memcpy(g + b->n, d, add);
  b->p = g;
  b->n += add;
  b->p[b->n] = '\0';
  return add;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un) {
  (void)dt, (void)dn, (void)ut, (void)un;
  const atomic_int *cancel = ud;
  return cancel != NULL && atomic_load(cancel) != 0;
}

static void wipe_auth(cr_remote_client *c) {
  if (c->auth != NULL)
    cr__secret_wipe_free(c->auth, strlen(c->auth));
  c->auth = NULL;
}

int cr_remote_client_set_token(cr_remote_client *c, const char *token) {
  if (c == NULL)
    return CR_EINVAL;
  char *a = NULL;
  if (token != NULL) {
    size_t n = strlen(token) + sizeof "Authorization: Bearer ";
    if ((a = cr__malloc(n)) == NULL)
      return CR_ENOMEM;
    snprintf(a, n, "Authorization: Bearer %s", token);
  }
  wipe_auth(c);
  c->auth = a;
  return 0;
}

int cr_remote_client_new(const struct cr_remote_client_opts *o,
                         cr_remote_client **out) {
  if (o == NULL || out == NULL || o->server == NULL || o->server[0] == '\0')
    return CR_EINVAL;
  *out = NULL;
  if (cr_host_http_global_init() != 0)
    return CR_EHTTP;
  cr_remote_client *c = cr__calloc(1, sizeof *c);
  if (c == NULL)
    return CR_ENOMEM;
  c->server = cr__strdup(o->server);
  c->ca_file = o->ca_file ? cr__strdup(o->ca_file) : NULL;
  c->curl = curl_easy_init();
  int rc = c->server && (o->ca_file == NULL || c->ca_file) ? 0 : CR_ENOMEM;
  if (rc == 0 && c->curl == NULL)
    rc = CR_EHTTP;
  if (rc == 0)
    rc = cr_remote_client_set_token(c, o->token);
  if (rc != 0) {
    cr_remote_client_free(c);
    return rc;
  }
  size_t n = strlen(c->server);
  while (n > 0 && c->server[n - 1] == '/')
    c->server[--n] = '\0';
  c->insecure = o->insecure;
  c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : CR_REMOTE_TIMEOUT_MS;
  c->cancel = o->cancel;
  c->rng = (uint64_t)cr__now_ms() ^ (uint64_t)(uintptr_t)c;
  *out = c;
  return 0;
}

void cr_remote_client_free(cr_remote_client *c) {
  if (c == NULL)
    return;
  if (c->curl != NULL)
    curl_easy_cleanup(c->curl);
  wipe_auth(c);
  cr__free(c->server);
  cr__free(c->ca_file);
  cr__free(c);
}

uint64_t cr_remote_client_requests(const cr_remote_client *c) {
  return c ? c->requests : 0;
}

void cr_remote_answer_clear(struct cr_remote_answer *ans) {
  if (ans == NULL)
    return;
  json_decref(ans->body);
  ans->body = NULL;
  ans->status = 0;
}

static void seterr(char *err, size_t errlen, const char *fmt, const char *a,
                   long n) {
  if (err != NULL && errlen > 0)
    snprintf(err, errlen, fmt, a, n);
}

/* Sets the options of one request on the reused handle. */
static void setup(cr_remote_client *c, const char *method, const char *url,
                  const char *text, struct curl_slist *h, struct body *b,
                  int64_t timeout_ms) {
  CURL *e = c->curl;
  curl_easy_reset(e);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (text != NULL)
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, text);
  else if (strcmp(method, "GET") == 0)
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)c->cancel);
  if (c->ca_file != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
  if (c->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

static struct curl_slist *headers(const cr_remote_client *c, int json) {
  struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
  if (h != NULL && json)
    h = curl_slist_append(h, "Content-Type: application/json");
  if (h != NULL && c->auth != NULL) {
    struct curl_slist *h2 = curl_slist_append(h, c->auth);
    if (h2 == NULL)
      curl_slist_free_all(h);
    h = h2;
  }
  return h;
}

/* Frees the header list; the copy of the token in it is wiped first. */
static void free_headers(struct curl_slist *h) {
  for (struct curl_slist *i = h; i != NULL; i = i->next)
    cr__secret_wipe(i->data, strlen(i->data));
  curl_slist_free_all(h);
}

int cr_remote_call(cr_remote_client *c, const char *method, const char *path,
                   const json_t *body, int64_t timeout_ms,
                   struct cr_remote_answer *ans, char *err, size_t errlen) {
  if (c == NULL || method == NULL || path == NULL || ans == NULL)
    return CR_EINVAL;
  ans->status = 0;
  ans->body = NULL;
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  size_t ulen = strlen(c->server) + strlen(path) + 1;
  char *url = cr__malloc(ulen);
  struct curl_slist *h = headers(c, text != NULL);
  struct body b = {0};
  int rc = url && h && (body == NULL || text) ? 0 : CR_ENOMEM;
  if (rc == 0) {
    snprintf(url, ulen, "%s%s", c->server, path);
    setup(c, method, url, text, h, &b,
          timeout_ms > 0 ? timeout_ms : c->timeout_ms);
    c->requests++;
    CURLcode cc = curl_easy_perform(c->curl);
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
      rc = CR_ECANCELED;
      seterr(err, errlen, "%s", "cancelled", 0);
    } else if (cc != CURLE_OK) {
      rc = b.too_big ? CR_ELIMIT : CR_EHTTP;
      seterr(err, errlen, "%s",
             b.too_big ? "answer too large" : curl_easy_strerror(cc), 0);
    } else {
      curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &ans->status);
      ans->body = b.n ? json_loadb(b.p, b.n, 0, NULL) : NULL;
    }
  }
  curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
  free_headers(h);
  if (text != NULL) {
    cr__secret_wipe(text, strlen(text)); /* may hold credentials */
    free(text);
  }
  cr__free(url);
  if (b.p != NULL)
    cr__secret_wipe_free(b.p, b.n); /* may hold credentials */
  return rc;
}

int cr_remote_answer_rc(const struct cr_remote_answer *ans, char *err,
                        size_t errlen) {
  if (ans == NULL)
    return CR_EINVAL;
  long st = ans->status;
  if (st >= 200 && st < 300)
    return 0;
  const json_t *e = json_object_get(ans->body, "error");
  const char *code = json_string_value(json_object_get(e, "code"));
  const char *msg = json_string_value(json_object_get(e, "message"));
  if (msg != NULL)
    seterr(err, errlen, "%s (HTTP %ld)", msg, st);
  else
    seterr(err, errlen, "%sthe server answered HTTP %ld", "", st);
  if (st == 401)
    return CR_EPERM;
  if (st == 409 && code != NULL && strcmp(code, "stale_epoch") == 0)
    return CR_ESTALE;
  if (st == 429 || st >= 500)
    return CR_EHTTP;
  return CR_EINVAL;
}

static int stopped(const cr_remote_client *c, const struct cr_remote_retry *r) {
  return (r && r->stop && atomic_load(r->stop)) ||
         (c->cancel && atomic_load(c->cancel));
}

/* Sleeps ms in slices, waking for the stop flags. Returns 0, or
 * CR_ECANCELED when a flag was set. */
static int nap(const cr_remote_client *c, const struct cr_remote_retry *r,
               int64_t ms) {
  int64_t end = cr__now_ms() + ms;
  for (int64_t now = cr__now_ms(); now < end; now = cr__now_ms()) {
    if (stopped(c, r))
      return CR_ECANCELED;
    cr__sleep_ms(end - now < 50 ? end - now : 50);
  }
  return stopped(c, r) ? CR_ECANCELED : 0;
}

int cr_remote_call_retry(cr_remote_client *c, const struct cr_remote_retry *r,
                         const char *method, const char *path,
                         const json_t *body, struct cr_remote_answer *ans,
                         char *err, size_t errlen) {
  int64_t base = r && r->base_ms > 0 ? r->base_ms : CR_REMOTE_RETRY_BASE_MS;
  int64_t max = r && r->max_ms > 0 ? r->max_ms : CR_REMOTE_RETRY_MAX_MS;
  int64_t deadline = r ? r->deadline_ms : 0;
  for (int attempt = 1;; attempt++) {
    if (c == NULL || stopped(c, r))
      return c == NULL ? CR_EINVAL : CR_ECANCELED;
    int rc = cr_remote_call(c, method, path, body, r ? r->timeout_ms : 0, ans,
                            err, errlen);
    if (rc == 0)
      rc = cr_remote_answer_rc(ans, err, errlen);
    if (rc != CR_EHTTP)
      return rc;
    cr_remote_answer_clear(ans);
    int64_t d = cr_exec_backoff_ms(attempt, base, max, &c->rng);
    if (deadline > 0 && cr__now_ms() + d >= deadline)
      return CR_ETIMEDOUT;
    if (r != NULL && r->on_retry != NULL)
      r->on_retry(r->on_retry_ud, attempt, d, err ? err : "");
    if (nap(c, r, d) != 0)
      return CR_ECANCELED;
  }
}
