/* test_gw_map_response.c - the response state machine: chunks, tool-call indexes and
 * unwrapping, finish reasons, usage (reported and estimated), error chunks, and the
 * non-streaming chat.completion. Output is parsed back with json-c, not string-matched,
 * except where the exact SSE framing is the point. */
#include <json.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "gateway/map_response.h"
#include "t.h"

static w2a_gw_event text(const char *s) {
  w2a_gw_event e = {.kind = W2A_GW_EV_TEXT, .text = s, .len = strlen(s)};
  return e;
}
static w2a_gw_event reasoning(const char *s) {
  w2a_gw_event e = {.kind = W2A_GW_EV_REASONING, .text = s, .len = strlen(s)};
  return e;
}
static w2a_gw_event tool(const char *id, const char *name, const char *args) {
  w2a_gw_event e = {.kind = W2A_GW_EV_TOOL_CALL, .call_id = id, .name = name, .args_json = args};
  return e;
}
static w2a_gw_event fin(w2a_gw_finish f) {
  w2a_gw_event e = {.kind = W2A_GW_EV_FINISH, .finish = f};
  return e;
}

/* Split SSE output into parsed chunk objects (json array); [DONE] → the string "DONE". */
static json_object *chunks(const w2a_buf *b) {
  json_object *arr = json_object_new_array();
  const char *p = b->data, *end = b->data + b->len;
  while (p && p < end) {
    const char *nl = strstr(p, "\n\n");
    if (!nl) break;
    if (!strncmp(p, "data: [DONE]", 12))
      json_object_array_add(arr, json_object_new_string("DONE"));
    else if (!strncmp(p, "data: ", 6)) {
      char *s = strndup(p + 6, (size_t)(nl - p - 6));
      json_object *o = json_tokener_parse(s);
      T_CHECK(o != NULL);
      json_object_array_add(arr, o ? o : json_object_new_string("BAD"));
      free(s);
    } else if (*p == ':') {
      json_object_array_add(arr, json_object_new_string("COMMENT"));
    }
    p = nl + 2;
  }
  return arr;
}

static const char *path_str(json_object *o, const char *path) {
  /* dotted path with numeric components for arrays */
  char buf[256], *save, *tok;
  snprintf(buf, sizeof buf, "%s", path);
  for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
    if (json_object_is_type(o, json_type_array))
      o = json_object_array_get_idx(o, atoi(tok));
    else if (!json_object_object_get_ex(o, tok, &o))
      return NULL;
  }
  if (!o) return NULL;
  return json_object_get_string(o);
}

static void test_stream_text(void) {
  w2a_gw_resp r;
  w2a_buf out;
  w2a_gw_event ev;
  json_object *c;
  w2a_buf_init(&out, 0);
  w2a_gw_resp_init(&r, "claude-4-sonnet", 1700000000, 1, 1, 10, 0);
  ev = text("Hel");
  T_EQ_INT(w2a_gw_resp_feed(&r, &ev, &out), 0);
  ev = text("lo ");
  T_EQ_INT(w2a_gw_resp_feed(&r, &ev, &out), 0);
  ev = fin(W2A_GW_FIN_DONE);
  T_EQ_INT(w2a_gw_resp_feed(&r, &ev, &out), 0);
  T_EQ_INT(w2a_gw_resp_stream_end(&r, &out), 0);
  c = chunks(&out);
  T_EQ_INT(json_object_array_length(c), 5);
  T_EQ_STR(path_str(c, "0.object"), "chat.completion.chunk");
  T_EQ_STR(path_str(c, "0.model"), "claude-4-sonnet");
  T_EQ_STR(path_str(c, "0.choices.0.delta.role"), "assistant");
  T_EQ_STR(path_str(c, "0.choices.0.delta.content"), "Hel");
  T_CHECK(path_str(c, "1.choices.0.delta.role") == NULL);
  T_EQ_STR(path_str(c, "1.choices.0.delta.content"), "lo ");
  T_EQ_STR(path_str(c, "2.choices.0.finish_reason"), "stop");
  T_EQ_STR(path_str(c, "3.usage.prompt_tokens"), "10");
  T_EQ_STR(path_str(c, "3.usage.completion_tokens"), "2"); /* 6 ascii chars → 2 */
  T_EQ_STR(path_str(c, "3.usage.estimated"), "true");
  T_EQ_INT(
      json_object_array_length(json_object_object_get(json_object_array_get_idx(c, 3), "choices")),
      0);
  T_EQ_STR(path_str(c, "4"), "DONE");
  T_EQ_STR(path_str(c, "0.id"), r.id);
  T_CHECK(!strncmp(r.id, "chatcmpl-", 9));
  json_object_put(c);
  w2a_gw_resp_free(&r);
  w2a_buf_free(&out);
}

