/* bench_spawn.c: process spawn cost. Spawns /bin/true and waits for it with
 * fork+execv, uv_spawn, posix_spawn and vfork+execv, first from the bare
 * bench process, then after the parent has malloc'd and touched 256 MiB
 * (kept live). Each figure runs for ~1 s or a fixed count, whichever ends
 * first. Prints figure, value, target, ratio (vs posix_spawn, same parent). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define BENCH_PROG "/bin/true"
#define BENCH_SECONDS 1.0
#define BENCH_MAX_SPAWNS 3000
#define BENCH_BIG_BYTES ((size_t)256 << 20)

extern char **environ;

/* Ballast for the "big parent" run; a global so the allocation stays live. */
static char *g_ballast;

typedef int (*spawn_fn)(void);

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *const g_argv[] = {BENCH_PROG, NULL};

static int wait_ok(pid_t pid) {
  int status;
  if (pid < 0)
    return -1;
  if (waitpid(pid, &status, 0) != pid)
    return -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int spawn_fork(void) {
  pid_t pid = fork();
  if (pid == 0) {
    execv(BENCH_PROG, g_argv);
    _exit(127);
  }
  return wait_ok(pid);
}

/* vfork is not deprecated in glibc 2.36, so no pragma is needed. The child
 * only calls execv/_exit, and this function keeps no locals live across the
 * call (so -Wclobbered has nothing to flag). */
static int spawn_vfork(void) {
  pid_t pid = vfork();
  if (pid == 0) {
    execv(BENCH_PROG, g_argv);
    _exit(127);
  }
  return wait_ok(pid);
}

static int spawn_posix(void) {
  pid_t pid;
  if (posix_spawn(&pid, BENCH_PROG, NULL, NULL, g_argv, environ) != 0)
    return -1;
  return wait_ok(pid);
}

static uv_loop_t g_loop;
static int g_uv_status;

static void on_uv_exit(uv_process_t *p, int64_t status, int sig) {
  g_uv_status = (status == 0 && sig == 0) ? 0 : -1;
  uv_close((uv_handle_t *)p, NULL);
}

static int spawn_uv(void) {
  uv_process_t proc;
  uv_process_options_t opt;
  memset(&opt, 0, sizeof opt);
  opt.file = BENCH_PROG;
  opt.args = (char **)g_argv;
  opt.exit_cb = on_uv_exit;
  g_uv_status = -1;
  if (uv_spawn(&g_loop, &proc, &opt) != 0) {
    uv_close((uv_handle_t *)&proc, NULL);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    return -1;
  }
  uv_run(&g_loop, UV_RUN_DEFAULT);
  return g_uv_status;
}

/* Runs fn until BENCH_SECONDS elapse or BENCH_MAX_SPAWNS spawns; returns
 * spawns per second, or -1 if any spawn failed. */
static double measure(spawn_fn fn) {
  for (int i = 0; i < 5; i++) /* warm-up */
    if (fn() != 0)
      return -1;
  int n = 0;
  double t0 = now_s(), dt = 0;
  while (n < BENCH_MAX_SPAWNS && dt < BENCH_SECONDS) {
    if (fn() != 0)
      return -1;
    n++;
    dt = now_s() - t0;
  }
  return n / dt;
}

static double measure_uv(void) {
  if (uv_loop_init(&g_loop) != 0)
    return -1;
  double r = measure(spawn_uv);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&g_loop) != 0)
    return -1;
  return r;
}

enum { M_FORK, M_UV, M_POSIX, M_VFORK, M_COUNT };

static const char *const g_names[M_COUNT] = {"fork+execv+waitpid", "uv_spawn",
                                             "posix_spawn+waitpid",
                                             "vfork+execv+waitpid"};

static void measure_all(double out[M_COUNT]) {
  out[M_FORK] = measure(spawn_fork);
  out[M_UV] = measure_uv();
  out[M_POSIX] = measure(spawn_posix);
  out[M_VFORK] = measure(spawn_vfork);
}

static void row(const char *parent, int m, double value, double ceiling) {
  char figure[64];
  snprintf(figure, sizeof figure, "%s, %s", g_names[m], parent);
  if (value < 0) {
    printf("%-44s %14s  %-8s FAILED\n", figure, "error", "-");
    return;
  }
  printf("%-44s %12.0f/s  %-8s ratio %.2f\n", figure, value, "-",
         ceiling > 0 ? value / ceiling : 0);
}

int main(void) {
  double small[M_COUNT], big[M_COUNT];
  measure_all(small);
  g_ballast = malloc(BENCH_BIG_BYTES);
  if (!g_ballast) {
    fprintf(stderr, "bench_spawn: cannot allocate 256 MiB\n");
    return 1;
  }
  memset(g_ballast, 0x5a, BENCH_BIG_BYTES);
  measure_all(big);
  printf("%-44s %14s  %-8s %s\n", "figure", "value", "target",
         "vs posix_spawn (same parent)");
  for (int m = 0; m < M_COUNT; m++)
    row("bare parent", m, small[m], small[M_POSIX]);
  for (int m = 0; m < M_COUNT; m++)
    row("256 MiB parent", m, big[m], big[M_POSIX]);
  printf("connrun worker pool spawns with posix_spawn; posix_spawn/uv_spawn "
         "at 256 MiB = %.2f\n",
         big[M_UV] > 0 ? big[M_POSIX] / big[M_UV] : 0);
  int failed = 0;
  for (int m = 0; m < M_COUNT; m++)
    failed |= small[m] < 0 || big[m] < 0;
  free(g_ballast);
  return failed ? 1 : 0;
}
