/* test_pbjson_diff.c - the fast transcoder paths against the protobuf-c reference ones.
 *
 * w2a_pbjson_to_json / _from_json / _validate_ex read and write the wire themselves; the
 * *_ref functions validate, unpack and pack with protobuf-c. They must agree exactly:
 * same return code, same output bytes, same error text. Inputs:
 *   - every JSON case and type sample of the protoc agreement test, and the hex cases;
 *   - the seed corpora of fuzz_pb_decode (as Request and ResponseEvent) and
 *     fuzz_json_to_pb;
 *   - w2a_pbjson_unpack (a single fused walk) against validate + protobuf_c_message_unpack:
 *     same verdict and error, and structs that pack to the same bytes and print the same
 *     JSON; also with an allocator that fails at the k-th call (no leak, no crash);
 *   - for every message in the registry, random wire messages built from its descriptor
 *     (known and unknown fields, repeated occurrences, packed and unpacked runs, oneof
 *     members overriding each other, extreme varints and floats, map entries with
 *     missing or repeated keys, the occasional wrong wire type or bad UTF-8), and
 *     byte-level mutations of them;
 * each printed with four option sets, and every JSON so produced encoded both ways. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pbjson.h"
#include "proto/registry.h"
#include "request.pb-c.h"
#include "response.pb-c.h"
#include "t.h"

static const w2a_pbjson_opts opt_sets[4] = {
    {0},
    {.pretty = 1, .emit_defaults = 1},
    {.skip_unknown = 1},
    {.emit_defaults = 1, .ignore_unknown_keys = 1, .max_depth = 6, .struct_max_depth = 3},
};

static size_t n_json_cases, n_bin_cases, n_fast_ok;

static int same_result(int rc1, const w2a_buf *b1, const w2a_err *e1, int rc2, const w2a_buf *b2,
                       const w2a_err *e2) {
  if (rc1 != rc2) return 0;
  if (rc1) return !strcmp(e1->msg, e2->msg);
  return b1->len == b2->len && !memcmp(b1->data, b2->data, b1->len);
}

static void diff_from_json(const ProtobufCMessageDescriptor *d, const char *js, size_t n,
                           const w2a_pbjson_opts *o, const char *what) {
  w2a_buf a, b;
  w2a_err ea = {0}, eb = {0};
  w2a_buf_init(&a, 0);
  w2a_buf_init(&b, 0);
  int ra = w2a_pbjson_from_json(d, js, n, o, &a, &ea);
  int rb = w2a_pbjson_from_json_ref(d, js, n, o, &b, &eb);
  n_json_cases++;
  if (!same_result(ra, &a, &ea, rb, &b, &eb)) {
    T_CHECK(!"from_json differs from the reference");
    fprintf(stderr,
            "  %s (%s): fast rc %d len %zu \"%s\"; ref rc %d len %zu \"%s\"\n  JSON: %.*s\n", what,
            d->name, ra, a.len, ra ? ea.msg : "", rb, b.len, rb ? eb.msg : "",
            (int)(n > 600 ? 600 : n), js);
  }
  w2a_buf_free(&a);
  w2a_buf_free(&b);
}

static size_t n_unpack_ok;

/* An allocator that fails from its `left`-th call on, to reach every cleanup path. */
static void *fail_alloc(void *ud, size_t n) {
  long *left = ud;
  return (*left)-- > 0 ? malloc(n) : NULL;
}
static void fail_free(void *ud, void *p) { (void)ud, free(p); }

static int same_struct(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t na = protobuf_c_message_get_packed_size(a), nb = protobuf_c_message_get_packed_size(b);
  if (na != nb) return 0;
  uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
  protobuf_c_message_pack(a, pa);
  protobuf_c_message_pack(b, pb);
  int same = !memcmp(pa, pb, na);
  free(pa);
  free(pb);
  w2a_buf ja, jb;
  w2a_pbjson_opts o = {.emit_defaults = 1};
  w2a_buf_init(&ja, 0);
  w2a_buf_init(&jb, 0);
  int ra = w2a_pbjson_msg_to_json(a, &o, &ja, NULL), rb = w2a_pbjson_msg_to_json(b, &o, &jb, NULL);
  same = same && ra == rb && ja.len == jb.len && (!ja.len || !memcmp(ja.data, jb.data, ja.len));
  w2a_buf_free(&ja);
  w2a_buf_free(&jb);
  return same;
}

