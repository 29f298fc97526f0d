/* fuzz_events_wire.c - w2a_events_feed_wire against unpack + w2a_events_feed on arbitrary
 * bytes as one ResponseEvent: the same items reported (kind, text, ids, reason), the same
 * return code, undecodable flag and error text, the same counters afterwards. The first
 * input byte picks the starting state (fresh, or after a finish) and the item at which
 * the callback stops the feed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proto/events.h"
#include "proto/pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct log {
  w2a_buf t;
  int stop_at, items;
} log_t;

static int on_ev(void *ud, const w2a_ev *e) {
  log_t *l = ud;
  w2a_buf_printf(&l->t, "%d|%d|", (int)e->kind, (int)e->reason);
  if (e->text) {
    w2a_buf_append(&l->t, e->text, e->len);
    w2a_buf_printf(&l->t, "|%.*s|%.*s", (int)e->message_id_len, e->message_id, (int)e->task_id_len,
                   e->task_id);
  }
  if (e->name) w2a_buf_printf(&l->t, "|%s|%s|%s", e->tool_call_id, e->name, e->args_json);
  w2a_buf_putc(&l->t, '\n');
  return ++l->items == l->stop_at ? 7 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int mode = size ? data[0] : 0;
  if (size) data++, size--;
  w2a_events s1, s2;
  log_t l1 = {.stop_at = mode >> 1 & 3}, l2 = {.stop_at = mode >> 1 & 3};
  w2a_err e1 = {0}, e2 = {0};
  w2a_events_init(&s1, NULL);
  w2a_events_init(&s2, NULL);
  w2a_buf_init(&l1.t, 0);
  w2a_buf_init(&l2.t, 0);
  if (mode & 1) s1.reason = s2.reason = W2A_FINISH_DONE;
  int bad1 = 0, bad2 = 0, r2;
  int r1 = w2a_events_feed_wire(&s1, data, size, NULL, on_ev, &l1, &bad1, &e1);
  ProtobufCMessage *m =
      w2a_pbjson_unpack(&warp__multi_agent__v1__response_event__descriptor, data, size, &e2);
  if (!m) {
    bad2 = 1, r2 = W2A_EINVAL;
  } else {
    r2 = w2a_events_feed(&s2, (const Warp__MultiAgent__V1__ResponseEvent *)m, on_ev, &l2, &e2);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  if (r1 != r2 || bad1 != bad2 || (r1 && strcmp(e1.msg, e2.msg))) abort();
  if (l1.t.len != l2.t.len || (l1.t.len && memcmp(l1.t.data, l2.t.data, l1.t.len))) abort();
  if (s1.events != s2.events || s1.after_finish != s2.after_finish ||
      s1.text_bytes != s2.text_bytes || s1.reasoning_bytes != s2.reasoning_bytes ||
      s1.tool_calls != s2.tool_calls || s1.reason != s2.reason)
    abort();
  w2a_buf_free(&l1.t);
  w2a_buf_free(&l2.t);
  w2a_events_free(&s1);
  w2a_events_free(&s2);
  return 0;
}
