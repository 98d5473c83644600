/* yamljson.h: YAML documents as jansson values, with source positions.
 *
 * One YAML document (libyaml, event API) becomes one json_t tree. Plain
 * scalars are resolved with the YAML 1.2 core schema (null, ~ and empty are
 * null; true/false in three casings; decimal, 0o octal and 0x hex integers;
 * floats); quoted or block scalars, and scalars tagged !!str, are always
 * strings. Mapping keys are always strings. Anchors and aliases are supported
 * (an alias is a deep copy of its anchor). Refused with a located error:
 * multiple documents, duplicate keys in one mapping, complex (non-scalar)
 * keys, .inf/.nan, integers outside int64, recursive aliases, documents that
 * grow beyond 1,000,000 nodes through aliases, and the limits below.
 *
 * A mark table (cr_marks) remembers where every value starts (file, 1-based
 * line and column), and for mapping members where the key starts, so a
 * checker can point at "the value of key x" or "the key x". Values are
 * found by node address, or by (container, key) / (container, index) which
 * also works for jansson's shared true/false/null singletons. Nodes must not
 * be freed while their table is in use (addresses would be reused).
 */
#ifndef CR_YAMLJSON_H
#define CR_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

/* A position in a source file. file is borrowed from the mark table that
 * returned it (valid until cr_marks_free). line and column are 1-based. */
struct cr_mark {
  const char *file;
  int line;
  int column;
};

typedef struct cr_marks cr_marks;

/* Limits on input, so a hostile or broken file costs little.
 *
 * CR_YAML_MAX_DEPTH: lists and mappings nest at most this many levels (the
 * root collection is level 1; an alias counts with the height of its
 * anchor). The first collection that goes deeper is refused (CR_ELIMIT) at
 * its start as soon as the parser reaches it, and parsing stops there:
 * libyaml's cost grows with the square of the nesting (40,000 levels of
 * "[" took seconds), so a deep document must not be parsed to its end.
 *
 * CR_YAML_MAX_FILE_SIZE: cr_yaml_parse_file reads at most this many bytes;
 * a larger file is refused (CR_ELIMIT) before it is parsed. */
#define CR_YAML_MAX_DEPTH 64
#define CR_YAML_MAX_FILE_SIZE (16u << 20)

/* A parse error: position (1-based; 0 when unknown) and the message without
 * the position, e.g. "mapping values are not allowed here (while scanning a
 * simple key)" or "duplicate key 'id' (first at line 3)". */
struct cr_yaml_error {
  int line;
  int column;
  char message[512];
};

/* Creates an empty mark table. Returns 0 or CR_ENOMEM. Free with
 * cr_marks_free. */
int cr_marks_new(cr_marks **out);

/* Frees the table (not the json nodes). NULL is a no-op. */
void cr_marks_free(cr_marks *m);

/* Frees every node's position (keys and tables), keeping the interned file
 * names: later lookups find nothing. For a configuration loaded and
 * checked, whose positions are only needed for its diagnostics. NULL is a
 * no-op. */
void cr_marks_drop_positions(cr_marks *m);

/* Interns a file name: returns a copy owned by the table (valid until
 * cr_marks_free), the same pointer for the same name; NULL on ENOMEM. */
const char *cr_marks_file(cr_marks *m, const char *file);

/* Where node starts. NULL when unknown, and always for the true/false/null
 * singletons (use cr_marks_member / cr_marks_item). Borrowed. */
const struct cr_mark *cr_marks_get(const cr_marks *m, const json_t *node);

/* Where the value of obj[key] starts / where the key itself starts; NULL
 * when unknown. Borrowed. */
const struct cr_mark *cr_marks_member(const cr_marks *m, const json_t *obj,
                                      const char *key);
const struct cr_mark *cr_marks_key(const cr_marks *m, const json_t *obj,
                                   const char *key);

/* Where arr[index] starts; NULL when unknown. Borrowed. */
const struct cr_mark *cr_marks_item(const cr_marks *m, const json_t *arr,
                                    size_t index);

/* Records mark (copied; its file must come from cr_marks_file of this
 * table) for node, and when parent is not NULL for parent[key] (key
 * non-NULL) or parent[index] (key NULL), with key_mark (may be NULL) as the
 * key's position. Returns 0 or CR_ENOMEM. */
int cr_marks_set(cr_marks *m, const json_t *node, const json_t *parent,
                 const char *key, size_t index, const struct cr_mark *mark,
                 const struct cr_mark *key_mark);

/* Gives every node of the tree `to` the mark of the node at the same place
 * in `from` (same shape assumed; extra nodes in `to` are skipped), so a
 * transformed copy (resolved secrets) still points at the source. Returns 0
 * or CR_ENOMEM. */
int cr_marks_copy_tree(cr_marks *m, const json_t *from, const json_t *to);

/* Parses one YAML document from text (len bytes, borrowed) named file in
 * marks (the name is interned). On success *out is the root (a new
 * reference the caller releases with json_decref; json null for an empty
 * stream) and every node is in marks. On failure returns CR_EPARSE (syntax,
 * or a refused construct), CR_ELIMIT (nested deeper than CR_YAML_MAX_DEPTH,
 * located at the collection that goes too deep) or CR_ENOMEM, fills *err
 * and leaves *out NULL; marks may hold entries of the discarded nodes, so
 * drop the table too. */
int cr_yaml_parse_string(const char *text, size_t len, const char *file,
                         cr_marks *marks, json_t **out,
                         struct cr_yaml_error *err);

/* Reads the file at path (borrowed) into *text: a new buffer of *len bytes
 * (not NUL-terminated) that the caller frees with cr__free; NULL on failure.
 * Reads at most max bytes: a larger file is refused with CR_ELIMIT and err
 * at line 1, column 1 ("file is larger than 16 MiB, the limit for one
 * file"). Also returns CR_ENOENT (no such file) or CR_EIO (any other reason
 * it cannot be read) with err->message saying why, e.g. "cannot read
 * x.yaml: Permission denied", and line 0; or CR_ENOMEM. */
int cr_yaml_read_file(const char *path, size_t max, char **text, size_t *len,
                      struct cr_yaml_error *err);

/* Reads path (borrowed, at most CR_YAML_MAX_FILE_SIZE bytes) with
 * cr_yaml_read_file and parses it as above with the path as file name.
 * Returns what either returns. */
int cr_yaml_parse_file(const char *path, cr_marks *marks, json_t **out,
                       struct cr_yaml_error *err);

/* Writes "FILE:LINE:COL: message" (or "FILE: message" when line is 0) into
 * buf (len bytes, caller owned). Returns snprintf's result. */
int cr_yaml_error_format(const struct cr_yaml_error *err, const char *file,
                         char *buf, size_t len);

/* The type of a json value as a noun with article for messages: "a string",
 * "a mapping" (object), "a list" (array), "an integer", "a number",
 * "a boolean", "null". Static. */
const char *cr_json_type_noun(const json_t *v);

#endif
