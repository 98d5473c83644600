/* api_runners.c: /v1/runners: the list (local and remote runners), one
 * runner, revocation, and the remote runners' own calls: registration,
 * check-in, long-poll claims and reports (docs/design.md, "Remote runners";
 * the logic is in control/ctl_runners.c).
 *
 * A long-poll claim never holds a server thread while it waits: its
 * response is produced by a content reader that, with nothing to claim,
 * suspends the connection and puts the poll on a waiting list. A watcher
 * thread resumes every waiting poll when the store signals a claimable
 * execution (store/claim_signal.h), and each poll whose wait ran out (it
 * looks every 250 ms); a resumed poll tries to claim again. */
#include "api/api_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control/control.h"
#include "control/ctl_runners.h"
#include "store/claim_signal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#define WATCH_MS 250

struct cr__claim_poll {
  cr_api *api;
  struct MHD_Connection *conn;
  char runner_id[64];
  char claim_id[72]; /* the request's id ("" = none): retries replay */
  json_t *providers;
  size_t slots;
  char *exclude; /* local runner's providers (JSON), or NULL */
  int64_t deadline_ms;
  char *buf; /* the answer, once decided */
  size_t len, off;
  int waiting;
  int checked_in; /* the request's check-in is written (first attempt) */
  struct cr__claim_poll *next;
  struct cr__api_batch_item item; /* its attempts run in group commits */
  unsigned gen;                   /* claim_gen when the attempt was queued */
};

/* ---- Runner authentication ---------------------------------------------- */

/* Checks "Authorization: Bearer" against runner r->params[0]'s own token;
 * answers 401 and returns -1 when it is not. */
static int runner_auth(struct cr__api_req *r, struct cr__api_res *res) {
  const char *h =
      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
  const char *tok = h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
  while (tok && *tok == ' ')
    tok++;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  int rc = cr_ctl_runner_auth(&c, r->params[0], tok);
  if (rc == 0) {
    r->actor = r->params[0];
    return 0;
  }
  if (rc == CR_EPERM)
    cr__api_error(res, 401, "unauthorized", NULL,
                  "this call needs the runner's own token (the runner is "
                  "unknown, revoked, or the token is wrong)");
  else
    cr__api_error_rc(res, rc, "runner");
  return -1;
}

/* ---- Registration, check-in, views, revocation --------------------------- */

void cr__api_runner_register(struct cr__api_req *r, struct cr__api_res *res) {
  static const char *const keys[] = {"registration_token", "name", "labels",
                                     "version", NULL};
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL || cr__api_only_keys(res, body, keys) != 0) {
    json_decref(body);
    return;
  }
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  c.actor = "runner";
  char err[200] = "";
  json_t *out = NULL;
  int rc = cr_ctl_runner_register(&c, body, &out, err, sizeof err);
  json_decref(body);
  if (rc == CR_EPERM)
    cr__api_error(res, 401, "unauthorized", "/registration_token",
                  "the registration token is not valid");
  else if (rc == CR_EINVAL)
    cr__api_error(res, 422, "validation_failed", NULL, "%s", err);
  else if (rc != 0)
    cr__api_error_rc(res, rc, "runner");
  else
    cr__api_json(res, 201, out);
}

void cr__api_runner_checkin(struct cr__api_req *r, struct cr__api_res *res) {
  if (runner_auth(r, res) != 0)
    return;
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL)
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  char err[200] = "";
  int rc = cr_ctl_runner_checkin(&c, r->params[0], body, err, sizeof err);
  json_decref(body);
  if (rc == CR_EINVAL) {
    cr__api_error(res, 422, "validation_failed", NULL, "%s", err);
    return;
  }
  json_t *v = NULL;
  if (rc == 0)
    rc = cr_ctl_runner_view(&c, r->params[0], &v);
  if (v != NULL) {
    json_object_set_new(v, "lease_ms",
                        json_integer(r->cfg->host.runner_lease_ms));
    json_object_set_new(v, "offline_after_ms",
                        json_integer(r->cfg->host.runner_offline_after_ms));
    json_object_set_new(v, "server_time", json_integer(cr__now_ms()));
  }
  cr__api_reply(res, rc, v, "runner");
}

