/* pool.c - the account pool on a libuv loop (pool.h): leases through the store on a
 * DB worker thread, single-flight token refresh, quota polling, background jobs.
 *
 * Threads. One worker thread owns the w2a_store connection and runs jobs in order;
 * a finished job goes back to the loop through a uv_async and its `done` runs there.
 * Everything else in this file runs on the loop thread, so the in-memory tables below
 * need no locks. Only w2a_pool_open touches the database from the caller's thread
 * (before the loop serves anything: migrations must finish before the pool exists).
 *
 * Refresh. `flights` holds at most one refresh per account in this process; callers
 * that need the account's token while it is being refreshed join its waiter list. A
 * flight first takes the rate limiter (REFRESH_PER_MINUTE, a token bucket), then claims
 * the account's refresh lock in the database (so two processes never refresh the same
 * account together; a process that loses the claim polls the row until the winner has
 * stored the new token), calls Firebase, and stores the new ID token and, if it
 * rotated, the new refresh token in one durable transaction. Waiters whose old token is
 * still valid do not wait for the limiter: they get the old token at once.
 *
 * The one-hour rule. An account is refreshed only when its ID token has less than
 * TOKEN_REFRESH_MARGIN left (or none), after a 401, or when the operator forces it.
 *
 * Waiting for capacity. When nothing can be leased only because eligible accounts are
 * leased to their cap (w2a_lease_none.busy), an acquire parks in a FIFO queue instead of
 * failing, for at most LEASE_WAIT. Parked acquires are retried in rounds, in queue order,
 * one store transaction at a time: a round starts when a lease is released in this
 * process and every WAIT_TICK_MS (another process may release). A round ends at the first
 * acquire without exclusions that still finds no capacity (nobody behind it could lease
 * either); one with exclusions lets the next try. While the queue is not empty, new
 * acquires queue behind it, so a newcomer never overtakes a waiter. Every acquire's
 * callback runs exactly once: with a lease, or with an error on failure, timeout,
 * cancel or close.
 *
 * Lifetime. w2a_pool_close stops the timers, answers parked acquires, lets queued jobs
 * and HTTP calls finish (their callbacks still run, but start nothing new), joins the
 * worker, closes the handles, then calls `done`. */
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "ledger.h"
#include "rules.h"
#include "secret.h"
#include "store.h"

#define MAX_PER_REQUEST 16
#define REFRESH_HOLD_MS 30000    /* DB refresh lock: longer than one HTTP attempt */
#define TOKEN_MIN_VALID_MS 15000 /* an old token with less left than this is not used */
#define HTTP_TIMEOUT_MS 15000
#define POLL_PEER_MS 250 /* how often to look for another process's refresh result */
#define QUOTA_FALLBACK_MS 3600000ull
#define WAIT_MAX 10000    /* parked acquires; beyond, acquire fails at once */
#define WAIT_TICK_MS 50   /* retry parked acquires this often (a peer process may release) */
#define WAIT_ROUND_MAX 64 /* failed retries per round (behind acquires with exclusions) */
#define SYNC_MS 250       /* LEASES=memory: write usage, look for others' changes this often */
#define USAGE_BATCH 512   /* usage rows per write */

/* ---- jobs ----------------------------------------------------------------------------- */

typedef struct job job;
struct job {
  job *next;
  void (*work)(job *j, w2a_store *s); /* worker thread */
  void (*done)(job *j);               /* loop thread */
  /* Runs in a transaction of its own, never in a group-commit batch (long work: admin
   * imports, integrity checks). Batched work must be safe to run a second time: when a
   * batch's commit fails, each of its jobs runs again alone. */
  int solo;
};

#define BATCH_MAX 64   /* jobs in one group commit */
#define BATCH_US 2000u /* stop adding jobs to a batch after this much work */

typedef struct waiter waiter;
typedef void (*token_fn)(void *ud, int rc, w2a_refresh_status st, const char *token,
                         uint64_t exp_ms);
struct waiter {
  waiter *next;
  token_fn fn;
  void *ud;
};

typedef struct flight flight;
typedef struct acq acq;

static uint64_t mono_ms(void) { return w2a_mono_us() / 1000u; }

struct w2a_pool {
  uv_loop_t *loop;
  const w2a_config *cfg;
  w2a_http_client *http;
  int background;
  w2a_rules rules;
  w2a_selection sel;
  w2a_store *store; /* worker-owned after open */

  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cv;
  job *todo, *todo_tail, *finished, *finished_tail;
  int stop_worker;
  uv_async_t async;
  uv_timer_t tick;
  int handles_open;

  flight *flights;
  int http_inflight, jobs_inflight;
  double bucket;
  uint64_t bucket_at;

  /* tokens a 401 proved bad although their exp is in the future */
  int64_t *stale;
  size_t nstale, capstale;

  w2a_store_stats counts;
  uint64_t counts_at, next_reclaim, next_refresh_scan, next_quota_scan;
  int counts_busy, scan_busy;

  /* acquires waiting for capacity (see the top of the file) */
  acq *live;              /* every w2a_pool_acquire not answered yet, for cancel */
  acq *wq_head, *wq_tail; /* parked, FIFO */
  size_t nwait;
  acq *wq_try;  /* the parked acquire whose retry is in flight */
  acq *wq_next; /* the next one to retry in this round */
  int wq_round, wq_kick, wq_fails;
  uint64_t released; /* leases released so far: a park after one must look again */
  uv_timer_t wq_timer;

  /* LEASES=memory (ledger.h): request leases in the ledger, not in the database */
  int mem;
  int lock_fd; /* the database's lease lock (flock): exclusive in memory mode, else shared */
  w2a_ledger ledger;
  uv_idle_t ready_idle; /* answers in-memory acquires on the next loop turn */
  acq *ready_head, *ready_tail;
  acq *load_wait, *load_wait_tail; /* acquires waiting for a sync (FIFO, on rnext) */
  int sync_busy, want_load, want_sync, load_failed;
  uint64_t sync_gen, sync_done_gen; /* syncs submitted, and the last one finished */
  uint64_t next_sync;
  int64_t data_version;
  uint64_t mem_seq;
  char load_err[160];

  int closing;
  void (*close_done)(void *ud);
  void *close_ud;
};

/* Group commit: when several jobs are waiting, the worker runs them (up to BATCH_MAX or
 * BATCH_US of work) inside one store transaction, each job's writes in a savepoint of its
 * own, and hands them to the loop only after that transaction committed: a job's `done`
 * never sees a write that is not yet durable as promised. Called with p->mu held. */
static job *run_jobs(w2a_pool *p, job **tail) {
  job *head = p->todo;
  p->todo = head->next;
  head->next = NULL;
  *tail = head;
  w2a_err err;
  if (!p->todo || head->solo || w2a_store_batch_begin(p->store, &err)) {
    if (!p->todo) p->todo_tail = NULL;
    uv_mutex_unlock(&p->mu);
    if (head->work) head->work(head, p->store);
    uv_mutex_lock(&p->mu);
    return head;
  }
  uint64_t t0 = w2a_mono_us();
  int n = 0;
  for (job *j = head;;) {
    uv_mutex_unlock(&p->mu);
    if (j->work) j->work(j, p->store);
    uv_mutex_lock(&p->mu);
    if (++n >= BATCH_MAX || !p->todo || p->todo->solo || w2a_mono_us() - t0 >= BATCH_US) break;
    j = p->todo;
    p->todo = j->next;
    if (!p->todo) p->todo_tail = NULL; /* else submit() links behind a job taken here */
    j->next = NULL;
    (*tail)->next = j;
    *tail = j;
  }
  uv_mutex_unlock(&p->mu);
  int rc = w2a_store_batch_commit(p->store, &err);
  if (rc == W2A_EIO) { /* rolled back: nothing happened, so each job runs again alone */
    W2A_WARN("pool: a batch of %d jobs failed (%s); running them one by one", n, err.msg);
    for (job *j = head; j; j = j->next)
      if (j->work) j->work(j, p->store);
  } else if (rc) {
    W2A_ERROR("pool: %s", err.msg);
  }
  uv_mutex_lock(&p->mu);
  return head;
}

static void worker_main(void *arg) {
  w2a_pool *p = arg;
  uv_mutex_lock(&p->mu);
  for (;;) {
    while (!p->todo && !p->stop_worker)
      uv_cond_wait(&p->cv, &p->mu);
    if (!p->todo) break; /* stop requested and queue drained */
    job *tail, *head = run_jobs(p, &tail);
    if (p->finished_tail)
      p->finished_tail->next = head;
    else
      p->finished = head;
    p->finished_tail = tail;
    uv_async_send(&p->async);
  }
  uv_mutex_unlock(&p->mu);
}

static void maybe_finish_close(w2a_pool *p);

static void on_async(uv_async_t *a) {
  w2a_pool *p = a->data;
  uv_mutex_lock(&p->mu);
  job *j = p->finished;
  p->finished = p->finished_tail = NULL;
  uv_mutex_unlock(&p->mu);
  while (j) {
    job *next = j->next;
    p->jobs_inflight--;
    if (j->done) j->done(j);
    j = next;
  }
  if (p->closing) maybe_finish_close(p);
}

/* Queue j for the worker thread: work runs there, then done back on the loop. */
static void submit(w2a_pool *p, job *j, void (*work)(job *, w2a_store *), void (*done)(job *)) {
  j->work = work;
  j->done = done;
  j->next = NULL;
  p->jobs_inflight++;
  uv_mutex_lock(&p->mu);
  if (p->todo_tail)
    p->todo_tail->next = j;
  else
    p->todo = j;
  p->todo_tail = j;
  uv_cond_signal(&p->cv);
  uv_mutex_unlock(&p->mu);
}

/* ---- the ledger after a write (LEASES=memory) ------------------------------------------ */

/* The pool's own writes do not show in PRAGMA data_version, so a job that changes an
 * account reads it back and its done hands the stored state to the ledger. */
typedef struct after_row {
  int have;
  w2a_account a;
} after_row;

static void after_read(w2a_pool *p, w2a_store *s, int64_t id, after_row *x) {
  w2a_err err;
  w2a_account_clear(&x->a);
  x->have = p->mem && !w2a_store_get(s, id, 0, &x->a, &err);
}

static void after_apply(w2a_pool *p, after_row *x) {
  if (x->have) w2a_ledger_update(&p->ledger, &x->a);
  w2a_account_clear(&x->a);
  x->have = 0;
}

typedef struct load_set load_set;
static load_set *load_new(void);
static void load_rows(load_set *l, w2a_store *s);
static void load_apply(w2a_pool *p, load_set *l);

/* ---- public submission -------------------------------------------------------------- */

typedef struct user_job {
  job j;
  w2a_pool *p;
  w2a_pool_work_fn work;
  void (*done)(void *ud);
  void *ud;
  load_set *load; /* LEASES=memory: the accounts after the caller's work, for the ledger */
} user_job;

static void user_work(job *j, w2a_store *s) {
  user_job *u = (user_job *)j;
  if (u->work) u->work(s, u->ud);
  if (u->work && u->load) load_rows(u->load, s);
}
static void user_done(job *j) {
  user_job *u = (user_job *)j;
  /* the ledger first: an account the operator just disabled is not leased after the
   * answer said so */
  if (u->load) load_apply(u->p, u->load);
  if (u->done) u->done(u->ud);
  free(u);
}

