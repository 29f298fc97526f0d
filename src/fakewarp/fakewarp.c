/* fakewarp.c - see fakewarp.h: start/stop, the route table, reply helpers, and the
 * accept delay (a request waits accept_delay_ms before it is even looked at, which from
 * the client's side is a server slow to accept/answer). */
#include "fakewarp/fakewarp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fakewarp/auth.h"
#include "fakewarp/control.h"
#include "fakewarp/graphql.h"
#include "fakewarp/stream.h"
#include "fakewarp/tlsfront.h"

typedef struct w2a_fake_delay {
  struct w2a_fake_delay *prev, *next;
  uv_timer_t t;
  w2a_fake *f;
  w2a_http_req *r;
  int done;
} w2a_fake_delay;

int w2a_fake_reply_json(w2a_http_req *r, int status, json_object *body) {
  const char *s =
      json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
  int rc = w2a_http_respond(r, status, "application/json", NULL, s, strlen(s));
  json_object_put(body);
  return rc;
}

int w2a_fake_reply_text(w2a_http_req *r, int status, const char *ctype, const char *body) {
  return w2a_http_respond(r, status, ctype, NULL, body, strlen(body));
}

int w2a_fake_reply_error(w2a_http_req *r, int status, const char *msg) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "error", json_object_new_string(msg));
  return w2a_fake_reply_json(r, status, o);
}

const char *w2a_fake_bearer(const w2a_http_req *r) {
  const char *h = w2a_http_req_header(r, "authorization");
  if (!h || strncasecmp(h, "Bearer ", 7)) return NULL;
  h += 7;
  while (*h == ' ')
    h++;
  return *h ? h : NULL;
}

static void dispatch(w2a_fake *f, w2a_http_req *r) {
  const char *p = r->path;
  int post = !strcmp(r->method, "POST");
  if (f->stopping) {
    w2a_fake_reply_error(r, 503, "shutting down");
  } else if (!strncmp(p, "/_fakewarp/", 11)) {
    if (f->opts.control)
      w2a_fake_control(f, r);
    else
      w2a_fake_reply_error(r, 404, "Not Found");
  } else if (!post) {
    w2a_fake_reply_error(r, 405, "Method Not Allowed");
  } else if (!strcmp(p, "/ai/multi-agent")) {
    w2a_fake_stream_handle(f, r);
  } else if (!strcmp(p, "/proxy/token") || !strcmp(p, "/v1/token")) {
    w2a_fake_auth_token(f, r);
  } else if (!strcmp(p, "/v1/accounts:sendOobCode")) {
    w2a_fake_auth_send_oob(f, r);
  } else if (!strcmp(p, "/v1/accounts:signInWithEmailLink")) {
    w2a_fake_auth_email_link(f, r);
  } else if (!strcmp(p, "/graphql/v2")) {
    w2a_fake_graphql(f, r);
  } else if (!strcmp(p, "/client/login")) {
    w2a_fake_auth_client_login(f, r);
  } else {
    w2a_fake_reply_error(r, 404, "Not Found");
  }
}

static void delay_closed(uv_handle_t *h) {
  w2a_fake_delay *d = h->data;
  w2a_fake *f = d->f;
  if (d->prev)
    d->prev->next = d->next;
  else
    f->delays = d->next;
  if (d->next) d->next->prev = d->prev;
  free(d);
}

static void on_delay(uv_timer_t *t) {
  w2a_fake_delay *d = t->data;
  d->done = 1;
  dispatch(d->f, d->r);
  uv_close((uv_handle_t *)&d->t, delay_closed);
}

static void on_request(w2a_http_req *r, void *ud) {
  w2a_fake *f = ud;
  f->st.http_requests++;
  int delay = f->opts.accept_delay_ms;
  /* Control routes are never delayed: a test must be able to lift the fault. */
  if (delay <= 0 || !strncmp(r->path, "/_fakewarp/", 11)) {
    dispatch(f, r);
    return;
  }
  w2a_fake_delay *d = calloc(1, sizeof *d);
  if (!d) {
    dispatch(f, r);
    return;
  }
  d->f = f;
  d->r = r;
  uv_timer_init(f->loop, &d->t);
  d->t.data = d;
  d->next = f->delays;
  if (f->delays) f->delays->prev = d;
  f->delays = d;
  uv_timer_start(&d->t, on_delay, (uint64_t)delay, 0);
}

