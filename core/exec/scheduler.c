/* scheduler.c: creating due executions from stored next run times, and the
 * provider default schedules. */
#include "exec/scheduler.h"

#include <jansson.h>
#include <string.h>

#include "exec/execution.h"
#include "exec/schedule.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

struct provider_default {
  const char *name; /* borrowed from the plugin descriptor */
  cr_schedule *sched;
};

struct cr_scheduler {
  struct provider_default *defs;
  size_t n;
  cr_scheduler_fence_fn fence;
  void *fence_ud;
};

void cr_scheduler_set_fence(cr_scheduler *sc, cr_scheduler_fence_fn fn,
                            void *ud) {
  sc->fence = fn;
  sc->fence_ud = ud;
}

/* A period estimate to compare schedules: the gap between two runs. */
static int64_t period_of(const cr_schedule *s) {
  int64_t a = 0, b = 0;
  if (cr_schedule_next(s, 0, INT64_C(1700000000000), &a) != 0 ||
      cr_schedule_next(s, 0, a, &b) != 0)
    return INT64_MAX;
  return b - a;
}

static cr_schedule *parse_default(const char *txt) {
  cr_schedule *s = NULL;
  if (strchr(txt, ' ') != NULL || txt[0] == '@')
    cr_schedule_parse_cron(txt, NULL, &s, NULL, 0);
  else
    cr_schedule_parse_every(txt, &s, NULL, 0);
  return s;
}

/* The most frequent default_schedule of p's streams, or NULL. */
static cr_schedule *plugin_default(const cr_plugin *p) {
  const char *txt = cr_plugin_desc(p)->streams_json;
  json_t *arr = txt ? json_loads(txt, 0, NULL) : NULL;
  cr_schedule *best = NULL;
  int64_t best_period = INT64_MAX;
  size_t i;
  json_t *st;
  json_array_foreach(arr, i, st) {
    const char *d = json_string_value(json_object_get(st, "default_schedule"));
    cr_schedule *s = d ? parse_default(d) : NULL;
    int64_t per = s ? period_of(s) : INT64_MAX;
    if (s != NULL && per < best_period) {
      cr_schedule_free(best);
      best = s;
      best_period = per;
    } else {
      cr_schedule_free(s);
    }
  }
  json_decref(arr);
  return best;
}

int cr_scheduler_new(const cr_plugin_host *h, cr_scheduler **out) {
  if (out == NULL)
    return CR_EINVAL;
  *out = NULL;
  cr_scheduler *sc = cr__calloc(1, sizeof *sc);
  size_t n = h ? cr_plugin_host_count(h) : 0;
  if (sc == NULL || (n > 0 && !(sc->defs = cr__calloc(n, sizeof *sc->defs)))) {
    cr__free(sc);
    return CR_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    const cr_plugin *p = cr_plugin_host_at(h, i);
    cr_schedule *s = plugin_default(p);
    if (s != NULL)
      sc->defs[sc->n++] = (struct provider_default){cr_plugin_desc(p)->name, s};
  }
  *out = sc;
  return 0;
}

void cr_scheduler_free(cr_scheduler *sc) {
  if (sc == NULL)
    return;
  for (size_t i = 0; i < sc->n; i++)
    cr_schedule_free(sc->defs[i].sched);
  cr__free(sc->defs);
  cr__free(sc);
}

const cr_schedule *cr_scheduler_effective(const cr_scheduler *sc,
                                          const struct cr_config_work *w) {
  if (w == NULL)
    return NULL;
  if (w->schedule.kind != CR_SCHED_NONE)
    return w->schedule.sched;
  for (size_t i = 0; sc != NULL && i < sc->n; i++)
    if (strcmp(sc->defs[i].name, w->provider) == 0)
      return sc->defs[i].sched;
  return NULL;
}

/* When a work without a stored next run should first run: at once for
 * its own interval, the next slot otherwise. */
static int first_run(const struct cr_config_work *w, const cr_schedule *s,
                     int64_t anchor, int64_t now, int64_t *at) {
  if (w->schedule.kind == CR_SCHED_EVERY) {
    *at = now;
    return 0;
  }
  return cr_schedule_next(s, anchor, now, at);
}

/* The pass writes in groups: it reads every work outside any transaction
 * and queues the writes; each SCHED_GROUP of them go in one transaction,
 * fenced first, each write in a savepoint of its own (a failing work undoes
 * only its own). With thousands of due works a transaction each was most
 * of the writer's time, and runners claiming the new executions waited for
 * it. The transactions write no event and the duty's row, which the fence
 * locks, serializes them: cr_store_begin_rows, so on a shared store
 * (PostgreSQL) a group does not hold the lock every writer takes. (Under
 * that lock, groups once halved the executions of 3 instances, and a
 * shared store wrote one work per transaction.) */
#define SCHED_GROUP 64

struct pending {
  const char *work_id; /* borrowed from the pass's records */
  int create;          /* an execution, then next_run */
  int64_t next_run;
};

struct group {
  const cr_scheduler *sc;
  cr_store *s;
  struct pending q[SCHED_GROUP];
  size_t n, max;
  size_t *total; /* executions created and committed */
};

/* Writes the queued works in one transaction. Returns the first error
 * (CR_ECANCELED: the fence refused; nothing written). */
