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
#include "bf16_rule.h"

float backprop_bf16_to_float(uint16_t b) { return bf16_float_of((uint32_t)b << 16); }

uint16_t backprop_bf16_from_float(float x) { return (uint16_t)(bf16_bits_of(bf16_rounded(x)) >> 16); }

void backprop_dpbf16_emulated(float *acc, const uint16_t *a, const uint16_t *b) {
    for (int i = 0; i < 16; i++) {
        float t = acc[i];
        for (int pair = 1; pair >= 0; pair--)
            t = bf16_step(t, backprop_bf16_to_float(a[2 * i + pair]), backprop_bf16_to_float(b[2 * i + pair]));
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
