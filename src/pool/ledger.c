/* ledger.c - the in-memory lease table (ledger.h). */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

/* ---- LRU lists -------------------------------------------------------------------- */

static int64_t idx(const w2a_ledger *L, const w2a_ledger_acct *e) { return e - L->v; }
static int lru_class(const w2a_ledger_acct *e) { return e->r.quota_low ? 1 : 0; }
static int lru_member(const w2a_ledger_acct *e) {
  return !e->gone && e->r.state == W2A_ST_AVAILABLE;
}
static int lru_before(const w2a_ledger_acct *a, const w2a_ledger_acct *b) {
  if (a->r.last_used_ms != b->r.last_used_ms) return a->r.last_used_ms < b->r.last_used_ms;
  return a->r.id < b->r.id;
}

static void lru_unlink(w2a_ledger *L, w2a_ledger_acct *e) {
  if (!e->in_lru) return;
  int c = lru_class(e);
  if (e->lprev >= 0)
    L->v[e->lprev].lnext = e->lnext;
  else
    L->lhead[c] = e->lnext;
  if (e->lnext >= 0)
    L->v[e->lnext].lprev = e->lprev;
  else
    L->ltail[c] = e->lprev;
  e->lprev = e->lnext = -1;
  e->in_lru = 0;
}

/* Link e in last-use order: from the tail back (a lease's account goes to the tail in
 * one step; an account coming back from a cool-down walks back to its place). */
static void lru_link(w2a_ledger *L, w2a_ledger_acct *e) {
  if (e->in_lru || !lru_member(e)) return;
  int c = lru_class(e);
  int64_t at = L->ltail[c]; /* e goes after `at` */
  while (at >= 0 && lru_before(e, &L->v[at]))
    at = L->v[at].lprev;
  int64_t i = idx(L, e);
  e->lprev = at;
  e->lnext = at >= 0 ? L->v[at].lnext : L->lhead[c];
  if (e->lnext >= 0)
    L->v[e->lnext].lprev = i;
  else
    L->ltail[c] = i;
  if (at >= 0)
    L->v[at].lnext = i;
  else
    L->lhead[c] = i;
  e->in_lru = 1;
}

static int cmp_lru(const void *a, const void *b, void *v) {
  const w2a_ledger_acct *x = &((w2a_ledger_acct *)v)[*(const int64_t *)a];
  const w2a_ledger_acct *y = &((w2a_ledger_acct *)v)[*(const int64_t *)b];
  return lru_before(x, y) ? -1 : lru_before(y, x) ? 1 : 0;
}

static void lru_rebuild(w2a_ledger *L) {
  L->lhead[0] = L->lhead[1] = L->ltail[0] = L->ltail[1] = -1;
  int64_t *ord = malloc((L->n ? L->n : 1) * sizeof *ord);
  size_t m = 0;
  for (size_t i = 0; i < L->n; i++) {
    L->v[i].lprev = L->v[i].lnext = -1;
    L->v[i].in_lru = 0;
    if (ord && lru_member(&L->v[i])) ord[m++] = (int64_t)i;
  }
  if (!ord) { /* no memory for the sort: link one by one (slower, same order) */
    for (size_t i = 0; i < L->n; i++)
      lru_link(L, &L->v[i]);
    return;
  }
  qsort_r(ord, m, sizeof *ord, cmp_lru, L->v);
  for (size_t k = 0; k < m; k++) { /* in order: each goes to its class's tail */
    w2a_ledger_acct *e = &L->v[ord[k]];
    int c = lru_class(e);
    e->lprev = L->ltail[c];
    if (L->ltail[c] >= 0)
      L->v[L->ltail[c]].lnext = ord[k];
    else
      L->lhead[c] = ord[k];
    L->ltail[c] = ord[k];
    e->in_lru = 1;
  }
  free(ord);
}

void w2a_ledger_set_state(w2a_ledger *L, w2a_ledger_acct *e, w2a_acct_state st, uint64_t until) {
  lru_unlink(L, e);
  if (e->r.state == W2A_ST_QUOTA && st == W2A_ST_AVAILABLE) e->r.quota_low = 0; /* readmit */
  e->r.state = st;
  e->r.until_ms = until;
  L->wake_ms = 0; /* look at the sleeping accounts again */
  lru_link(L, e);
}

/* ---- entries ----------------------------------------------------------------------- */

static void entry_free(w2a_ledger_acct *e) {
  free(e->r.email);
  w2a_secret_free(e->token);
  e->r.email = NULL;
  e->token = NULL;
}

