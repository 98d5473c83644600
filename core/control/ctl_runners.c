/* ctl_runners.c: remote runners on the server side (see ctl_runners.h):
 * registration, token checks, check-ins, claims, reports, revocation,
 * views. */
#include "control/ctl_runners.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "control/ctl_int.h"
#include "events/events.h"
#include "exec/exec_writes.h"
#include "exec/execution.h"
#include "store/claim_signal.h"
#include "store/store_runners.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#define MAX_LABELS 32

/* ---- Tokens -------------------------------------------------------------- */

static void sha256_hex(const char *s, char out[65]) {
  unsigned char d[32];
  unsigned int len = sizeof d;
  if (EVP_Digest(s, strlen(s), d, &len, EVP_sha256(), NULL) != 1)
    memset(d, 0, sizeof d);
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
  OPENSSL_cleanse(d, sizeof d);
}

static int random_hex(char *out, size_t nbytes) {
  unsigned char b[32];
  if (nbytes > sizeof b || RAND_bytes(b, (int)nbytes) != 1)
    return CR_EIO;
  for (size_t i = 0; i < nbytes; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
  OPENSSL_cleanse(b, sizeof b);
  return 0;
}

/* The registration token matching given: every one is compared (constant
 * time over digests, no early exit). */
static const struct cr_config_runner_token *
find_registration(const cr_config *cfg, const char *given) {
  char g[65], w[65];
  sha256_hex(given, g);
  const struct cr_config_runner_token *found = NULL;
  for (size_t i = 0; i < cfg->host.n_runner_tokens; i++) {
    const struct cr_config_runner_token *t = &cfg->host.runner_tokens[i];
    if (t->token == NULL)
      continue;
    sha256_hex(t->token, w);
    if (CRYPTO_memcmp(g, w, 64) == 0)
      found = t;
  }
  OPENSSL_cleanse(g, sizeof g);
  return found;
}

/* ---- Small helpers ------------------------------------------------------- */

static int bad(char *err, size_t errlen, const char *fmt, const char *what) {
  snprintf(err, errlen, fmt, what);
  return CR_EINVAL;
}

static char *dumps(const json_t *v) {
  return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static int emit_runner(const struct cr_ctl *c, const char *id, const char *verb,
                       json_t *data) {
  int rc = cr_event_emit(c->store, "runner", id, verb,
                         c->actor ? c->actor : CR_ACTOR_SYSTEM, data, NULL);
  json_decref(data);
  return rc;
}

/* Checks labels (an array of ids, at most MAX_LABELS) and appends them to
 * into without duplicates. */
static int add_labels(json_t *into, const json_t *labels, char *err,
                      size_t errlen) {
  size_t i;
  json_t *v;
  if (labels == NULL)
    return 0;
  if (!json_is_array(labels) || json_array_size(labels) > MAX_LABELS)
    return bad(err, errlen, "%s must be a list of at most 32 labels", "labels");
  json_array_foreach(labels, i, v) {
    const char *s = json_string_value(v);
    if (s == NULL || !cr_config_valid_id(s))
      return bad(err, errlen,
                 "%s: each label is an id (letters, digits, "
                 "'_', '-', '.')",
                 "labels");
    int dup = 0;
    size_t j;
    json_t *x;
    json_array_foreach(into, j, x) dup |= strcmp(json_string_value(x), s) == 0;
    if (!dup)
      json_array_append_new(into, json_string(s));
  }
  return 0;
}

static const char *opt_str(const json_t *body, const char *key, size_t maxlen) {
  const char *s = json_string_value(json_object_get(body, key));
  return s != NULL && strlen(s) <= maxlen ? s : NULL;
}

/* ---- Registration and authentication ------------------------------------ */

int cr_ctl_runner_register(const struct cr_ctl *c, const json_t *body,
                           json_t **out, char *err, size_t errlen) {
  const char *given =
      json_string_value(json_object_get(body, "registration_token"));
  if (given == NULL)
    return bad(err, errlen, "%s is required", "registration_token");
  const struct cr_config_runner_token *t = find_registration(c->cfg, given);
  if (t == NULL)
    return CR_EPERM;
  json_t *labels = json_array();
  for (size_t i = 0; labels != NULL && i < t->n_labels; i++)
    json_array_append_new(labels, json_string(t->labels[i]));
  int rc =
      labels ? add_labels(labels, json_object_get(body, "labels"), err, errlen)
             : CR_ENOMEM;
  char id[3 + 16 + 1] = "r-", token[65], hash[65];
  if (rc == 0)
    rc = random_hex(id + 2, 8);
  if (rc == 0)
    rc = random_hex(token, 32);
  if (rc != 0) {
    json_decref(labels);
    return rc;
  }
  sha256_hex(token, hash);
  char *labels_txt = dumps(labels);
  const char *name = opt_str(body, "name", 128);
  struct cr_runner_rec rec = {
      .id = id,
      .name = (char *)(name ? name : id),
      .version = (char *)opt_str(body, "version", 64),
      .labels_json = labels_txt,
      .providers_json = "[]",
      .registration = (char *)t->name,
      .token_hash = hash,
  };
  rc = cr_store_begin(c->store);
  if (rc == 0)
    rc = cr_store_runner_add(c->store, &rec);
  if (rc == 0)
    rc = emit_runner(c, id, "created",
                     json_pack("{s:s, s:s, s:O}", "name", rec.name,
                               "registration", t->name, "labels", labels));
  rc = cr_store_end(c->store, rc);
  free(labels_txt);
  if (rc == 0)
    *out = json_pack(
        "{s:s, s:s, s:O, s:I, s:I}", "runner_id", id, "token", token, "labels",
        labels, "lease_ms", (json_int_t)c->cfg->host.runner_lease_ms,
        "offline_after_ms", (json_int_t)c->cfg->host.runner_offline_after_ms);
  OPENSSL_cleanse(token, sizeof token);
  json_decref(labels);
  return rc == 0 && *out == NULL ? CR_ENOMEM : rc;
}

int cr_ctl_runner_auth(const struct cr_ctl *c, const char *id,
                       const char *bearer) {
  struct cr_runner_rec r;
  if (id == NULL || bearer == NULL || *bearer == '\0')
    return CR_EPERM;
  char given[65];
  sha256_hex(bearer, given);
  int rc = cr_store_runner_get(c->store, id, &r);
  int ok = rc == 0 && r.token_hash != NULL && strlen(r.token_hash) == 64 &&
           CRYPTO_memcmp(given, r.token_hash, 64) == 0 && r.revoked_at == 0;
  cr_runner_rec_clear(&r);
  return ok ? 0 : rc != 0 && rc != CR_ENOENT ? rc : CR_EPERM;
}

/* ---- Check-in and the offline scan -------------------------------------- */

/* The fixed labels of registration token name (a new array). */
static json_t *fixed_labels(const cr_config *cfg, const char *name) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && name && i < cfg->host.n_runner_tokens; i++) {
    const struct cr_config_runner_token *t = &cfg->host.runner_tokens[i];
    if (t->name != NULL && strcmp(t->name, name) == 0)
      for (size_t k = 0; k < t->n_labels; k++)
        json_array_append_new(arr, json_string(t->labels[k]));
  }
  return arr;
}

