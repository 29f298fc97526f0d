/* fuzz_pb_decode.c - arbitrary bytes as a Request and as a ResponseEvent.
 *
 * Checks, beyond "no crash, no leak, no UB":
 *   - whenever the validator accepts, protobuf-c unpacks (the validator is the stricter);
 *   - the fast paths agree with the protobuf-c reference ones (w2a_pbjson_*_ref): same
 *     verdict and error text from the validator, same JSON or same error from
 *     to_json (with default and with emit_defaults/pretty options), same bytes or
 *     same error when that JSON is encoded again;
 *   - whenever decoding to JSON succeeds, that JSON encodes, and decoding the result
 *     gives the same JSON again (JSON is a fixed point of encode∘decode). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pbjson.h"
#include "request.pb-c.h"
#include "response.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(int rc1, const w2a_buf *b1, const w2a_err *e1, int rc2, const w2a_buf *b2,
                 const w2a_err *e2) {
  if (rc1 != rc2) abort();
  if (rc1 ? strcmp(e1->msg, e2->msg) : b1->len != b2->len || memcmp(b1->data, b2->data, b1->len))
    abort(); /* fast path and reference disagree */
}

static void diff_to_json(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size,
                         const w2a_pbjson_opts *o) {
  w2a_buf a, b, pa, pb;
  w2a_err ea = {0}, eb = {0};
  w2a_buf_init(&a, 1u << 24);
  w2a_buf_init(&b, 1u << 24);
  w2a_buf_init(&pa, 1u << 24);
  w2a_buf_init(&pb, 1u << 24);
  int ra = w2a_pbjson_to_json(d, data, size, o, &a, &ea);
  same(ra, &a, &ea, w2a_pbjson_to_json_ref(d, data, size, o, &b, &eb), &b, &eb);
  if (!ra) {
    int r1 = w2a_pbjson_from_json(d, a.data, a.len, o, &pa, &ea);
    same(r1, &pa, &ea, w2a_pbjson_from_json_ref(d, a.data, a.len, o, &pb, &eb), &pb, &eb);
  }
  w2a_buf_free(&a);
  w2a_buf_free(&b);
  w2a_buf_free(&pa);
  w2a_buf_free(&pb);
}

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size) {
  w2a_err e, e2;
  int rv = w2a_pbjson_validate(d, data, size, &e);
  if (rv != w2a_pbjson_validate_ref(d, data, size, NULL, &e2) || (rv && strcmp(e.msg, e2.msg)))
    abort();
  int valid = rv == 0;
  if (valid) {
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
    if (!m) abort(); /* validator accepted what protobuf-c refuses */
    (void)w2a_pb_count_unknown(m);
    protobuf_c_message_free_unpacked(m, NULL);
  }
  static const w2a_pbjson_opts defaults_pretty = {.pretty = 1, .emit_defaults = 1};
  diff_to_json(d, data, size, NULL);
  diff_to_json(d, data, size, &defaults_pretty);
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
