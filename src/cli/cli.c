/* cli.c - top-level command dispatch, --help and `config`.
 *
 * Global options come before the subcommand: `--env-file PATH`. Configuration is
 * loaded once here and handed to the subcommand. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"

static void usage(FILE *out) {
  fputs("usage: warp2api [--env-file PATH] COMMAND [ARGS]\n"
        "\n"
        "An OpenAI-compatible gateway to Warp's AI models, through a pool of Warp\n"
        "accounts that you own.\n"
        "\n"
        "commands:\n"
        "  serve                  run the gateway (:8000) and the account pool (:8019)\n"
        "  gateway                run the gateway alone (shares the database with `pool`)\n"
        "  pool                   run the account-pool admin service alone\n"
        "  accounts SUBCOMMAND    manage accounts: add, import, export, list, show,\n"
        "                         remove, disable, enable, refresh, login\n"
        "  proto SUBCOMMAND       protocol tools: encode, decode, decode-stream, schemas\n"
        "  config                 print the effective configuration (secrets masked)\n"
        "  help                   this text, and the configuration reference\n"
        "\n"
        "Configuration comes from config/warp2api.env (or --env-file, or $W2A_ENV_FILE)\n"
        "and the environment; the environment wins. `warp2api help` lists every setting.\n",
        out);
}

int w2a_cli_main(int argc, char **argv) {
  const char *env_file = NULL;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (!strcmp(argv[i], "--env-file") && i + 1 < argc) {
      env_file = argv[++i];
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "warp2api: unknown option %s (see warp2api --help)\n", argv[i]);
      return 2;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[i];
  if (!strcmp(cmd, "help")) {
    usage(stdout);
    fputs("\nsettings (NAME, default, meaning):\n", stdout);
    w2a_config_print_help(stdout);
    return 0;
  }
  w2a_config cfg;
  w2a_err err = {0};
  if (w2a_config_load(&cfg, env_file, &err)) {
    fprintf(stderr, "warp2api: configuration error: %s\n", err.msg);
    w2a_config_free(&cfg);
    return 2;
  }
  w2a_log_set_level(w2a_log_level_parse(cfg.log_level));
  if (cfg.log_file[0] && w2a_log_open_file(cfg.log_file))
    fprintf(stderr, "warp2api: cannot open log file %s\n", cfg.log_file);

  int rc;
  int sub_argc = argc - i;
  char **sub_argv = argv + i;
  if (!strcmp(cmd, "config")) {
    w2a_config_print(&cfg, stdout);
    rc = 0;
  } else if (!strcmp(cmd, "proto")) {
    rc = w2a_cli_proto(sub_argc, sub_argv, &cfg);
  } else if (!strcmp(cmd, "accounts")) {
    rc = w2a_cli_accounts(sub_argc, sub_argv, &cfg);
  } else if (!strcmp(cmd, "serve")) {
    rc = w2a_cli_serve(sub_argc, sub_argv, &cfg, 1, 1);
  } else if (!strcmp(cmd, "gateway")) {
    rc = w2a_cli_serve(sub_argc, sub_argv, &cfg, 1, 0);
  } else if (!strcmp(cmd, "pool")) {
    rc = w2a_cli_serve(sub_argc, sub_argv, &cfg, 0, 1);
  } else {
    fprintf(stderr, "warp2api: unknown command \"%s\" (see warp2api --help)\n", cmd);
    rc = 2;
  }
  w2a_log_open_file(NULL);
  w2a_config_free(&cfg);
  return rc;
}
