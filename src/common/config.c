/* config.c - table-driven configuration; see config.h.
 *
 * Each row names a setting, where it lives in w2a_config, its kind and default. Sizes
 * accept K/M/G suffixes; durations are in seconds (fractions allowed, as in the seed's
 * WARP_*_TIMEOUT) or take an "ms" suffix. Aliases let the seed's names keep working. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

enum kind { K_STR, K_INT, K_BOOL, K_SIZE, K_DUR };

typedef struct row {
  const char *name;
  const char *alias; /* a second accepted name, or NULL */
  enum kind kind;
  size_t off;
  const char *def;
  int secret;
  const char *help;
} row;

#define R(name, alias, kind, field, def, secret, help)                                             \
  { name, alias, kind, offsetof(w2a_config, field), def, secret, help }

static const row rows[] = {
    R("LOG_LEVEL", NULL, K_STR, log_level, "INFO", 0, "debug, info, warning, error or off"),
    R("LOG_FILE", NULL, K_STR, log_file, "", 0, "also log to this file (e.g. logs/warp2api.log)"),

    R("HOST", "WARP_API_HOST", K_STR, host, "127.0.0.1", 0,
      "gateway bind address (non-loopback needs API_KEYS)"),
    R("PORT", "WARP_API_PORT", K_INT, port, "8000", 0, "gateway port"),
    R("API_KEYS", "API_TOKEN", K_STR, api_keys, "", 1,
      "comma-separated client API keys; empty: no auth, loopback only"),
    R("CORS_ORIGINS", NULL, K_STR, cors_origins, "", 0, "allowed browser origins, or *"),
    R("MAX_BODY_BYTES", NULL, K_SIZE, max_body_bytes, "32M", 0, "request body cap (413)"),
    R("MAX_HEADER_BYTES", NULL, K_SIZE, max_header_bytes, "64K", 0, "request header cap (431)"),
    R("STREAM_QUEUE_MAX_BYTES", NULL, K_SIZE, stream_queue_max_bytes, "1M", 0,
      "bytes queued for a slow client before the upstream is paused"),
    R("KEEPALIVE_INTERVAL", NULL, K_DUR, keepalive_ms, "15", 0,
      "seconds between SSE keep-alive comments while upstream is silent"),
    R("SHUTDOWN_GRACE", NULL, K_DUR, shutdown_grace_ms, "30", 0,
      "seconds running streams get to finish on SIGTERM"),
    R("MAX_ATTEMPTS", NULL, K_INT, max_attempts, "3", 0,
      "accounts tried per request before the error reaches the client"),
    R("DEFAULT_MODEL", NULL, K_STR, default_model, "auto", 0, "model when a request names none"),
    R("MODEL_ALIASES", NULL, K_STR, model_aliases, "", 0, "alias=model,alias2=model2"),
    R("MODELS_CACHE_TTL", NULL, K_DUR, models_cache_ms, "600", 0,
      "seconds the upstream model catalog is cached"),

    R("WARP_BASE_URL", NULL, K_STR, warp_base_url, "https://app.warp.dev", 0,
      "Warp app host (/ai/multi-agent, /proxy/token, /graphql/v2)"),
    R("FIREBASE_SECURETOKEN_URL", NULL, K_STR, securetoken_url,
      "https://securetoken.googleapis.com", 0, "Google securetoken host (/v1/token)"),
    R("FIREBASE_IDENTITY_URL", NULL, K_STR, identity_url, "https://identitytoolkit.googleapis.com",
      0, "Google identity toolkit host"),
    R("FIREBASE_API_KEY", NULL, K_STR, firebase_api_key, "AIzaSyBdy3O3S9hrdayLJxJ7mriBR4qgUaUygAs",
      0, "Warp's public Firebase web key"),
    R("REFRESH_ENDPOINT", NULL, K_STR, refresh_endpoint, "proxy", 0,
      "proxy (Warp /proxy/token) or securetoken"),
    R("WARP_CLIENT_VERSION", "CLIENT_VERSION", K_STR, client_version,
      "v0.2026.01.14.08.15.stable_04", 0, "x-warp-client-version"),
    R("WARP_OS_CATEGORY", "OS_CATEGORY", K_STR, os_category, "macOS", 0, "x-warp-os-category"),
    R("WARP_OS_NAME", "OS_NAME", K_STR, os_name, "macOS", 0, "x-warp-os-name"),
    R("WARP_OS_VERSION", "OS_VERSION", K_STR, os_version, "26.3", 0, "x-warp-os-version"),
    R("WARP_PROXY", NULL, K_STR, proxy, "", 1,
      "explicit upstream proxy URL (HTTPS_PROXY/ALL_PROXY/NO_PROXY also apply)"),
    R("WARP_CA_FILE", NULL, K_STR, ca_file, "", 0, "CA bundle for upstream TLS"),
    R("WARP_INSECURE_TLS", NULL, K_BOOL, insecure_tls, "false", 0,
      "skip upstream certificate checks (testing only)"),
    R("WARP_CONNECT_TIMEOUT", NULL, K_DUR, connect_timeout_ms, "10", 0, "seconds to connect"),
    R("WARP_FIRST_EVENT_TIMEOUT", NULL, K_DUR, first_event_timeout_ms, "60", 0,
      "seconds from request to the first upstream event"),
    R("WARP_IDLE_TIMEOUT", "WARP_READ_TIMEOUT", K_DUR, idle_timeout_ms, "120", 0,
      "seconds of upstream silence between events"),
    R("WARP_TOTAL_TIMEOUT", NULL, K_DUR, total_timeout_ms, "600", 0,
      "seconds for a whole upstream answer"),
    R("SSE_EVENT_MAX_BYTES", NULL, K_SIZE, sse_event_max_bytes, "16M", 0,
      "largest upstream event accepted"),
    R("STRUCT_MAX_DEPTH", NULL, K_INT, struct_max_depth, "64", 0,
      "deepest google.protobuf.Struct nesting accepted"),

    R("POOL_SERVICE_HOST", NULL, K_STR, pool_host, "127.0.0.1", 0,
      "admin API bind address (non-loopback needs ADMIN_TOKEN)"),
    R("POOL_SERVICE_PORT", NULL, K_INT, pool_port, "8019", 0, "admin API port"),
    R("ADMIN_TOKEN", NULL, K_STR, admin_token, "", 1, "bearer token for the admin API"),
    R("DATABASE_PATH", NULL, K_STR, database_path, "data/accounts.db", 0, "SQLite file"),
    R("POOL_MIN_SIZE", "MIN_POOL_SIZE", K_INT, pool_min_size, "5", 0,
      "usable accounts below which health is low"),
    R("POOL_MAX_SIZE", "MAX_POOL_SIZE", K_INT, pool_max_size, "10000", 0,
      "accounts the pool accepts"),
    R("ACCOUNTS_PER_REQUEST", NULL, K_INT, accounts_per_request, "1", 0,
      "accounts leased per allocation"),
    R("POOL_SELECTION", NULL, K_STR, selection, "lru", 0, "lru, round-robin or fill-first"),
    R("LEASE_TTL", NULL, K_DUR, lease_ttl_ms, "120", 0,
      "seconds a lease lives unless extended (reclaimed after a crash)"),
    R("LEASE_WAIT", NULL, K_DUR, lease_wait_ms, "10", 0,
      "seconds a request waits for an account busy at its cap (0: fail at once)"),
    R("LEASES", NULL, K_STR, leases, "auto", 0,
      "where request leases live: memory (serve only), database, or auto (memory in serve)"),
    R("TOKEN_REFRESH_MARGIN", NULL, K_DUR, refresh_margin_ms, "300", 0,
      "refresh an ID token this many seconds before it expires"),
    R("REFRESH_PER_MINUTE", NULL, K_INT, refresh_per_minute, "30", 0,
      "global cap on token refreshes per minute"),
    R("QUOTA_POLL_INTERVAL", NULL, K_DUR, quota_poll_ms, "900", 0,
      "seconds between GetRequestLimitInfo polls per account (jittered)"),
    R("FAILURE_THRESHOLD", NULL, K_INT, failure_threshold, "3", 0,
      "failures within FAILURE_WINDOW that cool an account down"),
    R("FAILURE_WINDOW", NULL, K_DUR, failure_window_ms, "300", 0, "seconds"),
    R("COOLDOWN", NULL, K_DUR, cooldown_ms, "120", 0, "seconds an account cools down"),
    R("ERROR_RULES_FILE", NULL, K_STR, error_rules_file, "", 0,
      "JSON file overriding the error classification table"),
    R("POOL_ENCRYPTION_KEY", NULL, K_STR, encryption_key, "", 1,
      "passphrase encrypting refresh tokens at rest"),
};

