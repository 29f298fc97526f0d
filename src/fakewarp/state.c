/* state.c - see state.h. */
#include "fakewarp/state.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"

#define MAX_TOKEN_BYTES 4096
#define TOKEN_CACHE 64 /* verified tokens remembered, direct-mapped by signature */

/* A token whose signature and payload were checked: what its payload says. */
struct w2a_fake_tok {
  char *tok; /* the whole token; NULL: empty slot */
  size_t len;
  char uid[64];
  int64_t exp;
};

void w2a_fake_state_init(w2a_fake_state *st) {
  memset(st, 0, sizeof *st);
  st->token_lifetime_s = 3600;
  st->default_quota = 150;
  st->default_refresh_period_s = 30 * 86400;
  st->log_cap = 200;
  w2a_random(st->key, sizeof st->key);
  st->abandoned_log = json_object_new_array();
  st->mailbox = json_object_new_array();
}

static void account_free(w2a_fake_account *a) {
  free(a->email);
  free(a->local_id);
  free(a->refresh_token);
  free(a->scenario);
  free(a->once);
  w2a_fake_log_free(&a->log);
  free(a);
}

void w2a_fake_state_reset(w2a_fake_state *st) {
  while (st->accounts) {
    w2a_fake_account *a = st->accounts;
    st->accounts = a->next;
    account_free(a);
  }
  st->naccounts = 0;
  free(st->global_scenario);
  free(st->global_once);
  st->global_scenario = st->global_once = NULL;
  st->global_once_left = 0;
  st->http_requests = st->ai_requests = st->refreshes = st->graphql = 0;
  st->streams_done = st->abandoned = st->cut = st->unauthorized = 0;
  /* streams_open is live state, not history: open streams still close later. */
  json_object_put(st->abandoned_log);
  json_object_put(st->mailbox);
  w2a_fake_log_free(&st->unknown_log);
  st->abandoned_log = json_object_new_array();
  st->mailbox = json_object_new_array();
}

void w2a_fake_state_free(w2a_fake_state *st) {
  w2a_fake_state_reset(st);
  for (int i = 0; st->tokens && i < TOKEN_CACHE; i++)
    free(st->tokens[i].tok);
  free(st->tokens);
  st->tokens = NULL;
  json_object_put(st->abandoned_log);
  json_object_put(st->mailbox);
  st->abandoned_log = st->mailbox = NULL;
}

/* Firebase uids are 28 alphanumerics; derive one from the email so tests can predict it
 * across restarts. */
static void uid_for(const char *email, char out[29]) {
  static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char h[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)email, strlen(email), h);
  for (int i = 0; i < 28; i++)
    out[i] = al[h[i] % 62];
  out[28] = 0;
}

void w2a_fake_uuid4(char out[37]) {
  static unsigned char pool[4096];
  static size_t left;
  static char hex2[256][2];
  if (!hex2[0][0])
    for (int i = 0; i < 256; i++) {
      hex2[i][0] = "0123456789abcdef"[i >> 4];
      hex2[i][1] = "0123456789abcdef"[i & 15];
    }
  if (left < 16) {
    w2a_random(pool, sizeof pool);
    left = sizeof pool;
  }
  unsigned char b[16];
  memcpy(b, pool + sizeof pool - left, 16);
  memset(pool + sizeof pool - left, 0, 16); /* an id handed out is not kept */
  left -= 16;
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  char *o = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
    memcpy(o, hex2[b[i]], 2);
    o += 2;
  }
  *o = 0;
}

char *w2a_fake_refresh_token_new(void) {
  unsigned char raw[120];
  w2a_random(raw, sizeof raw);
  char *out = malloc(6 + w2a_b64_enc_len(sizeof raw) + 1);
  if (!out) return NULL;
  memcpy(out, "AMf-vB", 6);
  w2a_b64_encode(raw, sizeof raw, out + 6, 1, 0);
  return out;
}

