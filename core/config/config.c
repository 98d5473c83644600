/* config.c: loading and checking the connrun configuration (see config.h).
 *
 * Layout: files are read first (the top file, then its includes, depth
 * first), each into a json_t tree with marks; then every document's sections
 * are applied through tables of known keys (struct field: key, type, setter),
 * so adding a key is one table line; then cross-references are resolved;
 * cr_config_check_plugins() (config_check.c) does the plugin-dependent
 * checks. Every problem
 * becomes a diagnostic; the loader goes on after an error.
 *
 * This file owns the shared helpers (config_int.h), reading files and
 * includes, the top level, host:, authorizations:, works:, the
 * cross-references, loading and freeing; the subscriptions: section is in
 * config_subs.c and the alerts: section in config_alerts.c. */
#include "config/config.h"
#include "config/config_int.h"

#include "config/secret.h"
#include "events/vocab.h"
#include "exec/schedule.h"
#include "plugin/plugin_host.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/redact.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:8470"
#define DEFAULT_ACCOUNT "default"

/* ---- Small helpers ------------------------------------------------------- */

void cr__cfg_where_set(struct where *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->noun, sizeof w->noun, fmt, ap);
  va_end(ap);
  if (w->noun[0] == '\0')
    snprintf(w->in, sizeof w->in, "at the top level");
  else
    snprintf(w->in, sizeof w->in, "in %s", w->noun);
}

static void vdiag(struct ld *L, const struct cr_mark *mk, int sev,
                  const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  const char *file = mk ? mk->file : L->doc ? L->doc->file : L->cfg->path;
  if (cr_diags_addf(L->diags, file, mk ? mk->line : 0, mk ? mk->column : 0, sev,
                    "%s", msg) != 0)
    L->nomem = 1;
  if (sev == CR_DIAG_ERROR)
    L->errors++;
}

void cr__cfg_err_at(struct ld *L, const struct cr_mark *mk, const char *fmt,
                    ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(L, mk, CR_DIAG_ERROR, fmt, ap);
  va_end(ap);
}

void cr__cfg_warn_at(struct ld *L, const struct cr_mark *mk, const char *fmt,
                     ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(L, mk, CR_DIAG_WARNING, fmt, ap);
  va_end(ap);
}

const struct cr_mark *cr__cfg_mk_node(const struct ld *L, const json_t *n) {
  return cr_marks_get(L->cfg->marks, n);
}

struct cr_mark cr__cfg_mark_copy(const struct ld *L, const json_t *n) {
  const struct cr_mark *mk = cr__cfg_mk_node(L, n);
  struct cr_mark none = {L->doc ? L->doc->file : NULL, 0, 0};
  return mk ? *mk : none;
}

const struct cr_mark *cr__cfg_mk_val(const struct ld *L, const json_t *obj,
                                     const char *key) {
  const struct cr_mark *mk = cr_marks_member(L->cfg->marks, obj, key);
  return mk ? mk : cr__cfg_mk_node(L, obj);
}

const struct cr_mark *cr__cfg_mk_key(const struct ld *L, const json_t *obj,
                                     const char *key) {
  const struct cr_mark *mk = cr_marks_key(L->cfg->marks, obj, key);
  return mk ? mk : cr__cfg_mk_val(L, obj, key);
}

const struct cr_mark *cr__cfg_mk_item(const struct ld *L, const json_t *arr,
                                      size_t i) {
  const struct cr_mark *mk = cr_marks_item(L->cfg->marks, arr, i);
  return mk ? mk : cr__cfg_mk_node(L, arr);
}

/* " (did you mean 'x'?)" or "" into buf. */
const char *cr__cfg_did_you_mean(const char *word, const char *const *cands,
                                 size_t n, char *buf, size_t len) {
  const char *s = cr_vocab_suggest(word, cands, n, 2);
  if (s == NULL)
    buf[0] = '\0';
  else
    snprintf(buf, len, " (did you mean '%s'?)", s);
  return buf;
}

/* "a, b or c" of names into buf. */
const char *cr__cfg_join_names(const char *const *names, size_t n,
                               const char *last_sep, char *buf, size_t len) {
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && off < len; i++) {
    const char *sep = i == 0 ? "" : i + 1 == n ? last_sep : ", ";
    int w = snprintf(buf + off, len - off, "%s%s", sep, names[i]);
    if (w < 0)
      break;
    off += (size_t)w;
  }
  return buf;
}

/* "line 12" or "other.yaml:12" relative to the file of mk. */
const char *cr__cfg_where_first(const struct cr_mark *first,
                                const struct cr_mark *here, char *buf,
                                size_t len) {
  if (first == NULL)
    snprintf(buf, len, "elsewhere");
  else if (here != NULL && here->file == first->file)
    snprintf(buf, len, "line %d", first->line);
  else
    snprintf(buf, len, "%s:%d", first->file, first->line);
  return buf;
}

void cr__cfg_keep_secret(struct ld *L, const char *value) {
  if (value[0] != '\0' &&
      cr_redactor_add(L->cfg->priv->redactor, value) == CR_ENOMEM)
    L->nomem = 1;
}

int cr_config_valid_id(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 128)
    return 0;
  return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789_.-") == n;
}

