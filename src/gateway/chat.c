/* chat.c - the life of one POST /v1/chat/completions.
 *
 *   parse → validate → resolve model → map (once) → acquire lease → attempt ─┐
 *        ↑                                                                    │
 *        └── fail over (another account) while no content reached the client ┘
 *   → stream the chunks / answer the chat.completion → report outcome → free
 *
 * One object (w2a_gw_chatreq) per request owns: the parsed JSON, the packed protobuf,
 * the response state machine, the lease, the current upstream attempt and one uv_timer
 * (SSE keep-alive; it also makes freeing always asynchronous, in its close callback, so
 * no caller up the stack can touch a freed object).
 *
 * Teardown is one idempotent path, complete(): whatever ends the request (answer sent,
 * error, client gone, shutdown) cancels the upstream attempt, gives the lease back and
 * completes the HTTP request exactly once. Pool callbacks still outstanding (acquire,
 * refresh) are counted in `pending`; the object lives until they have returned, and a
 * lease that arrives for a finished request is released at once.
 *
 * Streaming starts the response head lazily: at the first content, or when the
 * keep-alive interval passes with nothing to send. Until then every failure is still an
 * HTTP status (429, 503, 502, 504 …); afterwards it becomes an error chunk + [DONE]. */
#include <json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/internal.h"
#include "gateway/map_request.h"
#include "gateway/map_response.h"
#include "gateway/upstream.h"

/* A stream's output buffer is written before the end of the socket event once it holds
 * this much (see on_up_event). */
#define OUT_FLUSH_BYTES (64u << 10)
#define MAX_TRIED 64
/* Completion objects kept for reuse after a request: each is 3.8 KB, a large-bin malloc
 * that also makes glibc consolidate its fast bins, once per completion otherwise. */
#define SPARE_CHATS 64

struct w2a_gw_chatreq {
  w2a_gw_chatreq *next, *prev;
  w2a_gateway *g;
  w2a_http_req *req; /* NULL once completed */
  json_object *root;
  w2a_gw_chat c;
  char model_id[160];
  char model_shown[160];
  w2a_buf pb;
  w2a_gw_map_info info;
  w2a_gw_resp resp;
  w2a_buf out;
  w2a_lease *lease;
  size_t ntried;
  int attempts, refreshed;
  w2a_gw_upstream *up;
  uv_timer_t ka;
  uint64_t start_ms, last_write_ms, last_extend_ms;
  int head_sent, content_sent, done, pending, paused, closing;
  int have_last;
  w2a_gw_up_result last;
  int status; /* for the access log */
  /* Not zeroed at allocation (see w2a_gw_chat_handle): written before they are read. */
  int64_t tried[MAX_TRIED]; /* the first ntried */
  char cors[1024];          /* set by w2a_gw_cors_headers at once */
};

static void start_attempt(w2a_gw_chatreq *ch);
static void acquire(w2a_gw_chatreq *ch);

/* ---- teardown ---------------------------------------------------------------------- */

static void on_ka_close(uv_handle_t *h) {
  w2a_gw_chatreq *ch = h->data;
  w2a_gateway *g = ch->g;
  if (ch->prev)
    ch->prev->next = ch->next;
  else
    g->chats = ch->next;
  if (ch->next) ch->next->prev = ch->prev;
  g->nchats--;
  json_object_put(ch->root);
  w2a_buf_free(&ch->pb);
  w2a_buf_free(&ch->out);
  w2a_gw_resp_free(&ch->resp);
  if (g->nspare_chats < SPARE_CHATS && !g->shutting_down) {
    ch->next = g->spare_chats;
    g->spare_chats = ch;
    g->nspare_chats++;
  } else {
    free(ch);
  }
  w2a_gw_maybe_finish(g);
}

static void maybe_free(w2a_gw_chatreq *ch) {
  if (!ch->done || ch->pending || ch->up || ch->closing) return;
  ch->closing = 1;
  uv_timer_stop(&ch->ka);
  uv_close((uv_handle_t *)&ch->ka, on_ka_close);
}

