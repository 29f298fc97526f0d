/* pbjson.c - JSON <-> protobuf for any message, driven by protobuf-c descriptors.
 *
 * Four parts, in file order:
 *   1. a per-call arena, handed to protobuf-c as its allocator and used for every
 *      temporary (JSON tree, messages built from JSON), freed in one sweep;
 *   2. the wire validator: walks tags and lengths with the descriptor and names the
 *      byte offset of the first problem, because protobuf_c_message_unpack only says
 *      NULL. It is deliberately at least as strict as protobuf-c (tag varints of at
 *      most 5 bytes, length prefixes of at most 5, packed bools of 0/1 bytes, no
 *      groups), so that after it passes, unpack fails only for lack of memory;
 *   3. the emitter: unpacked message -> JSON text written straight into a w2a_buf;
 *   4. the reader: a strict RFC 8259 parser into an arena tree (json-c took 210 µs
 *      for a 20 KB request and clamps out-of-range integers silently, so it is not
 *      used here), then tree -> protobuf-c structs in the same arena -> pack.
 *
 * Strings in messages built from JSON point into the arena tree (NUL-terminated
 * copies), so nothing is copied twice and nothing outlives the call. */
#include "proto/pbjson.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
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

static void *arena_alloc(arena *a, size_t n) {
  if (n > a->cap) return NULL;
  n = n ? (n + 15) & ~(size_t)15 : 16;
  chunk *c = a->head;
  if (c && c->size - c->used >= n) {
    void *p = (char *)c + CHUNK_HDR + c->used;
    c->used += n;
    return p;
  }
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

static size_t elem_size(ProtobufCType t) {
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
    /* ASCII fast path, eight bytes at a time. */
    while (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull) break;
      if (nul_bad && ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull)) break;
      i += 8;
    }
    if (i >= n) break;
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

int w2a_pbjson_validate_ex(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
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

int w2a_pbjson_validate(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                        w2a_err *err) {
  return w2a_pbjson_validate_ex(d, buf, len, NULL, err);
}

ProtobufCMessage *w2a_pbjson_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                    size_t len, w2a_err *err) {
  if (w2a_pbjson_validate(d, buf, len, err)) return NULL;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
  if (!m) w2a_errf(err, W2A_ENOMEM, "protobuf-c could not unpack %s (out of memory?)", d->name);
  return m;
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

/* A JSON string literal. Runs that need no escape are copied whole; the output is
 * reserved once for the common case of no escapes at all. */
static void put_str(emitter *e, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  if (e->rc) return;
  w2a_buf *b = e->b;
  int rc = w2a_buf_reserve(b, n + 2);
  if (rc) return buf_fail(e, rc);
  b->data[b->len++] = '"';
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (i < n && !json_esc[(uint8_t)s[i]])
      i++;
    if (i > run) {
      if ((rc = w2a_buf_reserve(b, i - run + 1))) return buf_fail(e, rc);
      memcpy(b->data + b->len, s + run, i - run);
      b->len += i - run;
    }
    if (i == n) break;
    unsigned char c = (unsigned char)s[i++];
    char esc[6] = {'\\', 0};
    size_t el = 2;
    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    default:
      memcpy(esc + 1, "u00", 3);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      el = 6;
    }
    if ((rc = w2a_buf_reserve(b, el + 1))) return buf_fail(e, rc);
    memcpy(b->data + b->len, esc, el);
    b->len += el;
  }
  if ((rc = w2a_buf_reserve(b, 1))) return buf_fail(e, rc);
  b->data[b->len++] = '"';
  b->data[b->len] = 0;
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