static int checkin_rec(const struct cr_ctl *c, const json_t *body,
                       struct cr_runner_rec *rec, char **labels,
                       char **providers, char *err, size_t errlen) {
  rec->slots = rec->slots_free = -1;
  if (body == NULL)
    return 0;
  rec->name = (char *)opt_str(body, "name", 128);
  rec->version = (char *)opt_str(body, "version", 64);
  const json_t *l = json_object_get(body, "labels");
  if (l != NULL) {
    /* The registration token's labels stay, whatever the runner says. */
    struct cr_runner_rec cur;
    int grc = cr_store_runner_get(c->store, rec->id, &cur);
    json_t *arr = fixed_labels(c->cfg, grc == 0 ? cur.registration : NULL);
    if (grc == 0)
      cr_runner_rec_clear(&cur);
    int rc = arr ? add_labels(arr, l, err, errlen) : CR_ENOMEM;
    if (rc == 0)
      *labels = dumps(arr);
    json_decref(arr);
    if (rc != 0)
      return rc;
  }
  const json_t *p = json_object_get(body, "providers");
  if (p != NULL && (!json_is_array(p) || json_array_size(p) > 256))
    return bad(err, errlen, "%s must be a list of {name, version}",
               "providers");
  if (p != NULL)
    *providers = dumps(p);
  const json_t *sl = json_object_get(body, "slots");
  const json_t *sf = json_object_get(body, "slots_free");
  if (json_is_integer(sl) && json_integer_value(sl) >= 0)
    rec->slots = json_integer_value(sl);
  if (json_is_integer(sf) && json_integer_value(sf) >= 0)
    rec->slots_free = json_integer_value(sf);
  rec->labels_json = *labels;
  rec->providers_json = *providers;
  return 0;
}

