/* models.c - the model list: Warp's own catalog when we have it, a built-in list when
 * we do not, plus aliases.
 *
 * The catalog comes from GraphQL GetFeatureModelChoices (spec §4.3), asked with a
 * leased account's token. It is cached for MODELS_CACHE_TTL and refreshed in the
 * background when a request finds it stale (single flight; a failed fetch is retried
 * after a minute, and until then the previous list, or the built-in one, is served).
 * The built-in list is the union of the ids the public proxies list (spec §4.2).
 *
 * Aliases: MODEL_ALIASES ("alias=model,…") first, then the built-in spelling fixes
 * (claude-4.5-sonnet → claude-4-5-sonnet, spec §7 item 13). An alias is trusted: its
 * target is sent to Warp even when the catalog does not list it (the operator asked). */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/internal.h"

#define FETCH_MAX_BYTES (4u << 20)
#define FETCH_TIMEOUT_MS 15000
#define RETRY_AFTER_FAILURE_MS 60000

static const char *const builtin[] = {"auto",
                                      "auto-efficient",
                                      "auto-genius",
                                      "warp-basic",
                                      "claude-4-sonnet",
                                      "claude-4-opus",
                                      "claude-4.1-opus",
                                      "claude-4-5-haiku",
                                      "claude-4-5-opus",
                                      "claude-4-5-opus-thinking",
                                      "claude-4-5-sonnet",
                                      "claude-4-5-sonnet-thinking",
                                      "claude-4-6-opus-high",
                                      "claude-4-6-opus-max",
                                      "claude-4-6-sonnet-high",
                                      "claude-4-6-sonnet-max",
                                      "gemini-2.5-pro",
                                      "gemini-3-pro",
                                      "glm-47-fireworks",
                                      "gpt-4o",
                                      "gpt-4.1",
                                      "o3",
                                      "o4-mini",
                                      "gpt-5",
                                      "gpt-5-low-reasoning",
                                      "gpt-5 (high reasoning)",
                                      "gpt-5-1-low-reasoning",
                                      "gpt-5-1-medium-reasoning",
                                      "gpt-5-1-high-reasoning",
                                      "gpt-5-1-codex-low",
                                      "gpt-5-1-codex-medium",
                                      "gpt-5-1-codex-high",
                                      "gpt-5-1-codex-max-low",
                                      "gpt-5-1-codex-max-medium",
                                      "gpt-5-1-codex-max-high",
                                      "gpt-5-1-codex-max-xhigh",
                                      "gpt-5-2-low",
                                      "gpt-5-2-medium",
                                      "gpt-5-2-high",
                                      "gpt-5-2-xhigh",
                                      "gpt-5-2-codex-low",
                                      "gpt-5-2-codex-medium",
                                      "gpt-5-2-codex-high",
                                      "gpt-5-2-codex-xhigh",
                                      "gpt-5-3-codex-low",
                                      "gpt-5-3-codex-medium",
                                      "gpt-5-3-codex-high",
                                      "gpt-5-3-codex-xhigh"};

static const char *const builtin_alias[][2] = {
    {"claude-4.5-sonnet", "claude-4-5-sonnet"},
    {"claude-4.5-opus", "claude-4-5-opus"},
    {"claude-4.5-haiku", "claude-4-5-haiku"},
    {"claude-4.1-sonnet", "claude-4-sonnet"},
};

struct w2a_gw_models {
  w2a_gateway *g;
  json_object *catalog; /* array of OpenAI model objects from Warp; NULL: built-in */
  uint64_t fetched_ms;  /* when the catalog (or the last failure) was recorded */
  int64_t created;
  int busy, closing;
  char token[4096]; /* the ID token of the account the catalog is asked with */
  void (*done)(void *ud);
  void *done_ud;
  char body[2048];
};

/* ---- aliases ----------------------------------------------------------------------- */

/* Look `name` up in "a=b,c=d"; copy the target into out. */
static int cfg_alias(const char *list, const char *name, char *out, size_t n) {
  const char *p = list;
  size_t nl = strlen(name);
  while (p && *p) {
    const char *end = strchr(p, ','), *eq;
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && (*p == ' ' || *p == '\t'))
      p++, len--;
    eq = memchr(p, '=', len);
    if (eq) {
      size_t kl = (size_t)(eq - p), vl = len - kl - 1;
      while (kl && p[kl - 1] == ' ')
        kl--;
      if (kl == nl && !memcmp(p, name, nl)) {
        const char *v = eq + 1;
        while (vl && *v == ' ')
          v++, vl--;
        while (vl && v[vl - 1] == ' ')
          vl--;
        snprintf(out, n, "%.*s", (int)vl, v);
        return 1;
      }
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}

static int listed(const w2a_gw_models *m, const char *id) {
  size_t i;
  if (m->catalog) {
    for (i = 0; i < json_object_array_length(m->catalog); i++) {
      json_object *idv;
      if (json_object_object_get_ex(json_object_array_get_idx(m->catalog, i), "id", &idv) &&
          !strcmp(json_object_get_string(idv), id))
        return 1;
    }
    return 0;
  }
  for (i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
    if (!strcmp(builtin[i], id)) return 1;
  return 0;
}

int w2a_gw_models_resolve(w2a_gw_models *m, const char *name, char *out, size_t n) {
  size_t i;
  w2a_gw_models_refresh(m);
  if (cfg_alias(m->g->cfg->model_aliases, name, out, n)) return 0;
  if (listed(m, name)) {
    snprintf(out, n, "%s", name);
    return 0;
  }
  for (i = 0; i < sizeof builtin_alias / sizeof builtin_alias[0]; i++)
    if (!strcmp(builtin_alias[i][0], name) && listed(m, builtin_alias[i][1])) {
      snprintf(out, n, "%s", builtin_alias[i][1]);
      return 0;
    }
  return W2A_ENOTFOUND;
}

/* ---- catalog fetch ----------------------------------------------------------------- */

static json_object *find_agent_mode(json_object *o, int depth) {
  json_object *v;
  if (!o || depth > 12) return NULL;
  if (json_object_is_type(o, json_type_object)) {
    if (json_object_object_get_ex(o, "agentMode", &v) &&
        json_object_object_get_ex(v, "choices", NULL))
      return v;
    {
      json_object_object_foreach(o, k, val) {
        json_object *r = find_agent_mode(val, depth + 1);
        (void)k;
        if (r) return r;
      }
    }
  } else if (json_object_is_type(o, json_type_array)) {
    size_t i;
    for (i = 0; i < json_object_array_length(o); i++) {
      json_object *r = find_agent_mode(json_object_array_get_idx(o, i), depth + 1);
      if (r) return r;
    }
  }
  return NULL;
}

static void copy_field(json_object *dst, const char *dk, json_object *src, const char *sk) {
  json_object *v;
  if (json_object_object_get_ex(src, sk, &v) && v && !json_object_is_type(v, json_type_null))
    json_object_object_add(dst, dk, json_object_get(v));
}

/* agentMode.choices → OpenAI model objects. NULL when the answer has no catalog. */
static json_object *parse_catalog(const char *body, size_t len, int64_t created) {
  json_object *root = json_tokener_parse(body), *am, *choices, *arr = NULL;
  size_t i;
  (void)len;
  if (!root) return NULL;
  am = find_agent_mode(root, 0);
  if (am && json_object_object_get_ex(am, "choices", &choices) &&
      json_object_is_type(choices, json_type_array) && json_object_array_length(choices)) {
    arr = json_object_new_array();
    for (i = 0; i < json_object_array_length(choices); i++) {
      json_object *c = json_object_array_get_idx(choices, i), *id, *o;
      if (!json_object_object_get_ex(c, "id", &id) || !json_object_is_type(id, json_type_string))
        continue;
      o = json_object_new_object();
      json_object_object_add(o, "id", json_object_get(id));
      json_object_object_add(o, "object", json_object_new_string("model"));
      json_object_object_add(o, "created", json_object_new_int64(created));
      json_object_object_add(o, "owned_by", json_object_new_string("warp"));
      copy_field(o, "display_name", c, "displayName");
      copy_field(o, "description", c, "description");
      copy_field(o, "provider", c, "provider");
      copy_field(o, "reasoning_level", c, "reasoningLevel");
      copy_field(o, "vision_supported", c, "visionSupported");
      copy_field(o, "disable_reason", c, "disableReason");
      json_object_array_add(arr, o);
    }
    if (!json_object_array_length(arr)) {
      json_object_put(arr);
      arr = NULL;
    }
  }
  json_object_put(root);
  return arr;
}

/* Try again in a minute (or at the TTL, if that is shorter). */
static void retry_later(w2a_gw_models *m) {
  uint64_t ttl = (uint64_t)m->g->cfg->models_cache_ms, now = w2a_now_ms();
  uint64_t wait = ttl < RETRY_AFTER_FAILURE_MS ? ttl : RETRY_AFTER_FAILURE_MS;
  m->fetched_ms = now - ttl + wait;
}

static void fetch_end(w2a_gw_models *m) {
  m->busy = 0;
  if (m->closing) {
    void (*done)(void *) = m->done;
    void *ud = m->done_ud;
    json_object_put(m->catalog);
    free(m);
    if (done) done(ud);
  }
}

static void on_fetched(int code, int status, const char *body, size_t len, const char *errmsg,
                       void *ud) {
  w2a_gw_models *m = ud;
  json_object *cat = NULL;
  memset(m->token, 0, sizeof m->token);
  if (!code && status == 200 && body) cat = parse_catalog(body, len, m->created);
  if (cat) {
    json_object_put(m->catalog);
    m->catalog = cat;
    m->fetched_ms = w2a_now_ms();
    W2A_INFO("models: Warp catalog loaded (%zu models)", json_object_array_length(cat));
  } else {
    W2A_WARN("models: catalog fetch failed (%s, HTTP %d); serving the %s list",
             code ? (errmsg ? errmsg : w2a_strerror(code)) : "no catalog in the answer", status,
             m->catalog ? "cached" : "built-in");
    retry_later(m);
  }
  fetch_end(m);
}

static void on_lease(int rc, w2a_lease *lease, const w2a_pool_unavailable *why, void *ud) {
  w2a_gw_models *m = ud;
  const w2a_config *c = m->g->cfg;
  w2a_http_request rq = {0};
  char auth[4200], ver[160], cat[160], name[160], osv[160];
  const char *hdrs[8];
  json_object *b, *vars, *rcx, *cc, *oc;
  int r;
  if (rc || !lease || m->closing) {
    if (lease) w2a_pool_release(m->g->pool, lease);
    if (!m->closing) retry_later(m);
    fetch_end(m);
    return;
  }
  /* Keep only the token: holding the lease for the whole fetch would take a capped
   * account away from completions (and for the full timeout when Warp is unreachable). */
  snprintf(m->token, sizeof m->token, "%s", lease->id_token);
  w2a_pool_release(m->g->pool, lease);
  b = json_object_new_object();
  json_object_object_add(
      b, "query",
      json_object_new_string(
          "query GetFeatureModelChoices($requestContext: RequestContext!) { "
          "user(requestContext: $requestContext) { __typename ... on UserOutput { user { "
          "workspaces { featureModelChoice { agentMode { defaultId choices { displayName "
          "baseModelName id reasoningLevel usageMetadata { creditMultiplier "
          "requestMultiplier } description disableReason visionSupported spec { cost "
          "quality speed } provider } } } } } } } }"));
  vars = json_object_new_object();
  rcx = json_object_new_object();
  cc = json_object_new_object();
  oc = json_object_new_object();
  json_object_object_add(cc, "version", json_object_new_string(c->client_version));
  json_object_object_add(oc, "category", json_object_new_string(c->os_category));
  json_object_object_add(oc, "linuxKernelVersion", NULL);
  json_object_object_add(oc, "name", json_object_new_string(c->os_name));
  json_object_object_add(oc, "version", json_object_new_string(c->os_version));
  json_object_object_add(rcx, "clientContext", cc);
  json_object_object_add(rcx, "osContext", oc);
  json_object_object_add(vars, "requestContext", rcx);
  json_object_object_add(b, "variables", vars);
  json_object_object_add(b, "operationName", json_object_new_string("GetFeatureModelChoices"));
  snprintf(m->body, sizeof m->body, "%s",
           json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
  json_object_put(b);

  snprintf(auth, sizeof auth, "authorization: Bearer %s", m->token);
  snprintf(ver, sizeof ver, "x-warp-client-version: %s", c->client_version);
  snprintf(cat, sizeof cat, "x-warp-os-category: %s", c->os_category);
  snprintf(name, sizeof name, "x-warp-os-name: %s", c->os_name);
  snprintf(osv, sizeof osv, "x-warp-os-version: %s", c->os_version);
  hdrs[0] = auth, hdrs[1] = "content-type: application/json", hdrs[2] = "accept: application/json";
  hdrs[3] = ver, hdrs[4] = cat, hdrs[5] = name, hdrs[6] = osv, hdrs[7] = NULL;
  rq.method = "POST";
  rq.url = m->g->url_graphql;
  rq.headers = hdrs;
  rq.body = m->body;
  rq.body_len = strlen(m->body);
  rq.timeout_ms = FETCH_TIMEOUT_MS;
  r = w2a_http_fetch(m->g->http, &rq, FETCH_MAX_BYTES, on_fetched, m);
  if (r) on_fetched(r, 0, NULL, 0, "could not start the request", m);
}

void w2a_gw_models_refresh(w2a_gw_models *m) {
  uint64_t now = w2a_now_ms();
  if (m->busy || m->closing || !m->g->pool || !m->g->http) return;
  if (m->fetched_ms && now - m->fetched_ms < (uint64_t)m->g->cfg->models_cache_ms) return;
  if (m->g->shutting_down) return;
  m->busy = 1;
  m->fetched_ms = now; /* no second fetch while this one runs, even if it is slow */
  w2a_pool_acquire(m->g->pool, NULL, 0, on_lease, m);
}

/* ---- routes ------------------------------------------------------------------------ */

static json_object *model_list(w2a_gw_models *m) {
  json_object *arr = json_object_new_array();
  const char *p;
  size_t i;
  if (m->catalog) {
    for (i = 0; i < json_object_array_length(m->catalog); i++)
      json_object_array_add(arr, json_object_get(json_object_array_get_idx(m->catalog, i)));
  } else {
    for (i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
      json_object *o = json_object_new_object();
      json_object_object_add(o, "id", json_object_new_string(builtin[i]));
      json_object_object_add(o, "object", json_object_new_string("model"));
      json_object_object_add(o, "created", json_object_new_int64(m->created));
      json_object_object_add(o, "owned_by", json_object_new_string("warp"));
      json_object_array_add(arr, o);
    }
  }
  /* Configured aliases are models a client may name, so they are listed too. */
  for (p = m->g->cfg->model_aliases; p && *p;) {
    const char *end = strchr(p, ','), *eq;
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char alias[160], target[160];
    eq = memchr(p, '=', len);
    if (eq) {
      json_object *o = json_object_new_object();
      snprintf(alias, sizeof alias, "%.*s", (int)(eq - p), p);
      snprintf(target, sizeof target, "%.*s", (int)(len - (size_t)(eq - p) - 1), eq + 1);
      json_object_object_add(o, "id", json_object_new_string(alias));
      json_object_object_add(o, "object", json_object_new_string("model"));
      json_object_object_add(o, "created", json_object_new_int64(m->created));
      json_object_object_add(o, "owned_by", json_object_new_string("warp2api"));
      json_object_object_add(o, "alias_for", json_object_new_string(target));
      json_object_array_add(arr, o);
    }
    p = end ? end + 1 : NULL;
  }
  return arr;
}

void w2a_gw_models_handle(w2a_gw_models *m, w2a_http_req *r, const char *id) {
  json_object *arr, *out = NULL;
  w2a_gw_error e;
  const char *s;
  w2a_gw_models_refresh(m);
  arr = model_list(m);
  if (id) {
    size_t i;
    for (i = 0; i < json_object_array_length(arr) && !out; i++) {
      json_object *o = json_object_array_get_idx(arr, i), *v;
      if (json_object_object_get_ex(o, "id", &v) && !strcmp(json_object_get_string(v), id))
        out = json_object_get(o);
    }
    json_object_put(arr);
    if (!out) {
      w2a_gw_errorf(&e, W2A_GWE_MODEL_NOT_FOUND, "model", "The model `%s` does not exist", id);
      w2a_gw_send_error(m->g, r, &e);
      return;
    }
  } else {
    out = json_object_new_object();
    json_object_object_add(out, "object", json_object_new_string("list"));
    json_object_object_add(out, "data", arr);
  }
  s = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
  w2a_gw_send_json(m->g, r, 200,
                   m->catalog ? "X-Warp2api-Models: warp\r\n" : "X-Warp2api-Models: built-in\r\n",
                   s, strlen(s));
  json_object_put(out);
}

int w2a_gw_models_new(w2a_gw_models **out, w2a_gateway *g) {
  w2a_gw_models *m = calloc(1, sizeof *m);
  if (!m) return W2A_ENOMEM;
  m->g = g;
  m->created = (int64_t)(w2a_now_ms() / 1000);
  *out = m;
  return 0;
}

void w2a_gw_models_close(w2a_gw_models *m, void (*done)(void *ud), void *ud) {
  m->closing = 1;
  m->done = done;
  m->done_ud = ud;
  if (m->busy) {
    /* fetch_end finishes the job; an acquire waiting for capacity ends at once */
    if (m->g->pool) w2a_pool_acquire_cancel(m->g->pool, m);
    return;
  }
  json_object_put(m->catalog);
  free(m);
  if (done) done(ud);
}
