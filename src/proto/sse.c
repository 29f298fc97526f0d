/* sse.c - the event-stream decoder and encoder; see sse.h for what is accepted.
 *
 * The feed loop finds line ends with two cached memchr scans (one for CR, one for LF),
 * so every byte is scanned at most twice whatever the line-ending style. A line that
 * lies entirely inside the chunk is parsed where it is; only a line cut by the chunk
 * boundary is copied into d->line, and it is checked against the same cap as an in-place
 * line so that the outcome (events and errors) never depends on how the input was split.
 * Data lines are appended to d->data; at the blank line the base64 text is decoded into
 * d->out and handed to the callback. All three buffers are reused for the next event. */
#include "sse.h"

#include <string.h>

#include "common/b64.h"

#define LINE_SLACK 64 /* room for "data: " and friends on top of the payload cap */

static const char done_sentinel[] = "[DONE]";

void w2a_sse_init(w2a_sse *d, size_t max_event) {
  memset(d, 0, sizeof *d);
  d->max_event = max_event ? max_event : W2A_SSE_DEFAULT_MAX_EVENT;
  w2a_buf_init(&d->line, d->max_event + LINE_SLACK);
  w2a_buf_init(&d->data, d->max_event);
  w2a_buf_init(&d->out, 0); /* bounded by data: decoded bytes are fewer than base64 text */
}

void w2a_sse_free(w2a_sse *d) {
  w2a_buf_free(&d->line);
  w2a_buf_free(&d->data);
  w2a_buf_free(&d->out);
}

static void clear_event(w2a_sse *d) {
  w2a_buf_reset(&d->data);
  d->inl = NULL;
  d->inl_len = 0;
  d->name[0] = 0;
  d->name_len = 0;
  d->has_data = 0;
  d->pending = 0;
}

void w2a_sse_reset(w2a_sse *d) {
  w2a_buf_reset(&d->line);
  clear_event(d);
  d->offset = d->line_off = d->ev_off = d->events = d->whole = 0;
  d->skip_lf = d->failed = d->unterminated = 0;
}

static int fail(w2a_sse *d, int code) {
  d->failed = code;
  return code;
}

/* The in-place data line joins d->data: another data line follows it, or the chunk it
 * lies in is about to go. */
static int spill(w2a_sse *d, w2a_err *err) {
  int rc = w2a_buf_append(&d->data, d->inl, d->inl_len);
  d->inl = NULL;
  d->inl_len = 0;
  if (rc)
    return fail(d, w2a_errf(err, rc, "SSE event at byte offset %llu: %s",
                            (unsigned long long)d->ev_off, w2a_strerror(rc)));
  return 0;
}

static int dispatch(w2a_sse *d, int eof, w2a_sse_event_fn cb, void *ud, w2a_err *err) {
  if (!d->has_data) { /* SSE: an event without data lines is dropped */
    clear_event(d);
    return 0;
  }
  w2a_sse_event ev = {.name = d->name,
                      .name_len = d->name_len,
                      .data = NULL,
                      .len = 0,
                      .offset = d->ev_off,
                      .done = 0,
                      .eof = eof};
  const char *text = d->inl ? d->inl : d->data.data;
  size_t tlen = d->inl ? d->inl_len : d->data.len;
  if (tlen == sizeof done_sentinel - 1 && !memcmp(text, done_sentinel, sizeof done_sentinel - 1)) {
    ev.done = 1;
  } else {
    int rc = w2a_buf_reserve(&d->out, w2a_b64_dec_max(tlen));
    if (rc)
      return fail(d, w2a_errf(err, rc, "SSE event at byte offset %llu: out of memory",
                              (unsigned long long)d->ev_off));
    size_t bad = 0;
    long n = w2a_b64_decode(text, tlen, (unsigned char *)d->out.data, &bad);
    if (n < 0)
      return fail(d, w2a_errf(err, W2A_EINVAL,
                              "bad base64 in SSE event at byte offset %llu (character %zu "
                              "of its %zu data bytes)",
                              (unsigned long long)d->ev_off, bad, tlen));
    ev.data = (const uint8_t *)d->out.data;
    ev.len = (size_t)n;
  }
  d->events++;
  int rc = cb ? cb(ud, &ev) : 0;
  clear_event(d);
  if (rc) return fail(d, rc);
  return 0;
}

/* One complete line (terminator removed) that starts at stream offset `off`; inplace:
 * s lies in the chunk being fed (not in d->line), so it stays valid until feed returns. */
