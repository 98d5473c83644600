/* api_misc.c: the small resources: /healthz, /readyz, /v1/openapi.json,
 * /v1/subscriptions (views, attempts, replay), /v1/alerts, /v1/plugins and
 * /v1/runners. Thin handlers over control.h and the store. */
#include "api/api_int.h"
#include "control/ctl_cluster.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "control/control.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

void cr__api_healthz(struct cr__api_req *r, struct cr__api_res *res) {
  (void)r;
  cr__api_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

void cr__api_readyz(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t last = 0;
  int store_ok = cr_store_event_last_id(r->store, &last) == 0;
  int cfg_ok = r->cfg != NULL;
  const struct cr_api_hooks *h = &r->api->o.hooks;
  int loop_ok = h->loop_alive == NULL || h->loop_alive(h->ud);
  int ok = store_ok && cfg_ok && loop_ok;
  cr__api_json(res, ok ? 200 : 503,
               json_pack("{s:s, s:{s:b, s:b, s:b}}", "status",
                         ok ? "ready" : "not ready", "checks", "store",
                         store_ok, "configuration", cfg_ok, "loop", loop_ok));
  if (!ok)
    res->retry_after = 1;
}

/* The OpenAPI document, embedded at build time (docs/openapi.yaml converted
 * to JSON by the build: openapi_doc.c). */
extern const char cr__openapi_json[];
extern const size_t cr__openapi_json_len;

void cr__api_openapi(struct cr__api_req *r, struct cr__api_res *res) {
  (void)r;
  res->status = 200;
  res->text = cr__malloc(cr__openapi_json_len);
  if (res->text == NULL) {
    cr__api_error_rc(res, CR_ENOMEM, "openapi");
    return;
  }
  memcpy(res->text, cr__openapi_json, cr__openapi_json_len);
  res->text_len = cr__openapi_json_len;
  res->content_type = "application/json";
}

void cr__api_sub_list(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_sub_list(&c, &v);
  cr__api_reply(res, rc,
                rc == 0 ? json_pack("{s:o, s:n}", "items", v, "next") : NULL,
                "subscriptions");
}

void cr__api_sub_get(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_sub_view(&c, r->params[0], &v);
  cr__api_reply(res, rc, v, "subscription");
}

void cr__api_sub_attempts(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t limit, before;
  if (cr__api_query_int(r, res, "limit", 1, CR_ATTEMPT_LIST_MAX_LIMIT, 100,
                        &limit) ||
      cr__api_query_int(r, res, "after", 0, INT64_MAX, 0, &before))
    return;
  if (cr_config_find_subscription(r->cfg, r->params[0]) == NULL) {
    cr__api_error_rc(res, CR_ENOENT, "subscription");
    return;
  }
  struct cr_delivery_attempt_rec *a = NULL;
  size_t n = 0;
  int rc = cr_store_sub_attempts(r->store, r->params[0], before, (size_t)limit,
                                 &a, &n);
  if (rc != 0) {
    cr__api_error_rc(res, rc, "subscription");
    return;
  }
  json_t *items = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(
        items, json_pack("{s:I, s:I, s:o, s:i, s:I, s:s?}", "id",
                         (json_int_t)a[i].id, "event_id",
                         (json_int_t)a[i].event_id, "at", cr_ctl_jtime(a[i].at),
                         "http_status", a[i].http_status, "latency_ms",
                         (json_int_t)a[i].latency_ms, "error", a[i].error));
  char cursor[24];
  if (n == (size_t)limit)
    snprintf(cursor, sizeof cursor, "%" PRId64, a[n - 1].id);
  cr_delivery_attempt_free_list(a, n);
  json_t *body = json_pack("{s:o}", "items", items);
  cr__api_page(r, body, n == (size_t)limit ? cursor : NULL);
  cr__api_json(res, 200, body);
}

void cr__api_sub_replay(struct cr__api_req *r, struct cr__api_res *res) {
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL)
    return;
  static const char *const keys[] = {"since", NULL};
  const json_t *since = json_object_get(body, "since");
  if (cr__api_only_keys(res, body, keys) != 0) {
    json_decref(body);
    return;
  }
  if (!json_is_integer(since) || json_integer_value(since) < 0) {
    cr__api_error(res, 422, since ? "invalid_type" : "missing_field", "/since",
                  "'since' (milliseconds since the epoch) is required");
    json_decref(body);
    return;
  }
  size_t n = 0;
  int rc = cr_config_find_subscription(r->cfg, r->params[0])
               ? cr_store_outbox_replay(r->store, r->params[0],
                                        json_integer_value(since), &n)
               : CR_ENOENT;
  json_decref(body);
  cr__api_reply(res, rc,
                rc == 0 ? json_pack("{s:I}", "queued", (json_int_t)n) : NULL,
                "subscription");
}

void cr__api_alert_list(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_alert_list(&c, &v);
  cr__api_reply(res, rc, rc == 0 ? json_pack("{s:o}", "items", v) : NULL,
                "alerts");
}

void cr__api_plugin_list(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL, *refused = NULL;
  int rc = cr_ctl_plugin_list(&c, 0, &v);
  if (rc == 0 && (rc = cr_ctl_plugin_refused(&c, &refused)) != 0)
    json_decref(v);
  cr__api_reply(
      res, rc,
      rc == 0 ? json_pack("{s:o, s:o}", "items", v, "refused", refused) : NULL,
      "plugins");
}

void cr__api_plugin_rescan(struct cr__api_req *r, struct cr__api_res *res) {
  const struct cr_api_hooks *h = &r->api->o.hooks;
  if (h->plugins_rescan == NULL) {
    cr__api_error(res, 501, "not_supported", NULL,
                  "this server cannot rescan its plugin directories");
    return;
  }
  h->plugins_rescan(h->ud);
  cr__api_json(res, 202, json_pack("{s:s}", "status", "rescanning"));
}

void cr__api_plugin_get(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_plugin_view(&c, r->params[0], &v);
  cr__api_reply(res, rc, v, "plugin");
}

void cr__api_cluster_get(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_cluster_view(&c, &v);
  cr__api_reply(res, rc, v, "cluster");
}
