// The transposing copy that keeps wᵀ current (TransposedWeights.refresh):
// dst[i·ldd + j] = src[j·lds + i]. Pure data movement, so any order gives
// the same result; 4 × 4 blocks through SSE registers where x86-64 has them.
#include "CGemm.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

void backprop_transpose(const float *src, long lds, long rows, long columns, float *dst, long ldd) {
    long j = 0;
#if defined(__x86_64__)
    for (; j + 4 <= rows; j += 4) {
        long i = 0;
        for (; i + 4 <= columns; i += 4) {
            __m128 r0 = _mm_loadu_ps(src + (j + 0) * lds + i), r1 = _mm_loadu_ps(src + (j + 1) * lds + i);
            __m128 r2 = _mm_loadu_ps(src + (j + 2) * lds + i), r3 = _mm_loadu_ps(src + (j + 3) * lds + i);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(dst + (i + 0) * ldd + j, r0);
            _mm_storeu_ps(dst + (i + 1) * ldd + j, r1);
            _mm_storeu_ps(dst + (i + 2) * ldd + j, r2);
            _mm_storeu_ps(dst + (i + 3) * ldd + j, r3);
        }
        for (; i < columns; i++)
            for (long jj = j; jj < j + 4; jj++) dst[i * ldd + jj] = src[jj * lds + i];
    }
#endif
    for (; j < rows; j++)
        for (long i = 0; i < columns; i++) dst[i * ldd + j] = src[j * lds + i];
}
