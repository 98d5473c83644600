/* control.h: what people do with connrun, as library calls shared by the
 * REST API (core/api/) and the CLI: views of authorizations (the
 * Authorization Summary), works (the integrations page with status, sync
 * logs and upcoming collection times), executions, subscriptions, alerts,
 * plugins and runners as JSON, and the actions on them (check now, run now,
 * cancel, rename).
 *
 * Every call takes a struct cr_ctl: the store connection, the configuration
 * in force and the loaded plugins (all borrowed, used by one thread for the
 * call), and the actor that mutating calls write into their events. Views
 * return new jansson values owned by the caller (json_decref). No view ever
 * contains a secret.
 */
#ifndef CR_CONTROL_H
#define CR_CONTROL_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"
#include "plugin/plugin_host.h"
#include "store/store.h"

struct cr_ctl {
  cr_store *store;
  const cr_config *cfg;
  const cr_plugin_host *plugins;
  const char *actor; /* event actor of mutating calls ("cli", a token name) */
  int64_t now_ms;    /* 0: the wall clock */
};

/* Where an object comes from. */
enum cr_managed_by { CR_MANAGED_CONFIG = 0, CR_MANAGED_API = 1 };

/* ---- Authorizations ---- */

/* The summary of authorization id (borrowed): id, name, description,
 * provider {id, display_name}, method, owner, created_at, updated_at,
 * managed_by, declared_at ("FILE:LINE" for config-managed ones), health
 * {status, reason, checked_at, next_check_at} and, when with_assoc, its
 * associated jobs (works reading with it) and exports (works writing to it),
 * each {id, name, type import|export, status, created_at}, sorted by sort
 * ("name", "type", "status", "created"; NULL = name), desc non-zero for
 * descending. Errors: CR_ENOENT, CR_EINVAL (bad sort), CR_ENOMEM, store
 * errors. */
int cr_ctl_auth_view(const struct cr_ctl *c, const char *id, int with_assoc,
                     const char *sort, int desc, json_t **out);

/* The authorizations in id order after the id after (NULL: from the start),
 * at most limit, filtered by provider and health status name (NULL: any):
 * *out is an array of summaries without associations; *next (may be NULL)
 * gets a new cr__malloc'd cursor (the last id) when more follow, else NULL.
 * Errors: CR_EINVAL, CR_ENOMEM, store errors. */
int cr_ctl_auth_list(const struct cr_ctl *c, const char *after, size_t limit,
                     const char *provider, const char *health, json_t **out,
                     char **next);

/* A strong ETag ("\"...\"", into buf of at least 24 bytes) of the
 * editable part of an authorization or work view: id, name, description,
 * enabled, error_email_notifications, updated_at. */
void cr_ctl_auth_etag(const json_t *view, char *buf);

/* Renames / redescribes authorization id: name and description (borrowed,
 * NULL = unchanged), with an `auth updated` event by c->actor.
 * Config-managed authorizations are refused with CR_EPERM and *where set to
 * "FILE:LINE" (caller-owned buffer of 300 bytes). *cfg_out (may be NULL)
 * gets the configuration with the change (cr_config_free). Errors:
 * CR_ENOENT, CR_EPERM, CR_ECONFIG (where gets the reason), store errors. */
int cr_ctl_auth_rename(const struct cr_ctl *c, const char *id, const char *name,
                       const char *description, cr_config **cfg_out,
                       char *where);

/* The authorization's activity: requests and errors per bucket of
 * granularity ("hour", "day", "week", "month") in [from_ms, to_ms). *out
 * is {granularity, from, to, points: [{start, requests, errors}]}.
 * Errors: CR_ENOENT, CR_EINVAL (bad granularity or range), store errors. */
int cr_ctl_auth_metrics(const struct cr_ctl *c, const char *id,
                        const char *granularity, int64_t from_ms, int64_t to_ms,
                        json_t **out);

/* The newest health checks, newest first (at most limit): *out is an
 * array of {status, reason, checked_at}. Errors: CR_ENOENT, store errors. */
int cr_ctl_auth_health(const struct cr_ctl *c, const char *id, size_t limit,
                       json_t **out);

/* Runs a health check of authorization id now on this thread (it blocks
 * while the plugin talks to its provider) and records it as a scheduled
 * check is recorded (health history, event with c->actor, activity
 * metrics). *out is {status, reason, checked_at, duration_ms, requests}.
 * Errors: CR_ENOENT (no such authorization), CR_ENOTSUP (its provider is
 * not loaded), store errors. */
int cr_ctl_auth_check(const struct cr_ctl *c, const char *id,
                      const atomic_int *cancel, json_t **out);

/* ---- Works ---- */

/* The integration view of work id: id, name, description, provider,
 * authorization, type, enabled, error_email_notifications, schedule
 * (description), status (Active / Error / Disabled) and status_reason (the
 * last error), last_execution, next_run_at, created_at, updated_at,
 * managed_by, declared_at. Errors: CR_ENOENT, store errors. */
int cr_ctl_work_view(const struct cr_ctl *c, const char *id, json_t **out);

/* Works in id order after after, at most limit, filtered by status name
 * and provider (NULL: any); cursor as cr_ctl_auth_list. */
int cr_ctl_work_list(const struct cr_ctl *c, const char *after, size_t limit,
                     const char *status, const char *provider, json_t **out,
                     char **next);

/* The next n (1..100) collection times of work id after now: *out is an
 * array of RFC 3339 strings (empty when the work has no schedule or is
 * disabled). Errors: CR_ENOENT. */
