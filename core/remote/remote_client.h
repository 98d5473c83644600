/* remote_client.h: a runner host's blocking HTTP client to its server.
 *
 * One client belongs to one thread: it holds one libcurl easy handle reused
 * for every request (keep-alive). Requests carry JSON and, when a token is
 * set, `Authorization: Bearer TOKEN`; answers are parsed as JSON.
 * cr_remote_call_retry() adds the retry policy of remote runners
 * (docs/design.md "Remote runners", Failures): transport errors, 429 and
 * 5xx are retried with exponential backoff and full jitter (100 ms doubling
 * to 10 s), bounded by a deadline and a stop flag.
 *
 * TLS: libcurl's default verification (system CA bundle), or ca_file; the
 * insecure option turns verification off (tests, never production).
 *
 * Secrets: the token is copied and wiped on free; it never appears in an
 * error message (messages hold libcurl's error text or the server's
 * `error.message`). */
#ifndef CR_REMOTE_CLIENT_H
#define CR_REMOTE_CLIENT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cr_remote_client cr_remote_client;

/* Backoff of retried calls: the first delay's ceiling and the cap. */
#define CR_REMOTE_RETRY_BASE_MS INT64_C(100)
#define CR_REMOTE_RETRY_MAX_MS INT64_C(10000)
/* Default per-request timeout (transfer included). */
#define CR_REMOTE_TIMEOUT_MS INT64_C(60000)

struct cr_remote_client_opts {
  const char *server;  /* base URL "https://host:port" (copied) */
  const char *token;   /* bearer token (copied, secret); NULL: none */
  const char *ca_file; /* PEM bundle to verify the server with (copied);
                          NULL: libcurl's default */
  int insecure;        /* 1: do not verify the server's certificate */
  int64_t timeout_ms;  /* per request; 0 = CR_REMOTE_TIMEOUT_MS */
  /* When non-zero, a request in flight is aborted within about a second
   * and retries stop (borrowed, may be NULL; must outlive the client). */
  const atomic_int *cancel;
};

/* An answer: HTTP status and the parsed body (NULL when empty or not
 * JSON). Release with cr_remote_answer_clear. */
struct cr_remote_answer {
  long status;
  json_t *body; /* owned reference */
};

/* Creates a client (o and its strings borrowed; strings copied). *out is
 * transferred (free with cr_remote_client_free). Errors: CR_EINVAL (no
 * server), CR_ENOMEM, CR_EHTTP (libcurl could not start). */
int cr_remote_client_new(const struct cr_remote_client_opts *o,
                         cr_remote_client **out);

/* Frees the client, wiping its token. NULL is a no-op. */
void cr_remote_client_free(cr_remote_client *c);

/* Replaces the bearer token (token copied; NULL removes it; the old one is
 * wiped). Returns 0 or CR_ENOMEM (the old token is kept). */
int cr_remote_client_set_token(cr_remote_client *c, const char *token);

/* One request, no retry: METHOD path (borrowed, e.g. "/v1/runners/r1/
 * checkin") with body (borrowed, may be NULL: no body), waiting at most
 * timeout_ms (0 = the client's). Returns 0 with *ans filled (any HTTP
 * status), CR_EHTTP on a transport failure (message in err, errlen bytes,
 * may be NULL/0), CR_ECANCELED when the cancel flag aborted it, CR_ENOMEM. */
int cr_remote_call(cr_remote_client *c, const char *method, const char *path,
                   const json_t *body, int64_t timeout_ms,
                   struct cr_remote_answer *ans, char *err, size_t errlen);

/* What an answer means for a runner: 0 for 2xx; CR_EPERM for 401 (unknown
 * or revoked runner: the host stops); CR_ESTALE for 409 with error code
 * "stale_epoch" (the lease is lost); CR_EHTTP for the answers worth
 * retrying (429, 5xx); CR_EINVAL for any other status. The server's
 * `error.message` (or the status) goes to err (errlen bytes, may be
 * NULL/0). ans borrowed. */
int cr_remote_answer_rc(const struct cr_remote_answer *ans, char *err,
                        size_t errlen);

/* Releases ans->body (ans borrowed; the struct can be reused). */
void cr_remote_answer_clear(struct cr_remote_answer *ans);

/* Bounds of cr_remote_call_retry. */
struct cr_remote_retry {
  int64_t deadline_ms;     /* absolute (cr__now_ms clock); 0 = none */
  const atomic_int *stop;  /* non-zero stops retrying (may be NULL) */
  int64_t base_ms, max_ms; /* 0 = CR_REMOTE_RETRY_BASE_MS / _MAX_MS */
  int64_t timeout_ms;      /* per request; 0 = the client's */
  /* Called before each wait for a retry (may be NULL): the attempt that
   * failed (1, 2...), the delay before the next, and why (borrowed, no
   * secret). */
  void (*on_retry)(void *ud, int attempt, int64_t delay_ms, const char *why);
  void *on_retry_ud;
};

/* cr_remote_call until the answer is final: transport errors, 429 and 5xx
 * are retried after a delay uniform in [0, min(max, base * 2^(n-1))] (full
 * jitter), never past r->deadline_ms. Returns 0 with *ans (a 2xx answer),
 * or CR_EPERM / CR_ESTALE / CR_EINVAL as cr_remote_answer_rc (with *ans
 * filled: release it), CR_ETIMEDOUT (the deadline passed while retrying),
 * CR_ECANCELED (r->stop or the client's cancel flag), CR_ENOMEM. Messages
 * go to err. r borrowed (NULL: no bound but the cancel flag). */
int cr_remote_call_retry(cr_remote_client *c, const struct cr_remote_retry *r,
                         const char *method, const char *path,
                         const json_t *body, struct cr_remote_answer *ans,
                         char *err, size_t errlen);

/* Number of requests the client sent (attempts, retries included). */
uint64_t cr_remote_client_requests(const cr_remote_client *c);

#endif
