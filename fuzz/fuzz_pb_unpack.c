/* fuzz_pb_unpack.c - w2a_pbjson_unpack (validation and unpacking fused in one walk)
 * against what it replaced: w2a_pbjson_validate, then protobuf_c_message_unpack.
 *
 * Arbitrary bytes as a ResponseEvent (the gateway's per-event unpack) and as a Request.
 * Checks, beyond "no crash, no leak, no UB": both accept or both refuse, with the same
 * error text; accepted, the two structs pack to the same bytes. Each input is also
 * unpacked with an allocator that fails at its k-th call (k from the input's first
 * byte), so every partial-struct cleanup path is reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pbjson.h"
#include "request.pb-c.h"
#include "response.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *fail_alloc(void *ud, size_t n) {
  long *left = ud;
  return (*left)-- > 0 ? malloc(n) : NULL;
}
static void fail_free(void *ud, void *p) { (void)ud, free(p); }

static void one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size) {
  w2a_err e1 = {0}, e2 = {0};
  ProtobufCMessage *a = w2a_pbjson_unpack(d, data, size, &e1), *b = NULL;
  if (!w2a_pbjson_validate(d, data, size, &e2) &&
      !(b = protobuf_c_message_unpack(d, NULL, size, data)))
    w2a_errf(&e2, W2A_ENOMEM, "protobuf-c could not unpack %s (out of memory?)", d->name);
  if (!a != !b) abort();
  if (!a && strcmp(e1.msg, e2.msg)) abort();
  if (a) {
    size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
    if (na != nb) abort();
    uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    if (memcmp(pa, pb, na)) abort();
    free(pa);
    free(pb);
    protobuf_c_message_free_unpacked(a, NULL);
    protobuf_c_message_free_unpacked(b, NULL);
  }
  long left = size ? data[0] % 48 : 0;
  ProtobufCAllocator fa = {fail_alloc, fail_free, &left};
  ProtobufCMessage *m = w2a_pbjson_unpack_with(d, data, size, &fa, NULL);
  if (m) protobuf_c_message_free_unpacked(m, &fa);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(&warp__multi_agent__v1__response_event__descriptor, data, size);
  one(&warp__multi_agent__v1__request__descriptor, data, size);
  return 0;
}