int cr_ctl_runner_checkin(const struct cr_ctl *c, const char *id,
                          const json_t *body, char *err, size_t errlen) {
  struct cr_runner_rec rec = {.id = (char *)id};
  char *labels = NULL, *providers = NULL;
  int was_online = 1;
  int rc = checkin_rec(c, body, &rec, &labels, &providers, err, errlen);
  if (rc == 0)
    rc = cr_store_begin(c->store);
  if (rc == 0) {
    rc = cr_store_runner_checkin(c->store, &rec, &was_online);
    if (rc == 0 && !was_online)
      rc = emit_runner(c, id, "checked_in",
                       json_pack("{s:s}", "status", "online"));
    rc = cr_store_end(c->store, rc);
  }
  free(labels);
  free(providers);
  return rc;
}

int cr_ctl_runner_offline_scan(const struct cr_ctl *c, int64_t offline_after_ms,
                               size_t *n) {
  char **ids = NULL;
  size_t cnt = 0;
  int rc = cr_store_begin(c->store);
  if (rc == 0)
    rc = cr_store_runner_mark_offline(
        c->store, cr__ctl_now(c) - offline_after_ms, &ids, &cnt);
  for (size_t i = 0; rc == 0 && i < cnt; i++)
    rc = emit_runner(c, ids[i], "disabled",
                     json_pack("{s:s, s:I}", "status", "offline",
                               "offline_after_ms",
                               (json_int_t)offline_after_ms));
  rc = cr_store_end(c->store, rc);
  for (size_t i = 0; i < cnt; i++)
    cr__free(ids[i]);
  cr__free(ids);
  if (n != NULL)
    *n = rc == 0 ? cnt : 0;
  return rc;
}

/* ---- Claims -------------------------------------------------------------- */

/* The authorization a, with the credentials to run with (the stored rotated
 * ones when the configuration did not change since, else the configured). */
static json_t *auth_for_runner(const struct cr_ctl *c,
                               const struct cr_config_auth *a) {
  char hash[17], *stored = NULL;
  snprintf(hash, sizeof hash, "%016" PRIx64, a->config_hash);
  json_t *creds = NULL;
  if (cr_store_auth_credentials_get(c->store, a->id, hash, &stored) == 0) {
    creds = json_loads(stored, 0, NULL);
    cr__secret_wipe_free(stored, strlen(stored));
  }
  if (creds == NULL)
    creds = cr_config_auth_credentials(a);
  json_t *o =
      json_pack("{s:s, s:s, s:s, s:o}", "id", a->id, "provider", a->provider,
                "method", a->method ? a->method : "none", "credentials", creds);
  if (o != NULL && a->name != NULL)
    json_object_set_new(o, "name", json_string(a->name));
  json_t *settings = cr_config_auth_settings(a);
  if (o != NULL && settings != NULL)
    json_object_set_new(o, "settings", settings);
  else
    json_decref(settings);
  return o;
}

/* {"authorizations": [...], "works": [w]} for work w. */
static json_t *config_for_runner(const struct cr_ctl *c,
                                 const struct cr_config_work *w) {
  json_t *auths = json_array(), *work = cr_config_work_def(w);
  if (w->auth != NULL)
    json_array_append_new(auths, auth_for_runner(c, w->auth));
  const struct cr_config_auth *da = w->destination.auth;
  if (da != NULL && da != w->auth)
    json_array_append_new(auths, auth_for_runner(c, da));
  return json_pack("{s:o, s:[o]}", "authorizations", auths, "works", work);
}

static json_t *claim_json(const struct cr_ctl *c, const struct cr_exec_claim *k,
                          const struct cr_config_work *w, int64_t lease_ms) {
  struct cr_sync_state_rec st;
  memset(&st, 0, sizeof st);
  json_t *state = json_null();
  if (cr_store_sync_state_latest(c->store, w->id, &st) == 0 &&
      st.state_json != NULL)
    state = json_string(st.state_json);
  cr_sync_state_rec_clear(&st);
  return json_pack("{s:I, s:i, s:s, s:I, s:I, s:I, s:o, s:o}", "execution_id",
                   (json_int_t)k->execution_id, "attempt", k->attempt,
                   "work_id", k->work_id, "epoch", (json_int_t)k->epoch,
                   "lease_ms", (json_int_t)lease_ms, "lease_expires_at",
                   (json_int_t)k->lease_expires_at, "state", state, "config",
                   config_for_runner(c, w));
}

