/* structjson.c - see structjson.h.
 *
 * Every node is attached to its parent before it is filled, so on failure the tree is
 * always whole enough for one protobuf_c_message_free_unpacked from the root. The JSON
 * path is kept as the walk descends (keys copied, truncated at the buffer's end) so the
 * depth error can name where it happened without a second walk. */
#include "proto/structjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Google__Protobuf__Struct PbStruct;
typedef Google__Protobuf__Value PbValue;
typedef Google__Protobuf__ListValue PbList;
typedef Google__Protobuf__Struct__FieldsEntry PbEntry;

typedef struct walk {
  ProtobufCAllocator *a; /* NULL: malloc */
  int max_depth;
  w2a_err *err;
  size_t plen;
  char path[192];
} walk;

static void *walk_alloc(walk *w, size_t n) {
  return w->a ? w->a->alloc(w->a->allocator_data, n) : malloc(n);
}

/* Append a path segment; returns the length to restore afterwards. */
static size_t path_push(walk *w, const char *seg, size_t n) {
  size_t old = w->plen, room = sizeof w->path - 1 - w->plen;
  if (n > room) n = room;
  memcpy(w->path + w->plen, seg, n);
  w->plen += n;
  w->path[w->plen] = 0;
  return old;
}

static void path_pop(walk *w, size_t old) {
  w->plen = old;
  w->path[old] = 0;
}

static int too_deep(walk *w, int depth) {
  if (depth <= w->max_depth) return 0;
  return w2a_errf(w->err, W2A_ETOOBIG, "%s: nested deeper than %d levels", w->path, w->max_depth);
}

static int fill_value(walk *w, PbValue *v, json_object *j, int depth);

static int fill_struct(walk *w, PbStruct *s, json_object *o, int depth) {
  size_t n = (size_t)json_object_object_length(o);
  int rc = too_deep(w, depth);
  if (rc) return rc;
  if (n && !(s->fields = walk_alloc(w, n * sizeof *s->fields))) return W2A_ENOMEM;
  json_object_object_foreach(o, key, val) {
    PbEntry *e = walk_alloc(w, sizeof *e);
    PbValue *v;
    size_t klen = strlen(key), old;
    if (!e) return W2A_ENOMEM;
    google__protobuf__struct__fields_entry__init(e);
    s->fields[s->n_fields++] = e;
    if (!(e->key = walk_alloc(w, klen + 1)) || !(v = walk_alloc(w, sizeof *v))) return W2A_ENOMEM;
    memcpy(e->key, key, klen + 1);
    google__protobuf__value__init(v);
    e->value = v;
    old = path_push(w, ".", 1);
    path_push(w, key, klen);
    rc = fill_value(w, v, val, depth + 1);
    if (rc) return rc;
    path_pop(w, old);
  }
  return 0;
}

static int fill_list(walk *w, PbList *l, json_object *a, int depth) {
  size_t n = json_object_array_length(a);
  if (n && !(l->values = walk_alloc(w, n * sizeof *l->values))) return W2A_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    PbValue *v = walk_alloc(w, sizeof *v);
    char seg[32];
    if (!v) return W2A_ENOMEM;
    google__protobuf__value__init(v);
    l->values[l->n_values++] = v;
    size_t old = path_push(w, seg, (size_t)snprintf(seg, sizeof seg, "[%zu]", i));
    int rc = fill_value(w, v, json_object_array_get_idx(a, i), depth + 1);
    if (rc) return rc;
    path_pop(w, old);
  }
  return 0;
}

static int fill_value(walk *w, PbValue *v, json_object *j, int depth) {
  int rc = too_deep(w, depth);
  if (rc) return rc;
  switch (json_object_get_type(j)) {
  case json_type_null:
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
    v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
    return 0;
  case json_type_boolean:
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
    v->bool_value = json_object_get_boolean(j);
    return 0;
  case json_type_int:
  case json_type_double:
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    v->number_value = json_object_get_double(j);
    return 0;
  case json_type_string: {
    size_t n = (size_t)json_object_get_string_len(j);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    if (!(v->string_value = walk_alloc(w, n + 1))) return W2A_ENOMEM;
    memcpy(v->string_value, json_object_get_string(j), n);
    v->string_value[n] = 0;
    return 0;
  }
  case json_type_object: {
    PbStruct *s = walk_alloc(w, sizeof *s);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
    if (!s) return W2A_ENOMEM;
    google__protobuf__struct__init(s);
    v->struct_value = s;
    return fill_struct(w, s, j, depth + 1);
  }
  case json_type_array: {
    PbList *l = walk_alloc(w, sizeof *l);
    v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
    if (!l) return W2A_ENOMEM;
    google__protobuf__list_value__init(l);
    v->list_value = l;
    return fill_list(w, l, j, depth);
  }
  }
  return 0;
}

static void walk_init(walk *w, ProtobufCAllocator *alloc, int max_depth, w2a_err *err) {
  w->a = alloc;
  w->max_depth = max_depth > 0 ? max_depth : W2A_STRUCTJSON_MAX_DEPTH;
  w->err = err;
  w->plen = 1;
  memcpy(w->path, "$", 2);
}

int w2a_struct_from_json(json_object *obj, ProtobufCAllocator *alloc, int max_depth, PbStruct **out,
                         w2a_err *err) {
  walk w;
  PbStruct *s = NULL;
  int rc;
  walk_init(&w, alloc, max_depth, err);
  if (!json_object_is_type(obj, json_type_object)) {
    rc = w2a_errf(err, W2A_EINVAL, "$: expected a JSON object");
    goto out;
  }
  if (!(s = walk_alloc(&w, sizeof *s))) {
    rc = w2a_errf(err, W2A_ENOMEM, "out of memory");
    goto out;
  }
  google__protobuf__struct__init(s);
  rc = fill_struct(&w, s, obj, 1);
  if (rc == W2A_ENOMEM) w2a_errf(err, rc, "out of memory");
out:
  if (rc && s) protobuf_c_message_free_unpacked(&s->base, alloc);
  *out = rc ? NULL : s;
  return rc;
}

int w2a_value_from_json(json_object *j, ProtobufCAllocator *alloc, int max_depth, PbValue **out,
                        w2a_err *err) {
  walk w;
  PbValue *v;
  int rc;
  walk_init(&w, alloc, max_depth, err);
  if (!(v = walk_alloc(&w, sizeof *v))) {
    rc = w2a_errf(err, W2A_ENOMEM, "out of memory");
    goto out;
  }
  google__protobuf__value__init(v);
  rc = fill_value(&w, v, j, 1);
  if (rc == W2A_ENOMEM) w2a_errf(err, rc, "out of memory");
out:
  if (rc && v) protobuf_c_message_free_unpacked(&v->base, alloc);
  *out = rc ? NULL : v;
  return rc;
}
