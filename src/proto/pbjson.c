/* pbjson.c - JSON <-> protobuf for any message, driven by protobuf-c descriptors.
 *
 * Two implementations of each direction live here. The reference ones are built on
 * protobuf-c: validate the wire, unpack into structs, print them; parse JSON into a
 * tree, build structs, protobuf_c_message_pack. The fast ones (the public entry points)
 * produce exactly the same bytes and text without the structs: bytes -> JSON reads each
 * message once into per-field records and prints them with unpack's rules; JSON -> bytes
 * walks the tree as the builder does, keeping each field's wire-ready value and size, and
 * writes every byte once. On anything they refuse (bad input, caps, proto2 rules) they
 * hand the same input to the reference path, so every error text is the reference's;
 * tests/unit/test_pbjson_diff.c and both fuzz targets hold the two to byte equality.
 *
 * Sections, in file order:
 *   1. a per-call arena, handed to protobuf-c as its allocator and used for every
 *      temporary (JSON tree, messages built from JSON), freed in one sweep;
 *   2. the reference wire validator: walks tags and lengths with the descriptor and names
 *      the byte offset of the first problem, because protobuf_c_message_unpack only says
 *      NULL. It is deliberately at least as strict as protobuf-c (tag varints of at most
 *      5 bytes, length prefixes of at most 5, packed bools of 0/1 bytes, no groups, no
 *      second occurrence of a singular message field, which protobuf-c 1.4.1 merges
 *      unsafely), so that after it passes, unpack fails only for lack of memory;
 *   3. the reference emitter: unpacked message -> JSON text written into a w2a_buf (also
 *      w2a_pbjson_msg_to_json, for callers holding structs);
 *   4. the JSON reader: a strict RFC 8259 parser into an arena tree (json-c took 210 µs
 *      for a 20 KB request and clamps out-of-range integers silently), shared by both
 *      encoders, then the reference builder: tree -> protobuf-c structs -> pack;
 *   5. per-descriptor tables, built once from the registry (field by number and by name,
 *      oneof groups, pre-encoded tags);
 *   6. the fast validator: the same accept set as 2, without error text;
 *   7. bytes -> JSON from the wire; 8. JSON tree -> bytes.
 *
 * Strings in messages built from JSON point into the arena tree (NUL-terminated
 * copies), so nothing is copied twice and nothing outlives the call. */
#include "proto/pbjson.h"

#include <assert.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "proto/registry.h"

/* ---- 1. arena ------------------------------------------------------------------------ */

typedef struct chunk {
  struct chunk *next;
  size_t size, used;
} chunk;

#define CHUNK_HDR ((sizeof(chunk) + 15) & ~(size_t)15)

typedef struct arena {
  chunk *head;
  size_t total, cap, next_size;
} arena;

/* first: expected need, so a typical call makes one or two mallocs. */
static void arena_init(arena *a, size_t cap, size_t first) {
  a->head = NULL;
  a->total = 0;
  a->cap = cap;
  a->next_size = first < 16384 ? 16384 : first > (4u << 20) ? (4u << 20) : first;
}

static void *arena_grow(arena *a, size_t n);

/* Inline: it runs for every JSON string and node. */
static inline void *arena_alloc(arena *a, size_t n) {
  if (n > a->cap) return NULL;
  n = n ? (n + 15) & ~(size_t)15 : 16;
  chunk *c = a->head;
  if (c && c->size - c->used >= n) {
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += n;
    return p;
  }
  return arena_grow(a, n);
}

/* n is rounded and at most the cap. */
static void *arena_grow(arena *a, size_t n) {
  chunk *c;
  size_t sz = a->next_size > n ? a->next_size : n;
  if (a->total + sz > a->cap) return NULL;
  c = malloc(CHUNK_HDR + sz);
  if (!c) return NULL;
  c->next = a->head;
  c->size = sz;
  c->used = n;
  a->head = c;
  a->total += sz;
  if (a->next_size < (4u << 20)) a->next_size *= 2;
  return (char *)c + CHUNK_HDR;
}

static void arena_free(arena *a) {
  for (chunk *c = a->head, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  a->head = NULL;
}

/* A point to roll the arena back to: what a failed attempt allocated is given back, so
 * the fallback after it has the whole cap to itself. */
typedef struct amark {
  chunk *head;
  size_t used, total;
} amark;

static amark arena_mark(const arena *a) {
  amark m = {a->head, a->head ? a->head->used : 0, a->total};
  return m;
}

static void arena_release(arena *a, amark m) {
  while (a->head != m.head) {
    chunk *n = a->head->next;
    free(a->head);
    a->head = n;
  }
  if (a->head) a->head->used = m.used;
  a->total = m.total;
}

static void *pa_alloc(void *data, size_t n) { return arena_alloc(data, n); }
static void pa_free(void *data, void *p) { (void)data, (void)p; }

/* Memory protobuf-c may need for an input of len bytes: every 2-byte empty
 * sub-message can cost a struct of ~100 bytes, hence the generous factor. */
static size_t arena_cap_for(size_t len) {
  return len > (SIZE_MAX - (1u << 20)) / 128 ? SIZE_MAX / 2 : len * 128 + (1u << 20);
}

/* ---- shared helpers ------------------------------------------------------------------ */

static void opts_resolve(const w2a_pbjson_opts *in, w2a_pbjson_opts *o) {
  if (in)
    *o = *in;
  else
    memset(o, 0, sizeof *o);
  if (!o->max_depth) o->max_depth = W2A_PBJSON_MAX_DEPTH;
  if (!o->struct_max_depth) o->struct_max_depth = W2A_PBJSON_STRUCT_MAX_DEPTH;
  if (!o->max_input) o->max_input = W2A_PBJSON_MAX_INPUT;
}

static int is_value(const ProtobufCMessageDescriptor *d) {
  return d == &google__protobuf__value__descriptor;
}

/* Struct, Value, ListValue and Struct's map entries: their nesting is capped by
 * struct_max_depth (counting Values), not by max_depth. */
static int struct_family(const ProtobufCMessageDescriptor *d) {
  return d == &google__protobuf__value__descriptor || d == &google__protobuf__struct__descriptor ||
         d == &google__protobuf__list_value__descriptor ||
         d == &google__protobuf__struct__fields_entry__descriptor;
}

static int field_is_value(const ProtobufCFieldDescriptor *f) {
  return f->type == PROTOBUF_C_TYPE_MESSAGE && is_value(f->descriptor);
}

static int field_is_null_enum(const ProtobufCFieldDescriptor *f) {
  return f->type == PROTOBUF_C_TYPE_ENUM &&
         f->descriptor == &google__protobuf__null_value__descriptor;
}

static inline size_t elem_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_ENUM: return 4;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return 8;
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  }
  return 0;
}

static const char *type_name(ProtobufCType t) {
  static const char *const names[] = {
      [PROTOBUF_C_TYPE_INT32] = "int32",       [PROTOBUF_C_TYPE_SINT32] = "sint32",
      [PROTOBUF_C_TYPE_SFIXED32] = "sfixed32", [PROTOBUF_C_TYPE_INT64] = "int64",
      [PROTOBUF_C_TYPE_SINT64] = "sint64",     [PROTOBUF_C_TYPE_SFIXED64] = "sfixed64",
      [PROTOBUF_C_TYPE_UINT32] = "uint32",     [PROTOBUF_C_TYPE_FIXED32] = "fixed32",
      [PROTOBUF_C_TYPE_UINT64] = "uint64",     [PROTOBUF_C_TYPE_FIXED64] = "fixed64",
      [PROTOBUF_C_TYPE_FLOAT] = "float",       [PROTOBUF_C_TYPE_DOUBLE] = "double",
      [PROTOBUF_C_TYPE_BOOL] = "bool",         [PROTOBUF_C_TYPE_ENUM] = "enum",
      [PROTOBUF_C_TYPE_STRING] = "string",     [PROTOBUF_C_TYPE_BYTES] = "bytes",
      [PROTOBUF_C_TYPE_MESSAGE] = "message",
  };
  return (unsigned)t < sizeof names / sizeof names[0] && names[t] ? names[t] : "?";
}

/* Length of the valid multi-byte UTF-8 sequence at s (s[0] >= 0x80), or 0. Strict: no
 * overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  size_t need;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf)
    need = 1, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    need = 2, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    need = 3, cp = c & 0x07;
  else
    return 0;
  if (n <= need) return 0;
  for (size_t k = 1; k <= need; k++) {
    if ((s[k] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[k] & 0x3f);
  }
  if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return need + 1;
}

/* Offset of the first byte that is not valid UTF-8 (or is NUL when nul_bad), or n.
 * Strict: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_check(const uint8_t *s, size_t n, int nul_bad) {
  size_t i = 0;
  while (i < n) {
    /* ASCII fast path, sixteen then eight bytes at a time. */
    while (i + 16 <= n) {
      uint64_t a, b;
      memcpy(&a, s + i, 8);
      memcpy(&b, s + i + 8, 8);
      /* (w - 0x01..) | w has bit 7 of a byte set when that byte is 0 or >= 0x80 (a borrow
       * reaches a byte only past a lower zero byte, which is caught itself). */
      if (nul_bad ? (((a - 0x0101010101010101ull) | a) | ((b - 0x0101010101010101ull) | b)) &
                        0x8080808080808080ull
                  : (a | b) & 0x8080808080808080ull)
        break;
      i += 16;
    }
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull) break;
      if (nul_bad && ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull)) break;
      i += 8;
    }
    if (i >= n) break;
    if (i + 8 > n && n >= 8) { /* the last 1-7 bytes, as one word ending at n */
      uint64_t w;
      memcpy(&w, s + n - 8, 8);
      if (!(w & 0x8080808080808080ull) &&
          !(nul_bad && ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull)))
        return n;
    }
    uint8_t c = s[i];
    if (c < 0x80) {
      if (!c && nul_bad) return i;
      i++;
      continue;
    }
    size_t k = utf8_seq(s + i, n - i);
    if (!k) return i;
    i += k;
  }
  return n;
}

int w2a_pbjson_string_check(const uint8_t *p, size_t n) { return utf8_check(p, n, 1) == n; }
size_t w2a_pbjson_utf8_prefix(const uint8_t *p, size_t n) { return utf8_check(p, n, 0); }

/* 0 ok, -1 truncated, -2 longer than max bytes. */
static int rd_varint(const uint8_t *p, size_t n, size_t max, uint64_t *v, size_t *used) {
  uint64_t r = 0;
  for (size_t i = 0; i < max; i++) {
    if (i >= n) return -1;
    r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = r;
      *used = i + 1;
      return 0;
    }
  }
  return -2;
}

static size_t wr_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* ---- 2. wire validator --------------------------------------------------------------- */

#define SCAN_PATH_MAX 48

typedef struct scan {
  const uint8_t *base;
  w2a_err *err;
  size_t max_depth, smax;
  size_t npath;
  const char *path[SCAN_PATH_MAX];
} scan;

static int scan_fail(scan *s, const uint8_t *at, const ProtobufCFieldDescriptor *f, uint32_t fnum,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int scan_fail(scan *s, const uint8_t *at, const ProtobufCFieldDescriptor *f, uint32_t fnum,
                     const char *fmt, ...) {
  char why[128], path[96];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  size_t used = 0;
  path[0] = 0;
  size_t from = s->npath > SCAN_PATH_MAX ? SCAN_PATH_MAX : s->npath;
  for (size_t i = 0; i < from && used < sizeof path; i++) {
    int w = snprintf(path + used, sizeof path - used, "%s.", s->path[i]);
    if (w > 0) used += (size_t)w;
  }
  if (used < sizeof path) {
    if (f)
      snprintf(path + used, sizeof path - used, "%s", f->name);
    else if (fnum)
      snprintf(path + used, sizeof path - used, "#%u", fnum);
    else if (used)
      path[used - 1] = 0;
  }
  return w2a_errf(s->err, W2A_EINVAL, "byte %zu: %s%s%s%s", (size_t)(at - s->base), why,
                  path[0] ? " (field " : "", path, path[0] ? ")" : "");
}

static int wt_ok(ProtobufCType t, int wt) {
  switch (t) {
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32: return wt == 5;
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64: return wt == 1;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE: return wt == 2;
  default: return wt == 0;
  }
}

static const char *const wt_names[8] = {"varint",    "64-bit", "length-delimited", "start-group",
                                        "end-group", "32-bit", "invalid",          "invalid"};

static int scan_msg(scan *s, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                    const uint8_t *end, size_t depth, size_t sdepth);

static int scan_packed(scan *s, const ProtobufCFieldDescriptor *f, const uint8_t *p,
                       const uint8_t *end) {
  size_t len = (size_t)(end - p);
  switch (f->type) {
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if (len % 4)
      return scan_fail(s, p, f, 0, "packed 32-bit values: length %zu not a multiple of 4", len);
    return 0;
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if (len % 8)
      return scan_fail(s, p, f, 0, "packed 64-bit values: length %zu not a multiple of 8", len);
    return 0;
  case PROTOBUF_C_TYPE_BOOL:
    /* protobuf-c reads packed bools one byte each and refuses anything but 0 and 1. */
    for (const uint8_t *q = p; q < end; q++)
      if (*q > 1) return scan_fail(s, q, f, 0, "packed bool value is not 0 or 1");
    return 0;
  default:
    while (p < end) {
      uint64_t v;
      size_t u;
      int r = rd_varint(p, (size_t)(end - p), 10, &v, &u);
      if (r)
        return scan_fail(s, p, f, 0,
                         r == -1 ? "truncated varint in packed field"
                                 : "varint longer than 10 bytes");
      p += u;
    }
    return 0;
  }
}

static int scan_msg(scan *s, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                    const uint8_t *end, size_t depth, size_t sdepth) {
  uint64_t seen[4] = {0}; /* singular message fields met so far, by field index */
  while (p < end) {
    const uint8_t *tagp = p;
    uint64_t tag, v;
    size_t u;
    int r = rd_varint(p, (size_t)(end - p), 5, &tag, &u);
    if (r)
      return scan_fail(s, tagp, NULL, 0,
                       r == -1 ? "truncated varint in tag" : "tag varint longer than 5 bytes");
    p += u;
    uint64_t fnum64 = tag >> 3;
    int wt = (int)(tag & 7);
    if (fnum64 == 0) return scan_fail(s, tagp, NULL, 0, "field number 0");
    if (fnum64 > 0x1fffffff)
      return scan_fail(s, tagp, NULL, 0, "field number %llu too large", (unsigned long long)fnum64);
    uint32_t fnum = (uint32_t)fnum64;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, fnum);
    if (wt == 3 || wt == 4)
      return scan_fail(s, tagp, f, fnum, "group wire type %d (%s) is not supported", wt,
                       wt_names[wt]);
    if (wt > 5) return scan_fail(s, tagp, f, fnum, "invalid wire type %d", wt);
    if (f && !wt_ok(f->type, wt) &&
        !(wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED && elem_size(f->type) <= 8 &&
          f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES &&
          f->type != PROTOBUF_C_TYPE_MESSAGE))
      return scan_fail(s, tagp, f, fnum, "wire type %d (%s) does not fit a field of type %s", wt,
                       wt_names[wt], type_name(f->type));
    switch (wt) {
    case 0:
      r = rd_varint(p, (size_t)(end - p), 10, &v, &u);
      if (r)
        return scan_fail(s, p, f, fnum,
                         r == -1 ? "truncated varint" : "varint longer than 10 bytes");
      p += u;
      break;
    case 1:
    case 5: {
      size_t need = wt == 1 ? 8 : 4;
      if ((size_t)(end - p) < need)
        return scan_fail(s, p, f, fnum, "truncated %s value (%zu of %zu bytes)", wt_names[wt],
                         (size_t)(end - p), need);
      p += need;
      break;
    }
    case 2: {
      const uint8_t *lenp = p;
      r = rd_varint(p, (size_t)(end - p), 5, &v, &u);
      if (r)
        return scan_fail(s, lenp, f, fnum,
                         r == -1 ? "truncated length prefix" : "length prefix longer than 5 bytes");
      p += u;
      if (v > (uint64_t)(end - p))
        return scan_fail(s, lenp, f, fnum, "length %llu runs past the end (%zu bytes left)",
                         (unsigned long long)v, (size_t)(end - p));
      const uint8_t *vend = p + v;
      if (f) {
        if (f->type == PROTOBUF_C_TYPE_STRING) {
          size_t bad = utf8_check(p, (size_t)v, 1);
          if (bad < v)
            return scan_fail(s, p + bad, f, fnum,
                             p[bad] ? "invalid UTF-8 in string"
                                    : "NUL byte in string (not representable)");
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
          const ProtobufCMessageDescriptor *sd = f->descriptor;
          /* A second occurrence makes protobuf-c 1.4 merge the two, and its merge reads
           * fields[-1] when a oneof is unset in both (out of bounds, then memcpy with
           * whatever offsets it found there). Proto encoders never repeat a singular
           * field, so refuse it rather than hand such bytes to unpack. */
          size_t fi = (size_t)(f - d->fields);
          if (f->label != PROTOBUF_C_LABEL_REPEATED && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
              fi < 256) {
            if (seen[fi / 64] >> (fi % 64) & 1)
              return scan_fail(s, tagp, f, fnum,
                               "message field occurs twice (protobuf-c cannot merge it safely)");
            seen[fi / 64] |= 1ull << (fi % 64);
          }
          size_t sd2 = sdepth + (is_value(sd) ? 1 : 0);
          size_t d2 = depth + (struct_family(sd) ? 0 : 1);
          if (d2 > s->max_depth)
            return scan_fail(s, tagp, f, fnum, "messages nested deeper than %zu", s->max_depth);
          if (sd2 > s->smax)
            return scan_fail(s, tagp, f, fnum, "Struct/Value nested deeper than %zu", s->smax);
          if (s->npath < SCAN_PATH_MAX) s->path[s->npath] = f->name;
          s->npath++;
          r = scan_msg(s, sd, p, vend, d2, sd2);
          s->npath--;
          if (r) return r;
        } else if (f->type != PROTOBUF_C_TYPE_BYTES) {
          if ((r = scan_packed(s, f, p, vend))) return r;
        }
      }
      p = vend;
      break;
    }
    }
  }
  return 0;
}

int w2a_pbjson_validate_ref(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                            const w2a_pbjson_opts *oin, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  if (len > o.max_input)
    return w2a_errf(err, W2A_ETOOBIG, "input of %zu bytes exceeds the cap of %zu", len,
                    o.max_input);
  scan s = {.base = buf, .err = err, .max_depth = o.max_depth, .smax = o.struct_max_depth};
  if (!buf) buf = (const uint8_t *)"";
  s.base = buf;
  return scan_msg(&s, d, buf, buf + len, struct_family(d) ? 0 : 1, is_value(d) ? 1 : 0);
}

/* ---- 3. emitter ---------------------------------------------------------------------- */

typedef struct emitter {
  w2a_buf *b;
  const w2a_pbjson_opts *o;
  w2a_err *err;
  int rc;      /* sticky: first failure wins, later writes are skipped */
  int trusted; /* strings came through the validator: skip the UTF-8 check */
  size_t depth, sdepth;
  int indent;
} emitter;

static int emit_failf(emitter *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int emit_failf(emitter *e, int code, const char *fmt, ...) {
  if (e->rc) return e->rc;
  e->rc = code;
  if (e->err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err->msg, sizeof e->err->msg, fmt, ap);
    va_end(ap);
    e->err->code = code;
  }
  return code;
}

static void buf_fail(emitter *e, int rc) {
  if (rc == W2A_ETOOBIG)
    emit_failf(e, rc, "JSON output exceeds the cap of %zu bytes", e->b->limit);
  else
    emit_failf(e, rc, "out of memory");
}

static void put_slow(emitter *e, const char *s, size_t n) {
  if (e->rc) return;
  int rc = w2a_buf_append(e->b, s, n);
  if (rc) buf_fail(e, rc);
}

/* Inline fast path: most writes fit in the space already reserved. */
static inline void put(emitter *e, const char *s, size_t n) {
  w2a_buf *b = e->b;
  if (!e->rc && n < b->cap - b->len && n <= b->limit - b->len) {
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return;
  }
  put_slow(e, s, n);
}

#define PUTS(e, lit) put((e), (lit), sizeof(lit) - 1)

static void putc_(emitter *e, char c) { put(e, &c, 1); }

/* Bytes that need escaping in a JSON string: controls, '"' and '\\'. */
static const uint8_t json_esc[256] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                      1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                      1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, ['\\'] = 1};

/* A JSON string literal (common/buf.c escapes for the whole project). */
static void put_str(emitter *e, const char *s, size_t n) {
  if (e->rc) return;
  int rc = w2a_buf_put_json_str(e->b, s, n);
  if (rc) buf_fail(e, rc);
}

static void newline(emitter *e) {
  if (!e->o->pretty) return;
  static const char sp[] = "\n                                                                ";
  size_t n = (size_t)e->indent * 2;
  put(e, sp, 1);
  while (n) {
    size_t k = n < sizeof sp - 2 ? n : sizeof sp - 2;
    put(e, sp + 1, k);
    n -= k;
  }
}

