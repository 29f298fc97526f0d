/* client.c - HTTP client on libcurl's multi interface driven by libuv; see client.h.
 *
 * The "multi-uv" pattern: libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION
 * → one uv_poll_t per socket, stored with curl_multi_assign) and when to call it back
 * (CURLMOPT_TIMERFUNCTION → one uv_timer_t); events go back in through
 * curl_multi_socket_action(), after which finished transfers are collected with
 * curl_multi_info_read().
 *
 * Re-entrancy rules, the subtle part:
 * - libcurl forbids curl_multi_remove_handle() / curl_easy_cleanup() from inside its own
 *   callbacks. `cb_depth` counts how deep we are inside curl (socket_action, easy_pause);
 *   a cancel there only marks the call (its write/header callbacks then return an error,
 *   so curl stops reading at once) and queues it on the `deferred` list, which a uv_idle
 *   handle drains right after, off curl's stack.
 * - curl_easy_pause(CURLPAUSE_CONT) delivers buffered data synchronously, so resume is
 *   also deferred to the idle handler: w2a_http_call_resume() never re-enters the caller.
 * - Pause: on_data returning W2A_HTTP_PAUSE makes the write callback return
 *   CURL_WRITEFUNC_PAUSE. curl will deliver those same bytes again on unpause, but our
 *   contract says they were consumed, so `skip` counts the bytes to drop from the front
 *   of the re-delivery.
 * - A socket's uv_poll is stopped and closed synchronously when curl closes the socket
 *   (close_cb, before the close), so a new socket that reuses the fd number never shares
 *   epoll state with the old handle. Between transfers a cached connection's poll stays
 *   parked (see park()).
 * Ownership: the client owns its calls (a list); a call is freed after on_done returns,
 * or at cancel; its per-call timer (idle / first-byte / total timeouts) is freed in its
 * close callback; the client is freed when every handle it opened is closed. */
#include "client.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

/* Easy handles kept for reuse: curl_easy_init() callocs and sets up a large struct and
 * curl_easy_cleanup() frees it with its receive buffer, per call; curl_easy_reset()
 * keeps both. Bounded, so a burst leaves at most this many behind. */
#define SPARE_EASY_MAX 64

/* Idle connections curl may keep (CURLMOPT_MAXCONNECTS), at least. */
#define IDLE_CONNS_MAX 128

/* Distinct URLs kept parsed; a client talks to a handful (Warp's API, its token service). */
#define URL_CACHE_MAX 4

typedef struct sockctx sockctx;
struct sockctx {
  uv_poll_t poll;
  curl_socket_t fd;
  int parked; /* curl is done with the socket for now (it sits in its cache) */
  int events; /* UV_READABLE|UV_WRITABLE the poll is started with; 0: stopped */
  int conn;   /* a connection socket: curl closes it through close_cb */
  w2a_http_client *cl;
  sockctx *prev, *next;
};

struct w2a_http_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's timeout */
  uv_idle_t idle;   /* deferred work: cancels, resumes, the final close */
  char *proxy, *ca_file;
  int insecure;
  int no_env_proxy; /* no proxy variable in the environment at start (see client_new) */
  struct {          /* parsed URLs handed to curl as CURLOPT_CURLU (see url_handle) */
    char *url;
    CURLU *h;
  } urls[URL_CACHE_MAX];
  uint64_t connect_timeout_ms;
  w2a_http_call *calls; /* live calls */
  w2a_http_call *deferred;
  w2a_http_call *batch; /* calls whose on_data ran in this socket event: on_batch is due */
  sockctx *socks;   /* watched sockets, and parked ones */
  sockctx **parked; /* by fd: stopped polls of sockets still open, reused when curl
                       watches that socket again */
  size_t nparked;
  unsigned char *connfd; /* by fd: 1 while the fd is a connection socket curl opened */
  size_t nconnfd;
  size_t ncalls;
  int nhandles; /* open uv handles: timer, idle, polls, call timers */
  int cb_depth; /* > 0 while inside libcurl */
  int closing, multi_gone;
  CURL *spare[SPARE_EASY_MAX]; /* reset easy handles, reused by the next calls */
  int nspare;
  void (*done)(void *ud);
  void *done_ud;
};

