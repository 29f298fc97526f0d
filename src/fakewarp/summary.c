/* summary.c - see summary.h. */
#include "fakewarp/summary.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* Input.user_query (2) and Input.tool_call_result (3) are deprecated in the schema, but
 * a stand-in for the server must still accept what older clients send there. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

typedef Warp__MultiAgent__V1__Request__Input__UserQuery UQ;
typedef Warp__MultiAgent__V1__Request__Input__ToolCallResult TR;
typedef Warp__MultiAgent__V1__Request__Input__UserInputs__UserInput UserInput;

static json_object *value_json(const Google__Protobuf__Value *v, int depth);

json_object *w2a_fake_struct_json(const Google__Protobuf__Struct *s) {
  json_object *o = json_object_new_object();
  if (!s) return o;
  for (size_t i = 0; i < s->n_fields; i++)
    json_object_object_add(o, s->fields[i]->key, value_json(s->fields[i]->value, 1));
  return o;
}

static json_object *value_json(const Google__Protobuf__Value *v, int depth) {
  if (!v || depth > 64) return NULL;
  switch (v->kind_case) {
  case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: return json_object_new_double(v->number_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: return json_object_new_string(v->string_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE: return json_object_new_boolean(v->bool_value);
  case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE: {
    json_object *o = json_object_new_object();
    for (size_t i = 0; v->struct_value && i < v->struct_value->n_fields; i++)
      json_object_object_add(o, v->struct_value->fields[i]->key,
                             value_json(v->struct_value->fields[i]->value, depth + 1));
    return o;
  }
  case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
    json_object *a = json_object_new_array();
    for (size_t i = 0; v->list_value && i < v->list_value->n_values; i++)
      json_object_array_add(a, value_json(v->list_value->values[i], depth + 1));
    return a;
  }
  default: return NULL;
  }
}

static json_object *str_or_null(const char *s) {
  return s && *s ? json_object_new_string(s) : NULL;
}

const char *w2a_fake_system_prompt(const UQ *uq) {
  for (size_t i = 0; uq && i < uq->n_referenced_attachments; i++) {
    const Warp__MultiAgent__V1__Request__Input__UserQuery__ReferencedAttachmentsEntry *e =
        uq->referenced_attachments[i];
    if (e->key && !strcmp(e->key, "SYSTEM_PROMPT") && e->value &&
        e->value->value_case == WARP__MULTI_AGENT__V1__ATTACHMENT__VALUE_PLAIN_TEXT)
      return e->value->plain_text;
  }
  return NULL;
}

/* The first of Input.user_inputs.inputs holding member `which`, else NULL. */
static const UserInput *user_input(const Warp__MultiAgent__V1__Request__Input *in, int which) {
  if (!in || in->type_case != WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_USER_INPUTS ||
      !in->user_inputs)
    return NULL;
  for (size_t i = 0; i < in->user_inputs->n_inputs; i++)
    if ((int)in->user_inputs->inputs[i]->input_case == which) return in->user_inputs->inputs[i];
  return NULL;
}

const UQ *w2a_fake_input_query(const w2a_fake_request *rq) {
  const Warp__MultiAgent__V1__Request__Input *in = rq->input;
  if (in && in->type_case == WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_USER_QUERY)
    return in->user_query;
  const UserInput *u = user_input(
      in, WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INPUT_USER_QUERY);
  return u ? u->user_query : NULL;
}

const TR *w2a_fake_input_tool_result(const w2a_fake_request *rq) {
  const Warp__MultiAgent__V1__Request__Input *in = rq->input;
  if (in && in->type_case == WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_TOOL_CALL_RESULT)
    return in->tool_call_result;
  const UserInput *u = user_input(
      in, WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INPUT_TOOL_CALL_RESULT);
  return u ? u->tool_call_result : NULL;
}

/* Text of an MCP tool result: the text parts joined by "\n", or "error: <message>". */
static void mcp_text(w2a_buf *b, const Warp__MultiAgent__V1__CallMCPToolResult *r) {
  if (!r) {
    w2a_buf_puts(b, "(no result)");
  } else if (r->result_case == WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__RESULT_ERROR) {
    w2a_buf_printf(b, "error: %s", r->error && r->error->message ? r->error->message : "");
  } else if (r->result_case == WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__RESULT_SUCCESS &&
             r->success) {
    int any = 0;
    for (size_t i = 0; i < r->success->n_results; i++) {
      const Warp__MultiAgent__V1__CallMCPToolResult__Success__Result *x = r->success->results[i];
      if (x->result_case !=
              WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__RESULT__RESULT_TEXT ||
          !x->text)
        continue;
      if (any++) w2a_buf_putc(b, '\n');
      w2a_buf_puts(b, x->text->text);
    }
  } else {
    w2a_buf_puts(b, "(empty result)");
  }
}

static const Warp__MultiAgent__V1__CallMCPToolResult *req_mcp(const TR *t) {
  return t->result_case ==
                 WARP__MULTI_AGENT__V1__REQUEST__INPUT__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL
             ? t->call_mcp_tool
             : NULL;
}

static const Warp__MultiAgent__V1__CallMCPToolResult *
hist_mcp(const Warp__MultiAgent__V1__Message__ToolCallResult *t) {
  return t->result_case == WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL
             ? t->call_mcp_tool
             : NULL;
}

char *w2a_fake_tool_results_text(const w2a_fake_request *rq) {
  w2a_buf b;
  w2a_buf_init(&b, 1 << 20);
  int n = 0;
  /* Results already in history after the last non-result message belong to this round
   * (a client may put all but the last parallel result there). */
  if (rq->task_context && rq->task_context->n_tasks) {
    const Warp__MultiAgent__V1__Task *t = rq->task_context->tasks[rq->task_context->n_tasks - 1];
    size_t k = t->n_messages;
    while (k > 0 && t->messages[k - 1]->message_case ==
                        WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL_RESULT)
      k--;
    int have_input_result = w2a_fake_input_tool_result(rq) != NULL;
    for (size_t i = k; have_input_result && i < t->n_messages; i++) {
      if (n++) w2a_buf_putc(&b, '\n');
      w2a_buf_puts(&b, "Tool result: ");
      mcp_text(&b, hist_mcp(t->messages[i]->tool_call_result));
    }
  }
  const Warp__MultiAgent__V1__Request__Input *in = rq->input;
  if (in && in->type_case == WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_TOOL_CALL_RESULT) {
    if (n++) w2a_buf_putc(&b, '\n');
    w2a_buf_puts(&b, "Tool result: ");
    mcp_text(&b, req_mcp(in->tool_call_result));
  } else if (in && in->type_case == WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_USER_INPUTS &&
             in->user_inputs) {
    for (size_t i = 0; i < in->user_inputs->n_inputs; i++) {
      const Warp__MultiAgent__V1__Request__Input__UserInputs__UserInput *u =
          in->user_inputs->inputs[i];
      if (u->input_case !=
          WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INPUT_TOOL_CALL_RESULT)
        continue;
      if (n++) w2a_buf_putc(&b, '\n');
      w2a_buf_puts(&b, "Tool result: ");
      mcp_text(&b, req_mcp(u->tool_call_result));
    }
  }
  if (!n) {
    w2a_buf_free(&b);
    return NULL;
  }
  return w2a_buf_steal(&b, NULL);
}

static json_object *mcp_json(const Warp__MultiAgent__V1__CallMCPToolResult *r) {
  w2a_buf b;
  w2a_buf_init(&b, 1 << 20);
  mcp_text(&b, r);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "text", json_object_new_string(b.data ? b.data : ""));
  json_object_object_add(
      o, "is_error",
      json_object_new_boolean(r && r->result_case ==
                                       WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__RESULT_ERROR));
  w2a_buf_free(&b);
  return o;
}

