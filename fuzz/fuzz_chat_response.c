/* fuzz_chat_response.c - what the gateway writes to a client (map_response.c), for any
 * sequence of Warp's events: text and reasoning fragments, tool calls (wrapped in
 * call_mcp_tool or not, any id, name and arguments), keep-alives and a finish, streamed
 * or not, with or without include_usage, cut short or ended.
 *
 * The input is a little program: byte 0 picks stream/include_usage, then each op byte
 * picks an event and the bytes after it are its strings (a length byte, then that many
 * bytes). Strings reach map_response as they would from the wire: valid UTF-8, no NUL
 * (anything else is skipped, as the event decoder refuses it).
 *
 * Checks, beyond "no crash, no leak, no UB":
 *   - streamed: every event is "data: <JSON object>\n\n" (strict JSON, UTF-8) or the
 *     keep-alive comment; the last is "data: [DONE]"; delta.content and
 *     delta.reasoning_content put back together are exactly the fragments fed; the
 *     first delta carries role "assistant"; tool call indexes are 0, 1, 2… in order;
 *   - not streamed: one strict JSON object whose message.content, reasoning_content and
 *     tool_calls are exactly what was fed. */
#include <json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/map_response.h"
#include "proto/pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct rd {
  const uint8_t *p, *end;
} rd;

static int byte(rd *r) { return r->p < r->end ? *r->p++ : -1; }

/* A length-prefixed string copied NUL-terminated into buf, or NULL when it is not what
 * the wire could carry (or the input ran out). */
static const char *str(rd *r, char *buf, size_t *len) {
  int n = byte(r);
  if (n < 0 || (size_t)(r->end - r->p) < (size_t)n) return NULL;
  memcpy(buf, r->p, (size_t)n);
  buf[n] = 0;
  r->p += n;
  if (!w2a_pbjson_string_check((const uint8_t *)buf, (size_t)n)) return NULL;
  if (len) *len = (size_t)n;
  return buf;
}

static json_object *strict_parse(const char *s, size_t n) {
  json_tokener *tok = json_tokener_new();
  if (!tok) abort();
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  json_object *o = json_tokener_parse_ex(tok, s, (int)n);
  if (!o || json_tokener_get_error(tok) != json_tokener_success ||
      json_tokener_get_parse_end(tok) != n || !json_object_is_type(o, json_type_object))
    abort();
  json_tokener_free(tok);
  return o;
}