static void diff_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                        const char *what) {
  w2a_err e1 = {0}, e2 = {0};
  ProtobufCMessage *a = w2a_pbjson_unpack(d, p, n, &e1), *b = NULL;
  /* What w2a_pbjson_unpack did before the fused walk. */
  if (!w2a_pbjson_validate(d, p, n, &e2) && !(b = protobuf_c_message_unpack(d, NULL, n, p)))
    w2a_errf(&e2, W2A_ENOMEM, "protobuf-c could not unpack %s (out of memory?)", d->name);
  if (!a != !b || (!a && strcmp(e1.msg, e2.msg)) || (a && !same_struct(a, b))) {
    T_CHECK(!"w2a_pbjson_unpack differs from validate + protobuf-c");
    fprintf(stderr, "  %s (%s): fast %s \"%s\", protobuf-c %s \"%s\"\n    bytes:", what, d->name,
            a ? "ok" : "NULL", e1.msg, b ? "ok" : "NULL", e2.msg);
    for (size_t i = 0; i < n && i < 200; i++)
      fprintf(stderr, " %02x", p[i]);
    fprintf(stderr, "\n");
  } else if (a) {
    n_unpack_ok++;
  }
  if (a) protobuf_c_message_free_unpacked(a, NULL);
  if (b) protobuf_c_message_free_unpacked(b, NULL);
  /* Failing allocations at every step of a small input: leaks show under ASan. */
  for (long k = 0; n < 400 && k < 40; k++) {
    long left = k;
    ProtobufCAllocator fa = {fail_alloc, fail_free, &left};
    ProtobufCMessage *m = w2a_pbjson_unpack_with(d, p, n, &fa, NULL);
    if (m) {
      protobuf_c_message_free_unpacked(m, &fa);
      break;
    }
  }
}

/* Both ways on bytes, with every option set; then the JSON each printed, encoded. */
static void diff_bytes(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n,
                       const char *what) {
  w2a_err ev1 = {0}, ev2 = {0};
  diff_unpack(d, p, n, what);
  for (int k = 0; k < 4; k++) {
    const w2a_pbjson_opts *o = &opt_sets[k];
    int v1 = w2a_pbjson_validate_ex(d, p, n, o, &ev1),
        v2 = w2a_pbjson_validate_ref(d, p, n, o, &ev2);
    if (v1 != v2 || (v1 && strcmp(ev1.msg, ev2.msg))) {
      T_CHECK(!"validate differs from the reference");
      fprintf(stderr, "  %s (%s) opts %d: fast %d \"%s\", ref %d \"%s\"\n", what, d->name, k, v1,
              ev1.msg, v2, ev2.msg);
    }
    w2a_buf a, b;
    w2a_err ea = {0}, eb = {0};
    w2a_buf_init(&a, 0);
    w2a_buf_init(&b, 0);
    int ra = w2a_pbjson_to_json(d, p, n, o, &a, &ea);
    int rb = w2a_pbjson_to_json_ref(d, p, n, o, &b, &eb);
    n_bin_cases++;
    if (!same_result(ra, &a, &ea, rb, &b, &eb)) {
      T_CHECK(!"to_json differs from the reference");
      fprintf(stderr,
              "  %s (%s) opts %d: fast rc %d \"%s\"\n    %.*s\n  ref rc %d \"%s\"\n    %.*s\n",
              what, d->name, k, ra, ra ? ea.msg : "", (int)(a.len > 800 ? 800 : a.len),
              a.data ? a.data : "", rb, rb ? eb.msg : "", (int)(b.len > 800 ? 800 : b.len),
              b.data ? b.data : "");
      fprintf(stderr, "    bytes:");
      for (size_t i = 0; i < n && i < 200; i++)
        fprintf(stderr, " %02x", p[i]);
      fprintf(stderr, "\n");
    } else if (!ra) {
      n_fast_ok++;
      diff_from_json(d, a.data, a.len, o, what);
    }
    w2a_buf_free(&a);
    w2a_buf_free(&b);
  }
}

