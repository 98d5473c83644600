/* no_create.c: test plugin without a create callback (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER, .name = "no-create",   .version = "1.0.0",
    .auth_methods = tp_methods,  .destroy = tp_destroy,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
