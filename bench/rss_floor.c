/* rss_floor.c - the resident memory of warp2api's libraries alone, to set the gateway's
 * idle RSS against (BENCHMARKS.md "## gateway"). A process linked with the same libraries
 * does the first things `warp2api serve` does with them, and nothing else: libcurl's
 * global set-up as w2a_http_global_init does it (libssh2 without its crypto set-up) and a
 * multi and an easy handle; SQLite opening a WAL database and writing a row; a libuv
 * loop; one json-c parse. It prints VmRSS after each step (kB).
 *
 *   bash bench/rss_floor.sh   (builds it with cc and pkg-config, runs it three times) */
#include <curl/curl.h>
#include <dlfcn.h>
#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static long vm_rss(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

int main(int argc, char **argv) {
  const char *db_path = argc > 1 ? argv[1] : "/tmp/w2a-rss-floor.db";
  long at_start = vm_rss();

  int (*ssh2_init)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "libssh2_init");
  if (ssh2_init) ssh2_init(1); /* LIBSSH2_INIT_NO_CRYPTO */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *multi = curl_multi_init();
  CURL *easy = curl_easy_init();
  long after_curl = vm_rss();

  sqlite3 *db = NULL;
  if (sqlite3_open(db_path, &db) != SQLITE_OK ||
      sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(a, b, c);"
                   "INSERT INTO t VALUES (1, 'two', 3.0); SELECT * FROM t",
                   NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "rss_floor: sqlite: %s\n", db ? sqlite3_errmsg(db) : "cannot open");
    return 1;
  }
  long after_sqlite = vm_rss();

  uv_loop_t loop;
  uv_loop_init(&loop);
  json_object *o = json_tokener_parse("{\"idToken\":\"x\",\"expiresIn\":\"3600\",\"list\":[1,2]}");
  long after_rest = vm_rss();

  printf("start %ld kB, +curl %ld kB, +sqlite %ld kB, +libuv/json-c %ld kB (protobuf-c %s linked)\n",
         at_start, after_curl, after_sqlite, after_rest, protobuf_c_version());
  json_object_put(o);
  uv_loop_close(&loop);
  sqlite3_close(db);
  curl_easy_cleanup(easy);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  return 0;
}
