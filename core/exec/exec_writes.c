/* exec_writes.c: the store writes of a run (see exec_writes.h): each state
 * change with its events in one transaction, fenced by the lease epoch. */
#include "exec/exec_writes.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "events/events.h"
#include "util/alloc.h"
#include "util/error.h"

int cr_exec_lost(int rc) { return rc == CR_ESTALE || rc == CR_ESTATE; }

static json_t *exec_data(const struct cr_exec_final *f) {
  return json_pack("{s:I, s:i}", "execution_id", (json_int_t)f->execution_id,
                   "attempt", f->attempt);
}

/* Emits a work event with data (consumed; NULL = out of memory). */
static int emit_work(cr_store *s, const char *work_id, const char *verb,
                     json_t *data) {
  int rc = data ? cr_event_emit(s, "work", work_id, verb, CR_ACTOR_SYSTEM, data,
                                NULL)
                : CR_ENOMEM;
  json_decref(data);
  return rc;
}

static int executing_steps(cr_store *s, const struct cr_exec_final *f) {
  int first = 0;
  char detail[128] = "plugin started";
  if (f->plugin_version != NULL)
    snprintf(detail, sizeof detail, "plugin %.64s started", f->plugin_version);
  int rc = cr_store_exec_transition(s, f->execution_id, f->epoch, "executing",
                                    detail, NULL, NULL);
  if (rc == 0)
    rc = cr_store_work_mark_started(s, f->work_id, &first);
  if (rc == 0 && first)
    rc = emit_work(s, f->work_id, "started", exec_data(f));
  if (rc == 0) {
    json_t *d = exec_data(f);
    if (d != NULL && f->plugin_version != NULL)
      json_object_set_new(d, "plugin_version", json_string(f->plugin_version));
    rc = emit_work(s, f->work_id, "syncing", d);
  }
  return rc;
}

int cr_exec_write_executing(cr_store *s, const struct cr_exec_final *f) {
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = executing_steps(s, f);
  return cr_store_end(s, rc);
}

int cr_exec_write_checkpoint(cr_store *s, const struct cr_exec_final *f,
                             int64_t lease_ms, const char *state, size_t len,
                             int64_t records, int64_t *version) {
  char *copy = cr__strndup(state, len);
  if (copy == NULL)
    return CR_ENOMEM;
  int64_t v = 0;
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_store_exec_renew(s, f->execution_id, f->epoch, lease_ms);
  if (rc == 0)
    rc = cr_store_sync_state_commit(s, f->work_id, copy, records,
                                    f->execution_id, NULL, &v);
  if (rc == 0) {
    json_t *d = exec_data(f);
    if (d != NULL) {
      json_object_set_new(d, "version", json_integer(v));
      json_object_set_new(d, "records", json_integer(records));
    }
    rc = emit_work(s, f->work_id, "synced", d);
  }
  rc = cr_store_end(s, rc);
  cr__free(copy);
  if (rc == 0 && version != NULL)
    *version = v;
  return rc;
}

int cr_exec_write_credentials(cr_store *s, const struct cr_exec_final *f,
                              int64_t lease_ms, const char *auth_id,
                              const char *auth_hash, const char *json,
                              size_t len) {
  char *copy = cr__strndup(json, len);
  if (copy == NULL)
    return CR_ENOMEM;
  int rc = cr_store_begin(s);
  /* Fenced like every other write (renewing the lease checks the epoch):
   * a runner that lost its lease must not overwrite credentials another
   * attempt may have rotated since. */
  if (rc == 0)
    rc = cr_store_exec_renew(s, f->execution_id, f->epoch, lease_ms);
  if (rc == 0)
    rc = cr_store_auth_credentials_set(s, auth_id, auth_hash, copy);
  if (rc == 0) {
    /* Never the credentials themselves: only that they changed. */
    json_t *d =
        json_pack("{s:s, s:s, s:I}", "change", "credentials", "source",
                  "plugin", "execution_id", (json_int_t)f->execution_id);
    rc = d ? cr_event_emit(s, "auth", auth_id, "updated", CR_ACTOR_SYSTEM, d,
                           NULL)
           : CR_ENOMEM;
    json_decref(d);
  }
  rc = cr_store_end(s, rc);
  cr__secret_wipe_free(copy, len);
  return rc;
}

int cr_exec_write_final_in_txn(cr_store *s, const struct cr_exec_final *f) {
  json_t *d = exec_data(f);
  if (d != NULL) {
    json_object_set_new(d, "records", json_integer(f->records));
    json_object_set_new(d, "checkpoints", json_integer(f->checkpoints));
    json_object_set_new(d, "duration_ms", json_integer(f->duration_ms));
  }
  int rc = 0;
  if (f->needs_executing) /* a quick plugin: one transaction for all */
    rc = executing_steps(s, f);
  if (rc == 0)
    rc = cr_store_exec_transition(s, f->execution_id, f->epoch, "completed",
                                  "plugin finished", NULL, NULL);
  if (rc == 0)
    rc = emit_work(s, f->work_id, "synccomplete", json_deep_copy(d));
  if (rc == 0 && f->one_time) {
    rc = emit_work(s, f->work_id, "completed", d);
    d = NULL;
  }
  json_decref(d);
  return rc;
}

int cr_exec_write_completed(cr_store *s, const struct cr_exec_final *f) {
  int rc = cr_store_begin(s);
  if (rc == 0)
    rc = cr_exec_write_final_in_txn(s, f);
  return cr_store_end(s, rc);
}

int cr_exec_write_failed(cr_store *s, const struct cr_exec_final *f,
                         const char *cls, const char *msg) {
  int rc = cr_store_begin(s);
  if (rc == 0 && f->needs_executing)
    rc = executing_steps(s, f);
  if (rc == 0)
    rc = cr_store_exec_transition(s, f->execution_id, f->epoch, "failed", msg,
                                  cls, msg);
  if (rc == 0) {
    json_t *d = exec_data(f);
    if (d != NULL) {
      json_object_set_new(d, "error_class", json_string(cls));
      json_object_set_new(d, "error", json_string(msg));
      json_object_set_new(d, "records", json_integer(f->records));
    }
    rc = emit_work(s, f->work_id, "failed", d);
  }
  return cr_store_end(s, rc);
}

int cr_exec_write_retry(cr_store *s, const struct cr_exec_final *f, int64_t at,
                        const char *cls, const char *msg, const char *reason) {
  int rc = cr_store_begin(s);
  if (rc == 0 && f->needs_executing)
    rc = executing_steps(s, f);
  if (rc == 0)
    rc =
        cr_store_exec_retry(s, f->execution_id, f->epoch, at, reason, cls, msg);
  return cr_store_end(s, rc);
}
