/* batch_delivery.c: the batched webhook delivery engine (batch_delivery.h):
 * its jobs (copies of the batched subscriptions) on a background thread
 * (util/bgthread.h). One batch of one subscription: batch_send.c. */
#include "events/batch_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <stdio.h>
#include <string.h>

static void job_free(void *list) {
  struct cr__bjob *j = list;
  while (j != NULL) {
    struct cr__bjob *next = j->next;
    cr_sub_filter_free(j->filter);
    cr_event_tpl_free(j->tpl);
    cr_swh_signer_free(j->signer);
    curl_slist_free_all(j->headers);
    cr__free(j->id);
    if (j->url != NULL)
      cr__secret_wipe_free(j->url, strlen(j->url));
    cr__free(j->account_id);
    cr__free(j->schedule);
    cr__free(j);
    j = next;
  }
}

static int job_headers(struct cr__bjob *j, const json_t *headers) {
  const char *k;
  json_t *v;
  char line[2048];
  json_object_foreach((json_t *)headers, k, v) {
    snprintf(line, sizeof line, "%s: %s", k, json_string_value(v));
    struct curl_slist *n = curl_slist_append(j->headers, line);
    cr__secret_wipe(line, sizeof line);
    if (n == NULL)
      return CR_ENOMEM;
    j->headers = n;
  }
  return 0;
}

static int job_signer(struct cr__bjob *j, const char *secret) {
  unsigned char key[CR_SWH_KEY_MAX];
  size_t keylen = 0;
  if (secret == NULL || cr_swh_key_parse(secret, key, &keylen) != 0)
    return 0; /* config checked the prefix; an unparsable key: unsigned */
  int rc = cr_swh_signer_new(key, keylen, &j->signer);
  cr__secret_wipe(key, sizeof key);
  return rc;
}

static struct cr__bjob *job_new(const struct cr_config_subscription *c,
                                const char *account_id) {
  struct cr__bjob *j = cr__calloc(1, sizeof *j);
  if (j == NULL)
    return NULL;
  j->id = cr__strdup(c->id);
  j->url = cr__strdup(c->webhook_url);
  j->account_id = account_id ? cr__strdup(account_id) : NULL;
  j->max_events = c->batch_max_events > 0 ? c->batch_max_events : 1000;
  j->max_bytes = c->batch_max_bytes > 0 ? (size_t)c->batch_max_bytes : 1 << 20;
  j->max_wait_ms = c->batch_max_wait_ms;
  j->ndjson = c->batch_ndjson;
  j->timeout_ms = c->timeout_ms > 0 ? (long)c->timeout_ms : 15000;
  j->n_schedule = c->retry_schedule_ms ? c->n_retry_schedule : 0;
  if (j->n_schedule > 0 &&
      (j->schedule = cr__calloc(j->n_schedule, sizeof *j->schedule)) != NULL)
    memcpy(j->schedule, c->retry_schedule_ms,
           j->n_schedule * sizeof *j->schedule);
  int ok = j->id && j->url && (account_id == NULL || j->account_id) &&
           (j->n_schedule == 0 || j->schedule) &&
           cr_sub_filter_from_config(c, &j->filter) == 0 &&
           job_headers(j, c->headers) == 0 && job_signer(j, c->secret) == 0;
  if (ok && c->json_template != NULL &&
      cr_event_tpl_new(c->json_template, &j->tpl, j->tpl_error,
                       sizeof j->tpl_error) != 0)
    j->tpl = NULL; /* every event fails with tpl_error */
  j->has_tpl = c->json_template != NULL;
  if (!ok) {
    job_free(j);
    return NULL;
  }
  return j;
}

/* One pass over every job (cr__bg_pass_fn). */
static int pass(void *owner, void *list, int64_t *wait) {
  cr_batch_engine *e = owner;
  int more = 0;
  for (struct cr__bjob *j = list; j != NULL; j = j->next) {
    int64_t now = cr__now_ms();
    if (j->retry_at <= now)
      more |= cr__batch_pass(e, j);
    if (j->retry_at > now && j->retry_at - now < *wait)
      *wait = j->retry_at - now;
  }
  return more;
}

/* ---- Public -------------------------------------------------------------- */

int cr_batch_engine_new(const struct cr_batch_opts *o, cr_batch_engine **out) {
  char err[512];
  if (out != NULL)
    *out = NULL;
  if (o == NULL || o->data_dir == NULL || out == NULL)
    return CR_EINVAL;
  cr_batch_engine *e = cr__calloc(1, sizeof *e);
  if (e == NULL)
    return CR_ENOMEM;
  e->log = o->log;
  e->log_ud = o->log_ud;
  e->log_min_level = o->log_min_level;
  e->poll_ms = o->poll_ms > 0 ? o->poll_ms : 100;
  int rc = cr_store_open(o->data_dir, &e->store, err, sizeof err);
  if (rc == 0 && (e->curl = curl_easy_init()) == NULL)
    rc = CR_EHTTP;
  if (rc != 0) {
    cr__logf(e->log, e->log_ud, CR_LOG_ERROR, "batch delivery: %s",
             rc == CR_EHTTP ? "libcurl" : err);
    cr_store_close(e->store);
    cr__free(e);
    return rc;
  }
  rc = cr__bg_start(&e->bg, e, pass, job_free, NULL, e->poll_ms);
  if (rc != 0) {
    curl_easy_cleanup(e->curl);
    cr_store_close(e->store);
    cr__free(e);
    return rc;
  }
  *out = e;
  return 0;
}

int cr_batch_engine_configure(cr_batch_engine *e, const cr_config *cfg) {
  struct cr__bjob *head = NULL, **tail = &head;
  for (size_t i = 0; i < cfg->n_subscriptions; i++) {
    const struct cr_config_subscription *c = &cfg->subscriptions[i];
    if (!c->enabled || !c->batch || c->webhook_url == NULL)
      continue;
    if ((*tail = job_new(c, cfg->host.account_id)) == NULL) {
      job_free(head);
      return CR_ENOMEM;
    }
    tail = &(*tail)->next;
  }
  cr__bg_offer(&e->bg, head);
  return 0;
}

void cr_batch_engine_kick(cr_batch_engine *e) {
  if (e != NULL)
    cr__bg_kick(&e->bg);
}

void cr_batch_engine_get_stats(cr_batch_engine *e, struct cr_batch_stats *out) {
  cr__bg_lock(&e->bg);
  *out = e->stats;
  cr__bg_unlock(&e->bg);
}

void cr_batch_engine_free(cr_batch_engine *e) {
  if (e == NULL)
    return;
  cr__bg_stop(&e->bg);
  curl_easy_cleanup(e->curl);
  cr_store_close(e->store);
  cr__free(e);
}
