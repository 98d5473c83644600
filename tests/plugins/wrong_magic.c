/* wrong_magic.c: test plugin with a bad magic number (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    .magic = 0xdeadbeefu,
    .abi_major = CR_PLUGIN_ABI_MAJOR,
    .abi_minor = CR_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(struct cr_plugin_descriptor),
    TP_VALID_FIELDS("wrong-magic"),
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
