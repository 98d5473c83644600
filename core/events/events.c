/* events.c: validating and appending system events (see events.h). */
#include "events/events.h"

#include <stdlib.h>

#include "util/clock.h"
#include "util/error.h"
#include "events/vocab.h"

int cr_event_emit(cr_store *s, const char *subject_type, const char *subject_id,
                  const char *verb, const char *actor, const json_t *data,
                  int64_t *id_out) {
  if (s == NULL || subject_id == NULL || actor == NULL ||
      !cr_vocab_is_subject_type(subject_type) || !cr_vocab_is_verb(verb))
    return CR_EINVAL;
  if (data != NULL && !json_is_object(data))
    return CR_EINVAL;
  char *dumped = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if (data != NULL && dumped == NULL)
    return CR_ENOMEM;
  char empty[] = "{}";
  char *text = dumped ? dumped : empty;
  struct cr_event_rec rec = {
      .at = cr__now_ms(),
      .subject_type = (char *)subject_type,
      .subject_id = (char *)subject_id,
      .verb = (char *)verb,
      .actor = (char *)actor,
      .data_json = text,
  };
  int64_t id = 0;
  int rc = cr_store_event_append(s, &rec, &id);
  free(dumped); /* from json_dumps */
  if (rc == 0 && id_out != NULL)
    *id_out = id;
  return rc;
}
