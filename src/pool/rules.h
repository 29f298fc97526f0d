/* rules.h - the error rule table: what an upstream failure means for the account.
 *
 * A rule matches on HTTP status (exact or a range; 0 = any), an in-stream finish reason,
 * transport failure, and a case-insensitive substring of the body; the first matching
 * rule wins. Its action is one of w2a_action (pool.h) plus how long a cool-down lasts
 * and whether the failure counts towards FAILURE_THRESHOLD. The built-in table follows
 * spec §1.3; ERROR_RULES_FILE (JSON, docs/pool.md) adds rules in front of it, or
 * replaces it with "replace_defaults": true. */
#ifndef W2A_RULES_H
#define W2A_RULES_H

#include <stdint.h>

#include "common/err.h"
#include "pool/pool.h"

typedef struct w2a_rule {
  int status_min, status_max; /* 0,0: any status */
  int transport;              /* 1: only transport failures (no HTTP status) */
  char finish[48];            /* "" any; else the in-stream finish reason */
  char match[128];            /* "" any; else a substring of body (case-insensitive) */
  w2a_action action;
  uint64_t cooldown_ms; /* W2A_ACT_COOLDOWN: 0 means COOLDOWN from the config */
  int count_failure;    /* counts towards FAILURE_THRESHOLD within FAILURE_WINDOW */
} w2a_rule;

typedef struct w2a_rules {
  w2a_rule *v;
  size_t n;
} w2a_rules;

/* Built-in table, then (when path is non-empty) the file's rules in front of it. */
int w2a_rules_load(w2a_rules *r, const char *path, w2a_err *err);
/* Parse rules from JSON text (what the file holds). */
int w2a_rules_parse(w2a_rules *r, const char *json, w2a_err *err);
void w2a_rules_free(w2a_rules *r);
/* The first rule that matches, or NULL for a success. Never NULL for a failure: a
 * catch-all (retry on another account, counted as a failure) ends every table. */
const w2a_rule *w2a_rules_match(const w2a_rules *r, const w2a_outcome *o);
const char *w2a_action_name(w2a_action a);
int w2a_action_parse(const char *s); /* -1 when unknown */

#endif
