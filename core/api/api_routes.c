/* api_routes.c: the REST API's route table (method, path, scope, handler,
 * OpenAPI operationId side by side, as docs/openapi.yaml lists them) and the
 * path matcher. */
#include "api/api_int.h"
#include "api/api_web.h"

#include <stdio.h>
#include <string.h>

#define R CR_SCOPE_READ
#define W CR_SCOPE_WRITE
#define A CR_SCOPE_ADMIN

const struct cr__api_route cr__api_routes[] = {
    {"GET", "/healthz", 0, cr__api_healthz, "getHealthz", 0},
    {"GET", "/readyz", 0, cr__api_readyz, "getReadyz", 0},
    {"GET", "/metrics", R, cr__api_metrics, "getMetrics", 0},
    {"GET", "/v1/openapi.json", 0, cr__api_openapi, "getOpenapi", 0},
    {"GET", "/v1/whoami", R, cr__api_whoami, "getWhoami", 0},
    {"GET", "/v1/authorizations", R, cr__api_auth_list, "listAuthorizations",
     0},
    {"POST", "/v1/authorizations", W, cr__api_auth_create,
     "createAuthorization", 0},
    {"GET", "/v1/authorizations/{id}", R, cr__api_auth_get, "getAuthorization",
     0},
    {"PATCH", "/v1/authorizations/{id}", W, cr__api_auth_patch,
     "patchAuthorization", 0},
    {"DELETE", "/v1/authorizations/{id}", W, cr__api_auth_delete,
     "deleteAuthorization", 0},
    {"GET", "/v1/authorizations/{id}/metrics", R, cr__api_auth_metrics,
     "getAuthorizationMetrics", 0},
    {"GET", "/v1/authorizations/{id}/health", R, cr__api_auth_health,
     "getAuthorizationHealth", 0},
    {"POST", "/v1/authorizations/{id}/check", W, cr__api_auth_check,
     "checkAuthorization", CR_API_SLOW},
    {"GET", "/v1/works", R, cr__api_work_list, "listWorks", 0},
    {"POST", "/v1/works", W, cr__api_work_create, "createWork", 0},
    {"GET", "/v1/works/{id}", R, cr__api_work_get, "getWork", 0},
    {"PATCH", "/v1/works/{id}", W, cr__api_work_patch, "patchWork", 0},
    {"DELETE", "/v1/works/{id}", W, cr__api_work_delete, "deleteWork", 0},
    {"GET", "/v1/works/{id}/schedule", R, cr__api_work_schedule,
     "getWorkSchedule", 0},
    {"POST", "/v1/works/{id}/runs", W, cr__api_work_run, "runWork", 0},
    {"GET", "/v1/works/{id}/executions", R, cr__api_work_execs,
     "listWorkExecutions", 0},
    {"GET", "/v1/works/{id}/states", R, cr__api_work_states, "listWorkStates",
     0},
    {"POST", "/v1/works/{id}/states", W, cr__api_work_state_set,
     "rollbackWorkState", 0},
    {"GET", "/v1/executions/{id}", R, cr__api_exec_get, "getExecution", 0},
    {"POST", "/v1/executions/{id}/cancel", W, cr__api_exec_cancel,
     "cancelExecution", 0},
    {"GET", "/v1/events", R, cr__api_event_list, "listEvents", 0},
    {"GET", "/v1/events/stream", R, cr__api_event_stream, "streamEvents", 0},
    {"GET", "/v1/subscriptions", R, cr__api_sub_list, "listSubscriptions", 0},
    {"POST", "/v1/subscriptions", W, cr__api_sub_create, "createSubscription",
     0},
    {"GET", "/v1/subscriptions/{id}", R, cr__api_sub_get, "getSubscription", 0},
    {"DELETE", "/v1/subscriptions/{id}", W, cr__api_sub_delete,
     "deleteSubscription", 0},
    {"GET", "/v1/subscriptions/{id}/attempts", R, cr__api_sub_attempts,
     "listSubscriptionAttempts", 0},
    {"POST", "/v1/subscriptions/{id}/replay", W, cr__api_sub_replay,
     "replaySubscription", 0},
    {"GET", "/v1/alerts", R, cr__api_alert_list, "listAlerts", 0},
    {"GET", "/v1/plugins", R, cr__api_plugin_list, "listPlugins", 0},
    {"GET", "/v1/plugins/{name}", R, cr__api_plugin_get, "getPlugin", 0},
    {"POST", "/v1/plugins/rescan", A, cr__api_plugin_rescan, "rescanPlugins",
     0},
    {"GET", "/v1/runners", R, cr__api_runner_list, "listRunners", 0},
    {"GET", "/v1/cluster", R, cr__api_cluster_get, "getCluster", 0},
    /* Remote runners: registration carries a registration token in its
     * body, and a runner's own calls its token (checked by the handler). */
    {"POST", "/v1/runners/register", 0, cr__api_runner_register,
     "registerRunner", 0},
    {"GET", "/v1/runners/{id}", R, cr__api_runner_get, "getRunner", 0},
    {"DELETE", "/v1/runners/{id}", A, cr__api_runner_delete, "revokeRunner", 0},
    {"POST", "/v1/runners/{id}/checkin", 0, cr__api_runner_checkin,
     "checkinRunner", 0},
    {"POST", "/v1/runners/{id}/claims", 0, cr__api_runner_claims,
     "claimExecutions", 0},
    {"POST", "/v1/runners/{id}/executions/{eid}/reports", 0,
     cr__api_runner_report, "reportExecution", CR_API_BATCH},
};

const size_t cr__api_n_routes =
    sizeof cr__api_routes / sizeof cr__api_routes[0];

/* Matches path against pattern; parameters are copied into r's buffer. */
static int match_one(struct cr__api_req *r, const char *pattern,
                     const char *path, int store) {
  size_t used = 0, np = 0;
  const char *p = pattern, *u = path;
  while (*p && *u) {
    if (*p == '{') {
      const char *pe = strchr(p, '}');
      size_t n = strcspn(u, "/");
      if (pe == NULL || n == 0 || np >= CR_API_MAX_PARAMS)
        return 0;
      if (store) {
        if (used + n + 1 > sizeof r->param_buf)
          return 0;
        memcpy(r->param_buf + used, u, n);
        r->param_buf[used + n] = '\0';
        r->params[np] = r->param_buf + used;
        used += n + 1;
      }
      np++;
      p = pe + 1;
      u += n;
      continue;
    }
    if (*p != *u)
      return 0;
    p++;
    u++;
  }
  return *p == '\0' && *u == '\0';
}

int cr__api_match(struct cr__api_req *r, const char *path, char *allow,
                  size_t allow_len) {
  size_t n = 0;
  allow[0] = '\0';
  for (size_t i = 0; i < cr__api_n_routes; i++) {
    const struct cr__api_route *rt = &cr__api_routes[i];
    if (!match_one(r, rt->pattern, path, 0))
      continue;
    if (strcmp(rt->method, r->method) == 0 ||
        (strcmp(r->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
      match_one(r, rt->pattern, path, 1);
      return (int)i;
    }
    int w =
        snprintf(allow + n, allow_len - n, "%s%s", n ? ", " : "", rt->method);
    if (w > 0 && (size_t)w < allow_len - n)
      n += (size_t)w;
  }
  return -1;
}
