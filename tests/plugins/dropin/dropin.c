/* dropin.c: test plugin "dropin", built in several versions from this one
 * file (tests/CMakeLists.txt) to exercise plugins dropped into, upgraded in
 * and removed from a running daemon:
 *   DROPIN_VERSION  the version string ("1.0.0", "2.0.0", ...)
 *   DROPIN_STRICT   the config schema requires "region" (an upgrade whose
 *                   schema no longer accepts a work's config)
 *   DROPIN_BAD_ABI  built for the next ABI major (a refused replacement)
 *
 * read: emits `count` (3) records {"id":N,"version":V} on stream "items";
 * before the last one it checkpoints and, while the file named by config
 * "hold_file" exists, waits (10 ms polls, at most 60 s), so a test holds a sync
 * in progress. health_check: Healthy, reason "dropin V ok". */
#include <connrun/plugin.h>
#include <connrun/plugin_util.h>

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef DROPIN_VERSION
#define DROPIN_VERSION "1.0.0"
#endif

struct dropin {
  const struct cr_host_api *api;
  long long count;
  char hold_file[1024];
};

static int dropin_create(const struct cr_host_api *api,
                         const struct cr_plugin_params *params,
                         void **instance_out, char *errbuf, size_t errlen) {
  struct dropin *p = api->alloc(sizeof *p);
  if (p == NULL) {
    snprintf(errbuf, errlen, "dropin: out of memory");
    return CR_PLUGIN_ERR_SYSTEM;
  }
  memset(p, 0, sizeof *p);
  p->api = api;
  if (cr_json_get_int(params->config_json, "count", &p->count) != 0)
    p->count = 3;
  cr_json_get_string(params->config_json, "hold_file", p->hold_file,
                     sizeof p->hold_file);
  *instance_out = p;
  return CR_PLUGIN_OK;
}

static void dropin_destroy(void *instance) {
  struct dropin *p = instance;
  if (p != NULL)
    p->api->free(p);
}

static int dropin_health(void *instance, cr_plugin_ctx *ctx,
                         struct cr_plugin_health_result *out) {
  (void)instance;
  (void)ctx;
  out->status = CR_PLUGIN_HEALTH_HEALTHY;
  snprintf(out->reason, out->reason_len, "dropin " DROPIN_VERSION " ok");
  return CR_PLUGIN_OK;
}

/* Waits while the hold file exists (bounded: 6,000 polls of 10 ms). */
static void hold(const struct dropin *p, cr_plugin_ctx *ctx) {
  struct timespec ts = {0, 10 * 1000 * 1000};
  for (int i = 0; i < 6000 && p->hold_file[0] != '\0'; i++) {
    if (access(p->hold_file, F_OK) != 0 || p->api->cancelled(ctx))
      return;
    nanosleep(&ts, NULL);
  }
}

static int dropin_read(void *instance, cr_plugin_ctx *ctx) {
  struct dropin *p = instance;
  char rec[128];
  int rc = CR_PLUGIN_OK;
  for (long long i = 0; i < p->count && rc == CR_PLUGIN_OK; i++) {
    if (i + 1 == p->count) { /* a checkpoint makes the records so far seen */
      rc = p->api->checkpoint(ctx, "{}");
      hold(p, ctx);
    }
    if (rc != CR_PLUGIN_OK)
      break;
    int n = snprintf(rec, sizeof rec,
                     "{\"id\":%lld,\"version\":\"" DROPIN_VERSION "\"}", i);
    rc = p->api->emit(ctx, "items", rec, (size_t)n);
  }
  return rc == CR_PLUGIN_OK ? p->api->checkpoint(ctx, "{}") : rc;
}

static const char *const dropin_methods[] = {"none", NULL};

static const struct cr_plugin_descriptor dropin_desc = {
    CR_PLUGIN_DESCRIPTOR_HEADER,
    .name = "dropin",
    .display_name = "Drop-in",
    .version = DROPIN_VERSION,
    .description = "test plugin for drop-in upgrades",
    .auth_methods = dropin_methods,
#ifdef DROPIN_STRICT
    .config_schema = "{\"type\":\"object\",\"required\":[\"region\"]}",
#endif
    .streams_json = "[{\"name\":\"items\",\"primary_key\":[\"id\"]}]",
    .capabilities = CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ,
    .create = dropin_create,
    .destroy = dropin_destroy,
    .health_check = dropin_health,
    .read = dropin_read,
};

#ifdef DROPIN_BAD_ABI
static struct cr_plugin_descriptor bad;
#endif

CR_PLUGIN_ENTRY(api) {
  (void)api;
#ifdef DROPIN_BAD_ABI
  bad = dropin_desc;
  bad.abi_major = CR_PLUGIN_ABI_MAJOR + 1;
  return &bad;
#else
  return &dropin_desc;
#endif
}
