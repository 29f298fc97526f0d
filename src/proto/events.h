/* events.h - what a stream of Warp ResponseEvents means, independent of any client API.
 *
 * The gateway (OpenAI streaming and non-streaming) and the CLI both need the same reading
 * of the upstream events (spec/warp-protocol.md §1.2, §5.3, §5.5), so it lives here once.
 * w2a_events is fed each unpacked ResponseEvent in order and reports, through one
 * callback per item:
 *
 *   W2A_EV_INIT       init {conversation_id, request_id}
 *   W2A_EV_TEXT       agent_output.text of add_messages_to_task.messages[] (the first
 *                     chunk arrives there) and of append_to_message_content.message
 *                     (every later chunk)
 *   W2A_EV_REASONING  agent_output.reasoning, same two places
 *   W2A_EV_TOOL_CALL  add_messages_to_task.messages[].tool_call.call_mcp_tool, with the
 *                     arguments (a google.protobuf.Struct) rendered as compact JSON text;
 *                     a call of a tool literally named "call_mcp_tool" whose arguments are
 *                     {name, args} is unwrapped to the inner name and args (§5.5)
 *   W2A_EV_FINISHED   finished {reason, internal_error message, token usage, request
 *                     cost, context window usage}
 *
 * Everything else (create_task, update_task_message, server_event, tool_call.server and
 * every other tool kind, transactions, descriptions, suggestions) is deliberately not
 * reported: the proxies ignore it and so do we. Events that arrive after `finished` are
 * counted and ignored. Update masks are not consulted: append_to_message_content carries
 * only the new fragment, whatever the mask says.
 *
 * Pointers in a reported item point into the fed ResponseEvent or into the state and are
 * valid only during the callback. The state owns copies of the ids and, when asked to,
 * the accumulated text and reasoning (capped). */
#ifndef W2A_EVENTS_H
#define W2A_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "response.pb-c.h"

typedef enum w2a_finish_reason {
  W2A_FINISH_NONE = 0,         /* not finished (yet) */
  W2A_FINISH_UNSPECIFIED,      /* finished without a reason */
  W2A_FINISH_OTHER,            /* other */
  W2A_FINISH_DONE,             /* done */
  W2A_FINISH_MAX_TOKENS,       /* max_token_limit */
  W2A_FINISH_QUOTA,            /* quota_limit */
  W2A_FINISH_CONTEXT_EXCEEDED, /* context_window_exceeded */
  W2A_FINISH_LLM_UNAVAILABLE,  /* llm_unavailable */
  W2A_FINISH_INTERNAL_ERROR,   /* internal_error {message} */
} w2a_finish_reason;

/* The protocol's own name: "done", "max_token_limit", ...; "none", "unspecified". */
const char *w2a_finish_reason_name(w2a_finish_reason r);

typedef enum w2a_ev_kind {
  W2A_EV_INIT = 1,
  W2A_EV_TEXT,
  W2A_EV_REASONING,
  W2A_EV_TOOL_CALL,
  W2A_EV_FINISHED,
} w2a_ev_kind;

typedef Warp__MultiAgent__V1__ResponseEvent__StreamFinished__TokenUsage w2a_token_usage;

typedef struct w2a_ev {
  w2a_ev_kind kind;
  /* INIT */
  const char *conversation_id, *request_id;
  /* TEXT, REASONING: the delta (len bytes, not NUL-terminated). TEXT, REASONING and
   * TOOL_CALL: the message it belongs to (ids of the lengths given, not NUL-terminated;
   * the task is the message's own, else the action's). */
  const char *text;
  size_t len;
  const char *message_id, *task_id;
  size_t message_id_len, task_id_len;
  /* TOOL_CALL */
  const char *tool_call_id; /* "" when Warp sent none (callers may invent one) */
  const char *name;
  const char *args_json; /* compact JSON, "{}" when there were no arguments */
  size_t args_len;
  size_t index;  /* 0, 1, 2 ... over the tool calls of this stream */
  int unwrapped; /* the call came wrapped in a "call_mcp_tool" tool */
  /* FINISHED */
  w2a_finish_reason reason;
  const char *error_message;     /* internal_error.message, else NULL */
  w2a_token_usage *const *usage; /* finished.token_usage[] */
  size_t n_usage;
  uint64_t input_tokens, output_tokens; /* sums over usage[] */
  int has_request_cost;
  float request_cost;
  int has_context_window;
  float context_window_usage; /* fraction of the window used, as Warp reports it */
  int should_refresh_model_config;
} w2a_ev;

