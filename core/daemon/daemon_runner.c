/* daemon_runner.c: the daemon's local runner and scheduler.
 *
 * The loop thread owns the decisions: a timer runs the scheduler pass
 * (scheduler.h), takes back expired leases and claims executions through
 * the claim interface (cr_store_exec_claim, runner id "local") for the free
 * slots of the concurrency limit. Claimed executions go to a queue served by
 * `runner_concurrency` threads; each thread has its own store connection and
 * runs cr_exec_run (exec_run.h), then hands the result back to the loop
 * (uv_async), which claims again at once.
 *
 * Group commit (exec_group.h): each thread owns a group. Completions of
 * quick runs wait in it; the thread keeps taking jobs without blocking and
 * commits the group, then hands all its deferred jobs back at once, when the
 * queue is empty, the group holds CR_EXEC_GROUP_MAX entries or is
 * CR_EXEC_GROUP_MAX_AGE_MS old, and before it exits. Other outcomes are
 * handed back at once.
 *
 * Stop: claiming stops; running executions get the grace period to finish;
 * after it the stop flag cancels them and they go back to created as a new
 * attempt (retried by the next start or another runner). */
#include "daemon/daemon_int.h"

#include "control/ctl_runners.h"
#include "store/claim_signal.h"
#include "store/store_runners.h"
#include <inttypes.h>
#include <string.h>

#include "events/delivery.h"
#include "exec/exec_group.h"
#include "exec/exec_run.h"
#include "exec/scheduler.h"
#include "plugin/worker_pool.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

struct cr__run_job {
  struct cr__run_job *next;
  struct cr_exec_claim claim; /* owned */
  struct cr__cfg_ref *cfg;    /* reference held until done (loop thread) */
  cr_plugin_host *plugins;    /* the plugin set it started with (held) */
  struct cr_exec_outcome out;
  int rc;
};

static void job_free(struct cr__run_job *j) {
  cr_plugin_host_free(j->plugins); /* may unload a replaced plugin */
  cr__free(j->claim.work_id);
  cr__free(j);
}

/* ---- Runner threads ----------------------------------------------------- */

/* The next queued job; waits for one (or quit) only when wait is set. */
static struct cr__run_job *next_job(struct cr__runner *rn, int wait) {
  uv_mutex_lock(&rn->mu);
  while (wait && rn->queue == NULL && !rn->quit)
    uv_cond_wait(&rn->cv, &rn->mu);
  struct cr__run_job *j = rn->queue;
  if (j != NULL) {
    rn->queue = j->next;
    if (rn->queue == NULL)
      rn->queue_tail = NULL;
  }
  uv_mutex_unlock(&rn->mu);
  return j;
}

/* Hands the jobs first..last (linked) back to the loop. */
static void post_jobs(struct cr__runner *rn, struct cr__run_job *first,
                      struct cr__run_job *last) {
  uv_mutex_lock(&rn->mu);
  last->next = rn->done;
  rn->done = first;
  uv_mutex_unlock(&rn->mu);
  uv_async_send(&rn->done_async);
}

/* A runner thread's jobs whose completion waits in its group. */
struct deferred {
  cr_exec_group *group; /* NULL: no group commit (out of memory) */
  struct cr__run_job *first, *last;
};

/* Commits the group (errors are logged by it per execution: those leases
 * expire and the executions are retried) and hands the jobs back. */
static void flush_deferred(struct cr__runner *rn, struct deferred *df,
                           cr_store *store) {
  cr_exec_group_commit(df->group, store);
  if (df->first != NULL)
    post_jobs(rn, df->first, df->last);
  df->first = df->last = NULL;
}

/* Keeps j when its completion was deferred, else hands it back; then
 * commits when a bound is reached (or a run of its own already did). */
static void after_run(struct cr__runner *rn, struct deferred *df,
                      cr_store *store, struct cr__run_job *j) {
  if (!j->out.deferred) {
    j->next = NULL;
    post_jobs(rn, j, j);
  } else {
    j->next = NULL;
    if (df->last != NULL)
      df->last->next = j;
    else
      df->first = j;
    df->last = j;
  }
  size_t n = cr_exec_group_size(df->group);
  if (df->first != NULL &&
      (n == 0 || n >= CR_EXEC_GROUP_MAX ||
       cr_exec_group_age_ms(df->group) >= CR_EXEC_GROUP_MAX_AGE_MS))
    flush_deferred(rn, df, store);
}

