/* config_int.h: the configuration loader's private state and helpers, shared
 * by config.c (reading files, the top level, host, authorizations, works,
 * cross-references), config_subs.c (subscriptions), config_alerts.c (alerts)
 * and config_check.c (checks against the plugins): the loader state, the key
 * tables (struct field) and the diagnostics, typing and secret helpers. */
#ifndef CR_CONFIG_INT_H
#define CR_CONFIG_INT_H

#include "config/config.h"
#include "util/redact.h"

#define MAX_INCLUDE_DEPTH 16

/* One file read: its tree and where it lives. */
struct doc {
  json_t *root;
  const char *file; /* display name, interned in the marks */
  char *dir;        /* absolute directory (relative paths resolve here) */
  char *disp_dir;   /* directory of the display name (for include names) */
  char *canon;      /* realpath of the file */
  int literal;      /* strings are never secret references (API objects) */
};

struct cr__config_priv {
  struct doc *docs;
  size_t n_docs;
  cr_redactor *redactor;
  /* config_index.c: enabled works with an authorization, by its id (then
   * file order) */
  const struct cr_config_work **by_auth;
  size_t n_by_auth;
  /* config_index.c: works and authorizations by id (then file order), for
   * cr_config_find_work / cr_config_find_auth; NULL while loading */
  const void **works_by_id, **auths_by_id;
  size_t n_works_by_id, n_auths_by_id;
  /* config_compact.c: the strings and JSON texts of compacted objects */
  struct cr__cfg_pool *pool;
};

/* config_compact.c: frees (and wipes) the chunks of a pool. */
void cr__cfg_pool_free(struct cr__cfg_pool *c);

/* config_index.c: the entry of id in an index built by cr__cfg_index_works
 * (NULL when absent); id_off is the offset of the id in the entries. */
const void *cr__cfg_index_find(const void *const *idx, size_t n, size_t id_off,
                               const char *id);

/* The loader's state. */
struct ld {
  cr_config *cfg;
  cr_diags *diags;
  int nomem;
  size_t errors;
  const struct doc *doc;                /* the document being applied */
  const char *stack[MAX_INCLUDE_DEPTH]; /* display names of the chain */
  const char *canon[MAX_INCLUDE_DEPTH]; /* realpaths of the chain */
  size_t depth;
  size_t total_bytes;       /* of the files read so far */
  struct cr_mark host_mark; /* where host: was first defined */
};

/* config_files.c: dir joined with rel (rel alone when absolute), lexically
 * ("." dropped, ".." against the previous segment); caller frees with
 * cr__free; NULL on ENOMEM. */
char *cr__cfg_join_path(const char *dir, const char *rel);

/* config_files.c: reads the file disp (display name; shown in messages as
 * shown) and, recursively, its includes into L's documents; from is where
 * it was included (NULL: the top file). Returns 0, or CR_ENOENT / CR_EIO
 * for a top file that cannot be read (diagnostics added). */
int cr__cfg_read_tree(struct ld *L, const char *disp,
                      const struct cr_mark *from, const char *shown);

/* Appends a warning diagnostic at mk (may be NULL: no position). */
void cr__cfg_warn_at(struct ld *L, const struct cr_mark *mk, const char *fmt,
                     ...) __attribute__((format(printf, 3, 4)));

