/* stream.c - see stream.h. */
#include "fakewarp/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/log.h"
#include "common/util.h"
#include "fakewarp/catalog.h"
#include "fakewarp/events.h"
#include "fakewarp/scenario.h"
#include "fakewarp/summary.h"
#include "proto/pbjson.h"

#define FLUSH_BYTES (16u * 1024u)  /* batch at most this much into one write */
#define EVENTS_PER_TURN 256        /* yield to other streams after this many */
#define MAX_TEXT_BYTES (64u << 20) /* cap on one answer's text */
#define QUERY_MAX 65536

static const char filler[] = "The quick brown fox jumps over the lazy dog. ";
#define FILLER_RUN 4096

/* The filler repeated over FILLER_RUN + one period, so any chunk of up to FILLER_RUN
 * bytes starting anywhere in the period is a plain substring (no copy per event). */
static const char *filler_run(void) {
  static char run[FILLER_RUN + sizeof filler];
  if (!run[0])
    for (size_t i = 0; i < sizeof run; i++)
      run[i] = filler[i % (sizeof filler - 1)];
  return run;
}

/* ---- the decoded request's memory -------------------------------------------------
 *
 * A Request decodes into dozens of small allocations that all die together with the
 * stream, so they come from a bump arena: a first block allocated with the arena, then
 * blocks of ARENA_BLOCK bytes (or one of its own for anything bigger); freeing an
 * allocation is a no-op and the arena goes at once. Under AddressSanitizer every
 * allocation gets its own block, so overflows inside the request are still caught. */

#define ARENA_FIRST 4096
#define ARENA_BLOCK 16384
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_OWN_BLOCKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_OWN_BLOCKS 1
#endif
#endif
#ifndef ARENA_OWN_BLOCKS
#define ARENA_OWN_BLOCKS 0
#endif

typedef struct arena_block {
  struct arena_block *next;
  _Alignas(16) unsigned char data[];
} arena_block;

typedef struct rq_arena {
  ProtobufCAllocator a;
  arena_block *blocks;
  unsigned char *cur;
  size_t left;
  _Alignas(16) unsigned char first[ARENA_FIRST];
} rq_arena;

static void *arena_alloc(void *ud, size_t n) {
  rq_arena *ar = ud;
  n = (n + 15) & ~(size_t)15;
  if (n > ar->left) {
    size_t bs = ARENA_OWN_BLOCKS || n > ARENA_BLOCK ? n : ARENA_BLOCK;
    arena_block *b = malloc(sizeof *b + bs);
    if (!b) return NULL;
    b->next = ar->blocks;
    ar->blocks = b;
    if (bs != ARENA_BLOCK) return b->data; /* its own block; the current one goes on */
    ar->cur = b->data;
    ar->left = bs;
  }
  void *p = ar->cur;
  ar->cur += n;
  ar->left -= n;
  return p;
}

static void arena_free_one(void *ud, void *p) {
  (void)ud;
  (void)p;
}

static rq_arena *arena_new(void) {
  rq_arena *ar = malloc(sizeof *ar);
  if (!ar) return NULL;
  ar->a.alloc = arena_alloc;
  ar->a.free = arena_free_one;
  ar->a.allocator_data = ar;
  ar->blocks = NULL;
  ar->cur = ar->first;
  ar->left = ARENA_OWN_BLOCKS ? 0 : sizeof ar->first;
  return ar;
}

static void arena_free(rq_arena *ar) {
  if (!ar) return;
  while (ar->blocks) {
    arena_block *b = ar->blocks;
    ar->blocks = b->next;
    free(b);
  }
  free(ar);
}

enum {
  PH_HEAD = 0, /* waiting to send the response head */
  PH_INIT,
  PH_CREATE,
  PH_SERVER_EVENT,
  PH_ECHO,
  PH_ECHO_UPDATE,
  PH_BEGIN,
  PH_REASON,
  PH_ANSWER,
  PH_COMMIT,
  PH_DESC,
  PH_FINISH,
  PH_END,
};

typedef struct tool_plan {
  char *name;
  char *args;
  char call_id[37];
  char msg_id[37];
} tool_plan;

