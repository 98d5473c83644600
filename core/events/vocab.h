/* vocab.h: the product vocabulary: system-event subject types and verbs,
 * authorization health statuses, integration statuses and execution states,
 * as constant tables with lookup and iteration helpers.
 *
 * Every string returned here is static (never freed). Lookups are exact and
 * case-sensitive (verbs and subject types are lower case, statuses and states
 * capitalised, as the product documents spell them). */
#ifndef CR_VOCAB_H
#define CR_VOCAB_H

#include <stddef.h>

/* One vocabulary entry: the word and a one-line description (both static). */
struct cr_vocab_entry {
  const char *name;
  const char *description;
};

/* Non-zero when s (borrowed; NULL gives 0) is a known system-event verb. */
int cr_vocab_is_verb(const char *s);

/* Non-zero when s (borrowed; NULL gives 0) is a known subject type. */
int cr_vocab_is_subject_type(const char *s);

/* Number of verbs / subject types, and the i-th entry (static; NULL when i
 * is out of range). Use them to list choices or to suggest a near word. */
size_t cr_vocab_verb_count(void);
const struct cr_vocab_entry *cr_vocab_verb_at(size_t i);
size_t cr_vocab_subject_type_count(void);
const struct cr_vocab_entry *cr_vocab_subject_type_at(size_t i);

/* Authorization health as reported by a health check. */
enum cr_health_status {
  CR_HEALTH_UNKNOWN = 0,
  CR_HEALTH_HEALTHY = 1,
  CR_HEALTH_UNHEALTHY = 2,
};

/* Integration (work) configuration status. */
enum cr_integration_status {
  CR_INTEGRATION_ACTIVE = 0,
  CR_INTEGRATION_ERROR = 1,
  CR_INTEGRATION_DISABLED = 2,
};

/* State of one execution of a work. */
enum cr_exec_state {
  CR_EXEC_CREATED = 0,
  CR_EXEC_PENDING = 1,
  CR_EXEC_EXECUTING = 2,
  CR_EXEC_COMPLETED = 3,
  CR_EXEC_FAILED = 4,
  CR_EXEC_CANCELLED = 5,
};

/* The product name of a health status / integration status / execution
 * state ("Healthy", "Active", "Executing"), static; NULL when out of range. */
const char *cr_vocab_health_name(int status);
const char *cr_vocab_integration_status_name(int status);
const char *cr_vocab_exec_state_name(int state);

/* Parses a name back to its value. Returns the value (>= 0), or CR_EINVAL
 * when name (borrowed) is not one of them. */
int cr_vocab_health_parse(const char *name);
int cr_vocab_integration_status_parse(const char *name);
int cr_vocab_exec_state_parse(const char *name);

/* Describes a health status / integration status / execution state in one
 * line (static; NULL when out of range). */
const char *cr_vocab_health_description(int status);
const char *cr_vocab_integration_status_description(int status);
const char *cr_vocab_exec_state_description(int state);

/* Levenshtein distance between a and b (borrowed), capped: returns any
 * value > cap as cap + 1 (cheap early exit). */
size_t cr_vocab_distance(const char *a, const char *b, size_t cap);

/* The closest of n candidates (borrowed) to word within edit distance
 * max_dist, first in order on ties; NULL when none is that close or word is
 * itself a candidate. Candidates may contain NULLs (skipped). Returns a
 * pointer into candidates' strings (borrowed). */
const char *cr_vocab_suggest(const char *word, const char *const *candidates,
                             size_t n, size_t max_dist);

/* The closest verb / subject type to word (within distance 2), static, or
 * NULL. */
const char *cr_vocab_suggest_verb(const char *word);
const char *cr_vocab_suggest_subject_type(const char *word);

#endif
