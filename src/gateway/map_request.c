/* map_request.c - OpenAI messages → warp.multi_agent.v1.Request.
 *
 * The request is built as protobuf-c structs whose every byte (structs, strings,
 * pointer arrays, decoded images) comes from one arena owned by the call; packing
 * copies the result into the caller's buffer and the arena is dropped in one go, so
 * no path can leak a sub-message. The JSON tree is only read.
 *
 * Shape (spec §2.3/§8.2, following the real client where it is known):
 *   1 task_context  {} on a first turn; else tasks[0]{id, messages}, active_task_id
 *   2 input         context{operating_system, current_time[, images]},
 *                   user_inputs.inputs[]: user_query{query, referenced_attachments,
 *                   attachments_bytes:"" (presence), is_new_conversation:true} or
 *                   tool_call_result{tool_call_id, call_mcp_tool(12).success.results}
 *   3 settings      model_config{base, cli_agent:"cli-agent-auto"},
 *                   supports_parallel_tool_calls, supported_tools:[CALL_MCP_TOOL]
 *   4 metadata      logging{entrypoint:"USER_INITIATED", is_auto_resume_after_error:false,
 *                   is_autodetected_user_query:true}
 *   6 mcp_context   tools[]{name, description, input_schema} (absent without tools)
 * Every request is a new Warp conversation (no conversation_id): the history rides in
 * the task, which is what makes the gateway stateless. */
#include "gateway/map_request.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/b64.h"
#include "common/err.h"
#include "common/util.h"
#include "gateway/map_response.h"
#include "proto/pbjson.h"
#include "proto/structjson.h"
#include "request.pb-c.h"
#include "task.pb-c.h"

typedef Warp__MultiAgent__V1__Request Req;
typedef Warp__MultiAgent__V1__Request__Input__UserQuery InQuery;
typedef Warp__MultiAgent__V1__Request__Input__UserQuery__ReferencedAttachmentsEntry InAttEntry;
typedef Warp__MultiAgent__V1__Request__Input__UserInputs__UserInput UserInput;
typedef Warp__MultiAgent__V1__Request__Input__ToolCallResult InResult;
typedef Warp__MultiAgent__V1__Message Msg;
typedef Warp__MultiAgent__V1__Message__UserQuery MsgQuery;
typedef Warp__MultiAgent__V1__Message__UserQuery__ReferencedAttachmentsEntry MsgAttEntry;
typedef Warp__MultiAgent__V1__CallMCPToolResult McpResult;
typedef Warp__MultiAgent__V1__InputContext Ctx;
typedef Warp__MultiAgent__V1__InputContext__Image Image;
typedef Google__Protobuf__Struct PbStruct;
typedef Google__Protobuf__Value PbValue;

#define SYSTEM_PROMPT_KEY "SYSTEM_PROMPT"
#define PREAMBLE_PAYLOAD "IgA=" /* what Warp's own create_task carries (spec §2.3) */
#define ARENA_BLOCK 16384
/* The arena's first block lives on w2a_gw_map_request's stack: a short request fits in it,
 * so the common case makes no 16 KB malloc/free (a large-bin request, which also makes
 * glibc consolidate its fast bins, per completion). */
#define STACK_BLOCK 6144

/* ---- arena ---------------------------------------------------------------------- */

typedef struct mr {
  w2a_arena ar; /* everything the Request points to; its first block is on the stack */
  int oom;
  int max_depth;
  w2a_gw_error *e;
  w2a_gw_map_info *info;
  w2a_buf text; /* scratch for joining content parts */
  char task_id[37];
} mr;

/* Zeroed memory from the arena (generated initializers expect it); NULL sets m->oom. */
static void *az(mr *m, size_t n) {
  void *p = w2a_arena_alloc(&m->ar, n ? n : 1);
  if (!p) {
    m->oom = 1;
    return NULL;
  }
  memset(p, 0, n);
  return p;
}

static char *sdup(mr *m, const char *s, size_t n) {
  char *p = az(m, n + 1);
  if (p && n) memcpy(p, s, n);
  if (p) p[n] = 0;
  return p;
}
static char *sdupz(mr *m, const char *s) { return sdup(m, s, strlen(s)); }

/* Allocate a message and run its generated initializer. */
#define NEW(m, T, init) new_msg((m), sizeof(T), &(init))
static void *new_msg(mr *m, size_t size, const void *init) {
  void *p = az(m, size);
  if (p) memcpy(p, init, size);
  return p;
}

/* The UserQuery INIT macros trip -Wmissing-braces (a oneof holding bytes). */
static MsgQuery *new_msg_query(mr *m) {
  MsgQuery *q = az(m, sizeof *q);
  if (q) warp__multi_agent__v1__message__user_query__init(q);
  return q;
}

/* Grow a pointer array by one (arena copy; the arrays here are short). */
static int push(mr *m, void ***arr, size_t *n, void *item) {
  void **na;
  if (!item) return W2A_ENOMEM;
  na = az(m, (*n + 1) * sizeof *na);
  if (!na) return W2A_ENOMEM;
  if (*n) memcpy(na, *arr, *n * sizeof *na);
  na[(*n)++] = item;
  *arr = na;
  return 0;
}
#define PUSH(m, arr, n, item) push((m), (void ***)&(arr), &(n), (item))

/* ---- JSON → google.protobuf.Struct --------------------------------------------- */

static void *struct_alloc(void *m, size_t n) { return az(m, n); }

/* The object o as a Struct in the arena; NULL when too deep (m->e filled, naming path)
 * or out of memory (m->oom set). */
static PbStruct *j2s(mr *m, json_object *o, const char *path) {
  ProtobufCAllocator a = {.alloc = struct_alloc, .free = w2a_arena_pb_free, .allocator_data = m};
  PbStruct *s;
  if (w2a_struct_from_json(o, &a, m->max_depth, &s, NULL) == W2A_ETOOBIG)
    w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, path, "%s: JSON nested deeper than %d levels", path,
                  m->max_depth);
  return s;
}

/* ---- content --------------------------------------------------------------------- */

