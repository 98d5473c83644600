/* test_jsonschema.c: the JSON Schema subset validator: the official JSON
 * Schema Test Suite (draft 7) for every supported keyword, error callbacks
 * (node pointer, JSON pointer, message), compile errors, regex translation,
 * number equality, code point lengths and allocation failures. */
#include "testutil.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/jsonschema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUITE_DIR "/usr/share/json-schema-test-suite/tests/draft7"

/* ---- helpers ------------------------------------------------------------ */

/* Resolves a JSON pointer in root; NULL when it does not resolve. */
static const json_t *resolve(const json_t *root, const char *path) {
  const json_t *cur = root;
  while (cur != NULL && *path == '/') {
    char tok[256];
    size_t n = 0;
    for (path++; *path != '\0' && *path != '/' && n + 1 < sizeof tok; path++) {
      if (path[0] == '~' && (path[1] == '0' || path[1] == '1'))
        tok[n++] = *++path == '0' ? '~' : '/';
      else
        tok[n++] = *path;
    }
    tok[n] = '\0';
    if (json_is_object(cur))
      cur = json_object_get(cur, tok);
    else if (json_is_array(cur))
      cur = json_array_get(cur, strtoul(tok, NULL, 10));
    else
      cur = NULL;
  }
  return *path == '\0' ? cur : NULL;
}

struct err {
  const json_t *node;
  char *path;
  char *message;
};

/* Collects every reported error; checks each node is found at its path in
 * root (so the node is the instance's own pointer, not a copy). */
struct errs {
  const json_t *root;
  struct err e[32];
  size_t n;
  int bad_pointer;
};

static void collect(void *ud, const json_t *node, const char *path,
                    const char *message) {
  struct errs *es = ud;
  if (node == NULL || path == NULL || message == NULL ||
      resolve(es->root, path) != node)
    es->bad_pointer++;
  if (es->n < sizeof es->e / sizeof es->e[0]) {
    es->e[es->n].node = node;
    es->e[es->n].path = strdup(path ? path : "(null)");
    es->e[es->n].message = strdup(message ? message : "(null)");
  }
  es->n++;
}

static void errs_clear(struct errs *es) {
  size_t n = es->n < 32 ? es->n : 32;
  for (size_t i = 0; i < n; i++) {
    free(es->e[i].path);
    free(es->e[i].message);
  }
  es->n = 0;
  es->bad_pointer = 0;
}

/* The error at path with message, or NULL. */
static const struct err *find_err(const struct errs *es, const char *path,
                                  const char *message) {
  for (size_t i = 0; i < es->n && i < 32; i++)
    if (strcmp(es->e[i].path, path) == 0 &&
        strcmp(es->e[i].message, message) == 0)
      return &es->e[i];
  return NULL;
}

static cr_schema *compile_ok(const char *text) {
  cr_schema *s = NULL;
  char err[256];
  int rc = cr_schema_compile_text(text, &s, err, sizeof err);
  if (rc != 0)
    print_error("compile %s: %s (%s)\n", text, err, cr_err_name(rc));
  assert_int_equal(rc, 0);
  assert_non_null(s);
  return s;
}

static json_t *parse(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
  if (j == NULL)
    print_error("bad test JSON %s: %s\n", text, je.text);
  assert_non_null(j);
  return j;
}

/* Validates instance text against schema text; returns the result code and
 * leaves the errors in es (es->root is the instance, freed by caller via
 * the returned pointer in *inst). */
static int run(const char *schema, const char *instance, struct errs *es,
               json_t **inst) {
  cr_schema *s = compile_ok(schema);
  *inst = parse(instance);
  es->root = *inst;
  int rc = cr_schema_validate(s, *inst, collect, es);
  cr_schema_free(s);
  assert_int_equal(es->bad_pointer, 0);
  return rc;
}

/* 1 if instance is valid against schema, 0 if not (asserting the code). */
static int valid(const char *schema, const char *instance) {
  struct errs es = {0};
  json_t *inst;
  int rc = run(schema, instance, &es, &inst);
  assert_true(rc == 0 || rc == CR_ESCHEMA);
  assert_int_equal(rc == 0, es.n == 0);
  errs_clear(&es);
  json_decref(inst);
  return rc == 0;
}

