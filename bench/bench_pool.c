/* bench_pool.c - account store: allocate+release latency at 100/1,000/10,000 accounts,
 * the selection query plans, and the cost of the status counts.
 *
 * Accounts carry realistic secrets (a ~1 KB JWT, a ~170-char refresh token), so rows
 * are the size they are in production. Each "op" is one lease_acquire (count 1, ID
 * token returned) plus one lease_release with a success result, in-process, on one
 * connection with the checkpointer thread, as the pool's worker runs them. Prints a
 * Markdown table.
 *
 * Concurrent mode (the last table): the same op through the pool's async API on a libuv
 * loop (w2a_pool_acquire, then w2a_pool_report with a success), 32 ops outstanding, 100
 * accounts, so the DB worker finds several jobs queued (group commit). Latency is from
 * the acquire call to its callback; CPU is the whole process's (loop + worker +
 * checkpointer) per op.
 *
 * In-memory mode (the tables after it): the same pool API with LEASES=memory (what
 * `serve` runs: ledger.h), one op outstanding and 32, at 100 and 10,000 accounts. An op
 * is acquire (answered on the next loop turn) plus a success report; the usage it
 * adds up is written by the worker every 250 ms, and that CPU is counted too.
 *
 * Usage: bench_pool [ops per size, default 20000] [dir, default /tmp] [conc: only the
 * pool-API modes] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "common/b64.h"
#include "common/config.h"
#include "common/util.h"
#include "http/client.h"
#include "pool/pool.h"
#include "pool/store.h"

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void jwt(char *out, size_t cap) {
  char payload[900], b[1300];
  int n = snprintf(payload, sizeof payload,
                   "{\"iss\":\"https://securetoken.google.com/astral-field-294621\","
                   "\"aud\":\"astral-field-294621\",\"exp\":%llu,\"user_id\":\"",
                   (unsigned long long)(w2a_now_ms() / 1000 + 3600));
  while (n < 700)
    payload[n++] = 'x';
  snprintf(payload + n, sizeof payload - (size_t)n, "\"}");
  w2a_b64_encode(payload, strlen(payload), b, 1, 0);
  snprintf(out, cap, "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.%s.%0256d", b, 7);
}

/* A fresh database at path holding naccts accounts with production-sized secrets (the
 * import timed into *import_us when given); the store is left open. */
static w2a_store *bench_db(const char *path, int naccts, int checkpoint_thread,
                           uint64_t *import_us) {
  char cmd[1600];
  snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm", path, path, path);
  if (system(cmd)) {
  }
  w2a_store *s;
  w2a_err err;
  w2a_store_opts o = {
      .path = path, .encryption_key = "bench key", .checkpoint_thread = checkpoint_thread};
  if (w2a_store_open(&s, &o, &err)) {
    fprintf(stderr, "open: %s\n", err.msg);
    exit(1);
  }
  static char tok[2048], rt[256];
  jwt(tok, sizeof tok);
  memset(rt, 'A', 170);
  w2a_account_new *in = calloc((size_t)naccts, sizeof *in);
  char(*emails)[48] = calloc((size_t)naccts, 48);
  for (int i = 0; i < naccts; i++) {
    snprintf(emails[i], 48, "bench%05d@example.com", i);
    in[i] = (w2a_account_new){.email = emails[i], .refresh_token = rt, .id_token = tok};
  }
  uint64_t t0 = w2a_mono_us();
  int rc = w2a_store_import(s, in, (size_t)naccts, W2A_IMPORT_SKIP, w2a_now_ms(), NULL, &err);
  if (import_us) *import_us = w2a_mono_us() - t0;
  free(in);
  free(emails);
  if (rc) {
    fprintf(stderr, "import: %s\n", err.msg);
    exit(1);
  }
  return s;
}

