/* registry.c - the table of generated descriptors and name lookup.
 *
 * The symbol list comes from <build>/gen/w2a_pb_registry.inc, written by
 * registry.cmake from the generated headers (protobuf-c has no file descriptor that
 * would enumerate nested messages). The message table is sorted by full name once,
 * under pthread_once, so iteration order is stable and independent of header order;
 * lookups are linear, which is fine for a couple of hundred names and callers that
 * resolve a type once. */
#include "proto/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W2A_PB_MSG(sym) extern const ProtobufCMessageDescriptor sym;
#define W2A_PB_ENUM(sym) extern const ProtobufCEnumDescriptor sym;
#include "w2a_pb_registry.inc"
#undef W2A_PB_MSG
#undef W2A_PB_ENUM

#define W2A_PB_MSG(sym) &sym,
#define W2A_PB_ENUM(sym)
static const ProtobufCMessageDescriptor *msgs[] = {
#include "w2a_pb_registry.inc"
};
#undef W2A_PB_MSG
#undef W2A_PB_ENUM

#define W2A_PB_MSG(sym)
#define W2A_PB_ENUM(sym) &sym,
static const ProtobufCEnumDescriptor *enums[] = {
#include "w2a_pb_registry.inc"
};
#undef W2A_PB_MSG
#undef W2A_PB_ENUM

#define N_MSGS (sizeof msgs / sizeof msgs[0])
#define N_ENUMS (sizeof enums / sizeof enums[0])

static pthread_once_t sort_once = PTHREAD_ONCE_INIT;

static int cmp_msg(const void *a, const void *b) {
  const ProtobufCMessageDescriptor *x = *(const ProtobufCMessageDescriptor *const *)a;
  const ProtobufCMessageDescriptor *y = *(const ProtobufCMessageDescriptor *const *)b;
  return strcmp(x->name, y->name);
}

static void sort_msgs(void) { qsort(msgs, N_MSGS, sizeof msgs[0], cmp_msg); }

/* 2 = exact full name, 1 = dotted suffix, 0 = no match. */
static int name_match(const char *full, const char *q, size_t qlen) {
  size_t flen = strlen(full);
  if (flen == qlen && !memcmp(full, q, qlen)) return 2;
  if (flen > qlen && full[flen - qlen - 1] == '.' && !memcmp(full + flen - qlen, q, qlen)) return 1;
  return 0;
}

int w2a_pb_lookup(const char *name, const ProtobufCMessageDescriptor **out, w2a_err *err) {
  pthread_once(&sort_once, sort_msgs);
  *out = NULL;
  if (!name || !*name) return w2a_errf(err, W2A_ENOTFOUND, "empty message name");
  const char *q = name[0] == '.' ? name + 1 : name;
  size_t qlen = strlen(q);
  const ProtobufCMessageDescriptor *hit = NULL;
  size_t n_suffix = 0;
  for (size_t i = 0; i < N_MSGS; i++) {
    int m = name_match(msgs[i]->name, q, qlen);
    if (m == 2) {
      *out = msgs[i];
      return 0;
    }
    if (m == 1 && n_suffix++ == 0) hit = msgs[i];
  }
  if (n_suffix == 1) {
    *out = hit;
    return 0;
  }
  if (n_suffix == 0) return w2a_errf(err, W2A_ENOTFOUND, "no message named %s", name);
  /* Name the candidates, as many as fit. */
  char list[200];
  size_t used = 0;
  list[0] = 0;
  for (size_t i = 0; i < N_MSGS && used < sizeof list - 1; i++) {
    if (name_match(msgs[i]->name, q, qlen) != 1) continue;
    int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", msgs[i]->name);
    if (w < 0) break;
    used += (size_t)w;
  }
  return w2a_errf(err, W2A_EINVAL, "message name %s is ambiguous: %s", name, list);
}

const ProtobufCMessageDescriptor *w2a_pb_find(const char *name) {
  const ProtobufCMessageDescriptor *d;
  return w2a_pb_lookup(name, &d, NULL) ? NULL : d;
}

const ProtobufCEnumDescriptor *w2a_pb_find_enum(const char *name) {
  if (!name || !*name) return NULL;
  const char *q = name[0] == '.' ? name + 1 : name;
  size_t qlen = strlen(q);
  const ProtobufCEnumDescriptor *hit = NULL;
  size_t n_suffix = 0;
  for (size_t i = 0; i < N_ENUMS; i++) {
    int m = name_match(enums[i]->name, q, qlen);
    if (m == 2) return enums[i];
    if (m == 1 && n_suffix++ == 0) hit = enums[i];
  }
  return n_suffix == 1 ? hit : NULL;
}

size_t w2a_pb_count(void) { return N_MSGS; }

const ProtobufCMessageDescriptor *w2a_pb_at(size_t i) {
  pthread_once(&sort_once, sort_msgs);
  return i < N_MSGS ? msgs[i] : NULL;
}

int w2a_pb_is_map_entry(const ProtobufCMessageDescriptor *d) {
  if (d->n_fields != 2) return 0; /* the cheap test first: this sits on hot paths */
  size_t n = strlen(d->short_name);
  if (n < 5 || strcmp(d->short_name + n - 5, "Entry") || d->n_fields != 2) return 0;
  /* A map entry is always nested, so its full name has more parts than its package. */
  if (!d->package_name || strlen(d->name) <= strlen(d->package_name) + 1 + n) return 0;
  const ProtobufCFieldDescriptor *k = &d->fields[0], *v = &d->fields[1];
  if (k->id != 1 || v->id != 2 || strcmp(k->name, "key") || strcmp(v->name, "value")) return 0;
  if (k->label == PROTOBUF_C_LABEL_REPEATED || v->label == PROTOBUF_C_LABEL_REPEATED) return 0;
  switch (k->type) {
  case PROTOBUF_C_TYPE_FLOAT:
  case PROTOBUF_C_TYPE_DOUBLE:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
  case PROTOBUF_C_TYPE_ENUM: return 0;
  default: return 1;
  }
}
