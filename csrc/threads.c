/* ns_parallel_for: see ns_threads.h for the cap rule. */
#include <pthread.h>
#include "ns_threads.h"

typedef struct range_job {
    ns_range_fn fn;
    void *ctx;
    int32_t t;
    int64_t lo, hi;
} range_job;

static void *run_range(void *arg) {
    const range_job *r = (const range_job *)arg;
    r->fn(r->ctx, r->t, r->lo, r->hi);
    return NULL;
}

int32_t ns_thread_count(int32_t nthreads, int64_t n) {
    int64_t T = nthreads < 1 ? 1 : nthreads;
    if (T > NS_MAX_THREADS) T = NS_MAX_THREADS;
    if (T > n) T = n > 0 ? n : 1;
    return (int32_t)T;
}

int32_t ns_parallel_for(int64_t n, int32_t nthreads, ns_range_fn fn, void *ctx) {
    const int32_t T = ns_thread_count(nthreads, n);
    const int64_t items = n > 0 ? n : 0;
    range_job jobs[NS_MAX_THREADS];
    pthread_t tids[NS_MAX_THREADS];
    int started[NS_MAX_THREADS];
    for (int32_t t = 0; t < T; t++) {
        jobs[t].fn = fn; jobs[t].ctx = ctx; jobs[t].t = t;
        jobs[t].lo = items * t / T; jobs[t].hi = items * (t + 1) / T;
        started[t] = 0;
    }
    for (int32_t t = 1; t < T; t++) started[t] = pthread_create(&tids[t], NULL, run_range, &jobs[t]) == 0;
    run_range(&jobs[0]);
    for (int32_t t = 1; t < T; t++) {
        if (started[t]) pthread_join(tids[t], NULL);
        else run_range(&jobs[t]);
    }
    return T;
}
