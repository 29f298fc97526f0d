/* test_pool.c - the pool on a real loop against fakewarp (in-process, same loop):
 * single-flight refresh, the one-hour rule, 401 handling, rotation, quota until Warp's
 * nextRefreshTime, blocked, 5xx cool-down with one half-open probe, the refresh cap,
 * and acquires waiting for an account busy at its cap (LEASE_WAIT): FIFO, timeout,
 * no wait when nothing is busy, close and cancel. Every test runs twice: with leases in
 * the database, and with request leases in memory (LEASES=memory, ledger.h), the way
 * `serve` runs; the tests at the end are about the in-memory mode only. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/util.h"
#include "fakewarp/fakewarp.h"
#include "http/client.h"
#include "pool/pool.h"
#include "pool/store.h"
#include "t.h"

static int g_mem; /* this round: request leases in memory */

typedef struct env {
  uv_loop_t loop;
  w2a_fake fake;
  w2a_config cfg;
  w2a_http_client *http;
  w2a_pool *pool;
  char db[256];
  int closed;
} env;

static void set(char **field, const char *v) {
  free(*field);
  *field = strdup(v);
}

static void run_until(env *e, const int *flag, int want, int ms) {
  uint64_t end = w2a_now_ms() + (uint64_t)ms;
  while (*flag < want && w2a_now_ms() < end)
    uv_run(&e->loop, UV_RUN_ONCE);
}

static void run_for(env *e, int ms) {
  int never = 0;
  run_until(e, &never, 1, ms);
}

/* Changes written through another connection (as by the CLI) reach an in-memory ledger
 * at its next sync (SYNC_MS, 250 ms), or at once when an acquire finds nothing at all. */
static void settle(env *e) {
  if (g_mem) run_for(e, 400);
}

static int env_up(env *e, const char *name, int threshold, int cooldown_ms, int per_minute) {
  memset(e, 0, sizeof *e);
  uv_loop_init(&e->loop);
  w2a_err err;
  w2a_fake_opts fo = {.control = 1};
  if (w2a_fake_start(&e->fake, &e->loop, &fo, &err)) {
    fprintf(stderr, "fakewarp: %s\n", err.msg);
    return -1;
  }
  setenv("W2A_ENV_FILE", "/dev/null", 1);
  if (w2a_config_load(&e->cfg, "/dev/null", &err)) return -1;
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", e->fake.public_port);
  set(&e->cfg.warp_base_url, url);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", e->fake.public_port);
  set(&e->cfg.securetoken_url, url);
  snprintf(e->db, sizeof e->db, "/tmp/w2a-test-pool-%d/%s%s.db", (int)getpid(), g_mem ? "mem-" : "",
           name);
  set(&e->cfg.database_path, e->db);
  e->cfg.failure_threshold = threshold;
  e->cfg.cooldown_ms = cooldown_ms;
  e->cfg.refresh_per_minute = per_minute;
  e->cfg.lease_ttl_ms = 60000;
  w2a_http_client_opts ho = {0};
  if (w2a_http_client_new(&e->http, &e->loop, &ho, &err)) return -1;
  int flags = W2A_POOL_BACKGROUND | (g_mem ? W2A_POOL_LEASER | W2A_POOL_SOLE : 0);
  if (w2a_pool_open(&e->pool, &e->loop, &e->cfg, e->http, flags, &err)) {
    fprintf(stderr, "pool: %s\n", err.msg);
    return -1;
  }
  return 0;
}

static void closed_cb(void *ud) { ++*(int *)ud; }

static void env_down(env *e) {
  int n = 0;
  w2a_pool_close(e->pool, closed_cb, &n);
  run_until(e, &n, 1, 20000);
  T_EQ_INT(n, 1);
  w2a_http_client_close(e->http, closed_cb, &n);
  run_until(e, &n, 2, 5000);
  w2a_fake_stop(&e->fake, closed_cb, &n);
  run_until(e, &n, 3, 5000);
  w2a_fake_free(&e->fake);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  T_EQ_INT(uv_loop_close(&e->loop), 0);
  w2a_config_free(&e->cfg);
}

