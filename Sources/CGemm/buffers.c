// Per-thread scratch for the kernels: one buffer per thread, grown as needed
// and kept across calls (training allocates once per worker thread), freed
// by a pthread key destructor when the thread ends.
#include "CGemm.h"
#include <pthread.h>
#include <stdlib.h>

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Thread_local float *buffer;
static _Thread_local size_t capacity;

static void make_key(void) { pthread_key_create(&key, free); }

float *backprop_thread_buffer(size_t floats) {
    if (capacity >= floats) return buffer;
    pthread_once(&once, make_key);
    free(buffer);
    buffer = aligned_alloc(64, (floats * sizeof(float) + 63) / 64 * 64);
    capacity = buffer ? floats : 0;
    pthread_setspecific(key, buffer);
    return buffer;
}
