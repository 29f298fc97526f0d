/* admin.h - the account pool's admin HTTP API (the seed's account-pool service routes,
 * made correct, plus account management). Shapes and rules: docs/admin-api.md.
 *
 * The API is a w2a_http_server handler: w2a_admin_start() listens on
 * POOL_SERVICE_HOST:POOL_SERVICE_PORT itself (`warp2api pool`, `warp2api serve`), while
 * w2a_admin_handle() lets another server mount the routes. Every database touch goes
 * through w2a_pool_submit(), so the loop never blocks on SQLite.
 *
 * Auth: with ADMIN_TOKEN set, every route but GET /health needs
 * `Authorization: Bearer <token>` (constant-time compare). Without it the service only
 * binds to loopback; start refuses a non-loopback POOL_SERVICE_HOST.
 *
 * Secrets: refresh tokens never leave except through export with include_secrets=true;
 * ID tokens only through allocate (a remote gateway needs them). */
#ifndef W2A_POOL_ADMIN_H
#define W2A_POOL_ADMIN_H

#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/err.h"
#include "http/server.h"
#include "pool/pool.h"
#include "pool/store.h"

struct json_object;

typedef struct w2a_admin w2a_admin;

/* Listen on POOL_SERVICE_HOST:POOL_SERVICE_PORT (port 0 picks a free one; see
 * w2a_admin_port). Fails with a message naming the problem when the bind address is not
 * loopback and ADMIN_TOKEN is empty, or when the port cannot be bound. */
int w2a_admin_start(w2a_admin **out, uv_loop_t *loop, const w2a_config *cfg, w2a_pool *pool,
                    w2a_err *err);
/* Stop listening; in-flight requests finish (their database work completes first).
 * `done` (may be NULL) runs on the loop once everything is freed. */
void w2a_admin_stop(w2a_admin *a, void (*done)(void *ud), void *ud);
int w2a_admin_port(const w2a_admin *a);

/* Mount on another server: create the route state without listening, then call
 * w2a_admin_handle() for requests whose path starts with "/api/" or is "/health".
 * Free with w2a_admin_stop() (it only waits for in-flight work). */
int w2a_admin_new(w2a_admin **out, uv_loop_t *loop, const w2a_config *cfg, w2a_pool *pool,
                  w2a_err *err);
void w2a_admin_handle(w2a_http_req *req, void *admin);

/* 1 when host names a loopback address (127.0.0.0/8, ::1, localhost). */
int w2a_admin_host_is_loopback(const char *host);
/* Pool health from usable accounts and POOL_MIN_SIZE (seed rule): "healthy" when
 * usable >= 2*min, "good" when >= min, "low" when > 0, else "critical". */
const char *w2a_admin_health(long usable, long min_size);

/* ---- shared with `warp2api accounts` (the CLI works on the store directly) ---------- */

enum {
  W2A_ADMIN_JSON_SECRETS = 1, /* include refresh_token (export --include-secrets) */
};
/* An account as the API shows it (AccountInfo: the seed's fields plus ours). `why` is
 * w2a_store_why_not's text ("" when selectable, NULL when unknown). Never contains a
 * token. Returns a new json-c object (NULL on allocation failure). */
struct json_object *w2a_admin_account_json(const w2a_account *a, const char *why, uint64_t now_ms);
/* One export record: the fields import reads back (email, uid, label, weight, cap,
 * refresh_token only with W2A_ADMIN_JSON_SECRETS) plus state for reading. */
struct json_object *w2a_admin_export_json(const w2a_account *a, int flags);

/* Parsed import input: JSON array or JSONL (auto-detected), each record validated.
 * rows[] point into memory owned by the batch; errors name the line (JSONL) or the
 * array item (1-based) and the field. */
typedef struct w2a_admin_import_err {
  int line; /* JSONL line, or array item number */
  char msg[200];
} w2a_admin_import_err;

typedef struct w2a_admin_import {
  w2a_account_new *rows;
  int *row_line; /* source line/item of rows[i] */
  size_t nrows;
  w2a_admin_import_err *errs;
  size_t nerrs;
  int is_array;
  struct json_object **objs; /* owned parsed records */
  size_t nobjs;
} w2a_admin_import;

/* 0, or W2A_EINVAL when the text as a whole is unusable (err names why); per-record
 * problems go to out->errs and parsing continues. */
int w2a_admin_import_parse(const char *text, size_t len, w2a_admin_import *out, w2a_err *err);
void w2a_admin_import_free(w2a_admin_import *im);

/* ISO-8601 UTC with milliseconds ("2026-01-02T03:04:05.678Z"). */
void w2a_admin_iso_time(uint64_t ms, char out[32]);

#endif