/* Account at fakewarp and in our store (with no ID token: the first use refreshes). */
static int64_t add_account(env *e, const char *email, int cap, int rotate, const char *id_token) {
  w2a_err err;
  w2a_fake_account_spec sp = {.email = email, .quota = -1, .rotate = rotate};
  w2a_fake_account *fa = NULL;
  T_EQ_INT(w2a_fake_account_add(&e->fake.st, &sp, &fa, &err), 0);
  w2a_store *s;
  w2a_store_opts o = {.path = e->db};
  T_EQ_INT(w2a_store_open(&s, &o, &err), 0);
  w2a_account_new a = {
      .email = email, .refresh_token = fa->refresh_token, .cap = cap, .id_token = id_token};
  int64_t id = 0;
  T_EQ_INT(w2a_store_add(s, &a, w2a_now_ms(), &id, &err), 0);
  w2a_store_close(s);
  return id;
}

static w2a_account get_account(env *e, int64_t id) {
  w2a_store *s;
  w2a_err err;
  w2a_account a;
  memset(&a, 0, sizeof a);
  w2a_store_opts o = {.path = e->db};
  if (w2a_store_open(&s, &o, &err)) return a;
  w2a_store_get(s, id, W2A_STORE_SECRETS, &a, &err);
  w2a_store_close(s);
  return a;
}

typedef struct tally {
  env *e;
  int done, ok, fail;
  int release; /* release at once */
  w2a_lease *held[128];
  int nheld;
  int64_t last_account;
} tally;

static void on_acquire(int rc, w2a_lease *l, const w2a_pool_unavailable *why, void *ud) {
  tally *t = ud;
  t->done++;
  if (rc) {
    t->fail++;
    return;
  }
  if (l->id_token[0] && l->id_token_exp_ms > w2a_now_ms())
    t->ok++;
  else
    t->fail++;
  t->last_account = l->account_id;
  if (t->release) {
    w2a_outcome o = {.ok = 1};
    w2a_pool_report(t->e->pool, l, &o);
  } else {
    t->held[t->nheld++] = l;
  }
}

static void test_single_flight(void) {
  env e;
  T_EQ_INT(env_up(&e, "flight", 3, 1000, 30), 0);
  int64_t id = add_account(&e, "sf@example.com", 100, 0, NULL);
  w2a_fake_account *fa = w2a_fake_account_by_email(&e.fake.st, "sf@example.com");
  tally t = {.e = &e, .release = 1};
  for (int i = 0; i < 100; i++)
    w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t);
  run_until(&e, &t.done, 100, 30000);
  T_EQ_INT(t.done, 100);
  T_EQ_INT(t.ok, 100);
  T_EQ_INT(fa->refreshes, 1); /* exactly one refresh for 100 concurrent requests */
  /* the one-hour rule: a fresh token is not refreshed again, unless forced */
  tally t2 = {.e = &e, .release = 1};
  for (int i = 0; i < 50; i++)
    w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t2);
  run_until(&e, &t2.done, 50, 30000);
  T_EQ_INT(t2.ok, 50);
  T_EQ_INT(fa->refreshes, 1);
  w2a_account a = get_account(&e, id);
  T_CHECK(a.id_token_exp_ms > w2a_now_ms() + 3000000);
  w2a_account_clear(&a);
  run_for(&e, 200); /* let the releases land */
  env_down(&e);
}

typedef struct refresh_res {
  int done, rc;
  w2a_refresh_status st;
} refresh_res;

static void on_refreshed(int rc, w2a_refresh_status st, const char *msg, void *ud) {
  refresh_res *r = ud;
  r->done++;
  r->rc = rc;
  r->st = st;
}

