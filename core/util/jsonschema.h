/* jsonschema.h: a small JSON Schema (draft 7) validator for a documented
 * subset, used to check plugin credentials and work config.
 *
 * Supported keywords:
 *   type        a name or an array of names: null, boolean, object, array,
 *               number, integer, string. "integer" also accepts a real with
 *               zero fractional part (1.0).
 *   properties, required, additionalProperties (boolean or schema)
 *   enum, const  compared with JSON Schema equality: numbers by value (1 ==
 *               1.0), arrays and objects deeply, no cross-type equality.
 *   items       one schema for every item, or an array of schemas applied
 *               positionally (items past the end are not constrained).
 *   minItems, maxItems, minLength, maxLength (lengths count Unicode code
 *               points, not bytes), minimum, maximum (inclusive).
 *   pattern     an ECMA-262 regular expression, translated to a POSIX
 *               extended regex and searched unanchored (as JSON Schema
 *               requires). Translated: \d \D \w \W \s \S (ASCII meaning),
 *               \n \t \r \f \v, \xHH, \uXXXX, escaped punctuation, (?:...)
 *               (becomes a plain group), lazy quantifiers (become greedy:
 *               same match/no-match answer), character classes, and "."
 *               (any character but \n and \r). Refused with CR_ENOTSUP:
 *               lookaround, backreferences, \b \B, \p{..}, \D \W \S inside
 *               a class, non-ASCII inside a class, empty classes. Matching
 *               runs in the process's locale: in the C locale "." and
 *               classes match one byte, not one code point.
 *   Boolean schemas (true accepts everything, false nothing).
 * Annotations, ignored: title, description, default, examples, $schema,
 * $id, $comment, format, readOnly, writeOnly, deprecated; so are unknown
 * non-standard keywords. Standard keywords outside the subset ($ref, allOf,
 * anyOf, oneOf, not, if/then/else, patternProperties, dependencies,
 * additionalItems, propertyNames, contains, multipleOf, exclusiveMinimum,
 * exclusiveMaximum, minProperties, maxProperties, uniqueItems, definitions,
 * $defs and the later-draft ones) make compilation fail with CR_ENOTSUP
 * rather than be silently ignored. */
#ifndef CR_JSONSCHEMA_H
#define CR_JSONSCHEMA_H

#include <jansson.h>
#include <stddef.h>

typedef struct cr_schema cr_schema;

/* Called once per violation. node: the offending value inside the instance
 * (borrowed; for "required" the object missing the property, for a
 * disallowed additional property that property's value). Note that jansson
 * shares true/false/null, so for those the pointer alone does not say where
 * the value is: use path. path: JSON pointer of node ("" for the root,
 * "/streams/0"). message: e.g. "expected string, got integer". path and
 * message are valid only during the call. */
typedef void (*cr_schema_error_cb)(void *ud, const json_t *node,
                                   const char *path, const char *message);

/* Compiles schema (borrowed; the compiled schema keeps its own references to
 * the enum/const/minimum/maximum values it needs). On success *out is a new
 * schema the caller frees with cr_schema_free. Returns CR_EINVAL (not a
 * valid schema: wrong keyword value type, bad regex, schema not an object
 * or boolean), CR_ENOTSUP (a keyword or regex construct outside the
 * subset), or CR_ENOMEM; then *out is NULL and errbuf (errlen bytes, caller
 * owned, may be NULL) names the keyword and its JSON pointer in the schema,
 * e.g. "unsupported keyword \"allOf\" at /properties/a". */
int cr_schema_compile(const json_t *schema, cr_schema **out, char *errbuf,
                      size_t errlen);

/* Same, from JSON text (borrowed, NUL-terminated). A text that is not JSON
 * gives CR_EPARSE with jansson's "line L, column C: message" in errbuf. */
int cr_schema_compile_text(const char *text, cr_schema **out, char *errbuf,
                           size_t errlen);

/* Validates instance (borrowed) against s (borrowed). Returns 0 if valid,
 * CR_ESCHEMA if not, having called cb (may be NULL; ud is passed through)
 * once per violation: every violation is reported, not just the first.
 * Returns CR_ENOMEM if a JSON pointer could not be built; violations seen
 * until then have been reported. CR_EINVAL if s or instance is NULL. */
int cr_schema_validate(const cr_schema *s, const json_t *instance,
                       cr_schema_error_cb cb, void *ud);

/* Frees a compiled schema. NULL is a no-op. */
void cr_schema_free(cr_schema *s);

#endif
