/* apply.h: bringing the store in line with a loaded configuration.
 *
 * Authorizations, works and subscriptions defined in the configuration are
 * created or updated in the store; those the store has and the configuration
 * no longer defines are deleted. Each change is written in one transaction
 * together with the event that reports it (subject auth / work /
 * subscription, verb created / updated / deleted). Unchanged objects (same
 * config_hash) produce nothing. Secrets are never written: the store keeps
 * descriptive fields and the hash of the definition as written.
 */
#ifndef CR_APPLY_H
#define CR_APPLY_H

#include <stddef.h>

#include "config/config.h"
#include "store/store.h"

struct cr_apply_stats {
  int created;
  int updated;
  int deleted;
  int unchanged;
};

/* Applies cfg (borrowed) to s. actor (borrowed) is recorded on every event,
 * e.g. "config". st (may be NULL) receives counts. Stops at the first store
 * error, returning it with a message in errbuf (caller-owned, may be NULL);
 * changes committed before it stay (each object is its own transaction).
 * Returns 0, CR_ENOMEM or a store error. */
int cr_apply_config(cr_store *s, const cr_config *cfg, const char *actor,
                    struct cr_apply_stats *st, char *errbuf, size_t errlen);

#endif