static json_t *local_runner(struct cr__api_req *r) {
  const struct cr_api_hooks *h = &r->api->o.hooks;
  int total = 0, busy = 0;
  if (h->runner_slots)
    h->runner_slots(h->ud, &total, &busy);
  json_t *providers = json_array();
  for (size_t i = 0; i < cr_plugin_host_count(r->plugins); i++)
    json_array_append_new(
        providers,
        json_string(cr_plugin_desc(cr_plugin_host_at(r->plugins, i))->name));
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:o, s:i, s:i, s:o}", "id", r->api->runner_id,
      "name", "local runner", "kind", "local", "status",
      h->loop_alive == NULL || h->loop_alive(h->ud) ? "online" : "offline",
      "last_check_in", cr_ctl_jtime(cr__now_ms()), "slots", total, "running",
      busy, "providers", providers);
}

void cr__api_runner_list(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *remote = NULL;
  int rc = cr_ctl_runner_list(&c, &remote);
  if (rc != 0) {
    cr__api_error_rc(res, rc, "runners");
    return;
  }
  json_array_insert_new(remote, 0, local_runner(r));
  cr__api_json(res, 200, json_pack("{s:o}", "items", remote));
}

void cr__api_runner_get(struct cr__api_req *r, struct cr__api_res *res) {
  if (strcmp(r->params[0], r->api->runner_id) == 0) {
    cr__api_json(res, 200, local_runner(r));
    return;
  }
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_runner_view(&c, r->params[0], &v);
  cr__api_reply(res, rc, v, "runner");
}

void cr__api_runner_delete(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  size_t released = 0;
  int rc = cr_ctl_runner_revoke(&c, r->params[0], &released);
  json_t *v = NULL;
  if (rc == 0)
    rc = cr_ctl_runner_view(&c, r->params[0], &v);
  if (v != NULL)
    json_object_set_new(v, "released", json_integer((json_int_t)released));
  cr__api_reply(res, rc, v, "runner");
}

/* ---- Reports ------------------------------------------------------------- */

void cr__api_runner_report(struct cr__api_req *r, struct cr__api_res *res) {
  if (runner_auth(r, res) != 0)
    return;
  char *end = NULL;
  long long eid = strtoll(r->params[1], &end, 10);
  if (end == NULL || *end != '\0' || eid <= 0) {
    cr__api_error(res, 404, "not_found", NULL, "no execution '%.40s'",
                  r->params[1]);
    return;
  }
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL)
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  char err[200] = "";
  json_t *out = NULL;
  int rc = cr_ctl_runner_report(&c, r->params[0], eid, body, &out, NULL, err,
                                sizeof err);
  json_decref(body);
  if (rc == CR_ESTALE)
    cr__api_error(res, 409, "stale_epoch", "/epoch",
                  "execution %lld is no longer leased to runner %s under this "
                  "epoch: stop it and commit nothing more",
                  eid, r->params[0]);
  else if (rc == CR_EINVAL)
    cr__api_error(res, 422, "validation_failed", NULL, "%s", err);
  else
    cr__api_reply(res, rc, out, "execution");
}

/* ---- Long-poll claims ---------------------------------------------------- */

/* 1 when credentials may go to this connection: TLS, or a loopback peer. */
static int secure_peer(struct cr__api_req *r) {
  if (r->api->tls_cert != NULL)
    return 1;
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  if (sa == NULL)
    return 0;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
           (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
            in6->sin6_addr.s6_addr[12] == 127);
  }
  return 0;
}

/* The providers the local runner serves first (JSON), or NULL when the
 * daemon runs no local runner. */
static char *local_providers(cr_api *a) {
  int total = 0, busy = 0;
  if (a->o.hooks.runner_slots)
    a->o.hooks.runner_slots(a->o.hooks.ud, &total, &busy);
  if (total <= 0)
    return NULL;
  json_t *arr = json_array();
  cr_plugin_host *held = NULL;
  const cr_plugin_host *h = cr__api_plugins_acquire(a, &held);
  for (size_t i = 0; arr != NULL && i < cr_plugin_host_count(h); i++) {
    const struct cr_plugin_descriptor *d =
        cr_plugin_desc(cr_plugin_host_at(h, i));
    if (d->capabilities & CR_PLUGIN_CAP_READ)
      json_array_append_new(arr, json_string(d->name));
  }
  cr_plugin_host_free(held);
  char *txt = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
  json_decref(arr);
  return txt;
}