static void test_forced_401_rotation(void) {
  env e;
  T_EQ_INT(env_up(&e, "rotate", 3, 1000, 30), 0);
  int64_t id = add_account(&e, "rot@example.com", 4, 1, NULL);
  w2a_fake_account *fa = w2a_fake_account_by_email(&e.fake.st, "rot@example.com");
  tally t = {.e = &e};
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t);
  run_until(&e, &t.done, 1, 10000);
  T_EQ_INT(t.ok, 1);
  T_EQ_INT(fa->refreshes, 1);
  /* the rotated refresh token was stored */
  w2a_account a = get_account(&e, id);
  T_EQ_STR(a.refresh_token, fa->refresh_token);
  w2a_account_clear(&a);

  refresh_res r = {0};
  w2a_pool_refresh_account(e.pool, id, 0, on_refreshed, &r);
  run_until(&e, &r.done, 1, 10000);
  T_EQ_INT(r.st, W2A_REFRESH_SKIPPED);
  T_EQ_INT(fa->refreshes, 1);
  w2a_pool_refresh_account(e.pool, id, 1, on_refreshed, &r);
  run_until(&e, &r.done, 2, 10000);
  T_EQ_INT(r.st, W2A_REFRESH_DONE);
  T_EQ_INT(fa->refreshes, 2);

  /* a 401 on a lease: refresh and retry; concurrent acquires share that refresh */
  w2a_outcome o401 = {.http_status = 401, .body = "{\"error\":\"ID token has expired at: 1\"}"};
  T_EQ_INT(w2a_pool_report(e.pool, t.held[0], &o401), W2A_ACT_RETRY_REFRESH);
  t.nheld = 0;
  tally t2 = {.e = &e, .release = 1};
  for (int i = 0; i < 3; i++)
    w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t2);
  run_until(&e, &t2.done, 3, 10000);
  T_EQ_INT(t2.ok, 3);
  T_EQ_INT(fa->refreshes, 3);
  a = get_account(&e, id);
  T_EQ_STR(a.refresh_token, fa->refresh_token);
  T_EQ_INT(a.state, W2A_ST_AVAILABLE);
  w2a_account_clear(&a);

  /* a revoked refresh token: invalid, never leased again */
  fa->revoked = 1;
  w2a_pool_refresh_account(e.pool, id, 1, on_refreshed, &r);
  run_until(&e, &r.done, 3, 10000);
  T_EQ_INT(r.st, W2A_REFRESH_INVALID);
  a = get_account(&e, id);
  T_EQ_INT(a.state, W2A_ST_INVALID);
  w2a_account_clear(&a);
  tally t3 = {.e = &e, .release = 1};
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t3);
  run_until(&e, &t3.done, 1, 10000);
  T_EQ_INT(t3.fail, 1);
  run_for(&e, 200);
  env_down(&e);
}

static void test_quota_block_5xx(void) {
  env e;
  T_EQ_INT(env_up(&e, "quota", 1, 1500, 30), 0);
  int64_t q = add_account(&e, "q@example.com", 2, 0, NULL);
  w2a_fake_account *fq = w2a_fake_account_by_email(&e.fake.st, "q@example.com");
  fq->refresh_period_s = 3;
  fq->next_refresh_ms = w2a_now_ms() + 3000;
  /* lease it (this refreshes its token), then it hits the quota at fakewarp */
  tally t = {.e = &e};
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t);
  run_until(&e, &t.done, 1, 10000);
  T_EQ_INT(t.ok, 1);
  fq->used = fq->quota_limit;
  w2a_outcome oq = {.http_status = 429, .body = "{\"error\":\"No remaining quota\"}"};
  T_EQ_INT(w2a_pool_report(e.pool, t.held[0], &oq), W2A_ACT_QUOTA);
  uint64_t reset = fq->next_refresh_ms;
  run_for(&e, 500); /* release, then the quota poll */
  w2a_account a = get_account(&e, q);
  T_EQ_INT(a.state, W2A_ST_QUOTA);
  /* asleep until fakewarp's nextRefreshTime (RFC 3339, second precision) */
  T_CHECK(a.state_until_ms / 1000 == reset / 1000);
  T_EQ_INT(a.quota.limit, fq->quota_limit);
  w2a_account_clear(&a);
  tally t2 = {.e = &e, .release = 1};
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t2);
  run_until(&e, &t2.done, 1, 5000);
  T_EQ_INT(t2.fail, 1); /* not selected before the reset */
  while (w2a_now_ms() < reset + 100)
    run_for(&e, 100);
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t2);
  run_until(&e, &t2.done, 2, 5000);
  T_EQ_INT(t2.ok, 1); /* back by itself */

  /* 5xx (threshold 1 here): cooled, then exactly one probe */
  run_for(&e, 200);
  tally t3 = {.e = &e};
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t3);
  run_until(&e, &t3.done, 1, 5000);
  T_EQ_INT(t3.ok, 1);
  w2a_outcome o5 = {.http_status = 502, .body = "bad gateway"};
  T_EQ_INT(w2a_pool_report(e.pool, t3.held[0], &o5), W2A_ACT_RETRY_OTHER);
  run_for(&e, 300);
  a = get_account(&e, q);
  T_EQ_INT(a.state, W2A_ST_COOLING);
  w2a_account_clear(&a);
  tally t4 = {.e = &e};
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t4);
  run_until(&e, &t4.done, 1, 5000);
  T_EQ_INT(t4.fail, 1);
  run_for(&e, 1500);
  for (int i = 0; i < 3; i++)
    w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t4);
  run_until(&e, &t4.done, 4, 5000);
  T_EQ_INT(t4.ok, 1); /* cap 2, yet one probe only */
  T_EQ_INT(t4.fail, 3);
  w2a_outcome ok = {.ok = 1};
  w2a_pool_report(e.pool, t4.held[0], &ok);
  run_for(&e, 300);
  a = get_account(&e, q);
  T_EQ_INT(a.state, W2A_ST_AVAILABLE);
  w2a_account_clear(&a);

  /* blocked stays out */
  tally t5 = {.e = &e};
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t5);
  run_until(&e, &t5.done, 1, 5000);
  w2a_outcome ob = {.http_status = 403,
                    .body =
                        "{\"error\":\"Your account has been blocked from using AI features.\"}"};
  T_EQ_INT(w2a_pool_report(e.pool, t5.held[0], &ob), W2A_ACT_BLOCK);
  run_for(&e, 300);
  w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t5);
  run_until(&e, &t5.done, 2, 5000);
  T_EQ_INT(t5.fail, 1);
  a = get_account(&e, q);
  T_EQ_INT(a.state, W2A_ST_BLOCKED);
  w2a_account_clear(&a);
  env_down(&e);
}

