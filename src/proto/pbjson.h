/* pbjson.h - generic JSON <-> protobuf transcoding for any generated message.
 *
 * Everything is driven by protobuf-c descriptors; there is no per-message code. The
 * JSON form follows the proto3 JSON mapping, with these choices:
 *   - output keys are proto field names ("user_inputs"); input accepts those and
 *     lowerCamelCase ("userInputs");
 *   - 64-bit integers are printed as strings, accepted as numbers or strings;
 *   - bytes are standard base64 with padding; input accepts base64url and no padding;
 *   - enums are printed by name; numbers are accepted, and values the enum does not
 *     define are kept and printed as numbers;
 *   - a set oneof member is printed even when it holds its default ("" or {}), so
 *     presence survives a round trip;
 *   - maps (repeated *Entry messages, see w2a_pb_is_map_entry) are JSON objects;
 *   - proto3 fields holding their default are omitted unless opts.emit_defaults;
 *   - google.protobuf.Struct/Value/ListValue/NullValue/Timestamp/FieldMask/Empty use
 *     their canonical JSON forms (object, any value, array, null, RFC 3339 string,
 *     "a.b,cD" string, {}). A Timestamp outside 0001..9999 is printed as the object
 *     {"seconds": "...", "nanos": n}, which input also accepts;
 *   - unknown fields are printed as "_unknown": [{"field": N, "wire_type": W,
 *     "data": "<base64>"}] at the level where they occur ("data" is the value without
 *     tag; for wire type 2 also without the length prefix). Input accepts the same key,
 *     so protobuf -> JSON -> protobuf keeps them (byte-identically when they were last
 *     in their message, which is where protobuf-c re-packs them).
 *
 * Known limits: protobuf-c keeps strings NUL-terminated, so a string containing U+0000
 * is rejected in both directions rather than silently cut. JSON has no place for
 * unknown fields inside the well-known types or inside map entries, nor for a Value
 * whose kind is unset (printed as null); those are the only protobuf -> JSON -> protobuf
 * losses. Message bytes come back in field-number order (what protobuf-c and protoc
 * write), so input written in another order round-trips by value, not byte for byte.
 *
 * Errors: JSON -> protobuf names the JSON path
 *   "$.input.user_inputs.inputs[0].user_query.query: expected string, got number";
 * protobuf -> JSON names the byte offset and field path
 *   "byte 57: invalid UTF-8 in string (field input.user_inputs.inputs.user_query.query)".
 * All functions are reentrant; temporaries live in a per-call arena. */
#ifndef W2A_PBJSON_H
#define W2A_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/buf.h"
#include "common/err.h"

#define W2A_PBJSON_MAX_DEPTH 100         /* default cap on message nesting */
#define W2A_PBJSON_STRUCT_MAX_DEPTH 64   /* default cap on Struct/Value nesting */
#define W2A_PBJSON_MAX_INPUT (32u << 20) /* default cap on input bytes */

typedef struct w2a_pbjson_opts {
  int pretty;              /* to JSON: two-space indentation and newlines */
  int emit_defaults;       /* to JSON: also print proto3 fields holding their default */
  int skip_unknown;        /* to JSON: leave out "_unknown"; from JSON: reject it */
  int ignore_unknown_keys; /* from JSON: skip keys naming no field instead of failing */
  size_t max_depth;        /* message nesting cap (0: W2A_PBJSON_MAX_DEPTH) */
  size_t struct_max_depth; /* Struct/Value nesting cap (0: W2A_PBJSON_STRUCT_MAX_DEPTH) */
  size_t max_input;        /* input size cap in bytes (0: W2A_PBJSON_MAX_INPUT) */
} w2a_pbjson_opts;

/* Serialized bytes -> JSON appended to out. Validates first (w2a_pbjson_validate), so
 * errors name a byte offset. NULL opts means defaults. */
int w2a_pbjson_to_json(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                       const w2a_pbjson_opts *o, w2a_buf *out, w2a_err *err);

/* An unpacked message -> JSON appended to out. Fails only on caps (output size,
 * depth) and on strings the wire could not carry (invalid UTF-8, NUL). */
int w2a_pbjson_msg_to_json(const ProtobufCMessage *m, const w2a_pbjson_opts *o, w2a_buf *out,
                           w2a_err *err);

/* JSON text (len bytes, need not be NUL-terminated) -> serialized bytes appended to
 * out_bytes. */
int w2a_pbjson_from_json(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                         const w2a_pbjson_opts *o, w2a_buf *out_bytes, w2a_err *err);

/* Walk the wire format of buf as message d without building anything: tags, varints,
 * lengths, wire types of known fields, UTF-8 of string fields, nesting caps. 0 when
 * protobuf_c_message_unpack is certain to accept it (memory permitting), else
 * W2A_EINVAL with "byte N: reason (field path)". NULL opts means defaults. */