static void poll_answer(struct cr__claim_poll *p, json_t *claims,
                        const char *error) {
  json_t *body = json_pack("{s:o}", "claims", claims ? claims : json_array());
  if (error != NULL)
    json_object_set_new(body, "error", json_string(error));
  p->buf = json_dumps(body, JSON_COMPACT);
  p->len = p->buf ? strlen(p->buf) : 0;
  p->off = 0;
  json_decref(body);
}

/* One claim attempt on store s (NULL: one of the pool's): 0 or the
 * claim's error; p->buf is set when the poll has its answer. */
static int poll_try(struct cr__claim_poll *p, cr_store *s) {
  cr_api *a = p->api;
  if (atomic_load(&a->cancel) || atomic_load(&a->claim_quit)) {
    /* the server is stopping: claim nothing its answer could lose */
    poll_answer(p, NULL, NULL);
    return 0;
  }
  void *handle = NULL;
  const cr_config *cfg = a->o.hooks.config_acquire(a->o.hooks.ud, &handle);
  cr_plugin_host *held = NULL;
  struct cr_ctl c = {.store = s ? s : cr__api_store_get(a),
                     .cfg = cfg,
                     .plugins = cr__api_plugins_acquire(a, &held),
                     .actor = p->runner_id};
  json_t *claims = NULL;
  int rc = cr_ctl_runner_claim(&c, p->runner_id, p->providers, p->slots,
                               p->exclude, p->claim_id[0] ? p->claim_id : NULL,
                               !p->checked_in, &claims);
  if (rc == 0)
    p->checked_in = 1;
  if (s == NULL)
    cr__api_store_put(a, c.store);
  a->o.hooks.config_release(a->o.hooks.ud, handle);
  cr_plugin_host_free(held);
  int answer =
      rc != 0 || json_array_size(claims) > 0 || cr__now_ms() >= p->deadline_ms;
  if (answer)
    poll_answer(p, claims, rc != 0 ? cr_strerror(rc) : NULL);
  else
    json_decref(claims);
  return rc;
}

/* ---- Claim attempts in group commits (api_batch.c) ----------------------- */

#define POLL_OF(it)                                                            \
  ((struct cr__claim_poll *)(void *)((char *)(it)-offsetof(                    \
      struct cr__claim_poll, item)))

static int poll_run(struct cr__api_batch_item *it, cr_store *s) {
  return poll_try(POLL_OF(it), s);
}

/* Puts p among the polls waiting for a signal or their deadline (under
 * claim_mu). */
static void wait_locked(struct cr__claim_poll *p) {
  p->waiting = 1;
  p->next = p->api->claim_waiting;
  p->api->claim_waiting = p;
}

/* After the attempt's commit: the answer goes out, or the poll waits (its
 * connection stays suspended) for a signal or its deadline. A signal that
 * came since the attempt was queued may be for it: it tries again. */
static void poll_done(struct cr__api_batch_item *it, int lost) {
  struct cr__claim_poll *p = POLL_OF(it);
  cr_api *a = p->api;
  if (lost != 0) { /* what it claimed was not committed: none of it holds */
    free(p->buf);
    p->checked_in = 0;
    poll_answer(p, NULL, cr_strerror(lost));
  }
  uv_mutex_lock(&a->claim_mu);
  if (p->buf == NULL && a->claim_quit)
    poll_answer(p, NULL, NULL);
  if (p->buf == NULL && atomic_load(&a->claim_gen) == p->gen) {
    wait_locked(p);
  } else {
    MHD_resume_connection(p->conn);
  }
  uv_mutex_unlock(&a->claim_mu);
}

/* A poll that has checked in and has time left first asks, reading only,
 * whether an attempt could answer anything; when not, it waits for a
 * signal without joining a group commit, so a poll woken for an execution
 * another runner won takes no write lock (on PostgreSQL, the write lock of
 * every instance). Returns 1 when it waits (its connection suspended). */
