/* summary.h - a compact JSON view of a decoded Request: the parts a gateway's mapping
 * decides (model, query, system prompt, history, tools, tool results, logging). It is
 * the answer of the `echo` scenario and part of every /_fakewarp/requests entry, so
 * mapping tests can assert on meaning rather than on protobuf layout.
 *
 * Also the helpers that read a Request's input: the user query, and the tool results
 * of the current round (request side field 12, plus trailing history results, field
 * 16). Nothing here allocates except the returned json_object (caller puts it). */
#ifndef W2A_FAKE_SUMMARY_H
#define W2A_FAKE_SUMMARY_H

#include <json-c/json.h>

#include "request.pb-c.h"

typedef Warp__MultiAgent__V1__Request w2a_fake_request;

json_object *w2a_fake_summary(const w2a_fake_request *rq);
/* JSON of a google.protobuf.Struct / Value (NULL → {} / null). */
json_object *w2a_fake_struct_json(const Google__Protobuf__Struct *s);

/* The first user query of the input, or NULL. */
const Warp__MultiAgent__V1__Request__Input__UserQuery *
w2a_fake_input_query(const w2a_fake_request *rq);
/* The first tool result of the input, or NULL. */
const Warp__MultiAgent__V1__Request__Input__ToolCallResult *
w2a_fake_input_tool_result(const w2a_fake_request *rq);
/* "Tool result: <text>" lines for every tool result of this round, or NULL when there
 * is none. Caller frees. */
char *w2a_fake_tool_results_text(const w2a_fake_request *rq);
/* The SYSTEM_PROMPT attachment of the query, or NULL. */
const char *w2a_fake_system_prompt(const Warp__MultiAgent__V1__Request__Input__UserQuery *uq);

#endif
