/* test_http_server.c - the HTTP/1.1 server against raw blocking sockets and curl.
 *
 * Each test runs the server on a fresh loop on the main thread and a client function on
 * a second thread (blocking sockets, or curl through popen). Checks in the client thread
 * use t.h directly; what the loop thread observes is recorded in globals and checked
 * after the thread is joined. Every test ends with uv_loop_close() == 0, so a leaked
 * handle fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "common/util.h"
#include "http/server.h"
#include "t.h"

/* ------------------------------------------------------------------ loop-side state */

static uv_loop_t g_loop;
static w2a_http_server *g_srv;
static int g_port;
static uv_async_t g_done_async, g_cmd_async;
static volatile int g_server_freed;
static int g_aborts, g_drains, g_completed;
static uint64_t g_abort_us;
static size_t g_max_queued, g_flood_written;
static int g_congested_seen;

typedef struct ticker {
  uv_timer_t t;
  w2a_http_req *req;
  int n, i, per_tick;
  int ended;
} ticker;

static void ticker_closed(uv_handle_t *h) { free(h->data); }

static void ticker_finish(ticker *tk) {
  if (tk->ended) return;
  tk->ended = 1;
  uv_timer_stop(&tk->t);
  w2a_http_stream_end(tk->req);
  g_completed++;
  uv_close((uv_handle_t *)&tk->t, ticker_closed);
}

static void ticker_abort(w2a_http_req *r, void *ud) {
  ticker *tk = ud;
  g_aborts++;
  g_abort_us = w2a_mono_us();
  ticker_finish(tk);
}

static void ticker_tick(uv_timer_t *t) {
  ticker *tk = t->data;
  for (int k = 0; k < tk->per_tick && (tk->n < 0 || tk->i < tk->n); k++, tk->i++) {
    char line[64];
    int l = snprintf(line, sizeof line, "line %d\n", tk->i);
    if (w2a_http_stream_write(tk->req, line, (size_t)l) < 0) break;
  }
  if (tk->n >= 0 && tk->i >= tk->n) ticker_finish(tk);
}

typedef struct slow {
  uv_timer_t t;
  w2a_http_req *req;
} slow;

static void slow_fire(uv_timer_t *t) {
  slow *s = t->data;
  w2a_http_respond(s->req, 200, "text/plain", NULL, "slow", 4);
  g_completed++;
  uv_close((uv_handle_t *)&s->t, ticker_closed);
}

static void flood_write(w2a_http_req *r) {
  static char chunk[16384];
  memset(chunk, 'x', sizeof chunk);
  while (!w2a_http_stream_congested(r) && g_flood_written < (64u << 20)) {
    if (w2a_http_stream_write(r, chunk, sizeof chunk) < 0) return;
    g_flood_written += sizeof chunk;
  }
  if (w2a_http_stream_queued(r) > g_max_queued) g_max_queued = w2a_http_stream_queued(r);
  if (w2a_http_stream_congested(r)) g_congested_seen = 1;
}

static void flood_drain(w2a_http_req *r, void *ud) {
  g_drains++;
  static char tail[100000];
  memset(tail, 'y', sizeof tail);
  w2a_http_stream_write(r, tail, sizeof tail);
  g_flood_written += sizeof tail;
  w2a_http_stream_end(r);
  g_completed++;
}

static void flood_abort(w2a_http_req *r, void *ud) {
  g_aborts++;
  w2a_http_stream_end(r);
}

