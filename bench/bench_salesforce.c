/* bench_salesforce.c: the salesforce plugin's read path. A Salesforce-shaped
 * fake on loopback (token endpoint, then /query and nextRecordsUrl pages of
 * 2,000 records in the published {"totalSize","done","nextRecordsUrl",
 * "records":[{"attributes":{...},...}]} shape, pre-rendered and written with
 * writev so the fake is not the bottleneck) serves g_pages pages. Measured
 * in the same run, for a sync of 1,000 pages (2M records: the read path's
 * throughput, the target's figure) and then of 100 (200,000 records, about
 * 30 ms: mostly the fixed costs of one execution):
 *   (1) a bare libcurl client fetching every page on one keep-alive
 *       connection and keeping nothing (the ceiling);
 *   (2) one execution of the plugin in a pooled worker process into jsonl
 *       files on a tmpfs (/dev/shm), the daemon's store on the disk: the read
 *       path (plugin, host HTTP, worker, destination, checkpoints committed
 *       to SQLite) without the disk, which the bare client does not pay
 *       either: the target's ratio (>= 70%);
 *   (3) the same execution into jsonl files on the disk, each checkpoint
 *       made durable: what a disk destination gets on this machine;
 *   (4) for the long sync, the disk alone: the bytes (3) wrote, written again
 *       and made durable with a single fsync, the least any run whose
 *       records are durable at its end must wait for.
 * Every run's files are read back: one line per record. The long sync runs
 * in 5 rounds (each measures (1) to (4) once; CR_BENCH_SF_ROUNDS=N for
 * another count): the bare client's rate moves by a quarter between runs on
 * this machine. Prints the medians in records/s and the median ratios with
 * each round's. CR_BENCH_SF_PAGES=N measures syncs of N pages instead.
 *
 * Usage: bench_salesforce [connrun-binary [plugin-dir]]; by default both are
 * found next to this executable (../bin/connrun, ../plugins). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config/diag.h"
#include "daemon/daemon.h"
#include "exec/exec_run.h"
#include "plugin/worker_pool.h"
#include "store/store.h"

static int g_pages; /* pages of the sync being measured */
#define PER_PAGE 2000
#define API "/services/data/v59.0"

struct fake {
  int lfd;
  int port;
  char *records; /* the shared "records" array body of every page */
  size_t records_len;
  char url[64];
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Renders PER_PAGE records (about 300 bytes each) once. */
static int render_records(struct fake *f) {
  size_t cap = (size_t)PER_PAGE * 400, n = 0;
  f->records = malloc(cap);
  if (f->records == NULL)
    return -1;
  for (int i = 0; i < PER_PAGE; i++)
    n += (size_t)snprintf(
        f->records + n, cap - n,
        "%s{\"attributes\":{\"type\":\"Account\",\"url\":\"" API
        "/sobjects/Account/001Dn00000B%07dAAA\"},\"Id\":\"001Dn00000B%07dAAA\","
        "\"Name\":\"Benchmark Account %d\",\"Industry\":\"Manufacturing\","
        "\"BillingCity\":\"Lyon\",\"SystemModstamp\":"
        "\"2024-01-01T%02d:%02d:%02d.000+0000\"}",
        i ? "," : "", i, i, i, i / 3600, i / 60 % 60, i % 60);
  f->records_len = n;
  return 0;
}

/* Writes all of iov (n entries). Returns 0 or -1. */
static int write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0)
      return -1;
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* Answers one request (head holds its request line). */
static int answer(struct fake *f, int fd, const char *head) {
  char hdr[256], pre[256], body[1024];
  const char *tail = "]}";
  struct iovec iov[4];
  int page = -1;
  if (strncmp(head, "POST /services/oauth2/token", 27) == 0) {
    int n = snprintf(body, sizeof body,
                     "{\"access_token\":\"00DBENCH!token\",\"instance_url\":"
                     "\"%s\",\"id\":\"%s/id/00D/005\",\"token_type\":"
                     "\"Bearer\",\"issued_at\":\"1700000000000\","
                     "\"signature\":\"x=\"}",
                     f->url, f->url);
    int h = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n",
                     n);
    iov[0] = (struct iovec){hdr, (size_t)h};
    iov[1] = (struct iovec){body, (size_t)n};
    return write_all(fd, iov, 2);
  }
  if (strncmp(head, "GET " API "/query?", strlen("GET " API "/query?")) == 0)
    page = 0;
  else if (strncmp(head, "GET " API "/query/01gB-",
                   strlen("GET " API "/query/01gB-")) == 0)
    page = atoi(head + strlen("GET " API "/query/01gB-"));
  if (page < 0 || page >= g_pages) {
    static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n"
                             "\r\n[]";
    iov[0] = (struct iovec){(void *)nf, sizeof nf - 1};
    return write_all(fd, iov, 1);
  }
  char next[96] = "";
  if (page + 1 < g_pages)
    snprintf(next, sizeof next, ",\"nextRecordsUrl\":\"" API "/query/01gB-%d\"",
             page + 1);
  int p =
      snprintf(pre, sizeof pre, "{\"totalSize\":%d,\"done\":%s%s,\"records\":[",
               g_pages * PER_PAGE, page + 1 < g_pages ? "false" : "true", next);
  size_t len = (size_t)p + f->records_len + 2;
  int h = snprintf(hdr, sizeof hdr,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   len);
  iov[0] = (struct iovec){hdr, (size_t)h};
  iov[1] = (struct iovec){pre, (size_t)p};
  iov[2] = (struct iovec){f->records, f->records_len};
  iov[3] = (struct iovec){(void *)tail, 2};
  return write_all(fd, iov, 4);
}

