/* server.c - HTTP/1.1 server on libuv + http-parser; see server.h for the contract.
 *
 * One `conn` per TCP connection owns two handles (the socket and one timer), the
 * http_parser, and every per-request buffer, all reused from request to request: the
 * request head (URL, header names and values, NUL-separated) goes into one growable
 * "head" arena addressed by offsets, the body into a capped w2a_buf. Reads land in one
 * 64 KiB buffer shared by the whole server (libuv calls alloc_cb and read_cb back to back
 * on the loop thread) and are parsed in place; only bytes that arrive while a request is
 * in flight (pipelining) are copied into the connection's `pend` buffer. So a keep-alive
 * request costs no allocation once the connection is warm, and a response that
 * uv_try_write() takes whole costs none either; only the unsent rest is copied into a
 * write request.
 *
 * The request (`conn.req`) is embedded in the connection, since there is at most one in
 * flight. Invariants:
 * - A conn is freed when both handles are closed AND no request is in flight
 *   (`conn_maybe_free`); the handler's completion may come long after the socket closed.
 * - Parsing is paused (http_parser_pause) from on_message_complete until the handler
 *   completes; the socket keeps being read meanwhile (so a disconnect is seen at once),
 *   and what arrives is kept in `pend` (reading stops past a cap).
 * - Every close goes through conn_close(); if a request is in flight and incomplete at
 *   that moment it is marked aborted (writes fail with W2A_EIO from then on) and on_abort
 *   fires from the socket's close callback, i.e. in the same loop iteration, never nested
 *   inside a call the handler made.
 * - One timer per connection serves the idle / slow-header timeout, the lingering close
 *   and "process pipelined bytes now"; it is re-armed lazily (a deadline field) so a
 *   keep-alive request does not touch libuv's timer heap.
 *
 * Peer half-close: EOF while a request is in flight and no streamed response has started
 * only marks `peer_eof` (the answer is still written, and the connection closed after);
 * a write error then aborts. EOF during a streamed response (SSE clients never half-close)
 * and ECONNRESET at any time abort at once. */
#include "server.h"

#include <assert.h>
#include <http_parser.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

#define READ_BUF_SIZE 65536
#define LINGER_MS 2000
#define QUEUE_HARD_FACTOR 8 /* queued > 8 × max_queue_bytes: the client is cut off */

typedef struct conn conn;

struct w2a_http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  w2a_http_limits lim;
  w2a_http_handler_fn fn;
  void *ud;
  w2a_http_error_fn error_fn;
  conn *conns; /* doubly linked list of live connections */
  size_t nconns, ninflight;
  int port;
  int shutting_down, listener_closed;
  void (*done)(void *ud);
  void *done_ud;
  char rbuf[READ_BUF_SIZE];
};

typedef struct hoff {
  uint32_t name, value;
} hoff;

typedef struct wreq {
  uv_write_t req;
  size_t len;
  char data[];
} wreq;

enum { CB_NONE, CB_FIELD, CB_VALUE };

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shut;
  http_parser parser;
  w2a_http_server *srv;
  conn *prev, *next;
  w2a_http_req req;

  /* request head arena: "url\0name\0value\0name\0value\0…" */
  char *head;
  size_t head_len, head_cap;
  size_t head_bytes; /* bytes counted against max_header_bytes */
  hoff *hoffs;
  size_t nh, hoffs_cap;
  w2a_http_header *hdrs;
  size_t hdrs_cap;
  int last_cb;
  w2a_buf body;

  /* bytes read while a request was in flight */
  char *pend;
  size_t pend_off, pend_len, pend_cap;

  size_t queued;     /* bytes handed to uv_write and not yet written */
  uint64_t deadline; /* loop ms; 0 = no timeout armed */
  int nhandles;
  int err_status;
  const char *err_msg;

  w2a_http_event_fn on_abort, on_drain;
  void *abort_ud, *drain_ud;

  unsigned inflight : 1;     /* dispatched, handler has not completed */
  unsigned headers_done : 1; /* current message is past its head */
  unsigned head_sent : 1;    /* response head written */
  unsigned streaming : 1;    /* stream_start() called */
  unsigned chunked : 1;      /* streamed body uses chunked encoding */
  unsigned is_head : 1;      /* HEAD request: no body bytes */
  unsigned aborted : 1;      /* client gone before the response completed */
  unsigned abort_fired : 1;
  unsigned keep_alive : 1;
  unsigned peer_eof : 1;
  unsigned closing : 1;      /* uv_close called */
  unsigned ending : 1;       /* graceful close: flush, shutdown, linger, close */
  unsigned lingering : 1;    /* shutdown done, draining the peer's bytes */
  unsigned in_feed : 1;      /* conn_feed on the stack */
  unsigned read_stopped : 1; /* reading paused because pend is full */
  unsigned drain_wanted : 1;
  unsigned process_later : 1; /* timer should parse `pend` */
  unsigned busy : 1;          /* a callback is running: do not free */
  unsigned shut_started : 1;

  char peer[64];
};

