/* abi_old_major.c: test plugin built for ABI major 0 (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    .magic = CR_PLUGIN_MAGIC,
    .abi_major = 0,
    .abi_minor = 9,
    .struct_size = sizeof(struct cr_plugin_descriptor),
    TP_VALID_FIELDS("abi-old-major"),
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
