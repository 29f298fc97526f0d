/* events.c - interpretation of ResponseEvents; see events.h for what is reported.
 *
 * The state only grows by the ids it copies and the capped accumulators, so feeding a
 * long stream costs no memory per event. Tool-call arguments are rendered into one
 * reused scratch buffer. The Struct renderer is local rather than the generic
 * transcoder's because it runs once per tool call on the streaming path and needs no
 * descriptor walk: Struct/Value/ListValue are the only shapes it meets. */
#include "events.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define DEFAULT_STRUCT_DEPTH 64

typedef Warp__MultiAgent__V1__Message Msg;
typedef Warp__MultiAgent__V1__ResponseEvent__StreamFinished Finished;

const char *w2a_finish_reason_name(w2a_finish_reason r) {
  switch (r) {
  case W2A_FINISH_NONE: return "none";
  case W2A_FINISH_UNSPECIFIED: return "unspecified";
  case W2A_FINISH_OTHER: return "other";
  case W2A_FINISH_DONE: return "done";
  case W2A_FINISH_MAX_TOKENS: return "max_token_limit";
  case W2A_FINISH_QUOTA: return "quota_limit";
  case W2A_FINISH_CONTEXT_EXCEEDED: return "context_window_exceeded";
  case W2A_FINISH_LLM_UNAVAILABLE: return "llm_unavailable";
  case W2A_FINISH_INTERNAL_ERROR: return "internal_error";
  }
  return "unknown";
}

const char *w2a_events_type_name(const Warp__MultiAgent__V1__ResponseEvent *ev) {
  switch (ev->type_case) {
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_INIT: return "init";
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS: return "client_actions";
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_FINISHED: return "finished";
  default: return "unknown";
  }
}

const char *w2a_events_action_name(const Warp__MultiAgent__V1__ClientAction *a) {
  /* Names come from the descriptor, so they always match the .proto. */
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field(a->base.descriptor, (unsigned)a->action_case);
  return f ? f->name : "unknown";
}

void w2a_events_init(w2a_events *s, const w2a_events_opts *o) {
  memset(s, 0, sizeof *s);
  if (o) s->o = *o;
  if (!s->o.struct_max_depth) s->o.struct_max_depth = DEFAULT_STRUCT_DEPTH;
  w2a_buf_init(&s->text, s->o.accumulate_max ? s->o.accumulate_max : 1);
  w2a_buf_init(&s->reasoning, s->o.accumulate_max ? s->o.accumulate_max : 1);
  w2a_buf_init(&s->scratch, 0);
}

void w2a_events_free(w2a_events *s) {
  free(s->conversation_id);
  free(s->request_id);
  free(s->error_message);
  w2a_buf_free(&s->text);
  w2a_buf_free(&s->reasoning);
  w2a_buf_free(&s->scratch);
  s->conversation_id = s->request_id = s->error_message = NULL;
}

/* ---- google.protobuf.Struct -> JSON ------------------------------------------------- */

static int value_to_json(const Google__Protobuf__Value *v, size_t depth, w2a_buf *out);

static int put_number(double d, w2a_buf *out) {
  if (!isfinite(d)) return w2a_buf_puts(out, "null");
  char tmp[32];
  /* the shortest form that reads back as the same double */
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  return w2a_buf_puts(out, tmp);
}

static int struct_to_json(const Google__Protobuf__Struct *st, size_t depth, w2a_buf *out) {
  if (!depth) return W2A_ETOOBIG;
  int rc = w2a_buf_putc(out, '{');
  for (size_t i = 0; !rc && st && i < st->n_fields; i++) {
    const Google__Protobuf__Struct__FieldsEntry *e = st->fields[i];
    if (i && (rc = w2a_buf_putc(out, ','))) break;
    const char *k = e->key ? e->key : "";
    if ((rc = w2a_buf_put_json_str(out, k, strlen(k)))) break;
    if ((rc = w2a_buf_putc(out, ':'))) break;
    rc = value_to_json(e->value, depth - 1, out);
  }
  return rc ? rc : w2a_buf_putc(out, '}');
}

static int value_to_json(const Google__Protobuf__Value *v, size_t depth, w2a_buf *out) {
  if (!depth) return W2A_ETOOBIG;
  if (!v) return w2a_buf_puts(out, "null");
  switch (v->kind_case) {
  case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: return put_number(v->number_value, out);
  case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: {
    const char *s = v->string_value ? v->string_value : "";
    return w2a_buf_put_json_str(out, s, strlen(s));
  }
  case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
    return w2a_buf_puts(out, v->bool_value ? "true" : "false");
  case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
    return struct_to_json(v->struct_value, depth, out);
  case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE: {
    int rc = w2a_buf_putc(out, '[');
    const Google__Protobuf__ListValue *l = v->list_value;
    for (size_t i = 0; !rc && l && i < l->n_values; i++) {
      if (i && (rc = w2a_buf_putc(out, ','))) break;
      rc = value_to_json(l->values[i], depth - 1, out);
    }
    return rc ? rc : w2a_buf_putc(out, ']');
  }
  default: return w2a_buf_puts(out, "null"); /* null_value, or unset */
  }
}