static void give_back_lease(w2a_gw_chatreq *ch) {
  if (ch->lease && !ch->pending) {
    w2a_pool_release(ch->g->pool, ch->lease);
    ch->lease = NULL;
  }
}

/* The one way a request ends. `send` runs first (it writes the last bytes) unless the
 * client is gone. */
static void complete(w2a_gw_chatreq *ch) {
  w2a_gw_chatreq *self = ch;
  if (ch->done) return;
  ch->done = 1;
  uv_timer_stop(&ch->ka);
  if (ch->up) {
    w2a_gw_up_cancel(ch->up);
    ch->up = NULL;
  }
  give_back_lease(ch);
  /* An acquire waiting for capacity would hold this object for up to LEASE_WAIT. */
  if (ch->pending && ch->g->pool) w2a_pool_acquire_cancel(ch->g->pool, ch);
  if (ch->req) {
    /* The request was completed by whoever called us; only its bookkeeping is left. */
    W2A_INFO("POST /v1/chat/completions %d model=%s stream=%d attempts=%d %llums", ch->status,
             ch->model_id[0] ? ch->model_id : "-", ch->c.stream, ch->attempts,
             (unsigned long long)(uv_now(ch->g->loop) - ch->start_ms));
    ch->req = NULL;
    w2a_gw_request_done(ch->g);
  }
  maybe_free(self);
}

/* ---- output ---------------------------------------------------------------------- */