/* A claimed execution whose work left the configuration: failed. */
static void fail_unknown_work(const struct cr_ctl *c,
                              const struct cr_exec_claim *k) {
  struct cr_exec_final f = {.execution_id = k->execution_id,
                            .epoch = k->epoch,
                            .work_id = k->work_id,
                            .attempt = k->attempt,
                            .needs_executing = 0};
  cr_exec_write_failed(c->store, &f, "config",
                       "the work is no longer in the configuration");
}

/* The claims of the runner's last claim request again (the answer was lost
 * and the request retried): those still pending under their epoch. */
static int replay_claims(const struct cr_ctl *c, const char *id,
                         const char *last, int64_t lease, json_t *arr) {
  json_t *list = last ? json_loads(last, 0, NULL) : NULL;
  size_t i;
  json_t *v;
  int rc = 0;
  json_array_foreach(list, i, v) {
    struct cr_exec_rec e;
    memset(&e, 0, sizeof e);
    int64_t eid = json_integer_value(json_array_get(v, 0));
    int64_t epoch = json_integer_value(json_array_get(v, 1));
    if (cr_store_exec_get(c->store, eid, &e) != 0)
      continue;
    const struct cr_config_work *w = cr_config_find_work(c->cfg, e.work_id);
    if (w != NULL && e.state && strcmp(e.state, "pending") == 0 &&
        e.runner_id && strcmp(e.runner_id, id) == 0 && e.lease_epoch == epoch) {
      struct cr_exec_claim k = {.execution_id = eid,
                                .work_id = e.work_id,
                                .attempt = e.attempt,
                                .epoch = epoch,
                                .lease_expires_at = e.lease_expires_at};
      json_t *one = claim_json(c, &k, w, lease);
      if (one == NULL)
        rc = CR_ENOMEM;
      else
        json_array_append_new(arr, one);
    }
    cr_exec_rec_clear(&e);
  }
  json_decref(list);
  return rc;
}

/* Records the claims answered to claim_id, for a retry of the request. */
static void note_claims(const struct cr_ctl *c, const char *id,
                        const char *claim_id, const struct cr_exec_claim *k,
                        size_t n) {
  json_t *list = json_array();
  for (size_t i = 0; list != NULL && i < n; i++)
    json_array_append_new(list,
                          json_pack("[I, I]", (json_int_t)k[i].execution_id,
                                    (json_int_t)k[i].epoch));
  char *txt = dumps(list);
  if (txt != NULL)
    cr_store_runner_claim_note(c->store, id, claim_id, txt);
  free(txt);
  json_decref(list);
}

/* The claim's writes, in one transaction: the check-in (when asked), the
 * leases, and the note of what claim_id took. *k gets the claims made, or
 * *replay the note of the request's earlier answer (a retry). */
static int claim_txn(const struct cr_ctl *c, const char *id, const char **names,
                     size_t np, size_t slots, const char *exclude_json,
                     const char *claim_id, int check_in,
                     struct cr_exec_claim **k, size_t *n, char **replay) {
  struct cr_runner_rec r;
  int was_online = 1;
  int rc = cr_store_begin(c->store);
  if (rc == 0 && check_in) {
    struct cr_runner_rec rec = {
        .id = (char *)id, .slots = -1, .slots_free = -1};
    rc = cr_store_runner_checkin(c->store, &rec, &was_online);
    if (rc == 0 && !was_online)
      rc = emit_runner(c, id, "checked_in",
                       json_pack("{s:s}", "status", "online"));
  }
  if (rc == 0 && np > 0 && slots > 0 &&
      (rc = cr_store_runner_get(c->store, id, &r)) == 0) {
    if (r.revoked_at != 0) /* a long poll that began before the revocation */
      rc = CR_EPERM;
    else if (claim_id != NULL && r.last_claim_id != NULL &&
             strcmp(claim_id, r.last_claim_id) == 0) { /* a retried request */
      *replay = cr__strdup(r.last_claim_json ? r.last_claim_json : "[]");
      rc = *replay != NULL ? 0 : CR_ENOMEM;
    } else
      rc = cr_store_exec_claim_routed(c->store, id, names, np, r.labels_json,
                                      exclude_json, slots,
                                      c->cfg->host.runner_lease_ms, k, n);
    cr_runner_rec_clear(&r);
    if (rc == 0 && *n > 0 && claim_id != NULL)
      note_claims(c, id, claim_id, *k, *n);
  }
  return cr_store_end(c->store, rc);
}

/* The provider names of providers (a JSON array, borrowed) into names. */
static size_t provider_names(const json_t *providers, const char **names) {
  size_t np = 0, i;
  json_t *v;
  json_array_foreach(providers, i, v) {
    if (json_is_string(v) && np < CR_EXEC_CLAIM_MAX_PROVIDERS)
      names[np++] = json_string_value(v);
  }
  return np;
}