int w2a_events_struct_to_json(const Google__Protobuf__Struct *st, size_t max_depth, w2a_buf *out) {
  size_t len = out->len;
  int rc = struct_to_json(st, max_depth ? max_depth : DEFAULT_STRUCT_DEPTH, out);
  if (rc) {
    out->len = len; /* leave no half-written JSON behind */
    if (out->data) out->data[len] = 0;
  }
  return rc;
}

/* ---- the state machine ------------------------------------------------------------- */

static const Google__Protobuf__Value *struct_get(const Google__Protobuf__Struct *st,
                                                 const char *key) {
  for (size_t i = 0; st && i < st->n_fields; i++)
    if (st->fields[i]->key && !strcmp(st->fields[i]->key, key)) return st->fields[i]->value;
  return NULL;
}

static int emit_tool_call(w2a_events *s, const Msg *m, w2a_ev_fn cb, void *ud, w2a_err *err) {
  const Warp__MultiAgent__V1__Message__ToolCall *tc = m->tool_call;
  const Warp__MultiAgent__V1__Message__ToolCall__CallMCPTool *call = tc->call_mcp_tool;
  w2a_ev ev = {.kind = W2A_EV_TOOL_CALL,
               .tool_call_id = tc->tool_call_id ? tc->tool_call_id : "",
               .name = call->name ? call->name : "",
               .message_id = m->id,
               .task_id = m->task_id,
               .index = s->tool_calls};
  const Google__Protobuf__Struct *args = call->args;
  const char *raw_args = NULL; /* arguments that arrived already as JSON text */

  /* The model calling a tool named "call_mcp_tool" with {name, args}: unwrap it. */
  const Google__Protobuf__Value *in_name = struct_get(args, "name");
  if (!strcmp(ev.name, "call_mcp_tool") && in_name &&
      in_name->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE && in_name->string_value &&
      in_name->string_value[0]) {
    const Google__Protobuf__Value *in_args = struct_get(args, "args");
    ev.name = in_name->string_value;
    ev.unwrapped = 1;
    args = NULL;
    if (in_args && in_args->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE)
      args = in_args->struct_value;
    else if (in_args && in_args->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE &&
             in_args->string_value && in_args->string_value[0])
      raw_args = in_args->string_value; /* some models send the arguments pre-encoded */
  }

  w2a_buf_reset(&s->scratch);
  int rc = raw_args ? w2a_buf_puts(&s->scratch, raw_args)
                    : w2a_events_struct_to_json(args, s->o.struct_max_depth, &s->scratch);
  if (rc)
    return w2a_errf(err, rc, "tool call %s (%s): arguments %s", ev.tool_call_id, ev.name,
                    rc == W2A_ETOOBIG ? "nested too deeply (STRUCT_MAX_DEPTH)" : w2a_strerror(rc));
  ev.args_json = s->scratch.data;
  ev.args_len = s->scratch.len;
  s->tool_calls++;
  return cb ? cb(ud, &ev) : 0;
}

static int emit_delta(w2a_events *s, w2a_ev_kind kind, const char *t, const Msg *m,
                      const char *task_id, w2a_ev_fn cb, void *ud) {
  if (!t || !t[0]) return 0;
  size_t n = strlen(t);
  w2a_buf *acc = kind == W2A_EV_TEXT ? &s->text : &s->reasoning;
  if (kind == W2A_EV_TEXT)
    s->text_bytes += n;
  else
    s->reasoning_bytes += n;
  if (s->o.accumulate_max && w2a_buf_append(acc, t, n)) s->truncated = 1;
  w2a_ev ev = {.kind = kind,
               .text = t,
               .len = n,
               .message_id = m->id,
               .task_id = m->task_id && m->task_id[0] ? m->task_id : task_id};
  return cb ? cb(ud, &ev) : 0;
}

static int on_message(w2a_events *s, const Msg *m, const char *task_id, int tools, w2a_ev_fn cb,
                      void *ud, w2a_err *err) {
  if (!m) return 0;
  int rc = 0;
  if (m->message_case == WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_AGENT_OUTPUT && m->agent_output) {
    /* reasoning precedes the answer it led to */
    rc = emit_delta(s, W2A_EV_REASONING, m->agent_output->reasoning, m, task_id, cb, ud);
    if (!rc) rc = emit_delta(s, W2A_EV_TEXT, m->agent_output->text, m, task_id, cb, ud);
  } else if (tools && m->message_case == WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL &&
             m->tool_call &&
             m->tool_call->tool_case ==
                 WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_CALL_MCP_TOOL &&
             m->tool_call->call_mcp_tool) {
    rc = emit_tool_call(s, m, cb, ud, err);
  }
  return rc;
}

