/* test_structjson.c - JSON -> Struct/Value: every kind, the depth cap and the path it
 * names, and a caller allocator that owns every byte. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proto/pbjson.h"
#include "proto/structjson.h"
#include "t.h"

/* Struct -> JSON text through the generic transcoder, for comparing with the input. */
static int same_as(const ProtobufCMessage *m, const char *json) {
  w2a_buf b;
  w2a_err err = {0};
  w2a_buf_init(&b, 0);
  int rc = w2a_pbjson_msg_to_json(m, NULL, &b, &err);
  json_object *got = rc ? NULL : json_tokener_parse(b.data), *want = json_tokener_parse(json);
  int ok = got && want && json_object_equal(got, want);
  json_object_put(got);
  json_object_put(want);
  w2a_buf_free(&b);
  return ok;
}

static void test_kinds(void) {
  const char *in = "{\"n\":null,\"b\":true,\"i\":3,\"d\":-0.5,\"s\":\"x\\u00e9\",\"e\":{},"
                   "\"o\":{\"a\":[1,[],{\"z\":false}]},\"l\":[]}";
  json_object *j = json_tokener_parse(in);
  Google__Protobuf__Struct *s = NULL;
  w2a_err err = {0};
  T_EQ_INT(w2a_struct_from_json(j, NULL, 0, &s, &err), 0);
  T_CHECK(s && s->n_fields == 8);
  if (s) T_CHECK(same_as(&s->base, in));
  if (s) google__protobuf__struct__free_unpacked(s, NULL);

  Google__Protobuf__Value *v = NULL;
  json_object *one =
      json_object_array_get_idx(json_object_object_get(json_object_object_get(j, "o"), "a"), 0);
  T_EQ_INT(w2a_value_from_json(one, NULL, 0, &v, &err), 0);
  T_CHECK(v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE && v->number_value == 1);
  if (v) google__protobuf__value__free_unpacked(v, NULL);
  T_EQ_INT(w2a_value_from_json(NULL, NULL, 0, &v, &err), 0);
  T_CHECK(v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
  if (v) google__protobuf__value__free_unpacked(v, NULL);

  /* a Struct needs an object */
  T_EQ_INT(w2a_struct_from_json(json_object_object_get(j, "l"), NULL, 0, &s, &err), W2A_EINVAL);
  T_CHECK(s == NULL);
  json_object_put(j);
}

static void test_depth(void) {
  /* {"a":{"b":[[1]]}}: root 1, a 2, its struct 3, b 4, [1] 5, 1 6 */
  json_object *j = json_tokener_parse("{\"x\":0,\"a\":{\"b\":[[1]]}}");
  Google__Protobuf__Struct *s = NULL;
  w2a_err err = {0};
  T_EQ_INT(w2a_struct_from_json(j, NULL, 6, &s, &err), 0);
  if (s) google__protobuf__struct__free_unpacked(s, NULL);
  T_EQ_INT(w2a_struct_from_json(j, NULL, 5, &s, &err), W2A_ETOOBIG);
  T_CHECK(s == NULL);
  T_EQ_STR(err.msg, "$.a.b[0][0]: nested deeper than 5 levels");
  T_EQ_INT(w2a_struct_from_json(j, NULL, 2, &s, &err), W2A_ETOOBIG);
  T_EQ_STR(err.msg, "$.a: nested deeper than 2 levels");
  json_object_put(j);

  /* the default cap: 32 nested objects fit (64 levels), 33 do not */
  for (int n = 32; n <= 33; n++) {
    json_object *top = json_object_new_object();
    for (int i = 1; i < n; i++) {
      json_object *o = json_object_new_object();
      json_object_object_add(o, "k", top);
      top = o;
    }
    T_EQ_INT(w2a_struct_from_json(top, NULL, 0, &s, &err), n == 32 ? 0 : W2A_ETOOBIG);
    if (s) google__protobuf__struct__free_unpacked(s, NULL);
    json_object_put(top);
  }
}

/* A counting allocator whose free does nothing, as a request arena's would. */
typedef struct arena {
  void *p[256];
  size_t n;
  size_t fail_at; /* 0: never */
} arena;

static void *a_alloc(void *d, size_t n) {
  arena *a = d;
  if (a->n == sizeof a->p / sizeof a->p[0] || (a->fail_at && a->n + 1 == a->fail_at)) return NULL;
  return a->p[a->n++] = malloc(n);
}
static void a_free(void *d, void *p) { (void)d, (void)p; }
static void a_drop(arena *a) {
  while (a->n)
    free(a->p[--a->n]);
}

static void test_allocator(void) {
  const char *in = "{\"k\":[\"v\",{\"w\":null}],\"m\":1}";
  json_object *j = json_tokener_parse(in);
  arena a = {0};
  ProtobufCAllocator pa = {.alloc = a_alloc, .free = a_free, .allocator_data = &a};
  Google__Protobuf__Struct *s = NULL;
  w2a_err err = {0};
  T_EQ_INT(w2a_struct_from_json(j, &pa, 0, &s, &err), 0);
  T_CHECK(s && same_as(&s->base, in));
  size_t total = a.n;
  a_drop(&a);
  /* each allocation failing in turn: ENOMEM, nothing leaks (malloc'd bytes are in a.p) */
  for (size_t f = 1; f <= total; f++) {
    a.fail_at = f;
    T_EQ_INT(w2a_struct_from_json(j, &pa, 0, &s, &err), W2A_ENOMEM);
    T_CHECK(s == NULL);
    a_drop(&a);
  }
  json_object_put(j);
}

int main(void) {
  T_RUN(test_kinds);
  T_RUN(test_depth);
  T_RUN(test_allocator);
  return t_done();
}