void w2a_pool_submit(w2a_pool *p, w2a_pool_work_fn work, void (*done)(void *ud), void *ud) {
  user_job *u = calloc(1, sizeof *u);
  if (!u) abort(); /* a lost job would leak its caller's state silently */
  u->p = p;
  u->work = p->closing ? NULL : work;
  u->done = done;
  u->ud = ud;
  u->j.solo = 1; /* the caller's work may be long (imports): never hold a batch open */
  if (p->mem && !(u->load = load_new())) abort();
  submit(p, &u->j, user_work, user_done);
}

int w2a_pool_memory_leases(const w2a_pool *p, int64_t account_id) {
  if (!p->mem) return -1;
  w2a_ledger_acct *e = w2a_ledger_find((w2a_ledger *)&p->ledger, account_id);
  return e ? e->mem : 0;
}

void w2a_pool_memory_figures(const w2a_pool *p, int64_t *leases, int64_t *leased_accounts,
                             int64_t *usable) {
  *leases = *leased_accounts = *usable = -1;
  if (!p->mem || !p->ledger.loaded) return;
  *leases = p->ledger.mem_total;
  *leased_accounts = w2a_ledger_leased_accounts(&p->ledger);
  *usable = w2a_ledger_usable(&p->ledger, w2a_now_ms());
}

const w2a_config *w2a_pool_config(const w2a_pool *p) { return p->cfg; }
const w2a_store_stats *w2a_pool_cached_counts(const w2a_pool *p) { return &p->counts; }
int w2a_pool_usable_count(const w2a_pool *p) { return (int)p->counts.usable; }

/* ---- stale tokens (after a 401) -------------------------------------------------------- */

static int is_stale(w2a_pool *p, int64_t id) {
  for (size_t i = 0; i < p->nstale; i++)
    if (p->stale[i] == id) return 1;
  return 0;
}
static void mem_forget_token(w2a_pool *p, int64_t id);
static void mark_stale(w2a_pool *p, int64_t id) {
  mem_forget_token(p, id);
  if (is_stale(p, id)) return;
  if (p->nstale == p->capstale) {
    size_t c = p->capstale ? 2 * p->capstale : 8;
    int64_t *v = realloc(p->stale, c * sizeof *v);
    if (!v) return;
    p->stale = v;
    p->capstale = c;
  }
  p->stale[p->nstale++] = id;
}
static void clear_stale(w2a_pool *p, int64_t id) {
  for (size_t i = 0; i < p->nstale; i++)
    if (p->stale[i] == id) p->stale[i] = p->stale[--p->nstale];
}

/* ---- token refresh (single flight) --------------------------------------------------- */

enum { F_CHECK, F_CLAIM, F_STORE };
enum { C_FRESH, C_CLAIMED, C_BUSY, C_GONE, C_ERROR, C_NEED };

struct flight {
  job j;
  flight *next;
  w2a_pool *p;
  int64_t id;
  int force;
  uint64_t started_ms; /* a forced refresh is satisfied by any refresh stored after this */
  int stage;
  waiter *waiters;
  uint64_t not_before; /* waiting for the limiter or a peer process until then */
  int queued;          /* on the tick's wait list (not in a job or HTTP call) */
  int limiter_taken;
  /* worker results */
  int claim;
  char *refresh_token;
  char *token; /* current or new ID token */
  uint64_t exp;
  char email[W2A_EMAIL_MAX];
  /* refresh outcome */
  int ok, invalid, rc;
  w2a_refresh_status status;
  char *new_rt;
  char msg[256];
  char *body;
  after_row after;
};

static flight *find_flight(w2a_pool *p, int64_t id) {
  for (flight *f = p->flights; f; f = f->next)
    if (f->id == id) return f;
  return NULL;
}

static int take_limiter(w2a_pool *p) {
  uint64_t now = w2a_mono_us() / 1000u;
  double rate = (double)(p->cfg->refresh_per_minute > 0 ? p->cfg->refresh_per_minute : 30);
  double capb = rate / 4 < 1 ? 1 : rate / 4; /* a burst is at most a quarter minute's worth */
  p->bucket += (double)(now - p->bucket_at) * rate / 60000.0;
  if (p->bucket > capb) p->bucket = capb;
  p->bucket_at = now;
  if (p->bucket < 1.0) return 0;
  p->bucket -= 1.0;
  return 1;
}

/* Hand every waiter the result and drop the flight. */
static void mem_cache_token(w2a_pool *p, int64_t id, const char *token, uint64_t exp);
static void flight_finish(flight *f, int rc, const char *token, uint64_t exp) {
  w2a_pool *p = f->p;
  if (p->mem && !rc && token && !is_stale(p, f->id)) mem_cache_token(p, f->id, token, exp);
  for (flight **pp = &p->flights; *pp; pp = &(*pp)->next)
    if (*pp == f) {
      *pp = f->next;
      break;
    }
  waiter *w = f->waiters;
  f->waiters = NULL;
  while (w) {
    waiter *n = w->next;
    w->fn(w->ud, rc, f->status, token, exp);
    free(w);
    w = n;
  }
  w2a_secret_free(f->refresh_token);
  w2a_secret_free(f->token);
  w2a_secret_free(f->new_rt);
  w2a_secret_free(f->body);
  free(f);
}

/* Give waiters the old token now when it is still good; the refresh goes on. */
static void serve_old_token(flight *f) {
  if (f->force || !f->token || !*f->token || f->exp < w2a_now_ms() + TOKEN_MIN_VALID_MS) return;
  waiter *w = f->waiters;
  f->waiters = NULL;
  while (w) {
    waiter *n = w->next;
    w->fn(w->ud, 0, W2A_REFRESH_SKIPPED, f->token, f->exp);
    free(w);
    w = n;
  }
}

static void flight_step(flight *f);

static void claim_work(job *j, w2a_store *s) {
  flight *f = (flight *)j;
  w2a_pool *p = f->p;
  w2a_err err;
  int rc;
  /* Read, then claim on condition that nobody refreshed since the read; when a peer
   * process did (W2A_ESTATE), read its token. A peer refreshes at most once per
   * REFRESH_HOLD_MS under the lock, so a few rounds are plenty. */
  for (int round = 0; round < 4; round++) {
    w2a_account a;
    uint64_t now = w2a_now_ms();
    w2a_secret_free(f->refresh_token);
    w2a_secret_free(f->token);
    f->refresh_token = f->token = NULL;
    rc = w2a_store_get(s, f->id, W2A_STORE_SECRETS, &a, &err);
    if (rc) {
      f->claim = rc == W2A_ENOTFOUND ? C_GONE : C_ERROR;
      snprintf(f->msg, sizeof f->msg, "%s", err.msg);
      return;
    }
    snprintf(f->email, sizeof f->email, "%s", a.email);
    f->token = a.id_token;
    f->exp = a.id_token_exp_ms;
    f->refresh_token = a.refresh_token;
    a.id_token = a.refresh_token = NULL;
    int fresh = f->token && *f->token && f->exp > now + (uint64_t)p->cfg->refresh_margin_ms;
    /* The one-hour rule; and a forced refresh is satisfied by one stored after it was
     * asked for (by this process's previous flight or by a peer process). */
    if (fresh && (!f->force || a.last_refresh_ms > f->started_ms)) {
      f->claim = C_FRESH;
      return;
    }
    if (f->stage == F_CHECK) {
      f->claim = C_NEED;
      return;
    }
    rc = w2a_store_refresh_claim(s, f->id, a.last_refresh_ms, now, REFRESH_HOLD_MS, &err);
    if (rc != W2A_ESTATE) break;
  }
  f->claim = rc == 0 ? C_CLAIMED : rc == W2A_EAGAIN || rc == W2A_ESTATE ? C_BUSY : C_ERROR;
  if (rc) snprintf(f->msg, sizeof f->msg, "%s", err.msg);
}

static int is_invalid_refresh(int status, const char *body) {
  static const char *const codes[] = {"INVALID_REFRESH_TOKEN", "TOKEN_EXPIRED",
                                      "USER_DISABLED",         "USER_NOT_FOUND",
                                      "invalid_grant",         "Invalid refresh token"};
  if (status != 400 && status != 401 && status != 403) return 0;
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (body && strcasestr(body, codes[i])) return 1;
  return 0;
}

static void store_work(job *j, w2a_store *s) {
  flight *f = (flight *)j;
  w2a_err err;
  uint64_t now = w2a_now_ms();
  int rc;
  if (f->ok) {
    rc = w2a_store_set_tokens(s, f->id, f->token, f->exp, f->new_rt, now, &err);
  } else {
    rc = w2a_store_refresh_failed(s, f->id, f->invalid, f->msg, now, &err);
  }
  if (rc) {
    f->rc = rc;
    W2A_ERROR("pool: storing the refresh result of %s: %s", f->email, err.msg);
  } else if (!f->ok) {
    after_read(f->p, s, f->id, &f->after); /* an invalid account leaves the ledger too */
  }
}

static void flight_stored(job *j) {
  flight *f = (flight *)j;
  w2a_pool *p = f->p;
  after_apply(p, &f->after);
  if (f->ok && !f->rc) {
    clear_stale(p, f->id);
    W2A_INFO("pool: refreshed the ID token of %s", f->email);
    f->status = W2A_REFRESH_DONE;
    flight_finish(f, 0, f->token, f->exp);
    return;
  }
  if (f->ok) { /* refreshed but not stored: the token is still good to use */
    f->status = W2A_REFRESH_FAILED;
    flight_finish(f, 0, f->token, f->exp);
    return;
  }
  W2A_WARN("pool: refresh of %s failed%s: %s", f->email, f->invalid ? " (account invalid)" : "",
           f->msg);
  f->status = f->invalid ? W2A_REFRESH_INVALID : W2A_REFRESH_FAILED;
  /* A failed refresh keeps a still-valid ID token in use. */
  if (!f->invalid && f->token && f->exp > w2a_now_ms() + TOKEN_MIN_VALID_MS && !f->force)
    flight_finish(f, 0, f->token, f->exp);
  else
    flight_finish(f, f->invalid ? W2A_EAUTH : W2A_EIO, NULL, 0);
}

static void on_refresh_http(int code, int status, const char *body, size_t len, const char *errmsg,
                            void *ud) {
  flight *f = ud;
  w2a_pool *p = f->p;
  p->http_inflight--;
  w2a_secret_free(f->body);
  f->body = NULL;
  f->ok = 0;
  if (code) {
    snprintf(f->msg, sizeof f->msg, "token endpoint: %s", errmsg ? errmsg : w2a_strerror(code));
  } else if (status != 200) {
    f->invalid = is_invalid_refresh(status, body);
    /* The body is Google's error JSON: no secret in it, but keep it short. */
    snprintf(f->msg, sizeof f->msg, "token endpoint HTTP %d: %.160s", status, body ? body : "");
  } else {
    json_object *o = json_tokener_parse(body ? body : "");
    json_object *x;
    const char *order[2] = {"access_token", "id_token"};
    if (!strcasecmp(p->cfg->refresh_endpoint, "securetoken")) {
      order[0] = "id_token";
      order[1] = "access_token";
    }
    const char *tok = NULL, *rt = NULL;
    for (int i = 0; i < 2 && !tok; i++)
      if (o && json_object_object_get_ex(o, order[i], &x)) tok = json_object_get_string(x);
    if (o && json_object_object_get_ex(o, "refresh_token", &x)) rt = json_object_get_string(x);
    uint64_t exp = tok ? w2a_jwt_exp_ms(tok) : 0;
    if (!exp && o && json_object_object_get_ex(o, "expires_in", &x))
      exp = w2a_now_ms() + (uint64_t)json_object_get_int64(x) * 1000u;
    if (tok && *tok && strlen(tok) < W2A_TOKEN_MAX && exp) {
      w2a_secret_free(f->token);
      f->token = strdup(tok);
      f->exp = exp;
      if (rt && *rt && strcmp(rt, f->refresh_token ? f->refresh_token : "")) f->new_rt = strdup(rt);
      f->ok = f->token != NULL;
    } else {
      snprintf(f->msg, sizeof f->msg, "token endpoint: no token in the answer (%zu bytes)", len);
    }
    json_object_put(o);
  }
  f->stage = F_STORE;
  submit(p, &f->j, store_work, flight_stored);
}

