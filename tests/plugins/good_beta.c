/* good_beta.c: test plugin "beta", valid: write only, no schemas (any
 * object), no streams, auth method "none". */
#include <connrun/plugin.h>

static int beta_create(const struct cr_host_api *api,
                       const struct cr_plugin_params *params,
                       void **instance_out, char *errbuf, size_t errlen) {
  (void)api;
  (void)params;
  (void)errbuf;
  (void)errlen;
  *instance_out = NULL;
  return CR_PLUGIN_OK;
}

static void beta_destroy(void *instance) { (void)instance; }

static int beta_write(void *instance, cr_plugin_ctx *ctx, const char *stream,
                      const char *const *records, size_t n) {
  (void)instance;
  (void)ctx;
  (void)stream;
  (void)records;
  (void)n;
  return CR_PLUGIN_OK;
}

static const char *const beta_methods[] = {"none", NULL};

static const struct cr_plugin_descriptor beta_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,  .name = "beta",
    .display_name = "Beta",       .version = "0.2.0",
    .auth_methods = beta_methods, .capabilities = CR_PLUGIN_CAP_WRITE,
    .create = beta_create,        .destroy = beta_destroy,
    .write = beta_write,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &beta_desc;
}
