/* store.h - the account store: accounts, their states, leases and refresh locks, kept
 * behind an interface so that SQLite (store_sqlite.c) can be joined by PostgreSQL later.
 *
 * A w2a_store is one connection to one database. It is used by one thread at a time
 * (the pool's DB worker, a CLI command, a test thread); several stores, in several
 * threads or processes, may open the same database at once: caps, leases and refresh
 * locks live in the database and every multi-row change is one transaction, so they hold
 * across connections. The store never runs on an event-loop thread: the pool calls it
 * from its worker (w2a_pool_submit), the CLI calls it directly without any loop.
 *
 * Secrets: refresh tokens are sealed at rest (AES-256-GCM, see secret.h) when the store
 * was opened with an encryption key. A w2a_account carries secrets only when the caller
 * asked for them (W2A_STORE_SECRETS); otherwise refresh_token and id_token are NULL.
 * Nothing in the store logs a secret.
 *
 * Times are wall-clock milliseconds since the epoch (w2a_now_ms), 0 meaning "never" or
 * "none". Every call that depends on "now" takes it as an argument, so tests can move
 * time without sleeping.
 *
 * Errors: 0 or a negative W2A_E* code, with detail in the caller's w2a_err. A duplicate
 * email is W2A_ESTATE ("already exists"); an unknown id/email is W2A_ENOTFOUND;
 * SQLite trouble (busy past the timeout, I/O) is W2A_EIO. */
#ifndef W2A_STORE_H
#define W2A_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* ---- accounts -------------------------------------------------------------------- */

/* The state machine is described in docs/pool.md. Stored by name ("available", …). */
typedef enum w2a_acct_state {
  W2A_ST_AVAILABLE = 0,
  W2A_ST_COOLING,  /* until state_until_ms, then one half-open probe lease */
  W2A_ST_QUOTA,    /* "quota_exhausted": until Warp's nextRefreshTime, then available */
  W2A_ST_INVALID,  /* refresh token rejected; only the operator brings it back */
  W2A_ST_BLOCKED,  /* 403 blocked from AI; only the operator brings it back */
  W2A_ST_DISABLED, /* by the operator */
  W2A_ST__COUNT
} w2a_acct_state;

const char *w2a_acct_state_name(w2a_acct_state s);
/* -1 when unknown. Accepts the names above ("quota_exhausted" for W2A_ST_QUOTA). */
int w2a_acct_state_parse(const char *name);

#define W2A_EMAIL_MAX 256
#define W2A_REASON_MAX 256
#define W2A_LABEL_MAX 128
#define W2A_UID_MAX 128
#define W2A_TOKEN_MAX 8192 /* refresh tokens and ID tokens longer than this are refused */

/* Quota as Warp's GetRequestLimitInfo reports it. limit/used are -1 when never polled. */
typedef struct w2a_quota {
  int64_t limit;
  int64_t used;
  uint64_t reset_ms; /* nextRefreshTime */
  int unlimited;
  uint64_t updated_ms; /* when polled; 0 never */
} w2a_quota;

typedef struct w2a_account {
  int64_t id;
  char email[W2A_EMAIL_MAX];
  char uid[W2A_UID_MAX];
  char label[W2A_LABEL_MAX];
  /* secrets: heap, NULL unless W2A_STORE_SECRETS was passed; w2a_account_clear wipes them */
  char *refresh_token;
  char *id_token;
  uint64_t id_token_exp_ms;
  int has_id_token; /* an ID token is stored (known even without secrets) */

  w2a_acct_state state;
  char state_reason[W2A_REASON_MAX];
  uint64_t state_until_ms; /* cooling / quota_exhausted: when it may come back */
  int probing;             /* a half-open probe lease is out */

  w2a_quota quota;

  int64_t uses, successes, errors, consecutive_failures;
  int64_t window_failures; /* failures in the current FAILURE_WINDOW */
  int64_t refresh_failures;
  char last_error[W2A_REASON_MAX];

  uint64_t created_ms, last_used_ms, last_success_ms, last_error_ms, last_refresh_ms;
  uint64_t refresh_lock_until_ms; /* a refresh is in flight somewhere until then */

  int cap;    /* concurrent leases allowed (default 1) */
  int weight; /* fill-first order (higher first); 1 by default */
  int active_leases;
  int quota_low; /* the last quota poll found none left: chosen after the others */
} w2a_account;

