/* bad_streams.c: test plugin whose streams_json is an object, not an array
 * (refused). */
#include "tp_common.h"

static const struct cr_plugin_descriptor desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    TP_VALID_FIELDS("bad-streams"),
    .streams_json = "{\"name\":\"contacts\"}",
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &desc;
}
