/* main.c - the fakewarp binary: flags and an optional JSON configuration file, then one
 * libuv loop until SIGINT/SIGTERM, after which every handle is closed and every byte
 * freed (so LeakSanitizer has nothing to report). See docs/fakewarp.md. */
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/log.h"
#include "fakewarp/control.h"
#include "fakewarp/fakewarp.h"

typedef struct app {
  uv_loop_t loop;
  w2a_fake f;
  uv_signal_t sigint, sigterm;
  const char *port_file, *http_port_file;
  int exit_code;
  int stopping;
} app;

static void usage(FILE *o) {
  fputs("usage: fakewarp [options]\n"
        "  --host ADDR            listen address (default 127.0.0.1)\n"
        "  --port N               port (default 0: any free port)\n"
        "  --port-file PATH       write the public port there once serving\n"
        "  --http-port-file PATH  write the plain-HTTP port (differs from --port with TLS)\n"
        "  --config FILE          JSON configuration (see docs/fakewarp.md)\n"
        "  --account EMAIL[:REFRESH_TOKEN[:QUOTA]]   add an account (repeatable)\n"
        "  --quota N              default requestLimit (150)\n"
        "  --refresh-period S     quota window in seconds (2592000)\n"
        "  --token-lifetime S     ID token lifetime in seconds (3600)\n"
        "  --rotate-refresh       issue a new refresh token on every exchange\n"
        "  --scenario TEXT        global default directives, e.g. '[[fw:text chunks=5]]'\n"
        "  --tls-cert PEM --tls-key PEM   serve HTTPS+HTTP/2 (via nghttpx) on --port\n"
        "  --nghttpx PATH         nghttpx binary\n"
        "  --api-key KEY          require ?key=KEY on the Google routes\n"
        "  --accept-delay-ms N    delay every request by N ms before handling it\n"
        "  --no-control           disable the /_fakewarp/* test routes\n"
        "  --log-level LEVEL      debug|info|warn|error (default warn)\n",
        o);
}

static int write_port(const char *path, int port) {
  if (!path) return 0;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *fp = fopen(tmp, "w");
  if (!fp) return -1;
  fprintf(fp, "%d\n", port);
  if (fclose(fp) || rename(tmp, path)) return -1;
  return 0;
}

static void on_stopped(void *ud) { (void)ud; }

static void stop(app *a) {
  if (a->stopping) return;
  a->stopping = 1;
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  w2a_fake_stop(&a->f, on_stopped, a);
}

static void on_signal(uv_signal_t *s, int signum) {
  app *a = s->data;
  W2A_INFO("fakewarp: signal %d, shutting down", signum);
  stop(a);
}

static void on_ready(int port, void *ud) {
  app *a = ud;
  if (write_port(a->port_file, port) || write_port(a->http_port_file, a->f.http_port)) {
    W2A_ERROR("fakewarp: cannot write the port file");
    a->exit_code = 1;
    stop(a);
    return;
  }
  W2A_INFO("fakewarp: serving on port %d", port);
}

static void on_failed(const char *why, void *ud) {
  app *a = ud;
  W2A_ERROR("fakewarp: %s", why);
  a->exit_code = 1;
  stop(a);
}

enum {
  O_HOST = 1000,
  O_PORT,
  O_PORT_FILE,
  O_HTTP_PORT_FILE,
  O_CONFIG,
  O_ACCOUNT,
  O_QUOTA,
  O_PERIOD,
  O_LIFETIME,
  O_ROTATE,
  O_SCENARIO,
  O_CERT,
  O_KEY,
  O_NGHTTPX,
  O_APIKEY,
  O_DELAY,
  O_NOCONTROL,
  O_LOGLEVEL,
  O_HELP
};

static json_object *read_json_file(const char *path) {
  json_object *j = json_object_from_file(path);
  if (!j) fprintf(stderr, "fakewarp: cannot read %s: %s\n", path, json_util_get_last_err());
  return j;
}

