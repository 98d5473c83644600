/* bench_plugins.c: drop-in plugin rescans (issue "Drop-in plugins on a
 * running daemon"). Figures:
 *   1. cr_plugin_host_rescan of a directory of 50 plugins (bench/
 *      many_plugin.c) with one file replaced by a new version: p50 and max
 *      over 20 rescans (target < 20 ms), next to the ceiling measured in the
 *      same run: loading that one file alone into an empty host (dlopen and
 *      every check: what a rescan cannot avoid), and loading all 50.
 *   2. A real `connrun serve` watching that directory: the same file
 *      replaced by rename 10 times; the daemon's longest event-loop stall
 *      over each rescan (connrun_loop_stall_seconds_max of /metrics, read
 *      before and after; target < 5 ms), and the time from the rename to
 *      the `provider updated` event in the API (includes the 20 ms settle).
 */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "plugin/plugin_scan.h"

#define N_PLUGINS 50
#define ROUNDS 20
#define TOKEN "bench-plugins-token-0123456789abcdef"

static char dir[512];

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Builds p17 version 2.0.0 into dir/p17_v2.so and keeps v1 as p17_v1.so. */
static int build_versions(void) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd,
           "cc -O2 -shared -fPIC -DNAME=p17 -DVERSION=2.0.0 -I%s/sdk/include "
           "%s/bench/many_plugin.c -o %s/p17_v2.so && cp %s/plugins50/p17.so "
           "%s/p17_v1.so",
           CR_SOURCE_DIR, CR_SOURCE_DIR, dir, dir, dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Puts version v (1 or 2) of p17 in place, the safe way (copy, rename). */
