/* bench_util.h: what the benchmarks that drive real processes share: a
 * monotonic clock in seconds, a process's resident memory, and one row of
 * the figure / value / target / ceiling table. Header-only (every bench is
 * one executable). */
#ifndef CR_BENCH_UTIL_H
#define CR_BENCH_UTIL_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* Starts argv (argv[0] a path) in its own process group, in directory dir,
 * with stderr to log (a path) and stdout to /dev/null. */
static inline pid_t bench_spawn(const char *dir, const char *log,
                                char *const argv[]) {
  fflush(stdout); /* the child must not print the parent's buffer again */
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (chdir(dir) != 0 || freopen(log, "w", stderr) == NULL ||
        freopen("/dev/null", "w", stdout) == NULL)
      _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* SIGTERM to pid's process group, then (after 10 s) SIGKILL; reaps it. */
static inline void bench_stop(pid_t pid) {
  if (pid <= 0)
    return;
  kill(-pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return;
    usleep(100 * 1000);
  }
  kill(-pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* Starts `connrun runner` (bindir/bin/connrun) named bench-I with 4 slots
 * and the test plugins of bindir/test-plugins against the server on port,
 * registered with reg; its data directory DIR/runnerSUFFIX, its log that
 * plus ".log". */
static inline pid_t bench_runner(const char *bindir, const char *dir,
                                 const char *suffix, int i, int port,
                                 const char *reg) {
  char exe[4200], plugins[4200], url[64], data[4200], log[4300], name[32];
  snprintf(exe, sizeof exe, "%s/bin/connrun", bindir);
  snprintf(plugins, sizeof plugins, "%s/test-plugins", bindir);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
  snprintf(data, sizeof data, "%s/runner%s", dir, suffix);
  snprintf(log, sizeof log, "%s.log", data);
  snprintf(name, sizeof name, "bench-%d", i);
  char *argv[] = {exe,
                  "runner",
                  "--server",
                  url,
                  "--registration-token",
                  (char *)reg,
                  "--name",
                  name,
                  "--slots",
                  "4",
                  "--plugin-dir",
                  plugins,
                  "--data-dir",
                  data,
                  "--log-level",
                  "warn",
                  NULL};
  return bench_spawn(dir, log, argv);
}

static inline void bench_row(const char *figure, double value, const char *unit,
                             const char *target, const char *ceiling) {
  printf("%-52s %12.1f %-6s %-14s %s\n", figure, value, unit, target, ceiling);
}

/* A response body collected by a libcurl write callback: bench_body_keep
 * appends (NUL-terminated); the caller frees p with free(). */
struct bench_body {
  char *p;
  size_t n;
};

static inline size_t bench_body_keep(char *p, size_t s, size_t n, void *ud) {
  struct bench_body *b = (struct bench_body *)ud;
  char *g = (char *)realloc(b->p, b->n + s * n + 1);
  if (g == NULL)
    return 0;
  memcpy(g + b->n, p, s * n);
  b->n += s * n;
  g[b->n] = '\0';
  b->p = g;
  return s * n;
}

/* Starts `exe serve -c cfg` in dir with stderr to dir/log_name (the path
 * written into log, 4096 bytes). Returns the pid. */
static inline pid_t bench_start_serve(const char *exe, const char *dir,
                                      const char *cfg, char *log,
                                      const char *log_name) {
  snprintf(log, 4096, "%s/%s", dir, log_name);
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir) != 0 || freopen(log, "w", stderr) == NULL)
      _exit(127);
    execl(exe, "connrun", "serve", "-c", cfg, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* The API port a `connrun serve` logged (waits up to 60 s), or 0. */
static inline int bench_port_from_log(const char *log) {
  for (int i = 0; i < 600; i++) { /* 60 s */
    FILE *f = fopen(log, "r");
    char line[1024];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
      const char *p = strstr(line, "(port ");
      if (strstr(line, "api: listening") && p != NULL) {
        fclose(f);
        return atoi(p + 6);
      }
    }
    if (f != NULL)
      fclose(f);
    usleep(100 * 1000);
  }
  return 0;
}

/* Builds n plugins from bench/many_plugin.c (names p00, p01, ...) into
 * dir/sub with the system compiler; returns 0 or -1. */
static inline int bench_build_plugins(const char *dir, const char *sub, int n,
                                      const char *source_dir) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "mkdir -p %s/%s && chmod 755 %s %s/%s", dir, sub,
           dir, dir, sub);
  if (system(cmd) != 0)
    return -1;
  for (int i = 0; i < n; i++) {
    snprintf(cmd, sizeof cmd,
             "cc -O2 -shared -fPIC -DNAME=p%02d -I%s/sdk/include "
             "%s/bench/many_plugin.c -o %s/%s/p%02d.so",
             i, source_dir, source_dir, dir, sub, i);
    if (system(cmd) != 0)
      return -1;
  }
  return 0;
}

#endif
