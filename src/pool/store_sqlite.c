/* store_sqlite.c - the SQLite backend of the account store (store.h).
 *
 * Invariants
 * - accounts.active_leases equals the number of rows in `leases` for that account, and
 *   never exceeds cap at the moment a lease is taken: every change to either happens in
 *   one BEGIN IMMEDIATE transaction, so the write lock serialises them across threads
 *   and processes.
 * - A lease that was never released is deleted by the first transaction that sees it
 *   expired (every acquire reclaims lazily; the pool also reclaims periodically), so a
 *   crashed holder cannot keep an account forever.
 * - accounts.probe_lease names the one half-open probe lease of a cooling account.
 *
 * Durability (WAL mode): synchronous=FULL for accounts, tokens, imports and state
 * changes (fsync of the WAL at each commit: acknowledged means on disk, even across a
 * power loss). Plain lease churn (acquire, extend, successful release) commits with
 * synchronous=NORMAL: in WAL mode that is still durable across a process crash or
 * kill -9 (the commit is in the WAL file); only an OS crash or power loss can drop the
 * last lease commits, and then every holder of those leases died with the machine, so
 * the rows would have been reclaimed by expiry anyway. The next FULL commit syncs them.
 * This keeps allocate+release in tens of microseconds instead of two fsyncs.
 *
 * Group commit (w2a_store_batch_begin/commit): one BEGIN IMMEDIATE around many calls,
 * each writing call in a SAVEPOINT of its own, so a failing call rolls back only its own
 * changes. A batch commits with synchronous=NORMAL (the setting cannot change inside a
 * transaction); when a call inside asked for FULL, the WAL is fsynced right after the
 * COMMIT, which is what a FULL commit does, before batch_commit returns.
 *
 * Checkpoints (opts.checkpoint_thread): the connection's automatic checkpoint is replaced
 * by a WAL hook that wakes a low-priority thread with its own connection once the WAL
 * holds checkpoint_pages pages; that thread runs PASSIVE checkpoints (they never block a
 * writer: the copying and the fsyncs happen there) and, after a few idle seconds, one
 * TRUNCATE. SQLite restarts the WAL only once a checkpoint copied it to its last frame,
 * which a background pass manages only in a pause between commits; under unbroken
 * traffic the WAL reaches 10 x the threshold and the committing connection checkpoints
 * by itself (copying only what the background passes left), so the WAL stays bounded.
 * The thread and its connection start the first time the WAL reaches the threshold, not
 * at open: until then there is nothing for them to do (a WAL below the threshold is left
 * as SQLite's own auto-checkpoint would leave it), and a second connection (its schema,
 * page cache, registered functions) plus a thread cost ~72 kB of RSS in an idle `serve`
 * (10868 -> 10796 kB, ASLR off). Commits are as durable as before: checkpoints only copy
 * committed frames into the database file. If the thread cannot start or open its
 * connection, the committing connection checkpoints by itself at the threshold.
 *
 * Busy handling: a custom busy handler sleeps 20 µs..1 ms with jitter instead of
 * SQLite's coarse default, so dozens of writers on one file progress fairly, up to the
 * configured timeout. One connection per w2a_store, used by one thread at a time
 * (SQLITE_OPEN_NOMUTEX). */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "secret.h"
#include "store.h"

int w2a_store_sqlite_open(w2a_store **out, const w2a_store_opts *o, w2a_err *err);

/* ---- schema ------------------------------------------------------------------------- */

/* Each entry moves the schema from version i to i+1 (PRAGMA user_version). Never edit
 * a shipped entry; append a new one. */
static const char *const migrations[] = {
    /* 1: accounts, leases, meta */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE accounts("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " uid TEXT NOT NULL DEFAULT '',"
    " label TEXT NOT NULL DEFAULT '',"
    " refresh_token TEXT NOT NULL,"
    " id_token TEXT NOT NULL DEFAULT '',"
    " id_token_exp INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'available',"
    " state_reason TEXT NOT NULL DEFAULT '',"
    " state_until INTEGER NOT NULL DEFAULT 0,"
    " probe_lease TEXT,"
    " quota_limit INTEGER NOT NULL DEFAULT -1,"
    " quota_used INTEGER NOT NULL DEFAULT -1,"
    " quota_reset INTEGER NOT NULL DEFAULT 0,"
    " quota_unlimited INTEGER NOT NULL DEFAULT 0,"
    " quota_updated INTEGER NOT NULL DEFAULT 0,"
    " quota_low INTEGER NOT NULL DEFAULT 0,"
    " uses INTEGER NOT NULL DEFAULT 0,"
    " successes INTEGER NOT NULL DEFAULT 0,"
    " errors INTEGER NOT NULL DEFAULT 0,"
    " consecutive_failures INTEGER NOT NULL DEFAULT 0,"
    " window_start INTEGER NOT NULL DEFAULT 0,"
    " window_failures INTEGER NOT NULL DEFAULT 0,"
    " refresh_failures INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL DEFAULT 0,"
    " last_used INTEGER NOT NULL DEFAULT 0,"
    " last_success INTEGER NOT NULL DEFAULT 0,"
    " last_error_at INTEGER NOT NULL DEFAULT 0,"
    " last_refresh INTEGER NOT NULL DEFAULT 0,"
    " refresh_lock_until INTEGER NOT NULL DEFAULT 0,"
    " cap INTEGER NOT NULL DEFAULT 1 CHECK(cap >= 1),"
    " weight INTEGER NOT NULL DEFAULT 1,"
    " active_leases INTEGER NOT NULL DEFAULT 0 CHECK(active_leases >= 0));"
    /* selection: one index per order, equality on (state, quota_low) first */
    "CREATE INDEX accounts_lru ON accounts(state, quota_low, last_used, id);"
    "CREATE INDEX accounts_fill ON accounts(state, quota_low, weight DESC, id);"
    "CREATE INDEX accounts_rr ON accounts(state, quota_low);"
    "CREATE INDEX accounts_until ON accounts(state, state_until);"
    "CREATE INDEX accounts_token ON accounts(id_token_exp);"
    "CREATE INDEX accounts_quota ON accounts(quota_updated);"
    "CREATE TABLE leases("
    " id TEXT PRIMARY KEY,"
    " account_id INTEGER NOT NULL,"
    " holder TEXT NOT NULL DEFAULT '',"
    " pid INTEGER NOT NULL DEFAULT 0,"
    " probe INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL) WITHOUT ROWID;"
    /* Only the expiry is indexed: every index is one more page written per lease, and
     * holder/account lookups (session release, account delete) scan the live leases,
     * which are few (at most the sum of the caps). */
    "CREATE INDEX leases_expiry ON leases(expires_at);",
    /* 2: secrets move to their own table, so account rows stay small: the status counts
     * scan them, and every lease rewrites one (a 1 KB JWT in the row made both cost
     * several times more). */
    "CREATE TABLE tokens("
    " account_id INTEGER PRIMARY KEY,"
    " refresh_token TEXT NOT NULL,"
    " id_token TEXT NOT NULL DEFAULT '');"
    "INSERT INTO tokens(account_id, refresh_token, id_token)"
    " SELECT id, refresh_token, id_token FROM accounts;"
    "ALTER TABLE accounts DROP COLUMN refresh_token;"
    "ALTER TABLE accounts DROP COLUMN id_token;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

#define ACCT_COLS                                                                                  \
  "id, email, uid, label, NULL, NULL, id_token_exp, state, state_reason,"                          \
  " state_until, probe_lease IS NOT NULL, quota_limit, quota_used, quota_reset,"                   \
  " quota_unlimited, quota_updated, uses, successes, errors, consecutive_failures,"                \
  " window_failures, refresh_failures, last_error, created_at, last_used, last_success,"           \
  " last_error_at, last_refresh, refresh_lock_until, cap, weight, active_leases, quota_low"

#define PICK_WHERE "state = 'available' AND quota_low = ?1 AND active_leases < cap"

enum {
  Q_BEGIN,
  Q_COMMIT,
  Q_ROLLBACK,
  Q_SAVEPOINT,
  Q_RELEASE,
  Q_ROLLBACK_TO,
  Q_SYNC_FULL,
  Q_SYNC_NORMAL,
  Q_RECLAIM,
  Q_LEASE_DEC,
  Q_READMIT,
  Q_PICK_LRU,
  Q_PICK_RR,
  Q_PICK_FILL,
  Q_PICK_PROBE,
  Q_LEASE_INS,
  Q_LEASE_INC,
  Q_LEASE_DEL,
  Q_LEASE_EXT,
  Q_USAGE,
  Q_DATA_VERSION,
  Q_HOLDER_DEL,
  Q_RESULT_OK,
  Q_ANY_EXPIRED,
  Q_RELEASE_OK,
  Q_TOKENS,
  Q_GET_ID,
  Q_GET_EMAIL,
  Q_META_GET,
  Q_META_SET,
  Q__N
};

static const char *const sql[Q__N] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT call",
    [Q_RELEASE] = "RELEASE call",
    [Q_ROLLBACK_TO] = "ROLLBACK TO call",
    [Q_SYNC_FULL] = "PRAGMA synchronous=FULL",
    [Q_SYNC_NORMAL] = "PRAGMA synchronous=NORMAL",
    [Q_RECLAIM] = "DELETE FROM leases WHERE expires_at <= ?1 RETURNING id, account_id",
    [Q_RELEASE_OK] = "UPDATE accounts SET active_leases = active_leases - 1,"
                     " probe_lease = CASE WHEN probe_lease = ?3 THEN NULL ELSE probe_lease END,"
                     " successes = successes + 1, consecutive_failures = 0, window_failures = 0,"
                     " last_success = ?2,"
                     " state = CASE WHEN state = 'cooling' THEN 'available' ELSE state END,"
                     " state_reason = CASE WHEN state = 'cooling' THEN '' ELSE state_reason END,"
                     " state_until = CASE WHEN state = 'cooling' THEN 0 ELSE state_until END"
                     " WHERE id = ?1 AND active_leases > 0",
    [Q_ANY_EXPIRED] = "SELECT 1 FROM leases WHERE expires_at <= ?1 LIMIT 1",
    [Q_LEASE_DEC] = "UPDATE accounts SET active_leases = active_leases - 1,"
                    " probe_lease = CASE WHEN probe_lease = ?2 THEN NULL ELSE probe_lease END"
                    " WHERE id = ?1 AND active_leases > 0",
    [Q_READMIT] = "UPDATE accounts SET state = 'available', state_reason = '', state_until = 0,"
                  " quota_low = 0 WHERE state = 'quota_exhausted' AND state_until <= ?1",
    [Q_PICK_LRU] = "SELECT id FROM accounts WHERE " PICK_WHERE " ORDER BY last_used, id LIMIT ?2",
    [Q_PICK_RR] = "SELECT id FROM accounts WHERE " PICK_WHERE " AND id > ?3 ORDER BY id LIMIT ?2",
    [Q_PICK_FILL] =
        "SELECT id FROM accounts WHERE " PICK_WHERE " ORDER BY weight DESC, id LIMIT ?2",
    [Q_PICK_PROBE] = "SELECT id FROM accounts WHERE state = 'cooling' AND state_until <= ?1"
                     " AND probe_lease IS NULL AND active_leases < cap"
                     " ORDER BY state_until LIMIT ?2",
    [Q_LEASE_INS] = "INSERT INTO leases(id, account_id, holder, pid, probe, created_at,"
                    " expires_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_LEASE_INC] = "UPDATE accounts SET active_leases = active_leases + 1, last_used = ?2,"
                    " uses = uses + 1, probe_lease = coalesce(?3, probe_lease)"
                    " WHERE id = ?1 AND active_leases < cap",
    [Q_LEASE_DEL] = "DELETE FROM leases WHERE id = ?1 RETURNING account_id, probe",
    [Q_RESULT_OK] = "UPDATE accounts SET successes = successes + 1, consecutive_failures = 0,"
                    " window_failures = 0, last_success = ?2,"
                    " state = CASE WHEN state = 'cooling' THEN 'available' ELSE state END,"
                    " state_reason = CASE WHEN state = 'cooling' THEN '' ELSE state_reason END,"
                    " state_until = CASE WHEN state = 'cooling' THEN 0 ELSE state_until END"
                    " WHERE id = ?1",
    [Q_LEASE_EXT] = "UPDATE leases SET expires_at = ?2 WHERE id = ?1",
    [Q_USAGE] = "UPDATE accounts SET uses = uses + ?2, successes = successes + ?3,"
                " last_used = max(last_used, ?4), last_success = max(last_success, ?5)"
                " WHERE id = ?1",
    [Q_DATA_VERSION] = "PRAGMA data_version",
    [Q_HOLDER_DEL] = "DELETE FROM leases WHERE holder = ?1 RETURNING id, account_id",
    [Q_GET_ID] = "SELECT " ACCT_COLS " FROM accounts WHERE id = ?1",
    [Q_GET_EMAIL] = "SELECT " ACCT_COLS " FROM accounts WHERE email = ?1",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_TOKENS] = "SELECT refresh_token, id_token FROM tokens WHERE account_id = ?1",
    [Q_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2)"
                   " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
};

