/* test_fake_events.c - fakewarp's hand-written event encoder (src/fakewarp/events.c)
 * against a reference: the protobuf-c construction it replaced (the generated structs,
 * protobuf_c_message_pack, w2a_sse_write_event), kept below verbatim. Every event kind
 * is built from randomized inputs (empty and long strings, zero and large timestamps,
 * texts with multi-byte varint lengths and embedded NULs, present and absent contexts
 * and tool results, both padding modes) and the two outputs must be the same bytes.
 *
 * `finished` is asked twice in a row, so the encoder's memo of the last one is checked
 * too. getrandom is replaced by zeros here, so the ids the encoder draws itself
 * (w2a_fake_uuid4) are known: 00000000-0000-4000-8000-000000000000. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "common/b64.h"
#include "common/err.h"
#include "fakewarp/events.h"
#include "fakewarp/scenario.h"
#include "fakewarp/state.h"
#include "proto/sse.h"
#include "t.h"

ssize_t getrandom(void *buf, size_t n, unsigned int flags) {
  (void)flags;
  memset(buf, 0, n);
  return (ssize_t)n;
}

static void ref_uuid(char out[37]) { strcpy(out, "00000000-0000-4000-8000-000000000000"); }

/* ---- the reference: events.c before the hand encoder ------------------------------ */

typedef Warp__MultiAgent__V1__ResponseEvent Event;
typedef Warp__MultiAgent__V1__ClientAction Action;
typedef Warp__MultiAgent__V1__Message Message;

/* Pack ev and frame it. Small events are packed on the stack. */
static int emit(w2a_buf *out, int pad, const ProtobufCMessage *m) {
  uint8_t stack[2048];
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *p = n <= sizeof stack ? stack : malloc(n);
  if (!p) return W2A_ENOMEM;
  protobuf_c_message_pack(m, p);
  int rc = w2a_sse_write_event(out, p, n, pad);
  if (p != stack) free(p);
  return rc;
}

/* One ClientActions event holding one action. */
static int emit_action(w2a_buf *out, int pad, Action *a) {
  Warp__MultiAgent__V1__ResponseEvent__ClientActions ca =
      WARP__MULTI_AGENT__V1__RESPONSE_EVENT__CLIENT_ACTIONS__INIT;
  Action *list[1] = {a};
  ca.n_actions = 1;
  ca.actions = list;
  Event ev = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__INIT;
  ev.type_case = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS;
  ev.client_actions = &ca;
  return emit(out, pad, &ev.base);
}

/* server_message_data: base64url (padded, as captured) of ServerMessageData. */
static void smd(char *out, size_t n, const char *uuid, const w2a_fake_ids *ids) {
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts.seconds = ids->ts_s;
  ts.nanos = ids->ts_ns;
  Warp__MultiAgent__V1__ServerMessageData d = WARP__MULTI_AGENT__V1__SERVER_MESSAGE_DATA__INIT;
  if (uuid) d.uuid = (char *)uuid;
  d.timestamp = &ts;
  uint8_t raw[128];
  size_t rl = warp__multi_agent__v1__server_message_data__pack(&d, raw);
  if (w2a_b64_enc_len(rl) + 1 > n) {
    out[0] = 0;
    return;
  }
  w2a_b64_encode(raw, rl, out, 1, 1);
}

/* Fill the fields every server-created message carries. ts must outlive m. */
static void stamp(Message *m, const char *id, const w2a_fake_ids *ids,
                  Google__Protobuf__Timestamp *ts) {
  m->id = (char *)id;
  m->task_id = (char *)ids->task_id;
  m->request_id = (char *)ids->request_id;
  ts->seconds = ids->ts_s;
  ts->nanos = ids->ts_ns;
  m->timestamp = ts;
}

static int emit_add(w2a_buf *out, int pad, const w2a_fake_ids *ids, Message *m) {
  Warp__MultiAgent__V1__ClientAction__AddMessagesToTask add =
      WARP__MULTI_AGENT__V1__CLIENT_ACTION__ADD_MESSAGES_TO_TASK__INIT;
  Message *list[1] = {m};
  add.task_id = (char *)ids->task_id;
  add.n_messages = 1;
  add.messages = list;
  Action a = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
  a.action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_ADD_MESSAGES_TO_TASK;
  a.add_messages_to_task = &add;
  return emit_action(out, pad, &a);
}

