/* gateway_client.c - the load generator of bench/gateway_bench.sh, in plain libc so it
 * builds without the project's libraries (the script compiles it with cc -O2).
 *
 *   gateway_client lat HOST PORT REQFILE N [WARMUP]
 *       sends the raw HTTP/1.1 request in REQFILE N times, one at a time, over one
 *       keep-alive connection (reconnecting only if the server closes it), and prints the
 *       wall time from the first byte written to the last byte of the response read
 *       (with $CLIENT_TIMEOUT_S set, a response silent for that long fails the run):
 *       "n=... p50_us=... p90_us=... p99_us=... max_us=... mean_us=... reconnects=...".
 *   gateway_client streams HOST PORT REQFILE N [HOLD_MS]
 *       opens N connections at once, sends REQFILE on each and reads every response to
 *       its end with one epoll loop; prints "open=... done=... failed=... bytes=...
 *       first_all_ms=... seconds=...". first_all_ms is when every stream had its first
 *       body byte, i.e. when all N were live at once; a file named by $STREAMS_LIVE_FILE
 *       is created at that moment so a sampler can read the proxy's RSS at the peak.
 *
 * A response ends at its Content-Length, at the zero chunk of a chunked body, or at EOF;
 * anything but status 200 counts as a failure. The client is deliberately tiny so that,
 * sharing a core with fakewarp, it steals as little time as possible from it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { R_HEAD, R_CL, R_CHSIZE, R_CHDATA, R_CHCRLF, R_TRAILER, R_EOF, R_DONE };

typedef struct resp {
  int state, status, keepalive;
  char head[16384];
  size_t hlen;
  uint64_t remain; /* body bytes left (R_CL) or chunk bytes left (R_CHDATA) */
  char line[64];   /* chunk-size or trailer line being collected */
  size_t llen;
  uint64_t body;
} resp;

static void resp_init(resp *r) {
  memset(r, 0, sizeof *r);
  r->state = R_HEAD;
}

