/* test_gw_map_request.c - OpenAI request → Warp Request: every mapping rule, checked on
 * the unpacked protobuf (field numbers are checked through the generated descriptors
 * and, for the two tool-result sides, on the raw bytes). */
#include <json.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "gateway/map_request.h"
#include "request.pb-c.h"
#include "t.h"
#include "task.pb-c.h"

typedef Warp__MultiAgent__V1__Request Req;

static Req *map_ok(const char *json, const char *model, w2a_gw_map_info *info) {
  json_object *root = json_tokener_parse(json);
  w2a_gw_chat c;
  w2a_gw_error e = {0};
  w2a_gw_map_opts o = {.os_platform = "MacOS", .now_s = 1700000000, .max_depth = 16};
  w2a_buf out;
  Req *rq = NULL;
  w2a_buf_init(&out, 0);
  T_CHECK(root != NULL);
  if (w2a_gw_chat_parse(root, &c, &e) || w2a_gw_map_request(&c, model, &o, &out, info, &e)) {
    fprintf(stderr, "unexpected error: %s (param %s)\n", e.message, e.param);
    t_fail++;
  } else {
    rq = warp__multi_agent__v1__request__unpack(NULL, out.len, (uint8_t *)out.data);
    T_CHECK(rq != NULL);
  }
  w2a_buf_free(&out);
  json_object_put(root);
  return rq;
}

/* Map and expect an error; returns the error kind, param copied out. */
static int map_err(const char *json, char *param, size_t n) {
  json_object *root = json_tokener_parse(json);
  w2a_gw_chat c;
  w2a_gw_error e = {0};
  w2a_gw_map_opts o = {.max_depth = 8};
  w2a_buf out;
  int rc;
  w2a_buf_init(&out, 0);
  rc = w2a_gw_chat_parse(root, &c, &e);
  if (!rc) rc = w2a_gw_map_request(&c, "auto", &o, &out, NULL, &e);
  T_CHECK(rc != 0);
  if (param) snprintf(param, n, "%s", e.param);
  w2a_buf_free(&out);
  json_object_put(root);
  return rc ? (int)e.kind : 0;
}

static void free_rq(Req *rq) {
  if (rq) warp__multi_agent__v1__request__free_unpacked(rq, NULL);
}

static const char *attachment(Warp__MultiAgent__V1__Request__Input__UserQuery *q, const char *key) {
  size_t i;
  for (i = 0; q && i < q->n_referenced_attachments; i++)
    if (!strcmp(q->referenced_attachments[i]->key, key))
      return q->referenced_attachments[i]->value->plain_text;
  return NULL;
}