#define NROWS (sizeof rows / sizeof rows[0])

static void *slot(w2a_config *c, const row *r) { return (char *)c + r->off; }
static const void *cslot(const w2a_config *c, const row *r) { return (const char *)c + r->off; }

static int parse_value(const row *r, const char *v, w2a_config *c, w2a_err *err) {
  char *end = NULL;
  switch (r->kind) {
  case K_STR: {
    char **p = slot(c, r);
    char *d = strdup(v);
    if (!d) return W2A_ENOMEM;
    free(*p);
    *p = d;
    return 0;
  }
  case K_BOOL: {
    int64_t b;
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on"))
      b = 1;
    else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "off") || !*v)
      b = 0;
    else
      return w2a_errf(err, W2A_EINVAL, "%s: expected true or false, got \"%s\"", r->name, v);
    *(int64_t *)slot(c, r) = b;
    return 0;
  }
  case K_INT: {
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end)
      return w2a_errf(err, W2A_EINVAL, "%s: expected an integer, got \"%s\"", r->name, v);
    if (n < 0) return w2a_errf(err, W2A_EINVAL, "%s: must not be negative", r->name);
    *(int64_t *)slot(c, r) = n;
    return 0;
  }
  case K_SIZE: {
    errno = 0;
    double n = strtod(v, &end);
    if (errno || end == v || n < 0)
      return w2a_errf(err, W2A_EINVAL, "%s: expected a size like 32M, got \"%s\"", r->name, v);
    double mul = 1;
    if (*end == 'k' || *end == 'K')
      mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
      mul = 1024.0 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
      mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'i') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return w2a_errf(err, W2A_EINVAL, "%s: bad size suffix in \"%s\"", r->name, v);
    *(int64_t *)slot(c, r) = (int64_t)(n * mul);
    return 0;
  }
  case K_DUR: {
    errno = 0;
    double n = strtod(v, &end);
    if (errno || end == v || n < 0)
      return w2a_errf(err, W2A_EINVAL, "%s: expected seconds, got \"%s\"", r->name, v);
    double ms = n * 1000;
    if (!strcmp(end, "ms"))
      ms = n;
    else if (!strcmp(end, "s") || !*end)
      ms = n * 1000;
    else
      return w2a_errf(err, W2A_EINVAL, "%s: bad duration \"%s\"", r->name, v);
    *(int64_t *)slot(c, r) = (int64_t)ms;
    return 0;
  }
  }
  return W2A_EINVAL;
}

