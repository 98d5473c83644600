/* connrun/plugin.h: the connrun provider plugin ABI, version 1 (minor 3).
 *
 * This is the only header a plugin author needs. A plugin is a shared object
 * (.so) that exports exactly one symbol, CR_PLUGIN_ENTRY_SYMBOL, returning a
 * constant descriptor. Plugins never link against connrun: every service of
 * the host (logging, HTTP, records, checkpoints, allocation) comes through the
 * struct cr_host_api table the host passes in (the sqlite3ext.h / redismodule.h
 * model). Build a plugin with -fvisibility=hidden and -Wl,--no-undefined
 * against this header alone.
 *
 * Compatibility rules
 * -------------------
 * 1. The descriptor starts with magic, ABI major, ABI minor and struct_size.
 *    The host checks them before it calls anything else in the plugin.
 * 2. Same major required. A plugin built for another major is refused.
 * 3. A minor only ever appends fields at the END of a struct; nothing is
 *    removed, reordered or retyped. struct_size tells which fields exist.
 * 4. A newer host runs plugins built for an older minor: it reads only the
 *    fields that the plugin's struct_size covers and treats the rest as
 *    absent (NULL / 0).
 * 5. An older host refuses a plugin whose abi_minor is newer than its own,
 *    with a message naming both versions (the plugin may rely on host
 *    services the older host does not have).
 * 6. The host table has the same rules: check CR_HOST_HAS(api, field) before
 *    calling a host function added after minor 0.
 *
 * Memory ownership across the ABI
 * -------------------------------
 * - The descriptor and every string and array it points to are owned by the
 *   plugin and must stay valid and unchanged until the .so is unloaded
 *   (static storage is the normal case).
 * - Strings the host passes to a callback (config, credentials, state, stream
 *   names, records) are borrowed: valid only until the callback returns. Copy
 *   what you keep.
 * - Strings a plugin passes to a host function are borrowed by the host,
 *   which copies what it keeps before returning.
 * - Memory the host allocates for the plugin (struct cr_http_response) is
 *   freed with the matching host function (api->http_response_free).
 * - Plugin-private memory should come from api->alloc / api->free so the
 *   host can account for it; the instance pointer returned by create() is
 *   owned by the plugin and released by its destroy() callback.
 *
 * Threads: the host calls one instance from one thread at a time. Different
 * instances of the same plugin may run concurrently on different threads or
 * in different processes, so plugin globals must be read-only.
 */
#ifndef CONNRUN_PLUGIN_H
#define CONNRUN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions and identification ---------------------------------------- */

#define CR_PLUGIN_MAGIC 0x636e7231u /* "cnr1" */
#define CR_PLUGIN_ABI_MAJOR 1
#define CR_PLUGIN_ABI_MINOR 3
#define CR_PLUGIN_ENTRY_SYMBOL "connrun_plugin_entry"

/* Marks the one exported symbol of a plugin. */
#if defined(__GNUC__) || defined(__clang__)
#define CR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define CR_PLUGIN_EXPORT
#endif

/* ---- Status and result codes -------------------------------------------- */

/* Health of an authorization as seen by the provider. */
enum cr_plugin_health {
  CR_PLUGIN_HEALTH_UNKNOWN = 0,   /* could not tell (e.g. provider down) */
  CR_PLUGIN_HEALTH_HEALTHY = 1,   /* valid and active */
  CR_PLUGIN_HEALTH_UNHEALTHY = 2, /* invalid, revoked or missing permissions */
};

/* Return codes of plugin callbacks: 0 on success, otherwise one of these.
 * The class decides what the host does next (retry or not). */
