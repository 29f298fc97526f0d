/* scenario.h - what fakewarp does with one /ai/multi-agent request.
 *
 * A scenario is assembled from directives, `[[fw:<verb> key=value ...]]`, read in this
 * order, later ones overriding earlier ones: the global default (control route), the
 * account's default, a one-shot scenario queued for the account, and finally the
 * directives found in the user query itself. docs/fakewarp.md lists every verb.
 *
 * The struct is plain data with fixed-size strings, so it can be copied and needs no
 * freeing. Parsing never fails: unknown verbs and keys are recorded in `warn` (shown in
 * the request log) and otherwise ignored, since a test double that rejects a typo in a
 * directive would hide the mistake behind an unrelated error. */
#ifndef W2A_FAKE_SCENARIO_H
#define W2A_FAKE_SCENARIO_H

#include <stddef.h>

enum { W2A_FAKE_ANSWER_TEXT = 0, W2A_FAKE_ANSWER_ECHO, W2A_FAKE_ANSWER_TOOLS };

/* finished.reason members, numbered as on the wire (response.proto StreamFinished). */
enum {
  W2A_FAKE_FIN_OTHER = 1,
  W2A_FAKE_FIN_DONE = 2,
  W2A_FAKE_FIN_MAX_TOKEN_LIMIT = 3,
  W2A_FAKE_FIN_QUOTA_LIMIT = 4,
  W2A_FAKE_FIN_CONTEXT_WINDOW_EXCEEDED = 5,
  W2A_FAKE_FIN_LLM_UNAVAILABLE = 6,
  W2A_FAKE_FIN_INTERNAL_ERROR = 7,
};

/* base64 padding of event payloads: as the capture (always '=' when the length needs
 * it), never, or every other event. */
enum { W2A_FAKE_PAD_CAPTURE = 0, W2A_FAKE_PAD_NEVER, W2A_FAKE_PAD_ALTERNATE };

typedef struct w2a_fake_scenario {
  int answer;      /* W2A_FAKE_ANSWER_* */
  int text_chunks; /* >0: filler text of text_chunks × text_size bytes; 0: derived text */
  int text_size;   /* bytes per chunk (derived text is split at this size too) */
  int text_none;   /* chunks=0 given: no text at all */
  int pace_ms;     /* delay between answer events */
  int reasoning;   /* reasoning chunks before the answer (0: none) */
  int tools_n;     /* tool calls in parallel */
  char tool_name[128];
  char tool_args[1024]; /* JSON object overriding the schema-derived args, or "" */

  int http_status; /* non-zero: reply with this status instead of a stream */
  char http_body[512];
  int quota;        /* 1: 429 "No remaining quota", 2: 429 "No AI requests remaining" */
  int quota_stream; /* 200 stream ending in finished{quota_limit} */
  int blocked;      /* 1: 403 classic wording, 2: newer wording */
  int empty;        /* 200 with an empty body */
  int invalid;      /* the server's invalid-request answer */
  int model_denied; /* 400 "... is not allowed for your account" */
  int finish;       /* W2A_FAKE_FIN_*; 0 means done */
  char finish_msg[512];
  int cut_after; /* >=0: close the connection after this many events; -1: never */
  int head_ms;   /* delay before the response head */
  int stall_first_ms;
  int stall_between_ms;
  int stall_after;   /* event count after which the between-stall happens; -1: mid-answer */
  int token_usage;   /* include finished.token_usage */
  int tu_in, tu_out; /* explicit token counts (-1: computed) */
  int pad;           /* W2A_FAKE_PAD_* */
  char title[128];   /* update_task_description; "" → derived from the query */
  char warn[256];
} w2a_fake_scenario;

void w2a_fake_scenario_init(w2a_fake_scenario *sc);
/* Apply every directive found in s (NULL or "" is fine). */
void w2a_fake_scenario_apply(w2a_fake_scenario *sc, const char *s);
/* Copy s to out (cap n) with every [[fw:...]] directive removed and the result trimmed. */
size_t w2a_fake_scenario_strip(const char *s, char *out, size_t n);

#endif
