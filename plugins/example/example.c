/* example.c: the "example" provider plugin, the template to copy when writing
 * a connrun provider plugin.
 *
 * What it does
 *   - health_check: with settings.base_url (ABI 1.1 settings), a real
 *     request through the host: GET <base_url>/v1/me with the api_key as a
 *     bearer token, mapped as every plugin maps its provider (2xx Healthy,
 *     401/403 Unhealthy with the provider's status, 429 and 5xx and
 *     transport errors Unknown with the error class and wait). Without
 *     base_url (the offline demo), Healthy when the api_key is "good",
 *     otherwise Unhealthy "api key rejected".
 *   - read: emits `count` records (config field, default 3) on the stream
 *     "items", {"id":1,"name":"item 1"} ..., then proposes one checkpoint
 *     {"last_id":count}.
 *
 * The rules every plugin follows (see sdk/include/connrun/plugin.h)
 *   - Include <connrun/plugin.h> only; never link against connrun. Every
 *     host service (logging, records, checkpoints, HTTP, memory) comes
 *     through the struct cr_host_api table passed to the entry function and
 *     to create().
 *   - Export exactly one symbol: the entry function declared with
 *     CR_PLUGIN_ENTRY. Build with -fvisibility=hidden so nothing else leaks
 *     out, and -Wl,--no-undefined so a missing symbol fails the build rather
 *     than the host's dlopen().
 *   - The descriptor and everything it points to is static and read-only.
 *     Per-authorization state lives in the instance that create() returns,
 *     because different instances may run concurrently.
 *   - Strings the host passes in are borrowed: copy what you keep.
 *
 * This plugin parses JSON with jansson, a normal shared-library dependency
 * of the plugin itself (see CMakeLists.txt). The host has already validated
 * credentials and config against the schemas below before create() is
 * called, so create() only has to pick the values out. */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* ---- Schemas and streams ---------------------------------------------------
 * JSON Schemas (the subset the host supports) of the credentials object and
 * of a work's config object. The host validates against them before any
 * callback runs, and `connrun` shows them to operators. */

/* api_key is optional (the "none" method has no credentials) but, when
 * present, must be a non-empty string. */
