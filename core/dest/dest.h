/* dest.h: destinations, where a work's records go (the "write" side of a
 * sync). One interface, variants behind a table of functions, one file per
 * variant: dest_jsonl.c (JSON lines files) and dest_sqlite.c (a SQLite
 * database). dest.c owns the dispatch and the factory.
 *
 * Durability contract (at-least-once, no gaps): cr_dest_write() only buffers.
 * A record is durable once a later cr_dest_flush() has returned 0; only then
 * may the caller commit the plugin checkpoint that followed it. Unflushed
 * records may be lost (crash, cr_dest_close(), a failed flush) and must be
 * re-emitted by the plugin from its last committed checkpoint.
 *
 * Stream names must be safe file names: 1..128 bytes of [A-Za-z0-9_.-], not
 * starting with '.'. Anything else is CR_EINVAL.
 *
 * After any CR_EIO / CR_ESTORE from write or flush the destination is failed:
 * every later write/flush returns the same error; close it and reopen (the
 * reopen discards what was never flushed, e.g. a torn last line).
 *
 * A cr_dest is not thread-safe: use it from one thread at a time. */
#ifndef CR_DEST_H
#define CR_DEST_H

#include <stddef.h>
#include <stdint.h>

#include <connrun/plugin.h>

#include "config/config.h"
#include "util/log.h"
#include "util/redact.h"

typedef struct cr_dest cr_dest;

/* A stream's description. All pointers are borrowed for the call only (the
 * destination copies what it keeps). primary_key lists top-level field
 * names of the record object; n_primary_key == 0 means none. */
struct cr_dest_stream {
  const char *name;
  const char *const *primary_key;
  size_t n_primary_key;
};

/* Opens (creating, mkdir -p, 0755) the directory dir (borrowed) as a JSON
 * lines destination: one file <dir>/<stream>.jsonl per stream, appended to,
 * one record per line. On success *out is a new destination the caller
 * releases with cr_dest_close(). Errors: CR_EINVAL (NULL/empty dir),
 * CR_EIO (cannot create/open dir), CR_ENOMEM. errbuf (caller-owned, may be
 * NULL) gets a message on failure. */
int cr_dest_open_jsonl(const char *dir, cr_dest **out, char *errbuf,
                       size_t errlen);

/* Opens dir as a JSON lines destination whose records another process
 * writes: a worker given the directory in its JOB (wire.h dest_dir) writes
 * them with its own cr_dest_open_jsonl and reports each stream's count.
 * This side never writes, creates or repairs a file: it learns what was
 * written with cr_dest_written() and makes it durable with cr_dest_flush()
 * or cr_dest_drain_fds() as for any jsonl destination, by fsync()ing the
 * stream files (and the directory) through its own descriptors. That is
 * enough on Linux, where fsync() writes back the file's pages whatever
 * descriptor wrote them (PostgreSQL's checkpointer relies on the same).
 * cr_dest_write and cr_dest_write_lines answer CR_ENOTSUP. Arguments and
 * errors as cr_dest_open_jsonl. */
int cr_dest_open_jsonl_synced(const char *dir, cr_dest **out, char *errbuf,
                              size_t errlen);

/* Opens (creating) the SQLite database at path (borrowed) as a destination:
 * one table "stream_<name>" per stream, WAL journal, synchronous=FULL (see
 * dest_sqlite.c for why). The parent directory is created if missing.
 * Stream names differing only by case are refused within one session
 * (SQLite table names ignore case).
 * *out as for cr_dest_open_jsonl. Errors: CR_EINVAL, CR_EIO, CR_ESTORE,
 * CR_ENOMEM. */
int cr_dest_open_sqlite(const char *path, cr_dest **out, char *errbuf,
                        size_t errlen);

/* Records a plugin destination buffers per stream before calling write(). */
#define CR_DEST_PLUGIN_BATCH 500
#define CR_DEST_PLUGIN_BATCH_BYTES ((size_t)4 * 1024 * 1024)

/* Opens a plugin destination (dest_plugin.c): records go to desc's write()
 * (desc borrowed, must outlive d, needs CR_PLUGIN_CAP_WRITE) in batches per
 * stream; see CR_DEST_PLUGIN_BATCH. An instance is created with params
 * (borrowed for the call; the plugin copies what it keeps); rd (borrowed,
 * may be NULL) redacts the plugin's logs and errors. A write() failure
 * fails the destination with CR_EIO and the plugin's message. Errors:
 * CR_EINVAL (no write capability), CR_EPLUGIN (create failed), CR_ENOMEM. */
int cr_dest_open_plugin(const struct cr_plugin_descriptor *desc,
                        const struct cr_plugin_params *params,
                        const cr_redactor *rd, cr_dest **out, char *errbuf,
                        size_t errlen);

/* Factory: opens the destination a work's config describes (cfg borrowed).
 * jsonl and sqlite need cfg->path; CR_DEST_PLUGIN is CR_ENOTSUP here (plugin
 * destinations belong to the plugin host). Errors as the variants, and
 * CR_EINVAL for an unknown type or missing path. */
