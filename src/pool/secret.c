/* secret.c - AES-256-GCM sealing of refresh tokens; see secret.h.
 *
 * A fresh random 96-bit nonce per value (GCM's limit of 2^32 values per key under random
 * nonces is far beyond any pool). The tag covers a constant associated-data string that
 * names the format, so a value sealed for another purpose does not open here. */
#include "secret.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"

#define PREFIX "v1:"
#define NONCE 12
#define TAG 16
static const char aad[] = "warp2api refresh token v1";

int w2a_secret_derive(const char *passphrase, const unsigned char *salt, size_t salt_len,
                      unsigned char key[W2A_SECRET_KEY_LEN]) {
  if (!PKCS5_PBKDF2_HMAC(passphrase, (int)strlen(passphrase), salt, (int)salt_len,
                         W2A_SECRET_PBKDF2_ITER, EVP_sha256(), W2A_SECRET_KEY_LEN, key))
    return W2A_EIO;
  return 0;
}

int w2a_secret_is_sealed(const char *stored) {
  return stored && !strncmp(stored, PREFIX, sizeof PREFIX - 1);
}

void w2a_secret_free(char *s) {
  if (!s) return;
  size_t n = strlen(s);
  volatile char *v = s;
  for (size_t i = 0; i < n; i++)
    v[i] = 0;
  free(s);
}

int w2a_secret_seal(const unsigned char key[W2A_SECRET_KEY_LEN], const char *plain, char **out) {
  int rc = W2A_EIO, len = 0, fin = 0;
  size_t n = strlen(plain);
  unsigned char *raw = malloc(NONCE + n + TAG);
  char *txt = NULL;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  *out = NULL;
  if (!raw || !ctx) {
    rc = W2A_ENOMEM;
    goto out;
  }
  w2a_random(raw, NONCE);
  if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) != 1 ||
      EVP_EncryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
      EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, sizeof aad - 1) != 1 ||
      EVP_EncryptUpdate(ctx, raw + NONCE, &len, (const unsigned char *)plain, (int)n) != 1 ||
      EVP_EncryptFinal_ex(ctx, raw + NONCE + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, raw + NONCE + n) != 1)
    goto out;
  txt = malloc(sizeof PREFIX + w2a_b64_enc_len(NONCE + n + TAG) + 1);
  if (!txt) {
    rc = W2A_ENOMEM;
    goto out;
  }
  memcpy(txt, PREFIX, sizeof PREFIX - 1);
  w2a_b64_encode(raw, NONCE + n + TAG, txt + sizeof PREFIX - 1, 1, 0);
  *out = txt;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(ctx);
  if (raw) {
    memset(raw, 0, NONCE + n + TAG);
    free(raw);
  }
  return rc;
}

int w2a_secret_open(const unsigned char key[W2A_SECRET_KEY_LEN], const char *sealed, char **out) {
  int rc = W2A_EINVAL, len = 0, fin = 0;
  size_t n = 0;
  unsigned char *raw = NULL;
  char *plain = NULL;
  EVP_CIPHER_CTX *ctx = NULL;
  size_t bad;
  long m;
  *out = NULL;
  if (!w2a_secret_is_sealed(sealed)) return W2A_EINVAL;
  const char *b = sealed + sizeof PREFIX - 1;
  size_t bn = strlen(b);
  raw = malloc(w2a_b64_dec_max(bn) + 1);
  if (!raw) return W2A_ENOMEM;
  m = w2a_b64_decode(b, bn, raw, &bad);
  if (m < NONCE + TAG) goto out;
  n = (size_t)m - NONCE - TAG;
  plain = malloc(n + 1);
  ctx = EVP_CIPHER_CTX_new();
  if (!plain || !ctx) {
    rc = W2A_ENOMEM;
    goto out;
  }
  rc = W2A_EAUTH;
  if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) != 1 ||
      EVP_DecryptInit_ex(ctx, NULL, NULL, key, raw) != 1 ||
      EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, sizeof aad - 1) != 1 ||
      EVP_DecryptUpdate(ctx, (unsigned char *)plain, &len, raw + NONCE, (int)n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, raw + NONCE + n) != 1 ||
      EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + len, &fin) != 1)
    goto out;
  plain[n] = 0;
  if (strlen(plain) != n) goto out; /* an embedded NUL is not a token */
  *out = plain;
  plain = NULL;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(ctx);
  if (plain) {
    memset(plain, 0, n + 1);
    free(plain);
  }
  free(raw);
  return rc;
}
