/* plugin_host.c: finds, loads, validates and holds provider plugins (see
 * plugin_host.h and sdk/include/connrun/plugin.h).
 *
 * cr_plugin_host_load_file checks, in this order (first failure wins), and
 * refuses with exactly one of these reasons. The texts are stable: tests and
 * operators match on them.
 *
 *  1. "cannot stat: <strerror>"                          CR_ENOENT/EPERM/EIO
 *     "not a regular file"                                         CR_EPLUGIN
 *     "file is writable by group or others (mode 0666); refusing to load"
 *                                                                    CR_EPERM
 *     "cannot stat directory <dir>: <strerror>"          CR_ENOENT/EPERM/EIO
 *     "directory <dir> is writable by group or others (mode 0777); refusing
 *      to load"                                                      CR_EPERM
 *     (a symlink is checked at the link's directory and at the target's)
 *  2. "cannot load: <dlerror text>"                                CR_EPLUGIN
 *  3. "not a connrun plugin (no connrun_plugin_entry symbol)"      CR_EPLUGIN
 *  4. "entry function returned no descriptor"                      CR_EPLUGIN
 *  5. "wrong magic 0x%08x (expected 0x%08x): not a connrun plugin or a
 *      corrupt build"                                              CR_EPLUGIN
 *  6. "built for ABI %u.%u; this host speaks ABI %u.x (major versions must
 *      match)"                                                        CR_EABI
 *  7. "needs ABI %u.%u but this host provides %u.%u; upgrade connrun" CR_EABI
 *  8. "descriptor too small (%u bytes, ABI 1.0 needs at least %zu)"   CR_EABI
 *  9. "missing required field 'name'" (also 'version', 'auth_methods')
 *     "invalid name '<name>' (must match [a-z0-9_-]{1,64})"         CR_EPLUGIN
 *     "unknown capability bits 0x%x"                               CR_EPLUGIN
 * 10. "missing required callback 'create'" (also 'destroy')
 *     "missing required callback 'read' (capability read declared)" (also
 *      health_check, write)                                        CR_EPLUGIN
 * 11. "invalid credentials_schema: <message>" (also config_schema)
 *     "invalid streams_json: <message>"                            CR_EPLUGIN
 * 12. "duplicate provider '<name>' (already loaded from <path>)"    CR_EEXIST
 *     "out of memory"                                               CR_ENOMEM
 *
 * A refused plugin is dlclose()d and everything allocated for it is freed.
 * cr_plugin_host_load_dir reports a directory it cannot scan (path = the
 * directory) as "cannot open plugin directory: <strerror>" or "cannot read
 * plugin directory".
 *
 * Note that dlopen() runs the file's ELF initializers before step 3: the
 * permission checks of step 1 are what keeps untrusted code out.
 */
#include "plugin/plugin_host.h"

#include "plugin/host_api.h"
#include "plugin/plugin_host_internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/error.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 64
#define REASON_LEN 2048

struct cr_plugin {
  atomic_int refs; /* hosts holding it; dlclose()d by the last */
  char *path;
  void *dl;
  int fd; /* the file as loaded (kept open: its /proc/self/fd name) */
  struct cr_plugin_file_id id;
  int64_t loaded_at_ms;
  /* Host-side, full-size, zero-filled copy of the plugin's descriptor. */
  struct cr_plugin_descriptor desc;
  cr_schema *credentials_schema;
  cr_schema *config_schema;
  cr_schema *settings_schema; /* NULL: no settings accepted */
};

struct cr_plugin_host {
  atomic_int refs;
  const struct cr_host_api *api;
  cr_plugin **plugins;
  size_t count;
  size_t cap;
  struct cr__plugin_refusal *refused; /* files refused by the last scan */
  size_t n_refused, cap_refused;
};

__attribute__((format(printf, 4, 5))) static int
refuse(char *errbuf, size_t errlen, int err, const char *fmt, ...) {
  if (errbuf == NULL || errlen == 0)
    return err;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
  return err;
}

static int errno_to_cr(int e) {
  switch (e) {
  case ENOENT:
  case ENOTDIR:
    return CR_ENOENT;
  case EACCES:
  case EPERM:
    return CR_EPERM;
  case ENOMEM:
    return CR_ENOMEM;
  default:
    return CR_EIO;
  }
}

