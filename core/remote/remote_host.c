/* remote_host.c: the runner host (see remote_host.h): identity, check-ins,
 * long-poll claims on the calling thread, and `slots` run threads. */
#include "remote/remote_host.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "exec/exec_run.h"
#include "exec/execution.h"
#include "plugin/worker_pool.h"
#include "remote/remote_claim.h"
#include "remote/remote_client.h"
#include "remote/remote_identity.h"
#include "remote/remote_port.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

struct job {
  struct job *next;
  struct cr_remote_claim claim;
};

struct cr_remote_host {
  char *server, *reg_token, *name, *worker_exe, *data_dir, *base_yaml, *ca_file;
  char **labels;
  size_t n_labels;
  unsigned slots;
  int insecure;
  const cr_plugin_host *plugins;
  int64_t grace_ms, wait_ms;
  cr_log_fn log;
  void *log_ud;
  int log_min;
  struct cr_remote_identity id;
  cr_remote_client *client; /* the claim thread's */
  cr_worker_pool *pool;
  int64_t checkin_every_ms, next_checkin_ms;
  /* The claim request waiting for an answer: its id is resent until one
   * arrives, so the server answers a retry with the same executions. */
  char claim_id[33];
  atomic_int stopping, stop_runs, abort, revoked;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct job *queue, *tail;
  unsigned busy; /* queued or running */
  int quit;
  pthread_t *threads;
  unsigned n_threads;
};

/* Logs through the host's sink when level is enabled. */
#define hlog(h, level, ...)                                                    \
  do {                                                                         \
    if ((level) >= (h)->log_min)                                               \
      cr__logf((h)->log, (h)->log_ud, (level), __VA_ARGS__);                   \
  } while (0)

static int64_t wall_now(void) { return cr__now_ms(); }

/* ---- JSON of the host --------------------------------------------------- */

static json_t *labels_json(const cr_remote_host *h) {
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < h->n_labels; i++)
    json_array_append_new(a, json_string(h->labels[i]));
  return a;
}

/* The loaded providers that can read: [{"name","version"}] (with_version)
 * or ["name"]. */
static json_t *providers_json(const cr_remote_host *h, int with_version) {
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < cr_plugin_host_count(h->plugins); i++) {
    const struct cr_plugin_descriptor *d =
        cr_plugin_desc(cr_plugin_host_at(h->plugins, i));
    if (!(d->capabilities & CR_PLUGIN_CAP_READ))
      continue;
    json_array_append_new(
        a, with_version ? json_pack("{s:s, s:s}", "name", d->name, "version",
                                    d->version ? d->version : "")
                        : json_string(d->name));
  }
  return a;
}

/* ---- Calls of the claim thread ------------------------------------------ */

/* Logs the first failed attempt of a call and every tenth after it. */
static void on_retry(void *ud, int attempt, int64_t delay_ms, const char *why) {
  cr_remote_host *h = ud;
  if (attempt == 1 || attempt % 10 == 0)
    hlog(h, CR_LOG_WARN,
         "server unreachable (%s): retrying in %" PRId64 " ms (attempt %d)",
         why, delay_ms, attempt);
}

/* POST path body (consumed) with retries until an answer or a stop. */
static int call(cr_remote_host *h, const char *path, json_t *body,
                int64_t timeout_ms, struct cr_remote_answer *ans) {
  if (body == NULL)
    return CR_ENOMEM;
  struct cr_remote_retry r = {.stop = &h->stopping,
                              .timeout_ms = timeout_ms,
                              .on_retry = on_retry,
                              .on_retry_ud = h};
  char err[512] = "";
  int rc = cr_remote_call_retry(h->client, &r, "POST", path, body, ans, err,
                                sizeof err);
  json_decref(body);
  if (rc == CR_EPERM)
    atomic_store(&h->revoked, 1);
  if (rc != 0 && rc != CR_ECANCELED)
    hlog(h, rc == CR_EPERM ? CR_LOG_ERROR : CR_LOG_WARN, "%s: %s", path,
         err[0] ? err : cr_strerror(rc));
  return rc;
}

