// Adam's and AdamW's update (UpdateRule's .adam and .adamW) on AVX-512F and
// AVX2 registers: 16 or 8 parameters at a time. Each lane runs the scalar
// loop of UpdateRule.apply, operation for operation: g·s first, every
// multiply, add, divide and square root rounded once (no fused multiply-add:
// the intrinsics below are separate IEEE operations, and contraction is
// off), m and v that would be subnormal stored as 0. So the bits equal the
// scalar loop's, on any path. Not here: the last n mod 16 (8) parameters,
// which the caller's loop takes, and every other rule (their loops are
// memory-bound, and Swift's eight lanes keep up; Adam's three divisions and
// a square root a parameter are not).
#include "CGemm.h"
#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>

#define ADAM_BODY(VEC, SET1, LOAD, STORE, ADDP, SUBP, MULP, DIVP, SQRTP, TINY_ZERO, WIDTH)                     \
    const VEC s = SET1(r->scale), eta = SET1(r->eta), lambda = SET1(r->lambda), etalambda = SET1(r->eta * r->lambda); \
    const VEC b1 = SET1(r->beta1), b2 = SET1(r->beta2), omb1 = SET1(1 - r->beta1), omb2 = SET1(1 - r->beta2);     \
    const VEC c1 = SET1(r->correction1), c2 = SET1(r->correction2), eps = SET1(r->epsilon);                        \
    long i = 0;                                                                                                \
    for (; i + WIDTH <= n; i += WIDTH) {                                                                       \
        VEC wi = LOAD(w + i);                                                                                  \
        VEC gi = MULP(LOAD(g + i), s);                                                                         \
        if (r->decoupled) wi = SUBP(wi, MULP(etalambda, wi));                                                  \
        else gi = ADDP(gi, MULP(lambda, wi));                                                                  \
        VEC mi = ADDP(MULP(b1, LOAD(m + i)), MULP(omb1, gi));                                                  \
        VEC vi = ADDP(MULP(b2, LOAD(v + i)), MULP(MULP(omb2, gi), gi));                                        \
        mi = TINY_ZERO(mi);                                                                                    \
        vi = TINY_ZERO(vi);                                                                                    \
        STORE(m + i, mi);                                                                                      \
        STORE(v + i, vi);                                                                                      \
        VEC step = DIVP(MULP(eta, DIVP(mi, c1)), ADDP(SQRTP(DIVP(vi, c2)), eps));                              \
        STORE(w + i, SUBP(wi, step));                                                                          \
    }                                                                                                          \
    return i;

// x, or 0 where |x| < 2⁻¹²⁶ (NaN kept: it compares false).
__attribute__((target("avx512f"))) static inline __m512 tiny_zero_512(__m512 x) {
    const __m512 tiny = _mm512_set1_ps(0x1p-126f), minus_tiny = _mm512_set1_ps(-0x1p-126f);
    const __mmask16 small = _mm512_cmp_ps_mask(x, tiny, _CMP_LT_OQ) & _mm512_cmp_ps_mask(x, minus_tiny, _CMP_GT_OQ);
    return _mm512_mask_mov_ps(x, small, _mm512_setzero_ps());
}

__attribute__((target("avx"))) static inline __m256 tiny_zero_256(__m256 x) {
    const __m256 small = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ),
                                       _mm256_cmp_ps(x, _mm256_set1_ps(-0x1p-126f), _CMP_GT_OQ));
    return _mm256_andnot_ps(small, x);
}

__attribute__((target("avx512f"))) long backprop_adam_avx512(const backprop_adam_rule *r, float *w, const float *g,
                                                             float *m, float *v, long n) {
    ADAM_BODY(__m512, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps,
              _mm512_div_ps, _mm512_sqrt_ps, tiny_zero_512, 16)
}

__attribute__((target("avx"))) long backprop_adam_avx2(const backprop_adam_rule *r, float *w, const float *g,
                                                        float *m, float *v, long n) {
    ADAM_BODY(__m256, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps,
              _mm256_div_ps, _mm256_sqrt_ps, tiny_zero_256, 8)
}
#else
long backprop_adam_avx512(const backprop_adam_rule *r, float *w, const float *g, float *m, float *v, long n) { return 0; }
long backprop_adam_avx2(const backprop_adam_rule *r, float *w, const float *g, float *m, float *v, long n) { return 0; }
#endif