static int ref_ev_init(w2a_buf *out, int pad, const w2a_fake_ids *ids) {
  Warp__MultiAgent__V1__ResponseEvent__StreamInit in =
      WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_INIT__INIT;
  in.conversation_id = (char *)ids->conversation_id;
  in.request_id = (char *)ids->request_id;
  Event ev = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__INIT;
  ev.type_case = WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_INIT;
  ev.init = &in;
  return emit(out, pad, &ev.base);
}

static int ref_ev_create_task(w2a_buf *out, int pad, const w2a_fake_ids *ids) {
  char mid[37], cid[37];
  ref_uuid(mid);
  ref_uuid(cid);
  Warp__MultiAgent__V1__Message__ToolCall__Server srv =
      WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__SERVER__INIT;
  srv.payload = "IgA="; /* field 4, empty: what the real server sends */
  Warp__MultiAgent__V1__Message__ToolCall tc = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__INIT;
  tc.tool_call_id = cid;
  tc.tool_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_SERVER;
  tc.server = &srv;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Message m = WARP__MULTI_AGENT__V1__MESSAGE__INIT;
  stamp(&m, mid, ids, &ts);
  m.message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL;
  m.tool_call = &tc;
  Message *msgs[1] = {&m};
  Warp__MultiAgent__V1__Task task = WARP__MULTI_AGENT__V1__TASK__INIT;
  task.id = (char *)ids->task_id;
  task.n_messages = 1;
  task.messages = msgs;
  Warp__MultiAgent__V1__ClientAction__CreateTask ct =
      WARP__MULTI_AGENT__V1__CLIENT_ACTION__CREATE_TASK__INIT;
  ct.task = &task;
  Action a = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
  a.action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_CREATE_TASK;
  a.create_task = &ct;
  return emit_action(out, pad, &a);
}

static int ref_ev_server_event(w2a_buf *out, int pad, const w2a_fake_ids *ids) {
  char mid[37], sd[96];
  ref_uuid(mid);
  smd(sd, sizeof sd, NULL, ids);
  Warp__MultiAgent__V1__Message__ServerEvent se =
      WARP__MULTI_AGENT__V1__MESSAGE__SERVER_EVENT__INIT;
  se.payload = "KgwKBAgCEAQKBAgDEAY="; /* opaque; the capture's value */
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Message m = WARP__MULTI_AGENT__V1__MESSAGE__INIT;
  stamp(&m, mid, ids, &ts);
  m.server_message_data = sd;
  m.message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_SERVER_EVENT;
  m.server_event = &se;
  return emit_add(out, pad, ids, &m);
}

static int ref_ev_user_echo(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *msg_id,
                            const Warp__MultiAgent__V1__Request__Input__UserQuery *uq,
                            const Warp__MultiAgent__V1__Request__Input__ToolCallResult *tr,
                            const Warp__MultiAgent__V1__InputContext *ctx, int update) {
  char sd[96];
  smd(sd, sizeof sd, NULL, ids);
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Message m = WARP__MULTI_AGENT__V1__MESSAGE__INIT;
  stamp(&m, msg_id, ids, &ts);
  m.server_message_data = sd;
  /* The macro initializer trips -Wmissing-braces (a union led by a struct). */
  Warp__MultiAgent__V1__Message__UserQuery q;
  warp__multi_agent__v1__message__user_query__init(&q);
  Warp__MultiAgent__V1__Message__ToolCallResult r =
      WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL_RESULT__INIT;
  if (uq) {
    q.query = uq->query;
    q.context = (Warp__MultiAgent__V1__InputContext *)ctx;
    /* The request's fields 3/4 come back shifted by one (spec §2.3). */
    q.attachments_bytes_presence_case =
        WARP__MULTI_AGENT__V1__MESSAGE__USER_QUERY__ATTACHMENTS_BYTES_PRESENCE_ATTACHMENTS_BYTES;
    q.attachments_bytes.len = 0;
    q.attachments_bytes.data = NULL;
    q.is_new_conversation = uq->is_new_conversation;
    m.message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_USER_QUERY;
    m.user_query = &q;
  } else {
    r.tool_call_id = tr ? tr->tool_call_id : "";
    r.context = (Warp__MultiAgent__V1__InputContext *)ctx;
    if (tr && tr->result_case ==
                  WARP__MULTI_AGENT__V1__REQUEST__INPUT__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL) {
      r.result_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL;
      r.call_mcp_tool = tr->call_mcp_tool;
    }
    m.message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL_RESULT;
    m.tool_call_result = &r;
  }
  if (!update) return emit_add(out, pad, ids, &m);
  char *paths[1] = {"server_message_data"};
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  mask.n_paths = 1;
  mask.paths = paths;
  Warp__MultiAgent__V1__ClientAction__UpdateTaskMessage up =
      WARP__MULTI_AGENT__V1__CLIENT_ACTION__UPDATE_TASK_MESSAGE__INIT;
  up.task_id = (char *)ids->task_id;
  up.message = &m;
  up.mask = &mask;
  Action a = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
  a.action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_UPDATE_TASK_MESSAGE;
  a.update_task_message = &up;
  return emit_action(out, pad, &a);
}

