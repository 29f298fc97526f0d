/* map_response.h - Warp's answer → OpenAI chat.completion(.chunk) JSON.
 *
 * A pure state machine: no I/O, no clock except the `created` stamp given at init, so
 * every case is a unit test (tests/unit/test_gw_map_response.c). The upstream layer
 * turns decoded Warp events (src/proto/events.h) into the small neutral w2a_gw_event
 * below and feeds them here; chat.c decides what to do with errors (fail over, HTTP
 * error, or an error chunk) and asks this module for the bytes.
 *
 * Streaming output is SSE "data: {json}\n\n" per chunk; the first chunk that carries
 * anything also carries delta.role. Tool calls get index 0, 1, 2… in arrival order, so
 * parallel calls never collide; their ids are Warp's tool_call_id (the client sends them
 * back as tool_call_id, which map_request puts on the wire unchanged). A model call to
 * a tool literally named "call_mcp_tool" with {name, args} is unwrapped to the inner
 * tool. Non-streaming output accumulates (capped at max_bytes) into one chat.completion.
 *
 * Usage comes from Warp's finished.token_usage when present; otherwise it is estimated
 * (w2a_gw_estimate_tokens over the prompt and the output) and marked "estimated":true. */
#ifndef W2A_GW_MAP_RESPONSE_H
#define W2A_GW_MAP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "gateway/errors.h"

typedef enum w2a_gw_evkind {
  W2A_GW_EV_TEXT = 1,
  W2A_GW_EV_REASONING,
  W2A_GW_EV_TOOL_CALL,
  W2A_GW_EV_FINISH,
} w2a_gw_evkind;

typedef enum w2a_gw_finish {
  W2A_GW_FIN_NONE = 0,        /* the stream ended without a finished event */
  W2A_GW_FIN_DONE,            /* → stop, or tool_calls when a tool call was emitted */
  W2A_GW_FIN_MAX_TOKENS,      /* → length */
  W2A_GW_FIN_CONTEXT_WINDOW,  /* → length */
  W2A_GW_FIN_OTHER,           /* → stop */
  W2A_GW_FIN_QUOTA,           /* error: fail over before content */
  W2A_GW_FIN_LLM_UNAVAILABLE, /* error: fail over before content */
  W2A_GW_FIN_INTERNAL_ERROR,  /* error */
} w2a_gw_finish;

typedef struct w2a_gw_event {
  w2a_gw_evkind kind;
  const char *text; /* TEXT / REASONING fragment */
  size_t len;
  const char *call_id;   /* TOOL_CALL: Warp's tool_call_id ("" → one is made up) */
  const char *name;      /* TOOL_CALL */
  const char *args_json; /* TOOL_CALL: a JSON object as text (NULL → "{}") */
  w2a_gw_finish finish;  /* FINISH */
  const char *error;     /* FINISH internal_error message (may be NULL) */
  int has_usage;         /* FINISH: Warp sent token_usage */
  uint64_t prompt_tokens, completion_tokens, cached_tokens;
} w2a_gw_event;

typedef struct w2a_gw_resp {
  char id[48];
  char model[160];
  int64_t created;
  int stream, include_usage;
  int role_sent;
  int emitted; /* something (text, reasoning, tool call) was produced */
  int ntools;
  int finished; /* a non-error FINISH was fed */
  const char *finish_reason;
  w2a_buf text, reasoning, tools; /* non-streaming accumulation (tools: JSON items) */
  size_t max_bytes;
  uint64_t prompt_est;
  uint64_t out_ascii, out_other; /* output characters, for the estimate */
  int has_usage;
  uint64_t prompt_tokens, completion_tokens, cached_tokens;
  w2a_buf head; /* streaming: every chunk's constant opening, built at the first chunk */
} w2a_gw_resp;

/* Rough token count: ASCII bytes / 4 (rounded up) + one per non-ASCII code point. */
uint64_t w2a_gw_estimate_tokens(const char *s, size_t n);

/* Finish reasons that are failures, not answers. */
int w2a_gw_finish_is_error(w2a_gw_finish f);
/* Warp's name for a finish reason ("quota_limit", …), for logs and pool outcomes. */
const char *w2a_gw_finish_name(w2a_gw_finish f);

/* max_bytes caps the accumulated non-streaming answer (0: 64 MiB). */
void w2a_gw_resp_init(w2a_gw_resp *r, const char *model, int64_t created, int stream,
                      int include_usage, uint64_t prompt_tokens_est, size_t max_bytes);
void w2a_gw_resp_free(w2a_gw_resp *r);

/* Feed one event. Streaming: SSE chunks are appended to out. An error FINISH must not be
 * fed (W2A_ESTATE). W2A_ETOOBIG when the non-streaming answer passes max_bytes. */
int w2a_gw_resp_feed(w2a_gw_resp *r, const w2a_gw_event *ev, w2a_buf *out);
/* Streaming end after a good FINISH: finish_reason chunk, usage chunk (if asked),
 * "data: [DONE]". */
int w2a_gw_resp_stream_end(w2a_gw_resp *r, w2a_buf *out);
/* Streaming end after a failure: a chunk carrying {"error":{…}}, then [DONE]. */
int w2a_gw_resp_stream_error(w2a_gw_resp *r, const w2a_gw_error *e, w2a_buf *out);
/* An SSE comment that keeps idle connections (and proxies) from timing out. */
int w2a_gw_resp_keepalive(w2a_buf *out);
/* Non-streaming: the whole chat.completion object. */
int w2a_gw_resp_completion(w2a_gw_resp *r, w2a_buf *out);
/* Usage numbers as they will be reported (estimated unless Warp sent them). */
void w2a_gw_resp_usage(const w2a_gw_resp *r, uint64_t *prompt, uint64_t *completion,
                       int *estimated);

#endif
