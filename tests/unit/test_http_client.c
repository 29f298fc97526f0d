/* test_http_client.c - the libcurl-on-libuv client against our own server on one loop.
 *
 * Each test makes a loop, a server (src/http/server.c) with a few routes, and a client;
 * calls run until every expected callback arrived, then both are closed and
 * uv_loop_close() must return 0 (no leaked handle). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "http/client.h"
#include "http/server.h"
#include "t.h"

static uv_loop_t g_loop;
static w2a_http_server *g_srv;
static w2a_http_client *g_cli;
static char g_base[64];
static int g_srv_aborts, g_closed;

/* ------------------------------------------------------------------ server side */

typedef struct ticker {
  uv_timer_t t;
  w2a_http_req *req;
  int n, i;
  int ended;
} ticker;

static void free_data(uv_handle_t *h) { free(h->data); }

static void ticker_finish(ticker *tk) {
  if (tk->ended) return;
  tk->ended = 1;
  w2a_http_stream_end(tk->req);
  uv_timer_stop(&tk->t);
  uv_close((uv_handle_t *)&tk->t, free_data);
}

static void ticker_abort(w2a_http_req *r, void *ud) {
  g_srv_aborts++;
  ticker_finish(ud);
}

static void ticker_tick(uv_timer_t *t) {
  ticker *tk = t->data;
  if (tk->n >= 0 && tk->i >= tk->n) {
    ticker_finish(tk);
    return;
  }
  if (tk->n == -2) return; /* stall: one line, then silence */
  char line[32];
  int l = snprintf(line, sizeof line, "line %d\n", tk->i++);
  w2a_http_stream_write(tk->req, line, (size_t)l);
}

typedef struct later {
  uv_timer_t t;
  w2a_http_req *req;
} later;

static void later_fire(uv_timer_t *t) {
  later *l = t->data;
  w2a_http_respond(l->req, 200, "text/plain", NULL, "late", 4);
  uv_close((uv_handle_t *)&l->t, free_data);
}

static void later_abort(w2a_http_req *r, void *ud) {
  later *l = ud;
  g_srv_aborts++;
  uv_timer_stop(&l->t);
  later_fire(&l->t);
}

static void handler(w2a_http_req *r, void *ud) {
  char q[32];
  if (!strcmp(r->path, "/hello")) {
    w2a_http_respond(r, 200, "text/plain; charset=utf-8", NULL, "hello", 5);
  } else if (!strcmp(r->path, "/echo")) {
    char extra[256];
    const char *x = w2a_http_req_header(r, "x-custom");
    const char *ex = w2a_http_req_header(r, "expect");
    snprintf(extra, sizeof extra, "X-Method: %s\r\nX-Custom: %s\r\nX-Expect: %s\r\n", r->method,
             x ? x : "-", ex ? ex : "-");
    w2a_http_respond(r, 201, "application/json", extra, r->body, r->body_len);
  } else if (!strcmp(r->path, "/hdr")) {
    w2a_http_req_query(r, "name", q, sizeof q);
    const char *v = w2a_http_req_header(r, q);
    char out[256];
    int l = snprintf(out, sizeof out, "%s %s %zu", v ? v : "-", r->method, r->body_len);
    w2a_http_respond(r, 200, "text/plain", NULL, out, (size_t)l);
  } else if (!strncmp(r->path, "http://", 7)) { /* absolute form: we are the proxy */
    char out[256];
    int l = snprintf(out, sizeof out, "proxied %s", r->path);
    w2a_http_respond(r, 200, "text/plain", NULL, out, (size_t)l);
  } else if (!strcmp(r->path, "/peer")) {
    w2a_http_respond(r, 200, "text/plain", NULL, r->peer, strlen(r->peer));
  } else if (!strcmp(r->path, "/big")) {
    size_t n = w2a_http_req_query(r, "n", q, sizeof q) ? strtoul(q, NULL, 10) : 0;
    char *b = malloc(n + 1);
    memset(b, 'b', n);
    w2a_http_respond(r, 200, "application/octet-stream", NULL, b, n);
    free(b);
  } else if (!strcmp(r->path, "/stream") || !strcmp(r->path, "/stall")) {
    ticker *tk = calloc(1, sizeof *tk);
    tk->req = r;
    tk->n = w2a_http_req_query(r, "n", q, sizeof q) ? atoi(q) : -1;
    int ms = w2a_http_req_query(r, "ms", q, sizeof q) ? atoi(q) : 2;
    w2a_http_req_on_abort(r, ticker_abort, tk);
    w2a_http_stream_start(r, 200, "text/event-stream", NULL);
    if (!strcmp(r->path, "/stall")) {
      w2a_http_stream_write(r, "first\n", 6);
      tk->n = -2;
    }
    uv_timer_init(&g_loop, &tk->t);
    tk->t.data = tk;
    uv_timer_start(&tk->t, ticker_tick, (uint64_t)ms, (uint64_t)ms);
  } else if (!strcmp(r->path, "/sleep")) {
    later *l = calloc(1, sizeof *l);
    l->req = r;
    w2a_http_req_on_abort(r, later_abort, l);
    uv_timer_init(&g_loop, &l->t);
    l->t.data = l;
    uv_timer_start(&l->t, later_fire,
                   w2a_http_req_query(r, "ms", q, sizeof q) ? strtoul(q, NULL, 10) : 100, 0);
  } else {
    w2a_http_respond(r, 404, "text/plain", NULL, "no", 2);
  }
}

