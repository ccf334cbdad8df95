// VDPBF16PS's rule for one lane, one pair element at a time, and the bf16
// rounding, as inline C for the emulated products (bf16.c states the rule;
// included by bf16.c and the gemm_bf16 files, not a header to include elsewhere).
#ifndef BACKPROP_BF16_RULE_H
#define BACKPROP_BF16_RULE_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t bf16_bits_of(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float bf16_float_of(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/// A denormal as a zero of its sign (DAZ on an input, FTZ on a result).
static inline float bf16_flushed(float x) {
    const uint32_t u = bf16_bits_of(x);
    return (u & 0x7F800000u) == 0 ? bf16_float_of(u & 0x80000000u) : x;
}

/// fp32 → bf16 (round to nearest even, a denormal as a zero of its sign, NaN
/// quieted), returned as the fp32 whose upper half it is (exact).
static inline float bf16_rounded(float x) {
    uint32_t u = bf16_bits_of(x);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) return bf16_float_of((u | 0x00400000u) & 0xFFFF0000u);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    u += 0x7FFFu + ((u >> 16) & 1u);
    return bf16_float_of(u & 0xFFFF0000u);
}

/// The pair word of two values: bf16(lo) in the low half, bf16(hi) in the high half (VDPBF16PS's operand layout).
static inline uint32_t bf16_pair(float lo, float hi) {
    return bf16_bits_of(bf16_rounded(lo)) >> 16 | (bf16_bits_of(bf16_rounded(hi)) & 0xFFFF0000u);
}

/// One element of a lane's step, acc ← fma(a, b, acc), for bf16 values a
/// and b: DAZ on every input, FTZ on the result; where an operand is NaN,
/// the first NaN of a, b, acc, quieted (Zen 4's choice; C's fmaf would pick
/// by its own operand order).
static inline float bf16_step(float acc, float a, float b) {
    acc = bf16_flushed(acc), a = bf16_flushed(a), b = bf16_flushed(b);
    if (isnan(a) || isnan(b) || isnan(acc)) {
        const float nan = isnan(a) ? a : isnan(b) ? b : acc;
        return bf16_float_of(bf16_bits_of(nan) | 0x00400000u);
    }
    return bf16_flushed(fmaf(a, b, acc));
}

#ifdef CGEMM_H
/// backprop_bf16_pack_pairs in scalar C (any CPU), and on AVX2 (gemm_bf16_avx2.c).
static inline void bf16_pack_pairs_scalar(const float *b, long ldb, long rows, long columns, uint32_t *out) {
    for (long p = 0; 2 * p < rows; p++)
        for (long c = 0; c < 16; c++) {
            const float low = c < columns ? b[2 * p * ldb + c] : 0, high = c < columns && 2 * p + 1 < rows ? b[(2 * p + 1) * ldb + c] : 0;
            out[16 * p + c] = bf16_pair(low, high);
        }
}
void bf16_pack_pairs_avx2(const float *b, long ldb, long rows, long columns, uint32_t *out);

// An emulation on fp32 FMAs chooses another NaN than the instruction where
// two meet, so a product whose output holds a NaN is computed again element
// by element. That test is exact and cheap: a NaN operand reaches every
// output of its row of A or column of B (NaN times anything, plus anything,
// is NaN), so some output is NaN exactly when an operand is or an invalid
// operation made one (which the element path makes alike); and C is m × n,
// where the operands are m × k and k × n.

/// C's rows as they were before the product, where it accumulates (so that the element path can start again).
static inline void bf16_save_output(const backprop_gemm *g, float *saved) {
    for (long i = 0; i < g->m; i++) memcpy(saved + i * g->n, g->c + i * g->ldc, sizeof(float) * (size_t)g->n);
}

/// Whether the product's output holds a NaN; if so, C is put back from `saved` (where it accumulates).
static inline int bf16_output_has_nan(const backprop_gemm *g, const float *saved) {
    for (long i = 0; i < g->m; i++)
        for (long j = 0; j < g->n; j++)
            if (isnan(g->c[i * g->ldc + j])) {
                if (g->accumulate)
                    for (long r = 0; r < g->m; r++) memcpy(g->c + r * g->ldc, saved + r * g->n, sizeof(float) * (size_t)g->n);
                return 1;
            }
    return 0;
}
#endif
#endif
