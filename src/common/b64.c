/* b64.c - see b64.h. */
#include "b64.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static const char enc_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char enc_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for a digit of either alphabet, 64 for '=', 255 for anything else. */
static const unsigned char dec_tab[256] = {
#define X 255
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  62, X,  63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  64, X,  X,  X,  0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63,
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
#undef X
};

size_t w2a_b64_enc_len(size_t n) { return (n + 2) / 3 * 4; }

size_t w2a_b64_dec_max(size_t n) { return n / 4 * 3 + 3; }

size_t w2a_b64_encode(const void *in, size_t n, char *out, int url, int pad) {
  const unsigned char *p = in;
  const char *t = url ? enc_url : enc_std;
  size_t o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = t[v >> 18];
    out[o++] = t[(v >> 12) & 63];
    out[o++] = t[(v >> 6) & 63];
    out[o++] = t[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out[o++] = t[v >> 18];
    out[o++] = t[(v >> 12) & 63];
    if (pad) {
      out[o++] = '=';
      out[o++] = '=';
    }
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    out[o++] = t[v >> 18];
    out[o++] = t[(v >> 12) & 63];
    out[o++] = t[(v >> 6) & 63];
    if (pad) out[o++] = '=';
  }
  out[o] = 0;
  return o;
}

/* Four characters -> three bytes per step: one table per position holds the digit
 * already shifted into place, so a group is four loads, three ORs and three stores.
 * Anything that is not a digit (padding included) sets bit 31 in its table, which
 * survives the ORs; the group is then left to the bit loop below, which finds the exact
 * offset. That loop also takes the last 1-3 digits. */
static uint32_t dec4[4][256];

static void dec4_build(void) {
  for (int c = 0; c < 256; c++) {
    unsigned d = dec_tab[c];
    for (int k = 0; k < 4; k++)
      dec4[k][c] = d >= 64 ? 0x80000000u : (uint32_t)d << (18 - 6 * k);
  }
}

static pthread_once_t dec4_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1

/* 32 characters -> 24 bytes per step with AVX2, after Muła and Lemire ("Faster Base64
 * Encoding and Decoding using AVX2 Instructions", 2018): written here because the gateway
 * decodes every upstream event and no library at hand decodes both alphabets mixed.
 * A byte is a digit when the bit of its high nibble (hi_bit) is in the set of high
 * nibbles that are digits with its low nibble (lo_ok); that covers A-Z a-z 0-9 + - / _
 * and nothing else (bytes >= 0x80 have no bit). Its value is the byte plus an offset
 * chosen by the high nibble, by the low nibble for the punctuation in 0x2_, and -32 for
 * '_'. A block holding anything else (padding included) is left to the scalar loops,
 * which find the exact offset. One block of 32 characters at in: 24 bytes at out and 1,
 * or 0 (nothing written) when the block holds anything but digits. */