static int poll_wait_unless_worth(struct cr__claim_poll *p) {
  cr_api *a = p->api;
  if (!p->checked_in || cr__now_ms() >= p->deadline_ms ||
      atomic_load(&a->cancel) || atomic_load(&a->claim_quit))
    return 0;
  unsigned gen = atomic_load(&a->claim_gen);
  struct cr_ctl c = {.store = cr__api_store_get(a), .actor = p->runner_id};
  int worth = 1;
  (void)cr_ctl_runner_claim_worth(&c, p->runner_id, p->providers, p->slots,
                                  p->exclude,
                                  p->claim_id[0] ? p->claim_id : NULL, &worth);
  cr__api_store_put(a, c.store);
  if (worth)
    return 0;
  uv_mutex_lock(&a->claim_mu);
  /* a signal since gen was read may be for this poll: it attempts */
  int waits = !a->claim_quit && atomic_load(&a->claim_gen) == gen;
  if (waits) {
    wait_locked(p);
    MHD_suspend_connection(p->conn);
  }
  uv_mutex_unlock(&a->claim_mu);
  return waits;
}

static ssize_t poll_read(void *cls, uint64_t pos, char *out, size_t max) {
  (void)pos;
  struct cr__claim_poll *p = cls;
  cr_api *a = p->api;
  if (p->buf == NULL && poll_wait_unless_worth(p))
    return 0;
  if (p->buf == NULL) {
    p->item.run = poll_run;
    p->item.done = poll_done;
    p->gen = atomic_load(&a->claim_gen);
    if (cr__api_batch_offer(a, &p->item, p->conn))
      return 0;        /* suspended: resumed once answered */
    poll_try(p, NULL); /* the server is stopping: at once, here */
  }
  if (p->buf == NULL) {
    uv_mutex_lock(&a->claim_mu);
    if (!a->claim_quit) {
      wait_locked(p);
      MHD_suspend_connection(p->conn);
      uv_mutex_unlock(&a->claim_mu);
      return 0;
    }
    uv_mutex_unlock(&a->claim_mu);
    poll_answer(p, NULL, NULL);
  }
  if (p->buf == NULL)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  if (p->off >= p->len)
    return MHD_CONTENT_READER_END_OF_STREAM;
  size_t n = p->len - p->off < max ? p->len - p->off : max;
  memcpy(out, p->buf + p->off, n);
  p->off += n;
  return (ssize_t)n;
}

static void poll_free(void *cls) {
  struct cr__claim_poll *p = cls;
  cr_api *a = p->api;
  uv_mutex_lock(&a->claim_mu);
  for (struct cr__claim_poll **q = &a->claim_waiting; *q; q = &(*q)->next)
    if (*q == p) {
      *q = p->next;
      break;
    }
  uv_mutex_unlock(&a->claim_mu);
  json_decref(p->providers);
  cr__free(p->exclude);
  free(p->buf);
  cr__free(p);
}

