/* testutil.c: shared helpers for connrun tests (see testutil.h). */
#include "testutil.h"

#include "dest/dest.h"
#include "util/alloc.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const cr_plugin *cr_test_load_bundled(const char *name, cr_plugin_host **host) {
  char path[4096], err[512] = "";
  const cr_plugin *p = NULL;
  *host = NULL;
  if (cr_plugin_host_new(NULL, host) != 0)
    return NULL;
  snprintf(path, sizeof path, "%s/%s.so", CR_PLUGIN_DIR, name);
  if (cr_plugin_host_load_file(*host, path, err, sizeof err) != 0)
    fprintf(stderr, "cannot load %s: %s\n", path, err);
  else if ((p = cr_plugin_host_find(*host, name)) == NULL)
    fprintf(stderr, "%s does not provide \"%s\"\n", path, name);
  if (p == NULL) {
    cr_plugin_host_free(*host);
    *host = NULL;
  }
  return p;
}

char *cr_test_mkdtemp(const char *tag) {
  const char *tmp = getenv("TMPDIR");
  char buf[4096];
  snprintf(buf, sizeof buf, "%s/connrun-%s-XXXXXX", tmp ? tmp : "/tmp", tag);
  char *dir = mkdtemp(buf);
  assert_non_null(dir);
  chmod(dir, 0755);
  return strdup(dir);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void cr_test_rmtree(const char *path) {
  if (path != NULL)
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *cr_test_write_file(const char *dir, const char *name, const char *text) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *path = malloc(n);
  assert_non_null(path);
  snprintf(path, n, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

char *cr_test_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len < 2) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  buf[len] = '\0';
  fclose(f);
  return buf;
}

char *cr_test_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

void cr_test_copy_file(const char *src, const char *dst) {
  FILE *in = fopen(src, "rb");
  if (in == NULL)
    fail_msg("cannot open %s", src);
  FILE *out = fopen(dst, "wb");
  assert_non_null(out);
  char buf[8192];
  size_t got;
  while ((got = fread(buf, 1, sizeof buf, in)) > 0)
    assert_int_equal(fwrite(buf, 1, got, out), got);
  fclose(in);
  fclose(out);
}

void cr_test_copy_tree(const char *src, const char *dst) {
  assert_int_equal(mkdir(dst, 0755), 0);
  DIR *d = opendir(src);
  assert_non_null(d);
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    char *s = cr_test_join(src, de->d_name);
    char *t = cr_test_join(dst, de->d_name);
    struct stat st;
    assert_int_equal(stat(s, &st), 0);
    if (S_ISDIR(st.st_mode))
      cr_test_copy_tree(s, t);
    else if (S_ISREG(st.st_mode))
      cr_test_copy_file(s, t);
    free(s);
    free(t);
  }
  closedir(d);
}

char *cr_test_which(const char *name) {
  const char *path = getenv("PATH");
  char *copy = strdup(path ? path : "/usr/bin:/bin");
  char *save = NULL;
  char *found = NULL;
  for (char *dir = strtok_r(copy, ":", &save); dir && !found;
       dir = strtok_r(NULL, ":", &save)) {
    char *cand = cr_test_join(dir, name);
    if (access(cand, X_OK) == 0)
      found = cand;
    else
      free(cand);
  }
  free(copy);
  return found;
}

void cr_test_compile(const char *const *pre, const char *cflags,
                     const char *out, const char *src, const char *what) {
  char *argv[64];
  size_t n = 0;
  while (pre[n] != NULL && n < 48) {
    argv[n] = (char *)pre[n];
    n++;
  }
  char *copy = strdup(cflags ? cflags : "");
  char *save = NULL;
  for (char *f = strtok_r(copy, " \t\n", &save); f != NULL && n < 59;
       f = strtok_r(NULL, " \t\n", &save))
    argv[n++] = f;
  argv[n++] = "-o";
  argv[n++] = (char *)out;
  argv[n++] = (char *)src;
  argv[n] = NULL;
  char *output = NULL;
  int rc = cr_test_run(argv, NULL, &output);
  if (rc != 0)
    fail_msg("%s failed (%d):\n%s", what, rc, output);
  free(output);
  free(copy);
}

void cr_test_build_plugin(const char *src, const char *so, const char *cflags) {
  static const char *const pre[] = {CR_C_COMPILER,
                                    "-std=c11",
                                    "-Wall",
                                    "-Wextra",
                                    "-Werror",
                                    "-fPIC",
                                    "-shared",
                                    "-fvisibility=hidden",
                                    "-Wl,--no-undefined",
                                    NULL};
  char what[4200];
  snprintf(what, sizeof what, "compiling %s", src);
  cr_test_compile(pre, cflags, so, src, what);
  assert_int_equal(chmod(so, 0755), 0);
}

