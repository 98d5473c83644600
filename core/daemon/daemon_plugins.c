/* daemon_plugins.c: drop-in plugins on a running daemon. Owns the watch of
 * the plugin directories (inotify, polled by the loop), the rescans (on the
 * thread pool, asked for by a watched change, SIGHUP or POST
 * /v1/plugins/rescan), and applying a new plugin set on the loop: the swap,
 * the `provider` events, retiring idle workers, the scheduler, the reload.
 *
 * Only complete files are loaded: a file written to (IN_MODIFY) is "busy"
 * until it is closed after writing (IN_CLOSE_WRITE) or replaced by a rename
 * (IN_MOVED_TO); a rescan does not open a busy file and keeps the version
 * loaded from its path before. Installing by rename into the directory is
 * the safe way (the file is complete when its name appears). */
#include "daemon/daemon_int.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/inotify.h>
#endif

#include "events/delivery.h"
#include "events/events.h"
#include "exec/scheduler.h"
#include "plugin/plugin_scan.h"
#include "plugin/worker_pool.h"
#include "util/alloc.h"
#include "util/error.h"

/* A change settles this long before a rescan: a `cp` gives several events
 * (create, writes, close), a rename two (moved from, moved to). */
#define SETTLE_MS 20

struct strv {
  char **v;
  size_t n, cap;
};

struct cr__plugwatch {
  int fd; /* inotify; -1 when not watching */
  uv_poll_t poll;
  uv_timer_t settle;
  int poll_inited, timer_inited;
  int *wd; /* watch descriptor of dirs.v[i] */
  struct strv dirs, busy;
  int running; /* a rescan is on the thread pool */
  int again;   /* another one was asked for meanwhile */
  int reload;  /* the next apply reloads the configuration (SIGHUP) */
};

struct rescan_job {
  uv_work_t req;
  cr_daemon *d;
  cr_plugin_host *old; /* held */
  struct strv dirs, busy;
  cr_worker_pool *pool;
  int reload;
  cr_plugin_host *neu;
  struct cr_plugin_change *ch;
  size_t n_ch;
  int rc;
};

/* ---- String sets ---- */

static int strv_find(const struct strv *s, const char *x) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i], x) == 0)
      return (int)i;
  return -1;
}

static int strv_add(struct strv *s, const char *x) {
  if (strv_find(s, x) >= 0)
    return 0;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 8;
    char **g = cr__realloc(s->v, cap * sizeof *g);
    if (g == NULL)
      return CR_ENOMEM;
    s->v = g;
    s->cap = cap;
  }
  if ((s->v[s->n] = cr__strdup(x)) == NULL)
    return CR_ENOMEM;
  s->n++;
  return 0;
}

static void strv_remove(struct strv *s, const char *x) {
  int i = strv_find(s, x);
  if (i < 0)
    return;
  cr__free(s->v[i]);
  s->v[i] = s->v[--s->n];
}

static void strv_free(struct strv *s) {
  for (size_t i = 0; i < s->n; i++)
    cr__free(s->v[i]);
  cr__free(s->v);
  memset(s, 0, sizeof *s);
}

static int strv_copy(struct strv *dst, const char *const *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strv_add(dst, v[i]) != 0)
      return CR_ENOMEM;
  return 0;
}

/* ---- Rescan (thread pool) ---- */

static int is_busy(void *ud, const char *path) {
  return strv_find(ud, path) >= 0;
}

static void rescan_work(uv_work_t *req) {
  struct rescan_job *j = req->data;
  /* dir_error is not set: a directory that cannot be read was logged at
   * start (and on SIGHUP's reload) and is not worth a line per rescan. */
  struct cr_plugin_scan_opts o = {.dirs = (const char *const *)j->dirs.v,
                                  .n_dirs = j->dirs.n,
                                  .busy = is_busy,
                                  .ud = &j->busy};
  j->rc = cr_plugin_host_rescan(j->old, &o, &j->neu, &j->ch, &j->n_ch);
  /* Workers that loaded a replaced or removed version take no new job. */
  for (size_t i = 0; j->rc == 0 && i < j->n_ch; i++)
    if (j->ch[i].kind == CR_PLUGIN_UPDATED ||
        j->ch[i].kind == CR_PLUGIN_DELETED) {
      cr_worker_pool_retire_idle(j->pool);
      break;
    }
}

