/* test_sse.c - the event-stream decoder: the real capture at every split point, in
 * every line-ending and framing variant, at a guard page; bad input of every kind;
 * the encoder reproducing the capture byte for byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/buf.h"
#include "fixtures.h"
#include "proto/sse.h"
#include "t.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Every event becomes a record in a transcript, so two decodings compare with memcmp. */
typedef struct rec {
  w2a_buf t;
  int with_offsets;
  int count, done, eof;
  int stop_after; /* callback returns 99 after this many events (0: never) */
} rec;

static void rec_init(rec *r, int with_offsets) {
  memset(r, 0, sizeof *r);
  w2a_buf_init(&r->t, 0);
  r->with_offsets = with_offsets;
}

static int on_event(void *ud, const w2a_sse_event *ev) {
  rec *r = ud;
  r->count++;
  r->done += ev->done;
  r->eof += ev->eof;
  w2a_buf_printf(&r->t, "[%zu:%s|%d%d|", ev->name_len, ev->name, ev->done, ev->eof);
  if (r->with_offsets) w2a_buf_printf(&r->t, "@%llu|", (unsigned long long)ev->offset);
  w2a_buf_printf(&r->t, "%zu:", ev->len);
  if (ev->len) w2a_buf_append(&r->t, ev->data, ev->len);
  w2a_buf_puts(&r->t, "]");
  if (r->stop_after && r->count >= r->stop_after) return 99;
  return 0;
}

/* Decode `in` cut at the given points (sorted, within [0,n]); 0 or the first error. */
static int decode_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts, size_t max,
                       rec *r, w2a_err *err) {
  w2a_sse d;
  w2a_sse_init(&d, max);
  size_t at = 0;
  int rc = 0;
  for (size_t i = 0; i <= ncuts && !rc; i++) {
    size_t to = i < ncuts ? cuts[i] : n;
    rc = w2a_sse_feed(&d, in + at, to - at, on_event, r, err);
    at = to;
  }
  if (!rc) rc = w2a_sse_finish(&d, on_event, r, err);
  w2a_sse_free(&d);
  return rc;
}

static int decode_all(const char *in, size_t n, rec *r, w2a_err *err) {
  return decode_cuts(in, n, NULL, 0, 0, r, err);
}

/* Replace every occurrence of `from` (nf bytes) by `to`. */
static char *subst(const char *in, size_t n, const char *from, const char *to, size_t *on) {
  w2a_buf b;
  w2a_buf_init(&b, 0);
  size_t nf = strlen(from);
  for (size_t i = 0; i < n;) {
    if (i + nf <= n && !memcmp(in + i, from, nf)) {
      w2a_buf_puts(&b, to);
      i += nf;
    } else
      w2a_buf_putc(&b, in[i++]);
  }
  return w2a_buf_steal(&b, on);
}

/* Rewrite each "data:<value>" line of the (LF) capture through fn. */
typedef void (*data_fn)(w2a_buf *out, const char *v, size_t n);
static char *map_data(const char *in, size_t n, data_fn fn, size_t *on) {
  w2a_buf b;
  w2a_buf_init(&b, 0);
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(in + i, '\n', n - i);
    size_t e = nl ? (size_t)(nl - in) : n;
    if (e - i >= 5 && !memcmp(in + i, "data:", 5))
      fn(&b, in + i + 5, e - i - 5);
    else
      w2a_buf_append(&b, in + i, e - i);
    if (nl) w2a_buf_putc(&b, '\n');
    i = e + 1;
  }
  return w2a_buf_steal(&b, on);
}

static void swap_padding(w2a_buf *b, const char *v, size_t n) {
  w2a_buf_puts(b, "data:");
  size_t m = n;
  while (m && v[m - 1] == '=')
    m--;
  w2a_buf_append(b, v, m);
  if (m == n)
    while (m++ % 4)
      w2a_buf_putc(b, '=');
}