typedef struct ckpt ckpt;

typedef struct sq {
  w2a_store base;
  int batch;      /* a group-commit batch is open: calls nest in savepoints */
  int batch_full; /* a call in the batch asked for a durable (FULL) commit */
  ckpt *ck;       /* the checkpointer thread, when opts.checkpoint_thread */
  sqlite3 *db;
  sqlite3_stmt *q[Q__N];
  int sync_full; /* current PRAGMA synchronous: 1 FULL, 0 NORMAL, -1 unknown */
  int has_key;
  int sealed_no_key; /* tokens are sealed but no key was given: secrets unavailable */
  unsigned char key[W2A_SECRET_KEY_LEN];
  int busy_timeout_ms;
  uint64_t busy_start_us;
  int readonly;
} sq;

/* ---- small helpers ------------------------------------------------------------------ */

static int dberr(sq *s, w2a_err *err, const char *what) {
  int code = sqlite3_errcode(s->db);
  return w2a_errf(err, W2A_EIO, "store: %s: %s%s", what, sqlite3_errmsg(s->db),
                  code == SQLITE_BUSY ? " (database busy past the timeout)" : "");
}

static sqlite3_stmt *stmt(sq *s, int i) {
  if (!s->q[i] &&
      sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL) != SQLITE_OK)
    return NULL;
  sqlite3_reset(s->q[i]);
  sqlite3_clear_bindings(s->q[i]);
  return s->q[i];
}

/* Step a statement that returns no rows (or whose rows we ignore). */
static int run(sq *s, int i, w2a_err *err) {
  sqlite3_stmt *st = stmt(s, i);
  if (!st) return dberr(s, err, sql[i]);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
  }
  sqlite3_reset(st);
  return r == SQLITE_DONE ? 0 : dberr(s, err, sql[i]);
}

static int exec(sq *s, const char *text, w2a_err *err) {
  char *msg = NULL;
  if (sqlite3_exec(s->db, text, NULL, NULL, &msg) != SQLITE_OK) {
    int rc = w2a_errf(err, W2A_EIO, "store: %s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return rc;
  }
  return 0;
}

static int set_sync(sq *s, int full, w2a_err *err) {
  if (s->sync_full == full) return 0;
  int rc = run(s, full ? Q_SYNC_FULL : Q_SYNC_NORMAL, err);
  if (!rc) s->sync_full = full;
  return rc;
}

/* Writers of one process queue on this mutex rather than polling SQLite's file lock,
 * so threads hand the write lock over without sleeping; the busy handler is left to
 * arbitrate between processes. Held from BEGIN IMMEDIATE to COMMIT/ROLLBACK only. */
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;

static int batch_lost(w2a_err *err) {
  return w2a_errf(err, W2A_EIO, "store: the batch's transaction was rolled back by an error");
}

static int tx_begin(sq *s, int full, w2a_err *err) {
  if (s->batch) {
    /* An I/O error or full disk earlier in the batch may have rolled it all back; then
     * nothing may run outside it: the batch fails and its calls are run again. */
    if (sqlite3_get_autocommit(s->db)) return batch_lost(err);
    s->batch_full |= full;
    return run(s, Q_SAVEPOINT, err);
  }
  int rc = set_sync(s, full, err);
  if (rc) return rc;
  pthread_mutex_lock(&write_mu);
  rc = run(s, Q_BEGIN, err);
  if (rc) pthread_mutex_unlock(&write_mu);
  return rc;
}

/* Commit when rc is 0, else roll back; returns rc (or the commit's failure). */
static int tx_end(sq *s, int rc, w2a_err *err) {
  if (s->batch) {
    if (sqlite3_get_autocommit(s->db)) return rc ? rc : batch_lost(err);
    if (rc) run(s, Q_ROLLBACK_TO, NULL);
    int r2 = run(s, Q_RELEASE, rc ? NULL : err);
    return rc ? rc : r2;
  }
  if (!rc) rc = run(s, Q_COMMIT, err);
  if (rc && !sqlite3_get_autocommit(s->db)) run(s, Q_ROLLBACK, NULL);
  pthread_mutex_unlock(&write_mu);
  return rc;
}

static int busy_cb(void *ud, int count) {
  sq *s = ud;
  uint64_t now = w2a_mono_us();
  if (count == 0) s->busy_start_us = now;
  if (now - s->busy_start_us >= (uint64_t)s->busy_timeout_ms * 1000u) return 0;
  if (count < 4) {
    sched_yield(); /* the holder is usually one short transaction away from done */
    return 1;
  }
  unsigned base = count < 10 ? 20u << (count - 4) : 1000u;
  usleep(base / 2 + (unsigned)(w2a_random_u64() % base));
  return 1;
}

/* ---- group commit ------------------------------------------------------------------- */

static int sq_batch_begin(w2a_store *base, w2a_err *err) {
  sq *s = (sq *)base;
  if (s->batch) return w2a_errf(err, W2A_ESTATE, "store: a batch is already open");
  int rc = tx_begin(s, 0, err);
  if (rc) return rc;
  s->batch = 1;
  s->batch_full = 0;
  return 0;
}

/* 0: committed (durably when a call asked for it). W2A_EIO: rolled back, nothing of the
 * batch is in the database. W2A_ESTATE: committed, but the fsync a durable call needed
 * failed (like a failed FULL commit: the data is there, its durability unknown). */
static int sq_batch_commit(w2a_store *base, w2a_err *err) {
  sq *s = (sq *)base;
  if (!s->batch) return w2a_errf(err, W2A_ESTATE, "store: no batch is open");
  s->batch = 0;
  if (sqlite3_get_autocommit(s->db)) {
    pthread_mutex_unlock(&write_mu);
    return batch_lost(err);
  }
  int rc = tx_end(s, 0, err);
  if (rc) return W2A_EIO;
  if (!s->batch_full) return 0;
  sqlite3_file *wal = NULL;
  if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
      !wal || !wal->pMethods || wal->pMethods->xSync(wal, SQLITE_SYNC_FULL) != SQLITE_OK)
    return w2a_errf(err, W2A_ESTATE, "store: batch committed but the WAL fsync failed");
  return 0;
}

/* ---- checkpointer ------------------------------------------------------------------- */

#define CKPT_IDLE_TRUNCATE 5 /* idle seconds before the WAL file is truncated */

struct ckpt {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Held through every checkpoint of this store's, so the fallback on the committing
   * thread waits for a background pass instead of failing on SQLite's checkpoint lock.
   * Order: write_mu, then run_mu. */
  pthread_mutex_t run_mu;
  sqlite3 *db; /* the thread's own connection, opened by the thread */
  char *path;
  int pages;        /* WAL size that wakes the thread (and first starts it) */
  int started;      /* the thread was created: only the hook (the store's user) sets it */
  int failed;       /* atomic: no thread or no connection: the hook checkpoints inline */
  int stop, wake;   /* under mu */
  uint64_t commits; /* under mu: commits seen by the hook */
  uint64_t background, inline_;
};

static void *ckpt_main(void *arg);