static json_object *jget(json_object *o, const char *k) {
  json_object *v = NULL;
  if (!o || !json_object_is_type(o, json_type_object)) return NULL;
  return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static const char *jstr(json_object *o, const char *k) {
  json_object *v = jget(o, k);
  return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void count_text(mr *m, const char *s, size_t n) {
  m->info->prompt_tokens_est += w2a_gw_estimate_tokens(s, n);
}

/* "data:<mime>;base64,<payload>" → Image; anything else is refused with a reason. */
static Image *data_uri_image(mr *m, const char *url, const char *path) {
  static const Image iinit = WARP__MULTI_AGENT__V1__INPUT_CONTEXT__IMAGE__INIT;
  const char *comma, *semi, *payload;
  size_t plen, bad = 0;
  long n;
  Image *img;
  if (strncmp(url, "data:", 5) != 0) {
    w2a_gw_errorf(m->e, W2A_GWE_UNSUPPORTED, path,
                  "image URLs are not supported (Warp accepts inline images only); send "
                  "the image as a data: URI (data:image/png;base64,…)");
    return NULL;
  }
  comma = strchr(url, ',');
  semi = comma ? memmem(url, (size_t)(comma - url), ";base64", 7) : NULL;
  if (!comma || !semi || semi + 7 != comma) {
    w2a_gw_errorf(m->e, W2A_GWE_UNSUPPORTED, path,
                  "only base64 data: URIs are supported for images");
    return NULL;
  }
  payload = comma + 1;
  plen = strlen(payload);
  img = NEW(m, Image, iinit);
  if (!img) return NULL;
  img->mime_type = sdup(m, url + 5, (size_t)(semi - (url + 5)));
  img->data.data = az(m, w2a_b64_dec_max(plen) + 1);
  if (!img->mime_type || !img->data.data) return NULL;
  if (!img->mime_type[0] || strncmp(img->mime_type, "image/", 6) != 0) {
    w2a_gw_errorf(m->e, W2A_GWE_UNSUPPORTED, path, "data: URI is not an image (%s)",
                  img->mime_type[0] ? img->mime_type : "no media type");
    return NULL;
  }
  n = w2a_b64_decode(payload, plen, img->data.data, &bad);
  if (n < 0) {
    w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, path, "image data is not valid base64 (at %zu)", bad);
    return NULL;
  }
  img->data.len = (size_t)n;
  m->info->images++;
  return img;
}

/* The text of a content value (string, array of parts, or null) into m->text; images go
 * to *ctx (created on demand) when allowed, else they are a 400. */
static int content(mr *m, json_object *c, const char *path, Ctx **ctx, int images_ok) {
  char p[128];
  size_t i, n;
  w2a_buf_reset(&m->text);
  if (!c || json_object_is_type(c, json_type_null)) return 0;
  if (json_object_is_type(c, json_type_string))
    return w2a_buf_append(&m->text, json_object_get_string(c), json_object_get_string_len(c));
  if (!json_object_is_type(c, json_type_array))
    return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, path,
                         "%s must be a string, an array of content parts or null", path);
  n = json_object_array_length(c);
  for (i = 0; i < n; i++) {
    json_object *part = json_object_array_get_idx(c, i);
    const char *type = jstr(part, "type");
    snprintf(p, sizeof p, "%s[%zu]", path, i);
    if (!type) return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, p, "%s.type is missing", p);
    if (!strcmp(type, "text") || !strcmp(type, "refusal") || !strcmp(type, "input_text")) {
      const char *t = jstr(part, !strcmp(type, "refusal") ? "refusal" : "text");
      if (!t) return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, p, "%s.text is missing", p);
      if (m->text.len && w2a_buf_putc(&m->text, '\n')) return W2A_ENOMEM;
      if (w2a_buf_puts(&m->text, t)) return W2A_ENOMEM;
    } else if (!strcmp(type, "image_url")) {
      static const Ctx cinit = WARP__MULTI_AGENT__V1__INPUT_CONTEXT__INIT;
      json_object *iu = jget(part, "image_url");
      const char *url =
          json_object_is_type(iu, json_type_string) ? json_object_get_string(iu) : jstr(iu, "url");
      Image *img;
      char up[160];
      snprintf(up, sizeof up, "%s.image_url.url", p);
      if (!images_ok)
        return w2a_gw_errorf(m->e, W2A_GWE_UNSUPPORTED, p,
                             "images are only accepted in user messages");
      if (!url) return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, up, "%s is missing", up);
      if (!(img = data_uri_image(m, url, up))) return m->oom ? W2A_ENOMEM : W2A_EINVAL;
      if (!*ctx && !(*ctx = NEW(m, Ctx, cinit))) return W2A_ENOMEM;
      if (PUSH(m, (*ctx)->images, (*ctx)->n_images, img)) return W2A_ENOMEM;
    } else {
      return w2a_gw_errorf(m->e, W2A_GWE_UNSUPPORTED, p,
                           "content part type \"%s\" is not supported (text and image_url "
                           "are)",
                           type);
    }
  }
  return 0;
}

/* "messages[i]" + field into p (cut at n like snprintf): the JSON path named by errors
 * about message i, built for every message, so without a printf per message. */
static void msg_path(char *p, size_t n, size_t i, const char *field) {
  char num[24], *d = num + sizeof num;
  size_t k = 0;
  const char *parts[3];
  *--d = 0;
  do {
    *--d = (char)('0' + i % 10);
    i /= 10;
  } while (i);
  parts[0] = "messages[", parts[1] = d, parts[2] = "]";
  for (int j = 0; j < 4; j++) {
    const char *s = j < 3 ? parts[j] : field;
    while (*s && k + 1 < n)
      p[k++] = *s++;
  }
  if (n) p[k] = 0;
}

/* ---- ids ------------------------------------------------------------------------- */

/* A version-4 UUID for task, message and tool-call ids. w2a_uuid4 costs a getrandom(2)
 * and a 16-argument snprintf per id; these ids only have to be unique, not secret, so
 * the kernel's bytes are drawn 512 at a time (per thread: map_request also runs on the
 * debug routes and in tests) and formatted by hand. */
