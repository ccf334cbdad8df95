// The AVX-512F path of backprop_gemm (rule in CGemm.h): register tiles of up
// to 8 rows × 32 columns (16 accumulators of 16 lanes), A broadcast one
// element at a time, B read straight from its rows, partial columns through
// lane masks. Compiled for AVX-512F by attribute; called only when
// backprop_cpu_has_avx512() says so.
#if defined(__x86_64__)
#include "CGemm.h"
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,fma")))
#define MR 8

// One tile: rows i0..i0+mr, columns j0..j0+16·nv (the last vector's lanes
// masked by `last`). mr and nv are constants at every call site, so the
// accumulators live in registers.
AVX512 __attribute__((always_inline)) static inline void
tile(const backprop_gemm *g, long i0, long j0, const int mr, const int nv, __mmask16 last) {
    const __mmask16 mask0 = nv == 1 ? last : (__mmask16)0xFFFF;
    const __mmask16 mask1 = last;
    const float *a = g->a + i0 * g->a_row_stride;
    const long rs = g->a_row_stride, cs = g->a_column_stride, ldb = g->ldb;
    float *c = g->c + i0 * g->ldc + j0;
    for (long s0 = 0; s0 < g->k; s0 += g->segment) {
        const long s1 = s0 + g->segment < g->k ? s0 + g->segment : g->k;
        const int first = s0 == 0;
        __m512 acc0[MR], acc1[MR];
        for (int i = 0; i < mr; i++) {
            if (first && g->accumulate) {
                acc0[i] = _mm512_maskz_loadu_ps(mask0, c + i * g->ldc);
                if (nv == 2) acc1[i] = _mm512_maskz_loadu_ps(mask1, c + i * g->ldc + 16);
            } else {
                acc0[i] = _mm512_setzero_ps();
                if (nv == 2) acc1[i] = _mm512_setzero_ps();
            }
        }
        const float *bp = g->b + s0 * ldb + j0;
        const float *ap = a + s0 * cs;
        for (long p = s0; p < s1; p++, bp += ldb, ap += cs) {
            const __m512 b0 = _mm512_maskz_loadu_ps(mask0, bp);
            const __m512 b1 = nv == 2 ? _mm512_maskz_loadu_ps(mask1, bp + 16) : b0;
            for (int i = 0; i < mr; i++) {
                const __m512 ai = _mm512_set1_ps(ap[i * rs]);
                acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
                if (nv == 2) acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
            }
        }
        for (int i = 0; i < mr; i++) {
            float *ci = c + i * g->ldc;
            if (!first) {
                acc0[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(mask0, ci), acc0[i]);
                if (nv == 2) acc1[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(mask1, ci + 16), acc1[i]);
            }
            _mm512_mask_storeu_ps(ci, mask0, acc0[i]);
            if (nv == 2) _mm512_mask_storeu_ps(ci + 16, mask1, acc1[i]);
        }
    }
}

// The row count as a constant, for each vector count.
#define ROWS(nv)                                                       \
    switch (mr) {                                                      \
    case 8: tile(g, i0, j0, 8, nv, last); break;                       \
    case 7: tile(g, i0, j0, 7, nv, last); break;                       \
    case 6: tile(g, i0, j0, 6, nv, last); break;                       \
    case 5: tile(g, i0, j0, 5, nv, last); break;                       \
    case 4: tile(g, i0, j0, 4, nv, last); break;                       \
    case 3: tile(g, i0, j0, 3, nv, last); break;                       \
    case 2: tile(g, i0, j0, 2, nv, last); break;                       \
    default: tile(g, i0, j0, 1, nv, last); break;                      \
    }

AVX512 void backprop_gemm_avx512(const backprop_gemm *g) {
    if (g->m <= 0 || g->n <= 0) return;
    for (long j0 = 0; j0 < g->n; j0 += 32) {
        const long width = g->n - j0 < 32 ? g->n - j0 : 32;
        const int nv = width > 16 ? 2 : 1;
        const long lastWidth = width - 16 * (nv - 1);
        const __mmask16 last = (__mmask16)(lastWidth == 16 ? 0xFFFF : (1u << lastWidth) - 1);
        for (long i0 = 0; i0 < g->m; i0 += MR) {
            const int mr = g->m - i0 < MR ? (int)(g->m - i0) : MR;
            if (g->k <= 0) {
                // No products: C is 0, or stays as it is.
                if (!g->accumulate)
                    for (int i = 0; i < mr; i++)
                        for (long j = 0; j < width; j++) g->c[(i0 + i) * g->ldc + j0 + j] = 0;
                continue;
            }
            if (nv == 2) { ROWS(2) } else { ROWS(1) }
        }
    }
}
#endif
