/* pool.h - the account pool as the gateway and the admin API see it.
 *
 * The pool owns the operator's Warp accounts (SQLite behind the store interface in
 * store.h), hands them out under leases, keeps their ID tokens fresh, and moves them
 * between states (docs/pool.md). It knows nothing of OpenAI.
 *
 * Threading: the w2a_pool object lives on one libuv loop. Every database call runs on
 * the pool's worker thread(s); results come back to the loop through uv_async, so no
 * callback below ever runs on a worker and the loop never blocks on SQLite. Token
 * refreshes and quota polls go out through the loop's w2a_http_client.
 *
 * Several processes may open the same database (`warp2api pool` + `warp2api gateway`):
 * leases, caps and refresh locks are rows in the database, so they hold across
 * processes. */
#ifndef W2A_POOL_H
#define W2A_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/config.h"
#include "common/err.h"
#include "http/client.h"
#include "pool/store.h"

typedef struct w2a_pool w2a_pool;

/* One leased account, as handed to the gateway. Owned by the pool; valid until
 * w2a_pool_release(). */
typedef struct w2a_lease {
  char lease_id[37];
  int64_t account_id;
  char email[256];
  char id_token[4096]; /* fresh: more than the refresh margin left, or just refreshed */
  uint64_t id_token_exp_ms;
  uint64_t expires_ms; /* lease expiry; extended by w2a_pool_extend (0: in memory) */
  int mem;             /* an in-memory lease (LEASES=memory): no database row */
  int probe;           /* the half-open probe of a cooled account */
} w2a_lease;

/* What happened with a leased account's upstream call. The pool classifies it through
 * the error rule table (status + body text → action) and updates the account. */
typedef struct w2a_outcome {
  int ok;              /* the request succeeded (a complete answer) */
  int http_status;     /* upstream HTTP status, 0 for a transport failure */
  const char *body;    /* upstream error body or in-stream error text (may be NULL) */
  const char *finish;  /* in-stream finish reason when not "done": "quota_limit", … */
  int transport_error; /* connect failure, timeout, cut connection */
} w2a_outcome;

/* What the pool decided, so the gateway knows whether to try another account. */
typedef enum w2a_action {
  W2A_ACT_NONE = 0,      /* success, nothing to do */
  W2A_ACT_RETRY_REFRESH, /* token rejected: refresh this account, retry it once */
  W2A_ACT_COOLDOWN,      /* cooled for a while: try another account */
  W2A_ACT_QUOTA,         /* quota exhausted until its reset: try another account */
  W2A_ACT_BLOCK,         /* blocked (403 blocked from AI): try another account */
  W2A_ACT_INVALID,       /* refresh token rejected: try another account */
  W2A_ACT_FAIL_REQUEST,  /* the request itself is bad: do not retry */
  W2A_ACT_RETRY_OTHER,   /* transient: try another account, no state change */
} w2a_action;

/* Why acquire could not lease anything. */
typedef struct w2a_pool_unavailable {
  int empty;            /* no accounts at all (→ 503) */
  uint64_t retry_at_ms; /* soonest recovery of any account (→ 429 Retry-After), 0 unknown */
  char reason[256];     /* human text: "all 3 accounts are quota_exhausted until …" */
} w2a_pool_unavailable;

typedef void (*w2a_pool_acquire_fn)(int rc, w2a_lease *lease, const w2a_pool_unavailable *why,
                                    void *ud);
typedef void (*w2a_pool_done_fn)(int rc, void *ud);

/* Flags for w2a_pool_open. */
enum {
  /* run the periodic jobs (proactive refresh, quota polling, lease reclaim, re-admission
   * after cool-down): one process sharing a database should; every process reclaims
   * expired leases lazily anyway */
  W2A_POOL_BACKGROUND = 1,
  /* this process hands out leases (gateway, pool service): it takes the database's
   * lease lock, shared (leases in the database) or exclusive (in memory) */
  W2A_POOL_LEASER = 2,
  /* gateway and pool in this one process (`serve`): with LEASES=auto, request leases
   * live in memory (ledger.h) when no other process leases from the database; then
   * no other leasing process may open it until this one ends (a clear error says so) */
  W2A_POOL_SOLE = 4,
};

/* Open the store (migrations run), take the lease lock, start the worker. Fails with a
 * message naming the other process when the lease lock is held the other way. */
int w2a_pool_open(w2a_pool **out, uv_loop_t *loop, const w2a_config *cfg, w2a_http_client *http,
                  int flags, w2a_err *err);
void w2a_pool_close(w2a_pool *p, void (*done)(void *ud), void *ud);

/* Lease one account for a request, skipping `exclude` (accounts already tried by this
 * request). The token is fresh when the callback runs (single-flight refresh).
 * When the only obstacle is that eligible accounts are leased to their cap, the acquire
 * waits (FIFO, up to LEASE_WAIT) for a lease to end, here or in another process sharing
 * the database; otherwise (cooling, quota, nothing at all) it fails at once with rc
 * W2A_EAGAIN and `why`. The callback runs exactly once, never from inside this call
 * (except during w2a_pool_close). */
