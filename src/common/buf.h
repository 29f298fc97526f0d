/* buf.h - a growable byte buffer with a hard cap.
 *
 * Every buffer in warp2api has a cap (STYLE.md rule 6): appending past it fails with
 * W2A_ETOOBIG and leaves the buffer unchanged. The data is always NUL-terminated (the
 * terminator is not counted in len), so text can be handed to C string functions. */
#ifndef W2A_BUF_H
#define W2A_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct w2a_buf {
  char *data;
  size_t len;
  size_t cap;   /* allocated bytes (including room for the terminator) */
  size_t limit; /* hard cap on len; 0 means SIZE_MAX */
} w2a_buf;

void w2a_buf_init(w2a_buf *b, size_t limit);
void w2a_buf_free(w2a_buf *b);
void w2a_buf_reset(w2a_buf *b); /* len = 0, keeps memory */
int w2a_buf_reserve(w2a_buf *b, size_t extra);
int w2a_buf_append(w2a_buf *b, const void *p, size_t n);
int w2a_buf_puts(w2a_buf *b, const char *s);
int w2a_buf_putc(w2a_buf *b, char c);
int w2a_buf_printf(w2a_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal, quotes included: controls, '"' and '\\' escaped
 * (\b \t \n \f \r \" \\ or \u00XX), everything else (UTF-8 included) as it is. */
int w2a_buf_put_json_str(w2a_buf *b, const char *s, size_t n);
/* The same escaping into memory the caller reserved (room for 6 * n bytes), no quotes;
 * returns the end. */
char *w2a_json_escape_to(char *o, const char *s, size_t n);
/* Bytes at s before the first one that needs escaping (or n). */
size_t w2a_json_plain_len(const char *s, size_t n);
/* Remove the first n bytes. */
void w2a_buf_consume(w2a_buf *b, size_t n);
/* Hand the memory to the caller (who frees it with free()); the buffer becomes empty. */
char *w2a_buf_steal(w2a_buf *b, size_t *len);

#endif
