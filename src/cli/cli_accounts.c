/* cli_accounts.c - `warp2api accounts …`: manage the pool's accounts from the shell.
 *
 * Every subcommand opens the store directly (synchronously; no event loop) and works
 * while `warp2api pool`/`gateway` run on the same database: SQLite in WAL mode with a
 * busy timeout, and every change is one transaction. The network steps (add's token
 * check, login's email-link sign-in) use libcurl easy handles, which may block here;
 * `refresh` reuses the pool's own refresh path on a private loop so the one-hour rule,
 * the cross-process refresh lock and token rotation behave exactly as in the service.
 *
 * Secrets: refresh tokens are read from a file or stdin (argv is visible in ps), never
 * printed except by `export --include-secrets`. Exit codes: 0 ok, 1 failure, 2 usage. */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "http/client.h"
#include "pool/admin.h"
#include "pool/pool.h"
#include "pool/store.h"

#define IMPORT_MAX_BYTES (256u << 20) /* 256 MiB: far above 10,000 accounts */
#define HTTP_MAX_BYTES (1u << 20)

static void usage(FILE *out) {
  fputs("usage: warp2api accounts COMMAND [ARGS]\n"
        "\n"
        "  add [--email E] [--refresh-token-file F | --refresh-token T] [--label L]\n"
        "      [--cap N] [--weight N] [--no-verify]\n"
        "                          add one account; the refresh token is read from F or\n"
        "                          stdin (argv shows in ps); it is checked with Warp once,\n"
        "                          which also tells the email and uid\n"
        "  import FILE|- [--update] import a JSON array or JSONL of {email, refresh_token,\n"
        "                          uid?, label?, weight?, cap?}; --update replaces tokens\n"
        "                          of accounts that exist (default: skip them)\n"
        "  export [--format json|jsonl] [--include-secrets] [--state S]\n"
        "                          write accounts to stdout (refresh tokens only with\n"
        "                          --include-secrets)\n"
        "  list [--state S] [--json] table of accounts, with why each is not selectable\n"
        "  show EMAIL [--json]     one account in detail\n"
        "  remove EMAIL            delete an account and its leases\n"
        "  disable EMAIL [--reason R]\n"
        "  enable EMAIL            back to available (clears cool-down and failure counts)\n"
        "  refresh [EMAIL] [--force]\n"
        "                          refresh ID tokens now (without --force, tokens that are\n"
        "                          still fresh are skipped: the one-hour rule)\n"
        "  login EMAIL             sign in by email link to your own mailbox and store the\n"
        "                          account\n"
        "\n"
        "states: available, cooling, quota_exhausted, invalid, blocked, disabled\n",
        out);
}

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("warp2api accounts: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs(" (see warp2api accounts --help)\n", stderr);
  return 2;
}

static int open_store(const w2a_config *cfg, w2a_store **s) {
  w2a_store_opts o = {.path = cfg->database_path, .encryption_key = cfg->encryption_key};
  w2a_err err = {0};
  if (w2a_store_open(s, &o, &err)) {
    fprintf(stderr, "warp2api accounts: cannot open the database %s: %s\n", cfg->database_path,
            err.msg);
    return -1;
  }
  return 0;
}

static int parse_int_arg(const char *opt, const char *v, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (!*v || *end || errno || x < lo || x > hi) {
    fprintf(stderr, "warp2api accounts: %s must be an integer from %ld to %ld, got \"%s\"\n", opt,
            lo, hi, v);
    return -1;
  }
  *out = (int)x;
  return 0;
}