/* Wipe and free the secrets; the rest is plain data. Safe on a zeroed account. */
void w2a_account_clear(w2a_account *a);

/* What an operator (or import) supplies for a new account. */
typedef struct w2a_account_new {
  const char *email;         /* required */
  const char *refresh_token; /* required */
  const char *id_token;      /* optional; its expiry is read from the JWT when exp_ms is 0 */
  uint64_t id_token_exp_ms;
  const char *uid;   /* optional (Firebase localId) */
  const char *label; /* optional */
  int weight;        /* 0: 1 */
  int cap;           /* 0: 1 */
} w2a_account_new;

/* ---- options and small result types ------------------------------------------------ */

typedef struct w2a_store_opts {
  const char *path;           /* SQLite file (created with its directory); later: a URL */
  const char *encryption_key; /* NULL/"": refresh tokens stored in clear */
  int busy_timeout_ms;        /* 0: 10000 */
  int readonly;               /* open without migrating or writing */
  /* SQLite: checkpoint the WAL from a low-priority thread with its own connection instead
   * of at this connection's commits, so no commit here waits for a checkpoint's fsync
   * (the pool's worker). The WAL stays bounded: past 10 x checkpoint_pages this
   * connection checkpoints by itself. */
  int checkpoint_thread;
  int checkpoint_pages; /* WAL pages that wake the checkpointer; 0: 1000 */
} w2a_store_opts;

/* flags for get/list: both tokens, or the ID token only (what a lease needs) */
enum { W2A_STORE_SECRETS = 1, W2A_STORE_ID_TOKEN = 2 };

typedef struct w2a_store_filter {
  int state;         /* -1: any */
  const char *label; /* NULL: any */
  int64_t after_id;  /* keyset paging: ids greater than this */
  int64_t limit;     /* 0: no limit */
  int flags;         /* W2A_STORE_SECRETS to include tokens (export) */
} w2a_store_filter;

/* Return nonzero from the callback to stop early (that value is returned by list). The
 * account, and its secrets, are valid only during the call. */
typedef int (*w2a_store_each_fn)(const w2a_account *a, void *ud);

typedef struct w2a_store_stats {
  int64_t by_state[W2A_ST__COUNT];
  int64_t total;
  int64_t active_leases;   /* lease rows not yet expired */
  int64_t leased_accounts; /* accounts with at least one lease */
  int64_t usable;          /* could be leased right now (state, cap, recovery time) */
} w2a_store_stats;

/* What import does with an email that already exists. */
typedef enum w2a_import_mode {
  W2A_IMPORT_SKIP = 0,   /* keep the stored account */
  W2A_IMPORT_UPDATE = 1, /* replace tokens, uid, label, weight, cap; keep state and counters */
} w2a_import_mode;

typedef enum w2a_import_result {
  W2A_IMPORTED_NEW = 0,
  W2A_IMPORTED_UPDATED,
  W2A_IMPORTED_SKIPPED,
  W2A_IMPORTED_INVALID, /* missing email/token, too long */
} w2a_import_result;

/* Editable operator fields (NULL / negative: unchanged). */
typedef struct w2a_account_meta {
  const char *label;
  int weight; /* <0: unchanged */
  int cap;    /* <0: unchanged (0 is refused: use disable) */
} w2a_account_meta;

/* ---- leases ------------------------------------------------------------------------ */

