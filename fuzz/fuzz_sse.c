/* fuzz_sse.c - libFuzzer target for the upstream path: SSE decoder -> protobuf-c unpack
 * -> events interpreter, plus server_message_data expansion and an encoder round trip.
 *
 * Input layout: byte 0 and 1 pick two split points (as fractions of the rest), byte 2
 * holds flags (bit 0: a small 512-byte event cap instead of 64 KiB; bit 1: feed one byte
 * at a time for the first 64 bytes). The rest is the stream. Properties checked beyond
 * "no crash, no leak": every decoded payload, re-framed by w2a_sse_write_event and
 * decoded again, comes back identical; the decoder's offset equals the bytes fed; and
 * the stream fed whole and fed a byte at a time gives the same events and outcome
 * (whole events in one chunk take w2a_sse_feed's fast path, single bytes never do). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/events.h"
#include "proto/pbjson.h"
#include "proto/smd.h"
#include "proto/sse.h"

typedef struct fctx {
  w2a_events st;
  w2a_buf frame;
  size_t chars; /* bytes of text seen, to make the callback read every delta */
} fctx;

static int on_item(void *ud, const w2a_ev *ev) {
  fctx *c = ud;
  if (ev->kind == W2A_EV_TEXT || ev->kind == W2A_EV_REASONING) c->chars += ev->len;
  if (ev->kind == W2A_EV_TOOL_CALL) c->chars += strlen(ev->name) + ev->args_len;
  return 0;
}

static int copy_payload(void *ud, const w2a_sse_event *ev) {
  w2a_buf *b = ud;
  return w2a_buf_append(b, ev->data, ev->len);
}

static void smd_messages(const Warp__MultiAgent__V1__ClientAction *a) {
  const Warp__MultiAgent__V1__Message *const *msgs = NULL;
  size_t n = 0;
  if (a->action_case == WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_ADD_MESSAGES_TO_TASK &&
      a->add_messages_to_task) {
    msgs = (const Warp__MultiAgent__V1__Message *const *)a->add_messages_to_task->messages;
    n = a->add_messages_to_task->n_messages;
  }
  for (size_t i = 0; i < n; i++) {
    const char *s = msgs[i]->server_message_data;
    if (!s || !s[0]) continue;
    w2a_smd m;
    if (w2a_smd_expand(s, strlen(s), &m, NULL) == 0) {
      w2a_buf b;
      w2a_buf_init(&b, 0);
      if (w2a_smd_collapse(&m, &b, NULL) == 0 && m.lossless &&
          (b.len != strlen(s) || memcmp(b.data, s, b.len)))
        abort(); /* "lossless" must mean exactly that */
      w2a_buf_free(&b);
      w2a_smd_free(&m);
    }
  }
}

static int on_event(void *ud, const w2a_sse_event *ev) {
  fctx *c = ud;
  if (ev->done) return 0;
  /* round trip through the encoder */
  w2a_buf_reset(&c->frame);
  if (w2a_sse_write_event(&c->frame, ev->data, ev->len, (int)(ev->len & 1)) == 0) {
    w2a_sse d2;
    w2a_buf got;
    w2a_buf_init(&got, 0);
    w2a_sse_init(&d2, 0);
    if (w2a_sse_feed(&d2, c->frame.data, c->frame.len, copy_payload, &got, NULL) ||
        w2a_sse_finish(&d2, copy_payload, &got, NULL) || got.len != ev->len ||
        (ev->len && memcmp(got.data, ev->data, ev->len)))
      abort();
    w2a_sse_free(&d2);
    w2a_buf_free(&got);
  }
  Warp__MultiAgent__V1__ResponseEvent *e =
      warp__multi_agent__v1__response_event__unpack(NULL, ev->len, ev->data);
  if (!e) return 0;
  (void)w2a_pb_count_unknown(&e->base);
  if (e->type_case == WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS &&
      e->client_actions)
    for (size_t i = 0; i < e->client_actions->n_actions; i++)
      smd_messages(e->client_actions->actions[i]);
  w2a_err err;
  (void)w2a_events_feed(&c->st, e, on_item, c, &err);
  warp__multi_agent__v1__response_event__free_unpacked(e, NULL);
  return 0;
}