enum cr_plugin_result {
  CR_PLUGIN_OK = 0,
  CR_PLUGIN_ERR_CONFIG = -1,       /* bad credentials/settings: not retried */
  CR_PLUGIN_ERR_TRANSIENT = -2,    /* network, 5xx, timeout: retried */
  CR_PLUGIN_ERR_RATE_LIMITED = -3, /* retried after the provider's wait */
  CR_PLUGIN_ERR_SYSTEM = -4,       /* resource exhaustion, internal bug */
  CR_PLUGIN_ERR_CANCELLED = -5,    /* the host asked to stop */
};

/* Capability bits (descriptor.capabilities). */
#define CR_PLUGIN_CAP_HEALTH_CHECK (1u << 0)
#define CR_PLUGIN_CAP_READ (1u << 1)
#define CR_PLUGIN_CAP_WRITE (1u << 2)

/* Log levels for api->log. */
enum cr_plugin_log_level {
  CR_PLUGIN_LOG_DEBUG = 0,
  CR_PLUGIN_LOG_INFO = 1,
  CR_PLUGIN_LOG_WARN = 2,
  CR_PLUGIN_LOG_ERROR = 3,
};

/* Opaque per-call host context. Passed to every callback that may call back
 * into the host; valid only during that callback. */
typedef struct cr_plugin_ctx cr_plugin_ctx;

/* ---- HTTP through the host ------------------------------------------------
 */

/* A request made through api->http. All pointers are borrowed by the host for
 * the duration of the call. The host counts the request against the
 * authorization, applies its timeouts and keeps credentials out of logs. */
struct cr_http_request {
  uint32_t struct_size; /* sizeof(struct cr_http_request) */
  const char *method;   /* "GET", "POST", ...; NULL means GET */
  const char *url;      /* absolute http(s) URL */
  const char *const
      *headers;     /* "Name: value" strings, NULL-terminated, or NULL */
  const char *body; /* request body or NULL */
  size_t body_len;  /* bytes in body */
  long timeout_ms;  /* 0: the host default */
};

/* A response filled by api->http. The plugin passes a struct it owns
 * (usually on its stack) without initialising anything: the host sets every
 * member, struct_size included, before it returns, whatever it returns.
 * What the members point to is owned by the host; release it with
 * api->http_response_free (also after an error return), once. */
struct cr_http_response {
  uint32_t struct_size;
  long status;     /* HTTP status, 0 when no response was received */
  char *body;      /* NUL-terminated response body (may contain NULs) */
  size_t body_len; /* bytes in body, without the terminating NUL */
  char *headers;   /* raw response header block, "Name: value\r\n" lines */
  char error[256]; /* transport error text when status == 0 */
};

/* ---- The host table --------------------------------------------------------
 */

/* Services the host offers a plugin. Passed to the entry function and to
 * create(); valid until the plugin is unloaded. New members are appended at
 * the end only; test with CR_HOST_HAS before using a member added after
 * minor 0. */
struct cr_host_api {
  uint32_t struct_size; /* sizeof(struct cr_host_api) of the host */
  uint16_t abi_major;   /* the host's CR_PLUGIN_ABI_MAJOR */
  uint16_t abi_minor;   /* the host's CR_PLUGIN_ABI_MINOR */

  /* Allocation accounted by the host. free(NULL) is a no-op. */
  void *(*alloc)(size_t size);
  void (*free)(void *ptr);

  /* Logs one line. msg is borrowed. Known secrets are redacted by the host. */
  void (*log)(cr_plugin_ctx *ctx, int level, const char *msg);

  /* Emits one record (a JSON object text of len bytes) on a named stream.
   * Returns 0, or CR_PLUGIN_ERR_CANCELLED when the host wants the read to
   * stop, or CR_PLUGIN_ERR_SYSTEM when the record was refused. */
  int (*emit)(cr_plugin_ctx *ctx, const char *stream, const char *json,
              size_t len);

