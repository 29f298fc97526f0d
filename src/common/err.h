/* err.h - error codes and the caller-owned error text.
 *
 * Functions return 0 on success or a negative W2A_E* code. Functions whose failure
 * needs detail (a byte offset, a JSON path, a field name) also take a `w2a_err *` and
 * fill its text; the caller owns the buffer, so there is no global error state. */
#ifndef W2A_ERR_H
#define W2A_ERR_H

#include <stdarg.h>

enum {
  W2A_OK = 0,
  W2A_EINVAL = -1,   /* malformed input */
  W2A_ENOMEM = -2,   /* allocation failed */
  W2A_ETOOBIG = -3,  /* a configured cap was exceeded */
  W2A_EIO = -4,      /* I/O, database or network failure */
  W2A_ENOTFOUND = -5,
  W2A_EAGAIN = -6,   /* incomplete input: feed more */
  W2A_ESTATE = -7,   /* call not valid in the current state */
  W2A_EAUTH = -8,
};

typedef struct w2a_err {
  int code;
  char msg[256];
} w2a_err;

/* Fill err (when non-NULL) and return code, so callers can `return w2a_errf(...)`. */
int w2a_errf(w2a_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *w2a_strerror(int code);

#endif
