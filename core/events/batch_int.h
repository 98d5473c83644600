/* batch_int.h: the batched webhook delivery engine's internals, shared by
 * batch_delivery.c (thread, jobs) and batch_send.c (one batch). */
#ifndef CR_BATCH_INT_H
#define CR_BATCH_INT_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "events/batch_delivery.h"
#include "events/event_tpl.h"
#include "events/stdwebhooks.h"
#include "events/sub_filter.h"
#include "store/store.h"
#include "store/store_batches.h"
#include "util/bgthread.h"

/* One batched subscription, as configure copied it (thread only after). */
struct cr__bjob {
  struct cr__bjob *next;
  char *id, *url, *account_id;
  cr_sub_filter *filter;
  cr_event_tpl *tpl; /* NULL: the event as JSON (or a template that failed
                        to compile: has_tpl, tpl_error) */
  int has_tpl;
  char tpl_error[256];
  cr_swh_signer *signer;      /* NULL: unsigned */
  struct curl_slist *headers; /* the subscription's own */
  int max_events, ndjson;
  size_t max_bytes;
  int64_t max_wait_ms;
  long timeout_ms;
  int64_t *schedule; /* NULL: the Standard Webhooks one */
  size_t n_schedule;
  int64_t retry_at; /* nothing to do before */
};

struct cr_batch_engine {
  struct cr__bg bg;            /* the thread and the job set */
  struct cr_batch_stats stats; /* under bg's lock */
  /* thread only */
  cr_store *store;
  CURL *curl;
  cr_log_fn log;
  void *log_ud;
  int log_min_level;
  int64_t poll_ms;
};

/* One pass of job j: opens a batch when there is none, sends the open one
 * when it is due, records the outcome. Returns 1 when there may be more to
 * do at once. Sets j->retry_at when it has to wait. */
int cr__batch_pass(cr_batch_engine *e, struct cr__bjob *j);

#endif
