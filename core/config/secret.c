/* secret.c: ${ENV} and file: secret references (see secret.h). */
#include "config/secret.h"

#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SECRET_FILE (1u << 20)
#define FILE_PREFIX "file:"

/* A growable output string. */
struct buf {
  char *s;
  size_t len, cap;
  int nomem;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->nomem)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = cr__realloc(b->s, cap);
    if (p == NULL) {
      b->nomem = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static int is_file_ref(const char *v) {
  return strncmp(v, FILE_PREFIX, strlen(FILE_PREFIX)) == 0;
}

int cr_secret_is_ref(const char *value) {
  if (value == NULL)
    return 0;
  if (is_file_ref(value))
    return 1;
  for (const char *p = strstr(value, "${"); p; p = strstr(p + 2, "${"))
    if (p == value || p[-1] != '$')
      return 1;
  return 0;
}

static int valid_name(const char *s, size_t n) {
  if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

/* Expands ${NAME} references into b. Returns 0 or an error with errbuf. */
static int expand_env(const char *v, struct buf *b, int *was_ref, char *errbuf,
                      size_t errlen) {
  while (*v) {
    const char *p = strstr(v, "${");
    if (p == NULL) {
      put(b, v, strlen(v));
      break;
    }
    if (p > v && p[-1] == '$') { /* "$${" is a literal "${" */
      put(b, v, (size_t)(p - v - 1));
      put(b, "${", 2);
      v = p + 2;
      continue;
    }
    put(b, v, (size_t)(p - v));
    const char *end = strchr(p + 2, '}');
    if (end == NULL) {
      snprintf(errbuf, errlen, "unterminated '${' (missing '}')");
      return CR_EINVAL;
    }
    size_t n = (size_t)(end - p - 2);
    if (!valid_name(p + 2, n)) {
      snprintf(errbuf, errlen, "invalid environment variable name '%.*s'",
               (int)(n > 64 ? 64 : n), p + 2);
      return CR_EINVAL;
    }
    char name[256];
    if (n >= sizeof name) {
      snprintf(errbuf, errlen, "environment variable name too long");
      return CR_EINVAL;
    }
    memcpy(name, p + 2, n);
    name[n] = '\0';
    const char *val = getenv(name);
    if (val == NULL) {
      snprintf(errbuf, errlen, "environment variable %s is not set", name);
      return CR_ENOENT;
    }
    put(b, val, strlen(val));
    *was_ref = 1;
    v = end + 1;
  }
  return b->nomem ? CR_ENOMEM : 0;
}

static char *join_path(const char *dir, const char *path) {
  if (path[0] == '/' || dir == NULL || dir[0] == '\0')
    return cr__strdup(path);
  size_t n = strlen(dir) + strlen(path) + 2;
  char *s = cr__malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s/%s", dir, path);
  return s;
}

static int file_error(const char *path, const char *why, char *errbuf,
                      size_t errlen) {
  snprintf(errbuf, errlen, "cannot read secret file %s: %s", path, why);
  return CR_EIO;
}

static int read_secret_file(const char *path, struct buf *b, char *errbuf,
                            size_t errlen) {
  FILE *f = fopen(path, "rb");
  struct stat st;
  if (f == NULL)
    return file_error(path, strerror(errno), errbuf, errlen);
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > (off_t)MAX_SECRET_FILE) {
    const char *why = S_ISDIR(st.st_mode)    ? strerror(EISDIR)
                      : !S_ISREG(st.st_mode) ? "not a regular file"
                                             : "larger than 1 MiB";
    fclose(f);
    return file_error(path, why, errbuf, errlen);
  }
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
    put(b, chunk, got);
  int bad = ferror(f);
  fclose(f);
  if (bad)
    return file_error(path, strerror(EIO), errbuf, errlen);
  if (b->nomem)
    return CR_ENOMEM;
  if (b->s != NULL && strlen(b->s) != b->len)
    return file_error(path, "contains a NUL byte", errbuf, errlen);
  if (b->len > 0 && b->s[b->len - 1] == '\n')
    b->s[--b->len] = '\0';
  if (b->len > 0 && b->s[b->len - 1] == '\r')
    b->s[--b->len] = '\0';
  return 0;
}

static int resolve_file(const char *v, const char *base_dir, struct buf *b,
                        char *errbuf, size_t errlen) {
  const char *rel = v + strlen(FILE_PREFIX);
  if (*rel == '\0') {
    snprintf(errbuf, errlen, "empty file: reference");
    return CR_EINVAL;
  }
  char *path = join_path(base_dir, rel);
  if (path == NULL)
    return CR_ENOMEM;
  int rc = read_secret_file(path, b, errbuf, errlen);
  cr__free(path);
  return rc;
}

int cr_secret_resolve(const char *value, const char *base_dir, char **out,
                      int *was_ref, char *errbuf, size_t errlen) {
  struct buf b = {NULL, 0, 0, 0};
  int ref = 0, rc;
  *out = NULL;
  if (errlen > 0)
    errbuf[0] = '\0';
  if (is_file_ref(value)) {
    ref = 1;
    rc = resolve_file(value, base_dir, &b, errbuf, errlen);
  } else {
    rc = expand_env(value, &b, &ref, errbuf, errlen);
  }
  if (rc == 0 && b.s == NULL)
    put(&b, "", 0);
  if (rc == 0 && b.nomem)
    rc = CR_ENOMEM;
  if (rc != 0) {
    if (b.s != NULL) /* may hold part of a secret: wipe it */
      memset(b.s, 0, b.cap);
    cr__free(b.s);
    if (rc == CR_ENOMEM)
      snprintf(errbuf, errlen, "%s", cr_strerror(rc));
    return rc;
  }
  *out = b.s;
  if (was_ref != NULL)
    *was_ref = ref;
  return 0;
}

struct walk {
  const char *base_dir;
  cr_secret_error_cb on_error;
  cr_secret_value_cb on_value;
  void *ud;
  int failed;
};

static json_t *resolve_string(struct walk *w, const json_t *in) {
  char err[512], *v = NULL;
  int ref = 0;
  int rc = cr_secret_resolve(json_string_value(in), w->base_dir, &v, &ref, err,
                             sizeof err);
  if (rc == CR_ENOMEM)
    return NULL;
  if (rc != 0) {
    w->failed = 1;
    if (w->on_error != NULL)
      w->on_error(w->ud, in, err);
    return json_string("");
  }
  if (w->on_value != NULL)
    w->on_value(w->ud, v, ref);
  json_t *s = json_string_nocheck(v);
  memset(v, 0, strlen(v));
  cr__free(v);
  return s;
}

static json_t *walk(struct walk *w, const json_t *in) {
  if (json_is_string(in))
    return resolve_string(w, in);
  if (json_is_object(in)) {
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v) {
      if (o == NULL || json_object_set_new_nocheck(o, k, walk(w, v)) != 0) {
        json_decref(o);
        return NULL;
      }
    }
    return o;
  }
  if (json_is_array(in)) {
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < json_array_size(in); i++) {
      if (json_array_append_new(a, walk(w, json_array_get(in, i))) != 0) {
        json_decref(a);
        return NULL;
      }
    }
    return a;
  }
  return json_deep_copy(in);
}

int cr_secret_resolve_tree(const json_t *in, const char *base_dir,
                           cr_secret_error_cb on_error,
                           cr_secret_value_cb on_value, void *ud,
                           json_t **out) {
  struct walk w = {base_dir, on_error, on_value, ud, 0};
  *out = NULL;
  if (in == NULL)
    return CR_EINVAL;
  *out = walk(&w, in);
  if (*out == NULL)
    return CR_ENOMEM;
  return w.failed ? CR_ECONFIG : 0;
}
