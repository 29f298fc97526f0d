/* test_events.c - ResponseEvent interpretation: the real capture (every event unpacks
 * with no unknown field at any depth, kinds in the documented order, the text and the
 * finish reason), then synthetic events built with protobuf-c for everything the
 * capture does not show: tool calls, parallel tool calls, reasoning, call_mcp_tool
 * unwrapping, every finish reason, caps. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "fixtures.h"
#include "proto/events.h"
#include "proto/pbjson.h"
#include "proto/sse.h"
#include "t.h"

typedef Warp__MultiAgent__V1__ResponseEvent RespEv;
typedef Warp__MultiAgent__V1__Message Msg;

/* ---- helpers ------------------------------------------------------------------------ */

/* Unknown fields in m and every message below it, walking the descriptors. */
static size_t count_unknown(const ProtobufCMessage *m) {
  size_t n = m->n_unknown_fields;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t cnt = *(const size_t *)(const void *)(base + f->quantifier_offset);
      ProtobufCMessage *const *arr =
          *(ProtobufCMessage *const *const *)(const void *)(base + f->offset);
      for (size_t j = 0; j < cnt; j++)
        n += count_unknown(arr[j]);
      continue;
    }
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
      continue;
    const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(const void *)(base + f->offset);
    if (sub) n += count_unknown(sub);
  }
  return n;
}

/* Every reported item, as one line of text. */
typedef struct log {
  w2a_buf t;
  int stop_at; /* callback returns 7 at this item (1-based; 0: never) */
  int items;
} log_t;

static int on_ev(void *ud, const w2a_ev *e) {
  log_t *l = ud;
  w2a_buf *b = &l->t;
  switch (e->kind) {
  case W2A_EV_INIT: w2a_buf_printf(b, "init(%s,%s)\n", e->conversation_id, e->request_id); break;
  case W2A_EV_TEXT: w2a_buf_printf(b, "text(%s)\n", e->text); break;
  case W2A_EV_REASONING: w2a_buf_printf(b, "reasoning(%s)\n", e->text); break;
  case W2A_EV_TOOL_CALL:
    w2a_buf_printf(b, "tool(%zu,%s,%s,%s%s)\n", e->index, e->tool_call_id, e->name, e->args_json,
                   e->unwrapped ? ",unwrapped" : "");
    T_EQ_INT(strlen(e->args_json), e->args_len);
    break;
  case W2A_EV_FINISHED:
    w2a_buf_printf(b, "finished(%s", w2a_finish_reason_name(e->reason));
    if (e->error_message) w2a_buf_printf(b, ",msg=%s", e->error_message);
    if (e->n_usage)
      w2a_buf_printf(b, ",usage=%zu:%llu/%llu", e->n_usage, (unsigned long long)e->input_tokens,
                     (unsigned long long)e->output_tokens);
    if (e->has_request_cost) w2a_buf_printf(b, ",cost=%g", e->request_cost);
    if (e->has_context_window) w2a_buf_printf(b, ",ctx=%g", e->context_window_usage);
    w2a_buf_puts(b, ")\n");
    break;
  }
  l->items++;
  return l->stop_at && l->items == l->stop_at ? 7 : 0;
}

/* ---- (a) the capture ------------------------------------------------------------------ */

typedef struct cap_ctx {
  w2a_events st;
  log_t log;
  w2a_buf kinds;
  size_t unknown, unpack_failures, n;
} cap_ctx;

static int on_sse(void *ud, const w2a_sse_event *ev) {
  cap_ctx *c = ud;
  c->n++;
  RespEv *e = warp__multi_agent__v1__response_event__unpack(NULL, ev->len, ev->data);
  if (!e) {
    c->unpack_failures++;
    return 0;
  }
  c->unknown += count_unknown(&e->base);
  if (e->type_case == WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS)
    for (size_t i = 0; i < e->client_actions->n_actions; i++)
      w2a_buf_printf(&c->kinds, "%s ", w2a_events_action_name(e->client_actions->actions[i]));
  else
    w2a_buf_printf(&c->kinds, "%s ", w2a_events_type_name(e));
  w2a_err err = {0};
  T_EQ_INT(w2a_events_feed(&c->st, e, on_ev, &c->log, &err), 0);
  warp__multi_agent__v1__response_event__free_unpacked(e, NULL);
  return 0;
}

