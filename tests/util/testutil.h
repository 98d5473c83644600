/* testutil.h: shared helpers for connrun tests (temp dirs, files, child
 * processes, failing allocator). Include after <cmocka.h>'s prerequisites. */
#ifndef CR_TESTUTIL_H
#define CR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/daemon.h"
#include "exec/exec_run.h"
#include "plugin/plugin_host.h"
#include "plugin/worker_pool.h"
#include "util/redact.h"

/* Creates a fresh directory under $TMPDIR (or /tmp) named after tag and
 * returns its path (static storage per call site is not used: caller frees
 * with free()). Aborts the test on failure. */
char *cr_test_mkdtemp(const char *tag);

/* Removes a directory tree (best effort). */
void cr_test_rmtree(const char *path);

/* Writes text to dir/name (creating it, truncating). Returns the full path;
 * caller frees with free(). */
char *cr_test_write_file(const char *dir, const char *name, const char *text);

/* Reads a whole file; caller frees with free(). NULL if it cannot be read. */
char *cr_test_read_file(const char *path);

/* "dir/name" in a new string; caller frees with free(). */
char *cr_test_join(const char *dir, const char *name);

/* Copies the file src to dst, or the tree src (directories and regular
 * files) into the new directory dst. Abort the test on failure. */
void cr_test_copy_file(const char *src, const char *dst);
void cr_test_copy_tree(const char *src, const char *dst);

/* The first executable `name` on $PATH, or NULL. Caller frees. */
char *cr_test_which(const char *name);

/* Runs the compiler command pre (a NULL-terminated list: the compiler and
 * its fixed options), then cflags (space-separated, e.g. pkg-config's
 * output), then -o out src. Fails the test with the compiler's output,
 * prefixed by what (e.g. "compiling x.c"), when it does not succeed. */
void cr_test_compile(const char *const *pre, const char *cflags,
                     const char *out, const char *src, const char *what);

/* Compiles the plugin source src into the shared object so with the
 * project's compiler, -Wall -Wextra -Werror, -fvisibility=hidden and
 * -Wl,--no-undefined, plus cflags (space-separated, e.g. pkg-config's
 * output), then makes it mode 0755 (the host refuses group-writable
 * plugins). Fails the test with the compiler's output on error. */
void cr_test_build_plugin(const char *src, const char *so, const char *cflags);

/* Loads the bundled plugin CR_PLUGIN_DIR/<name>.so into a new host (*host;
 * caller frees with cr_plugin_host_free) and returns the plugin named name,
 * borrowed from the host. On failure prints the reason to stderr, frees the
 * host, sets *host to NULL and returns NULL. For cmocka group setups. */
const cr_plugin *cr_test_load_bundled(const char *name, cr_plugin_host **host);

/* How many of the n strings text[0..n) contain needle (all borrowed). */
int cr_test_count_containing(char *const *text, int n, const char *needle);

/* Opens plugin p as a destination with params and redactor red (all
 * borrowed), its log lines sent to log(log_ud); asserts success. Returns
 * the destination (caller closes with cr_dest_close). */
struct cr_dest *cr_test_open_plugin_dest(const cr_plugin *p,
                                         const struct cr_plugin_params *params,
                                         const cr_redactor *red,
                                         void (*log)(void *, int, const char *),
                                         void *log_ud);

/* Runs argv (argv[0] is a path) with stdout+stderr captured into *out
 * (caller frees with free()). Returns the exit status (0-255), or 128+signal.
 * env may be NULL (inherit) or a NULL-terminated list of "K=V" to add. */
int cr_test_run(char *const argv[], char *const env[], char **out);

/* A child process whose stdout and stderr go to a log file. */
struct cr_test_proc {
  int pid;
  char *log_path; /* caller frees with free() (cr_test_proc_stop does) */
};

/* Starts argv (argv[0] is a path) with stdout+stderr appended to
 * dir/log_name; env adds "K=V" strings (NULL-terminated, may be NULL). */
struct cr_test_proc cr_test_spawn(const char *dir, const char *log_name,
                                  char *const argv[], char *const env[]);

/* Starts `connrun serve -c cfg` plus extra arguments (NULL-terminated, may
 * be NULL), logging to dir/serve.log. */
struct cr_test_proc cr_test_serve(const char *dir, const char *cfg,
                                  char *const extra[], char *const env[]);

/* Waits (bounded: about 30 s) until the log holds text at least times
 * times. Returns 1 when it does, 0 otherwise (or when the process ended). */
int cr_test_wait_log(const struct cr_test_proc *p, const char *text, int times);

/* The API port a `connrun serve` logged ("api: listening on ... (port N)"),
 * waiting for the line as cr_test_wait_log does; 0 when it never came. */
int cr_test_serve_port(const struct cr_test_proc *p);

/* Waits up to max_ms for the process to exit; returns its exit status
 * (0-255, or 128+signal), or -1 when it is still running. */
int cr_test_proc_wait(struct cr_test_proc *p, int max_ms);

/* SIGTERM, then waits (bounded; SIGKILL after 30 s). Returns the exit
 * status as cr_test_proc_wait does and frees log_path. */
int cr_test_proc_stop(struct cr_test_proc *p);

/* The live (not zombie) children of pid, from /proc; up to max into out.
 * Returns how many. */
size_t cr_test_children(int pid, int *out, size_t max);

/* 1 when process pid is gone (no such process, or a zombie). */
int cr_test_proc_gone(int pid);

/* Loopback TCP helpers: a socket bound to 127.0.0.1:0 (listening when
 * listen_too; its port in *port; the caller closes the fd), a port that was
 * free a moment ago, and whether something accepts connections on port. */
int cr_test_bind_any(int *port, int listen_too);
int cr_test_free_port(void);
int cr_test_can_connect(int port);

/* 1 when /usr/bin/python3 can import module (e.g. "aiosmtpd"). */
int cr_test_have_python_module(const char *module);

/* Failing allocator: after cr_test_alloc_fail_after(n), the (n+1)th
 * allocation through cr__malloc & co. fails and every later one succeeds
 * again; n < 0 disables. Installed by cr_test_alloc_install(). */
void cr_test_alloc_install(void);
void cr_test_alloc_fail_after(long n);
/* Number of allocations seen since install. */
long cr_test_alloc_count(void);
/* True if the failure injected by cr_test_alloc_fail_after() happened. */
int cr_test_alloc_failed(void);

/* The 1-based line and column of the nth (0-based) occurrence of needle in
 * text; fails the test when there is none. */
void cr_test_text_pos(const char *text, const char *needle, int nth, int *line,
                      int *col);

/* Runs round(arg) with its nth allocation failing, for n = 0, 1, ... below
 * max, until a round meets no injected failure. Asserts that every failed
 * round returned CR_ENOMEM and that the last one returned 0; returns that
 * last n (how many allocations a whole round makes). Installs the failing
 * allocator; round must leave nothing behind either way. */
long cr_test_alloc_rounds(int (*round)(void *arg), void *arg, long max);

/* A daemon (not running) from config text written to dir/connrun.yaml,
 * a pool of `connrun worker` processes, and *env filled to run its works
 * with them (store, config, plugins, pool, retry base 10 ms); the caller
 * sets the log. Prints the diagnostics and fails the test when the
 * configuration is refused. The caller frees *d and *pool. */
void cr_test_exec_env(const char *dir, const char *config, cr_daemon **d,
                      cr_worker_pool **pool, struct cr_exec_env *env);

#endif
