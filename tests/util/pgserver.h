/* pgserver.h: a private, throw-away PostgreSQL server for tests and
 * benchmarks. It runs Debian's initdb in a temporary directory and starts
 * `postgres` on a free 127.0.0.1 port (and a Unix socket in that directory),
 * with trust authentication for the single role "connrun". PostgreSQL
 * refuses to run as root, so when the caller is root the server's processes
 * run as the unprivileged user "nobody" (the directory is given to it).
 *
 * The binaries are found under /usr/lib/postgresql/<major>/bin (the newest),
 * or in $CR_PG_BINDIR. scripts/deps.sh installs Debian's postgresql. No
 * server, no test: a missing PostgreSQL is an error, never a skip.
 * $CR_PGSERVER_SETTING, as NAME=VALUE, is one more server setting for
 * profiling (shared_preload_libraries=pg_stat_statements: bench_scaleout
 * with BENCH_PGSS=1 then prints each statement's calls and time). */
#ifndef CR_TEST_PGSERVER_H
#define CR_TEST_PGSERVER_H

#include <stddef.h>
#include <sys/types.h>

struct cr_pgserver {
  pid_t pid;        /* the postmaster; 0 when stopped */
  int port;         /* its loopback TCP port */
  char dir[256];    /* the temporary directory (data/, socket, log) */
  char bindir[256]; /* where initdb and postgres were found */
  char url[320];    /* postgresql://connrun@127.0.0.1:PORT/connrun */
  char error[512];  /* why start failed */
};

/* Creates the cluster (initdb) and starts the server; waits until it
 * accepts connections (bounded: 30 s) and creates the database "connrun".
 * fsync_off: start with fsync=off (benchmarks of our code, not of the
 * disk, must say so). Returns 0, or -1 with pg->error set (the directory is
 * removed). */
int cr_pgserver_start(struct cr_pgserver *pg, int fsync_off);

/* Stops the server (fast shutdown, then SIGKILL after 10 s) without removing
 * its directory, so cr_pgserver_restart can start it again. */
void cr_pgserver_halt(struct cr_pgserver *pg);

/* Starts a halted server again on the same port and data. 0 or -1. */
int cr_pgserver_restart(struct cr_pgserver *pg);

/* Stops the server if running and removes its directory. */
void cr_pgserver_stop(struct cr_pgserver *pg);

/* Creates database name (borrowed; [a-z0-9_] only) and writes its URL into
 * url (urllen bytes). Returns 0 or -1 with pg->error set. */
int cr_pgserver_createdb(struct cr_pgserver *pg, const char *name, char *url,
                         size_t urllen);

#endif