static int process_line(w2a_sse *d, const char *s, size_t len, uint64_t off, int inplace,
                        w2a_sse_event_fn cb, void *ud, w2a_err *err) {
  if (len == 0) return dispatch(d, 0, cb, ud, err);
  if (s[0] == ':') return 0; /* comment (keep-alive) */
  d->pending = 1;
  /* "data:" and "event:" are nearly every line: two compares; otherwise field names are
   * a few bytes, where a plain loop beats a memchr call. */
  const char *colon = NULL;
  if (len >= 5 && !memcmp(s, "data:", 5))
    colon = s + 4;
  else if (len >= 6 && !memcmp(s, "event:", 6))
    colon = s + 5;
  else
    for (size_t i = 0; i < len; i++)
      if (s[i] == ':') {
        colon = s + i;
        break;
      }
  size_t flen = colon ? (size_t)(colon - s) : len;
  const char *v = colon ? colon + 1 : s + len;
  size_t vlen = (size_t)(s + len - v);
  if (vlen && *v == ' ') v++, vlen--;
  if (flen == 4 && !memcmp(s, "data", 4)) {
    if (!d->has_data) {
      d->has_data = 1;
      d->ev_off = off;
    }
    if (vlen > d->max_event - d->data.len - d->inl_len)
      return fail(d, w2a_errf(err, W2A_ETOOBIG,
                              "SSE event at byte offset %llu is larger than %zu bytes "
                              "(SSE_EVENT_MAX_BYTES)",
                              (unsigned long long)d->ev_off, d->max_event));
    if (inplace && !d->data.len && !d->inl) {
      /* Most events have one data line: decode it where it lies, no copy. */
      d->inl = v;
      d->inl_len = vlen;
      return 0;
    }
    int rc = d->inl ? spill(d, err) : 0;
    if (rc) return rc;
    rc = w2a_buf_append(&d->data, v, vlen);
    if (rc)
      return fail(d, w2a_errf(err, rc, "SSE event at byte offset %llu: %s",
                              (unsigned long long)d->ev_off, w2a_strerror(rc)));
  } else if (flen == 5 && !memcmp(s, "event", 5)) {
    if (vlen > W2A_SSE_NAME_MAX)
      return fail(d, w2a_errf(err, W2A_EINVAL,
                              "SSE event name at byte offset %llu is longer than %d bytes",
                              (unsigned long long)off, W2A_SSE_NAME_MAX));
    memcpy(d->name, v, vlen);
    d->name[vlen] = 0;
    d->name_len = vlen;
  }
  /* id:, retry: and unknown fields are ignored, as the SSE spec asks. */
  return 0;
}

static int line_too_long(w2a_sse *d, uint64_t off, w2a_err *err) {
  return fail(d, w2a_errf(err, W2A_ETOOBIG,
                          "SSE line at byte offset %llu is longer than %zu bytes "
                          "(SSE_EVENT_MAX_BYTES + %d)",
                          (unsigned long long)off, d->max_event + LINE_SLACK, LINE_SLACK));
}

/* The common event, whole in the chunk at an event boundary: an optional "event:NAME"
 * line, one "data:" line of base64 text, the blank line. Warp sends nothing else, and
 * going line by line (a memchr per line, the field parse, the data line kept aside
 * until the blank line) cost more per event than decoding it. Here the end of the data
 * line is where its base64 digits (and up to two '=') end, found by the decoder's own
 * digit test; the event is decoded and dispatched as the line-by-line path would (same
 * name, data, offset, limits). 1 when it was, with *pp past the blank line; 0 when the
 * bytes at *pp are anything else (a partial event, CR line ends, another field, a
 * comment, bad base64, a limit reached), which the line-by-line path then reads from the
 * same point, so every error keeps its message. Anything else: the callback's result. */
static int whole_event(w2a_sse *d, const char **pp, const char *end, w2a_sse_event_fn cb,
                       void *ud, w2a_err *err) {
  const char *q = *pp, *name = "";
  size_t name_len = 0;
  if (end - q >= 6 && !memcmp(q, "event:", 6)) {
    const char *v = q + 6, *e;
    if (v < end && *v == ' ') v++;
    for (e = v; e < end && e - v <= W2A_SSE_NAME_MAX && *e != '\n' && *e != '\r'; e++)
      ;
    if (e == end || *e != '\n' || e - v > W2A_SSE_NAME_MAX) return 0;
    name = v, name_len = (size_t)(e - v);
    q = e + 1;
  }
  if (end - q < 6 || memcmp(q, "data:", 5)) return 0;
  const char *v = q[5] == ' ' ? q + 6 : q + 5;
  const char *e = v + w2a_b64_digits(v, (size_t)(end - v));
  for (int k = 0; k < 2 && e < end && *e == '='; k++)
    e++;
  size_t vlen = (size_t)(e - v);
  if (end - e < 2 || e[0] != '\n' || e[1] != '\n' || vlen > d->max_event ||
      (size_t)(e - q) > d->max_event + LINE_SLACK)
    return 0;
  if (w2a_buf_reserve(&d->out, w2a_b64_dec_max(vlen))) return 0;
  size_t bad = 0;
  long n = w2a_b64_decode(v, vlen, (unsigned char *)d->out.data, &bad);
  if (n < 0) return 0;
  memcpy(d->name, name, name_len);
  d->name[name_len] = 0;
  w2a_sse_event ev = {.name = d->name,
                      .name_len = name_len,
                      .data = (const uint8_t *)d->out.data,
                      .len = (size_t)n,
                      .offset = d->offset + (uint64_t)(q - *pp)};
  d->events++;
  d->whole++;
  int rc = cb ? cb(ud, &ev) : 0;
  d->name[0] = 0;
  /* As the line-by-line path counts: a failed dispatch stops before the blank line. */
  size_t used = (size_t)(e + (rc ? 1 : 2) - *pp);
  d->offset += used;
  *pp += used;
  return rc ? fail(d, rc) : 1;
}

