/* abi_future_major.c: test plugin built for ABI major 2 (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    .magic = CR_PLUGIN_MAGIC,
    .abi_major = CR_PLUGIN_ABI_MAJOR + 1,
    .abi_minor = 0,
    .struct_size = sizeof(struct cr_plugin_descriptor),
    TP_VALID_FIELDS("abi-future-major"),
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
