/* state.h - fakewarp's world: accounts, the tokens it issued, quotas, counters, the log
 * of received requests and the test mailbox.
 *
 * Everything here lives on the loop thread and is owned by one w2a_fake_state; accounts
 * are freed only by w2a_fake_state_reset/free. ID tokens are JWT-shaped
 * (header.payload.signature, base64url) and signed with HMAC-SHA256 under a key drawn at
 * start-up, so "a token this process issued" is checked without keeping a table, and a
 * token that survives a restart is unknown (401), as a token from another server would
 * be. A token whose signature checked out is remembered (a small cache by signature:
 * token -> uid, exp), so a client presenting the same token again costs a compare, not
 * an HMAC and a JSON parse; the account and the expiry are still looked at every time. Quota
 * windows roll over lazily: whoever looks at an account first after its nextRefreshTime resets the
 * count. */
#ifndef W2A_FAKE_STATE_H
#define W2A_FAKE_STATE_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "fakewarp/reqlog.h"

#define W2A_FAKE_PROJECT "astral-field-294621"

typedef struct w2a_fake_account {
  struct w2a_fake_account *next;
  char *email;
  char *local_id;      /* Firebase uid (28 chars, derived from the email) */
  char *refresh_token; /* the one currently valid */
  char *scenario;      /* default directives for this account, "" for none */
  char *once;          /* one-shot directives (for `once_left` requests) */
  int once_left;
  int64_t quota_limit; /* requestLimit */
  int64_t used;        /* requestsUsedSinceLastRefresh */
  int unlimited;
  int64_t refresh_period_s; /* quota window */
  uint64_t next_refresh_ms; /* wall clock */
  int quota_in_stream;      /* exhausted → in-stream finished{quota_limit}, not 429 */
  int blocked;              /* every AI request gets 403 */
  int revoked;              /* refresh token revoked: TOKEN_EXPIRED */
  int rotate;               /* issue a new refresh token on each exchange */
  /* counters */
  uint64_t ai_requests, served, refreshes, graphql, streams_open, streams_done, abandoned, cut;
  w2a_fake_log log; /* received requests, capped (reqlog.h) */
} w2a_fake_account;

typedef struct w2a_fake_account_spec {
  const char *email;
  const char *refresh_token;
  const char *scenario;
  int64_t quota; /* < 0: default */
  int64_t refresh_period_s;
  int unlimited, blocked, quota_in_stream, rotate;
} w2a_fake_account_spec;

typedef struct w2a_fake_state {
  w2a_fake_account *accounts;
  size_t naccounts;
  int64_t token_lifetime_s;
  int64_t default_quota;
  int64_t default_refresh_period_s;
  int rotate_refresh;
  size_t log_cap; /* requests kept per account */
  char *global_scenario;
  char *global_once;
  int global_once_left;
  unsigned char key[32];
  struct w2a_fake_tok *tokens; /* verified ID tokens (state.c), NULL until the first */
  /* counters */
  uint64_t http_requests, ai_requests, refreshes, graphql, streams_open, streams_done, abandoned,
      cut, unauthorized;
  json_object *abandoned_log; /* [{email, request_id, started_ms, noticed_ms, events}] */
  json_object *mailbox;       /* [{email, link, oobCode, sent_at_ms, used}] */
  w2a_fake_log unknown_log;   /* requests that could not be tied to an account */
} w2a_fake_state;

void w2a_fake_state_init(w2a_fake_state *st);
void w2a_fake_state_free(w2a_fake_state *st);
/* Forget accounts, counters, logs, mailbox and scenarios (keeps settings and the key). */
void w2a_fake_state_reset(w2a_fake_state *st);

/* Add (or update, when the email exists) an account. */
int w2a_fake_account_add(w2a_fake_state *st, const w2a_fake_account_spec *sp,
                         w2a_fake_account **out, w2a_err *err);
w2a_fake_account *w2a_fake_account_by_email(w2a_fake_state *st, const char *email);
w2a_fake_account *w2a_fake_account_by_refresh(w2a_fake_state *st, const char *rt);
w2a_fake_account *w2a_fake_account_by_uid(w2a_fake_state *st, const char *uid);
/* Roll the quota window over when it has passed; 1 when the account has quota left. */
int w2a_fake_account_quota_ok(w2a_fake_state *st, w2a_fake_account *a, uint64_t now_ms);
/* Log a request to a's log (NULL: the unknown log), dropping the oldest past the cap. */
void w2a_fake_account_log(w2a_fake_state *st, w2a_fake_account *a, const w2a_fake_log_rec *rec);
/* {email, uid, refresh_token, quota..., counters} for control routes. */
json_object *w2a_fake_account_json(const w2a_fake_account *a);

/* Mint an ID token for a; returns a heap string (free()). exp_out: unix seconds. */
char *w2a_fake_token_mint(w2a_fake_state *st, const w2a_fake_account *a, int64_t *exp_out);
/* Check a bearer token: 0 and *out on success; W2A_EAUTH for an unknown token;
 * W2A_ESTATE for an expired one (*exp_out tells when it expired). */
int w2a_fake_token_check(w2a_fake_state *st, const char *tok, w2a_fake_account **out,
                         int64_t *exp_out);
/* RFC 4122 version-4 UUID (36 chars + NUL) like w2a_uuid4, but from a pool of kernel
 * randomness refilled 4 KiB at a time: a short answer needs ten ids, and ten getrandom
 * calls plus ten snprintf were a tenth of fakewarp's time per request. Loop thread only. */
void w2a_fake_uuid4(char out[37]);
/* A fresh opaque refresh token ("AMf-vB" + 160 url-safe chars, like Google's). */
char *w2a_fake_refresh_token_new(void);

#endif
