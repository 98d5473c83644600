/* bad_name.c: test plugin whose provider name has characters outside
 * [a-z0-9_-] (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    TP_VALID_FIELDS("Bad Name"),
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
