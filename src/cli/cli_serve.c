/* cli_serve.c - placeholder until the gateway lands. */
#include <stdio.h>

#include "cli.h"

int w2a_cli_serve(int argc, char **argv, w2a_config *cfg, int gateway, int pool) {
  (void)argc, (void)argv, (void)cfg, (void)gateway, (void)pool;
  fputs("warp2api serve: not built yet\n", stderr);
  return 2;
}