struct w2a_http_call {
  w2a_http_client *cli;
  CURL *easy;
  struct curl_slist *hdrs;
  w2a_http_call_cbs cbs;
  void *ud;
  void (*ud_free)(void *ud); /* w2a_http_fetch's context, when cancelled without on_done */
  uv_timer_t tmo;
  w2a_http_call *prev, *next; /* in cli->calls */
  w2a_http_call *dnext;       /* in cli->deferred */
  w2a_http_call *bnext;       /* in cli->batch */
  uint64_t t0, last;          /* loop ms: start, last received byte */
  uint64_t timeout_ms, idle_ms, first_byte_ms;
  size_t skip; /* bytes curl will re-deliver that on_data already consumed */
  int status;
  const char *version;
  const char *fail_msg; /* our own reason when we stopped the transfer */
  int fail_code;
  unsigned status_fired : 1, got_any : 1, got_body : 1, paused : 1, want_resume : 1, cancelled : 1,
      in_done : 1, on_deferred : 1, finished : 1, done_ok : 1, batched : 1;
  char errbuf[CURL_ERROR_SIZE];
  char msg[CURL_ERROR_SIZE + 128];
};

static void client_check_multi(w2a_http_client *cl);
static void client_maybe_finish(w2a_http_client *cl);
static void call_arm(w2a_http_call *c);
static void on_idle(uv_idle_t *h);

/* libcurl's global set-up, once per process (the CLI calls it too).
 *
 * Debian's libcurl links libssh2, and curl_global_init() calls libssh2_init(0), which
 * initialises all of OpenSSL's algorithms and engines for an SSH client we never use
 * (CURLOPT_PROTOCOLS_STR is http,https): ~1.4 MB of libcrypto pages made resident at
 * start. libssh2_init() does its crypto set-up only on the first call, so calling it first
 * with LIBSSH2_INIT_NO_CRYPTO leaves OpenSSL alone; OpenSSL 3 initialises itself on first
 * use should anything ever need it. Looked up with dlsym so a libcurl built without
 * libssh2 needs nothing. The flag's value is libssh2's public ABI (libssh2.h). */
#define W2A_LIBSSH2_INIT_NO_CRYPTO 0x0001
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) {
  int (*ssh2_init)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "libssh2_init");
  if (ssh2_init) ssh2_init(W2A_LIBSSH2_INIT_NO_CRYPTO);
  curl_global_init(CURL_GLOBAL_DEFAULT);
}
void w2a_http_global_init(void) { pthread_once(&curl_once, curl_init_once); }

/* ---------------------------------------------------------------- handle bookkeeping */

static void on_sock_closed(uv_handle_t *h);
static void sock_watch(sockctx *sc, int ev);

static void on_handle_closed(uv_handle_t *h) {
  w2a_http_client *cl = h->data;
  cl->nhandles--;
  client_maybe_finish(cl);
}

static void sock_close(sockctx *sc) {
  w2a_http_client *cl = sc->cl;
  if (sc->parked) cl->parked[sc->fd] = NULL;
  if (sc->prev)
    sc->prev->next = sc->next;
  else
    cl->socks = sc->next;
  if (sc->next) sc->next->prev = sc->prev;
  uv_poll_stop(&sc->poll); /* now, while the fd is still this socket's */
  uv_close((uv_handle_t *)&sc->poll, on_sock_closed);
}

static void on_sock_closed(uv_handle_t *h) {
  sockctx *sc = h->data;
  w2a_http_client *cl = sc->cl;
  free(sc);
  cl->nhandles--;
  client_maybe_finish(cl);
}

static void on_call_timer_closed(uv_handle_t *h) {
  w2a_http_call *c = h->data;
  w2a_http_client *cl = c->cli;
  free(c);
  cl->nhandles--;
  client_maybe_finish(cl);
}

static void client_maybe_finish(w2a_http_client *cl) {
  if (!cl->closing || !cl->multi_gone || cl->nhandles) return;
  void (*done)(void *) = cl->done;
  void *ud = cl->done_ud;
  free(cl->proxy);
  free(cl->ca_file);
  free(cl->parked);
  free(cl->connfd);
  for (int i = 0; i < URL_CACHE_MAX; i++) {
    curl_url_cleanup(cl->urls[i].h);
    free(cl->urls[i].url);
  }
  free(cl);
  if (done) done(ud);
}

static void defer(w2a_http_call *c) {
  w2a_http_client *cl = c->cli;
  if (!c->on_deferred) {
    c->on_deferred = 1;
    c->dnext = cl->deferred;
    cl->deferred = c;
  }
  if (!uv_is_closing((uv_handle_t *)&cl->idle)) uv_idle_start(&cl->idle, on_idle);
}

/* The URL parsed once (curl_url_set with CURLOPT_URL's flags) instead of per transfer;
 * NULL when the cache is full or the URL does not parse (CURLOPT_URL then reports it).
 * Handles live as long as the client, so one is never freed under a transfer. */
