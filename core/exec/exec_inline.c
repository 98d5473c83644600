/* exec_inline.c: `isolation: inline`: the plugin runs on the calling thread
 * (the daemon's runner thread) with sinks that feed the run's handlers
 * directly. Fast, but a plugin crash takes the daemon down and the timeout
 * is cooperative (checked at every sink call; HTTP requests have their own
 * timeouts): for trusted plugins only. */
#include <stdio.h>
#include <string.h>

#include "exec/exec_run_int.h"
#include "exec/execution.h"
#include "plugin/host_api.h"
#include "util/log.h"
#include "util/redact.h"

struct inline_ud {
  struct run *r;
  cr_plugin_ctx *ctx;
};

static int stop_if_needed(struct inline_ud *u) {
  if (cr__exec_tick(u->r)) {
    cr_plugin_ctx_cancel(u->ctx);
    return CR_PLUGIN_ERR_CANCELLED;
  }
  return 0;
}

static int sink_emit(void *ud, const char *stream, const char *json,
                     size_t len) {
  struct inline_ud *u = ud;
  if (cr__exec_on_record(u->r, stream, strlen(stream), json, len) != 0) {
    cr_plugin_ctx_cancel(u->ctx);
    return CR_PLUGIN_ERR_CANCELLED;
  }
  return stop_if_needed(u);
}

static int sink_checkpoint(void *ud, const char *state) {
  struct inline_ud *u = ud;
  if (cr__exec_on_checkpoint(u->r, state, strlen(state)) != 0) {
    cr_plugin_ctx_cancel(u->ctx);
    return CR_PLUGIN_ERR_CANCELLED;
  }
  return stop_if_needed(u);
}

static const char *sink_state(void *ud) {
  struct inline_ud *u = ud;
  return cr__exec_state(u->r);
}

static void sink_progress(void *ud, const char *stream, uint64_t done,
                          uint64_t total) {
  (void)stream, (void)done, (void)total;
  stop_if_needed(ud);
}

static int sink_credentials(void *ud, const char *json) {
  struct inline_ud *u = ud;
  return cr__exec_on_credentials(u->r, json, strlen(json)) == 0
             ? 0
             : CR_PLUGIN_ERR_SYSTEM;
}

static void sink_log(void *ud, int level, const char *msg) {
  struct inline_ud *u = ud;
  cr__exec_on_log(u->r, level, msg, strlen(msg));
}

int cr__exec_inline(struct run *r, char *msg, size_t msglen,
                    int64_t *after_ms) {
  const struct cr_exec_env *env = cr__exec_env(r);
  const struct cr_config_work *w = cr__exec_work(r);
  const struct cr_plugin_descriptor *desc = cr_plugin_desc(cr__exec_plugin(r));
  char *config = cr_config_work_config_text(w);
  char *settings = cr_config_settings_json(w->auth);
  struct cr_plugin_params params = {
      .struct_size = sizeof params,
      .authorization_id = w->auth ? w->auth->id : "",
      .auth_method = w->auth && w->auth->method ? w->auth->method : "none",
      .credentials_json = cr__exec_credentials(r),
      .config_json = config ? config : "{}",
      .work_id = w->id,
      .settings_json = settings ? settings : "{}",
  };
  void *inst = NULL;
  int code = desc->create(cr_host_api_default(), &params, &inst, msg, msglen);
  free(config);
  free(settings);
  if (code != 0)
    return code;
  /* The run's own credentials (maybe rotated, so not in the config's
   * redactor) are what this plugin could leak. */
  cr_redactor *red = NULL;
  if (cr_redactor_from_json(params.credentials_json, &red) != 0) {
    desc->destroy(inst);
    snprintf(msg, msglen, "out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  cr_plugin_ctx ctx;
  cr_plugin_ctx_init(&ctx, params.authorization_id, red);
  struct inline_ud u = {r, &ctx};
  struct cr_plugin_sinks sinks = {
      .ud = &u,
      .emit = sink_emit,
      .checkpoint = sink_checkpoint,
      .state = sink_state,
      .progress = sink_progress,
      .credentials_update = sink_credentials,
  };
  cr_plugin_ctx_set_sinks(&ctx, &sinks);
  cr_plugin_ctx_set_log(&ctx, sink_log, &u);
  ctx.cancel_also = env->stop;
  code = desc->read(inst, &ctx);
  cr__exec_mark_ran(r);
  cr__exec_on_metrics(r, ctx.counters.requests, ctx.counters.errors);
  if (code != 0) {
    snprintf(msg, msglen, "%s",
             ctx.last_error.message[0] ? ctx.last_error.message
                                       : "plugin read failed");
    *after_ms = ctx.last_error.retry_after_ms;
  }
  desc->destroy(inst);
  cr_plugin_ctx_cleanup(&ctx);
  cr_redactor_free(red);
  return code;
}