static void test_refresh_cap(void) {
  env e;
  T_EQ_INT(env_up(&e, "cap", 3, 1000, 60), 0); /* 60/min: a burst of at most 15 */
  char email[64];
  for (int i = 0; i < 30; i++) {
    snprintf(email, sizeof email, "cap%02d@example.com", i);
    add_account(&e, email, 1, 0, NULL);
  }
  settle(&e);
  tally t = {.e = &e, .release = 1};
  for (int i = 0; i < 30; i++)
    w2a_pool_acquire(e.pool, NULL, 0, on_acquire, &t);
  run_for(&e, 1500);
  /* the bucket starts full (a quarter minute's worth: 15) and refills at one a second */
  T_CHECK(e.fake.st.refreshes >= 15 && e.fake.st.refreshes <= 17);
  T_CHECK(t.done < 30);
  env_down(&e); /* waiting acquires are answered with an error at close */
  T_EQ_INT(t.done, 30);
}

/* ---- waiting for capacity (LEASE_WAIT) -------------------------------------------------- */

typedef struct wacq {
  env *e;
  int *seq; /* shared: the order callbacks ran in */
  int done, rc, order;
  w2a_lease *lease;
  uint64_t at_ms;
  uint64_t retry_at_ms;
  char reason[256];
} wacq;

static void on_wacq(int rc, w2a_lease *l, const w2a_pool_unavailable *why, void *ud) {
  wacq *w = ud;
  w->done++;
  w->rc = rc;
  w->lease = l;
  w->at_ms = w2a_mono_us() / 1000u;
  w->order = ++*w->seq;
  if (why) {
    w->retry_at_ms = why->retry_at_ms;
    snprintf(w->reason, sizeof w->reason, "%s", why->reason);
  }
}

static void wacq_release(wacq *w) {
  w2a_outcome o = {.ok = 1};
  w2a_pool_report(w->e->pool, w->lease, &o);
  w->lease = NULL;
}

static uint64_t mono_ms(void) { return w2a_mono_us() / 1000u; }

/* One account, cap 1: A holds it, B waits and gets it promptly when A releases; a
 * second wait gives up after LEASE_WAIT with the unavailable reason. */
