/* cfgtest.c: test plugin "cfgtest" for the configuration checks: methods
 * api_key and basic, a credentials schema (api_key: a string starting with
 * "SG." of at least 8 characters, nothing else allowed) and a work config
 * schema (streams: a non-empty list of "contacts"/"lists", optional
 * page_size 1..1000, nothing else), and (ABI minor 1) a settings schema
 * (base_url: an http(s) URL, nothing else). Health check (Healthy; its
 * reason the settings it was given, if any) and read; no write. */
#include <connrun/plugin.h>
#include <stdio.h>
#include <string.h>

struct inst {
  char settings[256];
};

static struct inst the_inst; /* one at a time is enough for the tests */

static int cfgtest_create(const struct cr_host_api *api,
                          const struct cr_plugin_params *params,
                          void **instance_out, char *errbuf, size_t errlen) {
  (void)api;
  (void)errbuf;
  (void)errlen;
  snprintf(the_inst.settings, sizeof the_inst.settings, "%s",
           CR_PARAMS_HAS(params, settings_json) ? params->settings_json : "");
  *instance_out = &the_inst;
  return CR_PLUGIN_OK;
}

static void cfgtest_destroy(void *instance) { (void)instance; }

static int cfgtest_health(void *instance, cr_plugin_ctx *ctx,
                          struct cr_plugin_health_result *out) {
  (void)ctx;
  const struct inst *in = instance;
  out->status = CR_PLUGIN_HEALTH_HEALTHY;
  if (in->settings[0] != '\0' && strcmp(in->settings, "{}") != 0)
    snprintf(out->reason, out->reason_len, "settings %s", in->settings);
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
    .settings_schema = "{\"type\":\"object\",\"additionalProperties\":false,"
                       "\"properties\":{\"base_url\":{\"type\":\"string\","
                       "\"pattern\":\"^https?://\"}}}",
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