  /* Proposes a checkpoint: the plugin's cursor (a JSON text) covering every
   * record emitted before this call. The host commits it only after the
   * destination has durably taken those records. Returns 0 (accepted: every
   * accepted checkpoint is committed, in order, soon after; the read goes
   * on meanwhile: a worker process's parent and a jsonl destination's
   * fsync do not hold it up; a commit that fails makes a later emit or
   * checkpoint return CR_PLUGIN_ERR_CANCELLED), CR_PLUGIN_ERR_
   * CANCELLED (the host wants the read to stop: the run was cancelled, lost
   * its lease or the destination failed; return from read at once, the
   * checkpoint is not committed) or CR_PLUGIN_ERR_SYSTEM (refused: NULL or
   * not JSON, or this callback takes no checkpoints, e.g. health_check). */
  int (*checkpoint)(cr_plugin_ctx *ctx, const char *state_json);

  /* The state committed when this read began (JSON text: the last checkpoint
   * of earlier executions, or one set by a person with `connrun state set`),
   * or NULL on the first run. Checkpoints proposed during this read are NOT
   * reflected: the plugin keeps its own cursor while it reads. The same in
   * both isolation modes. Borrowed: valid until the current callback
   * returns. */
  const char *(*state)(cr_plugin_ctx *ctx);

  /* Reports progress for a stream; total may be 0 when unknown. */
  void (*progress)(cr_plugin_ctx *ctx, const char *stream, uint64_t done,
                   uint64_t total);

  /* Non-zero when the host asks the plugin to stop as soon as possible. */
  int (*cancelled)(cr_plugin_ctx *ctx);

  /* Performs an HTTP request. Returns 0 when a response arrived (any status),
   * CR_PLUGIN_ERR_TRANSIENT on a transport error or timeout (resp->error says
   * which), CR_PLUGIN_ERR_CANCELLED if cancelled. resp is filled in either
   * case and must be released with http_response_free. */
  int (*http)(cr_plugin_ctx *ctx, const struct cr_http_request *req,
              struct cr_http_response *resp);
  void (*http_response_free)(cr_plugin_ctx *ctx, struct cr_http_response *resp);

  /* Records the error of the current callback: its class (a
   * cr_plugin_result), a message (borrowed; must not contain secrets, the
   * host redacts known ones anyway) and, for CR_PLUGIN_ERR_RATE_LIMITED, the
   * provider's requested wait in milliseconds (0 if unknown). */
  void (*set_error)(cr_plugin_ctx *ctx, int result, const char *message,
                    int64_t retry_after_ms);

  /* Hands the host updated credentials (a JSON object text, e.g. a rotated
   * OAuth refresh token). The host stores them and uses them from then on. */
  int (*credentials_update)(cr_plugin_ctx *ctx, const char *credentials_json);
  /* ABI 1.1 ends here; test with CR_HOST_HAS before using a later member. */

  /* Minor 2: reports one record of the current write() call that the
   * provider rejected (a partial failure): index is its position in that
   * call's records[], key an identifying value of the record (an email, an
   * external id; NULL if none), message the provider's reason. Strings are
   * borrowed; no secrets (the host redacts known ones anyway). A write() that
   * reports its rejected records this way and then returns CR_PLUGIN_OK has
   * delivered the others: the host counts and logs the rejected ones and
   * goes on (they are not sent again). Returns 0, or CR_PLUGIN_ERR_SYSTEM
   * when called outside write() or with index out of range. */
  int (*record_failed)(cr_plugin_ctx *ctx, size_t index, const char *key,
                       const char *message);

  /* Minor 3: starts an HTTP request in the background and returns at once,
   * so the plugin can work meanwhile: parse one page while the next one
   * downloads. req and everything it points to are borrowed for the call
   * only (the host copies them). One request per ctx at a time: http_start
   * again before http_finish returns CR_PLUGIN_ERR_SYSTEM and changes
   * nothing. Otherwise it returns 0, and every outcome (a refused request,
   * a transport error, a cancellation) is reported by http_finish. api->http
   * may be used meanwhile (another connection). A request still in flight
   * when the callback returns is abandoned, and not counted. */
  int (*http_start)(cr_plugin_ctx *ctx, const struct cr_http_request *req);

