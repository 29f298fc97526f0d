/* ledger.h - the in-memory lease table (LEASES=memory, the default under `serve`).
 *
 * When one process both serves requests and runs the pool, and no other process hands
 * out leases from the same database (pool.c holds an exclusive lock to make sure), a
 * request's lease need not be a database row: if the process dies, the lease dies with
 * the request that held it, so nothing can stay stuck. The ledger is that process's
 * table of accounts as far as choosing one goes (state, recovery time, quota flag, cap,
 * last use, weight), loaded from the store and kept in step with it, in which request
 * leases are taken and given back on the loop thread without a database round trip.
 * Selection follows the store's rules exactly (store.h, w2a_store_lease_acquire): the
 * half-open probe of a cooled account first, then available accounts (and exhausted
 * ones whose quota reset has passed) with quota left before those without, in the
 * configured order, each within its cap.
 *
 * What still goes to the database: every state change (a failure, a cool-down, a
 * quota verdict, a probe's result) as a durable write, session leases of the admin
 * API as rows, and the usage counters (uses, successes, last use), added up here and
 * written now and then (pool.c).
 *
 * Loop thread only; no locks. Entries are kept sorted by account id (the store lists in
 * id order), so a load is a merge and a lookup a binary search; pointers to entries
 * are valid until the next w2a_ledger_load.
 *
 * Cost of a pick. LRU (the default): available accounts sit in two lists (quota left,
 * quota low) in last-use order, and a lease moves its account to the tail, so a pick
 * looks at the head: O(1), whatever the pool's size (accounts at their cap and excluded
 * ones are stepped over). Round-robin: a binary search for the cursor, then forward.
 * Cooled and exhausted accounts are looked at only once the soonest of them is due.
 * Fill-first walks the accounts in weight order (O(pool)); the benchmark says how much
 * that is (bench/bench_pool.c). */
#ifndef W2A_LEDGER_H
#define W2A_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* One account as the store has it (what a load brings). */
typedef struct w2a_ledger_row {
  int64_t id;
  char *email; /* heap; the ledger takes it */
  w2a_acct_state state;
  uint64_t until_ms;
  int quota_low, cap, weight;
  uint64_t last_used_ms;
  int64_t fails; /* consecutive + window failures: a success has to reset them */
  int held;      /* lease rows in the database (session leases) */
  uint64_t id_token_exp_ms;
} w2a_ledger_row;

typedef struct w2a_ledger_acct {
  w2a_ledger_row r;
  int pend;      /* session lease rows being written */
  int mem;       /* in-memory leases out */
  int probe_out; /* the half-open probe of this cooling account is out */
  int writes;    /* durable state changes in flight: a load keeps the state seen here */
  int gone;      /* deleted from the store; kept until its last lease ends */
  char *token;   /* cached ID token; NULL: ask the store (pool.c ensure_token) */
  uint64_t token_exp_ms;
  w2a_usage due;        /* usage not written yet (account_id 0: none) */
  int64_t lprev, lnext; /* LRU list links (indexes into v; -1: none); in_lru: linked */
  int in_lru;
} w2a_ledger_acct;

typedef struct w2a_ledger {
  w2a_ledger_acct *v; /* sorted by id */
  size_t n, cap;
  int64_t rr_cursor; /* round-robin: the last account handed out */
  int64_t mem_total; /* in-memory leases out, all accounts */
  size_t ndue;       /* entries with usage not written */
  int loaded;        /* a load has been applied */
  /* LRU lists of available accounts, [0] with quota left, [1] quota low (head: oldest) */
  int64_t lhead[2], ltail[2];
  /* cooling/quota_exhausted accounts: none is due before this (0: look again) */
  uint64_t wake_ms;
} w2a_ledger;

void w2a_ledger_free(w2a_ledger *L);
w2a_ledger_acct *w2a_ledger_find(w2a_ledger *L, int64_t id);

/* Apply a load: rows (n, in ascending id order; their emails are taken over, the array
 * is not) are the store's truth, except that an entry with state writes in flight keeps
 * its state, and local lease counts, probe flags, cached tokens and unwritten usage carry
 * over. Accounts missing from the load are dropped, or marked gone while leased. A cached
 * token is dropped when the store's token expiry differs from it (refreshed elsewhere).
 * Returns 0 or W2A_ENOMEM (then the ledger is unchanged and rows are freed). */
int w2a_ledger_load(w2a_ledger *L, w2a_ledger_row *rows, size_t n);
/* One account's new store state after a durable write of ours (writes in flight are the
 * caller's to count down). */
void w2a_ledger_update(w2a_ledger *L, const w2a_account *a);
/* Change an entry's state here (what a write on its way will store). */
void w2a_ledger_set_state(w2a_ledger *L, w2a_ledger_acct *e, w2a_acct_state st, uint64_t until_ms);

/* The account the store would lease now, or NULL. *probe: it is a cooled account's
 * half-open probe; *readmit: it is a quota_exhausted account past its reset (the store
 * must be told: w2a_store_readmit). Nothing is taken yet. */
w2a_ledger_acct *w2a_ledger_pick(const w2a_ledger *L, w2a_selection sel, uint64_t now_ms,
                                 const int64_t *exclude, size_t nexclude, int *probe, int *readmit);
/* Take an in-memory lease on e (picked just now): counts, last use, usage due. */
void w2a_ledger_take(w2a_ledger *L, w2a_ledger_acct *e, w2a_selection sel, uint64_t now_ms,
                     int probe, int readmit);
/* Give an in-memory lease back (e may be gone: then it is dropped with its last lease). */
void w2a_ledger_give_back(w2a_ledger *L, int64_t id, int probe);
/* Count a success into the usage due (only when nothing about the account changes). */
void w2a_ledger_success(w2a_ledger *L, w2a_ledger_acct *e, uint64_t now_ms);
/* Move up to max entries' due usage into out (and clear it there); returns how many. */
size_t w2a_ledger_take_due(w2a_ledger *L, w2a_usage *out, size_t max);
/* Put usage back that could not be written. */
void w2a_ledger_readd_due(w2a_ledger *L, const w2a_usage *u, size_t n);

/* Why nothing could be leased: the same figures and text as the store's answer. */
void w2a_ledger_explain(const w2a_ledger *L, uint64_t now_ms, const int64_t *exclude,
                        size_t nexclude, w2a_lease_none *none);
/* Accounts that could be leased right now; accounts with any lease (memory or rows). */
int64_t w2a_ledger_usable(const w2a_ledger *L, uint64_t now_ms);
int64_t w2a_ledger_leased_accounts(const w2a_ledger *L);

#endif
