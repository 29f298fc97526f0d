/* bench_stream.c - the gateway's per-event CPU on a bursty text stream, in process.
 *
 * gateway_bench.sh's burst case is one `stream: true` completion whose upstream sends
 * N text events (16 bytes each) as fast as it can. This harness builds that stream with
 * fakewarp's own event writers (init, create_task, the first agent_output in
 * add_messages_to_task, N-1 append_to_message_content, finished{done}), then runs the
 * gateway's per-event path on it: w2a_sse_feed in 16 KiB reads (what curl hands
 * upstream.c) -> w2a_pbjson_unpack_with into a per-event arena -> w2a_events_feed ->
 * w2a_gw_up_convert -> w2a_gw_resp_feed into the output buffer, which is reset after
 * every read (chat.c writes it to the client there). The callbacks copy upstream.c's
 * on_sse/on_ev and chat.c's on_up_event minus the libuv/pool calls, and the arena is
 * common/arena.c set up as upstream.c sets it up, so what is left out is only curl, the
 * socket writes and timers.
 *
 * Output: ns/event (median of RUNS) and an FNV-1a digest of every byte written to the
 * client (the chunk id is fixed, so the digest is stable across builds: a change that
 * alters the output changes it). For deterministic instruction counts run it under
 * callgrind with collection limited to the processing:
 *   valgrind --tool=callgrind --toggle-collect=run_stream --toggle-collect=digest \
 *     bench_stream 5000 1
 * and divide Ir by the events (the line "events" prints). Usage:
 * bench_stream [EVENTS(5000)] [RUNS(7)] [TEXT_SIZE(16)] [wire]; with "wire" each event goes
 * through w2a_events_feed_wire (what upstream.c's on_sse would call instead of unpack +
 * w2a_events_feed, see events.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/util.h"
#include "fakewarp/events.h"
#include "fakewarp/scenario.h"
#include "gateway/map_response.h"
#include "gateway/upstream.h"
#include "proto/events.h"
#include "proto/pbjson.h"
#include "proto/sse.h"
#include "response.pb-c.h"

#define READ_SIZE 16384
#define ARENA_BLOCK 8192
#define ARENA_KEEP (64u << 10)
#define STOP_FINISHED 1001

typedef struct ctx {
  w2a_sse sse;
  w2a_events ev;
  w2a_arena ar; /* as upstream.c's: rewound after each event */
  ProtobufCAllocator pa;
  w2a_gw_resp resp;
  w2a_buf out;
  uint64_t events, out_bytes, digest;
  int finished;
} ctx;

/* Not the gateway's work: callgrind leaves it out (--toggle-collect=digest). */
__attribute__((noinline)) static void digest(ctx *c, const char *p, size_t n) {
  uint64_t h = c->digest;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
  c->digest = h;
  c->out_bytes += n;
}

static int on_ev(void *ud, const w2a_ev *in) {
  ctx *c = ud;
  w2a_gw_event ev;
  if (!w2a_gw_up_convert(in, &ev)) return 0;
  if (w2a_gw_resp_feed(&c->resp, &ev, &c->out)) return 1;
  if (ev.kind == W2A_GW_EV_FINISH) {
    c->finished = 1;
    return STOP_FINISHED;
  }
  return 0;
}

static int use_wire; /* 5th argument "wire": w2a_events_feed_wire instead (see the header) */

static int on_sse(void *ud, const w2a_sse_event *sev) {
  ctx *c = ud;
  w2a_err err = {0};
  c->events++;
  if (sev->done) return 0;
  if (use_wire) {
    int bad = 0;
    int rc = w2a_events_feed_wire(&c->ev, sev->data, sev->len, &c->pa, on_ev, c, &bad, &err);
    w2a_arena_reset(&c->ar);
    if (bad) fprintf(stderr, "bench_stream: %s\n", err.msg);
    return rc;
  }
  Warp__MultiAgent__V1__ResponseEvent *pe =
      (Warp__MultiAgent__V1__ResponseEvent *)w2a_pbjson_unpack_with(
          &warp__multi_agent__v1__response_event__descriptor, sev->data, sev->len, &c->pa, &err);
  if (!pe) {
    fprintf(stderr, "bench_stream: %s\n", err.msg);
    return W2A_EINVAL;
  }
  int rc = w2a_events_feed(&c->ev, pe, on_ev, c, &err);
  w2a_arena_reset(&c->ar);
  return rc;
}

