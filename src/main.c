/* main.c - the warp2api binary: everything happens in src/cli/. */
#include "cli/cli.h"

int main(int argc, char **argv) { return w2a_cli_main(argc, argv); }
