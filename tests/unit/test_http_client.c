/* test_http_client.c - the libcurl-on-libuv client against our own server on one loop.
 *
 * Each test makes a loop, a server (src/http/server.c) with a few routes, and a client;
 * calls run until every expected callback arrived, then both are closed and
 * uv_loop_close() must return 0 (no leaked handle). Bodies that must arrive intact follow
 * pattern(): a byte that depends on its offset, so a lost, doubled or reordered piece
 * shows. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
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

/* The byte at offset i of every /pattern, /burst and /drip body. */
static char pattern(size_t i) { return (char)(i * 131u + (i >> 9)); }

static int pattern_ok(const w2a_buf *b, size_t want) {
  if (b->len != want) return 0;
  for (size_t i = 0; i < want; i++)
    if (b->data[i] != pattern(i)) return 0;
  return 1;
}

/* Writes `per` chunks of `each` bytes per tick, `n` ticks, then ends: several chunks
 * land in one read on the client, so one socket event runs on_data several times. */
typedef struct dripper {
  uv_timer_t t;
  w2a_http_req *req;
  int n, i, per;
  size_t each, pos;
  int ended;
} dripper;

static void drip_write(w2a_http_req *r, size_t *pos, int per, size_t each) {
  char b[4096];
  for (int k = 0; k < per; k++) {
    for (size_t j = 0; j < each; j++)
      b[j] = pattern(*pos + j);
    w2a_http_stream_write(r, b, each);
    *pos += each;
  }
}

static void drip_finish(dripper *d) {
  if (d->ended) return;
  d->ended = 1;
  w2a_http_stream_end(d->req);
  uv_timer_stop(&d->t);
  uv_close((uv_handle_t *)&d->t, free_data);
}

static void drip_abort(w2a_http_req *r, void *ud) {
  g_srv_aborts++;
  drip_finish(ud);
}

static void drip_tick(uv_timer_t *t) {
  dripper *d = t->data;
  if (d->i++ >= d->n) {
    drip_finish(d);
    return;
  }
  drip_write(d->req, &d->pos, d->per, d->each);
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
  } else if (!strcmp(r->path, "/pattern")) { /* Content-Length body */
    size_t n = w2a_http_req_query(r, "n", q, sizeof q) ? strtoul(q, NULL, 10) : 0;
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
      b[i] = pattern(i);
    w2a_http_respond(r, 200, "application/octet-stream", NULL, b, n);
    free(b);
  } else if (!strcmp(r->path, "/burst") || !strcmp(r->path, "/drip")) { /* chunked */
    int n = w2a_http_req_query(r, "n", q, sizeof q) ? atoi(q) : 1;
    int per = w2a_http_req_query(r, "per", q, sizeof q) ? atoi(q) : 1;
    size_t each = w2a_http_req_query(r, "each", q, sizeof q) ? strtoul(q, NULL, 10) : 64;
    if (each > 4096) each = 4096;
    w2a_http_stream_start(r, 200, "application/octet-stream", NULL);
    if (!strcmp(r->path, "/burst")) { /* all of it before the client's next read */
      size_t pos = 0;
      drip_write(r, &pos, per, each);
      w2a_http_stream_end(r);
      return;
    }
    dripper *d = calloc(1, sizeof *d);
    d->req = r;
    d->n = n;
    d->per = per;
    d->each = each;
    uint64_t ms = w2a_http_req_query(r, "ms", q, sizeof q) ? strtoul(q, NULL, 10) : 2;
    w2a_http_req_on_abort(r, drip_abort, d);
    uv_timer_init(&g_loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, drip_tick, ms, ms);
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
static void batch_guard_stop(void);

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
  batch_guard_stop();
  w2a_http_client_close(g_cli, on_closed, NULL);
  w2a_http_server_shutdown(g_srv, on_closed, NULL);
  w2a_http_server_close_all(g_srv);
}

static void run_and_teardown(void) {
  uv_run(&g_loop, UV_RUN_DEFAULT);
  T_EQ_INT(g_closed, 2);
  T_EQ_INT(uv_loop_close(&g_loop), 0);
}

