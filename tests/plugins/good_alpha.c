/* good_alpha.c: test plugin "alpha", valid: health_check + read, credentials
 * and config schemas that both require a field, two streams. The health check
 * is Healthy when the credentials contain "secret". */
#include <connrun/plugin.h>

#include <stdio.h>
#include <string.h>

static int instance_token;

static int alpha_create(const struct cr_host_api *api,
                        const struct cr_plugin_params *params,
                        void **instance_out, char *errbuf, size_t errlen) {
  (void)api;
  (void)errbuf;
  (void)errlen;
  *instance_out = (void *)(params->credentials_json != NULL &&
                                   strstr(params->credentials_json, "secret")
                               ? &instance_token
                               : NULL);
  return CR_PLUGIN_OK;
}

static void alpha_destroy(void *instance) { (void)instance; }

static int alpha_health(void *instance, cr_plugin_ctx *ctx,
                        struct cr_plugin_health_result *out) {
  (void)ctx;
  out->status =
      instance ? CR_PLUGIN_HEALTH_HEALTHY : CR_PLUGIN_HEALTH_UNHEALTHY;
  snprintf(out->reason, out->reason_len, "%s",
           instance ? "alpha ok" : "alpha: bad key");
  return CR_PLUGIN_OK;
}

static int alpha_read(void *instance, cr_plugin_ctx *ctx) {
  (void)instance;
  (void)ctx;
  return CR_PLUGIN_OK;
}

static const char *const alpha_methods[] = {"api_key", "oauth2", NULL};

static const struct cr_plugin_descriptor alpha_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "alpha",
    .display_name = "Alpha",
    .version = "1.0.0",
    .description = "test plugin alpha",
    .auth_methods = alpha_methods,
    .credentials_schema = "{\"type\":\"object\",\"required\":[\"api_key\"],"
                          "\"properties\":{\"api_key\":{\"type\":\"string\"}}}",
    .config_schema = "{\"type\":\"object\",\"required\":[\"api_key\"],"
                     "\"properties\":{\"api_key\":{\"type\":\"string\"}}}",
    .streams_json = "[{\"name\":\"contacts\",\"primary_key\":[\"id\"]},"
                    "{\"name\":\"lists\"}]",
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ,
    .create = alpha_create,
    .destroy = alpha_destroy,
    .health_check = alpha_health,
    .read = alpha_read,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &alpha_desc;
}