static void handler(w2a_http_req *r, void *ud) {
  char n[32];
  if (!strcmp(r->path, "/hello")) {
    w2a_http_respond(r, 200, "text/plain", "X-Test: yes\r\n", "hello", 5);
    g_completed++;
  } else if (!strcmp(r->path, "/echo")) {
    char extra[512];
    const char *ct = w2a_http_req_header(r, "content-type");
    char q[64] = "";
    w2a_http_req_query(r, "q", q, sizeof q);
    snprintf(extra, sizeof extra, "X-Method: %s\r\nX-CT: %s\r\nX-Q: %s\r\nX-Peer: %s\r\n",
             r->method, ct ? ct : "-", q, r->peer);
    w2a_http_respond(r, 200, "application/octet-stream", extra, r->body, r->body_len);
    g_completed++;
  } else if (!strcmp(r->path, "/stream")) {
    ticker *tk = calloc(1, sizeof *tk);
    tk->req = r;
    tk->n = w2a_http_req_query(r, "n", n, sizeof n) ? atoi(n) : -1;
    tk->per_tick = 50;
    uv_timer_init(&g_loop, &tk->t);
    tk->t.data = tk;
    w2a_http_req_on_abort(r, ticker_abort, tk);
    w2a_http_stream_start(r, 200, "text/event-stream", NULL);
    uv_timer_start(&tk->t, ticker_tick, 1, 1);
  } else if (!strcmp(r->path, "/slow")) {
    slow *s = calloc(1, sizeof *s);
    s->req = r;
    uv_timer_init(&g_loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, slow_fire, 100, 0);
  } else if (!strcmp(r->path, "/flood")) {
    w2a_http_req_on_drain(r, flood_drain, NULL);
    w2a_http_req_on_abort(r, flood_abort, NULL);
    w2a_http_stream_start(r, 200, "application/octet-stream", NULL);
    flood_write(r);
  } else {
    w2a_http_respond(r, 404, "text/plain", NULL, "nope", 4);
    g_completed++;
  }
}

static void on_server_freed(void *ud) { g_server_freed = 1; }

static void on_done_async(uv_handle_t *h) {}

static int g_shutdown_called;

static void done_cb(uv_async_t *a) {
  if (!g_server_freed) {
    if (!g_shutdown_called) w2a_http_server_shutdown(g_srv, on_server_freed, NULL);
    g_shutdown_called = 1;
    w2a_http_server_close_all(g_srv);
  }
  uv_close((uv_handle_t *)&g_done_async, on_done_async);
  uv_close((uv_handle_t *)&g_cmd_async, on_done_async);
}

static void cmd_cb(uv_async_t *a) {
  g_shutdown_called = 1;
  w2a_http_server_shutdown(g_srv, on_server_freed, NULL);
}

typedef void (*client_fn)(void);
static void *client_main(void *arg) {
  ((client_fn)arg)();
  uv_async_send(&g_done_async);
  return NULL;
}

static void run_with(const w2a_http_limits *lim, client_fn fn) {
  g_aborts = g_drains = g_completed = 0;
  g_server_freed = 0;
  g_shutdown_called = 0;
  g_max_queued = g_flood_written = 0;
  g_congested_seen = 0;
  T_EQ_INT(uv_loop_init(&g_loop), 0);
  w2a_err err = {0};
  int rc = w2a_http_server_listen(&g_srv, &g_loop, "127.0.0.1", 0, lim, handler, NULL, &err);
  T_EQ_INT(rc, 0);
  if (rc) return;
  g_port = w2a_http_server_port(g_srv);
  uv_async_init(&g_loop, &g_done_async, done_cb);
  uv_async_init(&g_loop, &g_cmd_async, cmd_cb);
  pthread_t th;
  pthread_create(&th, NULL, client_main, (void *)fn);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  pthread_join(th, NULL);
  T_CHECK(g_server_freed);
  T_EQ_INT(uv_loop_close(&g_loop), 0);
}

/* ------------------------------------------------------------------ client helpers */

static int tcp_connect_rcvbuf(int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int tcp_connect(void) { return tcp_connect_rcvbuf(0); }

static void send_str(int fd, const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
    if (k <= 0) return;
    s += k;
    n -= (size_t)k;
  }
}

typedef struct reader {
  int fd;
  char *buf;
  size_t len, cap;
  int eof;
} reader;