/* ---- Permissions ---- */

/* The directory part of path ("." when none). Caller frees with cr__free. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    return cr__strdup(".");
  if (slash == path)
    return cr__strdup("/");
  return cr__strndup(path, (size_t)(slash - path));
}

static int check_dir(const char *path, char *errbuf, size_t errlen) {
  char *dir = dir_of(path);
  if (dir == NULL)
    return refuse(errbuf, errlen, CR_ENOMEM, "out of memory");
  struct stat st;
  int rc = 0;
  if (stat(dir, &st) != 0) {
    int e = errno;
    rc = refuse(errbuf, errlen, errno_to_cr(e), "cannot stat directory %s: %s",
                dir, strerror(e));
  } else if (st.st_mode & 022) {
    rc = refuse(errbuf, errlen, CR_EPERM,
                "directory %s is writable by group or others (mode %04o); "
                "refusing to load",
                dir, (unsigned)(st.st_mode & 07777));
  }
  cr__free(dir);
  return rc;
}

/* The file itself: stat'ed (rc: stat's result), regular, not writable by
 * group or others. */
static int check_file(int rc, const struct stat *st, char *errbuf,
                      size_t errlen) {
  if (rc != 0) {
    int e = errno;
    return refuse(errbuf, errlen, errno_to_cr(e), "cannot stat: %s",
                  strerror(e));
  }
  if (!S_ISREG(st->st_mode))
    return refuse(errbuf, errlen, CR_EPLUGIN, "not a regular file");
  if (st->st_mode & 022)
    return refuse(errbuf, errlen, CR_EPERM,
                  "file is writable by group or others (mode %04o); refusing "
                  "to load",
                  (unsigned)(st->st_mode & 07777));
  return 0;
}

/* A plugin runs with the daemon's rights: refuse files that someone else
 * could have replaced (writable file or directory). */
static int check_permissions(const char *path, char *errbuf, size_t errlen) {
  struct stat st;
  int rc = check_file(stat(path, &st), &st, errbuf, errlen);
  if (rc != 0)
    return rc;
  rc = check_dir(path, errbuf, errlen);
  if (rc != 0)
    return rc;
  struct stat lst;
  char real[PATH_MAX];
  if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) &&
      realpath(path, real) != NULL)
    return check_dir(real, errbuf, errlen);
  return 0;
}

/* ---- Descriptor checks ---- */

int cr__plugin_desc_import(const struct cr_plugin_descriptor *src,
                           size_t min_size, struct cr_plugin_descriptor *dst,
                           char *errbuf, size_t errlen) {
  if (src->magic != CR_PLUGIN_MAGIC)
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "wrong magic 0x%08x (expected 0x%08x): not a connrun plugin "
                  "or a corrupt build",
                  (unsigned)src->magic, (unsigned)CR_PLUGIN_MAGIC);
  if (src->abi_major != CR_PLUGIN_ABI_MAJOR)
    return refuse(errbuf, errlen, CR_EABI,
                  "built for ABI %u.%u; this host speaks ABI %u.x (major "
                  "versions must match)",
                  (unsigned)src->abi_major, (unsigned)src->abi_minor,
                  (unsigned)CR_PLUGIN_ABI_MAJOR);
  if (src->abi_minor > CR_PLUGIN_ABI_MINOR)
    return refuse(errbuf, errlen, CR_EABI,
                  "needs ABI %u.%u but this host provides %u.%u; upgrade "
                  "connrun",
                  (unsigned)src->abi_major, (unsigned)src->abi_minor,
                  (unsigned)CR_PLUGIN_ABI_MAJOR, (unsigned)CR_PLUGIN_ABI_MINOR);
  if (src->struct_size < min_size)
    return refuse(errbuf, errlen, CR_EABI,
                  "descriptor too small (%u bytes, ABI 1.0 needs at least %zu)",
                  (unsigned)src->struct_size, min_size);
  size_t n = src->struct_size < sizeof *dst ? src->struct_size : sizeof *dst;
  memset(dst, 0, sizeof *dst);
  memcpy(dst, src, n);
  return 0;
}

static int name_is_valid(const char *name) {
  size_t n = 0;
  for (const char *c = name; *c != '\0'; c++, n++) {
    if (n >= NAME_MAX_LEN)
      return 0;
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
          *c == '-'))
      return 0;
  }
  return n > 0;
}

