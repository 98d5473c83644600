/* events.h: emitting system events.
 *
 * A system event records one action: subject type, subject id, verb, actor
 * and a JSON data object, with a time, a sortable unique id and a sequence
 * number per subject (assigned by the store). The caller wraps the change
 * and its event in one store transaction (cr_store_begin/commit) so there is
 * no change without its event and no event without its change. Event data
 * must never carry secrets; callers build it from non-secret fields only.
 */
#ifndef CR_EVENTS_H
#define CR_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "store/store.h"

/* Actors for events the daemon itself causes. */
#define CR_ACTOR_CONFIG "config"
#define CR_ACTOR_SYSTEM "system"

/* Appends one event. subject_type must be a known subject type and verb a
 * known verb (core/vocab.h), else CR_EINVAL. data (borrowed, may be NULL for
 * {}) must be a JSON object. *id_out (may be NULL) receives the event id.
 * Returns 0, CR_EINVAL, CR_ENOMEM or a store error. */
int cr_event_emit(cr_store *s, const char *subject_type, const char *subject_id,
                  const char *verb, const char *actor, const json_t *data,
                  int64_t *id_out);

#endif
