// bf16 products, the first piece of `--precision bf16` (issue 55): the
// hardware's VDPBF16PS (AVX512_BF16) and VCVTNEPS2BF16, and the emulation
// every other path must compute bit for bit.
//
// A bf16 value is the upper 16 bits of an fp32 (8 exponent bits, 7 stored
// mantissa bits), so a product of two is exact in fp32 (8 × 8 significant
// bits ≤ 24) unless it leaves fp32's exponent range. The instruction's rule,
// as Intel's pseudocode states it, lane by lane (i = 0 … 15):
//     acc_i ← fma(a_{2i+1}, b_{2i+1}, acc_i)    the odd pair first,
//     acc_i ← fma(a_{2i},   b_{2i},   acc_i)    then the even one,
// each with denormal inputs read as 0 (DAZ), a denormal result written as 0
// (FTZ) and round-to-nearest-even, whatever MXCSR says. The emulation below
// writes that rule out in scalar C; the tests check it against the
// instruction on every CPU that has it (BF16Tests).
#include "CGemm.h"
#include <math.h>
#include <string.h>

static inline uint32_t bits_of(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float float_of(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

float backprop_bf16_to_float(uint16_t b) { return float_of((uint32_t)b << 16); }

// A denormal as a zero of its sign.
static inline float flushed(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }

uint16_t backprop_bf16_from_float(float x) {
    uint32_t u = bits_of(x);
    if (isnan(x)) return (uint16_t)((u >> 16) | 0x0040);  // quieted, sign and payload's top kept
    u = bits_of(flushed(x));
    // Round to nearest, ties to even, on the 16 bits dropped.
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

// Where an operand is NaN the result is the first NaN of a, b, acc, quieted
// (found on AMD Zen 4 by BF16Tests; C's fmaf would choose by its own operand order).
static inline float first_nan(float a, float b, float acc) {
    const float nan = isnan(a) ? a : isnan(b) ? b : acc;
    return float_of(bits_of(nan) | 0x00400000);
}

void backprop_dpbf16_emulated(float *acc, const uint16_t *a, const uint16_t *b) {
    for (int i = 0; i < 16; i++) {
        float t = flushed(acc[i]);
        for (int pair = 1; pair >= 0; pair--) {
            const float x = flushed(backprop_bf16_to_float(a[2 * i + pair]));
            const float y = flushed(backprop_bf16_to_float(b[2 * i + pair]));
            t = isnan(x) || isnan(y) || isnan(t) ? first_nan(x, y, t) : flushed(fmaf(x, y, t));
        }
        acc[i] = t;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

int backprop_cpu_has_avx512_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f") ? 1 : 0;
}

__attribute__((target("avx512f,avx512bf16")))
void backprop_dpbf16_hardware(float *acc, const uint16_t *a, const uint16_t *b) {
    __m512bh va, vb;
    memcpy(&va, a, 64);
    memcpy(&vb, b, 64);
    _mm512_storeu_ps(acc, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), va, vb));
}

__attribute__((target("avx512f,avx512bf16")))
void backprop_bf16_from_float_hardware(uint16_t *out, const float *in) {
    __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(in));
    memcpy(out, &r, 32);
}
#else
int backprop_cpu_has_avx512_bf16(void) { return 0; }
void backprop_dpbf16_hardware(float *acc, const uint16_t *a, const uint16_t *b) { backprop_dpbf16_emulated(acc, a, b); }
void backprop_bf16_from_float_hardware(uint16_t *out, const float *in) {
    for (int i = 0; i < 16; i++) out[i] = backprop_bf16_from_float(in[i]);
}
#endif