int cr_ctl_runner_claim_worth(const struct cr_ctl *c, const char *id,
                              const json_t *providers, size_t slots,
                              const char *exclude_json, const char *claim_id,
                              int *worth) {
  const char *names[CR_EXEC_CLAIM_MAX_PROVIDERS];
  size_t np = provider_names(providers, names);
  struct cr_runner_rec r;
  *worth = 0;
  if (np == 0 || slots == 0)
    return 0; /* the attempt would claim nothing either */
  *worth = 1;
  int rc = cr_store_runner_get(c->store, id, &r);
  if (rc != 0)
    return rc; /* the attempt says what went wrong */
  int any = 1;
  if (r.revoked_at == 0 && (claim_id == NULL || r.last_claim_id == NULL ||
                            strcmp(claim_id, r.last_claim_id) != 0))
    rc = cr_store_exec_claimable(c->store, names, np, r.labels_json,
                                 exclude_json, &any);
  cr_runner_rec_clear(&r);
  *worth = rc != 0 || any;
  return rc;
}

int cr_ctl_runner_claim(const struct cr_ctl *c, const char *id,
                        const json_t *providers, size_t slots,
                        const char *exclude_json, const char *claim_id,
                        int check_in, json_t **out) {
  const char *names[CR_EXEC_CLAIM_MAX_PROVIDERS];
  size_t np = provider_names(providers, names);
  json_t *arr = json_array();
  if (arr == NULL)
    return CR_ENOMEM;
  *out = arr;
  if (!check_in && (np == 0 || slots == 0))
    return 0;
  int64_t lease = c->cfg->host.runner_lease_ms;
  struct cr_exec_claim *k = NULL;
  size_t n = 0;
  char *replay = NULL;
  int rc = claim_txn(c, id, names, np, slots, exclude_json, claim_id, check_in,
                     &k, &n, &replay);
  if (rc == 0 && replay != NULL)
    rc = replay_claims(c, id, replay, lease, arr);
  cr__free(replay);
  for (size_t j = 0; rc == 0 && j < n; j++) {
    const struct cr_config_work *w = cr_config_find_work(c->cfg, k[j].work_id);
    if (w == NULL) {
      fail_unknown_work(c, &k[j]);
      continue;
    }
    json_t *one = claim_json(c, &k[j], w, lease);
    if (one == NULL)
      rc = CR_ENOMEM; /* the lease expires and the execution comes back */
    else
      json_array_append_new(arr, one);
  }
  cr_exec_claim_free_list(k, n);
  return rc;
}

/* ---- Reports ------------------------------------------------------------- */

struct report_ctx {
  const struct cr_ctl *c;
  const char *runner_id;
  int64_t eid;
  struct cr_exec_rec e; /* re-read in each report's transaction */
  const struct cr_config_work *w;
  int64_t epoch;
  char *err;
  size_t errlen;
};

static int64_t jint(const json_t *o, const char *k) {
  return json_integer_value(json_object_get(o, k));
}

/* A plugin version a runner reported: at most 64 printable characters,
 * else NULL (not recorded). Borrowed from rep. */
static const char *version_of(const json_t *rep) {
  const char *v = json_string_value(json_object_get(rep, "plugin_version"));
  size_t n = 0;
  for (const char *c = v; c != NULL && *c != '\0'; c++, n++)
    if (n >= 64 || *c < 0x20 || *c >= 0x7f)
      return NULL;
  return n > 0 ? v : NULL;
}

static struct cr_exec_final final_from(const struct report_ctx *x,
                                       const json_t *rep) {
  struct cr_exec_final f = {
      .execution_id = x->eid,
      .epoch = x->epoch,
      .work_id = x->e.work_id,
      .attempt = x->e.attempt,
      .needs_executing = json_is_true(json_object_get(rep, "needs_executing")),
      .one_time = json_is_true(json_object_get(rep, "one_time")),
      .records = jint(rep, "records"),
      .checkpoints = jint(rep, "checkpoints"),
      .duration_ms = jint(rep, "duration_ms"),
      .plugin_version = version_of(rep),
  };
  return f;
}

/* The redacted text of key in rep (a failure reason), into buf. */
static const char *reason_of(const struct report_ctx *x, const json_t *rep,
                             const char *key, char *buf, size_t len) {
  const char *in = json_string_value(json_object_get(rep, key));
  if (in == NULL)
    return NULL;
  char *red = NULL;
  const cr_redactor *rd = cr_config_redactor(x->c->cfg);
  if (rd != NULL && cr_redact(rd, in, &red) == 0) {
    snprintf(buf, len, "%s", red);
    cr__free(red);
  } else {
    snprintf(buf, len, "%s", in);
  }
  return buf;
}