/* ---- blocking HTTP (libcurl easy) -------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  w2a_buf *b = ud;
  return w2a_buf_append(b, p, sz * n) ? 0 : sz * n;
}

/* POST body to url; *status is the HTTP status (0: transport failure, errbuf says why). */
static int http_post(const w2a_config *cfg, const char *url, const char *ctype, const char *body,
                     long *status, w2a_buf *out, char errbuf[CURL_ERROR_SIZE]) {
  CURL *c = curl_easy_init();
  if (!c) {
    snprintf(errbuf, CURL_ERROR_SIZE, "libcurl init failed");
    return -1;
  }
  struct curl_slist *h = NULL;
  char line[256];
  snprintf(line, sizeof line, "Content-Type: %s", ctype);
  h = curl_slist_append(h, line);
  h = curl_slist_append(h, "Accept: application/json");
  snprintf(line, sizeof line, "x-warp-client-version: %s", cfg->client_version);
  h = curl_slist_append(h, line);
  snprintf(line, sizeof line, "x-warp-os-category: %s", cfg->os_category);
  h = curl_slist_append(h, line);
  snprintf(line, sizeof line, "x-warp-os-name: %s", cfg->os_name);
  h = curl_slist_append(h, line);
  snprintf(line, sizeof line, "x-warp-os-version: %s", cfg->os_version);
  h = curl_slist_append(h, line);
  errbuf[0] = 0;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
  if (cfg->proxy && *cfg->proxy) curl_easy_setopt(c, CURLOPT_PROXY, cfg->proxy);
  if (cfg->ca_file && *cfg->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
  if (cfg->insecure_tls) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  CURLcode rc = curl_easy_perform(c);
  *status = 0;
  if (rc == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  else if (!errbuf[0])
    snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return rc == CURLE_OK ? 0 : -1;
}

/* The error text of a Google/Warp error body ({"error":{"message"}} or {"error":"…"}). */
static void error_text(const char *body, char *out, size_t n) {
  json_object *o = json_tokener_parse(body ? body : ""), *e, *m;
  snprintf(out, n, "%.200s", body && *body ? body : "(empty body)");
  if (o && json_object_object_get_ex(o, "error", &e)) {
    if (json_object_is_type(e, json_type_string))
      snprintf(out, n, "%s", json_object_get_string(e));
    else if (json_object_object_get_ex(e, "message", &m))
      snprintf(out, n, "%s", json_object_get_string(m));
  }
  json_object_put(o);
}

static const char *jstr(json_object *o, const char *k) {
  json_object *v;
  return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}

/* A JWT's payload as JSON (NULL when it is not one). */
static json_object *jwt_payload(const char *jwt) {
  const char *d1 = jwt ? strchr(jwt, '.') : NULL;
  const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  if (!d2 || d2 - d1 - 1 > 16384) return NULL;
  size_t n = (size_t)(d2 - d1 - 1), bad;
  unsigned char *raw = malloc(w2a_b64_dec_max(n) + 1);
  if (!raw) return NULL;
  long m = w2a_b64_decode(d1 + 1, n, raw, &bad);
  json_object *o = NULL;
  if (m > 0) {
    json_tokener *tok = json_tokener_new();
    if (tok) o = json_tokener_parse_ex(tok, (const char *)raw, (int)m);
    json_tokener_free(tok);
  }
  free(raw);
  return o;
}

static char *url_encode(const char *s) {
  CURL *c = curl_easy_init();
  char *e = c ? curl_easy_escape(c, s, 0) : NULL;
  char *r = e ? strdup(e) : NULL;
  curl_free(e);
  if (c) curl_easy_cleanup(c);
  return r;
}

/* What a refresh-token exchange told us. Strings are heap (free with tokens_free). */
typedef struct tokens {
  char *id_token, *refresh_token, *uid, *email;
  uint64_t exp_ms;
} tokens;

static void tokens_free(tokens *t) {
  w2a_account a = {.id_token = t->id_token, .refresh_token = t->refresh_token};
  w2a_account_clear(&a); /* wipes */
  free(t->uid);
  free(t->email);
  memset(t, 0, sizeof *t);
}

/* Fill uid/email/exp from the ID token's claims where the response did not say. */
static void tokens_from_jwt(tokens *t) {
  json_object *p = jwt_payload(t->id_token), *v;
  if (!p) return;
  const char *s;
  if (!t->email && (s = jstr(p, "email"))) t->email = strdup(s);
  if (!t->uid && ((s = jstr(p, "user_id")) || (s = jstr(p, "sub")))) t->uid = strdup(s);
  if (!t->exp_ms && json_object_object_get_ex(p, "exp", &v))
    t->exp_ms = (uint64_t)json_object_get_int64(v) * 1000u;
  json_object_put(p);
}

/* Exchange a refresh token once (spec §3.2, REFRESH_ENDPOINT). Returns 0 ok, 1 rejected
 * by the server (msg says why), -1 unreachable. */
static int exchange_refresh_token(const w2a_config *cfg, const char *rt, tokens *t, char *msg,
                                  size_t msgn) {
  memset(t, 0, sizeof *t);
  char *enc = url_encode(rt);
  if (!enc) {
    snprintf(msg, msgn, "out of memory");
    return -1;
  }
  w2a_buf url, body, out;
  w2a_buf_init(&url, 4096);
  w2a_buf_init(&body, 3 * W2A_TOKEN_MAX + 256);
  w2a_buf_init(&out, HTTP_MAX_BYTES);
  int securetoken = !strcmp(cfg->refresh_endpoint, "securetoken");
  const char *ctype;
  if (securetoken) {
    w2a_buf_printf(&url, "%s/v1/token?key=%s", cfg->securetoken_url, cfg->firebase_api_key);
    w2a_buf_puts(&body, "{\"grant_type\":\"refresh_token\",\"refresh_token\":");
    w2a_buf_put_json_str(&body, rt, strlen(rt));
    w2a_buf_puts(&body, "}");
    ctype = "application/json";
  } else {
    w2a_buf_printf(&url, "%s/proxy/token?key=%s", cfg->warp_base_url, cfg->firebase_api_key);
    w2a_buf_printf(&body, "grant_type=refresh_token&refresh_token=%s", enc);
    ctype = "application/x-www-form-urlencoded";
  }
  free(enc);
  long status = 0;
  char errbuf[CURL_ERROR_SIZE];
  int rc = -1;
  if (!url.data || !body.data) {
    snprintf(msg, msgn, "out of memory");
  } else if (http_post(cfg, url.data, ctype, body.data, &status, &out, errbuf)) {
    snprintf(msg, msgn, "%s unreachable: %s", url.data, errbuf);
  } else if (status != 200) {
    char e[200];
    error_text(out.data, e, sizeof e);
    snprintf(msg, msgn, "HTTP %ld: %s", status, e);
    rc = status >= 500 || status == 429 ? -1 : 1;
  } else {
    json_object *o = json_tokener_parse(out.data ? out.data : ""), *v;
    const char *idt = jstr(o, "id_token");
    if (!idt) idt = jstr(o, "access_token");
    if (!idt) {
      snprintf(msg, msgn, "the token endpoint answered without an id_token");
    } else {
      t->id_token = strdup(idt);
      const char *s;
      if ((s = jstr(o, "refresh_token")) && strcmp(s, rt)) t->refresh_token = strdup(s);
      if ((s = jstr(o, "user_id"))) t->uid = strdup(s);
      if (json_object_object_get_ex(o, "expires_in", &v)) {
        long long secs = json_object_is_type(v, json_type_string)
                             ? strtoll(json_object_get_string(v), NULL, 10)
                             : (long long)json_object_get_int64(v);
        if (secs > 0) t->exp_ms = w2a_now_ms() + (uint64_t)secs * 1000u;
      }
      tokens_from_jwt(t);
      rc = 0;
    }
    json_object_put(o);
  }
  w2a_buf_free(&url);
  /* the body held the refresh token */
  if (body.data) memset(body.data, 0, body.cap);
  w2a_buf_free(&body);
  w2a_buf_free(&out);
  return rc;
}

/* ---- reading secrets ------------------------------------------------------------------- */

/* Read a token from a file ("-": stdin): the first non-empty line, trimmed. */
static char *read_token(const char *path, const char *what) {
  FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
  if (!f) {
    fprintf(stderr, "warp2api accounts: cannot open %s %s: %s\n", what, path, strerror(errno));
    return NULL;
  }
  if (f == stdin && isatty(0)) fprintf(stderr, "paste the %s, then press Enter: ", what);
  char *line = NULL, *tok = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) >= 0) {
    char *s = line, *e = line + n;
    while (s < e && strchr(" \t\r\n", *s))
      s++;
    while (e > s && strchr(" \t\r\n", e[-1]))
      e--;
    if (s == e) continue;
    tok = w2a_strndup(s, (size_t)(e - s));
    break;
  }
  if (line) memset(line, 0, cap);
  free(line);
  if (f != stdin) fclose(f);
  if (!tok)
    fprintf(stderr, "warp2api accounts: no %s in %s\n", what, path);
  else if (strlen(tok) > W2A_TOKEN_MAX) {
    fprintf(stderr, "warp2api accounts: the %s is too long (%zu bytes, at most %d)\n", what,
            strlen(tok), W2A_TOKEN_MAX);
    free(tok);
    tok = NULL;
  }
  return tok;
}

