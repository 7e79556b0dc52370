/*
 * The in-plane elastic warp of Semantic Genesis (method.md §3.2) as one fused CPU kernel.
 *
 * For every output voxel (x, y, z) of a (C, X, Y, Z) float32 cube, the displacement is
 *     d_c(x, y, z) = sum_j field[c, j, x, y] * azt[j, z]          (c = 0: along Y, 1: along X)
 * (the low-rank field of elastic.py, contracted over z here), the source point
 *     (x + d_1, y + d_0) is reflected into the cube the way scipy's "reflect" mode and
 * grid_sample's "reflection" padding with align_corners=False do (half-sample symmetric), and
 * the cube is read there with bilinear interpolation; z stays on the grid.
 *
 * Why a kernel: ATen's grid_sample needs the sampling grid written out (8 bytes per voxel), z
 * slices in (Z, X, Y) order and the result transposed back; on one core that is about 1 ms per
 * 64 x 64 x 32 cube. Here nothing but the output is written: the field is expanded in registers,
 * 8 z-steps at a time (AVX2), and the source is read from a scratch copy laid out as
 * (C, X, Z, Y + 1), where the two y-neighbours of a point are adjacent, so one 64-bit gather
 * fetches both (half the gathers of a plain layout); the extra column repeats the last one, so
 * the right neighbour of y = Y - 1 is itself, as the clamp of grid_sample gives.
 *
 * Without AVX2 (other CPUs, other compilers) the same arithmetic runs one voxel at a time.
 * Called through ctypes (native.py), which releases the GIL. Nothing here allocates memory.
 */
#include <math.h>
#include "simd.h"

/* reflect p into [-0.5, s - 0.5] (period 2s), then clip to [0, s - 1]; NaN and infinities
 * give 0, so that a bad field never reads outside the cube */
static float reflect_clip(float p, float s) {
    if (!(p >= -0.5f && p <= s - 0.5f)) {
        if (!isfinite(p)) return 0.f;
        float a = fabsf(p + 0.5f);
        float flips = floorf(a / s);
        float extra = a - flips * s;
        p = (((int64_t)flips) & 1 ? s - extra : extra) - 0.5f;
    }
    return p > 0.f ? (p < s - 1.f ? p : s - 1.f) : 0.f;
}

/* voxels z0 <= z < z1 of the output line (x, y), one at a time, from the (C, X, Y, Z) source */
static void line_scalar(const float *src, float *dst, const float *field, const float *azt,
                        int64_t n_ch, int64_t sx, int64_t sy, int64_t sz, int64_t nc,
                        int64_t x, int64_t y, int64_t z0, int64_t z1) {
    const int64_t vol = sx * sy * sz, plane = sx * sy;
    const float *f0 = field + x * sy + y, *f1 = f0 + nc * plane;
    for (int64_t z = z0; z < z1; z++) {
        float dy = 0.f, dx = 0.f;
        for (int64_t j = 0; j < nc; j++) {
            dy += f0[j * plane] * azt[j * sz + z];
            dx += f1[j * plane] * azt[j * sz + z];
        }
        float px = reflect_clip((float)x + dx, (float)sx);
        float py = reflect_clip((float)y + dy, (float)sy);
        float fx = floorf(px), fy = floorf(py), wx = px - fx, wy = py - fy;
        int64_t ix = (int64_t)fx, iy = (int64_t)fy;
        int64_t ix1 = ix + 1 < sx ? ix + 1 : sx - 1, iy1 = iy + 1 < sy ? iy + 1 : sy - 1;
        for (int64_t ch = 0; ch < n_ch; ch++) {
            const float *s = src + ch * vol;
            float v00 = s[(ix * sy + iy) * sz + z], v01 = s[(ix * sy + iy1) * sz + z];
            float v10 = s[(ix1 * sy + iy) * sz + z], v11 = s[(ix1 * sy + iy1) * sz + z];
            float top = v00 + wy * (v01 - v00), bot = v10 + wy * (v11 - v10);
            dst[ch * vol + (x * sy + y) * sz + z] = top + wx * (bot - top);
        }
    }
}

