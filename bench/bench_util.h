/* bench_util.h: what the benchmarks that drive real processes share: a
 * monotonic clock in seconds, a process's resident memory, and one row of
 * the figure / value / target / ceiling table. Header-only (every bench is
 * one executable). */
#ifndef CR_BENCH_UTIL_H
#define CR_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

static inline double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* VmRSS of pid in KiB (0 when unknown). */
static inline long bench_rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kib = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      kib = atol(line + 6);
  if (f != NULL)
    fclose(f);
  return kib;
}

static inline void bench_row(const char *figure, double value, const char *unit,
                             const char *target, const char *ceiling) {
  printf("%-52s %12.1f %-6s %-14s %s\n", figure, value, unit, target, ceiling);
}

#endif