/* Runs on the committing thread after each commit, the write lock already released. */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int npages) {
  sq *s = ud;
  ckpt *c = s->ck;
  if (npages >= c->pages && !c->started) {
    /* the first time there is work: the thread opens its connection itself, so this
     * commit does not wait for it */
    c->started = 1;
    if (pthread_create(&c->thread, NULL, ckpt_main, c)) {
      c->started = 0;
      __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
    }
  }
  if (npages >= 10 * c->pages ||
      (npages >= c->pages && __atomic_load_n(&c->failed, __ATOMIC_RELAXED))) {
    /* Far behind: a background pass cannot finish while commits keep coming, and only a
     * WAL copied to its last frame is restarted. Here no writer of this process runs (the
     * caller holds write_mu), so this pass copies what the last background pass left. */
    pthread_mutex_lock(&c->run_mu);
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_unlock(&c->run_mu);
    __atomic_add_fetch(&c->inline_, 1, __ATOMIC_RELAXED);
  }
  pthread_mutex_lock(&c->mu);
  c->commits++;
  if (npages >= c->pages && !c->wake) {
    c->wake = 1;
    pthread_cond_signal(&c->cv);
  }
  pthread_mutex_unlock(&c->mu);
  return SQLITE_OK;
}

static void *ckpt_main(void *arg) {
  ckpt *c = arg;
  /* below the worker, so a checkpoint's copying yields to lease traffic; failure is fine */
  if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10)) {
  }
  /* A first read opens the WAL, so that a checkpoint on this connection has one to copy. */
  if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
          SQLITE_OK ||
      sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
    sqlite3_close(c->db);
    c->db = NULL;
    __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
    return NULL;
  }
  sqlite3_busy_timeout(c->db, 20); /* TRUNCATE waits this long for another process */
  pthread_mutex_lock(&c->mu);
  uint64_t seen = c->commits;
  /* started by a WAL at the threshold: it has frames to truncate once idle */
  int idle = 0, truncated = 0;
  while (!c->stop) {
    if (!c->wake) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    if (c->stop) break;
    int wake = c->wake;
    c->wake = 0;
    if (c->commits != seen) {
      seen = c->commits;
      idle = 0;
      truncated = 0;
    } else {
      idle++;
    }
    pthread_mutex_unlock(&c->mu);
    if (wake) {
      pthread_mutex_lock(&c->run_mu);
      sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
      pthread_mutex_unlock(&c->run_mu);
      __atomic_add_fetch(&c->background, 1, __ATOMIC_RELAXED);
    } else if (idle >= CKPT_IDLE_TRUNCATE && !truncated) {
      /* Idle: shrink the WAL file. TRUNCATE holds the write lock through its fsyncs, so
       * this process's writers queue on the mutex meanwhile instead of polling. */
      pthread_mutex_lock(&write_mu);
      pthread_mutex_lock(&c->run_mu);
      sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
      pthread_mutex_unlock(&c->run_mu);
      pthread_mutex_unlock(&write_mu);
      __atomic_add_fetch(&c->background, 1, __ATOMIC_RELAXED);
      truncated = 1;
    }
    pthread_mutex_lock(&c->mu);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void ckpt_stop(sq *s) {
  ckpt *c = s->ck;
  if (!c) return;
  sqlite3_wal_hook(s->db, NULL, NULL);
  if (c->started) {
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
  }
  sqlite3_close(c->db);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  pthread_mutex_destroy(&c->run_mu);
  free(c->path);
  free(c);
  s->ck = NULL;
}

/* The thread and its connection start from the hook, at the threshold (see the top). */
static int ckpt_start(sq *s, const char *path, int pages, w2a_err *err) {
  ckpt *c = calloc(1, sizeof *c);
  if (!c || !(c->path = strdup(path))) {
    free(c);
    return w2a_errf(err, W2A_ENOMEM, "store: out of memory");
  }
  c->pages = pages > 0 ? pages : 1000;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_init(&c->run_mu, NULL);
  s->ck = c;
  sqlite3_wal_hook(s->db, wal_hook, s); /* replaces the automatic checkpoint */
  return 0;
}

int w2a_store_sqlite_checkpoints(w2a_store *base, uint64_t *background, uint64_t *inline_) {
  sq *s = (sq *)base;
  if (!s || !s->ck) return -1;
  *background = __atomic_load_n(&s->ck->background, __ATOMIC_RELAXED);
  *inline_ = __atomic_load_n(&s->ck->inline_, __ATOMIC_RELAXED);
  return 0;
}

static void copy_str(char *dst, size_t cap, const unsigned char *src) {
  snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

static uint64_t col_u64(sqlite3_stmt *st, int i) {
  sqlite3_int64 v = sqlite3_column_int64(st, i);
  return v > 0 ? (uint64_t)v : 0;
}

static void fmt_time(uint64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int unseal(sq *s, const char *stored, char **out, w2a_err *err) {
  *out = NULL;
  if (!w2a_secret_is_sealed(stored)) {
    *out = strdup(stored);
    return *out ? 0 : W2A_ENOMEM;
  }
  if (!s->has_key)
    return w2a_errf(err, W2A_EAUTH, "store: refresh tokens are encrypted; set POOL_ENCRYPTION_KEY");
  int rc = w2a_secret_open(s->key, stored, out);
  if (rc) return w2a_errf(err, rc, "store: cannot decrypt a refresh token (wrong key?)");
  return 0;
}

/* The value to store for a refresh token: sealed when a key is configured. */
static int seal(sq *s, const char *plain, char **out, w2a_err *err) {
  *out = NULL;
  if (s->sealed_no_key)
    return w2a_errf(err, W2A_EAUTH,
                    "store: this database encrypts refresh tokens; set POOL_ENCRYPTION_KEY");
  if (!s->has_key) {
    *out = strdup(plain);
    return *out ? 0 : W2A_ENOMEM;
  }
  int rc = w2a_secret_seal(s->key, plain, out);
  return rc ? w2a_errf(err, rc, "store: sealing a refresh token failed") : 0;
}

/* Fill *a from a row selected with ACCT_COLS. */
static int read_account(sq *s, sqlite3_stmt *st, int flags, w2a_account *a, w2a_err *err) {
  memset(a, 0, sizeof *a);
  a->id = sqlite3_column_int64(st, 0);
  copy_str(a->email, sizeof a->email, sqlite3_column_text(st, 1));
  copy_str(a->uid, sizeof a->uid, sqlite3_column_text(st, 2));
  copy_str(a->label, sizeof a->label, sqlite3_column_text(st, 3));
  a->id_token_exp_ms = col_u64(st, 6);
  a->has_id_token = a->id_token_exp_ms > 0;
  int state = w2a_acct_state_parse((const char *)sqlite3_column_text(st, 7));
  a->state = state < 0 ? W2A_ST_DISABLED : (w2a_acct_state)state;
  copy_str(a->state_reason, sizeof a->state_reason, sqlite3_column_text(st, 8));
  a->state_until_ms = col_u64(st, 9);
  a->probing = sqlite3_column_int(st, 10);
  a->quota.limit = sqlite3_column_int64(st, 11);
  a->quota.used = sqlite3_column_int64(st, 12);
  a->quota.reset_ms = col_u64(st, 13);
  a->quota.unlimited = sqlite3_column_int(st, 14);
  a->quota.updated_ms = col_u64(st, 15);
  a->uses = sqlite3_column_int64(st, 16);
  a->successes = sqlite3_column_int64(st, 17);
  a->errors = sqlite3_column_int64(st, 18);
  a->consecutive_failures = sqlite3_column_int64(st, 19);
  a->window_failures = sqlite3_column_int64(st, 20);
  a->refresh_failures = sqlite3_column_int64(st, 21);
  copy_str(a->last_error, sizeof a->last_error, sqlite3_column_text(st, 22));
  a->created_ms = col_u64(st, 23);
  a->last_used_ms = col_u64(st, 24);
  a->last_success_ms = col_u64(st, 25);
  a->last_error_ms = col_u64(st, 26);
  a->last_refresh_ms = col_u64(st, 27);
  a->refresh_lock_until_ms = col_u64(st, 28);
  a->cap = sqlite3_column_int(st, 29);
  a->weight = sqlite3_column_int(st, 30);
  a->active_leases = sqlite3_column_int(st, 31);
  a->quota_low = sqlite3_column_int(st, 32);
  if (!(flags & (W2A_STORE_SECRETS | W2A_STORE_ID_TOKEN))) return 0;
  sqlite3_stmt *t = stmt(s, Q_TOKENS);
  if (!t) return dberr(s, err, "tokens");
  sqlite3_bind_int64(t, 1, a->id);
  int rc = 0;
  if (sqlite3_step(t) == SQLITE_ROW) {
    const char *idt = (const char *)sqlite3_column_text(t, 1);
    if (!(a->id_token = strdup(idt ? idt : ""))) rc = W2A_ENOMEM;
    if (!rc && (flags & W2A_STORE_SECRETS))
      rc = unseal(s, (const char *)sqlite3_column_text(t, 0), &a->refresh_token, err);
  } else {
    rc = w2a_errf(err, W2A_EIO, "store: account #%lld has no token row", (long long)a->id);
  }
  sqlite3_reset(t);
  if (rc) w2a_account_clear(a);
  return rc;
}

static int get_locked(sq *s, int64_t id, const char *email, int flags, w2a_account *out,
                      w2a_err *err) {
  sqlite3_stmt *st = stmt(s, email ? Q_GET_EMAIL : Q_GET_ID);
  if (!st) return dberr(s, err, "get");
  if (email)
    sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
  else
    sqlite3_bind_int64(st, 1, id);
  int r = sqlite3_step(st), rc;
  if (r == SQLITE_ROW)
    rc = read_account(s, st, flags, out, err);
  else if (r == SQLITE_DONE) {
    if (email)
      rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account %s", email);
    else
      rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id);
  } else
    rc = dberr(s, err, "get");
  sqlite3_reset(st);
  return rc;
}

static int meta_get(sq *s, const char *key, char *buf, size_t len) {
  sqlite3_stmt *st = stmt(s, Q_META_GET);
  if (!st) return W2A_EIO;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int rc = W2A_ENOTFOUND;
  if (sqlite3_step(st) == SQLITE_ROW) {
    copy_str(buf, len, sqlite3_column_text(st, 0));
    rc = 0;
  }
  sqlite3_reset(st);
  return rc;
}

static int meta_set(sq *s, const char *key, const char *val, w2a_err *err) {
  sqlite3_stmt *st = stmt(s, Q_META_SET);
  if (!st) return dberr(s, err, "meta");
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
  int r = sqlite3_step(st);
  sqlite3_reset(st);
  return r == SQLITE_DONE ? 0 : dberr(s, err, "meta");
}

/* ---- open, migrations, key ---------------------------------------------------------- */

static int mkdir_parent(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = 0;
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(dir, 0700) && errno != EEXIST) return -1;
    *p = '/';
  }
  return mkdir(dir, 0700) && errno != EEXIST ? -1 : 0;
}