static int valid_provider_name(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n <= 64 &&
         strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int cr_config_parse_duration(const char *text, int64_t *ms) {
  static const struct {
    const char *unit;
    int64_t ms;
  } units[] = {{"ms", 1},
               {"s", MS_PER_S},
               {"m", 60 * MS_PER_S},
               {"h", 3600 * MS_PER_S},
               {"d", MS_PER_DAY}};
  const char *p = text;
  int64_t total = 0;
  if (p == NULL || *p == '\0')
    return CR_EINVAL;
  while (*p) {
    if (*p < '0' || *p > '9')
      return CR_EINVAL;
    int64_t n = 0;
    while (*p >= '0' && *p <= '9') {
      if (n > (INT64_MAX - 9) / 10)
        return CR_EINVAL;
      n = n * 10 + (*p++ - '0');
    }
    size_t i = 0;
    for (; i < N_OF(units); i++) {
      size_t ul = strlen(units[i].unit);
      if (strncmp(p, units[i].unit, ul) == 0 &&
          !(ul == 1 && units[i].unit[0] == 'm' && p[1] == 's'))
        break;
    }
    if (i == N_OF(units))
      return CR_EINVAL;
    if (n > (INT64_MAX - total) / units[i].ms)
      return CR_EINVAL;
    total += n * units[i].ms;
    p += strlen(units[i].unit);
  }
  *ms = total;
  return 0;
}

static int hash_cb(const char *buffer, size_t size, void *data) {
  uint64_t *h = data;
  for (size_t i = 0; i < size; i++)
    *h = (*h ^ (unsigned char)buffer[i]) * 1099511628211ULL;
  return 0;
}

uint64_t cr_config_hash_json(const json_t *v) {
  uint64_t h = 14695981039346656037ULL;
  if (v != NULL)
    json_dump_callback(v, hash_cb, &h,
                       JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
  return h;
}

/* ---- The key tables ------------------------------------------------------ */

static const char *const isolation_names[] = {"process", "inline", NULL};
static const char *const dest_type_names[] = {"jsonl", "sqlite", "plugin",
                                              NULL};

static const char *type_noun(json_type t) {
  switch (t) {
  case JSON_OBJECT:
    return "a mapping";
  case JSON_ARRAY:
    return "a list";
  case JSON_STRING:
    return "a string";
  case JSON_INTEGER:
    return "an integer";
  default:
    return "a boolean";
  }
}

static int is_type(const json_t *v, json_type t) {
  if (t == JSON_TRUE)
    return json_is_boolean(v);
  return json_typeof(v) == t;
}

/* Checks the type of obj[key]; reports and returns 0 when wrong. Never
 * prints the value (it may be a secret). */
int cr__cfg_want(struct ld *L, const struct where *w, const json_t *obj,
                 const char *key, const json_t *v, json_type t) {
  if (is_type(v, t))
    return 1;
  cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, key), "'%s' %s: expected %s, got %s",
                 key, w->in, type_noun(t), cr_json_type_noun(v));
  return 0;
}

/* Same for arr[i], described as "'key' item N". */
int cr__cfg_want_item(struct ld *L, const struct where *w, const char *key,
                      const json_t *arr, size_t i, json_type t) {
  const json_t *v = json_array_get(arr, i);
  if (is_type(v, t))
    return 1;
  cr__cfg_err_at(L, cr__cfg_mk_item(L, arr, i),
                 "'%s' item %zu %s: expected %s, got %s", key, i + 1, w->in,
                 type_noun(t), cr_json_type_noun(v));
  return 0;
}

static void set_enum(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, int *out) {
  char dym[160], list[256];
  size_t n = 0;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  while (f->names[n] != NULL)
    n++;
  for (size_t i = 0; i < n; i++)
    if (strcmp(f->names[i], json_string_value(v)) == 0) {
      *out = (int)i;
      return;
    }
  cr__cfg_err_at(
      L, cr__cfg_mk_val(L, obj, f->key), "invalid %s '%.64s' %s%s; expected %s",
      f->key, json_string_value(v), w->in,
      cr__cfg_did_you_mean(json_string_value(v), f->names, n, dym, sizeof dym),
      cr__cfg_join_names(f->names, n, " or ", list, sizeof list));
}

static void set_duration(struct ld *L, const struct where *w, const json_t *obj,
                         const struct field *f, const json_t *v, int64_t *out) {
  int64_t ms = 0;
  int ok;
  if (json_is_integer(v)) {
    json_int_t s = json_integer_value(v);
    ok = s >= 0 && s <= INT64_MAX / MS_PER_S;
    ms = ok ? (int64_t)s * MS_PER_S : 0;
  } else if (cr__cfg_want(L, w, obj, f->key, v, JSON_STRING)) {
    ok = cr_config_parse_duration(json_string_value(v), &ms) == 0;
  } else {
    return;
  }
  if (!ok) {
    cr__cfg_err_at(
        L, cr__cfg_mk_val(L, obj, f->key),
        "invalid duration for '%s' %s (expected e.g. 30s, 5m, 1h30m, 24h)",
        f->key, w->in);
    return;
  }
  if (ms < f->min || ms > f->max) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'%s' %s must be between %llds and %llds", f->key, w->in,
                   f->min / MS_PER_S, f->max / MS_PER_S);
    return;
  }
  *out = ms;
}

static void set_path(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, char **out) {
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  if (json_string_length(v) == 0) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'%s' %s must not be empty", f->key, w->in);
    return;
  }
  char *p = cr__cfg_join_path(L->doc->dir, json_string_value(v));
  if (p == NULL) {
    L->nomem = 1;
    return;
  }
  cr__free(*out);
  *out = p;
}

static void set_field(struct ld *L, const struct where *w, const json_t *obj,
                      const struct field *f, const json_t *v, void *t) {
  void *dst = (char *)t + f->off;
  switch (f->type) {
  case FT_STR:
  case FT_NONEMPTY:
  case FT_ID:
    if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
      return;
    if (f->type == FT_NONEMPTY && json_string_length(v) == 0) {
      cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                     "'%s' %s must not be empty", f->key, w->in);
      return;
    }
    if (f->type == FT_ID && !cr_config_valid_id(json_string_value(v))) {
      cr__cfg_err_at(
          L, cr__cfg_mk_val(L, obj, f->key),
          "invalid %s '%.128s' %s: ids are 1 to 128 characters among "
          "A-Z a-z 0-9 _ . -",
          f->key, json_string_value(v), w->in);
      return;
    }
    *(const char **)dst = json_string_value(v);
    return;
  case FT_BOOL:
    if (cr__cfg_want(L, w, obj, f->key, v, JSON_TRUE))
      *(int *)dst = json_is_true(v);
    return;
  case FT_INT:
    if (!cr__cfg_want(L, w, obj, f->key, v, JSON_INTEGER))
      return;
    if (json_integer_value(v) < f->min || json_integer_value(v) > f->max) {
      cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                     "'%s' %s must be between %lld and %lld, got %lld", f->key,
                     w->in, f->min, f->max, (long long)json_integer_value(v));
      return;
    }
    *(int *)dst = (int)json_integer_value(v);
    return;
  case FT_DURATION:
    set_duration(L, w, obj, f, v, dst);
    return;
  case FT_PATH:
    set_path(L, w, obj, f, v, dst);
    return;
  case FT_MAP:
    if (cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
      *(const json_t **)dst = v;
    return;
  case FT_ENUM:
    set_enum(L, w, obj, f, v, dst);
    return;
  case FT_CUSTOM:
    f->set(L, w, obj, f, v, t);
    return;
  case FT_IGNORE:
    return;
  }
}

static void unknown_key(struct ld *L, const struct where *w, const json_t *obj,
                        const char *key, const struct field *fields, size_t n) {
  const char *names[64];
  char dym[160];
  size_t k = 0;
  for (size_t i = 0; i < n && k < N_OF(names); i++)
    names[k++] = fields[i].key;
  cr__cfg_err_at(L, cr__cfg_mk_key(L, obj, key), "unknown key '%.64s' %s%s",
                 key, w->in,
                 cr__cfg_did_you_mean(key, names, k, dym, sizeof dym));
}

