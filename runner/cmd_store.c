/* cmd_store.c: `connrun store migrate`: copies a single-machine SQLite
 * installation into a new PostgreSQL database (store/store_copy.h), checks
 * the copy, and prints what it copied. The target's password is best kept
 * out of the command line: libpq reads PGPASSWORD and ~/.pgpass. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "store/store_copy.h"
#include "util/error.h"

static void help(FILE *out) {
  fputs("usage: connrun store migrate --from DIR|FILE.db|URL --to URL [--json]"
        "\n\n"
        "Copies every table of a store (a data directory, its connrun.db, or\n"
        "a store URL) into a new PostgreSQL database, in one transaction,\n"
        "then checks that each table has as many rows in both and that every\n"
        "event subject has the same events and sequence numbers. A target\n"
        "that already holds authorizations, works, executions, events,\n"
        "runners or subscriptions is refused and left untouched. Stop the\n"
        "instances first; then set host.store to the URL.\n\n"
        "examples:\n"
        "  PGPASSWORD=... connrun store migrate --from data/connrun.db \\\n"
        "      --to postgresql://connrun@db.internal/connrun\n\n"
        "exit codes: 0 copied and checked, 2 usage error, 3 store error or\n"
        "the copy did not check out (nothing was kept)\n",
        out);
}

/* DIR, FILE.db or URL as cr_store_open takes it (a file: sqlite:FILE). */
static const char *source_of(const char *from, char *buf, size_t len) {
  struct stat st;
  if (!cr_store_is_url(from) && stat(from, &st) == 0 && S_ISREG(st.st_mode)) {
    snprintf(buf, len, "sqlite:%s", from);
    return buf;
  }
  return from;
}

static int migrate(const char *from, const char *to, int as_json) {
  char src[4200], err[512] = "";
  cr_store *a = NULL, *b = NULL;
  if (cr_store_open(source_of(from, src, sizeof src), &a, err, sizeof err)) {
    cr_cli_errorf("store migrate: cannot open %s: %s", from, err);
    return CR_EXIT_RUNTIME;
  }
  if (cr_store_open_url(to, &b, err, sizeof err) != 0) {
    cr_cli_errorf("store migrate: cannot open the target: %s", err);
    cr_store_close(a);
    return CR_EXIT_RUNTIME;
  }
  struct cr_store_copy_report r;
  int rc = cr_store_copy(a, b, &r, err, sizeof err);
  cr_store_close(a);
  cr_store_close(b);
  if (rc != 0) {
    cr_cli_errorf("store migrate: %s (%s)", err, cr_strerror(rc));
    return rc == CR_EINVAL ? CR_EXIT_USAGE : CR_EXIT_RUNTIME;
  }
  if (as_json)
    printf("{\"tables\": %zu, \"rows\": %lld, \"events\": %lld, "
           "\"subjects\": %lld, \"verified\": true}\n",
           r.tables, (long long)r.rows, (long long)r.events,
           (long long)r.subjects);
  else
    printf("copied %zu tables, %lld rows (%lld events of %lld subjects); "
           "row counts and per-subject sequences verified\n",
           r.tables, (long long)r.rows, (long long)r.events,
           (long long)r.subjects);
  return CR_EXIT_OK;
}

int cr_cmd_store(int argc, char **argv) {
  if (cr_cli_wants_help(argc, argv) || argc < 2) {
    help(argc < 2 ? stderr : stdout);
    return argc < 2 ? CR_EXIT_USAGE : CR_EXIT_OK;
  }
  if (strcmp(argv[1], "migrate") != 0) {
    cr_cli_errorf("store: unknown subcommand '%s' (see --help)", argv[1]);
    return CR_EXIT_USAGE;
  }
  const char *from = NULL, *to = NULL;
  int as_json = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--from") && i + 1 < argc)
      from = argv[++i];
    else if (!strcmp(argv[i], "--to") && i + 1 < argc)
      to = argv[++i];
    else if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else {
      cr_cli_errorf("store migrate: unexpected argument '%s' (see --help)",
                    argv[i]);
      return CR_EXIT_USAGE;
    }
  }
  if (from == NULL || to == NULL) {
    cr_cli_errorf("store migrate: need --from and --to (see --help)");
    return CR_EXIT_USAGE;
  }
  return migrate(from, to, as_json);
}
