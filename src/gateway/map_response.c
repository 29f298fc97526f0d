/* map_response.c - the response state machine (see map_response.h).
 *
 * JSON is written by hand into w2a_bufs (the shapes are fixed and small; building
 * json-c trees per delta would allocate per token). Every string goes through
 * w2a_buf_put_json_str. Only tool-call unwrapping parses JSON (the arguments of a
 * call_mcp_tool wrapper). The per-chunk path is direct appends (no printf): a streamed
 * chunk's opening (id, created, model) is the same for the whole answer, so it is built
 * once and copied. */
#include "gateway/map_response.h"

#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"

#define DEFAULT_MAX ((size_t)64 << 20)
#define PUTL(b, lit) w2a_buf_append((b), (lit), sizeof(lit) - 1) /* a string literal */

static const char hexd[] = "0123456789abcdef";

static void hex(char *out, const unsigned char *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = hexd[p[i] >> 4];
    out[2 * i + 1] = hexd[p[i] & 15];
  }
  out[2 * n] = 0;
}

/* Decimal, as printf's %llu / %lld would write it. */
static int put_u64(w2a_buf *b, uint64_t v) {
  char t[24];
  size_t i = sizeof t;
  do {
    t[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return w2a_buf_append(b, t + i, sizeof t - i);
}

static int put_i64(w2a_buf *b, int64_t v) {
  int rc = 0;
  if (v < 0) {
    rc = w2a_buf_putc(b, '-');
    return rc ? rc : put_u64(b, (uint64_t)0 - (uint64_t)v);
  }
  return put_u64(b, (uint64_t)v);
}

uint64_t w2a_gw_estimate_tokens(const char *s, size_t n) {
  uint64_t ascii = 0, other = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80)
      ascii++;
    else if ((c & 0xC0) != 0x80)
      other++; /* lead byte of a multi-byte sequence */
  }
  return (ascii + 3) / 4 + other;
}

/* All-ASCII words of eight bytes are counted at once (it runs over every streamed
 * fragment); the rest byte by byte: ASCII bytes have bit 7 clear, lead bytes of
 * multi-byte sequences have bits 7 and 6 set. */
static void count_out(w2a_gw_resp *r, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint64_t w;
    if (i + 8 <= n && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ull))) {
      r->out_ascii += 8;
      i += 8;
      continue;
    }
    size_t stop = i + 8 <= n ? i + 8 : n;
    for (; i < stop; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c < 0x80)
        r->out_ascii++;
      else if ((c & 0xC0) != 0x80)
        r->out_other++;
    }
  }
}

int w2a_gw_finish_is_error(w2a_gw_finish f) {
  return f == W2A_GW_FIN_NONE || f == W2A_GW_FIN_QUOTA || f == W2A_GW_FIN_LLM_UNAVAILABLE ||
         f == W2A_GW_FIN_INTERNAL_ERROR;
}

const char *w2a_gw_finish_name(w2a_gw_finish f) {
  switch (f) {
  case W2A_GW_FIN_DONE: return "done";
  case W2A_GW_FIN_MAX_TOKENS: return "max_token_limit";
  case W2A_GW_FIN_CONTEXT_WINDOW: return "context_window_exceeded";
  case W2A_GW_FIN_OTHER: return "other";
  case W2A_GW_FIN_QUOTA: return "quota_limit";
  case W2A_GW_FIN_LLM_UNAVAILABLE: return "llm_unavailable";
  case W2A_GW_FIN_INTERNAL_ERROR: return "internal_error";
  default: return "none";
  }
}

void w2a_gw_resp_init(w2a_gw_resp *r, const char *model, int64_t created, int stream,
                      int include_usage, uint64_t prompt_tokens_est, size_t max_bytes) {
  unsigned char rnd[12];
  size_t i;
  memset(r, 0, sizeof *r);
  w2a_random(rnd, sizeof rnd);
  memcpy(r->id, "chatcmpl-", 9);
  hex(r->id + 9, rnd, sizeof rnd);
  if (!model) model = "";
  i = strlen(model);
  if (i >= sizeof r->model) i = sizeof r->model - 1;
  memcpy(r->model, model, i);
  r->model[i] = 0;
  r->created = created;
  r->stream = stream;
  r->include_usage = include_usage;
  r->prompt_est = prompt_tokens_est;
  r->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX;
  w2a_buf_init(&r->text, r->max_bytes);
  w2a_buf_init(&r->reasoning, r->max_bytes);
  w2a_buf_init(&r->tools, r->max_bytes);
  w2a_buf_init(&r->head, 0);
}

