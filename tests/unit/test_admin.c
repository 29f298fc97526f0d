/* test_admin.c - unit checks of the admin API's pure parts (loopback rule, health
 * levels, import parsing with line numbers), and, with `--serve`, a tiny stand-alone
 * pool service (pool + admin API on one loop, configured from the environment) that the
 * integration tests can run when `warp2api pool` is not the thing under test. */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "common/config.h"
#include "common/log.h"
#include "pool/admin.h"
#include "pool/pool.h"
#include "t.h"

/* ---- unit checks ---------------------------------------------------------------------- */

static void test_loopback(void) {
  T_CHECK(w2a_admin_host_is_loopback("127.0.0.1"));
  T_CHECK(w2a_admin_host_is_loopback("127.1.2.3"));
  T_CHECK(w2a_admin_host_is_loopback("::1"));
  T_CHECK(w2a_admin_host_is_loopback("localhost"));
  T_CHECK(!w2a_admin_host_is_loopback("0.0.0.0"));
  T_CHECK(!w2a_admin_host_is_loopback("::"));
  T_CHECK(!w2a_admin_host_is_loopback("10.0.0.1"));
  T_CHECK(!w2a_admin_host_is_loopback("128.0.0.1"));
  T_CHECK(!w2a_admin_host_is_loopback(""));
  T_CHECK(!w2a_admin_host_is_loopback(NULL));
}

static void test_health(void) {
  T_EQ_STR(w2a_admin_health(10, 5), "healthy");
  T_EQ_STR(w2a_admin_health(9, 5), "good");
  T_EQ_STR(w2a_admin_health(5, 5), "good");
  T_EQ_STR(w2a_admin_health(4, 5), "low");
  T_EQ_STR(w2a_admin_health(1, 5), "low");
  T_EQ_STR(w2a_admin_health(0, 5), "critical");
  T_EQ_STR(w2a_admin_health(0, 0), "critical");
  T_EQ_STR(w2a_admin_health(1, 0), "healthy");
}

static void test_import_jsonl(void) {
  const char *in =
      "{\"email\":\"a@x.io\",\"refresh_token\":\"rt-a\",\"label\":\"L\"}\n"
      "\n"
      "# a comment\n"
      "{\"email\":\"b@x.io\"}\n"
      "{not json\n"
      "{\"email\":\"c@x.io\",\"refresh_token\":\"rt-c\",\"cap\":0}\n"
      "{\"email\":\"d@x.io\",\"refresh_token\":\"rt-d\",\"local_id\":\"u\",\"weight\":3}\r\n"
      "{\"email\":\"e@x.io\",\"refresh_token\":\"rt-e\",\"bogus\":1}\n"
      "[1]\n";
  w2a_admin_import im;
  w2a_err err = {0};
  T_EQ_INT(w2a_admin_import_parse(in, strlen(in), &im, &err), 0);
  T_EQ_INT(im.is_array, 0);
  T_EQ_INT(im.nrows, 2);
  if (im.nrows == 2) {
    T_EQ_STR(im.rows[0].email, "a@x.io");
    T_EQ_STR(im.rows[0].label, "L");
    T_EQ_INT(im.row_line[0], 1);
    T_EQ_STR(im.rows[1].uid, "u");
    T_EQ_INT(im.rows[1].weight, 3);
    T_EQ_INT(im.row_line[1], 7);
  }
  T_EQ_INT(im.nerrs, 5);
  if (im.nerrs == 5) {
    T_EQ_INT(im.errs[0].line, 4);
    T_CHECK(strstr(im.errs[0].msg, "refresh_token") != NULL);
    T_EQ_INT(im.errs[1].line, 5);
    T_CHECK(strstr(im.errs[1].msg, "malformed JSON") != NULL);
    T_EQ_INT(im.errs[2].line, 6);
    T_CHECK(strstr(im.errs[2].msg, "\"cap\"") != NULL);
    T_EQ_INT(im.errs[3].line, 8);
    T_CHECK(strstr(im.errs[3].msg, "bogus") != NULL);
    T_EQ_INT(im.errs[4].line, 9);
  }
  w2a_admin_import_free(&im);
}