__attribute__((target("avx2"), always_inline)) static inline int dec_blk(const unsigned char *in,
                                                                         unsigned char *out) {
#define LANES(...) _mm256_setr_epi8(__VA_ARGS__, __VA_ARGS__)
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i lo_ok = LANES(0x2a, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3c,
                              0x15, 0x14, 0x15, 0x14, 0x1d);
  const __m256i hi_bit = LANES(0, 0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i hi_off = LANES(0, 0, 0, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i p_off = LANES(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 19, 0, 17, 0, 16); /* + - / */
  const __m256i pack = LANES(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
#undef LANES
  __m256i c = _mm256_loadu_si256((const __m256i *)in);
  __m256i hi = _mm256_and_si256(_mm256_srli_epi32(c, 4), nib);
  __m256i lo = _mm256_and_si256(c, nib);
  __m256i ok = _mm256_and_si256(_mm256_shuffle_epi8(lo_ok, lo), _mm256_shuffle_epi8(hi_bit, hi));
  if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(ok, _mm256_setzero_si256()))) return 0;
  __m256i off =
      _mm256_blendv_epi8(_mm256_shuffle_epi8(hi_off, hi), _mm256_shuffle_epi8(p_off, lo),
                         _mm256_cmpeq_epi8(hi, _mm256_set1_epi8(2)));
  /* '_' (high nibble 5, offset -65) needs -32: add 33 where the byte is '_'. */
  off = _mm256_add_epi8(
      off, _mm256_and_si256(_mm256_cmpeq_epi8(c, _mm256_set1_epi8('_')), _mm256_set1_epi8(33)));
  __m256i v = _mm256_add_epi8(c, off);
  /* 6-bit digits a b c d -> a<<18|b<<12|c<<6|d per 32-bit lane, then 3 bytes each. */
  v = _mm256_maddubs_epi16(v, _mm256_set1_epi32(0x01400140));
  v = _mm256_madd_epi16(v, _mm256_set1_epi32(0x00011000));
  v = _mm256_shuffle_epi8(v, pack);
  v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
  _mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(v));
  _mm_storel_epi64((__m128i *)(out + 16), _mm256_extracti128_si256(v, 1));
  return 1;
}

/* The blocks of 32 digits from the start, then one more block ending with the last whole
 * group, overlapping what is done (those bytes are written again, unchanged), so that
 * only the last 1-3 digits are left to the scalar code. Returns the characters taken (0
 * up to the first block holding anything but digits); *o advances by 3/4 of that. */
__attribute__((target("avx2"))) static size_t dec_avx2(const unsigned char *in, size_t end,
                                                       unsigned char *out, size_t *o) {
  size_t i = 0, oo = 0, e4 = end & ~(size_t)3;
  for (; i + 32 <= end; i += 32, oo += 24)
    if (!dec_blk(in + i, out + oo)) break;
  /* After a block that is not all digits, e4 - i >= 32 and this does not run. */
  if (i < e4 && e4 - i < 32 && dec_blk(in + e4 - 32, out + (e4 - 32) / 4 * 3))
    i = e4, oo = e4 / 4 * 3;
  *o = oo;
  return i;
}

/* dec_vbmi's tables, made with dec4 (dec4_build_all): digit values of the 128 ASCII
 * bytes (0x80: not a digit), and where each of the 48 output bytes is in the 16 lanes of
 * a<<18|b<<12|c<<6|d (little-endian, so bytes 2, 1, 0 of each). */
static unsigned char vbmi_val[128] __attribute__((aligned(64)));
static unsigned char vbmi_pack[64] __attribute__((aligned(64)));

static void vbmi_build(void) {
  for (int c = 0; c < 128; c++)
    vbmi_val[c] = dec_tab[c] < 64 ? dec_tab[c] : 0x80;
  for (int j = 0; j < 48; j++)
    vbmi_pack[j] = (unsigned char)(j / 3 * 4 + 2 - j % 3);
}

