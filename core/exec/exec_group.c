/* exec_group.c: pending completions of quick runs, written together in one
 * transaction with a savepoint per execution (exec_group.h). */
#include "exec/exec_group.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "exec/exec_run_int.h"
#include "exec/execution.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

struct entry {
  struct cr_exec_final fin; /* fin.work_id owned */
  cr_log_fn log;
  void *log_ud;
  int log_min_level;
  struct cr_exec_outcome *out; /* borrowed */
  int lost;
};

struct cr_exec_group {
  struct entry *e;
  size_t n, cap;
  int64_t first_ms; /* when the oldest pending entry was added */
};

int cr_exec_group_new(cr_exec_group **out) {
  if (out == NULL)
    return CR_EINVAL;
  *out = cr__calloc(1, sizeof **out);
  return *out ? 0 : CR_ENOMEM;
}

static void entry_log(const struct entry *e, int level, const char *msg) {
  cr__exec_log(e->log, e->log_ud, e->log_min_level, e->fin.work_id,
               e->fin.execution_id, level, "%s", msg);
}

/* Empties g (the entries' work ids are freed; outcomes are left alone). */
static void drop_all(cr_exec_group *g) {
  for (size_t i = 0; i < g->n; i++)
    cr__free((char *)g->e[i].fin.work_id);
  g->n = 0;
}

void cr_exec_group_free(cr_exec_group *g) {
  if (g == NULL)
    return;
  for (size_t i = 0; i < g->n; i++)
    g->e[i].out->state = -1;
  drop_all(g);
  cr__free(g->e);
  cr__free(g);
}

size_t cr_exec_group_size(const cr_exec_group *g) { return g ? g->n : 0; }

int64_t cr_exec_group_age_ms(const cr_exec_group *g) {
  return g && g->n ? cr__now_ms() - g->first_ms : 0;
}

int cr__exec_group_add(cr_exec_group *g, const struct cr_exec_final *f,
                       const struct cr_exec_env *env,
                       struct cr_exec_outcome *out) {
  if (g->n == g->cap) {
    size_t cap = g->cap ? g->cap * 2 : CR_EXEC_GROUP_MAX;
    struct entry *e = cr__realloc(g->e, cap * sizeof *e);
    if (e == NULL)
      return CR_ENOMEM;
    g->e = e;
    g->cap = cap;
  }
  char *work_id = cr__strdup(f->work_id);
  if (work_id == NULL)
    return CR_ENOMEM;
  struct entry *e = &g->e[g->n];
  e->fin = *f;
  e->fin.work_id = work_id;
  e->log = env->log;
  e->log_ud = env->log_ud;
  e->log_min_level = env->log_min_level;
  e->out = out;
  e->lost = 0;
  if (g->n++ == 0)
    g->first_ms = cr__now_ms();
  return 0;
}

/* One entry in its savepoint. A lost lease undoes it and marks it lost;
 * other errors are returned (the group is abandoned). */
static int write_entry(cr_store *s, struct entry *e) {
  int rc = cr_store_savepoint(s);
  if (rc != 0)
    return rc;
  int wrc = cr_exec_write_final_in_txn(s, &e->fin);
  rc = cr_store_savepoint_end(s, wrc);
  if (rc != 0 && rc == wrc && (rc == CR_ESTALE || rc == CR_ESTATE)) {
    e->lost = 1;
    return 0;
  }
  return rc;
}

static void report(const struct entry *e, int rc) {
  char text[160];
  if (rc != 0) {
    e->out->state = -1;
    snprintf(text, sizeof text,
             "cannot write the completion: %s; the lease expires and it is "
             "retried",
             cr_strerror(rc));
    entry_log(e, CR_LOG_ERROR, text);
  } else if (e->lost) {
    e->out->state = -1;
    entry_log(e, CR_LOG_WARN, "lease lost: another attempt owns it now");
  } else {
    e->out->state = CR_EXEC_COMPLETED;
    snprintf(text, sizeof text,
             "completed: %" PRId64 " records, %" PRId64 " checkpoints",
             e->fin.records, e->fin.checkpoints);
    entry_log(e, CR_LOG_INFO, text);
  }
}

int cr_exec_group_commit(cr_exec_group *g, cr_store *s) {
  if (g == NULL || s == NULL)
    return CR_EINVAL;
  if (g->n == 0)
    return 0;
  int rc = cr_store_begin(s);
  if (rc == 0) {
    for (size_t i = 0; rc == 0 && i < g->n; i++)
      rc = write_entry(s, &g->e[i]);
    if (rc == 0)
      rc = cr_store_commit(s); /* a failed commit is rolled back */
    else
      cr_store_rollback(s);
  }
  for (size_t i = 0; i < g->n; i++)
    report(&g->e[i], rc);
  drop_all(g);
  return rc;
}