static json_object *message_json(const Warp__MultiAgent__V1__Message *m) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "id", json_object_new_string(m->id));
  switch (m->message_case) {
  case WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_USER_QUERY:
    json_object_object_add(o, "type", json_object_new_string("user_query"));
    json_object_object_add(o, "text", json_object_new_string(m->user_query->query));
    break;
  case WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_AGENT_OUTPUT:
    json_object_object_add(o, "type", json_object_new_string("agent_output"));
    json_object_object_add(o, "text", json_object_new_string(m->agent_output->text));
    if (m->agent_output->reasoning && *m->agent_output->reasoning)
      json_object_object_add(o, "reasoning", json_object_new_string(m->agent_output->reasoning));
    break;
  case WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL: {
    const Warp__MultiAgent__V1__Message__ToolCall *tc = m->tool_call;
    json_object_object_add(o, "type", json_object_new_string("tool_call"));
    json_object_object_add(o, "tool_call_id", json_object_new_string(tc->tool_call_id));
    if (tc->tool_case == WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_CALL_MCP_TOOL) {
      json_object_object_add(o, "name", json_object_new_string(tc->call_mcp_tool->name));
      json_object_object_add(o, "args", w2a_fake_struct_json(tc->call_mcp_tool->args));
    } else if (tc->tool_case == WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_SERVER) {
      json_object_object_add(o, "server", json_object_new_string(tc->server->payload));
    }
    break;
  }
  case WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL_RESULT:
    json_object_object_add(o, "type", json_object_new_string("tool_call_result"));
    json_object_object_add(o, "tool_call_id",
                           json_object_new_string(m->tool_call_result->tool_call_id));
    json_object_object_add(o, "result", mcp_json(hist_mcp(m->tool_call_result)));
    break;
  case WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_SERVER_EVENT:
    json_object_object_add(o, "type", json_object_new_string("server_event"));
    break;
  default: json_object_object_add(o, "type", json_object_new_int(m->message_case)); break;
  }
  return o;
}

