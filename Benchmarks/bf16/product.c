// The bf16 product beside the fp32 one (issue 55): one product of each of
// the reference model's shapes at batch 256, fp32 (AVX-512) and bf16
// (AVX512_BF16, packing and rounding included) and the bf16 rule emulated on
// AVX-512 FMAs and on AVX2 FMAs (what CPUs without the instruction run),
// interleaved, medians of 7 rounds. Build and run: bash Benchmarks/bf16/run.sh
#include "CGemm.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int ascending(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

typedef void (*path)(const backprop_gemm *);

static double seconds(path run, backprop_gemm *g, int repeats) {
    double start = now();
    for (int r = 0; r < repeats; r++) run(g);
    return (now() - start) / repeats;
}

int main(void) {
    if (!backprop_cpu_has_avx512_bf16()) { printf("this CPU has no AVX512_BF16\n"); return 0; }
    // (m, n, k): a = z·Wᵀ of each layer (the forward pass's products), batch 256.
    const long shapes[][3] = {{256, 256, 784}, {256, 128, 256}, {256, 10, 128}, {256, 784, 256}};
    printf("shape (m×n×k)        fp32 GFLOP/s   bf16 GFLOP/s   bf16 ÷ fp32   AVX-512 emulated ÷ fp32   AVX2 emulated ÷ fp32 AVX2\n");
    for (int s = 0; s < 4; s++) {
        const long m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        for (long i = 0; i < m * k; i++) a[i] = (float)((i * 7919) % 1000) / 1000 - 0.5f;
        for (long i = 0; i < k * n; i++) b[i] = (float)((i * 104729) % 1000) / 1000 - 0.5f;
        backprop_gemm g = {.m = m, .n = n, .k = k, .segment = k, .a = a, .a_row_stride = k, .a_column_stride = 1,
                           .b = b, .ldb = n, .c = c, .ldc = n, .accumulate = 0};
        const int repeats = (int)(2e9 / (2.0 * m * n * k)) + 1;
        double fp32[7], bf16[7], emulated[7], avx2[7], avx2_emulated[7];
        for (int r = 0; r < 7; r++) {
            fp32[r] = seconds(backprop_gemm_avx512, &g, repeats);
            bf16[r] = seconds(backprop_gemm_bf16_avx512, &g, repeats);
            emulated[r] = seconds(backprop_gemm_bf16_avx512_emulated, &g, repeats);
            avx2[r] = seconds(backprop_gemm_avx2, &g, repeats);
            avx2_emulated[r] = seconds(backprop_gemm_bf16_avx2, &g, repeats);
        }
        qsort(fp32, 7, sizeof(double), ascending);
        qsort(bf16, 7, sizeof(double), ascending);
        qsort(emulated, 7, sizeof(double), ascending);
        qsort(avx2, 7, sizeof(double), ascending);
        qsort(avx2_emulated, 7, sizeof(double), ascending);
        const double flop = 2.0 * m * n * k;
        printf("%4ld×%4ld×%4ld      %10.1f     %10.1f       %6.2f×                  %6.2f×                 %6.2f×\n", m, n, k,
               flop / fp32[3] / 1e9, flop / bf16[3] / 1e9, fp32[3] / bf16[3], fp32[3] / emulated[3], avx2[3] / avx2_emulated[3]);
        free(a); free(b); free(c);
    }
    return 0;
}