struct conn {
  struct fake *f;
  int fd;
};

/* One keep-alive connection: read a request head (and its body, by
 * Content-Length), answer, repeat. */
static void *conn_main(void *arg) {
  struct conn *c = arg;
  char buf[65536];
  size_t have = 0;
  for (;;) {
    char *end = NULL;
    while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
      ssize_t r =
          have < sizeof buf ? read(c->fd, buf + have, sizeof buf - have) : -1;
      if (r <= 0)
        goto out;
      have += (size_t)r;
    }
    *end = '\0';
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t body = cl ? (size_t)atol(cl + 17) : 0,
           used = (size_t)(end - buf) + 4;
    while (have < used + body && have < sizeof buf) {
      ssize_t r = read(c->fd, buf + have, sizeof buf - have);
      if (r <= 0)
        goto out;
      have += (size_t)r;
    }
    if (answer(c->f, c->fd, buf) != 0)
      goto out;
    memmove(buf, buf + used + body, have - used - body);
    have -= used + body;
  }
out:
  close(c->fd);
  free(c);
  return NULL;
}

static void *accept_main(void *arg) {
  struct fake *f = arg;
  for (;;) {
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
      return NULL;
    struct conn *c = malloc(sizeof *c);
    pthread_t t;
    c->f = f;
    c->fd = fd;
    if (pthread_create(&t, NULL, conn_main, c) == 0)
      pthread_detach(t);
  }
}

static int fake_start(struct fake *f) {
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t al = sizeof a;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  f->lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(f->lfd, 16) != 0 ||
      getsockname(f->lfd, (struct sockaddr *)&a, &al) != 0 ||
      render_records(f) != 0)
    return -1;
  f->port = ntohs(a.sin_port);
  snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
  pthread_t t;
  if (pthread_create(&t, NULL, accept_main, f) != 0)
    return -1;
  pthread_detach(t);
  return 0;
}

/* ---- The bare libcurl ceiling ---------------------------------------------
 */

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  (void)p;
  *(size_t *)ud += s * n;
  return s * n;
}

static double bare_curl(struct fake *f) {
  CURL *c = curl_easy_init();
  size_t bytes = 0;
  char url[256];
  double t0 = now_s();
  for (int i = 0; i < g_pages; i++) {
    if (i == 0)
      snprintf(url, sizeof url, "%s" API "/query?q=SELECT+Id+FROM+Account",
               f->url);
    else
      snprintf(url, sizeof url, "%s" API "/query/01gB-%d", f->url, i);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bytes);
    if (curl_easy_perform(c) != CURLE_OK)
      return -1;
  }
  double dt = now_s() - t0;
  curl_easy_cleanup(c);
  return (double)g_pages * PER_PAGE / dt;
}

/* ---- The plugin in a worker ------------------------------------------------
 */

static int find_paths(char *exe, char *plugdir, int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return -1;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL)
    return -1;
  *slash = '\0';
  snprintf(exe, PATH_MAX, "%s", argc > 1 ? argv[1] : "");
  snprintf(plugdir, PATH_MAX, "%s", argc > 2 ? argv[2] : "");
  if (argc <= 1)
    snprintf(exe, PATH_MAX, "%.*s/../bin/connrun", PATH_MAX - 20, self);
  if (argc <= 2)
    snprintf(plugdir, PATH_MAX, "%.*s/../plugins", PATH_MAX - 20, self);
  return 0;
}

