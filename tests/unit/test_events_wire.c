/* test_events_wire.c - w2a_events_feed_wire against what it stands for, unpack then
 * w2a_events_feed: the same items reported (kind, text, ids), the same return code,
 * undecodable flag, error text and state afterwards. Inputs: every event of the capture;
 * append events built with fakewarp's writer (text and reasoning, several actions, empty
 * and missing fields, unknown fields); concatenations of two events (protobuf merging:
 * the last oneof member wins, repeated fields add up, a singular message twice is
 * refused); and byte-level damage of all of them. */
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/buf.h"
#include "fakewarp/events.h"
#include "fixtures.h"
#include "proto/events.h"
#include "proto/pbjson.h"
#include "proto/sse.h"
#include "t.h"

typedef struct log {
  w2a_buf t;
  int stop_at, items;
} log_t;

static int on_ev(void *ud, const w2a_ev *e) {
  log_t *l = ud;
  w2a_buf *b = &l->t;
  w2a_buf_printf(b, "%d|", (int)e->kind);
  if (e->text) {
    w2a_buf_append(b, e->text, e->len);
    w2a_buf_printf(b, "|%zu|%.*s|%.*s", e->len, (int)e->message_id_len, e->message_id,
                   (int)e->task_id_len, e->task_id);
  }
  if (e->conversation_id) w2a_buf_printf(b, "|%s|%s", e->conversation_id, e->request_id);
  if (e->kind == W2A_EV_FINISHED) w2a_buf_printf(b, "|%d", (int)e->reason);
  w2a_buf_puts(b, "\n");
  return ++l->items == l->stop_at ? 7 : 0;
}

static size_t n_cases, n_fast;

/* Both ways on the same bytes, from the same state (fresh, or after a finish). */
static void both(const uint8_t *p, size_t n, int stop_at, int finished) {
  w2a_events s1, s2;
  log_t l1 = {.stop_at = stop_at}, l2 = {.stop_at = stop_at};
  w2a_err e1 = {0}, e2 = {0};
  w2a_events_init(&s1, NULL);
  w2a_events_init(&s2, NULL);
  w2a_buf_init(&l1.t, 0);
  w2a_buf_init(&l2.t, 0);
  if (finished) s1.reason = s2.reason = W2A_FINISH_DONE;
  int bad1 = 0, bad2 = 0, r2;
  int r1 = w2a_events_feed_wire(&s1, p, n, NULL, on_ev, &l1, &bad1, &e1);
  ProtobufCMessage *m =
      w2a_pbjson_unpack(&warp__multi_agent__v1__response_event__descriptor, p, n, &e2);
  if (!m) {
    bad2 = 1, r2 = W2A_EINVAL;
  } else {
    r2 = w2a_events_feed(&s2, (const Warp__MultiAgent__V1__ResponseEvent *)m, on_ev, &l2, &e2);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  n_cases++;
  n_fast += s1.wire_read; /* read off the wire, not unpacked */
  int same = r1 == r2 && bad1 == bad2 && (!r1 || !strcmp(e1.msg, e2.msg)) && l1.t.len == l2.t.len &&
             (!l1.t.len || !memcmp(l1.t.data, l2.t.data, l1.t.len)) && s1.events == s2.events &&
             s1.after_finish == s2.after_finish && s1.text_bytes == s2.text_bytes &&
             s1.reasoning_bytes == s2.reasoning_bytes;
  T_CHECK(same);
  if (!same) {
    fprintf(stderr, "  wire rc %d bad %d \"%s\"\n%s  unpack rc %d bad %d \"%s\"\n%s  bytes:", r1,
            bad1, e1.msg, l1.t.data ? l1.t.data : "", r2, bad2, e2.msg, l2.t.data ? l2.t.data : "");
    for (size_t i = 0; i < n && i < 160; i++)
      fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
  }
  w2a_buf_free(&l1.t);
  w2a_buf_free(&l2.t);
  w2a_events_free(&s1);
  w2a_events_free(&s2);
}

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return n ? (uint32_t)(rng % n) : 0;
}

