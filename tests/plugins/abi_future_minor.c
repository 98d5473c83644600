/* abi_future_minor.c: test plugin that needs a newer minor of the ABI than
 * the host provides (refused with both versions named). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    .magic = CR_PLUGIN_MAGIC,
    .abi_major = CR_PLUGIN_ABI_MAJOR,
    .abi_minor = CR_PLUGIN_ABI_MINOR + 1,
    .struct_size = sizeof(struct cr_plugin_descriptor),
    TP_VALID_FIELDS("abi-future-minor"),
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
