/* plugins_test.c: `connrun plugins test`, the plugin conformance kit. */
#include "cli.h"

int cr_cmd_plugins_test(int argc, char **argv) {
  (void)argc;
  (void)argv;
  cr_cli_errorf("plugins test: not available in this build yet");
  return CR_EXIT_RUNTIME;
}
