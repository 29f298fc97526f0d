/* bench_fakewarp.c - a load client for fakewarp's /ai/multi-agent: C keep-alive
 * HTTP/1.1 connections (one epoll thread), each POSTing the same protobuf Request again
 * and again, reading the chunked event stream and counting events (every "\n\n" that
 * ends one). It prints events/s, streams/s and MB/s over the measured window, and the
 * peak of streams open at once.
 *
 * usage: bench_fakewarp --port N --token TOK --body FILE [--host H] [--conns C]
 *                       [--seconds S] [--warmup S]
 * The client is deliberately dumb and fast (no protobuf decoding) so that, pinned to its
 * own core, it measures the server and not itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { HEAD, CSIZE, CDATA, CDATA_CRLF, CTRAILER };

typedef struct conn {
  int fd;
  int state;
  size_t chunk_left;
  char line[64];
  size_t line_len;
  char last; /* last body byte, for "\n\n" across reads */
  int in_stream;
  size_t head_seen; /* bytes of "\r\n\r\n" matched */
} conn;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static char *req;
static size_t req_len;
static uint64_t events, streams, bytes, errors;
static long open_now, open_peak;

static int send_req(conn *c) {
  size_t off = 0;
  while (off < req_len) {
    ssize_t w = write(c->fd, req + off, req_len - off);
    if (w < 0) {
      if (errno == EAGAIN) continue; /* the request is small; the buffer drains at once */
      return -1;
    }
    off += (size_t)w;
  }
  c->state = HEAD;
  c->head_seen = 0;
  c->line_len = 0;
  c->last = 0;
  c->in_stream = 1;
  if (++open_now > open_peak) open_peak = open_now;
  return 0;
}

/* Feed bytes; returns 1 when a response completed (and a new request was sent). */
static int feed(conn *c, const char *p, size_t n) {
  static const char crlf2[] = "\r\n\r\n";
  for (size_t i = 0; i < n;) {
    switch (c->state) {
    case HEAD:
      if (p[i] == crlf2[c->head_seen])
        c->head_seen++;
      else
        c->head_seen = p[i] == '\r' ? 1 : 0;
      i++;
      if (c->head_seen == 4) c->state = CSIZE;
      break;
    case CSIZE:
    case CTRAILER:
      if (p[i] == '\n') {
        c->line[c->line_len] = 0;
        if (c->state == CTRAILER) { /* end of the response */
          c->line_len = 0;
          i++;
          streams++;
          open_now--;
          c->in_stream = 0;
          if (send_req(c)) return -1;
          continue;
        }
        c->chunk_left = strtoul(c->line, NULL, 16);
        c->line_len = 0;
        c->state = c->chunk_left ? CDATA : CTRAILER;
      } else if (c->line_len + 1 < sizeof c->line) {
        c->line[c->line_len++] = p[i];
      }
      i++;
      break;
    case CDATA: {
      size_t k = n - i < c->chunk_left ? n - i : c->chunk_left;
      for (size_t j = 0; j < k; j++) {
        if (p[i + j] == '\n' && c->last == '\n') events++;
        c->last = p[i + j];
      }
      i += k;
      c->chunk_left -= k;
      if (!c->chunk_left) c->state = CDATA_CRLF;
      break;
    }
    case CDATA_CRLF:
      if (p[i] == '\n') c->state = CSIZE;
      i++;
      break;
    }
  }
  return 0;
}

static int dial(const char *host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1", *token = NULL, *body = NULL;
  int port = 0, nconn = 64;
  double seconds = 10, warmup = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--host"))
      host = argv[i + 1];
    else if (!strcmp(argv[i], "--port"))
      port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--token"))
      token = argv[i + 1];
    else if (!strcmp(argv[i], "--body"))
      body = argv[i + 1];
    else if (!strcmp(argv[i], "--conns"))
      nconn = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--seconds"))
      seconds = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--warmup"))
      warmup = atof(argv[i + 1]);
  }
  if (!port || !token || !body || nconn <= 0) {
    fprintf(stderr, "usage: %s --port N --token TOK --body FILE [--conns C] [--seconds S]\n",
            argv[0]);
    return 2;
  }
  FILE *fp = fopen(body, "rb");
  if (!fp) {
    perror(body);
    return 2;
  }
  static char bodybuf[1 << 16];
  size_t bl = fread(bodybuf, 1, sizeof bodybuf, fp);
  fclose(fp);
  req = malloc(bl + 4096);
  if (!req) return 2;
  int hl = snprintf(req, 4096,
                    "POST /ai/multi-agent HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/x-protobuf\r\nAccept: text/event-stream\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    host, port, token, bl);
  memcpy(req + hl, bodybuf, bl);
  req_len = (size_t)hl + bl;

  int ep = epoll_create1(0);
  conn *cs = calloc((size_t)nconn, sizeof *cs);
  if (!cs) return 2;
  for (int i = 0; i < nconn; i++) {
    cs[i].fd = dial(host, port);
    if (cs[i].fd < 0) {
      fprintf(stderr, "connect %d failed: %s\n", i, strerror(errno));
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    if (send_req(&cs[i])) return 1;
  }
  static char buf[1 << 16];
  struct epoll_event evs[256];
  uint64_t t0 = now_us(), start = 0, end_at = t0 + (uint64_t)((warmup + seconds) * 1e6);
  uint64_t e0 = 0, s0 = 0, b0 = 0;
  long peak_at_start = 0;
  for (;;) {
    uint64_t t = now_us();
    if (!start && t >= t0 + (uint64_t)(warmup * 1e6)) {
      start = t;
      e0 = events;
      s0 = streams;
      b0 = bytes;
      peak_at_start = open_peak;
    }
    if (t >= end_at) break;
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      for (;;) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r > 0) {
          bytes += (uint64_t)r;
          if (feed(c, buf, (size_t)r) < 0) errors++;
          if ((size_t)r < sizeof buf) break;
          continue;
        }
        if (r < 0 && errno == EAGAIN) break;
        errors++; /* closed or failed: reconnect */
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        if (c->in_stream) open_now--;
        c->fd = dial(host, port);
        if (c->fd < 0) return 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        send_req(c);
        break;
      }
    }
  }
  double secs = (double)(now_us() - start) / 1e6;
  printf("conns=%d seconds=%.1f events=%llu events_per_s=%.0f streams_per_s=%.1f "
         "MB_per_s=%.1f peak_open=%ld errors=%llu\n",
         nconn, secs, (unsigned long long)(events - e0), (double)(events - e0) / secs,
         (double)(streams - s0) / secs, (double)(bytes - b0) / secs / 1e6,
         open_peak > peak_at_start ? open_peak : peak_at_start, (unsigned long long)errors);
  for (int i = 0; i < nconn; i++)
    close(cs[i].fd);
  free(cs);
  free(req);
  close(ep);
  return 0;
}