/* ---- files --------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += r;
    if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
  }
  fclose(f);
  if (buf) buf[n] = 0;
  *len = n;
  return buf;
}

static const char *src_dir(void) {
  const char *s = getenv("W2A_SRC");
  return s ? s : ".";
}

/* "NAME@TYPE.json" -> TYPE's descriptor. */
static const ProtobufCMessageDescriptor *type_of(const char *file) {
  const char *at = strchr(file, '@'), *start = at ? at + 1 : file;
  char name[256];
  snprintf(name, sizeof name, "%s", start);
  char *dot = strstr(name, ".expect.json");
  if (!dot) dot = strstr(name, ".json");
  if (!dot) dot = strstr(name, ".hex");
  if (!dot) dot = strstr(name, ".bin");
  if (dot) *dot = 0;
  return w2a_pb_find(name);
}

static size_t unhex(const char *s, uint8_t *out) {
  size_t n = 0;
  int hi = -1;
  for (; *s; s++) {
    if (*s == '#') {
      while (*s && *s != '\n')
        s++;
      if (!*s) break;
      continue;
    }
    int v = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      out[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  return n;
}

static void each_file(const char *dir, void (*fn)(const char *dir, const char *name)) {
  DIR *dp = opendir(dir);
  T_CHECK(dp != NULL);
  if (!dp) {
    fprintf(stderr, "  cannot open %s\n", dir);
    return;
  }
  for (struct dirent *de; (de = readdir(dp));)
    if (de->d_name[0] != '.') fn(dir, de->d_name);
  closedir(dp);
}

static void one_fixture(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  const ProtobufCMessageDescriptor *d = type_of(name);
  if (!d) return;
  size_t n;
  char *s = slurp(path, &n);
  if (!s) return;
  if (strstr(name, ".json")) {
    for (int k = 0; k < 4; k++)
      diff_from_json(d, s, n, &opt_sets[k], name);
    w2a_buf b;
    w2a_err e;
    w2a_buf_init(&b, 0);
    if (!w2a_pbjson_from_json_ref(d, s, n, NULL, &b, &e))
      diff_bytes(d, (const uint8_t *)b.data, b.len, name);
    w2a_buf_free(&b);
  } else if (strstr(name, ".hex")) {
    uint8_t *bytes = malloc(n / 2 + 1);
    size_t bn = unhex(s, bytes);
    diff_bytes(d, bytes, bn, name);
    free(bytes);
  }
  free(s);
}

static void test_fixtures(void) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/protoc/cases", src_dir());
  each_file(dir, one_fixture);
  snprintf(dir, sizeof dir, "%s/tests/fixtures/protoc/types", src_dir());
  each_file(dir, one_fixture);
}

static void one_pb_seed(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t n;
  char *s = slurp(path, &n);
  if (!s) return;
  diff_bytes(&warp__multi_agent__v1__request__descriptor, (const uint8_t *)s, n, name);
  diff_bytes(&warp__multi_agent__v1__response_event__descriptor, (const uint8_t *)s, n, name);
  free(s);
}

static void one_json_seed(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t n;
  char *s = slurp(path, &n);
  if (!s) return;
  for (int k = 0; k < 4; k++)
    diff_from_json(&warp__multi_agent__v1__request__descriptor, s, n, &opt_sets[k], name);
  free(s);
}

static void test_corpora(void) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/fuzz/corpus/fuzz_pb_decode", src_dir());
  each_file(dir, one_pb_seed);
  snprintf(dir, sizeof dir, "%s/fuzz/corpus/fuzz_json_to_pb", src_dir());
  each_file(dir, one_json_seed);
}

