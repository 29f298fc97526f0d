/* test_gw_live.c - the gateway in-process against a real fakewarp, with a tiny in-memory
 * pool (this file defines the w2a_pool_* functions, so the real pool is not linked in).
 *
 * The gateway, the pool fake and the HTTP client run on one libuv loop in a second
 * thread; the test thread drives the gateway with blocking libcurl calls, exactly like a
 * client would, and reads fakewarp's request log. At the end the gateway is shut down,
 * the loop must close with no handle left (uv_loop_close == 0), every lease must have
 * come back, and ASan/LSan check the memory.
 *
 * Finds fakewarp in W2A_BUILD, or else next to the test binary. */
#include <curl/curl.h>
#include <json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "gateway/gateway.h"
#include "http/client.h"
#include "pool/pool.h"
#include "t.h"

/* ---- the pool fake ------------------------------------------------------------------ */

enum { ACC_OK = 0, ACC_QUOTA, ACC_BLOCKED, ACC_COOL };

typedef struct facct {
  char email[64];
  char token[4096];
  int state;
  int expired; /* hand out a bad token until refreshed */
} facct;

struct w2a_pool {
  uv_loop_t *loop;
  facct a[4];
  int n;
  int leased, acquired, reported, released, refreshed;
  pthread_mutex_t mu; /* the test thread reads the counters */
};

typedef struct op {
  uv_timer_t t;
  w2a_pool *p;
  w2a_pool_acquire_fn cb;
  w2a_pool_done_fn dcb;
  void *ud;
  int64_t exclude[16];
  size_t nex;
  w2a_lease *lease;
} op;

static void op_close(uv_handle_t *h) { free(h->data); }

static void op_fire(uv_timer_t *t) {
  op *o = t->data;
  w2a_pool *p = o->p;
  if (o->dcb) { /* refresh */
    facct *a = &p->a[o->lease->account_id];
    a->expired = 0;
    snprintf(o->lease->id_token, sizeof o->lease->id_token, "%s", a->token);
    pthread_mutex_lock(&p->mu);
    p->refreshed++;
    pthread_mutex_unlock(&p->mu);
    o->dcb(0, o->ud);
  } else {
    int i, pick = -1;
    for (i = 0; i < p->n && pick < 0; i++) {
      size_t k;
      int skip = p->a[i].state != ACC_OK;
      for (k = 0; k < o->nex; k++)
        if (o->exclude[k] == i) skip = 1;
      if (!skip) pick = i;
    }
    if (pick < 0) {
      w2a_pool_unavailable why = {0};
      why.empty = p->n == 0;
      why.retry_at_ms = w2a_now_ms() + 42000;
      snprintf(why.reason, sizeof why.reason, "fake pool: %d accounts, none usable", p->n);
      o->cb(-5, NULL, &why, o->ud);
    } else {
      w2a_lease *l = calloc(1, sizeof *l);
      l->account_id = pick;
      snprintf(l->email, sizeof l->email, "%s", p->a[pick].email);
      snprintf(l->id_token, sizeof l->id_token, "%s",
               p->a[pick].expired ? "expired-token" : p->a[pick].token);
      pthread_mutex_lock(&p->mu);
      p->leased++;
      p->acquired++;
      pthread_mutex_unlock(&p->mu);
      o->cb(0, l, NULL, o->ud);
    }
  }
  uv_close((uv_handle_t *)&o->t, op_close);
}

static void later(op *o) {
  uv_timer_init(o->p->loop, &o->t);
  o->t.data = o;
  uv_timer_start(&o->t, op_fire, 1, 0);
}

void w2a_pool_acquire(w2a_pool *p, const int64_t *exclude, size_t nexclude, w2a_pool_acquire_fn cb,
                      void *ud) {
  op *o = calloc(1, sizeof *o);
  o->p = p, o->cb = cb, o->ud = ud;
  o->nex = nexclude < 16 ? nexclude : 16;
  if (o->nex) memcpy(o->exclude, exclude, o->nex * sizeof *exclude);
  later(o);
}

static void drop(w2a_pool *p, w2a_lease *l) {
  pthread_mutex_lock(&p->mu);
  p->leased--;
  pthread_mutex_unlock(&p->mu);
  free(l);
}

