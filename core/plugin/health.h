/* health.h: running one health check of an authorization through its
 * provider plugin: create -> health_check -> destroy, with the outcome
 * (status, redacted reason, timing, request counters) in one struct.
 *
 * Mapping of what the plugin did to the outcome:
 *   - no health_check capability      -> Unknown "provider does not support
 *                                        health checks"
 *   - create() fails with CONFIG      -> Unhealthy, reason = create message
 *   - create() fails otherwise        -> Unknown, reason = create message
 *   - health_check() returns 0        -> the plugin's status and reason (an
 *                                        out-of-range status becomes Unknown)
 *   - health_check() returns CONFIG   -> Unhealthy, reason = set_error message
 *   - any other error class           -> Unknown, reason = set_error message
 *                                        (then the plugin's reason, then a
 *                                        generic text)
 * The reason always passes through the redactor (with the tail rule when
 * the plugin filled its whole buffer, so a cut secret is hidden too), and
 * is never empty.
 *
 * Blocking: the plugin's HTTP calls block the calling thread; run health
 * checks on a worker thread.
 */
#ifndef CR_HEALTH_H
#define CR_HEALTH_H

#include <connrun/plugin.h>
#include <stdint.h>

#include "plugin/host_api.h"
#include "plugin/plugin_host.h"
#include "util/redact.h"

/* The lower-case word for a status: "healthy", "unhealthy" or "unknown"
 * (any other value). Static storage. It is also the verb of the
 * authorization's health event. */
const char *cr_health_status_word(int status);

/* The result of one health check. */
struct cr_health_outcome {
  int status;             /* enum cr_plugin_health */
  char reason[512];       /* human reason, redacted, never empty */
  int64_t checked_at_ms;  /* wall clock (cr__now_ms) when the check started */
  uint64_t requests;      /* HTTP requests the plugin made */
  uint64_t errors;        /* of which errors (see host_api.h "Counters") */
  int64_t duration_ms;    /* create to destroy, monotonic */
  int result;             /* the plugin's cr_plugin_result (0 if none) */
  int64_t retry_after_ms; /* from set_error with RATE_LIMITED, else 0 */
};

/* Optional settings of cr_health_check_ex. Zero-initialise, then set what
 * you need. */
struct cr_health_options {
  const struct cr_host_api *api; /* NULL: cr_host_api_default() */
  cr_plugin_log_sink log;        /* plugin and HTTP log lines; NULL drops */
  void *log_ud;
  int log_min_level;        /* enum cr_plugin_log_level; 0 = DEBUG */
  long timeout_ms;          /* per-request HTTP timeout; 0: the host default */
  const atomic_int *cancel; /* when non-NULL and set, the check is cancelled
                               (polled at request boundaries and during
                               transfers) */
  /* Credentials the plugin rotated during the check (api->
   * credentials_update: an OAuth provider that hands out a new refresh
   * token on every use). NULL: the plugin's call fails. json borrowed;
   * return 0 or a cr_plugin_result. */
  int (*credentials_update)(void *ud, const char *json);
  void *credentials_ud;
};

/* Runs a health check of the authorization described by params (borrowed;
 * credentials_json should already be validated against the plugin's
 * schema) with plugin p (borrowed). red (borrowed, may be NULL) holds the
 * secrets to keep out of the reason and logs. Fills *out (caller-owned).
 * Returns 0 whenever *out was filled (whatever the status), CR_EINVAL when
 * p, params or out is NULL. */
int cr_health_check(const cr_plugin *p, const struct cr_plugin_params *params,
                    const cr_redactor *red, struct cr_health_outcome *out);

/* cr_health_check with options (opts may be NULL). */
int cr_health_check_ex(const cr_plugin *p,
                       const struct cr_plugin_params *params,
                       const cr_redactor *red,
                       const struct cr_health_options *opts,
                       struct cr_health_outcome *out);

#endif