/* ------------------------------------------------------------------ harness */

static void on_closed(void *ud) { g_closed++; }

static void setup(const w2a_http_client_opts *o) {
  g_srv_aborts = 0;
  g_closed = 0;
  T_EQ_INT(uv_loop_init(&g_loop), 0);
  w2a_err err = {0};
  T_EQ_INT(w2a_http_server_listen(&g_srv, &g_loop, "127.0.0.1", 0, NULL, handler, NULL, &err), 0);
  snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", w2a_http_server_port(g_srv));
  T_EQ_INT(w2a_http_client_new(&g_cli, &g_loop, o, &err), 0);
}

static void teardown_now(void) {
  w2a_http_client_close(g_cli, on_closed, NULL);
  w2a_http_server_shutdown(g_srv, on_closed, NULL);
  w2a_http_server_close_all(g_srv);
}

static void run_and_teardown(void) {
  uv_run(&g_loop, UV_RUN_DEFAULT);
  T_EQ_INT(g_closed, 2);
  T_EQ_INT(uv_loop_close(&g_loop), 0);
}

/* A recorder for one call. */
typedef struct rec {
  int status, done, code, ndata, data_while_paused;
  uint64_t t0, done_ms;
  char ctype[64];
  char errmsg[256];
  char version[8];
  w2a_buf body;
  int pause_first, paused, cancel_after;
  int *pending;
} rec;

static int g_pending;

static void finish_one(void) {
  if (--g_pending == 0) teardown_now();
}

static void r_status(w2a_http_call *c, int status, const char *ct, void *ud) {
  rec *r = ud;
  r->status = status;
  snprintf(r->ctype, sizeof r->ctype, "%s", ct);
}

typedef struct resumer {
  uv_timer_t t;
  w2a_http_call *call;
  rec *r;
} resumer;

static void resume_fire(uv_timer_t *t) {
  resumer *rs = t->data;
  rs->r->paused = 0;
  w2a_http_call_resume(rs->call);
  uv_close((uv_handle_t *)&rs->t, free_data);
}

static int r_data(w2a_http_call *c, const char *p, size_t n, void *ud) {
  rec *r = ud;
  if (r->paused) r->data_while_paused++;
  r->ndata++;
  w2a_buf_append(&r->body, p, n);
  snprintf(r->version, sizeof r->version, "%s", w2a_http_call_version(c));
  if (r->cancel_after && (int)r->body.len >= r->cancel_after) {
    w2a_http_call_cancel(c); /* from inside curl's write callback */
    r->done = -1;
    finish_one();
    return W2A_HTTP_CONTINUE;
  }
  if (r->pause_first && r->ndata % 3 == 1 && r->ndata < 30) {
    r->paused = 1;
    resumer *rs = calloc(1, sizeof *rs);
    rs->call = c;
    rs->r = r;
    uv_timer_init(&g_loop, &rs->t);
    rs->t.data = rs;
    uv_timer_start(&rs->t, resume_fire, 20, 0);
    return W2A_HTTP_PAUSE;
  }
  return W2A_HTTP_CONTINUE;
}

static void r_done(w2a_http_call *c, int code, const char *msg, void *ud) {
  rec *r = ud;
  r->done++;
  r->done_ms = uv_now(&g_loop) - r->t0;
  r->code = code;
  snprintf(r->errmsg, sizeof r->errmsg, "%s", msg ? msg : "");
  snprintf(r->version, sizeof r->version, "%s", w2a_http_call_version(c));
  T_EQ_INT(w2a_http_call_status(c), r->status);
  finish_one();
}