static size_t urlencode(const char *s, char *out, size_t cap) {
  static const char hexd[] = "0123456789ABCDEF";
  size_t o = 0;
  for (; *s && o + 4 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hexd[c >> 4];
      out[o++] = hexd[c & 15];
    }
  }
  out[o] = 0;
  return o;
}

static void start_refresh_http(flight *f) {
  w2a_pool *p = f->p;
  const w2a_config *c = p->cfg;
  int secure = !strcasecmp(c->refresh_endpoint, "securetoken");
  char url[1024], ver[160], osc[160], osn[160], osv[160];
  const char *ctype;
  size_t cap = 3 * strlen(f->refresh_token ? f->refresh_token : "") + 128;
  p->http_inflight++; /* on_refresh_http takes it back, whichever way it is called */
  f->body = malloc(cap);
  if (!f->body) {
    on_refresh_http(W2A_ENOMEM, 0, NULL, 0, "out of memory", f);
    return;
  }
  if (secure) {
    snprintf(url, sizeof url, "%s/v1/token?key=%s", c->securetoken_url, c->firebase_api_key);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "grant_type", json_object_new_string("refresh_token"));
    json_object_object_add(o, "refresh_token", json_object_new_string(f->refresh_token));
    snprintf(f->body, cap, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    ctype = "content-type: application/json";
  } else {
    snprintf(url, sizeof url, "%s/proxy/token?key=%s", c->warp_base_url, c->firebase_api_key);
    int n = snprintf(f->body, cap, "grant_type=refresh_token&refresh_token=");
    urlencode(f->refresh_token, f->body + n, cap - (size_t)n);
    ctype = "content-type: application/x-www-form-urlencoded";
  }
  snprintf(ver, sizeof ver, "x-warp-client-version: %s", c->client_version);
  snprintf(osc, sizeof osc, "x-warp-os-category: %s", c->os_category);
  snprintf(osn, sizeof osn, "x-warp-os-name: %s", c->os_name);
  snprintf(osv, sizeof osv, "x-warp-os-version: %s", c->os_version);
  const char *hdrs[] = {
      ctype, "accept: */*", ver, osc, osn, osv, secure ? "x-warp-client-id: warp-app" : NULL, NULL};
  w2a_http_request rq = {.method = "POST",
                         .url = url,
                         .headers = hdrs,
                         .body = f->body,
                         .body_len = strlen(f->body),
                         .timeout_ms = HTTP_TIMEOUT_MS};
  if (w2a_http_fetch(p->http, &rq, 64 * 1024, on_refresh_http, f))
    on_refresh_http(W2A_EIO, 0, NULL, 0, "could not start the request", f);
}

static void flight_claimed(job *j) {
  flight *f = (flight *)j;
  w2a_pool *p = f->p;
  switch (f->claim) {
  case C_FRESH:
    f->status = W2A_REFRESH_SKIPPED;
    if (f->force) clear_stale(p, f->id); /* refreshed meanwhile, here or by a peer */
    flight_finish(f, 0, f->token, f->exp);
    return;
  case C_GONE: flight_finish(f, W2A_ENOTFOUND, NULL, 0); return;
  case C_NEED: flight_step(f); return;
  case C_ERROR:
    f->status = W2A_REFRESH_FAILED;
    if (!f->force && f->token && f->exp > w2a_now_ms() + TOKEN_MIN_VALID_MS)
      flight_finish(f, 0, f->token, f->exp);
    else
      flight_finish(f, W2A_EIO, NULL, 0);
    return;
  case C_BUSY: /* another process is refreshing it: look again shortly */
    serve_old_token(f);
    f->not_before = w2a_now_ms() + POLL_PEER_MS;
    f->queued = 1;
    return;
  case C_CLAIMED:
    if (p->closing) {
      f->ok = 0;
      snprintf(f->msg, sizeof f->msg, "pool closing");
      submit(p, &f->j, store_work, flight_stored);
      return;
    }
    start_refresh_http(f);
    return;
  }
}

/* Next step of a queued flight (from the tick): limiter first, then the DB claim. */
static void flight_step(flight *f) {
  w2a_pool *p = f->p;
  if (!f->limiter_taken) {
    if (!take_limiter(p)) {
      serve_old_token(f); /* nobody waits for the limiter while an old token works */
      f->queued = 1;
      return;
    }
    f->limiter_taken = 1;
  }
  f->queued = 0;
  f->stage = F_CLAIM;
  submit(p, &f->j, claim_work, flight_claimed);
}

/* Get a usable ID token for an account: fn (may be NULL) runs on the loop with it. */
static void ensure_token(w2a_pool *p, int64_t id, int force, token_fn fn, void *ud) {
  waiter *w = NULL;
  if (fn && !(w = calloc(1, sizeof *w))) {
    fn(ud, W2A_ENOMEM, W2A_REFRESH_FAILED, NULL, 0);
    return;
  }
  if (w) {
    w->fn = fn;
    w->ud = ud;
  }
  flight *f = find_flight(p, id);
  if (f) { /* single flight: join the refresh already under way */
    if (w) {
      w->next = f->waiters;
      f->waiters = w;
    }
    if (force && !f->force) {
      f->force = 1;
      f->started_ms = w2a_now_ms();
    }
    return;
  }
  f = calloc(1, sizeof *f);
  if (!f) {
    free(w);
    if (fn) fn(ud, W2A_ENOMEM, W2A_REFRESH_FAILED, NULL, 0);
    return;
  }
  f->p = p;
  f->id = id;
  f->force = force;
  f->started_ms = w2a_now_ms();
  f->waiters = w;
  f->next = p->flights;
  p->flights = f;
  if (force) {
    flight_step(f); /* limiter, then claim */
    return;
  }
  /* Look first: a token that is fresh (refreshed by a peer, or never stale) costs no
   * limiter slot and no refresh. */
  f->stage = F_CHECK;
  submit(p, &f->j, claim_work, flight_claimed);
}

/* ---- quota polling --------------------------------------------------------------------- */

typedef struct quota_job {
  job j;
  w2a_pool *p;
  int64_t id;
  char *token;
  uint64_t exp;
  w2a_quota q;
  int have;
  char *body;
  w2a_pool_done_fn cb;
  void *ud;
  int rc;
  after_row after;
} quota_job;

static uint64_t parse_time_ms(json_object *x) {
  if (!x) return 0;
  if (json_object_is_type(x, json_type_int) || json_object_is_type(x, json_type_double)) {
    double v = json_object_get_double(x);
    return v > 1e11 ? (uint64_t)v : (uint64_t)(v * 1000.0);
  }
  const char *s = json_object_get_string(x);
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
  if (!rest) return 0;
  uint64_t ms = (uint64_t)timegm(&tm) * 1000u;
  if (*rest == '.') {
    rest++;
    uint64_t frac = 0, scale = 100;
    while (*rest >= '0' && *rest <= '9') {
      frac += (uint64_t)(*rest++ - '0') * scale;
      scale /= 10;
    }
    ms += frac;
  }
  if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0;
    if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) >= 1) {
      int64_t off = (int64_t)(hh * 60 + mm) * 60000;
      ms = *rest == '+' ? ms - (uint64_t)off : ms + (uint64_t)off;
    }
  }
  return ms;
}

static json_object *find_key(json_object *o, const char *key, int depth) {
  if (!o || depth > 8) return NULL;
  json_object *x;
  if (json_object_is_type(o, json_type_object)) {
    if (json_object_object_get_ex(o, key, &x)) return x;
    json_object_object_foreach(o, k, v) {
      (void)k;
      if ((x = find_key(v, key, depth + 1))) return x;
    }
  }
  return NULL;
}

static void quota_stored(job *j) {
  quota_job *q = (quota_job *)j;
  after_apply(q->p, &q->after); /* asleep until Warp's reset, or back */
  if (q->cb) q->cb(q->rc, q->ud);
  w2a_secret_free(q->token);
  free(q->body);
  free(q);
}

static void quota_store_work(job *j, w2a_store *s) {
  quota_job *q = (quota_job *)j;
  w2a_err err;
  if (q->have && (q->rc = w2a_store_set_quota(s, q->id, &q->q, &err)))
    W2A_WARN("pool: storing quota of #%lld: %s", (long long)q->id, err.msg);
  else if (q->have)
    after_read(q->p, s, q->id, &q->after);
}

static void on_quota_http(int code, int status, const char *body, size_t len, const char *errmsg,
                          void *ud) {
  quota_job *q = ud;
  w2a_pool *p = q->p;
  (void)len;
  p->http_inflight--;
  q->have = 0;
  if (code || status != 200) {
    q->rc = W2A_EIO;
    W2A_WARN("pool: GetRequestLimitInfo for #%lld: %s", (long long)q->id,
             code ? (errmsg ? errmsg : "failed") : "non-200 answer");
  } else {
    json_object *o = json_tokener_parse(body ? body : "");
    json_object *li = find_key(o, "requestLimitInfo", 0), *x;
    if (li) {
      q->q.unlimited =
          json_object_object_get_ex(li, "isUnlimited", &x) && json_object_get_boolean(x);
      q->q.limit =
          json_object_object_get_ex(li, "requestLimit", &x) ? json_object_get_int64(x) : -1;
      q->q.used = json_object_object_get_ex(li, "requestsUsedSinceLastRefresh", &x)
                      ? json_object_get_int64(x)
                      : -1;
      q->q.reset_ms = json_object_object_get_ex(li, "nextRefreshTime", &x) ? parse_time_ms(x) : 0;
      q->q.updated_ms = w2a_now_ms();
      q->have = 1;
    } else {
      q->rc = W2A_EINVAL;
    }
    json_object_put(o);
  }
  submit(p, &q->j, quota_store_work, quota_stored);
}