struct w2a_fake_stream {
  w2a_fake_stream *prev, *next;
  w2a_fake *f;
  w2a_http_req *req;
  w2a_fake_account *acct;
  uv_timer_t timer;
  w2a_fake_scenario sc;
  w2a_fake_request *rq; /* in arena */
  rq_arena *arena;
  w2a_fake_echo echo; /* the echoed message, encoded once */
  w2a_fake_ids ids;
  char user_msg_id[37], answer_msg_id[37], reason_msg_id[37];
  int new_task, minimal, has_echo;
  int phase, idx;
  /* answer text: a string split every sc.text_size bytes, or filler (text == NULL) */
  char *text;
  size_t text_len, text_off;
  int answer_n; /* answer events: text chunks or tool calls */
  char *reason;
  size_t reason_len, reason_off;
  int reason_n;
  tool_plan *tools;
  int ntools;
  int stall_after;
  int delayed_for; /* event index whose delay was already waited out, or -1 */
  int events;
  int finished_written, completed, aborted, in_pump, wait_drain, timer_armed;
  uint64_t started_ms;
  size_t body_len;
  size_t text_total; /* bytes of answer text emitted */
  char title[128];
  w2a_buf out;
};

/* ---- helpers --------------------------------------------------------------------- */

static int pad_for(const w2a_fake_stream *s) {
  switch (s->sc.pad) {
  case W2A_FAKE_PAD_NEVER: return 0;
  case W2A_FAKE_PAD_ALTERNATE: return s->events % 2 == 0;
  default: return 1;
  }
}

/* Next piece of a UTF-8 string: at most `size` bytes, never splitting a character
 * (a character longer than `size` is sent whole). */
static size_t next_piece(const char *t, size_t len, size_t off, size_t size) {
  size_t end = off + size < len ? off + size : len;
  while (end > off && end < len && ((unsigned char)t[end] & 0xC0) == 0x80)
    end--;
  if (end == off) {
    end = off + 1;
    while (end < len && ((unsigned char)t[end] & 0xC0) == 0x80)
      end++;
  }
  return end - off;
}

static int count_pieces(const char *t, size_t len, size_t size) {
  int n = 0;
  for (size_t off = 0; off < len; off += next_piece(t, len, off, size))
    n++;
  return n;
}

static void utf8_trunc(char *s, size_t max) {
  size_t l = strlen(s);
  if (l <= max) return;
  size_t e = max;
  while (e > 0 && ((unsigned char)s[e] & 0xC0) == 0x80)
    e--;
  s[e] = 0;
}

/* ---- tool-call arguments from an input_schema -------------------------------------- */

static const Google__Protobuf__Value *sfield(const Google__Protobuf__Struct *s, const char *k) {
  for (size_t i = 0; s && i < s->n_fields; i++)
    if (!strcmp(s->fields[i]->key, k)) return s->fields[i]->value;
  return NULL;
}

/* Minimal arguments satisfying the schema: one deterministic value per required
 * property (string: first enum value, else "fakewarp"; number/integer: 1; boolean:
 * true; array: []; object: {}). */
