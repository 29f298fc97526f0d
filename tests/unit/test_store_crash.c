/* test_store_crash.c - kill -9 during a burst of imports and leases, then reopen.
 *
 * A child process runs two threads on one database: one imports batches of accounts
 * (one transaction each) and reports every acknowledged batch on a pipe; the other
 * takes leases with a 2 s TTL and releases only some of them. The parent kills the
 * child with SIGKILL at a random moment, three rounds in a row, and after each kill
 * checks: PRAGMA integrity_check is "ok"; every acknowledged account is there; and
 * once the TTL has passed since the kill, every lease is reclaimed (no account stays
 * leased, every account can be leased again). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "pool/store.h"
#include "t.h"

enum { BATCH = 25, TTL_MS = 2000 };

static char dbpath[256];
static int round_no;
static int pipe_w;

static void *importer(void *arg) {
  (void)arg;
  w2a_store *s;
  w2a_err err;
  w2a_store_opts o = {.path = dbpath, .encryption_key = "crash-test-key"};
  if (w2a_store_open(&s, &o, &err)) {
    fprintf(stderr, "  importer: %s\n", err.msg);
    _exit(3);
  }
  static char emails[BATCH][64];
  w2a_account_new in[BATCH];
  for (int b = 0;; b++) {
    for (int i = 0; i < BATCH; i++) {
      snprintf(emails[i], sizeof emails[i], "r%d-b%d-%d@example.com", round_no, b, i);
      in[i] = (w2a_account_new){.email = emails[i], .refresh_token = "rt-crash", .cap = 2};
    }
    if (w2a_store_import(s, in, BATCH, W2A_IMPORT_SKIP, w2a_now_ms(), NULL, &err)) _exit(4);
    if (write(pipe_w, &b, sizeof b) != sizeof b) _exit(5);
  }
  return NULL;
}

static void *leaser(void *arg) {
  (void)arg;
  w2a_store *s;
  w2a_err err;
  w2a_store_opts o = {.path = dbpath, .encryption_key = "crash-test-key"};
  if (w2a_store_open(&s, &o, &err)) _exit(6);
  for (long i = 0;; i++) {
    w2a_lease_row rows[3];
    w2a_lease_none none;
    int n = 0;
    w2a_lease_req rq = {.count = 3, .now_ms = w2a_now_ms(), .ttl_ms = TTL_MS};
    if (w2a_store_lease_acquire(s, &rq, rows, &n, &none, &err)) _exit(7);
    for (int k = 0; k < n; k++) {
      if ((i + k) % 3 == 0) /* the other two thirds are left for the reclaim */
        w2a_store_lease_release(s, rows[k].id, rows[k].account_id, NULL, w2a_now_ms(), &err);
      w2a_account_clear(&rows[k].acct);
    }
  }
  return NULL;
}

static int leased_cb(const w2a_account *a, void *ud) {
  int *v = ud;
  if (a->active_leases) v[0]++;
  if (!a->refresh_token || strcmp(a->refresh_token, "rt-crash")) v[1]++;
  v[2]++;
  return 0;
}

static void one_round(void) {
  int fds[2];
  T_EQ_INT(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    pipe_w = fds[1];
    pthread_t a, b;
    pthread_create(&a, NULL, importer, NULL);
    pthread_create(&b, NULL, leaser, NULL);
    pthread_join(a, NULL);
    _exit(0);
  }
  close(fds[1]);
  /* after the first acknowledged batch, let it run a random 200..800 ms more */
  int last = -1, b;
  /* A loaded CI machine (ASan, parallel tests, the key derivation at open) can take
   * seconds before the first batch, so the first wait is generous; it ends as soon as
   * one batch is acknowledged (reads may coalesce, so "any", not "batch 0"). */
  uint64_t start = w2a_now_ms(), first_deadline = start + 60000, until = first_deadline;
  while (w2a_now_ms() < until) {
    if (last >= 0 && until == first_deadline) until = w2a_now_ms() + 200 + w2a_random_u64() % 600;
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(fds[0], &rs);
    struct timeval tv = {0, 20000};
    if (select(fds[0] + 1, &rs, NULL, NULL, &tv) > 0 && read(fds[0], &b, sizeof b) == sizeof b)
      last = b;
  }
  kill(pid, SIGKILL);
  uint64_t killed_at = w2a_now_ms();
  while (read(fds[0], &b, sizeof b) == sizeof b)
    last = b; /* acknowledged before death */
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  if (!WIFSIGNALED(st)) /* the child's _exit code says which step failed */
    fprintf(stderr, "  round %d: the child exited with %d\n", round_no,
            WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  T_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  T_CHECK(last >= 0);

  w2a_store *s;
  w2a_err err;
  w2a_store_opts o = {.path = dbpath, .encryption_key = "crash-test-key"};
  T_EQ_INT(w2a_store_open(&s, &o, &err), 0);
  char ic[256];
  T_EQ_INT(w2a_store_integrity_check(s, ic, sizeof ic, &err), 0);
  T_EQ_STR(ic, "ok");
  int missing = 0;
  for (int bb = 0; bb <= last; bb++)
    for (int i = 0; i < BATCH; i++) {
      char e[64];
      w2a_account a;
      snprintf(e, sizeof e, "r%d-b%d-%d@example.com", round_no, bb, i);
      if (w2a_store_get_by_email(s, e, 0, &a, &err)) missing++;
    }
  T_EQ_INT(missing, 0);
  fprintf(stderr, "  round %d: killed after %d acknowledged batches\n", round_no, last + 1);

  /* leases: all gone once their TTL has passed since the kill, none before it ran out */
  w2a_store_stats c;
  T_EQ_INT(w2a_store_counts(s, killed_at, &c, &err), 0);
  int n = 0;
  T_EQ_INT(w2a_store_reclaim(s, killed_at + TTL_MS, &n, &err), 0);
  T_EQ_INT(w2a_store_counts(s, killed_at + TTL_MS, &c, &err), 0);
  T_EQ_INT(c.active_leases, 0);
  T_EQ_INT(c.leased_accounts, 0);
  T_EQ_INT(c.usable, c.total);
  int v[3] = {0, 0, 0};
  w2a_store_filter f = {.state = -1, .flags = W2A_STORE_SECRETS};
  T_EQ_INT(w2a_store_list(s, &f, leased_cb, v, &err), 0);
  T_EQ_INT(v[0], 0); /* no account stuck */
  T_EQ_INT(v[1], 0); /* every sealed token opens */
  T_EQ_INT(v[2], c.total);
  w2a_store_close(s);
}

static void test_kill9(void) {
  snprintf(dbpath, sizeof dbpath, "/tmp/w2a-test-crash-%d/accounts.db", (int)getpid());
  for (round_no = 0; round_no < 3; round_no++)
    one_round();
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/w2a-test-crash-%d", (int)getpid());
  if (system(cmd)) {
  }
}

int main(void) {
  T_RUN(test_kill9);
  return t_done();
}