static void open_(emitter *e, char c) {
  putc_(e, c);
  e->indent++;
}

static void item(emitter *e, int *first) {
  if (!*first) putc_(e, ',');
  *first = 0;
  newline(e);
}

static void close_(emitter *e, char c, int first) {
  e->indent--;
  if (!first) newline(e);
  putc_(e, c);
}

static void keyn(emitter *e, const char *k, size_t n) {
  w2a_buf *b = e->b;
  if (!e->rc && !e->o->pretty && n + 3 < b->cap - b->len && n + 3 <= b->limit - b->len) {
    char *w = b->data + b->len;
    w[0] = '"';
    memcpy(w + 1, k, n);
    w[n + 1] = '"';
    w[n + 2] = ':';
    w[n + 3] = 0;
    b->len += n + 3;
    return;
  }
  putc_(e, '"');
  put(e, k, n);
  if (e->o->pretty)
    PUTS(e, "\": ");
  else
    PUTS(e, "\":");
}

static void key(emitter *e, const char *k) { keyn(e, k, strlen(k)); }

static char *fmt_u64(uint64_t v, char *end) {
  *--end = 0;
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

static void put_i64(emitter *e, int64_t v, int quote) {
  char tmp[24], *p = fmt_u64(v < 0 ? -(uint64_t)v : (uint64_t)v, tmp + sizeof tmp);
  if (v < 0) *--p = '-';
  if (quote) *--p = '"';
  size_t n = strlen(p);
  if (quote) p[n++] = '"'; /* tmp has room: at most 21 chars used */
  put(e, p, n);
}

static void put_u64(emitter *e, uint64_t v, int quote) {
  char tmp[24], *p = fmt_u64(v, tmp + sizeof tmp - 1);
  if (quote) *--p = '"';
  size_t n = strlen(p);
  if (quote) p[n++] = '"';
  put(e, p, n);
}

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* What "%.15g" (P = 15; "%.6g", P = 6, for floats) prints for v when that reads back as v
 * and is in fixed notation, without snprintf; 0 when v needs the general path. Why it
 * agrees: a decimal D of at most P significant digits that reads back as v is the only
 * one (DBL_DIG/FLT_DIG), v is within half an ulp of it, so rounding v to P digits gives
 * D. D = m / 10^k is found with m < 10^P < 2^53 and 10^k exact, where one correctly
 * rounded division is strtod's answer. */
static size_t fmt_short_fixed(double v, int is_float, char *out) {
  int P = is_float ? 6 : 15;
  double av = v < 0 ? -v : v;
  if (!(av >= 1e-4 && av < pow10_tab[P])) return 0; /* also 0 and NaN */
  for (int k = 1; k <= P + 4; k++) {
    double s = av * pow10_tab[k];
    if (s >= pow10_tab[P]) return 0;
    double m = (double)(uint64_t)(s + 0.5); /* 0 <= s < 1e15: floor(s + 0.5) */
    if (m == 0) continue;
    double back = m / pow10_tab[k];
    if (is_float ? (float)back != (float)av : back != av) continue;
    uint64_t mi = (uint64_t)m;
    while (k > 0 && mi % 10 == 0)
      mi /= 10, k--;
    char dig[24], *d = fmt_u64(mi, dig + sizeof dig);
    int nd = (int)(dig + sizeof dig - 1 - d);
    if (nd - 1 - k < -4) return 0; /* %g would use an exponent */
    char *w = out;
    if (v < 0) *w++ = '-';
    if (k >= nd) {
      *w++ = '0';
      *w++ = '.';
      for (int z = 0; z < k - nd; z++)
        *w++ = '0';
      memcpy(w, d, (size_t)nd);
      w += nd;
    } else {
      memcpy(w, d, (size_t)(nd - k));
      w += nd - k;
      if (k) {
        *w++ = '.';
        memcpy(w, d + nd - k, (size_t)k);
        w += k;
      }
    }
    return (size_t)(w - out);
  }
  return 0;
}

/* Shortest of %.{6,9}g (float) or %.{15,17}g (double) that reads back exactly, as
 * Google's SimpleFtoa/SimpleDtoa do. */
static void put_double(emitter *e, double v, int is_float) {
  if (isnan(v)) return (void)PUTS(e, "\"NaN\"");
  if (isinf(v)) return v > 0 ? (void)PUTS(e, "\"Infinity\"") : (void)PUTS(e, "\"-Infinity\"");
  /* Integers print as %.{6,15}g would print them, without the round trip through
   * snprintf and strtod (most Struct numbers are counts). */
  if (v > (is_float ? -1e6 : -1e15) && v < (is_float ? 1e6 : 1e15) && v == (double)(int64_t)v &&
      !(v == 0 && signbit(v)))
    return put_i64(e, (int64_t)v, 0);
  char tmp[40];
  size_t fl = fmt_short_fixed(v, is_float, tmp);
  if (fl) return put(e, tmp, fl);
  int n;
  if (is_float) {
    n = snprintf(tmp, sizeof tmp, "%.*g", FLT_DIG, v);
    if ((float)strtod(tmp, NULL) != (float)v) n = snprintf(tmp, sizeof tmp, "%.9g", v);
  } else {
    n = snprintf(tmp, sizeof tmp, "%.*g", DBL_DIG, v);
    if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof tmp, "%.17g", v);
  }
  put(e, tmp, (size_t)n);
}

static void put_b64(emitter *e, const uint8_t *p, size_t n) {
  if (e->rc) return;
  size_t need = w2a_b64_enc_len(n) + 2;
  int rc = w2a_buf_reserve(e->b, need);
  if (rc) {
    buf_fail(e, rc);
    return;
  }
  char *o = e->b->data + e->b->len;
  o[0] = '"';
  size_t w = w2a_b64_encode(p, n, o + 1, 0, 1);
  o[1 + w] = '"';
  e->b->len += w + 2;
  e->b->data[e->b->len] = 0;
}

static void put_enum(emitter *e, const ProtobufCEnumDescriptor *ed, int v) {
  if (ed == &google__protobuf__null_value__descriptor) return (void)PUTS(e, "null");
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
  if (ev) {
    putc_(e, '"');
    put(e, ev->name, strlen(ev->name));
    putc_(e, '"');
  } else {
    put_i64(e, v, 0);
  }
}

static void emit_msg(emitter *e, const ProtobufCMessage *m);

static void put_cstr(emitter *e, const char *s) {
  if (!s) return (void)PUTS(e, "\"\"");
  size_t n = strlen(s);
  /* Unpacked strings were validated; messages built by callers may not have been. */
  if (!e->trusted && utf8_check((const uint8_t *)s, n, 0) < n) {
    emit_failf(e, W2A_EINVAL, "string field holds invalid UTF-8");
    return;
  }
  put_str(e, s, n);
}

/* One value of field f stored at p (a singular member or one array element). */
static void emit_value(emitter *e, const ProtobufCFieldDescriptor *f, const void *p) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: put_i64(e, *(const int32_t *)p, 0); break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: put_u64(e, *(const uint32_t *)p, 0); break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: put_i64(e, *(const int64_t *)p, 1); break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: put_u64(e, *(const uint64_t *)p, 1); break;
  case PROTOBUF_C_TYPE_BOOL:
    if (*(const protobuf_c_boolean *)p)
      PUTS(e, "true");
    else
      PUTS(e, "false");
    break;
  case PROTOBUF_C_TYPE_FLOAT: put_double(e, *(const float *)p, 1); break;
  case PROTOBUF_C_TYPE_DOUBLE: put_double(e, *(const double *)p, 0); break;
  case PROTOBUF_C_TYPE_ENUM: put_enum(e, f->descriptor, *(const int *)p); break;
  case PROTOBUF_C_TYPE_STRING: put_cstr(e, *(char *const *)p); break;
  case PROTOBUF_C_TYPE_BYTES: {
    const ProtobufCBinaryData *bd = p;
    put_b64(e, bd->data, bd->len);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
    if (sub)
      emit_msg(e, sub);
    else if (is_value(f->descriptor))
      PUTS(e, "null");
    else
      PUTS(e, "{}");
    break;
  }
  }
}

/* Whether a non-repeated field would be written by protobuf_c_message_pack. */
static int field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const char *base = (const char *)m;
  const void *p = base + f->offset;
  int ptr_type = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) return 0;
    if (ptr_type) {
      const void *ptr = *(const void *const *)p;
      return ptr && ptr != f->default_value;
    }
    return 1;
  }
  switch (f->label) {
  case PROTOBUF_C_LABEL_REQUIRED: return !ptr_type || *(const void *const *)p;
  case PROTOBUF_C_LABEL_OPTIONAL:
    if (ptr_type) {
      const void *ptr = *(const void *const *)p;
      return ptr && ptr != f->default_value;
    }
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
  case PROTOBUF_C_LABEL_NONE:
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p != 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p != 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p != 0;
    case PROTOBUF_C_TYPE_STRING: {
      const char *s = *(const char *const *)p;
      return s && *s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len != 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(const void *const *)p != NULL;
    default: return elem_size(f->type) == 8 ? *(const uint64_t *)p != 0 : *(const uint32_t *)p != 0;
    }
  default: return 0;
  }
}

static void emit_map(emitter *e, const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *ents,
                     size_t n) {
  const ProtobufCMessageDescriptor *ed = f->descriptor;
  const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
  int first = 1;
  open_(e, '{');
  for (size_t i = 0; i < n && !e->rc; i++) {
    const char *en = (const char *)ents[i];
    const void *kp = en + kf->offset;
    item(e, &first);
    char tmp[32];
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: put_cstr(e, *(char *const *)kp); break;
    case PROTOBUF_C_TYPE_BOOL:
      put_str(e, *(const protobuf_c_boolean *)kp ? "true" : "false",
              *(const protobuf_c_boolean *)kp ? 4 : 5);
      break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
      uint64_t u = elem_size(kf->type) == 8 ? *(const uint64_t *)kp : *(const uint32_t *)kp;
      char *s = fmt_u64(u, tmp + sizeof tmp);
      put_str(e, s, strlen(s));
      break;
    }
    default: {
      int64_t v = elem_size(kf->type) == 8 ? *(const int64_t *)kp : *(const int32_t *)kp;
      char *s = fmt_u64(v < 0 ? -(uint64_t)v : (uint64_t)v, tmp + sizeof tmp);
      if (v < 0) *--s = '-';
      put_str(e, s, strlen(s));
    }
    }
    PUTS(e, ":");
    if (e->o->pretty) putc_(e, ' ');
    emit_value(e, vf, en + vf->offset);
  }
  close_(e, '}', first);
}

static void emit_unknown(emitter *e, const ProtobufCMessage *m, int *first) {
  item(e, first);
  key(e, "_unknown");
  int f2 = 1;
  open_(e, '[');
  for (unsigned i = 0; i < m->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
    const uint8_t *data = u->data;
    size_t len = u->len;
    if (u->wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
      /* protobuf-c keeps the length prefix in data; print the payload alone. */
      uint64_t v;
      size_t used;
      if (!rd_varint(data, len, 10, &v, &used) && v == len - used) data += used, len -= used;
    }
    item(e, &f2);
    PUTS(e, "{\"field\":");
    put_u64(e, u->tag, 0);
    PUTS(e, ",\"wire_type\":");
    put_u64(e, (unsigned)u->wire_type, 0);
    PUTS(e, ",\"data\":");
    put_b64(e, data, len);
    putc_(e, '}');
  }
  close_(e, ']', f2);
}

static void emit_generic(emitter *e, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  int first = 1;
  open_(e, '{');
  for (unsigned i = 0; i < d->n_fields && !e->rc; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      if (!n && !e->o->emit_defaults) continue;
      const char *arr = *(char *const *)(base + f->offset);
      item(e, &first);
      key(e, f->name);
      if (f->type == PROTOBUF_C_TYPE_MESSAGE && w2a_pb_is_map_entry(f->descriptor)) {
        emit_map(e, f, (ProtobufCMessage *const *)arr, n);
        continue;
      }
      int f2 = 1;
      size_t es = elem_size(f->type);
      open_(e, '[');
      for (size_t k = 0; k < n && !e->rc; k++) {
        item(e, &f2);
        emit_value(e, f, arr + k * es);
      }
      close_(e, ']', f2);
      continue;
    }
    if (!field_present(m, f)) {
      if (!e->o->emit_defaults || f->type == PROTOBUF_C_TYPE_MESSAGE ||
          f->label != PROTOBUF_C_LABEL_NONE || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        continue;
    }
    item(e, &first);
    key(e, f->name);
    emit_value(e, f, base + f->offset);
  }
  if (m->n_unknown_fields && !e->o->skip_unknown) emit_unknown(e, m, &first);
  close_(e, '}', first);
}

static void emit_struct(emitter *e, const Google__Protobuf__Struct *s) {
  int first = 1;
  open_(e, '{');
  for (size_t i = 0; i < s->n_fields && !e->rc; i++) {
    const Google__Protobuf__Struct__FieldsEntry *fe = s->fields[i];
    item(e, &first);
    put_cstr(e, fe->key);
    PUTS(e, ":");
    if (e->o->pretty) putc_(e, ' ');
    if (fe->value)
      emit_msg(e, &fe->value->base);
    else
      PUTS(e, "null");
  }
  close_(e, '}', first);
}

static void emit_wkt_value(emitter *e, const Google__Protobuf__Value *v) {
  switch (v->kind_case) {
  case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE: put_double(e, v->number_value, 0); break;
  case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE: put_cstr(e, v->string_value); break;
  case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
    if (v->bool_value)
      PUTS(e, "true");
    else
      PUTS(e, "false");
    break;
  case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
    if (v->struct_value)
      emit_msg(e, &v->struct_value->base);
    else
      PUTS(e, "{}");
    break;
  case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
    if (v->list_value)
      emit_msg(e, &v->list_value->base);
    else
      PUTS(e, "[]");
    break;
  default: PUTS(e, "null"); break;
  }
}

static void emit_list(emitter *e, const Google__Protobuf__ListValue *l) {
  int first = 1;
  open_(e, '[');
  for (size_t i = 0; i < l->n_values && !e->rc; i++) {
    item(e, &first);
    if (l->values[i])
      emit_msg(e, &l->values[i]->base);
    else
      PUTS(e, "null");
  }
  close_(e, ']', first);
}

/* Days since 1970-01-01 -> civil date (proleptic Gregorian), after H. Hinnant. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t yy = (int64_t)yoe + era * 400;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yy + (*m <= 2);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

#define TS_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

/* 0 when out of range: the caller prints the object form, which keeps everything. */
static int put_timestamp(emitter *e, int64_t seconds, int32_t nanos) {
  if (seconds < TS_MIN || seconds > TS_MAX || nanos < 0 || nanos > 999999999) return 0;
  int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
  int64_t sod = seconds - days * 86400, y;
  unsigned mo, d;
  civil_from_days(days, &y, &mo, &d);
  char tmp[48];
  int n = snprintf(tmp, sizeof tmp, "\"%04d-%02u-%02uT%02d:%02d:%02d", (int)y, mo, d,
                   (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
  if (nanos) {
    if (nanos % 1000000 == 0)
      n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%03d", nanos / 1000000);
    else if (nanos % 1000 == 0)
      n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%06d", nanos / 1000);
    else
      n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%09d", nanos);
  }
  n += snprintf(tmp + n, sizeof tmp - (size_t)n, "Z\"");
  put(e, tmp, (size_t)n);
  return 1;
}

static int emit_timestamp(emitter *e, const Google__Protobuf__Timestamp *t) {
  return !t->base.n_unknown_fields && put_timestamp(e, t->seconds, t->nanos);
}

/* FieldMask as one string: "a_b.c,d" -> "aB.c,d". Input turns each capital X back into
 * "_x", so the string form is used only when that gives back exactly the stored paths:
 * no path holds a capital or a comma, and the mask is not the single empty path. Any
 * other mask prints as the object {"paths": [...]}, which input also accepts. */
static int emit_field_mask(emitter *e, const Google__Protobuf__FieldMask *fm) {
  if (fm->base.n_unknown_fields) return 0;
  if (fm->n_paths == 1 && fm->paths[0] && !fm->paths[0][0]) return 0;
  size_t total = 1;
  for (size_t i = 0; i < fm->n_paths; i++) {
    const char *p = fm->paths[i];
    if (!p) return 0;
    for (; *p; p++)
      if ((*p >= 'A' && *p <= 'Z') || *p == ',') return 0;
    total += (size_t)(p - fm->paths[i]) + 1;
  }
  char *buf = malloc(total), *w = buf;
  if (!buf) {
    emit_failf(e, W2A_ENOMEM, "out of memory");
    return 1;
  }
  for (size_t i = 0; i < fm->n_paths; i++) {
    if (i) *w++ = ',';
    for (const char *p = fm->paths[i]; *p; p++) {
      if (*p == '_' && p[1] >= 'a' && p[1] <= 'z')
        *w++ = (char)(*++p - 'a' + 'A');
      else
        *w++ = *p;
    }
  }
  size_t n = (size_t)(w - buf);
  if (utf8_check((const uint8_t *)buf, n, 0) < n)
    emit_failf(e, W2A_EINVAL, "FieldMask path holds invalid UTF-8");
  else
    put_str(e, buf, n);
  free(buf);
  return 1;
}

static void emit_msg(emitter *e, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (e->rc) return;
  size_t inc = struct_family(d) ? 0 : 1;
  if (e->depth + inc > e->o->max_depth) {
    emit_failf(e, W2A_ETOOBIG, "messages nested deeper than %zu", e->o->max_depth);
    return;
  }
  e->depth += inc;
  if (d == &google__protobuf__struct__descriptor) {
    emit_struct(e, (const Google__Protobuf__Struct *)m);
  } else if (d == &google__protobuf__value__descriptor) {
    if (e->sdepth + 1 > e->o->struct_max_depth) {
      emit_failf(e, W2A_ETOOBIG, "Struct/Value nested deeper than %zu", e->o->struct_max_depth);
    } else {
      e->sdepth++;
      emit_wkt_value(e, (const Google__Protobuf__Value *)m);
      e->sdepth--;
    }
  } else if (d == &google__protobuf__list_value__descriptor) {
    emit_list(e, (const Google__Protobuf__ListValue *)m);
  } else if (d == &google__protobuf__timestamp__descriptor) {
    if (!emit_timestamp(e, (const Google__Protobuf__Timestamp *)m)) emit_generic(e, m);
  } else if (d == &google__protobuf__field_mask__descriptor) {
    if (!emit_field_mask(e, (const Google__Protobuf__FieldMask *)m)) emit_generic(e, m);
  } else {
    emit_generic(e, m);
  }
  e->depth -= inc;
}

static int msg_to_json(const ProtobufCMessage *m, const w2a_pbjson_opts *oin, w2a_buf *out,
                       w2a_err *err, int trusted) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  size_t start = out->len;
  emitter e = {.b = out, .o = &o, .err = err, .trusted = trusted};
  emit_msg(&e, m);
  if (e.rc) {
    out->len = start;
    if (out->data) out->data[start] = 0;
  }
  return e.rc;
}

int w2a_pbjson_msg_to_json(const ProtobufCMessage *m, const w2a_pbjson_opts *o, w2a_buf *out,
                           w2a_err *err) {
  return msg_to_json(m, o, out, err, 0);
}

int w2a_pbjson_to_json_ref(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                           const w2a_pbjson_opts *oin, w2a_buf *out, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  int rc = w2a_pbjson_validate_ref(d, buf, len, &o, err);
  if (rc) return rc;
  arena a;
  arena_init(&a, arena_cap_for(len), len * 3);
  ProtobufCAllocator al = {.alloc = pa_alloc, .free = pa_free, .allocator_data = &a};
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &al, len, buf ? buf : (const uint8_t *)"");
  if (!m) {
    rc = w2a_errf(err, W2A_ENOMEM, "protobuf-c could not unpack %s (memory cap reached)", d->name);
    goto out;
  }
  /* Rough output estimate, so the common case needs a single allocation. */
  if (w2a_buf_reserve(out, len * 2 + 64) == W2A_ENOMEM) {
    rc = w2a_errf(err, W2A_ENOMEM, "out of memory");
    goto out;
  }
  rc = msg_to_json(m, &o, out, err, 1);
out:
  arena_free(&a);
  return rc;
}

/* ---- sample instances ---------------------------------------------------------------- */

#define SAMPLE_DEPTH 4

static void sample_msg(emitter *e, const ProtobufCMessageDescriptor *d,
                       const ProtobufCMessageDescriptor **stack, size_t depth);

