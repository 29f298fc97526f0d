/* client.h - HTTP client on libcurl's multi interface, driven by a libuv loop
 * (curl_multi_socket_action with uv_poll and a uv_timer), so upstream transfers share
 * the gateway's one event loop. libcurl brings HTTP/2 over TLS, proxies (HTTPS_PROXY,
 * ALL_PROXY, NO_PROXY from the environment, or an explicit one), and a threaded
 * resolver, so DNS never blocks the loop.
 *
 * Contract
 * - on_status fires once, when the response head is complete (status, content-type).
 * - on_data fires per received piece; returning W2A_HTTP_PAUSE pauses the transfer until
 *   w2a_http_call_resume() (the bytes of that call are kept; they are not re-delivered).
 * - on_done fires exactly once at the end (code 0 = complete; otherwise a W2A_E* code and
 *   a message naming the failure: "connect timeout", "idle timeout", curl's text…),
 *   unless the call was cancelled first. The call is freed after on_done returns.
 * - w2a_http_call_cancel() stops the transfer at once (the connection is closed, so the
 *   server sees the abandonment), fires no callback, and frees the call. It is safe from
 *   inside any of the call's callbacks (freeing is deferred off curl's stack).
 * - All functions must be called on the loop thread.
 *
 * Details fixed by the implementation (client.c)
 * - on_data returning anything other than CONTINUE/PAUSE (e.g. W2A_HTTP_ABORT) stops the
 *   transfer; on_done then fires with W2A_EIO, "aborted by the receiver".
 * - w2a_http_call_resume() takes effect on the next loop turn (curl delivers buffered
 *   data from inside curl_easy_pause, so it is never called on the caller's stack).
 * - Timeouts (each 0 = off): timeout_ms counts from the start; first_byte_timeout_ms
 *   until the first body byte; idle_timeout_ms between received bytes (head or body),
 *   counted from the start when there is no first-byte timeout, else from the first
 *   received byte; time spent paused does not count. Messages: "timeout (…)",
 *   "first byte timeout (…)", "idle timeout (…)", "connect timeout: …",
 *   "connect failed: … (Connection refused)", "resolve failed: …", "TLS: …".
 * - HTTP/2 is negotiated by ALPN over TLS only; PIPEWAIT (wait to multiplex on a
 *   connection being set up) is set for https:// URLs only. Connections are reused
 *   through the multi handle's cache. "Expect: 100-continue" is suppressed unless the
 *   caller sets an Expect header. Bodies are copied at start. */
#ifndef W2A_HTTP_CLIENT_H
#define W2A_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

typedef struct w2a_http_client w2a_http_client;
typedef struct w2a_http_call w2a_http_call;

typedef struct w2a_http_client_opts {
  const char *proxy;   /* explicit proxy URL, or NULL/"" to use the environment */
  const char *ca_file; /* NULL: system bundle */
  int insecure_tls;
  uint64_t connect_timeout_ms; /* default 10 s */
  int max_host_connections;    /* 0: unlimited */
} w2a_http_client_opts;

enum { W2A_HTTP_CONTINUE = 0, W2A_HTTP_PAUSE = 1, W2A_HTTP_ABORT = 2 };

typedef struct w2a_http_call_cbs {
  void (*on_status)(w2a_http_call *c, int status, const char *content_type, void *ud);
  int (*on_data)(w2a_http_call *c, const char *p, size_t n, void *ud);
  void (*on_done)(w2a_http_call *c, int code, const char *errmsg, void *ud);
  /* Optional: after the on_data calls that one socket event (or timer, or resume) led
   * to, before on_done. Where a consumer that buffers what on_data produced writes it:
   * once per event instead of once per on_data. A pause asked for here does not hold
   * back on_done when the whole body had already arrived. */
  void (*on_batch)(w2a_http_call *c, void *ud);
} w2a_http_call_cbs;

typedef struct w2a_http_request {
  const char *method; /* default POST when body != NULL, else GET */
  const char *url;
  const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
  const void *body;
  size_t body_len;
  uint64_t timeout_ms;            /* whole transfer; 0 = none */
  uint64_t idle_timeout_ms;       /* max silence between received bytes; 0 = none */
  uint64_t first_byte_timeout_ms; /* max wait for the first body byte; 0 = none */
} w2a_http_request;

/* libcurl's process-wide set-up (idempotent, thread-safe); w2a_http_client_new calls it,
 * and so must any other user of libcurl in the process (the CLI). */
void w2a_http_global_init(void);

int w2a_http_client_new(w2a_http_client **out, uv_loop_t *loop, const w2a_http_client_opts *o,
                        w2a_err *err);
/* Cancels running calls (no callbacks), then frees; `done` runs when handles closed. */
void w2a_http_client_close(w2a_http_client *c, void (*done)(void *ud), void *ud);
size_t w2a_http_client_active(const w2a_http_client *c);

w2a_http_call *w2a_http_client_start(w2a_http_client *c, const w2a_http_request *rq,
                                     const w2a_http_call_cbs *cbs, void *ud);
void w2a_http_call_pause(w2a_http_call *call);
void w2a_http_call_resume(w2a_http_call *call);
void w2a_http_call_cancel(w2a_http_call *call);
int w2a_http_call_status(const w2a_http_call *call);
/* "2" when the response came over HTTP/2, "1.1" otherwise (for logs and tests). */
const char *w2a_http_call_version(const w2a_http_call *call);

/* Convenience for small answers (tokens, GraphQL): buffers up to max_bytes of body. */
typedef void (*w2a_http_fetch_fn)(int code, int status, const char *body, size_t len,
                                  const char *errmsg, void *ud);
int w2a_http_fetch(w2a_http_client *c, const w2a_http_request *rq, size_t max_bytes,
                   w2a_http_fetch_fn fn, void *ud);

#endif
