/* upstream.c - one attempt against /ai/multi-agent (see upstream.h).
 *
 * Ownership: the attempt owns its HTTP call, its SSE decoder, its event interpreter and
 * one timer. It ends through end_attempt() (once: result delivered, call cancelled,
 * timer closed) or w2a_gw_up_cancel() (no result); either way the memory goes in the
 * timer's close callback, never on curl's stack. `ended` guards against a second end.
 *
 * Draining: an attempt that ended at `finished` with its call still open goes on the
 * caller's drain list (`draining`), its timer re-armed to W2A_GW_UP_DRAIN_MS. on_done (the
 * body ended: curl keeps the connection), the timer (cut off) or w2a_gw_up_drains_close()
 * (shutdown) takes it off the list and disposes of it. No callback of the caller runs after
 * on_end, so the caller may free its side at once. The lease the caller holds is not tied
 * to the connection (the account is only a header of the request), so it is reported at
 * `finished` as before. */
#include "gateway/upstream.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/log.h"
#include "proto/events.h"
#include "proto/pbjson.h"
#include "proto/sse.h"
#include "response.pb-c.h"

#define ERRBODY_MAX 4096
#define ARENA_BLOCK 8192       /* first block of the per-event unpack arena */
#define ARENA_KEEP (64u << 10) /* more than this is given back after the event */
#define STOP_FINISHED 1001     /* sse/events callback codes, distinct from W2A_E* */
#define STOP_CALLER 1002

struct w2a_gw_upstream {
  uv_timer_t timer;
  uv_loop_t *loop;
  w2a_http_call *call;
  w2a_gw_up_cbs cbs;
  void *ud;
  const w2a_config *cfg;
  w2a_sse sse;
  w2a_events ev;
  /* Each ResponseEvent is unpacked into this arena, rewound after the event (one block
   * is kept, sized to what the last event needed, up to ARENA_KEEP). */
  w2a_arena ar;
  ProtobufCAllocator pa; /* over ar */
  w2a_buf errbody;
  void *body;
  size_t body_len;
  int status;
  uint64_t start_ms, last_ms;
  int got_event, paused, in_data, ended, draining;
  w2a_gw_up_drains *drains;
  w2a_gw_upstream *dnext, *dprev; /* on drains while draining */
  w2a_gw_up_result res;
};

/* An attempt and its arena's first block in one allocation: with the block apart that was
 * two large-bin mallocs per attempt (glibc consolidates its fast bins for each). The block
 * is plain bytes of this malloc'd object, used only by the arena. */
typedef struct up_mem {
  w2a_gw_upstream u;
  alignas(max_align_t) unsigned char first[W2A_ARENA_FIRST_BYTES(ARENA_BLOCK)];
} up_mem;

static void on_timer_close(uv_handle_t *h) {
  w2a_gw_upstream *u = h->data;
  w2a_sse_free(&u->sse);
  w2a_events_free(&u->ev);
  w2a_arena_release(&u->ar);
  w2a_buf_free(&u->errbody);
  free(u->body);
  free(u);
}

static void dispose(w2a_gw_upstream *u) {
  if (u->call) {
    w2a_http_call *c = u->call;
    u->call = NULL;
    w2a_http_call_cancel(c);
  }
  uv_timer_stop(&u->timer);
  uv_close((uv_handle_t *)&u->timer, on_timer_close);
}

static void on_timer(uv_timer_t *t);

static void drain_unlink(w2a_gw_upstream *u) {
  w2a_gw_up_drains *d = u->drains;
  if (!u->draining) return;
  u->draining = 0;
  if (u->dprev)
    u->dprev->dnext = u->dnext;
  else
    d->head = u->dnext;
  if (u->dnext) u->dnext->dprev = u->dprev;
  u->dnext = u->dprev = NULL;
  d->n--;
}

