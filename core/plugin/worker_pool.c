/* worker_pool.c: the pool of reusable `connrun worker` processes (spawn
 * with posix_spawn from a pool-owned thread, HELLO handshake, idle list,
 * retirement) and the job driver (JOB/CANCEL/BYE out, streamed messages in,
 * deadline, RSS limit, death classification, reaping by pid). */
/* pipe2 and posix_spawn_file_actions_addclosefrom_np are GNU extensions. */
#define _GNU_SOURCE 1

#include "plugin/worker_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

extern char **environ;

/* Most bytes of worker output read at once (the pipe is enlarged to it). */
#define READ_CHUNK (1024u * 1024u)
#define HELLO_TIMEOUT_MS 10000
#define BYE_WAIT_MS 1000
#define EOF_WAIT_MS 2000
#define RSS_SAMPLE_MS 25
#define DEFAULT_MAX_USES 1000u
#define DEFAULT_MAX_IDLE 8u

struct cr_worker {
  cr_worker_pool *pool;
  cr_worker *prev, *next; /* in the pool's idle or busy list */
  pid_t pid;
  int to_fd, from_fd; /* parent ends, O_CLOEXEC; -1 once closed */
  int alive;          /* not reaped yet */
  int in_job;         /* JOB sent, RESULT not seen */
  int term;           /* sticky code once the worker is gone */
  unsigned uses;
  unsigned gen;     /* the pool's generation when it was handed out */
  int64_t deadline; /* monotonic ms; 0 = none */
  uint64_t timeout_ms, limit_mb;
  uint64_t peak_kb; /* largest RSS seen (samples and wait4) */
  int64_t next_sample;
  cr_wire_decoder dec;
  cr_wire_buf out;
  char reason[256];
};

/* One posix_spawn call handed to the spawner thread. */
struct spawn_req {
  const posix_spawn_file_actions_t *fa;
  const posix_spawnattr_t *attr;
  pid_t pid;
  int err; /* errno from posix_spawn */
  int done;
  struct spawn_req *next;
};

struct cr_worker_pool {
  pthread_mutex_t mu;
  pthread_cond_t sp_cv;   /* a request was queued / stop */
  pthread_cond_t done_cv; /* a request was served */
  pthread_t spawner;
  struct spawn_req *sp_head, *sp_tail;
  int sp_stop;
  char *exe;
  unsigned max_uses, max_idle;
  cr_worker *idle, *busy;
  unsigned n_idle;
  unsigned gen; /* bumped by cr_worker_pool_retire_idle */
  struct cr_worker_pool_stats st;
};

/* ---- small helpers ------------------------------------------------------ */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

static void set_err(char *errbuf, size_t errlen, const char *fmt,
                    const char *a) {
  if (errbuf && errlen)
    snprintf(errbuf, errlen, fmt, a);
}