/* Copies at most NAME_MAX_LEN printable characters of s into buf (which has
 * NAME_MAX_LEN + 4 bytes), "..." marking a cut. Keeps a reason one line. */
static void printable_copy(const char *s, char *buf) {
  size_t i = 0;
  for (; s[i] != '\0' && i < NAME_MAX_LEN; i++)
    buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  buf[i] = '\0';
  if (s[i] != '\0')
    memcpy(buf + i, "...", 4);
}

static int check_fields(const struct cr_plugin_descriptor *d, char *errbuf,
                        size_t errlen) {
  if (d->name == NULL)
    return refuse(errbuf, errlen, CR_EPLUGIN, "missing required field 'name'");
  if (!name_is_valid(d->name)) {
    char shown[NAME_MAX_LEN + 4];
    printable_copy(d->name, shown);
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "invalid name '%s' (must match [a-z0-9_-]{1,64})", shown);
  }
  if (d->version == NULL || d->version[0] == '\0')
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "missing required field 'version'");
  if (d->auth_methods == NULL || d->auth_methods[0] == NULL)
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "missing required field 'auth_methods'");
  uint32_t known =
      CR_PLUGIN_CAP_HEALTH_CHECK | CR_PLUGIN_CAP_READ | CR_PLUGIN_CAP_WRITE;
  if (d->capabilities & ~known)
    return refuse(errbuf, errlen, CR_EPLUGIN, "unknown capability bits 0x%x",
                  (unsigned)(d->capabilities & ~known));
  return 0;
}

static int check_callbacks(const struct cr_plugin_descriptor *d, char *errbuf,
                           size_t errlen) {
  const char *missing = NULL;
  if (d->create == NULL)
    missing = "create";
  else if (d->destroy == NULL)
    missing = "destroy";
  if (missing != NULL)
    return refuse(errbuf, errlen, CR_EPLUGIN, "missing required callback '%s'",
                  missing);
  if ((d->capabilities & CR_PLUGIN_CAP_HEALTH_CHECK) && d->health_check == NULL)
    missing = "health_check";
  else if ((d->capabilities & CR_PLUGIN_CAP_READ) && d->read == NULL)
    missing = "read";
  else if ((d->capabilities & CR_PLUGIN_CAP_WRITE) && d->write == NULL)
    missing = "write";
  if (missing != NULL)
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "missing required callback '%s' (capability %s declared)",
                  missing, missing);
  return 0;
}

static int compile_schema(const char *field, const char *text, cr_schema **out,
                          char *errbuf, size_t errlen) {
  if (text == NULL)
    return 0;
  char msg[512] = "";
  int rc = cr_schema_compile_text(text, out, msg, sizeof msg);
  if (rc == CR_ENOMEM)
    return refuse(errbuf, errlen, CR_ENOMEM, "out of memory");
  if (rc != 0)
    return refuse(errbuf, errlen, CR_EPLUGIN, "invalid %s: %s", field,
                  msg[0] ? msg : cr_strerror(rc));
  return 0;
}

/* streams_json: a JSON array of objects, each with a non-empty "name". */
static int check_streams(const char *text, char *errbuf, size_t errlen) {
  if (text == NULL)
    return 0;
  json_error_t jerr;
  json_t *arr = json_loads(text, 0, &jerr);
  if (arr == NULL)
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "invalid streams_json: %s (line %d, column %d)", jerr.text,
                  jerr.line, jerr.column);
  int rc = 0;
  if (!json_is_array(arr)) {
    rc = refuse(errbuf, errlen, CR_EPLUGIN,
                "invalid streams_json: not a JSON array");
    goto done;
  }
  size_t i;
  json_t *el;
  json_array_foreach(arr, i, el) {
    const char *name = json_string_value(json_object_get(el, "name"));
    if (!json_is_object(el) || name == NULL || name[0] == '\0') {
      rc =
          refuse(errbuf, errlen, CR_EPLUGIN,
                 "invalid streams_json: element %zu has no string \"name\"", i);
      goto done;
    }
  }
done:
  json_decref(arr);
  return rc;
}

/* ---- Loading ---- */

