/* test_store_batch.c - group commit and the checkpointer thread of the SQLite store:
 * a failing call in a batch rolls back only its own savepoint; nothing of a batch is
 * visible to another connection before batch_commit; the pool acknowledges a lease only
 * after the commit that holds it; the checkpointer keeps the WAL bounded under a burst. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/b64.h"
#include "common/config.h"
#include "common/util.h"
#include "http/client.h"
#include "pool/pool.h"
#include "pool/store.h"
#include "t.h"

static char dbpath[256];

static void fresh_path(const char *name) {
  snprintf(dbpath, sizeof dbpath, "/tmp/w2a-test-batch-%d/%s.db", (int)getpid(), name);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm", dbpath, dbpath, dbpath);
  if (system(cmd)) {
  }
}

static w2a_store *open_store(int ckpt_pages) {
  w2a_store *s = NULL;
  w2a_err err = {0};
  w2a_store_opts o = {
      .path = dbpath, .checkpoint_thread = ckpt_pages > 0, .checkpoint_pages = ckpt_pages};
  int rc = w2a_store_open(&s, &o, &err);
  if (rc) fprintf(stderr, "open: %s\n", err.msg);
  T_EQ_INT(rc, 0);
  return s;
}

static void make_jwt(uint64_t exp_s, char *out, size_t len) {
  char payload[128], b[256];
  snprintf(payload, sizeof payload, "{\"exp\":%llu,\"user_id\":\"u\"}", (unsigned long long)exp_s);
  w2a_b64_encode(payload, strlen(payload), b, 1, 0);
  snprintf(out, len, "eyJhbGciOiJSUzI1NiJ9.%s.sig", b);
}

static int64_t add(w2a_store *s, const char *email) {
  char jwt[512];
  make_jwt(w2a_now_ms() / 1000 + 3600, jwt, sizeof jwt);
  w2a_account_new a = {.email = email, .refresh_token = "rt", .id_token = jwt};
  int64_t id = 0;
  w2a_err err;
  T_EQ_INT(w2a_store_add(s, &a, 1000, &id, &err), 0);
  return id;
}

static int64_t count(sqlite3 *db, const char *q) {
  sqlite3_stmt *st = NULL;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

/* One call fails after it wrote (set_tokens on an account whose token row is gone:
 * the account row is updated, then the token update finds nothing): only its savepoint
 * rolls back, the calls around it commit. Another connection sees nothing before the
 * commit. */
static void test_batch_savepoints(void) {
  fresh_path("savepoints");
  w2a_store *s = open_store(0);
  int64_t a = add(s, "a@example.com"), b = add(s, "b@example.com");
  sqlite3 *raw;
  T_EQ_INT(sqlite3_open(dbpath, &raw), SQLITE_OK);
  char q[128];
  snprintf(q, sizeof q, "DELETE FROM tokens WHERE account_id = %lld", (long long)b);
  T_EQ_INT(sqlite3_exec(raw, q, NULL, NULL, NULL), SQLITE_OK);
  snprintf(q, sizeof q, "SELECT id_token_exp FROM accounts WHERE id = %lld", (long long)b);
  int64_t exp_before = count(raw, q);

  w2a_err err;
  T_EQ_INT(w2a_store_batch_begin(s, &err), 0);
  T_CHECK(w2a_store_batch_begin(s, &err) != 0); /* no nesting of batches */
  w2a_lease_req rq = {.count = 1, .now_ms = w2a_now_ms(), .ttl_ms = 60000};
  w2a_lease_row row;
  w2a_lease_none none;
  int n = 0;
  T_EQ_INT(w2a_store_lease_acquire(s, &rq, &row, &n, &none, &err), 0);
  T_EQ_INT(n, 1);
  w2a_account_clear(&row.acct);
  T_EQ_INT(w2a_store_set_tokens(s, b, "x.y.z", 42, NULL, w2a_now_ms(), &err), W2A_ENOTFOUND);
  w2a_account_meta m = {.label = "batched", .weight = -1, .cap = -1};
  T_EQ_INT(w2a_store_set_meta(s, a, &m, &err), 0);
  /* another connection: nothing committed yet */
  T_EQ_INT(count(raw, "SELECT count(*) FROM leases"), 0);
  T_EQ_INT(count(raw, "SELECT count(*) FROM accounts WHERE label = 'batched'"), 0);
  T_EQ_INT(w2a_store_batch_commit(s, &err), 0);
  T_EQ_INT(count(raw, "SELECT count(*) FROM leases"), 1);
  T_EQ_INT(count(raw, "SELECT count(*) FROM accounts WHERE label = 'batched'"), 1);
  T_EQ_INT(count(raw, q), exp_before); /* the failed call's write was rolled back */
  T_EQ_INT(count(raw, "SELECT sum(active_leases) FROM accounts"), 1);
  T_CHECK(w2a_store_batch_commit(s, &err) != 0); /* no batch open */

  /* a durable call inside a batch, and a batch rolled back by nobody: plain calls after */
  T_EQ_INT(w2a_store_batch_begin(s, &err), 0);
  T_EQ_INT(w2a_store_set_state(s, a, W2A_ST_DISABLED, "op", 0, w2a_now_ms(), &err), 0);
  T_EQ_INT(w2a_store_lease_release(s, row.id, row.account_id, NULL, w2a_now_ms(), &err), 0);
  T_EQ_INT(w2a_store_batch_commit(s, &err), 0);
  T_EQ_INT(count(raw, "SELECT count(*) FROM accounts WHERE state = 'disabled'"), 1);
  T_EQ_INT(count(raw, "SELECT count(*) FROM leases"), 0);
  T_EQ_INT(w2a_store_set_state(s, a, W2A_ST_AVAILABLE, NULL, 0, w2a_now_ms(), &err), 0);
  char buf[64];
  T_EQ_INT(w2a_store_integrity_check(s, buf, sizeof buf, &err), 0);
  T_EQ_STR(buf, "ok");
  sqlite3_close(raw);
  w2a_store_close(s);
}

