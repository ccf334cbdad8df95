// The bf16 product (issue 55): backprop_gemm's shape and chains with bf16
// operands. A and B are rounded to bf16 (backprop_bf16_from_float) as they
// are packed; each output is one chain per segment, like the fp32 rule, but
// over pairs of k from the chain's start, each pair one VDPBF16PS lane step
// (bf16.c: k+1 first, then k; DAZ, FTZ, RNE), the last pair of an odd chain
// padded with zeros:
//     c = dp(c; a_{k+1} b_{k+1}, a_k b_k) for k = s, s+2, … (segment start s).
// The emulated path writes that out element by element; the AVX512_BF16 path
// packs pairs and runs tiles of VDPBF16PS; the tests hold them to the same bits.
#include "CGemm.h"
#include "bf16_rule.h"
#include <stdlib.h>
#include <string.h>

static inline float A(const backprop_gemm *g, long i, long k) { return g->a[i * g->a_row_stride + k * g->a_column_stride]; }
static inline float B(const backprop_gemm *g, long k, long j) {
    return g->b_panel_width ? g->b[(j / g->b_panel_width) * g->b_panel_stride + k * g->ldb + j % g->b_panel_width]
                            : g->b[k * g->ldb + j];
}

// Chain of (i, j) over k in [k0, k0 + kc) starting from c: pairs from k0,
// k+1 first, an odd chain's last pair padded with zeros (whose step still
// flushes and quiets, as the instruction's does).
static float chain(const backprop_gemm *g, long i, long j, long k0, long kc, float c) {
    for (long p = 0; p < kc; p += 2) {
        const int whole = p + 1 < kc;
        c = bf16_step(c, whole ? bf16_rounded(A(g, i, k0 + p + 1)) : 0, whole ? bf16_rounded(B(g, k0 + p + 1, j)) : 0);
        c = bf16_step(c, bf16_rounded(A(g, i, k0 + p)), bf16_rounded(B(g, k0 + p, j)));
    }
    return c;
}

void backprop_gemm_bf16_emulated(const backprop_gemm *g) {
    if (g->m <= 0 || g->n <= 0) return;
    const long segment = g->segment >= g->k ? (g->k > 0 ? g->k : 1) : g->segment;
    for (long i = 0; i < g->m; i++)
        for (long j = 0; j < g->n; j++) {
            float *c = g->c + i * g->ldc + j;
            float value = g->accumulate ? *c : 0;
            for (long k0 = 0; k0 < g->k; k0 += segment) {
                const long kc = g->k - k0 < segment ? g->k - k0 : segment;
                value = k0 == 0 ? chain(g, i, j, k0, kc, value) : value + chain(g, i, j, k0, kc, 0);
            }
            *c = value;
        }
}

#if defined(__x86_64__)
#include <immintrin.h>

// One body for both x86 paths: `emulate` (a constant at each call) picks
// VDPBF16PS or, for a CPU without it, two fp32 FMAs a pair under MXCSR's DAZ
// and FTZ with round-to-nearest-even, which is the same rule (bf16.c) except
// for which NaN wins where two meet: a product whose output holds a NaN
// therefore runs again element by element (bf16_rule.h). The packing is the same for both: bf16.c's
// rounding in AVX-512 integer operations (the instruction's own, by BF16Tests).
#define ISA __attribute__((target("avx512f,avx512bw,avx512bf16")))
#define MR 12
#define NR 32
#define KC 256

// 16 floats rounded to bf16 (bf16.c's rule), each in the low half of its 32-bit lane.
ISA static inline __m512i round16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __mmask16 denormal = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7F800000));
    u = _mm512_mask_and_epi32(u, denormal, u, _mm512_set1_epi32((int)0x80000000));
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd)), 16);
    return _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

