/* gateway.h - the OpenAI-compatible front of warp2api.
 *
 * One w2a_gateway listens on cfg->host:cfg->port (HTTP/1.1 server from src/http) and
 * serves /v1/chat/completions, /v1/models, /healthz, /readyz and the admin-token
 * protected protocol debugging routes (/api/encode, /api/decode, /api/stream-decode,
 * /api/schemas). Completions lease accounts from `pool` and go upstream through `http`
 * (libcurl multi on the same loop). The gateway borrows loop, cfg, pool and http: they
 * must outlive it (close the pool and the client after `done` has run).
 *
 * Without API_KEYS the gateway refuses a non-loopback HOST (it binds 127.0.0.1 instead
 * and logs that it did so). No process-wide conversation state: every request carries
 * its own history.
 *
 * Shutdown (SIGTERM/SIGINT in `warp2api serve`): w2a_gateway_shutdown() stops accepting,
 * lets running requests and streams finish for cfg->shutdown_grace_ms, then aborts what
 * is left (upstream transfers cancelled, leases released) and calls `done` on the loop
 * once every connection and upstream call is gone and the gateway is freed. */
#ifndef W2A_GATEWAY_H
#define W2A_GATEWAY_H

#include <uv.h>

#include "common/config.h"
#include "common/err.h"
#include "http/client.h"
#include "pool/pool.h"

typedef struct w2a_gateway w2a_gateway;

/* Bind and start serving. `pool` may be NULL (then every completion answers 503 "no
 * account pool" and /readyz is 503). On failure *out is NULL and err says why. */
int w2a_gateway_start(w2a_gateway **out, uv_loop_t *loop, const w2a_config *cfg, w2a_pool *pool,
                      w2a_http_client *http, w2a_err *err);
/* Graceful stop as described above; call once. `done` may be NULL. */
void w2a_gateway_shutdown(w2a_gateway *g, void (*done)(void *ud), void *ud);
/* The bound port (useful with PORT=0 in tests). */
int w2a_gateway_port(const w2a_gateway *g);
/* Requests in flight (for logs during shutdown and for tests). */
size_t w2a_gateway_inflight(const w2a_gateway *g);

#endif