static void uuid4(char out[37]) {
  static _Thread_local unsigned char pool[512];
  static _Thread_local size_t left;
  static const char hx[] = "0123456789abcdef";
  unsigned char b[16];
  size_t i, k = 0;
  if (left < sizeof b) {
    w2a_random(pool, sizeof pool);
    left = sizeof pool;
  }
  memcpy(b, pool + sizeof pool - left, sizeof b);
  memset(pool + sizeof pool - left, 0, sizeof b);
  left -= sizeof b;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  for (i = 0; i < sizeof b; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
    out[k++] = hx[b[i] >> 4];
    out[k++] = hx[b[i] & 15];
  }
  out[k] = 0;
}

/* ---- pieces ---------------------------------------------------------------------- */

static Msg *new_hist(mr *m) {
  static const Msg minit = WARP__MULTI_AGENT__V1__MESSAGE__INIT;
  char id[37];
  Msg *msg = NEW(m, Msg, minit);
  if (!msg) return NULL;
  uuid4(id);
  msg->id = sdupz(m, id);
  msg->task_id = m->task_id;
  return msg->id ? msg : NULL;
}

static McpResult *mcp_text_result(mr *m, const char *text, size_t n) {
  static const McpResult rinit = WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__INIT;
  static const Warp__MultiAgent__V1__CallMCPToolResult__Success sinit =
      WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__INIT;
  static const Warp__MultiAgent__V1__CallMCPToolResult__Success__Result einit =
      WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__RESULT__INIT;
  static const Warp__MultiAgent__V1__CallMCPToolResult__Success__Result__Text tinit =
      WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__RESULT__TEXT__INIT;
  McpResult *r = NEW(m, McpResult, rinit);
  Warp__MultiAgent__V1__CallMCPToolResult__Success *s =
      NEW(m, Warp__MultiAgent__V1__CallMCPToolResult__Success, sinit);
  Warp__MultiAgent__V1__CallMCPToolResult__Success__Result *e =
      NEW(m, Warp__MultiAgent__V1__CallMCPToolResult__Success__Result, einit);
  Warp__MultiAgent__V1__CallMCPToolResult__Success__Result__Text *t =
      NEW(m, Warp__MultiAgent__V1__CallMCPToolResult__Success__Result__Text, tinit);
  if (!r || !s || !e || !t || !(t->text = sdup(m, text, n))) return NULL;
  /* An empty result still carries success.results[0].text{} so that Warp sees a tool
   * result body (the seed's deep clean dropped it: spec §7 item 7). */
  e->result_case = WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__SUCCESS__RESULT__RESULT_TEXT;
  e->text = t;
  if (PUSH(m, s->results, s->n_results, e)) return NULL;
  r->result_case = WARP__MULTI_AGENT__V1__CALL_MCPTOOL_RESULT__RESULT_SUCCESS;
  r->success = s;
  return r;
}

static const char *tool_call_id(mr *m, json_object *msg, const char *path) {
  const char *id = jstr(msg, "tool_call_id");
  char p[128];
  if (!id || !*id) {
    snprintf(p, sizeof p, "%s.tool_call_id", path);
    w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, p, "%s is required for a tool message", p);
  }
  return id;
}

static int hist_user(mr *m, Warp__MultiAgent__V1__Task *task, json_object *msg, const char *path,
                     MsgQuery **out) {
  char p[128];
  Ctx *ctx = NULL;
  Msg *h;
  MsgQuery *q;
  int rc;
  snprintf(p, sizeof p, "%s.content", path);
  if ((rc = content(m, jget(msg, "content"), p, &ctx, 1))) return rc;
  count_text(m, m->text.data, m->text.len);
  if (!(h = new_hist(m)) || !(q = new_msg_query(m))) return W2A_ENOMEM;
  if (!(q->query = sdup(m, m->text.data, m->text.len))) return W2A_ENOMEM;
  q->context = ctx;
  h->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_USER_QUERY;
  h->user_query = q;
  *out = q;
  return PUSH(m, task->messages, task->n_messages, h);
}

static int hist_assistant(mr *m, Warp__MultiAgent__V1__Task *task, json_object *msg,
                          const char *path) {
  static const Warp__MultiAgent__V1__Message__AgentOutput ainit =
      WARP__MULTI_AGENT__V1__MESSAGE__AGENT_OUTPUT__INIT;
  static const Warp__MultiAgent__V1__Message__ToolCall tinit =
      WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__INIT;
  static const Warp__MultiAgent__V1__Message__ToolCall__CallMCPTool cinit =
      WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__CALL_MCPTOOL__INIT;
  char p[160];
  json_object *calls = jget(msg, "tool_calls");
  const char *reasoning = jstr(msg, "reasoning_content");
  size_t i, n;
  int rc;
  snprintf(p, sizeof p, "%s.content", path);
  if ((rc = content(m, jget(msg, "content"), p, NULL, 0))) return rc;
  count_text(m, m->text.data, m->text.len);
  if (m->text.len || (reasoning && *reasoning)) {
    Msg *h = new_hist(m);
    Warp__MultiAgent__V1__Message__AgentOutput *a =
        NEW(m, Warp__MultiAgent__V1__Message__AgentOutput, ainit);
    if (!h || !a || !(a->text = sdup(m, m->text.data, m->text.len))) return W2A_ENOMEM;
    if (reasoning && !(a->reasoning = sdupz(m, reasoning))) return W2A_ENOMEM;
    h->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_AGENT_OUTPUT;
    h->agent_output = a;
    if (PUSH(m, task->messages, task->n_messages, h)) return W2A_ENOMEM;
  }
  if (!calls || json_object_is_type(calls, json_type_null)) return 0;
  if (!json_object_is_type(calls, json_type_array)) {
    snprintf(p, sizeof p, "%s.tool_calls", path);
    return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, p, "%s must be an array", p);
  }
  n = json_object_array_length(calls);
  for (i = 0; i < n; i++) {
    json_object *tc = json_object_array_get_idx(calls, i), *fn = jget(tc, "function"), *args;
    const char *id = jstr(tc, "id"), *name = jstr(fn, "name"), *astr = jstr(fn, "arguments");
    Warp__MultiAgent__V1__Message__ToolCall *t;
    Warp__MultiAgent__V1__Message__ToolCall__CallMCPTool *c;
    Msg *h;
    snprintf(p, sizeof p, "%s.tool_calls[%zu]", path, i);
    if (!id || !*id) return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, p, "%s.id is missing", p);
    if (!name || !*name)
      return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, p, "%s.function.name is missing", p);
    snprintf(p, sizeof p, "%s.tool_calls[%zu].function.arguments", path, i);
    args = astr && *astr ? json_tokener_parse(astr) : json_object_new_object();
    if (!args || !json_object_is_type(args, json_type_object)) {
      json_object_put(args);
      return w2a_gw_errorf(m->e, W2A_GWE_BAD_REQUEST, p,
                           "%s must be a JSON object encoded as a string", p);
    }
    count_text(m, name, strlen(name));
    if (astr) count_text(m, astr, strlen(astr));
    h = new_hist(m);
    t = NEW(m, Warp__MultiAgent__V1__Message__ToolCall, tinit);
    c = NEW(m, Warp__MultiAgent__V1__Message__ToolCall__CallMCPTool, cinit);
    if (!h || !t || !c || !(t->tool_call_id = sdupz(m, id)) || !(c->name = sdupz(m, name))) {
      json_object_put(args);
      return W2A_ENOMEM;
    }
    c->args = j2s(m, args, p);
    json_object_put(args);
    if (!c->args) return m->oom ? W2A_ENOMEM : W2A_EINVAL;
    t->tool_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_CALL_MCP_TOOL;
    t->call_mcp_tool = c;
    h->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL;
    h->tool_call = t;
    if (PUSH(m, task->messages, task->n_messages, h)) return W2A_ENOMEM;
  }
  return 0;
}

