/* smd.c - server_message_data expand/collapse; see smd.h.
 *
 * Decoding goes base64 -> bytes -> protobuf-c unpack; losslessness is decided by packing
 * the decoded fields again and comparing bytes and text with the input, which is cheaper
 * to get right than reasoning about every encoding a server might choose. The values
 * are tiny (the capture's is 14 bytes), so small stack buffers cover them and the heap
 * is only used for odd large inputs. */
#include "smd.h"

#include "pbjson.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "task.pb-c.h"

#define SMALL 256

void w2a_smd_free(w2a_smd *m) {
  free(m->uuid);
  m->uuid = NULL;
}

/* Serialized ServerMessageData for m, into small (or a heap block returned in *heap). */
static uint8_t *pack(const w2a_smd *m, uint8_t small[SMALL], uint8_t **heap, size_t *len) {
  Warp__MultiAgent__V1__ServerMessageData msg = WARP__MULTI_AGENT__V1__SERVER_MESSAGE_DATA__INIT;
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  msg.uuid = m->uuid ? m->uuid : (char *)protobuf_c_empty_string;
  if (m->has_timestamp) {
    ts.seconds = m->seconds;
    ts.nanos = m->nanos;
    msg.timestamp = &ts;
  }
  size_t n = warp__multi_agent__v1__server_message_data__get_packed_size(&msg);
  uint8_t *p = small;
  *heap = NULL;
  if (n > SMALL) {
    if (!(p = *heap = malloc(n))) return NULL;
  }
  *len = warp__multi_agent__v1__server_message_data__pack(&msg, p);
  return p;
}

int w2a_smd_collapse(const w2a_smd *m, w2a_buf *out, w2a_err *err) {
  uint8_t small[SMALL], *heap;
  size_t len;
  const uint8_t *p = pack(m, small, &heap, &len);
  if (!p) return w2a_errf(err, W2A_ENOMEM, "server_message_data: out of memory");
  int rc = w2a_buf_reserve(out, w2a_b64_enc_len(len));
  if (rc) {
    w2a_errf(err, rc, "server_message_data: %s", w2a_strerror(rc));
    goto out;
  }
  out->len += w2a_b64_encode(p, len, out->data + out->len, 1, m->padded);
out:
  free(heap);
  return rc;
}

int w2a_smd_expand(const char *s, size_t n, w2a_smd *out, w2a_err *err) {
  memset(out, 0, sizeof *out);
  uint8_t small[SMALL], *heap = NULL, *buf = small;
  Warp__MultiAgent__V1__ServerMessageData *msg = NULL;
  w2a_buf again;
  w2a_buf_init(&again, 0);
  int rc = 0;
  if (w2a_b64_dec_max(n) > SMALL && !(buf = heap = malloc(w2a_b64_dec_max(n)))) {
    rc = w2a_errf(err, W2A_ENOMEM, "server_message_data: out of memory");
    goto out;
  }
  size_t bad = 0;
  long len = w2a_b64_decode(s, n, buf, &bad);
  if (len < 0) {
    rc = w2a_errf(err, W2A_EINVAL, "server_message_data: bad base64 at character %zu", bad);
    goto out;
  }
  /* Validated first: protobuf-c 1.4.1 misbehaves on some malformed input. */
  msg = (Warp__MultiAgent__V1__ServerMessageData *)w2a_pbjson_unpack(
      &warp__multi_agent__v1__server_message_data__descriptor, buf, (size_t)len, NULL);
  if (!msg) {
    rc = w2a_errf(err, W2A_EINVAL, "server_message_data: not a ServerMessageData protobuf");
    goto out;
  }
  if (msg->uuid && msg->uuid[0] && !(out->uuid = strdup(msg->uuid))) {
    rc = w2a_errf(err, W2A_ENOMEM, "server_message_data: out of memory");
    goto out;
  }
  if (msg->timestamp) {
    out->has_timestamp = 1;
    out->seconds = msg->timestamp->seconds;
    out->nanos = msg->timestamp->nanos;
  }
  /* Padding is only visible when the byte count is not a multiple of 3. */
  out->padded = (n && s[n - 1] == '=') || len % 3 == 0;
  if (w2a_smd_collapse(out, &again, NULL) == 0)
    out->lossless = again.len == n && !memcmp(again.data, s, n);
out:
  if (msg) warp__multi_agent__v1__server_message_data__free_unpacked(msg, NULL);
  if (rc) w2a_smd_free(out);
  w2a_buf_free(&again);
  free(heap);
  return rc;
}

/* ---- JSON ----------------------------------------------------------------------------- */

json_object *w2a_smd_to_json(const w2a_smd *m) {
  json_object *o = json_object_new_object();
  if (!o) return NULL;
  if (m->uuid && json_object_object_add(o, "uuid", json_object_new_string(m->uuid))) goto fail;
  if (m->has_timestamp &&
      (json_object_object_add(o, "seconds", json_object_new_int64(m->seconds)) ||
       json_object_object_add(o, "nanos", json_object_new_int(m->nanos))))
    goto fail;
  if (!m->padded && json_object_object_add(o, "padded", json_object_new_boolean(0))) goto fail;
  return o;
fail:
  json_object_put(o);
  return NULL;
}

