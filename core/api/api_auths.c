/* api_auths.c: /v1/authorizations: the Authorization Summary, its list,
 * rename (name and description only), delete (?force=true disables the
 * works that use it), activity metrics, health history and "check now".
 * Thin: each handler checks its input and calls one control function
 * (control.h). */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>

#include "control/control.h"
#include "control/ctl_objects.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

void cr__api_auth_list(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t limit;
  if (cr__api_query_int(r, res, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *items = NULL;
  char *next = NULL;
  int rc = cr_ctl_auth_list(&c, cr__api_query(r, "after"), (size_t)limit,
                            cr__api_query(r, "provider"),
                            cr__api_query(r, "health"), &items, &next);
  cr__api_reply_page(r, res, rc, items, next, "authorizations");
}

static int sort_order(struct cr__api_req *r, struct cr__api_res *res,
                      int *desc) {
  const char *o = cr__api_query(r, "order");
  *desc = o != NULL && strcmp(o, "desc") == 0;
  if (o != NULL && !*desc && strcmp(o, "asc") != 0) {
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "order must be asc or desc");
    return -1;
  }
  return 0;
}

void cr__api_auth_get(struct cr__api_req *r, struct cr__api_res *res) {
  int desc;
  if (sort_order(r, res, &desc))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc =
      cr_ctl_auth_view(&c, r->params[0], 1, cr__api_query(r, "sort"), desc, &v);
  if (rc == CR_EINVAL) {
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "sort must be name, type, status or created");
    return;
  }
  if (rc == 0)
    cr_ctl_auth_etag(v, res->etag);
  cr__api_reply(res, rc, v, "authorization");
}

void cr__api_auth_patch(struct cr__api_req *r, struct cr__api_res *res) {
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL)
    return;
  const char *key;
  json_t *val;
  json_object_foreach(body, key, val) {
    char ptr[300];
    snprintf(ptr, sizeof ptr, "/%s", key);
    int known = !strcmp(key, "name") || !strcmp(key, "description");
    if (!known) {
      cr__api_error(res, 422, "not_editable", ptr,
                    "'%s' cannot be changed: only name and description of an "
                    "authorization can be edited; create a new "
                    "authorization for a different configuration",
                    key);
      json_decref(body);
      return;
    }
    if (!json_is_string(val) ||
        (!strcmp(key, "name") && json_string_length(val) == 0)) {
      cr__api_error(res, 422, "invalid_type", ptr, "'%s' must be a %sstring",
                    key, strcmp(key, "name") ? "" : "non-empty ");
      json_decref(body);
      return;
    }
  }
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  if (cr__api_if_match(r, res, "authorization") != 0) {
    json_decref(body);
    return;
  }
  char where[300] = "";
  cr_config *after = NULL;
  int rc = cr_ctl_auth_rename(
      &c, r->params[0], json_string_value(json_object_get(body, "name")),
      json_string_value(json_object_get(body, "description")), &after, where);
  json_decref(body);
  cr__api_changed(r, res, rc, where, "authorization", after);
}

void cr__api_auth_delete(struct cr__api_req *r, struct cr__api_res *res) {
  const char *force = cr__api_query(r, "force");
  if (force != NULL && strcmp(force, "true") && strcmp(force, "false")) {
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "force must be true or false");
    return;
  }
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  char msg[1024] = "", blocker[130];
  int rc = cr_ctl_auth_remove(&c, r->params[0], force && !strcmp(force, "true"),
                              msg, sizeof msg, blocker);
  if (rc == CR_EPERM && blocker[0])
    cr__api_error(res, 409, "managed_by_config", NULL,
                  "authorization '%s' is used by work '%s', declared in %s: "
                  "a work of the configuration file is not disabled through "
                  "the API; change it there first",
                  r->params[0], blocker, msg);
  else
    cr__api_removed(r, res, "authorization", rc, msg);
}

void cr__api_auth_metrics(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t now = cr__now_ms(), from, to;
  if (cr__api_query_time(r, res, "from", now - INT64_C(7) * 86400000, &from) ||
      cr__api_query_time(r, res, "to", 0, &to))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  const char *g = cr__api_query(r, "granularity");
  int rc = cr_ctl_auth_metrics(&c, r->params[0], g, from, to, &v);
  if (rc == CR_EINVAL) {
    cr__api_error(res, 400, "invalid_parameter", NULL,
                  "granularity must be hour, day, week or month and from "
                  "before to");
    return;
  }
  cr__api_reply(res, rc, v, "authorization");
}

void cr__api_auth_health(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t limit;
  if (cr__api_query_int(r, res, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_auth_health(&c, r->params[0], (size_t)limit, &v);
  cr__api_reply(res, rc, rc == 0 ? json_pack("{s:o}", "items", v) : NULL,
                "authorization");
}

void cr__api_auth_check(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_auth_check(&c, r->params[0], &r->api->cancel, &v);
  if (rc == CR_ENOTSUP) {
    cr__api_error(res, 409, "provider_not_loaded", NULL,
                  "the provider of authorization '%s' is not loaded",
                  r->params[0]);
    return;
  }
  cr_api_events_notify(r->api);
  cr__api_reply(res, rc, v, "authorization");
}
