/* no_auth_methods.c: test plugin whose auth_methods list is empty
 * (refused: at least one method is required). */
#include "tp_common.h"

static const char *const no_methods[] = {NULL};

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "no-auth-methods",
    .version = "1.0.0",
    .auth_methods = no_methods,
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK,
    .create = tp_create,
    .destroy = tp_destroy,
    .health_check = tp_health,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
