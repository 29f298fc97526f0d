/* errors.h - the one place where the gateway's errors get their HTTP status and their
 * OpenAI body {"error":{"message","type","param","code"}}.
 *
 * Code anywhere in the gateway describes a failure as a kind (what went wrong, from a
 * closed list) plus a message and optionally the offending parameter; the table in
 * errors.c turns the kind into status, type and code, so two paths reporting the same
 * failure can never disagree. A w2a_gw_error is a plain value (no allocation). */
#ifndef W2A_GW_ERRORS_H
#define W2A_GW_ERRORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef enum w2a_gw_errkind {
  W2A_GWE_NONE = 0,
  W2A_GWE_BAD_REQUEST,       /* 400 invalid_request_error */
  W2A_GWE_INVALID_JSON,      /* 400 invalid_request_error / invalid_json */
  W2A_GWE_UNSUPPORTED,       /* 400 invalid_request_error / unsupported_content */
  W2A_GWE_UNAUTHORIZED,      /* 401 authentication_error / invalid_api_key */
  W2A_GWE_ADMIN_AUTH,        /* 401 authentication_error / invalid_admin_token */
  W2A_GWE_ADMIN_DISABLED,    /* 403 permission_error / admin_disabled */
  W2A_GWE_NOT_FOUND,         /* 404 invalid_request_error / not_found (route) */
  W2A_GWE_MODEL_NOT_FOUND,   /* 404 invalid_request_error / model_not_found */
  W2A_GWE_METHOD,            /* 405 invalid_request_error / method_not_allowed */
  W2A_GWE_BODY_TOO_LARGE,    /* 413 invalid_request_error / request_too_large */
  W2A_GWE_HEADER_TOO_LARGE,  /* 431 invalid_request_error / headers_too_large */
  W2A_GWE_NO_ACCOUNT,        /* 429 rate_limit_error / accounts_exhausted (+Retry-After) */
  W2A_GWE_POOL_EMPTY,        /* 503 server_error / no_accounts */
  W2A_GWE_UPSTREAM,          /* 502 api_error / upstream_error */
  W2A_GWE_UPSTREAM_REJECTED, /* 502 api_error / upstream_rejected (4xx the request caused) */
  W2A_GWE_UPSTREAM_EMPTY,    /* 502 api_error / upstream_empty_response */
  W2A_GWE_UPSTREAM_QUOTA,    /* 429 rate_limit_error / insufficient_quota */
  W2A_GWE_CONNECT,           /* 502 api_error / upstream_connect_failed */
  W2A_GWE_TIMEOUT_CONNECT,   /* 504 timeout_error / connect_timeout */
  W2A_GWE_TIMEOUT_FIRST,     /* 504 timeout_error / first_event_timeout */
  W2A_GWE_TIMEOUT_IDLE,      /* 504 timeout_error / idle_timeout */
  W2A_GWE_TIMEOUT_TOTAL,     /* 504 timeout_error / total_timeout */
  W2A_GWE_TOO_LARGE_OUT,     /* 502 api_error / response_too_large */
  W2A_GWE_SHUTTING_DOWN,     /* 503 server_error / shutting_down */
  W2A_GWE_NOT_READY,         /* 503 server_error / not_ready */
  W2A_GWE_INTERNAL,          /* 500 server_error / internal_error */
  W2A_GWE__COUNT
} w2a_gw_errkind;

typedef struct w2a_gw_error {
  w2a_gw_errkind kind;
  char message[512];
  char param[128];        /* "" when no single parameter is at fault */
  uint64_t retry_after_s; /* Retry-After for 429/503; 0 = none */
} w2a_gw_error;

/* Fill e and return W2A_EINVAL (so validators can `return w2a_gw_errorf(...)`). */
int w2a_gw_errorf(w2a_gw_error *e, w2a_gw_errkind kind, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int w2a_gw_error_status(w2a_gw_errkind kind);
const char *w2a_gw_error_type(w2a_gw_errkind kind);
const char *w2a_gw_error_code(w2a_gw_errkind kind);
/* The kind a server-level status (400/413/431/…) maps to. */
w2a_gw_errkind w2a_gw_error_kind_for_status(int status);

/* Append the JSON object {"message":…,"type":…,"param":…,"code":…} (no wrapper). */
int w2a_gw_error_inner_json(w2a_buf *b, const w2a_gw_error *e);
/* Append {"error":{…}}. */
int w2a_gw_error_json(w2a_buf *b, const w2a_gw_error *e);
/* w2a_http_error_fn for the HTTP server's own replies (413, 431, 400). */
size_t w2a_gw_error_server_body(int status, const char *message, char *out, size_t n);

#endif
