// The bf16 product (gemm_bf16.c states its rule) for a CPU with AVX2 and FMA
// but no AVX512_BF16: each lane step of VDPBF16PS is two fp32 FMAs, the
// pair's k+1 first, under MXCSR's DAZ, FTZ and round-to-nearest-even. A is
// packed as fp32 values that are bf16 (rounded as bf16.c rounds), each pair
// stored high element first, so that a row's chain reads it in order:
//     packed q = 2p: A(k0+2p+1)  (0 where an odd chain ends),  q = 2p+1: A(k0+2p);
// B comes as backprop_bf16_pack_pairs' words (given, or packed here), each
// split into its two bf16 halves as fp32. A product whose output holds a
// NaN runs again element by element (the FMAs would choose another NaN where
// two meet: bf16_rule.h). Tiles of 6 rows × 16 columns, as the fp32 AVX2 path.
#if defined(__x86_64__)
#include "CGemm.h"
#include "bf16_rule.h"
#include <immintrin.h>

#define ISA __attribute__((target("avx2,fma")))
#define MR 6
#define NR 16
#define KC 256

// MXCSR with round to nearest even, FTZ and DAZ.
static inline unsigned flushing(unsigned csr) { return (csr & ~0x6000u) | 0x8040u; }

ISA static inline __m256i lanes_below(long count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count < 8 ? count : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 8 floats rounded to bf16 (bf16_rounded's rule), each kept as the fp32 it is the upper half of.
ISA static inline __m256 round8(__m256 x) {
    __m256i u = _mm256_castps_si256(x);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    const __m256i denormal = _mm256_cmpeq_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7F800000)), _mm256_setzero_si256());
    u = _mm256_blendv_epi8(u, _mm256_and_si256(u, _mm256_set1_epi32((int)0x80000000)), denormal);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd));
    const __m256i quieted = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_blendv_epi8(rounded, quieted, nan), _mm256_set1_epi32((int)0xFFFF0000)));
}

ISA static inline __m256 load_rounded(const float *p, __m256i mask) { return round8(_mm256_maskload_ps(p, mask)); }

void bf16_pack_pairs_avx2(const float *b, long ldb, long rows, long columns, uint32_t *out) __attribute__((target("avx2,fma")));
void bf16_pack_pairs_avx2(const float *b, long ldb, long rows, long columns, uint32_t *out) {
    const __m256i m0 = lanes_below(columns), m1 = lanes_below(columns - 8), high = _mm256_set1_epi32((int)0xFFFF0000);
    for (long p = 0; 2 * p < rows; p++) {
        const float *row = b + 2 * p * ldb, *next = 2 * p + 1 < rows ? row + ldb : 0;
        for (int h = 0; h < 2; h++) {
            const __m256i mask = h ? m1 : m0;
            const __m256i low = _mm256_castps_si256(load_rounded(row + 8 * h, mask));
            const __m256i up = next ? _mm256_castps_si256(load_rounded(next + 8 * h, mask)) : _mm256_setzero_si256();
            _mm256_storeu_si256((__m256i *)(out + 16 * p + 8 * h), _mm256_or_si256(_mm256_srli_epi32(low, 16), _mm256_and_si256(up, high)));
        }
    }
}

// One tile: mr rows × 16 columns over kq packed values (kq / 2 pairs), A's value q of row i at
// ap[i·istride + q·qstride], B's pair p of column c at bp[16p + c].
ISA __attribute__((always_inline)) static inline void
tile(const float *ap, long istride, long qstride, long kq, const uint32_t *bp, float *c, long ldc, int from_c, int add,
     __m256i m0, __m256i m1, const int mr) {
    __m256 acc[MR][2];
#pragma clang loop unroll(full)
    for (int i = 0; i < mr; i++) {
        acc[i][0] = from_c ? _mm256_maskload_ps(c + i * ldc, m0) : _mm256_setzero_ps();
        acc[i][1] = from_c ? _mm256_maskload_ps(c + i * ldc + 8, m1) : _mm256_setzero_ps();
    }
    // The piece set MXCSR for the FMAs unless this tile adds to C, which must not flush.
    const unsigned csr = add ? _mm_getcsr() : 0;
    if (add) _mm_setcsr(flushing(csr));
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000);
    for (long q = 0; q < kq; q += 2) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(bp + 8 * q)), w1 = _mm256_loadu_si256((const __m256i *)(bp + 8 * q + 8));
        // k+1 (the high halves) first, then k.
        const __m256 b0k1 = _mm256_castsi256_ps(_mm256_and_si256(w0, high)), b0k = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
        const __m256 b1k1 = _mm256_castsi256_ps(_mm256_and_si256(w1, high)), b1k = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
#pragma clang loop unroll(full)
        for (int i = 0; i < mr; i++) {
            const __m256 ak1 = _mm256_broadcast_ss(ap + i * istride + q * qstride);
            const __m256 ak = _mm256_broadcast_ss(ap + i * istride + (q + 1) * qstride);
            acc[i][0] = _mm256_fmadd_ps(ak, b0k, _mm256_fmadd_ps(ak1, b0k1, acc[i][0]));
            acc[i][1] = _mm256_fmadd_ps(ak, b1k, _mm256_fmadd_ps(ak1, b1k1, acc[i][1]));
        }
    }
    if (add) _mm_setcsr(csr);
