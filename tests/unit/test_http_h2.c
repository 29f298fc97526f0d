/* test_http_h2.c - the client speaks HTTP/2 over TLS, with a private CA file.
 *
 * Run by tests/integration/http_h2.sh, which puts Debian's nghttpx (TLS + h2 in front,
 * HTTP/1.1 to the backend) between this program's client and its server:
 *   W2A_H2_BACKEND_PORT  port our server listens on (nghttpx's -b)
 *   W2A_H2_URL           https://localhost:<nghttpx port>
 *   W2A_H2_CA            the self-signed certificate nghttpx serves (used as ca_file)
 * Without those variables (plain ctest unit run) it checks the cleartext path only:
 * the same calls against the server directly report version "1.1". */
#include <stdlib.h>
#include <uv.h>

#include "common/buf.h"
#include "http/client.h"
#include "http/server.h"
#include "t.h"

static uv_loop_t g_loop;
static w2a_http_server *g_srv;
static w2a_http_client *g_cli;
static int g_pending, g_closed;

static void handler(w2a_http_req *r, void *ud) {
  if (!strcmp(r->path, "/stream")) {
    w2a_http_stream_start(r, 200, "text/event-stream", NULL);
    for (int i = 0; i < 100; i++) {
      char line[32];
      int l = snprintf(line, sizeof line, "data: %d\n\n", i);
      w2a_http_stream_write(r, line, (size_t)l);
    }
    w2a_http_stream_end(r);
    return;
  }
  char body[256];
  int l = snprintf(body, sizeof body, "%s %s %zu", r->method, r->path, r->body_len);
  w2a_http_respond(r, 200, "text/plain", NULL, body, (size_t)l);
}

typedef struct rec {
  int status, code, done, pauses;
  char version[8];
  char msg[256];
  w2a_buf body;
} rec;

static void on_closed(void *ud) { g_closed++; }

static void r_status(w2a_http_call *c, int status, const char *ct, void *ud) {
  rec *r = ud;
  r->status = status;
}
static void free_handle(uv_handle_t *h) { free(h); }

static void resume_cb(uv_timer_t *t) {
  w2a_http_call_resume(t->data);
  uv_close((uv_handle_t *)t, free_handle);
}

/* The stream pauses after each of its first pieces and resumes 10 ms later: over h2 the
 * stream is paused, not the connection, and no byte is lost or repeated. */
static int r_data(w2a_http_call *c, const char *p, size_t n, void *ud) {
  rec *r = ud;
  w2a_buf_append(&r->body, p, n);
  if (r->pauses < 0 && r->pauses > -5) {
    r->pauses--;
    uv_timer_t *t = malloc(sizeof *t);
    uv_timer_init(&g_loop, t);
    t->data = c;
    uv_timer_start(t, resume_cb, 10, 0);
    return W2A_HTTP_PAUSE;
  }
  return W2A_HTTP_CONTINUE;
}
static void r_done(w2a_http_call *c, int code, const char *msg, void *ud) {
  rec *r = ud;
  r->done++;
  r->code = code;
  snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
  snprintf(r->version, sizeof r->version, "%s", w2a_http_call_version(c));
  if (--g_pending == 0) {
    w2a_http_client_close(g_cli, on_closed, NULL);
    w2a_http_server_shutdown(g_srv, on_closed, NULL);
    w2a_http_server_close_all(g_srv);
  }
}

static const w2a_http_call_cbs cbs = {r_status, r_data, r_done, NULL};