static void quota_read_done(job *j) {
  quota_job *q = (quota_job *)j;
  w2a_pool *p = q->p;
  const w2a_config *c = p->cfg;
  if (!q->token || !*q->token || q->exp < w2a_now_ms() + TOKEN_MIN_VALID_MS || p->closing) {
    /* never refresh just to poll: the next lease or refresh brings a token */
    q->rc = q->rc ? q->rc : W2A_ESTATE;
    quota_stored(j);
    return;
  }
  char url[1024], auth[W2A_TOKEN_MAX + 32], ver[160];
  snprintf(url, sizeof url, "%s/graphql/v2?op=GetRequestLimitInfo", c->warp_base_url);
  snprintf(auth, sizeof auth, "authorization: Bearer %s", q->token);
  snprintf(ver, sizeof ver, "x-warp-client-version: %s", c->client_version);
  json_object *o = json_object_new_object(), *v = json_object_new_object(),
              *rc = json_object_new_object(), *cc = json_object_new_object(),
              *os = json_object_new_object();
  json_object_object_add(cc, "version", json_object_new_string(c->client_version));
  json_object_object_add(os, "category", json_object_new_string(c->os_category));
  json_object_object_add(os, "linuxKernelVersion", NULL);
  json_object_object_add(os, "name", json_object_new_string(c->os_name));
  json_object_object_add(os, "version", json_object_new_string(c->os_version));
  json_object_object_add(rc, "clientContext", cc);
  json_object_object_add(rc, "osContext", os);
  json_object_object_add(v, "requestContext", rc);
  json_object_object_add(o, "operationName", json_object_new_string("GetRequestLimitInfo"));
  json_object_object_add(o, "variables", v);
  json_object_object_add(
      o, "query",
      json_object_new_string(
          "query GetRequestLimitInfo($requestContext: RequestContext!) { user(requestContext:"
          " $requestContext) { __typename ... on UserOutput { user { requestLimitInfo {"
          " isUnlimited nextRefreshTime requestLimit requestsUsedSinceLastRefresh"
          " requestLimitRefreshDuration } } } } }"));
  q->body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  const char *hdrs[] = {"content-type: application/json", auth, ver, NULL};
  w2a_http_request rq = {.method = "POST",
                         .url = url,
                         .headers = hdrs,
                         .body = q->body,
                         .body_len = q->body ? strlen(q->body) : 0,
                         .timeout_ms = HTTP_TIMEOUT_MS};
  p->http_inflight++;
  if (!q->body || w2a_http_fetch(p->http, &rq, 256 * 1024, on_quota_http, q))
    on_quota_http(W2A_EIO, 0, NULL, 0, "could not start the request", q);
}

static void quota_read_work(job *j, w2a_store *s) {
  quota_job *q = (quota_job *)j;
  w2a_account a;
  w2a_err err;
  w2a_secret_free(q->token); /* a batch that failed runs this again */
  q->token = NULL;
  if ((q->rc = w2a_store_get(s, q->id, W2A_STORE_ID_TOKEN, &a, &err))) return;
  q->token = a.id_token;
  q->exp = a.id_token_exp_ms;
}

void w2a_pool_poll_quota(w2a_pool *p, int64_t id, w2a_pool_done_fn cb, void *ud) {
  quota_job *q = calloc(1, sizeof *q);
  if (!q) {
    if (cb) cb(W2A_ENOMEM, ud);
    return;
  }
  q->p = p;
  q->id = id;
  q->cb = cb;
  q->ud = ud;
  submit(p, &q->j, quota_read_work, quota_read_done);
}

/* ---- acquire ------------------------------------------------------------------------------ */

struct acq {
  job j;
  w2a_pool *p;
  acq *lprev, *lnext; /* p->live */
  acq *wprev, *wnext; /* p->wq_head… while parked */
  int live, parked, cancelled, answered;
  uint64_t wait_start_ms, wait_deadline_ms; /* monotonic */
  uint64_t seen;                            /* p->released when the last try started */
  int64_t exclude[64];
  size_t nexclude;
  int count;
  char holder[64];
  w2a_pool_acquire_fn cb;
  w2a_pool_session_fn scb;
  void *ud;
  int rc;
  w2a_err err;
  w2a_lease_row *rows; /* database leases (allocated on first use) */
  int n;
  acq *rnext; /* on p->ready_head… or p->load_wait */
  /* LEASES=memory: the account leased in the ledger; for a session, the accounts the
   * ledger chose, whose rows acq_work writes */
  int64_t mem_acct;
  int mem_probe;
  uint64_t need_gen; /* on p->load_wait until this sync has finished */
  int resynced;
  int64_t only[MAX_PER_REQUEST];
  size_t nonly;
  w2a_lease_none none;
  w2a_lease *leases[MAX_PER_REQUEST];
  int tok_rc[MAX_PER_REQUEST];
  int pending;
  int attempts;
};

typedef struct tok_wait {
  acq *a;
  int i;
} tok_wait;

typedef struct rel_job {
  job j;
  char lease_id[37];
  int64_t account_id;
  int has_result;
  w2a_lease_result r;
  char reason[W2A_REASON_MAX];
  char holder[64];
  int n;
  w2a_pool_done_fn cb;
  void *ud;
  w2a_pool *p;
  int poll_quota;
  /* the result of an in-memory lease: applied to the account, which is read back */
  int mem, was_probe, have_after;
  w2a_account after;
} rel_job;

static void acq_work(job *j, w2a_store *s) {
  acq *a = (acq *)j;
  const w2a_config *c = a->p->cfg;
  w2a_lease_req rq = {.count = a->count,
                      .exclude = a->exclude,
                      .nexclude = a->nexclude,
                      .holder = a->holder[0] ? a->holder : NULL,
                      .now_ms = w2a_now_ms(),
                      .ttl_ms = (uint64_t)c->lease_ttl_ms,
                      .selection = a->p->sel,
                      .want_secrets = 1,
                      .only = a->nonly ? a->only : NULL,
                      .nonly = a->nonly};
  for (int i = 0; i < a->n; i++) /* a batch that failed runs this again */
    w2a_account_clear(&a->rows[i].acct);
  a->n = 0;
  memset(&a->none, 0, sizeof a->none); /* a retry must not see the last try's verdict */
  a->rc = w2a_store_lease_acquire(s, &rq, a->rows, &a->n, &a->none, &a->err);
}

static void rel_work(job *j, w2a_store *s) {
  rel_job *r = (rel_job *)j;
  w2a_err err;
  int rc;
  if (r->mem) {
    r->r.reason = r->reason;
    w2a_account_clear(&r->after); /* a batch that failed runs this again */
    r->have_after = 0;
    rc = w2a_store_apply_result(s, r->account_id, r->was_probe, &r->r, w2a_now_ms(), &err);
    if (rc == W2A_ENOTFOUND)
      rc = 0; /* deleted meanwhile */
    else if (!rc)
      r->have_after = !w2a_store_get(s, r->account_id, 0, &r->after, &err);
  } else if (r->holder[0]) {
    rc = w2a_store_release_holder(s, r->holder, w2a_now_ms(), &r->n, &err);
  } else {
    if (r->has_result) r->r.reason = r->reason;
    rc = w2a_store_lease_release(s, r->lease_id, r->account_id, r->has_result ? &r->r : NULL,
                                 w2a_now_ms(), &err);
    if (rc == W2A_ENOTFOUND) rc = 0; /* reclaimed meanwhile: the result was still applied */
  }
  if (rc) W2A_ERROR("pool: release: %s", err.msg);
  r->n = rc ? rc : r->n;
}

static void wait_kick(w2a_pool *p);

static void rel_done(job *j) {
  rel_job *r = (rel_job *)j;
  w2a_pool *p = r->p;
  if (r->mem) { /* the lease itself went back to the ledger at report time */
    w2a_ledger_acct *e = w2a_ledger_find(&p->ledger, r->account_id);
    if (e && e->writes > 0) e->writes--;
    if (r->have_after) w2a_ledger_update(&p->ledger, &r->after);
    w2a_account_clear(&r->after);
  } else {
    r->p->released++;
    if (p->mem) p->want_load = 1; /* a lease row went: the ledger's counts follow */
  }
  wait_kick(r->p); /* capacity came back: parked acquires first */
  if (r->poll_quota && !r->p->closing) w2a_pool_poll_quota(r->p, r->account_id, NULL, NULL);
  if (r->cb) r->cb(r->n, r->ud);
  free(r);
}

static void release_row(w2a_pool *p, const char *lease_id, int64_t acct) {
  rel_job *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->p = p;
  snprintf(r->lease_id, sizeof r->lease_id, "%s", lease_id);
  r->account_id = acct;
  submit(p, &r->j, rel_work, rel_done);
}

static void acq_start(acq *a);

static void live_unlink(acq *a) {
  w2a_pool *p = a->p;
  if (!a->live) return;
  a->live = 0;
  if (a->lprev)
    a->lprev->lnext = a->lnext;
  else
    p->live = a->lnext;
  if (a->lnext) a->lnext->lprev = a->lprev;
  a->lprev = a->lnext = NULL;
}

static void acq_free(acq *a) {
  live_unlink(a);
  for (int i = 0; a->rows && i < a->n; i++)
    w2a_account_clear(&a->rows[i].acct);
  free(a->rows);
  for (int i = 0; i < MAX_PER_REQUEST; i++)
    free(a->leases[i]);
  free(a);
}

/* ---- waiting for capacity -------------------------------------------------------------- */

static void on_wait_timer(uv_timer_t *t);

static int wait_enabled(const w2a_pool *p) { return p->cfg->lease_wait_ms > 0 && !p->closing; }

/* After a try that leased nothing: may this acquire (still) wait? */
static int may_wait(const acq *a) {
  const w2a_pool *p = a->p;
  if (!a->cb || a->cancelled || a->rc || a->none.busy <= 0 || !wait_enabled(p)) return 0;
  return a->parked ? mono_ms() < a->wait_deadline_ms : p->nwait < WAIT_MAX;
}

static void wait_park(acq *a) {
  w2a_pool *p = a->p;
  a->parked = 1;
  a->wait_start_ms = mono_ms();
  a->wait_deadline_ms = a->wait_start_ms + (uint64_t)p->cfg->lease_wait_ms;
  a->wprev = p->wq_tail;
  a->wnext = NULL;
  if (p->wq_tail)
    p->wq_tail->wnext = a;
  else
    p->wq_head = a;
  p->wq_tail = a;
  if (p->nwait++ == 0) uv_timer_start(&p->wq_timer, on_wait_timer, WAIT_TICK_MS, WAIT_TICK_MS);
}

static void wait_unlink(acq *a) {
  w2a_pool *p = a->p;
  if (!a->parked) return;
  a->parked = 0;
  if (p->wq_next == a) p->wq_next = a->wnext;
  if (a->wprev)
    a->wprev->wnext = a->wnext;
  else
    p->wq_head = a->wnext;
  if (a->wnext)
    a->wnext->wprev = a->wprev;
  else
    p->wq_tail = a->wprev;
  a->wprev = a->wnext = NULL;
  if (--p->nwait == 0) uv_timer_stop(&p->wq_timer);
}

/* Nothing in flight: retry the round's next parked acquire, or end the round. */
static void wait_step(w2a_pool *p) {
  acq *a = p->wq_next;
  if (a && !p->closing && p->wq_fails < WAIT_ROUND_MAX) {
    p->wq_next = a->wnext;
    p->wq_try = a;
    a->attempts = 0;
    acq_start(a);
    return;
  }
  p->wq_round = 0;
  p->wq_next = NULL;
  if (p->wq_kick) {
    p->wq_kick = 0;
    wait_kick(p);
  }
}

/* Capacity may have come back: run a round from the head (after the running one). */
static void wait_kick(w2a_pool *p) {
  if (!p->wq_head || p->closing) return;
  if (p->wq_round) {
    p->wq_kick = 1;
    return;
  }
  p->wq_round = 1;
  p->wq_fails = 0;
  p->wq_next = p->wq_head;
  wait_step(p);
}

/* The first parked acquire that no retry is running for (only one ever runs). */
static acq *wait_idle_head(w2a_pool *p) {
  acq *a = p->wq_head;
  return a && a == p->wq_try ? a->wnext : a;
}