static void damaged(const uint8_t *p, size_t n) {
  uint8_t *m = malloc(n * 2 + 8);
  for (int k = 0; k < 40 && n; k++) {
    memcpy(m, p, n);
    size_t mn = n;
    switch (rnd(4)) {
    case 0: m[rnd((uint32_t)n)] ^= (uint8_t)(1u << rnd(8)); break;
    case 1: mn = rnd((uint32_t)n); break;
    case 2: {
      size_t a = rnd((uint32_t)n), len = rnd((uint32_t)(n - a)) + 1;
      memmove(m + n, m + a, len);
      mn = n + len;
      break;
    }
    default: m[rnd((uint32_t)n)] = (uint8_t)rnd(256);
    }
    both(m, mn, 0, 0);
  }
  free(m);
}

/* Every event of a stream, whole and damaged. */
static int feed_one(void *ud, const w2a_sse_event *ev) {
  (void)ud;
  if (ev->done) return 0;
  both(ev->data, ev->len, 0, 0);
  both(ev->data, ev->len, 1, 0);
  both(ev->data, ev->len, 0, 1);
  damaged(ev->data, ev->len);
  return 0;
}

static void sse_all(const char *in, size_t n) {
  w2a_sse d;
  w2a_err err = {0};
  w2a_sse_init(&d, 0);
  T_EQ_INT(w2a_sse_feed(&d, in, n, feed_one, NULL, &err), 0);
  T_EQ_INT(w2a_sse_finish(&d, feed_one, NULL, &err), 0);
  w2a_sse_free(&d);
}

static void test_capture(void) {
  size_t n;
  char *cap = fx_read("turn1-response.sse", &n);
  T_CHECK(cap != NULL);
  if (cap) sse_all(cap, n);
  free(cap);
}

/* Raw ResponseEvent bytes of one fakewarp agent event. */
static size_t agent_bytes(uint8_t *out, size_t cap, const char *text, size_t len, int reasoning,
                          int first, const char *task) {
  w2a_fake_ids ids;
  memset(&ids, 0, sizeof ids);
  strcpy(ids.task_id, task);
  strcpy(ids.request_id, "req");
  w2a_buf b;
  w2a_buf_init(&b, 0);
  w2a_fake_ev_agent(&b, 1, &ids, "msg-1", text, len, reasoning, first);
  /* "event:data\ndata:<base64>\n\n" */
  const char *d = strstr(b.data, "data:") + 5;
  size_t dl = strlen(d) - 2, bad = 0;
  long r = dl / 4 * 3 + 3 <= cap ? w2a_b64_decode(d, dl, out, &bad) : -1;
  w2a_buf_free(&b);
  return r < 0 ? 0 : (size_t)r;
}

static void test_built(void) {
  static const char *texts[] = {"hello", "", "line\nwith \"quotes\" and \xc3\xa9",
                                "0123456789abcdef0123456789abcdef"};
  uint8_t a[4096], b2[4096], cat[8192];
  for (int t = 0; t < 4; t++)
    for (int reasoning = 0; reasoning < 2; reasoning++)
      for (int first = 0; first < 2; first++) {
        size_t na = agent_bytes(a, sizeof a, texts[t], strlen(texts[t]), reasoning, first,
                                t ? "task-1" : "");
        T_CHECK(na > 0);
        both(a, na, 0, 0);
        both(a, na, 1, 0);
        damaged(a, na);
        /* Merged with a second event: two actions, or a oneof replaced. */
        for (int u = 0; u < 4; u++) {
          size_t nb =
              agent_bytes(b2, sizeof b2, texts[u], strlen(texts[u]), !reasoning, u & 1, "task-2");
          memcpy(cat, a, na);
          memcpy(cat + na, b2, nb);
          both(cat, na + nb, 0, 0);
          both(cat, na + nb, 2, 0);
          damaged(cat, na + nb);
        }
        /* Unknown fields at the top and after the event. */
        uint8_t unk[4200];
        unk[0] = 0xf8, unk[1] = 0x01, unk[2] = 0x05; /* field 31, varint 5 */
        memcpy(unk + 3, a, na);
        both(unk, na + 3, 0, 0);
        memcpy(unk, a, na);
        unk[na] = 0x22, unk[na + 1] = 0x00; /* field 4, empty bytes */
        both(unk, na + 2, 0, 0);
      }
  /* Five actions (more than the wire path takes at once). */
  size_t na = agent_bytes(a, sizeof a, "x", 1, 0, 0, "t"), at = 0;
  for (int k = 0; k < 5; k++, at += na)
    memcpy(cat + at, a, na);
  both(cat, at, 0, 0);
  both(NULL, 0, 0, 0);
}