// 32 consecutive floats as 16 pairs (x[2p] low, x[2p+1] high).
ISA static inline __m512i pairs_along(const float *x) {
    const __m512i r0 = round16(_mm512_loadu_ps(x)), r1 = round16(_mm512_loadu_ps(x + 16));
    const __m512i index = _mm512_set_epi16(62, 60, 58, 56, 54, 52, 50, 48, 46, 44, 42, 40, 38, 36, 34, 32,
                                           30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_epi16(r0, index, r1);
}

// Rows k and k+1 of 16 columns as 16 pairs (row k low, row k+1 high; no row k+1: zeros).
ISA static inline __m512i pairs_across(const float *row, const float *next, __mmask16 mask) {
    const __m512i low = round16(_mm512_maskz_loadu_ps(mask, row));
    const __m512i high = next ? round16(_mm512_maskz_loadu_ps(mask, next)) : _mm512_setzero_si512();
    return _mm512_or_si512(low, _mm512_slli_epi32(high, 16));
}

// A's pairs: (bf16 A(i, k0+2p), bf16 A(i, k0+2p+1)) as one word (bf16_pair); B's likewise down k.
// MXCSR with round to nearest even, FTZ and DAZ: VDPBF16PS's rule for the emulation's FMAs.
static inline unsigned flushing(unsigned csr) { return (csr & ~0x6000u) | 0x8040u; }

// One tile: mr rows × 32 columns over pc pairs, A's pair p of row i at ap[i·istride + p·pstride],
// B's of columns 0-15 at b0p[16p + c], of columns 16-31 at b1p[16p + c]; C read (from_c), written or added (add).
ISA __attribute__((always_inline)) static inline void
tile(const uint32_t *ap, long istride, long pstride, long pc, const uint32_t *b0p, const uint32_t *b1p, float *c, long ldc, int from_c, int add, __mmask16 m0, __mmask16 m1,
     const int mr, const int emulate) {
    __m512 acc[MR][2];
#pragma clang loop unroll(full)
    for (int i = 0; i < mr; i++) {
        acc[i][0] = from_c ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_setzero_ps();
        acc[i][1] = from_c ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : _mm512_setzero_ps();
    }
    // The piece set MXCSR for the FMAs unless this tile adds to C, which must not flush.
    const unsigned csr = emulate && add ? _mm_getcsr() : 0;
    if (emulate && add) _mm_setcsr(flushing(csr));
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000);
    for (long p = 0; p < pc; p++) {
        const __m512i b0 = _mm512_loadu_si512(b0p + 16 * p), b1 = _mm512_loadu_si512(b1p + 16 * p);
        if (emulate) {
            // k+1 (the high halves) first, then k.
            const __m512 b0k1 = _mm512_castsi512_ps(_mm512_and_si512(b0, high)), b0k = _mm512_castsi512_ps(_mm512_slli_epi32(b0, 16));
            const __m512 b1k1 = _mm512_castsi512_ps(_mm512_and_si512(b1, high)), b1k = _mm512_castsi512_ps(_mm512_slli_epi32(b1, 16));
#pragma clang loop unroll(full)
            for (int i = 0; i < mr; i++) {
                const uint32_t word = ap[i * istride + p * pstride];
                const __m512 ak1 = _mm512_castsi512_ps(_mm512_set1_epi32((int)(word & 0xFFFF0000u)));
                const __m512 ak = _mm512_castsi512_ps(_mm512_set1_epi32((int)(word << 16)));
                acc[i][0] = _mm512_fmadd_ps(ak, b0k, _mm512_fmadd_ps(ak1, b0k1, acc[i][0]));
                acc[i][1] = _mm512_fmadd_ps(ak, b1k, _mm512_fmadd_ps(ak1, b1k1, acc[i][1]));
            }
        } else {
#pragma clang loop unroll(full)
            for (int i = 0; i < mr; i++) {
                const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)ap[i * istride + p * pstride]);
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, (__m512bh)b0);
                acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, (__m512bh)b1);
            }
        }
    }
    if (emulate && add) _mm_setcsr(csr);
#pragma clang loop unroll(full)
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (add) {
            acc[i][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), acc[i][0]);
            acc[i][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), acc[i][1]);
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