void w2a_ledger_free(w2a_ledger *L) {
  for (size_t i = 0; i < L->n; i++)
    entry_free(&L->v[i]);
  free(L->v);
  memset(L, 0, sizeof *L);
}

w2a_ledger_acct *w2a_ledger_find(w2a_ledger *L, int64_t id) {
  size_t lo = 0, hi = L->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (L->v[mid].r.id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < L->n && L->v[lo].r.id == id ? &L->v[lo] : NULL;
}

int w2a_ledger_load(w2a_ledger *L, w2a_ledger_row *rows, size_t n) {
  size_t cap = n + L->n; /* at most every row plus every gone-but-leased old entry */
  w2a_ledger_acct *v = calloc(cap ? cap : 1, sizeof *v);
  if (!v) {
    for (size_t i = 0; i < n; i++)
      free(rows[i].email);
    return W2A_ENOMEM;
  }
  size_t i = 0, j = 0, k = 0;
  int64_t mem = 0;
  size_t ndue = 0;
  while (i < n || j < L->n) {
    w2a_ledger_row *r = i < n ? &rows[i] : NULL;
    w2a_ledger_acct *o = j < L->n ? &L->v[j] : NULL;
    if (r && (!o || r->id < o->r.id)) { /* new account */
      v[k].r = *r;
      i++;
    } else if (!r || o->r.id < r->id) { /* no longer in the store */
      if (o->mem > 0) {
        v[k] = *o;
        v[k].gone = 1;
        o->r.email = NULL;
        o->token = NULL;
      } else {
        entry_free(o);
        j++;
        continue;
      }
      j++;
    } else { /* both: the store's row, with what lives here carried over */
      v[k] = *o;
      free(v[k].r.email);
      w2a_ledger_row keep = o->r;
      v[k].r = *r;
      if (o->writes > 0) { /* our own state write is on its way: keep what we decided */
        v[k].r.state = keep.state;
        v[k].r.until_ms = keep.until_ms;
        v[k].r.quota_low = keep.quota_low;
        v[k].r.fails = keep.fails;
      }
      if (keep.last_used_ms > v[k].r.last_used_ms) v[k].r.last_used_ms = keep.last_used_ms;
      v[k].gone = 0;
      if (v[k].token && v[k].token_exp_ms != r->id_token_exp_ms) {
        w2a_secret_free(v[k].token); /* stored anew elsewhere (the CLI, another refresh) */
        v[k].token = NULL;
        v[k].token_exp_ms = 0;
      }
      o->r.email = NULL;
      o->token = NULL;
      i++;
      j++;
    }
    mem += v[k].mem;
    if (v[k].due.account_id) ndue++;
    k++;
  }
  free(L->v);
  L->v = v;
  L->n = k;
  L->cap = cap;
  L->mem_total = mem;
  L->ndue = ndue;
  L->loaded = 1;
  L->wake_ms = 0;
  lru_rebuild(L);
  return 0;
}

void w2a_ledger_update(w2a_ledger *L, const w2a_account *a) {
  w2a_ledger_acct *e = w2a_ledger_find(L, a->id);
  if (!e) return;
  lru_unlink(L, e);
  e->r.state = a->state;
  e->r.until_ms = a->state_until_ms;
  e->r.quota_low = a->quota_low;
  L->wake_ms = 0;
  e->r.fails = a->consecutive_failures + a->window_failures;
  e->r.cap = a->cap;
  e->r.weight = a->weight;
  lru_link(L, e);
}

static int excluded(const int64_t *ex, size_t n, int64_t id) {
  for (size_t i = 0; i < n; i++)
    if (ex[i] == id) return 1;
  return 0;
}

static int has_room(const w2a_ledger_acct *e) {
  return !e->gone && e->mem + e->r.held + e->pend < e->r.cap;
}

/* quota_exhausted past its reset: the store readmits it (quota_low cleared) first */
static int readmittable(const w2a_ledger_acct *e, uint64_t now) {
  return e->r.state == W2A_ST_QUOTA && e->r.until_ms <= now;
}

/* Is a before b in the selection order? (Both eligible, same quota class.) */
static int before(const w2a_ledger_acct *a, const w2a_ledger_acct *b, w2a_selection sel,
                  int64_t cursor) {
  switch (sel) {
  case W2A_SEL_FILL_FIRST:
    if (a->r.weight != b->r.weight) return a->r.weight > b->r.weight;
    return a->r.id < b->r.id;
  case W2A_SEL_ROUND_ROBIN: {
    /* ids after the cursor first, then from the start (the store's wrap-around) */
    int aw = a->r.id <= cursor, bw = b->r.id <= cursor;
    if (aw != bw) return bw;
    return a->r.id < b->r.id;
  }
  default:
    if (a->r.last_used_ms != b->r.last_used_ms) return a->r.last_used_ms < b->r.last_used_ms;
    return a->r.id < b->r.id;
  }
}

/* The first account of an LRU list that has room and is not excluded. */
static w2a_ledger_acct *lru_first(const w2a_ledger *L, int c, const int64_t *ex, size_t nex) {
  for (int64_t i = L->lhead[c]; i >= 0; i = L->v[i].lnext) {
    w2a_ledger_acct *e = &L->v[i];
    if (has_room(e) && !excluded(ex, nex, e->r.id)) return e;
  }
  return NULL;
}

/* Round-robin: the first eligible account after the cursor in id order, then from the
 * start (v is sorted by id). */
static w2a_ledger_acct *rr_first(const w2a_ledger *L, int ql, int64_t cursor, const int64_t *ex,
                                 size_t nex) {
  size_t lo = 0, hi = L->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (L->v[mid].r.id <= cursor)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (size_t k = 0; k < L->n; k++) {
    w2a_ledger_acct *e = &L->v[(lo + k) % L->n];
    if (lru_member(e) && e->r.quota_low == ql && has_room(e) && !excluded(ex, nex, e->r.id))
      return e;
  }
  return NULL;
}

w2a_ledger_acct *w2a_ledger_pick(const w2a_ledger *Lc, w2a_selection sel, uint64_t now,
                                 const int64_t *ex, size_t nex, int *probe, int *readmit) {
  w2a_ledger *L = (w2a_ledger *)Lc; /* wake_ms is a cache */
  *probe = *readmit = 0;
  /* Cooled and exhausted accounts: only once the soonest of them is due. A cooled
   * account whose time is up gets its one probe before fresh accounts: that is the only
   * way it comes back (soonest recovery first); an exhausted one past its reset is
   * readmitted and competes with the available ones. */
  w2a_ledger_acct *probe_e = NULL, *re_e = NULL;
  if (now >= L->wake_ms) {
    uint64_t wake = UINT64_MAX;
    for (size_t i = 0; i < L->n; i++) {
      w2a_ledger_acct *e = &L->v[i];
      if (e->gone || (e->r.state != W2A_ST_COOLING && e->r.state != W2A_ST_QUOTA)) continue;
      if (e->r.state == W2A_ST_COOLING && e->probe_out) continue; /* its give-back wakes */
      if (e->r.until_ms > now) {
        if (e->r.until_ms < wake) wake = e->r.until_ms;
        continue;
      }
      wake = now; /* due now (taken below, or kept out by its cap or the exclusions) */
      if (!has_room(e) || excluded(ex, nex, e->r.id)) continue;
      if (e->r.state == W2A_ST_COOLING) {
        if (!probe_e || e->r.until_ms < probe_e->r.until_ms) probe_e = e;
      } else if (!re_e || before(e, re_e, sel, L->rr_cursor)) {
        re_e = e;
      }
    }
    L->wake_ms = wake == now ? 0 : wake;
  }
  if (probe_e) {
    *probe = 1;
    return probe_e;
  }
  for (int ql = 0; ql <= 1; ql++) {
    w2a_ledger_acct *best = NULL;
    if (sel == W2A_SEL_LRU) {
      best = lru_first(L, ql, ex, nex);
    } else if (sel == W2A_SEL_ROUND_ROBIN) {
      best = rr_first(L, ql, L->rr_cursor, ex, nex);
    } else {
      for (size_t i = 0; i < L->n; i++) {
        w2a_ledger_acct *e = &L->v[i];
        if (!lru_member(e) || e->r.quota_low != ql || !has_room(e) || excluded(ex, nex, e->r.id))
          continue;
        if (!best || before(e, best, sel, L->rr_cursor)) best = e;
      }
    }
    if (ql == 0 && re_e && (!best || before(re_e, best, sel, L->rr_cursor))) {
      *readmit = 1;
      return re_e;
    }
    if (best) return best;
  }
  return NULL;
}

static void due_touch(w2a_ledger *L, w2a_ledger_acct *e) {
  if (!e->due.account_id) {
    e->due.account_id = e->r.id;
    L->ndue++;
  }
}

void w2a_ledger_take(w2a_ledger *L, w2a_ledger_acct *e, w2a_selection sel, uint64_t now, int probe,
                     int readmit) {
  e->mem++;
  L->mem_total++;
  if (probe) e->probe_out = 1;
  lru_unlink(L, e);
  if (readmit) {
    e->r.state = W2A_ST_AVAILABLE;
    e->r.until_ms = 0;
    e->r.quota_low = 0;
    L->wake_ms = 0;
  }
  if (sel == W2A_SEL_ROUND_ROBIN) L->rr_cursor = e->r.id;
  if (now > e->r.last_used_ms) e->r.last_used_ms = now;
  lru_link(L, e); /* the newest: to the tail */
  due_touch(L, e);
  e->due.uses++;
  e->due.last_used_ms = e->r.last_used_ms;
}

void w2a_ledger_give_back(w2a_ledger *L, int64_t id, int probe) {
  w2a_ledger_acct *e = w2a_ledger_find(L, id);
  if (!e || e->mem <= 0) return;
  e->mem--;
  L->mem_total--;
  if (probe) {
    e->probe_out = 0;
    L->wake_ms = 0;
  }
  /* a gone entry stays until the next load drops it (it is never picked) */
}

void w2a_ledger_success(w2a_ledger *L, w2a_ledger_acct *e, uint64_t now) {
  due_touch(L, e);
  e->due.successes++;
  e->due.last_success_ms = now;
}

size_t w2a_ledger_take_due(w2a_ledger *L, w2a_usage *out, size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < L->n && k < max && L->ndue; i++) {
    w2a_ledger_acct *e = &L->v[i];
    if (!e->due.account_id) continue;
    out[k++] = e->due;
    memset(&e->due, 0, sizeof e->due);
    L->ndue--;
  }
  return k;
}