void cr__api_runner_claims(struct cr__api_req *r, struct cr__api_res *res) {
  static const char *const keys[] = {"providers", "slots", "wait_ms",
                                     "claim_id", NULL};
  if (runner_auth(r, res) != 0)
    return;
  if (!secure_peer(r)) {
    cr__api_error(res, 403, "insecure_transport", NULL,
                  "claims carry credentials: use TLS (host.tls) or a "
                  "loopback connection");
    return;
  }
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL || cr__api_only_keys(res, body, keys) != 0) {
    json_decref(body);
    return;
  }
  json_t *prov = json_object_get(body, "providers");
  json_t *slots = json_object_get(body, "slots");
  json_t *wait = json_object_get(body, "wait_ms");
  json_t *cid = json_object_get(body, "claim_id");
  if (!json_is_array(prov) || !json_is_integer(slots) ||
      json_integer_value(slots) < 0 ||
      json_integer_value(slots) > CR_CTL_CLAIM_MAX_SLOTS ||
      (wait != NULL &&
       (!json_is_integer(wait) || json_integer_value(wait) < 0 ||
        json_integer_value(wait) > CR_CTL_CLAIM_MAX_WAIT_MS))) {
    json_decref(body);
    cr__api_error(res, 422, "validation_failed", NULL,
                  "a claim needs providers (a list of names), slots (0 to "
                  "64), wait_ms (0 to 30000) and an optional claim_id (1 to "
                  "64 characters)");
    return;
  }
  /* The check-in is written by the first claim attempt, in its
   * transaction. */
  struct cr__claim_poll *p = cr__calloc(1, sizeof *p);
  if (p == NULL) {
    json_decref(body);
    cr__api_error_rc(res, CR_ENOMEM, "claim");
    return;
  }
  p->api = r->api;
  p->conn = r->conn;
  snprintf(p->runner_id, sizeof p->runner_id, "%s", r->params[0]);
  snprintf(p->claim_id, sizeof p->claim_id, "%s",
           cid ? json_string_value(cid) : "");
  p->providers = json_incref(prov);
  p->slots = (size_t)json_integer_value(slots);
  p->exclude = local_providers(r->api);
  p->deadline_ms = cr__now_ms() + (wait ? json_integer_value(wait) : 0);
  json_decref(body);
  res->raw = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 2048,
                                               poll_read, p, poll_free);
  if (res->raw == NULL) {
    poll_free(p);
    cr__api_error_rc(res, CR_ENOMEM, "claim");
    return;
  }
  MHD_add_response_header(res->raw, "Content-Type", "application/json");
  MHD_add_response_header(res->raw, "Cache-Control", "no-store");
  res->status = 200;
}

/* ---- The watcher --------------------------------------------------------- */

/* Resumes the waiting polls: all of them, or those whose wait ran out. */
static void resume(cr_api *a, int all) {
  int64_t now = cr__now_ms();
  uv_mutex_lock(&a->claim_mu);
  struct cr__claim_poll **q = &a->claim_waiting;
  while (*q != NULL) {
    struct cr__claim_poll *p = *q;
    if (all || a->claim_quit || now >= p->deadline_ms) {
      *q = p->next;
      p->next = NULL;
      p->waiting = 0;
      MHD_resume_connection(p->conn);
    } else {
      q = &p->next;
    }
  }
  uv_mutex_unlock(&a->claim_mu);
}

static void on_claimable(void *ud) {
  cr_api *a = ud;
  uv_mutex_lock(&a->claim_mu);
  a->claim_signalled = 1;
  atomic_fetch_add(&a->claim_gen, 1);
  uv_cond_signal(&a->claim_cv);
  uv_mutex_unlock(&a->claim_mu);
}

static void watch(void *arg) {
  cr_api *a = arg;
  uv_mutex_lock(&a->claim_mu);
  while (!a->claim_quit) {
    if (!a->claim_signalled)
      uv_cond_timedwait(&a->claim_cv, &a->claim_mu,
                        (uint64_t)WATCH_MS * 1000000);
    int all = a->claim_signalled;
    a->claim_signalled = 0;
    if (a->claim_waiting == NULL || a->claim_quit)
      continue;
    uv_mutex_unlock(&a->claim_mu);
    resume(a, all);
    uv_mutex_lock(&a->claim_mu);
  }
  uv_mutex_unlock(&a->claim_mu);
}

int cr__api_claims_start(cr_api *a) {
  int rc = cr__api_thread_start(&a->claim_mu, &a->claim_cv, &a->claim_thread,
                                watch, a);
  if (rc != 0)
    return rc;
  a->claim_started = 1;
  if (cr_claim_signal_watch(on_claimable, a) != 0)
    cr__api_logf(a, CR_LOG_WARN,
                 "claims: too many watchers; long polls wake every %d ms",
                 WATCH_MS);
  return 0;
}

void cr__api_claims_stop(cr_api *a) {
  if (!a->claim_started)
    return;
  cr_claim_signal_unwatch(on_claimable, a);
  uv_mutex_lock(&a->claim_mu);
  a->claim_quit = 1;
  uv_cond_signal(&a->claim_cv);
  uv_mutex_unlock(&a->claim_mu);
  uv_thread_join(&a->claim_thread);
  resume(a, 1);
}

void cr__api_claims_end(cr_api *a) {
  if (!a->claim_started)
    return;
  uv_cond_destroy(&a->claim_cv);
  uv_mutex_destroy(&a->claim_mu);
  a->claim_started = 0;
}
