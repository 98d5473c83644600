/* dest_plugin.c: the plugin destination: records handed to a provider
 * plugin's write() (export to a provider), in batches per stream. A batch
 * goes out when a stream has CR_DEST_PLUGIN_BATCH records or
 * CR_DEST_PLUGIN_BATCH_BYTES buffered, and at every flush; a flush returns 0
 * only once write() accepted every buffered record, so the checkpoint that
 * follows is committed only after the provider took the records. Records
 * the provider rejected one by one (api->record_failed, ABI 1.2) are
 * counted and logged and the rest of their batch counts as delivered. The
 * plugin runs in the calling process (trusted code, like isolation:
 * inline). */
#include <stdio.h>
#include <string.h>

#include "dest/dest_int.h"
#include "plugin/host_api.h"
#include "util/alloc.h"
#include "util/error.h"

#define MAX_STREAMS 64

struct batch {
  char name[129];
  char **recs;
  size_t n, cap, bytes;
};

struct plugin_dest {
  struct cr_dest base;
  const struct cr_plugin_descriptor *desc;
  void *instance;
  cr_plugin_ctx ctx;
  struct batch streams[MAX_STREAMS];
  size_t nstreams;
  const struct batch *sending; /* the batch write() has, NULL otherwise */
};

/* api->record_failed during write(): counted and logged, not sent again. */
static int record_failed(void *ud, size_t index, const char *key,
                         const char *message) {
  struct plugin_dest *d = ud;
  const struct batch *b = d->sending;
  if (b == NULL || index >= b->n)
    return CR_PLUGIN_ERR_SYSTEM;
  d->base.records_failed++;
  if (d->base.log != NULL)
    cr__logf(d->base.log, d->base.log_ud, CR_LOG_WARN,
             "%s rejected record %zu of a batch of %zu (stream %s%s%s): %s",
             d->desc->name, index, b->n, b->name, key[0] ? ", key " : "", key,
             message[0] ? message : "no reason given");
  return 0;
}

static struct batch *batch_of(struct plugin_dest *d, const char *stream) {
  for (size_t i = 0; i < d->nstreams; i++)
    if (strcmp(d->streams[i].name, stream) == 0)
      return &d->streams[i];
  if (d->nstreams == MAX_STREAMS)
    return NULL;
  struct batch *b = &d->streams[d->nstreams++];
  snprintf(b->name, sizeof b->name, "%s", stream);
  return b;
}

static void batch_clear(struct batch *b) {
  for (size_t i = 0; i < b->n; i++)
    cr__free(b->recs[i]);
  b->n = 0;
  b->bytes = 0;
}

/* The plugin's own log lines during write(), already redacted by the
 * host, go where the destination logs (cr_dest_set_log). */
static void plugin_log(void *ud, int level, const char *msg) {
  struct plugin_dest *d = ud;
  if (d->base.log != NULL)
    d->base.log(d->base.log_ud, level, msg);
}

static int send_batch(struct plugin_dest *d, struct batch *b) {
  if (b->n == 0)
    return 0;
  d->sending = b;
  int rc = d->desc->write(d->instance, &d->ctx, b->name,
                          (const char *const *)b->recs, b->n);
  d->sending = NULL;
  if (rc != 0) {
    d->base.failed = CR_EIO;
    return cr__dest_errf(&d->base, CR_EIO, "%s write of stream %s failed: %s",
                         d->desc->name, b->name,
                         d->ctx.last_error.message[0]
                             ? d->ctx.last_error.message
                             : "no reason given");
  }
  batch_clear(b);
  return 0;
}

static int pd_declare(cr_dest *base, const struct cr_dest_stream *s) {
  (void)base;
  (void)s;
  return 0;
}

static int pd_write(cr_dest *base, const char *stream, const char *json,
                    size_t len) {
  struct plugin_dest *d = (struct plugin_dest *)base;
  struct batch *b = batch_of(d, stream);
  if (b == NULL)
    return cr__dest_errf(base, CR_ERANGE, "more than %d streams", MAX_STREAMS);
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    char **grown = cr__realloc(b->recs, cap * sizeof *grown);
    if (grown == NULL)
      return CR_ENOMEM;
    b->recs = grown;
    b->cap = cap;
  }
  char *copy = cr__strndup(json, len);
  if (copy == NULL)
    return CR_ENOMEM;
  b->recs[b->n++] = copy;
  b->bytes += len;
  if (b->n >= CR_DEST_PLUGIN_BATCH || b->bytes >= CR_DEST_PLUGIN_BATCH_BYTES)
    return send_batch(d, b);
  return 0;
}

static int pd_flush(cr_dest *base) {
  struct plugin_dest *d = (struct plugin_dest *)base;
  for (size_t i = 0; i < d->nstreams; i++) {
    int rc = send_batch(d, &d->streams[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void pd_close(cr_dest *base) {
  struct plugin_dest *d = (struct plugin_dest *)base;
  for (size_t i = 0; i < d->nstreams; i++) {
    batch_clear(&d->streams[i]);
    cr__free(d->streams[i].recs);
  }
  if (d->instance != NULL)
    d->desc->destroy(d->instance);
  cr_plugin_ctx_cleanup(&d->ctx);
  cr__free(d);
}

static const struct cr__dest_ops plugin_ops = {
    .name = "plugin",
    .declare_stream = pd_declare,
    .write = pd_write,
    .flush = pd_flush,
    .close = pd_close,
};

int cr_dest_open_plugin(const struct cr_plugin_descriptor *desc,
                        const struct cr_plugin_params *params,
                        const cr_redactor *rd, cr_dest **out, char *errbuf,
                        size_t errlen) {
  if (desc == NULL || params == NULL || out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (!(desc->capabilities & CR_PLUGIN_CAP_WRITE) || desc->write == NULL)
    return cr__dest_buf_errf(errbuf, errlen, CR_EINVAL,
                             "provider %s cannot write (no write capability)",
                             desc->name);
  struct plugin_dest *d = cr__calloc(1, sizeof *d);
  if (d == NULL)
    return CR_ENOMEM;
  d->base.ops = &plugin_ops;
  d->desc = desc;
  cr_plugin_ctx_init(&d->ctx, params->authorization_id, rd);
  struct cr_plugin_sinks sinks = {.ud = d, .record_failed = record_failed};
  cr_plugin_ctx_set_sinks(&d->ctx, &sinks);
  cr_plugin_ctx_set_log(&d->ctx, plugin_log, d);
  char err[512] = "";
  int rc = desc->create(cr_host_api_default(), params, &d->instance, err,
                        sizeof err);
  if (rc != 0) {
    pd_close(&d->base);
    return cr__dest_buf_errf(errbuf, errlen, CR_EPLUGIN, "%s destination: %s",
                             desc->name, err[0] ? err : "create failed");
  }
  *out = &d->base;
  return 0;
}
