// Does OpenBLAS serialise concurrent callers? Times a tiny cblas_sgemm
// (n × n, default 4: all call overhead, no arithmetic to speak of) on 1 and
// then 2 threads at once, one BLAS thread each, three rounds. README,
// "Throughput", says what it found: every call takes a global mutex in
// blas_memory_alloc/free (gdb: pthread_mutex_lock under blas_memory_alloc
// under cblas_sgemm).
//
//   gcc -O2 -o /tmp/lock_probe lock_probe.c -lopenblas -lpthread && /tmp/lock_probe 4
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int n = 4, calls = 400000;
static void *run(void *p) {
    float a[64*64], b[64*64], c[64*64];
    for (int i = 0; i < 64*64; i++) a[i] = b[i] = 1;
    double t = now();
    for (int i = 0; i < calls; i++) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    *(double *)p = (now() - t) / calls * 1e9;
    return 0;
}
int main(int argc, char **argv) {
    openblas_set_num_threads(1);
    n = argc > 1 ? atoi(argv[1]) : 4;
    for (int round = 0; round < 3; round++)
    for (int threads = 1; threads <= 2; threads++) {
        pthread_t t[2]; double ns[2];
        for (int i = 0; i < threads; i++) pthread_create(&t[i], 0, run, &ns[i]);
        for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
        printf("n=%d, %d concurrent caller%s: %.0f ns per call\n", n, threads, threads > 1 ? "s" : "", threads > 1 ? (ns[0] + ns[1]) / 2 : ns[0]);
    }
    return 0;
}
