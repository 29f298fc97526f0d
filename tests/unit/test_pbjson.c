/* test_pbjson.c - the JSON<->protobuf transcoder and the schema registry on real bytes:
 * the captured Warp request must decode (query 你好呀, base claude-4-5-opus, no unknown
 * fields) and re-encode byte for byte both through JSON and through protobuf-c; every
 * captured response event decodes with no unknown fields and its JSON is stable; then
 * the feature rules one by one (names, int64, bytes, enums, oneofs, maps, WKTs, unknown
 * fields, options). Bad input lives in test_pbjson_bad.c. */
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "fixtures.h"
#include "google/protobuf/struct.pb-c.h"
#include "proto/pbjson.h"
#include "proto/registry.h"
#include "request.pb-c.h"
#include "response.pb-c.h"
#include "t.h"

#define REQ (&warp__multi_agent__v1__request__descriptor)
#define EVT (&warp__multi_agent__v1__response_event__descriptor)

/* bytes -> JSON (NUL-terminated, caller frees), or NULL with the error printed. */
static char *to_json(const ProtobufCMessageDescriptor *d, const void *p, size_t n,
                     const w2a_pbjson_opts *o) {
  w2a_buf b;
  w2a_err e = {0};
  w2a_buf_init(&b, 0);
  if (w2a_pbjson_to_json(d, p, n, o, &b, &e)) {
    fprintf(stderr, "to_json: %s\n", e.msg);
    w2a_buf_free(&b);
    return NULL;
  }
  return w2a_buf_steal(&b, NULL);
}

static char *from_json(const ProtobufCMessageDescriptor *d, const char *js, size_t *n) {
  w2a_buf b;
  w2a_err e = {0};
  w2a_buf_init(&b, 0);
  if (w2a_pbjson_from_json(d, js, strlen(js), NULL, &b, &e)) {
    fprintf(stderr, "from_json: %s\n", e.msg);
    w2a_buf_free(&b);
    return NULL;
  }
  return w2a_buf_steal(&b, n);
}

/* JSON -> bytes -> JSON must give `want` (or the input itself when want is NULL). */
static void roundtrip(const ProtobufCMessageDescriptor *d, const char *js, const char *want) {
  size_t n = 0;
  char *bin = from_json(d, js, &n);
  T_CHECK(bin != NULL);
  if (!bin) return;
  char *back = to_json(d, bin, n, NULL);
  T_EQ_STR(back, want ? want : js);
  free(back);
  free(bin);
}

static void test_registry(void) {
  T_CHECK(w2a_pb_find("warp.multi_agent.v1.Request") == REQ);
  T_CHECK(w2a_pb_find(".warp.multi_agent.v1.Request") == REQ);
  T_CHECK(w2a_pb_find("Request") == REQ);
  T_CHECK(w2a_pb_find("ResponseEvent") == EVT);
  T_CHECK(w2a_pb_find("Struct") == &google__protobuf__struct__descriptor);
  T_CHECK(w2a_pb_find("Request.Input.UserQuery") ==
          &warp__multi_agent__v1__request__input__user_query__descriptor);
  T_CHECK(w2a_pb_find("NoSuchMessage") == NULL);
  T_CHECK(w2a_pb_find("quest") == NULL); /* suffixes end on a dot boundary */
  const ProtobufCMessageDescriptor *d;
  w2a_err e = {0};
  T_EQ_INT(w2a_pb_lookup("UserQuery", &d, &e), W2A_EINVAL); /* Request.Input's and Message's */
  T_CHECK(strstr(e.msg, "ambiguous") != NULL);
  T_EQ_INT(w2a_pb_lookup("Nope", &d, &e), W2A_ENOTFOUND);
  T_CHECK(w2a_pb_find_enum("ToolType") != NULL);
  T_CHECK(w2a_pb_find_enum("google.protobuf.NullValue") ==
          &google__protobuf__null_value__descriptor);
  /* Iteration: sorted, complete (nested types too), every entry findable. */
  size_t n = w2a_pb_count();
  T_CHECK(n > 150);
  int sorted = 1, found = 1, nested = 0;
  for (size_t i = 0; i < n; i++) {
    if (i && strcmp(w2a_pb_at(i - 1)->name, w2a_pb_at(i)->name) >= 0) sorted = 0;
    if (w2a_pb_find(w2a_pb_at(i)->name) != w2a_pb_at(i)) found = 0;
    if (!strcmp(w2a_pb_at(i)->name,
                "warp.multi_agent.v1.Request.Input.QueryWithCannedResponse.Install"))
      nested = 1;
  }
  T_CHECK(sorted);
  T_CHECK(found);
  T_CHECK(nested);
  T_CHECK(w2a_pb_at(n) == NULL);
  T_CHECK(w2a_pb_is_map_entry(
      &warp__multi_agent__v1__request__input__user_query__referenced_attachments_entry__descriptor));
  T_CHECK(w2a_pb_is_map_entry(&google__protobuf__struct__fields_entry__descriptor));
  T_CHECK(!w2a_pb_is_map_entry(REQ));
}