static int migrate(sq *s, w2a_err *err) {
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  sqlite3_stmt *st = NULL;
  int version = 0;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
    rc = dberr(s, err, "user_version");
    goto out;
  }
  if (sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (version > SCHEMA_VERSION) {
    rc = w2a_errf(err, W2A_ESTATE, "store: database schema v%d is newer than this build (v%d)",
                  version, SCHEMA_VERSION);
    goto out;
  }
  for (int v = version; v < SCHEMA_VERSION; v++) {
    if ((rc = exec(s, migrations[v], err))) goto out;
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
    if ((rc = exec(s, pragma, err))) goto out;
  }
out:
  return tx_end(s, rc, err);
}

static void hex(const unsigned char *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", p[i]);
}

static int unhex(const char *in, unsigned char *out, size_t n) {
  if (strlen(in) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(in + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (unsigned char)v;
  }
  return 0;
}

static const char key_check_plain[] = "warp2api key check";

/* Derive the key and check it against the stored check value. */
static int verify_key(sq *s, const char *pass, const char *saltx, const char *check, w2a_err *err) {
  unsigned char salt[W2A_SECRET_SALT_LEN];
  if (unhex(saltx, salt, sizeof salt))
    return w2a_errf(err, W2A_EINVAL, "store: bad kdf_salt in meta");
  if (w2a_secret_derive(pass, salt, sizeof salt, s->key))
    return w2a_errf(err, W2A_EIO, "store: key derivation failed");
  char *plain = NULL;
  int rc = w2a_secret_open(s->key, check, &plain);
  int ok = !rc && !strcmp(plain, key_check_plain);
  w2a_secret_free(plain);
  if (!ok)
    return w2a_errf(err, W2A_EAUTH,
                    "store: POOL_ENCRYPTION_KEY does not match the key this database uses");
  s->has_key = 1;
  return 0;
}

/* Set up the key: verify it, or on its first use create the salt and check value and
 * seal every token stored in clear. Read and decided inside one write transaction, so
 * two connections opening together cannot both create a salt. */
static int setup_key(sq *s, const char *pass, w2a_err *err) {
  char saltx[2 * W2A_SECRET_SALT_LEN + 1], check[512];
  if (s->readonly || !pass || !*pass) {
    int have_salt = !meta_get(s, "kdf_salt", saltx, sizeof saltx);
    int have_check = !meta_get(s, "key_check", check, sizeof check);
    if (!pass || !*pass) {
      s->sealed_no_key = have_check;
      return 0;
    }
    if (!have_salt || !have_check)
      return w2a_errf(err, W2A_ESTATE, "store: key not set up (open read-write once)");
    return verify_key(s, pass, saltx, check, err);
  }
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  sqlite3_stmt *sel = NULL, *upd = NULL;
  char *chk = NULL;
  unsigned char salt[W2A_SECRET_SALT_LEN];
  if (!meta_get(s, "kdf_salt", saltx, sizeof saltx) &&
      !meta_get(s, "key_check", check, sizeof check)) {
    rc = verify_key(s, pass, saltx, check, err);
    goto out;
  }
  w2a_random(salt, sizeof salt);
  hex(salt, sizeof salt, saltx);
  if (w2a_secret_derive(pass, salt, sizeof salt, s->key)) {
    rc = w2a_errf(err, W2A_EIO, "store: key derivation failed");
    goto out;
  }
  s->has_key = 1;
  if ((rc = w2a_secret_seal(s->key, key_check_plain, &chk))) goto out;
  if ((rc = meta_set(s, "kdf_salt", saltx, err)) || (rc = meta_set(s, "key_check", chk, err)))
    goto out;
  if (sqlite3_prepare_v2(s->db, "SELECT account_id, refresh_token FROM tokens", -1, &sel, NULL) ||
      sqlite3_prepare_v2(s->db, "UPDATE tokens SET refresh_token = ?2 WHERE account_id = ?1", -1,
                         &upd, NULL)) {
    rc = dberr(s, err, "sealing tokens");
    goto out;
  }
  while (sqlite3_step(sel) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(sel, 1);
    if (!t || w2a_secret_is_sealed(t)) continue;
    char *sealed = NULL;
    if ((rc = w2a_secret_seal(s->key, t, &sealed))) goto out;
    sqlite3_reset(upd);
    sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
    sqlite3_bind_text(upd, 2, sealed, -1, free);
    if (sqlite3_step(upd) != SQLITE_DONE) {
      rc = dberr(s, err, "sealing tokens");
      goto out;
    }
  }
out:
  sqlite3_finalize(sel);
  sqlite3_finalize(upd);
  free(chk);
  if (rc) s->has_key = 0;
  return tx_end(s, rc, err);
}

static void sq_close(w2a_store *base) {
  sq *s = (sq *)base;
  ckpt_stop(s);
  for (int i = 0; i < Q__N; i++)
    sqlite3_finalize(s->q[i]);
  sqlite3_close(s->db);
  memset(s->key, 0, sizeof s->key);
  free(s);
}

/* ---- accounts ----------------------------------------------------------------------- */

static int valid_new(const w2a_account_new *a) {
  if (!a->email || !*a->email || strlen(a->email) >= W2A_EMAIL_MAX) return 0;
  if (!a->refresh_token || !*a->refresh_token || strlen(a->refresh_token) > W2A_TOKEN_MAX) return 0;
  if (a->id_token && strlen(a->id_token) > W2A_TOKEN_MAX) return 0;
  for (const char *p = a->email; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) return 0;
  if (a->cap < 0) return 0;
  return 1;
}

static int update(sq *s, w2a_err *err, const char *q, const char *fmt, ...);

/* Insert or update one account inside an open transaction. */
static int upsert(sq *s, const w2a_account_new *a, w2a_import_mode mode, uint64_t now, int64_t *id,
                  w2a_import_result *res, w2a_err *err) {
  if (!valid_new(a)) {
    *res = W2A_IMPORTED_INVALID;
    return w2a_errf(err, W2A_EINVAL, "store: account needs an email and a refresh token");
  }
  w2a_account cur;
  w2a_err e2;
  int rc = get_locked(s, 0, a->email, 0, &cur, &e2);
  if (rc && rc != W2A_ENOTFOUND) return w2a_errf(err, rc, "%s", e2.msg);
  int exists = !rc;
  if (exists && mode == W2A_IMPORT_SKIP) {
    *res = W2A_IMPORTED_SKIPPED;
    if (id) *id = cur.id;
    return 0;
  }
  char *sealed = NULL;
  if ((rc = seal(s, a->refresh_token, &sealed, err))) return rc;
  uint64_t exp = a->id_token_exp_ms;
  if (!exp && a->id_token && *a->id_token) exp = w2a_jwt_exp_ms(a->id_token);
  sqlite3_stmt *st = NULL;
  int has_tok = a->id_token && *a->id_token;
  const char *q =
      exists ? "UPDATE accounts SET id_token_exp = CASE WHEN ?3 THEN ?4 ELSE id_token_exp END,"
               " uid = coalesce(?5, uid), label = coalesce(?6, label), weight = ?7, cap = ?8"
               " WHERE id = ?1"
             : "INSERT INTO accounts(email, id_token_exp, uid, label, weight, cap, created_at)"
               " VALUES(?1, ?4, coalesce(?5, ''), coalesce(?6, ''), ?7, ?8, ?9)";
  if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) {
    rc = dberr(s, err, "add");
    goto out;
  }
  if (exists)
    sqlite3_bind_int64(st, 1, cur.id);
  else
    sqlite3_bind_text(st, 1, a->email, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, has_tok);
  sqlite3_bind_int64(st, 4, has_tok ? (sqlite3_int64)exp : 0);
  if (a->uid && *a->uid) sqlite3_bind_text(st, 5, a->uid, -1, SQLITE_STATIC);
  if (a->label) sqlite3_bind_text(st, 6, a->label, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 7, a->weight > 0 ? a->weight : 1);
  sqlite3_bind_int(st, 8, a->cap > 0 ? a->cap : 1);
  if (!exists) sqlite3_bind_int64(st, 9, (sqlite3_int64)now);
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = dberr(s, err, "add");
    goto out;
  }
  int64_t aid = exists ? cur.id : sqlite3_last_insert_rowid(s->db);
  rc = update(s, err,
              "INSERT INTO tokens(account_id, refresh_token, id_token) VALUES(?1, ?2, coalesce(?3,"
              " '')) ON CONFLICT(account_id) DO UPDATE SET refresh_token = excluded.refresh_token,"
              " id_token = CASE WHEN ?3 IS NULL THEN id_token ELSE excluded.id_token END",
              "itt", aid, sealed, has_tok ? a->id_token : NULL);
  if (rc < 0) goto out;
  rc = 0;
  if (id) *id = aid;
  *res = exists ? W2A_IMPORTED_UPDATED : W2A_IMPORTED_NEW;
out:
  sqlite3_finalize(st);
  w2a_secret_free(sealed);
  return rc;
}

static int sq_add(w2a_store *base, const w2a_account_new *a, uint64_t now, int64_t *id,
                  w2a_err *err) {
  sq *s = (sq *)base;
  w2a_import_result res;
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  rc = upsert(s, a, W2A_IMPORT_SKIP, now, id, &res, err);
  if (!rc && res == W2A_IMPORTED_SKIPPED)
    rc = w2a_errf(err, W2A_ESTATE, "store: account %s already exists", a->email);
  return tx_end(s, rc, err);
}