static void sample_value(emitter *e, const ProtobufCFieldDescriptor *f, unsigned k,
                         const ProtobufCMessageDescriptor **stack, size_t depth) {
  char tmp[96];
  int n;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: put_i64(e, -(int64_t)(f->id * 1000 + 7 + k), 0); break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: put_u64(e, UINT32_MAX - f->id - k, 0); break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: put_i64(e, -9007199254740993LL - f->id - k, 1); break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: put_u64(e, UINT64_MAX - f->id - k, 1); break;
  case PROTOBUF_C_TYPE_FLOAT: put_double(e, (float)(f->id + k + 0.25), 1); break;
  case PROTOBUF_C_TYPE_DOUBLE: put_double(e, f->id + k + 0.1, 0); break;
  case PROTOBUF_C_TYPE_BOOL: PUTS(e, "true"); break;
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (ed == &google__protobuf__null_value__descriptor)
      PUTS(e, "null");
    else if (k == 2)
      put_i64(e, 99, 0); /* a value the enum does not define */
    else
      put_enum(e, ed, ed->values[(ed->n_values - 1 - k) % ed->n_values].value);
    break;
  }
  case PROTOBUF_C_TYPE_STRING:
    n = snprintf(tmp, sizeof tmp, "%s %u ü✓", f->name, k);
    put_str(e, tmp, (size_t)n);
    break;
  case PROTOBUF_C_TYPE_BYTES: {
    uint8_t raw[3] = {0x00, 0xff, (uint8_t)(f->id + k)};
    put_b64(e, raw, sizeof raw);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE: sample_msg(e, f->descriptor, stack, depth); break;
  }
}

static int sample_skip(const ProtobufCFieldDescriptor *f, const ProtobufCMessageDescriptor **stack,
                       size_t depth) {
  if (f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
  if (depth >= SAMPLE_DEPTH) return 1;
  for (size_t i = 0; i < depth; i++)
    if (stack[i] == f->descriptor) return 1;
  return 0;
}

static void sample_msg(emitter *e, const ProtobufCMessageDescriptor *d,
                       const ProtobufCMessageDescriptor **stack, size_t depth) {
  /* Map keys in sorted order: protoc's text format prints maps sorted, and the protoc
   * agreement test round-trips through that text. */
  if (d == &google__protobuf__struct__descriptor)
    return (void)PUTS(e, "{\"b\":true,\"l\":[1,\"two\",[],{}],\"n\":-1.5,\"o\":{\"k\":{}},"
                         "\"s\":\"x\",\"z\":null}");
  if (d == &google__protobuf__value__descriptor) return (void)PUTS(e, "{\"v\":[0.5,null]}");
  if (d == &google__protobuf__list_value__descriptor)
    return (void)PUTS(e, "[1,\"two\",{\"x\":false}]");
  if (d == &google__protobuf__timestamp__descriptor)
    return (void)PUTS(e, "\"2026-01-14T08:15:00.123Z\"");
  if (d == &google__protobuf__field_mask__descriptor)
    return (void)PUTS(e, "\"agentOutput.text,id\"");
  stack[depth] = d;
  int first = 1;
  unsigned taken_oneof[64];
  size_t n_taken = 0;
  open_(e, '{');
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (sample_skip(f, stack, depth + 1)) continue;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      size_t j = 0;
      while (j < n_taken && taken_oneof[j] != f->quantifier_offset)
        j++;
      if (j < n_taken || n_taken == 64) continue;
      taken_oneof[n_taken++] = f->quantifier_offset;
    }
    item(e, &first);
    key(e, f->name);
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
      sample_value(e, f, 0, stack, depth + 1);
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && w2a_pb_is_map_entry(f->descriptor)) {
      const ProtobufCFieldDescriptor *vf =
          &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1];
      PUTS(e, "{\"k1\":");
      if (sample_skip(vf, stack, depth + 1))
        PUTS(e, "{}");
      else
        sample_value(e, vf, 0, stack, depth + 1);
      putc_(e, '}');
    } else {
      int f2 = 1;
      unsigned cnt = f->type == PROTOBUF_C_TYPE_MESSAGE ? 1
                     : f->type == PROTOBUF_C_TYPE_ENUM  ? 3
                                                        : 2;
      open_(e, '[');
      for (unsigned k = 0; k < cnt; k++) {
        item(e, &f2);
        sample_value(e, f, k, stack, depth + 1);
      }
      close_(e, ']', f2);
    }
  }
  close_(e, '}', first);
}

int w2a_pbjson_sample(const ProtobufCMessageDescriptor *d, w2a_buf *out, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(NULL, &o);
  const ProtobufCMessageDescriptor *stack[SAMPLE_DEPTH + 2];
  emitter e = {.b = out, .o = &o, .err = err};
  sample_msg(&e, d, stack, 0);
  return e.rc;
}

size_t w2a_pb_count_unknown(const ProtobufCMessage *m) {
  if (!m) return 0;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  size_t n = m->n_unknown_fields;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t k = *(const size_t *)(base + f->quantifier_offset);
      ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + f->offset);
      for (size_t j = 0; j < k; j++)
        n += w2a_pb_count_unknown(arr[j]);
    } else if (field_present(m, f)) {
      n += w2a_pb_count_unknown(*(ProtobufCMessage *const *)(base + f->offset));
    }
  }
  return n;
}

/* ---- 4a. JSON reader ----------------------------------------------------------------- */

enum { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jmember jmember;
typedef struct jv {
  uint8_t t;
  uint8_t is_int;  /* J_NUM: no fraction, no exponent */
  uint8_t has_nul; /* J_STR: contains U+0000 */
  size_t n;        /* J_STR: bytes; J_NUM: text length; J_ARR/J_OBJ: members */
  union {
    const char *s; /* J_STR (NUL-terminated copy), J_NUM (points into the input) */
    struct jv *a;
    jmember *o;
  } u;
} jv;

struct jmember {
  const char *k;
  size_t klen;
  jv v;
};

typedef struct jparser {
  const char *p, *start, *end;
  arena *a;
  w2a_err *err;
  size_t depth, max_depth;
  jmember *stk; /* scratch for members of open arrays/objects */
  size_t sp, scap;
  int rc;
} jparser;

static int jsyntax(jparser *P, const char *at, const char *what) {
  if (!P->rc)
    P->rc = w2a_errf(P->err, W2A_EINVAL, "JSON syntax error at byte %zu: %s",
                     (size_t)(at - P->start), what);
  return P->rc;
}

static void jws(jparser *P) {
  while (P->p < P->end && (*P->p == ' ' || *P->p == '\n' || *P->p == '\r' || *P->p == '\t'))
    P->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int read_u4(jparser *P, const char *q, uint32_t *out) {
  if (P->end - q < 4) return -1;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(q[i]);
    if (h < 0) return -1;
    v = v << 4 | (uint32_t)h;
  }
  *out = v;
  return 0;
}

/* P->p at the opening quote. */
static int jstring(jparser *P, const char **out, size_t *outlen, uint8_t *has_nul) {
  const char *q = ++P->p, *e = P->end;
  /* Fast scan, eight bytes at a time, for the closing quote; UTF-8 is validated on the
   * way, so a string without escapes is checked and located in one pass. */
  const char *r = q;
  for (;;) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (e - r >= 16) {
      uint64_t w, x;
      memcpy(&w, r, 8);
      memcpy(&x, r + 8, 8);
      uint64_t qw = w ^ (ones * '"'), bw = w ^ (ones * '\\');
      uint64_t qx = x ^ (ones * '"'), bx = x ^ (ones * '\\');
      if ((w | x | ((w - ones * 0x20) & ~w) | ((qw - ones) & ~qw) | ((bw - ones) & ~bw) |
           ((x - ones * 0x20) & ~x) | ((qx - ones) & ~qx) | ((bx - ones) & ~bx)) &
          highs)
        break;
      r += 16;
    }
    while (e - r >= 8) {
      uint64_t w;
      memcpy(&w, r, 8);
      uint64_t qt = w ^ (ones * '"'), bs = w ^ (ones * '\\');
      if ((w | ((w - ones * 0x20) & ~w) | ((qt - ones) & ~qt) | ((bs - ones) & ~bs)) & highs) break;
      r += 8;
    }
    while (r < e && (uint8_t)*r < 0x80 && !json_esc[(uint8_t)*r])
      r++;
    if (r < e && (uint8_t)*r >= 0x80) {
      size_t k = utf8_seq((const uint8_t *)r, (size_t)(e - r));
      if (!k) return jsyntax(P, r, "invalid UTF-8 in string");
      r += k;
      continue;
    }
    break;
  }
  if (r >= e) return jsyntax(P, q - 1, "unterminated string");
  size_t plain = (size_t)(r - q);
  if (*r == '"') {
    char *s = arena_alloc(P->a, plain + 1);
    if (!s) return P->rc = w2a_errf(P->err, W2A_ETOOBIG, "JSON needs too much memory");
    memcpy(s, q, plain);
    s[plain] = 0;
    *out = s;
    *outlen = plain;
    *has_nul = 0;
    P->p = r + 1;
    return 0;
  }
  /* Slow path: unescape. Output is never longer than the input. */
  const char *close = r;
  int esc = 0;
  while (close < e && (esc || *close != '"')) {
    esc = !esc && *close == '\\';
    close++;
  }
  if (close >= e) return jsyntax(P, q - 1, "unterminated string");
  char *s = arena_alloc(P->a, (size_t)(close - q) + 1), *w = s;
  if (!s) return P->rc = w2a_errf(P->err, W2A_ETOOBIG, "JSON needs too much memory");
  memcpy(w, q, plain);
  w += plain;
  uint8_t nul = 0;
  for (r = q + plain; r < close;) {
    unsigned char c = (unsigned char)*r;
    if (c < 0x20) return jsyntax(P, r, "control character in string");
    if (c != '\\') {
      const char *run = r;
      while (r < close && !json_esc[(uint8_t)*r])
        r++;
      size_t n = (size_t)(r - run);
      size_t b = utf8_check((const uint8_t *)run, n, 0);
      if (b < n) return jsyntax(P, run + b, "invalid UTF-8 in string");
      memcpy(w, run, n);
      w += n;
      continue;
    }
    r++;
    switch (*r) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case '/': *w++ = '/'; break;
    case 'b': *w++ = '\b'; break;
    case 'f': *w++ = '\f'; break;
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'u': {
      uint32_t cp, lo;
      if (read_u4(P, r + 1, &cp)) return jsyntax(P, r - 1, "bad \\u escape");
      r += 4;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (r + 2 >= close || r[1] != '\\' || r[2] != 'u' || read_u4(P, r + 3, &lo) ||
            lo < 0xdc00 || lo > 0xdfff)
          return jsyntax(P, r - 5, "unpaired UTF-16 surrogate in \\u escape");
        r += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return jsyntax(P, r - 5, "unpaired UTF-16 surrogate in \\u escape");
      }
      if (!cp) nul = 1;
      if (cp < 0x80) {
        *w++ = (char)cp;
      } else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
      } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
      } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
      }
      break;
    }
    default: return jsyntax(P, r - 1, "bad escape in string");
    }
    r++;
  }
  *w = 0;
  *out = s;
  *outlen = (size_t)(w - s);
  *has_nul = nul;
  P->p = close + 1;
  return 0;
}

static int jpush(jparser *P, const char *k, size_t klen, const jv *v) {
  if (P->sp == P->scap) {
    size_t nc = P->scap ? P->scap * 2 : 256;
    jmember *ns = realloc(P->stk, nc * sizeof *ns);
    if (!ns) return P->rc = w2a_errf(P->err, W2A_ENOMEM, "out of memory");
    P->stk = ns;
    P->scap = nc;
  }
  P->stk[P->sp].k = k;
  P->stk[P->sp].klen = klen;
  P->stk[P->sp].v = *v;
  P->sp++;
  return 0;
}

static int jvalue(jparser *P, jv *v);

static int jcontainer(jparser *P, jv *v, int obj) {
  const char *open = P->p++;
  if (++P->depth > P->max_depth) return jsyntax(P, open, "nesting too deep");
  size_t base = P->sp;
  jws(P);
  if (P->p < P->end && *P->p == (obj ? '}' : ']')) {
    P->p++;
  } else {
    for (;;) {
      const char *k = NULL;
      size_t klen = 0;
      uint8_t knul;
      jv item;
      jws(P);
      if (obj) {
        if (P->p >= P->end || *P->p != '"') return jsyntax(P, P->p, "expected a string key");
        if (jstring(P, &k, &klen, &knul)) return P->rc;
        jws(P);
        if (P->p >= P->end || *P->p != ':') return jsyntax(P, P->p, "expected ':'");
        P->p++;
        jws(P);
      }
      if (jvalue(P, &item) || jpush(P, k, klen, &item)) return P->rc;
      jws(P);
      if (P->p < P->end && *P->p == ',') {
        P->p++;
        continue;
      }
      if (P->p < P->end && *P->p == (obj ? '}' : ']')) {
        P->p++;
        break;
      }
      return jsyntax(P, P->p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  size_t n = P->sp - base;
  v->t = obj ? J_OBJ : J_ARR;
  v->n = n;
  if (obj) {
    jmember *o = arena_alloc(P->a, n * sizeof *o);
    if (!o) return P->rc = w2a_errf(P->err, W2A_ETOOBIG, "JSON needs too much memory");
    if (n) memcpy(o, P->stk + base, n * sizeof *o);
    v->u.o = o;
  } else {
    jv *a = arena_alloc(P->a, n * sizeof *a);
    if (!a) return P->rc = w2a_errf(P->err, W2A_ETOOBIG, "JSON needs too much memory");
    for (size_t i = 0; i < n; i++)
      a[i] = P->stk[base + i].v;
    v->u.a = a;
  }
  P->sp = base;
  P->depth--;
  return 0;
}

static int jlit(jparser *P, const char *lit, size_t n) {
  if ((size_t)(P->end - P->p) < n || memcmp(P->p, lit, n))
    return jsyntax(P, P->p, "unexpected character");
  P->p += n;
  return 0;
}

static int jvalue(jparser *P, jv *v) {
  memset(v, 0, sizeof *v);
  if (P->p >= P->end) return jsyntax(P, P->p, "unexpected end of input");
  char c = *P->p;
  switch (c) {
  case '{': return jcontainer(P, v, 1);
  case '[': return jcontainer(P, v, 0);
  case '"': v->t = J_STR; return jstring(P, &v->u.s, &v->n, &v->has_nul);
  case 't': v->t = J_TRUE; return jlit(P, "true", 4);
  case 'f': v->t = J_FALSE; return jlit(P, "false", 5);
  case 'n': v->t = J_NULL; return jlit(P, "null", 4);
  default: break;
  }
  const char *s = P->p, *q = s, *e = P->end;
  if (q < e && *q == '-') q++;
  if (q >= e || *q < '0' || *q > '9') return jsyntax(P, s, "unexpected character");
  if (*q == '0')
    q++;
  else
    while (q < e && *q >= '0' && *q <= '9')
      q++;
  int is_int = 1;
  if (q < e && *q == '.') {
    is_int = 0;
    q++;
    if (q >= e || *q < '0' || *q > '9') return jsyntax(P, q, "digit expected after '.'");
    while (q < e && *q >= '0' && *q <= '9')
      q++;
  }
  if (q < e && (*q == 'e' || *q == 'E')) {
    is_int = 0;
    q++;
    if (q < e && (*q == '+' || *q == '-')) q++;
    if (q >= e || *q < '0' || *q > '9') return jsyntax(P, q, "digit expected in exponent");
    while (q < e && *q >= '0' && *q <= '9')
      q++;
  }
  v->t = J_NUM;
  v->is_int = (uint8_t)is_int;
  v->u.s = s;
  v->n = (size_t)(q - s);
  P->p = q;
  return 0;
}

/* ---- 4b. JSON tree -> protobuf-c message --------------------------------------------- */

typedef struct jctx {
  arena *a;
  w2a_err *err;
  const w2a_pbjson_opts *o;
  size_t depth, sdepth;
  char path[512];
  size_t plen;
} jctx;

static const char *jtype(const jv *v) {
  static const char *const n[] = {"null",   "boolean", "boolean", "number",
                                  "string", "array",   "object"};
  return n[v->t];
}

static int jfail(jctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int jfail(jctx *c, int code, const char *fmt, ...) {
  char why[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  /* Keep the head and the tail of a very long path so the reason still fits. */
  if (c->plen > 150)
    return w2a_errf(c->err, code, "%.40s...%s: %s", c->path, c->path + c->plen - 100, why);
  return w2a_errf(c->err, code, "%s: %s", c->path, why);
}

static size_t path_key(jctx *c, const char *k, size_t klen) {
  size_t old = c->plen;
  if (c->plen + klen + 2 < sizeof c->path) {
    c->path[c->plen++] = '.';
    memcpy(c->path + c->plen, k, klen);
    c->plen += klen;
  } else if (c->plen + 4 < sizeof c->path) {
    memcpy(c->path + c->plen, "...", 3);
    c->plen += 3;
  }
  c->path[c->plen] = 0;
  return old;
}

static size_t path_idx(jctx *c, size_t i) {
  size_t old = c->plen;
  int w = snprintf(c->path + c->plen, sizeof c->path - c->plen, "[%zu]", i);
  if (w > 0 && (size_t)w < sizeof c->path - c->plen) c->plen += (size_t)w;
  c->path[c->plen] = 0;
  return old;
}

static void path_pop(jctx *c, size_t old) {
  c->plen = old;
  c->path[old] = 0;
}

static void *jalloc(jctx *c, size_t n) {
  void *p = arena_alloc(c->a, n);
  if (!p) jfail(c, W2A_ETOOBIG, "message needs too much memory");
  return p;
}

/* A JSON integer (number or decimal string) as sign + magnitude; exact. */
static int j_integer(jctx *c, const jv *v, const char *tname, int *neg, uint64_t *mag) {
  const char *s;
  size_t n;
  if (v->t == J_NUM) {
    s = v->u.s;
    n = v->n;
    if (!v->is_int) {
      /* 1.0 or 1e3 are integers too; anything with a fraction is not. */
      char tmp[64];
      if (n >= sizeof tmp) return jfail(c, W2A_EINVAL, "%.*s is not a valid %s", (int)n, s, tname);
      memcpy(tmp, s, n);
      tmp[n] = 0;
      double d = strtod(tmp, NULL), ad = d < 0 ? -d : d;
      /* Doubles of 2^53 and above are all integers; below, compare with the truncation. */
      if (!isfinite(d) || ad >= 18446744073709551616.0 ||
          (ad < 9007199254740992.0 && (double)(int64_t)ad != ad))
        return jfail(c, W2A_EINVAL, "%s is not a valid %s", tmp, tname);
      *neg = d < 0;
      *mag = (uint64_t)ad;
      return 0;
    }
  } else if (v->t == J_STR) {
    s = v->u.s;
    n = v->n;
  } else {
    return jfail(c, W2A_EINVAL, "expected %s (number or string), got %s", tname, jtype(v));
  }
  size_t i = 0;
  *neg = 0;
  if (i < n && s[i] == '-') *neg = 1, i++;
  if (i == n)
    return jfail(c, W2A_EINVAL, "\"%.*s\" is not a valid %s", (int)(n > 40 ? 40 : n), s, tname);
  uint64_t m = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return jfail(c, W2A_EINVAL, "\"%.*s\" is not a valid %s", (int)(n > 40 ? 40 : n), s, tname);
    unsigned dgt = (unsigned)(s[i] - '0');
    if (m > (UINT64_MAX - dgt) / 10)
      return jfail(c, W2A_EINVAL, "%.*s out of range for %s", (int)(n > 40 ? 40 : n), s, tname);
    m = m * 10 + dgt;
  }
  *mag = m;
  return 0;
}

static int j_signed(jctx *c, const jv *v, int bits, int64_t *out) {
  const char *tn = bits == 32 ? "int32" : "int64";
  int neg = 0;
  uint64_t mag = 0;
  int rc = j_integer(c, v, tn, &neg, &mag);
  if (rc) return rc;
  uint64_t lim = bits == 32 ? (uint64_t)INT32_MAX : (uint64_t)INT64_MAX;
  if (neg ? mag > lim + 1 : mag > lim)
    return jfail(c, W2A_EINVAL, "%s%llu out of range for %s", neg ? "-" : "",
                 (unsigned long long)mag, tn);
  *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
  return 0;
}

static int j_unsigned(jctx *c, const jv *v, int bits, uint64_t *out) {
  const char *tn = bits == 32 ? "uint32" : "uint64";
  int neg = 0;
  uint64_t mag = 0;
  int rc = j_integer(c, v, tn, &neg, &mag);
  if (rc) return rc;
  if ((neg && mag) || (bits == 32 && mag > UINT32_MAX))
    return jfail(c, W2A_EINVAL, "%s%llu out of range for %s", neg ? "-" : "",
                 (unsigned long long)mag, tn);
  *out = mag;
  return 0;
}

/* A JSON number (grammar already checked) with at most 2^53 as significand and a power
 * of ten of at most 22 either way: one exact operand times or divided by another exact
 * one, correctly rounded, which is what strtod returns (Clinger's fast path). 0: use
 * strtod. */
static int num_fast(const char *s, size_t n, double *out) {
#if FLT_EVAL_METHOD == 0
  size_t i = 0;
  int neg = s[0] == '-', e10 = 0;
  uint64_t m = 0;
  i = (size_t)neg;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    m = m * 10 + (uint64_t)(s[i] - '0');
    if (m > (1ull << 53)) return 0;
  }
  if (i < n && s[i] == '.') {
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      m = m * 10 + (uint64_t)(s[i] - '0');
      if (m > (1ull << 53)) return 0;
      e10--;
    }
  }
  if (i < n) { /* exponent */
    i++;
    int eneg = 0, x = 0;
    if (s[i] == '+' || s[i] == '-') eneg = s[i++] == '-';
    for (; i < n; i++) {
      x = x * 10 + (s[i] - '0');
      if (x > 1000) return 0;
    }
    e10 += eneg ? -x : x;
  }
  double d = (double)m;
  if (m && (e10 < -22 || e10 > 22)) return 0;
  if (m) d = e10 < 0 ? d / pow10_tab[-e10] : d * pow10_tab[e10];
  *out = neg ? -d : d;
  return 1;
#else
  (void)s, (void)n, (void)out;
  return 0;
#endif
}

static int j_double(jctx *c, const jv *v, int is_float, double *out) {
  const char *tn = is_float ? "float" : "double";
  char tmp[512];
  if (v->t == J_STR) {
    if (!strcmp(v->u.s, "NaN")) return *out = NAN, 0;
    if (!strcmp(v->u.s, "Infinity")) return *out = INFINITY, 0;
    if (!strcmp(v->u.s, "-Infinity")) return *out = -INFINITY, 0;
  } else if (v->t != J_NUM) {
    return jfail(c, W2A_EINVAL, "expected %s, got %s", tn, jtype(v));
  }
  if (v->n == 0 || v->n >= sizeof tmp) return jfail(c, W2A_EINVAL, "not a valid %s", tn);
  double d;
  if (v->t != J_NUM || !num_fast(v->u.s, v->n, &d)) {
    memcpy(tmp, v->u.s, v->n);
    tmp[v->n] = 0;
    char *endp;
    d = strtod(tmp, &endp);
    if (*endp || endp == tmp || isspace((unsigned char)tmp[0]))
      return jfail(c, W2A_EINVAL, "\"%.40s\" is not a valid %s", tmp, tn);
  }
  /* A float is in range when it rounds to a finite float (3.40282347e+38 prints FLT_MAX). */
  if (isinf(d) || (is_float && isinf((float)d)))
    return jfail(c, W2A_EINVAL, "%.40s out of range for %s", tmp, tn);
  *out = d;
  return 0;
}

static int build_msg(jctx *c, const ProtobufCMessageDescriptor *d, const jv *v,
                     ProtobufCMessage **out);

static int set_string(jctx *c, const jv *v, char **dst) {
  if (v->t != J_STR) return jfail(c, W2A_EINVAL, "expected string, got %s", jtype(v));
  if (v->has_nul) return jfail(c, W2A_EINVAL, "string contains U+0000 (not representable)");
  *dst = (char *)v->u.s;
  return 0;
}

static int set_bytes(jctx *c, const jv *v, ProtobufCBinaryData *dst) {
  if (v->t != J_STR) return jfail(c, W2A_EINVAL, "expected base64 string, got %s", jtype(v));
  dst->len = 0;
  dst->data = NULL;
  if (!v->n) return 0;
  uint8_t *o = jalloc(c, w2a_b64_dec_max(v->n));
  if (!o) return W2A_ETOOBIG;
  size_t bad;
  long n = w2a_b64_decode(v->u.s, v->n, o, &bad);
  if (n < 0) return jfail(c, W2A_EINVAL, "invalid base64 at character %zu", bad);
  dst->len = (size_t)n;
  dst->data = n ? o : NULL;
  return 0;
}

static int set_enum(jctx *c, const ProtobufCFieldDescriptor *f, const jv *v, int *dst) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  if (ed == &google__protobuf__null_value__descriptor) {
    if (v->t == J_NULL || (v->t == J_STR && !strcmp(v->u.s, "NULL_VALUE"))) return *dst = 0, 0;
  }
  if (v->t == J_STR) {
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, v->u.s);
    if (!ev) return jfail(c, W2A_EINVAL, "unknown value \"%.60s\" for enum %s", v->u.s, ed->name);
    *dst = ev->value;
    return 0;
  }
  if (v->t == J_NUM) {
    int64_t x;
    int rc = j_signed(c, v, 32, &x);
    if (rc) return rc;
    *dst = (int)x;
    return 0;
  }
  return jfail(c, W2A_EINVAL, "expected enum %s (name or number), got %s", ed->name, jtype(v));
}

