/* many_plugin.c: the plugin bench_api builds 50 times (-DNAME=p00...p49) to
 * time a daemon that starts with 50 plugins: a valid descriptor with
 * schemas and a stream, so every load check runs. Not part of the build:
 * bench_api compiles it with the system compiler at run time. */
#include <connrun/plugin.h>

#define STR2(x) #x
#define STR(x) STR2(x)
#ifndef VERSION /* -DVERSION=2.0.0 builds an upgrade (bench_plugins) */
#define VERSION 1.0.0
#endif

static int mp_create(const struct cr_host_api *api,
                     const struct cr_plugin_params *params, void **out,
                     char *errbuf, size_t errlen) {
  (void)api, (void)params, (void)errbuf, (void)errlen;
  *out = NULL;
  return CR_PLUGIN_OK;
}

static void mp_destroy(void *instance) { (void)instance; }

static int mp_read(void *instance, cr_plugin_ctx *ctx) {
  (void)instance, (void)ctx;
  return CR_PLUGIN_OK;
}

static const char *const mp_methods[] = {"api_key", NULL};

static const struct cr_plugin_descriptor mp_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = STR(NAME),
    .version = STR(VERSION),
    .auth_methods = mp_methods,
    .credentials_schema = "{\"type\":\"object\",\"properties\":{\"api_key\":"
                          "{\"type\":\"string\",\"minLength\":4}}}",
    .config_schema = "{\"type\":\"object\",\"properties\":{\"streams\":"
                     "{\"type\":\"array\",\"items\":{\"enum\":[\"items\"]}}}}",
    .streams_json = "[{\"name\":\"items\",\"primary_key\":[\"id\"]}]",
    .capabilities = CR_PLUGIN_CAP_READ,
    .create = mp_create,
    .destroy = mp_destroy,
    .read = mp_read,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &mp_desc;
}