/* Applies the mapping obj to target through the table: unknown keys, types,
 * setters, then missing required fields (reported at the mapping). A null
 * value means "not set". */
void cr__cfg_apply(struct ld *L, const struct where *w, const json_t *obj,
                   const struct field *fields, size_t n, void *target) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    const struct field *f = NULL;
    for (size_t i = 0; i < n && f == NULL; i++)
      if (strcmp(fields[i].key, k) == 0)
        f = &fields[i];
    if (f == NULL)
      unknown_key(L, w, obj, k, fields, n);
    else if (!json_is_null(v))
      set_field(L, w, obj, f, v, target);
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *v2 = json_object_get(obj, fields[i].key);
    if (fields[i].required && (v2 == NULL || json_is_null(v2)))
      cr__cfg_err_at(L, cr__cfg_mk_node(L, obj),
                     "%s is missing required field '%s'",
                     w->noun[0] ? w->noun : "the configuration", fields[i].key);
  }
}

/* Checks that v is a mapping before cr__cfg_apply(); reports otherwise. */
int cr__cfg_want_map(struct ld *L, const struct where *w, const json_t *v,
                     const struct cr_mark *mk) {
  if (json_is_object(v))
    return 1;
  cr__cfg_err_at(L, mk, "%s: expected a mapping, got %s", w->noun,
                 cr_json_type_noun(v));
  return 0;
}

/* Grows an array of structs by one zeroed element; NULL on ENOMEM. */
void *cr__cfg_grow(struct ld *L, void **arr, size_t *n, size_t size) {
  char *p = cr__realloc(*arr, (*n + 1) * size);
  if (p == NULL) {
    L->nomem = 1;
    return NULL;
  }
  *arr = p;
  memset(p + *n * size, 0, size);
  return p + (*n)++ * size;
}

/* The id of a list item for messages: "work 'x'" or "work #3". */
void cr__cfg_item_where(struct where *w, const char *what, const json_t *item,
                        size_t index) {
  const json_t *id = json_object_get(item, "id");
  if (json_is_string(id) && cr_config_valid_id(json_string_value(id)))
    cr__cfg_where_set(w, "%s '%s'", what, json_string_value(id));
  else
    cr__cfg_where_set(w, "%s #%zu", what, index + 1);
}

/* ---- Secrets ------------------------------------------------------------- */

struct secret_ud {
  struct ld *L;
  int all; /* register literal strings too (credentials) */
};

static void secret_error(void *ud, const json_t *node, const char *message) {
  struct secret_ud *s = ud;
  cr__cfg_err_at(s->L, cr__cfg_mk_node(s->L, node), "%s", message);
}

static void secret_value(void *ud, const char *value, int from_ref) {
  struct secret_ud *s = ud;
  if (from_ref || s->all)
    cr__cfg_keep_secret(s->L, value);
}

/* Resolves every string of in (a new tree with the same marks), or NULL on
 * ENOMEM. */
json_t *cr__cfg_resolve_tree(struct ld *L, const json_t *in, int all) {
  if (L->doc->literal)
    return cr__cfg_literal_tree(L, in, all);
  struct secret_ud ud = {L, all};
  json_t *out = NULL;
  int rc = cr_secret_resolve_tree(in, L->doc->dir, secret_error, secret_value,
                                  &ud, &out);
  if (rc == CR_ENOMEM || rc == CR_EINVAL) {
    L->nomem = rc == CR_ENOMEM;
    return NULL;
  }
  if (cr_marks_copy_tree(L->cfg->marks, in, out) != 0)
    L->nomem = 1;
  return out;
}

/* Resolves one string value (obj[f->key] = v); NULL on error (reported). */
char *cr__cfg_resolve_one(struct ld *L, const struct where *w,
                          const json_t *obj, const char *key, const json_t *v,
                          int all) {
  char err[512], *out = NULL;
  int ref = 0;
  if (!cr__cfg_want(L, w, obj, key, v, JSON_STRING))
    return NULL;
  if (L->doc->literal) {
    if ((out = cr__strdup(json_string_value(v))) == NULL)
      L->nomem = 1;
    else if (all)
      cr__cfg_keep_secret(L, out);
    return out;
  }
  int rc = cr_secret_resolve(json_string_value(v), L->doc->dir, &out, &ref, err,
                             sizeof err);
  if (rc == CR_ENOMEM)
    L->nomem = 1;
  else if (rc != 0)
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, key), "%s", err);
  else if (ref || all)
    cr__cfg_keep_secret(L, out);
  return out;
}

void cr__cfg_free_secret(char *s) {
  if (s != NULL)
    memset(s, 0, strlen(s));
  cr__free(s);
}

/* ---- host: --------------------------------------------------------------- */

typedef struct cr_config_host host_t;

static void set_plugin_dirs(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  host_t *h = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_ARRAY))
    return;
  for (size_t i = 0; i < json_array_size(v); i++) {
    if (!cr__cfg_want_item(L, w, f->key, v, i, JSON_STRING))
      continue;
    char **slot = cr__cfg_grow(L, (void **)&h->plugin_dirs, &h->n_plugin_dirs,
                               sizeof *h->plugin_dirs);
    if (slot == NULL)
      return;
    *slot =
        cr__cfg_join_path(L->doc->dir, json_string_value(json_array_get(v, i)));
    if (*slot == NULL) {
      h->n_plugin_dirs--;
      L->nomem = 1;
      return;
    }
  }
}

static void set_listen(struct ld *L, const struct where *w, const json_t *obj,
                       const struct field *f, const json_t *v, void *t) {
  host_t *h = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  const char *s = json_string_value(v);
  const char *colon = strrchr(s, ':');
  char *end = NULL;
  long port = colon ? strtol(colon + 1, &end, 10) : 0;
  if (colon == NULL || colon == s || colon[1] == '\0' || *end != '\0' ||
      port < 0 || port > 65535) {
    cr__cfg_err_at(
        L, cr__cfg_mk_val(L, obj, f->key),
        "invalid listen address '%.128s' %s (expected HOST:PORT, e.g. "
        "127.0.0.1:8470; port 0 picks a free port)",
        s, w->in);
    return;
  }
  h->listen = s;
}

typedef struct cr_config_host runner_t;

