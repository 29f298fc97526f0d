/* test_store.c - the SQLite account store: accounts, secrets, states, leases, selection. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "pool/secret.h"
#include "pool/store.h"
#include "t.h"

static char dbpath[256];

static void fresh_path(const char *name) {
  snprintf(dbpath, sizeof dbpath, "/tmp/w2a-test-store-%d/%s.db", (int)getpid(), name);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm", dbpath, dbpath, dbpath);
  if (system(cmd)) {
  }
}

static w2a_store *open_store(const char *key) {
  w2a_store *s = NULL;
  w2a_err err = {0};
  w2a_store_opts o = {.path = dbpath, .encryption_key = key};
  int rc = w2a_store_open(&s, &o, &err);
  if (rc) fprintf(stderr, "open: %s\n", err.msg);
  T_EQ_INT(rc, 0);
  return s;
}

static int64_t add(w2a_store *s, const char *email, int cap) {
  w2a_account_new a = {.email = email, .refresh_token = "rt-secret-value", .cap = cap};
  int64_t id = 0;
  w2a_err err;
  T_EQ_INT(w2a_store_add(s, &a, 1000, &id, &err), 0);
  return id;
}

/* A JWT with the given exp (header and signature are not checked). */
static void make_jwt(uint64_t exp_s, char *out, size_t len) {
  char payload[128], b[256];
  snprintf(payload, sizeof payload, "{\"exp\":%llu,\"user_id\":\"u\"}", (unsigned long long)exp_s);
  w2a_b64_encode(payload, strlen(payload), b, 1, 0);
  snprintf(out, len, "eyJhbGciOiJSUzI1NiJ9.%s.sig", b);
}

static w2a_lease_req req(uint64_t now) {
  w2a_lease_req r = {.count = 1, .now_ms = now, .ttl_ms = 60000, .selection = W2A_SEL_LRU};
  return r;
}

static int lease1(w2a_store *s, w2a_lease_req *r, w2a_lease_row *row) {
  int n = 0;
  w2a_err err;
  w2a_lease_none none;
  int rc = w2a_store_lease_acquire(s, r, row, &n, &none, &err);
  T_EQ_INT(rc, 0);
  return n;
}

static void test_crud(void) {
  fresh_path("crud");
  w2a_store *s = open_store(NULL);
  w2a_err err;
  int64_t a = add(s, "a@example.com", 1);
  int64_t b = add(s, "b@example.com", 2);
  T_CHECK(a > 0 && b > a);
  w2a_account_new dup = {.email = "A@example.com", .refresh_token = "x"};
  T_EQ_INT(w2a_store_add(s, &dup, 1000, NULL, &err), W2A_ESTATE);
  w2a_account_new bad = {.email = "", .refresh_token = "x"};
  T_EQ_INT(w2a_store_add(s, &bad, 1000, NULL, &err), W2A_EINVAL);

  w2a_account acc;
  T_EQ_INT(w2a_store_get(s, a, 0, &acc, &err), 0);
  T_EQ_STR(acc.email, "a@example.com");
  T_CHECK(acc.refresh_token == NULL && acc.id_token == NULL); /* redacted by default */
  T_EQ_INT(acc.cap, 1);
  T_EQ_INT(acc.state, W2A_ST_AVAILABLE);
  T_EQ_INT(acc.created_ms, 1000);
  T_EQ_INT(w2a_store_get_by_email(s, "B@EXAMPLE.COM", W2A_STORE_SECRETS, &acc, &err), 0);
  T_EQ_INT(acc.id, b);
  T_EQ_STR(acc.refresh_token, "rt-secret-value");
  w2a_account_clear(&acc);
  T_EQ_INT(w2a_store_get(s, 999, 0, &acc, &err), W2A_ENOTFOUND);

  w2a_account_meta m = {.label = "team-a", .weight = 5, .cap = 3};
  T_EQ_INT(w2a_store_set_meta(s, a, &m, &err), 0);
  T_EQ_INT(w2a_store_get(s, a, 0, &acc, &err), 0);
  T_EQ_STR(acc.label, "team-a");
  T_EQ_INT(acc.weight, 5);
  T_EQ_INT(acc.cap, 3);
  w2a_account_meta m0 = {.cap = 0, .weight = -1};
  T_EQ_INT(w2a_store_set_meta(s, a, &m0, &err), W2A_EINVAL);

  T_EQ_INT(w2a_store_delete(s, b, &err), 0);
  T_EQ_INT(w2a_store_delete(s, b, &err), W2A_ENOTFOUND);
  w2a_store_stats c;
  T_EQ_INT(w2a_store_counts(s, 2000, &c, &err), 0);
  T_EQ_INT(c.total, 1);
  w2a_store_close(s);
}

static int count_cb(const w2a_account *a, void *ud) {
  int *n = ud;
  (*n)++;
  if (a->refresh_token) n[1]++;
  return 0;
}

static void test_import_list(void) {
  fresh_path("import");
  w2a_store *s = open_store(NULL);
  w2a_err err;
  enum { N = 1000 };
  static w2a_account_new in[N + 1];
  static char emails[N + 1][64];
  for (int i = 0; i < N; i++) {
    snprintf(emails[i], sizeof emails[i], "user%04d@example.com", i);
    in[i] = (w2a_account_new){
        .email = emails[i], .refresh_token = "rt", .label = i % 2 ? "odd" : "even"};
  }
  in[N] = (w2a_account_new){.email = "broken@example.com"}; /* no refresh token */
  static w2a_import_result res[N + 1];
  T_EQ_INT(w2a_store_import(s, in, N + 1, W2A_IMPORT_SKIP, 1, res, &err), 0);
  T_EQ_INT(res[0], W2A_IMPORTED_NEW);
  T_EQ_INT(res[N], W2A_IMPORTED_INVALID);
  T_EQ_INT(w2a_store_import(s, in, 2, W2A_IMPORT_SKIP, 1, res, &err), 0);
  T_EQ_INT(res[1], W2A_IMPORTED_SKIPPED);
  in[0].refresh_token = "rt-new";
  T_EQ_INT(w2a_store_import(s, in, 1, W2A_IMPORT_UPDATE, 1, res, &err), 0);
  T_EQ_INT(res[0], W2A_IMPORTED_UPDATED);

  int n[2] = {0, 0};
  w2a_store_filter f = {.state = -1};
  T_EQ_INT(w2a_store_list(s, &f, count_cb, n, &err), 0);
  T_EQ_INT(n[0], N);
  T_EQ_INT(n[1], 0); /* listing never carries secrets */
  n[0] = n[1] = 0;
  f.label = "odd";
  f.flags = W2A_STORE_SECRETS; /* export */
  T_EQ_INT(w2a_store_list(s, &f, count_cb, n, &err), 0);
  T_EQ_INT(n[0], N / 2);
  T_EQ_INT(n[1], N / 2);
  n[0] = 0;
  w2a_store_filter page = {.state = W2A_ST_AVAILABLE, .after_id = 990, .limit = 5};
  T_EQ_INT(w2a_store_list(s, &page, count_cb, n, &err), 0);
  T_EQ_INT(n[0], 5);
  w2a_store_close(s);
}

