/* err.c - formatting of caller-owned error text. */
#include "err.h"

#include <stdio.h>

int w2a_errf(w2a_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

const char *w2a_strerror(int code) {
  switch (code) {
  case W2A_OK: return "ok";
  case W2A_EINVAL: return "invalid input";
  case W2A_ENOMEM: return "out of memory";
  case W2A_ETOOBIG: return "size limit exceeded";
  case W2A_EIO: return "i/o error";
  case W2A_ENOTFOUND: return "not found";
  case W2A_EAGAIN: return "incomplete";
  case W2A_ESTATE: return "invalid state";
  case W2A_EAUTH: return "not authorized";
  default: return "unknown error";
  }
}
