/* server.h - an HTTP/1.1 server on libuv, parsing with http-parser (Debian's
 * libhttp-parser). It knows nothing of Warp or OpenAI: it hands complete requests to
 * one handler function and offers whole or streamed responses with back-pressure.
 *
 * Contract
 * - One request at a time per connection (pipelined requests wait; reading is paused
 *   while a request is in flight). Keep-alive per HTTP/1.1 rules. `Expect: 100-continue`
 *   is answered before the body is read (or refused with 413 when Content-Length is over
 *   the cap). Chunked request bodies are accepted.
 * - Limits: header bytes over max_header_bytes → 431; body over max_body_bytes → 413;
 *   malformed request → 400. These error replies are JSON bodies made by `error_fn`
 *   (default: OpenAI form {"error":{"message","type","param","code"}}), then close.
 * - The handler MUST complete every request exactly once, with w2a_http_respond() or
 *   w2a_http_stream_end(), even after the client went away: completion is what frees the
 *   request. Until then `req` stays valid. After an abort, writes return W2A_EIO.
 * - Streaming: w2a_http_stream_start() sends the head (chunked encoding for HTTP/1.1,
 *   close-delimited for HTTP/1.0), then stream_write()s are queued (copied) and flushed at
 *   once (TCP_NODELAY). When queued bytes exceed max_queue_bytes, stream_write still
 *   accepts the data but the caller should pause its producer; on_drain fires when the
 *   queue falls below half of max_queue_bytes.
 * - on_abort fires once when the client closes or resets the connection before the
 *   response completes (the caller cancels its upstream work there).
 * - All functions must be called on the loop thread.
 *
 * Details fixed by the implementation (server.c)
 * - Disconnects: ECONNRESET, a failed write, or EOF while a *streamed* response is under
 *   way abort the request (SSE clients never half-close). EOF before the response has
 *   started is taken as a half-close: the answer is still written (a write error then
 *   aborts) and the connection closed after it.
 * - on_abort runs from the socket's close callback in the same loop iteration as the
 *   event (typically < 1 ms), never nested inside a w2a_http_* call the handler made. It
 *   does not fire when the handler itself completed first (respond/stream_end/abort). If
 *   the handler registers it only after the abort happened it is not called: check
 *   w2a_http_req_aborted() when registering late.
 * - stream_write returns W2A_EIO once aborted, and W2A_ETOOBIG (client cut off, then
 *   on_abort) when the producer ignores congestion and the queue passes
 *   8 × max_queue_bytes. stream_end without any stream_start drops the connection.
 * - respond() after an abort returns W2A_EIO and still completes the request.
 * - Idle timeout: closes connections idle between requests, and requests whose head is
 *   not complete within idle_timeout_ms of the previous request (slowloris); while the
 *   body arrives each read extends it; no timeout while the handler owns the request.
 * - Error replies (400/413/431) close with a lingering close (FIN, then the peer's unread
 *   bytes are drained for up to 2 s) so the client reads the reply instead of a reset.
 * - HEAD requests get the head only; 1xx/204/304 get no Content-Length. Upgrade
 *   requests (h2c, websocket) are answered as plain HTTP/1.1.
 * - The request (method, path, query, headers, body) points into per-connection buffers
 *   that are reused for the next request: copy anything needed after completion. */
#ifndef W2A_HTTP_SERVER_H
#define W2A_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"

typedef struct w2a_http_server w2a_http_server;

typedef struct w2a_http_header {
  const char *name; /* lower-cased */
  const char *value;
} w2a_http_header;

typedef struct w2a_http_req w2a_http_req;
typedef void (*w2a_http_event_fn)(w2a_http_req *req, void *ud);

struct w2a_http_req {
  const char *method; /* "GET", "POST", … */
  const char *path;   /* raw path without the query, e.g. "/v1/chat/completions" */
  const char *query;  /* raw query string without '?', or "" */
  const w2a_http_header *headers;
  size_t nheaders;
  const char *body; /* NUL-terminated for convenience; body_len excludes the NUL */
  size_t body_len;
  int http_minor;    /* 0 or 1 */
  const char *peer;  /* "127.0.0.1:54321" */
  uint64_t start_us; /* monotonic time the request head arrived */
  void *user;        /* free for the handler */
};

typedef void (*w2a_http_handler_fn)(w2a_http_req *req, void *ud);
/* Build the body of a server-generated error reply (400/413/431/…) into out (cap n). */
typedef size_t (*w2a_http_error_fn)(int status, const char *message, char *out, size_t n);

typedef struct w2a_http_limits {
  size_t max_header_bytes;  /* default 64 KiB */
  size_t max_body_bytes;    /* default 32 MiB */
  size_t max_queue_bytes;   /* default 1 MiB, per response */
  uint64_t idle_timeout_ms; /* keep-alive idle / slow header timeout; default 60 s */
  int max_connections;      /* default 10000; beyond it new connections are closed */
} w2a_http_limits;

int w2a_http_server_listen(w2a_http_server **out, uv_loop_t *loop, const char *host, int port,
                           const w2a_http_limits *lim, w2a_http_handler_fn fn, void *ud,
                           w2a_err *err);
void w2a_http_server_set_error_fn(w2a_http_server *s, w2a_http_error_fn fn);
int w2a_http_server_port(const w2a_http_server *s); /* the bound port (useful with port 0) */
/* Stop accepting and close idle connections; in-flight requests finish. `done` runs
 * (on the loop) when the last connection is gone and the server is freed. */
void w2a_http_server_shutdown(w2a_http_server *s, void (*done)(void *ud), void *ud);
/* Abort every remaining connection now (after a grace period). */
void w2a_http_server_close_all(w2a_http_server *s);
/* Connections and in-flight requests, for /status pages and tests. */
size_t w2a_http_server_connections(const w2a_http_server *s);
size_t w2a_http_server_inflight(const w2a_http_server *s);

/* Header lookup by lower-case name; NULL when absent. */
const char *w2a_http_req_header(const w2a_http_req *r, const char *lname);
/* Query parameter (percent-decoded into out, cap n); returns 1 when present. */
int w2a_http_req_query(const w2a_http_req *r, const char *name, char *out, size_t n);

/* extra_headers: NULL or "Name: value\r\nName2: value\r\n". */
int w2a_http_respond(w2a_http_req *r, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t len);
int w2a_http_stream_start(w2a_http_req *r, int status, const char *content_type,
                          const char *extra_headers);
int w2a_http_stream_write(w2a_http_req *r, const void *data, size_t len);
size_t w2a_http_stream_queued(const w2a_http_req *r);
/* 1 while queued bytes exceed max_queue_bytes: pause the producer until on_drain. Past
 * 8 × max_queue_bytes stream_write fails with W2A_ETOOBIG and the client is cut off. */
int w2a_http_stream_congested(const w2a_http_req *r);
void w2a_http_stream_end(w2a_http_req *r);
/* Abandon the response: close the connection without finishing it (a fault to
 * simulate, or an upstream failure after the head was sent on a close-delimited body).
 * Also completes the request. */
void w2a_http_abort(w2a_http_req *r);
void w2a_http_req_on_abort(w2a_http_req *r, w2a_http_event_fn fn, void *ud);
void w2a_http_req_on_drain(w2a_http_req *r, w2a_http_event_fn fn, void *ud);
int w2a_http_req_aborted(const w2a_http_req *r);

const char *w2a_http_status_text(int status);

#endif