static void test_capture(void) {
  size_t n;
  char *cap = fx_read("turn1-response.sse", &n);
  T_CHECK(cap != NULL);
  if (!cap) return;
  cap_ctx c;
  memset(&c, 0, sizeof c);
  w2a_events_opts o = {.accumulate_max = 1 << 20};
  w2a_events_init(&c.st, &o);
  w2a_buf_init(&c.log.t, 0);
  w2a_buf_init(&c.kinds, 0);
  w2a_sse d;
  w2a_err err = {0};
  w2a_sse_init(&d, 0);
  T_EQ_INT(w2a_sse_feed(&d, cap, n, on_sse, &c, &err), 0);
  T_EQ_INT(w2a_sse_finish(&d, on_sse, &c, &err), 0);
  w2a_sse_free(&d);
  T_EQ_INT(c.n, 14);
  T_EQ_INT(c.unpack_failures, 0);
  T_EQ_INT(c.unknown, 0);
  T_EQ_STR(c.kinds.data, "init create_task add_messages_to_task add_messages_to_task "
                         "update_task_message begin_transaction add_messages_to_task "
                         "append_to_message_content append_to_message_content "
                         "append_to_message_content append_to_message_content "
                         "commit_transaction update_task_description finished ");
  T_EQ_STR(c.st.text.data, "你好！有什么可以帮你的吗？");
  T_EQ_INT(c.st.reasoning.len, 0);
  T_EQ_INT(c.st.reason, W2A_FINISH_DONE);
  T_EQ_INT(c.st.tool_calls, 0);
  T_EQ_INT(c.st.events, 14);
  T_EQ_STR(c.st.conversation_id, "7503a482-5517-4b5e-9057-4b0ec73b004b");
  T_EQ_STR(c.st.request_id, "b3e3052a-1afd-44f4-b61f-07bc82c972d0");
  T_EQ_STR(c.log.t.data, "init(7503a482-5517-4b5e-9057-4b0ec73b004b,"
                         "b3e3052a-1afd-44f4-b61f-07bc82c972d0)\n"
                         "text(你)\ntext(好！有)\ntext(什)\ntext(么可以帮你)\ntext(的吗？)\n"
                         "finished(done,cost=1,ctx=0.07851)\n");
  w2a_events_free(&c.st);
  w2a_buf_free(&c.log.t);
  w2a_buf_free(&c.kinds);
  free(cap);
}

/* ---- builders for synthetic events (everything heap, freed by free_unpacked) ----------- */

static void *zalloc(size_t n) {
  void *p = calloc(1, n);
  if (!p) abort();
  return p;
}

