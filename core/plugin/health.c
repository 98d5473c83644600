/* health.c: running one health check of an authorization through its
 * provider plugin and mapping what happened to a cr_health_outcome (see
 * health.h). */
#include "plugin/health.h"

#include "plugin/host_api.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define NO_SUPPORT "provider does not support health checks"

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *result_text(int rc) {
  switch (rc) {
  case CR_PLUGIN_ERR_CONFIG:
    return "configuration error";
  case CR_PLUGIN_ERR_TRANSIENT:
    return "transient error";
  case CR_PLUGIN_ERR_RATE_LIMITED:
    return "rate limited";
  case CR_PLUGIN_ERR_SYSTEM:
    return "internal error";
  case CR_PLUGIN_ERR_CANCELLED:
    return "cancelled";
  default:
    return "unknown error";
  }
}

const char *cr_health_status_word(int status) {
  switch (status) {
  case CR_PLUGIN_HEALTH_HEALTHY:
    return "healthy";
  case CR_PLUGIN_HEALTH_UNHEALTHY:
    return "unhealthy";
  default:
    return "unknown";
  }
}

static int status_for_error(int rc) {
  return rc == CR_PLUGIN_ERR_CONFIG ? CR_PLUGIN_HEALTH_UNHEALTHY
                                    : CR_PLUGIN_HEALTH_UNKNOWN;
}

/* A plugin-written buffer of len bytes: NUL-terminated, and whether it was
 * full (then it may end in a cut secret: redact with the tail rule). */
static unsigned terminate(char *buf, size_t len) {
  buf[len - 1] = '\0';
  return strlen(buf) == len - 1 ? CR_REDACT_TAIL : 0;
}

static void set_reason(struct cr_health_outcome *out, const cr_redactor *red,
                       const char *text, unsigned flags) {
  cr_redact_into(red, text, flags, out->reason, sizeof out->reason);
}

static void apply_options(cr_plugin_ctx *ctx,
                          const struct cr_health_options *opts) {
  if (opts == NULL)
    return;
  cr_plugin_ctx_set_log(ctx, opts->log, opts->log_ud);
  ctx->log_min_level = opts->log_min_level;
  if (opts->timeout_ms > 0)
    ctx->http.timeout_ms = opts->timeout_ms;
  ctx->cancel_also = opts->cancel;
  ctx->sinks.credentials_update = opts->credentials_update;
  ctx->sinks.ud = opts->credentials_ud;
}

/* create() failed with rc: the reason is its message. */
static void create_failed(struct cr_health_outcome *out, const cr_redactor *red,
                          int rc, char *errbuf, size_t errlen) {
  unsigned flags = terminate(errbuf, errlen);
  out->result = rc;
  out->status = status_for_error(rc);
  if (errbuf[0] != '\0') {
    set_reason(out, red, errbuf, flags);
    return;
  }
  char msg[128];
  snprintf(msg, sizeof msg, "provider plugin could not start (%s)",
           result_text(rc));
  set_reason(out, red, msg, 0);
}

/* health_check() returned rc with res / the ctx's last error. */
static void check_done(struct cr_health_outcome *out, const cr_redactor *red,
                       int rc, const struct cr_plugin_health_result *res,
                       char *reason, size_t reason_len,
                       const cr_plugin_ctx *ctx) {
  unsigned flags = terminate(reason, reason_len);
  out->result = rc;
  if (rc == CR_PLUGIN_OK) {
    if (res->status < CR_PLUGIN_HEALTH_UNKNOWN ||
        res->status > CR_PLUGIN_HEALTH_UNHEALTHY) {
      char msg[96];
      snprintf(msg, sizeof msg,
               "provider plugin returned an invalid health status (%d)",
               res->status);
      out->status = CR_PLUGIN_HEALTH_UNKNOWN;
      set_reason(out, red, msg, 0);
      return;
    }
    out->status = res->status;
    set_reason(out, red, reason, flags);
    return;
  }
  out->status = status_for_error(rc);
  if (ctx->last_error.result == rc)
    out->retry_after_ms = ctx->last_error.retry_after_ms;
  if (ctx->last_error.result != CR_PLUGIN_OK &&
      ctx->last_error.message[0] != '\0') {
    set_reason(out, red, ctx->last_error.message, 0);
  } else if (reason[0] != '\0') {
    set_reason(out, red, reason, flags);
  } else {
    char msg[96];
    snprintf(msg, sizeof msg, "health check failed (%s)", result_text(rc));
    set_reason(out, red, msg, 0);
  }
}

/* create -> health_check -> destroy with ctx. */
static void run_check(const struct cr_plugin_descriptor *d,
                      const struct cr_host_api *api,
                      const struct cr_plugin_params *params,
                      const cr_redactor *red, cr_plugin_ctx *ctx,
                      struct cr_health_outcome *out) {
  char errbuf[512];
  memset(errbuf, 0, sizeof errbuf);
  void *inst = NULL;
  int rc = d->create(api, params, &inst, errbuf, sizeof errbuf);
  if (rc != CR_PLUGIN_OK) {
    create_failed(out, red, rc, errbuf, sizeof errbuf);
    return;
  }
  char reason[512];
  memset(reason, 0, sizeof reason);
  struct cr_plugin_health_result res;
  memset(&res, 0, sizeof res);
  res.struct_size = sizeof res;
  res.status = CR_PLUGIN_HEALTH_UNKNOWN;
  res.reason = reason;
  res.reason_len = sizeof reason;
  rc = d->health_check(inst, ctx, &res);
  if (d->destroy != NULL)
    d->destroy(inst);
  check_done(out, red, rc, &res, reason, sizeof reason, ctx);
}

int cr_health_check_ex(const cr_plugin *p,
                       const struct cr_plugin_params *params,
                       const cr_redactor *red,
                       const struct cr_health_options *opts,
                       struct cr_health_outcome *out) {
  if (p == NULL || params == NULL || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  out->checked_at_ms = cr__now_ms();
  int64_t t0 = mono_ms();
  const struct cr_plugin_descriptor *d = cr_plugin_desc(p);
  if (d == NULL || d->create == NULL ||
      !(d->capabilities & CR_PLUGIN_CAP_HEALTH_CHECK) ||
      d->health_check == NULL) {
    out->status = CR_PLUGIN_HEALTH_UNKNOWN;
    set_reason(out, red, NO_SUPPORT, 0);
    return 0;
  }
  struct cr_plugin_params prm = *params;
  prm.struct_size = sizeof prm;
  cr_plugin_ctx ctx;
  cr_plugin_ctx_init(&ctx, prm.authorization_id, red);
  apply_options(&ctx, opts);
  const struct cr_host_api *api =
      opts != NULL && opts->api != NULL ? opts->api : cr_host_api_default();
  run_check(d, api, &prm, red, &ctx, out);
  out->requests = ctx.counters.requests;
  out->errors = ctx.counters.errors;
  cr_plugin_ctx_cleanup(&ctx);
  if (out->reason[0] == '\0')
    set_reason(out, NULL, cr_health_status_word(out->status), 0);
  out->duration_ms = mono_ms() - t0;
  return 0;
}

int cr_health_check(const cr_plugin *p, const struct cr_plugin_params *params,
                    const cr_redactor *red, struct cr_health_outcome *out) {
  return cr_health_check_ex(p, params, red, NULL, out);
}