/* One value of f into dst (a singular member or an array slot). */
static int set_value(jctx *c, const ProtobufCFieldDescriptor *f, const jv *v, void *dst) {
  int rc = 0;
  int64_t i;
  uint64_t u;
  double d;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if (!(rc = j_signed(c, v, 32, &i))) *(int32_t *)dst = (int32_t)i;
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if (!(rc = j_signed(c, v, 64, &i))) *(int64_t *)dst = i;
    break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if (!(rc = j_unsigned(c, v, 32, &u))) *(uint32_t *)dst = (uint32_t)u;
    break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (!(rc = j_unsigned(c, v, 64, &u))) *(uint64_t *)dst = u;
    break;
  case PROTOBUF_C_TYPE_FLOAT:
    if (!(rc = j_double(c, v, 1, &d))) *(float *)dst = (float)d;
    break;
  case PROTOBUF_C_TYPE_DOUBLE:
    if (!(rc = j_double(c, v, 0, &d))) *(double *)dst = d;
    break;
  case PROTOBUF_C_TYPE_BOOL:
    if (v->t != J_TRUE && v->t != J_FALSE)
      return jfail(c, W2A_EINVAL, "expected boolean, got %s", jtype(v));
    *(protobuf_c_boolean *)dst = v->t == J_TRUE;
    break;
  case PROTOBUF_C_TYPE_ENUM: rc = set_enum(c, f, v, dst); break;
  case PROTOBUF_C_TYPE_STRING: rc = set_string(c, v, dst); break;
  case PROTOBUF_C_TYPE_BYTES: rc = set_bytes(c, v, dst); break;
  case PROTOBUF_C_TYPE_MESSAGE: rc = build_msg(c, f->descriptor, v, dst); break;
  }
  return rc;
}

/* Map key text -> the entry's key field. */
static int set_map_key(jctx *c, const ProtobufCFieldDescriptor *kf, const jmember *mb, void *dst) {
  jv k = {.t = J_STR, .n = mb->klen, .u.s = mb->k};
  if (kf->type == PROTOBUF_C_TYPE_BOOL) {
    if (!strcmp(mb->k, "true")) return *(protobuf_c_boolean *)dst = 1, 0;
    if (!strcmp(mb->k, "false")) return *(protobuf_c_boolean *)dst = 0, 0;
    return jfail(c, W2A_EINVAL, "map key \"%.40s\" is not true or false", mb->k);
  }
  if (kf->type == PROTOBUF_C_TYPE_STRING) {
    if (strlen(mb->k) != mb->klen) return jfail(c, W2A_EINVAL, "map key contains U+0000");
    *(const char **)dst = mb->k;
    return 0;
  }
  return set_value(c, kf, &k, dst);
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *k, size_t klen) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, k);
  if (f || strlen(k) != klen) return f;
  /* lowerCamelCase: compare against each name with '_x' read as 'X'. */
  for (unsigned i = 0; i < d->n_fields; i++) {
    const char *n = d->fields[i].name, *q = k;
    for (; *n && *q; n++, q++) {
      if (*n == '_' && n[1] >= 'a' && n[1] <= 'z') {
        n++;
        if (*q != *n - 'a' + 'A') break;
      } else if (*n != *q) {
        break;
      }
    }
    if (!*n && !*q) return &d->fields[i];
  }
  return NULL;
}

static int set_unknown(jctx *c, ProtobufCMessage *m, const jv *v) {
  if (c->o->skip_unknown) return jfail(c, W2A_EINVAL, "unknown fields are not accepted here");
  if (v->t != J_ARR) return jfail(c, W2A_EINVAL, "expected array, got %s", jtype(v));
  if (!v->n) return 0;
  ProtobufCMessageUnknownField *uf = jalloc(c, v->n * sizeof *uf);
  if (!uf) return W2A_ETOOBIG;
  for (size_t i = 0; i < v->n; i++) {
    const jv *e = &v->u.a[i];
    size_t old = path_idx(c, i);
    if (e->t != J_OBJ) return jfail(c, W2A_EINVAL, "expected object, got %s", jtype(e));
    const jv *fv = NULL, *wv = NULL, *dv = NULL;
    for (size_t k = 0; k < e->n; k++) {
      const jmember *mb = &e->u.o[k];
      if (!strcmp(mb->k, "field"))
        fv = &mb->v;
      else if (!strcmp(mb->k, "wire_type"))
        wv = &mb->v;
      else if (!strcmp(mb->k, "data"))
        dv = &mb->v;
      else
        return jfail(c, W2A_EINVAL, "unexpected key \"%.40s\" (want field, wire_type, data)",
                     mb->k);
    }
    if (!fv || !wv || !dv) return jfail(c, W2A_EINVAL, "needs field, wire_type and data");
    uint64_t fnum = 0, wt = 0;
    size_t o2 = path_key(c, "field", 5);
    if (j_unsigned(c, fv, 32, &fnum)) return W2A_EINVAL;
    if (!fnum || fnum > 0x1fffffff)
      return jfail(c, W2A_EINVAL, "field number %llu out of range", (unsigned long long)fnum);
    const ProtobufCFieldDescriptor *known =
        protobuf_c_message_descriptor_get_field(m->descriptor, (unsigned)fnum);
    if (known)
      return jfail(c, W2A_EINVAL, "field %llu is a known field (%s)", (unsigned long long)fnum,
                   known->name);
    path_pop(c, o2);
    o2 = path_key(c, "wire_type", 9);
    if (j_unsigned(c, wv, 32, &wt)) return W2A_EINVAL;
    if (wt != 0 && wt != 1 && wt != 2 && wt != 5)
      return jfail(c, W2A_EINVAL, "wire type %llu is not 0, 1, 2 or 5", (unsigned long long)wt);
    path_pop(c, o2);
    o2 = path_key(c, "data", 4);
    ProtobufCBinaryData bd;
    if (set_bytes(c, dv, &bd)) return W2A_EINVAL;
    uint64_t x;
    size_t used;
    if (wt == 0 && (rd_varint(bd.data, bd.len, 10, &x, &used) || used != bd.len))
      return jfail(c, W2A_EINVAL, "not exactly one varint");
    if ((wt == 1 && bd.len != 8) || (wt == 5 && bd.len != 4))
      return jfail(c, W2A_EINVAL, "wire type %llu needs %d bytes, got %zu", (unsigned long long)wt,
                   wt == 1 ? 8 : 4, bd.len);
    if (wt == 2) {
      /* protobuf-c stores the length prefix with the payload */
      if (bd.len > UINT32_MAX) return jfail(c, W2A_EINVAL, "too long");
      uint8_t *p = jalloc(c, bd.len + 5);
      if (!p) return W2A_ETOOBIG;
      size_t pl = wr_varint(p, bd.len);
      if (bd.len) memcpy(p + pl, bd.data, bd.len);
      bd.data = p;
      bd.len += pl;
    }
    path_pop(c, o2);
    uf[i].tag = (uint32_t)fnum;
    uf[i].wire_type = (ProtobufCWireType)wt;
    uf[i].len = bd.len;
    uf[i].data = bd.data;
    path_pop(c, old);
  }
  m->n_unknown_fields = (unsigned)v->n;
  m->unknown_fields = uf;
  return 0;
}

static int set_field(jctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const jv *v) {
  char *base = (char *)m;
  if (v->t == J_NULL && !field_is_value(f) && !field_is_null_enum(f)) return 0; /* default */
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    size_t es = elem_size(f->type);
    int is_map = f->type == PROTOBUF_C_TYPE_MESSAGE && w2a_pb_is_map_entry(f->descriptor);
    if (is_map ? v->t != J_OBJ : v->t != J_ARR)
      return jfail(c, W2A_EINVAL, "expected %s, got %s", is_map ? "object (map)" : "array",
                   jtype(v));
    char *arr = NULL;
    if (v->n && !(arr = jalloc(c, v->n * es))) return W2A_ETOOBIG;
    if (is_map) {
      const ProtobufCMessageDescriptor *ed = f->descriptor;
      const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
      for (size_t i = 0; i < v->n; i++) {
        const jmember *mb = &v->u.o[i];
        size_t old = path_key(c, mb->k, mb->klen);
        ProtobufCMessage *en = jalloc(c, ed->sizeof_message);
        if (!en) return W2A_ETOOBIG;
        protobuf_c_message_init(ed, en);
        int rc = set_map_key(c, kf, mb, (char *)en + kf->offset);
        if (rc) return rc;
        if (mb->v.t == J_NULL && !field_is_value(vf) && !field_is_null_enum(vf))
          return jfail(c, W2A_EINVAL, "null is not a valid map value");
        if ((rc = set_value(c, vf, &mb->v, (char *)en + vf->offset))) return rc;
        ((ProtobufCMessage **)arr)[i] = en;
        path_pop(c, old);
      }
    } else {
      for (size_t i = 0; i < v->n; i++) {
        const jv *e = &v->u.a[i];
        size_t old = path_idx(c, i);
        if (e->t == J_NULL && !field_is_value(f) && !field_is_null_enum(f))
          return jfail(c, W2A_EINVAL, "null is not a valid array element");
        int rc = set_value(c, f, e, arr + i * es);
        if (rc) return rc;
        path_pop(c, old);
      }
    }
    *(size_t *)(base + f->quantifier_offset) = v->n;
    *(void **)(base + f->offset) = arr;
    return 0;
  }
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t *cs = (uint32_t *)(base + f->quantifier_offset);
    if (*cs && *cs != f->id) {
      const ProtobufCFieldDescriptor *other =
          protobuf_c_message_descriptor_get_field(m->descriptor, *cs);
      return jfail(c, W2A_EINVAL, "oneof already set by \"%s\"", other ? other->name : "?");
    }
    *cs = f->id;
  } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING) {
    *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
  }
  return set_value(c, f, v, base + f->offset);
}

static void *new_msg(jctx *c, const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = jalloc(c, d->sizeof_message);
  if (m) protobuf_c_message_init(d, m);
  return m;
}

static int build_struct(jctx *c, const jv *v, ProtobufCMessage **out);
static int build_list(jctx *c, const jv *v, ProtobufCMessage **out);

static int build_value(jctx *c, const jv *v, ProtobufCMessage **out) {
  if (c->sdepth + 1 > c->o->struct_max_depth)
    return jfail(c, W2A_ETOOBIG, "Struct/Value nested deeper than %zu", c->o->struct_max_depth);
  Google__Protobuf__Value *gv = new_msg(c, &google__protobuf__value__descriptor);
  if (!gv) return W2A_ETOOBIG;
  int rc = 0;
  c->sdepth++;
  switch (v->t) {
  case J_NULL:
    gv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
    gv->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
    break;
  case J_TRUE:
  case J_FALSE:
    gv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
    gv->bool_value = v->t == J_TRUE;
    break;
  case J_NUM:
    gv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    rc = j_double(c, v, 0, &gv->number_value);
    break;
  case J_STR:
    gv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    rc = set_string(c, v, &gv->string_value);
    break;
  case J_OBJ:
    gv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    rc = build_struct(c, v, (ProtobufCMessage **)&gv->struct_value);
    break;
  case J_ARR:
    gv->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    rc = build_list(c, v, (ProtobufCMessage **)&gv->list_value);
    break;
  }
  c->sdepth--;
  *out = &gv->base;
  return rc;
}

static int build_struct(jctx *c, const jv *v, ProtobufCMessage **out) {
  if (v->t != J_OBJ) return jfail(c, W2A_EINVAL, "expected object (Struct), got %s", jtype(v));
  Google__Protobuf__Struct *s = new_msg(c, &google__protobuf__struct__descriptor);
  if (!s) return W2A_ETOOBIG;
  if (v->n && !(s->fields = jalloc(c, v->n * sizeof *s->fields))) return W2A_ETOOBIG;
  for (size_t i = 0; i < v->n; i++) {
    const jmember *mb = &v->u.o[i];
    size_t old = path_key(c, mb->k, mb->klen);
    if (strlen(mb->k) != mb->klen) return jfail(c, W2A_EINVAL, "key contains U+0000");
    Google__Protobuf__Struct__FieldsEntry *fe =
        new_msg(c, &google__protobuf__struct__fields_entry__descriptor);
    if (!fe) return W2A_ETOOBIG;
    fe->key = (char *)mb->k;
    int rc = build_value(c, &mb->v, (ProtobufCMessage **)&fe->value);
    if (rc) return rc;
    s->fields[i] = fe;
    path_pop(c, old);
  }
  s->n_fields = v->n;
  *out = &s->base;
  return 0;
}

static int build_list(jctx *c, const jv *v, ProtobufCMessage **out) {
  if (v->t != J_ARR) return jfail(c, W2A_EINVAL, "expected array (ListValue), got %s", jtype(v));
  Google__Protobuf__ListValue *l = new_msg(c, &google__protobuf__list_value__descriptor);
  if (!l) return W2A_ETOOBIG;
  if (v->n && !(l->values = jalloc(c, v->n * sizeof *l->values))) return W2A_ETOOBIG;
  for (size_t i = 0; i < v->n; i++) {
    size_t old = path_idx(c, i);
    int rc = build_value(c, &v->u.a[i], (ProtobufCMessage **)&l->values[i]);
    if (rc) return rc;
    path_pop(c, old);
  }
  l->n_values = v->n;
  *out = &l->base;
  return 0;
}

static int two(const char *s) {
  return (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9') ? (s[0] - '0') * 10 + s[1] - '0'
                                                                    : -1;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM), within 0001..9999. 0 or -1. */
static int ts_parse(const char *s, size_t n, int64_t *secs_out, int32_t *nanos_out) {
  int64_t secs;
  int32_t nanos = 0;
  int Y1, Y2, M, D, h, mi, se;
  if (n < 20 || (Y1 = two(s)) < 0 || (Y2 = two(s + 2)) < 0 || s[4] != '-' || (M = two(s + 5)) < 1 ||
      M > 12 || s[7] != '-' || (D = two(s + 8)) < 1 || (s[10] != 'T' && s[10] != 't') ||
      (h = two(s + 11)) < 0 || h > 23 || s[13] != ':' || (mi = two(s + 14)) < 0 || mi > 59 ||
      s[16] != ':' || (se = two(s + 17)) < 0 || se > 59)
    goto bad;
  int y = Y1 * 100 + Y2;
  static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap)) goto bad;
  size_t i = 19;
  if (i < n && s[i] == '.') {
    i++;
    int digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      if (++digits > 9) goto bad;
      nanos = nanos * 10 + (s[i++] - '0');
    }
    if (!digits) goto bad;
    while (digits++ < 9)
      nanos *= 10;
  }
  secs = days_from_civil(y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 + se;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = two(s + i + 1), om = two(s + i + 4);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) goto bad;
    int64_t off = oh * 3600 + om * 60;
    secs -= s[i] == '+' ? off : -off;
    i += 6;
  } else {
    goto bad;
  }
  if (i != n || secs < TS_MIN || secs > TS_MAX) goto bad;
  *secs_out = secs;
  *nanos_out = nanos;
  return 0;
bad:
  return -1;
}

static int build_timestamp(jctx *c, const jv *v, ProtobufCMessage **out) {
  int64_t secs;
  int32_t nanos;
  if (ts_parse(v->u.s, v->n, &secs, &nanos))
    return jfail(c, W2A_EINVAL,
                 "\"%.40s\" is not an RFC 3339 timestamp (e.g. 2026-01-14T08:15:00.123Z)", v->u.s);
  Google__Protobuf__Timestamp *t = new_msg(c, &google__protobuf__timestamp__descriptor);
  if (!t) return W2A_ETOOBIG;
  t->seconds = secs;
  t->nanos = nanos;
  *out = &t->base;
  return 0;
}

static int build_field_mask(jctx *c, const jv *v, ProtobufCMessage **out) {
  Google__Protobuf__FieldMask *fm = new_msg(c, &google__protobuf__field_mask__descriptor);
  if (!fm) return W2A_ETOOBIG;
  if (v->has_nul) return jfail(c, W2A_EINVAL, "string contains U+0000");
  *out = &fm->base;
  if (!v->n) return 0;
  size_t np = 1, upper = 0;
  for (size_t i = 0; i < v->n; i++) {
    np += v->u.s[i] == ',';
    upper += v->u.s[i] >= 'A' && v->u.s[i] <= 'Z';
  }
  /* Each path gets its own NUL-terminated copy, camelCase turned into snake_case. */
  char *buf = jalloc(c, v->n + upper + np + 1);
  char **paths = jalloc(c, np * sizeof *paths);
  if (!buf || !paths) return W2A_ETOOBIG;
  size_t k = 0;
  char *w = buf;
  paths[k++] = w;
  for (size_t i = 0; i < v->n; i++) {
    char ch = v->u.s[i];
    if (ch == ',') {
      *w++ = 0;
      paths[k++] = w;
    } else if (ch >= 'A' && ch <= 'Z') {
      *w++ = '_';
      *w++ = (char)(ch - 'A' + 'a');
    } else {
      *w++ = ch;
    }
  }
  *w = 0;
  fm->paths = paths;
  fm->n_paths = np;
  return 0;
}