static void end_attempt(w2a_gw_upstream *u, w2a_gw_up_kind kind) {
  int drain;
  if (u->ended) return;
  u->ended = 1;
  u->res.kind = kind;
  u->res.http_status = u->status;
  u->res.events = u->ev.events;
  if (u->call) {
    const char *v = w2a_http_call_version(u->call);
    u->res.http_version = v ? v : "";
  }
  /* A complete answer: let curl read the body's end so it can keep the connection. */
  drain = u->call && u->drains && !u->drains->closed &&
          (kind == W2A_UP_OK || kind == W2A_UP_FINISH_ERROR);
  /* Cancel first: the caller may start the next attempt from on_end. */
  if (u->call && !drain) {
    w2a_http_call *c = u->call;
    u->call = NULL;
    w2a_http_call_cancel(c);
  }
  uv_timer_stop(&u->timer);
  if (drain) {
    w2a_gw_up_drains *d = u->drains;
    u->draining = 1;
    u->dprev = NULL;
    u->dnext = d->head;
    if (d->head) d->head->dprev = u;
    d->head = u;
    d->n++;
    if (u->paused) { /* held for back-pressure: nothing more goes to the caller */
      u->paused = 0;
      if (!u->in_data) w2a_http_call_resume(u->call);
    }
    uv_timer_start(&u->timer, on_timer, W2A_GW_UP_DRAIN_MS, 0);
  }
  u->cbs.on_end(u->ud, &u->res);
  if (!drain) uv_close((uv_handle_t *)&u->timer, on_timer_close);
}

void w2a_gw_up_drains_close(w2a_gw_up_drains *d) {
  d->closed = 1;
  while (d->head) {
    w2a_gw_upstream *u = d->head;
    drain_unlink(u);
    dispose(u);
  }
}

/* ---- timers ---------------------------------------------------------------------- */

