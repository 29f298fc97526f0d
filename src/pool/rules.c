/* rules.c - see rules.h. The defaults come from spec §1.3 (what Warp sends) and §6.4
 * (how peak maps statuses): quota text → quota_exhausted; 401 → refresh and retry;
 * 403 "blocked from using AI" → blocked; other 403 and plain 429 → cool down; 5xx and
 * transport failures → another account, counted towards the failure window; request
 * shape errors → fail the request only. */
#include "rules.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const w2a_rule defaults[] = {
    {0, 0, 0, "quota_limit", "", W2A_ACT_QUOTA, 0, 0},
    {429, 429, 0, "", "No remaining quota", W2A_ACT_QUOTA, 0, 0},
    {429, 429, 0, "", "No AI requests remaining", W2A_ACT_QUOTA, 0, 0},
    {0, 0, 0, "", "reached your credit limit", W2A_ACT_QUOTA, 0, 0},
    {401, 401, 0, "", "", W2A_ACT_RETRY_REFRESH, 0, 0},
    {403, 403, 0, "", "blocked from using AI", W2A_ACT_BLOCK, 0, 0},
    {403, 403, 0, "", "flagged due to the creation of multiple accounts", W2A_ACT_BLOCK, 0, 0},
    {403, 403, 0, "", "", W2A_ACT_COOLDOWN, 0, 1},
    {0, 0, 0, "", "is not allowed for your account", W2A_ACT_RETRY_OTHER, 0, 0},
    {429, 429, 0, "", "", W2A_ACT_COOLDOWN, 60000, 1},
    {400, 400, 0, "", "Invalid request", W2A_ACT_FAIL_REQUEST, 0, 0},
    {400, 400, 0, "", "", W2A_ACT_FAIL_REQUEST, 0, 0},
    {413, 413, 0, "", "", W2A_ACT_FAIL_REQUEST, 0, 0},
    {422, 422, 0, "", "", W2A_ACT_FAIL_REQUEST, 0, 0},
    {0, 0, 0, "max_token_limit", "", W2A_ACT_FAIL_REQUEST, 0, 0},
    {0, 0, 0, "context_window_exceeded", "", W2A_ACT_FAIL_REQUEST, 0, 0},
    {0, 0, 0, "llm_unavailable", "", W2A_ACT_RETRY_OTHER, 0, 0},
    {0, 0, 0, "internal_error", "", W2A_ACT_RETRY_OTHER, 0, 0},
    {500, 599, 0, "", "", W2A_ACT_RETRY_OTHER, 0, 1},
    {0, 0, 1, "", "", W2A_ACT_RETRY_OTHER, 0, 1},
};
#define NDEF (sizeof defaults / sizeof defaults[0])

/* The last resort: anything else is tried on another account and counted. */
static const w2a_rule catch_all = {0, 0, 0, "", "", W2A_ACT_RETRY_OTHER, 0, 1};

static const char *const action_names[] = {
    [W2A_ACT_NONE] = "none",
    [W2A_ACT_RETRY_REFRESH] = "refresh_retry",
    [W2A_ACT_COOLDOWN] = "cooldown",
    [W2A_ACT_QUOTA] = "quota",
    [W2A_ACT_BLOCK] = "block",
    [W2A_ACT_INVALID] = "invalid",
    [W2A_ACT_FAIL_REQUEST] = "fail_request",
    [W2A_ACT_RETRY_OTHER] = "retry_other",
};

const char *w2a_action_name(w2a_action a) {
  return (unsigned)a < sizeof action_names / sizeof action_names[0] ? action_names[a] : "?";
}

int w2a_action_parse(const char *s) {
  for (size_t i = 0; s && i < sizeof action_names / sizeof action_names[0]; i++)
    if (!strcasecmp(s, action_names[i])) return (int)i;
  return -1;
}

void w2a_rules_free(w2a_rules *r) {
  free(r->v);
  r->v = NULL;
  r->n = 0;
}

static int append(w2a_rules *r, const w2a_rule *add, size_t n) {
  w2a_rule *v = realloc(r->v, (r->n + n) * sizeof *v);
  if (!v) return W2A_ENOMEM;
  memcpy(v + r->n, add, n * sizeof *v);
  r->v = v;
  r->n += n;
  return 0;
}