static int apply_checkpoint(struct report_ctx *x, const json_t *rep,
                            json_t *res) {
  const char *state = json_string_value(json_object_get(rep, "state"));
  if (state == NULL)
    return bad(x->err, x->errlen, "a checkpoint report needs %s", "state");
  struct cr_exec_final f = final_from(x, rep);
  int64_t version = 0;
  int rc = cr_exec_write_checkpoint(
      x->c->store, &f, x->c->cfg->host.runner_lease_ms, state, strlen(state),
      jint(rep, "records"), &version);
  if (rc == 0)
    json_object_set_new(res, "version", json_integer(version));
  return rc;
}

static int apply_credentials(struct report_ctx *x, const json_t *rep) {
  const char *creds = json_string_value(json_object_get(rep, "credentials"));
  const struct cr_config_auth *a = x->w ? x->w->auth : NULL;
  if (creds == NULL || a == NULL)
    return bad(x->err, x->errlen,
               "a credentials report needs %s (and the "
               "work an authorization)",
               "credentials");
  char hash[17];
  snprintf(hash, sizeof hash, "%016" PRIx64, a->config_hash);
  struct cr_exec_final f = final_from(x, rep);
  return cr_exec_write_credentials(x->c->store, &f,
                                   x->c->cfg->host.runner_lease_ms, a->id, hash,
                                   creds, strlen(creds));
}

static int apply_end(struct report_ctx *x, const char *type,
                     const json_t *rep) {
  struct cr_exec_final f = final_from(x, rep);
  char cls_buf[32], msg[600], why[700];
  const char *cls = json_string_value(json_object_get(rep, "error_class"));
  if (cls != NULL && cr_exec_class_from_name(cls) < 0)
    return bad(x->err, x->errlen, "unknown %s", "error_class");
  snprintf(cls_buf, sizeof cls_buf, "%s", cls ? cls : "system");
  const char *m = reason_of(x, rep, "error", msg, sizeof msg);
  if (strcmp(type, "completed") == 0)
    return cr_exec_write_completed(x->c->store, &f);
  if (strcmp(type, "failed") == 0)
    return cr_exec_write_failed(x->c->store, &f, cls_buf, m ? m : "failed");
  const char *reason = reason_of(x, rep, "reason", why, sizeof why);
  return cr_exec_write_retry(x->c->store, &f, jint(rep, "at"), cls, m,
                             reason ? reason : "retried by the runner");
}

/* Applies one report (its own transactions, nested in the caller's). */
static int apply_one(struct report_ctx *x, const char *type, const json_t *rep,
                     json_t *res, int *ended) {
  const struct cr_ctl *c = x->c;
  const struct cr_config_auth *a = x->w ? x->w->auth : NULL;
  if (strcmp(type, "executing") == 0) {
    struct cr_exec_final f = final_from(x, rep);
    return cr_exec_write_executing(c->store, &f);
  }
  if (strcmp(type, "renew") == 0)
    return cr_store_exec_renew(c->store, x->eid, x->epoch,
                               c->cfg->host.runner_lease_ms);
  if (strcmp(type, "checkpoint") == 0)
    return apply_checkpoint(x, rep, res);
  if (strcmp(type, "credentials") == 0)
    return apply_credentials(x, rep);
  if (strcmp(type, "metrics") == 0)
    return a == NULL
               ? 0
               : cr_store_metrics_add(c->store, a->id, 0, jint(rep, "requests"),
                                      jint(rep, "errors"));
  if (strcmp(type, "log") == 0) {
    char line[4000];
    const char *t = reason_of(x, rep, "text", line, sizeof line);
    return t ? cr_store_exec_log_add(c->store, x->eid, (int)jint(rep, "level"),
                                     t)
             : bad(x->err, x->errlen, "a log report needs %s", "text");
  }
  if (strcmp(type, "completed") == 0 || strcmp(type, "failed") == 0 ||
      strcmp(type, "retry") == 0) {
    *ended = 1;
    return apply_end(x, type, rep);
  }
  return bad(x->err, x->errlen, "unknown report type '%.40s'", type);
}

