/* gateway.c - the HTTP front: listening, routing, client auth, CORS, health, shutdown.
 *
 * Routes
 *   GET  /healthz                 alive (no auth)
 *   GET  /readyz                  pool open and at least one usable account (no auth)
 *   GET  /v1/models[/{id}]        model list (client key)
 *   POST /v1/chat/completions     chat.c (client key)
 *   POST /api/encode|decode|stream-decode, GET /api/schemas   debug.c (ADMIN_TOKEN)
 *   OPTIONS *                     CORS preflight
 *
 * Client keys (API_KEYS) are accepted as "Authorization: Bearer <key>" or "x-api-key:
 * <key>" and compared with w2a_ct_equal against every configured key (no early exit, so
 * timing says nothing about which key or prefix matched). With no keys the gateway
 * binds loopback only, whatever HOST says, and logs that it did.
 *
 * Shutdown: stop accepting (the server closes idle keep-alive connections), give running
 * requests SHUTDOWN_GRACE, then abort the rest (their on_abort runs the requests' own
 * teardown). `done` runs once the server, every completion object and the model fetcher
 * are gone. */
#include "gateway/gateway.h"

#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/internal.h"

/* ---- helpers used by every route ------------------------------------------------------ */

static int origin_allowed(const char *list, const char *origin) {
  size_t ol = strlen(origin);
  const char *p = list;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (*p == ' '))
      p++, len--;
    while (len && p[len - 1] == ' ')
      len--;
    if (len == ol && !strncasecmp(p, origin, ol)) return 1;
    p = end ? end + 1 : NULL;
  }
  return 0;
}

void w2a_gw_cors_headers(const w2a_gateway *g, const w2a_http_req *r, char *out, size_t n) {
  const char *list = g->cfg->cors_origins, *origin = w2a_http_req_header(r, "origin");
  out[0] = 0;
  if (!list || !*list || !origin) return;
  if (!strcmp(list, "*"))
    snprintf(out, n,
             "Access-Control-Allow-Origin: *\r\n"
             "Access-Control-Expose-Headers: Retry-After, X-Warp2api-Usage\r\n");
  else if (origin_allowed(list, origin) && !strpbrk(origin, "\r\n"))
    snprintf(out, n,
             "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
             "Access-Control-Expose-Headers: Retry-After, X-Warp2api-Usage\r\n",
             origin);
}

void w2a_gw_send_json(w2a_gateway *g, w2a_http_req *r, int status, const char *extra,
                      const char *body, size_t len) {
  char hdr[2048], cors[1024];
  size_t cl, el;
  w2a_gw_cors_headers(g, r, cors, sizeof cors);
  /* cors + extra, cut at the buffer like the snprintf it replaces (hot path) */
  cl = strlen(cors);
  el = extra ? strlen(extra) : 0;
  if (cl + el >= sizeof hdr) el = sizeof hdr - 1 - cl;
  memcpy(hdr, cors, cl);
  if (el) memcpy(hdr + cl, extra, el);
  hdr[cl + el] = 0;
  w2a_http_respond(r, status, "application/json", hdr[0] ? hdr : NULL, body, len);
}

void w2a_gw_send_error(w2a_gateway *g, w2a_http_req *r, const w2a_gw_error *e) {
  w2a_buf body;
  char extra[64] = "";
  w2a_buf_init(&body, 16384);
  if (w2a_gw_error_json(&body, e)) {
    w2a_buf_reset(&body);
    w2a_buf_puts(&body, "{\"error\":{\"message\":\"error\",\"type\":\"server_error\",\"param\":"
                        "null,\"code\":\"internal_error\"}}\n");
  }
  if (e->retry_after_s)
    snprintf(extra, sizeof extra, "Retry-After: %llu\r\n", (unsigned long long)e->retry_after_s);
  w2a_gw_send_json(g, r, w2a_gw_error_status(e->kind), extra, body.data, body.len);
  w2a_buf_free(&body);
}

static void reply_error(w2a_gateway *g, w2a_http_req *r, w2a_gw_errkind k, const char *msg) {
  w2a_gw_error e;
  w2a_gw_errorf(&e, k, NULL, "%s", msg);
  w2a_gw_send_error(g, r, &e);
  w2a_gw_request_done(g);
}

