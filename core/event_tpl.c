/* event_tpl.c: Jsonnet event templates: checking, rendering and the `event`
 * binding of a stored event (see event_tpl.h). */
#include "event_tpl.h"

#include <libjsonnet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "error.h"

/* The template becomes the body of a top-level function. The prefix stays on
 * line 1 so the template's line numbers are unchanged (columns on line 1
 * shift by its length). cr__check_only=true compiles without evaluating. */
#define TPL_PREFIX                                                             \
  "function(event=null, cr__check_only=false) "                                \
  "if cr__check_only then null else "
#define TPL_FILE "template"
#define TPL_MAX_TRACE 20

struct cr_event_tpl {
  struct JsonnetVm *vm;
  char *code; /* TPL_PREFIX + template */
};

static char *refuse_import(void *ctx, const char *base, const char *rel,
                           char **found_here, int *success) {
  static const char msg[] = "imports are not allowed in event templates";
  char *r = jsonnet_realloc(ctx, NULL, sizeof msg);
  (void)base;
  (void)rel;
  (void)found_here;
  memcpy(r, msg, sizeof msg);
  *success = 0;
  return r;
}

static struct JsonnetVm *make_vm(void) {
  struct JsonnetVm *vm = jsonnet_make();
  if (vm == NULL)
    return NULL;
  jsonnet_max_stack(vm, CR_EVENT_TPL_MAX_STACK);
  jsonnet_max_trace(vm, TPL_MAX_TRACE);
  jsonnet_import_callback(vm, refuse_import, vm);
  return vm;
}

static char *wrap(const char *tpl) {
  size_t np = strlen(TPL_PREFIX), nt = strlen(tpl);
  char *code = cr__malloc(np + nt + 1);
  if (code == NULL)
    return NULL;
  memcpy(code, TPL_PREFIX, np);
  memcpy(code + np, tpl, nt + 1);
  return code;
}

/* Parses "template:L:C", "template:L:C-C2" or "template:(L:C)-(L2:C2)" at p
 * into template coordinates; returns the end of the location or NULL. */
static const char *parse_loc(const char *p, int *line, int *col) {
  char *end;
  if (strncmp(p, TPL_FILE ":", sizeof TPL_FILE) != 0)
    return NULL;
  p += sizeof TPL_FILE;
  if (*p == '(')
    p++;
  long l = strtol(p, &end, 10);
  if (end == p || *end != ':')
    return NULL;
  p = end + 1;
  long c = strtol(p, &end, 10);
  if (end == p || l < 1 || l > 1000000000 || c < 1 || c > 1000000000)
    return NULL;
  if (l == 1)
    c -= (long)strlen(TPL_PREFIX);
  *line = (int)l;
  *col = c < 1 ? 1 : (int)c;
  return end + strcspn(end, " \t\n");
}

/* Turns a libjsonnet error text into template coordinates and
 * "line L, column C: message" (or the bare message) in errbuf. */
static void report(const char *text, int *line_out, int *col_out, char *errbuf,
                   size_t errlen) {
  int line = 0, col = 0;
  const char *msg = text;
  if (strncmp(msg, "STATIC ERROR: ", 14) == 0) {
    msg += 14;
    const char *end = parse_loc(msg, &line, &col);
    if (end != NULL && end[-1] == ':')
      msg = end + (*end == ' ');
  } else if (strncmp(msg, "RUNTIME ERROR: ", 15) == 0) {
    msg += 15;
    for (const char *p = strstr(msg, "\n\t"); p != NULL && line == 0;
         p = strstr(p + 1, "\n\t"))
      parse_loc(p + 2, &line, &col);
  }
  int n = (int)strcspn(msg, "\n");
  if (line_out != NULL)
    *line_out = line;
  if (col_out != NULL)
    *col_out = col;
  if (errbuf == NULL || errlen == 0)
    return;
  if (line > 0)
    snprintf(errbuf, errlen, "line %d, column %d: %.*s", line, col, n, msg);
  else
    snprintf(errbuf, errlen, "%.*s", n, msg);
}

/* Evaluates code in vm; 0 with *out (jsonnet_realloc'd) or CR_EPARSE. */
static int eval(struct JsonnetVm *vm, const char *code, char **out, int *line,
                int *col, char *errbuf, size_t errlen) {
  int err = 0;
  char *r = jsonnet_evaluate_snippet(vm, TPL_FILE, code, &err);
  if (err) {
    report(r != NULL ? r : "evaluation failed", line, col, errbuf, errlen);
    jsonnet_realloc(vm, r, 0);
    return CR_EPARSE;
  }
  *out = r;
  return 0;
}

static int compile(struct JsonnetVm *vm, const char *code, int *line, int *col,
                   char *errbuf, size_t errlen) {
  char *r = NULL;
  jsonnet_tla_code(vm, "cr__check_only", "true");
  int rc = eval(vm, code, &r, line, col, errbuf, errlen);
  jsonnet_tla_code(vm, "cr__check_only", "false");
  jsonnet_realloc(vm, r, 0);
  return rc;
}