static void thread_main(void *arg) {
  cr_daemon *d = arg;
  struct cr__runner *rn = &d->runner;
  cr_store *store = NULL;
  char err[512] = "";
  int orc = cr_store_open(rn->data_dir, &store, err, sizeof err);
  if (orc != 0)
    cr__daemon_logf(d, CR_LOG_ERROR, "runner: cannot open store: %s", err);
  struct deferred df = {0};
  if (store != NULL && cr_exec_group_new(&df.group) != 0)
    cr__daemon_logf(d, CR_LOG_WARN, "runner: no group commit: out of memory");
  for (;;) {
    struct cr__run_job *j = next_job(rn, df.first == NULL);
    if (j == NULL && df.first != NULL) { /* queue empty: commit now */
      flush_deferred(rn, &df, store);
      continue;
    }
    if (j == NULL)
      break;
    struct cr_exec_env env = {
        .cfg = j->cfg->cfg,
        .plugins = j->plugins,
        .pool = rn->pool,
        .store = store,
        .log = d->log,
        .log_ud = d->log_ud,
        .log_min_level = d->log_min_level,
        .stop = &rn->stop_runs,
        .lease_ms = rn->lease_ms,
        .retry_base_ms = rn->retry_base_ms,
        .group = df.group,
    };
    j->rc = store ? cr_exec_run(&env, &j->claim, &j->out) : orc;
    after_run(rn, &df, store, j);
  }
  cr_exec_group_free(df.group);
  cr_store_close(store);
}

/* ---- Loop side ---------------------------------------------------------- */

static void enqueue(struct cr__runner *rn, struct cr__run_job *j) {
  uv_mutex_lock(&rn->mu);
  if (rn->queue_tail != NULL)
    rn->queue_tail->next = j;
  else
    rn->queue = j;
  rn->queue_tail = j;
  uv_cond_signal(&rn->cv);
  uv_mutex_unlock(&rn->mu);
}

/* Names of the loaded providers that can read. */
static size_t providers(cr_daemon *d, const char **names, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < cr_plugin_host_count(d->plugins) && n < max; i++) {
    const struct cr_plugin_descriptor *desc =
        cr_plugin_desc(cr_plugin_host_at(d->plugins, i));
    if (desc->capabilities & CR_PLUGIN_CAP_READ)
      names[n++] = desc->name;
  }
  return n;
}

static void claim_some(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  if (d->stopping || rn->running >= rn->concurrency)
    return;
  const char *names[CR_EXEC_CLAIM_MAX_PROVIDERS];
  size_t np = providers(d, names, CR_EXEC_CLAIM_MAX_PROVIDERS);
  if (np == 0)
    return;
  /* On a shared store a claim takes the write lock that every instance's
   * writers take turns with, and every instance's cycle runs on every
   * execution made claimable anywhere: look first, reading only. What this
   * read misses was made claimable after it, and signals again. */
  int any = 1;
  if (cr_store_shared(d->store) &&
      cr_store_exec_claimable(d->store, names, np, NULL, NULL, &any) == 0 &&
      !any)
    return;
  struct cr_exec_claim *c = NULL;
  size_t n = 0;
  int rc =
      cr_store_exec_claim(d->store, rn->runner_id, names, np,
                          rn->concurrency - rn->running, rn->lease_ms, &c, &n);
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_WARN, "runner: claim failed: %s",
                    cr_strerror(rc));
    return;
  }
  for (size_t i = 0; i < n; i++) {
    struct cr__run_job *j = cr__calloc(1, sizeof *j);
    if (j == NULL)
      break; /* the lease expires and the execution comes back */
    j->claim = c[i];
    c[i].work_id = NULL;
    j->cfg = d->cfg;
    cr__cfg_ref_get(j->cfg);
    j->plugins = cr_plugin_host_retain(d->plugins);
    rn->running++;
    enqueue(rn, j);
  }
  cr_exec_claim_free_list(c, n);
}

/* Retention: once an hour, events older than host.event_retention_days go,
 * except those a subscription is still owed (the store keeps them). */
static void prune_events(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  int64_t now = cr__now_ms();
  if (now - rn->last_prune_ms < INT64_C(3600000))
    return;
  rn->last_prune_ms = now;
  int64_t days = d->cfg->cfg->host.event_retention_days;
  int64_t deleted = 0;
  int rc =
      cr_store_event_prune(d->store, now - days * INT64_C(86400000), &deleted);
  if (rc != 0)
    cr__daemon_logf(d, CR_LOG_WARN, "retention: prune failed: %s",
                    cr_strerror(rc));
  else if (deleted > 0)
    cr__daemon_logf(d, CR_LOG_INFO,
                    "retention: %" PRId64 " events older than %" PRId64
                    " days pruned",
                    deleted, days);
}

/* A retry whose time came since the last look is claimable now, though no
 * write announced it: waiting long-poll claims are told (claim_signal.h). */