static int ref_ev_transaction(w2a_buf *out, int pad, int begin) {
  Warp__MultiAgent__V1__ClientAction__BeginTransaction b =
      WARP__MULTI_AGENT__V1__CLIENT_ACTION__BEGIN_TRANSACTION__INIT;
  Warp__MultiAgent__V1__ClientAction__CommitTransaction c =
      WARP__MULTI_AGENT__V1__CLIENT_ACTION__COMMIT_TRANSACTION__INIT;
  Action a = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
  if (begin) {
    a.action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_BEGIN_TRANSACTION;
    a.begin_transaction = &b;
  } else {
    a.action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_COMMIT_TRANSACTION;
    a.commit_transaction = &c;
  }
  return emit_action(out, pad, &a);
}

static int ref_ev_agent(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *msg_id,
                        const char *text, size_t len, int reasoning, int first) {
  char small[256];
  char *t = len < sizeof small ? small : malloc(len + 1);
  if (!t) return W2A_ENOMEM;
  memcpy(t, text, len);
  t[len] = 0;
  Warp__MultiAgent__V1__Message__AgentOutput ao =
      WARP__MULTI_AGENT__V1__MESSAGE__AGENT_OUTPUT__INIT;
  if (reasoning)
    ao.reasoning = t;
  else
    ao.text = t;
  Message m = WARP__MULTI_AGENT__V1__MESSAGE__INIT;
  m.message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_AGENT_OUTPUT;
  m.agent_output = &ao;
  int rc;
  if (first) {
    char sd[128], su[37];
    ref_uuid(su);
    smd(sd, sizeof sd, su, ids);
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    stamp(&m, msg_id, ids, &ts);
    m.server_message_data = sd;
    rc = emit_add(out, pad, ids, &m);
  } else {
    /* An append carries only the fragment: id, task_id and the changed field. */
    m.id = (char *)msg_id;
    m.task_id = (char *)ids->task_id;
    char *paths[1] = {reasoning ? "agent_output.reasoning" : "agent_output.text"};
    Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
    mask.n_paths = 1;
    mask.paths = paths;
    Warp__MultiAgent__V1__ClientAction__AppendToMessageContent ap =
        WARP__MULTI_AGENT__V1__CLIENT_ACTION__APPEND_TO_MESSAGE_CONTENT__INIT;
    ap.task_id = (char *)ids->task_id;
    ap.message = &m;
    ap.mask = &mask;
    Action a = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
    a.action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_APPEND_TO_MESSAGE_CONTENT;
    a.append_to_message_content = &ap;
    rc = emit_action(out, pad, &a);
  }
  if (t != small) free(t);
  return rc;
}

static int ref_ev_tool_call(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *msg_id,
                            const char *call_id, const char *name, const char *args_json) {
  Google__Protobuf__Struct *args = w2a_fake_struct_from_json(args_json ? args_json : "{}");
  if (!args) return W2A_EINVAL;
  Warp__MultiAgent__V1__Message__ToolCall__CallMCPTool mcp =
      WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__CALL_MCPTOOL__INIT;
  mcp.name = (char *)name;
  mcp.args = args;
  Warp__MultiAgent__V1__Message__ToolCall tc = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__INIT;
  tc.tool_call_id = (char *)call_id;
  tc.tool_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_CALL_MCP_TOOL;
  tc.call_mcp_tool = &mcp;
  char sd[128], su[37];
  ref_uuid(su);
  smd(sd, sizeof sd, su, ids);
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Message m = WARP__MULTI_AGENT__V1__MESSAGE__INIT;
  stamp(&m, msg_id, ids, &ts);
  m.server_message_data = sd;
  m.message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL;
  m.tool_call = &tc;
  int rc = emit_add(out, pad, ids, &m);
  protobuf_c_message_free_unpacked(&args->base, NULL);
  return rc;
}

