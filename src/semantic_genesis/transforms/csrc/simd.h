/* What the kernels of semantic_genesis.transforms._native share: the AVX2 switch. */
#ifndef SG_SIMD_H
#define SG_SIMD_H
#include <stdint.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define SG_AVX2 1
#include <immintrin.h>
/* functions built for AVX2 + FMA, called only when sg_simd() says the CPU has them */
#define SG_TARGET __attribute__((target("avx2,fma")))
#endif

#ifdef SG_AVX2
/* The 8 pairs (p[o], p[o + 1]) at the float offsets o, by two 64-bit gathers: the firsts in
 * *first, the seconds in *second. */
SG_TARGET static inline void sg_gather_pairs(const float *p, __m256i o, __m256 *first,
                                             __m256 *second) {
    const double *d = (const double *)p;
    __m256 g0 = _mm256_castpd_ps(_mm256_i32gather_pd(d, _mm256_castsi256_si128(o), 4));
    __m256 g1 = _mm256_castpd_ps(_mm256_i32gather_pd(d, _mm256_extracti128_si256(o, 1), 4));
    /* (a0 b0 a1 b1 | a2 b2 a3 b3), (a4 b4 a5 b5 | a6 b6 a7 b7) -> (a0 .. a7), (b0 .. b7) */
    __m256d a = _mm256_castps_pd(_mm256_shuffle_ps(g0, g1, 0x88));
    __m256d b = _mm256_castps_pd(_mm256_shuffle_ps(g0, g1, 0xDD));
    *first = _mm256_castpd_ps(_mm256_permute4x64_pd(a, 0xD8));
    *second = _mm256_castpd_ps(_mm256_permute4x64_pd(b, 0xD8));
}
#endif

/* 1 if this build and this CPU run the AVX2 paths (defined in module.c) */
int sg_simd(void);

#endif