static void test_simple_user(void) {
  w2a_gw_map_info info;
  Req *rq = map_ok("{\"model\":\"gpt-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                   "gpt-5", &info);
  if (!rq) return;
  T_CHECK(rq->task_context != NULL);
  T_EQ_INT(rq->task_context->n_tasks, 0);
  T_EQ_INT(rq->input->type_case, WARP__MULTI_AGENT__V1__REQUEST__INPUT__TYPE_USER_INPUTS);
  T_EQ_INT(rq->input->user_inputs->n_inputs, 1);
  T_EQ_STR(rq->input->user_inputs->inputs[0]->user_query->query, "hi");
  T_EQ_INT(rq->input->user_inputs->inputs[0]->user_query->is_new_conversation, 1);
  T_EQ_INT(rq->input->user_inputs->inputs[0]->user_query->n_referenced_attachments, 0);
  T_EQ_STR(rq->input->context->operating_system->platform, "MacOS");
  T_EQ_INT(rq->input->context->current_time->seconds, 1700000000);
  T_EQ_STR(rq->settings->model_config->base, "gpt-5");
  T_EQ_STR(rq->settings->model_config->cli_agent, "cli-agent-auto");
  T_EQ_INT(rq->settings->n_supported_tools, 1);
  T_EQ_INT(rq->settings->supported_tools[0], 9);
  T_EQ_INT(rq->settings->supports_parallel_tool_calls, 1);
  T_CHECK(rq->mcp_context == NULL);
  T_EQ_INT(rq->metadata->n_logging, 3);
  T_EQ_STR(rq->metadata->logging[0]->key, "entrypoint");
  T_EQ_STR(rq->metadata->logging[0]->value->string_value, "USER_INITIATED");
  T_EQ_STR(rq->metadata->conversation_id, "");
  T_EQ_INT(info.history, 0);
  T_EQ_INT(info.inputs, 1);
  T_CHECK(info.prompt_tokens_est >= 1);
  free_rq(rq);
}

static void test_system_and_developer(void) {
  Req *rq = map_ok("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                   "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"no "
                   "emoji\"}]},{\"role\":\"user\",\"content\":\"hi\"}]}",
                   "auto", NULL);
  if (!rq) return;
  T_EQ_STR(attachment(rq->input->user_inputs->inputs[0]->user_query, "SYSTEM_PROMPT"),
           "be brief\n\nno emoji");
  T_EQ_INT(rq->task_context->n_tasks, 0); /* system messages are not history */
  free_rq(rq);
}

static void test_full_history(void) {
  w2a_gw_map_info info;
  Warp__MultiAgent__V1__Task *t;
  Req *rq =
      map_ok("{\"messages\":["
             "{\"role\":\"system\",\"content\":\"S\"},"
             "{\"role\":\"user\",\"content\":\"first\"},"
             "{\"role\":\"assistant\",\"content\":\"answer one\"},"
             "{\"role\":\"user\",\"content\":\"weather?\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
             "{\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"n\\\":2}\"}},"
             "{\"id\":\"call_B\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
             "\"arguments\":\"\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_A\",\"content\":\"sunny\"},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_B\",\"content\":\"\"}]}",
             "auto", &info);
  if (!rq) return;
  T_EQ_INT(rq->task_context->n_tasks, 1);
  t = rq->task_context->tasks[0];
  T_EQ_STR(rq->task_context->active_task_id, t->id);
  T_EQ_INT(strlen(t->id), 36);
  /* preamble, user, agent, user, tool_call A, tool_call B */
  T_EQ_INT(t->n_messages, 6);
  T_EQ_INT(info.history, 6);
  if (t->n_messages == 6) {
    T_EQ_INT(t->messages[0]->message_case, WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL);
    T_EQ_STR(t->messages[0]->tool_call->server->payload, "IgA=");
    T_EQ_STR(t->messages[1]->user_query->query, "first");
    T_EQ_STR(t->messages[1]->task_id, t->id);
    T_EQ_STR(t->messages[2]->agent_output->text, "answer one");
    T_EQ_STR(t->messages[3]->user_query->query, "weather?");
    T_EQ_STR(t->messages[4]->tool_call->tool_call_id, "call_A");
    T_EQ_STR(t->messages[4]->tool_call->call_mcp_tool->name, "get_weather");
    T_EQ_INT(t->messages[4]->tool_call->call_mcp_tool->args->n_fields, 2);
    T_EQ_STR(t->messages[4]->tool_call->call_mcp_tool->args->fields[0]->key, "city");
    T_EQ_STR(t->messages[4]->tool_call->call_mcp_tool->args->fields[0]->value->string_value,
             "Paris");
    T_CHECK(t->messages[4]->tool_call->call_mcp_tool->args->fields[1]->value->number_value == 2);
    T_EQ_STR(t->messages[5]->tool_call->call_mcp_tool->name, "get_time");
    T_EQ_INT(t->messages[5]->tool_call->call_mcp_tool->args->n_fields, 0);
    /* System prompt rides on the latest history user query when the input is tools. */
    T_EQ_STR(t->messages[3]->user_query->n_referenced_attachments
                 ? t->messages[3]->user_query->referenced_attachments[0]->value->plain_text
                 : NULL,
             "S");
    T_EQ_INT(t->messages[1]->user_query->n_referenced_attachments, 0);
  }
  T_EQ_INT(info.input_tool_results, 1);
  T_EQ_INT(info.system_in_history, 1);
  T_EQ_INT(rq->input->user_inputs->n_inputs, 2);
  if (rq->input->user_inputs->n_inputs == 2) {
    Warp__MultiAgent__V1__Request__Input__ToolCallResult *a =
        rq->input->user_inputs->inputs[0]->tool_call_result;
    Warp__MultiAgent__V1__Request__Input__ToolCallResult *b =
        rq->input->user_inputs->inputs[1]->tool_call_result;
    T_EQ_STR(a->tool_call_id, "call_A");
    T_EQ_INT(a->result_case,
             WARP__MULTI_AGENT__V1__REQUEST__INPUT__TOOL_CALL_RESULT__RESULT_CALL_MCP_TOOL);
    T_EQ_STR(a->call_mcp_tool->success->results[0]->text->text, "sunny");
    T_EQ_STR(b->tool_call_id, "call_B");
    /* Empty result keeps its body (no deep clean). */
    T_CHECK(b->call_mcp_tool && b->call_mcp_tool->success &&
            b->call_mcp_tool->success->n_results == 1);
  }
  free_rq(rq);
}

static void test_tool_result_history_field16(void) {
  Warp__MultiAgent__V1__Task *t;
  Req *rq = map_ok("{\"messages\":["
                   "{\"role\":\"user\",\"content\":\"q\"},"
                   "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
                   "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":\"text\","
                   "\"text\":\"r1\"}]},"
                   "{\"role\":\"assistant\",\"content\":\"done\"},"
                   "{\"role\":\"user\",\"content\":\"next\"}]}",
                   "auto", NULL);
  if (!rq) return;
  t = rq->task_context->tasks[0];
  T_EQ_INT(t->n_messages, 5);
  if (t->n_messages == 5) {
    Warp__MultiAgent__V1__Message__ToolCallResult *r = t->messages[3]->tool_call_result;
    T_EQ_INT(t->messages[3]->message_case,
             WARP__MULTI_AGENT__V1__MESSAGE__MESSAGE_TOOL_CALL_RESULT);
    T_EQ_STR(r->tool_call_id, "c1");
    T_EQ_INT(r->result_case, 16);
    T_EQ_STR(r->call_mcp_tool->success->results[0]->text->text, "r1");
    T_EQ_STR(t->messages[4]->agent_output->text, "done");
  }
  T_EQ_STR(rq->input->user_inputs->inputs[0]->user_query->query, "next");
  free_rq(rq);
}

static void test_images(void) {
  w2a_gw_map_info info;
  Req *rq = map_ok("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                   "\"text\":\"what is this\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                   "\"data:image/png;base64,aGVsbG8=\"}}]}]}",
                   "auto", &info);
  if (!rq) return;
  T_EQ_STR(rq->input->user_inputs->inputs[0]->user_query->query, "what is this");
  T_EQ_INT(rq->input->context->n_images, 1);
  if (rq->input->context->n_images == 1) {
    T_EQ_STR(rq->input->context->images[0]->mime_type, "image/png");
    T_EQ_MEM(rq->input->context->images[0]->data.data, rq->input->context->images[0]->data.len,
             "hello", 5);
  }
  T_EQ_INT(info.images, 1);
  free_rq(rq);

  /* An image in a history user message goes into that message's context. */
  rq = map_ok("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
              "\"image_url\":{\"url\":\"data:image/jpeg;base64,/9j/\"}}]},{\"role\":"
              "\"assistant\",\"content\":\"a cat\"},{\"role\":\"user\",\"content\":\"sure?\"}]}",
              "auto", NULL);
  if (!rq) return;
  T_CHECK(rq->task_context->tasks[0]->messages[1]->user_query->context != NULL);
  T_EQ_STR(rq->task_context->tasks[0]->messages[1]->user_query->context->images[0]->mime_type,
           "image/jpeg");
  T_EQ_INT(rq->input->context->n_images, 0);
  free_rq(rq);
}

static void test_tools_schema_intact(void) {
  w2a_gw_map_info info;
  Google__Protobuf__Struct *s;
  Req *rq =
      map_ok("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":["
             "{\"type\":\"function\",\"function\":{\"name\":\"search\",\"description\":\"Search\","
             "\"parameters\":{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\","
             "\"description\":\"\"},\"opts\":{}},\"required\":[],\"additionalProperties\":false}}},"
             "{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}]}",
             "auto", &info);
  if (!rq) return;
  T_CHECK(rq->mcp_context != NULL);
  T_EQ_INT(info.tools, 2);
  if (!rq->mcp_context || rq->mcp_context->n_tools != 2) goto out;
  T_EQ_STR(rq->mcp_context->tools[0]->name, "search");
  T_EQ_STR(rq->mcp_context->tools[0]->description, "Search");
  s = rq->mcp_context->tools[0]->input_schema;
  T_EQ_INT(s->n_fields, 4);
  T_EQ_STR(s->fields[1]->key, "properties");
  /* "description":"" and "opts":{} and "required":[] survive */
  T_EQ_STR(s->fields[1]->value->struct_value->fields[0]->value->struct_value->fields[1]->key,
           "description");
  T_EQ_STR(s->fields[1]
               ->value->struct_value->fields[0]
               ->value->struct_value->fields[1]
               ->value->string_value,
           "");
  T_EQ_INT(s->fields[1]->value->struct_value->fields[1]->value->kind_case,
           GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  T_EQ_INT(s->fields[2]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  T_EQ_INT(s->fields[2]->value->list_value->n_values, 0);
  T_EQ_INT(s->fields[3]->value->bool_value, 0);
  T_EQ_INT(s->fields[3]->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
  T_EQ_STR(rq->mcp_context->tools[1]->input_schema->fields[0]->value->string_value, "object");
out:
  free_rq(rq);
}

static void test_tool_choice(void) {
  const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},"
                      "{\"type\":\"function\",\"function\":{\"name\":\"b\"}}]";
  char buf[512];
  Req *rq;
  snprintf(buf, sizeof buf,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":\"none\"}",
           tools);
  rq = map_ok(buf, "auto", NULL);
  if (rq) T_CHECK(rq->mcp_context == NULL);
  free_rq(rq);

  snprintf(buf, sizeof buf,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":"
           "\"required\"}",
           tools);
  rq = map_ok(buf, "auto", NULL);
  if (rq) {
    T_EQ_INT(rq->mcp_context->n_tools, 2);
    T_CHECK(strstr(attachment(rq->input->user_inputs->inputs[0]->user_query, "SYSTEM_PROMPT"),
                   "must call at least one") != NULL);
  }
  free_rq(rq);

  snprintf(buf, sizeof buf,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":{\"type\":"
           "\"function\",\"function\":{\"name\":\"b\"}},\"parallel_tool_calls\":false}",
           tools);
  rq = map_ok(buf, "auto", NULL);
  if (rq) {
    T_EQ_INT(rq->mcp_context->n_tools, 1);
    T_EQ_STR(rq->mcp_context->tools[0]->name, "b");
    T_CHECK(strstr(attachment(rq->input->user_inputs->inputs[0]->user_query, "SYSTEM_PROMPT"),
                   "\"b\"") != NULL);
    T_EQ_INT(rq->settings->supports_parallel_tool_calls, 0);
  }
  free_rq(rq);

  snprintf(buf, sizeof buf,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":{\"type\":"
           "\"function\",\"function\":{\"name\":\"zz\"}}}",
           tools);
  T_EQ_INT(map_err(buf, buf, sizeof buf), W2A_GWE_BAD_REQUEST);
  T_EQ_STR(buf, "tool_choice");
}

static void test_errors(void) {
  char p[128];
  T_EQ_INT(map_err("[1]", p, sizeof p), W2A_GWE_INVALID_JSON);
  T_EQ_INT(map_err("{\"messages\":[]}", p, sizeof p), W2A_GWE_BAD_REQUEST);
  T_EQ_STR(p, "messages");
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", p, sizeof p),
           W2A_GWE_BAD_REQUEST);
  T_EQ_STR(p, "messages[0].role");
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                   "\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}",
                   p, sizeof p),
           W2A_GWE_UNSUPPORTED);
  T_EQ_STR(p, "messages[0].content[0].image_url.url");
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
                   p, sizeof p),
           W2A_GWE_UNSUPPORTED);
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
                   "\"assistant\",\"content\":\"b\"}]}",
                   p, sizeof p),
           W2A_GWE_BAD_REQUEST);
  T_EQ_STR(p, "messages[1].role");
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"system\",\"content\":\"a\"}]}", p, sizeof p),
           W2A_GWE_BAD_REQUEST);
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
                   "\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\","
                   "\"arguments\":\"{bad\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c\","
                   "\"content\":\"r\"}]}",
                   p, sizeof p),
           W2A_GWE_BAD_REQUEST);
  T_EQ_STR(p, "messages[1].tool_calls[0].function.arguments");
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"tool\",\"content\":\"r\"}]}", p, sizeof p),
           W2A_GWE_BAD_REQUEST);
  T_EQ_STR(p, "messages[0].tool_call_id");
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                   "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"a\":{\"b\":{"
                   "\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":1}}}}}}}}}}}]}",
                   p, sizeof p),
           W2A_GWE_BAD_REQUEST);
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", p, sizeof p),
           W2A_GWE_UNSUPPORTED);
  T_EQ_INT(map_err("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                   "\"custom\"}]}",
                   p, sizeof p),
           W2A_GWE_UNSUPPORTED);
}

