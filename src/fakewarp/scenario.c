/* scenario.c - the [[fw:...]] directive parser (see scenario.h).
 *
 * Grammar: `[[fw:` verb { ws arg } `]]`, arg = word | key `=` value, value = a bare word,
 * a "double-quoted string" (\" and \\ escapes) or a balanced {...} / [...] JSON text.
 * Everything outside directives is ignored here. */
#include "fakewarp/scenario.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 8

typedef struct arg {
  char key[32];
  char val[1024];
} arg;

void w2a_fake_scenario_init(w2a_fake_scenario *sc) {
  memset(sc, 0, sizeof *sc);
  sc->text_size = 8;
  sc->cut_after = -1;
  sc->stall_after = -1;
  sc->tu_in = -1;
  sc->tu_out = -1;
  sc->tools_n = 1;
}

static void warn(w2a_fake_scenario *sc, const char *what, const char *name) {
  size_t l = strlen(sc->warn);
  if (l + 2 >= sizeof sc->warn) return;
  snprintf(sc->warn + l, sizeof sc->warn - l, "%s%s %s", l ? "; " : "", what, name);
}

static int to_int(const char *v, int lo, int hi) {
  long x = strtol(v, NULL, 10);
  if (x < lo) x = lo;
  if (x > hi) x = hi;
  return (int)x;
}

/* Truncating copy (snprintf "%s" would warn about the truncation we want). */
static void copy(char *dst, size_t n, const char *src) {
  size_t l = strlen(src);
  if (l >= n) l = n - 1;
  memcpy(dst, src, l);
  dst[l] = 0;
}

/* Read one value starting at p (not past end); returns the position after it. */
static const char *read_value(const char *p, const char *end, char *out, size_t n) {
  size_t o = 0;
  if (p < end && *p == '"') {
    for (p++; p < end && *p != '"'; p++) {
      if (*p == '\\' && p + 1 < end) p++;
      if (o + 1 < n) out[o++] = *p;
    }
    if (p < end) p++;
  } else if (p < end && (*p == '{' || *p == '[')) {
    int depth = 0, in_str = 0;
    for (; p < end; p++) {
      char c = *p;
      if (o + 1 < n) out[o++] = c;
      if (in_str) {
        if (c == '\\' && p + 1 < end) {
          p++;
          if (o + 1 < n) out[o++] = *p;
        } else if (c == '"') {
          in_str = 0;
        }
      } else if (c == '"') {
        in_str = 1;
      } else if (c == '{' || c == '[') {
        depth++;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        p++;
        break;
      }
    }
  } else {
    while (p < end && !isspace((unsigned char)*p)) {
      if (o + 1 < n) out[o++] = *p;
      p++;
    }
  }
  out[o] = 0;
  return p;
}

static const char *get(const arg *a, int na, const char *key) {
  for (int i = 0; i < na; i++)
    if (!strcmp(a[i].key, key)) return a[i].val;
  return NULL;
}

static int finish_code(const char *s) {
  static const struct {
    const char *name;
    int code;
  } t[] = {{"other", W2A_FAKE_FIN_OTHER},
           {"done", W2A_FAKE_FIN_DONE},
           {"max_token_limit", W2A_FAKE_FIN_MAX_TOKEN_LIMIT},
           {"quota_limit", W2A_FAKE_FIN_QUOTA_LIMIT},
           {"context_window_exceeded", W2A_FAKE_FIN_CONTEXT_WINDOW_EXCEEDED},
           {"llm_unavailable", W2A_FAKE_FIN_LLM_UNAVAILABLE},
           {"internal_error", W2A_FAKE_FIN_INTERNAL_ERROR}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(s, t[i].name)) return t[i].code;
  return 0;
}

/* Positional words are stored with key "" (in order). */
static const char *pos(const arg *a, int na, int k) {
  for (int i = 0; i < na; i++)
    if (!a[i].key[0] && k-- == 0) return a[i].val;
  return NULL;
}