void w2a_pool_acquire(w2a_pool *p, const int64_t *exclude, size_t nexclude, w2a_pool_acquire_fn cb,
                      void *ud);
/* The caller of the unanswered acquire with this `ud` is going away: its callback runs
 * from inside this call with rc W2A_ESTATE and no lease (a lease its in-flight store
 * transaction takes is given back). No-op when no such acquire is pending. */
void w2a_pool_acquire_cancel(w2a_pool *p, void *ud);
/* Report the outcome (classified into an action) and release the lease (freed: do not
 * use it afterwards). For a 401 (W2A_ACT_RETRY_REFRESH) either call
 * w2a_pool_refresh_lease() first and retry on the same lease, reporting only the final
 * outcome, or report the 401: the account's token is then marked stale and a forced
 * single-flight refresh starts, which the account's next lease waits for. */
w2a_action w2a_pool_report(w2a_pool *p, w2a_lease *lease, const w2a_outcome *o);
/* Keep a lease alive while its stream runs. */
void w2a_pool_extend(w2a_pool *p, w2a_lease *lease);
/* Release without an outcome (e.g. client went away before upstream answered). */
void w2a_pool_release(w2a_pool *p, w2a_lease *lease);
/* Force a refresh of the lease's account now (after a 401), then call back with a
 * fresh token in lease->id_token. */
void w2a_pool_refresh_lease(w2a_pool *p, w2a_lease *lease, w2a_pool_done_fn cb, void *ud);

/* Usable accounts right now (for /readyz); cached, cheap, loop thread only. */
int w2a_pool_usable_count(const w2a_pool *p);

/* ---- for the admin API and `warp2api pool` ------------------------------------------ */

/* Run `work` on the pool's DB worker thread with the worker's own store connection, then
 * `done` on the loop thread (either may be NULL). Jobs run in submission order. The
 * store must not be kept past `work`. After w2a_pool_close has begun, work is not run
 * and done is still called (so callers can free ud). */
typedef void (*w2a_pool_work_fn)(w2a_store *s, void *ud);
void w2a_pool_submit(w2a_pool *p, w2a_pool_work_fn work, void (*done)(void *ud), void *ud);

/* The seed's session API (POST /api/accounts/allocate and /release): lease up to
 * ACCOUNTS_PER_REQUEST accounts under `session_id` (holder), each with a fresh token.
 * leases[0..n) are valid during the callback only; they stay leased (TTL LEASE_TTL,
 * reclaimed by expiry when never released) until w2a_pool_release_session. */
typedef void (*w2a_pool_session_fn)(int rc, const w2a_lease *leases, int n,
                                    const w2a_pool_unavailable *why, void *ud);
void w2a_pool_allocate(w2a_pool *p, const char *session_id, w2a_pool_session_fn cb, void *ud);
/* The callback's rc is the number of leases released (>= 0) or a W2A_E* code. */
void w2a_pool_release_session(w2a_pool *p, const char *session_id, w2a_pool_done_fn cb, void *ud);

/* Refresh one account's ID token. Without `force`, an account whose token still has
 * more than TOKEN_REFRESH_MARGIN left is skipped (the one-hour rule). */
typedef enum w2a_refresh_status {
  W2A_REFRESH_DONE = 0,
  W2A_REFRESH_SKIPPED, /* still fresh, or another process is refreshing it */
  W2A_REFRESH_FAILED,  /* the old ID token (if still valid) stays in use */
  W2A_REFRESH_INVALID, /* refresh token rejected: account marked invalid */
} w2a_refresh_status;
typedef void (*w2a_pool_refresh_fn)(int rc, w2a_refresh_status st, const char *msg, void *ud);
void w2a_pool_refresh_account(w2a_pool *p, int64_t account_id, int force, w2a_pool_refresh_fn cb,
                              void *ud);
/* Poll GetRequestLimitInfo for one account now (import, admin button). */
void w2a_pool_poll_quota(w2a_pool *p, int64_t account_id, w2a_pool_done_fn cb, void *ud);

/* LEASES=memory (loop thread): in-memory leases on one account, -1 when request leases
 * live in the database (then the store's figures are whole). */
int w2a_pool_memory_leases(const w2a_pool *p, int64_t account_id);
/* Figures the store cannot know in memory mode: leases out (all accounts), accounts with a
 * lease, accounts that could be leased now. -1s with leases in the database. */
void w2a_pool_memory_figures(const w2a_pool *p, int64_t *leases, int64_t *leased_accounts,
                             int64_t *usable);

/* Counts from the last background/explicit refresh of the cache (loop thread). */
const w2a_store_stats *w2a_pool_cached_counts(const w2a_pool *p);
const w2a_config *w2a_pool_config(const w2a_pool *p);

#endif
