/* bench_sse.c - event-stream decoding throughput on the real capture.
 *
 * The 14-event capture is repeated COPIES times (default 10,000: 140,000 events, 32 MB)
 * and fed in 16 KiB chunks, as a socket would deliver it. Three measurements, each the
 * median of RUNS runs:
 *   decode         SSE framing + base64 (the payload handed to a callback)
 *   decode+unpack  ... + protobuf-c unpack and free of every ResponseEvent
 *   full           ... + the w2a_events interpreter (what the gateway does per event)
 * Usage: bench_sse [COPIES] [RUNS]; fixture from $W2A_FIXTURES, $W2A_SRC/../shared/...,
 * or /work/shared/fixtures/warp-capture. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"
#include "proto/events.h"
#include "proto/sse.h"

#include "../tests/unit/fixtures.h"

enum { MODE_DECODE, MODE_UNPACK, MODE_FULL };

typedef struct ctx {
  int mode;
  uint64_t events, bytes, failures;
  w2a_events st;
} ctx;

static int on_event(void *ud, const w2a_sse_event *ev) {
  ctx *c = ud;
  c->events++;
  c->bytes += ev->len;
  if (c->mode == MODE_DECODE) return 0;
  Warp__MultiAgent__V1__ResponseEvent *e =
      warp__multi_agent__v1__response_event__unpack(NULL, ev->len, ev->data);
  if (!e) {
    c->failures++;
    return 0;
  }
  if (c->mode == MODE_FULL) {
    if (e->type_case == WARP__MULTI_AGENT__V1__RESPONSE_EVENT__TYPE_INIT) {
      /* each copy of the capture is a new stream */
      w2a_events_free(&c->st);
      w2a_events_init(&c->st, NULL);
    }
    w2a_events_feed(&c->st, e, NULL, NULL, NULL);
  }
  warp__multi_agent__v1__response_event__free_unpacked(e, NULL);
  return 0;
}

static double run_once(const char *in, size_t n, int mode, uint64_t *events) {
  ctx c;
  memset(&c, 0, sizeof c);
  c.mode = mode;
  w2a_events_init(&c.st, NULL);
  w2a_sse d;
  w2a_sse_init(&d, 0);
  w2a_err err = {0};
  uint64_t t0 = w2a_mono_ns();
  int rc = 0;
  for (size_t at = 0; at < n && !rc; at += 16384)
    rc = w2a_sse_feed(&d, in + at, n - at < 16384 ? n - at : 16384, on_event, &c, &err);
  if (!rc) rc = w2a_sse_finish(&d, on_event, &c, &err);
  uint64_t t1 = w2a_mono_ns();
  if (rc || c.failures) {
    fprintf(stderr, "bench_sse: decode failed: %s (%llu unpack failures)\n", err.msg,
            (unsigned long long)c.failures);
    exit(1);
  }
  w2a_sse_free(&d);
  w2a_events_free(&c.st);
  *events = c.events;
  return (double)(t1 - t0) / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  size_t copies = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
  int runs = argc > 2 ? atoi(argv[2]) : 7;
  if (runs < 1 || runs > 99 || !copies) {
    fputs("usage: bench_sse [COPIES] [RUNS(1-99)]\n", stderr);
    return 2;
  }
  size_t on;
  char *one = fx_read("turn1-response.sse", &on);
  if (!one) return 1;
  w2a_buf all;
  w2a_buf_init(&all, 0);
  for (size_t i = 0; i < copies; i++)
    if (w2a_buf_append(&all, one, on)) return 1;
  free(one);

  static const char *const names[] = {"decode (SSE+base64)", "decode+unpack",
                                      "decode+unpack+events"};
  for (int mode = MODE_DECODE; mode <= MODE_FULL; mode++) {
    double t[99];
    uint64_t events = 0;
    for (int r = 0; r < runs; r++)
      t[r] = run_once(all.data, all.len, mode, &events);
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = t[runs / 2];
    printf("%-22s %8llu events  %7.1f ms  %10.0f events/s  %7.1f MB/s (median of %d)\n",
           names[mode], (unsigned long long)events, med * 1e3, (double)events / med,
           (double)all.len / med / 1e6, runs);
  }
  w2a_buf_free(&all);
  return 0;
}
