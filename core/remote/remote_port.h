/* remote_port.h: the port (struct cr_exec_port, exec/exec_run.h) a runner
 * host runs one claimed execution through: every write of the run becomes a
 * report to the server,
 *
 *   POST /v1/runners/{id}/executions/{eid}/reports
 *   {"epoch":E,"reports":[{"seq":N,"type":T,...}]}
 *
 * (docs/design.md "Reports, fencing and sequence numbers"). Every report
 * carries the attempt as of the call (records, checkpoints, duration_ms,
 * needs_executing, one_time, attempt) and a sequence number of its own,
 * 1, 2, 3... per port. State and credentials travel as JSON texts
 * (strings), as the claim's state does.
 *
 * Delivery: a report stays pending until the server answered 2xx for a
 * request holding it; a request sends every pending report, oldest first,
 * each with the sequence number it got first, so a retry after a lost
 * answer is answered by the server from its record and applied once.
 * `log` and `metrics` only queue (the next report carries them), unless
 * CR_REMOTE_PORT_MAX_PENDING reports wait: then they are sent at once.
 *
 * Retries (remote_client.h policy) are bounded by the lease: the port keeps
 * a local lease deadline, the claim's arrival + lease_ms, moved to
 * send time + lease_ms by every answered renew, checkpoint or credentials
 * report. A report that gets no answer before that deadline gives up with
 * CR_ESTALE: the server has taken the lease back by then and its fence
 * would refuse the report anyway. A renewal is the exception while the
 * lease still holds: after renew_wait_ms without an answer it returns 0
 * and stays pending (the run goes on; the next report or renewal resends
 * it). 409 stale_epoch gives CR_ESTALE; 401 gives CR_ESTALE and sets
 * *revoked; another 4xx gives CR_EINVAL and drops the pending reports (the
 * server refused them; their numbers are not reused). Once the lease is
 * lost every op returns CR_ESTALE at once and sends nothing.
 *
 * Threads: a port and its client are used on the run's thread only. */
#ifndef CR_REMOTE_PORT_H
#define CR_REMOTE_PORT_H

#include <stdatomic.h>
#include <stdint.h>

#include "exec/exec_run.h"
#include "remote/remote_claim.h"
#include "remote/remote_client.h"
#include "util/log.h"

typedef struct cr_remote_port cr_remote_port;

/* Queued log / metrics reports that make the port send at once. */
#define CR_REMOTE_PORT_MAX_PENDING 32
/* Default wait of a renewal for the server. */
#define CR_REMOTE_PORT_RENEW_WAIT_MS INT64_C(2000)

struct cr_remote_port_opts {
  cr_remote_client *client; /* borrowed; the host's client of this thread */
  const char *runner_id;    /* copied */
  const struct cr_remote_claim *claim; /* borrowed; outlives the port */
  const char *credentials; /* JSON text the run gets (copied, secret, wiped
                              on free); NULL: "{}" */
  const atomic_int *abort; /* non-zero: stop retrying, the lease is treated
                              as lost (may be NULL) */
  atomic_int *revoked;     /* set to 1 on a 401 (may be NULL) */
  int64_t renew_wait_ms;   /* 0 = CR_REMOTE_PORT_RENEW_WAIT_MS */
  int64_t retry_base_ms, retry_max_ms; /* 0 = the client's defaults */
  cr_log_fn log; /* retries are logged here (may be NULL) */
  void *log_ud;
};

/* Creates the port of one claim (o borrowed). *out is transferred: free
 * with cr_remote_port_free after the run. Errors: CR_EINVAL, CR_ENOMEM. */
int cr_remote_port_new(const struct cr_remote_port_opts *o,
                       cr_remote_port **out);

/* The ops to put in cr_exec_env.port (borrowed; valid until the port is
 * freed). */
const struct cr_exec_port *cr_remote_port_ops(cr_remote_port *p);

/* The sequence number the next report gets (1 for a new port). */
int64_t cr_remote_port_next_seq(const cr_remote_port *p);

/* Number of reports waiting for an answer. */
size_t cr_remote_port_pending(const cr_remote_port *p);

/* 1 once the lease is lost (stale epoch, revoked, expired unanswered). */
int cr_remote_port_lost(const cr_remote_port *p);

/* Sends the reports still pending (a final best effort, e.g. logs after
 * the outcome) with the same bounds as a report. Returns 0 (nothing
 * pending too) or the error of the send. */
int cr_remote_port_flush(cr_remote_port *p);

/* Frees the port, wiping its credentials; pending reports are dropped.
 * NULL is a no-op. */
void cr_remote_port_free(cr_remote_port *p);

#endif