static void split_lines(w2a_buf *b, const char *v, size_t n) {
  for (size_t i = 0; i < n; i += 7) {
    if (i) w2a_buf_putc(b, '\n');
    w2a_buf_puts(b, i % 2 ? "data: " : "data:"); /* mix both separators */
    w2a_buf_append(b, v + i, n - i < 7 ? n - i : 7);
  }
}

static void std_alphabet(w2a_buf *b, const char *v, size_t n) {
  w2a_buf_puts(b, "data:");
  for (size_t i = 0; i < n; i++)
    w2a_buf_putc(b, v[i] == '-' ? '+' : v[i] == '_' ? '/' : v[i]);
}

static void with_noise(w2a_buf *b, const char *v, size_t n) {
  w2a_buf_puts(b, ": keep-alive\nid: 42\nretry:1000\nfoo:bar\ndata:");
  w2a_buf_append(b, v, n);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* Every split point, byte by byte and random multi-splits must give `want`. */
static void check_splits(const char *in, size_t n, const rec *want) {
  w2a_err err = {0};
  int bad = 0;
  for (size_t k = 0; k <= n; k++) {
    rec r;
    rec_init(&r, 1);
    int rc = decode_cuts(in, n, &k, 1, 0, &r, &err);
    if (rc || r.t.len != want->t.len || memcmp(r.t.data, want->t.data, r.t.len)) {
      if (!bad++) fprintf(stderr, "split at %zu differs (rc %d %s)\n", k, rc, err.msg);
    }
    w2a_buf_free(&r.t);
  }
  T_EQ_INT(bad, 0);

  size_t *cuts = malloc((n + 1) * sizeof *cuts);
  for (size_t k = 0; k < n; k++)
    cuts[k] = k;
  rec r;
  rec_init(&r, 1);
  T_EQ_INT(decode_cuts(in, n, cuts, n, 0, &r, &err), 0);
  T_EQ_MEM(r.t.data, r.t.len, want->t.data, want->t.len);
  w2a_buf_free(&r.t);

  bad = 0;
  for (int it = 0; it < 300; it++) {
    size_t nc = rng() % 40;
    for (size_t i = 0; i < nc; i++)
      cuts[i] = (size_t)(rng() % (n + 1));
    qsort(cuts, nc, sizeof *cuts, cmp_size);
    rec_init(&r, 1);
    int rc = decode_cuts(in, n, cuts, nc, 0, &r, &err);
    if (rc || r.t.len != want->t.len || memcmp(r.t.data, want->t.data, r.t.len)) bad++;
    w2a_buf_free(&r.t);
  }
  T_EQ_INT(bad, 0);
  free(cuts);
}

/* ---- the capture -------------------------------------------------------------------- */

static char *cap;
static size_t cap_n;
static rec base; /* the capture decoded in one piece, without offsets */

static void test_capture_whole(void) {
  w2a_err err = {0};
  rec_init(&base, 0);
  T_EQ_INT(decode_all(cap, cap_n, &base, &err), 0);
  T_EQ_INT(base.count, 14);
  T_EQ_INT(base.done, 0);
  T_EQ_INT(base.eof, 0);
  T_CHECK(strstr(base.t.data, "[4:data|00|") == base.t.data);
  /* offsets of the first two events: line 2 and line 5 of the file */
  rec r;
  rec_init(&r, 1);
  T_EQ_INT(decode_all(cap, cap_n, &r, &err), 0);
  T_CHECK(memmem(r.t.data, r.t.len, "|@11|", 5) != NULL);
  T_CHECK(memmem(r.t.data, r.t.len, "|@133|", 6) != NULL);
  w2a_buf_free(&r.t);
}

/* Whole events in one chunk are read in one piece (w2a_sse_feed's fast path); the
 * split tests hold it to the line-by-line path, which a byte at a time always takes. */
static void test_capture_fast_path(void) {
  w2a_sse d;
  w2a_err err = {0};
  rec r;
  rec_init(&r, 1);
  w2a_sse_init(&d, 0);
  T_EQ_INT(w2a_sse_feed(&d, cap, cap_n, on_event, &r, &err), 0);
  T_EQ_INT((int)d.events, 14);
  T_EQ_INT((int)d.whole, 14);
  w2a_sse_free(&d);
  w2a_sse_init(&d, 0);
  for (size_t i = 0; i < cap_n; i++)
    T_EQ_INT(w2a_sse_feed(&d, cap + i, 1, NULL, NULL, &err), 0);
  T_EQ_INT((int)d.events, 14);
  T_EQ_INT((int)d.whole, 0);
  w2a_sse_free(&d);
  size_t n;
  char *crlf = subst(cap, cap_n, "\n", "\r\n", &n); /* CR line ends: line by line */
  w2a_sse_init(&d, 0);
  T_EQ_INT(w2a_sse_feed(&d, crlf, n, NULL, NULL, &err), 0);
  T_EQ_INT((int)d.events, 14);
  T_EQ_INT((int)d.whole, 0);
  w2a_sse_free(&d);
  free(crlf);
  w2a_buf_free(&r.t);
}

static void test_capture_splits(void) {
  rec want;
  rec_init(&want, 1);
  w2a_err err = {0};
  T_EQ_INT(decode_all(cap, cap_n, &want, &err), 0);
  check_splits(cap, cap_n, &want);
  w2a_buf_free(&want.t);
}

/* A variant must give the same events as the capture, also at every split. */
static void check_variant(const char *name, char *v, size_t vn) {
  rec want;
  rec_init(&want, 0);
  w2a_err err = {0};
  int rc = decode_all(v, vn, &want, &err);
  if (rc) fprintf(stderr, "variant %s: %s\n", name, err.msg);
  T_EQ_INT(rc, 0);
  T_EQ_INT(want.count, 14);
  if (want.t.len != base.t.len) fprintf(stderr, "variant %s differs\n", name);
  T_EQ_MEM(want.t.data, want.t.len, base.t.data, base.t.len);
  rec withoff;
  rec_init(&withoff, 1);
  decode_all(v, vn, &withoff, &err);
  check_splits(v, vn, &withoff);
  w2a_buf_free(&withoff.t);
  w2a_buf_free(&want.t);
  free(v);
}

static void test_variants(void) {
  size_t n;
  char *v;
  v = subst(cap, cap_n, "\n", "\r\n", &n);
  check_variant("crlf", v, n);
  v = subst(cap, cap_n, "\n", "\r", &n);
  check_variant("cr", v, n);
  v = subst(cap, cap_n, ":", ": ", &n);
  check_variant("space", v, n);
  v = map_data(cap, cap_n, swap_padding, &n);
  T_CHECK(n != cap_n);
  check_variant("padding-swapped", v, n);
  v = map_data(cap, cap_n, split_lines, &n);
  check_variant("multi-line", v, n);
  v = map_data(cap, cap_n, std_alphabet, &n);
  check_variant("standard-alphabet", v, n);
  v = map_data(cap, cap_n, with_noise, &n);
  check_variant("comments-id-retry", v, n);

  /* Mixed line endings within one stream. */
  w2a_buf b;
  w2a_buf_init(&b, 0);
  static const char *const eols[] = {"\n", "\r\n", "\r"};
  for (size_t i = 0, k = 0; i < cap_n; i++) {
    if (cap[i] == '\n')
      w2a_buf_puts(&b, eols[k++ % 3]);
    else
      w2a_buf_putc(&b, cap[i]);
  }
  v = w2a_buf_steal(&b, &n);
  check_variant("mixed-eol", v, n);

  /* No trailing blank line: the last event comes from finish, flagged eof. */
  rec r;
  rec_init(&r, 0);
  w2a_err err = {0};
  w2a_sse d;
  w2a_sse_init(&d, 0);
  T_EQ_INT(memcmp(cap + cap_n - 3, "\n\n\n", 3), 0); /* the file ends with an extra LF */
  T_EQ_INT(w2a_sse_feed(&d, cap, cap_n - 2, on_event, &r, &err), 0);
  T_EQ_INT(r.count, 13);
  T_EQ_INT(w2a_sse_finish(&d, on_event, &r, &err), 0);
  T_EQ_INT(r.count, 14);
  T_EQ_INT(r.eof, 1);
  T_EQ_INT(d.unterminated, 1);
  w2a_sse_free(&d);
  w2a_buf_free(&r.t);
  /* ... and without its last line ending either. */
  rec_init(&r, 0);
  w2a_sse_init(&d, 0);
  T_EQ_INT(w2a_sse_feed(&d, cap, cap_n - 3, on_event, &r, &err), 0);
  T_EQ_INT(w2a_sse_finish(&d, on_event, &r, &err), 0);
  T_EQ_INT(r.count, 14);
  T_EQ_INT(r.eof, 1);
  w2a_sse_free(&d);
  w2a_buf_free(&r.t);
}

static void test_done_sentinel(void) {
  size_t n = cap_n + 14;
  char *v = malloc(n);
  memcpy(v, cap, cap_n);
  memcpy(v + cap_n, "data: [DONE]\n\n", 14);
  rec r;
  rec_init(&r, 1);
  w2a_err err = {0};
  T_EQ_INT(decode_all(v, n, &r, &err), 0);
  T_EQ_INT(r.count, 15);
  T_EQ_INT(r.done, 1);
  T_CHECK(memmem(r.t.data, r.t.len, "[0:|10|@3245|0:]", 16) != NULL);
  check_splits(v, n, &r);
  w2a_buf_free(&r.t);
  free(v);
}

/* The input ends exactly at a PROT_NONE page, so any read past it faults. */
static void test_guard_page(void) {
  long pg = sysconf(_SC_PAGESIZE);
  size_t span = (cap_n + (size_t)pg - 1) / (size_t)pg * (size_t)pg;
  char *m =
      mmap(NULL, span + (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  T_CHECK(m != MAP_FAILED);
  if (m == MAP_FAILED) return;
  T_EQ_INT(mprotect(m + span, (size_t)pg, PROT_NONE), 0);
  w2a_err err = {0};
  /* every prefix of the capture, ending at the guard page, then finish */
  int bad = 0;
  for (size_t k = 0; k <= cap_n; k++) {
    char *at = m + span - k;
    memcpy(at, cap, k);
    rec r;
    rec_init(&r, 0);
    w2a_sse d;
    w2a_sse_init(&d, 0);
    int rc = w2a_sse_feed(&d, at, k, on_event, &r, &err);
    if (!rc) w2a_sse_finish(&d, on_event, &r, &err); /* may fail: cut base64 */
    if (k == cap_n && r.t.len != base.t.len) bad++;
    w2a_sse_free(&d);
    w2a_buf_free(&r.t);
  }
  T_EQ_INT(bad, 0);
  /* byte by byte, each byte the last one before the guard */
  rec r;
  rec_init(&r, 0);
  w2a_sse d;
  w2a_sse_init(&d, 0);
  int rc = 0;
  for (size_t i = 0; i < cap_n && !rc; i++) {
    m[span - 1] = cap[i];
    rc = w2a_sse_feed(&d, m + span - 1, 1, on_event, &r, &err);
  }
  T_EQ_INT(rc, 0);
  T_EQ_INT(w2a_sse_finish(&d, on_event, &r, &err), 0);
  T_EQ_MEM(r.t.data, r.t.len, base.t.data, base.t.len);
  w2a_sse_free(&d);
  w2a_buf_free(&r.t);
  munmap(m, span + (size_t)pg);
}

/* ---- small cases -------------------------------------------------------------------- */

static int decode_str(const char *s, size_t max, rec *r, w2a_err *err) {
  rec_init(r, 1);
  size_t cut = 0;
  return decode_cuts(s, strlen(s), &cut, 0, max, r, err);
}

static void test_small_cases(void) {
  rec r;
  w2a_err err = {0};
  /* no event name, empty data, an event without data (dropped) */
  T_EQ_INT(decode_str("data:QUJD\n\ndata:\n\nevent:x\n\n\n\n", 0, &r, &err), 0);
  T_EQ_STR(r.t.data, "[0:|00|@0|3:ABC][0:|00|@11|0:]");
  w2a_buf_free(&r.t);
  /* a line without colon is a field with empty value: "data" alone is an empty data line */
  T_EQ_INT(decode_str("data\ndata:QUJD\n\n", 0, &r, &err), 0);
  T_EQ_STR(r.t.data, "[0:|00|@0|3:ABC]");
  w2a_buf_free(&r.t);
  /* only one space is removed */
  T_EQ_INT(decode_str("event:  x\ndata:QUJD\n\n", 0, &r, &err), 0);
  T_EQ_STR(r.t.data, "[2: x|00|@10|3:ABC]");
  w2a_buf_free(&r.t);
  /* CR at the end of one chunk, LF at the start of the next: one line ending */
  {
    w2a_sse d;
    rec_init(&r, 0);
    w2a_sse_init(&d, 0);
    T_EQ_INT(w2a_sse_feed(&d, "data:QUJD\r", 10, on_event, &r, &err), 0);
    T_EQ_INT(w2a_sse_feed(&d, "\n", 1, on_event, &r, &err), 0);
    T_EQ_INT(r.count, 0);
    T_EQ_INT(w2a_sse_feed(&d, "\r", 1, on_event, &r, &err), 0);
    T_EQ_INT(r.count, 1); /* CR alone ends the blank line at once */
    T_EQ_INT(w2a_sse_feed(&d, "\ndata:QUJD\r\r", 12, on_event, &r, &err), 0);
    T_EQ_INT(r.count, 2);
    T_EQ_INT(w2a_sse_feed(&d, "\n", 1, on_event, &r, &err), 0); /* partner of the last CR */
    T_EQ_INT(w2a_sse_finish(&d, on_event, &r, &err), 0);
    T_EQ_INT(r.count, 2);
    T_EQ_INT(d.unterminated, 0);
    w2a_sse_free(&d);
    w2a_buf_free(&r.t);
  }
  /* comments only, then EOF: nothing pending */
  T_EQ_INT(decode_str(": hello\n:\n", 0, &r, &err), 0);
  T_EQ_INT(r.count, 0);
  w2a_buf_free(&r.t);
  /* empty feed, finish on a fresh decoder */
  {
    w2a_sse d;
    w2a_sse_init(&d, 0);
    T_EQ_INT(w2a_sse_feed(&d, NULL, 0, on_event, NULL, &err), 0);
    T_EQ_INT(w2a_sse_finish(&d, on_event, NULL, &err), 0);
    w2a_sse_free(&d);
  }
  /* the callback stops the decoder */
  {
    rec_init(&r, 0);
    r.stop_after = 2;
    w2a_sse d;
    w2a_sse_init(&d, 0);
    T_EQ_INT(w2a_sse_feed(&d, cap, cap_n, on_event, &r, &err), 99);
    T_EQ_INT(r.count, 2);
    T_EQ_INT(w2a_sse_feed(&d, "\n", 1, on_event, &r, &err), W2A_ESTATE);
    T_EQ_INT(w2a_sse_finish(&d, on_event, &r, &err), W2A_ESTATE);
    /* reset makes it usable again */
    w2a_sse_reset(&d);
    r.stop_after = 0;
    T_EQ_INT(w2a_sse_feed(&d, cap, cap_n, on_event, &r, &err), 0);
    T_EQ_INT(r.count, 16);
    w2a_sse_free(&d);
    w2a_buf_free(&r.t);
  }
}

/* ---- bad input ---------------------------------------------------------------------- */

static void test_bad_base64(void) {
  rec r;
  w2a_err err = {0};
  T_EQ_INT(decode_str("event:data\ndata:QU$D\n\n", 0, &r, &err), W2A_EINVAL);
  T_CHECK(strstr(err.msg, "byte offset 11") != NULL);
  T_CHECK(strstr(err.msg, "character 2") != NULL);
  w2a_buf_free(&r.t);
  /* length 1 mod 4 */
  T_EQ_INT(decode_str("data:QUJDR\n\n", 0, &r, &err), W2A_EINVAL);
  w2a_buf_free(&r.t);
  /* padding in the middle; too much padding */
  T_EQ_INT(decode_str("data:QQ==QUJD\n\n", 0, &r, &err), W2A_EINVAL);
  w2a_buf_free(&r.t);
  T_EQ_INT(decode_str("data:QQ===\n\n", 0, &r, &err), W2A_EINVAL);
  w2a_buf_free(&r.t);
  /* NUL bytes inside data; whitespace inside data */
  {
    static const char s[] = "data:QU\0D\n\n";
    rec_init(&r, 0);
    T_EQ_INT(decode_cuts(s, sizeof s - 1, NULL, 0, 0, &r, &err), W2A_EINVAL);
    w2a_buf_free(&r.t);
  }
  T_EQ_INT(decode_str("data:QU JD\n\n", 0, &r, &err), W2A_EINVAL);
  w2a_buf_free(&r.t);
  /* after two good events the third is bad: its offset is named, and the error sticks */
  {
    const char *e2 = strstr(strstr(cap, "\n\n") + 2, "\n\n") + 2; /* after event 2 */
    size_t at = (size_t)(e2 - cap);
    T_EQ_INT(at, 444);
    char *v = malloc(at + 32);
    memcpy(v, cap, at);
    memcpy(v + at, "event:data\ndata:!!!!\n\n", 22);
    rec_init(&r, 0);
    T_EQ_INT(decode_cuts(v, at + 22, NULL, 0, 0, &r, &err), W2A_EINVAL);
    T_EQ_INT(r.count, 2);
    T_CHECK(strstr(err.msg, "byte offset 455") != NULL);
    w2a_buf_free(&r.t);
    free(v);
  }
  /* NUL bytes outside data are harmless: in a comment, in an unknown field, in the name */
  {
    static const char s[] = ":\0\0\nx\0y:1\nevent:a\0b\ndata:QUJD\n\n";
    rec_init(&r, 0);
    T_EQ_INT(decode_cuts(s, sizeof s - 1, NULL, 0, 0, &r, &err), 0);
    T_EQ_INT(r.count, 1);
    T_EQ_STR(r.t.data, "[3:a|00|3:ABC]"); /* name_len 3, printed up to the NUL */
    w2a_buf_free(&r.t);
  }
}

static void test_caps(void) {
  rec r;
  w2a_err err = {0};
  /* one event over the cap, in one line */
  w2a_buf b;
  w2a_buf_init(&b, 0);
  w2a_buf_puts(&b, "data:QUJD\n\nevent:data\ndata:");
  for (int i = 0; i < 80; i++)
    w2a_buf_puts(&b, "QUJD");
  w2a_buf_puts(&b, "\n\n");
  rec_init(&r, 0);
  T_EQ_INT(decode_cuts(b.data, b.len, NULL, 0, 300, &r, &err), W2A_ETOOBIG);
  T_EQ_INT(r.count, 1);
  T_CHECK(strstr(err.msg, "byte offset 22") != NULL);
  T_CHECK(strstr(err.msg, "SSE_EVENT_MAX_BYTES") != NULL);
  w2a_buf_free(&r.t);
  /* the same at every split point: same error */
  int bad = 0;
  for (size_t k = 0; k <= b.len; k++) {
    rec_init(&r, 0);
    w2a_err e2 = {0};
    if (decode_cuts(b.data, b.len, &k, 1, 300, &r, &e2) != W2A_ETOOBIG || strcmp(e2.msg, err.msg))
      bad++;
    w2a_buf_free(&r.t);
  }
  T_EQ_INT(bad, 0);
  /* over the cap in sum of many short data lines */
  w2a_buf_reset(&b);
  for (int i = 0; i < 100; i++)
    w2a_buf_puts(&b, "data:QUJD\n");
  w2a_buf_puts(&b, "\n");
  rec_init(&r, 0);
  T_EQ_INT(decode_cuts(b.data, b.len, NULL, 0, 300, &r, &err), W2A_ETOOBIG);
  T_EQ_INT(decode_cuts(b.data, b.len, NULL, 0, 400, &r, &err), 0); /* exactly at the cap */
  T_EQ_INT(r.count, 1);
  w2a_buf_free(&r.t);
  /* a very long line without newline, fed in small chunks: stopped at the cap, memory
   * bounded by it */
  {
    char chunk[1000];
    memset(chunk, 'A', sizeof chunk);
    memcpy(chunk, "data:", 5);
    w2a_sse d;
    w2a_sse_init(&d, 4096);
    int rc = 0;
    size_t fed = 0;
    while (!rc && fed < (1u << 24)) {
      rc = w2a_sse_feed(&d, chunk + (fed ? 5 : 0), sizeof chunk - (fed ? 5 : 0), NULL, NULL, &err);
      fed += sizeof chunk;
    }
    T_EQ_INT(rc, W2A_ETOOBIG);
    T_CHECK(fed < 10000);
    T_CHECK(d.line.cap <= 2 * (4096 + 64 + 1));
    T_CHECK(strstr(err.msg, "SSE line at byte offset 0") != NULL);
    w2a_sse_free(&d);
  }
  /* a long comment line inside one chunk hits the same cap (split-independent) */
  {
    size_t n = 10000;
    char *s = malloc(n);
    memset(s, 'x', n);
    s[0] = ':';
    s[n - 1] = '\n';
    rec_init(&r, 0);
    T_EQ_INT(decode_cuts(s, n, NULL, 0, 4096, &r, &err), W2A_ETOOBIG);
    size_t k = 5000;
    T_EQ_INT(decode_cuts(s, n, &k, 1, 4096, &r, &err), W2A_ETOOBIG);
    w2a_buf_free(&r.t);
    free(s);
  }
  /* an overlong event name */
  T_EQ_INT(decode_str("event:0123456789012345678901234567890123456789012345678901234567890123"
                      "\ndata:QUJD\n\n",
                      0, &r, &err),
           W2A_EINVAL);
  w2a_buf_free(&r.t);
  w2a_buf_free(&b);
}

static void test_truncated(void) {
  w2a_err err = {0};
  /* cut inside every event's base64 line: finish reports the stream ended mid-event */
  int flagged = 0, cuts = 0;
  for (size_t k = 1; k < cap_n; k++) {
    if (k < 6 || memcmp(cap + k - 6, "data:", 5) != 0) continue; /* cut 1 char after data: */
    cuts++;
    rec r;
    rec_init(&r, 0);
    w2a_sse d;
    w2a_sse_init(&d, 0);
    T_EQ_INT(w2a_sse_feed(&d, cap, k, on_event, &r, &err), 0);
    int rc = w2a_sse_finish(&d, on_event, &r, &err);
    /* one base64 char cannot decode; the error names the event */
    if (rc == W2A_EINVAL && d.unterminated) flagged++;
    w2a_sse_free(&d);
    w2a_buf_free(&r.t);
  }
  T_EQ_INT(cuts, 14);
  T_EQ_INT(flagged, 14);
  /* cut right after "event:data\n": no data, nothing dispatched, but unterminated */
  rec r;
  rec_init(&r, 0);
  w2a_sse d;
  w2a_sse_init(&d, 0);
  T_EQ_INT(w2a_sse_feed(&d, cap, 11, on_event, &r, &err), 0);
  T_EQ_INT(w2a_sse_finish(&d, on_event, &r, &err), 0);
  T_EQ_INT(r.count, 0);
  T_EQ_INT(d.unterminated, 1);
  w2a_sse_free(&d);
  w2a_buf_free(&r.t);
}

static void test_garbage(void) {
  w2a_err err = {0};
  rec r;
  T_EQ_INT(decode_str("hello world\n\nHTTP/1.1 200 OK\r\n\r\n<html>\n\n", 0, &r, &err), 0);
  T_EQ_INT(r.count, 0);
  w2a_buf_free(&r.t);
  /* random bytes and random splices of the capture: no crash, no leak, bounded work */
  static const char *const tok[] = {"data:", "data: ", "event:", "\n", "\r", "\r\n",
                                    ":",     "[DONE]", "QUJD",   "=",  "-_", "\0"};
  unsigned char buf[4096 + 16];
  int errors = 0;
  for (int it = 0; it < 3000; it++) {
    size_t n = rng() % 4096;
    for (size_t i = 0; i < n;) {
      uint64_t x = rng();
      if (it % 3 == 0)
        buf[i++] = (unsigned char)x;
      else if (it % 3 == 1)
        buf[i++] = (unsigned char)cap[x % cap_n];
      else {
        const char *t = tok[x % 12];
        size_t tl = x % 12 == 11 ? 1 : strlen(t);
        memcpy(buf + i, t, tl);
        i += tl;
        if (i > n) n = i;
      }
    }
    rec_init(&r, 0);
    size_t k = n ? rng() % n : 0;
    if (decode_cuts((const char *)buf, n, &k, 1, 1024, &r, &err)) errors++;
    w2a_buf_free(&r.t);
  }
  T_CHECK(errors > 0);
}

/* ---- encoder ------------------------------------------------------------------------ */

typedef struct enc_ctx {
  w2a_buf out;
  const char *src; /* the capture, to read each event's padding */
} enc_ctx;

static int reencode(void *ud, const w2a_sse_event *ev) {
  enc_ctx *c = ud;
  const char *line = c->src + ev->offset;
  const char *nl = strchr(line, '\n');
  int pad = nl[-1] == '=';
  return w2a_sse_write_event(&c->out, ev->data, ev->len, pad);
}

static void test_encoder(void) {
  enc_ctx c;
  w2a_buf_init(&c.out, 0);
  c.src = cap;
  w2a_sse d;
  w2a_err err = {0};
  w2a_sse_init(&d, 0);
  T_EQ_INT(w2a_sse_feed(&d, cap, cap_n, reencode, &c, &err), 0);
  T_EQ_INT(w2a_sse_finish(&d, reencode, &c, &err), 0);
  w2a_buf_putc(&c.out, '\n');                  /* the file's extra blank line */
  T_EQ_MEM(c.out.data, c.out.len, cap, cap_n); /* byte for byte */
  w2a_sse_free(&d);
  w2a_buf_free(&c.out);

  w2a_buf b;
  w2a_buf_init(&b, 0);
  T_EQ_INT(w2a_sse_write_event(&b, (const uint8_t *)"\xfb\xff", 2, 1), 0);
  T_EQ_STR(b.data, "event:data\ndata:-_8=\n\n");
  T_EQ_INT(w2a_sse_write_event(&b, NULL, 0, 0), 0);
  T_EQ_STR(b.data, "event:data\ndata:-_8=\n\nevent:data\ndata:\n\n");
  w2a_buf_free(&b);
  /* the buffer's cap is honoured and the buffer left unchanged */
  w2a_buf_init(&b, 20);
  T_EQ_INT(w2a_sse_write_event(&b, (const uint8_t *)"abcdef", 6, 0), W2A_ETOOBIG);
  T_EQ_INT(b.len, 0);
  w2a_buf_free(&b);
}

int main(void) {
  if (!(cap = fx_read("turn1-response.sse", &cap_n))) return 1;
  T_EQ_INT(cap_n, 3245);
  T_RUN(test_capture_whole);
  T_RUN(test_capture_fast_path);
  T_RUN(test_capture_splits);
  T_RUN(test_variants);
  T_RUN(test_done_sentinel);
  T_RUN(test_guard_page);
  T_RUN(test_small_cases);
  T_RUN(test_bad_base64);
  T_RUN(test_caps);
  T_RUN(test_truncated);
  T_RUN(test_garbage);
  T_RUN(test_encoder);
  w2a_buf_free(&base.t);
  free(cap);
  return t_done();
}