static json_object *get(json_object *o, const char *k) {
  json_object *v = NULL;
  return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static void append(w2a_buf *b, json_object *s) {
  if (s && json_object_is_type(s, json_type_string) &&
      w2a_buf_append(b, json_object_get_string(s), (size_t)json_object_get_string_len(s)))
    abort();
}

static int same(const w2a_buf *a, const w2a_buf *b) {
  return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

/* Read the SSE bytes back; abort on anything a client could not parse. */
static void check_stream(const w2a_buf *out, const w2a_buf *text, const w2a_buf *reasoning,
                         int ntools) {
  w2a_buf t, rs;
  w2a_buf_init(&t, 0);
  w2a_buf_init(&rs, 0);
  const char *p = out->data ? out->data : "", *end = p + out->len;
  int role_seen = 0, next_index = 0, done = 0;
  while (p < end) {
    const char *e = memmem(p, (size_t)(end - p), "\n\n", 2);
    if (!e || done) abort(); /* every event ends with a blank line; nothing after [DONE] */
    size_t n = (size_t)(e - p);
    if (n == 12 && !memcmp(p, ": keep-alive", 12)) {
    } else if (n == 12 && !memcmp(p, "data: [DONE]", 12)) {
      done = 1;
    } else {
      if (n < 6 || memcmp(p, "data: ", 6) || memchr(p, '\n', n)) abort();
      json_object *o = strict_parse(p + 6, n - 6);
      json_object *choices = get(o, "choices"), *c0 = NULL, *delta = NULL;
      if (!choices || !json_object_is_type(choices, json_type_array)) abort();
      if (json_object_array_length(choices)) {
        c0 = json_object_array_get_idx(choices, 0);
        delta = get(c0, "delta");
        if (!delta) abort();
        json_object *role = get(delta, "role"), *tc = get(delta, "tool_calls");
        if (role) role_seen = 1;
        if ((get(delta, "content") || get(delta, "reasoning_content") || tc) && !role_seen)
          abort(); /* the first chunk that carries anything carries the role */
        append(&t, get(delta, "content"));
        append(&rs, get(delta, "reasoning_content"));
        for (size_t i = 0; tc && i < json_object_array_length(tc); i++) {
          json_object *idx = get(json_object_array_get_idx(tc, i), "index");
          if (!idx || json_object_get_int(idx) != next_index++) abort();
        }
      } else if (!get(o, "usage") && !get(o, "error")) {
        abort(); /* a chunk without choices is the usage or the error chunk */
      }
      json_object_put(o);
    }
    p = e + 2;
  }
  if (!done || !same(&t, text) || !same(&rs, reasoning) || next_index != ntools) abort();
  w2a_buf_free(&t);
  w2a_buf_free(&rs);
}

static void check_completion(const w2a_buf *out, const w2a_buf *text, const w2a_buf *reasoning,
                             int ntools) {
  json_object *o = strict_parse(out->data, out->len);
  json_object *choices = get(o, "choices");
  if (!choices || json_object_array_length(choices) != 1) abort();
  json_object *msg = get(json_object_array_get_idx(choices, 0), "message");
  if (!msg || !get(o, "usage")) abort();
  w2a_buf t, rs;
  w2a_buf_init(&t, 0);
  w2a_buf_init(&rs, 0);
  append(&t, get(msg, "content"));
  append(&rs, get(msg, "reasoning_content"));
  json_object *tc = get(msg, "tool_calls");
  size_t n = tc ? json_object_array_length(tc) : 0;
  if (!same(&t, text) || !same(&rs, reasoning) || n != (size_t)ntools) abort();
  w2a_buf_free(&t);
  w2a_buf_free(&rs);
  json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rd r = {data, data + size};
  int flags = byte(&r);
  if (flags < 0) return 0;
  int stream = flags & 1, include_usage = (flags >> 1) & 1, finished = 0, ntools = 0;
  w2a_gw_resp resp;
  w2a_buf out, text, reasoning;
  char a[256], b[256], c[256];
  w2a_gw_resp_init(&resp, "fuzz-model", 1700000000, stream, include_usage, 7, 0);
  w2a_buf_init(&out, 0);
  w2a_buf_init(&text, 0);
  w2a_buf_init(&reasoning, 0);
  int op;
  while (!finished && (op = byte(&r)) >= 0) {
    w2a_gw_event ev = {0};
    size_t n = 0;
    switch (op & 7) { /* the low three bits pick the event, the rest are its flags */
    case 0:
    case 1:
      ev.kind = op & 7 ? W2A_GW_EV_REASONING : W2A_GW_EV_TEXT;
      if (!(ev.text = str(&r, a, &n))) continue;
      ev.len = n;
      if (w2a_buf_append(op & 7 ? &reasoning : &text, a, n)) abort();
      break;
    case 2:
      ev.kind = W2A_GW_EV_TOOL_CALL;
      ev.call_id = str(&r, a, NULL);
      ev.name = (op & 8) ? "call_mcp_tool" : str(&r, b, NULL);
      ev.args_json = str(&r, c, NULL);
      if (!ev.call_id || !ev.name) continue;
      ntools++;
      break;
    case 3: {
      static const w2a_gw_finish ok[] = {W2A_GW_FIN_DONE, W2A_GW_FIN_MAX_TOKENS,
                                         W2A_GW_FIN_CONTEXT_WINDOW, W2A_GW_FIN_OTHER};
      ev.kind = W2A_GW_EV_FINISH;
      ev.finish = ok[(op >> 3) & 3];
      ev.has_usage = (op >> 5) & 1;
      ev.prompt_tokens = (uint64_t)byte(&r) * 1000003u;
      ev.completion_tokens = (uint64_t)byte(&r);
      finished = 1;
      break;
    }
    default:
      if (stream && w2a_gw_resp_keepalive(&out)) abort();
      continue;
    }
    if (w2a_gw_resp_feed(&resp, &ev, &out)) abort();
  }
  if (stream) {
    if (finished) {
      if (w2a_gw_resp_stream_end(&resp, &out)) abort();
    } else {
      w2a_gw_error e = {0};
      w2a_gw_errorf(&e, W2A_GWE_UPSTREAM, NULL, "the upstream stream ended \"early\"");
      if (w2a_gw_resp_stream_error(&resp, &e, &out)) abort();
    }
    check_stream(&out, &text, &reasoning, ntools);
  } else {
    if (w2a_gw_resp_completion(&resp, &out)) abort();
    check_completion(&out, &text, &reasoning, ntools);
  }
  w2a_gw_resp_free(&resp);
  w2a_buf_free(&out);
  w2a_buf_free(&text);
  w2a_buf_free(&reasoning);
  return 0;
}