#pragma clang loop unroll(full)
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (add) {
            acc[i][0] = _mm256_add_ps(_mm256_maskload_ps(ci, m0), acc[i][0]);
            acc[i][1] = _mm256_add_ps(_mm256_maskload_ps(ci + 8, m1), acc[i][1]);
        }
        _mm256_maskstore_ps(ci, m0, acc[i][0]);
        _mm256_maskstore_ps(ci + 8, m1, acc[i][1]);
    }
}

#define TILE(rows) case rows: tile(ap, istride, qstride, kq, bp, c, ldc, from_c, add, m0, m1, rows); break;

// Every tile for one piece (kc values of k from k0, pairs from k0).
ISA static void piece(const backprop_gemm *g, float *apack, uint32_t *bpack, long k0, long kc, int from_c, int add) {
    const long kq = (kc + 1) / 2 * 2, ldc = g->ldc, m = g->m;
    const float *a = g->a + k0 * g->a_column_stride;
    // A packed pair by pair where its columns are contiguous (δᵀ of a weight gradient), else row by row.
    const int by_pairs = g->a_column_stride != 1 && g->a_row_stride == 1;
    const long istride = by_pairs ? 1 : kq, qstride = by_pairs ? m : 1;
    if (by_pairs) {
        for (long q = 0; q < kq; q++) {
            const long k = q ^ 1;  // q = 2p holds k = 2p+1; q = 2p+1 holds k = 2p
            for (long i = 0; i < m; i += 8)
                _mm256_storeu_ps(apack + q * m + i, k < kc ? load_rounded(a + k * g->a_column_stride + i, lanes_below(m - i))
                                                          : _mm256_setzero_ps());
        }
    } else {
        for (long i = 0; i < m; i++) {
            const float *row = a + i * g->a_row_stride;
            long q = 0;
            if (g->a_column_stride == 1)
                for (; q + 8 <= kc; q += 8)
                    _mm256_storeu_ps(apack + i * kq + q, _mm256_permute_ps(load_rounded(row + q, lanes_below(8)), 0xB1));
            for (; q < kq; q++) apack[i * kq + q] = (q ^ 1) < kc ? bf16_rounded(row[(q ^ 1) * g->a_column_stride]) : 0;
        }
    }
    const unsigned csr = add ? 0 : _mm_getcsr();
    if (!add) _mm_setcsr(flushing(csr));
    for (long j0 = 0; j0 < g->n; j0 += NR) {
        const long width = g->n - j0 < NR ? g->n - j0 : NR;
        const __m256i m0 = lanes_below(width), m1 = lanes_below(width - 8);
        const uint32_t *bp = bpack;
        if (g->b_pairs) {
            bp = g->b_pairs + (j0 / 16) * g->b_pairs_stride + 16 * (k0 / 2);
        } else {
            // Rows of B's 16 columns from j0 lie ldb apart in either layout (a panel holds whole tiles).
            const float *b = g->b_panel_width ? g->b + (j0 / g->b_panel_width) * g->b_panel_stride + k0 * g->ldb + j0 % g->b_panel_width
                                              : g->b + k0 * g->ldb + j0;
            bf16_pack_pairs_avx2(b, g->ldb, kc, width, bpack);
        }
        for (long i0 = 0; i0 < m; i0 += MR) {
            const int rows = m - i0 < MR ? (int)(m - i0) : MR;
            const float *ap = apack + i0 * istride;
            float *c = g->c + i0 * ldc + j0;
            switch (rows) { TILE(6) TILE(5) TILE(4) TILE(3) TILE(2) TILE(1) }
        }
    }
    if (!add) _mm_setcsr(csr);
}

ISA void backprop_gemm_bf16_avx2(const backprop_gemm *g) {
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) { backprop_gemm_bf16_emulated(g); return; }
    // A single chain in pieces of KC (even: a pair never crosses one), each continued exactly
    // from C; or each segment whole, a chain of its own added to C.
    const int single = g->segment >= g->k;
    const long length = single ? KC : g->segment, kq = (length + 1) / 2 * 2;
    // Given pairs are B's from k = 0: of use where every piece starts at an even k.
    backprop_gemm own = *g;
    if (!single && g->segment % 2) own.b_pairs = 0;
    g = &own;
    // This thread's scratch: B for one column tile, A for every row (64-byte aligned), C as it was.
    const long packed = NR * kq + g->m * kq + 8;
    float *buffer = backprop_thread_buffer((size_t)(packed + (g->accumulate ? g->m * g->n : 0)));
    if (!buffer) { backprop_gemm_bf16_emulated(g); return; }
    uint32_t *bpack = (uint32_t *)buffer;
    float *apack = buffer + NR * kq, *saved = buffer + packed;
    if (g->accumulate) bf16_save_output(g, saved);
    for (long k0 = 0; k0 < g->k; k0 += length) {
        const long kc = g->k - k0 < length ? g->k - k0 : length;
        piece(g, apack, bpack, k0, kc, k0 == 0 ? g->accumulate : single, !single && k0 > 0);
    }
    if (bf16_output_has_nan(g, saved)) backprop_gemm_bf16_emulated(g);
}
#else
#include "CGemm.h"
void backprop_gemm_bf16_avx2(const backprop_gemm *g) { backprop_gemm_bf16_emulated(g); }
#endif