static void swap_p17(int v) {
  char cmd[4096];
  snprintf(
      cmd, sizeof cmd,
      "cp %s/p17_v%d.so %s/plugins50/.p17.part && mv %s/plugins50/.p17.part "
      "%s/plugins50/p17.so",
      dir, v, dir, dir, dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_plugins: swap failed\n");
}

static void library_figures(void) {
  char pdir[600];
  snprintf(pdir, sizeof pdir, "%s/plugins50", dir);
  const char *dirs[] = {pdir};
  struct cr_plugin_scan_opts o = {.dirs = dirs, .n_dirs = 1};
  cr_plugin_host *set = NULL;
  cr_plugin_host_new(NULL, &set);
  double t0 = bench_now_s();
  cr_plugin_host_load_dir(set, pdir, NULL, NULL);
  double all = bench_now_s() - t0;
  double scan[ROUNDS], one[ROUNDS];
  for (int i = 0; i < ROUNDS; i++) {
    swap_p17(i % 2 == 0 ? 2 : 1);
    cr_plugin_host *neu = NULL;
    struct cr_plugin_change *c = NULL;
    size_t n = 0;
    t0 = bench_now_s();
    int rc = cr_plugin_host_rescan(set, &o, &neu, &c, &n);
    scan[i] = (bench_now_s() - t0) * 1000.0;
    if (rc != 0 || n != 1 || c[0].kind != CR_PLUGIN_UPDATED)
      fprintf(stderr, "bench_plugins: rescan %d: rc %d, %zu changes\n", i, rc,
              n);
    cr_plugin_changes_free(c, n);
    cr_plugin_host_free(set);
    set = neu;
    cr_plugin_host *alone = NULL;
    cr_plugin_host_new(NULL, &alone);
    char path[700], err[512];
    snprintf(path, sizeof path, "%s/p17_v%d.so", dir, i % 2 == 0 ? 1 : 2);
    t0 = bench_now_s();
    cr_plugin_host_load_file(alone, path, err, sizeof err);
    one[i] = (bench_now_s() - t0) * 1000.0;
    cr_plugin_host_free(alone);
  }
  cr_plugin_host_free(set);
  qsort(scan, ROUNDS, sizeof *scan, cmp_d);
  qsort(one, ROUNDS, sizeof *one, cmp_d);
  char ceil[96];
  snprintf(ceil, sizeof ceil, "load of that file alone p50 %.2f ms",
           one[ROUNDS / 2]);
  bench_row("rescan of 50 plugins, 1 changed, p50", scan[ROUNDS / 2], "ms",
            "< 20 ms", ceil);
  snprintf(ceil, sizeof ceil, "load of all 50: %.1f ms", all * 1000.0);
  bench_row("rescan of 50 plugins, 1 changed, max", scan[ROUNDS - 1], "ms",
            "< 20 ms", ceil);
}

/* ---- The daemon ---- */

/* GET path from the daemon; the body (malloc'd) or NULL. */
static char *http_get(CURL *c, int port, const char *path) {
  char url[512];
  struct bench_body b = {0};
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  struct curl_slist *h =
      curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_body_keep);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(h);
  if (rc != CURLE_OK) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* connrun_loop_stall_seconds_max from /metrics, in ms (-1: not found). */
static double stall_ms(CURL *c, int port) {
  char *m = http_get(c, port, "/metrics");
  const char *p = m ? strstr(m, "\nconnrun_loop_stall_seconds_max ") : NULL;
  double v = p ? atof(p + strlen("\nconnrun_loop_stall_seconds_max ")) : -1;
  free(m);
  return v < 0 ? -1 : v * 1000.0;
}

/* How many provider updated events the API lists now. */
static int updated_events(CURL *c, int port) {
  char *b = http_get(c, port,
                     "/v1/events?subject_type=provider&verb=updated&limit=100");
  int n = 0;
  for (const char *p = b; p && (p = strstr(p, "\"verb\":\"updated\"")); p++)
    n++;
  free(b);
  return n;
}

static void daemon_figures(void) {
  char cfg[1024], log[4096];
  snprintf(cfg, sizeof cfg, "%s/serve.yaml", dir);
  FILE *f = fopen(cfg, "w");
  if (f == NULL)
    return;
  fprintf(f,
          "host:\n  data_dir: ./data\n  listen: \"127.0.0.1:0\"\n"
          "  plugin_dirs: [\"%s/plugins50\"]\n"
          "  api_tokens: [{ name: b, token: \"" TOKEN "\", scopes: [read] }]\n",
          dir);
  fclose(f);
  pid_t pid = bench_start_serve(CR_BINARY_DIR "/bin/connrun", dir, cfg, log,
                                "serve.log");
  int port = bench_port_from_log(log);
  CURL *c = curl_easy_init();
  double worst = 0, lat[10];
  int rounds = 0;
  for (int i = 0; port > 0 && i < 10; i++) {
    int before = updated_events(c, port);
    usleep(300 * 1000); /* quiet, then reset the stall figure */
    stall_ms(c, port);
    double t0 = bench_now_s();
    swap_p17(i % 2 == 0 ? 1 : 2);
    int seen = 0;
    for (int k = 0; k < 2000 && !seen; k++) { /* at most 10 s */
      seen = updated_events(c, port) > before;
      if (!seen)
        usleep(5 * 1000);
    }
    lat[rounds++] = (bench_now_s() - t0) * 1000.0;
    double s = stall_ms(c, port);
    if (!seen || s < 0)
      fprintf(stderr, "bench_plugins: round %d: event %s, stall %.3f\n", i,
              seen ? "seen" : "missing", s);
    if (s > worst)
      worst = s;
  }
  curl_easy_cleanup(c);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);
  if (rounds == 0) {
    printf("daemon figures: `connrun serve` did not start (see %s)\n", log);
    return;
  }
  qsort(lat, (size_t)rounds, sizeof *lat, cmp_d);
  bench_row("daemon: longest loop stall over a rescan (10)", worst, "ms",
            "< 5 ms", "");
  bench_row("daemon: rename to provider updated event, p50", lat[rounds / 2],
            "ms", "", "incl. 20 ms settle");
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/connrun-bench-plugins-XXXXXX");
  if (mkdtemp(dir) == NULL || chmod(dir, 0755) != 0)
    return 1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  printf("%-52s %12s %-6s %-14s %s\n", "figure", "value", "unit", "target",
         "ceiling (same run)");
  if (bench_build_plugins(dir, "plugins50", N_PLUGINS, CR_SOURCE_DIR) != 0 ||
      build_versions() != 0) {
    printf("bench_plugins: cannot build the plugins (cc); skipped\n");
    return 0;
  }
  library_figures();
  daemon_figures();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_plugins: cannot remove %s\n", dir);
  curl_global_cleanup();
  return 0;
}
