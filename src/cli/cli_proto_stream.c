/* cli_proto_stream.c - `warp2api proto decode-stream [--smd] [--no-unknown] [FILE]`.
 *
 * Reads a Warp text/event-stream body (FILE, or stdin when absent or "-") in 64 KiB
 * pieces through the same decoder and interpreter the gateway uses, prints each
 * ResponseEvent as one line of JSON (the generic transcoder's form; a `data: [DONE]`
 * event prints {"done":true}), then one summary line:
 *
 *   {"summary":{"events":14,"text":"...","reasoning":"","tool_calls":[{"id":..,"name":..,
 *    "arguments":"<json text>"}],"finish_reason":"done","conversation_id":..,...}}
 *
 * --smd expands every server_message_data to {uuid, seconds, nanos} in the event lines.
 * Exit codes: 0 done; 1 bad input (the message names the stream byte offset of the event
 * and, for a bad protobuf, the byte inside it); 2 usage. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/buf.h"
#include "proto/events.h"
#include "proto/pbjson.h"
#include "proto/smd.h"
#include "proto/sse.h"

typedef struct stream_ctx {
  w2a_events st;
  w2a_buf line;       /* one output line */
  w2a_buf tools;      /* the summary's tool_calls array, without brackets */
  w2a_pbjson_opts jo; /* transcoder options for the event lines */
  int expand_smd;
  uint64_t events, done_events;
  size_t unknown;
  w2a_err err; /* detail of a failure inside a callback */
} stream_ctx;

static void usage(FILE *out) {
  fputs("usage: warp2api proto decode-stream [--smd] [--no-unknown] [FILE]\n"
        "  a Warp text/event-stream body (FILE or stdin) -> one JSON line per event, then\n"
        "  a {\"summary\":{...}} line with the text, reasoning, tool calls and finish reason\n"
        "  --smd         expand server_message_data to {uuid, seconds, nanos}\n"
        "  --no-unknown  leave unknown fields out of the event lines\n",
        out);
}

static int on_item(void *ud, const w2a_ev *ev) {
  stream_ctx *c = ud;
  if (ev->kind != W2A_EV_TOOL_CALL) return 0;
  w2a_buf *t = &c->tools;
  int rc = 0;
  if (t->len) rc = w2a_buf_putc(t, ',');
  if (!rc) rc = w2a_buf_puts(t, "{\"id\":");
  if (!rc) rc = w2a_buf_put_json_str(t, ev->tool_call_id, strlen(ev->tool_call_id));
  if (!rc) rc = w2a_buf_puts(t, ",\"name\":");
  if (!rc) rc = w2a_buf_put_json_str(t, ev->name, strlen(ev->name));
  if (!rc) rc = w2a_buf_puts(t, ",\"arguments\":");
  if (!rc) rc = w2a_buf_put_json_str(t, ev->args_json, ev->args_len);
  if (!rc && ev->unwrapped) rc = w2a_buf_puts(t, ",\"unwrapped\":true");
  if (!rc) rc = w2a_buf_putc(t, '}');
  if (rc) w2a_errf(&c->err, rc, "tool call list: %s", w2a_strerror(rc));
  return rc;
}

/* Print the event line; with --smd, round-trip it through json-c to expand. */
static int print_event(stream_ctx *c, const ProtobufCMessage *m, uint64_t off) {
  w2a_buf_reset(&c->line);
  w2a_err e = {0};
  int rc = w2a_pbjson_msg_to_json(m, &c->jo, &c->line, &e);
  if (rc)
    return w2a_errf(&c->err, rc, "event at byte offset %llu: %s", (unsigned long long)off, e.msg);
  if (c->expand_smd) {
    json_object *j = json_tokener_parse(c->line.data);
    if (!j)
      return w2a_errf(&c->err, W2A_EINVAL, "event at byte offset %llu: JSON re-read failed",
                      (unsigned long long)off);
    w2a_smd_expand_json(j);
    fputs(
        json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        stdout);
    json_object_put(j);
  } else {
    fwrite(c->line.data, 1, c->line.len, stdout);
  }
  fputc('\n', stdout);
  return 0;
}

