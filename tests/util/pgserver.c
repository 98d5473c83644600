/* pgserver.c: a private PostgreSQL server for tests and benchmarks (see
 * pgserver.h): initdb in a temporary directory, postgres on a free loopback
 * port, run as "nobody" when we are root. Stand-alone (no cmocka, no core)
 * so the benchmarks link it too. */
#define _GNU_SOURCE
#include "pgserver.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void set_error(struct cr_pgserver *pg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pg->error, sizeof pg->error, fmt, ap);
  va_end(ap);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* The newest /usr/lib/postgresql/<major>/bin holding initdb, or
 * $CR_PG_BINDIR. */
static int find_bindir(struct cr_pgserver *pg) {
  const char *env = getenv("CR_PG_BINDIR");
  if (env != NULL && *env != '\0') {
    snprintf(pg->bindir, sizeof pg->bindir, "%s", env);
    return 0;
  }
  DIR *d = opendir("/usr/lib/postgresql");
  int best = -1;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    int major = atoi(e->d_name);
    char path[300];
    snprintf(path, sizeof path, "/usr/lib/postgresql/%d/bin/initdb", major);
    if (major > best && access(path, X_OK) == 0)
      best = major;
  }
  if (d != NULL)
    closedir(d);
  if (best < 0) {
    set_error(pg, "no PostgreSQL server found under /usr/lib/postgresql "
                  "(scripts/deps.sh installs Debian's postgresql)");
    return -1;
  }
  snprintf(pg->bindir, sizeof pg->bindir, "/usr/lib/postgresql/%d/bin", best);
  return 0;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* In a child: drop to nobody when root, log to dir/log, exec argv. */
static void child_exec(const struct cr_pgserver *pg, char *const argv[]) {
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0)
      _exit(126);
  }
  /* After the credentials change (which clears it): the server goes with
   * us if the test process dies. SIGQUIT is its immediate shutdown. */
  prctl(PR_SET_PDEATHSIG, SIGQUIT);
  char log[300];
  snprintf(log, sizeof log, "%s/log", pg->dir);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  int null = open("/dev/null", O_RDONLY);
  if (null >= 0)
    dup2(null, 0);
  setenv("LC_ALL", "C", 1);
  execv(argv[0], argv);
  _exit(127);
}

static pid_t spawn(const struct cr_pgserver *pg, char *const argv[]) {
  pid_t pid = fork();
  if (pid == 0)
    child_exec(pg, argv);
  return pid;
}

/* The log's last lines, for an error message. */
static void log_tail(const struct cr_pgserver *pg, char *buf, size_t len) {
  char path[300];
  snprintf(path, sizeof path, "%s/log", pg->dir);
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, size > (long)len - 1 ? size - (long)len + 1 : 0, SEEK_SET);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static int run_initdb(struct cr_pgserver *pg) {
  char initdb[300], data[300];
  snprintf(initdb, sizeof initdb, "%s/initdb", pg->bindir);
  snprintf(data, sizeof data, "%s/data", pg->dir);
  char *argv[] = {initdb,      "-D",           data, "-U",
                  "connrun",   "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C",   NULL};
  pid_t pid = spawn(pg, argv);
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
      WEXITSTATUS(st) != 0) {
    char tail[300];
    log_tail(pg, tail, sizeof tail);
    set_error(pg, "initdb failed (status %d): %s", st, tail);
    return -1;
  }
  return 0;
}