/* 64 characters -> 48 bytes per step with AVX-512 VBMI, also after Muła and Lemire
 * ("Base64 encoding and decoding at almost the speed of a memory copy", 2019): one
 * two-register byte permutation (vpermi2b) looks every character up in a 128-entry
 * table of digit values (both alphabets; 0x80 for anything else), a character is bad
 * when its value or itself has bit 7 set, and the same multiply-adds as above pack the
 * digits; one byte permutation gathers the 48 bytes, stored under a mask (the caller's
 * buffer holds only w2a_b64_dec_max(n)). About a fifth of the AVX2 loop's instructions
 * per character on the CPUs that have it. Same contract as dec_avx2. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static size_t dec_vbmi(
    const unsigned char *in, size_t end, unsigned char *out, size_t *o) {
  const __m512i lo = _mm512_load_si512((const void *)vbmi_val);
  const __m512i hi = _mm512_load_si512((const void *)(vbmi_val + 64));
  const __m512i pack = _mm512_load_si512((const void *)vbmi_pack);
  const __m512i m1 = _mm512_set1_epi32(0x01400140), m2 = _mm512_set1_epi32(0x00011000);
  const __mmask64 keep = 0xffffffffffffull; /* 48 bytes */
  size_t i = 0, oo = 0, e4 = end & ~(size_t)3;
  for (;;) {
    size_t at;
    if (i + 64 <= end)
      at = i;
    else if (i < e4 && e4 - i < 64 && e4 >= 64)
      at = e4 - 64; /* the last whole groups, overlapping what is done (rewritten, unchanged) */
    else
      break;
    __m512i c = _mm512_loadu_si512((const void *)(in + at));
    __m512i v = _mm512_permutex2var_epi8(lo, c, hi);
    if (_mm512_movepi8_mask(_mm512_or_si512(v, c))) break;
    v = _mm512_madd_epi16(_mm512_maddubs_epi16(v, m1), m2);
    _mm512_mask_storeu_epi8(out + at / 4 * 3, keep, _mm512_permutexvar_epi8(pack, v));
    if (at != i) {
      i = e4, oo = e4 / 4 * 3;
      break;
    }
    i += 64, oo += 48;
  }
  *o = oo;
  return i;
}

/* w2a_b64_digits with dec_blk's digit test, 32 characters a step; the tail is scalar. */
__attribute__((target("avx2,bmi"))) static size_t digits_avx2(const unsigned char *in, size_t n) {
#define LANES(...) _mm256_setr_epi8(__VA_ARGS__, __VA_ARGS__)
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i lo_ok = LANES(0x2a, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3c,
                              0x15, 0x14, 0x15, 0x14, 0x1d);
  const __m256i hi_bit = LANES(0, 0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0, 0, 0, 0, 0, 0, 0, 0);
#undef LANES
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i c = _mm256_loadu_si256((const __m256i *)(in + i));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi32(c, 4), nib);
    __m256i ok = _mm256_and_si256(_mm256_shuffle_epi8(lo_ok, _mm256_and_si256(c, nib)),
                                  _mm256_shuffle_epi8(hi_bit, hi));
    unsigned bad = (unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(ok, _mm256_setzero_si256()));
    if (bad) return i + _tzcnt_u32(bad);
  }
  while (i < n && dec_tab[in[i]] < 64)
    i++;
  return i;
}

/* w2a_b64_digits with dec_vbmi's lookup: 64 characters a step, the tail by a masked
 * load (its missing bytes read as 0, not a digit). */
__attribute__((target("avx512f,avx512bw,avx512vbmi,bmi"))) static size_t digits_vbmi(
    const unsigned char *in, size_t n) {
  const __m512i lo = _mm512_load_si512((const void *)vbmi_val);
  const __m512i hi = _mm512_load_si512((const void *)(vbmi_val + 64));
  for (size_t i = 0; i < n; i += 64) {
    __mmask64 live = n - i >= 64 ? ~0ull : (1ull << (n - i)) - 1;
    __m512i c = _mm512_maskz_loadu_epi8(live, (const void *)(in + i));
    __mmask64 bad = _mm512_movepi8_mask(_mm512_or_si512(_mm512_permutex2var_epi8(lo, c, hi), c));
    if (bad) {
      size_t k = i + (size_t)_tzcnt_u64(bad);
      return k < n ? k : n;
    }
  }
  return n;
}

/* 0 scalar, 1 AVX2, 2 AVX-512 VBMI: what the CPU has, capped by w2a_b64_use. */
static int vec_have, vec_use;