static int sq_import(w2a_store *base, const w2a_account_new *a, size_t n, w2a_import_mode mode,
                     uint64_t now, w2a_import_result *results, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  for (size_t i = 0; i < n && !rc; i++) {
    w2a_import_result res;
    w2a_err e2;
    rc = upsert(s, &a[i], mode, now, NULL, &res, &e2);
    if (rc == W2A_EINVAL)
      rc = 0; /* a bad row is reported, not fatal */
    else if (rc)
      w2a_errf(err, rc, "%s", e2.msg);
    if (results) results[i] = res;
  }
  return tx_end(s, rc, err);
}

static int sq_get(w2a_store *base, int64_t id, const char *email, int flags, w2a_account *out,
                  w2a_err *err) {
  return get_locked((sq *)base, id, email, flags, out, err);
}

static int sq_list(w2a_store *base, const w2a_store_filter *f, w2a_store_each_fn fn, void *ud,
                   w2a_err *err) {
  sq *s = (sq *)base;
  w2a_store_filter all = {.state = -1};
  if (!f) f = &all;
  sqlite3_stmt *st = NULL;
  int rc = 0, r;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT " ACCT_COLS " FROM accounts WHERE (?1 < 0 OR state = ?2)"
                         " AND (?3 IS NULL OR label = ?3) AND id > ?4 ORDER BY id LIMIT ?5",
                         -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, "list");
  sqlite3_bind_int(st, 1, f->state);
  sqlite3_bind_text(st, 2, w2a_acct_state_name((w2a_acct_state)f->state), -1, SQLITE_STATIC);
  if (f->label) sqlite3_bind_text(st, 3, f->label, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, f->after_id);
  sqlite3_bind_int64(st, 5, f->limit > 0 ? f->limit : -1);
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    w2a_account a;
    if ((rc = read_account(s, st, f->flags, &a, err))) break;
    rc = fn(&a, ud);
    w2a_account_clear(&a);
    if (rc) break;
  }
  if (!rc && r != SQLITE_DONE && r != SQLITE_ROW) rc = dberr(s, err, "list");
  sqlite3_finalize(st);
  return rc;
}

/* Prepare, bind with a printf-like signature of types, step to done, finalize.
 * fmt chars: 'i' int64, 't' text (NULL binds NULL). Returns changes() or a W2A_E*. */
static int update(sq *s, w2a_err *err, const char *q, const char *fmt, ...) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) return dberr(s, err, q);
  va_list ap;
  va_start(ap, fmt);
  for (int i = 0; fmt[i]; i++) {
    if (fmt[i] == 'i')
      sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    else {
      const char *t = va_arg(ap, const char *);
      if (t) sqlite3_bind_text(st, i + 1, t, -1, SQLITE_TRANSIENT);
    }
  }
  va_end(ap);
  int r = sqlite3_step(st), rc;
  rc = r == SQLITE_DONE || r == SQLITE_ROW ? sqlite3_changes(s->db) : dberr(s, err, q);
  sqlite3_finalize(st);
  return rc;
}

static int sq_remove(w2a_store *base, int64_t id, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  rc = update(s, err, "DELETE FROM leases WHERE account_id = ?1", "i", id);
  if (rc >= 0) rc = update(s, err, "DELETE FROM tokens WHERE account_id = ?1", "i", id);
  if (rc >= 0) rc = update(s, err, "DELETE FROM accounts WHERE id = ?1", "i", id);
  if (rc == 0) rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id);
  return tx_end(s, rc > 0 ? 0 : rc, err);
}

static int sq_set_state(w2a_store *base, int64_t id, w2a_acct_state st, const char *reason,
                        uint64_t until, uint64_t now, w2a_err *err) {
  sq *s = (sq *)base;
  if ((unsigned)st >= W2A_ST__COUNT) return w2a_errf(err, W2A_EINVAL, "store: bad state");
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  if (st == W2A_ST_AVAILABLE)
    rc = update(s, err,
                "UPDATE accounts SET state = 'available', state_reason = '', state_until = 0,"
                " probe_lease = NULL, consecutive_failures = 0, window_failures = 0,"
                " refresh_failures = 0, quota_low = 0 WHERE id = ?1",
                "i", id);
  else
    rc = update(s, err,
                "UPDATE accounts SET state = ?2, state_reason = ?3, state_until = ?4,"
                " quota_low = CASE WHEN ?2 = 'quota_exhausted' THEN 1 ELSE quota_low END,"
                " last_error_at = CASE WHEN ?2 = 'disabled' THEN last_error_at ELSE ?5 END"
                " WHERE id = ?1",
                "ittii", id, w2a_acct_state_name(st), reason ? reason : "", (int64_t)until,
                (int64_t)now);
  if (rc == 0) rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id);
  return tx_end(s, rc > 0 ? 0 : rc, err);
}

static int sq_set_meta(w2a_store *base, int64_t id, const w2a_account_meta *m, w2a_err *err) {
  sq *s = (sq *)base;
  if (m->cap == 0) return w2a_errf(err, W2A_EINVAL, "store: cap must be at least 1");
  if (m->label && strlen(m->label) >= W2A_LABEL_MAX)
    return w2a_errf(err, W2A_EINVAL, "store: label too long");
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  rc = update(s, err,
              "UPDATE accounts SET label = coalesce(?2, label),"
              " weight = CASE WHEN ?3 < 0 THEN weight ELSE ?3 END,"
              " cap = CASE WHEN ?4 < 0 THEN cap ELSE ?4 END WHERE id = ?1",
              "itii", id, m->label, (int64_t)m->weight, (int64_t)m->cap);
  if (rc == 0) rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id);
  return tx_end(s, rc > 0 ? 0 : rc, err);
}

static int sq_counts(w2a_store *base, uint64_t now, w2a_store_stats *c, w2a_err *err) {
  sq *s = (sq *)base;
  memset(c, 0, sizeof *c);
  sqlite3_stmt *st = NULL;
  int rc = 0, r;
  /* One pass over the accounts (a few ms at 10,000 rows) and one over live leases. */
  if (sqlite3_prepare_v2(
          s->db,
          "SELECT state, count(*), sum(active_leases > 0),"
          " sum(CASE WHEN state = 'available' THEN active_leases < cap"
          " WHEN state = 'cooling' THEN state_until <= ?1 AND probe_lease IS NULL"
          " AND active_leases < cap"
          " WHEN state = 'quota_exhausted' THEN state_until <= ?1 AND active_leases < cap"
          " ELSE 0 END) FROM accounts GROUP BY state",
          -1, &st, NULL) != SQLITE_OK)
    return dberr(s, err, "counts");
  sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    int i = w2a_acct_state_parse((const char *)sqlite3_column_text(st, 0));
    int64_t n = sqlite3_column_int64(st, 1);
    if (i >= 0) c->by_state[i] += n;
    c->total += n;
    c->leased_accounts += sqlite3_column_int64(st, 2);
    c->usable += sqlite3_column_int64(st, 3);
  }
  if (r != SQLITE_DONE) rc = dberr(s, err, "counts");
  sqlite3_finalize(st);
  st = NULL;
  if (rc) return rc;
  if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM leases WHERE expires_at > ?1", -1, &st,
                         NULL) != SQLITE_OK)
    return dberr(s, err, "counts");
  sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
  if (sqlite3_step(st) == SQLITE_ROW)
    c->active_leases = sqlite3_column_int64(st, 0);
  else
    rc = dberr(s, err, "counts");
  sqlite3_finalize(st);
  return rc;
}

static int sq_why_not(w2a_store *base, int64_t id, uint64_t now, char *buf, size_t len,
                      w2a_err *err) {
  sq *s = (sq *)base;
  w2a_account a;
  int rc = get_locked(s, id, NULL, 0, &a, err);
  if (rc) return rc;
  char t[32];
  fmt_time(a.state_until_ms, t);
  buf[0] = 0;
  switch (a.state) {
  case W2A_ST_DISABLED: snprintf(buf, len, "disabled by the operator: %s", a.state_reason); break;
  case W2A_ST_INVALID:
    snprintf(buf, len, "invalid: refresh token rejected (%s)", a.state_reason);
    break;
  case W2A_ST_BLOCKED: snprintf(buf, len, "blocked from AI by Warp: %s", a.state_reason); break;
  case W2A_ST_QUOTA:
    if (a.state_until_ms > now)
      snprintf(buf, len, "quota exhausted until %s (%s)", t, a.state_reason);
    break;
  case W2A_ST_COOLING:
    if (a.state_until_ms > now)
      snprintf(buf, len, "cooling until %s: %s", t, a.state_reason);
    else if (a.probing)
      snprintf(buf, len, "cooling: its half-open probe request is in flight");
    break;
  default: break;
  }
  if (!buf[0] && a.active_leases >= a.cap)
    snprintf(buf, len, "at its concurrency cap (%d/%d leases)", a.active_leases, a.cap);
  return 0;
}

static int sq_set_quota(w2a_store *base, int64_t id, const w2a_quota *q, w2a_err *err) {
  sq *s = (sq *)base;
  int low = !q->unlimited && q->limit >= 0 && q->used >= q->limit;
  uint64_t now = q->updated_ms ? q->updated_ms : w2a_now_ms();
  uint64_t until = q->reset_ms > now ? q->reset_ms : now + 3600000u;
  char reason[96];
  snprintf(reason, sizeof reason, "quota used %lld of %lld", (long long)q->used,
           (long long)q->limit);
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  rc = update(s, err,
              "UPDATE accounts SET quota_limit = ?2, quota_used = ?3, quota_reset = ?4,"
              " quota_unlimited = ?5, quota_updated = ?6, quota_low = ?7,"
              " state = CASE WHEN state = 'available' AND ?7 THEN 'quota_exhausted'"
              "  WHEN state = 'quota_exhausted' AND NOT ?7 AND ?4 <= ?6 THEN 'available'"
              "  ELSE state END,"
              " state_reason = CASE WHEN state = 'available' AND ?7 THEN ?9"
              "  WHEN state = 'quota_exhausted' AND NOT ?7 AND ?4 <= ?6 THEN ''"
              "  ELSE state_reason END,"
              " state_until = CASE WHEN state = 'available' AND ?7 THEN ?8"
              "  WHEN state = 'quota_exhausted' AND NOT ?7 AND ?4 <= ?6 THEN 0"
              "  WHEN state = 'quota_exhausted' AND ?4 > ?6 THEN ?4"
              "  ELSE state_until END"
              " WHERE id = ?1",
              "iiiiiiiit", id, q->limit, q->used, (int64_t)q->reset_ms, (int64_t)q->unlimited,
              (int64_t)now, (int64_t)low, (int64_t)until, reason);
  if (rc == 0) rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id);
  return tx_end(s, rc > 0 ? 0 : rc, err);
}

