/* test_store_concurrency.c - caps and leases hold across threads and processes.
 *
 * Two processes (fork) of 32 threads each, every thread with its own connection to one
 * database file, run 100,000 allocate/release pairs in all (W2A_CONC_OPS overrides).
 * A shared-memory table (MAP_SHARED, so both processes see it) counts, per account, the
 * leases held right now: it is incremented after acquire commits and decremented before
 * release starts, so it can only under-count the database; it must never exceed the cap.
 * At the end: no lease row is left, every account's active_leases is 0, and the uses and
 * successes counters equal what the threads did. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "pool/store.h"
#include "t.h"

#ifndef NPROC
enum { NACCT = 40, NPROC = 2, NTHREAD = 32 };
#else
enum { NACCT = 40 };
#endif

typedef struct shared {
  atomic_int held[NACCT + 1];
  atomic_int over_cap;
  atomic_long acquired, released, ok_released, none, errors;
  int cap[NACCT + 1];
} shared;

static shared *sh;
static char dbpath[256];
static long ops_per_thread;

static void *worker(void *arg) {
  long t = (long)(intptr_t)arg;
  w2a_store *s = NULL;
  w2a_err err;
  w2a_store_opts o = {.path = dbpath, .busy_timeout_ms = 60000};
  if (w2a_store_open(&s, &o, &err)) {
    fprintf(stderr, "open: %s\n", err.msg);
    atomic_fetch_add(&sh->errors, 1);
    return NULL;
  }
  w2a_lease_row rows[2];
  w2a_lease_none none;
  w2a_lease_result ok = {.ok = 1, .set_state = -1};
  static const w2a_selection sels[3] = {W2A_SEL_LRU, W2A_SEL_ROUND_ROBIN, W2A_SEL_FILL_FIRST};
  for (long i = 0; i < ops_per_thread;) {
    w2a_lease_req rq = {.count = 1 + (int)(t & 1), /* half the threads want two accounts */
                        .now_ms = w2a_now_ms(),
                        .ttl_ms = 600000,
                        .selection = sels[t % 3]};
    int n = 0;
    if (w2a_store_lease_acquire(s, &rq, rows, &n, &none, &err)) {
      fprintf(stderr, "acquire: %s\n", err.msg);
      atomic_fetch_add(&sh->errors, 1);
      continue;
    }
    if (!n) {
      atomic_fetch_add(&sh->none, 1);
      continue;
    }
    for (int k = 0; k < n; k++) {
      int64_t a = rows[k].account_id;
      int h = atomic_fetch_add(&sh->held[a], 1) + 1;
      if (h > sh->cap[a]) atomic_fetch_add(&sh->over_cap, 1);
      atomic_fetch_add(&sh->acquired, 1);
    }
    for (int k = 0; k < n; k++) {
      int64_t a = rows[k].account_id;
      atomic_fetch_sub(&sh->held[a], 1);
      int use_ok = (i + k) % 2 == 0;
      int rc = w2a_store_lease_release(s, rows[k].id, a, use_ok ? &ok : NULL, w2a_now_ms(), &err);
      if (rc) {
        fprintf(stderr, "release: %s\n", err.msg);
        atomic_fetch_add(&sh->errors, 1);
      } else {
        atomic_fetch_add(&sh->released, 1);
        if (use_ok) atomic_fetch_add(&sh->ok_released, 1);
      }
      w2a_account_clear(&rows[k].acct);
    }
    i++;
  }
  w2a_store_close(s);
  return NULL;
}

static void run_process(int p) {
  pthread_t th[NTHREAD];
  for (long t = 0; t < NTHREAD; t++)
    pthread_create(&th[t], NULL, worker, (void *)(intptr_t)(p * NTHREAD + t));
  for (int t = 0; t < NTHREAD; t++)
    pthread_join(th[t], NULL);
}

static int sum_cb(const w2a_account *a, void *ud) {
  int64_t *v = ud;
  v[0] += a->uses;
  v[1] += a->successes;
  v[2] += a->active_leases;
  return 0;
}

static void test_two_processes_64_threads(void) {
  const char *env = getenv("W2A_CONC_OPS");
  long total = env ? atol(env) : 100000;
  ops_per_thread = (total + NPROC * NTHREAD - 1) / (NPROC * NTHREAD);
  snprintf(dbpath, sizeof dbpath, "/tmp/w2a-test-conc-%d/accounts.db", (int)getpid());
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  T_CHECK(sh != MAP_FAILED);
  memset(sh, 0, sizeof *sh);

  w2a_store *s = NULL;
  w2a_err err;
  w2a_store_opts o = {.path = dbpath};
  T_EQ_INT(w2a_store_open(&s, &o, &err), 0);
  w2a_account_new in[NACCT];
  char emails[NACCT][32];
  for (int i = 0; i < NACCT; i++) {
    snprintf(emails[i], sizeof emails[i], "c%02d@example.com", i);
    in[i] = (w2a_account_new){.email = emails[i], .refresh_token = "rt", .cap = 1 + i % 3};
  }
  T_EQ_INT(w2a_store_import(s, in, NACCT, W2A_IMPORT_SKIP, 1, NULL, &err), 0);
  for (int i = 1; i <= NACCT; i++) {
    w2a_account a;
    T_EQ_INT(w2a_store_get(s, i, 0, &a, &err), 0);
    sh->cap[i] = a.cap;
  }

  uint64_t t0 = w2a_mono_us();
  pid_t kids[NPROC];
  for (int p = 0; p < NPROC; p++) {
    kids[p] = fork();
    if (kids[p] == 0) {
      w2a_store_close(s); /* never use a parent's connection in the child */
      run_process(p);
      _exit(0);
    }
  }
  for (int p = 0; p < NPROC; p++) {
    int st = 0;
    waitpid(kids[p], &st, 0);
    T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  double secs = (double)(w2a_mono_us() - t0) / 1e6;
  long pairs = ops_per_thread * NPROC * NTHREAD;
  fprintf(stderr,
          "  %ld allocate/release ops (%ld leases) by %d threads in %d processes: %.1f s,"
          " %ld empty acquires\n",
          pairs, (long)sh->acquired, NPROC * NTHREAD, NPROC, secs, (long)sh->none);

  T_EQ_INT(sh->errors, 0);
  T_EQ_INT(sh->over_cap, 0);
  T_EQ_INT(sh->acquired, sh->released);
  T_CHECK(sh->acquired >= pairs);
  w2a_store_stats c;
  T_EQ_INT(w2a_store_counts(s, w2a_now_ms(), &c, &err), 0);
  T_EQ_INT(c.active_leases, 0);
  T_EQ_INT(c.leased_accounts, 0);
  int64_t v[3] = {0, 0, 0};
  T_EQ_INT(w2a_store_list(s, NULL, sum_cb, v, &err), 0);
  T_EQ_INT(v[0], sh->acquired);    /* uses */
  T_EQ_INT(v[1], sh->ok_released); /* successes */
  T_EQ_INT(v[2], 0);               /* active_leases */
  char ic[256];
  T_EQ_INT(w2a_store_integrity_check(s, ic, sizeof ic, &err), 0);
  T_EQ_STR(ic, "ok");
  w2a_store_close(s);
  munmap(sh, sizeof *sh);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/w2a-test-conc-%d", (int)getpid());
  if (system(cmd)) {
  }
}

int main(void) {
  T_RUN(test_two_processes_64_threads);
  return t_done();
}