static void dec4_build_all(void) {
  dec4_build();
  vbmi_build();
  __builtin_cpu_init();
  vec_have = __builtin_cpu_supports("avx2") ? 1 : 0;
  if (vec_have && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vbmi"))
    vec_have = 2;
  vec_use = vec_have;
}
#else
#define HAVE_AVX2_PATH 0
static int vec_have, vec_use;
static void dec4_build_all(void) { dec4_build(); }
#endif

size_t w2a_b64_digits(const char *in, size_t n) {
  pthread_once(&dec4_once, dec4_build_all);
  const unsigned char *u = (const unsigned char *)in;
#if HAVE_AVX2_PATH
  if (vec_use == 2) return digits_vbmi(u, n);
  if (vec_use == 1) return digits_avx2(u, n);
#endif
  size_t i = 0;
  while (i < n && dec_tab[u[i]] < 64)
    i++;
  return i;
}

int w2a_b64_use(int level) {
  pthread_once(&dec4_once, dec4_build_all);
  if (level >= 0) vec_use = level < vec_have ? level : vec_have;
  return vec_use;
}

long w2a_b64_decode(const char *in, size_t n, unsigned char *out, size_t *bad_at) {
  size_t end = n;
  /* Up to two '=' may close the input; nothing may follow them. */
  while (end > 0 && in[end - 1] == '=' && n - end < 2)
    end--;
  if (n != end && n % 4 != 0) {
    if (bad_at) *bad_at = n;
    return -1;
  }
  pthread_once(&dec4_once, dec4_build_all);
  const unsigned char *u = (const unsigned char *)in;
  size_t o = 0, i = 0;
#if HAVE_AVX2_PATH
  if (vec_use == 2 && end >= 64)
    i = dec_vbmi(u, end, out, &o);
  else if (vec_use && end >= 32)
    i = dec_avx2(u, end, out, &o);
#endif
  /* Eight characters a step while at least four more follow them: their six bytes go out
   * as one 8-byte store whose last two bytes the next step overwrites, and which stays
   * inside the w2a_b64_dec_max(n) bytes the caller provides. */
  for (; i + 12 <= end; i += 8, o += 6) {
    uint32_t a = dec4[0][u[i]] | dec4[1][u[i + 1]] | dec4[2][u[i + 2]] | dec4[3][u[i + 3]];
    uint32_t b = dec4[0][u[i + 4]] | dec4[1][u[i + 5]] | dec4[2][u[i + 6]] | dec4[3][u[i + 7]];
    if ((a | b) & 0x80000000u) break;
    uint64_t w = __builtin_bswap64(((uint64_t)a << 24 | b) << 16);
    memcpy(out + o, &w, 8);
  }
  for (; i + 4 <= end; i += 4, o += 3) {
    uint32_t v = dec4[0][u[i]] | dec4[1][u[i + 1]] | dec4[2][u[i + 2]] | dec4[3][u[i + 3]];
    if (v & 0x80000000u) break;
    out[o] = (unsigned char)(v >> 16);
    out[o + 1] = (unsigned char)(v >> 8);
    out[o + 2] = (unsigned char)v;
  }
  /* The last two or three digits: one or two bytes (the bits left over are ignored, as
   * in the loop below, which also finds the offset of anything that is not a digit). */
  if (end - i == 2 || end - i == 3) {
    uint32_t v = dec4[0][u[i]] | dec4[1][u[i + 1]] | (end - i == 3 ? dec4[2][u[i + 2]] : 0);
    if (!(v & 0x80000000u)) {
      out[o++] = (unsigned char)(v >> 16);
      if (end - i == 3) out[o++] = (unsigned char)(v >> 8);
      return (long)o;
    }
  }
  uint32_t acc = 0;
  int bits = 0;
  for (; i < end; i++) {
    unsigned char d = dec_tab[u[i]];
    if (d >= 64) {
      if (bad_at) *bad_at = i;
      return -1;
    }
    acc = acc << 6 | d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* A lone trailing digit (length 1 mod 4) cannot encode a byte. */
  if (end % 4 == 1) {
    if (bad_at) *bad_at = end - 1;
    return -1;
  }
  return (long)o;
}