static int build_msg(jctx *c, const ProtobufCMessageDescriptor *d, const jv *v,
                     ProtobufCMessage **out) {
  size_t inc = struct_family(d) ? 0 : 1;
  if (c->depth + inc > c->o->max_depth)
    return jfail(c, W2A_ETOOBIG, "messages nested deeper than %zu", c->o->max_depth);
  int rc = 0;
  c->depth += inc;
  if (d == &google__protobuf__value__descriptor) {
    rc = build_value(c, v, out);
    goto out;
  }
  if (d == &google__protobuf__struct__descriptor) {
    rc = build_struct(c, v, out);
    goto out;
  }
  if (d == &google__protobuf__list_value__descriptor) {
    rc = build_list(c, v, out);
    goto out;
  }
  if (d == &google__protobuf__timestamp__descriptor && v->t == J_STR) {
    rc = build_timestamp(c, v, out);
    goto out;
  }
  if (d == &google__protobuf__field_mask__descriptor && v->t == J_STR) {
    rc = build_field_mask(c, v, out);
    goto out;
  }
  if (v->t != J_OBJ) {
    rc = jfail(c, W2A_EINVAL, "expected object (%s), got %s", d->name, jtype(v));
    goto out;
  }
  ProtobufCMessage *m = new_msg(c, d);
  if (!m) {
    rc = W2A_ETOOBIG;
    goto out;
  }
  for (size_t i = 0; i < v->n && !rc; i++) {
    const jmember *mb = &v->u.o[i];
    size_t old = path_key(c, mb->k, mb->klen);
    if (mb->k[0] == '_' && !strcmp(mb->k, "_unknown")) {
      rc = set_unknown(c, m, &mb->v);
    } else {
      const ProtobufCFieldDescriptor *f = find_field(d, mb->k, mb->klen);
      if (f)
        rc = set_field(c, m, f, &mb->v);
      else if (!c->o->ignore_unknown_keys)
        rc = jfail(c, W2A_EINVAL, "no field \"%.60s\" in %s", mb->k, d->name);
    }
    if (!rc) path_pop(c, old);
  }
  *out = m;
out:
  c->depth -= inc;
  return rc;
}

/* The JSON text as a tree in a; 0 or a syntax error naming the byte. */
static int json_parse(const char *json, size_t len, const w2a_pbjson_opts *o, arena *a,
                      w2a_err *err, jv *root) {
  jparser P = {.p = json,
               .start = json,
               .end = json + len,
               .a = a,
               .err = err,
               .max_depth = 2 * o->max_depth + o->struct_max_depth + 8};
  int rc = 0;
  jws(&P);
  if (jvalue(&P, root)) {
    rc = P.rc;
    goto out;
  }
  jws(&P);
  if (P.p != P.end) rc = jsyntax(&P, P.p, "unexpected data after the JSON value");
out:
  free(P.stk);
  return rc;
}

/* The reference encoder: tree -> protobuf-c structs in a -> protobuf_c_message_pack. */
static int build_and_pack(const ProtobufCMessageDescriptor *d, const jv *root,
                          const w2a_pbjson_opts *o, arena *a, w2a_buf *out_bytes, w2a_err *err) {
  jctx c = {.a = a, .err = err, .o = o, .path = "$", .plen = 1};
  ProtobufCMessage *m = NULL;
  int rc = build_msg(&c, d, root, &m);
  if (rc) return rc;
  size_t n = protobuf_c_message_get_packed_size(m);
  if ((rc = w2a_buf_reserve(out_bytes, n)))
    return w2a_errf(err, rc, "protobuf output of %zu bytes: %s", n, w2a_strerror(rc));
  size_t w = protobuf_c_message_pack(m, (uint8_t *)out_bytes->data + out_bytes->len);
  if (w != n) return w2a_errf(err, W2A_EINVAL, "protobuf-c packed %zu bytes, expected %zu", w, n);
  out_bytes->len += n;
  out_bytes->data[out_bytes->len] = 0;
  return 0;
}

/* The tree costs ~2x the text; messages a few times more. */
static void json_arena_init(arena *a, size_t len) {
  arena_init(a, len > SIZE_MAX / 32 ? SIZE_MAX / 2 : len * 32 + (1u << 20), len * 4);
}

int w2a_pbjson_from_json_ref(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                             const w2a_pbjson_opts *oin, w2a_buf *out_bytes, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  if (len > o.max_input)
    return w2a_errf(err, W2A_ETOOBIG, "JSON input of %zu bytes exceeds the cap of %zu", len,
                    o.max_input);
  if (!json) json = "";
  arena a;
  json_arena_init(&a, len);
  jv root;
  int rc = json_parse(json, len, &o, &a, err, &root);
  if (!rc) rc = build_and_pack(d, &root, &o, &a, out_bytes, err);
  arena_free(&a);
  return rc;
}

/* ---- 5. per-descriptor tables -------------------------------------------------------- */

/* Built once for every message in the registry: field index by number and by name
 * (proto and lowerCamelCase, one hash), oneof groups, pre-encoded tags, and the
 * sub-message tables, so the fast paths below never search a descriptor. */

enum { K_GENERIC, K_STRUCT, K_VALUE, K_LIST, K_TIMESTAMP, K_FIELDMASK };

typedef struct dinfo dinfo;

typedef struct finfo {
  const ProtobufCFieldDescriptor *f;
  const dinfo *sub;        /* message fields: the sub-message's table */
  uint8_t type;            /* ProtobufCType */
  uint8_t wt;              /* native wire type */
  uint8_t repeated;        /* label REPEATED */
  uint8_t packable;        /* repeated scalar: wire type 2 (packed) accepted too */
  uint8_t packed;          /* written packed (PROTOBUF_C_FIELD_FLAG_PACKED) */
  uint8_t is_map;          /* repeated map entry */
  uint8_t dup_check;       /* singular non-oneof message: a second occurrence is refused */
  uint8_t null_ok;         /* JSON null is a value (Value, NullValue), not "default" */
  uint8_t tag_n, ptag_n;   /* lengths of tag and ptag */
  uint8_t tag[5], ptag[5]; /* the tag with the native wire type, and with wire type 2 */
  int16_t oneof;           /* oneof group, -1 for none */
  uint16_t name_len;
} finfo;

typedef struct hent {
  const char *k;
  uint32_t klen;
  int32_t idx;
} hent;

struct dinfo {
  const ProtobufCMessageDescriptor *d;
  uint8_t kind;   /* K_* */
  uint8_t proto3; /* every label NONE or REPEATED and every sub-message has a table */
  uint8_t family; /* struct_family(d) */
  uint8_t value;  /* is_value(d) */
  unsigned nf, ngroups;
  unsigned nrep; /* repeated fields (the fused unpack counts them first) ... */
  uint16_t *rep; /* ... and their indexes */
  /* One-byte tags (fields 1-15), as the fused unpack reads them: field index + 1,
   * TAG1_UNKNOWN for a field d lacks, 0 for a tag vscan refuses (field 0, wire types 3, 4,
   * 6, 7, or a wire type the field cannot have). */
  uint16_t tag1[128];
  finfo *fi;
  uint32_t nnum;    /* by_num covers field numbers below this */
  uint16_t *by_num; /* field number -> index + 1, 0 for none */
  uint32_t hmask;   /* ht has hmask + 1 slots */
  hent *ht;         /* proto names first, then lowerCamelCase names not already there */
  uint16_t *gstart; /* members of oneof group g: gmem[gstart[g] .. gstart[g + 1]) */
  uint16_t *gmem;
  char *camel; /* storage for the lowerCamelCase names */
};

#define DI_MAX_NUM 1024
#define TAG1_UNKNOWN 0xffff

static uint32_t fnv1a(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

static void ht_put(dinfo *di, const char *k, size_t klen, int idx) {
  for (uint32_t i = fnv1a(k, klen) & di->hmask;; i = (i + 1) & di->hmask) {
    hent *h = &di->ht[i];
    if (!h->k) {
      h->k = k;
      h->klen = (uint32_t)klen;
      h->idx = idx;
      return;
    }
    if (h->klen == klen && !memcmp(h->k, k, klen)) return; /* the earlier one wins */
  }
}

static int ht_get(const dinfo *di, const char *k, size_t klen) {
  for (uint32_t i = fnv1a(k, klen) & di->hmask;; i = (i + 1) & di->hmask) {
    const hent *h = &di->ht[i];
    if (!h->k) return -1;
    if (h->klen == klen && !memcmp(h->k, k, klen)) return h->idx;
  }
}

static uint8_t native_wt(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32: return 5;
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64: return 1;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE: return 2;
  default: return 0;
  }
}

static void dinfo_free(dinfo *di) {
  if (!di) return;
  free(di->fi);
  free(di->by_num);
  free(di->ht);
  free(di->gstart);
  free(di->gmem);
  free(di->camel);
  free(di->rep);
  free(di);
}

static dinfo *dinfo_new(const ProtobufCMessageDescriptor *d) {
  unsigned nf = d->n_fields;
  if (nf >= 0x7fff) return NULL;
  dinfo *di = calloc(1, sizeof *di);
  if (!di) return NULL;
  di->d = d;
  di->nf = nf;
  di->kind = d == &google__protobuf__struct__descriptor       ? K_STRUCT
             : d == &google__protobuf__value__descriptor      ? K_VALUE
             : d == &google__protobuf__list_value__descriptor ? K_LIST
             : d == &google__protobuf__timestamp__descriptor  ? K_TIMESTAMP
             : d == &google__protobuf__field_mask__descriptor ? K_FIELDMASK
                                                              : K_GENERIC;
  di->family = (uint8_t)struct_family(d);
  di->value = (uint8_t)is_value(d);
  di->proto3 = 1;
  uint32_t maxid = 0;
  size_t names = 1;
  for (unsigned i = 0; i < nf; i++) {
    if (d->fields[i].id > maxid) maxid = d->fields[i].id;
    names += strlen(d->fields[i].name) + 1;
  }
  di->nnum = maxid < DI_MAX_NUM ? maxid + 1 : DI_MAX_NUM;
  uint32_t hs = 8;
  while (hs < 4 * nf)
    hs *= 2;
  di->hmask = hs - 1;
  di->fi = calloc(nf + 1, sizeof *di->fi);
  di->by_num = calloc(di->nnum, sizeof *di->by_num);
  di->ht = calloc(hs, sizeof *di->ht);
  di->gstart = calloc(nf + 2, sizeof *di->gstart);
  di->gmem = calloc(nf + 1, sizeof *di->gmem);
  di->camel = malloc(names);
  di->rep = calloc(nf + 1, sizeof *di->rep);
  if (!di->rep || !di->fi || !di->by_num || !di->ht || !di->gstart || !di->gmem || !di->camel) {
    dinfo_free(di);
    return NULL;
  }
  for (unsigned i = 0; i < nf; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    finfo *F = &di->fi[i];
    F->f = f;
    F->type = (uint8_t)f->type;
    F->wt = native_wt(f->type);
    F->repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
    F->packable = F->repeated && f->type != PROTOBUF_C_TYPE_STRING &&
                  f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_MESSAGE;
    F->packed = F->packable && (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED);
    F->dup_check = f->type == PROTOBUF_C_TYPE_MESSAGE && !F->repeated &&
                   !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && i < 256;
    F->null_ok = (uint8_t)(field_is_value(f) || field_is_null_enum(f));
    F->name_len = (uint16_t)strlen(f->name);
    F->tag_n = (uint8_t)wr_varint(F->tag, (uint64_t)f->id << 3 | F->wt);
    F->ptag_n = (uint8_t)wr_varint(F->ptag, (uint64_t)f->id << 3 | 2);
    F->oneof = -1;
    if (F->repeated) di->rep[di->nrep++] = (uint16_t)i;
    if (f->label != PROTOBUF_C_LABEL_NONE && f->label != PROTOBUF_C_LABEL_REPEATED) di->proto3 = 0;
    if (f->id < di->nnum) di->by_num[f->id] = (uint16_t)(i + 1);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      for (unsigned j = 0; j < i && F->oneof < 0; j++)
        if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            d->fields[j].quantifier_offset == f->quantifier_offset)
          F->oneof = di->fi[j].oneof;
      if (F->oneof < 0) F->oneof = (int16_t)di->ngroups++;
    }
    ht_put(di, f->name, F->name_len, (int)i);
  }
  for (unsigned t = 0; t < 128; t++) {
    unsigned fn = t >> 3, w = t & 7;
    if (!fn || w == 3 || w == 4 || w > 5) continue;
    int i = fn < di->nnum ? (int)di->by_num[fn] - 1 : -1;
    if (i < 0)
      di->tag1[t] = TAG1_UNKNOWN;
    else if (di->fi[i].wt == w || (w == 2 && di->fi[i].packable))
      di->tag1[t] = (uint16_t)(i + 1);
  }
  /* lowerCamelCase as find_field reads it: "_x" is "X", any other byte itself. */
  char *w = di->camel;
  for (unsigned i = 0; i < nf; i++) {
    const char *n = d->fields[i].name, *start = w;
    for (; *n; n++) {
      if (*n == '_' && n[1] >= 'a' && n[1] <= 'z')
        *w++ = (char)(*++n - 'a' + 'A');
      else
        *w++ = *n;
    }
    ht_put(di, start, (size_t)(w - start), (int)i);
    *w++ = 0;
  }
  for (unsigned i = 0; i < nf; i++)
    if (di->fi[i].oneof >= 0) di->gstart[di->fi[i].oneof + 1]++;
  for (unsigned g = 0; g < di->ngroups; g++)
    di->gstart[g + 1] = (uint16_t)(di->gstart[g + 1] + di->gstart[g]);
  uint16_t fill[64] = {0};
  for (unsigned i = 0; i < nf; i++) {
    int g = di->fi[i].oneof;
    if (g < 0) continue;
    if (g >= 64) { /* more oneofs than any schema here has: no fast path for it */
      di->proto3 = 0;
      continue;
    }
    di->gmem[di->gstart[g] + fill[g]++] = (uint16_t)i;
  }
  return di;
}

static pthread_once_t dinfo_once = PTHREAD_ONCE_INIT;
static dinfo **dmap; /* open addressing on the descriptor's address; NULL: no fast paths */
static size_t dmap_mask;

static size_t ptr_slot(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
  return (size_t)(x >> 32);
}

static dinfo *dmap_get(dinfo **m, size_t mask, const ProtobufCMessageDescriptor *d) {
  for (size_t i = ptr_slot(d) & mask;; i = (i + 1) & mask) {
    if (!m[i]) return NULL;
    if (m[i]->d == d) return m[i];
  }
}

static void dinfo_build_all(void) {
  size_t n = w2a_pb_count(), sz = 16;
  while (sz < 2 * n + 2)
    sz *= 2;
  dinfo **m = calloc(sz, sizeof *m);
  if (!m) return;
  for (size_t i = 0; i < n; i++) {
    dinfo *di = dinfo_new(w2a_pb_at(i));
    if (!di) goto fail;
    size_t k = ptr_slot(di->d) & (sz - 1);
    while (m[k])
      k = (k + 1) & (sz - 1);
    m[k] = di;
  }
  for (size_t k = 0; k < sz; k++) {
    dinfo *di = m[k];
    if (!di) continue;
    for (unsigned i = 0; i < di->nf; i++) {
      finfo *F = &di->fi[i];
      if (F->type != PROTOBUF_C_TYPE_MESSAGE) continue;
      F->sub = dmap_get(m, sz - 1, F->f->descriptor);
      if (!F->sub) di->proto3 = 0;
      F->is_map = F->repeated && w2a_pb_is_map_entry(F->f->descriptor);
    }
  }
  dmap_mask = sz - 1;
  dmap = m;
  return;
fail:
  for (size_t k = 0; k < sz; k++)
    dinfo_free(m[k]);
  free(m);
}

/* The table of d, or NULL (not in the registry, or out of memory at first use). */
static const dinfo *dinfo_of(const ProtobufCMessageDescriptor *d) {
  /* The hot callers ask for the same descriptor every time (one per upstream event);
   * a per-thread last answer skips pthread_once and the probe. */
  static _Thread_local const ProtobufCMessageDescriptor *last_d;
  static _Thread_local const dinfo *last_di;
  if (d && d == last_d) return last_di;
  pthread_once(&dinfo_once, dinfo_build_all);
  const dinfo *di = dmap && d ? dmap_get(dmap, dmap_mask, d) : NULL;
  if (di) last_d = d, last_di = di;
  return di;
}

static inline int di_field(const dinfo *di, uint32_t num) {
  if (num < di->nnum) return (int)di->by_num[num] - 1;
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(di->d, num);
  return f ? (int)(f - di->d->fields) : -1;
}

/* ---- 6. fast validator --------------------------------------------------------------- */

/* Accepts exactly what scan_msg accepts, without building error text; on any refusal
 * the caller runs scan_msg to name the byte. */

typedef struct vlim {
  size_t max_depth, smax;
} vlim;

/* Bytes of the varint at p (at most 10), or 0 when truncated or longer. */
static inline size_t varint_len(const uint8_t *p, const uint8_t *end) {
  size_t n = (size_t)(end - p), k = 0;
  while (k < n && k < 10 && (p[k] & 0x80))
    k++;
  return k == n || k == 10 ? 0 : k + 1;
}

static int vscan_packed(const finfo *F, const uint8_t *p, const uint8_t *end) {
  size_t len = (size_t)(end - p);
  switch (F->type) {
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32: return len % 4 ? -1 : 0;
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64: return len % 8 ? -1 : 0;
  case PROTOBUF_C_TYPE_BOOL:
    for (; p < end; p++)
      if (*p > 1) return -1;
    return 0;
  default:
    while (p < end) {
      size_t k = varint_len(p, end);
      if (!k) return -1;
      p += k;
    }
    return 0;
  }
}

static int vscan(const vlim *L, const dinfo *di, const uint8_t *p, const uint8_t *end, size_t depth,
                 size_t sdepth) {
  uint64_t seen[4] = {0};
  while (p < end) {
    uint64_t tag, v;
    size_t u;
    unsigned wt;
    int i;
    if (*p < 0x80) { /* a one-byte tag: every check in one table entry */
      unsigned e = di->tag1[*p];
      if (!e) return -1;
      i = e == TAG1_UNKNOWN ? -1 : (int)e - 1;
      wt = *p++ & 7;
    } else {
      if (rd_varint(p, (size_t)(end - p), 5, &tag, &u)) return -1;
      p += u;
      uint64_t fnum = tag >> 3;
      wt = (unsigned)tag & 7;
      if (!fnum || fnum > 0x1fffffff || wt == 3 || wt == 4 || wt > 5) return -1;
      i = di_field(di, (uint32_t)fnum);
      if (i >= 0 && di->fi[i].wt != wt && !(wt == 2 && di->fi[i].packable)) return -1;
    }
    const finfo *F = i >= 0 ? &di->fi[i] : NULL;
    switch (wt) {
    case 0:
      if (!(u = varint_len(p, end))) return -1;
      p += u;
      break;
    case 1:
      if (end - p < 8) return -1;
      p += 8;
      break;
    case 5:
      if (end - p < 4) return -1;
      p += 4;
      break;
    default: {
      if (p < end && *p < 0x80) {
        v = *p++;
      } else {
        if (rd_varint(p, (size_t)(end - p), 5, &v, &u)) return -1;
        p += u;
      }
      if (v > (uint64_t)(end - p)) return -1;
      const uint8_t *vend = p + v;
      if (F) {
        if (F->type == PROTOBUF_C_TYPE_STRING) {
          if (!w2a_pbjson_string_ok(p, (size_t)v)) return -1;
        } else if (F->type == PROTOBUF_C_TYPE_MESSAGE) {
          if (F->dup_check) {
            if (seen[i / 64] >> (i % 64) & 1) return -1;
            seen[i / 64] |= 1ull << (i % 64);
          }
          const dinfo *sd = F->sub;
          if (!sd) return -1;
          size_t d2 = depth + !sd->family, s2 = sdepth + sd->value;
          if (d2 > L->max_depth || s2 > L->smax || vscan(L, sd, p, vend, d2, s2)) return -1;
        } else if (F->type != PROTOBUF_C_TYPE_BYTES) {
          if (vscan_packed(F, p, vend)) return -1;
        }
      }
      p = vend;
    }
    }
  }
  return 0;
}

static int vscan_root(const dinfo *di, const uint8_t *buf, size_t len, const w2a_pbjson_opts *o) {
  vlim L = {o->max_depth, o->struct_max_depth};
  return vscan(&L, di, buf, buf + len, di->family ? 0 : 1, di->value);
}

int w2a_pbjson_validate_ex(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                           const w2a_pbjson_opts *oin, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  const dinfo *di;
  if (len <= o.max_input && (di = dinfo_of(d)) &&
      !vscan_root(di, buf ? buf : (const uint8_t *)"", len, &o))
    return 0;
  return w2a_pbjson_validate_ref(d, buf, len, &o, err);
}

