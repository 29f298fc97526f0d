/* cli.h - `warp2api` subcommands. Each returns the process exit code: 0 on success,
 * 1 when the work failed, 2 for a usage error. Each file in src/cli/ owns one family. */
#ifndef W2A_CLI_H
#define W2A_CLI_H

#include "common/config.h"

int w2a_cli_main(int argc, char **argv);

/* cli_proto.c: `proto encode|decode|decode-stream|schemas` */
int w2a_cli_proto(int argc, char **argv, w2a_config *cfg);
/* cli_proto_stream.c: `proto decode-stream` (called by w2a_cli_proto) */
int w2a_cli_proto_decode_stream(int argc, char **argv, w2a_config *cfg);
/* cli_accounts.c: `accounts add|import|export|list|show|remove|disable|enable|refresh|login` */
int w2a_cli_accounts(int argc, char **argv, w2a_config *cfg);
/* cli_serve.c: `serve` (gateway + pool), `gateway`, `pool` */
int w2a_cli_serve(int argc, char **argv, w2a_config *cfg, int gateway, int pool);

#endif