static void secret_free(char *s) {
  w2a_account a = {.refresh_token = s};
  w2a_account_clear(&a);
}

/* ---- add -------------------------------------------------------------------------------- */

static int valid_email_arg(const char *e) {
  const char *at = e ? strchr(e, '@') : NULL;
  if (!at || at == e || !at[1] || strchr(at + 1, '@') || strlen(e) >= W2A_EMAIL_MAX) return 0;
  for (const unsigned char *p = (const unsigned char *)e; *p; p++)
    if (*p <= ' ' || *p == 0x7f || *p == '/') return 0;
  return 1;
}

static int cmd_add(int argc, char **argv, w2a_config *cfg) {
  const char *email = NULL, *file = NULL, *label = NULL, *argtok = NULL;
  int cap = 0, weight = 0, verify = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int more = i + 1 < argc;
    if (!strcmp(a, "--email") && more)
      email = argv[++i];
    else if (!strcmp(a, "--refresh-token-file") && more)
      file = argv[++i];
    else if (!strcmp(a, "--refresh-token") && more)
      argtok = argv[++i];
    else if (!strcmp(a, "--label") && more)
      label = argv[++i];
    else if (!strcmp(a, "--cap") && more) {
      if (parse_int_arg("--cap", argv[++i], 1, 1000, &cap)) return 2;
    } else if (!strcmp(a, "--weight") && more) {
      if (parse_int_arg("--weight", argv[++i], 1, 1000, &weight)) return 2;
    } else if (!strcmp(a, "--no-verify"))
      verify = 0;
    else
      return usage_err("add: unknown or incomplete option %s", a);
  }
  if (file && argtok) return usage_err("add: give --refresh-token-file or --refresh-token%s", "");
  if (email && !valid_email_arg(email))
    return usage_err("add: --email must be an email address like name@example.com, got \"%s\"",
                     email);
  if (label && strlen(label) >= W2A_LABEL_MAX) return usage_err("add: --label is too long%s", "");
  char *rt;
  if (argtok) {
    fputs("warp2api accounts: warning: --refresh-token puts the token in the process list; "
          "prefer --refresh-token-file or stdin\n",
          stderr);
    rt = strdup(argtok);
  } else {
    rt = read_token(file ? file : "-", "refresh token");
  }
  if (!rt) return 1;
  for (const unsigned char *p = (const unsigned char *)rt; *p; p++)
    if (*p <= ' ' || *p >= 0x7f) {
      fputs("warp2api accounts: the refresh token contains characters a token cannot have\n",
            stderr);
      secret_free(rt);
      return 1;
    }

  tokens t = {0};
  int rc = 1;
  w2a_store *s = NULL;
  if (verify) {
    char msg[512];
    int v = exchange_refresh_token(cfg, rt, &t, msg, sizeof msg);
    if (v > 0) {
      fprintf(stderr, "warp2api accounts: the refresh token was rejected: %s\n", msg);
      goto out;
    }
    if (v < 0) {
      fprintf(stderr,
              "warp2api accounts: warning: could not verify the token (%s); storing it "
              "unverified\n",
              msg);
    } else if (email && t.email && strcasecmp(email, t.email)) {
      fprintf(stderr, "warp2api accounts: the token belongs to %s, not %s\n", t.email, email);
      goto out;
    }
  }
  if (!email) email = t.email;
  if (!email) {
    fputs("warp2api accounts: add: --email is required (the token could not tell it)\n", stderr);
    rc = 2;
    goto out;
  }
  if (open_store(cfg, &s)) goto out;
  w2a_account_new n = {.email = email,
                       .refresh_token = t.refresh_token ? t.refresh_token : rt,
                       .id_token = t.id_token,
                       .id_token_exp_ms = t.exp_ms,
                       .uid = t.uid,
                       .label = label,
                       .weight = weight,
                       .cap = cap};
  int64_t id = 0;
  w2a_err err = {0};
  int r = w2a_store_add(s, &n, w2a_now_ms(), &id, &err);
  if (r == W2A_ESTATE) {
    fprintf(stderr,
            "warp2api accounts: account %s already exists (remove it first, or use "
            "import --update)\n",
            email);
    goto out;
  }
  if (r) {
    fprintf(stderr, "warp2api accounts: cannot add %s: %s\n", email, err.msg);
    goto out;
  }
  printf("added %s (id %lld%s%s)%s\n", email, (long long)id, t.uid ? ", uid " : "",
         t.uid ? t.uid : "",
         t.id_token ? ", verified"
         : verify   ? ", NOT verified"
                    : "");
  rc = 0;
out:
  if (s) w2a_store_close(s);
  tokens_free(&t);
  secret_free(rt);
  return rc;
}

