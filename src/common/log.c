/* log.c - see log.h. The level is an atomic so the fast path (a debug line that is
 * filtered out) costs one load; the file descriptor is guarded by a mutex only while
 * it is opened or closed. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = W2A_LOG_INFO;
static int g_fd = -1;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_component[24] = "warp2api";

int w2a_log_level_parse(const char *s) {
  if (!s) return -1;
  if (!strcasecmp(s, "debug") || !strcasecmp(s, "trace")) return W2A_LOG_DEBUG;
  if (!strcasecmp(s, "info")) return W2A_LOG_INFO;
  if (!strcasecmp(s, "warning") || !strcasecmp(s, "warn")) return W2A_LOG_WARN;
  if (!strcasecmp(s, "error") || !strcasecmp(s, "critical")) return W2A_LOG_ERROR;
  if (!strcasecmp(s, "off") || !strcasecmp(s, "none")) return W2A_LOG_OFF;
  return -1;
}

void w2a_log_set_level(int level) { atomic_store(&g_level, level); }
int w2a_log_get_level(void) { return atomic_load_explicit(&g_level, memory_order_relaxed); }

void w2a_log_set_component(const char *name) {
  snprintf(g_component, sizeof g_component, "%s", name);
}

static int mkdir_parents(const char *path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0750) && errno != EEXIST) return -errno;
    *p = '/';
  }
  return 0;
}

int w2a_log_open_file(const char *path) {
  int fd = -1;
  if (path && *path) {
    int rc = mkdir_parents(path);
    if (rc) return rc;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
  }
  pthread_mutex_lock(&g_mu);
  if (g_fd >= 0) close(g_fd);
  g_fd = fd;
  pthread_mutex_unlock(&g_mu);
  return 0;
}

void w2a_log(int level, const char *fmt, ...) {
  static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  if (level < w2a_log_get_level() || level < 0 || level > W2A_LOG_ERROR) return;
  char line[4096];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, ts.tv_nsec / 1000000, names[level], g_component);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof line - 2) len = sizeof line - 2;
  line[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
  pthread_mutex_lock(&g_mu);
  if (g_fd >= 0) {
    w = write(g_fd, line, len);
    (void)w;
  }
  pthread_mutex_unlock(&g_mu);
}
