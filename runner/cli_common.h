/* cli_common.h: what several subcommands share: opening the daemon's
 * session or only its store from a configuration file (with the
 * diagnostics and exit codes every command reports the same way), and the
 * time format of tables. */
#ifndef CR_CLI_COMMON_H
#define CR_CLI_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "store/store.h"

/* Loads config_path (borrowed) and opens the store under its data_dir into
 * *out (close with cr_store_close). When cfg_out is not NULL the loaded
 * configuration is handed over too (free with cr_config_free), else freed.
 * Problems are printed as "connrun: <cmd>: ..." (cmd borrowed). Returns a
 * CR_EXIT_* code; *out is set only on CR_EXIT_OK. */
int cr_cli_store_open(const char *cmd, const char *config_path, cr_store **out,
                      cr_config **cfg_out);

/* cr_daemon_new with every diagnostic printed to stderr as
 * FILE:LINE:COLUMN lines. Returns a CR_EXIT_* code; *out is set only on
 * CR_EXIT_OK. o and cmd borrowed. */
int cr_cli_daemon_open(const char *cmd, const struct cr_daemon_options *o,
                       cr_daemon **out);

/* Parses a --since value into an absolute time (ms, UTC): a duration back
 * from now ("24h", "90m", "2d") or a UTC time "2026-11-23T16:25:17Z"
 * (fractions of a second allowed: "2026-11-23T16:25:17.250Z"),
 * "2026-11-23T16:25Z" or a date "2026-11-23". Returns 0 or -1. */
int cr_cli_parse_since(const char *text, int64_t *at_ms);

/* The log sink of the long-running commands (serve, runner): one line
 * "2026-11-23T16:25:17.250Z info  message" to stderr. ud unused. */
void cr_cli_log_stderr(void *ud, int level, const char *msg);

/* The level named s ("debug", "info", "warn", "error"), or -1. */
int cr_cli_log_level(const char *s);

/* "2026-11-23T16:25:17Z" (UTC) into buf (len bytes); "-" for ms <= 0. */
void cr_cli_fmt_time(int64_t ms, char *buf, size_t len);

#endif
