/* embed_openapi.c: a build tool: reads docs/openapi.yaml (with the core's
 * own YAML reader) and writes a C file defining cr__openapi_json, the
 * document as compact JSON, which the REST API serves at /v1/openapi.json.
 * Usage: embed_openapi IN.yaml OUT.c */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yamljson.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: embed_openapi IN.yaml OUT.c\n");
    return 2;
  }
  cr_marks *marks = NULL;
  json_t *doc = NULL;
  struct cr_yaml_error err;
  if (cr_marks_new(&marks) != 0 ||
      cr_yaml_parse_file(argv[1], marks, &doc, &err) != 0) {
    char msg[1024];
    cr_yaml_error_format(&err, argv[1], msg, sizeof msg);
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  char *text = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
  FILE *out = fopen(argv[2], "w");
  if (text == NULL || out == NULL) {
    fprintf(stderr, "embed_openapi: cannot write %s\n", argv[2]);
    return 1;
  }
  size_t n = strlen(text);
  fprintf(out,
          "/* Generated from %s by tools/embed_openapi.c. */\n"
          "#include <stddef.h>\n"
          "const char cr__openapi_json[] = {\n",
          argv[1]);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%d,%s", (unsigned char)text[i], i % 24 == 23 ? "\n" : "");
  fprintf(out, "0};\nconst size_t cr__openapi_json_len = %zu;\n", n);
  fclose(out);
  free(text);
  json_decref(doc);
  cr_marks_free(marks);
  return 0;
}
