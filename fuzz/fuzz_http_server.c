/* fuzz_http_server.c - arbitrary bytes from a client, on a real loopback connection, into
 * the HTTP/1.1 server (src/http/server.c): the code every connection reaches before any
 * authentication. The server runs on its own libuv loop in this process with small
 * limits (so 413/431 and the lingering close are reached); each input is written on a
 * fresh connection, the client half-closes, and the loop runs until the server has
 * closed the connection.
 *
 * The handler answers by the path: "/stream…" streams the body back in three chunks,
 * "/abort…" drops the connection mid-response, anything else gets one whole response;
 * every request is checked (method and path present, header names lower-case, the body
 * NUL-terminated and within the cap) and completed exactly once.
 *
 * Checks, beyond "no crash, no leak, no UB":
 *   - every response starts with an HTTP/1.x status line;
 *   - the server closes the connection (it never hangs on any input: at most 3 s);
 *   - no connection and no request is left behind afterwards. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "http/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY 4096

static uv_loop_t loop;
static w2a_http_server *srv;
static int port;

static void handler(w2a_http_req *r, void *ud) {
  (void)ud;
  if (!r->method || !*r->method || !r->path || !r->query || !r->body) abort();
  if (r->body_len > MAX_BODY || r->body[r->body_len] != 0) abort();
  for (size_t i = 0; i < r->nheaders; i++)
    for (const char *p = r->headers[i].name; *p; p++)
      if (*p >= 'A' && *p <= 'Z') abort();
  char q[64];
  (void)w2a_http_req_query(r, "a", q, sizeof q);
  (void)w2a_http_req_header(r, "content-type");
  if (!strncmp(r->path, "/stream", 7)) {
    w2a_http_stream_start(r, 200, "text/event-stream", "X-Fuzz: 1\r\n");
    size_t third = r->body_len / 3;
    w2a_http_stream_write(r, r->body, third);
    w2a_http_stream_write(r, r->body + third, third);
    w2a_http_stream_write(r, r->body + 2 * third, r->body_len - 2 * third);
    w2a_http_stream_end(r);
  } else if (!strncmp(r->path, "/abort", 6)) {
    w2a_http_stream_start(r, 200, "text/plain", NULL);
    w2a_http_stream_write(r, "partial", 7);
    w2a_http_abort(r);
  } else {
    w2a_http_respond(r, r->body_len ? 200 : 204, "application/octet-stream", NULL, r->body,
                     r->body_len);
  }
}

static void setup(void) {
  w2a_err err;
  w2a_http_limits lim = {.max_header_bytes = 1024,
                         .max_body_bytes = MAX_BODY,
                         .max_queue_bytes = 1024,
                         .idle_timeout_ms = 2000,
                         .max_connections = 16};
  if (uv_loop_init(&loop) ||
      w2a_http_server_listen(&srv, &loop, "127.0.0.1", 0, &lim, handler, NULL, &err))
    abort();
  port = w2a_http_server_port(srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!srv) setup();
  if (size > 16384) return 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0) abort();
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS) abort();
  size_t sent = 0, got = 0;
  char head[16];
  int closed = 0, shut = 0;
  /* ~3 s at most: run the loop, write what the socket takes, read what came, then
   * wait (1 ms at most) for the client socket or the loop's epoll fd. */
  for (int i = 0; i < 3000 && !closed; i++) {
    uv_run(&loop, UV_RUN_NOWAIT);
    if (!shut) {
      ssize_t n = sent < size ? send(fd, data + sent, size - sent, MSG_NOSIGNAL) : 0;
      if (n > 0) sent += (size_t)n;
      if (sent == size || (n < 0 && errno != EAGAIN && errno != ENOTCONN)) {
        shutdown(fd, SHUT_WR);
        shut = 1;
      }
    }
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
      for (ssize_t k = 0; k < n && got < sizeof head; k++)
        head[got++] = buf[k];
    if (n == 0 || (n < 0 && errno != EAGAIN)) closed = 1;
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN | (shut ? 0 : POLLOUT)},
                          {.fd = uv_backend_fd(&loop), .events = POLLIN}};
    if (!closed) poll(p, 2, 1);
  }
  close(fd);
  if (!closed) abort(); /* the server kept the connection open: a hang */
  if (got && (got < 9 || memcmp(head, "HTTP/1.", 7) || (head[7] != '0' && head[7] != '1') ||
              head[8] != ' '))
    abort();
  /* The server side of the connection goes away within a few loop turns. */
  for (int i = 0; i < 3000 && w2a_http_server_connections(srv); i++) {
    struct pollfd p = {.fd = uv_backend_fd(&loop), .events = POLLIN};
    uv_run(&loop, UV_RUN_NOWAIT);
    if (w2a_http_server_connections(srv)) poll(&p, 1, 1);
  }
  if (w2a_http_server_connections(srv) || w2a_http_server_inflight(srv)) abort();
  return 0;
}