/* ---- import / export ---------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
  if (!f) {
    fprintf(stderr, "warp2api accounts: cannot open %s: %s\n", path, strerror(errno));
    return NULL;
  }
  w2a_buf b;
  w2a_buf_init(&b, IMPORT_MAX_BYTES);
  char chunk[65536];
  size_t n;
  int over = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (w2a_buf_append(&b, chunk, n)) {
      over = 1;
      break;
    }
  int ioerr = ferror(f);
  if (f != stdin) fclose(f);
  if (over || ioerr) {
    fprintf(stderr, "warp2api accounts: cannot read %s: %s\n", path,
            over ? "larger than 256 MiB" : strerror(errno));
    w2a_buf_free(&b);
    return NULL;
  }
  if (!b.data) w2a_buf_puts(&b, "");
  return w2a_buf_steal(&b, len);
}

static int cmd_import(int argc, char **argv, w2a_config *cfg) {
  const char *path = NULL;
  int mode = W2A_IMPORT_SKIP;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--update"))
      mode = W2A_IMPORT_UPDATE;
    else if (!path && (argv[i][0] != '-' || !strcmp(argv[i], "-")))
      path = argv[i];
    else
      return usage_err("import: unexpected argument %s", argv[i]);
  }
  if (!path) return usage_err("import: which file? (FILE, or - for stdin)%s", "");
  size_t len = 0;
  char *text = slurp(path, &len);
  if (!text) return 1;
  w2a_admin_import im;
  w2a_err err = {0};
  int rc = 1;
  w2a_store *s = NULL;
  w2a_import_result *res = NULL;
  if (w2a_admin_import_parse(text, len, &im, &err)) {
    fprintf(stderr, "warp2api accounts: %s: %s\n", path, err.msg);
    memset(text, 0, len);
    free(text);
    return 1;
  }
  const char *unit = im.is_array ? "item" : "line";
  for (size_t i = 0; i < im.nerrs; i++)
    fprintf(stderr, "%s:%s %d: %s\n", path, unit, im.errs[i].line, im.errs[i].msg);
  int64_t cnt[4] = {0};
  if (im.nrows) {
    if (open_store(cfg, &s)) goto out;
    res = calloc(im.nrows, sizeof *res);
    if (!res) goto out;
    if (w2a_store_import(s, im.rows, im.nrows, (w2a_import_mode)mode, w2a_now_ms(), res, &err)) {
      fprintf(stderr, "warp2api accounts: import failed, nothing was written: %s\n", err.msg);
      goto out;
    }
    for (size_t i = 0; i < im.nrows; i++) {
      cnt[res[i]]++;
      if (res[i] == W2A_IMPORTED_INVALID)
        fprintf(stderr, "%s:%s %d: the store refused the record\n", path, unit, im.row_line[i]);
    }
  }
  int64_t bad = (int64_t)im.nerrs + cnt[W2A_IMPORTED_INVALID];
  printf("%lld imported, %lld updated, %lld skipped (already present), %lld invalid\n",
         (long long)cnt[W2A_IMPORTED_NEW], (long long)cnt[W2A_IMPORTED_UPDATED],
         (long long)cnt[W2A_IMPORTED_SKIPPED], (long long)bad);
  rc = bad ? 1 : 0;
out:
  free(res);
  if (s) w2a_store_close(s);
  w2a_admin_import_free(&im);
  memset(text, 0, len);
  free(text);
  return rc;
}

typedef struct export_ctx {
  int jsonl, secrets, n;
} export_ctx;

static int export_cb(const w2a_account *a, void *ud) {
  export_ctx *c = ud;
  json_object *o = w2a_admin_export_json(a, c->secrets ? W2A_ADMIN_JSON_SECRETS : 0);
  if (!o) return -1;
  const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
  if (c->jsonl)
    printf("%s\n", s);
  else
    printf("%s\n  %s", c->n ? "," : "", s);
  c->n++;
  json_object_put(o);
  return 0;
}

static int parse_state_arg(const char *v, int *st) {
  if (!strcmp(v, "all")) {
    *st = -1;
    return 0;
  }
  *st = w2a_acct_state_parse(v);
  if (*st < 0) {
    fprintf(stderr,
            "warp2api accounts: --state must be one of available, cooling, quota_exhausted, "
            "invalid, blocked, disabled, all; got \"%s\"\n",
            v);
    return -1;
  }
  return 0;
}

static int cmd_export(int argc, char **argv, w2a_config *cfg) {
  export_ctx c = {0};
  int state = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--format") && i + 1 < argc) {
      const char *f = argv[++i];
      if (!strcmp(f, "jsonl"))
        c.jsonl = 1;
      else if (strcmp(f, "json"))
        return usage_err("export: --format must be json or jsonl, got %s", f);
    } else if (!strcmp(a, "--include-secrets"))
      c.secrets = 1;
    else if (!strcmp(a, "--state") && i + 1 < argc) {
      if (parse_state_arg(argv[++i], &state)) return 2;
    } else
      return usage_err("export: unknown or incomplete option %s", a);
  }
  if (c.secrets)
    fputs("warp2api accounts: warning: the export contains refresh tokens; keep it private\n",
          stderr);
  w2a_store *s;
  if (open_store(cfg, &s)) return 1;
  w2a_store_filter f = {.state = state, .flags = c.secrets ? W2A_STORE_SECRETS : 0};
  w2a_err err = {0};
  if (!c.jsonl) fputs("[", stdout);
  int rc = w2a_store_list(s, &f, export_cb, &c, &err);
  if (!c.jsonl) fputs(c.n ? "\n]\n" : "]\n", stdout);
  w2a_store_close(s);
  if (rc < 0) {
    fprintf(stderr, "warp2api accounts: export failed: %s\n", err.msg);
    return 1;
  }
  fflush(stdout);
  fprintf(stderr, "exported %d account(s)\n", c.n);
  return 0;
}

/* ---- list / show ------------------------------------------------------------------------ */

typedef struct list_ctx {
  w2a_account *a;
  size_t n, cap;
} list_ctx;