/* ---- Apply (loop) ---- */

static json_t *change_json(const struct cr_plugin_change *c) {
  json_t *o = json_pack("{s:s, s:s}", "name", c->name, "path", c->path);
  if (o == NULL)
    return NULL;
  if (c->version != NULL) {
    char abi[32];
    snprintf(abi, sizeof abi, "%u.%u", c->abi_major, c->abi_minor);
    json_object_set_new(o, "version", json_string(c->version));
    json_object_set_new(o, "abi", json_string(abi));
  }
  if (c->old_version != NULL)
    json_object_set_new(o, "old_version", json_string(c->old_version));
  if (c->reason != NULL)
    json_object_set_new(o, "reason", json_string(c->reason));
  return o;
}

static void emit_change(cr_daemon *d, const struct cr_plugin_change *c) {
  const char *verb = cr_plugin_change_verb(c->kind);
  if (c->kind == CR_PLUGIN_FAILED)
    cr__daemon_logf(d, CR_LOG_WARN, "refused plugin %s: %s", c->path,
                    c->reason);
  else
    cr__daemon_logf(d, CR_LOG_INFO, "plugin %s %s: %s%s%s (%s)", c->name, verb,
                    c->old_version ? c->old_version : "",
                    c->old_version && c->version ? " -> " : "",
                    c->version ? c->version : "", c->path);
  json_t *data = change_json(c);
  int rc = data ? cr_event_emit(d->store, "provider", c->name, verb,
                                CR_ACTOR_SYSTEM, data, NULL)
                : CR_ENOMEM;
  json_decref(data);
  if (rc != 0)
    cr__daemon_logf(d, CR_LOG_ERROR, "plugins: cannot record event: %s",
                    cr_strerror(rc));
}

void cr__daemon_plugins_installed(cr_daemon *d) {
  struct cr__runner *rn = &d->runner;
  cr_scheduler *sc = NULL;
  if (cr_scheduler_new(d->plugins, &sc) == 0) {
    cr_scheduler_free(rn->sched);
    rn->sched = sc;
  }
  rn->sched_due_ms = 0;
}

static void start_rescan(cr_daemon *d);
static void sync_watches(cr_daemon *d, struct cr__plugwatch *pw);

/* Whether the configuration in force names the directories v. */
static int same_dirs(const struct strv *v, const cr_config *cfg) {
  if (v->n != cfg->host.n_plugin_dirs)
    return 0;
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->v[i], cfg->host.plugin_dirs[i]) != 0)
      return 0;
  return 1;
}

static void job_free(struct rescan_job *j) {
  cr_plugin_host_free(j->old);
  cr_plugin_host_free(j->neu);
  cr_plugin_changes_free(j->ch, j->n_ch);
  strv_free(&j->dirs);
  strv_free(&j->busy);
  cr__free(j);
}

static void apply_changes(cr_daemon *d, struct rescan_job *j) {
  const char *names[64];
  size_t n = 0;
  if (cr_store_begin(d->store) == 0) {
    for (size_t i = 0; i < j->n_ch; i++)
      emit_change(d, &j->ch[i]);
    if (cr_store_commit(d->store) != 0)
      cr_store_rollback(d->store);
  }
  for (size_t i = 0; i < j->n_ch && n < 64; i++)
    if (j->ch[i].kind != CR_PLUGIN_FAILED)
      names[n++] = j->ch[i].name;
  /* the new set and the configuration checked against it go in together;
   * executions and checks keep the set they started with until they end */
  cr__daemon_reload(d, j->reload, j->neu);
  j->neu = NULL;
  if (!j->reload)
    cr__daemon_health_cycle_providers(d, names, n);
  cr__daemon_events_written(d);
}