static CURLU *url_handle(w2a_http_client *cl, const char *url) {
  int i;
  for (i = 0; i < URL_CACHE_MAX && cl->urls[i].url; i++)
    if (!strcmp(cl->urls[i].url, url)) return cl->urls[i].h;
  if (i == URL_CACHE_MAX) return NULL;
  CURLU *h = curl_url();
  char *s = strdup(url);
  if (!h || !s ||
      curl_url_set(h, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME)) {
    curl_url_cleanup(h);
    free(s);
    return NULL;
  }
  cl->urls[i].url = s;
  cl->urls[i].h = h;
  return h;
}

static CURL *easy_get(w2a_http_client *cl) {
  return cl->nspare ? cl->spare[--cl->nspare] : curl_easy_init();
}

/* Only handles of transfers that ran to a successful end are kept: one stopped midway
 * (cancelled, timed out, paused) may hold state a reset is not documented to drop. */
static void easy_put(w2a_http_client *cl, CURL *e, int reusable) {
  if (reusable && !cl->closing && cl->nspare < SPARE_EASY_MAX) {
    curl_easy_reset(e);
    cl->spare[cl->nspare++] = e;
  } else {
    curl_easy_cleanup(e);
  }
}

/* Detach from curl and free (the memory goes in the timer's close callback). Never
 * called from inside a curl callback. */
static void call_free(w2a_http_call *c) {
  w2a_http_client *cl = c->cli;
  if (c->easy) {
    curl_multi_remove_handle(cl->multi, c->easy);
    easy_put(cl, c->easy, c->done_ok && !c->cancelled && !c->paused);
    c->easy = NULL;
  }
  free(c->hdrs); /* one block (w2a_http_client_start) */
  c->hdrs = NULL;
  if (c->on_deferred) { /* unlink from the deferred list */
    for (w2a_http_call **pp = &cl->deferred; *pp; pp = &(*pp)->dnext)
      if (*pp == c) {
        *pp = c->dnext;
        break;
      }
    c->on_deferred = 0;
  }
  if (c->batched) {
    for (w2a_http_call **pp = &cl->batch; *pp; pp = &(*pp)->bnext)
      if (*pp == c) {
        *pp = c->bnext;
        break;
      }
    c->batched = 0;
  }
  if (c->prev)
    c->prev->next = c->next;
  else
    cl->calls = c->next;
  if (c->next) c->next->prev = c->prev;
  cl->ncalls--;
  if (!c->in_done && c->ud_free) c->ud_free(c->ud);
  uv_close((uv_handle_t *)&c->tmo, on_call_timer_closed);
}

/* ---------------------------------------------------------------- curl → uv */

/* on_batch of every call that received data since the last run: after each socket event
 * (and timer, and resume) rather than after each write callback, so that a consumer
 * writes once per event however many times curl's chunked decoding called on_data
 * (twice per 16 KiB read with fakewarp). Counted as inside curl (cb_depth): a cancel or
 * pause asked for here is deferred like one from on_data. */
static void run_batches(w2a_http_client *cl) {
  cl->cb_depth++;
  while (cl->batch) {
    w2a_http_call *c = cl->batch;
    cl->batch = c->bnext;
    c->batched = 0;
    if (!c->cancelled && !c->finished) c->cbs.on_batch(c, c->ud);
  }
  cl->cb_depth--;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sockctx *sc = h->data;
  w2a_http_client *cl = sc->cl;
  int flags = 0;
  if (sc->parked) { /* an idle cached connection: closed by the peer, most likely */
    sock_watch(sc, 0);
    return;
  }
  if (status < 0) { /* libuv stopped the poll itself (POLLERR): restart on curl's next ask */
    flags = CURL_CSELECT_ERR;
    sc->events = 0;
  }
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  cl->cb_depth++;
  curl_multi_socket_action(cl->multi, sc->fd, flags, &running);
  cl->cb_depth--;
  run_batches(cl);
  client_check_multi(cl);
}

/* Start, restart or stop a socket's poll only when the events change: every
 * uv_poll_start costs an epoll_ctl DEL (libuv invalidates the fd first) and an ADD at the
 * next poll, even when the events are the ones already watched. */
static void sock_watch(sockctx *sc, int ev) {
  if (ev == sc->events) return;
  if (ev)
    uv_poll_start(&sc->poll, ev, on_poll);
  else
    uv_poll_stop(&sc->poll);
  sc->events = ev;
}

