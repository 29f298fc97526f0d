/* reqlog.c - see reqlog.h. An entry's one buffer holds, in order: the warnings and a
 * NUL, then each kept header as name NUL value NUL, then the body and a NUL. */
#include "fakewarp/reqlog.h"

#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/err.h"
#include "fakewarp/summary.h"
#include "proto/pbjson.h"

#define SHRINK_ABOVE (1u << 20) /* a reused buffer this big is cut down to what it holds */

struct w2a_fake_log_entry {
  uint64_t at_ms;
  const char *outcome;
  char *buf;
  size_t buf_cap;
  size_t warn_len; /* 0: no warnings */
  size_t hdr_off, hdr_len;
  size_t nheaders;
  size_t body_off, body_len;
  int status;
  int decoded;
  int hidden;
  int has_request_id;
  char request_id[37];
};

static int grow(w2a_fake_log *l, size_t max) {
  size_t cap = l->cap ? l->cap * 2 : 8;
  if (max && cap > max) cap = max;
  w2a_fake_log_entry *e = calloc(cap, sizeof *e);
  if (!e) return W2A_ENOMEM;
  for (size_t i = 0; i < l->n; i++)
    e[i] = l->e[(l->first + i) % l->cap];
  free(l->e);
  l->e = e;
  l->cap = cap;
  l->first = 0;
  return 0;
}

int w2a_fake_log_add(w2a_fake_log *l, size_t max, const w2a_fake_log_rec *rec) {
  if (l->n == l->cap && (!max || l->cap < max)) {
    int rc = grow(l, max);
    if (rc) return rc;
  }
  int evict = l->n == l->cap; /* full: the oldest makes room */
  w2a_fake_log_entry *e = &l->e[evict ? l->first : (l->first + l->n) % l->cap];
  const w2a_http_req *r = rec->req;
  size_t wl = rec->warnings ? strlen(rec->warnings) : 0;
  size_t need = wl + 1, nh = 0, hl = 0;
  for (size_t i = 0; !rec->hidden && i < r->nheaders; i++) {
    if (!strcmp(r->headers[i].name, "authorization")) continue; /* never keep credentials */
    hl += strlen(r->headers[i].name) + strlen(r->headers[i].value) + 2;
    nh++;
  }
  need += hl + r->body_len + 1;
  if (need > e->buf_cap || (e->buf_cap > SHRINK_ABOVE && need < e->buf_cap / 4)) {
    char *b = malloc(need);
    if (!b) return W2A_ENOMEM; /* nothing changed */
    free(e->buf);
    e->buf = b;
    e->buf_cap = need;
  }
  if (evict)
    l->first = (l->first + 1) % l->cap;
  else
    l->n++;
  char *p = e->buf;
  if (wl) memcpy(p, rec->warnings, wl);
  p[wl] = 0;
  p += wl + 1;
  for (size_t i = 0; !rec->hidden && i < r->nheaders; i++) {
    const char *n = r->headers[i].name;
    if (!strcmp(n, "authorization")) continue;
    size_t a = strlen(n) + 1, b = strlen(r->headers[i].value) + 1;
    memcpy(p, n, a);
    memcpy(p + a, r->headers[i].value, b);
    p += a + b;
  }
  if (r->body_len) memcpy(p, r->body, r->body_len);
  p[r->body_len] = 0;
  e->at_ms = rec->at_ms;
  e->outcome = rec->outcome;
  e->warn_len = wl;
  e->hdr_off = wl + 1;
  e->hdr_len = hl;
  e->nheaders = nh;
  e->body_off = wl + 1 + hl;
  e->body_len = r->body_len;
  e->status = rec->status;
  e->decoded = rec->decoded;
  e->hidden = rec->hidden;
  e->has_request_id = rec->request_id != NULL;
  if (rec->request_id) {
    size_t il = strlen(rec->request_id);
    if (il >= sizeof e->request_id) il = sizeof e->request_id - 1;
    memcpy(e->request_id, rec->request_id, il);
    e->request_id[il] = 0;
  }
  return 0;
}

void w2a_fake_log_free(w2a_fake_log *l) {
  for (size_t i = 0; i < l->cap; i++)
    free(l->e[i].buf);
  free(l->e);
  memset(l, 0, sizeof *l);
}

/* The decoded request: its summary and its proto3 JSON (field names as in the .proto). */
static void add_decoded(json_object *o, const w2a_fake_log_entry *e) {
  w2a_err err = {0};
  w2a_fake_request *rq = (w2a_fake_request *)w2a_pbjson_unpack(
      &warp__multi_agent__v1__request__descriptor, (const uint8_t *)e->buf + e->body_off,
      e->body_len, &err);
  if (!rq) { /* cannot happen: these bytes were decoded when the request came */
    json_object_object_add(o, "request_error", json_object_new_string(err.msg));
    return;
  }
  json_object_object_add(o, "summary", w2a_fake_summary(rq));
  w2a_buf jb;
  w2a_buf_init(&jb, 32u << 20);
  if (!w2a_pbjson_msg_to_json(&rq->base, NULL, &jb, &err) && jb.data)
    json_object_object_add(o, "request", json_tokener_parse(jb.data));
  else
    json_object_object_add(o, "request_error", json_object_new_string(err.msg));
  w2a_buf_free(&jb);
  warp__multi_agent__v1__request__free_unpacked(rq, NULL);
}

static json_object *entry_json(const w2a_fake_log_entry *e, const char *email) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "at_ms", json_object_new_uint64(e->at_ms));
  json_object_object_add(o, "email", email ? json_object_new_string(email) : NULL);
  json_object_object_add(o, "request_id",
                         e->has_request_id ? json_object_new_string(e->request_id) : NULL);
  json_object_object_add(o, "status", json_object_new_int(e->status));
  json_object_object_add(o, "outcome", json_object_new_string(e->outcome));
  if (e->warn_len) json_object_object_add(o, "warnings", json_object_new_string(e->buf));
  json_object *h = json_object_new_object();
  const char *p = e->buf + e->hdr_off;
  for (size_t i = 0; i < e->nheaders; i++) {
    const char *v = p + strlen(p) + 1;
    json_object_object_add(h, p, json_object_new_string(v));
    p = v + strlen(v) + 1;
  }
  json_object_object_add(o, "headers", h);
  size_t shown = e->hidden ? 0 : e->body_len;
  json_object_object_add(o, "body_bytes", json_object_new_uint64(shown));
  if (e->decoded) add_decoded(o, e);
  /* The raw body too, so a test can decode it with protoc itself. */
  char *b64 = malloc(w2a_b64_enc_len(shown) + 1);
  if (b64) {
    w2a_b64_encode(e->buf + e->body_off, shown, b64, 0, 1);
    json_object_object_add(o, "body_b64", json_object_new_string(b64));
    free(b64);
  }
  return o;
}

json_object *w2a_fake_log_json(const w2a_fake_log *l, const char *email) {
  json_object *a = json_object_new_array();
  for (size_t i = 0; i < l->n; i++)
    json_object_array_add(a, entry_json(&l->e[(l->first + i) % l->cap], email));
  return a;
}
