/* behave.c: test plugin "behave": a read plugin whose behaviour is chosen by
 * its work config, to exercise the worker process and its parent: emit N
 * records with checkpoints, crash, abort, exit, hang, run out of memory, fail
 * every other attempt, report rate limiting or a config error, log a secret
 * and rotate credentials.
 *
 * Config (all optional): mode ("emit" | "crash" | "abort" | "exit" | "hang" |
 * "oom" | "flaky" | "ratelimit" | "config_error" | "cred" | "noop" |
 * "newline": after the records, one with a raw newline), count
 * (10), checkpoint_every (0: one checkpoint at the end), record_bytes (100),
 * delay_us (0), counter_file (flaky), streams (1). Records
 * {"id":N,"pad":"xx.."} on stream "items" (with streams > 1: record N on
 * "items" when N % streams is 0, else on "items_<N % streams>"); state
 * {"next":N}. */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct behave {
  const struct cr_host_api *api;
  char mode[32];
  long long count, checkpoint_every, record_bytes, delay_us, streams;
  char counter_file[1024];
  char api_key[256];
};

static long long get_int(const char *json, const char *key, long long def) {
  long long v;
  return cr_json_get_int(json, key, &v) == 0 && v >= 0 ? v : def;
}

static int behave_create(const struct cr_host_api *api,
                         const struct cr_plugin_params *params,
                         void **instance_out, char *errbuf, size_t errlen) {
  struct behave *b = api->alloc(sizeof *b);
  if (b == NULL) {
    snprintf(errbuf, errlen, "behave: out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  memset(b, 0, sizeof *b);
  b->api = api;
  const char *cfg = params->config_json;
  if (cr_json_get_string(cfg, "mode", b->mode, sizeof b->mode) != 0)
    snprintf(b->mode, sizeof b->mode, "emit");
  b->count = get_int(cfg, "count", 10);
  b->checkpoint_every = get_int(cfg, "checkpoint_every", 0);
  b->record_bytes = get_int(cfg, "record_bytes", 100);
  b->delay_us = get_int(cfg, "delay_us", 0);
  b->streams = get_int(cfg, "streams", 1);
  cr_json_get_string(cfg, "counter_file", b->counter_file,
                     sizeof b->counter_file);
  cr_json_get_string(params->credentials_json, "api_key", b->api_key,
                     sizeof b->api_key);
  *instance_out = b;
  return CR_PLUGIN_OK;
}

static void behave_destroy(void *instance) {
  struct behave *b = instance;
  if (b != NULL)
    b->api->free(b);
}

/* Healthy; in mode "cred" it rotates its credentials during the check, as
 * an OAuth provider that hands out a new refresh token on every use. */
static int behave_health(void *instance, cr_plugin_ctx *ctx,
                         struct cr_plugin_health_result *out) {
  struct behave *b = instance;
  out->status = CR_PLUGIN_HEALTH_HEALTHY;
  if (b != NULL && strcmp(b->mode, "cred") == 0) {
    int rc = b->api->credentials_update(ctx, "{\"api_key\":\"rotated-h\"}");
    snprintf(out->reason, out->reason_len, "behave ok (rotation %s)",
             rc == 0 ? "stored" : "refused");
    return CR_PLUGIN_OK;
  }
  snprintf(out->reason, out->reason_len, "behave ok");
  return CR_PLUGIN_OK;
}

static void sleep_us(long long us) {
  struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

static int checkpoint(struct behave *b, cr_plugin_ctx *ctx, long long next) {
  char state[64];
  snprintf(state, sizeof state, "{\"next\":%lld}", next);
  return b->api->checkpoint(ctx, state);
}

/* Emits count records starting after the state's cursor. */
static int emit_all(struct behave *b, cr_plugin_ctx *ctx) {
  const char *state = b->api->state(ctx);
  long long next = state != NULL ? get_int(state, "next", 0) : 0;
  size_t pad = b->record_bytes > 20 ? (size_t)b->record_bytes - 20 : 1;
  char *rec = b->api->alloc(pad + 64);
  if (rec == NULL)
    return cr_plugin_errorf(b->api, ctx, CR_PLUGIN_ERR_SYSTEM, 0,
                            "behave: out of memory");
  int rc = CR_PLUGIN_OK;
  for (long long i = 0; i < b->count && rc == CR_PLUGIN_OK; i++) {
    if (b->api->cancelled(ctx)) {
      rc = CR_PLUGIN_ERR_CANCELLED;
      break;
    }
    if (b->delay_us > 0)
      sleep_us(b->delay_us);
    int n = snprintf(rec, 64, "{\"id\":%lld,\"pad\":\"", next);
    memset(rec + n, 'x', pad);
    memcpy(rec + n + pad, "\"}", 3);
    char stream[32] = "items";
    if (b->streams > 1 && next % b->streams != 0)
      snprintf(stream, sizeof stream, "items_%lld", next % b->streams);
    rc = b->api->emit(ctx, stream, rec, (size_t)n + pad + 2);
    next++;
    if (rc == CR_PLUGIN_OK && b->checkpoint_every > 0 &&
        (i + 1) % b->checkpoint_every == 0 && i + 1 < b->count)
      rc = checkpoint(b, ctx, next);
  }
  b->api->free(rec);
  if (rc == CR_PLUGIN_OK)
    rc = checkpoint(b, ctx, next);
  return rc;
}

/* Reads, increments and rewrites the counter file; returns the old value. */
static long long bump_counter(const char *path) {
  long long v = 0;
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    if (fscanf(f, "%lld", &v) != 1)
      v = 0;
    fclose(f);
  }
  f = fopen(path, "w");
  if (f != NULL) {
    fprintf(f, "%lld\n", v + 1);
    fclose(f);
  }
  return v;
}

/* A real SIGSEGV, also in sanitized builds (the default action is restored
 * so ASan does not turn it into an exit status, and UBSan is told the null
 * store is intended). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((no_sanitize("undefined")))
#endif
static void
crash(void) {
  signal(SIGSEGV, SIG_DFL);
  volatile int *volatile nil = NULL;
  *nil = 1;
}

static int do_oom(void) {
  for (;;) {
    char *p = malloc(1024 * 1024);
    if (p == NULL)
      abort();
    memset(p, 1, 1024 * 1024);
  }
}

static int behave_read(void *instance, cr_plugin_ctx *ctx) {
  struct behave *b = instance;
  const struct cr_host_api *api = b->api;
  const char *m = b->mode;
  if (strcmp(m, "noop") == 0)
    return CR_PLUGIN_OK;
  if (strcmp(m, "hang") == 0)
    for (;;)
      sleep_us(100000);
  if (strcmp(m, "oom") == 0)
    return do_oom();
  if (strcmp(m, "ratelimit") == 0) {
    api->set_error(ctx, CR_PLUGIN_ERR_RATE_LIMITED, "slow down", 1500);
    return CR_PLUGIN_ERR_RATE_LIMITED;
  }
  if (strcmp(m, "config_error") == 0) {
    api->set_error(ctx, CR_PLUGIN_ERR_CONFIG, "bad settings", 0);
    return CR_PLUGIN_ERR_CONFIG;
  }
  if (strcmp(m, "flaky") == 0) {
    long long n = bump_counter(b->counter_file);
    if (n % 2 == 0)
      return cr_plugin_errorf(api, ctx, CR_PLUGIN_ERR_TRANSIENT, 0,
                              "flaky: attempt %lld fails", n);
  }
  if (strcmp(m, "cred") == 0) {
    cr_plugin_logf(api, ctx, CR_PLUGIN_LOG_INFO, "using key %s", b->api_key);
    int rc = api->credentials_update(ctx, "{\"api_key\":\"rotated-1\"}");
    if (rc != CR_PLUGIN_OK)
      return rc;
  }
  int rc = emit_all(b, ctx);
  if (rc != CR_PLUGIN_OK)
    return rc;
  if (strcmp(m, "newline") == 0) /* a destination refuses it */
    return api->emit(ctx, "items", "{\"id\":\n1}", 9);
  if (strcmp(m, "crash") == 0)
    crash();
  if (strcmp(m, "abort") == 0)
    abort();
  if (strcmp(m, "exit") == 0)
    exit(3);
  return CR_PLUGIN_OK;
}

static const char *const behave_methods[] = {"none", "api_key", NULL};

static const struct cr_plugin_descriptor behave_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "behave",
    .display_name = "Behave",
    .version = "1.0.0",
    .description = "test plugin whose behaviour the work config chooses",
    .auth_methods = behave_methods,
    .streams_json = "[{\"name\":\"items\",\"primary_key\":[\"id\"]}]",
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ,
    .create = behave_create,
    .destroy = behave_destroy,
    .health_check = behave_health,
    .read = behave_read,
};

CR_PLUGIN_ENTRY(api) {
  (void)api;
  return &behave_desc;
}
