// The 8 training GEMMs of 784-256-128-10 on one shard of 128 rows, timed with
// OpenBLAS and BLIS (dlopen'd side by side), on 1 and 2 concurrent threads.
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
typedef void (*sgemm_t)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
enum { RowMajor = 101, NoTrans = 111, Trans = 112 };
static const int sizes[4] = {784, 256, 128, 10}, rows = 128;
typedef struct { sgemm_t gemm; int iterations; double seconds; } job;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void *run(void *p) {
    job *j = p; float *z[4], *w[3], *d[4], *g[3];
    for (int l = 0; l < 4; l++) { z[l] = calloc(rows * sizes[l], 4); d[l] = calloc(rows * sizes[l], 4);
        for (int i = 0; i < rows * sizes[l]; i++) z[l][i] = (float)rand() / RAND_MAX; }
    for (int l = 0; l < 3; l++) { w[l] = calloc(sizes[l] * sizes[l + 1], 4); g[l] = calloc(sizes[l] * sizes[l + 1], 4);
        for (int i = 0; i < sizes[l] * sizes[l + 1]; i++) w[l][i] = (float)rand() / RAND_MAX - 0.5f; }
    double t0 = now();
    for (int it = 0; it < j->iterations; it++) {
        for (int l = 0; l < 3; l++)  // a = z wᵀ
            j->gemm(RowMajor, NoTrans, Trans, rows, sizes[l + 1], sizes[l], 1, z[l], sizes[l], w[l], sizes[l], 0, z[l + 1], sizes[l + 1]);
        for (int l = 2; l >= 0; l--) {  // ∂E/∂w = δᵀ z; δ_below = δ w
            j->gemm(RowMajor, Trans, NoTrans, sizes[l + 1], sizes[l], rows, 1, d[l + 1], sizes[l + 1], z[l], sizes[l], 0, g[l], sizes[l]);
            if (l > 0) j->gemm(RowMajor, NoTrans, NoTrans, rows, sizes[l], sizes[l + 1], 1, d[l + 1], sizes[l + 1], w[l], sizes[l], 0, d[l], sizes[l]);
        }
    }
    j->seconds = now() - t0;
    return 0;
}
static double samples_per_second(sgemm_t gemm, int threads, int iterations) {
    pthread_t t[16]; job jobs[16];
    for (int i = 0; i < threads; i++) { jobs[i] = (job){gemm, iterations, 0}; pthread_create(&t[i], 0, run, &jobs[i]); }
    double worst = 0;
    for (int i = 0; i < threads; i++) { pthread_join(t[i], 0); if (jobs[i].seconds > worst) worst = jobs[i].seconds; }
    return (double)threads * iterations * rows / worst;
}
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
    const char *paths[2] = {"/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/blis-pthread/libblis.so.4"};
    const char *names[2] = {"OpenBLAS 0.3.21", "BLIS 0.9.0"};
    sgemm_t gemm[2];
    for (int i = 0; i < 2; i++) {
        void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        gemm[i] = (sgemm_t)dlsym(h, "cblas_sgemm");
    }
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    for (int threads = 1; threads <= 2; threads++) {
        double r[2][64];
        for (int k = 0; k < rounds; k++)  // interleaved rounds
            for (int i = 0; i < 2; i++) r[i][k] = samples_per_second(gemm[i], threads, 300);
        for (int i = 0; i < 2; i++) {
            qsort(r[i], rounds, sizeof(double), cmp);
            printf("%d thread%s  %-16s median %8.0f samples/s  (min %8.0f, max %8.0f)\n", threads, threads > 1 ? "s" : " ",
                   names[i], r[i][rounds / 2], r[i][0], r[i][rounds - 1]);
        }
    }
    return 0;
}