static int ref_ev_description(w2a_buf *out, int pad, const w2a_fake_ids *ids, const char *desc) {
  Warp__MultiAgent__V1__ClientAction__UpdateTaskDescription d =
      WARP__MULTI_AGENT__V1__CLIENT_ACTION__UPDATE_TASK_DESCRIPTION__INIT;
  d.task_id = (char *)ids->task_id;
  d.description = (char *)desc;
  Action a = WARP__MULTI_AGENT__V1__CLIENT_ACTION__INIT;
  a.action_case = WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_UPDATE_TASK_DESCRIPTION;
  a.update_task_description = &d;
  return emit_action(out, pad, &a);
}

/* ---- finished, by hand ------------------------------------------------------------ */

typedef struct wr {
  uint8_t *p;
  size_t n, cap;
  int bad;
} wr;

static void put(wr *w, const void *p, size_t n) {
  if (w->n + n > w->cap) {
    w->bad = 1;
    return;
  }
  memcpy(w->p + w->n, p, n);
  w->n += n;
}
static void varint(wr *w, uint64_t v) {
  uint8_t b[10];
  size_t i = 0;
  do {
    b[i] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) b[i] |= 0x80;
    i++;
  } while (v);
  put(w, b, i);
}
static void tag(wr *w, unsigned field, unsigned wt) { varint(w, (uint64_t)field << 3 | wt); }
static void f32(wr *w, unsigned field, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
  tag(w, field, 5);
  put(w, b, 4);
}
static void uv(wr *w, unsigned field, uint64_t v) {
  tag(w, field, 0);
  varint(w, v);
}
static void bytes(wr *w, unsigned field, const void *p, size_t n) {
  tag(w, field, 2);
  varint(w, n);
  put(w, p, n);
}
static void str(wr *w, unsigned field, const char *s) { bytes(w, field, s, strlen(s)); }
/* Append sub (a finished nested writer) as field `field`. */
static void sub(wr *w, unsigned field, const wr *s) {
  if (s->bad) w->bad = 1;
  bytes(w, field, s->p, s->n);
}

static int ref_ev_finished(w2a_buf *out, int pad, const w2a_fake_finish *fin) {
  uint8_t b_fin[4096], b_cwi[1024], b_tmp[1024], b_ev[4200];
  wr f = {b_fin, 0, sizeof b_fin, 0};
  const char *disp = fin->model_display ? fin->model_display : "Claude Opus 4.5";
  if (fin->token_usage) {
    wr t = {b_tmp, 0, sizeof b_tmp, 0};
    str(&t, 1, fin->model_id ? fin->model_id : "auto");
    uv(&t, 2, fin->tokens_in);
    uv(&t, 3, fin->tokens_out);
    uv(&t, 4, 0);
    uv(&t, 5, 0);
    f32(&t, 6, (float)(fin->tokens_in + 5u * fin->tokens_out) / 10000.0f);
    sub(&f, 8, &t);
  }
  { /* request_cost */
    wr t = {b_tmp, 0, sizeof b_tmp, 0};
    f32(&t, 1, fin->request_cost);
    sub(&f, 10, &t);
  }
  { /* context_window_info, with the capture's unnamed fields 3-6 */
    wr c = {b_cwi, 0, sizeof b_cwi, 0};
    f32(&c, 1, (float)fin->context_tokens / 200000.0f);
    uv(&c, 2, 0);
    f32(&c, 3, 1.0f);
    wr t = {b_tmp, 0, sizeof b_tmp, 0};
    str(&t, 1, disp);
    uv(&t, 2, fin->context_tokens);
    sub(&c, 4, &t);
    /* Twelve counters of explicit zeros; member 1 has two, member 6 four. */
    wr z = {b_tmp, 0, sizeof b_tmp, 0};
    for (unsigned i = 1; i <= 12; i++) {
      uint8_t zb[16];
      wr k = {zb, 0, sizeof zb, 0};
      unsigned nz = i == 1 ? 2 : i == 6 ? 4 : 1;
      for (unsigned j = 1; j <= nz; j++)
        uv(&k, j, 0);
      sub(&z, i, &k);
    }
    sub(&c, 5, &z);
    wr a = {b_tmp, 0, sizeof b_tmp, 0};
    uint8_t bb[256], ab[192];
    wr br = {bb, 0, sizeof bb, 0};
    uv(&br, 2, fin->context_tokens);
    wr ag = {ab, 0, sizeof ab, 0};
    str(&ag, 1, "primary_agent");
    uv(&ag, 2, fin->context_tokens);
    sub(&br, 3, &ag);
    str(&a, 1, disp);
    sub(&a, 2, &br);
    sub(&c, 6, &a);
    sub(&f, 11, &c);
  }
  /* the reason oneof, last, as the real server orders it */
  int reason = fin->reason ? fin->reason : W2A_FAKE_FIN_DONE;
  if (reason == W2A_FAKE_FIN_INTERNAL_ERROR) {
    wr t = {b_tmp, 0, sizeof b_tmp, 0};
    if (fin->message && *fin->message) str(&t, 1, fin->message);
    sub(&f, 7, &t);
  } else {
    bytes(&f, (unsigned)reason, "", 0);
  }
  wr ev = {b_ev, 0, sizeof b_ev, 0};
  sub(&ev, 3, &f);
  if (ev.bad) return W2A_ETOOBIG;
  return w2a_sse_write_event(out, ev.p, ev.n, pad);
}

