/* host_api.c: the default host services table (struct cr_host_api) and the
 * cr_plugin_ctx it works on: logging with redaction, record/checkpoint/state
 * sinks, cancellation and error capture (see host_api.h for the rules).
 * HTTP through libcurl lives in host_http.c. */
#include "plugin/host_api.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plugin/host_api_int.h"

/* ---- Context ------------------------------------------------------------- */

int cr_plugin_ctx_init(cr_plugin_ctx *ctx, const char *authorization_id,
                       const cr_redactor *redactor) {
  if (ctx == NULL)
    return CR_EINVAL;
  memset(ctx, 0, sizeof *ctx);
  ctx->authorization_id = authorization_id;
  ctx->redactor = redactor;
  ctx->log_min_level = CR_PLUGIN_LOG_DEBUG;
  atomic_init(&ctx->cancel, 0);
  ctx->http.timeout_ms = CR_HOST_HTTP_TIMEOUT_MS;
  ctx->http.connect_timeout_ms = CR_HOST_HTTP_CONNECT_TIMEOUT_MS;
  ctx->http.max_body = CR_HOST_HTTP_MAX_BODY;
  return 0;
}

void cr_plugin_ctx_cleanup(cr_plugin_ctx *ctx) {
  if (ctx == NULL)
    return;
  cr__host_http_cleanup(ctx);
}

void cr_plugin_ctx_set_log(cr_plugin_ctx *ctx, cr_plugin_log_sink fn,
                           void *ud) {
  if (ctx == NULL)
    return;
  ctx->log = fn;
  ctx->log_ud = ud;
}

void cr_plugin_ctx_set_sinks(cr_plugin_ctx *ctx,
                             const struct cr_plugin_sinks *s) {
  if (ctx == NULL)
    return;
  if (s != NULL)
    ctx->sinks = *s;
  else
    memset(&ctx->sinks, 0, sizeof ctx->sinks);
}

void cr_plugin_ctx_cancel(cr_plugin_ctx *ctx) {
  if (ctx != NULL)
    atomic_store(&ctx->cancel, 1);
}

/* ---- Logging
 * ----------------------------------------------------------------- */

static int clamp_level(int level) {
  if (level < CR_PLUGIN_LOG_DEBUG)
    return CR_PLUGIN_LOG_DEBUG;
  return level > CR_PLUGIN_LOG_ERROR ? CR_PLUGIN_LOG_ERROR : level;
}

int cr__host_wants_log(const cr_plugin_ctx *ctx, int level) {
  return ctx != NULL && ctx->log != NULL && level >= ctx->log_min_level;
}

/* Hands an already redacted line to the sink, control characters (which
 * could forge extra log lines) replaced by spaces. msg is modified. */
static void sink_line(cr_plugin_ctx *ctx, int level, char *msg) {
  for (char *p = msg; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20 && *p != '\t')
      *p = ' ';
  ctx->log(ctx->log_ud, level, msg);
}

static void host_log(cr_plugin_ctx *ctx, int level, const char *msg) {
  level = clamp_level(level);
  if (!cr__host_wants_log(ctx, level) || msg == NULL)
    return;
  char *red = NULL;
  if (cr_redact(ctx->redactor, msg, &red) != 0) {
    char notice[] = "(log message dropped: out of memory while redacting)";
    sink_line(ctx, level, notice);
    return;
  }
  sink_line(ctx, level, red);
  cr__free(red);
}

void cr__host_log_redacted(cr_plugin_ctx *ctx, int level, const char *fmt,
                           ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  sink_line(ctx, level, line);
}

/* ---- Errors, records, state -------------------------------------------------
 */

static void host_set_error(cr_plugin_ctx *ctx, int result, const char *message,
                           int64_t retry_after_ms) {
  if (ctx == NULL)
    return;
  struct cr_plugin_last_error *e = &ctx->last_error;
  e->result = result;
  e->retry_after_ms = retry_after_ms > 0 ? retry_after_ms : 0;
  cr_redact_into(ctx->redactor, message != NULL ? message : "", 0, e->message,
                 sizeof e->message);
  if (result == CR_PLUGIN_OK) {
    e->message[0] = '\0';
    e->retry_after_ms = 0;
  }
}