/* ---- random wire messages ------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return n ? (uint32_t)(rng % n) : 0;
}

typedef struct gbuf {
  uint8_t *p;
  size_t n, cap;
} gbuf;

static void gput(gbuf *g, const void *p, size_t n) {
  if (g->n + n > g->cap) {
    while (g->n + n > g->cap)
      g->cap = g->cap ? g->cap * 2 : 256;
    g->p = realloc(g->p, g->cap);
  }
  memcpy(g->p + g->n, p, n);
  g->n += n;
}

static void gvarint(gbuf *g, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  while (v >= 0x80) {
    b[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b[n++] = (uint8_t)v;
  gput(g, b, n);
}

static void gtag(gbuf *g, uint32_t num, unsigned wt) { gvarint(g, (uint64_t)num << 3 | wt); }

static void gvarint_val(gbuf *g) {
  static const uint64_t vals[] = {0,           1,
                                  2,           127,
                                  128,         300,
                                  0x7fffffff,  0x80000000,
                                  0xffffffff,  0x100000000,
                                  0x100000005, UINT64_MAX,
                                  1ull << 63,  0x7fffffffffffffffull,
                                  42};
  switch (rnd(10)) {
  case 0: gput(g, "\x80\x00", 2); break;                                  /* 0, long */
  case 1: gput(g, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02", 10); break; /* bits past 64 */
  case 2: gput(g, "\xff\xff\xff\xff\x0f", 5); break;
  default: gvarint(g, vals[rnd(sizeof vals / sizeof vals[0])]);
  }
}

static void gfixed(gbuf *g, unsigned n) {
  static const double dv[] = {
      0.0,   -0.0,  1.0,          -2.5, 48.8566,           0.1,
      1e-5,  1e300, 3.4028235e38, 1e15, 123456789012345.0, 0.30000000000000004,
      5e-324};
  uint8_t b[8];
  if (rnd(3)) {
    if (n == 8) {
      double d = rnd(8) ? dv[rnd(sizeof dv / sizeof dv[0])] : (double)rnd(100000) / 1000.0;
      if (!rnd(20)) d = rnd(2) ? 0.0 / 0.0 : 1.0 / 0.0;
      memcpy(b, &d, 8);
    } else {
      float f = rnd(4) ? (float)dv[rnd(sizeof dv / sizeof dv[0])] : (float)rnd(100000) / 100.0f;
      memcpy(b, &f, 4);
    }
  } else {
    for (unsigned i = 0; i < n; i++)
      b[i] = (uint8_t)rnd(256);
  }
  gput(g, b, n);
}

static void gstring(gbuf *g, int allow_bad) {
  static const char *const strs[] = {"",
                                     "a",
                                     "hello world",
                                     "caf\xc3\xa9 \xe2\x9c\x93",
                                     "q\"\\",
                                     "tab\tnl\n",
                                     "\x01\x1f",
                                     "user_query",
                                     "aB,c_d",
                                     "key",
                                     "true",
                                     "-12",
                                     "\xf0\x9f\x98\x80"};
  const char *s = strs[rnd(sizeof strs / sizeof strs[0])];
  size_t n = strlen(s);
  if (allow_bad && !rnd(40)) {
    static const char bad[] = "x\xc3";
    s = bad;
    n = 2;
  }
  gvarint(g, n);
  gput(g, s, n);
}

static void gmsg(gbuf *g, const ProtobufCMessageDescriptor *d, int depth);

