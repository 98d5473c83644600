/* diag.c: the diagnostics list (see diag.h). */
#include "config/diag.h"

#include "util/alloc.h"
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cr_diags_init(cr_diags *l) { memset(l, 0, sizeof *l); }

void cr_diags_free(cr_diags *l) {
  if (l == NULL)
    return;
  for (size_t i = 0; i < l->count; i++) {
    cr__free(l->items[i].file);
    cr__free(l->items[i].message);
  }
  cr__free(l->items);
  cr_diags_init(l);
}

static char *vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return NULL;
  char *s = cr__malloc((size_t)n + 1);
  if (s != NULL)
    vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

static int grow(cr_diags *l) {
  if (l->count < l->cap)
    return 0;
  size_t cap = l->cap ? l->cap * 2 : 8;
  struct cr_diag *items = cr__realloc(l->items, cap * sizeof *items);
  if (items == NULL)
    return CR_ENOMEM;
  l->items = items;
  l->cap = cap;
  return 0;
}

int cr_diags_addf(cr_diags *l, const char *file, int line, int column,
                  int severity, const char *fmt, ...) {
  struct cr_diag d = {NULL, line, column, severity, NULL};
  va_list ap;
  va_start(ap, fmt);
  d.message = vformat(fmt, ap);
  va_end(ap);
  if (file != NULL)
    d.file = cr__strdup(file);
  if (d.message == NULL || (file != NULL && d.file == NULL) || grow(l) != 0) {
    cr__free(d.message);
    cr__free(d.file);
    l->nomem = 1;
    return CR_ENOMEM;
  }
  l->items[l->count++] = d;
  return 0;
}

size_t cr_diags_count(const cr_diags *l, int severity) {
  size_t n = 0;
  for (size_t i = 0; l != NULL && i < l->count; i++)
    n += l->items[i].severity == severity;
  return n;
}

static int cmp(const struct cr_diag *a, const struct cr_diag *b) {
  if (a->file == NULL || b->file == NULL) {
    if (a->file != b->file)
      return a->file == NULL ? -1 : 1;
  } else {
    int c = strcmp(a->file, b->file);
    if (c != 0)
      return c;
  }
  if (a->line != b->line)
    return a->line < b->line ? -1 : 1;
  if (a->column != b->column)
    return a->column < b->column ? -1 : 1;
  return 0;
}

void cr_diags_sort(cr_diags *l) {
  /* Insertion sort: stable, no allocation, lists are short. */
  for (size_t i = 1; i < l->count; i++) {
    struct cr_diag d = l->items[i];
    size_t j = i;
    while (j > 0 && cmp(&l->items[j - 1], &d) > 0) {
      l->items[j] = l->items[j - 1];
      j--;
    }
    l->items[j] = d;
  }
}

const char *cr_diag_severity_name(int severity) {
  return severity == CR_DIAG_WARNING ? "warning" : "error";
}

int cr_diag_format(const struct cr_diag *d, char *buf, size_t len) {
  const char *sev = cr_diag_severity_name(d->severity);
  const char *msg = d->message ? d->message : "";
  if (d->file == NULL)
    return snprintf(buf, len, "%s: %s", sev, msg);
  if (d->line <= 0)
    return snprintf(buf, len, "%s: %s: %s", d->file, sev, msg);
  return snprintf(buf, len, "%s:%d:%d: %s: %s", d->file, d->line, d->column,
                  sev, msg);
}