/* The fence: the execution is this runner's, under this epoch, leased. */
static int fenced(const struct report_ctx *x) {
  const struct cr_exec_rec *e = &x->e;
  int leased = e->state != NULL && (strcmp(e->state, "pending") == 0 ||
                                    strcmp(e->state, "executing") == 0);
  if (!leased || e->lease_epoch != x->epoch || e->runner_id == NULL ||
      strcmp(e->runner_id, x->runner_id) != 0 ||
      e->lease_expires_at <= cr__ctl_now(x->c))
    return CR_ESTALE;
  return 0;
}

/* One report in a transaction of its own with its sequence number. */
static int report_txn(struct report_ctx *x, const json_t *rep, json_t *results,
                      int *ended) {
  cr_store *s = x->c->store;
  int64_t seq = jint(rep, "seq"), r_epoch = 0, r_seq = 0;
  const char *type = json_string_value(json_object_get(rep, "type"));
  if (!json_is_object(rep) || type == NULL || seq <= 0)
    return bad(x->err, x->errlen, "each report needs %s", "seq (> 0) and type");
  char *stored = NULL;
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_store_exec_report_get(s, x->eid, &r_epoch, &r_seq, &stored);
  if (rc == 0 && r_epoch == x->epoch && seq <= r_seq) { /* a retry */
    json_t *res = stored && seq == r_seq ? json_loads(stored, 0, NULL) : NULL;
    json_array_append_new(
        results,
        res ? res
            : json_pack("{s:I, s:b}", "seq", (json_int_t)seq, "duplicate", 1));
    cr__free(stored);
    /* nothing written: ended, not rolled back, so that a batch holding
     * this transaction (api_batch.c) is not doomed by a retry */
    return cr_store_end(s, 0);
  }
  cr__free(stored);
  cr_exec_rec_clear(&x->e);
  if (rc == 0)
    rc = cr_store_exec_get(s, x->eid, &x->e);
  json_t *res = json_pack("{s:I, s:b}", "seq", (json_int_t)seq, "ok", 1);
  if (rc == 0)
    rc = fenced(x);
  if (rc == 0)
    rc = apply_one(x, type, rep, res, ended);
  char *txt = rc == 0 ? dumps(res) : NULL;
  if (rc == 0)
    rc = cr_store_exec_report_set(s, x->eid, x->epoch, seq, txt);
  free(txt);
  rc = cr_store_end(s, rc);
  if (rc == 0)
    json_array_append(results, res);
  json_decref(res);
  return rc;
}

int cr_ctl_runner_report(const struct cr_ctl *c, const char *id, int64_t eid,
                         const json_t *body, json_t **out, int *ended,
                         char *err, size_t errlen) {
  const json_t *reps = json_object_get(body, "reports");
  const json_t *ep = json_object_get(body, "epoch");
  if (!json_is_integer(ep) || json_integer_value(ep) < 0)
    return bad(err, errlen, "%s must be the lease epoch of the claim", "epoch");
  if (!json_is_array(reps) || json_array_size(reps) == 0 ||
      json_array_size(reps) > 1000)
    return bad(err, errlen, "%s must be a list of 1 to 1000 reports",
               "reports");
  struct report_ctx x = {.c = c,
                         .runner_id = id,
                         .eid = eid,
                         .epoch = json_integer_value(ep),
                         .err = err,
                         .errlen = errlen};
  int rc = cr_store_exec_get(c->store, eid, &x.e);
  if (rc != 0)
    return rc;
  x.w = cr_config_find_work(c->cfg, x.e.work_id);
  json_t *results = json_array();
  int end = 0;
  size_t i;
  json_t *rep;
  json_array_foreach(reps, i, rep) {
    if (rc == 0)
      rc = report_txn(&x, rep, results, &end);
  }
  cr_exec_rec_clear(&x.e);
  if (ended != NULL)
    *ended = end;
  if (rc == 0)
    *out = json_pack("{s:o}", "results", results);
  else
    json_decref(results);
  return cr_exec_lost(rc) ? CR_ESTALE : rc;
}

/* ---- Revocation and views ------------------------------------------------ */

int cr_ctl_runner_revoke(const struct cr_ctl *c, const char *id,
                         size_t *released) {
  size_t n = 0;
  char reason[200];
  snprintf(reason, sizeof reason, "runner %s revoked", id);
  int rc = cr_store_begin(c->store);
  if (rc == 0)
    rc = cr_store_runner_revoke(c->store, id);
  if (rc == 0)
    rc = cr_store_exec_release_runner(c->store, id, reason, &n);
  if (rc == 0)
    rc = emit_runner(c, id, "deleted",
                     json_pack("{s:s, s:I}", "change", "revoked", "released",
                               (json_int_t)n));
  rc = cr_store_end(c->store, rc);
  if (rc == 0) /* wake the runner's waiting long poll: it ends refused */
    cr_claim_signal();
  if (released != NULL)
    *released = rc == 0 ? n : 0;
  return rc;
}