static int parse_head(resp *r) {
  r->head[r->hlen] = 0;
  if (strncmp(r->head, "HTTP/1.", 7) || r->hlen < 12) return -1;
  r->status = atoi(r->head + 9);
  r->keepalive = r->head[7] == '1';
  int chunked = 0, have_cl = 0;
  uint64_t cl = 0;
  for (char *l = strstr(r->head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
    char *h = l + 2;
    if (!strncasecmp(h, "content-length:", 15)) {
      have_cl = 1;
      cl = strtoull(h + 15, NULL, 10);
    } else if (!strncasecmp(h, "transfer-encoding:", 18)) {
      chunked = strstr(h, "chunked") && strstr(h, "chunked") < strstr(h, "\r\n");
    } else if (!strncasecmp(h, "connection:", 11)) {
      char *v = h + 11;
      while (*v == ' ') v++;
      if (!strncasecmp(v, "close", 5)) r->keepalive = 0;
    }
  }
  if (chunked) r->state = R_CHSIZE;
  else if (have_cl) {
    r->remain = cl;
    r->state = cl ? R_CL : R_DONE;
  } else {
    r->keepalive = 0;
    r->state = R_EOF;
  }
  return 0;
}

/* Consume up to n bytes; returns bytes used or -1 on a malformed response. Stops at
 * R_DONE (bytes after it would be a pipelined answer, which this client never asks for). */
static long resp_feed(resp *r, const char *p, size_t n) {
  size_t i = 0;
  while (i < n && r->state != R_DONE) {
    switch (r->state) {
    case R_HEAD:
      if (r->hlen + 1 >= sizeof r->head) return -1;
      r->head[r->hlen++] = p[i++];
      if (r->hlen >= 4 && !memcmp(r->head + r->hlen - 4, "\r\n\r\n", 4) && parse_head(r))
        return -1;
      break;
    case R_CL: {
      size_t k = n - i < r->remain ? n - i : (size_t)r->remain;
      r->remain -= k;
      r->body += k;
      i += k;
      if (!r->remain) r->state = R_DONE;
      break;
    }
    case R_CHSIZE:
    case R_TRAILER:
    case R_CHCRLF: {
      char c = p[i++];
      if (c != '\n') {
        if (r->llen + 1 >= sizeof r->line) return -1;
        r->line[r->llen++] = c;
        break;
      }
      r->line[r->llen] = 0;
      size_t len = r->llen;
      r->llen = 0;
      if (len && r->line[len - 1] == '\r') r->line[--len] = 0;
      if (r->state == R_CHCRLF) {
        if (len) return -1;
        r->state = R_CHSIZE;
      } else if (r->state == R_TRAILER) {
        if (!len) r->state = R_DONE;
      } else {
        char *end;
        r->remain = strtoull(r->line, &end, 16);
        if (end == r->line) return -1;
        r->state = r->remain ? R_CHDATA : R_TRAILER;
      }
      break;
    }
    case R_CHDATA: {
      size_t k = n - i < r->remain ? n - i : (size_t)r->remain;
      r->remain -= k;
      r->body += k;
      i += k;
      if (!r->remain) r->state = R_CHCRLF;
      break;
    }
    case R_EOF:
      r->body += n - i;
      i = n;
      break;
    }
  }
  return (long)i;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int dial(const char *host, int port, int nonblock) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const char *to = getenv("CLIENT_TIMEOUT_S"); /* lat: a stalled response fails, not hangs */
  if (!nonblock && to && atoi(to) > 0) {
    struct timeval tv = {.tv_sec = atoi(to)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *b = NULL;
  size_t cap = 0, n = 0, k;
  do {
    if (n + 65536 > cap) {
      cap = cap ? cap * 2 : 65536;
      char *nb = realloc(b, cap);
      if (!nb) break;
      b = nb;
    }
    k = fread(b + n, 1, cap - n, f);
    n += k;
  } while (k > 0);
  fclose(f);
  *len = n;
  return b;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *s, long n, double p) {
  long i = (long)(p * (double)(n - 1) + 0.5);
  return s[i < n ? i : n - 1];
}

static int run_lat(const char *host, int port, const char *req, size_t reqlen, long n,
                   long warmup) {
  double *s = calloc((size_t)n, sizeof *s);
  static char buf[65536];
  static resp r;
  int fd = -1;
  long reconnects = 0, bad = 0;
  if (!s) return 1;
  for (long i = -warmup; i < n; i++) {
    if (fd < 0) {
      fd = dial(host, port, 0);
      if (fd < 0) {
        perror("connect");
        return 1;
      }
      if (i > -warmup) reconnects++;
    }
    resp_init(&r);
    double t0 = now_us();
    if (write_all(fd, req, reqlen)) {
      close(fd);
      fd = -1;
      i--; /* the server closed an idle keep-alive connection: retry once on a new one */
      if (++bad > 10) return 1;
      continue;
    }
    while (r.state != R_DONE) {
      ssize_t k = read(fd, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        if (r.state == R_EOF) r.state = R_DONE;
        break;
      }
      if (resp_feed(&r, buf, (size_t)k) < 0) break;
    }
    double t1 = now_us();
    if (r.state != R_DONE || r.status != 200) {
      fprintf(stderr, "lat: request %ld failed (status %d, state %d)\n", i, r.status, r.state);
      return 1;
    }
    if (i >= 0) s[i] = t1 - t0;
    if (!r.keepalive) {
      close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) close(fd);
  double sum = 0;
  for (long i = 0; i < n; i++) sum += s[i];
  qsort(s, (size_t)n, sizeof *s, cmp_d);
  printf("n=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f "
         "reconnects=%ld body_bytes=%llu\n",
         n, pct(s, n, 0.5), pct(s, n, 0.9), pct(s, n, 0.99), s[n - 1], sum / (double)n,
         reconnects, (unsigned long long)r.body);
  free(s);
  return 0;
}

typedef struct conn {
  int fd, sent_off, live, finished;
  resp r;
} conn;

static int run_streams(const char *host, int port, const char *req, size_t reqlen, long n,
                       long hold_ms) {
  conn *c = calloc((size_t)n, sizeof *c);
  int ep = epoll_create1(0);
  static char buf[65536];
  const char *live_file = getenv("STREAMS_LIVE_FILE");
  long open_n = 0, done = 0, failed = 0, live = 0;
  uint64_t bytes = 0;
  double t0 = now_us(), t_all = -1;
  if (!c || ep < 0) return 1;
  for (long i = 0; i < n; i++) {
    resp_init(&c[i].r);
    c[i].fd = dial(host, port, 1);
    if (c[i].fd < 0) {
      c[i].finished = 1;
      failed++;
      done++;
      continue;
    }
    open_n++;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u64 = (uint64_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
  }
  struct epoll_event evs[256];
  double deadline = t0 + (hold_ms > 0 ? hold_ms : 600000) * 1e3;
  while (done < n && now_us() < deadline) {
    int k = epoll_wait(ep, evs, 256, 1000);
    for (int e = 0; e < k; e++) {
      conn *x = &c[evs[e].data.u64];
      if (x->finished) continue;
      int fail = 0, end = 0;
      if ((evs[e].events & EPOLLOUT) && (size_t)x->sent_off < reqlen) {
        ssize_t w = write(x->fd, req + x->sent_off, reqlen - (size_t)x->sent_off);
        if (w > 0) x->sent_off += (int)w;
        else if (w < 0 && errno != EAGAIN) fail = 1;
        if ((size_t)x->sent_off == reqlen) {
          struct epoll_event ev = {.events = EPOLLIN, .data.u64 = evs[e].data.u64};
          epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
        }
      }
      if (!fail && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        for (;;) {
          ssize_t r = read(x->fd, buf, sizeof buf);
          if (r < 0 && errno == EAGAIN) break;
          if (r <= 0) {
            if (x->r.state == R_EOF) end = 1;
            else fail = 1;
            break;
          }
          bytes += (uint64_t)r;
          if (resp_feed(&x->r, buf, (size_t)r) < 0) {
            fail = 1;
            break;
          }
          if (!x->live && x->r.body > 0) {
            x->live = 1;
            if (++live == open_n && t_all < 0) {
              t_all = now_us();
              if (live_file) {
                FILE *f = fopen(live_file, "w");
                if (f) fclose(f);
              }
            }
          }
          if (x->r.state == R_DONE) {
            end = 1;
            break;
          }
        }
      }
      if (fail || end) {
        if (fail || x->r.status != 200) failed++;
        x->finished = 1;
        done++;
        close(x->fd);
      }
    }
  }
  for (long i = 0; i < n; i++)
    if (!c[i].finished) {
      close(c[i].fd);
      failed++;
    }
  printf("open=%ld done=%ld failed=%ld bytes=%llu first_all_ms=%.0f seconds=%.2f\n", open_n,
         done, failed, (unsigned long long)bytes, t_all < 0 ? -1.0 : (t_all - t0) / 1e3,
         (now_us() - t0) / 1e6);
  free(c);
  close(ep);
  return failed ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 6 || (strcmp(argv[1], "lat") && strcmp(argv[1], "streams"))) {
    fprintf(stderr, "usage: %s lat HOST PORT REQFILE N [WARMUP]\n"
                    "       %s streams HOST PORT REQFILE N [HOLD_MS]\n",
            argv[0], argv[0]);
    return 2;
  }
  size_t reqlen = 0;
  char *req = slurp(argv[4], &reqlen);
  long n = atol(argv[5]), extra = argc > 6 ? atol(argv[6]) : 0;
  if (!req || !reqlen || n <= 0) {
    fprintf(stderr, "gateway_client: cannot read %s or bad N\n", argv[4]);
    return 2;
  }
  int rc = !strcmp(argv[1], "lat") ? run_lat(argv[2], atoi(argv[3]), req, reqlen, n, extra)
                                   : run_streams(argv[2], atoi(argv[3]), req, reqlen, n, extra);
  free(req);
  return rc;
}