/* The measured part (callgrind --toggle-collect=run_stream). noinline keeps it a frame. */
__attribute__((noinline)) static int run_stream(ctx *c, const char *in, size_t n) {
  w2a_err err = {0};
  int rc = 0;
  for (size_t at = 0; at < n && !rc; at += READ_SIZE) {
    rc = w2a_sse_feed(&c->sse, in + at, n - at < READ_SIZE ? n - at : READ_SIZE, on_sse, c, &err);
    digest(c, c->out.data, c->out.len); /* chat.c: one write per upstream read */
    w2a_buf_reset(&c->out);
  }
  if (rc == STOP_FINISHED) {
    rc = w2a_gw_resp_stream_end(&c->resp, &c->out);
    digest(c, c->out.data, c->out.len);
    w2a_buf_reset(&c->out);
  } else if (!rc) {
    rc = W2A_EINVAL; /* no finished event */
  }
  if (rc) fprintf(stderr, "bench_stream: stream failed (%d): %s\n", rc, err.msg);
  return rc;
}

static int build_stream(w2a_buf *s, size_t events, size_t size) {
  static const char filler[] = "The quick brown fox jumps over the lazy dog. ";
  w2a_fake_ids ids;
  memset(&ids, 0, sizeof ids);
  strcpy(ids.conversation_id, "4f1c2a9e-0b7d-4c55-9a3e-6f0d2b1c8e77");
  strcpy(ids.request_id, "9d8e7f6a-5b4c-4d3e-8f2a-1b0c9d8e7f6a");
  strcpy(ids.task_id, "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  ids.ts_s = 1764000000;
  ids.ts_ns = 123456789;
  const char *msg = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9";
  char *text = malloc(size + sizeof filler);
  if (!text) return W2A_ENOMEM;
  int rc = w2a_fake_ev_init(s, 1, &ids);
  if (!rc) rc = w2a_fake_ev_create_task(s, 1, &ids);
  for (size_t i = 0; !rc && i < events; i++) {
    for (size_t k = 0; k < size; k++)
      text[k] = filler[(i * size + k) % (sizeof filler - 1)];
    rc = w2a_fake_ev_agent(s, 1, &ids, msg, text, size, 0, i == 0);
  }
  w2a_fake_finish fin = {.reason = W2A_FAKE_FIN_DONE, .context_tokens = 1000, .request_cost = 1};
  if (!rc) rc = w2a_fake_ev_finished(s, 1, &fin);
  free(text);
  return rc;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t events = argc > 1 ? strtoul(argv[1], NULL, 10) : 5000;
  int runs = argc > 2 ? atoi(argv[2]) : 7;
  size_t size = argc > 3 ? strtoul(argv[3], NULL, 10) : 16;
  use_wire = argc > 4 && !strcmp(argv[4], "wire");
  if (!events || runs < 1 || runs > 99 || !size || size > 65536) {
    fputs("usage: bench_stream [EVENTS] [RUNS(1-99)] [TEXT_SIZE] [wire]\n", stderr);
    return 2;
  }
  w2a_buf s;
  w2a_buf_init(&s, 0);
  if (build_stream(&s, events, size)) return 1;
  uint64_t t[99], nev = 0, outb = 0, dig = 0;
  for (int r = 0; r < runs; r++) {
    ctx c;
    memset(&c, 0, sizeof c);
    w2a_arena_init(&c.ar, ARENA_BLOCK, ARENA_KEEP, NULL, 0);
    c.pa.alloc = w2a_arena_pb_alloc;
    c.pa.free = w2a_arena_pb_free;
    c.pa.allocator_data = &c.ar;
    c.digest = 0xcbf29ce484222325ull;
    w2a_sse_init(&c.sse, 0);
    w2a_events_init(&c.ev, NULL);
    w2a_gw_resp_init(&c.resp, "claude-4.5-opus", 1764000000, 1, 1, 10, 0);
    memcpy(c.resp.id, "chatcmpl-000000000000000000000000", 34);
    w2a_buf_init(&c.out, 0);
    uint64_t t0 = w2a_mono_ns();
    int rc = run_stream(&c, s.data, s.len);
    t[r] = w2a_mono_ns() - t0;
    if (rc) return 1;
    nev = c.events, outb = c.out_bytes, dig = c.digest;
    w2a_sse_free(&c.sse);
    w2a_events_free(&c.ev);
    w2a_arena_release(&c.ar);
    w2a_gw_resp_free(&c.resp);
    w2a_buf_free(&c.out);
  }
  qsort(t, (size_t)runs, sizeof *t, cmp_u64);
  printf("events %llu  stream %zu bytes  client %llu bytes  digest %016llx\n",
         (unsigned long long)nev, s.len, (unsigned long long)outb, (unsigned long long)dig);
  printf("%.0f ns/event (median of %d)\n", (double)t[runs / 2] / (double)nev, runs);
  w2a_buf_free(&s);
  return 0;
}
