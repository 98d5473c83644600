/* config_int.h: the configuration loader's private state, shared by
 * config.c (loading) and config_check.c (checks against the plugins). */
#ifndef CR_CONFIG_INT_H
#define CR_CONFIG_INT_H

#include "config.h"
#include "redact.h"

#define MAX_INCLUDE_DEPTH 16

/* One file read: its tree and where it lives. */
struct doc {
  json_t *root;
  const char *file; /* display name, interned in the marks */
  char *dir;        /* absolute directory (relative paths resolve here) */
  char *disp_dir;   /* directory of the display name (for include names) */
  char *canon;      /* realpath of the file */
};

struct cr__config_priv {
  struct doc *docs;
  size_t n_docs;
  cr_redactor *redactor;
};

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
  struct cr_mark host_mark; /* where host: was first defined */
};

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

#endif
