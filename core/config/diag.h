/* diag.h: diagnostics: located error and warning messages collected while
 * checking an input (the configuration), so every problem is reported in one
 * run instead of the first one only.
 *
 * The library never prints: callers iterate the list and print, e.g. with
 * cr_diag_format(). Usage:
 *
 *   cr_diags d;
 *   cr_diags_init(&d);
 *   ... cr_config_load(path, &cfg, &d) ...
 *   cr_diags_sort(&d);
 *   for (size_t i = 0; i < d.count; i++) print(&d.items[i]);
 *   cr_diags_free(&d);
 */
#ifndef CR_DIAG_H
#define CR_DIAG_H

#include <stddef.h>

enum cr_diag_severity {
  CR_DIAG_ERROR = 0,
  CR_DIAG_WARNING = 1,
};

/* One diagnostic. file and message are owned by the list. line and column
 * are 1-based; 0 means "no position" (the whole file, or no file at all when
 * file is NULL). */
struct cr_diag {
  char *file;
  int line;
  int column;
  int severity; /* enum cr_diag_severity */
  char *message;
};

/* A growable list. Initialise with cr_diags_init (or = CR_DIAGS_INIT) and
 * release with cr_diags_free. items[0..count) are readable directly.
 * nomem is set once an append failed for lack of memory (the diagnostic is
 * lost); cr_diags_addf then also returned CR_ENOMEM. */
typedef struct cr_diags {
  struct cr_diag *items;
  size_t count;
  size_t cap;
  int nomem;
} cr_diags;

#define CR_DIAGS_INIT                                                          \
  { NULL, 0, 0, 0 }

/* Empties a list structure (no allocation). */
void cr_diags_init(cr_diags *l);

/* Frees every diagnostic and the array; the list is empty and reusable
 * afterwards. NULL is a no-op. */
void cr_diags_free(cr_diags *l);

/* Appends a diagnostic. file (may be NULL) is copied; the message is
 * formatted printf-style and copied. Returns 0 or CR_ENOMEM (and sets
 * l->nomem). */
int cr_diags_addf(cr_diags *l, const char *file, int line, int column,
                  int severity, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Number of diagnostics of the given severity. */
size_t cr_diags_count(const cr_diags *l, int severity);

/* Sorts by file name, line, column; stable (equal positions keep their
 * insertion order). Diagnostics without a file come first. */
void cr_diags_sort(cr_diags *l);

/* The severity word: "error" or "warning" (static). */
const char *cr_diag_severity_name(int severity);

/* Writes "FILE:LINE:COLUMN: error: message" into buf (len bytes, caller
 * owned, always NUL-terminated when len > 0); "FILE: error: message" when
 * line is 0 and "error: message" when file is NULL. Returns the length the
 * full text needs (like snprintf), so a result >= len means truncated. */
int cr_diag_format(const struct cr_diag *d, char *buf, size_t len);

#endif