static void test_import_array(void) {
  const char *in = "  [{\"email\":\"a@x.io\",\"refresh_token\":\"rt\"},"
                   "{\"email\":\"nope\",\"refresh_token\":\"rt\"},"
                   "{\"email\":\"b@x.io\",\"refresh_token\":7}]\n";
  w2a_admin_import im;
  w2a_err err = {0};
  T_EQ_INT(w2a_admin_import_parse(in, strlen(in), &im, &err), 0);
  T_EQ_INT(im.is_array, 1);
  T_EQ_INT(im.nrows, 1);
  T_EQ_INT(im.nerrs, 2);
  if (im.nerrs == 2) {
    T_EQ_INT(im.errs[0].line, 2);
    T_CHECK(strstr(im.errs[0].msg, "\"email\"") != NULL);
    T_EQ_INT(im.errs[1].line, 3);
    T_CHECK(strstr(im.errs[1].msg, "\"refresh_token\" must be a string") != NULL);
  }
  w2a_admin_import_free(&im);

  T_EQ_INT(w2a_admin_import_parse("[{\"a\":", 6, &im, &err), W2A_EINVAL);
  T_CHECK(strstr(err.msg, "malformed JSON array") != NULL);
  T_EQ_INT(w2a_admin_import_parse("[] x", 4, &im, &err), W2A_EINVAL);
  T_EQ_INT(w2a_admin_import_parse("  \n", 3, &im, &err), W2A_EINVAL);
  T_CHECK(strstr(err.msg, "empty") != NULL);
  T_EQ_INT(w2a_admin_import_parse("# only\n\n", 8, &im, &err), W2A_EINVAL);
}

static void test_account_json_has_no_secrets(void) {
  w2a_account a = {0};
  a.id = 7;
  snprintf(a.email, sizeof a.email, "s@x.io");
  a.refresh_token = "RT-SECRET";
  a.id_token = "ID-SECRET";
  a.quota.limit = 150;
  a.quota.used = 20;
  json_object *o = w2a_admin_account_json(&a, "", 0);
  const char *s = json_object_to_json_string(o);
  T_CHECK(strstr(s, "SECRET") == NULL);
  T_CHECK(strstr(s, "\"remaining\":130") || strstr(s, "\"remaining\": 130"));
  json_object_put(o);
  o = w2a_admin_export_json(&a, 0);
  T_CHECK(strstr(json_object_to_json_string(o), "RT-SECRET") == NULL);
  json_object_put(o);
  o = w2a_admin_export_json(&a, W2A_ADMIN_JSON_SECRETS);
  T_CHECK(strstr(json_object_to_json_string(o), "RT-SECRET") != NULL);
  T_CHECK(strstr(json_object_to_json_string(o), "ID-SECRET") == NULL);
  json_object_put(o);
}

/* ---- --serve: pool + admin on one loop ----------------------------------------------------- */

typedef struct served {
  uv_loop_t loop;
  uv_signal_t sigterm, sigint;
  w2a_config cfg;
  w2a_http_client *http;
  w2a_pool *pool;
  w2a_admin *admin;
} served;

static void http_closed(void *ud) { (void)ud; }
static void pool_closed(void *ud) {
  served *s = ud;
  w2a_http_client_close(s->http, http_closed, s);
}
static void admin_stopped(void *ud) {
  served *s = ud;
  w2a_pool_close(s->pool, pool_closed, s);
}
static void on_signal(uv_signal_t *h, int sig) {
  served *s = h->data;
  (void)sig;
  uv_close((uv_handle_t *)&s->sigterm, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  w2a_admin_stop(s->admin, admin_stopped, s);
}

static int serve(void) {
  static served s;
  w2a_err err = {0};
  if (w2a_config_load(&s.cfg, NULL, &err)) {
    fprintf(stderr, "config: %s\n", err.msg);
    return 2;
  }
  w2a_log_set_level(w2a_log_level_parse(s.cfg.log_level));
  uv_loop_init(&s.loop);
  w2a_http_client_opts ho = {.connect_timeout_ms = (uint64_t)s.cfg.connect_timeout_ms};
  int rc = 1;
  if (w2a_http_client_new(&s.http, &s.loop, &ho, &err)) goto fail;
  if (w2a_pool_open(&s.pool, &s.loop, &s.cfg, s.http, 1, &err)) {
    w2a_http_client_close(s.http, NULL, NULL);
    goto fail_loop;
  }
  if (w2a_admin_start(&s.admin, &s.loop, &s.cfg, s.pool, &err)) {
    w2a_pool_close(s.pool, pool_closed, &s);
    goto fail_loop;
  }
  printf("listening on %d\n", w2a_admin_port(s.admin));
  fflush(stdout);
  uv_signal_init(&s.loop, &s.sigterm);
  uv_signal_init(&s.loop, &s.sigint);
  s.sigterm.data = s.sigint.data = &s;
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&s.loop) ? 1 : 0;
  w2a_config_free(&s.cfg);
  return rc;
fail_loop:
  fprintf(stderr, "test_admin --serve: %s\n", err.msg);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  uv_loop_close(&s.loop);
  w2a_config_free(&s.cfg);
  return 1;
fail:
  fprintf(stderr, "test_admin --serve: %s\n", err.msg);
  uv_loop_close(&s.loop);
  w2a_config_free(&s.cfg);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--serve")) return serve();
  T_RUN(test_loopback);
  T_RUN(test_health);
  T_RUN(test_import_jsonl);
  T_RUN(test_import_array);
  T_RUN(test_account_json_has_no_secrets);
  return t_done();
}
