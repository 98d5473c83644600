/* abi_old_minor_small.c: test plugin "oldminor" that declares minor 0 and
 * struct_size = the ABI 1.0 size (the end of `write`), as a plugin built
 * against the first SDK would. It must load on any 1.x host. */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    .magic = CR_PLUGIN_MAGIC,
    .abi_major = CR_PLUGIN_ABI_MAJOR,
    .abi_minor = 0,
    .struct_size = offsetof(struct cr_plugin_descriptor, write) +
                   sizeof(cr_plugin_write_fn),
    TP_VALID_FIELDS("oldminor"),
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