static const w2a_http_call_cbs rec_cbs = {r_status, r_data, r_done, NULL};

static void rec_init(rec *r) {
  memset(r, 0, sizeof *r);
  w2a_buf_init(&r->body, 0);
}

static w2a_http_call *start(rec *r, const char *path, const w2a_http_request *tmpl) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", g_base, path);
  w2a_http_request rq = {0};
  if (tmpl) rq = *tmpl;
  rq.url = url;
  g_pending++;
  r->t0 = uv_now(&g_loop);
  w2a_http_call *c = w2a_http_client_start(g_cli, &rq, &rec_cbs, r);
  T_CHECK(c != NULL);
  return c;
}

/* ------------------------------------------------------------------ tests */

static void test_get_and_post(void) {
  setup(NULL);
  rec a, b, d;
  rec_init(&a);
  rec_init(&b);
  rec_init(&d);
  start(&a, "/hello", NULL);
  const char *hdrs[] = {"X-Custom: abc", "Content-Type: application/json", NULL};
  w2a_http_request rq = {.headers = hdrs, .body = "{\"x\":1}", .body_len = 7};
  start(&b, "/echo", &rq);
  w2a_http_request del = {.method = "DELETE"};
  start(&d, "/echo", &del);
  T_EQ_INT(w2a_http_client_active(g_cli), 3);
  run_and_teardown();
  T_EQ_INT(a.done, 1);
  T_EQ_INT(a.code, 0);
  T_EQ_INT(a.status, 200);
  T_EQ_STR(a.ctype, "text/plain; charset=utf-8");
  T_EQ_STR(a.body.data, "hello");
  T_EQ_STR(a.version, "1.1");
  T_EQ_INT(b.status, 201);
  T_EQ_STR(b.body.data, "{\"x\":1}");
  T_EQ_STR(b.ctype, "application/json");
  T_EQ_INT(d.status, 201);
  T_EQ_INT(d.done, 1);
  w2a_buf_free(&a.body);
  w2a_buf_free(&b.body);
  w2a_buf_free(&d.body);
}

/* Request headers reach the server; a big body goes without "Expect: 100-continue". */
static void test_request_headers(void) {
  setup(NULL);
  size_t n = 2u << 20;
  char *body = malloc(n);
  memset(body, 'q', n);
  rec r, h;
  rec_init(&r);
  rec_init(&h);
  w2a_http_request rq = {.method = "PUT", .body = body, .body_len = n};
  start(&r, "/hdr?name=expect", &rq);
  free(body); /* the client copied it */
  const char *hdrs[] = {"X-Custom: abc", NULL};
  w2a_http_request rh = {.headers = hdrs};
  start(&h, "/hdr?name=x-custom", &rh);
  run_and_teardown();
  T_EQ_INT(r.code, 0);
  T_EQ_STR(r.body.data, "- PUT 2097152");
  T_EQ_STR(h.body.data, "abc GET 0");
  w2a_buf_free(&r.body);
  w2a_buf_free(&h.body);
}

static void test_pause_resume(void) {
  setup(NULL);
  rec r;
  rec_init(&r);
  r.pause_first = 1;
  start(&r, "/stream?n=60&ms=1", NULL);
  run_and_teardown();
  T_EQ_INT(r.code, 0);
  T_EQ_INT(r.data_while_paused, 0);
  /* every line exactly once, in order */
  int ok = 1, i = 0;
  for (char *p = r.body.data; p && *p; i++) {
    char want[32];
    int l = snprintf(want, sizeof want, "line %d\n", i);
    if (strncmp(p, want, (size_t)l)) {
      ok = 0;
      break;
    }
    p += l;
  }
  T_CHECK(ok);
  T_EQ_INT(i, 60);
  T_EQ_INT(g_srv_aborts, 0);
  w2a_buf_free(&r.body);
}

typedef struct canceller {
  uv_timer_t t;
  w2a_http_call *call;
} canceller;

static void cancel_fire(uv_timer_t *t) {
  canceller *k = t->data;
  w2a_http_call_cancel(k->call);
  finish_one();
  uv_close((uv_handle_t *)&k->t, free_data);
}