typedef enum w2a_selection {
  W2A_SEL_LRU = 0,     /* least recently used first */
  W2A_SEL_ROUND_ROBIN, /* by id, after the last one handed out (cursor in the database) */
  W2A_SEL_FILL_FIRST,  /* highest weight, then lowest id, until its cap is reached */
} w2a_selection;
int w2a_selection_parse(const char *s); /* -1 when unknown */

typedef struct w2a_lease_req {
  int count;              /* accounts wanted (ACCOUNTS_PER_REQUEST); all-or-some, see below */
  const int64_t *exclude; /* accounts not to hand out (already tried by this request) */
  size_t nexclude;
  const char *holder; /* session id or request id (release_holder); NULL: none */
  uint64_t now_ms;
  uint64_t ttl_ms; /* lease expiry = now + ttl */
  w2a_selection selection;
  int want_secrets; /* fill id_token (and refresh_token) in the result */
  /* When set: lease exactly these accounts, in this order, where each is still within
   * its cap, and nothing else: no selection, no reclaim or readmission (the pool's
   * in-memory lease table chose them: pool.h, LEASES=memory). */
  const int64_t *only;
  size_t nonly;
} w2a_lease_req;

typedef struct w2a_lease_row {
  char id[37];
  int64_t account_id;
  uint64_t expires_ms;
  int probe;        /* this lease is the half-open probe of a cooling account */
  w2a_account acct; /* snapshot after the lease was taken (secrets when asked) */
} w2a_lease_row;

/* Why nothing could be leased (filled when acquire returns 0 rows). */
typedef struct w2a_lease_none {
  int64_t total;
  uint64_t retry_at_ms; /* soonest moment some account could come back; 0 unknown */
  /* Available accounts (not excluded) that only lack capacity: leased to their cap. A
   * release will free one, so waiting makes sense. */
  int64_t busy;
  uint64_t lease_free_at_ms; /* soonest expiry of a lease on one of them; 0 unknown */
  char reason[256];
} w2a_lease_none;

/* How a lease ended. The pool classifies outcomes (rules.h) into this. */
typedef struct w2a_lease_result {
  int ok;             /* success: counters, consecutive failures reset, probe → available */
  int failure;        /* counts towards FAILURE_THRESHOLD within FAILURE_WINDOW */
  int set_state;      /* -1: none; else the new state (cooling, quota, invalid, blocked) */
  uint64_t until_ms;  /* for cooling/quota */
  const char *reason; /* text for state_reason / last_error (never a secret) */
  /* failure-window policy (from the config) */
  int64_t threshold;
  uint64_t window_ms;
  uint64_t cooldown_ms;
} w2a_lease_result;

/* Usage of one account not yet written (in-memory leases: the pool adds it up and writes
 * it now and then, so a request costs no database write). */
typedef struct w2a_usage {
  int64_t account_id;
  int64_t uses, successes;
  uint64_t last_used_ms, last_success_ms; /* 0: unchanged */
} w2a_usage;

/* ---- the backend interface ------------------------------------------------------------ */

typedef struct w2a_store w2a_store;