static void rd_init(reader *r, int fd) {
  r->fd = fd;
  r->cap = 1 << 20;
  r->buf = malloc(r->cap);
  r->len = 0;
  r->eof = 0;
}

static void rd_free(reader *r) { free(r->buf); }

static int rd_fill(reader *r) {
  if (r->eof) return 0;
  if (r->len == r->cap) {
    r->cap *= 2;
    r->buf = realloc(r->buf, r->cap);
  }
  ssize_t k = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
  if (k <= 0) {
    r->eof = 1;
    return 0;
  }
  r->len += (size_t)k;
  return 1;
}

static void rd_consume(reader *r, size_t n) {
  memmove(r->buf, r->buf + n, r->len - n);
  r->len -= n;
}

typedef struct resp {
  int status;
  char head[4096];
  char *body;
  size_t body_len;
} resp;

static const char *hdr_find(const char *head, const char *name) {
  const char *p = strcasestr(head, name);
  if (!p) return NULL;
  return p + strlen(name);
}

/* Read one response (skipping 1xx unless keep_1xx). 0 on success. */
static int rd_resp(reader *r, resp *o, int keep_1xx) {
  memset(o, 0, sizeof *o);
  for (;;) {
    char *e;
    while (!(e = memmem(r->buf, r->len, "\r\n\r\n", 4)))
      if (!rd_fill(r)) return -1;
    size_t hl = (size_t)(e - r->buf) + 4;
    size_t cl = hl < sizeof o->head ? hl : sizeof o->head - 1;
    memcpy(o->head, r->buf, cl);
    o->head[cl] = 0;
    rd_consume(r, hl);
    o->status = atoi(o->head + 9);
    if (o->status >= 200 || keep_1xx) break;
  }
  if (o->status < 200) return 0;
  const char *v;
  size_t cap = 1 << 16, len = 0;
  char *body = malloc(cap);
  if ((v = hdr_find(o->head, "\r\ncontent-length: "))) {
    size_t n = strtoul(v, NULL, 10);
    while (r->len < n)
      if (!rd_fill(r)) break;
    if (r->len < n) n = r->len;
    body = realloc(body, n + 1);
    memcpy(body, r->buf, n);
    len = n;
    rd_consume(r, n);
  } else if (hdr_find(o->head, "\r\ntransfer-encoding: chunked")) {
    for (;;) {
      char *crlf;
      while (!(crlf = memmem(r->buf, r->len, "\r\n", 2)))
        if (!rd_fill(r)) goto done;
      size_t n = strtoul(r->buf, NULL, 16);
      size_t pre = (size_t)(crlf - r->buf) + 2;
      while (r->len < pre + n + 2)
        if (!rd_fill(r)) goto done;
      if (len + n + 1 > cap) {
        while (len + n + 1 > cap)
          cap *= 2;
        body = realloc(body, cap);
      }
      memcpy(body + len, r->buf + pre, n);
      len += n;
      rd_consume(r, pre + n + 2);
      if (n == 0) break;
    }
  } else if (o->status != 204 && o->status != 304) { /* close-delimited */
    while (rd_fill(r)) {
    }
    body = realloc(body, r->len + 1);
    memcpy(body, r->buf, r->len);
    len = r->len;
    rd_consume(r, r->len);
  }
done:
  body = realloc(body, len + 1);
  body[len] = 0;
  o->body = body;
  o->body_len = len;
  return 0;
}

static void resp_free(resp *o) { free(o->body); }

/* 1 when the peer closed (recv returns 0 or an error) within the receive timeout. */
static int wait_closed(int fd) {
  char b[256];
  for (;;) {
    ssize_t k = recv(fd, b, sizeof b, 0);
    if (k == 0) return 1;
    if (k < 0) return errno == ECONNRESET;
  }
}

static void msleep(int ms) { usleep((useconds_t)ms * 1000); }

/* ------------------------------------------------------------------ tests */