static void rescan_after(uv_work_t *req, int status) {
  struct rescan_job *j = req->data;
  cr_daemon *d = j->d;
  struct cr__plugwatch *pw = d->plugwatch;
  pw->running = 0;
  if (status != 0 || d->stopping) {
    job_free(j);
    return;
  }
  if (j->rc != 0)
    cr__daemon_logf(d, CR_LOG_ERROR, "plugins: rescan failed: %s",
                    cr_strerror(j->rc));
  else if (j->n_ch > 0 || cr_plugin_host_count(j->neu) > 0 ||
           cr_plugin_host_refused_count(j->neu) > 0)
    cr__daemon_logf(d, CR_LOG_INFO, "plugins: rescan: %zu change(s)", j->n_ch);
  if (j->rc == 0 && j->n_ch > 0)
    apply_changes(d, j);
  else if (j->reload)
    cr__daemon_reload(d, 1, NULL);
  if (!same_dirs(&j->dirs, d->cfg->cfg)) {
    /* the reload changed host.plugin_dirs: scan those, then apply the
     * configuration again against what they hold */
    if (pw->fd >= 0)
      sync_watches(d, pw);
    pw->reload = 1;
    pw->again = 1;
  }
  job_free(j);
  if (pw->again) {
    pw->again = 0;
    start_rescan(d);
  }
}

static void start_rescan(cr_daemon *d) {
  struct cr__plugwatch *pw = d->plugwatch;
  const cr_config *cfg = d->cfg->cfg;
  struct rescan_job *j = cr__calloc(1, sizeof *j);
  int rc = j ? 0 : CR_ENOMEM;
  if (rc == 0) {
    j->req.data = j;
    j->d = d;
    j->old = cr_plugin_host_retain(d->plugins);
    j->pool = d->runner.pool;
    j->reload = pw->reload;
    rc = strv_copy(&j->dirs, (const char *const *)cfg->host.plugin_dirs,
                   cfg->host.n_plugin_dirs);
  }
  if (rc == 0)
    rc = strv_copy(&j->busy, (const char *const *)pw->busy.v, pw->busy.n);
  if (rc == 0)
    rc = uv_queue_work(&d->loop, &j->req, rescan_work, rescan_after) == 0
             ? 0
             : CR_EIO;
  if (rc != 0) {
    cr__daemon_logf(d, CR_LOG_ERROR, "plugins: cannot rescan: %s",
                    cr_strerror(rc));
    if (j != NULL)
      job_free(j);
    return;
  }
  pw->reload = 0;
  pw->running = 1;
}

void cr__daemon_plugins_rescan(cr_daemon *d, int reload) {
  struct cr__plugwatch *pw = d->plugwatch;
  if (d->stopping)
    return;
  if (pw == NULL) { /* not started: a plain reload */
    if (reload)
      cr__daemon_reload(d, 1, NULL);
    return;
  }
  pw->reload |= reload;
  if (pw->running)
    pw->again = 1;
  else
    start_rescan(d);
}

/* ---- Watching (loop) ---- */

static void on_settled(uv_timer_t *t) { cr__daemon_plugins_rescan(t->data, 0); }

#ifdef __linux__
#define WATCH_MASK                                                             \
  (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY |      \
   IN_CREATE | IN_ATTRIB)

static int has_so_suffix(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

/* One event: a file being written becomes busy; a finished, renamed,
 * removed or re-permissioned one is no longer busy, and settles. */
static int on_event(struct cr__plugwatch *pw, const struct inotify_event *e) {
  if (e->len == 0 || !has_so_suffix(e->name))
    return 0;
  const char *dir = NULL;
  for (size_t i = 0; i < pw->dirs.n && dir == NULL; i++)
    if (pw->wd[i] == e->wd)
      dir = pw->dirs.v[i];
  if (dir == NULL)
    return 0;
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, e->name);
  if (e->mask & (IN_MODIFY | IN_CREATE)) {
    strv_add(&pw->busy, path);
    return 0; /* complete when closed, not now */
  }
  strv_remove(&pw->busy, path);
  return 1;
}

static void on_readable(uv_poll_t *p, int status, int events) {
  cr_daemon *d = p->data;
  struct cr__plugwatch *pw = d->plugwatch;
  (void)events;
  if (status < 0)
    return;
  char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
  int settle = 0;
  for (int rounds = 0; rounds < 64; rounds++) {
    ssize_t n = read(pw->fd, buf, sizeof buf);
    if (n <= 0)
      break;
    for (char *c = buf; c < buf + n;) {
      const struct inotify_event *e = (const struct inotify_event *)c;
      if (e->mask & IN_Q_OVERFLOW)
        settle = 1; /* events were lost: a full rescan tells */
      settle |= on_event(pw, e);
      c += sizeof *e + e->len;
    }
  }
  if (settle)
    uv_timer_start(&pw->settle, on_settled, SETTLE_MS, 0);
}

