/* admin.c - the admin HTTP API (docs/admin-api.md).
 *
 * A request is parsed and validated on the loop thread (auth, route, JSON fields), then
 * becomes a `job`: its database part runs on the pool's worker through w2a_pool_submit
 * (job->work, which fills the reply), and the loop part (job->then, or the reply) runs
 * on the loop. Routes that need Warp (refresh-tokens, replenish's quota checks, add's
 * verification, allocate's token freshness) chain pool calls from `then`. Every job
 * ends in reply(), which completes the HTTP request exactly once and frees the job;
 * `inflight` counts jobs so stop can wait for them.
 *
 * Nothing here logs or returns a refresh token; ID tokens leave only through allocate. */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_COUNT 10                           /* allocate: the seed's 1..10 */
#define SESSION_MAX 128                        /* session id bytes */
#define DEFAULT_SESSION_MS (30u * 60u * 1000u) /* seed SESSION_TIMEOUT_MINUTES */
#define MAX_SESSION_MS (24u * 3600u * 1000u)
#define LIST_DEFAULT 1000
#define LIST_MAX 10000
#define REFRESH_PARALLEL 4
#define REPLENISH_MAX 1000
#define QUOTA_FALLBACK_MS (24u * 3600u * 1000u)

struct w2a_admin {
  uv_loop_t *loop;
  const w2a_config *cfg;
  w2a_pool *pool;
  w2a_http_server *srv; /* NULL when mounted on another server */
  size_t inflight;
  int stopping;
  void (*done)(void *ud);
  void *done_ud;
};

/* ---- small helpers ------------------------------------------------------------------ */

int w2a_admin_host_is_loopback(const char *host) {
  if (!host) return 0;
  if (!strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "[::1]")) return 1;
  struct in_addr a4;
  if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return 0;
}

const char *w2a_admin_health(long usable, long min_size) {
  if (usable > 0 && usable >= 2 * min_size) return "healthy";
  if (usable > 0 && usable >= min_size) return "good";
  if (usable > 0) return "low";
  return "critical";
}

void w2a_admin_iso_time(uint64_t ms, char out[32]) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

static void put_time(json_object *o, const char *key, uint64_t ms) {
  if (!ms) {
    json_object_object_add(o, key, NULL);
    return;
  }
  char t[32];
  w2a_admin_iso_time(ms, t);
  json_object_object_add(o, key, json_object_new_string(t));
}

static void put_str(json_object *o, const char *key, const char *s) {
  json_object_object_add(o, key, s && *s ? json_object_new_string(s) : NULL);
}

static void put_int(json_object *o, const char *key, int64_t v) {
  json_object_object_add(o, key, json_object_new_int64(v));
}

static void put_bool(json_object *o, const char *key, int v) {
  json_object_object_add(o, key, json_object_new_boolean(v != 0));
}

/* The seed's error shape: {"error": "...", "timestamp": "..."}. */
static size_t error_body(const char *msg, char *out, size_t n) {
  char ts[32];
  w2a_admin_iso_time(w2a_now_ms(), ts);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "error", json_object_new_string(msg));
  json_object_object_add(o, "timestamp", json_object_new_string(ts));
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  size_t len = strlen(s);
  if (len >= n) len = n ? n - 1 : 0;
  if (n) {
    memcpy(out, s, len);
    out[len] = 0;
  }
  json_object_put(o);
  return len;
}

static size_t server_error_fn(int status, const char *message, char *out, size_t n) {
  (void)status;
  return error_body(message, out, n);
}

static void respond_json(w2a_http_req *r, int status, json_object *o, const char *extra) {
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  w2a_http_respond(r, status, "application/json", extra, s, strlen(s));
}

static void respond_error(w2a_http_req *r, int status, const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void respond_error(w2a_http_req *r, int status, const char *extra, const char *fmt, ...) {
  char msg[600], body[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  size_t n = error_body(msg, body, sizeof body);
  w2a_http_respond(r, status, "application/json", extra, body, n);
}

/* ---- account JSON (shared with the CLI) ------------------------------------------------ */

json_object *w2a_admin_account_json(const w2a_account *a, const char *why, uint64_t now_ms) {
  json_object *o = json_object_new_object();
  if (!o) return NULL;
  /* the seed's AccountInfo fields first */
  put_str(o, "email", a->email);
  put_str(o, "local_id", a->uid);
  put_str(o, "status", w2a_acct_state_name(a->state));
  put_time(o, "created_at", a->created_ms);
  put_time(o, "last_used", a->last_used_ms);
  put_time(o, "last_refresh_time", a->last_refresh_ms);
  put_int(o, "use_count", a->uses);
  /* ours */
  put_int(o, "id", a->id);
  put_str(o, "label", a->label);
  put_str(o, "state_reason", a->state_reason);
  put_time(o, "state_until", a->state_until_ms);
  put_bool(o, "probing", a->probing);
  put_int(o, "weight", a->weight);
  put_int(o, "cap", a->cap);
  put_int(o, "active_leases", a->active_leases);
  put_bool(o, "has_id_token", a->has_id_token);
  put_time(o, "id_token_expires_at", a->id_token_exp_ms);
  put_int(o, "successes", a->successes);
  put_int(o, "errors", a->errors);
  put_int(o, "consecutive_failures", a->consecutive_failures);
  put_int(o, "refresh_failures", a->refresh_failures);
  put_str(o, "last_error", a->last_error);
  put_time(o, "last_error_at", a->last_error_ms);
  put_time(o, "last_success_at", a->last_success_ms);
  json_object *q = json_object_new_object();
  if (a->quota.limit >= 0)
    put_int(q, "limit", a->quota.limit);
  else
    json_object_object_add(q, "limit", NULL);
  if (a->quota.used >= 0)
    put_int(q, "used", a->quota.used);
  else
    json_object_object_add(q, "used", NULL);
  if (a->quota.limit >= 0 && a->quota.used >= 0 && !a->quota.unlimited)
    put_int(q, "remaining", a->quota.limit > a->quota.used ? a->quota.limit - a->quota.used : 0);
  else
    json_object_object_add(q, "remaining", NULL);
  put_bool(q, "unlimited", a->quota.unlimited);
  put_time(q, "reset_at", a->quota.reset_ms);
  put_time(q, "updated_at", a->quota.updated_ms);
  json_object_object_add(o, "quota", q);
  if (why) {
    put_bool(o, "selectable", !*why);
    put_str(o, "not_selectable_reason", why);
  }
  (void)now_ms;
  return o;
}

json_object *w2a_admin_export_json(const w2a_account *a, int flags) {
  json_object *o = json_object_new_object();
  if (!o) return NULL;
  put_str(o, "email", a->email);
  if ((flags & W2A_ADMIN_JSON_SECRETS) && a->refresh_token)
    put_str(o, "refresh_token", a->refresh_token);
  put_str(o, "uid", a->uid);
  put_str(o, "label", a->label);
  put_int(o, "weight", a->weight);
  put_int(o, "cap", a->cap);
  put_str(o, "state", w2a_acct_state_name(a->state));
  put_time(o, "created_at", a->created_ms);
  return o;
}

/* ---- field validation ---------------------------------------------------------------- */

/* Field checks fill msg (naming the field) and return -1 on bad input. */
typedef struct vmsg {
  char text[300];
} vmsg;

static int bad(vmsg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(vmsg *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->text, sizeof m->text, fmt, ap);
  va_end(ap);
  return -1;
}

static int check_known(json_object *o, const char *const *allowed, vmsg *m) {
  json_object_object_foreach(o, key, val) {
    (void)val;
    int ok = 0;
    for (const char *const *k = allowed; *k; k++)
      if (!strcmp(key, *k)) ok = 1;
    if (!ok) return bad(m, "unknown field \"%.100s\"", key);
  }
  return 0;
}

/* 1 present, 0 absent (or null), -1 bad. */
static int get_str(json_object *o, const char *f, int required, size_t max, const char **out,
                   vmsg *m) {
  json_object *v = NULL;
  *out = NULL;
  if (!json_object_object_get_ex(o, f, &v) || !v) {
    if (required) return bad(m, "\"%s\" is required", f);
    return 0;
  }
  if (!json_object_is_type(v, json_type_string)) return bad(m, "\"%s\" must be a string", f);
  const char *s = json_object_get_string(v);
  size_t n = (size_t)json_object_get_string_len(v);
  if (strlen(s) != n) return bad(m, "\"%s\" must not contain NUL bytes", f);
  if (!n && required) return bad(m, "\"%s\" must not be empty", f);
  if (n > max) return bad(m, "\"%s\" is too long (at most %zu bytes)", f, max);
  *out = s;
  return 1;
}

static int get_int(json_object *o, const char *f, int64_t lo, int64_t hi, int64_t *out, vmsg *m) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(o, f, &v) || !v) return 0;
  if (!json_object_is_type(v, json_type_int))
    return bad(m, "\"%s\" must be an integer from %lld to %lld", f, (long long)lo, (long long)hi);
  errno = 0;
  int64_t x = json_object_get_int64(v);
  if (errno || x < lo || x > hi)
    return bad(m, "\"%s\" must be an integer from %lld to %lld", f, (long long)lo, (long long)hi);
  *out = x;
  return 1;
}