static void test_stream_reasoning_and_tools(void) {
  w2a_gw_resp r;
  w2a_buf out;
  w2a_gw_event ev;
  json_object *c;
  w2a_buf_init(&out, 0);
  w2a_gw_resp_init(&r, "m", 1, 1, 0, 0, 0);
  ev = reasoning("thinking");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = tool("toolu_1", "get_weather", "{\"city\":\"Paris\"}");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = tool("toolu_2", "call_mcp_tool", "{\"name\":\"get_time\",\"args\":{\"tz\":\"UTC\"}}");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = tool("", "x", NULL);
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = fin(W2A_GW_FIN_DONE);
  w2a_gw_resp_feed(&r, &ev, &out);
  w2a_gw_resp_stream_end(&r, &out);
  c = chunks(&out);
  T_EQ_INT(json_object_array_length(c), 6); /* no usage chunk: not asked */
  T_EQ_STR(path_str(c, "0.choices.0.delta.reasoning_content"), "thinking");
  T_EQ_STR(path_str(c, "0.choices.0.delta.role"), "assistant");
  T_EQ_STR(path_str(c, "1.choices.0.delta.tool_calls.0.index"), "0");
  T_EQ_STR(path_str(c, "1.choices.0.delta.tool_calls.0.id"), "toolu_1");
  T_EQ_STR(path_str(c, "1.choices.0.delta.tool_calls.0.type"), "function");
  T_EQ_STR(path_str(c, "1.choices.0.delta.tool_calls.0.function.name"), "get_weather");
  T_EQ_STR(path_str(c, "1.choices.0.delta.tool_calls.0.function.arguments"),
           "{\"city\":\"Paris\"}");
  T_EQ_STR(path_str(c, "2.choices.0.delta.tool_calls.0.index"), "1");
  T_EQ_STR(path_str(c, "2.choices.0.delta.tool_calls.0.function.name"), "get_time");
  T_EQ_STR(path_str(c, "2.choices.0.delta.tool_calls.0.function.arguments"), "{\"tz\":\"UTC\"}");
  T_EQ_STR(path_str(c, "3.choices.0.delta.tool_calls.0.index"), "2");
  T_CHECK(!strncmp(path_str(c, "3.choices.0.delta.tool_calls.0.id"), "call_", 5));
  T_EQ_STR(path_str(c, "3.choices.0.delta.tool_calls.0.function.arguments"), "{}");
  T_EQ_STR(path_str(c, "4.choices.0.finish_reason"), "tool_calls");
  T_EQ_STR(path_str(c, "5"), "DONE");
  json_object_put(c);
  w2a_gw_resp_free(&r);
  w2a_buf_free(&out);
}

