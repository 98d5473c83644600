/* jsonlimits.h: parsing untrusted JSON text (REST request bodies) with
 * limits, so a hostile body costs little and is refused with a located,
 * machine-readable reason.
 *
 * Checked in this order: the size (before anything is read), then one cheap
 * byte scan that respects strings and escapes for the nesting depth and NUL
 * bytes (before jansson sees the text, so a deep body never reaches its
 * recursive parser), then jansson with JSON_REJECT_DUPLICATES (which also
 * refuses invalid UTF-8 and \u0000). Error messages never quote the input
 * (a body may hold secrets): jansson's "near '...'" context is dropped. */
#ifndef CR_JSONLIMITS_H
#define CR_JSONLIMITS_H

#include <jansson.h>
#include <stddef.h>

/* Defaults, used when the matching argument is 0: 1 MiB of text, and 64
 * levels of arrays and objects (a top-level object is level 1). jansson
 * refuses more than 2048 levels whatever max_depth says. */
#define CR_JSON_MAX_SIZE (1u << 20)
#define CR_JSON_MAX_DEPTH 64

/* Why a text was refused. code is a static string:
 *   "too_large"      more than max_size bytes (line 0, offset = max_size)
 *   "too_deep"       nested deeper than max_depth (at the '[' or '{')
 *   "nul_byte"       a NUL byte, or a \u0000 escape
 *   "invalid_utf8"   not UTF-8
 *   "duplicate_key"  an object has the same key twice
 *   "malformed_json" any other syntax error (or a number out of range)
 *   "no_memory"      out of memory (line 0; jansson reports a failed copy
 *                    of a string token as a syntax error: "malformed_json")
 * line and column are 1-based (column in characters, as jansson counts) and
 * offset is the 0-based byte offset of the problem; for errors found by
 * jansson, the last byte it read. message is e.g. "JSON nested deeper than
 * 64 levels at line 1, column 65 (byte 64)". */
struct cr_json_error {
  const char *code;
  int line;
  int column;
  size_t offset;
  char message[256];
};

/* Parses text (len bytes, borrowed, need not be NUL-terminated) as one JSON
 * value of any type. max_size and max_depth of 0 mean CR_JSON_MAX_SIZE and
 * CR_JSON_MAX_DEPTH. On success returns 0 and *out is a new reference the
 * caller releases with json_decref. Otherwise *out is NULL, *err (caller
 * owned) says why, and the result is CR_ELIMIT (too_large, too_deep),
 * CR_EPARSE (the other refusals) or CR_ENOMEM (no_memory); CR_EINVAL when
 * out or err is NULL, or text is NULL with len > 0. Allocates only through
 * jansson's allocator. */
int cr_json_parse_limited(const char *text, size_t len, size_t max_size,
                          int max_depth, json_t **out,
                          struct cr_json_error *err);

#endif