void w2a_ledger_readd_due(w2a_ledger *L, const w2a_usage *u, size_t n) {
  for (size_t i = 0; i < n; i++) {
    w2a_ledger_acct *e = w2a_ledger_find(L, u[i].account_id);
    if (!e) continue; /* deleted meanwhile */
    due_touch(L, e);
    e->due.uses += u[i].uses;
    e->due.successes += u[i].successes;
    if (u[i].last_used_ms > e->due.last_used_ms) e->due.last_used_ms = u[i].last_used_ms;
    if (u[i].last_success_ms > e->due.last_success_ms)
      e->due.last_success_ms = u[i].last_success_ms;
  }
}

int64_t w2a_ledger_usable(const w2a_ledger *L, uint64_t now) {
  int64_t n = 0;
  for (size_t i = 0; i < L->n; i++) {
    const w2a_ledger_acct *e = &L->v[i];
    if (!has_room(e)) continue;
    if (e->r.state == W2A_ST_AVAILABLE || readmittable(e, now) ||
        (e->r.state == W2A_ST_COOLING && e->r.until_ms <= now && !e->probe_out))
      n++;
  }
  return n;
}

int64_t w2a_ledger_leased_accounts(const w2a_ledger *L) {
  int64_t n = 0;
  for (size_t i = 0; i < L->n; i++)
    if (!L->v[i].gone && L->v[i].mem + L->v[i].r.held + L->v[i].pend > 0) n++;
  return n;
}