static void test_finish_reasons(void) {
  static const struct {
    w2a_gw_finish f;
    const char *want;
  } cases[] = {{W2A_GW_FIN_DONE, "stop"},
               {W2A_GW_FIN_MAX_TOKENS, "length"},
               {W2A_GW_FIN_CONTEXT_WINDOW, "length"},
               {W2A_GW_FIN_OTHER, "stop"}};
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    w2a_gw_resp r;
    w2a_buf out;
    w2a_gw_event ev = text("x");
    w2a_buf_init(&out, 0);
    w2a_gw_resp_init(&r, "m", 1, 0, 0, 0, 0);
    w2a_gw_resp_feed(&r, &ev, &out);
    ev = fin(cases[i].f);
    T_EQ_INT(w2a_gw_resp_feed(&r, &ev, &out), 0);
    T_EQ_STR(r.finish_reason, cases[i].want);
    w2a_gw_resp_free(&r);
    w2a_buf_free(&out);
  }
  T_CHECK(w2a_gw_finish_is_error(W2A_GW_FIN_QUOTA));
  T_CHECK(w2a_gw_finish_is_error(W2A_GW_FIN_LLM_UNAVAILABLE));
  T_CHECK(w2a_gw_finish_is_error(W2A_GW_FIN_INTERNAL_ERROR));
  T_CHECK(w2a_gw_finish_is_error(W2A_GW_FIN_NONE));
  T_CHECK(!w2a_gw_finish_is_error(W2A_GW_FIN_MAX_TOKENS));
  T_EQ_STR(w2a_gw_finish_name(W2A_GW_FIN_QUOTA), "quota_limit");
  {
    w2a_gw_resp r;
    w2a_buf out;
    w2a_gw_event ev = fin(W2A_GW_FIN_QUOTA);
    w2a_buf_init(&out, 0);
    w2a_gw_resp_init(&r, "m", 1, 1, 0, 0, 0);
    T_EQ_INT(w2a_gw_resp_feed(&r, &ev, &out), W2A_ESTATE);
    T_EQ_INT(out.len, 0);
    w2a_gw_resp_free(&r);
    w2a_buf_free(&out);
  }
}

static void test_nonstream_completion(void) {
  w2a_gw_resp r;
  w2a_buf out;
  w2a_gw_event ev;
  json_object *o;
  w2a_buf_init(&out, 0);
  w2a_gw_resp_init(&r, "gpt-5", 42, 0, 0, 7, 0);
  ev = reasoning("hmm");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = text("你好");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = text("!");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = tool("t1", "f", "{\"a\":1}");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = fin(W2A_GW_FIN_DONE);
  ev.has_usage = 1, ev.prompt_tokens = 100, ev.completion_tokens = 20, ev.cached_tokens = 5;
  w2a_gw_resp_feed(&r, &ev, &out);
  T_EQ_INT(out.len, 0); /* nothing written until the end */
  T_EQ_INT(w2a_gw_resp_completion(&r, &out), 0);
  o = json_tokener_parse(out.data);
  T_CHECK(o != NULL);
  T_EQ_STR(path_str(o, "object"), "chat.completion");
  T_EQ_STR(path_str(o, "created"), "42");
  T_EQ_STR(path_str(o, "choices.0.message.role"), "assistant");
  T_EQ_STR(path_str(o, "choices.0.message.content"), "你好!");
  T_EQ_STR(path_str(o, "choices.0.message.reasoning_content"), "hmm");
  T_EQ_STR(path_str(o, "choices.0.message.tool_calls.0.id"), "t1");
  T_EQ_STR(path_str(o, "choices.0.message.tool_calls.0.function.arguments"), "{\"a\":1}");
  T_CHECK(path_str(o, "choices.0.message.tool_calls.0.index") == NULL);
  T_EQ_STR(path_str(o, "choices.0.finish_reason"), "tool_calls");
  T_EQ_STR(path_str(o, "usage.prompt_tokens"), "100");
  T_EQ_STR(path_str(o, "usage.completion_tokens"), "20");
  T_EQ_STR(path_str(o, "usage.total_tokens"), "120");
  T_EQ_STR(path_str(o, "usage.prompt_tokens_details.cached_tokens"), "5");
  T_EQ_STR(path_str(o, "usage.estimated"), "false");
  json_object_put(o);
  w2a_gw_resp_free(&r);
  w2a_buf_free(&out);
}