/* A burst of lease traffic with a small threshold: the WAL never grows past the bound
 * (10 x the threshold plus one commit), and the checkpointer thread did the work. */
static void test_checkpointer_bounds_wal(void) {
  fresh_path("ckpt");
  enum { PAGES = 40 };
  w2a_store *s = open_store(PAGES);
  char email[64];
  for (int i = 0; i < 20; i++) {
    snprintf(email, sizeof email, "c%02d@example.com", i);
    add(s, email);
  }
  char wal[300];
  snprintf(wal, sizeof wal, "%s-wal", dbpath);
  off_t max = 0;
  w2a_err err;
  w2a_lease_result ok = {.ok = 1, .set_state = -1};
  for (int i = 0; i < 3000; i++) {
    w2a_lease_req rq = {.count = 1, .now_ms = w2a_now_ms(), .ttl_ms = 60000, .want_secrets = 1};
    w2a_lease_row row;
    w2a_lease_none none;
    int n = 0;
    if (w2a_store_lease_acquire(s, &rq, &row, &n, &none, &err) || n != 1) {
      T_CHECK(0);
      break;
    }
    w2a_store_lease_release(s, row.id, row.account_id, &ok, w2a_now_ms(), &err);
    w2a_account_clear(&row.acct);
    struct stat st;
    if (!stat(wal, &st) && st.st_size > max) max = st.st_size;
  }
  uint64_t bg = 0, inl = 0;
  T_EQ_INT(w2a_store_sqlite_checkpoints(s, &bg, &inl), 0);
  fprintf(stderr, "checkpointer: %llu background, %llu inline, max WAL %lld bytes\n",
          (unsigned long long)bg, (unsigned long long)inl, (long long)max);
  T_CHECK(bg > 0);
  T_CHECK(max <= (off_t)(11 * PAGES) * (4096 + 24) + 32);
  char buf[64];
  T_EQ_INT(w2a_store_integrity_check(s, buf, sizeof buf, &err), 0);
  T_EQ_STR(buf, "ok");
  w2a_store_close(s);
  /* a store without the thread has none */
  s = open_store(0);
  T_EQ_INT(w2a_store_sqlite_checkpoints(s, &bg, &inl), -1);
  w2a_store_close(s);
}

/* Through the pool: 16 acquires at once are batched by the worker; each callback must
 * find its lease already committed (another connection sees the row). */
typedef struct pctx {
  sqlite3 *raw;
  w2a_pool *pool;
  int got, committed;
  w2a_lease *held[16];
} pctx;

static void on_acq(int rc, w2a_lease *l, const w2a_pool_unavailable *why, void *ud) {
  pctx *c = ud;
  (void)why;
  if (rc || !l) {
    c->got++;
    return;
  }
  char q[160];
  snprintf(q, sizeof q, "SELECT count(*) FROM leases WHERE id = '%s'", l->lease_id);
  if (count(c->raw, q) == 1) c->committed++;
  c->held[c->got++] = l;
}

