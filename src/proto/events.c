/* events.c - interpretation of ResponseEvents; see events.h for what is reported.
 *
 * The state only grows by the ids it copies and the capped accumulators, so feeding a
 * long stream costs no memory per event. Tool-call arguments are rendered into one
 * reused scratch buffer. The Struct renderer is local rather than the generic
 * transcoder's because it runs once per tool call on the streaming path and needs no
 * descriptor walk: Struct/Value/ListValue are the only shapes it meets. */
#include "events.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "proto/pbjson.h"

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
  w2a_buf_init(&s->wire, 0);
}

void w2a_events_free(w2a_events *s) {
  free(s->conversation_id);
  free(s->request_id);
  free(s->error_message);
  w2a_buf_free(&s->text);
  w2a_buf_free(&s->reasoning);
  w2a_buf_free(&s->scratch);
  w2a_buf_free(&s->wire);
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

/* ---- straight from the wire ----------------------------------------------------------- */

/* Why not unpack: a streamed answer is thousands of one-fragment append events, and for
 * each, building a ResponseEvent (seven messages, five strings, a dozen allocations) only
 * to read two strings back cost more than everything else the gateway does per event.
 * The bytes are validated exactly as w2a_pbjson_unpack validates them; then wire_shape
 * walks the one shape it knows with protobuf-c's rules (the last occurrence of a singular
 * field wins, the last member seen of a oneof is the one set, repeated occurrences add
 * up, fields w2a_events_feed does not read are skipped), the few structs
 * w2a_events_feed reads are built on the stack, and it interprets them, so the meaning
 * of an event stays defined in one place. Anything else is unpacked. Field numbers come
 * from the descriptors, so a changed .proto cannot silently disagree with this. */

#define WIRE_MAX_ACTIONS 4

typedef struct wire_ids {
  uint64_t ev_oneof, act_oneof, m_oneof; /* members of ResponseEvent.type, ClientAction.action,
                                            Message.message (field numbers below 64) */
  uint32_t ev_actions, ca_actions, act_append, ap_task, ap_msg, m_id, m_task, m_ao, ao_text,
      ao_reasoning;
  int ok;
} wire_ids;

static wire_ids wids;
static pthread_once_t wids_once = PTHREAD_ONCE_INIT;

static uint32_t field_id(const ProtobufCMessageDescriptor *d, const char *name, uint64_t *oneof) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
  if (!f || f->id >= 64) return 0;
  if (oneof) {
    *oneof = 0;
    for (unsigned i = 0; i < d->n_fields; i++)
      if ((d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
          d->fields[i].quantifier_offset == f->quantifier_offset) {
        if (d->fields[i].id >= 64) return 0;
        *oneof |= 1ull << d->fields[i].id;
      }
  }
  return f->id;
}

static void wids_build(void) {
  const ProtobufCMessageDescriptor *ap =
      &warp__multi_agent__v1__client_action__append_to_message_content__descriptor;
  const ProtobufCMessageDescriptor *msg = &warp__multi_agent__v1__message__descriptor;
  const ProtobufCMessageDescriptor *ao = &warp__multi_agent__v1__message__agent_output__descriptor;
  wire_ids w = {0};
  w.ev_actions =
      field_id(&warp__multi_agent__v1__response_event__descriptor, "client_actions", &w.ev_oneof);
  w.ca_actions =
      field_id(&warp__multi_agent__v1__response_event__client_actions__descriptor, "actions", NULL);
  w.act_append = field_id(&warp__multi_agent__v1__client_action__descriptor,
                          "append_to_message_content", &w.act_oneof);
  w.ap_task = field_id(ap, "task_id", NULL);
  w.ap_msg = field_id(ap, "message", NULL);
  w.m_id = field_id(msg, "id", NULL);
  w.m_task = field_id(msg, "task_id", NULL);
  w.m_ao = field_id(msg, "agent_output", &w.m_oneof);
  w.ao_text = field_id(ao, "text", NULL);
  w.ao_reasoning = field_id(ao, "reasoning", NULL);
  w.ok = w.ev_actions && w.ca_actions && w.act_append && w.ap_task && w.ap_msg && w.m_id &&
         w.m_task && w.m_ao && w.ao_text && w.ao_reasoning;
  wids = w;
}

typedef struct wspan {
  const uint8_t *p;
  uint32_t n, set;
} wspan;

static inline __attribute__((always_inline)) int wire_varint(const uint8_t **pp, const uint8_t *end,
                                                             uint64_t *v) {
  const uint8_t *p = *pp;
  if (p < end && *p < 0x80) {
    *v = *p;
    *pp = p + 1;
    return 0;
  }
  uint64_t r = 0;
  for (unsigned sh = 0; sh < 64; sh += 7) {
    if (p >= end) return -1;
    r |= (uint64_t)(*p & 0x7f) << sh;
    if (!(*p++ & 0x80)) {
      *v = r;
      *pp = p;
      return 0;
    }
  }
  return -1;
}

/* The next field of a message that passed validation: its number and value (for wire
 * type 2 the payload). -1 on bytes it cannot read, which validation rules out. */
static inline __attribute__((always_inline)) int wire_next(const uint8_t **pp, const uint8_t *end,
                                                           uint32_t *fnum, wspan *val) {
  const uint8_t *p = *pp;
  uint64_t tag, n;
  if (end - p >= 2 && (p[0] & 0x87) == 2 && p[1] < 0x80) {
    /* The usual field here: one-byte tag, wire type 2, one-byte length. */
    n = p[1];
    if (n > (uint64_t)(end - p - 2)) return -1;
    *fnum = p[0] >> 3;
    val->p = p + 2;
    val->n = (uint32_t)n;
    val->set = 1;
    *pp = p + 2 + n;
    return 0;
  }
  if (wire_varint(&p, end, &tag)) return -1;
  switch (tag & 7) {
  case 0:
    val->p = p;
    while (p < end && (*p & 0x80))
      p++;
    if (p++ >= end) return -1;
    n = (uint64_t)(p - val->p);
    break;
  case 1: n = 8; goto fixed;
  case 5:
    n = 4;
  fixed:
    if ((uint64_t)(end - p) < n) return -1;
    val->p = p;
    p += n;
    break;
  case 2:
    if (wire_varint(&p, end, &n) || n > (uint64_t)(end - p)) return -1;
    val->p = p;
    p += n;
    break;
  default: return -1;
  }
  *fnum = (uint32_t)(tag >> 3);
  val->n = (uint32_t)n;
  val->set = 1;
  *pp = p;
  return 0;
}

typedef struct wact {
  wspan task, msg, id, mtask, text, reasoning;
} wact;

/* 1 when buf is client_actions of append_to_message_content actions whose messages (if
 * any) hold agent_output; their strings in acts. 0 for any other event. */
static int wire_shape(const uint8_t *p, const uint8_t *end, wact *acts, size_t *nacts) {
  const wire_ids *w = &wids;
  uint32_t f, last = 0;
  wspan v, sub = {0};
  while (p < end) {
    if (wire_next(&p, end, &f, &v) || f >= 64) return 0;
    if (w->ev_oneof >> f & 1) last = f, sub = v;
  }
  if (last != w->ev_actions) return 0;
  *nacts = 0;
  for (p = sub.p, end = sub.p + sub.n; p < end;) {
    if (wire_next(&p, end, &f, &v)) return 0;
    if (f != w->ca_actions) continue;
    if (*nacts == WIRE_MAX_ACTIONS) return 0;
    wact *a = &acts[(*nacts)++];
    memset(a, 0, sizeof *a);
    wspan x, ap = {0}, ao = {0};
    last = 0;
    for (const uint8_t *q = v.p, *qe = v.p + v.n; q < qe;) {
      if (wire_next(&q, qe, &f, &x) || f >= 64) return 0;
      if (w->act_oneof >> f & 1) last = f, ap = x;
    }
    if (last != w->act_append) return 0;
    for (const uint8_t *q = ap.p, *qe = ap.p + ap.n; q < qe;) {
      if (wire_next(&q, qe, &f, &x)) return 0;
      if (f == w->ap_task) a->task = x;
      if (f == w->ap_msg) a->msg = x; /* validation refuses a second one */
    }
    if (!a->msg.set) continue;
    last = 0;
    for (const uint8_t *q = a->msg.p, *qe = a->msg.p + a->msg.n; q < qe;) {
      if (wire_next(&q, qe, &f, &x) || f >= 64) return 0;
      if (f == w->m_id) a->id = x;
      if (f == w->m_task) a->mtask = x;
      if (w->m_oneof >> f & 1) last = f, ao = x;
    }
    if (last != w->m_ao) return 0;
    for (const uint8_t *q = ao.p, *qe = ao.p + ao.n; q < qe;) {
      if (wire_next(&q, qe, &f, &x)) return 0;
      if (f == w->ao_text) a->text = x;
      if (f == w->ao_reasoning) a->reasoning = x;
    }
  }
  return 1;
}

/* A NUL-terminated copy in s->wire (room reserved beforehand), or protobuf-c's default
 * "" for an absent field. */
static char *wire_str(w2a_events *s, const wspan *v) {
  if (!v->set) return (char *)protobuf_c_empty_string;
  char *d = s->wire.data + s->wire.len;
  memcpy(d, v->p, v->n);
  d[v->n] = 0;
  s->wire.len += v->n + 1;
  return d;
}

static int feed_shape(w2a_events *s, const wact *acts, size_t nacts, w2a_ev_fn cb, void *ud,
                      w2a_err *err) {
  static const Warp__MultiAgent__V1__ClientAction act0 = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
  static const Warp__MultiAgent__V1__ClientAction__AppendToMessageContent ap0 =
      WARP__MULTI_AGENT__V1__CLIENT_ACTION__APPEND_TO_MESSAGE_CONTENT__INIT;
  static const Msg msg0 = WARP__MULTI_AGENT__V1__MESSAGE__INIT;
  static const Warp__MultiAgent__V1__Message__AgentOutput ao0 =
      WARP__MULTI_AGENT__V1__MESSAGE__AGENT_OUTPUT__INIT;
  Warp__MultiAgent__V1__ResponseEvent ev = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__INIT;
  Warp__MultiAgent__V1__ResponseEvent__ClientActions ca =
      WARP__MULTI_AGENT__V1__RESPONSE_EVENT__CLIENT_ACTIONS__INIT;
  Warp__MultiAgent__V1__ClientAction act[WIRE_MAX_ACTIONS], *pact[WIRE_MAX_ACTIONS];
  Warp__MultiAgent__V1__ClientAction__AppendToMessageContent ap[WIRE_MAX_ACTIONS];
  Msg msg[WIRE_MAX_ACTIONS];
  Warp__MultiAgent__V1__Message__AgentOutput ao[WIRE_MAX_ACTIONS];
  for (size_t i = 0; i < nacts; i++) {
    act[i] = act0, ap[i] = ap0;
    act[i].action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_APPEND_TO_MESSAGE_CONTENT;
    act[i].append_to_message_content = &ap[i];
    ap[i].task_id = wire_str(s, &acts[i].task);
    if (acts[i].msg.set) {
      msg[i] = msg0, ao[i] = ao0;
      msg[i].id = wire_str(s, &acts[i].id);
      msg[i].task_id = wire_str(s, &acts[i].mtask);
      msg[i].message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_AGENT_OUTPUT;
      msg[i].agent_output = &ao[i];
      ao[i].text = wire_str(s, &acts[i].text);
      ao[i].reasoning = wire_str(s, &acts[i].reasoning);
      ap[i].message = &msg[i];
    }
    pact[i] = &act[i];
  }
  ca.n_actions = nacts;
  ca.actions = pact;
  ev.type_case = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS;
  ev.client_actions = &ca;
  return w2a_events_feed(s, &ev, cb, ud, err);
}

int w2a_events_feed_wire(w2a_events *s, const uint8_t *buf, size_t len, ProtobufCAllocator *a,
                         w2a_ev_fn cb, void *ud, int *undecodable, w2a_err *err) {
  const ProtobufCMessageDescriptor *d = &warp__multi_agent__v1__response_event__descriptor;
  const uint8_t *b = buf ? buf : (const uint8_t *)"";
  wact acts[WIRE_MAX_ACTIONS];
  size_t nacts = 0;
  *undecodable = 0;
  pthread_once(&wids_once, wids_build);
  if (wids.ok && wire_shape(b, b + len, acts, &nacts)) {
    /* The shape is read first (cheap, bounds-checked), the whole event validated second:
     * nothing is interpreted before both passed. */
    if (w2a_pbjson_validate(d, buf, len, err)) {
      *undecodable = 1;
      return W2A_EINVAL;
    }
    size_t room = 0;
    for (size_t i = 0; i < nacts; i++)
      room += (size_t)acts[i].task.n + acts[i].id.n + acts[i].mtask.n + acts[i].text.n +
              acts[i].reasoning.n + 5;
    w2a_buf_reset(&s->wire);
    if (!w2a_buf_reserve(&s->wire, room)) return feed_shape(s, acts, nacts, cb, ud, err);
  }
  ProtobufCMessage *m = w2a_pbjson_unpack_with(d, buf, len, a, err);
  if (!m) {
    *undecodable = 1;
    return W2A_EINVAL;
  }
  int rc = w2a_events_feed(s, (const Warp__MultiAgent__V1__ResponseEvent *)m, cb, ud, err);
  if (!a) protobuf_c_message_free_unpacked(m, NULL); /* else the caller's arena holds it */
  return rc;
}
