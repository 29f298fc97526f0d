/* upstream.h - one attempt of one completion against Warp's /ai/multi-agent.
 *
 * An attempt POSTs the packed Request with the account's ID token and the x-warp-*
 * client headers (spec §1.1), decodes the event stream (src/proto/sse.h → ResponseEvent
 * → src/proto/events.h) and hands the caller neutral w2a_gw_events. It ends exactly once
 * with on_end and a classified result, unless the caller cancels it first (then no
 * callback runs at all).
 *
 * Timeouts (each its own result kind, so each has its own error): connect (the HTTP
 * client's), first event (request sent → first SSE event), idle (between events; not
 * counted while the caller holds the attempt paused for back-pressure), total. One
 * uv_timer serves the three; the attempt frees itself in that timer's close callback, so
 * it never frees anything on curl's stack.
 *
 * The attempt ends at Warp's `finished` event, which is what lets the caller fail over or
 * answer without delay. The HTTP call is not cancelled there, though: with a drain set
 * (w2a_gw_up_opts.drains) it is left to read the rest of the body (the chunked terminator,
 * normally in the same read or the next), so libcurl keeps the connection for the next
 * request instead of closing it; nothing is delivered after on_end, and a server that does
 * not end the body within W2A_GW_UP_DRAIN_MS is cut off. Without a drain set, or once the
 * set is closed (shutdown), the call is cancelled at `finished` (the connection closes). */
#ifndef W2A_GW_UPSTREAM_H
#define W2A_GW_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "gateway/map_response.h"
#include "http/client.h"

typedef struct w2a_gw_upstream w2a_gw_upstream;

typedef enum w2a_gw_up_kind {
  W2A_UP_OK = 0,    /* a good `finished` (done, max tokens, context window, other) */
  W2A_UP_HTTP,      /* non-200 status; body holds (the start of) the error body */
  W2A_UP_CONNECT,   /* could not connect (refused, DNS, TLS, proxy) */
  W2A_UP_TRANSPORT, /* the connection failed after it was established */
  W2A_UP_TIMEOUT_CONNECT,
  W2A_UP_TIMEOUT_FIRST, /* no event within first_event_timeout */
  W2A_UP_TIMEOUT_IDLE,  /* silence between events longer than idle_timeout */
  W2A_UP_TIMEOUT_TOTAL, /* the whole answer took longer than total_timeout */
  W2A_UP_EMPTY,         /* 200 without a single event */
  W2A_UP_TRUNCATED,     /* events, then EOF without `finished` */
  W2A_UP_FINISH_ERROR,  /* `finished` with quota_limit, llm_unavailable, internal_error */
  W2A_UP_PROTOCOL,      /* undecodable stream (bad base64, bad protobuf, event over cap) */
  W2A_UP_STOPPED,       /* the caller's on_event asked to stop (its reason is its own) */
} w2a_gw_up_kind;

typedef struct w2a_gw_up_result {
  w2a_gw_up_kind kind;
  int http_status;          /* 0 when no response head arrived */
  w2a_gw_finish finish;     /* W2A_UP_FINISH_ERROR / W2A_UP_OK */
  char message[1024];       /* error body, internal_error text or transport error */
  uint64_t events;          /* ResponseEvents decoded */
  const char *http_version; /* "2" or "1.1" when known, else "" */
} w2a_gw_up_result;

/* The attempts still draining their body after `finished`, owned by the caller (one per
 * gateway). Loop thread only. */
typedef struct w2a_gw_up_drains {
  w2a_gw_upstream *head;
  size_t n;
  int closed;
} w2a_gw_up_drains;

#define W2A_GW_UP_DRAIN_MS 2000

/* Cancel every draining call now and drain no more (shutdown). The set may be freed after
 * this returns: the attempts' own memory goes in their close callbacks, which do not touch
 * the set. */
void w2a_gw_up_drains_close(w2a_gw_up_drains *d);

typedef struct w2a_gw_up_cbs {
  /* Text, reasoning, tool calls and the good FINISH. Non-zero stops the attempt
   * (on_end then reports W2A_UP_STOPPED). */
  int (*on_event)(void *ud, const w2a_gw_event *ev);
  void (*on_end)(void *ud, const w2a_gw_up_result *res);
  /* Optional: every on_event of what one socket event brought (one or several reads,
   * each perhaps several pieces after HTTP chunk decoding) has run, and the attempt is
   * still going. Lets the caller write what those events produced in one go; a pause
   * asked for here takes effect before the next piece. */
  void (*on_batch)(void *ud);
} w2a_gw_up_cbs;

typedef struct w2a_gw_up_ident {
  char ver[160], oscat[160], osname[160], osver[160];
} w2a_gw_up_ident;

typedef struct w2a_gw_up_opts {
  const char *url;              /* …/ai/multi-agent */
  const w2a_config *cfg;        /* client version, OS headers, timeouts, SSE cap */
  w2a_gw_up_drains *drains;     /* NULL: cancel the call at `finished` */
  const w2a_gw_up_ident *ident; /* NULL: the client headers are formatted per call from cfg */
} w2a_gw_up_opts;

/* Fill `id` with Warp's client-identity headers (version, OS) from cfg: they never change
 * while cfg lives, so a caller formats them once and passes them in w2a_gw_up_opts. */
void w2a_gw_up_ident_init(w2a_gw_up_ident *id, const w2a_config *cfg);

int w2a_gw_up_start(w2a_gw_upstream **out, uv_loop_t *loop, w2a_http_client *http,
                    const w2a_gw_up_opts *o, const char *id_token, const void *body, size_t len,
                    const w2a_gw_up_cbs *cbs, void *ud);
/* Back-pressure: stop reading the upstream (idle timer suspended) / read again. */
void w2a_gw_up_pause(w2a_gw_upstream *u);
void w2a_gw_up_resume(w2a_gw_upstream *u);
/* Stop now; no callback runs afterwards. Idempotent per attempt; u is invalid after. */
void w2a_gw_up_cancel(w2a_gw_upstream *u);

/* Convert one decoded Warp event (src/proto/events.h) to the gateway's neutral event;
 * returns 0 when the event carries nothing for the client (init). Exposed for tests. */
struct w2a_ev;
int w2a_gw_up_convert(const struct w2a_ev *in, w2a_gw_event *out);

#endif
