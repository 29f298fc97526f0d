/* stream.h - POST /ai/multi-agent: authenticate, decode the Request, pick the scenario,
 * then either refuse (401/403/429/400/5xx/empty 200) or stream ResponseEvents.
 *
 * A stream is a small state machine driven by one uv timer: events are produced in the
 * capture's order (events.h), batched into one write while no delay is due, paced by
 * the timer when the scenario asks, and paused while the client's queue is over its
 * high-water mark (resumed by on_drain). A client that goes away before `finished` was
 * written makes the stream "abandoned": it is counted, logged with the time it was
 * noticed, and the request is completed at once. Streams live in w2a_fake.streams until
 * their timer handle is closed; then they free themselves. */
#ifndef W2A_FAKE_STREAM_H
#define W2A_FAKE_STREAM_H

#include "fakewarp/fakewarp.h"

void w2a_fake_stream_handle(w2a_fake *f, w2a_http_req *r);
/* Abort every live stream (shutdown). */
void w2a_fake_stream_abort_all(w2a_fake *f);
/* Accounts are about to be freed (reset): live streams drop their account pointer. */
void w2a_fake_stream_forget_accounts(w2a_fake *f);
size_t w2a_fake_stream_count(const w2a_fake *f);

#endif