/* A recorder for one call. `done` is 1 after on_done, -1 after the test cancelled the call;
 * any callback after either counts in `late`. on_batch (r_batch, with batch_cbs) checks
 * its own ordering: `empty_batches` counts on_batch calls with no on_data since the
 * previous one, `pending_at_done` the on_data calls that on_done found not yet followed by
 * an on_batch. */
typedef struct resumer resumer;
typedef struct rec {
  int status, done, code, ndata, data_while_paused;
  uint64_t t0, done_ms;
  char ctype[64];
  char errmsg[256];
  char version[8];
  w2a_buf body;
  int pause_first, paused, cancel_after;
  int *pending;
  w2a_http_call *call;
  resumer *rs; /* the timer that will resume the call, while one is armed */
  int late, resumes;
  int nbatch, ndata_at_batch, empty_batches, pending_at_done, batch_while_paused, wrong_call;
  int nbatch_resumed;  /* on_batch calls after the first resume */
  int unbatched_turns; /* loop phases reached with on_data not yet followed by on_batch */
  int batch_pause;     /* pause from on_batch in the first N on_batch calls */
  int batch_cancel;    /* cancel from the Nth on_batch */
} rec;

static int g_pending;

static void finish_one(void) {
  if (--g_pending == 0) teardown_now();
}

static void r_status(w2a_http_call *c, int status, const char *ct, void *ud) {
  rec *r = ud;
  if (r->done) r->late++;
  r->status = status;
  snprintf(r->ctype, sizeof r->ctype, "%s", ct);
}

struct resumer {
  uv_timer_t t;
  w2a_http_call *call;
  rec *r;
};

static void resume_fire(uv_timer_t *t) {
  resumer *rs = t->data;
  rs->r->paused = 0;
  rs->r->resumes++;
  rs->r->rs = NULL;
  w2a_http_call_resume(rs->call);
  uv_close((uv_handle_t *)&rs->t, free_data);
}

static void resume_later(rec *r, w2a_http_call *c, uint64_t ms) {
  resumer *rs = calloc(1, sizeof *rs);
  rs->call = c;
  rs->r = r;
  r->rs = rs;
  uv_timer_init(&g_loop, &rs->t);
  rs->t.data = rs;
  uv_timer_start(&rs->t, resume_fire, ms, 0);
}

/* The call is gone (on_done, cancel): a pending resume would touch freed memory. */
static void drop_resumer(rec *r) {
  if (!r->rs) return;
  uv_timer_stop(&r->rs->t);
  uv_close((uv_handle_t *)&r->rs->t, free_data);
  r->rs = NULL;
}

static int r_data(w2a_http_call *c, const char *p, size_t n, void *ud) {
  rec *r = ud;
  if (r->done) r->late++;
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
    resume_later(r, c, 20);
    return W2A_HTTP_PAUSE;
  }
  return W2A_HTTP_CONTINUE;
}

static void r_done(w2a_http_call *c, int code, const char *msg, void *ud) {
  rec *r = ud;
  if (r->done) r->late++;
  r->done++;
  r->done_ms = uv_now(&g_loop) - r->t0;
  r->code = code;
  r->pending_at_done = r->ndata - r->ndata_at_batch;
  snprintf(r->errmsg, sizeof r->errmsg, "%s", msg ? msg : "");
  snprintf(r->version, sizeof r->version, "%s", w2a_http_call_version(c));
  T_EQ_INT(w2a_http_call_status(c), r->status);
  drop_resumer(r); /* paused from on_batch after the last byte: the end comes anyway */
  finish_one();
}

static void batch_note(rec *r, w2a_http_call *c) {
  if (r->done) r->late++;
  if (c != r->call) r->wrong_call++;
  if (r->paused) r->batch_while_paused++;
  if (r->ndata == r->ndata_at_batch) r->empty_batches++;
  r->ndata_at_batch = r->ndata;
  r->nbatch++;
  if (r->resumes) r->nbatch_resumed++;
}

