/* test_b64.c - base64 decoding: the four-at-a-time loop against a plain bit-by-bit
 * reference, on every length, both alphabets, padding, and a bad byte at each offset. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "t.h"

/* The decoder as it was before the table-per-position loop (b64.c's contract). */
static long ref_decode(const char *in, size_t n, unsigned char *out, size_t *bad_at) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  size_t end = n;
  while (end > 0 && in[end - 1] == '=' && n - end < 2)
    end--;
  if (n != end && n % 4 != 0) {
    *bad_at = n;
    return -1;
  }
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < end; i++) {
    int d;
    const char *q = in[i] ? strchr(a, in[i]) : NULL;
    if (q)
      d = (int)(q - a);
    else if (in[i] == '+' || in[i] == '-')
      d = 62;
    else if (in[i] == '/' || in[i] == '_')
      d = 63;
    else {
      *bad_at = i;
      return -1;
    }
    acc = acc << 6 | (uint32_t)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (end % 4 == 1) {
    *bad_at = end - 1;
    return -1;
  }
  return (long)o;
}

/* The output buffer is exactly w2a_b64_dec_max(n) bytes on the heap, so ASan catches a
 * store past what the contract promises (the 8-byte stores of the fast loop). */
static void same(const char *in, size_t n) {
  unsigned char *o1 = malloc(w2a_b64_dec_max(n)), o2[512];
  size_t b1 = 7777, b2 = 7777;
  long r1 = w2a_b64_decode(in, n, o1, &b1), r2 = ref_decode(in, n, o2, &b2);
  T_EQ_INT(r1, r2);
  if (r1 >= 0 && r1 == r2) T_EQ_MEM(o1, (size_t)r1, o2, (size_t)r2);
  if (r1 < 0 && r2 < 0) T_EQ_INT(b1, b2);
  free(o1);
}

static void test_round_trip(void) {
  unsigned char raw[120], back[200];
  char txt[200];
  for (size_t n = 0; n <= sizeof raw; n++) {
    for (size_t i = 0; i < n; i++)
      raw[i] = (unsigned char)(i * 37 + n);
    for (int url = 0; url < 2; url++)
      for (int pad = 0; pad < 2; pad++) {
        size_t l = w2a_b64_encode(raw, n, txt, url, pad);
        size_t bad = 0;
        long r = w2a_b64_decode(txt, l, back, &bad);
        T_EQ_INT(r, (long)n);
        if (r == (long)n) T_EQ_MEM(back, n, raw, n);
        same(txt, l);
      }
  }
}

static void test_bad_everywhere(void) {
  static const char bad[] = {'=', '*', ' ', '\n', 0, (char)0x80, (char)0xff, '.'};
  char txt[200];
  unsigned char raw[60];
  for (size_t i = 0; i < sizeof raw; i++)
    raw[i] = (unsigned char)(i * 11);
  size_t l = w2a_b64_encode(raw, sizeof raw, txt, 1, 0);
  for (size_t at = 0; at < l; at++)
    for (size_t k = 0; k < sizeof bad; k++) {
      char t[200];
      memcpy(t, txt, l);
      t[at] = bad[k];
      same(t, l);
      same(t, at + 1); /* the bad byte last */
    }
  unsigned char big[150];
  char bt[210];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (unsigned char)(i * 7 + 3);
  size_t bl = w2a_b64_encode(big, sizeof big, bt, 0, 1);
  for (size_t at = 0; at < bl; at++)
    for (size_t k = 0; k < sizeof bad; k++) {
      char t[210];
      memcpy(t, bt, bl);
      t[at] = bad[k];
      same(t, bl);
    }
  for (size_t n = 0; n <= 9; n++)
    same("QUJD=====", n); /* padding in every wrong place */
  srand(7);
  for (int r = 0; r < 20000; r++) {
    static const char pool[] = "AZaz09+/-_=*AQgw";
    char t[200];
    size_t n = (size_t)(rand() % 200);
    for (size_t i = 0; i < n; i++)
      t[i] = pool[rand() % (int)(sizeof pool - 1)];
    same(t, n);
  }
}

/* Long inputs: many vector blocks, a bad byte at every offset of a 400-character text. */
static void test_long(void) {
  unsigned char raw[300];
  char txt[410];
  for (size_t i = 0; i < sizeof raw; i++)
    raw[i] = (unsigned char)(i * 29 + 5);
  for (size_t n = 150; n <= sizeof raw; n += 7) {
    size_t l = w2a_b64_encode(raw, n, txt, (int)(n & 1), (int)(n >> 1 & 1));
    same(txt, l);
  }
  size_t l = w2a_b64_encode(raw, sizeof raw, txt, 1, 0);
  for (size_t at = 0; at < l; at++) {
    char t[410];
    memcpy(t, txt, l);
    t[at] = at & 1 ? '=' : (char)0xc3;
    same(t, l);
  }
}

/* w2a_b64_digits: the first non-digit at every offset of texts of many lengths, and the
 * whole length when there is none. */
static void test_digits(void) {
  static const char digits[] = "ABCXYZabcxyz0189+/-_";
  static const char stops[] = {'=', '\n', '\r', ' ', 0, (char)0x80, (char)0xff, ':'};
  char t[300];
  for (size_t n = 0; n <= 260; n += n < 70 ? 1 : 13) {
    for (size_t i = 0; i < n; i++)
      t[i] = digits[(i * 7 + n) % (sizeof digits - 1)];
    T_EQ_INT((long)w2a_b64_digits(t, n), (long)n);
    for (size_t at = 0; at < n; at++) {
      char save = t[at];
      t[at] = stops[(at + n) % sizeof stops];
      T_EQ_INT((long)w2a_b64_digits(t, n), (long)at);
      t[at] = save;
    }
  }
}

int main(void) {
  /* Every code path the CPU has: the vector loops stop at a bad block and leave it to
   * the scalar ones, so each level must give the reference's answers. */
  int have = w2a_b64_use(-1);
  for (int level = have; level >= 0; level--) {
    T_EQ_INT(w2a_b64_use(level), level);
    fprintf(stderr, "b64 decoder level %d\n", level);
    test_round_trip();
    test_bad_everywhere();
    test_long();
    test_digits();
  }
  return t_done();
}
