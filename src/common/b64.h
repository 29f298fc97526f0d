/* b64.h - base64 (RFC 4648 §4) and base64url (§5).
 *
 * Written here rather than taken from OpenSSL because Warp's stream mixes padded and
 * unpadded base64url and OpenSSL's EVP decoder accepts neither '-'/'_' nor missing
 * padding; a table-driven decoder is ~40 lines and sits on the hottest path. */
#ifndef W2A_B64_H
#define W2A_B64_H

#include <stddef.h>

/* Bytes needed to encode n bytes (with padding), not counting a terminator. */
size_t w2a_b64_enc_len(size_t n);
/* Upper bound of decoded bytes for n input characters. */
size_t w2a_b64_dec_max(size_t n);

/* Encode; `url` selects the URL-safe alphabet, `pad` adds '='. out must hold
 * w2a_b64_enc_len(n)+1 bytes; it is NUL-terminated. Returns the length written. */
size_t w2a_b64_encode(const void *in, size_t n, char *out, int url, int pad);

/* Decode either alphabet (they may even mix), padded or not. Whitespace is not
 * accepted. Returns the decoded length, or -1 with *bad_at set to the offset of the
 * first bad character (or n for a bad length). out must hold w2a_b64_dec_max(n). */
long w2a_b64_decode(const char *in, size_t n, unsigned char *out, size_t *bad_at);

/* How many of the n characters at in, from the first, are base64 digits (either
 * alphabet; '=' is not a digit): where a line of base64 text ends, found as fast as the
 * decoder reads it. */
size_t w2a_b64_digits(const char *in, size_t n);

/* The decoder's vector code: 0 none, 1 AVX2 (32 characters a step), 2 AVX-512 VBMI (64),
 * chosen at first use from what the CPU has. For tests and benchmarks: level >= 0 caps
 * it (at most what the CPU has); returns the level in effect. */
int w2a_b64_use(int level);

#endif
