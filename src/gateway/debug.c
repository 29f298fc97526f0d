/* debug.c - the seed's protocol debugging routes (spec §6.1), behind ADMIN_TOKEN.
 *
 *   POST /api/encode         {json_data | top-level fields, message_type?}
 *                            → {protobuf_bytes (base64), size, message_type}
 *   POST /api/decode         {protobuf_bytes, message_type?} → {json_data, size, message_type}
 *   POST /api/stream-decode  {protobuf_chunks:[b64…], message_type?}
 *                            → {chunks:[{chunk_index, json_data|error, size}], complete,
 *                               total_chunks, total_size, message_type}
 *   GET  /api/schemas        → {schemas:[{name, full_name, field_count, fields}],
 *                               total_count, message}
 *
 * message_type defaults to warp.multi_agent.v1.Request, except for stream-decode where
 * it is ResponseEvent (the seed's default, "…v1.Response", names no message: spec §7
 * item 9). Any registered message may be named, by full name or unique suffix. The
 * transcoding is src/proto/pbjson's; this file only speaks the seed's JSON shapes.
 * Without ADMIN_TOKEN the routes are disabled (403), so a gateway exposed with client
 * keys does not also expose a protocol workbench. */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/err.h"
#include "gateway/internal.h"
#include "proto/pbjson.h"
#include "proto/registry.h"

static void err_reply(w2a_gateway *g, w2a_http_req *r, w2a_gw_errkind k, const char *param,
                      const char *msg) {
  w2a_gw_error e;
  w2a_gw_errorf(&e, k, param, "%s", msg);
  w2a_gw_send_error(g, r, &e);
  w2a_gw_request_done(g);
}

static void json_reply(w2a_gateway *g, w2a_http_req *r, json_object *o) {
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  w2a_gw_send_json(g, r, 200, NULL, s, strlen(s));
  w2a_gw_request_done(g);
}

static const ProtobufCMessageDescriptor *msg_type(json_object *root, const char *dflt, char *why,
                                                  size_t n) {
  json_object *v;
  const char *name = dflt;
  const ProtobufCMessageDescriptor *d = NULL;
  w2a_err err = {0};
  if (json_object_object_get_ex(root, "message_type", &v) &&
      json_object_is_type(v, json_type_string))
    name = json_object_get_string(v);
  if (w2a_pb_lookup(name, &d, &err)) {
    snprintf(why, n, "message_type: %s", err.msg);
    return NULL;
  }
  return d;
}

/* base64 (either alphabet, padded or not) → bytes in out. */
static int b64_in(const char *s, w2a_buf *out) {
  size_t n = strlen(s), bad = 0;
  long len;
  if (w2a_buf_reserve(out, w2a_b64_dec_max(n) + 1)) return W2A_ENOMEM;
  len = w2a_b64_decode(s, n, (unsigned char *)out->data, &bad);
  if (len < 0) return W2A_EINVAL;
  out->len = (size_t)len;
  return 0;
}

static json_object *to_json(const ProtobufCMessageDescriptor *d, const w2a_buf *bytes, char *why,
                            size_t n) {
  w2a_buf js;
  w2a_err err = {0};
  json_object *o = NULL;
  w2a_buf_init(&js, 0);
  if (w2a_pbjson_to_json(d, (const uint8_t *)bytes->data, bytes->len, NULL, &js, &err))
    snprintf(why, n, "%s", err.msg);
  else if (!(o = json_tokener_parse(js.data ? js.data : "{}")))
    snprintf(why, n, "internal: transcoder output is not JSON");
  w2a_buf_free(&js);
  return o;
}