#ifdef SG_AVX2
/* (Y, Z) -> (Z, Y + 1) for every (channel, x), in 8 x 8 blocks; the last column repeated */
SG_TARGET static void to_xzy(const float *s, float *t, int64_t planes, int64_t sy, int64_t sz) {
    const int64_t w = sy + 1;
    for (int64_t p = 0; p < planes; p++) {
        const float *a = s + p * sy * sz;
        float *b = t + p * sz * w;
        int64_t y = 0;
        for (; y + 8 <= sy; y += 8) {
            int64_t z = 0;
            for (; z + 8 <= sz; z += 8) {
                __m256 r[8], u[8], v[8];
                for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(a + (y + k) * sz + z);
                for (int k = 0; k < 8; k += 2) {
                    u[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
                    u[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
                }
                for (int k = 0; k < 8; k += 4) {
                    v[k] = _mm256_shuffle_ps(u[k], u[k + 2], 0x44);
                    v[k + 1] = _mm256_shuffle_ps(u[k], u[k + 2], 0xEE);
                    v[k + 2] = _mm256_shuffle_ps(u[k + 1], u[k + 3], 0x44);
                    v[k + 3] = _mm256_shuffle_ps(u[k + 1], u[k + 3], 0xEE);
                }
                for (int k = 0; k < 4; k++) {
                    __m256 lo = _mm256_permute2f128_ps(v[k], v[k + 4], 0x20);
                    __m256 hi = _mm256_permute2f128_ps(v[k], v[k + 4], 0x31);
                    _mm256_storeu_ps(b + (z + k) * w + y, lo);
                    _mm256_storeu_ps(b + (z + k + 4) * w + y, hi);
                }
            }
            for (; z < sz; z++)
                for (int64_t k = y; k < y + 8; k++) b[z * w + k] = a[k * sz + z];
        }
        for (; y < sy; y++)
            for (int64_t z = 0; z < sz; z++) b[z * w + y] = a[y * sz + z];
        for (int64_t z = 0; z < sz; z++) b[z * w + sy] = b[z * w + sy - 1];
    }
}

/* lanes of p outside [-0.5, s - 0.5]: only near the faces */
SG_TARGET static inline __m256 outside8(__m256 p, float s) {
    return _mm256_or_ps(_mm256_cmp_ps(p, _mm256_set1_ps(-0.5f), _CMP_LT_OQ),
                        _mm256_cmp_ps(p, _mm256_set1_ps(s - 0.5f), _CMP_GT_OQ));
}

/* reflect_clip, 8 lanes (NaN and infinities end as 0 in max_ps, which returns its second
 * operand when the first is NaN) */
SG_TARGET static inline __m256 reflect_clip8(__m256 p, float s) {
    const __m256 half = _mm256_set1_ps(0.5f), vs = _mm256_set1_ps(s);
    __m256 out = outside8(p, s);
    if (_mm256_movemask_ps(out)) {
        __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.f), _mm256_add_ps(p, half));
        __m256 flips = _mm256_floor_ps(_mm256_div_ps(a, vs));
        __m256 extra = _mm256_fnmadd_ps(flips, vs, a);
        __m256 odd = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvttps_epi32(flips), 31));
        __m256 r = _mm256_sub_ps(_mm256_blendv_ps(extra, _mm256_sub_ps(vs, extra), odd), half);
        p = _mm256_blendv_ps(p, r, out);
    }
    return _mm256_min_ps(_mm256_max_ps(p, _mm256_setzero_ps()), _mm256_set1_ps(s - 1.f));
}

/* The output line (x, y) at z .. z + 7, from the source point (px, py) of each voxel, read in
 * the (C, X, Z, Y + 1) scratch t. */
SG_TARGET static inline void sample8(const float *t, float *dst, __m256 px, __m256 py, int64_t n_ch,
                                     int64_t sx, int64_t sy, int64_t sz, int64_t x, int64_t y,
                                     int64_t z) {
    const int64_t vol = sx * sy * sz, w = sy + 1, tvol = sx * sz * w;
    px = reflect_clip8(px, (float)sx);
    py = reflect_clip8(py, (float)sy);
    __m256i ix = _mm256_cvttps_epi32(px), iy = _mm256_cvttps_epi32(py); /* >= 0: floor */
    __m256 wx = _mm256_sub_ps(px, _mm256_cvtepi32_ps(ix));
    __m256 wy = _mm256_sub_ps(py, _mm256_cvtepi32_ps(iy));
    __m256i next = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(sx - 1)), ix),
                                    _mm256_set1_epi32((int)(sz * w))); /* to row ix + 1, if any */
    __m256i vz = _mm256_add_epi32(_mm256_set1_epi32((int)z),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i o0 = _mm256_add_epi32(
        _mm256_mullo_epi32(_mm256_add_epi32(_mm256_mullo_epi32(ix, _mm256_set1_epi32((int)sz)), vz),
                           _mm256_set1_epi32((int)w)),
        iy); /* (ix, z, iy) */
    __m256i o1 = _mm256_add_epi32(o0, next);
    for (int64_t ch = 0; ch < n_ch; ch++) {
        __m256 v00, v01, v10, v11;
        sg_gather_pairs(t + ch * tvol, o0, &v00, &v01);
        sg_gather_pairs(t + ch * tvol, o1, &v10, &v11);
        __m256 top = _mm256_fmadd_ps(wy, _mm256_sub_ps(v01, v00), v00);
        __m256 bot = _mm256_fmadd_ps(wy, _mm256_sub_ps(v11, v10), v10);
        _mm256_storeu_ps(dst + ch * vol + (x * sy + y) * sz + z,
                         _mm256_fmadd_ps(wx, _mm256_sub_ps(bot, top), top));
    }
}

