/* main.c - fakewarp placeholder until the fake server lands. */
#include <stdio.h>

int main(void) {
  fputs("fakewarp: not built yet\n", stderr);
  return 2;
}