int w2a_pbjson_validate(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        w2a_err *err) {
  return w2a_pbjson_validate_ex(d, buf, len, NULL, err);
}

/* ---- 6b. fused validate + unpack ---------------------------------------------------- */

/* Why not validate, then protobuf_c_message_unpack: the gateway unpacks every upstream
 * event, and there protobuf-c (a scan pass recording every member, a lookup per tag, then
 * a parse pass) plus the validator's own walk cost about four times this single walk.
 * u_fill checks exactly what vscan checks, in the same order of bytes, and builds exactly
 * the structs protobuf-c builds from bytes vscan accepts: the same allocations through
 * the caller's allocator, the last occurrence of a singular field wins, a oneof keeps the
 * last member seen (the earlier one freed), repeated fields gather every occurrence,
 * packed or not, into arrays sized by a first counting pass, unknown fields are kept with
 * their bytes after the tag. It handles proto3 descriptors only (every label NONE or
 * REPEATED, see dinfo.proto3). On anything it refuses or does not handle it gives up; the
 * caller frees what was built and takes the old path (validate, then protobuf-c), so
 * error texts, and the protobuf-c 1.4.1 guard, are unchanged. The struct is kept
 * consistent at every step so that protobuf_c_message_free_unpacked can free a partial
 * one. tests/unit/test_pbjson_unpack.c and fuzz/fuzz_pb_unpack.c hold it to protobuf-c. */

typedef struct ustate {
  ProtobufCAllocator *a;
  size_t max_depth, smax;
} ustate;

static void *sys_alloc(void *ud, size_t n) { return (void)ud, malloc(n); }
static void sys_free(void *ud, void *p) { (void)ud, free(p); }
/* protobuf-c's own default allocator is not exported; this is the same malloc/free. */
static ProtobufCAllocator sys_allocator = {sys_alloc, sys_free, NULL};

static inline void *u_alloc(ustate *u, size_t n) { return u->a->alloc(u->a->allocator_data, n); }
static inline void u_free(ustate *u, void *p) {
  if (p) u->a->free(u->a->allocator_data, p);
}

static inline uint64_t u_varint(const uint8_t *p, size_t k) {
  uint64_t r = 0;
  for (size_t i = 0; i < k; i++)
    r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
  return r;
}

/* One scalar of type t from its wire bytes (a varint of k bytes, or 4 or 8 fixed bytes),
 * stored as protobuf-c stores it. */
static void u_scalar(uint8_t t, const uint8_t *p, size_t k, void *dst) {
  uint64_t v;
  uint32_t w;
  switch (t) {
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT: memcpy(dst, p, 4); return;
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: memcpy(dst, p, 8); return;
  case PROTOBUF_C_TYPE_BOOL: { /* any payload bit set, as protobuf-c's parse_boolean */
    protobuf_c_boolean b = 0;
    for (size_t i = 0; i < k; i++)
      if (p[i] & 0x7f) b = 1;
    memcpy(dst, &b, sizeof b);
    return;
  }
  case PROTOBUF_C_TYPE_SINT32:
    w = (uint32_t)u_varint(p, k);
    w = (w >> 1) ^ (0u - (w & 1));
    memcpy(dst, &w, 4);
    return;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64:
    v = u_varint(p, k);
    memcpy(dst, &v, 8);
    return;
  case PROTOBUF_C_TYPE_SINT64:
    v = u_varint(p, k);
    v = (v >> 1) ^ (0ull - (v & 1));
    memcpy(dst, &v, 8);
    return;
  default: /* INT32, UINT32, ENUM: the low 32 bits */
    w = (uint32_t)u_varint(p, k);
    memcpy(dst, &w, 4);
    return;
  }
}

/* Elements of a packed run vscan_packed accepted. */
static size_t u_packed_count(uint8_t t, const uint8_t *p, const uint8_t *end) {
  size_t len = (size_t)(end - p), n = 0;
  switch (t) {
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32: return len / 4;
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64: return len / 8;
  case PROTOBUF_C_TYPE_BOOL: return len;
  default:
    for (; p < end; p++)
      n += !(*p & 0x80);
    return n;
  }
}

/* Reads the tag at *pp and the extent of its value; the same checks as vscan. On return
 * *pp is past the tag, *lp and *vend delimit the value (for wire type 2, the payload),
 * *fi the field index (-1: unknown). */
static inline __attribute__((always_inline)) int u_next(const dinfo *di, const uint8_t **pp,
                                                        const uint8_t *end, uint32_t *fnum,
                                                        unsigned *wt, int *fi, const uint8_t **lp,
                                                        const uint8_t **vend) {
  const uint8_t *p = *pp;
  uint64_t tag, v, fn;
  size_t u;
  unsigned w;
  int i;
  if (*p < 0x80) { /* the common case: every check in one table entry */
    unsigned e = di->tag1[*p];
    if (!e) return -1;
    i = e == TAG1_UNKNOWN ? -1 : (int)e - 1;
    fn = *p >> 3, w = *p & 7;
    p++;
  } else {
    if (rd_varint(p, (size_t)(end - p), 5, &tag, &u)) return -1;
    p += u;
    fn = tag >> 3;
    w = (unsigned)tag & 7;
    if (!fn || fn > 0x1fffffff || w == 3 || w == 4 || w > 5) return -1;
    i = di_field(di, (uint32_t)fn);
    const finfo *F = i >= 0 ? &di->fi[i] : NULL;
    if (F && F->wt != w && !(w == 2 && F->packable)) return -1;
  }
  *pp = p;
  switch (w) {
  case 0:
    if (!(u = varint_len(p, end))) return -1;
    *lp = p, *vend = p + u;
    break;
  case 1:
    if (end - p < 8) return -1;
    *lp = p, *vend = p + 8;
    break;
  case 5:
    if (end - p < 4) return -1;
    *lp = p, *vend = p + 4;
    break;
  default:
    if (p < end && *p < 0x80) {
      v = *p++;
    } else {
      if (rd_varint(p, (size_t)(end - p), 5, &v, &u)) return -1;
      p += u;
    }
    if (v > (uint64_t)(end - p)) return -1;
    *lp = p, *vend = p + v;
  }
  *fnum = (uint32_t)fn, *wt = w, *fi = i;
  return 0;
}

/* The counting pass, from a message's first repeated or unknown field on: elements into
 * the n_ fields, unknown fields into *nunk. */
static int u_count(const dinfo *di, ProtobufCMessage *m, const uint8_t *p, const uint8_t *end,
                   size_t *nunk) {
  while (p < end) {
    uint32_t fnum;
    unsigned wt;
    int i;
    const uint8_t *lp, *vend;
    if (u_next(di, &p, end, &fnum, &wt, &i, &lp, &vend)) return -1;
    if (i < 0) {
      ++*nunk;
    } else if (di->fi[i].repeated) {
      const finfo *F = &di->fi[i];
      size_t *n = (size_t *)((char *)m + F->f->quantifier_offset);
      if (wt == 2 && F->packable) {
        if (vscan_packed(F, lp, vend)) return -1;
        *n += u_packed_count(F->type, lp, vend);
      } else {
        ++*n;
      }
    }
    p = vend;
  }
  return 0;
}

static int u_fill(ustate *u, const dinfo *di, ProtobufCMessage *m, const uint8_t *p,
                  const uint8_t *end, size_t depth, size_t sdepth);

/* A new sub-message of table sd in *slot, then its fields. */
static int u_sub(ustate *u, const dinfo *sd, void *slot, const uint8_t *p, const uint8_t *end,
                 size_t depth, size_t sdepth) {
  size_t d2 = depth + !sd->family, s2 = sdepth + sd->value;
  if (d2 > u->max_depth || s2 > u->smax || !sd->proto3 || !sd->d->message_init) return -1;
  ProtobufCMessage *m = u_alloc(u, sd->d->sizeof_message);
  if (!m) return -1;
  sd->d->message_init(m);
  memcpy(slot, &m, sizeof m);
  return u_fill(u, sd, m, p, end, d2, s2);
}

/* A string or bytes value into dst (a char * or a ProtobufCBinaryData). */
static inline int u_blob(ustate *u, uint8_t type, const uint8_t *p, size_t len, void *dst) {
  if (type == PROTOBUF_C_TYPE_STRING) {
    if (!w2a_pbjson_string_ok(p, len)) return -1;
    char *s = u_alloc(u, len + 1);
    if (!s) return -1;
    memcpy(s, p, len);
    s[len] = 0;
    memcpy(dst, &s, sizeof s);
    return 0;
  }
  ProtobufCBinaryData bd = {len, NULL};
  if (len && !(bd.data = u_alloc(u, len))) return -1;
  if (len) memcpy(bd.data, p, len);
  memcpy(dst, &bd, sizeof bd);
  return 0;
}

/* Frees what a singular string, bytes or message member holds, unless it is the field's
 * default (protobuf-c's rule before it overwrites one). */
static void u_drop(ustate *u, const ProtobufCFieldDescriptor *f, void *mem) {
  if (f->type == PROTOBUF_C_TYPE_STRING) {
    char *s;
    memcpy(&s, mem, sizeof s);
    if (s && s != f->default_value) u_free(u, s);
  } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
    ProtobufCBinaryData bd;
    const ProtobufCBinaryData *def = f->default_value;
    memcpy(&bd, mem, sizeof bd);
    if (bd.data && (!def || bd.data != def->data)) u_free(u, bd.data);
  } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    ProtobufCMessage *sm;
    memcpy(&sm, mem, sizeof sm);
    if (sm && (const void *)sm != f->default_value) protobuf_c_message_free_unpacked(sm, u->a);
  }
}

static int u_fill(ustate *u, const dinfo *di, ProtobufCMessage *m, const uint8_t *p,
                  const uint8_t *end, size_t depth, size_t sdepth) {
  uint64_t seen[4] = {0};
  int counted = 0;
  while (p < end) {
    const uint8_t *tag_end = p, *lp, *vend;
    uint32_t fnum;
    unsigned wt;
    int i;
    if (u_next(di, &tag_end, end, &fnum, &wt, &i, &lp, &vend)) return -1;
    if (!counted && (i < 0 || di->fi[i].repeated)) {
      /* The first repeated or unknown field: count them all from here (none came
       * before), so arrays are allocated at their final size, as protobuf-c does. A
       * message that has none of them (most, on the hot path) skips the pass. */
      size_t nunk = 0;
      if (u_count(di, m, p, end, &nunk)) return -1;
      counted = 1;
      for (unsigned r = 0; r < di->nrep; r++) {
        const ProtobufCFieldDescriptor *rf = di->fi[di->rep[r]].f;
        size_t *n = (size_t *)((char *)m + rf->quantifier_offset);
        if (!*n) continue;
        void *arr = u_alloc(u, elem_size(rf->type) * *n);
        *n = 0; /* counts again as elements land, so a partial struct frees cleanly */
        if (!arr) {
          for (r++; r < di->nrep; r++)
            *(size_t *)((char *)m + di->fi[di->rep[r]].f->quantifier_offset) = 0;
          return -1;
        }
        memcpy((char *)m + rf->offset, &arr, sizeof arr);
      }
      if (nunk && !(m->unknown_fields = u_alloc(u, nunk * sizeof *m->unknown_fields))) return -1;
    }
    if (i < 0) {
      ProtobufCMessageUnknownField *uf = &m->unknown_fields[m->n_unknown_fields];
      uf->tag = fnum;
      uf->wire_type = (ProtobufCWireType)wt;
      uf->len = (size_t)(vend - tag_end); /* a length prefix included, as protobuf-c keeps it */
      if (!(uf->data = u_alloc(u, uf->len))) return -1;
      memcpy(uf->data, tag_end, uf->len);
      m->n_unknown_fields++;
      p = vend;
      continue;
    }
    const finfo *F = &di->fi[i];
    const ProtobufCFieldDescriptor *f = F->f;
    char *mem = (char *)m + f->offset;
    size_t plen = (size_t)(vend - lp);
    if (F->repeated) {
      size_t *n = (size_t *)((char *)m + f->quantifier_offset), esz = elem_size(f->type);
      char *arr;
      memcpy(&arr, mem, sizeof arr);
      if (wt == 2 && F->packable) {
        if (vscan_packed(F, lp, vend)) return -1;
        if (F->wt) { /* fixed-size elements: the wire is the array (little-endian host) */
          memcpy(arr + *n * esz, lp, plen);
          *n += plen / esz;
        } else if (F->type == PROTOBUF_C_TYPE_BOOL) {
          for (const uint8_t *q = lp; q < vend; q++)
            u_scalar(F->type, q, 1, arr + (*n)++ * esz);
        } else {
          for (const uint8_t *q = lp; q < vend;) {
            size_t k = varint_len(q, vend);
            u_scalar(F->type, q, k, arr + (*n)++ * esz);
            q += k;
          }
        }
      } else if (F->type == PROTOBUF_C_TYPE_MESSAGE) {
        char *slot = arr + *n * esz;
        memset(slot, 0, esz);
        ++*n; /* counted before it is filled: a partial element is freed with the rest */
        if (u_sub(u, F->sub, slot, lp, vend, depth, sdepth)) return -1;
      } else if (F->type == PROTOBUF_C_TYPE_STRING || F->type == PROTOBUF_C_TYPE_BYTES) {
        if (u_blob(u, F->type, lp, plen, arr + *n * esz)) return -1;
        ++*n;
      } else {
        u_scalar(F->type, lp, plen, arr + (*n)++ * esz);
      }
      p = vend;
      continue;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t *qc = (uint32_t *)((char *)m + f->quantifier_offset);
      if (*qc) { /* the member seen before goes, whichever it was */
        int oi = di_field(di, *qc);
        if (oi < 0) return -1;
        u_drop(u, di->fi[oi].f, mem);
        memset(mem, 0, elem_size(di->fi[oi].f->type));
      }
      *qc = fnum;
    } else if (F->type == PROTOBUF_C_TYPE_MESSAGE) {
      /* A second occurrence is refused (vscan does too): protobuf-c 1.4.1 merges it
       * unsafely. Past 256 fields vscan does not track it; leave those to protobuf-c. */
      if (!F->dup_check || (seen[i / 64] >> (i % 64) & 1)) return -1;
      seen[i / 64] |= 1ull << (i % 64);
    } else if (F->type == PROTOBUF_C_TYPE_STRING) {
      char *old; /* usually the default (first occurrence): nothing to free */
      memcpy(&old, mem, sizeof old);
      if (old && old != f->default_value) {
        u_free(u, old);
        old = NULL;
        memcpy(mem, &old, sizeof old);
      }
    } else if (F->type == PROTOBUF_C_TYPE_BYTES) {
      u_drop(u, f, mem);
      memset(mem, 0, elem_size(f->type));
    }
    if (F->type == PROTOBUF_C_TYPE_MESSAGE) {
      if (u_sub(u, F->sub, mem, lp, vend, depth, sdepth)) return -1;
    } else if (F->type == PROTOBUF_C_TYPE_STRING || F->type == PROTOBUF_C_TYPE_BYTES) {
      if (u_blob(u, F->type, lp, plen, mem)) return -1;
    } else {
      u_scalar(F->type, lp, plen, mem);
    }
    p = vend;
  }
  return 0;
}

ProtobufCMessage *w2a_pbjson_unpack_with(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                         size_t len, ProtobufCAllocator *a, w2a_err *err) {
  const dinfo *di;
  const uint8_t *b = buf ? buf : (const uint8_t *)"";
  if (len <= W2A_PBJSON_MAX_INPUT && (di = dinfo_of(d)) && di->proto3 && d->message_init) {
    ustate u = {a ? a : &sys_allocator, W2A_PBJSON_MAX_DEPTH, W2A_PBJSON_STRUCT_MAX_DEPTH};
    size_t depth = di->family ? 0 : 1, sdepth = di->value;
    ProtobufCMessage *m = u_alloc(&u, d->sizeof_message);
    if (m) {
      d->message_init(m);
      if (depth <= u.max_depth && sdepth <= u.smax && !u_fill(&u, di, m, b, b + len, depth, sdepth))
        return m;
      protobuf_c_message_free_unpacked(m, u.a);
    }
  }
  if (w2a_pbjson_validate(d, buf, len, err)) return NULL;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, a, len, buf);
  if (!m) w2a_errf(err, W2A_ENOMEM, "protobuf-c could not unpack %s (out of memory?)", d->name);
  return m;
}

ProtobufCMessage *w2a_pbjson_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                    size_t len, w2a_err *err) {
  return w2a_pbjson_unpack_with(d, buf, len, NULL, err);
}

/* ---- 7. bytes -> JSON without unpacking ---------------------------------------------- */

/* Runs on bytes vscan accepted. Each message is read once into records (one per field
 * occurrence, chained per field in wire order), then printed in field-number order with
 * protobuf-c's unpack rules: the last occurrence of a singular field wins; the last
 * member seen of a oneof is the one set; repeated fields gather every occurrence, packed
 * or not; fields the descriptor lacks are kept, in wire order, for "_unknown". A proto3
 * field printed only when non-zero is judged on the value protobuf-c would store (an
 * int32 read from a 64-bit varint is truncated first). Records and per-field slots live
 * in two stacks that a message pops when it is printed. */

typedef struct wrec {
  const uint8_t *p; /* varint bytes, fixed bytes, or the payload of wire type 2 */
  uint32_t len;
  uint32_t next; /* next record of the same field (index + 1), 0 at the end */
  uint32_t fnum;
  uint8_t wt;
} wrec;

typedef struct wslot {
  uint32_t head, tail; /* record index + 1, 0 for none */
  uint32_t nonempty;   /* holds at least one element (an empty packed run holds none) */
} wslot;

typedef struct wctx {
  emitter e;
  wrec *recs;
  wslot *slots;
  uint32_t nrecs, crecs, nslots, cslots;
} wctx;

#define W_FALLBACK 1 /* e.rc: these bytes are the reference path's (proto2 rules) */

static inline uint64_t wvarint(const uint8_t **pp) {
  const uint8_t *p = *pp;
  uint64_t r = 0;
  for (unsigned s = 0;; s += 7) {
    uint8_t b = *p++;
    r |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80)) break;
  }
  *pp = p;
  return r;
}

static inline uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

/* protobuf-c's parse_boolean: any payload bit set. */
static int wbool(const uint8_t *p, uint32_t len) {
  for (uint32_t i = 0; i < len; i++)
    if (p[i] & 0x7f) return 1;
  return 0;
}

/* The scalar protobuf-c stores for type t from its wire bytes, widened to 64 bits (signed
 * types sign-extended; float and double as their bits). */
static uint64_t wscalar(uint8_t t, const uint8_t *p, uint32_t len) {
  const uint8_t *q = p;
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_ENUM: return (uint64_t)(int64_t)(int32_t)(uint32_t)wvarint(&q);
  case PROTOBUF_C_TYPE_SINT32: {
    uint32_t u = (uint32_t)wvarint(&q);
    return (uint64_t)(int64_t)(int32_t)((u >> 1) ^ (0u - (u & 1)));
  }
  case PROTOBUF_C_TYPE_UINT32: return (uint32_t)wvarint(&q);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_UINT64: return wvarint(&q);
  case PROTOBUF_C_TYPE_SINT64: {
    uint64_t u = wvarint(&q);
    return (u >> 1) ^ (0 - (u & 1));
  }
  case PROTOBUF_C_TYPE_SFIXED32: return (uint64_t)(int64_t)(int32_t)le32(p);
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT: return le32(p);
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE: return le64(p);
  case PROTOBUF_C_TYPE_BOOL: return (uint64_t)wbool(p, len);
  default: return 0;
  }
}

static double bits_double(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Whether protobuf-c would pack this proto3 field again: field_present for label NONE. */
static int wnonzero(const finfo *F, const uint8_t *p, uint32_t len) {
  switch (F->type) {
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES: return len != 0;
  case PROTOBUF_C_TYPE_MESSAGE: return 1;
  case PROTOBUF_C_TYPE_FLOAT: return bits_float((uint32_t)wscalar(F->type, p, len)) != 0;
  case PROTOBUF_C_TYPE_DOUBLE: return bits_double(wscalar(F->type, p, len)) != 0;
  default: return wscalar(F->type, p, len) != 0;
  }
}

static void wmsg(wctx *c, const dinfo *di, const uint8_t *p, const uint8_t *end);

/* One value of F from its wire bytes; emit_value's output for what unpack stores. */
static void wone(wctx *c, const finfo *F, const uint8_t *p, uint32_t len) {
  emitter *e = &c->e;
  uint64_t u;
  switch (F->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: put_i64(e, (int64_t)wscalar(F->type, p, len), 0); break;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: put_u64(e, wscalar(F->type, p, len), 0); break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64: put_i64(e, (int64_t)wscalar(F->type, p, len), 1); break;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: put_u64(e, wscalar(F->type, p, len), 1); break;
  case PROTOBUF_C_TYPE_BOOL:
    if (wbool(p, len))
      PUTS(e, "true");
    else
      PUTS(e, "false");
    break;
  case PROTOBUF_C_TYPE_FLOAT: put_double(e, bits_float(le32(p)), 1); break;
  case PROTOBUF_C_TYPE_DOUBLE: put_double(e, bits_double(le64(p)), 0); break;
  case PROTOBUF_C_TYPE_ENUM:
    u = wscalar(F->type, p, len);
    put_enum(e, F->f->descriptor, (int)(int64_t)u);
    break;
  case PROTOBUF_C_TYPE_STRING: put_str(e, (const char *)p, len); break;
  case PROTOBUF_C_TYPE_BYTES: put_b64(e, p, len); break;
  case PROTOBUF_C_TYPE_MESSAGE: wmsg(c, F->sub, p, p + len); break;
  }
}

/* What emit_value prints for a member unpack left at its default. */
static void wzero(wctx *c, const finfo *F) {
  emitter *e = &c->e;
  switch (F->type) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: PUTS(e, "\"0\""); break;
  case PROTOBUF_C_TYPE_BOOL: PUTS(e, "false"); break;
  case PROTOBUF_C_TYPE_ENUM: put_enum(e, F->f->descriptor, 0); break;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES: PUTS(e, "\"\""); break;
  case PROTOBUF_C_TYPE_MESSAGE:
    if (F->sub && F->sub->value)
      PUTS(e, "null");
    else
      PUTS(e, "{}");
    break;
  default: PUTS(e, "0"); break;
  }
}

