/* bench_http_server.c - a minimal server for load tests of src/http/server.c:
 *   bench_http_server [port]   then   wrk -t1 -c50 -d5s http://127.0.0.1:PORT/
 * Answers every request with a 13-byte text body; runs until killed. */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "http/server.h"

static void handler(w2a_http_req *r, void *ud) {
  w2a_http_respond(r, 200, "text/plain", NULL, "hello, world\n", 13);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8088;
  uv_loop_t *loop = uv_default_loop();
  w2a_http_server *s;
  w2a_err err = {0};
  if (w2a_http_server_listen(&s, loop, "127.0.0.1", port, NULL, handler, NULL, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  fprintf(stderr, "listening on 127.0.0.1:%d\n", w2a_http_server_port(s));
  return uv_run(loop, UV_RUN_DEFAULT);
}