static const struct field runner_fields[] = {
    {"concurrency", FT_INT, 0, offsetof(runner_t, runner_concurrency), 1, 1024,
     NULL, NULL},
    {"isolation", FT_ENUM, 0, offsetof(runner_t, runner_isolation), 0, 0,
     isolation_names, NULL},
    {"offline_after", FT_DURATION, 0,
     offsetof(runner_t, runner_offline_after_ms), MS_PER_S, MS_PER_DAY, NULL,
     NULL},
    {"lease", FT_DURATION, 0, offsetof(runner_t, runner_lease_ms), MS_PER_S,
     MS_PER_DAY, NULL, NULL},
};

/* host.store: a secret reference (a PostgreSQL URL holds a password),
 * never echoed; a relative SQLite path is relative to the file. */
static void set_store(struct ld *L, const struct where *w, const json_t *obj,
                      const struct field *f, const json_t *v, void *t) {
  host_t *h = t;
  char *r = cr__cfg_resolve_one(L, w, obj, f->key, v, 1);
  if (r == NULL)
    return;
  int lite = strncmp(r, "sqlite:", 7) == 0;
  if (!lite && strncmp(r, "postgresql://", 13) != 0 &&
      strncmp(r, "postgres://", 11) != 0) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "'store' %s must be a postgresql:// URL or "
                   "sqlite:/path/file.db",
                   w->in);
    cr__cfg_free_secret(r);
    return;
  }
  if (lite && r[7] != '/') {
    char *joined = r[7] ? cr__cfg_join_path(L->doc->dir, r + 7) : NULL;
    size_t n = joined ? strlen(joined) + 8 : 0;
    char *abs = joined ? cr__malloc(n) : NULL;
    if (abs != NULL)
      snprintf(abs, n, "sqlite:%s", joined);
    cr__free(joined);
    cr__cfg_free_secret(r);
    if (abs == NULL && n > 0)
      L->nomem = 1;
    if (abs == NULL) {
      if (n == 0)
        cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                       "'store' %s has no path", w->in);
      return;
    }
    r = abs;
  }
  cr__cfg_free_secret(h->store);
  h->store = r;
}

static void set_runner(struct ld *L, const struct where *w, const json_t *obj,
                       const struct field *f, const json_t *v, void *t) {
  struct where rw;
  (void)w;
  cr__cfg_where_set(&rw, "host.runner");
  if (cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    cr__cfg_apply(L, &rw, v, runner_fields, N_OF(runner_fields), t);
}

static const struct field host_fields[] = {
    {"data_dir", FT_PATH, 0, offsetof(host_t, data_dir), 0, 0, NULL, NULL},
    {"store", FT_CUSTOM, 0, 0, 0, 0, NULL, set_store},
    {"plugin_dirs", FT_CUSTOM, 0, 0, 0, 0, NULL, set_plugin_dirs},
    {"listen", FT_CUSTOM, 0, 0, 0, 0, NULL, set_listen},
    {"account_id", FT_ID, 0, offsetof(host_t, account_id), 0, 0, NULL, NULL},
    {"api_tokens", FT_CUSTOM, 0, 0, 0, 0, NULL, cr__cfg_set_api_tokens},
    {"api", FT_CUSTOM, 0, 0, 0, 0, NULL, cr__cfg_set_api},
    {"tls", FT_CUSTOM, 0, 0, 0, 0, NULL, cr__cfg_set_tls},
    {"allow_insecure_http", FT_BOOL, 0,
     offsetof(host_t, api.allow_insecure_http), 0, 0, NULL, NULL},
    {"secret_key_file", FT_PATH, 0, offsetof(host_t, api.secret_key_file), 0, 0,
     NULL, NULL},
    {"runner", FT_CUSTOM, 0, 0, 0, 0, NULL, set_runner},
    {"runner_registration_tokens", FT_CUSTOM, 0, 0, 0, 0, NULL,
     cr__cfg_set_runner_tokens},
    {"health_check_interval", FT_DURATION, 0,
     offsetof(host_t, health_check_interval_ms), MS_PER_S, 366 * MS_PER_DAY,
     NULL, NULL},
    {"event_retention_days", FT_INT, 0, offsetof(host_t, event_retention_days),
     1, 36500, NULL, NULL},
};

static void set_host(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, void *t) {
  struct where hw;
  char first[300];
  (void)t;
  const struct cr_mark *here = cr__cfg_mk_key(L, obj, f->key);
  if (L->host_mark.line > 0) {
    cr__cfg_err_at(
        L, here, "'host' is defined twice (first at %s)",
        cr__cfg_where_first(&L->host_mark, NULL, first, sizeof first));
    return;
  }
  if (here != NULL)
    L->host_mark = *here;
  cr__cfg_where_set(&hw, "host");
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  L->cfg->host.def = v;
  cr__cfg_apply(L, &hw, v, host_fields, N_OF(host_fields), &L->cfg->host);
}

/* Sets *slot to a new empty object when unset, marked at mk (so that a
 * schema error about the missing object points at its owner). */
void cr__cfg_default_object(struct ld *L, json_t **slot,
                            const struct cr_mark *mk) {
  if (*slot != NULL)
    return;
  if ((*slot = json_object()) == NULL ||
      (mk->line > 0 &&
       cr_marks_set(L->cfg->marks, *slot, NULL, NULL, 0, mk, NULL) != 0))
    L->nomem = 1;
}

/* ---- authorizations: ----------------------------------------------------- */

typedef struct cr_config_auth auth_t;

static void set_provider(struct ld *L, const struct where *w, const json_t *obj,
                         const struct field *f, const json_t *v, void *t) {
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_STRING))
    return;
  if (!valid_provider_name(json_string_value(v))) {
    cr__cfg_err_at(L, cr__cfg_mk_val(L, obj, f->key),
                   "invalid provider name '%.64s' %s (expected [a-z0-9_-]+)",
                   json_string_value(v), w->in);
    return;
  }
  *(const char **)((char *)t + f->off) = json_string_value(v);
}

static void set_credentials(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  auth_t *a = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  size_t before = L->errors;
  json_t *r = cr__cfg_resolve_tree(L, v, 1);
  if (r != NULL) {
    json_decref(a->credentials);
    a->credentials = r;
  }
  /* A reference that did not resolve is the root cause: checking the
   * credentials against the schema would only report its knock-on. */
  a->unresolved = L->errors > before;
}

