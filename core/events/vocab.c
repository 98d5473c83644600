/* vocab.c: the product vocabulary tables (see vocab.h) and the edit-distance
 * helpers used for "did you mean" suggestions. */
#include "events/vocab.h"

#include "util/error.h"

#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* System-event verbs. The first nine are the product's documented work
 * verbs, in the product's words; the rest are connrun's own. */
static const struct cr_vocab_entry verbs[] = {
    /* For when works are created. This only occurs only once per work. */
    {"created", "a work (or other subject) was created"},
    /* For when work configuration is modified. It may occur multiple times
     * per work. */
    {"updated", "the configuration was modified"},
    /* For when a work is deleted. */
    {"deleted", "the subject was deleted"},
    /* For the first time, work is started. This occurs once per work. */
    {"started", "a work was started for the first time"},
    /* For the start of a series of sync cycles for a work. */
    {"syncing", "a series of sync cycles started"},
    /* For the completion of one sync unit (multiple units may happen per
     * sleep cycle). */
    {"synced", "one sync unit completed"},
    /* For the completion of one synchronization cycle. Emitted when a work
     * cycle finishes successfully. This is shown at the end when there are
     * multiple cycles per scheduled sync or when there is a sleep cycle. */
    {"synccomplete", "one synchronization cycle completed successfully"},
    /* For the final successful completion of a work. This occurs once per
     * work. */
    {"completed", "the work finished successfully"},
    /* For the final failure of a work. This occurs once per work unless work
     * is bounced. */
    {"failed", "the work failed"},
    {"cancelled", "an execution was cancelled"},
    {"claimed", "an execution was claimed by a runner"},
    {"expired", "a lease or credential expired"},
    {"healthy", "an authorization health check passed"},
    {"unhealthy", "an authorization health check failed"},
    {"unknown", "an authorization health check could not tell"},
    {"checked_in", "a runner checked in"},
    {"disabled", "the subject was disabled"},
    {"enabled", "the subject was enabled"},
    {"delivered", "a notification was delivered"},
    {"alerted", "an alert rule fired for the subject (e.g. its error rate "
                "reached the threshold)"},
    {"recovered", "the condition of an alert rule cleared for the subject"},
};

/* Subject types, with the product's descriptions (runner is connrun's). */
static const struct cr_vocab_entry subject_types[] = {
    {"account", "Represents account-related actions or changes."},
    {"auth", "Refers to authentication events, including 3rd party access "
             "control activities with service accounts."},
    {"user", "Actions related to user accounts, such as creation, update, or "
             "deactivation."},
    {"campaign", "Actions or modifications related to marketing campaigns."},
    {"data", "Covers data management events, such as data ingestion and "
             "updates."},
    {"entity", "Refers to actions involving user entities aka Profiles."},
    {"experience", "Actions associated with experience."},
    {"journey", "Pertains to events tracking customer journeys and related "
                "updates."},
    {"program", "Events involving the creation or modification of programs "
                "within the system."},
    {"provider", "Refers to data provider configurations or integrations."},
    {"query", "Covers actions involving queries."},
    {"report", "Refers to generation, access, or modification of reports."},
    {"rollup", "Involves aggregation events, such as data roll-ups for "
               "analytics."},
    {"schema", "Actions associated with data schema configuration and "
               "updates."},
    {"schematable", "Refers to operations involving schema tables or data "
                    "structure definitions."},
    {"scoring", "Covers actions involving user scoring mechanisms within the "
                "system."},
    {"segment", "Events related to segment creation, modification, or "
                "deletion."},
    {"segmentcollection", "Refers to collections of segments and associated "
                          "actions."},
    {"segmentml", "Involves machine learning (ML) processes related to "
                  "segment analysis."},
    {"stream", "Actions or updates related to a stream."},
    {"subscription", "Events involving subscriptions, such as subscription "
                     "creation or cancellation."},
    {"topic-document", "Refers to topic modeling or document processing "
                       "events."},
    {"variation", "Refers to A/B testing or variation setup within "
                  "experiences or campaigns."},
    {"work", "Covers general work-related actions or tasks within the "
             "system."},
    {"workflow", "Actions associated with workflow creation, modification, "
                 "or execution."},
    {"runner", "A connrun runner process (check-in, claims)."},
    {"instance", "A connrun serve process sharing the store (cluster "
                 "duties)."},
};

/* Indexed by enum cr_health_status. */
static const struct cr_vocab_entry health[] = {
    {"Unknown", "The authorization status is unknown."},
    {"Healthy", "The authorization is valid and active."},
    {"Unhealthy", "The authorization is invalid and inactive."},
};

/* Indexed by enum cr_integration_status. */
static const struct cr_vocab_entry integration[] = {
    {"Active", "The integration is operating normally and collecting data."},
    {"Error", "There was an error connecting with the integration. Review "
              "the logs."},
    {"Disabled", "The integration has been disabled."},
};

