/* api_states.c: a work's sync state through the REST API: its versions
 * (GET /v1/works/{id}/states) and a rollback to one of them (POST
 * /v1/works/{id}/states {"rollback_to": N}), refused while an execution of
 * the work is open. Thin handlers over control.h (cr_ctl_state_*), which
 * `connrun state` uses too. */
#include "api/api_int.h"

#include <inttypes.h>
#include <stdio.h>

#include "control/control.h"
#include "util/error.h"

void cr__api_work_states(struct cr__api_req *r, struct cr__api_res *res) {
  int64_t limit;
  if (cr__api_query_int(r, res, "limit", 1, 1000, 50, &limit))
    return;
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  json_t *items = NULL;
  int rc = cr_ctl_state_history(&c, r->params[0], (size_t)limit, &items);
  cr__api_reply(res, rc, rc == 0 ? json_pack("{s:o}", "items", items) : NULL,
                "work");
}

/* The version to roll back to from body, or -1 with the 422 answered. */
static int64_t rollback_to(json_t *body, struct cr__api_res *res) {
  static const char *const keys[] = {"rollback_to", NULL};
  if (cr__api_only_keys(res, body, keys) != 0)
    return -1;
  const json_t *v = json_object_get(body, "rollback_to");
  if (json_is_integer(v) && json_integer_value(v) >= 1)
    return json_integer_value(v);
  cr__api_error(res, 422, v ? "invalid_type" : "missing_field", "/rollback_to",
                "'rollback_to' (a version, from 1) is required");
  return -1;
}

void cr__api_work_state_set(struct cr__api_req *r, struct cr__api_res *res) {
  json_t *body = cr__api_body_object(r, res);
  int64_t to = body ? rollback_to(body, res) : -1;
  json_decref(body);
  if (to < 0)
    return;
  const char *id = r->params[0];
  if (cr_config_find_work(r->cfg, id) == NULL) {
    cr__api_error(res, 404, "not_found", NULL, "work not found");
    return;
  }
  struct cr_ctl c;
  cr__api_ctl(r, &c);
  struct cr_ctl_state_change ch = {.version = to, .if_idle = 1};
  int64_t version = 0;
  int rc = cr_ctl_state_set(&c, id, &ch, &version);
  if (rc == CR_ENOENT) {
    cr__api_error(res, 404, "not_found", NULL,
                  "work '%s' has no state version %" PRId64, id, to);
    return;
  }
  if (rc == CR_ESTATE) {
    cr__api_error(res, 409, "execution_open", NULL,
                  "work '%s' has an open execution: its next checkpoint "
                  "would overwrite the rollback",
                  id);
    return;
  }
  struct cr_sync_state_rec rec = {0};
  if (rc == 0) {
    cr_api_events_notify(r->api);
    rc = cr_store_sync_state_get(r->store, id, version, &rec);
  }
  cr__api_reply(res, rc, rc == 0 ? cr_ctl_state_json(&rec) : NULL, "work");
  cr_sync_state_rec_clear(&rec);
  if (rc == 0) {
    res->status = 201;
    snprintf(res->location, sizeof res->location, "/v1/works/%s/states", id);
  }
}
