/* main.c: the connrun command-line tool (placeholder until subcommands land). */
#include "error.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("connrun %s\n", CR_VERSION);
    return 0;
  }
  fprintf(stderr, "connrun: %s\n", cr_strerror(CR_ENOTSUP));
  return 2;
}
