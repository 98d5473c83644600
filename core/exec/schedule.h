/* schedule.h: when works run: fixed intervals ("every: 1h30m") and cron
 * expressions in a named time zone ("cron: 0 3 * * *", "tz: Europe/Paris"),
 * parsed and validated with precise messages, and the next run after a given
 * instant (UTC milliseconds).
 *
 * Syntax
 * - every: one or more <number><unit> parts, units d, h, m, s in that order,
 *   each at most once ("30s", "15m", "1h30m", "2d"); total > 0 and <= 366d.
 * - cron: 5 fields, minute (0-59) hour (0-23) day-of-month (1-31) month
 *   (1-12 or jan-dec) day-of-week (0-7 or sun-sat, 0 and 7 = Sunday). Each
 *   field is a comma list of "*", "N", "N-M", each optionally "/STEP"
 *   ("1-10/2"; a star then "/15" means every 15th; "N/STEP" means
 *   N-max/STEP). Names are case-insensitive, 3 letters. Macros: @hourly,
 *   @daily, @midnight, @weekly, @monthly, @yearly, @annually.
 * - Day rule (Vixie cron): when both the day-of-month and the day-of-week
 *   field are restricted, a day matches if EITHER matches; otherwise both
 *   must. As in Vixie cron, a field counts as unrestricted when it starts
 *   with "*" (so a day-of-month of a star then "/2" is unrestricted for this
 *   rule: "0 0 star/2 * 1" runs on odd-numbered Mondays).
 *
 * Intervals are anchored: runs are at anchor + k * interval (UTC), so they do
 * not drift and ignore DST.
 *
 * Cron and DST (times are wall-clock times in the schedule's zone):
 * - A time skipped by a spring-forward change runs once, at the first instant
 *   after the gap (02:30 in Paris' 02:00->03:00 gap runs at 03:00 CEST). All
 *   matching times of one gap collapse into that one run.
 * - A time repeated by a fall-back change runs once, at its first
 *   occurrence.
 * - Exception: when the hour field matches all 24 hours ("0 * * * *",
 *   "15,45 * * * *"), the job runs at every real instant whose local time
 *   matches: every real hour across both changes. In the repeated hour it
 *   runs in both occurrences (e.g. 02:00 CEST and 02:00 CET); skipped local
 *   times do not run, the next real matching time does.
 * Searching stops 5 years after the start: an expression with no run in that
 * window ("0 0 30 2 *") gives CR_ENOENT. */
#ifndef CR_SCHEDULE_H
#define CR_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cr_schedule cr_schedule;

/* Longest interval accepted by cr_schedule_parse_every, in seconds. */
#define CR_SCHEDULE_MAX_EVERY_S (366 * 86400)

/* Parses an interval ("1h30m"). Returns 0, CR_EINVAL with a message in
 * errbuf (caller owned, errlen bytes, may be NULL), e.g. "bad duration
 * \"1x\": unknown unit 'x' (use s, m, h, d)", or CR_ENOMEM. every is
 * borrowed; on success *out is owned by the caller (cr_schedule_free). */
int cr_schedule_parse_every(const char *every, cr_schedule **out, char *errbuf,
                            size_t errlen);

/* Parses a cron expression evaluated in zone tz (IANA name; NULL = UTC).
 * Returns 0, CR_EINVAL with a message in errbuf ("expected 5 fields, got 4",
 * "cron field 2 (hour): 24 is out of range 0-23", "cron field 4 (month):
 * unknown month name \"jnu\""), the errors of cr_tz_load for tz (CR_ENOENT
 * "unknown time zone \"Europe/Pariss\"", CR_EINVAL, CR_EPARSE, CR_EIO), or
 * CR_ENOMEM. expr and tz are borrowed (copied); on success *out is owned by
 * the caller (cr_schedule_free). */
int cr_schedule_parse_cron(const char *expr, const char *tz, cr_schedule **out,
                           char *errbuf, size_t errlen);

/* The first run strictly after after_ms (UTC ms) into *next_ms. For
 * intervals, runs are anchor_ms + k * interval for any integer k (anchor_ms
 * is e.g. the work's creation or last run); cron ignores anchor_ms. Returns
 * 0, CR_ENOENT when there is no run within 5 years after after_ms,
 * CR_EINVAL for NULL arguments, CR_ERANGE for instants beyond +-30,000
 * years. All pointers borrowed. */
int cr_schedule_next(const cr_schedule *s, int64_t anchor_ms, int64_t after_ms,
                     int64_t *next_ms);

/* Missed-run policy. *due = 1 when at least one run time lies in
 * (since, now_ms], where since is last_run_ms, or anchor_ms when last_run_ms
 * is 0 (never ran); however many were missed, that is ONE catch-up run.
 * *next_ms = the first run strictly after now_ms. Returns 0, or CR_ENOENT
 * when there is no run within 5 years after now_ms (*due is still set),
 * CR_EINVAL, CR_ERANGE as cr_schedule_next. All pointers borrowed. */
int cr_schedule_due(const cr_schedule *s, int64_t anchor_ms,
                    int64_t last_run_ms, int64_t now_ms, int *due,
                    int64_t *next_ms);

/* Releases a schedule. NULL is a no-op. */
void cr_schedule_free(cr_schedule *s);

/* Writes a one-line description into buf (caller owned, len bytes, always
 * NUL-terminated when len > 0): "every 1h30m" (normalized) or
 * "cron 0 3 * * * (Europe/Paris)" (fields as written, single spaces).
 * Returns 0, CR_ERANGE when truncated, CR_EINVAL for NULL arguments. */
int cr_schedule_describe(const cr_schedule *s, char *buf, size_t len);

#endif
