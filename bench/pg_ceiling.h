/* pg_ceiling.h: what PostgreSQL alone reaches on this machine for the
 * writes of no-op executions, with no connrun process running: the ceiling
 * bench_scaleout prints next to the executions of 3 instances. */
#ifndef CR_BENCH_PG_CEILING_H
#define CR_BENCH_PG_CEILING_H

#include <stddef.h>

/* Runs no-op execution lifecycles straight against the database at url
 * (libpq conninfo or URL; a scratch database: the function creates its own
 * tables there): `conns` connections at once, each doing `rounds` rounds.
 * A round creates `batch` executions and moves them through pending,
 * executing and completed: four statements, each one committed on its own
 * (fsync), each writing the executions' rows, one transition row and one
 * event row per execution. batch 1 is a transaction per state change of
 * each execution, the least today's store could do; a larger batch shares
 * each statement and commit among that many executions. Returns
 * executions/s, or -1 on any failure (err gets why). */
double cr_bench_pg_ceiling(const char *url, int conns, int rounds, int batch,
                           char *err, size_t errlen);

#endif