static int list_cb(const w2a_account *a, void *ud) {
  list_ctx *c = ud;
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 64;
    w2a_account *p = realloc(c->a, nc * sizeof *p);
    if (!p) return -1;
    c->a = p;
    c->cap = nc;
  }
  c->a[c->n] = *a;
  c->a[c->n].refresh_token = c->a[c->n].id_token = NULL;
  c->n++;
  return 0;
}

static void fmt_quota(const w2a_account *a, char *out, size_t n) {
  if (a->quota.unlimited)
    snprintf(out, n, "unlimited");
  else if (a->quota.limit < 0 || a->quota.used < 0)
    snprintf(out, n, "-");
  else
    snprintf(out, n, "%lld/%lld", (long long)a->quota.used, (long long)a->quota.limit);
}

static int cmd_list(int argc, char **argv, w2a_config *cfg) {
  int state = -1, as_json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else if (!strcmp(argv[i], "--state") && i + 1 < argc) {
      if (parse_state_arg(argv[++i], &state)) return 2;
    } else
      return usage_err("list: unknown or incomplete option %s", argv[i]);
  }
  w2a_store *s;
  if (open_store(cfg, &s)) return 1;
  list_ctx c = {0};
  w2a_store_filter f = {.state = state};
  w2a_err err = {0};
  int rc = w2a_store_list(s, &f, list_cb, &c, &err);
  if (rc < 0) {
    fprintf(stderr, "warp2api accounts: list failed: %s\n", err.msg);
    free(c.a);
    w2a_store_close(s);
    return 1;
  }
  uint64_t now = w2a_now_ms();
  json_object *arr = as_json ? json_object_new_array() : NULL;
  if (!as_json)
    printf("%-6s %-36s %-15s %-6s %-7s %-12s %-12s %s\n", "ID", "EMAIL", "STATE", "LEASES", "USES",
           "QUOTA", "LABEL", "NOT SELECTABLE BECAUSE");
  for (size_t i = 0; i < c.n; i++) {
    char why[256] = "";
    const char *w = w2a_store_why_not(s, c.a[i].id, now, why, sizeof why, &err) == 0 ? why : NULL;
    if (as_json) {
      json_object_array_add(arr, w2a_admin_account_json(&c.a[i], w, now));
      continue;
    }
    char q[48], leases[24];
    fmt_quota(&c.a[i], q, sizeof q);
    snprintf(leases, sizeof leases, "%d/%d", c.a[i].active_leases, c.a[i].cap);
    printf("%-6lld %-36s %-15s %-6s %-7lld %-12s %-12s %s\n", (long long)c.a[i].id, c.a[i].email,
           w2a_acct_state_name(c.a[i].state), leases, (long long)c.a[i].uses, q,
           c.a[i].label[0] ? c.a[i].label : "-", w ? (*w ? w : "-") : "?");
  }
  if (as_json) {
    printf("%s\n",
           json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    json_object_put(arr);
  } else {
    printf("%zu account(s)\n", c.n);
  }
  free(c.a);
  w2a_store_close(s);
  return 0;
}

static int find_email(w2a_store *s, const char *email, w2a_account *a) {
  w2a_err err = {0};
  memset(a, 0, sizeof *a);
  int rc = w2a_store_get_by_email(s, email, 0, a, &err);
  if (rc == W2A_ENOTFOUND)
    fprintf(stderr, "warp2api accounts: no account %s\n", email);
  else if (rc)
    fprintf(stderr, "warp2api accounts: cannot read %s: %s\n", email, err.msg);
  return rc;
}

static void show_time(const char *k, uint64_t ms) {
  char t[32];
  if (ms) w2a_admin_iso_time(ms, t);
  printf("  %-22s %s\n", k, ms ? t : "never");
}

static int cmd_show(int argc, char **argv, w2a_config *cfg) {
  const char *email = NULL;
  int as_json = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      as_json = 1;
    else if (!email && argv[i][0] != '-')
      email = argv[i];
    else
      return usage_err("show: unexpected argument %s", argv[i]);
  }
  if (!email) return usage_err("show: which account? (EMAIL)%s", "");
  w2a_store *s;
  if (open_store(cfg, &s)) return 1;
  w2a_account a;
  int rc = find_email(s, email, &a);
  if (rc) {
    w2a_store_close(s);
    return 1;
  }
  char why[256] = "";
  w2a_err err = {0};
  uint64_t now = w2a_now_ms();
  const char *w = w2a_store_why_not(s, a.id, now, why, sizeof why, &err) == 0 ? why : NULL;
  w2a_store_close(s);
  if (as_json) {
    json_object *o = w2a_admin_account_json(&a, w, now);
    printf("%s\n",
           json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    json_object_put(o);
    return 0;
  }
  char q[48];
  fmt_quota(&a, q, sizeof q);
  printf("%s\n", a.email);
  printf("  %-22s %lld\n", "id", (long long)a.id);
  printf("  %-22s %s\n", "uid", a.uid[0] ? a.uid : "-");
  printf("  %-22s %s\n", "label", a.label[0] ? a.label : "-");
  printf("  %-22s %s%s%s\n", "state", w2a_acct_state_name(a.state), a.state_reason[0] ? " - " : "",
         a.state_reason);
  if (a.state_until_ms) show_time("until", a.state_until_ms);
  printf("  %-22s %s\n", "selectable", !w ? "unknown" : !*w ? "yes" : "no");
  if (w && *w) printf("  %-22s %s\n", "not selectable because", w);
  printf("  %-22s %d of %d\n", "active leases", a.active_leases, a.cap);
  printf("  %-22s %d\n", "weight", a.weight);
  printf("  %-22s %s\n", "quota (used/limit)", q);
  if (a.quota.reset_ms) show_time("quota resets", a.quota.reset_ms);
  show_time("quota checked", a.quota.updated_ms);
  printf("  %-22s %s\n", "id token", a.has_id_token ? "stored" : "none");
  if (a.has_id_token) show_time("id token expires", a.id_token_exp_ms);
  show_time("last refresh", a.last_refresh_ms);
  printf("  %-22s %lld (%lld ok, %lld errors, %lld consecutive failures)\n", "uses",
         (long long)a.uses, (long long)a.successes, (long long)a.errors,
         (long long)a.consecutive_failures);
  if (a.last_error[0]) printf("  %-22s %s\n", "last error", a.last_error);
  show_time("last used", a.last_used_ms);
  show_time("created", a.created_ms);
  return 0;
}

