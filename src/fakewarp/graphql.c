/* graphql.c - see graphql.h. */
#include "fakewarp/graphql.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "fakewarp/catalog.h"

static void rfc3339(uint64_t ms, char *out, size_t n) {
  time_t t = (time_t)(ms / 1000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, n, "%s.%06uZ", base, (unsigned)(ms % 1000u) * 1000u);
}

static const char *period_name(int64_t s) {
  if (s >= 28 * 86400) return "MONTHLY";
  if (s >= 14 * 86400) return "EVERY_TWO_WEEKS";
  if (s >= 7 * 86400) return "WEEKLY";
  return "DAILY";
}

/* {"data":{"user":{"__typename":"UserOutput","user":<inner>}}} */
static json_object *user_output(json_object *inner) {
  json_object *u = json_object_new_object();
  json_object_object_add(u, "__typename", json_object_new_string("UserOutput"));
  json_object_object_add(u, "user", inner);
  json_object *d = json_object_new_object();
  json_object_object_add(d, "user", u);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "data", d);
  return o;
}

static json_object *limit_info(w2a_fake *f, w2a_fake_account *a) {
  w2a_fake_account_quota_ok(&f->st, a, w2a_now_ms()); /* roll the window over if due */
  char when[48];
  rfc3339(a->next_refresh_ms, when, sizeof when);
  json_object *l = json_object_new_object();
  json_object_object_add(l, "isUnlimited", json_object_new_boolean(a->unlimited));
  json_object_object_add(l, "nextRefreshTime", json_object_new_string(when));
  json_object_object_add(l, "requestLimit", json_object_new_int64(a->quota_limit));
  json_object_object_add(l, "requestsUsedSinceLastRefresh", json_object_new_int64(a->used));
  json_object_object_add(l, "requestLimitRefreshDuration",
                         json_object_new_string(period_name(a->refresh_period_s)));
  json_object_object_add(l, "isUnlimitedAutosuggestions", json_object_new_boolean(0));
  json_object_object_add(l, "acceptedAutosuggestionsLimit", json_object_new_int(50));
  json_object_object_add(l, "acceptedAutosuggestionsSinceLastRefresh", json_object_new_int(0));
  json_object_object_add(l, "isUnlimitedVoice", json_object_new_boolean(0));
  json_object_object_add(l, "voiceRequestLimit", json_object_new_int(10));
  json_object_object_add(l, "voiceRequestsUsedSinceLastRefresh", json_object_new_int(0));
  json_object_object_add(l, "__typename", json_object_new_string("RequestLimitInfo"));
  json_object *inner = json_object_new_object();
  json_object_object_add(inner, "requestLimitInfo", l);
  return user_output(inner);
}

static json_object *model_choices(void) {
  json_object *fmc = json_object_new_object();
  json_object_object_add(fmc, "agentMode", w2a_fake_catalog_json());
  json_object *ws = json_object_new_object();
  json_object_object_add(ws, "featureModelChoice", fmc);
  json_object *arr = json_object_new_array();
  json_object_array_add(arr, ws);
  json_object *inner = json_object_new_object();
  json_object_object_add(inner, "workspaces", arr);
  return user_output(inner);
}

static json_object *get_user(w2a_fake_account *a) {
  json_object *bm = json_object_new_object();
  json_object_object_add(bm, "__typename", json_object_new_string("BillingMetadata"));
  json_object_object_add(bm, "customerType", json_object_new_string("FREE"));
  json_object *pr = json_object_new_object();
  json_object_object_add(pr, "email", json_object_new_string(a->email));
  json_object_object_add(pr, "uid", json_object_new_string(a->local_id));
  json_object_object_add(pr, "displayName", NULL);
  json_object_object_add(pr, "photoUrl", NULL);
  json_object_object_add(pr, "needsSsoLink", json_object_new_boolean(0));
  json_object *inner = json_object_new_object();
  json_object_object_add(inner, "billingMetadata", bm);
  json_object_object_add(inner, "profile", pr);
  json_object_object_add(inner, "isOnboarded", json_object_new_boolean(1));
  json_object_object_add(inner, "isOnWorkDomain", json_object_new_boolean(0));
  return user_output(inner);
}

static json_object *get_or_create(w2a_fake_account *a) {
  json_object *g = json_object_new_object();
  json_object_object_add(g, "__typename", json_object_new_string("GetOrCreateUserOutput"));
  json_object_object_add(g, "uid", json_object_new_string(a->local_id));
  json_object_object_add(g, "isOnboarded", json_object_new_boolean(1));
  json_object *d = json_object_new_object();
  json_object_object_add(d, "getOrCreateUser", g);
  json_object *o = json_object_new_object();
  json_object_object_add(o, "data", d);
  return o;
}

void w2a_fake_graphql(w2a_fake *f, w2a_http_req *r) {
  w2a_fake_state *st = &f->st;
  char op[128] = "";
  if (!w2a_http_req_query(r, "op", op, sizeof op) || !op[0]) {
    json_object *j = json_tokener_parse(r->body ? r->body : "");
    json_object *v;
    if (j && json_object_object_get_ex(j, "operationName", &v))
      snprintf(op, sizeof op, "%s", json_object_get_string(v));
    json_object_put(j);
  }
  const char *tok = w2a_fake_bearer(r);
  w2a_fake_account *a = NULL;
  int64_t exp = 0;
  int rc = tok ? w2a_fake_token_check(st, tok, &a, &exp) : W2A_EAUTH;
  if (rc == W2A_ESTATE) {
    char msg[96];
    snprintf(msg, sizeof msg, "ID token has expired at: %lld", (long long)exp);
    w2a_fake_reply_error(r, 401, msg);
    return;
  }
  if (rc) {
    w2a_fake_reply_error(r, 401, "Unauthorized");
    return;
  }
  st->graphql++;
  a->graphql++;
  json_object *o;
  if (!strcmp(op, "GetRequestLimitInfo")) {
    o = limit_info(f, a);
  } else if (!strcmp(op, "GetFeatureModelChoices")) {
    o = model_choices();
  } else if (!strcmp(op, "GetUser")) {
    o = get_user(a);
  } else if (!strcmp(op, "GetOrCreateUser")) {
    o = get_or_create(a);
  } else {
    char msg[192];
    snprintf(msg, sizeof msg, "Unknown operation: %s", op);
    json_object *e = json_object_new_object();
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object *errs = json_object_new_array();
    json_object_array_add(errs, e);
    o = json_object_new_object();
    json_object_object_add(o, "errors", errs);
    json_object_object_add(o, "data", NULL);
  }
  w2a_fake_reply_json(r, 200, o);
}