static void c_get_post(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  resp o;
  send_str(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 200);
  T_EQ_STR(o.body, "hello");
  T_CHECK(strstr(o.head, "X-Test: yes\r\n") != NULL);
  T_CHECK(strstr(o.head, "Content-Type: text/plain\r\n") != NULL);
  resp_free(&o);
  /* second request on the same connection: keep-alive */
  send_str(fd, "POST /echo?q=a%20b+c HTTP/1.1\r\nHost: x\r\nContent-Type: app/x\r\n"
               "Content-Length: 11\r\n\r\nhello world");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 200);
  T_EQ_STR(o.body, "hello world");
  T_CHECK(strstr(o.head, "X-Method: POST\r\n") != NULL);
  T_CHECK(strstr(o.head, "X-CT: app/x\r\n") != NULL);
  T_CHECK(strstr(o.head, "X-Q: a b c\r\n") != NULL);
  T_CHECK(strstr(o.head, "X-Peer: 127.0.0.1:") != NULL);
  resp_free(&o);
  /* 404 then Connection: close */
  send_str(fd, "GET /missing HTTP/1.1\r\nConnection: close\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 404);
  T_CHECK(strstr(o.head, "Connection: close\r\n") != NULL);
  resp_free(&o);
  T_CHECK(wait_closed(fd));
  rd_free(&r);
  close(fd);
}

static void test_get_post_keepalive(void) {
  run_with(NULL, c_get_post);
  T_EQ_INT(g_completed, 3);
}

static void c_pipeline(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  resp o;
  /* three requests in one segment, the second slow, so the third waits in `pend` */
  send_str(fd, "GET /hello HTTP/1.1\r\n\r\nGET /slow HTTP/1.1\r\n\r\n"
               "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
               "GET /hello HTTP/1.1\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_STR(o.body, "hello");
  resp_free(&o);
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_STR(o.body, "slow");
  resp_free(&o);
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_STR(o.body, "abc");
  resp_free(&o);
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_STR(o.body, "hello");
  resp_free(&o);
  /* byte by byte */
  const char *req = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  for (const char *p = req; *p; p++) {
    send(fd, p, 1, MSG_NOSIGNAL);
    if ((p - req) % 7 == 0) msleep(1);
  }
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_STR(o.body, "hello world");
  resp_free(&o);
  rd_free(&r);
  close(fd);
}

static void test_pipelining_and_chunked(void) {
  run_with(NULL, c_pipeline);
  T_EQ_INT(g_completed, 5);
}

static void c_continue(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  resp o;
  send_str(fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 1), 0);
  T_EQ_INT(o.status, 100);
  send_str(fd, "12345");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 200);
  T_EQ_STR(o.body, "12345");
  resp_free(&o);
  /* over the cap: refused before the body is sent */
  send_str(fd, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 1), 0);
  T_EQ_INT(o.status, 413);
  T_CHECK(strstr(o.body, "\"error\"") != NULL);
  T_CHECK(strstr(o.head, "Connection: close") != NULL);
  resp_free(&o);
  T_CHECK(wait_closed(fd));
  rd_free(&r);
  close(fd);
}