typedef struct w2a_store_ops {
  const char *name;
  void (*close)(w2a_store *s);

  int (*add)(w2a_store *s, const w2a_account_new *a, uint64_t now_ms, int64_t *id, w2a_err *err);
  int (*import)(w2a_store *s, const w2a_account_new *a, size_t n, w2a_import_mode mode,
                uint64_t now_ms, w2a_import_result *results, w2a_err *err);
  int (*get)(w2a_store *s, int64_t id, const char *email, int flags, w2a_account *out,
             w2a_err *err);
  int (*list)(w2a_store *s, const w2a_store_filter *f, w2a_store_each_fn fn, void *ud,
              w2a_err *err);
  int (*remove)(w2a_store *s, int64_t id, w2a_err *err);
  int (*set_state)(w2a_store *s, int64_t id, w2a_acct_state st, const char *reason,
                   uint64_t until_ms, uint64_t now_ms, w2a_err *err);
  int (*set_meta)(w2a_store *s, int64_t id, const w2a_account_meta *m, w2a_err *err);
  int (*counts)(w2a_store *s, uint64_t now_ms, w2a_store_stats *out, w2a_err *err);
  int (*why_not)(w2a_store *s, int64_t id, uint64_t now_ms, char *buf, size_t len, w2a_err *err);

  int (*set_quota)(w2a_store *s, int64_t id, const w2a_quota *q, w2a_err *err);
  int (*set_tokens)(w2a_store *s, int64_t id, const char *id_token, uint64_t exp_ms,
                    const char *new_refresh_token, uint64_t now_ms, w2a_err *err);
  int (*refresh_failed)(w2a_store *s, int64_t id, int invalid, const char *reason, uint64_t now_ms,
                        w2a_err *err);
  int (*refresh_claim)(w2a_store *s, int64_t id, uint64_t seen_refresh_ms, uint64_t now_ms,
                       uint64_t hold_ms, w2a_err *err);
  int (*due)(w2a_store *s, int what, uint64_t now_ms, uint64_t horizon_ms, int64_t *ids, size_t max,
             size_t *n, w2a_err *err);

  int (*lease_acquire)(w2a_store *s, const w2a_lease_req *rq, w2a_lease_row *rows, int *n,
                       w2a_lease_none *none, w2a_err *err);
  int (*lease_extend)(w2a_store *s, const char *lease_id, uint64_t expires_ms, w2a_err *err);
  int (*lease_release)(w2a_store *s, const char *lease_id, int64_t account_id,
                       const w2a_lease_result *r, uint64_t now_ms, w2a_err *err);
  int (*release_holder)(w2a_store *s, const char *holder, uint64_t now_ms, int *n, w2a_err *err);
  int (*reclaim)(w2a_store *s, uint64_t now_ms, int *n, w2a_err *err);
  int (*apply_result)(w2a_store *s, int64_t account_id, int was_probe, const w2a_lease_result *r,
                      uint64_t now_ms, w2a_err *err);
  int (*add_usage)(w2a_store *s, const w2a_usage *u, size_t n, w2a_err *err);
  int (*data_version)(w2a_store *s, int64_t *version, w2a_err *err);
  int (*readmit)(w2a_store *s, uint64_t now_ms, int *n, w2a_err *err);

  int (*batch_begin)(w2a_store *s, w2a_err *err);
  int (*batch_commit)(w2a_store *s, w2a_err *err);

  int (*integrity_check)(w2a_store *s, char *buf, size_t len, w2a_err *err);
  int (*explain_selection)(w2a_store *s, w2a_selection sel, char *buf, size_t len, w2a_err *err);
} w2a_store_ops;

/* Backends embed this first. */
struct w2a_store {
  const w2a_store_ops *ops;
};

/* ---- the API (thin wrappers over the ops) ------------------------------------------ */

/* Open (creating the file and its directory, running migrations unless readonly).
 * The backend is chosen from the path: "postgres://…" is reserved for a later backend;
 * anything else is a SQLite file. A wrong encryption key fails here (a check value is
 * stored with the first key used). */
int w2a_store_open(w2a_store **out, const w2a_store_opts *o, w2a_err *err);
void w2a_store_close(w2a_store *s);

/* Add one account (refresh token sealed when a key is set). */
int w2a_store_add(w2a_store *s, const w2a_account_new *a, uint64_t now_ms, int64_t *id,
                  w2a_err *err);
/* Many accounts in one transaction: either all rows are written or none. results[i]
 * (optional) says what happened to a[i]; invalid rows are skipped, not fatal. */
int w2a_store_import(w2a_store *s, const w2a_account_new *a, size_t n, w2a_import_mode mode,
                     uint64_t now_ms, w2a_import_result *results, w2a_err *err);
