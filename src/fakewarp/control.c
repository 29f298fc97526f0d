/* control.c - see control.h. */
#include "fakewarp/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fakewarp/stream.h"

static int64_t jint(json_object *o, const char *k, int64_t dflt) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && !json_object_is_type(v, json_type_null)
             ? json_object_get_int64(v)
             : dflt;
}
static int jbool(json_object *o, const char *k) { /* -1: absent */
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && !json_object_is_type(v, json_type_null)
             ? json_object_get_boolean(v)
             : -1;
}
static const char *jstr(json_object *o, const char *k) {
  json_object *v;
  return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}

static int account_apply(w2a_fake *f, json_object *o, w2a_err *err) {
  if (!json_object_is_type(o, json_type_object))
    return w2a_errf(err, W2A_EINVAL, "an account must be a JSON object");
  w2a_fake_account_spec sp = {0};
  sp.email = jstr(o, "email");
  sp.refresh_token = jstr(o, "refresh_token");
  sp.scenario = jstr(o, "scenario");
  sp.quota = jint(o, "quota", -1);
  sp.refresh_period_s = jint(o, "refresh_period_s", 0);
  sp.unlimited = jbool(o, "unlimited");
  sp.blocked = jbool(o, "blocked");
  sp.quota_in_stream = jbool(o, "quota_in_stream");
  sp.rotate = jbool(o, "rotate");
  w2a_fake_account *a = NULL;
  int rc = w2a_fake_account_add(&f->st, &sp, &a, err);
  if (rc) return rc;
  int64_t used = jint(o, "used", -1);
  if (used >= 0) a->used = used;
  int rev = jbool(o, "revoked");
  if (rev >= 0) a->revoked = rev;
  int64_t next = jint(o, "next_refresh_in_s", -1);
  if (next >= 0) a->next_refresh_ms = w2a_now_ms() + (uint64_t)next * 1000u;
  return 0;
}

int w2a_fake_accounts_apply(w2a_fake *f, json_object *j, w2a_err *err) {
  if (json_object_is_type(j, json_type_array)) {
    for (size_t i = 0; i < json_object_array_length(j); i++) {
      int rc = account_apply(f, json_object_array_get_idx(j, i), err);
      if (rc) return rc;
    }
    return 0;
  }
  return account_apply(f, j, err);
}

static json_object *accounts_json(w2a_fake *f) {
  json_object *arr = json_object_new_array();
  for (w2a_fake_account *a = f->st.accounts; a; a = a->next)
    json_object_array_add(arr, w2a_fake_account_json(a));
  return arr;
}

static json_object *stats_json(w2a_fake *f) {
  w2a_fake_state *st = &f->st;
  json_object *o = json_object_new_object();
  json_object_object_add(o, "http_requests", json_object_new_uint64(st->http_requests));
  json_object_object_add(o, "ai_requests", json_object_new_uint64(st->ai_requests));
  json_object_object_add(o, "refreshes", json_object_new_uint64(st->refreshes));
  json_object_object_add(o, "graphql", json_object_new_uint64(st->graphql));
  json_object_object_add(o, "unauthorized", json_object_new_uint64(st->unauthorized));
  json_object_object_add(o, "streams_open", json_object_new_uint64(st->streams_open));
  json_object_object_add(o, "streams_done", json_object_new_uint64(st->streams_done));
  json_object_object_add(o, "abandoned", json_object_new_uint64(st->abandoned));
  json_object_object_add(o, "cut", json_object_new_uint64(st->cut));
  json_object_object_add(
      o, "connections", json_object_new_uint64(f->http ? w2a_http_server_connections(f->http) : 0));
  json_object *acc = json_object_new_object();
  for (w2a_fake_account *a = st->accounts; a; a = a->next)
    json_object_object_add(acc, a->email, w2a_fake_account_json(a));
  json_object_object_add(o, "accounts", acc);
  json_object_object_add(o, "abandoned_streams", json_object_get(st->abandoned_log));
  return o;
}

static json_object *requests_json(w2a_fake *f, const char *email) {
  if (email && *email) {
    w2a_fake_account *a = w2a_fake_account_by_email(&f->st, email);
    return a ? w2a_fake_log_json(&a->log, a->email) : json_object_new_array();
  }
  json_object *o = json_object_new_object();
  json_object *acc = json_object_new_object();
  for (w2a_fake_account *a = f->st.accounts; a; a = a->next)
    json_object_object_add(acc, a->email, w2a_fake_log_json(&a->log, a->email));
  json_object_object_add(o, "accounts", acc);
  json_object_object_add(o, "unknown", w2a_fake_log_json(&f->st.unknown_log, NULL));
  return o;
}