#define CONN_OF(r) ((conn *)((char *)(r)-offsetof(conn, req)))

static void conn_close(conn *c);
static void conn_end(conn *c);
static void conn_feed(conn *c, const char *data, size_t len);
static void conn_maybe_free(conn *c);
static void conn_read_start(conn *c);

/* ---------------------------------------------------------------- status texts */

const char *w2a_http_status_text(int status) {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocols";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 206: return "Partial Content";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 304: return "Not Modified";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default:
    return status < 200   ? "Informational"
           : status < 300 ? "OK"
           : status < 400 ? "Redirect"
           : status < 500 ? "Client Error"
                          : "Server Error";
  }
}

static size_t default_error_fn(int status, const char *message, char *out, size_t n) {
  const char *type = status >= 500 ? "server_error" : "invalid_request_error";
  int k = snprintf(
      out, n,
      "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":\"http_%d\"}}",
      message, type, status);
  if (k < 0) return 0;
  return (size_t)k < n ? (size_t)k : n - 1;
}

/* ---------------------------------------------------------------- helpers */

static int head_append(conn *c, const char *p, size_t n, int lower) {
  if (c->head_len + n + 1 > c->head_cap) {
    size_t ncap = c->head_cap ? c->head_cap : 1024;
    while (ncap < c->head_len + n + 1)
      ncap *= 2;
    char *q = realloc(c->head, ncap);
    if (!q) return W2A_ENOMEM;
    c->head = q;
    c->head_cap = ncap;
  }
  char *d = c->head + c->head_len;
  if (lower) {
    for (size_t i = 0; i < n; i++) {
      char ch = p[i];
      d[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
  } else if (n) {
    memcpy(d, p, n);
  }
  c->head_len += n;
  return 0;
}

static int head_nul(conn *c) {
  int rc = head_append(c, "", 0, 0);
  if (rc) return rc;
  c->head[c->head_len++] = 0;
  return 0;
}

/* Bytes of the request head count against max_header_bytes (URL, names, values). */
static int head_count(conn *c, size_t n) {
  c->head_bytes += n;
  if (c->head_bytes > c->srv->lim.max_header_bytes) {
    c->err_status = 431;
    c->err_msg = "request header fields too large";
    return -1;
  }
  return 0;
}

static int pend_append(conn *c, const char *p, size_t n) {
  if (c->pend_off && c->pend_off == c->pend_len) c->pend_off = c->pend_len = 0;
  if (c->pend_len + n > c->pend_cap) {
    if (c->pend_off) { /* compact first */
      memmove(c->pend, c->pend + c->pend_off, c->pend_len - c->pend_off);
      c->pend_len -= c->pend_off;
      c->pend_off = 0;
    }
    if (c->pend_len + n > c->pend_cap) {
      size_t ncap = c->pend_cap ? c->pend_cap : 4096;
      while (ncap < c->pend_len + n)
        ncap *= 2;
      char *q = realloc(c->pend, ncap);
      if (!q) return W2A_ENOMEM;
      c->pend = q;
      c->pend_cap = ncap;
    }
  }
  memcpy(c->pend + c->pend_len, p, n);
  c->pend_len += n;
  return 0;
}

static size_t pend_avail(const conn *c) { return c->pend_len - c->pend_off; }

static size_t pend_cap_limit(const conn *c) { return c->srv->lim.max_header_bytes + 65536; }

static void on_timer(uv_timer_t *t);

/* Arm the connection timer to fire `ms` from now, lazily: a timer already due earlier is
 * kept and its callback re-arms for the remainder. */
static void conn_arm(conn *c, uint64_t ms) {
  uint64_t now = uv_now(c->srv->loop);
  c->deadline = now + ms;
  if (c->closing) return;
  if (!uv_is_active((uv_handle_t *)&c->timer) || uv_timer_get_due_in(&c->timer) > ms)
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---------------------------------------------------------------- writing */

static void on_write(uv_write_t *w, int status) {
  wreq *wr = (wreq *)w;
  conn *c = w->data;
  c->queued -= wr->len;
  free(wr);
  if (c->closing) return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  w2a_http_server *s = c->srv;
  if (!c->inflight && c->deadline) conn_arm(c, s->lim.idle_timeout_ms); /* slow reader */
  if (c->drain_wanted && c->queued < s->lim.max_queue_bytes / 2) {
    c->drain_wanted = 0;
    if (c->inflight && !c->aborted && c->on_drain) {
      c->busy = 1;
      c->on_drain(&c->req, c->drain_ud);
      c->busy = 0;
      if (c->closing) {
        conn_maybe_free(c);
        return;
      }
    }
  }
  if (c->queued == 0 && c->ending && !c->lingering) conn_end(c);
}

/* Write bufs: as much as possible now with uv_try_write, the rest copied and queued. */
static int conn_send(conn *c, const uv_buf_t *bufs, unsigned nb) {
  if (c->closing || c->aborted) return W2A_EIO;
  size_t total = 0, done = 0;
  for (unsigned i = 0; i < nb; i++)
    total += bufs[i].len;
  if (total == 0) return 0;
  if (c->queued == 0) {
    int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
    if (r >= 0)
      done = (size_t)r;
    else if (r != UV_EAGAIN) {
      conn_close(c);
      return W2A_EIO;
    }
    if (done == total) return 0;
  }
  size_t rest = total - done;
  wreq *w = malloc(sizeof *w + rest);
  if (!w) {
    conn_close(c);
    return W2A_ENOMEM;
  }
  size_t skip = done, off = 0;
  for (unsigned i = 0; i < nb; i++) {
    size_t l = bufs[i].len;
    if (skip >= l) {
      skip -= l;
      continue;
    }
    memcpy(w->data + off, bufs[i].base + skip, l - skip);
    off += l - skip;
    skip = 0;
  }
  w->len = rest;
  w->req.data = c;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)rest);
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
    free(w);
    conn_close(c);
    return W2A_EIO;
  }
  c->queued += rest;
  if (c->queued > c->srv->lim.max_queue_bytes) c->drain_wanted = 1;
  return 0;
}