/* ---- remove / disable / enable ----------------------------------------------------------- */

static int cmd_state(int argc, char **argv, w2a_config *cfg, int what) {
  const char *email = NULL, *reason = NULL;
  for (int i = 1; i < argc; i++) {
    if (what == W2A_ST_DISABLED && !strcmp(argv[i], "--reason") && i + 1 < argc)
      reason = argv[++i];
    else if (!email && argv[i][0] != '-')
      email = argv[i];
    else
      return usage_err("unexpected argument %s", argv[i]);
  }
  if (!email) return usage_err("%s: which account? (EMAIL)", argv[0]);
  if (reason && strlen(reason) >= W2A_REASON_MAX) return usage_err("--reason is too long%s", "");
  w2a_store *s;
  if (open_store(cfg, &s)) return 1;
  w2a_account a;
  int rc = find_email(s, email, &a);
  w2a_err err = {0};
  if (!rc) {
    if (what < 0)
      rc = w2a_store_delete(s, a.id, &err);
    else
      rc = w2a_store_set_state(
          s, a.id, (w2a_acct_state)what,
          what == W2A_ST_DISABLED ? (reason ? reason : "disabled by the operator") : NULL, 0,
          w2a_now_ms(), &err);
    if (rc)
      fprintf(stderr, "warp2api accounts: %s %s failed: %s\n", argv[0], email, err.msg);
    else if (what < 0)
      printf("removed %s\n", a.email);
    else
      printf("%s is now %s\n", a.email, w2a_acct_state_name((w2a_acct_state)what));
  }
  w2a_store_close(s);
  return rc ? 1 : 0;
}

/* ---- refresh (through the pool, on a private loop) -------------------------------------- */

typedef struct refresh_ctx {
  int64_t *ids;
  char (*emails)[W2A_EMAIL_MAX];
  size_t n, next, running;
  int force, failed, closing;
  w2a_pool *pool;
  w2a_http_client *http;
  int counts[4];
} refresh_ctx;

typedef struct refresh_one {
  refresh_ctx *c;
  size_t i;
} refresh_one;

static void refresh_next(refresh_ctx *c);

static void refresh_cb(int rc, w2a_refresh_status st, const char *msg, void *ud) {
  refresh_one *one = ud;
  refresh_ctx *c = one->c;
  static const char *const names[] = {"refreshed", "skipped", "failed", "invalid"};
  unsigned k = (unsigned)st < 4 ? (unsigned)st : 2;
  c->counts[k]++;
  printf("%-36s %-9s %s\n", c->emails[one->i], names[k],
         msg && *msg ? msg
         : k == 1    ? "still fresh (use --force)"
         : rc        ? w2a_strerror(rc)
                     : "");
  free(one);
  c->running--;
  refresh_next(c);
}

static void pool_closed(void *ud) {
  refresh_ctx *c = ud;
  w2a_http_client_close(c->http, NULL, NULL);
}

static void refresh_next(refresh_ctx *c) {
  while (c->next < c->n && c->running < 4) {
    refresh_one *one = malloc(sizeof *one);
    if (!one) {
      c->failed = 1;
      c->next = c->n;
      break;
    }
    one->c = c;
    one->i = c->next++;
    c->running++;
    w2a_pool_refresh_account(c->pool, c->ids[one->i], c->force, refresh_cb, one);
  }
  if (c->next >= c->n && !c->running && !c->closing) {
    c->closing = 1;
    w2a_pool_close(c->pool, pool_closed, c);
  }
}

static int cmd_refresh(int argc, char **argv, w2a_config *cfg) {
  const char *email = NULL;
  refresh_ctx c = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--force"))
      c.force = 1;
    else if (!email && argv[i][0] != '-')
      email = argv[i];
    else
      return usage_err("refresh: unexpected argument %s", argv[i]);
  }
  w2a_store *s;
  if (open_store(cfg, &s)) return 1;
  list_ctx l = {0};
  int rc = 1;
  if (email) {
    w2a_account a;
    if (find_email(s, email, &a)) goto out_store;
    list_cb(&a, &l);
  } else {
    w2a_store_filter f = {.state = -1};
    w2a_err err = {0};
    if (w2a_store_list(s, &f, list_cb, &l, &err) < 0) {
      fprintf(stderr, "warp2api accounts: cannot list accounts: %s\n", err.msg);
      goto out_store;
    }
  }
  c.ids = calloc(l.n ? l.n : 1, sizeof *c.ids);
  c.emails = calloc(l.n ? l.n : 1, sizeof *c.emails);
  if (!c.ids || !c.emails) goto out_store;
  for (size_t i = 0; i < l.n; i++) {
    if (!email && l.a[i].state == W2A_ST_DISABLED) continue;
    c.ids[c.n] = l.a[i].id;
    snprintf(c.emails[c.n], W2A_EMAIL_MAX, "%s", l.a[i].email);
    c.n++;
  }
  w2a_store_close(s);
  s = NULL;
  if (!c.n) {
    printf("no accounts to refresh\n");
    rc = 0;
    goto out_store;
  }
  if (c.force)
    fputs("warp2api accounts: warning: --force bypasses the minimum refresh interval\n", stderr);
  uv_loop_t loop;
  uv_loop_init(&loop);
  w2a_err err = {0};
  w2a_http_client_opts ho = {.proxy = cfg->proxy,
                             .ca_file = cfg->ca_file && *cfg->ca_file ? cfg->ca_file : NULL,
                             .insecure_tls = (int)cfg->insecure_tls,
                             .connect_timeout_ms = (uint64_t)cfg->connect_timeout_ms};
  if (w2a_http_client_new(&c.http, &loop, &ho, &err)) {
    fprintf(stderr, "warp2api accounts: %s\n", err.msg);
    uv_loop_close(&loop);
    goto out_store;
  }
  if (w2a_pool_open(&c.pool, &loop, cfg, c.http, 0, &err)) {
    fprintf(stderr, "warp2api accounts: cannot open the pool: %s\n", err.msg);
    w2a_http_client_close(c.http, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    goto out_store;
  }
  refresh_next(&c);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop)) fputs("warp2api accounts: warning: loop handles left open\n", stderr);
  printf("%d refreshed, %d skipped, %d failed, %d invalid\n", c.counts[0], c.counts[1], c.counts[2],
         c.counts[3]);
  rc = c.failed || c.counts[2] || c.counts[3] ? 1 : 0;
