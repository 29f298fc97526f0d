/* structjson.h - a json-c tree -> google.protobuf.Struct / Value / ListValue.
 *
 * JSON null, booleans, numbers (as doubles), strings, objects and arrays map onto the
 * Value kinds one for one. Every struct, string and pointer array is taken from the
 * caller's ProtobufCAllocator (NULL: malloc), so a request arena can own the whole tree;
 * the JSON tree is only read. Free a malloc-built result with
 * protobuf_c_message_free_unpacked(&x->base, NULL).
 *
 * Depth: the root is level 1, and every Struct and every Value below it is one level
 * more (an object inside an object costs two: its Value and its Struct; an array element
 * costs one). Deeper than max_depth is W2A_ETOOBIG, with err naming the JSON path of
 * the offending value ("$.a.b[2]: nested deeper than 64 levels"). On any failure *out
 * is NULL and nothing is left allocated (beyond what an arena allocator keeps). */
#ifndef W2A_STRUCTJSON_H
#define W2A_STRUCTJSON_H

#include <json-c/json.h>

#include "common/err.h"
#include "google/protobuf/struct.pb-c.h"

#define W2A_STRUCTJSON_MAX_DEPTH 64 /* used when max_depth <= 0 */

/* obj must be a JSON object (else W2A_EINVAL). 0, W2A_EINVAL, W2A_ENOMEM or
 * W2A_ETOOBIG. */
int w2a_struct_from_json(json_object *obj, ProtobufCAllocator *alloc, int max_depth,
                         Google__Protobuf__Struct **out, w2a_err *err);

/* Any JSON value (a NULL json_object is JSON null). Same codes. */
int w2a_value_from_json(json_object *j, ProtobufCAllocator *alloc, int max_depth,
                        Google__Protobuf__Value **out, w2a_err *err);

#endif