/* Every event as "name|offset|eof|done|len|bytes\n", to compare two ways of feeding. */
static int log_event(void *ud, const w2a_sse_event *ev) {
  w2a_buf *b = ud;
  w2a_buf_printf(b, "%s|%llu|%d|%d|%zu|", ev->name, (unsigned long long)ev->offset, ev->eof,
                 ev->done, ev->len);
  w2a_buf_append(b, ev->data, ev->len);
  w2a_buf_putc(b, '\n');
  return b->len > (1u << 20) ? 9 : 0; /* a callback that stops the feed, now and then */
}

/* The stream in one piece (where whole events take the fast path) and one byte at a time
 * (where nothing does) must give the same events, offsets, result and error text. */
static void whole_vs_bytes(const char *p, size_t n, size_t cap) {
  w2a_sse d1, d2;
  w2a_buf l1, l2;
  w2a_err e1 = {0}, e2 = {0};
  w2a_sse_init(&d1, cap);
  w2a_sse_init(&d2, cap);
  w2a_buf_init(&l1, 0);
  w2a_buf_init(&l2, 0);
  int r1 = w2a_sse_feed(&d1, p, n, log_event, &l1, &e1), r2 = 0;
  if (!r1) r1 = w2a_sse_finish(&d1, log_event, &l1, &e1);
  for (size_t i = 0; i < n && !r2; i++)
    r2 = w2a_sse_feed(&d2, p + i, 1, log_event, &l2, &e2);
  if (!r2) r2 = w2a_sse_finish(&d2, log_event, &l2, &e2);
  if (r1 != r2 || (r1 && strcmp(e1.msg, e2.msg)) || l1.len != l2.len ||
      (l1.len && memcmp(l1.data, l2.data, l1.len)) || d1.events != d2.events ||
      (!r1 && d1.offset != d2.offset))
    abort();
  w2a_buf_free(&l1);
  w2a_buf_free(&l2);
  w2a_sse_free(&d1);
  w2a_sse_free(&d2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  size_t a = (size_t)data[0], b = (size_t)data[1];
  int flags = data[2];
  const char *p = (const char *)data + 3;
  size_t n = size - 3;
  size_t cut1 = n * a / 255, cut2 = n * b / 255;
  if (cut1 > cut2) {
    size_t t = cut1;
    cut1 = cut2;
    cut2 = t;
  }
  fctx c;
  memset(&c, 0, sizeof c);
  w2a_events_opts eo = {.struct_max_depth = 16, .accumulate_max = 4096};
  w2a_events_init(&c.st, &eo);
  w2a_buf_init(&c.frame, 0);
  w2a_sse d;
  w2a_sse_init(&d, flags & 1 ? 512 : 65536);
  w2a_err err;
  int rc = 0;
  size_t at = 0;
  if (flags & 2)
    for (; at < n && at < 64 && !rc; at++)
      rc = w2a_sse_feed(&d, p + at, 1, on_event, &c, &err);
  size_t cuts[3] = {cut1, cut2, n};
  for (int i = 0; i < 3 && !rc; i++) {
    if (cuts[i] <= at) continue;
    rc = w2a_sse_feed(&d, p + at, cuts[i] - at, on_event, &c, &err);
    at = cuts[i];
  }
  if (!rc) {
    if (d.offset != n) abort();
    rc = w2a_sse_finish(&d, on_event, &c, &err);
  }
  w2a_sse_free(&d);
  w2a_events_free(&c.st);
  w2a_buf_free(&c.frame);
  if (n <= 4096) whole_vs_bytes(p, n, flags & 1 ? 512 : 65536);
  return 0;
}
