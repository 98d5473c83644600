/* api_objects.c: creating, changing and deleting objects through the API:
 * POST /v1/authorizations, /v1/works and /v1/subscriptions (with
 * Idempotency-Key), the PATCH answers with If-Match, and DELETE. Objects
 * declared in the configuration file stay owned by it: changing one is a
 * 409 naming FILE:LINE. The work is done by control/ctl_objects.c; the
 * daemon reloads afterwards (the reload hook). */
#include "api/api_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control.h"
#include "control/ctl_objects.h"
#include "util/alloc.h"
#include "util/error.h"

#define IDEM_KEY_MAX 255

static int view_of(const struct cr_ctl *c, const char *kind, const char *id,
                   json_t **out) {
  if (!strcmp(kind, "authorization"))
    return cr_ctl_auth_view(c, id, 1, NULL, 0, out);
  if (!strcmp(kind, "work"))
    return cr_ctl_work_view(c, id, out);
  return cr_ctl_sub_view(c, id, out);
}

static void after_change(struct cr__api_req *r) {
  const struct cr_api_hooks *h = &r->api->o.hooks;
  if (h->reload)
    h->reload(h->ud);
  if (h->kick)
    h->kick(h->ud);
  cr_api_events_notify(r->api);
}

/* Answers 200/201 with the view of (kind, id) in cfg. */
static void answer_view(struct cr__api_req *r, struct cr__api_res *res,
                        int status, const char *kind, const char *id,
                        const cr_config *cfg) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  c.cfg = cfg;
  json_t *v = NULL;
  int rc = view_of(&c, kind, id, &v);
  if (rc == 0 && strcmp(kind, "subscription") != 0)
    cr_ctl_auth_etag(v, res->etag);
  cr__api_reply(res, rc, v, kind);
  if (rc == 0)
    res->status = status;
}

int cr__api_if_match(struct cr__api_req *r, struct cr__api_res *res,
                     const char *kind) {
  const char *want =
      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-Match");
  if (want == NULL || !strcmp(want, "*"))
    return 0;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = view_of(&c, kind, r->params[0], &v);
  if (rc != 0) {
    cr__api_error_rc(res, rc, kind);
    return -1;
  }
  char etag[24];
  cr_ctl_auth_etag(v, etag);
  json_decref(v);
  if (!strncmp(want, "W/", 2))
    want += 2;
  if (strcmp(want, etag) != 0) {
    snprintf(res->etag, sizeof res->etag, "%s", etag);
    cr__api_error(res, 412, "precondition_failed", NULL,
                  "%s '%s' changed since %s was read (now %s)", kind,
                  r->params[0], want, etag);
    return -1;
  }
  return 0;
}

void cr__api_changed(struct cr__api_req *r, struct cr__api_res *res, int rc,
                     const char *where, const char *kind, cr_config *after) {
  if (rc == CR_EPERM)
    cr__api_error(res, 409, "managed_by_config", NULL,
                  "%s '%s' is declared in %s: change it there", kind,
                  r->params[0], where);
  else if (rc == CR_ECONFIG)
    cr__api_error(res, 422, "invalid", NULL, "%s", where);
  else if (rc != 0)
    cr__api_error_rc(res, rc, kind);
  else {
    after_change(r);
    answer_view(r, res, 200, kind, r->params[0], after);
  }
  cr_config_free(after);
}

/* ---- Delete ---- */

void cr__api_delete_object(struct cr__api_req *r, struct cr__api_res *res,
                           const char *kind) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  char msg[1024] = "";
  int rc = cr_ctl_object_remove(&c, kind, r->params[0], msg, sizeof msg);
  cr__api_removed(r, res, kind, rc, msg);
}

void cr__api_removed(struct cr__api_req *r, struct cr__api_res *res,
                     const char *kind, int rc, const char *msg) {
  const char *id = r->params[0];
  if (rc == CR_EPERM)
    cr__api_error(res, 409, "managed_by_config", NULL,
                  "%s '%s' is declared in %s: remove it there", kind, id, msg);
  else if (rc == CR_EBUSY)
    cr__api_error(res, 409, "in_use", NULL,
                  "authorization '%s' is used by works %s: delete or change "
                  "them first, or delete with ?force=true to disable them",
                  id, msg);
  else if (rc == CR_ECONFIG)
    cr__api_error(res, 409, "in_use", NULL, "%s", msg);
  else if (rc != 0)
    cr__api_error_rc(res, rc, kind);
  else {
    after_change(r);
    res->status = 204;
  }
}

void cr__api_sub_delete(struct cr__api_req *r, struct cr__api_res *res) {
  cr__api_delete_object(r, res, "subscription");
}