static void on_closed(void *ud) { ++*(int *)ud; }

/* Chained traffic: each callback reports and acquires again at once, so jobs arrive
 * while the worker runs a batch (a job queued then must not be lost or answered unrun). */
typedef struct chain {
  w2a_pool *pool;
  int issued, ok, failed, total;
} chain;

static void chain_acq(int rc, w2a_lease *l, const w2a_pool_unavailable *why, void *ud) {
  chain *c = ud;
  (void)why;
  if (rc || !l) {
    c->failed++;
    return;
  }
  c->ok++;
  w2a_outcome ok = {.ok = 1, .http_status = 200};
  w2a_pool_report(c->pool, l, &ok);
  if (c->issued < c->total) {
    c->issued++;
    w2a_pool_acquire(c->pool, NULL, 0, chain_acq, c);
  }
}

static void test_pool_ack_after_commit(void) {
  fresh_path("pool");
  w2a_store *s = open_store(0);
  char email[64];
  for (int i = 0; i < 16; i++) {
    snprintf(email, sizeof email, "p%02d@example.com", i);
    add(s, email);
  }
  w2a_store_close(s);
  uv_loop_t loop;
  uv_loop_init(&loop);
  setenv("W2A_ENV_FILE", "/dev/null", 1);
  w2a_config cfg;
  w2a_err err;
  T_EQ_INT(w2a_config_load(&cfg, "/dev/null", &err), 0);
  free(cfg.database_path);
  cfg.database_path = strdup(dbpath);
  cfg.lease_wait_ms = 0;
  w2a_http_client *http;
  w2a_http_client_opts ho = {0};
  T_EQ_INT(w2a_http_client_new(&http, &loop, &ho, &err), 0);
  pctx c = {0};
  T_EQ_INT(w2a_pool_open(&c.pool, &loop, &cfg, http, 0, &err), 0);
  T_EQ_INT(sqlite3_open(dbpath, &c.raw), SQLITE_OK);
  for (int round = 0; round < 5; round++) {
    c.got = c.committed = 0;
    for (int i = 0; i < 16; i++)
      w2a_pool_acquire(c.pool, NULL, 0, on_acq, &c);
    uint64_t t0 = w2a_mono_us();
    while (c.got < 16 && w2a_mono_us() - t0 < 10000000)
      uv_run(&loop, UV_RUN_ONCE);
    T_EQ_INT(c.got, 16);
    T_EQ_INT(c.committed, 16);
    w2a_outcome ok = {.ok = 1, .http_status = 200};
    for (int i = 0; i < c.got; i++)
      if (c.held[i]) w2a_pool_report(c.pool, c.held[i], &ok);
    memset(c.held, 0, sizeof c.held);
  }
  chain ch = {.pool = c.pool, .total = 3000};
  for (int i = 0; i < 8; i++) {
    ch.issued++;
    w2a_pool_acquire(c.pool, NULL, 0, chain_acq, &ch);
  }
  uint64_t t1 = w2a_mono_us();
  while (ch.ok + ch.failed < ch.total && w2a_mono_us() - t1 < 60000000)
    uv_run(&loop, UV_RUN_ONCE);
  T_EQ_INT(ch.failed, 0);
  T_EQ_INT(ch.ok, ch.total);
  int closed = 0;
  w2a_pool_close(c.pool, on_closed, &closed);
  while (closed < 1)
    uv_run(&loop, UV_RUN_ONCE);
  w2a_http_client_close(http, on_closed, &closed);
  while (closed < 2)
    uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_NOWAIT);
  T_EQ_INT(uv_loop_close(&loop), 0);
  /* every release committed too, each lease released exactly once */
  T_EQ_INT(count(c.raw, "SELECT count(*) FROM leases"), 0);
  T_EQ_INT(count(c.raw, "SELECT sum(active_leases) FROM accounts"), 0);
  T_EQ_INT(count(c.raw, "SELECT sum(successes) FROM accounts"), 80 + ch.total);
  sqlite3_close(c.raw);
  w2a_config_free(&cfg);
}

int main(void) {
  T_RUN(test_batch_savepoints);
  T_RUN(test_checkpointer_bounds_wal);
  T_RUN(test_pool_ack_after_commit);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/w2a-test-batch-%d", (int)getpid());
  if (system(cmd)) {
  }
  return t_done();
}