int w2a_pbjson_validate_ex(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                           const w2a_pbjson_opts *o, w2a_err *err);
int w2a_pbjson_validate(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        w2a_err *err);
/* 1 when the n bytes at p are what validation accepts in a string field: UTF-8 (strict:
 * no overlong forms, no surrogates, nothing above U+10FFFF) without NUL bytes. Inline for
 * the validator's hot path and for readers of the wire that validate as they go: ids and
 * short fragments (8..64 bytes of ASCII) are settled by a few overlapping 16-byte blocks
 * (8-byte words below 16), anything else by w2a_pbjson_string_check. */
int w2a_pbjson_string_check(const uint8_t *p, size_t n);
/* The length of the longest prefix of the n bytes at p that is UTF-8 by the same strict
 * rules (NUL allowed): n when all of it is, else the offset of the first bad byte. For
 * text that will end up in string fields, checked whole before it is parsed (JSON
 * parsers' own checks let overlong forms and encoded surrogates through). */
size_t w2a_pbjson_utf8_prefix(const uint8_t *p, size_t n);
static inline int w2a_pbjson_string_ok(const uint8_t *p, size_t n) {
#ifdef __SSE2__
  if (n >= 16 && n <= 64) {
    /* Up to four 16-byte blocks, the last ending at n (overlapping): a byte is out when
     * it is 0 (the compare sets its high bit) or >= 0x80. SSE2 is part of x86-64. */
    const __m128i zero = _mm_setzero_si128();
    __m128i acc = _mm_loadu_si128((const __m128i *)(p + n - 16));
    for (size_t i = 0; i + 16 < n; i += 16) {
      __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
      acc = _mm_or_si128(acc, v);
      acc = _mm_or_si128(acc, _mm_cmpeq_epi8(v, zero));
    }
    acc = _mm_or_si128(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + n - 16)), zero));
    if (!_mm_movemask_epi8(acc)) return 1;
    return w2a_pbjson_string_check(p, n);
  }
#endif
  if (n >= 8 && n <= 64) {
    /* (w - 0x01..) | w has bit 7 of a byte set when that byte is 0 or >= 0x80. */
    const uint64_t ones = 0x0101010101010101ull;
    uint64_t acc = 0, w;
    for (size_t i = 0; i + 8 < n; i += 8) {
      memcpy(&w, p + i, 8);
      acc |= (w - ones) | w;
    }
    memcpy(&w, p + n - 8, 8);
    acc |= (w - ones) | w;
    if (!(acc & (ones << 7))) return 1;
  }
  return w2a_pbjson_string_check(p, n);
}

/* Validate, then unpack with the default allocator (free with
 * protobuf_c_message_free_unpacked). NULL on error, with err filled. Use it instead of
 * protobuf_c_message_unpack on bytes from outside: protobuf-c 1.4.1 merges a second
 * occurrence of a singular message field by reading out of bounds, and the validator
 * refuses such input first. The validation pass is table-driven, a small fraction of
 * the cost of the unpack itself (BENCHMARKS.md, "protocol"). */
ProtobufCMessage *w2a_pbjson_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                    size_t len, w2a_err *err);
/* The same with the caller's allocator (NULL: the default), e.g. an arena reset per
 * message on a hot path; free with protobuf_c_message_free_unpacked(m, a) or not at all
 * when the arena goes. */
ProtobufCMessage *w2a_pbjson_unpack_with(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                         size_t len, ProtobufCAllocator *a, w2a_err *err);

/* A JSON instance of d with every field holding a distinctive non-default value: the
 * first member of each oneof, two elements per repeated field, one map entry, nested
 * messages down to depth 4 (a type already being filled is left out, so recursive
 * schemas end). A template for writing input by hand (`proto sample`), and the per-type
 * cases of the protoc agreement test. */
int w2a_pbjson_sample(const ProtobufCMessageDescriptor *d, w2a_buf *out, w2a_err *err);

/* Number of unknown fields in m and every message below it. */
size_t w2a_pb_count_unknown(const ProtobufCMessage *m);

/* Reference implementations, for differential tests and benchmarks: the same contract
 * as w2a_pbjson_to_json, w2a_pbjson_from_json and w2a_pbjson_validate_ex, built on
 * protobuf-c (validate, unpack, print the structs; build structs, pack). The functions
 * above produce the same bytes, text and errors by other means (they read the wire and
 * write it directly) and hand any input they refuse to these, so error texts are theirs. */
int w2a_pbjson_to_json_ref(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                           const w2a_pbjson_opts *o, w2a_buf *out, w2a_err *err);
int w2a_pbjson_from_json_ref(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                             const w2a_pbjson_opts *o, w2a_buf *out_bytes, w2a_err *err);
int w2a_pbjson_validate_ref(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                            const w2a_pbjson_opts *o, w2a_err *err);

#endif