static Google__Protobuf__Value *v_new(Google__Protobuf__Value__KindCase k) {
  Google__Protobuf__Value *v = zalloc(sizeof *v);
  google__protobuf__value__init(v);
  v->kind_case = k;
  return v;
}
static Google__Protobuf__Value *v_str(const char *s) {
  Google__Protobuf__Value *v = v_new(GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
  v->string_value = strdup(s);
  return v;
}
static Google__Protobuf__Value *v_num(double d) {
  Google__Protobuf__Value *v = v_new(GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
  v->number_value = d;
  return v;
}
static Google__Protobuf__Value *v_bool(int b) {
  Google__Protobuf__Value *v = v_new(GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
  v->bool_value = b;
  return v;
}
static Google__Protobuf__Value *v_null(void) {
  return v_new(GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
}
static Google__Protobuf__Value *v_struct(Google__Protobuf__Struct *s) {
  Google__Protobuf__Value *v = v_new(GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  v->struct_value = s;
  return v;
}
static Google__Protobuf__Value *v_list(size_t n, Google__Protobuf__Value **items) {
  Google__Protobuf__Value *v = v_new(GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  v->list_value = zalloc(sizeof *v->list_value);
  google__protobuf__list_value__init(v->list_value);
  v->list_value->n_values = n;
  v->list_value->values = zalloc(n * sizeof *items + 1);
  memcpy(v->list_value->values, items, n * sizeof *items);
  return v;
}
static Google__Protobuf__Struct *st_new(void) {
  Google__Protobuf__Struct *s = zalloc(sizeof *s);
  google__protobuf__struct__init(s);
  return s;
}
static Google__Protobuf__Struct *st_add(Google__Protobuf__Struct *s, const char *k,
                                        Google__Protobuf__Value *v) {
  Google__Protobuf__Struct__FieldsEntry *e = zalloc(sizeof *e);
  google__protobuf__struct__fields_entry__init(e);
  e->key = strdup(k);
  e->value = v;
  s->fields = realloc(s->fields, (s->n_fields + 1) * sizeof *s->fields);
  s->fields[s->n_fields++] = e;
  return s;
}

static Msg *msg_new(const char *id) {
  Msg *m = zalloc(sizeof *m);
  warp__multi_agent__v1__message__init(m);
  m->id = strdup(id);
  return m;
}
static Msg *msg_text(const char *id, const char *text, const char *reasoning) {
  Msg *m = msg_new(id);
  m->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_AGENT_OUTPUT;
  m->agent_output = zalloc(sizeof *m->agent_output);
  warp__multi_agent__v1__message__agent_output__init(m->agent_output);
  if (text) m->agent_output->text = strdup(text);
  if (reasoning) m->agent_output->reasoning = strdup(reasoning);
  return m;
}
static Msg *msg_tool(const char *call_id, const char *name, Google__Protobuf__Struct *args) {
  Msg *m = msg_new("m-tool");
  m->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL;
  Warp__MultiAgent__V1__Message__ToolCall *tc = zalloc(sizeof *tc);
  warp__multi_agent__v1__message__tool_call__init(tc);
  tc->tool_call_id = strdup(call_id);
  tc->tool_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_CALL_MCP_TOOL;
  tc->call_mcp_tool = zalloc(sizeof *tc->call_mcp_tool);
  warp__multi_agent__v1__message__tool_call__call_mcptool__init(tc->call_mcp_tool);
  tc->call_mcp_tool->name = strdup(name);
  tc->call_mcp_tool->args = args;
  m->tool_call = tc;
  return m;
}
static Msg *msg_server_tool(void) {
  Msg *m = msg_new("m-server");
  m->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL;
  Warp__MultiAgent__V1__Message__ToolCall *tc = zalloc(sizeof *tc);
  warp__multi_agent__v1__message__tool_call__init(tc);
  tc->tool_call_id = strdup("srv");
  tc->tool_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_SERVER;
  tc->server = zalloc(sizeof *tc->server);
  warp__multi_agent__v1__message__tool_call__server__init(tc->server);
  tc->server->payload = strdup("IgA=");
  m->tool_call = tc;
  return m;
}
static Msg *msg_shell_tool(void) {
  Msg *m = msg_new("m-shell");
  m->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL;
  Warp__MultiAgent__V1__Message__ToolCall *tc = zalloc(sizeof *tc);
  warp__multi_agent__v1__message__tool_call__init(tc);
  tc->tool_call_id = strdup("sh");
  tc->tool_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_RUN_SHELL_COMMAND;
  tc->run_shell_command = zalloc(sizeof *tc->run_shell_command);
  warp__multi_agent__v1__message__tool_call__run_shell_command__init(tc->run_shell_command);
  tc->run_shell_command->command = strdup("ls");
  m->tool_call = tc;
  return m;
}

static Warp__MultiAgent__V1__ClientAction *
action_new(Warp__MultiAgent__V1__ClientAction__ActionCase k) {
  Warp__MultiAgent__V1__ClientAction *a = zalloc(sizeof *a);
  warp__multi_agent__v1__client_action__init(a);
  a->action_case = k;
  return a;
}

static RespEv *ev_actions(size_t n, Warp__MultiAgent__V1__ClientAction **acts) {
  RespEv *e = zalloc(sizeof *e);
  warp__multi_agent__v1__response_event__init(e);
  e->type_case = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS;
  e->client_actions = zalloc(sizeof *e->client_actions);
  warp__multi_agent__v1__response_event__client_actions__init(e->client_actions);
  e->client_actions->n_actions = n;
  e->client_actions->actions = zalloc(n * sizeof *acts + 1);
  memcpy(e->client_actions->actions, acts, n * sizeof *acts);
  return e;
}

static RespEv *ev_add(size_t n, Msg **msgs) {
  Warp__MultiAgent__V1__ClientAction *a =
      action_new(WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_ADD_MESSAGES_TO_TASK);
  a->add_messages_to_task = zalloc(sizeof *a->add_messages_to_task);
  warp__multi_agent__v1__client_action__add_messages_to_task__init(a->add_messages_to_task);
  a->add_messages_to_task->task_id = strdup("task-1");
  a->add_messages_to_task->n_messages = n;
  a->add_messages_to_task->messages = zalloc(n * sizeof *msgs + 1);
  memcpy(a->add_messages_to_task->messages, msgs, n * sizeof *msgs);
  return ev_actions(1, &a);
}

static RespEv *ev_append(Msg *m) {
  Warp__MultiAgent__V1__ClientAction *a =
      action_new(WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_APPEND_TO_MESSAGE_CONTENT);
  a->append_to_message_content = zalloc(sizeof *a->append_to_message_content);
  warp__multi_agent__v1__client_action__append_to_message_content__init(
      a->append_to_message_content);
  a->append_to_message_content->task_id = strdup("task-1");
  a->append_to_message_content->message = m;
  return ev_actions(1, &a);
}

static RespEv *ev_update(Msg *m) {
  Warp__MultiAgent__V1__ClientAction *a =
      action_new(WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_UPDATE_TASK_MESSAGE);
  a->update_task_message = zalloc(sizeof *a->update_task_message);
  warp__multi_agent__v1__client_action__update_task_message__init(a->update_task_message);
  a->update_task_message->message = m;
  return ev_actions(1, &a);
}

static RespEv *ev_init(const char *conv, const char *req) {
  RespEv *e = zalloc(sizeof *e);
  warp__multi_agent__v1__response_event__init(e);
  e->type_case = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_INIT;
  e->init = zalloc(sizeof *e->init);
  warp__multi_agent__v1__response_event__stream_init__init(e->init);
  e->init->conversation_id = strdup(conv);
  e->init->request_id = strdup(req);
  return e;
}

typedef Warp__MultiAgent__V1__ResponseEvent__StreamFinished Fin;
static RespEv *ev_finished(Warp__MultiAgent__V1__ResponseEvent__StreamFinished__ReasonCase rc,
                           const char *msg) {
  RespEv *e = zalloc(sizeof *e);
  warp__multi_agent__v1__response_event__init(e);
  e->type_case = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_FINISHED;
  Fin *f = e->finished = zalloc(sizeof *f);
  warp__multi_agent__v1__response_event__stream_finished__init(f);
  f->reason_case = rc;
  /* every reason member is an empty message but internal_error; allocate the largest */
  switch (rc) {
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON__NOT_SET: break;
  case WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_INTERNAL_ERROR:
    f->internal_error = zalloc(sizeof *f->internal_error);
    warp__multi_agent__v1__response_event__stream_finished__internal_error__init(f->internal_error);
    f->internal_error->message = strdup(msg);
    break;
  default: {
    /* Other/Done/... all are {base} only: init through the field's own descriptor */
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field(f->base.descriptor, (unsigned)rc);
    const ProtobufCMessageDescriptor *md = fd->descriptor;
    ProtobufCMessage *sub = zalloc(md->sizeof_message);
    md->message_init(sub);
    f->done = (void *)sub;
  }
  }
  return e;
}

/* Pack, free the built tree, unpack (as the gateway will see it), feed, free. */
static int feed_built(w2a_events *st, RespEv *e, log_t *l, w2a_err *err) {
  size_t n = warp__multi_agent__v1__response_event__get_packed_size(e);
  uint8_t *buf = malloc(n + 1);
  warp__multi_agent__v1__response_event__pack(e, buf);
  warp__multi_agent__v1__response_event__free_unpacked(e, NULL);
  RespEv *u = warp__multi_agent__v1__response_event__unpack(NULL, n, buf);
  free(buf);
  T_CHECK(u != NULL);
  if (!u) return -100;
  T_EQ_INT(count_unknown(&u->base), 0);
  int rc = w2a_events_feed(st, u, on_ev, l, err);
  warp__multi_agent__v1__response_event__free_unpacked(u, NULL);
  return rc;
}

/* ---- (e) synthetic streams ------------------------------------------------------------ */

static void test_text_and_reasoning(void) {
  w2a_events st;
  w2a_events_opts o = {.accumulate_max = 64};
  w2a_events_init(&st, &o);
  log_t l = {0};
  w2a_buf_init(&l.t, 0);
  w2a_err err = {0};
  Msg *m[3];
  T_EQ_INT(feed_built(&st, ev_init("c1", "r1"), &l, &err), 0);
  m[0] = msg_text("a", NULL, "thinking about it");
  T_EQ_INT(feed_built(&st, ev_add(1, m), &l, &err), 0);
  T_EQ_INT(feed_built(&st, ev_append(msg_text("a", NULL, ", more")), &l, &err), 0);
  m[0] = msg_text("b", "Hello", NULL);
  m[1] = msg_text("c", "", ""); /* empty: nothing reported */
  m[2] = msg_text("d", " world", "why");
  T_EQ_INT(feed_built(&st, ev_add(3, m), &l, &err), 0);
  T_EQ_INT(feed_built(&st, ev_append(msg_text("d", "!", NULL)), &l, &err), 0);
  /* update_task_message carries whole messages: ignored, or text would double */
  T_EQ_INT(feed_built(&st, ev_update(msg_text("d", " world!", NULL)), &l, &err), 0);
  T_EQ_INT(
      feed_built(
          &st,
          ev_finished(WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_DONE, NULL),
          &l, &err),
      0);
  T_EQ_STR(l.t.data, "init(c1,r1)\nreasoning(thinking about it)\nreasoning(, more)\n"
                     "text(Hello)\nreasoning(why)\ntext( world)\ntext(!)\nfinished(done)\n");
  T_EQ_STR(st.text.data, "Hello world!");
  T_EQ_STR(st.reasoning.data, "thinking about it, morewhy");
  T_EQ_INT(st.text_bytes, 12);
  T_EQ_INT(st.truncated, 0);
  /* after finished: counted, not reported */
  T_EQ_INT(feed_built(&st, ev_append(msg_text("d", "late", NULL)), &l, &err), 0);
  T_EQ_INT(st.after_finish, 1);
  T_EQ_INT(st.events, 8);
  T_EQ_STR(st.text.data, "Hello world!");
  w2a_events_free(&st);
  w2a_buf_free(&l.t);

  /* accumulation cap: reported deltas go on, accumulation stops and says so */
  w2a_events_opts small = {.accumulate_max = 8};
  w2a_events_init(&st, &small);
  w2a_buf_init(&l.t, 0);
  m[0] = msg_text("a", "12345", NULL);
  T_EQ_INT(feed_built(&st, ev_add(1, m), &l, &err), 0);
  T_EQ_INT(feed_built(&st, ev_append(msg_text("a", "6789", NULL)), &l, &err), 0);
  T_EQ_STR(st.text.data, "12345");
  T_EQ_INT(st.truncated, 1);
  T_EQ_INT(st.text_bytes, 9);
  w2a_events_free(&st);
  w2a_buf_free(&l.t);
}

static void test_tool_calls(void) {
  w2a_events st;
  w2a_events_init(&st, NULL);
  log_t l = {0};
  w2a_buf_init(&l.t, 0);
  w2a_err err = {0};
  Msg *m[4];

  Google__Protobuf__Value *items[4] = {v_num(1), v_bool(1), v_null(), v_str("s\"q\n")};
  Google__Protobuf__Struct *args = st_new();
  st_add(args, "path", v_str("/tmp/x"));
  st_add(args, "n", v_num(3));
  st_add(args, "deep", v_struct(st_add(st_new(), "a", v_list(4, items))));
  m[0] = msg_text("t", "Let me look.", NULL);
  m[1] = msg_tool("call_1", "read_file", args);
  m[2] = msg_server_tool();
  m[3] = msg_shell_tool();
  T_EQ_INT(feed_built(&st, ev_add(4, m), &l, &err), 0);
  /* parallel calls in one event, one without arguments */
  m[0] = msg_tool("call_2", "list", st_new());
  m[1] = msg_tool("", "ping", NULL);
  T_EQ_INT(feed_built(&st, ev_add(2, m), &l, &err), 0);
  /* a tool call in append_to_message_content is a fragment: not a new call */
  T_EQ_INT(feed_built(&st, ev_append(msg_tool("call_9", "x", NULL)), &l, &err), 0);
  T_EQ_INT(
      feed_built(
          &st,
          ev_finished(WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_DONE, NULL),
          &l, &err),
      0);
  T_EQ_STR(l.t.data, "text(Let me look.)\n"
                     "tool(0,call_1,read_file,{\"path\":\"/tmp/x\",\"n\":3,\"deep\":{\"a\":[1,"
                     "true,null,\"s\\\"q\\n\"]}})\n"
                     "tool(1,call_2,list,{})\n"
                     "tool(2,,ping,{})\n"
                     "finished(done)\n");
  T_EQ_INT(st.tool_calls, 3);
  w2a_events_free(&st);
  w2a_buf_free(&l.t);
}

static void test_unwrap(void) {
  w2a_events st;
  w2a_events_init(&st, NULL);
  log_t l = {0};
  w2a_buf_init(&l.t, 0);
  w2a_err err = {0};
  Msg *m[4];
  /* {name, args{...}} */
  Google__Protobuf__Struct *w = st_new();
  st_add(w, "name", v_str("get_weather"));
  st_add(w, "args", v_struct(st_add(st_new(), "city", v_str("Paris"))));
  m[0] = msg_tool("c1", "call_mcp_tool", w);
  /* {name, args:"<json text>"} */
  w = st_new();
  st_add(w, "args", v_str("{\"q\":1}"));
  st_add(w, "name", v_str("search"));
  m[1] = msg_tool("c2", "call_mcp_tool", w);
  /* {name} only */
  m[2] = msg_tool("c3", "call_mcp_tool", st_add(st_new(), "name", v_str("now")));
  /* no usable inner name: left as it is */
  m[3] = msg_tool("c4", "call_mcp_tool", st_add(st_new(), "name", v_num(5)));
  T_EQ_INT(feed_built(&st, ev_add(4, m), &l, &err), 0);
  T_EQ_STR(l.t.data, "tool(0,c1,get_weather,{\"city\":\"Paris\"},unwrapped)\n"
                     "tool(1,c2,search,{\"q\":1},unwrapped)\n"
                     "tool(2,c3,now,{},unwrapped)\n"
                     "tool(3,c4,call_mcp_tool,{\"name\":5})\n");
  w2a_events_free(&st);
  w2a_buf_free(&l.t);
}

static void test_finish_reasons(void) {
  static const struct {
    Warp__MultiAgent__V1__ResponseEvent__StreamFinished__ReasonCase rc;
    w2a_finish_reason want;
    const char *line;
  } cases[] = {
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON__NOT_SET,
       W2A_FINISH_UNSPECIFIED, "finished(unspecified)\n"},
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_OTHER, W2A_FINISH_OTHER,
       "finished(other)\n"},
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_DONE, W2A_FINISH_DONE,
       "finished(done)\n"},
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_MAX_TOKEN_LIMIT,
       W2A_FINISH_MAX_TOKENS, "finished(max_token_limit)\n"},
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_QUOTA_LIMIT, W2A_FINISH_QUOTA,
       "finished(quota_limit)\n"},
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_CONTEXT_WINDOW_EXCEEDED,
       W2A_FINISH_CONTEXT_EXCEEDED, "finished(context_window_exceeded)\n"},
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_LLM_UNAVAILABLE,
       W2A_FINISH_LLM_UNAVAILABLE, "finished(llm_unavailable)\n"},
      {WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_INTERNAL_ERROR,
       W2A_FINISH_INTERNAL_ERROR, "finished(internal_error,msg=upstream exploded)\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    w2a_events st;
    w2a_events_init(&st, NULL);
    log_t l = {0};
    w2a_buf_init(&l.t, 0);
    w2a_err err = {0};
    T_EQ_INT(feed_built(&st, ev_finished(cases[i].rc, "upstream exploded"), &l, &err), 0);
    T_EQ_INT(st.reason, cases[i].want);
    T_EQ_STR(l.t.data, cases[i].line);
    if (cases[i].want == W2A_FINISH_INTERNAL_ERROR)
      T_EQ_STR(st.error_message, "upstream exploded");
    else
      T_CHECK(st.error_message == NULL);
    w2a_events_free(&st);
    w2a_buf_free(&l.t);
  }
  T_EQ_STR(w2a_finish_reason_name(W2A_FINISH_NONE), "none");

  /* usage, cost and context window */
  RespEv *e =
      ev_finished(WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__REASON_DONE, NULL);
  Fin *f = e->finished;
  f->n_token_usage = 2;
  f->token_usage = zalloc(2 * sizeof *f->token_usage);
  for (int i = 0; i < 2; i++) {
    f->token_usage[i] = zalloc(sizeof **f->token_usage);
    warp__multi_agent__v1__response_event__stream_finished__token_usage__init(f->token_usage[i]);
    f->token_usage[i]->model_id = strdup(i ? "b" : "a");
    f->token_usage[i]->total_input = 100u * (unsigned)(i + 1);
    f->token_usage[i]->output = 7;
  }
  f->request_cost = zalloc(sizeof *f->request_cost);
  warp__multi_agent__v1__response_event__stream_finished__request_cost__init(f->request_cost);
  f->request_cost->exact = 2.5f;
  f->context_window_info = zalloc(sizeof *f->context_window_info);
  warp__multi_agent__v1__response_event__stream_finished__context_window_info__init(
      f->context_window_info);
  f->context_window_info->context_window_usage = 0.25f;
  w2a_events st;
  w2a_events_init(&st, NULL);
  log_t l = {0};
  w2a_buf_init(&l.t, 0);
  w2a_err err = {0};
  T_EQ_INT(feed_built(&st, e, &l, &err), 0);
  T_EQ_STR(l.t.data, "finished(done,usage=2:300/14,cost=2.5,ctx=0.25)\n");
  w2a_events_free(&st);
  w2a_buf_free(&l.t);
}

