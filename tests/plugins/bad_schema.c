/* bad_schema.c: test plugin whose credentials_schema is not JSON
 * (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    TP_VALID_FIELDS("bad-schema"),
    .credentials_schema = "{not json",
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