static void key(emitter *e, const char *k) {
  size_t n = strlen(k);
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

static int emit_timestamp(emitter *e, const Google__Protobuf__Timestamp *t) {
  if (t->seconds < TS_MIN || t->seconds > TS_MAX || t->nanos < 0 || t->nanos > 999999999 ||
      t->base.n_unknown_fields)
    return 0; /* caller prints the object form, which keeps everything */
  int64_t days = t->seconds >= 0 ? t->seconds / 86400 : -((-t->seconds + 86399) / 86400);
  int64_t sod = t->seconds - days * 86400, y;
  unsigned mo, d;
  civil_from_days(days, &y, &mo, &d);
  char tmp[48];
  int n = snprintf(tmp, sizeof tmp, "\"%04d-%02u-%02uT%02d:%02d:%02d", (int)y, mo, d,
                   (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
  if (t->nanos) {
    if (t->nanos % 1000000 == 0)
      n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%03d", t->nanos / 1000000);
    else if (t->nanos % 1000 == 0)
      n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%06d", t->nanos / 1000);
    else
      n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%09d", t->nanos);
  }
  n += snprintf(tmp + n, sizeof tmp - (size_t)n, "Z\"");
  put(e, tmp, (size_t)n);
  return 1;
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

int w2a_pbjson_to_json(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                       const w2a_pbjson_opts *oin, w2a_buf *out, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  int rc = w2a_pbjson_validate_ex(d, buf, len, &o, err);
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
    while (e - r >= 8) {
      uint64_t w;
      memcpy(&w, r, 8);
      uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
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
  memcpy(tmp, v->u.s, v->n);
  tmp[v->n] = 0;
  char *endp;
  double d = strtod(tmp, &endp);
  if (*endp || endp == tmp || isspace((unsigned char)tmp[0]))
    return jfail(c, W2A_EINVAL, "\"%.40s\" is not a valid %s", tmp, tn);
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

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM). */
static int build_timestamp(jctx *c, const jv *v, ProtobufCMessage **out) {
  const char *s = v->u.s;
  size_t n = v->n;
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
  Google__Protobuf__Timestamp *t = new_msg(c, &google__protobuf__timestamp__descriptor);
  if (!t) return W2A_ETOOBIG;
  t->seconds = secs;
  t->nanos = nanos;
  *out = &t->base;
  return 0;
bad:
  return jfail(c, W2A_EINVAL,
               "\"%.40s\" is not an RFC 3339 timestamp (e.g. 2026-01-14T08:15:00.123Z)", s);
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

int w2a_pbjson_from_json(const ProtobufCMessageDescriptor *d, const char *json, size_t len,
                         const w2a_pbjson_opts *oin, w2a_buf *out_bytes, w2a_err *err) {
  w2a_pbjson_opts o;
  opts_resolve(oin, &o);
  if (len > o.max_input)
    return w2a_errf(err, W2A_ETOOBIG, "JSON input of %zu bytes exceeds the cap of %zu", len,
                    o.max_input);
  if (!json) json = "";
  arena a;
  /* The tree costs ~2x the text; messages a few times more. */
  arena_init(&a, len > SIZE_MAX / 32 ? SIZE_MAX / 2 : len * 32 + (1u << 20), len * 4);
  jparser P = {.p = json,
               .start = json,
               .end = json + len,
               .a = &a,
               .err = err,
               .max_depth = 2 * o.max_depth + o.struct_max_depth + 8};
  jv root;
  int rc;
  jws(&P);
  if (jvalue(&P, &root)) {
    rc = P.rc;
    goto out;
  }
  jws(&P);
  if (P.p != P.end) {
    rc = jsyntax(&P, P.p, "unexpected data after the JSON value");
    goto out;
  }
  jctx c = {.a = &a, .err = err, .o = &o, .path = "$", .plen = 1};
  ProtobufCMessage *m = NULL;
  if ((rc = build_msg(&c, d, &root, &m))) goto out;
  size_t n = protobuf_c_message_get_packed_size(m);
  if ((rc = w2a_buf_reserve(out_bytes, n))) {
    w2a_errf(err, rc, "protobuf output of %zu bytes: %s", n, w2a_strerror(rc));
    goto out;
  }
  size_t w = protobuf_c_message_pack(m, (uint8_t *)out_bytes->data + out_bytes->len);
  if (w != n) {
    rc = w2a_errf(err, W2A_EINVAL, "protobuf-c packed %zu bytes, expected %zu", w, n);
    goto out;
  }
  out_bytes->len += n;
  out_bytes->data[out_bytes->len] = 0;
out:
  free(P.stk);
  arena_free(&a);
  return rc;
}
