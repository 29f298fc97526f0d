/* test_gw_errors.c - the error table (kind → status, type, code), the OpenAI body, the
 * HTTP server's error hook, and the upstream event conversion (events.h → gateway). */
#include <json.h>
#include <string.h>

#include "gateway/errors.h"
#include "gateway/map_response.h"
#include "gateway/upstream.h"
#include "proto/events.h"
#include "t.h"

static void test_table(void) {
  static const struct {
    w2a_gw_errkind k;
    int status;
    const char *type, *code;
  } want[] = {
      {W2A_GWE_BAD_REQUEST, 400, "invalid_request_error", "invalid_request"},
      {W2A_GWE_UNAUTHORIZED, 401, "authentication_error", "invalid_api_key"},
      {W2A_GWE_MODEL_NOT_FOUND, 404, "invalid_request_error", "model_not_found"},
      {W2A_GWE_BODY_TOO_LARGE, 413, "invalid_request_error", "request_too_large"},
      {W2A_GWE_HEADER_TOO_LARGE, 431, "invalid_request_error", "headers_too_large"},
      {W2A_GWE_NO_ACCOUNT, 429, "rate_limit_error", "accounts_exhausted"},
      {W2A_GWE_POOL_EMPTY, 503, "server_error", "no_accounts"},
      {W2A_GWE_TIMEOUT_FIRST, 504, "timeout_error", "first_event_timeout"},
      {W2A_GWE_TIMEOUT_IDLE, 504, "timeout_error", "idle_timeout"},
      {W2A_GWE_TIMEOUT_TOTAL, 504, "timeout_error", "total_timeout"},
      {W2A_GWE_TIMEOUT_CONNECT, 504, "timeout_error", "connect_timeout"},
      {W2A_GWE_CONNECT, 502, "api_error", "upstream_connect_failed"},
  };
  size_t i;
  int k;
  for (i = 0; i < sizeof want / sizeof want[0]; i++) {
    T_EQ_INT(w2a_gw_error_status(want[i].k), want[i].status);
    T_EQ_STR(w2a_gw_error_type(want[i].k), want[i].type);
    T_EQ_STR(w2a_gw_error_code(want[i].k), want[i].code);
  }
  /* every kind has a status, a type and a code */
  for (k = W2A_GWE_NONE + 1; k < W2A_GWE__COUNT; k++) {
    T_CHECK(w2a_gw_error_status(k) >= 400);
    T_CHECK(w2a_gw_error_type(k)[0] != 0);
    T_CHECK(w2a_gw_error_code(k) != NULL);
  }
  T_EQ_INT(w2a_gw_error_status(W2A_GWE__COUNT), 500);
}

static void test_body(void) {
  w2a_gw_error e;
  w2a_buf b;
  json_object *o, *v, *root;
  char out[512];
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_gw_errorf(&e, W2A_GWE_UNSUPPORTED, "messages[0].content", "bad \"%s\"\n", "x"), -1);
  T_EQ_INT(w2a_gw_error_json(&b, &e), 0);
  root = json_tokener_parse(b.data);
  T_CHECK(root != NULL);
  T_CHECK(json_object_object_get_ex(root, "error", &o));
  T_EQ_STR(json_object_get_string(json_object_object_get(o, "message")), "bad \"x\"\n");
  T_EQ_STR(json_object_get_string(json_object_object_get(o, "param")), "messages[0].content");
  T_EQ_STR(json_object_get_string(json_object_object_get(o, "code")), "unsupported_content");
  json_object_put(root);
  w2a_buf_reset(&b);
  w2a_gw_errorf(&e, W2A_GWE_INTERNAL, NULL, "x");
  w2a_gw_error_json(&b, &e);
  o = json_tokener_parse(b.data);
  T_CHECK(json_object_object_get_ex(json_object_object_get(o, "error"), "param", &v) && v == NULL);
  json_object_put(o);
  w2a_buf_free(&b);
  /* the HTTP server's hook */
  T_CHECK(w2a_gw_error_server_body(413, "body too large", out, sizeof out) > 0);
  T_CHECK(strstr(out, "request_too_large") != NULL);
  T_CHECK(w2a_gw_error_server_body(431, NULL, out, sizeof out) > 0);
  T_CHECK(strstr(out, "headers_too_large") != NULL);
  T_EQ_INT(w2a_gw_error_server_body(400, "m", out, 8), 0); /* too small: empty, terminated */
  T_EQ_STR(out, "");
}

static void test_convert(void) {
  w2a_ev in;
  w2a_gw_event out;
  Warp__MultiAgent__V1__ResponseEvent__StreamFinished__TokenUsage u1 =
      WARP__MULTI_AGENT__V1__RESPONSE_EVENT__STREAM_FINISHED__TOKEN_USAGE__INIT;
  Warp__MultiAgent__V1__ResponseEvent__StreamFinished__TokenUsage *us[1] = {&u1};
  memset(&in, 0, sizeof in);
  in.kind = W2A_EV_INIT;
  T_EQ_INT(w2a_gw_up_convert(&in, &out), 0);
  in.kind = W2A_EV_TEXT, in.text = "ab", in.len = 2;
  T_EQ_INT(w2a_gw_up_convert(&in, &out), 1);
  T_EQ_INT(out.kind, W2A_GW_EV_TEXT);
  T_EQ_INT(out.len, 2);
  in.kind = W2A_EV_TOOL_CALL, in.tool_call_id = "t", in.name = "f", in.args_json = "{}";
  w2a_gw_up_convert(&in, &out);
  T_EQ_STR(out.call_id, "t");
  T_EQ_STR(out.args_json, "{}");
  in.kind = W2A_EV_FINISHED;
  in.reason = W2A_FINISH_QUOTA;
  w2a_gw_up_convert(&in, &out);
  T_EQ_INT(out.finish, W2A_GW_FIN_QUOTA);
  T_EQ_INT(out.has_usage, 0);
  in.reason = W2A_FINISH_CONTEXT_EXCEEDED;
  u1.input_cache_read = 7;
  in.usage = us, in.n_usage = 1, in.input_tokens = 10, in.output_tokens = 3;
  w2a_gw_up_convert(&in, &out);
  T_EQ_INT(out.finish, W2A_GW_FIN_CONTEXT_WINDOW);
  T_EQ_INT(out.has_usage, 1);
  T_EQ_INT(out.prompt_tokens, 10);
  T_EQ_INT(out.completion_tokens, 3);
  T_EQ_INT(out.cached_tokens, 7);
  in.reason = W2A_FINISH_UNSPECIFIED;
  w2a_gw_up_convert(&in, &out);
  T_EQ_INT(out.finish, W2A_GW_FIN_OTHER);
}

int main(void) {
  T_RUN(test_table);
  T_RUN(test_body);
  T_RUN(test_convert);
  return t_done();
}