/* A socket curl stops watching (CURL_POLL_REMOVE: the transfer is over and the connection
 * goes to curl's cache) keeps its uv_poll, parked by fd, until curl closes the socket
 * (close_cb); the next transfer on that connection takes it back. A connection socket's
 * poll even stays started with its events: nothing arrives on an idle connection, and if
 * the peer closes it or sends something unasked, on_poll stops the poll then. So reusing
 * a connection costs no epoll_ctl at all (it was three: the stop's DEL, the restart's DEL
 * and ADD). That is safe only because such a socket is closed through close_cb, which
 * closes the poll first, so its fd number cannot come back under a live poll; any other
 * socket curl watches (the threaded resolver's socketpair, closed without close_cb) is
 * stopped at once, and a stopped poll holds no epoll state. */
static int park(w2a_http_client *cl, sockctx *sc) {
  if (sc->fd < 0) return -1;
  if ((size_t)sc->fd >= cl->nparked) {
    size_t n = cl->nparked ? cl->nparked : 64;
    while (n <= (size_t)sc->fd)
      n *= 2;
    sockctx **p = realloc(cl->parked, n * sizeof *p);
    if (!p) return -1;
    memset(p + cl->nparked, 0, (n - cl->nparked) * sizeof *p);
    cl->parked = p;
    cl->nparked = n;
  }
  if (cl->parked[sc->fd]) sock_close(cl->parked[sc->fd]); /* not expected: fd reused */
  if (!sc->conn) sock_watch(sc, 0);
  uv_unref((uv_handle_t *)&sc->poll); /* an idle connection does not keep the loop running */
  sc->parked = 1;
  cl->parked[sc->fd] = sc;
  return 0;
}

/* CURLOPT_SOCKOPTFUNCTION: called for every connection socket curl creates. */
static int sockopt_cb(void *userp, curl_socket_t s, curlsocktype purpose) {
  w2a_http_client *cl = userp;
  if (purpose != CURLSOCKTYPE_IPCXN || s < 0) return CURL_SOCKOPT_OK;
  if ((size_t)s >= cl->nconnfd) {
    size_t n = cl->nconnfd ? cl->nconnfd : 64;
    while (n <= (size_t)s)
      n *= 2;
    unsigned char *p = realloc(cl->connfd, n);
    if (!p) return CURL_SOCKOPT_OK; /* not marked: parked the safe way */
    memset(p + cl->nconnfd, 0, n - cl->nconnfd);
    cl->connfd = p;
    cl->nconnfd = n;
  }
  cl->connfd[s] = 1;
  return CURL_SOCKOPT_OK;
}

static int close_cb(void *userp, curl_socket_t s) {
  w2a_http_client *cl = userp;
  if (s >= 0 && (size_t)s < cl->nparked && cl->parked[s]) sock_close(cl->parked[s]);
  if (s >= 0 && (size_t)s < cl->nconnfd) cl->connfd[s] = 0;
  return close(s);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
  w2a_http_client *cl = userp;
  sockctx *sc = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sc) {
      if (park(cl, sc)) sock_close(sc);
      curl_multi_assign(cl->multi, s, NULL);
    }
    return 0;
  }
  if (!sc && s >= 0 && (size_t)s < cl->nparked && (sc = cl->parked[s])) {
    cl->parked[s] = NULL;
    sc->parked = 0;
    uv_ref((uv_handle_t *)&sc->poll);
    curl_multi_assign(cl->multi, s, sc);
  }
  if (!sc) {
    sc = calloc(1, sizeof *sc);
    if (!sc) return -1;
    sc->fd = s;
    sc->cl = cl;
    sc->conn = s >= 0 && (size_t)s < cl->nconnfd && cl->connfd[s];
    if (uv_poll_init_socket(cl->loop, &sc->poll, s) < 0) {
      free(sc);
      return -1;
    }
    sc->poll.data = sc;
    cl->nhandles++;
    sc->next = cl->socks;
    if (cl->socks) cl->socks->prev = sc;
    cl->socks = sc;
    curl_multi_assign(cl->multi, s, sc);
  }
  int ev = 0;
  if (what & CURL_POLL_IN) ev |= UV_READABLE;
  if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
  sock_watch(sc, ev);
  return 0;
}

