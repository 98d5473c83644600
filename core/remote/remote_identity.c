/* remote_identity.c: DATA_DIR/runner.json, a runner host's identity (see
 * remote_identity.h). */
#include "remote/remote_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

#define FILE_NAME "runner.json"
#define MAX_SIZE 65536

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = cr__malloc(n);
  if (p != NULL)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

/* Reads fd into a NUL-terminated buffer (cr__malloc'ed, secret). */
static int slurp(int fd, char **out, size_t *len) {
  char *buf = cr__malloc(MAX_SIZE + 1);
  size_t n = 0;
  if (buf == NULL)
    return CR_ENOMEM;
  for (;;) {
    ssize_t r = read(fd, buf + n, MAX_SIZE - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      cr__free(buf);
      return CR_EIO;
    }
    if (r == 0 || (n += (size_t)r) == MAX_SIZE)
      break;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

static int take(const json_t *j, const char *key, char **out) {
  const char *s = json_string_value(json_object_get(j, key));
  if (s == NULL || s[0] == '\0')
    return CR_EPARSE;
  return (*out = cr__strdup(s)) ? 0 : CR_ENOMEM;
}

static int parse(const char *text, size_t len, struct cr_remote_identity *out) {
  json_t *j = json_loadb(text, len, 0, NULL);
  int rc = j ? take(j, "server", &out->server) : CR_EPARSE;
  if (rc == 0)
    rc = take(j, "runner_id", &out->runner_id);
  if (rc == 0)
    rc = take(j, "token", &out->token);
  json_decref(j);
  return rc;
}

int cr_remote_identity_load(const char *data_dir,
                            struct cr_remote_identity *out, char *err,
                            size_t errlen) {
  if (data_dir == NULL || out == NULL)
    return CR_EINVAL;
  memset(out, 0, sizeof *out);
  char *path = join(data_dir, FILE_NAME);
  if (path == NULL)
    return CR_ENOMEM;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int rc = fd < 0 ? (errno == ENOENT ? CR_ENOENT : CR_EIO) : 0;
  struct stat st;
  if (rc == 0 && (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0)) {
    snprintf(err, errlen, "%s is readable by others (mode must be 0600)", path);
    rc = CR_EPERM;
  }
  char *text = NULL;
  size_t len = 0;
  if (rc == 0)
    rc = slurp(fd, &text, &len);
  if (rc == 0 && (rc = parse(text, len, out)) == CR_EPARSE)
    snprintf(err, errlen, "%s is not a runner identity", path);
  if (rc == CR_EIO)
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
  if (text != NULL)
    cr__secret_wipe_free(text, len);
  if (fd >= 0)
    close(fd);
  cr__free(path);
  if (rc != 0)
    cr_remote_identity_clear(out);
  return rc;
}

/* Writes text to a new file tmp (mode 0600) and syncs it. */
static int write_new(const char *tmp, const char *text) {
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f == NULL) {
    if (fd >= 0)
      close(fd);
    return CR_EIO;
  }
  int ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fd) == 0;
  return fclose(f) == 0 && ok ? 0 : CR_EIO;
}

int cr_remote_identity_save(const char *data_dir,
                            const struct cr_remote_identity *id, char *err,
                            size_t errlen) {
  if (data_dir == NULL || id == NULL || id->server == NULL ||
      id->runner_id == NULL || id->token == NULL)
    return CR_EINVAL;
  json_t *j = json_pack("{s:s, s:s, s:s}", "server", id->server, "runner_id",
                        id->runner_id, "token", id->token);
  char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
  json_decref(j);
  char *path = join(data_dir, FILE_NAME),
       *tmp = join(data_dir, FILE_NAME ".tmp");
  int rc = text && path && tmp ? 0 : CR_ENOMEM;
  if (rc == 0)
    rc = write_new(tmp, text);
  if (rc == 0 && rename(tmp, path) != 0)
    rc = CR_EIO;
  if (rc == CR_EIO) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
  }
  if (text != NULL) {
    cr__secret_wipe(text, strlen(text));
    free(text);
  }
  cr__free(path);
  cr__free(tmp);
  return rc;
}

void cr_remote_identity_clear(struct cr_remote_identity *id) {
  if (id == NULL)
    return;
  cr__free(id->server);
  cr__free(id->runner_id);
  if (id->token != NULL)
    cr__secret_wipe_free(id->token, strlen(id->token));
  memset(id, 0, sizeof *id);
}