static const row *find_row(const char *name) {
  for (size_t i = 0; i < NROWS; i++)
    if (!strcmp(rows[i].name, name) || (rows[i].alias && !strcmp(rows[i].alias, name)))
      return &rows[i];
  return NULL;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1]))
    *--e = 0;
  return s;
}

static int load_file(w2a_config *c, const char *path, int must_exist, w2a_err *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    if (!must_exist && errno == ENOENT) return 0;
    return w2a_errf(err, W2A_EIO, "cannot open env file %s: %s", path, strerror(errno));
  }
  char line[8192];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (!*s || *s == '#') continue;
    if (!strncmp(s, "export ", 7)) s = trim(s + 7);
    char *eq = strchr(s, '=');
    if (!eq) {
      rc = w2a_errf(err, W2A_EINVAL, "%s:%d: expected NAME=value", path, lineno);
      break;
    }
    *eq = 0;
    char *name = trim(s), *val = trim(eq + 1);
    size_t vl = strlen(val);
    if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
      val[vl - 1] = 0;
      val++;
    } else {
      char *hash = strstr(val, " #"); /* trailing comment */
      if (hash) *hash = 0, val = trim(val);
    }
    const row *r = find_row(name);
    if (!r) continue; /* the file may hold settings for other tools */
    if ((rc = parse_value(r, val, c, err))) {
      char tmp[256];
      snprintf(tmp, sizeof tmp, "%s", err ? err->msg : "");
      w2a_errf(err, rc, "%s:%d: %s", path, lineno, tmp);
      break;
    }
  }
  fclose(f);
  return rc;
}

