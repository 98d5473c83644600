/* ctl_states.c: a work's sync state (the committed cursors of its plugin):
 * its versions as JSON, and a new version set by a person (a rollback to an
 * older version, a given state, or a reset) with its `work updated` event.
 * The REST API (/v1/works/{id}/states) and `connrun state` share them. */
#include <stdio.h>
#include <string.h>

#include "control/ctl_int.h"
#include "events/events.h"
#include "util/error.h"

json_t *cr_ctl_state_json(const struct cr_sync_state_rec *r) {
  json_t *state =
      r->state_json ? json_loads(r->state_json, JSON_DECODE_ANY, NULL) : NULL;
  return json_pack(
      "{s:s, s:I, s:o, s:I, s:o, s:o, s:o}", "work", r->work_id, "version",
      (json_int_t)r->version, "state", state ? state : json_null(), "records",
      (json_int_t)r->records, "committed_at", cr_ctl_jtime(r->committed_at),
      "execution_id",
      r->execution_id ? json_integer(r->execution_id) : json_null(), "note",
      r->note ? json_string(r->note) : json_null());
}

int cr_ctl_state_history(const struct cr_ctl *c, const char *work_id,
                         size_t limit, json_t **out) {
  *out = NULL;
  if (cr_config_find_work(c->cfg, work_id) == NULL)
    return CR_ENOENT;
  struct cr_sync_state_rec *list = NULL;
  size_t n = 0;
  int rc = cr_store_sync_state_history(c->store, work_id, limit, &list, &n);
  json_t *items = rc == 0 ? json_array() : NULL;
  for (size_t i = 0; items != NULL && i < n; i++)
    if (json_array_append_new(items, cr_ctl_state_json(&list[i])) != 0)
      rc = CR_ENOMEM;
  cr_sync_state_rec_free_list(list, n);
  if (rc == 0 && items == NULL)
    rc = CR_ENOMEM;
  if (rc != 0) {
    json_decref(items);
    return rc;
  }
  *out = items;
  return 0;
}

/* The new version's state and note for change ch: the old version's state
 * (into *old, cleared by the caller) or the given one. */
static int change_of(const struct cr_ctl *c, const char *work_id,
                     const struct cr_ctl_state_change *ch,
                     struct cr_sync_state_rec *old, const char **state,
                     char *note, size_t len) {
  *state = ch->reset ? NULL : ch->state_json;
  if (ch->version <= 0) {
    snprintf(note, len, "set by operator: %s",
             ch->reset ? "reset" : "given state");
    return 0;
  }
  int rc = cr_store_sync_state_get(c->store, work_id, ch->version, old);
  *state = old->state_json;
  snprintf(note, len, "set by operator: rollback to version %lld",
           (long long)ch->version);
  return rc;
}

int cr_ctl_state_set(const struct cr_ctl *c, const char *work_id,
                     const struct cr_ctl_state_change *ch,
                     int64_t *version_out) {
  if (cr_config_find_work(c->cfg, work_id) == NULL)
    return CR_ENOENT;
  struct cr_sync_state_rec old;
  memset(&old, 0, sizeof old);
  const char *state = NULL;
  char note[128];
  int64_t version = 0;
  int open = 0;
  int rc = cr_store_begin(c->store);
  if (rc != 0)
    return rc;
  if (ch->if_idle)
    rc = cr_store_exec_work_open(c->store, work_id, &open);
  if (rc == 0 && open)
    rc = CR_ESTATE;
  if (rc == 0)
    rc = change_of(c, work_id, ch, &old, &state, note, sizeof note);
  if (rc == 0)
    rc = cr_store_sync_state_commit(c->store, work_id, state, 0, 0, note,
                                    &version);
  if (rc == 0) {
    json_t *d = json_pack("{s:s, s:I, s:s}", "change", "state", "version",
                          (json_int_t)version, "note", note);
    rc = d ? cr_event_emit(c->store, "work", work_id, "updated", c->actor, d,
                           NULL)
           : CR_ENOMEM;
    json_decref(d);
  }
  rc = rc == 0 ? cr_store_commit(c->store) : (cr_store_rollback(c->store), rc);
  cr_sync_state_rec_clear(&old);
  if (rc == 0 && version_out != NULL)
    *version_out = version;
  return rc;
}
