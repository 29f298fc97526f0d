/* auth.c - see auth.h. */
#include "fakewarp/auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"

#define FIELD_MAX 4096

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int w2a_fake_form_get(const char *body, size_t len, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  const char *p = body, *end = body + len;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *e = amp ? amp : end;
    if ((size_t)(e - p) > nl && !memcmp(p, name, nl) && p[nl] == '=') {
      size_t o = 0;
      for (const char *q = p + nl + 1; q < e && o + 1 < n; q++) {
        int c = (unsigned char)*q;
        if (c == '+') {
          c = ' ';
        } else if (c == '%' && e - q >= 3 && hexval(q[1]) >= 0 && hexval(q[2]) >= 0) {
          c = hexval(q[1]) * 16 + hexval(q[2]);
          q += 2;
        }
        out[o++] = (char)c;
      }
      out[o] = 0;
      return 1;
    }
    p = amp ? amp + 1 : end;
  }
  return 0;
}

/* Read a field from a JSON or form body. */
static int body_get(const w2a_http_req *r, json_object *j, const char *name, char *out, size_t n) {
  if (j) {
    json_object *v;
    if (!json_object_object_get_ex(j, name, &v) || json_object_is_type(v, json_type_null)) return 0;
    snprintf(out, n, "%s", json_object_get_string(v));
    return 1;
  }
  return w2a_fake_form_get(r->body, r->body_len, name, out, n);
}

static json_object *parse_json_body(const w2a_http_req *r) {
  size_t i = 0;
  while (i < r->body_len && isspace((unsigned char)r->body[i]))
    i++;
  if (i >= r->body_len || r->body[i] != '{') return NULL;
  json_object *j = json_tokener_parse(r->body);
  if (j && !json_object_is_type(j, json_type_object)) {
    json_object_put(j);
    return NULL;
  }
  return j;
}

static void google_error(w2a_http_req *r, int code, const char *message, const char *status) {
  json_object *e = json_object_new_object();
  json_object_object_add(e, "code", json_object_new_int(code));
  json_object_object_add(e, "message", json_object_new_string(message));
  json_object *errs = json_object_new_array();
  json_object *e1 = json_object_new_object();
  json_object_object_add(e1, "message", json_object_new_string(message));
  json_object_object_add(e1, "domain", json_object_new_string("global"));
  json_object_object_add(e1, "reason", json_object_new_string("invalid"));
  json_object_array_add(errs, e1);
  json_object_object_add(e, "errors", errs);
  json_object_object_add(e, "status", json_object_new_string(status));
  json_object *o = json_object_new_object();
  json_object_object_add(o, "error", e);
  w2a_fake_reply_json(r, code, o);
}

/* Google APIs want ?key=; 0 when the request may proceed (else it was answered). */
static int check_key(w2a_fake *f, w2a_http_req *r) {
  char key[256];
  if (!w2a_http_req_query(r, "key", key, sizeof key) || !key[0]) {
    google_error(r, 403,
                 "Method doesn't allow unregistered callers (callers without established "
                 "identity). Please use API Key or other form of API consumer identity to call "
                 "this API.",
                 "PERMISSION_DENIED");
    return -1;
  }
  if (f->opts.api_key && *f->opts.api_key && strcmp(key, f->opts.api_key)) {
    google_error(r, 400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT");
    return -1;
  }
  return 0;
}

void w2a_fake_auth_token(w2a_fake *f, w2a_http_req *r) {
  w2a_fake_state *st = &f->st;
  if (check_key(f, r)) return;
  json_object *j = parse_json_body(r);
  char *grant = malloc(FIELD_MAX), *rt = malloc(FIELD_MAX);
  if (!grant || !rt) {
    w2a_fake_reply_error(r, 500, "out of memory");
    goto out;
  }
  if (!body_get(r, j, "grant_type", grant, FIELD_MAX) || strcmp(grant, "refresh_token")) {
    google_error(r, 400, "INVALID_GRANT_TYPE", "INVALID_ARGUMENT");
    goto out;
  }
  if (!body_get(r, j, "refresh_token", rt, FIELD_MAX) || !rt[0]) {
    google_error(r, 400, "MISSING_REFRESH_TOKEN", "INVALID_ARGUMENT");
    goto out;
  }
  w2a_fake_account *a = w2a_fake_account_by_refresh(st, rt);
  if (!a) {
    google_error(r, 400, "INVALID_REFRESH_TOKEN", "INVALID_ARGUMENT");
    goto out;
  }
  if (a->revoked) {
    google_error(r, 400, "TOKEN_EXPIRED", "INVALID_ARGUMENT");
    goto out;
  }
  if (a->rotate) {
    char *nrt = w2a_fake_refresh_token_new();
    if (nrt) {
      free(a->refresh_token);
      a->refresh_token = nrt;
    }
  }
  int64_t exp = 0;
  char *tok = w2a_fake_token_mint(st, a, &exp);
  if (!tok) {
    w2a_fake_reply_error(r, 500, "token mint failed");
    goto out;
  }
  st->refreshes++;
  a->refreshes++;
  char lt[24];
  snprintf(lt, sizeof lt, "%lld", (long long)st->token_lifetime_s);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "access_token", json_object_new_string(tok));
  json_object_object_add(o, "expires_in", json_object_new_string(lt));
  json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
  json_object_object_add(o, "refresh_token", json_object_new_string(a->refresh_token));
  json_object_object_add(o, "id_token", json_object_new_string(tok));
  json_object_object_add(o, "user_id", json_object_new_string(a->local_id));
  json_object_object_add(o, "project_id", json_object_new_string(W2A_FAKE_PROJECT));
  free(tok);
  w2a_fake_reply_json(r, 200, o);
out:
  free(grant);
  free(rt);
  json_object_put(j);
}

