/* export_table.h: a table that system events are exported into (the
 * table_system_events workflow and `connrun events export --to`), with one
 * backend per kind of database in this folder: export_sqlite.c (a SQLite
 * file) and export_pg.c (PostgreSQL through libpq).
 *
 * The table has the columns id (the event id, primary key), at (the event's
 * time), subject_type, subject_id, verb, actor, seq (per-subject sequence)
 * and data (the event's JSON): in PostgreSQL bigint, timestamptz, text,
 * text, text, text, bigint, jsonb; in SQLite INTEGER, TEXT (RFC 3339 UTC
 * with milliseconds), TEXT, TEXT, TEXT, TEXT, INTEGER, TEXT (JSON). It is
 * created when missing and checked when present (a missing column or
 * another type is an error naming it). Writes are idempotent by event id: a
 * batch written twice (a retry after a crash) adds no row the second time.
 *
 * Not thread-safe: one thread uses a table at a time. */
#ifndef CR_EXPORT_TABLE_H
#define CR_EXPORT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct cr_export_table cr_export_table;

/* Opens the destination url (borrowed: "sqlite:/path/file.db" or
 * "postgresql://..."), creates table (borrowed: a plain identifier) if
 * missing or checks it. Errors: CR_EINVAL (unknown URL scheme, bad table
 * name), CR_ECONFIG (the table exists with other columns), CR_EIO (cannot
 * connect or open), CR_ENOMEM; errbuf gets a message that never contains
 * the URL's password. */
int cr_export_table_open(const char *url, const char *table,
                         cr_export_table **out, char *errbuf, size_t errlen);

/* Writes ev[0..n) (borrowed) in one transaction of the destination, rows
 * already there (same id) left as they are. *inserted (may be NULL) gets
 * the number of new rows. Errors: CR_EIO (the destination failed: the
 * transaction is rolled back; the connection is re-opened on the next
 * call), CR_ENOMEM; errbuf gets why. */
int cr_export_table_write(cr_export_table *t, const struct cr_event_rec *ev,
                          size_t n, size_t *inserted, char *errbuf,
                          size_t errlen);

/* "sqlite" or "postgresql". Static string. */
const char *cr_export_table_kind(const cr_export_table *t);

/* Closes t (NULL is fine). */
void cr_export_table_close(cr_export_table *t);

/* Writes url (borrowed) into buf without its password (user:***@host), for
 * messages. */
void cr_export_url_redact(const char *url, char *buf, size_t len);

/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-12-05T05:19:04.123Z") into buf (at least 32 bytes). */
void cr_export_format_time(int64_t ms, char *buf, size_t len);

#endif