/* ---- randomized inputs -------------------------------------------------------------- */

static uint64_t rng = 0x2545F4914F6CDD1Du;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static size_t rnd_len(size_t max) {
  switch (rnd() % 4) {
  case 0: return 0;
  case 1: return rnd() % 8;
  default: return rnd() % (max + 1);
  }
}
/* Printable or UTF-8-ish text of n bytes (NUL-terminated). */
static void rnd_text(char *s, size_t n) {
  static const char *pieces[] = {"a", "Z", " ", "é", "日", "🎉", "\"", "\\", "\n", "x"};
  size_t o = 0;
  while (o < n) {
    const char *p = pieces[rnd() % 10];
    size_t l = strlen(p);
    if (o + l > n) p = "y", l = 1;
    memcpy(s + o, p, l);
    o += l;
  }
  s[n] = 0;
}
static void rnd_ids(w2a_fake_ids *ids) {
  rnd_text(ids->conversation_id, rnd() % 2 ? 36 : rnd_len(36));
  rnd_text(ids->request_id, rnd() % 2 ? 36 : rnd_len(12));
  rnd_text(ids->task_id, rnd() % 3 ? 36 : rnd_len(20));
  switch (rnd() % 4) {
  case 0: ids->ts_s = 0; break;
  case 1: ids->ts_s = 1795700000; break;
  default: ids->ts_s = (int64_t)(rnd() % 4000000000u); break;
  }
  ids->ts_ns = rnd() % 3 ? (int32_t)(rnd() % 1000000000u) : 0;
}

static int same(const char *what, int i, w2a_buf *a, w2a_buf *b) {
  if (a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len))) return 1;
  fprintf(stderr, "%s, case %d: %zu bytes, reference %zu\n  got %.*s  ref %.*s", what, i, a->len,
          b->len, (int)(a->len < 400 ? a->len : 400), a->data ? a->data : "",
          (int)(b->len < 400 ? b->len : 400), b->data ? b->data : "");
  return 0;
}

#define CASES 3000