static int sq_set_tokens(w2a_store *base, int64_t id, const char *id_token, uint64_t exp,
                         const char *new_rt, uint64_t now, w2a_err *err) {
  sq *s = (sq *)base;
  char *sealed = NULL;
  int rc;
  if (!id_token || strlen(id_token) > W2A_TOKEN_MAX || (new_rt && strlen(new_rt) > W2A_TOKEN_MAX))
    return w2a_errf(err, W2A_EINVAL, "store: bad token");
  if (new_rt && *new_rt && (rc = seal(s, new_rt, &sealed, err))) return rc;
  if (!exp) exp = w2a_jwt_exp_ms(id_token);
  rc = tx_begin(s, 1, err);
  if (rc) goto out;
  rc = update(s, err,
              "UPDATE accounts SET id_token_exp = ?2, last_refresh = ?3,"
              " refresh_lock_until = 0, refresh_failures = 0 WHERE id = ?1",
              "iii", id, (int64_t)exp, (int64_t)now);
  if (rc > 0)
    rc = update(s, err,
                "UPDATE tokens SET id_token = ?2, refresh_token = coalesce(?3, refresh_token)"
                " WHERE account_id = ?1",
                "itt", id, id_token, sealed);
  if (rc == 0) rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id);
  rc = tx_end(s, rc > 0 ? 0 : rc, err);
out:
  w2a_secret_free(sealed);
  return rc;
}

static int sq_refresh_failed(w2a_store *base, int64_t id, int invalid, const char *reason,
                             uint64_t now, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  rc = update(s, err,
              "UPDATE accounts SET refresh_lock_until = 0, refresh_failures = refresh_failures + 1,"
              " last_error = ?2, last_error_at = ?3,"
              " state = CASE WHEN ?4 THEN 'invalid' ELSE state END,"
              " state_reason = CASE WHEN ?4 THEN ?2 ELSE state_reason END,"
              " state_until = CASE WHEN ?4 THEN 0 ELSE state_until END WHERE id = ?1",
              "itii", id, reason ? reason : "", (int64_t)now, (int64_t)(invalid != 0));
  if (rc == 0) rc = w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id);
  return tx_end(s, rc > 0 ? 0 : rc, err);
}

static int sq_refresh_claim(w2a_store *base, int64_t id, uint64_t seen, uint64_t now, uint64_t hold,
                            w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 0, err);
  if (rc) return rc;
  /* One statement, so the check and the claim are one step: a peer that refreshed and
   * released the lock between our read and this claim changed last_refresh. */
  rc = update(s, err,
              "UPDATE accounts SET refresh_lock_until = ?2 WHERE id = ?1"
              " AND refresh_lock_until <= ?3 AND last_refresh = ?4",
              "iiii", id, (int64_t)(now + hold), (int64_t)now, (int64_t)seen);
  if (rc == 0) {
    w2a_account a;
    w2a_err e2;
    rc = get_locked(s, id, NULL, 0, &a, &e2)
             ? w2a_errf(err, W2A_ENOTFOUND, "store: no account #%lld", (long long)id)
         : a.last_refresh_ms != seen
             ? w2a_errf(err, W2A_ESTATE, "store: #%lld was refreshed meanwhile", (long long)id)
             : w2a_errf(err, W2A_EAGAIN, "store: a refresh of #%lld is in flight", (long long)id);
  }
  int erc = tx_end(s, rc > 0 ? 0 : rc, err);
  return rc > 0 ? erc : rc;
}

static int sq_due(w2a_store *base, int what, uint64_t now, uint64_t horizon, int64_t *ids,
                  size_t max, size_t *n, w2a_err *err) {
  sq *s = (sq *)base;
  sqlite3_stmt *st = NULL;
  *n = 0;
  const char *q = what == W2A_DUE_REFRESH
                      ? "SELECT id FROM accounts WHERE id_token_exp < ?1 + ?2"
                        " AND state IN ('available', 'cooling') AND last_used + 7200000 >= ?1"
                        " AND refresh_lock_until <= ?1 ORDER BY id_token_exp LIMIT ?3"
                      : "SELECT id FROM accounts WHERE quota_updated < ?1 - ?2"
                        " AND state NOT IN ('invalid', 'blocked', 'disabled')"
                        " AND id_token_exp > ?1 + 60000 ORDER BY quota_updated LIMIT ?3";
  if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) return dberr(s, err, "due");
  sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)horizon);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max)
    ids[(*n)++] = sqlite3_column_int64(st, 0);
  int rc = r == SQLITE_DONE || r == SQLITE_ROW ? 0 : dberr(s, err, "due");
  sqlite3_finalize(st);
  return rc;
}

/* ---- leases ------------------------------------------------------------------------- */

static int lease_dec(sq *s, int64_t acct, const char *lease_id, w2a_err *err) {
  sqlite3_stmt *st = stmt(s, Q_LEASE_DEC);
  if (!st) return dberr(s, err, "release");
  sqlite3_bind_int64(st, 1, acct);
  sqlite3_bind_text(st, 2, lease_id, -1, SQLITE_STATIC);
  int r = sqlite3_step(st);
  sqlite3_reset(st);
  return r == SQLITE_DONE ? 0 : dberr(s, err, "release");
}

/* Delete leases matching q (Q_RECLAIM by time or Q_HOLDER_DEL by holder) and give their
 * accounts back, inside the open transaction. */
static int drop_leases(sq *s, int q, int64_t now, const char *holder, int *count, w2a_err *err) {
  typedef struct {
    char id[40];
    int64_t acct;
  } dead;
  dead local[16], *d = local;
  size_t n = 0, cap = 16;
  int rc = 0, r;
  sqlite3_stmt *st = stmt(s, q);
  if (!st) return dberr(s, err, "reclaim");
  if (holder)
    sqlite3_bind_text(st, 1, holder, -1, SQLITE_STATIC);
  else
    sqlite3_bind_int64(st, 1, now);
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      dead *nd = malloc(2 * cap * sizeof *nd);
      if (!nd) {
        rc = W2A_ENOMEM;
        break;
      }
      memcpy(nd, d, n * sizeof *nd);
      if (d != local) free(d);
      d = nd;
      cap *= 2;
    }
    copy_str(d[n].id, sizeof d[n].id, sqlite3_column_text(st, 0));
    d[n].acct = sqlite3_column_int64(st, 1);
    n++;
  }
  if (!rc && r != SQLITE_DONE) rc = dberr(s, err, "reclaim");
  sqlite3_reset(st);
  for (size_t i = 0; i < n && !rc; i++)
    rc = lease_dec(s, d[i].acct, d[i].id, err);
  if (d != local) free(d);
  if (count) *count = (int)n;
  return rc;
}

static int excluded(const w2a_lease_req *rq, int64_t id, const w2a_lease_row *rows, int n) {
  for (size_t i = 0; i < rq->nexclude; i++)
    if (rq->exclude[i] == id) return 1;
  for (int i = 0; i < n; i++)
    if (rows[i].account_id == id) return 1;
  return 0;
}

/* Take the lease on one account inside the transaction; 1 taken, 0 raced (cap), <0 err. */
static int take(sq *s, const w2a_lease_req *rq, int64_t acct, int probe, w2a_lease_row *row,
                w2a_err *err) {
  sqlite3_stmt *st = stmt(s, Q_LEASE_INC);
  if (!st) return dberr(s, err, "lease");
  char id[37];
  w2a_uuid4(id);
  sqlite3_bind_int64(st, 1, acct);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)rq->now_ms);
  if (probe) sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
  int r = sqlite3_step(st);
  sqlite3_reset(st);
  if (r != SQLITE_DONE) return dberr(s, err, "lease");
  if (sqlite3_changes(s->db) != 1) return 0;
  if (!(st = stmt(s, Q_LEASE_INS))) return dberr(s, err, "lease");
  uint64_t exp = rq->now_ms + rq->ttl_ms;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, acct);
  sqlite3_bind_text(st, 3, rq->holder ? rq->holder : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)getpid());
  sqlite3_bind_int(st, 5, probe);
  sqlite3_bind_int64(st, 6, (sqlite3_int64)rq->now_ms);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)exp);
  r = sqlite3_step(st);
  sqlite3_reset(st);
  if (r != SQLITE_DONE) return dberr(s, err, "lease");
  memset(row, 0, sizeof *row);
  memcpy(row->id, id, sizeof id);
  row->account_id = acct;
  row->expires_ms = exp;
  row->probe = probe;
  int rc = get_locked(s, acct, NULL, rq->want_secrets ? W2A_STORE_ID_TOKEN : 0, &row->acct, err);
  return rc ? rc : 1;
}

static int pick_sql(w2a_selection sel) {
  return sel == W2A_SEL_ROUND_ROBIN  ? Q_PICK_RR
         : sel == W2A_SEL_FILL_FIRST ? Q_PICK_FILL
                                     : Q_PICK_LRU;
}

/* Candidates from one pick query, taken in order until `want` rows are filled. */
static int pick(sq *s, const w2a_lease_req *rq, int q, int quota_low, int64_t after,
                w2a_lease_row *rows, int *n, int want, w2a_err *err) {
  int64_t ids[64];
  int m = 0, r, rc = 0;
  sqlite3_stmt *st = stmt(s, q);
  if (!st) return dberr(s, err, "pick");
  int64_t limit = (int64_t)(want - *n) + (int64_t)rq->nexclude;
  if (limit > 64) limit = 64;
  if (q == Q_PICK_PROBE) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)rq->now_ms);
  } else {
    sqlite3_bind_int(st, 1, quota_low);
    if (q == Q_PICK_RR) sqlite3_bind_int64(st, 3, after);
  }
  sqlite3_bind_int64(st, 2, limit);
  while ((r = sqlite3_step(st)) == SQLITE_ROW && m < 64)
    ids[m++] = sqlite3_column_int64(st, 0);
  if (r != SQLITE_DONE && r != SQLITE_ROW) rc = dberr(s, err, "pick");
  sqlite3_reset(st);
  for (int i = 0; i < m && !rc && *n < want; i++) {
    if (excluded(rq, ids[i], rows, *n)) continue;
    int t = take(s, rq, ids[i], q == Q_PICK_PROBE, &rows[*n], err);
    if (t < 0)
      rc = t;
    else if (t)
      (*n)++;
  }
  return rc;
}