int cr_test_run(char *const argv[], char *const env[], char **out) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
      putenv(env[i]);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (cap - len < 1024) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
    ssize_t r = read(fds[0], buf + len, cap - len - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  buf[len] = '\0';
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (out != NULL)
    *out = buf;
  else
    free(buf);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

static long alloc_count;
static long alloc_fail_at = -1;
static int alloc_failed;

static int should_fail(void) {
  long n = alloc_count++;
  if (alloc_fail_at >= 0 && n == alloc_fail_at) {
    alloc_failed = 1;
    return 1;
  }
  return 0;
}
static void *t_malloc(size_t s) { return should_fail() ? NULL : malloc(s); }
static void *t_realloc(void *p, size_t s) {
  return should_fail() ? NULL : realloc(p, s);
}
static void *t_calloc(size_t c, size_t s) {
  return should_fail() ? NULL : calloc(c, s);
}

void cr_test_alloc_install(void) {
  cr_replace_allocator(t_malloc, t_realloc, t_calloc, free);
}

void cr_test_alloc_fail_after(long n) {
  alloc_count = 0;
  alloc_failed = 0;
  alloc_fail_at = n;
}

long cr_test_alloc_count(void) { return alloc_count; }
int cr_test_alloc_failed(void) { return alloc_failed; }

void cr_test_text_pos(const char *text, const char *needle, int nth, int *line,
                      int *col) {
  const char *p = text;
  for (int i = 0; p != NULL && i <= nth; i++)
    p = strstr(i ? p + 1 : p, needle);
  if (p == NULL)
    fail_msg("test bug: '%s' #%d not in the text", needle, nth);
  *line = 1;
  const char *bol = text;
  for (const char *q = text; q < p; q++)
    if (*q == '\n') {
      (*line)++;
      bol = q + 1;
    }
  *col = (int)(p - bol) + 1;
}

long cr_test_alloc_rounds(int (*round)(void *arg), void *arg, long max) {
  cr_test_alloc_install();
  long n;
  for (n = 0; n < max; n++) {
    cr_test_alloc_fail_after(n);
    int rc = round(arg);
    int failed = cr_test_alloc_failed();
    cr_test_alloc_fail_after(-1);
    if (!failed) {
      assert_int_equal(rc, 0);
      break;
    }
    assert_int_equal(rc, CR_ENOMEM);
  }
  return n;
}

int cr_test_bind_any(int *port, int listen_too) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  if (listen_too)
    assert_int_equal(listen(fd, 4), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

int cr_test_free_port(void) {
  int port = 0;
  close(cr_test_bind_any(&port, 0));
  return port;
}

int cr_test_can_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

int cr_test_have_python_module(const char *module) {
  char code[128];
  snprintf(code, sizeof code, "import %s", module);
  char *const argv[] = {"/usr/bin/python3", "-c", code, NULL};
  char *out = NULL;
  int st = access(argv[0], X_OK) == 0 ? cr_test_run(argv, NULL, &out) : 1;
  free(out);
  return st == 0;
}

struct cr_test_proc cr_test_spawn(const char *dir, const char *log_name,
                                  char *const argv[], char *const env[]) {
  struct cr_test_proc p = {0};
  size_t n = strlen(dir) + strlen(log_name) + 2;
  p.log_path = malloc(n);
  assert_non_null(p.log_path);
  snprintf(p.log_path, n, "%s/%s", dir, log_name);
  p.pid = fork();
  assert_true(p.pid >= 0);
  if (p.pid == 0) {
    int fd = open(p.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
      putenv(env[i]);
    execv(argv[0], argv);
    _exit(127);
  }
  return p;
}

struct cr_test_proc cr_test_serve(const char *dir, const char *cfg,
                                  char *const extra[], char *const env[]) {
  char *argv[16] = {CR_CONNRUN_BIN, "serve", "-c", (char *)cfg};
  size_t n = 4;
  for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  return cr_test_spawn(dir, "serve.log", argv, env);
}

static int count_in_log(const struct cr_test_proc *p, const char *text) {
  char *log = cr_test_read_file(p->log_path);
  int seen = 0;
  for (const char *s = log; s && (s = strstr(s, text)) != NULL; s++)
    seen++;
  free(log);
  return seen;
}

static int still_running(const struct cr_test_proc *p) {
  return waitpid(p->pid, NULL, WNOHANG) == 0;
}

int cr_test_wait_log(const struct cr_test_proc *p, const char *text,
                     int times) {
  for (int i = 0; i < 600; i++) {
    if (count_in_log(p, text) >= times)
      return 1;
    if (!still_running(p))
      return count_in_log(p, text) >= times;
    usleep(50 * 1000);
  }
  return 0;
}

int cr_test_serve_port(const struct cr_test_proc *p) {
  if (!cr_test_wait_log(p, "api: listening on ", 1))
    return 0;
  int v = 0;
  for (int i = 0; i < 100 && v == 0; i++) {
    char *log = cr_test_read_file(p->log_path);
    const char *at = log ? strstr(log, "api: listening on ") : NULL;
    const char *port = at ? strstr(at, "(port ") : NULL;
    v = port && strchr(port, ')') ? atoi(port + 6) : 0;
    free(log);
    if (v == 0)
      usleep(20 * 1000);
  }
  return v;
}

int cr_test_proc_wait(struct cr_test_proc *p, int max_ms) {
  int status = 0;
  for (int waited = 0;; waited += 20) {
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == p->pid)
      break;
    if (r < 0 && errno != EINTR)
      return -1;
    if (waited >= max_ms)
      return -1;
    usleep(20 * 1000);
  }
  p->pid = 0;
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int cr_test_proc_stop(struct cr_test_proc *p) {
  int st = -1;
  if (p->pid > 0) {
    kill(p->pid, SIGTERM);
    st = cr_test_proc_wait(p, 30000);
    if (st < 0) {
      kill(p->pid, SIGKILL);
      st = cr_test_proc_wait(p, 30000);
    }
  }
  free(p->log_path);
  p->log_path = NULL;
  return st;
}

struct cr_dest *cr_test_open_plugin_dest(const cr_plugin *p,
                                         const struct cr_plugin_params *params,
                                         const cr_redactor *red,
                                         void (*log)(void *, int, const char *),
                                         void *log_ud) {
  cr_dest *d = NULL;
  char err[256] = "";
  int rc =
      cr_dest_open_plugin(cr_plugin_desc(p), params, red, &d, err, sizeof err);
  if (rc != 0)
    print_message("cannot open the destination: %s\n", err);
  assert_int_equal(rc, 0);
  cr_dest_set_log(d, log, log_ud);
  return d;
}

int cr_test_count_containing(char *const *text, int n, const char *needle) {
  int count = 0;
  for (int i = 0; i < n; i++)
    count += text[i] != NULL && strstr(text[i], needle) != NULL;
  return count;
}

/* Reads the state letter and parent pid of process pid from /proc.
 * 0, or -1 when it is gone. */
static int proc_stat(long pid, char *state, long *ppid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  size_t got = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[got] = '\0';
  const char *rp = strrchr(buf, ')'); /* the name may hold spaces */
  return rp && sscanf(rp + 1, " %c %ld", state, ppid) == 2 ? 0 : -1;
}

size_t cr_test_children(int pid, int *out, size_t max) {
  DIR *d = opendir("/proc");
  assert_non_null(d);
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < max) {
    char *end;
    long p = strtol(e->d_name, &end, 10);
    char st;
    long ppid;
    if (*end == '\0' && p > 0 && proc_stat(p, &st, &ppid) == 0 && ppid == pid &&
        st != 'Z')
      out[n++] = (int)p;
  }
  closedir(d);
  return n;
}

int cr_test_proc_gone(int pid) {
  char st;
  long ppid;
  return proc_stat(pid, &st, &ppid) != 0 || st == 'Z' || st == 'X';
}

void cr_test_exec_env(const char *dir, const char *config, cr_daemon **d,
                      cr_worker_pool **pool, struct cr_exec_env *env) {
  char *path = cr_test_write_file(dir, "connrun.yaml", config);
  struct cr_daemon_options o = {.config_path = path};
  cr_diags diags;
  cr_diags_init(&diags);
  int rc = cr_daemon_new(&o, d, &diags);
  for (size_t i = 0; rc != 0 && i < diags.count; i++) {
    char line[1024];
    cr_diag_format(&diags.items[i], line, sizeof line);
    print_message("diag: %s\n", line);
  }
  cr_diags_free(&diags);
  free(path);
  assert_int_equal(rc, 0);
  struct cr_worker_pool_opts po = {.exe = CR_CONNRUN_BIN};
  assert_int_equal(cr_worker_pool_new(&po, pool), 0);
  env->cfg = cr_daemon_config(*d);
  env->plugins = cr_daemon_plugins(*d);
  env->pool = *pool;
  env->store = cr_daemon_store(*d);
  env->retry_base_ms = 10;
}