static int get_bool(json_object *o, const char *f, int *out, vmsg *m) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(o, f, &v) || !v) return 0;
  if (!json_object_is_type(v, json_type_boolean)) return bad(m, "\"%s\" must be true or false", f);
  *out = json_object_get_boolean(v);
  return 1;
}

static int valid_email(const char *e, const char *field, vmsg *m) {
  const char *at = strchr(e, '@');
  if (!at || at == e || !at[1] || strchr(at + 1, '@'))
    return bad(m, "\"%s\" must be an email address like name@example.com", field);
  for (const unsigned char *p = (const unsigned char *)e; *p; p++)
    if (*p <= ' ' || *p == 0x7f || *p == '/')
      return bad(m, "\"%s\" must not contain spaces, control characters or '/'", field);
  return 0;
}

static int valid_token(const char *t, const char *field, vmsg *m) {
  for (const unsigned char *p = (const unsigned char *)t; *p; p++)
    if (*p <= ' ' || *p >= 0x7f)
      return bad(m, "\"%s\" contains characters a token cannot have", field);
  return 0;
}

/* ---- import parsing (shared with the CLI) ------------------------------------------- */

static const char *const import_fields[] = {
    "email", "refresh_token", "id_token", "uid", "local_id", "label", "weight", "cap",
    /* accepted and ignored, so an export (or the seed's AccountInfo) reads back */
    "state", "status", "created_at", "last_used", "last_refresh_time", "use_count", "session_id",
    "id", NULL};

static int import_record(w2a_admin_import *im, json_object *rec, int line, vmsg *m) {
  if (!json_object_is_type(rec, json_type_object)) return bad(m, "a record must be a JSON object");
  if (check_known(rec, import_fields, m)) return -1;
  const char *email, *rt, *idt, *uid, *uid2, *label;
  int64_t weight = 0, cap = 0;
  if (get_str(rec, "email", 1, W2A_EMAIL_MAX - 1, &email, m) < 0) return -1;
  if (valid_email(email, "email", m)) return -1;
  if (get_str(rec, "refresh_token", 1, W2A_TOKEN_MAX, &rt, m) < 0) return -1;
  if (valid_token(rt, "refresh_token", m)) return -1;
  if (get_str(rec, "id_token", 0, W2A_TOKEN_MAX, &idt, m) < 0) return -1;
  if (idt && valid_token(idt, "id_token", m)) return -1;
  if (get_str(rec, "uid", 0, W2A_UID_MAX - 1, &uid, m) < 0) return -1;
  if (get_str(rec, "local_id", 0, W2A_UID_MAX - 1, &uid2, m) < 0) return -1;
  if (get_str(rec, "label", 0, W2A_LABEL_MAX - 1, &label, m) < 0) return -1;
  if (get_int(rec, "weight", 1, 1000, &weight, m) < 0) return -1;
  if (get_int(rec, "cap", 1, 1000, &cap, m) < 0) return -1;
  w2a_account_new *n = &im->rows[im->nrows];
  memset(n, 0, sizeof *n);
  n->email = email;
  n->refresh_token = rt;
  n->id_token = idt && *idt ? idt : NULL;
  n->uid = uid ? uid : uid2;
  n->label = label;
  n->weight = (int)weight;
  n->cap = (int)cap;
  im->row_line[im->nrows++] = line;
  return 0;
}

static int import_add_err(w2a_admin_import *im, int line, const char *msg) {
  w2a_admin_import_err *e = &im->errs[im->nerrs++];
  e->line = line;
  /* A clipped message is still a useful hint; say so to the compiler by using the length. */
  size_t n = strnlen(msg, sizeof e->msg - 1);
  memcpy(e->msg, msg, n);
  e->msg[n] = 0;
  return 0;
}

/* Room for up to n records (and as many errors). */
static int import_alloc(w2a_admin_import *im, size_t n) {
  if (!n) n = 1;
  im->rows = calloc(n, sizeof *im->rows);
  im->row_line = calloc(n, sizeof *im->row_line);
  im->errs = calloc(n, sizeof *im->errs);
  im->objs = calloc(n, sizeof *im->objs);
  return im->rows && im->row_line && im->errs && im->objs ? 0 : W2A_ENOMEM;
}

/* What the admin API reads is stored and later written out as JSON: UTF-8 only. */
static json_tokener *utf8_tokener(void) {
  json_tokener *tok = json_tokener_new();
  if (tok) json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
  return tok;
}

int w2a_admin_import_parse(const char *text, size_t len, w2a_admin_import *im, w2a_err *err) {
  memset(im, 0, sizeof *im);
  size_t i = 0;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
    i++;
  if (i == len) return w2a_errf(err, W2A_EINVAL, "no accounts: the input is empty");
  vmsg m;
  if (text[i] == '[') {
    im->is_array = 1;
    json_tokener *tok = utf8_tokener();
    if (!tok) return w2a_errf(err, W2A_ENOMEM, "out of memory");
    json_object *arr = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t used = tok->char_offset;
    json_tokener_free(tok);
    if (!arr || je != json_tokener_success) {
      json_object_put(arr);
      return w2a_errf(err, W2A_EINVAL, "malformed JSON array at byte %zu: %s", used,
                      json_tokener_error_desc(je));
    }
    while (used < len && strchr(" \t\r\n", text[used]))
      used++;
    if (used < len) {
      json_object_put(arr);
      return w2a_errf(err, W2A_EINVAL, "unexpected data after the JSON array at byte %zu", used);
    }
    size_t n = json_object_array_length(arr);
    if (import_alloc(im, n)) {
      json_object_put(arr);
      w2a_admin_import_free(im);
      return w2a_errf(err, W2A_ENOMEM, "out of memory");
    }
    im->objs[im->nobjs++] = arr;
    for (size_t k = 0; k < n; k++)
      if (import_record(im, json_object_array_get_idx(arr, k), (int)k + 1, &m))
        import_add_err(im, (int)k + 1, m.text);
    return 0;
  }
  /* JSONL: one record a line; blank lines and lines starting with '#' are skipped */
  size_t lines = 1;
  for (size_t k = 0; k < len; k++)
    lines += text[k] == '\n';
  if (import_alloc(im, lines)) {
    w2a_admin_import_free(im);
    return w2a_errf(err, W2A_ENOMEM, "out of memory");
  }
  int line = 0;
  for (size_t p = 0; p < len;) {
    const char *nl = memchr(text + p, '\n', len - p);
    size_t e = nl ? (size_t)(nl - text) : len;
    line++;
    size_t a = p, b = e;
    while (a < b && strchr(" \t\r", text[a]))
      a++;
    while (b > a && strchr(" \t\r", text[b - 1]))
      b--;
    p = e + 1;
    if (a == b || text[a] == '#') continue;
    json_tokener *tok = utf8_tokener();
    if (!tok) {
      w2a_admin_import_free(im);
      return w2a_errf(err, W2A_ENOMEM, "out of memory");
    }
    json_object *rec = json_tokener_parse_ex(tok, text + a, (int)(b - a));
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t used = tok->char_offset;
    json_tokener_free(tok);
    if (!rec || je != json_tokener_success || used != b - a) {
      json_object_put(rec);
      char msg[160];
      snprintf(msg, sizeof msg, "malformed JSON: %s",
               je != json_tokener_success ? json_tokener_error_desc(je)
                                          : "unexpected data after the record");
      import_add_err(im, line, msg);
      continue;
    }
    im->objs[im->nobjs++] = rec;
    if (import_record(im, rec, line, &m)) import_add_err(im, line, m.text);
  }
  if (!im->nrows && !im->nerrs) {
    w2a_admin_import_free(im);
    return w2a_errf(err, W2A_EINVAL, "no accounts: the input has no records");
  }
  return 0;
}

void w2a_admin_import_free(w2a_admin_import *im) {
  for (size_t i = 0; i < im->nobjs; i++)
    json_object_put(im->objs[i]);
  free(im->objs);
  free(im->rows);
  free(im->row_line);
  free(im->errs);
  memset(im, 0, sizeof *im);
}

/* ---- jobs ------------------------------------------------------------------------------ */

typedef struct job job;
typedef void (*job_fn)(job *j);
typedef void (*job_db_fn)(job *j, w2a_store *s);

typedef struct alloc_row {
  w2a_lease_row row; /* lease + account snapshot (id_token kept until reply) */
  int refresh;       /* token missing or inside the margin: refresh before handing out */
  int drop;          /* refresh found the account invalid: lease released, not returned */
} alloc_row;

typedef struct refresh_item {
  int64_t id;
  char email[W2A_EMAIL_MAX];
  const char *status;
  char msg[256];
} refresh_item;

struct job {
  w2a_admin *a;
  w2a_http_req *req;
  job_db_fn work; /* on the worker */
  job_fn then;    /* on the loop after work; NULL: reply */

  /* reply */
  int status;
  char errmsg[600];
  json_object *out;
  char *raw; /* a non-JSON body (export JSONL) */
  size_t raw_len;
  const char *ctype;
  char extra[160];