static void explain_none(sq *s, const w2a_lease_req *rq, w2a_lease_none *none) {
  w2a_store_stats c;
  memset(none, 0, sizeof *none);
  if (sq_counts(&s->base, rq->now_ms, &c, NULL)) return;
  none->total = c.total;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT min(state_until) FROM accounts WHERE state IN ('cooling',"
                         " 'quota_exhausted') AND state_until > ?1",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)rq->now_ms);
    if (sqlite3_step(st) == SQLITE_ROW) none->retry_at_ms = col_u64(st, 0);
    sqlite3_finalize(st);
  }
  if (!c.total) {
    snprintf(none->reason, sizeof none->reason, "the pool has no accounts");
    return;
  }
  /* Available accounts that would be leased but for leases already on them (a cooled
   * account's probe is not waited for: it may run a long stream and then cool again).
   * At most nexclude + 1 rows answer whether one is not excluded. */
  if (sqlite3_prepare_v2(s->db,
                         "SELECT id, (SELECT min(expires_at) FROM leases WHERE account_id ="
                         " accounts.id) FROM accounts WHERE state = 'available' AND"
                         " active_leases > 0 LIMIT ?1",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)rq->nexclude + 1);
    while (sqlite3_step(st) == SQLITE_ROW) {
      if (excluded(rq, sqlite3_column_int64(st, 0), NULL, 0)) continue;
      uint64_t exp = col_u64(st, 1);
      none->busy++;
      if (exp && (!none->lease_free_at_ms || exp < none->lease_free_at_ms))
        none->lease_free_at_ms = exp;
    }
    sqlite3_finalize(st);
  }
  snprintf(none->reason, sizeof none->reason,
           "no account can be leased: %lld available (%lld leased to their cap), %lld cooling,"
           " %lld quota_exhausted, %lld invalid, %lld blocked, %lld disabled%s",
           (long long)c.by_state[W2A_ST_AVAILABLE], (long long)c.leased_accounts,
           (long long)c.by_state[W2A_ST_COOLING], (long long)c.by_state[W2A_ST_QUOTA],
           (long long)c.by_state[W2A_ST_INVALID], (long long)c.by_state[W2A_ST_BLOCKED],
           (long long)c.by_state[W2A_ST_DISABLED],
           rq->nexclude ? " (some already tried by this request)" : "");
}

static int sq_lease_acquire(w2a_store *base, const w2a_lease_req *rq, w2a_lease_row *rows, int *n,
                            w2a_lease_none *none, w2a_err *err) {
  sq *s = (sq *)base;
  *n = 0;
  int want = rq->count > 0 ? rq->count : 1;
  int rc = tx_begin(s, 0, err);
  if (rc) return rc;
  if (rq->only) { /* chosen by the caller: take what is still within its cap */
    for (size_t i = 0; i < rq->nonly && *n < want && !rc; i++) {
      int t = take(s, rq, rq->only[i], 0, &rows[*n], err);
      if (t < 0)
        rc = t;
      else if (t)
        (*n)++;
    }
    goto out;
  }
  sqlite3_stmt *st = stmt(s, Q_ANY_EXPIRED);
  if (!st) {
    rc = dberr(s, err, "reclaim");
    goto out;
  }
  sqlite3_bind_int64(st, 1, (sqlite3_int64)rq->now_ms);
  int expired = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_reset(st);
  if (expired && (rc = drop_leases(s, Q_RECLAIM, (int64_t)rq->now_ms, NULL, NULL, err))) goto out;
  st = stmt(s, Q_READMIT);
  if (!st) {
    rc = dberr(s, err, "readmit");
    goto out;
  }
  sqlite3_bind_int64(st, 1, (sqlite3_int64)rq->now_ms);
  if (sqlite3_step(st) != SQLITE_DONE) rc = dberr(s, err, "readmit");
  sqlite3_reset(st);
  if (rc) goto out;
  /* A cooled account whose time is up gets one probe lease before fresh accounts: that
   * is the only way it comes back, and at most one request pays for a failed probe. */
  if ((rc = pick(s, rq, Q_PICK_PROBE, 0, 0, rows, n, 1, err))) goto out;
  int64_t cursor = 0;
  char buf[32];
  if (rq->selection == W2A_SEL_ROUND_ROBIN && !meta_get(s, "rr_cursor", buf, sizeof buf))
    cursor = strtoll(buf, NULL, 10);
  for (int ql = 0; ql <= 1 && *n < want && !rc; ql++) {
    rc = pick(s, rq, pick_sql(rq->selection), ql, cursor, rows, n, want, err);
    if (!rc && *n < want && rq->selection == W2A_SEL_ROUND_ROBIN && cursor)
      rc = pick(s, rq, Q_PICK_RR, ql, 0, rows, n, want, err); /* wrap around */
  }
  if (!rc && rq->selection == W2A_SEL_ROUND_ROBIN && *n) {
    snprintf(buf, sizeof buf, "%lld", (long long)rows[*n - 1].account_id);
    rc = meta_set(s, "rr_cursor", buf, err);
  }
out:
  if (rc) {
    for (int i = 0; i < *n; i++)
      w2a_account_clear(&rows[i].acct);
    *n = 0;
  }
  rc = tx_end(s, rc, err);
  if (!rc && !*n && none) explain_none(s, rq, none);
  return rc;
}

static int sq_lease_extend(w2a_store *base, const char *lease_id, uint64_t exp, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 0, err);
  if (rc) return rc;
  sqlite3_stmt *st = stmt(s, Q_LEASE_EXT);
  if (!st)
    rc = dberr(s, err, "extend");
  else {
    sqlite3_bind_text(st, 1, lease_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)exp);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = dberr(s, err, "extend");
    else if (sqlite3_changes(s->db) != 1)
      rc = w2a_errf(err, W2A_ENOTFOUND, "store: lease %s is gone (reclaimed)", lease_id);
    sqlite3_reset(st);
  }
  int erc = tx_end(s, rc == W2A_ENOTFOUND ? 0 : rc, err);
  return erc ? erc : rc;
}

/* Apply a lease's result to its account (inside the transaction). */
static int apply_result(sq *s, int64_t acct, int was_probe, const w2a_lease_result *r, uint64_t now,
                        w2a_err *err) {
  const char *reason = r->reason ? r->reason : "";
  if (r->ok) {
    /* Success: a cooling account (its probe, or a lease taken before it cooled) is
     * healthy again. Operator and Warp verdicts (disabled, blocked, …) stay. */
    sqlite3_stmt *st = stmt(s, Q_RESULT_OK);
    if (!st) return dberr(s, err, "result");
    sqlite3_bind_int64(st, 1, acct);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
    int x = sqlite3_step(st);
    sqlite3_reset(st);
    return x == SQLITE_DONE ? 0 : dberr(s, err, "result");
  }
  w2a_account a;
  w2a_err e2;
  int rc = get_locked(s, acct, NULL, 0, &a, &e2);
  if (rc == W2A_ENOTFOUND) return 0; /* deleted meanwhile */
  if (rc) return w2a_errf(err, rc, "%s", e2.msg);
  int64_t wstart = 0, wfail = a.window_failures;
  char why[W2A_REASON_MAX];
  const char *new_state = w2a_acct_state_name(a.state);
  uint64_t until = a.state_until_ms;
  snprintf(why, sizeof why, "%s", a.state_reason);
  if (r->failure) {
    /* window_start is not in w2a_account; read it here */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT window_start FROM accounts WHERE id = ?1", -1, &st,
                           NULL) == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, acct);
      if (sqlite3_step(st) == SQLITE_ROW) wstart = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    if (!wstart || now - (uint64_t)wstart > r->window_ms) {
      wstart = (int64_t)now;
      wfail = 1;
    } else {
      wfail++;
    }
    if (a.state == W2A_ST_COOLING && was_probe) {
      /* the half-open probe failed: cool again for the full time */
      until = now + r->cooldown_ms;
      snprintf(why, sizeof why, "probe failed: %s", reason);
    } else if (a.state == W2A_ST_AVAILABLE && r->threshold > 0 && wfail >= r->threshold) {
      new_state = "cooling";
      until = now + r->cooldown_ms;
      snprintf(why, sizeof why, "%lld failures within %llus: %s", (long long)wfail,
               (unsigned long long)(r->window_ms / 1000), reason);
      wfail = 0;
      wstart = 0;
    }
  }
  if (r->set_state >= 0 && r->set_state < W2A_ST__COUNT &&
      (a.state != W2A_ST_DISABLED || r->set_state != W2A_ST_COOLING)) {
    /* Warp's verdict overrides the failure window, except that an operator's disable
     * is never softened into a cool-down. */
    new_state = w2a_acct_state_name((w2a_acct_state)r->set_state);
    until = r->until_ms;
    snprintf(why, sizeof why, "%s", reason);
  }
  int sq_low = r->set_state == W2A_ST_QUOTA;
  return update(s, err,
                "UPDATE accounts SET errors = errors + ?2, consecutive_failures ="
                " consecutive_failures + ?2, window_start = ?3, window_failures = ?4,"
                " last_error = ?5, last_error_at = ?6, state = ?7, state_reason = ?8,"
                " state_until = ?9, quota_low = CASE WHEN ?10 THEN 1 ELSE quota_low END"
                " WHERE id = ?1",
                "iiiitittii", acct, (int64_t)(r->failure || r->set_state >= 0), wstart, wfail,
                reason, (int64_t)now, new_state, why, (int64_t)until, (int64_t)sq_low) < 0
             ? W2A_EIO
             : 0;
}

