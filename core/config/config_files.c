/* config_files.c: reading a configuration's files: paths (joined
 * lexically, display names of includes), the YAML documents with their
 * size limit, includes of files and directories (in name order), include
 * cycles and depth. Applying what they hold is config.c's. */
#include "config/config_int.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

/* ---- Paths ----------------------------------------------------------------
 */

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    return cr__strdup(".");
  if (slash == path)
    return cr__strdup("/");
  return cr__strndup(path, (size_t)(slash - path));
}

/* Joins dir and rel (rel alone when absolute) lexically, dropping "."
 * segments and resolving ".." against the previous segment. */
char *cr__cfg_join_path(const char *dir, const char *rel) {
  size_t n = strlen(dir) + strlen(rel) + 2;
  char *tmp = cr__malloc(n), *out = cr__malloc(n + 1), *save = NULL;
  const char **seg = cr__malloc(n * sizeof *seg);
  size_t ns = 0, off = 0;
  if (tmp == NULL || out == NULL || seg == NULL) {
    cr__free(tmp);
    cr__free(out);
    cr__free(seg);
    return NULL;
  }
  if (rel[0] == '/')
    snprintf(tmp, n, "%s", rel);
  else
    snprintf(tmp, n, "%s/%s", dir, rel);
  int abs = tmp[0] == '/';
  for (char *t = strtok_r(tmp, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
    if (strcmp(t, ".") == 0)
      continue;
    if (strcmp(t, "..") == 0 && ns > 0 && strcmp(seg[ns - 1], "..") != 0) {
      ns--;
      continue;
    }
    if (strcmp(t, "..") == 0 && abs)
      continue; /* "/.." is "/" */
    seg[ns++] = t;
  }
  for (size_t i = 0; i < ns; i++)
    off += (size_t)snprintf(out + off, n + 1 - off, "%s%s",
                            i > 0 || abs ? "/" : "", seg[i]);
  if (ns == 0)
    snprintf(out, n + 1, "%s", abs ? "/" : ".");
  cr__free(tmp);
  cr__free(seg);
  return out;
}

/* The absolute directory of path as written (symbolic links are kept: a
 * linked configuration resolves relative paths next to the link). */
static char *abs_dir_of(const char *path) {
  char cwd[PATH_MAX], *dir = dir_of(path), *abs;
  if (dir == NULL || dir[0] == '/')
    return dir;
  abs = getcwd(cwd, sizeof cwd) ? cr__cfg_join_path(cwd, dir) : NULL;
  cr__free(dir);
  return abs;
}

/* Display name of an include: relative to the including file's display
 * directory. */
static char *disp_join(const char *disp_dir, const char *rel) {
  if (rel[0] == '/' || strcmp(disp_dir, ".") == 0)
    return cr__strdup(rel);
  size_t n = strlen(disp_dir) + strlen(rel) + 2;
  char *s = cr__malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s/%s", disp_dir, rel);
  return s;
}

/* ---- Reading files and includes ------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_yaml_ext(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && ((n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
                            (n > 4 && strcmp(name + n - 4, ".yml") == 0));
}

/* Includes every *.yaml / *.yml of a directory, in name order. */
static void include_dir(struct ld *L, const char *disp, const char *abs,
                        const struct cr_mark *from, const char *shown) {
  DIR *d = opendir(abs);
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  if (d == NULL) {
    cr__cfg_err_at(L, from, "cannot include '%s': %s", shown, strerror(errno));
    return;
  }
  while ((e = readdir(d)) != NULL) {
    if (!has_yaml_ext(e->d_name))
      continue;
    char **slot = cr__cfg_grow(L, (void **)&names, &n, sizeof *names);
    if (slot == NULL || (*slot = cr__strdup(e->d_name)) == NULL) {
      n -= slot != NULL;
      L->nomem = 1;
      break;
    }
  }
  closedir(d);
  if (n > 1)
    qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char *child = L->nomem ? NULL : disp_join(disp, names[i]);
    if (child == NULL)
      L->nomem = 1;
    else
      cr__cfg_read_tree(L, child, from, child);
    cr__free(child);
    cr__free(names[i]);
  }
  cr__free(names);
}