  /* inputs */
  char email[W2A_EMAIL_MAX];
  char text[W2A_REASON_MAX];
  char session[SESSION_MAX + 1];
  int64_t count, num, limit, after_id;
  int flag, flag2, state;
  json_object *in;
  char *body; /* copy of a body parsed on the worker (import) */
  size_t body_len;

  /* allocate */
  alloc_row *rows;
  int nrows;
  w2a_lease_none none;
  /* refresh-tokens / replenish */
  refresh_item *items;
  size_t nitems, next, running, done;
  int pumping;
  int64_t acct_id;
};

static void job_fail(job *j, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_fail(job *j, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->errmsg, sizeof j->errmsg, fmt, ap);
  va_end(ap);
  j->status = status;
  json_object_put(j->out);
  j->out = NULL;
}

/* A store failure: the status follows the code; the message is the store's (never a
 * secret by the store's contract). */
static void job_store_fail(job *j, int rc, const w2a_err *e) {
  int st = rc == W2A_ENOTFOUND ? 404 : rc == W2A_ESTATE ? 409 : rc == W2A_EINVAL ? 400 : 500;
  job_fail(j, st, "%s", e->msg[0] ? e->msg : w2a_strerror(rc));
}

static void admin_maybe_finish_stop(w2a_admin *a);

static void job_free(job *j) {
  json_object_put(j->out);
  json_object_put(j->in);
  free(j->raw);
  free(j->body);
  if (j->rows) {
    for (int i = 0; i < j->nrows; i++)
      w2a_account_clear(&j->rows[i].row.acct);
    free(j->rows);
  }
  free(j->items);
  w2a_admin *a = j->a;
  free(j);
  a->inflight--;
  admin_maybe_finish_stop(a);
}

/* LEASES=memory: the store's rows do not show request leases (they live in the pool's
 * ledger, on this thread); add them to what the worker built. */
static void memory_account(w2a_admin *a, json_object *o) {
  json_object *id, *al, *cap, *sel;
  if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "id", &id) ||
      !json_object_object_get_ex(o, "active_leases", &al))
    return;
  int m = w2a_pool_memory_leases(a->pool, json_object_get_int64(id));
  if (m < 0) return;
  int64_t total = json_object_get_int64(al) + m;
  put_int(o, "active_leases", total);
  put_int(o, "memory_leases", m);
  if (m && json_object_object_get_ex(o, "cap", &cap) && total >= json_object_get_int64(cap) &&
      json_object_object_get_ex(o, "selectable", &sel) && json_object_get_boolean(sel)) {
    char why[96];
    snprintf(why, sizeof why, "leased to its cap (%lld of %lld, %d by requests in flight)",
             (long long)total, (long long)json_object_get_int64(cap), m);
    put_bool(o, "selectable", 0);
    put_str(o, "not_selectable_reason", why);
  }
}

static void memory_figures(w2a_admin *a, json_object *out) {
  json_object *x, *ps;
  int64_t leases, leased, usable;
  w2a_pool_memory_figures(a->pool, &leases, &leased, &usable);
  if (leases < 0 || !out || !json_object_is_type(out, json_type_object)) return;
  memory_account(a, out);
  if (json_object_object_get_ex(out, "account", &x)) memory_account(a, x);
  if (json_object_object_get_ex(out, "accounts", &x) && json_object_is_type(x, json_type_array))
    for (size_t i = 0; i < json_object_array_length(x); i++)
      memory_account(a, json_object_array_get_idx(x, i));
  if (json_object_object_get_ex(out, "pool_stats", &ps)) { /* GET /api/accounts/status */
    json_object *al;
    int64_t rows =
        json_object_object_get_ex(out, "active_leases", &al) ? json_object_get_int64(al) : 0;
    put_int(out, "active_leases", rows + leases);
    put_int(ps, "leased_accounts", leased);
    put_int(ps, "usable", usable);
    json_object_object_add(out, "health",
                           json_object_new_string(w2a_admin_health(usable, a->cfg->pool_min_size)));
  }
}

static void reply(job *j) {
  w2a_http_req *r = j->req;
  memory_figures(j->a, j->out);
  const char *extra = j->extra[0] ? j->extra : NULL;
  if (!j->out && !j->raw) {
    respond_error(r, j->status >= 400 ? j->status : 500, extra, "%s",
                  j->errmsg[0] ? j->errmsg : "internal error: no reply was built");
  } else if (j->raw) {
    w2a_http_respond(r, j->status, j->ctype, extra, j->raw, j->raw_len);
  } else {
    respond_json(r, j->status, j->out, extra);
  }
  job_free(j);
}

static job *job_new(w2a_admin *a, w2a_http_req *r) {
  job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->a = a;
  j->req = r;
  j->status = 503; /* stays when the pool is closing and skips the work */
  snprintf(j->errmsg, sizeof j->errmsg, "the pool is shutting down");
  j->ctype = "application/json";
  a->inflight++;
  return j;
}

static void db_trampoline(w2a_store *s, void *ud) {
  job *j = ud;
  j->status = 200;
  j->errmsg[0] = 0;
  j->work(j, s);
}

static void loop_trampoline(void *ud) {
  job *j = ud;
  if (j->then && j->status < 400)
    j->then(j);
  else
    reply(j);
}

static void run_db(job *j, job_db_fn work, job_fn then) {
  j->work = work;
  j->then = then;
  w2a_pool_submit(j->a->pool, db_trampoline, loop_trampoline, j);
}

/* Resolve j->email to an account (with flags) or fail the job with 404. */
static int find_account(job *j, w2a_store *s, int flags, w2a_account *out) {
  w2a_err e = {0};
  memset(out, 0, sizeof *out);
  int rc = w2a_store_get_by_email(s, j->email, flags, out, &e);
  if (rc == W2A_ENOTFOUND) {
    job_fail(j, 404, "account \"%s\" not found", j->email);
    return -1;
  }
  if (rc) {
    job_store_fail(j, rc, &e);
    return -1;
  }
  return 0;
}

static json_object *new_reply(int success, const char *message) {
  json_object *o = json_object_new_object();
  put_bool(o, "success", success);
  if (message) json_object_object_add(o, "message", json_object_new_string(message));
  return o;
}

/* ---- GET /api/accounts/status ------------------------------------------------------ */

static void db_status(job *j, w2a_store *s) {
  w2a_store_stats c;
  w2a_err e = {0};
  uint64_t now = w2a_now_ms();
  int rc = w2a_store_counts(s, now, &c, &e);
  if (rc) return job_store_fail(j, rc, &e);
  const w2a_config *cfg = j->a->cfg;
  json_object *o = json_object_new_object();
  json_object *ps = json_object_new_object();
  for (int i = 0; i < W2A_ST__COUNT; i++)
    put_int(ps, w2a_acct_state_name(i), c.by_state[i]);
  put_int(ps, "total", c.total);
  put_int(ps, "usable", c.usable);
  put_int(ps, "active_sessions", c.active_leases);
  put_int(ps, "leased_accounts", c.leased_accounts);
  json_object_object_add(o, "pool_stats", ps);
  put_int(o, "active_sessions", c.active_leases);
  put_int(o, "active_leases", c.active_leases);
  put_bool(o, "running", 1);
  put_int(o, "min_pool_size", cfg->pool_min_size);
  put_int(o, "accounts_per_request", cfg->accounts_per_request);
  json_object_object_add(o, "health",
                         json_object_new_string(w2a_admin_health(c.usable, cfg->pool_min_size)));
  put_time(o, "timestamp", now);
  j->out = o;
}

/* ---- allocate / release ------------------------------------------------------------- */

static void alloc_reply_build(job *j) {
  uint64_t now = w2a_now_ms();
  json_object *accts = json_object_new_array();
  int n = 0;
  for (int i = 0; i < j->nrows; i++) {
    alloc_row *ar = &j->rows[i];
    if (ar->drop) continue;
    json_object *o = w2a_admin_account_json(&ar->row.acct, NULL, now);
    put_str(o, "id_token", ar->row.acct.id_token);
    put_time(o, "id_token_expires_at", ar->row.acct.id_token_exp_ms);
    put_str(o, "session_id", j->session);
    put_str(o, "lease_id", ar->row.id);
    put_time(o, "lease_expires_at", ar->row.expires_ms);
    json_object_array_add(accts, o);
    n++;
  }
  if (!n) {
    json_object_put(accts);
    json_object *o = new_reply(0, NULL);
    char msg[400];
    snprintf(msg, sizeof msg, "cannot allocate accounts: %s",
             j->none.reason[0] ? j->none.reason : "no account is selectable");
    json_object_object_add(o, "message", json_object_new_string(msg));
    put_str(o, "session_id", j->session);
    json_object_object_add(o, "accounts", json_object_new_array());
    put_time(o, "retry_at", j->none.retry_at_ms);
    put_time(o, "timestamp", now);
    if (j->none.retry_at_ms > now)
      snprintf(j->extra, sizeof j->extra, "Retry-After: %llu\r\n",
               (unsigned long long)((j->none.retry_at_ms - now + 999) / 1000));
    j->out = o;
    j->status = 503;
    return;
  }
  json_object *o = new_reply(1, NULL);
  char msg[128];
  snprintf(msg, sizeof msg, "allocated %d of %lld requested account(s)", n, (long long)j->count);
  json_object_object_add(o, "message", json_object_new_string(msg));
  put_str(o, "session_id", j->session);
  json_object_object_add(o, "accounts", accts);
  put_time(o, "timestamp", now);
  j->out = o;
  j->status = 200;
}