static void test_capture_request(void) {
  size_t len = 0;
  char *bin = fx_read("turn1-request.bin", &len);
  T_CHECK(bin != NULL);
  if (!bin) return;
  T_EQ_INT(len, 300);
  T_EQ_INT(w2a_pbjson_validate(REQ, (uint8_t *)bin, len, NULL), 0);

  /* protobuf -> protobuf through protobuf-c alone */
  ProtobufCMessage *m = protobuf_c_message_unpack(REQ, NULL, len, (uint8_t *)bin);
  T_CHECK(m != NULL);
  if (m) {
    T_EQ_INT(w2a_pb_count_unknown(m), 0);
    uint8_t out[400];
    T_EQ_INT(protobuf_c_message_get_packed_size(m), len);
    size_t n = protobuf_c_message_pack(m, out);
    T_EQ_MEM(out, n, bin, len);
    Warp__MultiAgent__V1__Request *rq = (void *)m;
    T_EQ_STR(rq->settings->model_config->base, "claude-4-5-opus");
    protobuf_c_message_free_unpacked(m, NULL);
  }

  /* protobuf -> JSON -> protobuf */
  char *js = to_json(REQ, bin, len, NULL);
  T_CHECK(js != NULL);
  if (js) {
    T_CHECK(strstr(js, "\"query\":\"你好呀\"") != NULL);
    T_CHECK(strstr(js, "\"base\":\"claude-4-5-opus\"") != NULL);
    T_CHECK(strstr(js, "_unknown") == NULL);
    T_CHECK(strstr(js, "\"current_time\":\"2026-01-24T14:51:26.666634Z\"") != NULL);
    /* ToolType values 13-20 are unknown to the enum: kept as numbers */
    T_CHECK(strstr(js, "\"CALL_MCP_TOOL\",15,14,") != NULL);
    size_t n = 0;
    char *again = from_json(REQ, js, &n);
    T_CHECK(again != NULL);
    if (again) T_EQ_MEM(again, n, bin, len);
    free(again);

    /* pretty output parses back to the same bytes */
    w2a_pbjson_opts o = {.pretty = 1};
    char *pj = to_json(REQ, bin, len, &o);
    T_CHECK(pj && strstr(pj, "\n  \"input\": {\n"));
    again = pj ? from_json(REQ, pj, &n) : NULL;
    if (again) T_EQ_MEM(again, n, bin, len);
    free(again);
    free(pj);
  }
  free(js);

  /* the same through the convenience unpacker */
  w2a_err e = {0};
  m = w2a_pbjson_unpack(REQ, (uint8_t *)bin, len, &e);
  T_CHECK(m != NULL);
  if (m) protobuf_c_message_free_unpacked(m, NULL);
  free(bin);
}

/* Each data: line of the SSE capture: decode, no unknown fields, JSON is a fixed point.
 * (The bytes do not round-trip exactly: Warp's server writes oneof members after the
 * plain fields, e.g. Message id(1), task_id(11), agent_output(3), while protobuf-c and
 * protoc write in field-number order. The JSON equality is the meaningful check.) */
