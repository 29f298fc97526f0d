/* test_sse_cli.c - `warp2api proto decode-stream` through the real dispatch
 * (w2a_cli_proto), each run in a child process with stdin/stdout/stderr on files. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "fixtures.h"
#include "t.h"

static char fixture[4096];
static char dir[] = "/tmp/w2a-test-sse-cli-XXXXXX";

static void spit(const char *path, const char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(p, 1, n, f);
  fclose(f);
}

/* Run `proto decode-stream ARGS` with stdin from `in` (NULL: /dev/null). */
static int run(const char *in, const char *const *args, size_t nargs, char **out, char **err) {
  char po[4200], pe[4200];
  snprintf(po, sizeof po, "%s/out", dir);
  snprintf(pe, sizeof pe, "%s/err", dir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(in ? in : "/dev/null", "rb", stdin) || !freopen(po, "wb", stdout) ||
        !freopen(pe, "wb", stderr))
      _exit(99);
    char *argv[16] = {"proto", "decode-stream"};
    for (size_t i = 0; i < nargs && i < 13; i++)
      argv[2 + i] = (char *)args[i];
    w2a_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.sse_event_max_bytes = 1 << 20;
    int rc = w2a_cli_proto((int)nargs + 2, argv, &cfg);
    fflush(NULL);
    _exit(rc);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  size_t n;
  *out = fx_slurp(po, &n);
  *err = fx_slurp(pe, &n);
  if (strstr(*err, "not built yet"))
    fprintf(stderr, "decode-stream reached a stub: a weak placeholder of "
                    "w2a_cli_proto_decode_stream (cli_proto.c) is linked instead of "
                    "cli_proto_stream.c; a weak definition in an archive member that is "
                    "pulled anyway never lets the linker fetch the strong one\n");
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_capture(void) {
  char *out, *err;
  const char *args[] = {fixture};
  T_EQ_INT(run(NULL, args, 1, &out, &err), 0);
  int lines = 0;
  for (char *p = out; (p = strchr(p, '\n')); p++)
    lines++;
  T_EQ_INT(lines, 15);
  char *last = strstr(out, "{\"summary\":");
  T_CHECK(last != NULL);
  json_object *j = last ? json_tokener_parse(last) : NULL;
  json_object *s = NULL, *v = NULL;
  T_CHECK(j && json_object_object_get_ex(j, "summary", &s));
  if (s) {
    T_CHECK(json_object_object_get_ex(s, "text", &v));
    T_EQ_STR(json_object_get_string(v), "你好！有什么可以帮你的吗？");
    T_CHECK(json_object_object_get_ex(s, "finish_reason", &v));
    T_EQ_STR(json_object_get_string(v), "done");
    T_CHECK(json_object_object_get_ex(s, "events", &v));
    T_EQ_INT(json_object_get_int(v), 14);
    T_CHECK(json_object_object_get_ex(s, "conversation_id", &v));
    T_EQ_STR(json_object_get_string(v), "7503a482-5517-4b5e-9057-4b0ec73b004b");
    T_CHECK(json_object_object_get_ex(s, "unknown_fields", &v));
    T_EQ_INT(json_object_get_int(v), 0);
  }
  json_object_put(j);
  /* every event line is JSON */
  int bad = 0;
  for (char *p = out, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
    *nl = 0;
    json_object *e = json_tokener_parse(p);
    if (!e) bad++;
    json_object_put(e);
  }
  T_EQ_INT(bad, 0);
  T_EQ_STR(err, "");
  free(out);
  free(err);

  /* from stdin, with --smd */
  const char *a2[] = {"--smd"};
  T_EQ_INT(run(fixture, a2, 1, &out, &err), 0);
  T_CHECK(strstr(out, "\"server_message_data\":{\"seconds\":1769263050,\"nanos\":253462275}"));
  free(out);
  free(err);
}

static void test_bad_input(void) {
  size_t n;
  char *cap = fx_slurp(fixture, &n);
  char path[4200], *out, *err;
  snprintf(path, sizeof path, "%s/bad.sse", dir);
  const char *args[] = {path};

  /* a bad base64 character in the third event's data (data line at 455) */
  cap[470] = '*';
  spit(path, cap, n);
  T_EQ_INT(run(NULL, args, 1, &out, &err), 1);
  T_CHECK(strstr(err, "byte offset 455") != NULL);
  T_CHECK(strstr(out, "\"init\"") != NULL); /* the events before it were printed */
  free(out);
  free(err);
  free(cap);

  /* base64 fine, payload not a ResponseEvent */
  static const char notpb[] = "event:data\ndata:CkwK\n\n";
  spit(path, notpb, sizeof notpb - 1);
  T_EQ_INT(run(NULL, args, 1, &out, &err), 1);
  T_CHECK(strstr(err, "byte offset 11 is not a ResponseEvent") != NULL);
  free(out);
  free(err);

  /* no finished event, cut after the last data line: warnings, exit 0 */
  static const char partial[] = "event:data\ndata:CgQKAmNj\n";
  spit(path, partial, sizeof partial - 1);
  T_EQ_INT(run(NULL, args, 1, &out, &err), 0);
  T_CHECK(strstr(err, "no finished event") != NULL);
  T_CHECK(strstr(out, "\"unterminated\":true") != NULL);
  T_CHECK(strstr(out, "\"finish_reason\":null") != NULL);
  T_CHECK(strstr(out, "\"conversation_id\":\"cc\"") != NULL);
  free(out);
  free(err);

  /* an event over the cap (1 MiB in this test) */
  size_t big = (1 << 20) + 100;
  char *b = malloc(big + 20);
  memcpy(b, "data:", 5);
  memset(b + 5, 'A', big);
  memcpy(b + 5 + big, "\n\n", 2);
  spit(path, b, big + 7);
  free(b);
  T_EQ_INT(run(NULL, args, 1, &out, &err), 1);
  T_CHECK(strstr(err, "byte offset 0") != NULL);
  free(out);
  free(err);

  /* missing file, usage */
  const char *nofile[] = {"/nonexistent/x.sse"};
  T_EQ_INT(run(NULL, nofile, 1, &out, &err), 1);
  free(out);
  free(err);
  const char *bad_opt[] = {"--bogus"};
  T_EQ_INT(run(NULL, bad_opt, 1, &out, &err), 2);
  free(out);
  free(err);
  unlink(path);
}

int main(void) {
  fx_path("turn1-response.sse", fixture, sizeof fixture);
  if (!mkdtemp(dir)) return 1;
  T_RUN(test_capture);
  T_RUN(test_bad_input);
  char p[4200];
  snprintf(p, sizeof p, "%s/out", dir);
  unlink(p);
  snprintf(p, sizeof p, "%s/err", dir);
  unlink(p);
  rmdir(dir);
  return t_done();
}