/* After refreshes: re-read the refreshed accounts' tokens; release the ones that turned
 * out invalid. */
static void db_alloc_reread(job *j, w2a_store *s) {
  uint64_t now = w2a_now_ms();
  for (int i = 0; i < j->nrows; i++) {
    alloc_row *ar = &j->rows[i];
    if (!ar->refresh) continue;
    w2a_account acct = {0};
    w2a_err e = {0};
    if (w2a_store_get(s, ar->row.account_id, W2A_STORE_SECRETS, &acct, &e) == 0 &&
        acct.state != W2A_ST_INVALID && acct.id_token && acct.id_token_exp_ms > now) {
      w2a_account_clear(&ar->row.acct);
      ar->row.acct = acct;
      continue;
    }
    w2a_account_clear(&acct);
    /* no usable token: give the lease back so the account is not held for nothing */
    w2a_store_lease_release(s, ar->row.id, ar->row.account_id, NULL, now, &e);
    ar->drop = 1;
  }
  alloc_reply_build(j);
}

static void alloc_pump(job *j);

static void alloc_refreshed(int rc, w2a_refresh_status st, const char *msg, void *ud) {
  (void)rc, (void)st, (void)msg;
  job *j = ud;
  j->running--;
  alloc_pump(j);
}

static void alloc_pump(job *j) {
  if (j->pumping) return;
  j->pumping = 1;
  while (j->next < (size_t)j->nrows) {
    alloc_row *ar = &j->rows[j->next++];
    if (!ar->refresh) continue;
    j->running++;
    w2a_pool_refresh_account(j->a->pool, ar->row.account_id, 0, alloc_refreshed, j);
  }
  j->pumping = 0;
  if (!j->running && j->next >= (size_t)j->nrows && !j->done) {
    j->done = 1;
    run_db(j, db_alloc_reread, NULL);
  }
}

static void then_alloc(job *j) {
  int any = 0;
  for (int i = 0; i < j->nrows; i++)
    any |= j->rows[i].refresh;
  if (!any) {
    alloc_reply_build(j);
    return reply(j);
  }
  j->next = 0;
  alloc_pump(j);
}

static void db_alloc(job *j, w2a_store *s) {
  const w2a_config *cfg = j->a->cfg;
  uint64_t now = w2a_now_ms();
  j->rows = calloc((size_t)j->count, sizeof *j->rows);
  w2a_lease_row *rows = calloc((size_t)j->count, sizeof *rows);
  if (!j->rows || !rows) {
    free(rows);
    return job_fail(j, 500, "out of memory");
  }
  int sel = w2a_selection_parse(cfg->selection);
  w2a_lease_req rq = {.count = (int)j->count,
                      .holder = j->session,
                      .now_ms = now,
                      .ttl_ms = (uint64_t)j->num,
                      .selection = sel < 0 ? W2A_SEL_LRU : (w2a_selection)sel,
                      .want_secrets = 1};
  int n = 0;
  w2a_err e = {0};
  int rc = w2a_store_lease_acquire(s, &rq, rows, &n, &j->none, &e);
  if (rc) {
    free(rows);
    return job_store_fail(j, rc, &e);
  }
  uint64_t margin = (uint64_t)cfg->refresh_margin_ms;
  for (int i = 0; i < n; i++) {
    j->rows[i].row = rows[i]; /* moves the secrets */
    w2a_account *ac = &j->rows[i].row.acct;
    if (ac->refresh_token) { /* never needed past this point */
      w2a_account tmp = {.refresh_token = ac->refresh_token};
      w2a_account_clear(&tmp);
      ac->refresh_token = NULL;
    }
    j->rows[i].refresh = !ac->id_token || ac->id_token_exp_ms <= now + margin;
  }
  j->nrows = n;
  free(rows);
}

static void db_release(job *j, w2a_store *s) {
  int n = 0;
  w2a_err e = {0};
  int rc = w2a_store_release_holder(s, j->session, w2a_now_ms(), &n, &e);
  if (rc) return job_store_fail(j, rc, &e);
  if (!n) return job_fail(j, 404, "session_id \"%s\" holds no leases", j->session);
  char msg[160];
  snprintf(msg, sizeof msg, "released %d account(s) of session %.100s", n, j->session);
  j->out = new_reply(1, msg);
  put_int(j->out, "released", n);
}

/* ---- single-account routes -------------------------------------------------------------- */

static void db_get(job *j, w2a_store *s) {
  w2a_account a;
  if (find_account(j, s, 0, &a)) return;
  char why[256] = "";
  w2a_err e = {0};
  uint64_t now = w2a_now_ms();
  const char *w = w2a_store_why_not(s, a.id, now, why, sizeof why, &e) == 0 ? why : NULL;
  j->out = w2a_admin_account_json(&a, w, now);
  w2a_account_clear(&a);
}

static void db_delete(job *j, w2a_store *s) {
  w2a_account a;
  if (find_account(j, s, 0, &a)) return;
  w2a_err e = {0};
  int rc = w2a_store_delete(s, a.id, &e);
  if (rc) return job_store_fail(j, rc, &e);
  char msg[400];
  snprintf(msg, sizeof msg, "account %s deleted", a.email);
  j->out = new_reply(1, msg);
}

static void db_set_state(job *j, w2a_store *s) {
  w2a_account a;
  if (find_account(j, s, 0, &a)) return;
  uint64_t now = w2a_now_ms(), until = 0;
  const char *reason = j->text[0] ? j->text : NULL;
  if (j->state == W2A_ST_QUOTA) {
    until = a.quota.reset_ms > now ? a.quota.reset_ms : now + QUOTA_FALLBACK_MS;
    if (!reason) reason = "marked quota exhausted through the admin API";
  } else if (j->state == W2A_ST_DISABLED && !reason) {
    reason = "disabled by the operator";
  }
  w2a_err e = {0};
  int rc = w2a_store_set_state(s, a.id, (w2a_acct_state)j->state, reason, until, now, &e);
  if (rc) return job_store_fail(j, rc, &e);
  char msg[400];
  snprintf(msg, sizeof msg, "account %s is now %s", a.email,
           w2a_acct_state_name((w2a_acct_state)j->state));
  j->out = new_reply(1, msg);
  put_str(j->out, "status", w2a_acct_state_name((w2a_acct_state)j->state));
  if (until) put_time(j->out, "until", until);
}

static void db_quota_status(job *j, w2a_store *s) {
  w2a_account a;
  if (find_account(j, s, 0, &a)) return;
  uint64_t now = w2a_now_ms();
  int exhausted = a.state == W2A_ST_QUOTA;
  uint64_t reset = exhausted && a.state_until_ms ? a.state_until_ms : a.quota.reset_ms;
  json_object *o = json_object_new_object();
  put_str(o, "email", a.email);
  put_str(o, "status", w2a_acct_state_name(a.state));
  put_bool(o, "is_exhausted", exhausted);
  /* the store keeps no "exhausted since" time; the last error is when it was seen */
  put_time(o, "exhausted_at", exhausted ? a.last_error_ms : 0);
  put_time(o, "reset_at", reset);
  if (reset > now)
    json_object_object_add(o, "days_until_reset",
                           json_object_new_double((double)((reset - now) / 36000) / 2400.0));
  else
    json_object_object_add(o, "days_until_reset", reset ? json_object_new_int(0) : NULL);
  json_object *full = w2a_admin_account_json(&a, NULL, now);
  json_object *q = NULL;
  if (json_object_object_get_ex(full, "quota", &q))
    json_object_object_add(o, "quota", json_object_get(q));
  json_object_put(full);
  j->out = o;
  w2a_account_clear(&a);
}

/* ---- list / export ---------------------------------------------------------------------- */

typedef struct list_ctx {
  w2a_account *accts;
  size_t n, cap;
  int64_t last_id;
  int more;
  int secrets;
  int64_t limit;
} list_ctx;

static int list_cb(const w2a_account *a, void *ud) {
  list_ctx *c = ud;
  if ((int64_t)c->n >= c->limit) {
    c->more = 1;
    return 1;
  }
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 64;
    w2a_account *p = realloc(c->accts, nc * sizeof *p);
    if (!p) return -1;
    c->accts = p;
    c->cap = nc;
  }
  w2a_account *d = &c->accts[c->n++];
  *d = *a;
  d->id_token = NULL;
  d->refresh_token = c->secrets && a->refresh_token ? strdup(a->refresh_token) : NULL;
  c->last_id = a->id;
  return 0;
}

static void list_free(list_ctx *c) {
  for (size_t i = 0; i < c->n; i++)
    w2a_account_clear(&c->accts[i]);
  free(c->accts);
}

