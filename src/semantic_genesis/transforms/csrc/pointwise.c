/*
 * Two one-pass kernels of the intensity perturbations, each a few ATen passes over the cube
 * otherwise (native.py calls them; both have an AVX2 path and a one-value-at-a-time path that
 * gives the same numbers).
 *
 * sg_lut: the Bezier mapping (bezier.py) as a piecewise-linear look-up table. For each value v,
 *     p = clip(v, 0, 1) * (size - 1), k = floor(p), out = table[k] + slope[k] * (p - k),
 * with table and slope interleaved in `pairs` (size x 2), so that one 64-bit gather reads both.
 *
 * sg_uniform: the painting noise (painting.py), a counter-based stream so that any stretch of it
 * can be computed on its own, here and in numpy (native.uniform_numpy gives the same bits):
 * 64-bit word w (w = 0, 1, ...) of the stream of `seed` is splitmix64's output function applied
 * to seed + (w + 1) * 0x9E3779B97F4A7C15, i.e. output w (counting from 0) of a splitmix64
 * generator started at `seed` (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", 2014). Its low 32 bits give value 2w, its high 32 bits value 2w + 1: the top 23 bits of each
 * half are the mantissa of a float in [1, 2), minus 1, so a value is k / 2^23, k uniform in
 * [0, 2^23).
 */
#include <string.h>
#include "simd.h"

static float lut1(float v, const float *pairs, int64_t size) {
    float p = v > 0.f ? v : 0.f; /* NaN -> 0 */
    p = (p < 1.f ? p : 1.f) * (float)(size - 1);
    int64_t k = (int64_t)p;
    return pairs[2 * k] + pairs[2 * k + 1] * (p - (float)k);
}

#ifdef SG_AVX2
SG_TARGET static int64_t lut_avx2(const float *src, float *dst, int64_t n, const float *pairs,
                                  int64_t size) {
    const __m256 top = _mm256_set1_ps((float)(size - 1)), one = _mm256_set1_ps(1.f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* max(v, 0) gives 0 for NaN, as lut1 does */
        __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(src + i), _mm256_setzero_ps()), one);
        __m256 p = _mm256_mul_ps(v, top);
        __m256i k = _mm256_cvttps_epi32(p);
        __m256 frac = _mm256_sub_ps(p, _mm256_cvtepi32_ps(k));
        __m256 t, s;
        sg_gather_pairs(pairs, _mm256_slli_epi32(k, 1), &t, &s);
        _mm256_storeu_ps(dst + i, _mm256_fmadd_ps(s, frac, t));
    }
    return i;
}
#endif

/* dst[i] = the mapping of src[i], 0 <= i < n (see the top of this file); size >= 1 */
void sg_lut(const float *src, float *dst, int64_t n, const float *pairs, int64_t size, int simd) {
    int64_t i = 0;
#ifdef SG_AVX2
    if (simd && size < ((int64_t)1 << 30) && sg_simd()) i = lut_avx2(src, dst, n, pairs, size);
#endif
    for (; i < n; i++) dst[i] = lut1(src[i], pairs, size);
}

#define SG_GAMMA 0x9E3779B97F4A7C15ull
#define SG_MIX1 0xBF58476D1CE4E5B9ull
#define SG_MIX2 0x94D049BB133111EBull

/* splitmix64's output function: word w of the stream is mix64(seed + (w + 1) * SG_GAMMA) */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * SG_MIX1;
    z = (z ^ (z >> 27)) * SG_MIX2;
    return z ^ (z >> 31);
}

static float to_unit(uint32_t r) {
    uint32_t bits = (r >> 9) | 0x3F800000u;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f - 1.f;
}

#ifdef SG_AVX2
/* the low 64 bits of a * c in each 64-bit lane (AVX2 has no 64-bit multiply): c_hi = c >> 32 */
SG_TARGET static inline __m256i mul64(__m256i a, __m256i c, __m256i c_hi) {
    __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), c),
                                     _mm256_mul_epu32(a, c_hi));
    return _mm256_add_epi64(_mm256_mul_epu32(a, c), _mm256_slli_epi64(cross, 32));
}

SG_TARGET static inline __m256i xorshift64(__m256i z, int k) {
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, k));
}

/* out[0 .. 8m) from the 4m words of the stream from word w, m = n / 8; returns 8m. A 64-bit word
 * stored little-endian is (low half, high half): values 2w and 2w + 1, as in sg_uniform. */
SG_TARGET static int64_t uniform_avx2(float *out, int64_t n, uint64_t seed, uint64_t w) {
    const __m256i m1 = _mm256_set1_epi64x((long long)SG_MIX1);
    const __m256i m1_hi = _mm256_set1_epi64x((long long)(SG_MIX1 >> 32));
    const __m256i m2 = _mm256_set1_epi64x((long long)SG_MIX2);
    const __m256i m2_hi = _mm256_set1_epi64x((long long)(SG_MIX2 >> 32));
    const __m256i step = _mm256_set1_epi64x((long long)(4 * SG_GAMMA));
    const __m256i exponent = _mm256_set1_epi32(0x3F800000);
    const __m256 one = _mm256_set1_ps(1.f);
    uint64_t z0 = seed + (w + 1) * SG_GAMMA; /* mix64 of z0, z0 + SG_GAMMA, ... : words w, ... */
    __m256i z = _mm256_set_epi64x((long long)(z0 + 3 * SG_GAMMA), (long long)(z0 + 2 * SG_GAMMA),
                                  (long long)(z0 + SG_GAMMA), (long long)z0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i r = mul64(xorshift64(z, 30), m1, m1_hi);
        r = xorshift64(mul64(xorshift64(r, 27), m2, m2_hi), 31);
        __m256 f = _mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(r, 9), exponent));
        _mm256_storeu_ps(out + i, _mm256_sub_ps(f, one));
        z = _mm256_add_epi64(z, step);
    }
    return i;
}
#endif

/* word w of the stream of `seed` (see the top of this file) */
static uint64_t word(uint64_t seed, uint64_t w) { return mix64(seed + (w + 1) * SG_GAMMA); }

/* out[j] = value offset + j of the stream of `seed`, 0 <= j < n (see the top of this file) */
void sg_uniform(float *out, int64_t n, uint64_t seed, int64_t offset, int simd) {
    uint64_t w = (uint64_t)offset / 2; /* the word holding value offset */
    int64_t i = 0;
    if (n > 0 && offset % 2) out[i++] = to_unit((uint32_t)(word(seed, w++) >> 32));
#ifdef SG_AVX2
    if (simd && sg_simd()) {
        int64_t done = uniform_avx2(out + i, n - i, seed, w);
        i += done;
        w += (uint64_t)done / 2;
    }
#endif
    for (; i + 2 <= n; i += 2) {
        uint64_t r = word(seed, w++);
        out[i] = to_unit((uint32_t)r);
        out[i + 1] = to_unit((uint32_t)(r >> 32));
    }
    if (i < n) out[i] = to_unit((uint32_t)word(seed, w));
}