static int hist_tool(mr *m, Warp__MultiAgent__V1__Task *task, json_object *msg, const char *path) {
  static const Warp__MultiAgent__V1__Message__ToolCallResult rinit =
      WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL_RESULT__INIT;
  char p[128];
  const char *id = tool_call_id(m, msg, path);
  Warp__MultiAgent__V1__Message__ToolCallResult *r;
  Msg *h;
  int rc;
  if (!id) return W2A_EINVAL;
  snprintf(p, sizeof p, "%s.content", path);
  if ((rc = content(m, jget(msg, "content"), p, NULL, 0))) return rc;
  count_text(m, m->text.data, m->text.len);
  h = new_hist(m);
  r = NEW(m, Warp__MultiAgent__V1__Message__ToolCallResult, rinit);
  if (!h || !r || !(r->tool_call_id = sdupz(m, id))) return W2A_ENOMEM;
  /* History side: Message.ToolCallResult.call_mcp_tool is field 16 (spec §2.2). */
  r->result_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL;
  if (!(r->call_mcp_tool = mcp_text_result(m, m->text.data, m->text.len))) return W2A_ENOMEM;
  h->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL_RESULT;
  h->tool_call_result = r;
  return PUSH(m, task->messages, task->n_messages, h);
}

static int input_tool(mr *m, Warp__MultiAgent__V1__Request__Input__UserInputs *ui, json_object *msg,
                      const char *path) {
  static const UserInput uinit =
      WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INIT;
  static const InResult rinit = WARP__MULTI_AGENT__V1__REQUEST__INPUT__TOOL_CALL_RESULT__INIT;
  char p[128];
  const char *id = tool_call_id(m, msg, path);
  UserInput *u;
  InResult *r;
  int rc;
  if (!id) return W2A_EINVAL;
  snprintf(p, sizeof p, "%s.content", path);
  if ((rc = content(m, jget(msg, "content"), p, NULL, 0))) return rc;
  count_text(m, m->text.data, m->text.len);
  u = NEW(m, UserInput, uinit);
  r = NEW(m, InResult, rinit);
  if (!u || !r || !(r->tool_call_id = sdupz(m, id))) return W2A_ENOMEM;
  /* Request side: Input.ToolCallResult.call_mcp_tool is field 12 (spec §2.2). */
  r->result_case = WARP__MULTI_AGENT__V1__REQUEST__INPUT__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL;
  if (!(r->call_mcp_tool = mcp_text_result(m, m->text.data, m->text.len))) return W2A_ENOMEM;
  u->input_case =
      WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INPUT_TOOL_CALL_RESULT;
  u->tool_call_result = r;
  return PUSH(m, ui->inputs, ui->n_inputs, u);
}

static Warp__MultiAgent__V1__Attachment *plain_attachment(mr *m, const char *text, size_t n) {
  static const Warp__MultiAgent__V1__Attachment ainit = WARP__MULTI_AGENT__V1__ATTACHMENT__INIT;
  Warp__MultiAgent__V1__Attachment *a = NEW(m, Warp__MultiAgent__V1__Attachment, ainit);
  if (!a || !(a->plain_text = sdup(m, text, n))) return NULL;
  a->value_case = WARP__MULTI_AGENT__V1__ATTACHMENT__VALUE_PLAIN_TEXT;
  return a;
}

static int role_is_system(const char *role) {
  return !strcmp(role, "system") || !strcmp(role, "developer");
}

static Google__Protobuf__Value *str_value(mr *m, const char *s) {
  static const PbValue vinit = GOOGLE__PROTOBUF__VALUE__INIT;
  PbValue *v = NEW(m, PbValue, vinit);
  if (!v || !(v->string_value = sdupz(m, s))) return NULL;
  v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  return v;
}

static Google__Protobuf__Value *bool_value(mr *m, int b) {
  static const PbValue vinit = GOOGLE__PROTOBUF__VALUE__INIT;
  PbValue *v = NEW(m, PbValue, vinit);
  if (!v) return NULL;
  v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
  v->bool_value = b;
  return v;
}

static int add_logging(mr *m, Warp__MultiAgent__V1__Request__Metadata *md, const char *k,
                       Google__Protobuf__Value *v) {
  static const Warp__MultiAgent__V1__Request__Metadata__LoggingEntry linit =
      WARP__MULTI_AGENT__V1__REQUEST__METADATA__LOGGING_ENTRY__INIT;
  Warp__MultiAgent__V1__Request__Metadata__LoggingEntry *e =
      NEW(m, Warp__MultiAgent__V1__Request__Metadata__LoggingEntry, linit);
  if (!e || !v || !(e->key = sdupz(m, k))) return W2A_ENOMEM;
  e->value = v;
  return PUSH(m, md->logging, md->n_logging, e);
}

