/* missing_callback.c: test plugin that declares CR_PLUGIN_CAP_READ but has
 * no read callback (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "missing-callback",
    .version = "1.0.0",
    .auth_methods = tp_methods,
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ,
    .create = tp_create,
    .destroy = tp_destroy,
    .health_check = tp_health,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