static int on_event(void *ud, const w2a_sse_event *ev) {
  stream_ctx *c = ud;
  c->events++;
  if (ev->done) {
    c->done_events++;
    fputs("{\"done\":true}\n", stdout);
    return 0;
  }
  w2a_err e = {0};
  ProtobufCMessage *m =
      w2a_pbjson_unpack(&warp__multi_agent__v1__response_event__descriptor, ev->data, ev->len, &e);
  if (!m)
    return w2a_errf(&c->err, W2A_EINVAL, "event at byte offset %llu is not a ResponseEvent: %s",
                    (unsigned long long)ev->offset, e.msg);
  c->unknown += w2a_pb_count_unknown(m);
  int rc = print_event(c, m, ev->offset);
  if (!rc) {
    rc = w2a_events_feed(&c->st, (const Warp__MultiAgent__V1__ResponseEvent *)m, on_item, c, &e);
    if (rc && !c->err.msg[0])
      w2a_errf(&c->err, rc, "event at byte offset %llu: %s", (unsigned long long)ev->offset, e.msg);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return rc;
}

static int put_key_str(w2a_buf *b, const char *key, const char *s, size_t n) {
  int rc = w2a_buf_printf(b, ",\"%s\":", key);
  if (rc) return rc;
  if (!s) return w2a_buf_puts(b, "null");
  return w2a_buf_put_json_str(b, s, n);
}

static int print_summary(stream_ctx *c, int unterminated) {
  w2a_events *s = &c->st;
  w2a_buf *b = &c->line;
  w2a_buf_reset(b);
  int rc = w2a_buf_printf(b, "{\"summary\":{\"events\":%llu", (unsigned long long)c->events);
  if (!rc) rc = put_key_str(b, "text", s->text.data ? s->text.data : "", s->text.len);
  if (!rc)
    rc = put_key_str(b, "reasoning", s->reasoning.data ? s->reasoning.data : "", s->reasoning.len);
  if (!rc) rc = w2a_buf_puts(b, ",\"tool_calls\":[");
  if (!rc && c->tools.len) rc = w2a_buf_append(b, c->tools.data, c->tools.len);
  if (!rc) rc = w2a_buf_putc(b, ']');
  const char *reason = s->reason == W2A_FINISH_NONE ? NULL : w2a_finish_reason_name(s->reason);
  if (!rc) rc = put_key_str(b, "finish_reason", reason, reason ? strlen(reason) : 0);
  if (!rc && s->error_message)
    rc = put_key_str(b, "error_message", s->error_message, strlen(s->error_message));
  if (!rc)
    rc = put_key_str(b, "conversation_id", s->conversation_id,
                     s->conversation_id ? strlen(s->conversation_id) : 0);
  if (!rc)
    rc = put_key_str(b, "request_id", s->request_id, s->request_id ? strlen(s->request_id) : 0);
  if (!rc && c->done_events) rc = w2a_buf_puts(b, ",\"done_sentinel\":true");
  if (!rc && s->after_finish)
    rc = w2a_buf_printf(b, ",\"events_after_finished\":%llu", (unsigned long long)s->after_finish);
  if (!rc && s->truncated) rc = w2a_buf_puts(b, ",\"text_truncated\":true");
  if (!rc && unterminated) rc = w2a_buf_puts(b, ",\"unterminated\":true");
  if (!rc) rc = w2a_buf_printf(b, ",\"unknown_fields\":%zu}}\n", c->unknown);
  if (rc) {
    fprintf(stderr, "warp2api proto decode-stream: summary: %s\n", w2a_strerror(rc));
    return 1;
  }
  fwrite(b->data, 1, b->len, stdout);
  return 0;
}

int w2a_cli_proto_decode_stream(int argc, char **argv, w2a_config *cfg) {
  int i = 0;
  if (i < argc && !strcmp(argv[i], "proto")) i++;
  if (i < argc && !strcmp(argv[i], "decode-stream")) i++;
  stream_ctx c;
  memset(&c, 0, sizeof c);
  const char *path = NULL;
  for (; i < argc; i++) {
    if (!strcmp(argv[i], "--smd"))
      c.expand_smd = 1;
    else if (!strcmp(argv[i], "--no-unknown"))
      c.jo.skip_unknown = 1;
    else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "warp2api proto decode-stream: unknown option %s\n", argv[i]);
      usage(stderr);
      return 2;
    } else if (path) {
      usage(stderr);
      return 2;
    } else
      path = argv[i];
  }
  FILE *in = stdin;
  if (path && strcmp(path, "-") && !(in = fopen(path, "rb"))) {
    perror(path);
    return 1;
  }
  size_t max_event = cfg && cfg->sse_event_max_bytes > 0 ? (size_t)cfg->sse_event_max_bytes : 0;
  c.jo.struct_max_depth = cfg && cfg->struct_max_depth > 0 ? (size_t)cfg->struct_max_depth : 0;
  w2a_events_opts eo = {.struct_max_depth = c.jo.struct_max_depth,
                        .accumulate_max = max_event ? max_event : W2A_SSE_DEFAULT_MAX_EVENT};
  w2a_events_init(&c.st, &eo);
  w2a_buf_init(&c.line, 0);
  w2a_buf_init(&c.tools, eo.accumulate_max);
  w2a_sse d;
  w2a_sse_init(&d, max_event);
  w2a_err err = {0};
  int rc = 0, ret = 0;
  static char chunk[65536];
  size_t n;
  while (!rc && (n = fread(chunk, 1, sizeof chunk, in)) > 0)
    rc = w2a_sse_feed(&d, chunk, n, on_event, &c, &err);
  if (!rc && ferror(in)) {
    perror(path ? path : "stdin");
    ret = 1;
    goto out;
  }
  if (!rc) rc = w2a_sse_finish(&d, on_event, &c, &err);
  if (rc) {
    fprintf(stderr, "warp2api proto decode-stream: %s\n", c.err.msg[0] ? c.err.msg : err.msg);
    ret = 1;
    goto out;
  }
  if (d.unterminated)
    fprintf(stderr, "warp2api proto decode-stream: warning: the stream ended inside an event "
                    "(no blank line after it)\n");
  if (c.st.reason == W2A_FINISH_NONE)
    fprintf(stderr, "warp2api proto decode-stream: warning: no finished event\n");
  ret = print_summary(&c, d.unterminated);
out:
  if (fflush(stdout)) ret = 1;
  if (in != stdin) fclose(in);
  w2a_sse_free(&d);
  w2a_events_free(&c.st);
  w2a_buf_free(&c.line);
  w2a_buf_free(&c.tools);
  return ret;
}