static void retries_due(cr_daemon *d, int64_t since, int64_t now) {
  int due = 0;
  if (cr_store_exec_retry_due(d->store, since, now, &due) == 0 && due)
    cr_claim_signal();
}

/* Remote runners not seen within host.runner.offline_after go offline (at
 * most once a second), and retries that came due are announced. */
static void runners_offline(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  int64_t now = cr__now_ms();
  if (now - rn->last_offline_scan_ms < 1000)
    return;
  retries_due(d, rn->last_offline_scan_ms, now);
  rn->last_offline_scan_ms = now;
  const cr_config *cfg = d->cfg->cfg;
  struct cr_ctl c = {.store = d->store, .cfg = cfg, .plugins = d->plugins};
  size_t n = 0;
  int rc =
      cr_ctl_runner_offline_scan(&c, cfg->host.runner_offline_after_ms, &n);
  if (rc != 0)
    cr__daemon_logf(d, CR_LOG_WARN, "runners: offline scan failed: %s",
                    cr_strerror(rc));
  else if (n > 0)
    cr__daemon_logf(d, CR_LOG_WARN,
                    "runners: %zu remote runner(s) went offline", n);
}

static int fence_scheduler(void *ud) {
  return cr__daemon_duty_fence(ud, CR__DUTY_SCHEDULER);
}

/* The scheduler pass reads every work: it runs when a work is due (the
 * pass tells when), after a reload, and at least once a second, not after
 * every completion (with 4,000 works it was most of the loop's time). */
static void schedule(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  int64_t now = cr__now_ms();
  if (rn->sched_due_ms != 0 && now < rn->sched_due_ms)
    return;
  size_t created = 0;
  int64_t wake = 0;
  /* Fenced: each execution is created in a transaction that first renews
   * the duty, so an instance that lost it while stalled creates none. */
  cr_scheduler_set_fence(rn->sched, fence_scheduler, d);
  int rc =
      cr_scheduler_pass(rn->sched, d->store, d->cfg->cfg, 0, &created, &wake);
  if (rc == CR_ECANCELED)
    return; /* the duty is another instance's now */
  if (rc != 0)
    cr__daemon_logf(d, CR_LOG_WARN, "scheduler: %s (%s)", cr_strerror(rc),
                    cr_store_last_error(d->store));
  int64_t next = now + 1000;
  rn->sched_due_ms = rc == 0 && wake > now && wake < next ? wake : next;
}

/* Expired leases are looked for 4 times a second, not at every cycle: a
 * cycle runs whenever an execution becomes claimable or finishes, and the
 * pass is a write (under the write lock every instance shares, on
 * PostgreSQL) that nearly always finds nothing. Leases last seconds. */
static int expire_due(struct cr__runner *rn) {
  int64_t now = cr__now_ms();
  if (now - rn->last_expire_ms < 250)
    return 0;
  rn->last_expire_ms = now;
  return 1;
}

void cr__daemon_runner_cycle(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  if (d->stopping || !rn->started)
    return;
  size_t expired = 0;
  /* What must happen once across instances only where its duty is held
   * (daemon_cluster.c); claiming is every instance's. */
  if (cr__daemon_duty(d, CR__DUTY_SCHEDULER))
    schedule(d);
  if (cr__daemon_duty(d, CR__DUTY_LEASES) && expire_due(rn) &&
      cr_store_exec_expire(d->store, 0, &expired) == 0 && expired > 0)
    cr__daemon_logf(d, CR_LOG_WARN,
                    "runner: %zu expired lease(s) put back as new attempts",
                    expired);
  claim_some(d);
  if (cr__daemon_duty(d, CR__DUTY_RUNNERS))
    runners_offline(d);
  if (cr__daemon_duty(d, CR__DUTY_ALERTS))
    cr__daemon_alerts_scan(d);
  if (cr__daemon_duty(d, CR__DUTY_RETENTION))
    prune_events(d);
}

static void close_cb(uv_handle_t *h) { (void)h; }

static void finish_stop(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  if (rn->closed)
    return;
  rn->closed = 1;
  uv_close((uv_handle_t *)&rn->done_async, close_cb);
  uv_close((uv_handle_t *)&rn->grace_timer, close_cb);
}

static void on_done(uv_async_t *a) {
  cr_daemon *d = a->data;
  struct cr__runner *rn = &d->runner;
  uv_mutex_lock(&rn->mu);
  struct cr__run_job *j = rn->done;
  rn->done = NULL;
  uv_mutex_unlock(&rn->mu);
  while (j != NULL) {
    struct cr__run_job *next = j->next;
    if (j->rc != 0)
      cr__daemon_logf(d, CR_LOG_ERROR, "execution %" PRId64 " of work %s: %s",
                      j->claim.execution_id, j->claim.work_id,
                      cr_strerror(j->rc));
    cr__cfg_ref_put(j->cfg);
    job_free(j);
    rn->running--;
    j = next;
  }
  cr__daemon_alerts_scan(d);
  cr__daemon_events_written(d); /* the executions wrote events */
  if (d->stopping && rn->running == 0)
    finish_stop(d);
  else
    cr__daemon_runner_cycle(d);
}