int w2a_sse_feed(w2a_sse *d, const char *p, size_t n, w2a_sse_event_fn cb, void *ud, w2a_err *err) {
  if (d->failed) return w2a_errf(err, W2A_ESTATE, "SSE decoder failed earlier");
  if (!n) return 0;
  const char *end = p + n;
  const char *cr = NULL, *lf = NULL; /* next CR / LF at or after p (end: none); NULL: unknown */
  const size_t line_max = d->max_event + LINE_SLACK;
  while (p < end) {
    if (d->skip_lf) {
      d->skip_lf = 0;
      if (*p == '\n') {
        p++;
        d->offset++;
        continue;
      }
    }
    if (!d->line.len && !d->pending) { /* at an event boundary */
      int rc = whole_event(d, &p, end, cb, ud, err);
      if (rc == 1) continue;
      if (rc) return rc;
    }
    if (!cr || cr < p) {
      cr = memchr(p, '\r', (size_t)(end - p));
      if (!cr) cr = end;
    }
    if (!lf || lf < p) {
      /* A blank line (every event's last) needs no memchr call. */
      lf = *p == '\n' ? p : memchr(p, '\n', (size_t)(end - p));
      if (!lf) lf = end;
    }
    const char *eol = cr < lf ? cr : lf;
    size_t seg = (size_t)(eol - p);
    int rc;
    if (d->line.len || eol == end) {
      if (!d->line.len) d->line_off = d->offset;
      if (seg > line_max - d->line.len) return line_too_long(d, d->line_off, err);
      if ((rc = w2a_buf_append(&d->line, p, seg)))
        return fail(d, w2a_errf(err, rc, "SSE line at byte offset %llu: %s",
                                (unsigned long long)d->line_off, w2a_strerror(rc)));
      d->offset += seg;
      if (eol == end) break;
      rc = process_line(d, d->line.data, d->line.len, d->line_off, 0, cb, ud, err);
      w2a_buf_reset(&d->line);
    } else {
      if (seg > line_max) return line_too_long(d, d->offset, err);
      rc = process_line(d, p, seg, d->offset, 1, cb, ud, err);
      d->offset += seg;
    }
    if (rc) return rc;
    p = eol + 1;
    d->offset++;
    if (*eol == '\r') {
      if (p == end)
        d->skip_lf = 1;
      else if (*p == '\n') {
        p++;
        d->offset++;
      }
    }
  }
  return d->inl ? spill(d, err) : 0; /* the chunk goes when we return */
}

int w2a_sse_finish(w2a_sse *d, w2a_sse_event_fn cb, void *ud, w2a_err *err) {
  if (d->failed) return w2a_errf(err, W2A_ESTATE, "SSE decoder failed earlier");
  d->skip_lf = 0;
  if (d->line.len) {
    int rc = process_line(d, d->line.data, d->line.len, d->line_off, 0, cb, ud, err);
    w2a_buf_reset(&d->line);
    if (rc) return rc;
  }
  d->unterminated = d->pending;
  return dispatch(d, 1, cb, ud, err);
}

int w2a_sse_write_event(w2a_buf *b, const uint8_t *p, size_t n, int pad) {
  static const char head[] = "event:data\ndata:";
  const size_t hl = sizeof head - 1;
  if (n > (SIZE_MAX - hl - 2) / 4 * 3 - 3) return W2A_ETOOBIG;
  size_t el = w2a_b64_enc_len(n);
  int rc = w2a_buf_reserve(b, hl + el + 2);
  if (rc) return rc;
  char *o = b->data + b->len;
  memcpy(o, head, hl);
  size_t w = w2a_b64_encode(p, n, o + hl, 1, pad);
  o[hl + w] = '\n';
  o[hl + w + 1] = '\n';
  o[hl + w + 2] = 0;
  b->len += hl + w + 2;
  return 0;
}
