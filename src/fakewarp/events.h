/* events.h - the ResponseEvents fakewarp streams, encoded by hand into the bytes
 * protobuf-c would give the same messages (events.c says how; parts copied from the
 * request are packed by protobuf-c itself), and framed exactly like the real capture
 * (as w2a_sse_write_event: "event:data\ndata:<base64url>\n\n").
 *
 * Shapes follow turn1-response.sse event by event (spec §1.2, §2.3): every
 * server-created message carries task_id, request_id (field 13) and a timestamp (field
 * 14); the preamble is a tool_call.server{payload:"IgA="}; the server_event message and
 * the echoed user query carry a server_message_data holding only a timestamp, the answer
 * message one holding a uuid and a timestamp. `finished` is written by hand rather than
 * by protobuf-c so that its bytes have the capture's layout: reason last, and
 * context_window_info with the explicit zero counters the real server sends.
 *
 * Every function appends one framed event to `out` and returns 0 or a W2A_E* code (the
 * buffer is unchanged on failure). Nothing is retained. */
#ifndef W2A_FAKE_EVENTS_H
#define W2A_FAKE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "request.pb-c.h"
#include "response.pb-c.h"

typedef struct w2a_fake_ids {
  char conversation_id[37];
  char request_id[37];
  char task_id[37];
  int64_t ts_s; /* creation time stamped on messages */
  int32_t ts_ns;
} w2a_fake_ids;

int w2a_fake_ev_init(w2a_buf *out, int pad, const w2a_fake_ids *ids);
/* create_task with the preamble tool_call.server message. */
int w2a_fake_ev_create_task(w2a_buf *out, int pad, const w2a_fake_ids *ids);
int w2a_fake_ev_server_event(w2a_buf *out, int pad, const w2a_fake_ids *ids);
/* The echoed message, encoded once for both echo events (bytes: malloc, the caller
 * frees; {0} before the first event). */
typedef struct w2a_fake_echo {
  uint8_t *bytes;
  size_t len;
} w2a_fake_echo;

/* The echo of the input: a user_query message (query + the request's InputContext), or
 * the tool_call_result (history numbering: call_mcp_tool = 16). update=1 writes the
 * update_task_message form (mask "server_message_data"). cache: NULL, or where the
 * message is kept between the two calls (it must not change in between). */
int w2a_fake_ev_user_echo(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *msg_id,
                          const Warp__MultiAgent__V1__Request__Input__UserQuery *uq,
                          const Warp__MultiAgent__V1__Request__Input__ToolCallResult *tr,
                          const Warp__MultiAgent__V1__InputContext *ctx, int update,
                          w2a_fake_echo *cache);
int w2a_fake_ev_transaction(w2a_buf *out, int pad, int begin);
/* First fragment of an agent_output (add_messages_to_task) or a later one
 * (append_to_message_content, mask agent_output.text / agent_output.reasoning). */
int w2a_fake_ev_agent(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *msg_id,
                      const char *text, size_t len, int reasoning, int first);
/* A tool_call message with call_mcp_tool{name, args}; args_json is a JSON object. */
int w2a_fake_ev_tool_call(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *msg_id,
                          const char *call_id, const char *name, const char *args_json);
int w2a_fake_ev_description(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *desc);

typedef struct w2a_fake_finish {
  int reason;          /* W2A_FAKE_FIN_* */
  const char *message; /* internal_error */
  const char *model_id;
  const char *model_display;
  uint32_t context_tokens;
  float request_cost;
  int token_usage; /* include field 8 */
  uint32_t tokens_in, tokens_out;
} w2a_fake_finish;
int w2a_fake_ev_finished(w2a_buf *out, int pad, const w2a_fake_finish *fin);

/* Build a Struct from a JSON object text; NULL when it is not an object. Free with
 * protobuf_c_message_free_unpacked(&s->base, NULL). */
Google__Protobuf__Struct *w2a_fake_struct_from_json(const char *json);

#endif
