/* dup_alpha.c: a valid test plugin that reuses the provider name "alpha" of
 * good_alpha.c. Directory loads go in file-name order, so dup_alpha.so loads
 * first and good_alpha.so is then refused as a duplicate. */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "alpha",
    .version = "9.9.9-dup",
    .auth_methods = tp_methods,
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK,
    .create = tp_create,
    .destroy = tp_destroy,
    .health_check = tp_health,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