static void test_capture_events(void) {
  size_t len = 0;
  char *sse = fx_read("turn1-response.sse", &len);
  T_CHECK(sse != NULL);
  if (!sse) return;
  sse[len] = 0;
  int events = 0, finished = 0, text = 0;
  for (char *line = strtok(sse, "\n"); line; line = strtok(NULL, "\n")) {
    size_t ll = strlen(line);
    if (ll && line[ll - 1] == '\r') line[--ll] = 0;
    if (strncmp(line, "data:", 5)) continue;
    events++;
    unsigned char raw[8192];
    size_t bad;
    long n = w2a_b64_decode(line + 5, ll - 5, raw, &bad);
    T_CHECK(n > 0);
    if (n <= 0) continue;
    ProtobufCMessage *m = protobuf_c_message_unpack(EVT, NULL, (size_t)n, raw);
    T_CHECK(m != NULL);
    if (m) T_EQ_INT(w2a_pb_count_unknown(m), 0);
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    char *js = to_json(EVT, raw, (size_t)n, NULL);
    T_CHECK(js != NULL);
    if (!js) continue;
    if (strstr(js, "\"finished\":{\"done\":{}")) finished++;
    if (strstr(js, "\"mask\":\"agentOutput.text\"")) text++;
    T_CHECK(strstr(js, "_unknown") == NULL);
    roundtrip(EVT, js, NULL);
    free(js);
  }
  T_EQ_INT(events, 14);
  T_EQ_INT(finished, 1);
  T_EQ_INT(text, 4);
  free(sse);
}

static void test_names_and_scalars(void) {
  /* lowerCamelCase accepted on input, proto names printed */
  roundtrip(REQ, "{\"taskContext\":{\"activeTaskId\":\"t\"}}",
            "{\"task_context\":{\"active_task_id\":\"t\"}}");
  /* int64 printed as strings, accepted as numbers or strings */
  const ProtobufCMessageDescriptor *ts = &google__protobuf__timestamp__descriptor;
  (void)ts;
  const ProtobufCMessageDescriptor *tu = w2a_pb_find("StreamFinished.TokenUsage");
  T_CHECK(tu != NULL);
  if (tu) {
    roundtrip(tu,
              "{\"model_id\":\"m\",\"total_input\":4294967295,\"output\":0,\"cost_in_cents\":0.5}",
              "{\"model_id\":\"m\",\"total_input\":4294967295,\"cost_in_cents\":0.5}");
    roundtrip(tu, "{\"total_input\":\"7\",\"cost_in_cents\":1e2}",
              "{\"total_input\":7,\"cost_in_cents\":100}");
    roundtrip(tu, "{\"cost_in_cents\":\"NaN\"}", NULL);
    roundtrip(tu, "{\"cost_in_cents\":\"-Infinity\"}", NULL);
    roundtrip(tu, "{\"cost_in_cents\":0.1}", NULL); /* float printed shortest */
  }
  const ProtobufCMessageDescriptor *fg = w2a_pb_find("ToolCall.FileGlobV2");
  T_CHECK(fg != NULL);
  if (fg) {
    roundtrip(fg, "{\"max_matches\":-2147483648,\"max_depth\":2147483647,\"min_depth\":-1}", NULL);
    roundtrip(fg, "{\"max_matches\":5.0}", "{\"max_matches\":5}");
    roundtrip(fg, "{\"patterns\":[\"*.c\",\"ü/**\"],\"search_dir\":\"\"}",
              "{\"patterns\":[\"*.c\",\"ü/**\"]}");
  }
  /* Struct numbers are doubles; Timestamp int64 inside */
  roundtrip(&google__protobuf__value__descriptor, "1.5e+300", NULL);
  roundtrip(&google__protobuf__timestamp__descriptor, "{\"seconds\":\"-62135596801\"}",
            "{\"seconds\":\"-62135596801\"}");
  roundtrip(&google__protobuf__timestamp__descriptor, "{\"seconds\":1,\"nanos\":5}",
            "\"1970-01-01T00:00:01.000000005Z\"");
  /* doubles: integers take a fast path that must print what %.15g prints */
  const ProtobufCMessageDescriptor *val = &google__protobuf__value__descriptor;
  roundtrip(val, "[3,-0,0,123456789012345,1e+15,-999999999999999,0.5,1e-7,4503599627370497]",
            "[3,-0,0,123456789012345,1e+15,-999999999999999,0.5,1e-07,4503599627370497]");
  /* long strings cross the 8-byte scanning blocks: escapes and UTF-8 at every offset */
  roundtrip(REQ, "{\"metadata\":{\"conversation_id\":\"0123456789abcdef\\\"0123456789ü0123456é\"}}",
            NULL);
  roundtrip(REQ, "{\"metadata\":{\"conversation_id\":\"01234567\\n89abcdef\\t012345😀\"}}", NULL);
  /* strings: escapes and multi-byte UTF-8, \u escapes and surrogate pairs */
  roundtrip(REQ, "{\"metadata\":{\"conversation_id\":\"a\\\"b\\\\c\\n\\u0001 😀 ü\"}}", NULL);
  roundtrip(REQ, "{\"metadata\":{\"conversation_id\":\"\\ud83d\\ude00\\u00fc\\/\"}}",
            "{\"metadata\":{\"conversation_id\":\"😀ü/\"}}");
}