static int dup_str(char **dst, const char *src) {
  free(*dst);
  *dst = NULL;
  if (src && !(*dst = strdup(src))) return W2A_ENOMEM;
  return 0;
}

static int on_finished(w2a_events *s, const Finished *f, w2a_ev_fn cb, void *ud, w2a_err *err) {
  w2a_ev ev = {.kind = W2A_EV_FINISHED};
  switch (f->reason_case) {
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_OTHER:
    ev.reason = W2A_FINISH_OTHER;
    break;
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_DONE:
    ev.reason = W2A_FINISH_DONE;
    break;
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_MAX_TOKEN_LIMIT:
    ev.reason = W2A_FINISH_MAX_TOKENS;
    break;
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_QUOTA_LIMIT:
    ev.reason = W2A_FINISH_QUOTA;
    break;
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_CONTEXT_WINDOW_EXCEEDED:
    ev.reason = W2A_FINISH_CONTEXT_EXCEEDED;
    break;
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_LLM_UNAVAILABLE:
    ev.reason = W2A_FINISH_LLM_UNAVAILABLE;
    break;
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_INTERNAL_ERROR:
    ev.reason = W2A_FINISH_INTERNAL_ERROR;
    ev.error_message =
        f->internal_error && f->internal_error->message ? f->internal_error->message : "";
    if (dup_str(&s->error_message, ev.error_message))
      return w2a_errf(err, W2A_ENOMEM, "finished: out of memory");
    break;
  default: ev.reason = W2A_FINISH_UNSPECIFIED; break;
  }
  ev.usage = f->token_usage;
  ev.n_usage = f->n_token_usage;
  for (size_t i = 0; i < f->n_token_usage; i++) {
    ev.input_tokens += f->token_usage[i]->total_input;
    ev.output_tokens += f->token_usage[i]->output;
  }
  if (f->request_cost) {
    ev.has_request_cost = 1;
    ev.request_cost = f->request_cost->exact;
  }
  if (f->context_window_info) {
    ev.has_context_window = 1;
    ev.context_window_usage = f->context_window_info->context_window_usage;
  }
  ev.should_refresh_model_config = f->should_refresh_model_config;
  s->reason = ev.reason;
  return cb ? cb(ud, &ev) : 0;
}

int w2a_events_feed(w2a_events *s, const Warp__MultiAgent__V1__ResponseEvent *ev, w2a_ev_fn cb,
                    void *ud, w2a_err *err) {
  s->events++;
  if (s->reason != W2A_FINISH_NONE) { /* the stream is over; whatever follows is noise */
    s->after_finish++;
    return 0;
  }
  int rc = 0;
  switch (ev->type_case) {
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_INIT: {
    const Warp__MultiAgent__V1__ResponseEvent__StreamInit *in = ev->init;
    if (!in) break;
    if (dup_str(&s->conversation_id, in->conversation_id) ||
        dup_str(&s->request_id, in->request_id))
      return w2a_errf(err, W2A_ENOMEM, "init: out of memory");
    w2a_ev out = {.kind = W2A_EV_INIT,
                  .conversation_id = s->conversation_id ? s->conversation_id : "",
                  .request_id = s->request_id ? s->request_id : ""};
    rc = cb ? cb(ud, &out) : 0;
    break;
  }
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS: {
    const Warp__MultiAgent__V1__ResponseEvent__ClientActions *ca = ev->client_actions;
    for (size_t i = 0; !rc && ca && i < ca->n_actions; i++) {
      const Warp__MultiAgent__V1__ClientAction *a = ca->actions[i];
      switch (a->action_case) {
      case WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_ADD_MESSAGES_TO_TASK: {
        const Warp__MultiAgent__V1__ClientAction__AddMessagesToTask *am = a->add_messages_to_task;
        for (size_t j = 0; !rc && am && j < am->n_messages; j++)
          rc = on_message(s, am->messages[j], am->task_id, 1, cb, ud, err);
        break;
      }
      case WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_APPEND_TO_MESSAGE_CONTENT: {
        const Warp__MultiAgent__V1__ClientAction__AppendToMessageContent *ap =
            a->append_to_message_content;
        if (ap) rc = on_message(s, ap->message, ap->task_id, 0, cb, ud, err);
        break;
      }
      default: break; /* see events.h: deliberately not reported */
      }
    }
    break;
  }
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_FINISHED:
    if (ev->finished)
      rc = on_finished(s, ev->finished, cb, ud, err);
    else {
      static const Finished empty = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__INIT;
      rc = on_finished(s, &empty, cb, ud, err);
    }
    break;
  default: break;
  }
  return rc;
}