static void arm(w2a_gw_upstream *u) {
  uint64_t now = uv_now(u->loop), next = UINT64_MAX;
  const w2a_config *c = u->cfg;
  if (c->total_timeout_ms > 0) next = u->start_ms + (uint64_t)c->total_timeout_ms;
  if (!u->got_event && c->first_event_timeout_ms > 0) {
    uint64_t d = u->start_ms + (uint64_t)c->first_event_timeout_ms;
    if (d < next) next = d;
  } else if (u->got_event && !u->paused && c->idle_timeout_ms > 0) {
    uint64_t d = u->last_ms + (uint64_t)c->idle_timeout_ms;
    if (d < next) next = d;
  }
  if (next == UINT64_MAX) return;
  uv_timer_start(&u->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
  w2a_gw_upstream *u = t->data;
  uint64_t now = uv_now(u->loop);
  const w2a_config *c = u->cfg;
  if (u->draining) { /* the body did not end within W2A_GW_UP_DRAIN_MS of `finished` */
    W2A_DEBUG("upstream: body not ended %d ms after finished; closing the connection",
              W2A_GW_UP_DRAIN_MS);
    drain_unlink(u);
    dispose(u);
    return;
  }
  if (u->ended) return;
  if (c->total_timeout_ms > 0 && now >= u->start_ms + (uint64_t)c->total_timeout_ms) {
    snprintf(u->res.message, sizeof u->res.message,
             "Warp did not finish its answer within the total timeout (%lld s)",
             (long long)(c->total_timeout_ms / 1000));
    end_attempt(u, W2A_UP_TIMEOUT_TOTAL);
  } else if (!u->got_event && c->first_event_timeout_ms > 0 &&
             now >= u->start_ms + (uint64_t)c->first_event_timeout_ms) {
    snprintf(u->res.message, sizeof u->res.message,
             "Warp sent no event within the first-event timeout (%lld s)",
             (long long)(c->first_event_timeout_ms / 1000));
    end_attempt(u, W2A_UP_TIMEOUT_FIRST);
  } else if (u->got_event && !u->paused && c->idle_timeout_ms > 0 &&
             now >= u->last_ms + (uint64_t)c->idle_timeout_ms) {
    snprintf(u->res.message, sizeof u->res.message,
             "Warp went silent for longer than the idle timeout (%lld s) mid-answer",
             (long long)(c->idle_timeout_ms / 1000));
    end_attempt(u, W2A_UP_TIMEOUT_IDLE);
  } else {
    arm(u);
  }
}

/* ---- events ---------------------------------------------------------------------- */

int w2a_gw_up_convert(const struct w2a_ev *in, w2a_gw_event *out) {
  size_t i;
  memset(out, 0, sizeof *out);
  switch (in->kind) {
  case W2A_EV_TEXT:
  case W2A_EV_REASONING:
    out->kind = in->kind == W2A_EV_TEXT ? W2A_GW_EV_TEXT : W2A_GW_EV_REASONING;
    out->text = in->text;
    out->len = in->len;
    return 1;
  case W2A_EV_TOOL_CALL:
    out->kind = W2A_GW_EV_TOOL_CALL;
    out->call_id = in->tool_call_id;
    out->name = in->name;
    out->args_json = in->args_json;
    return 1;
  case W2A_EV_FINISHED:
    out->kind = W2A_GW_EV_FINISH;
    switch (in->reason) {
    case W2A_FINISH_DONE: out->finish = W2A_GW_FIN_DONE; break;
    case W2A_FINISH_MAX_TOKENS: out->finish = W2A_GW_FIN_MAX_TOKENS; break;
    case W2A_FINISH_CONTEXT_EXCEEDED: out->finish = W2A_GW_FIN_CONTEXT_WINDOW; break;
    case W2A_FINISH_QUOTA: out->finish = W2A_GW_FIN_QUOTA; break;
    case W2A_FINISH_LLM_UNAVAILABLE: out->finish = W2A_GW_FIN_LLM_UNAVAILABLE; break;
    case W2A_FINISH_INTERNAL_ERROR: out->finish = W2A_GW_FIN_INTERNAL_ERROR; break;
    default: out->finish = W2A_GW_FIN_OTHER; break;
    }
    out->error = in->error_message;
    if (in->n_usage) {
      out->has_usage = 1;
      out->prompt_tokens = in->input_tokens;
      out->completion_tokens = in->output_tokens;
      for (i = 0; i < in->n_usage; i++)
        out->cached_tokens += in->usage[i]->input_cache_read;
    }
    return 1;
  default: return 0;
  }
}

static int on_ev(void *ud, const w2a_ev *in) {
  w2a_gw_upstream *u = ud;
  w2a_gw_event ev;
  if (!w2a_gw_up_convert(in, &ev)) return 0;
  if (ev.kind == W2A_GW_EV_FINISH) {
    u->res.finish = ev.finish;
    if (w2a_gw_finish_is_error(ev.finish)) {
      snprintf(u->res.message, sizeof u->res.message, "%s%s%s", w2a_gw_finish_name(ev.finish),
               ev.error && *ev.error ? ": " : "", ev.error ? ev.error : "");
      return STOP_FINISHED;
    }
    if (u->cbs.on_event(u->ud, &ev)) return STOP_CALLER;
    return STOP_FINISHED;
  }
  return u->cbs.on_event(u->ud, &ev) ? STOP_CALLER : 0;
}

static int on_sse(void *ud, const w2a_sse_event *sev) {
  w2a_gw_upstream *u = ud;
  w2a_err err = {0};
  int rc, undecodable = 0;
  u->got_event = 1;
  u->last_ms = uv_now(u->loop);
  if (sev->done) return 0; /* Warp sends no [DONE]; tolerate one */
  /* Validated before anything is read (protobuf-c 1.4.1 misbehaves on some malformed
   * input, and these bytes come from the network); the common text event is read from
   * the wire, any other unpacked into the arena. */
  rc = w2a_events_feed_wire(&u->ev, sev->data, sev->len, &u->pa, on_ev, u, &undecodable, &err);
  w2a_arena_reset(&u->ar); /* the event interpreter keeps nothing of the event (it copies) */
  if (undecodable) {
    snprintf(u->res.message, sizeof u->res.message,
             "undecodable ResponseEvent (%zu bytes) at stream offset %llu: %s", sev->len,
             (unsigned long long)sev->offset, err.msg);
    return W2A_EINVAL;
  }
  if (rc < 0 && !u->res.message[0])
    snprintf(u->res.message, sizeof u->res.message, "bad ResponseEvent: %s", err.msg);
  return rc;
}

static void after_feed(w2a_gw_upstream *u, int rc, const w2a_err *err) {
  if (rc == STOP_FINISHED)
    end_attempt(u, w2a_gw_finish_is_error(u->res.finish) ? W2A_UP_FINISH_ERROR : W2A_UP_OK);
  else if (rc == STOP_CALLER)
    end_attempt(u, W2A_UP_STOPPED);
  else if (rc) {
    if (!u->res.message[0])
      snprintf(u->res.message, sizeof u->res.message, "bad event stream: %s", err->msg);
    end_attempt(u, W2A_UP_PROTOCOL);
  }
}

/* ---- HTTP callbacks ---------------------------------------------------------------- */

static void on_status(w2a_http_call *c, int status, const char *ctype, void *ud) {
  w2a_gw_upstream *u = ud;
  u->status = status;
  W2A_DEBUG("upstream: HTTP %d (%s)", status, ctype ? ctype : "");
}

static int on_data(w2a_http_call *c, const char *p, size_t n, void *ud) {
  w2a_gw_upstream *u = ud;
  w2a_err err = {0};
  int rc;
  if (u->ended) return W2A_HTTP_CONTINUE;
  if (u->status != 200) {
    size_t room = ERRBODY_MAX - u->errbody.len;
    w2a_buf_append(&u->errbody, p, n < room ? n : room);
    return W2A_HTTP_CONTINUE;
  }
  u->in_data = 1;
  rc = w2a_sse_feed(&u->sse, p, n, on_sse, u, &err);
  u->in_data = 0;
  if (rc) {
    after_feed(u, rc, &err);
    return W2A_HTTP_CONTINUE;
  }
  return u->paused ? W2A_HTTP_PAUSE : W2A_HTTP_CONTINUE;
}

/* The end of a socket event's data: the caller writes what its events produced. */
static void on_call_batch(w2a_http_call *c, void *ud) {
  w2a_gw_upstream *u = ud;
  if (!u->ended && u->status == 200 && u->cbs.on_batch) u->cbs.on_batch(u->ud);
}

static void on_done(w2a_http_call *c, int code, const char *errmsg, void *ud) {
  w2a_gw_upstream *u = ud;
  w2a_err err = {0};
  int rc;
  if (u->draining) { /* the body ended: curl keeps the connection; the client frees c */
    u->call = NULL;
    drain_unlink(u);
    dispose(u);
    return;
  }
  if (u->ended) return;
  u->res.http_version = w2a_http_call_version(c) ? w2a_http_call_version(c) : "";
  u->call = NULL; /* the client frees it when we return */
  if (u->status && u->status != 200) {
    snprintf(u->res.message, sizeof u->res.message, "%.*s", (int)u->errbody.len,
             u->errbody.data ? u->errbody.data : "");
    end_attempt(u, W2A_UP_HTTP);
    return;
  }
  if (code) {
    const char *m = errmsg ? errmsg : w2a_strerror(code);
    snprintf(u->res.message, sizeof u->res.message, "%s", m);
    if (strstr(m, "onnect") && strstr(m, "timeout"))
      end_attempt(u, W2A_UP_TIMEOUT_CONNECT);
    else if (!u->status)
      end_attempt(u, W2A_UP_CONNECT);
    else
      end_attempt(u, W2A_UP_TRANSPORT);
    return;
  }
  rc = w2a_sse_finish(&u->sse, on_sse, u, &err);
  if (rc) {
    after_feed(u, rc, &err);
    return;
  }
  if (!u->ev.events) {
    snprintf(u->res.message, sizeof u->res.message,
             "Warp answered 200 with no events (the request shape was refused)");
    end_attempt(u, W2A_UP_EMPTY);
  } else {
    snprintf(u->res.message, sizeof u->res.message,
             "Warp's stream ended after %llu events without a finished event",
             (unsigned long long)u->ev.events);
    end_attempt(u, W2A_UP_TRUNCATED);
  }
}

/* ---- API ------------------------------------------------------------------------- */

void w2a_gw_up_ident_init(w2a_gw_up_ident *id, const w2a_config *cfg) {
  snprintf(id->ver, sizeof id->ver, "x-warp-client-version: %s", cfg->client_version);
  snprintf(id->oscat, sizeof id->oscat, "x-warp-os-category: %s", cfg->os_category);
  snprintf(id->osname, sizeof id->osname, "x-warp-os-name: %s", cfg->os_name);
  snprintf(id->osver, sizeof id->osver, "x-warp-os-version: %s", cfg->os_version);
}

int w2a_gw_up_start(w2a_gw_upstream **out, uv_loop_t *loop, w2a_http_client *http,
                    const w2a_gw_up_opts *o, const char *id_token, const void *body, size_t len,
                    const w2a_gw_up_cbs *cbs, void *ud) {
  static const w2a_http_call_cbs hcbs = {on_status, on_data, on_done, on_call_batch};
  const w2a_config *cfg = o->cfg;
  up_mem *mem = malloc(sizeof *mem);
  w2a_gw_upstream *u = mem ? &mem->u : NULL;
  w2a_http_request rq = {0};
  w2a_events_opts eo = {0};
  /* curl copies the header lines when the call starts, so they live on this stack */
  char h_auth[4200];
  const char *headers[12];
  w2a_gw_up_ident own;
  const w2a_gw_up_ident *id = o->ident;
  size_t h = 0;
  *out = NULL;
  if (u) memset(u, 0, sizeof *u); /* not the arena block */
  if (!u || !(u->body = malloc(len ? len : 1))) {
    free(u);
    return W2A_ENOMEM;
  }
  if (len) memcpy(u->body, body, len);
  w2a_arena_init(&u->ar, ARENA_BLOCK, ARENA_KEEP, mem->first, sizeof mem->first);
  u->body_len = len;
  u->loop = loop;
  u->cbs = *cbs;
  u->ud = ud;
  u->cfg = cfg;
  u->drains = o->drains;
  u->pa.alloc = w2a_arena_pb_alloc;
  u->pa.free = w2a_arena_pb_free;
  u->pa.allocator_data = &u->ar;
  w2a_sse_init(&u->sse, cfg->sse_event_max_bytes > 0 ? (size_t)cfg->sse_event_max_bytes : 0);
  eo.struct_max_depth = cfg->struct_max_depth > 0 ? (size_t)cfg->struct_max_depth : 0;
  w2a_events_init(&u->ev, &eo);
  w2a_buf_init(&u->errbody, ERRBODY_MAX);
  uv_timer_init(loop, &u->timer);
  u->timer.data = u;

  if (!id) {
    w2a_gw_up_ident_init(&own, cfg);
    id = &own;
  }
  {
    /* what snprintf("authorization: Bearer %s") made, cut at the buffer, without vfprintf */
    static const char pre[] = "authorization: Bearer ";
    size_t tl = strlen(id_token);
    if (tl > sizeof h_auth - sizeof pre) tl = sizeof h_auth - sizeof pre;
    memcpy(h_auth, pre, sizeof pre - 1);
    memcpy(h_auth + sizeof pre - 1, id_token, tl);
    h_auth[sizeof pre - 1 + tl] = 0;
  }
  headers[h++] = h_auth;
  headers[h++] = "content-type: application/x-protobuf";
  headers[h++] = "accept: text/event-stream";
  /* identity: compressed SSE gets buffered by intermediaries (spec §1.1, lofyer) */
  headers[h++] = "accept-encoding: identity";
  headers[h++] = "x-warp-client-id: warp-app";
  headers[h++] = id->ver;
  headers[h++] = id->oscat;
  headers[h++] = id->osname;
  headers[h++] = id->osver;
  headers[h] = NULL;

  rq.method = "POST";
  rq.url = o->url;
  rq.headers = headers;
  rq.body = u->body;
  rq.body_len = len;
  u->start_ms = u->last_ms = uv_now(loop);
  u->call = w2a_http_client_start(http, &rq, &hcbs, u);
  if (!u->call) {
    dispose(u);
    return W2A_EIO;
  }
  arm(u);
  *out = u;
  return 0;
}

void w2a_gw_up_pause(w2a_gw_upstream *u) {
  if (!u || u->ended || u->paused) return;
  u->paused = 1;
  /* Inside on_data the return value pauses; elsewhere pause explicitly. */
  if (!u->in_data && u->call) w2a_http_call_pause(u->call);
}

void w2a_gw_up_resume(w2a_gw_upstream *u) {
  if (!u || u->ended || !u->paused) return;
  u->paused = 0;
  u->last_ms = uv_now(u->loop); /* silence while we held it paused is not Warp's */
  if (u->call) w2a_http_call_resume(u->call);
  arm(u);
}

void w2a_gw_up_cancel(w2a_gw_upstream *u) {
  if (!u || u->ended) return;
  u->ended = 1;
  dispose(u);
}