/* The single error message for instance against schema. */
static void assert_message(const char *schema, const char *instance,
                           const char *path, const char *message) {
  struct errs es = {0};
  json_t *inst;
  assert_int_equal(run(schema, instance, &es, &inst), CR_ESCHEMA);
  if (es.n != 1 || find_err(&es, path, message) == NULL)
    print_error("want %s: %s, got %zu errors, first %s: %s\n", path, message,
                es.n, es.n ? es.e[0].path : "", es.n ? es.e[0].message : "");
  assert_int_equal(es.n, 1);
  assert_non_null(find_err(&es, path, message));
  errs_clear(&es);
  json_decref(inst);
}

/* Compiles text expecting rc; errbuf must contain want. */
static void assert_compile_fails(const char *text, int rc, const char *want) {
  cr_schema *s = (cr_schema *)1;
  char err[256] = "";
  int got = cr_schema_compile_text(text, &s, err, sizeof err);
  if (got != rc || strstr(err, want) == NULL)
    print_error("%s: got %s \"%s\", want %s \"%s\"\n", text, cr_err_name(got),
                err, cr_err_name(rc), want);
  assert_int_equal(got, rc);
  assert_null(s);
  assert_non_null(strstr(err, want));
}

/* ---- the official test suite -------------------------------------------- */

struct suite_count {
  int groups, ran, skipped, cases, failed;
};

static void run_suite_file(const char *file, struct suite_count *c) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.json", SUITE_DIR, file);
  json_error_t je;
  json_t *groups = json_load_file(path, 0, &je);
  if (groups == NULL)
    print_error("cannot load %s: %s (scripts/deps.sh installs "
                "json-schema-test-suite)\n",
                path, je.text);
  assert_non_null(groups);
  size_t gi;
  json_t *g;
  json_array_foreach(groups, gi, g) {
    const char *gdesc = json_string_value(json_object_get(g, "description"));
    cr_schema *s = NULL;
    char err[256] = "";
    int rc =
        cr_schema_compile(json_object_get(g, "schema"), &s, err, sizeof err);
    c->groups++;
    if (rc == CR_ENOTSUP) {
      assert_null(s);
      c->skipped++;
      continue;
    }
    if (rc != 0)
      print_error("%s: group \"%s\": compile: %s\n", file, gdesc, err);
    assert_int_equal(rc, 0);
    c->ran++;
    size_t ti;
    json_t *t;
    json_array_foreach(json_object_get(g, "tests"), ti, t) {
      struct errs es = {.root = json_object_get(t, "data")};
      rc = cr_schema_validate(s, es.root, collect, &es);
      int want = json_is_true(json_object_get(t, "valid"));
      int ok = (rc == 0) == want && (rc == 0 || rc == CR_ESCHEMA) &&
               (rc == 0) == (es.n == 0) && es.bad_pointer == 0;
      c->cases++;
      if (!ok) {
        c->failed++;
        print_error("%s: \"%s\" / \"%s\": want %s, got %s (%zu errors)\n", file,
                    gdesc, json_string_value(json_object_get(t, "description")),
                    want ? "valid" : "invalid", cr_err_name(rc), es.n);
      }
      errs_clear(&es);
    }
    cr_schema_free(s);
  }
  json_decref(groups);
}

static void test_official_suite(void **state) {
  (void)state;
  static const char *const files[] = {
      "type",           "properties",
      "required",       "additionalProperties",
      "enum",           "const",
      "items",          "minItems",
      "maxItems",       "minLength",
      "maxLength",      "pattern",
      "minimum",        "maximum",
      "boolean_schema", "optional/zeroTerminatedFloats"};
  struct suite_count total = {0};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    struct suite_count c = {0};
    run_suite_file(files[i], &c);
    print_message("suite %-30s groups %2d ran %2d skipped %2d cases %3d "
                  "failed %d\n",
                  files[i], c.groups, c.ran, c.skipped, c.cases, c.failed);
    assert_true(c.ran >= 1);
    assert_int_equal(c.failed, 0);
    total.groups += c.groups;
    total.ran += c.ran;
    total.cases += c.cases;
  }
  print_message("suite total: %d of %d groups ran, %d cases\n", total.ran,
                total.groups, total.cases);
  /* Only groups mixing in patternProperties may be skipped. */
  assert_true(total.ran * 10 >= total.groups * 9);
  assert_true(total.cases >= 150);
}