static char *utoa(char *end, uint64_t v) {
  *--end = 0;
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

enum { LEN_FIXED, LEN_CHUNKED, LEN_CLOSE, LEN_NONE };

/* Bounded appends for build_head: past the end only `over` is set. */
typedef struct headbuf {
  char *p, *end;
  int over;
} headbuf;

static void hput(headbuf *h, const char *s, size_t n) {
  if (h->over || (size_t)(h->end - h->p) <= n) { /* keep a byte for the NUL */
    h->over = 1;
    return;
  }
  memcpy(h->p, s, n);
  h->p += n;
}

#define HPUTL(h, lit) hput((h), (lit), sizeof(lit) - 1)
static void hputs(headbuf *h, const char *s) { hput(h, s, strlen(s)); }

/* The response head, NUL-terminated. Returns its length, or -1 when it does not fit in n
 * (the caller retries with a larger buffer). Built with memcpy rather than one snprintf:
 * this runs once per response on the loop thread and vfprintf's per-conversion cost was
 * most of it. */
static int build_head(conn *c, char *out, size_t n, int status, const char *ctype,
                      const char *extra, int lenmode, uint64_t clen) {
  char num[24];
  headbuf h = {out, out + n, 0};
  HPUTL(&h, "HTTP/1.1 ");
  if (status < 0) HPUTL(&h, "-");
  hputs(&h, utoa(num + sizeof num, status < 0 ? -(uint64_t)status : (uint64_t)status));
  HPUTL(&h, " ");
  hputs(&h, w2a_http_status_text(status));
  HPUTL(&h, "\r\n");
  if (ctype) {
    HPUTL(&h, "Content-Type: ");
    hputs(&h, ctype);
    HPUTL(&h, "\r\n");
  }
  if (lenmode == LEN_FIXED) {
    HPUTL(&h, "Content-Length: ");
    hputs(&h, utoa(num + sizeof num, clen));
    HPUTL(&h, "\r\n");
  } else if (lenmode == LEN_CHUNKED) {
    HPUTL(&h, "Transfer-Encoding: chunked\r\n");
  }
  if (!c->keep_alive)
    HPUTL(&h, "Connection: close\r\n");
  else if (c->req.http_minor == 0)
    HPUTL(&h, "Connection: keep-alive\r\n");
  if (extra) hputs(&h, extra);
  HPUTL(&h, "\r\n");
  if (h.over) return -1;
  *h.p = 0;
  return (int)(h.p - out);
}

/* ---------------------------------------------------------------- request lifecycle */

static void conn_reset_request(conn *c) {
  c->head_len = 0;
  c->head_bytes = 0;
  c->nh = 0;
  c->last_cb = CB_NONE;
  w2a_buf_reset(&c->body);
  c->headers_done = 0;
  c->err_status = 0;
  c->err_msg = NULL;
}

/* The handler is done with the request (respond, stream_end or abort). */
static void req_complete(conn *c) {
  w2a_http_server *s = c->srv;
  assert(c->inflight);
  c->inflight = 0;
  s->ninflight--;
  c->on_abort = c->on_drain = NULL;
  c->abort_ud = c->drain_ud = NULL;
  c->drain_wanted = 0;
  c->streaming = c->head_sent = 0;
  memset(&c->req, 0, sizeof c->req);
  if (c->body.cap > 262144) w2a_buf_free(&c->body); /* do not keep a huge body around */
  if (c->closing) {
    conn_maybe_free(c); /* may free c and the server */
    return;
  }
  if (!c->keep_alive || s->shutting_down || (c->peer_eof && pend_avail(c) == 0)) {
    conn_end(c);
    return;
  }
  conn_arm(c, s->lim.idle_timeout_ms);
  if (c->read_stopped && !c->peer_eof) {
    c->read_stopped = 0;
    conn_read_start(c);
  }
  if (pend_avail(c) && !c->in_feed) {
    /* Pipelined bytes: parse them on the next loop turn, not inside the handler's call. */
    c->process_later = 1;
    conn_arm(c, 0);
  }
}

static void dispatch(conn *c) {
  w2a_http_server *s = c->srv;
  http_parser *p = &c->parser;
  w2a_http_req *r = &c->req;
  memset(r, 0, sizeof *r);
  if (c->hdrs_cap < c->nh) {
    size_t ncap = c->hdrs_cap ? c->hdrs_cap : 16;
    while (ncap < c->nh)
      ncap *= 2;
    w2a_http_header *h = realloc(c->hdrs, ncap * sizeof *h);
    if (!h) {
      c->err_status = 500;
      conn_close(c);
      return;
    }
    c->hdrs = h;
    c->hdrs_cap = ncap;
  }
  for (size_t i = 0; i < c->nh; i++) {
    c->hdrs[i].name = c->head + c->hoffs[i].name;
    c->hdrs[i].value = c->head + c->hoffs[i].value;
  }
  char *url = c->head;
  char *q = strchr(url, '?');
  r->query = "";
  if (q) {
    *q = 0;
    r->query = q + 1;
    char *frag = strchr(q + 1, '#');
    if (frag) *frag = 0;
  } else {
    char *frag = strchr(url, '#');
    if (frag) *frag = 0;
  }
  r->method = http_method_str((enum http_method)p->method);
  r->path = url;
  r->headers = c->hdrs;
  r->nheaders = c->nh;
  r->body = c->body.data ? c->body.data : "";
  r->body_len = c->body.len;
  r->http_minor = p->http_major == 1 && p->http_minor >= 1 ? 1 : 0;
  r->peer = c->peer;
  r->start_us = w2a_mono_us();
  c->is_head = p->method == HTTP_HEAD;
  c->aborted = c->abort_fired = 0;
  c->head_sent = c->streaming = c->chunked = 0;
  c->inflight = 1;
  s->ninflight++;
  c->deadline = 0; /* the handler owns the clock now */
  s->fn(r, s->ud);
}

/* ---------------------------------------------------------------- parser callbacks */

static int on_message_begin(http_parser *p) {
  conn *c = p->data;
  conn_reset_request(c);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  if (head_count(c, n)) return -1;
  return head_append(c, at, n, 0) ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  if (head_count(c, n)) return -1;
  if (c->headers_done) return 0; /* chunked trailers: counted, dropped */
  if (c->last_cb != CB_FIELD) {
    if (head_nul(c)) return -1; /* ends the URL or the previous value */
    if (c->nh == c->hoffs_cap) {
      size_t ncap = c->hoffs_cap ? c->hoffs_cap * 2 : 16;
      hoff *h = realloc(c->hoffs, ncap * sizeof *h);
      if (!h) return -1;
      c->hoffs = h;
      c->hoffs_cap = ncap;
    }
    c->hoffs[c->nh].name = (uint32_t)c->head_len;
    c->hoffs[c->nh].value = 0;
    c->nh++;
    c->last_cb = CB_FIELD;
  }
  return head_append(c, at, n, 1) ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  if (head_count(c, n)) return -1;
  if (c->headers_done) return 0;
  if (c->last_cb != CB_VALUE) {
    if (head_nul(c)) return -1;
    c->hoffs[c->nh - 1].value = (uint32_t)c->head_len;
    c->last_cb = CB_VALUE;
  }
  return head_append(c, at, n, 0) ? -1 : 0;
}

static int ieq(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

static int on_headers_complete(http_parser *p) {
  conn *c = p->data;
  w2a_http_server *s = c->srv;
  if (c->last_cb == CB_FIELD) { /* a name without a value */
    if (head_nul(c)) return -1;
    c->hoffs[c->nh - 1].value = (uint32_t)c->head_len;
  }
  if (head_nul(c)) return -1;
  /* trim trailing blanks of values; a header with an empty value points at a NUL */
  for (size_t i = 0; i < c->nh; i++) {
    char *v = c->head + c->hoffs[i].value;
    size_t l = strlen(v);
    while (l && (v[l - 1] == ' ' || v[l - 1] == '\t'))
      v[--l] = 0;
  }
  c->headers_done = 1;
  p->upgrade = 0; /* no protocol switching: an Upgrade request is answered as plain HTTP */
  if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
      p->content_length > s->lim.max_body_bytes) {
    c->err_status = 413;
    c->err_msg = "request body too large";
    return -1;
  }
  if (p->http_major == 1 && p->http_minor >= 1) {
    for (size_t i = 0; i < c->nh; i++) {
      if (!strcmp(c->head + c->hoffs[i].name, "expect") &&
          ieq(c->head + c->hoffs[i].value, "100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof cont - 1);
        conn_send(c, &b, 1);
        break;
      }
    }
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  conn *c = p->data;
  int rc = w2a_buf_append(&c->body, at, n);
  if (rc == W2A_ETOOBIG) {
    c->err_status = 413;
    c->err_msg = "request body too large";
  }
  return rc ? -1 : 0;
}

static int on_message_complete(http_parser *p) {
  conn *c = p->data;
  c->keep_alive = http_should_keep_alive(p) ? 1 : 0;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---------------------------------------------------------------- errors, close */

static void send_error(conn *c, int status, const char *msg) {
  w2a_http_server *s = c->srv;
  char body[512], head[256];
  size_t blen = (s->error_fn ? s->error_fn : default_error_fn)(status, msg, body, sizeof body);
  if (blen >= sizeof body) blen = sizeof body - 1;
  c->keep_alive = 0;
  memset(&c->req, 0, sizeof c->req);
  c->req.http_minor = 1;
  int hl = build_head(c, head, sizeof head, status, "application/json", NULL, LEN_FIXED, blen);
  if (hl > 0) {
    uv_buf_t b[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init(body, (unsigned)blen)};
    conn_send(c, b, 2);
  }
  conn_end(c);
}

static void on_close(uv_handle_t *h) {
  conn *c = h->data;
  c->nhandles--;
  if (h == (uv_handle_t *)&c->tcp && c->inflight && c->aborted && !c->abort_fired) {
    c->abort_fired = 1;
    if (c->on_abort) {
      c->busy = 1;
      c->on_abort(&c->req, c->abort_ud);
      c->busy = 0;
    }
  }
  conn_maybe_free(c);
}

static void server_maybe_free(w2a_http_server *s) {
  if (!s->shutting_down || !s->listener_closed || s->nconns) return;
  void (*done)(void *) = s->done;
  void *ud = s->done_ud;
  free(s);
  if (done) done(ud);
}

static void conn_maybe_free(conn *c) {
  if (c->nhandles || c->inflight || c->busy) return;
  w2a_http_server *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->nconns--;
  free(c->head);
  free(c->hoffs);
  free(c->hdrs);
  free(c->pend);
  w2a_buf_free(&c->body);
  free(c);
  server_maybe_free(s);
}

/* Close now. An incomplete in-flight response becomes aborted; on_abort fires from the
 * socket's close callback. */
static void conn_close(conn *c) {
  if (c->closing) return;
  c->closing = 1;
  if (c->inflight) c->aborted = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  uv_close((uv_handle_t *)&c->tcp, on_close);
  uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_shutdown(uv_shutdown_t *sh, int status) {
  conn *c = sh->data;
  if (c->closing) return;
  if (status < 0 || c->peer_eof) {
    conn_close(c);
    return;
  }
  /* Lingering close: keep reading (and dropping) until the peer's FIN, so unread request
   * bytes do not make our kernel answer with RST and destroy the reply in flight. */
  c->lingering = 1;
  uint64_t t = c->srv->lim.idle_timeout_ms < LINGER_MS ? c->srv->lim.idle_timeout_ms : LINGER_MS;
  conn_arm(c, t);
}

/* Graceful close: flush what is queued, send FIN, linger, close. */
static void conn_end(conn *c) {
  if (c->closing) return;
  c->ending = 1;
  if (!c->inflight) conn_arm(c, c->srv->lim.idle_timeout_ms); /* a peer that never reads */
  if (c->queued) return; /* on_write calls us again when the queue is empty */
  if (c->shut_started) return;
  c->shut_started = 1;
  c->shut.data = c;
  if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    conn_close(c);
    return;
  }
  if (c->read_stopped && !c->peer_eof) {
    c->read_stopped = 0;
    conn_read_start(c);
  }
}

static void on_timer(uv_timer_t *t) {
  conn *c = t->data;
  if (c->closing) return;
  if (c->process_later) {
    c->process_later = 0;
    if (!c->inflight && !c->ending) conn_feed(c, NULL, 0);
    if (c->closing) return;
  }
  if (!c->deadline) return;
  uint64_t now = uv_now(c->srv->loop);
  if (now < c->deadline) {
    uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
    return;
  }
  if (c->inflight) return;
  conn_close(c); /* idle keep-alive, slow request, or linger over */
}

/* ---------------------------------------------------------------- reading */

/* Parse pend then data (data is the shared read buffer: what is not parsed is copied to
 * pend). Dispatches each complete request; loops while the handler completes at once. */
static void conn_feed(conn *c, const char *data, size_t len) {
  if (c->in_feed) {
    if (len && pend_append(c, data, len)) conn_close(c);
    return;
  }
  c->in_feed = 1;
  if (len && pend_avail(c)) { /* keep byte order: new bytes go behind pending ones */
    if (pend_append(c, data, len)) {
      conn_close(c);
      goto out;
    }
    len = 0;
  }
  while (!c->inflight && !c->closing && !c->ending) {
    const char *p;
    size_t n;
    int from_pend = pend_avail(c) > 0;
    if (from_pend) {
      p = c->pend + c->pend_off;
      n = pend_avail(c);
    } else if (len) {
      p = data;
      n = len;
    } else {
      break;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) http_parser_pause(&c->parser, 0);
    size_t used = http_parser_execute(&c->parser, &parser_settings, p, n);
    if (from_pend)
      c->pend_off += used;
    else {
      data += used;
      len -= used;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
      if (c->closing) break;
      c->busy = 1;
      dispatch(c);
      c->busy = 0;
      continue;
    }
    if (e != HPE_OK) {
      int st = c->err_status ? c->err_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
      const char *msg = c->err_msg  ? c->err_msg
                        : st == 431 ? "request header fields too large"
                                    : http_errno_description(e);
      send_error(c, st, msg);
      break;
    }
  }
  if (len && !c->closing && !c->ending && pend_append(c, data, len)) conn_close(c);
  if (pend_avail(c) == 0) c->pend_off = c->pend_len = 0;
  if (!c->closing && c->inflight && pend_avail(c) > pend_cap_limit(c) && !c->read_stopped) {
    c->read_stopped = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
  }
  if (!c->closing && !c->inflight && c->peer_eof && !c->ending) conn_end(c);
out:
  c->in_feed = 0;
  conn_maybe_free(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  conn *c = h->data;
  buf->base = c->srv->rbuf;
  buf->len = sizeof c->srv->rbuf;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  conn *c = st->data;
  if (c->closing) return;
  if (nread > 0) {
    if (c->lingering || c->ending) return; /* drop */
    if (c->inflight) {
      if (pend_append(c, buf->base, (size_t)nread)) {
        conn_close(c);
        return;
      }
      if (pend_avail(c) > pend_cap_limit(c)) {
        c->read_stopped = 1;
        uv_read_stop(st);
      }
      return;
    }
    if (c->headers_done) conn_arm(c, c->srv->lim.idle_timeout_ms); /* body progress */
    conn_feed(c, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0) return;
  if (nread != UV_EOF || c->lingering) {
    conn_close(c);
    return;
  }
  c->peer_eof = 1;
  uv_read_stop(st);
  if (c->inflight) {
    if (c->streaming) conn_close(c); /* an SSE client went away */
    return;                          /* half-close: the answer is still written */
  }
  if (c->ending) return; /* on_shutdown sees peer_eof and closes */
  if (c->queued == 0)
    conn_close(c); /* nothing left to say (a partial request is dropped) */
  else
    conn_end(c); /* flush the last answer first */
}

static void conn_read_start(conn *c) { uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read); }

/* ---------------------------------------------------------------- accepting */

static void on_reject_close(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *l, int status) {
  w2a_http_server *s = l->data;
  if (status < 0) {
    W2A_WARN("http: accept: %s", uv_strerror(status));
    return;
  }
  if (s->shutting_down || s->nconns >= (size_t)s->lim.max_connections) {
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t) return;
    uv_tcp_init(s->loop, t);
    if (uv_accept(l, (uv_stream_t *)t) == 0)
      uv_tcp_close_reset(t, on_reject_close);
    else
      uv_close((uv_handle_t *)t, on_reject_close);
    return;
  }
  conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  uv_tcp_init(s->loop, &c->tcp);
  c->tcp.data = c;
  c->nhandles = 1;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, on_reject_close);
    return;
  }
  uv_timer_init(s->loop, &c->timer);
  c->timer.data = c;
  c->nhandles = 2;
  uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  c->peer[0] = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    char ip[INET6_ADDRSTRLEN];
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      uv_ip4_name(a, ip, sizeof ip);
      snprintf(c->peer, sizeof c->peer, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      uv_ip6_name(a, ip, sizeof ip);
      snprintf(c->peer, sizeof c->peer, "[%s]:%d", ip, ntohs(a->sin6_port));
    }
  }
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  w2a_buf_init(&c->body, s->lim.max_body_bytes);
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  conn_arm(c, s->lim.idle_timeout_ms);
  conn_read_start(c);
}

/* ---------------------------------------------------------------- server API */

static void on_listen_fail_close(uv_handle_t *h) { free(h->data); }

int w2a_http_server_listen(w2a_http_server **out, uv_loop_t *loop, const char *host, int port,
                           const w2a_http_limits *lim, w2a_http_handler_fn fn, void *ud,
                           w2a_err *err) {
  *out = NULL;
  struct sockaddr_storage ss;
  int rc;
  if (!host || !*host || !strcmp(host, "localhost")) host = "127.0.0.1";
  if (strchr(host, ':'))
    rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
  else
    rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
  if (rc)
    return w2a_errf(err, W2A_EINVAL, "listen: bad address %s (an IP literal is needed)", host);
  /* rbuf (64 KiB, the last member) is always written before it is read: zeroing it would
   * only make its pages resident at start (about 100 kB of idle RSS for two servers) */
  w2a_http_server *s = malloc(sizeof *s);
  if (s) memset(s, 0, offsetof(w2a_http_server, rbuf));
  if (!s) return w2a_errf(err, W2A_ENOMEM, "listen: out of memory");
  s->loop = loop;
  s->fn = fn;
  s->ud = ud;
  s->lim.max_header_bytes = 64 * 1024;
  s->lim.max_body_bytes = 32 * 1024 * 1024;
  s->lim.max_queue_bytes = 1024 * 1024;
  s->lim.idle_timeout_ms = 60000;
  s->lim.max_connections = 10000;
  if (lim) {
    if (lim->max_header_bytes) s->lim.max_header_bytes = lim->max_header_bytes;
    if (lim->max_body_bytes) s->lim.max_body_bytes = lim->max_body_bytes;
    if (lim->max_queue_bytes) s->lim.max_queue_bytes = lim->max_queue_bytes;
    if (lim->idle_timeout_ms) s->lim.idle_timeout_ms = lim->idle_timeout_ms;
    if (lim->max_connections > 0) s->lim.max_connections = lim->max_connections;
  }
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
  if (rc) {
    w2a_errf(err, W2A_EIO, "listen on %s:%d: %s", host, port, uv_strerror(rc));
    uv_close((uv_handle_t *)&s->listener, on_listen_fail_close);
    return W2A_EIO;
  }
  int sl = sizeof ss;
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl);
  s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
  *out = s;
  return 0;
}