#define TILE(rows) case rows: tile(ap, istride, pstride, pc, b0p, b1p, c, ldc, from_c, add, m0, m1, rows, emulate); break;

// Every tile for one piece (kc values of k from k0, pairs from k0).
ISA __attribute__((always_inline)) static inline void
piece(const backprop_gemm *g, uint32_t *apack, uint32_t *bpack, long k0, long kc, int from_c, int add, const int emulate) {
    const long pc = (kc + 1) / 2, ldc = g->ldc;
    // (Packing is integer work and the loads of C: neither is changed by FTZ or DAZ.)
    const unsigned csr = emulate && !add ? _mm_getcsr() : 0;
    if (emulate && !add) _mm_setcsr(flushing(csr));
    // A's pairs row by row where its rows are contiguous, else pair by pair where its columns are (δᵀ of a
    // weight gradient), else one by one.
    const int by_pairs = g->a_column_stride != 1 && g->a_row_stride == 1;
    const long istride = by_pairs ? 1 : pc, pstride = by_pairs ? g->m : 1;
    if (by_pairs) {
        for (long p = 0; p < pc; p++) {
            const float *column = g->a + (k0 + 2 * p) * g->a_column_stride, *next = 2 * p + 1 < kc ? column + g->a_column_stride : 0;
            for (long i = 0; i < g->m; i += 16) {
                const __mmask16 mask = (__mmask16)(g->m - i >= 16 ? 0xFFFF : (1u << (g->m - i)) - 1);
                _mm512_storeu_si512(apack + p * g->m + i, pairs_across(column + i, next ? next + i : 0, mask));
            }
        }
    } else {
        for (long i = 0; i < g->m; i++) {
            if (g->a_column_stride == 1) {
                // A's row is contiguous: its pairs are its values in order.
                const float *row = g->a + i * g->a_row_stride + k0;
                long p = 0;
                for (; 2 * p + 32 <= kc; p += 16) _mm512_storeu_si512(apack + i * pc + p, pairs_along(row + 2 * p));
                for (; p < pc; p++) apack[i * pc + p] = bf16_pair(row[2 * p], 2 * p + 1 < kc ? row[2 * p + 1] : 0);
            } else {
                for (long p = 0; p < pc; p++) apack[i * pc + p] = bf16_pair(A(g, i, k0 + 2 * p), 2 * p + 1 < kc ? A(g, i, k0 + 2 * p + 1) : 0);
            }
        }
    }
    for (long j0 = 0; j0 < g->n; j0 += NR) {
        const long width = g->n - j0 < NR ? g->n - j0 : NR;
        const __mmask16 m0 = (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
        const __mmask16 m1 = (__mmask16)(width >= 32 ? 0xFFFF : width <= 16 ? 0 : (1u << (width - 16)) - 1);
        // B's pairs as given, or packed here: 16 columns for every pair, then the next 16.
        const uint32_t *b0p = bpack, *b1p = bpack + 16 * pc;
        if (g->b_pairs) {
            b0p = g->b_pairs + (j0 / 16) * g->b_pairs_stride + 16 * (k0 / 2);
            b1p = b0p + g->b_pairs_stride;
        } else {
            // Rows of B's 32 columns from j0 lie ldb apart in either layout (a panel holds whole tiles).
            const float *b = g->b_panel_width ? g->b + (j0 / g->b_panel_width) * g->b_panel_stride + k0 * g->ldb + j0 % g->b_panel_width
                                              : g->b + k0 * g->ldb + j0;
            for (long p = 0; p < pc; p++) {
                const float *row = b + 2 * p * g->ldb, *next = 2 * p + 1 < kc ? row + g->ldb : 0;
                _mm512_storeu_si512(bpack + 16 * p, pairs_across(row, next, m0));
                _mm512_storeu_si512(bpack + 16 * (pc + p), pairs_across(row + 16, next ? next + 16 : 0, m1));
            }
        }
        for (long i0 = 0; i0 < g->m; i0 += MR) {
            const int rows = g->m - i0 < MR ? (int)(g->m - i0) : MR;
            const uint32_t *ap = apack + i0 * istride;
            float *c = g->c + i0 * ldc + j0;
            switch (rows) { TILE(12) TILE(11) TILE(10) TILE(9) TILE(8) TILE(7) TILE(6) TILE(5) TILE(4) TILE(3) TILE(2) TILE(1) }
        }
    }
    if (emulate && !add) _mm_setcsr(csr);
}

ISA static void pack_pairs_avx512(const float *b, long ldb, long rows, long columns, uint32_t *out) {
    const __mmask16 mask = (__mmask16)(columns >= 16 ? 0xFFFF : (1u << columns) - 1);
    for (long p = 0; 2 * p < rows; p++) {
        const float *row = b + 2 * p * ldb;
        _mm512_storeu_si512(out + 16 * p, pairs_across(row, 2 * p + 1 < rows ? row + ldb : 0, mask));
    }
}

ISA __attribute__((always_inline)) static inline void drive(const backprop_gemm *g, const int emulate) {
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) { backprop_gemm_bf16_emulated(g); return; }
    // A single chain in pieces of KC (even: a pair never crosses one), each continued exactly
    // from C; or each segment whole, a chain of its own added to C.
    const int single = g->segment >= g->k;
    const long length = single ? KC : g->segment;
    // Given pairs are B's from k = 0: of use where every piece starts at an even k.
    backprop_gemm own = *g;
    if (!single && g->segment % 2) own.b_pairs = 0;
    g = &own;
    // This thread's scratch: B's pairs for one column tile, A's for every row (aligned to 64 bytes),
    // and for the emulation C as it was.
    const long pairs = (length + 1) / 2, bsize = NR * pairs, packed = bsize + g->m * pairs + 16;
    const int keeps = emulate && g->accumulate;
    uint32_t *bpack = (uint32_t *)backprop_thread_buffer((size_t)(packed + (keeps ? g->m * g->n : 0)));
    if (!bpack) { backprop_gemm_bf16_emulated(g); return; }
    uint32_t *apack = bpack + bsize;
    float *saved = (float *)bpack + packed;
    if (keeps) bf16_save_output(g, saved);
    for (long k0 = 0; k0 < g->k; k0 += length) {
        const long kc = g->k - k0 < length ? g->k - k0 : length;
        const int from_c = k0 == 0 ? g->accumulate : single;
        piece(g, apack, bpack, k0, kc, from_c, !single && k0 > 0, emulate);
    }
    if (emulate && bf16_output_has_nan(g, saved)) backprop_gemm_bf16_emulated(g);
}

ISA void backprop_gemm_bf16_avx512(const backprop_gemm *g) { drive(g, 0); }

void backprop_bf16_pack_pairs(const float *b, long ldb, long rows, long columns, uint32_t *out) {
    static int path = -1;  // 2: AVX-512BW, 1: AVX2, 0: scalar (a race writes the same value)
    if (path < 0) path = backprop_cpu_has_avx512bw() ? 2 : backprop_cpu_has_avx2_fma() ? 1 : 0;
    if (path == 2) pack_pairs_avx512(b, ldb, rows, columns, out);
    else if (path == 1) bf16_pack_pairs_avx2(b, ldb, rows, columns, out);
    else bf16_pack_pairs_scalar(b, ldb, rows, columns, out);
}

// Compiled beside the VDPBF16PS path, but runs no bf16 instruction: AVX-512F and BW alone.
ISA void backprop_gemm_bf16_avx512_emulated(const backprop_gemm *g) { drive(g, 1); }
#else
void backprop_bf16_pack_pairs(const float *b, long ldb, long rows, long columns, uint32_t *out) {
    bf16_pack_pairs_scalar(b, ldb, rows, columns, out);
}
void backprop_gemm_bf16_avx512(const backprop_gemm *g) { backprop_gemm_bf16_emulated(g); }
void backprop_gemm_bf16_avx512_emulated(const backprop_gemm *g) { backprop_gemm_bf16_emulated(g); }
#endif
