/* tlsfront.c - see tlsfront.h. */
#include "fakewarp/tlsfront.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

#define PROBE_MS 50
#define PROBE_TRIES 200

struct w2a_fake_tls {
  uv_loop_t *loop;
  w2a_fake_tls_opts o;
  uv_process_t proc;
  uv_timer_t probe;
  uv_tcp_t conn;
  uv_connect_t creq;
  int port;
  int tries;
  int exited, stopping, ready_sent, conn_open;
  int open_handles; /* proc + probe (+ conn while a probe runs) */
};

/* The kernel picks a free port; there is a small window before nghttpx binds it. */
static int free_port(const char *host) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, host, &a.sin_addr);
  socklen_t l = sizeof a;
  int port = -1;
  if (!bind(fd, (struct sockaddr *)&a, sizeof a) && !getsockname(fd, (struct sockaddr *)&a, &l))
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void on_closed(uv_handle_t *h) {
  w2a_fake_tls *t = h->data;
  if (--t->open_handles == 0) free(t);
}

static void fail(w2a_fake_tls *t, const char *why) {
  if (t->stopping || t->ready_sent) return;
  t->ready_sent = 1; /* report once */
  if (t->o.failed) t->o.failed(why, t->o.ud);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  w2a_fake_tls *t = p->data;
  t->exited = 1;
  if (!t->stopping) {
    W2A_ERROR("fakewarp: nghttpx exited (status %lld, signal %d)", (long long)status, sig);
    fail(t, "nghttpx exited");
  }
  uv_close((uv_handle_t *)&t->proc, on_closed);
}

static void probe_later(w2a_fake_tls *t);

static void on_conn_closed(uv_handle_t *h) {
  w2a_fake_tls *t = h->data;
  t->conn_open = 0;
  on_closed(h);
}

static void on_connect(uv_connect_t *req, int status) {
  w2a_fake_tls *t = req->data;
  uv_close((uv_handle_t *)&t->conn, on_conn_closed);
  if (t->stopping) return;
  if (status == 0) {
    if (!t->ready_sent) {
      t->ready_sent = 1;
      if (t->o.ready) t->o.ready(t->port, t->o.ud);
    }
    return;
  }
  probe_later(t);
}

static void on_probe(uv_timer_t *tm) {
  w2a_fake_tls *t = tm->data;
  if (t->stopping || t->exited || t->conn_open) return;
  if (++t->tries > PROBE_TRIES) {
    fail(t, "nghttpx did not open its port");
    return;
  }
  struct sockaddr_in a;
  uv_ip4_addr(t->o.host, t->port, &a);
  uv_tcp_init(t->loop, &t->conn);
  t->conn.data = t;
  t->conn_open = 1;
  t->open_handles++;
  t->creq.data = t;
  if (uv_tcp_connect(&t->creq, &t->conn, (const struct sockaddr *)&a, on_connect)) {
    uv_close((uv_handle_t *)&t->conn, on_conn_closed);
    probe_later(t);
  }
}

static void probe_later(w2a_fake_tls *t) { uv_timer_start(&t->probe, on_probe, PROBE_MS, 0); }

int w2a_fake_tls_start(w2a_fake_tls **out, uv_loop_t *loop, const w2a_fake_tls_opts *o,
                       w2a_err *err) {
  w2a_fake_tls *t = calloc(1, sizeof *t);
  if (!t) return w2a_errf(err, W2A_ENOMEM, "out of memory");
  t->loop = loop;
  t->o = *o;
  t->port = o->port ? o->port : free_port(o->host);
  if (t->port <= 0) {
    free(t);
    return w2a_errf(err, W2A_EIO, "no free port for TLS");
  }
  const char *bin = o->nghttpx;
  if (!bin || !*bin) bin = access("/usr/sbin/nghttpx", X_OK) == 0 ? "/usr/sbin/nghttpx" : "nghttpx";
  char fe[128], be[160];
  snprintf(fe, sizeof fe, "--frontend=%s,%d", o->host, t->port);
  snprintf(be, sizeof be, "--backend=127.0.0.1,%d;;proto=http/1.1", o->backend_port);
  char *args[] = {(char *)bin,
                  fe,
                  be,
                  "--single-process",
                  "--conf=/dev/null",
                  "--no-ocsp",
                  "--no-via",
                  "--no-server-rewrite",
                  "--log-level=WARN",
                  "--errorlog-file=/dev/stderr",
                  "--backend-read-timeout=1h",
                  "--frontend-read-timeout=1h",
                  "--frontend-http2-read-timeout=1h",
                  "--stream-read-timeout=0",
                  "--stream-write-timeout=0",
                  "--backend-keep-alive-timeout=10s",
                  "--backend-connections-per-host=10000",
                  "--worker-frontend-connections=0",
                  (char *)o->key,
                  (char *)o->cert,
                  NULL};
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 2;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  uv_process_options_t po = {0};
  po.file = bin;
  po.args = args;
  po.exit_cb = on_exit_cb;
  po.stdio = stdio;
  po.stdio_count = 3;
  t->proc.data = t;
  int rc = uv_spawn(loop, &t->proc, &po);
  if (rc) {
    /* A handle that failed to spawn must still be closed. */
    t->open_handles = 1;
    t->stopping = 1;
    uv_close((uv_handle_t *)&t->proc, on_closed);
    return w2a_errf(err, W2A_EIO, "cannot run %s: %s", bin, uv_strerror(rc));
  }
  uv_timer_init(loop, &t->probe);
  t->probe.data = t;
  t->open_handles = 2;
  probe_later(t);
  *out = t;
  return 0;
}

int w2a_fake_tls_port(const w2a_fake_tls *t) { return t->port; }

void w2a_fake_tls_stop(w2a_fake_tls *t) {
  if (!t || t->stopping) return;
  t->stopping = 1;
  uv_timer_stop(&t->probe);
  uv_close((uv_handle_t *)&t->probe, on_closed);
  if (!t->exited) uv_process_kill(&t->proc, SIGTERM); /* exit_cb closes the handle */
}