static void test_struct_json(void) {
  w2a_buf b;
  w2a_buf_init(&b, 0);
  Google__Protobuf__Value *nums[] = {v_num(0.1),     v_num(-0.5),     v_num(1e300),
                                     v_num(NAN),     v_num(INFINITY), v_num(123456789012.0),
                                     v_num(1.0 / 3), v_num(-0.0)};
  Google__Protobuf__Struct *s = st_add(st_new(), "n", v_list(8, nums));
  st_add(s, "k\"ey\x01", v_str("\t"));
  st_add(s, "", v_null());
  T_EQ_INT(w2a_events_struct_to_json(s, 0, &b), 0);
  T_EQ_STR(b.data, "{\"n\":[0.1,-0.5,1e+300,null,null,123456789012,0.3333333333333333,-0],"
                   "\"k\\\"ey\\u0001\":\"\\t\",\"\":null}");
  /* the generic transcoder renders the same value (NaN/Inf aside, which it rejects) */
  Google__Protobuf__Value *fin[] = {v_num(0.1), v_num(-0.5), v_num(123456789012.0), v_num(1e-7)};
  Google__Protobuf__Struct *s2 = st_add(st_new(), "n", v_list(4, fin));
  st_add(s2, "k\"ey\x01", v_str("\t"));
  st_add(s2, "o", v_struct(st_add(st_new(), "b", v_bool(0))));
  st_add(s2, "", v_null());
  w2a_buf mine, theirs;
  w2a_buf_init(&mine, 0);
  w2a_buf_init(&theirs, 0);
  w2a_err perr = {0};
  T_EQ_INT(w2a_events_struct_to_json(s2, 0, &mine), 0);
  T_EQ_INT(w2a_pbjson_msg_to_json(&s2->base, NULL, &theirs, &perr), 0);
  json_object *jm = json_tokener_parse(mine.data), *jt = json_tokener_parse(theirs.data);
  T_CHECK(jm && jt && json_object_equal(jm, jt));
  if (!(jm && jt && json_object_equal(jm, jt)))
    fprintf(stderr, "mine:   %s\ntheirs: %s\n", mine.data, theirs.data);
  json_object_put(jm);
  json_object_put(jt);
  w2a_buf_free(&mine);
  w2a_buf_free(&theirs);
  google__protobuf__struct__free_unpacked(s2, NULL);
  google__protobuf__struct__free_unpacked(s, NULL);
  /* NULL struct -> {} */
  w2a_buf_reset(&b);
  T_EQ_INT(w2a_events_struct_to_json(NULL, 0, &b), 0);
  T_EQ_STR(b.data, "{}");

  /* nesting cap: 70 levels of {"a":{...}} against 64, and exactly 64 */
  for (int depth = 64; depth <= 70; depth += 6) {
    Google__Protobuf__Struct *top = st_new();
    for (int i = 1; i < depth; i++)
      top = st_add(st_new(), "a", v_struct(top));
    w2a_buf_reset(&b);
    w2a_buf_puts(&b, "x");
    int rc = w2a_events_struct_to_json(top, 64, &b);
    T_EQ_INT(rc, depth == 64 ? 0 : W2A_ETOOBIG);
    if (rc) T_EQ_STR(b.data, "x"); /* nothing half-written */
    google__protobuf__struct__free_unpacked(top, NULL);
  }
  w2a_buf_free(&b);

  /* through the state machine: the error names the call */
  Google__Protobuf__Struct *top = st_new();
  for (int i = 0; i < 10; i++)
    top = st_add(st_new(), "a", v_struct(top));
  w2a_events st;
  w2a_events_opts o = {.struct_max_depth = 5};
  w2a_events_init(&st, &o);
  log_t l = {0};
  w2a_buf_init(&l.t, 0);
  w2a_err err = {0};
  Msg *m = msg_tool("deep_1", "f", top);
  T_EQ_INT(feed_built(&st, ev_add(1, &m), &l, &err), W2A_ETOOBIG);
  T_CHECK(strstr(err.msg, "deep_1") && strstr(err.msg, "STRUCT_MAX_DEPTH"));
  w2a_events_free(&st);
  w2a_buf_free(&l.t);
}