static int map_tools(mr *m, const w2a_gw_chat *c, Req *rq) {
  static const Warp__MultiAgent__V1__Request__MCPContext xinit =
      WARP__MULTI_AGENT__V1__REQUEST__MCPCONTEXT__INIT;
  static const Warp__MultiAgent__V1__Request__MCPContext__MCPTool tinit =
      WARP__MULTI_AGENT__V1__REQUEST__MCPCONTEXT__MCPTOOL__INIT;
  Warp__MultiAgent__V1__Request__MCPContext *x;
  size_t i, n;
  char p[96];
  if (!c->tools || c->tool_choice == W2A_GW_TC_NONE) return 0;
  n = json_object_array_length(c->tools);
  if (!n) return 0;
  if (!(x = NEW(m, Warp__MultiAgent__V1__Request__MCPContext, xinit))) return W2A_ENOMEM;
  for (i = 0; i < n; i++) {
    json_object *t = json_object_array_get_idx(c->tools, i), *fn = jget(t, "function");
    json_object *params = jget(fn, "parameters");
    const char *name = jstr(fn, "name"), *desc = jstr(fn, "description");
    Warp__MultiAgent__V1__Request__MCPContext__MCPTool *mt;
    if (c->tool_choice == W2A_GW_TC_FUNCTION && strcmp(name, c->forced_tool) != 0) continue;
    if (!(mt = NEW(m, Warp__MultiAgent__V1__Request__MCPContext__MCPTool, tinit)))
      return W2A_ENOMEM;
    if (!(mt->name = sdupz(m, name))) return W2A_ENOMEM;
    if (desc && !(mt->description = sdupz(m, desc))) return W2A_ENOMEM;
    count_text(m, name, strlen(name));
    if (desc) count_text(m, desc, strlen(desc));
    snprintf(p, sizeof p, "tools[%zu].function.parameters", i);
    if (params && json_object_is_type(params, json_type_object)) {
      /* The schema goes over as-is: empty strings, empty objects and "required": []
       * are meaningful in JSON Schema and are kept (spec §7 item 7). */
      const char *js = json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN);
      count_text(m, js, strlen(js));
      if (!(mt->input_schema = j2s(m, params, p))) return m->oom ? W2A_ENOMEM : W2A_EINVAL;
    } else {
      /* No parameters: an explicit empty object schema, which MCP requires. */
      json_object *o = json_tokener_parse("{\"type\":\"object\",\"properties\":{}}");
      mt->input_schema = o ? j2s(m, o, p) : NULL;
      json_object_put(o);
      if (!mt->input_schema) return W2A_ENOMEM;
    }
    if (PUSH(m, x->tools, x->n_tools, mt)) return W2A_ENOMEM;
  }
  m->info->tools = x->n_tools;
  rq->mcp_context = x;
  return 0;
}

/* System prompt: every system/developer message, in order, joined by a blank line, plus
 * the tool_choice instruction when the choice forces a call. */
static int system_prompt(mr *m, const w2a_gw_chat *c, w2a_buf *out) {
  size_t i, n = json_object_array_length(c->messages);
  char p[64];
  int rc;
  for (i = 0; i < n; i++) {
    json_object *msg = json_object_array_get_idx(c->messages, i);
    if (!role_is_system(jstr(msg, "role"))) continue;
    msg_path(p, sizeof p, i, ".content");
    if ((rc = content(m, jget(msg, "content"), p, NULL, 0))) return rc;
    if (out->len && w2a_buf_puts(out, "\n\n")) return W2A_ENOMEM;
    if (w2a_buf_append(out, m->text.data, m->text.len)) return W2A_ENOMEM;
  }
  if (c->tool_choice == W2A_GW_TC_REQUIRED && c->tools) {
    if (out->len && w2a_buf_puts(out, "\n\n")) return W2A_ENOMEM;
    if (w2a_buf_puts(out, "In this reply you must call at least one of the provided tools."))
      return W2A_ENOMEM;
  } else if (c->tool_choice == W2A_GW_TC_FUNCTION) {
    if (out->len && w2a_buf_puts(out, "\n\n")) return W2A_ENOMEM;
    if (w2a_buf_printf(out, "In this reply you must call the tool \"%s\".", c->forced_tool))
      return W2A_ENOMEM;
  }
  count_text(m, out->data, out->len);
  return 0;
}

static int attach_system_in(mr *m, InQuery *q, const w2a_buf *sys) {
  static const InAttEntry einit =
      WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_QUERY__REFERENCED_ATTACHMENTS_ENTRY__INIT;
  InAttEntry *e = NEW(m, InAttEntry, einit);
  if (!e || !(e->key = sdupz(m, SYSTEM_PROMPT_KEY))) return W2A_ENOMEM;
  if (!(e->value = plain_attachment(m, sys->data, sys->len))) return W2A_ENOMEM;
  return PUSH(m, q->referenced_attachments, q->n_referenced_attachments, e);
}

static int attach_system_hist(mr *m, MsgQuery *q, const w2a_buf *sys) {
  static const MsgAttEntry einit =
      WARP__MULTI_AGENT__V1__MESSAGE__USER_QUERY__REFERENCED_ATTACHMENTS_ENTRY__INIT;
  MsgAttEntry *e = NEW(m, MsgAttEntry, einit);
  if (!e || !(e->key = sdupz(m, SYSTEM_PROMPT_KEY))) return W2A_ENOMEM;
  if (!(e->value = plain_attachment(m, sys->data, sys->len))) return W2A_ENOMEM;
  m->info->system_in_history = 1;
  return PUSH(m, q->referenced_attachments, q->n_referenced_attachments, e);
}

/* ---- parse ----------------------------------------------------------------------- */