/* The events of a streamed answer (every append_to_message_content of the capture, with
 * its update mask, and fakewarp's) are read off the wire: the allocator is never asked. */
static size_t n_allocs, n_appends;

/* w2a_events_feed_wire leaves what it unpacks with an allocator to that allocator (the
 * gateway's is an arena, reset per batch): this one counts and keeps every block, and
 * drop_all() is its reset. */
static void *kept[4096];
static size_t n_kept;
static void *count_alloc(void *ud, size_t n) {
  (void)ud;
  if (n_kept == sizeof kept / sizeof *kept) return NULL;
  n_allocs++;
  return kept[n_kept++] = malloc(n);
}
static void count_free(void *ud, void *p) { (void)ud, (void)p; } /* freed by drop_all() */
static void drop_all(void) {
  while (n_kept)
    free(kept[--n_kept]);
}

static int only_appends(const Warp__MultiAgent__V1__ResponseEvent *ev) {
  if (ev->type_case != WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_CLIENT_ACTIONS) return 0;
  for (size_t i = 0; i < ev->client_actions->n_actions; i++)
    if (ev->client_actions->actions[i]->action_case !=
        WARP__MULTI_AGENT__V1__CLIENT_ACTION__ACTION_APPEND_TO_MESSAGE_CONTENT)
      return 0;
  return ev->client_actions->n_actions > 0;
}

static int no_unpack_one(void *ud, const w2a_sse_event *sev) {
  (void)ud;
  if (sev->done) return 0;
  w2a_err err = {0};
  ProtobufCMessage *m = w2a_pbjson_unpack(&warp__multi_agent__v1__response_event__descriptor,
                                          sev->data, sev->len, &err);
  T_CHECK(m != NULL);
  if (!m) return 0;
  int appends = only_appends((const Warp__MultiAgent__V1__ResponseEvent *)m);
  protobuf_c_message_free_unpacked(m, NULL);
  ProtobufCAllocator a = {count_alloc, count_free, NULL};
  w2a_events s;
  log_t l = {0};
  int bad = 0;
  w2a_events_init(&s, NULL);
  w2a_buf_init(&l.t, 0);
  size_t before = n_allocs;
  T_EQ_INT(w2a_events_feed_wire(&s, sev->data, sev->len, &a, on_ev, &l, &bad, &err), 0);
  if (appends) {
    n_appends++;
    T_EQ_INT((int)(n_allocs - before), 0);
    T_CHECK(l.items > 0 || s.text_bytes + s.reasoning_bytes == 0);
  } else {
    T_CHECK(n_allocs > before); /* anything else is unpacked */
  }
  w2a_buf_free(&l.t);
  w2a_events_free(&s);
  drop_all();
  return 0;
}

static void test_no_unpack(void) {
  size_t n;
  char *cap = fx_read("turn1-response.sse", &n);
  T_CHECK(cap != NULL);
  w2a_sse d;
  w2a_err err = {0};
  w2a_sse_init(&d, 0);
  if (cap) T_EQ_INT(w2a_sse_feed(&d, cap, n, no_unpack_one, NULL, &err), 0);
  w2a_sse_free(&d);
  free(cap);
  T_CHECK(n_appends >= 3);
  /* fakewarp's append events, text and reasoning (the first agent event of a message is
   * an add_messages_to_task, which is unpacked). */
  uint8_t b[4096];
  for (int reasoning = 0; reasoning < 2; reasoning++) {
    size_t nb = agent_bytes(b, sizeof b, "fragment", 8, reasoning, 0, "task-1");
    T_CHECK(nb > 0);
    w2a_sse_event ev = {.data = b, .len = nb};
    size_t was = n_appends;
    no_unpack_one(NULL, &ev);
    T_EQ_INT((int)(n_appends - was), 1);
  }
}

int main(void) {
  T_RUN(test_capture);
  T_RUN(test_built);
  T_RUN(test_no_unpack);
  fprintf(stderr, "compared %zu events (%zu through the wire path)\n", n_cases, n_fast);
  T_CHECK(n_fast > 100);
  return t_done();
}