static void encode(w2a_gateway *g, w2a_http_req *r, json_object *root) {
  char why[512];
  const ProtobufCMessageDescriptor *d =
      msg_type(root, "warp.multi_agent.v1.Request", why, sizeof why);
  json_object *data, *out;
  const char *js;
  w2a_buf bytes;
  w2a_err err = {0};
  char *b64;
  if (!d) return err_reply(g, r, W2A_GWE_BAD_REQUEST, "message_type", why);
  if (!json_object_object_get_ex(root, "json_data", &data)) {
    /* The seed also takes the message's fields at the top level. */
    data = json_object_get(root);
    json_object_object_del(data, "message_type");
  } else {
    json_object_get(data);
  }
  js = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN);
  w2a_buf_init(&bytes, 0);
  if (w2a_pbjson_from_json(d, js, strlen(js), NULL, &bytes, &err)) {
    json_object_put(data);
    w2a_buf_free(&bytes);
    return err_reply(g, r, W2A_GWE_BAD_REQUEST, "json_data", err.msg);
  }
  json_object_put(data);
  b64 = malloc(w2a_b64_enc_len(bytes.len) + 1);
  if (!b64) {
    w2a_buf_free(&bytes);
    return err_reply(g, r, W2A_GWE_INTERNAL, NULL, "out of memory");
  }
  w2a_b64_encode(bytes.data ? bytes.data : "", bytes.len, b64, 0, 1);
  out = json_object_new_object();
  json_object_object_add(out, "protobuf_bytes", json_object_new_string(b64));
  json_object_object_add(out, "size", json_object_new_int64((int64_t)bytes.len));
  json_object_object_add(out, "message_type", json_object_new_string(d->name));
  json_reply(g, r, out);
  json_object_put(out);
  free(b64);
  w2a_buf_free(&bytes);
}

static void decode(w2a_gateway *g, w2a_http_req *r, json_object *root) {
  char why[512];
  const ProtobufCMessageDescriptor *d =
      msg_type(root, "warp.multi_agent.v1.Request", why, sizeof why);
  json_object *v, *j, *out;
  w2a_buf bytes;
  if (!d) return err_reply(g, r, W2A_GWE_BAD_REQUEST, "message_type", why);
  if (!json_object_object_get_ex(root, "protobuf_bytes", &v) ||
      !json_object_is_type(v, json_type_string))
    return err_reply(g, r, W2A_GWE_BAD_REQUEST, "protobuf_bytes",
                     "protobuf_bytes (base64 string) is required");
  w2a_buf_init(&bytes, 0);
  if (b64_in(json_object_get_string(v), &bytes)) {
    w2a_buf_free(&bytes);
    return err_reply(g, r, W2A_GWE_BAD_REQUEST, "protobuf_bytes", "protobuf_bytes is not base64");
  }
  if (!(j = to_json(d, &bytes, why, sizeof why))) {
    w2a_buf_free(&bytes);
    return err_reply(g, r, W2A_GWE_BAD_REQUEST, "protobuf_bytes", why);
  }
  out = json_object_new_object();
  json_object_object_add(out, "json_data", j);
  json_object_object_add(out, "size", json_object_new_int64((int64_t)bytes.len));
  json_object_object_add(out, "message_type", json_object_new_string(d->name));
  json_reply(g, r, out);
  json_object_put(out);
  w2a_buf_free(&bytes);
}

static void stream_decode(w2a_gateway *g, w2a_http_req *r, json_object *root) {
  char why[512];
  const ProtobufCMessageDescriptor *d =
      msg_type(root, "warp.multi_agent.v1.ResponseEvent", why, sizeof why);
  json_object *arr, *out, *chunks;
  size_t i, n, total = 0;
  int complete = 1;
  if (!d) return err_reply(g, r, W2A_GWE_BAD_REQUEST, "message_type", why);
  if (!json_object_object_get_ex(root, "protobuf_chunks", &arr) ||
      !json_object_is_type(arr, json_type_array))
    return err_reply(g, r, W2A_GWE_BAD_REQUEST, "protobuf_chunks",
                     "protobuf_chunks (array of base64 strings) is required");
  n = json_object_array_length(arr);
  chunks = json_object_new_array();
  for (i = 0; i < n; i++) {
    json_object *c = json_object_new_object(), *s = json_object_array_get_idx(arr, i), *j;
    w2a_buf bytes;
    w2a_buf_init(&bytes, 0);
    json_object_object_add(c, "chunk_index", json_object_new_int64((int64_t)i));
    if (!json_object_is_type(s, json_type_string) || b64_in(json_object_get_string(s), &bytes)) {
      json_object_object_add(c, "error", json_object_new_string("not a base64 string"));
      complete = 0;
    } else if (!(j = to_json(d, &bytes, why, sizeof why))) {
      json_object_object_add(c, "error", json_object_new_string(why));
      complete = 0;
    } else {
      json_object_object_add(c, "json_data", j);
    }
    json_object_object_add(c, "size", json_object_new_int64((int64_t)bytes.len));
    total += bytes.len;
    json_object_array_add(chunks, c);
    w2a_buf_free(&bytes);
  }
  out = json_object_new_object();
  json_object_object_add(out, "chunks", chunks);
  json_object_object_add(out, "complete", json_object_new_boolean(complete));
  json_object_object_add(out, "total_chunks", json_object_new_int64((int64_t)n));
  json_object_object_add(out, "total_size", json_object_new_int64((int64_t)total));
  json_object_object_add(out, "message_type", json_object_new_string(d->name));
  json_reply(g, r, out);
  json_object_put(out);
}

