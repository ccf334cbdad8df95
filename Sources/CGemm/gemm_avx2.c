// The AVX2 + FMA path of backprop_gemm (rule in CGemm.h): register tiles of
// up to 6 rows × 16 columns (12 accumulators of 8 lanes), as the AVX-512
// path with 8-lane vectors; partial columns through maskload/maskstore. The
// loops around the tile are gemm_driver.h's. Compiled for AVX2 and FMA by
// attribute; called only when backprop_cpu_has_avx2_fma() says so.
#if defined(__x86_64__)
#include "CGemm.h"
#include <immintrin.h>

#define ISA __attribute__((target("avx2,fma")))
#define MR 6
#define WIDTH 8
#define NV 2
#define NR 16
#define VEC __m256
#define MASK __m256i
#define FULL_MASK _mm256_set1_epi32(-1)
// Masked (partial) or plain.
#define LOAD(p, mask, masked) ((masked) ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p))
#define STORE(p, v, mask, masked) ((masked) ? _mm256_maskstore_ps(p, mask, v) : _mm256_storeu_ps(p, v))
#define ZERO() _mm256_setzero_ps()
#define BROADCAST(p) _mm256_broadcast_ss(p)
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define ADD(a, b) _mm256_add_ps(a, b)
#define ROW_CASES(istride) TILE_CASE(6, istride) TILE_CASE(5, istride) TILE_CASE(4, istride) \
    TILE_CASE(3, istride) TILE_CASE(2, istride) TILE_CASE(1, istride)

ISA static inline MASK tail_mask(int width) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(width), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#include "gemm_driver.h"

void backprop_gemm_avx2(const backprop_gemm *g) { drive(g); }
#endif
