/* map_request.h - OpenAI chat.completions request (json-c) → Warp
 * warp.multi_agent.v1.Request (protobuf-c, packed).
 *
 * Two steps. w2a_gw_chat_parse() reads and validates the top-level fields every later
 * stage needs (model, stream, tool_choice, …) without touching the messages' meaning;
 * w2a_gw_map_request() then maps the whole history, once the model has been resolved.
 * Both report a bad request as a w2a_gw_error with the JSON path of the offending
 * parameter (e.g. "messages[2].content[1].image_url.url").
 *
 * Mapping (docs/gateway.md has the full table and the reasons):
 *  - the final input is the last user message, or the trailing run of tool messages
 *    (one UserInput.tool_call_result, request-side field 12, per result);
 *  - every earlier non-system message becomes a Message in task_context.tasks[0]
 *    (fresh task id and message ids per request: no process-wide state); tool results
 *    there use the history-side call_mcp_tool, field 16;
 *  - system and developer messages are joined with a blank line into the
 *    SYSTEM_PROMPT attachment of the latest user query: the input's when the input is a
 *    user message, else the latest history user message's;
 *  - user images (data: URIs only) go into the InputContext of their message;
 *  - tools become mcp_context.tools with the JSON schema converted verbatim into a
 *    google.protobuf.Struct (no clean-up of empty values).
 * Every protobuf object lives in a request-scoped arena freed before return; the only
 * output is the packed bytes. */
#ifndef W2A_GW_MAP_REQUEST_H
#define W2A_GW_MAP_REQUEST_H

#include <json.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "gateway/errors.h"

typedef enum w2a_gw_tool_choice {
  W2A_GW_TC_AUTO = 0, /* absent or "auto": tools offered, the model decides */
  W2A_GW_TC_NONE,     /* "none": no tools sent at all */
  W2A_GW_TC_REQUIRED, /* "required": tools sent + an instruction to call one */
  W2A_GW_TC_FUNCTION, /* {"type":"function","function":{"name":X}}: only X + instruction */
} w2a_gw_tool_choice;

typedef struct w2a_gw_chat {
  const char *model; /* as requested (points into the JSON); NULL when absent */
  int stream;
  int include_usage; /* stream_options.include_usage */
  w2a_gw_tool_choice tool_choice;
  const char *forced_tool; /* W2A_GW_TC_FUNCTION: the name (points into the JSON) */
  int parallel_tool_calls; /* default 1 */
  json_object *messages;   /* borrowed from the root */
  json_object *tools;      /* NULL when absent */
} w2a_gw_chat;

typedef struct w2a_gw_map_opts {
  const char *os_platform; /* InputContext.operating_system.platform; NULL/"" omits it */
  int64_t now_s;           /* InputContext.current_time; 0 omits it */
  int max_depth;           /* deepest JSON nesting converted to a Struct (0: 64) */
  size_t max_bytes;        /* cap on the packed request (0: none) */
} w2a_gw_map_opts;

typedef struct w2a_gw_map_info {
  size_t history;             /* messages in task_context.tasks[0] */
  size_t inputs;              /* UserInputs.inputs */
  size_t tools;               /* mcp_context.tools */
  size_t images;              /* images attached anywhere */
  int input_tool_results;     /* the input is tool results (not a user query) */
  int system_in_history;      /* SYSTEM_PROMPT went to a history user message */
  uint64_t prompt_tokens_est; /* estimate over every text sent (w2a_gw_estimate_tokens) */
} w2a_gw_map_info;

/* Check the raw body before it is parsed, for what no JSON parser refuses but a Warp
 * Request cannot carry: bytes that are not UTF-8 (strictly: json-c's own check passes
 * overlong forms, which Warp's decoder refuses), and NUL characters (\u0000), at which
 * protobuf-c's C strings would silently cut the text. 0, or W2A_EINVAL with e filled
 * (400, naming the byte). */
int w2a_gw_body_check(const char *body, size_t len, w2a_gw_error *e);

/* Validate the top-level shape. root must be a JSON object. */
int w2a_gw_chat_parse(json_object *root, w2a_gw_chat *c, w2a_gw_error *e);

/* Map to packed protobuf bytes appended to out. model_id is the resolved Warp model. */
int w2a_gw_map_request(const w2a_gw_chat *c, const char *model_id, const w2a_gw_map_opts *o,
                       w2a_buf *out, w2a_gw_map_info *info, w2a_gw_error *e);

#endif