static void include_one(struct ld *L, const char *dir, const char *disp_dir,
                        const json_t *v, const struct cr_mark *mk) {
  struct stat st;
  const char *rel = json_string_value(v);
  if (rel[0] == '\0') {
    cr__cfg_err_at(L, mk, "empty include path");
    return;
  }
  char *abs = cr__cfg_join_path(dir, rel);
  char *disp = disp_join(disp_dir, rel);
  size_t dl = disp ? strlen(disp) : 0;
  while (dl > 1 && disp[dl - 1] == '/')
    disp[--dl] = '\0';
  if (abs == NULL || disp == NULL)
    L->nomem = 1;
  else if (stat(abs, &st) == 0 && S_ISDIR(st.st_mode))
    include_dir(L, disp, abs, mk, rel);
  else if (rel[strlen(rel) - 1] == '/')
    cr__cfg_err_at(L, mk, "cannot include '%s': %s", rel,
                   strerror(stat(abs, &st) == 0 ? ENOTDIR : errno));
  else
    cr__cfg_read_tree(L, disp, mk, rel);
  cr__free(abs);
  cr__free(disp);
}

/* Reads the includes of a document. Its strings are stable; the doc array
 * itself may move while includes are added. */
static void read_includes(struct ld *L, const json_t *root, const char *dir,
                          const char *disp_dir) {
  struct where w;
  json_t *inc = json_object_get(root, "include");
  cr__cfg_where_set(&w, "%s", "");
  if (inc == NULL || json_is_null(inc))
    return;
  if (json_is_string(inc)) {
    include_one(L, dir, disp_dir, inc, cr__cfg_mk_val(L, root, "include"));
    return;
  }
  if (!cr__cfg_want(L, &w, root, "include", inc, JSON_ARRAY))
    return;
  for (size_t i = 0; i < json_array_size(inc) && !L->nomem; i++)
    if (cr__cfg_want_item(L, &w, "include", inc, i, JSON_STRING))
      include_one(L, dir, disp_dir, json_array_get(inc, i),
                  cr__cfg_mk_item(L, inc, i));
}

static struct doc *add_doc(struct ld *L) {
  struct cr__config_priv *p = L->cfg->priv;
  return cr__cfg_grow(L, (void **)&p->docs, &p->n_docs, sizeof *p->docs);
}

static int cycle_error(struct ld *L, const char *disp,
                       const struct cr_mark *from) {
  char chain[1024];
  size_t off = 0;
  for (size_t i = 0; i < L->depth && off < sizeof chain; i++)
    off += (size_t)snprintf(chain + off, sizeof chain - off, "%s -> ",
                            L->stack[i]);
  if (off < sizeof chain)
    snprintf(chain + off, sizeof chain - off, "%s", disp);
  cr__cfg_err_at(L, from, "include cycle: %s", chain);
  return 0;
}

_Static_assert(CR_YAML_MAX_FILE_SIZE <= CR_CONFIG_MAX_TOTAL_SIZE,
               "only an include can pass the total");

/* Reads and parses disp, counting its bytes in the total of all files; an
 * include that would pass CR_CONFIG_MAX_TOTAL_SIZE is refused at from and
 * gives 1 (nothing read). Otherwise returns what cr_yaml_read_file or
 * cr_yaml_parse_string returns. */