/* ---- shutdown bookkeeping ------------------------------------------------------------ */

static void on_grace_close(uv_handle_t *h) {
  w2a_gateway *g = h->data;
  void (*done)(void *) = g->done;
  void *ud = g->done_ud;
  size_t i;
  for (i = 0; i < g->nkeys; i++)
    free(g->keys[i]);
  free(g->keys);
  if (g->tok) json_tokener_free(g->tok);
  w2a_gw_chat_free_spares(g);
  free(g);
  W2A_INFO("gateway stopped");
  if (done) done(ud);
}

void w2a_gw_maybe_finish(w2a_gateway *g) {
  if (!g->shutting_down || !g->srv_done || g->nchats || !g->models_closed || g->grace_closing)
    return;
  g->grace_closing = 1;
  uv_timer_stop(&g->grace);
  uv_close((uv_handle_t *)&g->grace, on_grace_close);
}

void w2a_gw_request_done(w2a_gateway *g) {
  if (g->inflight) g->inflight--;
}

static void on_models_closed(void *ud) {
  w2a_gateway *g = ud;
  g->models = NULL;
  g->models_closed = 1;
  w2a_gw_maybe_finish(g);
}

static void on_srv_done(void *ud) {
  w2a_gateway *g = ud;
  g->srv = NULL;
  g->srv_done = 1;
  w2a_gw_maybe_finish(g);
}

static void on_grace(uv_timer_t *t) {
  w2a_gateway *g = t->data;
  if (g->srv) {
    W2A_WARN("shutdown grace period over: aborting %zu request(s) still running",
             w2a_http_server_inflight(g->srv));
    w2a_http_server_close_all(g->srv);
  }
}

void w2a_gateway_shutdown(w2a_gateway *g, void (*done)(void *ud), void *ud) {
  if (!g || g->shutting_down) return;
  g->shutting_down = 1;
  g->done = done;
  g->done_ud = ud;
  W2A_INFO("gateway: shutting down (%zu request(s) running, grace %lld ms)", g->inflight,
           (long long)g->cfg->shutdown_grace_ms);
  w2a_gw_up_drains_close(&g->drains); /* connection reuse is moot now */
  uv_timer_start(&g->grace, on_grace,
                 g->cfg->shutdown_grace_ms > 0 ? (uint64_t)g->cfg->shutdown_grace_ms : 0, 0);
  w2a_gw_models_close(g->models, on_models_closed, g);
  if (g->srv) w2a_http_server_shutdown(g->srv, on_srv_done, g);
}

int w2a_gateway_port(const w2a_gateway *g) { return g->srv ? w2a_http_server_port(g->srv) : 0; }
size_t w2a_gateway_inflight(const w2a_gateway *g) { return g->inflight; }

/* ---- auth ---------------------------------------------------------------------------- */

static int client_authorized(const w2a_gateway *g, const w2a_http_req *r) {
  const char *auth = w2a_http_req_header(r, "authorization");
  const char *key = w2a_http_req_header(r, "x-api-key");
  size_t i;
  int ok = 0;
  if (!g->nkeys) return 1;
  if (auth && !strncasecmp(auth, "Bearer ", 7)) {
    key = auth + 7;
    while (*key == ' ')
      key++;
  }
  if (!key) return 0;
  for (i = 0; i < g->nkeys; i++)
    ok |= w2a_ct_equal(key, strlen(key), g->keys[i], strlen(g->keys[i]));
  return ok;
}

int w2a_gw_admin_authorized(const w2a_gateway *g, const w2a_http_req *r) {
  const char *tok = g->cfg->admin_token, *auth = w2a_http_req_header(r, "authorization");
  const char *given = w2a_http_req_header(r, "x-admin-token");
  if (auth && !strncasecmp(auth, "Bearer ", 7)) given = auth + 7;
  if (!tok || !*tok || !given) return 0;
  return w2a_ct_equal(given, strlen(given), tok, strlen(tok));
}

/* ---- routing ----------------------------------------------------------------------- */