w2a_action w2a_pool_report(w2a_pool *p, w2a_lease *l, const w2a_outcome *o) {
  facct *a = &p->a[l->account_id];
  w2a_action act = W2A_ACT_NONE;
  if (!o->ok) {
    if (o->http_status == 429 || (o->finish && !strcmp(o->finish, "quota_limit")))
      a->state = ACC_QUOTA, act = W2A_ACT_QUOTA;
    else if (o->http_status == 403)
      a->state = ACC_BLOCKED, act = W2A_ACT_BLOCK;
    else if (o->http_status >= 500 || o->transport_error)
      act = W2A_ACT_RETRY_OTHER;
    else if (o->http_status == 401)
      act = W2A_ACT_RETRY_REFRESH;
  }
  pthread_mutex_lock(&p->mu);
  p->reported++;
  pthread_mutex_unlock(&p->mu);
  drop(p, l);
  return act;
}

void w2a_pool_release(w2a_pool *p, w2a_lease *l) {
  pthread_mutex_lock(&p->mu);
  p->released++;
  pthread_mutex_unlock(&p->mu);
  drop(p, l);
}

void w2a_pool_extend(w2a_pool *p, w2a_lease *l) { (void)p, (void)l; }

/* The fake never waits for capacity: every acquire is answered within a millisecond. */
void w2a_pool_acquire_cancel(w2a_pool *p, void *ud) { (void)p, (void)ud; }

void w2a_pool_refresh_lease(w2a_pool *p, w2a_lease *l, w2a_pool_done_fn cb, void *ud) {
  op *o = calloc(1, sizeof *o);
  o->p = p, o->dcb = cb, o->ud = ud, o->lease = l;
  later(o);
}

int w2a_pool_usable_count(const w2a_pool *p) {
  int i, n = 0;
  for (i = 0; i < p->n; i++)
    n += p->a[i].state == ACC_OK;
  return n;
}

/* ---- harness ------------------------------------------------------------------------ */

static pid_t fw_pid;
static int fw_port, gw_port;
static uv_loop_t loop;
static uv_async_t stop_async;
static w2a_pool pool;
static w2a_http_client *http;
static w2a_gateway *gw;
static w2a_config cfg;
static pthread_t loop_thread;

typedef struct resp {
  long status;
  w2a_buf body;
  w2a_buf headers;
  int chunks;         /* write callbacks */
  size_t abort_after; /* >0: abort once this many bytes arrived */
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  w2a_buf_append(&r->body, p, sz * n);
  r->chunks++;
  if (r->abort_after && r->body.len >= r->abort_after) return 0;
  return sz * n;
}

static size_t on_hdr(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  w2a_buf_append(&r->headers, p, sz * n);
  return sz * n;
}

/* Blocking HTTP call; body NULL = GET. Returns the status. */
static long http_call(int port, const char *path, const char *body, const char *extra_hdr,
                      resp *r) {
  CURL *c = curl_easy_init();
  struct curl_slist *h = NULL;
  char url[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  w2a_buf_init(&r->body, 0);
  w2a_buf_init(&r->headers, 0);
  r->chunks = 0;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_hdr);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  h = curl_slist_append(h, "content-type: application/json");
  if (extra_hdr) h = curl_slist_append(h, extra_hdr);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r->status;
}

static void resp_free(resp *r) {
  w2a_buf_free(&r->body);
  w2a_buf_free(&r->headers);
}

static json_object *jpath(json_object *o, const char *path) {
  char buf[256], *save, *tok;
  snprintf(buf, sizeof buf, "%s", path);
  for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
    if (json_object_is_type(o, json_type_array))
      o = json_object_array_get_idx(o, atoi(tok));
    else if (!json_object_object_get_ex(o, tok, &o))
      return NULL;
  }
  return o;
}
static const char *js(json_object *o, const char *path) {
  json_object *v = jpath(o, path);
  return v ? json_object_get_string(v) : NULL;
}

static void on_stop(uv_async_t *a) {
  uv_close((uv_handle_t *)&stop_async, NULL);
  w2a_gateway_shutdown(gw, NULL, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&loop, UV_RUN_DEFAULT);
  return NULL;
}

static char *mint(const char *email) {
  resp r = {0};
  char body[256];
  json_object *o;
  char *tok;
  snprintf(body, sizeof body, "{\"email\":\"%s\"}", email);
  http_call(fw_port, "/_fakewarp/token", body, NULL, &r);
  o = json_tokener_parse(r.body.data);
  tok = strdup(js(o, "id_token") ? js(o, "id_token") : "");
  json_object_put(o);
  resp_free(&r);
  return tok;
}

static int start_fakewarp(void) {
  const char *b = getenv("W2A_BUILD");
  char bin[1024], pf[] = "/tmp/gwlive-portXXXXXX";
  int fd = mkstemp(pf), i;
  close(fd);
  unlink(pf);
  snprintf(bin, sizeof bin, "%s/fakewarp", b);
  fw_pid = fork();
  if (!fw_pid) {
    execl(bin, bin, "--port-file", pf, "--account", "a@test", "--account", "b@test", "--account",
          "c@test", (char *)NULL);
    _exit(127);
  }
  for (i = 0; i < 200; i++) {
    FILE *f = fopen(pf, "r");
    if (f) {
      int ok = fscanf(f, "%d", &fw_port) == 1;
      fclose(f);
      if (ok) break;
    }
    usleep(20000);
  }
  unlink(pf);
  return fw_port > 0 ? 0 : -1;
}

static void reset_pool(int n) {
  int i;
  static const char *emails[] = {"a@test", "b@test", "c@test"};
  resp r = {0};
  http_call(fw_port, "/_fakewarp/reset", "{}", NULL, &r);
  resp_free(&r);
  pthread_mutex_lock(&pool.mu);
  pool.n = n;
  for (i = 0; i < n; i++) {
    char *t = mint(emails[i]);
    snprintf(pool.a[i].email, sizeof pool.a[i].email, "%s", emails[i]);
    snprintf(pool.a[i].token, sizeof pool.a[i].token, "%s", t);
    pool.a[i].state = ACC_OK;
    pool.a[i].expired = 0;
    free(t);
  }
  pthread_mutex_unlock(&pool.mu);
}

static json_object *fw_requests(void) {
  resp r = {0};
  json_object *o;
  http_call(fw_port, "/_fakewarp/requests", NULL, NULL, &r);
  o = json_tokener_parse(r.body.data ? r.body.data : "null");
  resp_free(&r);
  return o;
}

/* ---- tests ------------------------------------------------------------------------- */

#define AUTH "authorization: Bearer sk-test"

static void test_health_and_auth(void) {
  resp r = {0};
  T_EQ_INT(http_call(gw_port, "/healthz", NULL, NULL, &r), 200);
  resp_free(&r);
  T_EQ_INT(http_call(gw_port, "/readyz", NULL, NULL, &r), 200);
  resp_free(&r);
  T_EQ_INT(http_call(gw_port, "/v1/models", NULL, NULL, &r), 401);
  T_CHECK(r.body.data && strstr(r.body.data, "invalid_api_key"));
  resp_free(&r);
  T_EQ_INT(http_call(gw_port, "/v1/models", NULL, "x-api-key: sk-test", &r), 200);
  resp_free(&r);
  T_EQ_INT(http_call(gw_port, "/v1/models", NULL, "authorization: Bearer sk-wrong", &r), 401);
  resp_free(&r);
}

static void test_models(void) {
  resp r = {0};
  json_object *o;
  T_EQ_INT(http_call(gw_port, "/v1/models", NULL, AUTH, &r), 200);
  o = json_tokener_parse(r.body.data);
  T_EQ_STR(js(o, "object"), "list");
  T_CHECK(json_object_array_length(jpath(o, "data")) > 3);
  T_EQ_STR(js(o, "data.0.object"), "model");
  json_object_put(o);
  resp_free(&r);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "\"x\"}]}",
                     AUTH, &r),
           404);
  o = json_tokener_parse(r.body.data);
  T_EQ_STR(js(o, "error.code"), "model_not_found");
  T_EQ_STR(js(o, "error.param"), "model");
  json_object_put(o);
  resp_free(&r);
}

static void test_nonstream_text(void) {
  resp r = {0};
  json_object *o, *log;
  reset_pool(2);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"model\":\"claude-4-sonnet\",\"messages\":[{\"role\":\"system\","
                     "\"content\":\"SYS\"},{\"role\":\"user\",\"content\":\"hello there\"}]}",
                     AUTH, &r),
           200);
  o = json_tokener_parse(r.body.data);
  T_EQ_STR(js(o, "object"), "chat.completion");
  T_EQ_STR(js(o, "choices.0.message.role"), "assistant");
  T_CHECK(js(o, "choices.0.message.content") && strlen(js(o, "choices.0.message.content")) > 0);
  T_EQ_STR(js(o, "choices.0.finish_reason"), "stop");
  T_CHECK(jpath(o, "usage.total_tokens") != NULL);
  if (!js(o, "choices.0.message.content")) fprintf(stderr, "body: %s\n", r.body.data);
  json_object_put(o);
  resp_free(&r);
  log = fw_requests();
  {
    json_object *req = jpath(log, "accounts.a@test.0.request");
    if (!req) fprintf(stderr, "log: %s\n", json_object_to_json_string(log));
    T_EQ_STR(js(req, "settings.model_config.base"), "claude-4-sonnet");
    T_EQ_STR(js(req, "input.user_inputs.inputs.0.user_query.query"), "hello there");
    T_EQ_STR(js(req, "input.user_inputs.inputs.0.user_query.referenced_attachments.SYSTEM_PROMPT."
                     "plain_text"),
             "SYS");
  }
  json_object_put(log);
}

static void test_stream_text(void) {
  resp r = {0};
  reset_pool(2);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":["
                     "{\"role\":\"user\",\"content\":\"[[fw:text chunks=4 size=8]] hi\"}]}",
                     AUTH, &r),
           200);
  T_CHECK(r.body.data && strstr(r.body.data, "\"role\":\"assistant\""));
  T_CHECK(r.body.data && strstr(r.body.data, "\"finish_reason\":\"stop\""));
  T_CHECK(r.body.data && strstr(r.body.data, "\"usage\":"));
  T_CHECK(r.body.data && strstr(r.body.data, "data: [DONE]\n\n"));
  T_CHECK(strstr(r.headers.data, "text/event-stream") != NULL);
  if (!r.body.data || !strstr(r.body.data, "[DONE]")) fprintf(stderr, "%s\n", r.body.data);
  resp_free(&r);
}

static void test_failover_quota(void) {
  resp r = {0};
  json_object *o;
  reset_pool(2);
  /* Account a answers 429 quota; the gateway must move to b. */
  http_call(fw_port, "/_fakewarp/scenario", "{\"email\":\"a@test\",\"scenario\":\"[[fw:quota]]\"}",
            NULL, &r);
  resp_free(&r);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", AUTH, &r),
           200);
  resp_free(&r);
  pthread_mutex_lock(&pool.mu);
  T_EQ_INT(pool.a[0].state, ACC_QUOTA);
  pthread_mutex_unlock(&pool.mu);
  /* Now only b is usable; make it answer quota too: 429 with Retry-After. */
  http_call(fw_port, "/_fakewarp/scenario",
            "{\"email\":\"b@test\",\"scenario\":\"[[fw:quota_stream]]\"}", NULL, &r);
  resp_free(&r);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", AUTH, &r),
           429);
  T_CHECK(strstr(r.headers.data, "Retry-After: 4") != NULL);
  o = json_tokener_parse(r.body.data);
  T_EQ_STR(js(o, "error.code"), "accounts_exhausted");
  json_object_put(o);
  resp_free(&r);
  reset_pool(0);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", AUTH, &r),
           503);
  T_CHECK(r.body.data && strstr(r.body.data, "no_accounts"));
  resp_free(&r);
}

static void test_expired_token_refresh(void) {
  resp r = {0};
  reset_pool(1);
  pthread_mutex_lock(&pool.mu);
  pool.a[0].expired = 1;
  pool.refreshed = 0;
  pthread_mutex_unlock(&pool.mu);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", AUTH, &r),
           200);
  resp_free(&r);
  T_EQ_INT(pool.refreshed, 1);
}

static void test_stream_error_after_content(void) {
  resp r = {0};
  reset_pool(2);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
                     /* paced, so content has reached the client before the cut: an
                      * unpaced cut may arrive in the same read as the content, and then
                      * failing over (the client saw nothing yet) is right too */
                     "\"[[fw:text chunks=6 size=4 pace_ms=150]] [[fw:cut after=9]] hi\"}]}",
                     AUTH, &r),
           200);
  T_CHECK(r.body.data && strstr(r.body.data, "\"error\":"));
  T_CHECK(r.body.data && strstr(r.body.data, "data: [DONE]"));
  if (!r.body.data || !strstr(r.body.data, "\"error\":")) fprintf(stderr, "%s\n", r.body.data);
  resp_free(&r);
}

static void test_client_abort_releases(void) {
  resp r = {0};
  int i;
  reset_pool(1);
  r.abort_after = 1;
  http_call(gw_port, "/v1/chat/completions",
            "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
            "\"[[fw:text chunks=50 size=4 pace_ms=100]] hi\"}]}",
            AUTH, &r);
  resp_free(&r);
  for (i = 0; i < 100; i++) {
    int leased;
    pthread_mutex_lock(&pool.mu);
    leased = pool.leased;
    pthread_mutex_unlock(&pool.mu);
    if (!leased) break;
    usleep(20000);
  }
  T_EQ_INT(pool.leased, 0);
}

static void test_tools_roundtrip(void) {
  resp r = {0};
  json_object *o;
  reset_pool(1);
  T_EQ_INT(http_call(gw_port, "/v1/chat/completions",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\"[[fw:tools n=2]] go\"}],"
                     "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                     "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
                     "\"string\"}},\"required\":[\"city\"]}}}]}",
                     AUTH, &r),
           200);
  o = json_tokener_parse(r.body.data);
  T_EQ_STR(js(o, "choices.0.finish_reason"), "tool_calls");
  T_CHECK(jpath(o, "choices.0.message.tool_calls.1") != NULL);
  T_EQ_STR(js(o, "choices.0.message.tool_calls.0.type"), "function");
  if (!jpath(o, "choices.0.message.tool_calls.1")) fprintf(stderr, "%s\n", r.body.data);
  json_object_put(o);
  resp_free(&r);
}

int main(void) {
  w2a_err err = {0};
  w2a_http_client_opts ho = {.connect_timeout_ms = 2000};
  char url[128];
  if (!getenv("W2A_BUILD")) {
    /* ctest sets it; run by hand, the test binary sits in the build directory */
    static char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    char *slash = n > 0 ? (dir[n] = 0, strrchr(dir, '/')) : NULL;
    if (!slash) {
      fprintf(stderr, "W2A_BUILD not set and the build directory is unknown\n");
      return 1;
    }
    *slash = 0;
    setenv("W2A_BUILD", dir, 1);
  }
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  w2a_log_set_level(getenv("W2A_TEST_LOG") ? W2A_LOG_DEBUG : W2A_LOG_ERROR);
  if (start_fakewarp()) {
    fprintf(stderr, "fakewarp did not start\n");
    t_fail++;
    return t_done();
  }
  pthread_mutex_init(&pool.mu, NULL);
  uv_loop_init(&loop);
  pool.loop = &loop;
  reset_pool(3);
  T_EQ_INT(w2a_config_load(&cfg, "/dev/null", &err), 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d", fw_port);
  free(cfg.warp_base_url);
  cfg.warp_base_url = strdup(url);
  free(cfg.api_keys);
  cfg.api_keys = strdup("sk-other, sk-test");
  cfg.port = 0;
  cfg.keepalive_ms = 1000;
  cfg.shutdown_grace_ms = 2000;
  T_EQ_INT(w2a_http_client_new(&http, &loop, &ho, &err), 0);
  T_EQ_INT(w2a_gateway_start(&gw, &loop, &cfg, &pool, http, &err), 0);
  if (!gw) {
    fprintf(stderr, "gateway: %s\n", err.msg);
    return t_done();
  }
  gw_port = w2a_gateway_port(gw);
  uv_async_init(&loop, &stop_async, on_stop);
  pthread_create(&loop_thread, NULL, loop_main, NULL);

  T_RUN(test_health_and_auth);
  T_RUN(test_models);
  T_RUN(test_nonstream_text);
  T_RUN(test_stream_text);
  T_RUN(test_failover_quota);
  T_RUN(test_expired_token_refresh);
  T_RUN(test_stream_error_after_content);
  T_RUN(test_client_abort_releases);
  T_RUN(test_tools_roundtrip);

  uv_async_send(&stop_async);
  /* The gateway is gone when only the client is left; close it from the loop too. */
  pthread_join(loop_thread, NULL);
  w2a_http_client_close(http, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  T_EQ_INT(uv_loop_close(&loop), 0);
  T_EQ_INT(pool.leased, 0);
  w2a_config_free(&cfg);
  kill(fw_pid, SIGTERM);
  waitpid(fw_pid, NULL, 0);
  curl_global_cleanup();
  return t_done();
}