static void test_wait_release_and_timeout(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "wait", 3, 1000, 30), 0);
  add_account(&e, "w@example.com", 1, 0, NULL);
  wacq a = {.e = &e, .seq = &seq}, b = {.e = &e, .seq = &seq}, c = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &a);
  run_until(&e, &a.done, 1, 10000);
  T_EQ_INT(a.rc, 0);
  T_CHECK(a.lease != NULL);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &b);
  run_for(&e, 300);
  T_EQ_INT(b.done, 0); /* waiting, not failed */
  uint64_t t0 = mono_ms();
  wacq_release(&a);
  run_until(&e, &b.done, 1, 5000);
  T_EQ_INT(b.rc, 0);
  T_CHECK(b.lease != NULL);
  T_CHECK(b.at_ms - t0 < 100);
  /* B holds it now; C waits LEASE_WAIT (300 ms) and gives up */
  e.cfg.lease_wait_ms = 300;
  t0 = mono_ms();
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &c);
  run_until(&e, &c.done, 1, 5000);
  T_EQ_INT(c.rc, W2A_EAGAIN);
  T_CHECK(c.lease == NULL);
  T_CHECK(c.at_ms - t0 >= 300 && c.at_ms - t0 < 1000);
  T_CHECK(strstr(c.reason, "leased to their cap") != NULL);
  T_CHECK(strstr(c.reason, "waited") != NULL);
  /* Retry-After: B's lease expiry (LEASE_TTL 60 s here); an in-memory lease has none:
   * it ends with its request, whenever that is */
  if (g_mem)
    T_EQ_INT(c.retry_at_ms, 0);
  else
    T_CHECK(c.retry_at_ms > w2a_now_ms() + 50000 && c.retry_at_ms <= w2a_now_ms() + 60000);
  /* LEASE_WAIT 0: no waiting at all, as before */
  e.cfg.lease_wait_ms = 0;
  wacq d = {.e = &e, .seq = &seq};
  t0 = mono_ms();
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &d);
  run_until(&e, &d.done, 1, 5000);
  T_EQ_INT(d.rc, W2A_EAGAIN);
  T_CHECK(mono_ms() - t0 < 200);
  wacq_release(&b);
  run_for(&e, 100);
  env_down(&e);
}

/* Nothing busy, only a quota-exhausted account (and one cooling): fail at once. */
static void test_wait_not_when_unavailable(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "nowait", 3, 1000, 30), 0);
  int64_t q = add_account(&e, "qx@example.com", 1, 0, NULL);
  int64_t c = add_account(&e, "cx@example.com", 1, 0, NULL);
  w2a_store *s;
  w2a_err err;
  w2a_store_opts o = {.path = e.db};
  T_EQ_INT(w2a_store_open(&s, &o, &err), 0);
  uint64_t now = w2a_now_ms();
  T_EQ_INT(w2a_store_set_state(s, q, W2A_ST_QUOTA, "test", now + 3600000, now, &err), 0);
  T_EQ_INT(w2a_store_set_state(s, c, W2A_ST_COOLING, "test", now + 3600000, now, &err), 0);
  w2a_store_close(s);
  settle(&e);
  wacq a = {.e = &e, .seq = &seq};
  uint64_t t0 = mono_ms();
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &a); /* LEASE_WAIT is the default 10 s */
  run_until(&e, &a.done, 1, 5000);
  T_EQ_INT(a.rc, W2A_EAGAIN);
  T_CHECK(mono_ms() - t0 < 300);
  T_CHECK(strstr(a.reason, "1 quota_exhausted") != NULL);
  T_CHECK(strstr(a.reason, "waited") == NULL);
  T_CHECK(a.retry_at_ms >= now + 3600000 - 1000);
  env_down(&e);
}

/* Three waiters are served in the order they came; a newcomer queues behind them. */
static void test_wait_fifo(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "fifo", 3, 1000, 30), 0);
  add_account(&e, "f@example.com", 1, 0, NULL);
  wacq h = {.e = &e, .seq = &seq};
  wacq w[4];
  for (int i = 0; i < 4; i++)
    w[i] = (wacq){.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &h);
  run_until(&e, &h.done, 1, 10000);
  T_EQ_INT(h.rc, 0);
  for (int i = 0; i < 3; i++)
    w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &w[i]);
  run_for(&e, 150);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &w[3]); /* parks behind the three */
  run_for(&e, 150);
  for (int i = 0; i < 4; i++)
    T_EQ_INT(w[i].done, 0);
  wacq *prev = &h;
  for (int i = 0; i < 4; i++) {
    wacq_release(prev);
    run_until(&e, &w[i].done, 1, 5000);
    T_EQ_INT(w[i].rc, 0);
    T_EQ_INT(w[i].order, i + 2);
    for (int j = i + 1; j < 4; j++)
      T_EQ_INT(w[j].done, 0);
    prev = &w[i];
  }
  /* a newcomer arriving in the same tick as the release does not overtake a waiter */
  wacq x = {.e = &e, .seq = &seq}, n = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &x);
  run_for(&e, 150);
  T_EQ_INT(x.done, 0);
  wacq_release(prev);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &n);
  run_until(&e, &x.done, 1, 5000);
  T_EQ_INT(x.rc, 0);
  T_EQ_INT(n.done, 0);
  wacq_release(&x);
  run_until(&e, &n.done, 1, 5000);
  T_EQ_INT(n.rc, 0);
  wacq_release(&n);
  run_for(&e, 100);
  env_down(&e);
}

