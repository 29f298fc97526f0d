/* buf.c - growable capped buffer; see buf.h. Growth doubles, so appends are amortised
 * O(1); the cap is checked before any allocation so a hostile peer cannot make us
 * allocate past it. */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "err.h"

void w2a_buf_init(w2a_buf *b, size_t limit) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->limit = limit ? limit : SIZE_MAX - 1;
}

void w2a_buf_free(w2a_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void w2a_buf_reset(w2a_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = 0;
}

int w2a_buf_reserve(w2a_buf *b, size_t extra) {
  if (extra > b->limit - b->len) return W2A_ETOOBIG;
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return 0;
  size_t ncap = b->cap ? b->cap : 64;
  while (ncap < need)
    ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
  char *p = realloc(b->data, ncap);
  if (!p) return W2A_ENOMEM;
  b->data = p;
  b->cap = ncap;
  return 0;
}

int w2a_buf_append(w2a_buf *b, const void *p, size_t n) {
  int rc = w2a_buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
  return 0;
}

int w2a_buf_puts(w2a_buf *b, const char *s) { return w2a_buf_append(b, s, strlen(s)); }

int w2a_buf_putc(w2a_buf *b, char c) { return w2a_buf_append(b, &c, 1); }

int w2a_buf_printf(w2a_buf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return W2A_EINVAL;
  if ((size_t)n < sizeof small) return w2a_buf_append(b, small, (size_t)n);
  int rc = w2a_buf_reserve(b, (size_t)n);
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

/* ---- JSON strings (one escaper for the whole project: the transcoder, the gateway's
 * chunks, error bodies and the CLI) ---- */

static const uint8_t json_esc[256] = {1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                      1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                      1, 1, 1, 1, 1, 1, 1, 1, ['"'] = 1, ['\\'] = 1};

size_t w2a_json_plain_len(const char *s, size_t n) {
  size_t i = 0;
#ifdef __SSE2__
  /* Sixteen at a time (SSE2 is part of x86-64): a byte below 0x20 (max(c, 0x1f) is 0x1f),
   * a '"' or a '\\' marks its position in the mask; the first mark is the answer. */
  const __m128i c1f = _mm_set1_epi8(0x1f), vq = _mm_set1_epi8('"'), vb = _mm_set1_epi8('\\');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
    __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f),
                             _mm_or_si128(_mm_cmpeq_epi8(v, vq), _mm_cmpeq_epi8(v, vb)));
    unsigned bits = (unsigned)_mm_movemask_epi8(m);
    if (bits) return i + (size_t)__builtin_ctz(bits);
  }
#endif
  /* Eight at a time: a byte below 0x20, a '"' or a '\\' sets a high bit in the word test
   * (exact as an "any"; the byte loop then finds which). */
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    uint64_t qt = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    if ((((w - ones * 0x20) & ~w) | ((qt - ones) & ~qt) | ((bs - ones) & ~bs)) & highs) break;
  }
  while (i < n && !json_esc[(uint8_t)s[i]])
    i++;
  return i;
}

/* The escape of one byte that needs it (at most 6 bytes at o); returns the end. */
static char *escape_one(char *o, unsigned char c) {
  static const char hex[] = "0123456789abcdef";
  static const char two[256] = {['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f',
                                ['\r'] = 'r', ['"'] = '"',  ['\\'] = '\\'};
  *o++ = '\\';
  if (two[c]) {
    *o++ = two[c];
    return o;
  }
  memcpy(o, "u00", 3);
  o[3] = hex[c >> 4];
  o[4] = hex[c & 15];
  return o + 5;
}

char *w2a_json_escape_to(char *o, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    i += w2a_json_plain_len(s + i, n - i);
    memcpy(o, s + run, i - run);
    o += i - run;
    if (i < n) o = escape_one(o, (unsigned char)s[i++]);
  }
  return o;
}

int w2a_buf_put_json_str(w2a_buf *b, const char *s, size_t n) {
  int rc = w2a_buf_reserve(b, n + 2); /* the common case: nothing to escape */
  if (rc) return rc;
  b->data[b->len++] = '"';
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    i += w2a_json_plain_len(s + i, n - i);
    if ((rc = w2a_buf_append(b, s + run, i - run))) return rc;
    if (i == n) break;
    char esc[6];
    char *e = escape_one(esc, (unsigned char)s[i++]);
    if ((rc = w2a_buf_append(b, esc, (size_t)(e - esc)))) return rc;
  }
  return w2a_buf_putc(b, '"');
}

void w2a_buf_consume(w2a_buf *b, size_t n) {
  if (n >= b->len) {
    w2a_buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = 0;
}

char *w2a_buf_steal(w2a_buf *b, size_t *len) {
  if (w2a_buf_reserve(b, 0)) return NULL;
  char *p = b->data;
  if (len) *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
