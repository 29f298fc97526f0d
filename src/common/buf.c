/* buf.c - growable capped buffer; see buf.h. Growth doubles, so appends are amortised
 * O(1); the cap is checked before any allocation so a hostile peer cannot make us
 * allocate past it. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
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

int w2a_buf_put_json_str(w2a_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  int rc = w2a_buf_reserve(b, n + 2);
  if (rc) return rc;
  b->data[b->len++] = '"';
  size_t run = 0; /* start of the pending run of bytes that need no escaping */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    if ((rc = w2a_buf_append(b, s + run, i - run))) return rc;
    run = i + 1;
    char esc[7] = {'\\', 0};
    size_t el = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      el = 6;
    }
    if ((rc = w2a_buf_append(b, esc, el))) return rc;
  }
  if ((rc = w2a_buf_append(b, s + run, n - run))) return rc;
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