static void plugin_free(cr_plugin *p) {
  if (p == NULL || atomic_fetch_sub(&p->refs, 1) > 1)
    return;
  cr_schema_free(p->credentials_schema);
  cr_schema_free(p->config_schema);
  cr_schema_free(p->settings_schema);
  if (p->dl != NULL)
    dlclose(p->dl);
  if (p->fd >= 0)
    close(p->fd);
  cr__free(p->path);
  cr__free(p);
}

/* The identity of an open file (what a rescan compares). */
static void file_id_of(const struct stat *st, struct cr_plugin_file_id *id) {
  id->dev = (uint64_t)st->st_dev;
  id->ino = (uint64_t)st->st_ino;
  id->size = (int64_t)st->st_size;
  id->mtime_ns = (int64_t)st->st_mtim.tv_sec * INT64_C(1000000000) +
                 (int64_t)st->st_mtim.tv_nsec;
}

int cr_plugin_file_id_get(const char *path, struct cr_plugin_file_id *out) {
  struct stat st;
  if (path == NULL || out == NULL)
    return CR_EINVAL;
  if (stat(path, &st) != 0)
    return errno_to_cr(errno);
  if (!S_ISREG(st.st_mode))
    return CR_EPLUGIN;
  file_id_of(&st, out);
  return 0;
}

int cr_plugin_file_id_eq(const struct cr_plugin_file_id *a,
                         const struct cr_plugin_file_id *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime_ns == b->mtime_ns;
}

char *cr_plugin_file_id_format(const struct cr_plugin_file_id *id, char *buf,
                               size_t len) {
  snprintf(buf, len, "%llu:%llu:%lld:%lld", (unsigned long long)id->dev,
           (unsigned long long)id->ino, (long long)id->size,
           (long long)id->mtime_ns);
  return buf;
}

/* Opens the file that was checked and checks what was opened (the path may
 * have been replaced in between): p->fd and p->id. */
static int open_file(cr_plugin *p, char *errbuf, size_t errlen) {
  p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  int rc = check_file(p->fd < 0 ? -1 : fstat(p->fd, &st), &st, errbuf, errlen);
  if (rc == 0)
    file_id_of(&st, &p->id);
  return rc;
}

/* The name dlopen() gets: /proc/self/fd/N of the open file, so that what is
 * loaded is the file that was checked, and so that a new file renamed over
 * a path still loaded (an upgrade) is loaded anew: glibc hands back an
 * already-loaded object whose name matches, whatever is on disk now. The
 * name is unique while the fd is open, which is as long as the object is
 * loaded. Without /proc, the path. */
static const char *dl_name(const cr_plugin *p, char *buf, size_t len) {
  static atomic_int proc_ok = -1;
  int ok = atomic_load(&proc_ok);
  if (ok < 0) {
    ok = access("/proc/self/fd", F_OK) == 0;
    atomic_store(&proc_ok, ok);
  }
  if (!ok)
    return p->path;
  snprintf(buf, len, "/proc/self/fd/%d", p->fd);
  return buf;
}

/* dlerror() text with the /proc name replaced by the plugin's path. */
static int refuse_dlerror(const cr_plugin *p, const char *name, char *errbuf,
                          size_t errlen) {
  const char *e = dlerror();
  if (e == NULL)
    e = "unknown dlopen error";
  size_t n = strlen(name);
  if (strncmp(e, name, n) == 0)
    return refuse(errbuf, errlen, CR_EPLUGIN, "cannot load: %s%s", p->path,
                  e + n);
  return refuse(errbuf, errlen, CR_EPLUGIN, "cannot load: %s", e);
}

/* open + dlopen + entry + descriptor import (steps 2 to 8). */
static int open_plugin(const cr_plugin_host *h, cr_plugin *p, char *errbuf,
                       size_t errlen) {
  int rc = open_file(p, errbuf, errlen);
  if (rc != 0)
    return rc;
  char buf[64];
  const char *name = dl_name(p, buf, sizeof buf);
  p->dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (p->dl == NULL)
    return refuse_dlerror(p, name, errbuf, errlen);
  dlerror();
  void *sym = dlsym(p->dl, CR_PLUGIN_ENTRY_SYMBOL);
  if (sym == NULL)
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "not a connrun plugin (no " CR_PLUGIN_ENTRY_SYMBOL
                  " symbol)");
  cr_plugin_entry_fn entry;
  memcpy(&entry, &sym, sizeof entry); /* POSIX: object to function pointer */
  const struct cr_plugin_descriptor *d = entry(h->api);
  if (d == NULL)
    return refuse(errbuf, errlen, CR_EPLUGIN,
                  "entry function returned no descriptor");
  return cr__plugin_desc_import(d, CR__PLUGIN_DESC_V1_0_SIZE, &p->desc, errbuf,
                                errlen);
}

