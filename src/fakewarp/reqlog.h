/* reqlog.h - the log of what /ai/multi-agent received, per account (and one for requests
 * tied to no account), as shown by GET /_fakewarp/requests.
 *
 * Recording is the hot path (every request) and reading is rare (tests), so an entry
 * keeps only raw facts: times, status, outcome, warnings, the headers (without
 * authorization) and the body bytes. The JSON a reader sees ({at_ms, email, request_id,
 * status, outcome, warnings?, headers, body_bytes, summary, request, body_b64}) is built
 * from them when the log is read: the body is decoded again, which gives the same
 * summary and proto3 JSON the request had when it was served, since both depend on the
 * bytes alone.
 *
 * A log is a ring of at most `max` entries (0: unbounded); the oldest goes first, and
 * its buffer is reused by the newest. Loop thread only; a log owns all its memory. */
#ifndef W2A_FAKE_REQLOG_H
#define W2A_FAKE_REQLOG_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

typedef struct w2a_fake_log_entry w2a_fake_log_entry;

typedef struct w2a_fake_log {
  w2a_fake_log_entry *e;
  size_t cap, first, n;
} w2a_fake_log;

/* What one request left behind. */
typedef struct w2a_fake_log_rec {
  uint64_t at_ms;
  const char *request_id; /* NULL: none (null in JSON) */
  int status;
  const char *outcome;     /* a string literal: kept by pointer */
  const char *warnings;    /* NULL or "": none */
  const w2a_http_req *req; /* headers and body */
  int decoded;             /* the body decoded as a Request (summary + request shown) */
  int hidden; /* show no headers and an empty body (the body is still kept, for decoding) */
} w2a_fake_log_rec;

/* Append a record, dropping the oldest entry past max (0: no cap). 0 or W2A_ENOMEM. */
int w2a_fake_log_add(w2a_fake_log *l, size_t max, const w2a_fake_log_rec *rec);
/* Free everything; the log is empty (and reusable) afterwards. */
void w2a_fake_log_free(w2a_fake_log *l);
/* The entries, oldest first, as a JSON array; email is each entry's "email" (NULL:
 * null). */
json_object *w2a_fake_log_json(const w2a_fake_log *l, const char *email);

#endif