  /* Minor 3: waits for the request begun with http_start and fills resp as
   * api->http would have: same return values, counting, logging and
   * ownership (release it with http_response_free). Without a request in
   * flight: CR_PLUGIN_ERR_SYSTEM, resp->error says so. */
  int (*http_finish)(cr_plugin_ctx *ctx, struct cr_http_response *resp);
};

/* True if the host table has member m (added in some minor). */
#define CR_HOST_HAS(api, m)                                                    \
  ((api) != NULL &&                                                            \
   (api)->struct_size >= offsetof(struct cr_host_api, m) + sizeof((api)->m) && \
   (api)->m != NULL)

/* ---- Instances and callbacks --------------------------------------------- */

/* What create() is given. Borrowed, valid during create() only. */
struct cr_plugin_params {
  uint32_t struct_size; /* sizeof(struct cr_plugin_params) of the host */
  const char *authorization_id; /* id of the authorization in use */
  const char *auth_method;      /* "api_key", "oauth2", ... */
  const char *credentials_json; /* resolved credentials, JSON object text */
  const char *config_json;      /* work config, JSON object text, or NULL for
                                   a health check alone */
  const char *work_id;          /* NULL for a health check alone */
  /* ABI 1.0 ends here; test with CR_PARAMS_HAS before using a later member.
   * Minor 1: the authorization's non-secret settings (a base URL, an
   * instance or account id), a JSON object text checked against the
   * descriptor's settings_schema; "{}" when none. */
  const char *settings_json;
};

/* True if the params struct the host passed has member m (added in some
 * minor): a plugin built for minor 1 may run on an older host. */
#define CR_PARAMS_HAS(p, m)                                                    \
  ((p) != NULL &&                                                              \
   (p)->struct_size >=                                                         \
       offsetof(struct cr_plugin_params, m) + sizeof((p)->m) &&                \
   (p)->m != NULL)

/* Result of a health check. The host provides reason (reason_len bytes,
 * zero-filled); the plugin writes a NUL-terminated human reason. */
struct cr_plugin_health_result {
  uint32_t struct_size;
  int status; /* enum cr_plugin_health */
  char *reason;
  size_t reason_len;
};

/* Creates an instance. *instance_out is owned by the plugin until destroy().
 * On failure return a cr_plugin_result and write a message to errbuf
 * (errlen bytes, provided by the host). */
typedef int (*cr_plugin_create_fn)(const struct cr_host_api *api,
                                   const struct cr_plugin_params *params,
                                   void **instance_out, char *errbuf,
                                   size_t errlen);
/* Releases an instance created by create(). */
typedef void (*cr_plugin_destroy_fn)(void *instance);
/* Checks that the authorization is valid at the provider. Return 0 with
 * out->status (Healthy, Unhealthy or Unknown) and out->reason filled when
 * the plugin could tell, or could tell that it could not (Unknown with the
 * reason: a 5xx, a timeout). A non-zero return (a cr_plugin_result, with
 * api->set_error) means the check itself failed: CR_PLUGIN_ERR_CONFIG is
 * recorded as Unhealthy with the set_error message (the credentials or
 * settings are unusable), any other class as Unknown with it. Prefer 0 with
 * a status: the reason is the plugin's own words. */
typedef int (*cr_plugin_health_check_fn)(void *instance, cr_plugin_ctx *ctx,
                                         struct cr_plugin_health_result *out);
/* Syncs from the provider: emits records and checkpoints through the host. */
typedef int (*cr_plugin_read_fn)(void *instance, cr_plugin_ctx *ctx);
/* Syncs to the provider: n records (JSON texts, borrowed) of one stream.
 * Records the provider rejected one by one are reported with
 * api->record_failed (minor 2) and the call returns CR_PLUGIN_OK; a
 * non-zero return fails the whole batch. */
