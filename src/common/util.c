/* util.c - see util.h. */
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t w2a_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t w2a_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t w2a_mono_us(void) { return w2a_mono_ns() / 1000u; }

void w2a_random(void *out, size_t n) {
  unsigned char *p = out;
  while (n) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      perror("getrandom");
      abort();
    }
    p += r;
    n -= (size_t)r;
  }
}

uint64_t w2a_random_u64(void) {
  uint64_t v;
  w2a_random(&v, sizeof v);
  return v;
}

void w2a_uuid4(char out[37]) {
  unsigned char b[16];
  w2a_random(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  snprintf(out, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
           b[13], b[14], b[15]);
}

int w2a_ct_equal(const void *a, size_t alen, const void *b, size_t blen) {
  const unsigned char *x = a, *y = b;
  unsigned char d = alen != blen;
  size_t n = alen < blen ? alen : blen;
  for (size_t i = 0; i < n; i++) d |= x[i] ^ y[i];
  return d == 0;
}

void w2a_mask_secret(const char *s, char out[48]) {
  if (!s || !*s) {
    snprintf(out, 48, "(unset)");
    return;
  }
  size_t n = strlen(s);
  snprintf(out, 48, "%.*s…(%zu chars)", n > 12 ? 4 : 0, s, n);
}

char *w2a_strndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}