int cr_dest_open(const struct cr_config_destination *cfg, cr_dest **out,
                 char *errbuf, size_t errlen);

/* Declares a stream before its first record (optional). jsonl ignores the
 * primary key; sqlite uses it to upsert (a stream never declared, or declared
 * without a key, appends). Errors: CR_EINVAL (bad name / key field name),
 * CR_ESTATE (stream already declared or written to with a different key),
 * CR_ESCHEMA (sqlite: the existing table has the other shape), CR_ESTORE,
 * CR_ENOMEM. s and everything it points to are borrowed. */
int cr_dest_declare_stream(cr_dest *d, const struct cr_dest_stream *s);

/* Buffers one record: json (borrowed, len bytes, need not be NUL-terminated)
 * for stream (borrowed, NUL-terminated). The text is stored exactly as given.
 * Errors: CR_EINVAL (bad stream name; empty record; a raw '\n' in json;
 * sqlite with a primary key: not a JSON object or a key field missing or null
 * -- the field is named in cr_dest_last_error()), CR_ERANGE (sqlite: record
 * over 2 GiB), CR_ESCHEMA (sqlite: first record of an undeclared stream whose
 * existing table has a primary key), CR_EIO / CR_ESTORE (the destination is
 * failed), CR_EBUSY, CR_ENOMEM. A refused record changes nothing. */
int cr_dest_write(cr_dest *d, const char *stream, const char *json, size_t len);

/* Buffers count records of one stream given as JSON lines: lines (borrowed,
 * len bytes) holds count records, each non-empty and ending in '\n' (the
 * worker's RECORDS batch, wire.h). The same as count cr_dest_write() calls,
 * in one: jsonl takes the block as it is; the other variants get the
 * records one by one. Errors: as cr_dest_write, and CR_EINVAL when len or
 * count is 0 or lines does not end in '\n'. jsonl trusts count (the
 * caller's own framing); the others check it against the lines (CR_EINVAL
 * when they differ, after the records before the difference). */
int cr_dest_write_lines(cr_dest *d, const char *stream, const char *lines,
                        size_t len, uint64_t count);

/* Notes that count records of stream (borrowed, NUL-terminated) were
 * written to d's file by another process and handed to the kernel: the
 * file is opened by the stream's first note and fsync()ed by the next
 * flush or drain; the records are counted. Only for a destination from
 * cr_dest_open_jsonl_synced (CR_ENOTSUP otherwise). Errors: CR_EINVAL (bad
 * stream name), CR_EIO (the file cannot be opened: the writer did not
 * create it), CR_ENOMEM. */
int cr_dest_written(cr_dest *d, const char *stream, uint64_t count);

/* Makes every record written so far durable. jsonl: writes the buffers,
 * fsync()s each file touched since the last flush, and the directory when a
 * file was created. sqlite: COMMITs the open transaction (synchronous=FULL).
 * Returns 0 when there was nothing to do. Errors: CR_EIO, CR_ESTORE,
 * CR_EBUSY (sqlite locked by another writer), CR_ENOMEM. */
int cr_dest_flush(cr_dest *d);

/* The first half of cr_dest_flush, for a caller that fsync()s elsewhere
 * (exec_ckpt.h: on another thread, while records keep coming): writes
 * every buffered record to the kernel and puts in fds (max entries, owned
 * by d: valid until cr_dest_close; *n set) the descriptors that a flush
 * would fsync() now; d counts them as flushed from then on, so the caller
 * must fsync() every one before it treats the records as durable. jsonl
 * only. Errors: CR_ENOTSUP (another variant, or more than max descriptors:
 * nothing was done, use cr_dest_flush), CR_EIO, CR_EINVAL. */
int cr_dest_drain_fds(cr_dest *d, int *fds, size_t max, size_t *n);

/* Records accepted by cr_dest_write() since open (flushed or not). */
int64_t cr_dest_records(const cr_dest *d);

/* Records a plugin destination's provider rejected one by one (reported
 * by write() with api->record_failed, ABI 1.2) since open: not delivered,
 * not retried, each logged. 0 for the other variants and for NULL. */
int64_t cr_dest_records_failed(const cr_dest *d);

/* Sends d's log lines (a plugin destination: one WARN per rejected record
 * and the plugin's own lines, redacted) to fn with ud (both borrowed, must
 * outlive d; fn NULL: no log). No-op for NULL d. */
void cr_dest_set_log(cr_dest *d, cr_log_fn fn, void *ud);

/* Message describing the most recent error on d ("" if none yet; not
 * cleared by later successes). Borrowed: valid until the next call on d.
 * Never NULL. */
const char *cr_dest_last_error(const cr_dest *d);

/* Closes d (NULL is a no-op). NO implicit flush: records written since the
 * last successful cr_dest_flush() are treated exactly as after a crash:
 * sqlite rolls them back; jsonl drops its user-space buffers, but records
 * that already went to the file when a buffer filled up stay there
 * (unsynced). So unflushed records may be lost or present; replay from the
 * last committed checkpoint can therefore duplicate them (at-least-once). */
void cr_dest_close(cr_dest *d);

#endif