/* Appends an error diagnostic at mk (may be NULL: no position). */
void cr__cfg_err_at(struct ld *L, const struct cr_mark *mk, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
/* Where node n starts, or NULL. */
const struct cr_mark *cr__cfg_mk_node(const struct ld *L, const json_t *n);
/* Where the value of obj.key starts (obj's mark when unknown). */
const struct cr_mark *cr__cfg_mk_val(const struct ld *L, const json_t *obj,
                                     const char *key);
/* " (did you mean 'x'?)" or "" into buf (len bytes); returns buf. */
const char *cr__cfg_did_you_mean(const char *word, const char *const *cands,
                                 size_t n, char *buf, size_t len);
/* "a, b or c" of names into buf (len bytes); returns buf. */
const char *cr__cfg_join_names(const char *const *names, size_t n,
                               const char *last_sep, char *buf, size_t len);

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define MS_PER_S INT64_C(1000)
#define MS_PER_DAY (INT64_C(86400) * MS_PER_S)

typedef struct cr_config_subscription sub_t;
typedef struct cr_config_alert alert_t;

/* Which object a message is about: noun "work 'x'", in "in work 'x'". */
struct where {
  char noun[200];
  char in[210];
};

/* ---- The key tables ------------------------------------------------------ */

enum ftype {
  FT_STR,      /* const char *: a string */
  FT_NONEMPTY, /* const char *: a non-empty string */
  FT_ID,       /* const char *: an id */
  FT_BOOL,     /* int */
  FT_INT,      /* int in [min, max] */
  FT_DURATION, /* int64_t ms in [min, max] */
  FT_PATH,     /* char *: an absolute path (replaces the default) */
  FT_MAP,      /* const json_t *: a mapping */
  FT_ENUM,     /* int: index in names */
  FT_CUSTOM,   /* the setter checks and stores */
  FT_IGNORE,   /* handled elsewhere */
};

struct field;
typedef void (*setter_fn)(struct ld *L, const struct where *w,
                          const json_t *obj, const struct field *f,
                          const json_t *v, void *target);

struct field {
  const char *key;
  enum ftype type;
  int required;
  size_t off; /* offset of the member in the target struct */
  long long min, max;
  const char *const *names; /* FT_ENUM: NULL-terminated */
  setter_fn set;            /* FT_CUSTOM */
};

/* Sets w from a printf format (an empty noun means the top level). */
void cr__cfg_where_set(struct where *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The id of a list item for messages: "work 'x'" or "work #3". */
void cr__cfg_item_where(struct where *w, const char *what, const json_t *item,
                        size_t index);
/* A copy of the mark of node n (an empty one in the current file if none). */
struct cr_mark cr__cfg_mark_copy(const struct ld *L, const json_t *n);
/* Where the key obj.key is written (its value's mark when unknown). */
const struct cr_mark *cr__cfg_mk_key(const struct ld *L, const json_t *obj,
                                     const char *key);
/* Where arr[i] starts (arr's mark when unknown). */
const struct cr_mark *cr__cfg_mk_item(const struct ld *L, const json_t *arr,
                                      size_t i);
/* "line 12" or "other.yaml:12" for first, relative to the file of here, into
 * buf (len bytes); returns buf. */
const char *cr__cfg_where_first(const struct cr_mark *first,
                                const struct cr_mark *here, char *buf,
                                size_t len);
/* Checks the type of obj[key] (v); reports and returns 0 when wrong. */
int cr__cfg_want(struct ld *L, const struct where *w, const json_t *obj,
                 const char *key, const json_t *v, json_type t);
/* Same for arr[i], described as "'key' item N". */
int cr__cfg_want_item(struct ld *L, const struct where *w, const char *key,
                      const json_t *arr, size_t i, json_type t);
/* Checks that v is a mapping before cr__cfg_apply(); reports otherwise. */
int cr__cfg_want_map(struct ld *L, const struct where *w, const json_t *v,
                     const struct cr_mark *mk);
/* Applies the mapping obj (borrowed) to target through the n fields. */
void cr__cfg_apply(struct ld *L, const struct where *w, const json_t *obj,
                   const struct field *fields, size_t n, void *target);
/* Grows *arr (cr__realloc'd, freed by the owner) by one zeroed element of
 * size bytes; returns it, or NULL on ENOMEM (L->nomem set). */
void *cr__cfg_grow(struct ld *L, void **arr, size_t *n, size_t size);
/* Resolves every string of in into a new tree (owned by the caller, freed
 * with json_decref), or NULL on error; all: register literals as secrets. */
json_t *cr__cfg_resolve_tree(struct ld *L, const json_t *in, int all);
/* Resolves the string v = obj[key]; the result is owned by the caller (free
 * with cr__cfg_free_secret), NULL on error (reported). */
char *cr__cfg_resolve_one(struct ld *L, const struct where *w,
                          const json_t *obj, const char *key, const json_t *v,
                          int all);
/* Wipes and frees s (may be NULL). */
void cr__cfg_free_secret(char *s);
/* Sets *slot (owned by the config) to a new empty object when unset, marked
 * at mk. */
void cr__cfg_default_object(struct ld *L, json_t **slot,
                            const struct cr_mark *mk);

/* ---- Sections in their own files ----------------------------------------- */

/* config_api.c: the REST API keys of host: api_tokens (with scopes), api:
 * (server limits), tls:, and the defaults of struct cr_config_api. */
void cr__cfg_set_api_tokens(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t);
void cr__cfg_set_api(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, void *t);
void cr__cfg_set_tls(struct ld *L, const struct where *w, const json_t *obj,
                     const struct field *f, const json_t *v, void *t);
void cr__cfg_api_defaults(struct cr_config_api *a);
/* A list of mappings with unique names (api tokens, registration tokens):
 * entries of size bytes whose first member is the name (const char *). */
struct cr__cfg_list {
  const char *noun; /* "api token": messages and locations */
  size_t size;
  const struct field *fields;
  size_t n_fields;
  void (*init)(void *entry); /* defaults of a new entry, or NULL */
};
/* config_api.c: reads v (key's value in obj, an array of mappings) into
 * *arr / *n as spec says; a repeated name is an error at the later one. */
void cr__cfg_named_list(struct ld *L, const struct where *w, const json_t *obj,
                        const char *key, const json_t *v,
                        const struct cr__cfg_list *spec, void **arr, size_t *n);

/* config_runners.c: host.runner_registration_tokens, the remote-runner keys
 * of host.runner (offline_after, lease) and a work's runner: {labels}. */
void cr__cfg_set_runner_tokens(struct ld *L, const struct where *w,
                               const json_t *obj, const struct field *f,
                               const json_t *v, void *t);
void cr__cfg_set_work_runner(struct ld *L, const struct where *w,
                             const json_t *obj, const struct field *f,
                             const json_t *v, void *t);
void cr__cfg_free_runner_tokens(struct cr_config_host *h);
/* config_index.c: indexes the works by authorization (after finish). */
void cr__cfg_index_works(struct ld *L);
/* config_api.c: appends the API objects' document (root borrowed) to the
 * documents to apply, as the file "api" with literal strings. */
int cr__cfg_add_api_doc(struct ld *L, const json_t *root);
/* config_api.c: a literal copy of in (every string registered as a secret
 * when all), for documents whose strings are not references. */
json_t *cr__cfg_literal_tree(struct ld *L, const json_t *in, int all);
/* config_api.c: registers a resolved secret with the config's redactor. */
void cr__cfg_keep_secret(struct ld *L, const char *value);

/* config_subs.c: applies subscriptions item index (borrowed) to L->cfg. */
void cr__cfg_add_subscription(struct ld *L, const json_t *item, size_t index);
/* config_alerts.c: applies alerts item index (borrowed) to L->cfg. */
void cr__cfg_add_alert(struct ld *L, const json_t *item, size_t index);
/* config_alerts.c: cross-references of the alerts (one default, works). */
void cr__cfg_finish_alerts(struct ld *L);
/* config_alerts.c: frees what alert a owns (not a itself). */
void cr__cfg_free_alert(alert_t *a);

/* Event filters in the product format, shared by subscriptions and alert
 * event rules (config_subs.c): adds a verb to a list, checks a
 * system_event_sources mapping (returns 1 when valid). */
void cr__cfg_add_verb(struct ld *L, const struct where *w, const json_t *v,
                      const struct cr_mark *mk, const char ***types, size_t *n);
int cr__cfg_check_sources(struct ld *L, const struct where *w,
                          const json_t *obj, const char *key, const json_t *v);
/* A checked headers mapping with its values resolved (a new reference, or
 * NULL when invalid); redact: register the values as secrets. */
/* Field setters for system_event_type / system_event_multiple_types: the
 * field's off is the offset of an event_types member followed by
 * n_event_types (see the asserts below). */
void cr__cfg_set_event_type(struct ld *L, const struct where *w,
                            const json_t *obj, const struct field *f,
                            const json_t *v, void *t);
void cr__cfg_set_event_types(struct ld *L, const struct where *w,
                             const json_t *obj, const struct field *f,
                             const json_t *v, void *t);
_Static_assert(offsetof(sub_t, n_event_types) ==
                   offsetof(sub_t, event_types) + sizeof(const char **),
               "n_event_types must follow event_types");
_Static_assert(offsetof(alert_t, n_event_types) ==
                   offsetof(alert_t, event_types) + sizeof(const char **),
               "n_event_types must follow event_types");
json_t *cr__cfg_headers(struct ld *L, const struct where *w, const json_t *obj,
                        const char *key, const json_t *v, int redact);

#endif