int cr_event_tpl_check(const char *tpl, int *line, int *col, char *errbuf,
                       size_t errlen) {
  if (line != NULL)
    *line = 0;
  if (col != NULL)
    *col = 0;
  if (tpl == NULL)
    return CR_EINVAL;
  char *code = wrap(tpl);
  if (code == NULL)
    return CR_ENOMEM;
  struct JsonnetVm *vm = make_vm();
  int rc = CR_ENOMEM;
  if (vm != NULL) {
    rc = compile(vm, code, line, col, errbuf, errlen);
    jsonnet_destroy(vm);
  }
  cr__free(code);
  return rc;
}

int cr_event_tpl_new(const char *tpl, cr_event_tpl **out, char *errbuf,
                     size_t errlen) {
  if (out == NULL)
    return CR_EINVAL;
  *out = NULL;
  if (tpl == NULL)
    return CR_EINVAL;
  cr_event_tpl *t = cr__calloc(1, sizeof *t);
  if (t == NULL)
    return CR_ENOMEM;
  int rc = CR_ENOMEM;
  t->code = wrap(tpl);
  if (t->code == NULL || (t->vm = make_vm()) == NULL)
    goto fail;
  rc = compile(t->vm, t->code, NULL, NULL, errbuf, errlen);
  if (rc != 0)
    goto fail;
  *out = t;
  return 0;
fail:
  cr_event_tpl_free(t);
  return rc;
}

int cr_event_tpl_render(cr_event_tpl *t, const json_t *event, char **body_out,
                        char *errbuf, size_t errlen) {
  if (body_out != NULL)
    *body_out = NULL;
  if (t == NULL || event == NULL || body_out == NULL)
    return CR_EINVAL;
  char *ev = json_dumps(event, JSON_COMPACT | JSON_ENCODE_ANY);
  if (ev == NULL)
    return CR_ENOMEM;
  json_malloc_t jmalloc;
  json_free_t jfree;
  json_get_alloc_funcs(&jmalloc, &jfree);
  jsonnet_tla_code(t->vm, "event", ev);
  jfree(ev);
  char *r = NULL;
  int rc = eval(t->vm, t->code, &r, NULL, NULL, errbuf, errlen);
  jsonnet_tla_code(t->vm, "event", "null");
  if (rc != 0)
    return rc;
  size_t n = strlen(r);
  while (n > 0 && r[n - 1] == '\n')
    n--;
  *body_out = cr__strndup(r, n);
  jsonnet_realloc(t->vm, r, 0);
  return *body_out != NULL ? 0 : CR_ENOMEM;
}

void cr_event_tpl_free(cr_event_tpl *t) {
  if (t == NULL)
    return;
  if (t->vm != NULL)
    jsonnet_destroy(t->vm);
  cr__free(t->code);
  cr__free(t);
}

/* ---- binding ------------------------------------------------------------ */

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for ms since the epoch. */
static void rfc3339_ms(int64_t ms, char *buf, size_t len) {
  int64_t s = ms / 1000, r = ms % 1000;
  if (r < 0) {
    r += 1000;
    s--;
  }
  time_t tt = (time_t)s;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL)
    memset(&tm, 0, sizeof tm);
  snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)r);
}

static json_t *str_or_null(const char *s) {
  return s != NULL ? json_string(s) : json_null();
}

/* Sets o[k] = v (stolen); -1 when v is NULL or the set fails. */
static int put(json_t *o, const char *k, json_t *v) {
  return v != NULL ? json_object_set_new(o, k, v) : -1;
}

/* Sets o[k] = str(s) unless o already has k. */
static int put_default(json_t *o, const char *k, const char *s) {
  return json_object_get(o, k) != NULL ? 0 : put(o, k, str_or_null(s));
}

/* e->data_json as a new object ({} when absent or not an object); NULL when
 * out of memory. jansson reports running out of memory while parsing as a
 * syntax error, so a failed parse is retried once: a second failure means
 * the text is not JSON. */
static json_t *load_data(const char *text) {
  json_t *d = NULL;
  for (int i = 0; text != NULL && d == NULL && i < 2; i++)
    d = json_loads(text, 0, NULL);
  if (json_is_object(d))
    return d;
  json_decref(d);
  return json_object();
}

json_t *cr_event_tpl_binding(const struct cr_event_rec *e,
                             const char *account_id) {
  char at[64];
  if (e == NULL)
    return NULL;
  json_t *b = json_object(), *data = load_data(e->data_json);
  if (b == NULL || data == NULL)
    goto fail;
  rfc3339_ms(e->at, at, sizeof at);
  if (put_default(data, "subject_type", e->subject_type) ||
      put_default(data, "subject_id", e->subject_id) ||
      put_default(data, "verb", e->verb) ||
      put(data, "aid", str_or_null(account_id)))
    goto fail;
  if (put(b, "id", json_integer(e->id)) || put(b, "at", json_string(at)) ||
      put(b, "subject_type", str_or_null(e->subject_type)) ||
      put(b, "subject_id", str_or_null(e->subject_id)) ||
      put(b, "verb", str_or_null(e->verb)) ||
      put(b, "actor", str_or_null(e->actor)) ||
      put(b, "seq", json_integer(e->seq)))
    goto fail;
  if (json_object_set_new(b, "data", data) != 0) {
    json_decref(b);
    return NULL;
  }
  return b;
fail:
  json_decref(data);
  json_decref(b);
  return NULL;
}
