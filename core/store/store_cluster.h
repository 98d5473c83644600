/* store_cluster.h: what the store keeps about the `connrun serve` instances
 * sharing it: each instance's heartbeat, and the duties (work that must
 * happen once: scheduling, lease expiry, retention, alerts, health checks,
 * webhook delivery, table exports) with the instance holding each, as
 * renewable leases.
 *
 * A duty is held by one instance until its lease expires: the holder renews
 * it (every second in the daemon, for a few seconds ahead); when the holder
 * dies, another instance's next acquire takes it over. epoch counts the
 * changes of holder.
 *
 * Part of the store interface (store.h): the same conventions hold. Times
 * are ms since the Unix epoch; strings in records are cr__malloc'ed and
 * owned by the record. */
#ifndef CR_STORE_CLUSTER_H
#define CR_STORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* An instance: info_json is a JSON object it describes itself with (host,
 * pid, version, API address). */
struct cr_instance_rec {
  char *id, *info_json;
  int64_t started_at, last_seen_at;
};

/* A duty and its holder. */
struct cr_duty_rec {
  char *name, *holder;
  int64_t since, expires_at, epoch;
};

/* Records that instance id (borrowed) is alive now, with info_json
 * (borrowed, a JSON object) and started_at; instances not seen for a day
 * are forgotten. Errors: CR_EINVAL, backend errors. */
int cr_store_instance_beat(cr_store *s, const char *id, const char *info_json,
                           int64_t started_at);

/* Lists the instances by id into *out / *n (freed with
 * cr_instance_rec_free_list; NULL when *n is 0). */
int cr_store_instance_list(cr_store *s, struct cr_instance_rec **out,
                           size_t *n);

/* Acquires or renews duty (borrowed) for holder (borrowed) until now +
 * ttl_ms: *held = 1 when holder has it now (it had it, nobody had it, or
 * the previous lease expired), else 0. *prev (may be NULL) gets the duty
 * as it was before (name NULL when it never existed; cleared with
 * cr_duty_rec_clear). In its own transaction. Errors: CR_EINVAL (ttl_ms <=
 * 0), backend errors. */
int cr_store_duty_acquire(cr_store *s, const char *duty, const char *holder,
                          int64_t ttl_ms, int *held, struct cr_duty_rec *prev);

/* Gives up duty (borrowed) if holder (borrowed) has it (its lease ends
 * now, so another instance takes it at its next acquire). Errors:
 * CR_EINVAL, backend errors. */
int cr_store_duty_release(cr_store *s, const char *duty, const char *holder);

/* Lists the duties by name into *out / *n (freed with
 * cr_duty_rec_free_list; NULL when *n is 0). */
int cr_store_duty_list(cr_store *s, struct cr_duty_rec **out, size_t *n);

/* Frees a list of instances or duties, and clears one duty (NULL-safe). */
void cr_instance_rec_free_list(struct cr_instance_rec *r, size_t n);
void cr_duty_rec_free_list(struct cr_duty_rec *r, size_t n);
void cr_duty_rec_clear(struct cr_duty_rec *r);

#endif