static void test_bytes_enums_oneofs(void) {
  const ProtobufCMessageDescriptor *img = w2a_pb_find("InputContext.Image");
  T_CHECK(img != NULL);
  if (img) {
    roundtrip(img, "{\"data\":\"AAEC/w==\",\"mime_type\":\"image/png\"}", NULL);
    roundtrip(img, "{\"data\":\"AAEC_w\"}", "{\"data\":\"AAEC/w==\"}"); /* url-safe, unpadded */
    roundtrip(img, "{\"data\":\"\"}", "{}");
  }
  /* enums: names, numbers, unknown numbers */
  const ProtobufCMessageDescriptor *st = w2a_pb_find("Request.Settings");
  roundtrip(st, "{\"supported_tools\":[\"GREP\",9,20,0]}",
            "{\"supported_tools\":[\"GREP\",\"CALL_MCP_TOOL\",20,\"RUN_SHELL_COMMAND\"]}");
  /* oneof members print even when empty, and an empty message is {} */
  roundtrip(w2a_pb_find("TaskStatus"), "{\"in_progress\":{}}", NULL);
  roundtrip(w2a_pb_find("Attachment"), "{\"plain_text\":\"\"}", NULL);
  roundtrip(w2a_pb_find("Request.Input.UserQuery"), "{\"query\":\"q\",\"attachments_bytes\":\"\"}",
            NULL);
  /* nested oneofs */
  roundtrip(
      REQ,
      "{\"input\":{\"user_inputs\":{\"inputs\":[{\"tool_call_result\":{\"tool_call_id\":\"c\","
      "\"call_mcp_tool\":{\"success\":{\"results\":[{\"text\":{\"text\":\"hi\"}},{\"image\":{"
      "\"data\":\"AQ==\",\"mime_type\":\"x\"}}]}}}}]}}}",
      NULL);
  /* maps are objects, in order */
  roundtrip(
      REQ,
      "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{\"query\":\"q\","
      "\"referenced_attachments\":{\"SYSTEM_PROMPT\":{\"plain_text\":\"be nice\"},\"b\":{}}}}]}}}",
      NULL);
}