/* A session's leases, copied for its callback. Not inlined into acq_reply: the copies
 * take 16 x ~4.4 KB of stack, and in acq_reply's own frame (71 KB) they pushed every
 * single-lease callback (the gateway's whole request start) that much further down the
 * loop thread's stack, onto fresh pages: an idle serve, whose gateway leases once to
 * load the models, touched 44 kB of main stack instead of 32 (RSS 10868 -> 10856 kB,
 * ASLR off). */
__attribute__((noinline)) static void reply_session(acq *a, int ok,
                                                    const w2a_pool_unavailable *why) {
  w2a_lease tmp[MAX_PER_REQUEST];
  for (int i = 0; i < ok; i++)
    tmp[i] = *a->leases[i];
  a->scb(ok ? 0 : W2A_EAGAIN, tmp, ok, ok ? NULL : why, a->ud);
  memset(tmp, 0, sizeof tmp);
}

/* Answer the caller (lease or error), once. */
static void acq_reply(acq *a, int ok) {
  w2a_pool_unavailable why;
  if (a->answered) return;
  a->answered = 1;
  memset(&why, 0, sizeof why);
  live_unlink(a); /* a cancel from inside the callback must not find it */
  if (!ok) {
    /* none.reason is empty when this acquire never reached the store (queued behind
     * others): that says nothing about the pool being empty */
    why.empty = a->none.total == 0 && a->n == 0 && !a->cancelled && a->none.reason[0];
    why.retry_at_ms = a->none.retry_at_ms;
    /* only leases are in the way: the soonest one ends by its expiry at the latest */
    if (a->none.busy && a->none.lease_free_at_ms &&
        (!why.retry_at_ms || a->none.lease_free_at_ms < why.retry_at_ms))
      why.retry_at_ms = a->none.lease_free_at_ms;
    const char *r = a->cancelled                        ? "cancelled by the caller"
                    : a->p->closing && a->wait_start_ms ? "the pool is shutting down"
                    : a->n              ? "no account has a usable token (refresh failing)"
                    : a->none.reason[0] ? a->none.reason
                                        : "every usable account is leased to its concurrency cap";
    if (a->wait_start_ms)
      snprintf(why.reason, sizeof why.reason, "%.190s; waited %llu ms for a lease to end", r,
               (unsigned long long)(mono_ms() - a->wait_start_ms));
    else
      snprintf(why.reason, sizeof why.reason, "%s", r);
  }
  if (a->scb) {
    reply_session(a, ok, &why);
  } else if (ok) {
    w2a_lease *l = a->leases[0];
    a->leases[0] = NULL;
    a->cb(0, l, NULL, a->ud);
  } else {
    a->cb(a->cancelled ? W2A_ESTATE : W2A_EAGAIN, NULL, &why, a->ud);
  }
}

/* Answer the caller unless a cancel did, and free the acquire (no work in flight). */
static void acq_answer(acq *a, int ok) {
  acq_reply(a, ok);
  acq_free(a);
}

/* Answer parked acquires whose wait is over (deadlines follow queue order), then retry. */
static void on_wait_timer(uv_timer_t *t) {
  w2a_pool *p = t->data;
  uint64_t now = mono_ms();
  acq *a;
  while ((a = wait_idle_head(p)) && a->wait_deadline_ms <= now) {
    wait_unlink(a);
    acq_answer(a, 0);
  }
  wait_kick(p);
}

void w2a_pool_acquire_cancel(w2a_pool *p, void *ud) {
  acq *a = p->live;
  while (a && (a->ud != ud || a->cancelled))
    a = a->lnext;
  if (!a) return;
  int idle = a->parked && a != p->wq_try;
  a->cancelled = 1;
  wait_unlink(a);
  if (idle) {
    acq_answer(a, 0);
    return;
  }
  /* Its store transaction or token refresh is under way: answer now; acq_complete frees
   * it when the work returns (and gives back a lease it took meanwhile). */
  acq_reply(a, 0);
}

/* Every token is in (or failed): answer the caller, or park it to wait for capacity. */
static void acq_complete(acq *a) {
  w2a_pool *p = a->p;
  int ok = 0;
  for (int i = 0; i < a->n; i++) {
    if (a->tok_rc[i] || a->cancelled) {
      /* no usable token (or no taker): give the account back; do not try it again */
      int64_t id = a->leases[i]->account_id;
      if (a->leases[i]->mem) {
        w2a_ledger_give_back(&p->ledger, id, a->leases[i]->probe);
        p->released++; /* a park after this looks again (acq_complete below) */
      } else {
        release_row(p, a->rows[i].id, id);
      }
      if (a->nexclude < 64) a->exclude[a->nexclude++] = id;
      free(a->leases[i]);
      a->leases[i] = NULL;
    } else {
      a->leases[ok] = a->leases[i];
      if (ok != i) a->leases[i] = NULL;
      ok++;
    }
  }
  if (!ok && a->n && a->attempts < 3 && !p->closing && !a->cancelled) {
    for (int i = 0; a->rows && i < a->n; i++)
      w2a_account_clear(&a->rows[i].acct);
    a->n = 0;
    acq_start(a); /* try other accounts */
    return;
  }
  int retried = a == p->wq_try;
  if (retried) p->wq_try = NULL;
  if (!ok && !a->n && may_wait(a)) {
    if (!a->parked) {
      wait_park(a);
      if (a->seen != p->released) wait_kick(p); /* a lease ended after our transaction */
    } else {
      p->wq_fails++;
      if (!a->nexclude) p->wq_next = NULL; /* nobody behind could lease either */
    }
    if (retried) wait_step(p);
    return;
  }
  wait_unlink(a);
  acq_answer(a, ok);
  if (retried) wait_step(p);
}

static void acq_token(void *ud, int rc, w2a_refresh_status st, const char *token, uint64_t exp) {
  (void)st;
  tok_wait *t = ud;
  acq *a = t->a;
  int i = t->i;
  free(t);
  a->tok_rc[i] = rc;
  if (!rc) {
    snprintf(a->leases[i]->id_token, sizeof a->leases[i]->id_token, "%s", token);
    a->leases[i]->id_token_exp_ms = exp;
  }
  if (--a->pending == 0) acq_complete(a);
}

static void acq_done(job *j) {
  acq *a = (acq *)j;
  w2a_pool *p = a->p;
  a->attempts++;
  if (a->nonly) { /* a session's rows, chosen by the ledger: now they are rows */
    for (size_t k = 0; k < a->nonly; k++) {
      w2a_ledger_acct *e = w2a_ledger_find(&p->ledger, a->only[k]);
      if (e && e->pend > 0) e->pend--;
    }
    for (int i = 0; i < a->n; i++) {
      w2a_ledger_acct *e = w2a_ledger_find(&p->ledger, a->rows[i].account_id);
      if (e) e->r.held++;
    }
    a->nonly = 0;
  }
  if (a->rc) {
    snprintf(a->none.reason, sizeof a->none.reason, "account store: %.200s", a->err.msg);
    a->none.total = -1;
  }
  if (!a->n) {
    if (a->none.total >= 0) {
      p->counts.usable = 0; /* the cache said otherwise: correct it until the next tick */
      p->counts.total = a->none.total;
    }
    a->n = 0;
    acq_complete(a);
    return;
  }
  uint64_t now = w2a_now_ms();
  a->pending = a->n + 1; /* +1 keeps acq alive until every token request is out */
  for (int i = 0; i < a->n; i++) {
    w2a_lease_row *r = &a->rows[i];
    w2a_lease *l = calloc(1, sizeof *l);
    if (!l) abort();
    a->leases[i] = l;
    a->tok_rc[i] = 0;
    memcpy(l->lease_id, r->id, sizeof l->lease_id);
    l->account_id = r->account_id;
    snprintf(l->email, sizeof l->email, "%s", r->acct.email);
    l->expires_ms = r->expires_ms;
    const char *tok = r->acct.id_token;
    uint64_t exp = r->acct.id_token_exp_ms;
    int fresh = tok && *tok && exp > now + (uint64_t)p->cfg->refresh_margin_ms &&
                strlen(tok) < sizeof l->id_token && !is_stale(p, r->account_id);
    if (fresh) {
      snprintf(l->id_token, sizeof l->id_token, "%s", tok);
      l->id_token_exp_ms = exp;
      a->pending--;
      continue;
    }
    tok_wait *t = malloc(sizeof *t);
    if (!t) abort();
    t->a = a;
    t->i = i;
    ensure_token(p, r->account_id, is_stale(p, r->account_id), acq_token, t);
  }
  if (--a->pending == 0) acq_complete(a);
}

static void mem_start(acq *a);

static void acq_start(acq *a) {
  a->seen = a->p->released;
  if (a->p->mem) {
    mem_start(a);
    return;
  }
  if (!a->rows && !(a->rows = calloc(MAX_PER_REQUEST, sizeof *a->rows))) abort();
  submit(a->p, &a->j, acq_work, acq_done);
}

static acq *acq_new(w2a_pool *p, const int64_t *exclude, size_t nexclude, void *ud) {
  acq *a = calloc(1, sizeof *a);
  if (!a) abort();
  a->p = p;
  a->ud = ud;
  a->count = 1;
  for (size_t i = 0; i < nexclude && i < 64; i++)
    a->exclude[a->nexclude++] = exclude[i];
  return a;
}

void w2a_pool_acquire(w2a_pool *p, const int64_t *exclude, size_t nexclude, w2a_pool_acquire_fn cb,
                      void *ud) {
  acq *a = acq_new(p, exclude, nexclude, ud);
  a->cb = cb;
  a->live = 1;
  a->lnext = p->live;
  if (p->live) p->live->lprev = a;
  p->live = a;
  if (p->closing) {
    snprintf(a->none.reason, sizeof a->none.reason, "the pool is shutting down");
    a->none.total = -1;
    acq_complete(a);
    return;
  }
  if (p->wq_head && wait_enabled(p) && p->nwait < WAIT_MAX) {
    /* others are waiting for capacity: queue behind them, do not overtake */
    wait_park(a);
    wait_kick(p);
    return;
  }
  acq_start(a);
}

void w2a_pool_allocate(w2a_pool *p, const char *session_id, w2a_pool_session_fn cb, void *ud) {
  acq *a = acq_new(p, NULL, 0, ud);
  a->scb = cb;
  int n = (int)p->cfg->accounts_per_request;
  a->count = n < 1 ? 1 : n > MAX_PER_REQUEST ? MAX_PER_REQUEST : n;
  snprintf(a->holder, sizeof a->holder, "%s", session_id ? session_id : "");
  if (p->closing) {
    snprintf(a->none.reason, sizeof a->none.reason, "the pool is shutting down");
    a->none.total = -1;
    acq_complete(a);
    return;
  }
  acq_start(a);
}

void w2a_pool_release_session(w2a_pool *p, const char *session_id, w2a_pool_done_fn cb, void *ud) {
  rel_job *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->p = p;
  snprintf(r->holder, sizeof r->holder, "%s", session_id && *session_id ? session_id : "?");
  r->cb = cb;
  r->ud = ud;
  submit(p, &r->j, rel_work, rel_done);
}

/* ---- in-memory leases (LEASES=memory, ledger.h) --------------------------------------- */

typedef struct readmit_job {
  job j;
  w2a_pool *p;
  int64_t id;
} readmit_job;

