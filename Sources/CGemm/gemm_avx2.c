// The AVX2 + FMA path of backprop_gemm (rule in CGemm.h): register tiles of
// up to 6 rows × 16 columns (12 accumulators of 8 lanes), as the AVX-512
// path with 8-lane vectors; partial columns through maskload/maskstore.
// Compiled for AVX2 and FMA by attribute; called only when
// backprop_cpu_has_avx2_fma() says so.
#if defined(__x86_64__)
#include "CGemm.h"
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define MR 6

AVX2 __attribute__((always_inline)) static inline __m256
load(const float *p, __m256i mask, int full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

AVX2 __attribute__((always_inline)) static inline void
store(float *p, __m256 v, __m256i mask, int full) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
}

// One tile: rows i0..i0+mr, columns j0..j0+8·nv, the last vector's lanes
// masked by `last` unless `lastFull`.
AVX2 __attribute__((always_inline)) static inline void
tile(const backprop_gemm *g, long i0, long j0, const int mr, const int nv, __m256i last, int lastFull) {
    const __m256i mask0 = nv == 1 ? last : _mm256_set1_epi32(-1);
    const int full0 = nv == 1 ? lastFull : 1;
    const float *a = g->a + i0 * g->a_row_stride;
    const long rs = g->a_row_stride, cs = g->a_column_stride, ldb = g->ldb;
    float *c = g->c + i0 * g->ldc + j0;
    for (long s0 = 0; s0 < g->k; s0 += g->segment) {
        const long s1 = s0 + g->segment < g->k ? s0 + g->segment : g->k;
        const int first = s0 == 0;
        __m256 acc0[MR], acc1[MR];
        for (int i = 0; i < mr; i++) {
            if (first && g->accumulate) {
                acc0[i] = load(c + i * g->ldc, mask0, full0);
                if (nv == 2) acc1[i] = load(c + i * g->ldc + 8, last, lastFull);
            } else {
                acc0[i] = _mm256_setzero_ps();
                if (nv == 2) acc1[i] = _mm256_setzero_ps();
            }
        }
        const float *bp = g->b + s0 * ldb + j0;
        const float *ap = a + s0 * cs;
        for (long p = s0; p < s1; p++, bp += ldb, ap += cs) {
            const __m256 b0 = load(bp, mask0, full0);
            const __m256 b1 = nv == 2 ? load(bp + 8, last, lastFull) : b0;
            for (int i = 0; i < mr; i++) {
                const __m256 ai = _mm256_broadcast_ss(ap + i * rs);
                acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
                if (nv == 2) acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
            }
        }
        for (int i = 0; i < mr; i++) {
            float *ci = c + i * g->ldc;
            if (!first) {
                acc0[i] = _mm256_add_ps(load(ci, mask0, full0), acc0[i]);
                if (nv == 2) acc1[i] = _mm256_add_ps(load(ci + 8, last, lastFull), acc1[i]);
            }
            store(ci, acc0[i], mask0, full0);
            if (nv == 2) store(ci + 8, acc1[i], last, lastFull);
        }
    }
}

#define ROWS(nv, full)                                                      \
    switch (mr) {                                                           \
    case 6: tile(g, i0, j0, 6, nv, last, full); break;                      \
    case 5: tile(g, i0, j0, 5, nv, last, full); break;                      \
    case 4: tile(g, i0, j0, 4, nv, last, full); break;                      \
    case 3: tile(g, i0, j0, 3, nv, last, full); break;                      \
    case 2: tile(g, i0, j0, 2, nv, last, full); break;                      \
    default: tile(g, i0, j0, 1, nv, last, full); break;                     \
    }

AVX2 void backprop_gemm_avx2(const backprop_gemm *g) {
    if (g->m <= 0 || g->n <= 0) return;
    for (long j0 = 0; j0 < g->n; j0 += 16) {
        const long width = g->n - j0 < 16 ? g->n - j0 : 16;
        const int nv = width > 8 ? 2 : 1;
        const int lastWidth = (int)(width - 8 * (nv - 1));
        const int lastFull = lastWidth == 8;
        const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(lastWidth),
                                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (long i0 = 0; i0 < g->m; i0 += MR) {
            const int mr = g->m - i0 < MR ? (int)(g->m - i0) : MR;
            if (g->k <= 0) {
                if (!g->accumulate)
                    for (int i = 0; i < mr; i++)
                        for (long j = 0; j < width; j++) g->c[(i0 + i) * g->ldc + j0 + j] = 0;
                continue;
            }
            if (nv == 2) {
                if (lastFull) { ROWS(2, 1) } else { ROWS(2, 0) }
            } else {
                if (lastFull) { ROWS(1, 1) } else { ROWS(1, 0) }
            }
        }
    }
}
#endif