/* Records a host-side refusal as the ctx's error and returns result. */
static int refuse(cr_plugin_ctx *ctx, int result, const char *message) {
  host_set_error(ctx, result, message, 0);
  return result;
}

int cr__host_cancelled(cr_plugin_ctx *ctx) {
  if (ctx == NULL)
    return 0;
  if (ctx->cancel_also != NULL && atomic_load(ctx->cancel_also) != 0)
    return 1;
  return atomic_load(&ctx->cancel) != 0;
}

static int host_emit(cr_plugin_ctx *ctx, const char *stream, const char *json,
                     size_t len) {
  if (ctx == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (cr__host_cancelled(ctx))
    return CR_PLUGIN_ERR_CANCELLED;
  if (stream == NULL || json == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "emit: stream and record must not be NULL");
  if (ctx->sinks.emit == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "this context does not take records");
  return ctx->sinks.emit(ctx->sinks.ud, stream, json, len);
}

static int host_checkpoint(cr_plugin_ctx *ctx, const char *state_json) {
  if (ctx == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (state_json == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "checkpoint: state must not be NULL");
  if (ctx->sinks.checkpoint == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "this context does not take checkpoints");
  return ctx->sinks.checkpoint(ctx->sinks.ud, state_json);
}

static const char *host_state(cr_plugin_ctx *ctx) {
  if (ctx == NULL || ctx->sinks.state == NULL)
    return NULL;
  return ctx->sinks.state(ctx->sinks.ud);
}

static void host_progress(cr_plugin_ctx *ctx, const char *stream, uint64_t done,
                          uint64_t total) {
  if (ctx != NULL && stream != NULL && ctx->sinks.progress != NULL)
    ctx->sinks.progress(ctx->sinks.ud, stream, done, total);
}

static int host_credentials_update(cr_plugin_ctx *ctx,
                                   const char *credentials_json) {
  if (ctx == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  if (credentials_json == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "credentials_update: credentials must not be NULL");
  if (ctx->sinks.credentials_update == NULL)
    return refuse(ctx, CR_PLUGIN_ERR_SYSTEM,
                  "this context cannot store credentials");
  return ctx->sinks.credentials_update(ctx->sinks.ud, credentials_json);
}

/* Copies in (NULL: "") redacted into out, control characters as spaces. */
static void clean_into(const cr_plugin_ctx *ctx, const char *in, char *out,
                       size_t len) {
  cr_redact_into(ctx->redactor, in != NULL ? in : "", 0, out, len);
  for (char *p = out; *p != '\0'; p++)
    if ((unsigned char)*p < 0x20)
      *p = ' ';
}

static int host_record_failed(cr_plugin_ctx *ctx, size_t index, const char *key,
                              const char *message) {
  if (ctx == NULL || ctx->sinks.record_failed == NULL)
    return CR_PLUGIN_ERR_SYSTEM; /* not in write(): nothing to report to */
  char k[128], m[512];
  clean_into(ctx, key, k, sizeof k);
  clean_into(ctx, message, m, sizeof m);
  return ctx->sinks.record_failed(ctx->sinks.ud, index, k, m);
}

/* ---- The table
 * ---------------------------------------------------------------- */

static const struct cr_host_api default_api = {
    .struct_size = sizeof(struct cr_host_api),
    .abi_major = CR_PLUGIN_ABI_MAJOR,
    .abi_minor = CR_PLUGIN_ABI_MINOR,
    .alloc = cr__malloc,
    .free = cr__free,
    .log = host_log,
    .emit = host_emit,
    .checkpoint = host_checkpoint,
    .state = host_state,
    .progress = host_progress,
    .cancelled = cr__host_cancelled,
    .http = cr__host_http,
    .http_response_free = cr__host_http_response_free,
    .set_error = host_set_error,
    .credentials_update = host_credentials_update,
    .record_failed = host_record_failed,
    .http_start = cr__host_http_start,
    .http_finish = cr__host_http_finish,
};

const struct cr_host_api *cr_host_api_default(void) { return &default_api; }
