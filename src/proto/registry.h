/* registry.h - find any generated protobuf-c message or enum descriptor by name.
 *
 * The table holds every message protoc-c generated for the .proto files in proto/ and the
 * well-known types we compile (nested types included); it is produced at build time
 * from the generated headers (src/proto/registry.cmake), so a new message appears
 * here without code changes. Everything is static and read-only after a one-time,
 * thread-safe sort: callable from any thread. */
#ifndef W2A_PB_REGISTRY_H
#define W2A_PB_REGISTRY_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "common/err.h"

/* Look a message up by
 *   - full name, with or without the leading dot ("warp.multi_agent.v1.Request",
 *     ".google.protobuf.Struct"), or
 *   - any dotted suffix of it that names exactly one message ("Request",
 *     "Request.Input.UserQuery", "Struct").
 * NULL when unknown or ambiguous (w2a_pb_lookup says which). */
const ProtobufCMessageDescriptor *w2a_pb_find(const char *name);

/* Like w2a_pb_find, with a reason: W2A_ENOTFOUND ("no message named X") or
 * W2A_EINVAL ("X is ambiguous: A, B, ..."). */
int w2a_pb_lookup(const char *name, const ProtobufCMessageDescriptor **out, w2a_err *err);

/* Enums, same naming rules. */
const ProtobufCEnumDescriptor *w2a_pb_find_enum(const char *name);

/* Iteration over all messages, sorted by full name: i in [0, w2a_pb_count()). */
size_t w2a_pb_count(void);
const ProtobufCMessageDescriptor *w2a_pb_at(size_t i);

/* 1 when d is a synthesized map entry (protobuf-c represents map<K,V> as a repeated
 * nested "<Name>Entry" message with exactly key = 1 and value = 2). */
int w2a_pb_is_map_entry(const ProtobufCMessageDescriptor *d);

#endif
