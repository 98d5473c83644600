/* event_tpl.c: Jsonnet event templates: checking, rendering and the `event`
 * binding of a stored event (see event_tpl.h). */
#include "events/event_tpl.h"

#include <libjsonnet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/jsonbuf.h"

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
  int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999 || len < 25) { /* printf for the odd ones */
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)r);
    return;
  }
  /* Digits by hand: this runs once per webhook sent. */
  const int v[] = {year,      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec,     (int)r};
  static const char sep[] = "--T::.Z";
  static const int width[] = {4, 2, 2, 2, 2, 2, 3};
  char *p = buf;
  for (int i = 0; i < 7; i++) {
    for (int k = width[i] - 1, x = v[i]; k >= 0; k--, x /= 10)
      p[k] = (char)('0' + x % 10);
    p += width[i];
    *p++ = sep[i];
  }
  *p = '\0';
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

/* ---- body without a tree ------------------------------------------------ */

static const char *skip_ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* Past the JSON string starting at p (on its opening quote); NULL if it
 * does not end. */
static const char *skip_string(const char *p) {
  for (p++; *p != '"'; p++) {
    if (*p == '\0')
      return NULL;
    if (*p == '\\' && *++p == '\0')
      return NULL;
  }
  return p + 1;
}

/* Past the JSON value at p (stored text, which the store checked is JSON:
 * only its structure is followed); NULL where it breaks off. */
static const char *skip_value(const char *p) {
  int depth = 0;
  do {
    p = skip_ws(p);
    if (*p == '"') {
      p = skip_string(p);
    } else if (*p == '{' || *p == '[') {
      depth++;
      p++;
    } else if ((*p == '}' || *p == ']') && depth > 0) {
      depth--;
      p++;
    } else if ((*p == ',' || *p == ':') && depth > 0) {
      p++;
    } else if (*p != '\0' && strchr(",:}]", *p) == NULL) {
      p += strcspn(p, ",:{}[]\" \t\n\r"); /* number, true, false, null */
    } else {
      return NULL; /* the end, or no value where one belongs */
    }
  } while (p != NULL && depth > 0);
  return p;
}

/* The members of the object text (NUL-terminated) start after *open and
 * end before *close; 0 when it is an object none of whose keys is one the
 * binding adds (subject_type, subject_id, verb, aid; nor any key with an
 * escape). -1 otherwise: the caller builds the binding. */
static int plain_object(const char *text, const char **open,
                        const char **close) {
  static const char *const added[] = {"subject_type", "subject_id", "verb",
                                      "aid"};
  const char *p = skip_ws(text);
  if (*p != '{')
    return -1;
  *open = p + 1;
  p = skip_ws(p + 1);
  while (*p != '}') {
    const char *key = p + 1, *end = *p == '"' ? skip_string(p) : NULL;
    if (end == NULL || memchr(key, '\\', (size_t)(end - 1 - key)) != NULL)
      return -1;
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++)
      if (strlen(added[i]) == (size_t)(end - 1 - key) &&
          memcmp(key, added[i], (size_t)(end - 1 - key)) == 0)
        return -1;
    p = skip_ws(end);
    if (*p != ':' || (p = skip_value(p + 1)) == NULL)
      return -1;
    p = skip_ws(p);
    if (*p == ',')
      p = skip_ws(p + 1);
    else if (*p != '}')
      return -1;
  }
  *close = p;
  return *skip_ws(p + 1) == '\0' ? 0 : -1;
}

/* The binding's text through jansson (the general case). json_dumps
 * (jansson 2.14) ignores a failed append of an object key and returns a
 * broken text when memory runs out then: the text is parsed back and must
 * be the binding. */
static int body_by_tree(const struct cr_event_rec *e, const char *account_id,
                        char **body_out) {
  json_t *b = cr_event_tpl_binding(e, account_id);
  char *txt = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
  json_t *back = txt != NULL ? json_loads(txt, 0, NULL) : NULL;
  if (back != NULL && json_equal(back, b))
    *body_out = cr__strdup(txt);
  json_decref(back);
  json_decref(b);
  free(txt);
  return *body_out != NULL ? 0 : CR_ENOMEM;
}

/* ["," if comma] "subject_type":..,"subject_id":..,"verb":.. of e. */
static void put_subject(struct cr__jsonbuf *b, const struct cr_event_rec *e,
                        int comma) {
  cr__jb_lit(b, comma ? ",\"subject_type\":" : "\"subject_type\":");
  cr__jb_str(b, e->subject_type);
  cr__jb_lit(b, ",\"subject_id\":");
  cr__jb_str(b, e->subject_id);
  cr__jb_lit(b, ",\"verb\":");
  cr__jb_str(b, e->verb);
}

int cr_event_tpl_body(const struct cr_event_rec *e, const char *account_id,
                      char **body_out) {
  if (e == NULL || body_out == NULL)
    return CR_EINVAL;
  *body_out = NULL;
  static const char none[] = "{}";
  const char *open = none + 1, *close = none + 1; /* no data: {} */
  if (e->data_json != NULL && plain_object(e->data_json, &open, &close) != 0)
    return body_by_tree(e, account_id, body_out);
  char at[64];
  rfc3339_ms(e->at, at, sizeof at);
  struct cr__jsonbuf b = {0};
  cr__jb_lit(&b, "{\"id\":");
  cr__jb_int(&b, e->id);
  cr__jb_lit(&b, ",\"at\":");
  cr__jb_str(&b, at);
  put_subject(&b, e, 1);
  cr__jb_lit(&b, ",\"actor\":");
  cr__jb_str(&b, e->actor);
  cr__jb_lit(&b, ",\"seq\":");
  cr__jb_int(&b, e->seq);
  cr__jb_lit(&b, ",\"data\":{");
  const char *members = skip_ws(open);
  cr__jb_raw(&b, members, (size_t)(close - members));
  put_subject(&b, e, members != close);
  cr__jb_lit(&b, ",\"aid\":");
  cr__jb_str(&b, account_id);
  cr__jb_lit(&b, "}}");
  if (b.err == CR_EINVAL) { /* not UTF-8: as the binding would say */
    cr__jb_clear(&b);
    return CR_ENOMEM;
  }
  *body_out = cr__jb_take(&b);
  return *body_out != NULL ? 0 : CR_ENOMEM;
}
