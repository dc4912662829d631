/* The one thread runner of the C kernels (not part of the Python-visible ABI).
 *
 * Cap rule: a kernel asked for `nthreads` over n independent items (output rows) runs
 * T = min(max(nthreads, 1), n, NS_MAX_THREADS) ranges (T = 1 when n <= 0). Range t is the items
 * [n*t/T, n*(t+1)/T). Every item is computed by the same code whatever range it falls in, so T never
 * changes a bit of the result; it only changes the speed. */
#ifndef NS_THREADS_H
#define NS_THREADS_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* CDEF BEGIN */
enum ns_thread_cap { NS_MAX_THREADS = 64 };
/* T of the cap rule above. */
int32_t ns_thread_count(int32_t nthreads, int64_t n);
/* CDEF END */

/* fn(ctx, t, lo, hi) of range t. */
typedef void (*ns_range_fn)(void *ctx, int32_t t, int64_t lo, int64_t hi);
/* Runs fn over the T ranges of [0, n): the calling thread takes range 0, a thread each the others
 * (a range whose thread cannot be created runs on the calling thread: same bits). Returns T. */
int32_t ns_parallel_for(int64_t n, int32_t nthreads, ns_range_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