int w2a_rules_parse(w2a_rules *r, const char *json, w2a_err *err) {
  int rc = 0;
  json_object *root = json_tokener_parse(json), *arr = NULL, *x;
  w2a_rules out = {0};
  if (!root) return w2a_errf(err, W2A_EINVAL, "error rules: not JSON");
  if (json_object_is_type(root, json_type_array))
    arr = root;
  else if (!json_object_object_get_ex(root, "rules", &arr) ||
           !json_object_is_type(arr, json_type_array)) {
    rc = w2a_errf(err, W2A_EINVAL, "error rules: expected {\"rules\": [...]}");
    goto out;
  }
  for (size_t i = 0; i < json_object_array_length(arr); i++) {
    json_object *o = json_object_array_get_idx(arr, i);
    w2a_rule ru = {0};
    if (!json_object_is_type(o, json_type_object)) {
      rc = w2a_errf(err, W2A_EINVAL, "error rules[%zu]: not an object", i);
      goto out;
    }
    if (json_object_object_get_ex(o, "status", &x))
      ru.status_min = ru.status_max = json_object_get_int(x);
    if (json_object_object_get_ex(o, "status_min", &x)) ru.status_min = json_object_get_int(x);
    if (json_object_object_get_ex(o, "status_max", &x)) ru.status_max = json_object_get_int(x);
    if (ru.status_min && !ru.status_max) ru.status_max = 999;
    if (json_object_object_get_ex(o, "transport", &x)) ru.transport = json_object_get_boolean(x);
    if (json_object_object_get_ex(o, "finish", &x))
      snprintf(ru.finish, sizeof ru.finish, "%s", json_object_get_string(x));
    if (json_object_object_get_ex(o, "match", &x))
      snprintf(ru.match, sizeof ru.match, "%s", json_object_get_string(x));
    if (json_object_object_get_ex(o, "seconds", &x))
      ru.cooldown_ms = (uint64_t)(json_object_get_double(x) * 1000.0);
    if (json_object_object_get_ex(o, "count_failure", &x))
      ru.count_failure = json_object_get_boolean(x);
    int a = -1;
    if (json_object_object_get_ex(o, "action", &x)) a = w2a_action_parse(json_object_get_string(x));
    if (a < 0) {
      rc = w2a_errf(err, W2A_EINVAL,
                    "error rules[%zu]: action must be one of refresh_retry,"
                    " cooldown, quota, block, invalid, fail_request,"
                    " retry_other, none",
                    i);
      goto out;
    }
    ru.action = (w2a_action)a;
    if ((rc = append(&out, &ru, 1))) goto out;
  }
  int replace =
      json_object_object_get_ex(root, "replace_defaults", &x) && json_object_get_boolean(x);
  if (!replace && (rc = append(&out, defaults, NDEF))) goto out;
  w2a_rules_free(r);
  *r = out;
  out.v = NULL;
out:
  free(out.v);
  json_object_put(root);
  return rc;
}

int w2a_rules_load(w2a_rules *r, const char *path, w2a_err *err) {
  r->v = NULL;
  r->n = 0;
  if (!path || !*path) return append(r, defaults, NDEF);
  FILE *f = fopen(path, "rb");
  if (!f) return w2a_errf(err, W2A_EIO, "ERROR_RULES_FILE %s: cannot open", path);
  char *buf = malloc(1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (!buf) return W2A_ENOMEM;
  buf[n] = 0;
  int rc = w2a_rules_parse(r, buf, err);
  free(buf);
  if (rc) {
    char m[200];
    snprintf(m, sizeof m, "%.190s", err ? err->msg : "");
    w2a_errf(err, rc, "ERROR_RULES_FILE %s: %s", path, m);
  }
  return rc;
}

const w2a_rule *w2a_rules_match(const w2a_rules *r, const w2a_outcome *o) {
  if (o->ok) return NULL;
  int transport = o->transport_error || o->http_status == 0;
  const char *finish = o->finish && *o->finish && strcmp(o->finish, "done") ? o->finish : NULL;
  for (size_t i = 0; i < r->n; i++) {
    const w2a_rule *ru = &r->v[i];
    if (ru->transport && !transport) continue;
    if (ru->status_min && (o->http_status < ru->status_min || o->http_status > ru->status_max))
      continue;
    if (ru->finish[0] && (!finish || strcasecmp(ru->finish, finish))) continue;
    if (ru->match[0] && !(o->body && strcasestr(o->body, ru->match))) continue;
    /* A status-less, finish-less rule with text applies to any failure with that text. */
    return ru;
  }
  return &catch_all;
}
