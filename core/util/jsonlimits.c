/* jsonlimits.c: JSON text parsed under size and depth limits (see
 * jsonlimits.h): the pre-scan and the mapping of jansson's errors to
 * machine codes. */
#include "util/jsonlimits.h"

#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 6, 7))) static int
refuse(struct cr_json_error *err, const char *code, int line, int column,
       size_t offset, const char *fmt, ...) {
  char what[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  err->code = code;
  err->line = line;
  err->column = column;
  err->offset = offset;
  if (line > 0)
    snprintf(err->message, sizeof err->message,
             "%s at line %d, column %d (byte %zu)", what, line, column, offset);
  else
    snprintf(err->message, sizeof err->message, "%s", what);
  if (strcmp(code, "no_memory") == 0)
    return CR_ENOMEM;
  return strcmp(code, "too_large") == 0 || strcmp(code, "too_deep") == 0
             ? CR_ELIMIT
             : CR_EPARSE;
}

/* One pass over the text: the first NUL byte, or the first '[' / '{'
 * (outside strings) deeper than max_depth, is refused. */
static int prescan(const char *text, size_t len, int max_depth,
                   struct cr_json_error *err) {
  int depth = 0, in_str = 0, esc = 0, line = 1, col = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c == '\n')
      line++, col = 0;
    else if ((c & 0xC0) != 0x80) /* not a UTF-8 continuation byte */
      col++;
    if (c == '\0')
      return refuse(err, "nul_byte", line, col, i, "NUL byte in JSON text");
    if (in_str) {
      if (esc)
        esc = 0;
      else if (c == '\\')
        esc = 1;
      else if (c == '"')
        in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return refuse(err, "too_deep", line, col, i,
                      "JSON nested deeper than %d levels", max_depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return 0;
}

static const char *code_of(enum json_error_code c) {
  switch (c) {
  case json_error_out_of_memory:
    return "no_memory";
  case json_error_stack_overflow:
    return "too_deep";
  case json_error_invalid_utf8:
    return "invalid_utf8";
  case json_error_null_character:
  case json_error_null_byte_in_key:
    return "nul_byte";
  case json_error_duplicate_key:
    return "duplicate_key";
  default:
    return "malformed_json";
  }
}

/* jansson's error, without the "near '...'" context (it quotes input).
 * jansson leaves the error empty when an allocation fails; its position is
 * just after the last byte it read, except for a byte that is not UTF-8,
 * which it did not count. */
static int jansson_failed(const json_error_t *je, struct cr_json_error *err) {
  enum json_error_code jc = json_error_code(je);
  const char *code = code_of(jc);
  if (je->text[0] == '\0') /* its code is not set then */
    code = "no_memory";
  if (strcmp(code, "no_memory") == 0)
    return refuse(err, code, 0, 0, 0, "out of memory");
  char text[JSON_ERROR_TEXT_LENGTH];
  snprintf(text, sizeof text, "%s", je->text);
  char *near = strstr(text, " near ");
  if (near != NULL)
    *near = '\0';
  int unread = jc == json_error_invalid_utf8;
  size_t pos = je->position > 0 ? (size_t)je->position : 0;
  size_t offset = unread || pos == 0 ? pos : pos - 1;
  int column = (je->column > 0 ? je->column : 0) + unread;
  return refuse(err, code, je->line > 0 ? je->line : 1, column > 0 ? column : 1,
                offset, "%s", text);
}

int cr_json_parse_limited(const char *text, size_t len, size_t max_size,
                          int max_depth, json_t **out,
                          struct cr_json_error *err) {
  if (out == NULL || err == NULL || (text == NULL && len > 0))
    return CR_EINVAL;
  *out = NULL;
  memset(err, 0, sizeof *err);
  err->code = "";
  max_size = max_size ? max_size : CR_JSON_MAX_SIZE;
  max_depth = max_depth > 0 ? max_depth : CR_JSON_MAX_DEPTH;
  if (len > max_size)
    return refuse(err, "too_large", 0, 0, max_size,
                  "JSON text larger than %zu bytes", max_size);
  int rc = prescan(text, len, max_depth, err);
  if (rc != 0)
    return rc;
  json_error_t je;
  memset(&je, 0, sizeof je);
  *out = json_loadb(text ? text : "", len,
                    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
  return *out != NULL ? 0 : jansson_failed(&je, err);
}