void w2a_gw_resp_free(w2a_gw_resp *r) {
  w2a_buf_free(&r->text);
  w2a_buf_free(&r->reasoning);
  w2a_buf_free(&r->tools);
  w2a_buf_free(&r->head);
}

static int put_str(w2a_buf *b, const char *s) { return w2a_buf_put_json_str(b, s, strlen(s)); }

/* {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[ */
static int build_head(w2a_gw_resp *r) {
  if (r->head.len) return 0;
  w2a_buf *h = &r->head;
  int rc = PUTL(h, "data: {\"id\":");
  if (!rc) rc = put_str(h, r->id);
  if (!rc) rc = PUTL(h, ",\"object\":\"chat.completion.chunk\",\"created\":");
  if (!rc) rc = put_i64(h, r->created);
  if (!rc) rc = PUTL(h, ",\"model\":");
  if (!rc) rc = put_str(h, r->model);
  if (!rc) rc = PUTL(h, ",\"choices\":[");
  if (rc) w2a_buf_reset(h);
  return rc;
}

static int chunk_head(w2a_gw_resp *r, w2a_buf *out) {
  int rc = build_head(r);
  return rc ? rc : w2a_buf_append(out, r->head.data, r->head.len);
}

#define LIT(s) s, sizeof(s) - 1
#define PUT(o, lit) (memcpy((o), LIT(lit)), (o) + sizeof(lit) - 1)

/* One streamed content / reasoning_content chunk written with one reservation: this runs
 * once per upstream text event, where a dozen appends (each a capacity check and a
 * terminator) cost more than the bytes. Returns 1 when it could not reserve the room (the
 * caller then takes the append-by-append path, which fails or succeeds as it always did). */
static int stream_delta(w2a_gw_resp *r, int reasoning, const char *t, size_t n, w2a_buf *out) {
  static const char open_[] = "{\"index\":0,\"delta\":{", role[] = "\"role\":\"assistant\",",
                    key_r[] = "\"reasoning_content\":",
                    close_[] = "},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
  if (build_head(r) || n > (SIZE_MAX - 4096 - r->head.len) / 6) return 1;
  size_t need = r->head.len + sizeof open_ + sizeof role + sizeof key_r + sizeof close_ + 6 * n + 2;
  if (w2a_buf_reserve(out, need)) return 1;
  char *o = out->data + out->len;
  memcpy(o, r->head.data, r->head.len);
  o += r->head.len;
  o = PUT(o, open_);
  if (!r->role_sent) {
    o = PUT(o, role);
    r->role_sent = 1;
  }
  if (reasoning)
    o = PUT(o, key_r);
  else
    o = PUT(o, "\"content\":");
  *o++ = '"';
  o = w2a_json_escape_to(o, t, n);
  *o++ = '"';
  o = PUT(o, close_);
  *o = 0;
  out->len = (size_t)(o - out->data);
  return 0;
}

static int delta_open(w2a_gw_resp *r, w2a_buf *out) {
  int rc = chunk_head(r, out);
  if (!rc) rc = PUTL(out, "{\"index\":0,\"delta\":{");
  if (!rc && !r->role_sent) {
    rc = PUTL(out, "\"role\":\"assistant\",");
    r->role_sent = 1;
  }
  return rc;
}

static int delta_close(w2a_buf *out) {
  return PUTL(out, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

/* Unwrap {"name":X,"args"|"arguments":{…}} when the model called "call_mcp_tool". */
static int unwrap(const char *name, const char *args, char **uname, char **uargs) {
  json_object *o, *n, *a = NULL;
  *uname = *uargs = NULL;
  if (strcmp(name, "call_mcp_tool") != 0 || !args) return 0;
  if (!(o = json_tokener_parse(args))) return 0;
  if (json_object_object_get_ex(o, "name", &n) && json_object_is_type(n, json_type_string) &&
      json_object_get_string_len(n) > 0) {
    if (!json_object_object_get_ex(o, "args", &a)) json_object_object_get_ex(o, "arguments", &a);
    *uname = w2a_strndup(json_object_get_string(n), json_object_get_string_len(n));
    if (a && json_object_is_type(a, json_type_string))
      *uargs = w2a_strndup(json_object_get_string(a), json_object_get_string_len(a));
    else if (a && json_object_is_type(a, json_type_object))
      *uargs = w2a_strndup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
                           strlen(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN)));
    else
      *uargs = w2a_strndup("{}", 2);
  }
  json_object_put(o);
  if (*uname && *uargs) return 1;
  free(*uname), free(*uargs);
  *uname = *uargs = NULL;
  return 0;
}