static const struct field auth_fields[] = {
    {"id", FT_ID, 1, offsetof(auth_t, id), 0, 0, NULL, NULL},
    {"name", FT_STR, 0, offsetof(auth_t, name), 0, 0, NULL, NULL},
    {"description", FT_STR, 0, offsetof(auth_t, description), 0, 0, NULL, NULL},
    {"settings", FT_MAP, 0, offsetof(auth_t, settings), 0, 0, NULL, NULL},
    {"provider", FT_CUSTOM, 1, offsetof(auth_t, provider), 0, 0, NULL,
     set_provider},
    {"method", FT_NONEMPTY, 1, offsetof(auth_t, method), 0, 0, NULL, NULL},
    {"owner", FT_STR, 0, offsetof(auth_t, owner), 0, 0, NULL, NULL},
    {"credentials", FT_CUSTOM, 0, 0, 0, 0, NULL, set_credentials},
};

static void add_auth(struct ld *L, const json_t *item, size_t index) {
  struct where w;
  cr_config *cfg = L->cfg;
  cr__cfg_item_where(&w, "authorization", item, index);
  if (!cr__cfg_want_map(L, &w, item, cr__cfg_mk_node(L, item)))
    return;
  auth_t *a = cr__cfg_grow(L, (void **)&cfg->auths, &cfg->n_auths, sizeof *a);
  if (a == NULL)
    return;
  a->def = item;
  a->mark = cr__cfg_mark_copy(L, item);
  a->config_hash = cr_config_hash_json(item);
  cr__cfg_apply(L, &w, item, auth_fields, N_OF(auth_fields), a);
  if (a->name == NULL)
    a->name = a->id;
  cr__cfg_default_object(L, &a->credentials, &a->mark);
}

/* ---- works: schedule and destination ------------------------------------- */

typedef struct cr_config_schedule sched_t;

static const struct field schedule_fields[] = {
    {"every", FT_NONEMPTY, 0, offsetof(sched_t, every), 0, 0, NULL, NULL},
    {"cron", FT_NONEMPTY, 0, offsetof(sched_t, cron), 0, 0, NULL, NULL},
    {"tz", FT_NONEMPTY, 0, offsetof(sched_t, tz), 0, 0, NULL, NULL},
};

static void parse_schedule(struct ld *L, const struct where *sw,
                           const json_t *v, sched_t *s) {
  char err[256] = "";
  int rc;
  if (s->every != NULL && s->cron != NULL) {
    cr__cfg_err_at(L, cr__cfg_mk_node(L, v),
                   "%s has both 'every' and 'cron'; use one", sw->noun);
    return;
  }
  if (s->every == NULL && s->cron == NULL) {
    cr__cfg_err_at(L, cr__cfg_mk_node(L, v), "%s needs 'every' or 'cron'",
                   sw->noun);
    return;
  }
  if (s->tz != NULL && s->cron == NULL) {
    cr__cfg_err_at(L, cr__cfg_mk_key(L, v, "tz"),
                   "'tz' %s only applies to 'cron'", sw->in);
    return;
  }
  if (s->every != NULL) {
    s->kind = CR_SCHED_EVERY;
    rc = cr_schedule_parse_every(s->every, &s->sched, err, sizeof err);
  } else {
    s->kind = CR_SCHED_CRON;
    rc = cr_schedule_parse_cron(s->cron, s->tz, &s->sched, err, sizeof err);
  }
  /* Errors of the zone (unknown name, unreadable zone file) point at tz. */
  const char *key = s->every ? "every" : "cron";
  if (s->tz != NULL && (rc != CR_EINVAL || strstr(err, "time zone") != NULL))
    key = "tz";
  if (rc == CR_ENOMEM)
    L->nomem = 1;
  else if (rc != 0)
    cr__cfg_err_at(L, cr__cfg_mk_val(L, v, key), "invalid %s: %s", sw->noun,
                   err[0] ? err : cr_strerror(rc));
}

typedef struct cr_config_work work_t;

static void set_schedule(struct ld *L, const struct where *w, const json_t *obj,
                         const struct field *f, const json_t *v, void *t) {
  work_t *wk = t;
  struct where sw;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  cr__cfg_where_set(&sw, "schedule of %s", w->noun);
  wk->schedule.def = v;
  size_t before = L->errors;
  cr__cfg_apply(L, &sw, v, schedule_fields, N_OF(schedule_fields),
                &wk->schedule);
  if (L->errors == before)
    parse_schedule(L, &sw, v, &wk->schedule);
}

typedef struct cr_config_destination dest_t;

static const struct field dest_fields[] = {
    {"type", FT_ENUM, 0, offsetof(dest_t, type), 0, 0, dest_type_names, NULL},
    {"path", FT_PATH, 0, offsetof(dest_t, path), 0, 0, NULL, NULL},
    {"provider", FT_CUSTOM, 0, offsetof(dest_t, provider), 0, 0, NULL,
     set_provider},
    {"authorization", FT_ID, 0, offsetof(dest_t, authorization), 0, 0, NULL,
     NULL},
};

static void set_destination(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  work_t *wk = t;
  dest_t *d = &wk->destination;
  struct where dw;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  cr__cfg_where_set(&dw, "destination of %s", w->noun);
  d->def = v;
  cr__cfg_apply(L, &dw, v, dest_fields, N_OF(dest_fields), d);
  static const char *const plugin_only[] = {"provider", "authorization"};
  if (d->type == CR_DEST_PLUGIN) {
    for (size_t i = 0; i < N_OF(plugin_only); i++)
      if (json_object_get(v, plugin_only[i]) == NULL)
        cr__cfg_err_at(L, cr__cfg_mk_node(L, v),
                       "%s (type plugin) is missing required field '%s'",
                       dw.noun, plugin_only[i]);
    if (json_object_get(v, "path") != NULL)
      cr__cfg_err_at(L, cr__cfg_mk_key(L, v, "path"),
                     "'path' %s is not used by plugin destinations", dw.in);
    return;
  }
  for (size_t i = 0; i < N_OF(plugin_only); i++)
    if (json_object_get(v, plugin_only[i]) != NULL)
      cr__cfg_err_at(L, cr__cfg_mk_key(L, v, plugin_only[i]),
                     "'%s' %s is only used by plugin destinations",
                     plugin_only[i], dw.in);
}

static void set_work_config(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t) {
  work_t *wk = t;
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_OBJECT))
    return;
  json_decref(wk->config);
  wk->config = json_incref((json_t *)v);
}