/* Skips the value of wire type wt at *pp; its bytes (payload for wire type 2). */
static inline void wskip(const uint8_t **pp, unsigned wt, const uint8_t **vp, uint32_t *vlen) {
  const uint8_t *p = *pp;
  switch (wt) {
  case 0: {
    const uint8_t *q = p;
    while (*q & 0x80)
      q++;
    *vp = p;
    *vlen = (uint32_t)(q + 1 - p);
    p = q + 1;
    break;
  }
  case 1:
    *vp = p;
    *vlen = 8;
    p += 8;
    break;
  case 5:
    *vp = p;
    *vlen = 4;
    p += 4;
    break;
  default: {
    uint64_t n = wvarint(&p);
    *vp = p;
    *vlen = (uint32_t)n;
    p += n;
  }
  }
  *pp = p;
}

static int wfail(wctx *c, int rc) {
  if (!c->e.rc) c->e.rc = rc;
  return -1;
}

/* Records for the fields of one message; slots sb.. are its per-field chains. */
static int wscan(wctx *c, const dinfo *di, const uint8_t *p, const uint8_t *end, uint32_t sb,
                 uint32_t *unk_head) {
  uint32_t utail = 0;
  *unk_head = 0;
  while (p < end) {
    uint64_t tag = *p < 0x80 ? *p++ : wvarint(&p);
    uint32_t fnum = (uint32_t)(tag >> 3);
    unsigned wt = (unsigned)tag & 7;
    const uint8_t *vp;
    uint32_t vlen;
    wskip(&p, wt, &vp, &vlen);
    if (c->nrecs == c->crecs) {
      uint32_t nc = c->crecs * 2;
      wrec *nr = nc > c->crecs ? realloc(c->recs, nc * sizeof *nr) : NULL;
      if (!nr) return wfail(c, W2A_ENOMEM);
      c->recs = nr;
      c->crecs = nc;
    }
    uint32_t r = ++c->nrecs;
    wrec *R = &c->recs[r - 1];
    R->p = vp;
    R->len = vlen;
    R->next = 0;
    R->fnum = fnum;
    R->wt = (uint8_t)wt;
    int i = di_field(di, fnum);
    if (i < 0) {
      if (utail)
        c->recs[utail - 1].next = r;
      else
        *unk_head = r;
      utail = r;
      continue;
    }
    wslot *S = &c->slots[sb + (uint32_t)i];
    if (S->tail)
      c->recs[S->tail - 1].next = r;
    else
      S->head = r;
    S->tail = r;
    if (!(wt == 2 && di->fi[i].packable && !vlen)) S->nonempty = 1;
  }
  return 0;
}

static void wpacked(wctx *c, const finfo *F, const uint8_t *p, uint32_t len, int *first) {
  const uint8_t *end = p + len;
  uint32_t step = F->wt == 5 ? 4 : F->wt == 1 ? 8 : F->type == PROTOBUF_C_TYPE_BOOL ? 1 : 0;
  while (p < end && !c->e.rc) {
    item(&c->e, first);
    if (step) {
      wone(c, F, p, step);
      p += step;
    } else {
      const uint8_t *q = p;
      while (*q & 0x80)
        q++;
      q++;
      wone(c, F, p, (uint32_t)(q - p));
      p = q;
    }
  }
}

/* Last occurrences of fields 1 and 2 of an entry (key/value) message. */
static void wentry(const uint8_t *p, uint32_t len, const uint8_t **kp, uint32_t *kl,
                   const uint8_t **vp, uint32_t *vl) {
  const uint8_t *end = p + len;
  *kp = *vp = NULL;
  *kl = *vl = 0;
  while (p < end) {
    uint64_t tag = wvarint(&p);
    const uint8_t *q;
    uint32_t n;
    wskip(&p, (unsigned)tag & 7, &q, &n);
    if (tag >> 3 == 1)
      *kp = q, *kl = n;
    else if (tag >> 3 == 2)
      *vp = q, *vl = n;
  }
}

static void wmapkey(wctx *c, const finfo *kf, const uint8_t *p, uint32_t len) {
  emitter *e = &c->e;
  char tmp[32], *s;
  switch (kf->type) {
  case PROTOBUF_C_TYPE_STRING: put_str(e, p ? (const char *)p : "", p ? len : 0); break;
  case PROTOBUF_C_TYPE_BOOL: {
    int b = p && wbool(p, len);
    put_str(e, b ? "true" : "false", b ? 4 : 5);
    break;
  }
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    s = fmt_u64(p ? wscalar(kf->type, p, len) : 0, tmp + sizeof tmp);
    put_str(e, s, strlen(s));
    break;
  default: {
    int64_t v = p ? (int64_t)wscalar(kf->type, p, len) : 0;
    s = fmt_u64(v < 0 ? -(uint64_t)v : (uint64_t)v, tmp + sizeof tmp);
    if (v < 0) *--s = '-';
    put_str(e, s, strlen(s));
  }
  }
}

static void wmap(wctx *c, const finfo *F, uint32_t head) {
  emitter *e = &c->e;
  const dinfo *ed = F->sub;
  const finfo *kf = &ed->fi[0], *vf = &ed->fi[1];
  int first = 1;
  open_(e, '{');
  for (uint32_t r = head; r && !e->rc;) {
    wrec R = c->recs[r - 1];
    r = R.next;
    const uint8_t *kp, *vp;
    uint32_t kl, vl;
    wentry(R.p, R.len, &kp, &kl, &vp, &vl);
    item(e, &first);
    wmapkey(c, kf, kp, kl);
    PUTS(e, ":");
    if (e->o->pretty) putc_(e, ' ');
    if (vp)
      wone(c, vf, vp, vl);
    else
      wzero(c, vf);
  }
  close_(e, '}', first);
}

static void wunknown(wctx *c, uint32_t head, int *first) {
  emitter *e = &c->e;
  item(e, first);
  key(e, "_unknown");
  int f2 = 1;
  open_(e, '[');
  for (uint32_t r = head; r && !e->rc;) {
    wrec R = c->recs[r - 1];
    r = R.next;
    item(e, &f2);
    PUTS(e, "{\"field\":");
    put_u64(e, R.fnum, 0);
    PUTS(e, ",\"wire_type\":");
    put_u64(e, R.wt, 0);
    PUTS(e, ",\"data\":");
    put_b64(e, R.p, R.len);
    putc_(e, '}');
  }
  close_(e, ']', f2);
}

static int oneof_won(const wctx *c, const dinfo *di, uint32_t sb, int g, uint32_t tail) {
  for (unsigned k = di->gstart[g]; k < di->gstart[g + 1]; k++)
    if (c->slots[sb + di->gmem[k]].tail > tail) return 0;
  return 1;
}

static void wgeneric(wctx *c, const dinfo *di, uint32_t sb, uint32_t unk) {
  emitter *e = &c->e;
  int first = 1, defaults = e->o->emit_defaults;
  open_(e, '{');
  for (unsigned i = 0; i < di->nf && !e->rc; i++) {
    const finfo *F = &di->fi[i];
    wslot s = c->slots[sb + i];
    if (F->repeated) {
      if (!s.nonempty && !defaults) continue;
      item(e, &first);
      keyn(e, F->f->name, F->name_len);
      if (F->is_map) {
        wmap(c, F, s.head);
        continue;
      }
      int f2 = 1;
      open_(e, '[');
      for (uint32_t r = s.head; r && !e->rc;) {
        wrec R = c->recs[r - 1];
        r = R.next;
        if (R.wt == 2 && F->packable) {
          wpacked(c, F, R.p, R.len, &f2);
        } else {
          item(e, &f2);
          wone(c, F, R.p, R.len);
        }
      }
      close_(e, ']', f2);
      continue;
    }
    if (!s.tail) {
      if (defaults && F->type != PROTOBUF_C_TYPE_MESSAGE && F->oneof < 0) {
        item(e, &first);
        keyn(e, F->f->name, F->name_len);
        wzero(c, F);
      }
      continue;
    }
    wrec R = c->recs[s.tail - 1];
    if (F->oneof >= 0) {
      if (!oneof_won(c, di, sb, F->oneof, s.tail)) continue;
    } else if (!defaults && !wnonzero(F, R.p, R.len)) {
      continue;
    }
    item(e, &first);
    keyn(e, F->f->name, F->name_len);
    wone(c, F, R.p, R.len);
  }
  if (unk && !e->o->skip_unknown) wunknown(c, unk, &first);
  close_(e, '}', first);
}

static void wstruct(wctx *c, const dinfo *di, uint32_t sb) {
  emitter *e = &c->e;
  int fi = di_field(di, 1), first = 1;
  const dinfo *vd = di->fi[fi].sub->fi[1].sub; /* FieldsEntry.value: Value */
  open_(e, '{');
  for (uint32_t r = c->slots[sb + (uint32_t)fi].head; r && !e->rc;) {
    wrec R = c->recs[r - 1];
    r = R.next;
    const uint8_t *kp, *vp;
    uint32_t kl, vl;
    wentry(R.p, R.len, &kp, &kl, &vp, &vl);
    item(e, &first);
    put_str(e, kp ? (const char *)kp : "", kl);
    PUTS(e, ":");
    if (e->o->pretty) putc_(e, ' ');
    if (vp)
      wmsg(c, vd, vp, vp + vl);
    else
      PUTS(e, "null");
  }
  close_(e, '}', first);
}

static void wvalue(wctx *c, const dinfo *di, uint32_t sb) {
  emitter *e = &c->e;
  uint32_t best = 0;
  int bi = -1;
  for (unsigned i = 0; i < di->nf; i++)
    if (c->slots[sb + i].tail > best) best = c->slots[sb + i].tail, bi = (int)i;
  if (bi < 0) return (void)PUTS(e, "null");
  const finfo *F = &di->fi[bi];
  wrec R = c->recs[best - 1];
  switch (F->f->id) {
  case 2: put_double(e, bits_double(le64(R.p)), 0); break;
  case 3: put_str(e, (const char *)R.p, R.len); break;
  case 4:
    if (wbool(R.p, R.len))
      PUTS(e, "true");
    else
      PUTS(e, "false");
    break;
  case 5:
  case 6: wmsg(c, F->sub, R.p, R.p + R.len); break;
  default: PUTS(e, "null"); break;
  }
}

static void wlist(wctx *c, const dinfo *di, uint32_t sb) {
  emitter *e = &c->e;
  int fi = di_field(di, 1), first = 1;
  open_(e, '[');
  for (uint32_t r = c->slots[sb + (uint32_t)fi].head; r && !e->rc;) {
    wrec R = c->recs[r - 1];
    r = R.next;
    item(e, &first);
    wmsg(c, di->fi[fi].sub, R.p, R.p + R.len);
  }
  close_(e, ']', first);
}

static int wtimestamp(wctx *c, const dinfo *di, uint32_t sb) {
  int i1 = di_field(di, 1), i2 = di_field(di, 2);
  uint32_t t1 = c->slots[sb + (uint32_t)i1].tail, t2 = c->slots[sb + (uint32_t)i2].tail;
  int64_t secs = t1 ? (int64_t)wscalar(PROTOBUF_C_TYPE_INT64, c->recs[t1 - 1].p, 0) : 0;
  int32_t nanos = t2 ? (int32_t)(int64_t)wscalar(PROTOBUF_C_TYPE_INT32, c->recs[t2 - 1].p, 0) : 0;
  return put_timestamp(&c->e, secs, nanos);
}

/* emit_field_mask on the paths' records. */
static int wfieldmask(wctx *c, const dinfo *di, uint32_t sb) {
  uint32_t head = c->slots[sb + (uint32_t)di_field(di, 1)].head;
  size_t total = 1, n = 0;
  for (uint32_t r = head; r; r = c->recs[r - 1].next) {
    const wrec *R = &c->recs[r - 1];
    for (uint32_t j = 0; j < R->len; j++)
      if ((R->p[j] >= 'A' && R->p[j] <= 'Z') || R->p[j] == ',') return 0;
    total += R->len + 1;
    n++;
  }
  if (n == 1 && !c->recs[head - 1].len) return 0;
  char *buf = malloc(total), *w = buf;
  if (!buf) {
    wfail(c, W2A_ENOMEM);
    return 1;
  }
  for (uint32_t r = head; r; r = c->recs[r - 1].next) {
    const wrec *R = &c->recs[r - 1];
    if (r != head) *w++ = ',';
    for (uint32_t j = 0; j < R->len; j++) {
      if (R->p[j] == '_' && j + 1 < R->len && R->p[j + 1] >= 'a' && R->p[j + 1] <= 'z')
        *w++ = (char)(R->p[++j] - 'a' + 'A');
      else
        *w++ = (char)R->p[j];
    }
  }
  put_str(&c->e, buf, (size_t)(w - buf));
  free(buf);
  return 1;
}

static void wmsg(wctx *c, const dinfo *di, const uint8_t *p, const uint8_t *end) {
  if (c->e.rc) return;
  if (!di->proto3) {
    wfail(c, W_FALLBACK);
    return;
  }
  uint32_t sb = c->nslots, rb = c->nrecs, unk;
  if (di->nf > c->cslots - c->nslots) {
    uint32_t nc = c->cslots;
    while (di->nf > nc - c->nslots)
      nc *= 2;
    wslot *ns = realloc(c->slots, nc * sizeof *ns);
    if (!ns) {
      wfail(c, W2A_ENOMEM);
      return;
    }
    c->slots = ns;
    c->cslots = nc;
  }
  memset(c->slots + sb, 0, di->nf * sizeof *c->slots);
  c->nslots += di->nf;
  if (!wscan(c, di, p, end, sb, &unk)) {
    switch (di->kind) {
    case K_STRUCT: wstruct(c, di, sb); break;
    case K_VALUE: wvalue(c, di, sb); break;
    case K_LIST: wlist(c, di, sb); break;
    case K_TIMESTAMP:
      if (unk || !wtimestamp(c, di, sb)) wgeneric(c, di, sb, unk);
      break;
    case K_FIELDMASK:
      if (unk || !wfieldmask(c, di, sb)) wgeneric(c, di, sb, unk);
      break;
    default: wgeneric(c, di, sb, unk); break;
    }
  }
  c->nslots = sb;
  c->nrecs = rb;
}

/* 0, or nonzero with out as it was: the caller then takes the reference path. */
static int to_json_fast(const dinfo *di, const uint8_t *buf, size_t len, const w2a_pbjson_opts *o,
                        w2a_buf *out) {
  size_t start = out->len;
  if (w2a_buf_reserve(out, len * 2 + 64) == W2A_ENOMEM) return -1;
  wctx c = {.e = {.b = out, .o = o, .trusted = 1}};
  c.crecs = 256; /* records are popped with their message: the peak is one nesting chain */
  c.cslots = 256;
  c.recs = malloc(c.crecs * sizeof *c.recs);
  c.slots = malloc(c.cslots * sizeof *c.slots);
  if (c.recs && c.slots)
    wmsg(&c, di, buf, buf + len);
  else
    c.e.rc = W2A_ENOMEM;
  free(c.recs);
  free(c.slots);
  if (c.e.rc) {
    out->len = start;
    if (out->data) out->data[start] = 0;
  }
  return c.e.rc;
}

int w2a_pbjson_to_json(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                       const w2a_pbjson_opts *oin, w2a_buf *out, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  const uint8_t *b = buf ? buf : (const uint8_t *)"";
  const dinfo *di;
  if (len <= o.max_input && (di = dinfo_of(d)) && !vscan_root(di, b, len, &o) &&
      !to_json_fast(di, b, len, &o, out))
    return 0;
  return w2a_pbjson_to_json_ref(d, buf, len, &o, out, err);
}

/* ---- 8. JSON tree -> bytes without protobuf-c structs -------------------------------- */

/* The JSON tree is walked in the order build_msg walks it, with the same converters and
 * the same checks, into nodes that hold each set field's wire-ready value and its encoded
 * size; sizes are summed bottom-up as nodes are finished, so the bytes are then written
 * in one pass with every length prefix known. What protobuf_c_message_pack would write
 * is reproduced field by field: field-number order, proto3 zero values left out (a
 * oneof member is written even when zero), repeated scalars packed when the descriptor
 * says so, map entries and Struct/Value as the messages they are, unknown fields last.
 * Any failure (bad input, caps, proto2 rules) returns nonzero without error text: the
 * caller then runs the reference path on the same tree, which names the problem. */

typedef struct ebytes {
  const char *p;
  size_t len;
} ebytes;

typedef struct enode enode;

typedef struct eitem {
  uint32_t fi; /* field index */
  uint32_t n;  /* elements (1 for a singular field) */
  size_t size; /* bytes written for this field, tags included; 0: nothing */
  size_t plen; /* packed: payload bytes */
  union {
    uint64_t raw; /* a scalar in wire form: varint value, or fixed-width bits */
    ebytes s;
    enode *m;
    uint64_t *raws;
    ebytes *ss;
    enode **ms;
  } u;
} eitem;

struct enode {
  const dinfo *di;
  size_t size; /* body bytes */
  eitem *it;
  uint32_t n, cap;
  const uint8_t *unk; /* unknown fields, encoded */
  size_t unklen;
};

typedef union sval {
  int32_t i32;
  uint32_t u32;
  int64_t i64;
  uint64_t u64;
  float f;
  double d;
  protobuf_c_boolean b;
  int e;
  char *s;
  ProtobufCBinaryData bd;
} sval;

static inline size_t vsize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80)
    v >>= 7, n++;
  return n;
}

static inline size_t raw_size(uint8_t wt, uint64_t raw) {
  return wt == 0 ? vsize(raw) : wt == 5 ? 4 : 8;
}

/* What int32_pack, sint32_pack, boolean_pack... write for the stored value, as one
 * number; *nz: field_is_zeroish is false. */
static uint64_t eraw(uint8_t type, const sval *t, int *nz) {
  uint64_t u;
  switch (type) {
  case PROTOBUF_C_TYPE_INT32: *nz = t->i32 != 0; return (uint64_t)(int64_t)t->i32;
  case PROTOBUF_C_TYPE_ENUM: *nz = t->e != 0; return (uint64_t)(int64_t)t->e;
  case PROTOBUF_C_TYPE_SINT32:
    *nz = t->i32 != 0;
    return t->i32 < 0 ? (0u - (uint32_t)t->i32) * 2 - 1 : (uint32_t)t->i32 * 2;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32: *nz = t->u32 != 0; return t->u32;
  case PROTOBUF_C_TYPE_SINT64:
    *nz = t->i64 != 0;
    return t->i64 < 0 ? (0 - (uint64_t)t->i64) * 2 - 1 : (uint64_t)t->i64 * 2;
  case PROTOBUF_C_TYPE_BOOL: *nz = t->b != 0; return t->b ? 1 : 0;
  case PROTOBUF_C_TYPE_FLOAT: {
    uint32_t b;
    memcpy(&b, &t->f, 4);
    *nz = t->f != 0;
    return b;
  }
  case PROTOBUF_C_TYPE_DOUBLE:
    memcpy(&u, &t->d, 8);
    *nz = t->d != 0;
    return u;
  default: *nz = t->u64 != 0; return t->u64; /* int64, uint64, fixed64, sfixed64 */
  }
}

static enode *enode_new(jctx *c, const dinfo *di, size_t cap) {
  if (cap > UINT32_MAX) return NULL;
  enode *n = arena_alloc(c->a, sizeof *n + cap * sizeof(eitem));
  if (!n) return NULL;
  n->di = di;
  n->size = 0;
  n->it = (eitem *)(n + 1);
  n->n = 0;
  n->cap = (uint32_t)cap;
  n->unk = NULL;
  n->unklen = 0;
  return n;
}