static int start_head(w2a_gw_chatreq *ch) {
  char hdr[1400];
  if (ch->head_sent) return 0;
  snprintf(hdr, sizeof hdr, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n%s", ch->cors);
  ch->head_sent = 1;
  ch->status = 200;
  return w2a_http_stream_start(ch->req, 200, "text/event-stream; charset=utf-8", hdr);
}

/* Write what the state machine produced; pause the upstream past the queue cap. */
static void flush_out(w2a_gw_chatreq *ch) {
  if (!ch->out.len || !ch->req) return;
  start_head(ch);
  w2a_http_stream_write(ch->req, ch->out.data, ch->out.len);
  w2a_buf_reset(&ch->out);
  ch->last_write_ms = uv_now(ch->g->loop);
  if (ch->up && !ch->paused && w2a_http_stream_congested(ch->req)) {
    ch->paused = 1;
    w2a_gw_up_pause(ch->up);
  }
}

static void fail(w2a_gw_chatreq *ch, const w2a_gw_error *e) {
  if (ch->done) return;
  if (ch->req) {
    if (ch->head_sent) {
      w2a_buf_reset(&ch->out);
      w2a_gw_resp_stream_error(&ch->resp, e, &ch->out);
      flush_out(ch);
      w2a_http_stream_end(ch->req);
    } else {
      ch->status = w2a_gw_error_status(e->kind);
      w2a_gw_send_error(ch->g, ch->req, e);
    }
    W2A_WARN("completion failed: %s (%s)", e->message, w2a_gw_error_code(e->kind));
  }
  complete(ch);
}

static void on_client_abort(w2a_http_req *r, void *ud) {
  w2a_gw_chatreq *ch = ud;
  if (ch->done) return;
  /* Cancel upstream at once (the account is freed for others), then complete. */
  if (ch->up) {
    w2a_gw_up_cancel(ch->up);
    ch->up = NULL;
  }
  ch->status = 499;
  w2a_http_stream_end(r);
  complete(ch);
}

static void on_drain(w2a_http_req *r, void *ud) {
  w2a_gw_chatreq *ch = ud;
  if (ch->paused && ch->up) {
    ch->paused = 0;
    w2a_gw_up_resume(ch->up);
  }
}

static void on_keepalive(uv_timer_t *t) {
  w2a_gw_chatreq *ch = t->data;
  uint64_t now = uv_now(ch->g->loop);
  if (ch->done || !ch->req) return;
  if (now - ch->last_write_ms + 5 < (uint64_t)ch->g->cfg->keepalive_ms) return;
  w2a_gw_resp_keepalive(&ch->out);
  flush_out(ch);
}

/* ---- upstream results --------------------------------------------------------------- */

static void error_from_result(const w2a_gw_up_result *r, w2a_gw_error *e) {
  switch (r->kind) {
  case W2A_UP_HTTP:
    if (r->http_status == 429)
      w2a_gw_errorf(e, W2A_GWE_UPSTREAM_QUOTA, NULL, "Warp quota exhausted (HTTP 429): %s",
                    r->message);
    else if (r->http_status == 401 || r->http_status == 403)
      w2a_gw_errorf(e, W2A_GWE_UPSTREAM, NULL, "Warp refused the account (HTTP %d): %s",
                    r->http_status, r->message);
    else if (r->http_status >= 500)
      w2a_gw_errorf(e, W2A_GWE_UPSTREAM, NULL, "Warp failed (HTTP %d): %s", r->http_status,
                    r->message);
    else
      w2a_gw_errorf(e, W2A_GWE_UPSTREAM_REJECTED, NULL, "Warp rejected the request (HTTP %d): %s",
                    r->http_status, r->message);
    break;
  case W2A_UP_CONNECT:
    w2a_gw_errorf(e, W2A_GWE_CONNECT, NULL, "could not connect to Warp: %s", r->message);
    break;
  case W2A_UP_TIMEOUT_CONNECT:
    w2a_gw_errorf(e, W2A_GWE_TIMEOUT_CONNECT, NULL, "connecting to Warp timed out: %s", r->message);
    break;
  case W2A_UP_TIMEOUT_FIRST: w2a_gw_errorf(e, W2A_GWE_TIMEOUT_FIRST, NULL, "%s", r->message); break;
  case W2A_UP_TIMEOUT_IDLE: w2a_gw_errorf(e, W2A_GWE_TIMEOUT_IDLE, NULL, "%s", r->message); break;
  case W2A_UP_TIMEOUT_TOTAL: w2a_gw_errorf(e, W2A_GWE_TIMEOUT_TOTAL, NULL, "%s", r->message); break;
  case W2A_UP_EMPTY: w2a_gw_errorf(e, W2A_GWE_UPSTREAM_EMPTY, NULL, "%s", r->message); break;
  case W2A_UP_FINISH_ERROR:
    if (r->finish == W2A_GW_FIN_QUOTA)
      w2a_gw_errorf(e, W2A_GWE_UPSTREAM_QUOTA, NULL, "Warp quota exhausted (finished: %s)",
                    r->message);
    else if (r->finish == W2A_GW_FIN_LLM_UNAVAILABLE)
      w2a_gw_errorf(e, W2A_GWE_UPSTREAM, NULL, "the model is unavailable at Warp (%s)", r->message);
    else
      w2a_gw_errorf(e, W2A_GWE_UPSTREAM, NULL, "Warp reported an error (%s)", r->message);
    break;
  case W2A_UP_STOPPED:
    w2a_gw_errorf(e, W2A_GWE_TOO_LARGE_OUT, NULL, "the answer exceeded the gateway's size cap");
    break;
  case W2A_UP_TRANSPORT:
    w2a_gw_errorf(e, W2A_GWE_UPSTREAM, NULL, "the connection to Warp failed: %s", r->message);
    break;
  default: w2a_gw_errorf(e, W2A_GWE_UPSTREAM, NULL, "%s", r->message); break;
  }
}

/* Failures that mean "this account cannot serve now, another one might". */
static int retryable(const w2a_gw_up_result *r, w2a_action act) {
  int pool_says = act == W2A_ACT_COOLDOWN || act == W2A_ACT_QUOTA || act == W2A_ACT_BLOCK ||
                  act == W2A_ACT_INVALID || act == W2A_ACT_RETRY_OTHER ||
                  act == W2A_ACT_RETRY_REFRESH;
  switch (r->kind) {
  case W2A_UP_HTTP:
    return r->http_status == 429 || r->http_status == 401 || r->http_status == 403 ||
           r->http_status >= 500 || pool_says;
  case W2A_UP_CONNECT:
  case W2A_UP_TIMEOUT_CONNECT:
  case W2A_UP_EMPTY: return 1;
  case W2A_UP_FINISH_ERROR:
    return r->finish == W2A_GW_FIN_QUOTA || r->finish == W2A_GW_FIN_LLM_UNAVAILABLE || pool_says;
  case W2A_UP_TRANSPORT:
  case W2A_UP_TRUNCATED: return pool_says;
  default: return 0;
  }
}

/* Failures that say something about the account (quota, token, ban), as opposed to the
 * request or Warp itself. */
static int account_problem(const w2a_gw_up_result *r) {
  if (r->kind == W2A_UP_HTTP)
    return r->http_status == 429 || r->http_status == 401 || r->http_status == 403;
  return r->kind == W2A_UP_FINISH_ERROR && r->finish == W2A_GW_FIN_QUOTA;
}

static void attempt_failed(w2a_gw_chatreq *ch, const w2a_gw_up_result *r) {
  w2a_outcome o = {0};
  w2a_action act = W2A_ACT_NONE;
  w2a_gw_error e;
  ch->last = *r;
  ch->have_last = 1;
  o.http_status =
      r->kind == W2A_UP_HTTP || r->kind == W2A_UP_EMPTY || r->kind == W2A_UP_FINISH_ERROR
          ? (r->http_status ? r->http_status : 200)
          : 0;
  o.body = r->message;
  o.finish = r->kind == W2A_UP_FINISH_ERROR ? w2a_gw_finish_name(r->finish) : NULL;
  o.transport_error = r->kind == W2A_UP_CONNECT || r->kind == W2A_UP_TRANSPORT ||
                      r->kind == W2A_UP_TIMEOUT_CONNECT || r->kind == W2A_UP_TIMEOUT_FIRST ||
                      r->kind == W2A_UP_TIMEOUT_IDLE || r->kind == W2A_UP_TIMEOUT_TOTAL ||
                      r->kind == W2A_UP_TRUNCATED;
  if (ch->lease) {
    if (r->kind == W2A_UP_STOPPED)
      w2a_pool_release(ch->g->pool, ch->lease);
    else
      act = w2a_pool_report(ch->g->pool, ch->lease, &o);
    ch->lease = NULL;
  }
  W2A_WARN("attempt %d failed (account %lld): kind=%d status=%d %s", ch->attempts,
           ch->ntried ? (long long)ch->tried[ch->ntried - 1] : -1LL, (int)r->kind, r->http_status,
           r->message);
  if (!ch->content_sent && !ch->done && !ch->g->shutting_down && retryable(r, act) &&
      ch->attempts < ch->g->cfg->max_attempts && ch->ntried < MAX_TRIED) {
    if (!ch->c.stream) { /* drop what a failed attempt accumulated */
      w2a_gw_resp_free(&ch->resp);
      w2a_gw_resp_init(&ch->resp, ch->model_shown, (int64_t)(w2a_now_ms() / 1000), 0, 0,
                       ch->info.prompt_tokens_est, 0);
    }
    acquire(ch);
    return;
  }
  error_from_result(r, &e);
  if (retryable(r, act) && ch->attempts >= ch->g->cfg->max_attempts && ch->attempts > 1) {
    char msg[sizeof e.message];
    snprintf(msg, sizeof msg, "all %d attempts failed; last: %.470s", ch->attempts, e.message);
    snprintf(e.message, sizeof e.message, "%s", msg);
  }
  fail(ch, &e);
}

static void on_refreshed(int rc, void *ud) {
  w2a_gw_chatreq *ch = ud;
  ch->pending--;
  if (ch->done) {
    give_back_lease(ch);
    maybe_free(ch);
    return;
  }
  if (rc == 0) {
    W2A_INFO("token refreshed for account %lld; retrying once", (long long)ch->lease->account_id);
    start_attempt(ch);
  } else {
    attempt_failed(ch, &ch->last);
  }
}

static int on_up_event(void *ud, const w2a_gw_event *ev) {
  w2a_gw_chatreq *ch = ud;
  int rc = w2a_gw_resp_feed(&ch->resp, ev, &ch->out);
  if (rc) return 1; /* too large: on_end sees W2A_UP_STOPPED */
  /* Streamed chunks wait in `out` for on_up_batch (the end of the socket event that
   * brought them), so one burst from Warp is one write to the client; past
   * OUT_FLUSH_BYTES they go at once, which also lets back-pressure act within the burst. */
  if (ch->c.stream && ch->out.len) {
    ch->content_sent = 1;
    if (ch->out.len >= OUT_FLUSH_BYTES) flush_out(ch);
  }
  return 0;
}

/* The end of what one socket event brought: write it, and keep the lease alive (a lease
 * with a TTL is extended at a third of it while the answer flows). */
static void on_up_batch(void *ud) {
  w2a_gw_chatreq *ch = ud;
  if (ch->c.stream && !ch->done) flush_out(ch);
  uint64_t now = uv_now(ch->g->loop);
  if (ch->lease && ch->g->cfg->lease_ttl_ms > 0 &&
      now - ch->last_extend_ms > (uint64_t)ch->g->cfg->lease_ttl_ms / 3) {
    ch->last_extend_ms = now;
    w2a_pool_extend(ch->g->pool, ch->lease);
  }
}

static void on_up_end(void *ud, const w2a_gw_up_result *r) {
  w2a_gw_chatreq *ch = ud;
  w2a_outcome o = {.ok = 1, .http_status = 200};
  ch->up = NULL;
  ch->paused = 0;
  if (ch->done) return;
  if (ch->c.stream) flush_out(ch); /* the chunks of the read that ended the attempt */
  if (r->kind != W2A_UP_OK) {
    if (r->kind == W2A_UP_HTTP && r->http_status == 401 && !ch->refreshed && ch->lease &&
        !ch->content_sent) {
      /* Expired token: refresh this account and retry it once. */
      ch->refreshed = 1;
      ch->last = *r;
      ch->have_last = 1;
      ch->pending++;
      w2a_pool_refresh_lease(ch->g->pool, ch->lease, on_refreshed, ch);
      return;
    }
    attempt_failed(ch, r);
    return;
  }
  if (ch->lease) {
    w2a_pool_report(ch->g->pool, ch->lease, &o);
    ch->lease = NULL;
  }
  if (ch->c.stream) {
    w2a_gw_resp_stream_end(&ch->resp, &ch->out);
    flush_out(ch);
    w2a_http_stream_end(ch->req);
  } else {
    uint64_t p, c;
    int est;
    const char *extra;
    w2a_gw_resp_usage(&ch->resp, &p, &c, &est);
    extra = est ? "X-Warp2api-Usage: estimated\r\n" : "X-Warp2api-Usage: reported\r\n";
    w2a_buf_reset(&ch->out);
    /* Room for a short answer at once, not 64-byte doublings (a failure shows below);
     * 512 bytes stays a small-bin request, which never makes glibc consolidate. */
    w2a_buf_reserve(&ch->out, 500);
    if (w2a_gw_resp_completion(&ch->resp, &ch->out)) {
      w2a_gw_error e;
      w2a_gw_errorf(&e, W2A_GWE_INTERNAL, NULL, "out of memory building the response");
      fail(ch, &e);
      return;
    }
    ch->status = 200;
    w2a_gw_send_json(ch->g, ch->req, 200, extra, ch->out.data, ch->out.len);
  }
  complete(ch);
}

static void start_attempt(w2a_gw_chatreq *ch) {
  static const w2a_gw_up_cbs cbs = {on_up_event, on_up_end, on_up_batch};
  w2a_gw_up_opts o = {.url = ch->g->url_multi_agent,
                      .cfg = ch->g->cfg,
                      .drains = &ch->g->drains,
                      .ident = &ch->g->up_ident};
  int rc = w2a_gw_up_start(&ch->up, ch->g->loop, ch->g->http, &o, ch->lease->id_token, ch->pb.data,
                           ch->pb.len, &cbs, ch);
  if (rc) {
    w2a_gw_up_result r = {.kind = W2A_UP_CONNECT};
    snprintf(r.message, sizeof r.message, "could not start the upstream request: %s",
             w2a_strerror(rc));
    ch->up = NULL;
    attempt_failed(ch, &r);
  }
}

static void on_acquired(int rc, w2a_lease *lease, const w2a_pool_unavailable *why, void *ud) {
  w2a_gw_chatreq *ch = ud;
  w2a_gw_error e;
  ch->pending--;
  if (ch->done) {
    if (lease) w2a_pool_release(ch->g->pool, lease);
    maybe_free(ch);
    return;
  }
  if (rc || !lease) {
    char last[600] = "";
    if (ch->have_last) {
      w2a_gw_error le;
      error_from_result(&ch->last, &le);
      snprintf(last, sizeof last, "; last upstream error: %s", le.message);
    }
    if (ch->have_last && !account_problem(&ch->last)) {
      /* Every account was tried and the failure was not about accounts: say what it was. */
      char msg[sizeof e.message];
      error_from_result(&ch->last, &e);
      snprintf(msg, sizeof msg, "%.440s (after %d attempt%s)", e.message, ch->attempts,
               ch->attempts == 1 ? "" : "s");
      snprintf(e.message, sizeof e.message, "%s", msg);
    } else if (why && why->empty && !ch->have_last) {
      w2a_gw_errorf(&e, W2A_GWE_POOL_EMPTY, NULL,
                    "the account pool is empty: add a Warp account (warp2api accounts add)");
    } else {
      uint64_t now = w2a_now_ms();
      w2a_gw_errorf(&e, W2A_GWE_NO_ACCOUNT, NULL,
                    "no Warp account can serve this request right now (%s)%s",
                    why && why->reason[0]
                        ? why->reason
                        : (ch->ntried ? "every usable account was tried" : "no usable account"),
                    last);
      if (why && why->retry_at_ms > now)
        e.retry_after_s = (why->retry_at_ms - now + 999) / 1000;
      else
        e.retry_after_s = 1;
    }
    fail(ch, &e);
    return;
  }
  ch->lease = lease;
  ch->refreshed = 0;
  ch->tried[ch->ntried++] = lease->account_id;
  ch->attempts++;
  ch->last_extend_ms = uv_now(ch->g->loop);
  start_attempt(ch);
}

static void acquire(w2a_gw_chatreq *ch) {
  if (!ch->g->pool) {
    w2a_gw_error e;
    w2a_gw_errorf(&e, W2A_GWE_POOL_EMPTY, NULL, "no account pool is configured");
    fail(ch, &e);
    return;
  }
  ch->pending++;
  w2a_pool_acquire(ch->g->pool, ch->tried, ch->ntried, on_acquired, ch);
}

/* ---- entry --------------------------------------------------------------------------- */

void w2a_gw_chat_free_spares(w2a_gateway *g) {
  while (g->spare_chats) {
    w2a_gw_chatreq *ch = g->spare_chats;
    g->spare_chats = ch->next;
    free(ch);
  }
  g->nspare_chats = 0;
}

void w2a_gw_chat_handle(w2a_gateway *g, w2a_http_req *r) {
  const w2a_config *cfg = g->cfg;
  w2a_gw_chatreq *ch = g->spare_chats;
  if (ch) {
    g->spare_chats = ch->next;
    g->nspare_chats--;
  } else {
    ch = malloc(sizeof *ch);
  }
  w2a_gw_error e;
  json_tokener *tok;
  w2a_gw_map_opts mo = {0};
  const char *name;
  if (!ch) {
    w2a_gw_errorf(&e, W2A_GWE_INTERNAL, NULL, "out of memory");
    w2a_gw_send_error(g, r, &e);
    w2a_gw_request_done(g);
    return;
  }
  /* Everything up to the two arrays at the end (1.5 KB of the object) starts zeroed. */
  memset(ch, 0, offsetof(w2a_gw_chatreq, tried));
  ch->g = g;
  ch->req = r;
  ch->start_ms = ch->last_write_ms = uv_now(g->loop);
  w2a_buf_init(&ch->pb, 0);
  w2a_buf_init(&ch->out, 0);
  /* ch->resp stays zeroed (calloc; w2a_gw_resp_free accepts that) until the request is
   * mapped: an init here would draw an id from getrandom(2) only to be replaced. */
  uv_timer_init(g->loop, &ch->ka);
  ch->ka.data = ch;
  ch->next = g->chats;
  if (g->chats) g->chats->prev = ch;
  g->chats = ch;
  g->nchats++;
  w2a_gw_cors_headers(g, r, ch->cors, sizeof ch->cors);

  if (g->shutting_down) {
    w2a_gw_errorf(&e, W2A_GWE_SHUTTING_DOWN, NULL, "the gateway is shutting down");
    fail(ch, &e);
    return;
  }
  if (w2a_gw_body_check(r->body, r->body_len, &e)) {
    fail(ch, &e);
    return;
  }
  /* One tokener for the gateway, reset per body: json_tokener_new_ex callocs the
   * tokener and its depth stack (and a printbuf) per request otherwise. */
  if (!g->tok && !(g->tok = json_tokener_new_ex(
                       cfg->struct_max_depth > 0 ? (int)cfg->struct_max_depth + 16 : 80))) {
    w2a_gw_errorf(&e, W2A_GWE_INTERNAL, NULL, "out of memory");
    fail(ch, &e);
    return;
  }
  tok = g->tok;
  json_tokener_reset(tok);
  ch->root = json_tokener_parse_ex(tok, r->body ? r->body : "", (int)r->body_len);
  if (!ch->root || json_tokener_get_error(tok) != json_tokener_success ||
      json_tokener_get_parse_end(tok) < r->body_len) {
    enum json_tokener_error je = json_tokener_get_error(tok);
    w2a_gw_errorf(&e, W2A_GWE_INVALID_JSON, NULL,
                  "the request body is not valid JSON: %s (at byte %zu)",
                  je == json_tokener_success ? "trailing data" : json_tokener_error_desc(je),
                  json_tokener_get_parse_end(tok));
    json_tokener_reset(tok); /* drop what a failed parse left on its stack */
    fail(ch, &e);
    return;
  }
  if (w2a_gw_chat_parse(ch->root, &ch->c, &e)) {
    fail(ch, &e);
    return;
  }
  name = ch->c.model ? ch->c.model : cfg->default_model;
  snprintf(ch->model_shown, sizeof ch->model_shown, "%s", name);
  if (w2a_gw_models_resolve(g->models, name, ch->model_id, sizeof ch->model_id)) {
    ch->model_id[0] = 0;
    w2a_gw_errorf(&e, W2A_GWE_MODEL_NOT_FOUND, "model",
                  "The model `%s` does not exist or is not available through this gateway; "
                  "GET /v1/models lists the models you can use",
                  name);
    fail(ch, &e);
    return;
  }
  mo.os_platform = cfg->os_category;
  mo.now_s = (int64_t)(w2a_now_ms() / 1000);
  mo.max_depth = cfg->struct_max_depth > 0 ? (int)cfg->struct_max_depth : 64;
  mo.max_bytes = cfg->max_body_bytes > 0 ? (size_t)cfg->max_body_bytes * 2 : 0;
  if (w2a_gw_map_request(&ch->c, ch->model_id, &mo, &ch->pb, &ch->info, &e)) {
    fail(ch, &e);
    return;
  }
  w2a_gw_resp_free(&ch->resp);
  w2a_gw_resp_init(&ch->resp, ch->model_shown, mo.now_s, ch->c.stream, ch->c.include_usage,
                   ch->info.prompt_tokens_est, 0);
  W2A_DEBUG("completion: model=%s history=%zu inputs=%zu tools=%zu images=%zu pb=%zu bytes",
            ch->model_id, ch->info.history, ch->info.inputs, ch->info.tools, ch->info.images,
            ch->pb.len);
  w2a_http_req_on_abort(r, on_client_abort, ch);
  w2a_http_req_on_drain(r, on_drain, ch);
  if (ch->c.stream && cfg->keepalive_ms > 0)
    uv_timer_start(&ch->ka, on_keepalive, (uint64_t)cfg->keepalive_ms, (uint64_t)cfg->keepalive_ms);
  acquire(ch);
}
