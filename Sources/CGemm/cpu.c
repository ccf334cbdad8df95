// CPU features and the atomics of the step's task scheduler.
#define _GNU_SOURCE
#include "CGemm.h"
#include <sched.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
int backprop_cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}
int backprop_cpu_has_avx512bw(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
}
int backprop_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}
static inline void relax(void) { _mm_pause(); }
#else
int backprop_cpu_has_avx512(void) { return 0; }
int backprop_cpu_has_avx512bw(void) { return 0; }
int backprop_cpu_has_avx2_fma(void) { return 0; }
static inline void relax(void) {}
#endif

long backprop_atomic_fetch_add(long *p, long v) {
    return atomic_fetch_add_explicit((_Atomic long *)p, v, memory_order_acq_rel);
}

long backprop_atomic_load(const long *p) {
    return atomic_load_explicit((_Atomic long *)p, memory_order_acquire);
}

void backprop_atomic_store(long *p, long v) {
    atomic_store_explicit((_Atomic long *)p, v, memory_order_release);
}

void backprop_wait_at_least(const long *p, long value) {
    // A few thousand pauses cover a task's usual wait (tens of µs); past
    // that another thread probably needs this core (more workers than
    // cores, a loaded machine), so give it up between checks.
    for (int spin = 0; backprop_atomic_load(p) < value; spin++) {
        if (spin < 4096) relax();
        else sched_yield();
    }
}

int backprop_usable_cores(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
}