static int set_str(char **dst, const char *src) {
  char *c = strdup(src ? src : "");
  if (!c) return W2A_ENOMEM;
  free(*dst);
  *dst = c;
  return 0;
}

int w2a_fake_account_add(w2a_fake_state *st, const w2a_fake_account_spec *sp,
                         w2a_fake_account **out, w2a_err *err) {
  if (!sp->email || !*sp->email) return w2a_errf(err, W2A_EINVAL, "account needs an email");
  w2a_fake_account *a = w2a_fake_account_by_email(st, sp->email);
  int fresh = 0;
  if (!a) {
    a = calloc(1, sizeof *a);
    if (!a) return w2a_errf(err, W2A_ENOMEM, "out of memory");
    fresh = 1;
    char uid[29];
    uid_for(sp->email, uid);
    if (set_str(&a->email, sp->email) || set_str(&a->local_id, uid) || set_str(&a->scenario, "")) {
      account_free(a);
      return w2a_errf(err, W2A_ENOMEM, "out of memory");
    }
    a->quota_limit = st->default_quota;
    a->refresh_period_s = st->default_refresh_period_s;
    a->rotate = st->rotate_refresh;
  }
  int rc = 0;
  if (sp->refresh_token && *sp->refresh_token) {
    rc = set_str(&a->refresh_token, sp->refresh_token);
  } else if (!a->refresh_token) {
    a->refresh_token = w2a_fake_refresh_token_new();
    if (!a->refresh_token) rc = W2A_ENOMEM;
  }
  if (!rc && sp->scenario) rc = set_str(&a->scenario, sp->scenario);
  if (rc) {
    if (fresh) account_free(a);
    return w2a_errf(err, rc, "out of memory");
  }
  if (sp->quota >= 0) a->quota_limit = sp->quota;
  if (sp->refresh_period_s > 0) a->refresh_period_s = sp->refresh_period_s;
  if (sp->unlimited >= 0) a->unlimited = sp->unlimited;
  if (sp->blocked >= 0) a->blocked = sp->blocked;
  if (sp->quota_in_stream >= 0) a->quota_in_stream = sp->quota_in_stream;
  if (sp->rotate >= 0) a->rotate = sp->rotate;
  a->revoked = 0;
  if (fresh) {
    a->next_refresh_ms = w2a_now_ms() + (uint64_t)a->refresh_period_s * 1000u;
    /* Keep configuration order: append. */
    w2a_fake_account **pp = &st->accounts;
    while (*pp)
      pp = &(*pp)->next;
    *pp = a;
    st->naccounts++;
  }
  if (out) *out = a;
  return 0;
}

w2a_fake_account *w2a_fake_account_by_email(w2a_fake_state *st, const char *email) {
  for (w2a_fake_account *a = st->accounts; a; a = a->next)
    if (!strcasecmp(a->email, email)) return a;
  return NULL;
}

w2a_fake_account *w2a_fake_account_by_refresh(w2a_fake_state *st, const char *rt) {
  size_t n = strlen(rt);
  for (w2a_fake_account *a = st->accounts; a; a = a->next)
    if (w2a_ct_equal(a->refresh_token, strlen(a->refresh_token), rt, n)) return a;
  return NULL;
}

w2a_fake_account *w2a_fake_account_by_uid(w2a_fake_state *st, const char *uid) {
  for (w2a_fake_account *a = st->accounts; a; a = a->next)
    if (!strcmp(a->local_id, uid)) return a;
  return NULL;
}

int w2a_fake_account_quota_ok(w2a_fake_state *st, w2a_fake_account *a, uint64_t now_ms) {
  (void)st;
  if (now_ms >= a->next_refresh_ms) {
    a->used = 0;
    uint64_t period = (uint64_t)(a->refresh_period_s > 0 ? a->refresh_period_s : 1) * 1000u;
    /* Windows are aligned on the first one, like a billing cycle. */
    uint64_t behind = (now_ms - a->next_refresh_ms) / period + 1;
    a->next_refresh_ms += behind * period;
  }
  return a->unlimited || a->used < a->quota_limit;
}

