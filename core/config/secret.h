/* secret.h: secret references in configuration values.
 *
 * Two forms:
 *   ${NAME}      the environment variable NAME ([A-Za-z_][A-Za-z0-9_]*),
 *                as the whole value or embedded ("Bearer ${TOKEN}"); "$${"
 *                writes a literal "${".
 *   file:PATH    the whole value: the content of PATH (relative to the
 *                configuration file's directory), without one trailing
 *                newline ("\n" or "\r\n"); at most 1 MiB, no NUL bytes.
 * A value with neither form is a literal and is returned as is.
 *
 * Error messages never contain a resolved value, only variable names and
 * file paths. Resolved values are secrets: callers register them with their
 * redactor and never print them.
 */
#ifndef CR_SECRET_H
#define CR_SECRET_H

#include <jansson.h>
#include <stddef.h>

/* Non-zero when value (borrowed) contains a ${...} or file: reference. */
int cr_secret_is_ref(const char *value);

/* Resolves value (borrowed). base_dir (borrowed, may be NULL for the current
 * directory) anchors relative file: paths. On success *out is a new string
 * (caller frees with cr__free) and *was_ref (may be NULL) says whether a
 * reference was resolved. Errors, with a message in errbuf (errlen bytes,
 * caller owned) and *out NULL:
 *   CR_ENOENT "environment variable SENDGRID_API_KEY is not set"
 *   CR_EIO    "cannot read secret file /x: No such file or directory"
 *             (also too large / contains NUL)
 *   CR_EINVAL "unterminated '${' (missing '}')", "invalid environment
 *             variable name '1X'", "empty file: reference"
 *   CR_ENOMEM */
int cr_secret_resolve(const char *value, const char *base_dir, char **out,
                      int *was_ref, char *errbuf, size_t errlen);

/* Called for each string that failed to resolve: node is the string in the
 * input tree (borrowed), message the error text (borrowed, no secret). */
typedef void (*cr_secret_error_cb)(void *ud, const json_t *node,
                                   const char *message);
/* Called for each resolved string: value is the resolved text (borrowed,
 * valid during the call) and from_ref non-zero when it came from a
 * reference. */
typedef void (*cr_secret_value_cb)(void *ud, const char *value, int from_ref);

/* Deep-copies in (borrowed) into *out (a new reference; json_decref),
 * resolving every string value (object keys are left alone). A string that
 * fails is reported through on_error (may be NULL) and becomes "" in the
 * copy; on_value (may be NULL) sees every resolved string. Returns 0, or
 * CR_ECONFIG when at least one string failed (*out is still complete),
 * CR_EINVAL when in is NULL, or CR_ENOMEM (*out NULL in both). */
int cr_secret_resolve_tree(const json_t *in, const char *base_dir,
                           cr_secret_error_cb on_error,
                           cr_secret_value_cb on_value, void *ud, json_t **out);

#endif