static void test_nonstream_tool_only_content_null(void) {
  w2a_gw_resp r;
  w2a_buf out;
  w2a_gw_event ev = tool("a", "f", "{}");
  json_object *o, *content;
  w2a_buf_init(&out, 0);
  w2a_gw_resp_init(&r, "m", 1, 0, 0, 0, 0);
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = tool("b", "g", "{}");
  w2a_gw_resp_feed(&r, &ev, &out);
  ev = fin(W2A_GW_FIN_DONE);
  w2a_gw_resp_feed(&r, &ev, &out);
  w2a_gw_resp_completion(&r, &out);
  o = json_tokener_parse(out.data);
  T_CHECK(json_object_object_get_ex(
              json_object_object_get(
                  json_object_array_get_idx(json_object_object_get(o, "choices"), 0), "message"),
              "content", &content) &&
          content == NULL);
  T_EQ_STR(path_str(o, "choices.0.message.tool_calls.1.id"), "b");
  json_object_put(o);
  w2a_gw_resp_free(&r);
  w2a_buf_free(&out);
}

static void test_error_chunk(void) {
  w2a_gw_resp r;
  w2a_buf out;
  w2a_gw_event ev = text("partial");
  w2a_gw_error e;
  json_object *c;
  w2a_buf_init(&out, 0);
  w2a_gw_resp_init(&r, "m", 1, 1, 0, 0, 0);
  w2a_gw_resp_feed(&r, &ev, &out);
  w2a_gw_errorf(&e, W2A_GWE_TIMEOUT_IDLE, NULL, "upstream idle for 120 s");
  T_EQ_INT(w2a_gw_resp_stream_error(&r, &e, &out), 0);
  c = chunks(&out);
  T_EQ_INT(json_object_array_length(c), 3);
  T_EQ_STR(path_str(c, "1.error.code"), "idle_timeout");
  T_EQ_STR(path_str(c, "1.error.type"), "timeout_error");
  T_EQ_STR(path_str(c, "1.error.message"), "upstream idle for 120 s");
  T_EQ_STR(path_str(c, "2"), "DONE");
  json_object_put(c);
  w2a_buf_reset(&out);
  T_EQ_INT(w2a_gw_resp_keepalive(&out), 0);
  T_EQ_STR(out.data, ": keep-alive\n\n");
  w2a_gw_resp_free(&r);
  w2a_buf_free(&out);
}

static void test_stream_end_without_content(void) {
  /* An answer with no content still gets a role and a finish chunk. */
  w2a_gw_resp r;
  w2a_buf out;
  w2a_gw_event ev = fin(W2A_GW_FIN_DONE);
  json_object *c;
  w2a_buf_init(&out, 0);
  w2a_gw_resp_init(&r, "m", 1, 1, 0, 0, 0);
  w2a_gw_resp_feed(&r, &ev, &out);
  w2a_gw_resp_stream_end(&r, &out);
  c = chunks(&out);
  T_EQ_STR(path_str(c, "0.choices.0.delta.role"), "assistant");
  T_EQ_STR(path_str(c, "0.choices.0.finish_reason"), "stop");
  json_object_put(c);
  w2a_gw_resp_free(&r);
  w2a_buf_free(&out);
}

static void test_caps_and_estimate(void) {
  w2a_gw_resp r;
  w2a_buf out;
  w2a_gw_event ev = text("0123456789");
  w2a_buf_init(&out, 0);
  w2a_gw_resp_init(&r, "m", 1, 0, 0, 0, 16);
  T_EQ_INT(w2a_gw_resp_feed(&r, &ev, &out), 0);
  T_EQ_INT(w2a_gw_resp_feed(&r, &ev, &out), W2A_ETOOBIG);
  w2a_gw_resp_free(&r);
  w2a_buf_free(&out);
  T_EQ_INT(w2a_gw_estimate_tokens("", 0), 0);
  T_EQ_INT(w2a_gw_estimate_tokens("abcd", 4), 1);
  T_EQ_INT(w2a_gw_estimate_tokens("abcde", 5), 2);
  T_EQ_INT(w2a_gw_estimate_tokens("你好", strlen("你好")), 2);
}