static const struct field work_fields[] = {
    {"id", FT_ID, 1, offsetof(work_t, id), 0, 0, NULL, NULL},
    {"name", FT_STR, 0, offsetof(work_t, name), 0, 0, NULL, NULL},
    {"description", FT_STR, 0, offsetof(work_t, description), 0, 0, NULL, NULL},
    {"provider", FT_CUSTOM, 1, offsetof(work_t, provider), 0, 0, NULL,
     set_provider},
    {"authorization", FT_ID, 1, offsetof(work_t, authorization), 0, 0, NULL,
     NULL},
    {"schedule", FT_CUSTOM, 0, 0, 0, 0, NULL, set_schedule},
    {"destination", FT_CUSTOM, 0, 0, 0, 0, NULL, set_destination},
    {"config", FT_CUSTOM, 0, 0, 0, 0, NULL, set_work_config},
    {"enabled", FT_BOOL, 0, offsetof(work_t, enabled), 0, 0, NULL, NULL},
    {"error_email_notifications", FT_BOOL, 0,
     offsetof(work_t, error_email_notifications), 0, 0, NULL, NULL},
    {"max_attempts", FT_INT, 0, offsetof(work_t, max_attempts), 1, 100, NULL,
     NULL},
    {"timeout", FT_DURATION, 0, offsetof(work_t, timeout_ms), MS_PER_S,
     7 * MS_PER_DAY, NULL, NULL},
    {"isolation", FT_ENUM, 0, offsetof(work_t, isolation), 0, 0,
     isolation_names, NULL},
    {"memory_limit_mb", FT_INT, 0, offsetof(work_t, memory_limit_mb), 0,
     1048576, NULL, NULL},
    {"runner", FT_CUSTOM, 0, 0, 0, 0, NULL, cr__cfg_set_work_runner},
};

static void add_work(struct ld *L, const json_t *item, size_t index) {
  struct where w;
  cr_config *cfg = L->cfg;
  cr__cfg_item_where(&w, "work", item, index);
  if (!cr__cfg_want_map(L, &w, item, cr__cfg_mk_node(L, item)))
    return;
  work_t *wk = cr__cfg_grow(L, (void **)&cfg->works, &cfg->n_works, sizeof *wk);
  if (wk == NULL)
    return;
  wk->def = item;
  wk->mark = cr__cfg_mark_copy(L, item);
  wk->config_hash = cr_config_hash_json(item);
  wk->enabled = 1;
  wk->max_attempts = 3;
  wk->timeout_ms = 3600 * MS_PER_S;
  wk->isolation = -1; /* the host's, once known */
  cr__cfg_apply(L, &w, item, work_fields, N_OF(work_fields), wk);
  if (wk->name == NULL)
    wk->name = wk->id;
  cr__cfg_default_object(L, &wk->config, &wk->mark);
}

/* ---- The top level ------------------------------------------------------- */

typedef void (*add_fn)(struct ld *L, const json_t *item, size_t index);

static void each_item(struct ld *L, const struct where *w, const json_t *obj,
                      const struct field *f, const json_t *v, add_fn add) {
  if (!cr__cfg_want(L, w, obj, f->key, v, JSON_ARRAY))
    return;
  for (size_t i = 0; i < json_array_size(v) && !L->nomem; i++)
    add(L, json_array_get(v, i), i);
}

static void set_auths(struct ld *L, const struct where *w, const json_t *obj,
                      const struct field *f, const json_t *v, void *t) {
  (void)t;
  each_item(L, w, obj, f, v, add_auth);
}

static void set_works(struct ld *L, const struct where *w, const json_t *obj,
                      const struct field *f, const json_t *v, void *t) {
  (void)t;
  each_item(L, w, obj, f, v, add_work);
}

static void set_subs(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, void *t) {
  (void)t;
  each_item(L, w, obj, f, v, cr__cfg_add_subscription);
}

static void set_alerts(struct ld *L, const struct where *w, const json_t *obj,
                       const struct field *f, const json_t *v, void *t) {
  (void)t;
  each_item(L, w, obj, f, v, cr__cfg_add_alert);
}

static const struct field top_fields[] = {
    {"include", FT_IGNORE, 0, 0, 0, 0, NULL, NULL}, /* read_tree() */
    {"host", FT_CUSTOM, 0, 0, 0, 0, NULL, set_host},
    {"authorizations", FT_CUSTOM, 0, 0, 0, 0, NULL, set_auths},
    {"works", FT_CUSTOM, 0, 0, 0, 0, NULL, set_works},
    {"subscriptions", FT_CUSTOM, 0, 0, 0, 0, NULL, set_subs},
    {"alerts", FT_CUSTOM, 0, 0, 0, 0, NULL, set_alerts},
};

/* ---- Cross-references and defaults --------------------------------------- */

static void dup_ids(struct ld *L, const char *what, const char *base, size_t n,
                    size_t size, size_t id_off, size_t def_off) {
  char first[300];
  for (size_t i = 0; i < n; i++) {
    const char *id = *(const char *const *)(base + i * size + id_off);
    for (size_t j = 0; id != NULL && j < i; j++) {
      const char *other = *(const char *const *)(base + j * size + id_off);
      if (other == NULL || strcmp(id, other) != 0)
        continue;
      const json_t *di = *(const json_t *const *)(base + i * size + def_off);
      const json_t *dj = *(const json_t *const *)(base + j * size + def_off);
      const struct cr_mark *here = cr__cfg_mk_val(L, di, "id");
      cr__cfg_err_at(L, here, "duplicate %s id '%s' (first defined at %s)",
                     what, id,
                     cr__cfg_where_first(cr__cfg_mk_val(L, dj, "id"), here,
                                         first, sizeof first));
      break;
    }
  }
}

const struct cr_config_auth *cr_config_find_auth(const cr_config *cfg,
                                                 const char *id) {
  if (cfg != NULL && id != NULL && cfg->priv->auths_by_id != NULL)
    return cr__cfg_index_find(cfg->priv->auths_by_id, cfg->priv->n_auths_by_id,
                              offsetof(struct cr_config_auth, id), id);
  for (size_t i = 0; cfg != NULL && id != NULL && i < cfg->n_auths; i++)
    if (cfg->auths[i].id != NULL && strcmp(cfg->auths[i].id, id) == 0)
      return &cfg->auths[i];
  return NULL;
}

const struct cr_config_work *cr_config_find_work(const cr_config *cfg,
                                                 const char *id) {
  if (cfg != NULL && id != NULL && cfg->priv->works_by_id != NULL)
    return cr__cfg_index_find(cfg->priv->works_by_id, cfg->priv->n_works_by_id,
                              offsetof(struct cr_config_work, id), id);
  for (size_t i = 0; cfg != NULL && id != NULL && i < cfg->n_works; i++)
    if (cfg->works[i].id != NULL && strcmp(cfg->works[i].id, id) == 0)
      return &cfg->works[i];
  return NULL;
}