static int group_flush(struct group *g) {
  if (g->n == 0)
    return 0;
  size_t n = g->n, created = 0;
  g->n = 0;
  int rc = cr_store_begin_rows(g->s), first = 0;
  if (rc != 0)
    return rc;
  if (g->sc->fence != NULL && !g->sc->fence(g->sc->fence_ud)) {
    cr_store_rollback(g->s);
    return CR_ECANCELED; /* not ours to schedule any more */
  }
  for (size_t i = 0; i < n; i++) {
    const struct pending *p = &g->q[i];
    int wrc = n > 1 ? cr_store_savepoint(g->s) : 0;
    if (wrc == 0) {
      int w = p->create ? cr_store_exec_create(g->s, p->work_id, NULL) : 0;
      if (w == 0)
        w = cr_store_work_set_next_run(g->s, p->work_id, p->next_run);
      wrc = n > 1 ? cr_store_savepoint_end(g->s, w) : w;
    }
    if (wrc == 0 && p->create)
      created++;
    if (wrc != 0 && first == 0)
      first = wrc;
  }
  if (n == 1 && first != 0) { /* no savepoint: undo it all */
    cr_store_rollback(g->s);
    return first;
  }
  rc = cr_store_commit(g->s);
  if (rc == 0)
    *g->total += created;
  return rc != 0 ? rc : first;
}

/* Queues one work's writes: create (an execution) and/or set next_run. */
static int group_write(struct group *g, const char *work_id, int create,
                       int64_t next_run) {
  g->q[g->n++] = (struct pending){work_id, create, next_run};
  return g->n >= g->max ? group_flush(g) : 0;
}

static int pass_work(struct group *g, const struct cr_config_work *w,
                     const cr_schedule *sched, const struct cr_work_rec *rec,
                     int64_t now, int64_t *next_out) {
  int64_t anchor = rec->created_at, next = rec->next_run_at, slot = 0;
  int rc = cr_schedule_next(sched, anchor, now, &slot);
  if (rc != 0)
    return rc == CR_ENOENT ? 0 : rc;
  if (next == 0 || next > slot) {
    /* New, or the schedule became more frequent. */
    rc = first_run(w, sched, anchor, now, &next);
    if (rc == 0)
      rc = group_write(g, w->id, 0, next);
    if (rc != 0)
      return rc;
  }
  if (next > now) {
    *next_out = next;
    return 0;
  }
  int open = 0;
  rc = cr_store_exec_work_open(g->s, w->id, &open);
  if (rc != 0 || open)
    return rc; /* waits for the open one: stays due */
  rc = group_write(g, w->id, 1, slot);
  if (rc == 0)
    *next_out = slot;
  return rc;
}

int cr_scheduler_pass(cr_scheduler *sc, cr_store *s, const cr_config *cfg,
                      int64_t now, size_t *created, int64_t *next_wake) {
  if (s == NULL || cfg == NULL)
    return CR_EINVAL;
  if (now <= 0)
    now = cr__now_ms();
  size_t n_created = 0;
  struct group g = {.sc = sc, .s = s, .max = SCHED_GROUP, .total = &n_created};
  int64_t wake = 0;
  struct cr_work_rec *recs = NULL;
  size_t n = 0;
  int first_err = cr_store_work_list(s, &recs, &n);
  for (size_t i = 0; i < n; i++) {
    const struct cr_config_work *w = cr_config_find_work(cfg, recs[i].id);
    const cr_schedule *sched = cr_scheduler_effective(sc, w);
    /* A work its provider cannot serve waits, due, until it can. */
    if (w != NULL && w->unavailable != NULL)
      continue;
    int rc = 0;
    int64_t next = 0;
    if (w == NULL || !w->enabled || sched == NULL) {
      if (recs[i].next_run_at != 0)
        rc = group_write(&g, recs[i].id, 0, 0);
    } else {
      rc = pass_work(&g, w, sched, &recs[i], now, &next);
    }
    if (rc != 0 && first_err == 0)
      first_err = rc;
    if (rc == CR_ECANCELED)
      break;
    if (next > now && (wake == 0 || next < wake))
      wake = next;
  }
  int rc = group_flush(&g);
  if (rc != 0 && first_err == 0)
    first_err = rc;
  cr_work_rec_free_list(recs, n);
  if (created != NULL)
    *created = n_created;
  if (next_wake != NULL)
    *next_wake = wake;
  return first_err;
}

int cr_scheduler_trigger(cr_store *s, const char *work_id, int64_t *exec_id,
                         int *existing) {
  if (s == NULL || work_id == NULL || exec_id == NULL)
    return CR_EINVAL;
  struct cr_exec_rec *list = NULL;
  size_t n = 0;
  int rc = cr_store_exec_list(s, work_id, 20, &list, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!cr_exec_state_final(cr_exec_state_from_name(list[i].state))) {
      *exec_id = list[i].id;
      if (existing != NULL)
        *existing = 1;
      cr_exec_rec_free_list(list, n);
      return 0;
    }
  }
  cr_exec_rec_free_list(list, n);
  if (existing != NULL)
    *existing = 0;
  return rc != 0 ? rc : cr_store_exec_create(s, work_id, exec_id);
}
