/* cli_accounts.c - placeholder until the account pool lands. */
#include <stdio.h>

#include "cli.h"

int w2a_cli_accounts(int argc, char **argv, w2a_config *cfg) {
  (void)argc, (void)argv, (void)cfg;
  fputs("warp2api accounts: not built yet\n", stderr);
  return 2;
}
