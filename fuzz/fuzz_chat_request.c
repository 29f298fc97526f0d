/* fuzz_chat_request.c - arbitrary bytes as the body of POST /v1/chat/completions, taken
 * as the gateway takes it (chat.c): w2a_gw_body_check (UTF-8, no \u0000), json-c with
 * the gateway's nesting limit, the whole body or nothing, then w2a_gw_chat_parse and
 * w2a_gw_map_request. This is the input a client controls most directly.
 *
 * Checks, beyond "no crash, no leak, no UB":
 *   - a refused request is a 4xx with a message (never a 5xx: nothing here is the
 *     gateway's fault), and a parameter path that names a field, when there is one;
 *   - a mapped request is a valid warp.multi_agent.v1.Request within max_bytes, and
 *     protobuf-c reads back what the mapping reported in w2a_gw_map_info: as many
 *     history messages, inputs, tools and images;
 *   - mapping is a function of the request: the same body maps twice to the same
 *     outcome, and to as many bytes (not the same bytes: task and message ids are fresh
 *     UUIDs per request). */
#include <json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/map_request.h"
#include "proto/pbjson.h"
#include "request.pb-c.h"
#include "task.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEPTH 16         /* the gateway's STRUCT_MAX_DEPTH, made small to reach it */
#define MAX_OUT (256u << 10) /* a cap on the packed request, reached by long inputs */

typedef Warp__MultiAgent__V1__Request Req;

static size_t count_images(const Req *rq) {
  size_t n = 0;
  const Warp__MultiAgent__V1__InputContext *ctx = rq->input ? rq->input->context : NULL;
  if (ctx) n += ctx->n_images;
  if (rq->task_context)
    for (size_t t = 0; t < rq->task_context->n_tasks; t++)
      for (size_t i = 0; i < rq->task_context->tasks[t]->n_messages; i++) {
        const Warp__MultiAgent__V1__Message *m = rq->task_context->tasks[t]->messages[i];
        if (m->message_case == WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_USER_QUERY &&
            m->user_query->context)
          n += m->user_query->context->n_images;
      }
  return n;
}

static int map(json_object *root, w2a_buf *out, w2a_gw_map_info *info, w2a_gw_error *e) {
  w2a_gw_chat c;
  w2a_gw_map_opts o = {
      .os_platform = "Linux", .now_s = 1700000000, .max_depth = MAX_DEPTH, .max_bytes = MAX_OUT};
  memset(info, 0, sizeof *info);
  int rc = w2a_gw_chat_parse(root, &c, e);
  if (!rc) rc = w2a_gw_map_request(&c, c.model ? c.model : "auto", &o, out, info, e);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 20)) return 0;
  w2a_gw_error be;
  if (w2a_gw_body_check((const char *)data, size, &be)) { /* chat.c's first check */
    if (w2a_gw_error_status(be.kind) != 400) abort();
    return 0;
  }
  json_tokener *tok = json_tokener_new_ex(MAX_DEPTH + 16);
  if (!tok) abort();
  json_object *root = json_tokener_parse_ex(tok, (const char *)data, (int)size);
  int whole = root && json_tokener_get_error(tok) == json_tokener_success &&
              json_tokener_get_parse_end(tok) == size;
  json_tokener_free(tok);
  if (!whole || !json_object_is_type(root, json_type_object)) {
    json_object_put(root);
    return 0; /* the gateway answers these itself, before any mapping */
  }

  w2a_buf out, again;
  w2a_gw_map_info info, info2;
  w2a_gw_error e = {0}, e2 = {0};
  w2a_buf_init(&out, 0);
  w2a_buf_init(&again, 0);
  int rc = map(root, &out, &info, &e);
  int rc2 = map(root, &again, &info2, &e2);
  if (rc != rc2) abort();
  if (rc) {
    int st = w2a_gw_error_status(e.kind);
    if (st < 400 || st > 499 || !e.message[0]) abort();
    if (e.kind != e2.kind || strcmp(e.message, e2.message) || strcmp(e.param, e2.param)) abort();
  } else {
    if (out.len > MAX_OUT) abort();
    if (out.len != again.len || memcmp(&info, &info2, sizeof info)) abort();
    w2a_err err;
    if (w2a_pbjson_validate(&warp__multi_agent__v1__request__descriptor, (const uint8_t *)out.data,
                            out.len, &err))
      abort();
    Req *rq = warp__multi_agent__v1__request__unpack(NULL, out.len, (const uint8_t *)out.data);
    if (!rq || !rq->input || !rq->settings) abort();
    size_t hist =
        rq->task_context && rq->task_context->n_tasks ? rq->task_context->tasks[0]->n_messages : 0;
    size_t inputs = rq->input->user_inputs ? rq->input->user_inputs->n_inputs : 0;
    size_t tools = rq->mcp_context ? rq->mcp_context->n_tools : 0;
    if (hist != info.history || inputs != info.inputs || inputs == 0 || tools != info.tools ||
        count_images(rq) != info.images)
      abort();
    warp__multi_agent__v1__request__free_unpacked(rq, NULL);
  }
  w2a_buf_free(&out);
  w2a_buf_free(&again);
  json_object_put(root);
  return 0;
}