static void apply_one(w2a_fake_scenario *sc, const char *verb, const arg *a, int na) {
  const char *v;
  if ((v = get(a, na, "pace_ms"))) sc->pace_ms = to_int(v, 0, 600000);
  if (!strcmp(verb, "text") || !strcmp(verb, "reset")) {
    if (!strcmp(verb, "reset")) {
      w2a_fake_scenario_init(sc);
      return;
    }
    sc->answer = W2A_FAKE_ANSWER_TEXT;
    if ((v = get(a, na, "chunks"))) {
      sc->text_chunks = to_int(v, 0, 1000000);
      sc->text_none = sc->text_chunks == 0;
    }
    if ((v = get(a, na, "size"))) sc->text_size = to_int(v, 1, 1 << 20);
  } else if (!strcmp(verb, "pace")) {
    if ((v = get(a, na, "ms")) || (v = pos(a, na, 0))) sc->pace_ms = to_int(v, 0, 600000);
  } else if (!strcmp(verb, "echo")) {
    sc->answer = W2A_FAKE_ANSWER_ECHO;
    if ((v = get(a, na, "size"))) sc->text_size = to_int(v, 1, 1 << 20);
  } else if (!strcmp(verb, "tools")) {
    sc->answer = W2A_FAKE_ANSWER_TOOLS;
    if ((v = get(a, na, "n")) || (v = pos(a, na, 0))) sc->tools_n = to_int(v, 1, 64);
    if ((v = get(a, na, "name"))) copy(sc->tool_name, sizeof sc->tool_name, v);
    if ((v = get(a, na, "args"))) copy(sc->tool_args, sizeof sc->tool_args, v);
  } else if (!strcmp(verb, "reasoning")) {
    sc->reasoning = 2;
    if ((v = get(a, na, "chunks")) || (v = pos(a, na, 0))) sc->reasoning = to_int(v, 0, 100000);
  } else if (!strcmp(verb, "quota")) {
    sc->quota = 1;
    if ((v = get(a, na, "text")) && !strcmp(v, "ai")) sc->quota = 2;
  } else if (!strcmp(verb, "quota_ai")) {
    sc->quota = 2;
  } else if (!strcmp(verb, "quota_stream")) {
    sc->quota_stream = 1;
  } else if (!strcmp(verb, "blocked")) {
    sc->blocked = 1;
    if ((v = get(a, na, "wording")) && !strcmp(v, "new")) sc->blocked = 2;
  } else if (!strcmp(verb, "status")) {
    if ((v = get(a, na, "code")) || (v = pos(a, na, 0))) sc->http_status = to_int(v, 100, 599);
    if ((v = get(a, na, "body"))) copy(sc->http_body, sizeof sc->http_body, v);
  } else if (!strcmp(verb, "empty")) {
    sc->empty = 1;
  } else if (!strcmp(verb, "invalid")) {
    sc->invalid = 1;
  } else if (!strcmp(verb, "model_denied")) {
    sc->model_denied = 1;
  } else if (!strcmp(verb, "finish")) {
    if ((v = get(a, na, "reason")) || (v = pos(a, na, 0))) {
      int c = finish_code(v);
      if (c)
        sc->finish = c;
      else
        warn(sc, "unknown finish reason", v);
    }
    if ((v = get(a, na, "msg"))) copy(sc->finish_msg, sizeof sc->finish_msg, v);
  } else if (!strcmp(verb, "internal_error")) {
    sc->finish = W2A_FAKE_FIN_INTERNAL_ERROR;
    if ((v = get(a, na, "msg")) || (v = pos(a, na, 0)))
      copy(sc->finish_msg, sizeof sc->finish_msg, v);
  } else if (!strcmp(verb, "cut")) {
    sc->cut_after = 3;
    if ((v = get(a, na, "after")) || (v = pos(a, na, 0))) sc->cut_after = to_int(v, 0, 1 << 30);
  } else if (!strcmp(verb, "stall")) {
    if ((v = get(a, na, "first_ms"))) sc->stall_first_ms = to_int(v, 0, 3600000);
    if ((v = get(a, na, "between_ms"))) sc->stall_between_ms = to_int(v, 0, 3600000);
    if ((v = get(a, na, "head_ms"))) sc->head_ms = to_int(v, 0, 3600000);
    if ((v = get(a, na, "after"))) sc->stall_after = to_int(v, 0, 1 << 30);
  } else if (!strcmp(verb, "slow_accept")) {
    if ((v = get(a, na, "ms")) || (v = pos(a, na, 0))) sc->head_ms = to_int(v, 0, 3600000);
  } else if (!strcmp(verb, "token_usage")) {
    sc->token_usage = 1;
    if ((v = get(a, na, "in"))) sc->tu_in = to_int(v, 0, 1 << 30);
    if ((v = get(a, na, "out"))) sc->tu_out = to_int(v, 0, 1 << 30);
  } else if (!strcmp(verb, "pad")) {
    if ((v = get(a, na, "mode")) || (v = pos(a, na, 0))) {
      if (!strcmp(v, "never"))
        sc->pad = W2A_FAKE_PAD_NEVER;
      else if (!strcmp(v, "alternate"))
        sc->pad = W2A_FAKE_PAD_ALTERNATE;
      else
        sc->pad = W2A_FAKE_PAD_CAPTURE;
    }
  } else if (!strcmp(verb, "title")) {
    if ((v = get(a, na, "text")) || (v = pos(a, na, 0))) copy(sc->title, sizeof sc->title, v);
  } else {
    warn(sc, "unknown directive", verb);
  }
}