int w2a_gw_body_check(const char *body, size_t len, w2a_gw_error *e) {
  /* JSON text is UTF-8 as a whole (RFC 8259 §8.1), so the whole body is checked; json-c
   * itself turns escaped lone surrogates into U+FFFD. */
  size_t ok = w2a_pbjson_utf8_prefix((const uint8_t *)body, len);
  if (ok < len)
    return w2a_gw_errorf(e, W2A_GWE_INVALID_JSON, NULL,
                         "the request body is not valid UTF-8 (at byte %zu)", ok);
  /* JSON writes NUL only as \u0000 (a raw NUL byte is a control character, which
   * json-c's tokener refuses itself); "u0000" is that escape when an odd run of
   * backslashes comes before it (an even run is escaped backslashes, then text). */
  const char *end = body + len, *p = body;
  while (p && p < end && (p = memmem(p, (size_t)(end - p), "u0000", 5))) {
    size_t bs = 0;
    while (p - bs > body && p[-1 - (ptrdiff_t)bs] == '\\')
      bs++;
    if (bs % 2)
      return w2a_gw_errorf(e, W2A_GWE_UNSUPPORTED, NULL,
                           "the request contains a NUL character (\\u0000 at byte %zu), which "
                           "Warp's protocol cannot carry in text",
                           (size_t)(p - 1 - body));
    p += 5;
  }
  return 0;
}

int w2a_gw_chat_parse(json_object *root, w2a_gw_chat *c, w2a_gw_error *e) {
  json_object *v;
  size_t i, n;
  char p[96];
  memset(c, 0, sizeof *c);
  c->parallel_tool_calls = 1;
  if (!json_object_is_type(root, json_type_object))
    return w2a_gw_errorf(e, W2A_GWE_INVALID_JSON, NULL, "the request body must be a JSON object");
  if ((v = jget(root, "model")) && !json_object_is_type(v, json_type_null)) {
    if (!json_object_is_type(v, json_type_string))
      return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "model", "model must be a string");
    c->model = json_object_get_string(v);
    if (!*c->model) c->model = NULL;
  }
  if ((v = jget(root, "stream")) && !json_object_is_type(v, json_type_null)) {
    if (!json_object_is_type(v, json_type_boolean))
      return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "stream", "stream must be a boolean");
    c->stream = json_object_get_boolean(v);
  }
  if ((v = jget(jget(root, "stream_options"), "include_usage")))
    c->include_usage = json_object_get_boolean(v);
  if ((v = jget(root, "n")) && !json_object_is_type(v, json_type_null) &&
      json_object_get_int64(v) != 1)
    return w2a_gw_errorf(e, W2A_GWE_UNSUPPORTED, "n", "only n=1 is supported");
  if ((v = jget(root, "parallel_tool_calls")) && json_object_is_type(v, json_type_boolean))
    c->parallel_tool_calls = json_object_get_boolean(v);

  c->messages = jget(root, "messages");
  if (!c->messages || !json_object_is_type(c->messages, json_type_array) ||
      !(n = json_object_array_length(c->messages)))
    return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "messages", "messages must be a non-empty array");
  for (i = 0; i < n; i++) {
    json_object *msg = json_object_array_get_idx(c->messages, i);
    const char *role = jstr(msg, "role");
    msg_path(p, sizeof p, i, ".role");
    if (!role) return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, p, "%s is missing or not a string", p);
    if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool") &&
        !role_is_system(role))
      return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, p,
                           "%s \"%s\" is not one of system, developer, user, assistant, tool", p,
                           role);
  }

  if ((v = jget(root, "tools")) && !json_object_is_type(v, json_type_null)) {
    if (!json_object_is_type(v, json_type_array))
      return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "tools", "tools must be an array");
    n = json_object_array_length(v);
    for (i = 0; i < n; i++) {
      json_object *t = json_object_array_get_idx(v, i), *fn = jget(t, "function"), *params;
      const char *type = jstr(t, "type");
      snprintf(p, sizeof p, "tools[%zu]", i);
      if (!type || strcmp(type, "function"))
        return w2a_gw_errorf(e, W2A_GWE_UNSUPPORTED, p,
                             "%s: only tools of type \"function\" are supported", p);
      if (!jstr(fn, "name") || !*jstr(fn, "name")) {
        snprintf(p, sizeof p, "tools[%zu].function.name", i);
        return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, p, "%s is missing", p);
      }
      params = jget(fn, "parameters");
      if (params && !json_object_is_type(params, json_type_object) &&
          !json_object_is_type(params, json_type_null)) {
        snprintf(p, sizeof p, "tools[%zu].function.parameters", i);
        return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, p, "%s must be a JSON Schema object", p);
      }
    }
    c->tools = v;
  }

  if ((v = jget(root, "tool_choice")) && !json_object_is_type(v, json_type_null)) {
    if (json_object_is_type(v, json_type_string)) {
      const char *s = json_object_get_string(v);
      if (!strcmp(s, "none"))
        c->tool_choice = W2A_GW_TC_NONE;
      else if (!strcmp(s, "auto"))
        c->tool_choice = W2A_GW_TC_AUTO;
      else if (!strcmp(s, "required"))
        c->tool_choice = W2A_GW_TC_REQUIRED;
      else
        return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "tool_choice",
                             "tool_choice \"%s\" is not none, auto, required or an object", s);
    } else {
      const char *name = jstr(jget(v, "function"), "name");
      int found = 0;
      if (!name)
        return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "tool_choice",
                             "tool_choice must name a function: "
                             "{\"type\":\"function\",\"function\":{\"name\":…}}");
      for (i = 0; c->tools && i < json_object_array_length(c->tools); i++)
        if (!strcmp(jstr(jget(json_object_array_get_idx(c->tools, i), "function"), "name"), name))
          found = 1;
      if (!found)
        return w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "tool_choice",
                             "tool_choice names \"%s\", which is not in tools", name);
      c->tool_choice = W2A_GW_TC_FUNCTION;
      c->forced_tool = name;
    }
  }
  return 0;
}

/* ---- map ------------------------------------------------------------------------- */

