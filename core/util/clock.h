/* clock.h: the wall clock connrun stores and reports times with: integer
 * milliseconds since the Unix epoch, UTC (CLOCK_REALTIME).
 *
 * Tests can freeze the clock with cr__clock_set_fake() so stored timestamps
 * are predictable. Durations should use a monotonic clock instead. */
#ifndef CR_CLOCK_H
#define CR_CLOCK_H

#include <stdint.h>

/* Milliseconds since 1970-01-01T00:00:00Z (CLOCK_REALTIME), or the fake time
 * set with cr__clock_set_fake(). Thread-safe. */
int64_t cr__now_ms(void);

/* Test hook: makes cr__now_ms() return ms from now on (ms > 0); ms <= 0
 * restores the real clock. Thread-safe. */
void cr__clock_set_fake(int64_t ms);

/* Sleeps ms milliseconds of real time (nanosleep, resumed after signals
 * only until the next one: a signal may cut it short). */
void cr__sleep_ms(int64_t ms);

#endif