static void readmit_work(job *j, w2a_store *s) {
  w2a_err err;
  int n = 0;
  if (w2a_store_readmit(s, w2a_now_ms(), &n, &err)) W2A_WARN("pool: readmit: %s", err.msg);
}
static void readmit_done(job *j) {
  readmit_job *r = (readmit_job *)j;
  w2a_ledger_acct *e = w2a_ledger_find(&r->p->ledger, r->id);
  if (e && e->writes > 0) e->writes--;
  free(r);
}

/* The ledger readmitted e (quota reset passed): the store does the same. */
static void mem_readmit(w2a_pool *p, w2a_ledger_acct *e) {
  readmit_job *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->p = p;
  r->id = e->r.id;
  e->writes++;
  submit(p, &r->j, readmit_work, readmit_done);
}

static void mem_done(acq *a);

static void on_ready(uv_idle_t *h) {
  w2a_pool *p = h->data;
  acq *a = p->ready_head;
  p->ready_head = p->ready_tail = NULL;
  uv_idle_stop(h);
  while (a) {
    acq *next = a->rnext;
    a->rnext = NULL;
    mem_done(a);
    a = next;
  }
  if (p->closing) maybe_finish_close(p);
}

/* Answer on the next loop turn (an acquire never calls back from inside itself). */
static void ready_push(acq *a) {
  w2a_pool *p = a->p;
  a->rnext = NULL;
  if (p->ready_tail)
    p->ready_tail->rnext = a;
  else
    p->ready_head = a;
  p->ready_tail = a;
  if (p->ready_head == a) uv_idle_start(&p->ready_idle, on_ready);
}

/* Choose in the ledger. A request's lease is taken there and then; a session's
 * accounts are reserved (pend) and written as rows by acq_work. */
static void sync_submit(w2a_pool *p, int force);

/* Park a until sync number `gen` has finished (sync_done starts it again). */
static void load_wait_push(acq *a, uint64_t gen) {
  w2a_pool *p = a->p;
  a->need_gen = gen;
  a->rnext = NULL;
  if (p->load_wait_tail)
    p->load_wait_tail->rnext = a;
  else
    p->load_wait = a;
  p->load_wait_tail = a;
}

/* Park a until a sync submitted from now on has finished. */
static void wait_for_sync(acq *a) {
  w2a_pool *p = a->p;
  load_wait_push(a, p->sync_gen + 1);
  if (!p->sync_busy)
    sync_submit(p, 0);
  else
    p->want_sync = 1;
}

static void mem_start(acq *a) {
  w2a_pool *p = a->p;
  if (!p->ledger.loaded && !p->load_failed && !p->closing && !a->cancelled) {
    load_wait_push(a, 1); /* the first load */
    return;
  }
  a->n = 0;
  a->nonly = 0;
  memset(&a->none, 0, sizeof a->none);
  if (!p->ledger.loaded) {
    snprintf(a->none.reason, sizeof a->none.reason, "account store: %s",
             p->closing ? "the pool is shutting down" : p->load_err);
    a->none.total = -1;
    ready_push(a);
    return;
  }
  uint64_t now = w2a_now_ms();
  int64_t ex[64 + MAX_PER_REQUEST];
  size_t nex = a->nexclude;
  memcpy(ex, a->exclude, nex * sizeof *ex);
  int want = a->scb ? a->count : 1;
  while (!a->cancelled && !p->closing && a->n + (int)a->nonly < want) {
    int probe, readmit;
    w2a_ledger_acct *e = w2a_ledger_pick(&p->ledger, p->sel, now, ex, nex, &probe, &readmit);
    if (!e) break;
    ex[nex++] = e->r.id;
    if (a->scb) {
      if (probe) continue; /* a session never carries a cooled account's probe */
      e->pend++;
      a->only[a->nonly++] = e->r.id;
    } else {
      w2a_ledger_take(&p->ledger, e, p->sel, now, probe, readmit);
      a->mem_acct = e->r.id;
      a->mem_probe = probe;
      a->n = 1;
    }
    if (readmit) {
      if (a->scb) /* the ledger readmits it now; the row's account follows */
        w2a_ledger_set_state(&p->ledger, e, W2A_ST_AVAILABLE, 0);
      mem_readmit(p, e);
    }
  }
  if (a->nonly) {
    if (!a->rows && !(a->rows = calloc(MAX_PER_REQUEST, sizeof *a->rows))) abort();
    submit(p, &a->j, acq_work, acq_done);
    return;
  }
  if (!a->n) {
    w2a_ledger_explain(&p->ledger, now, a->exclude, a->nexclude, &a->none);
    /* Nothing at all (not merely busy): an account may just have been added or enabled
     * by another process (the CLI). Look once at the database before saying no; a sync
     * only reloads when another connection wrote, and waiting acquires share it. */
    if (!a->none.busy && !a->resynced && !a->cancelled && !p->closing) {
      a->resynced = 1;
      wait_for_sync(a);
      return;
    }
  }
  ready_push(a);
}

/* The in-memory lease becomes a w2a_lease, with a token from the cache or the store. */
static void mem_done(acq *a) {
  w2a_pool *p = a->p;
  a->attempts++;
  if (!a->n) {
    acq_complete(a);
    return;
  }
  w2a_ledger_acct *e = w2a_ledger_find(&p->ledger, a->mem_acct);
  w2a_lease *l = malloc(sizeof *l);
  if (!l) abort();
  snprintf(l->lease_id, sizeof l->lease_id, "mem-%llx", (unsigned long long)++p->mem_seq);
  l->account_id = a->mem_acct;
  snprintf(l->email, sizeof l->email, "%s", e && e->r.email ? e->r.email : "");
  l->id_token[0] = 0;
  l->id_token_exp_ms = 0;
  l->expires_ms = 0; /* lives as long as its request */
  l->mem = 1;
  l->probe = a->mem_probe;
  a->leases[0] = l;
  a->tok_rc[0] = 0;
  uint64_t now = w2a_now_ms();
  if (a->cancelled ||
      (e && e->token && e->token_exp_ms > now + (uint64_t)p->cfg->refresh_margin_ms &&
       strlen(e->token) < sizeof l->id_token && !is_stale(p, a->mem_acct))) {
    if (!a->cancelled) {
      memcpy(l->id_token, e->token, strlen(e->token) + 1);
      l->id_token_exp_ms = e->token_exp_ms;
    }
    acq_complete(a);
    return;
  }
  tok_wait *t = malloc(sizeof *t);
  if (!t) abort();
  t->a = a;
  t->i = 0;
  a->pending = 1;
  ensure_token(p, a->mem_acct, is_stale(p, a->mem_acct), acq_token, t);
}

/* A fresh token for an account: keep it for its next leases. */
static void mem_cache_token(w2a_pool *p, int64_t id, const char *token, uint64_t exp) {
  w2a_ledger_acct *e = w2a_ledger_find(&p->ledger, id);
  if (!e || !token || !*token || (e->token && e->token_exp_ms >= exp)) return;
  char *t = strdup(token);
  if (!t) return;
  w2a_secret_free(e->token);
  e->token = t;
  e->token_exp_ms = exp;
}

static void mem_forget_token(w2a_pool *p, int64_t id) {
  w2a_ledger_acct *e = p->mem ? w2a_ledger_find(&p->ledger, id) : NULL;
  if (!e) return;
  w2a_secret_free(e->token);
  e->token = NULL;
  e->token_exp_ms = 0;
}

static void mem_release(w2a_pool *p, int64_t id, int probe) {
  w2a_ledger_give_back(&p->ledger, id, probe);
  p->released++;
  wait_kick(p); /* capacity came back: parked acquires first */
}

/* A load of every account for the ledger: read on the worker, applied on the loop. */
struct load_set {
  w2a_ledger_row *rows;
  size_t nrows, caprows;
  int rc;
  char err[160];
};

static load_set *load_new(void) { return calloc(1, sizeof(load_set)); }

static void load_clear(load_set *l) {
  for (size_t i = 0; i < l->nrows; i++)
    free(l->rows[i].email);
  free(l->rows);
  l->rows = NULL;
  l->nrows = l->caprows = 0;
}

static int load_row(const w2a_account *a, void *ud) {
  load_set *l = ud;
  if (l->nrows == l->caprows) {
    size_t c = l->caprows ? 2 * l->caprows : 64;
    w2a_ledger_row *v = realloc(l->rows, c * sizeof *v);
    if (!v) return W2A_ENOMEM;
    l->rows = v;
    l->caprows = c;
  }
  w2a_ledger_row *r = &l->rows[l->nrows];
  if (!(r->email = strdup(a->email))) return W2A_ENOMEM;
  r->id = a->id;
  r->state = a->state;
  r->until_ms = a->state_until_ms;
  r->quota_low = a->quota_low;
  r->cap = a->cap;
  r->weight = a->weight;
  r->last_used_ms = a->last_used_ms;
  r->fails = a->consecutive_failures + a->window_failures;
  r->held = a->active_leases;
  r->id_token_exp_ms = a->id_token_exp_ms;
  l->nrows++;
  return 0;
}

static void load_rows(load_set *l, w2a_store *s) {
  w2a_err err;
  load_clear(l); /* a batch that failed runs this again */
  w2a_store_filter f = {.state = -1};
  if ((l->rc = w2a_store_list(s, &f, load_row, l, &err)))
    snprintf(l->err, sizeof l->err, "%.150s", l->rc == W2A_ENOMEM ? "out of memory" : err.msg);
}

/* Into the ledger (the rows are used up); 0 or the failure, logged. */
static int load_commit(w2a_pool *p, load_set *l) {
  int rc = l->rc;
  if (!rc) {
    rc = w2a_ledger_load(&p->ledger, l->rows, l->nrows); /* takes the emails */
    for (size_t i = 0; i < l->nrows; i++)
      l->rows[i].email = NULL;
    if (rc) snprintf(l->err, sizeof l->err, "out of memory");
  }
  load_clear(l);
  if (rc) {
    p->want_load = 1; /* try again at the next tick */
    W2A_WARN("pool: loading the accounts: %s", l->err);
  }
  return rc;
}

static void load_apply(w2a_pool *p, load_set *l) {
  if (!load_commit(p, l)) wait_kick(p); /* accounts may be back: parked acquires look */
  free(l);
}

/* Sync: write the usage added up in the ledger, and reload the ledger when another
 * connection changed the database (or when asked: session releases, lease reclaims). */
typedef struct sync_job {
  job j;
  w2a_pool *p;
  w2a_usage *u;
  size_t nu;
  int usage_rc;
  int force, changed;
  int64_t dv_in, dv;
  uint64_t gen;
  load_set load;
} sync_job;

static void sync_work(job *j, w2a_store *s) {
  sync_job *y = (sync_job *)j;
  w2a_err err;
  y->changed = 0;
  if (y->nu && (y->usage_rc = w2a_store_add_usage(s, y->u, y->nu, &err)))
    W2A_WARN("pool: writing usage counters: %s", err.msg);
  if (w2a_store_data_version(s, &y->dv, &err)) y->dv = y->dv_in - 1; /* unknown: reload */
  if (!y->force && y->dv == y->dv_in) return;
  y->changed = 1;
  load_rows(&y->load, s);
}