static int g_wait_aborts, g_wait_ticks;
static void wait_aborts_tick(uv_timer_t *t) {
  if (g_srv_aborts >= g_wait_aborts || ++g_wait_ticks > 400) {
    g_wait_ticks = 0;
    uv_close((uv_handle_t *)t, free_data);
    finish_one();
  }
}

static void test_cancel(void) {
  setup(NULL);
  rec a, b;
  rec_init(&a);
  rec_init(&b);
  a.cancel_after = 50; /* cancelled from inside on_data */
  start(&a, "/stream", NULL);
  w2a_http_call *cb = start(&b, "/stream", NULL);
  canceller *k = calloc(1, sizeof *k); /* cancelled from a timer, outside curl */
  k->call = cb;
  uv_timer_init(&g_loop, &k->t);
  k->t.data = k;
  uv_timer_start(&k->t, cancel_fire, 60, 0);
  /* keep the loop alive until the server saw both aborts (or ~1 s) */
  uv_timer_t *w = malloc(sizeof *w);
  uv_timer_init(&g_loop, w);
  w->data = w;
  g_wait_aborts = 2;
  g_pending++;
  uv_timer_start(w, wait_aborts_tick, 5, 5);
  run_and_teardown();
  T_EQ_INT(a.done, -1); /* no on_done after cancel */
  T_EQ_INT(b.done, 0);
  T_EQ_INT(g_srv_aborts, 2);
  w2a_buf_free(&a.body);
  w2a_buf_free(&b.body);
}

static int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&a, sizeof a);
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_connect_failure(void) {
  setup(NULL);
  rec r;
  rec_init(&r);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", closed_port());
  w2a_http_request rq = {.url = url};
  g_pending++;
  T_CHECK(w2a_http_client_start(g_cli, &rq, &rec_cbs, &r) != NULL);
  run_and_teardown();
  T_EQ_INT(r.done, 1);
  T_EQ_INT(r.code, W2A_EIO);
  T_EQ_INT(r.status, 0);
  fprintf(stderr, "  connect failure: %s\n", r.errmsg);
  T_CHECK(strstr(r.errmsg, "connect failed") == r.errmsg);
  T_CHECK(strstr(r.errmsg, "refused") != NULL);
  w2a_buf_free(&r.body);
}

static void test_timeouts(void) {
  setup(NULL);
  rec idle, fb, total, ok;
  rec_init(&idle);
  rec_init(&fb);
  rec_init(&total);
  rec_init(&ok);
  w2a_http_request ri = {.idle_timeout_ms = 150, .first_byte_timeout_ms = 1000};
  start(&idle, "/stall", &ri);
  w2a_http_request rf = {.first_byte_timeout_ms = 100, .idle_timeout_ms = 50};
  start(&fb, "/sleep?ms=600", &rf);
  w2a_http_request rt = {.timeout_ms = 200, .idle_timeout_ms = 100};
  start(&total, "/stream?ms=5", &rt); /* never silent, never ends */
  w2a_http_request rk = {.timeout_ms = 2000, .idle_timeout_ms = 100, .first_byte_timeout_ms = 300};
  start(&ok, "/sleep?ms=150", &rk); /* idle does not count before the first byte */
  uv_timer_t *w = malloc(sizeof *w);
  uv_timer_init(&g_loop, w);
  w->data = w;
  g_wait_aborts = 2; /* the stalled and the endless stream were abandoned */
  g_pending++;
  uv_timer_start(w, wait_aborts_tick, 5, 5);
  run_and_teardown();
  T_EQ_INT(idle.code, W2A_EIO);
  T_CHECK(idle.done_ms >= 140 && idle.done_ms < 600); /* 150 ms after "first", not 1 s */
  T_CHECK(strstr(idle.errmsg, "idle timeout") == idle.errmsg);
  T_EQ_STR(idle.body.data, "first\n");
  T_EQ_INT(fb.code, W2A_EIO);
  T_CHECK(strstr(fb.errmsg, "first byte timeout") == fb.errmsg);
  T_EQ_INT(total.code, W2A_EIO);
  T_CHECK(strstr(total.errmsg, "timeout (") == total.errmsg);
  T_CHECK(total.body.len > 100);
  T_EQ_INT(ok.code, 0);
  T_EQ_STR(ok.body.data, "late");
  T_CHECK(g_srv_aborts >= 2); /* + the /sleep one, cut at teardown */
  fprintf(stderr, "  %s | %s | %s\n", idle.errmsg, fb.errmsg, total.errmsg);
  w2a_buf_free(&idle.body);
  w2a_buf_free(&fb.body);
  w2a_buf_free(&total.body);
  w2a_buf_free(&ok.body);
}

