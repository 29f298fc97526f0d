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

/* The wire reader's tags (below), worked out once per process. */
static void wtags_build(void);
static pthread_once_t wtags_once = PTHREAD_ONCE_INIT;

void w2a_events_init(w2a_events *s, const w2a_events_opts *o) {
  pthread_once(&wtags_once, wtags_build);
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
               .message_id = m->id ? m->id : "",
               .task_id = m->task_id ? m->task_id : "",
               .index = s->tool_calls};
  ev.message_id_len = strlen(ev.message_id);
  ev.task_id_len = strlen(ev.task_id);
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

/* The ids an agent_output is reported with (not NUL-terminated). */
typedef struct msg_ids {
  const char *mid, *task; /* the message's id; its task id, else the action's */
  size_t mid_n, task_n;
} msg_ids;

static int emit_delta(w2a_events *s, w2a_ev_kind kind, const char *t, size_t n,
                      const msg_ids *ids, w2a_ev_fn cb, void *ud) {
  if (!n) return 0;
  w2a_buf *acc = kind == W2A_EV_TEXT ? &s->text : &s->reasoning;
  if (kind == W2A_EV_TEXT)
    s->text_bytes += n;
  else
    s->reasoning_bytes += n;
  if (s->o.accumulate_max && w2a_buf_append(acc, t, n)) s->truncated = 1;
  w2a_ev ev = {.kind = kind,
               .text = t,
               .len = n,
               .message_id = ids->mid,
               .task_id = ids->task,
               .message_id_len = ids->mid_n,
               .task_id_len = ids->task_n};
  return cb ? cb(ud, &ev) : 0;
}

/* One message's agent_output, the one reading of it for unpacked messages and for the
 * wire reader alike: reasoning first (it precedes the answer it led to), then the text;
 * an empty part is not reported. */
static int emit_output(w2a_events *s, const char *reasoning, size_t rn, const char *text,
                       size_t tn, const msg_ids *ids, w2a_ev_fn cb, void *ud) {
  int rc = emit_delta(s, W2A_EV_REASONING, reasoning, rn, ids, cb, ud);
  return rc ? rc : emit_delta(s, W2A_EV_TEXT, text, tn, ids, cb, ud);
}