static void on_curl_timer(uv_timer_t *t) {
  w2a_http_client *cl = t->data;
  int running;
  cl->cb_depth++;
  curl_multi_socket_action(cl->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  cl->cb_depth--;
  run_batches(cl);
  client_check_multi(cl);
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
  w2a_http_client *cl = userp;
  if (cl->closing && cl->multi_gone) return 0;
  if (timeout_ms < 0)
    uv_timer_stop(&cl->timer);
  else
    uv_timer_start(&cl->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---------------------------------------------------------------- per-transfer callbacks */

static void fire_status(w2a_http_call *c) {
  if (c->status_fired) return;
  long code = 0;
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200) return; /* 1xx or nothing yet */
  c->status = (int)code;
  long v = 0;
  curl_easy_getinfo(c->easy, CURLINFO_HTTP_VERSION, &v);
  c->version = v == CURL_HTTP_VERSION_2_0 ? "2" : v == CURL_HTTP_VERSION_3 ? "3" : "1.1";
  c->status_fired = 1;
  char *ct = NULL;
  curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct);
  if (c->cbs.on_status) c->cbs.on_status(c, c->status, ct ? ct : "", c->ud);
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud) {
  w2a_http_call *c = ud;
  size_t len = size * n;
  if (c->cancelled || c->fail_msg) return 0;
  c->last = uv_now(c->cli->loop);
  if (!c->got_any) {
    c->got_any = 1;
    call_arm(c); /* the idle deadline may now come before the armed one */
  }
  if (len <= 2 && (len == 0 || p[0] == '\r' || p[0] == '\n')) {
    fire_status(c); /* end of a head; 1xx heads are skipped inside */
    if (c->cancelled) return 0;
  }
  return len;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud) {
  w2a_http_call *c = ud;
  size_t len = size * n;
  if (c->cancelled || c->fail_msg) return 0; /* makes curl stop with a write error */
  if (c->paused) return CURL_WRITEFUNC_PAUSE;
  size_t skip = c->skip < len ? c->skip : len;
  c->skip -= skip;
  if (skip == len) return len;
  fire_status(c);
  if (c->cancelled) return 0;
  c->last = uv_now(c->cli->loop);
  c->got_body = 1;
  if (!c->got_any) {
    c->got_any = 1;
    call_arm(c);
  }
  int r = c->cbs.on_data ? c->cbs.on_data(c, p + skip, len - skip, c->ud) : W2A_HTTP_CONTINUE;
  if (c->cancelled) return 0;
  if (c->cbs.on_batch && !c->batched) {
    c->batched = 1;
    c->bnext = c->cli->batch;
    c->cli->batch = c;
  }
  if (r == W2A_HTTP_PAUSE || c->paused) {
    c->paused = 1;
    c->skip = len; /* all of it was consumed; curl will hand it back on unpause */
    return CURL_WRITEFUNC_PAUSE;
  }
  if (r != W2A_HTTP_CONTINUE) {
    c->fail_code = W2A_EIO;
    c->fail_msg = "aborted by the receiver";
    return 0;
  }
  return len;
}

/* ---------------------------------------------------------------- completion */

static void call_done(w2a_http_call *c, int code, const char *msg) {
  w2a_http_client *cl = c->cli;
  c->finished = 1;
  c->done_ok = code == 0;
  if (c->easy) {
    curl_multi_remove_handle(cl->multi, c->easy); /* back to the connection cache */
  }
  uv_timer_stop(&c->tmo);
  if (code == 0) fire_status(c);
  c->in_done = 1;
  if (c->cbs.on_done) c->cbs.on_done(c, code, msg, c->ud);
  call_free(c);
}

static const char *describe(w2a_http_call *c, CURLcode res, int *code) {
  const char *what = c->errbuf[0] ? c->errbuf : curl_easy_strerror(res);
  long oserr = 0;
  curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
  char os[96] = "";
  if (oserr) snprintf(os, sizeof os, " (%s)", strerror((int)oserr));
  *code = W2A_EIO;
  switch (res) {
  case CURLE_COULDNT_CONNECT:
    snprintf(c->msg, sizeof c->msg, "connect failed: %s%s", what, os);
    break;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    snprintf(c->msg, sizeof c->msg, "resolve failed: %s", what);
    break;
  case CURLE_OPERATION_TIMEDOUT: {
    curl_off_t conn_us = 0;
    curl_easy_getinfo(c->easy, CURLINFO_CONNECT_TIME_T, &conn_us);
    snprintf(c->msg, sizeof c->msg, "%s: %s", conn_us ? "timeout" : "connect timeout", what);
    break;
  }
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CACERT_BADFILE: snprintf(c->msg, sizeof c->msg, "TLS: %s", what); break;
  default: snprintf(c->msg, sizeof c->msg, "%s%s", what, os); break;
  }
  return c->msg;
}

static void client_check_multi(w2a_http_client *cl) {
  if (cl->cb_depth) return; /* the outermost caller collects */
  CURLMsg *m;
  int left;
  while (cl->multi && (m = curl_multi_info_read(cl->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle;
    CURLcode res = m->data.result;
    w2a_http_call *c = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
    if (!c || c->cancelled || c->finished) continue;
    if (c->fail_msg) {
      call_done(c, c->fail_code, c->fail_msg);
    } else if (res == CURLE_OK) {
      call_done(c, 0, NULL);
    } else {
      int code;
      const char *msg = describe(c, res, &code);
      call_done(c, code, msg);
    }
  }
}

/* Deferred work, off curl's stack: cancels, resumes, and the client's final close. */
static void on_idle(uv_idle_t *h) {
  w2a_http_client *cl = h->data;
  while (cl->deferred) {
    w2a_http_call *c = cl->deferred;
    cl->deferred = c->dnext;
    c->on_deferred = 0;
    if (c->cancelled) {
      call_free(c);
    } else if (c->want_resume && !c->paused) {
      c->want_resume = 0;
      cl->cb_depth++;
      curl_easy_pause(c->easy, CURLPAUSE_CONT); /* may run write_cb right here */
      cl->cb_depth--;
    }
  }
  uv_idle_stop(h);
  run_batches(cl);
  client_check_multi(cl);
  if (cl->closing && !cl->multi_gone && cl->ncalls == 0) {
    cl->multi_gone = 1;
    while (cl->nspare)
      curl_easy_cleanup(cl->spare[--cl->nspare]);
    curl_multi_cleanup(cl->multi); /* may call sock_cb(REMOVE) for cached connections */
    cl->multi = NULL;
    while (cl->socks)
      sock_close(cl->socks);
    uv_close((uv_handle_t *)&cl->timer, on_handle_closed);
    uv_close((uv_handle_t *)&cl->idle, on_handle_closed);
  }
}

/* ---------------------------------------------------------------- per-call timeouts */

static void on_call_timer(uv_timer_t *t) {
  w2a_http_call *c = t->data;
  if (c->cancelled || c->finished) return;
  uint64_t now = uv_now(c->cli->loop);
  if (c->timeout_ms && now >= c->t0 + c->timeout_ms) {
    snprintf(c->msg, sizeof c->msg, "timeout (no complete answer within %llu ms)",
             (unsigned long long)c->timeout_ms);
  } else if (c->first_byte_ms && !c->got_body && now >= c->t0 + c->first_byte_ms) {
    snprintf(c->msg, sizeof c->msg, "first byte timeout (nothing within %llu ms)",
             (unsigned long long)c->first_byte_ms);
  } else if (c->idle_ms && !c->paused && (c->got_any || !c->first_byte_ms) &&
             now >= c->last + c->idle_ms) {
    snprintf(c->msg, sizeof c->msg, "idle timeout (no data for %llu ms)",
             (unsigned long long)c->idle_ms);
  } else {
    call_arm(c);
    return;
  }
  call_done(c, W2A_EIO, c->msg); /* not inside curl: safe to remove the handle here */
}

/* Arm the call's timer at the earliest of its deadlines. Data arriving does not re-arm
 * (it only moves `last`); the callback re-computes, so the per-chunk cost is nil. */
static void call_arm(w2a_http_call *c) {
  uint64_t next = UINT64_MAX;
  if (c->timeout_ms) next = c->t0 + c->timeout_ms;
  if (c->first_byte_ms && !c->got_body && c->t0 + c->first_byte_ms < next)
    next = c->t0 + c->first_byte_ms;
  if (c->idle_ms && !c->paused && (c->got_any || !c->first_byte_ms) && c->last + c->idle_ms < next)
    next = c->last + c->idle_ms;
  if (next == UINT64_MAX) {
    uv_timer_stop(&c->tmo);
    return;
  }
  uint64_t now = uv_now(c->cli->loop);
  uv_timer_start(&c->tmo, on_call_timer, next > now ? next - now : 0, 0);
}

/* ---------------------------------------------------------------- public API */

int w2a_http_client_new(w2a_http_client **out, uv_loop_t *loop, const w2a_http_client_opts *o,
                        w2a_err *err) {
  *out = NULL;
  w2a_http_global_init();
  w2a_http_client *cl = calloc(1, sizeof *cl);
  if (!cl) return w2a_errf(err, W2A_ENOMEM, "http client: out of memory");
  cl->loop = loop;
  cl->connect_timeout_ms = 10000;
  if (o) {
    if (o->proxy && *o->proxy) cl->proxy = strdup(o->proxy);
    if (o->ca_file && *o->ca_file) cl->ca_file = strdup(o->ca_file);
    cl->insecure = o->insecure_tls;
    if (o->connect_timeout_ms) cl->connect_timeout_ms = o->connect_timeout_ms;
  }
  /* With no explicit proxy curl looks for one in the environment, five getenv() scans of
   * environ per transfer (no_proxy, NO_PROXY, <scheme>_proxy, all_proxy, ALL_PROXY). When
   * none of the variables it reads is set at start, an empty CURLOPT_PROXY/NOPROXY per
   * call says "no proxy" up front, which is what the lookups would find. */
  if (!cl->proxy) {
    static const char *const vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                       "ALL_PROXY"};
    cl->no_env_proxy = 1;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
      if (getenv(vars[i])) cl->no_env_proxy = 0;
  }
  cl->multi = curl_multi_init();
  if (!cl->multi || (o && o->proxy && *o->proxy && !cl->proxy) ||
      (o && o->ca_file && *o->ca_file && !cl->ca_file)) {
    if (cl->multi) curl_multi_cleanup(cl->multi);
    free(cl->proxy);
    free(cl->ca_file);
    free(cl);
    return w2a_errf(err, W2A_ENOMEM, "http client: curl_multi_init failed");
  }
  curl_multi_setopt(cl->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
  curl_multi_setopt(cl->multi, CURLMOPT_SOCKETDATA, cl);
  curl_multi_setopt(cl->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(cl->multi, CURLMOPT_TIMERDATA, cl);
  curl_multi_setopt(cl->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (o && o->max_host_connections > 0)
    curl_multi_setopt(cl->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)o->max_host_connections);
  /* curl's default cache limit is 4 x the transfers running at that moment, so when the
   * load dips it closes idle connections that the next burst must open again (socket,
   * connect, setsockopts and the peer's accept): ~3 % of short completions paid that under
   * wrk -c50. A fixed limit keeps them; each idle one is a socket and a few KB. */
  curl_multi_setopt(cl->multi, CURLMOPT_MAXCONNECTS,
                    (long)(o && o->max_host_connections > IDLE_CONNS_MAX ? o->max_host_connections
                                                                         : IDLE_CONNS_MAX));
  uv_timer_init(loop, &cl->timer);
  cl->timer.data = cl;
  uv_idle_init(loop, &cl->idle);
  cl->idle.data = cl;
  cl->nhandles = 2;
  *out = cl;
  return 0;
}

void w2a_http_client_close(w2a_http_client *cl, void (*done)(void *ud), void *ud) {
  if (cl->closing) return;
  cl->closing = 1;
  cl->done = done;
  cl->done_ud = ud;
  for (w2a_http_call *c = cl->calls; c; c = c->next) {
    if (c->cancelled || c->in_done) continue;
    c->cancelled = 1;
    defer(c);
  }
  uv_idle_start(&cl->idle, on_idle); /* finishes the close off this stack */
}

size_t w2a_http_client_active(const w2a_http_client *cl) { return cl->ncalls; }

w2a_http_call *w2a_http_client_start(w2a_http_client *cl, const w2a_http_request *rq,
                                     const w2a_http_call_cbs *cbs, void *ud) {
  if (cl->closing || !rq || !rq->url) return NULL;
  w2a_http_call *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->cli = cl;
  c->cbs = *cbs;
  c->ud = ud;
  c->version = "1.1";
  CURL *e = easy_get(cl);
  if (!e) goto fail;
  c->easy = e;
  CURLU *uh = url_handle(cl, rq->url);
  if (uh)
    curl_easy_setopt(e, CURLOPT_CURLU, uh);
  else
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)c);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* PIPEWAIT only over TLS, where ALPN says at handshake whether h2 multiplexing is on;
   * on cleartext curl cannot know before a response, so a second request would queue
   * behind a slow first one. */
  if (!strncasecmp(rq->url, "https://", 8)) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cl->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, cl);
  curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
  curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, cl);
  if (cl->proxy) {
    curl_easy_setopt(e, CURLOPT_PROXY, cl->proxy);
  } else if (cl->no_env_proxy) {
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
  }
  if (cl->ca_file) {
    curl_easy_setopt(e, CURLOPT_CAINFO, cl->ca_file);
    curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, cl->ca_file);
  }
  if (cl->insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYHOST, 0L);
  }
  const char *method = rq->method ? rq->method : rq->body ? "POST" : "GET";
  if (rq->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, rq->body);
  }
  if (!strcmp(method, "HEAD"))
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, rq->body ? "POST" : "GET"))
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  /* The header list in one allocation: nodes, then the lines they point to. curl only
   * reads a CURLOPT_HTTPHEADER list (struct curl_slist is public), and curl_slist_append
   * would cost two allocations per line plus a walk to the tail each time. */
  size_t nh = 0, bytes = 0;
  int has_expect = 0;
  for (const char *const *h = rq->headers; h && *h; h++) {
    nh++;
    bytes += strlen(*h) + 1;
    if (!strncasecmp(*h, "expect:", 7)) has_expect = 1;
  }
  if (!has_expect && rq->body) { /* no 1 s wait for a 100 that many servers never send */
    nh++;
    bytes += sizeof "Expect:";
  }
  if (nh) {
    struct curl_slist *l = malloc(nh * sizeof *l + bytes);
    char *d = (char *)(l + nh);
    size_t i = 0;
    if (!l) goto fail;
    for (const char *const *h = rq->headers; h && *h; h++, i++) {
      size_t n = strlen(*h) + 1;
      l[i].data = memcpy(d, *h, n);
      d += n;
    }
    if (i < nh) l[i++].data = memcpy(d, "Expect:", sizeof "Expect:");
    for (i = 0; i < nh; i++)
      l[i].next = i + 1 < nh ? &l[i + 1] : NULL;
    c->hdrs = l;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->hdrs);
  }
  uv_timer_init(cl->loop, &c->tmo);
  c->tmo.data = c;
  cl->nhandles++;
  c->next = cl->calls;
  if (cl->calls) cl->calls->prev = c;
  cl->calls = c;
  cl->ncalls++;
  c->t0 = c->last = uv_now(cl->loop);
  c->timeout_ms = rq->timeout_ms;
  c->idle_ms = rq->idle_timeout_ms;
  c->first_byte_ms = rq->first_byte_timeout_ms;
  if (curl_multi_add_handle(cl->multi, e) != CURLM_OK) {
    call_free(c); /* frees c in the timer's close callback */
    return NULL;
  }
  call_arm(c);
  return c;