static const char example_credentials_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{\"api_key\":{\"type\":\"string\",\"minLength\":1}},"
    "\"additionalProperties\":false}";

/* streams: which streams to sync (default: all); count: records per run. */
static const char example_config_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{"
    "\"streams\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"count\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":1000000}},"
    "\"additionalProperties\":false}";

/* Settings (ABI 1.1): non-secret values of an authorization, passed to
 * every callback as params->settings_json when the host has them. */
static const char example_settings_schema[] =
    "{\"type\":\"object\","
    "\"properties\":{\"base_url\":{\"type\":\"string\","
    "\"pattern\":\"^https?://\",\"maxLength\":400}},"
    "\"additionalProperties\":false}";

/* The streams this provider offers, with their primary key and the schedule
 * the host uses when the work does not set one. */
static const char example_streams[] =
    "[{\"name\":\"items\",\"primary_key\":[\"id\"],\"default_schedule\":"
    "\"1h\"}]";

#define EXAMPLE_STREAM "items"
#define EXAMPLE_DEFAULT_COUNT 3

/* ---- The instance ----------------------------------------------------------
 * Everything one authorization (and, for a sync, one work) needs. Allocated
 * with api->alloc in create(), released in destroy(). */
struct example {
  const struct cr_host_api *api; /* valid until the plugin is unloaded */
  int key_ok;                    /* credentials carried api_key == "good" */
  long long count;               /* records to emit per read */
  int wants_items;               /* config selects the "items" stream */
  char base_url[512];            /* settings.base_url, or "" (offline) */
  char auth_header[320];         /* "Authorization: Bearer <api_key>" */
};

/* Reads what create() needs from the credentials (JSON object text). */
static void example_parse_credentials(struct example *ex, const char *json) {
  json_t *root = json ? json_loads(json, 0, NULL) : NULL;
  const char *key = json_string_value(json_object_get(root, "api_key"));
  ex->key_ok = key != NULL && strcmp(key, "good") == 0;
  snprintf(ex->auth_header, sizeof ex->auth_header, "Authorization: Bearer %s",
           key ? key : "");
  json_decref(root);
}

/* Reads the settings; only a host of ABI 1.1 or later passes them, so
 * params->struct_size tells whether the member is there (CR_PARAMS_HAS). */
static void example_parse_settings(struct example *ex,
                                   const struct cr_plugin_params *params) {
  if (!CR_PARAMS_HAS(params, settings_json))
    return;
  json_t *root = json_loads(params->settings_json, 0, NULL);
  const char *url = json_string_value(json_object_get(root, "base_url"));
  if (url != NULL)
    snprintf(ex->base_url, sizeof ex->base_url, "%s", url);
  json_decref(root);
}

/* Reads the work config (JSON object text, NULL for a health check alone).
 * Returns 0 or CR_PLUGIN_ERR_CONFIG with a message in errbuf. */
static int example_parse_config(struct example *ex, const char *json,
                                char *errbuf, size_t errlen) {
  ex->count = EXAMPLE_DEFAULT_COUNT;
  ex->wants_items = 1;
  if (json == NULL)
    return CR_PLUGIN_OK;
  json_error_t jerr;
  json_t *root = json_loads(json, 0, &jerr);
  if (!json_is_object(root)) {
    snprintf(errbuf, errlen, "config is not a JSON object");
    json_decref(root);
    return CR_PLUGIN_ERR_CONFIG;
  }
  json_t *count = json_object_get(root, "count");
  if (json_is_integer(count))
    ex->count = json_integer_value(count);
  json_t *streams = json_object_get(root, "streams");
  if (json_is_array(streams)) {
    size_t i;
    json_t *s;
    ex->wants_items = 0;
    json_array_foreach(streams, i, s) {
      const char *name = json_string_value(s);
      if (name != NULL && strcmp(name, EXAMPLE_STREAM) == 0)
        ex->wants_items = 1;
    }
  }
  json_decref(root);
  if (ex->count < 0) {
    snprintf(errbuf, errlen, "count must not be negative");
    return CR_PLUGIN_ERR_CONFIG;
  }
  return CR_PLUGIN_OK;
}

/* ---- Callbacks ---------------------------------------------------------- */

/* create(): builds an instance for one authorization (and maybe one work).
 * params and every string in it are borrowed: copy what you keep. */
static int example_create(const struct cr_host_api *api,
                          const struct cr_plugin_params *params,
                          void **instance_out, char *errbuf, size_t errlen) {
  struct example *ex = api->alloc(sizeof *ex);
  if (ex == NULL) {
    snprintf(errbuf, errlen, "out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  memset(ex, 0, sizeof *ex);
  ex->api = api;
  example_parse_credentials(ex, params->credentials_json);
  example_parse_settings(ex, params);
  int rc = example_parse_config(ex, params->config_json, errbuf, errlen);
  if (rc != CR_PLUGIN_OK) {
    api->free(ex);
    return rc;
  }
  *instance_out = ex;
  return CR_PLUGIN_OK;
}

/* destroy(): releases what create() allocated. */
static void example_destroy(void *instance) {
  struct example *ex = instance;
  if (ex != NULL) {
    memset(ex->auth_header, 0, sizeof ex->auth_header); /* the key */
    ex->api->free(ex);
  }
}

/* The provider's answer to GET /v1/me as a health result. The reason says
 * what happened in the provider's terms; set_error gives the host the
 * error class (and, for 429, the wait) of an answer that tells nothing. */
static int example_verdict(struct example *ex, cr_plugin_ctx *ctx, int rc,
                           const struct cr_http_response *resp,
                           struct cr_plugin_health_result *out) {
  if (rc != CR_PLUGIN_OK) { /* transport error or timeout */
    out->status = CR_PLUGIN_HEALTH_UNKNOWN;
    snprintf(out->reason, out->reason_len, "cannot reach the provider: %s",
             resp->error);
    return CR_PLUGIN_OK;
  }
  long st = resp->status;
  if (st >= 200 && st < 300) {
    out->status = CR_PLUGIN_HEALTH_HEALTHY;
    snprintf(out->reason, out->reason_len, "provider accepted the key");
  } else if (st == 401 || st == 403) {
    out->status = CR_PLUGIN_HEALTH_UNHEALTHY;
    snprintf(out->reason, out->reason_len, "provider refused the key (%ld)",
             st);
  } else {
    out->status = CR_PLUGIN_HEALTH_UNKNOWN;
    snprintf(out->reason, out->reason_len, "provider answered %ld", st);
    if (st == 429)
      ex->api->set_error(ctx, CR_PLUGIN_ERR_RATE_LIMITED, out->reason, 0);
  }
  return CR_PLUGIN_OK;
}

/* The real check: one cheap authenticated request through the host (which
 * counts it in the authorization's activity and redacts the key). */
static int example_http_check(struct example *ex, cr_plugin_ctx *ctx,
                              struct cr_plugin_health_result *out) {
  char url[600];
  snprintf(url, sizeof url, "%s/v1/me", ex->base_url);
  const char *headers[] = {ex->auth_header, "Accept: application/json", NULL};
  struct cr_http_request req;
  cr_http_request_init(&req);
  req.method = "GET";
  req.url = url;
  req.headers = headers;
  struct cr_http_response resp; /* filled by the host, freed by us */
  int rc = ex->api->http(ctx, &req, &resp);
  rc = example_verdict(ex, ctx, rc, &resp, out);
  ex->api->http_response_free(ctx, &resp);
  return rc;
}

/* health_check(): is the authorization valid at the provider? With a
 * base_url it asks the provider (example_http_check); offline it judges the
 * key itself. out->reason is a host buffer of out->reason_len bytes; never
 * put secrets in it. */
static int example_health_check(void *instance, cr_plugin_ctx *ctx,
                                struct cr_plugin_health_result *out) {
  struct example *ex = instance;
  if (ex->base_url[0] != '\0')
    return example_http_check(ex, ctx, out);
  if (ex->key_ok) {
    out->status = CR_PLUGIN_HEALTH_HEALTHY;
    snprintf(out->reason, out->reason_len, "api key accepted");
  } else {
    out->status = CR_PLUGIN_HEALTH_UNHEALTHY;
    snprintf(out->reason, out->reason_len, "api key rejected");
  }
  return CR_PLUGIN_OK;
}

/* read(): emits records through api->emit and proposes a checkpoint through
 * api->checkpoint. The host commits a checkpoint only after the destination
 * durably took the records emitted before it. Stop early when the host asks
 * (api->cancelled, or emit returning CR_PLUGIN_ERR_CANCELLED). */
static int example_read(void *instance, cr_plugin_ctx *ctx) {
  struct example *ex = instance;
  const struct cr_host_api *api = ex->api;
  if (!ex->wants_items) {
    api->log(ctx, CR_PLUGIN_LOG_INFO, "stream items not selected");
    return CR_PLUGIN_OK;
  }
  char record[128];
  for (long long id = 1; id <= ex->count; id++) {
    if (api->cancelled(ctx))
      return CR_PLUGIN_ERR_CANCELLED;
    int n = snprintf(record, sizeof record,
                     "{\"id\":%lld,\"name\":\"item %lld\"}", id, id);
    int rc = api->emit(ctx, EXAMPLE_STREAM, record, (size_t)n);
    if (rc != CR_PLUGIN_OK)
      return rc;
    api->progress(ctx, EXAMPLE_STREAM, (uint64_t)id, (uint64_t)ex->count);
  }
  char state[64];
  snprintf(state, sizeof state, "{\"last_id\":%lld}", ex->count);
  return api->checkpoint(ctx, state);
}

/* ---- The descriptor and the entry point ------------------------------------
 * CR_PLUGIN_DESCRIPTOR_HEADER fills magic, ABI version and struct_size for
 * the SDK you compile against; the host checks them before anything else. */

static const char *const example_auth_methods[] = {"api_key", "none", NULL};

static const struct cr_plugin_descriptor example_descriptor = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "example",
    .display_name = "Example provider",
    .version = "1.0.0",
    .description = "Template plugin: a fake provider with one stream",
    .auth_methods = example_auth_methods,
    .credentials_schema = example_credentials_schema,
    .config_schema = example_config_schema,
    .streams_json = example_streams,
    .settings_schema = example_settings_schema,
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ,
    .create = example_create,
    .destroy = example_destroy,
    .health_check = example_health_check,
    .read = example_read,
};

/* The one exported symbol. Return NULL to refuse loading (e.g. when a host
 * service this plugin needs is missing: check CR_HOST_HAS for members added
 * after ABI 1.0). */
CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &example_descriptor;
}
