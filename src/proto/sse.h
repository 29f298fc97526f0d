/* sse.h - incremental decoder (and matching encoder) for Warp's event stream.
 *
 * Warp answers /ai/multi-agent with a text/event-stream body whose events look like
 *
 *     event:data
 *     data:<base64url of one serialized ResponseEvent>
 *     <blank line>
 *
 * (spec/warp-protocol.md §1.2). The decoder accepts the body in arbitrary byte splits
 * and hands each complete event's *decoded* payload to a callback. What it accepts:
 *
 *  - `field:value` lines with or without one space after the colon (SSE rules: a line
 *    without a colon is a field with an empty value; one leading space is dropped);
 *  - line endings LF, CRLF or CR, mixed freely; a CR that ends one chunk and an LF that
 *    starts the next form ONE line ending;
 *  - comment lines (":..."), `id:`, `retry:` and unknown fields, all ignored;
 *  - several `data:` lines in one event. They are concatenated WITHOUT the "\n" the SSE
 *    spec puts between them: every payload here is base64, where a newline is not a
 *    digit, so joining with "\n" would only force a strip before decoding; a producer
 *    that wraps a long base64 payload over several lines means the plain concatenation;
 *  - base64url or standard base64, padded or not (even mixed alphabets);
 *  - `data: [DONE]` (not sent by Warp, checked by every proxy): reported with done=1.
 *
 * An event is dispatched at a blank line, and only if it had at least one data line
 * (SSE rule). w2a_sse_finish() flushes an event that was not closed by a blank line
 * (ev->eof=1), since an HTTP body may end right after the last data line.
 *
 * Limits: the base64 text of one event is capped at max_event bytes and one line at
 * max_event + 64 bytes, whether or not it spans chunks, so a hostile stream cannot make
 * the decoder allocate past the cap. Exceeding it is W2A_ETOOBIG, bad base64 is
 * W2A_EINVAL; both name the stream byte offset of the offending event or line in err.
 * Errors are sticky: later calls return W2A_ESTATE.
 *
 * Cost: no allocation per event (three buffers are reused), line ends found with memchr,
 * lines that lie inside one chunk are parsed in place without copying, and an event whose
 * single data line lies inside one chunk is decoded from there. */
#ifndef W2A_SSE_H
#define W2A_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define W2A_SSE_DEFAULT_MAX_EVENT ((size_t)16 << 20) /* SSE_EVENT_MAX_BYTES default */
#define W2A_SSE_NAME_MAX 63                          /* longer event names are an error */

typedef struct w2a_sse_event {
  const char *name; /* the event: field, NUL-terminated; "" when the event had none */
  size_t name_len;
  const uint8_t *data; /* decoded payload; valid only during the callback */
  size_t len;
  uint64_t offset; /* stream byte offset of the event's first data line */
  int done;        /* the data was exactly "[DONE]" (data is NULL, len 0) */
  int eof;         /* flushed by w2a_sse_finish: no blank line closed it */
} w2a_sse_event;

/* Return 0 to go on. Any other value stops decoding: feed/finish return it unchanged
 * and the decoder is left failed (later calls give W2A_ESTATE). */
typedef int (*w2a_sse_event_fn)(void *ud, const w2a_sse_event *ev);

typedef struct w2a_sse {
  size_t max_event;
  w2a_buf line;    /* a line that spans chunks (raw bytes, without terminator) */
  w2a_buf data;    /* base64 text of the event being read */
  w2a_buf out;     /* decoded payload handed to the callback */
  const char *inl; /* the event's only data line so far, still in the caller's chunk */
  size_t inl_len;
  char name[W2A_SSE_NAME_MAX + 1];
  size_t name_len;
  uint64_t offset;   /* bytes consumed so far */
  uint64_t line_off; /* stream offset where the carried line starts */
  uint64_t ev_off;   /* stream offset of the current event's first data line */
  uint64_t events;   /* events dispatched (including [DONE]) */
  uint64_t whole;    /* ... of which read in one piece (the common event, whole in a chunk) */
  int has_data;      /* the current event has seen a data line */
  int skip_lf;       /* the last byte was a CR: an LF right after it is its partner */
  int pending;       /* bytes of an unfinished event (or line) are held */
  int failed;        /* sticky error code, 0 when healthy */
  int unterminated;  /* set by finish when the stream ended inside an event */
} w2a_sse;

/* max_event 0 means W2A_SSE_DEFAULT_MAX_EVENT. */
void w2a_sse_init(w2a_sse *d, size_t max_event);
void w2a_sse_free(w2a_sse *d);
/* Forget any partial event and error; keeps memory (for reuse on a new stream). */
void w2a_sse_reset(w2a_sse *d);

int w2a_sse_feed(w2a_sse *d, const char *p, size_t n, w2a_sse_event_fn cb, void *ud, w2a_err *err);
/* End of stream: process a last line without terminator and dispatch a pending event
 * (ev->eof=1). d->unterminated tells whether the stream ended inside an event. */
int w2a_sse_finish(w2a_sse *d, w2a_sse_event_fn cb, void *ud, w2a_err *err);

/* Append one event in exactly the capture's framing: "event:data\ndata:<base64url>\n\n";
 * pad selects '=' padding (the capture mixes both). 0, W2A_ETOOBIG or W2A_ENOMEM; the
 * buffer is unchanged on failure. */
int w2a_sse_write_event(w2a_buf *b, const uint8_t *p, size_t n, int pad);

#endif
