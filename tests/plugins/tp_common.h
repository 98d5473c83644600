/* tp_common.h: no-op callbacks shared by the broken test plugins, so each
 * test plugin file only shows the one thing that is wrong with it. */
#ifndef CR_TP_COMMON_H
#define CR_TP_COMMON_H

#include <connrun/plugin.h>

static inline int tp_create(const struct cr_host_api *api,
                            const struct cr_plugin_params *params,
                            void **instance_out, char *errbuf, size_t errlen) {
  (void)api;
  (void)params;
  (void)errbuf;
  (void)errlen;
  *instance_out = NULL;
  return CR_PLUGIN_OK;
}

static inline void tp_destroy(void *instance) { (void)instance; }

static inline int tp_health(void *instance, cr_plugin_ctx *ctx,
                            struct cr_plugin_health_result *out) {
  (void)instance;
  (void)ctx;
  out->status = CR_PLUGIN_HEALTH_HEALTHY;
  return CR_PLUGIN_OK;
}

static inline int tp_read(void *instance, cr_plugin_ctx *ctx) {
  (void)instance;
  (void)ctx;
  return CR_PLUGIN_OK;
}

static const char *const tp_methods[] = {"api_key", NULL};

/* The fields of a valid health-check-only plugin called name_. */
#define TP_VALID_FIELDS(name_)                                                 \
  .name = name_, .display_name = name_, .version = "1.0.0",                    \
  .auth_methods = tp_methods, .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK,      \
  .create = tp_create, .destroy = tp_destroy, .health_check = tp_health

#endif