out_store:
  if (s) w2a_store_close(s);
  free(l.a);
  free(c.ids);
  free(c.emails);
  return rc;
}

/* ---- login: Firebase email-link sign-in (spec §3.4) ------------------------------------------ */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 32;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode (and '+' → ' ' in query values) n bytes into a new string. */
static char *pct_decode(const char *s, size_t n, int plus) {
  char *o = malloc(n + 1);
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else if (plus && s[i] == '+') {
      o[k++] = ' ';
    } else {
      o[k++] = s[i];
    }
  }
  o[k] = 0;
  return o;
}

/* The decoded value of query parameter `name` in a URL (or a bare query string);
 * tolerates "&amp;" separators from HTML mail. NULL when absent. */
static char *query_param(const char *url, const char *name) {
  const char *q = strchr(url, '?');
  q = q ? q + 1 : url;
  size_t nl = strlen(name);
  while (*q) {
    size_t len = strcspn(q, "&#");
    const char *k = q;
    if (!strncmp(k, "amp;", 4)) k += 4;
    if ((size_t)(q + len - k) > nl && !strncmp(k, name, nl) && k[nl] == '=')
      return pct_decode(k + nl + 1, (size_t)(q + len - (k + nl + 1)), 1);
    q += len;
    if (*q) q++;
  }
  return NULL;
}

/* Find the oobCode in what the operator pasted: the sign-in link itself, a link that
 * wraps it in `link=` (percent-encoded, possibly more than once), or the bare code. */
static char *extract_oob_code(const char *pasted, int depth) {
  if (depth > 5) return NULL;
  char *code = query_param(pasted, "oobCode");
  if (code && *code) return code;
  free(code);
  static const char *const wrappers[] = {"link", "deep_link_id", "continueUrl", NULL};
  for (const char *const *w = wrappers; *w; w++) {
    char *inner = query_param(pasted, *w);
    if (inner) {
      code = extract_oob_code(inner, depth + 1);
      free(inner);
      if (code) return code;
    }
  }
  /* the whole paste percent-encoded */
  if (strstr(pasted, "%3F") || strstr(pasted, "%3f") || strstr(pasted, "%3D") ||
      strstr(pasted, "%3d")) {
    char *dec = pct_decode(pasted, strlen(pasted), 0);
    code = dec && strcmp(dec, pasted) ? extract_oob_code(dec, depth + 1) : NULL;
    free(dec);
    if (code) return code;
  }
  /* a bare code */
  if (depth == 0 && *pasted && strlen(pasted) < 1024 &&
      strspn(pasted, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
          strlen(pasted))
    return strdup(pasted);
  return NULL;
}

static int cmd_login(int argc, char **argv, w2a_config *cfg) {
  const char *email = NULL, *label = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--label") && i + 1 < argc)
      label = argv[++i];
    else if (!email && argv[i][0] != '-')
      email = argv[i];
    else
      return usage_err("login: unexpected argument %s", argv[i]);
  }
  if (!email) return usage_err("login: which email? (EMAIL)%s", "");
  if (!valid_email_arg(email))
    return usage_err("login: \"%s\" is not an email address like name@example.com", email);
  if (label && strlen(label) >= W2A_LABEL_MAX) return usage_err("login: --label is too long%s", "");

  int rc = 1;
  w2a_buf url, body, out;
  w2a_buf_init(&url, 4096);
  w2a_buf_init(&body, 8192);
  w2a_buf_init(&out, HTTP_MAX_BYTES);
  char *line = NULL, *code = NULL;
  json_object *o = NULL;
  w2a_store *s = NULL;
  long status;
  char errbuf[CURL_ERROR_SIZE], e[256];

  /* 1. send the link */
  w2a_buf_printf(&url, "%s/v1/accounts:sendOobCode?key=%s", cfg->identity_url,
                 cfg->firebase_api_key);
  w2a_buf_puts(&body, "{\"requestType\":\"EMAIL_SIGNIN\",\"email\":");
  w2a_buf_put_json_str(&body, email, strlen(email));
  w2a_buf_puts(&body, ",\"clientType\":\"CLIENT_TYPE_WEB\",\"continueUrl\":"
                      "\"https://app.warp.dev/login\",\"canHandleCodeInApp\":true}");
  if (http_post(cfg, url.data, "application/json", body.data, &status, &out, errbuf)) {
    fprintf(stderr, "warp2api accounts: cannot reach %s: %s\n", cfg->identity_url, errbuf);
    goto out;
  }
  if (status != 200) {
    error_text(out.data, e, sizeof e);
    fprintf(stderr, "warp2api accounts: sending the sign-in link failed: HTTP %ld: %s\n", status,
            e);
    goto out;
  }
  fprintf(stderr, "a sign-in link was sent to %s\n", email);

  /* 2. the operator pastes the link */
  fputs("paste the sign-in link from your mailbox: ", stderr);
  fflush(stderr);
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n <= 0) {
    fputs("\nwarp2api accounts: no link was pasted\n", stderr);
    goto out;
  }
  while (n > 0 && strchr(" \t\r\n", line[n - 1]))
    line[--n] = 0;
  char *p = line;
  while (*p == ' ' || *p == '\t' || *p == '<' || *p == '"')
    p++;
  size_t pl = strlen(p);
  while (pl && (p[pl - 1] == '>' || p[pl - 1] == '"'))
    p[--pl] = 0;
  code = extract_oob_code(p, 0);
  if (!code) {
    fputs("warp2api accounts: the pasted text has no oobCode: paste the whole link from the "
          "email\n",
          stderr);
    goto out;
  }

  /* 3. sign in with it */
  w2a_buf_reset(&url);
  w2a_buf_reset(&body);
  w2a_buf_reset(&out);
  w2a_buf_printf(&url, "%s/v1/accounts:signInWithEmailLink?key=%s", cfg->identity_url,
                 cfg->firebase_api_key);
  w2a_buf_puts(&body, "{\"email\":");
  w2a_buf_put_json_str(&body, email, strlen(email));
  w2a_buf_puts(&body, ",\"oobCode\":");
  w2a_buf_put_json_str(&body, code, strlen(code));
  w2a_buf_puts(&body, "}");
  if (http_post(cfg, url.data, "application/json", body.data, &status, &out, errbuf)) {
    fprintf(stderr, "warp2api accounts: cannot reach %s: %s\n", cfg->identity_url, errbuf);
    goto out;
  }
  if (status != 200) {
    error_text(out.data, e, sizeof e);
    fprintf(stderr, "warp2api accounts: sign-in failed: HTTP %ld: %s\n", status, e);
    goto out;
  }
  o = json_tokener_parse(out.data ? out.data : "");
  const char *idt = jstr(o, "idToken"), *rt = jstr(o, "refreshToken"), *uid = jstr(o, "localId");
  if (!idt || !rt) {
    fputs("warp2api accounts: sign-in answered without idToken/refreshToken\n", stderr);
    goto out;
  }
  const char *got = jstr(o, "email");
  if (got && strcasecmp(got, email)) {
    fprintf(stderr, "warp2api accounts: signed in as %s, not %s\n", got, email);
    goto out;
  }

  /* 4. store it (a known email gets the new tokens) */
  if (open_store(cfg, &s)) goto out;
  tokens t = {.id_token = (char *)idt};
  json_object *ex;
  if (json_object_object_get_ex(o, "expiresIn", &ex)) {
    long long secs = strtoll(json_object_get_string(ex), NULL, 10);
    if (secs > 0) t.exp_ms = w2a_now_ms() + (uint64_t)secs * 1000u;
  }
  w2a_account_new an = {.email = email,
                        .refresh_token = rt,
                        .id_token = idt,
                        .id_token_exp_ms = t.exp_ms,
                        .uid = uid,
                        .label = label};
  w2a_import_result res = W2A_IMPORTED_INVALID;
  w2a_err err = {0};
  if (w2a_store_import(s, &an, 1, W2A_IMPORT_UPDATE, w2a_now_ms(), &res, &err) ||
      res == W2A_IMPORTED_INVALID) {
    fprintf(stderr, "warp2api accounts: cannot store %s: %s\n", email,
            err.msg[0] ? err.msg : "the store refused the record");
    goto out;
  }
  printf("%s %s (uid %s)\n", res == W2A_IMPORTED_NEW ? "added" : "updated", email, uid ? uid : "-");
  rc = 0;