int cr_ctl_work_schedule(const struct cr_ctl *c, const char *id, size_t n,
                         json_t **out);

/* Creates an execution of work id now (Created; the runner takes it),
 * with a `work` `updated` event naming the actor. *exec_id
 * gets its id. Errors: CR_ENOENT, CR_EEXIST (an execution is already open;
 * *exec_id gets nothing), CR_EPERM (disabled), store errors. */
int cr_ctl_work_run(const struct cr_ctl *c, const char *id, int64_t *exec_id);

/* Sets enabled / error_email_notifications (-1 = unchanged) of an
 * API-created work, with a `work updated` event by c->actor. Config-managed
 * works are refused with CR_EPERM and *where (300 bytes) "FILE:LINE".
 * *cfg_out as cr_ctl_auth_rename. */
int cr_ctl_work_set(const struct cr_ctl *c, const char *id, int enabled,
                    int error_email_notifications, cr_config **cfg_out,
                    char *where);

/* The executions of work id (NULL: all), newest first, older than before
 * (0: from the newest), at most limit: *out is an array of execution
 * summaries; *next as cr_ctl_auth_list (the last id as text). */
int cr_ctl_exec_list(const struct cr_ctl *c, const char *work_id,
                     int64_t before, size_t limit, json_t **out, char **next);

/* Execution id with its transitions and log lines (the sync log): id,
 * work, state (product name), attempt, runner, created_at, updated_at,
 * error_class, error, records (per stream committed), transitions. */
int cr_ctl_exec_view(const struct cr_ctl *c, int64_t id, json_t **out);

/* Cancels execution id (not final yet) as c->actor. Errors: CR_ENOENT,
 * CR_ESTATE (final), store errors. */
int cr_ctl_exec_cancel(const struct cr_ctl *c, int64_t id);

/* ---- Sync state (the plugin's committed cursors) ---- */

/* One version of a work's sync state as JSON: work, version, state (the
 * JSON, or null), records, committed_at, execution_id (null when set by a
 * person), note. A new reference (NULL on ENOMEM). r is borrowed. */
json_t *cr_ctl_state_json(const struct cr_sync_state_rec *r);

/* The versions of work_id's (borrowed) sync state, newest first, at most
 * limit (0: 100; clamped to 10,000): *out is a new array of
 * cr_ctl_state_json views. Errors: CR_ENOENT (no such work in c->cfg),
 * CR_ENOMEM, store errors. */
int cr_ctl_state_history(const struct cr_ctl *c, const char *work_id,
                         size_t limit, json_t **out);

/* A change of a work's sync state made by a person: a rollback to an older
 * version (version > 0), else state_json (borrowed JSON text) or, with
 * reset, no state. if_idle refuses it while an execution of the work is
 * open (its next checkpoint would overwrite the change). */
struct cr_ctl_state_change {
  int64_t version;
  const char *state_json;
  int reset;
  int if_idle;
};

/* Commits ch (borrowed) as a new version of work_id's (borrowed) sync
 * state, noted "set by operator: ...", with a `work updated` event by
 * c->actor, in one transaction; *version_out (may be NULL) gets the new
 * version. Errors: CR_ENOENT (no such work in c->cfg, or no such version),
 * CR_ESTATE (if_idle and an execution is open), CR_EINVAL (state_json not
 * JSON), store errors. */
int cr_ctl_state_set(const struct cr_ctl *c, const char *work_id,
                     const struct cr_ctl_state_change *ch,
                     int64_t *version_out);

/* ---- Events, subscriptions, alerts, plugins ---- */

/* One stored event as its JSON view (the webhook body without template). */
json_t *cr_ctl_event_json(const struct cr_event_rec *e);

/* Subscription id's view: id, name, workflow, enabled, disabled_reason,
 * config (the documents' keys; headers values and secret hidden), backlog,
 * delivered, dead, success_rate_24h, last attempt, managed_by. */
int cr_ctl_sub_view(const struct cr_ctl *c, const char *id, json_t **out);

/* Every subscription's view, in id order. */
int cr_ctl_sub_list(const struct cr_ctl *c, json_t **out);

/* The alert rules with whether each work they watch is in breach now. */
int cr_ctl_alert_list(const struct cr_ctl *c, json_t **out);

/* The loaded plugins ({name, display_name, version, abi, path, methods,
 * capabilities, streams}), with schemas when with_schemas. */
int cr_ctl_plugin_list(const struct cr_ctl *c, int with_schemas, json_t **out);

/* One plugin with its schemas. CR_ENOENT when not loaded. */
/* The plugin files refused by the last load or rescan ([{path, reason}]).
 * *out is transferred to the caller. Returns 0 or CR_ENOMEM. */
int cr_ctl_plugin_refused(const struct cr_ctl *c, json_t **out);
int cr_ctl_plugin_view(const struct cr_ctl *c, const char *name, json_t **out);

/* An RFC 3339 UTC string for ms ("2026-12-04T18:43:34.123Z"), or JSON null
 * for 0: a new reference. */
json_t *cr_ctl_jtime(int64_t ms);

/* The product name of an integration status from the work (borrowed),
 * whether it is enabled and its last execution (NULL when none): Disabled,
 * Error (its provider cannot serve it: w->unavailable; or the last one
 * failed), Active. */
const char *cr_ctl_work_status(const struct cr_config_work *w, int enabled,
                               const struct cr_exec_rec *last);

#endif