static int launch(struct cr_pgserver *pg, int fsync_off) {
  char postgres[300], data[300], port[16];
  snprintf(postgres, sizeof postgres, "%s/postgres", pg->bindir);
  snprintf(data, sizeof data, "%s/data", pg->dir);
  snprintf(port, sizeof port, "%d", pg->port);
  char *argv[] = {postgres,
                  "-D",
                  data,
                  "-p",
                  port,
                  "-k",
                  pg->dir,
                  "-c",
                  "listen_addresses=127.0.0.1",
                  "-c",
                  "max_connections=200",
                  "-c",
                  fsync_off ? "fsync=off" : "fsync=on",
                  NULL,
                  NULL,
                  NULL};
  /* One more setting for profiling, as NAME=VALUE (for example
   * shared_preload_libraries=pg_stat_statements). */
  const char *extra = getenv("CR_PGSERVER_SETTING");
  if (extra != NULL && extra[0] != '\0') {
    argv[13] = "-c";
    argv[14] = (char *)extra;
  }
  pg->pid = spawn(pg, argv);
  if (pg->pid < 0) {
    pg->pid = 0;
    set_error(pg, "fork: %s", strerror(errno));
    return -1;
  }
  char conninfo[400];
  snprintf(conninfo, sizeof conninfo,
           "host=127.0.0.1 port=%d user=connrun dbname=postgres "
           "connect_timeout=2",
           pg->port);
  for (int i = 0; i < 600; i++) { /* 30 s */
    if (PQping(conninfo) == PQPING_OK)
      return 0;
    int st;
    if (waitpid(pg->pid, &st, WNOHANG) == pg->pid) {
      pg->pid = 0;
      char tail[300];
      log_tail(pg, tail, sizeof tail);
      set_error(pg, "postgres exited at start: %s", tail);
      return -1;
    }
    sleep_ms(50);
  }
  set_error(pg, "postgres did not accept connections within 30 s");
  cr_pgserver_halt(pg);
  return -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

int cr_pgserver_start(struct cr_pgserver *pg, int fsync_off) {
  memset(pg, 0, sizeof *pg);
  if (find_bindir(pg) != 0)
    return -1;
  snprintf(pg->dir, sizeof pg->dir, "/tmp/crpg.XXXXXX");
  if (mkdtemp(pg->dir) == NULL) {
    set_error(pg, "mkdtemp: %s", strerror(errno));
    return -1;
  }
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
      set_error(pg, "cannot give %s to user nobody", pg->dir);
      goto fail;
    }
  }
  pg->port = free_port();
  if (pg->port <= 0 || run_initdb(pg) != 0 || launch(pg, fsync_off) != 0)
    goto fail;
  if (cr_pgserver_createdb(pg, "connrun", pg->url, sizeof pg->url) != 0)
    goto fail;
  return 0;
fail:
  cr_pgserver_stop(pg);
  return -1;
}

void cr_pgserver_halt(struct cr_pgserver *pg) {
  if (pg->pid <= 0)
    return;
  kill(pg->pid, SIGINT); /* fast shutdown */
  for (int i = 0; i < 1000; i++) {
    if (waitpid(pg->pid, NULL, WNOHANG) == pg->pid) {
      pg->pid = 0;
      return;
    }
    sleep_ms(10);
  }
  kill(pg->pid, SIGKILL);
  waitpid(pg->pid, NULL, 0);
  pg->pid = 0;
}

int cr_pgserver_restart(struct cr_pgserver *pg) {
  if (pg->pid > 0)
    return 0;
  return launch(pg, 0);
}

void cr_pgserver_stop(struct cr_pgserver *pg) {
  cr_pgserver_halt(pg);
  if (pg->dir[0] != '\0')
    nftw(pg->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  pg->dir[0] = '\0';
}

int cr_pgserver_createdb(struct cr_pgserver *pg, const char *name, char *url,
                         size_t urllen) {
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
      set_error(pg, "bad database name '%s'", name);
      return -1;
    }
  char conninfo[400], sql[200];
  snprintf(conninfo, sizeof conninfo,
           "host=127.0.0.1 port=%d user=connrun dbname=postgres", pg->port);
  PGconn *c = PQconnectdb(conninfo);
  int rc = -1;
  if (PQstatus(c) != CONNECTION_OK) {
    set_error(pg, "connect: %s", PQerrorMessage(c));
    goto out;
  }
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    set_error(pg, "%s: %s", sql, PQerrorMessage(c));
  else
    rc = 0;
  PQclear(r);
  snprintf(url, urllen, "postgresql://connrun@127.0.0.1:%d/%s", pg->port, name);
out:
  PQfinish(c);
  return rc;
}