static void sync_done(job *j) {
  sync_job *y = (sync_job *)j;
  w2a_pool *p = y->p;
  p->sync_busy = 0;
  if (y->usage_rc) w2a_ledger_readd_due(&p->ledger, y->u, y->nu);
  if (y->changed) {
    if (load_commit(p, &y->load)) {
      if (!p->ledger.loaded) {
        p->load_failed = 1;
        snprintf(p->load_err, sizeof p->load_err, "%s", y->load.err);
      }
    } else {
      p->data_version = y->dv;
      p->load_failed = 0;
    }
    wait_kick(p); /* the accounts may have changed: parked acquires look again */
  } else {
    p->data_version = y->dv;
  }
  p->sync_done_gen = y->gen;
  load_clear(&y->load);
  free(y->u);
  free(y);
  /* acquires waiting for this sync (or the first load) go on, oldest first */
  acq *a = p->load_wait;
  p->load_wait = p->load_wait_tail = NULL;
  while (a) {
    acq *n = a->rnext;
    if (a->need_gen <= p->sync_done_gen)
      mem_start(a); /* may park it again, for the next sync */
    else
      load_wait_push(a, a->need_gen);
    a = n;
  }
  if (p->want_sync || p->load_wait || (p->closing && p->ledger.ndue)) {
    p->want_sync = 0;
    if (!p->sync_busy) sync_submit(p, 0);
  }
}

static void sync_submit(w2a_pool *p, int force) {
  sync_job *y = calloc(1, sizeof *y);
  if (!y) return;
  y->p = p;
  if (p->ledger.ndue) {
    size_t max = p->ledger.ndue < USAGE_BATCH ? p->ledger.ndue : USAGE_BATCH;
    if ((y->u = malloc(max * sizeof *y->u))) y->nu = w2a_ledger_take_due(&p->ledger, y->u, max);
  }
  y->force = force || !p->ledger.loaded;
  y->gen = ++p->sync_gen;
  y->dv_in = p->data_version;
  p->want_load = 0;
  p->sync_busy = 1;
  p->next_sync = w2a_now_ms() + SYNC_MS;
  submit(p, &y->j, sync_work, sync_done);
}

/* The lease lock, next to the database file: a process that keeps leases in memory
 * holds it exclusively, one that keeps them in the database holds it shared, so the two
 * never run on one database at once (an in-memory lease is invisible to others).
 * Processes that lease nothing (the CLI) take no lock. flock locks die with the
 * process, so a crash leaves nothing to clean up. */
static int lease_lock(w2a_pool *p, int flags, w2a_err *err) {
  const w2a_config *c = p->cfg;
  const char *mode = c->leases ? c->leases : "auto";
  int want_mem = !strcmp(mode, "memory") || (!strcmp(mode, "auto") && (flags & W2A_POOL_SOLE));
  const char *db = c->database_path ? c->database_path : "";
  p->lock_fd = -1;
  if (!(flags & (W2A_POOL_LEASER | W2A_POOL_SOLE))) return 0;
  if (!*db || !strcmp(db, ":memory:")) {
    p->mem = want_mem;
    return 0;
  }
  char path[4096];
  if ((size_t)snprintf(path, sizeof path, "%s.leases", db) >= sizeof path)
    return w2a_errf(err, W2A_EINVAL, "pool: DATABASE_PATH is too long");
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return w2a_errf(err, W2A_EIO, "pool: lease lock %s: %s", path, strerror(errno));
  if (want_mem) {
    if (!flock(fd, LOCK_EX | LOCK_NB)) {
      char pid[32];
      int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
      if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n)
        W2A_WARN("pool: lease lock %s: could not write the pid", path);
      p->mem = 1;
      p->lock_fd = fd;
      return 0;
    }
    if (!strcmp(mode, "memory")) {
      close(fd);
      return w2a_errf(err, W2A_ESTATE,
                      "pool: LEASES=memory needs %s to itself, but another warp2api process"
                      " uses it; stop that one, or set LEASES=database on every process",
                      db);
    }
    W2A_INFO("pool: another warp2api process uses %s: leases stay in the database", db);
  }
  if (flock(fd, LOCK_SH | LOCK_NB)) {
    char pid[32] = "";
    ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
    pid[r > 0 ? r : 0] = 0;
    pid[strcspn(pid, "\n")] = 0;
    close(fd);
    return w2a_errf(err, W2A_ESTATE,
                    "pool: warp2api%s%s keeps the leases of %s in memory (`warp2api serve`,"
                    " LEASES=memory or auto); stop it, or run every process on this database"
                    " with LEASES=database",
                    *pid ? " pid " : "", pid, db);
  }
  p->lock_fd = fd;
  return 0;
}

/* ---- report / extend / release --------------------------------------------------------- */

/* A success of an in-memory lease on a healthy account (not a probe, no failures to
 * reset): it only adds to the usage due, nothing is written. 0 when it is not that. */
static int mem_plain_success(w2a_pool *p, w2a_lease *lease) {
  w2a_ledger_acct *e = w2a_ledger_find(&p->ledger, lease->account_id);
  if (lease->probe || !e || e->gone || e->r.fails || e->r.state != W2A_ST_AVAILABLE) return 0;
  w2a_ledger_success(&p->ledger, e, w2a_now_ms());
  mem_release(p, lease->account_id, 0);
  return 1;
}

/* Any other outcome of an in-memory lease is written durably, and the ledger shows its
 * likely effect at once (so no other request picks the account meanwhile) and the stored
 * one after. The lease goes back to the ledger now. */
static void mem_report(w2a_pool *p, w2a_lease *lease, rel_job *r, uint64_t now) {
  w2a_ledger_acct *e = w2a_ledger_find(&p->ledger, lease->account_id);
  if (!r->has_result) {
    free(r);
  } else {
    r->mem = 1;
    r->was_probe = lease->probe;
    if (e) {
      e->writes++;
      if (r->r.ok) {
        e->r.fails = 0;
        if (e->r.state == W2A_ST_COOLING) w2a_ledger_set_state(&p->ledger, e, W2A_ST_AVAILABLE, 0);
      } else if (lease->probe) { /* the probe failed: no second probe now */
        w2a_ledger_set_state(&p->ledger, e, e->r.state, now + r->r.cooldown_ms);
      }
      if (r->r.set_state >= 0 &&
          (e->r.state != W2A_ST_DISABLED || r->r.set_state != W2A_ST_COOLING))
        w2a_ledger_set_state(&p->ledger, e, (w2a_acct_state)r->r.set_state, r->r.until_ms);
    }
    submit(p, &r->j, rel_work, rel_done);
  }
  mem_release(p, lease->account_id, lease->probe);
}

w2a_action w2a_pool_report(w2a_pool *p, w2a_lease *lease, const w2a_outcome *o) {
  const w2a_rule *ru = w2a_rules_match(&p->rules, o);
  w2a_action act = ru ? ru->action : W2A_ACT_NONE;
  if (!ru && lease->mem && mem_plain_success(p, lease)) { /* the common case: no job */
    memset(lease->id_token, 0, sizeof lease->id_token);
    free(lease);
    return W2A_ACT_NONE;
  }
  rel_job *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->p = p;
  snprintf(r->lease_id, sizeof r->lease_id, "%s", lease->lease_id);
  r->account_id = lease->account_id;
  r->has_result = 1;
  r->r.set_state = -1;
  r->r.threshold = p->cfg->failure_threshold;
  r->r.window_ms = (uint64_t)p->cfg->failure_window_ms;
  r->r.cooldown_ms = (uint64_t)p->cfg->cooldown_ms;
  uint64_t now = w2a_now_ms();
  if (!ru) {
    r->r.ok = 1;
  } else {
    const char *what = o->finish && *o->finish ? o->finish : "";
    if (o->http_status)
      snprintf(r->reason, sizeof r->reason, "HTTP %d%s%s: %.160s", o->http_status, *what ? " " : "",
               what, o->body ? o->body : "");
    else if (*what)
      snprintf(r->reason, sizeof r->reason, "%s: %.160s", what, o->body ? o->body : "");
    else
      snprintf(r->reason, sizeof r->reason, "transport: %.160s", o->body ? o->body : "failure");
    r->r.failure = ru->count_failure;
    switch (act) {
    case W2A_ACT_COOLDOWN:
      r->r.set_state = W2A_ST_COOLING;
      r->r.until_ms = now + (ru->cooldown_ms ? ru->cooldown_ms : (uint64_t)p->cfg->cooldown_ms);
      r->r.failure = 0; /* the cool-down is the verdict; do not double count */
      break;
    case W2A_ACT_QUOTA:
      /* until Warp's real reset: a quota poll right after this release sets it */
      r->r.set_state = W2A_ST_QUOTA;
      r->r.until_ms = now + QUOTA_FALLBACK_MS;
      r->poll_quota = 1;
      break;
    case W2A_ACT_BLOCK: r->r.set_state = W2A_ST_BLOCKED; break;
    case W2A_ACT_INVALID: r->r.set_state = W2A_ST_INVALID; break;
    case W2A_ACT_RETRY_REFRESH:
      /* the token is bad although not expired by its clock: the next lease of this
       * account waits for a forced, single-flight refresh */
      mark_stale(p, lease->account_id);
      ensure_token(p, lease->account_id, 1, NULL, NULL);
      break;
    case W2A_ACT_FAIL_REQUEST: /* the request was bad, not the account */ r->has_result = 0; break;
    default: break;
    }
    W2A_INFO("pool: %s: %s → %s", lease->email, r->reason, w2a_action_name(act));
  }
  if (lease->mem)
    mem_report(p, lease, r, now);
  else
    submit(p, &r->j, rel_work, rel_done);
  memset(lease->id_token, 0, sizeof lease->id_token);
  free(lease);
  return act;
}

typedef struct ext_job {
  job j;
  char lease_id[37];
  uint64_t exp;
} ext_job;

static void ext_work(job *j, w2a_store *s) {
  ext_job *e = (ext_job *)j;
  w2a_err err;
  int rc = w2a_store_lease_extend(s, e->lease_id, e->exp, &err);
  if (rc) W2A_WARN("pool: extend: %s", err.msg);
}
static void ext_done(job *j) { free(j); }

void w2a_pool_extend(w2a_pool *p, w2a_lease *lease) {
  if (lease->mem) return; /* lives as long as its request */
  uint64_t exp = w2a_now_ms() + (uint64_t)p->cfg->lease_ttl_ms;
  /* no need to write more often than every tenth of the TTL */
  if (exp < lease->expires_ms + (uint64_t)p->cfg->lease_ttl_ms / 10) return;
  ext_job *e = calloc(1, sizeof *e);
  if (!e) abort();
  memcpy(e->lease_id, lease->lease_id, sizeof e->lease_id);
  e->exp = exp;
  lease->expires_ms = exp;
  submit(p, &e->j, ext_work, ext_done);
}

void w2a_pool_release(w2a_pool *p, w2a_lease *lease) {
  if (lease->mem)
    mem_release(p, lease->account_id, lease->probe);
  else
    release_row(p, lease->lease_id, lease->account_id);
  memset(lease->id_token, 0, sizeof lease->id_token);
  free(lease);
}

typedef struct lease_refresh {
  w2a_lease *lease;
  w2a_pool_done_fn cb;
  void *ud;
} lease_refresh;

static void lease_refreshed(void *ud, int rc, w2a_refresh_status st, const char *token,
                            uint64_t exp) {
  (void)st;
  lease_refresh *lr = ud;
  if (!rc) {
    snprintf(lr->lease->id_token, sizeof lr->lease->id_token, "%s", token);
    lr->lease->id_token_exp_ms = exp;
  }
  lr->cb(rc, lr->ud);
  free(lr);
}

