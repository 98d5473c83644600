/* bench_cpu.h: how busy the whole machine's CPUs were over a stretch of wall
 * time. A thread reads /proc/stat's `cpu` line every 10 ms into a ring of
 * (wall ms, busy ticks, all ticks); bench_cpu_busy() then answers for any
 * window inside the ring, such as the one between a run's first and last
 * completion as the store timed them. Header-only, like bench_util.h. */
#ifndef CR_BENCH_CPU_H
#define CR_BENCH_CPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CPU_RING 65536 /* 10 ms apart: the last 11 minutes */

struct bench_cpu_sample {
  long long ms; /* CLOCK_REALTIME, as the store's times */
  unsigned long long busy, all;
};

/* One sampler. The caller owns it; bench_cpu_start() fills it and starts its
 * thread, bench_cpu_stop() joins the thread and frees the ring. */
struct bench_cpu {
  pthread_t thread;
  atomic_int stop;
  atomic_size_t n; /* samples taken; sample i is at ring[i % RING] */
  struct bench_cpu_sample *ring;
};

/* Reads /proc/stat's aggregate line into *s (0) or fails (-1). Busy ticks are
 * everything but idle and iowait; guest time is already inside user. */
static inline int bench_cpu_read(struct bench_cpu_sample *s) {
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (f == NULL)
    return -1;
  int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (got < 5)
    return -1;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  s->ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  s->all = 0;
  for (int i = 0; i < 8; i++)
    s->all += v[i];
  s->busy = s->all - v[3] - v[4];
  return 0;
}

static inline void *bench_cpu_main(void *arg) {
  struct bench_cpu *c = arg;
  while (!atomic_load(&c->stop)) {
    size_t n = atomic_load(&c->n);
    if (bench_cpu_read(&c->ring[n % BENCH_CPU_RING]) == 0)
      atomic_store(&c->n, n + 1);
    usleep(10 * 1000);
  }
  return NULL;
}

/* Starts sampling (0) or fails (-1: no /proc/stat, no memory, no thread). */
static inline int bench_cpu_start(struct bench_cpu *c) {
  struct bench_cpu_sample probe;
  atomic_init(&c->stop, 0);
  atomic_init(&c->n, 0);
  c->ring = bench_cpu_read(&probe) == 0
                ? calloc(BENCH_CPU_RING, sizeof *c->ring)
                : NULL;
  if (c->ring != NULL &&
      pthread_create(&c->thread, NULL, bench_cpu_main, c) == 0)
    return 0;
  free(c->ring);
  c->ring = NULL;
  return -1;
}

static inline void bench_cpu_stop(struct bench_cpu *c) {
  if (c->ring == NULL)
    return;
  atomic_store(&c->stop, 1);
  pthread_join(c->thread, NULL);
  free(c->ring);
  c->ring = NULL;
}

/* The share of all the machine's CPU time (0..1) that was busy between wall
 * times from_ms and to_ms, from the last sample at or before from_ms to the
 * first at or after to_ms; -1 when the ring does not cover the window. */
static inline double bench_cpu_busy(struct bench_cpu *c, long long from_ms,
                                    long long to_ms) {
  size_t n = c->ring != NULL ? atomic_load(&c->n) : 0;
  size_t first = n > BENCH_CPU_RING ? n - BENCH_CPU_RING : 0;
  const struct bench_cpu_sample *a = NULL, *b = NULL;
  for (size_t i = first; i < n; i++) {
    const struct bench_cpu_sample *s = &c->ring[i % BENCH_CPU_RING];
    if (s->ms <= from_ms)
      a = s;
    if (s->ms >= to_ms && b == NULL)
      b = s;
  }
  if (a == NULL || b == NULL || b->all <= a->all)
    return -1;
  return (double)(b->busy - a->busy) / (double)(b->all - a->all);
}

#endif