static const char *sig_name(int sig) {
  static const struct {
    int sig;
    const char *name;
  } t[] = {{SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
           {SIGILL, "SIGILL"},   {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
           {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
           {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
           {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
           {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (t[i].sig == sig)
      return t[i].name;
  return NULL;
}

/* Writes len bytes to fd with SIGPIPE blocked in this thread; a SIGPIPE
 * raised by the write is consumed. EPIPE and other errors give CR_EIO. */
static int write_safe(int fd, const uint8_t *data, size_t len) {
  sigset_t pipe_set, old, pend;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pend);
  int had = sigismember(&pend, SIGPIPE);
  int rc = 0;
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n < 0 && errno == EPIPE && !had) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
      }
      rc = CR_EIO;
      break;
    }
    off += (size_t)n;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* Encodes a field-less message (CANCEL, BYE) or a JOB and writes it. */
static int send_msg(cr_worker *w, const struct cr_wire_msg *m) {
  if (w->to_fd < 0)
    return CR_EIO;
  cr_wire_buf_reset(&w->out);
  int rc = cr_wire_encode(&w->out, m);
  if (rc < 0)
    return rc;
  return write_safe(w->to_fd, w->out.data, w->out.len);
}

static void close_fds(cr_worker *w) {
  if (w->to_fd >= 0)
    close(w->to_fd);
  if (w->from_fd >= 0)
    close(w->from_fd);
  w->to_fd = w->from_fd = -1;
}

/* Reads the worker's resident set in KiB (0 when unreadable). */
static uint64_t sample_rss_kb(pid_t pid) {
  char path[64], buf[128];
  snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  unsigned long long size = 0, res = 0;
  if (sscanf(buf, "%llu %llu", &size, &res) != 2)
    return 0;
  long page = sysconf(_SC_PAGESIZE);
  return (uint64_t)res * (uint64_t)(page > 0 ? page : 4096) / 1024u;
}

/* Records a reaped status: peak RSS from rusage, fds closed, not alive. */
static void reaped(cr_worker *w, const struct rusage *ru) {
  if (ru && (uint64_t)ru->ru_maxrss > w->peak_kb)
    w->peak_kb = (uint64_t)ru->ru_maxrss;
  w->alive = 0;
  close_fds(w);
}

/* Blocking wait4 on the worker's own pid. Returns the status. */
static int reap_wait(cr_worker *w) {
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(w->pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  reaped(w, &ru);
  return status;
}

/* Non-blocking wait4: 1 and *status when the worker has exited. */
static int reap_try(cr_worker *w, int *status) {
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  pid_t r = wait4(w->pid, status, WNOHANG, &ru);
  if (r != w->pid)
    return 0;
  reaped(w, &ru);
  return 1;
}

/* SIGKILLs (if alive) and reaps; records term and reason. */
static int kill_with(cr_worker *w, int term, const char *reason) {
  if (w->alive) {
    kill(w->pid, SIGKILL);
    reap_wait(w);
  }
  w->term = term;
  w->in_job = 0;
  if (reason)
    snprintf(w->reason, sizeof w->reason, "%s", reason);
  return term;
}

/* Waits up to ms for the worker to exit on its own, then SIGKILLs it.
 * Returns the wait status. */
static int reap_within(cr_worker *w, long ms) {
  int status = 0;
  int64_t end = mono_ms() + ms;
  while (mono_ms() < end) {
    if (reap_try(w, &status))
      return status;
    sleep_ms(1);
  }
  kill(w->pid, SIGKILL);
  return reap_wait(w);
}

static void limit_reason(cr_worker *w) {
  snprintf(w->reason, sizeof w->reason, "memory limit %llu MiB exceeded",
           (unsigned long long)w->limit_mb);
}

/* The worker closed its pipe or broke it: reap it and classify the end. */
static int died(cr_worker *w) {
  int status = reap_within(w, EOF_WAIT_MS);
  int abnormal =
      WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
  int in_job = w->in_job;
  w->in_job = 0;
  if (abnormal && w->limit_mb && w->peak_kb * 2 >= w->limit_mb * 1024u) {
    limit_reason(w);
    return w->term = CR_ELIMIT;
  }
  if (WIFSIGNALED(status)) {
    const char *n = sig_name(WTERMSIG(status));
    if (n)
      snprintf(w->reason, sizeof w->reason, "killed by %s", n);
    else
      snprintf(w->reason, sizeof w->reason, "killed by signal %d",
               WTERMSIG(status));
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    snprintf(w->reason, sizeof w->reason, "exited with status 0%s",
             in_job ? " during the job" : "");
  } else {
    snprintf(w->reason, sizeof w->reason, "exited with status %d",
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  return w->term = CR_EIO;
}

static int protocol_error(cr_worker *w, const char *detail) {
  char r[sizeof w->reason];
  snprintf(r, sizeof r, "protocol error: %s", detail);
  return kill_with(w, CR_EIO, r);
}

/* Reads once from the worker into the decoder. 1 data, CR_* when the
 * worker is gone (already classified). */
static int read_some(cr_worker *w) {
  size_t n;
  int rc = cr_wire_fill(w->from_fd, &w->dec, READ_CHUNK, &n);
  if (rc == CR_EBUSY)
    return 1;
  if (rc == CR_ENOMEM)
    return kill_with(w, CR_ENOMEM, "out of memory buffering worker output");
  if (rc < 0 || n == 0)
    return died(w);
  return 1;
}

/* ---- spawning ----------------------------------------------------------- */

static void *spawner_main(void *arg) {
  cr_worker_pool *p = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  char *argv[] = {p->exe, "worker", NULL};
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->sp_head && !p->sp_stop)
      pthread_cond_wait(&p->sp_cv, &p->mu);
    if (!p->sp_head)
      break;
    struct spawn_req *r = p->sp_head;
    p->sp_head = r->next;
    if (!p->sp_head)
      p->sp_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    r->err = posix_spawn(&r->pid, p->exe, r->fa, r->attr, argv, environ);
    pthread_mutex_lock(&p->mu);
    r->done = 1;
    pthread_cond_broadcast(&p->done_cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Runs posix_spawn on the spawner thread (so the child's parent is a
 * thread that lives as long as the pool). Returns the posix_spawn error. */
static int spawn_on_thread(cr_worker_pool *p, struct spawn_req *r) {
  pthread_mutex_lock(&p->mu);
  if (p->sp_tail)
    p->sp_tail->next = r;
  else
    p->sp_head = r;
  p->sp_tail = r;
  pthread_cond_signal(&p->sp_cv);
  while (!r->done)
    pthread_cond_wait(&p->done_cv, &p->mu);
  pthread_mutex_unlock(&p->mu);
  return r->err;
}

static int setup_attr(posix_spawnattr_t *attr) {
  sigset_t empty, def;
  sigemptyset(&empty);
  sigemptyset(&def);
  int sigs[] = {SIGPIPE, SIGCHLD, SIGINT,  SIGTERM,
                SIGHUP,  SIGQUIT, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaddset(&def, sigs[i]);
  if (posix_spawnattr_setflags(attr,
                               POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    return -1;
  if (posix_spawnattr_setsigmask(attr, &empty) ||
      posix_spawnattr_setsigdefault(attr, &def))
    return -1;
  return 0;
}

static int setup_actions(posix_spawn_file_actions_t *fa, int cin, int cout) {
  if (posix_spawn_file_actions_adddup2(fa, cin, 3) ||
      posix_spawn_file_actions_adddup2(fa, cout, 4) ||
      posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0) ||
      posix_spawn_file_actions_adddup2(fa, 2, 1) ||
      posix_spawn_file_actions_addclosefrom_np(fa, 5))
    return -1;
  return 0;
}

/* Moves fd to a number >= 5 (so dup2 to 3/4 never collides), CLOEXEC. */
static int move_high(int fd) {
  int h = fcntl(fd, F_DUPFD_CLOEXEC, 5);
  close(fd);
  return h;
}

/* Starts the process; on success w->pid and the parent fds are set. */
static int start_process(cr_worker_pool *p, cr_worker *w, char *errbuf,
                         size_t errlen) {
  int p2w[2] = {-1, -1}, w2p[2] = {-1, -1}, rc = CR_EIO;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int fa_ok = 0, attr_ok = 0;
  if (pipe2(p2w, O_CLOEXEC) < 0 || pipe2(w2p, O_CLOEXEC) < 0) {
    set_err(errbuf, errlen, "worker pipe: %s", strerror(errno));
    goto fail;
  }
  /* A deep pipe: the worker streams a page of records without waiting for
   * the parent at every 64 KiB (best effort, capped by pipe-max-size). */
  (void)fcntl(w2p[0], F_SETPIPE_SZ, (int)READ_CHUNK);
  p2w[0] = move_high(p2w[0]);
  w2p[1] = move_high(w2p[1]);
  if (p2w[0] < 0 || w2p[1] < 0) {
    set_err(errbuf, errlen, "worker pipe: %s", strerror(errno));
    goto fail;
  }
  fa_ok = posix_spawn_file_actions_init(&fa) == 0;
  attr_ok = posix_spawnattr_init(&attr) == 0;
  if (!fa_ok || !attr_ok || setup_actions(&fa, p2w[0], w2p[1]) < 0 ||
      setup_attr(&attr) < 0) {
    set_err(errbuf, errlen, "%s", "worker spawn setup failed");
    rc = CR_ENOMEM;
    goto fail;
  }
  struct spawn_req r = {&fa, &attr, 0, 0, 0, NULL};
  int err = spawn_on_thread(p, &r);
  if (err) {
    if (errbuf && errlen)
      snprintf(errbuf, errlen, "cannot start worker %s: %s", p->exe,
               strerror(err));
    goto fail;
  }
  w->pid = r.pid;
  w->alive = 1;
  w->to_fd = p2w[1];
  w->from_fd = w2p[0];
  p2w[1] = w2p[0] = -1;
  rc = 0;
fail:
  if (fa_ok)
    posix_spawn_file_actions_destroy(&fa);
  if (attr_ok)
    posix_spawnattr_destroy(&attr);
  for (int i = 0; i < 2; i++) {
    if (p2w[i] >= 0)
      close(p2w[i]);
    if (w2p[i] >= 0)
      close(w2p[i]);
  }
  return rc;
}

/* Waits for HELLO; on failure the worker is killed and reaped. */
static int await_hello(cr_worker *w, char *errbuf, size_t errlen) {
  int64_t end = mono_ms() + HELLO_TIMEOUT_MS;
  struct cr_wire_msg m;
  for (;;) {
    int rc = cr_wire_next(&w->dec, &m);
    if (rc < 0) {
      protocol_error(w, cr_wire_decoder_error(&w->dec));
      break;
    }
    if (rc == 1) {
      if (m.type == CR_WIRE_HELLO && m.u.hello.version == CR_WIRE_VERSION &&
          m.u.hello.pid == w->pid)
        return 0;
      protocol_error(w,
                     m.type == CR_WIRE_HELLO ? "bad HELLO" : "expected HELLO");
      break;
    }
    int64_t left = end - mono_ms();
    if (left <= 0) {
      kill_with(w, CR_EIO, "no HELLO within 10 s");
      break;
    }
    struct pollfd pfd = {w->from_fd, POLLIN, 0};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno != EINTR) {
      kill_with(w, CR_EIO, "poll failed");
      break;
    }
    if (pr > 0 && read_some(w) < 0)
      break;
  }
  set_err(errbuf, errlen, "worker did not start: %s", w->reason);
  return w->term == CR_ENOMEM ? CR_ENOMEM : CR_EIO;
}

static void worker_free(cr_worker *w) {
  if (!w)
    return;
  if (w->alive)
    kill_with(w, CR_EIO, NULL);
  close_fds(w);
  cr_wire_decoder_free(&w->dec);
  cr_wire_buf_free(&w->out);
  cr__free(w);
}

static int spawn_worker(cr_worker_pool *p, cr_worker **out, char *errbuf,
                        size_t errlen) {
  cr_worker *w = cr__calloc(1, sizeof *w);
  if (!w) {
    set_err(errbuf, errlen, "%s", "out of memory");
    return CR_ENOMEM;
  }
  w->pool = p;
  w->to_fd = w->from_fd = -1;
  cr_wire_decoder_init(&w->dec);
  cr_wire_buf_init(&w->out);
  int rc = start_process(p, w, errbuf, errlen);
  if (rc == 0)
    rc = await_hello(w, errbuf, errlen);
  if (rc < 0) {
    worker_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

/* ---- pool --------------------------------------------------------------- */

static void list_push(cr_worker **head, cr_worker *w) {
  w->prev = NULL;
  w->next = *head;
  if (*head)
    (*head)->prev = w;
  *head = w;
}

static void list_unlink(cr_worker **head, cr_worker *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    *head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

int cr_worker_pool_new(const struct cr_worker_pool_opts *o,
                       cr_worker_pool **out) {
  if (!o || !o->exe || !out)
    return CR_EINVAL;
  cr_worker_pool *p = cr__calloc(1, sizeof *p);
  if (!p)
    return CR_ENOMEM;
  p->exe = cr__strdup(o->exe);
  if (!p->exe) {
    cr__free(p);
    return CR_ENOMEM;
  }
  p->max_uses = o->max_uses ? o->max_uses : DEFAULT_MAX_USES;
  p->max_idle = o->max_idle ? o->max_idle : DEFAULT_MAX_IDLE;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->sp_cv, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  if (pthread_create(&p->spawner, NULL, spawner_main, p) != 0) {
    pthread_cond_destroy(&p->done_cv);
    pthread_cond_destroy(&p->sp_cv);
    pthread_mutex_destroy(&p->mu);
    cr__free(p->exe);
    cr__free(p);
    return CR_EIO;
  }
  *out = p;
  return 0;
}

/* BYE, then up to 1 s for a clean exit, then SIGKILL; reaped. */
static void retire(cr_worker *w) {
  if (!w->alive)
    return;
  struct cr_wire_msg bye = {.type = CR_WIRE_BYE};
  send_msg(w, &bye);
  close_fds(w);
  reap_within(w, BYE_WAIT_MS);
}

void cr_worker_pool_free(cr_worker_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->sp_stop = 1;
  pthread_cond_signal(&p->sp_cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->spawner, NULL);
  while (p->idle) {
    cr_worker *w = p->idle;
    list_unlink(&p->idle, w);
    retire(w);
    worker_free(w);
  }
  while (p->busy) {
    cr_worker *w = p->busy;
    list_unlink(&p->busy, w);
    worker_free(w);
  }
  pthread_cond_destroy(&p->done_cv);
  pthread_cond_destroy(&p->sp_cv);
  pthread_mutex_destroy(&p->mu);
  cr__free(p->exe);
  cr__free(p);
}

/* An idle worker is fit when it has not exited and sent nothing. */
static int idle_ok(cr_worker *w) {
  int status;
  if (!w->alive || reap_try(w, &status))
    return 0;
  struct pollfd pfd = {w->from_fd, POLLIN, 0};
  if (poll(&pfd, 1, 0) != 0 || cr_wire_decoder_pending(&w->dec) > 0) {
    kill_with(w, CR_EIO, "unexpected output while idle");
    return 0;
  }
  return 1;
}

int cr_worker_pool_acquire(cr_worker_pool *p, cr_worker **out, char *errbuf,
                           size_t errlen) {
  if (!p || !out)
    return CR_EINVAL;
  pthread_mutex_lock(&p->mu);
  while (p->idle) {
    cr_worker *w = p->idle;
    list_unlink(&p->idle, w);
    p->n_idle--;
    pthread_mutex_unlock(&p->mu);
    int ok = idle_ok(w);
    if (!ok)
      worker_free(w);
    pthread_mutex_lock(&p->mu);
    if (ok) {
      p->st.reused++;
      w->gen = p->gen;
      list_push(&p->busy, w);
      pthread_mutex_unlock(&p->mu);
      w->reason[0] = '\0';
      *out = w;
      return 0;
    }
    p->st.died++;
  }
  pthread_mutex_unlock(&p->mu);
  cr_worker *w = NULL;
  int rc = spawn_worker(p, &w, errbuf, errlen);
  if (rc < 0)
    return rc;
  pthread_mutex_lock(&p->mu);
  p->st.spawned++;
  w->gen = p->gen;
  list_push(&p->busy, w);
  pthread_mutex_unlock(&p->mu);
  *out = w;
  return 0;
}

void cr_worker_pool_release(cr_worker_pool *p, cr_worker *w) {
  if (!p || !w)
    return;
  int healthy = w->alive && !w->in_job;
  pthread_mutex_lock(&p->mu);
  list_unlink(&p->busy, w);
  if (healthy && w->uses < p->max_uses && p->n_idle < p->max_idle &&
      w->gen == p->gen) {
    list_push(&p->idle, w);
    p->n_idle++;
    pthread_mutex_unlock(&p->mu);
    return;
  }
  if (healthy)
    p->st.retired++;
  else
    p->st.died++;
  pthread_mutex_unlock(&p->mu);
  if (healthy)
    retire(w);
  worker_free(w);
}

void cr_worker_pool_retire_idle(cr_worker_pool *p) {
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->gen++;
  cr_worker *list = p->idle;
  p->idle = NULL;
  p->st.retired += p->n_idle;
  p->n_idle = 0;
  pthread_mutex_unlock(&p->mu);
  while (list) {
    cr_worker *w = list;
    list_unlink(&list, w);
    retire(w);
    worker_free(w);
  }
}

int cr_worker_pool_prespawn(cr_worker_pool *p, unsigned n) {
  if (!p)
    return CR_EINVAL;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    int enough = p->n_idle >= n || p->n_idle >= p->max_idle;
    pthread_mutex_unlock(&p->mu);
    if (enough)
      return 0;
    cr_worker *w = NULL;
    int rc = spawn_worker(p, &w, NULL, 0);
    if (rc < 0)
      return rc;
    pthread_mutex_lock(&p->mu);
    p->st.spawned++;
    w->gen = p->gen;
    list_push(&p->idle, w);
    p->n_idle++;
    pthread_mutex_unlock(&p->mu);
  }
}

void cr_worker_pool_get_stats(cr_worker_pool *p,
                              struct cr_worker_pool_stats *out) {
  if (!p || !out)
    return;
  pthread_mutex_lock(&p->mu);
  *out = p->st;
  pthread_mutex_unlock(&p->mu);
}

/* ---- jobs --------------------------------------------------------------- */

int cr_worker_start(cr_worker *w, const struct cr_wire_msg *job) {
  if (!w || !job || job->type != CR_WIRE_JOB || !w->alive || w->in_job)
    return CR_EINVAL;
  int64_t now = mono_ms();
  w->timeout_ms = job->u.job.timeout_ms;
  w->deadline = w->timeout_ms ? now + (int64_t)w->timeout_ms : 0;
  w->limit_mb = job->u.job.memory_limit_mb;
  w->peak_kb = 0;
  w->next_sample = now;
  w->reason[0] = '\0';
  int rc = send_msg(w, job);
  if (rc == CR_EIO) {
    died(w);
    return CR_EIO;
  }
  if (rc < 0)
    return rc;
  w->in_job = 1;
  w->uses++;
  return 0;
}

static int is_job_msg(int type) {
  switch (type) {
  case CR_WIRE_RECORD:
  case CR_WIRE_RECORDS:
  case CR_WIRE_WROTE:
  case CR_WIRE_DEST_ERROR:
  case CR_WIRE_CHECKPOINT:
  case CR_WIRE_LOG:
  case CR_WIRE_PROGRESS:
  case CR_WIRE_METRICS:
  case CR_WIRE_CREDENTIALS:
  case CR_WIRE_RESULT:
    return 1;
  default:
    return 0;
  }
}

static int timed_out(cr_worker *w) {
  char r[64];
  if (w->timeout_ms < 1000)
    snprintf(r, sizeof r, "timed out after %llu ms",
             (unsigned long long)w->timeout_ms);
  else
    snprintf(r, sizeof r, "timed out after %llu s",
             (unsigned long long)(w->timeout_ms / 1000));
  return kill_with(w, CR_ETIMEDOUT, r);
}

/* Samples RSS when due; CR_ELIMIT (worker killed) when above the limit. */
static int check_memory(cr_worker *w, int64_t now) {
  if (!w->limit_mb || now < w->next_sample)
    return 0;
  w->next_sample = now + RSS_SAMPLE_MS;
  uint64_t kb = sample_rss_kb(w->pid);
  if (kb > w->peak_kb)
    w->peak_kb = kb;
  if (kb <= w->limit_mb * 1024u)
    return 0;
  kill_with(w, CR_ELIMIT, NULL);
  limit_reason(w);
  return CR_ELIMIT;
}

static int min_timeout(int a, int64_t b) {
  if (b < 0)
    b = 0;
  if (a < 0 || b < a)
    return (int)(b > 1000000 ? 1000000 : b);
  return a;
}

int cr_worker_next(cr_worker *w, struct cr_wire_msg *msg, int wait_ms) {
  if (!w || !msg)
    return CR_EINVAL;
  if (!w->alive)
    return w->term ? w->term : CR_EINVAL;
  if (!w->in_job)
    return CR_EINVAL;
  int64_t start = -1; /* read only when there is something to wait for */
  for (;;) {
    int rc = cr_wire_next(&w->dec, msg);
    if (rc < 0)
      return protocol_error(w, cr_wire_decoder_error(&w->dec));
    if (rc == 1) {
      if (!is_job_msg(msg->type)) {
        char d[64];
        snprintf(d, sizeof d, "unexpected %s", cr_wire_type_name(msg->type));
        return protocol_error(w, d);
      }
      if (msg->type == CR_WIRE_RESULT)
        w->in_job = 0;
      return 1;
    }
    int64_t now = mono_ms();
    if (start < 0)
      start = now;
    if (w->deadline && now >= w->deadline)
      return timed_out(w);
    if ((rc = check_memory(w, now)) < 0)
      return rc;
    int t = wait_ms < 0 ? -1 : min_timeout(-1, start + wait_ms - now);
    if (w->deadline)
      t = min_timeout(t, w->deadline - now);
    if (w->limit_mb)
      t = min_timeout(t, w->next_sample - now);
    struct pollfd pfd = {w->from_fd, POLLIN, 0};
    int pr = poll(&pfd, 1, t);
    if (pr < 0 && errno != EINTR)
      return kill_with(w, CR_EIO, "poll failed");
    if (pr > 0) {
      if ((rc = read_some(w)) < 0)
        return rc;
      continue;
    }
    if (wait_ms >= 0 && mono_ms() >= start + wait_ms)
      return 0;
  }
}

size_t cr_worker_buffered(const cr_worker *w) {
  return w != NULL ? cr_wire_decoder_pending(&w->dec) : 0;
}

int cr_worker_cancel(cr_worker *w) {
  if (!w || !w->alive || !w->in_job)
    return CR_EINVAL;
  struct cr_wire_msg m = {.type = CR_WIRE_CANCEL};
  return send_msg(w, &m) < 0 ? CR_EIO : 0;
}

void cr_worker_kill(cr_worker *w, const char *reason) {
  if (!w)
    return;
  if (!w->alive) {
    if (reason)
      snprintf(w->reason, sizeof w->reason, "%s", reason);
    return;
  }
  kill_with(w, CR_EIO, reason);
}

const char *cr_worker_reason(const cr_worker *w) { return w ? w->reason : ""; }

int cr_worker_pid(const cr_worker *w) { return w ? (int)w->pid : -1; }