/* j->state: filter (-1 any); j->limit, j->after_id */
static int collect(job *j, w2a_store *s, int secrets, list_ctx *c) {
  memset(c, 0, sizeof *c);
  c->limit = j->limit;
  c->secrets = secrets;
  w2a_store_filter f = {.state = j->state,
                        .after_id = j->after_id,
                        .limit = j->limit + 1,
                        .flags = secrets ? W2A_STORE_SECRETS : 0};
  w2a_err e = {0};
  int rc = w2a_store_list(s, &f, list_cb, c, &e);
  if (rc < 0) {
    list_free(c);
    job_store_fail(j, rc, &e);
    return -1;
  }
  return 0;
}

static void db_list(job *j, w2a_store *s) {
  list_ctx c;
  if (collect(j, s, 0, &c)) return;
  uint64_t now = w2a_now_ms();
  json_object *arr = json_object_new_array();
  for (size_t i = 0; i < c.n; i++) {
    char why[256] = "";
    w2a_err e = {0};
    const char *w = w2a_store_why_not(s, c.accts[i].id, now, why, sizeof why, &e) == 0 ? why : NULL;
    json_object_array_add(arr, w2a_admin_account_json(&c.accts[i], w, now));
  }
  json_object *o = new_reply(1, NULL);
  put_int(o, "count", (int64_t)c.n);
  json_object_object_add(o, "accounts", arr);
  if (c.more)
    put_int(o, "next_after_id", c.last_id);
  else
    json_object_object_add(o, "next_after_id", NULL);
  j->out = o;
  list_free(&c);
}