int w2a_gw_map_request(const w2a_gw_chat *c, const char *model_id, const w2a_gw_map_opts *o,
                       w2a_buf *out, w2a_gw_map_info *info, w2a_gw_error *e) {
  static const Req rinit = WARP__MULTI_AGENT__V1__REQUEST__INIT;
  static const Warp__MultiAgent__V1__Request__TaskContext tcinit =
      WARP__MULTI_AGENT__V1__REQUEST__TASK_CONTEXT__INIT;
  static const Warp__MultiAgent__V1__Task tinit = WARP__MULTI_AGENT__V1__TASK__INIT;
  static const Warp__MultiAgent__V1__Request__Input iinit =
      WARP__MULTI_AGENT__V1__REQUEST__INPUT__INIT;
  static const Warp__MultiAgent__V1__Request__Input__UserInputs uiinit =
      WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__INIT;
  static const UserInput uinit =
      WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INIT;
  static const Warp__MultiAgent__V1__Request__Settings sinit =
      WARP__MULTI_AGENT__V1__REQUEST__SETTINGS__INIT;
  static const Warp__MultiAgent__V1__Request__Settings__ModelConfig mcinit =
      WARP__MULTI_AGENT__V1__REQUEST__SETTINGS__MODEL_CONFIG__INIT;
  static const Warp__MultiAgent__V1__Request__Metadata mdinit =
      WARP__MULTI_AGENT__V1__REQUEST__METADATA__INIT;
  static const Ctx cinit = WARP__MULTI_AGENT__V1__INPUT_CONTEXT__INIT;
  static const Warp__MultiAgent__V1__InputContext__OperatingSystem osinit =
      WARP__MULTI_AGENT__V1__INPUT_CONTEXT__OPERATING_SYSTEM__INIT;
  static const Google__Protobuf__Timestamp tsinit = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  static Warp__MultiAgent__V1__ToolType supported[] = {
      WARP__MULTI_AGENT__V1__TOOL_TYPE__CALL_MCP_TOOL};
  w2a_gw_map_info dummy;
  mr m = {0};
  alignas(max_align_t) unsigned char first[W2A_ARENA_FIRST_BYTES(STACK_BLOCK)];
  w2a_buf sys;
  Req *rq;
  Warp__MultiAgent__V1__Task *task;
  Warp__MultiAgent__V1__Request__Input__UserInputs *ui;
  Ctx *ctx;
  MsgQuery *last_hist_query = NULL;
  size_t i, n = json_object_array_length(c->messages), last = n, first_input;
  const char *last_role = NULL;
  int rc = W2A_ENOMEM;
  char p[64];

  if (!info) info = &dummy;
  memset(info, 0, sizeof *info);
  w2a_arena_init(&m.ar, ARENA_BLOCK, 0, first, sizeof first);
  m.e = e;
  m.info = info;
  m.max_depth = o && o->max_depth > 0 ? o->max_depth : 64;
  w2a_buf_init(&m.text, 0);
  w2a_buf_init(&sys, 0);
  uuid4(m.task_id);

  /* The input is the last non-system message (a user query), or the run of tool
   * results that ends the conversation. */
  for (i = n; i-- > 0;) {
    last_role = jstr(json_object_array_get_idx(c->messages, i), "role");
    if (!role_is_system(last_role)) {
      last = i;
      break;
    }
  }
  if (last == n) {
    rc = w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, "messages",
                       "messages has no user message to answer (only system messages)");
    goto out;
  }
  if (!strcmp(last_role, "assistant")) {
    msg_path(p, sizeof p, last, ".role");
    rc = w2a_gw_errorf(e, W2A_GWE_BAD_REQUEST, p,
                       "the last message must be a user or tool message (Warp cannot "
                       "continue an assistant message)");
    goto out;
  }
  first_input = last;
  if (!strcmp(last_role, "tool"))
    for (i = last; i-- > 0;) {
      const char *r = jstr(json_object_array_get_idx(c->messages, i), "role");
      if (!strcmp(r, "tool"))
        first_input = i;
      else if (!role_is_system(r))
        break;
    }

  if (!(rq = NEW(&m, Req, rinit))) goto out;
  if ((rc = system_prompt(&m, c, &sys))) goto out;
  rc = W2A_ENOMEM;

  /* 1 task_context: present even when empty, as the real client sends it (`0a 00`). */
  if (!(rq->task_context = NEW(&m, Warp__MultiAgent__V1__Request__TaskContext, tcinit))) goto out;
  if (!(task = NEW(&m, Warp__MultiAgent__V1__Task, tinit))) goto out;
  task->id = m.task_id;
  for (i = 0; i < first_input; i++) {
    json_object *msg = json_object_array_get_idx(c->messages, i);
    const char *role = jstr(msg, "role");
    msg_path(p, sizeof p, i, "");
    if (role_is_system(role)) continue;
    if (!task->n_messages) {
      /* Warp's own task opens with a server tool call; mirror it (spec §2.3). */
      static const Warp__MultiAgent__V1__Message__ToolCall tcallinit =
          WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__INIT;
      static const Warp__MultiAgent__V1__Message__ToolCall__Server svinit =
          WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__SERVER__INIT;
      Msg *h = new_hist(&m);
      Warp__MultiAgent__V1__Message__ToolCall *tc =
          NEW(&m, Warp__MultiAgent__V1__Message__ToolCall, tcallinit);
      Warp__MultiAgent__V1__Message__ToolCall__Server *sv =
          NEW(&m, Warp__MultiAgent__V1__Message__ToolCall__Server, svinit);
      char id[37];
      uuid4(id);
      if (!h || !tc || !sv || !(tc->tool_call_id = sdupz(&m, id)) ||
          !(sv->payload = sdupz(&m, PREAMBLE_PAYLOAD)))
        goto out;
      tc->tool_case = WARP__MULTI_AGENT__V1__MESSAGE__TOOL_CALL__TOOL_SERVER;
      tc->server = sv;
      h->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL;
      h->tool_call = tc;
      if (PUSH(&m, task->messages, task->n_messages, h)) goto out;
    }
    if (!strcmp(role, "user"))
      rc = hist_user(&m, task, msg, p, &last_hist_query);
    else if (!strcmp(role, "assistant"))
      rc = hist_assistant(&m, task, msg, p);
    else
      rc = hist_tool(&m, task, msg, p);
    if (rc) goto out;
    rc = W2A_ENOMEM;
  }
  if (task->n_messages) {
    if (PUSH(&m, rq->task_context->tasks, rq->task_context->n_tasks, task)) goto out;
    rq->task_context->active_task_id = m.task_id;
    info->history = task->n_messages;
  }

  /* 2 input */
  if (!(rq->input = NEW(&m, Warp__MultiAgent__V1__Request__Input, iinit))) goto out;
  if (!(ctx = NEW(&m, Ctx, cinit))) goto out;
  rq->input->context = ctx;
  if (o && o->os_platform && *o->os_platform) {
    if (!(ctx->operating_system =
              NEW(&m, Warp__MultiAgent__V1__InputContext__OperatingSystem, osinit)) ||
        !(ctx->operating_system->platform = sdupz(&m, o->os_platform)))
      goto out;
  }
  if (o && o->now_s) {
    if (!(ctx->current_time = NEW(&m, Google__Protobuf__Timestamp, tsinit))) goto out;
    ctx->current_time->seconds = o->now_s;
  }
  if (!(ui = NEW(&m, Warp__MultiAgent__V1__Request__Input__UserInputs, uiinit))) goto out;
  rq->input->type_case = WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_USER_INPUTS;
  rq->input->user_inputs = ui;
  if (!strcmp(last_role, "user")) {
    json_object *msg = json_object_array_get_idx(c->messages, last);
    UserInput *u = NEW(&m, UserInput, uinit);
    InQuery *q = az(&m, sizeof *q);
    Ctx *img_ctx = ctx;
    if (!u || !q) goto out;
    warp__multi_agent__v1__request__input__user_query__init(q);
    msg_path(p, sizeof p, last, ".content");
    if ((rc = content(&m, jget(msg, "content"), p, &img_ctx, 1))) goto out;
    rc = W2A_ENOMEM;
    count_text(&m, m.text.data, m.text.len);
    if (!(q->query = sdup(&m, m.text.data, m.text.len))) goto out;
    /* Observed on the real client's first turn; every request here starts a new Warp
     * conversation, so "new conversation" is literally true. */
    q->attachments_bytes_presence_case =
        WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_QUERY__ATTACHMENTS_BYTES_PRESENCE_ATTACHMENTS_BYTES;
    q->is_new_conversation = 1;
    if (sys.len && attach_system_in(&m, q, &sys)) goto out;
    u->input_case =
        WARP__MULTI_AGENT__V1__REQUEST__INPUT__USER_INPUTS__USER_INPUT__INPUT_USER_QUERY;
    u->user_query = q;
    if (PUSH(&m, ui->inputs, ui->n_inputs, u)) goto out;
  } else {
    info->input_tool_results = 1;
    for (i = first_input; i <= last; i++) {
      json_object *msg = json_object_array_get_idx(c->messages, i);
      if (role_is_system(jstr(msg, "role"))) continue;
      msg_path(p, sizeof p, i, "");
      if ((rc = input_tool(&m, ui, msg, p))) goto out;
      rc = W2A_ENOMEM;
    }
    if (sys.len) {
      if (!last_hist_query) {
        /* No user message at all before the tool results: give the prompt a carrier. */
        Msg *h = new_hist(&m);
        if (!h || !(last_hist_query = new_msg_query(&m))) goto out;
        h->message_case = WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_USER_QUERY;
        h->user_query = last_hist_query;
        if (PUSH(&m, task->messages, task->n_messages, h)) goto out;
        if (!rq->task_context->n_tasks) {
          if (PUSH(&m, rq->task_context->tasks, rq->task_context->n_tasks, task)) goto out;
          rq->task_context->active_task_id = m.task_id;
        }
        info->history = task->n_messages;
      }
      if (attach_system_hist(&m, last_hist_query, &sys)) goto out;
    }
  }
  info->inputs = ui->n_inputs;

  /* 3 settings */
  if (!(rq->settings = NEW(&m, Warp__MultiAgent__V1__Request__Settings, sinit))) goto out;
  if (!(rq->settings->model_config =
            NEW(&m, Warp__MultiAgent__V1__Request__Settings__ModelConfig, mcinit)))
    goto out;
  if (!(rq->settings->model_config->base = sdupz(&m, model_id))) goto out;
  if (!(rq->settings->model_config->cli_agent = sdupz(&m, "cli-agent-auto"))) goto out;
  rq->settings->supports_parallel_tool_calls = c->parallel_tool_calls;
  /* Only MCP tools: the client's functions are the only tools the model may call. */
  rq->settings->n_supported_tools = 1;
  rq->settings->supported_tools = supported;

  /* 4 metadata */
  if (!(rq->metadata = NEW(&m, Warp__MultiAgent__V1__Request__Metadata, mdinit))) goto out;
  if (add_logging(&m, rq->metadata, "entrypoint", str_value(&m, "USER_INITIATED")) ||
      add_logging(&m, rq->metadata, "is_auto_resume_after_error", bool_value(&m, 0)) ||
      add_logging(&m, rq->metadata, "is_autodetected_user_query", bool_value(&m, 1)))
    goto out;

  /* 6 mcp_context */
  if ((rc = map_tools(&m, c, rq))) goto out;

  {
    size_t len = warp__multi_agent__v1__request__get_packed_size(rq);
    if (o && o->max_bytes && len > o->max_bytes) {
      rc = w2a_gw_errorf(e, W2A_GWE_BODY_TOO_LARGE, "messages",
                         "the mapped request is %zu bytes, over the %zu byte cap", len,
                         o->max_bytes);
      goto out;
    }
    if ((rc = w2a_buf_reserve(out, len))) goto out;
    warp__multi_agent__v1__request__pack(rq, (uint8_t *)out->data + out->len);
    out->len += len;
    out->data[out->len] = 0;
  }
  rc = 0;
out:
  if (m.oom || rc == W2A_ENOMEM || rc == W2A_ETOOBIG) {
    if (rc == W2A_ETOOBIG)
      w2a_gw_errorf(e, W2A_GWE_BODY_TOO_LARGE, NULL, "the mapped request is too large");
    else
      w2a_gw_errorf(e, W2A_GWE_INTERNAL, NULL, "out of memory while mapping the request");
    if (!rc) rc = W2A_ENOMEM;
  }
  w2a_buf_free(&m.text);
  w2a_buf_free(&sys);
  w2a_arena_release(&m.ar);
  return rc;
}