/* ---- error reporting ---------------------------------------------------- */

static const char *const config_schema =
    "{\"type\": \"object\", \"required\": [\"api_key\", \"streams\"],"
    " \"additionalProperties\": false,"
    " \"properties\": {"
    "  \"api_key\": {\"type\": \"string\", \"minLength\": 3},"
    "  \"region\": {\"enum\": [\"eu\", \"us\"]},"
    "  \"streams\": {\"type\": \"array\", \"items\": {\"type\": \"object\","
    "    \"required\": [\"name\"],"
    "    \"properties\": {\"name\": {\"type\": \"string\"},"
    "      \"opts\": {\"type\": \"object\", \"required\": [\"mode\"],"
    "        \"additionalProperties\": {\"type\": \"integer\"}}}}}}}";

static void test_nested_errors(void **state) {
  (void)state;
  struct errs es = {0};
  json_t *inst;
  int rc = run(config_schema,
               "{\"api_key\": \"ab\", \"region\": \"asia\", \"foo\": 1,"
               " \"streams\": [{\"name\": \"a\"}, 7,"
               "  {\"name\": \"c\", \"opts\": {\"depth\": \"x\"}}]}",
               &es, &inst);
  assert_int_equal(rc, CR_ESCHEMA);
  assert_int_equal(es.n, 6);
  json_t *streams = json_object_get(inst, "streams");
  json_t *opts = json_object_get(json_array_get(streams, 2), "opts");
  const struct err *e;
  e = find_err(&es, "/api_key", "string shorter than 3 characters");
  assert_non_null(e);
  assert_ptr_equal(e->node, json_object_get(inst, "api_key"));
  e = find_err(&es, "/region", "value must be one of \"eu\", \"us\"");
  assert_non_null(e);
  assert_ptr_equal(e->node, json_object_get(inst, "region"));
  e = find_err(&es, "/foo", "property \"foo\" is not allowed");
  assert_non_null(e);
  assert_ptr_equal(e->node, json_object_get(inst, "foo"));
  e = find_err(&es, "/streams/1", "expected object, got integer");
  assert_non_null(e);
  assert_ptr_equal(e->node, json_array_get(streams, 1));
  e = find_err(&es, "/streams/2/opts", "missing required property \"mode\"");
  assert_non_null(e);
  assert_ptr_equal(e->node, opts);
  e = find_err(&es, "/streams/2/opts/depth", "expected integer, got string");
  assert_non_null(e);
  assert_ptr_equal(e->node, json_object_get(opts, "depth"));
  errs_clear(&es);
  json_decref(inst);

  /* Missing required properties at the root point at the root object. */
  rc = run(config_schema, "{}", &es, &inst);
  assert_int_equal(rc, CR_ESCHEMA);
  assert_int_equal(es.n, 2);
  e = find_err(&es, "", "missing required property \"api_key\"");
  assert_non_null(e);
  assert_ptr_equal(e->node, inst);
  assert_non_null(find_err(&es, "", "missing required property \"streams\""));
  errs_clear(&es);
  json_decref(inst);

  /* A valid config reports nothing; a NULL callback only counts. */
  rc = run(config_schema,
           "{\"api_key\": \"abc\", \"streams\": [{\"name\": \"a\","
           " \"opts\": {\"mode\": 1, \"depth\": 2.0}}]}",
           &es, &inst);
  assert_int_equal(rc, 0);
  assert_int_equal(es.n, 0);
  json_decref(inst);
  cr_schema *s = compile_ok(config_schema);
  inst = parse("{\"streams\": 1}");
  assert_int_equal(cr_schema_validate(s, inst, NULL, NULL), CR_ESCHEMA);
  assert_int_equal(cr_schema_validate(NULL, inst, NULL, NULL), CR_EINVAL);
  assert_int_equal(cr_schema_validate(s, NULL, NULL, NULL), CR_EINVAL);
  json_decref(inst);
  cr_schema_free(s);
  cr_schema_free(NULL);
}

