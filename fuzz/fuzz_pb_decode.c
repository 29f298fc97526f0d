/* fuzz_pb_decode.c - arbitrary bytes as a Request and as a ResponseEvent.
 *
 * Checks, beyond "no crash, no leak, no UB":
 *   - whenever the validator accepts, protobuf-c unpacks (the validator is the stricter);
 *   - whenever decoding to JSON succeeds, that JSON encodes, and decoding the result
 *     gives the same JSON again (JSON is a fixed point of encode∘decode). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pbjson.h"
#include "request.pb-c.h"
#include "response.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size) {
  w2a_err e;
  int valid = w2a_pbjson_validate(d, data, size, &e) == 0;
  if (valid) {
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
    if (!m) abort(); /* validator accepted what protobuf-c refuses */
    (void)w2a_pb_count_unknown(m);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  w2a_buf js, bin, js2;
  w2a_buf_init(&js, 1u << 24);
  w2a_buf_init(&bin, 1u << 24);
  w2a_buf_init(&js2, 1u << 24);
  int rc = w2a_pbjson_to_json(d, data, size, NULL, &js, &e);
  if (rc == 0) {
    if (!valid) abort();
    if (w2a_pbjson_from_json(d, js.data, js.len, NULL, &bin, &e)) abort();
    if (w2a_pbjson_to_json(d, (const uint8_t *)bin.data, bin.len, NULL, &js2, &e)) abort();
    if (js.len != js2.len || memcmp(js.data, js2.data, js.len)) abort();
  } else if (valid && rc != W2A_ETOOBIG && rc != W2A_ENOMEM) {
    abort(); /* valid bytes must print */
  }
  w2a_buf_free(&js);
  w2a_buf_free(&bin);
  w2a_buf_free(&js2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(&warp__multi_agent__v1__request__descriptor, data, size);
  one(&warp__multi_agent__v1__response_event__descriptor, data, size);
  return 0;
}