void w2a_fake_account_log(w2a_fake_state *st, w2a_fake_account *a, const w2a_fake_log_rec *rec) {
  w2a_fake_log_add(a ? &a->log : &st->unknown_log, st->log_cap, rec);
}

json_object *w2a_fake_account_json(const w2a_fake_account *a) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "email", json_object_new_string(a->email));
  json_object_object_add(o, "uid", json_object_new_string(a->local_id));
  json_object_object_add(o, "refresh_token", json_object_new_string(a->refresh_token));
  json_object_object_add(o, "scenario", json_object_new_string(a->scenario));
  json_object_object_add(o, "quota", json_object_new_int64(a->quota_limit));
  json_object_object_add(o, "used", json_object_new_int64(a->used));
  json_object_object_add(o, "unlimited", json_object_new_boolean(a->unlimited));
  json_object_object_add(o, "next_refresh_ms", json_object_new_uint64(a->next_refresh_ms));
  json_object_object_add(o, "refresh_period_s", json_object_new_int64(a->refresh_period_s));
  json_object_object_add(o, "blocked", json_object_new_boolean(a->blocked));
  json_object_object_add(o, "revoked", json_object_new_boolean(a->revoked));
  json_object_object_add(o, "rotate", json_object_new_boolean(a->rotate));
  json_object_object_add(o, "quota_in_stream", json_object_new_boolean(a->quota_in_stream));
  json_object_object_add(o, "ai_requests", json_object_new_uint64(a->ai_requests));
  json_object_object_add(o, "served", json_object_new_uint64(a->served));
  json_object_object_add(o, "refreshes", json_object_new_uint64(a->refreshes));
  json_object_object_add(o, "graphql", json_object_new_uint64(a->graphql));
  json_object_object_add(o, "streams_open", json_object_new_uint64(a->streams_open));
  json_object_object_add(o, "streams_done", json_object_new_uint64(a->streams_done));
  json_object_object_add(o, "abandoned", json_object_new_uint64(a->abandoned));
  json_object_object_add(o, "cut", json_object_new_uint64(a->cut));
  return o;
}

/* ---- ID tokens ---------------------------------------------------------------------- */

static size_t b64url(const void *p, size_t n, char *out) { return w2a_b64_encode(p, n, out, 1, 0); }

char *w2a_fake_token_mint(w2a_fake_state *st, const w2a_fake_account *a, int64_t *exp_out) {
  static const char hdr[] = "{\"alg\":\"HS256\",\"kid\":\"fakewarp\",\"typ\":\"JWT\"}";
  int64_t now = (int64_t)(w2a_now_ms() / 1000u);
  int64_t exp = now + st->token_lifetime_s;
  char payload[1024];
  int pl = snprintf(payload, sizeof payload,
                    "{\"iss\":\"https://securetoken.google.com/" W2A_FAKE_PROJECT
                    "\",\"aud\":\"" W2A_FAKE_PROJECT "\",\"auth_time\":%lld,\"user_id\":\"%s\","
                    "\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"email\":\"%s\","
                    "\"email_verified\":true,\"firebase\":{\"identities\":{\"email\":[\"%s\"]},"
                    "\"sign_in_provider\":\"password\"}}",
                    (long long)now, a->local_id, a->local_id, (long long)now, (long long)exp,
                    a->email, a->email);
  if (pl < 0 || (size_t)pl >= sizeof payload) return NULL;
  size_t cap = w2a_b64_enc_len(sizeof hdr) + w2a_b64_enc_len((size_t)pl) + 64;
  char *tok = malloc(cap);
  if (!tok) return NULL;
  size_t o = b64url(hdr, sizeof hdr - 1, tok);
  tok[o++] = '.';
  o += b64url(payload, (size_t)pl, tok + o);
  unsigned char mac[32];
  unsigned int ml = 0;
  HMAC(EVP_sha256(), st->key, sizeof st->key, (const unsigned char *)tok, o, mac, &ml);
  tok[o++] = '.';
  o += b64url(mac, ml, tok + o);
  tok[o] = 0;
  if (exp_out) *exp_out = exp;
  return tok;
}

