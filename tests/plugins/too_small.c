/* too_small.c: test plugin whose struct_size is smaller than the ABI 1.0
 * descriptor (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    .magic = CR_PLUGIN_MAGIC,
    .abi_major = CR_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = offsetof(struct cr_plugin_descriptor, capabilities),
    TP_VALID_FIELDS("too-small"),
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