/* One execution of the plugin with its state (data, configuration) in dir
 * and its jsonl files in out. Records/s, or -1. */
static double plugin_rate(struct fake *f, const char *exe, const char *plugdir,
                          const char *dir, const char *out_dir,
                          int64_t *records) {
  char cfg[8192], path[PATH_MAX + 32];
  snprintf(cfg, sizeof cfg,
           "host:\n  data_dir: \"%s/data\"\n  plugin_dirs: [\"%s\"]\n"
           "authorizations:\n  - id: sf\n    provider: salesforce\n"
           "    method: oauth2_refresh_token\n"
           "    credentials: { client_id: \"bench\", client_secret: \"s\", "
           "refresh_token: \"r\" }\n"
           "works:\n  - id: w\n    provider: salesforce\n"
           "    authorization: sf\n    isolation: process\n"
           "    destination: { type: jsonl, path: \"%s\" }\n"
           "    config: { login_url: \"%s\", objects: [{ name: Account, "
           "fields: [Id, Name, Industry, BillingCity, SystemModstamp] }] }\n",
           dir, plugdir, out_dir, f->url);
  snprintf(path, sizeof path, "%s/connrun.yaml", dir);
  FILE *fp = fopen(path, "w");
  if (fp == NULL || fputs(cfg, fp) < 0 || fclose(fp) != 0)
    return -1;
  struct cr_daemon_options o = {.config_path = path};
  cr_diags diags;
  cr_daemon *d = NULL;
  cr_worker_pool *pool = NULL;
  cr_diags_init(&diags);
  int rc = cr_daemon_new(&o, &d, &diags);
  cr_diags_free(&diags);
  struct cr_worker_pool_opts po = {.exe = exe};
  if (rc != 0 || cr_worker_pool_new(&po, &pool) != 0 ||
      cr_worker_pool_prespawn(pool, 1) != 0)
    return -1;
  struct cr_exec_env env = {.cfg = cr_daemon_config(d),
                            .plugins = cr_daemon_plugins(d),
                            .pool = pool,
                            .store = cr_daemon_store(d)};
  int64_t id = 0;
  struct cr_exec_outcome out;
  double t0 = now_s(), rate = -1;
  if (cr_store_exec_create(env.store, "w", &id) == 0 &&
      cr_exec_run_to_end(&env, id, "bench", &out) == 0 &&
      out.state == CR_EXEC_COMPLETED) {
    *records = out.records;
    rate = (double)out.records / (now_s() - t0);
  } else {
    fprintf(stderr, "bench_salesforce: run failed: %s\n", out.error);
  }
  cr_worker_pool_free(pool);
  cr_daemon_free(d);
  return rate;
}

/* ---- What a run wrote, and the disk's ceiling ---------------------------
 */

/* Counts the bytes and the lines ('\n') of every file in dir (a run's jsonl
 * files): the bench checks that every record reached its file. 0 or -1. */
static int scan_output(const char *dir, double *bytes, int64_t *lines) {
  char path[PATH_MAX + 300];
  static char buf[1 << 20];
  DIR *dp = opendir(dir);
  struct dirent *e;
  *bytes = 0;
  *lines = 0;
  if (dp == NULL)
    return -1;
  while ((e = readdir(dp)) != NULL) {
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0) {
      *bytes += (double)n;
      for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p)));
           p++)
        ++*lines;
    }
    if (fd >= 0)
      close(fd);
  }
  closedir(dp);
  return 0;
}

/* bytes written to a file in dir in 256 KiB writes and made durable with
 * one fsync (the bytes a run wrote: the least the disk must do for a run
 * whose records are durable when it completes). Returns records/s at that
 * speed, or -1. */
static double disk_rate(const char *dir, double records, double bytes) {
  char path[PATH_MAX + 32];
  static char buf[256 * 1024];
  memset(buf, 'x', sizeof buf);
  snprintf(path, sizeof path, "%s/disk-ceiling", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || bytes <= 0)
    return -1;
  double t0 = now_s();
  for (double left = bytes; left > 0;) {
    size_t n = left < (double)sizeof buf ? (size_t)left : sizeof buf;
    if (write(fd, buf, n) != (ssize_t)n) {
      close(fd);
      return -1;
    }
    left -= (double)n;
  }
  int ok = fsync(fd) == 0;
  double dt = now_s() - t0;
  close(fd);
  return ok ? records / dt : -1;
}