static void c_limits(void) {
  reader r;
  resp o;
  /* 413 by Content-Length, body being sent anyway: the reply must survive (linger) */
  int fd = tcp_connect();
  rd_init(&r, fd);
  send_str(fd, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
  char big[5000];
  memset(big, 'a', sizeof big);
  send(fd, big, sizeof big, MSG_NOSIGNAL);
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 413);
  T_CHECK(strstr(o.body, "{\"error\":{\"message\":") == o.body);
  resp_free(&o);
  rd_free(&r);
  close(fd);
  /* 413 on a chunked body growing past the cap */
  fd = tcp_connect();
  rd_init(&r, fd);
  send_str(fd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; i < 20; i++) {
    send_str(fd, "100\r\n");
    send(fd, big, 256, MSG_NOSIGNAL);
    send_str(fd, "\r\n");
  }
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 413);
  resp_free(&o);
  rd_free(&r);
  close(fd);
  /* 431 */
  fd = tcp_connect();
  rd_init(&r, fd);
  send_str(fd, "GET /hello HTTP/1.1\r\nX-Big: ");
  send(fd, big, 2000, MSG_NOSIGNAL);
  send_str(fd, "\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 431);
  T_CHECK(strstr(o.body, "header") != NULL);
  resp_free(&o);
  T_CHECK(wait_closed(fd));
  rd_free(&r);
  close(fd);
  /* 400 on garbage */
  fd = tcp_connect();
  rd_init(&r, fd);
  send_str(fd, "\x01\x02 garbage\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 400);
  T_CHECK(strstr(o.head, "Content-Type: application/json") != NULL);
  resp_free(&o);
  T_CHECK(wait_closed(fd));
  rd_free(&r);
  close(fd);
}

static size_t custom_error(int status, const char *message, char *out, size_t n) {
  return (size_t)snprintf(out, n, "custom %d", status);
}

static void c_custom_error(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  resp o;
  send_str(fd, "NOT-HTTP\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_STR(o.body, "custom 400");
  resp_free(&o);
  rd_free(&r);
  close(fd);
}

static void test_continue_and_limits(void) {
  w2a_http_limits lim = {.max_header_bytes = 1024, .max_body_bytes = 1000};
  run_with(&lim, c_continue);
  run_with(&lim, c_limits);
  T_EQ_INT(g_completed, 0);
}

static void test_custom_error_fn(void) {
  /* the error fn must be set before the client starts, so this test listens itself */
  g_aborts = g_completed = 0;
  g_server_freed = 0;
  g_shutdown_called = 0;
  T_EQ_INT(uv_loop_init(&g_loop), 0);
  w2a_err err = {0};
  T_EQ_INT(w2a_http_server_listen(&g_srv, &g_loop, "127.0.0.1", 0, NULL, handler, NULL, &err), 0);
  w2a_http_server_set_error_fn(g_srv, custom_error);
  g_port = w2a_http_server_port(g_srv);
  uv_async_init(&g_loop, &g_done_async, done_cb);
  uv_async_init(&g_loop, &g_cmd_async, cmd_cb);
  pthread_t th;
  pthread_create(&th, NULL, client_main, (void *)c_custom_error);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  pthread_join(th, NULL);
  T_CHECK(g_server_freed);
  T_EQ_INT(uv_loop_close(&g_loop), 0);
}

static void c_stream(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  resp o;
  send_str(fd, "GET /stream?n=1000 HTTP/1.1\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 200);
  T_CHECK(strstr(o.head, "Transfer-Encoding: chunked") != NULL);
  int ok = 1, i = 0;
  for (char *p = o.body; *p; i++) {
    char want[32];
    int l = snprintf(want, sizeof want, "line %d\n", i);
    if (strncmp(p, want, (size_t)l)) {
      ok = 0;
      break;
    }
    p += l;
  }
  T_CHECK(ok);
  T_EQ_INT(i, 1000);
  resp_free(&o);
  /* the connection is reusable after a stream */
  send_str(fd, "GET /hello HTTP/1.1\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_STR(o.body, "hello");
  resp_free(&o);
  rd_free(&r);
  close(fd);
  /* HTTP/1.0: close-delimited */
  fd = tcp_connect();
  rd_init(&r, fd);
  send_str(fd, "GET /stream?n=100 HTTP/1.0\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_CHECK(strstr(o.head, "Transfer-Encoding") == NULL);
  T_CHECK(strstr(o.head, "Connection: close") != NULL);
  T_CHECK(strstr(o.body, "line 99\n") != NULL);
  resp_free(&o);
  rd_free(&r);
  close(fd);
}

static void test_streaming(void) {
  run_with(NULL, c_stream);
  T_EQ_INT(g_completed, 3);
  T_EQ_INT(g_aborts, 0);
}

static uint64_t g_client_close_us;

static void c_abort(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  send_str(fd, "GET /stream HTTP/1.1\r\n\r\n"); /* endless */
  while (r.len < 2000 && rd_fill(&r)) {
  }
  T_CHECK(r.len >= 2000);
  g_client_close_us = w2a_mono_us();
  close(fd);
  rd_free(&r);
  msleep(100);
  /* a reset (unread data + close → RST) is an abort too */
  fd = tcp_connect();
  rd_init(&r, fd);
  send_str(fd, "GET /stream HTTP/1.1\r\n\r\n");
  rd_fill(&r);
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  rd_free(&r);
  msleep(100);
}

static void test_abort_on_disconnect(void) {
  run_with(NULL, c_abort);
  T_EQ_INT(g_aborts, 2);
  T_EQ_INT(g_completed, 2);
  /* the first abort arrived within a few ms of the client's close */
  T_CHECK(g_abort_us > g_client_close_us);
}

static uint64_t g_first_abort_us;
static void c_abort_latency(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  send_str(fd, "GET /stream HTTP/1.1\r\n\r\n");
  while (r.len < 500 && rd_fill(&r)) {
  }
  g_client_close_us = w2a_mono_us();
  close(fd);
  rd_free(&r);
  msleep(100);
  g_first_abort_us = g_abort_us;
}

static void test_abort_latency(void) {
  run_with(NULL, c_abort_latency);
  T_EQ_INT(g_aborts, 1);
  uint64_t lat = g_first_abort_us - g_client_close_us;
  fprintf(stderr, "  on_abort %llu us after the client's close\n", (unsigned long long)lat);
  T_CHECK(g_first_abort_us > g_client_close_us && lat < 20000);
}

static void c_halfclose(void) {
  int fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  send_str(fd, "GET /slow HTTP/1.1\r\n\r\n");
  shutdown(fd, SHUT_WR);
  resp o;
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 200);
  T_EQ_STR(o.body, "slow");
  resp_free(&o);
  T_CHECK(wait_closed(fd));
  rd_free(&r);
  close(fd);
}

static void test_half_close(void) {
  run_with(NULL, c_halfclose);
  T_EQ_INT(g_completed, 1);
  T_EQ_INT(g_aborts, 0);
}

static size_t g_client_got;
static void c_backpressure(void) {
  int fd = tcp_connect_rcvbuf(16384);
  reader r;
  rd_init(&r, fd);
  send_str(fd, "GET /flood HTTP/1.1\r\n\r\n");
  msleep(300); /* do not read: kernel buffers fill, then the server's queue */
  resp o;
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 200);
  g_client_got = o.body_len;
  resp_free(&o);
  rd_free(&r);
  close(fd);
}

static void test_backpressure(void) {
  w2a_http_limits lim = {.max_queue_bytes = 65536};
  run_with(&lim, c_backpressure);
  T_CHECK(g_congested_seen);
  T_CHECK(g_max_queued > 65536);
  T_EQ_INT(g_drains, 1);
  T_EQ_INT(g_aborts, 0);
  T_EQ_INT(g_client_got, g_flood_written);
  fprintf(stderr, "  flood: %zu bytes, max queued %zu\n", g_flood_written, g_max_queued);
}

static void c_shutdown(void) {
  reader ra, rb;
  resp o;
  int a = tcp_connect(), b = tcp_connect();
  rd_init(&ra, a);
  rd_init(&rb, b);
  send_str(b, "GET /hello HTTP/1.1\r\n\r\n");
  T_EQ_INT(rd_resp(&rb, &o, 0), 0);
  resp_free(&o);
  send_str(a, "GET /slow HTTP/1.1\r\n\r\n");
  msleep(20);
  uv_async_send(&g_cmd_async); /* graceful shutdown with /slow in flight */
  msleep(20);
  T_CHECK(wait_closed(b)); /* idle keep-alive connection closed at once */
  T_EQ_INT(rd_resp(&ra, &o, 0), 0);
  T_EQ_STR(o.body, "slow");
  T_CHECK(strstr(o.head, "Connection: close") != NULL);
  resp_free(&o);
  T_CHECK(wait_closed(a));
  T_EQ_INT(tcp_connect(), -1); /* no longer listening */
  rd_free(&ra);
  rd_free(&rb);
  close(a);
  close(b);
}

static void test_graceful_shutdown(void) {
  run_with(NULL, c_shutdown);
  T_EQ_INT(g_completed, 2);
}

static void c_idle(void) {
  uint64_t t0 = w2a_mono_us();
  int fd = tcp_connect();
  T_CHECK(wait_closed(fd)); /* said nothing */
  uint64_t dt = (w2a_mono_us() - t0) / 1000;
  T_CHECK(dt >= 150 && dt < 1500);
  close(fd);
  /* idle after one request */
  fd = tcp_connect();
  reader r;
  rd_init(&r, fd);
  resp o;
  send_str(fd, "GET /hello HTTP/1.1\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  resp_free(&o);
  t0 = w2a_mono_us();
  T_CHECK(wait_closed(fd));
  dt = (w2a_mono_us() - t0) / 1000;
  T_CHECK(dt >= 150 && dt < 1500);
  rd_free(&r);
  close(fd);
  /* slowloris: a byte every 50 ms does not extend the header deadline */
  fd = tcp_connect();
  t0 = w2a_mono_us();
  send_str(fd, "GET /hello HTTP/1.1\r\n");
  int closed = 0;
  for (int i = 0; i < 40 && !closed; i++) {
    msleep(50);
    if (send(fd, "X", 1, MSG_NOSIGNAL) < 0) closed = 1;
    char bb[64];
    ssize_t k = recv(fd, bb, sizeof bb, MSG_DONTWAIT);
    if (k == 0 || (k < 0 && errno != EAGAIN)) closed = 1;
  }
  dt = (w2a_mono_us() - t0) / 1000;
  T_CHECK(closed);
  T_CHECK(dt < 1000);
  close(fd);
}

static void test_idle_timeout(void) {
  w2a_http_limits lim = {.idle_timeout_ms = 200};
  run_with(&lim, c_idle);
}

static void c_maxconn(void) {
  int a = tcp_connect(), b = tcp_connect();
  T_CHECK(a >= 0 && b >= 0);
  int c = tcp_connect(); /* accepted by the kernel, closed by the server */
  T_CHECK(c >= 0);
  if (c >= 0) {
    send_str(c, "GET /hello HTTP/1.1\r\n\r\n");
    T_CHECK(wait_closed(c));
    close(c);
  }
  reader r;
  rd_init(&r, a);
  resp o;
  send_str(a, "GET /hello HTTP/1.1\r\n\r\n");
  T_EQ_INT(rd_resp(&r, &o, 0), 0);
  T_EQ_INT(o.status, 200);
  resp_free(&o);
  rd_free(&r);
  close(a);
  close(b);
}

static void test_max_connections(void) {
  w2a_http_limits lim = {.max_connections = 2};
  run_with(&lim, c_maxconn);
}

static int run_cmd(const char *cmd, char *out, size_t n) {
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  size_t len = fread(out, 1, n - 1, f);
  out[len] = 0;
  return pclose(f);
}

static void c_curl(void) {
  char cmd[512], out[8192];
  snprintf(cmd, sizeof cmd,
           "curl -sv --max-time 5 http://127.0.0.1:%d/hello http://127.0.0.1:%d/hello 2>&1", g_port,
           g_port);
  T_EQ_INT(run_cmd(cmd, out, sizeof out), 0);
  T_CHECK(strstr(out, "Re-using existing connection") != NULL);
  char *h1 = strstr(out, "\nhello"), *h2 = h1 ? strstr(h1 + 1, "hello") : NULL;
  T_CHECK(h1 && h2);
  snprintf(cmd, sizeof cmd,
           "head -c 300000 /dev/zero | tr '\\0' 'z' | curl -s --max-time 5 -H 'Expect: "
           "100-continue' -H 'Content-Type: text/x' --data-binary @- "
           "http://127.0.0.1:%d/echo | wc -c",
           g_port);
  T_EQ_INT(run_cmd(cmd, out, sizeof out), 0);
  T_EQ_INT(atoi(out), 300000);
  snprintf(cmd, sizeof cmd, "curl -s --max-time 5 -N http://127.0.0.1:%d/stream?n=200 | tail -1",
           g_port);
  T_EQ_INT(run_cmd(cmd, out, sizeof out), 0);
  T_EQ_STR(out, "line 199\n");
  snprintf(cmd, sizeof cmd, "curl -s --max-time 5 -I http://127.0.0.1:%d/hello", g_port);
  T_EQ_INT(run_cmd(cmd, out, sizeof out), 0);
  T_CHECK(strstr(out, "Content-Length: 5") != NULL);
  snprintf(cmd, sizeof cmd, "curl -s --http1.0 --max-time 5 http://127.0.0.1:%d/hello", g_port);
  T_EQ_INT(run_cmd(cmd, out, sizeof out), 0);
  T_EQ_STR(out, "hello");
}

static void test_curl(void) {
  run_with(NULL, c_curl);
  T_EQ_INT(g_aborts, 0);
}

static void test_query_and_status(void) {
  w2a_http_req r = {0};
  char out[16];
  r.query = "a=1&bb=x%2Fy&c&d=long+value+here&bad=%zz";
  T_EQ_INT(w2a_http_req_query(&r, "a", out, sizeof out), 1);
  T_EQ_STR(out, "1");
  T_EQ_INT(w2a_http_req_query(&r, "bb", out, sizeof out), 1);
  T_EQ_STR(out, "x/y");
  T_EQ_INT(w2a_http_req_query(&r, "c", out, sizeof out), 1);
  T_EQ_STR(out, "");
  T_EQ_INT(w2a_http_req_query(&r, "d", out, 8), 1);
  T_EQ_STR(out, "long va");
  T_EQ_INT(w2a_http_req_query(&r, "bad", out, sizeof out), 1);
  T_EQ_STR(out, "%zz");
  T_EQ_INT(w2a_http_req_query(&r, "b", out, sizeof out), 0);
  T_EQ_STR(w2a_http_status_text(431), "Request Header Fields Too Large");
  T_EQ_STR(w2a_http_status_text(299), "OK");
  w2a_http_server *s = NULL;
  w2a_err err = {0};
  uv_loop_t loop;
  uv_loop_init(&loop);
  T_EQ_INT(w2a_http_server_listen(&s, &loop, "not-an-ip", 0, NULL, handler, NULL, &err),
           W2A_EINVAL);
  T_CHECK(strstr(err.msg, "not-an-ip") != NULL);
  /* port in use */
  w2a_http_server *s1 = NULL;
  T_EQ_INT(w2a_http_server_listen(&s1, &loop, "127.0.0.1", 0, NULL, handler, NULL, &err), 0);
  T_EQ_INT(w2a_http_server_listen(&s, &loop, "127.0.0.1", w2a_http_server_port(s1), NULL, handler,
                                  NULL, &err),
           W2A_EIO);
  T_CHECK(strstr(err.msg, "address already in use") != NULL);
  w2a_http_server_shutdown(s1, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  T_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  T_RUN(test_query_and_status);
  T_RUN(test_get_post_keepalive);
  T_RUN(test_pipelining_and_chunked);
  T_RUN(test_continue_and_limits);
  T_RUN(test_custom_error_fn);
  T_RUN(test_streaming);
  T_RUN(test_abort_on_disconnect);
  T_RUN(test_abort_latency);
  T_RUN(test_half_close);
  T_RUN(test_backpressure);
  T_RUN(test_graceful_shutdown);
  T_RUN(test_idle_timeout);
  T_RUN(test_max_connections);
  T_RUN(test_curl);
  return t_done();
}