static const char *label_name(ProtobufCLabel l) {
  return l == PROTOBUF_C_LABEL_REPEATED   ? "repeated"
         : l == PROTOBUF_C_LABEL_REQUIRED ? "required"
                                          : "optional";
}

static const char *type_name(const ProtobufCFieldDescriptor *f) {
  static const char *const names[] = {
      "int32",   "sint32", "sfixed32", "int64", "sint64", "sfixed64", "uint32", "fixed32", "uint64",
      "fixed64", "float",  "double",   "bool",  "enum",   "string",   "bytes",  "message"};
  if (f->type == PROTOBUF_C_TYPE_MESSAGE)
    return ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
  if (f->type == PROTOBUF_C_TYPE_ENUM)
    return ((const ProtobufCEnumDescriptor *)f->descriptor)->name;
  return (size_t)f->type < sizeof names / sizeof names[0] ? names[f->type] : "?";
}

static void schemas(w2a_gateway *g, w2a_http_req *r) {
  json_object *out = json_object_new_object(), *arr = json_object_new_array();
  size_t i, n = w2a_pb_count();
  for (i = 0; i < n; i++) {
    const ProtobufCMessageDescriptor *d = w2a_pb_at(i);
    json_object *s = json_object_new_object(), *fields = json_object_new_array();
    unsigned k;
    json_object_object_add(s, "name", json_object_new_string(d->short_name));
    json_object_object_add(s, "full_name", json_object_new_string(d->name));
    json_object_object_add(s, "field_count", json_object_new_int((int)d->n_fields));
    for (k = 0; k < d->n_fields && k < 10; k++) {
      json_object *f = json_object_new_object();
      json_object_object_add(f, "name", json_object_new_string(d->fields[k].name));
      json_object_object_add(f, "number", json_object_new_int((int)d->fields[k].id));
      json_object_object_add(f, "label", json_object_new_string(label_name(d->fields[k].label)));
      json_object_object_add(f, "type", json_object_new_string(type_name(&d->fields[k])));
      json_object_array_add(fields, f);
    }
    json_object_object_add(s, "fields", fields);
    json_object_array_add(arr, s);
  }
  json_object_object_add(out, "schemas", arr);
  json_object_object_add(out, "total_count", json_object_new_int64((int64_t)n));
  json_object_object_add(
      out, "message",
      json_object_new_string("protobuf message types known to warp2api (fields: the first 10)"));
  json_reply(g, r, out);
  json_object_put(out);
}

void w2a_gw_debug_handle(w2a_gateway *g, w2a_http_req *r) {
  const char *p = r->path;
  int post = !strcmp(r->method, "POST");
  json_object *root;
  if (!g->cfg->admin_token || !*g->cfg->admin_token)
    return err_reply(g, r, W2A_GWE_ADMIN_DISABLED, NULL,
                     "the protocol debugging routes are disabled: set ADMIN_TOKEN to use them");
  if (!w2a_gw_admin_authorized(g, r))
    return err_reply(g, r, W2A_GWE_ADMIN_AUTH, NULL,
                     "admin token required: \"Authorization: Bearer <ADMIN_TOKEN>\"");
  if (!strcmp(p, "/api/schemas")) {
    if (strcmp(r->method, "GET")) return err_reply(g, r, W2A_GWE_METHOD, NULL, "use GET");
    return schemas(g, r);
  }
  if (strcmp(p, "/api/encode") && strcmp(p, "/api/decode") && strcmp(p, "/api/stream-decode"))
    return err_reply(g, r, W2A_GWE_NOT_FOUND, NULL, "no such debugging route");
  if (!post) return err_reply(g, r, W2A_GWE_METHOD, NULL, "use POST");
  root = json_tokener_parse(r->body ? r->body : "");
  if (!root || !json_object_is_type(root, json_type_object)) {
    json_object_put(root);
    return err_reply(g, r, W2A_GWE_INVALID_JSON, NULL, "the body must be a JSON object");
  }
  if (!strcmp(p, "/api/encode"))
    encode(g, r, root);
  else if (!strcmp(p, "/api/decode"))
    decode(g, r, root);
  else
    stream_decode(g, r, root);
  json_object_put(root);
}