/* The one-reservation chunk writer against the exact bytes the append path writes: every
 * byte value (escapes, controls, UTF-8 bytes), role on the first chunk only, and a
 * capped output buffer (too small for the worst case) that must fail as before. */
static void test_stream_exact_bytes(void) {
  char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (char)(255 - i);
  w2a_gw_resp r;
  w2a_gw_resp_init(&r, "m\"x", 7, 1, 0, 0, 0);
  w2a_buf out, want;
  w2a_buf_init(&out, 0);
  w2a_buf_init(&want, 0);
  for (int k = 0; k < 3; k++) {
    w2a_gw_event e = {.kind = k == 1 ? W2A_GW_EV_REASONING : W2A_GW_EV_TEXT,
                      .text = all,
                      .len = k == 2 ? 5 : sizeof all};
    w2a_buf_reset(&out);
    T_EQ_INT(w2a_gw_resp_feed(&r, &e, &out), 0);
    w2a_buf_reset(&want);
    w2a_buf_printf(&want,
                   "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":7,"
                   "\"model\":\"m\\\"x\",\"choices\":[{\"index\":0,\"delta\":{%s\"%s\":",
                   r.id, k ? "" : "\"role\":\"assistant\",",
                   k == 1 ? "reasoning_content" : "content");
    w2a_buf_put_json_str(&want, all, e.len);
    w2a_buf_puts(&want, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    T_EQ_STR(out.data, want.data);
    T_EQ_INT(out.len, want.len);
  }
  w2a_buf capped;
  w2a_buf_init(&capped, 400);
  w2a_gw_event e = {.kind = W2A_GW_EV_TEXT, .text = all, .len = 40};
  T_EQ_INT(w2a_gw_resp_feed(&r, &e, &capped), 0); /* fits, though 6 x 40 would not */
  e.len = sizeof all;
  T_EQ_INT(w2a_gw_resp_feed(&r, &e, &capped), W2A_ETOOBIG);
  w2a_buf_free(&capped);
  w2a_buf_free(&out);
  w2a_buf_free(&want);
  w2a_gw_resp_free(&r);
}

/* The estimate of streamed output (counted eight bytes at a time where it can) equals
 * w2a_gw_estimate_tokens over the whole text, whatever the fragment lengths. */
static void test_stream_estimate(void) {
  static const char text[] = "plain ascii words, then h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 and "
                             "0123456789abcdef more \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9 end";
  size_t n = sizeof text - 1;
  for (size_t step = 1; step <= 19; step++) {
    w2a_gw_resp r;
    w2a_buf out;
    w2a_buf_init(&out, 0);
    w2a_gw_resp_init(&r, "m", 1, 1, 0, 0, 0);
    for (size_t at = 0; at < n; at += step) {
      w2a_gw_event e = {
          .kind = W2A_GW_EV_TEXT, .text = text + at, .len = n - at < step ? n - at : step};
      T_EQ_INT(w2a_gw_resp_feed(&r, &e, &out), 0);
    }
    uint64_t p, c;
    int est;
    w2a_gw_resp_usage(&r, &p, &c, &est);
    T_EQ_INT(c, w2a_gw_estimate_tokens(text, n));
    w2a_buf_free(&out);
    w2a_gw_resp_free(&r);
  }
}

int main(void) {
  T_RUN(test_stream_text);
  T_RUN(test_stream_estimate);
  T_RUN(test_stream_exact_bytes);
  T_RUN(test_stream_reasoning_and_tools);
  T_RUN(test_finish_reasons);
  T_RUN(test_nonstream_completion);
  T_RUN(test_nonstream_tool_only_content_null);
  T_RUN(test_error_chunk);
  T_RUN(test_stream_end_without_content);
  T_RUN(test_caps_and_estimate);
  return t_done();
}