static void t_simple(void) {
  int bad = 0;
  for (int i = 0; i < CASES; i++) {
    w2a_fake_ids ids;
    rnd_ids(&ids);
    int pad = (int)(rnd() % 2);
    char desc[400];
    rnd_text(desc, rnd_len(300));
    w2a_buf a, b;
    w2a_buf_init(&a, 0);
    w2a_buf_init(&b, 0);
    T_EQ_INT(w2a_fake_ev_init(&a, pad, &ids), 0);
    T_EQ_INT(ref_ev_init(&b, pad, &ids), 0);
    T_EQ_INT(w2a_fake_ev_create_task(&a, pad, &ids), 0);
    T_EQ_INT(ref_ev_create_task(&b, pad, &ids), 0);
    T_EQ_INT(w2a_fake_ev_server_event(&a, pad, &ids), 0);
    T_EQ_INT(ref_ev_server_event(&b, pad, &ids), 0);
    T_EQ_INT(w2a_fake_ev_transaction(&a, pad, i % 2), 0);
    T_EQ_INT(ref_ev_transaction(&b, pad, i % 2), 0);
    T_EQ_INT(w2a_fake_ev_description(&a, pad, &ids, desc), 0);
    T_EQ_INT(ref_ev_description(&b, pad, &ids, desc), 0);
    w2a_fake_finish fin = {0};
    fin.reason = (int)(rnd() % 8);
    fin.message = rnd() % 2 ? desc : "";
    fin.model_id = rnd() % 2 ? "claude-4-5-opus" : NULL;
    fin.model_display = rnd() % 2 ? "Claude Opus 4.5" : NULL;
    fin.context_tokens = (uint32_t)rnd();
    fin.request_cost = rnd() % 2 ? 1.0f : 0.0f;
    fin.token_usage = (int)(rnd() % 2);
    fin.tokens_in = (uint32_t)rnd();
    fin.tokens_out = (uint32_t)(rnd() % 100000);
    for (int k = 0; k < 2; k++) { /* the second one comes from the encoder's memo */
      T_EQ_INT(w2a_fake_ev_finished(&a, pad, &fin), 0);
      T_EQ_INT(ref_ev_finished(&b, pad, &fin), 0);
    }
    if (!same("init/create/server/transaction/description/finished", i, &a, &b) && ++bad > 3) break;
    w2a_buf_free(&a);
    w2a_buf_free(&b);
  }
  T_EQ_INT(bad, 0);
}

static void t_agent(void) {
  int bad = 0;
  static char text[70000];
  for (int i = 0; i < CASES; i++) {
    w2a_fake_ids ids;
    rnd_ids(&ids);
    int pad = (int)(rnd() % 2), reasoning = (int)(rnd() % 2), first = (int)(rnd() % 2);
    size_t n = i % 50 == 0 ? 20000 + rnd() % 40000 : rnd_len(300);
    rnd_text(text, n);
    if (n > 4 && rnd() % 10 == 0) text[rnd() % n] = 0; /* an embedded NUL */
    char mid[37];
    rnd_text(mid, rnd() % 2 ? 36 : rnd_len(36));
    w2a_buf a, b;
    w2a_buf_init(&a, 0);
    w2a_buf_init(&b, 0);
    T_EQ_INT(w2a_fake_ev_agent(&a, pad, &ids, mid, text, n, reasoning, first), 0);
    T_EQ_INT(ref_ev_agent(&b, pad, &ids, mid, text, n, reasoning, first), 0);
    if (!same("agent", i, &a, &b) && ++bad > 3) break;
    w2a_buf_free(&a);
    w2a_buf_free(&b);
  }
  T_EQ_INT(bad, 0);
}

static void t_tool_call(void) {
  static const char *args[] = {"{}", "{\"city\":\"Paris\",\"days\":1}",
                               "{\"a\":[1,true,null,{\"b\":\"c\"}],\"n\":1.5}", "[1]", NULL};
  int bad = 0;
  for (int i = 0; i < CASES / 4; i++) {
    w2a_fake_ids ids;
    rnd_ids(&ids);
    int pad = (int)(rnd() % 2);
    char mid[37], cid[64], name[200];
    rnd_text(mid, rnd_len(36));
    rnd_text(cid, rnd_len(40));
    rnd_text(name, rnd_len(150));
    const char *aj = args[rnd() % 5];
    w2a_buf a, b;
    w2a_buf_init(&a, 0);
    w2a_buf_init(&b, 0);
    int ra = w2a_fake_ev_tool_call(&a, pad, &ids, mid, cid, name, aj);
    int rb = ref_ev_tool_call(&b, pad, &ids, mid, cid, name, aj);
    T_EQ_INT(ra, rb);
    if (!same("tool_call", i, &a, &b) && ++bad > 3) break;
    w2a_buf_free(&a);
    w2a_buf_free(&b);
  }
  T_EQ_INT(bad, 0);
}

typedef Warp__MultiAgent__V1__InputContext Ctx;