static void db_export(job *j, w2a_store *s) {
  list_ctx c;
  j->limit = INT64_MAX - 1;
  if (collect(j, s, j->flag, &c)) return;
  w2a_buf b;
  w2a_buf_init(&b, 0);
  int jsonl = j->flag2;
  if (!jsonl) w2a_buf_puts(&b, "[");
  for (size_t i = 0; i < c.n; i++) {
    json_object *o = w2a_admin_export_json(&c.accts[i], j->flag ? W2A_ADMIN_JSON_SECRETS : 0);
    if (!jsonl && i)
      w2a_buf_puts(&b, ",\n");
    else if (!jsonl)
      w2a_buf_puts(&b, "\n");
    w2a_buf_puts(&b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    if (jsonl) w2a_buf_puts(&b, "\n");
    json_object_put(o);
  }
  if (!jsonl) w2a_buf_puts(&b, c.n ? "\n]\n" : "]\n");
  list_free(&c);
  j->raw = w2a_buf_steal(&b, &j->raw_len);
  if (!j->raw) {
    j->raw = strdup(jsonl ? "" : "[]\n");
    j->raw_len = strlen(j->raw);
  }
  j->ctype = jsonl ? "application/x-ndjson" : "application/json";
}

/* ---- add / import -------------------------------------------------------------------- */

static void then_add_verified(int rc, w2a_refresh_status st, const char *msg, void *ud);

static void db_add_undo(job *j, w2a_store *s) {
  w2a_err e = {0};
  w2a_store_delete(s, j->acct_id, &e);
  job_fail(j, 422, "\"refresh_token\" was rejected by Warp: %s", j->text);
}

static void db_add_show(job *j, w2a_store *s) {
  w2a_account a = {0};
  w2a_err e = {0};
  int rc = w2a_store_get(s, j->acct_id, 0, &a, &e);
  if (rc) return job_store_fail(j, rc, &e);
  char why[256] = "";
  uint64_t now = w2a_now_ms();
  const char *w = w2a_store_why_not(s, a.id, now, why, sizeof why, &e) == 0 ? why : NULL;
  json_object *o = new_reply(
      1, j->flag ? (j->flag2 ? "account added and verified" : "account added; verification failed")
                 : "account added (not verified)");
  if (j->flag && !j->flag2) put_str(o, "verify_error", j->text);
  json_object_object_add(o, "account", w2a_admin_account_json(&a, w, now));
  j->out = o;
  j->status = 201;
  w2a_account_clear(&a);
}

static void then_add(job *j) {
  if (!j->flag) return run_db(j, db_add_show, NULL);
  w2a_pool_refresh_account(j->a->pool, j->acct_id, 0, then_add_verified, j);
}

static void then_add_verified(int rc, w2a_refresh_status st, const char *msg, void *ud) {
  job *j = ud;
  snprintf(j->text, sizeof j->text, "%s",
           msg && *msg                 ? msg
           : st == W2A_REFRESH_INVALID ? "the token exchange was refused"
                                       : w2a_strerror(rc ? rc : W2A_EIO));
  if (st == W2A_REFRESH_INVALID) return run_db(j, db_add_undo, NULL);
  j->flag2 = st == W2A_REFRESH_DONE || st == W2A_REFRESH_SKIPPED;
  run_db(j, db_add_show, NULL);
}

static void db_add(job *j, w2a_store *s) {
  json_object *in = j->in;
  w2a_account_new n = {0};
  json_object *v;
  n.email = j->email;
  if (json_object_object_get_ex(in, "refresh_token", &v))
    n.refresh_token = json_object_get_string(v);
  if (json_object_object_get_ex(in, "id_token", &v) && v) n.id_token = json_object_get_string(v);
  if (json_object_object_get_ex(in, "uid", &v) && v) n.uid = json_object_get_string(v);
  if (json_object_object_get_ex(in, "label", &v) && v) n.label = json_object_get_string(v);
  if (json_object_object_get_ex(in, "weight", &v) && v) n.weight = json_object_get_int(v);
  if (json_object_object_get_ex(in, "cap", &v) && v) n.cap = json_object_get_int(v);
  w2a_err e = {0};
  int rc = w2a_store_add(s, &n, w2a_now_ms(), &j->acct_id, &e);
  if (rc == W2A_ESTATE) return job_fail(j, 409, "account \"%s\" already exists", j->email);
  if (rc) return job_store_fail(j, rc, &e);
}

static void db_import(job *j, w2a_store *s) {
  w2a_admin_import im;
  w2a_err e = {0};
  int rc = w2a_admin_import_parse(j->body, j->body_len, &im, &e);
  if (rc) return job_fail(j, rc == W2A_ENOMEM ? 500 : 400, "%s", e.msg);
  w2a_import_result *res = calloc(im.nrows ? im.nrows : 1, sizeof *res);
  if (!res) {
    w2a_admin_import_free(&im);
    return job_fail(j, 500, "out of memory");
  }
  if (im.nrows) {
    rc = w2a_store_import(s, im.rows, im.nrows, (w2a_import_mode)j->flag, w2a_now_ms(), res, &e);
    if (rc) {
      free(res);
      w2a_admin_import_free(&im);
      return job_store_fail(j, rc, &e);
    }
  }
  int64_t cnt[4] = {0};
  json_object *errs = json_object_new_array();
  for (size_t i = 0; i < im.nerrs; i++) {
    json_object *eo = json_object_new_object();
    put_int(eo, im.is_array ? "item" : "line", im.errs[i].line);
    put_str(eo, "error", im.errs[i].msg);
    json_object_array_add(errs, eo);
  }
  for (size_t i = 0; i < im.nrows; i++) {
    cnt[res[i]]++;
    if (res[i] == W2A_IMPORTED_INVALID) {
      json_object *eo = json_object_new_object();
      put_int(eo, im.is_array ? "item" : "line", im.row_line[i]);
      put_str(eo, "error", "the store refused the record");
      json_object_array_add(errs, eo);
    }
  }
  int64_t nerr = (int64_t)json_object_array_length(errs);
  char msg[200];
  snprintf(msg, sizeof msg,
           "%lld imported, %lld updated, %lld skipped (already present), %lld invalid",
           (long long)cnt[W2A_IMPORTED_NEW], (long long)cnt[W2A_IMPORTED_UPDATED],
           (long long)cnt[W2A_IMPORTED_SKIPPED], (long long)nerr);
  json_object *o = new_reply(nerr == 0, msg);
  put_int(o, "imported", cnt[W2A_IMPORTED_NEW]);
  put_int(o, "updated", cnt[W2A_IMPORTED_UPDATED]);
  put_int(o, "skipped", cnt[W2A_IMPORTED_SKIPPED]);
  put_int(o, "invalid", nerr);
  json_object_object_add(o, "errors", errs);
  j->out = o;
  if (nerr && !im.nrows) {
    /* every record bad: a 400, keeping the per-line errors in the body */
    j->status = 400;
    put_str(o, "error", "no valid record in the input");
    put_time(o, "timestamp", w2a_now_ms());
  }
  free(res);
  w2a_admin_import_free(&im);
}

/* ---- refresh-tokens ---------------------------------------------------------------------- */

static void db_refresh_targets(job *j, w2a_store *s) {
  if (j->email[0]) {
    w2a_account a;
    if (find_account(j, s, 0, &a)) return;
    j->items = calloc(1, sizeof *j->items);
    if (!j->items) return job_fail(j, 500, "out of memory");
    j->items[0].id = a.id;
    snprintf(j->items[0].email, sizeof j->items[0].email, "%s", a.email);
    j->nitems = 1;
    return;
  }
  list_ctx c;
  j->state = -1;
  j->limit = INT64_MAX - 1;
  if (collect(j, s, 0, &c)) return;
  j->items = calloc(c.n ? c.n : 1, sizeof *j->items);
  if (!j->items) {
    list_free(&c);
    return job_fail(j, 500, "out of memory");
  }
  for (size_t i = 0; i < c.n; i++) {
    /* the operator parked these; a refresh would not make them selectable */
    if (c.accts[i].state == W2A_ST_DISABLED) continue;
    refresh_item *it = &j->items[j->nitems++];
    it->id = c.accts[i].id;
    snprintf(it->email, sizeof it->email, "%s", c.accts[i].email);
  }
  list_free(&c);
}

static void refresh_finish(job *j) {
  int64_t ok = 0, failed = 0, skipped = 0;
  json_object *details = json_object_new_array();
  for (size_t i = 0; i < j->nitems; i++) {
    refresh_item *it = &j->items[i];
    if (!strcmp(it->status, "refreshed"))
      ok++;
    else if (!strcmp(it->status, "skipped"))
      skipped++;
    else
      failed++;
    json_object *d = json_object_new_object();
    put_str(d, "email", it->email);
    put_str(d, "status", it->status);
    json_object_object_add(d, "message", json_object_new_string(it->msg));
    json_object_array_add(details, d);
  }
  json_object *o = new_reply(ok > 0 || (failed == 0 && j->nitems > 0), NULL);
  char msg[160];
  snprintf(msg, sizeof msg, "%lld refreshed, %lld skipped, %lld failed", (long long)ok,
           (long long)skipped, (long long)failed);
  json_object_object_add(o, "message", json_object_new_string(msg));
  json_object *r = json_object_new_object();
  put_int(r, "success_count", ok);
  put_int(r, "failed_count", failed);
  put_int(r, "skipped_count", skipped);
  json_object_object_add(r, "details", details);
  json_object_object_add(o, "result", r);
  j->out = o;
  j->status = 200;
  reply(j);
}

static void refresh_pump(job *j);

typedef struct refresh_call {
  job *j;
  size_t idx;
} refresh_call;

static void refresh_done(int rc, w2a_refresh_status st, const char *msg, void *ud) {
  refresh_call *rcall = ud;
  job *j = rcall->j;
  refresh_item *it = &j->items[rcall->idx];
  free(rcall);
  switch (st) {
  case W2A_REFRESH_DONE: it->status = "refreshed"; break;
  case W2A_REFRESH_SKIPPED: it->status = "skipped"; break;
  case W2A_REFRESH_INVALID: it->status = "invalid"; break;
  default: it->status = rc ? "error" : "failed"; break;
  }
  snprintf(it->msg, sizeof it->msg, "%s",
           msg && *msg                 ? msg
           : st == W2A_REFRESH_DONE    ? "token refreshed"
           : st == W2A_REFRESH_SKIPPED ? "token still fresh; use force to refresh anyway"
                                       : w2a_strerror(rc));
  j->running--;
  j->done++;
  refresh_pump(j);
}

static void refresh_pump(job *j) {
  if (j->pumping) return;
  j->pumping = 1;
  while (j->next < j->nitems && j->running < REFRESH_PARALLEL) {
    refresh_call *rcall = malloc(sizeof *rcall);
    if (!rcall) {
      refresh_item *it = &j->items[j->next++];
      it->status = "error";
      snprintf(it->msg, sizeof it->msg, "out of memory");
      j->done++;
      continue;
    }
    rcall->j = j;
    rcall->idx = j->next++;
    j->running++;
    w2a_pool_refresh_account(j->a->pool, j->items[rcall->idx].id, j->flag, refresh_done, rcall);
  }
  j->pumping = 0;
  if (j->done == j->nitems && !j->running) refresh_finish(j);
}

static void then_refresh(job *j) {
  if (j->flag)
    W2A_WARN("admin: forced token refresh of %s (bypasses the minimum refresh interval)",
             j->email[0] ? j->email : "all accounts");
  j->next = j->done = j->running = 0;
  if (!j->nitems) return refresh_finish(j);
  refresh_pump(j);
}

/* ---- replenish / pool refresh --------------------------------------------------------- */

static void db_readmit(job *j, w2a_store *s) {
  uint64_t now = w2a_now_ms();
  w2a_err e = {0};
  int reclaimed = 0, readmitted = 0, rc;
  if (j->flag2 && (rc = w2a_store_reclaim(s, now, &reclaimed, &e)))
    return job_store_fail(j, rc, &e);
  if ((rc = w2a_store_readmit(s, now, &readmitted, &e))) return job_store_fail(j, rc, &e);
  j->after_id = reclaimed;
  j->num = readmitted;
  /* replenish: still-exhausted accounts get their quota checked again */
  if (!j->flag2) {
    list_ctx c;
    j->state = W2A_ST_QUOTA;
    j->after_id = 0;
    j->limit = j->count;
    if (collect(j, s, 0, &c)) return;
    j->items = calloc(c.n ? c.n : 1, sizeof *j->items);
    if (!j->items) {
      list_free(&c);
      return job_fail(j, 500, "out of memory");
    }
    for (size_t i = 0; i < c.n; i++) {
      j->items[j->nitems].id = c.accts[i].id;
      snprintf(j->items[j->nitems].email, W2A_EMAIL_MAX, "%s", c.accts[i].email);
      j->nitems++;
    }
    list_free(&c);
    j->after_id = reclaimed;
  }
}

static void db_after_replenish(job *j, w2a_store *s) {
  w2a_store_stats c;
  w2a_err e = {0};
  int rc = w2a_store_counts(s, w2a_now_ms(), &c, &e);
  if (rc) return job_store_fail(j, rc, &e);
  /* accounts the quota check brought back */
  int readmitted = 0;
  w2a_store_readmit(s, w2a_now_ms(), &readmitted, &e);
  j->num += readmitted;
  if (readmitted) w2a_store_counts(s, w2a_now_ms(), &c, &e);
  char msg[200];
  json_object *o;
  if (j->flag2) {
    snprintf(msg, sizeof msg, "reclaimed %lld expired lease(s), re-admitted %lld account(s)",
             (long long)j->after_id, (long long)j->num);
    o = new_reply(1, msg);
    put_int(o, "reclaimed_leases", j->after_id);
  } else {
    snprintf(msg, sizeof msg,
             "re-admitted %lld account(s); re-checked the quota of %zu; %lld usable now "
             "(replenish never creates accounts)",
             (long long)j->num, j->nitems, (long long)c.usable);
    o = new_reply(1, msg);
    put_int(o, "quota_checked", (int64_t)j->nitems);
  }
  put_int(o, "readmitted", j->num);
  put_int(o, "available_count", c.by_state[W2A_ST_AVAILABLE]);
  put_int(o, "usable_count", c.usable);
  json_object_object_add(
      o, "health", json_object_new_string(w2a_admin_health(c.usable, j->a->cfg->pool_min_size)));
  j->out = o;
}

static void quota_pump(job *j);

static void quota_done(int rc, void *ud) {
  (void)rc;
  job *j = ud;
  j->running--;
  j->done++;
  quota_pump(j);
}

static void quota_pump(job *j) {
  if (j->pumping) return;
  j->pumping = 1;
  while (j->next < j->nitems && j->running < REFRESH_PARALLEL) {
    j->running++;
    w2a_pool_poll_quota(j->a->pool, j->items[j->next++].id, quota_done, j);
  }
  j->pumping = 0;
  if (j->done == j->nitems && !j->running && j->status != 299) {
    j->status = 299; /* marks "finishing" so a late re-entry cannot run this twice */
    run_db(j, db_after_replenish, NULL);
  }
}

static void then_readmit(job *j) {
  j->next = j->done = j->running = 0;
  quota_pump(j);
}

/* ---- routing -------------------------------------------------------------------------- */

static int parse_body(w2a_http_req *r, json_object **out, vmsg *m) {
  *out = NULL;
  size_t i = 0;
  while (i < r->body_len && strchr(" \t\r\n", r->body[i]))
    i++;
  if (i == r->body_len) {
    *out = json_object_new_object(); /* an empty body is an empty object */
    return 0;
  }
  json_tokener *tok = utf8_tokener();
  if (!tok) return bad(m, "out of memory");
  json_object *o = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
  enum json_tokener_error je = json_tokener_get_error(tok);
  size_t used = tok->char_offset;
  json_tokener_free(tok);
  if (!o || je != json_tokener_success) {
    json_object_put(o);
    if (!o && je == json_tokener_success) return bad(m, "the request body must be a JSON object");
    return bad(m, "malformed JSON body at byte %zu: %s", used, json_tokener_error_desc(je));
  }
  while (used < r->body_len && strchr(" \t\r\n", r->body[used]))
    used++;
  if (used < r->body_len) {
    json_object_put(o);
    return bad(m, "malformed JSON body: unexpected data at byte %zu", used);
  }
  if (!json_object_is_type(o, json_type_object)) {
    json_object_put(o);
    return bad(m, "the request body must be a JSON object");
  }
  *out = o;
  return 0;
}

static int pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int hi, lo;
      char h = s[i + 1], l = s[i + 2];
      hi = h >= '0' && h <= '9'                 ? h - '0'
           : (h | 32) >= 'a' && (h | 32) <= 'f' ? (h | 32) - 'a' + 10
                                                : -1;
      lo = l >= '0' && l <= '9'                 ? l - '0'
           : (l | 32) >= 'a' && (l | 32) <= 'f' ? (l | 32) - 'a' + 10
                                                : -1;
      if (hi < 0 || lo < 0) return -1;
      c = (char)(hi * 16 + lo);
      i += 2;
      if (!c) return -1;
    }
    if (o + 1 >= cap) return -1;
    out[o++] = c;
  }
  out[o] = 0;
  return 0;
}