static void bench_size(int naccts, long ops, const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/w2a-bench-pool-%d/accounts-%d.db", dir, (int)getpid(), naccts);
  uint64_t import_us = 0;
  w2a_err err;
  /* checkpoints on their own thread, as the pool's store does */
  w2a_store *s = bench_db(path, naccts, 1, &import_us);
  uint64_t *lat = calloc((size_t)ops, sizeof *lat);
  w2a_lease_result ok = {.ok = 1, .set_state = -1};
  for (long i = 0; i < ops; i++) {
    w2a_lease_row row;
    w2a_lease_none none;
    int n = 0;
    uint64_t a = w2a_mono_ns();
    w2a_lease_req rq = {.count = 1, .now_ms = w2a_now_ms(), .ttl_ms = 120000, .want_secrets = 1};
    if (w2a_store_lease_acquire(s, &rq, &row, &n, &none, &err) || n != 1) {
      fprintf(stderr, "acquire failed: %s\n", err.msg);
      exit(1);
    }
    w2a_store_lease_release(s, row.id, row.account_id, &ok, w2a_now_ms(), &err);
    lat[i] = w2a_mono_ns() - a;
    w2a_account_clear(&row.acct);
  }
  qsort(lat, (size_t)ops, sizeof *lat, cmp_u64);
  uint64_t cnt[51];
  for (int i = 0; i < 51; i++) {
    w2a_store_stats c;
    uint64_t a = w2a_mono_ns();
    w2a_store_counts(s, w2a_now_ms(), &c, &err);
    cnt[i] = w2a_mono_ns() - a;
  }
  qsort(cnt, 51, sizeof *cnt, cmp_u64);
  printf("| %6d | %7.1f | %7.1f | %7.1f | %8.2f | %8.0f |\n", naccts, lat[ops / 2] / 1000.0,
         lat[ops * 99 / 100] / 1000.0, lat[ops - 1] / 1000.0, cnt[25] / 1e6,
         (double)import_us / 1000.0);
  if (naccts == 10000) {
    char plan[1024];
    static const char *const names[] = {"lru", "round-robin", "fill-first"};
    for (int sel = 0; sel < 3; sel++) {
      w2a_store_explain_selection(s, (w2a_selection)sel, plan, sizeof plan, &err);
      for (char *p = plan; *p; p++)
        if (*p == '\n') *p = ';';
      fprintf(stderr, "plan %-11s: %s\n", names[sel], plan);
    }
  }
  free(lat);
  w2a_store_close(s);
}

/* ---- concurrent mode ---- */

typedef struct conc {
  w2a_pool *pool;
  long issued, done, ops;
  uint64_t *lat;
  int failed;
} conc;

typedef struct slot {
  conc *c;
  uint64_t t0;
} slot;

static void conc_issue(slot *sl);

static void conc_acquired(int rc, w2a_lease *l, const w2a_pool_unavailable *why, void *ud) {
  slot *sl = ud;
  conc *c = sl->c;
  if (rc) {
    fprintf(stderr, "acquire failed: %s\n", why ? why->reason : "?");
    c->failed = 1;
    return;
  }
  c->lat[c->done++] = w2a_mono_ns() - sl->t0;
  w2a_outcome ok = {.ok = 1, .http_status = 200};
  w2a_pool_report(c->pool, l, &ok);
  conc_issue(sl);
}

static void conc_issue(slot *sl) {
  conc *c = sl->c;
  if (c->issued >= c->ops || c->failed) return;
  c->issued++;
  sl->t0 = w2a_mono_ns();
  w2a_pool_acquire(c->pool, NULL, 0, conc_acquired, sl);
}

static void conc_closed(void *ud) { ++*(int *)ud; }