/* Steps 9 to 12 on the host copy of the descriptor. */
static int validate_plugin(const cr_plugin_host *h, cr_plugin *p, char *errbuf,
                           size_t errlen) {
  const struct cr_plugin_descriptor *d = &p->desc;
  int rc = check_fields(d, errbuf, errlen);
  if (rc == 0)
    rc = check_callbacks(d, errbuf, errlen);
  if (rc == 0)
    rc = compile_schema("credentials_schema", d->credentials_schema,
                        &p->credentials_schema, errbuf, errlen);
  if (rc == 0)
    rc = compile_schema("config_schema", d->config_schema, &p->config_schema,
                        errbuf, errlen);
  if (rc == 0 && d->settings_schema != NULL)
    rc = compile_schema("settings_schema", d->settings_schema,
                        &p->settings_schema, errbuf, errlen);
  if (rc == 0)
    rc = check_streams(d->streams_json, errbuf, errlen);
  if (rc != 0)
    return rc;
  const cr_plugin *other = cr_plugin_host_find(h, d->name);
  if (other != NULL)
    return refuse(errbuf, errlen, CR_EEXIST,
                  "duplicate provider '%s' (already loaded from %s)", d->name,
                  other->path);
  return 0;
}

static int push_plugin(cr_plugin_host *h, cr_plugin *p) {
  if (h->count == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 8;
    cr_plugin **grown = cr__realloc(h->plugins, cap * sizeof *grown);
    if (grown == NULL)
      return CR_ENOMEM;
    h->plugins = grown;
    h->cap = cap;
  }
  h->plugins[h->count++] = p;
  return 0;
}

int cr_plugin_host_load_file(cr_plugin_host *h, const char *path, char *errbuf,
                             size_t errlen) {
  if (errbuf != NULL && errlen > 0)
    errbuf[0] = '\0';
  if (h == NULL || path == NULL)
    return refuse(errbuf, errlen, CR_EINVAL, "invalid argument");
  int rc = check_permissions(path, errbuf, errlen);
  if (rc != 0)
    return rc;
  cr_plugin *p = cr__calloc(1, sizeof *p);
  if (p == NULL)
    return refuse(errbuf, errlen, CR_ENOMEM, "out of memory");
  atomic_init(&p->refs, 1);
  p->fd = -1;
  p->loaded_at_ms = cr__now_ms();
  p->path = cr__strdup(path);
  if (p->path == NULL) {
    rc = refuse(errbuf, errlen, CR_ENOMEM, "out of memory");
    goto fail;
  }
  rc = open_plugin(h, p, errbuf, errlen);
  if (rc == 0)
    rc = validate_plugin(h, p, errbuf, errlen);
  if (rc == 0 && push_plugin(h, p) != 0)
    rc = refuse(errbuf, errlen, CR_ENOMEM, "out of memory");
  if (rc != 0)
    goto fail;
  return 0;
fail:
  plugin_free(p);
  return rc;
}

/* ---- Directories ---- */

