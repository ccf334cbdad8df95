// Could a packed AVX2 kernel of our own beat OpenBLAS on the reference model's
// largest product? a = Z·Wᵀ for one shard: Z [128, 784], W [256, 784],
// C [128, 256], 51 MFLOP. The kernel: 6×16 register tile (12 ymm accumulators),
// K in blocks of 256, W packed once per step (it is shared by every worker and
// every shard), Z packed per call. Timed against cblas_sgemm on the same
// shapes, interleaved rounds, one thread.
//
//   gcc -O3 -mavx2 -mfma -o /tmp/packed packed_kernel.c -lopenblas
//   OPENBLAS_NUM_THREADS=1 /tmp/packed 9
//
// An experiment, not part of the package (README, "Throughput", says what it
// found): the tile beats OpenBLAS only while W's packing is free.
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { M = 128, N = 256, K = 784, MR = 6, NR = 16, KC = 256, MP = (M + MR - 1) / MR * MR };

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

// C[MR, NR] (+)= Σ_k a[k, 0..MR) b[k, 0..NR), a and b packed k-major.
static void tile(int kc, const float *a, const float *b, float *c, int ldc, int accumulate) {
    __m256 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
    }
    for (int i = 0; i < MR; i++) {
        float *row = c + i * ldc;
        if (accumulate) {
            c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(row));
            c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(row + 8));
        }
        _mm256_storeu_ps(row, c0[i]);
        _mm256_storeu_ps(row + 8, c1[i]);
    }
}

// W [N, K] → for each K block, for each panel of NR rows of W: k-major NR values.
static void pack_w(const float *w, float *packed) {
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int n0 = 0; n0 < N; n0 += NR, packed += kc * NR)
            for (int j = 0; j < NR; j++)  // read rows of W in order, write with stride NR
                for (int k = 0; k < kc; k++) packed[k * NR + j] = w[(n0 + j) * K + k0 + k];
    }
}

// Z [M, K] rows k0..k0+kc → panels of MR rows, k-major, zero rows past M.
static void pack_z(const float *z, int k0, int kc, float *packed) {
    for (int m0 = 0; m0 < MP; m0 += MR)
        for (int k = 0; k < kc; k++)
            for (int i = 0; i < MR; i++) *packed++ = m0 + i < M ? z[(m0 + i) * K + k0 + k] : 0;
}

static float zp[MP * KC] __attribute__((aligned(64)));
static float cpad[MP * N] __attribute__((aligned(64)));

static void own_gemm(const float *z, const float *wp, float *c) {
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        pack_z(z, k0, kc, zp);
        const float *wblock = wp + (size_t)k0 * N;
        for (int n0 = 0; n0 < N; n0 += NR)
            for (int m0 = 0; m0 < MP; m0 += MR)
                tile(kc, zp + m0 * kc, wblock + n0 * kc, cpad + m0 * N + n0, N, k0 > 0);
    }
    memcpy(c, cpad, sizeof(float) * M * N);  // the padded rows stay behind
}

static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 7, calls = 400;
    float *z = aligned_alloc(64, sizeof(float) * M * K), *w = aligned_alloc(64, sizeof(float) * N * K);
    float *wp = aligned_alloc(64, sizeof(float) * N * K), *c1 = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) z[i] = (float)rand() / RAND_MAX;
    for (int i = 0; i < N * K; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    pack_w(w, wp);
    own_gemm(z, wp, c1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, z, K, w, K, 0, c2, N);
    double worst = 0;
    for (int i = 0; i < M * N; i++) { double d = c1[i] - c2[i]; if (d < 0) d = -d; if (d > worst) worst = d; }
    printf("max |own − OpenBLAS| = %.2g\n", worst);
    double r[3][64];
    for (int k = 0; k < rounds; k++) {
        double t = now();
        for (int i = 0; i < calls; i++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, z, K, w, K, 0, c2, N);
        r[0][k] = 2.0 * M * N * K * calls / (now() - t) * 1e-9;
        t = now();
        for (int i = 0; i < calls; i++) own_gemm(z, wp, c1);
        r[1][k] = 2.0 * M * N * K * calls / (now() - t) * 1e-9;
        t = now();
        for (int i = 0; i < calls; i++) { if (i % 2 == 0) pack_w(w, wp); own_gemm(z, wp, c1); }  // W packed once per 2 shards
        r[2][k] = 2.0 * M * N * K * calls / (now() - t) * 1e-9;
    }
    const char *names[3] = {"OpenBLAS cblas_sgemm", "own, W prepacked", "own, W packed per 2 calls"};
    for (int i = 0; i < 3; i++) {
        qsort(r[i], rounds, sizeof(double), cmp);
        printf("%-26s median %6.1f GFLOP/s (min %6.1f, max %6.1f)\n", names[i], r[i][rounds / 2], r[i][0], r[i][rounds - 1]);
    }
    return 0;
}
