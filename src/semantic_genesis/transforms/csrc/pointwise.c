/*
 * Two one-pass kernels of the intensity perturbations, each a few ATen passes over the cube
 * otherwise (native.py calls them; both have an AVX2 path and a one-value-at-a-time path that
 * gives the same numbers).
 *
 * sg_lut: the Bezier mapping (bezier.py) as a piecewise-linear look-up table. For each value v,
 *     p = clip(v, 0, 1) * (size - 1), k = floor(p), out = table[k] + slope[k] * (p - k),
 * with table and slope interleaved in `pairs` (size x 2), so that one 64-bit gather reads both.
 *
 * sg_uniform: the painting noise (painting.py): n floats k / 2^23, k uniform in [0, 2^23), from
 * 8 interleaved xoshiro128+ generators (value i from generator i % 8; Blackman and Vigna,
 * "Scrambled linear pseudorandom number generators", 2021) seeded by splitmix64 from `seed`;
 * the top 23 bits of each 32-bit output are the mantissa of a float in [1, 2), minus 1.
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

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* state[w][lane]: word w of generator `lane` */
static void seed_state(uint32_t state[4][8], uint64_t seed) {
    for (int lane = 0; lane < 8; lane++) {
        uint64_t a = splitmix64(&seed), b = splitmix64(&seed);
        state[0][lane] = (uint32_t)a;
        state[1][lane] = (uint32_t)(a >> 32);
        state[2][lane] = (uint32_t)b;
        state[3][lane] = (uint32_t)(b >> 32) | (a == 0 && b == 0); /* never all zero */
    }
}

static float to_unit(uint32_t r) {
    uint32_t bits = (r >> 9) | 0x3F800000u;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f - 1.f;
}

/* one step of every generator: out[lane] = its next value */
static void step8(uint32_t s[4][8], float out[8]) {
    for (int l = 0; l < 8; l++) {
        uint32_t r = s[0][l] + s[3][l], t = s[1][l] << 9;
        s[2][l] ^= s[0][l];
        s[3][l] ^= s[1][l];
        s[1][l] ^= s[2][l];
        s[0][l] ^= s[3][l];
        s[2][l] ^= t;
        s[3][l] = (s[3][l] << 11) | (s[3][l] >> 21);
        out[l] = to_unit(r);
    }
}

#ifdef SG_AVX2
SG_TARGET static int64_t uniform_avx2(float *out, int64_t n, uint32_t state[4][8]) {
    __m256i s0 = _mm256_loadu_si256((const __m256i *)state[0]);
    __m256i s1 = _mm256_loadu_si256((const __m256i *)state[1]);
    __m256i s2 = _mm256_loadu_si256((const __m256i *)state[2]);
    __m256i s3 = _mm256_loadu_si256((const __m256i *)state[3]);
    const __m256i exponent = _mm256_set1_epi32(0x3F800000);
    const __m256 one = _mm256_set1_ps(1.f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i r = _mm256_add_epi32(s0, s3), t = _mm256_slli_epi32(s1, 9);
        s2 = _mm256_xor_si256(s2, s0);
        s3 = _mm256_xor_si256(s3, s1);
        s1 = _mm256_xor_si256(s1, s2);
        s0 = _mm256_xor_si256(s0, s3);
        s2 = _mm256_xor_si256(s2, t);
        s3 = _mm256_or_si256(_mm256_slli_epi32(s3, 11), _mm256_srli_epi32(s3, 21));
        __m256 f = _mm256_castsi256_ps(_mm256_or_si256(_mm256_srli_epi32(r, 9), exponent));
        _mm256_storeu_ps(out + i, _mm256_sub_ps(f, one));
    }
    _mm256_storeu_si256((__m256i *)state[0], s0);
    _mm256_storeu_si256((__m256i *)state[1], s1);
    _mm256_storeu_si256((__m256i *)state[2], s2);
    _mm256_storeu_si256((__m256i *)state[3], s3);
    return i;
}
#endif

/* out[0 .. n) = uniform floats in [0, 1) from `seed` (see the top of this file) */
void sg_uniform(float *out, int64_t n, uint64_t seed, int simd) {
    uint32_t state[4][8];
    float last[8];
    int64_t i = 0;
    seed_state(state, seed);
#ifdef SG_AVX2
    if (simd && sg_simd()) i = uniform_avx2(out, n, state);
#endif
    for (; i + 8 <= n; i += 8) step8(state, out + i);
    if (i < n) {
        step8(state, last);
        memcpy(out + i, last, sizeof(float) * (size_t)(n - i));
    }
}
