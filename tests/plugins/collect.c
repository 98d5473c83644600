/* collect.c: test plugin "collect", a write-only provider standing in for an
 * export target: write() appends "<stream>\t<record>\n" per record to the
 * file named by the environment variable CR_COLLECT_PATH (the destination
 * runs in the host process), or fails with a transient error "provider
 * refused the batch" when CR_COLLECT_FAIL is set. With CR_COLLECT_REJECT=k
 * (and a host with ABI 1.2) every k-th record of a write is rejected alone:
 * reported with api->record_failed (key: its "id") and not appended. */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>
#include <stdio.h>
#include <stdlib.h>

static const struct cr_host_api *host;

static int collect_create(const struct cr_host_api *api,
                          const struct cr_plugin_params *params,
                          void **instance_out, char *errbuf, size_t errlen) {
  (void)api, (void)params, (void)errbuf, (void)errlen;
  *instance_out = NULL;
  return CR_PLUGIN_OK;
}

static void collect_destroy(void *instance) { (void)instance; }

static int collect_write(void *instance, cr_plugin_ctx *ctx, const char *stream,
                         const char *const *records, size_t n) {
  (void)instance;
  const char *path = getenv("CR_COLLECT_PATH");
  if (getenv("CR_COLLECT_FAIL") != NULL || path == NULL) {
    host->set_error(ctx, CR_PLUGIN_ERR_TRANSIENT, "provider refused the batch",
                    0);
    return CR_PLUGIN_ERR_TRANSIENT;
  }
  const char *reject = getenv("CR_COLLECT_REJECT");
  long k = reject != NULL && CR_HOST_HAS(host, record_failed)
               ? strtol(reject, NULL, 10)
               : 0;
  FILE *f = fopen(path, "a");
  if (f == NULL)
    return CR_PLUGIN_ERR_SYSTEM;
  for (size_t i = 0; i < n; i++) {
    char id[32] = "";
    if (k > 0 && (long)(i % (size_t)k) == k - 1) {
      long long v;
      if (cr_json_get_int(records[i], "id", &v) == 0)
        snprintf(id, sizeof id, "%lld", v);
      host->record_failed(ctx, i, id[0] ? id : NULL,
                          "rejected by the collect test plugin");
      continue;
    }
    fprintf(f, "%s\t%s\n", stream, records[i]);
  }
  fclose(f);
  return CR_PLUGIN_OK;
}

static const char *const collect_methods[] = {"none", NULL};

static const struct cr_plugin_descriptor collect_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "collect",
    .display_name = "Collect (test export target)",
    .version = "1.0.0",
    .auth_methods = collect_methods,
    .capabilities = CR_PLUGIN_CAP_WRITE,
    .create = collect_create,
    .destroy = collect_destroy,
    .write = collect_write,
};

CR_PLUGIN_ENTRY(api) {
  host = api;
  return &collect_desc;
}
