/* log.h - leveled logging to stderr and, when configured, a file under logs/.
 *
 * Thread-safe: one line is written with one write(2) per sink, so lines from several
 * threads never interleave. Secrets must never be passed in: mask them first
 * (w2a_mask_secret). */
#ifndef W2A_LOG_H
#define W2A_LOG_H

enum { W2A_LOG_DEBUG = 0, W2A_LOG_INFO, W2A_LOG_WARN, W2A_LOG_ERROR, W2A_LOG_OFF };

/* Parse "debug|info|warning|warn|error|off" (any case); -1 when unknown. */
int w2a_log_level_parse(const char *s);
void w2a_log_set_level(int level);
int w2a_log_get_level(void);
/* Also append to this file (created with its directory); NULL closes it. 0 or -errno. */
int w2a_log_open_file(const char *path);
void w2a_log_set_component(const char *name); /* e.g. "gateway", shown on each line */

void w2a_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define W2A_DEBUG(...) \
  do { if (w2a_log_get_level() <= W2A_LOG_DEBUG) w2a_log(W2A_LOG_DEBUG, __VA_ARGS__); } while (0)
#define W2A_INFO(...) w2a_log(W2A_LOG_INFO, __VA_ARGS__)
#define W2A_WARN(...) w2a_log(W2A_LOG_WARN, __VA_ARGS__)
#define W2A_ERROR(...) w2a_log(W2A_LOG_ERROR, __VA_ARGS__)

#endif