static int register_runner(cr_remote_host *h) {
  if (h->reg_token == NULL) {
    hlog(h, CR_LOG_ERROR,
         "no runner identity in %s/runner.json and no registration token",
         h->data_dir);
    return CR_EINVAL;
  }
  cr_remote_identity_clear(&h->id);
  cr_remote_client_set_token(h->client, NULL);
  json_t *body = json_pack("{s:s, s:s, s:o, s:s}", "registration_token",
                           h->reg_token, "name", h->name, "labels",
                           labels_json(h), "version", CR_VERSION);
  struct cr_remote_answer a = {0};
  int rc = call(h, "/v1/runners/register", body, 0, &a);
  const char *rid = json_string_value(json_object_get(a.body, "runner_id"));
  const char *tok = json_string_value(json_object_get(a.body, "token"));
  if (rc == 0 && (rid == NULL || tok == NULL)) {
    hlog(h, CR_LOG_ERROR, "registration: the answer has no runner_id/token");
    rc = CR_EINVAL;
  }
  if (rc == 0) {
    h->id.server = cr__strdup(h->server);
    h->id.runner_id = cr__strdup(rid);
    h->id.token = cr__strdup(tok);
    rc = h->id.server && h->id.runner_id && h->id.token ? 0 : CR_ENOMEM;
  }
  cr_remote_answer_clear(&a);
  char err[512] = "";
  if (rc == 0 &&
      (rc = cr_remote_identity_save(h->data_dir, &h->id, err, sizeof err)) != 0)
    hlog(h, CR_LOG_ERROR, "%s", err[0] ? err : cr_strerror(rc));
  if (rc == 0)
    rc = cr_remote_client_set_token(h->client, h->id.token);
  if (rc == 0)
    hlog(h, CR_LOG_INFO, "registered as runner %s", h->id.runner_id);
  return rc;
}

/* Loads the saved identity; *saved is 1 when one was used. */
static int load_identity(cr_remote_host *h, int *saved) {
  char err[512] = "";
  *saved = 0;
  int rc = cr_remote_identity_load(h->data_dir, &h->id, err, sizeof err);
  if (rc == 0 && strcmp(h->id.server, h->server) != 0) {
    hlog(h, CR_LOG_WARN, "runner.json is for server %s: registering with %s",
         h->id.server, h->server);
    rc = CR_ENOENT;
  }
  if (rc == CR_ENOENT)
    return register_runner(h);
  if (rc != 0) {
    hlog(h, CR_LOG_ERROR, "%s", err[0] ? err : cr_strerror(rc));
    return rc;
  }
  *saved = 1;
  return cr_remote_client_set_token(h->client, h->id.token);
}

static unsigned free_slots(cr_remote_host *h) {
  pthread_mutex_lock(&h->mu);
  unsigned f = h->slots - h->busy;
  pthread_mutex_unlock(&h->mu);
  return f;
}

static void path_of(const cr_remote_host *h, const char *what, char *buf,
                    size_t len) {
  snprintf(buf, len, "/v1/runners/%s/%s", h->id.runner_id, what);
}

static int checkin(cr_remote_host *h) {
  char path[300];
  path_of(h, "checkin", path, sizeof path);
  json_t *body = json_pack("{s:s, s:s, s:o, s:o, s:i, s:i}", "name", h->name,
                           "version", CR_VERSION, "labels", labels_json(h),
                           "providers", providers_json(h, 1), "slots",
                           (int)h->slots, "slots_free", (int)free_slots(h));
  struct cr_remote_answer a = {0};
  int rc = call(h, path, body, 0, &a);
  if (rc == 0) {
    json_int_t off =
        json_integer_value(json_object_get(a.body, "offline_after_ms"));
    h->checkin_every_ms = off >= 3000 ? off / 3 : CR_REMOTE_HOST_CHECKIN_MS;
    h->next_checkin_ms = wall_now() + h->checkin_every_ms;
  }
  cr_remote_answer_clear(&a);
  return rc;
}

/* ---- Claims ------------------------------------------------------------- */