static void gvalue(gbuf *g, const ProtobufCFieldDescriptor *f, unsigned wt, int depth) {
  switch (wt) {
  case 0:
    if (f && f->type == PROTOBUF_C_TYPE_ENUM && rnd(2)) {
      const ProtobufCEnumDescriptor *ed = f->descriptor;
      gvarint(g, (uint64_t)(int64_t)ed->values[rnd(ed->n_values)].value);
    } else {
      gvarint_val(g);
    }
    break;
  case 1: gfixed(g, 8); break;
  case 5: gfixed(g, 4); break;
  default:
    if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < 5) {
      gbuf sub = {0};
      gmsg(&sub, f->descriptor, depth + 1);
      gvarint(g, sub.n);
      if (sub.n) gput(g, sub.p, sub.n);
      free(sub.p);
    } else if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
      gvarint(g, 0);
    } else if (f && f->label == PROTOBUF_C_LABEL_REPEATED && f->type != PROTOBUF_C_TYPE_STRING &&
               f->type != PROTOBUF_C_TYPE_BYTES) {
      /* a packed run */
      gbuf sub = {0};
      unsigned k = rnd(3) ? rnd(4) : 0;
      unsigned nwt = f->type == PROTOBUF_C_TYPE_DOUBLE || f->type == PROTOBUF_C_TYPE_FIXED64 ||
                             f->type == PROTOBUF_C_TYPE_SFIXED64
                         ? 1
                     : f->type == PROTOBUF_C_TYPE_FLOAT || f->type == PROTOBUF_C_TYPE_FIXED32 ||
                             f->type == PROTOBUF_C_TYPE_SFIXED32
                         ? 5
                         : 0;
      for (unsigned i = 0; i < k; i++) {
        if (f->type == PROTOBUF_C_TYPE_BOOL)
          gput(&sub, rnd(2) ? "\x01" : "\x00", 1);
        else
          gvalue(&sub, f, nwt, depth);
      }
      gvarint(g, sub.n);
      if (sub.n) gput(g, sub.p, sub.n);
      free(sub.p);
    } else if (f && f->type == PROTOBUF_C_TYPE_STRING) {
      gstring(g, 1);
    } else {
      gstring(g, 0); /* bytes, or an unknown field's payload */
    }
  }
}

static unsigned wt_of(ProtobufCType t) {
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

static void gmsg(gbuf *g, const ProtobufCMessageDescriptor *d, int depth) {
  unsigned n = rnd(depth < 2 ? 9 : 5);
  uint64_t used_msg = 0;
  for (unsigned i = 0; i < n; i++) {
    unsigned r = rnd(100);
    if (r < 8 || !d->n_fields) { /* unknown field */
      uint32_t num = 1000 + rnd(50);
      if (protobuf_c_message_descriptor_get_field(d, num)) continue;
      static const unsigned wts[] = {0, 1, 2, 5};
      unsigned wt = wts[rnd(4)];
      gtag(g, num, wt);
      gvalue(g, NULL, wt, depth);
      continue;
    }
    unsigned fi = rnd(d->n_fields);
    const ProtobufCFieldDescriptor *f = &d->fields[fi];
    unsigned wt = wt_of(f->type);
    if (r < 10) wt = rnd(2) ? 2 : 0; /* sometimes the wrong wire type */
    if (f->label == PROTOBUF_C_LABEL_REPEATED && wt != 2 && rnd(3) == 0) wt = 2; /* packed */
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
        !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && fi < 64) {
      if ((used_msg >> fi & 1) && rnd(20)) continue; /* a repeat is refused: keep it rare */
      used_msg |= 1ull << fi;
    }
    unsigned reps = rnd(4) == 0 ? 2 + rnd(2) : 1;
    for (unsigned k = 0; k < reps; k++) {
      gtag(g, f->id, wt);
      gvalue(g, f, wt, depth);
    }
  }
}

/* Byte-level damage: flip, cut, splice a copy of a range elsewhere. */
static size_t mutate(uint8_t *p, size_t n, size_t cap) {
  if (!n) return n;
  switch (rnd(4)) {
  case 0: p[rnd((uint32_t)n)] ^= (uint8_t)(1u << rnd(8)); return n;
  case 1: return rnd((uint32_t)n);
  case 2: {
    size_t a = rnd((uint32_t)n), len = rnd((uint32_t)(n - a)) + 1;
    if (n + len > cap) return n;
    memmove(p + n, p + a, len);
    return n + len;
  }
  default: p[rnd((uint32_t)n)] = (uint8_t)rnd(256); return n;
  }
}

