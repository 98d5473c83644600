/* ctl_int.h: helpers shared by the control files (ctl_*.c). */
#ifndef CR_CTL_INT_H
#define CR_CTL_INT_H

#include <jansson.h>

#include "config/yamljson.h"
#include "control/control.h"
#include "events/vocab.h"

/* c->now_ms, or the wall clock. */
int64_t cr__ctl_now(const struct cr_ctl *c);
/* "config" or "api" for the definition at mk (API objects are marked in
 * the file "api"). New reference. */
json_t *cr__ctl_managed_by(const struct cr_mark *mk);
/* "FILE:LINE" of mk into where (300 bytes): a new JSON string, or null for
 * API objects. */
json_t *cr__ctl_declared_at(const struct cr_mark *mk, char *where);
/* 1 when the definition at mk comes from the API. */
int cr__ctl_is_api(const struct cr_mark *mk);

#endif