static void set_scenario(char **slot, const char *v) {
  free(*slot);
  *slot = strdup(v ? v : "");
}

void w2a_fake_control(w2a_fake *f, w2a_http_req *r) {
  const char *p = r->path + strlen("/_fakewarp");
  int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
  json_object *body = NULL;
  w2a_err err = {0};
  if (post && r->body_len) {
    body = json_tokener_parse(r->body);
    if (!body) {
      w2a_fake_reply_error(r, 400, "body is not JSON");
      return;
    }
  }
  char email[320] = "";
  w2a_http_req_query(r, "email", email, sizeof email);
  if (get && !strcmp(p, "/health")) {
    w2a_fake_reply_text(r, 200, "application/json", "{\"ok\":true}");
  } else if (get && !strcmp(p, "/stats")) {
    w2a_fake_reply_json(r, 200, stats_json(f));
  } else if (get && !strcmp(p, "/requests")) {
    w2a_fake_reply_json(r, 200, requests_json(f, email));
  } else if (get && !strcmp(p, "/accounts")) {
    w2a_fake_reply_json(r, 200, accounts_json(f));
  } else if (post && !strcmp(p, "/accounts")) {
    if (!body || w2a_fake_accounts_apply(f, body, &err))
      w2a_fake_reply_error(r, 400, body ? err.msg : "body required");
    else
      w2a_fake_reply_json(r, 200, accounts_json(f));
  } else if (get && !strcmp(p, "/mailbox")) {
    json_object *out = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(f->st.mailbox); i++) {
      json_object *m = json_object_array_get_idx(f->st.mailbox, i), *e;
      if (!email[0] || (json_object_object_get_ex(m, "email", &e) &&
                        !strcasecmp(json_object_get_string(e), email)))
        json_object_array_add(out, json_object_get(m));
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "messages", out);
    w2a_fake_reply_json(r, 200, o);
  } else if (post && !strcmp(p, "/scenario")) {
    const char *em = body ? jstr(body, "email") : NULL;
    const char *sc = body ? jstr(body, "scenario") : NULL;
    int64_t times = body ? jint(body, "times", 0) : 0;
    if (em) {
      w2a_fake_account *a = w2a_fake_account_by_email(&f->st, em);
      if (!a) {
        w2a_fake_reply_error(r, 404, "no such account");
        goto out;
      }
      if (times > 0) {
        set_scenario(&a->once, sc);
        a->once_left = (int)times;
      } else {
        set_scenario(&a->scenario, sc);
      }
    } else if (times > 0) {
      set_scenario(&f->st.global_once, sc);
      f->st.global_once_left = (int)times;
    } else {
      set_scenario(&f->st.global_scenario, sc);
    }
    w2a_fake_reply_text(r, 200, "application/json", "{\"ok\":true}");
  } else if (post && !strcmp(p, "/reset")) {
    w2a_fake_stream_forget_accounts(f);
    w2a_fake_state_reset(&f->st);
    if (f->initial_accounts) w2a_fake_accounts_apply(f, f->initial_accounts, &err);
    w2a_fake_reply_text(r, 200, "application/json", "{\"ok\":true}");
  } else if (post && !strcmp(p, "/token")) {
    const char *em = body ? jstr(body, "email") : NULL;
    w2a_fake_account *a = em ? w2a_fake_account_by_email(&f->st, em) : NULL;
    if (!a) {
      w2a_fake_reply_error(r, 404, "no such account");
      goto out;
    }
    int64_t exp = 0;
    char *tok = w2a_fake_token_mint(&f->st, a, &exp);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id_token", json_object_new_string(tok ? tok : ""));
    json_object_object_add(o, "exp", json_object_new_int64(exp));
    free(tok);
    w2a_fake_reply_json(r, 200, o);
  } else if (post && !strcmp(p, "/faults")) {
    if (body) f->opts.accept_delay_ms = (int)jint(body, "accept_delay_ms", f->opts.accept_delay_ms);
    if (body) f->st.token_lifetime_s = jint(body, "token_lifetime_s", f->st.token_lifetime_s);
    w2a_fake_reply_text(r, 200, "application/json", "{\"ok\":true}");
  } else {
    w2a_fake_reply_error(r, 404, "no such control route");
  }
out:
  json_object_put(body);
}