static int has_so_suffix(const char *name) {
  size_t n = strlen(name);
  return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void cr__plugin_names_free(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    cr__free(names[i]);
  cr__free(names);
}

/* The sorted names of the candidate files in d. *out is freed with
 * cr__plugin_names_free(*out, *n). */
static int list_so_files(DIR *d, char ***out, size_t *n) {
  char **names = NULL;
  size_t count = 0, cap = 0;
  struct dirent *de;
  errno = 0;
  while ((de = readdir(d)) != NULL) {
    if (!has_so_suffix(de->d_name))
      continue;
    if (count == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      char **grown = cr__realloc(names, ncap * sizeof *grown);
      if (grown == NULL)
        goto nomem;
      names = grown;
      cap = ncap;
    }
    if ((names[count] = cr__strdup(de->d_name)) == NULL)
      goto nomem;
    count++;
    errno = 0;
  }
  if (errno != 0) {
    cr__plugin_names_free(names, count);
    return CR_EIO;
  }
  if (count > 1)
    qsort(names, count, sizeof *names, cmp_names);
  *out = names;
  *n = count;
  return 0;
nomem:
  cr__plugin_names_free(names, count);
  return CR_ENOMEM;
}

/* Loads dir/name unless it is not a regular file (skipped silently). */
static int load_entry(cr_plugin_host *h, const char *dir, const char *name,
                      cr_plugin_refused_cb cb, void *ud) {
  size_t len = strlen(dir) + strlen(name) + 2;
  char *path = cr__malloc(len);
  if (path == NULL)
    return CR_ENOMEM;
  snprintf(path, len, "%s/%s", dir, name);
  struct stat st;
  int rc = 0;
  if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) {
    char reason[REASON_LEN];
    rc = cr_plugin_host_load_file(h, path, reason, sizeof reason);
    struct cr_plugin_file_id id = {0};
    if (rc != 0 && rc != CR_ENOMEM) {
      cr_plugin_file_id_get(path, &id);
      if (cr__plugin_host_add_refusal(h, path, &id, rc, reason) != 0)
        rc = CR_ENOMEM;
    }
    if (rc != 0 && rc != CR_ENOMEM && cb != NULL)
      cb(ud, path, reason);
  }
  cr__free(path);
  return rc == CR_ENOMEM ? CR_ENOMEM : 0;
}

int cr__plugin_dir_list(const char *dir, char ***names, size_t *n, char *reason,
                        size_t len) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (d == NULL) {
    int e = errno;
    snprintf(reason, len, "cannot open plugin directory: %s", strerror(e));
    return errno_to_cr(e);
  }
  int rc = list_so_files(d, names, n);
  closedir(d);
  if (rc == CR_EIO)
    snprintf(reason, len, "cannot read plugin directory");
  return rc;
}

int cr_plugin_host_load_dir(cr_plugin_host *h, const char *dir,
                            cr_plugin_refused_cb cb, void *ud) {
  if (h == NULL || dir == NULL)
    return CR_EINVAL;
  char **names = NULL, reason[REASON_LEN];
  size_t n = 0;
  int rc = cr__plugin_dir_list(dir, &names, &n, reason, sizeof reason);
  if (rc != 0 && rc != CR_ENOMEM && cb != NULL)
    cb(ud, dir, reason);
  if (rc != 0)
    return rc;
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = load_entry(h, dir, names[i], cb, ud);
  cr__plugin_names_free(names, n);
  return rc;
}

/* ---- Host and accessors ---- */

int cr_plugin_host_new(const struct cr_host_api *api, cr_plugin_host **out) {
  if (out == NULL)
    return CR_EINVAL;
  *out = NULL;
  cr_plugin_host *h = cr__calloc(1, sizeof *h);
  if (h == NULL)
    return CR_ENOMEM;
  atomic_init(&h->refs, 1);
  h->api = api != NULL ? api : cr_host_api_default();
  *out = h;
  return 0;
}

cr_plugin_host *cr_plugin_host_retain(cr_plugin_host *h) {
  if (h != NULL)
    atomic_fetch_add(&h->refs, 1);
  return h;
}

void cr_plugin_host_free(cr_plugin_host *h) {
  if (h == NULL || atomic_fetch_sub(&h->refs, 1) > 1)
    return;
  for (size_t i = h->count; i > 0; i--)
    plugin_free(h->plugins[i - 1]);
  for (size_t i = 0; i < h->n_refused; i++) {
    cr__free(h->refused[i].path);
    cr__free(h->refused[i].reason);
  }
  cr__free(h->refused);
  cr__free(h->plugins);
  cr__free(h);
}

int cr__plugin_host_adopt(cr_plugin_host *h, const cr_plugin *cp) {
  cr_plugin *p = (cr_plugin *)cp; /* only its reference count changes */
  atomic_fetch_add(&p->refs, 1);
  int rc = push_plugin(h, p);
  if (rc != 0)
    atomic_fetch_sub(&p->refs, 1);
  return rc;
}

