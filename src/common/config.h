/* config.h - the effective configuration.
 *
 * Sources, later ones winning: built-in defaults, the env file (default
 * config/warp2api.env, or W2A_ENV_FILE / --env-file), then the process environment.
 * Names follow the seed (LOG_LEVEL, POOL_MIN_SIZE, ACCOUNTS_PER_REQUEST, …) where it
 * has one. Every setting is a row of one table in config.c, which drives loading,
 * `warp2api config` (secrets masked) and the README's reference section. */
#ifndef W2A_CONFIG_H
#define W2A_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct w2a_config {
  /* logging */
  char *log_level;
  char *log_file; /* empty: stderr only */

  /* gateway (OpenAI side) */
  char *host;
  int64_t port;
  char *api_keys; /* comma-separated client keys; empty: loopback only, no auth */
  char *cors_origins;
  int64_t max_body_bytes;
  int64_t max_header_bytes;
  int64_t stream_queue_max_bytes; /* bytes queued for one slow client before pausing upstream */
  int64_t keepalive_ms;           /* SSE comment while upstream is silent */
  int64_t shutdown_grace_ms;
  int64_t max_attempts; /* accounts tried per request before giving up */
  char *default_model;
  char *model_aliases; /* "alias=model,alias2=model2" */
  int64_t models_cache_ms;

  /* upstream (Warp) */
  char *warp_base_url;   /* /ai/multi-agent, /proxy/token, /graphql/v2 */
  char *securetoken_url; /* /v1/token */
  char *identity_url;    /* /v1/accounts:sendOobCode, :signInWithEmailLink */
  char *firebase_api_key;
  char *refresh_endpoint; /* "proxy" or "securetoken" */
  char *client_version;
  char *os_category;
  char *os_name;
  char *os_version;
  char *proxy; /* explicit proxy; HTTPS_PROXY/ALL_PROXY/NO_PROXY are honoured too */
  char *ca_file;
  int64_t insecure_tls;
  int64_t connect_timeout_ms;
  int64_t first_event_timeout_ms;
  int64_t idle_timeout_ms;
  int64_t total_timeout_ms;
  int64_t sse_event_max_bytes;
  int64_t struct_max_depth;

  /* account pool */
  char *pool_host;
  int64_t pool_port;
  char *admin_token;
  char *database_path;
  int64_t pool_min_size;
  int64_t pool_max_size;
  int64_t accounts_per_request;
  char *selection; /* lru | round-robin | fill-first */
  int64_t lease_ttl_ms;
  int64_t lease_wait_ms; /* acquire waits this long when every eligible account is busy */
  char *leases;          /* auto | memory | database (pool.h: where request leases live) */
  int64_t refresh_margin_ms;
  int64_t refresh_per_minute;
  int64_t quota_poll_ms;
  int64_t failure_threshold;
  int64_t failure_window_ms;
  int64_t cooldown_ms;
  char *error_rules_file;
  char *encryption_key; /* secret: encrypts refresh tokens at rest */
} w2a_config;

/* Fill defaults, then the env file (path NULL: $W2A_ENV_FILE or config/warp2api.env,
 * silently skipped when absent unless named explicitly), then the environment. */
int w2a_config_load(w2a_config *c, const char *env_file, w2a_err *err);
void w2a_config_free(w2a_config *c);
/* Print "NAME=value" lines, secrets masked, with the source of each value. */
void w2a_config_print(const w2a_config *c, FILE *out);
/* Print the reference table (name, default, meaning). */
void w2a_config_print_help(FILE *out);

#endif