/* {"index":k,"id":…,"type":"function","function":{"name":…,"arguments":…}} */
static int tool_json(w2a_buf *b, int index, const char *id, const char *name, const char *args,
                     int with_index) {
  int rc = with_index ? PUTL(b, "{\"index\":") : PUTL(b, "{\"id\":");
  if (!rc && with_index) rc = put_i64(b, index);
  if (!rc && with_index) rc = PUTL(b, ",\"id\":");
  if (!rc) rc = put_str(b, id);
  if (!rc) rc = w2a_buf_puts(b, ",\"type\":\"function\",\"function\":{\"name\":");
  if (!rc) rc = put_str(b, name);
  if (!rc) rc = w2a_buf_puts(b, ",\"arguments\":");
  if (!rc) rc = put_str(b, args);
  if (!rc) rc = w2a_buf_puts(b, "}}");
  return rc;
}

static int feed_tool(w2a_gw_resp *r, const w2a_gw_event *ev, w2a_buf *out) {
  char idbuf[48], *uname = NULL, *uargs = NULL;
  const char *name = ev->name ? ev->name : "", *args = ev->args_json ? ev->args_json : "{}";
  const char *id = ev->call_id;
  int rc, index = r->ntools;
  if (unwrap(name, args, &uname, &uargs)) name = uname, args = uargs;
  if (!id || !*id) {
    unsigned char rnd[12];
    w2a_random(rnd, sizeof rnd);
    memcpy(idbuf, "call_", 5);
    hex(idbuf + 5, rnd, sizeof rnd);
    id = idbuf;
  }
  count_out(r, name, strlen(name));
  count_out(r, args, strlen(args));
  if (r->stream) {
    rc = delta_open(r, out);
    if (!rc) rc = w2a_buf_puts(out, "\"tool_calls\":[");
    if (!rc) rc = tool_json(out, index, id, name, args, 1);
    if (!rc) rc = w2a_buf_puts(out, "]");
    if (!rc) rc = delta_close(out);
  } else {
    rc = r->tools.len ? w2a_buf_putc(&r->tools, ',') : 0;
    if (!rc) rc = tool_json(&r->tools, index, id, name, args, 0);
  }
  if (!rc) r->ntools++, r->emitted = 1;
  free(uname);
  free(uargs);
  return rc;
}

int w2a_gw_resp_feed(w2a_gw_resp *r, const w2a_gw_event *ev, w2a_buf *out) {
  int rc = 0;
  switch (ev->kind) {
  case W2A_GW_EV_TEXT:
  case W2A_GW_EV_REASONING: {
    int reasoning = ev->kind == W2A_GW_EV_REASONING;
    if (!ev->len) return 0;
    count_out(r, ev->text, ev->len);
    if (r->stream && !stream_delta(r, reasoning, ev->text, ev->len, out)) {
      rc = 0;
    } else if (r->stream) {
      rc = delta_open(r, out);
      if (!rc) rc = reasoning ? PUTL(out, "\"reasoning_content\":") : PUTL(out, "\"content\":");
      if (!rc) rc = w2a_buf_put_json_str(out, ev->text, ev->len);
      if (!rc) rc = delta_close(out);
    } else {
      rc = w2a_buf_append(reasoning ? &r->reasoning : &r->text, ev->text, ev->len);
    }
    if (!rc) r->emitted = 1;
    return rc;
  }
  case W2A_GW_EV_TOOL_CALL: return feed_tool(r, ev, out);
  case W2A_GW_EV_FINISH:
    if (w2a_gw_finish_is_error(ev->finish)) return W2A_ESTATE;
    r->finished = 1;
    if (ev->finish == W2A_GW_FIN_MAX_TOKENS || ev->finish == W2A_GW_FIN_CONTEXT_WINDOW)
      r->finish_reason = "length";
    else
      r->finish_reason = r->ntools ? "tool_calls" : "stop";
    if (ev->has_usage) {
      r->has_usage = 1;
      r->prompt_tokens = ev->prompt_tokens;
      r->completion_tokens = ev->completion_tokens;
      r->cached_tokens = ev->cached_tokens;
    }
    return 0;
  }
  return W2A_EINVAL;
}

void w2a_gw_resp_usage(const w2a_gw_resp *r, uint64_t *prompt, uint64_t *completion,
                       int *estimated) {
  if (r->has_usage) {
    *prompt = r->prompt_tokens, *completion = r->completion_tokens, *estimated = 0;
  } else {
    *prompt = r->prompt_est;
    *completion = (r->out_ascii + 3) / 4 + r->out_other;
    *estimated = 1;
  }
}

