/* api_int.h: the REST API server's internals, shared by api.c (the server,
 * requests, authentication, routing), api_http.c (responses, errors, query
 * parameters, bodies), api_routes.c (the route table) and the resource files
 * api_<resource>.c (thin handlers over control/). */
#ifndef CR_API_INT_H
#define CR_API_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "api/api.h"
#include "store/store.h"

#define CR_API_MAX_PARAMS 4

/* How long consecutive GETs may share a read snapshot when nothing in this
 * process committed meanwhile (cr_store_read_keep). */
#define CR_API_SNAPSHOT_MS 10
#define CR_API_ROUTE_SEGMENTS 8

struct cr__api_stats; /* api_prom.c */
struct cr__api_limit; /* api_limit.c */

/* A pool of store connections: one per server thread, one for the batch
 * thread, one shared by the watchers and slow routes. */
struct cr__store_pool {
  uv_mutex_t mu;
  uv_cond_t cv;
  cr_store **free;
  size_t n_free, n_all;
  cr_store **all;
};

struct cr_api {
  struct MHD_Daemon *mhd;
  struct cr_api_options o;
  char *data_dir, *runner_id;
  int port;
  int64_t max_body;
  struct cr__store_pool pool;
  struct cr__api_stats *stats;
  /* Server-Sent Events: suspended streams waiting for new events. */
  uv_mutex_t sse_mu;
  struct cr__sse *sse_waiting;
  uv_thread_t sse_thread;
  uv_cond_t sse_cv;
  int sse_quit, sse_started;
  atomic_int_fast64_t last_event_id;
  char *tls_cert, *tls_key; /* PEM texts (wiped on free) */
  /* Long-poll claims of remote runners waiting (api_runners.c). */
  uv_mutex_t claim_mu;
  uv_cond_t claim_cv;
  uv_thread_t claim_thread;
  struct cr__claim_poll *claim_waiting;
  atomic_int claim_quit;
  int claim_signalled, claim_started;
  atomic_uint claim_gen; /* counts the claim signals */
  /* Batched routes: requests waiting for the next group commit
   * (api_batch.c). */
  uv_mutex_t batch_mu;
  uv_cond_t batch_cv;
  uv_thread_t batch_thread;
  struct cr__api_batch_item *batch_head, *batch_tail;
  int batch_quit, batch_started;
  /* Slow routes run on threads of their own (see api.c). */
  atomic_int slow_running;
  atomic_int cancel;           /* set on stop: slow handlers give up */
  struct cr__api_limit *limit; /* the rate limiter's buckets */
};

/* Something the batch thread runs in its group commit (api_batch.c). */
struct cr__api_batch_item {
  struct cr__api_batch_item *next;
  /* Runs inside the batch's transaction on s, in a savepoint of its own:
   * returns 0 to keep its writes, non-zero to have them undone (its answer
   * already says why). */
  int (*run)(struct cr__api_batch_item *it, cr_store *s);
  /* After the commit: lost is 0 when what run decided stands, else the
   * error that undid writes run meant to keep (answer: retry). Answers
   * and resumes the connection (or leaves it suspended, waiting). */
  void (*done)(struct cr__api_batch_item *it, int lost);
  int lost, own; /* the batch's scratch */
};

/* One request, from its first byte to its completion. */
struct cr__api_req {
  cr_api *api;
  struct MHD_Connection *conn;
  const char *method, *url; /* borrowed from libmicrohttpd */
  const char *params[CR_API_MAX_PARAMS];
  /* the parameters' text: CR_API_MAX_PARAMS ids of at most 128 bytes; kept
   * under 1 KiB so that the struct stays a small allocation for malloc */
  char param_buf[CR_API_MAX_PARAMS * 130];
  int route;  /* index in the route table, -1 unknown */
  char *body; /* request body (NUL-terminated), or NULL */
  size_t body_len;
  int too_large; /* the body passed the limit */
  int answered;
  const char *actor; /* the token's name */
  int scopes;
  int64_t started_ns;
  /* handler scratch */
  cr_store *store;
  const cr_config *cfg;
  void *cfg_handle;
  const cr_plugin_host *plugins; /* held while cfg_handle is */
  cr_plugin_host *plugins_held;
  struct cr__sse *sse; /* an event stream this request became */
  /* a slow or batched route's answer, prepared on another thread */
  struct MHD_Response *prepared;
  int prepared_status, slow_started;
  struct cr__api_batch_item batch; /* a batched route's */
  struct cr__api_res *batch_res;   /* its answer, until sent */
  cr_store *txn_store;             /* set: the handler runs on it (a batch's) */
};