/* Close answers waiting acquires with an error; nothing leaks (ASan). */
static void test_wait_close(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "wclose", 3, 1000, 30), 0);
  add_account(&e, "c@example.com", 1, 0, NULL);
  wacq h = {.e = &e, .seq = &seq}, a = {.e = &e, .seq = &seq}, b = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &h);
  run_until(&e, &h.done, 1, 10000);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &a);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &b);
  run_for(&e, 200);
  T_EQ_INT(a.done + b.done, 0);
  wacq_release(&h); /* queued; the close below answers the waiters first */
  env_down(&e);
  T_EQ_INT(a.done, 1);
  T_EQ_INT(b.done, 1);
  T_CHECK(a.rc != 0 && b.rc != 0);
  T_CHECK(a.lease == NULL && b.lease == NULL);
  T_CHECK(strstr(a.reason, "shutting down") != NULL);
}

/* A caller going away cancels: the acquire is answered at once, whether it waits or its
 * first try is in flight (the lease that try takes is given back). */
static void test_wait_cancel(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "wcancel", 3, 1000, 30), 0);
  add_account(&e, "x@example.com", 1, 0, NULL);
  wacq h = {.e = &e, .seq = &seq}, a = {.e = &e, .seq = &seq}, b = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &h);
  run_until(&e, &h.done, 1, 10000);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &a);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &b);
  run_for(&e, 200);
  w2a_pool_acquire_cancel(e.pool, &a);
  T_EQ_INT(a.done, 1); /* answered from inside the cancel */
  T_EQ_INT(a.rc, W2A_ESTATE);
  w2a_pool_acquire_cancel(e.pool, &a); /* no longer pending: no-op */
  T_EQ_INT(a.done, 1);
  wacq_release(&h);
  run_until(&e, &b.done, 1, 5000); /* b, behind the cancelled a, gets the account */
  T_EQ_INT(b.rc, 0);
  wacq_release(&b);
  run_for(&e, 100);
  /* cancel while the first try is in flight: it leases, the pool gives it back */
  wacq c = {.e = &e, .seq = &seq}, d = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &c);
  w2a_pool_acquire_cancel(e.pool, &c);
  T_EQ_INT(c.done, 1);
  T_EQ_INT(c.rc, W2A_ESTATE);
  T_CHECK(c.lease == NULL);
  run_for(&e, 200);
  T_EQ_INT(c.done, 1);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &d);
  run_until(&e, &d.done, 1, 5000);
  T_EQ_INT(d.rc, 0);
  T_CHECK(mono_ms() - d.at_ms < 1000);
  wacq_release(&d);
  run_for(&e, 100);
  env_down(&e);
}

/* Exclusions hold while waiting: a waiter that excludes the busy account is not handed
 * it, and a waiter behind it still gets the account when it frees up. */
static void test_wait_exclusions(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "wexcl", 3, 1000, 30), 0);
  int64_t x = add_account(&e, "e1@example.com", 1, 0, NULL);
  int64_t y = add_account(&e, "e2@example.com", 1, 0, NULL);
  wacq h1 = {.e = &e, .seq = &seq}, h2 = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &h1);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &h2);
  run_until(&e, &h2.done, 1, 10000);
  run_until(&e, &h1.done, 1, 10000);
  T_CHECK(h1.lease && h2.lease);
  wacq *hx = h1.lease->account_id == x ? &h1 : &h2, *hy = hx == &h1 ? &h2 : &h1;
  wacq a = {.e = &e, .seq = &seq}, b = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, &x, 1, on_wacq, &a); /* waits for y only */
  run_for(&e, 100);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &b);
  run_for(&e, 100);
  T_EQ_INT(a.done + b.done, 0);
  wacq_release(hx); /* x frees: a must not take it, b (behind a) does */
  run_until(&e, &b.done, 1, 5000);
  T_EQ_INT(b.rc, 0);
  T_CHECK(b.lease && b.lease->account_id == x);
  T_EQ_INT(a.done, 0);
  wacq_release(hy);
  run_until(&e, &a.done, 1, 5000);
  T_EQ_INT(a.rc, 0);
  T_CHECK(a.lease && a.lease->account_id == y);
  wacq_release(&a);
  wacq_release(&b);
  run_for(&e, 100);
  env_down(&e);
}

/* ---- LEASES=memory only ------------------------------------------------------------ */

