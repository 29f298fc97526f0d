/* fixtures.h - finding and reading the captured Warp traffic (turn1-request.bin,
 * turn1-response.sse), for unit tests and benchmarks; header-only, like t.h.
 *
 * The capture directory is $W2A_FIXTURES, else $W2A_SRC/../shared/fixtures/warp-capture
 * (ctest sets W2A_SRC to the source tree), else /work/shared/fixtures/warp-capture.
 * Files come back whole, NUL-terminated (the terminator not counted), owned by the
 * caller (free()). */
#ifndef W2A_FIXTURES_H
#define W2A_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"

/* The path of capture file `name`, written into out (n bytes); returns out. */
static inline char *fx_path(const char *name, char *out, size_t n) {
  const char *src = getenv("W2A_SRC"), *fx = getenv("W2A_FIXTURES");
  if (fx)
    snprintf(out, n, "%s/%s", fx, name);
  else if (src)
    snprintf(out, n, "%s/../shared/fixtures/warp-capture/%s", src, name);
  else
    snprintf(out, n, "/work/shared/fixtures/warp-capture/%s", name);
  return out;
}

/* Any file, whole; NULL when it cannot be opened. */
static inline char *fx_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  w2a_buf b;
  w2a_buf_init(&b, 0);
  char tmp[4096];
  size_t r;
  while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
    w2a_buf_append(&b, tmp, r);
  fclose(f);
  w2a_buf_puts(&b, ""); /* an empty file still comes back as "" */
  return w2a_buf_steal(&b, len);
}

/* Capture file `name`, whole; NULL (saying so on stderr) when it cannot be read. */
static inline char *fx_read(const char *name, size_t *len) {
  char path[4096];
  char *p = fx_slurp(fx_path(name, path, sizeof path), len);
  if (!p) fprintf(stderr, "cannot open %s (set W2A_SRC or W2A_FIXTURES)\n", path);
  return p;
}

#endif