static int on_message(w2a_events *s, const Msg *m, const char *task_id, int tools, w2a_ev_fn cb,
                      void *ud, w2a_err *err) {
  if (!m) return 0;
  int rc = 0;
  if (m->message_case == WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_AGENT_OUTPUT && m->agent_output) {
    const char *r = m->agent_output->reasoning, *t = m->agent_output->text;
    const char *task = m->task_id && m->task_id[0] ? m->task_id : task_id ? task_id : "";
    msg_ids ids = {m->id ? m->id : "", task, 0, strlen(task)};
    ids.mid_n = strlen(ids.mid);
    rc = emit_output(s, r, r ? strlen(r) : 0, t, t ? strlen(t) : 0, &ids, cb, ud);
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
 * each, validating the bytes, then building a ResponseEvent (seven messages, five strings,
 * a dozen allocations) only to read two strings back cost more than everything else the
 * gateway does per event. So that one event is read by a strict reader that validates as
 * it goes. It accepts exactly
 *
 *   ResponseEvent { client_actions { actions { append_to_message_content {
 *     task_id, mask { paths }, message { id, task_id, agent_output { text, reasoning } }
 *   } } } }
 *
 * in any order, each field at most once except the repeated `actions` (up to
 * WIRE_MAX_ACTIONS) and `paths`, every tag one byte, every string one that validation
 * accepts (UTF-8, no NUL); it gives up on anything else (another field, a second
 * occurrence, a length of more than three bytes). So every event it reads is one that
 * w2a_pbjson_validate accepts, and one where protobuf-c's reading is the plain one (no
 * "last occurrence wins", no oneof member replaced): what it reports is what unpacking
 * and w2a_events_feed report, through the same emit_output. Everything else is unpacked
 * (validated first) and fed. The tags come from the descriptors, so a changed .proto
 * cannot silently disagree with this; tests/unit/test_events_wire.c and
 * fuzz/fuzz_events_wire.c hold the two paths to the same results on any bytes. */

#define WIRE_MAX_ACTIONS 4

/* One-byte tags (field number << 3 | wire type 2) of the fields the reader accepts. */
typedef struct wire_tags {
  uint8_t ev_ca, ca_act, act_ap, ap_task, ap_msg, ap_mask, fm_path, m_id, m_task, m_ao, ao_text,
      ao_reasoning;
  int ok;
} wire_tags;

static wire_tags wtags;

/* The tag of field `name` of d, a message field when sub is given (its type then goes to
 * *sub) and a string otherwise; 0 when the schema has no such field or its number needs a
 * longer tag. */
static uint8_t tag_of(const ProtobufCMessageDescriptor *d, const char *name, int repeated,
                      const ProtobufCMessageDescriptor **sub) {
  const ProtobufCFieldDescriptor *f = d ? protobuf_c_message_descriptor_get_field_by_name(d, name)
                                        : NULL;
  if (!f || f->id >= 16 || (f->label == PROTOBUF_C_LABEL_REPEATED) != repeated) return 0;
  if (f->type != (sub ? PROTOBUF_C_TYPE_MESSAGE : PROTOBUF_C_TYPE_STRING)) return 0;
  if (sub) *sub = f->descriptor;
  return (uint8_t)(f->id << 3 | 2);
}

static void wtags_build(void) {
  const ProtobufCMessageDescriptor *ca = NULL, *act = NULL, *ap = NULL, *msg = NULL, *fm = NULL,
                                   *ao = NULL;
  wire_tags t = {0};
  t.ev_ca = tag_of(&warp__multi_agent__v1__response_event__descriptor, "client_actions", 0, &ca);
  t.ca_act = tag_of(ca, "actions", 1, &act);
  t.act_ap = tag_of(act, "append_to_message_content", 0, &ap);
  t.ap_task = tag_of(ap, "task_id", 0, NULL);
  t.ap_msg = tag_of(ap, "message", 0, &msg);
  t.ap_mask = tag_of(ap, "mask", 0, &fm);
  t.fm_path = tag_of(fm, "paths", 1, NULL);
  t.m_id = tag_of(msg, "id", 0, NULL);
  t.m_task = tag_of(msg, "task_id", 0, NULL);
  t.m_ao = tag_of(msg, "agent_output", 0, &ao);
  t.ao_text = tag_of(ao, "text", 0, NULL);
  t.ao_reasoning = tag_of(ao, "reasoning", 0, NULL);
  t.ok = t.ev_ca && t.ca_act && t.act_ap && t.ap_task && t.ap_msg && t.ap_mask && t.fm_path &&
         t.m_id && t.m_task && t.m_ao && t.ao_text && t.ao_reasoning;
  wtags = t;
}

typedef struct wspan {
  const uint8_t *p; /* NULL: the field did not occur */
  uint32_t n;
} wspan;

/* The next field, which must be length-delimited with a one-byte tag: 1 with its tag and
 * payload, or 0 (a longer tag is refused by the caller's comparison; a length of more
 * than three bytes, or bytes that run past end, here). */
static inline __attribute__((always_inline)) int ld_next(const uint8_t **pp, const uint8_t *end,
                                                         uint8_t *tag, wspan *v) {
  const uint8_t *p = *pp;
  size_t left = (size_t)(end - p), h = 2;
  if (left < 2) return 0;
  uint32_t n = p[1];
  if (n & 0x80) {
    if (left < 3) return 0;
    n = (n & 0x7f) | (uint32_t)(p[2] & 0x7f) << 7;
    h = 3;
    if (p[2] & 0x80) {
      if (left < 4 || p[3] & 0x80) return 0;
      n |= (uint32_t)p[3] << 14;
      h = 4;
    }
  }
  if (n > left - h) return 0;
  *tag = p[0];
  v->p = p + h;
  v->n = n;
  *pp = p + h + n;
  return 1;
}

/* A string field's payload into *dst: 0 when it occurred before or is not a valid string. */
static inline int take_str(wspan *dst, const wspan *v) {
  if (dst->p || !w2a_pbjson_string_ok(v->p, v->n)) return 0;
  *dst = *v;
  return 1;
}

typedef struct wact {
  wspan task, msg, id, mtask, ao, text, reasoning;
} wact;

static int rd_output(const uint8_t *p, const uint8_t *end, wact *a) {
  const wire_tags *t = &wtags;
  uint8_t tag;
  wspan v;
  while (p < end) {
    if (!ld_next(&p, end, &tag, &v)) return 0;
    if (tag == t->ao_text) {
      if (!take_str(&a->text, &v)) return 0;
    } else if (tag != t->ao_reasoning || !take_str(&a->reasoning, &v)) {
      return 0;
    }
  }
  return 1;
}

static int rd_message(const uint8_t *p, const uint8_t *end, wact *a) {
  const wire_tags *t = &wtags;
  uint8_t tag;
  wspan v;
  while (p < end) {
    if (!ld_next(&p, end, &tag, &v)) return 0;
    if (tag == t->m_ao) {
      if (a->ao.p) return 0;
      a->ao = v;
      if (!rd_output(v.p, v.p + v.n, a)) return 0;
    } else if (tag == t->m_id) {
      if (!take_str(&a->id, &v)) return 0;
    } else if (tag != t->m_task || !take_str(&a->mtask, &v)) {
      return 0;
    }
  }
  return 1;
}

static int rd_append(const uint8_t *p, const uint8_t *end, wact *a) {
  const wire_tags *t = &wtags;
  uint8_t tag;
  wspan v, mask = {0};
  while (p < end) {
    if (!ld_next(&p, end, &tag, &v)) return 0;
    if (tag == t->ap_msg) {
      if (a->msg.p) return 0;
      a->msg = v;
      if (!rd_message(v.p, v.p + v.n, a)) return 0;
    } else if (tag == t->ap_task) {
      if (!take_str(&a->task, &v)) return 0;
    } else if (tag == t->ap_mask) {
      if (mask.p) return 0;
      mask = v;
      for (const uint8_t *q = v.p, *qe = v.p + v.n; q < qe;) {
        wspan path;
        if (!ld_next(&q, qe, &tag, &path) || tag != t->fm_path ||
            !w2a_pbjson_string_ok(path.p, path.n))
          return 0;
      }
    } else {
      return 0;
    }
  }
  return 1;
}

/* 1 when buf is the event described above, its actions in acts; 0 for anything else. */
static int rd_event(const uint8_t *p, const uint8_t *end, wact *acts, size_t *nacts) {
  const wire_tags *t = &wtags;
  uint8_t tag;
  wspan ca, act, ap;
  size_t k = 0;
  if (!ld_next(&p, end, &tag, &ca) || tag != t->ev_ca || p != end) return 0;
  for (const uint8_t *q = ca.p, *qe = ca.p + ca.n; q < qe;) {
    if (!ld_next(&q, qe, &tag, &act) || tag != t->ca_act || k == WIRE_MAX_ACTIONS) return 0;
    const uint8_t *r = act.p, *re = act.p + act.n;
    if (!ld_next(&r, re, &tag, &ap) || tag != t->act_ap || r != re) return 0;
    wact *a = &acts[k++];
    memset(a, 0, sizeof *a);
    if (!rd_append(ap.p, ap.p + ap.n, a)) return 0;
  }
  *nacts = k;
  return 1;
}

/* w2a_events_feed's work for the event rd_event read, everything reported where it lies
 * (an absent string is "", as protobuf-c leaves it). */
static int feed_read(w2a_events *s, const wact *acts, size_t nacts, w2a_ev_fn cb, void *ud) {
  s->events++;
  s->wire_read++;
  if (s->reason != W2A_FINISH_NONE) {
    s->after_finish++;
    return 0;
  }
  int rc = 0;
  for (size_t i = 0; !rc && i < nacts; i++) {
    const wact *a = &acts[i];
    if (!a->ao.p || (!a->text.n && !a->reasoning.n)) continue; /* nothing to report */
    const wspan *task = a->mtask.n ? &a->mtask : &a->task;
    msg_ids ids = {a->id.n ? (const char *)a->id.p : "", task->n ? (const char *)task->p : "",
                   a->id.n, task->n};
    rc = emit_output(s, (const char *)a->reasoning.p, a->reasoning.n, (const char *)a->text.p,
                     a->text.n, &ids, cb, ud);
  }
  return rc;
}

int w2a_events_feed_wire(w2a_events *s, const uint8_t *buf, size_t len, ProtobufCAllocator *a,
                         w2a_ev_fn cb, void *ud, int *undecodable, w2a_err *err) {
  const ProtobufCMessageDescriptor *d = &warp__multi_agent__v1__response_event__descriptor;
  const uint8_t *b = buf ? buf : (const uint8_t *)"";
  wact acts[WIRE_MAX_ACTIONS];
  size_t nacts = 0;
  *undecodable = 0;
  if (wtags.ok && len <= W2A_PBJSON_MAX_INPUT && rd_event(b, b + len, acts, &nacts))
    return feed_read(s, acts, nacts, cb, ud);
  ProtobufCMessage *m = w2a_pbjson_unpack_with(d, buf, len, a, err);
  if (!m) {
    *undecodable = 1;
    return W2A_EINVAL;
  }
  int rc = w2a_events_feed(s, (const Warp__MultiAgent__V1__ResponseEvent *)m, cb, ud, err);
  if (!a) protobuf_c_message_free_unpacked(m, NULL); /* else the caller's arena holds it */
  return rc;
}
