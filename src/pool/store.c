/* store.c - the backend-independent half of the store: state and selection names, the
 * JWT expiry reader, backend choice at open, and the thin wrappers over the ops table.
 * Backends live in store_<name>.c and export only their open function. */
#include "store.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "secret.h"

int w2a_store_sqlite_open(w2a_store **out, const w2a_store_opts *o, w2a_err *err);

static const char *const state_names[W2A_ST__COUNT] = {"available", "cooling", "quota_exhausted",
                                                       "invalid",   "blocked", "disabled"};

const char *w2a_acct_state_name(w2a_acct_state s) {
  return (unsigned)s < W2A_ST__COUNT ? state_names[s] : "unknown";
}

int w2a_acct_state_parse(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < W2A_ST__COUNT; i++)
    if (!strcasecmp(name, state_names[i])) return i;
  if (!strcasecmp(name, "quota")) return W2A_ST_QUOTA;
  return -1;
}

int w2a_selection_parse(const char *s) {
  if (!s || !strcasecmp(s, "lru")) return W2A_SEL_LRU;
  if (!strcasecmp(s, "round-robin") || !strcasecmp(s, "round_robin")) return W2A_SEL_ROUND_ROBIN;
  if (!strcasecmp(s, "fill-first") || !strcasecmp(s, "fill_first")) return W2A_SEL_FILL_FIRST;
  return -1;
}

void w2a_account_clear(w2a_account *a) {
  if (!a) return;
  w2a_secret_free(a->refresh_token);
  w2a_secret_free(a->id_token);
  a->refresh_token = a->id_token = NULL;
}

uint64_t w2a_jwt_exp_ms(const char *jwt) {
  if (!jwt) return 0;
  const char *d1 = strchr(jwt, '.');
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!d2 || d2 - d1 - 1 > 8192) return 0;
  size_t n = (size_t)(d2 - d1 - 1), bad;
  unsigned char *raw = malloc(w2a_b64_dec_max(n) + 1);
  if (!raw) return 0;
  long m = w2a_b64_decode(d1 + 1, n, raw, &bad);
  uint64_t exp = 0;
  if (m > 0) {
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, (const char *)raw, (int)m) : NULL;
    json_object *e;
    if (o && json_object_object_get_ex(o, "exp", &e)) {
      int64_t v = json_object_get_int64(e);
      if (v > 0 && v < 4102444800) exp = (uint64_t)v * 1000u; /* before 2100 */
    }
    json_object_put(o);
    if (tok) json_tokener_free(tok);
  }
  free(raw);
  return exp;
}

int w2a_store_open(w2a_store **out, const w2a_store_opts *o, w2a_err *err) {
  *out = NULL;
  if (!o || !o->path || !*o->path) return w2a_errf(err, W2A_EINVAL, "store: no database path");
  if (!strncmp(o->path, "postgres://", 11) || !strncmp(o->path, "postgresql://", 13))
    return w2a_errf(err, W2A_EINVAL, "store: PostgreSQL backend not built yet");
  const char *path = o->path;
  if (!strncmp(path, "sqlite://", 9)) {
    w2a_store_opts o2 = *o;
    o2.path = path + 9;
    return w2a_store_sqlite_open(out, &o2, err);
  }
  return w2a_store_sqlite_open(out, o, err);
}

void w2a_store_close(w2a_store *s) {
  if (s) s->ops->close(s);
}