static void test_all_errors_of_one_value(void **state) {
  (void)state;
  struct errs es = {0};
  json_t *inst;
  int rc = run("{\"type\": [\"integer\", \"null\"], \"minimum\": 5,"
               " \"maximum\": 1, \"enum\": [7], \"const\": 7}",
               "3", &es, &inst);
  assert_int_equal(rc, CR_ESCHEMA);
  assert_int_equal(es.n, 4);
  assert_non_null(find_err(&es, "", "must be >= 5"));
  assert_non_null(find_err(&es, "", "must be <= 1"));
  assert_non_null(find_err(&es, "", "value must be one of 7"));
  assert_non_null(find_err(&es, "", "value must be 7"));
  errs_clear(&es);
  json_decref(inst);

  /* Every bad item of an array, each at its own index. */
  rc = run("{\"items\": {\"type\": \"string\"}}", "[\"a\", 1, null, \"d\", []]",
           &es, &inst);
  assert_int_equal(rc, CR_ESCHEMA);
  assert_int_equal(es.n, 3);
  assert_non_null(find_err(&es, "/1", "expected string, got integer"));
  assert_non_null(find_err(&es, "/2", "expected string, got null"));
  assert_non_null(find_err(&es, "/4", "expected string, got array"));
  errs_clear(&es);
  json_decref(inst);
}

static void test_messages(void **state) {
  (void)state;
  assert_message("{\"type\": \"string\"}", "1", "",
                 "expected string, got integer");
  assert_message("{\"type\": \"integer\"}", "1.5", "",
                 "expected integer, got number");
  assert_message("{\"type\": [\"string\", \"integer\", \"null\"]}", "true", "",
                 "expected null, integer or string, got boolean");
  assert_message("{\"minLength\": 1}", "\"\"", "",
                 "string shorter than 1 character");
  assert_message("{\"maxLength\": 2}", "\"abc\"", "",
                 "string longer than 2 characters");
  assert_message("{\"pattern\": \"^x\"}", "\"ax\"", "",
                 "does not match pattern \"^x\"");
  assert_message("{\"minimum\": 1}", "0", "", "must be >= 1");
  assert_message("{\"maximum\": 1.5}", "2", "", "must be <= 1.5");
  assert_message("{\"minItems\": 2}", "[1]", "",
                 "array has fewer than 2 items");
  assert_message("{\"maxItems\": 1}", "[1, 2]", "",
                 "array has more than 1 item");
  assert_message("{\"const\": {\"a\": [1]}}", "{\"a\": [2]}", "",
                 "value must be {\"a\":[1]}");
  assert_message("{\"enum\": [\"a\", 1, null]}", "\"b\"", "",
                 "value must be one of \"a\", 1, null");
  assert_message("{\"properties\": {\"a\": false}}", "{\"a\": 1}", "/a",
                 "no value is allowed here");
  assert_message("false", "{}", "", "no value is allowed here");
  /* JSON pointer escaping of ~ and /. */
  assert_message("{\"additionalProperties\": false}", "{\"a/b~c\": 1}",
                 "/a~1b~0c", "property \"a/b~c\" is not allowed");
  assert_message("{\"items\": [{\"type\": \"string\"}, false]}",
                 "[\"a\", 2, 3]", "/1", "no value is allowed here");
  /* A long enum is cut, not overflowed. */
  char big[4096] = "{\"enum\": [";
  for (int i = 0; i < 200; i++)
    snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"value%03d\"",
             i ? ", " : "", i);
  strcat(big, "]}");
  struct errs es = {0};
  json_t *inst;
  assert_int_equal(run(big, "\"x\"", &es, &inst), CR_ESCHEMA);
  assert_int_equal(es.n, 1);
  assert_non_null(strstr(es.e[0].message, "value must be one of \"value000\""));
  assert_non_null(strstr(es.e[0].message, "..."));
  errs_clear(&es);
  json_decref(inst);
}

/* ---- semantics ---------------------------------------------------------- */