static char *args_for_schema(const Google__Protobuf__Struct *schema) {
  json_object *o = json_object_new_object();
  const Google__Protobuf__Value *req = sfield(schema, "required");
  const Google__Protobuf__Value *props = sfield(schema, "properties");
  const Google__Protobuf__Struct *ps =
      props && props->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE ? props->struct_value
                                                                              : NULL;
  if (req && req->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE && req->list_value) {
    for (size_t i = 0; i < req->list_value->n_values; i++) {
      const Google__Protobuf__Value *nv = req->list_value->values[i];
      if (nv->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE) continue;
      const char *name = nv->string_value;
      const Google__Protobuf__Value *pv = sfield(ps, name);
      const Google__Protobuf__Struct *p =
          pv && pv->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE ? pv->struct_value
                                                                            : NULL;
      const Google__Protobuf__Value *tv = sfield(p, "type");
      const char *type = tv && tv->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE
                             ? tv->string_value
                             : "string";
      json_object *val;
      const Google__Protobuf__Value *ev = sfield(p, "enum");
      if (ev && ev->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE && ev->list_value &&
          ev->list_value->n_values &&
          ev->list_value->values[0]->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
        val = json_object_new_string(ev->list_value->values[0]->string_value);
      else if (!strcmp(type, "number") || !strcmp(type, "integer"))
        val = json_object_new_int(1);
      else if (!strcmp(type, "boolean"))
        val = json_object_new_boolean(1);
      else if (!strcmp(type, "array"))
        val = json_object_new_array();
      else if (!strcmp(type, "object"))
        val = json_object_new_object();
      else
        val = json_object_new_string("fakewarp");
      json_object_object_add(o, name, val);
    }
  }
  char *r = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  return r;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
  w2a_fake_stream *s = h->data;
  w2a_fake *f = s->f;
  if (s->prev)
    s->prev->next = s->next;
  else
    f->streams = s->next;
  if (s->next) s->next->prev = s->prev;
  for (int i = 0; i < s->ntools; i++) {
    free(s->tools[i].name);
    free(s->tools[i].args);
  }
  free(s->tools);
  free(s->text);
  free(s->reason);
  w2a_buf_free(&s->out);
  arena_free(s->arena); /* and the request in it */
  free(s->echo.bytes);
  free(s);
}

/* The request is complete (one way or another): count it and let the handle go. */
static void release(w2a_fake_stream *s) {
  w2a_fake_state *st = &s->f->st;
  if (st->streams_open) st->streams_open--;
  if (s->acct && s->acct->streams_open) s->acct->streams_open--;
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

static int flush(w2a_fake_stream *s) {
  if (!s->out.len) return 0;
  int rc = w2a_http_stream_write(s->req, s->out.data, s->out.len);
  w2a_buf_reset(&s->out);
  return rc;
}

static void finish_ok(w2a_fake_stream *s) {
  flush(s);
  s->completed = 1;
  s->f->st.streams_done++;
  if (s->acct) s->acct->streams_done++;
  w2a_http_stream_end(s->req);
  release(s);
}

static void finish_cut(w2a_fake_stream *s) {
  flush(s);
  s->completed = 1;
  s->f->st.cut++;
  if (s->acct) s->acct->cut++;
  w2a_http_abort(s->req);
  release(s);
}

static void finish_abandoned(w2a_fake_stream *s) {
  s->completed = 1;
  w2a_fake_state *st = &s->f->st;
  if (!s->finished_written) {
    st->abandoned++;
    if (s->acct) s->acct->abandoned++;
    json_object *e = json_object_new_object();
    json_object_object_add(e, "email", s->acct ? json_object_new_string(s->acct->email) : NULL);
    json_object_object_add(e, "request_id", json_object_new_string(s->ids.request_id));
    json_object_object_add(e, "conversation_id", json_object_new_string(s->ids.conversation_id));
    json_object_object_add(e, "started_ms", json_object_new_uint64(s->started_ms));
    json_object_object_add(e, "noticed_ms", json_object_new_uint64(w2a_now_ms()));
    json_object_object_add(e, "events_sent", json_object_new_int(s->events));
    json_object_array_add(st->abandoned_log, e);
    size_t n = json_object_array_length(st->abandoned_log);
    if (n > 1000) json_object_array_del_idx(st->abandoned_log, 0, n - 1000);
  }
  w2a_buf_reset(&s->out);
  w2a_http_stream_end(s->req);
  release(s);
}

/* ---- event production ------------------------------------------------------------ */

static int has_phase(const w2a_fake_stream *s, int ph) {
  if (s->minimal) return ph == PH_INIT || ph == PH_FINISH || ph == PH_END;
  switch (ph) {
  case PH_CREATE:
  case PH_DESC: return s->new_task;
  case PH_ECHO:
  case PH_ECHO_UPDATE: return s->has_echo;
  case PH_REASON: return s->reason_n > 0;
  case PH_ANSWER: return s->answer_n > 0;
  default: return 1;
  }
}

static void advance(w2a_fake_stream *s) {
  int n = s->phase == PH_REASON ? s->reason_n : s->phase == PH_ANSWER ? s->answer_n : 1;
  if (++s->idx < n) return;
  s->idx = 0;
  do
    s->phase++;
  while (s->phase < PH_END && !has_phase(s, s->phase));
}

static int emit_answer(w2a_fake_stream *s, int pad) {
  const w2a_fake_ids *ids = &s->ids;
  if (s->ntools) {
    tool_plan *t = &s->tools[s->idx];
    return w2a_fake_ev_tool_call(&s->out, pad, ids, t->msg_id, t->call_id, t->name, t->args);
  }
  size_t size = (size_t)s->sc.text_size;
  if (s->text) {
    size_t n = next_piece(s->text, s->text_len, s->text_off, size);
    int rc = w2a_fake_ev_agent(&s->out, pad, ids, s->answer_msg_id, s->text + s->text_off, n, 0,
                               s->idx == 0);
    s->text_off += n;
    s->text_total += n;
    return rc;
  }
  size_t pl = sizeof filler - 1;
  size_t start = ((size_t)s->idx * size) % pl;
  int rc;
  if (size <= FILLER_RUN) {
    rc = w2a_fake_ev_agent(&s->out, pad, ids, s->answer_msg_id, filler_run() + start, size, 0,
                           s->idx == 0);
  } else {
    char *buf = malloc(size);
    if (!buf) return W2A_ENOMEM;
    for (size_t i = 0; i < size; i++)
      buf[i] = filler[(start + i) % pl];
    rc = w2a_fake_ev_agent(&s->out, pad, ids, s->answer_msg_id, buf, size, 0, s->idx == 0);
    free(buf);
  }
  s->text_total += size;
  return rc;
}

static int emit_next(w2a_fake_stream *s) {
  int pad = pad_for(s);
  const w2a_fake_ids *ids = &s->ids;
  switch (s->phase) {
  case PH_INIT: return w2a_fake_ev_init(&s->out, pad, ids);
  case PH_CREATE: return w2a_fake_ev_create_task(&s->out, pad, ids);
  case PH_SERVER_EVENT: return w2a_fake_ev_server_event(&s->out, pad, ids);
  case PH_ECHO:
  case PH_ECHO_UPDATE:
    return w2a_fake_ev_user_echo(&s->out, pad, ids, s->user_msg_id, w2a_fake_input_query(s->rq),
                                 w2a_fake_input_tool_result(s->rq),
                                 s->rq->input ? s->rq->input->context : NULL,
                                 s->phase == PH_ECHO_UPDATE, &s->echo);
  case PH_BEGIN: return w2a_fake_ev_transaction(&s->out, pad, 1);
  case PH_COMMIT: return w2a_fake_ev_transaction(&s->out, pad, 0);
  case PH_REASON: {
    size_t n = next_piece(s->reason, s->reason_len, s->reason_off, (size_t)s->sc.text_size);
    int rc = w2a_fake_ev_agent(&s->out, pad, ids, s->reason_msg_id, s->reason + s->reason_off, n, 1,
                               s->idx == 0);
    s->reason_off += n;
    return rc;
  }
  case PH_ANSWER: return emit_answer(s, pad);
  case PH_DESC: return w2a_fake_ev_description(&s->out, pad, ids, s->title);
  case PH_FINISH: {
    const Warp__MultiAgent__V1__Request__Settings__ModelConfig *mc =
        s->rq->settings ? s->rq->settings->model_config : NULL;
    const char *model = mc && mc->base && *mc->base ? mc->base : "auto";
    const w2a_fake_model *m = w2a_fake_model_find(model);
    w2a_fake_finish fin = {0};
    fin.reason = s->minimal     ? W2A_FAKE_FIN_QUOTA_LIMIT
                 : s->sc.finish ? s->sc.finish
                                : W2A_FAKE_FIN_DONE;
    fin.message = s->sc.finish_msg[0] ? s->sc.finish_msg : "fakewarp: internal error";
    fin.model_id = model;
    fin.model_display = m ? m->display : "Claude Opus 4.5";
    fin.context_tokens = (uint32_t)(15000 + s->body_len / 4);
    fin.request_cost = s->minimal ? 0.0f : 1.0f;
    fin.token_usage = s->sc.token_usage;
    fin.tokens_in = s->sc.tu_in >= 0 ? (uint32_t)s->sc.tu_in : (uint32_t)(s->body_len / 4 + 1);
    fin.tokens_out = s->sc.tu_out >= 0 ? (uint32_t)s->sc.tu_out : (uint32_t)(s->text_total / 4 + 1);
    int rc = w2a_fake_ev_finished(&s->out, pad, &fin);
    if (!rc) s->finished_written = 1;
    return rc;
  }
  default: return W2A_ESTATE;
  }
}

/* Milliseconds to wait before the next event (0: none). */
static uint64_t delay_for_next(w2a_fake_stream *s) {
  if (s->delayed_for == s->events) return 0;
  uint64_t d = 0;
  if (s->events == 0) d += (uint64_t)s->sc.stall_first_ms;
  if (s->sc.stall_between_ms && s->events == s->stall_after && s->events > 0)
    d += (uint64_t)s->sc.stall_between_ms;
  if (s->sc.pace_ms && (s->phase == PH_REASON || s->phase == PH_ANSWER))
    d += (uint64_t)s->sc.pace_ms;
  return d;
}

static void pump(w2a_fake_stream *s);

static void on_timer(uv_timer_t *t) {
  w2a_fake_stream *s = t->data;
  s->timer_armed = 0;
  if (s->completed) return;
  if (s->phase == PH_HEAD) {
    w2a_http_stream_start(s->req, 200, "text/event-stream;charset=utf-8",
                          "cache-control: no-cache\r\n");
    s->phase = PH_INIT;
  }
  pump(s);
}

static void arm(w2a_fake_stream *s, uint64_t ms) {
  s->timer_armed = 1;
  uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void pump(w2a_fake_stream *s) {
  if (s->completed || s->in_pump) return;
  s->in_pump = 1;
  int budget = EVENTS_PER_TURN;
  for (;;) {
    if (s->aborted) break;
    if (s->sc.cut_after >= 0 && s->events >= s->sc.cut_after) {
      finish_cut(s);
      break;
    }
    if (s->phase >= PH_END) {
      finish_ok(s);
      break;
    }
    uint64_t d = delay_for_next(s);
    if (d) {
      s->delayed_for = s->events;
      flush(s);
      arm(s, d);
      break;
    }
    if (budget-- == 0) { /* let other streams run */
      flush(s);
      arm(s, 0);
      break;
    }
    if (emit_next(s)) {
      W2A_WARN("fakewarp: event build failed; cutting stream %s", s->ids.request_id);
      finish_cut(s);
      break;
    }
    s->events++;
    advance(s);
    if (s->out.len >= FLUSH_BYTES) {
      flush(s);
      /* The server's own threshold (max_queue_bytes): its on_drain fires only after
       * the queue went above it, so pausing on any other level could sleep forever. */
      if (w2a_http_stream_congested(s->req)) {
        s->wait_drain = 1;
        break;
      }
    }
  }
  s->in_pump = 0;
  if (s->aborted && !s->completed) finish_abandoned(s);
}

static void on_abort(w2a_http_req *r, void *ud) {
  (void)r;
  w2a_fake_stream *s = ud;
  if (s->completed) return;
  s->aborted = 1;
  if (!s->in_pump) finish_abandoned(s);
}

static void on_drain(w2a_http_req *r, void *ud) {
  (void)r;
  w2a_fake_stream *s = ud;
  if (s->completed || !s->wait_drain) return;
  s->wait_drain = 0;
  pump(s);
}

/* ---- the handler ----------------------------------------------------------------- */

static void log_request(w2a_fake *f, w2a_fake_account *a, w2a_http_req *r,
                        const w2a_fake_request *rq, const char *request_id, int status,
                        const char *outcome, const w2a_fake_scenario *sc, int hidden) {
  w2a_fake_log_rec rec = {.at_ms = w2a_now_ms(),
                          .request_id = request_id,
                          .status = status,
                          .outcome = outcome,
                          .warnings = sc ? sc->warn : NULL,
                          .req = r,
                          .decoded = rq != NULL,
                          .hidden = hidden};
  w2a_fake_account_log(&f->st, a, &rec);
}

static void build_answer(w2a_fake_stream *s, const char *query_clean) {
  const w2a_fake_scenario *sc = &s->sc;
  char *tr_text = w2a_fake_tool_results_text(s->rq);
  if (sc->answer == W2A_FAKE_ANSWER_ECHO) {
    json_object *sum = w2a_fake_summary(s->rq);
    s->text = strdup(json_object_to_json_string_ext(sum, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(sum);
    if (s->sc.text_size == 8) s->sc.text_size = 64; /* default chunking for echo */
  } else if (tr_text) {
    /* A tool result always gets its quoting answer, so a tools default never loops. */
    s->text = tr_text;
    tr_text = NULL;
  } else if (sc->answer == W2A_FAKE_ANSWER_TOOLS) {
    const Warp__MultiAgent__V1__Request__MCPContext *mc = s->rq->mcp_context;
    size_t nt = mc ? mc->n_tools : 0;
    size_t cand = 0;
    for (size_t i = 0; i < nt; i++)
      if (!sc->tool_name[0] || !strcmp(mc->tools[i]->name, sc->tool_name)) cand++;
    if (!cand) {
      s->text = strdup(nt ? "[fakewarp] no MCP tool by that name in the request"
                          : "[fakewarp] tools requested but the request carries no MCP tools");
    } else {
      s->tools = calloc((size_t)sc->tools_n, sizeof *s->tools);
      for (int k = 0; s->tools && k < sc->tools_n; k++) {
        size_t want = (size_t)k % cand, seen = 0;
        const Warp__MultiAgent__V1__Request__MCPContext__MCPTool *t = NULL;
        for (size_t i = 0; i < nt; i++) {
          if (sc->tool_name[0] && strcmp(mc->tools[i]->name, sc->tool_name)) continue;
          if (seen++ == want) {
            t = mc->tools[i];
            break;
          }
        }
        tool_plan *p = &s->tools[s->ntools++];
        p->name = strdup(t->name);
        p->args = sc->tool_args[0] ? strdup(sc->tool_args) : args_for_schema(t->input_schema);
        w2a_fake_uuid4(p->msg_id);
        snprintf(p->call_id, sizeof p->call_id, "toolu_%.30s", p->msg_id);
      }
    }
  } else if (sc->text_chunks == 0 && !sc->text_none) {
    size_t n = strlen(query_clean) + 16;
    s->text = malloc(n);
    if (s->text) {
      memcpy(s->text, "You said: ", 10);
      memcpy(s->text + 10, query_clean, n - 15); /* with its NUL */
    }
  }
  free(tr_text);
  if (s->ntools) {
    s->answer_n = s->ntools;
  } else if (s->text) {
    s->text_len = strlen(s->text);
    if (s->text_len > MAX_TEXT_BYTES) s->text_len = MAX_TEXT_BYTES;
    s->answer_n = count_pieces(s->text, s->text_len, (size_t)s->sc.text_size);
  } else {
    s->answer_n = sc->text_none ? 0 : sc->text_chunks;
  }
  if (sc->reasoning > 0) {
    /* Reasoning: `reasoning` chunks of a fixed sentence about the query. */
    size_t n = strlen(query_clean) + 32;
    char *base = malloc(n);
    if (base) {
      snprintf(base, n, "Thinking about: %s", query_clean);
      size_t bl = strlen(base);
      size_t per = (size_t)s->sc.text_size;
      size_t total = per * (size_t)sc->reasoning;
      s->reason = malloc(total + 1);
      if (s->reason) {
        for (size_t i = 0; i < total; i++)
          s->reason[i] = i < bl ? base[i] : '.';
        s->reason[total] = 0;
        /* keep it valid UTF-8 when the query was cut mid-character */
        for (size_t i = bl < total ? bl : total; i > 0; i--) {
          unsigned char c = (unsigned char)s->reason[i - 1];
          if (c < 0x80) break;
          if (c >= 0xC0) {
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (i - 1 + need > total)
              for (size_t j = i - 1; j < total && j < bl; j++)
                s->reason[j] = '.';
            break;
          }
        }
        s->reason_len = total;
        s->reason_n = count_pieces(s->reason, s->reason_len, per);
      }
      free(base);
    }
  }
}

void w2a_fake_stream_handle(w2a_fake *f, w2a_http_req *r) {
  w2a_fake_state *st = &f->st;
  st->ai_requests++;
  const char *tok = w2a_fake_bearer(r);
  w2a_fake_account *a = NULL;
  int64_t exp = 0;
  int rc = tok ? w2a_fake_token_check(st, tok, &a, &exp) : W2A_EAUTH;
  if (rc == W2A_ESTATE) {
    char msg[96];
    snprintf(msg, sizeof msg, "ID token has expired at: %lld", (long long)exp);
    st->unauthorized++;
    log_request(f, a, r, NULL, NULL, 401, "expired_token", NULL, 0);
    w2a_fake_reply_error(r, 401, msg);
    return;
  }
  if (rc) {
    st->unauthorized++;
    log_request(f, NULL, r, NULL, NULL, 401, "unknown_token", NULL, 0);
    w2a_fake_reply_error(r, 401, "Unauthorized");
    return;
  }
  a->ai_requests++;
  /* Validated first: protobuf-c 1.4.1 misbehaves on some malformed input. */
  rq_arena *arena = arena_new();
  w2a_fake_request *rq = arena ? (w2a_fake_request *)w2a_pbjson_unpack_with(
                                     &warp__multi_agent__v1__request__descriptor,
                                     (const uint8_t *)r->body, r->body_len, &arena->a, NULL)
                               : NULL;
  if (!rq) {
    arena_free(arena);
    log_request(f, a, r, NULL, NULL, 400, "undecodable", NULL, 0);
    w2a_fake_reply_error(r, 400, "Invalid request: failed to decode request body");
    return;
  }
  const Warp__MultiAgent__V1__Request__Input__UserQuery *uq = w2a_fake_input_query(rq);
  const Warp__MultiAgent__V1__Request__Input__ToolCallResult *tr = w2a_fake_input_tool_result(rq);

  w2a_fake_scenario sc;
  w2a_fake_scenario_init(&sc);
  w2a_fake_scenario_apply(&sc, st->global_scenario);
  if (st->global_once_left > 0) {
    w2a_fake_scenario_apply(&sc, st->global_once);
    st->global_once_left--;
  }
  w2a_fake_scenario_apply(&sc, a->scenario);
  if (a->once_left > 0) {
    w2a_fake_scenario_apply(&sc, a->once);
    a->once_left--;
  }
  if (uq) w2a_fake_scenario_apply(&sc, uq->query);

  /* A refusal (or an empty 200): decided here, logged, then answered. */
  int status = 0;
  enum { R_ERROR, R_TEXT, R_EMPTY } how = R_ERROR;
  const char *outcome = NULL, *text = NULL;
  char msg[256];
  if (sc.invalid || (!uq && !tr)) {
    status = 400;
    outcome = "invalid";
    text = "Invalid request: Expected user query or tool call result as input; got <nil>";
  } else if (a->blocked || sc.blocked) {
    status = 403;
    outcome = "blocked";
    text = sc.blocked == 2
               ? "Your account has been blocked from using AI features. If you think this is in "
                 "error, please contact appeals@warp.dev. Otherwise, please upgrade to a paid plan "
                 "at https://app.warp.dev/upgrade."
               : "Your account has been blocked from using AI features. If you think this is in "
                 "error, please contact appeals@warp.dev.";
  } else if (sc.quota) {
    status = 429;
    outcome = "quota";
    text = sc.quota == 2 ? "No AI requests remaining" : "No remaining quota";
  } else if (!w2a_fake_account_quota_ok(st, a, w2a_now_ms()) && !a->quota_in_stream) {
    status = 429;
    outcome = "quota_exhausted";
    text = "No remaining quota";
  } else if (sc.model_denied) {
    const char *m =
        rq->settings && rq->settings->model_config ? rq->settings->model_config->base : "";
    snprintf(msg, sizeof msg, "The requested base model %s is not allowed for your account", m);
    status = 400;
    outcome = "model_denied";
    text = msg;
  } else if (sc.http_status) {
    status = sc.http_status;
    outcome = "status";
    if (sc.http_body[0]) {
      how = R_TEXT;
      text = sc.http_body;
    } else {
      text = status >= 500 ? "Something went wrong with this conversation"
                           : w2a_http_status_text(status);
    }
  } else if (sc.empty) {
    status = 200;
    outcome = "empty";
    how = R_EMPTY;
    a->served++;
    a->used++;
  }
  if (status) {
    /* These entries have always been written after the answer, when the server had
     * already let go of the request: the log shows no headers and an empty body, only
     * the decoded request. Kept as it was (hidden = 1). */
    log_request(f, a, r, rq, NULL, status, outcome, &sc, 1);
    if (how == R_TEXT)
      w2a_fake_reply_text(r, status, "text/plain; charset=utf-8", text);
    else if (how == R_EMPTY)
      w2a_fake_reply_text(r, 200, "text/event-stream;charset=utf-8", "");
    else
      w2a_fake_reply_error(r, status, text);
    arena_free(arena);
    return;
  }

  /* From here on: a 200 stream. */
  int quota_stream = sc.quota_stream || !w2a_fake_account_quota_ok(st, a, w2a_now_ms());
  w2a_fake_stream *s = calloc(1, sizeof *s);
  if (!s) {
    arena_free(arena);
    w2a_fake_reply_error(r, 500, "out of memory");
    return;
  }
  s->f = f;
  s->req = r;
  s->acct = a;
  s->sc = sc;
  s->rq = rq;
  s->arena = arena;
  s->body_len = r->body_len;
  s->delayed_for = -1;
  s->started_ms = w2a_now_ms();
  s->minimal = quota_stream;
  w2a_buf_init(&s->out, 0);
  uv_timer_init(f->loop, &s->timer);
  s->timer.data = s;
  s->next = f->streams;
  if (f->streams) f->streams->prev = s;
  f->streams = s;
  st->streams_open++;
  a->streams_open++;
  if (!quota_stream) {
    a->served++;
    a->used++;
  }

  const char *conv = rq->metadata ? rq->metadata->conversation_id : NULL;
  if (conv && *conv && strlen(conv) < sizeof s->ids.conversation_id)
    snprintf(s->ids.conversation_id, sizeof s->ids.conversation_id, "%s", conv);
  else
    w2a_fake_uuid4(s->ids.conversation_id);
  w2a_fake_uuid4(s->ids.request_id);
  const char *task = NULL;
  if (rq->task_context) {
    if (rq->task_context->active_task_id && *rq->task_context->active_task_id)
      task = rq->task_context->active_task_id;
    else if (rq->task_context->n_tasks && *rq->task_context->tasks[0]->id)
      task = rq->task_context->tasks[0]->id;
  }
  if (task && strlen(task) < sizeof s->ids.task_id) {
    snprintf(s->ids.task_id, sizeof s->ids.task_id, "%s", task);
  } else {
    w2a_fake_uuid4(s->ids.task_id);
    s->new_task = 1;
  }
  uint64_t ns = w2a_now_ms() * 1000000u;
  s->ids.ts_s = (int64_t)(ns / 1000000000u);
  s->ids.ts_ns = (int32_t)(ns % 1000000000u);
  w2a_fake_uuid4(s->user_msg_id);
  w2a_fake_uuid4(s->answer_msg_id);
  w2a_fake_uuid4(s->reason_msg_id);
  s->has_echo = 1;

  /* The query without directives (at most QUERY_MAX - 1 bytes of it). */
  const char *query = uq ? uq->query : "";
  size_t qn = strlen(query) + 1;
  if (qn > QUERY_MAX) qn = QUERY_MAX;
  char small[512];
  char *clean = qn <= sizeof small ? small : malloc(qn);
  if (clean) w2a_fake_scenario_strip(query, clean, qn);
  if (!s->minimal) build_answer(s, clean ? clean : "");
  if (sc.title[0]) {
    snprintf(s->title, sizeof s->title, "%s", sc.title);
  } else if (clean && *clean) {
    size_t tl = strnlen(clean, sizeof s->title - 1); /* snprintf's truncation */
    memcpy(s->title, clean, tl);
    s->title[tl] = 0;
    utf8_trunc(s->title, 40);
  } else {
    snprintf(s->title, sizeof s->title, "%s", tr ? "Tool result" : "New conversation");
  }
  if (clean != small) free(clean);
  /* Default place of a between-stall: right after the first answer event. */
  int before_answer = 1 + (has_phase(s, PH_CREATE) ? 1 : 0) + 1 + 2 * s->has_echo + 1 + s->reason_n;
  s->stall_after = sc.stall_after >= 0 ? sc.stall_after : before_answer + 1;

  log_request(f, a, r, rq, s->ids.request_id, 200, s->minimal ? "quota_stream" : "stream", &sc, 0);
  w2a_http_req_on_abort(r, on_abort, s);
  w2a_http_req_on_drain(r, on_drain, s);
  if (sc.head_ms > 0) {
    s->phase = PH_HEAD;
    arm(s, (uint64_t)sc.head_ms);
    return;
  }
  w2a_http_stream_start(r, 200, "text/event-stream;charset=utf-8", "cache-control: no-cache\r\n");
  s->phase = PH_INIT;
  pump(s);
}

void w2a_fake_stream_abort_all(w2a_fake *f) {
  for (w2a_fake_stream *s = f->streams; s; s = s->next) {
    if (s->completed) continue;
    s->completed = 1;
    w2a_http_abort(s->req);
    release(s);
  }
}

void w2a_fake_stream_forget_accounts(w2a_fake *f) {
  for (w2a_fake_stream *s = f->streams; s; s = s->next)
    s->acct = NULL;
}

size_t w2a_fake_stream_count(const w2a_fake *f) {
  size_t n = 0;
  for (const w2a_fake_stream *s = f->streams; s; s = s->next)
    if (!s->completed) n++;
  return n;
}