static void test_random(void) {
  int rounds = getenv("W2A_DIFF_ROUNDS") ? atoi(getenv("W2A_DIFF_ROUNDS")) : 60;
  for (size_t t = 0; t < w2a_pb_count(); t++) {
    const ProtobufCMessageDescriptor *d = w2a_pb_at(t);
    for (int r = 0; r < rounds; r++) {
      gbuf g = {0};
      gmsg(&g, d, 0);
      diff_bytes(d, g.p, g.n, "random");
      if (r % 3 == 0 && g.n) {
        size_t cap = g.n * 2 + 16;
        uint8_t *m = malloc(cap);
        memcpy(m, g.p, g.n);
        size_t mn = mutate(m, g.n, cap);
        diff_bytes(d, m, mn, "mutated");
        free(m);
      }
      free(g.p);
    }
  }
}

/* ---- hand-made cases ----------------------------------------------------------------- */

static void test_json_edges(void) {
  const ProtobufCMessageDescriptor *R = &warp__multi_agent__v1__request__descriptor;
  static const char *const cases[] = {
      "{}",
      "null",
      "{\"settings\":{\"rules_enabled\":true,\"rulesEnabled\":false}}",
      "{\"settings\":{\"supported_tools\":[1,2],\"supported_tools\":[]}}",
      "{\"settings\":{\"supported_tools\":[\"GREP\",null]}}",
      "{\"settings\":null,\"metadata\":{\"logging\":{\"a\":null,\"\":1,\"b\":{\"x\":[1,2.5,-0,"
      "1e-7,1.7976931348623157e308,\"s\",true,null,{}]}}}}",
      "{\"metadata\":{\"logging\":{\"k\\u0000\":1}}}",
      "{\"metadata\":{\"conversation_id\":\"a\\u0000b\"}}",
      "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{\"query\":\"\"}},{\"user_query\":"
      "null},{}]}}}",
      "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{},\"userQuery\":{\"query\":\"x\"}}"
      "]}}}",
      "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{},\"tool_call_result\":{}}]}}}",
      "{\"input\":{\"user_inputs\":{\"inputs\":[{\"user_query\":{\"referenced_attachments\":{\"\":{"
      "},"
      "\"a\":{\"plain_text\":\"\"},\"a\":{}}}}]}}}",
      "{\"_unknown\":[{\"field\":999,\"wire_type\":0,\"data\":\"gAA=\"}],\"_unknown\":[]}",
      "{\"_unknown\":[{\"field\":999,\"wire_type\":2,\"data\":\"\"},{\"field\":1000,\"wire_type\":"
      "5,"
      "\"data\":\"AAAAAA==\"},{\"field\":1001,\"wire_type\":1,\"data\":\"AAAAAAAAAAA=\"}],"
      "\"settings\":{}}",
      "{\"_unknown\":[{\"field\":1,\"wire_type\":0,\"data\":\"AA==\"}]}",
      "{\"_unknown\\u0000x\":[]}",
      "{\"settings\\u0000junk\":{}}",
      "{\"nope\":1}",
      "{\"settings\":{\"model_config\":{\"base\":5}}}",
      "{\"task_context\":{\"tasks\":[{\"messages\":[{\"id\":\"x\",\"tool_call\":{\"call_mcp_tool\":"
      "{"
      "\"args\":{\"n\":1e400}}}}]}]}}",
      "{\"task_context\":{\"tasks\":[{\"messages\":[{\"timestamp\":\"2026-01-14T08:15:00.5+01:00\"}"
      ","
      "{\"timestamp\":{\"seconds\":\"-5\",\"nanos\":-1}},{\"timestamp\":\"1970-01-01T00:00:00Z\"},"
      "{\"timestamp\":\"bad\"}]}]}}",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int k = 0; k < 4; k++)
      diff_from_json(R, cases[i], strlen(cases[i]), &opt_sets[k], cases[i]);
  /* Well-known types at the root. */
  static const struct {
    const char *type, *js;
  } wkt[] = {
      {"google.protobuf.Value", "null"},
      {"google.protobuf.Value", "[1,[2,[3,[4,[5]]]]]"},
      {"google.protobuf.Value", "{\"a\":{\"b\":{\"c\":{\"d\":1}}}}"},
      {"google.protobuf.Value", "\"\""},
      {"google.protobuf.Value", "-0"},
      {"google.protobuf.Value", "0.1"},
      {"google.protobuf.Value", "123456789012345678"},
      {"google.protobuf.Value", "\"NaN\""},
      {"google.protobuf.Struct", "{\"\":null}"},
      {"google.protobuf.Struct", "[]"},
      {"google.protobuf.ListValue", "[]"},
      {"google.protobuf.ListValue", "[null,\"\",0,false]"},
      {"google.protobuf.FieldMask", "\"\""},
      {"google.protobuf.FieldMask", "\"a,,bC\""},
      {"google.protobuf.FieldMask", "{\"paths\":[\"\"]}"},
      {"google.protobuf.FieldMask", "{\"paths\":[\"A\",\"b,c\"]}"},
      {"google.protobuf.Timestamp", "\"0001-01-01T00:00:00Z\""},
      {"google.protobuf.Timestamp", "{\"seconds\":\"253402300800\"}"},
      {"google.protobuf.Empty", "{}"},
  };
  for (size_t i = 0; i < sizeof wkt / sizeof wkt[0]; i++) {
    const ProtobufCMessageDescriptor *d = w2a_pb_find(wkt[i].type);
    T_CHECK(d != NULL);
    if (!d) continue;
    for (int k = 0; k < 4; k++)
      diff_from_json(d, wkt[i].js, strlen(wkt[i].js), &opt_sets[k], wkt[i].js);
    w2a_buf b;
    w2a_err e;
    w2a_buf_init(&b, 0);
    if (!w2a_pbjson_from_json_ref(d, wkt[i].js, strlen(wkt[i].js), NULL, &b, &e))
      diff_bytes(d, (const uint8_t *)b.data, b.len, wkt[i].js);
    w2a_buf_free(&b);
  }
}