static void t_echo(void) {
  int bad = 0;
  for (int i = 0; i < CASES; i++) {
    w2a_fake_ids ids;
    rnd_ids(&ids);
    int pad = (int)(rnd() % 2);
    char query[3000], pwd[200], tcid[64], rtext[300], mid[37];
    rnd_text(query, rnd_len(2500));
    rnd_text(pwd, rnd_len(150));
    rnd_text(tcid, rnd_len(40));
    rnd_text(rtext, rnd_len(250));
    rnd_text(mid, rnd() % 2 ? 36 : rnd_len(36));
    /* an InputContext with a directory and a time, or none */
    Warp__MultiAgent__V1__InputContext__Directory dir =
        WARP__MULTI_AGENT__V1__INPUT_CONTEXT__DIRECTORY__INIT;
    dir.pwd = pwd;
    dir.home = "/home/x";
    Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    now.seconds = (int64_t)(rnd() % 2000000000u);
    Ctx ctx = WARP__MULTI_AGENT__V1__INPUT_CONTEXT__INIT;
    if (rnd() % 2) ctx.directory = &dir;
    if (rnd() % 2) ctx.current_time = &now;
    const Ctx *cp = rnd() % 3 ? &ctx : NULL;
    /* a user query, or a tool result (success text, error, or no result) */
    Warp__MultiAgent__V1__Request__Input__UserQuery uq;
    warp__multi_agent__v1__request__input__user_query__init(&uq);
    uq.query = query;
    uq.is_new_conversation = (protobuf_c_boolean)(rnd() % 2);
    Warp__MultiAgent__V1__CallMCPToolResult__Success__Result__Text tx =
        WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__RESULT__TEXT__INIT;
    tx.text = rtext;
    Warp__MultiAgent__V1__CallMCPToolResult__Success__Result res =
        WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__RESULT__INIT;
    res.result_case = WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__RESULT__RESULT_TEXT;
    res.text = &tx;
    Warp__MultiAgent__V1__CallMCPToolResult__Success__Result *resl[1] = {&res};
    Warp__MultiAgent__V1__CallMCPToolResult__Success suc =
        WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__INIT;
    suc.n_results = 1;
    suc.results = resl;
    Warp__MultiAgent__V1__CallMCPToolResult__Error er =
        WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__ERROR__INIT;
    er.message = rtext;
    Warp__MultiAgent__V1__CallMCPToolResult mr = WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__INIT;
    if (rnd() % 2) {
      mr.result_case = WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__RESULT_SUCCESS;
      mr.success = &suc;
    } else {
      mr.result_case = WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__RESULT_ERROR;
      mr.error = &er;
    }
    Warp__MultiAgent__V1__Request__Input__ToolCallResult tr =
        WARP__MULTI_AGENT__V1__REQUEST__INPUT__TOOL_CALL_RESULT__INIT;
    tr.tool_call_id = tcid;
    if (rnd() % 4) {
      tr.result_case =
          WARP__MULTI_AGENT__V1__REQUEST__INPUT__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL;
      tr.call_mcp_tool = rnd() % 8 ? &mr : NULL;
    }
    int kind = (int)(rnd() % 3); /* query, tool result, neither */
    const Warp__MultiAgent__V1__Request__Input__UserQuery *uqp = kind == 0 ? &uq : NULL;
    const Warp__MultiAgent__V1__Request__Input__ToolCallResult *trp = kind == 1 ? &tr : NULL;
    w2a_buf a, b;
    w2a_buf_init(&a, 0);
    w2a_buf_init(&b, 0);
    w2a_fake_echo cache = {0};
    for (int update = 0; update < 2; update++) {
      T_EQ_INT(w2a_fake_ev_user_echo(&a, pad, &ids, mid, uqp, trp, cp, update,
                                     rnd() % 4 ? &cache : NULL),
               0);
      T_EQ_INT(ref_ev_user_echo(&b, pad, &ids, mid, uqp, trp, cp, update), 0);
    }
    free(cache.bytes);
    if (!same("user_echo", i, &a, &b) && ++bad > 3) break;
    w2a_buf_free(&a);
    w2a_buf_free(&b);
  }
  T_EQ_INT(bad, 0);
}

int main(void) {
  T_RUN(t_simple);
  T_RUN(t_agent);
  T_RUN(t_tool_call);
  T_RUN(t_echo);
  return t_done();
}