/* Indexed by enum cr_exec_state. */
static const struct cr_vocab_entry exec_states[] = {
    {"Created", "The execution has been created and is queued; with a runner "
                "it stays here until the runner has checked in."},
    {"Pending", "The execution has been picked up by a runner and is "
                "pending."},
    {"Executing", "The execution is communicating with the provider."},
    {"Completed", "The execution is complete and no longer communicating "
                  "with the provider."},
    {"Failed", "The execution ended with an error."},
    {"Cancelled", "The execution was cancelled before it completed."},
};

static const struct cr_vocab_entry *find(const struct cr_vocab_entry *t,
                                         size_t n, const char *s) {
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, s) == 0)
      return &t[i];
  return NULL;
}

static int find_index(const struct cr_vocab_entry *t, size_t n, const char *s) {
  const struct cr_vocab_entry *e = find(t, n, s);
  return e == NULL ? CR_EINVAL : (int)(e - t);
}

static const struct cr_vocab_entry *at(const struct cr_vocab_entry *t, size_t n,
                                       long i) {
  return i < 0 || (size_t)i >= n ? NULL : &t[i];
}

int cr_vocab_is_verb(const char *s) {
  return find(verbs, N_OF(verbs), s) != NULL;
}

int cr_vocab_is_subject_type(const char *s) {
  return find(subject_types, N_OF(subject_types), s) != NULL;
}

size_t cr_vocab_verb_count(void) { return N_OF(verbs); }

const struct cr_vocab_entry *cr_vocab_verb_at(size_t i) {
  return i < N_OF(verbs) ? &verbs[i] : NULL;
}

size_t cr_vocab_subject_type_count(void) { return N_OF(subject_types); }

const struct cr_vocab_entry *cr_vocab_subject_type_at(size_t i) {
  return i < N_OF(subject_types) ? &subject_types[i] : NULL;
}

const char *cr_vocab_health_name(int status) {
  const struct cr_vocab_entry *e = at(health, N_OF(health), status);
  return e ? e->name : NULL;
}

const char *cr_vocab_integration_status_name(int status) {
  const struct cr_vocab_entry *e = at(integration, N_OF(integration), status);
  return e ? e->name : NULL;
}

const char *cr_vocab_exec_state_name(int state) {
  const struct cr_vocab_entry *e = at(exec_states, N_OF(exec_states), state);
  return e ? e->name : NULL;
}

int cr_vocab_health_parse(const char *name) {
  return find_index(health, N_OF(health), name);
}

int cr_vocab_integration_status_parse(const char *name) {
  return find_index(integration, N_OF(integration), name);
}

int cr_vocab_exec_state_parse(const char *name) {
  return find_index(exec_states, N_OF(exec_states), name);
}

const char *cr_vocab_health_description(int status) {
  const struct cr_vocab_entry *e = at(health, N_OF(health), status);
  return e ? e->description : NULL;
}

const char *cr_vocab_integration_status_description(int status) {
  const struct cr_vocab_entry *e = at(integration, N_OF(integration), status);
  return e ? e->description : NULL;
}

const char *cr_vocab_exec_state_description(int state) {
  const struct cr_vocab_entry *e = at(exec_states, N_OF(exec_states), state);
  return e ? e->description : NULL;
}

size_t cr_vocab_distance(const char *a, const char *b, size_t cap) {
  size_t la = strlen(a), lb = strlen(b);
  if ((la > lb ? la - lb : lb - la) > cap)
    return cap + 1;
  if (lb > 63)
    return strcmp(a, b) == 0 ? 0 : cap + 1; /* names are short */
  size_t row[64];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0], best = row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = diag + (a[i - 1] != b[j - 1]);
      size_t v = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
      row[j] = v < cost ? v : cost;
      diag = up;
      if (row[j] < best)
        best = row[j];
    }
    if (best > cap)
      return cap + 1;
  }
  return row[lb] > cap ? cap + 1 : row[lb];
}

const char *cr_vocab_suggest(const char *word, const char *const *candidates,
                             size_t n, size_t max_dist) {
  const char *best = NULL;
  size_t best_d = max_dist + 1;
  if (word == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (candidates[i] == NULL)
      continue;
    size_t d = cr_vocab_distance(word, candidates[i], max_dist);
    if (d == 0)
      return NULL;
    if (d < best_d) {
      best_d = d;
      best = candidates[i];
    }
  }
  return best;
}

static const char *suggest_entry(const char *word,
                                 const struct cr_vocab_entry *t, size_t n) {
  const char *names[64];
  for (size_t i = 0; i < n && i < N_OF(names); i++)
    names[i] = t[i].name;
  return cr_vocab_suggest(word, names, n < N_OF(names) ? n : N_OF(names), 2);
}

const char *cr_vocab_suggest_verb(const char *word) {
  return suggest_entry(word, verbs, N_OF(verbs));
}

const char *cr_vocab_suggest_subject_type(const char *word) {
  return suggest_entry(word, subject_types, N_OF(subject_types));
}