int w2a_store_get(w2a_store *s, int64_t id, int flags, w2a_account *out, w2a_err *err);
int w2a_store_get_by_email(w2a_store *s, const char *email, int flags, w2a_account *out,
                           w2a_err *err);
/* List (and, with W2A_STORE_SECRETS, export) in id order. */
int w2a_store_list(w2a_store *s, const w2a_store_filter *f, w2a_store_each_fn fn, void *ud,
                   w2a_err *err);
/* Delete an account and its leases. */
int w2a_store_delete(w2a_store *s, int64_t id, w2a_err *err);
/* Operator state change: W2A_ST_DISABLED (with reason) or W2A_ST_AVAILABLE (enable:
 * clears reason, recovery time and failure counters). Other states are accepted too
 * (tests, "mark quota exhausted"). */
int w2a_store_set_state(w2a_store *s, int64_t id, w2a_acct_state st, const char *reason,
                        uint64_t until_ms, uint64_t now_ms, w2a_err *err);
int w2a_store_set_meta(w2a_store *s, int64_t id, const w2a_account_meta *m, w2a_err *err);
/* Per-state counts and lease totals: two index-only queries, cheap at 10,000 accounts. */
int w2a_store_counts(w2a_store *s, uint64_t now_ms, w2a_store_stats *out, w2a_err *err);
/* One line: why this account would not be leased right now ("" when it would be). */
int w2a_store_why_not(w2a_store *s, int64_t id, uint64_t now_ms, char *buf, size_t len,
                      w2a_err *err);

/* Quota from GetRequestLimitInfo. When used >= limit (and not unlimited) the account
 * becomes quota_exhausted until q->reset_ms; an exhausted account whose reset passed
 * and that has quota again becomes available. */
int w2a_store_set_quota(w2a_store *s, int64_t id, const w2a_quota *q, w2a_err *err);

/* Token refresh bookkeeping. set_tokens stores a new ID token (and, when the refresh
 * rotated it, the new refresh token, in the same durable transaction), clears the
 * refresh lock and refresh failure count. refresh_failed clears the lock; invalid=1
 * marks the account invalid (the refresh token was rejected), otherwise the old ID
 * token stays in use. refresh_claim takes the cross-process refresh lock: 0 when this
 * caller got it, W2A_EAGAIN when another holds it (until its hold time), W2A_ESTATE when
 * the account's last refresh is no longer seen_refresh_ms (its last_refresh_ms when the
 * caller read it): another process refreshed in between, so read the token again rather
 * than refresh twice. */
int w2a_store_set_tokens(w2a_store *s, int64_t id, const char *id_token, uint64_t exp_ms,
                         const char *new_refresh_token, uint64_t now_ms, w2a_err *err);
int w2a_store_refresh_failed(w2a_store *s, int64_t id, int invalid, const char *reason,
                             uint64_t now_ms, w2a_err *err);
int w2a_store_refresh_claim(w2a_store *s, int64_t id, uint64_t seen_refresh_ms, uint64_t now_ms,
                            uint64_t hold_ms, w2a_err *err);

/* Accounts due for background work, soonest first, at most max:
 * W2A_DUE_REFRESH: available or cooling accounts used within the last two hours whose
 *   ID token expires before now + horizon (idle accounts are refreshed on demand only,
 *   so a large idle pool makes no refresh traffic at all);
 * W2A_DUE_QUOTA: accounts not invalid/blocked/disabled, quota last polled before
 *   now - horizon (or never), whose ID token is valid for another minute (a poll never
 *   forces a refresh). */
enum { W2A_DUE_REFRESH = 0, W2A_DUE_QUOTA = 1 };
int w2a_store_due(w2a_store *s, int what, uint64_t now_ms, uint64_t horizon_ms, int64_t *ids,
                  size_t max, size_t *n, w2a_err *err);