int w2a_store_add(w2a_store *s, const w2a_account_new *a, uint64_t now_ms, int64_t *id,
                  w2a_err *err) {
  return s->ops->add(s, a, now_ms, id, err);
}
int w2a_store_import(w2a_store *s, const w2a_account_new *a, size_t n, w2a_import_mode mode,
                     uint64_t now_ms, w2a_import_result *results, w2a_err *err) {
  return s->ops->import(s, a, n, mode, now_ms, results, err);
}
int w2a_store_get(w2a_store *s, int64_t id, int flags, w2a_account *out, w2a_err *err) {
  return s->ops->get(s, id, NULL, flags, out, err);
}
int w2a_store_get_by_email(w2a_store *s, const char *email, int flags, w2a_account *out,
                           w2a_err *err) {
  return s->ops->get(s, 0, email, flags, out, err);
}
int w2a_store_list(w2a_store *s, const w2a_store_filter *f, w2a_store_each_fn fn, void *ud,
                   w2a_err *err) {
  return s->ops->list(s, f, fn, ud, err);
}
int w2a_store_delete(w2a_store *s, int64_t id, w2a_err *err) { return s->ops->remove(s, id, err); }
int w2a_store_set_state(w2a_store *s, int64_t id, w2a_acct_state st, const char *reason,
                        uint64_t until_ms, uint64_t now_ms, w2a_err *err) {
  return s->ops->set_state(s, id, st, reason, until_ms, now_ms, err);
}
int w2a_store_set_meta(w2a_store *s, int64_t id, const w2a_account_meta *m, w2a_err *err) {
  return s->ops->set_meta(s, id, m, err);
}
int w2a_store_counts(w2a_store *s, uint64_t now_ms, w2a_store_stats *out, w2a_err *err) {
  return s->ops->counts(s, now_ms, out, err);
}
int w2a_store_why_not(w2a_store *s, int64_t id, uint64_t now_ms, char *buf, size_t len,
                      w2a_err *err) {
  return s->ops->why_not(s, id, now_ms, buf, len, err);
}
int w2a_store_set_quota(w2a_store *s, int64_t id, const w2a_quota *q, w2a_err *err) {
  return s->ops->set_quota(s, id, q, err);
}
int w2a_store_set_tokens(w2a_store *s, int64_t id, const char *id_token, uint64_t exp_ms,
                         const char *new_refresh_token, uint64_t now_ms, w2a_err *err) {
  return s->ops->set_tokens(s, id, id_token, exp_ms, new_refresh_token, now_ms, err);
}
int w2a_store_refresh_failed(w2a_store *s, int64_t id, int invalid, const char *reason,
                             uint64_t now_ms, w2a_err *err) {
  return s->ops->refresh_failed(s, id, invalid, reason, now_ms, err);
}
int w2a_store_refresh_claim(w2a_store *s, int64_t id, uint64_t seen_refresh_ms, uint64_t now_ms,
                            uint64_t hold_ms, w2a_err *err) {
  return s->ops->refresh_claim(s, id, seen_refresh_ms, now_ms, hold_ms, err);
}
int w2a_store_due(w2a_store *s, int what, uint64_t now_ms, uint64_t horizon_ms, int64_t *ids,
                  size_t max, size_t *n, w2a_err *err) {
  return s->ops->due(s, what, now_ms, horizon_ms, ids, max, n, err);
}
int w2a_store_lease_acquire(w2a_store *s, const w2a_lease_req *rq, w2a_lease_row *rows, int *n,
                            w2a_lease_none *none, w2a_err *err) {
  return s->ops->lease_acquire(s, rq, rows, n, none, err);
}
int w2a_store_lease_extend(w2a_store *s, const char *lease_id, uint64_t expires_ms, w2a_err *err) {
  return s->ops->lease_extend(s, lease_id, expires_ms, err);
}
int w2a_store_lease_release(w2a_store *s, const char *lease_id, int64_t account_id,
                            const w2a_lease_result *r, uint64_t now_ms, w2a_err *err) {
  return s->ops->lease_release(s, lease_id, account_id, r, now_ms, err);
}
int w2a_store_release_holder(w2a_store *s, const char *holder, uint64_t now_ms, int *n,
                             w2a_err *err) {
  return s->ops->release_holder(s, holder, now_ms, n, err);
}
int w2a_store_reclaim(w2a_store *s, uint64_t now_ms, int *n, w2a_err *err) {
  return s->ops->reclaim(s, now_ms, n, err);
}
int w2a_store_readmit(w2a_store *s, uint64_t now_ms, int *n, w2a_err *err) {
  return s->ops->readmit(s, now_ms, n, err);
}
int w2a_store_apply_result(w2a_store *s, int64_t account_id, int was_probe,
                           const w2a_lease_result *r, uint64_t now_ms, w2a_err *err) {
  return s->ops->apply_result(s, account_id, was_probe, r, now_ms, err);
}
int w2a_store_add_usage(w2a_store *s, const w2a_usage *u, size_t n, w2a_err *err) {
  return s->ops->add_usage(s, u, n, err);
}
int w2a_store_data_version(w2a_store *s, int64_t *version, w2a_err *err) {
  return s->ops->data_version(s, version, err);
}
int w2a_store_batch_begin(w2a_store *s, w2a_err *err) { return s->ops->batch_begin(s, err); }
int w2a_store_batch_commit(w2a_store *s, w2a_err *err) { return s->ops->batch_commit(s, err); }

int w2a_store_integrity_check(w2a_store *s, char *buf, size_t len, w2a_err *err) {
  return s->ops->integrity_check(s, buf, len, err);
}
int w2a_store_explain_selection(w2a_store *s, w2a_selection sel, char *buf, size_t len,
                                w2a_err *err) {
  return s->ops->explain_selection(s, sel, buf, len, err);
}