static int usage_json(const w2a_gw_resp *r, w2a_buf *b) {
  uint64_t p, c;
  int est, rc;
  w2a_gw_resp_usage(r, &p, &c, &est);
  rc = PUTL(b, "{\"prompt_tokens\":");
  if (!rc) rc = put_u64(b, p);
  if (!rc) rc = PUTL(b, ",\"completion_tokens\":");
  if (!rc) rc = put_u64(b, c);
  if (!rc) rc = PUTL(b, ",\"total_tokens\":");
  if (!rc) rc = put_u64(b, p + c);
  if (!rc && r->has_usage && r->cached_tokens) {
    rc = PUTL(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    if (!rc) rc = put_u64(b, r->cached_tokens);
    if (!rc) rc = w2a_buf_putc(b, '}');
  }
  if (!rc) rc = w2a_buf_puts(b, est ? ",\"estimated\":true}" : ",\"estimated\":false}");
  return rc;
}

int w2a_gw_resp_stream_end(w2a_gw_resp *r, w2a_buf *out) {
  int rc = chunk_head(r, out);
  if (!rc) rc = w2a_buf_puts(out, "{\"index\":0,\"delta\":{");
  if (!rc && !r->role_sent) rc = w2a_buf_puts(out, "\"role\":\"assistant\",\"content\":\"\"");
  r->role_sent = 1;
  if (!rc) rc = w2a_buf_puts(out, "},\"logprobs\":null,\"finish_reason\":");
  if (!rc) rc = put_str(out, r->finish_reason ? r->finish_reason : "stop");
  if (!rc) rc = w2a_buf_puts(out, "}]}\n\n");
  if (!rc && r->include_usage) {
    rc = chunk_head(r, out);
    if (!rc) rc = w2a_buf_puts(out, "],\"usage\":");
    if (!rc) rc = usage_json(r, out);
    if (!rc) rc = w2a_buf_puts(out, "}\n\n");
  }
  if (!rc) rc = w2a_buf_puts(out, "data: [DONE]\n\n");
  return rc;
}

int w2a_gw_resp_stream_error(w2a_gw_resp *r, const w2a_gw_error *e, w2a_buf *out) {
  /* Clients (the openai package among them) throw when a chunk carries "error", so a
   * failure after content can never pass for a complete answer. */
  int rc = chunk_head(r, out);
  if (!rc) rc = w2a_buf_puts(out, "],\"error\":");
  if (!rc) rc = w2a_gw_error_inner_json(out, e);
  if (!rc) rc = w2a_buf_puts(out, "}\n\ndata: [DONE]\n\n");
  return rc;
}

int w2a_gw_resp_keepalive(w2a_buf *out) { return w2a_buf_puts(out, ": keep-alive\n\n"); }

int w2a_gw_resp_completion(w2a_gw_resp *r, w2a_buf *out) {
  int rc = w2a_buf_puts(out, "{\"id\":");
  if (!rc) rc = put_str(out, r->id);
  if (!rc) rc = PUTL(out, ",\"object\":\"chat.completion\",\"created\":");
  if (!rc) rc = put_i64(out, r->created);
  if (!rc) rc = PUTL(out, ",\"model\":");
  if (!rc) rc = put_str(out, r->model);
  if (!rc)
    rc = w2a_buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                           "\"content\":");
  if (!rc)
    rc = r->text.len || !r->ntools
             ? w2a_buf_put_json_str(out, r->text.data ? r->text.data : "", r->text.len)
             : w2a_buf_puts(out, "null");
  if (!rc && r->reasoning.len) {
    rc = w2a_buf_puts(out, ",\"reasoning_content\":");
    if (!rc) rc = w2a_buf_put_json_str(out, r->reasoning.data, r->reasoning.len);
  }
  if (!rc && r->ntools) {
    rc = w2a_buf_puts(out, ",\"tool_calls\":[");
    if (!rc) rc = w2a_buf_append(out, r->tools.data, r->tools.len);
    if (!rc) rc = w2a_buf_putc(out, ']');
  }
  if (!rc) rc = w2a_buf_puts(out, "},\"logprobs\":null,\"finish_reason\":");
  if (!rc) rc = put_str(out, r->finish_reason ? r->finish_reason : "stop");
  if (!rc) rc = w2a_buf_puts(out, "}],\"usage\":");
  if (!rc) rc = usage_json(r, out);
  if (!rc) rc = w2a_buf_puts(out, "}\n");
  return rc;
}