/* Lease up to rq->count accounts (fewer when fewer are eligible; 0 fills `none`).
 * One transaction: expired leases are reclaimed first, quota_exhausted accounts whose
 * reset passed are readmitted, then eligible accounts (state available, or cooling past
 * its time with no probe out, as a probe; active_leases < cap; not excluded) are taken
 * in selection order, accounts with quota left first. rows must hold rq->count entries;
 * clear each row's acct with w2a_account_clear. */
int w2a_store_lease_acquire(w2a_store *s, const w2a_lease_req *rq, w2a_lease_row *rows, int *n,
                            w2a_lease_none *none, w2a_err *err);
/* Move a live lease's expiry; W2A_ENOTFOUND if it was already reclaimed. */
int w2a_store_lease_extend(w2a_store *s, const char *lease_id, uint64_t expires_ms, w2a_err *err);
/* End a lease and apply its result (NULL: plain release, no counters touched) to
 * account_id, in one transaction. The result is applied even when the lease was
 * already reclaimed (then W2A_ENOTFOUND is returned after applying it), so an outcome
 * is never lost and active_leases is decremented exactly once. */
int w2a_store_lease_release(w2a_store *s, const char *lease_id, int64_t account_id,
                            const w2a_lease_result *r, uint64_t now_ms, w2a_err *err);
/* Apply the result of a lease that lived in memory only (no row): what lease_release
 * does to the account, in one transaction (durable when the result is a failure). */
int w2a_store_apply_result(w2a_store *s, int64_t account_id, int was_probe,
                           const w2a_lease_result *r, uint64_t now_ms, w2a_err *err);
/* Add usage counters (uses, successes) and move last_used/last_success forward, for n
 * accounts in one transaction. Unknown accounts are skipped. */
int w2a_store_add_usage(w2a_store *s, const w2a_usage *u, size_t n, w2a_err *err);
/* A number that changes whenever another connection (another process: the CLI, a
 * second service) has committed a change since the last call on this store. */
int w2a_store_data_version(w2a_store *s, int64_t *version, w2a_err *err);
/* Release every lease of a holder (the seed's session release). */
int w2a_store_release_holder(w2a_store *s, const char *holder, uint64_t now_ms, int *n,
                             w2a_err *err);
/* Delete leases past their expiry (and the probes they carried). */
int w2a_store_reclaim(w2a_store *s, uint64_t now_ms, int *n, w2a_err *err);
/* quota_exhausted accounts past their reset → available. (Cooling accounts are not
 * readmitted wholesale: they come back through one probe lease.) */
int w2a_store_readmit(w2a_store *s, uint64_t now_ms, int *n, w2a_err *err);

/* Group commit: between batch_begin and batch_commit every call runs inside one write
 * transaction (each writing call in its own savepoint: a call that fails rolls back
 * only its own changes), committed once, durably (FULL) if any call inside asked for it.
 * Nothing inside is committed before batch_commit returns 0; when it fails the whole
 * batch is rolled back and its calls may be run again one by one. Calls inside must
 * not depend on another process seeing their writes before the commit. */
int w2a_store_batch_begin(w2a_store *s, w2a_err *err);
int w2a_store_batch_commit(w2a_store *s, w2a_err *err);

/* SQLite with opts.checkpoint_thread: checkpoints run so far by the checkpointer thread
 * and, when it fell behind, by the store's own connection (tests, benchmarks); -1
 * without a checkpointer. */
int w2a_store_sqlite_checkpoints(w2a_store *s, uint64_t *background, uint64_t *inline_);

/* "ok" or the problems found (SQLite: PRAGMA integrity_check). */
int w2a_store_integrity_check(w2a_store *s, char *buf, size_t len, w2a_err *err);
/* The query plan of the selection query (tests and benchmarks show it uses an index). */
int w2a_store_explain_selection(w2a_store *s, w2a_selection sel, char *buf, size_t len,
                                w2a_err *err);

/* Read the "exp" claim of a JWT (ms since the epoch); 0 when absent or malformed. */
uint64_t w2a_jwt_exp_ms(const char *jwt);

#endif
