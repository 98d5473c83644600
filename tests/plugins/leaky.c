/* leaky.c: test plugin "leaky": a read that emits one record and a
 * checkpoint, and leaks 64 KiB of libc memory every time (touched, so it
 * is resident): what the conformance kit's memory check must catch. */
#include <connrun/plugin.h>

#include <stdlib.h>
#include <string.h>

static int leaky_create(const struct cr_host_api *api,
                        const struct cr_plugin_params *params, void **out,
                        char *errbuf, size_t errlen) {
  (void)params, (void)errbuf, (void)errlen;
  *out = (void *)api;
  return CR_PLUGIN_OK;
}

static void leaky_destroy(void *instance) { (void)instance; }

static void *volatile chain; /* keeps the compiler from dropping the leak */

static int leaky_read(void *instance, cr_plugin_ctx *ctx) {
  const struct cr_host_api *api = instance;
  char *lost = malloc(64 * 1024);
  if (lost != NULL) {
    memset(lost, 1, 64 * 1024); /* never freed, on purpose */
    *(void **)lost = chain;
    chain = lost;
  }
  api->emit(ctx, "items", "{\"id\":1}", 8);
  return api->checkpoint(ctx, "{\"n\":1}");
}

static const char *const leaky_methods[] = {"none", NULL};

static const struct cr_plugin_descriptor leaky_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "leaky",
    .version = "1.0.0",
    .auth_methods = leaky_methods,
    .streams_json = "[{\"name\":\"items\",\"primary_key\":[\"id\"]}]",
    .capabilities = CR_PLUGIN_CAP_READ,
    .create = leaky_create,
    .destroy = leaky_destroy,
    .read = leaky_read,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &leaky_desc;
}