static int query_bool(w2a_http_req *r, const char *name, int *out, vmsg *m) {
  char v[16];
  if (!w2a_http_req_query(r, name, v, sizeof v)) return 0;
  if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
    *out = 1;
  else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
    *out = 0;
  else
    return bad(m, "query parameter \"%s\" must be true or false", name);
  return 1;
}

static int query_int(w2a_http_req *r, const char *name, int64_t lo, int64_t hi, int64_t *out,
                     vmsg *m) {
  char v[32];
  if (!w2a_http_req_query(r, name, v, sizeof v)) return 0;
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (!*v || *end || errno || x < lo || x > hi)
    return bad(m, "query parameter \"%s\" must be an integer from %lld to %lld", name,
               (long long)lo, (long long)hi);
  *out = x;
  return 1;
}

static int query_state(w2a_http_req *r, int *out, vmsg *m) {
  char v[64];
  *out = -1;
  if (!w2a_http_req_query(r, "state", v, sizeof v) && !w2a_http_req_query(r, "status", v, sizeof v))
    return 0;
  if (!*v || !strcmp(v, "all")) return 0;
  int st = w2a_acct_state_parse(v);
  if (st < 0)
    return bad(m, "query parameter \"state\" must be one of available, cooling, quota_exhausted, "
                  "invalid, blocked, disabled, all");
  *out = st;
  return 1;
}

static const char *allow_for(const char *path);

static int authorized(w2a_admin *a, w2a_http_req *r, const char **why) {
  const char *tok = a->cfg->admin_token;
  if (!tok || !*tok) return 1;
  const char *h = w2a_http_req_header(r, "authorization");
  if (!h) {
    *why = "missing admin token: send Authorization: Bearer <ADMIN_TOKEN>";
    return 0;
  }
  if (strncasecmp(h, "Bearer ", 7)) {
    *why = "the Authorization header must be \"Bearer <ADMIN_TOKEN>\"";
    return 0;
  }
  const char *t = h + 7;
  while (*t == ' ')
    t++;
  if (!w2a_ct_equal(t, strlen(t), tok, strlen(tok))) {
    *why = "invalid admin token";
    return 0;
  }
  return 1;
}

/* Handle a route whose body is a JSON object with the given fields. */
#define BODY(...)                                                                                  \
  do {                                                                                             \
    static const char *const allowed_[] = {__VA_ARGS__, NULL};                                     \
    if (parse_body(r, &in, &m) || check_known(in, allowed_, &m)) goto bad_request;                 \
  } while (0)

static void handle(w2a_admin *a, w2a_http_req *r) {
  const char *p = r->path, *meth = r->method;
  int get = !strcmp(meth, "GET"), post = !strcmp(meth, "POST"), del = !strcmp(meth, "DELETE");
  json_object *in = NULL;
  vmsg m = {{0}};
  job *j = NULL;

  if (!strcmp(p, "/health")) {
    if (!get && strcmp(meth, "HEAD")) goto not_allowed;
    const w2a_store_stats *c = w2a_pool_cached_counts(a->pool);
    long usable = c ? (long)c->usable : w2a_pool_usable_count(a->pool);
    json_object *o = json_object_new_object();
    put_str(o, "status", "healthy");
    put_time(o, "timestamp", w2a_now_ms());
    put_str(o, "pool_health", w2a_admin_health(usable, (long)a->cfg->pool_min_size));
    put_int(o, "usable", usable);
    respond_json(r, 200, o, NULL);
    json_object_put(o);
    return;
  }
  const char *why = NULL;
  if (!authorized(a, r, &why)) {
    respond_error(r, 401, "WWW-Authenticate: Bearer realm=\"warp2api-admin\"\r\n", "%s", why);
    return;
  }
  if (strncmp(p, "/api/", 5)) goto not_found;
  if (a->stopping) {
    respond_error(r, 503, NULL, "the pool service is shutting down");
    return;
  }
  j = job_new(a, r);
  if (!j) {
    respond_error(r, 500, NULL, "out of memory");
    return;
  }

  if (!strcmp(p, "/api/accounts/status")) {
    if (!get) goto not_allowed;
    return run_db(j, db_status, NULL);
  }
  if (!strcmp(p, "/api/accounts/allocate")) {
    if (!post) goto not_allowed;
    BODY("session_id", "count", "ttl_seconds");
    const char *sid;
    int64_t ttl = DEFAULT_SESSION_MS / 1000;
    j->count = a->cfg->accounts_per_request;
    if (j->count > MAX_COUNT) j->count = MAX_COUNT;
    if (get_str(in, "session_id", 0, SESSION_MAX, &sid, &m) < 0 ||
        get_int(in, "count", 1, MAX_COUNT, &j->count, &m) < 0 ||
        get_int(in, "ttl_seconds", 1, MAX_SESSION_MS / 1000, &ttl, &m) < 0)
      goto bad_request;
    if (sid && (!*sid || valid_token(sid, "session_id", &m))) {
      if (!*sid) bad(&m, "\"session_id\" must not be empty");
      goto bad_request;
    }
    if (sid)
      snprintf(j->session, sizeof j->session, "%s", sid);
    else
      w2a_uuid4(j->session);
    j->num = ttl * 1000;
    json_object_put(in);
    return run_db(j, db_alloc, then_alloc);
  }
  if (!strcmp(p, "/api/accounts/release")) {
    if (!post) goto not_allowed;
    BODY("session_id");
    const char *sid;
    if (get_str(in, "session_id", 1, SESSION_MAX, &sid, &m) < 0) goto bad_request;
    snprintf(j->session, sizeof j->session, "%s", sid);
    json_object_put(in);
    return run_db(j, db_release, NULL);
  }
  if (!strcmp(p, "/api/accounts/mark_quota_exhausted")) {
    if (!post) goto not_allowed;
    BODY("email", "reason");
    const char *email, *reason;
    if (get_str(in, "email", 1, W2A_EMAIL_MAX - 1, &email, &m) < 0 ||
        get_str(in, "reason", 0, W2A_REASON_MAX - 1, &reason, &m) < 0)
      goto bad_request;
    snprintf(j->email, sizeof j->email, "%s", email);
    if (reason) snprintf(j->text, sizeof j->text, "%s", reason);
    j->state = W2A_ST_QUOTA;
    json_object_put(in);
    return run_db(j, db_set_state, NULL);
  }
  if (!strcmp(p, "/api/accounts/refresh-tokens")) {
    if (!post) goto not_allowed;
    BODY("email", "force");
    const char *email;
    if (get_str(in, "email", 0, W2A_EMAIL_MAX - 1, &email, &m) < 0 ||
        get_bool(in, "force", &j->flag, &m) < 0)
      goto bad_request;
    if (email && !*email) {
      bad(&m, "\"email\" must not be empty (omit it to refresh every account)");
      goto bad_request;
    }
    if (email) snprintf(j->email, sizeof j->email, "%s", email);
    json_object_put(in);
    return run_db(j, db_refresh_targets, then_refresh);
  }
  if (!strcmp(p, "/api/accounts/replenish")) {
    if (!post) goto not_allowed;
    BODY("count");
    j->count = REPLENISH_MAX;
    if (get_int(in, "count", 1, REPLENISH_MAX, &j->count, &m) < 0) goto bad_request;
    json_object_put(in);
    return run_db(j, db_readmit, then_readmit);
  }
  if (!strcmp(p, "/api/pool/refresh")) {
    if (!post) goto not_allowed;
    BODY("_");
    j->flag2 = 1;
    json_object_put(in);
    return run_db(j, db_readmit, then_readmit);
  }
  if (!strcmp(p, "/api/accounts/quota_status")) {
    if (!get) goto not_allowed;
    if (!w2a_http_req_query(r, "email", j->email, sizeof j->email) || !j->email[0]) {
      bad(&m, "query parameter \"email\" is required");
      goto bad_request;
    }
    return run_db(j, db_quota_status, NULL);
  }
  if (!strcmp(p, "/api/accounts/quota_exhausted")) {
    if (!get) goto not_allowed;
    j->state = W2A_ST_QUOTA;
    j->limit = LIST_MAX;
    return run_db(j, db_list, NULL);
  }
  if (!strcmp(p, "/api/accounts") || !strcmp(p, "/api/accounts/")) {
    if (get) {
      j->limit = LIST_DEFAULT;
      if (query_state(r, &j->state, &m) < 0 ||
          query_int(r, "limit", 1, LIST_MAX, &j->limit, &m) < 0 ||
          query_int(r, "after_id", 0, INT64_MAX, &j->after_id, &m) < 0)
        goto bad_request;
      return run_db(j, db_list, NULL);
    }
    if (!post) goto not_allowed;
    BODY("email", "refresh_token", "id_token", "uid", "label", "weight", "cap", "verify");
    const char *email, *rt, *s;
    int64_t x;
    j->flag = 1; /* verify */
    if (get_str(in, "email", 1, W2A_EMAIL_MAX - 1, &email, &m) < 0 ||
        valid_email(email, "email", &m) ||
        get_str(in, "refresh_token", 1, W2A_TOKEN_MAX, &rt, &m) < 0 ||
        valid_token(rt, "refresh_token", &m) ||
        get_str(in, "id_token", 0, W2A_TOKEN_MAX, &s, &m) < 0 ||
        (s && valid_token(s, "id_token", &m)) ||
        get_str(in, "uid", 0, W2A_UID_MAX - 1, &s, &m) < 0 ||
        get_str(in, "label", 0, W2A_LABEL_MAX - 1, &s, &m) < 0 ||
        get_int(in, "weight", 1, 1000, &x, &m) < 0 || get_int(in, "cap", 1, 1000, &x, &m) < 0 ||
        get_bool(in, "verify", &j->flag, &m) < 0)
      goto bad_request;
    snprintf(j->email, sizeof j->email, "%s", email);
    j->in = in;
    return run_db(j, db_add, then_add);
  }
  if (!strcmp(p, "/api/accounts/import")) {
    if (!post) goto not_allowed;
    char mode[16];
    j->flag = W2A_IMPORT_SKIP;
    if (w2a_http_req_query(r, "mode", mode, sizeof mode)) {
      if (!strcmp(mode, "update"))
        j->flag = W2A_IMPORT_UPDATE;
      else if (strcmp(mode, "skip")) {
        bad(&m, "query parameter \"mode\" must be skip or update");
        goto bad_request;
      }
    }
    j->body = w2a_strndup(r->body, r->body_len);
    j->body_len = r->body_len;
    if (!j->body) {
      job_fail(j, 500, "out of memory");
      return reply(j);
    }
    return run_db(j, db_import, NULL);
  }
  if (!strcmp(p, "/api/accounts/export")) {
    if (!get) goto not_allowed;
    char fmt[16];
    j->state = -1;
    if (w2a_http_req_query(r, "format", fmt, sizeof fmt)) {
      if (!strcmp(fmt, "jsonl"))
        j->flag2 = 1;
      else if (strcmp(fmt, "json")) {
        bad(&m, "query parameter \"format\" must be json or jsonl");
        goto bad_request;
      }
    }
    if (query_bool(r, "include_secrets", &j->flag, &m) < 0 || query_state(r, &j->state, &m) < 0)
      goto bad_request;
    if (j->flag) W2A_WARN("admin: export with refresh tokens requested by %s", r->peer);
    return run_db(j, db_export, NULL);
  }
  if (!strncmp(p, "/api/accounts/", 14)) {
    /* /api/accounts/{email}[/disable|/enable] */
    const char *e = p + 14, *slash = strchr(e, '/');
    size_t elen = slash ? (size_t)(slash - e) : strlen(e);
    const char *action = slash ? slash + 1 : "";
    if (!elen || pct_decode(e, elen, j->email, sizeof j->email)) {
      bad(&m, "the account email in the path is empty, too long or badly percent-encoded");
      goto bad_request;
    }
    if (!*action) {
      if (get) return run_db(j, db_get, NULL);
      if (del) return run_db(j, db_delete, NULL);
      goto not_allowed;
    }
    if (!strcmp(action, "disable")) {
      if (!post) goto not_allowed;
      BODY("reason");
      const char *reason;
      if (get_str(in, "reason", 0, W2A_REASON_MAX - 1, &reason, &m) < 0) goto bad_request;
      if (reason) snprintf(j->text, sizeof j->text, "%s", reason);
      j->state = W2A_ST_DISABLED;
      json_object_put(in);
      return run_db(j, db_set_state, NULL);
    }
    if (!strcmp(action, "enable")) {
      if (!post) goto not_allowed;
      BODY("_");
      j->state = W2A_ST_AVAILABLE;
      json_object_put(in);
      return run_db(j, db_set_state, NULL);
    }
    goto not_found;
  }

not_found:
  json_object_put(in);
  if (j) {
    job_fail(j, 404, "no route %s %s", meth, p);
    return reply(j);
  }
  respond_error(r, 404, NULL, "no route %s %s", meth, p);
  return;
not_allowed : {
  char extra[160];
  snprintf(extra, sizeof extra, "Allow: %s\r\n", allow_for(p));
  json_object_put(in);
  if (j) {
    snprintf(j->extra, sizeof j->extra, "%s", extra);
    job_fail(j, 405, "method %s is not allowed on %s (allowed: %s)", meth, p, allow_for(p));
    return reply(j);
  }
  respond_error(r, 405, extra, "method %s is not allowed on %s (allowed: %s)", meth, p,
                allow_for(p));
  return;
}
bad_request:
  json_object_put(in);
  job_fail(j, 400, "%s", m.text);
  reply(j);
}