/* Return 0 to go on; anything else stops w2a_events_feed, which returns it. */
typedef int (*w2a_ev_fn)(void *ud, const w2a_ev *ev);

typedef struct w2a_events_opts {
  size_t struct_max_depth; /* STRUCT_MAX_DEPTH: cap on argument nesting (0: 64) */
  size_t accumulate_max;   /* keep the whole text and reasoning up to this many bytes
                              each (0: do not accumulate) */
} w2a_events_opts;

typedef struct w2a_events {
  w2a_events_opts o;
  char *conversation_id, *request_id; /* from init, NULL before */
  w2a_buf text, reasoning;            /* accumulated when o.accumulate_max */
  w2a_buf scratch;                    /* tool-call argument JSON */
  uint64_t events;                    /* ResponseEvents fed */
  uint64_t after_finish;              /* ... of which arrived after `finished` */
  uint64_t wire_read;                 /* ... of which w2a_events_feed_wire read unpacked */
  size_t tool_calls;
  uint64_t text_bytes, reasoning_bytes;
  int truncated; /* accumulation hit accumulate_max */
  w2a_finish_reason reason;
  char *error_message; /* internal_error.message, copied */
} w2a_events;

/* NULL opts: defaults. */
void w2a_events_init(w2a_events *s, const w2a_events_opts *o);
void w2a_events_free(w2a_events *s);
int w2a_events_feed(w2a_events *s, const Warp__MultiAgent__V1__ResponseEvent *ev, w2a_ev_fn cb,
                    void *ud, w2a_err *err);

/* Feed one serialized ResponseEvent as it came off the wire. The same as
 *   m = w2a_pbjson_unpack_with(&warp__multi_agent__v1__response_event__descriptor,
 *                              buf, len, a, err);
 *   rc = w2a_events_feed(s, m, cb, ud, err); protobuf_c_message_free_unpacked(m, a);
 * (validation first included), but the event that makes up nearly all of a long answer,
 * client_actions of append_to_message_content with agent_output text or reasoning, is
 * read from the wire once validated, without unpacking. Bytes that are not a valid
 * ResponseEvent: *undecodable = 1, W2A_EINVAL, w2a_pbjson_unpack's error text in err.
 * Otherwise *undecodable = 0 and the result is w2a_events_feed's. a is only used for
 * the events it unpacks: NULL (malloc), and they are freed before it returns; or the
 * caller's arena, which it resets when it likes (nothing is freed here: walking the
 * message to free into an arena would cost as much as the unpack). */
int w2a_events_feed_wire(w2a_events *s, const uint8_t *buf, size_t len, ProtobufCAllocator *a,
                         w2a_ev_fn cb, void *ud, int *undecodable, w2a_err *err);

/* Names for logs and the CLI: "init", "client_actions", "finished", "unknown"; and a
 * ClientAction's member name ("add_messages_to_task", ...; "unknown" when unset). */
const char *w2a_events_type_name(const Warp__MultiAgent__V1__ResponseEvent *ev);
const char *w2a_events_action_name(const Warp__MultiAgent__V1__ClientAction *a);

/* google.protobuf.Struct as compact JSON appended to out (NaN and infinities, which JSON
 * cannot carry, become null). W2A_ETOOBIG when nested deeper than max_depth (0: 64) or
 * when out's cap is hit. */
int w2a_events_struct_to_json(const Google__Protobuf__Struct *st, size_t max_depth, w2a_buf *out);

#endif
