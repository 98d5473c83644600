/* hello.c: a provider plugin built outside the connrun tree by
 * test_sdk_out_of_tree, against the installed SDK header alone (no connrun
 * libraries). Its health check is Healthy when the credentials mention
 * "world" and says hello either way. */
#include <connrun/plugin.h>

#include <stdio.h>
#include <string.h>

struct hello {
  const struct cr_host_api *api;
  int friendly;
};

static int hello_create(const struct cr_host_api *api,
                        const struct cr_plugin_params *params,
                        void **instance_out, char *errbuf, size_t errlen) {
  struct hello *h = api->alloc(sizeof *h);
  if (h == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  h->api = api;
  h->friendly = params->credentials_json != NULL &&
                strstr(params->credentials_json, "world") != NULL;
  *instance_out = h;
  return CR_PLUGIN_OK;
}

static void hello_destroy(void *instance) {
  struct hello *h = instance;
  h->api->free(h);
}

static int hello_health(void *instance, cr_plugin_ctx *ctx,
                        struct cr_plugin_health_result *out) {
  struct hello *h = instance;
  (void)ctx;
  out->status =
      h->friendly ? CR_PLUGIN_HEALTH_HEALTHY : CR_PLUGIN_HEALTH_UNHEALTHY;
  snprintf(out->reason, out->reason_len, "hello %s",
           h->friendly ? "world" : "stranger");
  return CR_PLUGIN_OK;
}

static const char *const hello_methods[] = {"token", NULL};

static const struct cr_plugin_descriptor hello_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "hello",
    .display_name = "Hello",
    .version = "0.0.1",
    .auth_methods = hello_methods,
    .credentials_schema = "{\"type\":\"object\"}",
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK,
    .create = hello_create,
    .destroy = hello_destroy,
    .health_check = hello_health,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &hello_desc;
}