/* The item of field fi, reset when it was set before (a repeated key replaces). */
static eitem *eslot(enode *n, uint32_t fi) {
  eitem *it = NULL;
  for (uint32_t k = 0; k < n->n && !it; k++)
    if (n->it[k].fi == fi) it = &n->it[k];
  if (!it) {
    if (n->n == n->cap) return NULL;
    it = &n->it[n->n++];
  }
  memset(it, 0, sizeof *it);
  it->fi = fi;
  return it;
}

/* Field order, then the body size. */
static void enode_done(enode *n) {
  for (uint32_t i = 1; i < n->n; i++) {
    eitem x = n->it[i];
    uint32_t j = i;
    for (; j > 0 && n->it[j - 1].fi > x.fi; j--)
      n->it[j] = n->it[j - 1];
    n->it[j] = x;
  }
  size_t s = n->unklen;
  for (uint32_t i = 0; i < n->n; i++)
    s += n->it[i].size;
  n->size = s;
}

static size_t esize_one(const finfo *F, uint64_t raw, const ebytes *bs, const enode *m) {
  switch (F->type) {
  case PROTOBUF_C_TYPE_MESSAGE: return F->tag_n + vsize(m->size) + m->size;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES: return F->tag_n + vsize(bs->len) + bs->len;
  default: return F->tag_n + raw_size(F->wt, raw);
  }
}

static int e_msg(jctx *c, const dinfo *di, const jv *v, enode **out);
static int e_value(jctx *c, const dinfo *di, const jv *v, enode **out);

/* One value of F (set_value), in wire form. */
static int e_elem(jctx *c, const finfo *F, const jv *v, uint64_t *raw, ebytes *bs, enode **m,
                  int *nz) {
  if (F->type == PROTOBUF_C_TYPE_MESSAGE) {
    *nz = 1;
    return e_msg(c, F->sub, v, m);
  }
  sval t;
  memset(&t, 0, sizeof t);
  if (set_value(c, F->f, v, &t)) return -1;
  if (F->type == PROTOBUF_C_TYPE_STRING) {
    bs->p = t.s;
    bs->len = v->n;
    *nz = v->n != 0;
  } else if (F->type == PROTOBUF_C_TYPE_BYTES) {
    bs->p = (const char *)t.bd.data;
    bs->len = t.bd.len;
    *nz = t.bd.len != 0;
  } else {
    *raw = eraw(F->type, &t, nz);
  }
  return 0;
}

/* One map entry (set_field's map branch). */
static int e_entry(jctx *c, const dinfo *ed, const jmember *mb, enode **out) {
  const finfo *kf = &ed->fi[0], *vf = &ed->fi[1];
  enode *en = enode_new(c, ed, 2);
  if (!en || !ed->proto3) return -1;
  sval t;
  memset(&t, 0, sizeof t);
  if (set_map_key(c, kf->f, mb, &t)) return -1;
  uint64_t raw = 0;
  ebytes bs = {mb->k, mb->klen};
  enode *m = NULL;
  int nz;
  if (kf->type == PROTOBUF_C_TYPE_STRING)
    nz = mb->klen != 0;
  else
    raw = eraw(kf->type, &t, &nz);
  eitem *it = eslot(en, 0);
  it->n = 1;
  if (kf->type == PROTOBUF_C_TYPE_STRING)
    it->u.s = bs;
  else
    it->u.raw = raw;
  it->size = nz ? esize_one(kf, raw, &bs, NULL) : 0;
  if (mb->v.t == J_NULL && !vf->null_ok) return -1;
  bs.p = NULL;
  bs.len = 0;
  raw = 0;
  if (e_elem(c, vf, &mb->v, &raw, &bs, &m, &nz)) return -1;
  it = eslot(en, 1);
  it->n = 1;
  if (vf->type == PROTOBUF_C_TYPE_MESSAGE)
    it->u.m = m;
  else if (vf->type == PROTOBUF_C_TYPE_STRING || vf->type == PROTOBUF_C_TYPE_BYTES)
    it->u.s = bs;
  else
    it->u.raw = raw;
  it->size = nz ? esize_one(vf, raw, &bs, m) : 0;
  enode_done(en);
  *out = en;
  return 0;
}

/* set_field. */
static int e_field(jctx *c, enode *n, const finfo *F, const jv *v) {
  uint32_t fi = (uint32_t)(F - n->di->fi);
  if (v->t == J_NULL && !F->null_ok) return 0; /* default */
  if (F->repeated) {
    if (F->is_map ? v->t != J_OBJ : v->t != J_ARR) return -1;
    size_t cnt = v->n, size = 0, plen = 0;
    void *arr = NULL;
    if (F->type == PROTOBUF_C_TYPE_MESSAGE) {
      enode **ms = cnt ? arena_alloc(c->a, cnt * sizeof *ms) : NULL;
      if (cnt && !ms) return -1;
      for (size_t i = 0; i < cnt; i++) {
        if (F->is_map) {
          if (e_entry(c, F->sub, &v->u.o[i], &ms[i])) return -1;
        } else {
          const jv *e = &v->u.a[i];
          if (e->t == J_NULL && !F->null_ok) return -1;
          if (e_msg(c, F->sub, e, &ms[i])) return -1;
        }
        size += F->tag_n + vsize(ms[i]->size) + ms[i]->size;
      }
      arr = ms;
    } else if (F->type == PROTOBUF_C_TYPE_STRING || F->type == PROTOBUF_C_TYPE_BYTES) {
      ebytes *ss = cnt ? arena_alloc(c->a, cnt * sizeof *ss) : NULL;
      if (cnt && !ss) return -1;
      for (size_t i = 0; i < cnt; i++) {
        const jv *e = &v->u.a[i];
        uint64_t raw;
        int nz;
        if (e->t == J_NULL) return -1;
        if (e_elem(c, F, e, &raw, &ss[i], NULL, &nz)) return -1;
        size += F->tag_n + vsize(ss[i].len) + ss[i].len;
      }
      arr = ss;
    } else {
      uint64_t *raws = cnt ? arena_alloc(c->a, cnt * sizeof *raws) : NULL;
      if (cnt && !raws) return -1;
      for (size_t i = 0; i < cnt; i++) {
        const jv *e = &v->u.a[i];
        int nz;
        if (e->t == J_NULL && !F->null_ok) return -1;
        if (e_elem(c, F, e, &raws[i], NULL, NULL, &nz)) return -1;
        plen += raw_size(F->wt, raws[i]);
      }
      size = F->packed ? F->ptag_n + vsize(plen) + plen : plen + cnt * F->tag_n;
      arr = raws;
    }
    eitem *it = eslot(n, fi);
    if (!it || cnt > UINT32_MAX) return -1;
    it->n = (uint32_t)cnt;
    it->size = cnt ? size : 0;
    it->plen = plen;
    it->u.ms = arr;
    return 0;
  }
  if (F->oneof >= 0)
    for (uint32_t k = 0; k < n->n; k++)
      if (n->it[k].fi != fi && n->di->fi[n->it[k].fi].oneof == F->oneof) return -1;
  uint64_t raw = 0;
  ebytes bs = {NULL, 0};
  enode *m = NULL;
  int nz;
  if (e_elem(c, F, v, &raw, &bs, &m, &nz)) return -1;
  eitem *it = eslot(n, fi);
  if (!it) return -1;
  it->n = 1;
  if (F->type == PROTOBUF_C_TYPE_MESSAGE)
    it->u.m = m;
  else if (F->type == PROTOBUF_C_TYPE_STRING || F->type == PROTOBUF_C_TYPE_BYTES)
    it->u.s = bs;
  else
    it->u.raw = raw;
  it->size = nz || F->oneof >= 0 ? esize_one(F, raw, &bs, m) : 0;
  return 0;
}

/* set_unknown's checks, then the fields as protobuf-c packs them: tag, then data (which
 * for wire type 2 carries its length prefix). An empty array keeps what was there. */
static int e_unknown(jctx *c, enode *n, const jv *v) {
  ProtobufCMessage m;
  memset(&m, 0, sizeof m);
  m.descriptor = n->di->d;
  if (set_unknown(c, &m, v)) return -1;
  if (!v->n) return 0;
  size_t total = 0;
  for (unsigned i = 0; i < m.n_unknown_fields; i++)
    total += vsize((uint64_t)m.unknown_fields[i].tag << 3 | m.unknown_fields[i].wire_type) +
             m.unknown_fields[i].len;
  uint8_t *b = arena_alloc(c->a, total), *w = b;
  if (!b) return -1;
  for (unsigned i = 0; i < m.n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *u = &m.unknown_fields[i];
    w += wr_varint(w, (uint64_t)u->tag << 3 | u->wire_type);
    if (u->len) memcpy(w, u->data, u->len);
    w += u->len;
  }
  n->unk = b;
  n->unklen = total;
  return 0;
}

static const finfo *e_find(const dinfo *di, const char *k, size_t klen) {
  int i = ht_get(di, k, klen);
  if (i >= 0) return &di->fi[i];
  if (memchr(k, 0, klen)) { /* find_field reads such a key up to its NUL */
    const ProtobufCFieldDescriptor *f = find_field(di->d, k, klen);
    return f ? &di->fi[f - di->d->fields] : NULL;
  }
  return NULL;
}

static int e_generic(jctx *c, const dinfo *di, const jv *v, enode **out) {
  if (!di->proto3 || v->t != J_OBJ) return -1;
  enode *n = enode_new(c, di, v->n);
  if (!n) return -1;
  for (size_t i = 0; i < v->n; i++) {
    const jmember *mb = &v->u.o[i];
    if (mb->k[0] == '_' && !strcmp(mb->k, "_unknown")) {
      if (e_unknown(c, n, &mb->v)) return -1;
      continue;
    }
    const finfo *F = e_find(di, mb->k, mb->klen);
    if (!F) {
      if (!c->o->ignore_unknown_keys) return -1;
      continue;
    }
    if (e_field(c, n, F, &mb->v)) return -1;
  }
  enode_done(n);
  *out = n;
  return 0;
}

/* A singular item of node n holding field number num. */
static eitem *e_set(enode *n, uint32_t num) {
  int fi = di_field(n->di, num);
  return fi < 0 ? NULL : eslot(n, (uint32_t)fi);
}

static int e_struct(jctx *c, const dinfo *di, const jv *v, enode **out) {
  if (v->t != J_OBJ) return -1;
  const finfo *F = &di->fi[0];
  const dinfo *ed = F->sub;
  const finfo *kf = &ed->fi[0], *vf = &ed->fi[1];
  enode *n = enode_new(c, di, 1);
  enode **ms = v->n ? arena_alloc(c->a, v->n * sizeof *ms) : NULL;
  if (!n || (v->n && !ms)) return -1;
  size_t size = 0;
  for (size_t i = 0; i < v->n; i++) {
    const jmember *mb = &v->u.o[i];
    if (memchr(mb->k, 0, mb->klen)) return -1;
    enode *en = enode_new(c, ed, 2), *val;
    if (!en) return -1;
    eitem *it = eslot(en, 0);
    it->n = 1;
    it->u.s.p = mb->k;
    it->u.s.len = mb->klen;
    it->size = mb->klen ? esize_one(kf, 0, &it->u.s, NULL) : 0;
    if (e_value(c, vf->sub, &mb->v, &val)) return -1;
    it = eslot(en, 1);
    it->n = 1;
    it->u.m = val;
    it->size = esize_one(vf, 0, NULL, val);
    enode_done(en);
    ms[i] = en;
    size += F->tag_n + vsize(en->size) + en->size;
  }
  if (v->n) {
    eitem *it = eslot(n, 0);
    it->n = (uint32_t)v->n;
    it->u.ms = ms;
    it->size = size;
  }
  enode_done(n);
  *out = n;
  return 0;
}

static int e_list(jctx *c, const dinfo *di, const jv *v, enode **out) {
  if (v->t != J_ARR) return -1;
  const finfo *F = &di->fi[0];
  enode *n = enode_new(c, di, 1);
  enode **ms = v->n ? arena_alloc(c->a, v->n * sizeof *ms) : NULL;
  if (!n || (v->n && !ms)) return -1;
  size_t size = 0;
  for (size_t i = 0; i < v->n; i++) {
    if (e_value(c, F->sub, &v->u.a[i], &ms[i])) return -1;
    size += F->tag_n + vsize(ms[i]->size) + ms[i]->size;
  }
  if (v->n) {
    eitem *it = eslot(n, 0);
    it->n = (uint32_t)v->n;
    it->u.ms = ms;
    it->size = size;
  }
  enode_done(n);
  *out = n;
  return 0;
}

/* build_value: one member of the kind oneof, always written. */
static int e_value(jctx *c, const dinfo *di, const jv *v, enode **out) {
  if (c->sdepth + 1 > c->o->struct_max_depth) return -1;
  enode *n = enode_new(c, di, 1);
  if (!n) return -1;
  int rc = 0;
  uint32_t num = 1;
  uint64_t raw = 0;
  ebytes bs = {NULL, 0};
  enode *m = NULL;
  c->sdepth++;
  switch (v->t) {
  case J_NULL: break;
  case J_TRUE:
  case J_FALSE:
    num = 4;
    raw = v->t == J_TRUE;
    break;
  case J_NUM: {
    double d = 0;
    num = 2;
    rc = j_double(c, v, 0, &d);
    memcpy(&raw, &d, 8);
    break;
  }
  case J_STR: {
    char *s = NULL;
    num = 3;
    rc = set_string(c, v, &s);
    bs.p = s;
    bs.len = v->n;
    break;
  }
  case J_OBJ:
    num = 5;
    rc = e_struct(c, di->fi[di_field(di, 5)].sub, v, &m);
    break;
  case J_ARR:
    num = 6;
    rc = e_list(c, di->fi[di_field(di, 6)].sub, v, &m);
    break;
  }
  c->sdepth--;
  if (rc) return -1;
  eitem *it = e_set(n, num);
  if (!it) return -1;
  const finfo *F = &di->fi[it->fi];
  it->n = 1;
  if (num == 5 || num == 6)
    it->u.m = m;
  else if (num == 3)
    it->u.s = bs;
  else
    it->u.raw = raw;
  it->size = esize_one(F, raw, &bs, m);
  enode_done(n);
  *out = n;
  return 0;
}

static int e_timestamp(jctx *c, const dinfo *di, const jv *v, enode **out) {
  int64_t secs;
  int32_t nanos;
  if (ts_parse(v->u.s, v->n, &secs, &nanos)) return -1;
  enode *n = enode_new(c, di, 2);
  if (!n) return -1;
  eitem *it = e_set(n, 1);
  if (!it) return -1;
  it->n = 1;
  it->u.raw = (uint64_t)secs;
  it->size = secs ? esize_one(&di->fi[it->fi], it->u.raw, NULL, NULL) : 0;
  if (!(it = e_set(n, 2))) return -1;
  it->n = 1;
  it->u.raw = (uint64_t)(int64_t)nanos;
  it->size = nanos ? esize_one(&di->fi[it->fi], it->u.raw, NULL, NULL) : 0;
  enode_done(n);
  *out = n;
  return 0;
}

/* build_field_mask: "aB.c,d" -> paths "a_b.c", "d". */
static int e_field_mask(jctx *c, const dinfo *di, const jv *v, enode **out) {
  if (v->has_nul) return -1;
  enode *n = enode_new(c, di, 1);
  if (!n) return -1;
  if (v->n) {
    size_t np = 1, upper = 0, size = 0;
    for (size_t i = 0; i < v->n; i++) {
      np += v->u.s[i] == ',';
      upper += v->u.s[i] >= 'A' && v->u.s[i] <= 'Z';
    }
    char *buf = arena_alloc(c->a, v->n + upper + 1), *w = buf;
    ebytes *ps = arena_alloc(c->a, np * sizeof *ps);
    eitem *it = e_set(n, 1);
    if (!buf || !ps || !it) return -1;
    size_t k = 0;
    ps[0].p = w;
    for (size_t i = 0; i < v->n; i++) {
      char ch = v->u.s[i];
      if (ch == ',') {
        ps[k].len = (size_t)(w - ps[k].p);
        ps[++k].p = w;
      } else if (ch >= 'A' && ch <= 'Z') {
        *w++ = '_';
        *w++ = (char)(ch - 'A' + 'a');
      } else {
        *w++ = ch;
      }
    }
    ps[k].len = (size_t)(w - ps[k].p);
    const finfo *F = &di->fi[it->fi];
    for (size_t i = 0; i < np; i++)
      size += F->tag_n + vsize(ps[i].len) + ps[i].len;
    it->n = (uint32_t)np;
    it->u.ss = ps;
    it->size = size;
  }
  enode_done(n);
  *out = n;
  return 0;
}

/* build_msg. */
static int e_msg(jctx *c, const dinfo *di, const jv *v, enode **out) {
  if (!di) return -1;
  size_t inc = di->family ? 0 : 1;
  if (c->depth + inc > c->o->max_depth) return -1;
  c->depth += inc;
  int rc;
  if (di->kind == K_VALUE)
    rc = e_value(c, di, v, out);
  else if (di->kind == K_STRUCT)
    rc = e_struct(c, di, v, out);
  else if (di->kind == K_LIST)
    rc = e_list(c, di, v, out);
  else if (di->kind == K_TIMESTAMP && v->t == J_STR)
    rc = e_timestamp(c, di, v, out);
  else if (di->kind == K_FIELDMASK && v->t == J_STR)
    rc = e_field_mask(c, di, v, out);
  else
    rc = e_generic(c, di, v, out);
  c->depth -= inc;
  return rc;
}

static inline uint8_t *ew_raw(uint8_t wt, uint64_t raw, uint8_t *w) {
  if (wt == 0) return w + wr_varint(w, raw);
  size_t n = wt == 5 ? 4 : 8;
  for (size_t i = 0; i < n; i++)
    w[i] = (uint8_t)(raw >> (8 * i));
  return w + n;
}

static uint8_t *ew_node(const enode *n, uint8_t *w);

static uint8_t *ew_one(const finfo *F, uint64_t raw, const ebytes *bs, const enode *m, uint8_t *w) {
  memcpy(w, F->tag, F->tag_n);
  w += F->tag_n;
  switch (F->type) {
  case PROTOBUF_C_TYPE_MESSAGE: w += wr_varint(w, m->size); return ew_node(m, w);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
    w += wr_varint(w, bs->len);
    if (bs->len) memcpy(w, bs->p, bs->len);
    return w + bs->len;
  default: return ew_raw(F->wt, raw, w);
  }
}

static uint8_t *ew_node(const enode *n, uint8_t *w) {
  const dinfo *di = n->di;
  for (uint32_t k = 0; k < n->n; k++) {
    const eitem *it = &n->it[k];
    if (!it->size) continue;
    const finfo *F = &di->fi[it->fi];
    if (!F->repeated) {
      w = ew_one(F, it->u.raw, &it->u.s, it->u.m, w);
    } else if (F->type == PROTOBUF_C_TYPE_MESSAGE) {
      for (uint32_t i = 0; i < it->n; i++)
        w = ew_one(F, 0, NULL, it->u.ms[i], w);
    } else if (F->type == PROTOBUF_C_TYPE_STRING || F->type == PROTOBUF_C_TYPE_BYTES) {
      for (uint32_t i = 0; i < it->n; i++)
        w = ew_one(F, 0, &it->u.ss[i], NULL, w);
    } else if (F->packed) {
      memcpy(w, F->ptag, F->ptag_n);
      w += F->ptag_n;
      w += wr_varint(w, it->plen);
      for (uint32_t i = 0; i < it->n; i++)
        w = ew_raw(F->wt, it->u.raws[i], w);
    } else {
      for (uint32_t i = 0; i < it->n; i++)
        w = ew_one(F, it->u.raws[i], NULL, NULL, w);
    }
  }
  if (n->unklen) memcpy(w, n->unk, n->unklen);
  return w + n->unklen;
}

static int from_json_fast(const dinfo *di, const jv *root, const w2a_pbjson_opts *o, arena *a,
                          w2a_buf *out) {
  jctx c = {.a = a, .o = o, .path = "$", .plen = 1};
  enode *n;
  if (e_msg(&c, di, root, &n) || w2a_buf_reserve(out, n->size)) return -1;
  uint8_t *w0 = (uint8_t *)out->data + out->len, *w = ew_node(n, w0);
  assert((size_t)(w - w0) == n->size);
  out->len += n->size;
  out->data[out->len] = 0;
  return 0;
}

int w2a_pbjson_from_json(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                         const w2a_pbjson_opts *oin, w2a_buf *out_bytes, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  if (len > o.max_input)
    return w2a_errf(err, W2A_ETOOBIG, "JSON input of %zu bytes exceeds the cap of %zu", len,
                    o.max_input);
  if (!json) json = "";
  arena a;
  json_arena_init(&a, len);
  jv root;
  int rc = json_parse(json, len, &o, &a, err, &root);
  if (!rc) {
    const dinfo *di = dinfo_of(d);
    amark mk = arena_mark(&a);
    if (!di || from_json_fast(di, &root, &o, &a, out_bytes)) {
      arena_release(&a, mk);
      rc = build_and_pack(d, &root, &o, &a, out_bytes, err);
    }
  }
  arena_free(&a);
  return rc;
}