typedef struct fres {
  int code, status, called;
  size_t len;
  char msg[128];
  char body[64];
} fres;

static void f_done(int code, int status, const char *body, size_t len, const char *errmsg,
                   void *ud) {
  fres *f = ud;
  f->called++;
  f->code = code;
  f->status = status;
  f->len = len;
  snprintf(f->msg, sizeof f->msg, "%s", errmsg ? errmsg : "");
  snprintf(f->body, sizeof f->body, "%.*s", (int)(len < 63 ? len : 63), body);
  finish_one();
}

static void test_fetch(void) {
  setup(NULL);
  fres a = {0}, b = {0}, c = {0};
  char url[128];
  w2a_http_request rq = {0};
  snprintf(url, sizeof url, "%s/big?n=1000", g_base);
  rq.url = url;
  g_pending++;
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 10000, f_done, &a), 0);
  char url2[128];
  snprintf(url2, sizeof url2, "%s/big?n=200000", g_base);
  rq.url = url2;
  g_pending++;
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 1000, f_done, &b), 0);
  char url3[128];
  snprintf(url3, sizeof url3, "%s/peer", g_base);
  rq.url = url3;
  g_pending++;
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 100, f_done, &c), 0);
  run_and_teardown();
  T_EQ_INT(a.called, 1);
  T_EQ_INT(a.code, 0);
  T_EQ_INT(a.status, 200);
  T_EQ_INT(a.len, 1000);
  T_EQ_INT(b.called, 1);
  T_EQ_INT(b.code, W2A_ETOOBIG);
  T_CHECK(strstr(b.msg, "over 1000 bytes") != NULL);
  T_CHECK(b.len <= 1000);
  T_EQ_INT(c.code, 0);
  T_CHECK(strstr(c.body, "127.0.0.1:") == c.body);
}

/* Two sequential calls share one TCP connection (the server sees the same peer). */
static char g_peer1[64];
static fres g_r2;
static void f_second(int code, int status, const char *body, size_t len, const char *errmsg,
                     void *ud) {
  f_done(code, status, body, len, errmsg, ud);
}
static void f_first(int code, int status, const char *body, size_t len, const char *errmsg,
                    void *ud) {
  snprintf(g_peer1, sizeof g_peer1, "%.*s", (int)len, body);
  w2a_http_request rq = {.url = ud};
  g_pending++;
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 100, f_second, &g_r2), 0); /* from inside on_done */
  finish_one();
}

static void test_reuse(void) {
  setup(NULL);
  memset(&g_r2, 0, sizeof g_r2);
  char url[128];
  snprintf(url, sizeof url, "%s/peer", g_base);
  w2a_http_request rq = {.url = url};
  g_pending++;
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 100, f_first, url), 0);
  run_and_teardown();
  T_EQ_INT(g_r2.code, 0);
  T_EQ_STR(g_r2.body, g_peer1);
}

/* The server drops the kept connection while it sits in curl's cache: its parked poll
 * (still started, see park() in client.c) sees the EOF and stops, and the next call opens
 * a new connection (another peer port) and succeeds. */
static uv_timer_t g_drop_t;
static char g_drop_url[128];
static void drop_second(uv_timer_t *t) {
  w2a_http_request rq = {.url = g_drop_url};
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 100, f_done, &g_r2), 0);
  uv_close((uv_handle_t *)t, NULL);
}
static void drop_conns(uv_timer_t *t) {
  w2a_http_server_close_all(g_srv);
  uv_timer_start(t, drop_second, 50, 0); /* the EOF reaches the parked poll meanwhile */
}
static void f_first_then_drop(int code, int status, const char *body, size_t len,
                              const char *errmsg, void *ud) {
  T_EQ_INT(code, 0);
  snprintf(g_peer1, sizeof g_peer1, "%.*s", (int)len, body);
  g_pending++; /* the second call, started from the timer */
  uv_timer_init(&g_loop, &g_drop_t);
  uv_timer_start(&g_drop_t, drop_conns, 20, 0);
  finish_one();
}