static void enqueue(cr_remote_host *h, struct job *j) {
  pthread_mutex_lock(&h->mu);
  if (h->tail != NULL)
    h->tail->next = j;
  else
    h->queue = j;
  h->tail = j;
  h->busy++;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

static void take_claims(cr_remote_host *h, const json_t *claims) {
  size_t i;
  const json_t *c;
  int64_t now = wall_now();
  json_array_foreach(claims, i, c) {
    struct job *j = cr__calloc(1, sizeof *j);
    char err[256] = "";
    int rc = j ? cr_remote_claim_parse(c, now, &j->claim, err, sizeof err)
               : CR_ENOMEM;
    if (rc != 0) { /* its lease expires and it comes back */
      hlog(h, CR_LOG_ERROR, "a claim is unusable: %s",
           err[0] ? err : cr_strerror(rc));
      cr__free(j);
      continue;
    }
    hlog(h, CR_LOG_INFO,
         "claimed execution %" PRId64 " of work %s (attempt %d)",
         j->claim.execution_id, j->claim.work_id, j->claim.attempt);
    enqueue(h, j);
  }
}

/* A new claim request id (hex), unless one still waits for its answer. */
static void claim_id(cr_remote_host *h) {
  unsigned char b[16];
  if (h->claim_id[0] != '\0')
    return;
  if (RAND_bytes(b, sizeof b) != 1) /* no id: a lost answer costs a lease */
    return;
  for (size_t i = 0; i < sizeof b; i++)
    snprintf(h->claim_id + 2 * i, 3, "%02x", b[i]);
}

static int claim(cr_remote_host *h, unsigned n) {
  char path[300];
  path_of(h, "claims", path, sizeof path);
  claim_id(h);
  json_t *body = json_pack("{s:o, s:i, s:I}", "providers", providers_json(h, 0),
                           "slots", (int)n, "wait_ms", (json_int_t)h->wait_ms);
  if (body != NULL && h->claim_id[0] != '\0')
    json_object_set_new(body, "claim_id", json_string(h->claim_id));
  struct cr_remote_answer a = {0};
  int rc = call(h, path, body, h->wait_ms + 30000, &a);
  if (rc == 0) {
    h->claim_id[0] = '\0'; /* answered: the next request is a new one */
    h->next_checkin_ms = wall_now() + h->checkin_every_ms;
    take_claims(h, json_object_get(a.body, "claims"));
  }
  cr_remote_answer_clear(&a);
  return rc;
}

/* Waits until a slot frees, a stop, or until (ms), in short slices. */
static void wait_slot(cr_remote_host *h, int64_t until) {
  pthread_mutex_lock(&h->mu);
  while (h->busy >= h->slots && !atomic_load(&h->stopping) &&
         !atomic_load(&h->revoked) && wall_now() < until) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&h->cv, &h->mu, &ts);
  }
  pthread_mutex_unlock(&h->mu);
}

/* Sleeps ms unless stopped. */
static void pause_ms(cr_remote_host *h, int64_t ms) {
  for (int64_t end = wall_now() + ms;
       wall_now() < end && !atomic_load(&h->stopping);)
    cr__sleep_ms(100);
}

static int active(cr_remote_host *h) {
  return !atomic_load(&h->stopping) && !atomic_load(&h->revoked);
}

static void claim_loop(cr_remote_host *h) {
  while (active(h)) {
    unsigned n = free_slots(h);
    int rc = 0;
    if (n == 0 && wall_now() >= h->next_checkin_ms)
      rc = checkin(h);
    else if (n == 0)
      wait_slot(h, h->next_checkin_ms);
    else
      rc = claim(h, n);
    if (rc != 0 && rc != CR_ECANCELED && rc != CR_EPERM)
      pause_ms(h, 5000); /* refused as invalid: do not spin */
  }
}

/* ---- Run threads -------------------------------------------------------- */

static struct job *next_job(cr_remote_host *h) {
  pthread_mutex_lock(&h->mu);
  while (h->queue == NULL && !h->quit)
    pthread_cond_wait(&h->cv, &h->mu);
  struct job *j = h->queue;
  if (j != NULL && (h->queue = j->next) == NULL)
    h->tail = NULL;
  pthread_mutex_unlock(&h->mu);
  return j;
}

static void job_done(cr_remote_host *h, struct job *j) {
  cr_remote_claim_clear(&j->claim);
  cr__free(j);
  pthread_mutex_lock(&h->mu);
  h->busy--;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
}

/* The claim cannot run here (its configuration does not load, or lacks the
 * work): the execution fails with class config and the reason. */
static void fail_claim(cr_remote_host *h, cr_remote_port *p,
                       const struct cr_remote_claim *c, const char *why) {
  struct cr_exec_final f = {.execution_id = c->execution_id,
                            .epoch = c->epoch,
                            .work_id = c->work_id,
                            .attempt = c->attempt,
                            .needs_executing = 1};
  const struct cr_exec_port *ops = cr_remote_port_ops(p);
  int rc =
      ops->failed(ops->ud, &f, cr_exec_class_name(CR_EXEC_CLASS_CONFIG), why);
  hlog(h, CR_LOG_ERROR, "execution %" PRId64 " of work %s failed: %s%s%s",
       c->execution_id, c->work_id, why, rc ? "; not reported: " : "",
       rc ? cr_strerror(rc) : "");
}

