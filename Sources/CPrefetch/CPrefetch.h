// A software prefetch for Swift, which has no intrinsic for it: asks the CPU
// to start loading the cache line at p for reading, without waiting for it.
static inline void backprop_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }
