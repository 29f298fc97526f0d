/* test_pbjson_bad.c - the transcoder on bad input: every prefix of the real request,
 * wrong wire types, invalid UTF-8, groups, bad lengths (errors name the byte offset);
 * malformed JSON, wrong JSON types, unknown names, overflow, bad base64, nesting caps
 * (errors name the JSON path). Plus a mutation sweep checking that the validator is at
 * least as strict as protobuf-c: whenever it accepts, protobuf_c_message_unpack must. */
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "proto/pbjson.h"
#include "proto/registry.h"
#include "request.pb-c.h"
#include "response.pb-c.h"
#include "t.h"

#define REQ (&warp__multi_agent__v1__request__descriptor)

/* Decode and expect failure with `want` in the message. */
static void pb_bad(const ProtobufCMessageDescriptor *d, const void *p, size_t n, const char *want) {
  w2a_buf b;
  w2a_err e = {0};
  w2a_buf_init(&b, 0);
  int rc = w2a_pbjson_to_json(d, p, n, NULL, &b, &e);
  T_CHECK(rc != 0);
  if (rc && !strstr(e.msg, want)) {
    fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", e.msg, want);
    t_fail++;
  }
  T_EQ_INT(b.len, 0);
  w2a_buf_free(&b);
}

static void js_bad_o(const ProtobufCMessageDescriptor *d, const char *js, const char *want,
                     const w2a_pbjson_opts *o) {
  w2a_buf b;
  w2a_err e = {0};
  w2a_buf_init(&b, 0);
  int rc = w2a_pbjson_from_json(d, js, strlen(js), o, &b, &e);
  T_CHECK(rc != 0);
  if (rc && strcmp(e.msg, want)) {
    fprintf(stderr, "  error \"%s\"\n     want \"%s\"\n", e.msg, want);
    t_fail++;
  }
  w2a_buf_free(&b);
}

static void js_bad(const ProtobufCMessageDescriptor *d, const char *js, const char *want) {
  js_bad_o(d, js, want, NULL);
}

static void test_prefixes(void) {
  size_t len = 0;
  char *bin = fx_read("turn1-request.bin", &len);
  T_CHECK(bin != NULL);
  if (!bin) return;
  int ok = 0, bad = 0, named = 1;
  for (size_t n = 0; n < len; n++) {
    /* a heap copy of exactly n bytes, so ASan sees any read past the end */
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, bin, n);
    w2a_buf b;
    w2a_err e = {0};
    w2a_buf_init(&b, 0);
    int rc = w2a_pbjson_to_json(REQ, p, n, NULL, &b, &e);
    if (rc == 0) {
      ok++;
      /* a prefix that decodes is a valid message: it re-encodes to itself */
      w2a_buf bb;
      w2a_buf_init(&bb, 0);
      T_EQ_INT(w2a_pbjson_from_json(REQ, b.data, b.len, NULL, &bb, &e), 0);
      T_EQ_MEM(bb.data, bb.len, p, n);
      w2a_buf_free(&bb);
    } else {
      bad++;
      if (rc != W2A_EINVAL || strncmp(e.msg, "byte ", 5)) named = 0;
      /* protobuf-c must agree that this prefix is broken */
      ProtobufCMessage *m = protobuf_c_message_unpack(REQ, NULL, n, p);
      T_CHECK(m == NULL);
      if (m) protobuf_c_message_free_unpacked(m, NULL);
    }
    w2a_buf_free(&b);
    free(p);
  }
  T_CHECK(ok > 0); /* the prefixes ending between top-level fields */
  T_CHECK(bad > 250);
  T_CHECK(named);
  free(bin);
}

static void test_wire_errors(void) {
  /* Request.task_context (a message) sent as a varint */
  pb_bad(REQ, "\x08\x01", 2,
         "byte 0: wire type 0 (varint) does not fit a field of type message (field task_context)");
  /* invalid UTF-8 inside metadata.conversation_id: offset of the bad byte */
  pb_bad(REQ, "\x22\x04\x0a\x02\xc3\x28", 6,
         "byte 4: invalid UTF-8 in string (field metadata.conversation_id)");
  pb_bad(REQ, "\x22\x04\x0a\x02\xed\xa0", 6, "byte 4: invalid UTF-8");     /* surrogate */
  pb_bad(REQ, "\x22\x05\x0a\x03\xe0\x80\x80", 7, "byte 4: invalid UTF-8"); /* overlong */
  pb_bad(REQ, "\x22\x04\x0a\x02\x61\x00", 6, "byte 5: NUL byte in string");
  /* groups, bad wire types, field 0 */
  pb_bad(REQ, "\x0b\x0c", 2,
         "byte 0: group wire type 3 (start-group) is not supported (field task_context)");
  pb_bad(REQ, "\x22\x02\x7b\x00", 4, "byte 2: group wire type 3");
  pb_bad(REQ, "\x0e", 1, "byte 0: invalid wire type 6");
  pb_bad(REQ, "\x07", 1, "byte 0: field number 0");
  /* truncations and lengths */
  pb_bad(REQ, "\x0a\x05\x00", 3, "byte 1: length 5 runs past the end (1 bytes left)");
  pb_bad(REQ, "\x0a", 1, "byte 1: truncated length prefix (field task_context)");
  pb_bad(REQ, "\x80", 1, "byte 0: truncated varint in tag");
  pb_bad(REQ, "\xf8\xff\xff\xff\xff\x01", 6, "byte 0: tag varint longer than 5 bytes");
  const ProtobufCMessageDescriptor *st = w2a_pb_find("Request.Settings");
  pb_bad(st, "\x10\xff", 2, "byte 1: truncated varint (field rules_enabled)");
  pb_bad(st, "\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12,
         "byte 1: varint longer than 10 bytes");
  pb_bad(st, "\x12\x01\x01", 3,
         "byte 0: wire type 2 (length-delimited) does not fit a field of type bool (field "
         "rules_enabled)");
  pb_bad(st, "\x4a\x02\x01\x80", 4,
         "byte 3: truncated varint in packed field (field supported_tools)");
  pb_bad(st, "\xfa\x01", 2, "byte 2: truncated length prefix (field #31)");
  /* a singular message field twice: protobuf-c 1.4 would merge, and its merge indexes
   * fields[-1] when a oneof is unset in both (found by fuzz_pb_decode) */
  pb_bad(REQ, "\x12\x02\x0a\x00\x12\x02\x0a\x00", 8,
         "byte 4: message field occurs twice (protobuf-c cannot merge it safely) (field input)");
  pb_bad(REQ, "\x0a\x00\x0a\x00", 4, "byte 2: message field occurs twice");
  /* ... but a oneof member twice is a replacement, which protobuf-c handles */
  const ProtobufCMessageDescriptor *ts0 = w2a_pb_find("TaskStatus");
  w2a_buf okb;
  w2a_err oke = {0};
  w2a_buf_init(&okb, 0);
  T_EQ_INT(w2a_pbjson_to_json(ts0, (const uint8_t *)"\x0a\x00\x0a\x00", 4, NULL, &okb, &oke), 0);
  T_EQ_STR(okb.data, "{\"pending\":{}}");
  w2a_buf_free(&okb);
  /* unknown fields are skipped but still checked */
  pb_bad(st, "\xf8\x01\x80", 3, "byte 2: truncated varint (field #31)");
  pb_bad(st, "\xfd\x01\x01\x02", 4, "byte 2: truncated 32-bit value (2 of 4 bytes) (field #31)");
  const ProtobufCMessageDescriptor *tu = w2a_pb_find("StreamFinished.TokenUsage");
  pb_bad(tu, "\x35\x00\x00", 3,
         "byte 1: truncated 32-bit value (2 of 4 bytes) (field cost_in_cents)");
  pb_bad(tu, "\x31\x00\x00\x00\x00\x00\x00\x00\x00", 9,
         "wire type 1 (64-bit) does not fit a field of type float");
  /* what protobuf-c would refuse: packed bools other than 0/1 */
  const ProtobufCMessageDescriptor *ts = &google__protobuf__timestamp__descriptor;
  pb_bad(ts, "\x08", 1, "byte 1: truncated varint (field seconds)");
  /* deep nesting: 70 levels of Struct inside metadata.logging */
  w2a_buf deep;
  w2a_buf_init(&deep, 0);
  w2a_buf_puts(&deep, "{\"metadata\":{\"logging\":{\"k\":");
  for (int i = 0; i < 70; i++)
    w2a_buf_puts(&deep, "{\"a\":");
  w2a_buf_puts(&deep, "1");
  for (int i = 0; i < 70; i++)
    w2a_buf_puts(&deep, "}");
  w2a_buf_puts(&deep, "}}}");
  w2a_pbjson_opts big = {.struct_max_depth = 100};
  w2a_buf bytes;
  w2a_err e = {0};
  w2a_buf_init(&bytes, 0);
  T_EQ_INT(w2a_pbjson_from_json(REQ, deep.data, deep.len, &big, &bytes, &e), 0);
  pb_bad(REQ, bytes.data, bytes.len, "Struct/Value nested deeper than 64");
  /* ... and the same JSON refused with the default cap, naming the path */
  char want[512] = "$.metadata.logging.k";
  for (int i = 0; i < 64; i++)
    strcat(want, ".a"); /* k is Value 1, the 64th a is Value 65 */
  strcat(want, ": Struct/Value nested deeper than 64");
  js_bad(REQ, deep.data, want);
  w2a_buf_free(&bytes);
  w2a_buf_free(&deep);
  /* message nesting cap: Task.dependencies... use suggest_plan.proposed_tasks recursion */
  w2a_buf_init(&deep, 0);
  for (int i = 0; i < 40; i++)
    w2a_buf_puts(&deep, "{\"messages\":[{\"tool_call\":{\"suggest_plan\":{\"proposed_tasks\":[");
  w2a_buf_puts(&deep, "{}");
  for (int i = 0; i < 40; i++)
    w2a_buf_puts(&deep, "]}}}]}");
  w2a_buf_init(&bytes, 0);
  const ProtobufCMessageDescriptor *task = w2a_pb_find("warp.multi_agent.v1.Task");
  w2a_pbjson_opts deepok = {.max_depth = 1000};
  T_EQ_INT(w2a_pbjson_from_json(task, deep.data, deep.len, &deepok, &bytes, &e), 0);
  pb_bad(task, bytes.data, bytes.len, "messages nested deeper than 100");
  w2a_buf b;
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_pbjson_from_json(task, deep.data, deep.len, NULL, &b, &e), W2A_ETOOBIG);
  if (!strstr(e.msg, ": messages nested deeper than 100"))
    fprintf(stderr, "  got %s\n", e.msg), t_fail++;
  w2a_buf_free(&b);
  w2a_buf_free(&bytes);
  w2a_buf_free(&deep);
  /* input cap */
  w2a_pbjson_opts tiny = {.max_input = 4};
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_pbjson_to_json(REQ, (const uint8_t *)"\x22\x00\x22\x00\x22\x00", 6, &tiny, &b, &e),
           W2A_ETOOBIG);
  T_EQ_INT(w2a_pbjson_from_json(REQ, "{    }", 6, &tiny, &b, &e), W2A_ETOOBIG);
  w2a_buf_free(&b);
}

static void test_json_errors(void) {
  /* syntax, with byte offsets */
  js_bad(REQ, "{\"input\":", "JSON syntax error at byte 9: unexpected end of input");
  js_bad(REQ, "{\"input\":{},}", "JSON syntax error at byte 12: expected a string key");
  js_bad(REQ, "[1,]", "JSON syntax error at byte 3: unexpected character");
  js_bad(REQ, "{} x", "JSON syntax error at byte 3: unexpected data after the JSON value");
  js_bad(REQ, "{'a':1}", "JSON syntax error at byte 1: expected a string key");
  js_bad(REQ, "{\"a\":01}", "JSON syntax error at byte 6: expected ',' or '}'");
  js_bad(REQ, "{\"a\":\"x\ny\"}", "JSON syntax error at byte 7: control character in string");
  js_bad(REQ, "{\"a\":\"\\ud800\"}",
         "JSON syntax error at byte 6: unpaired UTF-16 surrogate in \\u escape");
  js_bad(REQ, "{\"a\":\"\\q\"}", "JSON syntax error at byte 6: bad escape in string");
  js_bad(REQ, "{\"a\":\"\xff\"}", "JSON syntax error at byte 6: invalid UTF-8 in string");
  js_bad(REQ, "{\"a\":\"0123456789abcdef\xc3\"}",
         "JSON syntax error at byte 22: invalid UTF-8 in string");
  js_bad(REQ, "{\"a\":\"0123456789abcdef\xed\xa0\x80\"}",
         "JSON syntax error at byte 22: invalid UTF-8 in string");
  js_bad(REQ,
         "{\"a\":\"0123456789\x01"
         "abcdef\"}",
         "JSON syntax error at byte 16: control character in string");
  js_bad(REQ, "{\"a\":\"0123456789abcdef", "JSON syntax error at byte 5: unterminated string");
  js_bad(REQ, "", "JSON syntax error at byte 0: unexpected end of input");
  js_bad(REQ, "nul", "JSON syntax error at byte 0: unexpected character");
  js_bad(REQ, "-", "JSON syntax error at byte 0: unexpected character");
  js_bad(REQ, "1.", "JSON syntax error at byte 2: digit expected after '.'");
  /* types, with JSON paths */
  js_bad(REQ, "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{\"query\":5}}]}}}",
         "$.input.user_inputs.inputs[0].user_query.query: expected string, got number");
  js_bad(REQ, "{\"input\":{\"userInputs\":{\"inputs\":[{},{\"user_query\":{\"query\":[]}}]}}}",
         "$.input.userInputs.inputs[1].user_query.query: expected string, got array");
  js_bad(REQ, "[]", "$: expected object (warp.multi_agent.v1.Request), got array");
  js_bad(REQ, "{\"input\":\"x\"}",
         "$.input: expected object (warp.multi_agent.v1.Request.Input), got string");
  js_bad(REQ, "{\"input\":{\"bogus\":1}}",
         "$.input.bogus: no field \"bogus\" in warp.multi_agent.v1.Request.Input");
  const ProtobufCMessageDescriptor *st = w2a_pb_find("Request.Settings");
  js_bad(st, "{\"supported_tools\":{}}", "$.supported_tools: expected array, got object");
  js_bad(st, "{\"supported_tools\":[\"NOPE\"]}",
         "$.supported_tools[0]: unknown value \"NOPE\" for enum warp.multi_agent.v1.ToolType");
  js_bad(st, "{\"supported_tools\":[null]}",
         "$.supported_tools[0]: null is not a valid array element");
  js_bad(st, "{\"rules_enabled\":\"true\"}", "$.rules_enabled: expected boolean, got string");
  js_bad(st, "{\"rules_enabled\":1}", "$.rules_enabled: expected boolean, got number");
  js_bad(REQ,
         "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{\"referenced_attachments\":[]}}"
         "]}}}",
         "$.input.user_inputs.inputs[0].user_query.referenced_attachments: expected object (map), "
         "got array");
  js_bad(REQ,
         "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{\"referenced_attachments\":{"
         "\"k\":null}}}]}}}",
         "$.input.user_inputs.inputs[0].user_query.referenced_attachments.k: null is not a valid "
         "map value");
  /* integers: range and form */
  const ProtobufCMessageDescriptor *fg = w2a_pb_find("ToolCall.FileGlobV2");
  js_bad(fg, "{\"max_matches\":2147483648}", "$.max_matches: 2147483648 out of range for int32");
  js_bad(fg, "{\"max_matches\":-2147483649}", "$.max_matches: -2147483649 out of range for int32");
  js_bad(fg, "{\"max_matches\":\"abc\"}", "$.max_matches: \"abc\" is not a valid int32");
  js_bad(fg, "{\"max_matches\":1.5}", "$.max_matches: 1.5 is not a valid int32");
  js_bad(fg, "{\"max_matches\":true}",
         "$.max_matches: expected int32 (number or string), got boolean");
  const ProtobufCMessageDescriptor *tu = w2a_pb_find("StreamFinished.TokenUsage");
  js_bad(tu, "{\"output\":-1}", "$.output: -1 out of range for uint32");
  js_bad(tu, "{\"output\":4294967296}", "$.output: 4294967296 out of range for uint32");
  js_bad(tu, "{\"cost_in_cents\":1e39}", "$.cost_in_cents: 1e39 out of range for float");
  js_bad(tu, "{\"cost_in_cents\":\"x\"}", "$.cost_in_cents: \"x\" is not a valid float");
  const ProtobufCMessageDescriptor *ts = &google__protobuf__timestamp__descriptor;
  js_bad(ts, "{\"seconds\":\"9223372036854775808\"}",
         "$.seconds: 9223372036854775808 out of range for int64");
  js_bad(ts, "{\"seconds\":99999999999999999999}",
         "$.seconds: 99999999999999999999 out of range for int64");
  js_bad(
      ts, "\"2026-02-30T00:00:00Z\"",
      "$: \"2026-02-30T00:00:00Z\" is not an RFC 3339 timestamp (e.g. 2026-01-14T08:15:00.123Z)");
  js_bad(
      ts, "\"2026-01-14 08:15:00Z\"",
      "$: \"2026-01-14 08:15:00Z\" is not an RFC 3339 timestamp (e.g. 2026-01-14T08:15:00.123Z)");
  js_bad(ts, "\"2026-01-14T08:15:00\"",
         "$: \"2026-01-14T08:15:00\" is not an RFC 3339 timestamp (e.g. 2026-01-14T08:15:00.123Z)");
  /* bytes */
  const ProtobufCMessageDescriptor *img = w2a_pb_find("InputContext.Image");
  js_bad(img, "{\"data\":\"AA!A\"}", "$.data: invalid base64 at character 2");
  js_bad(img, "{\"data\":\"A\"}", "$.data: invalid base64 at character 0"); /* bad length */
  js_bad(img, "{\"data\":7}", "$.data: expected base64 string, got number");
  /* oneofs */
  js_bad(w2a_pb_find("TaskStatus"), "{\"pending\":{},\"blocked\":{}}",
         "$.blocked: oneof already set by \"pending\"");
  /* NUL cannot live in a protobuf-c string */
  js_bad(REQ, "{\"metadata\":{\"conversation_id\":\"a\\u0000b\"}}",
         "$.metadata.conversation_id: string contains U+0000 (not representable)");
  /* _unknown */
  const ProtobufCMessageDescriptor *mc = w2a_pb_find("Settings.ModelConfig");
  js_bad(mc, "{\"_unknown\":[{\"field\":1,\"wire_type\":2,\"data\":\"\"}]}",
         "$._unknown[0].field: field 1 is a known field (base)");
  js_bad(mc, "{\"_unknown\":[{\"field\":9,\"wire_type\":3,\"data\":\"\"}]}",
         "$._unknown[0].wire_type: wire type 3 is not 0, 1, 2 or 5");
  js_bad(mc, "{\"_unknown\":[{\"field\":9,\"wire_type\":0,\"data\":\"gA==\"}]}",
         "$._unknown[0].data: not exactly one varint");
  js_bad(mc, "{\"_unknown\":[{\"field\":9,\"wire_type\":5,\"data\":\"AA==\"}]}",
         "$._unknown[0].data: wire type 5 needs 4 bytes, got 1");
  js_bad(mc, "{\"_unknown\":{}}", "$._unknown: expected array, got object");
  w2a_pbjson_opts strict = {.skip_unknown = 1};
  js_bad_o(mc, "{\"_unknown\":[]}", "$._unknown: unknown fields are not accepted here", &strict);
  /* Struct keys and values */
  js_bad(REQ, "{\"metadata\":{\"logging\":{\"a\":{\"b\":\"\\u0000\"}}}}",
         "$.metadata.logging.a.b: string contains U+0000 (not representable)");
  js_bad(&google__protobuf__struct__descriptor, "[]", "$: expected object (Struct), got array");
}

/* Random byte edits of the captured request: whenever the validator accepts, protobuf-c
 * must unpack; the JSON of the result must be a fixed point of JSON -> bytes -> JSON, and
 * nearly always re-encode to exactly what protobuf-c re-packs (the documented lossy
 * cases: a Value with no kind prints as null, unknown fields inside well-known types). */
static void test_mutations(void) {
  size_t len = 0;
  char *bin = fx_read("turn1-request.bin", &len);
  if (!bin) return;
  uint64_t s = 0x9e3779b97f4a7c15ull;
  int accepted = 0, agree = 1, stable = 1, exact = 0;
  uint8_t buf[400], packed[800];
  for (int it = 0; it < 20000; it++) {
    memcpy(buf, bin, len);
    size_t n = len;
    for (int k = 0; k < 1 + it % 3; k++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      size_t at = (size_t)(s >> 8) % n;
      switch (s & 3) {
      case 0: buf[at] = (uint8_t)(s >> 40); break;
      case 1: buf[at] ^= (uint8_t)(1u << ((s >> 32) & 7)); break;
      case 2: n = at + 1; break;
      default: buf[at] = (uint8_t)((s >> 40) & 1 ? 0x80 : 0x00); break;
      }
    }
    w2a_err e;
    if (w2a_pbjson_validate(REQ, buf, n, &e)) continue;
    accepted++;
    ProtobufCMessage *m = protobuf_c_message_unpack(REQ, NULL, n, buf);
    if (!m) {
      agree = 0;
      continue;
    }
    size_t pn = protobuf_c_message_pack(m, packed);
    w2a_buf js, back, js2;
    w2a_buf_init(&js, 0);
    w2a_buf_init(&back, 0);
    w2a_buf_init(&js2, 0);
    if (w2a_pbjson_msg_to_json(m, NULL, &js, &e) ||
        w2a_pbjson_from_json(REQ, js.data, js.len, NULL, &back, &e) ||
        w2a_pbjson_to_json(REQ, (uint8_t *)back.data, back.len, NULL, &js2, &e) ||
        strcmp(js.data, js2.data)) {
      if (stable) fprintf(stderr, "  unstable: %s\n", js.data ? js.data : e.msg);
      stable = 0;
    } else if (back.len == pn && !memcmp(back.data, packed, pn)) {
      exact++;
    }
    w2a_buf_free(&js);
    w2a_buf_free(&js2);
    w2a_buf_free(&back);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  T_CHECK(accepted > 1000);
  T_CHECK(agree);
  T_CHECK(stable);
  T_CHECK(exact * 10 >= accepted * 9);
  fprintf(stderr, "  mutations: %d accepted, %d byte-exact through JSON\n", accepted, exact);
  free(bin);
}

int main(void) {
  T_RUN(test_prefixes);
  T_RUN(test_wire_errors);
  T_RUN(test_json_errors);
  T_RUN(test_mutations);
  return t_done();
}
