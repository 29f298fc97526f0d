/* cli_proto.c - placeholder until the protocol layer lands. */
#include <stdio.h>

#include "cli.h"

int w2a_cli_proto(int argc, char **argv, w2a_config *cfg) {
  (void)argc, (void)argv, (void)cfg;
  fputs("warp2api proto: not built yet\n", stderr);
  return 2;
}