static w2a_store *side_store(env *e) { /* another connection, as the CLI would have */
  w2a_store *s = NULL;
  w2a_err err;
  w2a_store_opts o = {.path = e->db};
  T_EQ_INT(w2a_store_open(&s, &o, &err), 0);
  return s;
}

/* Changes made by another process (the CLI) reach the ledger: an account added is
 * leased at once, one disabled is not leased again, one enabled comes back. */
static void test_mem_other_process(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "other", 3, 1000, 30), 0);
  run_for(&e, 100); /* the first load: an empty pool */
  int64_t id = add_account(&e, "o@example.com", 4, 0, NULL);
  wacq a = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &a);
  run_until(&e, &a.done, 1, 5000);
  T_EQ_INT(a.rc, 0);
  T_CHECK(a.lease && a.lease->mem && a.lease->account_id == id);
  wacq_release(&a);
  w2a_store *s = side_store(&e);
  w2a_err err;
  uint64_t now = w2a_now_ms();
  T_EQ_INT(w2a_store_set_state(s, id, W2A_ST_DISABLED, "by the operator", 0, now, &err), 0);
  run_for(&e, 400); /* one sync (250 ms) sees the other connection's write */
  wacq b = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &b);
  run_until(&e, &b.done, 1, 5000);
  T_EQ_INT(b.rc, W2A_EAGAIN);
  T_CHECK(strstr(b.reason, "1 disabled") != NULL);
  T_EQ_INT(w2a_store_set_state(s, id, W2A_ST_AVAILABLE, "", 0, now, &err), 0);
  wacq c = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &c); /* finds nothing, looks again: there */
  run_until(&e, &c.done, 1, 5000);
  T_EQ_INT(c.rc, 0);
  wacq_release(&c);
  w2a_store_close(s);
  run_for(&e, 100);
  env_down(&e);
}

/* One process keeps the leases in memory: nobody else may lease from that database
 * (the error names the process), while the CLI (no lease lock) still opens it. */
static void test_mem_lock(void) {
  env e;
  T_EQ_INT(env_up(&e, "lock", 3, 1000, 30), 0);
  w2a_pool *other = NULL;
  w2a_err err;
  T_CHECK(w2a_pool_open(&other, &e.loop, &e.cfg, e.http, W2A_POOL_LEASER, &err) != 0);
  T_CHECK(strstr(err.msg, "in memory") != NULL);
  char pid[32];
  snprintf(pid, sizeof pid, "pid %d", (int)getpid());
  T_CHECK(strstr(err.msg, pid) != NULL);
  T_CHECK(w2a_pool_open(&other, &e.loop, &e.cfg, e.http, W2A_POOL_LEASER | W2A_POOL_SOLE, &err) !=
          0); /* a second `serve`: auto falls back, then refused */
  set(&e.cfg.leases, "memory");
  T_CHECK(w2a_pool_open(&other, &e.loop, &e.cfg, e.http, W2A_POOL_LEASER, &err) != 0);
  T_CHECK(strstr(err.msg, "LEASES=memory") != NULL);
  set(&e.cfg.leases, "auto");
  int n = 0;
  T_EQ_INT(w2a_pool_open(&other, &e.loop, &e.cfg, e.http, 0, &err), 0); /* the CLI */
  w2a_pool_close(other, closed_cb, &n);
  run_until(&e, &n, 1, 5000);
  env_down(&e);
}

typedef struct sess {
  int done, rc, n;
} sess;

static void on_sess(int rc, const w2a_lease *leases, int n, const w2a_pool_unavailable *why,
                    void *ud) {
  sess *s = ud;
  (void)leases;
  (void)why;
  s->done++;
  s->rc = rc;
  s->n = n;
}

static void on_released(int rc, void *ud) {
  (void)rc;
  ++*(int *)ud;
}

/* Least recently used first; usage is written (uses, successes, last use) although no
 * request wrote to the database; caps hold; session leases are rows the ledger counts. */