void w2a_ledger_explain(const w2a_ledger *L, uint64_t now, const int64_t *ex, size_t nex,
                        w2a_lease_none *none) {
  int64_t by[W2A_ST__COUNT] = {0};
  memset(none, 0, sizeof *none);
  for (size_t i = 0; i < L->n; i++) {
    const w2a_ledger_acct *e = &L->v[i];
    if (e->gone) continue;
    none->total++;
    if (e->r.state >= 0 && e->r.state < W2A_ST__COUNT) by[e->r.state]++;
    if ((e->r.state == W2A_ST_COOLING || e->r.state == W2A_ST_QUOTA) && e->r.until_ms > now &&
        (!none->retry_at_ms || e->r.until_ms < none->retry_at_ms))
      none->retry_at_ms = e->r.until_ms;
    /* available but leased to its cap: a release frees it, so waiting makes sense (a
     * cooled account's probe is not waited for: it may be a long stream) */
    if (e->r.state == W2A_ST_AVAILABLE && !has_room(e) && !excluded(ex, nex, e->r.id)) none->busy++;
  }
  if (!none->total) {
    snprintf(none->reason, sizeof none->reason, "the pool has no accounts");
    return;
  }
  snprintf(none->reason, sizeof none->reason,
           "no account can be leased: %lld available (%lld leased to their cap), %lld cooling,"
           " %lld quota_exhausted, %lld invalid, %lld blocked, %lld disabled%s",
           (long long)by[W2A_ST_AVAILABLE], (long long)w2a_ledger_leased_accounts(L),
           (long long)by[W2A_ST_COOLING], (long long)by[W2A_ST_QUOTA],
           (long long)by[W2A_ST_INVALID], (long long)by[W2A_ST_BLOCKED],
           (long long)by[W2A_ST_DISABLED], nex ? " (some already tried by this request)" : "");
}
