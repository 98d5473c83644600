/* store_sql.h: the SQL store backends' entry points (internal to the
 * core and its tests): opening a database file, the schema version it
 * migrates to, and test hooks (open at an older schema version, run raw SQL).
 * No SQLite or libpq type appears here; only store_sql*.c and sql/ know SQL. */
#ifndef CR_STORE_SQL_H
#define CR_STORE_SQL_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* Opens (creating if needed) the SQLite database at path (borrowed; its
 * directory must exist; ":memory:" gives a private in-memory database) and
 * migrates it to cr__store_sqlite_latest_version(). Same results as
 * cr_store_open. */
int cr__store_sqlite_open(const char *path, cr_store **out, char *errbuf,
                          size_t errlen);

/* Opens the PostgreSQL database at url (borrowed; a libpq connection URL,
 * postgresql://user:password@host:port/db?...) and migrates it to the latest
 * version. The URL's password never appears in errbuf. Same results as
 * cr_store_open. */
int cr__store_pg_open(const char *url, cr_store **out, char *errbuf,
                      size_t errlen);

/* The schema version this build migrates to. */
int cr__store_sqlite_latest_version(void);

/* Test hook: like cr__store_sqlite_open but migrates only up to version
 * (0..latest; 0 leaves an empty database), to build databases as an older
 * connrun left them. Operations on tables the version lacks fail with
 * CR_ESTORE. CR_EINVAL for a version out of range. */
int cr__store_sqlite_open_at_version(const char *path, int version,
                                     cr_store **out, char *errbuf,
                                     size_t errlen);

/* Test hook: runs sql (borrowed; one or more statements) on s, which must be
 * an SQLite store (CR_ENOTSUP otherwise). Errors map like any store call. */
int cr__store_sqlite_exec(cr_store *s, const char *sql);

/* Test hook: runs sql (borrowed; one statement) and stores the first column
 * of its first row in *out as an integer (0 when the value is NULL).
 * CR_ENOENT when it returns no row. */
int cr__store_sqlite_query_int(cr_store *s, const char *sql, int64_t *out);

/* Test hook: as cr__store_sqlite_query_int, copying the first column as text
 * into buf (len bytes, caller owned, always NUL-terminated; "" for NULL). */
int cr__store_sqlite_query_text(cr_store *s, const char *sql, char *buf,
                                size_t len);

#endif