/* ---- Rounds ---------------------------------------------------------------
 */

/* Rounds of the 1,000-page sync (CR_BENCH_SF_ROUNDS changes it). */
#define ROUNDS 5
#define ROUNDS_MAX 9

/* Where the in-memory run writes its jsonl files: /dev/shm when it is a
 * tmpfs with room for a 1,000-page run's 317 MB (a container's is often
 * 64 MiB), or NULL: the line is then skipped with the reason. */
#define MEM_ROOM (400.0 * 1024 * 1024)
static const char *mem_base(void) {
  struct statfs sf;
  if (statfs("/dev/shm", &sf) != 0 || sf.f_type != TMPFS_MAGIC ||
      (double)sf.f_bavail * (double)sf.f_bsize < MEM_ROOM * g_pages / 1000)
    return NULL;
  return "/dev/shm";
}

struct result {
  int pages;
  double ceiling; /* bare libcurl */
  double mem;     /* the plugin into jsonl files on a tmpfs (-1: none) */
  double rate;    /* the plugin into jsonl files on the disk */
  double disk, bytes;
};

/* One plugin run, its state in dir (made here) and its files in out, the
 * files read back: records/s or -1 (reported). */
static double checked_run(struct fake *f, const char *exe, const char *plugdir,
                          const char *dir, const char *out, int pages,
                          double *bytes) {
  int64_t records = 0, lines = 0;
  if (mkdir(dir, 0755) != 0)
    return -1;
  double rate = plugin_rate(f, exe, plugdir, dir, out, &records);
  if (rate > 0 && (scan_output(out, bytes, &lines) != 0 ||
                   records != (int64_t)pages * PER_PAGE || lines != records)) {
    fprintf(stderr,
            "bench_salesforce: %d pages into %s: %lld records, %lld "
            "lines\n",
            pages, out, (long long)records, (long long)lines);
    return -1;
  }
  return rate;
}

static void remove_tree(const char *dir) {
  char rm[PATH_MAX + 16];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  if (system(rm) != 0)
    fprintf(stderr, "bench_salesforce: could not remove %s\n", dir);
}

/* One sync of pages pages: bare libcurl, the plugin into memory (when a
 * tmpfs is there), the plugin onto the disk, and the disk's ceiling when
 * disk is set. 0 or -1 (reported). */
static int measure(struct fake *f, const char *exe, const char *plugdir,
                   int pages, int disk, struct result *res) {
  char tmpl[] = "/tmp/connrun-benchsf-XXXXXX", memtmpl[64] = "";
  char dir[128], out[160];
  double bytes = 0;
  if (mkdtemp(tmpl) == NULL)
    return -1;
  g_pages = pages;
  if (mem_base() != NULL) {
    snprintf(memtmpl, sizeof memtmpl, "%s/connrun-benchsf-XXXXXX", mem_base());
    if (mkdtemp(memtmpl) == NULL)
      memtmpl[0] = '\0';
  }
  memset(res, 0, sizeof *res);
  res->pages = pages;
  res->ceiling = bare_curl(f);
  res->mem = -1;
  if (memtmpl[0] != '\0') {
    snprintf(dir, sizeof dir, "%s/mem", tmpl);
    snprintf(out, sizeof out, "%s/out", memtmpl);
    if ((res->mem = checked_run(f, exe, plugdir, dir, out, pages, &bytes)) < 0)
      res->ceiling = -1;
    remove_tree(memtmpl);
  }
  snprintf(dir, sizeof dir, "%s/disk", tmpl);
  snprintf(out, sizeof out, "%s/out", dir);
  res->rate = checked_run(f, exe, plugdir, dir, out, pages, &res->bytes);
  if (disk && res->rate > 0)
    res->disk = disk_rate(tmpl, (double)pages * PER_PAGE, res->bytes);
  remove_tree(tmpl);
  if (res->ceiling <= 0 || res->rate <= 0) {
    fprintf(stderr, "bench_salesforce: %d pages failed\n", pages);
    return -1;
  }
  return 0;
}

/* The median of n values (sorts v). */
static double median(double *v, int n) {
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && v[k] < v[k - 1]; k--) {
      double t = v[k];
      v[k] = v[k - 1];
      v[k - 1] = t;
    }
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The plugin's rate (the median of rate[0..n)) and its ratio to the bare
 * client's, with each round's ratio when there are several. */