void w2a_fake_scenario_apply(w2a_fake_scenario *sc, const char *s) {
  if (!s) return;
  const char *p = s;
  while ((p = strstr(p, "[[fw:")) != NULL) {
    p += 5;
    const char *end = strstr(p, "]]");
    if (!end) break;
    char verb[32];
    size_t vl = 0;
    while (p < end && (isalnum((unsigned char)*p) || *p == '_') && vl + 1 < sizeof verb)
      verb[vl++] = *p++;
    verb[vl] = 0;
    arg a[MAX_ARGS];
    int na = 0;
    const char *q = p;
    const char *lim = s + strlen(s);
    for (;;) {
      while (q < lim && isspace((unsigned char)*q))
        q++;
      if (q >= lim || (q[0] == ']' && q + 1 < lim && q[1] == ']')) break;
      arg tmp = {{0}, {0}};
      size_t kl = 0;
      const char *k = q;
      while (k < lim && (isalnum((unsigned char)*k) || *k == '_'))
        k++;
      int bare = 0;
      if (k < lim && *k == '=' && k > q) {
        kl = (size_t)(k - q);
        if (kl >= sizeof tmp.key) kl = sizeof tmp.key - 1;
        memcpy(tmp.key, q, kl);
        bare = k + 1 < lim && k[1] != '"' && k[1] != '{' && k[1] != '[';
        q = read_value(k + 1, lim, tmp.val, sizeof tmp.val);
      } else {
        const char *stop = q;
        while (stop < lim && !isspace((unsigned char)*stop) &&
               !(stop[0] == ']' && stop + 1 < lim && stop[1] == ']'))
          stop++;
        q = read_value(q, stop, tmp.val, sizeof tmp.val);
      }
      /* A bare word runs to the next space, so it may have swallowed the closing "]]". */
      size_t tl = strlen(tmp.val);
      char *cl = bare ? strstr(tmp.val, "]]") : NULL;
      if (cl) {
        q -= tl - (size_t)(cl - tmp.val);
        *cl = 0;
      }
      if (na < MAX_ARGS) a[na++] = tmp;
    }
    apply_one(sc, verb, a, na);
    p = q;
  }
}

size_t w2a_fake_scenario_strip(const char *s, char *out, size_t n) {
  size_t o = 0;
  const char *p = s ? s : "";
  while (*p) {
    const char *d = strstr(p, "[[fw:");
    const char *e = d ? strstr(d, "]]") : NULL;
    const char *stop = (d && e) ? d : p + strlen(p);
    for (; p < stop; p++)
      if (o + 1 < n) out[o++] = *p;
    if (!(d && e)) break;
    p = e + 2;
  }
  out[o] = 0;
  /* trim */
  size_t b = 0;
  while (b < o && isspace((unsigned char)out[b]))
    b++;
  while (o > b && isspace((unsigned char)out[o - 1]))
    o--;
  memmove(out, out + b, o - b);
  out[o - b] = 0;
  return o - b;
}