static void test_wire_edges(void) {
  const ProtobufCMessageDescriptor *V = w2a_pb_find("google.protobuf.Value");
  const ProtobufCMessageDescriptor *T = w2a_pb_find("google.protobuf.Timestamp");
  const ProtobufCMessageDescriptor *M = w2a_pb_find("warp.multi_agent.v1.Message");
  static const struct {
    int which;
    const char *hex;
  } cases[] = {
      {0, "2a00 3200"},                        /* struct_value then list_value: the last one wins */
      {0, "2a00 2a02 0a00"},                   /* the same oneof message twice */
      {0, "0800 1000 11000000000000f0bf"},     /* null, then a bad tag */
      {0, "1a00"},                             /* empty string value */
      {0, "2000 2080 8080 8080 8080 8080 02"}, /* bool with only bit 64 set */
      {0, "110000000000000080"},               /* -0.0 */
      {1, "08ffffffffffffffffff01 10ffffffff0f"}, /* seconds -1, nanos -1 */
      {1, "0880808080808080808001"},              /* seconds 2^63 */
      {1, "0801 f83e01"},                         /* an unknown field */
      {2, ""},
      {3, "4a00"},                    /* an empty packed run: no elements, nothing printed */
      {3, "4a00 4800 4a020105 4803"}, /* packed and unpacked runs, interleaved */
      {3, "4a03 ffffff"},             /* a truncated varint inside a packed run */
  };
  const ProtobufCMessageDescriptor *S = w2a_pb_find("warp.multi_agent.v1.Request.Settings");
  const ProtobufCMessageDescriptor *ds[4] = {V, T, M, S};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t b[128];
    size_t n = unhex(cases[i].hex, b);
    diff_bytes(ds[cases[i].which], b, n, cases[i].hex);
  }
}

int main(void) {
  T_RUN(test_fixtures);
  T_RUN(test_corpora);
  T_RUN(test_json_edges);
  T_RUN(test_wire_edges);
  T_RUN(test_random);
  fprintf(stderr, "compared %zu JSON inputs and %zu byte inputs (%zu printed, %zu unpacked)\n",
          n_json_cases, n_bin_cases, n_fast_ok, n_unpack_ok);
  return t_done();
}