int w2a_smd_from_json(json_object *o, w2a_smd *out, w2a_err *err) {
  memset(out, 0, sizeof *out);
  out->padded = 1;
  out->lossless = 1;
  if (!json_object_is_type(o, json_type_object))
    return w2a_errf(err, W2A_EINVAL, "server_message_data: expected an object or a string");
  int rc = 0;
  json_object_object_foreach(o, key, val) {
    json_type t = json_object_get_type(val);
    if (!strcmp(key, "uuid")) {
      if (t == json_type_null) continue;
      if (t != json_type_string) {
        rc = w2a_errf(err, W2A_EINVAL, "server_message_data.uuid: expected a string");
        goto out;
      }
      free(out->uuid);
      out->uuid = NULL;
      if (json_object_get_string_len(val) &&
          !(out->uuid = w2a_strndup(json_object_get_string(val),
                                    (size_t)json_object_get_string_len(val)))) {
        rc = w2a_errf(err, W2A_ENOMEM, "server_message_data: out of memory");
        goto out;
      }
    } else if (!strcmp(key, "seconds")) {
      if (t == json_type_int) {
        errno = 0;
        out->seconds = json_object_get_int64(val);
        if (errno) t = json_type_null; /* out of range: rejected below */
      } else if (t == json_type_string) {
        const char *s = json_object_get_string(val);
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end)
          t = json_type_null;
        else
          out->seconds = v;
      }
      if (t != json_type_int && t != json_type_string) {
        rc = w2a_errf(err, W2A_EINVAL,
                      "server_message_data.seconds: expected an integer (or decimal string)");
        goto out;
      }
      out->has_timestamp = 1;
    } else if (!strcmp(key, "nanos")) {
      int64_t v = t == json_type_int ? json_object_get_int64(val) : -1;
      if (t != json_type_int || v < -999999999 || v > 999999999) {
        rc = w2a_errf(err, W2A_EINVAL,
                      "server_message_data.nanos: expected an integer within +-999999999");
        goto out;
      }
      out->nanos = (int32_t)v;
      out->has_timestamp = 1;
    } else if (!strcmp(key, "padded")) {
      if (t != json_type_boolean) {
        rc = w2a_errf(err, W2A_EINVAL, "server_message_data.padded: expected a boolean");
        goto out;
      }
      out->padded = json_object_get_boolean(val);
    } else {
      rc = w2a_errf(err, W2A_EINVAL, "server_message_data: unknown key \"%s\"", key);
      goto out;
    }
  }
out:
  if (rc) w2a_smd_free(out);
  return rc;
}

static int is_smd_key(const char *k) {
  return !strcmp(k, "server_message_data") || !strcmp(k, "serverMessageData");
}

static int expand_walk(json_object *o) {
  int count = 0, rc;
  if (json_object_is_type(o, json_type_array)) {
    size_t n = json_object_array_length(o);
    for (size_t i = 0; i < n; i++) {
      if ((rc = expand_walk(json_object_array_get_idx(o, i))) < 0) return rc;
      count += rc;
    }
    return count;
  }
  if (!json_object_is_type(o, json_type_object)) return 0;
  json_object_object_foreach(o, key, val) {
    if (is_smd_key(key) && json_object_is_type(val, json_type_string)) {
      w2a_smd m;
      if (w2a_smd_expand(json_object_get_string(val), (size_t)json_object_get_string_len(val), &m,
                         NULL))
        continue; /* not decodable: leave it as it came */
      json_object *x = m.lossless ? w2a_smd_to_json(&m) : NULL;
      int lossless = m.lossless;
      w2a_smd_free(&m);
      if (!lossless) continue;
      if (!x) return W2A_ENOMEM;
      /* Replacing the value of an existing key keeps the entry, so iteration is safe. */
      if (json_object_object_add(o, key, x)) return W2A_ENOMEM;
      count++;
    } else {
      if ((rc = expand_walk(val)) < 0) return rc;
      count += rc;
    }
  }
  return count;
}

int w2a_smd_expand_json(json_object *tree) { return expand_walk(tree); }

static void path_cut(w2a_buf *path, size_t len) {
  path->len = len;
  if (path->data) path->data[len] = 0;
}

/* path: the JSON path of o, for error messages ("$.task.messages[2]"). */
static int collapse_walk(json_object *o, w2a_buf *path, w2a_err *err) {
  int count = 0, rc;
  size_t plen = path->len;
  if (json_object_is_type(o, json_type_array)) {
    size_t n = json_object_array_length(o);
    for (size_t i = 0; i < n; i++) {
      w2a_buf_printf(path, "[%zu]", i);
      rc = collapse_walk(json_object_array_get_idx(o, i), path, err);
      if (rc < 0) return rc;
      path_cut(path, plen);
      count += rc;
    }
    return count;
  }
  if (!json_object_is_type(o, json_type_object)) return 0;
  json_object_object_foreach(o, key, val) {
    w2a_buf_printf(path, ".%s", key);
    if (is_smd_key(key) && json_object_is_type(val, json_type_object)) {
      w2a_smd m;
      w2a_err e = {0};
      w2a_buf text;
      w2a_buf_init(&text, 0);
      if ((rc = w2a_smd_from_json(val, &m, &e)) == 0) {
        rc = w2a_smd_collapse(&m, &text, &e);
        w2a_smd_free(&m);
      }
      json_object *s = rc ? NULL : json_object_new_string_len(text.data, (int)text.len);
      w2a_buf_free(&text);
      if (rc) return w2a_errf(err, rc, "$%s: %s", path->data, e.msg);
      if (!s || json_object_object_add(o, key, s)) return W2A_ENOMEM;
      count++;
    } else if ((rc = collapse_walk(val, path, err)) < 0) {
      return rc;
    } else {
      count += rc;
    }
    path_cut(path, plen);
  }
  return count;
}

int w2a_smd_collapse_json(json_object *tree, w2a_err *err) {
  w2a_buf path;
  w2a_buf_init(&path, 4096);
  w2a_buf_puts(&path, "");
  int rc = collapse_walk(tree, &path, err);
  w2a_buf_free(&path);
  return rc;
}