int cr__plugin_host_add_refusal(cr_plugin_host *h, const char *path,
                                const struct cr_plugin_file_id *id, int rc,
                                const char *reason) {
  if (h->n_refused == h->cap_refused) {
    size_t cap = h->cap_refused ? h->cap_refused * 2 : 4;
    struct cr__plugin_refusal *g = cr__realloc(h->refused, cap * sizeof *g);
    if (g == NULL)
      return CR_ENOMEM;
    h->refused = g;
    h->cap_refused = cap;
  }
  struct cr__plugin_refusal *r = &h->refused[h->n_refused];
  r->path = cr__strdup(path);
  r->reason = cr__strdup(reason);
  if (r->path == NULL || r->reason == NULL) {
    cr__free(r->path);
    cr__free(r->reason);
    return CR_ENOMEM;
  }
  r->id = *id;
  r->rc = rc;
  h->n_refused++;
  return 0;
}

const struct cr__plugin_refusal *
cr__plugin_host_refusals(const cr_plugin_host *h, size_t *n) {
  *n = h != NULL ? h->n_refused : 0;
  return h != NULL ? h->refused : NULL;
}

const struct cr_host_api *cr__plugin_host_api(const cr_plugin_host *h) {
  return h->api;
}

const struct cr_plugin_file_id *cr_plugin_file(const cr_plugin *p) {
  return p != NULL ? &p->id : NULL;
}

int64_t cr_plugin_loaded_at_ms(const cr_plugin *p) {
  return p != NULL ? p->loaded_at_ms : 0;
}

size_t cr_plugin_host_count(const cr_plugin_host *h) {
  return h != NULL ? h->count : 0;
}

const cr_plugin *cr_plugin_host_at(const cr_plugin_host *h, size_t i) {
  return h != NULL && i < h->count ? h->plugins[i] : NULL;
}

size_t cr_plugin_host_refused_count(const cr_plugin_host *h) {
  return h != NULL ? h->n_refused : 0;
}

void cr_plugin_host_refused_at(const cr_plugin_host *h, size_t i,
                               const char **path, const char **reason) {
  int in = h != NULL && i < h->n_refused;
  *path = in ? h->refused[i].path : NULL;
  *reason = in ? h->refused[i].reason : NULL;
}

const cr_plugin *cr_plugin_host_find(const cr_plugin_host *h,
                                     const char *name) {
  if (h == NULL || name == NULL)
    return NULL;
  for (size_t i = 0; i < h->count; i++)
    if (strcmp(h->plugins[i]->desc.name, name) == 0)
      return h->plugins[i];
  return NULL;
}

const struct cr_plugin_descriptor *cr_plugin_desc(const cr_plugin *p) {
  return p != NULL ? &p->desc : NULL;
}

const char *cr_plugin_path(const cr_plugin *p) {
  return p != NULL ? p->path : NULL;
}

const cr_schema *cr_plugin_credentials_schema(const cr_plugin *p) {
  return p != NULL ? p->credentials_schema : NULL;
}

const cr_schema *cr_plugin_settings_schema(const cr_plugin *p) {
  return p != NULL ? p->settings_schema : NULL;
}

const cr_schema *cr_plugin_config_schema(const cr_plugin *p) {
  return p != NULL ? p->config_schema : NULL;
}

int cr_plugin_accepts_method(const cr_plugin *p, const char *m) {
  if (p == NULL || m == NULL)
    return 0;
  for (const char *const *a = p->desc.auth_methods; *a != NULL; a++)
    if (strcmp(*a, m) == 0)
      return 1;
  return 0;
}

char *cr_plugin_caps_string(const cr_plugin *p, char *buf, size_t len) {
  static const struct {
    uint32_t bit;
    const char *name;
  } caps[] = {{CR_PLUGIN_CAP_HEALTH_CHECK, "health_check"},
              {CR_PLUGIN_CAP_READ, "read"},
              {CR_PLUGIN_CAP_WRITE, "write"}};
  if (buf == NULL || len == 0)
    return buf;
  char text[64] = "";
  uint32_t bits = p != NULL ? p->desc.capabilities : 0;
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    if (!(bits & caps[i].bit))
      continue;
    if (text[0] != '\0')
      strcat(text, ",");
    strcat(text, caps[i].name);
  }
  snprintf(buf, len, "%s", text[0] ? text : "-");
  return buf;
}
