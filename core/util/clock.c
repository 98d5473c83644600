/* clock.c: the wall clock in milliseconds and its test override (see
 * clock.h). */
#include "util/clock.h"

#include <stdatomic.h>
#include <time.h>

static _Atomic int64_t fake_ms;

int64_t cr__now_ms(void) {
  int64_t fake = atomic_load(&fake_ms);
  if (fake > 0)
    return fake;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cr__clock_set_fake(int64_t ms) { atomic_store(&fake_ms, ms > 0 ? ms : 0); }

void cr__sleep_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}