static void test_numbers(void **state) {
  (void)state;
  const char *integer = "{\"type\": \"integer\"}";
  assert_true(valid(integer, "1"));
  assert_true(valid(integer, "1.0"));
  assert_true(valid(integer, "-3e2"));
  assert_false(valid(integer, "1.5"));
  assert_true(valid("{\"type\": \"number\"}", "1"));
  assert_false(valid("{\"type\": \"number\"}", "\"1\""));
  /* enum/const equality: 1 == 1.0, deep, no cross-type. */
  assert_true(valid("{\"enum\": [1]}", "1.0"));
  assert_true(valid("{\"enum\": [1.0]}", "1"));
  assert_false(valid("{\"enum\": [1]}", "true"));
  assert_false(valid("{\"enum\": [0]}", "false"));
  assert_false(valid("{\"enum\": [\"1\"]}", "1"));
  assert_true(valid("{\"const\": {\"a\": [1, {\"b\": 2.0}]}}",
                    "{\"a\": [1.0, {\"b\": 2}]}"));
  assert_false(valid("{\"const\": {\"a\": [1, {\"b\": 2.0}]}}",
                     "{\"a\": [1.0, {\"b\": 2, \"c\": 3}]}"));
  assert_false(valid("{\"const\": [1, 2]}", "[2, 1]"));
  assert_true(valid("{\"const\": null}", "null"));
  assert_false(valid("{\"const\": null}", "0"));
  /* Exact integer/real comparison at the edges of double precision. */
  assert_false(valid("{\"maximum\": 9007199254740992.0}", "9007199254740993"));
  assert_true(valid("{\"maximum\": 9007199254740993}", "9007199254740992.0"));
  assert_false(valid("{\"const\": 9007199254740993}", "9007199254740992.0"));
  assert_true(valid("{\"minimum\": -1.5}", "-1"));
  assert_false(valid("{\"minimum\": -1.5}", "-2"));
  assert_true(valid("{\"minimum\": 1e300}", "1e301"));
  assert_true(valid("{\"maximum\": 1e300}", "9223372036854775807"));
  assert_false(valid("{\"minimum\": 1e300}", "9223372036854775807"));
  assert_true(valid("{\"minimum\": -1e300}", "-9223372036854775807"));
  /* Counts given as 2.0 are accepted. */
  assert_false(valid("{\"minItems\": 2.0}", "[1]"));
}

static void test_lengths_count_code_points(void **state) {
  (void)state;
  /* "é€😀" is 3 code points, 9 bytes. */
  const char *s = "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"";
  assert_true(valid("{\"maxLength\": 3}", s));
  assert_false(valid("{\"maxLength\": 2}", s));
  assert_true(valid("{\"minLength\": 3}", s));
  assert_false(valid("{\"minLength\": 4}", s));
  assert_true(valid("{\"minLength\": 0, \"maxLength\": 0}", "\"\""));
}

