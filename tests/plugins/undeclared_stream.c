/* undeclared_stream.c: declares the stream "items" but emits on "ghost";
 * `connrun plugins test` must fail its read check. */
#include "tp_common.h"

static const struct cr_host_api *us_api;

static int us_read_emit(void *instance, cr_plugin_ctx *ctx) {
  (void)instance;
  static const char rec[] = "{\"id\":1}";
  int rc = us_api->emit(ctx, "ghost", rec, sizeof rec - 1);
  return rc != CR_PLUGIN_OK ? rc : us_api->checkpoint(ctx, "{\"n\":1}");
}

static const char *const us_methods[] = {"none", NULL};

static const struct cr_plugin_descriptor us_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "undeclared_stream",
    .version = "0.0.1",
    .auth_methods = us_methods,
    .streams_json = "[{\"name\":\"items\",\"primary_key\":[\"id\"]}]",
    .capabilities = CR_PLUGIN_CAP_READ,
    .create = tp_create,
    .destroy = tp_destroy,
    .read = us_read_emit,
};

CR_PLUGIN_ENTRY(api) {
  us_api = api;
  return &us_desc;
}