static void test_wkt(void) {
  /* Struct/Value/ListValue: any JSON */
  roundtrip(w2a_pb_find("Request.MCPContext"),
            "{\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{"
            "\"a\":{\"type\":\"string\",\"enum\":[\"x\",1,true,null,[],{}]}},\"required\":[\"a\"],"
            "\"n\":-0.25}}]}",
            NULL);
  roundtrip(
      REQ,
      "{\"metadata\":{\"logging\":{\"a\":null,\"b\":false,\"c\":\"s\",\"d\":3,\"e\":[[1]],\"f\":{"
      "\"g\":{}}}}}",
      NULL);
  roundtrip(&google__protobuf__list_value__descriptor, "[1,\"a\",null]", NULL);
  roundtrip(&google__protobuf__struct__descriptor, "{}", NULL);
  roundtrip(&google__protobuf__value__descriptor, "null", NULL);
  roundtrip(w2a_pb_find("google.protobuf.Empty"), "{}", NULL);
  /* Timestamp: RFC 3339, offsets accepted and normalised to Z */
  const ProtobufCMessageDescriptor *ts = &google__protobuf__timestamp__descriptor;
  roundtrip(ts, "\"2026-01-14T08:15:00.123Z\"", NULL);
  roundtrip(ts, "\"2026-01-14T10:15:00.123+02:00\"", "\"2026-01-14T08:15:00.123Z\"");
  roundtrip(ts, "\"2026-01-14T08:15:00.1234-00:30\"", "\"2026-01-14T08:45:00.123400Z\"");
  roundtrip(ts, "\"1970-01-01T00:00:00Z\"", NULL); /* zero bytes, still a timestamp */
  roundtrip(ts, "\"0001-01-01T00:00:00Z\"", NULL);
  roundtrip(ts, "\"9999-12-31T23:59:59.999999999Z\"", NULL);
  roundtrip(ts, "\"1969-12-31T23:59:59.5Z\"", "\"1969-12-31T23:59:59.500Z\"");
  roundtrip(ts, "\"2024-02-29T00:00:00z\"", "\"2024-02-29T00:00:00Z\"");
  /* FieldMask: lowerCamel out, both in; paths that camelCase would lose stay as is */
  const ProtobufCMessageDescriptor *fm = &google__protobuf__field_mask__descriptor;
  roundtrip(fm, "\"agentOutput.text,server_message_data\"",
            "\"agentOutput.text,serverMessageData\"");
  roundtrip(fm, "\"agent_output.text\"", "\"agentOutput.text\"");
  roundtrip(fm, "\"flag_14\"", NULL);
  /* paths that the string form cannot carry print as an object */
  roundtrip(fm, "{\"paths\":[\"agent_outpEntryxt\"]}", NULL);
  roundtrip(fm, "{\"paths\":[\"a,b\"]}", NULL);
  roundtrip(fm, "{\"paths\":[\"\"]}", NULL);
  roundtrip(fm, "\",x,\"", NULL);
  roundtrip(fm, "\"\"", "\"\"");
  size_t n;
  char *b = from_json(fm, "\"agentOutput.text\"", &n);
  T_CHECK(b && n == 19 && !memcmp(b + 2, "agent_output.text", 17));
  free(b);
}

static void test_unknown_fields(void) {
  /* Settings with rules_enabled plus unknown 31 (string), 50 (varint), 60 (fixed32),
   * 61 (fixed64), and an unknown field inside model_config. */
  static const uint8_t raw[] = {0x0a, 0x05, 0x0a, 0x01, 'm',  0x38, 0x07, /* model_config */
                                0x10, 0x01, 0xfa, 0x01, 0x03, 'a',  'b',  'c', 0x90, 0x03,
                                0x85, 0x01, 0xe5, 0x03, 1,    2,    3,    4,   0xe9, 0x03,
                                1,    2,    3,    4,    5,    6,    7,    8};
  const ProtobufCMessageDescriptor *st = w2a_pb_find("Request.Settings");
  char *js = to_json(st, raw, sizeof raw, NULL);
  T_EQ_STR(js,
           "{\"model_config\":{\"base\":\"m\",\"_unknown\":[{\"field\":7,\"wire_type\":0,"
           "\"data\":\"Bw==\"}]},\"rules_enabled\":true,\"_unknown\":[{\"field\":31,"
           "\"wire_type\":2,\"data\":\"YWJj\"},{\"field\":50,\"wire_type\":0,\"data\":\"hQE=\"},"
           "{\"field\":60,\"wire_type\":5,\"data\":\"AQIDBA==\"},{\"field\":61,\"wire_type\":1,"
           "\"data\":\"AQIDBAUGBwg=\"}]}");
  size_t n = 0;
  char *bin = js ? from_json(st, js, &n) : NULL;
  T_CHECK(bin != NULL);
  if (bin) T_EQ_MEM(bin, n, raw, sizeof raw);
  ProtobufCMessage *m = protobuf_c_message_unpack(st, NULL, sizeof raw, raw);
  T_EQ_INT(w2a_pb_count_unknown(m), 5);
  protobuf_c_message_free_unpacked(m, NULL);
  w2a_pbjson_opts o = {.skip_unknown = 1};
  char *js2 = to_json(st, raw, sizeof raw, &o);
  T_EQ_STR(js2, "{\"model_config\":{\"base\":\"m\"},\"rules_enabled\":true}");
  free(js2);
  free(bin);
  free(js);
}