/* What a handler answers. */
struct cr__api_res {
  int status;
  json_t *body; /* owned; NULL for no body */
  char *text;   /* owned raw body (cr__malloc), when body is NULL */
  size_t text_len;
  const char *content_type; /* NULL: application/json */
  char etag[40];
  char location[300];
  char allow[64];
  int retry_after;
  struct MHD_Response *raw; /* a prepared response (streams) */
};

typedef void (*cr__api_handler)(struct cr__api_req *r, struct cr__api_res *res);

/* One route: method, path pattern ("/v1/works/{id}"), scope needed (0: no
 * token needed), handler, and the OpenAPI operationId that documents it. */
struct cr__api_route {
  const char *method;
  const char *pattern;
  int scope;
  cr__api_handler fn;
  const char *op_id;
  int mode; /* CR_API_INLINE, CR_API_SLOW or CR_API_BATCH */
};

/* How a route runs. INLINE: on the server thread that read it. SLOW: it may
 * block (a provider call), so it runs on a thread of its own while the
 * connection is suspended. BATCH: a write that commits with the others
 * waiting at the same time, in one transaction (api_batch.c). */
enum { CR_API_INLINE = 0, CR_API_SLOW = 1, CR_API_BATCH = 2 };

/* api_routes.c: the table and its size. */
extern const struct cr__api_route cr__api_routes[];
extern const size_t cr__api_n_routes;

/* Matches method + path to a route: returns its index, or -1 with *allow
 * set ("GET, PATCH") when the path exists with other methods (allow empty
 * when the path is unknown). Path parameters go to r->params. */
int cr__api_match(struct cr__api_req *r, const char *path, char *allow,
                  size_t allow_len);