fail:
  if (c->easy) curl_easy_cleanup(c->easy);
  free(c->hdrs);
  free(c);
  return NULL;
}

void w2a_http_call_pause(w2a_http_call *c) {
  if (c->cancelled || c->finished || c->paused) return;
  c->paused = 1;
  c->want_resume = 0;
  /* Outside curl, stop reading now; inside, the next write_cb returns PAUSE anyway. */
  if (!c->cli->cb_depth) curl_easy_pause(c->easy, CURLPAUSE_RECV);
}

void w2a_http_call_resume(w2a_http_call *c) {
  if (c->cancelled || c->finished || !c->paused) return;
  c->paused = 0;
  c->want_resume = 1;
  c->last = uv_now(c->cli->loop); /* time spent paused is not silence */
  call_arm(c);
  defer(c);
}

void w2a_http_call_cancel(w2a_http_call *c) {
  if (c->cancelled || c->in_done) return; /* inside on_done: freed right after anyway */
  c->cancelled = 1;
  uv_timer_stop(&c->tmo);
  if (c->cli->cb_depth)
    defer(c); /* inside curl: write_cb/header_cb now fail the transfer */
  else
    call_free(c);
}

int w2a_http_call_status(const w2a_http_call *c) { return c->status; }

const char *w2a_http_call_version(const w2a_http_call *c) { return c->version; }

