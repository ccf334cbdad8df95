// Backprop's kernel paths against OpenBLAS, one thread, on the training
// products at full size (one shard of 128) and at the sizes of the step's
// tasks: per product, 41 rounds in which AVX-512, AVX2 and OpenBLAS each run
// about 0.1 GFLOP back to back; printed are the median GFLOP/s and the
// medians of the per-round ratios (robust to a machine whose speed drifts).
// Build and run from the repository root:
//
//   clang -O2 -I Sources/CGemm/include -I /usr/include/x86_64-linux-gnu/openblas-pthread \
//     Benchmarks/blas/kernel_vs_openblas.c Sources/CGemm/gemm_avx512.c Sources/CGemm/gemm_avx2.c \
//     Sources/CGemm/cpu.c Sources/CGemm/buffers.c -lopenblas -o /tmp/kernel-vs-openblas
//   OPENBLAS_CORETYPE=SkylakeX /tmp/kernel-vs-openblas    # or Haswell, for the AVX2 ratio
#include "CGemm.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static int cmp(const void*x,const void*y){double a=*(double*)x,b=*(double*)y;return a<b?-1:a>b;}
typedef struct {const char*name; long m,n,k; int ta; int fwd;} P;
int main(int argc,char**argv){
  openblas_set_num_threads(1);
  P ps[]={{"fwd 128x784x256",128,256,784,0,1},{"dTz 256x784x128",256,784,128,1,0},{"fwd 128x256x128",128,128,256,0,1},{"dW 128x256x128",128,256,128,0,0},{"dTz 128x256x128",128,256,128,1,0},{"fwd 128x10x128",128,10,128,0,1},{"dW 128x128x10",128,128,10,0,0},{"dTz 10x128x128",10,128,128,1,0},{"fwd64 64x64x784",64,64,784,0,1},{"dW64 64x64x256",64,64,256,0,0},{"dTz32 32x256x256",32,256,256,1,0}};
  float *a=malloc(4<<22),*b=malloc(4<<22),*c=malloc(4<<22);
  for(int i=0;i<(1<<22);i++){a[i]=(rand()%1000)/1000.0f-.5f;b[i]=(rand()%1000)/1000.0f-.5f;c[i]=0;}
  for(unsigned q=0;q<sizeof ps/sizeof*ps;q++){P p=ps[q];
    backprop_gemm g={p.m,p.n,p.k,p.k,a,p.ta?1:p.k,p.ta?p.m:1,b,p.n,0,0,c,p.n,p.ta};
    double fl=2.0*p.m*p.n*p.k; int calls=(int)(1e8/fl)+1; double r512[41],r2[41],g512[41],gb[41];
    for(int r=0;r<41;r++){
      double t=now(); for(int i=0;i<calls;i++) backprop_gemm_avx512(&g); double t1=(now()-t)/calls;
      t=now(); for(int i=0;i<calls;i++) backprop_gemm_avx2(&g); double t2=(now()-t)/calls;
      t=now(); for(int i=0;i<calls;i++) cblas_sgemm(CblasRowMajor,p.ta?CblasTrans:CblasNoTrans,p.fwd?CblasTrans:CblasNoTrans,p.m,p.n,p.k,1,a,p.ta?p.m:p.k,b,p.fwd?p.k:p.n,p.ta?1:0,c,p.n); double t3=(now()-t)/calls;
      r512[r]=t3/t1; r2[r]=t3/t2; g512[r]=fl/t1*1e-9; gb[r]=fl/t3*1e-9;
    }
    qsort(r512,41,8,cmp);qsort(r2,41,8,cmp);qsort(g512,41,8,cmp);qsort(gb,41,8,cmp);
    printf("%-18s avx512 %6.1f GF/s (%.2fx blas)  avx2 %.2fx  blas %6.1f\n",p.name,g512[20],r512[20],r2[20],gb[20]);
  }
}