out:
  if (s) w2a_store_close(s);
  if (o) {
    /* wipe the tokens held in the parsed response */
    json_object *v;
    if (json_object_object_get_ex(o, "refreshToken", &v) &&
        json_object_is_type(v, json_type_string))
      memset((char *)json_object_get_string(v), 0, (size_t)json_object_get_string_len(v));
    if (json_object_object_get_ex(o, "idToken", &v) && json_object_is_type(v, json_type_string))
      memset((char *)json_object_get_string(v), 0, (size_t)json_object_get_string_len(v));
  }
  json_object_put(o);
  free(line);
  free(code);
  w2a_buf_free(&url);
  w2a_buf_free(&body);
  if (out.data) memset(out.data, 0, out.cap);
  w2a_buf_free(&out);
  return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

int w2a_cli_accounts(int argc, char **argv, w2a_config *cfg) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *c = argv[1];
  int sub_argc = argc - 1;
  char **sub_argv = argv + 1;
  if (!strcmp(c, "-h") || !strcmp(c, "--help") || !strcmp(c, "help")) {
    usage(stdout);
    return 0;
  }
  for (int i = 1; i < sub_argc; i++)
    if (!strcmp(sub_argv[i], "-h") || !strcmp(sub_argv[i], "--help")) {
      usage(stdout);
      return 0;
    }
  w2a_http_global_init();
  int rc;
  if (!strcmp(c, "add"))
    rc = cmd_add(sub_argc, sub_argv, cfg);
  else if (!strcmp(c, "import"))
    rc = cmd_import(sub_argc, sub_argv, cfg);
  else if (!strcmp(c, "export"))
    rc = cmd_export(sub_argc, sub_argv, cfg);
  else if (!strcmp(c, "list") || !strcmp(c, "ls"))
    rc = cmd_list(sub_argc, sub_argv, cfg);
  else if (!strcmp(c, "show"))
    rc = cmd_show(sub_argc, sub_argv, cfg);
  else if (!strcmp(c, "remove") || !strcmp(c, "rm") || !strcmp(c, "delete"))
    rc = cmd_state(sub_argc, sub_argv, cfg, -1);
  else if (!strcmp(c, "disable"))
    rc = cmd_state(sub_argc, sub_argv, cfg, W2A_ST_DISABLED);
  else if (!strcmp(c, "enable"))
    rc = cmd_state(sub_argc, sub_argv, cfg, W2A_ST_AVAILABLE);
  else if (!strcmp(c, "refresh"))
    rc = cmd_refresh(sub_argc, sub_argv, cfg);
  else if (!strcmp(c, "login"))
    rc = cmd_login(sub_argc, sub_argv, cfg);
  else
    rc = usage_err("unknown command \"%s\"", c);
  curl_global_cleanup();
  return rc;
}
