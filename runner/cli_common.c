/* cli_common.c: session and store opening and time formatting shared by the
 * subcommands (see cli_common.h). */
#include "cli_common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/log.h"

int cr_cli_store_open(const char *cmd, const char *config_path, cr_store **out,
                      cr_config **cfg_out) {
  cr_diags diags;
  cr_diags_init(&diags);
  cr_config *cfg = NULL;
  int rc = cr_config_load(config_path, &cfg, &diags);
  cr_diags_free(&diags);
  if (rc != 0) {
    cr_cli_errorf("%s: %s: %s (run 'connrun config check')", cmd, config_path,
                  cr_strerror(rc));
    cr_config_free(cfg);
    return rc == CR_ECONFIG ? CR_EXIT_INVALID : CR_EXIT_RUNTIME;
  }
  char err[512] = "";
  rc = cr_store_open(cr_config_store_at(cfg), out, err, sizeof err);
  if (rc != 0) {
    cr_cli_errorf("%s: cannot open the store in %s: %s", cmd,
                  cr_config_store_label(cfg), err);
    cr_config_free(cfg);
    return CR_EXIT_RUNTIME;
  }
  if (cfg_out != NULL)
    *cfg_out = cfg;
  else
    cr_config_free(cfg);
  return CR_EXIT_OK;
}

int cr_cli_daemon_open(const char *cmd, const struct cr_daemon_options *o,
                       cr_daemon **out) {
  cr_diags diags;
  cr_diags_init(&diags);
  int rc = cr_daemon_new(o, out, &diags);
  cr_diags_sort(&diags);
  for (size_t i = 0; i < diags.count; i++) {
    char line[2048];
    cr_diag_format(&diags.items[i], line, sizeof line);
    fprintf(stderr, "%s\n", line);
  }
  cr_diags_free(&diags);
  if (rc == 0)
    return CR_EXIT_OK;
  cr_cli_errorf("%s: %s: %s", cmd, o->config_path, cr_strerror(rc));
  return rc == CR_ECONFIG ? CR_EXIT_INVALID : CR_EXIT_RUNTIME;
}

void cr_cli_fmt_time(int64_t ms, char *buf, size_t len) {
  if (ms <= 0) {
    snprintf(buf, len, "-");
    return;
  }
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cr_cli_parse_since(const char *text, int64_t *at_ms) {
  int64_t ms = 0;
  if (cr_config_parse_duration(text, &ms) == 0) {
    *at_ms = cr__now_ms() - ms;
    return 0;
  }
  static const char *const formats[] = {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ",
                                        "%Y-%m-%d"};
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
    struct tm tm = {0};
    const char *end = strptime(text, formats[i], &tm);
    if (end == NULL && i == 0 &&
        (end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)) != NULL &&
        *end == '.') { /* fractions of a second, as the API writes times */
      for (end++; *end >= '0' && *end <= '9'; end++)
        ;
      end = *end == 'Z' ? end + 1 : NULL;
    }
    if (end != NULL && *end == '\0') {
      *at_ms = (int64_t)timegm(&tm) * 1000;
      return 0;
    }
  }
  return -1;
}

void cr_cli_log_stderr(void *ud, int level, const char *msg) {
  (void)ud;
  char ts[32];
  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf(stderr, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000,
          cr_log_level_name(level), msg);
}

int cr_cli_log_level(const char *s) {
  const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0)
      return i;
  return -1;
}