static void preflight(w2a_gateway *g, w2a_http_req *r) {
  char hdr[2048], cors[1024];
  const char *want = w2a_http_req_header(r, "access-control-request-headers");
  w2a_gw_cors_headers(g, r, cors, sizeof cors);
  if (cors[0])
    snprintf(hdr, sizeof hdr,
             "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
             "Access-Control-Allow-Headers: %s\r\nAccess-Control-Max-Age: 600\r\n",
             cors,
             want && !strpbrk(want, "\r\n") ? want : "authorization, content-type, x-api-key");
  else
    hdr[0] = 0;
  w2a_http_respond(r, 204, NULL, hdr[0] ? hdr : NULL, NULL, 0);
  w2a_gw_request_done(g);
}

static void readyz(w2a_gateway *g, w2a_http_req *r) {
  char body[160];
  int n = g->pool ? w2a_pool_usable_count(g->pool) : -1;
  if (n > 0) {
    snprintf(body, sizeof body, "{\"status\":\"ready\",\"usable_accounts\":%d}\n", n);
    w2a_gw_send_json(g, r, 200, NULL, body, strlen(body));
    w2a_gw_request_done(g);
  } else {
    reply_error(g, r, W2A_GWE_NOT_READY,
                !g->pool ? "not ready: no account pool is open"
                         : "not ready: no usable Warp account (add one, or wait for a "
                           "cooling-down account to recover)");
  }
}