static void r_batch(w2a_http_call *c, void *ud) {
  rec *r = ud;
  batch_note(r, c);
  if (r->batch_cancel && r->nbatch == r->batch_cancel) {
    drop_resumer(r);
    w2a_http_call_cancel(c); /* counts as inside curl: deferred */
    r->done = -1;
    finish_one();
    return;
  }
  if (r->nbatch <= r->batch_pause) {
    r->paused = 1;
    w2a_http_call_pause(c);
    resume_later(r, c, 15);
  }
}

static const w2a_http_call_cbs rec_cbs = {r_status, r_data, r_done, NULL};
static const w2a_http_call_cbs batch_cbs = {r_status, r_data, r_done, r_batch};

static void rec_init(rec *r) {
  memset(r, 0, sizeof *r);
  w2a_buf_init(&r->body, 0);
}

static w2a_http_call *start_cbs(rec *r, const char *path, const w2a_http_request *tmpl,
                                const w2a_http_call_cbs *cbs) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", g_base, path);
  w2a_http_request rq = {0};
  if (tmpl) rq = *tmpl;
  rq.url = url;
  g_pending++;
  r->t0 = uv_now(&g_loop);
  w2a_http_call *c = w2a_http_client_start(g_cli, &rq, cbs, r);
  T_CHECK(c != NULL);
  r->call = c;
  return c;
}

