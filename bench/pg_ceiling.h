/* pg_ceiling.h: what PostgreSQL alone reaches on this machine for the
 * writes of no-op executions and of webhook deliveries, with no connrun
 * process running: the ceilings bench_scaleout prints next to the rates of
 * 3 instances. */
#ifndef CR_BENCH_PG_CEILING_H
#define CR_BENCH_PG_CEILING_H

#include <stddef.h>

/* What a round writes. */
enum cr_bench_pg_load {
  /* batch executions created, then moved through pending, executing and
   * completed: four statements, each committed on its own (fsync), each
   * writing the executions' rows, one transition row and one event row per
   * execution. batch 1 is a transaction per state change of each
   * execution, the least today's store could do; a larger batch shares
   * each statement and commit among that many executions. */
  CR_BENCH_PG_EXECUTIONS,
  /* batch events delivered the way the store records them: their outbox
   * rows inserted (one commit), then marked delivered and an attempt row
   * each inserted (one commit), with the store's own statements. */
  CR_BENCH_PG_DELIVERIES
};

/* Runs load straight against the database at url (libpq conninfo or URL; a
 * scratch database: the function makes its own tables there): `conns`
 * connections at once, each doing `rounds` rounds of `batch`. Returns
 * executions or deliveries per second, or -1 on any failure (err gets
 * why). window_ms (NULL or 2 elements) gets the wall times (CLOCK_REALTIME,
 * ms) the load started and ended. */
double cr_bench_pg_ceiling(const char *url, enum cr_bench_pg_load load,
                           int conns, int rounds, int batch,
                           long long window_ms[2], char *err, size_t errlen);

#endif
