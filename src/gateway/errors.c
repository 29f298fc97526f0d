/* errors.c - kind → (status, type, code) table and the OpenAI error body.
 *
 * The types follow OpenAI's vocabulary where one fits (invalid_request_error,
 * authentication_error, permission_error, rate_limit_error, api_error, server_error);
 * timeouts get their own "timeout_error" type so a client can tell them from upstream
 * failures without parsing the message. */
#include "gateway/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static const struct {
  int status;
  const char *type;
  const char *code;
} kinds[W2A_GWE__COUNT] = {
    [W2A_GWE_NONE] = {200, "", NULL},
    [W2A_GWE_BAD_REQUEST] = {400, "invalid_request_error", "invalid_request"},
    [W2A_GWE_INVALID_JSON] = {400, "invalid_request_error", "invalid_json"},
    [W2A_GWE_UNSUPPORTED] = {400, "invalid_request_error", "unsupported_content"},
    [W2A_GWE_UNAUTHORIZED] = {401, "authentication_error", "invalid_api_key"},
    [W2A_GWE_ADMIN_AUTH] = {401, "authentication_error", "invalid_admin_token"},
    [W2A_GWE_ADMIN_DISABLED] = {403, "permission_error", "admin_disabled"},
    [W2A_GWE_NOT_FOUND] = {404, "invalid_request_error", "not_found"},
    [W2A_GWE_MODEL_NOT_FOUND] = {404, "invalid_request_error", "model_not_found"},
    [W2A_GWE_METHOD] = {405, "invalid_request_error", "method_not_allowed"},
    [W2A_GWE_BODY_TOO_LARGE] = {413, "invalid_request_error", "request_too_large"},
    [W2A_GWE_HEADER_TOO_LARGE] = {431, "invalid_request_error", "headers_too_large"},
    [W2A_GWE_NO_ACCOUNT] = {429, "rate_limit_error", "accounts_exhausted"},
    [W2A_GWE_POOL_EMPTY] = {503, "server_error", "no_accounts"},
    [W2A_GWE_UPSTREAM] = {502, "api_error", "upstream_error"},
    [W2A_GWE_UPSTREAM_REJECTED] = {502, "api_error", "upstream_rejected"},
    [W2A_GWE_UPSTREAM_EMPTY] = {502, "api_error", "upstream_empty_response"},
    [W2A_GWE_UPSTREAM_QUOTA] = {429, "rate_limit_error", "insufficient_quota"},
    [W2A_GWE_CONNECT] = {502, "api_error", "upstream_connect_failed"},
    [W2A_GWE_TIMEOUT_CONNECT] = {504, "timeout_error", "connect_timeout"},
    [W2A_GWE_TIMEOUT_FIRST] = {504, "timeout_error", "first_event_timeout"},
    [W2A_GWE_TIMEOUT_IDLE] = {504, "timeout_error", "idle_timeout"},
    [W2A_GWE_TIMEOUT_TOTAL] = {504, "timeout_error", "total_timeout"},
    [W2A_GWE_TOO_LARGE_OUT] = {502, "api_error", "response_too_large"},
    [W2A_GWE_SHUTTING_DOWN] = {503, "server_error", "shutting_down"},
    [W2A_GWE_NOT_READY] = {503, "server_error", "not_ready"},
    [W2A_GWE_INTERNAL] = {500, "server_error", "internal_error"},
};

static int valid(w2a_gw_errkind k) { return k > W2A_GWE_NONE && k < W2A_GWE__COUNT; }

int w2a_gw_errorf(w2a_gw_error *e, w2a_gw_errkind kind, const char *param, const char *fmt, ...) {
  va_list ap;
  if (!e) return W2A_EINVAL;
  e->kind = kind;
  e->retry_after_s = 0;
  snprintf(e->param, sizeof e->param, "%s", param ? param : "");
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return W2A_EINVAL;
}

int w2a_gw_error_status(w2a_gw_errkind k) { return valid(k) ? kinds[k].status : 500; }
const char *w2a_gw_error_type(w2a_gw_errkind k) {
  return valid(k) ? kinds[k].type : "server_error";
}
const char *w2a_gw_error_code(w2a_gw_errkind k) {
  return valid(k) ? kinds[k].code : "internal_error";
}

w2a_gw_errkind w2a_gw_error_kind_for_status(int status) {
  switch (status) {
  case 400: return W2A_GWE_BAD_REQUEST;
  case 401: return W2A_GWE_UNAUTHORIZED;
  case 404: return W2A_GWE_NOT_FOUND;
  case 405: return W2A_GWE_METHOD;
  case 413: return W2A_GWE_BODY_TOO_LARGE;
  case 431: return W2A_GWE_HEADER_TOO_LARGE;
  case 503: return W2A_GWE_SHUTTING_DOWN;
  default: return status >= 500 ? W2A_GWE_INTERNAL : W2A_GWE_BAD_REQUEST;
  }
}

int w2a_gw_error_inner_json(w2a_buf *b, const w2a_gw_error *e) {
  const char *code = w2a_gw_error_code(e->kind);
  int rc = w2a_buf_puts(b, "{\"message\":");
  if (!rc) rc = w2a_buf_put_json_str(b, e->message, strlen(e->message));
  if (!rc) rc = w2a_buf_puts(b, ",\"type\":");
  if (!rc)
    rc = w2a_buf_put_json_str(b, w2a_gw_error_type(e->kind), strlen(w2a_gw_error_type(e->kind)));
  if (!rc) rc = w2a_buf_puts(b, ",\"param\":");
  if (!rc)
    rc =
        e->param[0] ? w2a_buf_put_json_str(b, e->param, strlen(e->param)) : w2a_buf_puts(b, "null");
  if (!rc) rc = w2a_buf_puts(b, ",\"code\":");
  if (!rc) rc = code ? w2a_buf_put_json_str(b, code, strlen(code)) : w2a_buf_puts(b, "null");
  if (!rc) rc = w2a_buf_putc(b, '}');
  return rc;
}

int w2a_gw_error_json(w2a_buf *b, const w2a_gw_error *e) {
  int rc = w2a_buf_puts(b, "{\"error\":");
  if (!rc) rc = w2a_gw_error_inner_json(b, e);
  if (!rc) rc = w2a_buf_puts(b, "}\n");
  return rc;
}

size_t w2a_gw_error_server_body(int status, const char *message, char *out, size_t n) {
  w2a_gw_error e;
  w2a_buf b;
  size_t len = 0;
  if (!n) return 0;
  w2a_gw_errorf(&e, w2a_gw_error_kind_for_status(status), NULL, "%s",
                message ? message : "request rejected");
  w2a_buf_init(&b, n > 1 ? n - 1 : 1);
  if (!w2a_gw_error_json(&b, &e)) {
    len = b.len;
    memcpy(out, b.data, len);
  }
  out[len < n ? len : n - 1] = 0;
  w2a_buf_free(&b);
  return len;
}
