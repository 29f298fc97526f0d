/* bench_pool.c - account store: allocate+release latency at 100/1,000/10,000 accounts,
 * the selection query plans, and the cost of the status counts.
 *
 * Accounts carry realistic secrets (a ~1 KB JWT, a ~170-char refresh token), so rows
 * are the size they are in production. Each "op" is one lease_acquire (count 1, ID
 * token returned) plus one lease_release with a success result, in-process, on one
 * connection, as the pool's worker runs them. Prints a Markdown table.
 *
 * Usage: bench_pool [ops per size, default 20000] [dir, default /tmp] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/util.h"
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

static void bench_size(int naccts, long ops, const char *dir) {
  char path[512], cmd[1600];
  snprintf(path, sizeof path, "%s/w2a-bench-pool-%d/accounts-%d.db", dir, (int)getpid(), naccts);
  snprintf(cmd, sizeof cmd, "rm -f %s %s-wal %s-shm", path, path, path);
  if (system(cmd)) {
  }
  w2a_store *s;
  w2a_err err;
  w2a_store_opts o = {.path = path, .encryption_key = "bench key"};
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
  if (w2a_store_import(s, in, (size_t)naccts, W2A_IMPORT_SKIP, w2a_now_ms(), NULL, &err)) {
    fprintf(stderr, "import: %s\n", err.msg);
    exit(1);
  }
  uint64_t import_us = w2a_mono_us() - t0;
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
  free(in);
  free(emails);
  w2a_store_close(s);
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 20000;
  const char *dir = argc > 2 ? argv[2] : "/tmp";
  printf("| accounts | allocate+release p50 µs | p99 µs | max µs | counts p50 ms | import ms |\n");
  printf("|---:|---:|---:|---:|---:|---:|\n");
  int sizes[3] = {100, 1000, 10000};
  for (int i = 0; i < 3; i++)
    bench_size(sizes[i], ops, dir);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s/w2a-bench-pool-%d", dir, (int)getpid());
  if (system(cmd)) {
  }
  return 0;
}