static void run_claim(cr_remote_host *h, const struct cr_remote_claim *c,
                      cr_config *cfg, cr_remote_port *p) {
  struct cr_exec_env env = {.cfg = cfg,
                            .plugins = h->plugins,
                            .pool = h->pool,
                            .port = cr_remote_port_ops(p),
                            .log = h->log,
                            .log_ud = h->log_ud,
                            .log_min_level = h->log_min,
                            .stop = &h->stop_runs,
                            .lease_ms = c->lease_ms};
  struct cr_exec_claim ec = {.execution_id = c->execution_id,
                             .work_id = c->work_id,
                             .attempt = c->attempt,
                             .epoch = c->epoch,
                             .lease_expires_at = c->lease_expires_at};
  struct cr_exec_outcome out;
  int rc = cr_exec_run(&env, &ec, &out);
  if (rc == 0 && !cr_remote_port_lost(p))
    rc = cr_remote_port_flush(p); /* logs after the last report */
  if (rc != 0)
    hlog(h, CR_LOG_ERROR, "execution %" PRId64 " of work %s: %s",
         c->execution_id, c->work_id, cr_strerror(rc));
}

static void run_job(cr_remote_host *h, cr_remote_client *cl, struct job *j) {
  const struct cr_remote_claim *c = &j->claim;
  char why[512] = "";
  cr_config *cfg = NULL;
  char *cred = NULL;
  cr_remote_port *p = NULL;
  int rc = cr_remote_claim_config(c, h->base_yaml, &cfg, why, sizeof why);
  int unrunnable = rc == CR_ECONFIG; /* the work's fault, not the host's */
  if (rc == 0 &&
      (rc = cr_remote_claim_credentials(c, cfg, &cred)) == CR_ENOENT) {
    unrunnable = 1;
    snprintf(why, sizeof why, "work %s is not in the claim's configuration",
             c->work_id);
  }
  struct cr_remote_port_opts po = {.client = cl,
                                   .runner_id = h->id.runner_id,
                                   .claim = c,
                                   .credentials = cred,
                                   .abort = &h->abort,
                                   .revoked = &h->revoked,
                                   .log = h->log,
                                   .log_ud = h->log_ud};
  int prc = cl ? cr_remote_port_new(&po, &p) : CR_EHTTP;
  if (prc != 0)
    hlog(h, CR_LOG_ERROR, "execution %" PRId64 ": cannot report: %s",
         c->execution_id, cr_strerror(prc));
  else if (unrunnable)
    fail_claim(h, p, c, why);
  else if (rc != 0) /* the lease expires: a new attempt */
    hlog(h, CR_LOG_ERROR, "execution %" PRId64 ": %s", c->execution_id,
         why[0] ? why : cr_strerror(rc));
  else
    run_claim(h, c, cfg, p);
  cr_remote_port_free(p);
  if (cred != NULL)
    cr__secret_wipe_free(cred, strlen(cred));
  cr_config_free(cfg);
}

static cr_remote_client *new_client(cr_remote_host *h,
                                    const atomic_int *cancel) {
  struct cr_remote_client_opts o = {.server = h->server,
                                    .token = h->id.token,
                                    .ca_file = h->ca_file,
                                    .insecure = h->insecure,
                                    .cancel = cancel};
  cr_remote_client *c = NULL;
  return cr_remote_client_new(&o, &c) == 0 ? c : NULL;
}

static void *thread_main(void *arg) {
  cr_remote_host *h = arg;
  cr_remote_client *cl = new_client(h, &h->abort);
  for (struct job *j; (j = next_job(h)) != NULL;) {
    run_job(h, cl, j);
    job_done(h, j);
  }
  cr_remote_client_free(cl);
  return NULL;
}

/* ---- Start and stop ----------------------------------------------------- */

/* Creates dir and its missing parents (0700). */
static int make_dirs(const char *dir) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
    return CR_EINVAL;
  for (char *s = tmp + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
      return CR_EIO;
    *s = '/';
  }
  return mkdir(tmp, 0700) == 0 || errno == EEXIST ? 0 : CR_EIO;
}

/* DATA_DIR/runner-base.yaml: the host keys of every claim's configuration.
 */
