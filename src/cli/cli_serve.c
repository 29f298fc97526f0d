/* cli_serve.c - `warp2api serve | gateway | pool`: one libuv loop running the gateway,
 * the account pool's admin service, or both (the seed's two services in one process).
 *
 * `gateway` and `pool` share the database file with each other: leases, caps and
 * refresh locks live in it. Only the process that runs the pool service does the
 * background jobs (proactive refresh, quota polls, re-admission); a lone gateway still
 * refreshes on demand and reclaims expired leases lazily.
 *
 * Shutdown: the first SIGTERM/SIGINT stops accepting and lets running streams finish
 * within SHUTDOWN_GRACE (the gateway enforces it); the pieces close in reverse order of
 * their start, each from the previous one's `done`, so nothing is freed while in use. A
 * second signal exits at once. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "common/log.h"
#include "gateway/gateway.h"
#include "http/client.h"
#include "pool/admin.h"
#include "pool/pool.h"

typedef struct serve {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  w2a_http_client *http;
  w2a_pool *pool;
  w2a_admin *admin;
  w2a_gateway *gw;
  int stopping;
} serve;

static void on_http_closed(void *ud) { (void)ud; }

static void on_pool_closed(void *ud) {
  serve *s = ud;
  s->pool = NULL;
  if (s->http) w2a_http_client_close(s->http, on_http_closed, s);
  s->http = NULL;
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
}

static void on_admin_stopped(void *ud) {
  serve *s = ud;
  s->admin = NULL;
  if (s->pool)
    w2a_pool_close(s->pool, on_pool_closed, s);
  else
    on_pool_closed(s);
}

static void on_gateway_stopped(void *ud) {
  serve *s = ud;
  s->gw = NULL;
  if (s->admin)
    w2a_admin_stop(s->admin, on_admin_stopped, s);
  else
    on_admin_stopped(s);
}

static void on_signal(uv_signal_t *h, int signum) {
  serve *s = h->data;
  if (s->stopping) {
    W2A_WARN("second signal %d: exiting now", signum);
    exit(1);
  }
  s->stopping = 1;
  W2A_INFO("signal %d: shutting down", signum);
  if (s->gw)
    w2a_gateway_shutdown(s->gw, on_gateway_stopped, s);
  else
    on_gateway_stopped(s);
}

int w2a_cli_serve(int argc, char **argv, w2a_config *cfg, int gateway, int pool) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: warp2api %s\n\n%s\n", argv[0],
             gateway && pool ? "Run the gateway and the account-pool service in one process."
             : gateway       ? "Run the gateway alone (share DATABASE_PATH with `warp2api pool`)."
                             : "Run the account-pool admin service alone.");
      return 0;
    }
    fprintf(stderr, "warp2api %s: unexpected argument %s\n", argv[0], argv[i]);
    return 2;
  }
  w2a_log_set_component(gateway && pool ? "serve" : gateway ? "gateway" : "pool");
  signal(SIGPIPE, SIG_IGN);

  serve s;
  memset(&s, 0, sizeof s);
  w2a_err err = {0};
  int rc = 1;
  if (uv_loop_init(&s.loop)) {
    fprintf(stderr, "warp2api: cannot create the event loop\n");
    return 1;
  }
  w2a_http_client_opts ho = {
      .proxy = cfg->proxy,
      .ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL,
      .insecure_tls = (int)cfg->insecure_tls,
      .connect_timeout_ms = (uint64_t)cfg->connect_timeout_ms,
  };
  if (w2a_http_client_new(&s.http, &s.loop, &ho, &err)) goto fail;
  if (w2a_pool_open(&s.pool, &s.loop, cfg, s.http,
                    (pool ? W2A_POOL_BACKGROUND : 0) | W2A_POOL_LEASER |
                        (gateway && pool ? W2A_POOL_SOLE : 0),
                    &err))
    goto fail;
  if (pool && w2a_admin_start(&s.admin, &s.loop, cfg, s.pool, &err)) goto fail;
  if (gateway && w2a_gateway_start(&s.gw, &s.loop, cfg, s.pool, s.http, &err)) goto fail;

  uv_signal_init(&s.loop, &s.sigterm);
  uv_signal_init(&s.loop, &s.sigint);
  s.sigterm.data = s.sigint.data = &s;
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  rc = 0;
  goto out;

fail:
  fprintf(stderr, "warp2api %s: %s\n", argv[0], err.msg[0] ? err.msg : "start-up failed");
  /* Unwind what started, in reverse, through the same chain as a signal. */
  s.stopping = 1;
  if (s.gw || s.admin || s.pool || s.http) {
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_init(&s.loop, &s.sigint);
    on_gateway_stopped(&s);
    uv_run(&s.loop, UV_RUN_DEFAULT);
  }
out:
  if (uv_loop_close(&s.loop) == UV_EBUSY) {
    W2A_WARN("event loop closed with handles still open");
  }
  return rc;
}