static void raw_token(const char *email, char *out, size_t len) {
  sqlite3 *db;
  sqlite3_stmt *st;
  out[0] = 0;
  sqlite3_open(dbpath, &db);
  sqlite3_prepare_v2(db,
                     "SELECT t.refresh_token FROM tokens t JOIN accounts a ON a.id = t.account_id"
                     " WHERE a.email = ?1",
                     -1, &st, NULL);
  sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) snprintf(out, len, "%s", sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void test_encryption(void) {
  fresh_path("crypt");
  w2a_err err;
  char raw[1024];
  /* tokens stored in clear, then a key is configured: existing tokens get sealed */
  w2a_store *s = open_store(NULL);
  add(s, "old@example.com", 1);
  w2a_store_close(s);
  raw_token("old@example.com", raw, sizeof raw);
  T_EQ_STR(raw, "rt-secret-value");

  s = open_store("correct horse battery staple");
  add(s, "new@example.com", 1);
  w2a_account a;
  T_EQ_INT(w2a_store_get_by_email(s, "old@example.com", W2A_STORE_SECRETS, &a, &err), 0);
  T_EQ_STR(a.refresh_token, "rt-secret-value");
  w2a_account_clear(&a);
  T_EQ_INT(w2a_store_set_tokens(s, a.id, "idtok", 5000, "rt-rotated", 3000, &err), 0);
  w2a_store_close(s);
  raw_token("old@example.com", raw, sizeof raw);
  T_CHECK(!strncmp(raw, "v1:", 3));
  T_CHECK(!strstr(raw, "rt-rotated"));
  raw_token("new@example.com", raw, sizeof raw);
  T_CHECK(!strncmp(raw, "v1:", 3));

  /* wrong key refused at open */
  w2a_store *bad = NULL;
  w2a_store_opts o = {.path = dbpath, .encryption_key = "wrong"};
  T_EQ_INT(w2a_store_open(&bad, &o, &err), W2A_EAUTH);
  T_CHECK(bad == NULL);

  /* no key: metadata readable, secrets not, adding refused */
  s = open_store(NULL);
  T_EQ_INT(w2a_store_get_by_email(s, "old@example.com", 0, &a, &err), 0);
  T_EQ_INT(w2a_store_get_by_email(s, "old@example.com", W2A_STORE_SECRETS, &a, &err), W2A_EAUTH);
  w2a_account_new n = {.email = "x@example.com", .refresh_token = "t"};
  T_EQ_INT(w2a_store_add(s, &n, 1, NULL, &err), W2A_EAUTH);
  w2a_store_close(s);

  s = open_store("correct horse battery staple");
  T_EQ_INT(w2a_store_get_by_email(s, "old@example.com", W2A_STORE_SECRETS, &a, &err), 0);
  T_EQ_STR(a.refresh_token, "rt-rotated");
  T_EQ_STR(a.id_token, "idtok");
  T_EQ_INT(a.id_token_exp_ms, 5000);
  T_EQ_INT(a.last_refresh_ms, 3000);
  w2a_account_clear(&a);
  w2a_store_close(s);

  /* tampering is detected */
  unsigned char key[W2A_SECRET_KEY_LEN] = {1};
  char *sealed = NULL, *plain = NULL;
  T_EQ_INT(w2a_secret_seal(key, "hello", &sealed), 0);
  sealed[5] ^= 1;
  T_CHECK(w2a_secret_open(key, sealed, &plain) != 0);
  free(sealed);
}

static void test_leases_and_caps(void) {
  fresh_path("leases");
  w2a_store *s = open_store(NULL);
  w2a_err err;
  int64_t a = add(s, "a@example.com", 2);
  int64_t b = add(s, "b@example.com", 1);
  w2a_lease_row r[4];
  w2a_lease_req rq = req(10000);
  int got[3] = {0};
  for (int i = 0; i < 3; i++) {
    T_EQ_INT(lease1(s, &rq, &r[i]), 1);
    got[i] = (int)r[i].account_id;
    T_CHECK(r[i].acct.id_token == NULL);
    rq.now_ms++;
  }
  /* a has cap 2, b cap 1: three leases in all, then nothing */
  int na = (got[0] == a) + (got[1] == a) + (got[2] == a);
  T_EQ_INT(na, 2);
  w2a_lease_none none;
  int n = 0;
  T_EQ_INT(w2a_store_lease_acquire(s, &rq, &r[3], &n, &none, &err), 0);
  T_EQ_INT(n, 0);
  T_EQ_INT(none.total, 2);
  T_CHECK(strstr(none.reason, "no account can be leased") != NULL);
  char why[256];
  T_EQ_INT(w2a_store_why_not(s, b, rq.now_ms, why, sizeof why, &err), 0);
  T_CHECK(strstr(why, "cap (1/1") != NULL);
  w2a_store_stats c;
  T_EQ_INT(w2a_store_counts(s, rq.now_ms, &c, &err), 0);
  T_EQ_INT(c.active_leases, 3);
  T_EQ_INT(c.leased_accounts, 2);
  T_EQ_INT(c.usable, 0);

  /* release one, extend one, lose one: the lost one is reclaimed at its expiry */
  T_EQ_INT(w2a_store_lease_release(s, r[0].id, r[0].account_id, NULL, rq.now_ms, &err), 0);
  T_EQ_INT(w2a_store_lease_release(s, r[0].id, r[0].account_id, NULL, rq.now_ms, &err),
           W2A_ENOTFOUND);
  T_EQ_INT(w2a_store_lease_extend(s, r[1].id, rq.now_ms + 600000, &err), 0);
  rq.now_ms += 61000; /* r[2] expired, r[1] extended */
  int rec = 0;
  T_EQ_INT(w2a_store_reclaim(s, rq.now_ms, &rec, &err), 0);
  T_EQ_INT(rec, 1);
  T_EQ_INT(w2a_store_lease_extend(s, r[2].id, rq.now_ms + 1000, &err), W2A_ENOTFOUND);
  T_EQ_INT(w2a_store_counts(s, rq.now_ms, &c, &err), 0);
  T_EQ_INT(c.active_leases, 1);
  w2a_account acc;
  w2a_store_get(s, a, 0, &acc, &err);
  int la = acc.active_leases;
  w2a_store_get(s, b, 0, &acc, &err);
  T_EQ_INT(la + acc.active_leases, 1);

  /* exclusion */
  int64_t ex[1] = {a};
  rq.exclude = ex;
  rq.nexclude = 1;
  T_EQ_INT(w2a_store_release_holder(s, "", rq.now_ms, &rec, &err), 0);
  T_EQ_INT(rec, 1);
  for (int i = 0; i < 2; i++) {
    n = lease1(s, &rq, &r[0]);
    if (i == 0)
      T_EQ_INT(r[0].account_id, b);
    else
      T_EQ_INT(n, 0);
  }
  rq.exclude = NULL;
  rq.nexclude = 0;

  /* holders (sessions) */
  rq.holder = "session-1";
  rq.count = 2;
  rq.want_secrets = 1;
  T_EQ_INT(w2a_store_lease_acquire(s, &rq, r, &n, &none, &err), 0);
  T_EQ_INT(n, 1); /* one account is never leased twice by one acquire; b is at its cap */
  for (int i = 0; i < n; i++) {
    T_CHECK(r[i].acct.id_token != NULL);
    w2a_account_clear(&r[i].acct);
  }
  T_EQ_INT(w2a_store_release_holder(s, "session-1", rq.now_ms, &rec, &err), 0);
  T_EQ_INT(rec, n);
  w2a_store_close(s);
}

static w2a_lease_result fail_result(void) {
  w2a_lease_result r = {.failure = 1,
                        .set_state = -1,
                        .reason = "HTTP 500",
                        .threshold = 3,
                        .window_ms = 60000,
                        .cooldown_ms = 30000};
  return r;
}

static void test_states(void) {
  fresh_path("states");
  w2a_store *s = open_store(NULL);
  w2a_err err;
  int64_t a = add(s, "a@example.com", 1);
  w2a_lease_req rq = req(100000);
  w2a_lease_row r;
  char why[256];
  w2a_account acc;

  /* one transient failure never cools; three within the window do */
  w2a_lease_result f = fail_result();
  for (int i = 0; i < 3; i++) {
    T_EQ_INT(lease1(s, &rq, &r), 1);
    T_EQ_INT(w2a_store_lease_release(s, r.id, r.account_id, &f, rq.now_ms, &err), 0);
    w2a_store_get(s, a, 0, &acc, &err);
    T_EQ_INT(acc.state, i < 2 ? W2A_ST_AVAILABLE : W2A_ST_COOLING);
    rq.now_ms += 1000;
  }
  T_EQ_INT(acc.errors, 3);
  T_EQ_INT(acc.consecutive_failures, 3);
  T_EQ_INT(acc.state_until_ms, 102000 + 30000);
  T_EQ_INT(lease1(s, &rq, &r), 0);
  w2a_store_why_not(s, a, rq.now_ms, why, sizeof why, &err);
  T_CHECK(strstr(why, "cooling until") != NULL);

  /* after the cool-down: exactly one probe lease, even with cap 2 */
  w2a_account_meta m = {.cap = 2, .weight = -1};
  w2a_store_set_meta(s, a, &m, &err);
  rq.now_ms = 140000;
  T_EQ_INT(lease1(s, &rq, &r), 1);
  T_EQ_INT(r.probe, 1);
  w2a_lease_row r2;
  T_EQ_INT(lease1(s, &rq, &r2), 0);
  w2a_store_why_not(s, a, rq.now_ms, why, sizeof why, &err);
  T_CHECK(strstr(why, "probe") != NULL);
  /* the probe fails: cooled again */
  T_EQ_INT(w2a_store_lease_release(s, r.id, r.account_id, &f, rq.now_ms, &err), 0);
  w2a_store_get(s, a, 0, &acc, &err);
  T_EQ_INT(acc.state, W2A_ST_COOLING);
  T_EQ_INT(acc.state_until_ms, 140000 + 30000);
  /* next probe succeeds: available again, failures reset */
  rq.now_ms = 171000;
  T_EQ_INT(lease1(s, &rq, &r), 1);
  T_EQ_INT(r.probe, 1);
  w2a_lease_result ok = {.ok = 1, .set_state = -1};
  T_EQ_INT(w2a_store_lease_release(s, r.id, r.account_id, &ok, rq.now_ms, &err), 0);
  w2a_store_get(s, a, 0, &acc, &err);
  T_EQ_INT(acc.state, W2A_ST_AVAILABLE);
  T_EQ_INT(acc.consecutive_failures, 0);
  T_EQ_INT(acc.successes, 1);

  /* quota: out until the reset time, then back by itself */
  w2a_lease_result q = {
      .failure = 0, .set_state = W2A_ST_QUOTA, .until_ms = 500000, .reason = "No remaining quota"};
  T_EQ_INT(lease1(s, &rq, &r), 1);
  T_EQ_INT(w2a_store_lease_release(s, r.id, r.account_id, &q, rq.now_ms, &err), 0);
  T_EQ_INT(lease1(s, &rq, &r), 0);
  w2a_store_why_not(s, a, rq.now_ms, why, sizeof why, &err);
  T_CHECK(strstr(why, "quota exhausted until") != NULL);
  rq.now_ms = 499999;
  T_EQ_INT(lease1(s, &rq, &r), 0);
  rq.now_ms = 500000;
  T_EQ_INT(lease1(s, &rq, &r), 1);
  T_EQ_INT(w2a_store_lease_release(s, r.id, r.account_id, &ok, rq.now_ms, &err), 0);

  /* quota poll says used up: exhausted until its nextRefreshTime */
  w2a_quota qq = {.limit = 150, .used = 150, .reset_ms = 900000, .updated_ms = 600000};
  T_EQ_INT(w2a_store_set_quota(s, a, &qq, &err), 0);
  w2a_store_get(s, a, 0, &acc, &err);
  T_EQ_INT(acc.state, W2A_ST_QUOTA);
  T_EQ_INT(acc.state_until_ms, 900000);
  rq.now_ms = 899000;
  T_EQ_INT(lease1(s, &rq, &r), 0);
  int nre = 0;
  T_EQ_INT(w2a_store_readmit(s, 900000, &nre, &err), 0);
  T_EQ_INT(nre, 1);

  /* blocked and disabled stay out */
  w2a_lease_result blk = {.set_state = W2A_ST_BLOCKED, .reason = "blocked from AI"};
  rq.now_ms = 900001;
  T_EQ_INT(lease1(s, &rq, &r), 1);
  T_EQ_INT(w2a_store_lease_release(s, r.id, r.account_id, &blk, rq.now_ms, &err), 0);
  rq.now_ms += 86400000;
  T_EQ_INT(lease1(s, &rq, &r), 0);
  w2a_store_why_not(s, a, rq.now_ms, why, sizeof why, &err);
  T_CHECK(strstr(why, "blocked") != NULL);
  T_EQ_INT(w2a_store_set_state(s, a, W2A_ST_DISABLED, "maintenance", 0, rq.now_ms, &err), 0);
  w2a_store_why_not(s, a, rq.now_ms, why, sizeof why, &err);
  T_CHECK(strstr(why, "maintenance") != NULL);
  T_EQ_INT(w2a_store_set_state(s, a, W2A_ST_AVAILABLE, NULL, 0, rq.now_ms, &err), 0);
  w2a_store_why_not(s, a, rq.now_ms, why, sizeof why, &err);
  T_EQ_STR(why, "");
  T_EQ_INT(lease1(s, &rq, &r), 1);
  w2a_store_close(s);
}

static void test_selection(void) {
  fresh_path("select");
  w2a_store *s = open_store(NULL);
  w2a_err err;
  int64_t id[4];
  char e[32];
  for (int i = 0; i < 4; i++) {
    snprintf(e, sizeof e, "s%d@example.com", i);
    id[i] = add(s, e, 1);
  }
  w2a_lease_req rq = req(1000);
  w2a_lease_row r;
  /* LRU: never-used first in id order, then least recently used */
  int64_t seen[8];
  for (int i = 0; i < 8; i++) {
    rq.now_ms += 10;
    lease1(s, &rq, &r);
    seen[i] = r.account_id;
    w2a_store_lease_release(s, r.id, r.account_id, NULL, rq.now_ms, &err);
  }
  for (int i = 0; i < 8; i++)
    T_EQ_INT(seen[i], id[i % 4]);

  /* quota left preferred: id[0] known exhausted-but-not-marked sorts last */
  w2a_quota q = {.limit = 10, .used = 10, .reset_ms = 1, .updated_ms = rq.now_ms};
  w2a_store_set_quota(s, id[0], &q, &err);
  w2a_store_set_state(s, id[0], W2A_ST_AVAILABLE, NULL, 0, rq.now_ms, &err);
  w2a_store_set_quota(s, id[0], &q, &err); /* reset in the past: stays available, quota_low */
  rq.now_ms += 10;
  lease1(s, &rq, &r);
  T_CHECK(r.account_id != id[0]);
  w2a_store_lease_release(s, r.id, r.account_id, NULL, rq.now_ms, &err);

  /* fill-first: highest weight, then lowest id, until its cap */
  w2a_account_meta m = {.weight = 9, .cap = 2};
  w2a_store_set_meta(s, id[2], &m, &err);
  rq.selection = W2A_SEL_FILL_FIRST;
  w2a_lease_row f[3];
  for (int i = 0; i < 3; i++)
    lease1(s, &rq, &f[i]);
  T_EQ_INT(f[0].account_id, id[2]);
  T_EQ_INT(f[1].account_id, id[2]);
  T_EQ_INT(f[2].account_id, id[1]);
  for (int i = 0; i < 3; i++)
    w2a_store_lease_release(s, f[i].id, f[i].account_id, NULL, rq.now_ms, &err);

  /* round-robin: by id after the cursor, wrapping */
  rq.selection = W2A_SEL_ROUND_ROBIN;
  int64_t rr[6];
  for (int i = 0; i < 6; i++) {
    lease1(s, &rq, &r);
    rr[i] = r.account_id;
    w2a_store_lease_release(s, r.id, r.account_id, NULL, rq.now_ms, &err);
  }
  for (int i = 1; i < 6; i++) {
    /* consecutive picks move forward by id among quota-left accounts, wrapping */
    T_CHECK(rr[i] != rr[i - 1]);
  }
  T_CHECK(rr[0] == rr[3]);

  /* plans use the indexes */
  char plan[1024];
  T_EQ_INT(w2a_store_explain_selection(s, W2A_SEL_LRU, plan, sizeof plan, &err), 0);
  T_CHECK(strstr(plan, "USING INDEX accounts_lru") != NULL);
  T_CHECK(strstr(plan, "TEMP B-TREE") == NULL);
  w2a_store_explain_selection(s, W2A_SEL_FILL_FIRST, plan, sizeof plan, &err);
  T_CHECK(strstr(plan, "USING INDEX accounts_fill") != NULL);
  T_CHECK(strstr(plan, "TEMP B-TREE") == NULL);
  w2a_store_explain_selection(s, W2A_SEL_ROUND_ROBIN, plan, sizeof plan, &err);
  T_CHECK(strstr(plan, "INDEX accounts_rr") != NULL);
  T_CHECK(strstr(plan, "TEMP B-TREE") == NULL);
  T_EQ_INT(w2a_store_integrity_check(s, plan, sizeof plan, &err), 0);
  T_EQ_STR(plan, "ok");
  w2a_store_close(s);
}

static void test_tokens(void) {
  fresh_path("tokens");
  w2a_store *s = open_store(NULL);
  w2a_err err;
  char jwt[512];
  make_jwt(2000000000, jwt, sizeof jwt);
  T_EQ_INT(w2a_jwt_exp_ms(jwt), 2000000000000ull);
  T_EQ_INT(w2a_jwt_exp_ms("not.a-jwt"), 0);
  T_EQ_INT(w2a_jwt_exp_ms(NULL), 0);
  w2a_account_new n = {.email = "t@example.com", .refresh_token = "rt", .id_token = jwt};
  int64_t id;
  T_EQ_INT(w2a_store_add(s, &n, 1, &id, &err), 0);
  w2a_account a;
  w2a_store_get(s, id, 0, &a, &err);
  T_EQ_INT(a.id_token_exp_ms, 2000000000000ull);
  T_EQ_INT(a.has_id_token, 1);

  /* cross-process refresh lock */
  uint64_t seen = a.last_refresh_ms;
  T_EQ_INT(w2a_store_refresh_claim(s, id, seen, 1000, 30000, &err), 0);
  T_EQ_INT(w2a_store_refresh_claim(s, id, seen, 2000, 30000, &err), W2A_EAGAIN);
  T_EQ_INT(w2a_store_refresh_claim(s, 999, 0, 2000, 30000, &err), W2A_ENOTFOUND);
  T_EQ_INT(w2a_store_refresh_failed(s, id, 0, "HTTP 500", 3000, &err), 0);
  w2a_store_get(s, id, 0, &a, &err);
  T_EQ_INT(a.state, W2A_ST_AVAILABLE); /* a failed refresh keeps the old token in use */
  T_EQ_INT(a.refresh_failures, 1);
  T_EQ_INT(w2a_store_refresh_claim(s, id, seen, 4000, 30000, &err), 0);
  T_EQ_INT(w2a_store_refresh_failed(s, id, 1, "INVALID_REFRESH_TOKEN", 5000, &err), 0);
  w2a_store_get(s, id, 0, &a, &err);
  T_EQ_INT(a.state, W2A_ST_INVALID);
  /* A peer refreshed and released the lock between our read and our claim: the claim
   * says so instead of letting us refresh a second time. */
  T_EQ_INT(w2a_store_set_tokens(s, id, jwt, 0, NULL, 6000, &err), 0);
  T_EQ_INT(w2a_store_refresh_claim(s, id, seen, 7000, 30000, &err), W2A_ESTATE);
  w2a_store_get(s, id, 0, &a, &err);
  T_EQ_INT(a.last_refresh_ms, 6000);
  T_EQ_INT(w2a_store_refresh_claim(s, id, a.last_refresh_ms, 7000, 30000, &err), 0);
  T_EQ_INT(w2a_store_refresh_claim(s, id, a.last_refresh_ms, 8000, 30000, &err), W2A_EAGAIN);

  /* due lists */
  w2a_store_set_state(s, id, W2A_ST_AVAILABLE, NULL, 0, 6000, &err);
  int64_t ids[4];
  size_t nd = 0;
  T_EQ_INT(w2a_store_due(s, W2A_DUE_QUOTA, 1700000000000ull, 900000, ids, 4, &nd, &err), 0);
  T_EQ_INT(nd, 1);
  T_EQ_INT(w2a_store_due(s, W2A_DUE_REFRESH, 1700000000000ull, 300000, ids, 4, &nd, &err), 0);
  T_EQ_INT(nd, 0); /* fresh token, and never used */
  w2a_store_close(s);
}

static void test_migrations(void) {
  fresh_path("migrate");
  w2a_store *s = open_store(NULL);
  add(s, "m@example.com", 1);
  w2a_store_close(s);
  s = open_store(NULL); /* reopen: no migration re-run */
  w2a_account a;
  w2a_err err;
  T_EQ_INT(w2a_store_get_by_email(s, "m@example.com", 0, &a, &err), 0);
  w2a_store_close(s);
  sqlite3 *db;
  sqlite3_open(dbpath, &db);
  sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
  char *mode = NULL;
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
  if (sqlite3_step(st) == SQLITE_ROW) mode = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  T_EQ_STR(mode, "wal");
  free(mode);
  w2a_store_opts o = {.path = dbpath};
  T_EQ_INT(w2a_store_open(&s, &o, &err), W2A_ESTATE); /* newer schema than this build */
}

int main(void) {
  T_RUN(test_crud);
  T_RUN(test_import_list);
  T_RUN(test_encryption);
  T_RUN(test_leases_and_caps);
  T_RUN(test_states);
  T_RUN(test_selection);
  T_RUN(test_tokens);
  T_RUN(test_migrations);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/w2a-test-store-%d", (int)getpid());
  if (system(cmd)) {
  }
  return t_done();
}
