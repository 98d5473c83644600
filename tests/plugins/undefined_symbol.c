/* undefined_symbol.c: test plugin that calls a function nobody defines. It
 * is linked without -Wl,--no-undefined, so dlopen(RTLD_NOW) fails with
 * "undefined symbol: cr_tp_symbol_nobody_defines". */
#include "tp_common.h"

extern int cr_tp_symbol_nobody_defines(void);

static int undef_read(void *instance, cr_plugin_ctx *ctx) {
  (void)instance;
  (void)ctx;
  return cr_tp_symbol_nobody_defines();
}

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "undefined-symbol",
    .version = "1.0.0",
    .auth_methods = tp_methods,
    .capabilities = CR_PLUGIN_CAP_READ,
    .create = tp_create,
    .destroy = tp_destroy,
    .read = undef_read,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