static void test_reuse_after_peer_close(void) {
  setup(NULL);
  memset(&g_r2, 0, sizeof g_r2);
  snprintf(g_drop_url, sizeof g_drop_url, "%s/peer", g_base);
  w2a_http_request rq = {.url = g_drop_url};
  g_pending++;
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 100, f_first_then_drop, NULL), 0);
  run_and_teardown();
  T_EQ_INT(g_r2.called, 1);
  T_EQ_INT(g_r2.code, 0);
  T_EQ_INT(g_r2.status, 200);
  T_CHECK(strstr(g_r2.body, "127.0.0.1:") == g_r2.body);
  T_CHECK(strcmp(g_r2.body, g_peer1) != 0); /* a new connection */
}

static void test_close_with_active_calls(void) {
  setup(NULL);
  rec a;
  rec_init(&a);
  start(&a, "/stream", NULL);
  fres f = {0};
  char url[128];
  snprintf(url, sizeof url, "%s/sleep?ms=5000", g_base);
  w2a_http_request rq = {.url = url};
  T_EQ_INT(w2a_http_fetch(g_cli, &rq, 100, f_done, &f), 0);
  g_pending = 0;
  /* let the stream start, then close everything */
  uv_run(&g_loop, UV_RUN_ONCE);
  uv_run(&g_loop, UV_RUN_ONCE);
  teardown_now();
  run_and_teardown();
  T_EQ_INT(a.done, 0); /* no callbacks after close */
  T_EQ_INT(f.called, 0);
  w2a_buf_free(&a.body);
}

/* An explicit proxy, then the environment's (http_proxy, honoured by libcurl itself),
 * then NO_PROXY. Our own server plays the proxy: it sees absolute-form request targets. */
static void test_proxy(void) {
  char proxy[64];
  for (int round = 0; round < 3; round++) {
    g_srv_aborts = 0;
    g_closed = 0;
    T_EQ_INT(uv_loop_init(&g_loop), 0);
    w2a_err err = {0};
    T_EQ_INT(w2a_http_server_listen(&g_srv, &g_loop, "127.0.0.1", 0, NULL, handler, NULL, &err), 0);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", w2a_http_server_port(g_srv));
    snprintf(g_base, sizeof g_base, "http://127.0.0.1:%d", w2a_http_server_port(g_srv));
    w2a_http_client_opts o = {.proxy = round == 0 ? proxy : NULL};
    if (round >= 1) setenv("http_proxy", proxy, 1);
    if (round == 2) setenv("no_proxy", "127.0.0.1", 1);
    T_EQ_INT(w2a_http_client_new(&g_cli, &g_loop, &o, &err), 0);
    rec r;
    rec_init(&r);
    w2a_http_request rq = {.url = round == 2 ? g_base : "http://upstream.invalid/v1/x"};
    if (round == 2) {
      static char u[96];
      snprintf(u, sizeof u, "%s/hello", g_base);
      rq.url = u;
    }
    g_pending = 1;
    T_CHECK(w2a_http_client_start(g_cli, &rq, &rec_cbs, &r) != NULL);
    run_and_teardown();
    T_EQ_INT(r.code, 0);
    T_EQ_STR(r.body.data, round == 2 ? "hello" : "proxied http://upstream.invalid/v1/x");
    w2a_buf_free(&r.body);
    unsetenv("http_proxy");
    unsetenv("no_proxy");
  }
}

/* Many concurrent calls: sockets come and go (fd numbers are reused while old polls
 * close), short answers and streams interleave, and connections return to the cache. */
static void test_many_concurrent(void) {
  w2a_http_client_opts o = {.max_host_connections = 16};
  setup(&o);
  enum { N = 300 };
  static rec r[N];
  for (int i = 0; i < N; i++) {
    rec_init(&r[i]);
    start(&r[i], i % 3 == 0 ? "/stream?n=20&ms=1" : "/hello", NULL);
  }
  run_and_teardown();
  int ok = 0;
  for (int i = 0; i < N; i++) {
    if (r[i].code == 0 && r[i].done == 1 &&
        (i % 3 == 0 ? r[i].body.len == 150 : r[i].body.len == 5))
      ok++;
    w2a_buf_free(&r[i].body);
  }
  T_EQ_INT(ok, N);
}

int main(void) {
  T_RUN(test_get_and_post);
  T_RUN(test_request_headers);
  T_RUN(test_pause_resume);
  T_RUN(test_cancel);
  T_RUN(test_connect_failure);
  T_RUN(test_timeouts);
  T_RUN(test_fetch);
  T_RUN(test_reuse);
  T_RUN(test_reuse_after_peer_close);
  T_RUN(test_close_with_active_calls);
  T_RUN(test_proxy);
  T_RUN(test_many_concurrent);
  return t_done();
}