static void test_callback_stop(void) {
  w2a_events st;
  w2a_events_init(&st, NULL);
  log_t l = {.stop_at = 2};
  w2a_buf_init(&l.t, 0);
  w2a_err err = {0};
  Msg *m[3] = {msg_text("a", "1", NULL), msg_text("b", "2", NULL), msg_text("c", "3", NULL)};
  T_EQ_INT(feed_built(&st, ev_add(3, m), &l, &err), 7);
  T_EQ_STR(l.t.data, "text(1)\ntext(2)\n");
  /* a NULL callback is fine */
  RespEv *e = ev_init("c", "r");
  T_EQ_INT(w2a_events_feed(&st, e, NULL, NULL, &err), 0);
  warp__multi_agent__v1__response_event__free_unpacked(e, NULL);
  T_EQ_STR(st.conversation_id, "c");
  /* an event with nothing set */
  RespEv empty = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__INIT;
  T_EQ_INT(w2a_events_feed(&st, &empty, on_ev, &l, &err), 0);
  T_EQ_STR(w2a_events_type_name(&empty), "unknown");
  Warp__MultiAgent__V1__ClientAction a = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
  T_EQ_STR(w2a_events_action_name(&a), "unknown");
  w2a_events_free(&st);
  w2a_buf_free(&l.t);
}

int main(void) {
  T_RUN(test_capture);
  T_RUN(test_text_and_reasoning);
  T_RUN(test_tool_calls);
  T_RUN(test_unwrap);
  T_RUN(test_finish_reasons);
  T_RUN(test_struct_json);
  T_RUN(test_callback_stop);
  return t_done();
}