/* Watches the plugin directories of the configuration in force: new ones
 * are added, dropped ones removed (a reload may change host.plugin_dirs).
 * A directory that cannot be watched is logged once. */
static void sync_watches(cr_daemon *d, struct cr__plugwatch *pw) {
  const cr_config *cfg = d->cfg->cfg;
  struct strv dirs = {0};
  int *wd = cr__calloc(cfg->host.n_plugin_dirs + 1, sizeof *wd);
  if (wd == NULL || strv_copy(&dirs, (const char *const *)cfg->host.plugin_dirs,
                              cfg->host.n_plugin_dirs) != 0) {
    cr__free(wd);
    strv_free(&dirs);
    return; /* out of memory: the watches stay as they were */
  }
  for (size_t i = 0; i < dirs.n; i++) {
    int old = strv_find(&pw->dirs, dirs.v[i]);
    wd[i] = old >= 0 ? pw->wd[old]
                     : inotify_add_watch(pw->fd, dirs.v[i], WATCH_MASK);
    if (old < 0 && wd[i] < 0)
      cr__daemon_logf(d, CR_LOG_WARN,
                      "plugins: cannot watch %s (%s): rescans on SIGHUP and "
                      "POST /v1/plugins/rescan only",
                      dirs.v[i], strerror(errno));
  }
  for (size_t i = 0; i < pw->dirs.n; i++)
    if (strv_find(&dirs, pw->dirs.v[i]) < 0 && pw->wd[i] >= 0)
      inotify_rm_watch(pw->fd, pw->wd[i]);
  strv_free(&pw->dirs);
  cr__free(pw->wd);
  pw->dirs = dirs;
  pw->wd = wd;
}

static int watch_dirs(cr_daemon *d, struct cr__plugwatch *pw) {
  pw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (pw->fd < 0)
    return CR_EIO;
  sync_watches(d, pw);
  int rc = uv_poll_init(&d->loop, &pw->poll, pw->fd);
  pw->poll_inited = rc == 0;
  pw->poll.data = d;
  if (rc == 0)
    rc = uv_poll_start(&pw->poll, UV_READABLE, on_readable);
  return rc == 0 ? 0 : CR_EIO;
}
#else
static void sync_watches(cr_daemon *d, struct cr__plugwatch *pw) {
  (void)d;
  (void)pw;
}

static int watch_dirs(cr_daemon *d, struct cr__plugwatch *pw) {
  (void)d;
  (void)pw;
  return CR_ENOTSUP;
}
#endif

int cr__daemon_plugins_start(cr_daemon *d) {
  struct cr__plugwatch *pw = cr__calloc(1, sizeof *pw);
  if (pw == NULL)
    return CR_ENOMEM;
  pw->fd = -1;
  d->plugwatch = pw;
  int rc = uv_timer_init(&d->loop, &pw->settle);
  pw->timer_inited = rc == 0;
  pw->settle.data = d;
  if (rc != 0)
    return CR_EIO;
  rc = watch_dirs(d, pw);
  if (rc == CR_ENOMEM)
    return rc;
  if (rc != 0)
    cr__daemon_logf(d, CR_LOG_WARN,
                    "plugins: not watching the plugin directories (%s): "
                    "rescans on SIGHUP and POST /v1/plugins/rescan only",
                    cr_strerror(rc));
  return 0;
}

static void close_cb(uv_handle_t *h) { (void)h; }

void cr__daemon_plugins_stop(cr_daemon *d) {
  struct cr__plugwatch *pw = d->plugwatch;
  if (pw == NULL)
    return;
  if (pw->poll_inited)
    uv_close((uv_handle_t *)&pw->poll, close_cb);
  if (pw->timer_inited)
    uv_close((uv_handle_t *)&pw->settle, close_cb);
  pw->poll_inited = pw->timer_inited = 0;
}

void cr__daemon_plugins_free(cr_daemon *d) {
  struct cr__plugwatch *pw = d->plugwatch;
  if (pw == NULL)
    return;
  if (pw->fd >= 0)
    close(pw->fd);
  strv_free(&pw->dirs);
  strv_free(&pw->busy);
  cr__free(pw->wd);
  cr__free(pw);
  d->plugwatch = NULL;
}
