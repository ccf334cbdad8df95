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
/// Whether A or B of a product holds a NaN (then two may meet in one step, where an emulation on fp32
/// FMAs would choose another NaN than the instruction: such a product runs element by element).
static inline int bf16_product_has_nan(const backprop_gemm *g) {
    for (long i = 0; i < g->m; i++)
        for (long k = 0; k < g->k; k++)
            if (isnan(g->a[i * g->a_row_stride + k * g->a_column_stride])) return 1;
    for (long k = 0; k < g->k; k++)
        for (long j = 0; j < g->n; j++) {
            const long at = g->b_panel_width ? (j / g->b_panel_width) * g->b_panel_stride + k * g->ldb + j % g->b_panel_width
                                             : k * g->ldb + j;
            if (isnan(g->b[at])) return 1;
        }
    return 0;
}
#endif
#endif
