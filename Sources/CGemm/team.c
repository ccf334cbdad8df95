// The parking of a team's workers between steps (Team.swift): spin while a
// step is likely to come soon, then sleep in the kernel (Linux futex), so
// that an idle team costs no CPU and a busy one no system call.
//
// The lost-wakeup argument: a sleeper adds itself to *sleepers and then
// asks the kernel to sleep only if the generation is still `seen` (the
// futex compares atomically); the publisher adds to the generation and only
// then reads *sleepers, both sequentially consistent. Either the publisher
// sees the sleeper and wakes it, or the sleeper's count came later in the
// single order of those operations, so its futex sees the new generation
// and does not sleep.
#define _GNU_SOURCE
#include "CGemm.h"
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void relax(void) { _mm_pause(); }
#else
static inline void relax(void) {}
#endif

int backprop_atomic_compare_exchange(long *p, long expected, long desired) {
    return atomic_compare_exchange_strong((_Atomic long *)p, &expected, desired) ? 1 : 0;
}

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

// The futex word: the low 32 bits of the generation (x86-64 and arm64 are
// little-endian); it changes whenever the generation does.
static int *low_word(const long *generation) { return (int *)generation; }

long backprop_await_change(const long *generation, long seen, long *sleepers, long spin_ns) {
    long g;
    const long start = now_ns();
    for (int spin = 0; (g = atomic_load_explicit((_Atomic long *)generation, memory_order_acquire)) == seen; spin++) {
        if (spin < 2048) {
            relax();
            continue;
        }
        // Past a few µs another thread may need this core (more workers
        // than cores): give it up between checks while the budget lasts.
        if (now_ns() - start < spin_ns) {
            sched_yield();
            continue;
        }
#if defined(__linux__)
        atomic_fetch_add((_Atomic long *)sleepers, 1);
        syscall(SYS_futex, low_word(generation), FUTEX_WAIT_PRIVATE, (int)seen, NULL, NULL, 0);
        atomic_fetch_sub((_Atomic long *)sleepers, 1);
#else
        sched_yield();
#endif
    }
    return g;
}

long backprop_publish(long *generation, const long *sleepers) {
    const long g = atomic_fetch_add((_Atomic long *)generation, 1) + 1;
#if defined(__linux__)
    if (atomic_load((_Atomic long *)sleepers) > 0)
        syscall(SYS_futex, low_word(generation), FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#endif
    return g;
}