static void print_pair(const char *what, const char *target, const double *rate,
                       const double *bare, int n) {
  char line[96], note[96] = "";
  double r[ROUNDS_MAX], ratio[ROUNDS_MAX];
  for (int i = 0; i < n; i++) {
    r[i] = rate[i];
    ratio[i] = 100.0 * rate[i] / bare[i];
    size_t len = strlen(note);
    snprintf(note + len, sizeof note - len, "%s%.0f%%",
             i ? " " : "rounds: ", ratio[i]);
  }
  printf("%-52s %12.0f/s %10s\n", what, median(r, n), "");
  snprintf(line, sizeof line, "  ratio to bare libcurl%s",
           n > 1 ? " (median)" : "");
  printf("%-52s %13.0f%% %10s  %s\n", line, median(ratio, n), target,
         n > 1 ? note : "");
}

/* Rounds of one size, interleaved (bare, memory, disk, the disk's ceiling,
 * then again): the median of each figure and of the ratios. The bare
 * client's rate moves by a quarter between runs here, so one pair's ratio
 * says little. */
static void print_result(const struct result *r, int n, int primary) {
  char what[96];
  double bare[ROUNDS_MAX], mem[ROUNDS_MAX], rate[ROUNDS_MAX], disk[ROUNDS_MAX],
      best[ROUNDS_MAX];
  int nd = 0, has_mem = 1;
  for (int i = 0; i < n; i++) {
    bare[i] = r[i].ceiling;
    mem[i] = r[i].mem;
    rate[i] = r[i].rate;
    has_mem = has_mem && r[i].mem > 0;
    if (r[i].disk > 0) {
      disk[nd] = r[i].disk;
      best[nd++] =
          100.0 * (r[i].disk < r[i].ceiling ? r[i].disk / r[i].ceiling : 1.0);
    }
  }
  snprintf(what, sizeof what, "bare libcurl, %d pages of 2000 (records)",
           r->pages);
  double b[ROUNDS_MAX];
  memcpy(b, bare, sizeof b);
  printf("%-52s %12.0f/s %10s\n", what, median(b, n), "ceiling");
  snprintf(what, sizeof what, "salesforce -> worker -> jsonl in memory, %d p.",
           r->pages);
  if (has_mem)
    print_pair(what, primary ? ">= 70%" : "(start-up)", mem, bare, n);
  else
    printf("%-52s %14s\n", what,
           "skipped: /dev/shm is not a tmpfs with 400 MB free");
  snprintf(what, sizeof what, "salesforce -> worker -> jsonl on disk, %d p.",
           r->pages);
  print_pair(what, primary ? "(disk)" : "(start-up)", rate, bare, n);
  if (nd > 0) {
    snprintf(what, sizeof what, "disk: the run's %.0f MB written + 1 fsync",
             r->bytes / 1e6);
    printf("%-52s %12.0f/s %10s\n", what, median(disk, nd), "ceiling");
    printf("%-52s %13.0f%% %10s\n",
           "  best ratio with durable records (disk / libcurl)",
           median(best, nd), "");
  }
}

int main(int argc, char **argv) {
  static struct fake f;
  char exe[PATH_MAX], plugdir[PATH_MAX];
  int one = getenv("CR_BENCH_SF_PAGES") ? atoi(getenv("CR_BENCH_SF_PAGES")) : 0;
  if (find_paths(exe, plugdir, argc, argv) != 0 || fake_start(&f) != 0 ||
      curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    fprintf(stderr, "bench_salesforce: set-up failed\n");
    return 1;
  }
  int rounds = getenv("CR_BENCH_SF_ROUNDS") ? atoi(getenv("CR_BENCH_SF_ROUNDS"))
                                            : ROUNDS;
  rounds = rounds < 1 ? 1 : rounds > ROUNDS_MAX ? ROUNDS_MAX : rounds;
  struct result big[ROUNDS_MAX], small;
  for (int i = 0; i < rounds; i++)
    if (measure(&f, exe, plugdir, one > 0 ? one : 1000, 1, &big[i]) != 0)
      return 1;
  if (one == 0 && measure(&f, exe, plugdir, 100, 0, &small) != 0)
    return 1;
  printf("%-52s %14s %10s\n", "figure", "value", "target");
  print_result(big, rounds, 1);
  if (one == 0)
    print_result(&small, 1, 0);
  free(f.records);
  curl_global_cleanup();
  return 0;
}