void w2a_http_server_set_error_fn(w2a_http_server *s, w2a_http_error_fn fn) { s->error_fn = fn; }

int w2a_http_server_port(const w2a_http_server *s) { return s->port; }

static void on_listener_close(uv_handle_t *h) {
  w2a_http_server *s = h->data;
  s->listener_closed = 1;
  server_maybe_free(s);
}

void w2a_http_server_shutdown(w2a_http_server *s, void (*done)(void *ud), void *ud) {
  if (s->shutting_down) return;
  s->shutting_down = 1;
  s->done = done;
  s->done_ud = ud;
  for (conn *c = s->conns; c; c = c->next) {
    if (c->closing || c->inflight) continue; /* in-flight ones close after completing */
    if (c->queued)
      conn_end(c);
    else
      conn_close(c);
  }
  uv_close((uv_handle_t *)&s->listener, on_listener_close);
}

void w2a_http_server_close_all(w2a_http_server *s) {
  for (conn *c = s->conns; c; c = c->next)
    conn_close(c);
}

size_t w2a_http_server_connections(const w2a_http_server *s) { return s->nconns; }
size_t w2a_http_server_inflight(const w2a_http_server *s) { return s->ninflight; }

/* ---------------------------------------------------------------- request API */

const char *w2a_http_req_header(const w2a_http_req *r, const char *lname) {
  for (size_t i = 0; i < r->nheaders; i++)
    if (!strcmp(r->headers[i].name, lname)) return r->headers[i].value;
  return NULL;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

int w2a_http_req_query(const w2a_http_req *r, const char *name, char *out, size_t n) {
  const char *q = r->query ? r->query : "";
  size_t nl = strlen(name);
  while (*q) {
    const char *amp = strchr(q, '&');
    const char *end = amp ? amp : q + strlen(q);
    const char *eq = memchr(q, '=', (size_t)(end - q));
    const char *kend = eq ? eq : end;
    if ((size_t)(kend - q) == nl && !memcmp(q, name, nl)) {
      size_t o = 0;
      const char *v = eq ? eq + 1 : end;
      while (v < end && n && o + 1 < n) {
        int h1, h2;
        if (*v == '%' && end - v >= 3 && (h1 = hexval(v[1])) >= 0 && (h2 = hexval(v[2])) >= 0) {
          out[o++] = (char)(h1 * 16 + h2);
          v += 3;
        } else {
          out[o++] = *v == '+' ? ' ' : *v;
          v++;
        }
      }
      if (n) out[o] = 0;
      return 1;
    }
    q = amp ? amp + 1 : end;
  }
  if (n) out[0] = 0;
  return 0;
}

int w2a_http_respond(w2a_http_req *r, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t len) {
  conn *c = CONN_OF(r);
  if (!c->inflight || c->head_sent) return W2A_ESTATE;
  int rc = 0;
  if (c->aborted || c->closing) {
    rc = W2A_EIO;
    goto out;
  }
  if (c->srv->shutting_down) c->keep_alive = 0;
  int bodyless = status == 204 || status == 304 || status < 200;
  char small[1024], *head = small;
  int hl = build_head(c, small, sizeof small, status, content_type, extra_headers,
                      bodyless ? LEN_NONE : LEN_FIXED, len);
  if (hl == -1) {
    size_t need = sizeof small + (extra_headers ? strlen(extra_headers) : 0) +
                  (content_type ? strlen(content_type) : 0);
    head = malloc(need);
    if (!head) {
      rc = W2A_ENOMEM;
      conn_close(c);
      goto out;
    }
    hl = build_head(c, head, need, status, content_type, extra_headers,
                    bodyless ? LEN_NONE : LEN_FIXED, len);
  }
  if (hl < 0) {
    rc = W2A_EINVAL;
    conn_close(c);
  } else {
    uv_buf_t b[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)body, (unsigned)len)};
    rc = conn_send(c, b, (bodyless || c->is_head || !len) ? 1 : 2);
  }
  if (head != small) free(head);