static w2a_http_call *start(rec *r, const char *path, const w2a_http_request *tmpl) {
  return start_cbs(r, path, tmpl, &rec_cbs);
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

/* ------------------------------------------------------------------ on_batch */

/* A call's on_data calls get their on_batch before control goes back to the loop (from
 * the poll, timer or idle phase): the prepare and check phases find none still owed. */
static struct {
  uv_prepare_t prep;
  uv_check_t check;
  rec *r[8];
  int n, on;
} g_guard;

static void guard_look(void) {
  for (int i = 0; i < g_guard.n; i++) {
    rec *r = g_guard.r[i];
    if (!r->done && r->ndata != r->ndata_at_batch) r->unbatched_turns++;
  }
}
static void guard_prep(uv_prepare_t *h) { guard_look(); }
static void guard_check(uv_check_t *h) { guard_look(); }

static void batch_guard_start(rec *const *r, int n) {
  memset(&g_guard, 0, sizeof g_guard);
  for (int i = 0; i < n; i++)
    g_guard.r[i] = r[i];
  g_guard.n = n;
  g_guard.on = 1;
  uv_prepare_init(&g_loop, &g_guard.prep);
  uv_check_init(&g_loop, &g_guard.check);
  uv_prepare_start(&g_guard.prep, guard_prep);
  uv_check_start(&g_guard.check, guard_check);
  uv_unref((uv_handle_t *)&g_guard.prep); /* the calls keep the loop running, not these */
  uv_unref((uv_handle_t *)&g_guard.check);
}

static void batch_guard_stop(void) {
  if (!g_guard.on) return;
  g_guard.on = 0;
  uv_close((uv_handle_t *)&g_guard.prep, NULL);
  uv_close((uv_handle_t *)&g_guard.check, NULL);
}

/* Checks every call with on_batch must pass, whatever else it does. */
static void check_batches(const rec *r, const char *what) {
  fprintf(stderr, "  %s: %d on_data, %d on_batch, %d resumes\n", what, r->ndata, r->nbatch,
          r->resumes);
  T_CHECK(r->nbatch <= r->ndata);
  T_EQ_INT(r->empty_batches, 0);
  T_EQ_INT(r->pending_at_done, 0);
  T_EQ_INT(r->late, 0);
  T_EQ_INT(r->wrong_call, 0);
  T_EQ_INT(r->unbatched_turns, 0);
}

/* A body in many pieces: a 4 MiB Content-Length one (many reads per event), 200 chunks
 * sent at once (one read, 200 on_data), and chunks dripped over 40 ticks (many events).
 * on_batch follows the on_data calls of each event and comes before on_done. */
static void test_batch_order(void) {
  setup(NULL);
  enum { BIG = 4 << 20 };
  rec big, burst, drip;
  rec_init(&big);
  rec_init(&burst);
  rec_init(&drip);
  char path[64];
  snprintf(path, sizeof path, "/pattern?n=%d", BIG);
  start_cbs(&big, path, NULL, &batch_cbs);
  start_cbs(&burst, "/burst?per=200&each=50", NULL, &batch_cbs);
  start_cbs(&drip, "/drip?n=40&per=4&each=300&ms=1", NULL, &batch_cbs);
  rec *all[] = {&big, &burst, &drip};
  batch_guard_start(all, 3);
  run_and_teardown();
  size_t want[] = {BIG, 200 * 50, 40 * 4 * 300};
  const char *name[] = {"4 MiB", "burst", "drip"};
  for (int i = 0; i < 3; i++) {
    T_EQ_INT(all[i]->done, 1);
    T_EQ_INT(all[i]->code, 0);
    T_EQ_INT(all[i]->body.len, want[i]);
    T_CHECK(pattern_ok(&all[i]->body, want[i]));
    T_CHECK(all[i]->nbatch >= 1);
    check_batches(all[i], name[i]);
    w2a_buf_free(&all[i]->body);
  }
  /* one read of 200 chunks: one on_data per chunk, not one on_batch per on_data */
  T_CHECK(burst.ndata >= 200);
  T_CHECK(burst.nbatch < burst.ndata);
  T_CHECK(drip.nbatch > 1); /* 40 ticks of the server's timer are not one socket event */
}

/* on_batch NULL: as before. A plain call, and one paused from on_data and resumed, next to
 * a call with on_batch that pauses the same way (its batches run in the same passes). */
static void test_batch_null(void) {
  setup(NULL);
  rec plain, paused, with;
  rec_init(&plain);
  rec_init(&paused);
  rec_init(&with);
  paused.pause_first = 1;
  with.pause_first = 1;
  start(&plain, "/burst?per=200&each=50", NULL);
  start(&paused, "/drip?n=30&per=3&each=100&ms=1", NULL);
  start_cbs(&with, "/drip?n=30&per=3&each=100&ms=1", NULL, &batch_cbs);
  rec *guarded[] = {&with};
  batch_guard_start(guarded, 1);
  run_and_teardown();
  T_EQ_INT(plain.done, 1);
  T_EQ_INT(plain.code, 0);
  T_CHECK(pattern_ok(&plain.body, 200 * 50));
  T_CHECK(plain.ndata >= 200);
  T_EQ_INT(plain.nbatch, 0);
  T_EQ_INT(plain.late, 0);
  T_EQ_INT(paused.done, 1);
  T_EQ_INT(paused.code, 0);
  T_CHECK(pattern_ok(&paused.body, 30 * 3 * 100));
  T_CHECK(paused.resumes >= 1);
  T_EQ_INT(paused.data_while_paused, 0);
  T_EQ_INT(paused.nbatch, 0);
  T_EQ_INT(paused.late, 0);
  T_EQ_INT(with.done, 1);
  T_EQ_INT(with.code, 0);
  T_CHECK(pattern_ok(&with.body, 30 * 3 * 100));
  T_EQ_INT(with.data_while_paused, 0);
  T_CHECK(with.nbatch >= 1);
  T_CHECK(with.nbatch_resumed >= 1);
  check_batches(&with, "with on_batch");
  w2a_buf_free(&plain.body);
  w2a_buf_free(&paused.body);
  w2a_buf_free(&with.body);
}

/* Two calls paused from their first on_data and resumed by one timer. curl keeps the rest
 * of that read (the tick's other chunks) and hands it back on resume, so both resumes
 * run on_data in one idle pass and both calls wait in the same batch; the first to get
 * its second on_batch cancels both, and the other's must then not run. */
static struct {
  rec r[2];
  uv_timer_t t;
  int npaused;
  int partner_pending; /* the partner's on_data not yet batched when it was cancelled */
} g_pair;

static void pair_resume(uv_timer_t *t) {
  for (int i = 0; i < 2; i++) {
    g_pair.r[i].paused = 0;
    g_pair.r[i].resumes++;
    w2a_http_call_resume(g_pair.r[i].call);
  }
  uv_close((uv_handle_t *)t, NULL);
}

static int pair_data(w2a_http_call *c, const char *p, size_t n, void *ud) {
  rec *r = ud;
  r_data(c, p, n, ud);
  if (r->ndata > 1) return W2A_HTTP_CONTINUE;
  r->paused = 1;
  if (++g_pair.npaused == 2) {
    uv_timer_init(&g_loop, &g_pair.t);
    uv_timer_start(&g_pair.t, pair_resume, 15, 0);
  }
  return W2A_HTTP_PAUSE;
}

static void pair_batch(w2a_http_call *c, void *ud) {
  rec *r = ud;
  batch_note(r, c);
  if (r->nbatch == 2 && !r->done) { /* done: a late on_batch of the partner */
    rec *o = &g_pair.r[r == &g_pair.r[0]];
    g_pair.partner_pending = o->ndata - o->ndata_at_batch;
    w2a_http_call_cancel(c);
    w2a_http_call_cancel(o->call);
    r->done = o->done = -1;
    finish_one();
    finish_one();
  }
}

static const w2a_http_call_cbs pair_cbs = {r_status, pair_data, r_done, pair_batch};

static int g_active_at_end = -1;
static void wait_aborts_idle_tick(uv_timer_t *t) {
  if ((g_srv_aborts >= g_wait_aborts && !w2a_http_client_active(g_cli)) || ++g_wait_ticks > 400) {
    g_active_at_end = (int)w2a_http_client_active(g_cli);
    g_wait_ticks = 0;
    uv_close((uv_handle_t *)t, free_data);
    finish_one();
  }
}

/* w2a_http_call_cancel from inside on_batch: after the socket event's on_data calls
 * (endless drip), after a resume (from the idle pass when curl held data back), in the
 * middle of a Content-Length body, when the transfer completed in the same event (on_done
 * was due next), and for a batched partner. Nothing more for those calls, the server sees
 * the drips abandoned, the client frees them and closes. Also a cancel from on_data after
 * earlier on_data calls of the same event queued the call for on_batch. */
static void test_batch_cancel(void) {
  setup(NULL);
  rec a, b, big, hello, ondata;
  rec_init(&a);
  rec_init(&b);
  rec_init(&big);
  rec_init(&hello);
  rec_init(&ondata);
  memset(&g_pair, 0, sizeof g_pair);
  rec_init(&g_pair.r[0]);
  rec_init(&g_pair.r[1]);
  a.batch_cancel = 2;
  start_cbs(&a, "/drip?n=1000&per=4&each=300&ms=1", NULL, &batch_cbs);
  b.batch_pause = 1; /* the second on_batch comes from the resume */
  b.batch_cancel = 2;
  start_cbs(&b, "/drip?n=1000&per=4&each=300&ms=1", NULL, &batch_cbs);
  big.batch_cancel = 1;
  start_cbs(&big, "/pattern?n=8388608", NULL, &batch_cbs);
  hello.batch_cancel = 1;
  start_cbs(&hello, "/hello", NULL, &batch_cbs);
  ondata.cancel_after = 5000; /* the 100th of 200 chunks that arrive in one read */
  start_cbs(&ondata, "/burst?per=200&each=50", NULL, &batch_cbs);
  for (int i = 0; i < 2; i++)
    start_cbs(&g_pair.r[i], "/drip?n=1000&per=4&each=300&ms=1", NULL, &pair_cbs);
  uv_timer_t *w = malloc(sizeof *w);
  uv_timer_init(&g_loop, w);
  w->data = w;
  g_wait_aborts = 4; /* a, b and the pair */
  g_active_at_end = -1;
  g_pending++;
  uv_timer_start(w, wait_aborts_idle_tick, 5, 5);
  rec *all[] = {&a, &b, &big, &hello, &g_pair.r[0], &g_pair.r[1]};
  batch_guard_start(all, 6);
  run_and_teardown();
  const char *name[] = {"drip", "drip, resumed", "8 MiB", "hello", "pair 0", "pair 1"};
  for (int i = 0; i < 6; i++) {
    T_EQ_INT(all[i]->done, -1); /* nothing after the cancel: check_batches() checks `late` */
    check_batches(all[i], name[i]);
  }
  T_EQ_INT(a.nbatch, 2);
  T_EQ_INT(b.nbatch, 2);
  T_EQ_INT(b.resumes, 1);
  T_EQ_INT(b.nbatch_resumed, 1);
  T_EQ_INT(big.nbatch, 1);
  T_CHECK(big.body.len < 8388608);
  T_CHECK(pattern_ok(&big.body, big.body.len));
  T_EQ_INT(hello.nbatch, 1);
  T_EQ_STR(hello.body.data, "hello");
  T_EQ_INT(g_pair.r[0].nbatch + g_pair.r[1].nbatch, 3);
  T_CHECK(g_pair.partner_pending > 0); /* the partner was waiting in the same batch */
  T_EQ_INT(ondata.done, -1);
  T_EQ_INT(ondata.nbatch, 0);
  T_EQ_INT(ondata.late, 0);
  T_EQ_INT(ondata.body.len, 5000);
  T_EQ_INT(g_srv_aborts, 4);
  T_EQ_INT(g_active_at_end, 0); /* every cancelled call freed before the close */
  for (int i = 0; i < 6; i++)
    w2a_buf_free(&all[i]->body);
  w2a_buf_free(&ondata.body);
}

/* w2a_http_call_pause from inside on_batch, resumed from a timer 15 ms later: the body
 * arrives intact, nothing arrives while paused, and on_batch goes on after the resume. */
static void test_batch_pause_resume(void) {
  setup(NULL);
  enum { BIG = 4 << 20 };
  rec drip, big;
  rec_init(&drip);
  rec_init(&big);
  drip.batch_pause = 5;
  start_cbs(&drip, "/drip?n=80&per=3&each=200&ms=2", NULL, &batch_cbs);
  big.batch_pause = 3;
  char path[64];
  snprintf(path, sizeof path, "/pattern?n=%d", BIG);
  start_cbs(&big, path, NULL, &batch_cbs);
  rec *guarded[] = {&drip, &big};
  batch_guard_start(guarded, 2);
  run_and_teardown();
  T_EQ_INT(drip.done, 1);
  T_EQ_INT(drip.code, 0);
  T_EQ_INT(drip.body.len, 80 * 3 * 200);
  T_CHECK(pattern_ok(&drip.body, 80 * 3 * 200));
  T_EQ_INT(drip.resumes, 5); /* 5 pauses of 15 ms end before the 160 ms drip does */
  T_CHECK(drip.nbatch > 5);
  T_CHECK(drip.nbatch_resumed >= 1);
  T_EQ_INT(drip.data_while_paused, 0);
  T_EQ_INT(drip.batch_while_paused, 0);
  check_batches(&drip, "drip");
  T_EQ_INT(big.done, 1);
  T_EQ_INT(big.code, 0);
  T_EQ_INT(big.body.len, BIG);
  T_CHECK(pattern_ok(&big.body, BIG));
  T_CHECK(big.resumes >= 1);
  T_CHECK(big.nbatch_resumed >= 1);
  T_EQ_INT(big.data_while_paused, 0);
  T_EQ_INT(big.batch_while_paused, 0);
  check_batches(&big, "4 MiB");
  T_EQ_INT(g_srv_aborts, 0);
  w2a_buf_free(&drip.body);
  w2a_buf_free(&big.body);
}

int main(void) {
  /* The server writes to connections the client dropped (cancels mid-body): EPIPE, not a
   * signal, as in the real binaries (cli_serve.c). */
  signal(SIGPIPE, SIG_IGN);
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
  T_RUN(test_batch_order);
  T_RUN(test_batch_null);
  T_RUN(test_batch_cancel);
  T_RUN(test_batch_pause_resume);
  return t_done();
}
