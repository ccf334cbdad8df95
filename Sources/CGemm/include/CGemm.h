// Backprop's own fp32 matrix product, in C with intrinsics, and the few
// machine facilities Swift cannot reach (CPU features, atomics, spin-waits).
//
// The product's rule, on every path: each output element is one chain of
// fp32 fused multiply-adds over k in ascending order,
//     c = fma(a_ik, b_kj, c),
// starting from 0, or from C's own value when `accumulate` is set. With a
// `segment` shorter than k the chain restarts from 0 every `segment` values of
// k and each segment's chain is added to the element in segment order:
//     c = chain(k in [0, s)) ; c = c + chain(k in [s, 2s)) ; …
// (the shard sums of a weight gradient, added in shard order). Vectors run
// across j (and tiles across i), never across k, so the bits equal the naive
// loop whatever the tile, the block split or the instruction set.
//
// Not here: alpha/beta scaling (alpha is 1; beta is 0 or 1, `accumulate`),
// packing, threading (the caller splits C into blocks).
#ifndef CGEMM_H
#define CGEMM_H

#include <stdint.h>
#include <stddef.h>

/// C[i, j] (+)= Σ_k A(i, k)·B(k, j) with A(i, k) = a[i·a_row_stride + k·a_column_stride],
/// C row-major with stride ldc, and B(k, j) = b[k·ldb + j] (j contiguous) or,
/// when b_panel_width is not 0, stored in panels of that many columns:
/// B(k, j) = b[(j / w)·b_panel_stride + k·ldb + j % w] (a panel is [k][ldb]).
typedef struct {
    long m, n, k;
    /// k values per chain; >= k for a single chain.
    long segment;
    const float *a;
    long a_row_stride, a_column_stride;
    const float *b;
    long ldb;
    /// 0, or the columns of each stored panel of B (a multiple of 32, so of every path's tile width).
    long b_panel_width;
    long b_panel_stride;
    float *c;
    long ldc;
    /// 1: the first chain starts from C; 0: from 0 (C is not read).
    int accumulate;
    /// NULL, or (read by the bf16 vector paths only) B already rounded and paired as
    /// backprop_bf16_pack_pairs writes it: the pair of rows 2p, 2p+1 and column 16g + c at
    /// b_pairs[g·b_pairs_stride + 16p + c], a group of zeros after the last. B itself must
    /// hold the same values (every other path reads it).
    const uint32_t *b_pairs;
    long b_pairs_stride;
} backprop_gemm;

/// AVX-512F path: tiles of 12 rows × 32 columns.
void backprop_gemm_avx512(const backprop_gemm *g);
/// AVX2 + FMA path: tiles of 6 rows × 16 columns.
void backprop_gemm_avx2(const backprop_gemm *g);