static void test_patterns(void **state) {
  (void)state;
  /* Unanchored search. */
  assert_true(valid("{\"pattern\": \"b+\"}", "\"abbc\""));
  assert_false(valid("{\"pattern\": \"^b+$\"}", "\"abbc\""));
  /* Escapes translated to classes, in and out of brackets. */
  const char *digits = "{\"pattern\": \"^\\\\d{3}-\\\\w+\\\\s\\\\S$\"}";
  assert_true(valid(digits, "\"123-ab_9 x\""));
  assert_false(valid(digits, "\"12a-ab_9 x\""));
  assert_false(valid(digits, "\"123-ab_9  \""));
  assert_true(valid("{\"pattern\": \"^[\\\\d.]+$\"}", "\"1.5\""));
  assert_false(valid("{\"pattern\": \"^[\\\\d.]+$\"}", "\"1,5\""));
  assert_true(valid("{\"pattern\": \"^\\\\D\\\\W$\"}", "\"a-\""));
  assert_false(valid("{\"pattern\": \"^\\\\D\\\\W$\"}", "\"1-\""));
  /* Literal specials and the awkward bracket characters. */
  assert_true(valid("{\"pattern\": \"^a\\\\.b\\\\/c\\\\{$\"}", "\"a.b/c{\""));
  assert_false(valid("{\"pattern\": \"^a\\\\.b$\"}", "\"axb\""));
  const char *brackets = "{\"pattern\": \"^[\\\\]\\\\[^a-c-]+$\"}";
  assert_true(valid(brackets, "\"][^b-\""));
  assert_false(valid(brackets, "\"d\""));
  assert_true(valid("{\"pattern\": \"^[^\\\\]x]$\"}", "\"y\""));
  assert_false(valid("{\"pattern\": \"^[^\\\\]x]$\"}", "\"]\""));
  assert_true(valid("{\"pattern\": \"^[\\\\^]$\"}", "\"^\""));
  assert_false(valid("{\"pattern\": \"^[\\\\^]$\"}", "\"a\""));
  /* Non-capturing groups, lazy quantifiers, counted repetition. */
  assert_true(valid("{\"pattern\": \"^(?:ab)+?c{2,}?$\"}", "\"ababcc\""));
  assert_false(valid("{\"pattern\": \"^(?:ab)+?c{2,}?$\"}", "\"abc\""));
  /* \u escapes and "." (not a newline). */
  assert_true(
      valid("{\"pattern\": \"^caf\\\\u00e9+$\"}", "\"caf\xc3\xa9\xc3\xa9\""));
  assert_false(valid("{\"pattern\": \"^a.b$\"}", "\"a\\nb\""));
  assert_true(valid("{\"pattern\": \"^a.b$\"}", "\"a b\""));
  /* Constructs outside the subset, and broken expressions. */
  assert_compile_fails("{\"pattern\": \"a(?=b)\"}", CR_ENOTSUP, "(?=");
  assert_compile_fails("{\"pattern\": \"\\\\bx\"}", CR_ENOTSUP, "\\b");
  assert_compile_fails("{\"pattern\": \"(a)\\\\1\"}", CR_ENOTSUP, "\\1");
  assert_compile_fails("{\"pattern\": \"[\\\\D]\"}", CR_ENOTSUP, "\\D");
  assert_compile_fails("{\"pattern\": \"[]\"}", CR_ENOTSUP, "empty class");
  assert_compile_fails("{\"pattern\": \"a(\"}", CR_EINVAL, "pattern \"a(\"");
  assert_compile_fails("{\"pattern\": \"[z-a]\"}", CR_EINVAL, "out of order");
  assert_compile_fails("{\"pattern\": \"[ab\"}", CR_EINVAL, "unterminated");
  assert_compile_fails("{\"pattern\": \"ab\\\\\"}", CR_EINVAL, "backslash");
}

static void test_compile_errors(void **state) {
  (void)state;
  /* Unsupported keywords are named, with their place in the schema. */
  assert_compile_fails("{\"properties\": {\"a\": {\"allOf\": []}}}", CR_ENOTSUP,
                       "unsupported keyword \"allOf\" at /properties/a/allOf");
  assert_compile_fails("{\"$ref\": \"#/x\"}", CR_ENOTSUP, "\"$ref\" at /$ref");
  assert_compile_fails("{\"items\": [{}, {\"uniqueItems\": true}]}", CR_ENOTSUP,
                       "\"uniqueItems\" at /items/1/uniqueItems");
  assert_compile_fails("{\"definitions\": {}}", CR_ENOTSUP, "definitions");
  assert_compile_fails("{\"exclusiveMinimum\": 1}", CR_ENOTSUP,
                       "exclusiveMinimum");
  /* Invalid schemas. */
  assert_compile_fails("{\"type\": 5}", CR_EINVAL, "at /type");
  assert_compile_fails("{\"type\": \"float\"}", CR_EINVAL, "\"type\"");
  assert_compile_fails("{\"type\": []}", CR_EINVAL, "\"type\"");
  assert_compile_fails("{\"required\": [1]}", CR_EINVAL, "\"required\"");
  assert_compile_fails("{\"minLength\": -1}", CR_EINVAL, "at /minLength");
  assert_compile_fails("{\"maxItems\": 1.5}", CR_EINVAL, "at /maxItems");
  assert_compile_fails("{\"enum\": 1}", CR_EINVAL, "\"enum\"");
  assert_compile_fails("{\"minimum\": \"1\"}", CR_EINVAL, "\"minimum\"");
  assert_compile_fails("{\"properties\": {\"a\": 1}}", CR_EINVAL,
                       "at /properties/a");
  assert_compile_fails("{\"additionalProperties\": []}", CR_EINVAL,
                       "at /additionalProperties");
  assert_compile_fails("[]", CR_EINVAL, "at the schema root");
  /* Not JSON: jansson's position. */
  assert_compile_fails("{\"type\":\n \"string\",}", CR_EPARSE, "line 2");
  assert_compile_fails("{\"a\": 1, \"a\": 2}", CR_EPARSE, "duplicate");
  /* Arguments. */
  cr_schema *s = NULL;
  assert_int_equal(cr_schema_compile(NULL, &s, NULL, 0), CR_EINVAL);
  assert_int_equal(cr_schema_compile_text(NULL, &s, NULL, 0), CR_EINVAL);
  assert_null(s);
  /* Annotations, format and unknown keywords are accepted and ignored. */
  s = compile_ok("{\"title\": \"t\", \"description\": \"d\", \"default\": 1,"
                 " \"examples\": [1], \"$schema\": \"x\", \"$id\": \"y\","
                 " \"$comment\": \"c\", \"format\": \"email\","
                 " \"readOnly\": true, \"writeOnly\": false,"
                 " \"deprecated\": true, \"x-vendor\": {\"allOf\": 1}}");
  json_t *inst = parse("\"not an email\"");
  assert_int_equal(cr_schema_validate(s, inst, NULL, NULL), 0);
  json_decref(inst);
  cr_schema_free(s);
  /* The compiled schema outlives the json it came from. */
  json_t *schema = parse("{\"enum\": [{\"a\": 1}], \"minimum\": 2}");
  assert_int_equal(cr_schema_compile(schema, &s, NULL, 0), 0);
  json_decref(schema);
  inst = parse("{\"a\": 1.0}");
  assert_int_equal(cr_schema_validate(s, inst, NULL, NULL), 0);
  json_decref(inst);
  cr_schema_free(s);
}

