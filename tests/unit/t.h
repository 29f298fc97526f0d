/* t.h - the unit-test harness: a handful of check macros and a summary line.
 *
 * A failed check prints file:line and what differed, and the test goes on, so one run
 * shows every failure. t_done() prints "N passed, N failed" and returns the exit code. */
#ifndef W2A_T_H
#define W2A_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define T_CHECK(c)                                                                                 \
  do {                                                                                             \
    if (c)                                                                                         \
      t_pass++;                                                                                    \
    else {                                                                                         \
      t_fail++;                                                                                    \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                        \
    }                                                                                              \
  } while (0)

#define T_EQ_INT(a, b)                                                                             \
  do {                                                                                             \
    long long t_a = (long long)(a), t_b = (long long)(b);                                          \
    if (t_a == t_b)                                                                                \
      t_pass++;                                                                                    \
    else {                                                                                         \
      t_fail++;                                                                                    \
      fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a, t_a, #b, \
              t_b);                                                                                \
    }                                                                                              \
  } while (0)

#define T_EQ_STR(a, b)                                                                             \
  do {                                                                                             \
    const char *t_a = (a), *t_b = (b);                                                             \
    if (t_a && t_b && !strcmp(t_a, t_b))                                                           \
      t_pass++;                                                                                    \
    else {                                                                                         \
      t_fail++;                                                                                    \
      fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,            \
              t_a ? t_a : "(null)", t_b ? t_b : "(null)");                                         \
    }                                                                                              \
  } while (0)

#define T_EQ_MEM(a, alen, b, blen)                                                                 \
  do {                                                                                             \
    size_t t_al = (alen), t_bl = (blen);                                                           \
    if (t_al == t_bl && !memcmp((a), (b), t_al))                                                   \
      t_pass++;                                                                                    \
    else {                                                                                         \
      t_fail++;                                                                                    \
      fprintf(stderr, "%s:%d: %s (%zu bytes) differs from %s (%zu bytes)\n", __FILE__, __LINE__,   \
              #a, t_al, #b, t_bl);                                                                 \
    }                                                                                              \
  } while (0)

/* T_ONLY=name runs only the tests whose name contains it (debugging one test). */
#define T_RUN(fn)                                                                                  \
  do {                                                                                             \
    const char *t_only = getenv("T_ONLY");                                                         \
    if (t_only && *t_only && !strstr(#fn, t_only)) break;                                          \
    int t_before = t_fail;                                                                         \
    fn();                                                                                          \
    fprintf(stderr, "%s %s\n", t_fail == t_before ? "ok  " : "FAIL", #fn);                         \
  } while (0)

static inline int t_done(void) {
  printf("%d passed, %d failed\n", t_pass, t_fail);
  return t_fail ? 1 : 0;
}

#endif