/* Voxels z0 <= z < z1 of the output line (x, y), 8 at a time, as far as they go; returns where
 * it stopped. Two 8-voxel steps are interleaved (independent chains keep the core busy: 13 %
 * faster on a Zen 3 core than one at a time). */
SG_TARGET static int64_t line_avx2(const float *t, float *dst, const float *field,
                                   const float *azt, int64_t n_ch, int64_t sx, int64_t sy,
                                   int64_t sz, int64_t nc, int64_t x, int64_t y, int64_t z0,
                                   int64_t z1) {
    const int64_t plane = sx * sy;
    const float *f0 = field + x * sy + y, *f1 = f0 + nc * plane;
    const __m256 vx = _mm256_set1_ps((float)x), vy = _mm256_set1_ps((float)y);
    int64_t z = z0;
    /* the displacement is summed from 0 and the position added last, as line_scalar does:
     * summed onto x (up to 2^k), every step would round to x's coarser float32 spacing */
    for (; z + 16 <= z1; z += 16) {
        __m256 dx0 = _mm256_setzero_ps(), dy0 = dx0, dx1 = dx0, dy1 = dx0;
        for (int64_t j = 0; j < nc; j++) {
            const float *az = azt + j * sz + z;
            __m256 a0 = _mm256_loadu_ps(az), a1 = _mm256_loadu_ps(az + 8);
            __m256 b0 = _mm256_broadcast_ss(f0 + j * plane);
            __m256 b1 = _mm256_broadcast_ss(f1 + j * plane);
            dy0 = _mm256_fmadd_ps(b0, a0, dy0);
            dy1 = _mm256_fmadd_ps(b0, a1, dy1);
            dx0 = _mm256_fmadd_ps(b1, a0, dx0);
            dx1 = _mm256_fmadd_ps(b1, a1, dx1);
        }
        sample8(t, dst, _mm256_add_ps(vx, dx0), _mm256_add_ps(vy, dy0), n_ch, sx, sy, sz, x, y,
                z);
        sample8(t, dst, _mm256_add_ps(vx, dx1), _mm256_add_ps(vy, dy1), n_ch, sx, sy, sz, x, y,
                z + 8);
    }
    for (; z + 8 <= z1; z += 8) {
        __m256 dx = _mm256_setzero_ps(), dy = dx;
        for (int64_t j = 0; j < nc; j++) {
            __m256 a = _mm256_loadu_ps(azt + j * sz + z);
            dy = _mm256_fmadd_ps(_mm256_broadcast_ss(f0 + j * plane), a, dy);
            dx = _mm256_fmadd_ps(_mm256_broadcast_ss(f1 + j * plane), a, dx);
        }
        sample8(t, dst, _mm256_add_ps(vx, dx), _mm256_add_ps(vy, dy), n_ch, sx, sy, sz, x, y, z);
    }
    return z;
}
#endif

/* Number of floats `scratch` must hold for sg_warp. */
int64_t sg_warp_scratch(int64_t n_ch, int64_t sx, int64_t sy, int64_t sz) {
    return n_ch * sx * sz * (sy + 1) + 8;
}

/*
 * Warp the box [x0, x1) x [y0, y1) x [z0, z1) of dst (C, X, Y, Z) from src (same shape) with
 * field (2, nc, X, Y) and azt (nc, Z) (see the top of this file); other voxels of dst are left
 * as they are. simd = 0 forces the one-voxel-at-a-time path. Returns 0, or 1 if the cube is too
 * large for 32-bit offsets on the AVX2 path (it then runs the scalar path).
 */
int sg_warp(const float *src, float *dst, const float *field, const float *azt, float *scratch,
            int64_t n_ch, int64_t sx, int64_t sy, int64_t sz, int64_t nc, int64_t x0, int64_t x1,
            int64_t y0, int64_t y1, int64_t z0, int64_t z1, int simd) {
    int big = n_ch * sx * sz * (sy + 1) >= ((int64_t)1 << 31);
#ifdef SG_AVX2
    if (simd && !big && sg_simd()) {
        to_xzy(src, scratch, n_ch * sx, sy, sz);
        for (int64_t x = x0; x < x1; x++)
            for (int64_t y = y0; y < y1; y++) {
                int64_t z = line_avx2(scratch, dst, field, azt, n_ch, sx, sy, sz, nc, x, y, z0, z1);
                line_scalar(src, dst, field, azt, n_ch, sx, sy, sz, nc, x, y, z, z1);
            }
        return 0;
    }
#endif
    (void)scratch;
    for (int64_t x = x0; x < x1; x++)
        for (int64_t y = y0; y < y1; y++)
            line_scalar(src, dst, field, azt, n_ch, sx, sy, sz, nc, x, y, z0, z1);
    return simd && big;
}