out:
  c->head_sent = 1;
  req_complete(c); /* may free c */
  return rc;
}

int w2a_http_stream_start(w2a_http_req *r, int status, const char *content_type,
                          const char *extra_headers) {
  conn *c = CONN_OF(r);
  if (!c->inflight || c->head_sent) return W2A_ESTATE;
  c->head_sent = 1;
  c->streaming = 1;
  if (c->aborted || c->closing) return W2A_EIO;
  if (c->srv->shutting_down) c->keep_alive = 0;
  c->chunked = r->http_minor >= 1;
  if (!c->chunked) c->keep_alive = 0;
  char small[1024], *head = small;
  int mode = c->chunked ? LEN_CHUNKED : LEN_CLOSE;
  int hl = build_head(c, small, sizeof small, status, content_type, extra_headers, mode, 0);
  if (hl == -1) {
    size_t need = sizeof small + (extra_headers ? strlen(extra_headers) : 0) +
                  (content_type ? strlen(content_type) : 0);
    head = malloc(need);
    if (!head) {
      conn_close(c);
      return W2A_ENOMEM;
    }
    hl = build_head(c, head, need, status, content_type, extra_headers, mode, 0);
  }
  int rc;
  if (hl < 0) {
    conn_close(c);
    rc = W2A_EINVAL;
  } else {
    uv_buf_t b = uv_buf_init(head, (unsigned)hl);
    rc = conn_send(c, &b, 1);
  }
  if (head != small) free(head);
  return rc;
}