void w2a_fake_auth_send_oob(w2a_fake *f, w2a_http_req *r) {
  if (check_key(f, r)) return;
  json_object *j = parse_json_body(r);
  char type[64] = "", email[320] = "", cont[1024] = "https://app.warp.dev/login";
  if (!j) {
    google_error(r, 400, "INVALID_JSON_PAYLOAD", "INVALID_ARGUMENT");
    return;
  }
  body_get(r, j, "requestType", type, sizeof type);
  body_get(r, j, "email", email, sizeof email);
  body_get(r, j, "continueUrl", cont, sizeof cont);
  json_object_put(j);
  if (strcmp(type, "EMAIL_SIGNIN")) {
    google_error(r, 400, "INVALID_REQ_TYPE", "INVALID_ARGUMENT");
    return;
  }
  if (!email[0] || !strchr(email, '@')) {
    google_error(r, 400, "INVALID_EMAIL", "INVALID_ARGUMENT");
    return;
  }
  unsigned char raw[30];
  char code[48];
  w2a_random(raw, sizeof raw);
  w2a_b64_encode(raw, sizeof raw, code, 1, 0);
  char link[2048];
  snprintf(link, sizeof link,
           "https://" W2A_FAKE_PROJECT ".firebaseapp.com/__/auth/action?apiKey=fake&mode=signIn"
           "&oobCode=%s&continueUrl=%s&lang=en",
           code, cont);
  json_object *m = json_object_new_object();
  json_object_object_add(m, "email", json_object_new_string(email));
  json_object_object_add(m, "oobCode", json_object_new_string(code));
  json_object_object_add(m, "link", json_object_new_string(link));
  json_object_object_add(m, "sent_at_ms", json_object_new_uint64(w2a_now_ms()));
  json_object_object_add(m, "used", json_object_new_boolean(0));
  json_object_array_add(f->st.mailbox, m);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "kind",
                         json_object_new_string("identitytoolkit#GetOobConfirmationCodeResponse"));
  json_object_object_add(o, "email", json_object_new_string(email));
  w2a_fake_reply_json(r, 200, o);
}

void w2a_fake_auth_email_link(w2a_fake *f, w2a_http_req *r) {
  w2a_fake_state *st = &f->st;
  if (check_key(f, r)) return;
  json_object *j = parse_json_body(r);
  char email[320] = "", code[128] = "";
  if (!j) {
    google_error(r, 400, "INVALID_JSON_PAYLOAD", "INVALID_ARGUMENT");
    return;
  }
  body_get(r, j, "email", email, sizeof email);
  body_get(r, j, "oobCode", code, sizeof code);
  json_object_put(j);
  if (!email[0]) {
    google_error(r, 400, "INVALID_EMAIL", "INVALID_ARGUMENT");
    return;
  }
  json_object *hit = NULL;
  size_t n = json_object_array_length(st->mailbox);
  for (size_t i = 0; i < n; i++) {
    json_object *m = json_object_array_get_idx(st->mailbox, i), *c, *e, *u;
    if (json_object_object_get_ex(m, "oobCode", &c) && !strcmp(json_object_get_string(c), code) &&
        json_object_object_get_ex(m, "email", &e) && json_object_object_get_ex(m, "used", &u)) {
      if (!json_object_get_boolean(u) && !strcasecmp(json_object_get_string(e), email)) hit = m;
      break;
    }
  }
  if (!hit) {
    google_error(r, 400, "INVALID_OOB_CODE", "INVALID_ARGUMENT");
    return;
  }
  json_object_object_add(hit, "used", json_object_new_boolean(1));
  w2a_fake_account *a = w2a_fake_account_by_email(st, email);
  int is_new = a == NULL;
  if (!a) {
    w2a_fake_account_spec sp = {.email = email,
                                .quota = -1,
                                .unlimited = -1,
                                .blocked = -1,
                                .quota_in_stream = -1,
                                .rotate = -1};
    if (w2a_fake_account_add(st, &sp, &a, NULL)) {
      w2a_fake_reply_error(r, 500, "out of memory");
      return;
    }
  }
  int64_t exp = 0;
  char *tok = w2a_fake_token_mint(st, a, &exp);
  if (!tok) {
    w2a_fake_reply_error(r, 500, "token mint failed");
    return;
  }
  char lt[24];
  snprintf(lt, sizeof lt, "%lld", (long long)st->token_lifetime_s);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "kind",
                         json_object_new_string("identitytoolkit#EmailLinkSigninResponse"));
  json_object_object_add(o, "idToken", json_object_new_string(tok));
  json_object_object_add(o, "email", json_object_new_string(a->email));
  json_object_object_add(o, "refreshToken", json_object_new_string(a->refresh_token));
  json_object_object_add(o, "expiresIn", json_object_new_string(lt));
  json_object_object_add(o, "localId", json_object_new_string(a->local_id));
  json_object_object_add(o, "isNewUser", json_object_new_boolean(is_new));
  free(tok);
  w2a_fake_reply_json(r, 200, o);
}

void w2a_fake_auth_client_login(w2a_fake *f, w2a_http_req *r) {
  const char *tok = w2a_fake_bearer(r);
  w2a_fake_account *a = NULL;
  if (!tok || w2a_fake_token_check(&f->st, tok, &a, NULL)) {
    w2a_fake_reply_error(r, 403, "Forbidden");
    return;
  }
  char hdr[128], id[37];
  w2a_fake_uuid4(id);
  snprintf(hdr, sizeof hdr, "set-cookie: rl_anonymous_id=%s; Domain=warp.dev; Path=/\r\n", id);
  w2a_http_respond(r, 204, NULL, hdr, "", 0);
}
