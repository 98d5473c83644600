/* remote_host.h: the runner host (`connrun runner`): a process that
 * registers with a connrun server, claims executions of the providers it
 * has and runs them with cr_exec_run through a remote port
 * (remote_port.h), in its own pool of `connrun worker` processes
 * (docs/design.md "Remote runners").
 *
 * Identity: DATA_DIR/runner.json (remote_identity.h). Without one (or when
 * it names another server) the host registers with the registration token
 * (POST /v1/runners/register). A check-in answered 401 with a saved
 * identity registers again when a registration token was given, else the
 * host stops with CR_EPERM.
 *
 * Threads: cr_remote_host_run's thread checks in (at start and every
 * offline_after/3, 20 s unless the server says) and long-polls for claims
 * (POST /v1/runners/{id}/claims, wait_ms 25,000) for the free slots; each
 * of `slots` run threads takes claims from a queue and runs them, each with
 * its own HTTP client, a configuration loaded per claim in memory
 * (remote_claim.h, on top of DATA_DIR/runner-base.yaml whose host.data_dir
 * is DATA_DIR, so default destination paths land there) and the host's
 * plugins and worker pool. Credentials live only in memory.
 *
 * Stop (cr_remote_host_stop, e.g. from a signal handler): claiming stops
 * at once (a long poll in flight is abandoned: what it would have claimed
 * comes back when its lease expires); runs get the grace period to finish;
 * then the stop flag makes each report `retry` "runner stopped; retried"
 * (back to Created as a new attempt); reports still unanswered
 * CR_REMOTE_HOST_FINAL_MS later are abandoned (their leases expire on the
 * server). A 401 on any call (the runner was revoked) stops the host the
 * same way, without grace: the server already took its executions back. */
#ifndef CR_REMOTE_HOST_H
#define CR_REMOTE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "plugin/plugin_host.h"
#include "util/log.h"

typedef struct cr_remote_host cr_remote_host;

#define CR_REMOTE_HOST_GRACE_MS INT64_C(30000)
#define CR_REMOTE_HOST_WAIT_MS INT64_C(25000)
#define CR_REMOTE_HOST_CHECKIN_MS INT64_C(20000)
/* After the grace period, how long stopped runs may take to report. */
#define CR_REMOTE_HOST_FINAL_MS INT64_C(15000)
#define CR_REMOTE_HOST_MAX_SLOTS 256u

struct cr_remote_host_opts {
  const char *server;             /* base URL (required) */
  const char *registration_token; /* secret; NULL: only a saved identity */
  const char *name;               /* NULL: the host name */
  const char *const *labels;      /* n_labels labels (borrowed) */
  size_t n_labels;
  unsigned slots;                /* executions at once; 0 = 4 */
  const cr_plugin_host *plugins; /* the providers it runs (borrowed) */
  const char *worker_exe;        /* `connrun` for worker processes; NULL:
                                    works with isolation process fail */
  const char *data_dir;          /* absolute; created 0700 if missing */
  int64_t grace_ms;              /* 0 = CR_REMOTE_HOST_GRACE_MS */
  int64_t wait_ms;               /* long poll; 0 = CR_REMOTE_HOST_WAIT_MS */
  const char *ca_file;           /* TLS: see remote_client.h */
  int insecure;
  cr_log_fn log; /* may be NULL; lines never hold secrets */
  void *log_ud;
  int log_min_level;
};

/* Creates a host (o and everything it points to borrowed; strings
 * copied, plugins must outlive the host). Nothing is sent yet. *out is
 * transferred (cr_remote_host_free). Errors: CR_EINVAL (no server, no
 * data_dir, no plugins, slots above CR_REMOTE_HOST_MAX_SLOTS), CR_ENOMEM. */
int cr_remote_host_new(const struct cr_remote_host_opts *o,
                       cr_remote_host **out);

/* Runs until stopped: identity, check-ins, claims, runs (see above).
 * Returns 0 after a stop, CR_EPERM when the server refused the runner
 * (revoked, or a bad registration token), CR_EINVAL when it has no
 * identity and no registration token or the server refused a request as
 * invalid, CR_EIO when the data directory cannot be written, CR_ENOMEM.
 * The reason is logged. Call once. */
int cr_remote_host_run(cr_remote_host *h);

/* Asks a running host to stop (see above). Async-signal-safe (one atomic
 * store); any thread. */
void cr_remote_host_stop(cr_remote_host *h);

/* The runner id once known (borrowed; NULL before registration). */
const char *cr_remote_host_runner_id(const cr_remote_host *h);

/* Frees a host that is not running. NULL is a no-op. */
void cr_remote_host_free(cr_remote_host *h);

#endif
