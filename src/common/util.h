/* util.h - small helpers shared by every module: clocks, random ids, constant-time
 * comparison, masking secrets for display. */
#ifndef W2A_UTIL_H
#define W2A_UTIL_H

#include <stddef.h>
#include <stdint.h>

uint64_t w2a_now_ms(void);  /* wall clock, ms since the epoch */
uint64_t w2a_mono_us(void); /* monotonic, µs */
uint64_t w2a_mono_ns(void);

/* Random bytes from the kernel (getrandom); never fails silently: aborts if the
 * kernel refuses, since every id and jitter would be predictable otherwise. */
void w2a_random(void *out, size_t n);
uint64_t w2a_random_u64(void);

/* RFC 4122 version-4 UUID, 36 chars + NUL. */
void w2a_uuid4(char out[37]);

/* Constant-time equality of two byte strings (time depends only on lengths). */
int w2a_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Mask a secret for display: keep at most 4 leading characters ("abcd…(40 chars)").
 * out must hold 48 bytes. */
void w2a_mask_secret(const char *s, char out[48]);

/* Duplicate n bytes into a NUL-terminated heap string (NULL on failure). */
char *w2a_strndup(const char *s, size_t n);

#endif