static void on_tick(uv_timer_t *t) { cr__daemon_runner_cycle(t->data); }

static void on_grace(uv_timer_t *t) {
  cr_daemon *d = t->data;
  cr__daemon_logf(d, CR_LOG_WARN,
                  "grace period over: stopping %u running execution(s); they "
                  "will be retried",
                  d->runner.running);
  atomic_store(&d->runner.stop_runs, 1);
}

int cr__daemon_runner_start(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  const cr_config *cfg = d->cfg->cfg;
  if ((rn->data_dir = cr__strdup(cr_config_store_at(cfg))) == NULL)
    return CR_ENOMEM;
  rn->concurrency = cfg->host.runner_concurrency > 0
                        ? (unsigned)cfg->host.runner_concurrency
                        : 1;
  size_t released = 0;
  int rc = cr_store_exec_release_runner(d->store, rn->runner_id,
                                        "runner restarted", &released);
  if (rc != 0)
    return rc;
  if (released > 0)
    cr__daemon_logf(d, CR_LOG_WARN,
                    "runner: %zu execution(s) left running by a previous run "
                    "put back as new attempts",
                    released);
  if ((rc = cr_scheduler_new(d->plugins, &rn->sched)) != 0)
    return rc;
  if (rn->worker_exe != NULL) {
    struct cr_worker_pool_opts po = {.exe = rn->worker_exe,
                                     .max_idle = rn->concurrency};
    if ((rc = cr_worker_pool_new(&po, &rn->pool)) != 0)
      return rc;
  }
  if (uv_mutex_init(&rn->mu) != 0 || uv_cond_init(&rn->cv) != 0)
    return CR_EIO;
  rn->sync_inited = 1;
  rn->threads = cr__calloc(rn->concurrency, sizeof *rn->threads);
  if (rn->threads == NULL)
    return CR_ENOMEM;
  for (; rn->n_threads < rn->concurrency; rn->n_threads++)
    if (uv_thread_create(&rn->threads[rn->n_threads], thread_main, d) != 0)
      return CR_EIO;
  if (uv_async_init(&d->loop, &rn->done_async, on_done) != 0 ||
      uv_timer_init(&d->loop, &rn->tick) != 0 ||
      uv_timer_init(&d->loop, &rn->grace_timer) != 0)
    return CR_EIO;
  rn->done_async.data = rn->tick.data = rn->grace_timer.data = d;
  rn->handles = 1;
  rn->started = 1;
  return uv_timer_start(&rn->tick, on_tick, 0, 1000) == 0 ? 0 : CR_EIO;
}

void cr__daemon_runner_stop(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  if (!rn->handles)
    return;
  uv_close((uv_handle_t *)&rn->tick, close_cb);
  if (rn->running == 0) {
    finish_stop(d);
    return;
  }
  cr__daemon_logf(d, CR_LOG_INFO,
                  "waiting up to %" PRId64 " ms for %u running execution(s)",
                  rn->grace_ms, rn->running);
  uv_timer_start(&rn->grace_timer, on_grace, (uint64_t)rn->grace_ms, 0);
}

void cr__daemon_runner_free(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  if (rn->sync_inited) {
    uv_mutex_lock(&rn->mu);
    rn->quit = 1;
    uv_cond_broadcast(&rn->cv);
    uv_mutex_unlock(&rn->mu);
  }
  for (unsigned i = 0; i < rn->n_threads; i++)
    uv_thread_join(&rn->threads[i]);
  cr__free(rn->threads);
  for (struct cr__run_job *j = rn->queue; j != NULL;) {
    struct cr__run_job *next = j->next;
    cr__cfg_ref_put(j->cfg);
    job_free(j);
    j = next;
  }
  for (struct cr__run_job *j = rn->done; j != NULL;) {
    struct cr__run_job *next = j->next;
    cr__cfg_ref_put(j->cfg);
    job_free(j);
    j = next;
  }
  if (rn->sync_inited) {
    uv_mutex_destroy(&rn->mu);
    uv_cond_destroy(&rn->cv);
  }
  cr_worker_pool_free(rn->pool);
  cr_scheduler_free(rn->sched);
  cr__free(rn->worker_exe);
  cr__free(rn->data_dir);
}