json_object *w2a_fake_summary(const w2a_fake_request *rq) {
  json_object *o = json_object_new_object();
  const Warp__MultiAgent__V1__Request__Settings *st = rq->settings;
  const Warp__MultiAgent__V1__Request__Settings__ModelConfig *mc = st ? st->model_config : NULL;
  json_object_object_add(o, "model", json_object_new_string(mc ? mc->base : ""));
  if (mc) {
    json_object *m = json_object_new_object();
    json_object_object_add(m, "base", str_or_null(mc->base));
    json_object_object_add(m, "planning", str_or_null(mc->planning));
    json_object_object_add(m, "coding", str_or_null(mc->coding));
    json_object_object_add(m, "cli_agent", str_or_null(mc->cli_agent));
    json_object_object_add(o, "model_config", m);
  }
  json_object_object_add(o, "conversation_id",
                         str_or_null(rq->metadata ? rq->metadata->conversation_id : NULL));
  const UQ *uq = w2a_fake_input_query(rq);
  json_object_object_add(o, "query", uq ? json_object_new_string(uq->query) : NULL);
  json_object_object_add(o, "system_prompt", str_or_null(w2a_fake_system_prompt(uq)));
  if (uq) {
    json_object *att = json_object_new_object();
    for (size_t i = 0; i < uq->n_referenced_attachments; i++) {
      const Warp__MultiAgent__V1__Attachment *a = uq->referenced_attachments[i]->value;
      json_object_object_add(att, uq->referenced_attachments[i]->key,
                             a && a->value_case ==
                                         WARP__MULTI_AGENT__V1__ATTACHMENT__VALUE_PLAIN_TEXT
                                 ? json_object_new_string(a->plain_text)
                                 : json_object_new_string("(non-text)"));
    }
    json_object_object_add(o, "attachments", att);
  }
  /* inputs */
  json_object *inputs = json_object_new_array();
  const Warp__MultiAgent__V1__Request__Input *in = rq->input;
  if (in && in->type_case == WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_USER_INPUTS &&
      in->user_inputs) {
    for (size_t i = 0; i < in->user_inputs->n_inputs; i++) {
      const Warp__MultiAgent__V1__Request__Input__UserInputs__UserInput *u =
          in->user_inputs->inputs[i];
      json_object *x = json_object_new_object();
      if (u->input_case ==
          WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INPUT_USER_QUERY) {
        json_object_object_add(x, "type", json_object_new_string("user_query"));
        json_object_object_add(x, "query", json_object_new_string(u->user_query->query));
      } else if (
          u->input_case ==
          WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INPUT_TOOL_CALL_RESULT) {
        json_object_object_add(x, "type", json_object_new_string("tool_call_result"));
        json_object_object_add(x, "tool_call_id",
                               json_object_new_string(u->tool_call_result->tool_call_id));
        json_object_object_add(x, "result", mcp_json(req_mcp(u->tool_call_result)));
      }
      json_object_array_add(inputs, x);
    }
  } else if (in && in->type_case == WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_TOOL_CALL_RESULT) {
    json_object *x = json_object_new_object();
    json_object_object_add(x, "type", json_object_new_string("tool_call_result"));
    json_object_object_add(x, "tool_call_id",
                           json_object_new_string(in->tool_call_result->tool_call_id));
    json_object_object_add(x, "result", mcp_json(req_mcp(in->tool_call_result)));
    json_object_array_add(inputs, x);
  }
  json_object_object_add(o, "inputs", inputs);
  json_object_object_add(o, "has_context", json_object_new_boolean(in && in->context));
  /* history */
  json_object *tasks = json_object_new_array();
  for (size_t i = 0; rq->task_context && i < rq->task_context->n_tasks; i++) {
    const Warp__MultiAgent__V1__Task *t = rq->task_context->tasks[i];
    json_object *tj = json_object_new_object();
    json_object_object_add(tj, "id", json_object_new_string(t->id));
    json_object_object_add(tj, "description", json_object_new_string(t->description));
    json_object *ms = json_object_new_array();
    for (size_t k = 0; k < t->n_messages; k++)
      json_object_array_add(ms, message_json(t->messages[k]));
    json_object_object_add(tj, "messages", ms);
    json_object_array_add(tasks, tj);
  }
  json_object_object_add(o, "tasks", tasks);
  json_object_object_add(o, "active_task_id",
                         str_or_null(rq->task_context ? rq->task_context->active_task_id : NULL));
  /* tools */
  json_object *tools = json_object_new_array();
  for (size_t i = 0; rq->mcp_context && i < rq->mcp_context->n_tools; i++) {
    const Warp__MultiAgent__V1__Request__MCPContext__MCPTool *t = rq->mcp_context->tools[i];
    json_object *tj = json_object_new_object();
    json_object_object_add(tj, "name", json_object_new_string(t->name));
    json_object_object_add(tj, "description", json_object_new_string(t->description));
    json_object_object_add(tj, "input_schema", w2a_fake_struct_json(t->input_schema));
    json_object_array_add(tools, tj);
  }
  json_object_object_add(o, "tools", tools);
  if (st) {
    json_object *sup = json_object_new_array();
    for (size_t i = 0; i < st->n_supported_tools; i++)
      json_object_array_add(sup, json_object_new_int(st->supported_tools[i]));
    json_object_object_add(o, "supported_tools", sup);
    json_object_object_add(o, "supports_parallel_tool_calls",
                           json_object_new_boolean(st->supports_parallel_tool_calls));
  }
  json_object *lg = json_object_new_object();
  for (size_t i = 0; rq->metadata && i < rq->metadata->n_logging; i++)
    json_object_object_add(lg, rq->metadata->logging[i]->key,
                           value_json(rq->metadata->logging[i]->value, 1));
  json_object_object_add(o, "logging", lg);
  return o;
}
