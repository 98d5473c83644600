/* log.h: the log sink the library reports through (it never prints). The
 * tool installs a sink that writes lines to stderr; tests install one that
 * collects. Messages are already redacted of known secrets. */
#ifndef CR_LOG_H
#define CR_LOG_H

/* Levels; same numbers as the plugin SDK's CR_PLUGIN_LOG_*. */
enum cr_log_level {
  CR_LOG_DEBUG = 0,
  CR_LOG_INFO = 1,
  CR_LOG_WARN = 2,
  CR_LOG_ERROR = 3,
};

/* A sink: msg is borrowed (valid during the call), one line, no newline. */
typedef void (*cr_log_fn)(void *ud, int level, const char *msg);

/* Formats and sends one line to fn (no-op when fn is NULL). */
void cr__logf(cr_log_fn fn, void *ud, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "debug", "info", "warn", "error". Static string. */
const char *cr_log_level_name(int level);

#endif