int w2a_config_load(w2a_config *c, const char *env_file, w2a_err *err) {
  int rc;
  memset(c, 0, sizeof *c);
  for (size_t i = 0; i < NROWS; i++)
    if ((rc = parse_value(&rows[i], rows[i].def, c, err))) return rc;
  const char *path = env_file;
  int must = path != NULL;
  if (!path) path = getenv("W2A_ENV_FILE"), must = path != NULL;
  if (!path) path = "config/warp2api.env";
  if ((rc = load_file(c, path, must, err))) return rc;
  for (size_t i = 0; i < NROWS; i++) {
    const char *v = getenv(rows[i].name);
    if (!v && rows[i].alias) v = getenv(rows[i].alias);
    if (v && (rc = parse_value(&rows[i], v, c, err))) return rc;
  }
  if (w2a_log_level_parse(c->log_level) < 0)
    return w2a_errf(err, W2A_EINVAL, "LOG_LEVEL: unknown level \"%s\"", c->log_level);
  if (c->port <= 0 || c->port > 65535 || c->pool_port <= 0 || c->pool_port > 65535)
    return w2a_errf(err, W2A_EINVAL, "PORT/POOL_SERVICE_PORT: must be 1..65535");
  if (strcmp(c->refresh_endpoint, "proxy") && strcmp(c->refresh_endpoint, "securetoken"))
    return w2a_errf(err, W2A_EINVAL, "REFRESH_ENDPOINT: expected proxy or securetoken");
  if (strcmp(c->selection, "lru") && strcmp(c->selection, "round-robin") &&
      strcmp(c->selection, "fill-first"))
    return w2a_errf(err, W2A_EINVAL, "POOL_SELECTION: expected lru, round-robin or fill-first");
  if (strcmp(c->leases, "auto") && strcmp(c->leases, "memory") && strcmp(c->leases, "database"))
    return w2a_errf(err, W2A_EINVAL, "LEASES: expected auto, memory or database");
  if (c->accounts_per_request < 1)
    return w2a_errf(err, W2A_EINVAL, "ACCOUNTS_PER_REQUEST: must be at least 1");
  if (c->max_attempts < 1) return w2a_errf(err, W2A_EINVAL, "MAX_ATTEMPTS: must be at least 1");
  return 0;
}

void w2a_config_free(w2a_config *c) {
  for (size_t i = 0; i < NROWS; i++)
    if (rows[i].kind == K_STR) {
      char **p = slot(c, &rows[i]);
      free(*p);
      *p = NULL;
    }
}

static void print_value(const w2a_config *c, const row *r, FILE *out) {
  switch (r->kind) {
  case K_STR: {
    const char *v = *(char *const *)cslot(c, r);
    if (r->secret) {
      char m[48];
      w2a_mask_secret(v, m);
      fputs(m, out);
    } else {
      fputs(v ? v : "", out);
    }
    break;
  }
  case K_BOOL: fputs(*(const int64_t *)cslot(c, r) ? "true" : "false", out); break;
  case K_INT:
  case K_SIZE: fprintf(out, "%lld", (long long)*(const int64_t *)cslot(c, r)); break;
  case K_DUR: fprintf(out, "%gs", (double)*(const int64_t *)cslot(c, r) / 1000.0); break;
  }
}

void w2a_config_print(const w2a_config *c, FILE *out) {
  for (size_t i = 0; i < NROWS; i++) {
    fprintf(out, "%s=", rows[i].name);
    print_value(c, &rows[i], out);
    fputc('\n', out);
  }
}

void w2a_config_print_help(FILE *out) {
  for (size_t i = 0; i < NROWS; i++)
    fprintf(out, "  %-26s %-10s %s%s%s%s\n", rows[i].name, *rows[i].def ? rows[i].def : "\"\"",
            rows[i].help, rows[i].alias ? " (also " : "", rows[i].alias ? rows[i].alias : "",
            rows[i].alias ? ")" : "");
}