static const char *allow_for(const char *p) {
  if (!strcmp(p, "/health")) return "GET, HEAD";
  if (!strcmp(p, "/api/accounts/status") || !strcmp(p, "/api/accounts/quota_status") ||
      !strcmp(p, "/api/accounts/quota_exhausted") || !strcmp(p, "/api/accounts/export"))
    return "GET";
  if (!strcmp(p, "/api/accounts") || !strcmp(p, "/api/accounts/")) return "GET, POST";
  if (!strncmp(p, "/api/accounts/", 14) && !strchr(p + 14, '/') &&
      strcmp(p, "/api/accounts/allocate") && strcmp(p, "/api/accounts/release") &&
      strcmp(p, "/api/accounts/mark_quota_exhausted") &&
      strcmp(p, "/api/accounts/refresh-tokens") && strcmp(p, "/api/accounts/replenish") &&
      strcmp(p, "/api/accounts/import"))
    return "GET, DELETE";
  return "POST";
}

void w2a_admin_handle(w2a_http_req *req, void *ud) { handle(ud, req); }

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void admin_maybe_finish_stop(w2a_admin *a) {
  if (!a->stopping || a->inflight || a->srv) return;
  void (*done)(void *) = a->done;
  void *ud = a->done_ud;
  free(a);
  if (done) done(ud);
}

int w2a_admin_new(w2a_admin **out, uv_loop_t *loop, const w2a_config *cfg, w2a_pool *pool,
                  w2a_err *err) {
  *out = NULL;
  w2a_admin *a = calloc(1, sizeof *a);
  if (!a) return w2a_errf(err, W2A_ENOMEM, "out of memory");
  a->loop = loop;
  a->cfg = cfg;
  a->pool = pool;
  *out = a;
  return 0;
}

int w2a_admin_start(w2a_admin **out, uv_loop_t *loop, const w2a_config *cfg, w2a_pool *pool,
                    w2a_err *err) {
  *out = NULL;
  const char *host = cfg->pool_host && *cfg->pool_host ? cfg->pool_host : "127.0.0.1";
  if (!w2a_admin_host_is_loopback(host) && (!cfg->admin_token || !*cfg->admin_token))
    return w2a_errf(err, W2A_EINVAL,
                    "refusing to serve the admin API on %s without ADMIN_TOKEN: set ADMIN_TOKEN "
                    "or bind POOL_SERVICE_HOST to 127.0.0.1",
                    host);
  w2a_admin *a;
  int rc = w2a_admin_new(&a, loop, cfg, pool, err);
  if (rc) return rc;
  w2a_http_limits lim = {.max_header_bytes = (size_t)cfg->max_header_bytes,
                         .max_body_bytes = (size_t)cfg->max_body_bytes};
  rc = w2a_http_server_listen(&a->srv, loop, host, (int)cfg->pool_port, &lim, w2a_admin_handle, a,
                              err);
  if (rc) {
    free(a);
    return rc;
  }
  w2a_http_server_set_error_fn(a->srv, server_error_fn);
  W2A_INFO("admin API listening on %s:%d%s", host, w2a_http_server_port(a->srv),
           cfg->admin_token && *cfg->admin_token ? " (admin token required)" : "");
  *out = a;
  return 0;
}

int w2a_admin_port(const w2a_admin *a) { return a->srv ? w2a_http_server_port(a->srv) : 0; }

static void server_gone(void *ud) {
  w2a_admin *a = ud;
  a->srv = NULL;
  admin_maybe_finish_stop(a);
}

void w2a_admin_stop(w2a_admin *a, void (*done)(void *ud), void *ud) {
  if (!a) {
    if (done) done(ud);
    return;
  }
  a->stopping = 1;
  a->done = done;
  a->done_ud = ud;
  if (a->srv)
    w2a_http_server_shutdown(a->srv, server_gone, a);
  else
    admin_maybe_finish_stop(a);
}