const struct cr_config_subscription *
cr_config_find_subscription(const cr_config *cfg, const char *id) {
  for (size_t i = 0; cfg != NULL && id != NULL && i < cfg->n_subscriptions; i++)
    if (cfg->subscriptions[i].id != NULL &&
        strcmp(cfg->subscriptions[i].id, id) == 0)
      return &cfg->subscriptions[i];
  return NULL;
}

/* Resolves obj.authorization (id) for noun; checks obj.provider matches.
 * An orphan (a disabled work created through the API, whose authorization
 * was deleted with ?force=true) may name one that is gone: a warning. */
static const auth_t *link_auth(struct ld *L, const char *noun,
                               const json_t *obj, const char *id,
                               const char *provider, int orphan) {
  const cr_config *cfg = L->cfg;
  const auth_t *a = cr_config_find_auth(cfg, id);
  char dym[160];
  if (id == NULL)
    return NULL;
  if (a == NULL && orphan) {
    cr__cfg_warn_at(
        L, cr__cfg_mk_val(L, obj, "authorization"),
        "%s is disabled and references authorization '%s', which no "
        "longer exists: it cannot be enabled until it names one that "
        "does",
        noun, id);
    return NULL;
  }
  if (a == NULL) {
    const char **ids = cr__calloc(cfg->n_auths + 1, sizeof *ids);
    if (ids == NULL) {
      L->nomem = 1;
      return NULL;
    }
    for (size_t i = 0; i < cfg->n_auths; i++)
      ids[i] = cfg->auths[i].id;
    cr__cfg_err_at(
        L, cr__cfg_mk_val(L, obj, "authorization"),
        "%s references unknown authorization '%s'%s", noun, id,
        cr__cfg_did_you_mean(id, ids, cfg->n_auths, dym, sizeof dym));
    cr__free(ids);
    return NULL;
  }
  if (provider != NULL && a->provider != NULL &&
      strcmp(provider, a->provider) != 0)
    cr__cfg_err_at(
        L, cr__cfg_mk_val(L, obj, "provider"),
        "%s has provider '%s' but its authorization '%s' is for provider "
        "'%s'",
        noun, provider, id, a->provider);
  return a;
}

static char *default_dest_path(const cr_config *cfg, const work_t *wk) {
  char rel[200];
  snprintf(rel, sizeof rel, "out/%s%s", wk->id,
           wk->destination.type == CR_DEST_SQLITE ? ".sqlite" : "");
  return cr__cfg_join_path(cfg->host.data_dir, rel);
}

static void finish_work(struct ld *L, work_t *wk) {
  cr_config *cfg = L->cfg;
  struct where w, dw;
  dest_t *d = &wk->destination;
  cr__cfg_where_set(&w, "work '%s'", wk->id ? wk->id : "?");
  cr__cfg_where_set(&dw, "destination of work '%s'", wk->id ? wk->id : "?");
  L->doc = NULL;
  if (wk->isolation < 0)
    wk->isolation = cfg->host.runner_isolation;
  int orphan = !wk->enabled && wk->mark.file && !strcmp(wk->mark.file, "api");
  wk->auth =
      link_auth(L, w.noun, wk->def, wk->authorization, wk->provider, orphan);
  if (d->type == CR_DEST_PLUGIN && d->def != NULL)
    d->auth =
        link_auth(L, dw.noun, d->def, d->authorization, d->provider, orphan);
  if (d->type != CR_DEST_PLUGIN && d->path == NULL && wk->id != NULL &&
      cfg->host.data_dir != NULL &&
      (d->path = default_dest_path(cfg, wk)) == NULL)
    L->nomem = 1;
}

/* Duplicate ids among the n entries of a sorted index (by id, then file
 * order): each later one is an error naming the first. */
static void dup_sorted(struct ld *L, const char *what, const void *const *idx,
                       size_t n, size_t id_off, size_t def_off) {
  char first[300];
  size_t run = 0;
  for (size_t k = 1; idx != NULL && k < n; k++) {
    const char *id = *(const char *const *)((const char *)idx[k] + id_off);
    const char *prev = *(const char *const *)((const char *)idx[run] + id_off);
    if (id == NULL || prev == NULL || strcmp(id, prev) != 0) {
      run = k;
      continue;
    }
    const json_t *di = *(const json_t *const *)((const char *)idx[k] + def_off);
    const json_t *dj =
        *(const json_t *const *)((const char *)idx[run] + def_off);
    const struct cr_mark *here = cr__cfg_mk_val(L, di, "id");
    cr__cfg_err_at(L, here, "duplicate %s id '%s' (first defined at %s)", what,
                   id,
                   cr__cfg_where_first(cr__cfg_mk_val(L, dj, "id"), here, first,
                                       sizeof first));
  }
}

static void finish(struct ld *L) {
  cr_config *cfg = L->cfg;
  /* The indexes first: linking 10,000 works to their authorizations and
   * finding duplicates must not compare every pair. */
  cr__cfg_index_works(L);
  if (L->nomem)
    return;
  const struct cr__config_priv *p = cfg->priv;
  dup_sorted(L, "authorization", p->auths_by_id, p->n_auths_by_id,
             offsetof(auth_t, id), offsetof(auth_t, def));
  dup_sorted(L, "work", p->works_by_id, p->n_works_by_id, offsetof(work_t, id),
             offsetof(work_t, def));
  dup_ids(L, "subscription", (const char *)cfg->subscriptions,
          cfg->n_subscriptions, sizeof(sub_t), offsetof(sub_t, id),
          offsetof(sub_t, def));
  dup_ids(L, "alert", (const char *)cfg->alerts, cfg->n_alerts, sizeof(alert_t),
          offsetof(alert_t, id), offsetof(alert_t, def));
  for (size_t i = 0; i < cfg->n_works && !L->nomem; i++)
    finish_work(L, &cfg->works[i]);
  if (!L->nomem)
    cr__cfg_finish_alerts(L);
}

/* ---- Load and free ------------------------------------------------------- */

static int init_host(cr_config *cfg) {
  struct cr_config_host *h = &cfg->host;
  h->listen = DEFAULT_LISTEN;
  h->account_id = DEFAULT_ACCOUNT;
  h->runner_concurrency = 4;
  h->runner_isolation = CR_ISOLATION_PROCESS;
  h->runner_offline_after_ms = 90 * MS_PER_S;
  h->runner_lease_ms = 60 * MS_PER_S;
  h->health_check_interval_ms = MS_PER_DAY;
  h->event_retention_days = 90;
  cr__cfg_api_defaults(&h->api);
  h->data_dir = cr__cfg_join_path(cfg->dir, "data");
  return h->data_dir ? 0 : CR_ENOMEM;
}

