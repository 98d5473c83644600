/* event_tpl.h: Jsonnet event templates. A subscription's json_template is
 * Jsonnet code that turns one system event (bound as the free variable
 * `event`) into the body of the webhook POST.
 *
 * The template is evaluated as the body of a top-level function whose
 * parameter is `event`; the wrapper sits on the template's first line, so
 * error positions are reported in the template's own lines and columns.
 * Imports (import, importstr, importbin) are refused: a template cannot read
 * files. The stack is bounded (CR_EVENT_TPL_MAX_STACK); CPU time is not: a
 * template that loops for long blocks its caller (the delivery engine should
 * bound it from outside if that matters). libjsonnet aborts the process when
 * it runs out of memory (its allocator cannot fail). Numbers go through
 * Jsonnet doubles: integers beyond 2^53 lose precision. */
#ifndef CR_EVENT_TPL_H
#define CR_EVENT_TPL_H

#include <jansson.h>
#include <stddef.h>

#include "store/store.h" /* struct cr_event_rec */

/* Most nested calls one evaluation may make. */
#define CR_EVENT_TPL_MAX_STACK 500

typedef struct cr_event_tpl cr_event_tpl;

/* Compiles tpl (borrowed) without an event: syntax and static checks (e.g.
 * an unknown variable); the template is not evaluated. Returns 0, or
 * CR_EPARSE with *line and *col (1-based, inside the template text; either
 * may be NULL; 0 when Jsonnet gave no position) and "line L, column C:
 * message" in errbuf (caller-owned, errlen bytes; may be NULL/0). CR_EINVAL
 * when tpl is NULL. */
int cr_event_tpl_check(const char *tpl, int *line, int *col, char *errbuf,
                       size_t errlen);

/* Creates a renderer for tpl (copied), checked as cr_event_tpl_check does.
 * *out receives it (transferred; free with cr_event_tpl_free). It owns a
 * Jsonnet VM: use it from one thread at a time. Returns 0, CR_EINVAL,
 * CR_ENOMEM or CR_EPARSE (message in errbuf as for check). */
int cr_event_tpl_new(const char *tpl, cr_event_tpl **out, char *errbuf,
                     size_t errlen);

/* Evaluates the template with `event` bound to event (borrowed; a JSON
 * object, usually from cr_event_tpl_binding). *body_out receives the output
 * JSON text as Jsonnet prints it (pretty-printed, without the trailing
 * newline; any JSON value, e.g. "\"x\"" for the template "x"), allocated
 * with cr__malloc and freed by the caller with cr__free. Runtime errors (a
 * missing field, a failed assertion, error "x", a function as output, stack
 * overflow, an import) give CR_EPARSE with "line L, column C: message" (the
 * innermost template position of the trace) or the bare Jsonnet message in
 * errbuf. Also CR_EINVAL, CR_ENOMEM. */
int cr_event_tpl_render(cr_event_tpl *t, const json_t *event, char **body_out,
                        char *errbuf, size_t errlen);

/* Frees a renderer (NULL is a no-op). */
void cr_event_tpl_free(cr_event_tpl *t);

/* The object bound as `event` (and sent as the body when there is no
 * template) for the stored event e (borrowed) in account account_id
 * (borrowed; host.account_id; NULL gives null):
 *   {"id", "at" (RFC 3339 UTC with milliseconds), "subject_type",
 *    "subject_id", "verb", "actor" (null when absent), "seq",
 *    "data": {...e->data_json's members, "subject_type", "subject_id",
 *             "verb", "aid": account_id}}
 * The event's own data members win over the added subject_type, subject_id
 * and verb; "aid" is always the account id. A data_json that is absent or
 * not a JSON object counts as {}. Returns a new reference (json_decref), or
 * NULL when out of memory. */
json_t *cr_event_tpl_binding(const struct cr_event_rec *e,
                             const char *account_id);

/* The text of cr_event_tpl_binding(e, account_id) (the body sent without a
 * template), written directly: e->data_json's members are copied as they
 * are stored, so nothing is parsed or built (and numbers jansson cannot
 * hold, such as integers beyond 64 bits, survive). Falls back to building the
 * binding with jansson when data_json is not a plain object or already has
 * one of the added members. *body_out receives the text (transferred; free
 * with cr__free). Returns 0, CR_EINVAL (e or body_out NULL) or CR_ENOMEM
 * (also for a string that is not UTF-8, which the binding cannot hold). */
int cr_event_tpl_body(const struct cr_event_rec *e, const char *account_id,
                      char **body_out);

#endif
