/* internal.h - what the gateway's files share and nobody else sees: the gateway object,
 * the per-request helpers (CORS headers, error replies) and the pieces' entry points.
 * Everything here runs on the gateway's loop thread. */
#ifndef W2A_GW_INTERNAL_H
#define W2A_GW_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "gateway/errors.h"
#include "gateway/gateway.h"
#include "gateway/upstream.h"
#include "http/client.h"
#include "http/server.h"
#include "pool/pool.h"

typedef struct w2a_gw_models w2a_gw_models;
typedef struct w2a_gw_chatreq w2a_gw_chatreq;

struct w2a_gateway {
  uv_loop_t *loop;
  const w2a_config *cfg;
  w2a_pool *pool;
  w2a_http_client *http;
  w2a_http_server *srv;
  w2a_gw_models *models;
  char **keys; /* parsed API_KEYS */
  size_t nkeys;
  char url_multi_agent[1024];
  w2a_gw_up_ident up_ident; /* Warp client-identity headers, formatted once */
  char url_graphql[1024];
  w2a_gw_chatreq *chats;    /* live completions (doubly linked) */
  w2a_gw_up_drains drains;  /* upstream calls reading their body's end after `finished` */
  struct json_tokener *tok; /* request bodies' parser, reset per body (chat.c) */
  size_t nchats;
  w2a_gw_chatreq *spare_chats; /* freed completion objects kept for the next (chat.c) */
  size_t nspare_chats;
  size_t inflight; /* requests being handled (any route) */
  uv_timer_t grace;
  int shutting_down, srv_done, models_closed, grace_closing;
  void (*done)(void *ud);
  void *done_ud;
};

/* "Access-Control-Allow-Origin: …\r\n…" for this request, or "" (cap n). */
void w2a_gw_cors_headers(const w2a_gateway *g, const w2a_http_req *r, char *out, size_t n);
/* Reply with an OpenAI error (status, body, Retry-After, CORS). Completes the request. */
void w2a_gw_send_error(w2a_gateway *g, w2a_http_req *r, const w2a_gw_error *e);
/* Reply 200 with a JSON body (plus CORS and extra headers). Completes the request. */
void w2a_gw_send_json(w2a_gateway *g, w2a_http_req *r, int status, const char *extra,
                      const char *body, size_t len);
/* ADMIN_TOKEN check ("Authorization: Bearer" or "x-admin-token"), constant time. */
int w2a_gw_admin_authorized(const w2a_gateway *g, const w2a_http_req *r);
/* A request finished (any route): counts down inflight and may end a shutdown. */
void w2a_gw_request_done(w2a_gateway *g);
/* A completion object was freed. */
void w2a_gw_maybe_finish(w2a_gateway *g);

/* chat.c: POST /v1/chat/completions. */
void w2a_gw_chat_handle(w2a_gateway *g, w2a_http_req *r);
/* Free the kept completion objects (the gateway's end). */
void w2a_gw_chat_free_spares(w2a_gateway *g);

/* models.c */
int w2a_gw_models_new(w2a_gw_models **out, w2a_gateway *g);
/* Start a catalog refresh when the cache is stale (no-op while one runs). */
void w2a_gw_models_refresh(w2a_gw_models *m);
/* Alias → Warp model id; W2A_ENOTFOUND when the model is unknown. */
int w2a_gw_models_resolve(w2a_gw_models *m, const char *name, char *out, size_t n);
/* GET /v1/models and GET /v1/models/{id}. */
void w2a_gw_models_handle(w2a_gw_models *m, w2a_http_req *r, const char *id);
/* Stop (waits for a running catalog fetch), then free; calls done on the loop. */
void w2a_gw_models_close(w2a_gw_models *m, void (*done)(void *ud), void *ud);

/* debug.c: the admin-token protected protocol routes (/api/encode, …). */
void w2a_gw_debug_handle(w2a_gateway *g, w2a_http_req *r);

#endif
