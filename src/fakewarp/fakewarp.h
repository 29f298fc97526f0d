/* fakewarp.h - a stand-in for Warp's servers (app.warp.dev, securetoken.googleapis.com,
 * identitytoolkit.googleapis.com) on one loopback port, for tests, demos and benchmarks.
 *
 * One w2a_fake owns the HTTP server, the world state (state.h), every live stream, and,
 * when TLS is asked for, the nghttpx child that terminates HTTPS + HTTP/2 in front of
 * it (tlsfront.h). Routes are dispatched here; each family lives in its own file:
 * stream.c (/ai/multi-agent), auth.c (token and sign-in endpoints), graphql.c, control.c
 * (/_fakewarp/..., test-only). All of it runs on one libuv loop; nothing blocks. */
#ifndef W2A_FAKE_FAKEWARP_H
#define W2A_FAKE_FAKEWARP_H

#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "fakewarp/state.h"
#include "http/server.h"

typedef struct w2a_fake_opts {
  const char *host;               /* default 127.0.0.1 */
  int port;                       /* 0: any free port */
  const char *tls_cert, *tls_key; /* both set: serve HTTPS+HTTP/2 on `port` via nghttpx */
  const char *nghttpx;            /* path of nghttpx (default: found on PATH) */
  int control;                    /* serve the /_fakewarp/... routes (default on) */
  const char *api_key;            /* when set, ?key= must match on Google routes */
  int accept_delay_ms;            /* delay before handling any request */
  int max_connections;
  /* Called once the public port accepts connections (right away without TLS; after
   * nghttpx opened its port with TLS), or `failed` when TLS could not start. */
  void (*ready)(int port, void *ud);
  void (*failed)(const char *why, void *ud);
  void *ud;
} w2a_fake_opts;

typedef struct w2a_fake_stream w2a_fake_stream;
typedef struct w2a_fake_tls w2a_fake_tls;

typedef struct w2a_fake {
  uv_loop_t *loop;
  w2a_fake_opts opts;
  w2a_http_server *http;
  w2a_fake_tls *tls;
  int public_port; /* TLS port when TLS is on, else the HTTP port */
  int http_port;
  w2a_fake_state st;
  w2a_fake_stream *streams;      /* live streams, for stats and shutdown */
  struct w2a_fake_delay *delays; /* requests waiting out accept_delay_ms */
  json_object *initial_accounts; /* from the configuration; re-applied by reset */
  int stopping;
  void (*stopped)(void *ud);
  void *stopped_ud;
} w2a_fake;

/* Listen and serve. `f` is caller-owned storage (zeroed by this call). */
int w2a_fake_start(w2a_fake *f, uv_loop_t *loop, const w2a_fake_opts *o, w2a_err *err);
/* End every stream, stop the TLS child, close the server; `done` runs on the loop once
 * every handle is closed; then w2a_fake_free() may be called. */
void w2a_fake_stop(w2a_fake *f, void (*done)(void *ud), void *ud);
void w2a_fake_free(w2a_fake *f);

/* Shared reply helpers (JSON bodies). */
int w2a_fake_reply_json(w2a_http_req *r, int status, json_object *body); /* takes body */
int w2a_fake_reply_text(w2a_http_req *r, int status, const char *ctype, const char *body);
/* {"error":"<msg>"} as Warp's own routes do. */
int w2a_fake_reply_error(w2a_http_req *r, int status, const char *msg);
/* The bearer token of r, or NULL. */
const char *w2a_fake_bearer(const w2a_http_req *r);

#endif
