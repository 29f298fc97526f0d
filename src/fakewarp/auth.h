/* auth.h - the sign-in side: refresh-token exchange (Warp's /proxy/token and Google's
 * securetoken /v1/token, spec §3.2), email-link sign-in (identitytoolkit
 * /v1/accounts:sendOobCode and :signInWithEmailLink, spec §3.4) with a test mailbox,
 * and Warp's /client/login. Errors use Google's shape
 * {"error":{"code","message","status"}} with the real message codes
 * (INVALID_REFRESH_TOKEN, TOKEN_EXPIRED, INVALID_OOB_CODE, ...). */
#ifndef W2A_FAKE_AUTH_H
#define W2A_FAKE_AUTH_H

#include "fakewarp/fakewarp.h"

void w2a_fake_auth_token(w2a_fake *f, w2a_http_req *r);      /* /proxy/token, /v1/token */
void w2a_fake_auth_send_oob(w2a_fake *f, w2a_http_req *r);   /* :sendOobCode */
void w2a_fake_auth_email_link(w2a_fake *f, w2a_http_req *r); /* :signInWithEmailLink */
void w2a_fake_auth_client_login(w2a_fake *f, w2a_http_req *r);

/* Value of `name` in an application/x-www-form-urlencoded body, percent-decoded into
 * out (cap n); 1 when present. */
int w2a_fake_form_get(const char *body, size_t len, const char *name, char *out, size_t n);

#endif
