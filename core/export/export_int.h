/* export_int.h: the export table backend interface (internal to
 * core/export/): struct cr_export_table, which every backend's table object
 * starts with, and the backends' open functions. */
#ifndef CR_EXPORT_INT_H
#define CR_EXPORT_INT_H

#include "export/export_table.h"

struct cr_export_table_ops {
  const char *kind;
  int (*write)(cr_export_table *t, const struct cr_event_rec *ev, size_t n,
               size_t *inserted, char *errbuf, size_t errlen);
  void (*close)(cr_export_table *t);
};

struct cr_export_table {
  const struct cr_export_table_ops *ops;
};

/* path and table borrowed; table already checked as an identifier. */
int cr__export_sqlite_open(const char *path, const char *table,
                           cr_export_table **out, char *errbuf, size_t errlen);
/* url (with its password) and table borrowed. */
int cr__export_pg_open(const char *url, const char *table,
                       cr_export_table **out, char *errbuf, size_t errlen);

/* snprintf into errbuf (NULL-safe). */
void cr__export_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