static int write_base(cr_remote_host *h) {
  json_t *dir = json_string(h->data_dir);
  char *q = dir ? json_dumps(dir, JSON_ENCODE_ANY) : NULL;
  json_decref(dir);
  FILE *f = q ? fopen(h->base_yaml, "w") : NULL;
  int rc = q == NULL ? CR_ENOMEM : f == NULL ? CR_EIO : 0;
  if (f != NULL) {
    fprintf(f,
            "# Written by `connrun runner` at each start: the host keys the\n"
            "# configurations of claimed executions are loaded with.\n"
            "host:\n  data_dir: %s\n",
            q);
    rc = fclose(f) == 0 ? rc : CR_EIO;
  }
  free(q);
  return rc;
}

static int prepare(cr_remote_host *h) {
  if (make_dirs(h->data_dir) != 0 || write_base(h) != 0) {
    hlog(h, CR_LOG_ERROR, "cannot write the data directory %s: %s", h->data_dir,
         strerror(errno));
    return CR_EIO;
  }
  json_t *p = providers_json(h, 0);
  size_t n = json_array_size(p);
  json_decref(p);
  if (n == 0) {
    hlog(h, CR_LOG_ERROR, "no loaded plugin can read: nothing to run");
    return CR_EINVAL;
  }
  if ((h->client = new_client(h, &h->stopping)) == NULL)
    return CR_ENOMEM;
  if (h->worker_exe == NULL)
    return 0;
  struct cr_worker_pool_opts po = {.exe = h->worker_exe, .max_idle = h->slots};
  return cr_worker_pool_new(&po, &h->pool);
}

/* Identity, then the first check-in (registering again after a 401 when a
 * registration token was given). */
static int sign_in(cr_remote_host *h) {
  int saved = 0;
  int rc = load_identity(h, &saved);
  if (rc == 0)
    rc = checkin(h);
  if (rc == CR_EPERM && saved && h->reg_token != NULL) {
    hlog(h, CR_LOG_WARN, "the server refused runner %s: registering again",
         h->id.runner_id);
    atomic_store(&h->revoked, 0);
    rc = register_runner(h);
    if (rc == 0)
      rc = checkin(h);
  }
  return rc;
}

static int start_threads(cr_remote_host *h) {
  if ((h->threads = cr__calloc(h->slots, sizeof *h->threads)) == NULL)
    return CR_ENOMEM;
  for (; h->n_threads < h->slots; h->n_threads++)
    if (pthread_create(&h->threads[h->n_threads], NULL, thread_main, h) != 0)
      return CR_EIO;
  return 0;
}

/* Waits up to ms for every claimed execution to end. Returns what runs. */
static unsigned wait_idle(cr_remote_host *h, int64_t ms) {
  int64_t end = wall_now() + ms;
  unsigned busy;
  while ((busy = h->slots - free_slots(h)) > 0 && wall_now() < end)
    cr__sleep_ms(50);
  return busy;
}

static void stop_threads(cr_remote_host *h) {
  if (atomic_load(&h->revoked))
    atomic_store(&h->stop_runs, 1);
  unsigned busy = h->n_threads ? wait_idle(h, h->grace_ms) : 0;
  if (busy > 0) {
    hlog(h, CR_LOG_WARN,
         "grace period over: stopping %u execution(s); they will be retried",
         busy);
    atomic_store(&h->stop_runs, 1);
    if (wait_idle(h, CR_REMOTE_HOST_FINAL_MS) > 0) {
      hlog(h, CR_LOG_WARN, "giving up on the reports of stopped executions");
      atomic_store(&h->abort, 1);
    }
  }
  pthread_mutex_lock(&h->mu);
  h->quit = 1;
  pthread_cond_broadcast(&h->cv);
  pthread_mutex_unlock(&h->mu);
  for (unsigned i = 0; i < h->n_threads; i++)
    pthread_join(h->threads[i], NULL);
  h->n_threads = 0;
}

int cr_remote_host_run(cr_remote_host *h) {
  if (h == NULL)
    return CR_EINVAL;
  int rc = prepare(h);
  if (rc == 0)
    rc = sign_in(h);
  if (rc == 0)
    rc = start_threads(h);
  if (rc == 0) {
    hlog(h, CR_LOG_INFO, "runner %s serving %s with %u slot(s)",
         h->id.runner_id, h->server, h->slots);
    claim_loop(h);
  }
  stop_threads(h);
  if (rc == CR_ECANCELED) /* stopped while signing in */
    rc = 0;
  if ((rc == 0 || rc == CR_EPERM) && atomic_load(&h->revoked)) {
    hlog(h, CR_LOG_ERROR,
         "the server refused runner %s (revoked or unknown): stopping%s",
         h->id.runner_id ? h->id.runner_id : "-",
         h->reg_token ? "" : "; give a registration token to register again");
    rc = CR_EPERM;
  }
  return rc;
}