static int hexv(char c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

/* "gpt-5%20(high%20reasoning)" → "gpt-5 (high reasoning)" */
static void pct_decode(const char *s, char *out, size_t n) {
  size_t o = 0;
  while (*s && o + 1 < n) {
    if (*s == '%' && hexv(s[1]) >= 0 && hexv(s[2]) >= 0) {
      out[o++] = (char)(hexv(s[1]) * 16 + hexv(s[2]));
      s += 3;
    } else {
      out[o++] = *s++;
    }
  }
  out[o] = 0;
}

static void handle(w2a_http_req *r, void *ud) {
  w2a_gateway *g = ud;
  const char *p = r->path, *m = r->method;
  int get = !strcmp(m, "GET") || !strcmp(m, "HEAD"), post = !strcmp(m, "POST");
  g->inflight++;
  if (!strcmp(m, "OPTIONS")) {
    preflight(g, r);
    return;
  }
  if (!strcmp(p, "/healthz")) {
    static const char ok[] = "{\"status\":\"ok\"}\n";
    if (!get) return reply_error(g, r, W2A_GWE_METHOD, "use GET");
    w2a_gw_send_json(g, r, 200, NULL, ok, sizeof ok - 1);
    w2a_gw_request_done(g);
    return;
  }
  if (!strcmp(p, "/readyz")) {
    if (!get) return reply_error(g, r, W2A_GWE_METHOD, "use GET");
    readyz(g, r);
    return;
  }
  if (!strncmp(p, "/api/", 5)) {
    w2a_gw_debug_handle(g, r);
    return;
  }
  if (!strncmp(p, "/v1/", 4)) {
    if (!client_authorized(g, r)) {
      w2a_gw_error e;
      w2a_gw_errorf(&e, W2A_GWE_UNAUTHORIZED, NULL,
                    "Invalid API key provided: send it as \"Authorization: Bearer <key>\" or "
                    "\"x-api-key: <key>\"");
      w2a_gw_send_error(g, r, &e);
      w2a_gw_request_done(g);
      return;
    }
    if (!strcmp(p, "/v1/chat/completions")) {
      if (!post) return reply_error(g, r, W2A_GWE_METHOD, "use POST");
      w2a_gw_chat_handle(g, r);
      return;
    }
    if (!strcmp(p, "/v1/models") || !strncmp(p, "/v1/models/", 11)) {
      if (!get) return reply_error(g, r, W2A_GWE_METHOD, "use GET");
      char id[256];
      if (p[10] == '/' && p[11]) pct_decode(p + 11, id, sizeof id);
      w2a_gw_models_handle(g->models, r, p[10] == '/' && p[11] ? id : NULL);
      w2a_gw_request_done(g);
      return;
    }
  }
  if (!strcmp(p, "/")) {
    static const char hello[] =
        "{\"service\":\"warp2api\",\"status\":\"ok\",\"openai_base_url\":\"/v1\"}\n";
    w2a_gw_send_json(g, r, 200, NULL, hello, sizeof hello - 1);
    w2a_gw_request_done(g);
    return;
  }
  {
    char msg[600];
    snprintf(msg, sizeof msg, "no route for %s %.400s", m, p);
    reply_error(g, r, W2A_GWE_NOT_FOUND, msg);
  }
}

/* ---- start ------------------------------------------------------------------------- */

static int is_loopback(const char *h) {
  return !strncmp(h, "127.", 4) || !strcmp(h, "::1") || !strcmp(h, "localhost") ||
         !strcmp(h, "[::1]");
}

static int parse_keys(w2a_gateway *g, const char *list) {
  const char *p = list;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (*p == ' ' || *p == '\t'))
      p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    if (len) {
      char **nk = realloc(g->keys, (g->nkeys + 1) * sizeof *nk);
      if (!nk) return W2A_ENOMEM;
      g->keys = nk;
      if (!(g->keys[g->nkeys] = w2a_strndup(p, len))) return W2A_ENOMEM;
      g->nkeys++;
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}

static void strip_slash(char *s) {
  size_t n = strlen(s);
  while (n && s[n - 1] == '/')
    s[--n] = 0;
}

int w2a_gateway_start(w2a_gateway **out, uv_loop_t *loop, const w2a_config *cfg, w2a_pool *pool,
                      w2a_http_client *http, w2a_err *err) {
  w2a_gateway *g = calloc(1, sizeof *g);
  w2a_http_limits lim = {0};
  const char *host = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
  int rc;
  *out = NULL;
  if (!g) return w2a_errf(err, W2A_ENOMEM, "out of memory");
  g->loop = loop;
  g->cfg = cfg;
  g->pool = pool;
  g->http = http;
  if ((rc = parse_keys(g, cfg->api_keys))) {
    w2a_errf(err, rc, "out of memory");
    goto fail_keys;
  }
  if (!g->nkeys && !is_loopback(host)) {
    W2A_WARN("gateway: API_KEYS is empty, so HOST=%s is ignored and the gateway listens on "
             "127.0.0.1 only; set API_KEYS to serve other hosts",
             host);
    host = "127.0.0.1";
  }
  snprintf(g->url_multi_agent, sizeof g->url_multi_agent, "%s", cfg->warp_base_url);
  strip_slash(g->url_multi_agent);
  snprintf(g->url_graphql, sizeof g->url_graphql, "%.900s/graphql/v2?op=GetFeatureModelChoices",
           g->url_multi_agent);
  strncat(g->url_multi_agent, "/ai/multi-agent",
          sizeof g->url_multi_agent - strlen(g->url_multi_agent) - 1);
  w2a_gw_up_ident_init(&g->up_ident, cfg);
  if ((rc = w2a_gw_models_new(&g->models, g))) {
    w2a_errf(err, rc, "out of memory");
    goto fail_keys;
  }
  lim.max_body_bytes = cfg->max_body_bytes > 0 ? (size_t)cfg->max_body_bytes : 0;
  lim.max_header_bytes = cfg->max_header_bytes > 0 ? (size_t)cfg->max_header_bytes : 0;
  lim.max_queue_bytes = cfg->stream_queue_max_bytes > 0 ? (size_t)cfg->stream_queue_max_bytes : 0;
  rc = w2a_http_server_listen(&g->srv, loop, host, (int)cfg->port, &lim, handle, g, err);
  if (rc) {
    w2a_gw_models_close(g->models, NULL, NULL);
    goto fail_keys;
  }
  w2a_http_server_set_error_fn(g->srv, w2a_gw_error_server_body);
  uv_timer_init(loop, &g->grace);
  g->grace.data = g;
  W2A_INFO("gateway: OpenAI API on http://%s:%d/v1 (%s; upstream %s)", host,
           w2a_http_server_port(g->srv),
           g->nkeys ? "client API keys required" : "no API keys: loopback only, no auth",
           cfg->warp_base_url);
  *out = g;
  w2a_gw_models_refresh(g->models);
  return 0;
fail_keys : {
  size_t i;
  for (i = 0; i < g->nkeys; i++)
    free(g->keys[i]);
  free(g->keys);
  if (g->tok) json_tokener_free(g->tok);
  free(g);
}
  return rc ? rc : W2A_EIO;
}
