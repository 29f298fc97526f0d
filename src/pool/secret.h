/* secret.h - sealing refresh tokens at rest.
 *
 * Format: "v1:" + base64url(nonce[12] || AES-256-GCM ciphertext || tag[16]), no
 * padding. The version prefix lets a later format coexist with this one; a stored value
 * without a known prefix is a token kept in clear (no key was configured when it was
 * written). The 32-byte key is derived once per store from POOL_ENCRYPTION_KEY with
 * PBKDF2-HMAC-SHA256 (a passphrase is the common case, so a slow KDF) over a random
 * per-database salt kept in the store's meta table. */
#ifndef W2A_SECRET_H
#define W2A_SECRET_H

#include <stddef.h>

#include "common/err.h"

#define W2A_SECRET_KEY_LEN 32
#define W2A_SECRET_SALT_LEN 16
#define W2A_SECRET_PBKDF2_ITER 100000

/* Derive the key. 0 or W2A_EIO (OpenSSL failure). */
int w2a_secret_derive(const char *passphrase, const unsigned char *salt, size_t salt_len,
                      unsigned char key[W2A_SECRET_KEY_LEN]);
/* Seal plain text; *out is a heap string (free()). */
int w2a_secret_seal(const unsigned char key[W2A_SECRET_KEY_LEN], const char *plain, char **out);
/* Open a sealed value; W2A_EAUTH when the key is wrong or the value was tampered with,
 * W2A_EINVAL when it is not a sealed value. *out is a heap string (free() after wiping). */
int w2a_secret_open(const unsigned char key[W2A_SECRET_KEY_LEN], const char *sealed, char **out);
/* Is this stored value sealed (has a version prefix)? */
int w2a_secret_is_sealed(const char *stored);
/* Overwrite then free a heap string (NULL is fine). */
void w2a_secret_free(char *s);

#endif