/* ---------------------------------------------------------------- fetch */

typedef struct fetch_ctx {
  w2a_buf body;
  size_t max;
  int too_big;
  w2a_http_fetch_fn fn;
  void *ud;
  char msg[96];
} fetch_ctx;

static int fetch_data(w2a_http_call *c, const char *p, size_t n, void *ud) {
  fetch_ctx *f = ud;
  if (w2a_buf_append(&f->body, p, n)) {
    f->too_big = 1;
    return W2A_HTTP_ABORT;
  }
  return W2A_HTTP_CONTINUE;
}

static void fetch_free(void *ud) {
  fetch_ctx *f = ud;
  w2a_buf_free(&f->body);
  free(f);
}

static void fetch_done(w2a_http_call *c, int code, const char *errmsg, void *ud) {
  fetch_ctx *f = ud;
  if (f->too_big) {
    snprintf(f->msg, sizeof f->msg, "response body over %zu bytes", f->max);
    code = W2A_ETOOBIG;
    errmsg = f->msg;
  }
  f->fn(code, c->status, f->body.data ? f->body.data : "", f->body.len, errmsg, f->ud);
  fetch_free(f);
}

int w2a_http_fetch(w2a_http_client *cl, const w2a_http_request *rq, size_t max_bytes,
                   w2a_http_fetch_fn fn, void *ud) {
  fetch_ctx *f = calloc(1, sizeof *f);
  if (!f) return W2A_ENOMEM;
  w2a_buf_init(&f->body, max_bytes ? max_bytes : SIZE_MAX - 1);
  f->max = max_bytes;
  f->fn = fn;
  f->ud = ud;
  w2a_http_call_cbs cbs = {.on_data = fetch_data, .on_done = fetch_done};
  w2a_http_call *c = w2a_http_client_start(cl, rq, &cbs, f);
  if (!c) {
    free(f);
    return cl->closing ? W2A_ESTATE : W2A_EINVAL;
  }
  c->ud_free = fetch_free;
  return 0;
}