static void on_tls_ready(int port, void *ud) {
  w2a_fake *f = ud;
  W2A_INFO("fakewarp: HTTPS+HTTP/2 on %s:%d (nghttpx) -> http://127.0.0.1:%d", f->opts.host, port,
           f->http_port);
  if (f->opts.ready) f->opts.ready(port, f->opts.ud);
}

static void on_tls_failed(const char *why, void *ud) {
  w2a_fake *f = ud;
  if (f->opts.failed) f->opts.failed(why, f->opts.ud);
}

static void free_handle(uv_handle_t *h) { free(h); }

static void on_ready_timer(uv_timer_t *t) {
  w2a_fake *f = t->data;
  uv_close((uv_handle_t *)t, free_handle);
  if (f->opts.ready) f->opts.ready(f->public_port, f->opts.ud);
}

int w2a_fake_start(w2a_fake *f, uv_loop_t *loop, const w2a_fake_opts *o, w2a_err *err) {
  memset(f, 0, sizeof *f);
  f->loop = loop;
  f->opts = *o;
  if (!f->opts.host) f->opts.host = "127.0.0.1";
  w2a_fake_state_init(&f->st);
  int tls = o->tls_cert && o->tls_key && *o->tls_cert && *o->tls_key;
  w2a_http_limits lim = {0};
  lim.max_header_bytes = 64 * 1024;
  lim.max_body_bytes = 32u << 20;
  lim.max_queue_bytes = 64u * 1024u; /* a stream pauses above this (stream.c) */
  lim.idle_timeout_ms = 600000;
  lim.max_connections = o->max_connections > 0 ? o->max_connections : 20000;
  /* Behind nghttpx the server listens on an internal loopback port. */
  int rc = w2a_http_server_listen(&f->http, loop, tls ? "127.0.0.1" : f->opts.host,
                                  tls ? 0 : o->port, &lim, on_request, f, err);
  if (rc) return rc;
  f->http_port = w2a_http_server_port(f->http);
  f->public_port = f->http_port;
  if (tls) {
    w2a_fake_tls_opts to = {0};
    to.nghttpx = o->nghttpx;
    to.host = f->opts.host;
    to.port = o->port;
    to.backend_port = f->http_port;
    to.cert = o->tls_cert;
    to.key = o->tls_key;
    to.ready = on_tls_ready;
    to.failed = on_tls_failed;
    to.ud = f;
    rc = w2a_fake_tls_start(&f->tls, loop, &to, err);
    if (rc) return rc;
    f->public_port = w2a_fake_tls_port(f->tls);
  } else {
    uv_timer_t *t = malloc(sizeof *t);
    if (!t) return w2a_errf(err, W2A_ENOMEM, "out of memory");
    uv_timer_init(loop, t);
    t->data = f;
    uv_timer_start(t, on_ready_timer, 0, 0);
  }
  return 0;
}

static void on_http_down(void *ud) {
  w2a_fake *f = ud;
  f->http = NULL;
  if (f->stopped) f->stopped(f->stopped_ud);
}

void w2a_fake_stop(w2a_fake *f, void (*done)(void *ud), void *ud) {
  if (f->stopping) return;
  f->stopping = 1;
  f->stopped = done;
  f->stopped_ud = ud;
  w2a_fake_stream_abort_all(f);
  for (w2a_fake_delay *d = f->delays; d; d = d->next) {
    if (d->done) continue;
    d->done = 1;
    uv_timer_stop(&d->t);
    w2a_fake_reply_error(d->r, 503, "shutting down");
    uv_close((uv_handle_t *)&d->t, delay_closed);
  }
  if (f->tls) {
    w2a_fake_tls_stop(f->tls);
    f->tls = NULL;
  }
  if (f->http) {
    w2a_http_server_shutdown(f->http, on_http_down, f);
    w2a_http_server_close_all(f->http);
  } else if (done) {
    done(ud);
  }
}

void w2a_fake_free(w2a_fake *f) {
  w2a_fake_state_free(&f->st);
  json_object_put(f->initial_accounts);
  f->initial_accounts = NULL;
}