/* The two tool-result sides must use different field numbers on the wire: request-side
 * call_mcp_tool = 12 (tag 0x62), history-side = 16 (tag 0x82 0x01). */
static void test_wire_field_numbers(void) {
  json_object *root = json_tokener_parse(
      "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
      "\"tool_calls\":[{\"id\":\"c1\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
      "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"HISTRESULT\"},{\"role\":"
      "\"assistant\",\"tool_calls\":[{\"id\":\"c2\",\"function\":{\"name\":\"f\",\"arguments\":"
      "\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"INRESULT\"}]}");
  w2a_gw_chat c;
  w2a_gw_error e;
  w2a_buf out;
  const char *h, *in;
  w2a_buf_init(&out, 0);
  T_EQ_INT(w2a_gw_chat_parse(root, &c, &e), 0);
  T_EQ_INT(w2a_gw_map_request(&c, "auto", NULL, &out, NULL, &e), 0);
  h = memmem(out.data, out.len, "HISTRESULT", 10);
  in = memmem(out.data, out.len, "INRESULT", 8);
  T_CHECK(h && in);
  if (h && in) {
    /* ... tag(16) len { success(1) len { results(1) len { text(1) len { text(1) len "…" */
    const char *p16 = memmem(out.data, (size_t)(h - out.data), "\x82\x01", 2);
    const char *p12 = memmem(out.data, (size_t)(in - out.data), "\x62", 1);
    T_CHECK(p16 != NULL && h - p16 < 16);
    T_CHECK(p12 != NULL);
  }
  w2a_buf_free(&out);
  json_object_put(root);
}

