/* api_works.c: /v1/works and /v1/executions: the integrations page (status
 * Active / Error / Disabled with its reason, last execution, next run,
 * upcoming collection times), run now, the enable toggles, and the sync
 * logs (executions with transitions) with cancel. Thin handlers over
 * control.h. */
#include "api/api_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control.h"
#include "util/alloc.h"
#include "util/error.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

void cr__api_work_list(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t limit;
  if (cr__api_query_int(r, res, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *items = NULL;
  char *next = NULL;
  int rc = cr_ctl_work_list(&c, cr__api_query(r, "after"), (size_t)limit,
                            cr__api_query(r, "status"),
                            cr__api_query(r, "provider"), &items, &next);
  cr__api_reply_page(r, res, rc, items, next, "works");
}

void cr__api_work_get(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_work_view(&c, r->params[0], &v);
  if (rc == 0)
    cr_ctl_auth_etag(v, res->etag);
  cr__api_reply(res, rc, v, "work");
}

void cr__api_work_patch(struct cr__api_req *r, struct cr__api_res *res) {
  json_t *body = cr__api_body_object(r, res);
  if (body == NULL)
    return;
  static const char *const keys[] = {"enabled", "error_email_notifications",
                                     NULL};
  if (cr__api_only_keys(res, body, keys) != 0) {
    json_decref(body);
    return;
  }
  const json_t *en = json_object_get(body, "enabled"),
               *ee = json_object_get(body, "error_email_notifications");
  if ((en && !json_is_boolean(en)) || (ee && !json_is_boolean(ee))) {
    cr__api_error(res, 422, "invalid_type",
                  en && !json_is_boolean(en) ? "/enabled"
                                             : "/error_email_notifications",
                  "must be true or false");
    json_decref(body);
    return;
  }
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  if (cr__api_if_match(r, res, "work") != 0) {
    json_decref(body);
    return;
  }
  char where[300] = "";
  cr_config *after = NULL;
  int rc = cr_ctl_work_set(&c, r->params[0], en ? json_is_true(en) : -1,
                           ee ? json_is_true(ee) : -1, &after, where);
  json_decref(body);
  cr__api_changed(r, res, rc, where, "work", after);
}

void cr__api_work_delete(struct cr__api_req *r, struct cr__api_res *res) {
  cr__api_delete_object(r, res, "work");
}

void cr__api_work_schedule(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t n;
  if (cr__api_query_int(r, res, "next", 1, 100, 5, &n))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_work_schedule(&c, r->params[0], (size_t)n, &v);
  cr__api_reply(res, rc, rc == 0 ? json_pack("{s:o}", "next", v) : NULL,
                "work");
}

void cr__api_work_run(struct cr__api_req *r, struct cr__api_res *res) {
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  int64_t id = 0;
  int rc = cr_ctl_work_run(&c, r->params[0], &id);
  if (rc == CR_EEXIST) {
    cr__api_error(res, 409, "execution_open", NULL,
                  "work '%s' already has an open execution (%" PRId64 ")",
                  r->params[0], id);
    return;
  }
  if (rc == CR_EPERM) {
    cr__api_error(res, 409, "disabled", NULL, "work '%s' is disabled",
                  r->params[0]);
    return;
  }
  if (rc != 0) {
    cr__api_error_rc(res, rc, "work");
    return;
  }
  if (r->api->o.hooks.kick)
    r->api->o.hooks.kick(r->api->o.hooks.ud);
  cr_api_events_notify(r->api);
  json_t *v = NULL;
  rc = cr_ctl_exec_view(&c, id, &v);
  snprintf(res->location, sizeof res->location, "/v1/executions/%" PRId64, id);
  cr__api_reply(res, rc, v, "execution");
  if (rc == 0)
    res->status = 201;
}

static int exec_id(struct cr__api_req *r, struct cr__api_res *res,
                   int64_t *id) {
  char *end = NULL;
  long long v = strtoll(r->params[0], &end, 10);
  if (*end != '\0' || v <= 0) {
    cr__api_error(res, 404, "not_found", NULL, "execution '%s' not found",
                  r->params[0]);
    return -1;
  }
  *id = v;
  return 0;
}

void cr__api_work_execs(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t limit, before;
  if (cr__api_query_int(r, res, "limit", 1, PAGE_MAX, 50, &limit) ||
      cr__api_query_int(r, res, "after", 1, INT64_MAX, 0, &before))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *items = NULL;
  char *next = NULL;
  int rc =
      cr_ctl_exec_list(&c, r->params[0], before, (size_t)limit, &items, &next);
  cr__api_reply_page(r, res, rc, items, next, "work");
}

void cr__api_exec_get(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t id;
  if (exec_id(r, res, &id))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *v = NULL;
  int rc = cr_ctl_exec_view(&c, id, &v);
  cr__api_reply(res, rc, v, "execution");
}

void cr__api_exec_cancel(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t id;
  if (exec_id(r, res, &id))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  int rc = cr_ctl_exec_cancel(&c, id);
  if (rc == CR_ESTATE) {
    cr__api_error(res, 409, "already_final", NULL,
                  "execution %" PRId64 " has already ended", id);
    return;
  }
  if (rc == 0 && r->api->o.hooks.kick)
    r->api->o.hooks.kick(r->api->o.hooks.ud);
  json_t *v = NULL;
  if (rc == 0)
    rc = cr_ctl_exec_view(&c, id, &v);
  cr__api_reply(res, rc, v, "execution");
}