static void bench_concurrent(long ops, const char *dir, int naccts, int conc_n, int mem) {
  char path[512];
  snprintf(path, sizeof path, "%s/w2a-bench-pool-%d/conc-%d-%d-%d.db", dir, (int)getpid(), naccts,
           conc_n, mem);
  w2a_err err;
  w2a_store *s = bench_db(path, naccts, 0, NULL);
  w2a_store_close(s);
  uv_loop_t loop;
  uv_loop_init(&loop);
  setenv("W2A_ENV_FILE", "/dev/null", 1);
  w2a_config cfg;
  if (w2a_config_load(&cfg, "/dev/null", &err)) {
    fprintf(stderr, "config: %s\n", err.msg);
    exit(1);
  }
  free(cfg.database_path);
  cfg.database_path = strdup(path);
  free(cfg.encryption_key);
  cfg.encryption_key = strdup("bench key");
  free(cfg.leases);
  cfg.leases = strdup(mem ? "memory" : "database");
  w2a_http_client *http;
  w2a_http_client_opts ho = {0};
  w2a_pool *pool;
  if (w2a_http_client_new(&http, &loop, &ho, &err) ||
      w2a_pool_open(&pool, &loop, &cfg, http, mem ? W2A_POOL_LEASER : 0, &err)) {
    fprintf(stderr, "pool: %s\n", err.msg);
    exit(1);
  }
  conc c = {.pool = pool, .ops = ops, .lat = calloc((size_t)ops, sizeof(uint64_t))};
  slot slots[32];
  if (mem) { /* the ledger's first load, then one lease of every account: the tokens
              * into its cache (the first lease of an account after a start reads its
              * token from the database, once) */
    uint64_t until = w2a_mono_us() + 300000;
    while (w2a_mono_us() < until)
      uv_run(&loop, UV_RUN_NOWAIT);
    conc w = {.pool = pool, .ops = naccts, .lat = calloc((size_t)naccts, sizeof(uint64_t))};
    slot ws[32];
    for (int i = 0; i < conc_n; i++) {
      ws[i].c = &w;
      conc_issue(&ws[i]);
    }
    while (w.done < w.ops && !w.failed)
      uv_run(&loop, UV_RUN_ONCE);
    free(w.lat);
  }
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  uint64_t t0 = w2a_mono_us();
  for (int i = 0; i < conc_n; i++) {
    slots[i].c = &c;
    conc_issue(&slots[i]);
  }
  while (c.done < c.ops && !c.failed)
    uv_run(&loop, UV_RUN_ONCE);
  uint64_t wall = w2a_mono_us() - t0;
  int closed = 0;
  w2a_pool_close(pool, conc_closed, &closed);
  while (closed < 1)
    uv_run(&loop, UV_RUN_ONCE);
  getrusage(RUSAGE_SELF, &r1);
  w2a_http_client_close(http, conc_closed, &closed);
  while (closed < 2)
    uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  w2a_config_free(&cfg);
  double cpu_us =
      (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) *
          1e6 +
      (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec -
               r0.ru_stime.tv_usec);
  long n = c.done;
  qsort(c.lat, (size_t)n, sizeof *c.lat, cmp_u64);
  printf("| %s | %d | %d | %ld | %.0f | %.1f | %.1f | %.1f | %.1f |\n", mem ? "memory" : "database",
         naccts, conc_n, n, n * 1e6 / (double)wall, cpu_us / (double)n, c.lat[n / 2] / 1000.0,
         c.lat[n * 99 / 100] / 1000.0, c.lat[n - 1] / 1000.0);
  free(c.lat);
}

/* The pool API, leases in the database (group commit) and in memory, side by side. */
static void api_modes(long ops, const char *dir) {
  printf("\n| pool API: leases in | accounts | outstanding | ops | ops/s | CPU µs/op | acquire "
         "p50 µs | p99 µs | max µs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  bench_concurrent(ops, dir, 100, 1, 0);
  bench_concurrent(ops, dir, 100, 32, 0);
  bench_concurrent(ops, dir, 100, 1, 1);
  bench_concurrent(ops, dir, 100, 32, 1);
  bench_concurrent(ops, dir, 10000, 1, 1);
  bench_concurrent(ops, dir, 10000, 32, 1);
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 20000;
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  if (argc > 3 && !strcmp(argv[3], "conc")) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/w2a-bench-pool-%d", dir, (int)getpid());
    if (system(cmd)) {
    }
    api_modes(ops, dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s/w2a-bench-pool-%d", dir, (int)getpid());
    if (system(cmd)) {
    }
    return 0;
  }
  printf("| accounts | allocate+release p50 µs | p99 µs | max µs | counts p50 ms | import ms |\n");
  printf("|---:|---:|---:|---:|---:|---:|\n");
  int sizes[3] = {100, 1000, 10000};
  for (int i = 0; i < 3; i++)
    bench_size(sizes[i], ops, dir);
  api_modes(ops, dir);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s/w2a-bench-pool-%d", dir, (int)getpid());
  if (system(cmd)) {
  }
  return 0;
}