static json_t *parse_or(const char *txt, json_t *dflt) {
  json_t *v = txt ? json_loads(txt, 0, NULL) : NULL;
  if (v == NULL)
    return dflt;
  json_decref(dflt);
  return v;
}

static json_t *runner_json(const struct cr_runner_rec *r) {
  const char *status = r->revoked_at ? "revoked"
                       : r->online   ? "online"
                                     : "offline";
  return json_pack(
      "{s:s, s:s?, s:s, s:s, s:s?, s:o, s:o, s:I, s:I, s:o, s:o, s:I, s:I, "
      "s:I, s:s?}",
      "id", r->id, "name", r->name, "kind", "remote", "status", status,
      "version", r->version, "labels", parse_or(r->labels_json, json_array()),
      "providers", parse_or(r->providers_json, json_array()), "slots",
      (json_int_t)r->slots, "slots_free", (json_int_t)r->slots_free,
      "last_check_in", cr_ctl_jtime(r->last_seen_at), "registered_at",
      cr_ctl_jtime(r->registered_at), "running", (json_int_t)r->running,
      "completed", (json_int_t)r->completed, "failed", (json_int_t)r->failed,
      "registration", r->registration);
}

int cr_ctl_runner_list(const struct cr_ctl *c, json_t **out) {
  struct cr_runner_rec *r = NULL;
  size_t n = 0;
  int rc = cr_store_runner_list(c->store, &r, &n);
  if (rc != 0)
    return rc;
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < n; i++)
    json_array_append_new(arr, runner_json(&r[i]));
  cr_runner_rec_free_list(r, n);
  *out = arr;
  return arr ? 0 : CR_ENOMEM;
}

int cr_ctl_runner_view(const struct cr_ctl *c, const char *id, json_t **out) {
  struct cr_runner_rec r;
  int rc = cr_store_runner_view(c->store, id, &r);
  if (rc != 0)
    return rc;
  *out = runner_json(&r);
  cr_runner_rec_clear(&r);
  return *out ? 0 : CR_ENOMEM;
}

/* 1 when runner r (online) can take work w: it has the provider and every
 * label of the work. */
static int can_take(const struct cr_runner_rec *r,
                    const struct cr_config_work *w) {
  json_t *prov = parse_or(r->providers_json, NULL);
  json_t *labels = parse_or(r->labels_json, NULL);
  int has = 0;
  size_t i;
  json_t *v;
  json_array_foreach(prov, i, v) {
    const char *n = json_string_value(json_object_get(v, "name"));
    has |= n != NULL && strcmp(n, w->provider) == 0;
  }
  for (size_t k = 0; has && k < w->n_runner_labels; k++) {
    int found = 0;
    json_array_foreach(labels, i, v) found |=
        strcmp(json_string_value(v), w->runner_labels[k]) == 0;
    has = found;
  }
  json_decref(prov);
  json_decref(labels);
  return has;
}

char *cr_ctl_exec_waiting_reason(const struct cr_ctl *c,
                                 const struct cr_exec_rec *e,
                                 int local_serves) {
  const struct cr_config_work *w = cr_config_find_work(c->cfg, e->work_id);
  if (w == NULL || e->state == NULL || strcmp(e->state, "created") != 0 ||
      (w->n_runner_labels == 0 && local_serves))
    return NULL;
  struct cr_runner_rec *r = NULL;
  size_t n = 0;
  int able = 0;
  if (cr_store_runner_list(c->store, &r, &n) == 0)
    for (size_t i = 0; i < n && !able; i++)
      able = r[i].online && !r[i].revoked_at && can_take(&r[i], w);
  cr_runner_rec_free_list(r, n);
  if (able)
    return NULL;
  char labels[512] = "";
  size_t off = 0;
  for (size_t k = 0; k < w->n_runner_labels && off < sizeof labels; k++)
    off += (size_t)snprintf(labels + off, sizeof labels - off, "%s%s",
                            k ? ", " : "", w->runner_labels[k]);
  char buf[800];
  if (w->n_runner_labels > 0)
    snprintf(buf, sizeof buf,
             "waiting for a runner with labels [%s] and provider %s", labels,
             w->provider);
  else
    snprintf(buf, sizeof buf, "waiting for a runner with provider %s",
             w->provider);
  return cr__strdup(buf);
}
