/* tz.h: named time zones read from TZif files (the IANA zoneinfo database),
 * UTC <-> local civil time conversion, and proleptic Gregorian calendar
 * arithmetic.
 *
 * No process-global state of libc is used (no TZ/tzset/localtime): a loaded
 * cr_tz is immutable and may be shared by any number of threads. TZif
 * versions 1 to 4 are read; the 64-bit data block is used when present, and
 * the POSIX TZ footer string gives the rules after the last transition
 * (Debian's "slim" files rely on it for every future DST change). Leap-second
 * records are ignored: times are POSIX seconds. */
#ifndef CR_TZ_H
#define CR_TZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct cr_tz cr_tz;

/* A broken-down civil time. month 1-12, day 1-31, hour 0-23, minute 0-59,
 * second 0-59, wday 0-6 with 0 = Sunday. utc_offset is local minus UTC in
 * seconds (+3600 for Paris in winter); isdst is 1 during daylight saving. */
struct cr_civil {
  int year, month, day, hour, minute, second, wday;
  int32_t utc_offset;
  int isdst;
};

/* How cr_tz_from_local resolves local times that do not exist or exist
 * twice. Combine one CR_TZ_GAP_* and one CR_TZ_FOLD_* flag with |; 0 means
 * CR_TZ_GAP_NEXT | CR_TZ_FOLD_EARLIEST. */
enum cr_tz_policy {
  /* Spring-forward gap: the first instant after the gap (the transition
   * itself; 02:30 in a 02:00->03:00 gap gives 03:00 new time). */
  CR_TZ_GAP_NEXT = 0,
  /* Spring-forward gap: read the time with the offset before the gap, which
   * moves it forward by the gap's length (02:30 gives 03:30, like mktime). */
  CR_TZ_GAP_SHIFT = 1,
  /* Fall-back overlap: the first occurrence (the earlier instant). */
  CR_TZ_FOLD_EARLIEST = 0,
  /* Fall-back overlap: the second occurrence (the later instant). */
  CR_TZ_FOLD_LATEST = 2,
};

/* What cr_tz_from_local found for the requested local time. */
enum cr_tz_local_kind {
  CR_TZ_LOCAL_UNIQUE = 0,  /* exists exactly once */
  CR_TZ_LOCAL_GAP = 1,     /* skipped by a spring-forward change */
  CR_TZ_LOCAL_OVERLAP = 2, /* repeated by a fall-back change */
};

/* Seconds accepted by the conversions: about +-31,000 years around 1970.
 * Wider values give CR_ERANGE. */
#define CR_TZ_MAX_SECONDS INT64_C(1000000000000)

/* Sets the zoneinfo directory used by later cr_tz_load calls (copied; NULL
 * restores the default). Without it, the environment variable
 * CONNRUN_ZONEINFO is used when set and non-empty, else /usr/share/zoneinfo.
 * Returns 0, or CR_ERANGE when dir is longer than 4000 bytes. Thread-safe. */
int cr_tz_set_dir(const char *dir);

/* Loads a zone by IANA name ("Europe/Paris"). NULL and "UTC" give the
 * built-in UTC zone without reading any file. Errors, with a message in
 * errbuf (caller owned, errlen bytes, may be NULL): CR_EINVAL for an empty
 * or malformed name (absolute, containing "..", unusual characters),
 * CR_ENOENT for an unknown zone ("unknown time zone \"Europe/Pariss\""),
 * CR_EPARSE for a file that is not valid TZif, CR_EIO for read errors,
 * CR_ENOMEM. name is borrowed; on success *out is owned by the caller and
 * released with cr_tz_free. */
int cr_tz_load(const char *name, cr_tz **out, char *errbuf, size_t errlen);

/* Releases a zone from cr_tz_load. NULL is a no-op. */
void cr_tz_free(cr_tz *tz);

/* The zone's name as given to cr_tz_load ("UTC" for NULL). Borrowed: valid
 * until cr_tz_free. */
const char *cr_tz_name(const cr_tz *tz);

/* Converts UTC seconds since the epoch to local civil time, filling every
 * field of *out (caller owned). Returns 0, CR_EINVAL for NULL arguments or
 * CR_ERANGE when |utc_s| > CR_TZ_MAX_SECONDS. */
int cr_tz_to_local(const cr_tz *tz, int64_t utc_s, struct cr_civil *out);

/* Converts local civil time (year, month, day, hour, minute, second of
 * *local; wday, utc_offset and isdst are ignored) to UTC seconds in *utc_s,
 * resolving gaps and overlaps by policy (enum cr_tz_policy flags). *kind, if
 * not NULL, receives an enum cr_tz_local_kind. Returns 0, CR_EINVAL for
 * NULL arguments or out-of-range fields (February 30, hour 24...) or
 * CR_ERANGE for years beyond CR_TZ_MAX_SECONDS. All pointers borrowed. */
int cr_tz_from_local(const cr_tz *tz, const struct cr_civil *local, int policy,
                     int64_t *utc_s, int *kind);

/* Same as cr_tz_from_local, with the local time given as "local seconds":
 * the civil time's seconds since 1970-01-01T00:00:00 read as if it were UTC
 * (cr__days_from_civil(...) * 86400 + seconds of the day). */
int cr_tz_local_to_utc(const cr_tz *tz, int64_t local_s, int policy,
                       int64_t *utc_s, int *kind);

/* The first instant strictly after utc_s at which the zone's UTC offset or
 * DST flag may change, into *next. Returns 0, CR_ENOENT when the zone has no
 * later change (UTC, fixed-offset zones, zones that stopped DST), CR_EINVAL
 * for NULL arguments, CR_ERANGE for |utc_s| > CR_TZ_MAX_SECONDS. */
int cr_tz_next_transition(const cr_tz *tz, int64_t utc_s, int64_t *next);

/* Proleptic Gregorian calendar (Howard Hinnant's algorithms). Days since
 * 1970-01-01 of a civil date (month 1-12, day 1-31, not validated), and the
 * inverse. Valid for any year that fits an int. */
int64_t cr__days_from_civil(int64_t year, int month, int day);
void cr__civil_from_days(int64_t days, int64_t *year, int *month, int *day);
/* Weekday (0 = Sunday) of a day count since 1970-01-01. */
int cr__weekday_from_days(int64_t days);
/* Days in a month (month 1-12) of a given year, leap years included. */
int cr__days_in_month(int64_t year, int month);

#endif