void w2a_pool_refresh_lease(w2a_pool *p, w2a_lease *lease, w2a_pool_done_fn cb, void *ud) {
  lease_refresh *lr = malloc(sizeof *lr);
  if (!lr) {
    cb(W2A_ENOMEM, ud);
    return;
  }
  lr->lease = lease;
  lr->cb = cb;
  lr->ud = ud;
  mark_stale(p, lease->account_id);
  ensure_token(p, lease->account_id, 1, lease_refreshed, lr);
}

typedef struct acct_refresh {
  w2a_pool *p;
  int64_t id;
  w2a_pool_refresh_fn cb;
  void *ud;
} acct_refresh;

static void acct_refreshed(void *ud, int rc, w2a_refresh_status st, const char *token,
                           uint64_t exp) {
  acct_refresh *ar = ud;
  (void)token;
  (void)exp;
  static const char *const what[] = {"refreshed", "skipped: token still fresh", "refresh failed",
                                     "refresh token rejected"};
  if (ar->cb) ar->cb(rc, st, what[st], ar->ud);
  free(ar);
}

void w2a_pool_refresh_account(w2a_pool *p, int64_t account_id, int force, w2a_pool_refresh_fn cb,
                              void *ud) {
  acct_refresh *ar = malloc(sizeof *ar);
  if (!ar) {
    if (cb) cb(W2A_ENOMEM, W2A_REFRESH_FAILED, "out of memory", ud);
    return;
  }
  ar->p = p;
  ar->id = account_id;
  ar->cb = cb;
  ar->ud = ud;
  ensure_token(p, account_id, force, acct_refreshed, ar);
}

/* ---- background -------------------------------------------------------------------------- */

typedef struct bg_job {
  job j;
  w2a_pool *p;
  int kind; /* 0 counts (+ reclaim/readmit when background), 1 refresh scan, 2 quota scan */
  int maintain;
  w2a_store_stats c;
  int64_t ids[32];
  size_t n;
  int rc;
  int changed; /* leases reclaimed or accounts readmitted */
} bg_job;

static void bg_work(job *j, w2a_store *s) {
  bg_job *b = (bg_job *)j;
  w2a_err err;
  uint64_t now = w2a_now_ms();
  const w2a_config *c = b->p->cfg;
  if (b->kind == 0) {
    int n = 0;
    if (b->maintain) {
      if (!w2a_store_reclaim(s, now, &n, &err) && n) {
        W2A_INFO("pool: reclaimed %d expired lease(s)", n);
        b->changed = 1;
      }
      if (!w2a_store_readmit(s, now, &n, &err) && n) {
        W2A_INFO("pool: %d account(s) back after their quota reset", n);
        b->changed = 1;
      }
    }
    b->rc = w2a_store_counts(s, now, &b->c, &err);
  } else if (b->kind == 1) {
    b->rc = w2a_store_due(s, W2A_DUE_REFRESH, now, (uint64_t)c->refresh_margin_ms, b->ids, 32,
                          &b->n, &err);
  } else {
    uint64_t every = (uint64_t)c->quota_poll_ms;
    every -= every / 10 ? w2a_random_u64() % (every / 10) : 0; /* jitter */
    b->rc = w2a_store_due(s, W2A_DUE_QUOTA, now, every, b->ids, 8, &b->n, &err);
  }
}

static void bg_done(job *j) {
  bg_job *b = (bg_job *)j;
  w2a_pool *p = b->p;
  if (b->kind == 0) {
    p->counts_busy = 0;
    if (b->changed && p->mem) p->want_load = 1;
    if (!b->rc) p->counts = b->c;
    if (!b->rc && p->mem && p->ledger.loaded) { /* leases in memory are not in the database */
      p->counts.active_leases += p->ledger.mem_total;
      p->counts.leased_accounts = w2a_ledger_leased_accounts(&p->ledger);
      p->counts.usable = w2a_ledger_usable(&p->ledger, w2a_now_ms());
    }
  } else {
    p->scan_busy = 0;
    for (size_t i = 0; i < b->n && !b->rc && !p->closing; i++) {
      if (b->kind == 1) {
        if (!find_flight(p, b->ids[i])) ensure_token(p, b->ids[i], 0, NULL, NULL);
      } else {
        w2a_pool_poll_quota(p, b->ids[i], NULL, NULL);
      }
    }
  }
  free(b);
}

static void bg_submit(w2a_pool *p, int kind) {
  bg_job *b = calloc(1, sizeof *b);
  if (!b) return;
  b->p = p;
  b->kind = kind;
  b->maintain = p->background;
  if (kind == 0)
    p->counts_busy = 1;
  else
    p->scan_busy = 1;
  submit(p, &b->j, bg_work, bg_done);
}

static uint64_t jitter(uint64_t ms) { return ms + w2a_random_u64() % (ms / 5 + 1); }

static void on_tick(uv_timer_t *t) {
  w2a_pool *p = t->data;
  uint64_t now = w2a_now_ms();
  if (p->closing) return;
  /* flights waiting for the limiter or for a peer process's refresh */
  for (flight *f = p->flights; f; f = f->next) {
    if (!f->queued || now < f->not_before) continue;
    f->claim = 0;
    flight_step(f); /* limiter (if not taken yet), then the claim again */
  }
  if (p->mem && !p->sync_busy &&
      (p->want_load || now >= p->next_sync || p->ledger.ndue >= USAGE_BATCH))
    sync_submit(p, p->want_load);
  if (!p->counts_busy && now >= p->counts_at) {
    p->counts_at = now + 2000;
    bg_submit(p, 0);
  }
  if (p->background && !p->scan_busy) {
    if (now >= p->next_refresh_scan) {
      p->next_refresh_scan = now + jitter(30000);
      bg_submit(p, 1);
    } else if (now >= p->next_quota_scan) {
      uint64_t every = (uint64_t)p->cfg->quota_poll_ms / 30;
      p->next_quota_scan = now + jitter(every < 10000 ? 10000 : every);
      bg_submit(p, 2);
    }
  }
}

/* ---- open / close ---------------------------------------------------------------------- */

int w2a_pool_open(w2a_pool **out, uv_loop_t *loop, const w2a_config *cfg, w2a_http_client *http,
                  int flags, w2a_err *err) {
  *out = NULL;
  w2a_pool *p = calloc(1, sizeof *p);
  if (!p) return w2a_errf(err, W2A_ENOMEM, "pool: out of memory");
  p->loop = loop;
  p->cfg = cfg;
  p->http = http;
  p->background = flags & W2A_POOL_BACKGROUND;
  p->lock_fd = -1;
  int sel = w2a_selection_parse(cfg->selection);
  p->sel = sel < 0 ? W2A_SEL_LRU : (w2a_selection)sel;
  /* Start with a full burst, so a cold start refreshes a handful of accounts at once;
   * the cap only spaces out what comes after. */
  {
    double rate = (double)(cfg->refresh_per_minute > 0 ? cfg->refresh_per_minute : 30);
    p->bucket = rate / 4 < 1 ? 1 : rate / 4;
  }
  p->bucket_at = w2a_mono_us() / 1000u;
  int rc = w2a_rules_load(&p->rules, cfg->error_rules_file, err);
  if (rc) goto fail;
  w2a_store_opts so = {
      .path = cfg->database_path, .encryption_key = cfg->encryption_key, .checkpoint_thread = 1};
  if ((rc = w2a_store_open(&p->store, &so, err))) goto fail;
  if ((rc = lease_lock(p, flags, err))) {
    w2a_store_close(p->store);
    goto fail;
  }
  W2A_INFO("pool: request leases %s",
           p->mem ? "in memory (this process owns the database's leases)" : "in the database");
  if (uv_mutex_init(&p->mu) || uv_cond_init(&p->cv)) abort();
  uv_async_init(loop, &p->async, on_async);
  p->async.data = p;
  uv_timer_init(loop, &p->tick);
  p->tick.data = p;
  uv_timer_init(loop, &p->wq_timer);
  p->wq_timer.data = p;
  uv_idle_init(loop, &p->ready_idle);
  p->ready_idle.data = p;
  p->handles_open = 4;
  if (uv_thread_create(&p->thread, worker_main, p)) abort();
  uv_timer_start(&p->tick, on_tick, 0, 100);
  /* counts right away, so /readyz is right from the first request */
  p->counts_at = w2a_now_ms() + 2000;
  bg_submit(p, 0);
  if (p->mem) sync_submit(p, 1); /* the ledger's first load */
  p->next_refresh_scan = w2a_now_ms() + jitter(5000);
  p->next_quota_scan = w2a_now_ms() + jitter(10000);
  *out = p;
  return 0;
fail:
  w2a_rules_free(&p->rules);
  free(p);
  return rc;
}

static void on_handle_closed(uv_handle_t *h) {
  w2a_pool *p = h->data;
  if (--p->handles_open) return;
  void (*done)(void *) = p->close_done;
  void *ud = p->close_ud;
  w2a_store_close(p->store);
  w2a_rules_free(&p->rules);
  w2a_ledger_free(&p->ledger);
  if (p->lock_fd >= 0) close(p->lock_fd); /* after the store: the lock covers its life */
  uv_mutex_destroy(&p->mu);
  uv_cond_destroy(&p->cv);
  free(p->stale);
  free(p);
  if (done) done(ud);
}

static void maybe_finish_close(w2a_pool *p) {
  if (p->closing != 1) return;
  /* parked acquires will not be retried: answer them (a retry in flight answers itself) */
  acq *a;
  while ((a = wait_idle_head(p))) {
    wait_unlink(a);
    acq_answer(a, 0);
  }
  while ((a = p->load_wait)) { /* the first load never came */
    if (!(p->load_wait = a->rnext)) p->load_wait_tail = NULL;
    a->rnext = NULL;
    a->none.total = -1;
    snprintf(a->none.reason, sizeof a->none.reason, "the pool is shutting down");
    acq_complete(a);
  }
  /* queued flights will not be stepped again: finish them as failures */
  for (flight *f = p->flights, *next; f; f = next) {
    next = f->next;
    if (f->queued) flight_finish(f, W2A_ESTATE, NULL, 0);
  }
  if (p->jobs_inflight || p->http_inflight || p->flights || p->ready_head) return;
  p->closing = 2;
  uv_mutex_lock(&p->mu);
  p->stop_worker = 1;
  uv_cond_signal(&p->cv);
  uv_mutex_unlock(&p->mu);
  uv_thread_join(&p->thread);
  uv_close((uv_handle_t *)&p->async, on_handle_closed);
  uv_close((uv_handle_t *)&p->tick, on_handle_closed);
  uv_close((uv_handle_t *)&p->wq_timer, on_handle_closed);
  uv_close((uv_handle_t *)&p->ready_idle, on_handle_closed);
}

void w2a_pool_close(w2a_pool *p, void (*done)(void *ud), void *ud) {
  if (!p) {
    if (done) done(ud);
    return;
  }
  p->closing = 1;
  p->close_done = done;
  p->close_ud = ud;
  if (p->mem && p->ledger.ndue && !p->sync_busy) sync_submit(p, 0); /* the last usage */
  maybe_finish_close(p);
  /* otherwise on_async / HTTP completions call it again */
}
