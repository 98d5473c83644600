/* cfgtest.c: test plugin "cfgtest" for the configuration checks: methods
 * api_key and basic, a credentials schema (api_key: a string starting with
 * "SG." of at least 8 characters, nothing else allowed) and a work config
 * schema (streams: a non-empty list of "contacts"/"lists", optional
 * page_size 1..1000, nothing else). Health check and read; no write. */
#include <connrun/plugin.h>

static int cfgtest_create(const struct cr_host_api *api,
                          const struct cr_plugin_params *params,
                          void **instance_out, char *errbuf, size_t errlen) {
  (void)api;
  (void)params;
  (void)errbuf;
  (void)errlen;
  *instance_out = NULL;
  return CR_PLUGIN_OK;
}

static void cfgtest_destroy(void *instance) { (void)instance; }

static int cfgtest_health(void *instance, cr_plugin_ctx *ctx,
                          struct cr_plugin_health_result *out) {
  (void)instance;
  (void)ctx;
  out->status = CR_PLUGIN_HEALTH_HEALTHY;
  return CR_PLUGIN_OK;
}

static int cfgtest_read(void *instance, cr_plugin_ctx *ctx) {
  (void)instance;
  (void)ctx;
  return CR_PLUGIN_OK;
}

static const char *const cfgtest_methods[] = {"api_key", "basic", NULL};

static const struct cr_plugin_descriptor cfgtest_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "cfgtest",
    .display_name = "Config test",
    .version = "1.0.0",
    .description = "test plugin for configuration checks",
    .auth_methods = cfgtest_methods,
    .credentials_schema = "{\"type\":\"object\",\"required\":[\"api_key\"],"
                          "\"additionalProperties\":false,"
                          "\"properties\":{\"api_key\":{\"type\":\"string\","
                          "\"pattern\":\"^SG\\\\.\",\"minLength\":8}}}",
    .config_schema = "{\"type\":\"object\",\"required\":[\"streams\"],"
                     "\"additionalProperties\":false,"
                     "\"properties\":{"
                     "\"streams\":{\"type\":\"array\",\"minItems\":1,"
                     "\"items\":{\"enum\":[\"contacts\",\"lists\"]}},"
                     "\"page_size\":{\"type\":\"integer\",\"minimum\":1,"
                     "\"maximum\":1000},"
                     "\"verbose\":{\"type\":\"boolean\"}}}",
    .streams_json = "[{\"name\":\"contacts\",\"primary_key\":[\"id\"]},"
                    "{\"name\":\"lists\"}]",
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ,
    .create = cfgtest_create,
    .destroy = cfgtest_destroy,
    .health_check = cfgtest_health,
    .read = cfgtest_read,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &cfgtest_desc;
}
