/* fuzz_json_to_pb.c - arbitrary text as the JSON of a Request.
 *
 * Checks, beyond "no crash, no leak, no UB":
 *   - the fast encoder agrees with the protobuf-c reference (w2a_pbjson_from_json_ref):
 *     same bytes, or the same error code and text, with default options and with
 *     ignore_unknown_keys/skip_unknown;
 *   - whenever the JSON encodes, the bytes pass the validator, decode to JSON, and that
 *     JSON encodes to the very same bytes (bytes are a fixed point of encode∘decode). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pbjson.h"
#include "request.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void diff(const ProtobufCMessageDescriptor *d, const char *js, size_t n,
                 const w2a_pbjson_opts *o) {
  w2a_buf a, b;
  w2a_err ea = {0}, eb = {0};
  w2a_buf_init(&a, 1u << 24);
  w2a_buf_init(&b, 1u << 24);
  int ra = w2a_pbjson_from_json(d, js, n, o, &a, &ea);
  int rb = w2a_pbjson_from_json_ref(d, js, n, o, &b, &eb);
  if (ra != rb) abort();
  if (ra ? strcmp(ea.msg, eb.msg) : a.len != b.len || memcmp(a.data, b.data, a.len)) abort();
  w2a_buf_free(&a);
  w2a_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const ProtobufCMessageDescriptor *d = &warp__multi_agent__v1__request__descriptor;
  static const w2a_pbjson_opts lax = {.ignore_unknown_keys = 1, .skip_unknown = 1};
  diff(d, (const char *)data, size, NULL);
  diff(d, (const char *)data, size, &lax);
  w2a_buf bin, js, bin2;
  w2a_err e;
  w2a_buf_init(&bin, 1u << 24);
  w2a_buf_init(&js, 1u << 24);
  w2a_buf_init(&bin2, 1u << 24);
  if (w2a_pbjson_from_json(d, (const char *)data, size, NULL, &bin, &e) == 0) {
    if (w2a_pbjson_validate(d, (const uint8_t *)bin.data, bin.len, &e)) abort();
    if (w2a_pbjson_to_json(d, (const uint8_t *)bin.data, bin.len, NULL, &js, &e)) abort();
    if (w2a_pbjson_from_json(d, js.data, js.len, NULL, &bin2, &e)) abort();
    if (bin.len != bin2.len || memcmp(bin.data, bin2.data, bin.len)) abort();
  }
  w2a_buf_free(&bin);
  w2a_buf_free(&js);
  w2a_buf_free(&bin2);
  return 0;
}
