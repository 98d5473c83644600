/* cmd_worker.c: `connrun worker`, the internal child process the daemon
 * spawns to run plugin jobs in isolation. It speaks the worker protocol
 * (core/plugin/wire.h) on fd 3 (from the parent) and fd 4 (to the parent); see
 * core/plugin/worker.h. Not meant to be run by hand. */
#include "cli.h"

#include <fcntl.h>

#include "plugin/worker.h"

int cr_cmd_worker(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    cr_cli_errorf("worker: internal command, takes no arguments (it is "
                  "spawned by 'connrun serve' with pipes on fds 3 and 4)");
    return CR_EXIT_USAGE;
  }
  if (fcntl(3, F_GETFD) < 0 || fcntl(4, F_GETFD) < 0) {
    cr_cli_errorf("worker: fds 3 and 4 are not open (internal command, "
                  "spawned by 'connrun serve')");
    return CR_EXIT_USAGE;
  }
  return cr_worker_main(3, 4);
}