/* ---- allocation failures ------------------------------------------------ */

static void test_alloc_failures(void **state) {
  (void)state;
  json_t *inst =
      parse("{\"api_key\": \"ab\", \"region\": \"x\", \"extra\": 1,"
            " \"streams\": [{\"name\": \"a\"}, 7,"
            "  {\"name\": 1, \"opts\": {\"a_rather_long_option_name_that_"
            "grows_the_path_buffer_past_its_first_size\": \"x\"}}]}");
  struct errs base = {.root = inst};
  cr_schema *bs = compile_ok(config_schema);
  assert_int_equal(cr_schema_validate(bs, inst, collect, &base), CR_ESCHEMA);
  assert_int_equal(base.n, 7);
  errs_clear(&base);
  cr_schema_free(bs);
  cr_test_alloc_install();
  for (long n = 0;; n++) {
    cr_test_alloc_fail_after(n);
    cr_schema *s = NULL;
    char err[256];
    struct errs es = {.root = inst};
    int rc = cr_schema_compile_text(config_schema, &s, err, sizeof err);
    if (rc == 0)
      rc = cr_schema_validate(s, inst, collect, &es);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    assert_int_equal(es.bad_pointer, 0);
    if (failed) {
      assert_int_equal(rc, CR_ENOMEM);
      assert_true(s != NULL || strstr(err, "out of memory") != NULL);
    } else {
      assert_int_equal(rc, CR_ESCHEMA);
      assert_int_equal(es.n, 7);
    }
    errs_clear(&es);
    cr_schema_free(s);
    if (!failed)
      break;
  }
  /* A pattern's translation buffer fails cleanly too. */
  for (long n = 0;; n++) {
    cr_test_alloc_fail_after(n);
    cr_schema *s = NULL;
    int rc = cr_schema_compile_text(
        "{\"properties\": {\"p\": {\"pattern\": \"^[\\\\d\\\\]a-f]+\\\\s\"}}}",
        &s, NULL, 0);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    assert_int_equal(rc, failed ? CR_ENOMEM : 0);
    assert_true(failed ? s == NULL : s != NULL);
    cr_schema_free(s);
    if (!failed)
      break;
  }
  json_decref(inst);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_official_suite),
      cmocka_unit_test(test_nested_errors),
      cmocka_unit_test(test_all_errors_of_one_value),
      cmocka_unit_test(test_messages),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_lengths_count_code_points),
      cmocka_unit_test(test_patterns),
      cmocka_unit_test(test_compile_errors),
      cmocka_unit_test(test_alloc_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