static void run(const char *base, int backend_port, const char *ca, const char *want_version) {
  T_EQ_INT(uv_loop_init(&g_loop), 0);
  w2a_err err = {0};
  int lrc =
      w2a_http_server_listen(&g_srv, &g_loop, "127.0.0.1", backend_port, NULL, handler, NULL, &err);
  T_EQ_INT(lrc, 0);
  if (lrc) { /* the port was taken meanwhile: nothing to test against */
    fprintf(stderr, "listen: %s\n", err.msg);
    uv_run(&g_loop, UV_RUN_DEFAULT);
    uv_loop_close(&g_loop);
    return;
  }
  char direct[64];
  snprintf(direct, sizeof direct, "http://127.0.0.1:%d", w2a_http_server_port(g_srv));
  if (!base) base = direct;
  w2a_http_client_opts o = {.ca_file = ca, .connect_timeout_ms = 5000};
  T_EQ_INT(w2a_http_client_new(&g_cli, &g_loop, &o, &err), 0);
  enum { N = 4 };
  rec r[N];
  const char *paths[N] = {"/a", "/b", "/stream", "/post"};
  char urls[N][256];
  g_pending = N;
  g_closed = 0;
  for (int i = 0; i < N; i++) { /* concurrently: over h2 they share one connection */
    memset(&r[i], 0, sizeof r[i]);
    w2a_buf_init(&r[i].body, 1 << 20);
    snprintf(urls[i], sizeof urls[i], "%s%s", base, paths[i]);
    if (i == 2) r[i].pauses = -1;
    w2a_http_request rq = {.url = urls[i], .timeout_ms = 10000};
    if (i == 3) {
      rq.body = "hello";
      rq.body_len = 5;
    }
    T_CHECK(w2a_http_client_start(g_cli, &rq, &cbs, &r[i]) != NULL);
  }
  uv_run(&g_loop, UV_RUN_DEFAULT);
  T_EQ_INT(g_closed, 2);
  T_EQ_INT(uv_loop_close(&g_loop), 0);
  for (int i = 0; i < N; i++) {
    if (r[i].code) fprintf(stderr, "  %s: %s\n", paths[i], r[i].msg);
    T_EQ_INT(r[i].done, 1);
    T_EQ_INT(r[i].code, 0);
    T_EQ_INT(r[i].status, 200);
    T_EQ_STR(r[i].version, want_version);
  }
  T_EQ_STR(r[0].body.data, "GET /a 0");
  T_EQ_STR(r[3].body.data, "POST /post 5");
  int ok = r[2].body.data != NULL, nl = 0;
  for (const char *p = r[2].body.data; ok && *p; nl++) {
    char want[32];
    int l = snprintf(want, sizeof want, "data: %d\n\n", nl);
    ok = !strncmp(p, want, (size_t)l);
    p += l;
  }
  T_CHECK(ok);
  T_EQ_INT(nl, 100);
  T_CHECK(r[2].pauses < -1); /* it did pause */
  fprintf(stderr, "  %s: version %s for all %d calls\n", base, r[0].version, N);
  for (int i = 0; i < N; i++)
    w2a_buf_free(&r[i].body);
}

static void test_h2_or_cleartext(void) {
  const char *url = getenv("W2A_H2_URL");
  const char *port = getenv("W2A_H2_BACKEND_PORT");
  const char *ca = getenv("W2A_H2_CA");
  if (url && port && ca)
    run(url, atoi(port), ca, "2");
  else
    run(NULL, 0, NULL, "1.1");
}

/* Without the CA the TLS handshake must fail with a clear message. */
static void test_untrusted(void) {
  const char *url = getenv("W2A_H2_URL");
  if (!url) return;
  T_EQ_INT(uv_loop_init(&g_loop), 0);
  w2a_err err = {0};
  T_EQ_INT(w2a_http_server_listen(&g_srv, &g_loop, "127.0.0.1", 0, NULL, handler, NULL, &err), 0);
  w2a_http_client_opts o = {0}; /* system CAs only: the self-signed cert is unknown */
  T_EQ_INT(w2a_http_client_new(&g_cli, &g_loop, &o, &err), 0);
  rec r = {0};
  w2a_buf_init(&r.body, 1024);
  char u[256];
  snprintf(u, sizeof u, "%s/a", url);
  w2a_http_request rq = {.url = u};
  g_pending = 1;
  g_closed = 0;
  T_CHECK(w2a_http_client_start(g_cli, &rq, &cbs, &r) != NULL);
  uv_run(&g_loop, UV_RUN_DEFAULT);
  T_EQ_INT(uv_loop_close(&g_loop), 0);
  T_EQ_INT(r.code, W2A_EIO);
  fprintf(stderr, "  untrusted: %s\n", r.msg);
  T_CHECK(strstr(r.msg, "TLS") == r.msg);
  w2a_buf_free(&r.body);
}

int main(void) {
  T_RUN(test_h2_or_cleartext);
  T_RUN(test_untrusted);
  return t_done();
}