/// 1 when this CPU (and its OS) runs AVX-512F code, else 0.
int backprop_cpu_has_avx512(void);
/// 1 when this CPU runs AVX2 and FMA code, else 0.
int backprop_cpu_has_avx2_fma(void);
/// 1 when this CPU runs AVX512_BF16 code (VDPBF16PS), else 0.
int backprop_cpu_has_avx512_bf16(void);
/// fp32 → bf16, rounded to nearest even (denormals as zero, NaN quieted): VCVTNEPS2BF16's rule (bf16.c).
uint16_t backprop_bf16_from_float(float x);
/// bf16 → fp32, exact.
float backprop_bf16_to_float(uint16_t b);
/// acc[0…15] ← VDPBF16PS(acc, a[0…31], b[0…31]), written out in C (bf16.c states the rule).
void backprop_dpbf16_emulated(float *acc, const uint16_t *a, const uint16_t *b);
/// The same by the instruction itself. Call only where backprop_cpu_has_avx512_bf16() says so.
void backprop_dpbf16_hardware(float *acc, const uint16_t *a, const uint16_t *b);
/// out[0…15] ← VCVTNEPS2BF16(in[0…15]). Call only where backprop_cpu_has_avx512_bf16() says so.
void backprop_bf16_from_float_hardware(uint16_t *out, const float *in);
/// backprop_gemm's product with bf16 operands (gemm_bf16.c states the rule), element by element.
void backprop_gemm_bf16_emulated(const backprop_gemm *g);
/// The same with VDPBF16PS tiles. Call only where backprop_cpu_has_avx512_bf16() says so.
void backprop_gemm_bf16_avx512(const backprop_gemm *g);
/// The same rule on AVX-512F and BW without the instruction (FMAs under DAZ and FTZ). Call only where AVX-512BW runs.
void backprop_gemm_bf16_avx512_emulated(const backprop_gemm *g);
/// The same rule on AVX2 and FMA (gemm_bf16_avx2.c). Call only where backprop_cpu_has_avx2_fma() says so.
void backprop_gemm_bf16_avx2(const backprop_gemm *g);
/// 1 when this CPU runs AVX-512BW code (the packing of the AVX-512 bf16 paths), else 0.
int backprop_cpu_has_avx512bw(void);
/// out[16p + c] = the bf16 pair (B(2p, c) low, B(2p+1, c) high) for p < ⌈rows/2⌉ and c < 16, with
/// B(k, c) = b[k·ldb + c] for c < columns (≤ 16) and k < rows, else 0: bf16.c's rounding.
void backprop_bf16_pack_pairs(const float *b, long ldb, long rows, long columns, uint32_t *out);
/// The cores this process may run on (its affinity mask: mpirun binds ranks); 0 if unknown.
int backprop_usable_cores(void);

/// dst[i·ldd + j] = src[j·lds + i] for j < rows, i < columns (the rows of
/// src become the columns of dst).
void backprop_transpose(const float *src, long lds, long rows, long columns, float *dst, long ldd);

/// This thread's scratch buffer of at least `floats` floats, 64-byte
/// aligned (its contents are not kept when it grows), freed when the thread
/// ends; NULL when out of memory.
float *backprop_thread_buffer(size_t floats);

// MARK: - Atomics for the step's task counters (sequentially consistent
// claims, acquire loads, release adds).

/// *p += v; returns the old value.
long backprop_atomic_fetch_add(long *p, long v);
/// *p, with acquire ordering.
long backprop_atomic_load(const long *p);
/// *p = v, with release ordering.
void backprop_atomic_store(long *p, long v);
/// Waits, spinning then yielding, until *p >= value (acquire).
void backprop_wait_at_least(const long *p, long value);

// MARK: - Adam's update (adam.c)

/// One step of Adam or AdamW: η, λ, β₁, β₂, ε, the bias corrections
/// 1 − β₁ᵗ and 1 − β₂ᵗ, the gradient's scale s, and whether the decay is decoupled (AdamW).
typedef struct {
    float eta, lambda, beta1, beta2, epsilon, correction1, correction2, scale;
    int decoupled;
} backprop_adam_rule;

/// The rule over w[0..<k], m and v alike, along g · s, for the largest k ≤ n
/// that the path's lanes divide (16 on AVX-512F, 8 on AVX); returns k.
long backprop_adam_avx512(const backprop_adam_rule *r, float *w, const float *g, float *m, float *v, long n);
long backprop_adam_avx2(const backprop_adam_rule *r, float *w, const float *g, float *m, float *v, long n);

/// Compares *p with `expected` and, if equal, stores `desired` (sequentially
/// consistent); returns 1 if it stored.
int backprop_atomic_compare_exchange(long *p, long expected, long desired);

// MARK: - A team's parking (Team.swift): workers that wait for the next
// step spin, then yield, then sleep in the kernel until it is published.

/// Waits until *generation != seen (acquire) and returns it: about `spin_ns`
/// nanoseconds of pause and yield loops, then asleep (futex on its low 32
/// bits, counted in *sleepers while there) until `backprop_publish` wakes it.
long backprop_await_change(const long *generation, long seen, long *sleepers, long spin_ns);
/// *generation += 1 (sequentially consistent), then wakes every sleeper, if
/// *sleepers says there may be one; returns the new value.
long backprop_publish(long *generation, const long *sleepers);

#endif