static int parse_counted(struct ld *L, const char *disp,
                         const struct cr_mark *from, const char *shown,
                         json_t **root, struct cr_yaml_error *yerr) {
  char *text;
  size_t len;
  *root = NULL;
  int rc = cr_yaml_read_file(disp, CR_YAML_MAX_FILE_SIZE, &text, &len, yerr);
  if (rc != 0)
    return rc;
  if (len > CR_CONFIG_MAX_TOTAL_SIZE - L->total_bytes) {
    cr__cfg_err_at(L, from,
                   "cannot include '%s': the configuration files would total "
                   "more than %u MiB, the limit for a file and its includes",
                   shown, CR_CONFIG_MAX_TOTAL_SIZE >> 20);
    cr__free(text);
    return 1;
  }
  L->total_bytes += len;
  rc = cr_yaml_parse_string(text, len, disp, L->cfg->marks, root, yerr);
  cr__free(text);
  return rc;
}

/* Reads disp (the display path; relative to the working directory) and its
 * includes. from is the include's mark (NULL for the top file) and shown the
 * name used in messages at it. Returns 0, or for the top file CR_ENOENT /
 * CR_EIO when it cannot be read. */
int cr__cfg_read_tree(struct ld *L, const char *disp,
                      const struct cr_mark *from, const char *shown) {
  struct cr__config_priv *p = L->cfg->priv;
  struct cr_yaml_error yerr;
  char *canon = realpath(disp, NULL);
  int e = errno;
  if (canon == NULL) {
    if (from != NULL) {
      cr__cfg_err_at(L, from, "cannot include '%s': %s", shown, strerror(e));
      return 0;
    }
    if (cr_diags_addf(L->diags, disp, 0, 0, CR_DIAG_ERROR, "cannot read %s: %s",
                      disp, strerror(e)) != 0)
      L->nomem = 1;
    return e == ENOENT ? CR_ENOENT : CR_EIO;
  }
  for (size_t i = 0; i < L->depth; i++)
    if (strcmp(L->canon[i], canon) == 0) {
      free(canon);
      return cycle_error(L, disp, from);
    }
  for (size_t i = 0; i < p->n_docs; i++)
    if (strcmp(p->docs[i].canon, canon) == 0) {
      cr__cfg_warn_at(L, from, "'%s' is already included; ignored", shown);
      free(canon);
      return 0;
    }
  if (L->depth == MAX_INCLUDE_DEPTH) {
    cr__cfg_err_at(L, from, "includes nested deeper than %d files",
                   MAX_INCLUDE_DEPTH);
    free(canon);
    return 0;
  }
  json_t *root = NULL;
  int rc = parse_counted(L, disp, from, shown, &root, &yerr);
  if (rc == 1) {
    free(canon);
    return 0;
  }
  const char *file = cr_marks_file(L->cfg->marks, disp);
  struct doc *doc = rc == CR_ENOMEM || file == NULL ? NULL : add_doc(L);
  if (doc == NULL) {
    L->nomem = 1;
    free(canon);
    json_decref(root);
    return 0;
  }
  doc->file = file;
  doc->root = root;
  doc->canon = cr__strdup(canon);
  doc->dir = abs_dir_of(disp);
  doc->disp_dir = dir_of(disp);
  free(canon);
  if (doc->canon == NULL || doc->dir == NULL || doc->disp_dir == NULL) {
    L->nomem = 1;
    return 0;
  }
  const char **slot = cr__cfg_grow(L, (void **)&L->cfg->files, &L->cfg->n_files,
                                   sizeof *L->cfg->files);
  if (slot != NULL)
    *slot = file;
  if (rc != 0) {
    if (cr_diags_addf(L->diags, file, yerr.line, yerr.column, CR_DIAG_ERROR,
                      "%s", yerr.message) != 0)
      L->nomem = 1;
    L->errors++;
    return from == NULL && (rc == CR_ENOENT || rc == CR_EIO) ? rc : 0;
  }
  if (!json_is_object(root)) {
    if (!json_is_null(root))
      cr__cfg_err_at(L, cr__cfg_mk_node(L, root),
                     "expected a mapping at the top level, got %s",
                     cr_json_type_noun(root));
    return 0;
  }
  L->stack[L->depth] = file;
  L->canon[L->depth++] = doc->canon;
  read_includes(L, root, doc->dir, doc->disp_dir);
  L->depth--;
  return 0;
}