static int sq_lease_release(w2a_store *base, const char *lease_id, int64_t acct,
                            const w2a_lease_result *r, uint64_t now, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, r && !r->ok, err);
  if (rc) return rc;
  int found = 0, was_probe = 0;
  sqlite3_stmt *st = stmt(s, Q_LEASE_DEL);
  if (!st) {
    rc = dberr(s, err, "release");
    goto out;
  }
  sqlite3_bind_text(st, 1, lease_id, -1, SQLITE_STATIC);
  int x = sqlite3_step(st);
  if (x == SQLITE_ROW) {
    found = 1;
    acct = sqlite3_column_int64(st, 0);
    was_probe = sqlite3_column_int(st, 1);
    while ((x = sqlite3_step(st)) == SQLITE_ROW) {
    }
  }
  sqlite3_reset(st);
  if (x != SQLITE_DONE) {
    rc = dberr(s, err, "release");
    goto out;
  }
  if (found && r && r->ok) { /* the common case: one statement gives back and counts */
    sqlite3_stmt *u = stmt(s, Q_RELEASE_OK);
    if (!u) {
      rc = dberr(s, err, "release");
      goto out;
    }
    sqlite3_bind_int64(u, 1, acct);
    sqlite3_bind_int64(u, 2, (sqlite3_int64)now);
    sqlite3_bind_text(u, 3, lease_id, -1, SQLITE_STATIC);
    x = sqlite3_step(u);
    sqlite3_reset(u);
    rc = x == SQLITE_DONE ? 0 : dberr(s, err, "release");
    goto out;
  }
  if (found && (rc = lease_dec(s, acct, lease_id, err))) goto out;
  if (r && acct > 0) rc = apply_result(s, acct, was_probe, r, now, err);
out:
  rc = tx_end(s, rc, err);
  if (!rc && !found)
    return w2a_errf(err, W2A_ENOTFOUND, "store: lease %s was already reclaimed", lease_id);
  return rc;
}

static int sq_apply_result(w2a_store *base, int64_t acct, int was_probe, const w2a_lease_result *r,
                           uint64_t now, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, !r->ok, err);
  if (rc) return rc;
  rc = apply_result(s, acct, was_probe, r, now, err);
  return tx_end(s, rc, err);
}

static int sq_add_usage(w2a_store *base, const w2a_usage *u, size_t n, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 0, err);
  if (rc) return rc;
  for (size_t i = 0; i < n && !rc; i++) {
    sqlite3_stmt *st = stmt(s, Q_USAGE);
    if (!st) {
      rc = dberr(s, err, "usage");
      break;
    }
    sqlite3_bind_int64(st, 1, u[i].account_id);
    sqlite3_bind_int64(st, 2, u[i].uses);
    sqlite3_bind_int64(st, 3, u[i].successes);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)u[i].last_used_ms);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)u[i].last_success_ms);
    if (sqlite3_step(st) != SQLITE_DONE) rc = dberr(s, err, "usage");
    sqlite3_reset(st);
  }
  return tx_end(s, rc, err);
}

static int sq_data_version(w2a_store *base, int64_t *v, w2a_err *err) {
  sq *s = (sq *)base;
  sqlite3_stmt *st = stmt(s, Q_DATA_VERSION);
  if (!st) return dberr(s, err, "data_version");
  int r = sqlite3_step(st);
  *v = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  return r == SQLITE_ROW ? 0 : dberr(s, err, "data_version");
}

static int sq_release_holder(w2a_store *base, const char *holder, uint64_t now, int *n,
                             w2a_err *err) {
  sq *s = (sq *)base;
  (void)now;
  int rc = tx_begin(s, 0, err);
  if (rc) return rc;
  rc = drop_leases(s, Q_HOLDER_DEL, 0, holder, n, err);
  return tx_end(s, rc, err);
}

static int sq_reclaim(w2a_store *base, uint64_t now, int *n, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 0, err);
  if (rc) return rc;
  rc = drop_leases(s, Q_RECLAIM, (int64_t)now, NULL, n, err);
  return tx_end(s, rc, err);
}

static int sq_readmit(w2a_store *base, uint64_t now, int *n, w2a_err *err) {
  sq *s = (sq *)base;
  int rc = tx_begin(s, 1, err);
  if (rc) return rc;
  sqlite3_stmt *st = stmt(s, Q_READMIT);
  if (!st)
    rc = dberr(s, err, "readmit");
  else {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = dberr(s, err, "readmit");
    else if (n)
      *n = sqlite3_changes(s->db);
    sqlite3_reset(st);
  }
  return tx_end(s, rc, err);
}

/* ---- diagnostics -------------------------------------------------------------------- */

static int collect(sq *s, const char *q, int col, char *buf, size_t len, w2a_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) return dberr(s, err, q);
  size_t off = 0;
  buf[0] = 0;
  int r;
  if (!strncmp(q, "EXPLAIN", 7)) {
    sqlite3_bind_int(st, 1, 0);
    sqlite3_bind_int(st, 2, 1);
    sqlite3_bind_int(st, 3, 0);
  }
  while ((r = sqlite3_step(st)) == SQLITE_ROW && off + 1 < len) {
    int w = snprintf(buf + off, len - off, "%s%s", off ? "\n" : "",
                     (const char *)sqlite3_column_text(st, col));
    if (w < 0) break;
    off += (size_t)w;
    if (off >= len) off = len - 1;
  }
  int rc = r == SQLITE_DONE || r == SQLITE_ROW ? 0 : dberr(s, err, q);
  sqlite3_finalize(st);
  return rc;
}

static int sq_integrity(w2a_store *base, char *buf, size_t len, w2a_err *err) {
  return collect((sq *)base, "PRAGMA integrity_check", 0, buf, len, err);
}

static int sq_explain(w2a_store *base, w2a_selection sel, char *buf, size_t len, w2a_err *err) {
  char q[512];
  snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql[pick_sql(sel)]);
  return collect((sq *)base, q, 3, buf, len, err);
}

static const w2a_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .add = sq_add,
    .import = sq_import,
    .get = sq_get,
    .list = sq_list,
    .remove = sq_remove,
    .set_state = sq_set_state,
    .set_meta = sq_set_meta,
    .counts = sq_counts,
    .why_not = sq_why_not,
    .set_quota = sq_set_quota,
    .set_tokens = sq_set_tokens,
    .refresh_failed = sq_refresh_failed,
    .refresh_claim = sq_refresh_claim,
    .due = sq_due,
    .lease_acquire = sq_lease_acquire,
    .lease_extend = sq_lease_extend,
    .lease_release = sq_lease_release,
    .release_holder = sq_release_holder,
    .reclaim = sq_reclaim,
    .apply_result = sq_apply_result,
    .add_usage = sq_add_usage,
    .data_version = sq_data_version,
    .readmit = sq_readmit,
    .batch_begin = sq_batch_begin,
    .batch_commit = sq_batch_commit,
    .integrity_check = sq_integrity,
    .explain_selection = sq_explain,
};

/* Memory statistics cost a global mutex per SQLite allocation; nothing here reads them.
 * Only possible before SQLite initialises; harmless (SQLITE_MISUSE) if it already has. */
static pthread_once_t config_once = PTHREAD_ONCE_INIT;
/* (SQLITE_CONFIG_PAGECACHE with no bulk allocation saved ~150 kB of idle RSS but made a
 * database lease 15-25 % slower, measured side by side with bench_pool: not taken.) */
static void config_sqlite(void) { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

int w2a_store_sqlite_open(w2a_store **out, const w2a_store_opts *o, w2a_err *err) {
  int rc = 0;
  pthread_once(&config_once, config_sqlite);
  *out = NULL;
  sq *s = calloc(1, sizeof *s);
  if (!s) return w2a_errf(err, W2A_ENOMEM, "store: out of memory");
  s->base.ops = &sqlite_ops;
  s->sync_full = -1;
  s->readonly = o->readonly;
  s->busy_timeout_ms = o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 10000;
  if (!o->readonly && mkdir_parent(o->path)) {
    rc = w2a_errf(err, W2A_EIO, "store: cannot create the directory of %s: %s", o->path,
                  strerror(errno));
    goto out;
  }
  int flags = SQLITE_OPEN_NOMUTEX |
              (o->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (sqlite3_open_v2(o->path, &s->db, flags, NULL) != SQLITE_OK) {
    rc = w2a_errf(err, W2A_EIO, "store: cannot open %s: %s", o->path,
                  s->db ? sqlite3_errmsg(s->db) : "out of memory");
    goto out;
  }
  sqlite3_busy_handler(s->db, busy_cb, s);
  sqlite3_db_config(s->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 512);
  sqlite3_extended_result_codes(s->db, 0);
  if (!o->readonly) {
    /* Two connections opening a new file at once can deadlock on the switch to WAL (both
     * hold SHARED, both want EXCLUSIVE); SQLite then answers SQLITE_BUSY at once rather
     * than calling the busy handler. The switch is idempotent: try again until the
     * busy timeout. */
    /* 1 KiB pages for a new file (an existing one keeps its size): a commit writes each
     * page it dirtied to the WAL whole, and a lease dirties a few pages of small rows, so
     * smaller pages mean less to write and checksum per commit. Side by side with 4 KiB
     * (bench_pool, 3 alternating runs): allocate+release p50 60 vs 89 µs at 100 accounts,
     * 75 vs 90 at 1,000, 65 vs 92 at 10,000. */
    if ((rc = exec(s, "PRAGMA page_size=1024", err))) goto out;
    uint64_t t0 = w2a_mono_us();
    while ((rc = exec(s, "PRAGMA journal_mode=WAL", err)) &&
           sqlite3_errcode(s->db) == SQLITE_BUSY &&
           w2a_mono_us() - t0 < (uint64_t)s->busy_timeout_ms * 1000u)
      usleep(1000 + (unsigned)(w2a_random_u64() % 4000));
    if (rc) goto out;
    if ((rc = migrate(s, err))) goto out;
  }
  if ((rc = exec(s, "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY", err))) goto out;
  if ((rc = setup_key(s, o->encryption_key, err))) goto out;
  if (!o->readonly && o->checkpoint_thread &&
      (rc = ckpt_start(s, o->path, o->checkpoint_pages, err)))
    goto out;
  *out = &s->base;
  return 0;
out:
  sq_close(&s->base);
  return rc;
}