static const char *cfg_str(json_object *c, const char *k) {
  json_object *v;
  return c && json_object_object_get_ex(c, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}
static int cfg_int(json_object *c, const char *k, int64_t *out) {
  json_object *v;
  if (!c || !json_object_object_get_ex(c, k, &v) || json_object_is_type(v, json_type_null))
    return 0;
  *out = json_object_get_int64(v);
  return 1;
}

int main(int argc, char **argv) {
  static app a;
  static const struct option lo[] = {{"host", 1, 0, O_HOST},
                                     {"port", 1, 0, O_PORT},
                                     {"port-file", 1, 0, O_PORT_FILE},
                                     {"http-port-file", 1, 0, O_HTTP_PORT_FILE},
                                     {"config", 1, 0, O_CONFIG},
                                     {"account", 1, 0, O_ACCOUNT},
                                     {"quota", 1, 0, O_QUOTA},
                                     {"refresh-period", 1, 0, O_PERIOD},
                                     {"token-lifetime", 1, 0, O_LIFETIME},
                                     {"rotate-refresh", 0, 0, O_ROTATE},
                                     {"scenario", 1, 0, O_SCENARIO},
                                     {"tls-cert", 1, 0, O_CERT},
                                     {"tls-key", 1, 0, O_KEY},
                                     {"nghttpx", 1, 0, O_NGHTTPX},
                                     {"api-key", 1, 0, O_APIKEY},
                                     {"accept-delay-ms", 1, 0, O_DELAY},
                                     {"no-control", 0, 0, O_NOCONTROL},
                                     {"log-level", 1, 0, O_LOGLEVEL},
                                     {"help", 0, 0, O_HELP},
                                     {0, 0, 0, 0}};
  const char *host = NULL, *config = NULL, *scenario = NULL, *cert = NULL, *key = NULL,
             *nghttpx = NULL, *api_key = NULL;
  int64_t port = -1, quota = -1, period = -1, lifetime = -1, delay = -1;
  int rotate = -1, control = -1;
  json_object *cli_accounts = json_object_new_array();
  w2a_log_set_level(W2A_LOG_WARN);
  w2a_log_set_component("fakewarp");
  int c, rc = 2;
  json_object *cfg = NULL;
  while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
    switch (c) {
    case O_HOST: host = optarg; break;
    case O_PORT: port = atoll(optarg); break;
    case O_PORT_FILE: a.port_file = optarg; break;
    case O_HTTP_PORT_FILE: a.http_port_file = optarg; break;
    case O_CONFIG: config = optarg; break;
    case O_ACCOUNT: {
      char buf[1024];
      snprintf(buf, sizeof buf, "%s", optarg);
      char *rt = strchr(buf, ':'), *q = NULL;
      if (rt) {
        *rt++ = 0;
        q = strchr(rt, ':');
        if (q) *q++ = 0;
      }
      json_object *o = json_object_new_object();
      json_object_object_add(o, "email", json_object_new_string(buf));
      if (rt && *rt) json_object_object_add(o, "refresh_token", json_object_new_string(rt));
      if (q && *q) json_object_object_add(o, "quota", json_object_new_int64(atoll(q)));
      json_object_array_add(cli_accounts, o);
      break;
    }
    case O_QUOTA: quota = atoll(optarg); break;
    case O_PERIOD: period = atoll(optarg); break;
    case O_LIFETIME: lifetime = atoll(optarg); break;
    case O_ROTATE: rotate = 1; break;
    case O_SCENARIO: scenario = optarg; break;
    case O_CERT: cert = optarg; break;
    case O_KEY: key = optarg; break;
    case O_NGHTTPX: nghttpx = optarg; break;
    case O_APIKEY: api_key = optarg; break;
    case O_DELAY: delay = atoll(optarg); break;
    case O_NOCONTROL: control = 0; break;
    case O_LOGLEVEL: {
      int l = w2a_log_level_parse(optarg);
      if (l < 0) {
        fprintf(stderr, "fakewarp: bad log level %s\n", optarg);
        goto out;
      }
      w2a_log_set_level(l);
      break;
    }
    case O_HELP:
    case 'h':
      usage(stdout);
      rc = 0;
      goto out;
    default: usage(stderr); goto out;
    }
  }
  if (optind < argc) {
    usage(stderr);
    goto out;
  }
  if (config && !(cfg = read_json_file(config))) goto out;
  /* flags win over the file */
  int64_t v;
  if (!host) host = cfg_str(cfg, "host");
  if (port < 0 && cfg_int(cfg, "port", &v)) port = v;
  if (quota < 0 && cfg_int(cfg, "default_quota", &v)) quota = v;
  if (period < 0 && cfg_int(cfg, "refresh_period_s", &v)) period = v;
  if (lifetime < 0 && cfg_int(cfg, "token_lifetime_s", &v)) lifetime = v;
  if (rotate < 0 && cfg_int(cfg, "rotate_refresh_tokens", &v)) rotate = (int)v;
  if (delay < 0 && cfg_int(cfg, "accept_delay_ms", &v)) delay = v;
  if (control < 0 && cfg_int(cfg, "control", &v)) control = (int)v;
  if (!scenario) scenario = cfg_str(cfg, "scenario");
  if (!cert) cert = cfg_str(cfg, "tls_cert");
  if (!key) key = cfg_str(cfg, "tls_key");
  if (!api_key) api_key = cfg_str(cfg, "api_key");
  if ((cert == NULL) != (key == NULL)) {
    fprintf(stderr, "fakewarp: --tls-cert and --tls-key go together\n");
    goto out;
  }

  signal(SIGPIPE, SIG_IGN);
  uv_loop_init(&a.loop);
  w2a_fake_opts o = {0};
  o.host = host ? host : "127.0.0.1";
  o.port = port > 0 ? (int)port : 0;
  o.tls_cert = cert;
  o.tls_key = key;
  o.nghttpx = nghttpx;
  o.control = control != 0;
  o.api_key = api_key;
  o.accept_delay_ms = delay > 0 ? (int)delay : 0;
  o.ready = on_ready;
  o.failed = on_failed;
  o.ud = &a;
  w2a_err err = {0};
  if (w2a_fake_start(&a.f, &a.loop, &o, &err)) {
    fprintf(stderr, "fakewarp: %s\n", err.msg);
    rc = 1;
    w2a_fake_stop(&a.f, NULL, NULL);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    w2a_fake_free(&a.f);
    uv_loop_close(&a.loop);
    goto out;
  }
  w2a_fake_state *st = &a.f.st;
  if (quota >= 0) st->default_quota = quota;
  if (period > 0) st->default_refresh_period_s = period;
  if (lifetime > 0) st->token_lifetime_s = lifetime;
  if (rotate > 0) st->rotate_refresh = 1;
  if (scenario) st->global_scenario = strdup(scenario);
  /* Accounts: the file's, then the flags'; kept for /_fakewarp/reset. */
  json_object *all = json_object_new_array();
  json_object *fa;
  if (cfg && json_object_object_get_ex(cfg, "accounts", &fa) &&
      json_object_is_type(fa, json_type_array))
    for (size_t i = 0; i < json_object_array_length(fa); i++)
      json_object_array_add(all, json_object_get(json_object_array_get_idx(fa, i)));
  for (size_t i = 0; i < json_object_array_length(cli_accounts); i++)
    json_object_array_add(all, json_object_get(json_object_array_get_idx(cli_accounts, i)));
  a.f.initial_accounts = all;
  if (w2a_fake_accounts_apply(&a.f, all, &err)) {
    fprintf(stderr, "fakewarp: accounts: %s\n", err.msg);
    a.exit_code = 2;
    stop(&a);
  }
  uv_signal_init(&a.loop, &a.sigint);
  uv_signal_init(&a.loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  if (!a.stopping) {
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  } else {
    uv_close((uv_handle_t *)&a.sigint, NULL);
    uv_close((uv_handle_t *)&a.sigterm, NULL);
  }
  uv_run(&a.loop, UV_RUN_DEFAULT);
  w2a_fake_free(&a.f);
  if (uv_loop_close(&a.loop)) {
    W2A_ERROR("fakewarp: handles left open at exit");
    a.exit_code = a.exit_code ? a.exit_code : 3;
  }
  rc = a.exit_code;
out:
  json_object_put(cli_accounts);
  json_object_put(cfg);
  return rc;
}