/* ---- api_http.c: responses ---- */
void cr__api_json(struct cr__api_res *res, int status, json_t *body);
void cr__api_error(struct cr__api_res *res, int status, const char *code,
                   const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The error of a failed store/control call rc (404 for CR_ENOENT, 409 for
 * CR_EEXIST / CR_ESTATE, 503 for CR_EBUSY, 500 otherwise). */
void cr__api_error_rc(struct cr__api_res *res, int rc, const char *what);
/* Query parameter name, or NULL. */
const char *cr__api_query(struct cr__api_req *r, const char *name);
/* Reads an integer query parameter in [min, max] (def when absent); on a
 * bad value answers 400 and returns -1. */
int cr__api_query_int(struct cr__api_req *r, struct cr__api_res *res,
                      const char *name, int64_t min, int64_t max, int64_t def,
                      int64_t *out);
/* The checks of a JSON request body (content type ct, may be NULL; body of
 * n bytes, borrowed): 0 and *out (a new object) when it is a JSON object
 * within the limits (nesting depth checked before parsing, no NUL byte,
 * valid UTF-8, no duplicate key); else the status (400, 415, 422) with
 * *code (static) and a message in msg. No connection needed: fuzzed by
 * tests/fuzz/fuzz_api.c. */
int cr__api_parse_body(const char *ct, const char *body, size_t n, json_t **out,
                       const char **code, char *msg, size_t msglen);
/* Parses the request body as a JSON object (Content-Type must be JSON, size,
 * depth, duplicate keys and UTF-8 checked); on failure answers 4xx and
 * returns NULL. The result is owned by the caller. */
json_t *cr__api_body_object(struct cr__api_req *r, struct cr__api_res *res);
/* Checks that obj has no key outside allowed (NULL-terminated); answers 422
 * naming the first unknown field and returns -1 when it has. */
int cr__api_only_keys(struct cr__api_res *res, const json_t *obj,
                      const char *const *allowed);
/* Sets the "next" link of a page: url with after=<cursor> into body. */
void cr__api_page(struct cr__api_req *r, json_t *body, const char *cursor);
/* Parses a time query parameter (RFC 3339 UTC, or ms since the epoch);
 * answers 400 and returns -1 when bad. */
int cr__api_query_time(struct cr__api_req *r, struct cr__api_res *res,
                       const char *name, int64_t def, int64_t *out);
/* The control context of a request (its store, config, plugins, actor). */
struct cr_ctl;
void cr__api_ctl(struct cr__api_req *r, struct cr_ctl *c);
/* Answers 200 with v, or the error of rc about what. Takes v. */
void cr__api_reply(struct cr__api_res *res, int rc, json_t *v,
                   const char *what);

/* Answers a page: 200 {items, next, cursor} (takes items and next, a
 * cr__malloc'd cursor or NULL), or the error of rc about what. */
void cr__api_reply_page(struct cr__api_req *r, struct cr__api_res *res, int rc,
                        json_t *items, char *next, const char *what);

/* ---- api_objects.c: objects created through the API ---- */
/* Answers 412 and returns -1 when If-Match is given and differs from the
 * current ETag of (kind, r->params[0]). */
int cr__api_if_match(struct cr__api_req *r, struct cr__api_res *res,
                     const char *kind);
/* The answer to a change of (kind, r->params[0]) that returned rc: the new
 * view (from after, which it frees) or the error (where: FILE:LINE of a
 * config-managed object, or the reason of a refused change). */
void cr__api_changed(struct cr__api_req *r, struct cr__api_res *res, int rc,
                     const char *where, const char *kind, cr_config *after);
/* DELETE of (kind, r->params[0]). */
void cr__api_delete_object(struct cr__api_req *r, struct cr__api_res *res,
                           const char *kind);
/* The answer to a removal of (kind, r->params[0]) that returned rc with
 * msg (cr_ctl_object_remove's): 204, or 404 / 409 / 500. */
void cr__api_removed(struct cr__api_req *r, struct cr__api_res *res,
                     const char *kind, int rc, const char *msg);
void cr__api_auth_create(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_create(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_sub_create(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_sub_delete(struct cr__api_req *r, struct cr__api_res *res);

/* ---- api.c ---- */
/* A store connection from the pool (blocks while all are in use), with no
 * read snapshot open. */
cr_store *cr__api_store_get(cr_api *a);
void cr__api_store_put(cr_api *a, cr_store *s);
/* Ends the read snapshots GETs kept on the idle connections of the pool
 * (a kept snapshot holds back the WAL's checkpoints): called every 250 ms
 * by the event watcher (api_events.c). */
void cr__api_store_sweep(cr_api *a);
/* The plugins loaded now (borrowed until *held, which the caller frees
 * with cr_plugin_host_free, is freed; *held is NULL when nothing was
 * taken). */
const cr_plugin_host *cr__api_plugins_acquire(cr_api *a, cr_plugin_host **held);
/* Logs through the server's sink. */
void cr__api_logf(cr_api *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- resources: one file each ---- */
void cr__api_healthz(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_readyz(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_openapi(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_metrics(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_auth_list(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_auth_get(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_auth_patch(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_auth_delete(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_auth_metrics(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_auth_health(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_auth_check(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_list(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_get(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_patch(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_delete(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_schedule(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_run(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_execs(struct cr__api_req *r, struct cr__api_res *res);
/* api_states.c: a work's sync state versions and rollback. */
void cr__api_work_states(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_work_state_set(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_exec_get(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_exec_cancel(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_event_list(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_event_stream(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_sub_list(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_sub_get(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_sub_attempts(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_sub_replay(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_alert_list(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_plugin_list(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_plugin_get(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_plugin_rescan(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_runner_list(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_cluster_get(struct cr__api_req *r, struct cr__api_res *res);

/* ---- api_prom.c: request metrics ---- */
int cr__api_stats_new(struct cr__api_stats **out);
void cr__api_stats_free(struct cr__api_stats *s);
/* Counts one answered request of route (-1: unmatched) with its status and
 * latency. Thread-safe. */
void cr__api_stats_add(struct cr__api_stats *s, int route, int status,
                       int64_t latency_ns);

/* ---- api_limit.c: rate limiting (host.api.rate_limit) ---- */
/* The limiter's fixed table (CR_ENOMEM), and its end (NULL is a no-op). */
int cr__api_limit_new(struct cr__api_limit **out);
void cr__api_limit_free(struct cr__api_limit *l);
/* Takes one request of r (its route matched, r->cfg held) from the bucket
 * of token (the valid token's name, borrowed) or, when NULL, of the
 * client's address. 0 when it may go on (or no limit is set); 1 when res
 * holds the 429 rate_limited with Retry-After. Thread-safe; allocates
 * nothing. */
int cr__api_rate_limited(struct cr__api_req *r, const char *token,
                         struct cr__api_res *res);
/* The requests refused so far, by token and by address. */
void cr__api_limit_refused(const struct cr__api_limit *l, uint64_t *by_token,
                           uint64_t *by_address);
/* CLOCK_MONOTONIC in ns. */
int64_t cr__api_mono_ns(void);

/* ---- api_sse.c: event streams ---- */
/* Start: the watcher thread. Stop: ends every stream and joins the
 * watcher (before libmicrohttpd stops). End: frees what start made (after
 * libmicrohttpd stopped: streams release themselves until then). */
/* api.c: initialises mu and cv and starts fn(arg) on *t, undoing what it
 * did on failure: the server's helper threads. 0 or CR_ENOMEM. */
int cr__api_thread_start(uv_mutex_t *mu, uv_cond_t *cv, uv_thread_t *t,
                         void (*fn)(void *), void *arg);

/* api.c: runs r's route (through r->txn_store when set) into res and
 * releases the configuration it held; then cr__api_prepare_response turns
 * res (cleared) into r->prepared and r->prepared_status and counts it. */
void cr__api_run_handler(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_prepare_response(struct cr__api_req *r, struct cr__api_res *res);

/* api_batch.c: group commit. start: the batch thread; offer: suspends
 * conn and queues it, returning 1, or returns 0 when batches have stopped
 * (the caller then runs it inline);
 * request: offers a CR_API_BATCH route's request r, suspending its
 * connection (resumed with r->prepared set once its batch committed or
 * failed); 0 when it must run inline; stop: stops taking items, runs every
 * queued one and joins the thread; end (once the server threads are
 * gone): frees the rest. */
int cr__api_batch_start(cr_api *a);
int cr__api_batch_offer(cr_api *a, struct cr__api_batch_item *it,
                        struct MHD_Connection *conn);
int cr__api_batch_request(struct cr__api_req *r);
void cr__api_batch_stop(cr_api *a);
void cr__api_batch_end(cr_api *a);

/* api_runners.c: the long-poll claims' watcher: start (also watches the
 * store's claim signal), stop (resumes every waiting poll), end. */
int cr__api_claims_start(cr_api *a);
void cr__api_claims_stop(cr_api *a);
void cr__api_claims_end(cr_api *a);
void cr__api_runner_register(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_runner_get(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_runner_delete(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_runner_checkin(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_runner_claims(struct cr__api_req *r, struct cr__api_res *res);
void cr__api_runner_report(struct cr__api_req *r, struct cr__api_res *res);
int cr__api_sse_start(cr_api *a);
void cr__api_sse_stop(cr_api *a);
void cr__api_sse_end(cr_api *a);

#endif