typedef int (*cr_plugin_write_fn)(void *instance, cr_plugin_ctx *ctx,
                                  const char *stream,
                                  const char *const *records, size_t n);

/* ---- The descriptor
 * ---------------------------------------------------------- */

struct cr_plugin_descriptor {
  uint32_t magic;       /* CR_PLUGIN_MAGIC */
  uint16_t abi_major;   /* CR_PLUGIN_ABI_MAJOR the plugin was built with */
  uint16_t abi_minor;   /* CR_PLUGIN_ABI_MINOR the plugin was built with */
  uint32_t struct_size; /* sizeof(struct cr_plugin_descriptor) */

  const char *name;         /* provider id, [a-z0-9_-]+, e.g. "sendgrid" */
  const char *display_name; /* "SendGrid" */
  const char *version;      /* plugin version, e.g. "1.2.0" */
  const char *description;  /* one line, may be NULL */

  /* Accepted authorization methods, NULL-terminated: "api_key", "oauth2",
   * "basic", "token", "none"... At least one. */
  const char *const *auth_methods;
  /* JSON Schemas (JSON texts) of the credentials object and of a work's
   * config object; NULL means "any object". The host supports the subset
   * documented in connrun's README (type, properties, required,
   * additionalProperties, enum, const, items, min/maxItems,
   * min/maxLength, pattern, minimum/maximum). */
  const char *credentials_schema;
  const char *config_schema;
  /* Streams, a JSON array text or NULL:
   * [{"name":"contacts","primary_key":["id"],"default_schedule":"1h"}] */
  const char *streams_json;

  uint32_t capabilities; /* CR_PLUGIN_CAP_* bits */

  /* Required: create, destroy. Required by capability: health_check
   * (CR_PLUGIN_CAP_HEALTH_CHECK), read (CR_PLUGIN_CAP_READ), write
   * (CR_PLUGIN_CAP_WRITE). */
  cr_plugin_create_fn create;
  cr_plugin_destroy_fn destroy;
  cr_plugin_health_check_fn health_check;
  cr_plugin_read_fn read;
  cr_plugin_write_fn write;
  /* ABI 1.0 ends here. Later minors append below. */

  /* Minor 1: the JSON Schema of an authorization's `settings:` (non-secret
   * values, passed as params->settings_json). NULL: the plugin takes no
   * settings (an authorization that gives some is a configuration error).
   * A host reads it only when struct_size covers it. */
  const char *settings_schema;
};

/* The entry function every plugin exports under CR_PLUGIN_ENTRY_SYMBOL.
 * api is the host table (valid until unload). Returns the plugin's
 * descriptor (owned by the plugin, static), or NULL to refuse loading. */
typedef const struct cr_plugin_descriptor *(*cr_plugin_entry_fn)(
    const struct cr_host_api *api);

/* Declares the entry function: CR_PLUGIN_ENTRY(api) { return &desc; } */
#define CR_PLUGIN_ENTRY(api_param)                                             \
  CR_PLUGIN_EXPORT const struct cr_plugin_descriptor *connrun_plugin_entry(    \
      const struct cr_host_api *api_param);                                    \
  CR_PLUGIN_EXPORT const struct cr_plugin_descriptor *connrun_plugin_entry(    \
      const struct cr_host_api *api_param)

/* Fills the four header fields of a descriptor for this SDK's ABI. */
#define CR_PLUGIN_DESCRIPTOR_HEADER                                            \
  .magic = CR_PLUGIN_MAGIC, .abi_major = CR_PLUGIN_ABI_MAJOR,                  \
  .abi_minor = CR_PLUGIN_ABI_MINOR,                                            \
  .struct_size = sizeof(struct cr_plugin_descriptor)

#ifdef __cplusplus
}
#endif

#endif /* CONNRUN_PLUGIN_H */