int w2a_http_stream_write(w2a_http_req *r, const void *data, size_t len) {
  conn *c = CONN_OF(r);
  if (!c->inflight || !c->streaming) return W2A_ESTATE;
  if (c->aborted || c->closing) return W2A_EIO;
  if (!len || c->is_head) return 0;
  if (c->queued > QUEUE_HARD_FACTOR * c->srv->lim.max_queue_bytes) {
    conn_close(c); /* a client that does not read while the producer ignores drain */
    return W2A_ETOOBIG;
  }
  if (!c->chunked) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return conn_send(c, &b, 1);
  }
  char pre[24];
  int pl = snprintf(pre, sizeof pre, "%zx\r\n", len);
  uv_buf_t b[3] = {uv_buf_init(pre, (unsigned)pl), uv_buf_init((char *)data, (unsigned)len),
                   uv_buf_init("\r\n", 2)};
  return conn_send(c, b, 3);
}

size_t w2a_http_stream_queued(const w2a_http_req *r) { return CONN_OF(r)->queued; }

int w2a_http_stream_congested(const w2a_http_req *r) {
  const conn *c = CONN_OF(r);
  return c->queued > c->srv->lim.max_queue_bytes;
}

void w2a_http_stream_end(w2a_http_req *r) {
  conn *c = CONN_OF(r);
  if (!c->inflight) return;
  if (!c->head_sent && !c->aborted && !c->closing) {
    /* ended without any response: nothing sensible to send, drop the connection */
    c->keep_alive = 0;
    conn_close(c);
  } else if (c->streaming && !c->aborted && !c->closing) {
    if (c->chunked && !c->is_head) {
      uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
      conn_send(c, &b, 1);
    }
  }
  req_complete(c); /* may free c */
}

void w2a_http_abort(w2a_http_req *r) {
  conn *c = CONN_OF(r);
  if (!c->inflight) return;
  c->keep_alive = 0;
  c->abort_fired = 1; /* the handler knows; no on_abort */
  if (!c->closing) {
    c->closing = 1;
    c->aborted = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_tcp_close_reset(&c->tcp, on_close) < 0) uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
  }
  req_complete(c);
}

void w2a_http_req_on_abort(w2a_http_req *r, w2a_http_event_fn fn, void *ud) {
  conn *c = CONN_OF(r);
  c->on_abort = fn;
  c->abort_ud = ud;
}

void w2a_http_req_on_drain(w2a_http_req *r, w2a_http_event_fn fn, void *ud) {
  conn *c = CONN_OF(r);
  c->on_drain = fn;
  c->drain_ud = ud;
}

int w2a_http_req_aborted(const w2a_http_req *r) { return CONN_OF(r)->aborted; }