void cr_remote_host_stop(cr_remote_host *h) {
  if (h != NULL)
    atomic_store(&h->stopping, 1);
}

const char *cr_remote_host_runner_id(const cr_remote_host *h) {
  return h ? h->id.runner_id : NULL;
}

/* ---- Lifecycle ---------------------------------------------------------- */

static char *dup_or_null(const char *s, int *nomem) {
  char *d = s ? cr__strdup(s) : NULL;
  *nomem |= s != NULL && d == NULL;
  return d;
}

static int copy_labels(cr_remote_host *h, const struct cr_remote_host_opts *o) {
  if (o->n_labels == 0)
    return 0;
  if ((h->labels = cr__calloc(o->n_labels, sizeof *h->labels)) == NULL)
    return CR_ENOMEM;
  int nomem = 0;
  for (; h->n_labels < o->n_labels; h->n_labels++)
    h->labels[h->n_labels] = dup_or_null(o->labels[h->n_labels], &nomem);
  return nomem ? CR_ENOMEM : 0;
}

static int copy_opts(cr_remote_host *h, const struct cr_remote_host_opts *o) {
  char host[256] = "connrun-runner";
  if (o->name == NULL && gethostname(host, sizeof host - 1) != 0)
    snprintf(host, sizeof host, "connrun-runner");
  int nomem = 0;
  h->server = dup_or_null(o->server, &nomem);
  h->reg_token = dup_or_null(o->registration_token, &nomem);
  h->name = dup_or_null(o->name ? o->name : host, &nomem);
  h->worker_exe = dup_or_null(o->worker_exe, &nomem);
  h->data_dir = dup_or_null(o->data_dir, &nomem);
  h->ca_file = dup_or_null(o->ca_file, &nomem);
  size_t n = strlen(o->data_dir) + sizeof "/runner-base.yaml";
  if ((h->base_yaml = cr__malloc(n)) != NULL)
    snprintf(h->base_yaml, n, "%s/runner-base.yaml", o->data_dir);
  nomem |= h->base_yaml == NULL;
  return nomem ? CR_ENOMEM : copy_labels(h, o);
}

int cr_remote_host_new(const struct cr_remote_host_opts *o,
                       cr_remote_host **out) {
  if (o == NULL || out == NULL || o->server == NULL || o->data_dir == NULL ||
      o->data_dir[0] != '/' || o->plugins == NULL ||
      o->slots > CR_REMOTE_HOST_MAX_SLOTS)
    return CR_EINVAL;
  *out = NULL;
  cr__alloc_tune_process();
  cr_remote_host *h = cr__calloc(1, sizeof *h);
  if (h == NULL)
    return CR_ENOMEM;
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  int rc = copy_opts(h, o);
  if (rc != 0) {
    cr_remote_host_free(h);
    return rc;
  }
  h->slots = o->slots ? o->slots : 4;
  h->insecure = o->insecure;
  h->plugins = o->plugins;
  h->grace_ms = o->grace_ms > 0 ? o->grace_ms : CR_REMOTE_HOST_GRACE_MS;
  h->wait_ms = o->wait_ms > 0 ? o->wait_ms : CR_REMOTE_HOST_WAIT_MS;
  h->log = o->log;
  h->log_ud = o->log_ud;
  h->log_min = o->log_min_level;
  h->checkin_every_ms = CR_REMOTE_HOST_CHECKIN_MS;
  *out = h;
  return 0;
}

void cr_remote_host_free(cr_remote_host *h) {
  if (h == NULL)
    return;
  for (struct job *j = h->queue; j != NULL;) {
    struct job *next = j->next;
    cr_remote_claim_clear(&j->claim);
    cr__free(j);
    j = next;
  }
  cr_remote_client_free(h->client);
  cr_worker_pool_free(h->pool);
  cr_remote_identity_clear(&h->id);
  for (size_t i = 0; i < h->n_labels; i++)
    cr__free(h->labels[i]);
  cr__free(h->labels);
  cr__free(h->threads);
  if (h->reg_token != NULL)
    cr__secret_wipe_free(h->reg_token, strlen(h->reg_token));
  cr__free(h->server);
  cr__free(h->name);
  cr__free(h->worker_exe);
  cr__free(h->data_dir);
  cr__free(h->base_yaml);
  cr__free(h->ca_file);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  cr__free(h);
}