/* Slot of a token by its signature (the part after the last '.'). */
static size_t tok_slot(const char *sig, size_t n) {
  uint64_t h = 1469598103934665603u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)sig[i]) * 1099511628211u;
  return (size_t)(h % TOKEN_CACHE);
}

/* The account and expiry of a token known to be ours. */
static int tok_result(w2a_fake_state *st, const char *uid, int64_t e, w2a_fake_account **out,
                      int64_t *exp_out) {
  w2a_fake_account *a = w2a_fake_account_by_uid(st, uid);
  if (exp_out) *exp_out = e;
  if (!a) return W2A_EAUTH;
  *out = a;
  return (int64_t)(w2a_now_ms() / 1000u) >= e ? W2A_ESTATE : 0;
}

int w2a_fake_token_check(w2a_fake_state *st, const char *tok, w2a_fake_account **out,
                         int64_t *exp_out) {
  size_t n = strlen(tok);
  if (n == 0 || n > MAX_TOKEN_BYTES) return W2A_EAUTH;
  const char *d1 = strchr(tok, '.');
  const char *d2 = d1 ? strrchr(tok, '.') : NULL;
  if (!d1 || d2 == d1) return W2A_EAUTH;
  size_t sl = n - (size_t)(d2 + 1 - tok);
  if (sl > 60) return W2A_EAUTH;
  size_t slot = tok_slot(d2 + 1, sl);
  struct w2a_fake_tok *c = st->tokens ? &st->tokens[slot] : NULL;
  if (c && c->tok && c->len == n && !memcmp(c->tok, tok, n))
    return tok_result(st, c->uid, c->exp, out, exp_out);
  unsigned char mac[32], got[64];
  unsigned int ml = 0;
  HMAC(EVP_sha256(), st->key, sizeof st->key, (const unsigned char *)tok, (size_t)(d2 - tok), mac,
       &ml);
  size_t bad;
  long gl = w2a_b64_decode(d2 + 1, sl, got, &bad);
  if (gl < 0 || !w2a_ct_equal(mac, ml, got, (size_t)gl)) return W2A_EAUTH;
  size_t pl = (size_t)(d2 - d1 - 1);
  unsigned char *payload = malloc(w2a_b64_dec_max(pl) + 1);
  if (!payload) return W2A_ENOMEM;
  long dl = w2a_b64_decode(d1 + 1, pl, payload, &bad);
  int rc = W2A_EAUTH;
  json_object *j = NULL;
  if (dl >= 0) {
    payload[dl] = 0;
    j = json_tokener_parse((const char *)payload);
  }
  json_object *uid, *exp;
  if (j && json_object_object_get_ex(j, "user_id", &uid) &&
      json_object_object_get_ex(j, "exp", &exp)) {
    const char *u = json_object_get_string(uid);
    int64_t e = json_object_get_int64(exp);
    rc = tok_result(st, u, e, out, exp_out);
    if (!st->tokens) st->tokens = calloc(TOKEN_CACHE, sizeof *st->tokens);
    char *copy = st->tokens && strlen(u) < sizeof c->uid ? malloc(n + 1) : NULL;
    if (copy) {
      c = &st->tokens[slot];
      free(c->tok);
      memcpy(copy, tok, n + 1);
      c->tok = copy;
      c->len = n;
      strcpy(c->uid, u);
      c->exp = e;
    }
  }
  json_object_put(j);
  free(payload);
  return rc;
}