/* ---- Create, with Idempotency-Key ---- */

static void body_hash(const struct cr__api_req *r, char out[65]) {
  unsigned char d[32];
  unsigned int n = sizeof d;
  EVP_Digest(r->body ? r->body : "", r->body_len, d, &n, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* A remembered answer for the key: 1 when res holds it (the replay, or the
 * 422 of a key reused with another body), 0 when the key is new. */
static int replayed(struct cr__api_req *r, struct cr__api_res *res,
                    const char *key, const char *route, const char *hash) {
  struct cr_idem_rec rec;
  int rc = cr_store_idem_get(r->store, r->actor, key, &rec);
  if (rc == CR_ENOENT)
    return 0;
  if (rc != 0) {
    cr__api_error_rc(res, rc, "idempotency key");
    return 1;
  }
  if (strcmp(rec.route, route) != 0 || strcmp(rec.body_hash, hash) != 0) {
    cr__api_error(res, 422, "idempotency_key_reused", NULL,
                  "Idempotency-Key '%s' was used with another request", key);
  } else {
    json_t *v =
        rec.response_json ? json_loads(rec.response_json, 0, NULL) : NULL;
    cr__api_json(res, rec.status, v);
  }
  cr_idem_rec_clear(&rec);
  return 1;
}

static int remember(struct cr__api_req *r, const struct cr__api_res *res,
                    const char *key, const char *route, const char *hash) {
  char *text = res->body ? json_dumps(res->body, JSON_COMPACT) : NULL;
  struct cr_idem_rec rec = {.route = (char *)route,
                            .body_hash = (char *)hash,
                            .response_json = text,
                            .status = res->status};
  int rc = cr_store_idem_put(r->store, r->actor, key, &rec);
  free(text);
  return rc;
}

static void create(struct cr__api_req *r, struct cr__api_res *res,
                   const char *kind, const char *plural) {
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL)
    return;
  /* A table export writes where its destination says (a file path, a
   * database): only an admin may create one. */
  const char *wf = json_string_value(json_object_get(body, "workflow"));
  if (strcmp(kind, "subscription") == 0 && wf != NULL &&
      strcmp(wf, "table_system_events") == 0 &&
      (r->scopes & CR_SCOPE_ADMIN) == 0) {
    cr__api_error(res, 403, "forbidden", "/workflow",
                  "a table_system_events subscription writes to a database of "
                  "its own choosing: it needs the 'admin' scope");
    json_decref(body);
    return;
  }
  const char *key =
      MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
  if (key != NULL && (key[0] == '\0' || strlen(key) > IDEM_KEY_MAX)) {
    cr__api_error(res, 400, "invalid_header", NULL,
                  "Idempotency-Key must be 1 to %d characters", IDEM_KEY_MAX);
    json_decref(body);
    return;
  }
  char route[64], hash[65];
  snprintf(route, sizeof route, "POST /v1/%s", plural);
  body_hash(r, hash);
  int rc = key ? cr_store_begin(r->store) : 0;
  if (rc != 0) {
    cr__api_error_rc(res, rc, kind);
    json_decref(body);
    return;
  }
  if (key == NULL || !replayed(r, res, key, route, hash)) {
    struct cr_ctl c;
    cr__api_ctl(r, &c);
    char id[130] = "", msg[1024] = "";
    cr_config *after = NULL;
    rc = cr_ctl_object_create(&c, kind, body, id, &after, msg, sizeof msg);
    if (rc == CR_EEXIST)
      cr__api_error(res, 409, "conflict", "/id", "%s", msg);
    else if (rc == CR_ECONFIG)
      cr__api_error(res, 422, "invalid", NULL, "%s", msg);
    else if (rc != 0)
      cr__api_error_rc(res, rc, kind);
    else {
      answer_view(r, res, 201, kind, id, after);
      snprintf(res->location, sizeof res->location, "/v1/%s/%s", plural, id);
      if (key != NULL)
        rc = remember(r, res, key, route, hash);
    }
    cr_config_free(after);
  }
  if (key != NULL) {
    int end =
        rc == 0 ? cr_store_commit(r->store) : (cr_store_rollback(r->store), 0);
    if (end != 0)
      cr__api_error_rc(res, end, kind);
  }
  if (res->status == 201)
    after_change(r);
  json_decref(body);
}

void cr__api_auth_create(struct cr__api_req *r, struct cr__api_res *res) {
  create(r, res, "authorization", "authorizations");
}

void cr__api_work_create(struct cr__api_req *r, struct cr__api_res *res) {
  create(r, res, "work", "works");
}

void cr__api_sub_create(struct cr__api_req *r, struct cr__api_res *res) {
  create(r, res, "subscription", "subscriptions");
}
