// The AVX-512F path of backprop_gemm (rule in CGemm.h): register tiles of up
// to 12 rows × 32 columns (24 accumulators of 16 lanes), A broadcast one
// element at a time, partial columns through lane masks; the loops around
// the tile are gemm_driver.h's. Compiled for AVX-512F by attribute; called
// only when backprop_cpu_has_avx512() says so.
#if defined(__x86_64__)
#include "CGemm.h"
#include <immintrin.h>

#define ISA __attribute__((target("avx512f,fma")))
#define MR 12
#define WIDTH 16
#define NV 2
#define NR 32
#define VEC __m512
#define MASK __mmask16
#define FULL_MASK ((__mmask16)0xFFFF)
// Masked (partial) or plain.
#define LOAD(p, mask, masked) ((masked) ? _mm512_maskz_loadu_ps(mask, p) : _mm512_loadu_ps(p))
#define STORE(p, v, mask, masked) ((masked) ? _mm512_mask_storeu_ps(p, mask, v) : _mm512_storeu_ps(p, v))
#define ZERO() _mm512_setzero_ps()
#define BROADCAST(p) _mm512_set1_ps(*(p))
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define ADD(a, b) _mm512_add_ps(a, b)
#define ROW_CASES(istride) TILE_CASE(12, istride) TILE_CASE(11, istride) TILE_CASE(10, istride) TILE_CASE(9, istride) TILE_CASE(8, istride) TILE_CASE(7, istride) TILE_CASE(6, istride) TILE_CASE(5, istride) \
    TILE_CASE(4, istride) TILE_CASE(3, istride) TILE_CASE(2, istride) TILE_CASE(1, istride)

ISA static inline MASK tail_mask(int width) { return (MASK)(width >= WIDTH ? 0xFFFF : (1u << width) - 1); }

#include "gemm_driver.h"

void backprop_gemm_avx512(const backprop_gemm *g) { drive(g); }
#endif
