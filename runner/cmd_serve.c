/* cmd_serve.c: placeholder while the subcommand is being written. */
#include "cli.h"
#include "error.h"

int cr_cmd_serve(int argc, char **argv) {
  (void)argc;
  cr_cli_errorf("%s: %s", argv[0], cr_strerror(CR_ENOTSUP));
  return CR_EXIT_RUNTIME;
}