static void test_max_bytes(void) {
  json_object *root =
      json_tokener_parse("{\"messages\":[{\"role\":\"user\",\"content\":\"0123456789\"}]}");
  w2a_gw_chat c;
  w2a_gw_error e;
  w2a_gw_map_opts o = {.max_bytes = 20};
  w2a_buf out;
  w2a_buf_init(&out, 0);
  w2a_gw_chat_parse(root, &c, &e);
  T_CHECK(w2a_gw_map_request(&c, "auto", &o, &out, NULL, &e) != 0);
  T_EQ_INT(e.kind, W2A_GWE_BODY_TOO_LARGE);
  w2a_buf_free(&out);
  json_object_put(root);
}

/* What a JSON parser lets through but a Request cannot carry: checked on the raw body. */
static int body_check(const char *body, size_t len, w2a_gw_error *e) {
  memset(e, 0, sizeof *e);
  return w2a_gw_body_check(body, len, e);
}
#define BODY(s) (s), sizeof(s) - 1

static void test_body_check(void) {
  w2a_gw_error e;
  T_EQ_INT(body_check(NULL, 0, &e), 0);
  T_EQ_INT(body_check(BODY("{\"content\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}"), &e), 0);
  /* not UTF-8: a stray byte, an overlong '/', an encoded surrogate, a cut sequence */
  T_EQ_INT(body_check(BODY("{\"a\":\"caf\xe9\"}"), &e), W2A_EINVAL);
  T_EQ_INT(e.kind, W2A_GWE_INVALID_JSON);
  T_EQ_STR(e.message, "the request body is not valid UTF-8 (at byte 9)");
  T_EQ_INT(body_check(BODY("\"\xc0\xaf\""), &e), W2A_EINVAL);
  T_EQ_STR(e.message, "the request body is not valid UTF-8 (at byte 1)");
  T_EQ_INT(body_check(BODY("\"\xed\xa0\x80\""), &e), W2A_EINVAL);
  T_EQ_INT(body_check(BODY("\"\xe2\x82"), &e), W2A_EINVAL);
  T_EQ_STR(e.message, "the request body is not valid UTF-8 (at byte 1)");
  /* \u0000 is an escape after an odd run of backslashes only */
  T_EQ_INT(body_check(BODY("{\"content\":\"a\\u0000b\"}"), &e), W2A_EINVAL);
  T_EQ_INT(e.kind, W2A_GWE_UNSUPPORTED);
  T_EQ_INT(w2a_gw_error_status(e.kind), 400);
  T_CHECK(strstr(e.message, "NUL character (\\u0000 at byte 13)") != NULL);
  T_EQ_INT(body_check(BODY("\"\\\\\\u0000\""), &e), W2A_EINVAL); /* \\ then \u0000 */
  T_EQ_INT(body_check(BODY("\"\\\\u0000\""), &e), 0);            /* \\ then text */
  T_EQ_INT(body_check(BODY("\"u0000 \\u0001\""), &e), 0);
  T_EQ_INT(body_check(BODY("u0000"), &e), 0);
  T_EQ_INT(body_check(BODY("\\u0000"), &e), W2A_EINVAL);
}

int main(void) {
  T_RUN(test_simple_user);
  T_RUN(test_system_and_developer);
  T_RUN(test_full_history);
  T_RUN(test_tool_result_history_field16);
  T_RUN(test_images);
  T_RUN(test_tools_schema_intact);
  T_RUN(test_tool_choice);
  T_RUN(test_errors);
  T_RUN(test_wire_field_numbers);
  T_RUN(test_max_bytes);
  T_RUN(test_body_check);
  return t_done();
}
