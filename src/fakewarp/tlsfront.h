/* tlsfront.h - HTTPS and HTTP/2 in front of fakewarp, by running Debian's nghttpx as a
 * child process: TLS (h2 and http/1.1 by ALPN) on the public port, plain HTTP/1.1 to
 * fakewarp's own loopback port behind it. The real Warp speaks HTTP/2 over TLS; this
 * gives clients the same transport without a TLS stack inside the libuv server.
 *
 * The child runs with --single-process, so killing it (SIGTERM at stop) leaves no
 * workers behind. `ready` fires once the public port accepts TCP connections; `failed`
 * fires if the child exits early or the port never opens (10 s). Stop closes the
 * process handle; the struct frees itself when the handles are closed. */
#ifndef W2A_FAKE_TLSFRONT_H
#define W2A_FAKE_TLSFRONT_H

#include <uv.h>

#include "common/err.h"

typedef struct w2a_fake_tls w2a_fake_tls;

typedef struct w2a_fake_tls_opts {
  const char *nghttpx; /* NULL: "nghttpx" on PATH, then /usr/sbin/nghttpx */
  const char *host;
  int port; /* public TLS port (0: pick a free one) */
  int backend_port;
  const char *cert, *key;
  void (*ready)(int port, void *ud);
  void (*failed)(const char *why, void *ud);
  void *ud;
} w2a_fake_tls_opts;

int w2a_fake_tls_start(w2a_fake_tls **out, uv_loop_t *loop, const w2a_fake_tls_opts *o,
                       w2a_err *err);
int w2a_fake_tls_port(const w2a_fake_tls *t);
/* Kill the child and close the handles; t is freed when they are closed. */
void w2a_fake_tls_stop(w2a_fake_tls *t);

#endif