static int config_new(const char *path, cr_config **out) {
  cr_config *cfg = cr__calloc(1, sizeof *cfg);
  *out = cfg;
  if (cfg == NULL)
    return CR_ENOMEM;
  cfg->priv = cr__calloc(1, sizeof *cfg->priv);
  if (cfg->priv == NULL || cr_marks_new(&cfg->marks) != 0 ||
      cr_redactor_new(&cfg->priv->redactor) != 0 ||
      (cfg->path = cr_marks_file(cfg->marks, path)) == NULL)
    return CR_ENOMEM;
  return 0;
}

static char *default_plugin_dir; /* cr_config_set_default_plugin_dir */

int cr_config_set_default_plugin_dir(const char *dir) {
  char *copy = NULL;
  if (dir != NULL && (copy = cr__strdup(dir)) == NULL)
    return CR_ENOMEM;
  cr__free(default_plugin_dir);
  default_plugin_dir = copy;
  return 0;
}

static int add_default_plugin_dir(struct cr_config_host *h) {
  if (default_plugin_dir == NULL || h->n_plugin_dirs > 0)
    return 0;
  if ((h->plugin_dirs = cr__malloc(sizeof *h->plugin_dirs)) == NULL ||
      (h->plugin_dirs[0] = cr__strdup(default_plugin_dir)) == NULL)
    return CR_ENOMEM;
  h->n_plugin_dirs = 1;
  return 0;
}

int cr_config_load(const char *path, cr_config **out, cr_diags *diags) {
  return cr_config_load_ex(path, NULL, out, diags);
}

int cr_config_load_ex(const char *path, const json_t *api_root, cr_config **out,
                      cr_diags *diags) {
  struct ld L;
  cr_config *cfg = NULL;
  *out = NULL;
  if (path == NULL || diags == NULL)
    return CR_EINVAL;
  int rc = config_new(path, &cfg);
  memset(&L, 0, sizeof L);
  L.cfg = cfg;
  L.diags = diags;
  if (rc == 0)
    rc = cr__cfg_read_tree(&L, path, NULL, path);
  if (rc == 0 && L.nomem)
    rc = CR_ENOMEM;
  if (rc == 0 && (cfg->dir = cr__strdup(cfg->priv->docs[0].dir)) == NULL)
    rc = CR_ENOMEM;
  if (rc == 0 && api_root != NULL)
    rc = cr__cfg_add_api_doc(&L, api_root);
  if (rc == 0)
    rc = init_host(cfg);
  for (size_t i = 0; rc == 0 && i < cfg->priv->n_docs && !L.nomem; i++) {
    struct where w;
    L.doc = &cfg->priv->docs[i];
    cr__cfg_where_set(&w, "%s", "");
    if (json_is_object(L.doc->root))
      cr__cfg_apply(&L, &w, L.doc->root, top_fields, N_OF(top_fields), NULL);
  }
  if (rc == 0 && !L.nomem)
    finish(&L);
  if (rc == 0 && !L.nomem)
    rc = add_default_plugin_dir(&cfg->host);
  if (rc == 0 && (L.nomem || diags->nomem))
    rc = CR_ENOMEM;
  if (rc != 0) {
    cr_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return L.errors > 0 ? CR_ECONFIG : 0;
}

static void free_docs(struct cr__config_priv *p) {
  for (size_t i = 0; i < p->n_docs; i++) {
    json_decref(p->docs[i].root);
    cr__free(p->docs[i].dir);
    cr__free(p->docs[i].disp_dir);
    cr__free(p->docs[i].canon);
  }
  cr__free(p->docs);
  cr__free(p->by_auth);
  cr__free(p->works_by_id);
  cr__free(p->auths_by_id);
}

static void free_host(struct cr_config_host *h) {
  cr__free(h->data_dir);
  cr__cfg_free_secret(h->store);
  for (size_t i = 0; i < h->n_plugin_dirs; i++)
    cr__free(h->plugin_dirs[i]);
  cr__free(h->plugin_dirs);
  cr__cfg_free_runner_tokens(h);
  for (size_t i = 0; i < h->n_api_tokens; i++)
    cr__cfg_free_secret(h->api_tokens[i].token);
  cr__free(h->api_tokens);
  cr__free(h->api.tls_cert);
  cr__free(h->api.tls_key);
  cr__free(h->api.secret_key_file);
}

void cr_config_drop_positions(cr_config *cfg) {
  if (cfg != NULL)
    cr_marks_drop_positions(cfg->marks);
}

void cr_config_free(cr_config *cfg) {
  if (cfg == NULL)
    return;
  free_host(&cfg->host);
  for (size_t i = 0; i < cfg->n_auths; i++) {
    json_decref(cfg->auths[i].credentials);
    cr__free(cfg->auths[i].unavailable);
  }
  cr__free(cfg->auths);
  for (size_t i = 0; i < cfg->n_works; i++) {
    cr_schedule_free(cfg->works[i].schedule.sched);
    cr__free(cfg->works[i].destination.path);
    json_decref(cfg->works[i].config);
    cr__free(cfg->works[i].runner_labels);
    cr__free(cfg->works[i].unavailable);
  }
  cr__free(cfg->works);
  for (size_t i = 0; i < cfg->n_subscriptions; i++) {
    cr__free(cfg->subscriptions[i].event_types);
    cr__free(cfg->subscriptions[i].retry_schedule_ms);
    json_decref(cfg->subscriptions[i].headers);
    cr__cfg_free_secret(cfg->subscriptions[i].secret);
    cr__cfg_free_secret(cfg->subscriptions[i].export_to);
  }
  cr__free(cfg->subscriptions);
  for (size_t i = 0; i < cfg->n_alerts; i++)
    cr__cfg_free_alert(&cfg->alerts[i]);
  cr__free(cfg->alerts);
  if (cfg->priv != NULL) {
    free_docs(cfg->priv);
    cr__cfg_pool_free(cfg->priv->pool);
    cr_redactor_free(cfg->priv->redactor);
    cr__free(cfg->priv);
  }
  cr__free((void *)cfg->files);
  cr__free(cfg->dir);
  cr_marks_free(cfg->marks);
  cr__free(cfg);
}

cr_redactor *cr_config_redactor(const cr_config *cfg) {
  return cfg && cfg->priv ? cfg->priv->redactor : NULL;
}

const char *cr_config_store_at(const cr_config *cfg) {
  return cfg->host.store != NULL ? cfg->host.store : cfg->host.data_dir;
}

const char *cr_config_store_label(const cr_config *cfg) {
  return cfg->host.store != NULL ? "host.store" : cfg->host.data_dir;
}

