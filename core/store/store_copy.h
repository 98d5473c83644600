/* store_copy.h: copying a whole store into another (`connrun store
 * migrate`): a single-machine SQLite installation into a new PostgreSQL
 * database, or any SQL store into an empty one of the other kind. */
#ifndef CR_STORE_COPY_H
#define CR_STORE_COPY_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* What cr_store_copy copied and checked. */
struct cr_store_copy_report {
  size_t tables;    /* tables copied */
  int64_t rows;     /* rows copied in all */
  int64_t events;   /* of which events */
  int64_t subjects; /* event subjects whose sequences were compared */
};

/* Copies every table of from into to (both borrowed, both open SQL stores
 * at the same schema version) in one transaction of to, then verifies
 * that each table has as many rows on both sides and that every event
 * subject has the same events with the same sequence numbers and the same
 * last sequence; the ids sequences of to continue after the copied ids.
 * Instance heartbeats and duties (a running cluster's state) are not
 * copied. Refuses (CR_EEXIST) a target with any authorization, work,
 * execution, event, runner or subscription in it, and changes nothing then.
 * report (may be NULL) is filled on success. Errors: CR_EINVAL, CR_EEXIST,
 * CR_ESTORE (with errbuf, errlen bytes: which table or subject differs),
 * CR_ENOMEM. */
int cr_store_copy(cr_store *from, cr_store *to,
                  struct cr_store_copy_report *report, char *errbuf,
                  size_t errlen);

#endif