static void test_mem_lru_usage_sessions(void) {
  env e;
  int seq = 0;
  T_EQ_INT(env_up(&e, "lru", 3, 1000, 30), 0);
  int64_t ids[3];
  ids[0] = add_account(&e, "l1@example.com", 1, 0, NULL);
  ids[1] = add_account(&e, "l2@example.com", 1, 0, NULL);
  ids[2] = add_account(&e, "l3@example.com", 1, 0, NULL);
  run_for(&e, 400);
  int64_t order[9];
  for (int i = 0; i < 9; i++) {
    wacq a = {.e = &e, .seq = &seq};
    w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &a);
    run_until(&e, &a.done, 1, 5000);
    T_EQ_INT(a.rc, 0);
    order[i] = a.lease ? a.lease->account_id : -1;
    if (a.lease) wacq_release(&a);
    run_for(&e, 2); /* distinct last-use times */
  }
  for (int i = 3; i < 9; i++)
    T_EQ_INT(order[i], order[i - 3]); /* a rotation through all three */
  T_CHECK(order[0] != order[1] && order[1] != order[2] && order[0] != order[2]);
  /* caps: three held, a fourth finds every account busy (LEASE_WAIT 0: no wait) */
  e.cfg.lease_wait_ms = 0;
  wacq h[4];
  for (int i = 0; i < 4; i++) {
    h[i] = (wacq){.e = &e, .seq = &seq};
    w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &h[i]);
  }
  run_until(&e, &h[3].done, 1, 5000);
  run_until(&e, &h[2].done, 1, 5000);
  T_EQ_INT(h[0].rc + h[1].rc + h[2].rc, 0);
  T_EQ_INT(h[3].rc, W2A_EAGAIN);
  T_CHECK(strstr(h[3].reason, "3 leased to their cap") != NULL);
  for (int i = 0; i < 3; i++)
    wacq_release(&h[i]);
  /* a session (the admin API's allocate) takes rows; the ledger leaves it alone */
  e.cfg.accounts_per_request = 2;
  sess ss = {0};
  w2a_pool_allocate(e.pool, "s-1", on_sess, &ss);
  run_until(&e, &ss.done, 1, 5000);
  T_EQ_INT(ss.rc, 0);
  T_EQ_INT(ss.n, 2);
  wacq r1 = {.e = &e, .seq = &seq}, r2 = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &r1);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &r2);
  run_until(&e, &r2.done, 1, 5000);
  run_until(&e, &r1.done, 1, 5000);
  T_EQ_INT(r1.rc == 0 ? 1 : 0, 1);
  T_EQ_INT(r2.rc, W2A_EAGAIN); /* the third account only */
  wacq_release(&r1);
  int rel = 0;
  w2a_pool_release_session(e.pool, "s-1", on_released, &rel);
  run_until(&e, &rel, 1, 5000);
  run_for(&e, 300); /* the ledger reloads the rows' counts */
  wacq r3 = {.e = &e, .seq = &seq}, r4 = {.e = &e, .seq = &seq};
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &r3);
  w2a_pool_acquire(e.pool, NULL, 0, on_wacq, &r4);
  run_until(&e, &r4.done, 1, 5000);
  run_until(&e, &r3.done, 1, 5000);
  T_EQ_INT(r3.rc + r4.rc, 0);
  wacq_release(&r3);
  wacq_release(&r4);
  env_down(&e); /* the last usage is written at close */
  int64_t uses = 0, succ = 0;
  w2a_store *s = side_store(&e);
  for (int i = 0; i < 3; i++) {
    w2a_account a;
    w2a_err err;
    T_EQ_INT(w2a_store_get(s, ids[i], 0, &a, &err), 0);
    uses += a.uses;
    succ += a.successes;
    T_CHECK(a.last_used_ms > 0 && a.last_success_ms > 0);
    T_EQ_INT(a.active_leases, 0);
  }
  w2a_store_close(s);
  T_EQ_INT(uses, 9 + 3 + 1 + 2 + 2); /* rotation, caps, r1, sessions, r3/r4 */
  T_EQ_INT(succ, 9 + 3 + 1 + 2);
}

static void run_all(void) {
  T_RUN(test_single_flight);
  T_RUN(test_forced_401_rotation);
  T_RUN(test_quota_block_5xx);
  T_RUN(test_refresh_cap);
  T_RUN(test_wait_release_and_timeout);
  T_RUN(test_wait_not_when_unavailable);
  T_RUN(test_wait_fifo);
  T_RUN(test_wait_close);
  T_RUN(test_wait_cancel);
  T_RUN(test_wait_exclusions);
}

int main(void) {
  g_mem = 0;
  run_all();
  g_mem = 1;
  run_all();
  T_RUN(test_mem_other_process);
  T_RUN(test_mem_lock);
  T_RUN(test_mem_lru_usage_sessions);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/w2a-test-pool-%d", (int)getpid());
  if (system(cmd)) {
  }
  return t_done();
}