static void test_options_and_msg_api(void) {
  Warp__MultiAgent__V1__Request__Settings__ModelConfig mc =
      WARP__MULTI_AGENT__V1__REQUEST__SETTINGS__MODEL_CONFIG__INIT;
  mc.base = "auto";
  w2a_buf b;
  w2a_err e = {0};
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_pbjson_msg_to_json(&mc.pb_base, NULL, &b, &e), 0);
  T_EQ_STR(b.data, "{\"base\":\"auto\"}");
  w2a_buf_reset(&b);
  w2a_pbjson_opts o = {.emit_defaults = 1};
  T_EQ_INT(w2a_pbjson_msg_to_json(&mc.pb_base, &o, &b, &e), 0);
  T_EQ_STR(b.data, "{\"base\":\"auto\",\"planning\":\"\",\"coding\":\"\",\"cli_agent\":\"\","
                   "\"computer_use_agent\":\"\"}");
  /* output cap: fails cleanly and leaves the buffer as it was */
  w2a_buf small;
  w2a_buf_init(&small, 8);
  w2a_buf_puts(&small, "ab");
  T_EQ_INT(w2a_pbjson_msg_to_json(&mc.pb_base, NULL, &small, &e), W2A_ETOOBIG);
  T_EQ_STR(small.data, "ab");
  w2a_buf_free(&small);
  w2a_buf_free(&b);
  /* ignore_unknown_keys */
  w2a_buf_init(&b, 0);
  w2a_pbjson_opts o2 = {.ignore_unknown_keys = 1};
  const char *js = "{\"nope\":[1,{}],\"metadata\":{}}";
  T_EQ_INT(w2a_pbjson_from_json(REQ, js, strlen(js), &o2, &b, &e), 0);
  T_EQ_MEM(b.data, b.len, "\x22\x00", 2);
  w2a_buf_free(&b);
  /* a JSON text need not be NUL-terminated */
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_pbjson_from_json(REQ, "{\"metadata\":{}}XXXX", 15, NULL, &b, &e), 0);
  T_EQ_INT(b.len, 2);
  w2a_buf_free(&b);
}

/* w2a_pbjson_string_ok (vector blocks, words, or the full check) against the full check
 * alone: every length to 80, a NUL, a high byte, a valid and a broken UTF-8 sequence at
 * every offset. */
static void test_string_ok(void) {
  static const char *ins[] = {"\x00", "\x80", "\xff", "\xc3\xa9", "\xe2\x82\xac", "\xc3",
                              "\xed\xa0\x80", "\x7f"};
  static const size_t ins_n[] = {1, 1, 1, 2, 3, 1, 3, 1};
  uint8_t b[96];
  size_t bad = 0;
  for (size_t n = 0; n <= 80; n++) {
    for (size_t i = 0; i < n; i++)
      b[i] = (uint8_t)('a' + (i * 5 + n) % 26);
    bad += w2a_pbjson_string_ok(b, n) != w2a_pbjson_string_check(b, n);
    bad += !w2a_pbjson_string_ok(b, n);
    for (size_t k = 0; k < sizeof ins / sizeof *ins; k++)
      for (size_t at = 0; at + ins_n[k] <= n; at++) {
        uint8_t c[96];
        memcpy(c, b, n);
        memcpy(c + at, ins[k], ins_n[k]);
        bad += w2a_pbjson_string_ok(c, n) != w2a_pbjson_string_check(c, n);
      }
  }
  T_EQ_INT((int)bad, 0);
  const char *fr = "caf\xc3\xa9 au lait, s'il vous pla\xc3\xaet";
  T_CHECK(w2a_pbjson_string_ok((const uint8_t *)fr, strlen(fr)));
  T_CHECK(!w2a_pbjson_string_ok((const uint8_t *)fr, strlen(fr) - 2)); /* cut inside a sequence */
  T_CHECK(!w2a_pbjson_string_ok((const uint8_t *)"0123456789abcdef\x00", 17));
}

int main(void) {
  T_RUN(test_string_ok);
  T_RUN(test_registry);
  T_RUN(test_capture_request);
  T_RUN(test_capture_events);
  T_RUN(test_names_and_scalars);
  T_RUN(test_bytes_enums_oneofs);
  T_RUN(test_wkt);
  T_RUN(test_unknown_fields);
  T_RUN(test_options_and_msg_api);
  return t_done();
}
