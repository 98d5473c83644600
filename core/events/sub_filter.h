/* sub_filter.h: a subscription's event filter: which verbs and which
 * subjects (type and id) a webhook subscription receives; built from the
 * subscription's config or from its canonical JSON (as the store keeps it),
 * and matched against events. */
#ifndef CR_SUB_FILTER_H
#define CR_SUB_FILTER_H

#include <stddef.h>

struct cr_config_subscription;

/* A subscription's event filter, from its config (product format): verbs =
 * system_event_type (one) and/or system_event_multiple_types (list) (none =
 * every verb); sources = system_event_sources {subject_type: [ids]} ([] =
 * every subject of that type; absent = every subject of every type; {} =
 * nothing). Immutable once built. */
typedef struct cr_sub_filter cr_sub_filter;

/* Builds the filter of c (borrowed: c->event_types and c->sources are
 * copied). On success *out is a new filter freed with cr_sub_filter_free.
 * Errors: CR_EINVAL (NULL argument, sources not an object of arrays of
 * strings), CR_ENOMEM. */
int cr_sub_filter_from_config(const struct cr_config_subscription *c,
                              cr_sub_filter **out);

/* Parses the canonical JSON text filter_json (borrowed) written by
 * cr_sub_filter_to_json: {"verbs":[strings],"sources":null|{type:[ids]}}
 * ("verbs" and "sources" may be absent: every verb / every subject). *out is
 * a new filter freed with cr_sub_filter_free. Errors: CR_EINVAL (not JSON,
 * wrong shape, unknown key), CR_ENOMEM. */
int cr_sub_filter_from_json(const char *filter_json, cr_sub_filter **out);

/* The canonical JSON text of f (borrowed): verbs and ids sorted and
 * de-duplicated, keys sorted, compact. Allocated with cr__malloc (caller
 * frees with cr__free); NULL when out of memory or f is NULL. */
char *cr_sub_filter_to_json(const cr_sub_filter *f);

/* 1 when an event with subject_type, subject_id and verb (all borrowed)
 * passes f (borrowed), else 0 (also for NULL arguments). Allocates
 * nothing. */
int cr_sub_filter_match(const cr_sub_filter *f, const char *subject_type,
                        const char *subject_id, const char *verb);

/* Frees f (NULL is a no-op). */
void cr_sub_filter_free(cr_sub_filter *f);

#endif
